/* validate: KubeRay's RayCluster validation with its exact messages (see validate.h). */
#include "validate.h"

#include <ctype.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "labels.h"
#include "yaml.h"

#define S_ENABLE_V2_ENV "RAY_enable_autoscaler_v2"
#define S_GEN_AUTOSCALER_CMD "KUBERAY_GEN_AUTOSCALER_START_CMD"
#define S_RAY_REDIS_ADDRESS "RAY_REDIS_ADDRESS"
#define S_REDIS_PASSWORD "REDIS_PASSWORD"
#define S_REDIS_USERNAME "REDIS_USERNAME"
#define S_GCS_STORAGE_ENV "RAY_gcs_storage"
#define S_GCS_STORAGE_PATH_ENV "RAY_gcs_storage_path"
#define S_GCS_VOLUME "gcs-storage"
#define S_GCS_MOUNT "/data/gcs"
#define S_TLS_VOLUME "ray-tls"
#define S_TLS_MOUNT "/etc/ray/tls"
#define S_MIN_AUTH_VERSION "2.52.0"
#define S_MIN_K8S_AUTH_VERSION "2.55.0"
#define S_MIN_PRIORITY_VERSION "2.56.0"
#define S_MSG_MAX (64u * 1024u)

static const char *const s_tls_env[] = {"RAY_USE_TLS", "RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY",
                                        "RAY_TLS_CA_CERT"};
static const char *const s_collector_forbidden_env[] = {
    "POD_IP",   "FQ_RAY_IP",  "RAY_CLUSTER_NAME", "RAY_CLUSTER_NAMESPACE",
    "RAY_ROLE", "OWNER_KIND", "OWNER_NAME",       "EVENTS_PORT"};

void validate_gates_default(validate_gates_t *g)
{
    if (!g)
        return;
    memset(g, 0, sizeof(*g));
    g->multihost_indexing = true;
    g->job_deletion_policy = true;
    g->incremental_upgrade = true;
}

/* KubeRay v1.7's gates (ray-operator/pkg/features/features.go) and the field each sets, if any. */
static const struct {
    const char *name;
    size_t off; /* offset of the bool in validate_gates_t, or SIZE_MAX: not consulted here */
} s_gate_names[] = {
    {"RayClusterStatusConditions", SIZE_MAX},
    {"RayJobDeletionPolicy", offsetof(validate_gates_t, job_deletion_policy)},
    {"RayMultiHostIndexing", offsetof(validate_gates_t, multihost_indexing)},
    {"RayServiceIncrementalUpgrade", offsetof(validate_gates_t, incremental_upgrade)},
    {"RayCronJob", offsetof(validate_gates_t, cronjob)},
    {"SidecarSubmitterRestart", offsetof(validate_gates_t, sidecar_submitter_restart)},
    {"RayClusterNetworkPolicy", offsetof(validate_gates_t, network_policy)},
    {"GCSFaultToleranceEmbeddedStorage", offsetof(validate_gates_t, gcs_embedded_storage)},
    {"RayClusterMTLS", offsetof(validate_gates_t, mtls)},
    {"RayClusterHistoryServer", offsetof(validate_gates_t, history_server)},
    {"KubernetesWAS", offsetof(validate_gates_t, kubernetes_was)},
};

int validate_gates_option(const char *spec, buf_t *err)
{
    validate_gates_t g;
    validate_gates_default(&g);
    int rc = buf_puts(err, "--feature-gates: ");
    return rc ? rc : validate_gates_parse(spec, &g, err);
}

int validate_gates_parse(const char *spec, validate_gates_t *g, buf_t *err)
{
    if (!g)
        return ERR_INVAL;
    validate_gates_t out = *g;
    const char *p = spec ? spec : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *item = p, *end = p + n;
        p = *end ? end + 1 : end;
        while (item < end && *item == ' ')
            item++;
        while (end > item && end[-1] == ' ')
            end--;
        if (item == end)
            continue;
        const char *eq = memchr(item, '=', (size_t)(end - item));
        int klen = (int)((eq ? eq : end) - item);
        size_t gi = 0, ng = sizeof(s_gate_names) / sizeof(s_gate_names[0]);
        while (gi < ng && !(strlen(s_gate_names[gi].name) == (size_t)klen &&
                            strncmp(s_gate_names[gi].name, item, (size_t)klen) == 0))
            gi++;
        if (gi == ng) {
            buf_printf(err, "unrecognized feature gate: %.*s", klen, item);
            return ERR_INVAL;
        }
        if (!eq) {
            buf_printf(err, "missing bool value for %.*s", klen, item);
            return ERR_INVAL;
        }
        int vlen = (int)(end - eq - 1);
        bool on = vlen == 4 && strncasecmp(eq + 1, "true", 4) == 0;
        if (!on && !(vlen == 5 && strncasecmp(eq + 1, "false", 5) == 0)) {
            buf_printf(err, "invalid value of %.*s=%.*s, must be true or false", klen, item, vlen,
                       eq + 1);
            return ERR_INVAL;
        }
        if (s_gate_names[gi].off != SIZE_MAX)
            *(bool *)((char *)&out + s_gate_names[gi].off) = on;
    }
    *g = out;
    return 0;
}

/* Appends a formatted message and returns VALIDATE_INVALID (or the buf error). */
__attribute__((format(printf, 2, 3))) static int s_fail(buf_t *msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(msg, fmt, ap);
    va_end(ap);
    return rc < 0 ? rc : VALIDATE_INVALID;
}

/* ---- apimachinery validators ---- */

static bool s_is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool s_is_alnum(char c)
{
    return isalnum((unsigned char)c) != 0;
}

