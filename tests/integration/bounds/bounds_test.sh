#!/usr/bin/env bash
# integration.bounds: rayfleet's bounds on huge RayCluster specs (issue 17), with the whole set
# (`rayfleetctl up --sim`):
#  1. replicas: 99999999999 -- kubesim accepts it as kube-apiserver does (`format: int32` is
#     stripped on custom resources); the scheduler refuses the spec: Warning InvalidInt32Field;
#  2. replicas: 1000000 (maxReplicas 1000000) -- over the per-cluster pod cap (default 10000):
#     Warning TooManyPods;
#  3. a 1 MiB rayStartParams value -- over podbuild's command bound: Warning PodTooLarge, and no
#     hot loop (a handful of Events in 5 s);
# each: the Event's reason and message, no pod, no status written, an audit row of the Event, the
# scheduler's log line naming the field and the limit. A normal cluster beside them gets ready.
#  4. kubesim's ambiguous-create fault (504 after the create is applied) on 30% of pod creates: a
#     20-worker cluster gets ready with exactly 1 head and 20 workers.
# Usage: bounds_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
set -uo pipefail
ctl=${1:?usage: bounds_test.sh PATH/TO/rayfleetctl}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
. "$here/../cli/testlib.sh"
tl_cell bounds "$ctl"

if "$ctl" up --sim --detach --state-dir "$state" --nodes 2 --timeout 30s >/dev/null 2>"$tmp/up.err"
then ok "up"; else bad "up"; sed 's/^/    | /' "$tmp/up.err"; tl_summary; exit 1; fi

rc_yaml() { # NAME REPLICAS MAXREPLICAS [WORKER-PARAM-VALUE-FILE]
    local params='{}'
    [[ -n ${4:-} ]] && params="{big: \"$(cat "$4")\"}"
    cat <<YAML
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: $1, namespace: default}
spec:
  rayVersion: "2.46.0"
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - {name: ray-head, image: "rayproject/ray:2.46.0"}
  workerGroupSpecs:
  - groupName: workers
    replicas: $2
    minReplicas: 0
    maxReplicas: $3
    rayStartParams: $params
    template:
      spec:
        containers:
        - {name: ray-worker, image: "rayproject/ray:2.46.0"}
YAML
}
events() { # OBJECT
    kc_ get events --field-selector "involvedObject.name=$1" \
        -o jsonpath='{range .items[*]}{.type} {.reason} {.message}{"\n"}{end}' 2>/dev/null
}
export -f kc_ events
export tmp state

python3 -c 'print("x" * (1 << 20), end="")' >"$tmp/big.txt"
rc_yaml b-int 99999999999 10 >"$tmp/b-int.yaml"
rc_yaml b-cap 1000000 1000000 >"$tmp/b-cap.yaml"
rc_yaml b-big 1 2 "$tmp/big.txt" >"$tmp/b-big.yaml"
rc_yaml b-ok 1 2 >"$tmp/b-ok.yaml"
for n in b-int b-cap b-big b-ok; do
    if kc_ create -f "$tmp/$n.yaml" >/dev/null 2>"$tmp/$n.err"; then ok "$n: the API server accepts it"
    else bad "$n: the API server accepts it"; sed 's/^/    | /' "$tmp/$n.err" | cut -c1-300; fi
done
has "replicas 99999999999 stored as sent (no int32 check on custom resources, as kube)" \
    "$(kc_ get raycluster b-int -o jsonpath='{.spec.workerGroupSpecs[0].replicas}')" '^99999999999$'

