#!/usr/bin/env bash
# Secrets at rest and file modes (issue 17), end to end through `rayfleetctl up --sim` run under
# umask 000:
# - a RayCluster with GCS fault tolerance (gcsFaultToleranceOptions.redisPassword.value) and a
#   worker env literal API_TOKEN reconciles: the pods carry both values as KubeRay renders them
#   (REDIS_PASSWORD on the head, --redis-password=$REDIS_PASSWORD, API_TOKEN on the worker);
# - neither value is in anything `rayfleetctl sql` reads (observed objects, desired objects, the
#   audit) nor, byte for byte, in any file of the state directory (databases, their -wal and -shm,
#   logs, the kubeconfig), while everything runs and after it stopped;
# - every file in the state directory is mode 0600, every directory 0700, the bus's ipc sockets
#   0600, although the umask would have allowed 0666/0777.
# Usage: at_rest_test.sh PATH/TO/rayfleetctl      Ends with "N passed, M failed".
set -uo pipefail
ctl=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
source "$here/../cli/testlib.sh"
umask 000
tl_cell secrest "$ctl"
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
command -v sqlite3 >/dev/null || { bad "sqlite3 is installed (scripts/deps.sh)"; exit 1; }

"$ctl" up --sim --detach --state-dir "$state" >/dev/null 2>"$tmp/up.log" ||
    { bad "rayfleetctl up --sim"; cat "$tmp/up.log"; exit 1; }
ok "rayfleetctl up --sim under umask 000"

token="s3cret-$RANDOM$RANDOM"
password="redispw-$RANDOM$RANDOM$RANDOM"
cat >"$tmp/rc.yaml" <<YAML
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: atrest, namespace: default}
spec:
  rayVersion: "2.52.0"
  gcsFaultToleranceOptions:
    redisAddress: "redis.default.svc:6379"
    redisPassword: {value: $password}
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - {name: ray-head, image: "rayproject/ray:2.52.0"}
  workerGroupSpecs:
  - groupName: w
    replicas: 1
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-worker
          image: rayproject/ray:2.52.0
          env:
          - {name: API_TOKEN, value: $token}
YAML
check "the RayCluster is applied (kubectl apply: a last-applied annotation too)" \
    kc_ apply -f "$tmp/rc.yaml"
check "the RayCluster becomes ready" \
    kc_ wait --for=jsonpath='{.status.state}'=ready raycluster/atrest --timeout=90s
check "a worker pod runs" tl_wait 60 bash -c \
    "[[ \$(kubectl --kubeconfig '$state/kubeconfig' --cache-dir '$tmp/kcache' get pods \
        -l ray.io/node-type=worker -o name | wc -l) -ge 1 ]]"

# The pods carry the values as KubeRay renders them.
head=$(kc_ get pods -l ray.io/node-type=head -o json)
worker=$(kc_ get pods -l ray.io/node-type=worker -o json)
envval() { jq -r --arg n "$2" '[.items[0].spec.containers[0].env[] | select(.name == $n) | .value][0]' <<<"$1"; }
check "the head pod has REDIS_PASSWORD = redisPassword.value" test "$(envval "$head" REDIS_PASSWORD)" = "$password"
check "the head starts ray with --redis-password=\$REDIS_PASSWORD" \
    grep -qF -- '--redis-password=$REDIS_PASSWORD' <<<"$head"
check "the head pod has RAY_REDIS_ADDRESS" test "$(envval "$head" RAY_REDIS_ADDRESS)" = "redis.default.svc:6379"
check "the worker pod has API_TOKEN = the literal" test "$(envval "$worker" API_TOKEN)" = "$token"

# Nothing rayfleetctl sql reads holds them: every row of every table it offers.
sqlq() { "$ctl" sql --state-dir "$state" --output jsonl --limit 100000 "$1"; }
sqlq "SELECT * FROM observed.observed_objects" >"$tmp/observed.jsonl" 2>"$tmp/sql.err"
check "rayfleetctl sql reads the observed objects" grep -q '"kind":"Pod"' "$tmp/observed.jsonl"
check "the observed rows hold the redaction marker" grep -qF '[redacted]' "$tmp/observed.jsonl"
sqlq "SELECT * FROM desired_objects" >"$tmp/desired.jsonl" 2>>"$tmp/sql.err"
check "rayfleetctl sql reads the desired objects" grep -q 'Pod' "$tmp/desired.jsonl"
sqlq "SELECT * FROM audit" >"$tmp/audit.jsonl" 2>>"$tmp/sql.err"
check "rayfleetctl sql reads the audit" grep -q 'Pod' "$tmp/audit.jsonl"
for f in observed desired audit; do
    check "no $f row holds the token" bash -c "! grep -qF -- 's3cret' '$tmp/$f.jsonl'"
    check "no $f row holds the redis password" bash -c "! grep -qF -- '$password' '$tmp/$f.jsonl'"
done

# Nor does any byte of any file in the state directory (databases, -wal, -shm, logs).
scan() {
    local when=$1
    check "state files exist to scan ($when): $(find "$state" -type f | wc -l) files" \
        bash -c "ls '$state'/observed.db* '$state'/scheduler.db* >/dev/null"
    check "no file in the state dir holds the token ($when)" \
        bash -c "! grep -rqaF -- 's3cret' '$state'"
    check "no file in the state dir holds the redis password ($when)" \
        bash -c "! grep -rqaF -- '$password' '$state'"
}
scan running

# Modes: files 0600, directories 0700, sockets 0600, whatever the umask.
modes() {
    local when=$1
    local wide
    wide=$(find "$state" -type f ! -perm 0600 -printf '%m %p\n')
    check "every file in the state dir is 0600 ($when)${wide:+: $wide}" test -z "$wide"
    wide=$(find "$state" -type d ! -perm 0700 -printf '%m %p\n')
    check "every directory in the state dir is 0700 ($when)${wide:+: $wide}" test -z "$wide"
    wide=$(find "$state" -type s ! -perm 0600 -printf '%m %p\n')
    check "every socket in the state dir is 0600 ($when)${wide:+: $wide}" test -z "$wide"
}
check "the databases' -wal files exist" bash -c "ls '$state'/observed.db-wal '$state'/scheduler.db-wal >/dev/null"
check "the bus's ipc sockets exist" test -S "$state/bus-in" -a -S "$state/bus-out"
modes running

"$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1
scan stopped
modes stopped
tl_summary
