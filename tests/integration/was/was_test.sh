#!/usr/bin/env bash
# integration.was: KubeRay's KubernetesWAS gate (kubernetes-was-v1alpha2) on kubesim.
#  1. kubesim at 1.36 serves scheduling.k8s.io/v1alpha2 (workloads, podgroups); the set starts
#     with the gate alone;
#  2. a RayCluster labelled ray.io/gang-scheduling-enabled: the Workload <cluster> and the
#     PodGroup <cluster>-cluster field by field (label, controller ownerReference, controllerRef,
#     the "cluster" template, gang minCount = 1 + workers × numOfHosts, the template reference),
#     every pod with schedulerName default-scheduler and spec.schedulingGroup.podGroupName; a
#     RayCluster without the label: none of these, pods without schedulingGroup;
#  3. a scale change: both recreated (new uids) with the new minCount;
#  4. the PodGroup given the protection finalizer, then the label set to "false": both deleted
#     (the finalizer removed first); the label back: both again; autoscaling on: both deleted;
#  5. the RayCluster deleted: both collected with it;
#  6. kubesim at 1.32 (no scheduling.k8s.io/v1alpha2): a gang cluster gets no pods and a Warning
#     FailedToCreateWorkload; a cluster without the label is ready.
# Usage: was_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
set -uo pipefail
ctl=${1:?usage: was_test.sh PATH/TO/rayfleetctl}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
. "$here/../cli/testlib.sh"
tl_cell was "$ctl"
start=$(date +%s)
up_() {
    "$ctl" up --sim --detach --state-dir "$state" --nodes 2 --timeout 30s "$@" >/dev/null \
        2>"$tmp/up.err"
}
# A RayCluster NAME with worker replicas R (numOfHosts 2) and the extra metadata lines LABELS.
rc() {
    cat <<YAML
apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: $1
$3
spec:
  rayVersion: "2.46.0"
  enableInTreeAutoscaling: ${4:-false}
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.46.0
          resources: {requests: {cpu: 100m, memory: 256Mi}}
  workerGroupSpecs:
  - groupName: wg
    replicas: $2
    minReplicas: 0
    maxReplicas: 8
    numOfHosts: 2
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-worker
          image: rayproject/ray:2.46.0
          resources: {requests: {cpu: 100m, memory: 256Mi}}
YAML
}
gang=$'  labels:\n    ray.io/gang-scheduling-enabled: "true"'
objs() { kc_ get workloads,podgroups -o jsonpath='{range .items[*]}{.kind}/{.metadata.name}{"\n"}{end}' 2>&1; }
mins() { # Workload minCount, PodGroup minCount, Workload uid, PodGroup uid
    printf '%s %s %s %s' "$(kc_ get workload gang -o jsonpath='{.spec.podGroupTemplates[0].schedulingPolicy.gang.minCount}' 2>/dev/null)" \
        "$(kc_ get podgroup gang-cluster -o jsonpath='{.spec.schedulingPolicy.gang.minCount}' 2>/dev/null)" \
        "$(kc_ get workload gang -o jsonpath='{.metadata.uid}' 2>/dev/null)" \
        "$(kc_ get podgroup gang-cluster -o jsonpath='{.metadata.uid}' 2>/dev/null)"
}
export -f kc_ objs mins
export tmp state

# --- 1. the gate alone starts; the API is served ------------------------------------------------
if up_ --sim-k8s-minor 36 --feature-gates KubernetesWAS=true; then
    ok "up with the gate KubernetesWAS alone"
else
    bad "up with the gate KubernetesWAS alone"; sed 's/^/    | /' "$tmp/up.err"; tl_summary; exit 1
fi
has "discovery: Workload and PodGroup in scheduling.k8s.io/v1alpha2" \
    "$(kc_ api-resources --api-group scheduling.k8s.io --no-headers 2>&1 | tr -s ' ' | sort)" \
    '^podgroups scheduling.k8s.io/v1alpha2 true PodGroup
workloads scheduling.k8s.io/v1alpha2 true Workload$'

