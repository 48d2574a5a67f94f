#!/usr/bin/env bash
# integration.rayjob-kill (issue 12): the RayJob controller survives SIGKILL without submitting
# a Ray job twice or leaving a RayJob stuck.
#   rayjobkill_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
# `rayfleetctl up --sim --detach` starts the fleet; N RayJobs are created in batches (about 45%
# K8sJobMode, 45% HTTPMode, 10% HTTPMode whose entrypoint exits 1; head-only clusters with small
# requests; `python x.py FAKE:sleep=S` entrypoints; shutdownAfterJobFinishes). Meanwhile
# rayfleet-submitter is killed with SIGKILL every 1-4 s (random) and started again with the same
# argv (read from /proc/PID/cmdline; the pid file STATE/pids is updated so `down` still stops
# it). At the end every RayJob must be terminal before its deadline (Complete; Failed with
# reason AppFailed for the failing entrypoints) and, from kubesim's GET
# /kubesim/ray-submissions, its status.jobId accepted exactly once, and the total accepted over
# every simulated head equal to N (no other submission id accepted).
#
# Environment (all optional):
#   RAYJOB_KILL_N          RayJobs (default 1000: about 2 minutes in all on a 2-core machine,
#                          all terminal about 115 s after the first create, 40+ kills)
#   RAYJOB_KILL_DEADLINE_S seconds after the last create for every RayJob to be terminal
#                          (default 120 + N/4)
#   RAYJOB_KILL_MIN_KILLS  kills required (default 10; killing goes on until reached)
#   RAYJOB_KILL_SEED       RANDOM seed (default: the pid), printed for a rerun
#   RAYJOB_KILL_KEEP=1     keep the state dir (logs, submitter.db) and the fleet is still stopped
# Prints "N passed, M failed" and a summary line; exits non-zero on any failure.
set -uo pipefail
ctl=${1:?usage: rayjobkill_test.sh PATH/TO/rayfleetctl}
n=${RAYJOB_KILL_N:-1000}
deadline_s=${RAYJOB_KILL_DEADLINE_S:-$((120 + n / 4))}
min_kills=${RAYJOB_KILL_MIN_KILLS:-10}
seed=${RAYJOB_KILL_SEED:-$$}
RANDOM=$seed
tmp=$(mktemp -d /tmp/rfkill.XXXXXX)
state="$tmp/state"
# shellcheck source=../cli/testlib.sh
source "$(dirname "$0")/../cli/testlib.sh"

killer=
creator=
cleanup() {
    [[ -n $killer ]] && kill "$killer" 2>/dev/null && wait "$killer" 2>/dev/null
    [[ -n $creator ]] && kill "$creator" 2>/dev/null && wait "$creator" 2>/dev/null
    "$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1 || true
    if [[ ${RAYJOB_KILL_KEEP:-} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

k() { kubectl --kubeconfig "$state/kubeconfig" --cache-dir "$tmp/kcache" --request-timeout 30s "$@"; }
now() { date +%s; }
echo "# N=$n deadline ${deadline_s}s min kills $min_kills seed $seed"

# --- the fleet ------------------------------------------------------------------------------
nodes=$((n / 40 + 2))
if ! "$ctl" up --sim --detach --state-dir "$state" --nodes "$nodes" --timeout 120s \
    >/dev/null 2>"$tmp/up.err"; then
    bad "up --sim --detach --nodes $nodes"; sed 's/^/    | /' "$tmp/up.err"; tl_summary; exit 1
fi
ok "up --sim --detach --nodes $nodes"
if ! grep -q '^submitter ' "$state/pids"; then
    bad "rayfleet-submitter started"; sed 's/^/    | /' "$tmp/up.err"; tl_summary; exit 1
fi
# This script restarts the submitter itself, at moments it chooses: end the supervisor that
# `up` leaves behind (cli/supervise.h), which would restart it too (and with growing delays).
# The services go on unsupervised; `down` still stops them through the pid file.
sup=$(awk '$1 == "rayfleetctl" {print $2}' "$state/pids")
[[ -n $sup ]] && kill -9 "$sup"
url=$(cat "$state/kubesim.ready")
# subs [ID]: "attempts accepted heads submitters" from GET /kubesim/ray-submissions[?submissionId=ID]
subs() {
    curl -s --max-time 10 "$url/kubesim/ray-submissions${1:+?submissionId=$1}" | python3 -c \
        'import json,sys; d=json.load(sys.stdin); print(d["attempts"], d["accepted"], d["heads"], d["submitters"])'
}
read -r a0 acc0 _ _ < <(subs)
has "no Ray job submitted before the RayJobs" "attempts $a0 accepted $acc0" '^attempts 0 accepted 0$'

# --- the RayJobs (a List per batch of 50) ------------------------------------------------------
# kt-NNNN; mode by index: i%10==9 HTTPMode with exit=1 (expected Failed/AppFailed), odd
# K8sJobMode, even HTTPMode; sleep 1-4 s.
python3 - "$n" "$tmp/batches" <<'PY'
import json, os, sys
n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out)
def container(name):
    return {"name": name, "image": "rayproject/ray:2.46.0",
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}}}
items = []
for i in range(n):
    fail = i % 10 == 9
    mode = "HTTPMode" if fail or i % 2 == 0 else "K8sJobMode"
    fake = "sleep=%d" % (1 + i % 4) + (",exit=1" if fail else "")
    head = container("ray-head")
    head["ports"] = [{"containerPort": 6379, "name": "gcs-server"},
                     {"containerPort": 8265, "name": "dashboard"},
                     {"containerPort": 10001, "name": "client"}]
    items.append({"apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": "kt-%04d" % i, "labels": {"rayfleet.io/test": "rayjob-kill",
                                                       "expect": "Failed" if fail else "Complete"}},
        "spec": {"entrypoint": "python x.py FAKE:" + fake, "submissionMode": mode,
                 "shutdownAfterJobFinishes": True, "ttlSecondsAfterFinished": 0,
                 "rayClusterSpec": {"rayVersion": "2.46.0",
                     "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [head]}}},
                     "workerGroupSpecs": [{"groupName": "w", "replicas": 0, "minReplicas": 0,
                         "maxReplicas": 1, "rayStartParams": {},
                         "template": {"spec": {"containers": [container("ray-worker")]}}}]}}})
