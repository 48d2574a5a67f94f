/* opsettings: KubeRay's operator settings (see opsettings.h). */
#include "opsettings.h"

#include "err.h"
#include "json.h"
#include "log.h"
#include "yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The largest Configuration file read. */
#define S_MAX_FILE (1024u * 1024u)

const cfg_opt_t opsettings_options[] = {
    {"feature-gates", CFG_STRING, "", 0, 0, false, false,
     "KubeRay feature gates, e.g. GCSFaultToleranceEmbeddedStorage=true,RayJobDeletionPolicy=false "
     "(applied after the --kuberay-config file's featureGates).",
     NULL},
    {"batch-scheduler", CFG_STRING, "", 0, 0, false, false,
     "KubeRay batch scheduler (" OPSETTINGS_BATCH_SCHEDULERS "): scheduler metadata on the "
     "pods and, for volcano and scheduler-plugins, PodGroups; empty: none.",
     NULL},
    {"watch-namespace", CFG_STRING, "", 0, 0, false, false,
     "Comma list of namespaces whose objects the controller reconciles, others are ignored (empty: "
     "all). What is listed and watched is the watcher's option watch.namespaces.",
     NULL},
    {"use-kubernetes-proxy", CFG_BOOL, "false", 0, 0, false, false,
     "Reach Ray dashboards and head pods through the API server's service proxy.", NULL},
    {"cluster-domain", CFG_STRING, "", 0, 0, false, false,
     "Cluster DNS domain of head FQDNs and dashboard URLs (default: $CLUSTER_DOMAIN, else "
     "cluster.local).",
     NULL},
    {"kuberay-config", CFG_STRING, NULL, 0, 0, false, false,
     "KubeRay's Configuration file (apiVersion " OPSETTINGS_API_VERSION ", kind Configuration): "
     "pod defaults and sidecars, featureGates, and the settings above.",
     NULL},
    {"reconcile-concurrency", CFG_ALIAS, "concurrency", 0, 0, false, false,
     "KubeRay's name (reconciles in flight at once).", NULL},
    {"qps", CFG_ALIAS, "client.qps", 0, 0, false, false, "KubeRay's name (whole requests/s).",
     NULL},
    {"burst", CFG_ALIAS, "client.burst", 0, 0, false, false, "KubeRay's name.", NULL},
    {"enable-leader-election", CFG_ALIAS, "leader.elect", 0, 0, false, false, "KubeRay's name.",
     NULL},
    {"leader-election-namespace", CFG_ALIAS, "leader.namespace", 0, 0, false, false,
     "KubeRay's name.", NULL},
    {NULL, 0, NULL, 0, 0, false, false, NULL, NULL},
};

void opsettings_init(opsettings_t *s)
{
    memset(s, 0, sizeof(*s));
    validate_gates_default(&s->gates);
    s->init_container_injection = true;
    s->probes_injection = true;
    s->requeue_s = OPSETTINGS_DEFAULT_REQUEUE_S;
    s->gcs_ft_redis_cleanup = true;
    s->zero_downtime = true;
    s->grace_s = RJ_DEFAULT_GRACE_S;
    s->check_timeout_s = RJ_DEFAULT_CHECK_TIMEOUT_S;
    s->enable_leader_election = -1;
}

void opsettings_free(opsettings_t *s)
{
    if (!s)
        return;
    json_decref(s->head_sidecars);
    json_decref(s->worker_sidecars);
    json_decref(s->default_container_envs);
    json_decref(s->default_pod_labels);
    json_decref(s->default_pod_annotations);
    free(s->cluster_domain);
    free(s->batch_scheduler);
    free(s->watch_namespace);
    free(s->leader_election_namespace);
    free(s->feature_gates);
    free(s->config_path);
    opsettings_init(s);
}

/* Replaces the owned string *dst with a copy of v (NULL or "" clears it). */
static int s_setstr(char **dst, const char *v)
{
    char *c = v && *v ? strdup(v) : NULL;
    if (v && *v && !c)
        return ERR_NOMEM;
    free(*dst);
    *dst = c;
    return 0;
}

