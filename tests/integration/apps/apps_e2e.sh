#!/usr/bin/env bash
# integration.apps: kubesim's apps/v1 Deployments, ReplicaSets and StatefulSets end to end over
# its HTTP API with kubectl (see CMakeLists.txt).
#   apps_e2e.sh PATH/TO/kubesim
# Ends with "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
kubesim=$1
work=$(mktemp -d)
pass=0
fail=0
ks_pid=
trap '[[ -n $ks_pid ]] && kill $ks_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # check NAME COMMAND...
    local name=$1; shift
    if "$@" >"$work/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/     /' "$work/out" | head -20; fi
}
# until SECONDS COMMAND...: retries COMMAND every 0.1 s for at most SECONDS.
until_ok() {
    local n=$(($1 * 10)); shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    "$@"
}

"$kubesim" --port 0 --nodes 2 --kubeconfig-out "$work/kc" --ready-file "$work/ready" \
    --pod-start-ms 100 --pod-ready-ms 150 >"$work/kubesim.log" 2>&1 &
ks_pid=$!
for _ in $(seq 100); do [[ -s "$work/ready" ]] && break; sleep 0.1; done
url=$(cat "$work/ready")
k() { kubectl --kubeconfig "$work/kc" --cache-dir "$work/cache" "$@"; }
export -f k
export work

count_pods() { # count_pods SELECTOR N: exactly N pods, not terminating, Running and Ready
    [[ $(k get pods -l "$1" -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
ok = all(p["status"].get("phase") == "Running" and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])) for p in live)
print(len(live) if ok else -1)') == "$2" ]]
}
export -f count_pods until_ok

cat >"$work/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: "nginx:1.27"}]}
YAML

check "Deployment applied" k apply -f "$work/web.yaml"
check "3 pods Running and Ready" until_ok 20 count_pods app=web 3
check "rollout status: successfully rolled out" k rollout status deploy/web --timeout=20s
check "kubectl get deploy: READY 3/3 UP-TO-DATE 3 AVAILABLE 3" bash -c '
    k get deploy web | tee /dev/stderr | python3 -c "
