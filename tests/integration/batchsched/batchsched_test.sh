#!/usr/bin/env bash
# integration.batchsched: KubeRay's batch schedulers (issue 14). For each of volcano,
# scheduler-plugins, yunikorn and kai-scheduler: a fresh `rayfleetctl up --sim --batch-scheduler X`,
# the scheduler CRDs installed as a user would (our minimal stand-ins in
# tests/integration/samples/crds), the upstream samples applied unchanged with kubectl, and the
# PodGroups and pods checked field by field (KubeRay batchscheduler/*: names, owner, minMember,
# minResources, queue; schedulerName, labels, annotations). KAI: a RayJob in K8sJobMode is refused
# with KubeRay's message (Warning Event on the RayJob, no RayCluster). Volcano RayJob: its PodGroup
# at Initializing (submitter resources included), resized on completion.
# Usage: batchsched_test.sh PATH/TO/rayfleetctl
set -uo pipefail
ctl=${1:?usage: batchsched_test.sh PATH/TO/rayfleetctl}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
. "$here/../cli/testlib.sh"
samples="${RF_SHARED_DIR:-$here/../../../../shared}/kuberay/samples"
crds="$here/../samples/crds"
tl_cell bs "$ctl"
[[ -d $samples ]] || { echo "no samples at $samples"; exit 1; }
start=$(date +%s)

# up NAME: a fresh set with --batch-scheduler NAME and the PodGroup/Queue CRDs.
up() {
    "$ctl" down --state-dir "$state" --timeout 2s >/dev/null 2>&1
    rm -rf "$state"
    if "$ctl" up --sim --detach --state-dir "$state" --nodes 2 --timeout 40s \
        --batch-scheduler "$1" >/dev/null 2>"$tmp/up.err"; then
        ok "up --batch-scheduler $1"
    else
        bad "up --batch-scheduler $1"; sed 's/^/    | /' "$tmp/up.err"; return 1
    fi
    has "rayfleetctl passes --batch-scheduler $1 to the scheduler" \
        "$(tr '\0' ' ' </proc/"$(awk '$1=="scheduler" {print $2}' "$state/pids")"/cmdline)" \
        "--batch-scheduler $1"
    kc_ apply -f "$crds/volcano-queue.yaml" -f "$crds/volcano-podgroup.yaml" \
        -f "$crds/scheduler-plugins-podgroup.yaml" -f "$crds/kai-queue.yaml" >/dev/null &&
        kc_ wait --for=condition=Established --timeout=20s crd/podgroups.scheduling.volcano.sh \
            crd/podgroups.scheduling.x-k8s.io crd/queues.scheduling.volcano.sh >/dev/null ||
        bad "CRDs installed"
}

# apply NS FILE: the sample applied unchanged into a namespace of its own.
apply() {
    kc_ create namespace "$1" >/dev/null
    kc_ apply -n "$1" -f "$samples/$2" >"$tmp/apply.out" 2>&1 && ok "$2 applies unchanged" ||
        { bad "$2 applies unchanged"; sed 's/^/    | /' "$tmp/apply.out"; }
}

# wait_pods NS N: until N pods exist in NS (20 s).
wait_pods() {
    local deadline=$(($(date +%s) + 20))
    while (($(date +%s) < deadline)); do
        (($(kc_ get pods -n "$1" --no-headers 2>/dev/null | wc -l) >= $2)) && return 0
        sleep 0.3
    done
    return 1
}

# check NS PYTHON: runs the python checks over {"pods": [...], "pgv": [...], "pgs": [...]} of NS.
check() {
    local ns=$1 code=$2
    kc_ get pods -n "$ns" -o json >"$tmp/pods.json"
    kc_ get podgroups.scheduling.volcano.sh -n "$ns" -o json >"$tmp/pgv.json" 2>/dev/null ||
        echo '{"items":[]}' >"$tmp/pgv.json"
    kc_ get podgroups.scheduling.x-k8s.io -n "$ns" -o json >"$tmp/pgs.json" 2>/dev/null ||
        echo '{"items":[]}' >"$tmp/pgs.json"
    kc_ get rayclusters -n "$ns" -o json >"$tmp/rcs.json" 2>/dev/null
    python3 - "$tmp" "$code" >"$tmp/checks.txt" 2>&1 <<'PY'
import json, sys
d = sys.argv[1]
pods = json.load(open(d + "/pods.json"))["items"]
pgv = json.load(open(d + "/pgv.json"))["items"]
pgs = json.load(open(d + "/pgs.json"))["items"]
rcs = json.load(open(d + "/rcs.json"))["items"]
def say(ok, what):
    print(("ok " if ok else "FAIL ") + what)
def lbl(o, k): return o["metadata"].get("labels", {}).get(k)
def ann(o, k): return o["metadata"].get("annotations", {}).get(k)
def group(p):
    return "headgroup" if lbl(p, "ray.io/node-type") == "head" else lbl(p, "ray.io/group")
def owner(o, rc, controller):
    refs = o["metadata"].get("ownerReferences", [])
    r = refs[0] if refs else {}
    return (len(refs) == 1 and r.get("kind") == "RayCluster" and r.get("apiVersion") == "ray.io/v1"
            and r.get("name") == rc["metadata"]["name"] and r.get("uid") == rc["metadata"]["uid"]
            and bool(r.get("controller")) == controller)
exec(sys.argv[2])
PY
    [[ -s $tmp/checks.txt ]] || bad "checks ran"
    while read -r res what; do
        if [[ $res == ok ]]; then ok "$what"; elif [[ $res == FAIL ]]; then bad "$what"; else
            bad "python: $res $what"; fi
    done <"$tmp/checks.txt"
}

