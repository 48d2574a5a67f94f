#!/usr/bin/env bash
# integration.cli: rayfleetctl up/status/down against kubesim, and its argument errors.
# Usage: cli_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
set -uo pipefail
ctl=${1:?usage: cli_test.sh PATH/TO/rayfleetctl}
bin=$(dirname "$ctl")
tmp=$(mktemp -d /tmp/rfcli.XXXXXX)
state="$tmp/state"
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   - $1"; }
bad() { failed=$((failed + 1)); echo "FAIL - $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

cleanup() {
    "$ctl" down --state-dir "$state" --timeout 2s >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# Whether every pid of the pid file (a copy, `up` removes nothing) is gone.
all_gone() {
    local f=$1 name pid start
    while read -r name pid start; do
        if [[ -e /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
            echo "  still running: $name pid $pid" >&2
            return 1
        fi
    done <"$f"
    return 0
}

# Expects a command to fail with exit code $2 and its stderr to contain $3.
expect_error() {
    local name=$1 code=$2 text=$3; shift 3
    local out rc
    out=$("$@" 2>&1 >/dev/null); rc=$?
    if [[ $rc -eq $code && $out == *"$text"* ]]; then ok "$name"
    else bad "$name (exit $rc, stderr: $out)"; fi
}

# --- help, version, bad flags ----------------------------------------------------------------
check "--help lists the commands" bash -c "'$ctl' --help | grep -q 'down'"
check "--version" bash -c "'$ctl' --version | grep -Eq '^rayfleetctl [0-9]+\.[0-9]+'"
for c in up down status audit; do
    check "$c --help" bash -c "'$ctl' $c --help | grep -q '^Usage: rayfleetctl $c'"
done
expect_error "unknown command" 2 "unknown command 'fly'" "$ctl" fly
expect_error "up without --sim or --kubeconfig" 2 "exactly one of --sim" "$ctl" up --state-dir "$state"
expect_error "up with both" 2 "exactly one of --sim" "$ctl" up --sim --kubeconfig /dev/null
expect_error "unknown flag" 2 "unknown option '--bogus'" "$ctl" up --sim --bogus
expect_error "bad --nodes" 2 "--nodes: must be an integer in 1..1000 (got 'many')" \
    "$ctl" up --sim --nodes many
expect_error "--nodes without --sim" 2 "--nodes: only with --sim" \
    "$ctl" up --kubeconfig /dev/null --nodes 3
expect_error "bad --timeout" 2 "--timeout: must be a duration" "$ctl" up --sim --timeout soon
expect_error "missing value" 2 "--state-dir: needs a value" "$ctl" down --state-dir
expect_error "flag given a value" 2 "--detach: takes no value" "$ctl" up --sim --detach=yes
expect_error "unreadable --kubeconfig" 2 "--kubeconfig: cannot read" \
    "$ctl" up --kubeconfig "$tmp/none"
expect_error "positional argument" 2 "unexpected argument 'x'" "$ctl" status x

# --- down before anything runs ---------------------------------------------------------------
check "down with nothing running" bash -c "'$ctl' down --state-dir '$tmp/empty' | grep -q 'nothing is running'"

# --- up --sim --detach -----------------------------------------------------------------------
start=$(date +%s%N)
kc=$("$ctl" up --sim --detach --state-dir "$state" --nodes 3 --timeout 60s 2>"$tmp/up.err")
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [[ $rc -eq 0 ]]; then ok "up --sim --detach (${ms} ms)"; else bad "up --sim --detach (exit $rc)"; cat "$tmp/up.err"; fi
check "up prints the kubeconfig path" test "$kc" = "$(cd "$state" && pwd)/kubeconfig"
check "kubeconfig exists" test -s "$state/kubeconfig"
check "pid file exists" test -s "$state/pids"
cp "$state/pids" "$tmp/pids.copy" 2>/dev/null || : >"$tmp/pids.copy"
check "kubesim and bus in the pid file" bash -c "grep -q '^kubesim ' '$state/pids' && grep -q '^bus ' '$state/pids'"
check "up names the services not built" bash -c \
    "for s in watcher scheduler; do [[ -x '$bin/rayfleet-'\$s ]] || grep -q \"not built.*rayfleet-\$s\" '$tmp/up.err' || exit 1; done"
all_alive=true
while read -r name pid start; do
    if [[ ! -e /proc/$pid ]]; then all_alive=false; echo "  $name (pid $pid) is not running" >&2; fi
done <"$tmp/pids.copy"
check "every started process is alive" $all_alive
for s in bus watcher scheduler; do
    if [[ -x "$bin/rayfleet-$s" ]]; then
        check "$s started (built)" grep -q "^$s " "$tmp/pids.copy"
        check "$s log exists" test -e "$state/logs/$s.log"
    fi
done
check "bus sockets exist" test -S "$state/bus-in" -a -S "$state/bus-out"
expect_error "second up refuses" 1 "already runs in" "$ctl" up --sim --detach --state-dir "$state"

if command -v kubectl >/dev/null; then
    kc_() { kubectl --kubeconfig "$state/kubeconfig" --cache-dir "$tmp/kcache" "$@"; }
    check "kubectl get nodes (3)" bash -c "[[ \$(kubectl --kubeconfig '$state/kubeconfig' --cache-dir '$tmp/kcache' get nodes --no-headers | wc -l) -eq 3 ]]"
    for crd in rayclusters rayjobs rayservices raycronjobs; do
        check "CRD $crd.ray.io Established" bash -c \
            "kubectl --kubeconfig '$state/kubeconfig' --cache-dir '$tmp/kcache' get crd $crd.ray.io -o jsonpath='{.status.conditions[?(@.type==\"Established\")].status}' | grep -q True"
    done
    check "kubectl apply examples/raycluster.yaml" \
        kc_ apply -f "$(dirname "$0")/../../../examples/raycluster.yaml"
    # The real services reconcile it: kubectl sees KubeRay's conditions and state column.
    check "kubectl wait --for=condition=RayClusterProvisioned" \
        kc_ wait --for=condition=RayClusterProvisioned raycluster/demo --timeout=60s
    check "kubectl wait --for=condition=HeadPodReady" \
        kc_ wait --for=condition=HeadPodReady raycluster/demo --timeout=60s
    check "kubectl get rayclusters shows the state column" bash -c \
        "kubectl --kubeconfig '$state/kubeconfig' --cache-dir '$tmp/kcache' get rayclusters demo | awk 'NR==1 && \$0 ~ /STATUS/ {h=1} NR==2 && \$0 ~ /ready/ {r=1} END {exit !(h && r)}'"
    check "head and two workers exist" bash -c \
        "[[ \$(kubectl --kubeconfig '$state/kubeconfig' --cache-dir '$tmp/kcache' get pods -l ray.io/cluster=demo --no-headers | wc -l) -eq 3 ]]"
else
    check "kubectl is installed (scripts/deps.sh does not provide it)" false
fi

# --- the scheduler's /healthz, /readyz, /metrics (on the free port up gave it) ---------------
if [[ -x "$bin/rayfleet-scheduler" ]]; then
    sport=$(sed -n 's/.*scheduler ready (pid [0-9]*, \/readyz 200, health port \([0-9]*\)).*/\1/p' "$tmp/up.err")
    check "up waited for the scheduler's /readyz on its own port" test -n "$sport"
    if [[ -n $sport ]] && command -v curl >/dev/null; then
        check "scheduler /healthz 200" bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$sport/healthz) == 200 ]]"
        check "scheduler /readyz 200" bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$sport/readyz) == 200 ]]"
        curl -s -D "$tmp/metrics.h" -o "$tmp/metrics.txt" "http://127.0.0.1:$sport/metrics"
        check "scheduler /metrics is Prometheus text" grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/metrics.h"
        check "scheduler /metrics counts the RayCluster's passes" awk \
            '$1 == "rayfleet_controller_passes_total{controller=\"raycluster\"}" && $2 > 0 {f=1} END {exit !f}' "$tmp/metrics.txt"
    fi
