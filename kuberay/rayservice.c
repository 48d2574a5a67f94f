/*
 * rayservice: the RayService model (see rayservice.h), pure functions.
 *
 * Validation follows ray-operator/controllers/ray/utils/validation.go (ValidateRayServiceMetadata
 * with validateInitializingTimeout, ValidateRayServiceSpec, ValidateClusterUpgradeOptions) check
 * by check, in the same order, with the same texts ("The RayService metadata is invalid: ..." /
 * "The RayService spec is invalid: ..."). The builders follow rayservice_controller.go
 * (constructRayClusterForRayService, modifyRayCluster, isClusterSpecHashEqual,
 * isZeroDowntimeUpgradeEnabled, createGateway, createHTTPRoute, updateServeDeployment) and
 * common/service.go (BuildHeadServiceForRayService, BuildServeService, GetServePort); the
 * RayCluster pieces they reuse come from objbuild.h and names.h.
 */
#include "rayservice.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "json.h"
#include "names.h"
#include "rftime.h"
#include "yaml.h"

#define S_MSG_MAX (64u * 1024u)
/* serveConfigV2 is a user string inside a Kubernetes object (itself at most ~1.5 MB). */
#define S_SERVE_CONFIG_MAX (4u * 1024u * 1024u)
/* The canonical JSON of a rayClusterConfig that is hashed. */
#define S_HASH_TEXT_MAX (16u * 1024u * 1024u)
#define S_META_PREFIX "The RayService metadata is invalid: "
#define S_SPEC_PREFIX "The RayService spec is invalid: "
#define S_SERVE_TRUE "true" /* EnableRayClusterServingServiceTrue */

/* ---- small helpers ---- */

static const char *s_name(const json_t *o)
{
    return jx_str(o, "metadata.name", "");
}

static const char *s_ns(const json_t *o)
{
    return jx_str(o, "metadata.namespace", "");
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

/* Appends a text to the optional `err`. */
static void s_err(buf_t *err, const char *text)
{
    if (err)
        buf_puts(err, text);
}

/* A one-element ownerReferences array naming rs as controller. */
static json_t *s_owner_refs(const json_t *rs)
{
    return objbuild_controller_refs(rs, RAYSERVICE_CRD);
}

/* A deep copy of the object at `path` of o, or a new empty object when it is not an object. */
static json_t *s_obj_copy(const json_t *o, const char *path)
{
    const json_t *v = jx_get(o, path);
    return json_is_object(v) ? json_deep_copy(v) : json_object();
}

/* The head Ray container (containers[0]) of a RayCluster spec, or NULL. */
static const json_t *s_head_container(const json_t *cluster_spec)
{
    return json_array_get(jx_get(cluster_spec, "headGroupSpec.template.spec.containers"), 0);
}

/* True for a serve port name: "serve" or "serve-*". */
static bool s_is_serve_name(const char *n)
{
    return strcmp(n, "serve") == 0 || strncmp(n, "serve-", 6) == 0;
}

const char *rayservice_upgrade_type(const json_t *rs)
{
    return jx_str(rs, "spec.upgradeStrategy.type", "");
}

bool rayservice_incremental(const json_t *rs, const validate_gates_t *g)
{
    validate_gates_t d;
    if (!g) {
        validate_gates_default(&d);
        g = &d;
    }
    return g->incremental_upgrade &&
           strcmp(rayservice_upgrade_type(rs), RAYSERVICE_UPGRADE_INCREMENTAL) == 0;
}

bool rayservice_zero_downtime(const json_t *rs, bool env_enabled, const validate_gates_t *g)
{
    validate_gates_t d;
    if (!g) {
        validate_gates_default(&d);
        g = &d;
    }
    const char *t = jx_str(rs, "spec.upgradeStrategy.type", NULL);
    if (!t)
        return env_enabled;
    if (strcmp(t, RAYSERVICE_UPGRADE_NEW_CLUSTER) == 0)
        return true;
    return g->incremental_upgrade && strcmp(t, RAYSERVICE_UPGRADE_INCREMENTAL) == 0;
}

long rayservice_serve_endpoints(const json_t *slices)
{
    json_t *seen = json_object();
    if (!seen)
        return 0;
    size_t i, j;
    json_t *sl, *ep;
    json_array_foreach(slices, i, sl)
    {
        json_array_foreach(json_object_get(sl, "endpoints"), j, ep)
        {
            const char *uid = jx_str(ep, "targetRef.uid", "");
            if (*uid && jx_bool(ep, "conditions.ready", false))
                json_object_set_new(seen, uid, json_true());
        }
    }
    long n = (long)json_object_size(seen);
    json_decref(seen);
    return n;
}

long rayservice_delete_delay_s(const json_t *rs)
{
    const json_t *v = jx_get(rs, "spec.rayClusterDeletionDelaySeconds");
    if (!json_is_integer(v))
        return RAYSERVICE_DEFAULT_DELETE_DELAY_S;
    json_int_t s = json_integer_value(v);
    return s < 0 ? 0 : (long)s;
}

/* ---- initializing timeout ---- */

/* strconv.Atoi: optional sign, decimal digits, int64 range. */
static bool s_atoi(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!*p)
        return false;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
            return false;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}

/* validateInitializingTimeout / getInitializingTimeout: *ms (0 when absent), or VALIDATE_INVALID
 * with KubeRay's inner message appended to the optional msg. */
static int s_init_timeout(const json_t *rs, int64_t *ms, buf_t *msg)
{
    *ms = 0;
    const char *v = json_string_value(
        json_object_get(jx_get(rs, "metadata.annotations"), RAYSERVICE_ANN_INIT_TIMEOUT));
    if (!v || !v[0])
        return 0;
    int64_t ns = 0;
    if (rftime_go_duration_parse(v, &ns) == 0) {
        if (ns <= 0)
            return msg ? s_fail(msg, "annotation %s must be a positive duration, got: %s",
                                RAYSERVICE_ANN_INIT_TIMEOUT, v)
                       : VALIDATE_INVALID;
        *ms = ns / RFTIME_NS_PER_MS + (ns % RFTIME_NS_PER_MS ? 1 : 0);
        return 0;
    }
    int64_t sec = 0;
    if (s_atoi(v, &sec)) {
        if (sec <= 0)
            return msg ? s_fail(msg, "annotation %s must be a positive integer (seconds), got: %s",
                                RAYSERVICE_ANN_INIT_TIMEOUT, v)
                       : VALIDATE_INVALID;
        /* time.Duration(seconds) * time.Second wraps in Go; clamp instead. */
        *ms = sec > INT64_MAX / 1000 ? INT64_MAX : sec * 1000;
        return 0;
    }
    return msg ? s_fail(msg,
                        "annotation %s has invalid format: %s. Expected Go duration format (e.g., "
                        "'5m', '1h') or positive integer seconds",
                        RAYSERVICE_ANN_INIT_TIMEOUT, v)
               : VALIDATE_INVALID;
}

int rayservice_init_timeout_ms(const json_t *rs, int64_t *ms)
{
    if (!ms)
        return ERR_INVAL;
    return s_init_timeout(rs, ms, NULL);
}

/* ---- validation ---- */

/* ValidateRayServiceMetadata. */
static int s_validate_metadata(const json_t *rs, buf_t *msg)
{
    const char *name = s_name(rs);
    if (strlen(name) > RAYSERVICE_MAX_NAME)
        return s_fail(msg, S_META_PREFIX "RayService name should be no more than %d characters",
                      RAYSERVICE_MAX_NAME);
    buf_t errs;
    buf_init(&errs, S_MSG_MAX);
    int n = validate_dns1035_label(name, &errs, NULL);
    int rc =
        n > 0 ? s_fail(msg, S_META_PREFIX "RayService name should be a valid DNS1035 label: [%s]",
                       buf_str(&errs))
              : n;
    buf_free(&errs);
    if (rc)
        return rc;
    buf_t inner;
    buf_init(&inner, S_MSG_MAX);
    int64_t ms;
    rc = s_init_timeout(rs, &ms, &inner);
    if (rc == VALIDATE_INVALID)
        rc = s_fail(msg, S_META_PREFIX "RayService annotations is invalid: %s", buf_str(&inner));
    buf_free(&inner);
    return rc;
}

/* ValidateClusterUpgradeOptions (the message without the spec prefix). */
static int s_validate_upgrade_options(const json_t *spec, buf_t *msg)
{
    if (!jx_bool(spec, "rayClusterConfig.enableInTreeAutoscaling", false))
        return s_fail(msg, "Ray Autoscaler is required for NewClusterWithIncrementalUpgrade");
    const json_t *o = jx_get(spec, "upgradeStrategy.clusterUpgradeOptions");
    if (!json_is_object(o))
        return s_fail(msg,
                      "ClusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade");
    /* maxSurgePercent: the CRD defaults it to 100. */
    json_int_t surge = jx_int(o, "maxSurgePercent", RAYSERVICE_DEFAULT_MAX_SURGE);
    if (surge < 0 || surge > 100)
        return s_fail(msg, "maxSurgePercent must be between 0 and 100");
    const json_t *step = json_object_get(o, "stepSizePercent");
    if (!json_is_integer(step) || json_integer_value(step) < 0 || json_integer_value(step) > 100)
        return s_fail(msg, "stepSizePercent must be between 0 and 100");
    if (json_integer_value(step) > surge)
        return s_fail(msg, "stepSizePercent must be less than or equal to maxSurgePercent");
    const json_t *iv = json_object_get(o, "intervalSeconds");
    if (!json_is_integer(iv) || json_integer_value(iv) <= 0)
        return s_fail(msg, "intervalSeconds must be greater than 0");
    if (!jx_str(o, "gatewayClassName", "")[0])
        return s_fail(msg, "gatewayClassName is required for NewClusterWithIncrementalUpgrade");
    return 0;
}

