#!/usr/bin/env bash
# make compose-test: docker-compose.yml end to end, from nothing.
#
# Builds the images (scripts/images.sh: the base image from Debian's packages when absent, then
# rayfleet:dev), brings the set up under a unique project name, applies examples/raycluster.yaml
# with the host's kubectl through the kubeconfig the set writes, and waits until it is ready. Then,
# for the scheduler and then the watcher: `docker kill` its container, scale the RayCluster's
# workers up with kubectl patch, `docker start` it again, and wait until the cluster converges;
# each time it checks that every group has exactly its replicas as pods and that the audit has no
# pod created twice and no more pod creations than pods (no duplicate). Finally `docker-compose
# down -v` and checks that no container, network or volume of the project is left. Any failing
# step fails the script; everything is removed on failure too (trap). Prints the timings.
#   COMPOSE_TEST_TIMEOUT  seconds each wait may take (default 180)
#   COMPOSE_TEST_KEEP=1   leave the set up on failure, for a look (then: docker-compose -p P down -v)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
timeout=${COMPOSE_TEST_TIMEOUT:-180}
project="rfct$$$(date +%s)"
dir="$top/.state/compose-test-$project"
kc="$dir/kubeconfig"
cluster=demo
ns=default
dc=(docker-compose -p "$project" -f "$top/docker-compose.yml")
t_start=$(date +%s)
timings=()

log() { echo "compose-test: $*"; }
fail() { echo "compose-test: FAIL: $*" >&2; exit 1; }
step_done() { # name start
    local s=$(($(date +%s) - $2))
    timings+=("$1: ${s}s")
    log "$1 (${s}s)"
}

cleaned=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ $cleaned -eq 0 ]]; then
        if [[ $rc -ne 0 ]]; then
            echo "compose-test: failed; the set's state and the last log lines:" >&2
            "${dc[@]}" ps >&2 || true
            "${dc[@]}" logs --no-color --tail 15 >&2 || true
        fi
        if [[ $rc -ne 0 && "${COMPOSE_TEST_KEEP:-}" == 1 ]]; then
            echo "compose-test: left up (COMPOSE_TEST_KEEP=1): ${dc[*]} down -v" >&2
        else
            "${dc[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
            rm -rf "$dir"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v docker-compose >/dev/null || fail "docker-compose is not installed"
command -v kubectl >/dev/null || fail "kubectl is not installed"

# A free host port for kubesim's published API (the kernel picks it; released before compose binds).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RAYFLEET_GID=$(id -g)
export RAYFLEET_COMPOSE_DIR="$dir" RAYFLEET_COMPOSE_PORT="$port" RAYFLEET_GID
install -d -m 2770 "$dir"

# Polls `cond` (a shell function name plus arguments) every 0.5 s until it succeeds or `timeout`
# seconds pass; then fails naming `what`.
wait_for() {
    local what=$1
    shift
    local deadline=$(($(date +%s) + timeout))
    until "$@"; do
        [[ $(date +%s) -lt $deadline ]] || fail "$what: not reached within ${timeout}s"
        sleep 0.5
    done
}

k() { kubectl --kubeconfig "$kc" "$@"; }

container() { # service -> its container id
    local id
    id=$("${dc[@]}" ps -q "$1")
    [[ -n "$id" ]] || fail "no container for service $1"
    echo "$id"
}

all_healthy() {
    local s st
    for s in kubesim bus watcher scheduler submitter serve-upgrade; do
        st=$(docker inspect -f '{{.State.Health.Status}}' "$(container "$s")" 2>/dev/null) || return 1
        [[ "$st" == healthy ]] || return 1
    done
}

healthy() { [[ $(docker inspect -f '{{.State.Health.Status}}' "$(container "$1")") == healthy ]]; }

# The RayCluster has `want` workers: its status says so, ready, and exactly want worker pods and
# one head pod exist, all Running.
converged() {
    local want=$1 st
    st=$(k get raycluster "$cluster" -n "$ns" \
        -o jsonpath='{.status.state}/{.status.desiredWorkerReplicas}/{.status.availableWorkerReplicas}' 2>/dev/null) || return 1
    [[ "$st" == "ready/$want/$want" ]] || return 1
    local workers heads
    workers=$(k get pods -n "$ns" -l "ray.io/cluster=$cluster,ray.io/group=workers" \
        --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l)
    heads=$(k get pods -n "$ns" -l "ray.io/cluster=$cluster,ray.io/node-type=head" \
        --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l)
    [[ $workers -eq $want && $heads -eq 1 ]]
}

