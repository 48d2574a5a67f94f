/*
 * ctrlsvc: the main() of a controller process on the runtime (ctrl.h). A service describes
 * itself (ctrlsvc_def_t: its name, its own options, how to build its controller) and calls
 * ctrlsvc_main(); the rest is the same for every controller:
 *
 * Options (besides svc.h's standard ones and the service's own): the member cluster, its
 * kubeconfig context, the bus (endpoint, high-water mark, CurveZMQ key files: common/busopt.h),
 * the shards and their ownership (--shards.owned, or leases with --shards.lease
 * sqlite|kubernetes), the replica name, the audit database, the work queue's concurrency, the
 * resync and requeue periods and the Kubernetes client's limits.
 *
 * Wiring. One Kubernetes client per member cluster (today one member). The audit database
 * (<state-dir>/<name>.db unless --audit.db says otherwise; audit and desired rows) commits at
 * most every CTRLSVC_FLUSH_EVERY_MS. observed.db is opened read-only once the watcher has created
 * it (retried every CTRLSVC_OPEN_RETRY_MS); then the service's open() builds its controller and a
 * work queue starts it, and likewise each of its extra controllers (ctrlsvc_def_t.extra: one
 * process hosting several kinds, e.g. the submitter's RayJobs and RayCronJobs), each with its own
 * work queue, its resync scan and its metrics under its own controller name. The bus subscriber
 * (one subscription per owned shard) notes every ObjectChanged about the kind as the cause of the
 * key's next pass and queues the key (ctrl_queue_change(): in the urgent lane when the kind says
 * the change is urgent). A resync queues every object of the kind of the owned shards from
 * observed.db at start, every --resync, and for the shards acquired in one loop turn, so a lost bus
 * event costs latency, never correctness.
 *
 * Replicas (issue 7). With --shards.lease off (the default) a replica owns the shards of
 * --shards.owned (none listed: all) for ever. With --shards.lease sqlite|kubernetes the replicas
 * split the shards between them with leases (common/shards.h): sqlite keeps them in
 * <state-dir>/leases.db, shared by the replicas of one host; kubernetes keeps them as Lease
 * objects in --shards.lease-namespace, for replicas on several hosts. Each replica then writes
 * its audit rows into its own --audit.db file (the store rule: one writing process per database
 * file). leases.db is the one exception to that rule: every replica writes it, each lease
 * operation being a short immediate transaction committed at once (store_lease_try_acquire()),
 * never a batched write, so the writers only ever wait for each other for the length of one
 * such transaction.
 *
 * Ownership and fencing. on_acquire(shard) subscribes the bus to the shard and queues every object
 * of it from observed.db (a resync, batched: one scan for all shards acquired in one loop turn).
 * on_release(shard) unsubscribes. The work queue's dispatch drops a key whose shard is not owned
 * (shards_owns(), which reads the monotonic clock itself) before its pass starts, so no pass of a
 * key of a released or lost shard STARTS after the release; and the runtime asks the fence right
 * before each API write, so a pass that started while the shard was owned sends nothing once it is
 * not (the write is withheld, unaudited, and the pass ends). What remains is a write already sent
 * when the shard is lost: the shards module releases a lease margin_ms after on_release(), and a
 * lost lease is only taken by another replica after its expiry, at least margin_ms after our local
 * deadline, so such a write lands before the new owner can start as long as it completes within
 * margin_ms (lease-duration / SHARDS_MARGIN_DIV: 2.5 s for the default 10 s lease).
 *
 * One active writer (issue 15). With --leader.elect (the default) the process holds the leader
 * Lease (common/leader.h; --leader.id in --leader.namespace, under --leader.identity, which the
 * processes of one cell share) before it writes: until then, and whenever it is not held, s_owns()
 * is false for every shard, so the queue drops keys at dispatch and the fence withholds writes;
 * becoming leader queues every object of the owned shards. Losing the lease ends the process with
 * exit code 1 (the supervisor restarts it as a standby). Before the election starts, and every
 * --leader.lease-duration after, the process lists KubeRay's leader Lease (LEADER_KUBERAY_LEASE)
 * in all namespaces; a live one ends it with exit code 2 and what to do, unless
 * --leader.take-over. /readyz waits for that first check only (a standby is ready: a hot standby);
 * /metrics adds rayfleet_leader_is_leader and rayfleet_leader_transitions_total. With
 * --leader.elect=false (active-active across hosts with --shards.lease kubernetes) only the
 * KubeRay check gates the writes.
 *
 * Lease groups. A lease covers a group of shards: shard s belongs to group s % G, with G from
 * --shards.lease-groups (0: as many groups as shards for sqlite, where a lease operation is a
 * local transaction; CTRLSVC_K8S_LEASE_GROUPS for kubernetes, where every renewal is an API
 * request: 256 Lease objects renewed every lease-duration / 4 would cost a replica hundreds of
 * requests per second and, sharing the reconciler's rate limit, starve its writes — measured:
 * with 256 Lease objects, --client.qps 40 and a 2 s lease, replicas lost their shards before a
 * round ended). The Kubernetes lease backend also gets a client of its own, so lease renewals
 * never queue behind reconcile writes in the client's rate limiter (a lease that waits there
 * expires).
 *
 * Operations endpoint (common/opsrv) on --health.host:--health.port (default: the service's
 * health_port, else CTRLSVC_HEALTH_PORT; 0: off). /healthz while the loop turns; /readyz 200 once
 * observed.db is open, the controller is built and, with leases, the shard membership has started
 * (a first member list), else 503 with one reason per line; /metrics read at scrape time from
 * ctrl_stats(), workq_stats() and the owned shards: rayfleet_controller_*{controller=<kind in
 * lower case>} and the controller-runtime names KubeRay's dashboards read
 * (controller_runtime_reconcile_total{controller,result},
 * controller_runtime_reconcile_errors_total, controller_runtime_active_workers,
 * workqueue_depth{name}, workqueue_adds_total, workqueue_retries_total). Replicas on one host need
 * distinct ports (rayfleetctl up gives each a free one; test fleets pass 0).
 *
 * On SIGTERM the replica stops its shards (shards_stop(): on_release, then the leases are
 * released after the margin) so the others take over at once instead of after expiry.
 */
