#!/usr/bin/env bash
# End-to-end test of kubesim's simulated workloads, over its real HTTP API.
#   kubesim_e2e.sh PATH/TO/kubesim
# Ends with "N passed, M failed"; exits non-zero on any failure.
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
    --pod-start-ms 50 --pod-ready-ms 50 >"$work/kubesim.log" 2>&1 &
ks_pid=$!
for _ in $(seq 100); do [[ -s "$work/ready" ]] && break; sleep 0.1; done
url=$(cat "$work/ready")
k() { kubectl --kubeconfig "$work/kc" --cache-dir "$work/cache" "$@"; }
proxy="$url/api/v1/namespaces/default/services/demo-head-svc:dashboard/proxy"

# Submit a Ray job (when BODY is given) and poll its status through the proxy until it is
# terminal; print each new status. One python3 process submits and polls (every 20 ms, for at
# most 60 s), so no process start-up under CPU load sits between the submission and the first
# poll or between two polls. The submission's response goes to $work/submit.
job_states() { # job_states ID [BODY]
    python3 - "$proxy" "$1" "${2:-}" "$work/submit" <<'PY'
import json, sys, time, urllib.request
proxy, jid, body, out = sys.argv[1:5]
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
if body:
    req = urllib.request.Request(proxy + "/api/jobs/", data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with http.open(req, timeout=30) as r, open(out, "w") as f:
        f.write(r.read().decode())
last, deadline = "", time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        with http.open(proxy + "/api/jobs/" + jid, timeout=30) as r:
            s = json.load(r)["status"]
    except Exception:
        s = ""
    if s and s != last:
        print(s, end=" ", flush=True)
        last = s
    if s in ("SUCCEEDED", "FAILED", "STOPPED"):
        print()
        sys.exit(0)
    time.sleep(0.02)
print()
sys.exit(1)
PY
}
# Poll a Serve app's status through the proxy until it leaves DEPLOYING; print each new status.
app_states() {
    local app=$1 last="" s
    for _ in $(seq 200); do
        s=$(curl -s "$proxy/api/serve/applications/" | python3 -c "import json,sys; print(json.load(sys.stdin)['applications'].get('$app',{}).get('status',''))" 2>/dev/null)
        if [[ -n "$s" && "$s" != "$last" ]]; then echo -n "$s "; last=$s; fi
        case "$s" in RUNNING|DEPLOY_FAILED) echo; return 0 ;; esac
        sleep 0.05
    done
    echo; return 1
}

cat >"$work/head.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: demo-head
  labels: {ray.io/node-type: head, ray.io/cluster: demo}
spec:
  containers:
  - name: ray-head
    image: rayproject/ray:2.46.0
    resources: {requests: {cpu: "1", memory: 1Gi}}
    ports: [{containerPort: 8265, name: dashboard}, {containerPort: 8000, name: serve}]
---
apiVersion: v1
kind: Service
metadata: {name: demo-head-svc}
spec:
  selector: {ray.io/node-type: head, ray.io/cluster: demo}
  ports: [{name: dashboard, port: 8265}, {name: serve, port: 8000}]
YAML

check "nodes are Ready" k wait --for=condition=Ready node --all --timeout=20s
check "head pod and service created" k apply -f "$work/head.yaml"
check "head pod becomes Ready" k wait --for=condition=Ready pod/demo-head --timeout=30s
check "head pod has an IP and a node" bash -c "[[ -n \$(kubectl --kubeconfig $work/kc --cache-dir $work/cache get pod demo-head -o jsonpath='{.status.podIP}{.spec.nodeName}') ]]"
check "EndpointSlice lists the ready head" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache get endpointslices -l kubernetes.io/service-name=demo-head-svc -o jsonpath='{.items[0].endpoints[0].conditions.ready}' | grep -qx true"

# The Ray head answers once its simulated start-up is over.
for _ in $(seq 100); do curl -sf "$proxy/api/version" >/dev/null && break; sleep 0.1; done
check "dashboard /api/version through the service proxy" bash -c "curl -sf '$proxy/api/version' | grep -q ray_version"

