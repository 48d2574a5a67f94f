#!/usr/bin/env bash
# integration.placer: the federation's placer (issue 16, services/scheduler/placer.h).
# Usage: placer_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml RAYJOB.yaml   (services beside it)
#  1. up --sim --members 2 --member-nodes 2,4 --detach; a tenant queue team-a (namespace team-a,
#     quota cpu 5) written into STATE/federation.yaml; the management scheduler restarted by the
#     supervisor reads it.
#  2. KubeRay's RayJob sample applied unchanged to the management context: placed (annotation,
#     finalizer, Placed and CreatedOnMember Events, a "place" audit row with the reason), its copy
#     on exactly one member runs it to Complete, and the management object's status equals the
#     copy's, field for field; the ConfigMap it mounts is copied to that member.
#  3. A RayCluster no node of any member can hold (head 40 CPU; nodes have 32): waits, with a
#     Waiting Event naming why, and nothing is created on any member.
#  4. rayfleet.io/member: member-1 places there although spread would pick member-2.
#  5. Quota: two 3-CPU RayClusters in team-a (quota 5 CPU): the first placed, the second waits
#     naming the quota; deleting the first admits the second.
#  5b. Preemption: a high-priority RayCluster in team-a suspends qa2 (spec.suspend, annotation
#     rayfleet.io/preempted, Preempted Event, audit row), its copy suspends on its member, then it
#     is placed; once it is deleted, qa2 is resumed on its member and ready again.
#  6. A spec change on the management object reaches the copy (worker replicas 2 -> 3: 4 pods).
#  7. Deleting the management RayJob deletes its copy, then the finalizer goes and it is gone.
#  8. member stop member-2: a new RayCluster is placed on member-1 only; member start.
#  9. The audit store answers "where did it go and why" for every placement.
set -uo pipefail
ctl=${1:?usage: placer_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml RAYJOB.yaml}
example=${2:?usage}
rayjob=${3:?usage}
. "$(dirname "$0")/../cli/testlib.sh"
tl_cell placer "$ctl"
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
kcx() { local c=$1; shift; kubectl --kubeconfig "$state/kubeconfig" --context "$c" --cache-dir "$tmp/kcache" "$@"; }
ann() { kcx management get "$1" -n "${3:-default}" -o "jsonpath={.metadata.annotations.rayfleet\.io/$2}" 2>/dev/null; }
placed_on() { [[ -n $(ann "$1" placed-on "${2:-default}") ]]; }
events() { kcx management get events -n "${2:-default}" --field-selector "involvedObject.name=$1" -o jsonpath='{range .items[*]}{.reason}{": "}{.message}{"\n"}{end}' 2>/dev/null; }
sql() { "$ctl" sql --state-dir "$state" --context management "$1" 2>&1; }
# a RayCluster named $1 in namespace $2 with head CPU $3 and worker replicas $4 (1 CPU each)
rc() {
    sed -e "s/^  name: demo$/  name: $1/" -e "s/^  namespace: default$/  namespace: $2/" \
        -e "0,/cpu: \"1\"/s//cpu: \"$3\"/" -e "0,/cpu: \"1\"/s//cpu: \"$3\"/" \
        -e "s/^      replicas: 2$/      replicas: $4/" "$example"
}

# --- 1. up, a tenant queue ----------------------------------------------------------------------
kc=$("$ctl" up --sim --members 2 --member-nodes 2,4 --detach --state-dir "$state" --timeout 60s 2>"$tmp/up.err")
rc_=$?
if [[ $rc_ -eq 0 ]]; then ok "up --sim --members 2 --detach"; else bad "up (exit $rc_)"; cat "$tmp/up.err"; exit 1; fi
cat >>"$state/federation.yaml" <<'EOF'
  priorities: {high: 1000, default: 0}
  queues:
    - name: team-a
      namespaces: [team-a]
      quota: {cpu: 5}
EOF
old=$(awk '$1 == "scheduler" {print $2}' "$state/pids")
kill -TERM "$old"
new_sched() { local p; p=$(awk '$1 == "scheduler" {print $2}' "$state/pids"); [[ -n $p && $p != "$old" ]] && kill -0 "$p" 2>/dev/null; }
if tl_wait 30 new_sched; then ok "the supervisor restarts the management scheduler with the queues"; else
    bad "the management scheduler did not come back"; fi
