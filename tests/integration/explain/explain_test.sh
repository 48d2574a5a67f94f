#!/usr/bin/env bash
# integration.explain: after a RayCluster is up on the simulated cluster, `rayfleetctl audit`
# lists every write the scheduler made, and `rayfleetctl explain` traces pods back to the
# RayCluster change that caused them (also after a scale up, a pod deleted by hand, and a scale
# down naming the pod in workersToDelete); `rayfleetctl drift` shows no drift once settled.
# Usage: explain_test.sh PATH/TO/rayfleetctl PATH/TO/raycluster.yaml
set -uo pipefail
ctl=${1:?usage: explain_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
yaml=${2:?usage: explain_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
source "$here/../cli/testlib.sh"
tmp=$(mktemp -d /tmp/rfexplain.XXXXXX)
state="$tmp/state"
ns=default
rc=demo

finish() {
    "$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1 || true
    rm -rf "$tmp"
    tl_summary
}
trap 'finish; exit $?' EXIT

command -v kubectl >/dev/null || { bad "kubectl is not installed"; exit 1; }
command -v python3 >/dev/null || { bad "python3 is not installed"; exit 1; }

kubeconfig=$("$ctl" up --sim --detach --state-dir "$state" --timeout 60s 2>"$tmp/up.err")
if [[ $? -ne 0 || ! -s "$kubeconfig" ]]; then bad "up --sim --detach"; cat "$tmp/up.err"; exit 1; fi
ok "up --sim --detach"
kc() { kubectl --kubeconfig "$kubeconfig" --cache-dir "$tmp/kcache" "$@"; }
ctlx() { "$ctl" "$@" --state-dir "$state"; }

# Waits until the RayCluster is ready with N running worker pods (and nothing terminating).
wait_workers() {
    local n=$1 i pods
    for i in $(seq 1 120); do
        pods=$(kc get pods -n $ns -l ray.io/cluster=$rc,ray.io/node-type=worker \
            -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase}{"\n"}{end}' 2>/dev/null)
        if [[ $(grep -c '=Running$' <<<"$pods") -eq $n && $(grep -c . <<<"$pods") -eq $n &&
              $(kc get raycluster $rc -n $ns -o jsonpath='{.status.state}' 2>/dev/null) == ready ]]; then
            sleep 1.5 # the last status write and the watcher's rows
            return 0
        fi
        sleep 0.5
    done
    echo "  pods: $pods" >&2
    return 1
}
workers() {
    kc get pods -n $ns -l ray.io/cluster=$rc,ray.io/node-type=worker \
        -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort
}

kc apply -f "$yaml" >/dev/null && ok "kubectl apply RayCluster" || bad "kubectl apply RayCluster"
if wait_workers 2; then ok "RayCluster ready with 2 workers"; else bad "RayCluster ready with 2 workers"; exit 1; fi

# --- audit: every write the scheduler made ---------------------------------------------------
ctlx audit --output json --limit 100000 >"$tmp/audit.json"
pods=$(kc get pods -n $ns -l ray.io/cluster=$rc -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
events=$(kc get events -n $ns -o json | python3 -c '
import json, sys
for e in json.load(sys.stdin)["items"]:
    if e.get("reportingInstance") == "rayfleet-scheduler" or \
       (e.get("source") or {}).get("component") == "raycluster-controller":
        print(e["metadata"]["name"])')
check_rows() {
    python3 - "$tmp/audit.json" "$1" "$2" "$3" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
kind, verb, names = sys.argv[2], sys.argv[3], [n for n in sys.argv[4].split() if n]
missing = [n for n in names if not any(r["target_kind"] == kind and r["verb"] == verb and
           r["target_name"] == n and 200 <= r["result_status"] < 300 for r in rows)]
if missing or not names:
    print("  missing %s %s rows: %s" % (verb, kind, missing or "(no objects)"), file=sys.stderr)
    sys.exit(1)
PY
}
check_rows Pod create "$pods" && ok "audit: a create row for every pod ($(wc -w <<<"$pods"))" \
    || bad "audit: a create row for every pod"
check_rows Service create "$rc-head-svc" && ok "audit: a create row for the head service" \
    || bad "audit: a create row for the head service"
check_rows RayCluster status "$rc" && ok "audit: status writes of the RayCluster" \
    || bad "audit: status writes of the RayCluster"
check_rows Event create "$events" && ok "audit: a create row for every Event ($(wc -w <<<"$events"))" \
    || bad "audit: a create row for every Event"
python3 - "$tmp/audit.json" <<'PY' && ok "audit: every row has actor, cause key/generation/rv/event and correlation id" || bad "audit: every row has its cause"
import json, sys
rows = json.load(open(sys.argv[1]))
bad = [r["id"] for r in rows if not (r["actor_service"] == "scheduler" and r["actor_replica"] and
       r["cause_key"] == "default/default/demo" and r["cause_generation"] and
       r["cause_resource_version"] and r["correlation_id"])]
if bad or not rows:
    print("  rows without a full cause:", bad, file=sys.stderr); sys.exit(1)
PY
# Nothing exists that the scheduler made without a row: every object owned by the RayCluster
# (pods, services) that the API server holds has a create row.
owned=$(kc get pods,services -n $ns -o json | python3 -c '
import json, sys
for o in json.load(sys.stdin)["items"]:
    if any(r.get("kind") == "RayCluster" and r.get("name") == "demo" for r in o["metadata"].get("ownerReferences", [])):
        print(o["kind"], o["metadata"]["name"])')
missing=""
while read -r k n; do
    [[ -z "$k" ]] && continue
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if any(x["target_kind"]==sys.argv[2] and x["target_name"]==sys.argv[3] and x["verb"]=="create" for x in r) else 1)' \
        "$tmp/audit.json" "$k" "$n" || missing="$missing $k/$n"
done <<<"$owned"
[[ -z "$missing" ]] && ok "audit: every object owned by the RayCluster has a create row" \
    || bad "audit: objects owned by the RayCluster without a create row:$missing"

# --- explain a worker pod ----------------------------------------------------------------------
before=$(workers)
w1=$(head -n 1 <<<"$before")
out=$(ctlx explain "pod/$w1"); code=$?
[[ $code -eq 0 ]] && ok "explain pod exits 0" || bad "explain pod exits 0 (got $code)"
has "explain pod/$w1 names the RayCluster, generation, resourceVersion, reason and counts" "$out" \
    "^pod $ns/$w1 was created at .* by scheduler/0 \(CreatedWorkerPod\)" \
    "because RayCluster $ns/$rc generation 1 \(resourceVersion [0-9]+, bus event [0-9]+\)" \
    "wanted 2 workers in group workers \(replicas 2 x numOfHosts 1\) and 0 existed, so this reconcile created 2" \
    "same reconcile also: .*created Service $ns/$rc-head-svc \(CreatedService\)" \
    "CreatedHeadPod" "now: it exists"
out=$(ctlx explain "PODS/$w1" -n $ns --output json)
python3 -c '
import json, sys
d = json.loads(sys.argv[1])
a = d["actions"][0]
assert d["verdict"] == "exists" and d["created_by_rayfleet"], d["verdict"]
assert a["reason"] == "CreatedWorkerPod" and a["cause_generation"] == 1, a
assert a["cause_object"]["kind"] == "RayCluster" and a["cause_object"]["name"] == "demo"
assert len(a["same_reconcile"]) >= 4
' "$out" && ok "explain --output json (case-insensitive plural kind, -n)" || bad "explain --output json"
out=$(ctlx explain svc/$rc-head-svc)
has "explain svc/$rc-head-svc" "$out" "was created .*\(CreatedService\)" "wanted this Service"
out=$(ctlx explain raycluster/$rc); code=$?
has "explain raycluster/$rc groups the actions by reconcile" "$out" \
    "^RayCluster $ns/$rc: generation 1" "reconcile [0-9a-f]{32} at .* cause generation 1" \
    "create  Pod $ns/$w1 \(CreatedWorkerPod\) 201" "status  RayCluster $ns/$rc 200"
out=$(ctlx explain pod/no-such-pod 2>&1); code=$?
[[ $code -eq 1 && $out == *"no audit row"* ]] && ok "explain of an unknown pod exits 1" \
    || bad "explain of an unknown pod exits 1 (exit $code: $out)"
eps=$(kc get endpointslices -n $ns -o jsonpath='{.items[0].metadata.name}' 2>/dev/null)
if [[ -n "$eps" ]]; then
    out=$(ctlx explain "endpointslice/$eps" 2>&1); code=$?
    [[ $code -eq 1 && $out == *"not created by rayfleet"* ]] \
        && ok "explain of an object rayfleet did not create says so (exit 1)" \
        || bad "explain endpointslice/$eps (exit $code: $out)"
fi
out=$(ctlx explain widget/x 2>&1); code=$?
[[ $code -eq 2 && $out == *"unknown kind 'widget'"* ]] && ok "unknown kind exits 2" || bad "unknown kind (exit $code: $out)"
out=$(ctlx explain demo 2>&1); code=$?
[[ $code -eq 2 && $out == *"KIND/NAME"* ]] && ok "missing KIND/ exits 2" || bad "missing KIND/ (exit $code: $out)"
"$ctl" explain --help | grep -q '^Usage: rayfleetctl explain' && ok "explain --help" || bad "explain --help"

# --- scale up: the new pod comes from generation 2 ---------------------------------------------
kc patch raycluster $rc -n $ns --type=json \
    -p '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":3}]' >/dev/null
if wait_workers 3; then ok "scaled to 3 workers"; else bad "scaled to 3 workers"; fi
after=$(workers)
w3=$(comm -13 <(echo "$before") <(echo "$after") | head -n 1)
out=$(ctlx explain "pod/$w3")
has "explain the scaled-up pod $w3: generation 2" "$out" \
    "because RayCluster $ns/$rc generation 2 \(resourceVersion [0-9]+" \
    "wanted 3 workers in group workers \(replicas 3 x numOfHosts 1\) and 2 existed, so this reconcile created 1" \
    "now: generation 2"

# --- a worker deleted by hand: replaced; its explain says rayfleet did not delete it ------------
kc delete pod "$w1" -n $ns --wait=false >/dev/null
for i in $(seq 1 60); do
    now=$(workers)
    grep -qx "$w1" <<<"$now" || [[ $(grep -c . <<<"$now") -ne 3 ]] || break
    sleep 0.5
done
wait_workers 3 && ok "a replacement worker is running" || bad "a replacement worker is running"
now=$(workers)
wr=$(comm -13 <(echo "$after") <(echo "$now") | head -n 1)
[[ -n "$wr" ]] && ok "replacement pod $wr" || bad "no replacement pod found"
out=$(ctlx explain "pod/$w1")
has "explain the hand-deleted pod: deleted outside rayfleet, replacement listed" "$out" \
    "was created at .*\(CreatedWorkerPod\)" "no delete row for it: it was deleted outside rayfleet" \
    "worker pods the scheduler created later in group workers" "pod $ns/$wr at"
ctlx audit --verb delete --name "$w1" --output json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)==[] else 1)' \
    && ok "audit has no delete row for the hand-deleted pod" || bad "audit has a delete row for the hand-deleted pod"
out=$(ctlx explain "pod/$wr")
has "explain the replacement: its cause" "$out" \
    "because RayCluster $ns/$rc generation 2 \(resourceVersion [0-9]+, bus event [0-9]+\)" \
    "and 2 existed, so this reconcile created 1"

# --- drift -------------------------------------------------------------------------------------
out=$(ctlx drift)
has "drift: no drift once settled" "$out" "demo +2 +head pod +1 +1 +0" \
    "demo +2 +workers workers +3 +3 +0" "demo +2 +Service demo-head-svc +1 +1 +0" \
    "0 child counts drifting \(desired rows of scheduler.db versus observed.db\)"
"$ctl" drift --help | grep -q 'desired_objects' && ok "drift --help says it reads desired_objects" \
    || bad "drift --help"

# --- scale down naming a pod in workersToDelete --------------------------------------------------
victim=$(head -n 1 <<<"$now")
kc patch raycluster $rc -n $ns --type=json -p "[{\"op\":\"replace\",\"path\":\"/spec/workerGroupSpecs/0/replicas\",\"value\":2},{\"op\":\"add\",\"path\":\"/spec/workerGroupSpecs/0/scaleStrategy\",\"value\":{\"workersToDelete\":[\"$victim\"]}}]" >/dev/null
wait_workers 2 && ok "scaled down to 2 workers" || bad "scaled down to 2 workers"
out=$(ctlx explain "pod/$victim")
has "explain the pod named in workersToDelete" "$out" \
    "was deleted at .* by scheduler/0 \(DeletedWorkerPod\)" \
    "generation 3" "why: scaleStrategy.workersToDelete of group workers names it" \
    "rayfleet deleted it"

# --- the wanted counts: explain and drift count as the scheduler does -------------------------
# Worker groups where a count could go wrong (numOfHosts 0, replicas above maxReplicas, below
# minReplicas, a multi-host group) and a suspended cluster; minReplicas above maxReplicas is
# rejected by validation (the rcstatus self-test covers it). The scheduler's desired rows and
# drift's count from the spec alone must agree on every pod group: both are
# rcstatus_group_wanted() now, where explain once counted numOfHosts 0 as one host.
group() { # NAME REPLICAS MIN MAX HOSTS
    cat <<EOF
    - groupName: $1
      replicas: $2
      minReplicas: $3
      maxReplicas: $4
      numOfHosts: $5
      rayStartParams: {}
      template:
        spec:
          containers:
            - name: ray-worker
              image: rayproject/ray:2.46.0
              resources: {requests: {cpu: 10m, memory: 64Mi}, limits: {cpu: 10m, memory: 64Mi}}
EOF
}
cluster() { # NAME SUSPEND GROUPS...
    local name=$1 suspend=$2; shift 2
    cat <<EOF
---
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: $name, namespace: $ns}
spec:
  rayVersion: "2.46.0"
  suspend: $suspend
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
          - name: ray-head
            image: rayproject/ray:2.46.0
            resources: {requests: {cpu: 10m, memory: 64Mi}, limits: {cpu: 10m, memory: 64Mi}}
  workerGroupSpecs:
EOF
    printf '%s\n' "$@"
}
{
    cluster edge false "$(group nohosts 2 0 5 0)" "$(group clamped 5 0 1 1)" \
        "$(group floor 0 2 4 1)" "$(group multi 1 0 3 2)"
    cluster sleepy true "$(group idle 2 0 5 1)"
} >"$tmp/edge.yaml"
kc apply -f "$tmp/edge.yaml" >/dev/null && ok "kubectl apply the edge-case RayClusters" \
    || bad "kubectl apply the edge-case RayClusters"
# The wanted pod counts per owner and group: from the desired rows, and from the spec alone
# (drift over a copy of observed.db without scheduler.db).
wants() { # STATE_DIR -> lines "owner child want"
    "$ctl" drift --state-dir "$1" --output json 2>/dev/null | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r["raycluster"] in ("edge", "sleepy") and (r["child"] == "head pod" or r["child"].startswith("workers ")):
        print(r["raycluster"], r["child"].replace(" ", "_"), r["want"])' | sort
}
expected="edge head_pod 1
edge workers_clamped 1
edge workers_floor 2
edge workers_multi 2
edge workers_nohosts 0
sleepy head_pod 0
sleepy workers_idle 0"
for i in $(seq 1 120); do
    [[ "$(wants "$state")" == "$expected" ]] && break
    sleep 0.5
done
got=$(wants "$state")
[[ "$got" == "$expected" ]] && ok "desired rows: the scheduler's wanted counts of every edge case" \
    || { bad "desired rows: the scheduler's wanted counts"; echo "$got" | sed 's/^/    | /'; }
mkdir -p "$tmp/spec"
python3 - "$state/observed.db" "$tmp/spec/observed.db" <<'PY'
import sqlite3, sys
src = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close(); src.close()
PY
spec=$(wants "$tmp/spec")
[[ "$spec" == "$got" && -n "$spec" ]] \
    && ok "drift from the spec alone counts every pod group as the scheduler does" \
    || { bad "drift from the spec alone differs from the desired rows"; diff <(echo "$got") <(echo "$spec") | sed 's/^/    | /'; }
"$ctl" drift --state-dir "$tmp/spec" | grep -q "computed from the spec in observed.db alone" \
    && ok "the copy without scheduler.db is counted from the spec" || bad "the copy has desired rows"
# explain counts the same for a multi-host pod: 1 replica x 2 hosts.
mp=""
for i in $(seq 1 60); do
    mp=$(kc get pods -n $ns -l ray.io/cluster=edge,ray.io/group=multi -o jsonpath='{.items[0].metadata.name}' 2>/dev/null)
    [[ -n "$mp" ]] && ctlx audit --name "$mp" --output json | grep -q CreatedWorkerPod && break
    sleep 0.5
done
out=$(ctlx explain "pod/$mp")
has "explain a multi-host pod: 2 workers in group multi (replicas 1 x numOfHosts 2)" "$out" \
    "wanted 2 workers in group multi \(replicas 1 x numOfHosts 2\)"
