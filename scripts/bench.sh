#!/usr/bin/env bash
# make bench: runs every benchmark program (build/bin/bench-*) in turn; each prints its own table
# of the measured path against its raw baseline, measured side by side in the same run.
set -euo pipefail
build=${1:-build}
shopt -s nullglob
benches=("$build"/bin/bench-*)
if [[ ${#benches[@]} -eq 0 ]]; then
    echo "bench: no benchmark programs in $build/bin" >&2
    exit 1
fi
for b in "${benches[@]}"; do
    echo "== $(basename "$b")"
    "$b"
    echo
done