for b in range(0, n, 50):
    with open(os.path.join(out, "b%05d.json" % b), "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items[b:b + 50]}, f)
PY

t0=$(now)
(
    for f in "$tmp"/batches/b*.json; do
        k create -f "$f" >/dev/null 2>>"$tmp/create.err" || echo "create failed: $f" >>"$tmp/create.err"
        sleep 0.$((RANDOM % 10))
    done
    now >"$tmp/created"
) &
creator=$!

# --- the killer -------------------------------------------------------------------------------
# Kills the submitter of the pid file with SIGKILL, waits for it to be gone, starts the same argv
# again (log appended) and rewrites its pid file line; one line per kill in $tmp/kills.
proc_gone() { [[ ! -e /proc/$1 ]] || [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) == Z ]]; }
kill_once() {
    local pid argv=() t
    pid=$(awk '$1 == "submitter" {print $2}' "$state/pids")
    [[ -n $pid && -r /proc/$pid/cmdline ]] || { echo "no submitter pid" >>"$tmp/killer.err"; return 1; }
    mapfile -d '' -t argv <"/proc/$pid/cmdline"
    [[ ${#argv[@]} -gt 0 ]] || { echo "empty cmdline of $pid" >>"$tmp/killer.err"; return 1; }
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    for _ in $(seq 100); do proc_gone "$pid" && break; sleep 0.05; done
    proc_gone "$pid" || { echo "pid $pid survived SIGKILL" >>"$tmp/killer.err"; return 1; }
    echo "$(date +%s.%N) killed $pid" >>"$tmp/kills"
    echo "--- rayjobkill: SIGKILL pid $pid, restarting ---" >>"$state/logs/submitter.log"
    ((RANDOM % 3 == 0)) && sleep 0.$((RANDOM % 10))
    (setsid "${argv[@]}" </dev/null >>"$state/logs/submitter.log" 2>&1 & echo $! >"$tmp/newpid")
    pid=$(cat "$tmp/newpid")
    t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20)
    awk -v p="$pid" -v s="${t:-0}" '$1 == "submitter" {$2 = p; $3 = s} {print}' "$state/pids" \
        >"$state/pids.kt" && mv "$state/pids.kt" "$state/pids"
}
(
    kills=0
    while [[ ! -e $tmp/stop || $kills -lt $min_kills ]]; do
        sleep "$((1 + RANDOM % 3)).$((RANDOM % 10))"
        kill_once && kills=$((kills + 1))
    done
) &
killer=$!

# --- wait for every RayJob to be terminal -------------------------------------------------------
# states: "name deploymentStatus reason jobId expect" per RayJob
snapshot() {
    k get rayjobs -l rayfleet.io/test=rayjob-kill -o json 2>>"$tmp/get.err" | python3 -c '
import json, sys
for o in json.load(sys.stdin)["items"]:
    s = o.get("status", {})
    print(o["metadata"]["name"], s.get("jobDeploymentStatus") or "-", s.get("reason") or "-",
          s.get("jobId") or "-", o["metadata"]["labels"]["expect"])' >"$tmp/states.new" &&
        mv "$tmp/states.new" "$tmp/states"
}
t_done=
last=
while :; do
    sleep 3
    snapshot
    total=$(wc -l <"$tmp/states" 2>/dev/null || echo 0)
    term=$(awk '$2 == "Complete" || $2 == "Failed"' "$tmp/states" 2>/dev/null | wc -l)
    line="$(($(now) - t0))s: $total created, $term terminal, $(cat "$tmp/kills" 2>/dev/null | wc -l) kills"
    [[ $line != "$last" ]] && echo "# $line"
    last=$line
    if [[ -e $tmp/created && $total -eq $n && $term -eq $n ]]; then t_done=$(now); break; fi
    if [[ -e $tmp/created ]] && (($(now) > $(cat "$tmp/created") + deadline_s)); then break; fi
done
touch "$tmp/stop"
wait "$killer"
killer=
wait "$creator"
creator=
kills=$(cat "$tmp/kills" 2>/dev/null | wc -l)

check_empty() { # NAME FILE: the file is absent or empty (else shown)
    if [[ ! -s $2 ]]; then ok "$1"; else bad "$1"; sed 's/^/    | /' "$2" | head -20; fi
}
check_empty "every RayJob created" "$tmp/create.err"
check_empty "the killer never failed" "$tmp/killer.err"
if ((kills >= min_kills)); then ok "rayfleet-submitter killed $kills times"; else bad "only $kills kills"; fi
if [[ -n $t_done ]]; then
    ok "all $n RayJobs terminal $((t_done - t0)) s after the first create"
else
    bad "RayJobs not terminal ${deadline_s}s after the last create:"
    awk '$2 != "Complete" && $2 != "Failed"' "$tmp/states" | head -20 | sed 's/^/    | /'
fi
awk '$2 != $5 || ($2 == "Failed" && $3 != "AppFailed")' "$tmp/states" >"$tmp/unexpected"
check_empty "each RayJob Complete, or Failed/AppFailed where its entrypoint exits 1" "$tmp/unexpected"

# --- one accepted submission per RayJob -----------------------------------------------------------
# "name jobId attempts accepted" per RayJob (one process: N requests)
python3 - "$url" "$tmp/states" >"$tmp/subs" <<'PY'
import json, sys, urllib.parse, urllib.request
url, states = sys.argv[1], sys.argv[2]
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for line in open(states):
    name, _, _, sid, _ = line.split()
    if sid == "-":
        print(name, "no-jobId 0 0")
        continue
    q = urllib.parse.urlencode({"submissionId": sid})
    d = json.load(http.open("%s/kubesim/ray-submissions?%s" % (url, q), timeout=10))
    print(name, sid, d["attempts"], d["accepted"])
PY
awk '$4 != 1' "$tmp/subs" >"$tmp/dups"
check_empty "every RayJob's submission id accepted exactly once" "$tmp/dups"
ids=$(awk '{print $2}' "$tmp/subs" | sort -u | wc -l)
has "submission ids distinct" "ids $ids rows $(wc -l <"$tmp/subs")" "^ids $n rows $n$"
read -r att acc heads submitters < <(subs)
has "accepted over every head equals N (no other id accepted)" "accepted $acc" "^accepted $n$"
retried=$(awk '$3 > 1' "$tmp/subs" | wc -l)
if [[ -s $state/submitter.db ]] && command -v sqlite3 >/dev/null; then
    posts=$(sqlite3 "$state/submitter.db" "SELECT count(*) FROM audit WHERE verb = 'submit'" 2>/dev/null)
fi
dups=$(wc -l <"$tmp/dups")
took=NOT-REACHED
[[ -n $t_done ]] && took="$((t_done - t0))s"
echo "# summary: N=$n kills=$kills time-to-all-terminal=$took duplicates=$dups" \
    "attempts=$att accepted=$acc jobs-with-several-attempts=$retried" \
    "HTTPMode-POSTs-audited=${posts:-?} seed=$seed"
tl_summary