# PENDING 1 s and RUNNING 3 s, so the 20 ms poll sees each state unless it stalls for seconds;
# the recorded times prove the two phases whatever the poll saw.
states=$(job_states job-ok '{"entrypoint":"python ok.py FAKE:pending=1,sleep=3","submission_id":"job-ok"}')
check "job submitted" grep -q '"submission_id": *"job-ok"' "$work/submit"
check "job goes PENDING -> RUNNING -> SUCCEEDED (saw: $states)" test "$states" = "PENDING RUNNING SUCCEEDED "
check "job ran a driver, exited 0, and ended 1 s + 3 s after its submission" python3 -c "
import json, urllib.request
j = json.load(urllib.request.build_opener(urllib.request.ProxyHandler({})).open('$proxy/api/jobs/job-ok'))
assert j['status'] == 'SUCCEEDED' and j['driver_info'] and j['driver_exit_code'] == 0, j
assert j['end_time'] - j['start_time'] == 4000, (j['start_time'], j['end_time'])"

states=$(job_states job-bad '{"entrypoint":"python bad.py FAKE:sleep=0.3,exit=3","submission_id":"job-bad"}')
check "scripted job goes to FAILED (saw: $states)" bash -c "[[ '$states' == *FAILED* && '$states' != *SUCCEEDED* ]]"
check "failed job reports its exit code" bash -c "curl -s '$proxy/api/jobs/job-bad' | grep -q '\"driver_exit_code\": *3'"
check "duplicate submission id is refused" bash -c "curl -s -o /dev/null -w '%{http_code}' -X POST -d '{\"entrypoint\":\"x\",\"submission_id\":\"job-ok\"}' '$proxy/api/jobs/' | grep -qx 500"
check "unknown job is 404" bash -c "curl -s -o /dev/null -w '%{http_code}' '$proxy/api/jobs/nope' | grep -qx 404"

cat >"$work/serve.json" <<'JSON'
{"applications": [{"name": "app1", "route_prefix": "/", "import_path": "fruit.deployment_graph",
  "deployments": [{"name": "MangoStand", "num_replicas": 1}]}]}
JSON
check "serve config accepted" bash -c "curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' --data @$work/serve.json '$proxy/api/serve/applications/' | grep -qx 200"
states=$(app_states app1)
check "serve app goes DEPLOYING -> RUNNING (saw: $states)" bash -c "[[ '$states' == DEPLOYING*RUNNING* ]]"
sed -e 's/fruit.deployment_graph/fake_missing_module.app/' -e 's/app1/app2/' "$work/serve.json" >"$work/serve-bad.json"
curl -s -X PUT -H 'Content-Type: application/json' --data @"$work/serve-bad.json" "$proxy/api/serve/applications/" >/dev/null
states=$(app_states app2)
check "bad import path goes DEPLOYING -> DEPLOY_FAILED (saw: $states)" bash -c "[[ '$states' == DEPLOYING*DEPLOY_FAILED* ]]"
check "DEPLOY_FAILED message names the missing module" bash -c "curl -s '$proxy/api/serve/applications/' | grep -q 'No module named'"

# The Gateway API add-on: CRDs from boot, the simulated controller's status, weighted traffic.
check "Gateway API CRDs installed at boot" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache get crd -o name | grep -c 'gateway.networking.k8s.io' | grep -qx 3"
check "Gateway API in discovery" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache api-resources --api-group=gateway.networking.k8s.io -o name | sort | tr '\n' ' ' | grep -qx 'gatewayclasses.gateway.networking.k8s.io gateways.gateway.networking.k8s.io httproutes.gateway.networking.k8s.io '"
cat >"$work/gw-bad.yaml" <<'YAML'
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bad}
spec:
  listeners: [{name: http, protocol: HTTP, port: 80}]
YAML
check "a Gateway without gatewayClassName is refused" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache apply -f $work/gw-bad.yaml 2>&1 | grep -q 'spec.gatewayClassName: Required value'"
gwheads=""
for c in gw-a gw-b; do
    gwheads+="apiVersion: v1
