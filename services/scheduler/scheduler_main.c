/*
 * rayfleet-scheduler: reconciles RayClusters (reconcile.h). It subscribes to its shards on the
 * bus, puts the key of every ObjectChanged about a RayCluster on its work queue, reads observed
 * state from <state-dir>/observed.db (read-only; the watcher writes it, so the open is retried
 * until the watcher has created the file), writes through the Kubernetes API, and audits every
 * write into its own <state-dir>/scheduler.db. A periodic resync re-queues every RayCluster of
 * its shards, so a lost bus event costs latency, never correctness.
 */
#include "audit.h"
#include "bus.h"
#include "err.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "log.h"
#include "reconcile.h"
#include "store.h"
#include "svc.h"
#include "workq.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAIN_OPEN_RETRY_MS 1000 /* retry period of the observed.db open */
#define MAIN_SHARD_SPEC_MAX 64 /* longest "a-b" shard range */

static const cfg_opt_t s_options[] = {
    {"cluster", CFG_STRING, "default", 0, 0, false, false,
     "Member cluster name (as the watcher names it); its API server comes from --kubeconfig "
     "(else $KUBECONFIG, ~/.kube/config, or in-cluster)."},
    {"context", CFG_STRING, NULL, 0, 0, false, false, "Kubeconfig context; none: current."},
    {"bus.endpoint", CFG_STRING, BUS_BACKEND_DEFAULT, 0, 0, false, false,
     "Bus backend the scheduler subscribes to."},
    {"bus.hwm", CFG_INT, "100000", 1, BUS_HWM_MAX, false, false, "Subscriber high-water mark."},
    {"bus.curve-server-key", CFG_STRING, NULL, 0, 0, false, false,
     "Z85 CurveZMQ public key of the bus forwarder; set it to use CURVE."},
    {"shards", CFG_INT, "256", 1, BUS_SHARD_LIMIT - 1, false, false,
     "Number of shards keys hash into (must match the watcher's)."},
    {"shards.owned", CFG_LIST, NULL, 0, 0, false, false,
     "Shards this replica reconciles, as numbers or ranges \"a-b\"; none: all."},
    {"replica", CFG_STRING, "scheduler/0", 0, 0, false, false,
     "This replica's name in audit rows."},
    {"concurrency", CFG_INT, "8", 1, 10000, false, false,
     "Reconciles in flight at once (KubeRay's --reconcile-concurrency)."},
    {"resync", CFG_DURATION, "5m", 0, 86400000, false, false,
     "Period at which every RayCluster of the owned shards is queued again; 0: off."},
    {"requeue", CFG_DURATION, "300s", 1000, 86400000, false, false,
     "Requeue period after a clean reconcile (RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV)."},
    {"random-pod-delete", CFG_BOOL, "false", 0, 0, false, false,
     "Delete surplus workers even with autoscaling on (ENABLE_RANDOM_POD_DELETE)."},
    {"client.qps", CFG_INT, "100", 1, 100000, false, false, "Kubernetes client requests/s."},
    {"client.burst", CFG_INT, "200", 1, 100000, false, false, "Kubernetes client burst."},
    {NULL},
};

typedef struct {
    svc_t *svc; /* the process */
    const char *cluster; /* member cluster name */
    uint32_t shards; /* shard count */
    bool *owned; /* owned[shard] */
    char *obs_path; /* observed.db path */
    store_t *obs; /* observed.db, read-only, once it exists */
    store_t *db; /* scheduler.db */
    k8s_client_t *client; /* API client */
    audit_t *audit; /* audit writer */
    reconciler_t *rec; /* reconciler, once obs is open */
    workq_t *q; /* its queue */
    bus_sub_t *sub; /* bus subscriber */
} main_t;

static int s_on_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    main_t *m = arg;
    char key[RECONCILE_KEY_MAX];
    if (!m->rec || msg->object_changed.shard >= m->shards || !m->owned[msg->object_changed.shard])
        return 0;
    if (reconcile_note_change(m->rec, &msg->object_changed, key, sizeof(key)) == 0)
        workq_add(m->q, key);
    return 0;
}

/* Queues every RayCluster of the owned shards. */
static int64_t s_resync(loop_t *loop, int64_t id, void *arg)
{
    main_t *m = arg;
    if (!m->obs || !m->q)
        return cfg_duration_ms(m->svc->cfg, "resync");
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
            if (!m->owned[bus_shard_of(m->cluster, ns, name, m->shards)])
                continue;
            char key[RECONCILE_KEY_MAX];
            if (reconcile_key(m->cluster, ns ? ns : "", name ? name : "", key, sizeof(key)) > 0 &&
                workq_add(m->q, key) == 0)
                n++;
        }
        log_debug("resync", "keys", n > 0 ? "some" : "none", NULL);
    }
    sqlite3_finalize(st);
    return cfg_duration_ms(m->svc->cfg, "resync");
}

/* Opens observed.db read-only once the watcher has created it, then starts reconciling. */
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
                             .random_delete = cfg_bool(m->svc->cfg, "random-pod-delete"),
                             .events = true,
                             .requeue_ms = cfg_duration_ms(m->svc->cfg, "requeue")};
    m->rec = reconcile_new(loop, &rc);
    workq_opts_t qo;
    workq_opts_default(&qo);
    qo.concurrency = (int)cfg_int(m->svc->cfg, "concurrency");
    m->q = m->rec ? workq_new(loop, &qo, reconcile_fn, m->rec) : NULL;
    if (!m->q) {
        log_error("scheduler could not start", NULL);
        return ERR_NOMEM - 100;
    }
    log_info("scheduler started", "cluster", m->cluster, "observed", m->obs_path, NULL);
    s_resync(loop, 0, m);
    if (cfg_duration_ms(m->svc->cfg, "resync") > 0)
        loop_add_timer(loop, cfg_duration_ms(m->svc->cfg, "resync"), s_resync, m);
    return LOOP_TIMER_DONE;
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
    if (!m.owned)
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
    m.client = k8s_client_new(svc.loop, kc,
                              &(k8s_config_t){.qps = (double)cfg_int(svc.cfg, "client.qps"),
                                              .burst = (int)cfg_int(svc.cfg, "client.burst"),
                                              .user_agent = "rayfleet-scheduler/" RF_VERSION});
    if (!m.client || svc_state_path(&svc, "scheduler.db", &path) != 0)
        goto done;
    int e = 0;
    m.db = store_open(buf_str(&path), STORE_READWRITE, &e);
    if (!m.db || store_attach_loop(m.db, svc.loop) != 0) {
        fprintf(stderr, "scheduler: %s: %s\n", buf_str(&path), err_str(e));
        goto done;
    }
    m.audit = audit_new(
        m.db, &(audit_actor_t){.service = "scheduler", .replica = cfg_str(svc.cfg, "replica")});
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
    for (uint32_t s = 0; s < m.shards; s++)
        if (m.owned[s] && bus_sub_subscribe(m.sub, s) != 0)
            goto done;
    if (loop_add_timer(svc.loop, 0, s_try_open, &m) < 0)
        goto done;
    code = svc_run(&svc);
done:
    workq_destroy(&m.q);
    bus_sub_destroy(&m.sub);
    k8s_client_destroy(&m.client);
    reconcile_destroy(&m.rec);
    audit_destroy(&m.audit);
    store_destroy(&m.obs);
    kubeconfig_destroy(&kc);
    free(m.owned);
    free(m.obs_path);
    buf_free(&path);
    buf_free(&err);
    svc_end(&svc);
    store_destroy(&m.db); /* attached to the loop: after it */
    return code;
}
