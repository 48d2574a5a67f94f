/*
 * ctrlsvc: the main() of a controller process (see ctrlsvc.h).
 */
#include "ctrlsvc.h"

#include "bus.h"
#include "busopt.h"
#include "err.h"
#include "kubeconfig.h"
#include "leader.h"
#include "lease.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "opsrv.h"
#include "rftime.h"
#include "shards.h"
#include "workq.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define S_PATH_MAX 4096 /* longest state path */
#define S_BUSOPT_N 3 /* options in busopt_client_options */

static const char *const s_lease_modes[] = {"off", "sqlite", "kubernetes", NULL};

/* The options every controller has; "audit.db" and "replica" get their defaults from the name. */
static const cfg_opt_t s_options[] = {
    {"cluster", CFG_STRING, "default", 0, 0, false, false,
     "Member cluster name (as the watcher names it); its API server comes from --kubeconfig "
     "(else $KUBECONFIG, ~/.kube/config, or in-cluster).",
     NULL},
    {"context", CFG_STRING, NULL, 0, 0, false, false, "Kubeconfig context; none: current.", NULL},
    {"bus.endpoint", CFG_STRING, BUS_BACKEND_DEFAULT, 0, 0, false, false,
     "Bus backend the controller subscribes to.", NULL},
    {"bus.hwm", CFG_INT, "100000", 1, BUS_HWM_MAX, false, false, "Subscriber high-water mark.",
     NULL},
    {"shards", CFG_INT, "256", 1, BUS_SHARD_LIMIT - 1, false, false,
     "Number of shards keys hash into (must match the watcher's).", NULL},
    {"shards.owned", CFG_LIST, NULL, 0, 0, false, false,
     "Shards this replica reconciles, as numbers or ranges \"a-b\"; none: all.", NULL},
    {"shards.lease", CFG_STRING, "off", 0, 0, false, false,
     "Shard ownership: off (own --shards.owned, else all), sqlite (leases in "
     "<state-dir>/" CTRLSVC_LEASES_DB ", replicas on one host) or kubernetes (Lease objects).",
     s_lease_modes},
    {"shards.lease-duration", CFG_DURATION, "10s", 100, 3600000, false, false,
     "Shard lease duration; a dead replica's shards are taken over within two of them.", NULL},
    {"shards.lease-groups", CFG_INT, "0", 0, BUS_SHARD_LIMIT - 1, false, false,
     "Leases the shards are grouped under (shard s in group s % N); 0: one per shard with "
     "sqlite, 16 with kubernetes (each renewal is an API request).",
     NULL},
    {"shards.lease-namespace", CFG_STRING, NULL, 0, 0, false, false,
     "Namespace of the Lease objects (kubernetes); none: the kubeconfig's, else default.", NULL},
    {"replica", CFG_STRING, NULL, 0, 0, false, false,
     "This replica's name in audit rows and (with '/' as '-') its lease holder id; unique.", NULL},
    {"audit.db", CFG_STRING, NULL, 0, 0, false, false,
     "Audit database file in the state dir; each replica needs its own.", NULL},
    {"concurrency", CFG_INT, "8", 1, 10000, false, false,
     "Reconciles in flight at once (KubeRay's --reconcile-concurrency).", NULL},
    {"resync", CFG_DURATION, "5m", 0, 86400000, false, false,
     "Period at which every object of the owned shards is queued again; 0: off.", NULL},
    {"requeue", CFG_DURATION, "300s", 1000, 86400000, false, false,
     "Requeue period after a clean reconcile.", NULL},
    {"client.qps", CFG_INT, "100", 1, 100000, false, false, "Kubernetes client requests/s.", NULL},
    {"client.burst", CFG_INT, "200", 1, 100000, false, false, "Kubernetes client burst.", NULL},
    {"client.max-inflight", CFG_INT, "0", 0, 100000, false, false,
     "Kubernetes requests (not watches) in flight at once, more wait in order in the client; 0: "
     "4 per connection.",
     NULL},
    {"client.connections", CFG_INT, "32", 1, 1024, false, false,
     "Connections to the API server (HTTP/1.1 carries one request per connection at a time; "
     "HTTP/2 multiplexes).",
     NULL},
    {"leader.elect", CFG_BOOL, "true", 0, 0, false, false,
     "Hold the leader Lease before writing anything, so one cell reconciles a cluster and the "
     "others wait as hot standbys (KubeRay's --enable-leader-election). false: active-active "
     "(with --shards.lease kubernetes).",
     NULL},
    {"leader.namespace", CFG_STRING, NULL, 0, 0, false, false,
     "Namespace of the leader Lease; none: the service account's when in a cluster, else "
     "default.",
     NULL},
    {"leader.id", CFG_STRING, LEADER_DEFAULT_NAME, 0, 0, false, false, "Name of the leader Lease.",
     NULL},
    {"leader.identity", CFG_STRING, NULL, 0, 0, false, false,
     "Holder identity; the processes of one cell share it. None: <hostname>_<8 hex of the hash of "
     "the absolute state dir> (in a pod the hostname is the pod name).",
     NULL},
    {"leader.lease-duration", CFG_DURATION, "15s", 300, 3600000, false, false,
     "Leader lease duration (client-go: renewed every third of it, given up after two thirds "
     "without a renewal); a dead leader is replaced within about one of them.",
     NULL},
    {"leader.take-over", CFG_BOOL, "false", 0, 0, false, false,
     "Start even when a KubeRay operator holds its " LEADER_KUBERAY_LEASE " Lease (both then "
     "write: stop it instead when you can).",
     NULL},
    {"health.host", CFG_STRING, "127.0.0.1", 0, 0, false, false,
     "Address of the /healthz, /readyz and /metrics listener.", NULL},
    {"health.port", CFG_INT, NULL, 0, 65535, false, false,
     "Port of the /healthz, /readyz and /metrics listener; 0: off.", NULL},
    {0},
};

struct run;

/* One controller the process hosts: its runtime and work queue (and the timing series of the
 * queue). The first is the service's (ctrlsvc_def_t.open), the others its extra ones. */
typedef struct {
    struct run *m; /* the process */
    ctrl_t *ctrl; /* the controller, once obs is open (NULL: not run) */
    workq_t *q; /* its queue */
    uint64_t dropped; /* keys dropped at dispatch: shard not owned */
    metric_series_t *queue_wait; /* workqueue_queue_duration_seconds, or NULL */
    metric_series_t *work_time[3]; /* workqueue_work_duration_seconds, controller_runtime_
                                    * reconcile_time_seconds, rayfleet_reconcile_duration_seconds */
} unit_t;

/* The process. */
typedef struct run {
    const ctrlsvc_def_t *def; /* the service */
    svc_t *svc; /* the process */
    const char *cluster; /* member cluster name */
    uint32_t shards; /* shard count */
    uint32_t groups; /* lease groups (shard s in group s % groups); 0 without leases */
    bool *owned; /* owned[shard] */
    char *obs_path; /* observed.db path */
    store_t *obs; /* observed.db, read-only, once it exists */
    store_t *db; /* the audit database */
    k8s_client_t *client; /* API client */
    const kubeconfig_t *kc; /* the kubeconfig the clients use */
    actlog_t *audit; /* audit writer */
    unit_t u[CTRLSVC_MAX_CTRLS]; /* the controllers: u[0] the service's, then its extra ones */
    size_t nu; /* controllers running (u[0] included once started) */
    bool opened; /* def->open() was called (close() is due) */
    bool opened_extra[CTRLSVC_MAX_CTRLS - 1]; /* def->extra[i].open() was called */
    bus_sub_t *sub; /* bus subscriber */
    store_t *leases_db; /* leases.db (sqlite lease backend), or NULL */
    lease_backend_t *lease; /* lease backend, or NULL (--shards.lease off) */
    k8s_client_t *lease_client; /* the kubernetes lease backend's own client, or NULL */
    shards_t *sh; /* shard ownership, or NULL (--shards.lease off) */
    bool *resync_pending; /* resync_pending[shard]: acquired, keys not queued yet */
    bool resync_armed; /* the zero-delay resync timer is armed */
    bool *
        settle_pending; /* settle_pending[shard]: acquired, scanned again after CTRLSVC_SETTLE_MS */
    bool settle_armed; /* the settle timer is armed */
    uint64_t bus_gaps[3]; /* gaps the bus reported, by bus_gap_kind_t - 1 */
    bool in_cluster; /* the client uses the in-cluster service-account configuration */
    bool elect; /* --leader.elect */
    bool kuberay_checked; /* the KubeRay check ended: writes may start (with the lease) */
    int64_t kuberay_req; /* the KubeRay check's request in flight, 0 none */
    k8s_client_t *leader_client; /* the leader lease's own client, or NULL */
    lease_backend_t *leader_lease; /* the leader lease backend, or NULL */
    leader_t *leader; /* the leader election, or NULL (off, or not started yet) */
    int exit_code; /* > 0: the process ends with it (KubeRay refusal, leadership lost) */
    metrics_t *metrics; /* the registry /metrics serves, or NULL (--health.port 0) */
    opsrv_t *ops; /* the operations endpoint, or NULL */
    metric_series_t *bus_lag; /* rayfleet_bus_lag_seconds, or NULL */
    void *scrape; /* def->scrape's state, or NULL */
    const char *scrape_kind; /* the controller's kind */
    uint64_t scrape_bad; /* observed objects a scrape could not read */
    int fresh_state; /* fresh start (def->fresh_pods): FRESH_* */
    char **fresh; /* "namespace/name" of the listed pods observed.db lacks still */
    size_t nfresh, capfresh; /* how many, allocated */
    size_t fresh_listed; /* pods of Ray clusters listed */
    int64_t fresh_t0; /* loop clock when the wait began */
} run_t;

enum { FRESH_IDLE, FRESH_LISTING, FRESH_WAITING, FRESH_DONE };

/* True when this process may write now: the KubeRay check ended and, with --leader.elect, the
 * cell holds the leader Lease (leader_is_leader() reads the clock itself). */
static bool s_leading(const run_t *m)
{
    return m->kuberay_checked && (!m->elect || leader_is_leader(m->leader));
}

