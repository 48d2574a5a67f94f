#!/usr/bin/env bash
# integration.quota: KubeRay's behaviour when a ResourceQuota refuses a RayCluster's pods (issue 18),
# on kubesim's quota admission, with the whole set (`rayfleetctl up --sim`):
#  1. kubesim: `kubectl get quota` / `describe quota` show used/hard; a pod over the quota is
#     refused with kube-apiserver's 403 Status, body compared byte for byte (and on a server-side
#     dry run); a LimitRange fills a
#     pod's missing resources (kubernetes.io/limit-ranger) and refuses one over its max;
#  2. a quota-blocked head: ReplicaFailure True / FailedCreateHeadPod with KubeRay's message
#     (errors.Join: "FailedCreateHeadPod\n" + the API server's message), KubeRay's Warning Event
#     FailedToCreateHeadPod "Failed to create head Pod default/, <error>" (the pod object KubeRay
#     sent has no name: generateName), no worker create attempted; the attempt rate is reported;
#  3. the quota raised: head and worker created, cluster ready, ReplicaFailure gone, the quota's
#     status.used follows (requests.cpu 2/4);
#  4. quota pods=0 and every pod deleted: RayClusterProvisioned stays True, HeadPodReady False /
#     HeadPodNotFound, ReplicaFailure FailedCreateHeadPod "requested: pods=1, used: pods=0,
#     limited: pods=0";
#  5. a worker blocked (namespace wq, pods=1): the head runs, ReplicaFailure FailedCreateWorkerPod,
#     Warning Event "Failed to create worker Pod for the cluster wq/qw, <error>".
# Usage: quota_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
set -uo pipefail
ctl=${1:?usage: quota_test.sh PATH/TO/rayfleetctl}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
. "$here/../cli/testlib.sh"
tl_cell quota "$ctl"

if "$ctl" up --sim --detach --state-dir "$state" --nodes 2 --timeout 30s >/dev/null 2>"$tmp/up.err"
then ok "up"; else bad "up"; sed 's/^/    | /' "$tmp/up.err"; tl_summary; exit 1; fi
server=$(sed -n 's/^ *server: *//p' "$state/kubeconfig" | head -1)

# the RayCluster of the scenarios: head 1 CPU, one worker 1 CPU
rc_yaml() { # NAME NAMESPACE
    cat <<YAML
apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: $1
  namespace: $2
spec:
  rayVersion: "2.46.0"
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.46.0
          resources:
            requests: {cpu: "1", memory: 1Gi}
            limits: {cpu: "1", memory: 1Gi}
  workerGroupSpecs:
  - groupName: workers
    replicas: 1
    minReplicas: 1
    maxReplicas: 2
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-worker
          image: rayproject/ray:2.46.0
          resources:
            requests: {cpu: "1", memory: 1Gi}
            limits: {cpu: "1", memory: 1Gi}
YAML
}
quota_yaml() { # NAME NAMESPACE HARD-FLOW-MAP
    printf 'apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: %s, namespace: %s}\nspec:\n  hard: %s\n' "$@"
}
cond() { # CLUSTER NAMESPACE TYPE -> "status|reason|message" (message newlines as \n)
    kc_ get raycluster "$1" -n "$2" -o json 2>/dev/null | python3 -c '
import json, sys
t = sys.argv[1]
for c in json.load(sys.stdin).get("status", {}).get("conditions", []):
    if c["type"] == t:
        print("%s|%s|%s" % (c["status"], c["reason"], c.get("message", "").replace("\n", "\\n")))
' "$3"
}
events() { # OBJECT NAMESPACE
    kc_ get events -n "$2" --field-selector "involvedObject.name=$1" \
        -o jsonpath='{range .items[*]}{.type} {.reason} {.message}{"\n"}{end}' 2>/dev/null
}
export -f kc_ cond events
export tmp state

# --- 1. kubesim's quota and limit ranges ---------------------------------------------------------
quota_yaml q1 default '{requests.cpu: 500m, limits.memory: 4Gi, pods: "10"}' >"$tmp/q1.yaml"
kc_ apply -f "$tmp/q1.yaml" >/dev/null || bad "the quota applies"
tl_wait 5 bash -c '[[ $(kc_ get quota q1 -o jsonpath="{.status.used.pods}") == 0 ]]' ||
    bad "status.used is written"