kcx management create namespace team-a >/dev/null
kcx member-1 create namespace team-a >/dev/null
kcx member-2 create namespace team-a >/dev/null

# --- 2. the RayJob sample -----------------------------------------------------------------------
t0=$(date +%s%N)
kcx management apply -f "$rayjob" >/dev/null
complete() { [[ $(kcx management get rayjob rayjob-sample -o jsonpath='{.status.jobDeploymentStatus}' 2>/dev/null) == Complete ]]; }
if tl_wait 90 complete; then ok "the management RayJob reaches Complete ($((($(date +%s%N) - t0) / 1000000)) ms)"; else
    bad "the management RayJob is not Complete"; kcx management get rayjob rayjob-sample -o yaml | tail -30; fi
m=$(ann rayjob/rayjob-sample placed-on)
check "it is placed on a member ($m)" test "$m" = member-1 -o "$m" = member-2
other=member-1; [[ $m == member-1 ]] && other=member-2
has "the reason names the strategy and the other member" "$(ann rayjob/rayjob-sample placement-reason)" \
    "placed on $m \(spread" "$other: "
has "it carries the placer's finalizer" "$(kcx management get rayjob rayjob-sample -o jsonpath='{.metadata.finalizers}')" \
    "rayfleet.io/placement"
has "Events: Placed, CreatedOnMember" "$(events rayjob-sample)" "^Placed: placed on member $m" "^CreatedOnMember: "
check "the copy exists on $m only" bash -c "kubectl --kubeconfig '$state/kubeconfig' --context '$m' get rayjob rayjob-sample >/dev/null 2>&1 && ! kubectl --kubeconfig '$state/kubeconfig' --context '$other' get rayjob rayjob-sample >/dev/null 2>&1"
has "the copy says what it is a copy of" "$(kcx "$m" get rayjob rayjob-sample -o jsonpath='{.metadata.annotations.rayfleet\.io/placed-from}')" \
    "^management/default/rayjob-sample/[0-9a-f-]+$"
same_status() {
    local a b
    a=$(kcx management get rayjob rayjob-sample -o json | jq -S .status)
    b=$(kcx "$m" get rayjob rayjob-sample -o json | jq -S .status)
    [[ -n $a && $a != null && $a == "$b" ]]
}
if tl_wait 10 same_status; then ok "the management status equals the copy's, field for field"; else
    bad "statuses differ"; diff <(kcx management get rayjob rayjob-sample -o json | jq -S .status) <(kcx "$m" get rayjob rayjob-sample -o json | jq -S .status); fi
has "the ConfigMap it mounts is copied to $m, data and all" "$(kcx "$m" get configmap ray-job-code-sample -o json 2>&1 | jq -r '.metadata.annotations["rayfleet.io/placed-from"], (.data | keys[])')" \
    "^management/default/ray-job-code-sample/" "^sample_code.py$"
check "its data equals the management cluster's" test "$(kcx "$m" get configmap ray-job-code-sample -o json | jq -S .data)" = "$(kcx management get configmap ray-job-code-sample -o json | jq -S .data)"
check "the Ray cluster runs on $m, none on the management cluster" test "$(kcx management get pods -A --no-headers 2>/dev/null | wc -l)" -eq 0
has "a place audit row with the reason" "$(sql "SELECT verb, reason, message FROM audit WHERE target_kind = 'RayJob' AND target_name = 'rayjob-sample' AND verb = 'place'")" \
    "place.*Placed.*placed on member $m"
has "the copy's create is audited against $m" "$(sql "SELECT cluster, verb, result_status FROM audit WHERE target_kind = 'RayJob' AND target_name = 'rayjob-sample' AND verb = 'create'")" \
    "$m.*create.*201"

