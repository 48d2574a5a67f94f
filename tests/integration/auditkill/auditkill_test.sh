#!/usr/bin/env bash
# integration.audit-kill (issue 17): no pod without an audit row across kill -9 of the scheduler.
#   auditkill_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
# `rayfleetctl up --sim --detach` starts the fleet; AUDIT_KILL_N RayClusters (default 50; one
# head and 3 workers each, small requests) are created in one List. As soon as their first pods
# exist, rayfleet-scheduler is killed with SIGKILL and started again with the same argv (the pid
# file STATE/pids is updated so `down` still stops it); each kill once the restarted scheduler has
# created more pods, until a kill has left a pod whose create row is pending (at most
# AUDIT_KILL_KILLS kills, default 10). kubesim answers every request 300 ms late meanwhile, and
# each kill is a SIGSTOP, 0.5 s, then SIGKILL: the creates already sent
# are applied while their answers go unread, the window between the API server's answer and its
# audit row. At the end:
#   - every RayCluster has exactly 1 head and 3 workers (no duplicate from a create that was
#     sent before a kill and sent again after it);
#   - every pod in kubesim has a create row in scheduler.db naming it (`rayfleetctl audit`), the
#     intent row written before the request went out (result pending) or its answer;
#   - `rayfleetctl explain pod/NAME` of a pod whose create row is still pending (sent, the
#     answer never recorded: the scheduler was killed) says rayfleet created it, never a user.
# Prints "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
ctl=${1:?usage: auditkill_test.sh PATH/TO/rayfleetctl}
nrc=${AUDIT_KILL_N:-50}
kills_want=${AUDIT_KILL_KILLS:-10}
tmp=$(mktemp -d /tmp/rfauditkill.XXXXXX)
state="$tmp/state"
# shellcheck source=../cli/testlib.sh
source "$(dirname "$0")/../cli/testlib.sh"
cleanup() {
    "$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1 || true
    if [[ ${AUDIT_KILL_KEEP:-} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
command -v kubectl >/dev/null || { bad "kubectl is not installed"; exit 1; }
command -v python3 >/dev/null || { bad "python3 is not installed"; exit 1; }
k() { kubectl --kubeconfig "$state/kubeconfig" --cache-dir "$tmp/kcache" --request-timeout 30s "$@"; }
ctlx() { "$ctl" "$@" --state-dir "$state"; }

if ! "$ctl" up --sim --detach --state-dir "$state" --nodes 8 --timeout 120s \
    >/dev/null 2>"$tmp/up.err"; then
    bad "up --sim --detach"; sed 's/^/    | /' "$tmp/up.err"; tl_summary; exit 1
fi
ok "up --sim --detach"
# This script kills and restarts the scheduler itself, at moments it chooses: end the supervisor
# that `up` leaves behind (cli/supervise.h), which would restart it too (two schedulers). The
# services go on unsupervised; `down` still stops them through the pid file.
sup=$(awk '$1 == "rayfleetctl" {print $2}' "$state/pids")
[[ -n $sup ]] && kill -9 "$sup"
url=$(cat "$state/kubesim.ready")
# the number of pods of the test's RayClusters in kubesim (one HTTP GET, no kubectl start-up)
npods() {
    curl -s --max-time 10 "$url/api/v1/namespaces/default/pods?labelSelector=rayfleet.io%2Ftest%3Daudit-kill" |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))' 2>/dev/null || echo 0
}

# the RayClusters of round R (names ak-R-NNN) -> $tmp/rcs-R.json
make_rcs() {
python3 - "$nrc" "$1" >"$tmp/rcs-$1.json" <<'PY'
import json, sys
n, rnd = int(sys.argv[1]), int(sys.argv[2])
def container(name):
    return {"name": name, "image": "rayproject/ray:2.46.0",
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}}}
items = []
for i in range(n):
    head = container("ray-head")
    head["ports"] = [{"containerPort": 6379, "name": "gcs-server"},
                     {"containerPort": 8265, "name": "dashboard"},
                     {"containerPort": 10001, "name": "client"}]
    tmpl = lambda c: {"metadata": {"labels": {"rayfleet.io/test": "audit-kill"}},
                      "spec": {"containers": [c]}}
    items.append({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "ak-%d-%03d" % (rnd, i), "namespace": "default"},
        "spec": {"rayVersion": "2.46.0",
                 "headGroupSpec": {"rayStartParams": {}, "template": tmpl(head)},
                 "workerGroupSpecs": [{"groupName": "w", "replicas": 3, "minReplicas": 0,
                     "maxReplicas": 3, "rayStartParams": {},
                     "template": tmpl(container("ray-worker"))}]}})
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)
PY
}

