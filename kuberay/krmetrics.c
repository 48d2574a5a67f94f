/*
 * krmetrics: KubeRay's CR metrics from the objects (see krmetrics.h).
 */
#include "krmetrics.h"

#include "conds.h"
#include "err.h"
#include "jproj.h"
#include "json.h"
#include "labels.h"
#include "rftime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_CLUSTER, K_JOB, K_SERVICE } s_kind_t;

typedef struct {
    s_kind_t kind;
    jproj_t *proj; /* the fields read */
    metric_t *fam[3]; /* the kind's families, in the order of s_families */
} krmetrics_t;

/* The families of each kind: name, help, labels after name, namespace, uid. */
static const struct {
    const char *kind;
    const char *name[3];
    const char *help[3];
    const char *extra[3][2];
} s_families[] = {
    [K_CLUSTER] = {"RayCluster",
                   {"kuberay_cluster_info", "kuberay_cluster_condition_provisioned",
                    "kuberay_cluster_provisioned_duration_seconds"},
                   {"Metadata information about RayCluster custom resources",
                    "Indicates whether the RayCluster is provisioned",
                    "The time, in seconds, when a RayCluster's `RayClusterProvisioned` status "
                    "transitions from false (or unset) to true"},
                   {{"owner_kind", NULL}, {"condition", NULL}, {NULL, NULL}}},
    [K_JOB] = {"RayJob",
               {"kuberay_job_info", "kuberay_job_deployment_status",
                "kuberay_job_execution_duration_seconds"},
               {"Metadata information about RayJob custom resources",
                "The RayJob's current deployment status",
                "Duration from when the RayJob CR's JobDeploymentStatus transitions from "
                "Initializing to either the Retrying state or a terminal state, such as Complete "
                "or Failed."},
               {{NULL, NULL},
                {"deployment_status", NULL},
                {"job_deployment_status", "retry_count"}}},
    [K_SERVICE] = {"RayService",
                   {"kuberay_service_info", "kuberay_service_condition_ready",
                    "kuberay_service_condition_upgrade_in_progress"},
                   {"Metadata information about RayService custom resources",
                    "Describes whether the RayService is ready. Ready means users can send "
                    "requests to the underlying cluster and the number of serve endpoints is "
                    "greater than 0.",
                    "Describes whether the RayService is performing a zero-downtime upgrade."},
                   {{NULL, NULL}, {"condition", NULL}, {"condition", NULL}}},
};

static const char *const s_keep[] = {"metadata.creationTimestamp",
                                     "metadata.labels",
                                     "status.conditions",
                                     "status.jobDeploymentStatus",
                                     "status.startTime",
                                     "status.endTime",
                                     "status.failed",
                                     NULL};

void *krmetrics_open(metrics_t *reg, const char *kind)
{
    int k = -1;
    for (int i = 0; i < 3 && kind; i++)
        if (strcmp(kind, s_families[i].kind) == 0)
            k = i;
    if (k < 0 || !reg)
        return NULL;
    krmetrics_t *km = calloc(1, sizeof(*km));
    if (!km)
        return NULL;
    km->kind = (s_kind_t)k;
    km->proj = jproj_new(s_keep, NULL);
    bool ok = km->proj != NULL;
    for (int f = 0; f < 3 && ok; f++) {
        const char *labels[6] = {"name",
                                 "namespace",
                                 "uid",
                                 s_families[k].extra[f][0],
                                 s_families[k].extra[f][0] ? s_families[k].extra[f][1] : NULL,
                                 NULL};
        km->fam[f] = metrics_gauge(reg, s_families[k].name[f], s_families[k].help[f], labels);
        ok = km->fam[f] && metric_set_limit(km->fam[f], KRMETRICS_MAX_OBJECTS) == 0;
    }
    if (!ok) {
        krmetrics_close(km);
        return NULL;
    }
    return km;
}

void krmetrics_begin(void *arg)
{
    krmetrics_t *km = arg;
    for (int f = 0; km && f < 3; f++)
        metric_clear(km->fam[f]);
}

/* Sets the series (name, namespace, uid, a, b) of family f to v. */
static int s_put(krmetrics_t *km, int f, const char *const *id, const char *a, const char *b,
                 double v)
{
    const char *values[5] = {id[0], id[1], id[2], a, b};
    metric_series_t *s = metric_append(km->fam[f], values);
    if (!s)
        return 0; /* at the bound: counted by the registry */
    return metric_set(s, v);
}

/* Seconds from RFC 3339 `from` to `to`; false when either is missing or bad. */
static bool s_seconds(const char *from, const char *to, double *out)
{
    int64_t a, b;
    if (!from || !to || rftime_parse(from, &a) != 0 || rftime_parse(to, &b) != 0)
        return false;
    *out = (double)(b - a) / 1000.0;
    return true;
}

