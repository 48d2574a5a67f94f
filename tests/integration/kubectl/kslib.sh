# kslib.sh: what the kubectl acceptance scripts share (sourced, not run). Before sourcing, set
# KUBESIM (the kubesim binary) and optionally KS_NODES (default 1). Starts kubesim on an ephemeral
# port with a kubeconfig in $WORK/kubeconfig and its URL in $URL, stops it on exit, and defines:
#   k ARGS...              kubectl with that kubeconfig and a fresh --cache-dir per call; output in
#                          $OUT, status in $RC
#   ok NAME / bad NAME     count a check (bad shows the last k call's status and output)
#   expect NAME RC REGEX   checks the last k call's status and output (extended regex)
#   expect_fixed NAME RC S the same with a fixed string
KUBECTL=${KUBECTL:-kubectl}
if ! command -v "$KUBECTL" >/dev/null 2>&1; then
    echo "FAIL: kubectl is not installed (it comes with the machine image, not scripts/deps.sh)"
    exit 1
fi
[ -x "$KUBESIM" ] || { echo "FATAL: no kubesim binary at $KUBESIM"; exit 1; }

WORK=$(mktemp -d)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

"$KUBESIM" --port 0 --nodes "${KS_NODES:-1}" --kubeconfig-out "$WORK/kubeconfig" \
    --ready-file "$WORK/ready" >"$WORK/kubesim.out" 2>"$WORK/kubesim.err" &
PID=$!
for _ in $(seq 100); do [ -s "$WORK/ready" ] && break; sleep 0.05; done
[ -s "$WORK/ready" ] || { echo "FATAL: kubesim did not start"; cat "$WORK/kubesim.err"; exit 1; }
URL=$(cat "$WORK/ready")

PASS=0
FAIL=0
N=0
RC=0
OUT=""
k() {
    N=$((N + 1))
    OUT=$("$KUBECTL" --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/cache$N" "$@" 2>&1)
    RC=$?
}
ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL $1"
    echo "     rc=$RC output:"
    printf '%s\n' "$OUT" | sed 's/^/       /' | head -20
}
expect() {
    if [ "$RC" -eq "$2" ] && printf '%s\n' "$OUT" | grep -Eq -- "$3"; then ok "$1"; else bad "$1"; fi
}
expect_fixed() {
    if [ "$RC" -eq "$2" ] && printf '%s\n' "$OUT" | grep -Fq -- "$3"; then ok "$1"; else bad "$1"; fi
}
