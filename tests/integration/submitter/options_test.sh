#!/usr/bin/env bash
# submitter.options: rayfleet-submitter refuses a bad option at start, naming the option and the
# rule, with the usage exit code (2), before it connects to anything.
# Usage: options_test.sh PATH/TO/rayfleet-submitter
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failed=0
expect() { # expect GATES MESSAGE
    out=$("$bin" --state-dir "$dir" --feature-gates "$1" 2>&1)
    code=$?
    if [ "$code" -ne 2 ]; then echo "--feature-gates $1: exit $code, want 2"; failed=1; fi
    if ! grep -qF -- "$2" <<<"$out"; then echo "--feature-gates $1: no '$2' in: $out"; failed=1; fi
}
expect "RayJobDeletionPolicy=maybe" \
    "--feature-gates: invalid value of RayJobDeletionPolicy=maybe, must be true or false"
expect "Nope=true" "--feature-gates: unrecognized feature gate: Nope"
expect "SidecarSubmitterRestart" "--feature-gates: missing bool value for SidecarSubmitterRestart"
[ "$failed" -eq 0 ] && echo "submitter.options: ok"
exit "$failed"