int krmetrics_object(void *arg, const char *ns, const char *name, const char *uid, const char *json)
{
    krmetrics_t *km = arg;
    if (!km || !ns || !name || !json)
        return ERR_INVAL;
    jproj_result_t res;
    int rc = jproj_parse(km->proj, json, strlen(json), name, &res, NULL);
    if (rc != 0)
        return rc;
    const json_t *o = res.value;
    const json_t *conds = jx_get(o, "status.conditions");
    const char *id[3] = {name, ns, uid ? uid : ""};
    switch (km->kind) {
    case K_CLUSTER: {
        const json_t *labels = jx_get(o, "metadata.labels");
        /* a label key has dots: no path lookup */
        const char *owner = json_string_value(json_object_get(labels, LABEL_ORIGINATED_FROM_CRD));
        bool prov = conds_true(conds, "RayClusterProvisioned");
        rc = s_put(km, 0, id, owner ? owner : "None", NULL, 1);
        if (rc == 0)
            rc = s_put(km, 1, id, prov ? "true" : "false", NULL, 1);
        double d;
        if (rc == 0 && prov &&
            s_seconds(jx_str(jx_get(o, "metadata"), "creationTimestamp", NULL),
                      jx_str(conds_find(conds, "RayClusterProvisioned", NULL), "lastTransitionTime",
                             NULL),
                      &d))
            rc = s_put(km, 2, id, NULL, NULL, d);
        break;
    }
    case K_JOB: {
        const json_t *st = jx_get(o, "status");
        const char *ds = jx_str(st, "jobDeploymentStatus", "");
        rc = s_put(km, 0, id, NULL, NULL, 1);
        if (rc == 0)
            rc = s_put(km, 1, id, ds, NULL, 1);
        double d;
        if (rc == 0 && (strcmp(ds, "Complete") == 0 || strcmp(ds, "Failed") == 0) &&
            s_seconds(jx_str(st, "startTime", NULL), jx_str(st, "endTime", NULL), &d)) {
            char retries[24];
            snprintf(retries, sizeof(retries), "%lld",
                     (long long)json_integer_value(json_object_get(st, "failed")));
            rc = s_put(km, 2, id, ds, retries, d);
        }
        break;
    }
    case K_SERVICE:
        rc = s_put(km, 0, id, NULL, NULL, 1);
        if (rc == 0)
            rc = s_put(km, 1, id, conds_true(conds, "Ready") ? "true" : "false", NULL, 1);
        if (rc == 0)
            rc = s_put(km, 2, id, conds_true(conds, "UpgradeInProgress") ? "true" : "false", NULL,
                       1);
        break;
    }
    jproj_result_free(&res);
    return rc;
}

void krmetrics_close(void *arg)
{
    krmetrics_t *km = arg;
    if (!km)
        return;
    jproj_destroy(&km->proj);
    free(km);
}

#ifdef RF_SELFTEST
#include "selftest.h"

