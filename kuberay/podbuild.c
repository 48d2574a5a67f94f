/*
 * podbuild: the Pods KubeRay creates for a RayCluster. See podbuild.h for the contract; the step
 * order below mirrors KubeRay's DefaultHeadPodTemplate / DefaultWorkerPodTemplate / BuildPod
 * because env var and container order is observable.
 */
#include "podbuild.h"

#include "collector.h"
#include "err.h"
#include "json.h"
#include "labels.h"
#include "mtls.h"
#include "names.h"
#include "yaml.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_AUTOSCALER "autoscaler"
#define S_WAIT_GCS "wait-gcs-ready"
#define S_SHM_VOLUME "shared-mem"
#define S_SHM_PATH "/dev/shm"
#define S_LOG_VOLUME "ray-logs"
#define S_LOG_PATH "/tmp/ray"
#define S_GCS_VOLUME "gcs-storage"
#define S_GCS_PATH "/data/gcs"
#define S_TOKEN_VOLUME "ray-token"
#define S_TOKEN_PATH "/var/run/secrets/ray.io/serviceaccount"
#define S_AUTOSCALER_CMD                                                                           \
    "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) --cluster-namespace "               \
    "$(RAY_CLUSTER_NAMESPACE)"
#define S_ULIMIT "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}"
#define S_HEALTH_PATH "/api/healthz"
#define S_WGET_FMT "wget --tries 1 -T %d -q -O- http://localhost:%d/%s | grep success"
#define S_RAYLET_HEALTH "api/local_raylet_healthz"
#define S_GCS_HEALTH "api/gcs_healthz"
#define S_SERVE_HEALTH "-/healthz"
#define S_WGET_GCS_TIMEOUT 10
#define S_WGET_SERVE_TIMEOUT 10
#define S_MAX_INT32 2147483647LL
/* Go's float formatting switches to exponent form outside [1e-6, 1e21). */
#define S_FLOAT_FIXED_MIN 1e-6
#define S_FLOAT_FIXED_MAX 1e21
/* The apimachinery rand alphabet used for multi-host replica names. */
#define S_RAND_ALPHABET "bcdfghjklmnpqrstvwxz2456789"
#define S_RAND_LEN 5

typedef enum { S_HEAD, S_WORKER } s_node_t;

/* Everything derived once from the RayCluster. */
typedef struct {
    const json_t *rc; /* the RayCluster (borrowed) */
    const json_t *spec; /* its .spec (borrowed) */
    const podbuild_opts_t *o; /* the options (never NULL) */
    const char *name; /* metadata.name */
    const char *ns; /* metadata.namespace ("default" when absent) */
    const char *uid; /* metadata.uid ("" when absent) */
    const char *crd; /* RayCluster | RayJob | RayService (creator CRD type) */
    bool autoscaling; /* spec.enableInTreeAutoscaling */
    bool as_v2; /* autoscalerOptions.version == v2 */
    bool as_v1; /* autoscalerOptions.version == v1 */
    bool ft; /* GCS fault tolerance on */
    bool ft_embedded; /* ... with the rocksdb backend */
    bool auth; /* authOptions.mode == token */
    bool k8s_auth; /* authOptions.enableK8sTokenAuth */
    const json_t *collector; /* collectorOptions with the history-server gate on, else NULL */
    char *fqdn; /* head service FQDN (owned) */
    char *head_port; /* head port text (owned) */
} s_ctx_t;

void podbuild_opts_init(podbuild_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->gate_multihost_indexing = true;
    o->init_container_injection = true;
    o->probes_injection = true;
}

static const char *s_str(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool s_lower_eq(const char *a, const char *b)
{
    return a && strcasecmp(a, b) == 0;
}

static int s_set_str(json_t *obj, const char *key, const char *val)
{
    return json_object_set_new(obj, key, json_string(val)) == 0 ? 0 : ERR_NOMEM;
}

/* ---- quantities and Go number formatting ---- */

int podbuild_quantity(const char *s, int64_t *ceil_out, double *approx_out)
{
    if (!s || !*s)
        return ERR_INVAL;
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    __int128 mant = 0;
    int s10 = 0;
    int s2 = 0;
    int digits = 0;
    bool point = false;
    for (; *p && (isdigit((unsigned char)*p) || *p == '.'); p++) {
        if (*p == '.') {
            if (point)
                return ERR_INVAL;
            point = true;
            continue;
        }
        digits++;
        if (mant < (__int128)1 << 100)
            mant = mant * 10 + (*p - '0');
        else if (!point)
            s10++;
        if (point && mant < (__int128)1 << 100)
            s10--;
    }
    if (digits == 0)
        return ERR_INVAL;
    static const struct {
        const char *suf;
        int s10;
        int s2;
    } sufs[] = {{"", 0, 0},    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},
                {"k", 3, 0},   {"M", 6, 0},   {"G", 9, 0},   {"T", 12, 0},
                {"P", 15, 0},  {"E", 18, 0},  {"Ki", 0, 10}, {"Mi", 0, 20},
                {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60}};
    bool found = false;
    for (size_t i = 0; i < sizeof(sufs) / sizeof(sufs[0]); i++) {
        if (strcmp(p, sufs[i].suf) == 0) {
            s10 += sufs[i].s10;
            s2 += sufs[i].s2;
            found = true;
            break;
        }
    }
    if (!found && (*p == 'e' || *p == 'E')) {
        char *end = NULL;
        errno = 0;
        long e = strtol(p + 1, &end, 10);
        if (errno || end == p + 1 || *end || e > 100 || e < -100)
            return ERR_INVAL;
        s10 += (int)e;
        found = true;
    }
    if (!found)
        return ERR_INVAL;
    double approx = (double)mant;
    for (int i = 0; i < s10; i++)
        approx *= 10.0;
    for (int i = 0; i > s10; i--)
        approx /= 10.0;
    approx = ldexp(approx, s2);
    __int128 num = mant;
    __int128 den = 1;
    const __int128 cap = (__int128)INT64_MAX;
    for (int i = 0; i < s2 && num <= cap; i++)
        num *= 2;
    for (int i = 0; i < s10 && num <= cap; i++)
        num *= 10;
    for (int i = 0; i > s10; i--) {
        if (den > cap) {
            num = 0;
            break;
        }
        den *= 10;
    }
    __int128 q = num / den;
    if (num % den && !neg)
        q++;
    if (q > cap)
        q = cap;
    if (ceil_out)
        *ceil_out = neg ? -(int64_t)q : (int64_t)q;
    if (approx_out)
        *approx_out = neg ? -approx : approx;
    return 0;
}

/* Appends `f` the way Go's encoding/json writes a float64. */
static int s_go_float(buf_t *b, double f)
{
    char tmp[64];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    double a = fabs(f);
    if (a != 0 && (a < S_FLOAT_FIXED_MIN || a >= S_FLOAT_FIXED_MAX)) {
        /* Go: shortest 'e' form with a two-digit-at-least exponent trimmed ("1e-07" -> "1e-7"). */
        char *e = strchr(tmp, 'e');
        if (!e)
            return buf_puts(b, tmp);
        *e = '\0';
        int ex = (int)strtol(e + 1, NULL, 10);
        return buf_printf(b, "%se%c%d", tmp, ex < 0 ? '-' : '+', abs(ex));
    }
    char *e = strchr(tmp, 'e');
    int ex = e ? (int)strtol(e + 1, NULL, 10) : 0;
    int decimals = prec - 1 - ex;
    if (decimals < 0)
        decimals = 0;
    return buf_printf(b, "%.*f", decimals, f);
}

/* Go json.Marshal of a map[string]float64 (keys sorted). `m` maps keys to JSON reals/ints. */
static int s_marshal_resources(const json_t *m, buf_t *b)
{
    const char **keys = NULL;
    size_t n = json_object_size(m);
    size_t i = 0;
    const char *k;
    json_t *v;
    int rc = 0;
    if (n) {
        keys = calloc(n, sizeof(*keys));
        if (!keys)
            return ERR_NOMEM;
    }
    json_object_foreach((json_t *)m, k, v)
    {
        keys[i++] = k;
    }
    for (size_t a = 1; a < n; a++) {
        for (size_t c = a; c > 0 && strcmp(keys[c - 1], keys[c]) > 0; c--) {
            const char *t = keys[c];
            keys[c] = keys[c - 1];
            keys[c - 1] = t;
        }
    }
    rc = buf_puts(b, "{");
    for (i = 0; rc == 0 && i < n; i++) {
        rc = buf_puts(b, i ? ",\"" : "\"");
        if (rc == 0)
            rc = buf_json_escape(b, keys[i]);
        if (rc == 0)
            rc = buf_puts(b, "\":");
        if (rc == 0)
            rc = s_go_float(b, json_number_value(json_object_get(m, keys[i])));
    }
    if (rc == 0)
        rc = buf_puts(b, "}");
    free(keys);
    return rc;
}

static bool s_is_gpu_key(const char *key)
{
    size_t n = strlen(key);
    if (n >= 3 && strcmp(key + n - 3, "gpu") == 0)
        return true;
    /* nvidia\.com/mig-\d+g\.\d+gb$ (unanchored at the start, as in KubeRay) */
    const char *p = key;
    while ((p = strstr(p, "nvidia.com/mig-")) != NULL) {
        const char *q = p + strlen("nvidia.com/mig-");
        const char *d = q;
        while (isdigit((unsigned char)*q))
            q++;
        if (q > d && q[0] == 'g' && q[1] == '.') {
            q += 2;
            d = q;
            while (isdigit((unsigned char)*q))
                q++;
            if (q > d && strcmp(q, "gb") == 0)
                return true;
        }
        p++;
    }
    return false;
}

/* ---- small builders ---- */

static json_t *s_env(const char *name, const char *value)
{
    json_t *e = json_object();
    if (!e)
        return NULL;
    json_object_set_new(e, "name", json_string(name));
    if (value && *value)
        json_object_set_new(e, "value", json_string(value));
    return e;
}

static json_t *s_env_field(const char *name, const char *path)
{
    return json_pack("{s:s, s:{s:{s:s}}}", "name", name, "valueFrom", "fieldRef", "fieldPath",
                     path);
}

static bool s_env_exists(const json_t *env, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        const char *n = s_str(e, "name");
        if (n && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

/* Appends `e` (stolen) to container.env; NULL `e` means out of memory. */
static int s_env_add(json_t *container, json_t *e)
{
    json_t *env = e ? jx_child_arr(container, "env") : NULL;
    if (!env || json_array_append_new(env, e) != 0) {
        json_decref(e);
        return ERR_NOMEM;
    }
    return 0;
}

static int s_env_add_absent(json_t *container, const char *name, const char *value)
{
    if (s_env_exists(json_object_get(container, "env"), name))
        return 0;
    return s_env_add(container, s_env(name, value));
}

static json_t *s_resources(const char *cpu, const char *mem)
{
    return json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "limits", "cpu", cpu, "memory", mem,
                     "requests", "cpu", cpu, "memory", mem);
}

static json_t *s_shell_command(const podbuild_opts_t *o)
{
    return json_pack("[s, s, s]", "/bin/bash", o->login_shell ? "-lc" : "-c", "--");
}

static int s_container_port(const json_t *container, const char *name, int def)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(container, "ports"), i, p)
    {
        const char *n = s_str(p, "name");
        if (n && strcmp(n, name) == 0)
            return (int)json_integer_value(json_object_get(p, "containerPort"));
    }
    return def;
}

static bool s_has_port(const json_t *container, const char *name)
{
    return s_container_port(container, name, -1) != -1;
}

/* The text of a rayStartParams value (the CRD makes them strings; tolerate scalars). */
static json_t *s_param_string(const json_t *v)
{
    char tmp[64];
    if (json_is_string(v))
        return json_string(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return json_string(tmp);
    }
    if (json_is_boolean(v))
        return json_string(json_is_true(v) ? "true" : "false");
    if (json_is_real(v)) {
        snprintf(tmp, sizeof(tmp), "%.17g", json_real_value(v));
        return json_string(tmp);
    }
    return json_string("");
}

