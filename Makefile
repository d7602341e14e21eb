# Thin wrapper over CMake. `make` builds build/strata, `make test` runs every test
# (and, in CI, the fuzzers for longer), `make asan` runs the tests under ASan+UBSan. The CUDA
# backend is built (where the toolkit is) by the release build only: the sanitizer and fuzz
# builds instrument the host code, and need no nvcc.
BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# Bounded fuzzing time per target: short locally, at least 60 s in CI.
ifeq ($(CI),true)
FUZZ_SECONDS ?= 60
else
FUZZ_SECONDS ?= 10
endif

.PHONY: all build deps test unit asan fuzz clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test: unit fuzz

asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=ON -DSTRATA_CUDA=off >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_FUZZ=ON -DSTRATA_CUDA=off >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	@sh scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-fuzz
