/*
 * rayfleet-scheduler: reconciles RayClusters (reconcile.h). It subscribes to its shards on the
 * bus, puts the key of every ObjectChanged about a RayCluster on its work queue, reads observed
 * state from <state-dir>/observed.db (read-only; the watcher writes it, so the open is retried
 * until the watcher has created the file), writes through the Kubernetes API, and audits every
 * write into its own <state-dir>/scheduler.db. A periodic resync re-queues every RayCluster of
 * its shards, so a lost bus event costs latency, never correctness.
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
 * Ownership and fencing. on_acquire(shard) subscribes the bus to the shard and queues every
 * RayCluster of it from observed.db (a resync, batched: one scan for all shards acquired in one
 * loop turn). on_release(shard) unsubscribes. The work queue's dispatch goes through
 * s_reconcile(), which drops a key whose shard is not owned (shards_owns(), which reads the
 * monotonic clock itself) before its pass starts, so no pass of a key of a released or lost
 * shard STARTS after the release; and reconcile calls s_fence() right before each API write,
 * so a pass that started while the shard was owned sends nothing once it is not (the write is
 * withheld, unaudited, and the pass ends). What remains is a write already sent when the shard
 * is lost: the shards module releases a lease margin_ms after on_release(), and a lost lease is
 * only taken by another replica after its expiry, at least margin_ms after our local deadline,
 * so such a write lands before the new owner can start as long as it completes within margin_ms
 * (lease-duration / SHARDS_MARGIN_DIV: 2.5 s for the default 10 s lease).
 * Lease groups. A lease covers a group of shards: shard s belongs to group s % G, with G from
 * --shards.lease-groups (0: as many groups as shards for sqlite, where a lease operation is a
 * local transaction; MAIN_K8S_LEASE_GROUPS for kubernetes, where every renewal is an API
 * request: 256 Lease objects renewed every lease-duration / 4 would cost a replica hundreds of
 * requests per second and, sharing the reconciler's rate limit, starve its writes — measured:
 * with 256 Lease objects, --client.qps 40 and a 2 s lease, replicas lost their shards before a
 * round ended). The Kubernetes lease backend also gets a client of its own, so lease renewals
 * never queue behind reconcile writes in the client's rate limiter (a lease that waits there
 * expires).
 *
 * On SIGTERM the replica stops its shards (shards_stop(): on_release, then the leases are
 * released after the margin) so the others take over at once instead of after expiry.
 */
#include "actlog.h"
#include "bus.h"
#include "err.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "lease.h"
#include "log.h"
#include "loop.h"
#include "reconcile.h"
#include "shards.h"
#include "store.h"
#include "svc.h"
#include "workq.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAIN_OPEN_RETRY_MS 1000 /* retry period of the observed.db open */
#define MAIN_SHARD_SPEC_MAX 64 /* longest "a-b" shard range */
#define MAIN_RENEW_DIV 4 /* shard leases are renewed every lease-duration / MAIN_RENEW_DIV */
#define MAIN_LEASE_COMPONENT "scheduler" /* component name of the shard leases */
#define MAIN_LEASES_DB "leases.db" /* the SQLite lease backend's file in the state dir */
#define MAIN_STOP_POLL_MS 20 /* shutdown: period at which pending lease releases are checked */
#define MAIN_STOP_MAX_MS 5000 /* shutdown: longest wait for the lease releases */
#define MAIN_K8S_LEASE_GROUPS 16 /* default lease groups with Kubernetes Lease objects */
#define MAIN_LEASE_QPS 1000 /* the lease client's rate limit (bounded anyway by the groups) */
/* scheduler.db (audit and desired rows) commits at most every 10 ms instead of every loop turn:
 * under load a turn is well under a millisecond, so this turns hundreds of small transactions a
 * second into at most 100. Nothing in the scheduler reads these rows back; a crash loses at most
 * the last 10 ms of rows (store_destroy() flushes on a clean stop). */
#define SCHED_FLUSH_EVERY_MS 10

static const char *const s_lease_modes[] = {"off", "sqlite", "kubernetes", NULL};

