#!/usr/bin/env bash
# integration.raycronjob: the RayCronJob controller in the real processes, against kubesim.
# Usage: raycronjob_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
set -uo pipefail
ctl=${1:?usage: raycronjob_test.sh PATH/TO/rayfleetctl}
here=$(cd "$(dirname "$0")" && pwd)
shared=${RF_SHARED_DIR:-$here/../../../../shared}
source "$here/../cli/testlib.sh"
tl_cell cron "$ctl"
tl_states+=("$tmp/off") # the second set, gate off
command -v python3 >/dev/null || { echo "FAIL - python3 is not installed"; exit 1; }

KC="$state/kubeconfig"
k() { kubectl --kubeconfig "$KC" --cache-dir "$tmp/kcache" "$@"; }

# cronjob NAME NS SCHEDULE [TIMEZONE|-] [SUSPEND]: applies a RayCronJob whose RayJobs are suspended.
cronjob() {
    local name=$1 ns=$2 sched=$3 tz=${4:--} susp=${5:-false} tzline=""
    [[ $tz != - ]] && tzline="  timeZone: \"$tz\""
    k apply -n "$ns" -f - >/dev/null <<YAML
apiVersion: ray.io/v1
kind: RayCronJob
metadata:
  name: $name
spec:
  schedule: "$sched"
$tzline
  suspend: $susp
  jobTemplate:
    entrypoint: python -c 'print(1)'
    shutdownAfterJobFinishes: true
    suspend: true
    rayClusterSpec:
      headGroupSpec:
        rayStartParams: {}
        template:
          spec:
            containers:
            - name: ray-head
              image: rayproject/ray:2.52.0
YAML
}
# events NS: "reason|message" lines of the namespace's Events.
events() { k get events -n "$1" -o jsonpath='{range .items[*]}{.reason}|{.message}{"\n"}{end}'; }
# rayjobs NS: "name label annotation ownerKind/ownerName/controller" lines, sorted.
rayjobs() {
    k get rayjobs -n "$1" -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.labels.ray\.io/cronjob-name} {.metadata.annotations.ray\.io/cronjob-scheduled-timestamp} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}{"\n"}{end}' | sort
}
last_schedule() { k get raycronjob "$2" -n "$1" -o jsonpath='{.status.lastScheduleTime}'; }
rfc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
epoch() { date -u -d "$1" +%s; }

t_start=$(date +%s)
# --- gate on ------------------------------------------------------------------------------------
if "$ctl" up --sim --detach --state-dir "$state" --nodes 2 --timeout 60s \
        --feature-gates RayCronJob=true >/dev/null 2>"$tmp/up.err"; then
    ok "up --sim --feature-gates RayCronJob=true"
else
    bad "up --sim --feature-gates RayCronJob=true"; cat "$tmp/up.err"; exit 1
fi
for ns in every catchup tz inv samples; do k create namespace "$ns" >/dev/null; done

# (a) the timer fires at the tick: @every 5s, first tick creationTimestamp + 5 s
cronjob ev every "@every 5s"
created=$(epoch "$(k get raycronjob ev -n every -o jsonpath='{.metadata.creationTimestamp}')")
t1=$((created + 5))
if tl_wait 15 bash -c "[[ \$(kubectl --kubeconfig '$KC' --cache-dir '$tmp/kcache' get rayjob ev-$((t1 / 60)) -n every -o name) ]]"; then
    ok "first RayJob ev-$((t1 / 60)) at creation + 5 s"
else
    bad "first RayJob ev-$((t1 / 60)) at creation + 5 s"; rayjobs every
fi
has "its label, annotation and controller owner" "$(rayjobs every | head -1)" \
    "^ev-$((t1 / 60)) ev $(rfc $t1) RayCronJob/ev/true$"
