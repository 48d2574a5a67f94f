#!/usr/bin/env bash
# bench-fedrun: issue 16's federation run, measured: N RayJobs submitted to the management cluster
# of `rayfleetctl up --sim --members 4` (members of 1, 2, 3 and 4 nodes: 32 CPU each), from three
# tenants with weights 1:2:3 and CPU quotas, a backlog larger than the fleet; one member stopped
# for STOP_S seconds a third of the way through. Prints one table:
#   - time to all Complete, RayJobs per member (placed by capacity);
#   - the largest use/allocatable seen per member (sampled every SAMPLE_S seconds; a member over
#     its capacity would show > 1);
#   - statuses: management object = member copy, checked for every RayJob at the end and for a
#     sample of RAYJOBS/20 during the run (a sample that differs is counted: the mirror is in
#     flight);
#   - duplicates: Ray job submissions accepted over every member's simulated heads, against N
#     (each RayJob submits once: more would be a job run twice);
#   - placements on the stopped member after it stopped answering (expected 0 once the watcher's
#     probe says so, FLEET_HEALTHY_MS);
#   - tenants: each tenant's share of the CPU its admitted RayJobs hold, averaged over the samples
#     taken while every tenant had waiting work, against its weight's share, and its peak against
#     its quota;
#   - status mirror latency: each management status write's time minus that of the member
#     submitter's status write it copies (audit rows of both), p50/p99.
# Usage: bench/fedrun.sh [BUILD_DIR]   env: RAYJOBS (default 1000), SLEEP_S (10), STOP_S (20),
#        SAMPLE_S (2), MAX_S (900), FEDRUN_PAUSE (1: the backlog is created while the placer is
#        paused, see below; 0: while it runs), ASSERT=1 (exit 1 when a Done-when figure is not met: the CI run
#        integration.fedrun uses it with a small N)
set -uo pipefail
build=${1:-build}
ctl=$build/bin/rayfleetctl
n=${RAYJOBS:-1000}
sleep_s=${SLEEP_S:-10}
stop_s=${STOP_S:-20}
sample_s=${SAMPLE_S:-2}
max_s=${MAX_S:-900}
[[ -x $ctl ]] || { echo "bench-fedrun: no $ctl (build first)" >&2; exit 2; }
command -v kubectl >/dev/null && command -v python3 >/dev/null && command -v sqlite3 >/dev/null ||
    { echo "bench-fedrun: needs kubectl, python3 and sqlite3" >&2; exit 2; }
tmp=$(mktemp -d /tmp/rffedrun.XXXXXX)
state=$tmp/state
cleanup() { "$ctl" down --state-dir "$state" >/dev/null 2>&1; [[ ${FEDRUN_KEEP:-0} == 1 ]] && echo "kept $tmp" >&2 || rm -rf "$tmp"; }
trap cleanup EXIT
kcx() { local c=$1; shift; kubectl --kubeconfig "$state/kubeconfig" --context "$c" --cache-dir "$tmp/kcache" "$@"; }

"$ctl" up --sim --members 4 --member-nodes 1,2,3,4 --detach --state-dir "$state" --timeout 90s \
    >/dev/null 2>"$tmp/up.err" || { cat "$tmp/up.err" >&2; exit 1; }
cat >>"$state/federation.yaml" <<'EOF'
  queues:
    - {name: tenant-a, namespaces: [tenant-a], weight: 1, quota: {cpu: 90}}
    - {name: tenant-b, namespaces: [tenant-b], weight: 2, quota: {cpu: 150}}
    - {name: tenant-c, namespaces: [tenant-c], weight: 3, quota: {cpu: 210}}
EOF
old=$(awk '$1 == "scheduler" {print $2}' "$state/pids")
kill -TERM "$old"
for _ in $(seq 150); do
    p=$(awk '$1 == "scheduler" {print $2}' "$state/pids")
    [[ -n $p && $p != "$old" ]] && kill -0 "$p" 2>/dev/null && break
    sleep 0.2
done
for c in management member-1 member-2 member-3 member-4; do
    for t in tenant-a tenant-b tenant-c; do kcx "$c" create namespace "$t" >/dev/null; done
done
sleep 2 # the restarted placer's first round