static json_t *s_params_copy(const json_t *src)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    if (!out)
        return NULL;
    json_object_foreach((json_t *)src, k, v)
    {
        if (json_object_set_new(out, k, s_param_string(v)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Parses an int32 like strconv.ParseInt(s, 10, 32); `def` when not one. */
static int s_param_port(const json_t *params, const char *key, int def)
{
    const char *s = s_str(params, key);
    if (!s || !*s)
        return def;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v > S_MAX_INT32 || v < -S_MAX_INT32 - 1 || isspace((unsigned char)*s))
        return def;
    return (int)v;
}

/* ---- rayStartParams (spec §1.6) ---- */

/* updateRayStartParamsResources: group `resources` override num-cpus/memory/num-gpus/resources. */
static int s_apply_group_resources(json_t *params, const json_t *res)
{
    if (!json_is_object(res) || json_object_size(res) == 0)
        return 0;
    json_t *custom = json_object();
    const char *k;
    json_t *v;
    char tmp[32];
    int rc = 0;
    if (!custom)
        return ERR_NOMEM;
    json_object_foreach((json_t *)res, k, v)
    {
        int64_t iv = 0;
        double fv = 0;
        if (!json_is_string(v) || podbuild_quantity(json_string_value(v), &iv, &fv) != 0)
            continue;
        char lower[256];
        size_t n = strlen(k);
        if (n >= sizeof(lower))
            n = sizeof(lower) - 1;
        for (size_t i = 0; i < n; i++)
            lower[i] = (char)tolower((unsigned char)k[i]);
        lower[n] = '\0';
        snprintf(tmp, sizeof(tmp), "%lld", (long long)iv);
        if (strcmp(lower, "cpu") == 0)
            rc = s_set_str(params, "num-cpus", tmp);
        else if (strcmp(lower, "memory") == 0)
            rc = s_set_str(params, "memory", tmp);
        else if (s_is_gpu_key(lower))
            rc = s_set_str(params, "num-gpus", tmp);
        else
            rc = json_object_set_new(custom, k, json_real(fv)) == 0 ? 0 : ERR_NOMEM;
        if (rc)
            break;
    }
    if (rc == 0 && json_object_size(custom) > 0) {
        buf_t b;
        buf_init(&b, PODBUILD_MAX_TEXT);
        rc = buf_puts(&b, "'");
        if (rc == 0)
            rc = s_marshal_resources(custom, &b);
        if (rc == 0)
            rc = buf_puts(&b, "'");
        if (rc == 0)
            rc = s_set_str(params, "resources", buf_str(&b));
        buf_free(&b);
    }
    json_decref(custom);
    return rc;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of an object (array of borrowed key pointers, caller frees the array). */
static const char **s_sorted_keys(const json_t *obj, size_t *n_out)
{
    size_t n = json_object_size(obj);
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    const char *k;
    json_t *v;
    size_t i = 0;
    if (!keys)
        return NULL;
    json_object_foreach((json_t *)obj, k, v)
    {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), s_cmp_str);
    *n_out = n;
    return keys;
}

/* updateRayStartParamsLabels: group `labels` -> --labels=k1=v1,k2=v2 (sorted). */
static int s_apply_group_labels(json_t *params, const json_t *labels)
{
    if (!json_is_object(labels) || json_object_size(labels) == 0)
        return 0;
    size_t n = 0;
    const char **keys = s_sorted_keys(labels, &n);
    buf_t b;
    int rc = 0;
    if (!keys)
        return ERR_NOMEM;
    buf_init(&b, PODBUILD_MAX_TEXT);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *v = s_str(labels, keys[i]);
        rc = buf_printf(&b, "%s%s=%s", i ? "," : "", keys[i], v ? v : "");
    }
    if (rc == 0)
        rc = s_set_str(params, "labels", buf_str(&b));
    buf_free(&b);
    free(keys);
    return rc;
}

/* setMissingRayStartParams */
static int s_set_missing(json_t *params, s_node_t type, const s_ctx_t *c)
{
    char tmp[64];
    int rc = 0;
    if (type == S_WORKER && !json_object_get(params, "address")) {
        buf_t b;
        buf_init(&b, PODBUILD_MAX_TEXT);
        rc = buf_printf(&b, "%s:%s", c->fqdn, c->head_port);
        if (rc == 0)
            rc = s_set_str(params, "address", buf_str(&b));
        buf_free(&b);
    }
    if (rc == 0 && type == S_HEAD && !json_object_get(params, "dashboard-host"))
        rc = s_set_str(params, "dashboard-host", "0.0.0.0");
    if (rc == 0 && !json_object_get(params, "metrics-export-port")) {
        snprintf(tmp, sizeof(tmp), "%d", PODBUILD_DEFAULT_METRICS_PORT);
        rc = s_set_str(params, "metrics-export-port", tmp);
    }
    if (rc == 0)
        rc = s_set_str(params, "block", "true");
    if (rc == 0 && !json_object_get(params, "dashboard-agent-listen-port")) {
        snprintf(tmp, sizeof(tmp), "%d", PODBUILD_DEFAULT_AGENT_PORT);
        rc = s_set_str(params, "dashboard-agent-listen-port", tmp);
    }
    return rc;
}

/* Parses the rayStartParams `resources` JSON ('{"a":1}' with quotes trimmed) into an object of
 * numbers; NULL when it is not a JSON object of numbers (KubeRay then skips accelerators). */
static json_t *s_resources_map(const json_t *params)
{
    const char *s = s_str(params, "resources");
    if (!s)
        return json_object();
    size_t a = 0;
    size_t z = strlen(s);
    while (a < z && strchr("'\"` ", s[a]))
        a++;
    while (z > a && strchr("'\"` ", s[z - 1]))
        z--;
    json_t *m = json_loadb(s + a, z - a, JSON_DECODE_ANY, NULL);
    const char *k;
    json_t *v;
    if (!json_is_object(m)) {
        json_decref(m);
        return NULL;
    }
    json_object_foreach(m, k, v)
    {
        if (!json_is_number(v)) {
            json_decref(m);
            return NULL;
        }
    }
    return m;
}

/* generateRayStartCommand's resource-derived params (num-cpus, memory, num-gpus, accelerators). */
static int s_derive_resources(json_t *params, const json_t *resources)
{
    const json_t *limits = json_object_get(resources, "limits");
    const json_t *requests = json_object_get(resources, "requests");
    char tmp[32];
    int64_t iv = 0;
    int rc = 0;
    if (!json_object_get(params, "num-cpus")) {
        /* IsZero is on the exact value ("100m" is not zero; Value() rounds it up to 1) */
        const char *cpu = s_str(limits, "cpu");
        double f = 0;
        if (!cpu || podbuild_quantity(cpu, &iv, &f) != 0 || f == 0) {
            cpu = s_str(requests, "cpu");
            if (!cpu || podbuild_quantity(cpu, &iv, &f) != 0)
                f = 0;
        }
        if (f != 0) {
            snprintf(tmp, sizeof(tmp), "%lld", (long long)iv);
            rc = s_set_str(params, "num-cpus", tmp);
        }
    }
    if (rc == 0 && !json_object_get(params, "memory")) {
        const char *mem = s_str(limits, "memory");
        double f = 0;
        if (mem && podbuild_quantity(mem, &iv, &f) == 0 && f != 0) {
            snprintf(tmp, sizeof(tmp), "%lld", (long long)iv);
            rc = s_set_str(params, "memory", tmp);
        }
    }
    if (rc || !json_is_object(limits) || json_object_size(limits) == 0)
        return rc;
    json_t *rmap = s_resources_map(params);
    if (!rmap)
        return 0; /* KubeRay logs "failed to get resources map" and adds nothing */
    bool added = json_object_get(rmap, "neuron_cores") || json_object_get(rmap, "TPU");
    size_t n = 0;
    const char **keys = s_sorted_keys(limits, &n);
    if (!keys) {
        json_decref(rmap);
        return ERR_NOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *q = s_str(limits, keys[i]);
        double f = 0;
        if (!q || podbuild_quantity(q, &iv, &f) != 0)
            continue;
        if (!json_object_get(params, "num-gpus") && s_is_gpu_key(keys[i]) && f != 0) {
            snprintf(tmp, sizeof(tmp), "%lld", (long long)iv);
            rc = s_set_str(params, "num-gpus", tmp);
        }
        const char *ray_name = NULL;
        if (strcmp(keys[i], "aws.amazon.com/neuroncore") == 0)
            ray_name = "neuron_cores";
        else if (strcmp(keys[i], "google.com/tpu") == 0)
            ray_name = "TPU";
        if (rc == 0 && !added && ray_name && f != 0) {
            if (!json_object_get(rmap, ray_name)) {
                buf_t b;
                buf_init(&b, PODBUILD_MAX_TEXT);
                rc = json_object_set_new(rmap, ray_name, json_real(f)) == 0 ? 0 : ERR_NOMEM;
                if (rc == 0)
                    rc = buf_puts(&b, "'");
                if (rc == 0)
                    rc = s_marshal_resources(rmap, &b);
                if (rc == 0)
                    rc = buf_puts(&b, "'");
                if (rc == 0)
                    rc = s_set_str(params, "resources", buf_str(&b));
                buf_free(&b);
            }
            added = true;
        }
    }
    free(keys);
    json_decref(rmap);
    return rc;
}

int podbuild_start_command(const json_t *params, bool head, buf_t *out)
{
    if (!json_is_object(params) || !out)
        return ERR_INVAL;
    size_t n = 0;
    const char **keys = s_sorted_keys(params, &n);
    int rc;
    if (!keys)
        return ERR_NOMEM;
    rc = buf_puts(out, head ? "ray start --head " : "ray start ");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *v = s_str(params, keys[i]);
        bool special = strcmp(keys[i], "log-color") == 0 ||
                       strcmp(keys[i], "include-dashboard") == 0 ||
                       strcmp(keys[i], "include-log-monitor") == 0;
        if (!v)
            v = "";
        if ((s_lower_eq(v, "true") || s_lower_eq(v, "false")) && !special) {
            if (s_lower_eq(v, "true"))
                rc = buf_printf(out, " --%s ", keys[i]);
        } else {
            rc = buf_printf(out, " --%s=%s ", keys[i], v);
        }
    }
    free(keys);
    return rc;
}

/* ---- cluster-level facts ---- */

int podbuild_head_service_name(const json_t *raycluster, buf_t *out)
{
    const char *name = jx_str(raycluster, "metadata.name", NULL);
    if (!name || !*name)
        return ERR_INVAL;
    char *svc = names_head_service(name, json_object_get(raycluster, "spec"));
    if (!svc)
        return ERR_NOMEM;
    int rc = buf_puts(out, svc);
    free(svc);
    return rc;
}

int podbuild_head_fqdn(const json_t *raycluster, const podbuild_opts_t *opts, buf_t *out)
{
    const char *ns = jx_str(raycluster, "metadata.namespace", "default");
    const char *dom = opts && opts->cluster_domain && *opts->cluster_domain
                          ? opts->cluster_domain
                          : PODBUILD_DEFAULT_CLUSTER_DOMAIN;
    int rc = podbuild_head_service_name(raycluster, out);
    if (rc == 0)
        rc = buf_printf(out, ".%s.svc.%s", ns, dom);
    return rc;
}

int podbuild_head_port(const json_t *raycluster, buf_t *out)
{
    const json_t *p = jx_get(raycluster, "spec.headGroupSpec.rayStartParams");
    const json_t *port = json_object_get(p, "port");
    if (port) {
        json_t *s = s_param_string(port);
        int rc = s ? buf_puts(out, json_string_value(s)) : ERR_NOMEM;
        json_decref(s);
        return rc;
    }
    return buf_printf(out, "%d", PODBUILD_DEFAULT_GCS_PORT);
}

int podbuild_ray_container_index(const json_t *template)
{
    const json_t *cs = jx_get(template, "spec.containers");
    return json_is_array(cs) && json_array_size(cs) > 0 ? PODBUILD_RAY_CONTAINER_INDEX : -1;
}

static void s_ctx_free(s_ctx_t *c)
{
    free(c->fqdn);
    free(c->head_port);
    c->fqdn = NULL;
    c->head_port = NULL;
}

static int s_ctx_init(s_ctx_t *c, const json_t *rc, const podbuild_opts_t *o, buf_t *err)
{
    memset(c, 0, sizeof(*c));
    c->rc = rc;
    c->o = o;
    c->spec = json_object_get(rc, "spec");
    c->name = jx_str(rc, "metadata.name", NULL);
    if (!c->name || !*c->name || !json_is_object(c->spec)) {
        if (err)
            buf_puts(err, "podbuild: the RayCluster has no metadata.name or no spec");
        return ERR_INVAL;
    }
    c->ns = jx_str(rc, "metadata.namespace", "default");
    c->uid = jx_str(rc, "metadata.uid", "");
    const char *crd = s_str(jx_get(rc, "metadata.labels"), LABEL_ORIGINATED_FROM_CRD);
    c->crd =
        crd && (strcmp(crd, "RayJob") == 0 || strcmp(crd, "RayService") == 0) ? crd : "RayCluster";
    c->autoscaling = json_is_true(json_object_get(c->spec, "enableInTreeAutoscaling"));
    const char *ver = jx_str(c->spec, "autoscalerOptions.version", NULL);
    c->as_v2 = ver && strcmp(ver, "v2") == 0;
    c->as_v1 = ver && strcmp(ver, "v1") == 0;
    const json_t *gcs = json_object_get(c->spec, "gcsFaultToleranceOptions");
    const char *ftann = s_str(jx_get(rc, "metadata.annotations"), ANN_FT_ENABLED);
    c->ft = s_lower_eq(ftann, "true") || (gcs && !json_is_null(gcs));
    const char *backend = s_str(gcs, "backend");
    c->ft_embedded = backend && strcmp(backend, "rocksdb") == 0;
    c->auth = s_lower_eq(jx_str(c->spec, "authOptions.mode", NULL), "token");
    c->k8s_auth = json_is_true(jx_get(c->spec, "authOptions.enableK8sTokenAuth"));
    c->collector = o->gate_history_server ? collector_options(c->spec) : NULL;
    buf_t b;
    buf_init(&b, PODBUILD_MAX_TEXT);
    int r = podbuild_head_fqdn(rc, o, &b);
    if (r == 0)
        c->fqdn = buf_take(&b, NULL);
    buf_reset(&b);
    if (r == 0 && c->fqdn)
        r = podbuild_head_port(rc, &b);
    if (r == 0)
        c->head_port = buf_take(&b, NULL);
    buf_free(&b);
    if (r == 0 && (!c->fqdn || !c->head_port))
        r = ERR_NOMEM;
    if (r)
        s_ctx_free(c);
    return r;
}

/* ---- pod template steps ---- */

/* labelPod over mergeLabels(template labels, group labels). */
static json_t *s_labels(const s_ctx_t *c, s_node_t type, const char *group, const json_t *tmpl_l,
                        const json_t *group_l)
{
    char *id = names_identifier(c->name, type == S_HEAD ? NAMES_NODE_HEAD : NAMES_NODE_WORKER);
    json_t *l = id ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", LABEL_IS_RAY_NODE,
                               LABEL_IS_RAY_NODE_YES, LABEL_CLUSTER, c->name, LABEL_NODE_TYPE,
                               type == S_HEAD ? NAMES_NODE_HEAD : NAMES_NODE_WORKER, LABEL_GROUP,
                               group, LABEL_IDENTIFIER, id, LABEL_APP_NAME, LABEL_APP_NAME_KUBERAY,
                               LABEL_CREATED_BY, LABEL_CREATED_BY_KUBERAY)
                   : NULL;
    free(id);
    const json_t *srcs[2] = {tmpl_l, group_l};
    for (int i = 0; l && i < 2; i++) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)srcs[i], k, v)
        {
            if (labels_is_protected(k))
                continue;
            if (json_object_set(l, k, v) != 0) {
                json_decref(l);
                return NULL;
            }
        }
    }
    return l;
}

/* SetContainerTokenAuthEnvVars */
static int s_token_auth_env(const s_ctx_t *c, json_t *container)
{
    int rc = s_env_add_absent(container, "RAY_AUTH_MODE", "token");
    if (rc)
        return rc;
    if (c->k8s_auth) {
        rc = s_env_add_absent(container, "RAY_ENABLE_K8S_TOKEN_AUTH", "true");
        bool mounted = false;
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(container, "volumeMounts"), i, m)
        {
            const char *n = s_str(m, "name");
            mounted = mounted || (n && strcmp(n, S_TOKEN_VOLUME) == 0);
        }
        json_t *mounts = rc == 0 && !mounted ? jx_child_arr(container, "volumeMounts") : NULL;
        if (rc == 0 && !mounted &&
            (!mounts || json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name",
                                                                S_TOKEN_VOLUME, "mountPath",
                                                                S_TOKEN_PATH, "readOnly", 1)) != 0))
            rc = ERR_NOMEM;
        return rc;
    }
    if (s_env_exists(json_object_get(container, "env"), "RAY_AUTH_TOKEN"))
        return 0;
    const char *secret = jx_str(c->spec, "authOptions.secretName", NULL);
    char *def = NULL;
    if (!secret || !*secret) {
        def = names_check_name(c->name);
        if (!def)
            return ERR_NOMEM;
        secret = def;
    }
    rc = s_env_add(container,
                   json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", "RAY_AUTH_TOKEN", "valueFrom",
                             "secretKeyRef", "name", secret, "key", "auth_token"));
    free(def);
    return rc;
}

/* configureTokenAuth: Ray container, the projected token volume, wait-gcs-ready. */
static int s_token_auth_pod(const s_ctx_t *c, json_t *pspec, json_t *ray)
{
    int rc = s_token_auth_env(c, ray);
    if (rc == 0 && c->k8s_auth) {
        json_t *vols = jx_child_arr(pspec, "volumes");
        bool have = false;
        size_t i;
        json_t *v;
        json_array_foreach(vols, i, v)
        {
            const char *n = s_str(v, "name");
            have = have || (n && strcmp(n, S_TOKEN_VOLUME) == 0);
        }
        if (!vols || (!have && json_array_append_new(
                                   vols, json_pack("{s:s, s:{s:[{s:{s:s}}]}}", "name",
                                                   S_TOKEN_VOLUME, "projected", "sources",
                                                   "serviceAccountToken", "path", "token")) != 0))
            rc = ERR_NOMEM;
    }
    size_t i;
    json_t *ic;
    json_array_foreach(json_object_get(pspec, "initContainers"), i, ic)
    {
        const char *n = s_str(ic, "name");
        if (rc == 0 && n && strcmp(n, S_WAIT_GCS) == 0)
            rc = s_token_auth_env(c, ic);
    }
    return rc;
}

static json_t *s_autoscaler_container(const s_ctx_t *c, const json_t *ray)
{
    const char *image = s_str(ray, "image");
    json_t *a = json_pack(
        "{s:s, s:s?, s:s, s:[o, o, o, {s:s, s:s}, {s:s, s:s}], s:o, s:[s], s:o}", "name",
        S_AUTOSCALER, "image", image, "imagePullPolicy", "IfNotPresent", "env",
        s_env_field("RAY_CLUSTER_NAME", "metadata.labels['ray.io/cluster']"),
        s_env_field("RAY_CLUSTER_NAMESPACE", "metadata.namespace"),
        s_env_field("RAY_HEAD_POD_NAME", "metadata.name"), "name", "KUBERAY_CRD_VER", "value", "v1",
        "name", "KUBERAY_GEN_AUTOSCALER_START_CMD", "value", S_AUTOSCALER_CMD, "command",
        s_shell_command(c->o), "args", S_AUTOSCALER_CMD, "resources", s_resources("500m", "512Mi"));
    if (!a)
        return NULL;
    if (c->auth && s_token_auth_env(c, a) != 0) {
        json_decref(a);
        return NULL;
    }
    if (mtls_enabled(c->spec) && mtls_container(a) != 0) { /* SetContainerTLSConfig */
        json_decref(a);
        return NULL;
    }
    /* mergeAutoscalerOverrides */
    const json_t *ao = json_object_get(c->spec, "autoscalerOptions");
    static const char *const replace[] = {"resources", "image", "imagePullPolicy",
                                          "securityContext"};
    static const char *const append[] = {"env", "envFrom", "volumeMounts"};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(replace) / sizeof(replace[0]); i++) {
        json_t *v = json_object_get(ao, replace[i]);
        if (v && !json_is_null(v))
            rc = json_object_set_new(a, replace[i], json_deep_copy(v));
    }
    for (size_t i = 0; rc == 0 && i < sizeof(append) / sizeof(append[0]); i++) {
        json_t *v = json_object_get(ao, append[i]);
        if (json_is_array(v) && json_array_size(v) > 0) {
            json_t *dst = jx_child_arr(a, append[i]);
            json_t *cp = json_deep_copy(v);
            rc = dst && cp && json_array_extend(dst, cp) == 0 ? 0 : ERR_NOMEM;
            json_decref(cp);
        }
    }
    static const char *const lists[] = {"command", "args"};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        json_t *v = json_object_get(ao, lists[i]);
        if (json_is_array(v) && json_array_size(v) > 0)
            rc = json_object_set_new(a, lists[i], json_deep_copy(v));
    }
    if (rc) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* configureGCSFaultTolerance (both node types). */