static bool s_match_dns_label(const char *v, size_t n, bool alpha_first)
{
    if (n == 0)
        return false;
    if (alpha_first ? !(v[0] >= 'a' && v[0] <= 'z') : !s_is_lower_alnum(v[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!s_is_lower_alnum(v[i]) && v[i] != '-')
            return false;
    return s_is_lower_alnum(v[n - 1]);
}

static bool s_match_qname(const char *v, size_t n)
{
    if (n == 0 || !s_is_alnum(v[0]) || !s_is_alnum(v[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!s_is_alnum(v[i]) && v[i] != '-' && v[i] != '_' && v[i] != '.')
            return false;
    return true;
}

static bool s_match_subdomain(const char *v, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || v[i] == '.') {
            if (!s_match_dns_label(v + start, i - start, false))
                return false;
            start = i + 1;
        }
    }
    return true;
}

/* Appends one error (with `prefix`) and the separator. */
static int s_err(buf_t *errs, const char *sep, const char *prefix, const char *text)
{
    int rc = buf_printf(errs, "%s%s%s", prefix, text, sep ? sep : "");
    return rc < 0 ? rc : 1;
}

#define S_DNS1035_MSG                                                                              \
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "   \
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "           \
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
#define S_DNS1123_LABEL_MSG                                                                        \
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "   \
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "     \
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
#define S_DNS1123_SUB_MSG                                                                          \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "   \
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "  \
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define S_QNAME_MSG                                                                                \
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "    \
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "         \
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define S_LABEL_VALUE_MSG                                                                          \
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "    \
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "             \
    "'my_value',  or '12345', regex used for validation is "                                       \
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"

static int s_maxlen(buf_t *errs, const char *sep, const char *prefix, int max)
{
    char t[64];
    snprintf(t, sizeof(t), "must be no more than %d characters", max);
    return s_err(errs, sep, prefix, t);
}

/* Adds r (1 per error or <0) to *count; returns <0 on error. */
static int s_acc(int *count, int r)
{
    if (r < 0)
        return r;
    *count += r;
    return 0;
}

int validate_dns1035_label(const char *v, buf_t *errs, const char *sep)
{
    int n = 0, rc;
    size_t len = strlen(v ? v : "");
    if (len > VALIDATE_DNS_LABEL_MAX &&
        (rc = s_acc(&n, s_maxlen(errs, sep, "", VALIDATE_DNS_LABEL_MAX))) < 0)
        return rc;
    if (!s_match_dns_label(v ? v : "", len, true) &&
        (rc = s_acc(&n, s_err(errs, sep, "", S_DNS1035_MSG))) < 0)
        return rc;
    return n;
}

int validate_dns1123_label(const char *v, buf_t *errs, const char *sep)
{
    int n = 0, rc;
    size_t len = strlen(v ? v : "");
    if (len > VALIDATE_DNS_LABEL_MAX &&
        (rc = s_acc(&n, s_maxlen(errs, sep, "", VALIDATE_DNS_LABEL_MAX))) < 0)
        return rc;
    if (!s_match_dns_label(v ? v : "", len, false) &&
        (rc = s_acc(&n, s_err(errs, sep, "", S_DNS1123_LABEL_MSG))) < 0)
        return rc;
    return n;
}

int validate_qualified_name(const char *v, buf_t *errs, const char *sep)
{
    int n = 0, rc;
    if (!v)
        v = "";
    const char *slash = strchr(v, '/');
    const char *name = v;
    if (slash && strchr(slash + 1, '/')) {
        return s_err(errs, sep, "a qualified name ",
                     S_QNAME_MSG
                     " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
    }
    if (slash) {
        size_t plen = (size_t)(slash - v);
        name = slash + 1;
        if (plen == 0) {
            if ((rc = s_acc(&n, s_err(errs, sep, "prefix part ", "must be non-empty"))) < 0)
                return rc;
        } else {
            if (plen > VALIDATE_DNS_SUBDOMAIN_MAX &&
                (rc = s_acc(&n, s_maxlen(errs, sep, "prefix part ", VALIDATE_DNS_SUBDOMAIN_MAX))) <
                    0)
                return rc;
            if (!s_match_subdomain(v, plen) &&
                (rc = s_acc(&n, s_err(errs, sep, "prefix part ", S_DNS1123_SUB_MSG))) < 0)
                return rc;
        }
    }
    size_t nlen = strlen(name);
    if (nlen == 0) {
        if ((rc = s_acc(&n, s_err(errs, sep, "name part ", "must be non-empty"))) < 0)
            return rc;
    } else if (nlen > VALIDATE_DNS_LABEL_MAX &&
               (rc = s_acc(&n, s_maxlen(errs, sep, "name part ", VALIDATE_DNS_LABEL_MAX))) < 0) {
        return rc;
    }
    if (!s_match_qname(name, nlen) &&
        (rc = s_acc(&n, s_err(errs, sep, "name part ", S_QNAME_MSG))) < 0)
        return rc;
    return n;
}

int validate_label_value(const char *v, buf_t *errs, const char *sep)
{
    int n = 0, rc;
    size_t len = strlen(v ? v : "");
    if (len > VALIDATE_DNS_LABEL_MAX &&
        (rc = s_acc(&n, s_maxlen(errs, sep, "", VALIDATE_DNS_LABEL_MAX))) < 0)
        return rc;
    if (len > 0 && !s_match_qname(v, len) &&
        (rc = s_acc(&n, s_err(errs, sep, "", S_LABEL_VALUE_MSG))) < 0)
        return rc;
    return n;
}

/* ---- version.ParseGeneric ---- */

#define S_VERSION_MAX_PARTS 8

/* Parses `s`; fills parts (missing = 0). Returns 0 or VALIDATE_INVALID with Go's text. */
static int s_parse_version(const char *s, uint64_t parts[S_VERSION_MAX_PARTS], buf_t *err)
{
    memset(parts, 0, sizeof(uint64_t) * S_VERSION_MAX_PARTS);
    const char *p = s;
    while (*p && isspace((unsigned char)*p))
        p++;
    if (*p == 'v')
        p++;
    if (!isdigit((unsigned char)*p))
        return s_fail(err, "could not parse \"%s\" as version", s);
    int count = 0;
    while (isdigit((unsigned char)*p)) {
        const char *start = p;
        uint64_t v = 0;
        while (isdigit((unsigned char)*p)) {
            v = v * 10 + (uint64_t)(*p - '0');
            p++;
        }
        if (count == 0 && *start == '0' && p - start > 1)
            return s_fail(err, "illegal zero-prefixed version component \"%.*s\" in \"%s\"",
                          (int)(p - start), start, s);
        if (count < S_VERSION_MAX_PARTS)
            parts[count] = v;
        count++;
        if (*p == '.' && isdigit((unsigned char)p[1]))
            p++;
        else
            break;
    }
    if (count < 2)
        return s_fail(err, "illegal version string \"%s\"", s);
    return 0;
}

int validate_version_cmp(const char *v, const char *min, int *cmp, buf_t *err)
{
    uint64_t a[S_VERSION_MAX_PARTS], b[S_VERSION_MAX_PARTS];
    int rc = s_parse_version(v ? v : "", a, err);
    if (rc)
        return rc;
    buf_t scratch;
    buf_init(&scratch, S_MSG_MAX);
    rc = s_parse_version(min, b, &scratch);
    buf_free(&scratch);
    if (rc)
        return rc;
    *cmp = 0;
    for (int i = 0; i < S_VERSION_MAX_PARTS && *cmp == 0; i++)
        *cmp = a[i] < b[i] ? -1 : a[i] > b[i] ? 1 : 0;
    return 0;
}

/* ---- spec helpers ---- */

static const json_t *s_head_container(const json_t *spec)
{
    return json_array_get(jx_get(spec, "headGroupSpec.template.spec.containers"), 0);
}

static const json_t *s_env_by_name(const json_t *env, const char *name)
{
    return jx_array_find(env, "name", name);
}

static bool s_env_exists(const json_t *container_or_env, const char *name, bool is_env_list)
{
    const json_t *env = is_env_list ? container_or_env : jx_get(container_or_env, "env");
    return s_env_by_name(env, name) != NULL;
}

static bool s_autoscaling(const json_t *spec)
{
    return jx_bool(spec, "enableInTreeAutoscaling", false);
}

static bool s_autoscaling_v2(const json_t *spec)
{
    const char *v = jx_str(spec, "autoscalerOptions.version", NULL);
    return v && strcmp(v, "v2") == 0;
}

static bool s_head_env_v2_true(const json_t *spec)
{
    const json_t *e = s_env_by_name(jx_get(s_head_container(spec), "env"), S_ENABLE_V2_ENV);
    const char *v = jx_str(e, "value", "");
    return e && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

static const char *s_map_str(const json_t *map, const char *key)
{
    return json_string_value(json_object_get(map, key));
}

static bool s_map_nonempty_str(const json_t *map, const char *key)
{
    const char *v = s_map_str(map, key);
    return v && v[0];
}

static int s_group_resources(const char *group, const json_t *rsp, const json_t *resources,
                             buf_t *msg)
{
    bool has = s_map_nonempty_str(rsp, "num-cpus") || s_map_nonempty_str(rsp, "num-gpus") ||
               s_map_nonempty_str(rsp, "memory") || s_map_nonempty_str(rsp, "resources");
    if (has && json_object_size(resources) > 0)
        return s_fail(
            msg,
            "resource fields should not be set in both rayStartParams and Resources for %s "
            "group; please use only one",
            group);
    return 0;
}

static int s_group_labels(const char *group, const json_t *rsp, const json_t *labels, buf_t *msg)
{
    if (json_object_get(rsp, "labels"))
        return s_fail(msg,
                      "rayStartParams['labels'] is not supported for %s group; please use the "
                      "top-level Labels field instead",
                      group);
    int total = 0, rc = 0;
    const char *key;
    json_t *val;
    buf_t errs;
    buf_init(&errs, S_MSG_MAX);
    json_object_foreach((json_t *)labels, key, val)
    {
        const char *sval = json_string_value(val) ? json_string_value(val) : "";
        buf_t one;
        buf_init(&one, S_MSG_MAX);
        int n = validate_qualified_name(key, &one, "\n");
        const char *p = buf_str(&one);
        for (int i = 0; n > 0 && i < n; i++) {
            const char *nl = strchr(p, '\n');
            rc = buf_printf(&errs, "%sinvalid label key for %s group: '%s', error: %.*s",
                            total ? "; " : "", group, key, (int)(nl - p), p);
            total++;
            p = nl + 1;
        }
        buf_reset(&one);
        n = validate_label_value(sval, &one, "\n");
        p = buf_str(&one);
        for (int i = 0; n > 0 && i < n; i++) {
            const char *nl = strchr(p, '\n');
            rc = buf_printf(&errs,
                            "%sinvalid label value for key '%s' in %s group: '%s', error: %.*s",
                            total ? "; " : "", key, group, sval, (int)(nl - p), p);
            total++;
            p = nl + 1;
        }
        buf_free(&one);
        if (rc < 0)
            break;
    }
    if (rc >= 0 && total > 0)
        rc = s_fail(msg, "%s", buf_str(&errs));
    buf_free(&errs);
    return rc < 0 ? rc : (total ? VALIDATE_INVALID : 0);
}

/* Ray version >= min; returns 0 when ok, else appends `what` messages. */
static int s_version_at_least(const char *ver, const char *min, int *cmp, buf_t *perr)
{
    return validate_version_cmp(ver, min, cmp, perr);
}

static int s_worker_idle_timeout(const json_t *spec, const json_t *wg, const char *g, buf_t *msg)
{
    const json_t *it = json_object_get(wg, "idleTimeoutSeconds");
    if (!it || json_is_null(it))
        return 0;
    json_int_t v = json_integer_value(it);
    if (v < 0)
        return s_fail(msg, "worker group %s: idleTimeoutSeconds must be non-negative, got %lld", g,
                      (long long)v);
    if (s_autoscaling_v2(spec) || s_head_env_v2_true(spec))
        return 0;
    return s_fail(
        msg,
        "worker group %s: idleTimeoutSeconds is set, but autoscaler v2 is not enabled. Please "
        "set .spec.autoscalerOptions.version to 'v2' (or set %s environment variable to 'true' "
        "in the head pod if using KubeRay < 1.4.0)",
        g, S_ENABLE_V2_ENV);
}

static int s_worker_priority(const json_t *spec, const json_t *wg, const char *g, buf_t *msg)
{
    json_int_t pr = jx_int(wg, "priority", 0);
    if (pr == 0)
        return 0;
    const char *rv = jx_str(spec, "rayVersion", "");
    if (!rv[0])
        return s_fail(
            msg,
            "worker group %s: priority is set, but RayVersion was not specified. Ray version "
            "2.56.0 or later is required",
            g);
    int cmp = 0;
    buf_t perr;
    buf_init(&perr, S_MSG_MAX);
    int rc = s_version_at_least(rv, S_MIN_PRIORITY_VERSION, &cmp, &perr);
    if (rc == VALIDATE_INVALID)
        rc = s_fail(msg,
                    "worker group %s: priority is set, but RayVersion format is invalid: %s, %s", g,
                    rv, buf_str(&perr));
    buf_free(&perr);
    if (rc)
        return rc;
    if (cmp < 0)
        return s_fail(msg,
                      "worker group %s: priority is set, but minimum Ray version is 2.56.0, got %s",
                      g, rv);
    if (s_autoscaling_v2(spec) || s_head_env_v2_true(spec))
        return 0;
    return s_fail(
        msg,
        "worker group %s: priority is set to %lld, but autoscaler v2 is not enabled. Priority is "
        "only supported with autoscaler v2 enabled",
        g, (long long)pr);
}

static int s_gcs_backend(const json_t *opts, const json_t *head, const json_t *head_volumes,
                         const validate_gates_t *gates, buf_t *msg)
{
    const char *backend = jx_str(opts, "backend", "");
    if (strcmp(backend, "rocksdb") == 0) {
        if (!gates->gcs_embedded_storage)
            return s_fail(msg,
                          "the embedded RocksDB GCS fault tolerance backend "
                          "(GcsFaultToleranceOptions.Backend: "
                          "'rocksdb') requires the %s feature gate to be enabled",
                          "GCSFaultToleranceEmbeddedStorage");
        if (jx_str(opts, "redisAddress", "")[0])
            return s_fail(
                msg, "cannot set GcsFaultToleranceOptions.RedisAddress when backend is 'rocksdb'");
        if (jx_get(opts, "redisUsername") && !json_is_null(jx_get(opts, "redisUsername")))
            return s_fail(
                msg, "cannot set GcsFaultToleranceOptions.RedisUsername when backend is 'rocksdb'");
        if (jx_get(opts, "redisPassword") && !json_is_null(jx_get(opts, "redisPassword")))
            return s_fail(
                msg, "cannot set GcsFaultToleranceOptions.RedisPassword when backend is 'rocksdb'");
        if (jx_str(opts, "externalStorageNamespace", "")[0])
            return s_fail(msg, "cannot set GcsFaultToleranceOptions.ExternalStorageNamespace when "
                               "backend is 'rocksdb'");
        const json_t *st = jx_get(opts, "storage");
        if (st && jx_str(st, "claimName", "")[0] &&
            (json_object_get(st, "size") || json_object_get(st, "storageClassName") ||
             json_array_size(json_object_get(st, "accessModes")) > 0))
            return s_fail(
                msg, "GcsFaultToleranceOptions.Storage.ClaimName is mutually exclusive with size, "
                     "storageClassName, and accessModes");
        if (s_env_exists(head, S_GCS_STORAGE_ENV, false) ||
            s_env_exists(head, S_GCS_STORAGE_PATH_ENV, false))
            return s_fail(msg,
                          "cannot set `%s` or `%s` env var in head Pod when the embedded GCS FT "
                          "backend is used "
                          "- these are managed by KubeRay",
                          S_GCS_STORAGE_ENV, S_GCS_STORAGE_PATH_ENV);
        size_t i;
        json_t *m;
        json_array_foreach(jx_get(head, "volumeMounts"), i, m)
        {
            if (strcmp(jx_str(m, "mountPath", ""), S_GCS_MOUNT) == 0 ||
                strcmp(jx_str(m, "name", ""), S_GCS_VOLUME) == 0)
                return s_fail(
                    msg,
                    "cannot set a volume mount named \"%s\" or mounted at %s in the head container "
                    "when the embedded GCS FT backend is used - it is managed by KubeRay",
                    S_GCS_VOLUME, S_GCS_MOUNT);
        }
        json_array_foreach(head_volumes, i, m)
        {
            if (strcmp(jx_str(m, "name", ""), S_GCS_VOLUME) == 0)
                return s_fail(msg,
                              "cannot set a volume named \"%s\" in the head Pod when the embedded "
                              "GCS FT backend "
                              "is used - it is managed by KubeRay",
                              S_GCS_VOLUME);
        }
        return 0;
    }
    if (jx_get(opts, "storage") && !json_is_null(jx_get(opts, "storage")))
        return s_fail(
            msg, "cannot set GcsFaultToleranceOptions.Storage when backend is 'redis' - it only "
                 "applies to the 'rocksdb' backend");
    return 0;
}

static int s_network_policy(const json_t *spec, buf_t *msg)
{
    const json_t *np = jx_get(spec, "networkPolicy");
    if (!np || json_is_null(np))
        return 0;
    const char *mode = jx_str(np, "mode", "DenyAll");
    bool deny_egress_only = strcmp(mode, "DenyAllEgress") == 0;
    bool deny_ingress_only = strcmp(mode, "DenyAllIngress") == 0;
    static const char *const parts[] = {"head", "worker"};
    for (int i = 0; i < 2; i++) {
        const json_t *p = json_object_get(np, parts[i]);
        if (!p)
            continue;
        if (deny_egress_only && json_array_size(json_object_get(p, "ingressRules")) > 0)
            return s_fail(
                msg,
                "networkPolicy.%s.ingressRules cannot be set when mode is \"%s\" (ingress is not "
                "restricted)",
                parts[i], mode);
        if (deny_ingress_only && json_array_size(json_object_get(p, "egressRules")) > 0)
            return s_fail(
                msg,
                "networkPolicy.%s.egressRules cannot be set when mode is \"%s\" (egress is not "
                "restricted)",
                parts[i], mode);
    }
    size_t i;
    json_t *wg;
    json_array_foreach(jx_get(spec, "workerGroupSpecs"), i, wg)
    {
        const char *g = jx_str(wg, "groupName", "");
        buf_t errs;
        buf_init(&errs, S_MSG_MAX);
        int n = validate_dns1123_label(g, &errs, " ");
        if (n > 0) {
            /* Go's %v of []string: "[e1 e2]" */
            size_t l = errs.len;
            if (l && errs.data[l - 1] == ' ')
                errs.data[l - 1] = '\0';
            int rc = s_fail(msg,
                            "worker group name \"%s\" must be a valid DNS1123 label when "
                            "networkPolicy is enabled "
                            "(it is embedded in the NetworkPolicy name): [%s]",
                            g, buf_str(&errs));
            buf_free(&errs);
            return rc;
        }
        buf_free(&errs);
    }
    json_array_foreach(jx_get(np, "workerGroups"), i, wg)
    {
        const char *g = jx_str(wg, "groupName", "");
        if (deny_egress_only && json_array_size(json_object_get(wg, "ingressRules")) > 0)
            return s_fail(
                msg,
                "networkPolicy.workerGroups[\"%s\"].ingressRules cannot be set when mode is \"%s\" "
                "(ingress is not restricted)",
                g, mode);
        if (deny_ingress_only && json_array_size(json_object_get(wg, "egressRules")) > 0)
            return s_fail(
                msg,
                "networkPolicy.workerGroups[\"%s\"].egressRules cannot be set when mode is \"%s\" "
                "(egress is not restricted)",
                g, mode);
        bool found = false;
        size_t j;
        json_t *w2;
        json_array_foreach(jx_get(spec, "workerGroupSpecs"), j, w2)
        {
            if (strcmp(jx_str(w2, "groupName", ""), g) == 0)
                found = true;
        }
        if (!found)
            return s_fail(msg,
                          "networkPolicy.workerGroups[\"%s\"] does not match any group name in "
                          "workerGroupSpecs",
                          g);
    }
    return 0;
}

static int s_tls_mounts(const json_t *mounts, const char *location, buf_t *msg)
{
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m)
    {
        if (strcmp(jx_str(m, "name", ""), S_TLS_VOLUME) == 0)
            return s_fail(
                msg,
                "cannot use volume mount named \"%s\" in %s when tlsOptions is set - the operator "
                "manages TLS configuration automatically",
                S_TLS_VOLUME, location);
        if (strcmp(jx_str(m, "mountPath", ""), S_TLS_MOUNT) == 0)
            return s_fail(msg,
                          "cannot use volume mount at path \"%s\" in %s when tlsOptions is set - "
                          "the operator "
                          "manages TLS configuration automatically",
                          S_TLS_MOUNT, location);
    }
    return 0;
}

static int s_tls(const json_t *spec, buf_t *msg)
{
    if (!jx_bool(spec, "tlsOptions.enabled", false))
        return 0;
    const json_t *head = s_head_container(spec);
    int rc;
    if (head) {
        for (size_t k = 0; k < sizeof(s_tls_env) / sizeof(s_tls_env[0]); k++)
            if (s_env_exists(head, s_tls_env[k], false))
                return s_fail(
                    msg,
                    "cannot set %s environment variable in head Pod when tlsOptions is set - the "
                    "operator manages TLS configuration automatically",
                    s_tls_env[k]);
        if ((rc = s_tls_mounts(jx_get(head, "volumeMounts"), "head Pod", msg)))
            return rc;
    }
    size_t i;
    json_t *wg;
    json_array_foreach(jx_get(spec, "workerGroupSpecs"), i, wg)
    {
        const json_t *c = json_array_get(jx_get(wg, "template.spec.containers"), 0);
        const char *g = jx_str(wg, "groupName", "");
        if (!c)
            continue;
        for (size_t k = 0; k < sizeof(s_tls_env) / sizeof(s_tls_env[0]); k++)
            if (s_env_exists(c, s_tls_env[k], false))
                return s_fail(msg,
                              "cannot set %s environment variable in worker group \"%s\" when "
                              "tlsOptions is set "
                              "- the operator manages TLS configuration automatically",
                              s_tls_env[k], g);
        char loc[512];
        snprintf(loc, sizeof(loc), "worker group \"%s\"", g);
        if ((rc = s_tls_mounts(jx_get(c, "volumeMounts"), loc, msg)))
            return rc;
    }
    const json_t *ao = jx_get(spec, "autoscalerOptions");
    if (ao) {
        for (size_t k = 0; k < sizeof(s_tls_env) / sizeof(s_tls_env[0]); k++)
            if (s_env_exists(jx_get(ao, "env"), s_tls_env[k], true))
                return s_fail(
                    msg,
                    "cannot set %s environment variable in autoscalerOptions.env when tlsOptions "
                    "is set "
                    "- the operator manages TLS configuration for the autoscaler automatically",
                    s_tls_env[k]);
        if ((rc = s_tls_mounts(jx_get(ao, "volumeMounts"), "autoscalerOptions.volumeMounts", msg)))
            return rc;
    }
    return 0;
}

int validate_metadata(const json_t *rc, buf_t *msg)
{
    const char *name = jx_str(rc, "metadata.name", "");
    if (strlen(name) > VALIDATE_MAX_CLUSTER_NAME)
        return s_fail(msg, "RayCluster name should be no more than %d characters",
                      VALIDATE_MAX_CLUSTER_NAME);
    buf_t errs;
    buf_init(&errs, S_MSG_MAX);
    int n = validate_dns1035_label(name, &errs, NULL);
    int r =
        n > 0 ? s_fail(msg, "RayCluster name should be a valid DNS1035 label: [%s]", buf_str(&errs))
              : n;
    buf_free(&errs);
    return r;
}

int validate_spec(const json_t *spec, const json_t *annotations, const validate_gates_t *gates,
                  buf_t *msg)
{
    validate_gates_t defaults;
    if (!gates) {
        validate_gates_default(&defaults);
        gates = &defaults;
    }
    int rc;
    const json_t *hg = jx_get(spec, "headGroupSpec");
    if (json_array_size(jx_get(hg, "template.spec.containers")) == 0)
        return s_fail(msg, "headGroupSpec should have at least one container");
    const json_t *head_rsp = jx_get(hg, "rayStartParams");
    if ((rc = s_group_resources("Head", head_rsp, jx_get(hg, "resources"), msg)))
        return rc;
    if ((rc = s_group_labels("Head", head_rsp, jx_get(hg, "labels"), msg)))
        return rc;
    bool autoscaling = s_autoscaling(spec);
    size_t i;
    json_t *wg;
    const json_t *groups = jx_get(spec, "workerGroupSpecs");
    json_array_foreach(groups, i, wg)
    {
        const char *g = jx_str(wg, "groupName", "");
        if (json_array_size(jx_get(wg, "template.spec.containers")) == 0)
            return s_fail(msg, "workerGroupSpec should have at least one container");
        const json_t *mn = json_object_get(wg, "minReplicas");
        const json_t *mx = json_object_get(wg, "maxReplicas");
        if (mn && json_is_null(mn))
            mn = NULL;
        if (mx && json_is_null(mx))
            mx = NULL;
        if (!autoscaling && (!mn || !mx))
            return s_fail(msg,
                          "worker group %s must set both minReplicas and maxReplicas when "
                          "autoscaling is disabled",
                          g);
        if (mn && json_integer_value(mn) < 0)
            return s_fail(msg, "worker group %s has negative minReplicas %lld", g,
                          (long long)json_integer_value(mn));
        if (mx && json_integer_value(mx) < 0)
            return s_fail(msg, "worker group %s has negative maxReplicas %lld", g,
                          (long long)json_integer_value(mx));
        if (mn && mx && json_integer_value(mn) > json_integer_value(mx))
            return s_fail(msg, "worker group %s has minReplicas %lld greater than maxReplicas %lld",
                          g, (long long)json_integer_value(mn), (long long)json_integer_value(mx));
        const json_t *rsp = jx_get(wg, "rayStartParams");
        if ((rc = s_group_resources(g, rsp, jx_get(wg, "resources"), msg)))
            return rc;
        if ((rc = s_group_labels(g, rsp, jx_get(wg, "labels"), msg)))
            return rc;
        if ((rc = s_worker_idle_timeout(spec, wg, g, msg)))
            return rc;
        if ((rc = s_worker_priority(spec, wg, g, msg)))
            return rc;
    }
    const json_t *gcs = jx_get(spec, "gcsFaultToleranceOptions");
    if (gcs && json_is_null(gcs))
        gcs = NULL;
    const char *ft_ann = s_map_str(annotations, ANN_FT_ENABLED);
    if (ft_ann && ft_ann[0] && gcs)
        return s_fail(msg,
                      "%s annotation and GcsFaultToleranceOptions are both set. Please use only "
                      "GcsFaultToleranceOptions to configure GCS fault tolerance",
                      ANN_FT_ENABLED);
    bool ft_enabled = gcs || (ft_ann && strcasecmp(ft_ann, "true") == 0);
    const json_t *head = s_head_container(spec);
    if (!ft_enabled && s_env_exists(head, S_RAY_REDIS_ADDRESS, false))
        return s_fail(msg,
                      "%s is set which implicitly enables GCS fault tolerance, but "
                      "GcsFaultToleranceOptions is "
                      "not set. Please set GcsFaultToleranceOptions to enable GCS fault tolerance",
                      S_RAY_REDIS_ADDRESS);
    if (gcs) {
        if (s_map_nonempty_str(head_rsp, "redis-password"))
            return s_fail(
                msg,
                "cannot set `redis-password` in rayStartParams when GcsFaultToleranceOptions is "
                "enabled - use GcsFaultToleranceOptions.RedisPassword instead");
        if (s_env_exists(head, S_REDIS_PASSWORD, false))
            return s_fail(
                msg,
                "cannot set `REDIS_PASSWORD` env var in head Pod when GcsFaultToleranceOptions is "
                "enabled - use GcsFaultToleranceOptions.RedisPassword instead");
        if (s_env_exists(head, S_RAY_REDIS_ADDRESS, false))
            return s_fail(
                msg,
                "cannot set `RAY_REDIS_ADDRESS` env var in head Pod when GcsFaultToleranceOptions "
                "is enabled - use GcsFaultToleranceOptions.RedisAddress instead");
        if (s_map_nonempty_str(annotations, ANN_EXTERNAL_STORAGE_NS))
            return s_fail(msg, "cannot set `" ANN_EXTERNAL_STORAGE_NS "` annotation when "
                               "GcsFaultToleranceOptions is enabled - use "
                               "GcsFaultToleranceOptions.ExternalStorageNamespace instead");
        if ((rc = s_gcs_backend(gcs, head, jx_get(hg, "template.spec.volumes"), gates, msg)))
            return rc;
    }
    if (s_map_nonempty_str(head_rsp, "redis-username") ||
        s_env_exists(head, S_REDIS_USERNAME, false))
        return s_fail(msg,
                      "cannot set redis username in rayStartParams or environment variables - use "
                      "GcsFaultToleranceOptions.RedisUsername instead");
    if (!gates->job_deletion_policy) {
        json_array_foreach(groups, i, wg)
        {
            if (jx_bool(wg, "suspend", false))
                return s_fail(msg,
                              "worker group %s can be suspended only when the RayJobDeletionPolicy "
                              "feature gate "
                              "is enabled",
                              jx_str(wg, "groupName", ""));
        }
    }
    if (!autoscaling) {
        const json_t *e = s_env_by_name(jx_get(head, "env"), S_ENABLE_V2_ENV);
        const char *v = jx_str(e, "value", "");
        if (e && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0))
            return s_fail(msg,
                          "environment variable %s cannot be set to '%s' when "
                          "enableInTreeAutoscaling is false. "
                          "Please set enableInTreeAutoscaling: true to use autoscaler v2",
                          S_ENABLE_V2_ENV, v);
    } else {
        json_array_foreach(groups, i, wg)
        {
            if (jx_bool(wg, "suspend", false))
                return s_fail(msg, "worker group %s cannot be suspended with Autoscaler enabled",
                              jx_str(wg, "groupName", ""));
        }
        if (jx_str(spec, "autoscalerOptions.version", NULL) &&
            s_env_exists(head, S_ENABLE_V2_ENV, false))
            return s_fail(msg,
                          "both .spec.autoscalerOptions.version and head Pod env var %s are set, "
                          "please only use "
                          "the former",
                          S_ENABLE_V2_ENV);
        if (s_autoscaling_v2(spec)) {
            const char *rp = jx_str(hg, "template.spec.restartPolicy", "");
            if (rp[0] && strcmp(rp, "Never") != 0)
                return s_fail(
                    msg,
                    "restartPolicy for head Pod should be Never or unset when using autoscaler V2");
            json_array_foreach(groups, i, wg)
            {
                rp = jx_str(wg, "template.spec.restartPolicy", "");
                if (rp[0] && strcmp(rp, "Never") != 0)
                    return s_fail(msg,
                                  "restartPolicy for worker group %s should be Never or unset when "
                                  "using autoscaler "
                                  "V2",
                                  jx_str(wg, "groupName", ""));
            }
        }
    }
    const json_t *ao = jx_get(spec, "autoscalerOptions");
    if (ao && !json_is_null(ao)) {
        const json_t *it = json_object_get(ao, "idleTimeoutSeconds");
        if (json_is_integer(it) && json_integer_value(it) < 0)
            return s_fail(msg,
                          "autoscalerOptions.idleTimeoutSeconds must be non-negative, got %lld",
                          (long long)json_integer_value(it));
        if (s_env_exists(jx_get(ao, "env"), S_GEN_AUTOSCALER_CMD, true))
            return s_fail(
                msg,
                "autoscalerOptions.env must not contain %s: it is managed by KubeRay and injected "
                "automatically into the autoscaler container",
                S_GEN_AUTOSCALER_CMD);
    }
    const json_t *hs = jx_get(spec, "historyServerOptions");
    if (hs && !json_is_null(hs)) {
        if (!gates->history_server)
            return s_fail(msg, "RayClusterHistoryServer feature gate is not enabled");
        const json_t *co = jx_get(hs, "collectorOptions");
        if (!co || json_is_null(co))
            return s_fail(msg, "historyServerOptions.collectorOptions must be set");
        if (!jx_str(co, "image", "")[0])
            return s_fail(msg, "historyServerOptions.collectorOptions.image must be set");
        for (size_t k = 0;
             k < sizeof(s_collector_forbidden_env) / sizeof(s_collector_forbidden_env[0]); k++)
            if (s_env_exists(jx_get(co, "env"), s_collector_forbidden_env[k], true))
                return s_fail(msg,
                              "historyServerOptions.collectorOptions.env must not contain %s: it "
                              "is managed by "
                              "KubeRay and injected automatically into the collector container",
                              s_collector_forbidden_env[k]);
        const json_t *be = s_env_by_name(jx_get(co, "env"), "STORAGE_BACKEND");
        if (!be || !jx_str(be, "value", "")[0])
            return s_fail(
                msg,
                "STORAGE_BACKEND environment variable must be set with a literal string value in "
                "historyServerOptions.collectorOptions.env");
    }
    bool auth = strcmp(jx_str(spec, "authOptions.mode", ""), "token") == 0;
    bool k8s_auth = jx_bool(spec, "authOptions.enableK8sTokenAuth", false);
    if (auth) {
        const char *rv = jx_str(spec, "rayVersion", "");
        if (!rv[0])
            return s_fail(
                msg,
                "authOptions.mode is 'token' but RayVersion was not specified. Ray version 2.52.0 "
                "or later is required");
        int cmp = 0;
        buf_t perr;
        buf_init(&perr, S_MSG_MAX);
        rc = validate_version_cmp(rv, S_MIN_AUTH_VERSION, &cmp, &perr);
        if (rc == VALIDATE_INVALID)
            rc = s_fail(msg, "authOptions.mode is 'token' but RayVersion format is invalid: %s, %s",
                        rv, buf_str(&perr));
        buf_free(&perr);
        if (rc)
            return rc;
        if (cmp < 0)
            return s_fail(
                msg, "authOptions.mode is 'token' but minimum Ray version is 2.52.0, got %s", rv);
        if (k8s_auth) {
            buf_init(&perr, S_MSG_MAX);
            rc = validate_version_cmp(rv, S_MIN_K8S_AUTH_VERSION, &cmp, &perr);
            buf_free(&perr);
            if (rc)
                return rc;
            if (cmp < 0)
                return s_fail(msg,
                              "authOptions.enableK8sTokenAuth is enabled but minimum Ray version "
                              "is 2.55.0, got %s",
                              rv);
            if (jx_str(spec, "authOptions.secretName", "")[0])
                return s_fail(msg, "authOptions.enableK8sTokenAuth is enabled and "
                                   "authOptions.secretName is also set");
        }
    } else if (k8s_auth) {
        return s_fail(
            msg,
            "authOptions.enableK8sTokenAuth is enabled but authOptions.mode not set to 'token'");
    }
    const json_t *np = jx_get(spec, "networkPolicy");
    if (np && !json_is_null(np) && !gates->network_policy)
        return s_fail(
            msg,
            "spec.networkPolicy requires the RayClusterNetworkPolicy feature gate to be enabled");
    if ((rc = s_network_policy(spec, msg)))
        return rc;
    const json_t *tls = jx_get(spec, "tlsOptions");
    if (tls && !json_is_null(tls) && !gates->mtls)
        return s_fail(msg,
                      "spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled");
    return s_tls(spec, msg);
}

int validate_upgrade_options(const json_t *rc, buf_t *msg)
{
    const char *type = jx_str(rc, "spec.upgradeStrategy.type", NULL);
    if (!type)
        return 0;
    if (strcmp(type, "Recreate") != 0 && strcmp(type, "None") != 0)
        return s_fail(
            msg,
            "The RayCluster spec is invalid: Spec.UpgradeStrategy.Type value %s is invalid, valid "
            "options are Recreate or None",
            type);
    const char *crd = s_map_str(jx_get(rc, "metadata.labels"), LABEL_ORIGINATED_FROM_CRD);
    if (crd && (strcmp(crd, "RayJob") == 0 || strcmp(crd, "RayService") == 0))
        return s_fail(msg, "upgradeStrategy cannot be set when RayCluster is created by %s", crd);
    return 0;
}

static bool s_cond_true(const json_t *rc, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(rc, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "type", ""), type) == 0 &&
            strcmp(jx_str(c, "status", ""), "True") == 0)
            return true;
    }
    return false;
}

