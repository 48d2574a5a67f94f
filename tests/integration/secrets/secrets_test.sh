#!/usr/bin/env bash
# A RayCluster whose head reads a password from a Secret (secretKeyRef), carries a literal
# secret-looking env value, and asks for token authentication (the scheduler then creates a
# Secret with a random token). Once it is ready, none of the three secret values may appear in
# any audit row (scheduler.db) or in any service's log.
# Usage: secrets_test.sh PATH/TO/rayfleetctl      Ends with "N passed, M failed".
set -uo pipefail
ctl=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
source "$here/../cli/testlib.sh"
tmp=$(mktemp -d /tmp/rfsecrets.XXXXXX)
state="$tmp/state"
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
finish() {
    "$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1 || true
    rm -rf "$tmp"
    tl_summary
}
trap 'finish; exit $?' EXIT
command -v kubectl >/dev/null || { bad "kubectl is installed"; exit 1; }
command -v sqlite3 >/dev/null || { bad "sqlite3 is installed (scripts/deps.sh)"; exit 1; }

kc=$("$ctl" up --sim --detach --state-dir "$state" 2>"$tmp/up.log") || { bad "rayfleetctl up"; cat "$tmp/up.log"; exit 1; }
k() { kubectl --kubeconfig "$kc" --cache-dir "$tmp/kcache" "$@"; }

from_secret="fromsecret-$RANDOM$RANDOM$RANDOM"
literal="literalpw-$RANDOM$RANDOM$RANDOM"
cat >"$tmp/rc.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: redis-pw, namespace: default}
stringData: {password: $from_secret}
---
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: secretive, namespace: default}
spec:
  rayVersion: "2.52.0"
  authOptions: {mode: token}
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.52.0
          env:
          - name: REDIS_PASSWORD
            valueFrom: {secretKeyRef: {name: redis-pw, key: password}}
          - name: MY_API_TOKEN
            value: $literal
  workerGroupSpecs:
  - groupName: w
    replicas: 1
    rayStartParams: {}
    template:
      spec:
        containers:
        - {name: ray-worker, image: "rayproject/ray:2.52.0"}
YAML
check "Secret and RayCluster applied" k apply -f "$tmp/rc.yaml"
check "the RayCluster becomes ready" k wait --for=jsonpath='{.status.state}'=ready raycluster/secretive --timeout=60s
token_secret=$(k get secrets -o name | grep -v redis-pw | head -1)
token=$(k get "$token_secret" -o jsonpath='{.data.auth_token}' 2>/dev/null | base64 -d 2>/dev/null)
check "the scheduler created the auth token Secret ($token_secret)" test -n "$token"
check "the head pod reads the password through secretKeyRef" bash -c \
    "kubectl --kubeconfig '$kc' --cache-dir '$tmp/kcache' get pods -l ray.io/node-type=head -o json | grep -q secretKeyRef"

check "the literal value reached the head pod (so its absence below is redaction)" bash -c \
    "kubectl --kubeconfig '$kc' --cache-dir '$tmp/kcache' get pods -l ray.io/node-type=head -o json | grep -qF -- '$literal'"
sqlite3 "$state/scheduler.db" "SELECT * FROM audit" >"$tmp/audit.txt"
check "the audit has rows for the Secret and the pods" bash -c \
    "grep -q 'Secret' '$tmp/audit.txt' && grep -q 'Pod' '$tmp/audit.txt'"
check "the audit shows the redaction marker" grep -q 'redacted' "$tmp/audit.txt"
for what in from_secret literal token; do
    value=${!what}
    check "no audit row holds the $what value" bash -c "! grep -qF -- '$value' '$tmp/audit.txt'"
    check "no log line holds the $what value" bash -c "! grep -rqF -- '$value' '$state/logs'"
done