has "kubectl get quota: NAME AGE REQUEST LIMIT" "$(kc_ get quota q1)" \
    '^NAME +AGE +REQUEST +LIMIT$' '^q1 +[0-9]+s +pods: 0/10, requests.cpu: 0/500m +limits.memory: 0/4Gi$'
has "kubectl describe quota: used and hard" "$(kc_ describe quota q1)" \
    '^limits.memory +0 +4Gi$' '^pods +0 +10$' '^requests.cpu +0 +500m$'
# the API server's refusal, body byte for byte (kube-apiserver's Status for admission.NewForbidden)
python3 - "$server" >"$tmp/raw.txt" <<'PY'
import json, sys, urllib.request, urllib.error
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
       "spec": {"containers": [{"name": "c1", "image": "x",
                                "resources": {"requests": {"cpu": "1"},
                                              "limits": {"memory": "1Gi"}}}]}}
req = urllib.request.Request(sys.argv[1] + "/api/v1/namespaces/default/pods",
                             data=json.dumps(pod).encode(), method="POST",
                             headers={"Content-Type": "application/json"})
try:
    urllib.request.urlopen(req)
    print("201")
except urllib.error.HTTPError as e:
    print(e.code)
    print(e.read().decode())
PY
want='{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"probe\" is forbidden: exceeded quota: q1, requested: requests.cpu=1, used: requests.cpu=0, limited: requests.cpu=500m","reason":"Forbidden","details":{"name":"probe","kind":"pods"},"code":403}'
got=$(sed -n 2p "$tmp/raw.txt")
if [[ $(head -1 "$tmp/raw.txt") == 403 && $(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), separators=(",", ":")))' "$got" 2>/dev/null) == "$want" ]]
then ok "403 Forbidden Status, byte-equal to kube-apiserver's"; else
    bad "403 Forbidden Status (got:)"; sed 's/^/    | /' "$tmp/raw.txt"; echo "    want: $want"; fi
has "a server-side dry run is refused the same way" \
    "$(kc_ run probe --image=x --restart=Never --dry-run=server --overrides='{"spec":{"containers":[{"name":"probe","image":"x","resources":{"requests":{"cpu":"1"},"limits":{"memory":"1Gi"}}}]}}' 2>&1)" \
    'pods "probe" is forbidden: exceeded quota: q1, requested: requests.cpu=1, used: requests.cpu=0, limited: requests.cpu=500m$'
printf '{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"g-"},"spec":{"containers":[{"name":"c","image":"x","resources":{"requests":{"cpu":"1"},"limits":{"memory":"1Gi"}}}]}}' >"$tmp/gen.json"
has "a dry run with generateName names the prefix (admission.NewForbidden)" \
    "$(kc_ create -f "$tmp/gen.json" --dry-run=server 2>&1)" 'pods "g-" is forbidden: exceeded quota: q1, '
out=$(kc_ run nolimits --image=x --restart=Never 2>&1)
has "kubectl run: must specify" "$out" \
    '^Error from server \(Forbidden\): pods "nolimits" is forbidden: failed quota: q1: must specify limits.memory for: nolimits; requests.cpu for: nolimits$'
cat >"$tmp/lr.yaml" <<'YAML'
apiVersion: v1
kind: LimitRange
metadata: {name: lr, namespace: default}
spec:
  limits:
  - type: Container
    max: {memory: 2Gi}
    defaultRequest: {cpu: 100m}