/* True when this replica owns `shard` now (and may write: s_leading()). */
static bool s_owns(const run_t *m, uint32_t shard)
{
    if (shard >= m->shards || !s_leading(m))
        return false;
    return m->sh ? shards_owns(m->sh, shard % m->groups) : m->owned[shard];
}

static int s_on_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    run_t *m = arg;
    if (m->bus_lag && msg->sent_at_ms > 0) {
        int64_t lag = rftime_now_ms() - msg->sent_at_ms;
        metric_observe(m->bus_lag, lag > 0 ? (double)lag / 1000.0 : 0);
    }
    if (m->nu == 0 || !s_owns(m, msg->object_changed.shard))
        return 0;
    /* to the controller of the event's kind: the others refuse it (ERR_INVAL) */
    for (size_t i = 0; i < m->nu; i++)
        if (ctrl_queue_change(m->u[i].ctrl, m->u[i].q, &msg->object_changed) != ERR_INVAL)
            break;
    return 0;
}

/* One scan of s_resync_scan(). */
typedef struct {
    run_t *m;
    unit_t *u; /* the controller whose kind is scanned */
    bool only_pending; /* only the shards marked in resync_pending */
    size_t n; /* keys queued */
} resync_t;

/* Queues the key of one observed object of the kind when its shard is in scope. */
static int s_resync_row(const store_observed_t *row, void *arg)
{
    resync_t *r = arg;
    run_t *m = r->m;
    uint32_t shard = bus_shard_of(m->cluster, row->ns, row->name, m->shards);
    if (!s_owns(m, shard) || (r->only_pending && !m->resync_pending[shard]))
        return 0;
    char key[CTRL_KEY_MAX];
    if (ctrl_key(m->cluster, row->ns ? row->ns : "", row->name ? row->name : "", key, sizeof(key)) >
            0 &&
        workq_add(r->u->q, key) == 0)
        r->n++;
    return 0;
}

/* Queues every object of the kind of the owned shards (only_pending: only of the shards marked
 * in resync_pending, whose marks are cleared). */
static void s_resync_scan(run_t *m, bool only_pending)
{
    for (size_t i = 0; i < m->nu; i++) {
        resync_t r = {.m = m, .u = &m->u[i], .only_pending = only_pending};
        const char *kind = ctrl_config(m->u[i].ctrl)->kind->kind;
        if (store_observed_scan(m->obs, m->cluster, kind, NULL, s_resync_row, &r) == 0) {
            char nbuf[32];
            snprintf(nbuf, sizeof(nbuf), "%zu", r.n);
            log_debug("resync", "kind", kind, "keys", nbuf, "scope",
                      only_pending ? "acquired" : "all", NULL);
        }
    }
    if (only_pending)
        memset(m->resync_pending, 0, m->shards * sizeof(*m->resync_pending));
}

/* The periodic resync timer. */
static int64_t s_resync(loop_t *loop, int64_t id, void *arg)
{
    run_t *m = arg;
    if (m->obs && m->nu > 0)
        s_resync_scan(m, false);
    return cfg_duration_ms(m->svc->cfg, "resync");
}

/* The zero-delay timer armed by s_resync_soon(): one scan for every shard marked meanwhile. */
static int64_t s_resync_acquired(loop_t *loop, int64_t id, void *arg)
{
    run_t *m = arg;
    m->resync_armed = false;
    if (m->obs && m->nu > 0) /* else s_try_open's full resync covers them */
        s_resync_scan(m, true);
    return LOOP_TIMER_DONE;
}

/* Queues a scan of `shard` (BUS_SHARD_ALL: of every owned shard) at the next loop turn. */
static void s_resync_soon(run_t *m, uint32_t shard)
{
    for (uint32_t s = 0; s < m->shards; s++)
        if (shard == BUS_SHARD_ALL || s == shard)
            m->resync_pending[s] = m->resync_pending[s] || s_owns(m, s);
    if (!m->resync_armed && loop_add_timer(m->svc->loop, 0, s_resync_acquired, m) >= 0)
        m->resync_armed = true;
}

/* The settle timer armed by on_acquire: the shards acquired are scanned again once their
 * subscription has surely reached the watcher (events published before it did were lost). */
static int64_t s_resync_settled(loop_t *loop, int64_t id, void *arg)
{
    run_t *m = arg;
    m->settle_armed = false;
    for (uint32_t s = 0; s < m->shards; s++)
        if (m->settle_pending[s]) {
            m->settle_pending[s] = false;
            s_resync_soon(m, s);
        }
    return LOOP_TIMER_DONE;
}

/* The bus saw a gap (bus_gap_fn): events may have been lost, so the shards they could belong to
 * are scanned from observed.db, which the watcher commits before it publishes. A gap is reported
 * with the envelope or heartbeat that shows the path works again, so the scan sees all the
 * watcher stored before it. */
static void s_on_gap(bus_sub_t *sub, const bus_gap_t *gap, void *arg)
{
    run_t *m = arg;
    static const char *const kinds[] = {"shard", "source", "restart"};
    int k = gap->kind >= BUS_GAP_SHARD && gap->kind <= BUS_GAP_RESTART ? (int)gap->kind - 1 : 1;
    m->bus_gaps[k]++;
    char sbuf[16], nbuf[32];
    if (gap->shard == BUS_SHARD_ALL)
        snprintf(sbuf, sizeof(sbuf), "all");
    else
        snprintf(sbuf, sizeof(sbuf), "%" PRIu32, gap->shard);
    snprintf(nbuf, sizeof(nbuf), "%" PRIu64, gap->missed);
    log_info("bus gap", "source", gap->source, "kind", kinds[k], "shard", sbuf, "missed", nbuf,
             NULL);
    s_resync_soon(m, gap->shard);
}

/* A source was heard (first, or again after lost): the path from it works now, so what it
 * published before the subscriptions reached it (at start) is caught up from observed.db. */
static void s_on_peer(bus_sub_t *sub, const char *source, bus_peer_event_t event, void *arg)
{
    if (event == BUS_PEER_SEEN)
        s_resync_soon(arg, BUS_SHARD_ALL);
}

/* True when the shard of `key` is owned now. */
static bool s_owns_key(const run_t *m, const char *key)
{
    char cl[CTRL_KEY_MAX], ns[CTRL_KEY_MAX], name[CTRL_KEY_MAX];
    return ctrl_parse_key(key, cl, ns, name) == 0 &&
           s_owns(m, bus_shard_of(cl, ns, name, m->shards)) &&
           !(m->def && m->def->watches && !m->def->watches(ns, m->def->arg));
}

/* The fence before each API write of a pass (ctrl_config_t.fence). */
static bool s_fence(const char *key, void *arg)
{
    return s_owns_key(arg, key);
}

/* The work queue's dispatch: the fence before a pass starts. */
static void s_reconcile(workq_t *q, const char *key, void *arg)
{
    unit_t *u = arg;
    if (!s_owns_key(u->m, key)) {
        u->dropped++;
        workq_forget(q, key);
        workq_done(q, key, workq_ok());
        return;
    }
    ctrl_fn(q, key, u->ctrl);
}

/* A lease group was acquired: subscribe to each of its shards and queue their objects. */
static void s_on_acquire(shards_t *sh, uint32_t group, void *arg)
{
    run_t *m = arg;
    char sbuf[16];
    snprintf(sbuf, sizeof(sbuf), "%" PRIu32, group);
    for (uint32_t shard = group; shard < m->shards; shard += m->groups) {
        if (bus_sub_subscribe(m->sub, shard) != 0)
            log_error("bus subscribe failed", "group", sbuf, NULL);
        m->resync_pending[shard] = true;
        m->settle_pending[shard] = true;
    }
    if (!m->resync_armed && loop_add_timer(m->svc->loop, 0, s_resync_acquired, m) >= 0)
        m->resync_armed = true;
    if (!m->settle_armed &&
        loop_add_timer(m->svc->loop, CTRLSVC_SETTLE_MS, s_resync_settled, m) >= 0)
        m->settle_armed = true;
    log_info("shard acquired", "shard", sbuf, NULL);
}

static void s_on_release(shards_t *sh, uint32_t group, void *arg)
{
    run_t *m = arg;
    char sbuf[16];
    snprintf(sbuf, sizeof(sbuf), "%" PRIu32, group);
    for (uint32_t shard = group; shard < m->shards; shard += m->groups) {
        bus_sub_unsubscribe(m->sub, shard);
        m->resync_pending[shard] = false;
        m->settle_pending[shard] = false;
    }
    /* queued keys of the shard are dropped by s_reconcile(); passes in flight run to their end
     * (see the file comment) */
    log_info("shard released", "shard", sbuf, NULL);
}

/* ---------- the operations endpoint: /healthz, /readyz, /metrics ---------- */

/* What a series reads at scrape time (s_read_metric()). */
typedef enum {
    M_PASSES,
    M_NOT_FOUND,
    M_CREATES,
    M_DELETES,
    M_STATUS_WRITES,
    M_UPDATES,
    M_EVENTS,
    M_EVENTS_PATCHED,
    M_EVENTS_DROPPED,
    M_FENCED,
    M_WRITE_ERRORS,
    M_ERRORS,
    M_SKIPPED_GROUPS,
    M_PASSES_INFLIGHT,
    M_REQUESTS_INFLIGHT,
    M_KEYS,
    M_QUEUE_DEPTH,
    M_QUEUE_DELAYED,
    M_LONGEST_WAIT,
    M_QUEUE_ADDS,
    M_QUEUE_RETRIES,
    M_SHARDS_OWNED,
    M_DROPPED,
    M_ENDED_OK, /* passes ended without an error */
    M_UNFINISHED, /* workqueue_unfinished_work_seconds */
    M_LONGEST_RUNNING, /* workqueue_longest_running_processor_seconds */
    M_MAX_CONCURRENT, /* controller_runtime_max_concurrent_reconciles */
    M_SCRAPE_BAD, /* observed objects a scrape could not read */
    M_AUDIT_ROWS, /* audit rows handed to the store */
    M_AUDIT_FAILURES, /* audit rows the store refused */
    M_IS_LEADER, /* 1 while this process may write (leads, or election off) */
    M_LEADER_TRANSITIONS, /* became leader or lost it */
    M_READY,
    M_BUS_GAPS_SHARD, /* rayfleet_bus_gaps_total{kind="shard"} (process-wide, through u[0]) */
    M_BUS_GAPS_SOURCE, /* {kind="source"} */
    M_BUS_GAPS_RESTART /* {kind="restart"} */
} s_metric_t;

