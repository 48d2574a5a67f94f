#!/usr/bin/env bash
# integration.clireplicas: `rayfleetctl up --sim --scheduler-replicas 3` starts three scheduler
# replicas that split the shards (SQLite leases); status lists them with their shards; audit,
# explain, drift and sql read every replica's database as one (the union equals what sqlite3
# reads from each file, ordered by time); sql stays read-only; prune prunes every file; down
# leaves no process. Usage: clireplicas_test.sh PATH/TO/rayfleetctl PATH/TO/raycluster.yaml
set -uo pipefail
ctl=${1:?usage: clireplicas_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
yaml=${2:?usage: clireplicas_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
source "$here/../cli/testlib.sh"
tmp=$(mktemp -d /tmp/rfclirep.XXXXXX)
state="$tmp/state"
ns=default
nclusters=6
follow_pid=

finish() {
    [[ -n $follow_pid ]] && kill "$follow_pid" 2>/dev/null
    "$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1 || true
    tl_summary; local r=$?
    rm -rf "$tmp"
    return $r
}
trap 'finish; exit $?' EXIT

command -v kubectl >/dev/null || { bad "kubectl is not installed"; exit 1; }
command -v python3 >/dev/null || { bad "python3 is not installed"; exit 1; }

# --- the flag's bounds ---------------------------------------------------------------------
for v in 0 9 x -1; do
    out=$("$ctl" up --sim --detach --scheduler-replicas "$v" --state-dir "$tmp/bad" 2>&1); code=$?
    [[ $code -eq 2 && $out == *"--scheduler-replicas: must be an integer in 1..8 (got '$v')"* ]] &&
        ok "--scheduler-replicas $v is refused (exit 2, names the flag and the rule)" ||
        { bad "--scheduler-replicas $v is refused (exit $code)"; echo "$out" | sed 's/^/    | /'; }
done
[[ ! -e "$tmp/bad/pids" ]] && ok "a refused up starts nothing" || bad "a refused up started something"

# --- up with three replicas ------------------------------------------------------------------
kubeconfig=$("$ctl" up --sim --detach --scheduler-replicas 3 --state-dir "$state" --timeout 60s \
    2>"$tmp/up.err")
if [[ $? -ne 0 || ! -s "$kubeconfig" ]]; then bad "up --scheduler-replicas 3"; cat "$tmp/up.err"; exit 1; fi
ok "up --sim --detach --scheduler-replicas 3"
kc() { kubectl --kubeconfig "$kubeconfig" --cache-dir "$tmp/kcache" "$@"; }
ctlx() { "$ctl" "$@" --state-dir "$state"; }
cp "$state/pids" "$tmp/pids.saved"
alive=0
for i in 0 1 2; do
    pid=$(awk -v n="scheduler-$i" '$1 == n {print $2}' "$state/pids")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
        grep -q rayfleet-scheduler "/proc/$pid/cmdline" 2>/dev/null && alive=$((alive + 1))
done
[[ $alive -eq 3 ]] && ok "three rayfleet-scheduler processes run" || bad "three schedulers run ($alive)"
tr '\0' ' ' <"/proc/$(awk '$1 == "scheduler-1" {print $2}' "$state/pids")/cmdline" >"$tmp/cmd1"
has "replica 1 runs with its replica id, audit file and SQLite leases" "$(cat "$tmp/cmd1")" \
    "--replica scheduler/1" "--audit.db scheduler-1.db" "--shards.lease sqlite"
[[ -s "$state/logs/scheduler-2.log" ]] && ok "each replica has its own log" || bad "logs/scheduler-2.log"
ports=$(sed -n 's/.*scheduler-[0-9] ready (pid [0-9]*, \/readyz 200, health port \([0-9]*\)).*/\1/p' "$tmp/up.err" | sort -u | wc -l)
[[ $ports -eq 3 ]] && ok "each replica was ready on /readyz of its own health port" || bad "replica health ports: $ports distinct"

# status: the replicas and their shards, adding up to the total (256) once balanced.
for i in $(seq 1 60); do
    st=$(ctlx status 2>&1)
    sum=$(awk '/^scheduler-[0-9]/ {s += $4; if ($4 > 0) n++} END {print s + 0 "/" n + 0}' <<<"$st")
    [[ $sum == 256/3 ]] && break
    sleep 0.5
done
has "status lists the three replicas" "$st" "^Scheduler replicas \(3, 256 shards held" \
    "^scheduler-0 +[0-9]+ +running +[0-9]+ +scheduler-0.db" "^scheduler-2 +[0-9]+ +running"
[[ $sum == 256/3 ]] && ok "their shards add up to 256, each holds some" || bad "shards: $sum"

# --- RayClusters, spread over the replicas ---------------------------------------------------
for i in $(seq 1 $nclusters); do
    sed "s/^  name: demo\$/  name: demo$i/" "$yaml" | kc apply -f - >/dev/null ||
        bad "apply demo$i"
done
ready=0
for t in $(seq 1 120); do
    ready=$(kc get rayclusters -n $ns -o jsonpath='{range .items[*]}{.status.state}{"\n"}{end}' |
        grep -c '^ready$')
    [[ $ready -eq $nclusters ]] && break
    sleep 0.5
done
[[ $ready -eq $nclusters ]] && ok "$nclusters RayClusters ready" || { bad "RayClusters ready ($ready)"; exit 1; }
sleep 2 # the last status writes

# --- audit: the union of every file, ordered by time ----------------------------------------
ctlx audit --output json --limit 100000 >"$tmp/audit.json" || bad "audit --output json"
ctlx audit export --output csv >"$tmp/export.csv" || bad "audit export --output csv"
ctlx audit --verb create --kind Pod --output jsonl --limit 100000 >"$tmp/pods.jsonl" ||
    bad "audit --verb create --kind Pod"
ctlx audit --limit 5 >"$tmp/audit.table" || bad "audit (table)"
python3 - "$state" "$tmp" <<'PY' >"$tmp/cmp.out" 2>&1
import csv, glob, json, os, sqlite3, sys
state, tmp = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(state, "scheduler-*.db")))
rows = []
for f in files:
    db = sqlite3.connect("file:%s?mode=ro" % f, uri=True)
    db.row_factory = sqlite3.Row
    rows += [dict(r) for r in db.execute("SELECT * FROM audit")]
    db.close()
