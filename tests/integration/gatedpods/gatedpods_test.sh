#!/usr/bin/env bash
# integration.gated-pods: KubeRay's gated pod features (issue 14) on kubesim, each gate off and on.
#  1. gate RayClusterHistoryServer off: ray-cluster.historyserver.yaml applied unchanged gets
#     KubeRay's Warning Event InvalidRayClusterSpec "RayClusterHistoryServer feature gate is not
#     enabled" and no pods;
#  2. the set with RayClusterHistoryServer and SidecarSubmitterRestart on, kubesim reporting
#     v1.35: the same sample -> head and worker pods with the `ray-history-collector` sidecar
#     checked field by field (image, pull policy, resources, env in order, the shared /tmp/ray
#     volume, the Ray container's event env), cluster ready; a SidecarMode RayJob whose submission
#     is refused by the Ray head (entrypointResources values not numbers) -> the submitter
#     container (restartPolicy OnFailure) is restarted by the kubelet, and once restartCount >=
#     submitterConfig.backoffLimit the RayJob is Failed/SubmissionFailed with KubeRay's message;
#  3. SidecarSubmitterRestart against kubesim's default v1.32: the controllers refuse to start
#     with KubeRay's message, rayfleetctl up fails;
#  4. KubernetesWAS with --batch-scheduler: KubeRay's start-up error (the gate alone starts and
#     builds KubeRay's objects: integration.was).
# Usage: gatedpods_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
set -uo pipefail
ctl=${1:?usage: gatedpods_test.sh PATH/TO/rayfleetctl}
bin=$(dirname "$ctl")
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
. "$here/../cli/testlib.sh"
shared=${RF_SHARED_DIR:-$here/../../../../shared}
sample="$shared/kuberay/samples/ray-cluster.historyserver.yaml"
tl_cell gated "$ctl"
[[ -f $sample ]] || { echo "sample $sample not found (set RF_SHARED_DIR)"; exit 1; }
start=$(date +%s)
up_() {
    "$ctl" up --sim --detach --state-dir "$state" --nodes 2 --timeout 30s "$@" >/dev/null \
        2>"$tmp/up.err"
}

# --- 4. KubernetesWAS: refused at start, before any connection -------------------------------
for svc in scheduler submitter serve-upgrade; do
    b="$bin/rayfleet-$svc"
    out=$("$b" --state-dir "$tmp" --feature-gates KubernetesWAS=true --batch-scheduler volcano 2>&1)
    code=$?
    [[ $code -eq 2 ]] || bad "$svc: KubernetesWAS + --batch-scheduler exits 2 (got $code)"
    has "$svc: KubernetesWAS with --batch-scheduler: KubeRay's error" "$out" \
        'batch scheduler configs validation failed: the KubernetesWAS feature gate cannot be combined with --batch-scheduler or --enable-batch-scheduler'
done

# --- 1. gate off: KubeRay's rejection, no pods ---------------------------------------------------
if up_; then ok "up without the gates"; else bad "up without the gates"; sed 's/^/    | /' "$tmp/up.err"; fi
kc_ apply -f "$sample" >/dev/null || bad "the sample applies unchanged"
ev() { kc_ get events --field-selector involvedObject.name=raycluster-historyserver \
        -o jsonpath='{range .items[*]}{.type} {.reason} {.message}{"\n"}{end}' 2>/dev/null; }
tl_wait 15 bash -c "$(declare -f kc_ ev); tmp='$tmp'; state='$state'; ev | grep -q InvalidRayClusterSpec"
has "gate off: KubeRay's rejection Event" "$(ev)" \
    '^Warning InvalidRayClusterSpec The RayCluster spec is invalid default/raycluster-historyserver: RayClusterHistoryServer feature gate is not enabled$'
sleep 1
has "gate off: no pods" "$(kc_ get pods --no-headers 2>&1)" "No resources found"
"$ctl" down --state-dir "$state" --timeout 2s >/dev/null 2>&1

# --- 3. SidecarSubmitterRestart below 1.35: refused at start --------------------------------------
up_ --feature-gates SidecarSubmitterRestart=true; code=$?
[[ $code -ne 0 ]] && ok "up refused with SidecarSubmitterRestart on K8s 1.32 (exit $code)" ||
    bad "up refused with SidecarSubmitterRestart on K8s 1.32"
has "the controller says KubeRay's reason" "$(cat "$tmp/up.err")" \
    'SidecarSubmitterRestart feature gate requires K8s 1.35\+: current version v1\.32\.0-kubesim is below 1\.35'
"$ctl" down --state-dir "$state" --timeout 2s >/dev/null 2>&1

