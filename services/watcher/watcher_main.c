/*
 * rayfleet-watcher: lists and watches every member cluster, writes observed state to
 * <state-dir>/observed.db (its only writer) and publishes ObjectChanged on the bus. Serves
 * /healthz, /readyz and /metrics (common/opsrv) on <health.host>:<health.port>. SIGUSR1 logs
 * the counters. See watcher.h.
 */
#include "bus.h"
#include "busopt.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "opsrv.h"
#include "store.h"
#include "svc.h"
#include "watcher.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAIN_CLUSTER_SPEC_MAX 4096 /* longest "name=path@context" entry */

static const cfg_opt_t s_options[] = {
    {"clusters", CFG_LIST, NULL, 0, 0, false, false,
     "Member clusters, each \"name=kubeconfig-path[@context]\"; none: one cluster \"default\" "
     "from --kubeconfig (else $KUBECONFIG, ~/.kube/config, or in-cluster).",
     NULL},
    {"watch.nodes", CFG_BOOL, "false", 0, 0, false, false,
     "Federation's capacity: also list and watch every Node and every pod (projections: "
     "allocatable, labels, Ready, cordon; node, phase, requests) and probe each cluster's API "
     "every second, into observed.db (rows Node, " WATCHER_PODUSE_KIND ", " WATCHER_HEALTH_KIND
     ") for rayfleetctl members. Off: exactly the Ray objects and their children.",
     NULL},
    {"watch.namespaces", CFG_LIST, NULL, 0, 0, false, false,
     "Namespaces to watch; none: all namespaces.", NULL},
    {"shards", CFG_INT, "256", 1, BUS_SHARD_LIMIT - 1, false, false,
     "Number of shards keys hash into (must match the reconcilers').", NULL},
    {"bus.endpoint", CFG_STRING, BUS_FRONTEND_DEFAULT, 0, 0, false, false,
     "Bus frontend the watcher publishes to (\"@...\" binds it, for single-host runs).", NULL},
    {"bus.source", CFG_STRING, "watcher/0", 0, 0, false, false,
     "Source name in envelopes and heartbeats.", NULL},
    {"bus.hwm", CFG_INT, "100000", 1, BUS_HWM_MAX, false, false,
     "Publisher high-water mark (events beyond it are dropped and counted).", NULL},
    {"health.host", CFG_STRING, "127.0.0.1", 0, 0, false, false,
     "Address of the /healthz, /readyz and /metrics listener.", NULL},
    {"health.port", CFG_INT, "8082", 0, 65535, false, false,
     "Port of the /healthz, /readyz and /metrics listener; 0: off.", NULL},
    {"resync", CFG_DURATION, "10m", 0, 86400000, false, false,
     "Period at which every cached object is rewritten and republished as RESYNC; 0: off.", NULL},
    {"client.qps", CFG_INT, "50", 1, 100000, false, false,
     "Kubernetes client requests per second, per cluster.", NULL},
    {"client.burst", CFG_INT, "100", 1, 100000, false, false,
     "Kubernetes client burst, per cluster.", NULL},
    {"stats.interval", CFG_DURATION, "60s", 0, 86400000, false, false,
     "Period of the stats log line; 0: off.", NULL},
    {0},
};

static int s_usr1(loop_t *loop, int signo, void *arg)
{
    watcher_log_stats(arg);
    return 0;
}

