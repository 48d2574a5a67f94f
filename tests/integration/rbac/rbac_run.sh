#!/usr/bin/env bash
# Runs an in-process integration test (a harness.h program) in the harness's RBAC mode (issue 15):
#   rbac_run.sh [--expect-refused RESOURCE] PROGRAM [ARGS...]
# renders the chart's RBAC (deploy/helm/rayfleet) as the kustomize base is, with
# useKubernetesProxy=true (the harness's submitter and serve-upgrade reach the simulated Ray heads
# through the API server's service proxy, as that variant of the chart does), into a temporary
# dir, and runs PROGRAM with RF_HARNESS_RBAC=<dir>/rbac.yaml: its watcher and controllers then
# talk to kubesim over TLS as system:serviceaccount:rayfleet-system:rayfleet, and the program
# fails unless kubesim answered none of their requests with 403. helm comes from scripts/helm.sh
# (built the first time, which takes minutes) unless $HELM names one.
# --expect-refused RESOURCE: the proof that the mode can fail: the rule granting RESOURCE alone
# (`resources: [RESOURCE]`) is emptied first, and the run passes only when PROGRAM then fails and
# the harness lists the requests kubesim refused on RESOURCE.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
DROP=""
if [ "${1:-}" = "--expect-refused" ]; then DROP=${2:-}; shift 2 || true; fi
[ $# -ge 1 ] || { echo "usage: rbac_run.sh [--expect-refused RESOURCE] PROGRAM [ARGS...]"; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$ROOT/scripts/render-deploy.sh" "$WORK/base" --set useKubernetesProxy=true >/dev/null ||
    { echo "FATAL: scripts/render-deploy.sh failed"; exit 1; }
[ -s "$WORK/base/rbac.yaml" ] || { echo "FATAL: the render has no rbac.yaml"; exit 1; }
if [ -z "$DROP" ]; then
    RF_HARNESS_RBAC="$WORK/base/rbac.yaml" "$@"
    exit $?
fi
sed -E "s/^( *resources: \[)$DROP\]\$/\1]/" "$WORK/base/rbac.yaml" >"$WORK/dropped.yaml"
if cmp -s "$WORK/base/rbac.yaml" "$WORK/dropped.yaml"; then
    echo "FATAL: no rule of the chart's RBAC grants resources: [$DROP] alone"
    exit 1
fi
RF_HARNESS_RBAC="$WORK/dropped.yaml" "$@" >"$WORK/out" 2>"$WORK/err"
RC=$?
cat "$WORK/out"
if [ "$RC" = 0 ]; then
    echo "FAIL: without the rule for $DROP the program still passed (RBAC not enforced?)"
    exit 1
fi
if ! grep -q "^harness: forbidden responses" "$WORK/out" || ! grep -q "\"resource\": \"$DROP\"" "$WORK/out"; then
    echo "FAIL: the program failed (exit $RC) but the harness did not list refusals on $DROP"
    exit 1
fi
echo "ok: without the rule for $DROP the program failed (exit $RC) and the refusals were listed"
