/*
 * rayfleet-scheduler: reconciles RayClusters (reconcile.h) as a controller process of the runtime
 * (ctrl/ctrlsvc.h: options, kubeconfig and client, the audit database <state-dir>/scheduler.db,
 * observed.db opened read-only once the watcher has created it, the bus subscription with
 * causes, the work queue, shard ownership with leases and the write fence, resync, shutdown).
 * What is the scheduler's own: its options --random-pod-delete and --feature-gates, KubeRay's operator-level switch
 * ENABLE_GCS_FT_REDIS_CLEANUP from the environment, and the reconciler it builds.
 */
#include "ctrlsvc.h"
#include "krmetrics.h"
#include "reconcile.h"
#include "validate.h"

#include <stdlib.h>
#include <strings.h>

static const cfg_opt_t s_options[] = {
    {"random-pod-delete", CFG_BOOL, "false", 0, 0, false, false,
     "Delete surplus workers even with autoscaling on (ENABLE_RANDOM_POD_DELETE).", NULL},
    {"feature-gates", CFG_STRING, "", 0, 0, false, false,
     "Feature gates, e.g. GCSFaultToleranceEmbeddedStorage=true,RayClusterNetworkPolicy=true.",
     NULL},
    {NULL},
};

/* KubeRay's operator-level switches come from its environment; "false" (any case) turns one off. */
static bool s_env_is_false(const char *name)
{
    const char *v = getenv(name);
    return v && strcasecmp(v, "false") == 0;
}

/* Builds the reconciler into *(reconciler_t **)arg; returns its runtime. */
static ctrl_t *s_open(const ctrlsvc_env_t *env, void *arg)
{
    reconciler_t **rec = arg;
    validate_gates_t gates;
    validate_gates_default(&gates);
    buf_t err; /* checked at start (s_check): cannot fail here */
    buf_init(&err, 512);
    int rc = validate_gates_parse(cfg_str(env->svc->cfg, "feature-gates"), &gates, &err);
    buf_free(&err);
    if (rc != 0)
        return NULL;
    *rec = reconcile_new(
        env->svc->loop,
        &(reconcile_config_t){.cluster = env->cluster,
                              .observed = env->observed,
                              .client = env->client,
                              .audit = env->audit,
                              .desired = env->db,
                              .fence = env->fence,
                              .fence_arg = env->fence_arg,
                              .random_delete = cfg_bool(env->svc->cfg, "random-pod-delete"),
                              .events = true,
                              .no_redis_cleanup = s_env_is_false("ENABLE_GCS_FT_REDIS_CLEANUP"),
                              .requeue_ms = env->requeue_ms,
                              .gates = &gates});
    return reconcile_ctrl(*rec);
}

/* The option that can be wrong: --feature-gates. */
static int s_check(const cfg_t *cfg, void *arg, buf_t *err)
{
    (void)arg;
    return validate_gates_option(cfg_str(cfg, "feature-gates"), err);
}

static void s_close(void *arg)
{
    reconcile_destroy((reconciler_t **)arg);
}

int main(int argc, char **argv)
{
    reconciler_t *rec = NULL; /* built once observed.db is open */
    return ctrlsvc_main(
        &(ctrlsvc_def_t){.name = "scheduler",
                         .options = s_options,
                         .open = s_open,
                         .close = s_close,
                         .check = s_check,
                         .arg = &rec,
                         .scrape = &(const ctrlsvc_scrape_t){krmetrics_open, krmetrics_begin,
                                                             krmetrics_object, krmetrics_close},
                         .health_port = 8083},
        argc, argv);
}