# Kills the scheduler (frozen 0.5 s first: the creates already sent are applied by kubesim, after
# its latency, while the scheduler cannot read their answers; then killed: answered, never
# recorded) and starts it again with the same argv (testlib's tl_kill_restart).
kill_once() {
    echo "# kill at $(npods) pods" >>"$tmp/kills"
    tl_kill_restart scheduler "$state" audit-kill 0.5 2>>"$tmp/killer.err"
}

# every API request answered 300 ms late while the pods are created: the burst lasts long enough
# for the kills, and the creates of a frozen scheduler are applied (its connections stay open)
curl -s --max-time 10 -X POST -H 'Content-Type: application/json' -d '{"latencyMs":300}' \
    "$url/kubesim/faults" >/dev/null || bad "kubesim latency set"
# A round creates nrc RayClusters and kills the scheduler while their pods are made. The kill
# must land between a create's commit and its answer; a scheduler that restarts and makes every
# remaining pod in one burst can leave no such create, so a round that ends without one is
# followed by another (at most AUDIT_KILL_ROUNDS, default 3) on new RayClusters.
# pods in kubesim whose create row is still pending (the answer never recorded) -> $tmp/pending
pending_live() {
    ctlx audit --output json --limit 100000 >"$tmp/audit.json" 2>"$tmp/audit.err" || return 1
    curl -s --max-time 10 "$url/api/v1/namespaces/default/pods?labelSelector=rayfleet.io%2Ftest%3Daudit-kill" \
        >"$tmp/podlist.json" || return 1
    python3 - "$tmp/audit.json" "$tmp/podlist.json" >"$tmp/pending" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
live = {p["metadata"]["name"] for p in json.load(open(sys.argv[2]))["items"]}
for r in rows:
    if r["target_kind"] == "Pod" and r["verb"] == "create" and \
            r.get("result_error") == "pending" and r["target_name"] in live:
        print(r["target_name"])
PY
    [[ -s $tmp/pending ]]
}
kills=0
rounds=0
rounds_want=${AUDIT_KILL_ROUNDS:-3}
for rnd in $(seq "$rounds_want"); do
    make_rcs "$rnd"
    last=$(npods)
    # created in the background (one POST per RayCluster, each 300 ms late): the kills start
    # while the RayClusters are still arriving
    k create -f "$tmp/rcs-$rnd.json" >/dev/null 2>"$tmp/create.err" &
    creator=$!
    rounds=$rnd
    total=$((rnd * nrc * 4))
    round_kills=0
    # Kills while pods are being created (each once the restarted scheduler has made a few
    # more), until one kill has left a pod whose create was answered and never recorded, or
    # every pod of the round exists.
    for _ in $(seq 1200); do
        ((round_kills >= kills_want)) && break
        p=$(npods)
        ((p >= total)) && break
        if ((p > last + 2)); then
            kill_once && kills=$((kills + 1)) && round_kills=$((round_kills + 1))
            sleep 0.5
            pending_live && break
            last=$(npods)
        fi
        sleep 0.05
    done
    if wait "$creator"; then ok "$nrc RayClusters created (round $rnd)"; else
        bad "$nrc RayClusters created (round $rnd)"; sed 's/^/    | /' "$tmp/create.err"; fi
    pending_live && break
    echo "# round $rnd: $round_kills kill(s), no create left pending; another round"