#ifndef RF_CTRLSVC_H
#define RF_CTRLSVC_H

#include "actlog.h"
#include "cfg.h"
#include "ctrl.h"
#include "metrics.h"
#include "k8s.h"
#include "store.h"
#include "svc.h"

#include <stdbool.h>
#include <stdint.h>

#define CTRLSVC_KUBERAY_RETRY_MS 2000 /* retry period of a KubeRay check that failed */
#define CTRLSVC_OPEN_RETRY_MS 1000 /* retry period of the observed.db open */
/* Fresh start (ctrlsvc_def_t.fresh_pods): before its controller starts, a service that creates pods
 * by generateName lists the pods of Ray clusters from the API server and waits until observed.db
 * holds each of them, at most CTRLSVC_FRESH_MAX_MS, polling every CTRLSVC_FRESH_POLL_MS. */
#define CTRLSVC_FRESH_MAX_MS 30000
#define CTRLSVC_FRESH_POLL_MS 200
#define CTRLSVC_FRESH_PAGE 500 /* pods per list page */
/* After a shard is acquired, its state is scanned at once and again this much later: events
 * published before the new subscription reached the watcher were lost on the bus. */
#define CTRLSVC_SETTLE_MS 2000
#define CTRLSVC_RENEW_DIV                                                                          \
    4 /* shard leases are renewed every lease-duration / CTRLSVC_RENEW_DIV                         \
       */
