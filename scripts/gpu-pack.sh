#!/bin/sh
# Builds the GPU check's payload on a machine without a GPU: `.gpu/` in the repository root
# (ignored by git; under 60 MiB), which scripts/gpu-check.sh runs on a machine with one.
#
#   .gpu/bin/      strata, the GPU tests (backend_test_ops, backend_test_device,
#                  model_test_cuda_model, runtime_test_load) and bench/make_model
#   .gpu/lib/      the shared libraries they need that a bare CUDA image may lack (not glibc,
#                  not the driver, not cuBLAS: gpu-check.sh finds the image's own)
#   .gpu/testdata/ the shared models and references the GPU tests read
#
# Usage: sh scripts/gpu-pack.sh [SM]   (SM: the GPU's architecture, default 90 for H100/H200;
# the release build compiles all of sm_75..sm_90, this one only what the check needs).
set -eu
cd "$(dirname "$0")/.."
SM=${1:-90}
DATA=../shared/testdata
[ -d "$DATA/models" ] || { echo "gpu-pack: $DATA not found" >&2; exit 1; }
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSTRATA_CUDA=on -DCMAKE_CUDA_ARCHITECTURES="$SM" >/dev/null
cmake --build build-gpu -j "$(nproc)" --target strata backend_test_ops backend_test_device model_test_cuda_model \
    runtime_test_load make_model
rm -rf .gpu
mkdir -p .gpu/bin .gpu/lib .gpu/testdata/models .gpu/testdata/reference/dqf32
cp build-gpu/strata build-gpu/bench/make_model .gpu/bin/
for t in backend_test_ops backend_test_device model_test_cuda_model runtime_test_load; do cp "build-gpu/tests/$t" .gpu/bin/; done
strip .gpu/bin/*
# shared libraries outside glibc, the driver and cuBLAS
for b in .gpu/bin/*; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
    libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | ld-linux* | libcuda.so* | libcublas*) ;;
    *) cp -L "$lib" .gpu/lib/ ;;
    esac
done
cp "$DATA/README.md" .gpu/testdata/
for m in "$DATA"/models/*.gguf; do
    n=$(basename "$m" .gguf)
    cp "$m" .gpu/testdata/models/
    cp "$DATA"/reference/"$n".* .gpu/testdata/reference/ 2>/dev/null || true
    cp "$DATA"/reference/dqf32/"$n".* .gpu/testdata/reference/dqf32/ 2>/dev/null || true
done
# Under 60 MiB: the largest files go (the tests skip what is absent, saying so): the micro
# models' F32, F16, BF16 and Q8_0 copies (the stories260K ones of the same types stay) and
# llama-2-tiny-random; every block type keeps a micro model.
for n in micro-llama-F32 micro-qwen2-F32 micro-qwen3-F32 micro-llama-F16 micro-llama-BF16 micro-llama-Q8_0 \
    micro-qwen2-Q8_0 micro-qwen3-Q8_0 llama-2-tiny-random; do
    rm -f .gpu/testdata/models/$n.gguf .gpu/testdata/reference/$n.* .gpu/testdata/reference/dqf32/$n.*
done
du -sh .gpu