static const char *s_getenv(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

/* The bool switches and the field each sets. */
static const struct {
    const char *name;
    size_t off;
} s_bool_env[] = {
    {"ENABLE_INIT_CONTAINER_INJECTION", offsetof(opsettings_t, init_container_injection)},
    {"ENABLE_PROBES_INJECTION", offsetof(opsettings_t, probes_injection)},
    {"ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE", offsetof(opsettings_t, head_cluster_ip_service)},
    {"USE_INGRESS_ON_OPENSHIFT", offsetof(opsettings_t, use_ingress_on_openshift)},
    {"ENABLE_GCS_FT_REDIS_CLEANUP", offsetof(opsettings_t, gcs_ft_redis_cleanup)},
    {"ENABLE_ZERO_DOWNTIME", offsetof(opsettings_t, zero_downtime)},
    {"DELETE_RAYJOB_CR_AFTER_JOB_FINISHES", offsetof(opsettings_t, delete_rayjob_after_finish)},
    {"ENABLE_DETERMINISTIC_HEAD_POD_NAME", offsetof(opsettings_t, deterministic_head_name)},
    {"ENABLE_LOGIN_SHELL", offsetof(opsettings_t, login_shell)},
    {"ENABLE_RANDOM_POD_DELETE", offsetof(opsettings_t, random_pod_delete)},
    {"ENABLE_WEBHOOKS", offsetof(opsettings_t, webhooks)},
};

/* The integer switches (seconds). */
static const struct {
    const char *name;
    size_t off;
} s_int_env[] = {
    {"RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV", offsetof(opsettings_t, requeue_s)},
    {"RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS", offsetof(opsettings_t, grace_s)},
    {"RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS", offsetof(opsettings_t, check_timeout_s)},
};

/* Appends `"v"` (escaped, cut to 200 bytes) to err. */
static void s_quote(buf_t *err, const char *v)
{
    (void)buf_puts(err, "\"");
    (void)buf_json_escape(err, strlen(v) > 200 ? "(a value too long to show)" : v);
    (void)buf_puts(err, "\"");
}

int opsettings_from_env(opsettings_t *s, opsettings_getenv_fn get, void *arg, buf_t *err)
{
    if (!get)
        get = s_getenv;
    for (size_t i = 0; i < sizeof(s_bool_env) / sizeof(s_bool_env[0]); i++) {
        const char *v = get(s_bool_env[i].name, arg);
        if (!v || !*v)
            continue;
        bool on = strcasecmp(v, "true") == 0;
        if (!on && strcasecmp(v, "false") != 0) {
            (void)buf_printf(err, "environment %s: must be true or false, got ",
                             s_bool_env[i].name);
            s_quote(err, v);
            return ERR_INVAL;
        }
        *(bool *)((char *)s + s_bool_env[i].off) = on;
    }
    for (size_t i = 0; i < sizeof(s_int_env) / sizeof(s_int_env[0]); i++) {
        const char *v = get(s_int_env[i].name, arg);
        if (!v || !*v)
            continue;
        char *end = NULL;
        long long n = strtoll(v, &end, 10);
        if (*end || end == v || n < 0 || n > 86400LL * 366) {
            (void)buf_printf(err,
                             "environment %s: must be a non-negative integer (seconds, at most a "
                             "year), got ",
                             s_int_env[i].name);
            s_quote(err, v);
            return ERR_INVAL;
        }
        *(int64_t *)((char *)s + s_int_env[i].off) = n;
        if (i == 0)
            s->requeue_set = true;
    }
    const char *dom = get("CLUSTER_DOMAIN", arg);
    if (dom && *dom && s_setstr(&s->cluster_domain, dom) != 0)
        return ERR_NOMEM;
    if (s->webhooks)
        log_warn("ENABLE_WEBHOOKS=true: rayfleet serves no admission webhook; invalid objects are "
                 "rejected by the controllers with KubeRay's events instead",
                 NULL);
    if (s->use_ingress_on_openshift)
        log_warn("USE_INGRESS_ON_OPENSHIFT=true: rayfleet builds Ingresses, never OpenShift "
                 "Routes, so this changes nothing",
                 NULL);
    return 0;
}

/* Checks that `v` is an array of objects each with a non-empty string "name". */
static int s_named_array(const json_t *v, const char *path, const char *field, const char *what,
                         buf_t *err)
{
    if (!json_is_array(v)) {
        (void)buf_printf(err, "%s: %s: must be a list of %s", path, field, what);
        return ERR_INVAL;
    }
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it)
    {
        const char *n = jx_str(it, "name", "");
        if (!json_is_object(it) || !*n) {
            (void)buf_printf(err, "%s: %s[%zu]: must be a %s with a name", path, field, i, what);
            return ERR_INVAL;
        }
    }
    return 0;
}

/* Checks that `v` is a mapping of strings. */
static int s_string_map(const json_t *v, const char *path, const char *field, buf_t *err)
{
    const char *k;
    json_t *it;
    if (!json_is_object(v)) {
        (void)buf_printf(err, "%s: %s: must be a mapping of strings", path, field);
        return ERR_INVAL;
    }
    json_object_foreach((json_t *)v, k, it)
    {
        if (!json_is_string(it)) {
            (void)buf_printf(err, "%s: %s.%s: must be a string", path, field, k);
            return ERR_INVAL;
        }
    }
    return 0;
}

/* A Configuration field: its name and its JSON type (the checks are in s_field). */
typedef enum { F_STRING, F_BOOL, F_INT, F_NUMBER, F_CONTAINERS, F_ENVS, F_MAP, F_GATES } s_ftype_t;

static const struct {
    const char *name;
    s_ftype_t type;
} s_fields[] = {
    {"apiVersion", F_STRING},
    {"kind", F_STRING},
    {"metricsAddr", F_STRING},
    {"probeAddr", F_STRING},
    {"enableLeaderElection", F_BOOL},
    {"leaderElectionNamespace", F_STRING},
    {"watchNamespace", F_STRING},
    {"logFile", F_STRING},
    {"logFileEncoder", F_STRING},
    {"logStdoutEncoder", F_STRING},
    {"batchScheduler", F_STRING},
    {"headSidecarContainers", F_CONTAINERS},
    {"workerSidecarContainers", F_CONTAINERS},
    {"defaultContainerEnvs", F_ENVS},
    {"defaultPodAnnotations", F_MAP},
    {"defaultPodLabels", F_MAP},
    {"reconcileConcurrency", F_INT},
    {"enableBatchScheduler", F_BOOL},
    {"useKubernetesProxy", F_BOOL},
    {"deleteRayJobAfterJobFinishes", F_BOOL},
    {"enableMetrics", F_BOOL},
    {"qps", F_NUMBER},
    {"burst", F_INT},
    {"featureGates", F_GATES},
};