done
nrc=$((rounds * nrc))
curl -s --max-time 10 -X DELETE "$url/kubesim/faults" >/dev/null || bad "kubesim latency cleared"
if ((kills >= 1)); then ok "rayfleet-scheduler killed $kills times while creating pods"; else
    bad "rayfleet-scheduler killed while creating pods (the pods were all made first)"; fi
[[ ! -s $tmp/killer.err ]] && ok "the killer never failed" || { bad "the killer never failed"; sed 's/^/    | /' "$tmp/killer.err"; }

# --- every RayCluster settles at exactly 1 head and 3 workers ------------------------------------
counts() {
    curl -s --max-time 10 "$url/api/v1/namespaces/default/pods?labelSelector=rayfleet.io%2Ftest%3Daudit-kill" |
        python3 -c '
import collections, json, sys
c = collections.Counter()
for p in json.load(sys.stdin)["items"]:
    m = p["metadata"]
    if m.get("deletionTimestamp"): continue
    c[(m["labels"].get("ray.io/cluster"), m["labels"].get("ray.io/node-type"))] += 1
for (rc, t), v in sorted(c.items()): print(rc, t, v)'
}
settled() {
    counts >"$tmp/counts" 2>/dev/null || return 1
    [[ $(awk '$2 == "head" && $3 == 1' "$tmp/counts" | wc -l) -eq $nrc &&
       $(awk '$2 == "worker" && $3 == 3' "$tmp/counts" | wc -l) -eq $nrc &&
       $(wc -l <"$tmp/counts") -eq $((2 * nrc)) ]]
}
if tl_wait 60 settled; then ok "every RayCluster has 1 head and 3 workers, no duplicate pod"; else
    bad "every RayCluster has 1 head and 3 workers"
    awk '!($2 == "head" && $3 == 1) && !($2 == "worker" && $3 == 3)' "$tmp/counts" | head | sed 's/^/    | /'
fi
sleep 2 # the answers in flight, and the scheduler's store flush

# --- every pod has a create row ----------------------------------------------------------------
k get pods -l rayfleet.io/test=audit-kill -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' \
    | sort >"$tmp/pods"
ctlx audit --output json --limit 100000 >"$tmp/audit.json" 2>"$tmp/audit.err" \
    || { bad "rayfleetctl audit"; sed 's/^/    | /' "$tmp/audit.err"; }
python3 - "$tmp/audit.json" "$tmp/pods" "$tmp/pending" <<'PY' >"$tmp/missing"
import json, sys
rows = json.load(open(sys.argv[1]))
pods = [p for p in open(sys.argv[2]).read().split() if p]
creates = {}
for r in rows:
    if r["target_kind"] == "Pod" and r["verb"] == "create":
        creates.setdefault(r["target_name"], []).append(r)
with open(sys.argv[3], "w") as f:
    for p in pods:
        if p not in creates:
            print(p)
        elif any(r.get("result_error") == "pending" for r in creates[p]):
            print(p, file=f)
PY
np=$(wc -l <"$tmp/pods")
if [[ $np -eq $total && ! -s $tmp/missing ]]; then ok "all $np pods have a create row"; else
    bad "pods without a create row ($np pods)"; head "$tmp/missing" | sed 's/^/    | /'; fi
pending=$(wc -l <"$tmp/pending")
echo "# pods whose create row is pending (sent before a kill, answer never recorded): $pending"

# --- explain names rayfleet for such a pod ------------------------------------------------------
if ((pending > 0)); then
    pod=$(head -n 1 "$tmp/pending")
    out=$(ctlx explain "pod/$pod" 2>&1)
    has "explain pod/$pod: created by rayfleet, result not recorded" "$out" \
        "created by rayfleet \(result not recorded: the controller stopped\)" \
        "sent; result not recorded"
    if grep -q "a user or another" <<<"$out"; then bad "explain blames a user"; sed 's/^/    | /' <<<"$out"
    else ok "explain does not blame a user for pod/$pod"; fi
else
    bad "a kill landed between a create's commit and its answer (no pending create row; rerun)"
fi
tl_summary
