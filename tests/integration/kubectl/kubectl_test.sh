#!/usr/bin/env bash
# kubectl acceptance tests against kubesim (issue 3 "Done when", spec §12 items 48-54).
#   kubectl_test.sh [path/to/kubesim]
# Starts kubesim on an ephemeral port, drives it with the real kubectl (a fresh --cache-dir per
# call), prints one line per check and ends with "N passed, M failed". Exit 0 only when all pass.
set -u
KUBESIM=${1:-${RF_BIN_DIR:-build/bin}/kubesim}
SHARED=${RF_SHARED_DIR:-$(dirname "$0")/../../../../shared}
KS_NODES=2
. "$(dirname "$0")/kslib.sh"
[ -d "$SHARED/kuberay/crd" ] || { echo "FATAL: no CRDs under $SHARED/kuberay/crd"; exit 1; }

k version
expect "kubectl version shows Server Version v1.32" 0 "Server Version: v1\.32\."

k get nodes
expect "nodes are listed" 0 "kubesim-node-1"

k get namespaces
expect "default namespaces exist" 0 "kube-node-lease"

for crd in rayclusters rayjobs rayservices raycronjobs; do
    k create -f "$SHARED/kuberay/crd/ray.io_$crd.yaml"
    expect "create CRD $crd" 0 "customresourcedefinition.apiextensions.k8s.io/$crd.ray.io created"
    k wait --for=condition=Established "crd/$crd.ray.io" --timeout=20s
    expect "CRD $crd Established" 0 "condition met"
done

k api-resources --api-group=ray.io
expect "discovery lists ray.io resources" 0 "rayclusters.*ray.io/v1.*true.*RayCluster"

SAMPLE="$SHARED/kuberay/samples/ray-cluster.sample.yaml"
k apply -f "$SAMPLE"
expect "apply creates the RayCluster" 0 "raycluster.ray.io/raycluster-kuberay created"
k apply -f "$SAMPLE"
expect "second apply is configured/unchanged" 0 "raycluster.ray.io/raycluster-kuberay (configured|unchanged)"

k get rayclusters
expect "get rayclusters shows printer columns" 0 "NAME +DESIRED WORKERS +AVAILABLE WORKERS +CPUS +MEMORY +GPUS +STATUS +AGE"
expect "get rayclusters lists the object" 0 "^raycluster-kuberay "

k get raycluster raycluster-kuberay -o yaml
expect "get -o yaml returns the object" 0 "^kind: RayCluster"
expect "schema defaults applied (protocol: TCP)" 0 "protocol: TCP"

k patch raycluster raycluster-kuberay --type=merge -p '{"spec":{"rayVersion":"2.53.0"}}'
expect "patch --type=merge" 0 "raycluster.ray.io/raycluster-kuberay patched"
k patch raycluster raycluster-kuberay --type=json -p '[{"op":"replace","path":"/spec/rayVersion","value":"2.54.0"}]'
expect "patch --type=json" 0 "raycluster.ray.io/raycluster-kuberay patched"
k get raycluster raycluster-kuberay -o 'jsonpath={.spec.rayVersion}/{.metadata.generation}'
expect "patches applied and generation bumped" 0 "^2\.54\.0/3$"
k patch raycluster raycluster-kuberay -p '{"spec":{"rayVersion":"2.55.0"}}'
expect "strategic patch of a CR fails with 415" 1 "application/strategic-merge-patch\+json is not supported by ray.io/v1, Kind=RayCluster: the body of the request was in an unknown format - accepted media types include: application/json-patch\+json, application/merge-patch\+json, application/apply-patch\+yaml"

k apply --server-side -f "$SAMPLE"
expect "apply --server-side" 0 "raycluster.ray.io/raycluster-kuberay serverside-applied"

# kubectl wait on a custom resource's condition, written through /status.
RV=$(curl -s "$URL/apis/ray.io/v1/namespaces/default/rayclusters/raycluster-kuberay" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["generation"])')
curl -s -X PATCH -H 'Content-Type: application/merge-patch+json' \
    "$URL/apis/ray.io/v1/namespaces/default/rayclusters/raycluster-kuberay/status" \
    -d "{\"status\":{\"state\":\"ready\",\"observedGeneration\":$RV,\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Test\",\"message\":\"\",\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}]}}" >/dev/null
k wait --for=condition=Ready raycluster/raycluster-kuberay --timeout=20s
expect "kubectl wait --for=condition=Ready on a CR" 0 "condition met"
k get rayclusters
expect "status column shows ready" 0 "raycluster-kuberay +.*ready"

# kubectl get pods -w sees a pod created after the watch starts.
N=$((N + 1))
"$KUBECTL" --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/cache$N" get pods -w \
    --request-timeout=4s >"$WORK/watch.out" 2>&1 &
WPID=$!
sleep 1.5
k run demo-pod --image=busybox --restart=Never
expect "kubectl run creates a pod" 0 "pod/demo-pod created"
wait "$WPID"
OUT=$(cat "$WORK/watch.out"); RC=0
expect "kubectl get pods -w shows the new pod" 0 "^demo-pod +0/1 +Pending"

# kubectl delete waits for a finalizer.
k patch raycluster raycluster-kuberay --type=merge -p '{"metadata":{"finalizers":["test/hold"]}}'
expect "add a finalizer" 0 "patched"
N=$((N + 1))
"$KUBECTL" --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/cache$N" delete raycluster \
    raycluster-kuberay --timeout=30s >"$WORK/delete.out" 2>&1 &
DPID=$!
sleep 1.5
if kill -0 "$DPID" 2>/dev/null; then OUT="still waiting"; RC=0; else OUT="returned early"; RC=1; fi
expect "delete waits while the finalizer is set" 0 "still waiting"
k get raycluster raycluster-kuberay -o 'jsonpath={.metadata.deletionTimestamp}'
expect "deletionTimestamp is set" 0 "^20[0-9-]+T"
k patch raycluster raycluster-kuberay --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'
expect "remove the finalizer" 0 "patched"
wait "$DPID"; RC=$?
OUT=$(cat "$WORK/delete.out")
expect "kubectl delete returns once the finalizer is gone" 0 "raycluster.ray.io \"raycluster-kuberay\" deleted"
k get rayclusters
expect "the RayCluster is gone" 0 "No resources found in default namespace"

k delete crd rayclusters.ray.io
expect "delete a CRD" 0 "deleted"
k get rayclusters
expect "its resource disappears from discovery" 1 "the server doesn't have a resource type \"rayclusters\""

# TLS listener: a kubeconfig with certificate-authority-data and a bearer token.
"$KUBESIM" --port 0 --nodes 1 --tls-port 0 --token "t0k3n" --kubeconfig-out "$WORK/kubeconfig-tls" \
    --ready-file "$WORK/ready-tls" >"$WORK/kubesim-tls.out" 2>"$WORK/kubesim-tls.err" &
PID2=$!
for _ in $(seq 100); do [ -s "$WORK/ready-tls" ] && break; sleep 0.05; done
N=$((N + 1))
OUT=$("$KUBECTL" --kubeconfig "$WORK/kubeconfig-tls" --cache-dir "$WORK/cache$N" get nodes 2>&1)
RC=$?
expect "kubectl over TLS with a bearer token" 0 "kubesim-node-0"
TLSURL=$(grep -o 'https://[0-9.:]*' "$WORK/kubesim-tls.out")
OUT=$(curl -sk "$TLSURL/api/v1/nodes"); RC=0
expect "TLS without credentials gets 401" 0 '"code":401'
kill "$PID2" 2>/dev/null
wait "$PID2" 2>/dev/null

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
