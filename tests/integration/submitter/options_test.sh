#!/usr/bin/env bash
# submitter.options: rayfleet-submitter refuses a bad option at start, naming the option and the
# rule, with the usage exit code (2), before it connects to anything.
# Usage: options_test.sh PATH/TO/rayfleet-submitter
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failed=0
expect() { # expect GATES MESSAGE [MORE OPTIONS...]
    local gates=$1 msg=$2
    shift 2
    out=$("$bin" --state-dir "$dir" --feature-gates "$gates" "$@" 2>&1)
    code=$?
    if [ "$code" -ne 2 ]; then echo "$gates $*: exit $code, want 2"; failed=1; fi
    if ! grep -qF -- "$msg" <<<"$out"; then echo "$gates $*: no '$msg' in: $out"; failed=1; fi
}
expect "RayJobDeletionPolicy=maybe" \
    "--feature-gates: invalid value of RayJobDeletionPolicy=maybe, must be true or false"
expect "Nope=true" "--feature-gates: unrecognized feature gate: Nope"
expect "SidecarSubmitterRestart" "--feature-gates: missing bool value for SidecarSubmitterRestart"
expect "" "--cluster-domain: \"Bad Domain\" must be a DNS name" --cluster-domain "Bad Domain"
[ "$failed" -eq 0 ] && echo "submitter.options: ok"
exit "$failed"