# --- 2. the objects and the pods ------------------------------------------------------------------
rc gang 2 "$gang" | kc_ apply -f - >/dev/null || bad "the gang RayCluster applies"
rc plain 1 "" | kc_ apply -f - >/dev/null || bad "the plain RayCluster applies"
npods() { kc_ get pods -l ray.io/cluster="$1" --no-headers 2>/dev/null | grep -c Running; }
export -f npods
tl_wait 30 bash -c '[[ $(npods gang) == 5 && $(npods plain) == 3 ]]' &&
    ok "gang: 5 pods running, plain: 3" || bad "gang: 5 pods running, plain: 3 (got $(npods gang), $(npods plain))"
kc_ get rayclusters gang -o json >"$tmp/rc.json"
kc_ get workloads,podgroups -o json >"$tmp/objs.json"
kc_ get pods -o json >"$tmp/pods.json"
python3 - "$tmp/rc.json" "$tmp/objs.json" "$tmp/pods.json" <<'PY' >"$tmp/checks.txt"
import json, sys
rc = json.load(open(sys.argv[1]))
objs = json.load(open(sys.argv[2]))["items"]
pods = json.load(open(sys.argv[3]))["items"]
def say(ok, what):
    print(("ok " if ok else "FAIL ") + what)
byk = {o["kind"]: o for o in objs}
say(sorted((o["kind"], o["metadata"]["name"]) for o in objs) ==
    [("PodGroup", "gang-cluster"), ("Workload", "gang")],
    "exactly the Workload gang and the PodGroup gang-cluster: %s" %
    [(o["kind"], o["metadata"]["name"]) for o in objs])
