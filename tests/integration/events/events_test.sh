#!/usr/bin/env bash
# integration.events: failing creates back off (issue 17), with the whole set (`rayfleetctl up --sim`).
# Three permanently failing creates, started together and watched for WINDOW seconds:
#  1. ev-bad: worker group "Bad_Group/Name!$x" -- every worker pod create is refused (422);
#  2. ev-svc (namespace evsvc, quota services=0) -- the head Service create is refused (403);
#  3. ev-job (namespace evjob, quota count/jobs.batch=0) -- the RayJob's submitter Job is refused.
# Each: fewer than 20 create attempts of the failing object in the window (client-go's per-key
# backoff 5 ms x 2^n: about 14 in 65 s; before the fix, ~33 per second), exactly one Warning
# Event object for the failure with count > 1 (client-go's correlator: a repeat patches the
# recorded Event, audited as "patch"), and a bounded number of status writes (the failure message
# is the same on every attempt, so a repeat writes no status).
# Usage: events_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
set -uo pipefail
ctl=${1:?usage: events_test.sh PATH/TO/rayfleetctl}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
. "$here/../cli/testlib.sh"
tl_cell events "$ctl"
WINDOW=${EVENTS_WINDOW:-65}

if "$ctl" up --sim --detach --state-dir "$state" --nodes 2 --timeout 30s >/dev/null 2>"$tmp/up.err"
then ok "up"; else bad "up"; sed 's/^/    | /' "$tmp/up.err"; tl_summary; exit 1; fi

head_spec() {
    cat <<YAML
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers:
          - {name: ray-head, image: "rayproject/ray:2.46.0"}
YAML
}
{
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: evsvc}\n---\n'
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: evjob}\n---\n'
    printf 'apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: nosvc, namespace: evsvc}\n'
    printf 'spec:\n  hard: {services: "0"}\n---\n'
    printf 'apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: nojob, namespace: evjob}\n'
    printf 'spec:\n  hard: {count/jobs.batch: "0"}\n'
} >"$tmp/ns.yaml"
if kc_ apply -f "$tmp/ns.yaml" >/dev/null 2>"$tmp/ns.err"; then ok "namespaces and quotas"
else bad "namespaces and quotas"; sed 's/^/    | /' "$tmp/ns.err"; fi
{
    cat <<YAML
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: ev-bad, namespace: default}
spec:
  rayVersion: "2.46.0"
YAML
    head_spec | sed 's/^  //'
    cat <<'YAML'
  workerGroupSpecs:
  - groupName: "Bad_Group/Name!$x"
    replicas: 3
    minReplicas: 0
    maxReplicas: 5
    rayStartParams: {}
    template:
      spec:
        containers:
        - {name: ray-worker, image: "rayproject/ray:2.46.0"}
---
YAML
    cat <<YAML
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: ev-svc, namespace: evsvc}
spec:
  rayVersion: "2.46.0"
YAML
    head_spec | sed 's/^  //'
    cat <<YAML
---
apiVersion: ray.io/v1
kind: RayJob
metadata: {name: ev-job, namespace: evjob}
spec:
  entrypoint: python -c "print(1)"
  rayClusterSpec:
    rayVersion: "2.46.0"
YAML
    head_spec
} >"$tmp/objs.yaml"
if kc_ create -f "$tmp/objs.yaml" >/dev/null 2>"$tmp/objs.err"; then ok "the three objects created"
else bad "the three objects created"; sed 's/^/    | /' "$tmp/objs.err"; fi
t0=$(date +%s)

audit() { # DB-NAME ARGS...
    local db=$1; shift
    "$ctl" audit --db "$state/$db.db" --limit 5000 "$@" 2>/dev/null
}
rows() { grep -cE '^[0-9]+ ' || true; }
events() { # NAMESPACE OBJECT: "name type reason count message" per Event about OBJECT
    kc_ get events -n "$1" --field-selector "involvedObject.name=$2" \
        -o jsonpath='{range .items[*]}{.metadata.name} {.type} {.reason} {.count} {.message}{"\n"}{end}' \
        2>/dev/null
}
export -f kc_
export tmp state

# the first failure of each is there within 30 s (ev-job first needs its RayCluster ready)
first_fail() { [[ $(audit "$1" --verb create --kind "$2" --namespace "$3" --result error | rows) -ge 1 ]]; }
export -f first_fail audit rows
export ctl
for s in "scheduler Pod default" "scheduler Service evsvc" "submitter Job evjob"; do
    # shellcheck disable=SC2086
    if tl_wait 30 first_fail $s; then ok "a failing create: $s"; else bad "a failing create: $s"; fi
done
left=$((WINDOW - ($(date +%s) - t0)))
((left > 0)) && sleep "$left"
echo "# window: $(($(date +%s) - t0)) s"

check() { # DB KIND NS OBJECT REASON STATUS-KIND MAX-STATUS
    local db=$1 kind=$2 ns=$3 obj=$4 reason=$5 skind=$6 smax=$7
    local n ev st
    n=$(audit "$db" --verb create --kind "$kind" --namespace "$ns" --result error | rows)
    echo "# $obj: $n failed $kind creates"
    if ((n >= 2 && n < 20)); then ok "$obj: $n $kind create attempts in the window (backoff: 2..19)"
    else bad "$obj: $n $kind create attempts in the window (want 2..19)"; fi
    ev=$(events "$ns" "$obj" | grep " Warning $reason ")
    has "$obj: exactly one $reason Event object" "$(grep -c . <<<"$ev")" '^1$'
    local ename count
    ename=$(awk 'NR==1{print $1}' <<<"$ev")
    count=$(awk 'NR==1{print $4}' <<<"$ev")
    if [[ $count =~ ^[0-9]+$ ]] && ((count > 1)); then ok "$obj: its count grows ($count)"
    else bad "$obj: its count grows (count '$count')"; fi
    has "$obj: the repeats are audited as patches of that Event" \
        "$(audit "$db" --kind Event --verb patch --name "$ename" | rows)" '^[1-9]'
    has "$obj: one create of that Event audited" \
        "$(audit "$db" --kind Event --verb create --name "$ename" | rows)" '^1$'
    st=$(audit "$db" --verb status --kind "$skind" --namespace "$ns" | rows)
    echo "# $obj: $st status writes"
    if ((st <= smax)); then ok "$obj: $st status writes (bounded: <= $smax)"
    else bad "$obj: $st status writes (want <= $smax)"; fi
}
check scheduler Pod default ev-bad FailedToCreateWorkerPod RayCluster 6
check scheduler Service evsvc ev-svc FailedToCreateService RayCluster 4
check submitter Job evjob ev-job FailedToCreateRayJobSubmitter RayJob 6

# the failure is in the RayCluster's status once, with no generated name in its message
has "ev-bad: ReplicaFailure FailedCreateWorkerPod in the status" \
    "$(kc_ get raycluster ev-bad -o jsonpath='{.status.conditions[?(@.type=="RayClusterReplicaFailure")].reason}')" \
    '^FailedCreateWorkerPod$'
has "ev-bad: the head still runs (the failing group does not stop the rest)" \
    "$(kc_ get pods -l ray.io/cluster=ev-bad,ray.io/node-type=head --no-headers 2>&1 | wc -l)" '^1$'
has "no 'reconcile failed' with an empty error" \
    "$(grep -c '"reconcile failed".*"error":""' "$state/logs/scheduler.log")" '^0$'

tl_summary