check() { # NAME REASON MESSAGE-REGEX
    local name=$1 reason=$2 msg=$3
    if tl_wait 20 bash -c "events $name | grep -q '^Warning $reason '"; then
        ok "$name: Warning Event $reason"; else bad "$name: Warning Event $reason"; events "$name"; fi
    has "$name: the Event names the field and the limit" "$(events "$name" | grep " $reason " | head -1)" \
        "^Warning $reason $msg\$"
    has "$name: no pod" "$(kc_ get pods -l "ray.io/cluster=$name" --no-headers 2>&1)" '^No resources found'
    has "$name: no other Event" "$(events "$name" | grep -v " $reason " | wc -l)" '^0$'
    has "$name: no status written" "$(kc_ get raycluster "$name" -o jsonpath='{.status}')" '^$'
    has "$name: an audit row of the Event" \
        "$("$ctl" audit --state-dir "$state" --kind Event --limit 500 2>&1 | grep " default/$name\\.")" \
        " create +201 +Event +default/$name\\.[0-9a-f]+ +$reason "
    has "$name: the scheduler's log line" \
        "$(grep '"spec over a bound"' "$state/logs/scheduler.log" | grep "default/$name\"" | head -1)" \
        "\"reason\":\"$reason\""
}
check b-int InvalidInt32Field \
    'spec\.workerGroupSpecs\[0\]\.replicas: Invalid value: 99999999999: must be a 32-bit integer \(KubeRay.s int32 field; -2147483648\.\.2147483647\)'
check b-cap TooManyPods \
    'spec\.workerGroupSpecs\[0\]\.replicas: 1000000 replicas x 1 hosts bring the cluster to 1000001 pods, over the per-cluster cap of 10000 \(--max-pods-per-cluster\)'
check b-big PodTooLarge \
    'spec\.workerGroupSpecs\[0\]\.rayStartParams\.big: 1048576 bytes: the worker Pod.s ray start command would exceed 262144 bytes \(rayfleet.s bound on a container command\)'

# no hot loop: Events of b-big over 5 s (each pass re-validates; passes follow changes and the
# resync period, not a retry loop)
count() { events b-big | grep -c ' PodTooLarge '; }
n0=$(count); sleep 5; n1=$(count)
if (( n1 - n0 <= 3 )); then ok "no hot loop: $((n1 - n0)) PodTooLarge Events in 5 s"
else bad "hot loop: $((n1 - n0)) PodTooLarge Events in 5 s (want <= 3)"; fi
has "no 'reconcile failed' with an empty error" \
    "$(grep -c '"reconcile failed".*"error":""' "$state/logs/scheduler.log")" '^0$'

# the cluster beside them is served as usual
if tl_wait 30 bash -c '[[ $(kc_ get raycluster b-ok -o jsonpath="{.status.state}") == ready ]]'
then ok "b-ok: a normal cluster gets ready"; else bad "b-ok: a normal cluster gets ready"; fi

# ambiguous pod creates (kubesim applies the create, then answers 504 Timeout) on 30% of pod
# creates during a scale-up to 20 workers: no duplicate pod (ctrl expects an ambiguous create)
server=$(sed -n 's/^ *server: *//p' "$state/kubeconfig" | head -1)
if curl -sf -X POST -H 'Content-Type: application/json' "$server/kubesim/faults" \
    -d '{"rules":[{"verb":"create","resource":"pods","rate":0.3,"after":"timeout"}]}' >/dev/null
then ok "ambiguous-create fault on"; else bad "ambiguous-create fault on"; fi
rc_yaml b-amb 20 20 >"$tmp/b-amb.yaml"
kc_ create -f "$tmp/b-amb.yaml" >/dev/null || bad "b-amb applies"
amb_ready() { [[ $(kc_ get raycluster b-amb -o jsonpath='{.status.state}') == ready ]]; }
export -f amb_ready
if tl_wait 60 amb_ready; then ok "b-amb: ready under 30% ambiguous creates"
else bad "b-amb: ready under 30% ambiguous creates"; fi
sleep 2
has "b-amb: exactly 1 head and 20 workers (no duplicate)" \
    "$(kc_ get pods -l ray.io/cluster=b-amb -L ray.io/node-type --no-headers | awk '{print $NF}' | sort | uniq -c)" \
    '^ +1 head$' '^ +20 worker$'
has "b-amb: some creates were ambiguous (504 Timeout in the scheduler's log)" \
    "$(grep -c '"write failed".*"status":"504"' "$state/logs/scheduler.log")" '^[1-9]'
curl -sf -X DELETE "$server/kubesim/faults" >/dev/null

tl_summary