kind: Pod
metadata: {name: $c-head, labels: {ray.io/node-type: head, ray.io/cluster: $c}}
spec:
  containers:
  - {name: ray-head, image: rayproject/ray:2.46.0, ports: [{containerPort: 8265, name: dashboard}, {containerPort: 8000, name: serve}]}
---
apiVersion: v1
kind: Service
metadata: {name: $c-serve-svc}
spec:
  selector: {ray.io/node-type: head, ray.io/cluster: $c}
  ports: [{name: serve, port: 8000}, {name: dashboard, port: 8265}]
---
"
done
echo "$gwheads" >"$work/gw-heads.yaml"
check "two RayCluster heads with serve Services" k apply -f "$work/gw-heads.yaml"
check "both heads Ready" k wait --for=condition=Ready pod/gw-a-head pod/gw-b-head --timeout=30s
for c in gw-a gw-b; do
    sp="$url/api/v1/namespaces/default/services/$c-serve-svc:dashboard/proxy"
    for _ in $(seq 100); do curl -sf "$sp/api/version" >/dev/null && break; sleep 0.1; done
    curl -s -o /dev/null -X PUT -H 'Content-Type: application/json' --data @"$work/serve.json" "$sp/api/serve/applications/"
done
for _ in $(seq 100); do curl -sf "$url/api/v1/namespaces/default/services/gw-b-serve-svc:serve/proxy/" >/dev/null && break; sleep 0.1; done
check "the Serve answer names its RayCluster (service proxy)" bash -c "curl -s '$url/api/v1/namespaces/default/services/gw-a-serve-svc:serve/proxy/' | grep -qx \"Hello from simulated Serve application 'app1' on cluster 'gw-a'.\""
cat >"$work/gw.yaml" <<'YAML'
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: istio}
spec: {controllerName: istio.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: rs-gateway}
spec:
  gatewayClassName: istio
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: rs-httproute}
spec:
  parentRefs: [{name: rs-gateway, namespace: default}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs:
    - {kind: Service, name: gw-a-serve-svc, namespace: default, port: 8000, weight: 30}
    - {kind: Service, name: gw-b-serve-svc, namespace: default, port: 8000, weight: 70}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken}
spec:
  parentRefs: [{name: rs-gateway}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /broken}}]
    backendRefs: [{name: no-such-svc, port: 8000}]
YAML
check "GatewayClass, Gateway and HTTPRoutes applied" k apply -f "$work/gw.yaml"
check "GatewayClass Accepted" k wait --for=condition=Accepted gatewayclass/istio --timeout=10s
check "Gateway Accepted and Programmed" k wait --for=condition=Programmed --for=condition=Accepted gateway/rs-gateway --timeout=10s
check "kubectl get gateway shows the class, an address and PROGRAMMED True" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache get gateway rs-gateway --no-headers | grep -Eq '^rs-gateway +istio +10\.96\.[0-9.]+ +True '"
check "HTTPRoute Accepted and ResolvedRefs by the class's controller" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache get httproute rs-httproute -o jsonpath='{.status.parents[0].controllerName} {.status.parents[0].conditions[*].type}={.status.parents[0].conditions[*].status}' | grep -qx 'istio.io/gateway-controller Accepted ResolvedRefs=True True'"
check "a missing backend Service: ResolvedRefs False/BackendNotFound" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache get httproute broken -o jsonpath='{.status.parents[0].conditions[1].status}/{.status.parents[0].conditions[1].reason}' | grep -qx False/BackendNotFound"
gwsplit() { # gwsplit N: N requests through the Gateway; prints "a b other"
    python3 - "$url/kubesim/gateways/default/rs-gateway/proxy/" "$1" <<'PY'
import sys, urllib.request, urllib.error
url, n = sys.argv[1], int(sys.argv[2])
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
c = {"gw-a": 0, "gw-b": 0, "other": 0}
for _ in range(n):
    try:
        body = http.open(url, timeout=30).read().decode()
    except urllib.error.HTTPError:
        body = ""
    k = "gw-a" if "on cluster 'gw-a'." in body else "gw-b" if "on cluster 'gw-b'." in body else "other"
    c[k] += 1
print(c["gw-a"], c["gw-b"], c["other"])
PY
}
split=$(gwsplit 100)
check "100 requests through the Gateway at 30/70 split exactly (saw: $split)" test "$split" = "30 70 0"
check "a path of the broken route answers 500" bash -c "curl -s -o /dev/null -w '%{http_code}' '$url/kubesim/gateways/default/rs-gateway/proxy/broken/x' | grep -qx 500"
check "an unknown Gateway answers 404" bash -c "curl -s -o /dev/null -w '%{http_code}' '$url/kubesim/gateways/default/nope/proxy/' | grep -qx 404"
check "weights moved to 0/100" k patch httproute rs-httproute --type=json -p '[{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":0},{"op":"replace","path":"/spec/rules/0/backendRefs/1/weight","value":100}]'
split=$(gwsplit 50)
check "a 0-weight backend is never hit (saw: $split)" test "$split" = "0 50 0"

