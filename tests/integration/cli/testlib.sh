# Shared helpers of the rayfleetctl end-to-end scripts (source it; bash only).
#   ok NAME / bad NAME       count and print a result line
#   has NAME TEXT PATTERN... every grep -E pattern is in TEXT (else the text is shown)
#   expect_code NAME CODE CMD...  CMD exits with CODE
#   tl_summary               prints "N passed, M failed"; returns 0 when nothing failed
#   tl_cell NAME CTL         for scripts that run `CTL up`: $tmp (a new /tmp/rfNAME.XXXXXX), $state
#                            ($tmp/state), kc_ (kubectl on $state's kubeconfig); at exit `CTL down`
#                            stops every state dir in tl_states (add more with tl_states+=(DIR))
#                            and $tmp is removed; exits when kubectl is missing
#   tl_wait SECONDS CMD...   retries CMD quietly every 0.2 s until it succeeds; 1 after SECONDS
#   tl_kill_restart NAME STATE TAG [FREEZE_S] [PAUSE_S]
#                            kills service NAME of `up`'s STATE/pids with SIGKILL (after SIGSTOP
#                            and FREEZE_S seconds when given), waits until it is gone, notes
#                            "--- TAG: SIGKILL pid P, restarting ---" in STATE/logs/NAME.log,
#                            sleeps PAUSE_S when given, starts the same argv again (log appended)
#                            and rewrites its pid file line so `down` still stops it; on failure
#                            says why on stderr and returns 1; sets tl_killed to the killed pid
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
tl_states=()
tl_cell() {
    tmp=$(mktemp -d "/tmp/rf$1.XXXXXX") || exit 1
    state="$tmp/state"
    tl_ctl=$2
    tl_states=("$state")
    trap tl_cleanup EXIT
    command -v kubectl >/dev/null || { echo "FAIL - kubectl is not installed"; exit 1; }
}
tl_cleanup() {
    local s
    for s in "${tl_states[@]}"; do
        "$tl_ctl" down --state-dir "$s" --timeout 2s >/dev/null 2>&1 || true
    done
    rm -rf "$tmp"
}
kc_() { kubectl --kubeconfig "$state/kubeconfig" --cache-dir "$tmp/kcache" "$@"; }
tl_wait() {
    local n=$(($1 * 5)) _i
    shift
    for _i in $(seq "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}
tl_proc_gone() { [[ ! -e /proc/$1 ]] || [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) == Z ]]; }
tl_kill_restart() {
    local name=$1 st=$2 tag=$3 freeze=${4:-} pause=${5:-} pid argv=() t new
    pid=$(awk -v n="$name" '$1 == n {print $2}' "$st/pids")
    [[ -n $pid && -r /proc/$pid/cmdline ]] || { echo "no $name pid" >&2; return 1; }
    mapfile -d '' -t argv <"/proc/$pid/cmdline"
    [[ ${#argv[@]} -gt 0 ]] || { echo "empty cmdline of $pid" >&2; return 1; }
    if [[ -n $freeze ]]; then
        kill -STOP "$pid" 2>/dev/null
        sleep "$freeze"
    fi
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    for _ in $(seq 100); do tl_proc_gone "$pid" && break; sleep 0.05; done
    tl_proc_gone "$pid" || { echo "pid $pid survived SIGKILL" >&2; return 1; }
    tl_killed=$pid
    echo "--- $tag: SIGKILL pid $pid, restarting ---" >>"$st/logs/$name.log"
    [[ -n $pause ]] && sleep "$pause"
    new=$(setsid "${argv[@]}" </dev/null >>"$st/logs/$name.log" 2>&1 & echo $!)
    t=$(sed 's/.*) //' "/proc/$new/stat" 2>/dev/null | cut -d' ' -f20)
    awk -v n="$name" -v p="$new" -v s="${t:-0}" '$1 == n {$2 = p; $3 = s} {print}' "$st/pids" \
        >"$st/pids.tl" && mv "$st/pids.tl" "$st/pids"
}