ref = [{"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": "gang",
        "uid": rc["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
policy = {"gang": {"minCount": 5}}
w, pg = byk.get("Workload", {}), byk.get("PodGroup", {})
for o in (w, pg):
    k = o.get("kind", "?")
    say(o.get("apiVersion") == "scheduling.k8s.io/v1alpha2", k + ": apiVersion")
    say(o["metadata"].get("labels") == {"ray.io/cluster": "gang"}, k + ": labels " +
        json.dumps(o["metadata"].get("labels")))
    say(o["metadata"].get("ownerReferences") == ref, k + ": controller ownerReference " +
        json.dumps(o["metadata"].get("ownerReferences")))
say(w.get("spec") == {"controllerRef": {"apiGroup": "ray.io", "kind": "RayCluster", "name": "gang"},
                      "podGroupTemplates": [{"name": "cluster", "schedulingPolicy": policy}]},
    "Workload: spec " + json.dumps(w.get("spec")))
say(pg.get("spec") == {"podGroupTemplateRef": {"workload": {"workloadName": "gang",
                                                            "podGroupTemplateName": "cluster"}},
                       "schedulingPolicy": policy},
    "PodGroup: spec " + json.dumps(pg.get("spec")))
for p in pods:
    c = p["metadata"]["labels"].get("ray.io/cluster")
    n = p["metadata"]["name"]
    if c == "gang":
        say(p["spec"].get("schedulerName") == "default-scheduler", n + ": schedulerName")
        say(p["spec"].get("schedulingGroup") == {"podGroupName": "gang-cluster"},
            n + ": schedulingGroup " + json.dumps(p["spec"].get("schedulingGroup")))
    else:
        say("schedulingGroup" not in p["spec"] and
            p["spec"].get("schedulerName", "default-scheduler") == "default-scheduler",
            n + ": no schedulingGroup (not gang-labelled)")
PY
while read -r r what; do [[ $r == ok ]] && ok "$what" || bad "$what"; done <"$tmp/checks.txt"

# --- 3. a scale change recreates both with the new minCount --------------------------------------
read -r wm pm wuid puid <<<"$(mins)"
[[ $wm == 5 && $pm == 5 ]] && ok "minCount 5 before the scale change" || bad "minCount 5 before (got $wm $pm)"
kc_ patch raycluster gang --type json \
    -p '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":3}]' >/dev/null
tl_wait 20 bash -c '[[ $(mins) == "7 7 "* ]]'
read -r wm2 pm2 wuid2 puid2 <<<"$(mins)"
[[ $wm2 == 7 && $pm2 == 7 ]] && ok "scale 2 -> 3 workers × 2 hosts: minCount 7 in both" ||
    bad "minCount 7 after the scale change (got '$wm2' '$pm2')"
[[ -n $wuid2 && $wuid2 != "$wuid" && -n $puid2 && $puid2 != "$puid" ]] &&
    ok "both recreated (new uids): immutable objects replaced, not updated" ||
    bad "both recreated (uids $wuid -> $wuid2, $puid -> $puid2)"
tl_wait 30 bash -c '[[ $(npods gang) == 7 ]]' && ok "7 gang pods" || bad "7 gang pods (got $(npods gang))"

# --- 4. skipped: label "false", then autoscaling ------------------------------------------------
kc_ patch podgroup gang-cluster --type merge \
    -p '{"metadata":{"finalizers":["scheduling.k8s.io/podgroup-protection"]}}' >/dev/null &&
    ok "the PodGroup carries the protection finalizer" || bad "protection finalizer patched"
kc_ label raycluster gang ray.io/gang-scheduling-enabled=false --overwrite >/dev/null
tl_wait 20 bash -c '[[ -z $(objs) ]]' && ok "label false: Workload and PodGroup deleted (finalizer removed)" ||
    bad "label false: both deleted (left: $(objs | tr '\n' ' '))"
kc_ label raycluster gang ray.io/gang-scheduling-enabled=true --overwrite >/dev/null
tl_wait 20 bash -c '[[ $(mins) == "7 7 "* ]]' && ok "label back: both created again" ||
    bad "label back: both created again (got $(mins))"
kc_ patch raycluster gang --type merge -p '{"spec":{"enableInTreeAutoscaling":true}}' >/dev/null
tl_wait 20 bash -c '[[ -z $(objs) ]]' && ok "autoscaling on: both deleted" ||
    bad "autoscaling on: both deleted (left: $(objs | tr '\n' ' '))"
kc_ patch raycluster gang --type merge -p '{"spec":{"enableInTreeAutoscaling":false}}' >/dev/null
tl_wait 20 bash -c '[[ $(mins) == "7 7 "* ]]' && ok "autoscaling off: both again" ||
    bad "autoscaling off: both again (got $(mins))"
has "audit: the scheduler's creates and deletes of both kinds" \
    "$("$ctl" audit --state-dir "$state" 2>&1 | awk '$6 ~ /^(Workload|PodGroup)$/ {print $4, $6}' | sort -u | tr '\n' ' ')" \
    'create PodGroup create Workload delete PodGroup delete Workload update PodGroup'

# --- 5. the RayCluster deleted: collected with it -------------------------------------------------
kc_ delete raycluster gang --wait=false >/dev/null
tl_wait 20 bash -c '[[ -z $(objs) ]]' && ok "RayCluster deleted: Workload and PodGroup collected" ||
    bad "RayCluster deleted: both collected (left: $(objs | tr '\n' ' '))"
"$ctl" down --state-dir "$state" --timeout 2s >/dev/null 2>&1

# --- 6. without the API (kubesim 1.32) ------------------------------------------------------------
rm -rf "$state"
if up_ --feature-gates KubernetesWAS=true; then ok "up with the gate on K8s 1.32"; else
    bad "up with the gate on K8s 1.32"; sed 's/^/    | /' "$tmp/up.err"; fi
has "no scheduling.k8s.io/v1alpha2 on 1.32" "$(kc_ get workloads 2>&1)" \
    "the server doesn't have a resource type \"workloads\""
rc gang 1 "$gang" | kc_ apply -f - >/dev/null
rc plain 1 "" | kc_ apply -f - >/dev/null
tl_wait 30 bash -c '[[ $(npods plain) == 3 ]]' && ok "1.32: the plain cluster's 3 pods run" ||
    bad "1.32: the plain cluster's pods (got $(npods plain))"
ev() { kc_ get events --field-selector involvedObject.name=gang \
        -o jsonpath='{range .items[*]}{.type} {.reason} {.message}{"\n"}{end}' 2>/dev/null; }
export -f ev
tl_wait 15 bash -c 'ev | grep -q FailedToCreateWorkload'
has "1.32: a Warning names the missing API" "$(ev)" \
    '^Warning FailedToCreateWorkload Failed to create Workload default/gang.*could not find the requested resource'
has "1.32: the gang cluster has no pods" "$(kc_ get pods -l ray.io/cluster=gang --no-headers 2>&1)" \
    "No resources found"

echo "took $(($(date +%s) - start)) s"
tl_summary
