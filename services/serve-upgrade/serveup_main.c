/*
 * rayfleet-serve-upgrade: reconciles RayServices (serveup.h) as a controller process of the
 * runtime (ctrl/ctrlsvc.h: options, kubeconfig and client, the audit database
 * <state-dir>/serve-upgrade.db, observed.db opened read-only once the watcher has created it, the
 * bus subscription with causes, the work queue, shard ownership with leases and the write fence,
 * resync, shutdown; /healthz /readyz /metrics on 127.0.0.1:8085 by default). The deletion
 * deadlines of dangling RayClusters are kept in <state-dir>/leases.db (shared by the replicas of
 * a host).
 *
 * Its own options: --use-kubernetes-proxy (KubeRay's flag: reach Ray dashboards and head pods
 * through the API server's proxy; rayfleetctl up --sim sets it), --cluster-domain (KubeRay's
 * CLUSTER_DOMAIN), --steady-poll (the poll period of a Ready RayService), --feature-gates.
 * KubeRay's operator environment is honoured: ENABLE_ZERO_DOWNTIME=false turns zero-downtime
 * upgrades off for RayServices without spec.upgradeStrategy.type.
 */
#include "ctrlsvc.h"
#include "krmetrics.h"
#include "err.h"
#include "log.h"
#include "serveup.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const cfg_opt_t s_options[] = {
    {"use-kubernetes-proxy", CFG_BOOL, "false", 0, 0, false, false,
     "Reach Ray dashboards and head pods through the API server's proxy.", NULL},
    {"cluster-domain", CFG_STRING, "", 0, 0, false, false,
     "Cluster domain of dashboard URLs (default: $CLUSTER_DOMAIN, else cluster.local).", NULL},
    {"steady-poll", CFG_DURATION, "10s", 0, 0, false, false,
     "Poll period of a Ready RayService with no upgrade in progress (KubeRay: 2s).", NULL},
    {"feature-gates", CFG_STRING, "", 0, 0, false, false,
     "Feature gates, e.g. RayServiceIncrementalUpgrade=false.", NULL},
    {NULL},
};

typedef struct {
    serveup_t *su;
    rs_settings_t set;
} app_t;

static ctrl_t *s_open(const ctrlsvc_env_t *env, void *arg)
{
    app_t *a = arg;
    const cfg_t *cfg = env->svc->cfg;
    rsstate_settings_default(&a->set);
    const char *zd = getenv("ENABLE_ZERO_DOWNTIME");
    a->set.zero_downtime = !(zd && strcasecmp(zd, "false") == 0);
    a->set.steady_poll_ms = cfg_duration_ms(cfg, "steady-poll");
    buf_t err; /* checked at start (s_check): cannot fail here */
    buf_init(&err, 512);
    int rc = validate_gates_parse(cfg_str(cfg, "feature-gates"), &a->set.gates, &err);
    buf_free(&err);
    if (rc != 0)
        return NULL;
    a->su = serveup_new(env->svc->loop,
                        &(serveup_config_t){.base = env->ctrl,
                                            .deadlines = env->leases,
                                            .use_proxy = cfg_bool(cfg, "use-kubernetes-proxy"),
                                            .domain = ctrlsvc_cluster_domain(cfg),
                                            .settings = &a->set});
    return serveup_ctrl(a->su);
}

/* The options that can be wrong: --cluster-domain, --feature-gates, --steady-poll. */
static int s_check(const cfg_t *cfg, void *arg, buf_t *err)
{
    (void)arg;
    int rc = ctrlsvc_check_cluster_domain(cfg, err);
    if (rc)
        return rc;
    if (cfg_duration_ms(cfg, "steady-poll") < 100) {
        buf_puts(err, "--steady-poll: must be at least 100ms");
        return ERR_INVAL;
    }
    return validate_gates_option(cfg_str(cfg, "feature-gates"), err);
}

static void s_close(void *arg)
{
    app_t *a = arg;
    serveup_destroy(&a->su);
}

int main(int argc, char **argv)
{
    app_t app = {0};
    return ctrlsvc_main(
        &(ctrlsvc_def_t){.name = "serve-upgrade",
                         .options = s_options,
                         .open = s_open,
                         .close = s_close,
                         .check = s_check,
                         .arg = &app,
                         .scrape = &(const ctrlsvc_scrape_t){krmetrics_open, krmetrics_begin,
                                                             krmetrics_object, krmetrics_close},
                         .health_port = 8085,
                         .leases_db = true},
        argc, argv);
}
