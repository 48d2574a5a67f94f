#!/usr/bin/env bash
# integration.opsettings: KubeRay's operator settings in every controller (issue 14).
# rayfleetctl up --sim with --kuberay-config (headSidecarContainers, workerSidecarContainers,
# defaultContainerEnvs, defaultPodLabels, defaultPodAnnotations, featureGates), --feature-gates
# and KubeRay's environment switches (CLUSTER_DOMAIN, ENABLE_LOGIN_SHELL,
# ENABLE_INIT_CONTAINER_INJECTION=false, ENABLE_PROBES_INJECTION=false,
# ENABLE_DETERMINISTIC_HEAD_POD_NAME=true, ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE=true); a RayCluster
# applied with kubectl; every setting checked field by field in the pods and the head Service.
# Then the refusals at start: an unknown Configuration key, an unknown gate, --batch-scheduler
# slurm, batchScheduler with enableBatchScheduler, a bad environment switch, each naming what is wrong.
# Usage: opsettings_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
set -uo pipefail
ctl=${1:?usage: opsettings_test.sh PATH/TO/rayfleetctl}
bin=$(dirname "$ctl")
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
. "$here/../cli/testlib.sh"
tl_cell ops "$ctl"

cat >"$tmp/kuberay.yaml" <<'YAML'
apiVersion: config.ray.io/v1alpha1
kind: Configuration
reconcileConcurrency: 4
headSidecarContainers:
- name: fluentbit
  image: fluent/fluent-bit:1.9.6
workerSidecarContainers:
- name: worker-logs
  image: busybox:1.36
defaultContainerEnvs:
- name: TEAM_ENV
  value: ml-platform
defaultPodLabels:
  team: ml
defaultPodAnnotations:
  owner: ml-platform
featureGates:
  RayClusterStatusConditions: true
YAML

# --- the refusals (each controller binary on its own: they stop before any connection) -------
for svc in scheduler submitter serve-upgrade; do
    b="$bin/rayfleet-$svc"
    [[ -x $b ]] || { bad "$svc is built"; continue; }
    printf 'apiVersion: config.ray.io/v1alpha1\nkind: Configuration\nreconcileConcurency: 2\n' \
        >"$tmp/typo.yaml"
    out=$("$b" --state-dir "$tmp" --kuberay-config "$tmp/typo.yaml" 2>&1); code=$?
    [[ $code -eq 2 ]] || bad "$svc: unknown Configuration key exits 2 (got $code)"
    has "$svc: unknown Configuration key named with the file" "$out" \
        "$tmp/typo.yaml:3:1: unknown key \"reconcileConcurency\""
    out=$("$b" --state-dir "$tmp" --feature-gates RayClusterNope=true 2>&1); code=$?
    [[ $code -eq 2 ]] || bad "$svc: unknown gate exits 2 (got $code)"
    has "$svc: unknown gate named" "$out" "--feature-gates: unrecognized feature gate: RayClusterNope"
    out=$("$b" --state-dir "$tmp" --batch-scheduler slurm 2>&1); code=$?
    [[ $code -eq 2 ]] || bad "$svc: an unknown --batch-scheduler exits 2 (got $code)"
    has "$svc: --batch-scheduler slurm refused with KubeRay's list" "$out" \
        'batch scheduler "slurm": must be one of volcano, yunikorn, kai-scheduler, scheduler-plugins'
done
b="$bin/rayfleet-scheduler"
out=$(ENABLE_LOGIN_SHELL=yes "$b" --state-dir "$tmp" 2>&1)
has "a bad environment switch is named" "$out" \
    'environment ENABLE_LOGIN_SHELL: must be true or false, got "yes"'
printf 'apiVersion: config.ray.io/v1alpha1\nkind: Configuration\nbatchScheduler: yunikorn\nenableBatchScheduler: true\n' \
    >"$tmp/bs.yaml"