# --- volcano ------------------------------------------------------------------------------------
up volcano
apply vq ray-cluster.volcano-scheduler-queue.yaml
apply v0 ray-cluster.volcano-scheduler.yaml
wait_pods vq 3 || bad "vq: 3 pods"
wait_pods v0 1 || bad "v0: 1 pod"
check vq '
rc = rcs[0]
say(len(pgv) == 1, "vq: one Volcano PodGroup")
pg = pgv[0] if pgv else {"metadata": {}, "spec": {}}
s = pg["spec"]
say(pg["metadata"].get("name") == "ray-test-cluster-0-pg", "vq: PodGroup ray-<cluster>-pg")
say(owner(pg, rc, True), "vq: PodGroup controlled by the RayCluster")
say(s.get("minMember") == 3, "vq: minMember = 2 workers + head, got %s" % s.get("minMember"))
say(s.get("minResources") == {"cpu": "3", "memory": "4Gi"},
    "vq: minResources = head requests + 2 x worker, got %s" % s.get("minResources"))
say(s.get("queue") == "kuberay-test-queue", "vq: queue from volcano.sh/queue-name")
say("priorityClassName" not in s and "networkTopology" not in s, "vq: no priority, no topology")
# the operator sends status.phase Pending; the CRD has a status subresource, so create drops it
say("status" not in pg or pg["status"].get("phase") in (None, "Pending"), "vq: no status but Pending")
say(len(pods) == 3, "vq: 3 pods")
for p in pods:
    g = group(p)
    say(p["spec"].get("schedulerName") == "volcano", "vq %s: schedulerName volcano" % g)
    say(ann(p, "scheduling.k8s.io/group-name") == "ray-test-cluster-0-pg",
        "vq %s: annotation scheduling.k8s.io/group-name" % g)
    say(ann(p, "volcano.sh/task-spec") == g, "vq %s: annotation volcano.sh/task-spec=%s" % (g, g))
    say(lbl(p, "volcano.sh/queue-name") == "kuberay-test-queue", "vq %s: queue label" % g)
'
check v0 '
pg = pgv[0] if pgv else {"metadata": {}, "spec": {}}
s = pg["spec"]
say(len(pgv) == 1 and s.get("minMember") == 1 and s.get("minResources") == {"cpu": "1", "memory": "2Gi"},
    "v0: head-only PodGroup minMember 1, minResources cpu 1 memory 2Gi: %s" % s)
say("queue" not in s, "v0: no queue without the label")
say(len(pods) == 1 and lbl(pods[0], "volcano.sh/queue-name") is None
    and pods[0]["spec"].get("schedulerName") == "volcano", "v0: head pod, volcano, no queue label")
'
# a RayJob: its PodGroup ray-<job>-pg (submitter resources in minResources, not in minMember);
# its RayCluster makes none of its own; pods and the submitter Job point at the RayJob's
apply vj ray-job.volcano-scheduler-queue.yaml
wait_pods vj 3 || bad "vj: 3 cluster pods"
deadline=$(($(date +%s) + 20))
while (($(date +%s) < deadline)); do
    kc_ get job rayjob-sample-0 -n vj >/dev/null 2>&1 && break
    sleep 0.3
done
kc_ get jobs -n vj -o json >"$tmp/jobs.json" 2>/dev/null
kc_ get rayjobs -n vj -o json >"$tmp/rjs.json" 2>/dev/null
check vj '
rj = json.load(open(d + "/rjs.json"))["items"][0]
jobs = json.load(open(d + "/jobs.json"))["items"]
say(len(pgv) == 1, "vj: one PodGroup (the RayJob one): %s" % [p["metadata"]["name"] for p in pgv])
pg = pgv[0] if pgv else {"metadata": {}, "spec": {}}
s = pg["spec"]
refs = pg["metadata"].get("ownerReferences", [{}])
say(pg["metadata"].get("name") == "ray-rayjob-sample-0-pg" and refs[0].get("kind") == "RayJob"
    and refs[0].get("uid") == rj["metadata"]["uid"] and refs[0].get("controller") is True,
    "vj: PodGroup ray-<job>-pg controlled by the RayJob")
