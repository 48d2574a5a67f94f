/* collector: the History Server collector sidecar (see collector.h). */
#include "collector.h"

#include "err.h"
#include "json.h"
#include "labels.h"

#include <string.h>

const json_t *collector_options(const json_t *spec)
{
    const json_t *co = jx_get(spec, "historyServerOptions.collectorOptions");
    return json_is_object(co) ? co : NULL;
}

void collector_owner(const json_t *raycluster, const char **kind, const char **name)
{
    const json_t *labels = jx_get(raycluster, "metadata.labels");
    const json_t *crdv = json_object_get(labels, LABEL_ORIGINATED_FROM_CRD);
    const char *crd = json_is_string(crdv) ? json_string_value(crdv) : NULL;
    const json_t *owner = json_object_get(labels, LABEL_ORIGINATED_FROM_CR_NAME);
    if (crd && (strcmp(crd, "RayJob") == 0 || strcmp(crd, "RayService") == 0) &&
        json_is_string(owner)) {
        *kind = crd;
        *name = json_string_value(owner);
        return;
    }
    *kind = "RayCluster";
    *name = jx_str(raycluster, "metadata.name", "");
}

static int s_env_append(json_t *env, const char *name, const char *value)
{
    json_t *e = json_pack("{s:s, s:s}", "name", name, "value", value ? value : "");
    return e && json_array_append_new(env, e) == 0 ? 0 : ERR_NOMEM;
}

static bool s_env_has(const json_t *env, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        const char *n = jx_str(e, "name", NULL);
        if (n && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

json_t *collector_container(const json_t *opts, const collector_pod_t *pod, buf_t *err)
{
    if (!json_is_object(opts) || !pod || !pod->cluster || !pod->ns || !pod->fqdn) {
        if (err)
            buf_puts(err, "collector: no collectorOptions or pod identity");
        return NULL;
    }
    json_t *c = json_object();
    json_t *env = json_array();
    int rc = c && env ? 0 : ERR_NOMEM;
    if (rc == 0 && json_object_set_new(c, "name", json_string(COLLECTOR_CONTAINER)) != 0)
        rc = ERR_NOMEM;
    if (rc == 0 && json_object_set_new(c, "image", json_string(jx_str(opts, "image", ""))) != 0)
        rc = ERR_NOMEM;
    const char *pull = jx_str(opts, "imagePullPolicy", "");
    if (rc == 0 && json_object_set_new(c, "imagePullPolicy",
                                       json_string(pull[0] ? pull : "IfNotPresent")) != 0)
        rc = ERR_NOMEM;
    const json_t *res = json_object_get(opts, "resources");
    json_t *r = json_is_object(res)
                    ? json_deep_copy(res)
                    : json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "limits", "cpu", COLLECTOR_LIM_CPU,
                                "memory", COLLECTOR_LIM_MEM, "requests", "cpu", COLLECTOR_REQ_CPU,
                                "memory", COLLECTOR_REQ_MEM);
    if (rc == 0 && (!r || json_object_set_new(c, "resources", r) != 0))
        rc = ERR_NOMEM;
    else if (rc != 0)
        json_decref(r);
    json_t *pod_ip = json_pack("{s:s, s:{s:{s:s}}}", "name", "POD_IP", "valueFrom", "fieldRef",
                               "fieldPath", "status.podIP");
    if (rc == 0 && (!pod_ip || json_array_append_new(env, pod_ip) != 0))
        rc = ERR_NOMEM;
    else if (rc != 0)
        json_decref(pod_ip);
    if (rc == 0)
        rc = s_env_append(env, "RAY_CLUSTER_NAME", pod->cluster);
    if (rc == 0)
        rc = s_env_append(env, "RAY_CLUSTER_NAMESPACE", pod->ns);
    if (rc == 0)
        rc = s_env_append(env, "RAY_ROLE", pod->head ? "Head" : "Worker");
    if (rc == 0)
        rc = s_env_append(env, "EVENTS_PORT", COLLECTOR_EVENTS_PORT);
    if (rc == 0)
        rc = s_env_append(env, "FQ_RAY_IP", pod->fqdn);
    if (rc == 0)
        rc = s_env_append(env, "OWNER_KIND", pod->owner_kind ? pod->owner_kind : "RayCluster");
    if (rc == 0)
        rc = s_env_append(env, "OWNER_NAME", pod->owner_name ? pod->owner_name : pod->cluster);
    if (rc == 0 && pod->head)
        rc = s_env_append(env, "RAY_DASHBOARD_ADDRESS", COLLECTOR_DASHBOARD_ADDR);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(opts, "env"), i, e)
    {
        if (rc == 0 && json_array_append_new(env, json_deep_copy(e)) != 0)
            rc = ERR_NOMEM;
    }
    if (rc == 0 && json_object_set(c, "env", env) != 0)
        rc = ERR_NOMEM;
    json_decref(env);
    if (rc) {
        if (err)
            buf_puts(err, "collector: out of memory");
        json_decref(c);
        return NULL;
    }
    return c;
}

