#!/usr/bin/env bash
# End-to-end test of kubesim running KubeRay submitter containers (sim/raysubmit.h) over HTTP.
#   simsub_e2e.sh PATH/TO/kubesim
# The submitter commands are written by hand as KubeRay generates them
# (../shared/spec/kuberay-behavior.md §2.5). Ends with "N passed, M failed"; exits non-zero on
# any failure.
set -uo pipefail
kubesim=$1
work=$(mktemp -d)
pass=0
fail=0
trap 'kill $ks_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # check NAME COMMAND...
    local name=$1; shift
    if "$@" >"$work/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/     /' "$work/out" | head -20; fi
}

"$kubesim" --port 0 --nodes 2 --kubeconfig-out "$work/kc" --ready-file "$work/ready" \
    --pod-start-ms 50 --pod-ready-ms 50 --submit-poll-ms 100 --submit-dns-fail-ms 1000 \
    >"$work/kubesim.log" 2>&1 &
ks_pid=$!
for _ in $(seq 100); do [[ -s "$work/ready" ]] && break; sleep 0.1; done
url=$(cat "$work/ready")
k() { kubectl --kubeconfig "$work/kc" --cache-dir "$work/cache" "$@"; }
kget() { kubectl --kubeconfig "$work/kc" --cache-dir "$work/cache" get "$@"; }
proxy="$url/api/v1/namespaces/default/services/e2e-head-svc:dashboard/proxy"