/* Checks the value `v` of field `f` of file `path`. */
static int s_field_check(const char *path, const char *f, s_ftype_t t, const json_t *v, buf_t *err)
{
    switch (t) {
    case F_STRING:
        if (json_is_string(v))
            return 0;
        (void)buf_printf(err, "%s: %s: must be a string", path, f);
        return ERR_INVAL;
    case F_BOOL:
        if (json_is_boolean(v))
            return 0;
        (void)buf_printf(err, "%s: %s: must be true or false", path, f);
        return ERR_INVAL;
    case F_INT:
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 100000)
            return 0;
        (void)buf_printf(err, "%s: %s: must be an integer between 0 and 100000", path, f);
        return ERR_INVAL;
    case F_NUMBER:
        /* KubeRay's qps is a float; rayfleet's client rate is whole requests per second. */
        if (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) <= 100000 &&
            json_number_value(v) == (double)(int64_t)json_number_value(v))
            return 0;
        (void)buf_printf(err, "%s: %s: must be a whole number between 0 and 100000", path, f);
        return ERR_INVAL;
    case F_CONTAINERS:
        return s_named_array(v, path, f, "container", err);
    case F_ENVS:
        return s_named_array(v, path, f, "environment variable", err);
    case F_MAP:
        return s_string_map(v, path, f, err);
    case F_GATES: {
        const char *k;
        json_t *it;
        if (!json_is_object(v)) {
            (void)buf_printf(err, "%s: %s: must be a mapping of gate names to true or false", path,
                             f);
            return ERR_INVAL;
        }
        json_object_foreach((json_t *)v, k, it)
        {
            if (!json_is_boolean(it)) {
                (void)buf_printf(err, "%s: %s.%s: must be true or false", path, f, k);
                return ERR_INVAL;
            }
        }
        return 0;
    }
    }
    return ERR_INVAL;
}

/* Renders the featureGates mapping as a --feature-gates value and applies it. */
static int s_file_gates(opsettings_t *s, const char *path, const json_t *v, buf_t *err)
{
    buf_t spec;
    buf_init(&spec, 64 * 1024);
    const char *k;
    json_t *it;
    int rc = 0;
    json_object_foreach((json_t *)v, k, it)
    {
        rc = buf_printf(&spec, "%s%s=%s", spec.len ? "," : "", k,
                        json_is_true(it) ? "true" : "false");
        if (rc)
            break;
    }
    if (!rc) {
        validate_gates_t g = s->gates;
        buf_t cause;
        buf_init(&cause, 1024);
        rc = validate_gates_parse(buf_str(&spec), &g, &cause);
        if (rc)
            (void)buf_printf(err, "%s: featureGates: %s", path, buf_str(&cause));
        else
            s->gates = g;
        buf_free(&cause);
    }
    if (!rc)
        rc = s_setstr(&s->feature_gates, buf_str(&spec));
    buf_free(&spec);
    return rc;
}

/* Keeps a new reference to `v` in *dst. */
static void s_keep(json_t **dst, json_t *v)
{
    json_decref(*dst);
    *dst = json_incref(v);
}

int opsettings_load_kuberay_config(opsettings_t *s, const char *path, buf_t *err)
{
    json_t *docs = NULL, *marks = NULL;
    int rc = yaml_load_file_marks(path, S_MAX_FILE, &docs, &marks, err);
    if (rc)
        return rc;
    json_t *root = json_array_get(docs, 0);
    if (json_array_size(docs) != 1 || !json_is_object(root)) {
        (void)buf_printf(err, "%s: one YAML mapping (a KubeRay Configuration) expected", path);
        rc = ERR_PARSE;
        goto out;
    }
    const char *k;
    json_t *v;
    /* Every key first: an unknown one is an error wherever it is. */
    json_object_foreach(root, k, v)
    {
        size_t i = 0, n = sizeof(s_fields) / sizeof(s_fields[0]);
        while (i < n && strcmp(s_fields[i].name, k) != 0)
            i++;
        if (i == n) {
            json_t *m = json_object_get(marks, k);
            (void)buf_printf(err, "%s:%lld:%lld: unknown key \"", path,
                             (long long)json_integer_value(json_array_get(m, 0)),
                             (long long)json_integer_value(json_array_get(m, 1)));
            (void)buf_json_escape(err, k);
            (void)buf_puts(err, "\" (not a field of KubeRay's Configuration v1alpha1)");
            rc = ERR_INVAL;
            goto out;
        }
        if (json_is_null(v))
            continue;
        if ((rc = s_field_check(path, k, s_fields[i].type, v, err)) != 0)
            goto out;
    }
    if (strcmp(jx_str(root, "apiVersion", ""), OPSETTINGS_API_VERSION) != 0 ||
        strcmp(jx_str(root, "kind", ""), OPSETTINGS_KIND) != 0) {
        (void)buf_printf(
            err, "%s: apiVersion must be " OPSETTINGS_API_VERSION " and kind " OPSETTINGS_KIND,
            path);
        rc = ERR_INVAL;
        goto out;
    }
    s_keep(&s->head_sidecars, json_object_get(root, "headSidecarContainers"));
    s_keep(&s->worker_sidecars, json_object_get(root, "workerSidecarContainers"));
    s_keep(&s->default_container_envs, json_object_get(root, "defaultContainerEnvs"));
    s_keep(&s->default_pod_labels, json_object_get(root, "defaultPodLabels"));
    s_keep(&s->default_pod_annotations, json_object_get(root, "defaultPodAnnotations"));
    if ((rc = s_setstr(&s->batch_scheduler, jx_str(root, "batchScheduler", NULL))) ||
        (rc = s_setstr(&s->watch_namespace, jx_str(root, "watchNamespace", NULL))) ||
        (rc = s_setstr(&s->leader_election_namespace,
                       jx_str(root, "leaderElectionNamespace", NULL))) ||
        (rc = s_setstr(&s->config_path, path)))
        goto out;
    s->reconcile_concurrency = jx_int(root, "reconcileConcurrency", 0);
    s->burst = jx_int(root, "burst", 0);
    json_t *q = json_object_get(root, "qps");
    s->qps = json_is_number(q) ? (int64_t)json_number_value(q) : 0;
    json_t *le = json_object_get(root, "enableLeaderElection");
    s->enable_leader_election = json_is_boolean(le) ? json_is_true(le) : -1;
    s->use_kubernetes_proxy = jx_bool(root, "useKubernetesProxy", false);
    s->enable_batch_scheduler = jx_bool(root, "enableBatchScheduler", false);
    if (jx_bool(root, "deleteRayJobAfterJobFinishes", false))
        s->delete_rayjob_after_finish = true;
    json_t *g = json_object_get(root, "featureGates");
    if (json_is_object(g))
        rc = s_file_gates(s, path, g, err);
out:
    json_decref(docs);
    json_decref(marks);
    return rc;
}

