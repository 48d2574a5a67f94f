#!/usr/bin/env bash
# integration.audit: rayfleetctl audit / audit export / audit prune / sql against a scheduler.db
# written through the store API (audit_fixture). Usage: audit_test.sh RAYFLEETCTL AUDIT_FIXTURE
set -u
ctl="$1"
fix="$2"
tmp="$(mktemp -d /tmp/rf-audit-it-XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
fails=0
pass=0
check() { # check NAME CMD...
    local name="$1"
    shift
    if "$@"; then
        pass=$((pass + 1))
        echo "ok   $name"
    else
        fails=$((fails + 1))
        echo "FAIL $name"
    fi
}
command -v python3 >/dev/null || { echo "FAIL python3 is required"; exit 1; }
command -v sqlite3 >/dev/null || { echo "FAIL sqlite3 is required (scripts/deps.sh)"; exit 1; }

state="$tmp/state"
mkdir -p "$state"
db="$state/scheduler.db"
# Rows an hour apart, each half an hour off the whole hours that the relative cutoffs below
# (--since 60h, --since 120h, prune --older-than 100h) fall on: the counts stay the same however
# long the test runs (up to 30 minutes), instead of depending on it finishing within 30 s.
hour=3600000
now_ms=$(python3 -c 'import time; print(int(time.time()*1000))')
base=$((now_ms - 300 * hour + hour / 2)) # row i at now - (300 - i) h + 30 min
"$fix" "$db" create 300 "$base" "$hour" || { echo "FAIL fixture"; exit 1; }
"$fix" "$state/observed.db" create 0 0 0 || { echo "FAIL fixture observed"; exit 1; }
check "fixture wrote 300 rows" test "$(sqlite3 "$db" 'SELECT count(*) FROM audit')" = 300

# --- filters: the ids rayfleetctl prints (json) equal those of the same SQL run by sqlite3 ----
ids_ctl() { "$ctl" audit --db "$db" --output json --limit 1000000 "$@" |
    python3 -c 'import json,sys; print(" ".join(str(r["id"]) for r in json.load(sys.stdin)))'; }
ids_sql() { sqlite3 "$db" "SELECT id FROM audit WHERE $1 ORDER BY time_ms, id" | tr '\n' ' ' | sed 's/ $//'; }
same() { # same NAME WHERE FLAGS...
    local name="$1" where="$2"
    shift 2
    local got want
    got="$(ids_ctl "$@")"
    want="$(ids_sql "$where")"
    if [ -n "$want" ] && [ "$got" = "$want" ]; then
        pass=$((pass + 1)); echo "ok   filter $name ($(echo "$want" | wc -w) rows)"
    else
        fails=$((fails + 1)); echo "FAIL filter $name: got [$got] want [$want]"
    fi
}
rfc() { python3 -c "import datetime,sys; print(datetime.datetime.fromtimestamp($1/1000, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.')+'%03dZ' % ($1 % 1000))"; }
same "--cluster" "cluster = 'c1'" --cluster c1
same "--kind --namespace" "target_kind = 'Pod' AND target_namespace = 'ns0'" --kind Pod --namespace ns0
same "target" "cluster = 'c0' AND target_kind = 'Pod' AND target_namespace = 'ns0' AND target_name = 'obj-0'" \
    --cluster c0 --kind Pod --namespace ns0 --name obj-0
same "--name" "target_name = 'obj-3'" --name obj-3
same "--verb" "verb = 'delete'" --verb delete
same "--result 2xx" "result_status BETWEEN 200 AND 299" --result 2xx
same "--result 409" "result_status = 409" --result 409
same "--result error" "result_status = 0 OR result_status >= 400 OR result_error IS NOT NULL" --result error
same "--actor" "actor_service = 'submitter'" --actor submitter
same "--correlation" "correlation_id = 'corr-3'" --correlation corr-3
same "--since/--until RFC 3339" "time_ms >= $((base + 10 * hour)) AND time_ms < $((base + 20 * hour))" \
    --since "$(rfc $((base + 10 * hour)))" --until "$(rfc $((base + 20 * hour)))"
same "--since 60h (relative)" "time_ms >= $((now_ms - 60 * hour))" --since 60h
same "combined" "verb = 'create' AND actor_service = 'scheduler' AND time_ms >= $((now_ms - 120 * hour))" \
    --verb create --actor scheduler --since 120h
check "--limit 5 prints the newest five, oldest first" test "$("$ctl" audit --db "$db" --output json --limit 5 |
    python3 -c 'import json,sys; print(" ".join(str(r["id"]) for r in json.load(sys.stdin)))')" = "296 297 298 299 300"
