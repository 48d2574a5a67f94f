#!/usr/bin/env bash
# make run: the main job on the embedded simulated cluster.
#
# Starts kubesim (a Kubernetes API server with simulated nodes on 127.0.0.1) and the bus, installs
# the ray.io CRDs, applies examples/raycluster.yaml with kubectl, and shows what the cluster
# holds. Everything runs under .state/run/; Ctrl-C (or the end of a non-interactive run) stops it.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
state="$top/.state/run"
rm -rf "$state"
mkdir -p "$state"
kubeconfig="$state/kubeconfig"
pids=()

stop() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT
trap 'echo; echo "run: stopping"; exit 0' INT TERM

kc() { kubectl --kubeconfig "$kubeconfig" --cache-dir "$state/kubectl-cache" "$@"; }

echo "run: starting kubesim (4 simulated nodes)"
"$top/$build/bin/kubesim" --port 0 --nodes 4 --kubeconfig-out "$kubeconfig" \
    --ready-file "$state/kubesim.ready" >"$state/kubesim.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -f "$state/kubesim.ready" ]] && break; sleep 0.1; done
[[ -f "$state/kubesim.ready" ]] || { echo "run: kubesim did not start; see $state/kubesim.log" >&2; exit 1; }

echo "run: starting the bus forwarder"
"$top/$build/bin/rayfleet-bus" --state-dir "$state" \
    --bus.frontend "ipc://$state/bus-in" --bus.backend "ipc://$state/bus-out" >"$state/bus.log" 2>&1 &
pids+=($!)

crds="$top/deploy/crds"
[[ -d "$crds" && -n "$(ls "$crds" 2>/dev/null)" ]] || crds="$top/../shared/kuberay/crd"
echo "run: installing the ray.io CRDs from $crds"
kc create -f "$crds" >/dev/null
kc wait --for=condition=Established crd --all --timeout=30s >/dev/null

echo "run: kubectl apply -f examples/raycluster.yaml"
kc apply -f "$top/examples/raycluster.yaml"
echo
kc get nodes
echo
kc get rayclusters -A
echo
kc get pods -A
echo
echo "run: the simulated cluster is up. Use it with:"
echo "       kubectl --kubeconfig $kubeconfig get rayclusters"
if [[ -t 0 ]]; then
    echo "run: Ctrl-C stops everything."
    while sleep 3600; do :; done
fi
