#!/usr/bin/env bash
# integration.prometheus: every rayfleet service serves /metrics that Prometheus scrapes and
# promtool accepts; KubeRay's metric values match the objects kubectl reads; every metric the
# Grafana dashboard (deploy/grafana/rayfleet-dashboard.json) names is exported by the running set.
set -u
ctl=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
shared=${RF_SHARED_DIR:-$root/../shared}
source "$root/tests/integration/cli/testlib.sh"
for t in prometheus promtool kubectl curl python3; do
    command -v "$t" >/dev/null || { echo "FAIL - $t is not installed (scripts/deps.sh)"; exit 1; }
done
tmp=$(mktemp -d)
state=$tmp/state
prom_pid=
cleanup() {
    [[ -n $prom_pid ]] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
    "$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
kc_() { kubectl --kubeconfig "$state/kubeconfig" --cache-dir "$tmp/kcache" "$@"; }

if ! "$ctl" up --sim --detach --state-dir "$state" --nodes 4 --timeout 60s 2>"$tmp/up.err" >/dev/null; then
    bad "up --sim --detach"; cat "$tmp/up.err"; exit 1
fi
ok "up --sim --detach"
# Every service's health port, from up's "NAME ready (pid P, /readyz 200, health port N)" lines.
declare -A port
while read -r name p; do port[$name]=$p; done < <(sed -n \
    's/^rayfleetctl: \([a-z0-9/-]*\) ready (pid [0-9]*, \/readyz 200, health port \([0-9]*\)).*/\1 \2/p' "$tmp/up.err")
for s in bus watcher scheduler submitter serve-upgrade; do
    if [[ -n ${port[$s]:-} ]]; then ok "$s serves a health port (${port[$s]})"; else bad "$s has no health port"; cat "$tmp/up.err"; fi
done

kc_ apply -f "$shared/kuberay/samples/ray-cluster.sample.yaml" >/dev/null && ok "apply RayCluster" || bad "apply RayCluster"
kc_ apply -f "$shared/kuberay/samples/ray-job.sample.yaml" >/dev/null && ok "apply RayJob" || bad "apply RayJob"
kc_ apply -f "$shared/kuberay/samples/ray-service.sample.yaml" >/dev/null && ok "apply RayService" || bad "apply RayService"
rc=$(kc_ get rayclusters -l '!ray.io/originated-from-crd' -o jsonpath='{.items[0].metadata.name}')
rj=$(kc_ get rayjobs -o jsonpath='{.items[0].metadata.name}')
rs=$(kc_ get rayservices -o jsonpath='{.items[0].metadata.name}')
kc_ wait --for=condition=RayClusterProvisioned "raycluster/$rc" --timeout=60s >/dev/null &&
    ok "RayCluster $rc provisioned" || bad "RayCluster $rc provisioned"
kc_ wait --for=jsonpath='{.status.jobDeploymentStatus}'=Complete "rayjob/$rj" --timeout=90s >/dev/null &&
    ok "RayJob $rj Complete" || bad "RayJob $rj Complete"
kc_ wait --for=condition=Ready "rayservice/$rs" --timeout=90s >/dev/null &&
    ok "RayService $rs Ready" || bad "RayService $rs Ready"

# Prometheus scraping every service's health port.
{
    echo "global: {scrape_interval: 1s, evaluation_interval: 1s}"
    echo "scrape_configs:"
    for s in "${!port[@]}"; do
        echo "  - job_name: '${s//\//-}'"
        echo "    static_configs: [{targets: ['127.0.0.1:${port[$s]}']}]"
    done
} >"$tmp/prom.yml"
promtool check config "$tmp/prom.yml" >/dev/null 2>&1 && ok "promtool check config" || bad "promtool check config"
pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prometheus --config.file="$tmp/prom.yml" --storage.tsdb.path="$tmp/tsdb" \
    --web.listen-address="127.0.0.1:$pport" >"$tmp/prom.log" 2>&1 &
prom_pid=$!
q() { curl -s --max-time 5 "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1"; }
# Wait until every target has been scraped (up == 1 for all of them), at most 60 s.
want=${#port[@]}
for _ in $(seq 120); do
    n=$(q 'count(up == 1)' | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)' 2>/dev/null || echo 0)
    [[ $n == "$want" ]] && break
    sleep 0.5
done
[[ $n == "$want" ]] && ok "up is 1 for all $want targets" || { bad "up is 1 for $n of $want targets"; q up; tail -5 "$tmp/prom.log"; }

# promtool accepts every service's exposition.
for s in "${!port[@]}"; do
    curl -s "http://127.0.0.1:${port[$s]}/metrics" >"$tmp/m.$s.txt"
    if out=$(promtool check metrics <"$tmp/m.$s.txt" 2>&1); then ok "promtool check metrics: $s"
    else bad "promtool check metrics: $s"; sed 's/^/    | /' <<<"$out" | head -20; fi
done
cat "$tmp"/m.*.txt >"$tmp/all.txt"

# KubeRay's values against the objects.
val() { q "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'; }
ts() { python3 -c 'import sys,datetime; print(datetime.datetime.strptime(sys.argv[1],"%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp())' "$1"; }
uid=$(kc_ get raycluster "$rc" -o jsonpath='{.metadata.uid}')
created=$(kc_ get raycluster "$rc" -o jsonpath='{.metadata.creationTimestamp}')
provat=$(kc_ get raycluster "$rc" -o jsonpath='{.status.conditions[?(@.type=="RayClusterProvisioned")].lastTransitionTime}')
wantd=$(python3 -c "print($(ts "$provat") - $(ts "$created"))")
sleep 1.5 # one more scrape after the objects settled
got=$(val "kuberay_cluster_provisioned_duration_seconds{name=\"$rc\",namespace=\"default\",uid=\"$uid\"}")
python3 -c "import sys; sys.exit(0 if abs(float('$got') - $wantd) < 1e-6 else 1)" 2>/dev/null &&
    ok "kuberay_cluster_provisioned_duration_seconds = lastTransitionTime - creationTimestamp ($got s)" ||
    bad "kuberay_cluster_provisioned_duration_seconds: got $got, want $wantd"
[[ $(val "kuberay_cluster_info{name=\"$rc\",uid=\"$uid\",owner_kind=\"None\"}") == 1 ]] &&
    ok "kuberay_cluster_info owner_kind None" || bad "kuberay_cluster_info for $rc"
[[ $(val "kuberay_cluster_condition_provisioned{name=\"$rc\",condition=\"true\"}") == 1 ]] &&
    ok "kuberay_cluster_condition_provisioned true" || bad "kuberay_cluster_condition_provisioned for $rc"
jc=$(kc_ get rayjob "$rj" -o jsonpath='{.status.rayClusterName}')
[[ $(val "kuberay_cluster_info{name=\"$jc\",owner_kind=\"RayJob\"}") == 1 ]] &&
    ok "the RayJob's cluster has owner_kind RayJob" || bad "kuberay_cluster_info for $jc (owner_kind RayJob)"
juid=$(kc_ get rayjob "$rj" -o jsonpath='{.metadata.uid}')
[[ $(val "kuberay_job_deployment_status{name=\"$rj\",uid=\"$juid\",deployment_status=\"Complete\"}") == 1 ]] &&
    ok "kuberay_job_deployment_status Complete" || bad "kuberay_job_deployment_status for $rj"
[[ $(val "kuberay_job_info{name=\"$rj\",uid=\"$juid\"}") == 1 ]] && ok "kuberay_job_info" || bad "kuberay_job_info"
jstart=$(kc_ get rayjob "$rj" -o jsonpath='{.status.startTime}')
jend=$(kc_ get rayjob "$rj" -o jsonpath='{.status.endTime}')
jfailed=$(kc_ get rayjob "$rj" -o jsonpath='{.status.failed}')
got=$(val "kuberay_job_execution_duration_seconds{name=\"$rj\",job_deployment_status=\"Complete\",retry_count=\"${jfailed:-0}\"}")
wantd=$(python3 -c "print($(ts "$jend") - $(ts "$jstart"))")
python3 -c "import sys; sys.exit(0 if abs(float('$got') - $wantd) < 1e-6 else 1)" 2>/dev/null &&
    ok "kuberay_job_execution_duration_seconds = endTime - startTime ($got s)" ||
    bad "kuberay_job_execution_duration_seconds: got $got, want $wantd"
ready=$(kc_ get rayservice "$rs" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | tr 'A-Z' 'a-z')
[[ $(val "kuberay_service_condition_ready{name=\"$rs\",condition=\"$ready\"}") == 1 ]] &&
    ok "kuberay_service_condition_ready $ready" || bad "kuberay_service_condition_ready for $rs ($ready)"
[[ $(val "kuberay_service_condition_upgrade_in_progress{name=\"$rs\",condition=\"false\"}") == 1 ]] &&
    ok "kuberay_service_condition_upgrade_in_progress false" || bad "kuberay_service_condition_upgrade_in_progress"
[[ $(val "kuberay_service_info{name=\"$rs\"}") == 1 ]] && ok "kuberay_service_info" || bad "kuberay_service_info"
# One series per object: a second scrape replaced, never added.
[[ $(val "count(kuberay_service_info)") == 1 ]] && ok "one kuberay_service_info series" || bad "kuberay_service_info count"
[[ $(val "sum(rayfleet_bus_messages_forwarded_total)") != none && $(val "sum(rayfleet_bus_messages_forwarded_total) > 0") != none ]] &&
    ok "the bus forwarded messages" || bad "rayfleet_bus_messages_forwarded_total"
[[ $(val "sum(rayfleet_bus_lag_seconds_count) > 0") != none ]] && ok "bus lag observed" || bad "rayfleet_bus_lag_seconds"
[[ $(val "sum(rayfleet_audit_rows_written_total) > 0") != none ]] && ok "audit rows counted" || bad "rayfleet_audit_rows_written_total"
# client-go's REST client metrics: every service with an API client exports them.
[[ $(val "sum(rest_client_requests_total{job=\"scheduler\",code=\"201\",method=\"POST\"}) > 0") != none ]] &&
    ok "scheduler: rest_client_requests_total{code=201,method=POST} > 0" || bad "scheduler: no POST 201 in rest_client_requests_total"
for s in watcher scheduler submitter serve-upgrade; do
    [[ $(val "sum(rest_client_requests_total{job=\"$s\",code=~\"2..\"}) > 0") != none &&
       $(val "sum(rest_client_rate_limiter_duration_seconds_count{job=\"$s\"}) > 0") != none &&
       $(val "sum(rest_client_request_size_bytes_count{job=\"$s\"}) > 0") != none ]] &&
        ok "$s: rest_client_requests_total, rate limiter and request size observed" || bad "$s: rest_client_* missing"
done
for s in scheduler submitter serve-upgrade; do
    [[ $(val "sum(rest_client_request_duration_seconds_count{job=\"$s\"}) > 0") != none &&
       $(val "sum(rest_client_response_size_bytes_count{job=\"$s\"}) > 0") != none ]] &&
        ok "$s: rest_client_request_duration_seconds and response size observed" || bad "$s: rest_client_request_duration_seconds missing"
done
[[ $(val "sum(rayfleet_store_commit_duration_seconds_count{service=\"watcher\"}) > 0") != none ]] &&
    ok "observed.db commit latency observed (watcher)" || bad "rayfleet_store_commit_duration_seconds{service=watcher}"

# Every metric the dashboard names is in some service's /metrics (no blank panel).
names=$(python3 - "$root/deploy/grafana/rayfleet-dashboard.json" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
seen = set()
for p in d["panels"]:
    for t in p["targets"]:
        e = re.sub(r"by\s*\([^)]*\)|\{[^}]*\}|\[[^\]]*\]", " ", t["expr"])
        for w in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(?)", e):
            if not w[1] and not re.fullmatch(r"[0-9.]+", w[0]):
                seen.add(w[0])
print("\n".join(sorted(seen)))
PY
)
[[ -n $names ]] && ok "the dashboard names $(wc -l <<<"$names") metrics" || bad "no metric names in the dashboard"
# rayfleet_metrics_series_dropped_total shows only when a bound was hit: its absence is the goal;
# rest_client_request_retries_total only once a request was retried (none is in a healthy run).
for n in $names; do
    [[ $n == rayfleet_metrics_series_dropped_total || $n == rest_client_request_retries_total ]] && continue
    grep -q "^$n[{ ]" "$tmp/all.txt" && ok "dashboard metric $n exported" || bad "dashboard metric $n is exported by no service"
done
tl_summary