out=$("$b" --state-dir "$tmp" --kuberay-config "$tmp/bs.yaml" 2>&1)
has "batchScheduler with enableBatchScheduler refused" "$out" \
    'both feature flags enable-batch-scheduler .deprecated. and batch-scheduler are set'
printf 'apiVersion: config.ray.io/v1alpha1\nkind: Configuration\nreconcileConcurrency: 2\n' \
    >"$tmp/rc.yaml"
out=$("$b" --state-dir "$tmp" --kuberay-config "$tmp/rc.yaml" --reconcile-concurrency 3 2>&1)
has "one setting in one place" "$out" 'reconcileConcurrency is set there and as rayfleet.s --concurrency'
# one rayfleet configuration file for the set: shared keys at the top, a section per service
cat >"$tmp/set.yaml" <<'YAML'
log-level: info
scheduler:
  resync: 2m
submitter:
  job-poll: 2s
watcher:
  resync: 1m
bus:
  hwm: 50000
YAML
out=$("$b" --state-dir "$tmp" --config "$tmp/set.yaml" --kubeconfig "$tmp/none" 2>&1)
has "a set file: the scheduler reads its section, skips the others" "$out" "kubeconfig.*not readable"
printf 'log-level: warn\nscheduler:\n  concurency: 3\n' >"$tmp/set2.yaml"
out=$("$b" --state-dir "$tmp" --config "$tmp/set2.yaml" 2>&1)
has "a set file: an unknown key of the service's section is named" "$out" \
    "$tmp/set2.yaml:3:3: unknown key \"scheduler.concurency\""
out=$(RAYFLEET_SCHEDULER_CONCURRENCY=0 "$b" --state-dir "$tmp" 2>&1)
has "RAYFLEET_<SERVICE>_<KEY> is the service's own variable" "$out" \
    "environment RAYFLEET_SCHEDULER_CONCURRENCY: must be an integer"
has "--help lists KubeRay's flags" "$("$b" --help)" '--reconcile-concurrency' '--qps' '--burst' \
    '--watch-namespace' '--batch-scheduler' '--kuberay-config' '--use-kubernetes-proxy' \
    '--enable-leader-election' '--leader-election-namespace'

# --- the set with the settings --------------------------------------------------------------
start=$(date +%s)
CLUSTER_DOMAIN=corp.example ENABLE_LOGIN_SHELL=true ENABLE_INIT_CONTAINER_INJECTION=false \
    ENABLE_PROBES_INJECTION=false ENABLE_DETERMINISTIC_HEAD_POD_NAME=true \
    ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE=true \
    "$ctl" up --sim --detach --state-dir "$state" --nodes 2 --timeout 40s \
    --kuberay-config "$tmp/kuberay.yaml" --feature-gates RayJobDeletionPolicy=true \
    --watch-namespace default --config "$tmp/set.yaml" >/dev/null 2>"$tmp/up.err"
code=$?
if [[ $code -eq 0 ]]; then ok "up with --kuberay-config and --feature-gates"; else
    bad "up (exit $code)"; sed 's/^/    | /' "$tmp/up.err"; tl_summary; exit 1; fi
for svc in scheduler submitter serve-upgrade; do
    has "rayfleetctl passed the settings to $svc" "$(tr '\0' ' ' </proc/$(awk -v s=$svc '$1==s {print $2}' "$state/pids")/cmdline 2>/dev/null)" \
        "--kuberay-config $tmp/kuberay.yaml" "--feature-gates RayJobDeletionPolicy=true" \
        "--watch-namespace default" "--config $tmp/set.yaml"
done
has "rayfleetctl limits the watcher to the namespaces" \
    "$(tr '\0' ' ' </proc/$(awk '$1=="watcher" {print $2}' "$state/pids")/cmdline 2>/dev/null)" \
    "--watch.namespaces default"
kc_ create namespace other >/dev/null
sed 's/name: ops$/name: far/; s/namespace: default/namespace: other/' >"$tmp/far.yaml" <<'YAML'
apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: ops
  namespace: default
spec:
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.46.0
YAML
kc_ apply -f "$tmp/far.yaml" >/dev/null