static int s_gcs_ft(const s_ctx_t *c, s_node_t type, json_t *ann, json_t *pspec, json_t *ray,
                    json_t *params)
{
    int rc = 0;
    if (type == S_HEAD)
        rc = s_set_str(ann, ANN_FT_ENABLED, c->ft ? "true" : "false");
    if (rc || !c->ft)
        return rc;
    if (type == S_WORKER)
        return s_env_add_absent(ray, "RAY_gcs_rpc_server_reconnect_timeout_s", "600");
    const json_t *opt = json_object_get(c->spec, "gcsFaultToleranceOptions");
    if (json_is_null(opt))
        opt = NULL;
    if (c->ft_embedded) {
        rc = s_env_add_absent(ray, "RAY_gcs_storage", "rocksdb");
        if (rc == 0)
            rc = s_env_add_absent(ray, "RAY_gcs_storage_path", S_GCS_PATH);
        const char *sub = jx_str(opt, "storage.subPath", NULL);
        const char *claim = jx_str(opt, "storage.claimName", NULL);
        char *pvc = claim && *claim ? strdup(claim) : names_gcs_pvc(c->name);
        json_t *mounts = jx_child_arr(ray, "volumeMounts");
        json_t *vols = jx_child_arr(pspec, "volumes");
        json_t *m = json_pack("{s:s, s:s}", "name", S_GCS_VOLUME, "mountPath", S_GCS_PATH);
        if (m && sub && *sub)
            json_object_set_new(m, "subPath", json_string(sub));
        if (rc == 0 && (!pvc || !mounts || !vols || json_array_append_new(mounts, m) != 0 ||
                        json_array_append_new(vols, json_pack("{s:s, s:{s:s}}", "name",
                                                              S_GCS_VOLUME, "persistentVolumeClaim",
                                                              "claimName", pvc)) != 0))
            rc = ERR_NOMEM;
        else if (rc)
            json_decref(m);
        free(pvc);
        return rc;
    }
    /* Redis backend */
    const char *ns = c->uid;
    const char *a = s_str(jx_get(c->rc, "metadata.annotations"), ANN_EXTERNAL_STORAGE_NS);
    if (a)
        ns = a;
    const char *o = s_str(opt, "externalStorageNamespace");
    if (o && *o)
        ns = o;
    rc = s_set_str(ann, ANN_EXTERNAL_STORAGE_NS, ns);
    if (rc == 0)
        rc = s_env_add_absent(ray, "RAY_external_storage_namespace", ns);
    if (rc)
        return rc;
    if (opt) {
        rc = s_env_add(ray, s_env("RAY_REDIS_ADDRESS", s_str(opt, "redisAddress")));
        static const struct {
            const char *field;
            const char *param;
            const char *env;
        } creds[] = {{"redisUsername", "redis-username", "REDIS_USERNAME"},
                     {"redisPassword", "redis-password", "REDIS_PASSWORD"}};
        for (size_t i = 0; rc == 0 && i < 2; i++) {
            const json_t *cred = json_object_get(opt, creds[i].field);
            if (!json_is_object(cred))
                continue;
            char ref[64];
            snprintf(ref, sizeof(ref), "$%s", creds[i].env);
            rc = s_set_str(params, creds[i].param, ref);
            json_t *e = s_env(creds[i].env, s_str(cred, "value"));
            json_t *vf = json_object_get(cred, "valueFrom");
            if (e && vf && !json_is_null(vf))
                json_object_set_new(e, "valueFrom", json_deep_copy(vf));
            if (rc == 0)
                rc = s_env_add(ray, e);
            else
                json_decref(e);
        }
        return rc;
    }
    const char *pw = s_str(params, "redis-password");
    if (pw && !s_env_exists(json_object_get(ray, "env"), "REDIS_PASSWORD"))
        rc = s_env_add(ray, s_env("REDIS_PASSWORD", pw));
    return rc;
}

static int s_add_metrics_port(json_t *ray)
{
    if (s_has_port(ray, "metrics"))
        return 0;
    json_t *ports = jx_child_arr(ray, "ports");
    json_t *p =
        json_pack("{s:s, s:i}", "name", "metrics", "containerPort", PODBUILD_DEFAULT_METRICS_PORT);
    if (!ports || !p || json_array_append_new(ports, p) != 0)
        return ERR_NOMEM;
    return 0;
}

/* The wait-gcs-ready init container (taken from the Ray container before any injection). */
static json_t *s_wait_gcs(const s_ctx_t *c, const json_t *ray)
{
    buf_t b;
    buf_init(&b, PODBUILD_MAX_TEXT);
    int rc = buf_printf(
        &b,
        "\n\t\t\t\t\tSECONDS=0\n\t\t\t\t\twhile true; do\n\t\t\t\t\t\tif (( SECONDS <= 120 )); "
        "then\n\t\t\t\t\t\t\tif ray health-check --address %s:%s > /dev/null 2>&1; "
        "then\n\t\t\t\t\t\t\t\techo \"GCS is ready.\"\n\t\t\t\t\t\t\t\tbreak\n\t\t\t\t\t\t\tfi\n"
        "\t\t\t\t\t\t\techo \"$SECONDS seconds elapsed: Waiting for GCS to be "
        "ready.\"\n\t\t\t\t\t\telse\n\t\t\t\t\t\t\tif ray health-check --address %s:%s; "
        "then\n\t\t\t\t\t\t\t\techo \"GCS is ready. Any error messages above can be safely "
        "ignored.\"\n\t\t\t\t\t\t\t\tbreak\n\t\t\t\t\t\t\tfi\n\t\t\t\t\t\t\techo \"$SECONDS "
        "seconds elapsed: Still waiting for GCS to be ready. For troubleshooting, refer to the "
        "FAQ at "
        "https://docs.ray.io/en/master/cluster/kubernetes/troubleshooting.html.\"\n\t\t\t\t\t\tfi\n"
        "\t\t\t\t\t\tsleep 5\n\t\t\t\t\tdone\n\t\t\t\t",
        c->fqdn, c->head_port, c->fqdn, c->head_port);
    json_t *ic = rc == 0
                     ? json_pack("{s:s, s:s?, s:s?, s:o, s:[s], s:o}", "name", S_WAIT_GCS, "image",
                                 s_str(ray, "image"), "imagePullPolicy",
                                 s_str(ray, "imagePullPolicy"), "command", s_shell_command(c->o),
                                 "args", buf_str(&b), "resources", s_resources("200m", "256Mi"))
                     : NULL;
    buf_free(&b);
    static const char *const copied[] = {"securityContext", "env", "volumeMounts"};
    for (size_t i = 0; ic && i < sizeof(copied) / sizeof(copied[0]); i++) {
        json_t *v = json_object_get(ray, copied[i]);
        if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0) &&
            json_object_set_new(ic, copied[i], json_deep_copy(v)) != 0) {
            json_decref(ic);
            ic = NULL;
        }
    }
    return ic;
}

/* addEmptyDir */
static int s_add_empty_dir(json_t *pspec, json_t *container, const char *vol, const char *path,
                           bool memory)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(container, "volumeMounts"), i, m)
    {
        const char *p = s_str(m, "mountPath");
        if (p && strcmp(p, path) == 0)
            return 0;
    }
    json_t *vols = jx_child_arr(pspec, "volumes");
    if (!vols)
        return ERR_NOMEM;
    bool have = false;
    json_t *v;
    json_array_foreach(vols, i, v)
    {
        const char *n = s_str(v, "name");
        have = have || (n && strcmp(n, vol) == 0);
    }
    if (!have) {
        json_t *ed = json_object();
        if (ed && memory) {
            json_object_set_new(ed, "medium", json_string("Memory"));
            const json_t *res = json_object_get(container, "resources");
            const json_t *q = jx_get(res, "limits.memory");
            if (!q)
                q = jx_get(res, "requests.memory");
            if (q)
                json_object_set(ed, "sizeLimit", (json_t *)q);
        }
        if (!ed ||
            json_array_append_new(vols, json_pack("{s:s, s:o}", "name", vol, "emptyDir", ed)) != 0)
            return ERR_NOMEM;
    }
    json_t *mounts = jx_child_arr(container, "volumeMounts");
    if (!mounts ||
        json_array_append_new(mounts, json_pack("{s:s, s:s}", "mountPath", path, "name", vol)) != 0)
        return ERR_NOMEM;
    return 0;
}

static int s_cmd_string(const json_t *arr, buf_t *b)
{
    size_t i;
    json_t *v;
    int rc = 0;
    json_array_foreach(arr, i, v)
    {
        if (rc == 0)
            rc = buf_printf(b, " %s ", json_is_string(v) ? json_string_value(v) : "");
    }
    return rc;
}

/* supportsUnifiedHealthCheck: version.ParseGeneric(v) >= 2.53.0 */
static bool s_http_probes(const char *v)
{
    if (!v)
        return false;
    while (isspace((unsigned char)*v))
        v++;
    if (*v == 'v')
        v++;
    long comp[3] = {0, 0, 0};
    int n = 0;
    while (isdigit((unsigned char)*v)) {
        char *end = NULL;
        long x = strtol(v, &end, 10);
        if (n < 3)
            comp[n] = x;
        n++;
        v = end;
        if (*v == '.' && isdigit((unsigned char)v[1]))
            v++;
        else
            break;
    }
    if (n < 2)
        return false;
    static const long min[3] = {2, 53, 0};
    for (int i = 0; i < 3; i++) {
        if (comp[i] != min[i])
            return comp[i] > min[i];
    }
    return true;
}

/* initLivenessAndReadinessProbe */
static int s_probes(const s_ctx_t *c, s_node_t type, json_t *ray, const json_t *params)
{
    int agent = s_param_port(params, "dashboard-agent-listen-port", PODBUILD_DEFAULT_AGENT_PORT);
    int dash = s_param_port(params, "dashboard-port", PODBUILD_DEFAULT_DASHBOARD_PORT);
    bool http = s_http_probes(s_str(c->spec, "rayVersion"));
    int timeout = type == S_HEAD ? PODBUILD_HEAD_PROBE_TIMEOUT : PODBUILD_PROBE_TIMEOUT;
    buf_t cmd;
    int rc;
    buf_init(&cmd, PODBUILD_MAX_TEXT);
    rc = buf_printf(&cmd, S_WGET_FMT, PODBUILD_PROBE_TIMEOUT, agent, S_RAYLET_HEALTH);
    if (rc == 0 && type == S_HEAD)
        rc = buf_printf(&cmd, " && " S_WGET_FMT, S_WGET_GCS_TIMEOUT, dash, S_GCS_HEALTH);
    for (int i = 0; rc == 0 && i < 2; i++) {
        const char *key = i == 0 ? "livenessProbe" : "readinessProbe";
        json_t *cur = json_object_get(ray, key);
        if (cur && !json_is_null(cur))
            continue;
        bool serve = i == 1 && type == S_WORKER && strcmp(c->crd, "RayService") == 0;
        json_t *p =
            json_pack("{s:i, s:i, s:i, s:i, s:i}", "initialDelaySeconds",
                      i == 0 ? PODBUILD_LIVENESS_INITIAL_DELAY : PODBUILD_READINESS_INITIAL_DELAY,
                      "timeoutSeconds", timeout, "periodSeconds", PODBUILD_PROBE_PERIOD,
                      "successThreshold", PODBUILD_PROBE_SUCCESS, "failureThreshold",
                      serve ? PODBUILD_SERVE_READINESS_FAILURE
                            : (i == 0 ? PODBUILD_LIVENESS_FAILURE : PODBUILD_READINESS_FAILURE));
        if (!p) {
            rc = ERR_NOMEM;
            break;
        }
        if (serve) {
            buf_t s;
            buf_init(&s, PODBUILD_MAX_TEXT);
            rc = buf_printf(&s, "%s && " S_WGET_FMT, buf_str(&cmd), S_WGET_SERVE_TIMEOUT,
                            s_container_port(ray, "serve", PODBUILD_DEFAULT_SERVE_PORT),
                            S_SERVE_HEALTH);
            json_object_set_new(p, "exec",
                                json_pack("{s:[s, s, s]}", "command", "bash", "-c", buf_str(&s)));
            buf_free(&s);
        } else if (http) {
            json_object_set_new(p, "httpGet",
                                json_pack("{s:s, s:i}", "path", S_HEALTH_PATH, "port", agent));
        } else {
            json_object_set_new(p, "exec",
                                json_pack("{s:[s, s, s]}", "command", "bash", "-c", buf_str(&cmd)));
        }
        if (rc == 0 && json_object_set_new(ray, key, p) != 0)
            rc = ERR_NOMEM;
        else if (rc)
            json_decref(p);
    }
    buf_free(&cmd);
    return rc;
}