# No duplicate pod: per group, pods (any phase) == replicas; in the scheduler's audit, no pod
# name created twice and exactly one successful creation per pod ever made (no deletion happens
# in this test, so the pods that exist are all the pods ever created).
check_no_duplicate() {
    local want=$1
    local all workers
    all=$(k get pods -n "$ns" -l "ray.io/cluster=$cluster" --no-headers | wc -l)
    workers=$(k get pods -n "$ns" -l "ray.io/cluster=$cluster,ray.io/group=workers" --no-headers | wc -l)
    [[ $workers -eq $want ]] || fail "group workers has $workers pods, want $want"
    [[ $all -eq $((want + 1)) ]] || fail "cluster $cluster has $all pods, want $((want + 1)) (head + $want workers)"
    local audit
    audit=$("${dc[@]}" exec -T scheduler rayfleetctl audit --state-dir /var/lib/rayfleet \
        --kind Pod --verb create --result ok --limit 100000 --output json) || fail "rayfleetctl audit in the scheduler container failed"
    WANT=$((want + 1)) AUDIT="$audit" python3 - <<'EOF' || fail "the audit shows a duplicate pod (above)"
import collections, json, os, sys
rows = json.loads(os.environ["AUDIT"])
ok = rows  # --result ok: the successful creations
names = collections.Counter(r["target_name"] for r in ok)
dups = [n for n, c in names.items() if c > 1]
want = int(os.environ["WANT"])
if dups:
    print("pods created twice:", dups, file=sys.stderr); sys.exit(1)
if len(ok) != want:
    print("successful pod creations: %d, want %d (%s)" % (len(ok), want, sorted(names)), file=sys.stderr); sys.exit(1)
EOF
}

# Kills `service`'s container, scales the workers to `want` while it is down, starts it again
# and waits for convergence; then checks no duplicate pod.
kill_scale_restart() {
    local service=$1 want=$2 t id
    t=$(date +%s)
    id=$(container "$service")
    docker kill "$id" >/dev/null
    [[ $(docker inspect -f '{{.State.Running}}' "$id") == false ]] || fail "$service still running after docker kill"
    k patch raycluster "$cluster" -n "$ns" --type=json \
        -p "[{\"op\":\"replace\",\"path\":\"/spec/workerGroupSpecs/0/replicas\",\"value\":$want}]" >/dev/null
    docker start "$id" >/dev/null
    wait_for "$service healthy again" healthy "$service"
    wait_for "RayCluster $cluster converged to $want workers after $service restarted" converged "$want"
    check_no_duplicate "$want"
    step_done "$service killed, workers scaled to $want, restarted, converged, no duplicate" "$t"
}

t=$(date +%s)
make -s images
step_done "images built (base image included when absent)" "$t"

t=$(date +%s)
"${dc[@]}" up -d >/dev/null 2>&1 || { "${dc[@]}" up -d; fail "docker-compose up -d failed"; }
wait_for "every service healthy" all_healthy
[[ -s "$kc" ]] || fail "the set did not write the host kubeconfig $kc"
step_done "docker-compose up, every service healthy" "$t"

# Every service runs as the image's non-root user.
for s in kubesim bus watcher scheduler submitter serve-upgrade; do
    uid=$("${dc[@]}" exec -T "$s" id -u)
    [[ "$uid" == 65532 ]] || fail "$s runs as uid $uid, want 65532"
done

t=$(date +%s)
k apply -f examples/raycluster.yaml >/dev/null
wait_for "RayCluster $cluster ready with 2 workers" converged 2
check_no_duplicate 2
step_done "examples/raycluster.yaml applied with kubectl, ready" "$t"

kill_scale_restart scheduler 4
kill_scale_restart watcher 5

t=$(date +%s)
"${dc[@]}" down -v --remove-orphans >/dev/null 2>&1 || fail "docker-compose down -v failed"
cleaned=1
left=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
[[ -z "$left" ]] || fail "containers of $project left after down: $left"
left=$(docker network ls -q --filter "label=com.docker.compose.project=$project")
[[ -z "$left" ]] || fail "networks of $project left after down: $left"
left=$(docker volume ls -q --filter "label=com.docker.compose.project=$project")
[[ -z "$left" ]] || fail "volumes of $project left after down: $left"
rm -rf "$dir"
step_done "docker-compose down -v: no container, network or volume left" "$t"

log "timings:"
printf '  %s\n' "${timings[@]}"
log "OK in $(($(date +%s) - t_start))s"