static const cfg_opt_t s_options[] = {
    {"cluster", CFG_STRING, "default", 0, 0, false, false,
     "Member cluster name (as the watcher names it); its API server comes from --kubeconfig "
     "(else $KUBECONFIG, ~/.kube/config, or in-cluster).",
     NULL},
    {"context", CFG_STRING, NULL, 0, 0, false, false, "Kubeconfig context; none: current.", NULL},
    {"bus.endpoint", CFG_STRING, BUS_BACKEND_DEFAULT, 0, 0, false, false,
     "Bus backend the scheduler subscribes to.", NULL},
    {"bus.hwm", CFG_INT, "100000", 1, BUS_HWM_MAX, false, false, "Subscriber high-water mark.",
     NULL},
    {"bus.curve-server-key", CFG_STRING, NULL, 0, 0, false, false,
     "Z85 CurveZMQ public key of the bus forwarder; set it to use CURVE.", NULL},
    {"shards", CFG_INT, "256", 1, BUS_SHARD_LIMIT - 1, false, false,
     "Number of shards keys hash into (must match the watcher's).", NULL},
    {"shards.owned", CFG_LIST, NULL, 0, 0, false, false,
     "Shards this replica reconciles, as numbers or ranges \"a-b\"; none: all.", NULL},
    {"shards.lease", CFG_STRING, "off", 0, 0, false, false,
     "Shard ownership: off (own --shards.owned, else all), sqlite (leases in "
     "<state-dir>/" MAIN_LEASES_DB ", replicas on one host) or kubernetes (Lease objects).",
     s_lease_modes},
    {"shards.lease-duration", CFG_DURATION, "10s", 100, 3600000, false, false,
     "Shard lease duration; a dead replica's shards are taken over within two of them.", NULL},
    {"shards.lease-groups", CFG_INT, "0", 0, BUS_SHARD_LIMIT - 1, false, false,
     "Leases the shards are grouped under (shard s in group s % N); 0: one per shard with "
     "sqlite, 16 with kubernetes (each renewal is an API request).",
     NULL},
    {"shards.lease-namespace", CFG_STRING, NULL, 0, 0, false, false,
     "Namespace of the Lease objects (kubernetes); none: the kubeconfig's, else default.", NULL},
    {"replica", CFG_STRING, "scheduler/0", 0, 0, false, false,
     "This replica's name in audit rows and (with '/' as '-') its lease holder id; unique.", NULL},
    {"audit.db", CFG_STRING, "scheduler.db", 0, 0, false, false,
     "Audit database file in the state dir; each replica needs its own.", NULL},
    {"concurrency", CFG_INT, "8", 1, 10000, false, false,
     "Reconciles in flight at once (KubeRay's --reconcile-concurrency).", NULL},
    {"resync", CFG_DURATION, "5m", 0, 86400000, false, false,
     "Period at which every RayCluster of the owned shards is queued again; 0: off.", NULL},
    {"requeue", CFG_DURATION, "300s", 1000, 86400000, false, false,
     "Requeue period after a clean reconcile (RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV).", NULL},
    {"random-pod-delete", CFG_BOOL, "false", 0, 0, false, false,
     "Delete surplus workers even with autoscaling on (ENABLE_RANDOM_POD_DELETE).", NULL},
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
    {NULL},
};

typedef struct {
    svc_t *svc; /* the process */
    const char *cluster; /* member cluster name */
    uint32_t shards; /* shard count */
    uint32_t groups; /* lease groups (shard s in group s % groups); 0 without leases */
    bool *owned; /* owned[shard] */
    char *obs_path; /* observed.db path */
    store_t *obs; /* observed.db, read-only, once it exists */
    store_t *db; /* scheduler.db */
    k8s_client_t *client; /* API client */
    const kubeconfig_t *kc; /* the kubeconfig the clients use */
    actlog_t *audit; /* audit writer */
    reconciler_t *rec; /* reconciler, once obs is open */
    workq_t *q; /* its queue */
    bus_sub_t *sub; /* bus subscriber */
    store_t *leases_db; /* leases.db (sqlite lease backend), or NULL */
    lease_backend_t *lease; /* lease backend, or NULL (--shards.lease off) */
    k8s_client_t *lease_client; /* the kubernetes lease backend's own client, or NULL */
    shards_t *sh; /* shard ownership, or NULL (--shards.lease off) */
    bool *resync_pending; /* resync_pending[shard]: acquired, keys not queued yet */
    bool resync_armed; /* the zero-delay resync timer is armed */
    uint64_t dropped; /* keys dropped at dispatch: shard not owned */
} main_t;

