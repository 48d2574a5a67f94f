/*
 * rayfleet-submitter: reconciles RayJobs (submitter.h) and RayCronJobs (cronjob.h; gate RayCronJob)
 * as a controller process of the runtime
 * (ctrl/ctrlsvc.h: options, kubeconfig and client, the audit database <state-dir>/submitter.db,
 * observed.db opened read-only once the watcher has created it, the bus subscription with
 * causes, the work queue, shard ownership with leases and the write fence, resync, shutdown;
 * /healthz /readyz /metrics on 127.0.0.1:8084 by default).
 *
 * Its own options: --use-kubernetes-proxy (KubeRay's flag: reach Ray dashboards through the API
 * server's service proxy instead of directly; rayfleetctl up --sim sets it, the simulated heads
 * being reachable only that way), --cluster-domain (KubeRay's CLUSTER_DOMAIN), --job-poll, and
 * the feature gates KubeRay's RayJob reads (--feature-gates RayJobDeletionPolicy=false,...).
 * KubeRay's operator environment is honoured: RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_
 * SECONDS, RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS, DELETE_RAYJOB_CR_AFTER_JOB_FINISHES.
 */
#include "cronjob.h"
#include "ctrlsvc.h"
#include "krmetrics.h"
#include "err.h"
#include "log.h"
#include "submitter.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const cfg_opt_t s_options[] = {
    {"use-kubernetes-proxy", CFG_BOOL, "false", 0, 0, false, false,
     "Reach Ray dashboards through the API server's service proxy.", NULL},
    {"cluster-domain", CFG_STRING, "", 0, 0, false, false,
     "Cluster domain of dashboard URLs (default: $CLUSTER_DOMAIN, else cluster.local).", NULL},
    {"job-poll", CFG_DURATION, "1s", 0, 0, false, false,
     "Poll period of a running Ray job in HTTPMode and InteractiveMode.", NULL},
    {"feature-gates", CFG_STRING, "", 0, 0, false, false,
     "Feature gates, e.g. RayCronJob=true,RayJobDeletionPolicy=false.", NULL},
    {NULL},
};

/* The submitter's settings, built in s_open. */
typedef struct {
    submitter_t *sub;
    rj_settings_t set;
    cronjob_t *cron; /* the RayCronJob controller */
} app_t;

/* An integer from the environment, or def. */
static int64_t s_env_int(const char *name, int64_t def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (*end || n < 0) {
        log_warn("ignored: not a non-negative integer", "env", name, "value", v, NULL);
        return def;
    }
    return n;
}

static ctrl_t *s_open(const ctrlsvc_env_t *env, void *arg)
{
    app_t *a = arg;
    const cfg_t *cfg = env->svc->cfg;
    rjstate_settings_default(&a->set);
    a->set.grace_s =
        s_env_int("RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS", RJ_DEFAULT_GRACE_S);
    a->set.check_timeout_s =
        s_env_int("RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS", RJ_DEFAULT_CHECK_TIMEOUT_S);
    const char *del = getenv("DELETE_RAYJOB_CR_AFTER_JOB_FINISHES");
    a->set.delete_cr_after_finish = del && strcasecmp(del, "true") == 0;
    a->set.domain = ctrlsvc_cluster_domain(cfg);
    buf_t err; /* checked at start (s_check): cannot fail here */
    buf_init(&err, 512);
    int rc = validate_gates_parse(cfg_str(cfg, "feature-gates"), &a->set.gates, &err);
    buf_free(&err);
    if (rc != 0)
        return NULL;
    a->sub = submitter_new(env->svc->loop,
                           &(submitter_config_t){.base = env->ctrl,
                                                 .use_proxy = cfg_bool(cfg, "use-kubernetes-proxy"),
                                                 .job_poll_ms = cfg_duration_ms(cfg, "job-poll"),
                                                 .settings = &a->set});
    return submitter_ctrl(a->sub);
}

/* The options that can be wrong: --cluster-domain, --feature-gates. */
static int s_check(const cfg_t *cfg, void *arg, buf_t *err)
{
    (void)arg;
    int rc = ctrlsvc_check_cluster_domain(cfg, err);
    return rc ? rc : validate_gates_option(cfg_str(cfg, "feature-gates"), err);
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
    const ctrlsvc_extra_t extra[] = {{s_open_cron, s_close_cron, &app}};
    return ctrlsvc_main(
        &(ctrlsvc_def_t){.name = "submitter",
                         .options = s_options,
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
}