/* ValidateRayServiceSpec. */
static int s_validate_spec(const json_t *rs, const validate_gates_t *g, buf_t *msg)
{
    const json_t *spec = json_object_get(rs, "spec");
    const json_t *rcs = json_object_get(spec, "rayClusterConfig");
    json_t *empty = NULL;
    if (!json_is_object(rcs))
        rcs = empty = json_object(); /* the zero RayClusterSpec of a missing field */
    if (!rcs)
        return ERR_NOMEM;
    int rc = 0;
    if (strcmp(jx_str(rcs, "authOptions.mode", ""), "token") == 0 &&
        jx_bool(rcs, "authOptions.enableK8sTokenAuth", false)) {
        rc = s_fail(msg, S_SPEC_PREFIX "K8s token auth mode is currently not supported for "
                                       "RayService");
        goto out;
    }
    buf_t cerr;
    buf_init(&cerr, S_MSG_MAX);
    rc = validate_spec(rcs, jx_get(rs, "metadata.annotations"), g, &cerr);
    if (rc == VALIDATE_INVALID)
        rc = s_fail(msg, S_SPEC_PREFIX "%s", buf_str(&cerr));
    buf_free(&cerr);
    if (rc)
        goto out;
    if (jx_str(rcs, "headGroupSpec.headService.metadata.name", "")[0]) {
        rc = s_fail(msg, S_SPEC_PREFIX "spec.rayClusterConfig.headGroupSpec.headService.metadata."
                                       "name should not be set");
        goto out;
    }
    const char *type = jx_str(spec, "upgradeStrategy.type", NULL);
    if (type && strcmp(type, RAYSERVICE_UPGRADE_NONE) != 0 &&
        strcmp(type, RAYSERVICE_UPGRADE_NEW_CLUSTER) != 0 &&
        strcmp(type, RAYSERVICE_UPGRADE_INCREMENTAL) != 0) {
        rc = s_fail(msg,
                    S_SPEC_PREFIX "Spec.UpgradeStrategy.Type value %s is invalid, valid options "
                                  "are %s, %s, or %s",
                    type, RAYSERVICE_UPGRADE_INCREMENTAL, RAYSERVICE_UPGRADE_NEW_CLUSTER,
                    RAYSERVICE_UPGRADE_NONE);
        goto out;
    }
    const json_t *delay = json_object_get(spec, "rayClusterDeletionDelaySeconds");
    if (json_is_integer(delay) && json_integer_value(delay) < 0) {
        rc = s_fail(msg,
                    S_SPEC_PREFIX "Spec.RayClusterDeletionDelaySeconds should be a non-negative "
                                  "integer, got %lld",
                    (long long)json_integer_value(delay));
        goto out;
    }
    if (rayservice_incremental(rs, g)) {
        buf_t uerr;
        buf_init(&uerr, S_MSG_MAX);
        rc = s_validate_upgrade_options(spec, &uerr);
        if (rc == VALIDATE_INVALID)
            rc = s_fail(msg, S_SPEC_PREFIX "%s", buf_str(&uerr));
        buf_free(&uerr);
    }
out:
    json_decref(empty);
    return rc;
}

int rayservice_validate_reason(const json_t *rs, const validate_gates_t *g, const char **reason,
                               buf_t *msg)
{
    validate_gates_t d;
    if (!g) {
        validate_gates_default(&d);
        g = &d;
    }
    if (reason)
        *reason = NULL;
    if (!json_is_object(rs) || !msg)
        return ERR_INVAL;
    const char *why = RAYSERVICE_EV_INVALID_METADATA;
    int rc = s_validate_metadata(rs, msg);
    if (rc == 0) {
        why = RAYSERVICE_EV_INVALID;
        rc = s_validate_spec(rs, g, msg);
    }
    if (reason && rc == VALIDATE_INVALID)
        *reason = why;
    return rc;
}

int rayservice_validate(const json_t *rs, const validate_gates_t *g, buf_t *msg)
{
    return rayservice_validate_reason(rs, g, NULL, msg);
}

/* ---- the spec hash ---- */

static void s_strip_template(json_t *tmpl_spec)
{
    json_object_del(tmpl_spec, "tolerations");
    json_object_del(tmpl_spec, "schedulingGates");
}

int rayservice_hash(const json_t *cluster_config, long ngroups, char out[RAYSERVICE_HASH_MAX])
{
    if (!json_is_object(cluster_config) || !out)
        return ERR_INVAL;
    out[0] = '\0';
    const json_t *groups = json_object_get(cluster_config, "workerGroupSpecs");
    size_t have = json_array_size(groups);
    if (ngroups >= 0 && (size_t)ngroups > have)
        return ERR_RANGE;
    json_t *s = json_deep_copy(cluster_config);
    if (!s)
        return ERR_NOMEM;
    json_object_del(s, "suspend");
    json_object_del(s, "upgradeStrategy");
    s_strip_template(jx_get(s, "headGroupSpec.template.spec"));
    json_t *wgs = json_object_get(s, "workerGroupSpecs");
    if (ngroups >= 0 && json_is_array(wgs))
        while (json_array_size(wgs) > (size_t)ngroups)
            json_array_remove(wgs, json_array_size(wgs) - 1);
    size_t i;
    json_t *wg;
    json_array_foreach(wgs, i, wg)
    {
        json_object_del(wg, "replicas");
        json_object_del(wg, "minReplicas");
        json_object_del(wg, "maxReplicas");
        /* Go always marshals the ScaleStrategy struct, so absent and emptied compare equal. */
        json_t *ss = json_object_get(wg, "scaleStrategy");
        json_object_del(ss, "workersToDelete");
        if (json_is_object(ss) && json_object_size(ss) == 0)
            json_object_del(wg, "scaleStrategy");
        s_strip_template(jx_get(wg, "template.spec"));
    }
    buf_t text;
    buf_init(&text, S_HASH_TEXT_MAX);
    int rc = jx_dump_canonical(s, &text);
    json_decref(s);
    if (rc == 0)
        rc = hash_sha1_b32hex(buf_str(&text), text.len, HASH_UPPER, out, RAYSERVICE_HASH_MAX);
    buf_free(&text);
    return rc;
}

bool rayservice_hash_equal_cached(const json_t *rs, const json_t *rc, bool partial,
                                  rayservice_hash_cache_t *cache)
{
    const json_t *ann = jx_get(rc, "metadata.annotations");
    const char *have = json_string_value(json_object_get(ann, RAYSERVICE_ANN_HASH));
    const json_t *cfg = jx_get(rs, "spec.rayClusterConfig");
    char goal[RAYSERVICE_HASH_MAX] = "";
    if (!partial) {
        if (cache && cache->have_full) {
            memcpy(goal, cache->full, sizeof(goal));
        } else {
            rayservice_hash(cfg, -1, goal);
            if (cache) {
                memcpy(cache->full, goal, sizeof(goal));
                cache->have_full = true;
            }
        }
    } else {
        /* strconv.Atoi of the group count; KubeRay treats a bad count as "equal". */
        const char *ns = json_string_value(json_object_get(ann, RAYSERVICE_ANN_NUM_GROUPS));
        int64_t n = 0;
        if (!ns || !s_atoi(ns, &n))
            return true;
        size_t goal_n = json_array_size(jx_get(cfg, "workerGroupSpecs"));
        if (n >= 0 && (uint64_t)n <= goal_n) {
            if (cache && cache->have_part && cache->part_groups == n) {
                memcpy(goal, cache->part, sizeof(goal));
            } else {
                if (rayservice_hash(cfg, (long)n, goal) != 0)
                    return true; /* KubeRay: a hash error is "equal" */
                if (cache) {
                    memcpy(cache->part, goal, sizeof(goal));
                    cache->part_groups = n;
                    cache->have_part = true;
                }
            }
        }
    }
    return strcmp(have ? have : "", goal) == 0;
}

bool rayservice_hash_equal(const json_t *rs, const json_t *rc, bool partial)
{
    return rayservice_hash_equal_cached(rs, rc, partial, NULL);
}

/* ---- the RayClusters ---- */

json_t *rayservice_cluster(const json_t *rs, const char *name, const char *version,
                           bool incremental_pending, buf_t *err)
{
    if (!name || !name[0]) {
        s_err(err, "no RayCluster name given");
        return NULL;
    }
    const json_t *cfg = jx_get(rs, "spec.rayClusterConfig");
    if (!json_is_object(cfg)) {
        s_err(err, "the RayService has no rayClusterConfig");
        return NULL;
    }
    char hash[RAYSERVICE_HASH_MAX];
    if (rayservice_hash(cfg, -1, hash) != 0) {
        s_err(err, "cannot hash the rayClusterConfig");
        return NULL;
    }
    char ngroups[32];
    snprintf(ngroups, sizeof(ngroups), "%zu",
             json_array_size(json_object_get(cfg, "workerGroupSpecs")));
    json_t *labels = s_obj_copy(rs, "metadata.labels");
    json_t *ann = s_obj_copy(rs, "metadata.annotations");
    json_t *spec = json_deep_copy(cfg);
    json_t *rc = NULL;
    bool ok =
        labels && ann && spec &&
        json_object_set_new(labels, LABEL_ORIGINATED_FROM_CR_NAME, json_string(s_name(rs))) == 0 &&
        json_object_set_new(labels, LABEL_ORIGINATED_FROM_CRD, json_string(RAYSERVICE_CRD)) == 0 &&
        json_object_set_new(ann, RAYSERVICE_ANN_HASH, json_string(hash)) == 0 &&
        json_object_set_new(ann, RAYSERVICE_ANN_NUM_GROUPS, json_string(ngroups)) == 0 &&
        json_object_set_new(ann, RAYSERVICE_ANN_VERSION, json_string(version ? version : "")) == 0;
    /* The RayService's suspend reaches the cluster only at creation (Kueue admits it). */
    if (ok && jx_bool(rs, "spec.suspend", false))
        ok = json_object_set_new(spec, "suspend", json_true()) == 0;
    if (ok && incremental_pending) {
        size_t i;
        json_t *wg;
        json_array_foreach(json_object_get(spec, "workerGroupSpecs"), i, wg)
        {
            json_object_del(wg, "replicas");
        }
    }
    if (ok) {
        rc = json_pack("{s:s,s:s,s:{s:s,s:s,s:O,s:O,s:o},s:O}", "apiVersion", "ray.io/v1", "kind",
                       "RayCluster", "metadata", "name", name, "namespace", s_ns(rs), "labels",
                       labels, "annotations", ann, "ownerReferences", s_owner_refs(rs), "spec",
                       spec);
        ok = rc != NULL;
    }
    json_decref(labels);
    json_decref(ann);
    json_decref(spec);
    if (!ok)
        s_err(err, "out of memory");
    return rc;
}