say(s.get("minMember") == 3, "vj: minMember 3 (head + 2 workers; not the submitter): %s" % s.get("minMember"))
say(s.get("minResources") == {"cpu": "3500m", "memory": "4296Mi"},
    "vj: minResources cluster + submitter requests (500m, 200Mi): %s" % s.get("minResources"))
say(s.get("queue") == "kuberay-test-queue", "vj: queue from the RayJob label")
rc = rcs[0] if rcs else {"metadata": {}}
say(lbl(rc, "volcano.sh/queue-name") == "kuberay-test-queue"
    and ann(rc, "scheduling.k8s.io/group-name") == "ray-rayjob-sample-0-pg",
    "vj: the RayCluster carries the queue label and the PodGroup annotation")
for p in pods:
    if lbl(p, "ray.io/cluster") != rc["metadata"].get("name"):
        continue
    g = group(p)
    say(p["spec"].get("schedulerName") == "volcano"
        and ann(p, "scheduling.k8s.io/group-name") == "ray-rayjob-sample-0-pg"
        and ann(p, "volcano.sh/task-spec") == g
        and lbl(p, "volcano.sh/queue-name") == "kuberay-test-queue", "vj %s: volcano metadata" % g)
say(len(jobs) == 1, "vj: the submitter Job exists")
for j in jobs:
    t = j["spec"]["template"]
    say(t["spec"].get("schedulerName") == "volcano"
        and t["metadata"].get("annotations", {}).get("volcano.sh/task-spec") == "submittergroup"
        and t["metadata"]["annotations"].get("scheduling.k8s.io/group-name") == "ray-rayjob-sample-0-pg"
        and t["metadata"].get("labels", {}).get("volcano.sh/queue-name") == "kuberay-test-queue",
        "vj: submitter template: volcano, submittergroup, PodGroup, queue: %s" % t["metadata"])
'

# CleanupOnCompletion: once the RayJob is terminal its PodGroup is resized to the live cluster
# (the submitter's resources gone)
deadline=$(($(date +%s) + 30))
ds=""
while (($(date +%s) < deadline)); do
    ds=$(kc_ get rayjob rayjob-sample-0 -n vj -o jsonpath='{.status.jobDeploymentStatus}')
    [[ $ds == Complete || $ds == Failed ]] && break
    sleep 0.5
done
[[ $ds == Complete || $ds == Failed ]] && ok "vj: the RayJob finished ($ds)" ||
    bad "vj: the RayJob finished (got '$ds')"
deadline=$(($(date +%s) + 10))
mm=""
while (($(date +%s) < deadline)); do
    mm=$(kc_ get podgroups.scheduling.volcano.sh ray-rayjob-sample-0-pg -n vj \
        -o jsonpath='{.spec.minMember} {.spec.minResources.cpu} {.spec.minResources.memory}')
    [[ $mm == "3 3 4Gi" ]] && break
    sleep 0.3
done
[[ $mm == "3 3 4Gi" ]] && ok "vj: PodGroup resized on completion to the live cluster (3, 3, 4Gi)" ||
    bad "vj: PodGroup resized on completion to the live cluster (got '$mm')"

# a desired-size change updates the PodGroup (syncPodGroup)
kc_ patch raycluster test-cluster-0 -n vq --type json \
    -p '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":1},
         {"op":"replace","path":"/spec/workerGroupSpecs/0/minReplicas","value":1}]' >/dev/null
deadline=$(($(date +%s) + 15))
mm=""
while (($(date +%s) < deadline)); do
    mm=$(kc_ get podgroups.scheduling.volcano.sh ray-test-cluster-0-pg -n vq \
        -o jsonpath='{.spec.minMember} {.spec.minResources.cpu} {.spec.minResources.memory}')
    [[ $mm == "2 2 3Gi" ]] && break
    sleep 0.3
done
[[ $mm == "2 2 3Gi" ]] && ok "vq: PodGroup resized to 1 worker (minMember 2, cpu 2, 3Gi)" ||
    bad "vq: PodGroup resized to 1 worker (got '$mm')"