/* The families registered once the controller exists, labelled with its name (the kind in lower
 * case, as controller-runtime names a controller: "raycluster"). The rayfleet_controller_* names
 * follow the watcher's rayfleet_watcher_*; the others are the names controller-runtime exports,
 * which KubeRay's dashboards read (its results requeue and requeue_after are not told apart from
 * success here). */
static const struct {
    const char *name; /* family name */
    const char *help; /* help text */
    bool counter; /* counter, else gauge */
    const char *label; /* the label carrying the controller's name */
    const char *result; /* value of the "result" label, or NULL: no such label */
    s_metric_t which; /* what it reads */
} s_exported[] = {
#define C_(name, help, which)                                                                      \
    {                                                                                              \
        "rayfleet_controller_" name, help, true, "controller", NULL, which                         \
    }
#define G_(name, help, which)                                                                      \
    {                                                                                              \
        "rayfleet_controller_" name, help, false, "controller", NULL, which                        \
    }
    C_("passes_total", "Passes started.", M_PASSES),
    C_("passes_not_found_total", "Passes whose object was gone.", M_NOT_FOUND),
    C_("creates_total", "Create requests sent.", M_CREATES),
    C_("deletes_total", "Delete requests sent.", M_DELETES),
    C_("status_writes_total", "Status writes sent.", M_STATUS_WRITES),
    C_("updates_total", "Other updates and patches sent.", M_UPDATES),
    C_("events_total", "Kubernetes Events created.", M_EVENTS),
    C_("events_patched_total", "Repeated Events recorded as a count patch of the first.",
       M_EVENTS_PATCHED),
    C_("events_dropped_total", "Events dropped by the per-object spam filter.", M_EVENTS_DROPPED),
    C_("fenced_total", "Writes withheld because the shard was no longer owned.", M_FENCED),
    C_("write_errors_total", "Writes that failed.", M_WRITE_ERRORS),
    C_("errors_total", "Passes that ended with an error.", M_ERRORS),
    C_("skipped_groups_total", "Expectation groups skipped as unmet.", M_SKIPPED_GROUPS),
    C_("keys_dropped_total", "Queued keys dropped because their shard was not owned.", M_DROPPED),
    G_("passes_inflight", "Passes running now.", M_PASSES_INFLIGHT),
    G_("requests_inflight", "API requests sent and not answered now.", M_REQUESTS_INFLIGHT),
    G_("keys", "Keys holding state.", M_KEYS),
    G_("queue_depth", "Keys queued and ready.", M_QUEUE_DEPTH),
    G_("queue_delayed", "Keys waiting for a requeue or backoff.", M_QUEUE_DELAYED),
    G_("queue_longest_wait_seconds", "How long the oldest ready key has waited.", M_LONGEST_WAIT),
    G_("shards_owned", "Shards this replica owns now.", M_SHARDS_OWNED),
#undef C_
#undef G_
    {"controller_runtime_reconcile_total", "Total number of reconciliations per controller.", true,
     "controller", "success", M_ENDED_OK},
    {"controller_runtime_reconcile_total", "Total number of reconciliations per controller.", true,
     "controller", "error", M_ERRORS},
    {"controller_runtime_reconcile_errors_total",
     "Total number of reconciliation errors per controller.", true, "controller", NULL, M_ERRORS},
    {"controller_runtime_active_workers", "Number of currently used workers per controller.", false,
     "controller", NULL, M_PASSES_INFLIGHT},
    {"workqueue_depth", "Current depth of workqueue.", false, "name", NULL, M_QUEUE_DEPTH},
    {"workqueue_adds_total", "Total number of adds handled by workqueue.", true, "name", NULL,
     M_QUEUE_ADDS},
    {"workqueue_retries_total", "Total number of retries handled by workqueue.", true, "name", NULL,
     M_QUEUE_RETRIES},
    {"workqueue_unfinished_work_seconds",
     "How many seconds of work has been done that is in progress and hasn't been observed by "
     "work_duration. Large values indicate stuck threads. One can deduce the number of stuck "
     "threads by observing the rate at which this increases.",
     false, "name", NULL, M_UNFINISHED},
    {"workqueue_longest_running_processor_seconds",
     "How many seconds has the longest running processor for workqueue been running.", false,
     "name", NULL, M_LONGEST_RUNNING},
    {"controller_runtime_max_concurrent_reconciles",
     "Maximum number of concurrent reconciles per controller.", false, "controller", NULL,
     M_MAX_CONCURRENT},
    {"rayfleet_audit_rows_written_total",
     "Audit rows written (ctrl/actlog: every write, dashboard call and Event of a pass).", true,
     "controller", NULL, M_AUDIT_ROWS},
    {"rayfleet_audit_row_failures_total", "Audit rows the store refused (logged).", true,
     "controller", NULL, M_AUDIT_FAILURES},
    {"rayfleet_controller_scrape_unreadable_total",
     "Observed objects of the controller's kind a /metrics scrape could not read (left out of "
     "the kuberay_* series).",
     true, "controller", NULL, M_SCRAPE_BAD},
};

/* Shards owned now. */
static size_t s_owned_count(const run_t *m)
{
    size_t n = 0;
    for (uint32_t s = 0; s < m->shards; s++)
        n += s_owns(m, s);
    return n;
}

/* Readiness (opsrv_ready_fn): observed.db open, the controller built, and with leases the shard
 * membership started (a first list of the members). */
static int s_readiness(void *arg, buf_t *why)
{
    run_t *m = arg;
    int n = 0, rc = 0;
    if (!m->obs) {
        rc = buf_printf(why, "observed database %s not open yet (the watcher creates it)\n",
                        m->obs_path ? m->obs_path : "observed.db");
        n++;
    } else if (m->nu == 0) {
        rc = buf_printf(why, "controller %s not started\n", m->def->name);
        n++;
    }
    if (rc == 0 && !m->kuberay_checked) {
        rc = buf_printf(why, "KubeRay check not done (is a KubeRay operator reconciling?)\n");
        n++;
    }
    if (rc == 0 && m->sh) {
        shards_stats_t st;
        shards_stats(m->sh, &st);
        if (st.members == 0) {
            rc = buf_printf(why, "shard membership not started (no member list yet)\n");
            n++;
        }
    }
    return rc < 0 ? rc : n;
}

/* A series' value; `arg` is the unit (the process-wide series are read through u[0]). */
static double s_read_metric(void *arg, int which)
{
    const unit_t *u = arg;
    const run_t *m = u->m;
    ctrl_stats_t cs = {0};
    workq_stats_t qs = {0};
    if (u->ctrl)
        ctrl_stats(u->ctrl, &cs);
    if (u->q)
        workq_stats(u->q, &qs);
    switch ((s_metric_t)which) {
    case M_PASSES:
        return (double)cs.passes;
    case M_NOT_FOUND:
        return (double)cs.not_found;
    case M_CREATES:
        return (double)cs.creates;
    case M_DELETES:
        return (double)cs.deletes;
    case M_STATUS_WRITES:
        return (double)cs.status_writes;
    case M_UPDATES:
        return (double)cs.updates;
    case M_EVENTS:
        return (double)cs.events;
    case M_EVENTS_PATCHED:
        return (double)cs.events_patched;
    case M_EVENTS_DROPPED:
        return (double)cs.events_dropped;
    case M_FENCED:
        return (double)cs.fenced;
    case M_WRITE_ERRORS:
        return (double)cs.write_errors;
    case M_ERRORS:
        return (double)cs.errors;
    case M_SKIPPED_GROUPS:
        return (double)cs.skipped_groups;
    case M_PASSES_INFLIGHT:
        return (double)cs.passes_inflight;
    case M_REQUESTS_INFLIGHT:
        return (double)cs.requests_inflight;
    case M_KEYS:
        return (double)cs.keys;
    case M_QUEUE_DEPTH:
        return (double)qs.depth;
    case M_QUEUE_DELAYED:
        return (double)qs.delayed;
    case M_LONGEST_WAIT:
        return (double)qs.longest_wait_ms / 1000.0;
    case M_QUEUE_ADDS:
        return (double)qs.adds;
    case M_QUEUE_RETRIES:
        return (double)qs.retries;
    case M_SHARDS_OWNED:
        return (double)s_owned_count(m);
    case M_DROPPED:
        return (double)u->dropped;
    case M_ENDED_OK:
        return cs.passes >= cs.passes_inflight + cs.errors
                   ? (double)(cs.passes - cs.passes_inflight - cs.errors)
                   : 0;
    case M_UNFINISHED:
        return (double)qs.unfinished_ms / 1000.0;
    case M_LONGEST_RUNNING:
        return (double)qs.longest_running_ms / 1000.0;
    case M_MAX_CONCURRENT:
        return m->svc ? (double)cfg_int(m->svc->cfg, "concurrency") : 0;
    case M_SCRAPE_BAD:
        return (double)m->scrape_bad;
    case M_AUDIT_ROWS:
    case M_AUDIT_FAILURES: {
        actlog_stats_t as = {0};
        if (m->audit)
            actlog_stats(m->audit, &as);
        return (double)(which == M_AUDIT_ROWS ? as.rows : as.failures);
    }
    case M_IS_LEADER:
        return s_leading(m) ? 1 : 0;
    case M_LEADER_TRANSITIONS: {
        leader_stats_t ls;
        leader_stats(m->leader, &ls);
        return (double)ls.transitions;
    }
    case M_BUS_GAPS_SHARD:
    case M_BUS_GAPS_SOURCE:
    case M_BUS_GAPS_RESTART:
        return (double)m->bus_gaps[which - M_BUS_GAPS_SHARD];
    case M_READY: {
        buf_t why;
        buf_init(&why, 1024);
        int n = s_readiness((void *)m, &why);
        buf_free(&why);
        return n == 0 ? 1 : 0;
    }
    }
    return 0;
}

/* Registers the families of s_exported with `name` as the controller's label value. Returns 0 or
 * an err_t. */
