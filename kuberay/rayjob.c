/*
 * rayjob: the RayJob model (see rayjob.h), pure functions.
 *
 * Validation follows ray-operator/controllers/ray/utils/validation.go (ValidateRayJobMetadata,
 * ValidateRayJobSpec with validateDeletionConfiguration / validateLegacyDeletionPolicies /
 * validateDeletionRules, ValidateRayJobStatus) check by check, in the same order, with the same
 * texts. In front of the spec checks sit the four CEL rules of the RayJob CRD on
 * deletionStrategy and its deletion conditions: the API server enforces them before KubeRay ever
 * sees the object, so when rayfleet's API server does not evaluate CEL this is where they take
 * effect (and their text is the one a user of a real cluster would see first).
 *
 * The builders follow rayjob_controller.go (constructRayClusterForRayJob, getSubmitterTemplate,
 * getSubmitterContainer, configureSubmitterContainer, createNewK8sJob) and common/job.go
 * (BuildJobSubmitCommand, GetSubmitterTemplate, GetDefaultSubmitterContainer,
 * BuildHeadServiceForRayJob). Go serialises with encoding/json, so the JSON handed to `ray job
 * submit` is produced by s_go_json(): compact, map keys sorted, <, > and & escaped as \u003c,
 * \u003e, \u0026, floats in Go's shortest form.
 */
#include "rayjob.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "labels.h"
#include "names.h"
#include "quote.h"
#include "yaml.h"

#define S_MSG_MAX (64u * 1024u)
/* The generated shell and JSON texts (runtime env, metadata) are bounded by this. */
#define S_TEXT_MAX (1024u * 1024u)
/* k8s.io/apimachinery/pkg/util/rand's alphabet (no vowels, no confusable digits). */
#define S_RAND_ALPHABET "bcdfghjklmnpqrstvwxz2456789"
#define S_RAND_ALPHABET_LEN 27
/* RayJobClusterSelectorKey. */
#define S_SELECTOR_KEY "ray.io/cluster"
/* Submitter container environment (rayjob_controller.go, utils/constant.go). */
#define S_ENV_PYTHONUNBUFFERED "PYTHONUNBUFFERED"
#define S_ENV_DASHBOARD_ADDRESS "RAY_DASHBOARD_ADDRESS"
#define S_ENV_SUBMISSION_ID "RAY_JOB_SUBMISSION_ID"
#define S_ENV_AUTH_MODE "RAY_AUTH_MODE"
#define S_ENV_AUTH_TOKEN "RAY_AUTH_TOKEN"
/* RayDashboardGCSHealthPath and its timeout. */
#define S_HEALTH_PATH "api/gcs_healthz"
#define S_HEALTH_TIMEOUT 10
/* Ray gained `ray job submit --metadata-json` in 2.6.0. */
#define S_METADATA_MIN_VERSION "2.6.0"
/* Default submitter resources (GetDefaultSubmitterContainer). */
#define S_SUBMITTER_CPU_LIMIT "1"
#define S_SUBMITTER_MEM_LIMIT "1Gi"
#define S_SUBMITTER_CPU_REQUEST "500m"
#define S_SUBMITTER_MEM_REQUEST "200Mi"

/* Deletion policies (rayv1.DeletionPolicyType) and their order for the TTL check. */
#define S_DELETE_CLUSTER "DeleteCluster"
#define S_DELETE_WORKERS "DeleteWorkers"
#define S_DELETE_SELF "DeleteSelf"
#define S_DELETE_NONE "DeleteNone"

/* The CEL messages of the RayJob CRD (x-kubernetes-validations on deletionStrategy and on
 * DeletionCondition). */
#define S_CEL_LEGACY_AND_RULES                                                                     \
    "legacy policies (onSuccess/onFailure) and deletionRules cannot be used together within the "  \
    "same deletionStrategy"
#define S_CEL_STRATEGY_EMPTY                                                                       \
    "deletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules field "   \
    "(cannot be empty)"
#define S_CEL_COND_BOTH                                                                            \
    "JobStatus and JobDeploymentStatus cannot be used together within the same deletion "          \
    "condition."
#define S_CEL_COND_NONE                                                                            \
    "the deletion condition requires either the JobStatus or the JobDeploymentStatus field."

#define S_SPEC_PREFIX "The RayJob spec is invalid: "

/* ---- small helpers ---- */

static const char *s_name(const json_t *o)
{
    return jx_str(o, "metadata.name", "");
}

static const char *s_ns(const json_t *o)
{
    return jx_str(o, "metadata.namespace", "");
}

/* True when `key` of `obj` is set to something other than null (a non-nil Go pointer). */
static bool s_present(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v);
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

/* Appends an error line to the optional `err`. */
static void s_err(buf_t *err, const char *text)
{
    if (err)
        buf_puts(err, text);
}

/* The head Ray container (containers[0]) of a RayCluster spec, or NULL. */
static const json_t *s_head_container(const json_t *cluster_spec)
{
    return json_array_get(jx_get(cluster_spec, "headGroupSpec.template.spec.containers"), 0);
}

/* utils.FindContainerPort: the containerPort named `name`, else `def`. */
static json_int_t s_container_port(const json_t *container, const char *name, json_int_t def)
{
    size_t i;
    json_t *p;
    json_array_foreach(jx_get(container, "ports"), i, p)
    {
        if (strcmp(jx_str(p, "name", ""), name) == 0)
            return jx_int(p, "containerPort", def);
    }
    return def;
}

static bool s_env_exists(const json_t *container, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(container, "env"), i, e)
    {
        if (strcmp(jx_str(e, "name", ""), name) == 0)
            return true;
    }
    return false;
}

/* Appends corev1.EnvVar{Name, Value} as Go marshals it: an empty value is omitted. */
static int s_env_append(json_t *container, const char *name, const char *value)
{
    json_t *env = jx_child_arr(container, "env");
    json_t *e = json_pack("{s:s}", "name", name);
    if (e && value && value[0] && json_object_set_new(e, "value", json_string(value)) != 0) {
        json_decref(e);
        e = NULL;
    }
    if (!env || !e || json_array_append_new(env, e) != 0)
        return ERR_NOMEM;
    return 0;
}

/* The RayJob as the controller owner of what it creates (SetControllerReference). */
static json_t *s_owner_refs(const json_t *rj)
{
    return objbuild_controller_refs(rj, LABEL_CRD_RAYJOB);
}

/* The three labels of the submitter Job and its pods. */
static json_t *s_submitter_labels(const json_t *rj)
{
    return json_pack("{s:s,s:s,s:s}", LABEL_ORIGINATED_FROM_CR_NAME, s_name(rj),
                     LABEL_ORIGINATED_FROM_CRD, LABEL_CRD_RAYJOB, LABEL_CREATED_BY,
                     LABEL_CREATED_BY_KUBERAY);
}

/* IsAutoscalingEnabled on a RayCluster spec (NULL = false). */
static bool s_autoscaling(const json_t *cluster_spec)
{
    return jx_bool(cluster_spec, "enableInTreeAutoscaling", false);
}

const char *rayjob_mode(const json_t *rj)
{
    const char *m = jx_str(rj, "spec.submissionMode", NULL);
    return m && m[0] ? m : RAYJOB_MODE_K8SJOB;
}

static bool s_mode_is(const json_t *rj, const char *mode)
{
    return strcmp(rayjob_mode(rj), mode) == 0;
}

/* ---- Go's encoding/json, for the texts KubeRay marshals ---- */

/* Appends a JSON string as Go's encoding/json writes it (HTML-safe escaping). */
static int s_go_json_string(buf_t *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = buf_puts(out, "\"");
    const unsigned char *p = (const unsigned char *)s;
    for (; rc == 0 && *p; p++) {
        unsigned char c = *p;
        char esc[8];
        const char *rep = NULL;
        switch (c) {
        case '"':
            rep = "\\\"";
            break;
        case '\\':
            rep = "\\\\";
            break;
        case '\n':
            rep = "\\n";
            break;
        case '\r':
            rep = "\\r";
            break;
        case '\t':
            rep = "\\t";
            break;
        case '\b':
            rep = "\\b";
            break;
        case '\f':
            rep = "\\f";
            break;
        default:
            if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xf];
                esc[6] = '\0';
                rep = esc;
            } else if (c == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
                /* U+2028 and U+2029 (valid JSON, but not valid JavaScript). */
                rep = p[2] == 0xa8 ? "\\u2028" : "\\u2029";
                p += 2;
            }
        }
        rc = rep ? buf_puts(out, rep) : buf_append(out, &c, 1);
    }
    return rc ? rc : buf_puts(out, "\"");
}

/* Appends a float64 as Go's encoding/json: the shortest text that reads back as `v`, plain
 * decimal when 1e-6 <= |v| < 1e21, else exponent form without a leading zero in the exponent. */
static int s_go_json_real(buf_t *out, double v)
{
    if (!isfinite(v))
        return ERR_INVAL;
    if (v == 0)
        return buf_puts(out, signbit(v) ? "-0" : "0");
    char e[64];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e = [-]d[.ddd]e±XX: collect the digits and the decimal exponent. */
    char digits[32];
    size_t nd = 0;
    const char *p = e;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e' && nd < sizeof(digits) - 1; p++)
        if (*p != '.')
            digits[nd++] = *p;
    digits[nd] = '\0';
    int exp10 = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
    double a = fabs(v);
    int rc = neg ? buf_puts(out, "-") : 0;
    if (rc)
        return rc;
    if (a < 1e-6 || a >= 1e21) {
        rc = buf_append(out, digits, 1);
        if (rc == 0 && nd > 1)
            rc = buf_printf(out, ".%s", digits + 1);
        return rc ? rc : buf_printf(out, "e%c%d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    if (exp10 < 0) {
        rc = buf_puts(out, "0.");
        for (int i = 0; rc == 0 && i < -exp10 - 1; i++)
            rc = buf_puts(out, "0");
        return rc ? rc : buf_puts(out, digits);
    }
    size_t intlen = (size_t)exp10 + 1;
    if (nd <= intlen) {
        rc = buf_puts(out, digits);
        for (size_t i = nd; rc == 0 && i < intlen; i++)
            rc = buf_puts(out, "0");
        return rc;
    }
    rc = buf_append(out, digits, intlen);
    return rc ? rc : buf_printf(out, ".%s", digits + intlen);
}

static int s_key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends `v` as Go's json.Marshal of the equivalent map[string]interface{} tree. */
static int s_go_json(const json_t *v, buf_t *out)
{
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        const char **keys = calloc(n ? n : 1, sizeof(*keys));
        if (!keys)
            return ERR_NOMEM;
        size_t i = 0;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) keys[i++] = k;
        qsort(keys, n, sizeof(*keys), s_key_cmp);
        rc = buf_puts(out, "{");
        for (i = 0; rc == 0 && i < n; i++) {
            if (i)
                rc = buf_puts(out, ",");
            if (rc == 0)
                rc = s_go_json_string(out, keys[i]);
            if (rc == 0)
                rc = buf_puts(out, ":");
            if (rc == 0)
                rc = s_go_json(json_object_get(v, keys[i]), out);
        }
        free(keys);
        return rc ? rc : buf_puts(out, "}");
    }
    case JSON_ARRAY: {
        rc = buf_puts(out, "[");
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (rc == 0 && i)
                rc = buf_puts(out, ",");
            if (rc == 0)
                rc = s_go_json(x, out);
        }
        return rc ? rc : buf_puts(out, "]");
    }
    case JSON_STRING:
        return s_go_json_string(out, json_string_value(v));
    case JSON_INTEGER:
        return buf_printf(out, "%lld", (long long)json_integer_value(v));
    case JSON_REAL:
        return s_go_json_real(out, json_real_value(v));
    case JSON_TRUE:
        return buf_puts(out, "true");
    case JSON_FALSE:
        return buf_puts(out, "false");
    default:
        return buf_puts(out, "null");
    }
}

/* ---- runtimeEnvYAML ---- */

/* UnmarshalRuntimeEnvYAML: parses runtimeEnvYAML into an object. Stores a new reference in *out
 * (NULL for an empty or null document) and returns 0; VALIDATE_INVALID with KubeRay's
 * "failed to unmarshal RuntimeEnvYAML: <yaml>: <cause>" in `msg`; ERR_NOMEM. */
static int s_runtime_env(const char *yaml, json_t **out, buf_t *msg)
{
    *out = NULL;
    if (!yaml || !yaml[0])
        return 0;
    buf_t cause;
    buf_init(&cause, S_MSG_MAX);
    int rc = yaml_go_object(yaml, strlen(yaml), "types.RuntimeEnvType", out, &cause);
    if (rc == ERR_INVAL)
        rc = s_fail(msg, "failed to unmarshal RuntimeEnvYAML: %s: %s", yaml, buf_str(&cause));
    buf_free(&cause);
    return rc;
}

/* ---- validation ---- */