#define CTRLSVC_LEASES_DB "leases.db" /* the SQLite lease backend's file in the state dir */
#define CTRLSVC_STOP_POLL_MS 20 /* shutdown: period at which pending lease releases are checked */
#define CTRLSVC_STOP_MAX_MS 5000 /* shutdown: longest wait for the lease releases */
#define CTRLSVC_K8S_LEASE_GROUPS 16 /* default lease groups with Kubernetes Lease objects */
#define CTRLSVC_LEASE_QPS 1000 /* the lease client's rate limit (bounded anyway by the groups) */
/* The audit database (audit and desired rows) commits at most every 10 ms instead of every loop
 * turn: under load a turn is well under a millisecond, so this turns hundreds of small
 * transactions a second into at most 100. Nothing in a controller reads these rows back; a crash
 * loses at most the last 10 ms of rows (store_destroy() flushes on a clean stop). */
#define CTRLSVC_FLUSH_EVERY_MS 10
#define CTRLSVC_NAME_MAX 64 /* longest service name */
#define CTRLSVC_MAX_CTRLS 4 /* most controllers one process hosts (ctrlsvc_def_t.extra + 1) */
#define CTRLSVC_MAX_OPTIONS 64 /* most options of a service of its own */
/* --health.port of a service that names none (ctrlsvc_def_t.health_port 0); the watcher's is 8082
 */
#define CTRLSVC_HEALTH_PORT 8083

/* What the runner hands the service's open(); pointers are valid until the process ends. */
typedef struct {
    svc_t *svc; /* the process (loop, configuration) */
    const char *cluster; /* member cluster name */
    store_t *observed; /* observed.db, read-only */
    k8s_client_t *client; /* the member cluster's API client */
    actlog_t *audit; /* the audit writer */
    store_t *db; /* the writable audit database, for desired rows */
    bool (*fence)(const char *key, void *arg); /* the write fence (ctrl_config_t.fence) */
    void *fence_arg; /* its argument */
    int64_t requeue_ms; /* --requeue */
    store_t *leases; /* <state-dir>/leases.db read-write when ctrlsvc_def_t.leases_db, else NULL */
    /* The runtime's settings from all of the above (events on), for ctrl_new(): the service sets
     * .kind and .arg. */
    ctrl_config_t ctrl;
} ctrlsvc_env_t;

/* Scrape-time metrics of a controller's objects, as KubeRay computes its CR metrics by listing
 * its CRs at scrape time: with /metrics on, ctrlsvc calls open(registry, kind) once the controller
 * runs, then at every scrape begin() and object() for each observed object of the controller's
 * kind whose key this replica owns (with shards, a replica exports only the keys it owns; a
 * replica without leases owns every key), and close() at exit. kuberay/krmetrics has these
 * signatures. */
typedef struct {
    void *(*open)(metrics_t *reg, const char *kind);
    void (*begin)(void *st);
    int (*object)(void *st, const char *ns, const char *name, const char *uid, const char *json);
    void (*close)(void *st);
} ctrlsvc_scrape_t;

/* Another controller a service hosts besides its first (ctrlsvc_def_t.extra). */
typedef struct {
    /* Builds it once observed.db is open (after the first). NULL: it is not run (e.g. its
     * feature gate is off; the service logs why), which is not an error. */
    ctrl_t *(*open)(const ctrlsvc_env_t *env, void *arg);
    void (*close)(void *arg); /* destroys what open() built (after the queues), or NULL */
    void *arg; /* handed to open and close */
} ctrlsvc_extra_t;