/* BuildPod's env injection (setContainerEnvVars). */
static int s_container_env(const s_ctx_t *c, s_node_t type, json_t *ray, const char *start_cmd)
{
    int rc = 0;
    size_t i;
    json_t *e;
    json_array_foreach(c->o->default_container_envs, i, e)
    {
        const char *n = s_str(e, "name");
        if (rc == 0 && n && !s_env_exists(json_object_get(ray, "env"), n))
            rc = s_env_add(ray, json_deep_copy(e));
    }
    char *svc = NULL;
    if (rc == 0 && type == S_WORKER) {
        svc = strndup(c->fqdn, strcspn(c->fqdn, "."));
        rc = svc ? s_env_add(ray, s_env("FQ_RAY_IP", c->fqdn)) : ERR_NOMEM;
        if (rc == 0)
            rc = s_env_add(ray, s_env("RAY_IP", svc));
    }
    free(svc);
    if (rc == 0)
        rc = s_env_add(ray, s_env_field("RAY_CLUSTER_NAME", "metadata.labels['ray.io/cluster']"));
    if (rc == 0)
        rc = s_env_add(ray, s_env_field("RAY_CLUSTER_NAMESPACE", "metadata.namespace"));
    if (rc == 0)
        rc = s_env_add(ray, s_env_field("RAY_CLOUD_INSTANCE_ID", "metadata.name"));
    if (rc == 0)
        rc = s_env_add(ray, s_env_field("RAY_NODE_TYPE_NAME", "metadata.labels['ray.io/group']"));
    if (rc == 0)
        rc = s_env_add(ray, s_env("KUBERAY_GEN_RAY_START_CMD", start_cmd));
    if (rc == 0)
        rc = s_env_add_absent(ray, "RAY_PORT", c->head_port);
    if (rc == 0 && strcmp(c->crd, "RayService") == 0) {
        rc = s_env_add_absent(ray, "RAY_timeout_ms_task_wait_for_death_info", "0");
        if (rc == 0)
            rc = s_env_add_absent(ray, "RAY_gcs_server_request_timeout_seconds", "5");
        if (rc == 0)
            rc = s_env_add_absent(ray, "RAY_SERVE_KV_TIMEOUT_S", "5");
    }
    buf_t b;
    buf_init(&b, PODBUILD_MAX_TEXT);
    if (rc == 0)
        rc = buf_printf(&b, "%s:%s", type == S_HEAD ? "127.0.0.1" : c->fqdn, c->head_port);
    if (rc == 0)
        rc = s_env_add_absent(ray, "RAY_ADDRESS", buf_str(&b));
    if (rc == 0)
        rc = s_env_add_absent(ray, "RAY_USAGE_STATS_KUBERAY_IN_USE", "1");
    if (rc == 0 && type == S_HEAD) {
        buf_reset(&b);
        rc = buf_printf(&b, "kuberay_version=%s;kuberay_crd=%s",
                        c->o->kuberay_version ? c->o->kuberay_version : PODBUILD_KUBERAY_VERSION,
                        c->crd);
        if (rc == 0)
            rc = s_env_add(ray, s_env("RAY_USAGE_STATS_EXTRA_TAGS", buf_str(&b)));
    }
    buf_free(&b);
    if (rc == 0)
        rc = s_env_add_absent(ray, "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "1");
    if (rc == 0 && c->collector)
        rc = collector_ray_env(ray);
    return rc;
}

/* BuildPod: volumes, the generated command, env and probes; then the operator additions,
 * default labels/annotations and the owner reference. Takes ownership of nothing. */
static int s_build_pod(const s_ctx_t *c, s_node_t type, json_t *pod, json_t *params)
{
    json_t *meta = json_object_get(pod, "metadata");
    json_t *pspec = json_object_get(pod, "spec");
    json_t *labels = jx_child_obj(meta, "labels");
    json_t *ann = jx_child_obj(meta, "annotations");
    json_t *ray = json_array_get(json_object_get(pspec, "containers"), 0);
    int rc = labels && ann && ray ? 0 : ERR_NOMEM;
    if (rc == 0 && strcmp(c->crd, "RayService") == 0)
        rc = s_set_str(labels, LABEL_SERVE, type == S_HEAD ? "false" : "true");
    if (rc == 0 && !json_object_get(params, "plasma-directory"))
        rc = s_add_empty_dir(pspec, ray, S_SHM_VOLUME, S_SHM_PATH, true);
    if (rc == 0 && type == S_HEAD && c->autoscaling) {
        json_t *as = NULL;
        size_t i;
        json_t *ct;
        json_array_foreach(json_object_get(pspec, "containers"), i, ct)
        {
            const char *n = s_str(ct, "name");
            if (!as && n && strcmp(n, S_AUTOSCALER) == 0)
                as = ct;
        }
        rc = s_add_empty_dir(pspec, ray, S_LOG_VOLUME, S_LOG_PATH, false);
        if (rc == 0 && as)
            rc = s_add_empty_dir(pspec, as, S_LOG_VOLUME, S_LOG_PATH, false);
    }
    if (rc == 0 && c->collector) {
        /* §1.5: the collector shares /tmp/ray with the Ray container */
        json_t *hc =
            jx_array_find(json_object_get(pspec, "containers"), "name", COLLECTOR_CONTAINER);
        rc = s_add_empty_dir(pspec, ray, S_LOG_VOLUME, S_LOG_PATH, false);
        if (rc == 0 && hc)
            rc = s_add_empty_dir(pspec, hc, S_LOG_VOLUME, S_LOG_PATH, false);
    }
    buf_t user;
    buf_t start;
    buf_init(&user, PODBUILD_MAX_TEXT);
    buf_init(&start, PODBUILD_MAX_TEXT);
    if (rc == 0)
        rc = s_cmd_string(json_object_get(ray, "command"), &user);
    if (rc == 0)
        rc = s_cmd_string(json_object_get(ray, "args"), &user);
    if (rc == 0)
        rc = s_derive_resources(params, json_object_get(ray, "resources"));
    if (rc == 0)
        rc = podbuild_start_command(params, type == S_HEAD, &start);
    bool overwrite = s_lower_eq(s_str(ann, ANN_OVERWRITE_CONTAINER_CMD), "true");
    if (rc == 0 && !overwrite && !strstr(buf_str(&user), "ray start")) {
        buf_t args;
        buf_init(&args, PODBUILD_MAX_TEXT);
        if (user.len)
            rc = buf_printf(&args, "%s && ", buf_str(&user));
        if (rc == 0)
            rc = buf_printf(&args, "%s; %s", S_ULIMIT, buf_str(&start));
        if (rc == 0 && (json_object_set_new(ray, "command", s_shell_command(c->o)) != 0 ||
                        json_object_set_new(ray, "args", json_pack("[s]", buf_str(&args))) != 0))
            rc = ERR_NOMEM;
        buf_free(&args);
    }
    size_t i;
    json_t *ic;
    char *svc = strndup(c->fqdn, strcspn(c->fqdn, "."));
    if (rc == 0 && !svc)
        rc = ERR_NOMEM;
    json_array_foreach(json_object_get(pspec, "initContainers"), i, ic)
    {
        if (rc == 0)
            rc = s_env_add(ic, s_env("FQ_RAY_IP", c->fqdn));
        if (rc == 0)
            rc = s_env_add(ic, s_env("RAY_IP", svc));
    }
    free(svc);
    if (rc == 0)
        rc = s_container_env(c, type, ray, buf_str(&start));
    if (rc == 0 && c->o->probes_injection)
        rc = s_probes(c, type, ray, params);
    buf_free(&user);
    buf_free(&start);

    /* after BuildPod: default labels/annotations where absent, head annotations, owner */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)c->o->default_pod_labels, k, v)
    {
        if (rc == 0 && !json_object_get(labels, k))
            rc = json_object_set(labels, k, v);
    }
    json_object_foreach((json_t *)c->o->default_pod_annotations, k, v)
    {
        if (rc == 0 && !json_object_get(ann, k))
            rc = json_object_set(ann, k, v);
    }
    if (rc == 0 && type == S_HEAD) {
        rc = s_set_str(ann, ANN_KUBERAY_VERSION,
                       c->o->kuberay_version ? c->o->kuberay_version : PODBUILD_KUBERAY_VERSION);
        if (rc == 0 && c->o->recreate_hash)
            rc = s_set_str(ann, ANN_RECREATE_HASH, c->o->recreate_hash);
    }
    if (rc == 0 && json_object_size(ann) == 0)
        json_object_del(meta, "annotations");
    if (rc == 0) {
        json_t *owner =
            json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion",
                      jx_str(c->rc, "apiVersion", "ray.io/v1"), "kind", "RayCluster", "name",
                      c->name, "uid", c->uid, "controller", 1, "blockOwnerDeletion", 1);
        if (!owner || json_object_set_new(meta, "ownerReferences", owner) != 0)
            rc = ERR_NOMEM;
    }
    return rc;
}

/* Template step 7 (§4.9): appends the history-server collector sidecar. */
static int s_collector(const s_ctx_t *c, s_node_t type, json_t *pspec)
{
    const char *kind, *owner;
    collector_owner(c->rc, &kind, &owner);
    collector_pod_t p = {type == S_HEAD, c->name, c->ns, c->fqdn, kind, owner};
    json_t *hc = collector_container(c->collector, &p, NULL);
    json_t *cs = hc ? jx_child_arr(pspec, "containers") : NULL;
    if (!cs || json_array_append_new(cs, hc) != 0)
        return ERR_NOMEM;
    return 0;
}

/* Copies the group template into a new Pod skeleton {apiVersion, kind, metadata, spec}. */
static json_t *s_skeleton(const json_t *tmpl, buf_t *err, const char *what)
{
    const json_t *cs = jx_get(tmpl, "spec.containers");
    if (!json_is_array(cs) || json_array_size(cs) == 0 || !json_is_object(json_array_get(cs, 0))) {
        if (err)
            buf_printf(err, "%s should have at least one container", what);
        return NULL;
    }
    json_t *meta = json_deep_copy(json_object_get(tmpl, "metadata"));
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    json_t *pod = json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod", "metadata",
                            meta, "spec", json_deep_copy(json_object_get(tmpl, "spec")));
    return pod;
}

/* Sets generateName (or name) and namespace. */
static int s_names(const s_ctx_t *c, json_t *meta, s_node_t type, const char *group)
{
    bool fixed = type == S_HEAD && c->o->deterministic_head_name;
    char *n =
        type == S_HEAD ? names_head_pod(c->name, !fixed) : names_worker_pod(c->name, group, true);
    int rc = n ? s_set_str(meta, fixed ? "name" : "generateName", n) : ERR_NOMEM;
    free(n);
    if (rc == 0)
        rc = s_set_str(meta, "namespace", c->ns);
    return rc;
}

static int s_template_annotations(const s_ctx_t *c, json_t *meta)
{
    json_t *ann = jx_child_obj(meta, "annotations");
    if (!ann)
        return ERR_NOMEM;
    if (s_lower_eq(s_str(jx_get(c->rc, "metadata.annotations"), ANN_OVERWRITE_CONTAINER_CMD),
                   "true"))
        return s_set_str(ann, ANN_OVERWRITE_CONTAINER_CMD, "true");
    return 0;
}

static int s_append_sidecars(json_t *pspec, const json_t *sidecars)
{
    if (!json_is_array(sidecars) || json_array_size(sidecars) == 0)
        return 0;
    json_t *cs = json_object_get(pspec, "containers");
    json_t *cp = json_deep_copy(sidecars);
    int rc = cp && json_array_extend(cs, cp) == 0 ? 0 : ERR_NOMEM;
    json_decref(cp);
    return rc;
}

int podbuild_head(const json_t *raycluster, const podbuild_opts_t *opts, json_t **pod_out,
                  buf_t *err)
{
    podbuild_opts_t def;
    s_ctx_t c;
    json_t *pod = NULL;
    json_t *params = NULL;
    int rc;
    if (!pod_out)
        return ERR_INVAL;
    *pod_out = NULL;
    if (!opts) {
        podbuild_opts_init(&def);
        opts = &def;
    }
    rc = s_ctx_init(&c, raycluster, opts, err);
    if (rc)
        return rc;
    const json_t *group = json_object_get(c.spec, "headGroupSpec");
    const json_t *tmpl = json_object_get(group, "template");
    pod = s_skeleton(tmpl, err, "headGroupSpec");
    params = s_params_copy(json_object_get(group, "rayStartParams"));
    if (!pod || !params) {
        rc = pod ? ERR_NOMEM : ERR_INVAL;
        goto out;
    }
    json_t *meta = json_object_get(pod, "metadata");
    json_t *pspec = json_object_get(pod, "spec");
    json_t *ray = json_array_get(json_object_get(pspec, "containers"), 0);
    rc = s_names(&c, meta, S_HEAD, LABEL_GROUP_HEAD);
    if (rc == 0)
        rc = s_apply_group_resources(params, json_object_get(group, "resources"));
    if (rc == 0)
        rc = s_apply_group_labels(params, json_object_get(group, "labels"));
    if (rc == 0) {
        json_t *l = s_labels(&c, S_HEAD, LABEL_GROUP_HEAD, jx_get(tmpl, "metadata.labels"),
                             json_object_get(group, "labels"));
        rc = l && json_object_set_new(meta, "labels", l) == 0 ? 0 : ERR_NOMEM;
    }
    if (rc == 0)
        rc = s_set_missing(params, S_HEAD, &c);
    if (rc == 0)
        rc = s_template_annotations(&c, meta);
    if (rc == 0 && c.autoscaling) {
        rc = s_set_str(params, "no-monitor", "true");
        char *sa = names_autoscaler_sa(c.name, c.spec);
        if (rc == 0)
            rc = sa ? s_set_str(pspec, "serviceAccountName", sa) : ERR_NOMEM;
        free(sa);
        json_t *as = rc == 0 ? s_autoscaler_container(&c, ray) : NULL;
        if (rc == 0 &&
            (!as || json_array_append_new(json_object_get(pspec, "containers"), as) != 0))
            rc = ERR_NOMEM;
        if (rc == 0 && c.as_v2) {
            rc = s_env_add(ray, s_env("RAY_enable_autoscaler_v2", "true"));
            if (rc == 0)
                rc = s_set_str(pspec, "restartPolicy", "Never");
        } else if (rc == 0 && c.as_v1) {
            rc = s_env_add(ray, s_env("RAY_enable_autoscaler_v2", "false"));
        }
    }
    if (rc == 0)
        rc = s_gcs_ft(&c, S_HEAD, jx_child_obj(meta, "annotations"), pspec, ray, params);
    if (rc == 0)
        rc = s_add_metrics_port(ray);
    if (rc == 0 && c.auth)
        rc = s_token_auth_pod(&c, pspec, ray);
    if (rc == 0 && c.collector)
        rc = s_collector(&c, S_HEAD, pspec);
    if (rc == 0)
        rc = mtls_configure_pod(raycluster, MTLS_HEAD, pspec); /* configureTLS (§4.5) */
    if (rc == 0)
        rc = s_append_sidecars(pspec, opts->head_sidecars);
    if (rc == 0)
        rc = s_build_pod(&c, S_HEAD, pod, params);
    if (rc == 0)
        rc = batchsched_add_metadata(opts->batch_scheduler, raycluster, pod, LABEL_GROUP_HEAD);
out:
    json_decref(params);
    s_ctx_free(&c);
    if (rc) {
        if (err && rc == ERR_NOMEM)
            buf_puts(err, "podbuild: out of memory");
        json_decref(pod);
        return rc;
    }
    *pod_out = pod;
    return 0;
}

/* A stable stand-in for rand.String(5) when the caller gives no replica name. */
static void s_replica_suffix(const s_ctx_t *c, const char *group, int index, char out[6])
{
    uint64_t h = JX_FNV_OFFSET;
    const char *parts[2] = {c->uid, group};
    for (int p = 0; p < 2; p++) {
        for (const char *s = parts[p]; *s; s++) {
            h ^= (unsigned char)*s;
            h *= JX_FNV_PRIME;
        }
    }
    h ^= (uint64_t)index;
    h *= JX_FNV_PRIME;
    for (int i = 0; i < S_RAND_LEN; i++) {
        out[i] = S_RAND_ALPHABET[h % (sizeof(S_RAND_ALPHABET) - 1)];
        h /= sizeof(S_RAND_ALPHABET) - 1;
    }
    out[S_RAND_LEN] = '\0';
}

int podbuild_worker_ex(const json_t *raycluster, int group_index, const podbuild_replica_t *replica,
                       const podbuild_opts_t *opts, json_t **pod_out, buf_t *err)
{
    podbuild_opts_t def;
    s_ctx_t c;
    json_t *pod = NULL;
    json_t *params = NULL;
    podbuild_replica_t r0 = {0, NULL, 0};
    int rc;
    if (!pod_out)
        return ERR_INVAL;
    *pod_out = NULL;
    if (!opts) {
        podbuild_opts_init(&def);
        opts = &def;
    }
    if (!replica)
        replica = &r0;
    rc = s_ctx_init(&c, raycluster, opts, err);
    if (rc)
        return rc;
    const json_t *groups = json_object_get(c.spec, "workerGroupSpecs");
    const json_t *group = group_index >= 0 ? json_array_get(groups, (size_t)group_index) : NULL;
    const char *gname = s_str(group, "groupName");
    if (!group || !gname) {
        if (err)
            buf_printf(err, "podbuild: no worker group %d (or it has no groupName)", group_index);
        rc = ERR_INVAL;
        goto out;
    }
    const json_t *tmpl = json_object_get(group, "template");
    pod = s_skeleton(tmpl, err, "workerGroupSpec");
    params = s_params_copy(json_object_get(group, "rayStartParams"));
    if (!pod || !params) {
        rc = pod ? ERR_NOMEM : ERR_INVAL;
        goto out;
    }
    json_t *meta = json_object_get(pod, "metadata");
    json_t *pspec = json_object_get(pod, "spec");
    json_t *ray = json_array_get(json_object_get(pspec, "containers"), 0);
    rc = s_names(&c, meta, S_WORKER, gname);
    if (rc == 0 && opts->init_container_injection) {
        json_t *ic = s_wait_gcs(&c, ray);
        json_t *ics = ic ? jx_child_arr(pspec, "initContainers") : NULL;
        if (!ics || json_array_append_new(ics, ic) != 0)
            rc = ERR_NOMEM;
    }
    if (rc == 0)
        json_object_del(meta, "name");
    if (rc == 0)
        rc = s_apply_group_resources(params, json_object_get(group, "resources"));
    if (rc == 0)
        rc = s_apply_group_labels(params, json_object_get(group, "labels"));
    json_t *labels = NULL;
    if (rc == 0) {
        labels = s_labels(&c, S_WORKER, gname, jx_get(tmpl, "metadata.labels"),
                          json_object_get(group, "labels"));
        rc = labels && json_object_set_new(meta, "labels", labels) == 0 ? 0 : ERR_NOMEM;
    }
    if (rc == 0 && opts->gate_multihost_indexing) {
        char tmp[32];
        snprintf(tmp, sizeof(tmp), "%d", replica->replica_index);
        rc = s_set_str(labels, LABEL_REPLICA_INDEX, tmp);
        if (rc == 0 && jx_int(group, "numOfHosts", 1) > 1) {
            char suffix[S_RAND_LEN + 1];
            buf_t b;
            buf_init(&b, PODBUILD_MAX_TEXT);
            if (replica->replica_name) {
                rc = buf_puts(&b, replica->replica_name);
            } else {
                s_replica_suffix(&c, gname, replica->replica_index, suffix);
                rc = buf_printf(&b, "%s-%s", gname, suffix);
            }
            if (rc == 0)
                rc = s_set_str(labels, LABEL_REPLICA_NAME, buf_str(&b));
            buf_free(&b);
            snprintf(tmp, sizeof(tmp), "%d", replica->host_index);
            if (rc == 0)
                rc = s_set_str(labels, LABEL_HOST_INDEX, tmp);
        }
    }
    if (rc == 0)
        rc = s_set_missing(params, S_WORKER, &c);
    if (rc == 0)
        rc = s_template_annotations(&c, meta);
    if (rc == 0)
        rc = s_gcs_ft(&c, S_WORKER, jx_child_obj(meta, "annotations"), pspec, ray, params);
    if (rc == 0)
        rc = s_add_metrics_port(ray);
    if (rc == 0 && c.autoscaling && c.as_v2)
        rc = s_set_str(pspec, "restartPolicy", "Never");
    if (rc == 0 && c.auth)
        rc = s_token_auth_pod(&c, pspec, ray);
    if (rc == 0 && c.collector)
        rc = s_collector(&c, S_WORKER, pspec);
    if (rc == 0)
        rc = mtls_configure_pod(raycluster, MTLS_WORKER, pspec); /* configureTLS (§4.5) */
    if (rc == 0)
        rc = s_append_sidecars(pspec, opts->worker_sidecars);
    if (rc == 0)
        rc = s_build_pod(&c, S_WORKER, pod, params);
    if (rc == 0)
        rc = batchsched_add_metadata(opts->batch_scheduler, raycluster, pod, gname);
out:
    json_decref(params);
    s_ctx_free(&c);
    if (rc) {
        if (err && rc == ERR_NOMEM)
            buf_puts(err, "podbuild: out of memory");
        json_decref(pod);
        return rc;
    }
    *pod_out = pod;
    return 0;
}