/* ValidateRayJobMetadata. */
static int s_validate_metadata(const json_t *rj, buf_t *msg)
{
    const char *name = s_name(rj);
    if (strlen(name) > RAYJOB_MAX_NAME)
        return s_fail(msg,
                      "The RayJob metadata is invalid: RayJob name should be no more than %d "
                      "characters",
                      RAYJOB_MAX_NAME);
    buf_t errs;
    buf_init(&errs, S_MSG_MAX);
    int n = validate_dns1035_label(name, &errs, NULL);
    int rc = n > 0 ? s_fail(msg,
                            "The RayJob metadata is invalid: RayJob name should be a valid "
                            "DNS1035 label: [%s]",
                            buf_str(&errs))
                   : n;
    buf_free(&errs);
    return rc;
}

/* The CRD's CEL rules on spec.deletionStrategy. */
static int s_validate_cel(const json_t *spec, buf_t *msg)
{
    const json_t *ds = json_object_get(spec, "deletionStrategy");
    if (!json_is_object(ds))
        return 0;
    bool on_success = s_present(ds, "onSuccess");
    bool on_failure = s_present(ds, "onFailure");
    bool rules = s_present(ds, "deletionRules");
    if ((on_success || on_failure) && rules)
        return s_fail(msg, "%s", S_CEL_LEGACY_AND_RULES);
    if (!(on_success && on_failure) && !rules)
        return s_fail(msg, "%s", S_CEL_STRATEGY_EMPTY);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(ds, "deletionRules"), i, r)
    {
        const json_t *cond = json_object_get(r, "condition");
        bool js = s_present(cond, "jobStatus");
        bool jds = s_present(cond, "jobDeploymentStatus");
        if (js && jds)
            return s_fail(msg, "%s", S_CEL_COND_BOTH);
        if (!js && !jds)
            return s_fail(msg, "%s", S_CEL_COND_NONE);
    }
    return 0;
}

/* validateLegacyDeletionPolicies. */
static int s_validate_legacy(const json_t *spec, bool selector, buf_t *msg)
{
    const json_t *ds = json_object_get(spec, "deletionStrategy");
    if (!s_present(ds, "onSuccess") || !s_present(ds, "onFailure"))
        return s_fail(msg, "both DeletionStrategy.OnSuccess and DeletionStrategy.OnFailure must be "
                           "set when using the legacy deletion policy fields of DeletionStrategy");
    const char *ps = jx_str(ds, "onSuccess.policy", NULL);
    const char *pf = jx_str(ds, "onFailure.policy", NULL);
    if (!ps)
        return s_fail(msg, "the DeletionPolicyType field of DeletionStrategy.OnSuccess cannot be "
                           "unset when DeletionStrategy is enabled");
    if (!pf)
        return s_fail(msg, "the DeletionPolicyType field of DeletionStrategy.OnFailure cannot be "
                           "unset when DeletionStrategy is enabled");
    if (selector) {
        if (strcmp(ps, S_DELETE_CLUSTER) == 0 || strcmp(ps, S_DELETE_WORKERS) == 0)
            return s_fail(msg,
                          "the ClusterSelector mode doesn't support DeletionStrategy=%s on "
                          "success",
                          ps);
        if (strcmp(pf, S_DELETE_CLUSTER) == 0 || strcmp(pf, S_DELETE_WORKERS) == 0)
            return s_fail(msg,
                          "the ClusterSelector mode doesn't support DeletionStrategy=%s on "
                          "failure",
                          pf);
    }
    if ((strcmp(ps, S_DELETE_WORKERS) == 0 || strcmp(pf, S_DELETE_WORKERS) == 0) &&
        s_autoscaling(json_object_get(spec, "rayClusterSpec")))
        return s_fail(msg, "DeletionStrategy=DeleteWorkers currently does not support RayCluster "
                           "with autoscaling enabled");
    if (jx_bool(spec, "shutdownAfterJobFinishes", false) &&
        (strcmp(ps, S_DELETE_NONE) == 0 || strcmp(pf, S_DELETE_NONE) == 0))
        return s_fail(msg, S_SPEC_PREFIX "shutdownAfterJobFinshes is set to 'true' while deletion "
                                         "policy is 'DeleteNone'");
    return 0;
}

/* Appends one error of an errors.Join (newline-separated). */
__attribute__((format(printf, 3, 4))) static int s_join(buf_t *msg, int *count, const char *fmt,
                                                        ...)
{
    int rc = *count ? buf_puts(msg, "\n") : 0;
    if (rc == 0) {
        va_list ap;
        va_start(ap, fmt);
        rc = buf_vprintf(msg, fmt, ap);
        va_end(ap);
    }
    (*count)++;
    return rc;
}

/* validateTTLConsistency for the rules of one condition value (`kind` JobStatus or
 * JobDeploymentStatus): TTLs must not decrease along DeleteWorkers, DeleteCluster, DeleteSelf.
 * `ttl[i]` is the TTL of s_order[i], `has[i]` whether there is such a rule. */
static const char *const s_order[3] = {S_DELETE_WORKERS, S_DELETE_CLUSTER, S_DELETE_SELF};

static int s_ttl_order(buf_t *msg, int *count, const char *kind, const char *value,
                       const json_int_t ttl[3], const bool has[3])
{
    int prev = -1;
    for (int i = 0; i < 3; i++) {
        if (!has[i])
            continue;
        if (prev >= 0 && ttl[i] < ttl[prev]) {
            int rc =
                s_join(msg, count, "for %s '%s': %s TTL (%lld) must be >= %s TTL (%lld)", kind,
                       value, s_order[i], (long long)ttl[i], s_order[prev], (long long)ttl[prev]);
            if (rc < 0)
                return rc;
        }
        prev = i;
    }
    return 0;
}

/* validateDeletionRules (and validateDeletionCondition). Go walks its maps of condition values
 * in random order; here the TTL errors come in order of first appearance. */
static int s_validate_rules(const json_t *spec, bool selector, buf_t *msg)
{
    const json_t *rules = jx_get(spec, "deletionStrategy.deletionRules");
    size_t n = json_array_size(rules);
    bool autoscaling = s_autoscaling(json_object_get(spec, "rayClusterSpec"));
    /* groups[g]: a condition (kind, value) with the TTL of each policy of s_order. */
    struct {
        bool deployment;
        const char *value;
        json_int_t ttl[3];
        bool has[3];
    } *groups = calloc(n ? n : 1, sizeof(*groups));
    /* Duplicates of policies outside s_order are found by a scan of the earlier valid rules. */
    bool *valid = calloc(n ? n : 1, sizeof(*valid));
    if (!groups || !valid) {
        free(groups);
        free(valid);
        return ERR_NOMEM;
    }
    size_t ng = 0;
    int count = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const json_t *r = json_array_get(rules, i);
        const json_t *cond = json_object_get(r, "condition");
        const char *policy = jx_str(r, "policy", "");
        bool js = s_present(cond, "jobStatus");
        bool jds = s_present(cond, "jobDeploymentStatus");
        if (js && jds) {
            rc = s_join(msg, &count,
                        "deletionRules[%zu]: cannot set both JobStatus and JobDeploymentStatus at "
                        "the same time",
                        i);
            continue;
        }
        if (!js && !jds) {
            rc = s_join(msg, &count,
                        "deletionRules[%zu]: exactly one of JobStatus and JobDeploymentStatus must "
                        "be set",
                        i);
            continue;
        }
        json_int_t ttl = jx_int(cond, "ttlSeconds", 0);
        if (ttl < 0) {
            rc = s_join(msg, &count, "deletionRules[%zu]: TTLSeconds must be non-negative", i);
            continue;
        }
        if (selector &&
            (strcmp(policy, S_DELETE_CLUSTER) == 0 || strcmp(policy, S_DELETE_WORKERS) == 0)) {
            rc = s_join(msg, &count,
                        "deletionRules[%zu]: DeletionPolicyType '%s' not supported when "
                        "ClusterSelector is set",
                        i, policy);
            continue;
        }
        if (autoscaling && strcmp(policy, S_DELETE_WORKERS) == 0) {
            rc = s_join(msg, &count,
                        "deletionRules[%zu]: DeletionPolicyType 'DeleteWorkers' not supported "
                        "with autoscaling enabled",
                        i);
            continue;
        }
        const char *value = jx_str(cond, js ? "jobStatus" : "jobDeploymentStatus", "");
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++) {
            const json_t *o = json_array_get(rules, j);
            const json_t *oc = json_object_get(o, "condition");
            dup = valid[j] && s_present(oc, "jobStatus") == js &&
                  strcmp(jx_str(oc, js ? "jobStatus" : "jobDeploymentStatus", ""), value) == 0 &&
                  strcmp(jx_str(o, "policy", ""), policy) == 0;
        }
        if (dup) {
            rc = s_join(msg, &count,
                        "deletionRules[%zu]: duplicate rule for DeletionPolicyType '%s' and %s "
                        "'%s'",
                        i, policy, js ? "JobStatus" : "JobDeploymentStatus", value);
            continue;
        }
        valid[i] = true;
        size_t g = 0;
        while (g < ng && !(groups[g].deployment == jds && strcmp(groups[g].value, value) == 0))
            g++;
        if (g == ng) {
            groups[g].deployment = jds;
            groups[g].value = value;
            ng++;
        }
        for (int k = 0; k < 3; k++) {
            if (strcmp(policy, s_order[k]) == 0) {
                groups[g].ttl[k] = ttl;
                groups[g].has[k] = true;
            }
        }
    }
    /* Second passes: JobStatus groups first, then JobDeploymentStatus groups. */
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (size_t g = 0; g < ng && rc == 0; g++)
            if (groups[g].deployment == (pass == 1))
                rc = s_ttl_order(msg, &count, pass ? "JobDeploymentStatus" : "JobStatus",
                                 groups[g].value, groups[g].ttl, groups[g].has);
    free(groups);
    free(valid);
    if (rc < 0)
        return rc;
    return count ? VALIDATE_INVALID : 0;
}

/* validateDeletionConfiguration. */
static int s_validate_deletion(const json_t *spec, const validate_gates_t *g, bool selector,
                               buf_t *msg)
{
    bool shutdown = jx_bool(spec, "shutdownAfterJobFinishes", false);
    if (!shutdown && jx_int(spec, "ttlSecondsAfterFinished", 0) > 0)
        return s_fail(msg, S_SPEC_PREFIX "a RayJob with shutdownAfterJobFinishes set to false "
                                         "cannot have TTLSecondsAfterFinished");
    const json_t *ds = json_object_get(spec, "deletionStrategy");
    if (!ds || json_is_null(ds))
        return 0;
    if (!g->job_deletion_policy)
        return s_fail(msg, "RayJobDeletionPolicy feature gate must be enabled to use "
                           "DeletionStrategy");
    bool legacy = s_present(ds, "onSuccess") || s_present(ds, "onFailure");
    bool rules = json_array_size(json_object_get(ds, "deletionRules")) > 0;
    if (rules && shutdown)
        return s_fail(msg, S_SPEC_PREFIX "spec.shutdownAfterJobFinishes and "
                                         "spec.deletionStrategy.deletionRules are mutually "
                                         "exclusive");
    if (rules && legacy)
        return s_fail(msg, S_SPEC_PREFIX "Cannot use both legacy onSuccess/onFailure fields and "
                                         "deletionRules simultaneously");
    if (legacy)
        return s_validate_legacy(spec, selector, msg);
    if (rules)
        return s_validate_rules(spec, selector, msg);
    return s_fail(msg, S_SPEC_PREFIX "DeletionStrategy requires either BOTH onSuccess and "
                                     "onFailure, OR the deletionRules field (cannot be empty)");
}