int validate_status(const json_t *rc, buf_t *msg)
{
    if (s_cond_true(rc, "RayClusterSuspending") && s_cond_true(rc, "RayClusterSuspended"))
        return s_fail(
            msg,
            "invalid RayCluster State: rayv1.RayClusterSuspending and rayv1.RayClusterSuspended "
            "conditions should not be both true");
    return 0;
}

int validate_autoscaler_v1_warning(const json_t *spec, buf_t *msg)
{
    const char *v = jx_str(spec, "autoscalerOptions.version", "");
    if (!s_autoscaling(spec) || strcmp(v, "v1") != 0)
        return 0;
    int n = 0, rc = 0;
    size_t i;
    json_t *wg;
    buf_t names;
    buf_init(&names, S_MSG_MAX);
    json_array_foreach(jx_get(spec, "workerGroupSpecs"), i, wg)
    {
        const char *rp = jx_str(wg, "template.spec.restartPolicy", "");
        if (rp[0] && strcmp(rp, "Never") != 0) {
            rc = buf_printf(&names, "%s%s", n ? ", " : "", jx_str(wg, "groupName", ""));
            n++;
        }
    }
    if (rc >= 0 && n > 0)
        rc = buf_printf(msg,
                        "restartPolicy for worker groups [%s] should be Never or unset when using "
                        "autoscaler V1",
                        buf_str(&names));
    buf_free(&names);
    return rc < 0 ? rc : (n > 0 ? 1 : 0);
}

