#!/bin/sh
# Runs every fuzz target built in BUILD_DIR/fuzz for SECONDS each, after writing the seed
# corpora with fuzz_make_seeds. Each target keeps a working corpus in BUILD_DIR/fuzz/corpus/NAME
# (grown across runs) and reads its seeds from BUILD_DIR/fuzz/seeds/NAME. Fails if any target
# finds a crash, leak, timeout or sanitizer report; the reproducer is left in
# BUILD_DIR/fuzz/artifacts and the log in BUILD_DIR/fuzz/logs.
#
#   scripts/run-fuzz.sh BUILD_DIR SECONDS
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
seconds=$2
fuzz="$build/fuzz"

if [ ! -x "$fuzz/fuzz_make_seeds" ]; then
    echo "run-fuzz: $fuzz/fuzz_make_seeds not built (cmake --build $build --target fuzz_targets)" >&2
    exit 1
fi
rm -rf "$fuzz/seeds"
"$fuzz/fuzz_make_seeds" "$fuzz/seeds"
mkdir -p "$fuzz/corpus" "$fuzz/artifacts" "$fuzz/logs"

status=0
found=0
for bin in "$fuzz"/fuzz_*; do
    name=$(basename "$bin")
    [ "$name" = fuzz_make_seeds ] && continue
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    found=$((found + 1))
    target=${name#fuzz_}
    corpus="$fuzz/corpus/$target"
    mkdir -p "$corpus"
    seeds="$fuzz/seeds/$target"
    [ -d "$seeds" ] || seeds=""
    log="$fuzz/logs/$target.log"
    # -rss_limit_mb also bounds single allocations, so a header that makes the reader
    # allocate by a count it did not check is reported as a finding.
    if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$fuzz/artifacts/$target-" "$corpus" $seeds >"$log" 2>&1; then
        runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log")
        echo "fuzz $target: ok, ${runs:-?} runs in ${seconds}s, corpus $(ls "$corpus" | wc -l) inputs"
    else
        echo "fuzz $target: FAILED (log $log)" >&2
        tail -n 40 "$log" >&2
        status=1
    fi
done
if [ "$found" -eq 0 ]; then
    echo "run-fuzz: no fuzz targets in $fuzz" >&2
    exit 1
fi
exit $status