# --- scheduler-plugins --------------------------------------------------------------------------
up scheduler-plugins
apply sp ray-cluster.scheduler-plugins.yaml
wait_pods sp 3 || bad "sp: 3 pods"
check sp '
rc = rcs[0]
say(len(pgs) == 1 and not pgv, "sp: one scheduling.x-k8s.io PodGroup, no Volcano one")
pg = pgs[0] if pgs else {"metadata": {}, "spec": {}}
s = pg["spec"]
say(pg["metadata"].get("name") == "test-podgroup-0", "sp: PodGroup named as the cluster")
say(owner(pg, rc, False), "sp: PodGroup owned (not controlled) by the RayCluster")
say(s.get("minMember") == 3 and s.get("minResources") == {"cpu": "3", "memory": "4Gi"},
    "sp: minMember 3, minResources cpu 3 memory 4Gi (head 1/2Gi + 2 x 1/1Gi): %s" % s)
say(len(pods) == 3, "sp: 3 pods")
for p in pods:
    g = group(p)
    say(p["spec"].get("schedulerName") == "scheduler-plugins-scheduler",
        "sp %s: schedulerName scheduler-plugins-scheduler" % g)
    say(lbl(p, "scheduling.x-k8s.io/pod-group") == "test-podgroup-0", "sp %s: pod-group label" % g)
'

# --- yunikorn -----------------------------------------------------------------------------------
up yunikorn
apply yk ray-cluster.yunikorn-scheduler.yaml
wait_pods yk 2 || bad "yk: pods"
check yk '
say(not pgs and not pgv, "yk: no PodGroup")
tg = None
for p in pods:
    g = group(p)
    say(p["spec"].get("schedulerName") == "yunikorn", "yk %s: schedulerName yunikorn" % g)
    say(lbl(p, "applicationId") == "test-yunikorn-0" and lbl(p, "queue") == "root.test",
        "yk %s: applicationId and queue labels" % g)
    say(ann(p, "yunikorn.apache.org/task-group-name") == g, "yk %s: task-group-name" % g)
    t = ann(p, "yunikorn.apache.org/task-groups")
    say(t is not None and (tg is None or t == tg), "yk %s: task-groups, the same on every pod" % g)
    tg = t or tg
groups = json.loads(tg or "[]")
rc = rcs[0]["spec"]
want = ["headgroup"] + [w["groupName"] for w in rc.get("workerGroupSpecs", [])]
say([x["name"] for x in groups] == want, "yk: task groups %s" % want)
say(groups and groups[0]["minMember"] == 1 and list(groups[0]) [0] == "minResource",
    "yk: head task group minMember 1, KubeRay field order")
'

# --- kai-scheduler ------------------------------------------------------------------------------
up kai-scheduler
apply kai ray-cluster.kai-scheduler.yaml
wait_pods kai 1 || bad "kai: pods"
check kai '
for p in pods:
    rcname = lbl(p, "ray.io/cluster")
    rc = [r for r in rcs if r["metadata"]["name"] == rcname][0]
    say(p["spec"].get("schedulerName") == "kai-scheduler", "kai %s: schedulerName" % p["metadata"]["name"])
    say(lbl(p, "kai.scheduler/queue") == lbl(rc, "kai.scheduler/queue"),
        "kai %s: kai.scheduler/queue label as the RayCluster" % p["metadata"]["name"])
say(not pgs and not pgv, "kai: no PodGroup (KAI makes its own)")
'
apply kai2 ray-cluster.kai-gpu-sharing.yaml
wait_pods kai2 1 || bad "kai2: pods"
check kai2 '
say(len(pods) >= 1 and all(p["spec"].get("schedulerName") == "kai-scheduler" and
    lbl(p, "kai.scheduler/queue") == lbl(rcs[0], "kai.scheduler/queue") for p in pods),
    "kai2 (gpu sharing): every pod kai-scheduler with the queue label")
'
kc_ create namespace kaijob >/dev/null
kc_ apply -n kaijob -f - >/dev/null <<'YAML'
apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: kai-job
  labels:
    kai.scheduler/queue: team-a
spec:
  entrypoint: python -c "print(1)"
  rayClusterSpec:
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers:
          - name: ray-head
            image: rayproject/ray:2.52.0
YAML
deadline=$(($(date +%s) + 15))
ev=""
while (($(date +%s) < deadline)); do
    ev=$(kc_ get events -n kaijob -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}')
    grep -q 'KAI-Scheduler does not support RayJob with K8sJobMode' <<<"$ev" && break
    sleep 0.3
done
has "kai: a K8sJobMode RayJob is refused with KubeRay's message" "$ev" \
    'KAI-Scheduler does not support RayJob with K8sJobMode: the submitter pod is created after RayCluster is ready, preventing proper gang scheduling'
has "kai: no RayCluster for the refused RayJob" "$(kc_ get rayclusters -n kaijob 2>&1)" \
    "No resources found"

echo "elapsed $(($(date +%s) - start)) s"
tl_summary