fi

# --- status ----------------------------------------------------------------------------------
"$ctl" status --state-dir "$state" >"$tmp/status.out" 2>&1
rc=$?
check "status exits 0" test $rc -eq 0
check "status prints the RayCluster header" grep -q "^NAMESPACE .*NAME .*STATE .*DESIRED .*READY .*HEAD-POD-IP .*AGE" "$tmp/status.out"
if command -v kubectl >/dev/null; then
    check "status lists the applied cluster" grep -q "^default .*demo " "$tmp/status.out"
fi
check "status lists RayJobs and RayServices" bash -c "grep -q '^RayJobs' '$tmp/status.out' && grep -q '^RayServices' '$tmp/status.out'"
check "status --kubeconfig" bash -c "'$ctl' status --kubeconfig '$state/kubeconfig' | grep -q '^RayClusters'"
expect_error "status without a kubeconfig" 1 "no kubeconfig at" "$ctl" status --state-dir "$tmp/empty"
expect_error "status with both sources" 2 "not both" "$ctl" status --state-dir "$state" --kubeconfig x

# --- audit (read-only view of an audit table shaped like common/store.c's) --------------------
expect_error "audit without a database" 1 "no audit database at" "$ctl" audit --state-dir "$tmp/empty"
expect_error "bad --limit" 2 "--limit: must be an integer in 1..1000000 (got '0')" "$ctl" audit --limit 0
if command -v sqlite3 >/dev/null; then
    db="$tmp/audit.db"
    sqlite3 "$db" "CREATE TABLE audit (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,
        actor_service TEXT, actor_replica TEXT, actor_version TEXT, cluster TEXT NOT NULL,
        target_group TEXT NOT NULL, target_kind TEXT NOT NULL, target_namespace TEXT NOT NULL,
        target_name TEXT NOT NULL, target_uid TEXT, verb TEXT NOT NULL, reason TEXT, message TEXT,
        cause_key TEXT, cause_generation INTEGER, cause_resource_version TEXT,
        cause_event_id INTEGER, correlation_id TEXT, request_summary TEXT,
        result_status INTEGER NOT NULL, result_error TEXT, latency_ms INTEGER NOT NULL) STRICT;
        INSERT INTO audit VALUES (1, 1700000000000, 'scheduler', 'scheduler/0', '0.1.0', 'default',
        '', 'Pod', 'default', 'demo-head-x', NULL, 'create', 'CreatedHeadPod', 'head pod',
        'ray.io/RayCluster/default/demo', 1, '42', NULL, 'c1', '{}', 201, NULL, 3);
        INSERT INTO audit VALUES (2, 1700000000100, 'scheduler', 'scheduler/0', '0.1.0', 'default',
        '', 'Pod', 'default', 'demo-workers-y', NULL, 'create', 'CreatedWorkerPod', 'worker',
        'ray.io/RayCluster/default/demo', 1, '42', NULL, 'c1', '{}', 201, NULL, 4);"
    "$ctl" audit --db "$db" >"$tmp/audit.out" 2>&1
    check "audit lists the rows" bash -c "grep -q 'demo-head-x' '$tmp/audit.out' && grep -q 'CreatedWorkerPod' '$tmp/audit.out'"
    check "audit shows the cause" grep -q "ray.io/RayCluster/default/demo gen 1 rv 42" "$tmp/audit.out"
    check "audit --limit 1 keeps the newest" bash -c "'$ctl' audit --db '$db' --limit 1 | grep -q demo-workers-y && ! '$ctl' audit --db '$db' --limit 1 | grep -q demo-head-x"
    check "audit leaves the database unchanged" test "$(sqlite3 "$db" 'SELECT count(*) FROM audit')" = 2
    # submitter.db (the RayJob controller's audit) is read with the scheduler's files as one.
    mkdir -p "$tmp/two"
    cp "$db" "$tmp/two/scheduler.db"
    cp "$db" "$tmp/two/submitter.db"
    sqlite3 "$tmp/two/submitter.db" "DELETE FROM audit;
        INSERT INTO audit VALUES (1, 1700000000050, 'submitter', 'submitter/0', '0.1.0', 'default',
        'ray.io', 'RayJob', 'default', 'job1', NULL, 'submit', NULL, 'submitted job1-abc',
        'default/default/job1', 1, '7', NULL, 'c2', '{}', 200, NULL, 5);"
    "$ctl" audit --state-dir "$tmp/two" >"$tmp/audit2.out" 2>&1
    check "audit reads submitter.db with scheduler.db" bash -c \
        "grep -q 'submitter/0 .*submit .*RayJob .*default/job1' '$tmp/audit2.out' && grep -q demo-head-x '$tmp/audit2.out'"
    check "audit orders both files' rows by time" bash -c \
        "[[ \$(grep -Eo 'demo-head-x|RayJob +default/job1|demo-workers-y' '$tmp/audit2.out' | awk '{print \$NF}' | tr '\n' ' ') == 'demo-head-x default/job1 demo-workers-y ' ]]"
    check "audit --actor submitter keeps the submitter's rows" bash -c \
        "'$ctl' audit --state-dir '$tmp/two' --actor submitter | grep -q job1 && ! '$ctl' audit --state-dir '$tmp/two' --actor submitter | grep -q demo-head-x"
    check "sql: audit is the union, submitter.audit one file" bash -c \
        "[[ \$('$ctl' sql --state-dir '$tmp/two' --output csv 'SELECT (SELECT count(*) FROM audit), (SELECT count(*) FROM submitter.audit)' | tail -1) == '3,1' ]]"
    rm -f "$tmp/two/scheduler.db"
    check "audit with submitter.db alone" bash -c "'$ctl' audit --state-dir '$tmp/two' | grep -q job1"
