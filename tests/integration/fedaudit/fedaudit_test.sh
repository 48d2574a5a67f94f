#!/usr/bin/env bash
# integration.fedaudit: rayfleetctl audit / explain / sql over a federation's member files
# (cli/fleetdb.h, "Federation"). Usage: fedaudit_test.sh PATH/TO/rayfleetctl
#  1. 4 members, 3 files each, 1 audit row per member in its scheduler file (cluster member-<i>,
#     a Pod of RayCluster demo<i>), 1 in member-2's submitter file, none in the management set.
#  2. audit without --context: the rows of members 1..3 (9 files: the attach limit of Debian's
#     libsqlite3 is 10, so main + 10 files at most and each member's 3 files all or none), a
#     CLUSTER column, and a note on stderr naming member-4 and --context member-4.
#  3. audit --context member-4 / member-2: only that member's rows, no CLUSTER column, no note.
#  4. explain raycluster/demo2 --context member-2 finds its action; --context member-1 does not;
#     without --context it finds it and says the cluster; demo4 is found only with --context.
#  5. sql: audit is the union (rows of several members), member_2_submitter is one file;
#     --context member-4 counts member-4's row; ATTACH and writes are still refused.
#  6. errors: an unknown --context names the clusters; --context with --db; --context without
#     federation.yaml; a member without files.
set -uo pipefail
ctl=${1:?usage: fedaudit_test.sh PATH/TO/rayfleetctl}
. "$(dirname "$0")/../cli/testlib.sh"
command -v sqlite3 >/dev/null || { bad "sqlite3 is not installed (scripts/deps.sh installs it)"; tl_summary; exit 1; }
tmp=$(mktemp -d /tmp/rffedaudit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
state="$tmp/state"
mkdir -p "$state"
ctlx() { "$ctl" "$@" --state-dir "$state"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# lacks NAME TEXT PATTERN: no line of TEXT matches the grep -E PATTERN (else the text is shown)
lacks() { if grep -Eq -- "$3" <<<"$2"; then bad "$1 ('$3' in:)"; sed 's/^/    | /' <<<"$2"; else ok "$1"; fi; }

# --- 1. the files -----------------------------------------------------------------------------
# the store's own schema: `audit prune` opens a file read-write with the audit owner and migrates
touch "$tmp/empty.db"
"$ctl" audit prune --db "$tmp/empty.db" --older-than 1d >/dev/null 2>&1
sqlite3 "$tmp/empty.db" "CREATE TABLE desired_objects (cluster TEXT NOT NULL, namespace TEXT NOT NULL,
    owner_kind TEXT NOT NULL, owner_name TEXT NOT NULL, owner_uid TEXT, child_group TEXT NOT NULL,
    child_kind TEXT NOT NULL, child_name TEXT NOT NULL, spec_hash TEXT, json TEXT, reason TEXT,
    correlation_id TEXT, decided_ms INTEGER NOT NULL,
    PRIMARY KEY (cluster, namespace, owner_kind, owner_name, child_kind, child_name)) STRICT;"
row() { # FILE CLUSTER SERVICE NAME MS
    sqlite3 "$1" "INSERT INTO audit (time_ms, actor_service, actor_replica, actor_version, cluster,
        target_group, target_kind, target_namespace, target_name, verb, reason, message, cause_key,
        cause_generation, cause_resource_version, correlation_id, request_summary, result_status,
        latency_ms) VALUES ($5, '$3', '$3/0', '0.1.0', '$2', '', 'Pod', 'default', '$4',
        'create', 'CreatedHeadPod', 'head pod', '$2/default/${4%-head}', 1, '42', 'c-$4', '{}',
        201, 3);"
}
printf '# written by hand like rayfleetctl up --members 4\nfederation:\n  management: {name: management, context: management}\n  members:\n' >"$state/federation.yaml"
for i in 1 2 3 4; do
    printf '    - name: member-%s\n      context: member-%s\n' "$i" "$i" >>"$state/federation.yaml"
    for svc in scheduler submitter serve-upgrade; do cp "$tmp/empty.db" "$state/member-$i.$svc.db"; done
    row "$state/member-$i.scheduler.db" "member-$i" scheduler "demo$i-head" "170000000000$i"
