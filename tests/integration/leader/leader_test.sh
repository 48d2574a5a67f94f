#!/usr/bin/env bash
# integration.leader: two cells (`rayfleetctl up`, different state dirs) against one kubesim.
#   1. Exactly one writes: the leader cell's audit files have rows, the standby's none; the Lease
#      names the leader's identity; the standby's /readyz is 200 and rayfleet_leader_is_leader 0.
#   2. A worker group is scaled 2 -> 6 and every process of the leader cell is killed -9 at once:
#      the standby takes the Lease (the handover time is measured and printed; it must be within
#      the lease duration plus one retry period, 15 s + 2 s, plus request latency), the group ends
#      with exactly 6 workers, no pod name was created twice (both cells' audits) and none deleted.
#   3. A third cell waits; every process of the leader cell is frozen (SIGSTOP) and the group
#      scaled 6 -> 8: the third cell takes over and scales it; woken (SIGCONT) past its deadline
#      the frozen cell writes nothing (its fence reads the clock) and exits on the lost lease.
#   4. A live KubeRay leader Lease (ray-system/ray-operator-leader, renewed by this script): a
#      fourth up refuses with the message that says what to do, the leading cell (re-checking)
#      exits 2 too; with --take-over up starts.
# Usage: leader_test.sh PATH/TO/rayfleetctl PATH/TO/raycluster.yaml
set -uo pipefail
ctl=${1:?usage: leader_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
yaml=${2:?usage: leader_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
source "$here/../cli/testlib.sh"
tmp=$(mktemp -d /tmp/rfleader.XXXXXX)
renewer=

finish() {
    [[ -n $renewer ]] && kill "$renewer" 2>/dev/null
    for c in d c b a; do "$ctl" down --state-dir "$tmp/$c" --timeout 5s >/dev/null 2>&1; done
    tl_summary; local r=$?
    rm -rf "$tmp"
    return $r
}
trap 'finish; exit $?' EXIT

for tool in kubectl sqlite3 curl; do
    command -v $tool >/dev/null || { bad "$tool is not installed"; exit 1; }
done

# --- two cells -------------------------------------------------------------------------------
kubeconfig=$("$ctl" up --sim --detach --nodes 8 --state-dir "$tmp/a" --timeout 60s 2>"$tmp/a.err")
if [[ $? -ne 0 || ! -s "$kubeconfig" ]]; then bad "up --sim (cell a)"; cat "$tmp/a.err"; exit 1; fi
ok "cell a: up --sim"
kc() { kubectl --kubeconfig "$kubeconfig" --cache-dir "$tmp/kcache" "$@"; }
if ! "$ctl" up --kubeconfig "$kubeconfig" --detach --state-dir "$tmp/b" --timeout 60s \
    >/dev/null 2>"$tmp/b.err"; then
    bad "up --kubeconfig (cell b)"; cat "$tmp/b.err"; exit 1
fi
ok "cell b: up --kubeconfig against the same cluster, ready (its /readyz answered 200 on standby)"
holder() { kc get lease rayfleet-leader -n default -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
id_a=$(sed -n 's/.*"msg":"leader election: standby until the lease is held".*"identity":"\([^"]*\)".*/\1/p' \
    "$tmp/a/logs/scheduler.log" | head -1)
id_b=$(sed -n 's/.*"msg":"leader election: standby until the lease is held".*"identity":"\([^"]*\)".*/\1/p' \
    "$tmp/b/logs/scheduler.log" | head -1)
[[ -n $id_a && -n $id_b && $id_a != "$id_b" ]] && ok "the cells have distinct identities ($id_a, $id_b)" ||
    bad "identities: '$id_a' '$id_b'"
for p in submitter serve-upgrade; do
    grep -q "\"identity\":\"$id_a\"" "$tmp/a/logs/$p.log" || bad "cell a's $p shares the identity"
done
ok "the processes of one cell share its identity"
[[ $(holder) == "$id_a" ]] && ok "the Lease default/rayfleet-leader names cell a" || bad "holder: $(holder)"

sed -e 's/maxReplicas: 5/maxReplicas: 10/' "$yaml" | kc apply -f - >/dev/null || bad "apply demo"
for _ in $(seq 1 120); do
    [[ $(kc get raycluster demo -o jsonpath='{.status.state}') == ready ]] && break
    sleep 0.25
done
[[ $(kc get raycluster demo -o jsonpath='{.status.state}') == ready ]] && ok "the RayCluster is ready" ||
    bad "the RayCluster is not ready"
rows() { local n=0 f; for f in "$1"/scheduler.db "$1"/submitter.db "$1"/serve-upgrade.db; do
    [[ -f $f ]] && n=$((n + $(sqlite3 "$f" 'SELECT count(*) FROM audit'))); done; echo $n; }
ra=$(rows "$tmp/a"); rb=$(rows "$tmp/b")
[[ $ra -gt 0 && $rb -eq 0 ]] && ok "exactly one cell writes (audit rows: a $ra, b $rb)" ||
    bad "audit rows: a $ra, b $rb"

port_b=$(sed -n 's/.*scheduler ready (pid [0-9]*, \/readyz 200, health port \([0-9]*\)).*/\1/p' "$tmp/b.err")
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port_b/readyz")
metrics=$(curl -s "http://127.0.0.1:$port_b/metrics")
[[ $code == 200 ]] && ok "the standby's /readyz is 200 (hot standby)" || bad "standby /readyz $code"
has "the standby's /metrics: is_leader 0, no transition" "$metrics" \
    '^rayfleet_leader_is_leader 0$' '^rayfleet_leader_transitions_total 0$'
st=$("$ctl" status --state-dir "$tmp/b" 2>&1)
has "status of cell b: it waits and names the leader" "$st" "^Leader: this cell waits \(standby, identity $id_b\); $id_a leads"
st=$("$ctl" status --state-dir "$tmp/a" 2>&1)
has "status of cell a: it leads" "$st" "^Leader: this cell leads \(identity $id_a"

# --- kill -9 the leader cell mid-scale-up ----------------------------------------------------
kc patch raycluster demo --type json \
    -p '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":6}]' >/dev/null
t0=$(date +%s%N)
# (the supervisor first: it would restart the others, cli/supervise.h)
for n in rayfleetctl bus watcher scheduler submitter serve-upgrade; do
    kill -9 "$(awk -v n=$n '$1 == n {print $2}' "$tmp/a/pids")" 2>/dev/null
done
for _ in $(seq 1 300); do [[ $(holder) == "$id_b" ]] && break; sleep 0.1; done
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
echo "handover: cell b holds the Lease ${ms} ms after cell a was killed (lease 15 s, retry 2 s)"
[[ $(holder) == "$id_b" && $ms -le 18000 ]] && ok "the standby took over in $ms ms" ||
    bad "takeover: holder $(holder) after $ms ms"
workers() { kc get pods -l ray.io/cluster=demo,ray.io/group=workers --no-headers 2>/dev/null | wc -l; }
for _ in $(seq 1 120); do [[ $(workers) -eq 6 ]] && break; sleep 0.25; done
sleep 2 # a second leader pass would create or delete here if it were going to
[[ $(workers) -eq 6 ]] && ok "the group ends with exactly 6 workers" || bad "workers: $(workers)"
created=$(for c in a b; do sqlite3 "$tmp/$c/scheduler.db" \
    "SELECT target_name FROM audit WHERE verb = 'create' AND target_kind = 'Pod' AND result_status < 300"; done)
dups=$(sort <<<"$created" | uniq -d)
[[ -z $dups ]] && ok "no pod name was created twice ($(wc -l <<<"$created") creates in both cells)" ||
    bad "pods created twice: $dups"
deleted=$(for c in a b; do sqlite3 "$tmp/$c/scheduler.db" \
    "SELECT count(*) FROM audit WHERE verb = 'delete' AND target_kind = 'Pod'"; done | paste -sd+ | bc)
[[ $deleted -eq 0 ]] && ok "no pod was deleted" || bad "$deleted pod deletes"
# (a pod cell a created in its last 10 ms may lack its audit row: the audit file commits every
# 10 ms and a kill -9 loses the rest, ctrlsvc.h; the pod count above covers such pods)
[[ $(rows "$tmp/b") -gt 0 ]] && ok "cell b writes now" || bad "cell b wrote nothing"
metrics=$(curl -s "http://127.0.0.1:$port_b/metrics")
has "the new leader's /metrics: is_leader 1, one transition" "$metrics" \
    '^rayfleet_leader_is_leader 1$' '^rayfleet_leader_transitions_total 1$'

# --- a frozen leader wakes up after its deadline: it writes nothing and exits ------------------
if ! "$ctl" up --kubeconfig "$kubeconfig" --detach --state-dir "$tmp/c" --timeout 60s \
    >/dev/null 2>"$tmp/c.err"; then
    bad "up --kubeconfig (cell c)"; cat "$tmp/c.err"; exit 1
fi
id_c=$(sed -n 's/.*"msg":"leader election: standby until the lease is held".*"identity":"\([^"]*\)".*/\1/p' \
    "$tmp/c/logs/scheduler.log" | head -1)
bpids=$(awk '$1 != "kubesim" && $1 != "rayfleetctl" {print $2}' "$tmp/b/pids")
kill -STOP $bpids
kc patch raycluster demo --type json \
    -p '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":8}]' >/dev/null
for _ in $(seq 1 300); do [[ $(holder) == "$id_c" ]] && break; sleep 0.1; done
[[ $(holder) == "$id_c" ]] && ok "cell b frozen (SIGSTOP): cell c took the Lease" || bad "holder $(holder)"
for _ in $(seq 1 120); do [[ $(workers) -eq 8 ]] && break; sleep 0.25; done
[[ $(workers) -eq 8 ]] && ok "cell c scaled the group to 8" || bad "workers: $(workers)"
rb=$(rows "$tmp/b")
spid=$(awk '$1 == "scheduler" {print $2}' "$tmp/b/pids")
kill -CONT $bpids
for _ in $(seq 1 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$spid" 2>/dev/null && grep -q '"msg":"leader lease lost' "$tmp/b/logs/scheduler.log" &&
    ok "cell b, woken past its deadline, sees the lease lost and exits" ||
    bad "cell b's scheduler still runs after waking"
[[ $(rows "$tmp/b") -eq $rb ]] && ok "and wrote nothing after waking (audit rows stay $rb)" ||
    bad "cell b wrote after waking: $rb -> $(rows "$tmp/b") audit rows"
sleep 1
[[ $(workers) -eq 8 ]] && ok "the group still has exactly 8 workers" || bad "workers: $(workers)"

# --- refusing to fight KubeRay ---------------------------------------------------------------
now() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }
kc apply -f - >/dev/null <<YAML || bad "create the KubeRay Lease"
apiVersion: v1
kind: Namespace
metadata: {name: ray-system}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: ray-operator-leader, namespace: ray-system}
spec: {holderIdentity: kuberay-operator-5d8f_1, leaseDurationSeconds: 15, renewTime: "$(now)", acquireTime: "$(now)"}
YAML
(while sleep 2; do
    kc -n ray-system patch lease ray-operator-leader --type merge \
        -p "{\"spec\":{\"renewTime\":\"$(now)\"}}" >/dev/null 2>&1
done) &
renewer=$!
out=$("$ctl" up --kubeconfig "$kubeconfig" --detach --state-dir "$tmp/d" --timeout 30s 2>&1); code=$?
[[ $code -eq 2 ]] && ok "up refuses while a KubeRay operator holds its Lease (exit 2)" ||
    bad "up with KubeRay active: exit $code, want 2"
has "the refusal says what holds it and what to do" "$out" "rayfleetctl up --take-over" \
    "a KubeRay operator is reconciling: Lease ray-system/ray-operator-leader held by kuberay-operator-5d8f_1, renewed [0-9]+s ago" \
    "kubectl -n ray-system scale deployment kuberay-operator --replicas=0" "--leader.take-over"
[[ $(holder) == "$id_c" ]] && ok "the refused cell took no lease" || bad "holder $(holder)"
# the leading cell re-checks every lease duration: it stops writing and exits 2 as well
spid=$(awk '$1 == "scheduler" {print $2}' "$tmp/c/pids")
for _ in $(seq 1 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.25; done
! kill -0 "$spid" 2>/dev/null && grep -q '"msg":"refusing to fight a KubeRay operator"'     "$tmp/c/logs/scheduler.log" && ok "the leading cell, re-checking, refuses to fight too and exits" ||
    bad "cell c's scheduler still runs with KubeRay active"
"$ctl" down --state-dir "$tmp/d" --timeout 5s >/dev/null 2>&1
if "$ctl" up --kubeconfig "$kubeconfig" --detach --take-over --state-dir "$tmp/d" --timeout 30s \
    >/dev/null 2>"$tmp/d.err"; then
    ok "up --take-over starts"
    grep -q '"msg":"--leader.take-over: reconciling although a KubeRay operator is active' \
        "$tmp/d/logs/scheduler.log" && ok "and warns that both will write" || bad "no take-over warning"
else
    bad "up --take-over"; cat "$tmp/d.err"
fi