else
    check "sqlite3 is installed (scripts/deps.sh installs it)" false
fi

# --- RayJobs: the submitter runs them; status, explain and audit show them --------------------
if command -v kubectl >/dev/null && [[ -x "$bin/rayfleet-submitter" ]]; then
    kc_ apply -f - >/dev/null <<'YAML'
apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: pi
spec:
  entrypoint: python x.py FAKE:sleep=1
  shutdownAfterJobFinishes: false
  rayClusterSpec:
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers:
          - name: ray-head
            image: rayproject/ray:2.9.0
    workerGroupSpecs:
    - groupName: small
      replicas: 1
      minReplicas: 1
      maxReplicas: 1
      rayStartParams: {}
      template:
        spec:
          containers:
          - name: ray-worker
            image: rayproject/ray:2.9.0
YAML
    check "kubectl wait RayJob pi Complete" \
        kc_ wait --for=jsonpath='{.status.jobDeploymentStatus}'=Complete rayjob/pi --timeout=90s
    rjc=$(kc_ get rayjob pi -o jsonpath='{.status.rayClusterName}')
    rjid=$(kc_ get rayjob pi -o jsonpath='{.status.jobId}')
    check "the RayJob has a cluster and a job id" test -n "$rjc" -a -n "$rjid"
    "$ctl" status --state-dir "$state" >"$tmp/status2.out" 2>&1
    check "status: RayJob columns (the CRD's printer columns, and the job id)" grep -q \
        "^NAMESPACE .*NAME .*JOB-STATUS .*DEPLOYMENT .*CLUSTER .*JOB-ID .*START .*END .*AGE" "$tmp/status2.out"
    check "status: pi SUCCEEDED Complete on its cluster" grep -Eq \
        "^default +pi +SUCCEEDED +Complete +$rjc +$rjid +[0-9T:-]+Z +[0-9T:-]+Z " "$tmp/status2.out"
    "$ctl" explain rayjob/pi --state-dir "$state" >"$tmp/explain-rj.out" 2>&1
    rc=$?
    check "explain rayjob/pi exits 0" test $rc -eq 0
    check "explain rayjob: why (rjstate)" grep -q "^why: the job is complete" "$tmp/explain-rj.out"
    check "explain rayjob: status" bash -c "grep -Eq '^  deployment status +Complete' '$tmp/explain-rj.out' && grep -Eq '^  job status +SUCCEEDED' '$tmp/explain-rj.out' && grep -Eq '^  job id +$rjid\$' '$tmp/explain-rj.out' && grep -Eq '^  dashboard +$rjc-head-svc' '$tmp/explain-rj.out'"
    check "explain rayjob: names its cluster and its state" grep -Eq \
        "^  RayCluster default/$rjc: state ready" "$tmp/explain-rj.out"
    check "explain rayjob: the submission (submitter Job, Complete)" bash -c \
        "grep -Eq '^  Job +default/pi: .*Complete=True' '$tmp/explain-rj.out' && grep -Eq 'submitter +create +Job default/pi \(CreatedRayJobSubmitter\) 201' '$tmp/explain-rj.out'"
    check "explain rayjob: the head Service" grep -Eq "^  Service +default/pi-head-svc: " "$tmp/explain-rj.out"
    check "explain rayjob: scheduler rows of its cluster too" grep -Eq \
        " scheduler +[a-z]+ +(RayCluster default/$rjc|Event default/$rjc\.)" "$tmp/explain-rj.out"
    check "explain rayjob: its Events" grep -q \
        "Normal CreatedRayCluster: Created RayCluster default/$rjc" "$tmp/explain-rj.out"
    "$ctl" explain rayjob/pi --state-dir "$state" --output json >"$tmp/explain-rj.json" 2>&1
    check "explain rayjob --output json" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["rayjob"]
