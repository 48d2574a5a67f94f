#!/usr/bin/env bash
# integration.chaos: kill -9 of random services while RayClusters are created (issue 17).
# Usage: chaos_test.sh PATH/TO/rayfleetctl   (kubesim and the services beside it)
#
#   up --sim --detach (supervised); then, in each of two rounds, CHAOS_CLUSTERS/2 RayClusters
#   (one head, CHAOS_WORKERS workers) are created by one kubectl while a random service (bus,
#   watcher, scheduler, submitter, serve-upgrade) is killed with SIGKILL every CHAOS_EVERY
#   seconds for CHAOS_SECONDS; the second round also turns on kubesim's ambiguous-create fault
#   (CHAOS_FAULT_RATE of pod creates applied, then the connection dropped, or 504 Timeout).
#   Then every RayCluster must be ready, and:
#     - no duplicate: each has exactly 1 head pod, CHAOS_WORKERS worker pods, 1 head Service;
#     - no orphan: every pod and Service labelled ray.io/cluster belongs (ownerReferences uid)
#       to a RayCluster that exists;
#     - every pod and Service rayfleet created has its audit row (a create of that name, with a
#       result or still the intent), so `explain` never blames a user.
#   Defaults are the suite's cut (200 clusters, 30 s); the issue's figure is
#   CHAOS_CLUSTERS=1000 CHAOS_SECONDS=60 (run by hand: see the README).
set -uo pipefail
ctl=${1:?usage: chaos_test.sh PATH/TO/rayfleetctl}
. "$(dirname "$0")/../cli/testlib.sh"
tl_cell chaos "$ctl"
command -v python3 >/dev/null || { echo "FAIL - python3 is not installed"; exit 1; }
N=${CHAOS_CLUSTERS:-200}
SECS=${CHAOS_SECONDS:-30}
EVERY=${CHAOS_EVERY:-2}
W=${CHAOS_WORKERS:-2}
RATE=${CHAOS_FAULT_RATE:-0.1}
READY_S=${CHAOS_READY_SECONDS:-240}
victims=(bus watcher scheduler submitter serve-upgrade)

# kubesim's nodes take 110 pods each, as kube's default: room for every pod and some to spare
nodes=$(( N * (1 + W) / 80 + 4 ))
kc=$("$ctl" up --sim --detach --state-dir "$state" --nodes "$nodes" --timeout 60s 2>"$tmp/up.err")
if [[ $? -eq 0 ]]; then ok "up --sim --detach"; else
    bad "up --sim --detach"; cat "$tmp/up.err"; exit 1; fi
server=$(sed -n 's/^ *server: *//p' "$state/kubeconfig" | head -1)
pid_of() { awk -v n="$1" '$1 == n {print $2}' "$state/pids"; }

# clusters FIRST COUNT: COUNT small RayClusters c-FIRST.. as one multi-document manifest
clusters() {
    local i
    for ((i = $1; i < $1 + $2; i++)); do
        cat <<YAML
---
apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: c-$i
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
  - groupName: w
    replicas: $W
    minReplicas: 0
    maxReplicas: 10
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-worker
          image: rayproject/ray:2.46.0
YAML
    done
}