int collector_ray_env(json_t *ray)
{
    static const char *const kv[][2] = {
        {"RAY_enable_ray_event", "true"},
        {"RAY_enable_core_worker_ray_event_to_aggregator", "true"},
        {"RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR", COLLECTOR_EVENTS_ADDR},
        {"RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES", COLLECTOR_EVENT_TYPES},
        {"RAY_DASHBOARD_AGGREGATOR_AGENT_PUBLISHER_HTTP_ENDPOINT_EXPOSABLE_EVENT_TYPES",
         COLLECTOR_EVENT_TYPES},
    };
    json_t *env = jx_child_arr(ray, "env");
    if (!env)
        return ERR_NOMEM;
    for (size_t k = 0; k < sizeof(kv) / sizeof(kv[0]); k++) {
        if (s_env_has(env, kv[k][0]))
            continue;
        int rc = s_env_append(env, kv[k][0], kv[k][1]);
        if (rc)
            return rc;
    }
    return 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

static bool s_t_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static const char *s_t_env(const json_t *c, size_t i, const char *what)
{
    return jx_str(json_array_get(json_object_get(c, "env"), i), what, NULL);
}

int collector_test(bool verbose)
{
    int failed = 0;
    json_t *opts = json_pack("{s:s, s:[{s:s, s:s}]}", "image", "img:1", "env", "name",
                             "STORAGE_BACKEND", "value", "S3");
    collector_pod_t p = {true, "rc", "ns1", "rc-head-svc.ns1.svc.cluster.local", NULL, NULL};
    json_t *c = collector_container(opts, &p, NULL);
    CHECK(c != NULL);
    CHECK(s_t_eq(jx_str(c, "name", NULL), COLLECTOR_CONTAINER));
    CHECK(s_t_eq(jx_str(c, "image", NULL), "img:1"));
    CHECK(s_t_eq(jx_str(c, "imagePullPolicy", NULL), "IfNotPresent"));
    CHECK(s_t_eq(jx_str(c, "resources.requests.cpu", NULL), "50m"));
    CHECK(s_t_eq(jx_str(c, "resources.requests.memory", NULL), "64Mi"));
    CHECK(s_t_eq(jx_str(c, "resources.limits.cpu", NULL), "200m"));
    CHECK(s_t_eq(jx_str(c, "resources.limits.memory", NULL), "256Mi"));
    static const char *const names[] = {
        "POD_IP",         "RAY_CLUSTER_NAME", "RAY_CLUSTER_NAMESPACE",
        "RAY_ROLE",       "EVENTS_PORT",      "FQ_RAY_IP",
        "OWNER_KIND",     "OWNER_NAME",       "RAY_DASHBOARD_ADDRESS",
        "STORAGE_BACKEND"};
    CHECK(json_array_size(json_object_get(c, "env")) == 10);
    for (size_t i = 0; i < 10; i++)
        CHECK(s_t_eq(s_t_env(c, i, "name"), names[i]));
    CHECK(s_t_eq(
        jx_str(json_array_get(json_object_get(c, "env"), 0), "valueFrom.fieldRef.fieldPath", NULL),
        "status.podIP"));
    CHECK(s_t_env(c, 0, "value") == NULL);
    CHECK(s_t_eq(s_t_env(c, 1, "value"), "rc"));
    CHECK(s_t_eq(s_t_env(c, 2, "value"), "ns1"));
    CHECK(s_t_eq(s_t_env(c, 3, "value"), "Head"));
    CHECK(s_t_eq(s_t_env(c, 4, "value"), "8084"));
    CHECK(s_t_eq(s_t_env(c, 5, "value"), "rc-head-svc.ns1.svc.cluster.local"));
    CHECK(s_t_eq(s_t_env(c, 6, "value"), "RayCluster"));
    CHECK(s_t_eq(s_t_env(c, 7, "value"), "rc"));
    CHECK(s_t_eq(s_t_env(c, 8, "value"), "http://localhost:8265"));
    CHECK(s_t_eq(s_t_env(c, 9, "value"), "S3"));
    CHECK(json_object_get(c, "volumeMounts") == NULL);
    json_decref(c);

    /* worker: no RAY_DASHBOARD_ADDRESS; given pull policy and resources are kept */
    json_object_set_new(opts, "imagePullPolicy", json_string("Always"));
    json_object_set_new(opts, "resources", json_pack("{s:{s:s}}", "limits", "cpu", "1"));
    p.head = false;
    p.owner_kind = "RayJob";
    p.owner_name = "job1";
    c = collector_container(opts, &p, NULL);
    CHECK(c != NULL);
    CHECK(s_t_eq(jx_str(c, "imagePullPolicy", NULL), "Always"));
    CHECK(s_t_eq(jx_str(c, "resources.limits.cpu", NULL), "1"));
    CHECK(jx_get(c, "resources.requests") == NULL);
    CHECK(json_array_size(json_object_get(c, "env")) == 9);
    CHECK(s_t_eq(s_t_env(c, 3, "value"), "Worker"));
    CHECK(s_t_eq(s_t_env(c, 6, "value"), "RayJob"));
    CHECK(s_t_eq(s_t_env(c, 7, "value"), "job1"));
    CHECK(s_t_eq(s_t_env(c, 8, "name"), "STORAGE_BACKEND"));
    json_decref(c);
    CHECK(collector_container(NULL, &p, NULL) == NULL);
    json_decref(opts);

    /* owner */
    json_t *rc =
        json_pack("{s:{s:s, s:{s:s, s:s}}}", "metadata", "name", "c1", "labels",
                  LABEL_ORIGINATED_FROM_CRD, "RayService", LABEL_ORIGINATED_FROM_CR_NAME, "svc1");
    const char *k = NULL, *n = NULL;
    collector_owner(rc, &k, &n);
    CHECK(s_t_eq(k, "RayService") && s_t_eq(n, "svc1"));
    json_object_del(json_object_get(rc, "metadata"), "labels");
    collector_owner(rc, &k, &n);
    CHECK(s_t_eq(k, "RayCluster") && s_t_eq(n, "c1"));
    json_decref(rc);

    /* options */
    json_t *spec =
        json_pack("{s:{s:{s:s}}}", "historyServerOptions", "collectorOptions", "image", "x");
    CHECK(collector_options(spec) != NULL);
    CHECK(collector_options(json_object_get(spec, "historyServerOptions")) == NULL);
    json_decref(spec);

    /* the Ray container env: appended in order, each only when absent */
    json_t *ray =
        json_pack("{s:[{s:s, s:s}]}", "env", "name", "RAY_enable_ray_event", "value", "false");
    CHECK(collector_ray_env(ray) == 0);
    json_t *env = json_object_get(ray, "env");
    CHECK(json_array_size(env) == 5);
    CHECK(s_t_eq(jx_str(json_array_get(env, 0), "value", NULL), "false"));
    CHECK(s_t_eq(jx_str(json_array_get(env, 1), "name", NULL),
                 "RAY_enable_core_worker_ray_event_to_aggregator"));
    CHECK(s_t_eq(jx_str(json_array_get(env, 2), "value", NULL), "http://localhost:8084/v1/events"));
    CHECK(s_t_eq(jx_str(json_array_get(env, 3), "name", NULL),
                 "RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES"));
    CHECK(s_t_eq(jx_str(json_array_get(env, 4), "value", NULL),
                 "TASK_DEFINITION_EVENT,TASK_LIFECYCLE_EVENT,ACTOR_TASK_DEFINITION_EVENT,"
                 "TASK_PROFILE_EVENT,DRIVER_JOB_DEFINITION_EVENT,DRIVER_JOB_LIFECYCLE_EVENT,"
                 "ACTOR_DEFINITION_EVENT,ACTOR_LIFECYCLE_EVENT,NODE_DEFINITION_EVENT,"
                 "NODE_LIFECYCLE_EVENT"));
    CHECK(collector_ray_env(ray) == 0 && json_array_size(env) == 5);
    json_decref(ray);
    return SELFTEST_RESULT("collector", verbose);
}
#endif