assert d["why"] == "the job is complete", d["why"]
assert d["status"]["job id"] == sys.argv[2] and d["owns"][0]["name"] == sys.argv[3], d
' "$tmp/explain-rj.json" "$rjid" "$rjc"
    "$ctl" audit --state-dir "$state" --limit 1000 >"$tmp/audit-rj.out" 2>&1
    check "audit shows the submitter's rows" bash -c \
        "grep -Eq 'submitter/0 +create +201 +RayCluster +default/$rjc ' '$tmp/audit-rj.out' && grep -Eq 'submitter/0 +status +200 +RayJob +default/pi ' '$tmp/audit-rj.out'"
    check "audit shows the scheduler's rows too" grep -Eq "scheduler/0 +create +201 +Pod " "$tmp/audit-rj.out"
    # An invalid RayJob: ValidationFailed, and explain says why.
    kc_ apply -f - >/dev/null <<'YAML'
apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: bad
spec:
  entrypoint: python x.py
  shutdownAfterJobFinishes: false
  ttlSecondsAfterFinished: 10
YAML
    check "kubectl wait RayJob bad ValidationFailed" \
        kc_ wait --for=jsonpath='{.status.jobDeploymentStatus}'=ValidationFailed rayjob/bad --timeout=60s
    "$ctl" explain rayjob/bad --state-dir "$state" >"$tmp/explain-bad.out" 2>&1
    check "explain invalid rayjob: ValidationFailed and the message" bash -c \
        "grep -Eq '^  deployment status +ValidationFailed' '$tmp/explain-bad.out' && grep -Eq '^  message +The RayJob spec is invalid: .*TTLSecondsAfterFinished' '$tmp/explain-bad.out' && grep -q '^why: invalid: ' '$tmp/explain-bad.out'"
    check "explain invalid rayjob: no cluster, the Warning Event" bash -c \
        "grep -Eq '^  RayCluster default/-: none yet' '$tmp/explain-bad.out' && grep -Eq 'Warning InvalidRayJobSpec: ' '$tmp/explain-bad.out'"
