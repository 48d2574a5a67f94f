#!/usr/bin/env bash
# make run: rayfleet on the embedded simulated cluster, end to end.
#
# `rayfleetctl up --sim --detach` starts kubesim (a Kubernetes API server with simulated nodes on
# 127.0.0.1), installs the ray.io CRDs and starts every rayfleet service that is built. Then
# examples/raycluster.yaml is applied with kubectl and its progress shown until the RayCluster is
# `ready`; then its pods and what rayfleet did. Everything lives under .state/run/ (logs in
# .state/run/logs/). Interactive: runs until Ctrl-C; otherwise stops at once. `rayfleetctl down`
# stops everything in both cases.
#   RUN_TIMEOUT  seconds to wait for `ready` (default 120)
#   RUN_SCHEDULER_REPLICAS  scheduler replicas (`up --scheduler-replicas`, 1..8, default 1)
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
state="$top/.state/run"
ctl="$top/$build/bin/rayfleetctl"
timeout=${RUN_TIMEOUT:-120}
replicas=${RUN_SCHEDULER_REPLICAS:-1}
cluster=demo
ns=default

[[ -x "$ctl" ]] || { echo "run: $ctl is not built (run 'make build')" >&2; exit 1; }
"$ctl" down --state-dir "$state" >/dev/null 2>&1 || true # a previous run killed hard
rm -rf "$state"
mkdir -p "$state"

stop() { echo "run: stopping"; "$ctl" down --state-dir "$state" | sed 's/^/  /'; }
trap stop EXIT
trap 'echo; exit 0' INT TERM

echo "run: rayfleetctl up --sim --detach --scheduler-replicas $replicas --state-dir .state/run"
kubeconfig=$("$ctl" up --sim --detach --scheduler-replicas "$replicas" --state-dir "$state")
kc() { kubectl --kubeconfig "$kubeconfig" --cache-dir "$state/kubectl-cache" "$@"; }
scheduler_built=true
[[ -x "$top/$build/bin/rayfleet-scheduler" ]] || scheduler_built=false

echo
echo "run: kubectl apply -f examples/raycluster.yaml"
kc apply -f "$top/examples/raycluster.yaml"

# Progress: the RayCluster's status.state and its pods' phases, printed when they change.
echo
echo "run: waiting up to ${timeout}s for RayCluster $ns/$cluster to be ready"
start=$(date +%s)
last=""
rc_state=""
while :; do
    rc_state=$(kc get raycluster "$cluster" -n "$ns" -o jsonpath='{.status.state}' 2>/dev/null || true)
    pods=$(kc get pods -n "$ns" -l "ray.io/cluster=$cluster" --sort-by=.metadata.name \
        -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase}{" "}{end}' 2>/dev/null || true)
    now="state=${rc_state:-<none>} pods: ${pods:-<none>}"
    if [[ "$now" != "$last" ]]; then
        printf '  %3ss  %s\n' "$(( $(date +%s) - start ))" "$now"
        last=$now
    fi
    [[ "$rc_state" == ready ]] && break
    if (( $(date +%s) - start >= timeout )); then break; fi
    sleep 1
done

ready=false
echo
if [[ "$rc_state" == ready ]]; then
    ready=true
    echo "run: RayCluster $ns/$cluster is ready after $(( $(date +%s) - start ))s"
else
    echo "run: RayCluster $ns/$cluster did NOT become ready within ${timeout}s (state: ${rc_state:-none})."
    if ! $scheduler_built; then
        echo "     rayfleet-scheduler is not built yet ($build/bin/rayfleet-scheduler is missing), so"
        echo "     nothing reconciles RayClusters: no pods are created and no status is written."
    else
        for log in "$state"/logs/scheduler*.log; do
            echo "     The scheduler runs but did not get the cluster ready; its last log lines"
            echo "     ($log):"
            tail -n 15 "$log" 2>/dev/null | sed 's/^/       | /' || true
        done
    fi
    echo "     Other logs: $state/logs/"
fi

echo
echo "run: kubectl get pods -o wide -l ray.io/cluster=$cluster"
kc get pods -n "$ns" -l "ray.io/cluster=$cluster" -o wide 2>&1 | sed 's/^/  /'
echo
echo "run: rayfleetctl status"
"$ctl" status --state-dir "$state" | sed 's/^/  /'
echo
echo "run: what rayfleet did"
if compgen -G "$state/scheduler*.db" >/dev/null; then
    "$ctl" audit --state-dir "$state" | sed 's/^/  /' || true
elif [[ -f "$state/logs/scheduler.log" ]]; then
    echo "  (no audit database yet; the scheduler's log lines about API writes)"
    grep -E '"(create|update|patch|delete|status)' "$state/logs/scheduler.log" | tail -n 40 \
        | sed 's/^/  /' || echo "  (none)"
else
    echo "  nothing: no scheduler ran (see above)."
fi

echo
echo "run: use the simulated cluster with:"
echo "       kubectl --kubeconfig $kubeconfig get rayclusters,pods"
echo "       $build/bin/rayfleetctl status --state-dir .state/run"
if [[ -t 0 ]]; then
    echo "run: Ctrl-C stops everything."
    while sleep 3600; do :; done
fi
$ready