int opsettings_feature_gates(opsettings_t *s, const char *spec, buf_t *err)
{
    validate_gates_t g = s->gates;
    int rc = buf_puts(err, "--feature-gates: ");
    if (!rc)
        rc = validate_gates_parse(spec, &g, err);
    if (rc == 0) {
        s->gates = g;
        buf_reset(err);
    }
    return rc;
}

int opsettings_check_batch_scheduler(const opsettings_t *s, buf_t *err)
{
    batchsched_t b;
    if (s->enable_batch_scheduler && s->batch_scheduler && *s->batch_scheduler) {
        (void)buf_puts(err, "both feature flags enable-batch-scheduler (deprecated) and "
                            "batch-scheduler are set. please use batch-scheduler only");
        return ERR_INVAL;
    }
    if (batchsched_parse(s->batch_scheduler, &b) == 0)
        return 0;
    (void)buf_puts(err, "batch scheduler ");
    s_quote(err, s->batch_scheduler);
    (void)buf_puts(err, ": must be one of " OPSETTINGS_BATCH_SCHEDULERS);
    return ERR_INVAL;
}

int opsettings_check_was(const opsettings_t *s, buf_t *err)
{
    if (!s->gates.kubernetes_was)
        return 0;
    if (!(s->batch_scheduler && *s->batch_scheduler) && !s->enable_batch_scheduler)
        return 0;
    (void)buf_puts(err, "batch scheduler configs validation failed: the KubernetesWAS feature "
                        "gate cannot be combined with --batch-scheduler or "
                        "--enable-batch-scheduler");
    return ERR_INVAL;
}

/* "v1.35.0-gke.1" / "1.35+" -> 1, 35, 0: false unless it starts with [v]MAJOR.MINOR. */
static bool s_parse_version(const char *v, long out[3])
{
    out[0] = out[1] = out[2] = 0;
    if (!v)
        return false;
    if (*v == 'v')
        v++;
    for (int i = 0; i < 3; i++) {
        if (*v < '0' || *v > '9')
            return i == 2;
        char *end;
        out[i] = strtol(v, &end, 10);
        v = end;
        if (*v != '.')
            return i >= 1;
        v++;
    }
    return true;
}

bool opsettings_wants_server_version(const opsettings_t *s)
{
    return s->gates.sidecar_submitter_restart;
}

int opsettings_check_server_version(const opsettings_t *s, const json_t *version, buf_t *err)
{
    if (!s->gates.sidecar_submitter_restart)
        return 0;
    long v[3];
    const char *git = jx_str(version, "gitVersion", NULL);
    bool ok = s_parse_version(git, v);
    if (!ok) {
        const char *maj = jx_str(version, "major", NULL), *min = jx_str(version, "minor", NULL);
        char mm[64];
        if (maj && min) {
            snprintf(mm, sizeof(mm), "%s.%s", maj, min);
            ok = s_parse_version(mm, v); /* minor may read "35+" */
        }
    }
    if (!ok) {
        (void)buf_puts(err, "SidecarSubmitterRestart feature gate enabled but unable to detect K8s "
                            "version. Feature requires K8s 1.35+.");
        return ERR_INVAL;
    }
    if (v[0] > 1 || (v[0] == 1 && v[1] >= 35))
        return 0;
    (void)buf_printf(err,
                     "SidecarSubmitterRestart feature gate requires K8s 1.35+: current version %s "
                     "is below 1.35",
                     git ? git : "");
    return ERR_INVAL;
}

batchsched_t opsettings_batch_scheduler(const opsettings_t *s)
{
    batchsched_t b = BATCHSCHED_NONE;
    if (s->gates.kubernetes_was)
        return BATCHSCHED_KUBERNETES_WAS; /* exclusive with the others (opsettings_check_was) */
    if (s->enable_batch_scheduler && (!s->batch_scheduler || !*s->batch_scheduler))
        return BATCHSCHED_VOLCANO; /* the deprecated enableBatchScheduler meant Volcano */
    (void)batchsched_parse(s->batch_scheduler, &b);
    return b;
}

/* Sets rayfleet option `key` from the Configuration's `field` (text `val`) unless the option was
 * set already by a rayfleet source. */
static int s_map(cfg_t *cfg, const opsettings_t *s, const char *key, const char *field,
                 const char *val, buf_t *err)
{
    const char *src = cfg_source(cfg, key);
    if (src && strcmp(src, "default") != 0 && strcmp(src, "unset") != 0) {
        (void)buf_printf(err,
                         "%s: %s is set there and as rayfleet's --%s (%s): set it in one place",
                         s->config_path, field, key, src);
        return ERR_INVAL;
    }
    char where[512];
    snprintf(where, sizeof where, "%s: %s", s->config_path, field);
    return cfg_override(cfg, key, val, where, err);
}