fi

# --- RayServices: serve-upgrade runs them; status and explain say which cluster serves and why --
samples=${RF_SHARED_DIR:-$(dirname "$0")/../../../../shared}/kuberay/samples
check "the upstream RayService sample is present" test -f "$samples/ray-service.sample.yaml"
if command -v kubectl >/dev/null && [[ -x "$bin/rayfleet-serve-upgrade" && -f "$samples/ray-service.sample.yaml" ]]; then
    rs=rayservice-sample
    check "kubectl apply ray-service.sample.yaml" kc_ apply -f "$samples/ray-service.sample.yaml"
    check "kubectl wait RayService Ready" kc_ wait --for=condition=Ready "rayservice/$rs" --timeout=90s
    rsc=$(kc_ get rayservice "$rs" -o jsonpath='{.status.activeServiceStatus.rayClusterName}')
    check "the RayService has an active cluster named <rs>-xxxxx" bash -c "[[ '$rsc' =~ ^$rs-[a-z0-9]{5}\$ ]]"
    "$ctl" status --state-dir "$state" >"$tmp/status-rs.out" 2>&1
    check "status: RayService columns (the CRD's printer columns, conditions, clusters)" grep -q \
        "^NAMESPACE .*NAME .*SERVICE-STATUS .*SERVE-ENDPOINTS .*READY .*UPGRADING .*ACTIVE-CLUSTER .*PENDING-CLUSTER .*AGE" "$tmp/status-rs.out"
    check "status: the RayService Running, serve endpoints, Ready, its active cluster" grep -Eq \
        "^default +$rs +Running +[1-9][0-9]* +True +False +$rsc +- " "$tmp/status-rs.out"
    "$ctl" explain "rayservice/$rs" --state-dir "$state" >"$tmp/explain-rs.out" 2>&1
    rc=$?
    check "explain rayservice exits 0" test $rc -eq 0
    check "explain rayservice: why (rsstate, no probe)" grep -Eq \
        "^why: ready: RayCluster $rsc serves \([1-9][0-9]* serve endpoint\(s\)\) \(Serve state not probed by explain\)\$" "$tmp/explain-rs.out"
    check "explain rayservice: the serve Service's selector names the serving cluster" grep -Eq \
        "^serves: RayCluster $rsc \(the serve Service default/$rs-serve-svc selects ray.io/cluster=$rsc\); active $rsc, pending -\$" "$tmp/explain-rs.out"
    check "explain rayservice: status and conditions with reasons" bash -c \
        "grep -Eq '^  service status +Running\$' '$tmp/explain-rs.out' && grep -Eq '^  serve endpoints +[1-9]' '$tmp/explain-rs.out' && grep -Eq '^  Ready +True \(NonZeroServeEndpoints: ' '$tmp/explain-rs.out' && grep -Eq '^  UpgradeInProgress +False \(NoPendingCluster: ' '$tmp/explain-rs.out'"
    check "explain rayservice: owns its cluster and Services" bash -c \
        "grep -Eq '^  RayCluster default/$rsc: active, state ready' '$tmp/explain-rs.out' && grep -Eq '^  Service +default/$rs-head-svc: head, selects ray.io/cluster=$rsc\$' '$tmp/explain-rs.out' && grep -Eq '^  Service +default/$rs-serve-svc: serve, selects ray.io/cluster=$rsc\$' '$tmp/explain-rs.out'"
    check "explain rayservice: the Serve push in its reconciles" grep -Eq \
        "^  serve-push RayCluster default/$rsc 200\$" "$tmp/explain-rs.out"
    check "explain rayservice: its Events" bash -c \
        "grep -q 'Normal CreatedRayCluster: Created RayCluster default/$rsc\$' '$tmp/explain-rs.out' && grep -q 'Normal ClusterSwitched: Switched traffic of default/$rs from RayCluster (none) to $rsc\$' '$tmp/explain-rs.out'"
    "$ctl" explain "rayservice/$rs" --state-dir "$state" --output json >"$tmp/explain-rs.json" 2>&1
    check "explain rayservice --output json" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["rayservice"]