/* Sets obj[key] = value when absent (takes the reference). */
static int s_default(json_t *obj, const char *key, json_t *value)
{
    if (!value)
        return ERR_NOMEM;
    if (json_object_get(obj, key) && !json_is_null(json_object_get(obj, key))) {
        json_decref(value);
        return 0;
    }
    return json_object_set_new(obj, key, value) ? ERR_NOMEM : 0;
}

int validate_apply_defaults(json_t *rc)
{
    if (!json_is_object(rc))
        return ERR_INVAL;
    json_t *spec = json_object_get(rc, "spec");
    if (!json_is_object(spec))
        return 0;
    json_t *hg = json_object_get(spec, "headGroupSpec");
    int r = 0;
    if (json_is_object(hg) && (r = s_default(hg, "rayStartParams", json_object())))
        return r;
    size_t i;
    json_t *wg;
    json_array_foreach(json_object_get(spec, "workerGroupSpecs"), i, wg)
    {
        if (!json_is_object(wg))
            continue;
        if ((r = s_default(wg, "replicas", json_integer(0))) ||
            (r = s_default(wg, "minReplicas", json_integer(0))) ||
            (r = s_default(wg, "maxReplicas", json_integer(INT32_MAX))) ||
            (r = s_default(wg, "numOfHosts", json_integer(1))) ||
            (r = s_default(wg, "rayStartParams", json_object())))
            return r;
    }
    return 0;
}

