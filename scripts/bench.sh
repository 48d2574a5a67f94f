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
# bench-scale's full matrix (1/2/4 replicas x paced/unpaced x 0/20 ms, 2,000 RayClusters) takes
# well over ten minutes here; `make bench` runs a smaller cut of it. For the issue's figure:
#   build/bin/bench-scale --clusters 10000
for b in "${benches[@]}"; do
    echo "== $(basename "$b")"
    case "$(basename "$b")" in
    bench-scale) "$b" --clusters 1000 --replicas 1,4 --modes unpaced --latencies 0,20 ;;
    bench-rayjob) "$b" --rayjobs 1000 ;; # the issue's figure: build/bin/bench-rayjob --rayjobs 10000
    bench-rayservice) "$b" --rayservices 200 ;; # the issue's figure: build/bin/bench-rayservice --rayservices 1000
    bench-fleetq) "$b" --waiting 10000 --queues 10 ;; # admission decisions/s (issue 16)
    bench-fleet) "$b" --rayjobs 10000 --members 16 ;; # the issue's figure itself (a few seconds)
    *) "$b" ;;
    esac
    echo
done
# The federation run (issue 16), a script: the figure itself takes several minutes here.
echo "== bench-fedrun"
RAYJOBS=${FEDRUN_RAYJOBS:-300} "$(dirname "$0")/../bench/fedrun.sh" "$build" # the issue's figure: RAYJOBS=1000
echo
