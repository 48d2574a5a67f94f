/*
 * rayfleet-scheduler: reconciles RayClusters (reconcile.h) as a controller process of the runtime
 * (ctrl/ctrlsvc.h: options, kubeconfig and client, the audit database <state-dir>/scheduler.db,
 * observed.db opened read-only once the watcher has created it, the bus subscription with
 * causes, the work queue, shard ownership with leases and the write fence, resync, shutdown).
 * What is the scheduler's own: its option --random-pod-delete and the reconciler it builds.
 * KubeRay's operator settings (flags, environment switches, Configuration file) come from
 * kuberay/opsettings.h, as in every controller: the pod builder's options, the head Service type,
 * the requeue period, the Redis cleanup and random delete switches, the gates.
 *
 * Federation (--federation.config FILE, on the management cluster): the scheduler does not
 * reconcile the management cluster's Ray objects but admits and places them on the member
 * clusters (placer.h): its controllers are then the placer's, one per kind (RayCluster, and as
 * extra controllers RayJob and RayService).
 */
#include "ctrlsvc.h"
#include "fedcfg.h"
#include "log.h"
#include "placer.h"
#include "krmetrics.h"
#include "opsettings.h"
#include "reconcile.h"

static const cfg_opt_t s_options[] = {
    {"random-pod-delete", CFG_BOOL, "false", 0, 0, false, false,
     "Delete surplus workers even with autoscaling on (as ENABLE_RANDOM_POD_DELETE=true).", NULL},
    {"max-pods-per-cluster", CFG_INT, "10000", 1, 2147483647, false, false,
     "Most pods (head + workers after min/max clamping) one RayCluster may ask for; a spec over it "
     "gets a Warning Event TooManyPods and nothing is created (KubeRay has no such cap).",
     NULL},
    {"federation.config", CFG_STRING, NULL, 0, 0, false, false,
     "A YAML file with a federation: section (members, placement, queues; see the README's "
     "Federation): run on the management cluster as its placer (admission and placement of "
     "RayClusters, RayJobs and RayServices on the member clusters) instead of reconciling them.",
     NULL},
    {0},
};

/* The scheduler's state: KubeRay's settings and what is built from them. */
typedef struct {
    reconciler_t *rec; /* built once observed.db is open */
    placer_t *placer; /* with --federation.config, instead of rec */
    opsettings_t set;
    podbuild_opts_t pod;
} app_t;

static ctrl_t *s_open(const ctrlsvc_env_t *env, void *arg)
{
    app_t *a = arg;
    const char *fed = cfg_str(env->svc->cfg, "federation.config");
    if (fed) {
        buf_t err;
        buf_init(&err, 4096);
        a->placer = placer_new(env, fed, &err);
        if (!a->placer) {
            fprintf(stderr, "scheduler: --federation.config: %s\n", buf_str(&err));
            log_error("placer not started", "error", buf_str(&err), NULL);
        }
        buf_free(&err);
        return placer_ctrl(a->placer, PLACER_RAYCLUSTER);
    }
    opsettings_fill_podbuild(&a->set, &a->pod);
    a->rec = reconcile_new(
        env->svc->loop,
        &(reconcile_config_t){.cluster = env->cluster,
                              .observed = env->observed,
                              .client = env->client,
                              .audit = env->audit,
                              .desired = env->db,
                              .fence = env->fence,
                              .fence_arg = env->fence_arg,
                              .random_delete = cfg_bool(env->svc->cfg, "random-pod-delete") ||
                                               a->set.random_pod_delete,
                              .events = true,
                              .no_redis_cleanup = !a->set.gcs_ft_redis_cleanup,
                              .head_cluster_ip = a->set.head_cluster_ip_service,
                              .requeue_ms =
                                  a->set.requeue_set ? a->set.requeue_s * 1000 : env->requeue_ms,
                              .pod_opts = &a->pod,
                              .max_pods = cfg_int(env->svc->cfg, "max-pods-per-cluster"),
                              .gates = &a->set.gates});
    return reconcile_ctrl(a->rec);
}

static int s_configure(cfg_t *cfg, void *arg, buf_t *err)
{
    return opsettings_configure(&((app_t *)arg)->set, cfg, err);
}

static int s_check(const cfg_t *cfg, void *arg, buf_t *err)
{
    (void)arg;
    const char *fed = cfg_str(cfg, "federation.config");
    if (fed) {
        /* at start, not once observed.db is open: a bad file is a usage error naming its line */
        fedcfg_t f;
        buf_t why;
        buf_init(&why, 4096);
        int rc = fedcfg_load(fed, &f, &why);
        if (rc != 0)
            (void)buf_printf(err, "--federation.config: %s", buf_str(&why));
        fedcfg_free(&f);
        buf_free(&why);
        if (rc != 0)
            return rc;
    }
    return ctrlsvc_check_cluster_domain(cfg, err);
}

/* KubeRay's start-up refusal of SidecarSubmitterRestart below K8s 1.35 (GET /version). */
static int s_server_version(const json_t *version, void *arg, buf_t *err)
{
    return opsettings_check_server_version(&((app_t *)arg)->set, version, err);
}

static bool s_wants_server_version(void *arg)
{
    return opsettings_wants_server_version(&((app_t *)arg)->set);
}

static bool s_watches(const char *ns, void *arg)
{
    return opsettings_watches(&((app_t *)arg)->set, ns);
}

static void s_close(void *arg)
{
    reconcile_destroy(&((app_t *)arg)->rec);
    placer_destroy(&((app_t *)arg)->placer);
}

/* The placer's RayJob and RayService controllers (NULL without --federation.config). */
static ctrl_t *s_open_rayjob(const ctrlsvc_env_t *env, void *arg)
{
    (void)env;
    return placer_ctrl(((app_t *)arg)->placer, PLACER_RAYJOB);
}

static ctrl_t *s_open_rayservice(const ctrlsvc_env_t *env, void *arg)
{
    (void)env;
    return placer_ctrl(((app_t *)arg)->placer, PLACER_RAYSERVICE);
}

int main(int argc, char **argv)
{
    app_t app = {0};
    opsettings_init(&app.set);
    const ctrlsvc_extra_t extra[] = {{s_open_rayjob, NULL, &app}, {s_open_rayservice, NULL, &app}};
    int code = ctrlsvc_main(
        &(ctrlsvc_def_t){.name = "scheduler",
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
                         .fresh_pods = true,
                         .extra = extra,
                         .nextra = sizeof(extra) / sizeof(extra[0]),
                         .health_port = 8083},
        argc, argv);
    opsettings_free(&app.set);
    return code;
}