int podbuild_worker(const json_t *raycluster, int group_index, const podbuild_opts_t *opts,
                    json_t **pod_out, buf_t *err)
{
    return podbuild_worker_ex(raycluster, group_index, NULL, opts, pod_out, err);
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ================================ self-test ================================ */

/* The conformance state for one Pod: the sample and Pod named in every failure message. */
typedef struct {
    const char *sample; /* sample file base name */
    const char *pod; /* "head" or the worker group name */
    int failed; /* rules that failed */
    int rules; /* rules checked */
} s_chk_t;

#define RULE(st, cond, rule)                                                                       \
    do {                                                                                           \
        (st)->rules++;                                                                             \
        if (!(cond)) {                                                                             \
            printf("%s:%d: %s [%s]: rule failed: %s (%s)\n", __FILE__, __LINE__, (st)->sample,     \
                   (st)->pod, (rule), #cond);                                                      \
            fflush(stdout);                                                                        \
            (st)->failed++;                                                                        \
        }                                                                                          \
    } while (0)

static int s_t_env_index(const json_t *container, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(container, "env"), i, e)
    {
        const char *n = s_str(e, "name");
        if (n && strcmp(n, name) == 0)
            return (int)i;
    }
    return -1;
}

static const char *s_t_env_value(const json_t *container, const char *name)
{
    int i = s_t_env_index(container, name);
    return i < 0 ? NULL
                 : s_str(json_array_get(json_object_get(container, "env"), (size_t)i), "value");
}

static const json_t *s_t_named(const json_t *arr, const char *name)
{
    return jx_array_find(arr, "name", name);
}

static bool s_t_str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Finds flag "--key" or "--key=..." in a rendered ray start command; returns the value text
 * (malloc'd, "" for a bare flag) or NULL. Flags are " --k[=v] " segments. */
static char *s_t_flag(const char *cmd, const char *key)
{
    size_t kl = strlen(key);
    const char *p = cmd;
    while ((p = strstr(p, " --")) != NULL) {
        p += 3;
        if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '=')) {
            if (p[kl] == ' ')
                return strdup("");
            const char *v = p + kl + 1;
            const char *e = strstr(v, "  --");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n && v[n - 1] == ' ')
                n--;
            return strndup(v, n);
        }
    }
    return NULL;
}

/* True when the flags of `cmd` are sorted strictly by key. */
static bool s_t_sorted(const char *cmd)
{
    char prev[256] = "";
    const char *p = cmd;
    while ((p = strstr(p, " --")) != NULL) {
        p += 3;
        size_t n = strcspn(p, "= ");
        if (n >= sizeof(prev))
            return false;
        char cur[256];
        memcpy(cur, p, n);
        cur[n] = '\0';
        if (prev[0] && strcmp(prev, cur) >= 0)
            return false;
        memcpy(prev, cur, n + 1);
        p += n;
    }
    return true;
}

static bool s_t_nonzero_qty(const char *q)
{
    double f = 0;
    return q && podbuild_quantity(q, NULL, &f) == 0 && f != 0;
}