done
row "$state/member-2.submitter.db" member-2 submitter job2-head 1700000000005

# --- 2. the union -------------------------------------------------------------------------------
out=$(ctlx audit 2>"$tmp/err"); code=$?
check "audit over the federation exits 0" test "$code" -eq 0
has "audit lists the rows of members 1..3 with a CLUSTER column" "$out" \
    "^ID +TIME\(UTC\) +ACTOR +CLUSTER +VERB" \
    "scheduler/0 +member-1 +create +201 +Pod +default/demo1-head " \
    "scheduler/0 +member-2 +create +201 +Pod +default/demo2-head " \
    "submitter/0 +member-2 +create .*default/job2-head " \
    "scheduler/0 +member-3 +create +201 +Pod +default/demo3-head " "^Audit rows \(4,"
lacks "audit without --context does not list member-4's row (it did not fit)" "$out" demo4-head
has "a note names member-4, why, and --context member-4" "$(cat "$tmp/err")" \
    "^rayfleetctl audit: note: not read: the audit files of member member-4 \(3 files\)" \
    "SQLITE_LIMIT_ATTACHED 10" "read them with --context member-4"
out=$(ctlx audit --output csv 2>/dev/null)
check "audit --output csv has the cluster column of each row" test \
    "$(python3 -c 'import csv,sys; print(" ".join(sorted(r["cluster"] for r in csv.DictReader(sys.stdin))))' <<<"$out")" \
    = "member-1 member-2 member-2 member-3"

# --- 3. --context ---------------------------------------------------------------------------------
out=$(ctlx audit --context member-4 2>"$tmp/err")
has "audit --context member-4 lists its row, without a CLUSTER column" "$out" \
    "^ID +TIME\(UTC\) +ACTOR +VERB" "scheduler/0 +create +201 +Pod +default/demo4-head " "^Audit rows \(1,"
check "audit --context member-4: no note" test ! -s "$tmp/err"
out=$(ctlx audit --context member-2 2>&1)
has "audit --context member-2: its scheduler's and submitter's rows" "$out" "default/demo2-head " \
    "default/job2-head " "^Audit rows \(2,"
lacks "audit --context member-2 lists no other member's row" "$out" 'demo[134]-head'
out=$(ctlx audit --context management 2>&1); code=$?
check "audit --context management: the management set has no file here (exit 1)" test "$code" -eq 1
has "... and says which files it looked for" "$out" "no audit database at .*/scheduler.db"

# --- 4. explain ----------------------------------------------------------------------------------
out=$(ctlx explain raycluster/demo2 --context member-2 2>&1); code=$?
check "explain raycluster/demo2 --context member-2 exits 0 (rayfleet acted on it)" test "$code" -eq 0
has "... and lists the member's action" "$out" "^1 action by rayfleet" "create +Pod default/demo2-head \(CreatedHeadPod\) 201"
expect_code "explain raycluster/demo2 --context member-1: no audit row there (exit 1)" 1 \
    "$ctl" explain raycluster/demo2 --context member-1 --state-dir "$state"
out=$(ctlx explain raycluster/demo2 2>&1); code=$?
check "explain raycluster/demo2 without --context finds it (exit $code)" test "$code" -eq 0
has "... and names the cluster of the reconcile" "$out" "^reconcile c-demo2-head at .* by scheduler/0 in cluster member-2:"
out=$(ctlx explain raycluster/demo4 2>&1); code=$?
check "explain raycluster/demo4 without --context: not read (exit 1)" test "$code" -eq 1
has "... and the note says so" "$out" "note: not read: the audit files of member member-4" "--context member-4"
expect_code "explain raycluster/demo4 --context member-4 finds it" 0 "$ctl" explain raycluster/demo4 --context member-4 --state-dir "$state"