static int s_register_metrics(metrics_t *reg, const char *name, unit_t *m)
{
    for (size_t i = 0; i < sizeof(s_exported) / sizeof(s_exported[0]); i++) {
        metric_t *fam = metrics_find(reg, s_exported[i].name);
        const char *labels[] = {s_exported[i].label, s_exported[i].result ? "result" : NULL, NULL};
        if (!fam && s_exported[i].counter)
            fam = metrics_counter(reg, s_exported[i].name, s_exported[i].help, labels);
        else if (!fam)
            fam = metrics_gauge(reg, s_exported[i].name, s_exported[i].help, labels);
        const char *values[] = {name, s_exported[i].result};
        int rc = fam ? metric_series_fn(fam, values, s_read_metric, m, (int)s_exported[i].which)
                     : ERR_INVAL;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* client-go's workqueue buckets: ExponentialBuckets(10e-9, 10, 10). */
static const double s_wq_buckets[] = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10};
/* controller-runtime's reconcile_time_seconds buckets. */
static const double s_cr_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3,  0.35,
                                      0.4,   0.45, 0.5,   0.6,  0.7, 0.8,  0.9, 1.0,  1.25, 1.5,
                                      1.75,  2.0,  2.5,   3.0,  3.5, 4.0,  4.5, 5,    6,    7,
                                      8,     9,    10,    15,   20,  25,   30,  40,   50,   60};
/* rayfleet_bus_lag_seconds buckets. */
static const double s_lag_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,    0.25,  0.5,    1,     2.5,  5,     10};

/* A histogram series of family `name` (registered on first use) with one label. NULL on error. */
static metric_series_t *s_histogram(metrics_t *reg, const char *name, const char *help,
                                    const char *label, const char *value, const double *bounds,
                                    size_t n)
{
    metric_t *fam = metrics_find(reg, name);
    if (!fam)
        fam = metrics_histogram(reg, name, help, (const char *const[]){label, NULL}, bounds, n);
    return metric_with(fam, (const char *const[]){value});
}

/* The work queue's start observer: workqueue_queue_duration_seconds. */
static void s_on_latency(const char *key, int64_t wait_ms, void *arg)
{
    (void)key;
    unit_t *u = arg;
    metric_observe(u->queue_wait, (double)wait_ms / 1000.0);
}

/* The work queue's end observer: the pass's duration. */
static void s_on_done(const char *key, int64_t run_ms, workq_result_kind_t kind, void *arg)
{
    (void)key;
    (void)kind;
    unit_t *u = arg;
    for (int i = 0; i < 3; i++)
        metric_observe(u->work_time[i], (double)run_ms / 1000.0);
}

/* One observed object at scrape time: handed to def->scrape when this replica owns its key. */
static int s_scrape_row(const store_observed_t *row, void *arg)
{
    run_t *m = arg;
    char key[CTRL_KEY_MAX];
    if (ctrl_key(m->cluster, row->ns, row->name, key, sizeof(key)) < 0 || !s_owns_key(m, key))
        return 0;
    if (!row->json ||
        m->def->scrape->object(m->scrape, row->ns, row->name, row->uid, row->json) != 0)
        m->scrape_bad++;
    return 0;
}

/* The scrape-time collector (metrics_collect_fn): the controller's objects from observed.db. */
static int s_scrape(void *arg)
{
    run_t *m = arg;
    m->def->scrape->begin(m->scrape);
    return m->obs
               ? store_observed_scan_json(m->obs, m->cluster, m->scrape_kind, NULL, s_scrape_row, m)
               : 0;
}

/* Registers the histograms and the scrape collector once the controller exists. Returns 0 or an
 * err_t. */
static int s_register_timing(run_t *m, unit_t *u, const char *name)
{
    metrics_t *reg = m->metrics;
    const char *kind = ctrl_config(u->ctrl)->kind->kind;
    u->queue_wait =
        s_histogram(reg, "workqueue_queue_duration_seconds",
                    "How long in seconds an item stays in workqueue before being "
                    "requested.",
                    "name", name, s_wq_buckets, sizeof(s_wq_buckets) / sizeof(s_wq_buckets[0]));
    u->work_time[0] =
        s_histogram(reg, "workqueue_work_duration_seconds",
                    "How long in seconds processing an item from workqueue takes.", "name", name,
                    s_wq_buckets, sizeof(s_wq_buckets) / sizeof(s_wq_buckets[0]));
    u->work_time[1] =
        s_histogram(reg, "controller_runtime_reconcile_time_seconds",
                    "Length of time per reconciliation per controller", "controller", name,
                    s_cr_buckets, sizeof(s_cr_buckets) / sizeof(s_cr_buckets[0]));
    u->work_time[2] =
        s_histogram(reg, "rayfleet_reconcile_duration_seconds",
                    "Duration of a reconcile pass (start to end, its asynchronous "
                    "writes answered) by kind.",
                    "kind", kind, s_cr_buckets, sizeof(s_cr_buckets) / sizeof(s_cr_buckets[0]));
    if (!u->queue_wait || !u->work_time[0] || !u->work_time[1] || !u->work_time[2])
        return ERR_NOMEM;
    if (u != &m->u[0])
        return 0; /* the rest is the process's, registered with the first controller */
    m->bus_lag = s_histogram(reg, "rayfleet_bus_lag_seconds",
                             "Time from an event's publication (the watcher publishes after its "
                             "rows are committed) to its receipt by this controller, from the "
                             "envelope's sent_at_ms (wall clocks of one host).",
                             "controller", name, s_lag_buckets,
                             sizeof(s_lag_buckets) / sizeof(s_lag_buckets[0]));
    metric_series_t *commit = store_commit_series(reg, m->def->name);
    store_set_commit_metric(m->db, commit);
    if (!commit || !m->bus_lag)
        return ERR_NOMEM;
    metric_t *gaps = metrics_find(reg, "rayfleet_bus_gaps_total");
    if (!gaps)
        gaps = metrics_counter(reg, "rayfleet_bus_gaps_total",
                               "Gaps the bus subscriber saw (events possibly lost; each "
                               "queues a rescan of the shards concerned), by kind: shard "
                               "(sequence numbers skipped on a shard), source (heartbeats "
                               "skipped or a path broken), restart (a publisher restarted).",
                               (const char *const[]){"controller", "kind", NULL});
    static const char *const gap_kinds[] = {"shard", "source", "restart"};
    for (int k = 0; k < 3; k++) {
        int rc = gaps ? metric_series_fn(gaps, (const char *const[]){name, gap_kinds[k]},
                                         s_read_metric, u, M_BUS_GAPS_SHARD + k)
                      : ERR_NOMEM;
        if (rc != 0)
            return rc;
    }
    if (m->def->scrape) {
        m->scrape = m->def->scrape->open(reg, m->scrape_kind);
        if (!m->scrape)
            return ERR_NOMEM;
        return metrics_add_collector(reg, s_scrape, m);
    }
    return 0;
}