key = lambda r: (r["actor_replica"], r["id"])
want = {key(r): r for r in rows}
got = json.load(open(os.path.join(tmp, "audit.json")))
errs = []
if len(files) != 3: errs.append("files: %s" % files)
if len(got) != len(rows): errs.append("audit: %d rows, files: %d" % (len(got), len(rows)))
if {key(r) for r in got} != set(want): errs.append("audit rows differ from the files' union")
for r in got:
    w = want.get(key(r))
    if w and any(r[c] != w[c] for c in w): errs.append("row %s differs" % (key(r),)); break
t = [(r["time_ms"]) for r in got]
if t != sorted(t): errs.append("audit is not ordered by time")
reps = {r["actor_replica"] for r in got}
if len(reps) < 2: errs.append("one replica only: %s" % reps)
ex = list(csv.DictReader(open(os.path.join(tmp, "export.csv"))))
if len(ex) != len(rows) or {(r["actor_replica"], int(r["id"])) for r in ex} != set(want):
    errs.append("export csv: %d rows, not the union" % len(ex))
pods = [json.loads(l) for l in open(os.path.join(tmp, "pods.jsonl"))]
wp = {key(r) for r in rows if r["verb"] == "create" and r["target_kind"] == "Pod"}
if {key(r) for r in pods} != wp or not wp: errs.append("filtered audit: %d rows, want %d" % (len(pods), len(wp)))
# a pod created by a replica other than the first, for explain
other = [r for r in rows if r["verb"] == "create" and r["target_kind"] == "Pod"
         and r["actor_replica"] != "scheduler/0" and r["result_status"] == 201]
