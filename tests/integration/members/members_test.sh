#!/usr/bin/env bash
# integration.members: simulated member clusters (issue 16).
# Usage: members_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml   (kubesim and services beside it)
#  1. up --sim --members 2 --member-nodes 2,4 --detach: one kubeconfig with the contexts
#     management, member-1, member-2 (current: management), STATE/federation.yaml, a kubesim per
#     cluster and a scheduler/submitter/serve-upgrade per member; the management cluster's one
#     controller is its scheduler, the placer.
#  2. kubectl against each context; a RayCluster applied to member-2 becomes ready there, no pod
#     of it on member-1 or the management cluster.
#  3. members: both members, 2 and 4 nodes, different CPU, member-2's used CPU/memory/pods equal
#     the Ray pods' requests (3 pods: 1+1+1 CPU, 4G), member-1's zero; RAYCLUSTERS 0 and 1.
#  3b. a RayCluster on member-1 too: audit (no --context) lists both members' scheduler rows with
#     a CLUSTER column and no note (2 members' files fit SQLite's attach limit); audit --context
#     member-1 only member-1's; explain raycluster/one --context member-1 finds its actions and
#     --context member-2 does not; sql counts per cluster over the union lie between what sqlite3
#     counts in each member's files before and after.
#  4. member stop member-1: unhealthy in members within 10 s, member-2 still healthy; member
#     start: healthy again within 10 s. partition member-2 / heal: the same.
#  5. a RayCluster on the management context: placed on a member (status names it; the placer's
#     own test is integration.placer), members counts it.
#  6. down: every process of the pid file is gone.
set -uo pipefail
ctl=${1:?usage: members_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
example=${2:?usage: members_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
. "$(dirname "$0")/../cli/testlib.sh"
tl_cell members "$ctl"
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
kcx() { local c=$1; shift; kubectl --kubeconfig "$state/kubeconfig" --context "$c" --cache-dir "$tmp/kcache" "$@"; }
members() { "$ctl" members --state-dir "$state" 2>&1; }
row() { members | awk -v n="$1" '$1 == n'; }
# col MEMBER N: column N of the member's row
col() { row "$1" | awk -v c="$2" '{print $c}'; }
healthy() { [[ $(col "$1" 8) == yes ]]; }
unhealthy() { [[ $(col "$1" 8) == no ]]; }

# --- 1. up ------------------------------------------------------------------------------------
t0=$(date +%s%N)
kc=$("$ctl" up --sim --members 2 --member-nodes 2,4 --detach --state-dir "$state" --timeout 60s 2>"$tmp/up.err")
rc=$?
t1=$(date +%s%N)
if [[ $rc -eq 0 ]]; then ok "up --sim --members 2 --detach returns ($(((t1 - t0) / 1000000)) ms)"; else
    bad "up --sim --members 2 (exit $rc)"; cat "$tmp/up.err"; exit 1; fi
check "it prints the one kubeconfig" test "$kc" = "$state/kubeconfig"
has "up says the management cluster's objects are placed on members" "$(cat "$tmp/up.err")" \
    "applied to the management context are placed on a member by the management scheduler"
has "the kubeconfig has the three contexts, current management" \
    "$(kubectl --kubeconfig "$state/kubeconfig" config get-contexts 2>&1)" \
    "^\* +management +management" "^ +member-1 +member-1" "^ +member-2 +member-2"
has "federation.yaml describes the members" "$(cat "$state/federation.yaml")" \
    "^federation:" "management: \{name: management, context: management" \
    "- name: member-1" "- name: member-2" "context: member-2"
pids=$(awk '{print $1}' "$state/pids" | sort | tr '\n' ' ')
has "a kubesim per cluster, controllers per member only" "$pids" \
    "kubesim kubesim-member-1 kubesim-member-2 " "member-1.scheduler member-1.serve-upgrade member-1.submitter member-2.scheduler" \
    "member-2.submitter" " watcher"
check "the management cluster's one controller is its scheduler (the placer)" bash -c "grep -Eq '^scheduler ' '$state/pids' && ! grep -Eq '^(submitter|serve-upgrade) ' '$state/pids'"
spid=$(awk '$1 == "scheduler" {print $2}' "$state/pids")
has "the management scheduler is the placer" "$(tr '\0' ' ' <"/proc/$spid/cmdline" 2>&1)" \
    "--cluster management" "--context management" "--federation.config $state/federation.yaml"

# --- 2. kubectl per context; a RayCluster on member-2 ------------------------------------------
check "kubectl --context member-1 get nodes: 2 nodes" test "$(kcx member-1 get nodes --no-headers 2>/dev/null | wc -l)" -eq 2
check "kubectl --context member-2 get nodes: 4 nodes" test "$(kcx member-2 get nodes --no-headers 2>/dev/null | wc -l)" -eq 4
check "kubectl --context management get nodes: none" test "$(kcx management get nodes --no-headers 2>/dev/null | wc -l)" -eq 0
for c in management member-1 member-2; do
    check "CRDs installed in $c" kcx "$c" get crd rayclusters.ray.io
done
kcx member-2 apply -f "$example" >/dev/null
if kcx member-2 wait --for=jsonpath='{.status.state}'=ready raycluster/demo --timeout=60s >/dev/null 2>&1; then
    ok "a RayCluster on member-2 becomes ready there"; else bad "the RayCluster on member-2 is not ready"; fi
has "status --context member-2 lists it as ready" "$("$ctl" status --state-dir "$state" --context member-2 2>&1)" \
    "^default +demo +ready "
expect_code "status --context of an unknown context: refused" 1 "$ctl" status --state-dir "$state" --context member-9
check "member-2 runs its 3 pods" test "$(kcx member-2 get pods -l ray.io/cluster=demo --no-headers 2>/dev/null | wc -l)" -eq 3
check "member-1 has no RayCluster" test "$(kcx member-1 get rayclusters --no-headers 2>/dev/null | wc -l)" -eq 0
check "member-1 has no pod" test "$(kcx member-1 get pods -A --no-headers 2>/dev/null | wc -l)" -eq 0
check "the management cluster has no pod" test "$(kcx management get pods -A --no-headers 2>/dev/null | wc -l)" -eq 0

# --- 3. members ---------------------------------------------------------------------------------
has_used() { [[ $(col member-2 3) == 3/* && $(col member-2 6) == 3/* && $(col member-2 7) == 1 ]]; }
tl_wait 10 has_used
out=$(members)
has "members: a row per member with nodes, capacity, use and health" "$out" \
    "^MEMBER +NODES +CPU +MEMORY +GPU +PODS +RAYCLUSTERS +HEALTHY" \
    "^member-1 +2/2 +0/64 +0/256Gi +0/0 +0/220 +0 +yes$" \
    "^member-2 +4/4 +3/128 +4G/512Gi +0/0 +3/440 +1 +yes$"
# the Ray pods' requests, as the API server has them, equal what members counts as used
req=$(kcx member-2 get pods -l ray.io/cluster=demo -o jsonpath='{range .items[*]}{range .spec.containers[*]}{.resources.requests.cpu}{" "}{end}{end}')
check "used CPU = the sum of the Ray pods' requests ($req)" test "$(tr ' ' '\n' <<<"$req" | awk '{s+=$1} END {print s}')" = 3

# --- 3b. audit, explain and sql over the members (cli/fleetdb.h, "Federation") ---------------------
sed 's/^  name: demo$/  name: one/' "$example" | kcx member-1 apply -f - >/dev/null
if kcx member-1 wait --for=jsonpath='{.status.state}'=ready raycluster/one --timeout=60s >/dev/null 2>&1; then
    ok "a RayCluster on member-1 becomes ready there"; else bad "the RayCluster on member-1 is not ready"; fi
audit_ctx() { "$ctl" audit --state-dir "$state" --limit 1000 "$@"; }
one_audited() { audit_ctx --context member-1 2>/dev/null | grep -Eq " create +201 +Pod +default/one-"; }
tl_wait 10 one_audited
out=$(audit_ctx 2>"$tmp/audit.err")
has "audit without --context: both members' scheduler rows, with a CLUSTER column" "$out" \
    "^ID +TIME\(UTC\) +ACTOR +CLUSTER +VERB" " member-1 +create +201 +Pod +default/one-" \
    " member-2 +create +201 +Pod +default/demo-"
check "audit without --context: no note (both members' files fit)" bash -c "! grep -q 'not read' '$tmp/audit.err'"
out=$(audit_ctx --context member-1 2>&1)
has "audit --context member-1 lists the rows of member-1's scheduler" "$out" \
    "^ID +TIME\(UTC\) +ACTOR +VERB" " create +201 +Pod +default/one-"
check "audit --context member-1 lists none of member-2's" bash -c "! grep -q 'default/demo-' <<<\"\$1\"" _ "$out"
out=$("$ctl" explain raycluster/one --context member-1 --state-dir "$state" 2>&1); code=$?
check "explain raycluster/one --context member-1 exits 0 (rayfleet acted on it)" test "$code" -eq 0
has "... and lists the member scheduler's pod creations" "$out" "create +Pod default/one-[a-z0-9-]+ \(Created"
expect_code "explain raycluster/one --context member-2: not there (exit 1)" 1 \
    "$ctl" explain raycluster/one --context member-2 --state-dir "$state"
# the union's count per cluster against sqlite3's of each member's files, read before and after
files_count() { local n=0 f c; for f in "$state/$1".*.db; do
    c=$(sqlite3 -readonly "$f" "SELECT count(*) FROM audit" 2>/dev/null) || c=0; n=$((n + c)); done; echo $n; }
b1=$(files_count member-1); b2=$(files_count member-2)
u=$("$ctl" sql --state-dir "$state" --output csv \
    "SELECT (SELECT count(*) FROM audit WHERE cluster = 'member-1'), (SELECT count(*) FROM audit WHERE cluster = 'member-2'), (SELECT count(*) FROM audit)" | tail -1)
a1=$(files_count member-1); a2=$(files_count member-2)
IFS=, read -r u1 u2 uall <<<"$u"
check "sql: audit over the union counts member-1's rows ($b1 <= $u1 <= $a1) and member-2's ($b2 <= $u2 <= $a2)" \
    test "${u1:-0}" -gt 0 -a "${u2:-0}" -gt 0 -a "$b1" -le "${u1:-0}" -a "${u1:-0}" -le "$a1" -a "$b2" -le "${u2:-0}" -a "${u2:-0}" -le "$a2"
check "sql: every row of the union is member-1's or member-2's ($uall)" test "${uall:-x}" = "$((u1 + u2))"

# --- 4. stop/start, partition/heal ---------------------------------------------------------------
"$ctl" member stop member-1 --state-dir "$state" >/dev/null
ts=$(date +%s%N)
has "status shows the stopped member's kubesim as paused" "$("$ctl" status --state-dir "$state" 2>&1)" \
    "^kubesim-member-1 +[0-9]+ +paused " "^kubesim-member-2 +[0-9]+ +running "
if tl_wait 10 unhealthy member-1; then ok "member stop member-1: unhealthy in $((($(date +%s%N) - ts) / 1000000)) ms"; else
    bad "member stop member-1: still healthy after 10 s"; members; fi
check "member-2 stays healthy" healthy member-2
"$ctl" member start member-1 --state-dir "$state" >/dev/null
ts=$(date +%s%N)
if tl_wait 10 healthy member-1; then ok "member start member-1: healthy in $((($(date +%s%N) - ts) / 1000000)) ms"; else
    bad "member start member-1: not healthy after 10 s"; members; fi
check "member-1's kubectl answers again" kcx member-1 get nodes
"$ctl" member partition member-2 --state-dir "$state" >/dev/null
check "partitioned member-2 refuses kubectl" bash -c "! kubectl --kubeconfig '$state/kubeconfig' --context member-2 get nodes --request-timeout=5s >/dev/null 2>&1"
if tl_wait 10 unhealthy member-2; then ok "member partition member-2: unhealthy"; else bad "member partition member-2: still healthy"; fi
has "the reason names the refusal" "$(row member-2)" "injected fault"
"$ctl" member heal member-2 --state-dir "$state" >/dev/null
if tl_wait 10 healthy member-2; then ok "member heal member-2: healthy"; else bad "member heal member-2: not healthy"; fi
"$ctl" member slow member-2 --latency-ms 400 --state-dir "$state" >/dev/null
ts=$(date +%s%N); kcx member-2 get nodes >/dev/null 2>&1; slow_ms=$((($(date +%s%N) - ts) / 1000000))
"$ctl" member fast member-2 --state-dir "$state" >/dev/null
ts=$(date +%s%N); kcx member-2 get nodes >/dev/null 2>&1; fast_ms=$((($(date +%s%N) - ts) / 1000000))
check "member slow adds latency ($slow_ms ms), fast removes it ($fast_ms ms)" test $((slow_ms - fast_ms)) -ge 300
expect_code "member with an unknown cluster: usage error" 2 "$ctl" member stop member-9 --state-dir "$state"
expect_code "member with an unknown action: usage error" 2 "$ctl" member reboot member-1 --state-dir "$state"

# --- 5. the management cluster: placed on a member -----------------------------------------------
sed 's/^  name: demo$/  name: central/' "$example" | kcx management apply -f - >/dev/null
placed_row() { "$ctl" status --state-dir "$state" 2>&1 | grep -Eq "^default +central +ready \(on member-[12]\)"; }
if tl_wait 30 placed_row; then ok "status reports the management object ready on its member"; else
    bad "the management object is not reported ready on a member"; "$ctl" status --state-dir "$state" 2>&1 | head -8; fi
mgmt_row() { members | grep -q "^management: 1 RayCluster(s), each placed on a member by the placer or waiting"; }
if tl_wait 10 mgmt_row; then ok "members counts it"; else bad "members does not count the management object"; members; fi
check "no pod runs on the management cluster" test "$(kcx management get pods -A --no-headers 2>/dev/null | wc -l)" -eq 0

# --- 6. down ------------------------------------------------------------------------------------
all=$(awk '{print $2}' "$state/pids")
"$ctl" member stop member-2 --state-dir "$state" >/dev/null # down must end a stopped kubesim too
ts=$(date +%s%N)
"$ctl" down --state-dir "$state" >"$tmp/down.out" 2>&1
down_ms=$((($(date +%s%N) - ts) / 1000000))
left=""
for p in $all; do tl_proc_gone "$p" || left="$left $p"; done
check "down stops every process, a stopped kubesim too ($down_ms ms; left:${left:- none})" test -z "$left"
check "down did not need SIGKILL" bash -c "! grep -q SIGKILL '$tmp/down.out'"
tl_summary