# lastScheduleTime steps 5 s at a time; measure when each tick is seen against the tick itself
lags=""
for n in 2 3; do
    tn=$((created + 5 * n))
    if tl_wait 12 bash -c "[[ \$(kubectl --kubeconfig '$KC' --cache-dir '$tmp/kcache' get raycronjob ev -n every -o jsonpath='{.status.lastScheduleTime}') > '$(rfc $((tn - 1)))' ]]"; then
        seen=$(date +%s%N)
        lags="$lags $(( (seen / 1000000) - tn * 1000 ))"
        got=$(last_schedule every ev)
        [[ $(epoch "$got") -ge $tn ]] && ok "tick $n seen (lastScheduleTime $got)" || bad "tick $n: lastScheduleTime $got"
    else
        bad "tick $n never seen (lastScheduleTime $(last_schedule every ev))"
    fi
done
echo "     tick -> status seen by kubectl (ms):$lags"
for l in $lags; do
    [[ $l -lt 3000 ]] && ok "tick observed within 3 s of its time ($l ms)" || bad "tick late: $l ms"
done
# (d) suspend stops the ticks, with KubeRay's Event
k patch raycronjob ev -n every --type=merge -p '{"spec":{"suspend":true}}' >/dev/null
tl_wait 10 bash -c "kubectl --kubeconfig '$KC' --cache-dir '$tmp/kcache' get events -n every -o jsonpath='{.items[*].reason}' | grep -q SuspendedRayCronJob" \
    && ok "Event SuspendedRayCronJob" || bad "no SuspendedRayCronJob Event"
has "its message" "$(events every)" "^SuspendedRayCronJob\|RayCronJob suspended, no new RayJobs will be created$"
frozen=$(last_schedule every ev)
sleep 7
[[ $(last_schedule every ev) == "$frozen" ]] && ok "suspended: no tick in 7 s" || bad "ticked while suspended"

# (b) catch-up: suspended, lastScheduleTime 4 minutes back, then unsuspended
now=$(date +%s)
m0=$(( now / 60 * 60 - 240 ))
cronjob cu catchup "* * * * *" - true
k patch raycronjob cu -n catchup --subresource=status --type=merge \
    -p "{\"status\":{\"lastScheduleTime\":\"$(rfc $m0)\"}}" >/dev/null
has "status.lastScheduleTime patched" "$(last_schedule catchup cu)" "^$(rfc $m0)$"
k patch raycronjob cu -n catchup --type=merge -p '{"spec":{"suspend":false}}' >/dev/null
tl_wait 20 bash -c "[[ \$(kubectl --kubeconfig '$KC' --cache-dir '$tmp/kcache' get raycronjob cu -n catchup -o jsonpath='{.status.lastScheduleTime}') == '$(rfc $((m0 + 240)))' || \$(kubectl --kubeconfig '$KC' --cache-dir '$tmp/kcache' get raycronjob cu -n catchup -o jsonpath='{.status.lastScheduleTime}') > '$(rfc $((m0 + 240)))' ]]" \
    && ok "caught up to $(rfc $((m0 + 240)))" || bad "not caught up: $(last_schedule catchup cu)"
names=$(rayjobs catchup | awk '{print $1}' | tr '\n' ' ')
last=$(epoch "$(last_schedule catchup cu)")
want=""
for ((t = m0 + 60; t <= last; t += 60)); do want="${want}cu-$((t / 60)) "; done
[[ $names == "$want" ]] && ok "one RayJob per missed tick: $names" || bad "RayJobs '$names', want '$want'"
ann=$(rayjobs catchup | awk '{print $3}' | tr '\n' ' ')
wann=""
for ((t = m0 + 60; t <= last; t += 60)); do wann="${wann}$(rfc $t) "; done
[[ $ann == "$wann" ]] && ok "their scheduled timestamps" || bad "annotations '$ann', want '$wann'"
# one per pass: each create of the submitter's audit rows has its own correlation id (its pass)
sleep 0.5 # the audit database commits every 10 ms
"$ctl" audit --db "$state/submitter.db" --namespace catchup --kind RayJob \
    --verb create --output json >"$tmp/audit.json" 2>"$tmp/audit.err"