int main(int argc, char **argv)
{
    cfg_opt_t table[sizeof s_options / sizeof s_options[0] + 4];
    if (cfg_table_join(s_options, busopt_client_options, table, sizeof table / sizeof table[0]) <
        0) {
        fprintf(stderr, "watcher: too many options\n");
        return SVC_EXIT_FAILURE;
    }
    svc_t svc;
    if (svc_start(&svc, "watcher", table, argc, argv) != 0)
        return svc.exit_code;
    busopt_keys_t keys = {0};
    int code = SVC_EXIT_FAILURE;
    store_t *store = NULL;
    bus_pub_t *pub = NULL;
    watcher_t *w = NULL;
    opsrv_t *ops = NULL;
    metrics_t *metrics = NULL;
    watcher_cluster_t *clusters = NULL;
    char **scratch = NULL;
    size_t nclusters = 0;
    buf_t path, err;
    buf_init(&path, 4096);
    buf_init(&err, 4096);

    const char *const *specs = cfg_list(svc.cfg, "clusters", &nclusters);
    size_t n = nclusters ? nclusters : 1;
    clusters = calloc(n, sizeof(*clusters));
    scratch = calloc(n, sizeof(*scratch));
    if (!clusters || !scratch)
        goto done;
    if (nclusters == 0) {
        const char *kc = cfg_str(svc.cfg, "kubeconfig");
        clusters[0].name = "default";
        clusters[0].kubeconfig = kc;
        clusters[0].in_cluster = !kc && !getenv("KUBECONFIG") && getenv("KUBERNETES_SERVICE_HOST");
        nclusters = 1;
    } else {
        for (size_t i = 0; i < nclusters; i++) {
            scratch[i] = malloc(MAIN_CLUSTER_SPEC_MAX);
            if (!scratch[i] || watcher_parse_cluster(specs[i], scratch[i], MAIN_CLUSTER_SPEC_MAX,
                                                     &clusters[i]) != 0) {
                fprintf(stderr, "watcher: clusters: bad entry \"%s\" (want name=path[@context])\n",
                        specs[i]);
                code = SVC_EXIT_USAGE;
                goto done;
            }
        }
    }
    int rc = svc_state_path(&svc, "observed.db", &path);
    if (rc != 0)
        goto done;
    store = store_open(buf_str(&path), STORE_READWRITE | STORE_OBSERVED, &rc);
    if (!store) {
        log_error("watcher: cannot open the store", "path", buf_str(&path), "error", err_str(rc),
                  NULL);
        goto done;
    }
    bus_options_t bo = {
        .source = cfg_str(svc.cfg, "bus.source"),
        .endpoint = cfg_str(svc.cfg, "bus.endpoint"),
        .hwm = (int)cfg_int(svc.cfg, "bus.hwm"),
    };
    if (busopt_client(svc.cfg, &keys, &bo, &err) != 0) {
        fprintf(stderr, "watcher: %s\n", buf_str(&err));
        code = SVC_EXIT_USAGE;
        goto done;
    }
    pub = bus_pub_new(svc.loop, svc.zctx, &bo);
    busopt_keys_clear(&keys); // the publisher keeps what it needs
    if (!pub)
        goto done;
    size_t nns = 0;
    const char *const *nss = cfg_list(svc.cfg, "watch.namespaces", &nns);
    watcher_config_t wc = {
        .clusters = clusters,
        .nclusters = nclusters,
        .namespaces = nss,
        .nnamespaces = nns,
        .shards = (uint32_t)cfg_int(svc.cfg, "shards"),
        .store = store,
        .pub = pub,
        .resync_ms = cfg_duration_ms(svc.cfg, "resync"),
        .qps = (double)cfg_int(svc.cfg, "client.qps"),
        .burst = (int)cfg_int(svc.cfg, "client.burst"),
        .stats_ms = cfg_duration_ms(svc.cfg, "stats.interval"),
        .watch_nodes = cfg_bool(svc.cfg, "watch.nodes"),
    };
    w = watcher_new(svc.loop, &wc, &err);
    if (!w) {
        log_error("watcher: cannot start", "error", buf_str(&err), NULL);
        goto done;
    }
    int port = (int)cfg_int(svc.cfg, "health.port");
    if (port > 0) {
        metrics = metrics_new();
        if (!metrics || watcher_metrics(w, metrics) != 0)
            goto done;
        opsrv_config_t oc = {.host = cfg_str(svc.cfg, "health.host"),
                             .port = port,
                             .metrics = metrics,
                             .ready = watcher_readiness,
                             .ready_arg = w};
        ops = opsrv_new(svc.loop, &oc);
        if (!ops)
            goto done;
    }
    loop_watch_signal(svc.loop, SIGUSR1, s_usr1, w);
    if (watcher_start(w) != 0)
        goto done;
    log_info("watcher: started", "store", buf_str(&path), "bus", bus_pub_endpoint(pub), NULL);
    code = svc_run(&svc);
    watcher_log_stats(w);
done:
    opsrv_destroy(&ops);
    watcher_destroy(&w); /* its clients record into the registry: before it */
    bus_pub_destroy(&pub);
    store_set_commit_metric(store, NULL); /* the registry goes first */
    metrics_destroy(&metrics);
    store_destroy(&store);
    for (size_t i = 0; scratch && i < n; i++)
        free(scratch[i]);
    free(scratch);
    free(clusters);
    buf_free(&path);
    buf_free(&err);
    busopt_keys_clear(&keys);
    svc_end(&svc);
    return code;
}