# chaos SECONDS: every EVERY seconds, kill -9 one service picked at random among the victims
# running now (one waiting out its restart backoff is already down); prints what it killed
chaos() {
    local end=$(( $(date +%s) + $1 )) v p live
    while (( $(date +%s) < end )); do
        live=()
        for v in "${victims[@]}"; do
            p=$(pid_of "$v")
            [[ -n $p && -e /proc/$p ]] && live+=("$v:$p")
        done
        if (( ${#live[@]} > 0 )); then
            v=${live[RANDOM % ${#live[@]}]}
            kill -9 "${v#*:}" 2>/dev/null && echo "${v%%:*}"
        fi
        sleep "$EVERY"
    done
}

half=$((N / 2))
for round in 1 2; do
    first=$(( (round - 1) * half ))
    count=$(( round == 2 ? N - half : half ))
    if (( round == 2 )); then
        # half the ambiguous creates lose the connection, half get a 504 after being applied
        if curl -sf -X POST -H 'Content-Type: application/json' "$server/kubesim/faults" -d \
            "{\"rules\":[{\"verb\":\"create\",\"resource\":\"pods\",\"rate\":$RATE,\"after\":\"drop\"},{\"verb\":\"create\",\"resource\":\"pods\",\"rate\":$RATE,\"after\":\"timeout\"}]}" \
            >/dev/null; then ok "round 2: ambiguous-create faults on (rate $RATE drop, $RATE timeout)"
        else bad "round 2: ambiguous-create faults on"; fi
    fi
    clusters "$first" "$count" >"$tmp/round$round.yaml"
    chaos "$SECS" >"$tmp/killed$round.txt" &
    cpid=$!
    # one kubectl, as a user would; retried while the API is up but slow (it is never killed)
    if kc_ create -f "$tmp/round$round.yaml" >"$tmp/create$round.out" 2>&1; then
        ok "round $round: $count RayClusters created"
    else bad "round $round: kubectl create"; tail -3 "$tmp/create$round.out"; fi
    wait "$cpid"
    kills=$(wc -l <"$tmp/killed$round.txt")
    if (( kills >= SECS / EVERY / 2 )); then
        ok "round $round: $kills services killed ($(sort "$tmp/killed$round.txt" | uniq -c | awk '{printf "%s %s, ", $2, $1}'))"
    else bad "round $round: only $kills kills"; fi
done

# converge: every RayCluster ready
notready() {
    kc_ get rayclusters -o jsonpath='{range .items[*]}{.metadata.name} {.status.state}{"\n"}{end}' |
        awk '$2 != "ready"' | wc -l
}
allready() { [[ $(kc_ get rayclusters --no-headers 2>/dev/null | wc -l) -eq $N && $(notready) -eq 0 ]]; }
start=$(date +%s)
if tl_wait "$READY_S" allready; then ok "all $N RayClusters ready $(( $(date +%s) - start )) s after the chaos"
else bad "not all ready after ${READY_S} s: $(notready) not ready"; fi
curl -sf -X DELETE "$server/kubesim/faults" >/dev/null
sleep 3 # let a last pass settle (a duplicate would be deleted or show here)

kc_ get rayclusters,pods,services -o json >"$tmp/objs.json" || bad "list objects"
"$ctl" sql --state-dir "$state" --output json --limit 1000000 \
    "SELECT target_kind AS kind, target_namespace AS ns, target_name AS name, result_status AS status
     FROM audit WHERE verb = 'create' AND target_kind IN ('Pod', 'Service')" >"$tmp/audit.json" ||
    bad "read the audit"
python3 - "$tmp/objs.json" "$tmp/audit.json" "$N" "$W" <<'PY' >"$tmp/checks.txt"
import json, sys
from collections import Counter
objs = json.load(open(sys.argv[1]))["items"]
audit = json.load(open(sys.argv[2]))
n, w = int(sys.argv[3]), int(sys.argv[4])
rcs = {o["metadata"]["name"]: o["metadata"]["uid"] for o in objs if o["kind"] == "RayCluster"}
pods = [o for o in objs if o["kind"] == "Pod" and "ray.io/cluster" in o["metadata"].get("labels", {})]
svcs = [o for o in objs if o["kind"] == "Service" and "ray.io/cluster" in o["metadata"].get("labels", {})]
def say(ok, what):
    print(("ok " if ok else "FAIL ") + what)
heads, workers, hsvc = Counter(), Counter(), Counter()
for p in pods:
    lab = p["metadata"]["labels"]
    if p["metadata"].get("deletionTimestamp"):
        continue
    (heads if lab.get("ray.io/node-type") == "head" else workers)[lab["ray.io/cluster"]] += 1
for s in svcs:
    if s["metadata"]["labels"].get("ray.io/node-type") == "head":
        hsvc[s["metadata"]["labels"]["ray.io/cluster"]] += 1
bad = [c for c in rcs if heads[c] != 1 or workers[c] != w or hsvc[c] != 1]
say(len(rcs) == n, "%d RayClusters exist (want %d)" % (len(rcs), n))
say(not bad, "no duplicate or missing pod or Service: each RayCluster has 1 head, %d workers, "
    "1 head Service%s" % (w, "" if not bad else "; wrong: " + ", ".join(
        "%s (heads %d workers %d svc %d)" % (c, heads[c], workers[c], hsvc[c]) for c in bad[:10])))
def owned(o):
    c = o["metadata"]["labels"]["ray.io/cluster"]
    refs = o["metadata"].get("ownerReferences", [])
    return c in rcs and any(r.get("uid") == rcs[c] for r in refs)
orph = [o["kind"] + "/" + o["metadata"]["name"] for o in pods + svcs if not owned(o)]
say(not orph, "no orphan: %d pods and %d Services all owned by a live RayCluster%s" % (
    len(pods), len(svcs), "" if not orph else "; orphans: " + ", ".join(orph[:10])))
rows = {(a["kind"], a["ns"], a["name"]) for a in audit}
missing = [o["kind"] + "/" + o["metadata"]["name"] for o in pods + svcs
           if (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) not in rows]
say(not missing, "every pod and Service has its create audit row (%d objects, %d create rows)%s" % (
    len(pods) + len(svcs), len(audit), "" if not missing else "; without: " + ", ".join(missing[:10])))
PY
while read -r res what; do
    if [[ $res == ok ]]; then ok "$what"; else bad "$what"; fi
done <"$tmp/checks.txt"
[[ -s $tmp/checks.txt ]] || bad "checks ran"
# the supervisor restarted every service it saw die
# (a service killed several times waits up to the supervisor's backoff cap, 60 s)
running() {
    "$ctl" status --state-dir "$state" >"$tmp/status.out" 2>&1
    local v
    for v in "${victims[@]}"; do grep -Eq "^$v +[0-9]+ +running" "$tmp/status.out" || return 1; done
}
if tl_wait 75 running; then ok "status: every service running again"
else bad "status: every service running again"; cat "$tmp/status.out"; fi
has "the restarted scheduler waited for observed state to be current" \
    "$(grep -c '"fresh start: observed state is current"' "$state/logs/scheduler.log")" '^[1-9]'

if ! tl_summary; then
    echo "--- supervise.log"; tail -20 "$state/logs/supervise.log"
    exit 1
fi