/* The controller's name in metrics: its kind in lower case, into out[size]. */
static void s_metric_name(const ctrl_t *c, char *out, size_t size)
{
    snprintf(out, size, "%s", ctrl_config(c)->kind->kind);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* Starts the registry (with rayfleet_controller_ready) and the endpoint on --health.host and
 * --health.port (0: none). Returns 0 or an err_t (reported). */
static int s_start_ops(run_t *m)
{
    int port = (int)cfg_int(m->svc->cfg, "health.port");
    if (port == 0)
        return 0;
    m->metrics = metrics_new();
    metric_t *ready =
        m->metrics ? metrics_gauge(m->metrics, "rayfleet_controller_ready",
                                   "1 once observed state is open, the controller runs and (with "
                                   "leases) the shard membership has started.",
                                   NULL)
                   : NULL;
    if (!ready || metric_series_fn(ready, NULL, s_read_metric, &m->u[0], M_READY) != 0)
        return ERR_NOMEM;
    metric_t *lead = metrics_gauge(
        m->metrics, "rayfleet_leader_is_leader",
        "1 while this process may write: its cell holds the leader Lease (or election is off).",
        NULL);
    metric_t *trans = metrics_counter(m->metrics, "rayfleet_leader_transitions_total",
                                      "Times this process became leader or lost the lease.", NULL);
    if (!lead || !trans ||
        metric_series_fn(lead, NULL, s_read_metric, &m->u[0], M_IS_LEADER) != 0 ||
        metric_series_fn(trans, NULL, s_read_metric, &m->u[0], M_LEADER_TRANSITIONS) != 0)
        return ERR_NOMEM;
    /* client-go's rest_client_* of the controller's client, the shard-lease and leader clients */
    if (k8s_client_metrics(m->client, m->metrics) != 0 ||
        (m->lease_client && k8s_client_metrics(m->lease_client, m->metrics) != 0) ||
        (m->leader_client && k8s_client_metrics(m->leader_client, m->metrics) != 0))
        return ERR_NOMEM;
    m->ops = opsrv_new(m->svc->loop, &(opsrv_config_t){.host = cfg_str(m->svc->cfg, "health.host"),
                                                       .port = port,
                                                       .metrics = m->metrics,
                                                       .ready = s_readiness,
                                                       .ready_arg = m});
    if (!m->ops) {
        fprintf(stderr, "%s: cannot serve /healthz, /readyz and /metrics on %s:%d\n", m->def->name,
                cfg_str(m->svc->cfg, "health.host"), port);
        return ERR_INVAL;
    }
    return 0;
}

/* Starts controller `c` as the next unit: its work queue and its metrics. Returns 0 or ERR_NOMEM
 * (the unit is then not counted). */
static int s_start_unit(run_t *m, ctrl_t *c)
{
    if (m->nu >= CTRLSVC_MAX_CTRLS)
        return ERR_NOMEM;
    unit_t *u = &m->u[m->nu];
    u->m = m;
    u->ctrl = c;
    workq_opts_t qo;
    workq_opts_default(&qo);
    qo.concurrency = (int)cfg_int(m->svc->cfg, "concurrency");
    if (m->metrics) {
        qo.on_latency = s_on_latency;
        qo.latency_arg = u;
        qo.on_done = s_on_done;
        qo.done_arg = u;
    }
    u->q = workq_new(m->svc->loop, &qo, s_reconcile, u);
    if (!u->q)
        return ERR_NOMEM;
    ctrl_set_queue(c, u->q);
    m->nu++;
    char mname[CTRLSVC_NAME_MAX];
    s_metric_name(c, mname, sizeof(mname));
    if (m->metrics && s_register_metrics(m->metrics, mname, u) != 0)
        log_warn("controller metrics not registered", "controller", mname, NULL);
    if (u == &m->u[0])
        m->scrape_kind = ctrl_config(c)->kind->kind;
    if (m->metrics && s_register_timing(m, u, mname) != 0)
        log_warn("controller timing or object metrics not registered", "controller", mname, NULL);
    log_info("controller running", "service", m->def->name, "kind", ctrl_config(c)->kind->kind,
             NULL);
    return 0;
}

/* Opens observed.db read-only once the watcher has created it, then starts reconciling. */
/* ---- fresh start (ctrlsvc_def_t.fresh_pods) ---- */

static void s_fresh_free(run_t *m)
{
    for (size_t i = 0; i < m->nfresh; i++)
        free(m->fresh[i]);
    free(m->fresh);
    m->fresh = NULL;
    m->nfresh = m->capfresh = 0;
}

/* True when observed.db holds the object (a read error counts as held: never wait on it). */
static bool s_fresh_held(run_t *m, const char *kind, const char *ns, const char *name)
{
    store_observed_t *row = NULL;
    int rc = store_observed_get(m->obs, m->cluster, kind, ns, name, &row);
    store_observed_free(&row);
    return rc != ERR_NOTFOUND;
}

static void s_fresh_list(run_t *m, const char *cont);

/* One page of the pod list: notes the pods of observed Ray clusters that observed.db lacks. */
static void s_fresh_page(k8s_client_t *k, const k8s_result_t *res, void *arg)
{
    (void)k;
    run_t *m = arg;
    if (res->err != 0) {
        log_warn("fresh start: cannot list the pods to check observed state is current; starting "
                 "without the check",
                 "error", res->message[0] ? res->message : err_str(res->err), NULL);
        m->fresh_state = FRESH_DONE;
        return;
    }
    size_t i;
    json_t *pod;
    json_array_foreach(json_object_get(res->body, "items"), i, pod)
    {
        const char *ns = jx_str(pod, "metadata.namespace", "");
        const char *name = jx_str(pod, "metadata.name", "");
        const char *rc =
            json_string_value(json_object_get(jx_get(pod, "metadata.labels"), "ray.io/cluster"));
        rc = rc ? rc : "";
        if (!name[0] || !rc[0] || jx_get(pod, "metadata.deletionTimestamp"))
            continue;
        m->fresh_listed++;
        if (!s_fresh_held(m, "RayCluster", ns, rc) || s_fresh_held(m, "Pod", ns, name))
            continue;
        if (m->nfresh == m->capfresh) {
            size_t cap = m->capfresh ? m->capfresh * 2 : 64;
            char **a = realloc(m->fresh, cap * sizeof(*a));
            if (!a)
                break; /* out of memory: wait for what is noted */
            m->fresh = a;
            m->capfresh = cap;
        }
        size_t len = strlen(ns) + strlen(name) + 2;
        char *key = malloc(len);
        if (!key)
            break;
        snprintf(key, len, "%s/%s", ns, name);
        m->fresh[m->nfresh++] = key;
    }
    const char *cont = jx_str(res->body, "metadata.continue", "");
    if (cont[0]) {
        s_fresh_list(m, cont);
        return;
    }
    char nbuf[24], lbuf[24];
    snprintf(nbuf, sizeof(nbuf), "%zu", m->nfresh);
    snprintf(lbuf, sizeof(lbuf), "%zu", m->fresh_listed);
    log_info("fresh start: waiting until observed state holds the pods the API server has", "pods",
             lbuf, "missing", nbuf, NULL);
    m->fresh_t0 = loop_clock_ms();
    m->fresh_state = FRESH_WAITING;
}

/* Lists a page of the pods of Ray clusters (all namespaces; `cont`: the continue token). */
static void s_fresh_list(run_t *m, const char *cont)
{
    m->fresh_state = FRESH_LISTING;
    int64_t id = k8s_list(m->client, &(k8s_res_t){.version = "v1", .resource = "pods"},
                          &(k8s_opts_t){.label_selector = "ray.io/cluster",
                                        .limit = CTRLSVC_FRESH_PAGE,
                                        .continue_token = cont},
                          s_fresh_page, m);
    if (id < 0) {
        log_warn("fresh start: cannot list the pods; starting without the check", "error",
                 err_str((int)id), NULL);
        m->fresh_state = FRESH_DONE;
    }
}

/* True once the fresh start is over: observed.db holds every pod noted, or the wait timed out. */
static bool s_fresh_ready(run_t *m)
{
    if (!m->def->fresh_pods || !m->client || m->fresh_state == FRESH_DONE)
        return true;
    if (m->fresh_state == FRESH_IDLE)
        s_fresh_list(m, NULL);
    if (m->fresh_state != FRESH_WAITING)
        return m->fresh_state == FRESH_DONE;
    for (size_t i = 0; i < m->nfresh;) {
        char *slash = strchr(m->fresh[i], '/');
        *slash = '\0';
        bool held = s_fresh_held(m, "Pod", m->fresh[i], slash + 1);
        *slash = '/';
        if (held) {
            free(m->fresh[i]);
            m->fresh[i] = m->fresh[--m->nfresh];
        } else {
            i++;
        }
    }
    int64_t waited = loop_clock_ms() - m->fresh_t0;
    char wbuf[24], nbuf[24];
    snprintf(wbuf, sizeof(wbuf), "%" PRId64, waited);
    snprintf(nbuf, sizeof(nbuf), "%zu", m->nfresh);
    if (m->nfresh == 0) {
        log_info("fresh start: observed state is current", "waited_ms", wbuf, NULL);
    } else if (waited >= CTRLSVC_FRESH_MAX_MS) {
        log_warn("fresh start: observed state still lacks pods the API server has; starting "
                 "anyway (is the watcher running?)",
                 "missing", nbuf, "example", m->fresh[0], "waited_ms", wbuf, NULL);
    } else {
        return false;
    }
    s_fresh_free(m);
    m->fresh_state = FRESH_DONE;
    return true;
}

static int64_t s_try_open(loop_t *loop, int64_t id, void *arg)
{
    run_t *m = arg;
    int err = ERR_NOTFOUND;
    if (!m->obs && access(m->obs_path, F_OK) == 0) /* (again after a fresh-start poll) */
        m->obs = store_open(m->obs_path, STORE_READONLY, &err);
    if (!m->obs) {
        log_info("waiting for observed state", "path", m->obs_path, "error", err_str(err), NULL);
        return CTRLSVC_OPEN_RETRY_MS;
    }
    if (m->def->leases_db && !m->leases_db) {
        buf_t path;
        buf_init(&path, S_PATH_MAX);
        int e = 0;
        if (svc_state_path(m->svc, CTRLSVC_LEASES_DB, &path) == 0)
            m->leases_db = store_open(buf_str(&path), STORE_READWRITE | STORE_LEASES, &e);
        if (!m->leases_db)
            log_error("leases.db unavailable", "path", buf_str(&path), "error", err_str(e), NULL);
        buf_free(&path);
        if (!m->leases_db)
            return ERR_IO - 100;
    }
    if (!s_fresh_ready(m))
        return CTRLSVC_FRESH_POLL_MS;
    ctrlsvc_env_t env = {.svc = m->svc,
                         .cluster = m->cluster,
                         .observed = m->obs,
                         .client = m->client,
                         .audit = m->audit,
                         .db = m->db,
                         .fence = s_fence,
                         .fence_arg = m,
                         .requeue_ms = cfg_duration_ms(m->svc->cfg, "requeue"),
                         .leases = m->def->leases_db ? m->leases_db : NULL};
    env.ctrl = (ctrl_config_t){.cluster = env.cluster,
                               .observed = env.observed,
                               .client = env.client,
                               .audit = env.audit,
                               .events = true,
                               .requeue_ms = env.requeue_ms,
                               .fence = env.fence,
                               .fence_arg = env.fence_arg};
    m->opened = true;
    ctrl_t *first = m->def->open(&env, m->def->arg);
    if (!first || s_start_unit(m, first) != 0) {
        log_error("controller could not start", "service", m->def->name, NULL);
        return ERR_NOMEM - 100;
    }
    for (size_t i = 0; i < m->def->nextra && i < CTRLSVC_MAX_CTRLS - 1; i++) {
        m->opened_extra[i] = true;
        ctrl_t *c = m->def->extra[i].open(&env, m->def->extra[i].arg);
        if (!c)
            continue; /* not run (e.g. its feature gate is off); the service said why */
        if (s_start_unit(m, c) != 0) {
            log_error("controller could not start", "service", m->def->name, "kind",
                      ctrl_config(c)->kind->kind, NULL);
            return ERR_NOMEM - 100;
        }
    }
    log_info("controller started", "service", m->def->name, "cluster", m->cluster, "observed",
             m->obs_path, NULL);
    s_resync_scan(m, false);
    memset(m->resync_pending, 0, m->shards * sizeof(*m->resync_pending));
    if (cfg_duration_ms(m->svc->cfg, "resync") > 0)
        loop_add_timer(loop, cfg_duration_ms(m->svc->cfg, "resync"), s_resync, m);
    return LOOP_TIMER_DONE;
}

/* Starts shard leases when --shards.lease is sqlite or kubernetes. Returns 0, or an err_t
 * (reported on stderr). */
static int s_start_leases(run_t *m)
{
    const char *name = m->def->name;
    const char *mode = cfg_str(m->svc->cfg, "shards.lease");
    if (strcmp(mode, "off") == 0)
        return 0;
    size_t nowned = 0;
    cfg_list(m->svc->cfg, "shards.owned", &nowned);
    if (nowned > 0) {
        fprintf(stderr, "%s: --shards.owned and --shards.lease %s exclude each other\n", name,
                mode);
        return ERR_INVAL;
    }
    int e = 0;
    if (strcmp(mode, "sqlite") == 0) {
        buf_t path;
        buf_init(&path, S_PATH_MAX);
        if (svc_state_path(m->svc, CTRLSVC_LEASES_DB, &path) == 0)
            m->leases_db = store_open(buf_str(&path), STORE_READWRITE | STORE_LEASES, &e);
        if (!m->leases_db)
            fprintf(stderr, "%s: %s: %s\n", name, buf_str(&path), err_str(e));
        buf_free(&path);
        m->lease = m->leases_db ? lease_sqlite_new(m->svc->loop, m->leases_db) : NULL;
    } else { // "kubernetes": cfg admits only the declared choices
        const char *ns = cfg_str(m->svc->cfg, "shards.lease-namespace");
        if (!ns || !*ns)
            ns = k8s_client_namespace(m->client);
        char ua[CTRLSVC_NAME_MAX + 64];
        snprintf(ua, sizeof(ua), "rayfleet-%s-leases/%s", name, RF_VERSION);
        m->lease_client = k8s_client_new(m->svc->loop, m->kc,
                                         &(k8s_config_t){.qps = CTRLSVC_LEASE_QPS,
                                                         .burst = CTRLSVC_LEASE_QPS,
                                                         .user_agent = ua});
        m->lease = m->lease_client
                       ? lease_k8s_new(m->svc->loop, m->lease_client, ns && *ns ? ns : "default")
                       : NULL;
    }
    if (!m->lease)
        return ERR_NOMEM;
    /* holder ids may not contain '/': "scheduler/1" holds as "scheduler-1" */
    char id[SHARDS_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%s", cfg_str(m->svc->cfg, "replica"));
    for (char *p = id; *p; p++)
        if (*p == '/')
            *p = '-';
    int64_t lease_ms = cfg_duration_ms(m->svc->cfg, "shards.lease-duration");
    m->groups = (uint32_t)cfg_int(m->svc->cfg, "shards.lease-groups");
    if (m->groups == 0)
        m->groups = strcmp(mode, "sqlite") == 0 ? m->shards : CTRLSVC_K8S_LEASE_GROUPS;
    if (m->groups > m->shards)
        m->groups = m->shards;
    m->sh = shards_new(
        m->svc->loop, m->lease, name, id, m->groups, lease_ms, lease_ms / CTRLSVC_RENEW_DIV,
        &(shards_callbacks_t){.on_acquire = s_on_acquire, .on_release = s_on_release, .arg = m});
    if (!m->sh) {
        fprintf(stderr, "%s: cannot start shard leases (replica id %s)\n", name, id);
        return ERR_INVAL;
    }
    char gbuf[16];
    snprintf(gbuf, sizeof(gbuf), "%" PRIu32, m->groups);
    log_info("shard leases", "backend", mode, "replica", id, "groups", gbuf, NULL);
    return 0;
}

/* ---------- the leader Lease and the KubeRay check ---------- */

/* Ends the process with `code` once the loop returns. */
static void s_end_with(run_t *m, int code)
{
    if (m->exit_code == 0)
        m->exit_code = code;
    loop_stop(m->svc->loop);
}

/* Leadership changed: on becoming leader queue every object of the owned shards (nothing was
 * reconciled while standby); on losing it end the process (leader.h: LOST is final). */
static void s_on_leader(leader_t *l, bool leading, void *arg)
{
    run_t *m = arg;
    if (leading) {
        log_info("leading: reconciling", "lease", cfg_str(m->svc->cfg, "leader.id"), "identity",
                 leader_holder(l), NULL);
        if (m->obs && m->nu > 0)
            s_resync_scan(m, false);
        return;
    }
    log_error("leader lease lost: exiting so the supervisor restarts this process as a standby",
              "holder", leader_holder(l), NULL);
    s_end_with(m, SVC_EXIT_FAILURE);
}

/* The identity: --leader.identity, else leader_default_identity(hostname, state dir). */
static int s_identity(const run_t *m, char *out, size_t size)
{
    const char *id = cfg_str(m->svc->cfg, "leader.identity");
    if (id && *id) {
        int n = snprintf(out, size, "%s", id);
        return n > 0 && (size_t)n < size && (size_t)n <= LEASE_NAME_MAX ? 0 : ERR_TOOBIG;
    }
    char host[256] = "", dir[PATH_MAX];
    const char *sd = cfg_str(m->svc->cfg, "state-dir");
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        snprintf(host, sizeof(host), "localhost");
    if (!realpath(sd && *sd ? sd : ".", dir))
        return ERR_IO;
    return leader_default_identity(host, dir, out, size);
}

/* Starts the election (the KubeRay check has passed). Returns 0 or an err_t (reported). */
static int s_start_election(run_t *m)
{
    const char *ns = cfg_str(m->svc->cfg, "leader.namespace");
    if (!ns || !*ns)
        ns = m->in_cluster ? k8s_client_namespace(m->client) : NULL;
    if (!ns || !*ns)
        ns = LEADER_DEFAULT_NAMESPACE;
    char id[LEASE_NAME_MAX + 1];
    int rc = s_identity(m, id, sizeof(id));
    if (rc != 0) {
        fprintf(stderr, "%s: leader.identity: cannot make one (%s); set --leader.identity\n",
                m->def->name, err_str(rc));
        return rc;
    }
    m->leader_lease = lease_k8s_new(m->svc->loop, m->leader_client, ns);
    buf_t err;
    buf_init(&err, 512);
    m->leader = m->leader_lease
                    ? leader_new(m->svc->loop, m->leader_lease,
                                 &(leader_config_t){.name = cfg_str(m->svc->cfg, "leader.id"),
                                                    .identity = id,
                                                    .lease_ms = cfg_duration_ms(
                                                        m->svc->cfg, "leader.lease-duration"),
                                                    .on_change = s_on_leader,
                                                    .arg = m},
                                 &err)
                    : NULL;
    if (!m->leader) {
        fprintf(stderr, "%s: leader election: %s\n", m->def->name,
                err.len ? buf_str(&err) : "out of memory");
        buf_free(&err);
        return ERR_INVAL;
    }
    buf_free(&err);
    log_info("leader election: standby until the lease is held", "lease",
             cfg_str(m->svc->cfg, "leader.id"), "namespace", ns, "identity", id, NULL);
    return 0;
}

static int64_t s_kuberay_check(loop_t *loop, int64_t id, void *arg);

/* The KubeRay check's answer. An active KubeRay operator ends the process (exit 2) unless
 * --leader.take-over, at start and at every re-check (every --leader.lease-duration: a KubeRay
 * operator started later is not fought either). Before the first answer nothing is written; a
 * check that fails is retried every CTRLSVC_KUBERAY_RETRY_MS, except a 403 (no permission to list
 * Leases cluster-wide), which is warned about and then treated as "none found". */
static void s_kuberay_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    (void)c;
    run_t *m = arg;
    m->kuberay_req = 0;
    int64_t period = cfg_duration_ms(m->svc->cfg, "leader.lease-duration");
    buf_t msg;
    buf_init(&msg, 2048);
    int found = 0;
    bool retry = false;
    if (r->err == 0)
        found = leader_kuberay_judge(r->body, store_wall_ms(), "--leader.take-over", &msg);
    else if (r->status == 403 && !m->kuberay_checked)
        log_warn("cannot tell whether a KubeRay operator is reconciling: listing Leases in all "
                 "namespaces is forbidden (grant list on coordination.k8s.io leases cluster-wide)",
                 "message", r->message, NULL);
    if ((r->err != 0 && r->status != 403) || found < 0) {
        log_warn(
            m->kuberay_checked ? "KubeRay re-check failed; retrying"
                               : "KubeRay check failed; retrying (nothing is written meanwhile)",
            "error", found < 0 ? "not a LeaseList" : err_str(r->err), "message", r->message, NULL);
        period = CTRLSVC_KUBERAY_RETRY_MS;
        retry = true;
    } else if (found && !cfg_bool(m->svc->cfg, "leader.take-over")) {
        fprintf(stderr, "%s: %s\n", m->def->name, buf_str(&msg));
        log_error("refusing to fight a KubeRay operator", "why", buf_str(&msg), NULL);
        buf_free(&msg);
        s_end_with(m, SVC_EXIT_USAGE);
        return;
    } else if (found && !m->kuberay_checked) {
        log_warn("--leader.take-over: reconciling although a KubeRay operator is active; both "
                 "will write until it is stopped",
                 "found", buf_str(&msg), NULL);
    }
    buf_free(&msg);
    if (loop_add_timer(m->svc->loop, period, s_kuberay_check, m) < 0)
        log_error("KubeRay re-check not armed", NULL);
    if (m->kuberay_checked || retry)
        return;
    if (m->elect && s_start_election(m) != 0) {
        s_end_with(m, SVC_EXIT_FAILURE);
        return;
    }
    m->kuberay_checked = true;
    if (!m->elect && m->obs && m->nu > 0)
        s_resync_scan(m, false);
}

/* Lists KubeRay's leader Lease in every namespace. */
static int64_t s_kuberay_check(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    run_t *m = arg;
    k8s_res_t res = {.group = "coordination.k8s.io", .version = "v1", .resource = "leases"};
    int64_t req = k8s_list(m->leader_client, &res,
                           &(k8s_opts_t){.field_selector = "metadata.name=" LEADER_KUBERAY_LEASE},
                           s_kuberay_done, m);
    if (req < 0) {
        log_warn("KubeRay check not sent; retrying", "error", err_str((int)req), NULL);
        return CTRLSVC_KUBERAY_RETRY_MS;
    }
    m->kuberay_req = req;
    return LOOP_TIMER_DONE;
}

static int64_t s_version_check(loop_t *loop, int64_t id, void *arg);

/* The /version answer (ctrlsvc_def_t.server_version): the check passes -> the KubeRay check
 * starts; it fails -> the process ends; no answer -> retried. */
static void s_version_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    (void)c;
    run_t *m = arg;
    if (r->err != 0 && r->status == 0) {
        log_warn("reading the API server version failed; retrying", "error", err_str(r->err),
                 "message", r->message, NULL);
        if (loop_add_timer(m->svc->loop, CTRLSVC_KUBERAY_RETRY_MS, s_version_check, m) < 0)
            s_end_with(m, SVC_EXIT_FAILURE);
        return;
    }
    buf_t err;
    buf_init(&err, 1024);
    if (m->def->server_version(r->err == 0 ? r->body : NULL, m->def->arg, &err) != 0) {
        fprintf(stderr, "%s: %s\n", m->def->name, buf_str(&err));
        log_error("refusing to start", "why", buf_str(&err), NULL);
        buf_free(&err);
        s_end_with(m, SVC_EXIT_FAILURE);
        return;
    }
    buf_free(&err);
    if (loop_add_timer(m->svc->loop, 0, s_kuberay_check, m) < 0)
        s_end_with(m, SVC_EXIT_FAILURE);
}