int opsettings_configure(opsettings_t *s, cfg_t *cfg, buf_t *err)
{
    int rc = opsettings_from_env(s, NULL, NULL, err);
    if (rc)
        return rc;
    const char *path = cfg_str(cfg, "kuberay-config");
    if (path && *path) {
        if ((rc = opsettings_load_kuberay_config(s, path, err)) != 0)
            return rc;
        char num[32];
        if (s->reconcile_concurrency > 0) {
            snprintf(num, sizeof num, "%lld", (long long)s->reconcile_concurrency);
            if ((rc = s_map(cfg, s, "concurrency", "reconcileConcurrency", num, err)))
                return rc;
        }
        if (s->qps > 0) {
            snprintf(num, sizeof num, "%lld", (long long)s->qps);
            if ((rc = s_map(cfg, s, "client.qps", "qps", num, err)))
                return rc;
        }
        if (s->burst > 0) {
            snprintf(num, sizeof num, "%lld", (long long)s->burst);
            if ((rc = s_map(cfg, s, "client.burst", "burst", num, err)))
                return rc;
        }
        if (s->enable_leader_election >= 0 &&
            (rc = s_map(cfg, s, "leader.elect", "enableLeaderElection",
                        s->enable_leader_election ? "true" : "false", err)))
            return rc;
        if (s->leader_election_namespace &&
            (rc = s_map(cfg, s, "leader.namespace", "leaderElectionNamespace",
                        s->leader_election_namespace, err)))
            return rc;
        if (s->use_kubernetes_proxy &&
            (rc = s_map(cfg, s, "use-kubernetes-proxy", "useKubernetesProxy", "true", err)))
            return rc;
        if (s->watch_namespace &&
            (rc = s_map(cfg, s, "watch-namespace", "watchNamespace", s->watch_namespace, err)))
            return rc;
        if (s->batch_scheduler &&
            (rc = s_map(cfg, s, "batch-scheduler", "batchScheduler", s->batch_scheduler, err)))
            return rc;
    }
    if ((rc = opsettings_feature_gates(s, cfg_str(cfg, "feature-gates"), err)))
        return rc;
    const char *bs = cfg_str(cfg, "batch-scheduler");
    if ((rc = s_setstr(&s->batch_scheduler, bs && *bs ? bs : s->batch_scheduler)))
        return rc;
    if ((rc = opsettings_check_was(s, err)))
        return rc;
    if ((rc = opsettings_check_batch_scheduler(s, err)))
        return rc;
    const char *wn = cfg_str(cfg, "watch-namespace");
    if (wn && *wn && (rc = s_setstr(&s->watch_namespace, wn)))
        return rc;
    const char *dom = cfg_str(cfg, "cluster-domain");
    if (dom && *dom && (rc = s_setstr(&s->cluster_domain, dom)))
        return rc;
    s->use_kubernetes_proxy = cfg_bool(cfg, "use-kubernetes-proxy");
    return 0;
}

bool opsettings_watches(const opsettings_t *s, const char *ns)
{
    const char *p = s ? s->watch_namespace : NULL;
    if (!p || !*p)
        return true;
    size_t nl = strlen(ns);
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *a = p, *e = p + n;
        p = *e ? e + 1 : e;
        while (a < e && *a == ' ')
            a++;
        while (e > a && e[-1] == ' ')
            e--;
        if ((size_t)(e - a) == nl && strncmp(a, ns, nl) == 0)
            return true;
    }
    return false;
}

void opsettings_fill_podbuild(const opsettings_t *s, podbuild_opts_t *o)
{
    podbuild_opts_init(o);
    o->gate_multihost_indexing = s->gates.multihost_indexing;
    o->gate_history_server = s->gates.history_server;
    o->init_container_injection = s->init_container_injection;
    o->probes_injection = s->probes_injection;
    o->deterministic_head_name = s->deterministic_head_name;
    o->login_shell = s->login_shell;
    o->cluster_domain = s->cluster_domain;
    o->default_container_envs = s->default_container_envs;
    o->default_pod_labels = s->default_pod_labels;
    o->default_pod_annotations = s->default_pod_annotations;
    o->head_sidecars = s->head_sidecars;
    o->worker_sidecars = s->worker_sidecars;
    o->batch_scheduler = opsettings_batch_scheduler(s);
}

void opsettings_fill_objbuild(const opsettings_t *s, objbuild_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->head_cluster_ip = s->head_cluster_ip_service;
}

void opsettings_fill_rayjob(const opsettings_t *s, rj_settings_t *o)
{
    rjstate_settings_default(o);
    o->grace_s = s->grace_s;
    o->check_timeout_s = s->check_timeout_s;
    o->delete_cr_after_finish = s->delete_rayjob_after_finish;
    o->domain = s->cluster_domain;
    o->gates = s->gates;
    o->batch_scheduler = opsettings_batch_scheduler(s);
}

void opsettings_fill_rayservice(const opsettings_t *s, rs_settings_t *o)
{
    rsstate_settings_default(o);
    o->zero_downtime = s->zero_downtime;
    o->gates = s->gates;
}

#ifdef RF_SELFTEST
#include "selftest.h"

#include <unistd.h>

/* A fake environment: "NAME=value" strings. */
static const char *s_t_get(const char *name, void *arg)
{
    for (const char *const *e = arg; *e; e++) {
        size_t n = strlen(name);
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    }
    return NULL;
}

static bool s_t_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

static bool s_t_has(const buf_t *b, const char *want, bool verbose)
{
    bool ok = strstr(buf_str(b), want) != NULL;
    if (!ok && verbose)
        printf("  got: %s\n  wanted: %s\n", buf_str(b), want);
    return ok;
}