/* True when this replica owns `shard` now. */
static bool s_owns(const main_t *m, uint32_t shard)
{
    if (shard >= m->shards)
        return false;
    return m->sh ? shards_owns(m->sh, shard % m->groups) : m->owned[shard];
}

static int s_on_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    main_t *m = arg;
    char key[RECONCILE_KEY_MAX];
    if (!m->rec || !s_owns(m, msg->object_changed.shard))
        return 0;
    if (reconcile_note_change(m->rec, &msg->object_changed, key, sizeof(key)) == 0)
        workq_add(m->q, key);
    return 0;
}

/* Queues every RayCluster of the owned shards (only_pending: only of the shards marked in
 * resync_pending, whose marks are cleared). */
static void s_resync_scan(main_t *m, bool only_pending)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_handle(m->obs),
                           "SELECT namespace, name FROM observed_objects WHERE cluster = ?1 AND "
                           "kind = 'RayCluster'",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, m->cluster, -1, SQLITE_STATIC);
        size_t n = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *ns = (const char *)sqlite3_column_text(st, 0);
            const char *name = (const char *)sqlite3_column_text(st, 1);
            uint32_t shard = bus_shard_of(m->cluster, ns, name, m->shards);
            if (!s_owns(m, shard) || (only_pending && !m->resync_pending[shard]))
                continue;
            char key[RECONCILE_KEY_MAX];
            if (ctrl_key(m->cluster, ns ? ns : "", name ? name : "", key, sizeof(key)) > 0 &&
                workq_add(m->q, key) == 0)
                n++;
        }
        char nbuf[32];
        snprintf(nbuf, sizeof(nbuf), "%zu", n);
        log_debug("resync", "keys", nbuf, "scope", only_pending ? "acquired" : "all", NULL);
    }
    sqlite3_finalize(st);
    if (only_pending)
        memset(m->resync_pending, 0, m->shards * sizeof(*m->resync_pending));
}

/* The periodic resync timer. */
static int64_t s_resync(loop_t *loop, int64_t id, void *arg)
{
    main_t *m = arg;
    if (m->obs && m->q)
        s_resync_scan(m, false);
    return cfg_duration_ms(m->svc->cfg, "resync");
}

/* The zero-delay timer armed by on_acquire: one scan for every shard acquired meanwhile. */
static int64_t s_resync_acquired(loop_t *loop, int64_t id, void *arg)
{
    main_t *m = arg;
    m->resync_armed = false;
    if (m->obs && m->q) /* else s_try_open's full resync covers them */
        s_resync_scan(m, true);
    return LOOP_TIMER_DONE;
}

/* The fence before each API write of a pass (reconcile_config_t.fence). */
static bool s_fence(const char *key, void *arg)
{
    main_t *m = arg;
    char cl[RECONCILE_KEY_MAX], ns[RECONCILE_KEY_MAX], name[RECONCILE_KEY_MAX];
    return ctrl_parse_key(key, cl, ns, name) == 0 &&
           s_owns(m, bus_shard_of(cl, ns, name, m->shards));
}

/* The work queue's dispatch: the fence before a pass starts. */
static void s_reconcile(workq_t *q, const char *key, void *arg)
{
    main_t *m = arg;
    char cl[RECONCILE_KEY_MAX], ns[RECONCILE_KEY_MAX], name[RECONCILE_KEY_MAX];
    if (ctrl_parse_key(key, cl, ns, name) != 0 ||
        !s_owns(m, bus_shard_of(cl, ns, name, m->shards))) {
        m->dropped++;
        workq_forget(q, key);
        workq_done(q, key, workq_ok());
        return;
    }
    reconcile_fn(q, key, m->rec);
}