# --- 3. too big for any node: waits -------------------------------------------------------------
rc huge default 40 1 | kcx management apply -f - >/dev/null
waiting() { events huge | grep -q "^Waiting: not placed yet: no member can take it now"; }
if tl_wait 15 waiting; then ok "a RayCluster no node can hold waits with a Waiting Event"; else bad "no Waiting Event"; events huge; fi
has "the reason names the head's 40 CPU" "$(events huge)" "head"
check "it is not placed" bash -c "[[ -z \$(kubectl --kubeconfig '$state/kubeconfig' --context management get raycluster huge -o jsonpath='{.metadata.annotations.rayfleet\.io/placed-on}') ]]"
check "nothing is created for it on any member" bash -c "! kubectl --kubeconfig '$state/kubeconfig' --context member-1 get raycluster huge >/dev/null 2>&1 && ! kubectl --kubeconfig '$state/kubeconfig' --context member-2 get raycluster huge >/dev/null 2>&1"
has "status says it waits" "$("$ctl" status --state-dir "$state" 2>&1)" "^default +huge +waiting for placement"
kcx management delete raycluster huge --wait=false >/dev/null

# --- 4. a required member -----------------------------------------------------------------------
rc pinned default 1 2 | kcx management annotate --local -f - rayfleet.io/member=member-1 -o yaml | kcx management apply -f - >/dev/null
if tl_wait 15 placed_on raycluster/pinned; then ok "the pinned RayCluster is placed"; else bad "pinned not placed"; fi
check "on member-1, as its annotation asks" test "$(ann raycluster/pinned placed-on)" = member-1
ready() { [[ $(kcx management get raycluster "$1" -n "${2:-default}" -o jsonpath='{.status.state}' 2>/dev/null) == ready ]]; }
if tl_wait 30 ready pinned; then ok "its copy becomes ready on member-1 and the management object says ready"; else bad "pinned not ready"; fi

# --- 5. quota -----------------------------------------------------------------------------------
rc qa1 team-a 1 2 | kcx management apply -f - >/dev/null
if tl_wait 15 placed_on raycluster/qa1 team-a; then ok "team-a's first 3-CPU RayCluster is placed"; else bad "qa1 not placed"; fi
rc qa2 team-a 1 2 | kcx management apply -f - >/dev/null
quota_wait() { events qa2 team-a | grep -q "^Waiting: not placed yet: queue team-a: its quota"; }
if tl_wait 15 quota_wait; then ok "the second waits on team-a's quota (5 CPU)"; else bad "no quota Waiting Event for qa2"; events qa2 team-a; fi
check "qa2 is not placed" bash -c "! [[ -n \$(kubectl --kubeconfig '$state/kubeconfig' --context management get raycluster qa2 -n team-a -o jsonpath='{.metadata.annotations.rayfleet\.io/placed-on}') ]]"
kcx management delete raycluster qa1 -n team-a >/dev/null
if tl_wait 20 placed_on raycluster/qa2 team-a; then ok "deleting the first admits the second"; else bad "qa2 still waits"; events qa2 team-a; fi
gone_everywhere() { ! kcx member-1 get raycluster qa1 -n team-a >/dev/null 2>&1 && ! kcx member-2 get raycluster qa1 -n team-a >/dev/null 2>&1; }
if tl_wait 20 gone_everywhere; then ok "qa1's copy is deleted with it"; else bad "qa1's copy remains"; fi

# --- 5b. preemption -----------------------------------------------------------------------------
rc urgent team-a 1 2 | kcx management label --local -f - kueue.x-k8s.io/priority-class=high -o yaml | kcx management apply -f - >/dev/null
preempted() { [[ -n $(ann raycluster/qa2 preempted team-a) ]]; }
if tl_wait 20 preempted; then ok "the high-priority RayCluster preempts qa2"; else bad "qa2 not preempted"; events urgent team-a; fi
has "qa2 is suspended with the reason" "$(kcx management get raycluster qa2 -n team-a -o jsonpath='{.spec.suspend} {.metadata.annotations.rayfleet\.io/preempted}')" \
    "^true preempted for RayCluster management/team-a/urgent \(priority 1000 > 0\) in queue team-a"