/* ValidateRayJobSpec, preceded by the CEL rules when `cel`. */
static int s_validate_spec(const json_t *rj, const validate_gates_t *g, bool cel, buf_t *msg)
{
    const json_t *spec = json_object_get(rj, "spec");
    int rc;
    if (cel && (rc = s_validate_cel(spec, msg)))
        return rc;
    bool suspend = jx_bool(spec, "suspend", false);
    if (suspend && !jx_bool(spec, "shutdownAfterJobFinishes", false))
        return s_fail(msg, S_SPEC_PREFIX "a RayJob with shutdownAfterJobFinishes set to false is "
                                         "not allowed to be suspended");
    if (jx_int(spec, "ttlSecondsAfterFinished", 0) < 0)
        return s_fail(msg, S_SPEC_PREFIX "TTLSecondsAfterFinished must be a non-negative integer");
    const json_t *sel = json_object_get(spec, "clusterSelector");
    bool selector = json_object_size(sel) > 0;
    if ((rc = s_validate_deletion(spec, g, selector, msg)))
        return rc;
    if (suspend && selector)
        return s_fail(msg, S_SPEC_PREFIX "the ClusterSelector mode doesn't support the suspend "
                                         "operation");
    const json_t *rcs = json_object_get(spec, "rayClusterSpec");
    bool has_rcs = rcs && !json_is_null(rcs);
    if (!has_rcs && !selector)
        return s_fail(msg, S_SPEC_PREFIX "one of RayClusterSpec or ClusterSelector must be set");
    const json_t *backoff = json_object_get(spec, "backoffLimit");
    bool has_backoff = json_is_integer(backoff);
    json_int_t backoff_v = json_integer_value(backoff);
    if (selector) {
        const char *cn = json_string_value(json_object_get(sel, S_SELECTOR_KEY));
        if (!cn || !cn[0])
            return s_fail(msg, "cluster name in ClusterSelector should not be empty");
        if (s_mode_is(rj, RAYJOB_MODE_SIDECAR))
            return s_fail(msg, "ClusterSelector is not supported in SidecarMode");
        if (has_backoff && backoff_v > 0)
            return s_fail(msg, S_SPEC_PREFIX "BackoffLimit is incompatible with ClusterSelector "
                                             "mode");
    }
    if (s_mode_is(rj, RAYJOB_MODE_INTERACTIVE) && has_backoff && backoff_v > 0)
        return s_fail(msg, S_SPEC_PREFIX "BackoffLimit is incompatible with InteractiveMode");
    if (s_mode_is(rj, RAYJOB_MODE_SIDECAR)) {
        if (s_present(spec, "submitterPodTemplate"))
            return s_fail(msg, "Currently, SidecarMode doesn't support SubmitterPodTemplate");
        /* With SidecarSubmitterRestart, submitterConfig.backoffLimit is the container's
         * restart budget, so the field is allowed. */
        if (s_present(spec, "submitterConfig") && !g->sidecar_submitter_restart)
            return s_fail(msg, "Currently, SidecarMode doesn't support SubmitterConfig");
        const char *rp = jx_str(rcs, "headGroupSpec.template.spec.restartPolicy", "");
        if (rp[0] && strcmp(rp, "Never") != 0)
            return s_fail(msg, "restartPolicy for head Pod should be Never or unset when using "
                               "SidecarMode");
    }
    if (has_rcs) {
        if (strcmp(jx_str(rcs, "authOptions.mode", ""), "token") == 0 &&
            jx_bool(rcs, "authOptions.enableK8sTokenAuth", false))
            return s_fail(msg, S_SPEC_PREFIX "K8s token auth mode is currently not supported "
                                             "for RayJob");
        buf_t cerr;
        buf_init(&cerr, S_MSG_MAX);
        rc = validate_spec(rcs, jx_get(rj, "metadata.annotations"), g, &cerr);
        if (rc == VALIDATE_INVALID)
            rc = s_fail(msg, S_SPEC_PREFIX "%s", buf_str(&cerr));
        buf_free(&cerr);
        if (rc)
            return rc;
    }
    json_t *env = NULL;
    if ((rc = s_runtime_env(jx_str(spec, "runtimeEnvYAML", ""), &env, msg)))
        return rc;
    json_decref(env);
    const json_t *ads = json_object_get(spec, "activeDeadlineSeconds");
    if (json_is_integer(ads) && json_integer_value(ads) <= 0)
        return s_fail(msg, S_SPEC_PREFIX "activeDeadlineSeconds must be a positive integer");
    const json_t *prds = json_object_get(spec, "preRunningDeadlineSeconds");
    if (json_is_integer(prds) && json_integer_value(prds) <= 0)
        return s_fail(msg, S_SPEC_PREFIX "preRunningDeadlineSeconds must be a positive integer");
    if (has_backoff && backoff_v < 0)
        return s_fail(msg, S_SPEC_PREFIX "backoffLimit must be a positive integer");
    return 0;
}

/* ValidateRayJobStatus. */
static int s_validate_status(const json_t *rj, buf_t *msg)
{
    if (strcmp(jx_str(rj, "status.jobDeploymentStatus", ""), "Waiting") == 0 &&
        !s_mode_is(rj, RAYJOB_MODE_INTERACTIVE))
        return s_fail(msg, "The RayJob status is invalid: JobDeploymentStatus cannot be `Waiting` "
                           "when SubmissionMode is not InteractiveMode");
    return 0;
}

/* rayjob_validate with the CEL rules switchable (the self-test reaches the controller's own
 * deletionStrategy messages, which the CEL rules shadow, with cel = false). */
static int s_validate(const json_t *rj, const validate_gates_t *g, bool cel, const char **reason,
                      buf_t *msg)
{
    validate_gates_t defaults;
    if (!g) {
        validate_gates_default(&defaults);
        g = &defaults;
    }
    const char *why = RAYJOB_EV_INVALID_METADATA;
    int rc = s_validate_metadata(rj, msg);
    if (rc == 0) {
        why = RAYJOB_EV_INVALID_SPEC;
        rc = s_validate_spec(rj, g, cel, msg);
    }
    if (rc == 0) {
        why = RAYJOB_EV_INVALID_STATUS;
        rc = s_validate_status(rj, msg);
    }
    if (reason)
        *reason = rc == VALIDATE_INVALID ? why : NULL;
    return rc;
}

int rayjob_validate(const json_t *rj, const validate_gates_t *g, const char **reason, buf_t *msg)
{
    return s_validate(rj, g, true, reason, msg);
}

int rayjob_validate_spec(const json_t *rj, const validate_gates_t *g, buf_t *msg)
{
    validate_gates_t defaults;
    if (!g) {
        validate_gates_default(&defaults);
        g = &defaults;
    }
    return s_validate_spec(rj, g, false, msg);
}

/* ---- names ---- */