/* GET /version once at start. */
static int64_t s_version_check(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    run_t *m = arg;
    int64_t req =
        k8s_raw(m->leader_client, "GET", "/version", NULL, NULL, 0, NULL, s_version_done, m);
    if (req < 0) {
        log_warn("API server version request not sent; retrying", "error", err_str((int)req), NULL);
        return CTRLSVC_KUBERAY_RETRY_MS;
    }
    return LOOP_TIMER_DONE;
}

/* Starts the KubeRay check (after the /version check when the service has one), then (with
 * --leader.elect) the election, on a client of their own (a renewal never waits behind
 * reconcile writes in the rate limiter). Returns 0 or an err_t. */
static int s_start_leader(run_t *m)
{
    m->elect = cfg_bool(m->svc->cfg, "leader.elect");
    char ua[CTRLSVC_NAME_MAX + 64];
    snprintf(ua, sizeof(ua), "rayfleet-%s-leader/%s", m->def->name, RF_VERSION);
    m->leader_client = k8s_client_new(
        m->svc->loop, m->kc,
        &(k8s_config_t){.qps = CTRLSVC_LEASE_QPS, .burst = CTRLSVC_LEASE_QPS, .user_agent = ua});
    bool version = m->def->server_version &&
                   (!m->def->wants_server_version || m->def->wants_server_version(m->def->arg));
    if (!m->leader_client ||
        loop_add_timer(m->svc->loop, 0, version ? s_version_check : s_kuberay_check, m) < 0)
        return ERR_NOMEM;
    return 0;
}

