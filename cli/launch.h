/*
 * launch: `rayfleetctl up` and `rayfleetctl down`.
 *
 * up: (with --sim) starts kubesim and waits for its ready file; installs the CRDs of deploy/crds
 * through the Kubernetes API when absent and waits until each is Established; then starts every
 * rayfleet service found beside rayfleetctl from a fixed list (bus, watcher, scheduler), naming the
 * ones not built. A service gets only the flags its --help lists: the standard --kubeconfig,
 * --state-dir and --log-level, the bus endpoints (ipc:// sockets in the state dir), and a free
 * port for --health.port / --metrics.port. Readiness: the watcher's (or any service's) /readyz
 * answers 200; the bus's ipc sockets exist; a service without a health port stays alive for
 * LAUNCH_SETTLE_MS. Logs go to STATE/logs/<name>.log and pids to STATE/pids (see proc.h).
 * Once all are ready the `up` process supervises them (supervise.h): a service that dies is
 * restarted with exponential backoff, and STATE/supervise.json says how each one is; kubesim's
 * death stops everything (exit 1). Foreground: SIGINT/SIGTERM stops everything (exit 0).
 * --detach: `up` forks before starting anything; the parent returns once the child reports all
 * ready (printing the kubeconfig path), and the child stays as the supervisor (its log in
 * STATE/logs/supervise.log). A service that dies while starting still fails `up`.
 *
 * Scheduler replicas: with --scheduler-replicas N (1..LAUNCH_MAX_SCHEDULER_REPLICAS, default 1)
 * and N > 1, replica i (0..N-1) is started as process "scheduler-<i>" (logs/scheduler-<i>.log)
 * with --replica scheduler/<i>, --audit.db scheduler-<i>.db and --shards.lease sqlite (the
 * replicas split the shards through STATE/leases.db; see services/scheduler/scheduler_main.c).
 * With N = 1 the scheduler is started exactly as before (no replica flags: STATE/scheduler.db).
 * rayfleetctl audit/explain/drift/sql read every replica's file as one (fleetdb.h); status lists
 * the replicas and their shards.
 *
 * Members (federation, issue 16): with --sim --members N (1..LAUNCH_MAX_MEMBERS) up starts the
 * management kubesim (process "kubesim", no nodes: nothing runs there) and N member kubesims
 * (process "kubesim-member-<i>", its own port; member i gets --nodes × i nodes, or the i-th
 * number of --member-nodes 4,8,16), each writing STATE/kubeconfig-<cluster> and
 * STATE/kubesim-<cluster>.ready (its URL). STATE/kubeconfig is then one kubeconfig with the
 * contexts "management", "member-1".."member-N" (current: management), and STATE/federation.yaml
 * describes the members in fed-design.md's `federation:` format. The CRDs are installed in every
 * cluster. One watcher watches all of them (--clusters management=KC@management,member-1=...,
 * plus --watch.nodes: Nodes and every pod's requests, for `rayfleetctl members`); per member one
 * scheduler, submitter and serve-upgrade, as processes "member-<i>.<service>" with --cluster and
 * --context member-<i> and --audit.db member-<i>.<service>.db (their leader Leases live in their
 * own member's API server). The management cluster gets one controller process: the scheduler
 * "scheduler" with --cluster and --context management and --federation.config
 * STATE/federation.yaml, the placer (services/scheduler/placer.h), which places what is applied
 * there on a member and mirrors its status back (up says so: LAUNCH_PLACED). Without --members
 * nothing of this happens.
 *
 * crds: the CRD step of up alone, against --kubeconfig. probe: a health check.
 *
 * down: stops what the pid file lists (SIGTERM, then SIGKILL after --timeout): the supervisor
 * first (it stops its children and restarts nothing), then whatever is left; removes the file;
 * idempotent.
 */
#ifndef RF_CLI_LAUNCH_H
#define RF_CLI_LAUNCH_H

