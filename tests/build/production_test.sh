#!/usr/bin/env bash
# The production binaries carry no module self-test and do not link libmicrohttpd (which only
# http.c's self-test uses): the self-tests are compiled into the *test runners only (rf_selftests()).
# Usage: production_test.sh BIN_DIR. Prints one line per check and "N passed, N failed".
set -u
bin=${1:?usage: production_test.sh BIN_DIR}
pass=0
fail=0
check() { # name, command...
    local name=$1
    shift
    if "$@"; then
        echo "ok   $name"
        pass=$((pass + 1))
    else
        echo "FAIL $name"
        fail=$((fail + 1))
    fi
}
for b in rayfleet-scheduler rayfleet-watcher rayfleet-bus rayfleetctl kubesim; do
    f="$bin/$b"
    check "$b exists" test -x "$f"
    [ -x "$f" ] || continue
    check "$b has no *_test function" bash -c "! nm '$f' | grep -Eq ' T [a-z_]+_test\$'"
    check "$b does not link libmicrohttpd" bash -c "! ldd '$f' | grep -q microhttpd"
done
# the runners do carry them (so the check above can fail)
check "selftest runner has common's self-tests" bash -c "nm '$bin/selftest' | grep -Eq ' T store_test\$'"
check "selftest runner links libmicrohttpd" bash -c "ldd '$bin/selftest' | grep -q microhttpd"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