has "a Preempted Event" "$(events qa2 team-a)" "^Preempted: preempted for RayCluster"
qa2m=$(ann raycluster/qa2 placed-on team-a)
copy_suspended() { [[ $(kcx "$qa2m" get raycluster qa2 -n team-a -o jsonpath='{.spec.suspend}/{.status.state}' 2>/dev/null) == true/suspended ]]; }
if tl_wait 30 copy_suspended; then ok "its copy on $qa2m is suspended"; else bad "qa2's copy is not suspended"; kcx "$qa2m" get raycluster qa2 -n team-a -o jsonpath='{.spec.suspend}/{.status.state}'; fi
if tl_wait 20 placed_on raycluster/urgent team-a; then ok "then the high-priority one is placed"; else bad "urgent not placed"; events urgent team-a; fi
kcx management delete raycluster urgent -n team-a >/dev/null
resumed() { [[ -z $(ann raycluster/qa2 preempted team-a) ]] && ready qa2 team-a; }
if tl_wait 40 resumed; then ok "once it is gone qa2 is resumed and ready again"; else bad "qa2 not resumed"; events qa2 team-a; fi
check "qa2 stays on its member" test "$(ann raycluster/qa2 placed-on team-a)" = "$qa2m"
has "preempt and resume audit rows" "$(sql "SELECT verb, reason FROM audit WHERE target_name = 'qa2' AND verb IN ('preempt', 'resume') ORDER BY id")" \
    "^preempt +Preempted" "^resume +Resumed"

# --- 6. a spec change reaches the copy ----------------------------------------------------------
kcx management patch raycluster pinned --type json -p '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":3}]' >/dev/null
pods4() { [[ $(kcx member-1 get pods -l ray.io/cluster=pinned --no-headers 2>/dev/null | wc -l) -eq 4 ]]; }
if tl_wait 30 pods4; then ok "worker replicas 3 on the management object: 4 pods on member-1"; else bad "the copy did not follow the spec"; fi
has "the copy records the generation it follows" "$(kcx member-1 get raycluster pinned -o jsonpath='{.metadata.annotations.rayfleet\.io/placed-generation}')" "^2$"

# --- 7. deleting the RayJob ---------------------------------------------------------------------
kcx management delete rayjob rayjob-sample --wait=false >/dev/null
rj_gone() { ! kcx management get rayjob rayjob-sample >/dev/null 2>&1 && ! kcx "$m" get rayjob rayjob-sample >/dev/null 2>&1; }
if tl_wait 30 rj_gone; then ok "deleting the management RayJob deletes its copy, then itself"; else bad "the RayJob or its copy remains"; fi

# --- 8. a stopped member gets nothing -----------------------------------------------------------
"$ctl" member stop member-2 --state-dir "$state" >/dev/null
members_no() { "$ctl" members --state-dir "$state" 2>&1 | awk '$1 == "member-2" {print $8}' | grep -q '^no'; }
tl_wait 15 members_no || bad "member-2 not seen unhealthy"
sleep 1 # the placer reads the same health rows
rc during default 1 1 | kcx management apply -f - >/dev/null
if tl_wait 15 placed_on raycluster/during; then ok "placed while member-2 is stopped"; else bad "not placed while member-2 is stopped"; events during; fi
check "on member-1 (member-2 has more room but does not answer)" test "$(ann raycluster/during placed-on)" = member-1
"$ctl" member start member-2 --state-dir "$state" >/dev/null

# --- 8b. a bad federation file: refused at start, naming the field and the rule ---------------
printf 'federation:\n  management: {name: management}\n  members:\n    - {name: Bad_Name}\n' >"$tmp/bad.yaml"
out=$("$(dirname "$ctl")/rayfleet-scheduler" --federation.config "$tmp/bad.yaml" --state-dir "$tmp/bad" 2>&1); code=$?
check "a bad --federation.config is a usage error (exit $code)" test "$code" -eq 2
has "it names the file, the field and the rule" "$out" "--federation.config: $tmp/bad.yaml:4:[0-9]+: federation.members\[0\].name"

# --- 9. the audit store -------------------------------------------------------------------------
out=$(sql "SELECT target_name, message FROM audit WHERE verb = 'place' ORDER BY id")
has "every placement has its audit row" "$out" "rayjob-sample.*placed on member" "pinned.*placed on member-1" \
    "qa1.*placed on member" "qa2.*placed on member" "during.*placed on member-1"
tl_summary