char *rayjob_random_name(const char *base, objbuild_rand_fn rnd, void *ctx)
{
    if (!base || !rnd)
        return NULL;
    char suffix[RAYJOB_RAND_LEN + 1];
    size_t got = 0;
    /* Rejection sampling keeps every letter equally likely (243 = 9 * 27). */
    while (got < RAYJOB_RAND_LEN) {
        unsigned char b[16];
        if (rnd(ctx, b, sizeof(b)) != 0)
            return NULL;
        for (size_t i = 0; i < sizeof(b) && got < RAYJOB_RAND_LEN; i++)
            if (b[i] < 9 * S_RAND_ALPHABET_LEN)
                suffix[got++] = S_RAND_ALPHABET[b[i] % S_RAND_ALPHABET_LEN];
    }
    suffix[got] = '\0';
    buf_t b;
    buf_init(&b, strlen(base) + RAYJOB_RAND_LEN + 2);
    if (buf_printf(&b, "%s-%s", base, suffix) != 0) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

char *rayjob_head_service_name(const json_t *rc)
{
    return names_head_service(s_name(rc), json_object_get(rc, "spec"));
}

/* The port of the head Service of rc named "dashboard" (as FetchHeadServiceURL reads it from
 * the Service), else the head container's, else the default. */
static json_int_t s_dashboard_port(const json_t *rc)
{
    json_t *svc = objbuild_head_service(rc, NULL, NULL);
    json_int_t port = -1;
    size_t i;
    json_t *p;
    json_array_foreach(jx_get(svc, "spec.ports"), i, p)
    {
        if (port < 0 && strcmp(jx_str(p, "name", ""), "dashboard") == 0)
            port = jx_int(p, "port", -1);
    }
    json_decref(svc);
    if (port < 0)
        port = s_container_port(s_head_container(json_object_get(rc, "spec")), "dashboard",
                                RAYJOB_DEFAULT_DASHBOARD_PORT);
    return port;
}

int rayjob_dashboard_url(const json_t *rc, const char *domain, buf_t *out)
{
    if (!rc || !out)
        return ERR_INVAL;
    char *svc = rayjob_head_service_name(rc);
    if (!svc)
        return ERR_NOMEM;
    int r = buf_printf(out, "%s.%s.svc.%s:%lld", svc, s_ns(rc),
                       domain && domain[0] ? domain : RAYJOB_DEFAULT_DOMAIN,
                       (long long)s_dashboard_port(rc));
    free(svc);
    return r;
}

/* ---- the submitter shell ---- */

/* Appends one token of the command line: a space before every token but the first (an empty
 * token still gets its space, as strings.Join does). */
static int s_tok(buf_t *out, size_t start, const char *t)
{
    int rc = out->len > start ? buf_puts(out, " ") : 0;
    return rc ? rc : buf_puts(out, t);
}

/* Appends a token quoted with strconv.Quote. */
static int s_tok_quoted(buf_t *out, size_t start, const char *t)
{
    int rc = out->len > start ? buf_puts(out, " ") : 0;
    return rc ? rc : quote_go(out, t);
}

/* getMetadataJSONForSubmitCommand: the metadata map as JSON, refused before Ray 2.6.0. */
static int s_metadata_json(const json_t *rj, buf_t *json, buf_t *err)
{
    const char *rv = jx_str(rj, "spec.rayClusterSpec.rayVersion", "");
    if (rv[0]) {
        int cmp = 0;
        buf_t perr;
        buf_init(&perr, S_MSG_MAX);
        int rc = validate_version_cmp(rv, S_METADATA_MIN_VERSION, &cmp, &perr);
        buf_free(&perr);
        if (rc == VALIDATE_INVALID) {
            if (err)
                buf_printf(err, "failed to parse Ray version: %s: Invalid Semantic Version", rv);
            return rc;
        }
        if (rc)
            return rc;
        if (cmp < 0) {
            s_err(err, "the Ray version must be at least 2.6.0 to use the metadata field");
            return VALIDATE_INVALID;
        }
    }
    return s_go_json(jx_get(rj, "spec.metadata"), json);
}

/* Float32 fields (entrypointNumCpus/Gpus) as Go reads them: the JSON number rounded to float. */
static double s_float32(const json_t *spec, const char *key)
{
    const json_t *v = json_object_get(spec, key);
    return json_is_number(v) ? (double)(float)json_number_value(v) : 0.0;
}

/* The trimmed entrypoint (strings.TrimSpace on ASCII white space), malloc'd. */
static char *s_trimmed(const char *s)
{
    const char *ws = " \t\n\v\f\r";
    while (*s && strchr(ws, *s))
        s++;
    size_t n = strlen(s);
    while (n && strchr(ws, s[n - 1]))
        n--;
    char *t = malloc(n + 1);
    if (t) {
        memcpy(t, s, n);
        t[n] = '\0';
    }
    return t;
}

/* BuildJobSubmitCommand, joined. `full` adds the status check, --no-wait and the log follow. */
static int s_shell(const json_t *rj, const char *address, const char *health_url,
                   const char *job_id, bool full, buf_t *out, buf_t *err)
{
    const json_t *spec = json_object_get(rj, "spec");
    size_t start = out->len;
    buf_t t;
    buf_init(&t, S_TEXT_MAX);
    json_t *env = NULL;
    char *entry = NULL;
    int rc = buf_printf(&t,
                        "python -c \"import urllib.request; r=urllib.request.urlopen('%s', "
                        "timeout=%d); exit(0 if b'success' in r.read() else 1)\"",
                        health_url, S_HEALTH_TIMEOUT);
    if (rc == 0)
        rc = s_tok(out, start, "until");
    if (rc == 0)
        rc = s_tok(out, start, buf_str(&t));
    if (rc == 0)
        rc = s_tok(out, start, ">/dev/null 2>&1 ; do echo");
    buf_reset(&t);
    if (rc == 0)
        rc = buf_printf(&t, "Waiting for Ray Dashboard GCS to become healthy at %s ...", address);
    if (rc == 0)
        rc = s_tok_quoted(out, start, buf_str(&t));
    if (rc == 0)
        rc = s_tok(out, start, "; sleep 2 ; done ;");
    if (rc == 0 && full) {
        rc = s_tok(out, start, "if ! ray job status --address");
        if (rc == 0)
            rc = s_tok(out, start, address);
        if (rc == 0)
            rc = s_tok(out, start, job_id);
        if (rc == 0)
            rc = s_tok(out, start, ">/dev/null 2>&1 ; then");
    }
    if (rc == 0)
        rc = s_tok(out, start, "ray job submit --address");
    if (rc == 0)
        rc = s_tok(out, start, address);
    if (rc == 0 && full)
        rc = s_tok(out, start, "--no-wait");
    if (rc == 0) {
        rc = s_runtime_env(jx_str(spec, "runtimeEnvYAML", ""), &env, err);
        if (rc == 0 && env) {
            buf_reset(&t);
            rc = s_go_json(env, &t);
            if (rc == 0)
                rc = s_tok(out, start, "--runtime-env-json");
            if (rc == 0)
                rc = s_tok_quoted(out, start, buf_str(&t));
        }
    }
    if (rc == 0 && json_object_size(json_object_get(spec, "metadata")) > 0) {
        buf_reset(&t);
        rc = s_metadata_json(rj, &t, err);
        if (rc == 0)
            rc = s_tok(out, start, "--metadata-json");
        if (rc == 0)
            rc = s_tok_quoted(out, start, buf_str(&t));
    }
    if (rc == 0 && job_id && job_id[0]) {
        rc = s_tok(out, start, "--submission-id");
        if (rc == 0)
            rc = s_tok(out, start, job_id);
    }
    double cpus = s_float32(spec, "entrypointNumCpus");
    double gpus = s_float32(spec, "entrypointNumGpus");
    if (rc == 0 && cpus > 0)
        rc = buf_printf(out, " --entrypoint-num-cpus %f", cpus);
    if (rc == 0 && gpus > 0)
        rc = buf_printf(out, " --entrypoint-num-gpus %f", gpus);
    const char *res = jx_str(spec, "entrypointResources", "");
    if (rc == 0 && res[0]) {
        rc = s_tok(out, start, "--entrypoint-resources");
        if (rc == 0)
            rc = s_tok_quoted(out, start, res);
    }
    if (rc == 0) {
        entry = s_trimmed(jx_str(spec, "entrypoint", ""));
        rc = entry ? s_tok(out, start, "--") : ERR_NOMEM;
    }
    if (rc == 0)
        rc = s_tok(out, start, entry);
    if (rc == 0)
        rc = s_tok(out, start, ";");
    if (rc == 0 && full) {
        rc = s_tok(out, start, "fi ; ray job logs --address");
        if (rc == 0)
            rc = s_tok(out, start, address);
        if (rc == 0)
            rc = s_tok(out, start, "--follow");
        if (rc == 0)
            rc = s_tok(out, start, job_id);
    }
    free(entry);
    json_decref(env);
    buf_free(&t);
    return rc;
}

int rayjob_submitter_shell(const json_t *rj, const char *address, const char *health_url,
                           const char *job_id, bool full, buf_t *out)
{
    if (!rj || !address || !health_url || !out)
        return ERR_INVAL;
    return s_shell(rj, address, health_url, job_id ? job_id : "", full, out, NULL);
}

/* ---- the submitter container ---- */

/* GetDefaultSubmitterContainer for a RayCluster spec. */
static json_t *s_default_container(const json_t *cluster_spec)
{
    const json_t *head = s_head_container(cluster_spec);
    json_t *c =
        json_pack("{s:s,s:s,s:{s:{s:s,s:s},s:{s:s,s:s}}}", "name", RAYJOB_SUBMITTER_CONTAINER,
                  "image", jx_str(head, "image", ""), "resources", "limits", "cpu",
                  S_SUBMITTER_CPU_LIMIT, "memory", S_SUBMITTER_MEM_LIMIT, "requests", "cpu",
                  S_SUBMITTER_CPU_REQUEST, "memory", S_SUBMITTER_MEM_REQUEST);
    const char *pull = jx_str(head, "imagePullPolicy", "");
    if (c && pull[0] && json_object_set_new(c, "imagePullPolicy", json_string(pull)) != 0) {
        json_decref(c);
        c = NULL;
    }
    return c;
}

/* SetContainerTokenAuthEnvVars for a token-auth cluster (RayJob refuses K8s token auth, so only
 * the Secret form is built): RAY_AUTH_MODE=token and RAY_AUTH_TOKEN from the auth Secret. */
static int s_token_auth_env(json_t *container, const json_t *cluster_spec, const char *cluster_name)
{
    int rc = 0;
    if (!s_env_exists(container, S_ENV_AUTH_MODE))
        rc = s_env_append(container, S_ENV_AUTH_MODE, "token");
    if (rc || s_env_exists(container, S_ENV_AUTH_TOKEN))
        return rc;
    const char *secret = jx_str(cluster_spec, "authOptions.secretName", "");
    char *def = secret[0] ? NULL : names_check_name(cluster_name);
    if (!secret[0] && !def)
        return ERR_NOMEM;
    json_t *env = jx_child_arr(container, "env");
    json_t *e = json_pack("{s:s,s:{s:{s:s,s:s}}}", "name", S_ENV_AUTH_TOKEN, "valueFrom",
                          "secretKeyRef", "name", def ? def : secret, "key", OBJ_AUTH_TOKEN_KEY);
    free(def);
    if (!env || !e || json_array_append_new(env, e) != 0)
        return ERR_NOMEM;
    return 0;
}

/* configureSubmitterContainer on `c` for a cluster with spec `cluster_spec` named
 * `cluster_name`. */
static int s_configure(json_t *c, const json_t *rj, const json_t *cluster_spec,
                       const char *cluster_name, bool sidecar, bool sidecar_restart, buf_t *err)
{
    const char *dash = jx_str(rj, "status.dashboardURL", "");
    const char *job_id = jx_str(rj, "status.jobId", "");
    buf_t addr, health, shell;
    buf_init(&addr, S_MSG_MAX);
    buf_init(&health, S_MSG_MAX);
    buf_init(&shell, S_TEXT_MAX);
    int rc;
    if (sidecar) {
        json_int_t port = s_container_port(s_head_container(cluster_spec), "dashboard",
                                           RAYJOB_DEFAULT_DASHBOARD_PORT);
        rc = buf_printf(&addr, "http://127.0.0.1:%lld", (long long)port);
        if (rc == 0)
            rc = buf_printf(&health, "http://localhost:%lld/%s", (long long)port, S_HEALTH_PATH);
    } else {
        rc = buf_printf(&addr, "%s%s", strncmp(dash, "http://", 7) == 0 ? "" : "http://", dash);
        if (rc == 0)
            rc = buf_printf(&health, "%s/%s", buf_str(&addr), S_HEALTH_PATH);
    }
    if (rc == 0)
        rc = s_shell(rj, buf_str(&addr), buf_str(&health), job_id, !sidecar || sidecar_restart,
                     &shell, err);
    if (rc == 0 && (sidecar || json_array_size(json_object_get(c, "command")) == 0)) {
        if (json_object_set_new(c, "command", json_pack("[s,s,s]", "/bin/bash", "-ce", "--")) ||
            json_object_set_new(c, "args", json_pack("[s]", buf_str(&shell))))
            rc = ERR_NOMEM;
    }
    if (rc == 0)
        rc = s_env_append(c, S_ENV_PYTHONUNBUFFERED, "1");
    if (rc == 0)
        rc = s_env_append(c, S_ENV_DASHBOARD_ADDRESS, dash);
    if (rc == 0)
        rc = s_env_append(c, S_ENV_SUBMISSION_ID, job_id);
    if (rc == 0 && strcmp(jx_str(cluster_spec, "authOptions.mode", ""), "token") == 0)
        rc = s_token_auth_env(c, cluster_spec, cluster_name);
    if (rc == ERR_NOMEM)
        s_err(err, "out of memory");
    buf_free(&addr);
    buf_free(&health);
    buf_free(&shell);
    return rc;
}

/* getSubmitterContainer for the cluster spec `cluster_spec` named `cluster_name`. */
static json_t *s_sidecar(const json_t *rj, const json_t *cluster_spec, const char *cluster_name,
                         const validate_gates_t *g, buf_t *err)
{
    if (!jx_str(rj, "status.jobId", "")[0]) {
        s_err(err, "the RayJob has no status.jobId yet");
        return NULL;
    }
    if (!s_head_container(cluster_spec)) {
        s_err(err, "headGroupSpec should have at least one container");
        return NULL;
    }
    bool restart = g && g->sidecar_submitter_restart;
    json_t *c = s_default_container(cluster_spec);
    if (!c) {
        s_err(err, "out of memory");
        return NULL;
    }
    int rc = s_configure(c, rj, cluster_spec, cluster_name, true, restart, err);
    if (rc == 0 && restart && json_object_set_new(c, "restartPolicy", json_string("OnFailure")))
        rc = ERR_NOMEM;
    if (rc) {
        json_decref(c);
        return NULL;
    }
    return c;
}

json_t *rayjob_sidecar_container(const json_t *rj, const validate_gates_t *g, buf_t *err)
{
    return s_sidecar(rj, jx_get(rj, "spec.rayClusterSpec"), jx_str(rj, "status.rayClusterName", ""),
                     g, err);
}

/* ---- the owned objects ---- */

json_t *rayjob_cluster(const json_t *rj, const char *cluster_name, const validate_gates_t *g,
                       buf_t *err)
{
    const json_t *rcs = jx_get(rj, "spec.rayClusterSpec");
    if (!json_is_object(rcs)) {
        s_err(err, "the RayJob has no rayClusterSpec");
        return NULL;
    }
    if (!cluster_name || !cluster_name[0]) {
        s_err(err, "no RayCluster name given");
        return NULL;
    }
    bool sidecar = s_mode_is(rj, RAYJOB_MODE_SIDECAR);
    json_t *labels = json_deep_copy(jx_get(rj, "metadata.labels"));
    if (!json_is_object(labels)) {
        json_decref(labels);
        labels = json_object();
    }
    const json_t *rj_ann = jx_get(rj, "metadata.annotations");
    json_t *ann = json_is_object(rj_ann) ? json_deep_copy(rj_ann) : NULL;
    if (sidecar && !ann)
        ann = json_object();
    json_t *rc = json_pack("{s:s,s:s,s:{s:s,s:s},s:o}", "apiVersion", "ray.io/v1", "kind",
                           "RayCluster", "metadata", "name", cluster_name, "namespace", s_ns(rj),
                           "spec", json_deep_copy(rcs));
    bool ok = rc && labels && (!sidecar || ann);
    ok = ok &&
         json_object_set_new(labels, LABEL_ORIGINATED_FROM_CR_NAME, json_string(s_name(rj))) == 0;
    ok = ok &&
         json_object_set_new(labels, LABEL_ORIGINATED_FROM_CRD, json_string(LABEL_CRD_RAYJOB)) == 0;
    ok = ok &&
         json_object_set_new(labels, LABEL_JOB_SUBMISSION_MODE, json_string(rayjob_mode(rj))) == 0;
    ok = ok && jx_set_path(rc, "metadata.labels", json_incref(labels)) == 0;
    if (ok && sidecar)
        ok = json_object_set_new(ann, ANN_DISABLE_HEAD_RESTART, json_string("true")) == 0;
    if (ok && ann && json_object_size(ann) > 0)
        ok = jx_set_path(rc, "metadata.annotations", json_incref(ann)) == 0;
    ok = ok && jx_set_path(rc, "metadata.ownerReferences", s_owner_refs(rj)) == 0;
    json_decref(labels);
    json_decref(ann);
    if (!ok) {
        s_err(err, "out of memory");
        json_decref(rc);
        return NULL;
    }
    if (sidecar) {
        json_t *spec = json_object_get(rc, "spec");
        json_t *c = s_sidecar(rj, spec, cluster_name, g, err);
        json_t *pspec = c ? jx_get(spec, "headGroupSpec.template.spec") : NULL;
        json_t *containers = pspec ? jx_child_arr(pspec, "containers") : NULL;
        if (!containers || json_array_append_new(containers, c) != 0 ||
            json_object_set_new(pspec, "restartPolicy", json_string("Never")) != 0) {
            if (c && !containers)
                json_decref(c);
            json_decref(rc);
            return NULL;
        }
    }
    return rc;
}

json_t *rayjob_head_service(const json_t *rj, const json_t *rc, buf_t *err)
{
    return objbuild_owner_head_service(rj, LABEL_CRD_RAYJOB, rc, err);
}

json_t *rayjob_submitter_job(const json_t *rj, const json_t *rc, buf_t *err)
{
    const json_t *user = jx_get(rj, "spec.submitterPodTemplate");
    const json_t *cspec = json_object_get(rc, "spec");
    json_t *tmpl = NULL;
    if (user && !json_is_null(user)) {
        tmpl = json_deep_copy(user);
    } else {
        if (!s_head_container(cspec)) {
            s_err(err, "headGroupSpec should have at least one container");
            return NULL;
        }
        tmpl = json_pack("{s:{s:[o],s:s}}", "spec", "containers", s_default_container(cspec),
                         "restartPolicy", "Never");
        const json_t *ips = jx_get(cspec, "headGroupSpec.template.spec.imagePullSecrets");
        if (tmpl && json_array_size(ips) > 0 &&
            jx_set_path(tmpl, "spec.imagePullSecrets", json_deep_copy(ips)) != 0) {
            json_decref(tmpl);
            tmpl = NULL;
        }
    }
    if (!tmpl) {
        s_err(err, "out of memory");
        return NULL;
    }
    json_t *c0 = json_array_get(jx_get(tmpl, "spec.containers"), 0);
    if (!json_is_object(c0)) {
        s_err(err, "submitterPodTemplate should have at least one container");
        json_decref(tmpl);
        return NULL;
    }
    if (s_configure(c0, rj, cspec, s_name(rc), false, false, err) != 0) {
        json_decref(tmpl);
        return NULL;
    }
    json_t *labels = s_submitter_labels(rj);
    json_t *meta = jx_child_obj(tmpl, "metadata");
    json_t *tl = meta ? jx_child_obj(meta, "labels") : NULL;
    bool ok = labels && tl && json_object_update(tl, labels) == 0;
    const json_t *sc = jx_get(rj, "spec.submitterConfig.backoffLimit");
    json_int_t backoff =
        json_is_integer(sc) ? json_integer_value(sc) : RAYJOB_DEFAULT_SUBMITTER_BACKOFF;
    json_t *job =
        ok ? json_pack("{s:s,s:s,s:{s:s,s:s,s:O,s:o},s:{s:I,s:O}}", "apiVersion", "batch/v1",
                       "kind", "Job", "metadata", "name", s_name(rj), "namespace", s_ns(rj),
                       "labels", labels, "ownerReferences", s_owner_refs(rj), "spec",
                       "backoffLimit", (json_int_t)backoff, "template", tmpl)
           : NULL;
    json_decref(labels);
    json_decref(tmpl);
    if (!job)
        s_err(err, "out of memory");
    return job;
}

json_t *rayjob_submit_body(const json_t *rj, const char *job_id, buf_t *err)
{
    const json_t *spec = json_object_get(rj, "spec");
    json_t *body = json_object();
    json_t *env = NULL;
    if (!body) {
        s_err(err, "out of memory");
        return NULL;
    }
    bool ok = true;
    const char *entry = jx_str(spec, "entrypoint", "");
    if (entry[0])
        ok = json_object_set_new(body, "entrypoint", json_string(entry)) == 0;
    if (ok && job_id && job_id[0])
        ok = json_object_set_new(body, "submission_id", json_string(job_id)) == 0;
    const json_t *md = json_object_get(spec, "metadata");
    if (ok && json_object_size(md) > 0)
        ok = json_object_set_new(body, "metadata", json_deep_copy(md)) == 0;
    int rc = ok ? s_runtime_env(jx_str(spec, "runtimeEnvYAML", ""), &env, err) : ERR_NOMEM;
    if (rc == 0 && env && json_object_size(env) > 0)
        rc = json_object_set(body, "runtime_env", env) ? ERR_NOMEM : 0;
    /* Go marshals the float32 in its shortest form, which reads back as the number written. */
    const json_t *jc = json_object_get(spec, "entrypointNumCpus");
    const json_t *jg = json_object_get(spec, "entrypointNumGpus");
    double cpus =
        json_is_number(jc) && (float)json_number_value(jc) != 0 ? json_number_value(jc) : 0;
    double gpus =
        json_is_number(jg) && (float)json_number_value(jg) != 0 ? json_number_value(jg) : 0;
    if (rc == 0 && cpus != 0)
        rc = json_object_set_new(body, "entrypoint_num_cpus", json_real(cpus)) ? ERR_NOMEM : 0;
    if (rc == 0 && gpus != 0)
        rc = json_object_set_new(body, "entrypoint_num_gpus", json_real(gpus)) ? ERR_NOMEM : 0;
    const char *res = jx_str(spec, "entrypointResources", "");
    if (rc == 0 && res[0]) {
        json_error_t je;
        json_t *r = json_loads(res, 0, &je);
        if (!json_is_object(r)) {
            if (err)
                buf_printf(err, "failed to parse entrypointResources %s: %s", res,
                           r ? "not a JSON object" : je.text);
            json_decref(r);
            rc = VALIDATE_INVALID;
        } else if (json_object_size(r) > 0) {
            rc = json_object_set_new(body, "entrypoint_resources", r) ? ERR_NOMEM : 0;
        } else {
            json_decref(r);
        }
    }
    json_decref(env);
    if (rc) {
        if (rc == ERR_NOMEM)
            s_err(err, "out of memory");
        json_decref(body);
        return NULL;
    }
    return body;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

#define S_BASE_RJ                                                                                  \
    "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayJob\",\"metadata\":{\"name\":\"rj\","             \
    "\"namespace\":\"ns\",\"uid\":\"u1\"},\"spec\":{\"entrypoint\":\"python x.py\","               \
    "\"rayClusterSpec\":{\"rayVersion\":\"2.52.0\",\"headGroupSpec\":{\"rayStartParams\":{},"      \
    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-head\",\"image\":"                    \
    "\"rayproject/ray:2.52.0\",\"ports\":[{\"name\":\"dashboard\",\"containerPort\":8265}]}]}}},"  \
    "\"workerGroupSpecs\":[{\"groupName\":\"wg\",\"replicas\":1,\"minReplicas\":0,"                \
    "\"maxReplicas\":5,\"numOfHosts\":1,\"rayStartParams\":{},\"template\":{\"spec\":{"            \
    "\"containers\":[{\"name\":\"ray-worker\",\"image\":\"rayproject/ray:2.52.0\"}]}}}]}}}"

static json_t *s_base(void)
{
    return json_loads(S_BASE_RJ, 0, NULL);
}

/* Sets the dotted `path` of `root` to the JSON text. */
static void s_set(json_t *root, const char *path, const char *json_text)
{
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, NULL);
    if (!v || jx_set_path(root, path, v) != 0)
        printf("rayjob test: cannot set %s\n", path);
}

/* Runs the validation (CEL rules on or off) and compares reason and message; NULL want = valid.
 * Consumes rj. */
static bool s_is(json_t *rj, const validate_gates_t *g, bool cel, const char *want_reason,
                 const char *want)
{
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    const char *reason = "unset";
    int r = s_validate(rj, g, cel, &reason, &m);
    bool ok = want ? r == VALIDATE_INVALID && reason && strcmp(reason, want_reason) == 0 &&
                         strcmp(buf_str(&m), want) == 0
                   : r == 0 && reason == NULL;
    if (!ok)
        printf("rayjob validate: got rc %d reason %s '%s'\n   want '%s'\n", r,
               reason ? reason : "-", buf_str(&m), want ? want : "(valid)");
    buf_free(&m);
    json_decref(rj);
    return ok;
}

#define S_SPEC(rj, msg) s_is((rj), NULL, true, RAYJOB_EV_INVALID_SPEC, (msg))
#define S_SPEC_NOCEL(rj, msg) s_is((rj), NULL, false, RAYJOB_EV_INVALID_SPEC, (msg))
#define S_VALID(rj) s_is((rj), NULL, true, NULL, NULL)

static json_t *s_with(const char *path, const char *json_text)
{
    json_t *rj = s_base();
    s_set(rj, path, json_text);
    return rj;
}

/* A base RayJob in clusterSelector mode (no rayClusterSpec). */
static json_t *s_selector(void)
{
    json_t *rj = s_base();
    json_object_del(json_object_get(rj, "spec"), "rayClusterSpec");
    s_set(rj, "spec.clusterSelector", "{\"ray.io/cluster\":\"c1\"}");
    return rj;
}

static int s_test_metadata_status(void)
{
    int failed = 0;
    CHECK(S_VALID(s_base()));
    json_t *rj = s_with("metadata.name", "\"a23456789012345678901234567890123456789012345678\"");
    CHECK(s_is(rj, NULL, true, RAYJOB_EV_INVALID_METADATA,
               "The RayJob metadata is invalid: RayJob name should be no more than 47 "
               "characters"));
    buf_t dns;
    buf_init(&dns, S_MSG_MAX);
    CHECK(validate_dns1035_label("1rj", &dns, NULL) == 1);
    buf_t want;
    buf_init(&want, S_MSG_MAX);
    buf_printf(&want,
               "The RayJob metadata is invalid: RayJob name should be a valid DNS1035 label: [%s]",
               buf_str(&dns));
    /* The metadata failure wins over a spec failure (order metadata, spec, status). */
    rj = s_with("metadata.name", "\"1rj\"");
    s_set(rj, "spec.activeDeadlineSeconds", "0");
    CHECK(s_is(rj, NULL, true, RAYJOB_EV_INVALID_METADATA, buf_str(&want)));
    buf_free(&dns);
    buf_free(&want);
    rj = s_with("status.jobDeploymentStatus", "\"Waiting\"");
    CHECK(s_is(rj, NULL, true, RAYJOB_EV_INVALID_STATUS,
               "The RayJob status is invalid: JobDeploymentStatus cannot be `Waiting` when "
               "SubmissionMode is not InteractiveMode"));
    rj = s_with("status.jobDeploymentStatus", "\"Waiting\"");
    s_set(rj, "spec.submissionMode", "\"InteractiveMode\"");
    CHECK(S_VALID(rj));
    /* A spec failure wins over a status failure. */
    rj = s_with("status.jobDeploymentStatus", "\"Waiting\"");
    s_set(rj, "spec.backoffLimit", "-1");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: backoffLimit must be a positive integer"));
    return failed;
}

static int s_test_deletion(void)
{
    int failed = 0;
    validate_gates_t off;
    validate_gates_default(&off);
    off.job_deletion_policy = false;
    const char *legacy =
        "{\"onSuccess\":{\"policy\":\"DeleteCluster\"},\"onFailure\":{\"policy\":\"DeleteSelf\"}}";
    CHECK(S_VALID(s_with("spec.deletionStrategy", legacy)));
    CHECK(s_is(s_with("spec.deletionStrategy", legacy), &off, true, RAYJOB_EV_INVALID_SPEC,
               "RayJobDeletionPolicy feature gate must be enabled to use DeletionStrategy"));
    json_t *rj = s_with("spec.ttlSecondsAfterFinished", "10");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: a RayJob with shutdownAfterJobFinishes set to "
                     "false cannot have TTLSecondsAfterFinished"));
    /* CEL rules */
    CHECK(S_SPEC(s_with("spec.deletionStrategy",
                        "{\"onSuccess\":{\"policy\":\"DeleteCluster\"},\"deletionRules\":[]}"),
                 S_CEL_LEGACY_AND_RULES));
    CHECK(S_SPEC(s_with("spec.deletionStrategy", "{}"), S_CEL_STRATEGY_EMPTY));
    CHECK(S_SPEC(s_with("spec.deletionStrategy", "{\"onSuccess\":{\"policy\":\"DeleteSelf\"}}"),
                 S_CEL_STRATEGY_EMPTY));
    CHECK(S_SPEC(s_with("spec.deletionStrategy",
                        "{\"deletionRules\":[{\"policy\":\"DeleteSelf\",\"condition\":{"
                        "\"jobStatus\":\"FAILED\",\"jobDeploymentStatus\":\"Failed\"}}]}"),
                 S_CEL_COND_BOTH));
    CHECK(S_SPEC(s_with("spec.deletionStrategy",
                        "{\"deletionRules\":[{\"policy\":\"DeleteSelf\",\"condition\":{"
                        "\"ttlSeconds\":1}}]}"),
                 S_CEL_COND_NONE));
    /* The controller's own checks */
    const char *rule_ok = "{\"deletionRules\":[{\"policy\":\"DeleteCluster\",\"condition\":{"
                          "\"jobStatus\":\"SUCCEEDED\"}}]}";
    CHECK(S_VALID(s_with("spec.deletionStrategy", rule_ok)));
    rj = s_with("spec.deletionStrategy", rule_ok);
    s_set(rj, "spec.shutdownAfterJobFinishes", "true");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: spec.shutdownAfterJobFinishes and "
                     "spec.deletionStrategy.deletionRules are mutually exclusive"));
    rj = s_with("spec.deletionStrategy", rule_ok);
    s_set(rj, "spec.deletionStrategy.onFailure", "{\"policy\":\"DeleteSelf\"}");
    CHECK(S_SPEC_NOCEL(rj, "The RayJob spec is invalid: Cannot use both legacy onSuccess/"
                           "onFailure fields and deletionRules simultaneously"));
    CHECK(S_SPEC_NOCEL(s_with("spec.deletionStrategy", "{\"deletionRules\":[]}"),
                       "The RayJob spec is invalid: DeletionStrategy requires either BOTH "
                       "onSuccess and onFailure, OR the deletionRules field (cannot be empty)"));
    CHECK(S_SPEC_NOCEL(
        s_with("spec.deletionStrategy", "{\"onSuccess\":{\"policy\":\"DeleteSelf\"}}"),
        "both DeletionStrategy.OnSuccess and DeletionStrategy.OnFailure must be set when using "
        "the legacy deletion policy fields of DeletionStrategy"));
    CHECK(S_SPEC(s_with("spec.deletionStrategy",
                        "{\"onSuccess\":{},\"onFailure\":{\"policy\":\"DeleteSelf\"}}"),
                 "the DeletionPolicyType field of DeletionStrategy.OnSuccess cannot be unset when "
                 "DeletionStrategy is enabled"));
    CHECK(S_SPEC(s_with("spec.deletionStrategy",
                        "{\"onSuccess\":{\"policy\":\"DeleteSelf\"},\"onFailure\":{}}"),
                 "the DeletionPolicyType field of DeletionStrategy.OnFailure cannot be unset when "
                 "DeletionStrategy is enabled"));
    rj = s_selector();
    s_set(rj, "spec.deletionStrategy", legacy);
    CHECK(S_SPEC(rj, "the ClusterSelector mode doesn't support DeletionStrategy=DeleteCluster on "
                     "success"));
    rj = s_selector();
    s_set(rj, "spec.deletionStrategy",
          "{\"onSuccess\":{\"policy\":\"DeleteSelf\"},\"onFailure\":{\"policy\":"
          "\"DeleteWorkers\"}}");
    CHECK(S_SPEC(rj, "the ClusterSelector mode doesn't support DeletionStrategy=DeleteWorkers on "
                     "failure"));
    rj = s_with("spec.deletionStrategy", "{\"onSuccess\":{\"policy\":\"DeleteWorkers\"},"
                                         "\"onFailure\":{\"policy\":\"DeleteSelf\"}}");
    s_set(rj, "spec.rayClusterSpec.enableInTreeAutoscaling", "true");
    CHECK(S_SPEC(rj, "DeletionStrategy=DeleteWorkers currently does not support RayCluster with "
                     "autoscaling enabled"));
    rj = s_with("spec.deletionStrategy", "{\"onSuccess\":{\"policy\":\"DeleteNone\"},"
                                         "\"onFailure\":{\"policy\":\"DeleteSelf\"}}");
    s_set(rj, "spec.shutdownAfterJobFinishes", "true");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: shutdownAfterJobFinshes is set to 'true' while "
                     "deletion policy is 'DeleteNone'"));
    /* deletionRules */
    CHECK(S_SPEC_NOCEL(s_with("spec.deletionStrategy",
                              "{\"deletionRules\":[{\"policy\":\"DeleteSelf\",\"condition\":{"
                              "\"jobStatus\":\"FAILED\",\"jobDeploymentStatus\":\"Failed\"}}]}"),
                       "deletionRules[0]: cannot set both JobStatus and JobDeploymentStatus at the "
                       "same time"));
    CHECK(S_SPEC_NOCEL(s_with("spec.deletionStrategy",
                              "{\"deletionRules\":[{\"policy\":\"DeleteSelf\",\"condition\":{}}]}"),
                       "deletionRules[0]: exactly one of JobStatus and JobDeploymentStatus must be "
                       "set"));
    CHECK(S_SPEC(s_with("spec.deletionStrategy",
                        "{\"deletionRules\":[{\"policy\":\"DeleteSelf\",\"condition\":{"
                        "\"jobStatus\":\"FAILED\",\"ttlSeconds\":-1}}]}"),
                 "deletionRules[0]: TTLSeconds must be non-negative"));
    rj = s_selector();
    s_set(rj, "spec.deletionStrategy",
          "{\"deletionRules\":[{\"policy\":\"DeleteSelf\",\"condition\":{\"jobStatus\":"
          "\"FAILED\"}},{\"policy\":\"DeleteCluster\",\"condition\":{\"jobStatus\":\"FAILED\"}}]}");
    CHECK(S_SPEC(rj, "deletionRules[1]: DeletionPolicyType 'DeleteCluster' not supported when "
                     "ClusterSelector is set"));
    rj = s_with("spec.deletionStrategy", "{\"deletionRules\":[{\"policy\":\"DeleteWorkers\","
                                         "\"condition\":{\"jobStatus\":\"FAILED\"}}]}");
    s_set(rj, "spec.rayClusterSpec.enableInTreeAutoscaling", "true");
    CHECK(S_SPEC(rj, "deletionRules[0]: DeletionPolicyType 'DeleteWorkers' not supported with "
                     "autoscaling enabled"));
    CHECK(S_SPEC(s_with("spec.deletionStrategy",
                        "{\"deletionRules\":[{\"policy\":\"DeleteCluster\",\"condition\":{"
                        "\"jobStatus\":\"FAILED\"}},{\"policy\":\"DeleteCluster\",\"condition\":{"
                        "\"jobStatus\":\"FAILED\",\"ttlSeconds\":5}}]}"),
                 "deletionRules[1]: duplicate rule for DeletionPolicyType 'DeleteCluster' and "
                 "JobStatus 'FAILED'"));
    CHECK(S_SPEC(s_with("spec.deletionStrategy",
                        "{\"deletionRules\":[{\"policy\":\"DeleteSelf\",\"condition\":{"
                        "\"jobDeploymentStatus\":\"Failed\"}},{\"policy\":\"DeleteSelf\","
                        "\"condition\":{\"jobStatus\":\"FAILED\"}},{\"policy\":\"DeleteSelf\","
                        "\"condition\":{\"jobDeploymentStatus\":\"Failed\"}}]}"),
                 "deletionRules[2]: duplicate rule for DeletionPolicyType 'DeleteSelf' and "
                 "JobDeploymentStatus 'Failed'"));
    CHECK(S_SPEC(s_with("spec.deletionStrategy",
                        "{\"deletionRules\":[{\"policy\":\"DeleteWorkers\",\"condition\":{"
                        "\"jobStatus\":\"FAILED\",\"ttlSeconds\":60}},{\"policy\":"
                        "\"DeleteCluster\",\"condition\":{\"jobStatus\":\"FAILED\",\"ttlSeconds\":"
                        "30}},{\"policy\":\"DeleteSelf\",\"condition\":{\"jobStatus\":\"FAILED\","
                        "\"ttlSeconds\":10}},{\"policy\":\"DeleteWorkers\",\"condition\":{"
                        "\"jobDeploymentStatus\":\"Failed\",\"ttlSeconds\":9}},{\"policy\":"
                        "\"DeleteSelf\",\"condition\":{\"jobDeploymentStatus\":\"Failed\","
                        "\"ttlSeconds\":8}}]}"),
                 "for JobStatus 'FAILED': DeleteCluster TTL (30) must be >= DeleteWorkers TTL "
                 "(60)\nfor JobStatus 'FAILED': DeleteSelf TTL (10) must be >= DeleteCluster TTL "
                 "(30)\nfor JobDeploymentStatus 'Failed': DeleteSelf TTL (8) must be >= "
                 "DeleteWorkers TTL (9)"));
    /* errors.Join of per-rule errors */
    CHECK(S_SPEC_NOCEL(s_with("spec.deletionStrategy",
                              "{\"deletionRules\":[{\"policy\":\"DeleteSelf\",\"condition\":{"
                              "\"jobStatus\":\"FAILED\",\"ttlSeconds\":-1}},{\"policy\":"
                              "\"DeleteSelf\",\"condition\":{}}]}"),
                       "deletionRules[0]: TTLSeconds must be non-negative\ndeletionRules[1]: "
                       "exactly one of JobStatus and JobDeploymentStatus must be set"));
    return failed;
}