/* A lease group was acquired: subscribe to each of its shards and queue their RayClusters. */
static void s_on_acquire(shards_t *sh, uint32_t group, void *arg)
{
    main_t *m = arg;
    char sbuf[16];
    snprintf(sbuf, sizeof(sbuf), "%" PRIu32, group);
    for (uint32_t shard = group; shard < m->shards; shard += m->groups) {
        if (bus_sub_subscribe(m->sub, shard) != 0)
            log_error("bus subscribe failed", "group", sbuf, NULL);
        m->resync_pending[shard] = true;
    }
    if (!m->resync_armed && loop_add_timer(m->svc->loop, 0, s_resync_acquired, m) >= 0)
        m->resync_armed = true;
    log_info("shard acquired", "shard", sbuf, NULL);
}

static void s_on_release(shards_t *sh, uint32_t group, void *arg)
{
    main_t *m = arg;
    char sbuf[16];
    snprintf(sbuf, sizeof(sbuf), "%" PRIu32, group);
    for (uint32_t shard = group; shard < m->shards; shard += m->groups) {
        bus_sub_unsubscribe(m->sub, shard);
        m->resync_pending[shard] = false;
    }
    /* queued keys of the shard are dropped by s_reconcile(); passes in flight run to their end
     * (see the file comment) */
    log_info("shard released", "shard", sbuf, NULL);
}

/* Opens observed.db read-only once the watcher has created it, then starts reconciling. */

/* KubeRay's operator-level switches come from its environment; "false" (any case) turns one off. */
static bool s_env_is_false(const char *name)
{
    const char *v = getenv(name);
    return v && strcasecmp(v, "false") == 0;
}

static int64_t s_try_open(loop_t *loop, int64_t id, void *arg)
{
    main_t *m = arg;
    int err = ERR_NOTFOUND;
    if (access(m->obs_path, F_OK) == 0)
        m->obs = store_open(m->obs_path, STORE_READONLY, &err);
    if (!m->obs) {
        log_info("waiting for observed state", "path", m->obs_path, "error", err_str(err), NULL);
        return MAIN_OPEN_RETRY_MS;
    }
    reconcile_config_t rc = {.cluster = m->cluster,
                             .observed = m->obs,
                             .client = m->client,
                             .audit = m->audit,
                             .desired = m->db,
                             .fence = s_fence,
                             .fence_arg = m,
                             .random_delete = cfg_bool(m->svc->cfg, "random-pod-delete"),
                             .events = true,
                             .no_redis_cleanup = s_env_is_false("ENABLE_GCS_FT_REDIS_CLEANUP"),
                             .requeue_ms = cfg_duration_ms(m->svc->cfg, "requeue")};
    m->rec = reconcile_new(loop, &rc);
    workq_opts_t qo;
    workq_opts_default(&qo);
    qo.concurrency = (int)cfg_int(m->svc->cfg, "concurrency");
    m->q = m->rec ? workq_new(loop, &qo, s_reconcile, m) : NULL;
    if (!m->q) {
        log_error("scheduler could not start", NULL);
        return ERR_NOMEM - 100;
    }
    log_info("scheduler started", "cluster", m->cluster, "observed", m->obs_path, NULL);
    s_resync_scan(m, false);
    memset(m->resync_pending, 0, m->shards * sizeof(*m->resync_pending));
    if (cfg_duration_ms(m->svc->cfg, "resync") > 0)
        loop_add_timer(loop, cfg_duration_ms(m->svc->cfg, "resync"), s_resync, m);
    return LOOP_TIMER_DONE;
}

/* Starts shard leases when --shards.lease is sqlite or kubernetes. Returns 0, or an err_t
 * (reported on stderr). */