json_t *rayservice_cluster_update(const json_t *rs, const json_t *rc, const char *version,
                                  buf_t *err)
{
    if (!json_is_object(rc)) {
        s_err(err, "no RayCluster given");
        return NULL;
    }
    json_t *goal = rayservice_cluster(rs, s_name(rc), version, false, err);
    if (!goal)
        return NULL;
    json_t *out = json_deep_copy(rc);
    json_t *spec = json_deep_copy(json_object_get(goal, "spec"));
    bool ok = out && spec;
    if (ok) {
        const json_t *susp = jx_get(rc, "spec.suspend");
        if (susp)
            ok = json_object_set(spec, "suspend", (json_t *)susp) == 0;
        else
            json_object_del(spec, "suspend");
    }
    ok = ok && json_object_set(out, "spec", spec) == 0 &&
         jx_set_path(out, "metadata.labels", json_incref(jx_get(goal, "metadata.labels"))) == 0 &&
         jx_set_path(out, "metadata.annotations",
                     json_incref(jx_get(goal, "metadata.annotations"))) == 0;
    json_decref(spec);
    json_decref(goal);
    if (!ok) {
        s_err(err, "out of memory");
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- Services ---- */

json_t *rayservice_head_service(const json_t *rs, const json_t *rc, buf_t *err)
{
    return objbuild_owner_head_service(rs, RAYSERVICE_CRD, rc, err);
}

char *rayservice_serve_service_name(const json_t *rs)
{
    const char *custom = jx_str(rs, "spec.serveService.metadata.name", "");
    return custom[0] ? strdup(custom) : names_serve_service(s_name(rs));
}

/* The serve ports of cluster rc: its head Service ports named serve / serve-*, as {name, port}
 * (BuildServeService copies only these two fields). */
static json_t *s_serve_ports(const json_t *rc)
{
    json_t *all = objbuild_head_ports(rc);
    json_t *out = json_array();
    if (!all || !out)
        goto fail;
    size_t i;
    json_t *p;
    json_array_foreach(all, i, p)
    {
        const char *n = jx_str(p, "name", "");
        if (s_is_serve_name(n) &&
            json_array_append_new(
                out, json_pack("{s:s,s:I}", "name", n, "port", jx_int(p, "port", 0))) != 0)
            goto fail;
    }
    json_decref(all);
    return out;
fail:
    json_decref(all);
    json_decref(out);
    return NULL;
}

/* True when rc's head container declares a port named `name` itself. */
static bool s_head_declares(const json_t *rc, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(jx_get(s_head_container(json_object_get(rc, "spec")), "ports"), i, p)
    {
        if (strcmp(jx_str(p, "name", ""), name) == 0)
            return true;
    }
    return false;
}

/* The ports of a custom serve Service: per serve port of the cluster, the user's port of that
 * name unless the head container declares it; with no cluster serve port, the user's serve
 * ports. An empty array when there is none. */
static json_t *s_custom_ports(const json_t *rc, const json_t *derived, const json_t *user_ports)
{
    json_t *out = json_array();
    if (!out)
        return NULL;
    size_t i, j;
    json_t *p, *u;
    json_array_foreach(derived, i, p)
    {
        const char *n = jx_str(p, "name", "");
        json_t *pick = p;
        if (!s_head_declares(rc, n)) {
            json_array_foreach(user_ports, j, u)
            {
                if (strcmp(jx_str(u, "name", ""), n) == 0) {
                    pick = json_pack("{s:s,s:I}", "name", n, "port", jx_int(u, "port", 0));
                    break;
                }
            }
        }
        if (json_array_append(out, pick) != 0) {
            if (pick != p)
                json_decref(pick);
            json_decref(out);
            return NULL;
        }
        if (pick != p)
            json_decref(pick);
    }
    if (json_array_size(derived) == 0) {
        json_array_foreach(user_ports, j, u)
        {
            const char *n = jx_str(u, "name", "");
            if (s_is_serve_name(n) &&
                json_array_append_new(
                    out, json_pack("{s:s,s:I}", "name", n, "port", jx_int(u, "port", 0))) != 0) {
                json_decref(out);
                return NULL;
            }
        }
    }
    return out;
}

/* BuildServeService(rs, rc, isRayService=true); `per_cluster`: the incremental form (names from
 * the cluster, custom serveService ignored, owned by rc). */
static json_t *s_serve_service(const json_t *rs, const json_t *rc, bool per_cluster, buf_t *err)
{
    if (!json_is_object(rc) || !s_head_container(json_object_get(rc, "spec"))) {
        s_err(err, "headGroupSpec should have at least one container");
        return NULL;
    }
    const char *base = per_cluster ? s_name(rc) : s_name(rs);
    const char *type = jx_str(rs, "spec.rayClusterConfig.headGroupSpec.serviceType", "");
    const json_t *custom = per_cluster ? NULL : jx_get(rs, "spec.serveService");
    if (custom && !json_is_object(custom))
        custom = NULL;
    char *label = names_serve_label(base);
    char *defname = names_serve_service(base);
    json_t *labels =
        json_pack("{s:s,s:s,s:s}", LABEL_ORIGINATED_FROM_CR_NAME, base, LABEL_ORIGINATED_FROM_CRD,
                  RAYSERVICE_CRD, LABEL_SERVE, label ? label : "");
    json_t *selector = json_pack("{s:s,s:s}", LABEL_CLUSTER, s_name(rc), LABEL_SERVE, S_SERVE_TRUE);
    json_t *derived = s_serve_ports(rc);
    json_t *svc = NULL, *ports = NULL;
    if (!label || !defname || !labels || !selector || !derived) {
        s_err(err, "out of memory");
        goto out;
    }
    if (json_array_size(derived) == 0 && !custom) {
        s_err(err, OBJ_ERR_NO_SERVE_PORT);
        goto out;
    }
    if (custom) {
        ports = s_custom_ports(rc, derived, jx_get(custom, "spec.ports"));
        if (ports && json_array_size(ports) == 0) {
            s_err(err, RAYSERVICE_ERR_NO_SERVE_PORT_CUSTOM);
            goto out;
        }
        svc = json_deep_copy(custom);
        json_t *meta = svc ? jx_child_obj(svc, "metadata") : NULL;
        json_t *ul = meta ? jx_child_obj(meta, "labels") : NULL;
        json_t *ua = meta ? jx_child_obj(meta, "annotations") : NULL;
        bool ok = ports && ul && ua && json_object_update(ul, labels) == 0 &&
                  json_object_set_new(svc, "apiVersion", json_string("v1")) == 0 &&
                  json_object_set_new(svc, "kind", json_string("Service")) == 0 &&
                  jx_set_path(svc, "spec.selector", json_incref(selector)) == 0 &&
                  jx_set_path(svc, "spec.ports", json_incref(ports)) == 0 &&
                  json_object_set_new(meta, "namespace", json_string(s_ns(rs))) == 0;
        if (ok && !jx_str(meta, "name", "")[0])
            ok = json_object_set_new(meta, "name", json_string(defname)) == 0;
        if (ok && !jx_str(svc, "spec.type", "")[0] && type[0])
            ok = jx_set_path(svc, "spec.type", json_string(type)) == 0;
        if (!ok) {
            s_err(err, "out of memory");
            json_decref(svc);
            svc = NULL;
            goto out;
        }
    } else {
        svc = json_pack("{s:s,s:s,s:{s:s,s:s,s:O},s:{s:O,s:O}}", "apiVersion", "v1", "kind",
                        "Service", "metadata", "name", defname, "namespace", s_ns(rs), "labels",
                        labels, "spec", "selector", selector, "ports", derived);
        if (svc && type[0] && jx_set_path(svc, "spec.type", json_string(type)) != 0) {
            json_decref(svc);
            svc = NULL;
        }
        if (!svc) {
            s_err(err, "out of memory");
            goto out;
        }
    }
    json_t *owner = per_cluster ? objbuild_owner_refs(rc) : s_owner_refs(rs);
    if (jx_set_path(svc, "metadata.ownerReferences", owner) != 0) {
        s_err(err, "out of memory");
        json_decref(svc);
        svc = NULL;
    }
out:
    free(label);
    free(defname);
    json_decref(labels);
    json_decref(selector);
    json_decref(derived);
    json_decref(ports);
    return svc;
}

json_t *rayservice_serve_service(const json_t *rs, const json_t *rc, buf_t *err)
{
    return s_serve_service(rs, rc, false, err);
}

json_t *rayservice_cluster_serve_service(const json_t *rs, const json_t *rc, buf_t *err)
{
    return s_serve_service(rs, rc, true, err);
}

long rayservice_serve_port(const json_t *rc)
{
    size_t i;
    json_t *p;
    json_array_foreach(jx_get(s_head_container(json_object_get(rc, "spec")), "ports"), i, p)
    {
        if (strcmp(jx_str(p, "name", ""), "serve") == 0)
            return (long)jx_int(p, "containerPort", OBJ_PORT_SERVE);
    }
    return OBJ_PORT_SERVE;
}

/* ---- Gateway API ---- */

json_t *rayservice_gateway(const json_t *rs, buf_t *err)
{
    const json_t *o = jx_get(rs, "spec.upgradeStrategy.clusterUpgradeOptions");
    if (!json_is_object(o)) {
        s_err(err, RAYSERVICE_ERR_NO_OPTIONS);
        return NULL;
    }
    buf_t name;
    buf_init(&name, S_MSG_MAX);
    json_t *gw = NULL;
    if (buf_printf(&name, "%s-gateway", s_name(rs)) == 0)
        gw = json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:{s:s,s:[{s:s,s:s,s:i}]}}", "apiVersion",
                       RAYSERVICE_GATEWAY_API, "kind", "Gateway", "metadata", "name",
                       buf_str(&name), "namespace", s_ns(rs), "ownerReferences", s_owner_refs(rs),
                       "spec", "gatewayClassName", jx_str(o, "gatewayClassName", ""), "listeners",
                       "name", RAYSERVICE_GATEWAY_LISTENER, "protocol", "HTTP", "port",
                       RAYSERVICE_GATEWAY_PORT);
    buf_free(&name);
    if (!gw)
        s_err(err, "out of memory");
    return gw;
}