int validate_event_message(buf_t *out, const char *prefix, const json_t *rc, const char *err)
{
    int r = buf_printf(out, "%s %s/%s: %s", prefix, jx_str(rc, "metadata.namespace", ""),
                       jx_str(rc, "metadata.name", ""), err ? err : "");
    return r < 0 ? r : 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

#define S_BASE_RC                                                                                  \
    "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"metadata\":{\"name\":\"rc\","         \
    "\"namespace\":\"ns\",\"annotations\":{}},\"spec\":{\"rayVersion\":\"2.52.0\","                \
    "\"headGroupSpec\":{\"rayStartParams\":{},\"template\":{\"spec\":{\"containers\":[{\"name\":"  \
    "\"ray-head\",\"image\":\"rayproject/ray:2.52.0\",\"env\":[]}]}}},\"workerGroupSpecs\":[{"     \
    "\"groupName\":\"wg\",\"replicas\":1,\"minReplicas\":0,\"maxReplicas\":5,\"numOfHosts\":1,"    \
    "\"rayStartParams\":{},\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-worker\","      \
    "\"image\":\"rayproject/ray:2.52.0\"}]}}}]}}"

static json_t *s_base(void)
{
    return json_loads(S_BASE_RC, 0, NULL);
}

/* Sets `path` (dotted; arrays by "[i]" not supported: use jx_get on the parent) to JSON text. */
static void s_set(json_t *root, const char *path, const char *json_text)
{
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, NULL);
    if (jx_set_path(root, path, v) != 0)
        printf("validate test: cannot set %s\n", path);
}

static json_t *s_wg0(json_t *rc)
{
    return json_array_get(jx_get(rc, "spec.workerGroupSpecs"), 0);
}

/* Runs validate_spec and compares the message (NULL = expect valid). */
static bool s_spec_is(json_t *rc, const validate_gates_t *g, const char *want)
{
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    int r = validate_spec(jx_get(rc, "spec"), jx_get(rc, "metadata.annotations"), g, &m);
    bool ok = want ? (r == VALIDATE_INVALID && strcmp(buf_str(&m), want) == 0) : r == 0;
    if (!ok)
        printf("validate: got rc %d '%s'\n   want '%s'\n", r, buf_str(&m), want ? want : "(valid)");
    buf_free(&m);
    json_decref(rc);
    return ok;
}

