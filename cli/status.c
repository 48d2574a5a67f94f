/*
 * status: see status.h.
 */
#include "status.h"

#include "args.h"
#include "buf.h"
#include "err.h"
#include "json.h"
#include "kube.h"
#include "kubeconfig.h"
#include "launch.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A table being built: rows of owned cell strings. */
typedef struct {
    int ncols; /* columns */
    const char *header[STATUS_MAX_COLS]; /* column titles (borrowed) */
    char **cells; /* nrows * ncols owned strings */
    size_t nrows; /* rows */
    size_t cap; /* rows allocated */
} s_table_t;

static int s_row(s_table_t *t, const char *const *values)
{
    if (t->nrows >= STATUS_MAX_ROWS)
        return ERR_TOOBIG;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * (size_t)t->ncols * sizeof(char *));
        if (!c)
            return ERR_NOMEM;
        t->cells = c;
        t->cap = cap;
    }
    for (int i = 0; i < t->ncols; i++) {
        const char *v = values[i] && values[i][0] ? values[i] : "-";
        size_t len = strnlen(v, STATUS_CELL_MAX - 1);
        char *s = malloc(len + 1);
        if (!s) {
            for (int j = 0; j < i; j++)
                free(t->cells[t->nrows * (size_t)t->ncols + (size_t)j]);
            return ERR_NOMEM;
        }
        memcpy(s, v, len);
        s[len] = '\0';
        for (char *p = s; *p; p++)
            if (*p == '\n' || *p == '\t')
                *p = ' ';
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = s;
    }
    t->nrows++;
    return 0;
}

static void s_print(const s_table_t *t, FILE *f)
{
    size_t w[STATUS_MAX_COLS];
    for (int i = 0; i < t->ncols; i++) {
        w[i] = strlen(t->header[i]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t l = strlen(t->cells[r * (size_t)t->ncols + (size_t)i]);
            if (l > w[i])
                w[i] = l;
        }
    }
    for (int i = 0; i < t->ncols; i++)
        fprintf(f, "%-*s%s", i + 1 < t->ncols ? (int)w[i] : 0, t->header[i],
                i + 1 < t->ncols ? "   " : "\n");
    for (size_t r = 0; r < t->nrows; r++)
        for (int i = 0; i < t->ncols; i++)
            fprintf(f, "%-*s%s", i + 1 < t->ncols ? (int)w[i] : 0,
                    t->cells[r * (size_t)t->ncols + (size_t)i], i + 1 < t->ncols ? "   " : "\n");
}

static void s_table_free(s_table_t *t)
{
    for (size_t r = 0; r < t->nrows; r++)
        for (int i = 0; i < t->ncols; i++)
            free(t->cells[r * (size_t)t->ncols + (size_t)i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

/* kubectl's age format: 45s, 12m, 5h, 3d. */
static void s_age(const char *ts, char *out, size_t size)
{
    int64_t then = 0;
    if (!ts || kubeconfig_parse_time(ts, &then) != 0) {
        snprintf(out, size, "-");
        return;
    }
    int64_t d = (int64_t)time(NULL) - then;
    if (d < 0)
        d = 0;
    if (d < 120)
        snprintf(out, size, "%" PRId64 "s", d);
    else if (d < 7200)
        snprintf(out, size, "%" PRId64 "m", d / 60);
    else if (d < 172800)
        snprintf(out, size, "%" PRId64 "h", d / 3600);
    else
        snprintf(out, size, "%" PRId64 "d", d / 86400);
}

static void s_int(const json_t *o, const char *path, char *out, size_t size)
{
    json_t *v = jx_get(o, path);
    if (json_is_integer(v))
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_string(v))
        snprintf(out, size, "%s", json_string_value(v));
    else
        snprintf(out, size, "-");
}

/* The status of the condition `type`, or "-". */
static const char *s_condition(const json_t *o, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(o, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "type", ""), type) == 0)
            return jx_str(c, "status", "-");
    }
    return "-";
}

/* Lists /apis/ray.io/v1/<resource> into `items`; prints why not on failure. */
static int s_list(kube_t *k, const char *resource, json_t **list)
{
    k8s_res_t res = {.group = "ray.io", .version = "v1", .resource = resource};
    buf_t err;
    buf_init(&err, KUBE_ERR_MAX);
    int r = kube_call(k, KUBE_LIST, &res, NULL, 0, list, &err);
    if (r == ERR_NOTFOUND)
        printf("(%s: the ray.io CRDs are not installed in this cluster)\n", resource);
    else if (r != 0)
        fprintf(stderr, "rayfleetctl status: cannot list %s at %s: %s\n", resource, kube_server(k),
                buf_str(&err));
    buf_free(&err);
    return r;
}

static int s_clusters(kube_t *k)
{
    json_t *list = NULL;
    int r = s_list(k, "rayclusters", &list);
    if (r != 0)
        return r == ERR_NOTFOUND ? 0 : r;
    s_table_t t = {.ncols = 12,
                   .header = {"NAMESPACE", "NAME", "STATE", "DESIRED", "READY", "AVAILABLE", "CPUS",
                              "MEMORY", "GPUS", "HEAD-POD-IP", "HEAD-READY", "AGE"}};
    size_t i;
    json_t *o;
    json_array_foreach(jx_get(list, "items"), i, o)
    {
        char desired[32], ready[32], avail[32], age[32];
        s_int(o, "status.desiredWorkerReplicas", desired, sizeof(desired));
        s_int(o, "status.readyWorkerReplicas", ready, sizeof(ready));
        s_int(o, "status.availableWorkerReplicas", avail, sizeof(avail));
        s_age(jx_str(o, "metadata.creationTimestamp", NULL), age, sizeof(age));
        const char *row[] = {jx_str(o, "metadata.namespace", "-"),
                             jx_str(o, "metadata.name", "-"),
                             jx_str(o, "status.state", "-"),
                             desired,
                             ready,
                             avail,
                             jx_str(o, "status.desiredCPU", "-"),
                             jx_str(o, "status.desiredMemory", "-"),
                             jx_str(o, "status.desiredGPU", "-"),
                             jx_str(o, "status.head.podIP", "-"),
                             s_condition(o, "HeadPodReady"),
                             age};
        if ((r = s_row(&t, row)) != 0)
            break;
    }
    printf("RayClusters (%zu)\n", t.nrows);
    if (t.nrows)
        s_print(&t, stdout);
    s_table_free(&t);
    json_decref(list);
    return r;
}