YAML
kc_ apply -f "$tmp/lr.yaml" >/dev/null || bad "the LimitRange applies"
has "kubectl get limits: NAME CREATED AT" "$(kc_ get limits)" '^NAME +CREATED AT$' '^lr +20[0-9-]+T'
if kc_ run defaulted --image=x --restart=Never >/dev/null 2>"$tmp/run.err"; then
    ok "a pod without resources is admitted with the LimitRange's defaults"
    has "LimitRanger filled requests and limits" \
        "$(kc_ get pod defaulted -o jsonpath='{.spec.containers[0].resources}{"\n"}{.metadata.annotations.kubernetes\.io/limit-ranger}')" \
        '"limits":\{"memory":"2Gi"\}' '"requests":\{"cpu":"100m","memory":"2Gi"\}' \
        '^LimitRanger plugin set: cpu, memory request for container defaulted; memory limit for container defaulted$'
    tl_wait 5 bash -c '[[ $(kc_ get quota q1 -o jsonpath="{.status.used.requests\.cpu}") == 100m ]]' &&
        ok "the quota's used follows the pod (requests.cpu 100m)" || bad "the quota's used follows the pod"
    kc_ delete pod defaulted --grace-period=0 --force >/dev/null 2>&1
else bad "a pod without resources is admitted (LimitRange)"; sed 's/^/    | /' "$tmp/run.err"; fi
cat >"$tmp/big.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  containers:
  - {name: c1, image: x, resources: {requests: {cpu: 100m}, limits: {memory: 3Gi}}}
YAML
has "LimitRange max: kube's message" "$(kc_ create -f "$tmp/big.yaml" 2>&1)" \
    'pods "big" is forbidden: maximum memory usage per Container is 2Gi, but limit is 3Gi$'
kc_ delete limitrange lr >/dev/null

# --- 2. the head blocked by the quota --------------------------------------------------------
rc_yaml qa default >"$tmp/qa.yaml"
kc_ apply -f "$tmp/qa.yaml" >/dev/null || bad "the RayCluster applies"
# (the API server's message names the generated pod; rayfleet cuts it back to the generateName
# prefix so that every attempt's message, status and Event are the same: issue 17)
msg_head='pods "qa-head-" is forbidden: exceeded quota: q1, requested: requests.cpu=1, used: requests.cpu=0, limited: requests.cpu=500m'
if tl_wait 15 bash -c '[[ $(cond qa default RayClusterReplicaFailure) == True\|FailedCreateHeadPod* ]]'
then ok "ReplicaFailure is True"; else bad "ReplicaFailure is True"; fi
has "ReplicaFailure: FailedCreateHeadPod, KubeRay's errors.Join message" \
    "$(cond qa default RayClusterReplicaFailure)" "^True\|FailedCreateHeadPod\|FailedCreateHeadPod\\\\n${msg_head}$"
has "HeadPodReady False/HeadPodNotFound" "$(cond qa default HeadPodReady)" '^False\|HeadPodNotFound\|Head Pod not found$'
has "RayClusterProvisioned False while never provisioned" "$(cond qa default RayClusterProvisioned)" \
    '^False\|RayClusterPodsProvisioning\|'
has "Warning Event FailedToCreateHeadPod with KubeRay's text" "$(events qa default)" \
    "^Warning FailedToCreateHeadPod Failed to create head Pod default/, ${msg_head}$"
n0=$(events qa default | grep -c FailedToCreateHeadPod); sleep 5
n1=$(events qa default | grep -c FailedToCreateHeadPod)
# KubeRay requeues a failed reconcile with controller-runtime's per-item backoff (5 ms doubling)
# and does not reconcile on its own status writes: a handful of attempts, not a hot loop
if (( n1 - n0 <= 10 )); then ok "no hot loop: $((n1 - n0)) refused head creates in 5 s"; else
    bad "hot loop: $((n1 - n0)) refused head creates in 5 s (want <= 10)"; fi
if events qa default | grep -q FailedToCreateWorkerPod; then
    bad "no worker create while the head create fails (KubeRay returns first)"; else
    ok "no worker create while the head create fails (KubeRay returns first)"; fi
has "no pods" "$(kc_ get pods -l ray.io/cluster=qa --no-headers 2>&1)" "No resources found"