c = sys.argv[2]
assert d["why"].startswith("ready: RayCluster %s serves" % c), d["why"]
assert d["serving"]["cluster"] == c and d["serving"]["active"] == c and d["serving"]["pending"] == "", d["serving"]
assert d["status"]["Ready"]["status"] == "True" and d["status"]["serve endpoints"] > 0, d["status"]
owns = [(o["kind"], o["name"], o["role"]) for o in d["owns"]]
assert owns[0] == ("RayCluster", c, "active") and ("Service", "rayservice-sample-serve-svc", "serve") in owns, owns
assert any(e["reason"] == "CreatedRayCluster" for e in d["events"]), d["events"]
assert any(r["actor_service"] == "serve-upgrade" and r["target_name"] == "rayservice-sample-serve-svc" for r in d["last_audit"]), d["last_audit"]
' "$tmp/explain-rs.json" "$rsc"
    # An upgrade: a new cluster is prepared, takes the traffic, and the old one is scheduled for deletion.
    kc_ patch rayservice "$rs" --type=json \
        -p '[{"op":"replace","path":"/spec/rayClusterConfig/headGroupSpec/rayStartParams","value":{"num-cpus":"1"}}]' >/dev/null
    for _ in $(seq 150); do
        new=$(kc_ get rayservice "$rs" -o jsonpath='{.status.activeServiceStatus.rayClusterName}')
        [[ -n $new && $new != "$rsc" ]] && break
        sleep 0.2
    done
    check "the upgrade switched to a new cluster" bash -c "[[ -n '$new' && '$new' != '$rsc' ]]"
    for _ in $(seq 50); do
        "$ctl" explain "rayservice/$rs" --state-dir "$state" >"$tmp/explain-rs2.out" 2>&1
        grep -q "^  RayCluster default/$rsc: dangling, deletion due at " "$tmp/explain-rs2.out" && break
        sleep 0.2
    done
    check "explain rayservice after the upgrade: the new cluster serves" grep -Eq \
        "^serves: RayCluster $new \(the serve Service default/$rs-serve-svc selects ray.io/cluster=$new\)" "$tmp/explain-rs2.out"
    check "explain rayservice after the upgrade: the old cluster is dangling, its deletion scheduled" bash -c \
        "grep -Eq '^  RayCluster default/$rsc: dangling, deletion due at [0-9T:.-]+Z, state ' '$tmp/explain-rs2.out' && grep -Eq ' serve-upgrade +schedule-delete RayCluster default/$rsc: RayCluster default/$rsc is no longer active or pending: deleted at ' '$tmp/explain-rs2.out'"