check "export = every row, oldest first" test "$("$ctl" audit export --db "$db" --output json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(len(r), r[0]["id"], r[-1]["id"])')" = "300 1 300"
check "audit --state-dir reads STATE/scheduler.db" bash -c "'$ctl' audit --state-dir '$state' --limit 3 | grep -q '^Audit rows (3, newest 3 at most)'"

# --- outputs parse -----------------------------------------------------------------------------
"$ctl" audit --db "$db" --limit 50 --output json >"$tmp/a.json"
check "json is one array that json.load parses, 24 fields" python3 -c "
import json; r=json.load(open('$tmp/a.json')); assert len(r)==50 and len(r[0])==24, (len(r), len(r[0]))
assert r[0]['message'].startswith('row 250, with \"quotes\",\nand'), r[0]['message']
assert r[0]['time'].endswith('Z') and isinstance(r[0]['time_ms'], int)"
"$ctl" audit --db "$db" --limit 50 --output csv >"$tmp/a.csv"
check "csv parses with the csv module, quoting round-trips" python3 -c "
import csv, sqlite3
rows=list(csv.DictReader(open('$tmp/a.csv', newline='')))
assert len(rows)==50, len(rows)
db=sqlite3.connect('file:$db?mode=ro', uri=True)
for r in rows:
    m, e = db.execute('SELECT message, coalesce(result_error, \"\") FROM audit WHERE id=?', (int(r['id']),)).fetchone()
    assert r['message']==m and r['result_error']==e, (r['message'], m)"
"$ctl" audit --db "$db" --limit 20 --output jsonl >"$tmp/a.jsonl"
check "jsonl: one object per line" python3 -c "
import json; l=[json.loads(x) for x in open('$tmp/a.jsonl')]; assert len(l)==20"
"$ctl" audit --db "$db" --limit 10 >"$tmp/a.table"
check "table: header and 10 rows" bash -c "grep -q '^ID .*TIME(UTC) .*ACTOR .*VERB .*RESULT .*KIND .*OBJECT .*CAUSE' '$tmp/a.table' && test \$(grep -c '^[0-9]' '$tmp/a.table') = 10"
check "table shows the cause" grep -q "ray.io/RayCluster/ns0/demo gen [0-9] rv 42" "$tmp/a.table"
check "no secret literal in any audit row or export" bash -c "! sqlite3 '$db' .dump | grep -q hunter2-fixture && ! grep -q hunter2-fixture '$tmp/a.json' '$tmp/a.csv' && grep -q secretKeyRef '$tmp/a.json'"

# --- query plans: each filter uses its index ---------------------------------------------------
plan() { # plan INDEX FLAGS...
    local idx="$1"
    shift
    local out
    out="$("$ctl" audit --db "$db" --explain "$@")"
    if echo "$out" | grep -q "QUERY PLAN: .*USING INDEX $idx\b"; then
        pass=$((pass + 1)); echo "ok   plan $* -> $idx"
    else
        fails=$((fails + 1)); echo "FAIL plan $* -> want $idx:"; echo "$out"
    fi
}
plan audit_by_target --cluster c0 --kind Pod --namespace ns0 --name obj-0 --since 1h
plan audit_by_time --since 15m
plan audit_by_time --since 2h --until 1h
plan audit_by_verb --verb delete --result 409
plan audit_by_actor --actor submitter
plan audit_by_correlation --correlation corr-3

# --- follow ------------------------------------------------------------------------------------
timeout --preserve-status -s INT 4 "$ctl" audit --db "$db" --follow --output json --name follow-me \
    >"$tmp/follow.out" 2>"$tmp/follow.err" &
fpid=$!
sleep 1.2
"$fix" "$db" append follow-me
wait $fpid
frc=$?
check "--follow prints a row appended after it started (JSON lines)" python3 -c "
import json; l=[json.loads(x) for x in open('$tmp/follow.out')]; assert len(l)==1 and l[0]['target_name']=='follow-me', l"
check "--follow exits 0 on SIGINT" test "$frc" = 0

# --- prune -------------------------------------------------------------------------------------
keep_before="$(sqlite3 "$db" "SELECT count(*) FROM audit WHERE time_ms >= $((now_ms - 100 * hour))")"
check "prune --dry-run counts" bash -c "'$ctl' audit prune --db '$db' --older-than 100h --dry-run | grep -q '^audit prune: 200 rows older than'"
"$ctl" audit prune --db "$db" --older-than 100h --chunk 7 --pause 1ms >"$tmp/prune.out" 2>&1
check "prune deletes the 200 old rows in chunks of 7" grep -q "deleted 200 rows older than .* in 29 chunks of at most 7" "$tmp/prune.out"
check "prune keeps every newer row" test "$(sqlite3 "$db" 'SELECT count(*) FROM audit')" = "$keep_before"
check "prune leaves no old row" test "$(sqlite3 "$db" "SELECT count(*) FROM audit WHERE time_ms < $((now_ms - 100 * hour))")" = 0
check "prune --older-than is required" bash -c "'$ctl' audit prune --db '$db' 2>&1 | grep -q 'older-than'"