# --- 3. the quota raised: recovery ------------------------------------------------------------------
quota_yaml q1 default '{requests.cpu: "4", limits.memory: 4Gi, pods: "10"}' >"$tmp/q1.yaml"
kc_ apply -f "$tmp/q1.yaml" >/dev/null || bad "the quota is raised"
ready() { [[ $(kc_ get raycluster qa -o jsonpath='{.status.state}' 2>/dev/null) == ready ]]; }
export -f ready
if tl_wait 30 ready; then ok "recovered: the cluster is ready"; else bad "recovered: the cluster is ready"; fi
has "ReplicaFailure removed" "$(cond qa default RayClusterReplicaFailure)" '^$'
has "RayClusterProvisioned True" "$(cond qa default RayClusterProvisioned)" '^True\|AllPodRunningAndReadyFirstTime\|'
has "a head and a worker" "$(kc_ get pods -l ray.io/cluster=qa -L ray.io/node-type --no-headers)" \
    '^qa-head-[a-z0-9]{5} .* head$' '^qa-workers-worker-[a-z0-9]{5} .* worker$'
tl_wait 5 bash -c '[[ $(kc_ get quota q1 -o jsonpath="{.status.used.requests\.cpu}") == 2 ]]'
has "the quota's used: requests.cpu 2/4, pods 2/10" "$(kc_ get quota q1 --no-headers)" \
    'pods: 2/10, requests.cpu: 2/4 +limits.memory: 2Gi/4Gi$'

# --- 4. pods=0, every pod deleted: provisioned stays, HeadPodNotFound --------------------------------
quota_yaml q1 default '{requests.cpu: "4", limits.memory: 4Gi, pods: "0"}' >"$tmp/q1.yaml"
kc_ apply -f "$tmp/q1.yaml" >/dev/null || bad "the quota goes to pods=0"
kc_ delete pods -l ray.io/cluster=qa --grace-period=0 --force >/dev/null 2>&1
zero='^True\|FailedCreateHeadPod\|FailedCreateHeadPod\\npods "qa-head-" is forbidden: exceeded quota: q1, requested: pods=1, used: pods=0, limited: pods=0$'
export zero
if tl_wait 20 bash -c '[[ $(cond qa default RayClusterReplicaFailure) =~ $zero ]]'; then
    ok "ReplicaFailure FailedCreateHeadPod: requested: pods=1, used: pods=0, limited: pods=0"; else
    bad "ReplicaFailure FailedCreateHeadPod under pods=0 (got: $(cond qa default RayClusterReplicaFailure))"; fi
has "RayClusterProvisioned stays True" "$(cond qa default RayClusterProvisioned)" '^True\|AllPodRunningAndReadyFirstTime\|'
has "HeadPodReady False/HeadPodNotFound" "$(cond qa default HeadPodReady)" '^False\|HeadPodNotFound\|Head Pod not found$'
has "no pods under pods=0" "$(kc_ get pods -l ray.io/cluster=qa --no-headers 2>&1)" "No resources found"
kc_ delete raycluster qa >/dev/null 2>&1

# --- 5. a worker blocked ---------------------------------------------------------------------------
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: wq}\n' | kc_ apply -f - >/dev/null ||
    bad "namespace wq"
quota_yaml q2 wq '{pods: "1"}' | kc_ apply -f - >/dev/null || bad "quota q2 applies"
tl_wait 5 bash -c '[[ $(kc_ get quota q2 -n wq -o jsonpath="{.status.used.pods}") == 0 ]]'
rc_yaml qw wq | kc_ apply -f - >/dev/null || bad "the RayCluster qw applies"
msg_w='pods "qw-workers-worker-" is forbidden: exceeded quota: q2, requested: pods=1, used: pods=1, limited: pods=1'
export msg_w
if tl_wait 20 bash -c '[[ $(cond qw wq RayClusterReplicaFailure) =~ ^True\|FailedCreateWorkerPod\|FailedCreateWorkerPod\\n$msg_w$ ]]'
then ok "ReplicaFailure FailedCreateWorkerPod with KubeRay's message"; else
    bad "ReplicaFailure FailedCreateWorkerPod (got: $(cond qw wq RayClusterReplicaFailure))"; fi
has "Warning Event FailedToCreateWorkerPod with KubeRay's text" "$(events qw wq)" \
    "^Warning FailedToCreateWorkerPod Failed to create worker Pod for the cluster wq/qw, $msg_w$"
has "the head was created" "$(kc_ get pods -n wq -l ray.io/node-type=head --no-headers)" '^qw-head-[a-z0-9]{5} '

tl_summary