import sys; h, r = [l.split() for l in sys.stdin.read().splitlines()]
assert h == [\"NAME\", \"READY\", \"UP-TO-DATE\", \"AVAILABLE\", \"AGE\"], h
assert r[:4] == [\"web\", \"3/3\", \"3\", \"3\"], r"'
rs=$(k get rs -l app=web -o jsonpath='{.items[0].metadata.name}')
hash=$(k get rs "$rs" -o jsonpath='{.metadata.labels.pod-template-hash}')
check "ReplicaSet web-<pod-template-hash> ($rs), controlled by the Deployment" bash -c "
    [[ -n '$hash' && '$rs' == web-$hash ]] &&
    [[ \$(k get rs $rs -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}') == Deployment/web/true ]] &&
    [[ \$(k get rs $rs -o jsonpath='{.spec.selector.matchLabels.pod-template-hash}') == '$hash' ]]"
check "kubectl get rs: DESIRED 3 CURRENT 3 READY 3" bash -c "
    k get rs $rs | tee /dev/stderr | python3 -c \"
import sys; h, r = [l.split() for l in sys.stdin.read().splitlines()]
assert h == ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'], h
assert r[1:4] == ['3', '3', '3'], r\""
check "pods named <rs>-<5 chars>, owned by the ReplicaSet" bash -c "
    k get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}{\"\n\"}{end}' |
    grep -cE '^$rs-[a-z0-9]{5} ReplicaSet/$rs\$' | grep -qx 3"
check "Deployment conditions: Available MinimumReplicasAvailable, Progressing NewReplicaSetAvailable" bash -c "
    [[ \$(k get deploy web -o jsonpath='{.status.conditions[?(@.type==\"Available\")].reason}') == MinimumReplicasAvailable ]] &&
    [[ \$(k get deploy web -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].message}') == \"ReplicaSet \\\"$rs\\\" has successfully progressed.\" ]]"
check "defaults: strategy RollingUpdate 25%/25%, revisionHistoryLimit 10, progressDeadlineSeconds 600" bash -c "
    [[ \$(k get deploy web -o jsonpath='{.spec.strategy.type} {.spec.strategy.rollingUpdate.maxSurge} {.spec.strategy.rollingUpdate.maxUnavailable} {.spec.revisionHistoryLimit} {.spec.progressDeadlineSeconds}') == 'RollingUpdate 25% 25% 10 600' ]]"

victim=$(k get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
replaced() {
    k delete pod "$victim" --wait=false && sleep 0.3 && until_ok 20 count_pods app=web 3 &&
        until_ok 20 bash -c "! k get pods -l app=web -o name | grep -q '/$victim\$'"
}
check "a deleted pod ($victim) is replaced" replaced
check "kubectl scale --replicas=5: 5 pods" bash -c "k scale deploy web --replicas=5 && until_ok 20 count_pods app=web 5"
check "the /scale subresource reads 5 with the selector" bash -c "
    k get --raw /apis/apps/v1/namespaces/default/deployments/web/scale | python3 -c '
import json, sys; s = json.load(sys.stdin)
assert s[\"kind\"] == \"Scale\" and s[\"apiVersion\"] == \"autoscaling/v1\", s
assert s[\"spec\"][\"replicas\"] == 5 and s[\"status\"][\"selector\"] == \"app=web\", s'"
check "kubectl scale --replicas=1: 1 pod" bash -c "k scale deploy web --replicas=1 && until_ok 20 count_pods app=web 1"

check "kubectl set image: a new ReplicaSet" k set image deploy/web nginx=nginx:1.28
check "rollout of the new template completes" k rollout status deploy/web --timeout=20s
two_rs() {
    until_ok 20 bash -c "[[ \$(k get rs $rs -o jsonpath='{.spec.replicas}/{.status.replicas}') == 0/0 ]]" &&
        k get rs -l app=web -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
assert len(items) == 2, [i["metadata"]["name"] for i in items]
new = [i for i in items if i["metadata"]["name"] != sys.argv[1]][0]
assert new["spec"]["replicas"] == 1, new
assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2", new
assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28", new' "$rs" &&
        until_ok 20 count_pods app=web 1 &&
        until_ok 20 bash -c "[[ \$(k get pods -l app=web -o jsonpath='{.items[*].spec.containers[0].image}') == nginx:1.28 ]]"
}
check "two ReplicaSets: the old one at 0 (revision 1), the new one at 1 (revision 2) running nginx:1.28" two_rs

undo() {
    k rollout undo deploy/web && k rollout status deploy/web --timeout=20s &&
        until_ok 20 bash -c "[[ \$(k get rs $rs -o jsonpath='{.spec.replicas} {.metadata.annotations.deployment\.kubernetes\.io/revision}') == '1 3' ]]" &&
        [[ $(k get rs -l app=web -o name | wc -l) == 2 ]] &&
        [[ $(k get deploy web -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}') == 3 ]] &&
        until_ok 20 bash -c "[[ \$(k get pods -l app=web -o jsonpath='{.items[*].spec.containers[0].image}') == nginx:1.27 ]]"
}
check "kubectl rollout undo: the first ReplicaSet again (revision 3), no third one" undo

# StatefulSet: ordinals one after the other; a 20 ms poll of the API records what it saw.
cat >"$work/db.yaml" <<'YAML'
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: pg, image: "postgres:16"}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
YAML
python3 - "$url" "$work/order" <<'PY' &
import json, sys, time, urllib.request
url, out = sys.argv[1:3]
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
seen, deadline = [], time.monotonic() + 20
while time.monotonic() < deadline:
    items = json.load(http.open(url + "/api/v1/namespaces/default/pods?labelSelector=app%3Ddb"))["items"]
    state = sorted((p["metadata"]["name"], any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p.get("status", {}).get("conditions", []))) for p in items)
    if not seen or seen[-1] != state:
        seen.append(state)
    if len(state) == 3 and all(r for _, r in state):
        break
    time.sleep(0.02)
json.dump(seen, open(out, "w"))
PY
poll=$!
sleep 0.2
check "StatefulSet applied" k apply -f "$work/db.yaml"
wait $poll
check "db-0, db-1, db-2 created in order, each after the one before was Ready" python3 -c "
import json
seen = json.load(open('$work/order'))
print(seen)
assert seen[-1] == [['db-0', True], ['db-1', True], ['db-2', True]], seen[-1]
for st in seen:
    names = [n for n, _ in st]
    assert names == ['db-%d' % i for i in range(len(names))], st
    assert all(r for _, r in st[:-1]), st  # a pod exists only when every lower one is Ready
"
check "kubectl get sts: READY 3/3" bash -c '
    k get sts db | python3 -c "
import sys; h, r = [l.split() for l in sys.stdin.read().splitlines()]
assert h == [\"NAME\", \"READY\", \"AGE\"] and r[:2] == [\"db\", \"3/3\"], (h, r)"'
check "db-1: hostname, subdomain, pod-name and pod-index labels, claim data-db-1" bash -c "
    [[ \$(k get pod db-1 -o jsonpath='{.spec.hostname} {.spec.subdomain} {.metadata.labels.statefulset\.kubernetes\.io/pod-name} {.metadata.labels.apps\.kubernetes\.io/pod-index} {.spec.volumes[?(@.name==\"data\")].persistentVolumeClaim.claimName}') == 'db-1 db db-1 1 data-db-1' ]]"
if k api-resources 2>/dev/null | grep -q '^persistentvolumeclaims'; then
    check "PVCs data-db-0..2 made from volumeClaimTemplates" bash -c "
        [[ \$(k get pvc -o name | sort | tr '\n' ' ') == 'persistentvolumeclaim/data-db-0 persistentvolumeclaim/data-db-1 persistentvolumeclaim/data-db-2 ' ]]"
else
    echo "skip PVCs: kubesim serves no persistentvolumeclaims (wt-netpol adds them)"
fi
sts_down() {
    k scale sts db --replicas=1 && until_ok 20 count_pods app=db 1 &&
        until_ok 20 bash -c "[[ \$(k get pods -l app=db -o name) == pod/db-0 ]]"
}
check "scale the StatefulSet to 1: db-1 and db-2 go, db-0 stays" sts_down

cat >"$work/bad.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: b}}
    spec: {containers: [{name: c, image: i}]}
YAML
check "selector not matching the template labels: kube's 422" bash -c "
    ! k apply -f $work/bad.yaml 2>$work/err; cat $work/err;
    grep -qxF 'The Deployment \"bad\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: \`selector\` does not match template \`labels\`' $work/err"

check "a StatefulSet's serviceName cannot change: kube's Forbidden" bash -c "
    ! sed 's/serviceName: db/serviceName: other/' $work/db.yaml | k apply -f - 2>$work/err; cat $work/err;
    grep -qxF \"The StatefulSet \\\"db\\\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden\" $work/err"
check "a Deployment's selector is immutable: kube's 422" bash -c "
    ! sed 's/app: web/app: web2/g' $work/web.yaml | k apply -f - 2>$work/err; cat $work/err;
    grep -qF 'The Deployment \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable' $work/err"
check "owners deleted: ReplicaSets and pods garbage-collected" bash -c "
    k delete deploy web && k delete sts db &&
    until_ok 20 bash -c '[[ -z \$(k get rs,pods -o name) ]]'"

# kubesim stops on SIGTERM; under ASan/UBSan its log then holds any report.
kill "$ks_pid" 2>/dev/null
wait "$ks_pid" 2>/dev/null
ks_pid=
check "kubesim's log holds no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' -A30 $work/kubesim.log"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