static int s_start_leases(main_t *m)
{
    const char *mode = cfg_str(m->svc->cfg, "shards.lease");
    if (strcmp(mode, "off") == 0)
        return 0;
    size_t nowned = 0;
    cfg_list(m->svc->cfg, "shards.owned", &nowned);
    if (nowned > 0) {
        fprintf(stderr, "scheduler: --shards.owned and --shards.lease %s exclude each other\n",
                mode);
        return ERR_INVAL;
    }
    int e = 0;
    if (strcmp(mode, "sqlite") == 0) {
        buf_t path;
        buf_init(&path, 4096);
        if (svc_state_path(m->svc, MAIN_LEASES_DB, &path) == 0)
            m->leases_db = store_open(buf_str(&path), STORE_READWRITE, &e);
        if (!m->leases_db)
            fprintf(stderr, "scheduler: %s: %s\n", buf_str(&path), err_str(e));
        buf_free(&path);
        m->lease = m->leases_db ? lease_sqlite_new(m->svc->loop, m->leases_db) : NULL;
    } else { // "kubernetes": cfg admits only the declared choices
        const char *ns = cfg_str(m->svc->cfg, "shards.lease-namespace");
        if (!ns || !*ns)
            ns = k8s_client_namespace(m->client);
        m->lease_client =
            k8s_client_new(m->svc->loop, m->kc,
                           &(k8s_config_t){.qps = MAIN_LEASE_QPS,
                                           .burst = MAIN_LEASE_QPS,
                                           .user_agent = "rayfleet-scheduler-leases/" RF_VERSION});
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
        m->groups = strcmp(mode, "sqlite") == 0 ? m->shards : MAIN_K8S_LEASE_GROUPS;
    if (m->groups > m->shards)
        m->groups = m->shards;
    m->sh = shards_new(
        m->svc->loop, m->lease, MAIN_LEASE_COMPONENT, id, m->groups, lease_ms,
        lease_ms / MAIN_RENEW_DIV,
        &(shards_callbacks_t){.on_acquire = s_on_acquire, .on_release = s_on_release, .arg = m});
    if (!m->sh) {
        fprintf(stderr, "scheduler: cannot start shard leases (replica id %s)\n", id);
        return ERR_INVAL;
    }
    char gbuf[16];
    snprintf(gbuf, sizeof(gbuf), "%" PRIu32, m->groups);
    log_info("shard leases", "backend", mode, "replica", id, "groups", gbuf, NULL);
    return 0;
}

/* Stops the shards cleanly after the loop ended: releases every lease so the other replicas
 * take over at once (bounded by MAIN_STOP_MAX_MS; the leases expire otherwise). */
static void s_stop_leases(main_t *m)
{
    if (!m->sh || shards_stop(m->sh) != 0)
        return;
    int64_t deadline = loop_clock_ms() + MAIN_STOP_MAX_MS;
    while (shards_pending(m->sh) > 0 && loop_clock_ms() < deadline)
        loop_run_once(m->svc->loop, MAIN_STOP_POLL_MS);
}

/* Parses shards.owned into m->owned. Returns 0 or ERR_INVAL. */
static int s_parse_owned(main_t *m)
{
    size_t n = 0;
    const char *const *items = cfg_list(m->svc->cfg, "shards.owned", &n);
    for (uint32_t s = 0; s < m->shards; s++)
        m->owned[s] = n == 0;
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
        if (*end || a < 0 || b < a || b >= (long)m->shards)
            return ERR_INVAL;
        for (long s = a; s <= b; s++)
            m->owned[s] = true;
    }
    return 0;
}

