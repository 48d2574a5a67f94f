#!/usr/bin/env bash
# serveup.options: rayfleet-serve-upgrade refuses a bad option at start, naming the option and the
# rule, with the usage exit code (2), before it connects to anything.
# Usage: options_test.sh PATH/TO/rayfleet-serve-upgrade
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failed=0
expect() { # expect MESSAGE OPTIONS...
    local msg=$1
    shift
    out=$("$bin" --state-dir "$dir" "$@" 2>&1)
    code=$?
    if [ "$code" -ne 2 ]; then echo "$*: exit $code, want 2"; failed=1; fi
    if ! grep -qF -- "$msg" <<<"$out"; then echo "$*: no '$msg' in: $out"; failed=1; fi
}
expect "--feature-gates: invalid value of RayServiceIncrementalUpgrade=maybe, must be true or false" \
    --feature-gates RayServiceIncrementalUpgrade=maybe
expect "--feature-gates: unrecognized feature gate: Nope" --feature-gates Nope=true
expect "--cluster-domain: \"Bad Domain\" must be a DNS name" --cluster-domain "Bad Domain"
expect "--steady-poll: must be at least 100ms" --steady-poll 10ms
[ "$failed" -eq 0 ] && echo "serveup.options: ok"
exit "$failed"
