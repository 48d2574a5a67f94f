#!/usr/bin/env bash
# integration.supervise: `rayfleetctl up` restarts the services that die (issue 17).
# Usage: supervise_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml   (kubesim and services beside it)
#  1. up --sim --detach; kill -9 the scheduler, then the watcher, then the bus: each is restarted
#     (status: running, restarts 1, a new pid, /readyz ready) and a RayCluster created after each
#     restart becomes ready; down stops the supervisor and every process, old pids and new.
#  2. a stand-in scheduler that exits at once on every start once a file exists: crash-looping
#     in status, delays 1 s, 2 s, 4 s in the supervisor's log and state file; back to running
#     when the file is gone.
#  3. foreground up: a killed service is restarted and up stays; kubesim killed stops the whole
#     set (up exits 1, saying why) and no process is left.
set -uo pipefail
ctl=${1:?usage: supervise_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
example=${2:?usage: supervise_test.sh PATH/TO/rayfleetctl RAYCLUSTER.yaml}
bin=$(cd "$(dirname "$ctl")" && pwd)
. "$(dirname "$0")/../cli/testlib.sh"
tl_cell super "$ctl"
command -v python3 >/dev/null || { echo "FAIL - python3 is not installed"; exit 1; }

# pid NAME [PIDFILE]: the pid of NAME in the pid file.
pid_of() { awk -v n="$1" '$1 == n {print $2}' "${2:-$state/pids}"; }
# gone PID...: every pid is gone (a zombie counts as gone: its parent, now init, reaps it).
gone() {
    local p
    for p in "$@"; do
        if [[ -e /proc/$p ]] && [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) != Z ]]; then
            echo "  still running: pid $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null))" >&2
            return 1
        fi
    done
}
# svc_row DIR NAME: the status line of service NAME.
svc_row() { "$ctl" status --state-dir "$1" 2>/dev/null | awk -v n="$2" '$1 == n' | tail -1; }
# restarted DIR NAME N OLDPID: status shows NAME running with N restarts, under another pid, ready
# when it has a health port.
restarted() {
    local row
    row=$(svc_row "$1" "$2")
    [[ $row =~ ^$2\ +([0-9]+)\ +running\ +$3\ +killed\ by\ signal\ 9 ]] || return 1
    [[ ${BASH_REMATCH[1]} != "$4" ]] || return 1
    [[ $row != *"no answer"* && $row != *"not ready"* ]]
}
# make_cluster NAME: a copy of the example RayCluster named NAME, applied; waits until ready.
make_cluster() {
    sed "s/^  name: demo\$/  name: $1/" "$example" | kc_ apply -f - >/dev/null &&
        kc_ wait --for=jsonpath='{.status.state}'=ready "raycluster/$1" --timeout=60s >/dev/null
}

# --- 1. detached: kill -9 the scheduler, the watcher, the bus ---------------------------------
kc=$("$ctl" up --sim --detach --state-dir "$state" --nodes 3 --timeout 60s 2>"$tmp/up.err")
rc=$?
if [[ $rc -eq 0 ]]; then ok "up --sim --detach returns"; else
    bad "up --sim --detach (exit $rc)"; cat "$tmp/up.err"; exit 1; fi
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
check "it prints the kubeconfig" test "$kc" = "$state/kubeconfig"
sup=$(pid_of rayfleetctl)
check "the pid file names the detached supervisor" test -n "$sup"
check "the supervisor stays" bash -c "[[ -e /proc/$sup ]] && ! grep -q ') Z' /proc/$sup/stat"
check "up says who supervises" grep -q "ready; supervised by pid $sup" "$tmp/up.err"
check "supervise.json is mode 0600" test "$(stat -c %a "$state/supervise.json")" = 600
"$ctl" status --state-dir "$state" >"$tmp/status0.out" 2>&1
has "status lists the supervised services" "$(cat "$tmp/status0.out")" \
    "^Services \(supervised by rayfleetctl pid $sup, detached; backoff 1s doubling to 60s\)" \
    "^SERVICE +PID +STATE +RESTARTS +LAST-EXIT +HEALTH" "^kubesim +[0-9]+ +running +0 +- +-" \
    "^scheduler +[0-9]+ +running +0 +- +ready \(/readyz on [0-9]+\)" \
    "^bus +[0-9]+ +running +0 +- +ready"