# --- sql: read-only for real -------------------------------------------------------------------
rows_before="$(sqlite3 "$db" 'SELECT count(*) FROM audit')"
sum_before="$(cat "$db" "$db-wal" 2>/dev/null | sha256sum)"
refuse() { # refuse NAME EXPECTED-TEXT SQL
    local out rc
    out="$("$ctl" sql --db "$db" "$3" 2>&1)"
    rc=$?
    if [ $rc -ne 0 ] && echo "$out" | grep -qF "$2"; then
        pass=$((pass + 1)); echo "ok   sql refuses $1: $out"
    else
        fails=$((fails + 1)); echo "FAIL sql $1 (rc $rc): $out"
    fi
}
refuse INSERT "refused: INSERT is not allowed (rayfleetctl sql is read-only)" "INSERT INTO audit (time_ms, cluster, target_group, target_kind, target_namespace, target_name, verb, result_status, latency_ms) VALUES (1,'','','','','','x',0,0)"
refuse DELETE "refused: DELETE is not allowed" "DELETE FROM audit"
refuse UPDATE "refused: UPDATE is not allowed" "UPDATE audit SET verb = 'x'"
refuse DROP "refused: DROP is not allowed" "DROP TABLE audit"
refuse CREATE "refused: CREATE is not allowed" "CREATE TABLE t (x)"
refuse "CREATE INDEX" "refused: CREATE is not allowed" "CREATE INDEX i ON audit (verb)"
refuse ATTACH "refused: ATTACH is not allowed" "ATTACH '$tmp/x.db' AS x"
refuse DETACH "refused: DETACH is not allowed" "DETACH main"
refuse "PRAGMA journal_mode=DELETE" "refused: PRAGMA journal_mode=DELETE is not allowed" "PRAGMA journal_mode=DELETE"
refuse "PRAGMA writable_schema=1" "refused: PRAGMA writable_schema=1 is not allowed" "PRAGMA writable_schema=1"
refuse "load_extension" "refused: the function load_extension() is not allowed" "SELECT load_extension('x')"
refuse "stacked statements" "refused: more than one statement is not allowed" "SELECT 1; DELETE FROM audit"
refuse "BEGIN" "refused: BEGIN/COMMIT/ROLLBACK is not allowed" "BEGIN IMMEDIATE"
refuse "VACUUM" "refused:" "VACUUM"
refuse "REPLACE via CTE" "refused: INSERT is not allowed" "WITH x AS (SELECT 1) INSERT INTO leases SELECT 'a','b',1,1,1,1 FROM x"
check "the database is byte-identical after the refusals" test "$(cat "$db" "$db-wal" 2>/dev/null | sha256sum)" = "$sum_before"
check "the row count is unchanged" test "$(sqlite3 "$db" 'SELECT count(*) FROM audit')" = "$rows_before"
check "sql SELECT works (json)" test "$("$ctl" sql --db "$db" --output json "SELECT count(*) AS n FROM audit" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["n"])')" = "$rows_before"
check "sql PRAGMA table_info is allowed" bash -c "'$ctl' sql --db '$db' 'PRAGMA table_info(audit)' | grep -q request_summary"
check "sql --state-dir attaches observed.db as 'observed'" test "$("$ctl" sql --state-dir "$state" --output csv \
    "SELECT (SELECT count(*) FROM observed.observed_objects) || '/' || (SELECT count(*) FROM main.audit) AS n" | tail -1)" = "0/$rows_before"
check "sql --limit cuts the output and says so" bash -c "'$ctl' sql --db '$db' --limit 3 --output csv 'SELECT id FROM audit' 2>'$tmp/lim.err' | test \$(wc -l) = 4 && grep -q 'cut at 3 rows' '$tmp/lim.err'"
"$ctl" sql --db "$db" --timeout 200ms 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c' >"$tmp/to.out" 2>&1
trc=$?
check "sql --timeout: exit 1 with a clear message" bash -c "test $trc = 1 && grep -q 'ran longer than 200 ms' '$tmp/to.out'"
check "sql syntax error is reported" bash -c "'$ctl' sql --db '$db' 'SELEC 1' 2>&1 | grep -q 'syntax error'"
check "the database is still byte-identical" test "$(cat "$db" "$db-wal" 2>/dev/null | sha256sum)" = "$sum_before"

echo "integration.audit: $pass passed, $fails failed"
[ "$fails" -eq 0 ]