per=$(python3 - "$tmp/audit.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
ids = {r.get("correlation_id") for r in rows}
print("%d %d" % (len(rows), len(ids)))
PY
)
nj=$(wc -w <<<"$names")
[[ $per == "$nj $nj" ]] && ok "audit: $nj creates in $nj passes" || bad "audit rows/passes '$per' for $nj RayJobs ($(cat "$tmp/audit.err"))"

# (c) time zone: 45 21 * * * in Asia/Taipei (the sample's), lastScheduleTime 3 days back
cronjob tz tz "45 21 * * *" Asia/Taipei true
back=$(( $(date +%s) - 3 * 86400 ))
k patch raycronjob tz -n tz --subresource=status --type=merge \
    -p "{\"status\":{\"lastScheduleTime\":\"$(rfc $back)\"}}" >/dev/null
k patch raycronjob tz -n tz --type=merge -p '{"spec":{"suspend":false}}' >/dev/null
wanttz=$(python3 - "$back" "$(date +%s)" <<'PY'
import sys, datetime, zoneinfo
z = zoneinfo.ZoneInfo("Asia/Taipei")
lo, hi = int(sys.argv[1]), int(sys.argv[2])
d = datetime.datetime.fromtimestamp(lo, z).date() - datetime.timedelta(days=1)
out = []
for i in range(6):
    t = int(datetime.datetime.combine(d + datetime.timedelta(days=i), datetime.time(21, 45), z).timestamp())
    if lo < t <= hi:
        out.append("tz-%d" % (t // 60))
print(" ".join(out) + " ")
PY
)
nwant=$(wc -w <<<"$wanttz")
tl_wait 20 bash -c "[[ \$(kubectl --kubeconfig '$KC' --cache-dir '$tmp/kcache' get rayjobs -n tz --no-headers 2>/dev/null | wc -l) -ge $nwant ]]"
sleep 1
gottz=$(rayjobs tz | awk '{print $1}' | tr '\n' ' ')
[[ $gottz == "$wanttz" ]] && ok "Asia/Taipei ticks of 3 days: $gottz" || bad "Taipei RayJobs '$gottz', want '$wanttz'"

# (e) invalid specs: KubeRay's messages, no RayJob
cronjob a234567890123456789012345678901234567 inv "* * * * *"
cronjob tzsched inv "TZ=UTC * * * * *"
cronjob badfield inv "61 * * * *"
cronjob badzone inv "* * * * *" Mars/Olympus
tl_wait 10 bash -c "[[ \$(kubectl --kubeconfig '$KC' --cache-dir '$tmp/kcache' get events -n inv -o jsonpath='{range .items[*]}{.reason}{\"\\n\"}{end}' | grep -c InvalidRayCronJobSpec) -ge 4 ]]"
ev=$(events inv)
has "InvalidRayCronJobSpec: name over 36" "$ev" \
    "^InvalidRayCronJobSpec\|inv/a234567890123456789012345678901234567: RayCronJob name should be no more than 36 characters$"
has "InvalidRayCronJobSpec: TZ in schedule" "$ev" \
    "^InvalidRayCronJobSpec\|inv/tzsched: cannot use TZ or CRON_TZ in schedule, use timeZone field instead$"
has "InvalidRayCronJobSpec: bad field" "$ev" \
    "^InvalidRayCronJobSpec\|inv/badfield: invalid cron schedule: end of range \(61\) above maximum \(59\): 61$"
has "InvalidRayCronJobSpec: bad zone" "$ev" \
    "^InvalidRayCronJobSpec\|inv/badzone: invalid time zone: unknown time zone Mars/Olympus$"
[[ $(grep -c InvalidRayCronJobSpec <<<"$ev") -eq 4 ]] && ok "one Event each" || bad "$(grep -c InvalidRayCronJobSpec <<<"$ev") Invalid Events"
[[ -z $(rayjobs inv) ]] && ok "no RayJob of an invalid RayCronJob" || bad "RayJobs in inv: $(rayjobs inv)"

# (f) the two upstream samples apply unchanged and are accepted
for f in ray-cronjob.sample.yaml ray-cronjob-timezone.sample.yaml; do
    k apply -n samples -f "$shared/kuberay/samples/$f" >/dev/null 2>"$tmp/apply.err" \
        && ok "kubectl apply $f" || { bad "kubectl apply $f"; cat "$tmp/apply.err"; }
done
sleep 2
[[ $(k get raycronjobs -n samples --no-headers | wc -l) -eq 2 ]] && ok "both samples stored" || bad "samples not stored"
if grep -q "Invalid\|GateDisabled" <<<"$(events samples)"; then bad "a sample was refused: $(events samples)"
else ok "no refusal Event for the samples"; fi

# per-controller metrics of the submitter process
sport=$(sed -n 's/.*submitter ready (pid [0-9]*, \/readyz 200, health port \([0-9]*\)).*/\1/p' "$tmp/up.err")
if [[ -n $sport ]] && command -v curl >/dev/null; then
    curl -s -o "$tmp/metrics.txt" "http://127.0.0.1:$sport/metrics"
    awk '$1 == "rayfleet_controller_passes_total{controller=\"raycronjob\"}" && $2 > 0 {f=1} END {exit !f}' "$tmp/metrics.txt" \
        && ok "submitter /metrics: raycronjob controller passes" || bad "no raycronjob passes in /metrics"
    awk '$1 == "rayfleet_controller_passes_total{controller=\"rayjob\"}" && $2 > 0 {f=1} END {exit !f}' "$tmp/metrics.txt" \
        && ok "submitter /metrics: rayjob controller passes beside it" || bad "no rayjob passes in /metrics"
    grep -q '^workqueue_depth{name="raycronjob"}' "$tmp/metrics.txt" && ok "its own work queue" || bad "no raycronjob work queue metric"
else
    bad "submitter health port not found in up's output"
fi
cpu=$(awk '{print $14 + $15}' "/proc/$(awk '$1 == "submitter" {print $2}' "$state/pids")/stat" 2>/dev/null)
echo "     submitter CPU ticks so far: ${cpu:-?}"
"$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1

# (g) gate off (KubeRay's default): no RayJob, one Warning naming the gate, one log line
KC="$tmp/off/kubeconfig"
if "$ctl" up --sim --detach --state-dir "$tmp/off" --nodes 1 --timeout 60s >/dev/null 2>"$tmp/up2.err"; then
    ok "up --sim (gate off)"
else
    bad "up --sim (gate off)"; cat "$tmp/up2.err"
fi
k create namespace off >/dev/null
cronjob ev off "@every 5s"
tl_wait 15 bash -c "kubectl --kubeconfig '$KC' --cache-dir '$tmp/kcache' get events -n off -o jsonpath='{.items[*].reason}' | grep -q RayCronJobGateDisabled" \
    && ok "gate off: Warning RayCronJobGateDisabled" || bad "gate off: no Event ($(events off))"
has "it names the gate" "$(events off)" "RayCronJobGateDisabled\|RayCronJob off/ev is not reconciled: the feature gate RayCronJob is off"
sleep 6
[[ -z $(rayjobs off) ]] && ok "gate off: no RayJob" || bad "gate off: RayJobs $(rayjobs off)"
[[ -z $(last_schedule off ev) ]] && ok "gate off: no status" || bad "gate off: status written"
[[ $(grep -c "RayCronJobs are not reconciled" "$tmp/off/logs/submitter.log") -eq 1 ]] \
    && ok "gate off: one log line at start" || bad "gate off: log line missing"
[[ $(events off | grep -c RayCronJobGateDisabled) -eq 1 ]] && ok "gate off: one Event" || bad "gate off: $(events off | grep -c GateDisabled) Events"

echo "     took $(( $(date +%s) - t_start )) s"
tl_summary
