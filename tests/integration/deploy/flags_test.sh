#!/usr/bin/env bash
# deploy.flags: every flag the chart's Deployment passes to a container is one its binary accepts
# (its --help lists it), for the default values and for full-values.yaml. Catches a chart that
# drifts from the services' options (a container that would exit at start with "unknown option").
#   flags_test.sh [BIN_DIR]        (default build/bin)
# Needs the --leader.* options of the controllers (ctrl/ctrlsvc.c) and the bus's --health.*: run it
# once those are built. Prints one line per container and render, then "N passed, M failed".
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BIN=${1:-$ROOT/build/bin}
HELM=$("$ROOT/scripts/helm.sh") || { echo "FATAL: scripts/helm.sh could not install helm"; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PASS=0
FAIL=0
for values in "" "$HERE/full-values.yaml"; do
    label=${values:+full-values.yaml}
    label=${label:-defaults}
    if ! "$HELM" template rayfleet "$ROOT/deploy/helm/rayfleet" --namespace rayfleet-system \
        --show-only templates/deployment.yaml ${values:+-f "$values"} >"$WORK/d.yaml" 2>"$WORK/e"; then
        FAIL=$((FAIL + 1))
        echo "FAIL render ($label)"
        sed 's/^/       /' "$WORK/e"
        continue
    fi
    # "<binary> <flag>" per argument: the flags follow each container's command line
    awk '/command: \[rayfleet-/ { gsub(/.*\[|\].*/, ""); bin = $0 }
         bin && /^ *- --/ { sub(/^ *- --/, ""); sub(/=.*/, ""); print bin, $0 }' "$WORK/d.yaml" \
        >"$WORK/flags"
    for bin in $(cut -d' ' -f1 "$WORK/flags" | sort -u); do
        if ! "$BIN/$bin" --help >"$WORK/help" 2>&1; then
            FAIL=$((FAIL + 1))
            echo "FAIL $bin --help ($label)"
            continue
        fi
        missing=$(awk -v b="$bin" '$1 == b { print $2 }' "$WORK/flags" | while read -r f; do
            grep -Eq -- "^ +--$f( |,|$)" "$WORK/help" || echo "--$f"
        done)
        if [ -z "$missing" ]; then
            PASS=$((PASS + 1))
            echo "ok   $bin accepts every flag the chart passes ($label)"
        else
            FAIL=$((FAIL + 1))
            echo "FAIL $bin does not accept:" $missing "($label)"
        fi
    done
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