/* Stops the shards cleanly after the loop ended: releases every lease so the other replicas
 * take over at once (bounded by CTRLSVC_STOP_MAX_MS; the leases expire otherwise). */
static void s_stop_leases(run_t *m)
{
    if (!m->sh || shards_stop(m->sh) != 0)
        return;
    int64_t deadline = loop_clock_ms() + CTRLSVC_STOP_MAX_MS;
    while (shards_pending(m->sh) > 0 && loop_clock_ms() < deadline)
        loop_run_once(m->svc->loop, CTRLSVC_STOP_POLL_MS);
}

int ctrlsvc_parse_owned(const char *const *items, size_t n, uint32_t shards, bool *owned)
{
    for (uint32_t s = 0; s < shards; s++)
        owned[s] = n == 0;
    for (size_t i = 0; i < n; i++) {
        char *end = NULL;
        long a = strtol(items[i], &end, 10), b = a;
        if (end == items[i])
            return ERR_INVAL;
        if (*end == '-') {
            const char *s2 = end + 1;
            b = strtol(s2, &end, 10);
            if (end == s2)
                return ERR_INVAL;
        }
        if (*end || a < 0 || b < a || b >= (long)shards)
            return ERR_INVAL;
        for (long s = a; s <= b; s++)
            owned[s] = true;
    }
    return 0;
}

/* The option table of `def`: s_options with the name's and the port's defaults, then the service's
 * own, into out[max] (NULL-key terminated); `names` holds the default strings. Returns 0 or
 * ERR_TOOBIG. */
static int s_table(const ctrlsvc_def_t *def, cfg_opt_t *out, size_t max,
                   char names[3][CTRLSVC_NAME_MAX + 8])
{
    snprintf(names[0], sizeof(names[0]), "%s/0", def->name);
    snprintf(names[1], sizeof(names[1]), "%s.db", def->name);
    snprintf(names[2], sizeof(names[2]), "%d",
             def->health_port > 0   ? def->health_port
             : def->health_port < 0 ? 0
                                    : CTRLSVC_HEALTH_PORT);
    size_t n = 0;
    for (const cfg_opt_t *o = s_options; o->key && n < max; o++) {
        out[n] = *o;
        if (!strcmp(o->key, "replica"))
            out[n].def = names[0];
        else if (!strcmp(o->key, "audit.db"))
            out[n].def = names[1];
        else if (!strcmp(o->key, "health.port"))
            out[n].def = names[2];
        n++;
    }
    for (const cfg_opt_t *o = busopt_client_options; o->key && n < max; o++)
        out[n++] = *o;
    for (const cfg_opt_t *o = def->options; o && o->key && n < max; o++)
        out[n++] = *o;
    for (const cfg_opt_t *o = def->shared_options; o && o->key && n < max; o++)
        out[n++] = *o;
    if (n >= max)
        return ERR_TOOBIG;
    out[n] = (cfg_opt_t){0};
    return 0;
}

int ctrlsvc_main(const ctrlsvc_def_t *def, int argc, char **argv)
{
    if (!def || !def->name || !def->open || strlen(def->name) >= CTRLSVC_NAME_MAX) {
        fprintf(stderr, "controller: bad service definition\n");
        return SVC_EXIT_FAILURE;
    }
    cfg_opt_t table[sizeof(s_options) / sizeof(s_options[0]) + S_BUSOPT_N + CTRLSVC_MAX_OPTIONS];
    char names[3][CTRLSVC_NAME_MAX + 8];
    if (s_table(def, table, sizeof(table) / sizeof(table[0]), names) != 0) {
        fprintf(stderr, "%s: too many options\n", def->name);
        return SVC_EXIT_FAILURE;
    }
    svc_t svc;
    if (svc_start(&svc, def->name, table, argc, argv) != 0)
        return svc.exit_code;
    int code = SVC_EXIT_FAILURE;
    run_t m = {.def = def, .svc = &svc, .cluster = cfg_str(svc.cfg, "cluster")};
    m.u[0].m = &m;
    m.shards = (uint32_t)cfg_int(svc.cfg, "shards");
    kubeconfig_t *kc = NULL;
    buf_t path, err;
    buf_init(&path, S_PATH_MAX);
    buf_init(&err, S_PATH_MAX);
    m.owned = calloc(m.shards, sizeof(*m.owned));
    m.resync_pending = calloc(m.shards, sizeof(*m.resync_pending));
    m.settle_pending = calloc(m.shards, sizeof(*m.settle_pending));
    if (!m.owned || !m.resync_pending || !m.settle_pending)
        goto done;
    size_t nowned = 0;
    const char *const *owned = cfg_list(svc.cfg, "shards.owned", &nowned);
    if (ctrlsvc_parse_owned(owned, nowned, m.shards, m.owned) != 0) {
        fprintf(stderr, "%s: shards.owned: want numbers or ranges a-b below %u\n", def->name,
                m.shards);
        code = SVC_EXIT_USAGE;
        goto done;
    }
    if (def->configure && def->configure(svc.cfg, def->arg, &err) != 0) {
        fprintf(stderr, "%s: %s\n", def->name, buf_str(&err));
        code = SVC_EXIT_USAGE;
        goto done;
    }
    if (def->check && def->check(svc.cfg, def->arg, &err) != 0) {
        fprintf(stderr, "%s: %s\n", def->name, buf_str(&err));
        code = SVC_EXIT_USAGE;
        goto done;
    }
    const char *kcpath = cfg_str(svc.cfg, "kubeconfig");
    m.in_cluster = !kcpath && !getenv("KUBECONFIG") && getenv("KUBERNETES_SERVICE_HOST");
    int rc = m.in_cluster ? kubeconfig_in_cluster(NULL, &kc, &err)
                          : kubeconfig_load(kcpath, cfg_str(svc.cfg, "context"), &kc, &err);
    if (rc != 0) {
        fprintf(stderr, "%s: kubeconfig: %s\n", def->name, buf_str(&err));
        code = SVC_EXIT_USAGE;
        goto done;
    }
    m.kc = kc;
    char ua[CTRLSVC_NAME_MAX + 64];
    snprintf(ua, sizeof(ua), "rayfleet-%s/%s", def->name, RF_VERSION);
    m.client =
        k8s_client_new(svc.loop, kc,
                       &(k8s_config_t){.qps = (double)cfg_int(svc.cfg, "client.qps"),
                                       .burst = (int)cfg_int(svc.cfg, "client.burst"),
                                       .max_inflight = (int)cfg_int(svc.cfg, "client.max-inflight"),
                                       .max_connections = cfg_int(svc.cfg, "client.connections"),
                                       .user_agent = ua});
    if (!m.client || svc_state_path(&svc, cfg_str(svc.cfg, "audit.db"), &path) != 0)
        goto done;
    int e = 0;
    m.db = store_open(buf_str(&path), STORE_READWRITE | STORE_AUDIT | STORE_DESIRED, &e);
    if (!m.db || store_attach_loop_every(m.db, svc.loop, CTRLSVC_FLUSH_EVERY_MS) != 0) {
        fprintf(stderr, "%s: %s: %s\n", def->name, buf_str(&path), err_str(e));
        goto done;
    }
    m.audit = actlog_new(
        m.db, &(actlog_actor_t){.service = def->name, .replica = cfg_str(svc.cfg, "replica")});
    buf_reset(&path);
    if (!m.audit || svc_state_path(&svc, "observed.db", &path) != 0)
        goto done;
    m.obs_path = buf_take(&path, NULL);
    bus_options_t bo = {.endpoint = cfg_str(svc.cfg, "bus.endpoint"),
                        .hwm = (int)cfg_int(svc.cfg, "bus.hwm")};
    busopt_keys_t keys;
    buf_reset(&err);
    if (busopt_client(svc.cfg, &keys, &bo, &err) != 0) {
        fprintf(stderr, "%s: %s\n", def->name, buf_str(&err));
        code = SVC_EXIT_USAGE;
        goto done;
    }
    m.sub = bus_sub_new(svc.loop, svc.zctx, &bo, s_on_msg, s_on_peer, &m);
    busopt_keys_clear(&keys); // the subscriber keeps what it needs
    if (!m.obs_path || !m.sub)
        goto done;
    bus_sub_on_gap(m.sub, s_on_gap);
    if (s_start_leases(&m) != 0) {
        code = SVC_EXIT_USAGE;
        goto done;
    }
    if (s_start_leader(&m) != 0)
        goto done;
    for (uint32_t s = 0; !m.sh && s < m.shards; s++)
        if (m.owned[s] && bus_sub_subscribe(m.sub, s) != 0)
            goto done;
    if (s_start_ops(&m) != 0)
        goto done;
    if (loop_add_timer(svc.loop, 0, s_try_open, &m) < 0)
        goto done;
    code = svc_run(&svc);
    if (m.exit_code > 0)
        code = m.exit_code;
    s_stop_leases(&m);
    if (m.sh) {
        char dbuf[32];
        uint64_t dropped = 0;
        for (size_t i = 0; i < m.nu; i++)
            dropped += m.u[i].dropped;
        snprintf(dbuf, sizeof(dbuf), "%" PRIu64, dropped);
        log_info("controller stopped", "service", def->name, "dropped_unowned", dbuf, NULL);
    }
done:
    opsrv_destroy(&m.ops);
    leader_destroy(&m.leader);
    lease_backend_destroy(&m.leader_lease);
    k8s_client_destroy(&m.leader_client);
    shards_destroy(&m.sh);
    lease_backend_destroy(&m.lease);
    k8s_client_destroy(&m.lease_client);
    for (size_t i = 0; i < CTRLSVC_MAX_CTRLS; i++)
        workq_destroy(&m.u[i].q);
    bus_sub_destroy(&m.sub);
    /* the controller before its client: it may cancel calls it made through the client (a Ray
     * dashboard call through the service proxy); the requests of passes it frees stay in the
     * client, which then drops them without a callback (the loop does not turn in between) */
    for (size_t i = def->nextra; i-- > 0;)
        if (i < CTRLSVC_MAX_CTRLS - 1 && m.opened_extra[i] && def->extra[i].close)
            def->extra[i].close(def->extra[i].arg);
    if (m.opened && def->close)
        def->close(def->arg);
    k8s_client_destroy(&m.client);
    actlog_destroy(&m.audit);
    store_destroy(&m.obs);
    kubeconfig_destroy(&kc);
    s_fresh_free(&m);
    free(m.owned);
    free(m.resync_pending);
    free(m.settle_pending);
    free(m.obs_path);
    buf_free(&path);
    buf_free(&err);
    svc_end(&svc);
    if (m.scrape)
        def->scrape->close(m.scrape);
    store_set_commit_metric(m.db, NULL); /* the registry goes first */
    metrics_destroy(&m.metrics);
    store_destroy(&m.leases_db);
    store_destroy(&m.db); /* attached to the loop: after it */
    return code;
}