kc_ apply -f - >/dev/null <<'YAML'
apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: ops
  namespace: default
spec:
  rayVersion: "2.46.0"
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.46.0
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
YAML
deadline=$(( $(date +%s) + 30 ))
while (( $(date +%s) < deadline )); do
    n=$(kc_ get pods -l ray.io/cluster=ops --no-headers 2>/dev/null | wc -l)
    (( n >= 2 )) && break
    sleep 0.5
done
kc_ get pods -l ray.io/cluster=ops -o json >"$tmp/pods.json"
kc_ get services -l ray.io/cluster=ops -o json >"$tmp/svcs.json"
python3 - "$tmp/pods.json" "$tmp/svcs.json" <<'PY' >"$tmp/checks.txt"
import json, sys
pods = json.load(open(sys.argv[1]))["items"]
svcs = json.load(open(sys.argv[2]))["items"]
def say(ok, what):
    print(("ok " if ok else "FAIL ") + what)
heads = [p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "head"]
workers = [p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "worker"]
say(len(heads) == 1 and len(workers) == 1, "one head and one worker pod")
def env(c, name):
    for e in c.get("env", []):
        if e["name"] == name:
            return e.get("value")
    return None
for kind, ps, sidecar in (("head", heads, "fluentbit"), ("worker", workers, "worker-logs")):
    for p in ps:
        m, s = p["metadata"], p["spec"]
        names = [c["name"] for c in s["containers"]]
        ray = s["containers"][0]
        say(sidecar in names, kind + ": sidecar " + sidecar + " in " + str(names))
        other = "worker-logs" if kind == "head" else "fluentbit"
        say(other not in names, kind + ": not the other group's sidecar")
        say(env(ray, "TEAM_ENV") == "ml-platform", kind + ": defaultContainerEnvs TEAM_ENV")
        say(m["labels"].get("team") == "ml", kind + ": defaultPodLabels team=ml")
        say(m["annotations"].get("owner") == "ml-platform", kind + ": defaultPodAnnotations owner")
        say(ray.get("command", [])[:2] == ["/bin/bash", "-lc"], kind + ": login shell bash -lc, got "
            + str(ray.get("command")))
        say(not s.get("initContainers"), kind + ": no wait-gcs-ready init container")
        say("livenessProbe" not in ray and "readinessProbe" not in ray, kind + ": no probes")
for p in heads:
    say(p["metadata"]["name"] == "ops-head", "head pod name deterministic: " + p["metadata"]["name"])
for p in workers:
    fq = env(p["spec"]["containers"][0], "FQ_RAY_IP")
    say(fq == "ops-head-svc.default.svc.corp.example", "worker FQDN in the cluster domain: " + str(fq))
head_svc = [s for s in svcs if s["metadata"]["name"] == "ops-head-svc"]
say(len(head_svc) == 1 and head_svc[0]["spec"].get("clusterIP") != "None",
    "head Service not headless (ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE)")
PY
while read -r res what; do
    if [[ $res == ok ]]; then ok "$what"; else bad "$what"; fi
done <"$tmp/checks.txt"
[[ -s $tmp/checks.txt ]] || bad "pods and services read"
sleep 1
has "a RayCluster outside --watch-namespace is left alone" \
    "$(kc_ get pods -n other --no-headers 2>&1)" "No resources found"

# --- rayfleetctl up stops when a controller refuses its settings ------------------------------
out=$("$ctl" up --sim --detach --state-dir "$tmp/state2" --nodes 1 --timeout 20s \
    --feature-gates RayClusterNope=true 2>&1); code=$?
"$ctl" down --state-dir "$tmp/state2" --timeout 2s >/dev/null 2>&1
[[ $code -ne 0 ]] && ok "up fails on an unknown gate (exit $code)" || bad "up fails on an unknown gate"
has "up shows the controller's message" "$out" "unrecognized feature gate: RayClusterNope"
echo "elapsed $(( $(date +%s) - start )) s"
tl_summary
