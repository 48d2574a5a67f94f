#!/usr/bin/env bash
# ab-scale: the same bench-scale run by two builds, interleaved A B B A ..., one table, medians and
# new/old ratios side by side (a refactor must not cost speed or memory).
#   bench/ab-scale.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS] [bench-scale flags...]
# OLD_BIN_DIR is the build/bin of another checkout (bench-scale finds deploy/crds two levels up).
# Default flags: --clusters 10000 --replicas 1 --latencies 0 --modes unpaced. ROUNDS (default 2)
# pairs; each run prints its row; the summary gives the medians of ready time, pods/s, rayfleet's
# total CPU and peak RSS, and the scheduler's CPU and peak RSS.
set -euo pipefail
old=${1:?usage: ab-scale.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS] [flags...]}
new=${2:?usage: ab-scale.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS] [flags...]}
rounds=${3:-2}
shift $(($# < 3 ? $# : 3))
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(--clusters 10000 --replicas 1 --latencies 0 --modes unpaced)
for d in "$old" "$new"; do
    [ -x "$d/bench-scale" ] || { echo "ab-scale: no bench-scale in $d" >&2; exit 2; }
done
case $rounds in '' | *[!0-9]* | 0) echo "ab-scale: ROUNDS must be a positive integer" >&2; exit 2 ;; esac
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { # label dir
    local log
    log=$("$2/bench-scale" "${flags[@]}" 2>&1) || { echo "$log" >&2; echo "ab-scale: $1 run failed" >&2; exit 1; }
    # the rayfleet row (mode paced|unpaced with a replica count) and its split line
    echo "$log" | awk -v who="$1" '
        $3 == "unpaced" || $3 == "paced" { row = $0; ready = $4; pods = $5; rss = $10; cpu = $11 }
        /split:/ && row != "" {
            for (i = 1; i <= NF; i++) {
                if ($i == "schedulers") { scpu = $(i + 1); srss = $(i + 4) }
                if ($i == "watcher") { wcpu = $(i + 1); wrss = $(i + 4) }
            }
            printf "%s %s %s %s %s %s %s %s %s\n", who, ready, pods, rss, cpu, scpu, srss, wcpu, wrss
            row = ""
        }' | tee -a "$out"
}
echo "ab-scale: bench-scale ${flags[*]}, $rounds round(s) A B B A"
echo "build ready_s pods/s rss_MB cpu_s sched_cpu_s sched_MB watcher_cpu_s watcher_MB"
for ((i = 0; i < rounds; i++)); do
    if ((i % 2 == 0)); then run old "$old"; run new "$new"; else run new "$new"; run old "$old"; fi
done
awk '
    function med(who, col,   n, i, j, t, v) {
        n = 0
        for (i = 1; i <= NR; i++) if (w[i] == who) v[++n] = c[i, col]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    { w[NR] = $1; for (k = 2; k <= NF; k++) c[NR, k] = $k + 0 }
    END {
        split("ready_s pods/s rss_MB cpu_s sched_cpu_s sched_MB watcher_cpu_s watcher_MB", names, " ")
        printf "\n%-14s %10s %10s %9s\n", "median", "old", "new", "new/old"
        for (k = 2; k <= 9; k++) {
            o = med("old", k); n = med("new", k)
            printf "%-14s %10.1f %10.1f %9.2f\n", names[k - 1], o, n, o ? n / o : 0
        }
    }' "$out"
