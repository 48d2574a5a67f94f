/*
 * rayfleet-serve-upgrade: reconciles RayServices (serveup.h) as a controller process of the
 * runtime (ctrl/ctrlsvc.h: options, kubeconfig and client, the audit database
 * <state-dir>/serve-upgrade.db, observed.db opened read-only once the watcher has created it, the
 * bus subscription with causes, the work queue, shard ownership with leases and the write fence,
 * resync, shutdown; /healthz /readyz /metrics on 127.0.0.1:8085 by default). The deletion
 * deadlines of dangling RayClusters are kept in <state-dir>/leases.db (shared by the replicas of
 * a host).
 *
 * Its own option: --steady-poll (the poll period of a Ready RayService). KubeRay's operator
 * settings come from kuberay/opsettings.h as in every controller (--use-kubernetes-proxy, which
 * rayfleetctl up --sim sets; --cluster-domain / CLUSTER_DOMAIN; --feature-gates;
 * ENABLE_ZERO_DOWNTIME=false turns zero-downtime upgrades off for RayServices without
 * spec.upgradeStrategy.type).
 */
#include "ctrlsvc.h"
#include "krmetrics.h"
#include "err.h"
#include "serveup.h"
#include "opsettings.h"

static const cfg_opt_t s_options[] = {
    {"steady-poll", CFG_DURATION, "10s", 0, 0, false, false,
     "Poll period of a Ready RayService with no upgrade in progress (KubeRay: 2s).", NULL},
    {0},
};

typedef struct {
    serveup_t *su;
    opsettings_t ops; /* KubeRay's operator settings */
    rs_settings_t set; /* built from them in s_open */
} app_t;

static ctrl_t *s_open(const ctrlsvc_env_t *env, void *arg)
{
    app_t *a = arg;
    const cfg_t *cfg = env->svc->cfg;
    opsettings_fill_rayservice(&a->ops, &a->set);
    a->set.steady_poll_ms = cfg_duration_ms(cfg, "steady-poll");
    a->su =
        serveup_new(env->svc->loop, &(serveup_config_t){.base = env->ctrl,
                                                        .deadlines = env->leases,
                                                        .use_proxy = a->ops.use_kubernetes_proxy,
                                                        .domain = a->ops.cluster_domain,
                                                        .settings = &a->set});
    return serveup_ctrl(a->su);
}

static int s_configure(cfg_t *cfg, void *arg, buf_t *err)
{
    return opsettings_configure(&((app_t *)arg)->ops, cfg, err);
}

/* KubeRay's start-up refusal of SidecarSubmitterRestart below K8s 1.35 (GET /version). */
static int s_server_version(const json_t *version, void *arg, buf_t *err)
{
    return opsettings_check_server_version(&((app_t *)arg)->ops, version, err);
}

static bool s_wants_server_version(void *arg)
{
    return opsettings_wants_server_version(&((app_t *)arg)->ops);
}

static bool s_watches(const char *ns, void *arg)
{
    return opsettings_watches(&((app_t *)arg)->ops, ns);
}

/* The options that can be wrong: --cluster-domain, --steady-poll. */
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
    return 0;
}

static void s_close(void *arg)
{
    app_t *a = arg;
    serveup_destroy(&a->su);
}

int main(int argc, char **argv)
{
    app_t app = {0};
    opsettings_init(&app.ops);
    int code = ctrlsvc_main(
        &(ctrlsvc_def_t){.name = "serve-upgrade",
                         .options = s_options,
                         .shared_options = opsettings_options,
                         .configure = s_configure,
                         .server_version = s_server_version,
                         .wants_server_version = s_wants_server_version,
                         .watches = s_watches,
                         .open = s_open,
                         .close = s_close,
                         .check = s_check,
                         .arg = &app,
                         .scrape = &(const ctrlsvc_scrape_t){krmetrics_open, krmetrics_begin,
                                                             krmetrics_object, krmetrics_close},
                         .health_port = 8085,
                         .leases_db = true},
        argc, argv);
    opsettings_free(&app.ops);
    return code;
}