# A pod too large for any node stays Pending as Unschedulable.
k run huge --image=busybox --restart=Never --overrides='{"spec":{"containers":[{"name":"huge","image":"busybox","resources":{"requests":{"cpu":"1000"}}}]}}' >/dev/null 2>&1
sleep 0.5
check "an unfittable pod is Unschedulable" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache get pod huge -o jsonpath='{.status.conditions[0].reason}' | grep -qx Unschedulable"

# A batch Job runs its pod to completion (applied as YAML; `kubectl create job`, which sends
# protobuf, works too: sim/pbjson.h).
cat >"$work/job.yaml" <<'YAML'
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: once, image: busybox}]
YAML
check "kubectl create job (a protobuf body) creates it" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache create job pb --image=busybox 2>&1 | grep -q 'job.batch/pb created'"
check "batch Job created" k apply -f "$work/job.yaml"
check "batch Job completes" k wait --for=condition=Complete job/once --timeout=30s

# A Job pod with a native sidecar (init container, restartPolicy Always) completes; the sidecar
# ran beside the main container and was stopped at the end.
cat >"$work/sidecar-job.yaml" <<'YAML'
apiVersion: batch/v1
kind: Job
metadata: {name: withsidecar}
spec:
  template:
    metadata: {annotations: {sim.rayfleet.io/run-seconds: "0.5"}}
    spec:
      restartPolicy: Never
      initContainers: [{name: logs, image: busybox, restartPolicy: Always}]
      containers: [{name: main, image: busybox}]
YAML
check "Job with a native sidecar created" k apply -f "$work/sidecar-job.yaml"
check "Job with a native sidecar completes" k wait --for=condition=Complete job/withsidecar --timeout=30s
check "its sidecar was stopped: terminated Completed, not started" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache get pod -l job-name=withsidecar -o jsonpath='{.items[0].status.initContainerStatuses[0].state.terminated.reason}/{.items[0].status.initContainerStatuses[0].started}' | grep -qx Completed/false"

# pod-fault Exit: one container of a running pod exits 3; restartPolicy Always restarts it.
cat >"$work/multi.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: multi}
spec:
  containers: [{name: main, image: busybox}, {name: side, image: busybox}]
YAML
check "two-container pod Ready" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache apply -f $work/multi.yaml && kubectl --kubeconfig $work/kc --cache-dir $work/cache wait --for=condition=Ready pod/multi --timeout=30s"
check "pod-fault Exit accepted" bash -c "curl -s -o /dev/null -w '%{http_code}' -X POST -d '{\"namespace\":\"default\",\"name\":\"multi\",\"kind\":\"Exit\",\"container\":\"side\",\"code\":3,\"afterSeconds\":0.2}' '$url/kubesim/pod-fault' | grep -qx 200"
check "pod-fault Exit of an unknown container is 400" bash -c "curl -s -o /dev/null -w '%{http_code}' -X POST -d '{\"namespace\":\"default\",\"name\":\"multi\",\"kind\":\"Exit\",\"container\":\"nope\",\"code\":3,\"afterSeconds\":0}' '$url/kubesim/pod-fault' | grep -qx 400"
check "the container exited 3 and was restarted" bash -c "for i in \$(seq 100); do kubectl --kubeconfig $work/kc --cache-dir $work/cache get pod multi -o jsonpath='{.status.containerStatuses[1].lastState.terminated.exitCode}/{.status.containerStatuses[1].lastState.terminated.reason}/{.status.containerStatuses[1].restartCount}' | grep -qx '3/Error/[1-9]' && exit 0; sleep 0.1; done; exit 1"