# --- 2. gates on, kubesim at 1.35 -------------------------------------------------------------------
if up_ --sim-k8s-minor 35 --feature-gates RayClusterHistoryServer=true,SidecarSubmitterRestart=true
then ok "up with the gates on K8s 1.35"; else
    bad "up with the gates on K8s 1.35"; sed 's/^/    | /' "$tmp/up.err"; tl_summary; exit 1; fi
has "kubesim reports v1.35" "$(kc_ get --raw /version)" '"gitVersion": ?"v1\.35\.0'
kc_ apply -f "$sample" >/dev/null || bad "the sample applies unchanged (gate on)"
cat >"$tmp/rj.yaml" <<'YAML'
apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: sidecar-fail
spec:
  submissionMode: SidecarMode
  entrypoint: python -c "print(1)"
  entrypointResources: '{"custom": "many"}'
  submitterConfig:
    backoffLimit: 2
  rayClusterSpec:
    rayVersion: "2.52.0"
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers:
          - name: ray-head
            image: rayproject/ray:2.52.0
YAML
ready() { [[ $(kc_ get raycluster raycluster-historyserver -o jsonpath='{.status.state}' 2>/dev/null) == ready ]]; }
if tl_wait 30 ready; then ok "the history-server cluster is ready"; else bad "the history-server cluster is ready"; fi
kc_ get pods -l ray.io/cluster=raycluster-historyserver -o json >"$tmp/pods.json"
python3 - "$tmp/pods.json" <<'PY' >"$tmp/checks.txt"
import json, sys
pods = json.load(open(sys.argv[1]))["items"]
def say(ok, what):
    print(("ok " if ok else "FAIL ") + what)
types = ",".join([
    "TASK_DEFINITION_EVENT", "TASK_LIFECYCLE_EVENT", "ACTOR_TASK_DEFINITION_EVENT",
    "TASK_PROFILE_EVENT", "DRIVER_JOB_DEFINITION_EVENT", "DRIVER_JOB_LIFECYCLE_EVENT",
    "ACTOR_DEFINITION_EVENT", "ACTOR_LIFECYCLE_EVENT", "NODE_DEFINITION_EVENT",
    "NODE_LIFECYCLE_EVENT"])
say(len(pods) == 2, "two pods (head and one worker), got %d" % len(pods))
for p in pods:
    role = "Head" if p["metadata"]["labels"].get("ray.io/node-type") == "head" else "Worker"
    ns = p["metadata"]["namespace"]
    cs = p["spec"]["containers"]
    say([c["name"] for c in cs][1:] == ["ray-history-collector"],
        role + ": containers " + str([c["name"] for c in cs]))
    if len(cs) < 2:
        continue
    ray, hc = cs[0], cs[1]
    say(hc.get("image") == "quay.io/kuberay/collector:nightly", role + ": collector image")
    say(hc.get("imagePullPolicy") == "IfNotPresent", role + ": pull policy")
    say(hc.get("resources") == {"requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"cpu": "200m", "memory": "256Mi"}},
        role + ": resources " + json.dumps(hc.get("resources")))
    want = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "RAY_CLUSTER_NAME", "value": "raycluster-historyserver"},
            {"name": "RAY_CLUSTER_NAMESPACE", "value": ns},
            {"name": "RAY_ROLE", "value": role},
            {"name": "EVENTS_PORT", "value": "8084"},
            {"name": "FQ_RAY_IP",
             "value": "raycluster-historyserver-head-svc.%s.svc.cluster.local" % ns},
            {"name": "OWNER_KIND", "value": "RayCluster"},
            {"name": "OWNER_NAME", "value": "raycluster-historyserver"}]
    if role == "Head":
        want.append({"name": "RAY_DASHBOARD_ADDRESS", "value": "http://localhost:8265"})
    want += [{"name": "STORAGE_BACKEND", "value": "GCS"},
             {"name": "GCS_BUCKET", "value": "my-gcs-bucket"}]
    got = json.loads(json.dumps(hc.get("env")))
    for e in got:  # a real API server defaults fieldRef.apiVersion to v1; kubesim does not
        if e.get("valueFrom", {}).get("fieldRef", {}).get("apiVersion") == "v1":
            del e["valueFrom"]["fieldRef"]["apiVersion"]
    say(got == want, role + ": collector env " + json.dumps(hc.get("env")))
    say(hc.get("volumeMounts") == [{"mountPath": "/tmp/ray", "name": "ray-logs"}],
        role + ": collector mounts /tmp/ray " + json.dumps(hc.get("volumeMounts")))
    say({"mountPath": "/tmp/ray", "name": "ray-logs"} in ray.get("volumeMounts", []),
        role + ": the Ray container shares /tmp/ray")
    say({"name": "ray-logs", "emptyDir": {}} in p["spec"].get("volumes", []),
        role + ": the ray-logs emptyDir volume")
    names = [e["name"] for e in ray.get("env", [])]
    env = {e["name"]: e.get("value") for e in ray.get("env", [])}
    tail = ["RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "RAY_enable_ray_event",
            "RAY_enable_core_worker_ray_event_to_aggregator",
            "RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR",
            "RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES",
            "RAY_DASHBOARD_AGGREGATOR_AGENT_PUBLISHER_HTTP_ENDPOINT_EXPOSABLE_EVENT_TYPES"]
    say(names[-6:] == tail, role + ": Ray env ends with the event env " + str(names[-6:]))
    say(env.get("RAY_enable_ray_event") == "true" and
        env.get("RAY_enable_core_worker_ray_event_to_aggregator") == "true" and
        env.get("RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR") ==
        "http://localhost:8084/v1/events" and
        env.get("RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES") == types and
        env.get("RAY_DASHBOARD_AGGREGATOR_AGENT_PUBLISHER_HTTP_ENDPOINT_EXPOSABLE_EVENT_TYPES")
        == types, role + ": Ray event env values")
    st = {c["name"]: c for c in p.get("status", {}).get("containerStatuses", [])}
    say("running" in st.get("ray-history-collector", {}).get("state", {}),
        role + ": the collector runs")