#define LAUNCH_DEFAULT_STATE_DIR ".rayfleet" /* --state-dir default of every command */
#define LAUNCH_DEFAULT_NODES 4 /* --nodes default */
#define LAUNCH_MAX_NODES 1000 /* --nodes upper bound */
#define LAUNCH_DEFAULT_TIMEOUT_MS 60000 /* --timeout default of up */
#define LAUNCH_STOP_TIMEOUT_MS 10000 /* --timeout default of down (SIGTERM -> SIGKILL) */
#define LAUNCH_SETTLE_MS 1000 /* a service without a health port must live this long */
#define LAUNCH_PROBE_MS 100 /* readiness polling period */
#define LAUNCH_TAIL_LINES 20 /* log lines shown for a process that died */
#define LAUNCH_LOG_SCAN_MAX (1 << 20) /* bytes of a dead process's log searched for a refusal */
/* What a controller writes when it refuses to fight a KubeRay operator (common/leader.c) */
#define LAUNCH_KUBERAY_REFUSAL "a KubeRay operator is reconciling: Lease "
#define LAUNCH_IPC_PATH_MAX 100 /* longest ipc:// socket path (sun_path is 108 bytes) */
#define LAUNCH_CRD_MAX_FILE (8u * 1024 * 1024) /* largest CRD manifest read */
#define LAUNCH_DEFAULT_SCHEDULER_REPLICAS 1 /* --scheduler-replicas default */
#define LAUNCH_MAX_SCHEDULER_REPLICAS                                                              \
    8 /* --scheduler-replicas upper bound (pid file, attaches)                                     \
       */
#define LAUNCH_REPLICA_NAME "scheduler-%d" /* pid/log name and lease holder id of replica i */
#define LAUNCH_REPLICA_ID "scheduler/%d" /* --replica of replica i (audit rows' actor_replica) */
#define LAUNCH_REPLICA_DB "scheduler-%d.db" /* --audit.db of replica i, in the state dir */
#define LAUNCH_PIDFILE "pids" /* the pid file in the state dir (proc.h) */
#define LAUNCH_LEASES_DB "leases.db" /* the replicas' shared SQLite shard leases */
#define LAUNCH_MAX_MEMBERS 8 /* --members upper bound */
#define LAUNCH_MANAGEMENT "management" /* the management cluster's name and context */
#define LAUNCH_MEMBER_NAME "member-%d" /* member i's name and context (1-based) */
#define LAUNCH_MEMBER_KUBESIM "kubesim-%s" /* member kubesim's process name (pid file, log) */
#define LAUNCH_MEMBER_SERVICE "%s.%s" /* a member's controller: "<member>.<service>" */
#define LAUNCH_FEDERATION_FILE "federation.yaml" /* STATE/federation.yaml, fed-design.md */
#define LAUNCH_PLACER_CONCURRENCY "64" /* the management scheduler's --concurrency */
#define LAUNCH_PLACED                                                                              \
    "RayClusters, RayJobs and RayServices applied to the management context are placed on a "      \
    "member by the management scheduler (the placer), their status mirrored back"

/* `rayfleetctl up ARGS`; returns the process exit code (0, 1 failure, 2 usage). */
int launch_up(int argc, char **argv);

/* `rayfleetctl down ARGS`; returns the process exit code. */
int launch_down(int argc, char **argv);

/* `rayfleetctl crds --kubeconfig FILE [--crds DIR]`: installs the CRDs as `up` does (a one-shot
 * step of docker-compose.yml). Returns the process exit code. */
int launch_crds(int argc, char **argv);

/* The HTTP status of GET http://127.0.0.1:port/path, or -1 when nothing answered (one try,
 * LAUNCH_PROBE_IO_MS socket timeouts). */
/* The HTTP status of `method` BASE+path (BASE "http://HOST:PORT", as kubesim's ready file holds)
 * with the JSON `body` (NULL: none), or -1 when nothing answered or BASE is not such a URL. */
int launch_http_request(const char *base, const char *method, const char *path, const char *body);

int launch_http_status(int port, const char *path);

/* `rayfleetctl probe URL`: 0 when http://HOST:PORT/PATH answers 200 or tcp://HOST:PORT accepts
 * a connection, else 1 (container health checks). Returns the process exit code. */
int launch_probe(int argc, char **argv);

#endif