json_t *rayservice_httproute(const json_t *rs, const char *const *svc, const int *weight, size_t n,
                             long port, buf_t *err)
{
    if (n > 0 && (!svc || !weight)) {
        s_err(err, "no backends given");
        return NULL;
    }
    json_t *refs = json_array();
    for (size_t i = 0; refs && i < n; i++) {
        if (!svc[i] ||
            json_array_append_new(refs, json_pack("{s:s,s:s,s:I,s:i}", "name", svc[i], "namespace",
                                                  s_ns(rs), "port", (json_int_t)port, "weight",
                                                  weight[i])) != 0) {
            json_decref(refs);
            refs = NULL;
        }
    }
    buf_t name, gw;
    buf_init(&name, S_MSG_MAX);
    buf_init(&gw, S_MSG_MAX);
    json_t *route = NULL;
    if (refs && buf_printf(&name, "%s-httproute", s_name(rs)) == 0 &&
        buf_printf(&gw, "%s-gateway", s_name(rs)) == 0)
        route =
            json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:{s:[{s:s,s:s}],s:[{s:[{s:{s:s,s:s}}],s:O}]}}",
                      "apiVersion", RAYSERVICE_GATEWAY_API, "kind", "HTTPRoute", "metadata", "name",
                      buf_str(&name), "namespace", s_ns(rs), "ownerReferences", s_owner_refs(rs),
                      "spec", "parentRefs", "name", buf_str(&gw), "namespace", s_ns(rs), "rules",
                      "matches", "path", "type", "PathPrefix", "value", "/", "backendRefs", refs);
    buf_free(&name);
    buf_free(&gw);
    json_decref(refs);
    if (!route)
        s_err(err, "out of memory or a NULL service name");
    return route;
}

/* ---- Serve ---- */