int krmetrics_test(bool verbose)
{
    int failed = 0;
    metrics_t *reg = metrics_new();
    void *rc = krmetrics_open(reg, "RayCluster");
    void *rj = krmetrics_open(reg, "RayJob");
    void *rs = krmetrics_open(reg, "RayService");
    CHECK(rc && rj && rs);
    CHECK(krmetrics_open(reg, "RayCluster") == NULL); /* families exist already */
    CHECK(krmetrics_open(reg, "Pod") == NULL);

    const char *c1 =
        "{\"metadata\":{\"name\":\"c1\",\"creationTimestamp\":\"2026-01-01T00:00:00Z\","
        "\"labels\":{\"ray.io/originated-from-crd\":\"RayJob\"}},\"status\":{\"conditions\":["
        "{\"type\":\"HeadPodReady\",\"status\":\"True\",\"lastTransitionTime\":"
        "\"2026-01-01T00:00:03Z\"},{\"type\":\"RayClusterProvisioned\",\"status\":\"True\","
        "\"lastTransitionTime\":\"2026-01-01T00:00:07Z\"}]}}";
    const char *c2 =
        "{\"metadata\":{\"name\":\"c2\",\"creationTimestamp\":\"2026-01-01T00:00:00Z\"},"
        "\"status\":{\"conditions\":[{\"type\":\"RayClusterProvisioned\","
        "\"status\":\"False\",\"lastTransitionTime\":\"2026-01-01T00:00:01Z\"}]}}";
    const char *j1 = "{\"status\":{\"jobDeploymentStatus\":\"Complete\",\"startTime\":"
                     "\"2026-01-01T00:00:10Z\",\"endTime\":\"2026-01-01T00:01:00.5Z\","
                     "\"failed\":2}}";
    const char *j2 = "{\"status\":{\"jobDeploymentStatus\":\"Running\",\"startTime\":"
                     "\"2026-01-01T00:00:10Z\"}}";
    const char *s1 = "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},"
                     "{\"type\":\"UpgradeInProgress\",\"status\":\"False\"}]}}";
    for (int round = 0; round < 2; round++) { /* a second scrape replaces, never accumulates */
        krmetrics_begin(rc);
        krmetrics_begin(rj);
        krmetrics_begin(rs);
        CHECK(krmetrics_object(rc, "ns", "c1", "u1", c1) == 0);
        CHECK(krmetrics_object(rc, "ns", "c2", "u2", c2) == 0);
        CHECK(krmetrics_object(rc, "ns", "bad", "u3", "{") == ERR_PARSE);
        CHECK(krmetrics_object(rj, "ns", "j1", "u4", j1) == 0);
        CHECK(krmetrics_object(rj, "ns", "j2", "u5", j2) == 0);
        CHECK(krmetrics_object(rs, "ns", "s1", "u6", s1) == 0);
    }
    buf_t out;
    buf_init(&out, 8 << 20);
    CHECK(metrics_render(reg, &out) == 0);
    const char *want[] = {
        "\nkuberay_cluster_info{name=\"c1\",namespace=\"ns\",uid=\"u1\",owner_kind=\"RayJob\"} 1\n",
        "\nkuberay_cluster_info{name=\"c2\",namespace=\"ns\",uid=\"u2\",owner_kind=\"None\"} 1\n",
        "\nkuberay_cluster_condition_provisioned{name=\"c1\",namespace=\"ns\",uid=\"u1\","
        "condition=\"true\"} 1\n",
        "\nkuberay_cluster_condition_provisioned{name=\"c2\",namespace=\"ns\",uid=\"u2\","
        "condition=\"false\"} 1\n",
        "\nkuberay_cluster_provisioned_duration_seconds{name=\"c1\",namespace=\"ns\",uid=\"u1\"} "
        "7\n",
        "\nkuberay_job_info{name=\"j1\",namespace=\"ns\",uid=\"u4\"} 1\n",
        "\nkuberay_job_deployment_status{name=\"j1\",namespace=\"ns\",uid=\"u4\","
        "deployment_status=\"Complete\"} 1\n",
        "\nkuberay_job_deployment_status{name=\"j2\",namespace=\"ns\",uid=\"u5\","
        "deployment_status=\"Running\"} 1\n",
        "\nkuberay_job_execution_duration_seconds{name=\"j1\",namespace=\"ns\",uid=\"u4\","
        "job_deployment_status=\"Complete\",retry_count=\"2\"} 50.5\n",
        "\nkuberay_service_info{name=\"s1\",namespace=\"ns\",uid=\"u6\"} 1\n",
        "\nkuberay_service_condition_ready{name=\"s1\",namespace=\"ns\",uid=\"u6\",condition="
        "\"true\"} 1\n",
        "\nkuberay_service_condition_upgrade_in_progress{name=\"s1\",namespace=\"ns\",uid=\"u6\","
        "condition=\"false\"} 1\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        bool found = strstr(buf_str(&out), want[i]) != NULL;
        CHECK(found);
        if (!found)
            printf("missing: %s", want[i]);
    }
    CHECK(strstr(buf_str(&out), "provisioned_duration_seconds{name=\"c2\"") == NULL);
    CHECK(strstr(buf_str(&out), "execution_duration_seconds{name=\"j2\"") == NULL);
    CHECK(strstr(buf_str(&out), "name=\"bad\"") == NULL);
    /* exactly two cluster_info lines after two scrapes */
    size_t n = 0;
    for (const char *p = buf_str(&out); (p = strstr(p, "\nkuberay_cluster_info{")); p++)
        n++;
    CHECK(n == 2);
    if (verbose)
        printf("%s", buf_str(&out));

    /* 10,000 objects of one kind fit (30,000 series); past KRMETRICS_MAX_OBJECTS they count. */
    krmetrics_begin(rs);
    char nm[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(nm, sizeof(nm), "s%d", i);
        CHECK(krmetrics_object(rs, "ns", nm, "u", s1) == 0);
    }
    CHECK(metric_dropped(metrics_find(reg, "kuberay_service_info")) == 0);
    buf_reset(&out);
    CHECK(metrics_render(reg, &out) == 0);
    CHECK(strstr(buf_str(&out), "kuberay_service_info{name=\"s9999\",") != NULL);
    CHECK(strstr(buf_str(&out), "rayfleet_metrics_series_dropped_total") == NULL);

    buf_free(&out);
    krmetrics_close(rc);
    krmetrics_close(rj);
    krmetrics_close(rs);
    metrics_destroy(&reg);
    return SELFTEST_RESULT("krmetrics", verbose);
}

#endif /* RF_SELFTEST */
