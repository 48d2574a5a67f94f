#!/usr/bin/env bash
# integration.desired: the scheduler records the children it wants for each RayCluster in
# desired_objects (scheduler.db) and `rayfleetctl drift` compares them with observed.db.
# Usage: desired_test.sh PATH/TO/rayfleetctl PATH/TO/raycluster.yaml
set -uo pipefail
ctl=${1:?usage: desired_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
yaml=${2:?usage: desired_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
source "$here/../cli/testlib.sh"
tmp=$(mktemp -d /tmp/rfdesired.XXXXXX)
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

# Before any RayCluster: no desired rows, drift falls back to the spec and says so.
out=$(ctlx drift 2>&1)
has "drift without desired rows says it computed from the spec alone" "$out" \
    "0 RayClusters, 0 child counts drifting \(computed from the spec in observed.db alone: scheduler.db has no desired rows"
out=$(ctlx drift --output json 2>"$tmp/note")
[[ $out == "[]" ]] && grep -q "note: scheduler.db has no desired rows" "$tmp/note" \
    && ok "drift --output json without desired rows: [] and a note on stderr" \
    || bad "drift --output json without desired rows (out: $out, err: $(cat "$tmp/note"))"

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
# The desired rows of the RayCluster as JSON (child_kind, child_name, json, reason, ...).
desired() {
    ctlx sql "SELECT child_kind, child_name, json, reason, correlation_id, decided_ms, owner_uid
              FROM desired_objects WHERE owner_kind = 'RayCluster' AND namespace = '$ns'
              AND owner_name = '$rc' ORDER BY child_kind, child_name" --output json
}
# check_desired WANT_WORKERS: the rows are head pod (want 1), group workers (want N), head
# service, each with a reason, a correlation id that has audit rows, a time and the uid.
check_desired() {
    local uid
    uid=$(kc get raycluster $rc -n $ns -o jsonpath='{.metadata.uid}')
    desired >"$tmp/desired.json"
    ctlx sql "SELECT DISTINCT correlation_id FROM audit" --output json --limit 100000 >"$tmp/corr.json"
    python3 - "$tmp/desired.json" "$tmp/corr.json" "$1" "$rc" "$uid" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
corrs = {r["correlation_id"] for r in json.load(open(sys.argv[2]))}
want, rc, uid = int(sys.argv[3]), sys.argv[4], sys.argv[5]
by = {(r["child_kind"], r["child_name"]): r for r in rows}
def fail(msg):
    print("  " + msg, file=sys.stderr); print(json.dumps(rows, indent=1), file=sys.stderr); sys.exit(1)
keys = sorted(by)
if keys != [("Pod", "head"), ("Pod", "workers"), ("Service", rc + "-head-svc")]:
    fail("rows: %s" % keys)
head, wk = json.loads(by[("Pod", "head")]["json"]), json.loads(by[("Pod", "workers")]["json"])
if head["want"] != 1 or head["numOfHosts"] != 1 or len(head["template_hash"]) != 32:
    fail("head row %s" % head)
if wk["want"] != want or wk["numOfHosts"] != 1 or len(wk["template_hash"]) != 32:
    fail("workers row %s" % wk)
reason = by[("Pod", "workers")]["reason"]
if reason != "spec.workerGroupSpecs[0].replicas=%d x numOfHosts 1" % want:
    fail("workers reason %r" % reason)
for r in rows:
    if not r["reason"] or r["decided_ms"] <= 0 or r["owner_uid"] != uid:
        fail("row without reason, time or uid: %s" % r)
    if r["correlation_id"] not in corrs:
        fail("correlation id %s has no audit row" % r["correlation_id"])
PY
}

kc apply -f "$yaml" >/dev/null && ok "kubectl apply RayCluster" || bad "kubectl apply RayCluster"
if wait_workers 2; then ok "RayCluster ready with 2 workers"; else bad "RayCluster ready with 2 workers"; exit 1; fi

check_desired 2 && ok "desired rows: head pod 1, workers 2, head service; reasons, correlation ids, uid" \
    || bad "desired rows after ready"
decided1=$(desired | python3 -c 'import json,sys; print(max(r["decided_ms"] for r in json.load(sys.stdin)))')

out=$(ctlx drift)
has "drift from desired rows: no drift once settled" "$out" \
    "demo +1 +head pod +1 +1 +0 +spec.headGroupSpec: one head pod" \
    "demo +1 +workers workers +2 +2 +0 +spec.workerGroupSpecs\[0\].replicas=2 x numOfHosts 1" \
    "demo +1 +Service demo-head-svc +1 +1 +0" \
    "1 RayCluster, 0 child counts drifting \(desired rows of scheduler.db versus observed.db\)"
out=$(ctlx drift --output json)
python3 -c '
import json, sys
rows = json.loads(sys.argv[1])
assert len(rows) == 3, rows
assert all(r["drift"] == "0" and r["want"] == r["have"] for r in rows), rows
assert {r["child"] for r in rows} == {"head pod", "workers workers", "Service demo-head-svc"}, rows
' "$out" && ok "drift --output json" || bad "drift --output json: $out"
out=$(ctlx drift --output csv)
has "drift --output csv" "$out" "^cluster,namespace,raycluster,generation,child,want,have,drift,reason" \
    "^default,default,demo,1,workers workers,2,2,0,"
out=$(ctlx drift -n other)
has "drift -n other lists nothing" "$out" "^0 RayClusters, 0 child counts drifting"

# Steady state writes nothing: a resync-free wait leaves the rows' decision times unchanged.
sleep 3
decided2=$(desired | python3 -c 'import json,sys; print(max(r["decided_ms"] for r in json.load(sys.stdin)))')
[[ "$decided1" == "$decided2" ]] && ok "steady state: the desired rows are not rewritten" \
    || bad "steady state: rows rewritten ($decided1 -> $decided2)"

# --- scale up: the workers row says want 3; drift returns to 0 once the pod exists ------------
kc patch raycluster $rc -n $ns --type=json \
    -p '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":3}]' >/dev/null
if wait_workers 3; then ok "scaled to 3 workers"; else bad "scaled to 3 workers"; fi
check_desired 3 && ok "desired rows after the scale up: workers want 3" || bad "desired rows after the scale up"
out=$(ctlx drift)
has "drift after the scale up: 0" "$out" \
    "demo +2 +workers workers +3 +3 +0 +spec.workerGroupSpecs\[0\].replicas=3 x numOfHosts 1" \
    "1 RayCluster, 0 child counts drifting"

# --- a drift that shows: a worker deleted by hand is counted while it is away ----------------
# (the reconciler replaces it at once, so only the settled state is checked: drift 0 again)
w1=$(kc get pods -n $ns -l ray.io/cluster=$rc,ray.io/node-type=worker -o jsonpath='{.items[0].metadata.name}')
kc delete pod "$w1" -n $ns --wait=false >/dev/null
sleep 1
wait_workers 3 && ok "a worker deleted by hand is replaced" || bad "a worker deleted by hand is replaced"
out=$(ctlx drift)
has "drift after the replacement: 0" "$out" "demo +2 +workers workers +3 +3 +0" "0 child counts drifting"

# --- delete the RayCluster: its rows disappear ------------------------------------------------
kc delete raycluster $rc -n $ns --wait=false >/dev/null && ok "kubectl delete RayCluster" \
    || bad "kubectl delete RayCluster"
gone=0
for i in $(seq 1 60); do
    n=$(desired | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    [[ "$n" == 0 ]] && { gone=1; break; }
    sleep 0.5
done
[[ $gone -eq 1 ]] && ok "the deleted RayCluster's desired rows are gone" \
    || bad "the deleted RayCluster's desired rows are still there: $(desired)"
out=$(ctlx drift 2>&1)
has "drift after the deletion falls back to the spec (no rows left)" "$out" \
    "computed from the spec in observed.db alone"
"$ctl" drift --help | grep -q 'desired_objects' && ok "drift --help describes desired_objects" \
    || bad "drift --help"