int ctrlsvc_check_cluster_domain(const cfg_t *cfg, buf_t *err)
{
    const char *dom = cfg_str(cfg, "cluster-domain");
    size_t n = dom ? strlen(dom) : 0;
    if (n > 253 || (n && strspn(dom, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)) {
        buf_printf(err,
                   "--cluster-domain: \"%.64s\" must be a DNS name (lower-case letters, digits, "
                   "'-' and '.'; at most 253 characters)",
                   dom);
        return ERR_INVAL;
    }
    return 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------- self-test ---------- */

/* The namespace scope of the self-test: only "ns". */
static bool s_t_watches(const char *ns, void *arg)
{
    (void)arg;
    return strcmp(ns, "ns") == 0;
}

int ctrlsvc_test(bool verbose)
{
    int failed = 0;
    bool owned[16];
    CHECK(ctrlsvc_parse_owned(NULL, 0, 16, owned) == 0 && owned[0] && owned[15]);
    const char *spec[] = {"3", "8-10"};
    CHECK(ctrlsvc_parse_owned(spec, 2, 16, owned) == 0);
    CHECK(owned[3] && owned[8] && owned[9] && owned[10] && !owned[0] && !owned[7] && !owned[11]);
    const char *bad[][1] = {{"x"}, {"3-"}, {"5-2"}, {"16"}, {"-1"}, {"2x"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(ctrlsvc_parse_owned(bad[i], 1, 16, owned) == ERR_INVAL);

    /* the table: the common options with the name's defaults, then the service's */
    static const cfg_opt_t own[] = {
        {"random-pod-delete", CFG_BOOL, "false", 0, 0, false, false, "x", NULL}, {NULL}};
    ctrlsvc_def_t def = {.name = "widgets", .options = own};
    cfg_opt_t table[sizeof(s_options) / sizeof(s_options[0]) + S_BUSOPT_N + 2];
    char names[3][CTRLSVC_NAME_MAX + 8];
    CHECK(s_table(&def, table, sizeof(table) / sizeof(table[0]), names) == 0);
    size_t n = 0;
    const char *replica = NULL, *db = NULL, *port = NULL;
    bool has_own = false, has_bus = false;
    for (; table[n].key; n++) {
        if (!strcmp(table[n].key, "replica"))
            replica = table[n].def;
        if (!strcmp(table[n].key, "audit.db"))
            db = table[n].def;
        if (!strcmp(table[n].key, "health.port"))
            port = table[n].def;
        has_own = has_own || !strcmp(table[n].key, "random-pod-delete");
        has_bus = has_bus || !strcmp(table[n].key, "bus.curve-server-key-file");
    }
    CHECK(n == sizeof(s_options) / sizeof(s_options[0]) + S_BUSOPT_N);
    CHECK(has_bus); /* the bus client options of common/busopt.h */
    CHECK(replica && !strcmp(replica, "widgets/0") && db && !strcmp(db, "widgets.db") && has_own);
    CHECK(port && !strcmp(port, "8083"));
    CHECK(s_table(&def, table, 4, names) == ERR_TOOBIG);
    /* the service's own port default, or off */
    def.health_port = 9100;
    CHECK(s_table(&def, table, sizeof(table) / sizeof(table[0]), names) == 0);
    CHECK(!strcmp(names[2], "9100"));
    def.health_port = -1;
    CHECK(s_table(&def, table, sizeof(table) / sizeof(table[0]), names) == 0);
    CHECK(!strcmp(names[2], "0"));
    CHECK(ctrlsvc_main(NULL, 0, NULL) == SVC_EXIT_FAILURE);

    /* readiness before observed.db is open, and the families at scrape time */
    run_t m = {.def = &def, .obs_path = "/state/observed.db"};
    m.u[0].m = &m;
    buf_t why, out;
    buf_init(&why, 1024);
    buf_init(&out, 1 << 16);
    CHECK(s_readiness(&m, &why) == 2);
    CHECK(!strcmp(buf_str(&why), "observed database /state/observed.db not open yet (the watcher "
                                 "creates it)\nKubeRay check not done (is a KubeRay operator "
                                 "reconciling?)\n"));
    metrics_t *reg = metrics_new();
    CHECK(reg && s_register_metrics(reg, "widget", &m.u[0]) == 0);
    CHECK(reg && s_register_metrics(reg, "widget", &m.u[0]) == ERR_EXISTS); /* once per name */
    unit_t second = {.m = &m, .dropped = 5};
    CHECK(reg && s_register_metrics(reg, "gadget", &second) == 0); /* a second controller */
    m.u[0].dropped = 3;
    CHECK(reg && metrics_render(reg, &out) == 0);
    const char *txt = buf_str(&out);
    CHECK(strstr(txt, "# TYPE rayfleet_controller_passes_total counter\n"
                      "rayfleet_controller_passes_total{controller=\"widget\"} 0\n") != NULL);
    CHECK(strstr(txt, "rayfleet_controller_keys_dropped_total{controller=\"widget\"} 3\n"));
    CHECK(strstr(txt, "rayfleet_controller_keys_dropped_total{controller=\"gadget\"} 5\n"));
    CHECK(strstr(txt,
                 "controller_runtime_reconcile_total{controller=\"widget\",result=\"success\"} "
                 "0\ncontroller_runtime_reconcile_total{controller=\"widget\",result=\"error\"} "
                 "0\n"));
    CHECK(strstr(txt, "# TYPE workqueue_depth gauge\nworkqueue_depth{name=\"widget\"} 0\n"));
    CHECK(s_read_metric(&m.u[0], M_READY) == 0);
    /* writes wait for the KubeRay check and, with election, for the lease */
    CHECK(s_read_metric(&m.u[0], M_IS_LEADER) == 0 && !s_owns(&m, 0));
    m.kuberay_checked = true;
    m.shards = 4;
    bool all[4] = {true, true, true, true};
    m.owned = all;
    CHECK(s_read_metric(&m.u[0], M_IS_LEADER) == 1 && s_owns(&m, 0)); /* election off */
    m.elect = true; /* on, no lease held */
    CHECK(s_read_metric(&m.u[0], M_IS_LEADER) == 0 && !s_owns(&m, 0) && !s_fence("c/ns/x", &m));
    CHECK(s_read_metric(&m.u[0], M_LEADER_TRANSITIONS) == 0);
    /* the namespace scope: keys of other namespaces are neither reconciled nor written */
    m.elect = false;
    CHECK(s_fence("c/ns/x", &m) && s_fence("c/other/x", &m));
    def.watches = s_t_watches;
    CHECK(s_fence("c/ns/x", &m) && !s_fence("c/other/x", &m));
    /* shared options follow the service's own */
    static const cfg_opt_t shared[] = {
        {"feature-gates", CFG_STRING, "", 0, 0, false, false, "x", NULL}, {NULL}};
    def.shared_options = shared;
    cfg_opt_t big[sizeof(s_options) / sizeof(s_options[0]) + S_BUSOPT_N + 4];
    CHECK(s_table(&def, big, sizeof(big) / sizeof(big[0]), names) == 0);
    n = sizeof(s_options) / sizeof(s_options[0]) - 1 + S_BUSOPT_N;
    CHECK(!strcmp(big[n].key, "random-pod-delete") && !strcmp(big[n + 1].key, "feature-gates"));
    CHECK(big[n + 2].key == NULL);
    metrics_destroy(&reg);
    buf_free(&why);
    buf_free(&out);
    return SELFTEST_RESULT("ctrlsvc", verbose);
}

#endif /* RF_SELFTEST */