int opsettings_test(bool verbose)
{
    int failed = 0;
    opsettings_t s;
    buf_t err;
    buf_init(&err, 64 * 1024);

    /* KubernetesWAS: exclusive with a batch scheduler; alone it selects kubernetes-was-v1alpha2 */
    opsettings_init(&s);
    CHECK(opsettings_check_was(&s, &err) == 0);
    CHECK(opsettings_batch_scheduler(&s) == BATCHSCHED_NONE);
    s.gates.kubernetes_was = true;
    buf_reset(&err);
    CHECK(opsettings_check_was(&s, &err) == 0 && err.len == 0);
    CHECK(opsettings_batch_scheduler(&s) == BATCHSCHED_KUBERNETES_WAS);
    {
        podbuild_opts_t wpo;
        opsettings_fill_podbuild(&s, &wpo);
        CHECK(wpo.batch_scheduler == BATCHSCHED_KUBERNETES_WAS);
    }
    s.enable_batch_scheduler = true;
    buf_reset(&err);
    CHECK(opsettings_check_was(&s, &err) == ERR_INVAL &&
          strcmp(buf_str(&err), "batch scheduler configs validation failed: the KubernetesWAS "
                                "feature gate cannot be combined with --batch-scheduler or "
                                "--enable-batch-scheduler") == 0);
    opsettings_free(&s);
    opsettings_init(&s);
    CHECK(opsettings_feature_gates(&s, "KubernetesWAS=true", &err) == 0 && s.gates.kubernetes_was);
    opsettings_free(&s);

    /* SidecarSubmitterRestart needs the API server at 1.35+ */
    opsettings_init(&s);
    json_t *ver =
        json_pack("{s:s, s:s, s:s}", "major", "1", "minor", "32", "gitVersion", "v1.32.0-kubesim");
    CHECK(opsettings_check_server_version(&s, ver, &err) == 0); /* gate off */
    CHECK(!opsettings_wants_server_version(&s));
    s.gates.sidecar_submitter_restart = true;
    CHECK(opsettings_wants_server_version(&s));
    buf_reset(&err);
    CHECK(opsettings_check_server_version(&s, ver, &err) == ERR_INVAL &&
          strcmp(buf_str(&err), "SidecarSubmitterRestart feature gate requires K8s 1.35+: "
                                "current version v1.32.0-kubesim is below 1.35") == 0);
    json_object_set_new(ver, "gitVersion", json_string("v1.35.0-kubesim"));
    CHECK(opsettings_check_server_version(&s, ver, &err) == 0);
    json_object_set_new(ver, "gitVersion", json_string("v2.0.1"));
    CHECK(opsettings_check_server_version(&s, ver, &err) == 0);
    json_object_set_new(ver, "gitVersion", json_string("v1.34.9"));
    CHECK(opsettings_check_server_version(&s, ver, &err) == ERR_INVAL);
    json_object_del(ver, "gitVersion"); /* falls back to major/minor ("32") */
    CHECK(opsettings_check_server_version(&s, ver, &err) == ERR_INVAL);
    json_object_set_new(ver, "minor", json_string("36+"));
    CHECK(opsettings_check_server_version(&s, ver, &err) == 0);
    buf_reset(&err);
    CHECK(opsettings_check_server_version(&s, NULL, &err) == ERR_INVAL &&
          strcmp(buf_str(&err), "SidecarSubmitterRestart feature gate enabled but unable to "
                                "detect K8s version. Feature requires K8s 1.35+.") == 0);
    json_decref(ver);
    opsettings_free(&s);
    buf_reset(&err);

    /* KubeRay's defaults. */
    opsettings_init(&s);
    CHECK(s.init_container_injection && s.probes_injection && !s.head_cluster_ip_service);
    CHECK(s.gcs_ft_redis_cleanup && s.zero_downtime && !s.login_shell && !s.random_pod_delete);
    CHECK(s.requeue_s == 300 && s.grace_s == 300 && s.check_timeout_s == 300);
    CHECK(s.gates.job_deletion_policy && s.gates.multihost_indexing && !s.gates.mtls);
    const char *none[] = {NULL};
    CHECK(opsettings_from_env(&s, s_t_get, none, &err) == 0 && s.init_container_injection);

    /* Every switch, KubeRay's spelling in any case. */
    const char *env[] = {"ENABLE_INIT_CONTAINER_INJECTION=FALSE",
                         "ENABLE_PROBES_INJECTION=false",
                         "ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE=true",
                         "CLUSTER_DOMAIN=corp.example",
                         "RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV=12",
                         "ENABLE_GCS_FT_REDIS_CLEANUP=false",
                         "ENABLE_ZERO_DOWNTIME=false",
                         "DELETE_RAYJOB_CR_AFTER_JOB_FINISHES=True",
                         "ENABLE_DETERMINISTIC_HEAD_POD_NAME=true",
                         "ENABLE_LOGIN_SHELL=true",
                         "ENABLE_RANDOM_POD_DELETE=true",
                         "RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS=7",
                         "RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS=9",
                         "ENABLE_WEBHOOKS=",
                         NULL};
    CHECK(opsettings_from_env(&s, s_t_get, env, &err) == 0);
    CHECK(!s.init_container_injection && !s.probes_injection && s.head_cluster_ip_service);
    CHECK(s.cluster_domain && strcmp(s.cluster_domain, "corp.example") == 0);
    CHECK(s.requeue_s == 12 && s.requeue_set && !s.gcs_ft_redis_cleanup && !s.zero_downtime);
    CHECK(s.delete_rayjob_after_finish && s.deterministic_head_name && s.login_shell);
    CHECK(s.random_pod_delete && s.grace_s == 7 && s.check_timeout_s == 9 && !s.webhooks);
    podbuild_opts_t po;
    opsettings_fill_podbuild(&s, &po);
    CHECK(!po.init_container_injection && !po.probes_injection && po.login_shell);
    CHECK(po.deterministic_head_name && strcmp(po.cluster_domain, "corp.example") == 0);
    objbuild_opts_t oo;
    opsettings_fill_objbuild(&s, &oo);
    CHECK(oo.head_cluster_ip);
    rj_settings_t rj;
    opsettings_fill_rayjob(&s, &rj);
    CHECK(rj.grace_s == 7 && rj.check_timeout_s == 9 && rj.delete_cr_after_finish);
    CHECK(strcmp(rj.domain, "corp.example") == 0);
    rs_settings_t rs;
    opsettings_fill_rayservice(&s, &rs);
    CHECK(!rs.zero_downtime);
    opsettings_free(&s);

    /* Values KubeRay would silently read as the default are refused, naming the variable. */
    const char *bad1[] = {"ENABLE_LOGIN_SHELL=1", NULL};
    CHECK(opsettings_from_env(&s, s_t_get, bad1, &err) == ERR_INVAL);
    CHECK(
        s_t_has(&err, "environment ENABLE_LOGIN_SHELL: must be true or false, got \"1\"", verbose));
    buf_reset(&err);
    const char *bad2[] = {"RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV=5m", NULL};
    CHECK(opsettings_from_env(&s, s_t_get, bad2, &err) == ERR_INVAL);
    CHECK(s_t_has(&err,
                  "environment RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV: must be a "
                  "non-negative integer",
                  verbose));
    buf_reset(&err);
    opsettings_free(&s);

    /* The Configuration file. */
    char dir[] = "/tmp/rf-opsettings-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/kuberay.yaml", dir);
    CHECK(s_t_write(path, "apiVersion: config.ray.io/v1alpha1\n"
                          "kind: Configuration\n"
                          "reconcileConcurrency: 4\n"
                          "qps: 50\n"
                          "burst: 70\n"
                          "watchNamespace: a,b\n"
                          "enableLeaderElection: false\n"
                          "headSidecarContainers:\n"
                          "- name: fluentbit\n"
                          "  image: fluent/fluent-bit:1.9.6\n"
                          "workerSidecarContainers:\n"
                          "- name: w-sidecar\n"
                          "  image: busybox\n"
                          "defaultContainerEnvs:\n"
                          "- name: TEAM\n"
                          "  value: ml\n"
                          "defaultPodLabels:\n"
                          "  team: ml\n"
                          "defaultPodAnnotations:\n"
                          "  owner: ml-platform\n"
                          "featureGates:\n"
                          "  RayClusterMTLS: true\n"
                          "  RayJobDeletionPolicy: false\n"));
    CHECK(opsettings_load_kuberay_config(&s, path, &err) == 0);
    CHECK(s.reconcile_concurrency == 4 && s.qps == 50 && s.burst == 70);
    CHECK(s.enable_leader_election == 0 && strcmp(s.watch_namespace, "a,b") == 0);
    CHECK(json_array_size(s.head_sidecars) == 1 && json_array_size(s.worker_sidecars) == 1);
    CHECK(strcmp(jx_str(s.default_pod_labels, "team", ""), "ml") == 0);
    CHECK(strcmp(jx_str(s.default_pod_annotations, "owner", ""), "ml-platform") == 0);
    CHECK(s.gates.mtls && !s.gates.job_deletion_policy);
    CHECK(opsettings_watches(&s, "a") && opsettings_watches(&s, "b"));
    CHECK(!opsettings_watches(&s, "c") && !opsettings_watches(&s, "ab"));
    opsettings_fill_podbuild(&s, &po);
    CHECK(po.head_sidecars == s.head_sidecars && po.default_container_envs);
    /* --feature-gates applies after the file's featureGates. */
    CHECK(opsettings_feature_gates(&s, "RayClusterMTLS=false", &err) == 0 && !s.gates.mtls);
    CHECK(opsettings_feature_gates(&s, "NoSuchGate=true", &err) == ERR_INVAL);
    CHECK(s_t_has(&err, "--feature-gates: unrecognized feature gate: NoSuchGate", verbose));
    buf_reset(&err);
    opsettings_free(&s);
    CHECK(opsettings_watches(&s, "anything"));

    /* An unknown key names the key and the file; a bad value names the field. */
    CHECK(s_t_write(path, "apiVersion: config.ray.io/v1alpha1\nkind: Configuration\n"
                          "reconcileConcurency: 4\n"));
    CHECK(opsettings_load_kuberay_config(&s, path, &err) == ERR_INVAL);
    char want[256];
    snprintf(want, sizeof want, "%s:3:1: unknown key \"reconcileConcurency\"", path);
    CHECK(s_t_has(&err, want, verbose));
    buf_reset(&err);
    CHECK(s_t_write(path, "apiVersion: config.ray.io/v1alpha1\nkind: Configuration\n"
                          "defaultPodLabels: [a]\n"));
    CHECK(opsettings_load_kuberay_config(&s, path, &err) == ERR_INVAL);
    CHECK(s_t_has(&err, "defaultPodLabels: must be a mapping of strings", verbose));
    buf_reset(&err);
    CHECK(s_t_write(path, "apiVersion: config.ray.io/v1alpha1\nkind: Configuration\n"
                          "featureGates:\n  Bogus: true\n"));
    CHECK(opsettings_load_kuberay_config(&s, path, &err) == ERR_INVAL);
    CHECK(s_t_has(&err, "featureGates: unrecognized feature gate: Bogus", verbose));
    buf_reset(&err);
    CHECK(s_t_write(path, "apiVersion: v1\nkind: ConfigMap\n"));
    CHECK(opsettings_load_kuberay_config(&s, path, &err) == ERR_INVAL);
    CHECK(s_t_has(&err, "apiVersion must be config.ray.io/v1alpha1", verbose));
    buf_reset(&err);
    CHECK(s_t_write(path, "apiVersion: config.ray.io/v1alpha1\nkind: Configuration\nqps: 1.5\n"));
    CHECK(opsettings_load_kuberay_config(&s, path, &err) == ERR_INVAL);
    CHECK(s_t_has(&err, "qps: must be a whole number", verbose));
    buf_reset(&err);
    opsettings_free(&s);

    /* Batch schedulers: KubeRay's names are accepted, others refused with KubeRay's list. */
    CHECK(opsettings_check_batch_scheduler(&s, &err) == 0);
    CHECK(opsettings_batch_scheduler(&s) == BATCHSCHED_NONE);
    s.batch_scheduler = strdup("volcano");
    CHECK(opsettings_check_batch_scheduler(&s, &err) == 0);
    CHECK(opsettings_batch_scheduler(&s) == BATCHSCHED_VOLCANO);
    CHECK(s_setstr(&s.batch_scheduler, "scheduler-plugins") == 0);
    CHECK(opsettings_check_batch_scheduler(&s, &err) == 0);
    {
        podbuild_opts_t bpo;
        opsettings_fill_podbuild(&s, &bpo);
        CHECK(bpo.batch_scheduler == BATCHSCHED_SCHEDULER_PLUGINS);
    }
    s.enable_batch_scheduler = true;
    CHECK(opsettings_check_batch_scheduler(&s, &err) == ERR_INVAL);
    CHECK(s_t_has(&err, "both feature flags enable-batch-scheduler (deprecated) and", verbose));
    buf_reset(&err);
    CHECK(s_setstr(&s.batch_scheduler, NULL) == 0);
    CHECK(opsettings_check_batch_scheduler(&s, &err) == 0);
    CHECK(opsettings_batch_scheduler(&s) == BATCHSCHED_VOLCANO); /* deprecated = volcano */
    s.enable_batch_scheduler = false;
    CHECK(s_setstr(&s.batch_scheduler, "slurm") == 0);
    CHECK(opsettings_check_batch_scheduler(&s, &err) == ERR_INVAL);
    CHECK(s_t_has(&err, "must be one of volcano", verbose));
    buf_reset(&err);
    opsettings_free(&s);

    /* opsettings_configure: the Configuration's settings land in the rayfleet options they mean,
     * flags after the file; one setting in two places is refused. */
    cfg_opt_t table[32];
    static const cfg_opt_t ctl[] = {
        {"concurrency", CFG_INT, "8", 1, 10000, false, false, "x", NULL},
        {"client.qps", CFG_INT, "100", 1, 100000, false, false, "x", NULL},
        {"client.burst", CFG_INT, "200", 1, 100000, false, false, "x", NULL},
        {"leader.elect", CFG_BOOL, "true", 0, 0, false, false, "x", NULL},
        {"leader.namespace", CFG_STRING, NULL, 0, 0, false, false, "x", NULL},
        {NULL, 0, NULL, 0, 0, false, false, NULL, NULL}};
    size_t nt = 0;
    for (const cfg_opt_t *o = ctl; o->key; o++)
        table[nt++] = *o;
    for (const cfg_opt_t *o = opsettings_options; o->key && nt < 31; o++)
        table[nt++] = *o;
    table[nt] = ctl[5];
    CHECK(s_t_write(path, "apiVersion: config.ray.io/v1alpha1\nkind: Configuration\n"
                          "reconcileConcurrency: 4\nqps: 50\nenableLeaderElection: false\n"
                          "leaderElectionNamespace: ops\nwatchNamespace: a\n"
                          "featureGates: {RayClusterMTLS: true}\n"));
    char *argv1[] = {
        "t", "--kuberay-config", path, "--feature-gates", "RayClusterMTLS=false", "--burst", "9",
        NULL};
    cfg_t *cfg = NULL;
    CHECK(cfg_load(table, 7, argv1, &cfg, &err) == 0 && cfg);
    CHECK(cfg && opsettings_configure(&s, cfg, &err) == 0);
    CHECK(cfg && cfg_int(cfg, "concurrency") == 4 && cfg_int(cfg, "client.qps") == 50);
    CHECK(cfg && cfg_int(cfg, "client.burst") == 9 && !cfg_bool(cfg, "leader.elect"));
    CHECK(cfg && strcmp(cfg_str(cfg, "leader.namespace"), "ops") == 0);
    CHECK(cfg && strcmp(cfg_str(cfg, "watch-namespace"), "a") == 0 && !s.gates.mtls);
    CHECK(!opsettings_watches(&s, "b"));
    cfg_destroy(&cfg);
    opsettings_free(&s);
    char *argv2[] = {"t", "--kuberay-config", path, "--qps", "60", NULL};
    CHECK(cfg_load(table, 5, argv2, &cfg, &err) == 0 && cfg);
    CHECK(cfg && opsettings_configure(&s, cfg, &err) == ERR_INVAL);
    CHECK(s_t_has(&err, "qps is set there and as rayfleet's --client.qps (flag)", verbose));
    buf_reset(&err);
    cfg_destroy(&cfg);
    opsettings_free(&s);

    unlink(path);
    rmdir(dir);
    buf_free(&err);
    return failed;
}
#endif
