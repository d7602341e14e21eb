include(CheckCCompilerFlag)
# GCC 12+ lets inline copies be held to 256 bits as well; older GCC and clang lack the flag.
check_c_compiler_flag("-mavx512f -mmove-max=256 -mstore-max=256" STRATA_CC_MOVE_MAX_256)

# strata_module(NAME DEPS ...): a static library strata_NAME built from every .c file under
# src/NAME. Files ending in _avx2.c / _avx512.c get the ISA flags for that file only, so the
# rest of the binary stays portable and the kernels are chosen at run time by CPUID.
function(strata_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE _srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.c)
  if(NOT _srcs)
    # A module not written yet: an empty interface library keeps the dependency graph whole.
    add_library(strata_${name} INTERFACE)
    target_include_directories(strata_${name} INTERFACE ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(strata_${name} INTERFACE ${M_DEPS})
    return()
  endif()
  add_library(strata_${name} STATIC ${_srcs})
  target_include_directories(strata_${name} PUBLIC ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(strata_${name} PUBLIC ${M_DEPS})
  set(_avx512 "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni;-mavx2;-mfma;-mf16c;-mbmi2;-mprefer-vector-width=256")
  if(STRATA_CC_MOVE_MAX_256)
    list(APPEND _avx512 "-mmove-max=256;-mstore-max=256") # inline memset/memcpy too (GCC 12 and later)
  endif()
  foreach(_f ${_srcs})
    if(_f MATCHES "_avx2\\.c$")
      set_source_files_properties(${_f} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-mbmi2")
    elseif(_f MATCHES "_avx512\\.c$")
      # The kernels are written for 256-bit vectors (EVEX encoding, VNNI, 32 registers);
      # -mprefer-vector-width=256 keeps the compiler from adding 512-bit instructions of its
      # own (copies, vectorised loops), which on Intel can lower the core's clock for every
      # thread's code after them.
      set_source_files_properties(${_f} PROPERTIES COMPILE_OPTIONS "${_avx512}")
    endif()
  endforeach()
endfunction()