print("ERRORS: " + "; ".join(errs) if errs else "SAME %d rows from %s" % (len(rows), sorted(reps)))
print("POD %s %s" % ((other[0]["target_name"], other[0]["actor_replica"]) if other else ("-", "-")))
print("COUNT %d" % len(rows))
PY
cmp=$(cat "$tmp/cmp.out")
has "audit (json, export csv, filters) equals the union of the replicas' files, by time, from >1 replica" \
    "$cmp" "^SAME [0-9]+ rows from \[.*scheduler/.*, .*scheduler/"
has "audit's table shows the replicas as actors" "$(cat "$tmp/audit.table")" \
    "^Audit rows \(5, newest 5 at most\)" "scheduler/[0-2]"
explain_plan=$(ctlx audit --explain --verb create)
# 3 replicas' files, submitter.db and serve-upgrade.db (fleetdb.h: every controller's audit)
has "audit --explain: every file answers from its index" "$explain_plan" \
    "^FILES: 5" "replica2.audit USING INDEX audit_by_verb" "submitter.audit USING INDEX" \
    "serve_upgrade.audit USING INDEX"

# --- explain a pod written by a non-first replica ---------------------------------------------
read -r _ pod actor < <(grep '^POD' <<<"$cmp")
[[ $pod != - ]] && ok "a pod created by $actor" || bad "no pod created by a replica other than scheduler/0"
out=$(ctlx explain "pod/$pod"); code=$?
[[ $code -eq 0 ]] && has "explain pod/$pod (written by $actor)" "$out" \
    "pod $ns/$pod was created at .* by $actor \(Created(Worker|Head)Pod\)" "now: it exists" ||
    { bad "explain pod/$pod exits $code"; echo "$out" | sed 's/^/    | /'; }

# --- drift over every replica's desired rows --------------------------------------------------
out=$(ctlx drift)
has "drift sees every RayCluster's desired rows, no drift" "$out" \
    "^$nclusters RayClusters, 0 child counts drifting \(desired rows of the 3 scheduler replicas' files"

# --- sql: the union, and still read-only ------------------------------------------------------
count=$(awk '/^COUNT/ {print $2}' <<<"$cmp")
n=$(ctlx sql --output csv "SELECT count(*) AS n FROM audit" | tail -1)
[[ $n -ge $count && $count -gt 0 ]] && ok "sql: audit is the union ($n rows)" || bad "sql count $n, files $count"
n=$(ctlx sql --output csv "SELECT count(*) FROM (SELECT DISTINCT owner_name FROM desired_objects)" | tail -1)
[[ $n -eq $nclusters ]] && ok "sql: desired_objects covers the $nclusters RayClusters" || bad "sql desired owners $n"
n=$(ctlx sql --output csv "WITH r AS (SELECT actor_replica FROM audit) SELECT count(DISTINCT actor_replica) FROM r" | tail -1)
[[ $n -ge 2 ]] && ok "sql: a statement with its own WITH sees the union" || bad "sql WITH: $n replicas"
n=$(ctlx sql --output csv "SELECT count(*) FROM replica1.audit" | tail -1)
[[ $n =~ ^[0-9]+$ ]] && ok "sql: replica1.audit names one file" || bad "sql replica1.audit: $n"
for q in "INSERT INTO audit (time_ms) VALUES (1)" "WITH x AS (SELECT 1) DELETE FROM audit" \
         "ATTACH '$tmp/x.db' AS x" "UPDATE replica2.desired_objects SET json = NULL" \
         "SELECT 1; DELETE FROM audit" "PRAGMA query_only = OFF" "CREATE TEMP VIEW v AS SELECT 1"; do
    out=$(ctlx sql "$q" 2>&1); code=$?
    [[ $code -eq 1 && $out == *"refused:"*"not allowed"*"(rayfleetctl sql is read-only)"* ]] &&
        ok "sql refuses: $q" || { bad "sql refuses: $q (exit $code)"; echo "$out" | sed 's/^/    | /'; }