fi

# --- down ------------------------------------------------------------------------------------
"$ctl" down --state-dir "$state" >"$tmp/down.out" 2>&1
rc=$?
check "down exits 0" test $rc -eq 0
check "down reports what it stopped" grep -q "stopped kubesim" "$tmp/down.out"
check "no process left" all_gone "$tmp/pids.copy"
check "pid file removed" test ! -e "$state/pids"
"$ctl" down --state-dir "$state" >"$tmp/down2.out" 2>&1
rc=$?
check "down again is a no-op" test $rc -eq 0
check "down again says nothing runs" grep -q "nothing is running" "$tmp/down2.out"

# --- foreground: SIGTERM stops everything ------------------------------------------------------
"$ctl" up --sim --state-dir "$state" --timeout 60s >"$tmp/fg.out" 2>&1 &
fg=$!
for _ in $(seq 100); do grep -q "Ctrl-C stops everything" "$tmp/fg.out" 2>/dev/null && break; sleep 0.1; done
cp "$state/pids" "$tmp/pids.fg" 2>/dev/null || : >"$tmp/pids.fg"
check "foreground up becomes ready" grep -q "Ctrl-C stops everything" "$tmp/fg.out"
kill -TERM "$fg"
wait "$fg"
rc=$?
check "foreground up exits 0 on SIGTERM" test $rc -eq 0
check "foreground up stopped its children" all_gone "$tmp/pids.fg"

# --- up --kubeconfig: an existing cluster (a kubesim started here), CRDs installed if absent ---
if [[ -x "$bin/kubesim" ]]; then
    real="$tmp/real"
    mkdir -p "$real"
    "$bin/kubesim" --port 0 --nodes 2 --kubeconfig-out "$real/kubeconfig" \
        --ready-file "$real/ready" >"$real/kubesim.log" 2>&1 &
    sim=$!
    for _ in $(seq 100); do [[ -s "$real/ready" ]] && break; sleep 0.1; done
    out=$("$ctl" up --kubeconfig "$real/kubeconfig" --detach --state-dir "$real/state" 2>"$tmp/up2.err")
    rc=$?
    check "up --kubeconfig --detach" test $rc -eq 0
    check "up --kubeconfig prints the given kubeconfig" test "$out" = "$real/kubeconfig"
    check "up --kubeconfig created the CRDs" grep -q "CRD rayclusters.ray.io created" "$tmp/up2.err"
    check "up --kubeconfig started no kubesim" bash -c "! grep -q '^kubesim ' '$real/state/pids'"
    "$ctl" down --state-dir "$real/state" >/dev/null 2>&1
    "$ctl" up --kubeconfig "$real/kubeconfig" --detach --state-dir "$real/state" >/dev/null 2>"$tmp/up3.err"
    check "second up --kubeconfig finds the CRDs present" grep -q "CRD rayclusters.ray.io present" "$tmp/up3.err"
    "$ctl" down --state-dir "$real/state" >/dev/null 2>&1
    kill "$sim" 2>/dev/null
    wait "$sim" 2>/dev/null