json_t *rayservice_serve_body(const json_t *rs, int target_capacity, buf_t *err)
{
    const char *yaml = jx_str(rs, "spec.serveConfigV2", "");
    size_t len = strlen(yaml);
    if (len > S_SERVE_CONFIG_MAX) {
        s_err(err, "serveConfigV2 is too big");
        return NULL;
    }
    json_t *doc = NULL;
    buf_t cause;
    buf_init(&cause, S_MSG_MAX);
    int rc = yaml_go_object(yaml, len, "map[string]interface {}", &doc, &cause);
    json_t *body = rc == 0 ? (doc ? json_deep_copy(doc) : json_object()) : NULL;
    json_decref(doc);
    if (rc == ERR_INVAL && err)
        buf_printf(err, "spec.serveConfigV2: %s", buf_str(&cause));
    buf_free(&cause);
    if (body && target_capacity >= 0 &&
        json_object_set_new(body, "target_capacity", json_integer(target_capacity)) != 0) {
        json_decref(body);
        body = NULL;
    }
    if (!body && rc != ERR_INVAL)
        s_err(err, "out of memory");
    return body;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

#define S_BASE_RS                                                                                  \
    "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayService\",\"metadata\":{\"name\":\"rs\","         \
    "\"namespace\":\"ns\",\"uid\":\"u1\",\"labels\":{\"team\":\"a\"},\"annotations\":{\"note\":"   \
    "\"x\"}},\"spec\":{\"serveConfigV2\":\"applications:\\n- name: app\\n  import_path: a.b\\n\"," \
    "\"rayClusterConfig\":{\"rayVersion\":\"2.52.0\",\"headGroupSpec\":{\"rayStartParams\":{},"    \
    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-head\",\"image\":"                    \
    "\"rayproject/ray:2.52.0\",\"ports\":[{\"name\":\"serve\",\"containerPort\":8000},"            \
    "{\"name\":\"dashboard\",\"containerPort\":8265}]}]}}},\"workerGroupSpecs\":[{\"groupName\":"  \
    "\"wg\",\"replicas\":1,\"minReplicas\":0,\"maxReplicas\":5,\"numOfHosts\":1,"                  \
    "\"rayStartParams\":{},\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-worker\","      \
    "\"image\":\"rayproject/ray:2.52.0\"}]}}}]}}}"

#define S_INCR_OPTS                                                                                \
    "{\"type\":\"NewClusterWithIncrementalUpgrade\",\"clusterUpgradeOptions\":{"                   \
    "\"gatewayClassName\":\"istio\",\"stepSizePercent\":10,\"intervalSeconds\":30,"                \
    "\"maxSurgePercent\":20}}"

static json_t *s_base(void)
{
    return json_loads(S_BASE_RS, 0, NULL);
}

/* Sets the dotted `path` of `root` to v (owned), going through arrays by index where the parent
 * exists (jx_set_path() does not traverse arrays). */
static void s_put(json_t *root, const char *path, json_t *v)
{
    const char *dot = strrchr(path, '.');
    json_t *parent = NULL;
    if (dot) {
        char pp[512];
        snprintf(pp, sizeof(pp), "%.*s", (int)(dot - path), path);
        parent = jx_get(root, pp);
    }
    int rc = v && json_is_object(parent) ? json_object_set_new(parent, dot + 1, v)
                                         : jx_set_path(root, path, v);
    if (rc != 0)
        printf("rayservice test: cannot set %s\n", path);
}

/* Sets the dotted `path` of `root` to the JSON text. */
static void s_set(json_t *root, const char *path, const char *json_text)
{
    s_put(root, path, json_loads(json_text, JSON_DECODE_ANY, NULL));
}

static json_t *s_with(const char *path, const char *json_text)
{
    json_t *rs = s_base();
    s_set(rs, path, json_text);
    return rs;
}

/* Validates rs and compares reason and message; NULL want = valid. Consumes rs. */
static bool s_is(json_t *rs, const validate_gates_t *g, const char *want_reason, const char *want)
{
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    const char *reason = "unset";
    int r = rayservice_validate_reason(rs, g, &reason, &m);
    bool ok = want ? r == VALIDATE_INVALID && reason && strcmp(reason, want_reason) == 0 &&
                         strcmp(buf_str(&m), want) == 0
                   : r == 0 && reason == NULL && m.len == 0;
    if (!ok)
        printf("rayservice validate: got rc %d reason %s '%s'\n   want '%s'\n", r,
               reason ? reason : "-", buf_str(&m), want ? want : "(valid)");
    buf_free(&m);
    json_decref(rs);
    return ok;
}

#define S_META(rs, msg) s_is((rs), NULL, RAYSERVICE_EV_INVALID_METADATA, (msg))
#define S_SPEC(rs, msg) s_is((rs), NULL, RAYSERVICE_EV_INVALID, (msg))
#define S_VALID(rs) s_is((rs), NULL, NULL, NULL)

#define S_DNS1035                                                                                  \
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "   \
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "           \
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
#define S_ANN_TIMEOUT "The RayService metadata is invalid: RayService annotations is invalid: "

static int s_test_validate(void)
{
    int failed = 0;
    CHECK(S_VALID(s_base()));
    CHECK(S_META(s_with("metadata.name", "\"a23456789012345678901234567890123456789012345678\""),
                 "The RayService metadata is invalid: RayService name should be no more than 47 "
                 "characters"));
    CHECK(S_VALID(s_with("metadata.name", "\"a2345678901234567890123456789012345678901234567\"")));
    /* the metadata failure wins over a spec failure */
    json_t *rs = s_with("metadata.name", "\"1rs\"");
    s_set(rs, "spec.rayClusterDeletionDelaySeconds", "-1");
    CHECK(S_META(rs, "The RayService metadata is invalid: RayService name should be a valid "
                     "DNS1035 label: [" S_DNS1035 "]"));
    /* ray.io/initializing-timeout */
    CHECK(S_VALID(s_with("metadata.annotations", "{\"ray.io/initializing-timeout\":\"10m\"}")));
    CHECK(S_VALID(s_with("metadata.annotations", "{\"ray.io/initializing-timeout\":\"1h30m\"}")));
    CHECK(S_VALID(s_with("metadata.annotations", "{\"ray.io/initializing-timeout\":\"600\"}")));
    CHECK(S_VALID(s_with("metadata.annotations", "{\"ray.io/initializing-timeout\":\"\"}")));
    CHECK(S_META(s_with("metadata.annotations", "{\"ray.io/initializing-timeout\":\"0s\"}"),
                 S_ANN_TIMEOUT "annotation ray.io/initializing-timeout must be a positive "
                               "duration, got: 0s"));
    CHECK(S_META(s_with("metadata.annotations", "{\"ray.io/initializing-timeout\":\"-5m\"}"),
                 S_ANN_TIMEOUT "annotation ray.io/initializing-timeout must be a positive "
                               "duration, got: -5m"));
    CHECK(S_META(s_with("metadata.annotations", "{\"ray.io/initializing-timeout\":\"-30\"}"),
                 S_ANN_TIMEOUT "annotation ray.io/initializing-timeout must be a positive integer "
                               "(seconds), got: -30"));
    CHECK(S_META(s_with("metadata.annotations", "{\"ray.io/initializing-timeout\":\"10 min\"}"),
                 S_ANN_TIMEOUT "annotation ray.io/initializing-timeout has invalid format: 10 min. "
                               "Expected Go duration format (e.g., '5m', '1h') or positive integer "
                               "seconds"));
    /* spec: K8s token auth first, then the RayCluster spec */
    rs = s_with("spec.rayClusterConfig.authOptions",
                "{\"mode\":\"token\",\"enableK8sTokenAuth\":true}");
    s_set(rs, "spec.rayClusterConfig.headGroupSpec.template.spec.containers", "[]");
    CHECK(S_SPEC(rs, "The RayService spec is invalid: K8s token auth mode is currently not "
                     "supported for RayService"));
    CHECK(S_SPEC(s_with("spec.rayClusterConfig.headGroupSpec.template.spec.containers", "[]"),
                 "The RayService spec is invalid: headGroupSpec should have at least one "
                 "container"));
    rs = s_base();
    json_object_del(json_object_get(rs, "spec"), "rayClusterConfig");
    CHECK(S_SPEC(rs, "The RayService spec is invalid: headGroupSpec should have at least one "
                     "container"));
    CHECK(S_SPEC(s_with("spec.rayClusterConfig.headGroupSpec.headService",
                        "{\"metadata\":{\"name\":\"mine\"}}"),
                 "The RayService spec is invalid: spec.rayClusterConfig.headGroupSpec.headService."
                 "metadata.name should not be set"));
    CHECK(S_VALID(s_with("spec.rayClusterConfig.headGroupSpec.headService",
                         "{\"metadata\":{\"annotations\":{\"a\":\"b\"}}}")));
    CHECK(S_SPEC(s_with("spec.upgradeStrategy", "{\"type\":\"Recreate\"}"),
                 "The RayService spec is invalid: Spec.UpgradeStrategy.Type value Recreate is "
                 "invalid, valid options are NewClusterWithIncrementalUpgrade, NewCluster, or "
                 "None"));
    CHECK(S_VALID(s_with("spec.upgradeStrategy", "{\"type\":\"None\"}")));
    CHECK(S_VALID(s_with("spec.upgradeStrategy", "{\"type\":\"NewCluster\"}")));
    CHECK(S_VALID(s_with("spec.upgradeStrategy", "{}")));
    CHECK(S_SPEC(s_with("spec.rayClusterDeletionDelaySeconds", "-3"),
                 "The RayService spec is invalid: Spec.RayClusterDeletionDelaySeconds should be a "
                 "non-negative integer, got -3"));
    CHECK(S_VALID(s_with("spec.rayClusterDeletionDelaySeconds", "0")));
    /* NewClusterWithIncrementalUpgrade */
    rs = s_with("spec.upgradeStrategy", S_INCR_OPTS);
    CHECK(S_SPEC(json_incref(rs), "The RayService spec is invalid: Ray Autoscaler is required for "
                                  "NewClusterWithIncrementalUpgrade"));
    validate_gates_t off;
    validate_gates_default(&off);
    off.incremental_upgrade = false;
    CHECK(s_is(json_incref(rs), &off, NULL, NULL)); /* the gate off: the options are not read */
    s_set(rs, "spec.rayClusterConfig.enableInTreeAutoscaling", "true");
    CHECK(S_VALID(json_incref(rs)));
    struct {
        const char *path, *value, *want;
    } opts[] = {
        {"clusterUpgradeOptions", "null",
         "ClusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade"},
        {"clusterUpgradeOptions.maxSurgePercent", "101",
         "maxSurgePercent must be between 0 and 100"},
        {"clusterUpgradeOptions.maxSurgePercent", "-1",
         "maxSurgePercent must be between 0 and 100"},
        {"clusterUpgradeOptions.stepSizePercent", "null",
         "stepSizePercent must be between 0 and 100"},
        {"clusterUpgradeOptions.stepSizePercent", "-1",
         "stepSizePercent must be between 0 and 100"},
        {"clusterUpgradeOptions.stepSizePercent", "101",
         "stepSizePercent must be between 0 and 100"},
        {"clusterUpgradeOptions.stepSizePercent", "30",
         "stepSizePercent must be less than or equal to maxSurgePercent"},
        {"clusterUpgradeOptions.intervalSeconds", "0", "intervalSeconds must be greater than 0"},
        {"clusterUpgradeOptions.intervalSeconds", "null", "intervalSeconds must be greater than 0"},
        {"clusterUpgradeOptions.gatewayClassName", "\"\"",
         "gatewayClassName is required for NewClusterWithIncrementalUpgrade"},
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        json_t *c = json_deep_copy(rs);
        char path[128], want[256];
        snprintf(path, sizeof(path), "spec.upgradeStrategy.%s", opts[i].path);
        snprintf(want, sizeof(want), "The RayService spec is invalid: %s", opts[i].want);
        s_set(c, path, opts[i].value);
        CHECK(S_SPEC(c, want));
    }
    /* maxSurgePercent unset is the CRD default 100 */
    json_object_del(jx_get(rs, "spec.upgradeStrategy.clusterUpgradeOptions"), "maxSurgePercent");
    s_set(rs, "spec.upgradeStrategy.clusterUpgradeOptions.stepSizePercent", "100");
    CHECK(S_VALID(rs));
    /* API misuse */
    buf_t m;
    buf_init(&m, 64);
    CHECK(rayservice_validate(NULL, NULL, &m) == ERR_INVAL);
    buf_free(&m);
    return failed;
}

static bool s_hash_of(const json_t *rs, long n, char out[RAYSERVICE_HASH_MAX])
{
    return rayservice_hash(jx_get(rs, "spec.rayClusterConfig"), n, out) == 0 &&
           strlen(out) == HASH_SHA1_B32HEX_LEN;
}

static int s_test_endpoints(void)
{
    int failed = 0;
    json_t *sl = json_loads(
        "[{\"endpoints\":[{\"targetRef\":{\"uid\":\"a\"},\"conditions\":{\"ready\":true}},"
        "{\"targetRef\":{\"uid\":\"b\"},\"conditions\":{\"ready\":false}},"
        "{\"conditions\":{\"ready\":true}}]},"
        "{\"endpoints\":[{\"targetRef\":{\"uid\":\"a\"},\"conditions\":{\"ready\":true}},"
        "{\"targetRef\":{\"uid\":\"c\"},\"conditions\":{\"ready\":true}}]},"
        "{\"endpoints\":null}]",
        0, NULL);
    CHECK(sl != NULL);
    /* a twice (two slices), c; b not ready; the uid-less one not counted */
    CHECK(rayservice_serve_endpoints(sl) == 2);
    CHECK(rayservice_serve_endpoints(NULL) == 0);
    json_decref(sl);
    return failed;
}

static int s_test_hash(void)
{
    int failed = 0;
    json_t *rs = s_base();
    char h0[RAYSERVICE_HASH_MAX], h1[RAYSERVICE_HASH_MAX];
    CHECK(s_hash_of(rs, -1, h0));
    /* key order does not matter */
    json_t *re = json_loads(
        "{\"workerGroupSpecs\":[{\"template\":{\"spec\":{\"containers\":[{\"image\":"
        "\"rayproject/"
        "ray:2.52.0\",\"name\":\"ray-worker\"}]}},\"rayStartParams\":{},\"numOfHosts\":"
        "1,\"maxReplicas\":5,\"minReplicas\":0,\"replicas\":1,\"groupName\":\"wg\"}],"
        "\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":"
        "8000,\"name\":\"serve\"},{\"containerPort\":8265,\"name\":\"dashboard\"}],\"image\":"
        "\"rayproject/ray:2.52.0\",\"name\":\"ray-head\"}]}},\"rayStartParams\":{}},\"rayVersion\":"
        "\"2.52.0\"}",
        0, NULL);
    CHECK(re && rayservice_hash(re, -1, h1) == 0 && strcmp(h0, h1) == 0);
    json_decref(re);
    /* muted fields */
    const char *muted[][2] = {
        {"spec.rayClusterConfig.workerGroupSpecs.0.replicas", "7"},
        {"spec.rayClusterConfig.workerGroupSpecs.0.minReplicas", "2"},
        {"spec.rayClusterConfig.workerGroupSpecs.0.maxReplicas", "9"},
        {"spec.rayClusterConfig.workerGroupSpecs.0.scaleStrategy",
         "{\"workersToDelete\":[\"p1\"]}"},
        {"spec.rayClusterConfig.suspend", "true"},
        {"spec.rayClusterConfig.upgradeStrategy", "{\"type\":\"Recreate\"}"},
        {"spec.rayClusterConfig.headGroupSpec.template.spec.tolerations", "[{\"key\":\"k\"}]"},
        {"spec.rayClusterConfig.workerGroupSpecs.0.template.spec.schedulingGates",
         "[{\"name\":\"g\"}]"},
    };
    for (size_t i = 0; i < sizeof(muted) / sizeof(muted[0]); i++) {
        json_t *c = s_with(muted[i][0], muted[i][1]);
        bool same = s_hash_of(c, -1, h1) && strcmp(h0, h1) == 0;
        if (!same)
            printf("rayservice hash: %s changed it\n", muted[i][0]);
        CHECK(same);
        json_decref(c);
    }
    /* not muted: image, rayVersion, a worker group field, workersToDelete's neighbours */
    const char *counted[][2] = {
        {"spec.rayClusterConfig.workerGroupSpecs.0.template.spec.containers.0.image",
         "\"rayproject/ray:2.53.0\""},
        {"spec.rayClusterConfig.headGroupSpec.template.spec.containers.0.image", "\"x:1\""},
        {"spec.rayClusterConfig.rayVersion", "\"2.53.0\""},
        {"spec.rayClusterConfig.workerGroupSpecs.0.groupName", "\"wg2\""},
    };
    for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++) {
        json_t *c = s_with(counted[i][0], counted[i][1]);
        bool differ = s_hash_of(c, -1, h1) && strcmp(h0, h1) != 0;
        if (!differ)
            printf("rayservice hash: %s did not change it\n", counted[i][0]);
        CHECK(differ);
        json_decref(c);
    }
    /* partial: a group appended keeps the hash of the first groups */
    json_t *two = s_base();
    json_t *wgs = jx_get(two, "spec.rayClusterConfig.workerGroupSpecs");
    json_t *g2 = json_deep_copy(json_array_get(wgs, 0));
    json_object_set_new(g2, "groupName", json_string("wg2"));
    json_array_append_new(wgs, g2);
    char p1[RAYSERVICE_HASH_MAX], p0[RAYSERVICE_HASH_MAX], pa[RAYSERVICE_HASH_MAX];
    CHECK(s_hash_of(two, 1, p1) && strcmp(p1, h0) == 0);
    CHECK(s_hash_of(two, -1, pa) && strcmp(pa, h0) != 0);
    CHECK(s_hash_of(two, 2, h1) && strcmp(pa, h1) == 0);
    CHECK(s_hash_of(two, 0, p0) && strcmp(p0, h0) != 0);
    CHECK(rayservice_hash(jx_get(two, "spec.rayClusterConfig"), 3, h1) == ERR_RANGE);
    CHECK(rayservice_hash(NULL, -1, h1) == ERR_INVAL);
    /* the comparisons against a built cluster (isClusterSpecHashEqual) */
    buf_t err;
    buf_init(&err, S_MSG_MAX);
    json_t *rc = rayservice_cluster(rs, "rs-abcde", "v1.7.0", false, &err);
    CHECK(rc && rayservice_hash_equal(rs, rc, false) && rayservice_hash_equal(rs, rc, true));
    CHECK(rc && !rayservice_hash_equal(two, rc, false) && rayservice_hash_equal(two, rc, true));
    json_t *img = s_with("spec.rayClusterConfig.rayVersion", "\"2.53.0\"");
    CHECK(rc && !rayservice_hash_equal(img, rc, false) && !rayservice_hash_equal(img, rc, true));
    /* a goal with fewer groups is never partially equal; a bad count always is */
    json_t *none = s_with("spec.rayClusterConfig.workerGroupSpecs", "[]");
    CHECK(rc && !rayservice_hash_equal(none, rc, true));
    json_object_set_new(jx_get(rc, "metadata.annotations"), RAYSERVICE_ANN_NUM_GROUPS,
                        json_string("x"));
    CHECK(rc && rayservice_hash_equal(none, rc, true));
    json_decref(none);
    json_decref(img);
    json_decref(rc);
    json_decref(two);
    json_decref(rs);
    buf_free(&err);
    return failed;
}