cp "$state/pids" "$tmp/pids.all"
for svc in scheduler watcher bus; do
    old=$(pid_of "$svc")
    kill -9 "$old"
    if tl_wait 20 restarted "$state" "$svc" 1 "$old"; then ok "$svc killed: restarted (restarts 1)"
    else bad "$svc killed: not restarted"; svc_row "$state" "$svc"; tail -5 "$state/logs/supervise.log"; fi
    check "$svc: the pid file has its new pid" bash -c "[[ -n '$(pid_of "$svc")' && '$(pid_of "$svc")' != '$old' ]]"
    cat "$state/pids" >>"$tmp/pids.all"
    check "$svc: the supervisor logged the death" grep -Eq \
        "^rayfleetctl: $svc \(pid $old\) killed by signal 9 \(Killed\) after [0-9]+ ms; restart 1 in 1000 ms" \
        "$state/logs/supervise.log"
    check "$svc: a RayCluster created afterwards becomes ready" make_cluster "after-$svc"
done
python3 - "$state/supervise.json" <<'PY' && ok "supervise.json: restarts and exit reasons" || bad "supervise.json: restarts and exit reasons"
import json, sys
d = json.load(open(sys.argv[1]))
s = {x["name"]: x for x in d["services"]}
assert d["ended"] == "" and d["supervisor"]["detached"] is True, d
for n in ("scheduler", "watcher", "bus"):
    assert s[n]["restarts"] == 1 and s[n]["state"] == "running", s[n]
    assert s[n]["last_exit"] == "killed by signal 9 (Killed)" and s[n]["delay_ms"] == 1000, s[n]
    assert s[n]["health_port"] > 0 and s[n]["pid"] > 0, s[n]
assert s["submitter"]["restarts"] == 0 and s["kubesim"]["fatal"] is True, s
PY
"$ctl" down --state-dir "$state" >"$tmp/down.out" 2>&1
check "down exits 0" test $? -eq 0
has "down stops the supervisor first, then through it the rest" "$(cat "$tmp/down.out")" \
    "^rayfleetctl: stopped rayfleetctl \(pid $sup\)" "stopped scheduler \(pid [0-9]+\) through the supervisor"
check "down leaves no process (old pids and restarted ones)" gone $(awk '{print $2}' "$tmp/pids.all")
check "down removed the pid file" test ! -e "$state/pids"
has "status after down: stopped, no supervisor" "$(svc_row "$state" scheduler; "$ctl" status --state-dir "$state" 2>&1)" \
    "^scheduler +0 +stopped +1 +killed by signal 9" "no supervisor runs: nothing is restarted; it ended: stopped by a signal"

# --- 2. a service that dies at once on every start: crash-looping ------------------------------
fake="$tmp/fakebin"
mkdir -p "$fake"
ln -s "$bin/kubesim" "$fake/kubesim"
ln -s "$bin/rayfleet-bus" "$fake/rayfleet-bus"
cat >"$fake/rayfleet-scheduler" <<'SH'
#!/usr/bin/env bash
if [[ "${1:-}" == --help ]]; then
    printf 'Options:\n  --bus.endpoint TEXT\n  --kubeconfig FILE\n  --state-dir DIR\n  --log-level LEVEL\n'
    exit 0