done
[[ ! -e "$tmp/x.db" ]] && ok "the refused ATTACH created no file" || bad "ATTACH created $tmp/x.db"

# --- audit --follow over every file -----------------------------------------------------------
# run directly, not through ctlx: a function in the background is a subshell, and killing it
# would leave rayfleetctl running
"$ctl" audit --follow --output json --limit 1 --state-dir "$state" >"$tmp/follow.jsonl" \
    2>"$tmp/follow.err" &
follow_pid=$!
sleep 1
for i in $(seq 1 5); do sed "s/^  name: demo\$/  name: late$i/" "$yaml" | kc apply -f - >/dev/null; done
for t in $(seq 1 60); do
    [[ $(kc get rayclusters -n $ns -o jsonpath='{range .items[*]}{.status.state}{"\n"}{end}' |
        grep -c '^ready$') -eq $((nclusters + 5)) ]] && break
    sleep 0.5
done
sleep 1.5
# (a background job of a script ignores SIGINT: stop it with SIGTERM, which --follow also ends on)
kill -TERM "$follow_pid"; wait "$follow_pid"; follow_pid=
fol=$(python3 - "$tmp/follow.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
new = [r for r in rows if r["target_name"].startswith("late")]
keys = [(r["actor_replica"], r["id"]) for r in rows]
t = [r["time_ms"] for r in rows]
print("rows=%d late=%d replicas=%d dups=%d sorted=%s" % (len(rows), len(new),
      len({r["actor_replica"] for r in new}), len(keys) - len(set(keys)), t == sorted(t)))
PY
)
has "audit --follow prints the new rows of every replica once, by time" "$fol" \
    "late=[1-9]" "replicas=[2-3]" "dups=0" "sorted=True"

# --- prune every file -------------------------------------------------------------------------
out=$(ctlx audit prune --older-than 1h --dry-run)
has "prune --dry-run counts in every file" "$out" "scheduler-0.db" "scheduler-2.db" \
    "would be deleted in all \(dry run\)"
out=$(ctlx audit prune --older-than 0s --pause 0s)
has "prune deletes from every file" "$out" "from .*scheduler-0.db" "from .*scheduler-1.db" \
    "from .*scheduler-2.db" "from .*submitter.db" "from .*serve-upgrade.db" \
    "in all from 5 files"
left=$(python3 - "$state" <<'PY'
import glob, sqlite3, sys, time
now = int(time.time() * 1000) - 1000
print(sum(sqlite3.connect("file:%s?mode=ro" % f, uri=True).execute(
    "SELECT count(*) FROM audit WHERE time_ms < ?", (now,)).fetchone()[0]
    for f in glob.glob(sys.argv[1] + "/scheduler-*.db")))
PY
)
[[ $left -eq 0 ]] && ok "no old row is left in any file" || bad "$left old rows left"

# --- down -------------------------------------------------------------------------------------
ctlx down >"$tmp/down.out" 2>&1 && ok "down" || bad "down"
left=0
while read -r name pid _; do
    kill -0 "$pid" 2>/dev/null && [[ $(cat /proc/$pid/comm 2>/dev/null) != "" ]] &&
        grep -qE 'rayfleet|kubesim' "/proc/$pid/cmdline" 2>/dev/null && left=$((left + 1))
done <"$tmp/pids.saved"
[[ $left -eq 0 ]] && ok "down leaves no process" || bad "$left processes left after down"
[[ ! -e "$state/pids" ]] && ok "down removes the pid file" || bad "pid file left"