/* Checks one built Pod against the spec rules (§1.3-§1.8, §4.1, §4.2, §4.5). */
static void s_t_check_pod(s_chk_t *st, const json_t *rc, const json_t *pod, bool head,
                          const json_t *group)
{
    const char *name = jx_str(rc, "metadata.name", "");
    const char *ns = jx_str(rc, "metadata.namespace", "default");
    const json_t *spec = json_object_get(rc, "spec");
    const json_t *tmpl = json_object_get(group, "template");
    const json_t *src_ray = jx_get(tmpl, "spec.containers.0");
    const json_t *params = json_object_get(group, "rayStartParams");
    const char *gname = head ? "headgroup" : s_str(group, "groupName");
    const json_t *meta = json_object_get(pod, "metadata");
    const json_t *labels = json_object_get(meta, "labels");
    const json_t *ann = json_object_get(meta, "annotations");
    const json_t *pspec = json_object_get(pod, "spec");
    const json_t *ray = jx_get(pspec, "containers.0");
    bool autoscaling = json_is_true(json_object_get(spec, "enableInTreeAutoscaling"));
    const char *crd = s_str(jx_get(rc, "metadata.labels"), LABEL_ORIGINATED_FROM_CRD);
    bool service = s_t_str_eq(crd, "RayService");
    bool ft = s_lower_eq(s_str(jx_get(rc, "metadata.annotations"), ANN_FT_ENABLED), "true") ||
              json_is_object(json_object_get(spec, "gcsFaultToleranceOptions"));
    char expect[512];

    RULE(st, s_t_str_eq(s_str(pod, "apiVersion"), "v1") && s_t_str_eq(s_str(pod, "kind"), "Pod"),
         "§1.5 object is a v1 Pod");
    RULE(st, s_t_str_eq(s_str(meta, "namespace"), ns), "§1.5 namespace = cluster namespace");
    /* §1.3 PodName: prefix cut to 50, "-head"/"-worker", lowercased, "-" */
    snprintf(expect, sizeof(expect), "%s%s%s", name, head ? "" : "-", head ? "" : gname);
    expect[PODBUILD_POD_PREFIX_MAX < strlen(expect) ? PODBUILD_POD_PREFIX_MAX : strlen(expect)] =
        '\0';
    size_t el = strlen(expect);
    snprintf(expect + el, sizeof(expect) - el, "%s", head ? "-head-" : "-worker-");
    for (char *p = expect; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    RULE(st, s_t_str_eq(s_str(meta, "generateName"), expect), "§1.3 generateName prefix rule");
    /* The builder's pod is KubeRay's: generateName only. The runtime names it when it sends the
     * create (ctrl_generate_name(): the API server's rule, generateName kept), so the pod that
     * lands has the name and generateName a KubeRay pod would, and a resent create meets 409. */
    RULE(st, !json_object_get(meta, "name"),
         "§1.3 no fixed name from the builder (the runtime names it at send, as the API server)");
    /* §1.4 labels */
    RULE(st, s_t_str_eq(s_str(labels, LABEL_IS_RAY_NODE), "yes"),
         "§1.4 label ray.io/is-ray-node=yes");
    RULE(st, s_t_str_eq(s_str(labels, LABEL_CLUSTER), name), "§1.4 label ray.io/cluster");
    RULE(st, s_t_str_eq(s_str(labels, LABEL_NODE_TYPE), head ? "head" : "worker"),
         "§1.4 label ray.io/node-type");
    RULE(st, s_t_str_eq(s_str(labels, LABEL_GROUP), gname), "§1.4 label ray.io/group");
    snprintf(expect, sizeof(expect), "%s-%s", name, head ? "head" : "worker");
    char *id = names_check_label(expect);
    RULE(st, s_t_str_eq(s_str(labels, LABEL_IDENTIFIER), id), "§1.4 label ray.io/identifier");
    free(id);
    const char *app = s_str(jx_get(tmpl, "metadata.labels"), LABEL_APP_NAME);
    const char *gapp = s_str(json_object_get(group, "labels"), LABEL_APP_NAME);
    RULE(st,
         s_t_str_eq(s_str(labels, LABEL_APP_NAME), gapp  ? gapp
                                                   : app ? app
                                                         : "kuberay"),
         "§1.4 label app.kubernetes.io/name");
    RULE(st, s_t_str_eq(s_str(labels, LABEL_CREATED_BY), "kuberay-operator"),
         "§1.4 label app.kubernetes.io/created-by");
    const char *k;
    json_t *v;
    json_object_foreach(jx_get(tmpl, "metadata.labels"), k, v)
    {
        if (strcmp(k, LABEL_NODE_TYPE) == 0 || strcmp(k, LABEL_GROUP) == 0 ||
            strcmp(k, LABEL_CLUSTER) == 0 || json_object_get(json_object_get(group, "labels"), k))
            continue;
        RULE(st, json_equal(json_object_get(labels, k), v), "§1.4 template label merged");
    }
    json_object_foreach(json_object_get(group, "labels"), k, v)
    {
        if (strcmp(k, LABEL_NODE_TYPE) == 0 || strcmp(k, LABEL_GROUP) == 0 ||
            strcmp(k, LABEL_CLUSTER) == 0)
            continue;
        RULE(st, json_equal(json_object_get(labels, k), v), "§1.4 group labels win");
    }
    if (!head) {
        RULE(st, s_t_str_eq(s_str(labels, LABEL_REPLICA_INDEX), "0"),
             "§1.4 RayMultiHostIndexing replica-index label");
        bool multi = jx_int(group, "numOfHosts", 1) > 1;
        const char *rn = s_str(labels, LABEL_REPLICA_NAME);
        RULE(st,
             multi ? (rn && strncmp(rn, gname, strlen(gname)) == 0 &&
                      strlen(rn) == strlen(gname) + 1 + S_RAND_LEN)
                   : rn == NULL,
             "§1.4 replica-name label iff numOfHosts>1, <group>-<rand5>");
        RULE(st,
             multi ? s_t_str_eq(s_str(labels, LABEL_HOST_INDEX), "0")
                   : !json_object_get(labels, LABEL_HOST_INDEX),
             "§1.4 replica-host-index label iff numOfHosts>1");
    }
    if (service)
        RULE(st, s_t_str_eq(s_str(labels, LABEL_SERVE), head ? "false" : "true"),
             "§1.4 RayService ray.io/serve label");
    /* owner reference */
    const json_t *own = jx_get(meta, "ownerReferences.0");
    RULE(st, json_array_size(json_object_get(meta, "ownerReferences")) == 1,
         "§1.3 one ownerReference");
    RULE(st,
         s_t_str_eq(s_str(own, "kind"), "RayCluster") &&
             s_t_str_eq(s_str(own, "apiVersion"), "ray.io/v1"),
         "§1.3 owner kind RayCluster ray.io/v1");
    RULE(st,
         s_t_str_eq(s_str(own, "name"), name) &&
             s_t_str_eq(s_str(own, "uid"), jx_str(rc, "metadata.uid", "")),
         "§1.3 owner name and uid");
    RULE(st,
         json_is_true(json_object_get(own, "controller")) &&
             json_is_true(json_object_get(own, "blockOwnerDeletion")),
         "§1.3 owner controller and blockOwnerDeletion");
    /* annotations */
    if (head) {
        RULE(st, s_t_str_eq(s_str(ann, ANN_FT_ENABLED), ft ? "true" : "false"),
             "§1.4 head ray.io/ft-enabled");
        RULE(st, s_t_str_eq(s_str(ann, ANN_KUBERAY_VERSION), PODBUILD_KUBERAY_VERSION),
             "§1.4 head ray.io/kuberay-version");
    } else {
        RULE(st, !json_object_get(ann, ANN_FT_ENABLED), "§1.4 ft-enabled on head only");
    }
    json_object_foreach(jx_get(tmpl, "metadata.annotations"), k, v)
    {
        RULE(st, json_equal(json_object_get(ann, k), v) || strcmp(k, ANN_FT_ENABLED) == 0,
             "§1.4 template annotations kept");
    }
    /* the ray start command (§1.6) */
    const char *start = s_t_env_value(ray, "KUBERAY_GEN_RAY_START_CMD");
    RULE(st, start != NULL, "§1.6 KUBERAY_GEN_RAY_START_CMD exported");
    if (!start)
        return;
    RULE(st, strncmp(start, head ? "ray start --head " : "ray start ", head ? 17 : 10) == 0,
         "§1.6 ray start prefix");
    RULE(st, s_t_sorted(start + (head ? 16 : 9)), "§1.6 flags sorted by key");
    char *f = s_t_flag(start, "block");
    RULE(st, f && !*f, "§1.6 --block always");
    free(f);
    f = s_t_flag(start, "metrics-export-port");
    RULE(st, f && (json_object_get(params, "metrics-export-port") || strcmp(f, "8080") == 0),
         "§1.6 --metrics-export-port default 8080");
    free(f);
    f = s_t_flag(start, "dashboard-agent-listen-port");
    RULE(st,
         f && (json_object_get(params, "dashboard-agent-listen-port") || strcmp(f, "52365") == 0),
         "§1.6 --dashboard-agent-listen-port default 52365");
    free(f);
    if (head) {
        f = s_t_flag(start, "dashboard-host");
        RULE(st, f && (json_object_get(params, "dashboard-host") || strcmp(f, "0.0.0.0") == 0),
             "§1.6 head --dashboard-host default 0.0.0.0");
        free(f);
        f = s_t_flag(start, "no-monitor");
        RULE(st, autoscaling ? f != NULL : true, "§1.5 autoscaling head --no-monitor");
        free(f);
    } else if (!json_object_get(params, "address")) {
        char *svc = names_head_service(name, spec);
        const char *port = s_str(jx_get(spec, "headGroupSpec.rayStartParams"), "port");
        snprintf(expect, sizeof(expect), "%s.%s.svc.cluster.local:%s", svc ? svc : "", ns,
                 port ? port : "6379");
        free(svc);
        f = s_t_flag(start, "address");
        RULE(st, s_t_str_eq(f, expect), "§1.6 worker --address=<head-svc FQDN>:<port>");
        free(f);
        *strrchr(expect, ':') = '\0';
        RULE(st, s_t_str_eq(s_t_env_value(ray, "FQ_RAY_IP"), expect),
             "§1.7 worker FQ_RAY_IP = head FQDN");
    }
    json_object_foreach((json_t *)params, k, v)
    {
        if (strcmp(k, "block") == 0 || !json_is_string(v))
            continue;
        const char *val = json_string_value(v);
        bool special = strcmp(k, "log-color") == 0 || strcmp(k, "include-dashboard") == 0 ||
                       strcmp(k, "include-log-monitor") == 0;
        const json_t *gres = json_object_get(group, "resources");
        if (json_object_size(gres) && (strcmp(k, "num-cpus") == 0 || strcmp(k, "memory") == 0 ||
                                       strcmp(k, "num-gpus") == 0 || strcmp(k, "resources") == 0))
            continue; /* group resources override (§1.6) */
        if (strcmp(k, "resources") == 0 || strcmp(k, "redis-password") == 0 ||
            strcmp(k, "redis-username") == 0)
            continue; /* may be rewritten (accelerators, GCS FT options) */
        f = s_t_flag(start, k);
        if ((s_lower_eq(val, "true") || s_lower_eq(val, "false")) && !special)
            RULE(st, s_lower_eq(val, "true") ? (f && !*f) : f == NULL,
                 "§1.6 boolean rayStartParam rendered --key or omitted");
        else
            RULE(st, s_t_str_eq(f, val), "§1.6 rayStartParam rendered --key=value verbatim");
        free(f);
    }
    const json_t *lim = jx_get(src_ray, "resources.limits");
    const json_t *req = jx_get(src_ray, "resources.requests");
    bool gres_cpu = false;
    bool gres_mem = false;
    json_object_foreach(json_object_get(group, "resources"), k, v)
    {
        gres_cpu = gres_cpu || strcasecmp(k, "cpu") == 0;
        gres_mem = gres_mem || strcasecmp(k, "memory") == 0;
    }
    bool want_cpu = json_object_get(params, "num-cpus") || gres_cpu ||
                    s_t_nonzero_qty(s_str(lim, "cpu")) || s_t_nonzero_qty(s_str(req, "cpu"));
    f = s_t_flag(start, "num-cpus");
    RULE(st, want_cpu == (f != NULL), "§1.6 --num-cpus iff param, group cpu or cpu limit/request");
    if (f && !json_object_get(params, "num-cpus") && !gres_cpu) {
        const char *q = s_t_nonzero_qty(s_str(lim, "cpu")) ? s_str(lim, "cpu") : s_str(req, "cpu");
        int64_t iv = 0;
        podbuild_quantity(q, &iv, NULL);
        snprintf(expect, sizeof(expect), "%lld", (long long)iv);
        RULE(st, strcmp(f, expect) == 0, "§1.6 --num-cpus = ceil(limit, else request)");
    }
    free(f);
    f = s_t_flag(start, "memory");
    RULE(st,
         (json_object_get(params, "memory") || gres_mem || s_t_nonzero_qty(s_str(lim, "memory"))) ==
             (f != NULL),
         "§1.6 --memory iff param, group memory or memory LIMIT (requests unused)");
    free(f);
    if (json_object_get(lim, "google.com/tpu") && !json_object_get(params, "resources") &&
        !json_object_size(json_object_get(group, "resources"))) {
        f = s_t_flag(start, "resources");
        RULE(st, f && strncmp(f, "'{\"TPU\":", 8) == 0, "§1.6 google.com/tpu -> '{\"TPU\":n}'");
        free(f);
    }
    /* command and args */
    buf_t user;
    buf_init(&user, PODBUILD_MAX_TEXT);
    s_cmd_string(json_object_get(src_ray, "command"), &user);
    s_cmd_string(json_object_get(src_ray, "args"), &user);
    bool overwrite =
        s_lower_eq(s_str(jx_get(rc, "metadata.annotations"), ANN_OVERWRITE_CONTAINER_CMD),
                   "true") ||
        s_lower_eq(s_str(jx_get(tmpl, "metadata.annotations"), ANN_OVERWRITE_CONTAINER_CMD),
                   "true");
    if (!overwrite && !strstr(buf_str(&user), "ray start")) {
        const json_t *cmd = json_object_get(ray, "command");
        RULE(st,
             json_array_size(cmd) == 3 &&
                 s_t_str_eq(json_string_value(json_array_get(cmd, 0)), "/bin/bash") &&
                 s_t_str_eq(json_string_value(json_array_get(cmd, 1)), "-c") &&
                 s_t_str_eq(json_string_value(json_array_get(cmd, 2)), "--"),
             "§1.6 command /bin/bash -c --");
        const char *a = json_string_value(json_array_get(json_object_get(ray, "args"), 0));
        snprintf(expect, sizeof(expect), "%s; ", S_ULIMIT);
        const char *u = a ? strstr(a, expect) : NULL;
        RULE(st,
             json_array_size(json_object_get(ray, "args")) == 1 && u &&
                 strcmp(u + strlen(expect), start) == 0,
             "§1.6 args end with the ulimit prefix + ray start");
        RULE(st, user.len == 0 ? u == a : (a && strncmp(a, buf_str(&user), user.len) == 0),
             "§1.6 user command first, then && ulimit");
    } else {
        RULE(st, json_equal(json_object_get(ray, "command"), json_object_get(src_ray, "command")),
             "§1.6 overwrite-container-cmd / user ray start keeps the command");
    }
    buf_free(&user);
    /* env (§1.7): user env first, in order; then the injected ones, in order */
    size_t i;
    json_t *e;
    size_t nuser = json_array_size(json_object_get(src_ray, "env"));
    json_array_foreach(json_object_get(src_ray, "env"), i, e)
    {
        RULE(st,
             json_equal(jx_get(ray, "env") ? json_array_get(json_object_get(ray, "env"), i) : NULL,
                        e),
             "§1.7 user env vars kept first, in order");
    }
    const char *order[16];
    int no = 0;
    if (!head) {
        order[no++] = "FQ_RAY_IP";
        order[no++] = "RAY_IP";
    }
    order[no++] = "RAY_CLUSTER_NAME";
    order[no++] = "RAY_CLUSTER_NAMESPACE";
    order[no++] = "RAY_CLOUD_INSTANCE_ID";
    order[no++] = "RAY_NODE_TYPE_NAME";
    order[no++] = "KUBERAY_GEN_RAY_START_CMD";
    static const char *const tail[] = {"RAY_PORT", "RAY_ADDRESS", "RAY_USAGE_STATS_KUBERAY_IN_USE",
                                       "RAY_USAGE_STATS_EXTRA_TAGS",
                                       "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE"};
    for (size_t t = 0; t < sizeof(tail) / sizeof(tail[0]); t++) {
        if (s_t_env_index(src_ray, tail[t]) >= 0)
            continue;
        if (!head && strcmp(tail[t], "RAY_USAGE_STATS_EXTRA_TAGS") == 0)
            continue;
        order[no++] = tail[t];
    }
    int last = (int)nuser - 1;
    for (int t = 0; t < no; t++) {
        int at = s_t_env_index(ray, order[t]);
        RULE(st, at > last, "§1.7 injected env var present, after user env, in append order");
        if (at > last)
            last = at;
    }
    const json_t *cn = s_t_named(json_object_get(ray, "env"), "RAY_CLUSTER_NAME");
    RULE(st,
         s_t_str_eq(jx_str(cn, "valueFrom.fieldRef.fieldPath", NULL),
                    "metadata.labels['ray.io/cluster']"),
         "§1.7 RAY_CLUSTER_NAME fieldRef");
    const json_t *nt = s_t_named(json_object_get(ray, "env"), "RAY_NODE_TYPE_NAME");
    RULE(st,
         s_t_str_eq(jx_str(nt, "valueFrom.fieldRef.fieldPath", NULL),
                    "metadata.labels['ray.io/group']"),
         "§1.7 RAY_NODE_TYPE_NAME fieldRef");
    const char *hp = s_str(jx_get(spec, "headGroupSpec.rayStartParams"), "port");
    if (s_t_env_index(src_ray, "RAY_PORT") < 0)
        RULE(st, s_t_str_eq(s_t_env_value(ray, "RAY_PORT"), hp ? hp : "6379"),
             "§1.7 RAY_PORT = head port");
    if (head && s_t_env_index(src_ray, "RAY_ADDRESS") < 0) {
        snprintf(expect, sizeof(expect), "127.0.0.1:%s", hp ? hp : "6379");
        RULE(st, s_t_str_eq(s_t_env_value(ray, "RAY_ADDRESS"), expect),
             "§1.7 head RAY_ADDRESS=127.0.0.1:<port>");
    }
    if (head) {
        snprintf(expect, sizeof(expect), "kuberay_version=%s;kuberay_crd=%s",
                 PODBUILD_KUBERAY_VERSION, crd ? crd : "RayCluster");
        RULE(st, s_t_str_eq(s_t_env_value(ray, "RAY_USAGE_STATS_EXTRA_TAGS"), expect),
             "§1.7 RAY_USAGE_STATS_EXTRA_TAGS");
    }
    if (service && s_t_env_index(src_ray, "RAY_SERVE_KV_TIMEOUT_S") < 0)
        RULE(st, s_t_str_eq(s_t_env_value(ray, "RAY_SERVE_KV_TIMEOUT_S"), "5"),
             "§1.7 RayService RAY_SERVE_KV_TIMEOUT_S=5");
    /* ports (§1.5 step 6, §1.8) */
    json_array_foreach(json_object_get(src_ray, "ports"), i, e)
    {
        RULE(st, json_equal(json_array_get(json_object_get(ray, "ports"), i), e),
             "§1.8 user ports kept in order");
    }
    RULE(st, s_has_port(ray, "metrics"), "§1.8 metrics port present");
    if (!s_has_port(src_ray, "metrics"))
        RULE(st, s_container_port(ray, "metrics", -1) == 8080, "§1.8 metrics port 8080 added");
    /* probes (§1.8) */
    bool http = s_http_probes(s_str(spec, "rayVersion"));
    for (int pi = 0; pi < 2; pi++) {
        const char *key = pi == 0 ? "livenessProbe" : "readinessProbe";
        if (json_object_get(src_ray, key)) {
            RULE(st, json_equal(json_object_get(ray, key), json_object_get(src_ray, key)),
                 "§1.8 user probe kept");
            continue;
        }
        const json_t *p = json_object_get(ray, key);
        bool serve = pi == 1 && service && !head;
        RULE(st, jx_int(p, "initialDelaySeconds", -1) == (pi == 0 ? 30 : 10),
             "§1.8 probe initialDelaySeconds 30/10");
        RULE(st, jx_int(p, "timeoutSeconds", -1) == (head ? 5 : 2),
             "§1.8 probe timeout head 5 worker 2");
        RULE(st, jx_int(p, "periodSeconds", -1) == 5 && jx_int(p, "successThreshold", -1) == 1,
             "§1.8 probe period 5 success 1");
        RULE(st,
             jx_int(p, "failureThreshold", -1) == (pi == 0 ? 120
                                                   : serve ? 1
                                                           : 10),
             "§1.8 probe failureThreshold 120/10 (RayService worker readiness 1)");
        if (http && !serve) {
            RULE(st, s_t_str_eq(jx_str(p, "httpGet.path", NULL), "/api/healthz"),
                 "§1.8 Ray >= 2.53 httpGet /api/healthz");
        } else {
            const char *c3 = jx_str(p, "exec.command.2", NULL);
            RULE(st,
                 s_t_str_eq(jx_str(p, "exec.command.0", NULL), "bash") && c3 &&
                     strstr(c3, "/api/local_raylet_healthz | grep success"),
                 "§1.8 exec wget raylet health");
            RULE(st, head == (c3 && strstr(c3, "/api/gcs_healthz") != NULL),
                 "§1.8 head exec adds gcs_healthz");
            if (serve)
                RULE(st, c3 && strstr(c3, "/-/healthz | grep success"),
                     "§1.8 RayService worker readiness adds serve health");
        }
    }
    /* /dev/shm (§1.5) */
    bool user_shm = false;
    json_array_foreach(json_object_get(src_ray, "volumeMounts"), i, e)
    {
        user_shm = user_shm || s_t_str_eq(s_str(e, "mountPath"), S_SHM_PATH);
    }
    if (!json_object_get(params, "plasma-directory") && !user_shm) {
        const json_t *vol = s_t_named(json_object_get(pspec, "volumes"), S_SHM_VOLUME);
        RULE(st, s_t_str_eq(jx_str(vol, "emptyDir.medium", NULL), "Memory"),
             "§1.5 shared-mem emptyDir medium Memory");
        const char *want = s_str(lim, "memory") ? s_str(lim, "memory") : s_str(req, "memory");
        RULE(st,
             want ? s_t_str_eq(jx_str(vol, "emptyDir.sizeLimit", NULL), want)
                  : !jx_get(vol, "emptyDir.sizeLimit"),
             "§1.5 /dev/shm sizeLimit = memory limit, else request");
        int mounts = 0;
        json_array_foreach(json_object_get(ray, "volumeMounts"), i, e)
        {
            mounts += s_t_str_eq(s_str(e, "mountPath"), S_SHM_PATH) &&
                      s_t_str_eq(s_str(e, "name"), S_SHM_VOLUME);
        }
        RULE(st, mounts == 1, "§1.5 /dev/shm mounted once in the Ray container");
    }
    /* init containers (§1.8) */
    const json_t *ics = json_object_get(pspec, "initContainers");
    const json_t *wait = s_t_named(ics, S_WAIT_GCS);
    RULE(st, head ? wait == NULL : wait != NULL, "§1.8 wait-gcs-ready on workers only");
    if (wait) {
        RULE(st, s_t_str_eq(s_str(wait, "image"), s_str(ray, "image")),
             "§1.8 wait-gcs-ready uses the Ray image");
        RULE(st,
             s_t_str_eq(jx_str(wait, "resources.limits.cpu", NULL), "200m") &&
                 s_t_str_eq(jx_str(wait, "resources.requests.memory", NULL), "256Mi"),
             "§1.8 wait-gcs-ready resources 200m/256Mi");
        const char *a = jx_str(wait, "args.0", NULL);
        RULE(st, a && strstr(a, "ray health-check --address"), "§1.8 wait-gcs-ready health-check");
    }
    json_array_foreach(ics, i, e)
    {
        size_t n = json_array_size(json_object_get(e, "env"));
        RULE(st,
             n >= 2 &&
                 s_t_str_eq(s_str(json_array_get(json_object_get(e, "env"), n - 2), "name"),
                            "FQ_RAY_IP") &&
                 s_t_str_eq(s_str(json_array_get(json_object_get(e, "env"), n - 1), "name"),
                            "RAY_IP"),
             "§1.7 every init container gets FQ_RAY_IP and RAY_IP appended");
    }
    /* autoscaler (§4.2) */
    const json_t *as = s_t_named(json_object_get(pspec, "containers"), S_AUTOSCALER);
    size_t ncont = json_array_size(jx_get(tmpl, "spec.containers"));
    if (head && autoscaling) {
        RULE(st, as != NULL, "§4.2 autoscaler container on the head");
        RULE(st, json_array_size(json_object_get(pspec, "containers")) == ncont + 1,
             "§4.2 autoscaler appended after the template containers");
        RULE(st, s_str(pspec, "serviceAccountName") != NULL, "§1.5 head serviceAccountName set");
        RULE(st,
             s_t_str_eq(jx_str(as, "command.0", NULL), "/bin/bash") &&
                 (json_object_get(jx_get(spec, "autoscalerOptions"), "args") ||
                  s_t_str_eq(jx_str(as, "args.0", NULL), S_AUTOSCALER_CMD)),
             "§4.2 autoscaler command");
        RULE(st,
             s_t_env_index(as, "KUBERAY_CRD_VER") >= 0 &&
                 s_t_env_index(as, "RAY_HEAD_POD_NAME") >= 0,
             "§4.2 autoscaler env");
        RULE(st, s_t_named(json_object_get(pspec, "volumes"), S_LOG_VOLUME) != NULL,
             "§1.5 ray-logs volume with autoscaling");
    } else {
        RULE(st, as == NULL || s_t_named(jx_get(tmpl, "spec.containers"), S_AUTOSCALER),
             "§4.2 no autoscaler container without autoscaling / on workers");
        RULE(st, json_array_size(json_object_get(pspec, "containers")) == ncont,
             "§1.5 containers = template containers");
    }
    /* GCS FT (§4.1) */
    if (!head)
        RULE(st,
             ft == (s_t_env_index(ray, "RAY_gcs_rpc_server_reconnect_timeout_s") >= 0) ||
                 s_t_env_index(src_ray, "RAY_gcs_rpc_server_reconnect_timeout_s") >= 0,
             "§4.1 worker RAY_gcs_rpc_server_reconnect_timeout_s iff FT");
    else if (ft && !s_t_str_eq(jx_str(spec, "gcsFaultToleranceOptions.backend", NULL), "rocksdb")) {
        RULE(st, s_t_env_index(ray, "RAY_external_storage_namespace") >= 0,
             "§4.1 head RAY_external_storage_namespace");
        RULE(st, s_str(ann, ANN_EXTERNAL_STORAGE_NS) != NULL,
             "§4.1 head ray.io/external-storage-namespace annotation");
        if (json_is_object(json_object_get(spec, "gcsFaultToleranceOptions")))
            RULE(st, s_t_env_index(ray, "RAY_REDIS_ADDRESS") >= 0, "§4.1 head RAY_REDIS_ADDRESS");
    }
    /* auth (§4.5) */
    if (s_lower_eq(jx_str(spec, "authOptions.mode", NULL), "token"))
        RULE(st, s_t_str_eq(s_t_env_value(ray, "RAY_AUTH_MODE"), "token"),
             "§4.5 RAY_AUTH_MODE=token");
}

/* Wraps a sample document as the RayCluster KubeRay would see: RayClusters as they are, the
 * rayClusterSpec of RayJobs and RayServices as a RayCluster named after the sample and labelled
 * with its origin; plus the few API-server defaults the builders' output depends on. NULL when
 * the document is not one of those (or a RayJob without rayClusterSpec). */
static json_t *s_t_wrap(const json_t *doc)
{
    const char *kind = s_str(doc, "kind");
    const char *name = jx_str(doc, "metadata.name", NULL);
    json_t *rc = NULL;
    if (!kind || !name)
        return NULL;
    if (strcmp(kind, "RayCluster") == 0) {
        rc = json_deep_copy(doc);
    } else if (strcmp(kind, "RayJob") == 0 || strcmp(kind, "RayService") == 0) {
        /* RayJob: spec.rayClusterSpec; RayService: spec.rayClusterConfig */
        const json_t *spec = jx_get(doc, strcmp(kind, "RayJob") == 0 ? "spec.rayClusterSpec"
                                                                     : "spec.rayClusterConfig");
        if (!json_is_object(spec))
            return NULL;
        rc = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}}, s:O}", "apiVersion", "ray.io/v1", "kind",
                       "RayCluster", "metadata", "name", name, "labels", LABEL_ORIGINATED_FROM_CRD,
                       kind, LABEL_ORIGINATED_FROM_CR_NAME, name, "spec", spec);
    }
    if (!rc)
        return NULL;
    json_t *meta = jx_child_obj(rc, "metadata");
    if (!json_object_get(meta, "namespace"))
        json_object_set_new(meta, "namespace", json_string("default"));
    char uid[128];
    snprintf(uid, sizeof(uid), "00000000-0000-4000-8000-%012zx", strlen(name) * 7919u);
    json_object_set_new(meta, "uid", json_string(uid));
    return rc;
}

