# Shared helpers of the rayfleetctl end-to-end scripts (source it; bash only).
#   ok NAME / bad NAME       count and print a result line
#   has NAME TEXT PATTERN... every grep -E pattern is in TEXT (else the text is shown)
#   expect_code NAME CODE CMD...  CMD exits with CODE
#   tl_summary               prints "N passed, M failed"; returns 0 when nothing failed
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $1"; }
bad() { failed=$((failed + 1)); echo "FAIL - $1"; }
has() {
    local name=$1 text=$2; shift 2
    local p
    for p in "$@"; do
        if ! grep -Eq -- "$p" <<<"$text"; then
            bad "$name (no '$p' in:)"; sed 's/^/    | /' <<<"$text"; return 1
        fi
    done
    ok "$name"
}
expect_code() {
    local name=$1 want=$2; shift 2
    local out code
    out=$("$@" 2>&1); code=$?
    if [[ $code -eq $want ]]; then ok "$name"; else
        bad "$name (exit $code, want $want)"; sed 's/^/    | /' <<<"$out"; fi
}
tl_summary() {
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}