# A scripted init container: exit 5 under restartPolicy Never fails the pod (kubectl: Init:Error);
# exit 1 under Always is restarted with the back-off (kubectl: Init:CrashLoopBackOff).
cat >"$work/initfail.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: initfail, annotations: {sim.rayfleet.io/exit.setup: "5@0.2"}}
spec:
  restartPolicy: Never
  initContainers: [{name: setup, image: busybox}]
  containers: [{name: main, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: initloop, annotations: {sim.rayfleet.io/exit.setup: "1@0.2"}}
spec:
  initContainers: [{name: setup, image: busybox}]
  containers: [{name: main, image: busybox}]
YAML
check "pods with scripted init containers created" k apply -f "$work/initfail.yaml"
check "kubectl shows Init:Error, the pod Failed" bash -c "for i in \$(seq 100); do kubectl --kubeconfig $work/kc --cache-dir $work/cache get pod initfail --no-headers | grep -q ' Init:Error ' && kubectl --kubeconfig $work/kc --cache-dir $work/cache get pod initfail -o jsonpath='{.status.phase}/{.status.initContainerStatuses[0].state.terminated.exitCode}' | grep -qx Failed/5 && exit 0; sleep 0.1; done; exit 1"
check "kubectl shows Init:CrashLoopBackOff, the pod Pending" bash -c "for i in \$(seq 100); do kubectl --kubeconfig $work/kc --cache-dir $work/cache get pod initloop --no-headers | grep -q ' Init:CrashLoopBackOff ' && kubectl --kubeconfig $work/kc --cache-dir $work/cache get pod initloop -o jsonpath='{.status.phase}' | grep -qx Pending && exit 0; sleep 0.1; done; exit 1"

# pod-fault ServeProxyDown/Up: the head's Serve proxy health answers 503, then 200 again.
hz="$url/api/v1/namespaces/default/pods/gw-a-head:8000/proxy/-/healthz"
check "serve proxy healthy" bash -c "curl -s '$hz' | grep -qx success"
check "pod-fault ServeProxyDown accepted" bash -c "curl -s -o /dev/null -w '%{http_code}' -X POST -d '{\"namespace\":\"default\",\"name\":\"gw-a-head\",\"kind\":\"ServeProxyDown\"}' '$url/kubesim/pod-fault' | grep -qx 200"
check "serve proxy health is 503 'This node is being drained.'" bash -c "[[ \$(curl -s -w ' %{http_code}' '$hz') == 'This node is being drained. 503' ]]"
check "pod-fault ServeProxyUp: healthy again" bash -c "curl -s -X POST -d '{\"namespace\":\"default\",\"name\":\"gw-a-head\",\"kind\":\"ServeProxyUp\"}' '$url/kubesim/pod-fault' >/dev/null && curl -s '$hz' | grep -qx success"

# Object metadata validation: kube-apiserver's 422 messages.
cat >"$work/badlabel.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: badlabel, labels: {app: "-x"}}
YAML
check "an invalid label value is refused with kube's message" bash -c "kubectl --kubeconfig $work/kc --cache-dir $work/cache apply -f $work/badlabel.yaml 2>&1 | grep -qF 'The ConfigMap \"badlabel\" is invalid: metadata.labels: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '\"'\"'-'\"'\"', '\"'\"'_'\"'\"' or '\"'\"'.'\"'\"', and must start and end with an alphanumeric character'"

# Graceful deletion: kubectl waits until the kubelet has finished the pod.
check "pod deletion completes" k delete pod demo-head --timeout=30s
check "no endpoints once the head is gone" bash -c "curl -s -o /dev/null -w '%{http_code}' '$proxy/api/version' | grep -qx 503"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
