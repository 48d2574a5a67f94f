/*
 * rayfleet-submitter: reconciles RayJobs (submitter.h) and RayCronJobs (cronjob.h; gate RayCronJob)
 * as a controller process of the runtime
 * (ctrl/ctrlsvc.h: options, kubeconfig and client, the audit database <state-dir>/submitter.db,
 * observed.db opened read-only once the watcher has created it, the bus subscription with
 * causes, the work queue, shard ownership with leases and the write fence, resync, shutdown;
 * /healthz /readyz /metrics on 127.0.0.1:8084 by default).
 *
 * Its own option: --job-poll. KubeRay's operator settings come from kuberay/opsettings.h as in
 * every controller (--use-kubernetes-proxy, which rayfleetctl up --sim sets because simulated
 * heads are reachable only that way; --cluster-domain / CLUSTER_DOMAIN; --feature-gates;
 * RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS, RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS,
 * DELETE_RAYJOB_CR_AFTER_JOB_FINISHES or the Configuration's deleteRayJobAfterJobFinishes).
 */
#include "cronjob.h"
#include "ctrlsvc.h"
#include "krmetrics.h"
#include "log.h"
#include "opsettings.h"
#include "submitter.h"

static const cfg_opt_t s_options[] = {
    {"job-poll", CFG_DURATION, "1s", 0, 0, false, false,
     "Poll period of a running Ray job in HTTPMode and InteractiveMode.", NULL},
    {0},
};

/* The submitter's settings. */
typedef struct {
    submitter_t *sub;
    opsettings_t ops; /* KubeRay's operator settings */
    rj_settings_t set; /* built from them in s_open */
    cronjob_t *cron; /* the RayCronJob controller */
} app_t;

static ctrl_t *s_open(const ctrlsvc_env_t *env, void *arg)
{
    app_t *a = arg;
    const cfg_t *cfg = env->svc->cfg;
    opsettings_fill_rayjob(&a->ops, &a->set);
    a->sub = submitter_new(env->svc->loop,
                           &(submitter_config_t){.base = env->ctrl,
                                                 .use_proxy = a->ops.use_kubernetes_proxy,
                                                 .job_poll_ms = cfg_duration_ms(cfg, "job-poll"),
                                                 .settings = &a->set});
    return submitter_ctrl(a->sub);
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

/* The option that can be wrong: --cluster-domain. */
static int s_check(const cfg_t *cfg, void *arg, buf_t *err)
{
    (void)arg;
    return ctrlsvc_check_cluster_domain(cfg, err);
}

static void s_close(void *arg)
{
    app_t *a = arg;
    submitter_destroy(&a->sub);
}

/* The RayCronJob controller (after s_open, whose gates it reads). With the gate off it only
 * emits one Warning Event per RayCronJob (cronjob.h), and the start says so once. */
static ctrl_t *s_open_cron(const ctrlsvc_env_t *env, void *arg)
{
    app_t *a = arg;
    if (!a->set.gates.cronjob)
        log_warn("RayCronJobs are not reconciled: the feature gate RayCronJob is off (KubeRay's "
                 "default); each RayCronJob gets one Warning Event RayCronJobGateDisabled. Turn "
                 "it on with --feature-gates RayCronJob=true",
                 NULL);
    a->cron =
        cronjob_new(env->svc->loop, &(cronjob_config_t){.base = env->ctrl, .gates = &a->set.gates});
    return cronjob_ctrl(a->cron);
}

static void s_close_cron(void *arg)
{
    app_t *a = arg;
    cronjob_destroy(&a->cron);
}

int main(int argc, char **argv)
{
    app_t app = {0};
    opsettings_init(&app.ops);
    const ctrlsvc_extra_t extra[] = {{s_open_cron, s_close_cron, &app}};
    int code = ctrlsvc_main(
        &(ctrlsvc_def_t){.name = "submitter",
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
                         .health_port = 8084,
                         .extra = extra,
                         .nextra = 1},
        argc, argv);
    opsettings_free(&app.ops);
    return code;
}
