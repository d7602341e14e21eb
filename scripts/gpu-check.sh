#!/bin/sh
# The one-command GPU check, on a machine with an NVIDIA GPU and no network, from the payload
# scripts/gpu-pack.sh built elsewhere (.gpu/ in the repository root). Runs the GPU tests
# (every CUDA op against the reference, every shared model on the GPU and split CPU+GPU and
# GPU+GPU, planned == allocated) and a benchmark (strata bench on random TinyLlama-shaped
# models), in under 5 minutes. Results on stdout and, when $OUT is set, in $OUT/.
#
# Usage: sh scripts/gpu-check.sh
set -u
cd "$(dirname "$0")/.."
[ -x .gpu/bin/strata ] || { echo "gpu-check: run scripts/gpu-pack.sh first (no .gpu/)" >&2; exit 2; }
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
# cuBLAS from the machine's CUDA (the toolkit, or the nvidia-cublas wheel)
BLAS=$(find /usr/local/cuda*/lib64 /usr/lib /opt /usr/local/lib -name 'libcublas.so.13' 2>/dev/null | head -1)
[ -n "$BLAS" ] || echo "gpu-check: libcublas.so.13 not found on this machine" >&2
export LD_LIBRARY_PATH="$PWD/.gpu/lib:$(dirname "${BLAS:-/nonexistent}"):${LD_LIBRARY_PATH:-}"
export STRATA_TESTDATA="$PWD/.gpu/testdata" STRATA_SIM_STRICT=1
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv 2>&1 | tee "$OUT/gpu.txt"
fail=0
for t in backend_test_device backend_test_ops model_test_cuda_model runtime_test_load; do
    echo "== $t"
    if ! timeout 120 ".gpu/bin/$t" >"$OUT/$t.txt" 2>&1; then fail=1; echo "FAILED: $t"; fi
    tail -25 "$OUT/$t.txt"
done
echo "== strata devices"
.gpu/bin/strata devices 2>&1 | tee "$OUT/devices.txt"
echo "== bench (cuda:0 + cpu)"
M=/tmp/strata-gpu-check
mkdir -p $M
for ty in Q4_0 Q4_K_M Q8_0 F16; do
    [ -f "$M/tl-$ty.gguf" ] || .gpu/bin/make_model "$M/tl-$ty.gguf" "$ty" >/dev/null 2>&1
    timeout 60 .gpu/bin/strata bench "$M/tl-$ty.gguf" -p 512 -n 128 -r 3 --devices cuda:0,cpu --verbose 2>&1 | tee -a "$OUT/bench.txt"
done
echo "== run --verbose (planned, allocated, measured)"
timeout 60 .gpu/bin/strata run "$M/tl-Q4_K_M.gguf" "Once upon a time" --num_predict 128 --temperature 0 \
    --devices cuda:0,cpu --verbose >/dev/null 2>"$OUT/run.txt"
cat "$OUT/run.txt"
[ $fail = 0 ] && echo "gpu-check: PASS" || echo "gpu-check: FAIL"
exit $fail