/* Applies the CRD defaults that show in built Pods: container port protocol TCP. */
static void s_t_defaults(json_t *rc)
{
    json_t *groups[64];
    size_t ng = 0;
    groups[ng++] = jx_get(rc, "spec.headGroupSpec");
    size_t i;
    json_t *g;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), i, g)
    {
        if (ng < sizeof(groups) / sizeof(groups[0]))
            groups[ng++] = g;
    }
    for (size_t gi = 0; gi < ng; gi++) {
        static const char *const lists[] = {"spec.template.spec.containers",
                                            "spec.template.spec.initContainers"};
        for (int l = 0; l < 2; l++) {
            size_t ci;
            json_t *c;
            json_array_foreach(jx_get(groups[gi], lists[l] + 5), ci, c)
            {
                size_t pi;
                json_t *p;
                json_array_foreach(json_object_get(c, "ports"), pi, p)
                {
                    if (!json_object_get(p, "protocol"))
                        json_object_set_new(p, "protocol", json_string("TCP"));
                }
            }
        }
    }
}

/* Where the golden files live: $RF_GOLDEN_DIR, else <repo>/tests/golden/podbuild from __FILE__. */
static void s_t_golden_path(const char *sample, char *out, size_t n)
{
    const char *env = getenv("RF_GOLDEN_DIR");
    if (env && *env) {
        snprintf(out, n, "%s/podbuild/%s.json", env, sample);
        return;
    }
    char root[1024];
    snprintf(root, sizeof(root), "%s", __FILE__);
    char *cut = strstr(root, "kuberay/podbuild.c");
    if (cut)
        *cut = '\0';
    else
        snprintf(root, sizeof(root), "./");
    snprintf(out, n, "%stests/golden/podbuild/%s.json", root, sample);
}

/* Compares (or with RF_UPDATE_GOLDEN=1 writes) the golden file of `sample`. */
static int s_t_golden(const char *sample, const json_t *got)
{
    char path[1200];
    s_t_golden_path(sample, path, sizeof(path));
    const char *upd = getenv("RF_UPDATE_GOLDEN");
    if (upd && strcmp(upd, "1") == 0) {
        char dir[1200];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            char *up = strrchr(dir, '/');
            if (up) {
                *up = '\0';
                mkdir(dir, 0755);
                *up = '/';
            }
            mkdir(dir, 0755);
        }
        if (json_dump_file(got, path, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) {
            printf("podbuild: cannot write golden %s\n", path);
            return -1;
        }
        FILE *fp = fopen(path, "a");
        if (fp) {
            fputc('\n', fp);
            fclose(fp);
        }
        return 0;
    }
    json_error_t jerr;
    json_t *want = json_load_file(path, 0, &jerr);
    if (!want) {
        printf("podbuild: golden %s missing or unreadable (%s); run with RF_UPDATE_GOLDEN=1\n",
               path, jerr.text);
        return -1;
    }
    int rc = json_equal(want, got) ? 0 : -1;
    if (rc)
        printf("podbuild: %s differs from the golden %s\n", sample, path);
    json_decref(want);
    return rc;
}

/* Builds every Pod of `rc`; {"head": pod, "workers": [pod per group]} or NULL (printed). */
static json_t *s_t_build_all(const json_t *rc, const char *sample)
{
    buf_t err;
    json_t *head = NULL;
    buf_init(&err, 4096);
    int r = podbuild_head(rc, NULL, &head, &err);
    json_t *workers = json_array();
    size_t n = json_array_size(jx_get(rc, "spec.workerGroupSpecs"));
    for (size_t i = 0; r == 0 && i < n; i++) {
        json_t *w = NULL;
        r = podbuild_worker(rc, (int)i, NULL, &w, &err);
        if (r == 0)
            json_array_append_new(workers, w);
    }
    if (r) {
        printf("podbuild: %s: cannot build pods: %s (%s)\n", sample, err_str(r), buf_str(&err));
        json_decref(head);
        json_decref(workers);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    return json_pack("{s:o, s:o}", "head", head, "workers", workers);
}

typedef struct {
    int samples; /* sample clusters built */
    int pods; /* pods checked */
    int rules; /* rules checked */
    int failed; /* rule failures */
    int unbuilt; /* clusters that could not be built */
} s_t_totals_t;

static void s_t_conform(const json_t *rc, const char *sample, s_t_totals_t *tot)
{
    json_t *all = s_t_build_all(rc, sample);
    if (!all) {
        tot->unbuilt++;
        tot->failed++;
        return;
    }
    tot->samples++;
    s_chk_t st = {sample, "head", 0, 0};
    s_t_check_pod(&st, rc, json_object_get(all, "head"), true, jx_get(rc, "spec.headGroupSpec"));
    tot->pods++;
    size_t i;
    json_t *g;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), i, g)
    {
        st.pod = s_str(g, "groupName");
        s_t_check_pod(&st, rc, json_array_get(json_object_get(all, "workers"), i), false, g);
        tot->pods++;
    }
    tot->rules += st.rules;
    tot->failed += st.failed;
    json_decref(all);
}

static void s_t_walk(const char *dir, s_t_totals_t *tot, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d || depth > 4) {
        if (d)
            closedir(d);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            s_t_walk(path, tot, depth + 1);
            continue;
        }
        size_t n = strlen(de->d_name);
        if (n < 5 || (strcmp(de->d_name + n - 5, ".yaml") != 0 &&
                      (n < 4 || strcmp(de->d_name + n - 4, ".yml") != 0)))
            continue;
        json_t *docs = NULL;
        buf_t err;
        buf_init(&err, 4096);
        if (yaml_load_file(path, 8u << 20, &docs, &err) != 0) {
            printf("podbuild: %s: not loadable: %s\n", de->d_name, buf_str(&err));
            buf_free(&err);
            continue;
        }
        buf_free(&err);
        size_t i;
        json_t *doc;
        json_array_foreach(docs, i, doc)
        {
            json_t *rc = s_t_wrap(doc);
            if (!rc)
                continue;
            s_t_defaults(rc);
            char label[512];
            snprintf(label, sizeof(label), "%s#%s", de->d_name, jx_str(rc, "metadata.name", ""));
            s_t_conform(rc, label, tot);
            json_decref(rc);
        }
        json_decref(docs);
    }
    closedir(d);
}

static json_t *s_t_load_sample(const char *shared, const char *file)
{
    char path[2048];
    json_t *docs = NULL;
    snprintf(path, sizeof(path), "%s/kuberay/samples/%s", shared, file);
    if (yaml_load_file(path, 8u << 20, &docs, NULL) != 0)
        return NULL;
    json_t *rc = NULL;
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        if (!rc)
            rc = s_t_wrap(doc);
    }
    json_decref(docs);
    if (rc)
        s_t_defaults(rc);
    return rc;
}

static const char *s_t_ray_env(const json_t *all, int worker, const char *name)
{
    const json_t *pod = worker < 0
                            ? json_object_get(all, "head")
                            : json_array_get(json_object_get(all, "workers"), (size_t)worker);
    return s_t_env_value(jx_get(pod, "spec.containers.0"), name);
}

static bool s_t_env_names(const json_t *container, const char *const *names, size_t n)
{
    const json_t *env = json_object_get(container, "env");
    if (json_array_size(env) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!s_t_str_eq(s_str(json_array_get(env, i), "name"), names[i]))
            return false;
    }
    return true;
}

/* Exact, hand-computed expectations for the five reference clusters, plus their goldens. */
static int s_t_exact(const char *shared)
{
    int failed = 0;
    static const char *const golden[] = {
        "ray-cluster.sample.yaml", "ray-cluster.complete.yaml", "ray-cluster.autoscaler.yaml",
        "ray-cluster.external-redis.yaml", "ray-cluster.tpu-v4-multihost.yaml"};
    for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
        json_t *rc = s_t_load_sample(shared, golden[g]);
        CHECK(rc != NULL);
        json_t *all = rc ? s_t_build_all(rc, golden[g]) : NULL;
        CHECK(all != NULL);
        if (all) {
            char base[256];
            snprintf(base, sizeof(base), "%s", golden[g]);
            base[strlen(base) - 5] = '\0';
            CHECK(s_t_golden(base, all) == 0);
        }
        if (all && g == 0) {
            /* ray-cluster.sample.yaml: head cpu 1 / memory 5Gi, worker cpu 1 / memory 1Gi */
            CHECK(s_t_str_eq(s_t_ray_env(all, -1, "KUBERAY_GEN_RAY_START_CMD"),
                             "ray start --head  --block  --dashboard-agent-listen-port=52365  "
                             "--dashboard-host=0.0.0.0  --memory=5368709120  "
                             "--metrics-export-port=8080  --num-cpus=1 "));
            CHECK(s_t_str_eq(
                jx_str(json_object_get(all, "head"), "spec.containers.0.args.0", NULL),
                "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start --head  --block  "
                "--dashboard-agent-listen-port=52365  --dashboard-host=0.0.0.0  "
                "--memory=5368709120  --metrics-export-port=8080  --num-cpus=1 "));
            static const char *const head_env[] = {"RAY_CLUSTER_NAME",
                                                   "RAY_CLUSTER_NAMESPACE",
                                                   "RAY_CLOUD_INSTANCE_ID",
                                                   "RAY_NODE_TYPE_NAME",
                                                   "KUBERAY_GEN_RAY_START_CMD",
                                                   "RAY_PORT",
                                                   "RAY_ADDRESS",
                                                   "RAY_USAGE_STATS_KUBERAY_IN_USE",
                                                   "RAY_USAGE_STATS_EXTRA_TAGS",
                                                   "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE"};
            CHECK(s_t_env_names(jx_get(json_object_get(all, "head"), "spec.containers.0"), head_env,
                                sizeof(head_env) / sizeof(head_env[0])));
            CHECK(s_t_str_eq(s_t_ray_env(all, -1, "RAY_ADDRESS"), "127.0.0.1:6379"));
            CHECK(s_t_str_eq(s_t_ray_env(all, -1, "RAY_USAGE_STATS_EXTRA_TAGS"),
                             "kuberay_version=v1.7.0;kuberay_crd=RayCluster"));
            CHECK(s_t_str_eq(s_t_ray_env(all, 0, "KUBERAY_GEN_RAY_START_CMD"),
                             "ray start  --address=raycluster-kuberay-head-svc.default.svc."
                             "cluster.local:6379  --block  --dashboard-agent-listen-port=52365  "
                             "--memory=1073741824  --metrics-export-port=8080  --num-cpus=1 "));
            static const char *const worker_env[] = {"FQ_RAY_IP",
                                                     "RAY_IP",
                                                     "RAY_CLUSTER_NAME",
                                                     "RAY_CLUSTER_NAMESPACE",
                                                     "RAY_CLOUD_INSTANCE_ID",
                                                     "RAY_NODE_TYPE_NAME",
                                                     "KUBERAY_GEN_RAY_START_CMD",
                                                     "RAY_PORT",
                                                     "RAY_ADDRESS",
                                                     "RAY_USAGE_STATS_KUBERAY_IN_USE",
                                                     "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE"};
            const json_t *w = json_array_get(json_object_get(all, "workers"), 0);
            CHECK(s_t_env_names(jx_get(w, "spec.containers.0"), worker_env,
                                sizeof(worker_env) / sizeof(worker_env[0])));
            CHECK(s_t_str_eq(s_t_ray_env(all, 0, "RAY_IP"), "raycluster-kuberay-head-svc"));
            CHECK(s_t_str_eq(jx_str(w, "metadata.generateName", NULL),
                             "raycluster-kuberay-workergroup-worker-"));
            CHECK(s_t_str_eq(jx_str(json_object_get(all, "head"), "metadata.generateName", NULL),
                             "raycluster-kuberay-head-"));
            /* rayVersion 2.52.0 < 2.53.0: exec probes */
            CHECK(s_t_str_eq(
                jx_str(json_object_get(all, "head"),
                       "spec.containers.0.livenessProbe.exec.command.2", NULL),
                "wget --tries 1 -T 2 -q -O- http://localhost:52365/api/local_raylet_healthz | grep "
                "success && wget --tries 1 -T 10 -q -O- http://localhost:8265/api/gcs_healthz | "
                "grep success"));
            CHECK(s_t_str_eq(jx_str(w, "spec.volumes.0.emptyDir.sizeLimit", NULL), "1Gi"));
        }
        if (all && g == 2) {
            const json_t *h = json_object_get(all, "head");
            const json_t *as = s_t_named(jx_get(h, "spec.containers"), S_AUTOSCALER);
            CHECK(as != NULL);
            CHECK(s_t_str_eq(jx_str(h, "spec.serviceAccountName", NULL), "raycluster-autoscaler"));
            CHECK(s_t_str_eq(s_t_env_value(as, "KUBERAY_GEN_AUTOSCALER_START_CMD"),
                             S_AUTOSCALER_CMD));
            const char *cmd = s_t_ray_env(all, -1, "KUBERAY_GEN_RAY_START_CMD");
            CHECK(cmd && strstr(cmd, "  --no-monitor  ") != NULL);
        }
        if (all && g == 3) {
            CHECK(s_t_str_eq(s_t_ray_env(all, -1, "KUBERAY_GEN_RAY_START_CMD"),
                             "ray start --head  --block  --dashboard-agent-listen-port=52365  "
                             "--dashboard-host=0.0.0.0  --memory=5368709120  "
                             "--metrics-export-port=8080  --num-cpus=0  "
                             "--redis-password=$REDIS_PASSWORD "));
            CHECK(s_t_str_eq(s_t_ray_env(all, -1, "RAY_REDIS_ADDRESS"), "redis:6379"));
            CHECK(s_t_str_eq(s_t_ray_env(all, -1, "RAY_external_storage_namespace"),
                             jx_str(rc, "metadata.uid", NULL)));
            CHECK(s_t_str_eq(
                s_str(jx_getv(json_object_get(all, "head"), "metadata", "annotations", NULL),
                      ANN_FT_ENABLED),
                "true"));
            CHECK(s_t_str_eq(s_t_ray_env(all, 0, "RAY_gcs_rpc_server_reconnect_timeout_s"), "600"));
        }
        if (all && g == 4) {
            const json_t *w = json_array_get(json_object_get(all, "workers"), 0);
            CHECK(s_t_str_eq(s_t_ray_env(all, 0, "KUBERAY_GEN_RAY_START_CMD"),
                             "ray start  --address=raycluster-tpu-v4-multihost-head-svc.default."
                             "svc.cluster.local:6379  --block  --dashboard-agent-listen-port=52365"
                             "  --memory=40000000000  --metrics-export-port=8080  --num-cpus=1  "
                             "--resources='{\"TPU\":4}' "));
            const json_t *l = jx_get(w, "metadata.labels");
            CHECK(s_t_str_eq(s_str(l, LABEL_HOST_INDEX), "0"));
            CHECK(s_t_str_eq(s_str(l, LABEL_REPLICA_INDEX), "0"));
            const char *rn = s_str(l, LABEL_REPLICA_NAME);
            CHECK(rn && strncmp(rn, "tpu-group-", 10) == 0 && strlen(rn) == 15);
            podbuild_replica_t rep = {3, "tpu-group-abcde", 1};
            json_t *w2 = NULL;
            CHECK(podbuild_worker_ex(rc, 0, &rep, NULL, &w2, NULL) == 0);
            l = jx_get(w2, "metadata.labels");
            CHECK(s_t_str_eq(s_str(l, LABEL_REPLICA_NAME), "tpu-group-abcde"));
            CHECK(s_t_str_eq(s_str(l, LABEL_HOST_INDEX), "1"));
            CHECK(s_t_str_eq(s_str(l, LABEL_REPLICA_INDEX), "3"));
            json_decref(w2);
        }
        json_decref(all);
        json_decref(rc);
    }
    return failed;
}