static int s_test_spec(void)
{
    int failed = 0;
    json_t *rj = s_with("spec.suspend", "true");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: a RayJob with shutdownAfterJobFinishes set to "
                     "false is not allowed to be suspended"));
    rj = s_with("spec.suspend", "true");
    s_set(rj, "spec.shutdownAfterJobFinishes", "true");
    CHECK(S_VALID(rj));
    rj = s_with("spec.shutdownAfterJobFinishes", "true");
    s_set(rj, "spec.ttlSecondsAfterFinished", "-1");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: TTLSecondsAfterFinished must be a non-negative "
                     "integer"));
    CHECK(S_VALID(s_selector()));
    rj = s_selector();
    s_set(rj, "spec.suspend", "true");
    s_set(rj, "spec.shutdownAfterJobFinishes", "true");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: the ClusterSelector mode doesn't support the "
                     "suspend operation"));
    rj = s_base();
    json_object_del(json_object_get(rj, "spec"), "rayClusterSpec");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: one of RayClusterSpec or ClusterSelector must "
                     "be set"));
    rj = s_with("spec.rayClusterSpec", "null");
    s_set(rj, "spec.clusterSelector", "{}");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: one of RayClusterSpec or ClusterSelector must "
                     "be set"));
    rj = s_selector();
    s_set(rj, "spec.clusterSelector", "{\"ray.io/cluster\":\"\"}");
    CHECK(S_SPEC(rj, "cluster name in ClusterSelector should not be empty"));
    rj = s_selector();
    s_set(rj, "spec.clusterSelector", "{\"other\":\"x\"}");
    CHECK(S_SPEC(rj, "cluster name in ClusterSelector should not be empty"));
    rj = s_selector();
    s_set(rj, "spec.submissionMode", "\"SidecarMode\"");
    CHECK(S_SPEC(rj, "ClusterSelector is not supported in SidecarMode"));
    rj = s_selector();
    s_set(rj, "spec.backoffLimit", "1");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: BackoffLimit is incompatible with "
                     "ClusterSelector mode"));
    rj = s_with("spec.submissionMode", "\"InteractiveMode\"");
    s_set(rj, "spec.backoffLimit", "2");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: BackoffLimit is incompatible with "
                     "InteractiveMode"));
    rj = s_with("spec.submissionMode", "\"InteractiveMode\"");
    s_set(rj, "spec.backoffLimit", "0");
    CHECK(S_VALID(rj));
    CHECK(S_VALID(s_with("spec.submissionMode", "\"SidecarMode\"")));
    rj = s_with("spec.submissionMode", "\"SidecarMode\"");
    s_set(rj, "spec.submitterPodTemplate", "{\"spec\":{}}");
    CHECK(S_SPEC(rj, "Currently, SidecarMode doesn't support SubmitterPodTemplate"));
    rj = s_with("spec.submissionMode", "\"SidecarMode\"");
    s_set(rj, "spec.submitterConfig", "{\"backoffLimit\":1}");
    CHECK(S_SPEC(rj, "Currently, SidecarMode doesn't support SubmitterConfig"));
    validate_gates_t restart;
    validate_gates_default(&restart);
    restart.sidecar_submitter_restart = true;
    rj = s_with("spec.submissionMode", "\"SidecarMode\"");
    s_set(rj, "spec.submitterConfig", "{\"backoffLimit\":1}");
    CHECK(s_is(rj, &restart, true, NULL, NULL));
    rj = s_with("spec.submissionMode", "\"SidecarMode\"");
    s_set(rj, "spec.rayClusterSpec.headGroupSpec.template.spec.restartPolicy", "\"Always\"");
    CHECK(S_SPEC(rj, "restartPolicy for head Pod should be Never or unset when using SidecarMode"));
    rj = s_with("spec.submissionMode", "\"SidecarMode\"");
    s_set(rj, "spec.rayClusterSpec.headGroupSpec.template.spec.restartPolicy", "\"Never\"");
    CHECK(S_VALID(rj));
    rj = s_with("spec.rayClusterSpec.authOptions",
                "{\"mode\":\"token\",\"enableK8sTokenAuth\":true}");
    CHECK(S_SPEC(rj, "The RayJob spec is invalid: K8s token auth mode is currently not supported "
                     "for RayJob"));
    CHECK(S_VALID(s_with("spec.rayClusterSpec.authOptions", "{\"mode\":\"token\"}")));
    CHECK(S_SPEC(s_with("spec.rayClusterSpec.headGroupSpec.template.spec.containers", "[]"),
                 "The RayJob spec is invalid: headGroupSpec should have at least one container"));
    CHECK(S_SPEC(s_with("spec.runtimeEnvYAML", "\"- a\""),
                 "failed to unmarshal RuntimeEnvYAML: - a: error unmarshaling JSON: while decoding "
                 "JSON: json: cannot unmarshal array into Go value of type types.RuntimeEnvType"));
    rj = s_with("spec.runtimeEnvYAML", "\"a: b: c\"");
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    const char *reason = NULL;
    CHECK(rayjob_validate(rj, NULL, &reason, &m) == VALIDATE_INVALID);
    CHECK(strncmp(buf_str(&m),
                  "failed to unmarshal RuntimeEnvYAML: a: b: c: error converting YAML to JSON: "
                  "yaml: line 1: ",
                  strlen("failed to unmarshal RuntimeEnvYAML: a: b: c: error converting YAML to "
                         "JSON: yaml: line 1: ")) == 0);
    CHECK(reason && strcmp(reason, RAYJOB_EV_INVALID_SPEC) == 0);
    buf_free(&m);
    json_decref(rj);
    CHECK(S_VALID(s_with("spec.runtimeEnvYAML", "\"pip: [a]\\nenv_vars: {k: v}\\n\"")));
    CHECK(S_VALID(s_with("spec.runtimeEnvYAML", "\"# only a comment\\n\"")));
    CHECK(S_SPEC(s_with("spec.activeDeadlineSeconds", "0"),
                 "The RayJob spec is invalid: activeDeadlineSeconds must be a positive integer"));
    CHECK(S_SPEC(s_with("spec.preRunningDeadlineSeconds", "-5"),
                 "The RayJob spec is invalid: preRunningDeadlineSeconds must be a positive "
                 "integer"));
    CHECK(S_VALID(s_with("spec.preRunningDeadlineSeconds", "5")));
    CHECK(S_SPEC(s_with("spec.backoffLimit", "-1"),
                 "The RayJob spec is invalid: backoffLimit must be a positive integer"));
    CHECK(S_VALID(s_with("spec.backoffLimit", "3")));
    return failed;
}