/* A controller service. Strings and tables are borrowed for the process's life. */
typedef struct {
    const char *name; /* "scheduler": service, lease component, <name>.db, replica <name>/0 */
    const cfg_opt_t *options; /* the service's own options (NULL-key terminated), or NULL */
    /* Builds the controller once observed.db is open. Returns its runtime, or NULL (the process
     * ends with an error). */
    ctrl_t *(*open)(const ctrlsvc_env_t *env, void *arg);
    void (*close)(void *arg); /* destroys what open() built (after the queue, before the client) */
    /* Checks the service's own options right after they are loaded (before anything starts):
     * returns 0, or an error with the message (naming the option and its rule) in err; the
     * process then exits with a usage error. NULL: none. */
    int (*check)(const cfg_t *cfg, void *arg, buf_t *err);
    void *arg; /* handed to open and close */
    /* Default of --health.port: > 0 that port, < 0 off unless the option is given, 0
     * CTRLSVC_HEALTH_PORT. Services that may run side by side on one host need distinct ones. */
    int health_port;
    /* The service keeps durable timers (lease rows with an expiry) in <state-dir>/leases.db, the
     * one file every replica of a host may write: ctrlsvc opens it (env.leases), sharing the
     * handle of the sqlite shard leases when those are on. */
    bool leases_db;
    /* The service creates pods with generateName (the scheduler): at start it waits until
     * observed.db holds every pod of a Ray cluster the API server has (CTRLSVC_FRESH_MAX_MS at
     * most), as KubeRay's informers sync before it reconciles. Why: a replica restarted after a
     * crash has no memory of the creates it sent; while the watcher is behind (restarting too, or
     * slow), observed.db lacks the pods just made, and a pass would make them a second time. A
     * pod whose RayCluster observed.db does not hold (another namespace, not watched) is not
     * waited for; a list that fails is logged and the start goes on. */
    bool fresh_pods;
    /* Scrape-time metrics of the controller's objects, or NULL. */
    const ctrlsvc_scrape_t *scrape;
    /* Options a family of services shares, appended after the service's own (KubeRay's operator
     * flags: kuberay/opsettings.h opsettings_options); NULL: none. */
    const cfg_opt_t *shared_options;
    /* Called right after the options are loaded, before check() and before anything reads them:
     * may read further sources (KubeRay's Configuration file, its environment switches) and set
     * options from them (cfg_override). Returns 0, or an error with the message in err (the
     * process exits with a usage error). NULL: none. */
    int (*configure)(cfg_t *cfg, void *arg, buf_t *err);
    /* The namespace scope (KubeRay's --watch-namespace): false for a namespace whose keys the
     * controller ignores, as keys of shards it does not own (dropped before a pass starts, every
     * write fenced). What limits list/watch is the watcher's --watch.namespaces. NULL: all. */
    bool (*watches)(const char *ns, void *arg);
    /* More controllers in the same process (at most CTRLSVC_MAX_CTRLS - 1), each with its own
     * ctrl_t and work queue: a bus event goes to the controller of its kind, resync scans each
     * kind, and the per-controller metrics carry each controller's name. They share the process's
     * client, audit database, shards, fence and leader Lease. */
    const ctrlsvc_extra_t *extra;
    size_t nextra; /* entries of extra */
    /* A start-up check of the API server's version (KubeRay's main.go: SidecarSubmitterRestart
     * needs 1.35+): when set, GET /version is read once before the KubeRay check (so before any
     * write) and handed over decoded; a non-zero return ends the process with
     * SVC_EXIT_FAILURE and the message in err (stderr and the log), as KubeRay's exitOnError.
     * A request that gets no answer is retried every CTRLSVC_KUBERAY_RETRY_MS; an HTTP error
     * calls it with NULL. NULL: /version is not read. */
    int (*server_version)(const json_t *version, void *arg, buf_t *err);
    /* Whether server_version is needed, asked after configure() (e.g. only with the gate on);
     * NULL: always. */
    bool (*wants_server_version)(void *arg);
} ctrlsvc_def_t;

/* Checks --cluster-domain (a DNS name of at most 253 characters); 0 or ERR_INVAL with the rule
 * in err. */
int ctrlsvc_check_cluster_domain(const cfg_t *cfg, buf_t *err);

/* Runs the controller process `def` with argv; returns main()'s exit code. */
int ctrlsvc_main(const ctrlsvc_def_t *def, int argc, char **argv);

/* Parses shard specs ("3", "0-15") into owned[0..shards-1] (all true when n is 0). Returns 0 or
 * ERR_INVAL. */
int ctrlsvc_parse_owned(const char *const *items, size_t n, uint32_t shards, bool *owned);

/* Self-test: the option table, the shard specs, readiness and the metric families. */
int ctrlsvc_test(bool verbose);

#endif