static int s_jobs(kube_t *k)
{
    json_t *list = NULL;
    int r = s_list(k, "rayjobs", &list);
    if (r != 0)
        return r == ERR_NOTFOUND ? 0 : r;
    s_table_t t = {.ncols = 9,
                   .header = {"NAMESPACE", "NAME", "JOB-STATUS", "DEPLOYMENT", "CLUSTER", "JOB-ID",
                              "START", "END", "AGE"}};
    size_t i;
    json_t *o;
    json_array_foreach(jx_get(list, "items"), i, o)
    {
        char age[32];
        s_age(jx_str(o, "metadata.creationTimestamp", NULL), age, sizeof(age));
        const char *row[] = {jx_str(o, "metadata.namespace", "-"),
                             jx_str(o, "metadata.name", "-"),
                             jx_str(o, "status.jobStatus", "-"),
                             jx_str(o, "status.jobDeploymentStatus", "-"),
                             jx_str(o, "status.rayClusterName", "-"),
                             jx_str(o, "status.jobId", "-"),
                             jx_str(o, "status.startTime", "-"),
                             jx_str(o, "status.endTime", "-"),
                             age};
        if ((r = s_row(&t, row)) != 0)
            break;
    }
    printf("\nRayJobs (%zu)\n", t.nrows);
    if (t.nrows)
        s_print(&t, stdout);
    s_table_free(&t);
    json_decref(list);
    return r;
}

static int s_services(kube_t *k)
{
    json_t *list = NULL;
    int r = s_list(k, "rayservices", &list);
    if (r != 0)
        return r == ERR_NOTFOUND ? 0 : r;
    s_table_t t = {.ncols = 7,
                   .header = {"NAMESPACE", "NAME", "SERVICE-STATUS", "READY", "UPGRADING",
                              "ACTIVE-CLUSTER", "AGE"}};
    size_t i;
    json_t *o;
    json_array_foreach(jx_get(list, "items"), i, o)
    {
        char age[32];
        s_age(jx_str(o, "metadata.creationTimestamp", NULL), age, sizeof(age));
        const char *row[] = {jx_str(o, "metadata.namespace", "-"),
                             jx_str(o, "metadata.name", "-"),
                             jx_str(o, "status.serviceStatus", "-"),
                             s_condition(o, "Ready"),
                             s_condition(o, "UpgradeInProgress"),
                             jx_str(o, "status.activeServiceStatus.rayClusterName", "-"),
                             age};
        if ((r = s_row(&t, row)) != 0)
            break;
    }
    printf("\nRayServices (%zu)\n", t.nrows);
    if (t.nrows)
        s_print(&t, stdout);
    s_table_free(&t);
    json_decref(list);
    return r;
}

static const args_opt_t s_status_opts[] = {
    {"state-dir", "DIR",
     "State directory of 'rayfleetctl up'; its kubeconfig is used "
     "(default " LAUNCH_DEFAULT_STATE_DIR ")."},
    {"kubeconfig", "FILE", "Read this cluster instead of the state directory's."},
    {NULL, NULL, NULL},
};

int status_main(int argc, char **argv)
{
    args_t a;
    int pr = args_parse("status", "[--state-dir DIR | --kubeconfig FILE]",
                        "Shows the Ray objects of the cluster (RayClusters, RayJobs, RayServices) "
                        "with their state, replica counts, resources and head IP.",
                        s_status_opts, 0, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    if (args_has(&a, "state-dir") && args_has(&a, "kubeconfig")) {
        fprintf(stderr, "rayfleetctl status: give --state-dir or --kubeconfig, not both\n");
        return 2;
    }
    char kc[PATH_MAX];
    if (args_has(&a, "kubeconfig")) {
        snprintf(kc, sizeof(kc), "%s", args_str(&a, "kubeconfig"));
    } else {
        const char *dir =
            args_str(&a, "state-dir") ? args_str(&a, "state-dir") : LAUNCH_DEFAULT_STATE_DIR;
        snprintf(kc, sizeof(kc), "%s/kubeconfig", dir);
    }
    if (access(kc, R_OK) != 0) {
        fprintf(stderr,
                "rayfleetctl status: no kubeconfig at %s (is 'rayfleetctl up' running? or "
                "give --kubeconfig FILE)\n",
                kc);
        return 1;
    }
    buf_t err;
    buf_init(&err, KUBE_ERR_MAX);
    kube_t *k = kube_open(kc, &err);
    if (!k) {
        fprintf(stderr, "rayfleetctl status: kubeconfig %s: %s\n", kc, buf_str(&err));
        buf_free(&err);
        return 1;
    }
    buf_free(&err);
    int r = s_clusters(k);
    if (r == 0)
        r = s_jobs(k);
    if (r == 0)
        r = s_services(k);
    kube_close(&k);
    return r == 0 ? 0 : 1;
}