# the RayJobs: head 1 CPU, one worker 1 CPU, the default submitter (500m): 2.5 CPU each
python3 - "$n" "$sleep_s" "$tmp/jobs" <<'PY'
import json, os, sys
n, sleep_s, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out)
def c(name, cpu):
    return {"name": name, "image": "rayproject/ray:2.46.0",
            "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}, "limits": {"cpu": cpu, "memory": "1Gi"}}}
items = []
for i in range(n):
    t = "tenant-" + "abc"[i % 3]
    items.append({"apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": "fr-%05d" % i, "namespace": t},
        "spec": {"entrypoint": "python x.py FAKE:sleep=%d" % sleep_s, "shutdownAfterJobFinishes": True,
                 "ttlSecondsAfterFinished": 0,
                 "rayClusterSpec": {"rayVersion": "2.46.0",
                     "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [c("ray-head", "1")]}}},
                     "workerGroupSpecs": [{"groupName": "w", "replicas": 1, "minReplicas": 1, "maxReplicas": 1,
                         "rayStartParams": {}, "template": {"spec": {"containers": [c("ray-worker", "1")]}}}]}}})
for b in range(0, n, 100):
    with open(os.path.join(out, "b%05d.json" % b), "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items[b:b + 100]}, f)
PY

# The backlog is there before the first admission: the placer is paused (SIGSTOP) while the
# RayJobs are created, as a queue that already holds a backlog when capacity frees up. Created
# while it runs, the first RayJobs of every tenant would all fit and be admitted alike, and the
# shares would reach the weights only as those finish (FEDRUN_PAUSE=0 measures that).
placer=$(awk '$1 == "scheduler" {print $2}' "$state/pids")
[[ ${FEDRUN_PAUSE:-1} == 1 ]] && kill -STOP "$placer"
t0=$(date +%s.%N)
for f in "$tmp"/jobs/*.json; do kcx management create -f "$f" >/dev/null || { kill -CONT "$placer"; exit 1; }; done
t_created=$(date +%s.%N)
kill -CONT "$placer"

# sampler: members' use, tenants' admitted CPU, a status sample; member-4 stopped a third of the way
python3 - "$ctl" "$state" "$n" "$sample_s" "$max_s" "$stop_s" "$t0" "$tmp" >"$tmp/run.json" <<'PY'
import json, random, subprocess, sys, time
ctl, state, n, sample_s, max_s, stop_s, t0, tmp = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
kc = ["kubectl", "--kubeconfig", state + "/kubeconfig", "--cache-dir", tmp + "/kcache", "--request-timeout=5s"]
def get(ctx, what, ns=None):
    cmd = kc + ["--context", ctx, "get", what, "-o", "json"] + (["-n", ns] if ns else ["-A"])
    r = subprocess.run(cmd, capture_output=True, text=True)
    return json.loads(r.stdout)["items"] if r.returncode == 0 else None
def members():
    out = subprocess.run([ctl, "members", "--state-dir", state], capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if f and f[0].startswith("member-") and len(f) >= 8:
            rows[f[0]] = f
    return rows
def cpu(q):  # "3/128" -> (3.0, 128.0); millicores as "500m"
    def one(s):
        return float(s[:-1]) / 1000 if s.endswith("m") else float(s)
    a, b = q.split("/")
    return one(a), one(b)
TERM = ("Complete", "Failed")
res = {"peak": {}, "samples": 0, "shares": [], "tenant_peak": {}, "status_checked": 0,
       "status_differ": 0, "stopped_at": None, "started_at": None, "done_at": None}
stopped = False
while time.time() - t0 < max_s:
    items = get("management", "rayjobs")
    if items is None:
        time.sleep(sample_s); continue
    done = sum(1 for o in items if o.get("status", {}).get("jobDeploymentStatus") in TERM)
    for name, f in members().items():
        u, a = cpu(f[2])
        if a > 0:
            res["peak"][name] = max(res["peak"].get(name, 0), u / a)
        pu, pa = [float(x) for x in f[5].split("/")]
        if pa > 0:
            res["peak"][name + "/pods"] = max(res["peak"].get(name + "/pods", 0), pu / pa)
    held, waiting = {}, {}
    for o in items:
        t = o["metadata"]["namespace"]
        placed = "rayfleet.io/placed-on" in o["metadata"].get("annotations", {})
        st = o.get("status", {}).get("jobDeploymentStatus")
        if placed and st not in TERM:
            held[t] = held.get(t, 0) + 2.5
        elif not placed:
            waiting[t] = waiting.get(t, 0) + 1
    for t, v in held.items():
        res["tenant_peak"][t] = max(res["tenant_peak"].get(t, 0), v)
    if len(waiting) == 3 and sum(held.values()) > 0:
        tot = sum(held.values())
        res["shares"].append({t: held.get(t, 0) / tot for t in ("tenant-a", "tenant-b", "tenant-c")})
    # a status sample: the copy first, then the management object
    placed = [o for o in items if "rayfleet.io/placed-on" in o["metadata"].get("annotations", {})]
    for o in random.sample(placed, min(len(placed), max(1, n // 20 // 10))):
        m = o["metadata"]["annotations"]["rayfleet.io/placed-on"]
        ns, nm = o["metadata"]["namespace"], o["metadata"]["name"]
        r1 = subprocess.run(kc + ["--context", m, "get", "rayjob", nm, "-n", ns, "-o", "json"], capture_output=True, text=True)
        r2 = subprocess.run(kc + ["--context", "management", "get", "rayjob", nm, "-n", ns, "-o", "json"], capture_output=True, text=True)
        if r1.returncode or r2.returncode:
            continue
        res["status_checked"] += 1
        if json.loads(r1.stdout).get("status") != json.loads(r2.stdout).get("status"):
            res["status_differ"] += 1
    res["samples"] += 1
    if not stopped and done >= n // 3:
        subprocess.run([ctl, "member", "stop", "member-4", "--state-dir", state], capture_output=True)
        res["stopped_at"] = time.time(); stopped = True
    if stopped and res["started_at"] is None and time.time() - res["stopped_at"] >= stop_s:
        res["started_at"] = time.time()  # before: it answers as soon as it is continued
        subprocess.run([ctl, "member", "start", "member-4", "--state-dir", state], capture_output=True)
    if done == n and (res["started_at"] or not stopped):
        res["done_at"] = time.time(); break
    time.sleep(sample_s)
if stopped and res["started_at"] is None:
    res["started_at"] = time.time()
    subprocess.run([ctl, "member", "start", "member-4", "--state-dir", state], capture_output=True)
json.dump(res, sys.stdout)
PY
sleep 2 # the last mirrors and audit batches

# the end: every RayJob's status against its copy, placements per member, submissions, latency
python3 - "$state" "$n" "$tmp" "$t0" "$t_created" "$tmp/run.json" "${ASSERT:-0}" <<'PY'
import json, os, sqlite3, subprocess, sys, urllib.request
state, n, tmp, t0, t_created, runf, do_assert = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), sys.argv[6], sys.argv[7] == "1"
run = json.load(open(runf))
kc = ["kubectl", "--kubeconfig", state + "/kubeconfig", "--cache-dir", tmp + "/kcache", "--request-timeout=5s"]
def get(ctx):
    r = subprocess.run(kc + ["--context", ctx, "get", "rayjobs", "-A", "-o", "json"], capture_output=True, text=True)
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in json.loads(r.stdout)["items"]} if r.returncode == 0 else {}
mg = get("management")
copies = {m: get(m) for m in ("member-1", "member-2", "member-3", "member-4")}
per, complete, equal, missing = {}, 0, 0, 0
for k, o in mg.items():
    st = o.get("status", {})
    complete += st.get("jobDeploymentStatus") == "Complete"
    m = o["metadata"].get("annotations", {}).get("rayfleet.io/placed-on")
    per[m] = per.get(m, 0) + 1
    c = copies.get(m, {}).get(k)
    if c is None:
        missing += 1
    elif c.get("status") == st:
        equal += 1
# copies deleted by nothing: every copy is still there (no TTL deletes the RayJob itself)
accepted = attempts = 0
for m in ("member-1", "member-2", "member-3", "member-4"):
    url = open(os.path.join(state, "kubesim-%s.ready" % m)).read().strip()
    d = json.load(urllib.request.urlopen(url + "/kubesim/ray-submissions", timeout=10))
    accepted += d["accepted"]; attempts += d["attempts"]
# stopped member: placements onto member-4 between its stop + 6 s and its start
db = sqlite3.connect("file:%s/scheduler.db?mode=ro" % state, uri=True)
late = 0
if run["stopped_at"]:
    lo, hi = (run["stopped_at"] + 6) * 1000, run["started_at"] * 1000
    late = db.execute("SELECT count(*) FROM audit WHERE verb = 'place' AND message LIKE 'placed on member member-4%' AND time_ms BETWEEN ? AND ?", (lo, hi)).fetchone()[0]
moved = db.execute("SELECT count(*) FROM audit WHERE verb = 'unplace'").fetchone()[0]
# mirror latency: management status write - the latest member submitter status write before it
lat = []
mrows = db.execute("SELECT target_namespace, target_name, time_ms, cause_event_id FROM audit WHERE verb = 'status' AND target_kind = 'RayJob' AND result_status = 200 ORDER BY time_ms").fetchall()
subs = {}
for m in ("member-1", "member-2", "member-3", "member-4"):
    f = os.path.join(state, "%s.submitter.db" % m)
    if not os.path.exists(f):
        continue
    s = sqlite3.connect("file:%s?mode=ro" % f, uri=True)
    for ns, nm, t in s.execute("SELECT target_namespace, target_name, time_ms FROM audit WHERE verb = 'status' AND target_kind = 'RayJob' AND result_status = 200"):
        subs.setdefault((ns, nm), []).append(t)
import bisect
for k in subs:
    subs[k].sort()
watch = []  # of which: the member's write to the watcher's event (the cause's event id is the
           # watcher's receive time in microseconds)
for ns, nm, t, ev in mrows:
    ts = subs.get((ns, nm))
    if not ts:
        continue
    i = bisect.bisect_right(ts, t)
    if i:
        lat.append(t - ts[i - 1])
        if ev:
            watch.append(ev / 1000.0 - ts[i - 1])
lat.sort()
watch.sort()
def pct(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
shares = run["shares"]
w = {"tenant-a": 1 / 6, "tenant-b": 2 / 6, "tenant-c": 3 / 6}
quota = {"tenant-a": 90, "tenant-b": 150, "tenant-c": 210}
avg = {t: sum(s[t] for s in shares) / len(shares) for t in w} if shares else {}
dev = max(abs(avg[t] - w[t]) / w[t] for t in w) if avg else float("nan")
done_s = (run["done_at"] or 0) - t0
print("bench-fedrun: %d RayJobs (head 1 CPU + worker 1 CPU + submitter 500m, FAKE:sleep), 4 members of 1/2/3/4 nodes (32 CPU each), tenants 1:2:3, backlog created %s" % (n, "while the placer was paused" if os.environ.get("FEDRUN_PAUSE", "1") == "1" else "while it ran"))
print()
print("| figure | value | target |")
print("|---|---|---|")
print("| created (s) / all Complete (s) | %.1f / %.1f | |" % (t_created - t0, done_s))
print("| Complete on the management cluster | %d / %d | all |" % (complete, n))
print("| RayJobs per member | %s | by capacity |" % ", ".join("%s %d" % (m, per.get(m, 0)) for m in ("member-1", "member-2", "member-3", "member-4")))
print("| peak CPU use/allocatable per member | %s | <= 1 |" % ", ".join("%s %.2f" % (m, run["peak"].get(m, 0)) for m in ("member-1", "member-2", "member-3", "member-4")))
print("| peak pods/allocatable per member | %s | <= 1 |" % ", ".join("%s %.2f" % (m, run["peak"].get(m + "/pods", 0)) for m in ("member-1", "member-2", "member-3", "member-4")))
print("| status = copy's at the end | %d / %d (no copy: %d) | all |" % (equal, n, missing))
print("| status samples during the run, differing (mirror in flight) | %d of %d | |" % (run["status_differ"], run["status_checked"]))
print("| Ray job submissions accepted (attempts) over all members | %d (%d) | %d |" % (accepted, attempts, n))
print("| placements on member-4 while stopped (after 6 s) / moved off it | %d / %d | 0 / - |" % (late, moved))
print("| tenant CPU shares while all wait (a/b/c), %d samples | %s | 0.17/0.33/0.50 within 5%% |" % (len(shares), "/".join("%.3f" % avg.get(t, float("nan")) for t in w)))
print("| largest share deviation from the weights | %.1f%% | <= 5%% |" % (dev * 100))
print("| peak admitted CPU per tenant (quota) | %s | <= quota |" % ", ".join("%s %.1f (%d)" % (t, run["tenant_peak"].get(t, 0), quota[t]) for t in w))
print("| status mirror latency p50 / p99 (ms), %d writes | %s / %s | |" % (len(lat), pct(0.5), pct(0.99)))
wp = lambda p: "%.0f" % watch[min(len(watch) - 1, int(p * len(watch)))] if watch else "nan"
print("| of which member write -> watcher event p50 / p99 (ms) | %s / %s | |" % (wp(0.5), wp(0.99)))
fails = []
if complete != n: fails.append("not all Complete")
if any(run["peak"].get(m, 0) > 1.0 for m in run["peak"]): fails.append("a member over capacity")
if equal != n: fails.append("statuses differ at the end")
if accepted != n: fails.append("submissions accepted != RayJobs")
if late: fails.append("placements on a stopped member")
if any(run["tenant_peak"].get(t, 0) > quota[t] for t in quota): fails.append("a quota exceeded")
if fails:
    print("\nnot met: " + "; ".join(fails))
sys.exit(1 if (fails and do_assert) else 0)
PY