PY
while read -r res what; do
    if [[ $res == ok ]]; then ok "$what"; else bad "$what"; fi
done <"$tmp/checks.txt"
[[ -s $tmp/checks.txt ]] || bad "pods read"

# applied only now: its submitter fails and restarts within seconds, and the poll below must see
# the state between its first restart and its final failure (one kubectl call per sample)
kc_ apply -f "$tmp/rj.yaml" >/dev/null || bad "the SidecarMode RayJob applies"
sample() {
    kc_ get rayjobs,pods -o json 2>/dev/null | jq -r '
        ([.items[] | select(.kind=="RayJob" and .metadata.name=="sidecar-fail")][0].status // {}) as $s
        | ([.items[] | select(.kind=="Pod" and .metadata.labels["ray.io/cluster"]==$s.rayClusterName
                              and .metadata.labels["ray.io/node-type"]=="head")
            | .status.containerStatuses[]? | select(.name=="ray-job-submitter") | .restartCount][0] // "" | tostring)
          + "|" + ($s.jobDeploymentStatus // "")'
}
survived=no
deadline=$(( $(date +%s) + 40 ))
while (( $(date +%s) < deadline )); do
    IFS="|" read -r n st <<<"$(sample)"
    [[ $n == 1 && $st != Failed ]] && survived=yes
    [[ $st == Failed ]] && break
    sleep 0.05
done
rjf() { kc_ get rayjob sidecar-fail -o jsonpath='{.status.jobDeploymentStatus}|{.status.reason}|{.status.message}' 2>/dev/null; }
[[ $survived == yes ]] && ok "after the first failure and restart the RayJob was not Failed" ||
    bad "after the first failure and restart the RayJob was not Failed"
has "SidecarMode RayJob Failed with KubeRay's message" "$(rjf)" \
    '^Failed\|SubmissionFailed\|Ray head pod container ray-job-submitter terminated with exit code 1: Error$'
rcn=$(kc_ get rayjob sidecar-fail -o jsonpath='{.status.rayClusterName}')
head=$(kc_ get pods -l "ray.io/cluster=$rcn,ray.io/node-type=head" -o json)
sub=$(jq -c '.items[0] | {rp: ([.spec.containers[] | select(.name=="ray-job-submitter") | .restartPolicy][0]), rc: ([.status.containerStatuses[] | select(.name=="ray-job-submitter") | .restartCount][0]), last: ([.status.containerStatuses[] | select(.name=="ray-job-submitter") | .lastState.terminated.exitCode][0])}' <<<"$head")
has "the submitter container has restartPolicy OnFailure" "$sub" '"rp":"OnFailure"'
rc=$(jq -r .rc <<<"$sub")
[[ $rc =~ ^[0-9]+$ ]] && (( rc >= 2 )) && ok "the kubelet restarted the submitter ($rc restarts >= backoffLimit 2)" ||
    bad "the kubelet restarted the submitter (restartCount $rc)"
has "its last termination was the failure" "$sub" '"last":1'
has "the RayJob's head: the Ray container and the submitter only" \
    "$(jq -r '[.items[0].spec.containers[].name] | join(",")' <<<"$head")" '^ray-head,ray-job-submitter$'
echo "elapsed $(( $(date +%s) - start )) s"
tl_summary