/* Fills `n` bytes counting up from *(unsigned char *)ctx. */
static int s_count_rand(void *ctx, unsigned char *out, size_t n)
{
    unsigned char *next = ctx;
    for (size_t i = 0; i < n; i++)
        out[i] = (*next)++;
    return 0;
}

static int s_bad_rand(void *ctx, unsigned char *out, size_t n)
{
    (void)ctx;
    (void)out;
    (void)n;
    return ERR_IO;
}

static bool s_str_is(char *got, const char *want)
{
    bool ok = got && strcmp(got, want) == 0;
    if (!ok)
        printf("rayjob: got '%s' want '%s'\n", got ? got : "(null)", want);
    free(got);
    return ok;
}

static bool s_go_json_is(const char *json_text, const char *want)
{
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, NULL);
    buf_t b;
    buf_init(&b, S_MSG_MAX);
    bool ok = v && s_go_json(v, &b) == 0 && strcmp(buf_str(&b), want) == 0;
    if (!ok)
        printf("rayjob go json: got '%s' want '%s'\n", buf_str(&b), want);
    buf_free(&b);
    json_decref(v);
    return ok;
}

static bool s_real_is(double v, const char *want)
{
    buf_t b;
    buf_init(&b, 64);
    bool ok = s_go_json_real(&b, v) == 0 && strcmp(buf_str(&b), want) == 0;
    if (!ok)
        printf("rayjob go real: got '%s' want '%s'\n", buf_str(&b), want);
    buf_free(&b);
    return ok;
}