static bool s_label_is(const json_t *obj, const char *path, const char *key, const char *want)
{
    const char *v = json_string_value(json_object_get(jx_get(obj, path), key));
    return v && strcmp(v, want) == 0;
}

/* ownerReferences is exactly one controller reference to (kind, name, uid). */
static bool s_owned_by(const json_t *obj, const char *kind, const json_t *owner)
{
    const json_t *refs = jx_get(obj, "metadata.ownerReferences");
    const json_t *r = json_array_get(refs, 0);
    return json_array_size(refs) == 1 && strcmp(jx_str(r, "apiVersion", ""), "ray.io/v1") == 0 &&
           strcmp(jx_str(r, "kind", ""), kind) == 0 &&
           strcmp(jx_str(r, "name", ""), s_name(owner)) == 0 &&
           strcmp(jx_str(r, "uid", ""), jx_str(owner, "metadata.uid", "")) == 0 &&
           jx_bool(r, "controller", false) && jx_bool(r, "blockOwnerDeletion", false);
}

/* The ports of a Service as "name:port,..." equal `want`. */
static bool s_ports_are(const json_t *svc, const char *want)
{
    buf_t b;
    buf_init(&b, 4096);
    size_t i;
    json_t *p;
    json_array_foreach(jx_get(svc, "spec.ports"), i, p)
    {
        buf_printf(&b, "%s%s:%lld", i ? "," : "", jx_str(p, "name", ""),
                   (long long)jx_int(p, "port", -1));
    }
    bool ok = strcmp(buf_str(&b), want) == 0;
    if (!ok)
        printf("rayservice: ports %s, want %s\n", buf_str(&b), want);
    buf_free(&b);
    return ok;
}