# --- 5. sql -------------------------------------------------------------------------------------
out=$(ctlx sql --output csv "SELECT cluster, count(*) FROM audit GROUP BY cluster ORDER BY cluster" 2>/dev/null)
check "sql: audit is the union of the members' files (counts per cluster)" test \
    "$(tr '\n' ' ' <<<"$out")" = "cluster,count(*) member-1,1 member-2,2 member-3,1 "
out=$(ctlx sql --output csv "SELECT (SELECT count(*) FROM member_2_submitter.audit), (SELECT count(*) FROM member_3_scheduler.audit)" 2>/dev/null)
check "sql: a member's file is schema member_<i>_<service>" test "$(tail -1 <<<"$out")" = "1,1"
out=$(ctlx sql --context member-4 --output csv "SELECT cluster, count(*) FROM audit" 2>&1)
check "sql --context member-4 reads member-4's files only" test "$(tail -1 <<<"$out")" = "member-4,1"
before=$(md5sum "$state"/*.db | md5sum)
out=$(ctlx sql "ATTACH '$state/member-4.scheduler.db' AS m4" 2>&1); code=$?
check "sql over the members still refuses ATTACH (exit $code)" test "$code" -eq 1
has "... saying so" "$out" "^rayfleetctl sql: refused: .*read-only"
out=$(ctlx sql --context member-1 "DELETE FROM main.audit" 2>&1); code=$?
check "sql --context member-1 still refuses a write (exit $code)" test "$code" -eq 1
has "... saying so" "$out" "^rayfleetctl sql: refused: .*read-only"
out=$(ctlx sql "DELETE FROM member_2_scheduler.audit" 2>&1); code=$?
check "sql refuses a write to a member's schema (exit $code)" test "$code" -eq 1
has "... saying so" "$out" "^rayfleetctl sql: refused: .*read-only"
check "the files are unchanged" test "$(md5sum "$state"/*.db | md5sum)" = "$before"

# --- 6. errors ----------------------------------------------------------------------------------
out=$(ctlx audit --context member-9 2>&1); code=$?
check "audit --context member-9: exit 1" test "$code" -eq 1
has "... naming the clusters of federation.yaml" "$out" \
    "--context member-9: no such cluster in .*/federation.yaml \(clusters: management, member-1, member-2, member-3, member-4\)"
expect_code "sql --context with --db: usage error" 2 "$ctl" sql --context member-1 --db "$state/member-1.scheduler.db" "SELECT 1"
expect_code "audit --context with --db: usage error" 2 "$ctl" audit --context member-1 --db "$state/member-1.scheduler.db"
mkdir -p "$tmp/plain"
cp "$tmp/empty.db" "$tmp/plain/scheduler.db"
out=$("$ctl" audit --state-dir "$tmp/plain" --context member-1 2>&1); code=$?
check "--context member-1 without federation.yaml: exit 1" test "$code" -eq 1
has "... and says there is no federation" "$out" "--context member-1: .* has no federation.yaml"
expect_code "--context management without federation.yaml: the state dir's files" 0 \
    "$ctl" audit --state-dir "$tmp/plain" --context management
rm "$state"/member-3.*.db
out=$(ctlx audit --context member-3 2>&1); code=$?
check "audit --context member-3 without its files: exit 1" test "$code" -eq 1
has "... naming the files it looked for" "$out" "no audit database of member member-3 at .*/member-3.scheduler.db"
out=$(ctlx audit 2>&1)
has "without member-3's files, member-4's fit: the union reads it, no note" "$out" "member-4 +create .*default/demo4-head "
lacks "... and prints no note" "$out" "not read"
tl_summary