static bool s_meta_is(const char *name, const char *want)
{
    json_t *rc = json_pack("{s:{s:s}}", "metadata", "name", name);
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    int r = validate_metadata(rc, &m);
    bool ok = want ? (r == VALIDATE_INVALID && strcmp(buf_str(&m), want) == 0) : r == 0;
    if (!ok)
        printf("validate meta: got '%s' want '%s'\n", buf_str(&m), want ? want : "(valid)");
    buf_free(&m);
    json_decref(rc);
    return ok;
}

/* Samples KubeRay rejects with the default gates, and their messages. */
static const struct {
    const char *file;
    const char *msg;
} s_rejected_samples[] = {
    {"ray-cluster.historyserver.yaml", "RayClusterHistoryServer feature gate is not enabled"},
    {"ray-cluster.network-policy-deny-all.yaml",
     "spec.networkPolicy requires the RayClusterNetworkPolicy feature gate to be enabled"},
};

static const char *s_expected_reject(const char *file)
{
    for (size_t i = 0; i < sizeof(s_rejected_samples) / sizeof(s_rejected_samples[0]); i++)
        if (strcmp(s_rejected_samples[i].file, file) == 0)
            return s_rejected_samples[i].msg;
    return NULL;
}

/* One RayCluster sample document (selftest_samples()): valid, or rejected as KubeRay does. */
static int s_sample(const char *file, json_t *doc, void *arg)
{
    int failed = 0;
    bool verbose = *(const bool *)arg;
    validate_apply_defaults(doc);
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    int r = validate_metadata(doc, &m);
    if (r == 0)
        r = validate_spec(jx_get(doc, "spec"), jx_get(doc, "metadata.annotations"), NULL, &m);
    if (r == 0)
        r = validate_upgrade_options(doc, &m);
    const char *want = s_expected_reject(file);
    bool ok = want ? (r == VALIDATE_INVALID && strcmp(buf_str(&m), want) == 0) : r == 0;
    if (!ok) {
        printf("validate sample %s: rc %d '%s' (want %s)\n", file, r, buf_str(&m),
               want ? want : "valid");
        failed++;
    } else if (verbose && want) {
        printf("validate sample %s rejected as KubeRay does: %s\n", file, want);
    }
    buf_free(&m);
    return failed;
}

/* Validates every RayCluster document in the samples directory; returns failures. */
static int s_samples(bool verbose, int *count)
{
    return selftest_samples(NULL, "RayCluster", s_sample, &verbose, count);
}