/* Unit checks of the helpers and the failure paths. */
static int s_t_units(void)
{
    int failed = 0;
    int64_t iv = 0;
    double f = 0;
    CHECK(podbuild_quantity("500m", &iv, &f) == 0 && iv == 1 && f == 0.5);
    CHECK(podbuild_quantity("5Gi", &iv, NULL) == 0 && iv == 5368709120LL);
    CHECK(podbuild_quantity("40G", &iv, NULL) == 0 && iv == 40000000000LL);
    CHECK(podbuild_quantity("1e3", &iv, NULL) == 0 && iv == 1000);
    CHECK(podbuild_quantity("1.5", &iv, NULL) == 0 && iv == 2);
    CHECK(podbuild_quantity("0", &iv, &f) == 0 && iv == 0 && f == 0);
    CHECK(podbuild_quantity("abc", &iv, NULL) == ERR_INVAL);
    CHECK(podbuild_quantity("1Xi", &iv, NULL) == ERR_INVAL);
    CHECK(podbuild_quantity("", &iv, NULL) == ERR_INVAL);
    CHECK(podbuild_quantity(NULL, &iv, NULL) == ERR_INVAL);
    buf_t b;
    buf_init(&b, 4096);
    json_t *m = json_pack("{s:f, s:f, s:f}", "b", 0.5, "a", 4.0, "c", 1e-7);
    CHECK(s_marshal_resources(m, &b) == 0 &&
          s_t_str_eq(buf_str(&b), "{\"a\":4,\"b\":0.5,\"c\":1e-7}"));
    json_decref(m);
    buf_reset(&b);
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "num-cpus", "2", "block", "true",
                          "log-color", "false", "disable-usage-stats", "False", "port", "6380");
    CHECK(podbuild_start_command(p, false, &b) == 0 &&
          s_t_str_eq(buf_str(&b), "ray start  --block  --log-color=false  --num-cpus=2  "
                                  "--port=6380 "));
    CHECK(podbuild_start_command(NULL, true, &b) == ERR_INVAL);
    json_decref(p);
    CHECK(s_is_gpu_key("nvidia.com/gpu") && s_is_gpu_key("nvidia.com/mig-1g.5gb") &&
          !s_is_gpu_key("google.com/tpu"));
    CHECK(s_http_probes("2.53.0") && s_http_probes("v2.60") && !s_http_probes("2.52.1") &&
          !s_http_probes("nightly") && !s_http_probes(NULL));
    /* failure paths */
    json_t *pod = (json_t *)1;
    buf_reset(&b);
    json_t *bad = json_pack("{s:{s:s}, s:{s:{s:{s:[]}}}}", "metadata", "name", "x", "spec",
                            "headGroupSpec", "template", "containers");
    CHECK(podbuild_head(bad, NULL, &pod, &b) == ERR_INVAL && pod == NULL);
    CHECK(strstr(buf_str(&b), "at least one container") != NULL);
    CHECK(podbuild_worker(bad, 0, NULL, &pod, NULL) == ERR_INVAL && pod == NULL);
    CHECK(podbuild_head(bad, NULL, NULL, NULL) == ERR_INVAL);
    json_decref(bad);
    CHECK(podbuild_head(NULL, NULL, &pod, NULL) == ERR_INVAL);
    /* options: deterministic head name, login shell, defaults, sidecars, cluster domain */
    json_t *rc = json_pack(
        "{s:{s:s, s:s, s:s}, s:{s:{s:{s:s}, s:{s:{s:[{s:s, s:s, s:[s]}]}}}, s:b, "
        "s:[{s:s, s:{s:{s:[{s:s, s:s}]}}}]}}",
        "metadata", "name", "c1", "namespace", "ns1", "uid", "u1", "spec", "headGroupSpec",
        "rayStartParams", "port", "6380", "template", "spec", "containers", "name", "ray", "image",
        "img", "command", "echo hi", "enableInTreeAutoscaling", 1, "workerGroupSpecs", "groupName",
        "g", "template", "spec", "containers", "name", "w", "image", "img");
    podbuild_opts_t o;
    podbuild_opts_init(&o);
    o.deterministic_head_name = true;
    o.login_shell = true;
    o.cluster_domain = "corp.local";
    json_t *envs = json_pack("[{s:s, s:s}]", "name", "FOO", "value", "bar");
    json_t *dl = json_pack("{s:s, s:s}", "team", "a", "ray.io/cluster", "nope");
    json_t *side = json_pack("[{s:s}]", "name", "side");
    o.default_container_envs = envs;
    o.default_pod_labels = dl;
    o.head_sidecars = side;
    o.recreate_hash = "HASH";
    CHECK(podbuild_head(rc, &o, &pod, NULL) == 0);
    CHECK(s_t_str_eq(jx_str(pod, "metadata.name", NULL), "c1-head"));
    CHECK(jx_get(pod, "metadata.generateName") == NULL);
    CHECK(s_t_str_eq(jx_str(pod, "spec.containers.0.command.1", NULL), "-lc"));
    CHECK(s_t_str_eq(jx_str(pod, "spec.containers.0.args.0", NULL),
                     " echo hi  && ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start "
                     "--head  --block  --dashboard-agent-listen-port=52365  "
                     "--dashboard-host=0.0.0.0  --metrics-export-port=8080  --no-monitor  "
                     "--port=6380 "));
    CHECK(s_t_str_eq(jx_str(pod, "spec.containers.0.env.0.name", NULL), "FOO"));
    CHECK(s_t_str_eq(s_str(jx_get(pod, "metadata.labels"), "team"), "a"));
    CHECK(s_t_str_eq(s_str(jx_get(pod, "metadata.labels"), "ray.io/cluster"), "c1"));
    CHECK(s_t_str_eq(jx_str(pod, "spec.containers.2.name", NULL), "side"));
    CHECK(s_t_str_eq(jx_str(pod, "spec.containers.1.name", NULL), "autoscaler"));
    CHECK(s_t_str_eq(s_str(jx_get(pod, "metadata.annotations"), ANN_RECREATE_HASH), "HASH"));
    CHECK(s_t_str_eq(s_t_env_value(jx_get(pod, "spec.containers.0"), "RAY_ADDRESS"),
                     "127.0.0.1:6380"));
    json_decref(pod);
    pod = NULL;
    o.init_container_injection = false;
    o.probes_injection = false;
    CHECK(podbuild_worker(rc, 0, &o, &pod, NULL) == 0);
    CHECK(jx_get(pod, "spec.initContainers") == NULL);
    CHECK(jx_get(pod, "spec.containers.0.livenessProbe") == NULL);
    CHECK(s_t_str_eq(s_t_env_value(jx_get(pod, "spec.containers.0"), "FQ_RAY_IP"),
                     "c1-head-svc.ns1.svc.corp.local"));
    json_decref(pod);
    /* --batch-scheduler: the plugin's metadata is added last, with the pod's group */
    o.batch_scheduler = BATCHSCHED_VOLCANO;
    CHECK(podbuild_worker(rc, 0, &o, &pod, NULL) == 0);
    CHECK(s_t_str_eq(jx_str(pod, "spec.schedulerName", NULL), "volcano"));
    CHECK(s_t_str_eq(s_str(jx_get(pod, "metadata.annotations"), "volcano.sh/task-spec"), "g"));
    CHECK(s_t_str_eq(s_str(jx_get(pod, "metadata.annotations"), "scheduling.k8s.io/group-name"),
                     "ray-c1-pg"));
    json_decref(pod);
    CHECK(podbuild_head(rc, &o, &pod, NULL) == 0);
    CHECK(s_t_str_eq(s_str(jx_get(pod, "metadata.annotations"), "volcano.sh/task-spec"),
                     "headgroup"));
    json_decref(pod);
    o.batch_scheduler = BATCHSCHED_NONE;
    pod = (json_t *)1;
    CHECK(podbuild_worker(rc, 1, &o, &pod, &b) == ERR_INVAL && pod == NULL);
    CHECK(podbuild_worker(rc, -1, &o, &pod, NULL) == ERR_INVAL);
    CHECK(podbuild_ray_container_index(jx_get(rc, "spec.headGroupSpec.template")) == 0);
    CHECK(podbuild_ray_container_index(NULL) == -1);
    json_decref(envs);
    json_decref(dl);
    json_decref(side);
    json_decref(rc);
    buf_free(&b);
    return failed;
}

/* §4.9/§1.5/§1.7 item 11: the history-server sample with the gate on, field by field; off: no
 * collector. */
static int s_t_history(const char *shared)
{
    int failed = 0;
    json_t *rc = shared ? s_t_load_sample(shared, "ray-cluster.historyserver.yaml") : NULL;
    if (!shared)
        return 0;
    CHECK(rc != NULL);
    if (!rc)
        return failed;
    const char *ns = jx_str(rc, "metadata.namespace", "default");
    char fqdn[256];
    snprintf(fqdn, sizeof(fqdn), "raycluster-historyserver-head-svc.%s.svc.cluster.local", ns);
    podbuild_opts_t o;
    podbuild_opts_init(&o);
    for (int gate = 0; gate < 2; gate++) {
        o.gate_history_server = gate == 1;
        for (int w = 0; w < 2; w++) {
            json_t *pod = NULL;
            int r = w ? podbuild_worker(rc, 0, &o, &pod, NULL) : podbuild_head(rc, &o, &pod, NULL);
            CHECK(r == 0 && pod);
            if (!pod)
                continue;
            const json_t *cs = jx_get(pod, "spec.containers");
            const json_t *ray = json_array_get(cs, 0);
            if (!gate) {
                CHECK(json_array_size(cs) == 1);
                CHECK(s_t_env_index(ray, "RAY_enable_ray_event") < 0);
                CHECK(jx_array_find(jx_get(pod, "spec.volumes"), "name", S_LOG_VOLUME) == NULL);
                json_decref(pod);
                continue;
            }
            CHECK(json_array_size(cs) == 2);
            const json_t *hc = json_array_get(cs, 1);
            CHECK(s_t_str_eq(s_str(hc, "name"), "ray-history-collector"));
            CHECK(s_t_str_eq(s_str(hc, "image"), "quay.io/kuberay/collector:nightly"));
            CHECK(s_t_str_eq(s_str(hc, "imagePullPolicy"), "IfNotPresent"));
            json_t *want = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "requests", "cpu", "50m",
                                     "memory", "64Mi", "limits", "cpu", "200m", "memory", "256Mi");
            CHECK(json_equal(want, json_object_get(hc, "resources")));
            json_decref(want);
            want =
                json_pack("[{s:s, s:{s:{s:s}}}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s},"
                          " {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]",
                          "name", "POD_IP", "valueFrom", "fieldRef", "fieldPath", "status.podIP",
                          "name", "RAY_CLUSTER_NAME", "value", "raycluster-historyserver", "name",
                          "RAY_CLUSTER_NAMESPACE", "value", ns, "name", "RAY_ROLE", "value",
                          w ? "Worker" : "Head", "name", "EVENTS_PORT", "value", "8084", "name",
                          "FQ_RAY_IP", "value", fqdn, "name", "OWNER_KIND", "value", "RayCluster",
                          "name", "OWNER_NAME", "value", "raycluster-historyserver");
            if (!w)
                json_array_append_new(want, json_pack("{s:s, s:s}", "name", "RAY_DASHBOARD_ADDRESS",
                                                      "value", "http://localhost:8265"));
            json_array_append_new(
                want, json_pack("{s:s, s:s}", "name", "STORAGE_BACKEND", "value", "GCS"));
            json_array_append_new(
                want, json_pack("{s:s, s:s}", "name", "GCS_BUCKET", "value", "my-gcs-bucket"));
            CHECK(json_equal(want, json_object_get(hc, "env")));
            json_decref(want);
            want = json_pack("[{s:s, s:s}]", "mountPath", "/tmp/ray", "name", S_LOG_VOLUME);
            CHECK(json_equal(want, json_object_get(hc, "volumeMounts")));
            json_decref(want);
            CHECK(json_object_size(hc) == 6);
            const json_t *m =
                jx_array_find(json_object_get(ray, "volumeMounts"), "name", S_LOG_VOLUME);
            CHECK(m && s_t_str_eq(s_str(m, "mountPath"), "/tmp/ray"));
            const json_t *v = jx_array_find(jx_get(pod, "spec.volumes"), "name", S_LOG_VOLUME);
            want = json_pack("{s:s, s:{}}", "name", S_LOG_VOLUME, "emptyDir");
            CHECK(json_equal(want, v));
            json_decref(want);
            /* §1.7 item 11 right after item 10 */
            int i10 = s_t_env_index(ray, "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE");
            static const char *const names[] = {
                "RAY_enable_ray_event", "RAY_enable_core_worker_ray_event_to_aggregator",
                "RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR",
                "RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES",
                "RAY_DASHBOARD_AGGREGATOR_AGENT_PUBLISHER_HTTP_ENDPOINT_EXPOSABLE_EVENT_TYPES"};
            CHECK(i10 >= 0);
            for (int k = 0; k < 5; k++)
                CHECK(s_t_env_index(ray, names[k]) == i10 + 1 + k);
            CHECK(json_array_size(json_object_get(ray, "env")) == (size_t)i10 + 6);
            CHECK(s_t_str_eq(s_t_env_value(ray, "RAY_enable_ray_event"), "true"));
            CHECK(s_t_str_eq(s_t_env_value(ray, names[1]), "true"));
            CHECK(s_t_str_eq(s_t_env_value(ray, names[2]), "http://localhost:8084/v1/events"));
            CHECK(s_t_str_eq(s_t_env_value(ray, names[3]), COLLECTOR_EVENT_TYPES));
            CHECK(s_t_str_eq(s_t_env_value(ray, names[4]), COLLECTOR_EVENT_TYPES));
            json_decref(pod);
        }
    }
    json_decref(rc);
    return failed;
}

int podbuild_test(bool verbose)
{
    int failed = 0;
    const char *shared = selftest_shared_dir();
    failed += s_t_units();
    failed += s_t_exact(shared);
    failed += s_t_history(shared);
    s_t_totals_t tot = {0, 0, 0, 0, 0};
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/kuberay/samples", shared);
    s_t_walk(dir, &tot, 0);
    CHECK(tot.samples >= 60);
    failed += tot.failed;
    if (verbose)
        printf("podbuild: %d sample clusters, %d pods, %d rule checks, %d failed, %d unbuilt\n",
               tot.samples, tot.pods, tot.rules, tot.failed, tot.unbuilt);
    return SELFTEST_RESULT("podbuild", verbose);
}

#endif /* RF_SELFTEST */