static int s_test_helpers(void)
{
    int failed = 0;
    unsigned char seed = 0;
    CHECK(s_str_is(rayjob_random_name("rj", s_count_rand, &seed), "rj-bcdfg"));
    seed = 240; /* 240..242 accepted (240 % 27 = 24: "789"), 243..255 rejected, then 0, 1 */
    CHECK(s_str_is(rayjob_random_name("x", s_count_rand, &seed), "x-789bc"));
    CHECK(rayjob_random_name("x", s_bad_rand, NULL) == NULL);
    CHECK(rayjob_random_name(NULL, s_count_rand, &seed) == NULL);
    json_t *rj = s_base();
    CHECK(strcmp(rayjob_mode(rj), RAYJOB_MODE_K8SJOB) == 0);
    s_set(rj, "spec.submissionMode", "\"HTTPMode\"");
    CHECK(strcmp(rayjob_mode(rj), RAYJOB_MODE_HTTP) == 0);
    json_decref(rj);
    /* Go's encoding/json */
    CHECK(s_go_json_is("{\"b\":1,\"a\":\"<x>&'\\u2028\\u0001\\n\",\"c\":[true,null,{}]}",
                       "{\"a\":\"\\u003cx\\u003e\\u0026'\\u2028\\u0001\\n\",\"b\":1,\"c\":[true,"
                       "null,{}]}"));
    CHECK(s_real_is(0.5, "0.5"));
    CHECK(s_real_is(-0.25, "-0.25"));
    CHECK(s_real_is(100.0, "100"));
    CHECK(s_real_is(123456.789, "123456.789"));
    CHECK(s_real_is(0.1, "0.1"));
    CHECK(s_real_is(0.000001, "0.000001"));
    CHECK(s_real_is(1e-7, "1e-7"));
    CHECK(s_real_is(1.5e-10, "1.5e-10"));
    CHECK(s_real_is(1e21, "1e+21"));
    CHECK(s_real_is(1e20, "100000000000000000000"));
    CHECK(s_real_is(0.0, "0"));
    return failed;
}

/* The test's status for a RayJob: ids as the reconciler would generate them. */
static void s_give_status(json_t *rj, const char *dashboard_url)
{
    char job_id[128], cluster[128];
    snprintf(job_id, sizeof(job_id), "%s-abcde", s_name(rj));
    snprintf(cluster, sizeof(cluster), "%s-fghjk", s_name(rj));
    jx_set_path(rj, "status.jobId", json_string(job_id));
    jx_set_path(rj, "status.rayClusterName", json_string(cluster));
    if (dashboard_url)
        jx_set_path(rj, "status.dashboardURL", json_string(dashboard_url));
}

static const json_t *s_env_of(const json_t *c, const char *name)
{
    return jx_array_find(json_object_get(c, "env"), "name", name);
}

static bool s_owned_by(const json_t *obj, const json_t *rj)
{
    const json_t *o = json_array_get(jx_get(obj, "metadata.ownerReferences"), 0);
    return json_array_size(jx_get(obj, "metadata.ownerReferences")) == 1 &&
           strcmp(jx_str(o, "kind", ""), "RayJob") == 0 &&
           strcmp(jx_str(o, "name", ""), s_name(rj)) == 0 &&
           strcmp(jx_str(o, "uid", ""), jx_str(rj, "metadata.uid", "")) == 0 &&
           jx_bool(o, "controller", false) && jx_bool(o, "blockOwnerDeletion", false);
}

static bool s_label_is(const json_t *obj, const char *key, const char *want)
{
    const char *v = json_string_value(jx_getv(obj, "metadata", "labels", key, NULL));
    bool ok = v && strcmp(v, want) == 0;
    if (!ok)
        printf("rayjob: label %s = '%s', want '%s'\n", key, v ? v : "(none)", want);
    return ok;
}

/* The exact command of ray-job.sample.yaml's submitter (§2.5 template). */
#define S_SAMPLE_DASH "rayjob-sample-fghjk-head-svc.default.svc.cluster.local:8265"
#define S_SAMPLE_ADDR "http://" S_SAMPLE_DASH
#define S_SAMPLE_SHELL                                                                             \
    "until python -c \"import urllib.request; r=urllib.request.urlopen('" S_SAMPLE_ADDR            \
    "/api/gcs_healthz', timeout=10); exit(0 if b'success' in r.read() else 1)\" >/dev/null 2>&1 "  \
    "; do echo \"Waiting for Ray Dashboard GCS to become healthy at " S_SAMPLE_ADDR " ...\" ; "    \
    "sleep 2 ; done ; if ! ray job status --address " S_SAMPLE_ADDR " rayjob-sample-abcde "        \
    ">/dev/null 2>&1 ; then ray job submit --address " S_SAMPLE_ADDR " --no-wait "                 \
    "--runtime-env-json "                                                                          \
    "\"{\\\"env_vars\\\":{\\\"counter_name\\\":\\\"test_counter\\\"},\\\"pip\\\":[\\\"requests=="  \
    "2.26.0\\\",\\\"pendulum==2.1.2\\\"]}\" --submission-id rayjob-sample-abcde -- python "        \
    "/home/ray/samples/sample_code.py ; fi ; ray job logs --address " S_SAMPLE_ADDR " --follow "   \
    "rayjob-sample-abcde"

/* The builders on one sample RayJob (validated, status filled in). Returns failures. */
static int s_sample_builders(const char *file, json_t *rj, bool verbose)
{
    int failed = 0;
    buf_t err;
    buf_init(&err, S_MSG_MAX);
    const char *mode = rayjob_mode(rj);
    bool sidecar = strcmp(mode, RAYJOB_MODE_SIDECAR) == 0;
    s_give_status(rj, NULL);
    const char *cname = jx_str(rj, "status.rayClusterName", "");
    json_t *rc = rayjob_cluster(rj, cname, NULL, &err);
    CHECK(rc != NULL);
    if (!rc) {
        printf("rayjob sample %s: cluster: %s\n", file, buf_str(&err));
        buf_free(&err);
        return failed;
    }
    CHECK(strcmp(s_name(rc), cname) == 0 && strcmp(s_ns(rc), s_ns(rj)) == 0);
    CHECK(s_label_is(rc, LABEL_ORIGINATED_FROM_CR_NAME, s_name(rj)));
    CHECK(s_label_is(rc, LABEL_ORIGINATED_FROM_CRD, LABEL_CRD_RAYJOB));
    CHECK(s_label_is(rc, LABEL_JOB_SUBMISSION_MODE, mode));
    CHECK(s_owned_by(rc, rj));
    const json_t *containers = jx_get(rc, "spec.headGroupSpec.template.spec.containers");
    const json_t *last = json_array_get(containers, json_array_size(containers) - 1);
    if (sidecar) {
        CHECK(json_array_size(containers) ==
              json_array_size(jx_get(rj, "spec.rayClusterSpec.headGroupSpec.template.spec."
                                         "containers")) +
                  1);
        CHECK(strcmp(jx_str(last, "name", ""), RAYJOB_SUBMITTER_CONTAINER) == 0);
        CHECK(strcmp(jx_str(last, "image", ""),
                     jx_str(json_array_get(containers, 0), "image", "?")) == 0);
        CHECK(strcmp(jx_str(rc, "spec.headGroupSpec.template.spec.restartPolicy", ""), "Never") ==
              0);
        CHECK(strcmp(json_string_value(
                         jx_getv(rc, "metadata", "annotations", ANN_DISABLE_HEAD_RESTART, NULL)),
                     "true") == 0);
        const char *args = json_string_value(json_array_get(json_object_get(last, "args"), 0));
        CHECK(args && strstr(args, "ray job submit --address http://127.0.0.1:8265 "
                                   "--runtime-env-json") != NULL);
        CHECK(args && strstr(args, "--no-wait") == NULL && strstr(args, "ray job logs") == NULL);
        CHECK(args && strstr(args, "urlopen('http://localhost:8265/api/gcs_healthz'") != NULL);
        CHECK(s_env_of(last, S_ENV_SUBMISSION_ID) != NULL);
        /* the contract entry point gives the same container */
        json_t *c2 = rayjob_sidecar_container(rj, NULL, &err);
        CHECK(c2 && json_equal(c2, last));
        json_decref(c2);
    } else {
        CHECK(strcmp(jx_str(last, "name", ""), RAYJOB_SUBMITTER_CONTAINER) != 0);
        CHECK(json_equal(jx_get(rc, "spec"), jx_get(rj, "spec.rayClusterSpec")));
        CHECK(jx_getv(rc, "metadata", "annotations", ANN_DISABLE_HEAD_RESTART, NULL) == NULL);
    }
    /* the RayJob's head Service */
    json_t *svc = rayjob_head_service(rj, rc, &err);
    CHECK(svc != NULL);
    char want_svc[256];
    snprintf(want_svc, sizeof(want_svc), "%s-head-svc", s_name(rj));
    CHECK(strcmp(s_name(svc), want_svc) == 0);
    CHECK(json_object_size(jx_get(svc, "metadata.labels")) == 4);
    CHECK(s_label_is(svc, LABEL_NODE_TYPE, NAMES_NODE_HEAD));
    CHECK(s_label_is(svc, LABEL_ORIGINATED_FROM_CR_NAME, s_name(rj)));
    CHECK(s_label_is(svc, LABEL_ORIGINATED_FROM_CRD, LABEL_CRD_RAYJOB));
    char want_id[256];
    snprintf(want_id, sizeof(want_id), "%s-head", s_name(rj));
    CHECK(s_label_is(svc, LABEL_IDENTIFIER, want_id));
    CHECK(strcmp(json_string_value(jx_getv(svc, "spec", "selector", LABEL_CLUSTER, NULL)), cname) ==
          0);
    CHECK(s_owned_by(svc, rj));
    json_decref(svc);
    /* the dashboard URL */
    buf_t url;
    buf_init(&url, S_MSG_MAX);
    CHECK(rayjob_dashboard_url(rc, NULL, &url) == 0);
    char *hs = rayjob_head_service_name(rc);
    CHECK(hs && strncmp(buf_str(&url), hs, strlen(hs)) == 0);
    free(hs);
    jx_set_path(rj, "status.dashboardURL", json_string(buf_str(&url)));
    buf_free(&url);
    if (strcmp(mode, RAYJOB_MODE_K8SJOB) == 0) {
        json_t *job = rayjob_submitter_job(rj, rc, &err);
        CHECK(job != NULL);
        if (!job)
            printf("rayjob sample %s: job: %s\n", file, buf_str(&err));
        CHECK(strcmp(s_name(job), s_name(rj)) == 0 && strcmp(s_ns(job), s_ns(rj)) == 0);
        CHECK(s_label_is(job, LABEL_CREATED_BY, LABEL_CREATED_BY_KUBERAY));
        CHECK(s_label_is(job, LABEL_ORIGINATED_FROM_CR_NAME, s_name(rj)));
        CHECK(s_owned_by(job, rj));
        const json_t *tmpl = jx_get(job, "spec.template");
        CHECK(s_label_is(tmpl, LABEL_ORIGINATED_FROM_CRD, LABEL_CRD_RAYJOB));
        CHECK(jx_int(job, "spec.backoffLimit", -1) ==
              jx_int(rj, "spec.submitterConfig.backoffLimit", RAYJOB_DEFAULT_SUBMITTER_BACKOFF));
        const json_t *c0 = json_array_get(jx_get(tmpl, "spec.containers"), 0);
        const json_t *e = s_env_of(c0, S_ENV_DASHBOARD_ADDRESS);
        CHECK(e && strcmp(jx_str(e, "value", ""), jx_str(rj, "status.dashboardURL", "?")) == 0);
        e = s_env_of(c0, S_ENV_PYTHONUNBUFFERED);
        CHECK(e && strcmp(jx_str(e, "value", ""), "1") == 0);
        e = s_env_of(c0, S_ENV_SUBMISSION_ID);
        CHECK(e && strcmp(jx_str(e, "value", ""), jx_str(rj, "status.jobId", "?")) == 0);
        const char *args = json_string_value(json_array_get(json_object_get(c0, "args"), 0));
        if (s_present(json_object_get(rj, "spec"), "submitterPodTemplate")) {
            /* light-weight submitter: its own container, command and args are kept */
            CHECK(json_equal(json_object_get(c0, "command"),
                             jx_get(json_array_get(jx_get(rj, "spec.submitterPodTemplate.spec."
                                                              "containers"),
                                                   0),
                                    "command")));
            CHECK(args && strcmp(args, "--runtime-env-json") == 0);
            CHECK(strcmp(jx_str(c0, "name", ""), RAYJOB_SUBMITTER_CONTAINER) != 0);
        } else {
            CHECK(strcmp(jx_str(c0, "name", ""), RAYJOB_SUBMITTER_CONTAINER) == 0);
            CHECK(strcmp(jx_str(c0, "image", ""),
                         jx_str(json_array_get(containers, 0), "image", "?")) == 0);
            CHECK(strcmp(jx_str(c0, "resources.requests.cpu", ""), "500m") == 0);
            CHECK(strcmp(jx_str(c0, "resources.limits.memory", ""), "1Gi") == 0);
            CHECK(strcmp(jx_str(tmpl, "spec.restartPolicy", ""), "Never") == 0);
            json_t *cmd = json_pack("[s,s,s]", "/bin/bash", "-ce", "--");
            CHECK(json_equal(json_object_get(c0, "command"), cmd));
            json_decref(cmd);
            CHECK(args && strncmp(args, "until python -c ", 16) == 0);
            if (strcmp(file, "ray-job.sample.yaml") == 0) {
                CHECK(args && strcmp(args, S_SAMPLE_SHELL) == 0);
                if (args && strcmp(args, S_SAMPLE_SHELL) != 0)
                    printf("got  %s\nwant %s\n", args, S_SAMPLE_SHELL);
            }
            if (strcmp(file, "ray-job.resources.yaml") == 0)
                CHECK(args && strstr(args, " --entrypoint-num-cpus 2.000000 "
                                           "--entrypoint-num-gpus 0.500000 "
                                           "--entrypoint-resources \"{\\\"resource1\\\": 1, "
                                           "\\\"resource2\\\": 2}\" -- python ") != NULL);
        }
        json_decref(job);
    }
    json_t *body = rayjob_submit_body(rj, jx_str(rj, "status.jobId", ""), &err);
    CHECK(body != NULL);
    CHECK(strcmp(jx_str(body, "submission_id", ""), jx_str(rj, "status.jobId", "?")) == 0);
    if (jx_str(rj, "spec.runtimeEnvYAML", "")[0])
        CHECK(json_is_object(json_object_get(body, "runtime_env")));
    if (strcmp(file, "ray-job.resources.yaml") == 0) {
        CHECK(jx_get(body, "entrypoint_num_gpus") &&
              json_number_value(jx_get(body, "entrypoint_num_gpus")) == 0.5);
        CHECK(jx_int(body, "entrypoint_resources.resource2", 0) == 2);
    }
    json_decref(body);
    if (verbose)
        printf("rayjob sample %s (%s): cluster %s built\n", file, mode, cname);
    json_decref(rc);
    buf_free(&err);
    return failed;
}

