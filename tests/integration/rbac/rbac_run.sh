#!/usr/bin/env bash
# Runs an in-process integration test (a harness.h program) in the harness's RBAC mode (issue 15):
#   rbac_run.sh PROGRAM [ARGS...]
# renders the chart's RBAC (deploy/helm/rayfleet) as the kustomize base is, with
# useKubernetesProxy=true (the harness's submitter and serve-upgrade reach the simulated Ray heads
# through the API server's service proxy, as that variant of the chart does), into a temporary
# dir, and runs PROGRAM with RF_HARNESS_RBAC=<dir>/rbac.yaml: its watcher and controllers then
# talk to kubesim over TLS as system:serviceaccount:rayfleet-system:rayfleet, and the program
# fails unless kubesim answered none of their requests with 403. helm comes from scripts/helm.sh
# (built the first time, which takes minutes) unless $HELM names one.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
[ $# -ge 1 ] || { echo "usage: rbac_run.sh PROGRAM [ARGS...]"; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$ROOT/scripts/render-deploy.sh" "$WORK/base" --set useKubernetesProxy=true >/dev/null ||
    { echo "FATAL: scripts/render-deploy.sh failed"; exit 1; }
[ -s "$WORK/base/rbac.yaml" ] || { echo "FATAL: the render has no rbac.yaml"; exit 1; }
RF_HARNESS_RBAC="$WORK/base/rbac.yaml" "$@"