# The script KubeRay generates for K8sJobMode: script ADDR ID ENTRYPOINT
script() {
    local a=$1 id=$2 ep=$3
    printf '%s' "until python -c \"import urllib.request; r=urllib.request.urlopen('$a/api/gcs_healthz', timeout=10); exit(0 if b'success' in r.read() else 1)\" >/dev/null 2>&1 ; do echo \"Waiting for Ray Dashboard GCS to become healthy at $a ...\" ; sleep 2 ; done ; if ! ray job status --address $a $id >/dev/null 2>&1 ; then ray job submit --address $a --no-wait --runtime-env-json \"{\\\"env_vars\\\":{\\\"A\\\":\\\"1\\\"}}\" --submission-id $id --entrypoint-num-cpus 1.000000 -- $ep ; fi ; ray job logs --address $a --follow $id"
}
# A submitter Job manifest (JSON): job NAME BACKOFF ADDR ID ENTRYPOINT
job() {
    python3 - "$1" "$2" "$(script "$3" "$4" "$5")" <<'PY'
import json, sys
name, backoff, script = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print(json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
  "spec": {"backoffLimit": backoff, "template": {"spec": {"restartPolicy": "Never",
    "containers": [{"name": "ray-job-submitter", "image": "rayproject/ray:2.46.0",
      "command": ["/bin/bash", "-ce", "--"], "args": [script],
      "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}]}]}}}}))
PY
}
# Prints a field of GET /kubesim/ray-submissions[?submissionId=ID]: subs FIELD [ID]
subs() {
    curl -s "$url/kubesim/ray-submissions${2:+?submissionId=$2}" |
        python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
export url
export -f subs

cat >"$work/head.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: e2e-head
  labels: {ray.io/node-type: head, ray.io/cluster: e2e}
spec:
  containers:
  - name: ray-head
    image: rayproject/ray:2.46.0
    ports: [{containerPort: 8265, name: dashboard}]
---
apiVersion: v1
kind: Service
metadata: {name: e2e-head-svc}
spec:
  selector: {ray.io/node-type: head, ray.io/cluster: e2e}
  ports: [{name: dashboard, port: 8265}]
YAML
check "head pod and service created" k apply -f "$work/head.yaml"
check "head pod becomes Ready" k wait --for=condition=Ready pod/e2e-head --timeout=30s
check "no submission yet" bash -c "[[ \$(curl -s '$url/kubesim/ray-submissions' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"attempts\"])') == 0 ]]"

addr=http://e2e-head-svc.default.svc.cluster.local:8265
job e2e-ok 2 "$addr" e2e-ok "python ok.py FAKE:sleep=1" >"$work/ok.json"
job e2e-bad 2 "$addr" e2e-bad "python bad.py FAKE:sleep=0.5,exit=1" >"$work/bad.json"
check "K8sJobMode submitter Jobs created" k apply -f "$work/ok.json" -f "$work/bad.json"
check "the submitter Job completes after the Ray job ends" k wait --for=condition=Complete job/e2e-ok --timeout=30s
check "the Ray job SUCCEEDED with the submitted entrypoint and runtime_env" python3 -c "
import json, urllib.request
j = json.load(urllib.request.build_opener(urllib.request.ProxyHandler({})).open('$proxy/api/jobs/e2e-ok'))
assert j['status'] == 'SUCCEEDED', j
assert j['entrypoint'] == 'python ok.py FAKE:sleep=1', j['entrypoint']
assert j['runtime_env'].get('env_vars') == {'A': '1'}, j['runtime_env']"
check "submitted exactly once" bash -c "[[ \$(subs attempts e2e-ok) == 1 && \$(subs accepted e2e-ok) == 1 ]]"
check "a FAILED Ray job still completes the K8sJobMode Job (ray job logs exits 0)" k wait --for=condition=Complete job/e2e-bad --timeout=30s
check "... and the Ray job is FAILED" bash -c "curl -s '$proxy/api/jobs/e2e-bad' | grep -q '\"status\": *\"FAILED\"'"

job e2e-nx 1 http://nope-head-svc.default.svc.cluster.local:8265 e2e-nx "python x.py" >"$work/nx.json"
check "Job against a missing Service created" k apply -f "$work/nx.json"
check "it fails with BackoffLimitExceeded" k wait --for=condition=Failed job/e2e-nx --timeout=30s
check "... reason BackoffLimitExceeded after 2 failed pods" bash -c "[[ \$(kubectl --kubeconfig $work/kc --cache-dir $work/cache get job e2e-nx -o jsonpath='{.status.failed} {.status.conditions[?(@.type==\"Failed\")].reason}') == '2 BackoffLimitExceeded' ]]"
check "... each pod's submitter exited 1" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache get pods -l job-name=e2e-nx -o jsonpath='{range .items[*]}{.status.containerStatuses[0].state.terminated.exitCode}{\"\\n\"}{end}' | sort -u | grep -qx 1"
check "... and nothing was submitted" bash -c "[[ \$(subs attempts e2e-nx) == 0 ]]"

python3 - "$work/side.json" <<'PY'
import json, sys
side = ("until python -c \"import urllib.request; r=urllib.request.urlopen('http://localhost:8265/api/gcs_healthz', "
        "timeout=10); exit(0 if b'success' in r.read() else 1)\" >/dev/null 2>&1 ; do echo \"Waiting for Ray "
        "Dashboard GCS to become healthy at http://127.0.0.1:8265 ...\" ; sleep 2 ; done ; ray job submit "
        "--address http://127.0.0.1:8265 --submission-id side-1 -- python side.py FAKE:sleep=1,exit=2")
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "side-head", "labels": {"ray.io/node-type": "head", "ray.io/cluster": "side"}},
       "spec": {"restartPolicy": "Never", "containers": [
           {"name": "ray-head", "image": "rayproject/ray:2.46.0",
            "ports": [{"containerPort": 8265, "name": "dashboard"}]},
           {"name": "ray-job-submitter", "image": "rayproject/ray:2.46.0",
            "command": ["/bin/bash", "-ce", "--"], "args": [side]}]}}
json.dump(pod, open(sys.argv[1], "w"))
PY
check "SidecarMode head pod created" k apply -f "$work/side.json"
for _ in $(seq 100); do [[ $(kget pod side-head -o jsonpath='{.status.containerStatuses[1].state.terminated.reason}') != "" ]] && break; sleep 0.1; done
check "the sidecar submitter ends with the FAILED job's exit 1, the head keeps running" bash -c "[[ \$(kubectl --kubeconfig $work/kc --cache-dir $work/cache get pod side-head -o jsonpath='{.status.phase} {.status.containerStatuses[1].state.terminated.exitCode} {.status.containerStatuses[1].state.terminated.reason}') == 'Running 1 Error' ]]"
check "... its head container is still running" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache get pod side-head -o jsonpath='{.status.containerStatuses[0].state.running.startedAt}' | grep -q ."
check "totals over every head" bash -c "[[ \$(subs accepted) == 3 && \$(subs heads) == 2 && \$(subs submitters) == 0 ]]"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