/* One RayJob sample document (selftest_samples()): validates clean and builds. */
static int s_test_sample(const char *file, json_t *doc, void *arg)
{
    int failed = 0;
    bool verbose = *(const bool *)arg;
    if (!jx_str(doc, "metadata.namespace", NULL))
        jx_set_path(doc, "metadata.namespace", json_string("default"));
    jx_set_path(doc, "metadata.uid", json_string("uid-1"));
    /* The API server names a generateName object. */
    const char *gen = jx_str(doc, "metadata.generateName", NULL);
    if (!jx_str(doc, "metadata.name", NULL) && gen) {
        char named[256];
        snprintf(named, sizeof(named), "%sqwxyz", gen);
        jx_set_path(doc, "metadata.name", json_string(named));
    }
    /* The API server's CRD defaults on the embedded RayClusterSpec. */
    json_t *wrap = json_pack("{s:O}", "spec", jx_get(doc, "spec.rayClusterSpec"));
    if (jx_get(doc, "spec.rayClusterSpec"))
        validate_apply_defaults(wrap);
    json_decref(wrap);
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    const char *reason = NULL;
    int r = rayjob_validate(doc, NULL, &reason, &m);
    CHECK(r == 0);
    if (r != 0)
        printf("rayjob sample %s: %s %s\n", file, reason ? reason : "", buf_str(&m));
    buf_free(&m);
    if (r == 0 && jx_get(doc, "spec.rayClusterSpec"))
        failed += s_sample_builders(file, doc, verbose);
    return failed;
}

/* Every RayJob document of ../shared/kuberay/samples/ray-job.*.yaml validates clean and builds. */
static int s_test_samples(bool verbose, int *count)
{
    return selftest_samples("ray-job.", "RayJob", s_test_sample, &verbose, count);
}

static int s_test_shell(void)
{
    int failed = 0;
    json_t *rj = s_base();
    s_set(rj, "spec.metadata", "{\"b\":\"2\",\"a\":\"<1>\"}");
    s_set(rj, "spec.entrypoint", "\"  echo hi \\n\"");
    s_set(rj, "spec.entrypointNumCpus", "0.1");
    buf_t out;
    buf_init(&out, S_TEXT_MAX);
    CHECK(rayjob_submitter_shell(rj, "http://a:1", "http://b:1/api/gcs_healthz", "", false, &out) ==
          0);
    const char *want =
        "until python -c \"import urllib.request; r=urllib.request.urlopen('http://b:1/api/"
        "gcs_healthz', timeout=10); exit(0 if b'success' in r.read() else 1)\" >/dev/null 2>&1 ; "
        "do echo \"Waiting for Ray Dashboard GCS to become healthy at http://a:1 ...\" ; sleep 2 "
        "; done ; ray job submit --address http://a:1 --metadata-json "
        "\"{\\\"a\\\":\\\"\\\\u003c1\\\\u003e\\\",\\\"b\\\":\\\"2\\\"}\" --entrypoint-num-cpus "
        "0.100000 -- echo hi ;";
    CHECK(strcmp(buf_str(&out), want) == 0);
    if (strcmp(buf_str(&out), want) != 0)
        printf("got  %s\nwant %s\n", buf_str(&out), want);
    /* metadata needs Ray 2.6.0 */
    s_set(rj, "spec.rayClusterSpec.rayVersion", "\"2.5.1\"");
    buf_t err;
    buf_init(&err, S_MSG_MAX);
    CHECK(s_shell(rj, "a", "b", "id", true, &out, &err) == VALIDATE_INVALID);
    CHECK(strcmp(buf_str(&err), "the Ray version must be at least 2.6.0 to use the metadata "
                                "field") == 0);
    s_give_status(rj, "d:8265");
    s_set(rj, "spec.submissionMode", "\"SidecarMode\"");
    buf_reset(&err);
    json_t *c = rayjob_sidecar_container(rj, NULL, &err);
    CHECK(c == NULL && strstr(buf_str(&err), "2.6.0") != NULL);
    /* The sidecar with SidecarSubmitterRestart: full form and restartPolicy OnFailure; a custom
     * dashboard port; token auth env. */
    json_object_del(json_object_get(rj, "spec"), "metadata");
    json_object_set_new(jx_get(rj, "spec.rayClusterSpec.headGroupSpec.template.spec.containers.0."
                                   "ports.0"),
                        "containerPort", json_integer(9000));
    s_set(rj, "spec.rayClusterSpec.authOptions", "{\"mode\":\"token\"}");
    validate_gates_t restart;
    validate_gates_default(&restart);
    restart.sidecar_submitter_restart = true;
    c = rayjob_sidecar_container(rj, &restart, &err);
    CHECK(c != NULL);
    const char *args = json_string_value(json_array_get(json_object_get(c, "args"), 0));
    CHECK(args && strstr(args, "if ! ray job status --address http://127.0.0.1:9000 rj-abcde "
                               ">/dev/null 2>&1 ; then ray job submit --address "
                               "http://127.0.0.1:9000 --no-wait --submission-id rj-abcde") != NULL);
    CHECK(args && strstr(args, "urlopen('http://localhost:9000/api/gcs_healthz'") != NULL);
    CHECK(strcmp(jx_str(c, "restartPolicy", ""), "OnFailure") == 0);
    const json_t *tok = s_env_of(c, S_ENV_AUTH_TOKEN);
    CHECK(tok && strcmp(jx_str(tok, "valueFrom.secretKeyRef.name", ""), "rj-fghjk") == 0);
    CHECK(s_env_of(c, S_ENV_AUTH_MODE) != NULL);
    json_decref(c);
    /* K8sJobMode against a cluster: dashboard URL with the http:// prefix already given */
    s_set(rj, "spec.submissionMode", "\"K8sJobMode\"");
    s_set(rj, "status.dashboardURL", "\"http://d:8265\"");
    json_t *rc = rayjob_cluster(rj, "rj-fghjk", NULL, &err);
    json_t *job = rc ? rayjob_submitter_job(rj, rc, &err) : NULL;
    CHECK(job != NULL);
    const json_t *c0 = json_array_get(jx_get(job, "spec.template.spec.containers"), 0);
    args = json_string_value(json_array_get(json_object_get(c0, "args"), 0));
    CHECK(args && strstr(args, " http://d:8265 ") != NULL && strstr(args, "http://http") == NULL);
    /* Token-auth cluster: the submitter gets the token from the cluster's Secret. */
    tok = s_env_of(c0, S_ENV_AUTH_TOKEN);
    CHECK(tok && strcmp(jx_str(tok, "valueFrom.secretKeyRef.key", ""), "auth_token") == 0);
    json_decref(job);
    /* submitterConfig.backoffLimit */
    s_set(rj, "spec.submitterConfig", "{\"backoffLimit\":5}");
    job = rc ? rayjob_submitter_job(rj, rc, &err) : NULL;
    CHECK(jx_int(job, "spec.backoffLimit", 0) == 5);
    json_decref(job);
    /* a user template without containers */
    s_set(rj, "spec.submitterPodTemplate", "{\"spec\":{\"containers\":[]}}");
    buf_reset(&err);
    CHECK(rc && rayjob_submitter_job(rj, rc, &err) == NULL && buf_str(&err)[0]);
    json_decref(rc);
    /* Sidecar cluster without a job id is refused. */
    json_object_del(json_object_get(rj, "status"), "jobId");
    s_set(rj, "spec.submissionMode", "\"SidecarMode\"");
    buf_reset(&err);
    CHECK(rayjob_cluster(rj, "rj-fghjk", NULL, &err) == NULL && buf_str(&err)[0]);
    /* the submit body: bad entrypointResources */
    s_set(rj, "spec.entrypointResources", "\"{bad\"");
    buf_reset(&err);
    CHECK(rayjob_submit_body(rj, "id", &err) == NULL && buf_str(&err)[0]);
    s_set(rj, "spec.entrypointResources", "\"{\\\"r\\\": 1.5}\"");
    json_t *body = rayjob_submit_body(rj, "id", &err);
    CHECK(body && json_real_value(jx_get(body, "entrypoint_resources.r")) == 1.5);
    CHECK(body && strcmp(jx_str(body, "entrypoint", ""), "  echo hi \n") == 0);
    CHECK(body && jx_get(body, "metadata") == NULL && jx_get(body, "runtime_env") == NULL);
    CHECK(body && json_real_value(jx_get(body, "entrypoint_num_cpus")) == 0.1);
    json_decref(body);
    /* dashboard URL: the domain, and a head container without a dashboard port */
    rc = json_pack("{s:{s:s,s:s},s:{s:{s:{s:{s:[{s:s,s:[{s:s,s:i}]}]}}}}}", "metadata", "name", "c",
                   "namespace", "n", "spec", "headGroupSpec", "template", "spec", "containers",
                   "name", "ray-head", "ports", "name", "gcs-server", "containerPort", 6379);
    buf_reset(&out);
    CHECK(rayjob_dashboard_url(rc, "example.org", &out) == 0 &&
          strcmp(buf_str(&out), "c-head-svc.n.svc.example.org:8265") == 0);
    json_decref(rc);
    buf_free(&err);
    buf_free(&out);
    json_decref(rj);
    return failed;
}

int rayjob_test(bool verbose)
{
    int failed = 0;
    failed += s_test_metadata_status();
    failed += s_test_deletion();
    failed += s_test_spec();
    failed += s_test_helpers();
    failed += s_test_shell();
    int count = 0;
    failed += s_test_samples(verbose, &count);
    if (selftest_shared_dir())
        CHECK(count >= 15);
    if (verbose)
        printf("rayjob: %d sample RayJobs\n", count);
    return SELFTEST_RESULT("rayjob", verbose);
}

#endif