static int s_test_builders(void)
{
    int failed = 0;
    buf_t err;
    buf_init(&err, S_MSG_MAX);
    json_t *rs = s_base();
    /* the cluster */
    json_t *rc = rayservice_cluster(rs, "rs-abcde", "v1.7.0", false, &err);
    char h[RAYSERVICE_HASH_MAX];
    CHECK(rc && s_hash_of(rs, -1, h));
    CHECK(rc && strcmp(jx_str(rc, "kind", ""), "RayCluster") == 0 &&
          strcmp(s_name(rc), "rs-abcde") == 0 && strcmp(s_ns(rc), "ns") == 0);
    CHECK(rc && s_label_is(rc, "metadata.labels", "team", "a") &&
          s_label_is(rc, "metadata.labels", LABEL_ORIGINATED_FROM_CR_NAME, "rs") &&
          s_label_is(rc, "metadata.labels", LABEL_ORIGINATED_FROM_CRD, "RayService") &&
          json_object_size(jx_get(rc, "metadata.labels")) == 3);
    CHECK(rc && s_label_is(rc, "metadata.annotations", "note", "x") &&
          s_label_is(rc, "metadata.annotations", RAYSERVICE_ANN_HASH, h) &&
          s_label_is(rc, "metadata.annotations", RAYSERVICE_ANN_NUM_GROUPS, "1") &&
          s_label_is(rc, "metadata.annotations", RAYSERVICE_ANN_VERSION, "v1.7.0") &&
          json_object_size(jx_get(rc, "metadata.annotations")) == 4);
    CHECK(rc && s_owned_by(rc, "RayService", rs));
    CHECK(rc && json_equal(json_object_get(rc, "spec"), jx_get(rs, "spec.rayClusterConfig")));
    CHECK(rc && !jx_get(rc, "spec.suspend"));
    /* the RayService's labels are copied, not shared */
    CHECK(rc && jx_get(rc, "metadata.labels") != jx_get(rs, "metadata.labels") &&
          json_object_size(jx_get(rs, "metadata.labels")) == 1);
    /* suspend reaches the cluster; incremental pending drops replicas */
    json_t *s = s_with("spec.suspend", "true");
    json_t *rc2 = rayservice_cluster(s, "rs-x", "v", true, &err);
    CHECK(rc2 && jx_bool(rc2, "spec.suspend", false) &&
          !jx_get(rc2, "spec.workerGroupSpecs.0.replicas") &&
          jx_int(rc2, "spec.workerGroupSpecs.0.maxReplicas", 0) == 5);
    CHECK(rc2 && s_label_is(rc2, "metadata.annotations", RAYSERVICE_ANN_HASH, h));
    json_decref(rc2);
    json_decref(s);
    CHECK(!rayservice_cluster(rs, "", "v", false, &err) && err.len > 0);
    buf_reset(&err);
    /* the in-place update: the goal's spec, suspend and identity kept from rc */
    json_t *obs = json_deep_copy(rc);
    jx_set_path(obs, "metadata.resourceVersion", json_string("42"));
    jx_set_path(obs, "metadata.uid", json_string("rc-uid"));
    jx_set_path(obs, "metadata.labels.stale", json_string("y"));
    jx_set_path(obs, "spec.suspend", json_true());
    jx_set_path(obs, "status.state", json_string("ready"));
    json_t *two = s_base();
    json_t *wgs = jx_get(two, "spec.rayClusterConfig.workerGroupSpecs");
    json_t *g2 = json_deep_copy(json_array_get(wgs, 0));
    json_object_set_new(g2, "groupName", json_string("wg2"));
    json_array_append_new(wgs, g2);
    json_t *up = rayservice_cluster_update(two, obs, "v1.8.0", &err);
    CHECK(up && strcmp(jx_str(up, "metadata.resourceVersion", ""), "42") == 0 &&
          strcmp(jx_str(up, "metadata.uid", ""), "rc-uid") == 0 &&
          strcmp(jx_str(up, "status.state", ""), "ready") == 0);
    CHECK(up && jx_bool(up, "spec.suspend", false) &&
          json_array_size(jx_get(up, "spec.workerGroupSpecs")) == 2);
    CHECK(up && !jx_get(up, "metadata.labels.stale") &&
          s_label_is(up, "metadata.annotations", RAYSERVICE_ANN_NUM_GROUPS, "2") &&
          s_label_is(up, "metadata.annotations", RAYSERVICE_ANN_VERSION, "v1.8.0"));
    CHECK(up && rayservice_hash_equal(two, up, false));
    json_decref(up);
    json_object_del(json_object_get(obs, "spec"), "suspend");
    jx_set_path(two, "spec.rayClusterConfig.suspend", json_true());
    up = rayservice_cluster_update(two, obs, "v1.8.0", &err);
    CHECK(up && !jx_get(up, "spec.suspend"));
    json_decref(up);
    json_decref(two);
    json_decref(obs);
    /* the head Service */
    json_t *svc = rayservice_head_service(rs, rc, &err);
    CHECK(svc && strcmp(s_name(svc), "rs-head-svc") == 0 && strcmp(s_ns(svc), "ns") == 0);
    CHECK(svc && json_object_size(jx_get(svc, "metadata.labels")) == 4 &&
          s_label_is(svc, "metadata.labels", LABEL_ORIGINATED_FROM_CR_NAME, "rs") &&
          s_label_is(svc, "metadata.labels", LABEL_ORIGINATED_FROM_CRD, "RayService") &&
          s_label_is(svc, "metadata.labels", LABEL_NODE_TYPE, "head") &&
          s_label_is(svc, "metadata.labels", LABEL_IDENTIFIER, "rs-head"));
    CHECK(svc && s_label_is(svc, "spec.selector", LABEL_CLUSTER, "rs-abcde") &&
          s_label_is(svc, "spec.selector", LABEL_NODE_TYPE, "head") &&
          s_owned_by(svc, "RayService", rs));
    CHECK(svc && s_ports_are(svc, "dashboard:8265,metrics:8080,serve:8000") &&
          strcmp(jx_str(svc, "spec.clusterIP", ""), "None") == 0);
    json_decref(svc);
    /* the serve Service */
    char *sn = rayservice_serve_service_name(rs);
    CHECK(sn && strcmp(sn, "rs-serve-svc") == 0);
    free(sn);
    svc = rayservice_serve_service(rs, rc, &err);
    CHECK(svc && strcmp(s_name(svc), "rs-serve-svc") == 0 && s_ports_are(svc, "serve:8000") &&
          !jx_get(svc, "spec.ports.0.appProtocol") && !jx_get(svc, "spec.type"));
    CHECK(svc && json_object_size(jx_get(svc, "spec.selector")) == 2 &&
          s_label_is(svc, "spec.selector", LABEL_CLUSTER, "rs-abcde") &&
          s_label_is(svc, "spec.selector", LABEL_SERVE, "true"));
    CHECK(svc && s_label_is(svc, "metadata.labels", LABEL_SERVE, "rs-serve") &&
          s_label_is(svc, "metadata.labels", LABEL_ORIGINATED_FROM_CR_NAME, "rs") &&
          s_label_is(svc, "metadata.labels", LABEL_ORIGINATED_FROM_CRD, "RayService") &&
          s_owned_by(svc, "RayService", rs));
    json_decref(svc);
    /* a head container without a serve port */
    json_t *noserve = json_deep_copy(rc);
    s_put(noserve, "spec.headGroupSpec.template.spec.containers.0.ports",
          json_pack("[{s:s,s:i}]", "name", "dashboard", "containerPort", 8265));
    CHECK(!rayservice_serve_service(rs, noserve, &err) &&
          strcmp(buf_str(&err), OBJ_ERR_NO_SERVE_PORT) == 0);
    buf_reset(&err);
    /* ... with a custom serveService: its serve port, else the error */
    json_t *cs = s_with("spec.serveService", "{\"metadata\":{\"labels\":{\"ray.io/serve\":\"mine\","
                                             "\"keep\":\"me\"}},\"spec\":{\"type\":\"NodePort\","
                                             "\"selector\":{\"app\":\"x\"},\"ports\":[{\"name\":"
                                             "\"serve\",\"port\":9999,\"targetPort\":8000}]}}");
    sn = rayservice_serve_service_name(cs);
    CHECK(sn && strcmp(sn, "rs-serve-svc") == 0);
    free(sn);
    svc = rayservice_serve_service(cs, noserve, &err);
    CHECK(svc && strcmp(s_name(svc), "rs-serve-svc") == 0 && s_ports_are(svc, "serve:9999") &&
          !jx_get(svc, "spec.ports.0.targetPort"));
    CHECK(svc && strcmp(jx_str(svc, "spec.type", ""), "NodePort") == 0 &&
          s_label_is(svc, "metadata.labels", LABEL_SERVE, "rs-serve") &&
          s_label_is(svc, "metadata.labels", "keep", "me") &&
          json_object_size(jx_get(svc, "spec.selector")) == 2 &&
          json_is_object(jx_get(svc, "metadata.annotations")));
    json_decref(svc);
    /* the head container's own serve port wins over the user's */
    svc = rayservice_serve_service(cs, rc, &err);
    CHECK(svc && s_ports_are(svc, "serve:8000"));
    json_decref(svc);
    s_set(cs, "spec.serveService.spec.ports", "[{\"name\":\"http\",\"port\":80}]");
    CHECK(!rayservice_serve_service(cs, noserve, &err) &&
          strcmp(buf_str(&err), RAYSERVICE_ERR_NO_SERVE_PORT_CUSTOM) == 0);
    buf_reset(&err);
    json_decref(cs);
    /* serve-* ports; the service type from rayClusterConfig */
    json_t *multi = json_deep_copy(rc);
    s_put(multi, "spec.headGroupSpec.template.spec.containers.0.ports",
          json_pack("[{s:s,s:i},{s:s,s:i},{s:s,s:i}]", "name", "serve-grpc", "containerPort", 9000,
                    "name", "serve", "containerPort", 8001, "name", "served", "containerPort",
                    7000));
    json_t *typed = s_with("spec.rayClusterConfig.headGroupSpec.serviceType", "\"LoadBalancer\"");
    svc = rayservice_serve_service(typed, multi, &err);
    CHECK(svc && s_ports_are(svc, "serve:8001,serve-grpc:9000") &&
          strcmp(jx_str(svc, "spec.type", ""), "LoadBalancer") == 0);
    json_decref(svc);
    CHECK(rayservice_serve_port(multi) == 8001 && rayservice_serve_port(noserve) == 8000);
    /* per-cluster serve Service (incremental) */
    svc = rayservice_cluster_serve_service(typed, multi, &err);
    CHECK(svc && strcmp(s_name(svc), "rs-abcde-serve-svc") == 0 &&
          s_label_is(svc, "metadata.labels", LABEL_SERVE, "rs-abcde-serve") &&
          s_label_is(svc, "metadata.labels", LABEL_ORIGINATED_FROM_CR_NAME, "rs-abcde") &&
          s_label_is(svc, "spec.selector", LABEL_SERVE, "true") &&
          s_owned_by(svc, "RayCluster", multi));
    json_decref(svc);
    json_decref(typed);
    json_decref(multi);
    json_decref(noserve);
    /* Gateway and HTTPRoute */
    CHECK(!rayservice_gateway(rs, &err) && strcmp(buf_str(&err), RAYSERVICE_ERR_NO_OPTIONS) == 0);
    buf_reset(&err);
    json_t *inc = s_with("spec.upgradeStrategy", S_INCR_OPTS);
    json_t *gw = rayservice_gateway(inc, &err);
    CHECK(gw && strcmp(s_name(gw), "rs-gateway") == 0 &&
          strcmp(jx_str(gw, "apiVersion", ""), "gateway.networking.k8s.io/v1") == 0 &&
          strcmp(jx_str(gw, "spec.gatewayClassName", ""), "istio") == 0 &&
          json_array_size(jx_get(gw, "spec.listeners")) == 1 &&
          strcmp(jx_str(gw, "spec.listeners.0.name", ""), "http") == 0 &&
          strcmp(jx_str(gw, "spec.listeners.0.protocol", ""), "HTTP") == 0 &&
          jx_int(gw, "spec.listeners.0.port", 0) == 80 && s_owned_by(gw, "RayService", inc));
    json_decref(gw);
    const char *names[] = {"rs-a-serve-svc", "rs-b-serve-svc"};
    const int weights[] = {70, 30};
    json_t *hr = rayservice_httproute(inc, names, weights, 2, 8000, &err);
    CHECK(hr && strcmp(s_name(hr), "rs-httproute") == 0 &&
          strcmp(jx_str(hr, "kind", ""), "HTTPRoute") == 0 &&
          strcmp(jx_str(hr, "spec.parentRefs.0.name", ""), "rs-gateway") == 0 &&
          strcmp(jx_str(hr, "spec.parentRefs.0.namespace", ""), "ns") == 0 &&
          strcmp(jx_str(hr, "spec.rules.0.matches.0.path.type", ""), "PathPrefix") == 0 &&
          strcmp(jx_str(hr, "spec.rules.0.matches.0.path.value", ""), "/") == 0);
    CHECK(hr && json_array_size(jx_get(hr, "spec.rules.0.backendRefs")) == 2 &&
          strcmp(jx_str(hr, "spec.rules.0.backendRefs.1.name", ""), "rs-b-serve-svc") == 0 &&
          jx_int(hr, "spec.rules.0.backendRefs.1.weight", 0) == 30 &&
          jx_int(hr, "spec.rules.0.backendRefs.0.port", 0) == 8000 &&
          strcmp(jx_str(hr, "spec.rules.0.backendRefs.0.namespace", ""), "ns") == 0 &&
          s_owned_by(hr, "RayService", inc));
    json_decref(hr);
    CHECK(!rayservice_httproute(inc, NULL, weights, 1, 8000, &err));
    buf_reset(&err);
    /* upgrade type, zero downtime, deletion delay */
    validate_gates_t off;
    validate_gates_default(&off);
    off.incremental_upgrade = false;
    CHECK(strcmp(rayservice_upgrade_type(rs), "") == 0 &&
          strcmp(rayservice_upgrade_type(inc), RAYSERVICE_UPGRADE_INCREMENTAL) == 0);
    CHECK(rayservice_incremental(inc, NULL) && !rayservice_incremental(inc, &off) &&
          !rayservice_incremental(rs, NULL));
    CHECK(rayservice_zero_downtime(rs, true, NULL) && !rayservice_zero_downtime(rs, false, NULL));
    CHECK(rayservice_zero_downtime(inc, false, NULL) && !rayservice_zero_downtime(inc, true, &off));
    json_t *t = s_with("spec.upgradeStrategy", "{\"type\":\"NewCluster\"}");
    CHECK(rayservice_zero_downtime(t, false, &off));
    json_decref(t);
    t = s_with("spec.upgradeStrategy", "{\"type\":\"None\"}");
    CHECK(!rayservice_zero_downtime(t, true, NULL));
    json_decref(t);
    t = s_with("spec.upgradeStrategy", "{}");
    CHECK(rayservice_zero_downtime(t, true, NULL) && !rayservice_zero_downtime(t, false, NULL));
    json_decref(t);
    CHECK(rayservice_delete_delay_s(rs) == RAYSERVICE_DEFAULT_DELETE_DELAY_S);
    t = s_with("spec.rayClusterDeletionDelaySeconds", "5");
    CHECK(rayservice_delete_delay_s(t) == 5);
    json_decref(t);
    t = s_with("spec.rayClusterDeletionDelaySeconds", "-5");
    CHECK(rayservice_delete_delay_s(t) == 0);
    json_decref(t);
    json_decref(inc);
    /* the initializing timeout */
    int64_t ms = 7;
    CHECK(rayservice_init_timeout_ms(rs, &ms) == 0 && ms == 0);
    const struct {
        const char *v;
        int64_t ms;
        int rc;
    } to[] = {{"10m", 600000, 0},
              {"1h30m", 5400000, 0},
              {"90s", 90000, 0},
              {"1.5h", 5400000, 0},
              {"600", 600000, 0},
              {"+5", 5000, 0},
              {"1ns", 1, 0},
              {"0", 0, VALIDATE_INVALID},
              {"-1s", 0, VALIDATE_INVALID},
              {"-7", 0, VALIDATE_INVALID},
              {"5 min", 0, VALIDATE_INVALID},
              {"1d", 0, VALIDATE_INVALID}};
    for (size_t i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
        json_t *a = s_base();
        /* the key has dots: set it whole */
        json_object_set_new(jx_get(a, "metadata.annotations"), RAYSERVICE_ANN_INIT_TIMEOUT,
                            json_string(to[i].v));
        ms = 7;
        int r = rayservice_init_timeout_ms(a, &ms);
        bool ok = r == to[i].rc && (r != 0 || ms == to[i].ms);
        if (!ok)
            printf("rayservice: timeout '%s' gave %d %lld\n", to[i].v, r, (long long)ms);
        CHECK(ok);
        json_decref(a);
    }
    /* the Serve body */
    json_t *body = rayservice_serve_body(rs, -1, &err);
    CHECK(body && strcmp(jx_str(body, "applications.0.name", ""), "app") == 0 &&
          !jx_get(body, "target_capacity"));
    json_decref(body);
    body = rayservice_serve_body(rs, 30, &err);
    CHECK(body && jx_int(body, "target_capacity", -1) == 30);
    json_decref(body);
    t = s_with("spec.serveConfigV2", "\"\"");
    body = rayservice_serve_body(t, -1, &err);
    CHECK(body && json_is_object(body) && json_object_size(body) == 0);
    json_decref(body);
    json_decref(t);
    t = s_with("spec.serveConfigV2", "\"- a\\n- b\\n\"");
    CHECK(!rayservice_serve_body(t, -1, &err) &&
          strstr(buf_str(&err),
                 "cannot unmarshal array into Go value of type map[string]interface {}"));
    buf_reset(&err);
    json_decref(t);
    t = s_with("spec.serveConfigV2", "\"a: [b\\n\"");
    CHECK(!rayservice_serve_body(t, -1, &err) &&
          strncmp(buf_str(&err), "spec.serveConfigV2: error converting YAML to JSON: yaml: line ",
                  62) == 0);
    buf_reset(&err);
    json_decref(t);
    json_decref(rc);
    json_decref(rs);
    buf_free(&err);
    return failed;
}