int validate_test(bool verbose)
{
    int failed = 0;
    validate_gates_t g;
    validate_gates_default(&g);
    /* --feature-gates */
    {
        buf_t e;
        buf_init(&e, 512);
        validate_gates_t pg = g;
        CHECK(validate_gates_parse(" RayJobDeletionPolicy=false, SidecarSubmitterRestart=TRUE,"
                                   "RayCronJob=true",
                                   &pg, &e) == 0);
        CHECK(!pg.job_deletion_policy && pg.sidecar_submitter_restart && !pg.mtls);
        CHECK(g.incremental_upgrade && pg.incremental_upgrade &&
              validate_gates_parse("RayServiceIncrementalUpgrade=false", &pg, &e) == 0 &&
              !pg.incremental_upgrade);
        CHECK(validate_gates_parse(NULL, &pg, &e) == 0 && validate_gates_parse("", &pg, &e) == 0);
        validate_gates_t keep = pg;
        CHECK(validate_gates_parse("RayClusterMTLS=true,Bogus=true", &pg, &e) == ERR_INVAL);
        CHECK(strcmp(buf_str(&e), "unrecognized feature gate: Bogus") == 0 && !pg.mtls &&
              memcmp(&pg, &keep, sizeof(pg)) == 0);
        buf_reset(&e);
        CHECK(validate_gates_parse("RayClusterMTLS", &pg, &e) == ERR_INVAL &&
              strcmp(buf_str(&e), "missing bool value for RayClusterMTLS") == 0);
        buf_reset(&e);
        CHECK(validate_gates_parse("RayClusterMTLS=yes", &pg, &e) == ERR_INVAL &&
              strcmp(buf_str(&e), "invalid value of RayClusterMTLS=yes, must be true or false") ==
                  0);
        buf_free(&e);
    }
    json_t *rc;

    CHECK(s_spec_is(s_base(), NULL, NULL));
    /* metadata */
    CHECK(s_meta_is("raycluster-sample", NULL));
    CHECK(s_meta_is("a23456789012345678901234567890123456789012345678901234",
                    "RayCluster name should be no more than 53 characters"));
    CHECK(s_meta_is("1rc", "RayCluster name should be a valid DNS1035 label: [" S_DNS1035_MSG "]"));
    CHECK(s_meta_is("Rc", "RayCluster name should be a valid DNS1035 label: [" S_DNS1035_MSG "]"));
    CHECK(s_meta_is("rc-", "RayCluster name should be a valid DNS1035 label: [" S_DNS1035_MSG "]"));
    CHECK(s_meta_is("", "RayCluster name should be a valid DNS1035 label: [" S_DNS1035_MSG "]"));
    /* containers */
    rc = s_base();
    s_set(rc, "spec.headGroupSpec.template.spec.containers", "[]");
    CHECK(s_spec_is(rc, NULL, "headGroupSpec should have at least one container"));
    rc = s_base();
    s_set(s_wg0(rc), "template.spec.containers", "[]");
    CHECK(s_spec_is(rc, NULL, "workerGroupSpec should have at least one container"));
    /* resources */
    rc = s_base();
    s_set(rc, "spec.headGroupSpec.rayStartParams.num-cpus", "\"1\"");
    s_set(rc, "spec.headGroupSpec.resources", "{\"cpu\":\"1\"}");
    CHECK(s_spec_is(
        rc, NULL,
        "resource fields should not be set in both rayStartParams and Resources for Head group; "
        "please use only one"));
    rc = s_base();
    s_set(s_wg0(rc), "rayStartParams.resources", "\"{}\"");
    s_set(s_wg0(rc), "resources", "{\"TPU\":\"4\"}");
    CHECK(s_spec_is(
        rc, NULL,
        "resource fields should not be set in both rayStartParams and Resources for wg group; "
        "please use only one"));
    /* labels */
    rc = s_base();
    s_set(rc, "spec.headGroupSpec.rayStartParams.labels", "\"a=b\"");
    CHECK(s_spec_is(
        rc, NULL,
        "rayStartParams['labels'] is not supported for Head group; please use the top-level "
        "Labels field instead"));
    rc = s_base();
    s_set(s_wg0(rc), "labels", "{\"bad key\":\"ok\"}");
    CHECK(s_spec_is(rc, NULL,
                    "invalid label key for wg group: 'bad key', error: name part " S_QNAME_MSG));
    rc = s_base();
    s_set(s_wg0(rc), "labels", "{\"k\":\"-bad\"}");
    CHECK(s_spec_is(
        rc, NULL,
        "invalid label value for key 'k' in wg group: '-bad', error: " S_LABEL_VALUE_MSG));
    rc = s_base();
    s_set(s_wg0(rc), "labels", "{\"/k\":\"ok\"}");
    CHECK(s_spec_is(rc, NULL,
                    "invalid label key for wg group: '/k', error: prefix part must be non-empty"));
    rc = s_base();
    s_set(s_wg0(rc), "labels", "{\"ray.io/market-type\":\"spot\",\"region\":\"\"}");
    CHECK(s_spec_is(rc, NULL, NULL));
    /* replicas */
    rc = s_base();
    json_object_del(s_wg0(rc), "minReplicas");
    CHECK(s_spec_is(
        rc, NULL,
        "worker group wg must set both minReplicas and maxReplicas when autoscaling is disabled"));
    rc = s_base();
    json_object_del(s_wg0(rc), "maxReplicas");
    s_set(rc, "spec.enableInTreeAutoscaling", "true");
    CHECK(s_spec_is(rc, NULL, NULL));
    rc = s_base();
    s_set(s_wg0(rc), "minReplicas", "-1");
    CHECK(s_spec_is(rc, NULL, "worker group wg has negative minReplicas -1"));
    rc = s_base();
    s_set(s_wg0(rc), "maxReplicas", "-2");
    CHECK(s_spec_is(rc, NULL, "worker group wg has negative maxReplicas -2"));
    rc = s_base();
    s_set(s_wg0(rc), "minReplicas", "6");
    CHECK(s_spec_is(rc, NULL, "worker group wg has minReplicas 6 greater than maxReplicas 5"));
    /* idle timeout */
    rc = s_base();
    s_set(s_wg0(rc), "idleTimeoutSeconds", "-3");
    CHECK(s_spec_is(rc, NULL, "worker group wg: idleTimeoutSeconds must be non-negative, got -3"));
    rc = s_base();
    s_set(s_wg0(rc), "idleTimeoutSeconds", "60");
    CHECK(s_spec_is(
        rc, NULL,
        "worker group wg: idleTimeoutSeconds is set, but autoscaler v2 is not enabled. Please set "
        ".spec.autoscalerOptions.version to 'v2' (or set RAY_enable_autoscaler_v2 environment "
        "variable to 'true' in the head pod if using KubeRay < 1.4.0)"));
    rc = s_base();
    s_set(s_wg0(rc), "idleTimeoutSeconds", "60");
    s_set(rc, "spec.enableInTreeAutoscaling", "true");
    s_set(rc, "spec.autoscalerOptions", "{\"version\":\"v2\"}");
    CHECK(s_spec_is(rc, NULL, NULL));
    /* priority */
    rc = s_base();
    s_set(s_wg0(rc), "priority", "2");
    s_set(rc, "spec.rayVersion", "\"\"");
    CHECK(s_spec_is(
        rc, NULL,
        "worker group wg: priority is set, but RayVersion was not specified. Ray version 2.56.0 or "
        "later is required"));
    rc = s_base();
    s_set(s_wg0(rc), "priority", "2");
    s_set(rc, "spec.rayVersion", "\"latest\"");
    CHECK(s_spec_is(
        rc, NULL,
        "worker group wg: priority is set, but RayVersion format is invalid: latest, could not "
        "parse \"latest\" as version"));
    rc = s_base();
    s_set(s_wg0(rc), "priority", "2");
    CHECK(s_spec_is(
        rc, NULL,
        "worker group wg: priority is set, but minimum Ray version is 2.56.0, got 2.52.0"));
    rc = s_base();
    s_set(s_wg0(rc), "priority", "2");
    s_set(rc, "spec.rayVersion", "\"2.56.1\"");
    CHECK(s_spec_is(
        rc, NULL,
        "worker group wg: priority is set to 2, but autoscaler v2 is not enabled. Priority is only "
        "supported with autoscaler v2 enabled"));
    /* GCS FT */
    rc = s_base();
    json_object_set_new(jx_get(rc, "metadata.annotations"), "ray.io/ft-enabled",
                        json_string("true"));
    s_set(rc, "spec.gcsFaultToleranceOptions", "{\"redisAddress\":\"redis:6379\"}");
    CHECK(s_spec_is(
        rc, NULL,
        "ray.io/ft-enabled annotation and GcsFaultToleranceOptions are both set. Please use only "
        "GcsFaultToleranceOptions to configure GCS fault tolerance"));
    rc = s_base();
    s_set(rc, "spec.headGroupSpec.template.spec.containers",
          "[{\"name\":\"h\",\"env\":[{\"name\":\"RAY_REDIS_ADDRESS\",\"value\":\"r:6379\"}]}]");
    CHECK(s_spec_is(
        rc, NULL,
        "RAY_REDIS_ADDRESS is set which implicitly enables GCS fault tolerance, but "
        "GcsFaultToleranceOptions is not set. Please set GcsFaultToleranceOptions to enable GCS "
        "fault tolerance"));
    rc = s_base();
    s_set(rc, "spec.gcsFaultToleranceOptions", "{\"redisAddress\":\"redis:6379\"}");
    s_set(rc, "spec.headGroupSpec.rayStartParams.redis-password", "\"x\"");
    CHECK(s_spec_is(
        rc, NULL,
        "cannot set `redis-password` in rayStartParams when GcsFaultToleranceOptions is enabled - "
        "use GcsFaultToleranceOptions.RedisPassword instead"));
    rc = s_base();
    s_set(rc, "spec.gcsFaultToleranceOptions", "{\"redisAddress\":\"redis:6379\"}");
    s_set(rc, "spec.headGroupSpec.template.spec.containers",
          "[{\"name\":\"h\",\"env\":[{\"name\":\"REDIS_PASSWORD\",\"value\":\"x\"}]}]");
    CHECK(s_spec_is(rc, NULL,
                    "cannot set `REDIS_PASSWORD` env var in head Pod when GcsFaultToleranceOptions "
                    "is enabled - "
                    "use GcsFaultToleranceOptions.RedisPassword instead"));
    rc = s_base();
    s_set(rc, "spec.gcsFaultToleranceOptions", "{\"redisAddress\":\"redis:6379\"}");
    s_set(rc, "spec.headGroupSpec.template.spec.containers",
          "[{\"name\":\"h\",\"env\":[{\"name\":\"RAY_REDIS_ADDRESS\",\"value\":\"x\"}]}]");
    CHECK(s_spec_is(
        rc, NULL,
        "cannot set `RAY_REDIS_ADDRESS` env var in head Pod when GcsFaultToleranceOptions is "
        "enabled - use GcsFaultToleranceOptions.RedisAddress instead"));
    rc = s_base();
    s_set(rc, "spec.gcsFaultToleranceOptions", "{\"redisAddress\":\"redis:6379\"}");
    json_object_set_new(jx_get(rc, "metadata.annotations"), "ray.io/external-storage-namespace",
                        json_string("x"));
    CHECK(s_spec_is(
        rc, NULL,
        "cannot set `ray.io/external-storage-namespace` annotation when GcsFaultToleranceOptions "
        "is enabled - use GcsFaultToleranceOptions.ExternalStorageNamespace instead"));
    rc = s_base();
    s_set(rc, "spec.gcsFaultToleranceOptions", "{\"backend\":\"rocksdb\"}");
    CHECK(s_spec_is(
        rc, NULL,
        "the embedded RocksDB GCS fault tolerance backend (GcsFaultToleranceOptions.Backend: "
        "'rocksdb') requires the GCSFaultToleranceEmbeddedStorage feature gate to be enabled"));
    validate_gates_t gr = g;
    gr.gcs_embedded_storage = true;
    rc = s_base();
    s_set(rc, "spec.gcsFaultToleranceOptions", "{\"backend\":\"rocksdb\",\"redisAddress\":\"r\"}");
    CHECK(s_spec_is(rc, &gr,
                    "cannot set GcsFaultToleranceOptions.RedisAddress when backend is 'rocksdb'"));
    rc = s_base();
    s_set(rc, "spec.gcsFaultToleranceOptions",
          "{\"backend\":\"rocksdb\",\"storage\":{\"claimName\":\"c\",\"size\":\"1Gi\"}}");
    CHECK(s_spec_is(rc, &gr,
                    "GcsFaultToleranceOptions.Storage.ClaimName is mutually exclusive with size, "
                    "storageClassName, and accessModes"));
    rc = s_base();
    s_set(rc, "spec.gcsFaultToleranceOptions", "{\"backend\":\"rocksdb\"}");
    s_set(rc, "spec.headGroupSpec.template.spec.volumes", "[{\"name\":\"gcs-storage\"}]");
    CHECK(s_spec_is(
        rc, &gr,
        "cannot set a volume named \"gcs-storage\" in the head Pod when the embedded GCS FT "
        "backend is used - it is managed by KubeRay"));
    rc = s_base();
    s_set(rc, "spec.gcsFaultToleranceOptions",
          "{\"redisAddress\":\"r\",\"storage\":{\"size\":\"1Gi\"}}");
    CHECK(s_spec_is(
        rc, NULL,
        "cannot set GcsFaultToleranceOptions.Storage when backend is 'redis' - it only applies to "
        "the 'rocksdb' backend"));
    rc = s_base();
    s_set(rc, "spec.headGroupSpec.rayStartParams.redis-username", "\"u\"");
    CHECK(s_spec_is(rc, NULL,
                    "cannot set redis username in rayStartParams or environment variables - use "
                    "GcsFaultToleranceOptions.RedisUsername instead"));
    /* suspend */
    validate_gates_t gs = g;
    gs.job_deletion_policy = false;
    rc = s_base();
    s_set(s_wg0(rc), "suspend", "true");
    CHECK(s_spec_is(rc, &gs,
                    "worker group wg can be suspended only when the RayJobDeletionPolicy feature "
                    "gate is enabled"));
    rc = s_base();
    s_set(s_wg0(rc), "suspend", "true");
    s_set(rc, "spec.enableInTreeAutoscaling", "true");
    CHECK(s_spec_is(rc, NULL, "worker group wg cannot be suspended with Autoscaler enabled"));
    /* autoscaler */
    rc = s_base();
    s_set(
        rc, "spec.headGroupSpec.template.spec.containers",
        "[{\"name\":\"h\",\"env\":[{\"name\":\"RAY_enable_autoscaler_v2\",\"value\":\"true\"}]}]");
    CHECK(s_spec_is(
        rc, NULL,
        "environment variable RAY_enable_autoscaler_v2 cannot be set to 'true' when "
        "enableInTreeAutoscaling is false. Please set enableInTreeAutoscaling: true to use "
        "autoscaler v2"));
    rc = s_base();
    s_set(rc, "spec.enableInTreeAutoscaling", "true");
    s_set(rc, "spec.autoscalerOptions", "{\"version\":\"v2\"}");
    s_set(rc, "spec.headGroupSpec.template.spec.containers",
          "[{\"name\":\"h\",\"env\":[{\"name\":\"RAY_enable_autoscaler_v2\",\"value\":\"1\"}]}]");
    CHECK(s_spec_is(
        rc, NULL,
        "both .spec.autoscalerOptions.version and head Pod env var RAY_enable_autoscaler_v2 are "
        "set, please only use the former"));
    rc = s_base();
    s_set(rc, "spec.enableInTreeAutoscaling", "true");
    s_set(rc, "spec.autoscalerOptions", "{\"version\":\"v2\"}");
    s_set(rc, "spec.headGroupSpec.template.spec.restartPolicy", "\"Always\"");
    CHECK(s_spec_is(
        rc, NULL, "restartPolicy for head Pod should be Never or unset when using autoscaler V2"));
    rc = s_base();
    s_set(rc, "spec.enableInTreeAutoscaling", "true");
    s_set(rc, "spec.autoscalerOptions", "{\"version\":\"v2\"}");
    s_set(s_wg0(rc), "template.spec.restartPolicy", "\"OnFailure\"");
    CHECK(s_spec_is(
        rc, NULL,
        "restartPolicy for worker group wg should be Never or unset when using autoscaler V2"));
    rc = s_base();
    s_set(rc, "spec.autoscalerOptions", "{\"idleTimeoutSeconds\":-1}");
    CHECK(s_spec_is(rc, NULL, "autoscalerOptions.idleTimeoutSeconds must be non-negative, got -1"));
    rc = s_base();
    s_set(rc, "spec.autoscalerOptions",
          "{\"env\":[{\"name\":\"KUBERAY_GEN_AUTOSCALER_START_CMD\",\"value\":\"x\"}]}");
    CHECK(s_spec_is(
        rc, NULL,
        "autoscalerOptions.env must not contain KUBERAY_GEN_AUTOSCALER_START_CMD: it is managed by "
        "KubeRay and injected automatically into the autoscaler container"));
    /* history server */
    rc = s_base();
    s_set(rc, "spec.historyServerOptions", "{}");
    CHECK(s_spec_is(rc, NULL, "RayClusterHistoryServer feature gate is not enabled"));
    validate_gates_t gh = g;
    gh.history_server = true;
    rc = s_base();
    s_set(rc, "spec.historyServerOptions", "{}");
    CHECK(s_spec_is(rc, &gh, "historyServerOptions.collectorOptions must be set"));
    rc = s_base();
    s_set(rc, "spec.historyServerOptions", "{\"collectorOptions\":{}}");
    CHECK(s_spec_is(rc, &gh, "historyServerOptions.collectorOptions.image must be set"));
    /* auth */
    rc = s_base();
    s_set(rc, "spec.authOptions", "{\"mode\":\"token\"}");
    s_set(rc, "spec.rayVersion", "\"\"");
    CHECK(s_spec_is(
        rc, NULL,
        "authOptions.mode is 'token' but RayVersion was not specified. Ray version 2.52.0 or later "
        "is required"));
    rc = s_base();
    s_set(rc, "spec.authOptions", "{\"mode\":\"token\"}");
    s_set(rc, "spec.rayVersion", "\"2.46.0\"");
    CHECK(s_spec_is(rc, NULL,
                    "authOptions.mode is 'token' but minimum Ray version is 2.52.0, got 2.46.0"));
    rc = s_base();
    s_set(rc, "spec.authOptions", "{\"mode\":\"token\"}");
    s_set(rc, "spec.rayVersion", "\"2\"");
    CHECK(s_spec_is(rc, NULL,
                    "authOptions.mode is 'token' but RayVersion format is invalid: 2, illegal "
                    "version string \"2\""));
    rc = s_base();
    s_set(rc, "spec.authOptions", "{\"mode\":\"token\",\"enableK8sTokenAuth\":true}");
    CHECK(s_spec_is(
        rc, NULL,
        "authOptions.enableK8sTokenAuth is enabled but minimum Ray version is 2.55.0, got 2.52.0"));
    rc = s_base();
    s_set(rc, "spec.authOptions",
          "{\"mode\":\"token\",\"enableK8sTokenAuth\":true,\"secretName\":\"s\"}");
    s_set(rc, "spec.rayVersion", "\"2.55.0\"");
    CHECK(s_spec_is(
        rc, NULL,
        "authOptions.enableK8sTokenAuth is enabled and authOptions.secretName is also set"));
    rc = s_base();
    s_set(rc, "spec.authOptions", "{\"enableK8sTokenAuth\":true}");
    CHECK(s_spec_is(
        rc, NULL,
        "authOptions.enableK8sTokenAuth is enabled but authOptions.mode not set to 'token'"));
    /* network policy */
    rc = s_base();
    s_set(rc, "spec.networkPolicy", "{}");
    CHECK(s_spec_is(
        rc, NULL,
        "spec.networkPolicy requires the RayClusterNetworkPolicy feature gate to be enabled"));
    validate_gates_t gn = g;
    gn.network_policy = true;
    rc = s_base();
    s_set(rc, "spec.networkPolicy",
          "{\"mode\":\"DenyAllEgress\",\"head\":{\"ingressRules\":[{}]}}");
    CHECK(s_spec_is(
        rc, &gn,
        "networkPolicy.head.ingressRules cannot be set when mode is \"DenyAllEgress\" (ingress is "
        "not restricted)"));
    rc = s_base();
    s_set(rc, "spec.networkPolicy", "{\"workerGroups\":[{\"groupName\":\"nope\"}]}");
    CHECK(s_spec_is(
        rc, &gn,
        "networkPolicy.workerGroups[\"nope\"] does not match any group name in workerGroupSpecs"));
    rc = s_base();
    s_set(rc, "spec.networkPolicy", "{}");
    s_set(s_wg0(rc), "groupName", "\"GPU\"");
    CHECK(s_spec_is(
        rc, &gn,
        "worker group name \"GPU\" must be a valid DNS1123 label when networkPolicy is enabled (it "
        "is embedded in the NetworkPolicy name): [" S_DNS1123_LABEL_MSG "]"));
    /* TLS */
    rc = s_base();
    s_set(rc, "spec.tlsOptions", "{\"enabled\":true}");
    CHECK(s_spec_is(rc, NULL,
                    "spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled"));
    validate_gates_t gt = g;
    gt.mtls = true;
    rc = s_base();
    s_set(rc, "spec.tlsOptions", "{\"enabled\":true}");
    s_set(rc, "spec.headGroupSpec.template.spec.containers",
          "[{\"name\":\"h\",\"env\":[{\"name\":\"RAY_USE_TLS\",\"value\":\"1\"}]}]");
    CHECK(s_spec_is(
        rc, &gt,
        "cannot set RAY_USE_TLS environment variable in head Pod when tlsOptions is set - the "
        "operator manages TLS configuration automatically"));
    rc = s_base();
    s_set(rc, "spec.tlsOptions", "{\"enabled\":true}");
    s_set(s_wg0(rc), "template.spec.containers",
          "[{\"name\":\"w\",\"volumeMounts\":[{\"name\":\"x\",\"mountPath\":\"/etc/ray/tls\"}]}]");
    CHECK(s_spec_is(rc, &gt,
                    "cannot use volume mount at path \"/etc/ray/tls\" in worker group \"wg\" when "
                    "tlsOptions is "
                    "set - the operator manages TLS configuration automatically"));
    /* upgrade options, status, warning, event text */
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    rc = s_base();
    s_set(rc, "spec.upgradeStrategy", "{\"type\":\"Rolling\"}");
    CHECK(validate_upgrade_options(rc, &m) == VALIDATE_INVALID &&
          strcmp(
              buf_str(&m),
              "The RayCluster spec is invalid: Spec.UpgradeStrategy.Type value Rolling is invalid, "
              "valid options are Recreate or None") == 0);
    buf_reset(&m);
    s_set(rc, "spec.upgradeStrategy", "{\"type\":\"Recreate\"}");
    CHECK(validate_upgrade_options(rc, &m) == 0);
    s_set(rc, "metadata.labels", "{\"ray.io/originated-from-crd\":\"RayJob\"}");
    CHECK(validate_upgrade_options(rc, &m) == VALIDATE_INVALID &&
          strcmp(buf_str(&m),
                 "upgradeStrategy cannot be set when RayCluster is created by RayJob") == 0);
    buf_reset(&m);
    s_set(rc, "status",
          "{\"conditions\":[{\"type\":\"RayClusterSuspending\",\"status\":\"True\"},{\"type\":"
          "\"RayClusterSuspended\",\"status\":\"True\"}]}");
    CHECK(
        validate_status(rc, &m) == VALIDATE_INVALID &&
        strcmp(buf_str(&m),
               "invalid RayCluster State: rayv1.RayClusterSuspending and rayv1.RayClusterSuspended "
               "conditions should not be both true") == 0);
    buf_reset(&m);
    CHECK(validate_event_message(&m, VALIDATE_PREFIX_SPEC, rc, "boom") == 0 &&
          strcmp(buf_str(&m), "The RayCluster spec is invalid ns/rc: boom") == 0);
    buf_reset(&m);
    s_set(rc, "spec.enableInTreeAutoscaling", "true");
    s_set(rc, "spec.autoscalerOptions", "{\"version\":\"v1\"}");
    s_set(s_wg0(rc), "template.spec.restartPolicy", "\"Always\"");
    CHECK(validate_autoscaler_v1_warning(jx_get(rc, "spec"), &m) == 1 &&
          strcmp(buf_str(&m), "restartPolicy for worker groups [wg] should be Never or unset when "
                              "using autoscaler V1") == 0);
    json_decref(rc);
    /* defaults */
    rc = json_loads(
        "{\"spec\":{\"headGroupSpec\":{},\"workerGroupSpecs\":[{\"groupName\":\"g\"}]}}", 0, NULL);
    CHECK(validate_apply_defaults(rc) == 0);
    CHECK(jx_int(s_wg0(rc), "maxReplicas", 0) == INT32_MAX &&
          jx_int(s_wg0(rc), "numOfHosts", 0) == 1 &&
          jx_get(rc, "spec.headGroupSpec.rayStartParams") != NULL);
    CHECK(validate_apply_defaults(NULL) == ERR_INVAL);
    json_decref(rc);
    int cmp = 9;
    CHECK(validate_version_cmp("v2.52.0-rc1", "2.52.0", &cmp, &m) == 0 && cmp == 0);
    CHECK(validate_version_cmp("2.9", "2.52.0", &cmp, &m) == 0 && cmp < 0);
    buf_free(&m);
    /* every upstream sample */
    int count = 0;
    failed += s_samples(verbose, &count);
    CHECK(count >= 40);
    if (verbose)
        printf("validate: %d sample RayClusters checked\n", count);
    return SELFTEST_RESULT("validate", verbose);
}

#endif /* RF_SELFTEST */
