#!/usr/bin/env bash
# integration.busgap: nothing is lost across a bus gap (issue 17). `rayfleetctl up --sim` starts
# kubesim, rayfleet-bus, the watcher and the scheduler; a first RayCluster becomes ready; then
# rayfleet-bus is killed (SIGKILL, as a crash), a RayCluster is created while it is down (the
# watcher stores it and publishes into nothing), and after 5 s the bus is started again with the
# same command line, environment and directory. The scheduler must see the gap (the watcher's
# heartbeats skipped, or the forwarder restarted) and rescan: the RayCluster becomes ready within
# 30 s of the bus coming back, not at the 5-minute resync. Prints the latency measured.
# Usage: busgap_test.sh PATH/TO/rayfleetctl PATH/TO/raycluster.yaml (RF_KEEP_TMP=1 keeps the
# state directory and its logs for a look afterwards)
set -uo pipefail
ctl=${1:?usage: busgap_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
yaml=${2:?usage: busgap_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
source "$here/../cli/testlib.sh"
tmp=$(mktemp -d /tmp/rfbusgap.XXXXXX)
state="$tmp/state"
bus2_pid=

finish() {
    # The bus started again here is not in the pid file: stop it by its pid.
    if [[ -n $bus2_pid ]]; then
        kill "$bus2_pid" 2>/dev/null
        wait "$bus2_pid" 2>/dev/null
    fi
    "$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1 || true
    tl_summary; local r=$?
    [[ -n ${RF_KEEP_TMP:-} ]] || rm -rf "$tmp"
    return $r
}
trap 'finish; exit $?' EXIT

command -v kubectl >/dev/null || { bad "kubectl is not installed"; exit 1; }

kubeconfig=$("$ctl" up --sim --detach --state-dir "$state" --timeout 60s 2>"$tmp/up.err")
if [[ $? -ne 0 || ! -s "$kubeconfig" ]]; then bad "up --sim --detach"; cat "$tmp/up.err"; exit 1; fi
ok "up --sim --detach"
kc() { kubectl --kubeconfig "$kubeconfig" --cache-dir "$tmp/kcache" "$@"; }
ready() { [[ $(kc get raycluster "$1" -o jsonpath='{.status.state}' 2>/dev/null) == ready ]]; }
# A RayCluster named $1 from the example manifest.
apply_rc() { sed "s/^  name: demo$/  name: $1/" "$yaml" | kc apply -f - >/dev/null; }

# --- before: the path works ---------------------------------------------------------------
apply_rc gap-before && ok "apply gap-before" || bad "apply gap-before"
if tl_wait 60 ready gap-before; then ok "gap-before is ready"; else bad "gap-before is ready"; exit 1; fi

# --- the bus goes away for 5 s; a RayCluster is created meanwhile --------------------------
bus_pid=$(awk '$1 == "bus" {print $2}' "$state/pids")
[[ -n $bus_pid && -e /proc/$bus_pid ]] && ok "bus pid $bus_pid" || { bad "bus pid in $state/pids"; exit 1; }
mapfile -d '' bus_argv <"/proc/$bus_pid/cmdline"
bus_cwd=$(readlink "/proc/$bus_pid/cwd")
kill -KILL "$bus_pid"
tl_wait 5 bash -c "! kill -0 $bus_pid" && ok "bus killed" || bad "bus killed"
t_down=$(date +%s%N)
sleep 1
apply_rc gap-during && ok "apply gap-during while the bus is down" || bad "apply gap-during"
# Give the watcher time to store it and publish into the void.
while (( ($(date +%s%N) - t_down) / 1000000 < 5000 )); do sleep 0.1; done
(cd "$bus_cwd" && exec "${bus_argv[@]}" >>"$state/logs/bus.log" 2>&1) &
bus2_pid=$!
t_up=$(date +%s%N)
ok "bus started again (pid $bus2_pid)"

# --- after: the RayCluster becomes ready soon, from a rescan --------------------------------
if tl_wait 30 ready gap-during; then
    ms=$((($(date +%s%N) - t_up) / 1000000))
    ok "gap-during is ready ${ms} ms after the bus came back"
    echo "busgap: latency_ms=$ms"
else
    bad "gap-during is ready within 30 s of the bus coming back (state: $(kc get raycluster gap-during -o jsonpath='{.status.state}' 2>&1))"
    tail -n 30 "$state/logs/scheduler.log" | sed 's/^/    | /'
fi
# Whether the watcher's events queued in its socket (a connecting ZeroMQ socket keeps its queue
# across a reconnect) or were lost with the old connection, the forwarder's restart is a gap
# (its epoch changed): reported once its first heartbeat after the restart comes through.
if tl_wait 10 grep -q '"msg":"bus gap"' "$state/logs/scheduler.log"; then
    has "the scheduler logged the gap" "$(grep '"bus gap"' "$state/logs/scheduler.log")" \
        '"msg":"bus gap","source":"bus","kind":"restart"'
else
    bad "the scheduler logged the gap"
fi
sport=$(sed -n 's/.*scheduler ready (pid [0-9]*, \/readyz 200, health port \([0-9]*\)).*/\1/p' "$tmp/up.err")
if [[ -n $sport ]] && command -v curl >/dev/null; then
    has "the scheduler counts the gap in rayfleet_bus_gaps_total" \
        "$(curl -s "http://127.0.0.1:$sport/metrics" | grep '^rayfleet_bus_gaps_total')" \
        '^rayfleet_bus_gaps_total\{.*\} [1-9]'
fi