/* The builders on one RayService sample document. */
static int s_test_sample(const char *file, json_t *rs, void *arg)
{
    int failed = 0;
    bool verbose = *(const bool *)arg;
    if (!jx_str(rs, "metadata.namespace", NULL))
        jx_set_path(rs, "metadata.namespace", json_string("default"));
    jx_set_path(rs, "metadata.uid", json_string("uid-1"));
    /* the API server's CRD defaults on the embedded RayClusterSpec */
    json_t *wrap = json_pack("{s:O}", "spec", jx_get(rs, "spec.rayClusterConfig"));
    validate_apply_defaults(wrap);
    json_decref(wrap);
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    int r = rayservice_validate(rs, NULL, &m);
    CHECK(r == 0);
    if (r != 0)
        printf("rayservice sample %s: %s\n", file, buf_str(&m));
    buf_reset(&m);
    const json_t *cfg = jx_get(rs, "spec.rayClusterConfig");
    char h[RAYSERVICE_HASH_MAX], n[32];
    snprintf(n, sizeof(n), "%zu", json_array_size(json_object_get(cfg, "workerGroupSpecs")));
    CHECK(rayservice_hash(cfg, -1, h) == 0);
    /* the cluster: labels, annotations, owner */
    char cname[128];
    snprintf(cname, sizeof(cname), "%s-qwxyz", s_name(rs));
    json_t *rc = rayservice_cluster(rs, cname, "v1.7.0", false, &m);
    CHECK(rc && s_label_is(rc, "metadata.labels", LABEL_ORIGINATED_FROM_CR_NAME, s_name(rs)) &&
          s_label_is(rc, "metadata.labels", LABEL_ORIGINATED_FROM_CRD, "RayService"));
    CHECK(rc && s_label_is(rc, "metadata.annotations", RAYSERVICE_ANN_HASH, h) &&
          s_label_is(rc, "metadata.annotations", RAYSERVICE_ANN_NUM_GROUPS, n) &&
          s_label_is(rc, "metadata.annotations", RAYSERVICE_ANN_VERSION, "v1.7.0"));
    CHECK(rc && s_owned_by(rc, "RayService", rs) && rayservice_hash_equal(rs, rc, false) &&
          rayservice_hash_equal(rs, rc, true));
    CHECK(rc && json_equal(json_object_get(rc, "spec"), cfg));
    /* the cluster is itself a valid RayCluster */
    CHECK(rc && validate_metadata(rc, &m) == 0 &&
          validate_spec(json_object_get(rc, "spec"), jx_get(rc, "metadata.annotations"), NULL,
                        &m) == 0);
    /* the Services */
    json_t *head = rc ? rayservice_head_service(rs, rc, &m) : NULL;
    char want[256];
    snprintf(want, sizeof(want), "%s-head-svc", s_name(rs));
    CHECK(head && strcmp(s_name(head), want) == 0 &&
          s_label_is(head, "spec.selector", LABEL_CLUSTER, cname) &&
          s_owned_by(head, "RayService", rs));
    json_t *serve = rc ? rayservice_serve_service(rs, rc, &m) : NULL;
    char *sn = rayservice_serve_service_name(rs);
    CHECK(serve && sn && strcmp(s_name(serve), sn) == 0 &&
          json_object_size(jx_get(serve, "spec.selector")) == 2 &&
          s_label_is(serve, "spec.selector", LABEL_CLUSTER, cname) &&
          s_label_is(serve, "spec.selector", LABEL_SERVE, "true") &&
          s_owned_by(serve, "RayService", rs) && json_array_size(jx_get(serve, "spec.ports")) > 0);
    if (!serve)
        printf("rayservice sample %s: serve service: %s\n", file, buf_str(&m));
    if (strcmp(file, "ray-service.different-port.yaml") == 0)
        CHECK(serve && s_ports_are(serve, "serve:9000") && rayservice_serve_port(rc) == 9000);
    if (strcmp(file, "ray-service.custom-serve-service.yaml") == 0) {
        CHECK(sn && strcmp(sn, "custom-ray-serve-service-name") == 0);
        CHECK(serve && s_ports_are(serve, "serve:8000") &&
              strcmp(jx_str(serve, "spec.type", ""), "LoadBalancer") == 0 &&
              s_label_is(serve, "metadata.labels", "custom-label",
                         "custom-ray-serve-service-label") &&
              s_label_is(serve, "metadata.labels", LABEL_SERVE, "rayservice-sample-serve") &&
              s_label_is(serve, "metadata.annotations", "custom-annotation",
                         "custom-ray-serve-service-annotation") &&
              strcmp(s_ns(serve), "default") == 0);
    }
    free(sn);
    /* incremental upgrade: the per-cluster serve Service, the Gateway and the HTTPRoute */
    if (rayservice_incremental(rs, NULL)) {
        json_t *cs = rc ? rayservice_cluster_serve_service(rs, rc, &m) : NULL;
        CHECK(cs && s_owned_by(cs, "RayCluster", rc));
        json_t *gw = rayservice_gateway(rs, &m);
        CHECK(gw && strcmp(jx_str(gw, "spec.gatewayClassName", ""), "istio") == 0);
        const char *svcs[] = {cs ? s_name(cs) : ""};
        const int w[] = {100};
        json_t *hr = rayservice_httproute(rs, svcs, w, 1, rayservice_serve_port(rc), &m);
        CHECK(hr && jx_int(hr, "spec.rules.0.backendRefs.0.port", 0) == 8000);
        json_t *pend = rayservice_cluster(rs, "p", "v", true, &m);
        CHECK(pend && !jx_get(pend, "spec.workerGroupSpecs.0.replicas"));
        json_decref(pend);
        json_decref(hr);
        json_decref(gw);
        json_decref(cs);
    }
    /* the Serve body is a JSON object that survives a round trip */
    json_t *body = rayservice_serve_body(rs, -1, &m);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *back = text ? json_loads(text, 0, NULL) : NULL;
    CHECK(body && json_is_object(body) && back && json_equal(back, body));
    CHECK(!jx_get(rs, "spec.serveConfigV2") || json_object_size(body) > 0);
    if (verbose && body)
        printf("rayservice sample %s: %zu serve keys, hash %s\n", file, json_object_size(body), h);
    free(text);
    json_decref(back);
    json_decref(body);
    json_decref(serve);
    json_decref(head);
    json_decref(rc);
    buf_free(&m);
    return failed;
}

/* The samples in vllm/ (selftest_samples() reads the top level only). */
static int s_test_sample_file(const char *rel, bool verbose, int *count)
{
    int failed = 0;
    const char *shared = selftest_shared_dir();
    if (!shared)
        return 0;
    char path[2048];
    snprintf(path, sizeof(path), "%s/kuberay/samples/%s", shared, rel);
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, 4096);
    if (yaml_load_file(path, 16u << 20, &docs, &err) != 0) {
        printf("rayservice: %s: %s\n", path, buf_str(&err));
        failed++;
    }
    buf_free(&err);
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        if (strcmp(jx_str(doc, "kind", ""), "RayService") != 0)
            continue;
        (*count)++;
        failed += s_test_sample(rel, doc, &verbose);
    }
    json_decref(docs);
    return failed;
}

int rayservice_test(bool verbose)
{
    int failed = 0;
    failed += s_test_validate();
    failed += s_test_hash();
    failed += s_test_endpoints();
    failed += s_test_builders();
    int count = 0;
    failed += selftest_samples("ray-service.", "RayService", s_test_sample, &verbose, &count);
    failed += s_test_sample_file("vllm/ray-service.vllm-tpu-v6e-singlehost.yaml", verbose, &count);
    if (selftest_shared_dir())
        CHECK(count >= 14);
    if (verbose)
        printf("rayservice: %d sample RayServices\n", count);
    return SELFTEST_RESULT("rayservice", verbose);
}

#endif