fi

# --- a service without a health port (a stand-in scheduler), and one that dies at start ------
fake="$tmp/fakebin"
mkdir -p "$fake"
ln -s "$(cd "$bin" && pwd)/kubesim" "$fake/kubesim"
ln -s "$(cd "$bin" && pwd)/rayfleet-bus" "$fake/rayfleet-bus"
cat >"$fake/rayfleet-scheduler" <<'SH'
#!/usr/bin/env bash
if [[ "${1:-}" == --help ]]; then
    printf 'Options:\n  --bus.endpoint TEXT\n  --kubeconfig FILE\n  --state-dir DIR\n  --log-level LEVEL\n'
    exit 0
fi
echo "args: $*"
[[ -n "${FAKE_FAIL:-}" ]] && { echo "fatal: cannot open the store"; exit 3; }
exec sleep 1000
SH
chmod +x "$fake/rayfleet-scheduler"
fs="$tmp/fstate"
# the stand-in takes no bus keys: with CURVE on ipc:// up refuses it, naming the option (the
# default, peer uids, needs no keys)
"$ctl" up --sim --detach --bus-ipc-auth curve --bin-dir "$fake" --state-dir "$fs" >/dev/null \
    2>"$tmp/nokeys.err"
rc=$?
check "up refuses a service without --bus.curve-key-file" bash -c \
    "[[ $rc -eq 1 ]] && grep -q 'rayfleet-scheduler has no --bus.curve-key-file option' '$tmp/nokeys.err'"
"$ctl" up --sim --detach --bus-insecure --bin-dir "$fake" --state-dir "$fs" >/dev/null 2>"$tmp/fake.err"
rc=$?
check "up with a stand-in scheduler" test $rc -eq 0
check "scheduler ready once alive (no health port)" grep -q "scheduler ready (pid [0-9]*, alive)" "$tmp/fake.err"
check "scheduler got the bus backend and the kubeconfig" \
    grep -q -- "--kubeconfig $(cd "$fs" && pwd)/kubeconfig --state-dir $(cd "$fs" && pwd) --log-level info --bus.endpoint ipc://$(cd "$fs" && pwd)/bus-out" "$fs/logs/scheduler.log"
check "the missing watcher is named" grep -q "not built, not started: rayfleet-watcher" "$tmp/fake.err"
"$ctl" down --state-dir "$fs" >/dev/null 2>&1
FAKE_FAIL=1 "$ctl" up --sim --detach --bus-insecure --bin-dir "$fake" --state-dir "$fs" >/dev/null \
    2>"$tmp/fail.err"
rc=$?
cp "$fs/pids" "$tmp/pids.fail" 2>/dev/null || : >"$tmp/pids.fail"
check "up fails when a service dies at start" test $rc -eq 1
check "the death is reported with the log tail" bash -c \
    "grep -q 'scheduler (pid [0-9]*) exited with status 3' '$tmp/fail.err' && grep -q '| fatal: cannot open the store' '$tmp/fail.err'"
check "a failed up leaves no pid file" test ! -e "$fs/pids"
simpid=$(sed -n 's/.*starting kubesim ([0-9]* nodes, pid \([0-9]*\)).*/\1/p' "$tmp/fail.err")
check "a failed up leaves no kubesim" bash -c "[[ -n '$simpid' ]] && { [[ ! -e /proc/$simpid ]] || grep -q ') Z' /proc/$simpid/stat; }"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
