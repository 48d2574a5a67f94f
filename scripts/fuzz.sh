#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz (clang, -DRF_FUZZ=ON, in build-fuzz/) and runs each
# for SECONDS (default 20) on a copy of its seed corpus tests/fuzz/corpus_NAME/, at most JOBS (default
# 2) at a time. Fails, naming the harness and its crash file, when any of them finds a crash, a
# sanitizer report, a timeout, an out-of-memory or a violated property (the harnesses abort).
#   scripts/fuzz.sh [SECONDS] [NAME...]     e.g. scripts/fuzz.sh 600 jproj envwire
# Environment: FUZZ_DIR (build dir, default build-fuzz), JOBS, FUZZ_OUT (logs, new corpus entries
# and crash files; default $FUZZ_DIR/fuzz-out). The last line of each log is libFuzzer's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-20}
shift || true
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS] [NAME...]" >&2; exit 2; }
FUZZ_DIR=${FUZZ_DIR:-build-fuzz}
JOBS=${JOBS:-2}
OUT=${FUZZ_OUT:-$FUZZ_DIR/fuzz-out}

./scripts/deps.sh --build-only
./scripts/deps.sh --fuzz
CC=clang cmake -S . -B "$FUZZ_DIR" -DCMAKE_BUILD_TYPE=Debug -DRF_FUZZ=ON -DRF_WERROR=ON >/dev/null
cmake --build "$FUZZ_DIR" --target fuzzers -j"$JOBS" >/dev/null

if [[ $# -gt 0 ]]; then
    names=("$@")
else
    names=()
    for f in tests/fuzz/fuzz_*.c; do
        n=${f##*/fuzz_}
        names+=("${n%.c}")
    done
fi
mkdir -p "$OUT"

# One harness: the seed corpus is read-only input; new entries go to $OUT/corpus_NAME.
run_one() {
    local name=$1 bin="$FUZZ_DIR/bin/fuzz_$1" work="$OUT/corpus_$1"
    mkdir -p "$work" "$OUT/crash_$name"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$OUT/crash_$name/" \
        "$work" "tests/fuzz/corpus_$name" >"$OUT/$name.log" 2>&1
}

status=0
pids=()
pid_names=()
finish() {
    local i=$1
    if wait "${pids[$i]}"; then
        echo "fuzz ${pid_names[$i]}: ok ($(grep -E '^(#[0-9]+[[:space:]]+DONE|Done )' "$OUT/${pid_names[$i]}.log" | tail -1))"
    else
        status=1
        echo "fuzz ${pid_names[$i]}: FAILED, see $OUT/${pid_names[$i]}.log and $OUT/crash_${pid_names[$i]}/"
        grep -E 'ERROR|SUMMARY|runtime error|fuzz_.*\.c:[0-9]+' "$OUT/${pid_names[$i]}.log" | head -8
    fi
}
for name in "${names[@]}"; do
    [[ -f tests/fuzz/fuzz_$name.c ]] || { echo "fuzz: no harness tests/fuzz/fuzz_$name.c" >&2; exit 2; }
    if [[ ${#pids[@]} -ge $JOBS ]]; then
        finish 0
        pids=("${pids[@]:1}")
        pid_names=("${pid_names[@]:1}")
    fi
    run_one "$name" &
    pids+=($!)
    pid_names+=("$name")
done
for i in "${!pids[@]}"; do
    finish "$i"
done
exit $status