int main(int argc, char **argv)
{
    svc_t svc;
    if (svc_start(&svc, "scheduler", s_options, argc, argv) != 0)
        return svc.exit_code;
    int code = SVC_EXIT_FAILURE;
    main_t m = {.svc = &svc, .cluster = cfg_str(svc.cfg, "cluster")};
    m.shards = (uint32_t)cfg_int(svc.cfg, "shards");
    kubeconfig_t *kc = NULL;
    buf_t path, err;
    buf_init(&path, 4096);
    buf_init(&err, 4096);
    m.owned = calloc(m.shards, sizeof(*m.owned));
    m.resync_pending = calloc(m.shards, sizeof(*m.resync_pending));
    if (!m.owned || !m.resync_pending)
        goto done;
    if (s_parse_owned(&m) != 0) {
        fprintf(stderr, "scheduler: shards.owned: want numbers or ranges a-b below %u\n", m.shards);
        code = SVC_EXIT_USAGE;
        goto done;
    }
    const char *kcpath = cfg_str(svc.cfg, "kubeconfig");
    int rc = !kcpath && !getenv("KUBECONFIG") && getenv("KUBERNETES_SERVICE_HOST")
                 ? kubeconfig_in_cluster(NULL, &kc, &err)
                 : kubeconfig_load(kcpath, cfg_str(svc.cfg, "context"), &kc, &err);
    if (rc != 0) {
        fprintf(stderr, "scheduler: kubeconfig: %s\n", buf_str(&err));
        code = SVC_EXIT_USAGE;
        goto done;
    }
    m.kc = kc;
    m.client =
        k8s_client_new(svc.loop, kc,
                       &(k8s_config_t){.qps = (double)cfg_int(svc.cfg, "client.qps"),
                                       .burst = (int)cfg_int(svc.cfg, "client.burst"),
                                       .max_inflight = (int)cfg_int(svc.cfg, "client.max-inflight"),
                                       .max_connections = cfg_int(svc.cfg, "client.connections"),
                                       .user_agent = "rayfleet-scheduler/" RF_VERSION});
    if (!m.client || svc_state_path(&svc, cfg_str(svc.cfg, "audit.db"), &path) != 0)
        goto done;
    int e = 0;
    m.db = store_open(buf_str(&path), STORE_READWRITE, &e);
    if (!m.db || store_attach_loop_every(m.db, svc.loop, SCHED_FLUSH_EVERY_MS) != 0) {
        fprintf(stderr, "scheduler: %s: %s\n", buf_str(&path), err_str(e));
        goto done;
    }
    m.audit = actlog_new(
        m.db, &(actlog_actor_t){.service = "scheduler", .replica = cfg_str(svc.cfg, "replica")});
    buf_reset(&path);
    if (!m.audit || svc_state_path(&svc, "observed.db", &path) != 0)
        goto done;
    m.obs_path = buf_take(&path, NULL);
    m.sub =
        bus_sub_new(svc.loop, svc.zctx,
                    &(bus_options_t){.endpoint = cfg_str(svc.cfg, "bus.endpoint"),
                                     .hwm = (int)cfg_int(svc.cfg, "bus.hwm"),
                                     .curve_server_key = cfg_str(svc.cfg, "bus.curve-server-key")},
                    s_on_msg, NULL, &m);
    if (!m.obs_path || !m.sub)
        goto done;
    if (s_start_leases(&m) != 0) {
        code = SVC_EXIT_USAGE;
        goto done;
    }
    for (uint32_t s = 0; !m.sh && s < m.shards; s++)
        if (m.owned[s] && bus_sub_subscribe(m.sub, s) != 0)
            goto done;
    if (loop_add_timer(svc.loop, 0, s_try_open, &m) < 0)
        goto done;
    code = svc_run(&svc);
    s_stop_leases(&m);
    if (m.sh) {
        char dbuf[32];
        snprintf(dbuf, sizeof(dbuf), "%" PRIu64, m.dropped);
        log_info("scheduler stopped", "dropped_unowned", dbuf, NULL);
    }
done:
    shards_destroy(&m.sh);
    lease_backend_destroy(&m.lease);
    k8s_client_destroy(&m.lease_client);
    workq_destroy(&m.q);
    bus_sub_destroy(&m.sub);
    k8s_client_destroy(&m.client);
    reconcile_destroy(&m.rec);
    actlog_destroy(&m.audit);
    store_destroy(&m.obs);
    kubeconfig_destroy(&kc);
    free(m.owned);
    free(m.resync_pending);
    free(m.obs_path);
    buf_free(&path);
    buf_free(&err);
    svc_end(&svc);
    store_destroy(&m.leases_db);
    store_destroy(&m.db); /* attached to the loop: after it */
    return code;
}