fi
[[ -e "$FAKE_BROKEN" ]] && { echo "fatal: config: broken on purpose"; exit 3; }
exec sleep 1000
SH
chmod +x "$fake/rayfleet-scheduler"
fs="$tmp/fstate"
tl_states+=("$fs")
FAKE_BROKEN="$tmp/broken" "$ctl" up --sim --detach --bin-dir "$fake" --state-dir "$fs" >/dev/null 2>"$tmp/fake.err"
check "up with a stand-in scheduler" test $? -eq 0
touch "$tmp/broken"
kill -9 "$(pid_of scheduler "$fs/pids")"
crashloop() { [[ $(svc_row "$fs" scheduler) =~ ^scheduler\ +0\ +crash-looping\ \(restart\ in\ [0-9]+s\)\ +([0-9]+)\ +exited\ with\ status\ 3 ]]; }
if tl_wait 30 crashloop; then ok "status: crash-looping"; else bad "status: crash-looping"; svc_row "$fs" scheduler; fi
has "the delays grow: 1 s, 2 s, 4 s" "$(cat "$fs/logs/supervise.log")" \
    "scheduler \(pid [0-9]+\) killed by signal 9 \(Killed\) after [0-9]+ ms; restart 1 in 1000 ms;" \
    "scheduler \(pid [0-9]+\) exited with status 3 after [0-9]+ ms; restart 2 in 2000 ms;" \
    "scheduler \(pid [0-9]+\) exited with status 3 after [0-9]+ ms; restart 3 in 4000 ms \(crash-looping\)" \
    "  \| fatal: config: broken on purpose"
python3 - "$fs/supervise.json" <<'PY' && ok "supervise.json: crash-looping, streak and next delay" || bad "supervise.json: crash-looping, streak and next delay"
import json, sys
s = {x["name"]: x for x in json.load(open(sys.argv[1]))["services"]}["scheduler"]
assert s["state"] == "crash-looping" and s["streak"] >= 3 and s["pid"] == 0, s
assert s["delay_ms"] == 1000 * 2 ** (s["streak"] - 1) and s["next_restart_ms"] > 0, s
assert s["last_exit"] == "exited with status 3", s
PY
rm -f "$tmp/broken"
fixed() { [[ $(svc_row "$fs" scheduler) =~ ^scheduler\ +[1-9][0-9]*\ +running\ +[3-9]\ +exited\ with\ status\ 3 ]]; }
if tl_wait 30 fixed; then ok "mended: running again at the next try"; else bad "mended: running again"; svc_row "$fs" scheduler; fi
cp "$fs/pids" "$tmp/pids.fake"
"$ctl" down --state-dir "$fs" >/dev/null 2>&1
check "down after a crash loop leaves no process" gone $(awk '{print $2}' "$tmp/pids.fake")

# --- 3. foreground: a service restarted, kubesim's death stops the set ------------------------
fg_state="$tmp/fg"
tl_states+=("$fg_state")
"$ctl" up --sim --state-dir "$fg_state" --timeout 60s >"$tmp/fg.out" 2>&1 &
fg=$!
tl_wait 60 grep -q "Ctrl-C stops everything" "$tmp/fg.out"
check "foreground up becomes ready" grep -q "a service that dies is restarted; Ctrl-C stops everything" "$tmp/fg.out"
old=$(pid_of watcher "$fg_state/pids")
kill -9 "$old"
if tl_wait 20 restarted "$fg_state" watcher 1 "$old"; then ok "foreground: the killed watcher is restarted"
else bad "foreground: the killed watcher is restarted"; tail -5 "$tmp/fg.out"; fi
check "foreground up still runs" bash -c "kill -0 $fg"
has "foreground status: supervised in the foreground" "$("$ctl" status --state-dir "$fg_state" 2>&1)" \
    "^Services \(supervised by rayfleetctl pid $fg, foreground"
cp "$fg_state/pids" "$tmp/pids.fg"
kill -9 "$(pid_of kubesim "$fg_state/pids")"
wait "$fg"
rc=$?
check "kubesim killed: foreground up exits 1" test $rc -eq 1
has "kubesim killed: up says why the set stopped" "$(cat "$tmp/fg.out")" \
    "kubesim \(pid [0-9]+\) killed by signal 9 \(Killed\): the simulated cluster's state is lost .*, so the set was stopped" \
    "rayfleetctl: stopping everything"
check "kubesim killed: no process left" gone $(awk '$1 != "rayfleetctl" {print $2}' "$tmp/pids.fg")
has "status after kubesim's death says so" "$("$ctl" status --state-dir "$fg_state" 2>&1)" \
    "it ended: kubesim \(pid [0-9]+\) killed by signal 9"

tl_summary
