/*
 * apps: Deployment, ReplicaSet and StatefulSet controllers and their API-server helpers. See
 * apps.h.
 */
#include "apps.h"

#include "buf.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "rftime.h"
#include "schema.h"
#include "selector.h"
#include "storage.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX 640 /* "ns/name" */
#define S_NAME_MAX (S_KEY_MAX + 32) /* a name built from a key's name and a suffix */
#define S_TEXT_MAX (64 * 1024) /* bytes of a message or printed value */

struct apps {
    loop_t *loop; /* event loop or NULL */
    objstore_t *store; /* the objects */
    objstore_res_t *rpods, *rdeps, *rrs, *rsts, *rpvcs; /* resources (all but pods may be NULL) */
    objstore_watch_t *wpods, *wdeps, *wrs, *wsts; /* watches */
    json_t *dirty[3]; /* deployments, replicasets, statefulsets: "ns/name" -> true */
    loop_soon_t soon; /* the coalesced tick after watch events (soon.running: in the tick) */
    json_t *later[3]; /* as dirty, "ns/name" -> due time (ms): minReadySeconds to wait out */
    int64_t later_timer; /* timer for the earliest due time, 0 = none */
    int64_t later_due; /* when later_timer fires */
};

enum { S_DEP = 0, S_RS = 1, S_STS = 2 };

/* ---- pure helpers ----------------------------------------------------------------------- */

static bool s_is(const char *resource, const char *want)
{
    return resource && strcmp(resource, want) == 0;
}

static void s_default(json_t *obj, const char *key, json_t *v)
{
    if (json_is_object(obj) && !json_object_get(obj, key))
        json_object_set_new(obj, key, v);
    else
        json_decref(v);
}

void apps_defaults(const char *resource, json_t *obj)
{
    bool dep = s_is(resource, "deployments"), rs = s_is(resource, "replicasets"),
         sts = s_is(resource, "statefulsets");
    if (!(dep || rs || sts) || !json_is_object(obj))
        return;
    json_t *spec = jx_child_obj(obj, "spec");
    if (!spec)
        return;
    s_default(spec, "replicas", json_integer(1));
    if (dep) {
        s_default(spec, "strategy", json_object());
        json_t *st = json_object_get(spec, "strategy");
        s_default(st, "type", json_string("RollingUpdate"));
        if (strcmp(jx_str(st, "type", ""), "RollingUpdate") == 0) {
            s_default(st, "rollingUpdate", json_object());
            json_t *ru = json_object_get(st, "rollingUpdate");
            s_default(ru, "maxUnavailable", json_string("25%"));
            s_default(ru, "maxSurge", json_string("25%"));
        }
        s_default(spec, "revisionHistoryLimit", json_integer(10));
        s_default(spec, "progressDeadlineSeconds", json_integer(600));
    }
    if (sts) {
        s_default(spec, "podManagementPolicy", json_string("OrderedReady"));
        s_default(spec, "updateStrategy", json_object());
        json_t *st = json_object_get(spec, "updateStrategy");
        s_default(st, "type", json_string("RollingUpdate"));
        if (strcmp(jx_str(st, "type", ""), "RollingUpdate") == 0) {
            s_default(st, "rollingUpdate", json_object());
            s_default(json_object_get(st, "rollingUpdate"), "partition", json_integer(0));
        }
        s_default(spec, "revisionHistoryLimit", json_integer(10));
        s_default(spec, "persistentVolumeClaimRetentionPolicy",
                  json_pack("{s:s,s:s}", "whenDeleted", "Retain", "whenScaled", "Retain"));
    }
    json_t *tspec = json_object_get(json_object_get(spec, "template"), "spec");
    if (json_is_object(tspec)) {
        s_default(tspec, "restartPolicy", json_string("Always"));
        s_default(tspec, "dnsPolicy", json_string("ClusterFirst"));
        s_default(tspec, "schedulerName", json_string("default-scheduler"));
        s_default(tspec, "terminationGracePeriodSeconds", json_integer(30));
        s_default(tspec, "securityContext", json_object());
    }
}

/* Go's %#v of a map[string]string from a JSON object of strings (keys sorted as fmt does). */
static void s_go_map(buf_t *b, const json_t *m)
{
    if (!json_is_object(m)) {
        buf_puts(b, "map[string]string(nil)");
        return;
    }
    size_t n = json_object_size(m), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    if (!keys)
        return;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)m, key, v) keys[k++] = key;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    buf_puts(b, "map[string]string{");
    for (size_t i = 0; i < n; i++) {
        const char *val = json_string_value(json_object_get(m, keys[i]));
        buf_printf(b, "%s\"%s\":\"%s\"", i ? ", " : "", keys[i], val ? val : "");
    }
    buf_puts(b, "}");
    free(keys);
}

static void s_cause(json_t *causes, const char *reason, const char *field, const char *msg)
{
    json_array_append_new(
        causes, json_pack("{s:s,s:s,s:s}", "reason", reason, "message", msg, "field", field));
}

int apps_validate(const char *resource, const json_t *obj, json_t *causes)
{
    bool dep = s_is(resource, "deployments"), rs = s_is(resource, "replicasets"),
         sts = s_is(resource, "statefulsets");
    if (!(dep || rs || sts) || !json_is_array(causes))
        return 0;
    size_t before = json_array_size(causes);
    buf_t m;
    buf_init(&m, S_TEXT_MAX);
    const json_t *rep = jx_get(obj, "spec.replicas");
    if (json_is_integer(rep) && json_integer_value(rep) < 0) {
        buf_printf(&m,
                   "Invalid value: %" JSON_INTEGER_FORMAT ": must be greater than or equal to 0",
                   json_integer_value(rep));
        s_cause(causes, "FieldValueInvalid", "spec.replicas", buf_str(&m));
    }
    const json_t *sel = jx_get(obj, "spec.selector");
    const json_t *labels = jx_get(obj, "spec.template.metadata.labels");
    bool nil = !json_is_object(sel);
    if (nil) {
        s_cause(causes, "FieldValueRequired", "spec.selector", "Required value");
    } else if (!json_object_size(json_object_get(sel, "matchLabels")) &&
               !json_array_size(json_object_get(sel, "matchExpressions"))) {
        buf_reset(&m);
        buf_puts(&m, "Invalid value: v1.LabelSelector{MatchLabels:");
        s_go_map(&m, json_object_get(sel, "matchLabels"));
        buf_printf(&m,
                   ", MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is "
                   "invalid for %s",
                   sts ? "statefulset" : "deployment");
        s_cause(causes, "FieldValueInvalid", "spec.selector", buf_str(&m));
    }
    selector_t *s = NULL;
    if (selector_from_label_selector(nil ? NULL : sel, &s, NULL) == 0 && s &&
        (nil || !selector_is_empty(s)) && !selector_matches_labels(s, labels)) {
        buf_reset(&m);
        buf_puts(&m, "Invalid value: ");
        s_go_map(&m, labels);
        buf_puts(&m, ": `selector` does not match template `labels`");
        s_cause(causes, "FieldValueInvalid", "spec.template.metadata.labels", buf_str(&m));
    }
    selector_destroy(&s);
    const char *rp = jx_str(obj, "spec.template.spec.restartPolicy", "Always");
    if (strcmp(rp, "Always") != 0) {
        buf_reset(&m);
        buf_printf(&m, "Unsupported value: \"%s\": supported values: \"Always\"", rp);
        s_cause(causes, "FieldValueNotSupported", "spec.template.spec.restartPolicy", buf_str(&m));
    }
    buf_free(&m);
    return (int)(json_array_size(causes) - before);
}

/* Go's %#v of a *metav1.LabelSelector (dereferenced, as field.Invalid prints it). */
static void s_go_selector(buf_t *b, const json_t *sel)
{
    if (!json_is_object(sel)) {
        buf_puts(b, "null");
        return;
    }
    buf_puts(b, "v1.LabelSelector{MatchLabels:");
    s_go_map(b, json_object_get(sel, "matchLabels"));
    const json_t *ex = json_object_get(sel, "matchExpressions");
    if (!json_is_array(ex)) {
        buf_puts(b, ", MatchExpressions:[]v1.LabelSelectorRequirement(nil)}");
        return;
    }
    buf_puts(b, ", MatchExpressions:[]v1.LabelSelectorRequirement{");
    size_t i, j;
    json_t *e, *v;
    json_array_foreach(ex, i, e)
    {
        buf_printf(b, "%sv1.LabelSelectorRequirement{Key:\"%s\", Operator:\"%s\", Values:",
                   i ? ", " : "", jx_str(e, "key", ""), jx_str(e, "operator", ""));
        const json_t *vals = json_object_get(e, "values");
        if (!json_is_array(vals)) {
            buf_puts(b, "[]string(nil)}");
            continue;
        }
        buf_puts(b, "[]string{");
        json_array_foreach(vals, j, v) buf_printf(b, "%s\"%s\"", j ? ", " : "",
                                                  json_string_value(v) ? json_string_value(v) : "");
        buf_puts(b, "}}");
    }
    buf_puts(b, "}}");
}

int apps_validate_update(const char *resource, const json_t *old, const json_t *obj, json_t *causes)
{
    bool dep = s_is(resource, "deployments"), rs = s_is(resource, "replicasets"),
         sts = s_is(resource, "statefulsets");
    if (!(dep || rs || sts) || !json_is_array(causes) || !old)
        return 0;
    size_t before = json_array_size(causes);
    if (sts) {
        static const char *mutable[] = {"replicas",
                                        "ordinals",
                                        "template",
                                        "updateStrategy",
                                        "revisionHistoryLimit",
                                        "persistentVolumeClaimRetentionPolicy",
                                        "minReadySeconds"};
        json_t *a = json_copy(json_object_get(obj, "spec")), *b = json_copy(jx_get(old, "spec"));
        for (size_t i = 0; i < sizeof(mutable) / sizeof(mutable[0]); i++) {
            json_object_del(a, mutable[i]);
            json_object_del(b, mutable[i]);
        }
        if (!json_equal(a, b))
            s_cause(causes, "FieldValueForbidden", "spec",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                    "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
                    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden");
        json_decref(a);
        json_decref(b);
    } else if (!json_equal(jx_get(obj, "spec.selector"), jx_get(old, "spec.selector"))) {
        buf_t m;
        buf_init(&m, S_TEXT_MAX);
        buf_puts(&m, "Invalid value: ");
        s_go_selector(&m, jx_get(obj, "spec.selector"));
        buf_puts(&m, ": field is immutable");
        s_cause(causes, "FieldValueInvalid", "spec.selector", buf_str(&m));
        buf_free(&m);
    }
    return (int)(json_array_size(causes) - before);
}

/* A copy of v without nulls and empty objects/arrays, recursively: what a typed Go round trip
 * (kubectl rollout undo sends `creationTimestamp: null`, `resources: {}`) does not change. */
static json_t *s_normal(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c)
        {
            json_t *n = s_normal(c);
            if (n)
                json_object_set_new(o, k, n);
        }
        if (!json_object_size(o)) {
            json_decref(o);
            return NULL;
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            json_t *n = s_normal(c);
            json_array_append_new(a, n ? n : json_object());
        }
        if (!json_array_size(a)) {
            json_decref(a);
            return NULL;
        }
        return a;
    }
    return json_is_null(v) || !v ? NULL : json_incref((json_t *)v);
}

void apps_template_hash(const json_t *tmpl, long collisions, char *out, size_t n)
{
    static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789"; /* rand.SafeEncodeString's */
    uint64_t h = 0;
    json_t *norm = s_normal(tmpl);
    jx_hash(norm ? norm : json_null(), &h);
    json_decref(norm);
    uint32_t v = (uint32_t)(h ^ (h >> 32));
    if (collisions > 0) {
        v ^= (uint32_t)collisions;
        v *= 16777619u; /* one FNV-1a round */
    }
    char dec[16];
    snprintf(dec, sizeof(dec), "%" PRIu32, v);
    size_t i = 0;
    for (; dec[i] && i + 1 < n; i++)
        out[i] = alnum[(unsigned char)dec[i] % (sizeof(alnum) - 1)];
    if (n)
        out[i < n ? i : n - 1] = '\0';
}

static json_t *s_col(const char *name, const char *type, const char *desc, int prio)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", name, "type", type, "format", "",
                     "description", desc, "priority", prio);
}

json_t *apps_columns(const char *resource)
{
    json_t *c = json_array();
    if (s_is(resource, "deployments")) {
        json_array_append_new(c, s_col("Ready", "string", "Number of the pod with ready state", 0));
        json_array_append_new(c, s_col("Up-to-date", "string",
                                       "Total number of non-terminated pods targeted by this "
                                       "deployment that have the desired template spec.",
                                       0));
        json_array_append_new(c, s_col("Available", "string",
                                       "Total number of available pods (ready for at least "
                                       "minReadySeconds) targeted by this deployment.",
                                       0));
    } else if (s_is(resource, "replicasets")) {
        json_array_append_new(c, s_col("Desired", "integer", "Number of desired pods.", 0));
        json_array_append_new(
            c, s_col("Current", "integer", "The most recently observed number of replicas.", 0));
        json_array_append_new(
            c, s_col("Ready", "integer", "The number of ready replicas for this replica set.", 0));
    } else if (s_is(resource, "statefulsets")) {
        json_array_append_new(c, s_col("Ready", "string", "Number of the pod with ready state", 0));
    } else {
        json_decref(c);
        return NULL;
    }
    json_array_append_new(c, s_col("Age", "string", "CreationTimestamp", 0));
    json_array_append_new(
        c, s_col("Containers", "string", "Names of each container in the template.", 1));
    json_array_append_new(
        c, s_col("Images", "string", "Images referenced by each container in the template.", 1));
    if (!s_is(resource, "statefulsets"))
        json_array_append_new(c, s_col("Selector", "string", "Label selector for pods.", 1));
    return c;
}

/* kube's metav1.FormatLabelSelector. */
static void s_selector_text(const json_t *sel, buf_t *out)
{
    selector_t *s = NULL;
    if (selector_from_label_selector(sel, &s, NULL) < 0 || !s) {
        buf_puts(out, "<error>");
    } else {
        size_t before = out->len;
        if (selector_to_string(s, out) < 0 || out->len == before)
            buf_puts(out, "<none>");
    }
    selector_destroy(&s);
}

json_t *apps_cells(const char *resource, const json_t *obj, json_t *age)
{
    bool dep = s_is(resource, "deployments"), rs = s_is(resource, "replicasets"),
         sts = s_is(resource, "statefulsets");
    if (!(dep || rs || sts)) {
        json_decref(age);
        return NULL;
    }
    json_int_t want = jx_int(obj, "spec.replicas", 1),
               ready = jx_int(obj, "status.readyReplicas", 0);
    buf_t names, images, sel;
    buf_init(&names, S_TEXT_MAX);
    buf_init(&images, S_TEXT_MAX);
    buf_init(&sel, S_TEXT_MAX);
    size_t i;
    json_t *ct;
    json_array_foreach(jx_get(obj, "spec.template.spec.containers"), i, ct)
    {
        buf_printf(&names, "%s%s", i ? "," : "", jx_str(ct, "name", ""));
        buf_printf(&images, "%s%s", i ? "," : "", jx_str(ct, "image", ""));
    }
    s_selector_text(jx_get(obj, "spec.selector"), &sel);
    char rd[48];
    snprintf(rd, sizeof(rd), "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT, ready, want);
    const char *name = jx_str(obj, "metadata.name", "");
    json_t *c;
    if (dep)
        c = json_pack("[s,s,I,I,o,s,s,s]", name, rd, jx_int(obj, "status.updatedReplicas", 0),
                      jx_int(obj, "status.availableReplicas", 0), age, buf_str(&names),
                      buf_str(&images), buf_str(&sel));
    else if (rs)
        c = json_pack("[s,I,I,I,o,s,s,s]", name, want, jx_int(obj, "status.replicas", 0), ready,
                      age, buf_str(&names), buf_str(&images), buf_str(&sel));
    else
        c = json_pack("[s,s,o,s,s]", name, rd, age, buf_str(&names), buf_str(&images));
    buf_free(&names);
    buf_free(&images);
    buf_free(&sel);
    return c;
}

json_t *apps_scale(const json_t *obj)
{
    buf_t sel;
    buf_init(&sel, S_TEXT_MAX);
    selector_t *s = NULL;
    if (selector_from_label_selector(jx_get(obj, "spec.selector"), &s, NULL) == 0 && s)
        selector_to_string(s, &sel);
    selector_destroy(&s);
    json_t *md =
        json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", jx_str(obj, "metadata.name", ""), "namespace",
                  jx_str(obj, "metadata.namespace", ""), "uid", jx_str(obj, "metadata.uid", ""),
                  "resourceVersion", jx_str(obj, "metadata.resourceVersion", ""),
                  "creationTimestamp", jx_str(obj, "metadata.creationTimestamp", ""));
    json_t *spec = json_object();
    json_int_t want = jx_int(obj, "spec.replicas", 1);
    if (want)
        json_object_set_new(spec, "replicas", json_integer(want));
    json_t *sc = json_pack("{s:s,s:s,s:o,s:o,s:{s:I,s:s}}", "kind", "Scale", "apiVersion",
                           "autoscaling/v1", "metadata", md, "spec", spec, "status", "replicas",
                           jx_int(obj, "status.replicas", 0), "selector", buf_str(&sel));
    buf_free(&sel);
    return sc;
}

/* ---- controller helpers ----------------------------------------------------------------- */

static bool s_pod_ready(const json_t *pod)
{
    const json_t *c = jx_array_find(jx_get(pod, "status.conditions"), "type", "Ready");
    return c && strcmp(jx_str(c, "status", ""), "True") == 0;
}

static bool s_pod_active(const json_t *pod)
{
    const char *ph = jx_str(pod, "status.phase", "");
    return !jx_get(pod, "metadata.deletionTimestamp") && strcmp(ph, "Succeeded") != 0 &&
           strcmp(ph, "Failed") != 0;
}

/* The controller ownerReference of obj when its kind is `kind`, else NULL. */
static const json_t *s_cref(const json_t *obj, const char *kind)
{
    size_t i;
    json_t *r;
    json_array_foreach(jx_get(obj, "metadata.ownerReferences"), i, r)
    {
        if (json_is_true(json_object_get(r, "controller")))
            return strcmp(jx_str(r, "kind", ""), kind) == 0 ? r : NULL;
    }
    return NULL;
}

static json_t *s_owner_ref(const char *kind, const json_t *owner)
{
    return json_pack("[{s:s,s:s,s:s,s:s,s:b,s:b}]", "apiVersion", "apps/v1", "kind", kind, "name",
                     jx_str(owner, "metadata.name", ""), "uid", jx_str(owner, "metadata.uid", ""),
                     "controller", 1, "blockOwnerDeletion", 1);
}

static void s_soon(void *arg)
{
    apps_tick(arg);
}

static void s_kick(apps_t *a)
{
    loop_soon(&a->soon);
}

static void s_mark(apps_t *a, int which, const char *ns, const char *name)
{
    char key[S_KEY_MAX];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    json_object_set_new(a->dirty[which], key, json_true());
    s_kick(a);
}

static int64_t s_on_later(loop_t *loop, int64_t id, void *arg);

/* Arms the timer for the earliest due time of a->later (a loop only). */
static void s_arm_later(apps_t *a)
{
    if (!a->loop)
        return;
    int64_t due = 0;
    for (int k = 0; k < 3; k++) {
        const char *key;
        json_t *v;
        json_object_foreach(a->later[k], key, v)
        {
            int64_t t = (int64_t)json_integer_value(v);
            due = !due || t < due ? t : due;
        }
    }
    if (a->later_timer > 0 && (!due || due < a->later_due)) {
        loop_cancel_timer(a->loop, a->later_timer);
        a->later_timer = 0;
    }
    if (!due || a->later_timer > 0)
        return;
    int64_t delay = due - objstore_now_ms(a->store);
    int64_t id = loop_add_timer(a->loop, delay > 0 ? delay : 0, s_on_later, a);
    a->later_timer = id > 0 ? id : 0;
    a->later_due = due;
}

/* Syncs ns/name of kind `which` again at `due_ms` (minReadySeconds running out). */
static void s_later(apps_t *a, int which, const char *ns, const char *name, int64_t due_ms)
{
    char key[S_KEY_MAX];
    if (snprintf(key, sizeof(key), "%s/%s", ns, name) >= (int)sizeof(key))
        return; /* longer than any namespace and name the API server accepts */
    json_t *cur = json_object_get(a->later[which], key);
    if (cur && json_integer_value(cur) <= due_ms)
        return;
    json_object_set_new(a->later[which], key, json_integer(due_ms));
    s_arm_later(a);
}

/* Moves the due entries of a->later into the dirty sets. */
static void s_due(apps_t *a)
{
    int64_t now = objstore_now_ms(a->store);
    for (int k = 0; k < 3; k++) {
        const char *key;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(a->later[k], tmp, key, v)
        {
            if (json_integer_value(v) <= now) {
                json_object_set_new(a->dirty[k], key, json_true());
                json_object_del(a->later[k], key);
            }
        }
    }
}

static int64_t s_on_later(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    apps_t *a = arg;
    a->later_timer = 0;
    s_due(a);
    s_arm_later(a);
    apps_tick(a);
    return LOOP_TIMER_DONE;
}

/* True when `pod` is Ready and has been for minReadySeconds `mrs` by now; when it is Ready but
 * not for long enough, *wake (0 = none) is lowered to the ms it will be. */
static bool s_pod_available(const apps_t *a, const json_t *pod, json_int_t mrs, int64_t *wake)
{
    if (!s_pod_ready(pod))
        return false;
    if (mrs <= 0)
        return true;
    const json_t *c = jx_array_find(jx_get(pod, "status.conditions"), "type", "Ready");
    int64_t since = 0;
    if (rftime_parse_sec(jx_str(c, "lastTransitionTime", ""), &since) < 0)
        return true;
    int64_t at = (since + mrs) * 1000;
    if (at <= objstore_now_ms(a->store))
        return true;
    if (!*wake || at < *wake)
        *wake = at;
    return false;
}

static void s_split(const char *key, char *ns, size_t n, const char **name)
{
    const char *slash = strchr(key, '/');
    size_t l = slash ? (size_t)(slash - key) : 0;
    snprintf(ns, n, "%.*s", (int)l, key);
    *name = slash ? slash + 1 : key;
}

/* Filter: the controller ownerReference's uid is the arg. */
static bool s_owned_by(const json_t *obj, void *arg)
{
    size_t i;
    json_t *r;
    json_array_foreach(jx_get(obj, "metadata.ownerReferences"), i, r)
    {
        if (json_is_true(json_object_get(r, "controller")))
            return strcmp(jx_str(r, "uid", ""), (const char *)arg) == 0;
    }
    return false;
}

/* The objects of r in ns controlled by `owner` (a new array; sorted by name). */
static json_t *s_owned(apps_t *a, objstore_res_t *r, const char *ns, const json_t *owner)
{
    objstore_list_opts_t lo = {
        .ns = ns, .filter = s_owned_by, .filter_arg = (void *)jx_str(owner, "metadata.uid", "")};
    objstore_list_t l;
    objstore_status_t st;
    if (objstore_list(a->store, r, &lo, &l, &st) < 0)
        return json_array();
    json_t *items = json_incref(l.items);
    objstore_list_free(&l);
    return items;
}

/* Writes `status` (stolen) as obj's status; returns 1 when the store changed. */
static int s_put_status(apps_t *a, objstore_res_t *r, const json_t *obj, json_t *status)
{
    objstore_status_t st;
    return objstore_put_status(a->store, r, obj, status, &st) == 1;
}

/* Writes obj's copy `o` (stolen) to the main endpoint; returns 1 on success. */
static int s_put_main(apps_t *a, objstore_res_t *r, json_t *o)
{
    char ns[S_KEY_MAX], name[S_KEY_MAX];
    snprintf(ns, sizeof(ns), "%s", jx_str(o, "metadata.namespace", ""));
    snprintf(name, sizeof(name), "%s", jx_str(o, "metadata.name", ""));
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
    objstore_status_t st;
    return objstore_update(a->store, r, ns, name, &o, &uo, NULL, NULL, &st) == 0;
}

static void s_set_int(json_t *o, const char *k, json_int_t v, bool omitempty)
{
    if (v || !omitempty)
        json_object_set_new(o, k, json_integer(v));
}

/* A pod from `tmpl` owned by `owner` of `kind`: name or generateName, extra labels (stolen). */
static int s_make_pod(apps_t *a, const char *ns, const json_t *tmpl, const char *kind,
                      const json_t *owner, const char *name, const char *gen, json_t *extra,
                      json_t *spec_extra)
{
    json_t *labels = json_deep_copy(jx_get(tmpl, "metadata.labels"));
    if (!labels)
        labels = json_object();
    json_object_update(labels, extra);
    json_decref(extra);
    json_t *md = json_pack("{s:s,s:o,s:o}", "namespace", ns, "labels", labels, "ownerReferences",
                           s_owner_ref(kind, owner));
    json_object_set_new(md, name ? "name" : "generateName", json_string(name ? name : gen));
    const json_t *ann = jx_get(tmpl, "metadata.annotations");
    if (ann)
        json_object_set_new(md, "annotations", json_deep_copy(ann));
    json_t *spec = json_deep_copy(jx_get(tmpl, "spec"));
    if (!spec)
        spec = json_object();
    json_object_update(spec, spec_extra);
    json_decref(spec_extra);
    json_t *pod = json_pack("{s:s,s:s,s:o,s:o}", "apiVersion", "v1", "kind", "Pod", "metadata", md,
                            "spec", spec);
    objstore_status_t st;
    return pod && objstore_create(a->store, a->rpods, ns, &pod, NULL, &st) == 0;
}

/* ---- ReplicaSet ------------------------------------------------------------------------- */

/* Scale-down order: unscheduled, then not Ready, then newest first. */
static int s_victim_cmp(const void *x, const void *y)
{
    const json_t *p = *(const json_t *const *)x, *q = *(const json_t *const *)y;
    int ps = jx_get(p, "spec.nodeName") != NULL, qs = jx_get(q, "spec.nodeName") != NULL;
    if (ps != qs)
        return ps - qs;
    int pr = s_pod_ready(p), qr = s_pod_ready(q);
    if (pr != qr)
        return pr - qr;
    int c = strcmp(jx_str(q, "metadata.creationTimestamp", ""),
                   jx_str(p, "metadata.creationTimestamp", ""));
    return c ? c : strcmp(jx_str(q, "metadata.name", ""), jx_str(p, "metadata.name", ""));
}

static int s_sync_rs(apps_t *a, const char *ns, const char *name)
{
    json_t *rs = NULL;
    objstore_status_t st;
    if (objstore_get(a->store, a->rrs, ns, name, &rs, &st) < 0)
        return 0;
    int writes = 0;
    json_t *pods = s_owned(a, a->rpods, ns, rs);
    size_t n = json_array_size(pods), nact = 0;
    const json_t **act = calloc(n ? n : 1, sizeof(*act));
    json_int_t ready = 0, avail = 0, mrs = jx_int(rs, "spec.minReadySeconds", 0);
    int64_t wake = 0;
    for (size_t i = 0; act && i < n; i++) {
        const json_t *p = json_array_get(pods, i);
        if (!s_pod_active(p))
            continue;
        act[nact++] = p;
        ready += s_pod_ready(p);
        avail += s_pod_available(a, p, mrs, &wake);
    }
    if (wake)
        s_later(a, S_RS, ns, name, wake);
    json_int_t want = jx_int(rs, "spec.replicas", 1);
    if (act && !jx_get(rs, "metadata.deletionTimestamp")) {
        if ((json_int_t)nact < want) {
            char gen[S_NAME_MAX];
            snprintf(gen, sizeof(gen), "%s-", name);
            for (json_int_t i = (json_int_t)nact; i < want; i++)
                writes += s_make_pod(a, ns, jx_get(rs, "spec.template"), "ReplicaSet", rs, NULL,
                                     gen, NULL, NULL);
        } else if ((json_int_t)nact > want) {
            qsort(act, nact, sizeof(*act), s_victim_cmp);
            for (size_t i = 0; i < nact - (size_t)want; i++)
                writes +=
                    objstore_delete(a->store, a->rpods, ns, jx_str(act[i], "metadata.name", ""),
                                    NULL, NULL, NULL, &st) == 0;
        }
    }
    json_t *status = json_object();
    s_set_int(status, "replicas", (json_int_t)nact, false);
    s_set_int(status, "fullyLabeledReplicas", (json_int_t)nact, true);
    s_set_int(status, "readyReplicas", ready, true);
    s_set_int(status, "availableReplicas", avail, true);
    s_set_int(status, "observedGeneration", jx_int(rs, "metadata.generation", 1), true);
    writes += s_put_status(a, a->rrs, rs, status);
    free(act);
    json_decref(pods);
    json_decref(rs);
    return writes;
}

/* ---- Deployment ------------------------------------------------------------------------- */

/* kube's intstr.GetScaledValueFromIntOrPercent (round down as maxUnavailable does). */
static json_int_t s_scaled(const json_t *v, json_int_t total, json_int_t def, bool up)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v)) {
        char *end;
        long p = strtol(json_string_value(v), &end, 10);
        if (*end == '%')
            return (total * p + (up ? 99 : 0)) / 100;
    }
    return def;
}

static int s_scale_rs(apps_t *a, const json_t *rs, json_int_t want, json_int_t dwant);

/* One step of the rollout to `newrs` among the Deployment's ReplicaSets `rss`, as kube's
 * deployment controller: Recreate scales the old ReplicaSets to 0 and the new one up once no old
 * pod is left; RollingUpdate scales the new one up within spec.replicas + maxSurge (rounded up)
 * and the old ones down while spec.replicas - maxUnavailable (rounded down) pods stay available
 * (unhealthy old pods first, then the oldest ReplicaSets). Each write's event brings the next
 * step. Sets *complete when the new ReplicaSet has every replica available and no old one is
 * left. Returns the writes. */
static int s_rollout(apps_t *a, const json_t *d, const json_t *rss, const json_t *newrs,
                     bool recreate, json_int_t oldpods, bool *complete)
{
    json_int_t want = jx_int(d, "spec.replicas", 1);
    json_int_t nspec = jx_int(newrs, "spec.replicas", 0);
    json_int_t navail = jx_int(newrs, "status.availableReplicas", 0);
    json_int_t oldspec = 0, availall = navail;
    size_t i, n = json_array_size(rss);
    json_t *r;
    json_array_foreach(rss, i, r)
    {
        if (r == newrs)
            continue;
        oldspec += jx_int(r, "spec.replicas", 0);
        availall += jx_int(r, "status.availableReplicas", 0);
    }
    int writes = 0;
    *complete = oldpods == 0 && nspec == want && navail >= want &&
                jx_int(newrs, "status.replicas", 0) == want;
    if (recreate || oldspec == 0) {
        json_array_foreach(rss, i, r) if (r != newrs) writes += s_scale_rs(a, r, 0, want);
        if (!recreate || oldpods == 0)
            writes += s_scale_rs(a, newrs, want, want);
        return writes;
    }
    const json_t *ru = jx_get(d, "spec.strategy.rollingUpdate");
    json_int_t surge = s_scaled(json_object_get(ru, "maxSurge"), want, 0, true);
    json_int_t unav = s_scaled(json_object_get(ru, "maxUnavailable"), want, 0, false);
    if (surge == 0 && unav == 0)
        unav = 1; /* kube's resolveFenceposts */
    json_int_t all = nspec + oldspec;
    /* the new ReplicaSet up (kube returns after scaling it up) */
    json_int_t nn = nspec > want ? want : nspec;
    if (nspec < want && all < want + surge) {
        json_int_t up = want + surge - all;
        nn = nspec + (up < want - nspec ? up : want - nspec);
    }
    if (nn != nspec) {
        writes += s_scale_rs(a, newrs, nn, want);
        if (nn > nspec)
            return writes;
    }
    /* the old ones down */
    json_int_t minav = want - unav;
    json_int_t maxdown = all - minav - (nspec - navail);
    if (maxdown <= 0)
        return writes;
    json_int_t *spec = calloc(n ? n : 1, sizeof(*spec));
    if (!spec)
        return writes;
    json_array_foreach(rss, i, r) spec[i] = jx_int(r, "spec.replicas", 0);
    json_array_foreach(rss, i, r)
    {
        json_int_t bad = spec[i] - jx_int(r, "status.availableReplicas", 0);
        if (r == newrs || bad <= 0 || maxdown <= 0)
            continue;
        json_int_t down = bad < maxdown ? bad : maxdown;
        spec[i] -= down;
        maxdown -= down;
    }
    json_int_t total = availall - minav;
    json_array_foreach(rss, i, r)
    {
        if (r == newrs || total <= 0)
            continue;
        json_int_t down = spec[i] < total ? spec[i] : total;
        spec[i] -= down;
        total -= down;
    }
    json_array_foreach(rss, i, r) if (r != newrs && spec[i] != jx_int(r, "spec.replicas", 0))
        writes += s_scale_rs(a, r, spec[i], want);
    free(spec);
    return writes;
}

/* Sets condition `type` in conds (an array owned by the caller) as kube's
 * SetDeploymentCondition: unchanged status+reason keeps the times (Progressing's lastUpdateTime
 * moves), otherwise the condition is replaced at the end. */
static void s_set_cond(json_t *conds, const char *type, bool status, const char *reason,
                       const char *msg, const char *ts)
{
    const char *sv = status ? "True" : "False";
    size_t at = json_array_size(conds);
    for (size_t i = 0; i < json_array_size(conds); i++)
        if (strcmp(jx_str(json_array_get(conds, i), "type", ""), type) == 0)
            at = i;
    const json_t *c = json_array_get(conds, at);
    if (c && strcmp(jx_str(c, "status", ""), sv) == 0 &&
        strcmp(jx_str(c, "reason", ""), reason) == 0) {
        if (strcmp(jx_str(c, "message", ""), msg) != 0) {
            json_t *nc = json_copy((json_t *)c);
            json_object_set_new(nc, "message", json_string(msg));
            json_object_set_new(nc, "lastUpdateTime", json_string(ts));
            json_array_set_new(conds, at, nc);
        }
        return;
    }
    const char *lt =
        c && strcmp(jx_str(c, "status", ""), sv) == 0 ? jx_str(c, "lastTransitionTime", ts) : ts;
    json_t *nc =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", type, "status", sv, "lastUpdateTime", ts,
                  "lastTransitionTime", lt, "reason", reason, "message", msg);
    if (c)
        json_array_remove(conds, at);
    json_array_append_new(conds, nc);
}

/* Sets rs's spec.replicas (and the desired-replicas annotation); returns 1 on a write. */
static int s_scale_rs(apps_t *a, const json_t *rs, json_int_t want, json_int_t dwant)
{
    char dv[32];
    snprintf(dv, sizeof(dv), "%" JSON_INTEGER_FORMAT, dwant);
    const char *cur = json_string_value(json_object_get(
        jx_get(rs, "metadata.annotations"), "deployment.kubernetes.io/desired-replicas"));
    if (jx_int(rs, "spec.replicas", 1) == want && (!cur || strcmp(cur, dv) == 0))
        return 0;
    json_t *o = json_copy((json_t *)rs);
    json_t *spec = json_copy(json_object_get(rs, "spec"));
    json_t *md = json_copy(json_object_get(rs, "metadata"));
    json_t *ann = json_copy(json_object_get(md, "annotations"));
    if (!ann)
        ann = json_object();
    json_object_set_new(ann, "deployment.kubernetes.io/desired-replicas", json_string(dv));
    json_object_set_new(md, "annotations", ann);
    json_object_set_new(spec, "replicas", json_integer(want));
    json_object_set_new(o, "spec", spec);
    json_object_set_new(o, "metadata", md);
    return s_put_main(a, a->rrs, o);
}

static json_int_t s_revision(const json_t *rs)
{
    const json_t *ann = jx_get(rs, "metadata.annotations");
    const char *v = json_string_value(json_object_get(ann, APPS_ANN_REVISION));
    return v ? strtoll(v, NULL, 10) : 0;
}

static int s_sync_dep(apps_t *a, const char *ns, const char *name)
{
    json_t *d = NULL;
    objstore_status_t st;
    if (!a->rrs || objstore_get(a->store, a->rdeps, ns, name, &d, &st) < 0)
        return 0;
    if (jx_get(d, "metadata.deletionTimestamp")) {
        json_decref(d);
        return 0;
    }
    int writes = 0;
    json_int_t want = jx_int(d, "spec.replicas", 1);
    const json_t *tmpl = jx_get(d, "spec.template");
    char hash[16], rsname[S_NAME_MAX], ts[40];
    apps_template_hash(tmpl, (long)jx_int(d, "status.collisionCount", 0), hash, sizeof(hash));
    snprintf(rsname, sizeof(rsname), "%s-%s", name, hash);
    rftime_format(objstore_now_ms(a->store), RFTIME_SEC, ts, sizeof(ts));
    json_t *rss = s_owned(a, a->rrs, ns, d);
    const json_t *newrs = NULL;
    json_int_t maxrev = 0, oldpods = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rss, i, r)
    {
        json_int_t rev = s_revision(r);
        maxrev = rev > maxrev ? rev : maxrev;
        if (strcmp(jx_str(r, "metadata.name", ""), rsname) == 0)
            newrs = r;
        else
            oldpods += jx_int(r, "spec.replicas", 0) + jx_int(r, "status.replicas", 0);
    }
    bool recreate = strcmp(jx_str(d, "spec.strategy.type", "RollingUpdate"), "Recreate") == 0;
    bool paused = jx_bool(d, "spec.paused", false);
    bool created = false;
    /* an older ReplicaSet becoming the new one again (rollout undo) gets the next revision */
    json_int_t maxold = 0;
    json_array_foreach(rss, i, r) if (r != newrs && s_revision(r) > maxold) maxold = s_revision(r);
    if (newrs && !paused && s_revision(newrs) <= maxold) {
        json_t *o = json_copy((json_t *)newrs), *out = NULL;
        json_t *md = json_copy(json_object_get(newrs, "metadata"));
        json_t *ann = json_copy(json_object_get(md, "annotations"));
        char rv[32];
        snprintf(rv, sizeof(rv), "%" JSON_INTEGER_FORMAT, maxold + 1);
        if (!ann)
            ann = json_object();
        json_object_set_new(ann, APPS_ANN_REVISION, json_string(rv));
        json_object_set_new(md, "annotations", ann);
        json_object_set_new(o, "metadata", md);
        objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
        if (objstore_update(a->store, a->rrs, ns, rsname, &o, &uo, &out, NULL, &st) == 0) {
            writes++;
            json_array_foreach(rss, i, r) if (r == newrs) break;
            json_array_set_new(rss, i, out);
            newrs = json_array_get(rss, i);
        }
    }
    char msg[S_NAME_MAX + 80];
    if (!newrs && !paused) {
        json_t *t = json_deep_copy(tmpl);
        if (!t)
            t = json_object();
        jx_setv(t, json_string(hash), "metadata", "labels", APPS_LABEL_HASH, NULL);
        json_t *sel = json_deep_copy(jx_get(d, "spec.selector"));
        if (!sel)
            sel = json_object();
        jx_setv(sel, json_string(hash), "matchLabels", APPS_LABEL_HASH, NULL);
        json_t *labels = json_deep_copy(jx_get(tmpl, "metadata.labels"));
        if (!labels)
            labels = json_object();
        json_object_set_new(labels, APPS_LABEL_HASH, json_string(hash));
        char rev[32], dv[32], mx[32];
        snprintf(rev, sizeof(rev), "%" JSON_INTEGER_FORMAT, maxrev + 1);
        snprintf(dv, sizeof(dv), "%" JSON_INTEGER_FORMAT, want);
        snprintf(mx, sizeof(mx), "%" JSON_INTEGER_FORMAT,
                 want + s_scaled(jx_get(d, "spec.strategy.rollingUpdate.maxSurge"), want, 0, true));
        json_int_t start = oldpods ? 0 : want; /* a rollout scales it up step by step */
        json_t *o = json_pack(
            "{s:s,s:s,s:{s:s,s:s,s:o,s:{s:s,s:s,s:s},s:o},s:{s:I,s:I,s:o,s:o}}", "apiVersion",
            "apps/v1", "kind", "ReplicaSet", "metadata", "name", rsname, "namespace", ns, "labels",
            labels, "annotations", "deployment.kubernetes.io/desired-replicas", dv,
            "deployment.kubernetes.io/max-replicas", mx, APPS_ANN_REVISION, rev, "ownerReferences",
            s_owner_ref("Deployment", d), "spec", "replicas", start, "minReadySeconds",
            jx_int(d, "spec.minReadySeconds", 0), "selector", sel, "template", t);
        json_t *out = NULL;
        if (o && objstore_create(a->store, a->rrs, ns, &o, &out, &st) == 0) {
            writes++;
            created = true;
            json_array_append_new(rss, out);
            newrs = json_array_get(rss, json_array_size(rss) - 1);
        }
    }
    /* the new ReplicaSet follows the Deployment's minReadySeconds */
    json_int_t mrs = jx_int(d, "spec.minReadySeconds", 0);
    if (newrs && jx_int(newrs, "spec.minReadySeconds", 0) != mrs) {
        json_t *o = json_copy((json_t *)newrs), *sp = json_copy(json_object_get(newrs, "spec"));
        if (o && sp) {
            json_object_set_new(sp, "minReadySeconds", json_integer(mrs));
            json_object_set_new(o, "spec", sp);
            writes += s_put_main(a, a->rrs, o);
        } else {
            json_decref(o);
            json_decref(sp);
        }
    }
    /* Rollout and scaling. */
    bool complete = false;
    if (newrs && !paused)
        writes += s_rollout(a, d, rss, newrs, recreate, oldpods, &complete);
    /* Status. */
    json_int_t reps = 0, ready = 0, avail = 0, specsum = 0;
    json_array_foreach(rss, i, r)
    {
        reps += jx_int(r, "status.replicas", 0);
        ready += jx_int(r, "status.readyReplicas", 0);
        avail += jx_int(r, "status.availableReplicas", 0);
        specsum += jx_int(r, "spec.replicas", 0);
    }
    json_t *status = json_object();
    s_set_int(status, "observedGeneration", jx_int(d, "metadata.generation", 1), true);
    s_set_int(status, "replicas", reps, true);
    s_set_int(status, "updatedReplicas", newrs ? jx_int(newrs, "status.replicas", 0) : 0, true);
    s_set_int(status, "readyReplicas", ready, true);
    s_set_int(status, "availableReplicas", avail, true);
    s_set_int(status, "unavailableReplicas", specsum > avail ? specsum - avail : 0, true);
    json_int_t cc = jx_int(d, "status.collisionCount", 0);
    if (cc)
        json_object_set_new(status, "collisionCount", json_integer(cc));
    json_t *conds = json_deep_copy(jx_get(d, "status.conditions"));
    if (!json_is_array(conds)) {
        json_decref(conds);
        conds = json_array();
    }
    json_int_t maxu = recreate ? 0
                               : s_scaled(jx_get(d, "spec.strategy.rollingUpdate.maxUnavailable"),
                                          want, 0, false);
    bool minavail = avail >= want - maxu;
    s_set_cond(conds, "Available", minavail,
               minavail ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
               minavail ? "Deployment has minimum availability."
                        : "Deployment does not have minimum availability.",
               ts);
    if (paused) {
        s_set_cond(conds, "Progressing", false, "DeploymentPaused", "Deployment is paused", ts);
    } else if (newrs) {
        const char *rn = jx_str(newrs, "metadata.name", "");
        if (created) {
            snprintf(msg, sizeof(msg), "Created new replica set \"%s\"", rn);
            s_set_cond(conds, "Progressing", true, "NewReplicaSetCreated", msg, ts);
        } else if (complete) {
            snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" has successfully progressed.", rn);
            s_set_cond(conds, "Progressing", true, "NewReplicaSetAvailable", msg, ts);
        } else {
            const json_t *pc = jx_array_find(conds, "type", "Progressing");
            /* kube leaves NewReplicaSetAvailable alone while only scaling */
            if (!pc || strcmp(jx_str(pc, "reason", ""), "NewReplicaSetAvailable") != 0 || oldpods) {
                snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" is progressing.", rn);
                s_set_cond(conds, "Progressing", true, "ReplicaSetUpdated", msg, ts);
            }
        }
    }
    json_object_set_new(status, "conditions", conds);
    /* the revision annotation on the Deployment */
    if (newrs) {
        const char *rev = json_string_value(
            json_object_get(jx_get(newrs, "metadata.annotations"), APPS_ANN_REVISION));
        const char *cur = json_string_value(
            json_object_get(jx_get(d, "metadata.annotations"), APPS_ANN_REVISION));
        if (rev && (!cur || strcmp(cur, rev) != 0)) {
            json_t *o = json_copy(d);
            json_t *md = json_copy(json_object_get(d, "metadata"));
            json_t *ann = json_copy(json_object_get(md, "annotations"));
            if (!ann)
                ann = json_object();
            json_object_set_new(ann, APPS_ANN_REVISION, json_string(rev));
            json_object_set_new(md, "annotations", ann);
            json_object_set_new(o, "metadata", md);
            writes += s_put_main(a, a->rdeps, o);
            json_decref(d);
            d = NULL;
            objstore_get(a->store, a->rdeps, ns, name, &d, &st);
        }
    }
    if (d)
        writes += s_put_status(a, a->rdeps, d, status);
    else
        json_decref(status);
    json_decref(rss);
    json_decref(d);
    return writes;
}

/* ---- StatefulSet ------------------------------------------------------------------------ */

static long s_ordinal(const char *sts, const char *pod)
{
    size_t n = strlen(sts);
    if (strncmp(pod, sts, n) != 0 || pod[n] != '-' || !pod[n + 1])
        return -1;
    char *end;
    long o = strtol(pod + n + 1, &end, 10);
    return *end || o < 0 ? -1 : o;
}

/* The PVCs of ordinal `ord` (created when missing) and the pod's volumes list. */
static json_t *s_sts_volumes(apps_t *a, const json_t *sts, const char *ns, long ord, int *writes)
{
    const char *sname = jx_str(sts, "metadata.name", "");
    json_t *vols = json_deep_copy(jx_get(sts, "spec.template.spec.volumes"));
    if (!json_is_array(vols)) {
        json_decref(vols);
        vols = json_array();
    }
    size_t i;
    json_t *ct;
    json_array_foreach(jx_get(sts, "spec.volumeClaimTemplates"), i, ct)
    {
        const char *cn = jx_str(ct, "metadata.name", "");
        char claim[S_KEY_MAX];
        snprintf(claim, sizeof(claim), "%s-%s-%ld", cn, sname, ord);
        for (size_t k = 0; k < json_array_size(vols); k++)
            if (strcmp(jx_str(json_array_get(vols, k), "name", ""), cn) == 0)
                json_array_remove(vols, k--);
        json_array_append_new(vols, json_pack("{s:s,s:{s:s}}", "name", cn, "persistentVolumeClaim",
                                              "claimName", claim));
        if (!a->rpvcs)
            continue; /* kubesim serves no PVCs: the claim is only named */
        json_t *cur = NULL;
        objstore_status_t st;
        if (objstore_get(a->store, a->rpvcs, ns, claim, &cur, &st) == 0) {
            json_decref(cur);
            continue;
        }
        json_t *labels = json_deep_copy(jx_get(ct, "metadata.labels"));
        if (!labels)
            labels = json_object();
        json_object_update(labels, jx_get(sts, "spec.selector.matchLabels"));
        json_t *pvc = json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:o}", "apiVersion", "v1", "kind",
                                "PersistentVolumeClaim", "metadata", "name", claim, "namespace", ns,
                                "labels", labels, "spec",
                                json_deep_copy(json_object_get(ct, "spec"))); /* admission edits */
        /* the API server's admission as for any client's create (the default StorageClass) */
        if (pvc && !storage_admit(a->store, "", "persistentvolumeclaims", pvc, NULL, &st))
            log_warn("statefulset: claim refused", "namespace", ns, "claim", claim, "message",
                     st.message, NULL);
        else if (pvc && objstore_create(a->store, a->rpvcs, ns, &pvc, NULL, &st) == 0)
            (*writes)++;
        json_decref(pvc); /* NULL after a create that took it */
    }
    return vols;
}

static int s_sts_make(apps_t *a, const json_t *sts, const char *ns, long ord, const char *rev)
{
    const char *sname = jx_str(sts, "metadata.name", "");
    char pname[S_KEY_MAX], idx[32];
    snprintf(pname, sizeof(pname), "%s-%ld", sname, ord);
    snprintf(idx, sizeof(idx), "%ld", ord);
    int writes = 0;
    json_t *spec_extra = json_pack("{s:s}", "hostname", pname);
    const char *svc = jx_str(sts, "spec.serviceName", "");
    if (svc[0])
        json_object_set_new(spec_extra, "subdomain", json_string(svc));
    json_t *vols = s_sts_volumes(a, sts, ns, ord, &writes);
    if (json_array_size(vols))
        json_object_set_new(spec_extra, "volumes", vols);
    else
        json_decref(vols);
    json_t *extra = json_pack("{s:s,s:s,s:s}", APPS_LABEL_POD_NAME, pname, APPS_LABEL_POD_INDEX,
                              idx, APPS_LABEL_REVISION, rev);
    writes += s_make_pod(a, ns, jx_get(sts, "spec.template"), "StatefulSet", sts, pname, NULL,
                         extra, spec_extra);
    return writes;
}

static int s_sync_sts(apps_t *a, const char *ns, const char *name)
{
    json_t *sts = NULL;
    objstore_status_t st;
    if (objstore_get(a->store, a->rsts, ns, name, &sts, &st) < 0)
        return 0;
    int writes = 0;
    char hash[16], rev[S_NAME_MAX];
    apps_template_hash(jx_get(sts, "spec.template"), 0, hash, sizeof(hash));
    snprintf(rev, sizeof(rev), "%s-%s", name, hash);
    json_int_t want = jx_int(sts, "spec.replicas", 1);
    bool parallel = strcmp(jx_str(sts, "spec.podManagementPolicy", ""), "Parallel") == 0;
    bool ondelete = strcmp(jx_str(sts, "spec.updateStrategy.type", ""), "OnDelete") == 0;
    json_t *pods = s_owned(a, a->rpods, ns, sts);
    /* by ordinal */
    json_int_t maxord = want;
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        long o = s_ordinal(name, jx_str(p, "metadata.name", ""));
        maxord = o + 1 > maxord ? o + 1 : maxord;
    }
    const json_t **by = calloc((size_t)maxord + 1, sizeof(*by));
    json_int_t reps = 0, ready = 0, cur = 0, avail = 0,
               mrs = jx_int(sts, "spec.minReadySeconds", 0);
    int64_t wake = 0;
    json_array_foreach(pods, i, p)
    {
        long o = s_ordinal(name, jx_str(p, "metadata.name", ""));
        if (o < 0 || !by)
            continue;
        by[o] = p;
        if (jx_get(p, "metadata.deletionTimestamp"))
            continue;
        reps++;
        ready += s_pod_ready(p);
        avail += s_pod_available(a, p, mrs, &wake);
        const char *pr =
            json_string_value(json_object_get(jx_get(p, "metadata.labels"), APPS_LABEL_REVISION));
        cur += pr && strcmp(pr, rev) == 0;
    }
    if (by && !jx_get(sts, "metadata.deletionTimestamp")) {
        bool blocked = false;
        for (json_int_t o = 0; o < want && !blocked; o++) {
            const json_t *q = by[o];
            if (q && strcmp(jx_str(q, "status.phase", ""), "Failed") == 0 &&
                !jx_get(q, "metadata.deletionTimestamp")) {
                writes += objstore_delete(a->store, a->rpods, ns, jx_str(q, "metadata.name", ""),
                                          NULL, NULL, NULL, &st) == 0;
                blocked = !parallel;
                continue;
            }
            if (!q) {
                writes += s_sts_make(a, sts, ns, (long)o, rev);
                blocked = !parallel;
            } else if (jx_get(q, "metadata.deletionTimestamp") ||
                       !(strcmp(jx_str(q, "status.phase", ""), "Running") == 0 && s_pod_ready(q))) {
                blocked = !parallel;
            }
        }
        /* scale down, highest ordinal first */
        for (json_int_t o = maxord - 1; o >= want && !blocked; o--) {
            const json_t *q = by[o];
            if (!q)
                continue;
            if (!jx_get(q, "metadata.deletionTimestamp"))
                writes += objstore_delete(a->store, a->rpods, ns, jx_str(q, "metadata.name", ""),
                                          NULL, NULL, NULL, &st) == 0;
            blocked = !parallel;
        }
        /* rolling update: the highest outdated pod once all are Ready */
        if (!blocked && !ondelete && ready == want && reps == want) {
            for (json_int_t o = want - 1; o >= 0; o--) {
                const json_t *q = by[o];
                const char *pr = json_string_value(
                    json_object_get(jx_get(q, "metadata.labels"), APPS_LABEL_REVISION));
                if (q && (!pr || strcmp(pr, rev) != 0)) {
                    writes +=
                        objstore_delete(a->store, a->rpods, ns, jx_str(q, "metadata.name", ""),
                                        NULL, NULL, NULL, &st) == 0;
                    break;
                }
            }
        }
    }
    json_t *status = json_object();
    s_set_int(status, "observedGeneration", jx_int(sts, "metadata.generation", 1), true);
    s_set_int(status, "replicas", reps, false);
    s_set_int(status, "readyReplicas", ready, true);
    s_set_int(status, "currentReplicas", cur, true);
    s_set_int(status, "updatedReplicas", cur, true);
    s_set_int(status, "availableReplicas", avail, false);
    if (wake)
        s_later(a, S_STS, ns, name, wake);
    json_object_set_new(status, "currentRevision", json_string(rev));
    json_object_set_new(status, "updateRevision", json_string(rev));
    json_object_set_new(status, "collisionCount", json_integer(0));
    writes += s_put_status(a, a->rsts, sts, status);
    free(by);
    json_decref(pods);
    json_decref(sts);
    return writes;
}

/* ---- watches ---------------------------------------------------------------------------- */

static int s_on_pod(const objstore_event_t *ev, void *arg)
{
    apps_t *a = arg;
    const char *ns = jx_str(ev->obj, "metadata.namespace", "");
    const json_t *r = s_cref(ev->obj, "ReplicaSet");
    if (r && a->rrs)
        s_mark(a, S_RS, ns, jx_str(r, "name", ""));
    r = s_cref(ev->obj, "StatefulSet");
    if (r && a->rsts)
        s_mark(a, S_STS, ns, jx_str(r, "name", ""));
    return 0;
}

static int s_on_dep(const objstore_event_t *ev, void *arg)
{
    apps_t *a = arg;
    if (ev->type != OBJSTORE_DELETED)
        s_mark(a, S_DEP, jx_str(ev->obj, "metadata.namespace", ""),
               jx_str(ev->obj, "metadata.name", ""));
    return 0;
}

static int s_on_rs(const objstore_event_t *ev, void *arg)
{
    apps_t *a = arg;
    const char *ns = jx_str(ev->obj, "metadata.namespace", "");
    if (ev->type != OBJSTORE_DELETED)
        s_mark(a, S_RS, ns, jx_str(ev->obj, "metadata.name", ""));
    const json_t *r = s_cref(ev->obj, "Deployment");
    if (r && a->rdeps)
        s_mark(a, S_DEP, ns, jx_str(r, "name", ""));
    return 0;
}

static int s_on_sts(const objstore_event_t *ev, void *arg)
{
    apps_t *a = arg;
    if (ev->type != OBJSTORE_DELETED)
        s_mark(a, S_STS, jx_str(ev->obj, "metadata.namespace", ""),
               jx_str(ev->obj, "metadata.name", ""));
    return 0;
}

/* ---- public ----------------------------------------------------------------------------- */

int apps_tick(apps_t *a)
{
    if (!a)
        return 0;
    a->soon.running = true;
    s_due(a);
    size_t budget = APPS_TICK_BUDGET;
    int writes = 0;
    /* ReplicaSets first so a Deployment sees its ReplicaSets' fresh status. */
    static const int order[3] = {S_RS, S_STS, S_DEP};
    for (int k = 0; k < 3; k++) {
        json_t *dirty = a->dirty[order[k]];
        while (json_object_size(dirty) && budget) {
            void *it = json_object_iter(dirty);
            char key[S_KEY_MAX], ns[S_KEY_MAX];
            snprintf(key, sizeof(key), "%s", json_object_iter_key(it));
            json_object_del(dirty, key);
            const char *name;
            s_split(key, ns, sizeof(ns), &name);
            if (order[k] == S_RS)
                writes += s_sync_rs(a, ns, name);
            else if (order[k] == S_STS)
                writes += s_sync_sts(a, ns, name);
            else
                writes += s_sync_dep(a, ns, name);
            budget--;
        }
    }
    a->soon.running = false;
    for (int k = 0; k < 3; k++)
        if (json_object_size(a->dirty[k]))
            s_kick(a);
    return writes;
}

apps_t *apps_new(loop_t *loop, objstore_t *store)
{
    if (!store || !objstore_find(store, "", "pods"))
        return NULL;
    apps_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->loop = loop;
    loop_soon_init(&a->soon, loop, s_soon, a);
    a->store = store;
    a->rpods = objstore_find(store, "", "pods");
    a->rdeps = objstore_find(store, "apps", "deployments");
    a->rrs = objstore_find(store, "apps", "replicasets");
    a->rsts = objstore_find(store, "apps", "statefulsets");
    a->rpvcs = objstore_find(store, "", "persistentvolumeclaims");
    objstore_status_t st;
    for (int k = 0; k < 3; k++)
        if (!(a->dirty[k] = json_object()) || !(a->later[k] = json_object()))
            goto fail;
    if (objstore_watch(store, a->rpods, NULL, NULL, NULL, NULL, s_on_pod, a, &a->wpods, &st) < 0)
        goto fail;
    if (a->rdeps &&
        objstore_watch(store, a->rdeps, NULL, NULL, NULL, NULL, s_on_dep, a, &a->wdeps, &st) < 0)
        goto fail;
    if (a->rrs &&
        objstore_watch(store, a->rrs, NULL, NULL, NULL, NULL, s_on_rs, a, &a->wrs, &st) < 0)
        goto fail;
    if (a->rsts &&
        objstore_watch(store, a->rsts, NULL, NULL, NULL, NULL, s_on_sts, a, &a->wsts, &st) < 0)
        goto fail;
    return a;
fail:
    apps_destroy(&a);
    return NULL;
}

void apps_destroy(apps_t **ap)
{
    if (!ap || !*ap)
        return;
    apps_t *a = *ap;
    objstore_watch_stop(a->store, &a->wpods);
    objstore_watch_stop(a->store, &a->wdeps);
    objstore_watch_stop(a->store, &a->wrs);
    objstore_watch_stop(a->store, &a->wsts);
    loop_soon_cancel(&a->soon);
    if (a->later_timer > 0 && a->loop)
        loop_cancel_timer(a->loop, a->later_timer);
    for (int k = 0; k < 3; k++) {
        json_decref(a->dirty[k]);
        json_decref(a->later[k]);
    }
    free(a);
    *ap = NULL;
}

#ifdef RF_SELFTEST
#include "selftest.h"
#include "simtest.h"

/* ---- self-test -------------------------------------------------------------------------- */

static json_t *t_list(objstore_t *s, objstore_res_t *r)
{
    objstore_list_t l;
    objstore_status_t st;
    if (objstore_list(s, r, NULL, &l, &st) < 0)
        return json_array();
    json_t *items = json_incref(l.items);
    objstore_list_free(&l);
    return items;
}

/* Active (not terminating) pods. */
static size_t t_active(objstore_t *s, objstore_res_t *rp)
{
    json_t *items = t_list(s, rp);
    size_t n = 0, i;
    json_t *p;
    json_array_foreach(items, i, p) n += jx_get(p, "metadata.deletionTimestamp") == NULL;
    json_decref(items);
    return n;
}

static json_t *t_get(objstore_t *s, objstore_res_t *r, const char *name)
{
    json_t *o = NULL;
    objstore_status_t st;
    objstore_get(s, r, "default", name, &o, &st);
    return o;
}

int apps_test(bool verbose)
{
    int failed = 0;
    /* defaults */
    json_t *d = json_pack("{s:{s:{s:{s:s}},s:{s:{s:{s:s}},s:{s:[{s:s,s:s}]}}}}", "spec", "selector",
                          "matchLabels", "app", "x", "template", "metadata", "labels", "app", "x",
                          "spec", "containers", "name", "c", "image", "nginx");
    apps_defaults("deployments", d);
    CHECK(jx_int(d, "spec.replicas", 0) == 1);
    CHECK(strcmp(jx_str(d, "spec.strategy.type", ""), "RollingUpdate") == 0);
    CHECK(strcmp(jx_str(d, "spec.strategy.rollingUpdate.maxSurge", ""), "25%") == 0);
    CHECK(jx_int(d, "spec.revisionHistoryLimit", 0) == 10);
    CHECK(jx_int(d, "spec.progressDeadlineSeconds", 0) == 600);
    CHECK(strcmp(jx_str(d, "spec.template.spec.restartPolicy", ""), "Always") == 0);
    json_t *causes = json_array();
    CHECK(apps_validate("deployments", d, causes) == 0);
    /* template labels that the selector does not match: kube's message */
    jx_set_path(d, "spec.template.metadata.labels", json_pack("{s:s,s:s}", "b", "2", "a", "1"));
    CHECK(apps_validate("deployments", d, causes) == 1);
    json_t *c0 = json_array_get(causes, 0);
    CHECK(strcmp(jx_str(c0, "field", ""), "spec.template.metadata.labels") == 0);
    CHECK(strcmp(jx_str(c0, "message", ""),
                 "Invalid value: map[string]string{\"a\":\"1\", \"b\":\"2\"}: `selector` does "
                 "not match template `labels`") == 0);
    json_array_clear(causes);
    /* no selector: Required plus the mismatch (a nil selector matches nothing) */
    json_object_del(json_object_get(d, "spec"), "selector");
    CHECK(apps_validate("replicasets", d, causes) == 2);
    CHECK(strcmp(jx_str(json_array_get(causes, 0), "message", ""), "Required value") == 0);
    buf_t m;
    buf_init(&m, 4096);
    CHECK(schema_invalid_message("Deployment", "apps", "web", causes, &m) == 0);
    CHECK(strcmp(buf_str(&m),
                 "Deployment.apps \"web\" is invalid: [spec.selector: Required value, "
                 "spec.template.metadata.labels: Invalid value: map[string]string{\"a\":\"1\", "
                 "\"b\":\"2\"}: `selector` does not match template `labels`]") == 0);
    buf_free(&m);
    json_array_clear(causes);
    jx_set_path(d, "spec.selector", json_object());
    CHECK(apps_validate("statefulsets", d, causes) == 1);
    CHECK(strstr(jx_str(json_array_get(causes, 0), "message", ""),
                 "empty selector is invalid for statefulset") != NULL);
    json_array_clear(causes);
    /* updates: selectors are immutable; a StatefulSet's spec only in kube's listed fields */
    json_t *o1 = json_pack("{s:{s:{s:{s:s}},s:s}}", "spec", "selector", "matchLabels", "app", "x",
                           "serviceName", "s");
    json_t *o2 = json_deep_copy(o1);
    CHECK(apps_validate_update("deployments", o1, o2, causes) == 0);
    jx_set_path(o2, "spec.selector",
                json_pack("{s:{s:s},s:[{s:s,s:s,s:[s]}]}", "matchLabels", "app", "y",
                          "matchExpressions", "key", "k", "operator", "In", "values", "v"));
    CHECK(apps_validate_update("replicasets", o1, o2, causes) == 1);
    CHECK(strcmp(jx_str(json_array_get(causes, 0), "message", ""),
                 "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"y\"}, "
                 "MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{"
                 "Key:\"k\", Operator:\"In\", Values:[]string{\"v\"}}}}: field is immutable") == 0);
    json_array_clear(causes);
    json_decref(o2);
    o2 = json_deep_copy(o1);
    jx_set_path(o2, "spec.replicas", json_integer(5));
    CHECK(apps_validate_update("statefulsets", o1, o2, causes) == 0);
    jx_set_path(o2, "spec.serviceName", json_string("other"));
    CHECK(apps_validate_update("statefulsets", o1, o2, causes) == 1);
    CHECK(strcmp(jx_str(json_array_get(causes, 0), "reason", ""), "FieldValueForbidden") == 0);
    json_decref(o1);
    json_decref(o2);
    json_decref(causes);
    /* hash: kube's alphabet, stable, template-dependent */
    char h1[16], h2[16], h3[16];
    apps_template_hash(jx_get(d, "spec.template"), 0, h1, sizeof(h1));
    apps_template_hash(jx_get(d, "spec.template"), 0, h2, sizeof(h2));
    apps_template_hash(jx_get(d, "spec.template"), 1, h3, sizeof(h3));
    CHECK(strcmp(h1, h2) == 0 && strcmp(h1, h3) != 0 && strlen(h1) >= 1 &&
          strspn(h1, "bcdfghjklmnpqrstvwxz2456789") == strlen(h1));
    /* a typed round trip's nulls and empty objects do not change it (kubectl rollout undo) */
    json_t *typed = json_deep_copy(jx_get(d, "spec.template"));
    jx_set_path(typed, "metadata.creationTimestamp", json_null());
    jx_set_path(json_array_get(jx_get(typed, "spec.containers"), 0), "resources", json_object());
    apps_template_hash(typed, 0, h2, sizeof(h2));
    CHECK(strcmp(h1, h2) == 0);
    json_decref(typed);
    /* printer cells */
    jx_set_path(d, "metadata.name", json_string("web"));
    jx_set_path(d, "spec.selector", json_pack("{s:{s:s}}", "matchLabels", "app", "x"));
    jx_set_path(d, "status",
                json_pack("{s:i,s:i,s:i}", "readyReplicas", 1, "updatedReplicas", 1,
                          "availableReplicas", 1));
    json_t *cells = apps_cells("deployments", d, json_string("5s"));
    CHECK(json_array_size(cells) == 8);
    CHECK(strcmp(json_string_value(json_array_get(cells, 1)), "1/1") == 0);
    CHECK(strcmp(json_string_value(json_array_get(cells, 7)), "app=x") == 0);
    json_decref(cells);
    json_t *cols = apps_columns("statefulsets");
    CHECK(json_array_size(cols) == 4);
    json_decref(cols);
    CHECK(apps_columns("pods") == NULL);
    json_t *sc = apps_scale(d);
    CHECK(jx_int(sc, "spec.replicas", 0) == 1 &&
          strcmp(jx_str(sc, "status.selector", ""), "app=x") == 0);
    json_decref(sc);
    json_decref(d);

    /* controllers over a store with a kubelet */
    simtest_clock_t clk = {.now = SIMTEST_T0};
    objstore_t *s = objstore_new(0);
    static const objstore_resdesc_t extra[] = {
        {.group = "apps",
         .version = "v1",
         .resource = "deployments",
         .kind = "Deployment",
         .namespaced = true,
         .has_status = true},
        {.group = "apps",
         .version = "v1",
         .resource = "replicasets",
         .kind = "ReplicaSet",
         .namespaced = true,
         .has_status = true},
        {.group = "apps",
         .version = "v1",
         .resource = "statefulsets",
         .kind = "StatefulSet",
         .namespaced = true,
         .has_status = true},
    };
    /* the volume resources as kubesim serves them (sim/storage): claim templates make PVCs */
    CHECK(simtest_core(s, &clk, extra, 3) == 0 && simtest_storage(s) == 0 &&
          storage_bootstrap(s) == 0);
    storage_t *sto = storage_new(NULL, s); /* binds the StatefulSet's claims */
    CHECK(sto);
    kubelet_opts_t ko;
    kubelet_opts_default(&ko);
    ko.nodes = 2;
    ko.jitter_ms = 0;
    ko.create_ms = 100;
    ko.ready_ms = 100;
    kubelet_t *k = kubelet_new(NULL, s, &ko);
    controllers_t *c = controllers_new(NULL, s);
    CHECK(k && c);
    objstore_res_t *rp = objstore_find(s, "", "pods");
    objstore_res_t *rd = objstore_find(s, "apps", "deployments");
    objstore_res_t *rr = objstore_find(s, "apps", "replicasets");
    objstore_res_t *rt = objstore_find(s, "apps", "statefulsets");
    objstore_status_t st;
    json_t *o = json_pack("{s:{s:s},s:{s:i,s:{s:{s:s}},s:{s:{s:{s:s}},s:{s:[{s:s,s:s}]}}}}",
                          "metadata", "name", "redis", "spec", "replicas", 3, "selector",
                          "matchLabels", "app", "redis", "template", "metadata", "labels", "app",
                          "redis", "spec", "containers", "name", "redis", "image", "redis:7");
    apps_defaults("deployments", o);
    CHECK(objstore_create(s, rd, "default", &o, NULL, &st) == 0);
    simtest_step(k, c, &clk, 600);
    json_t *rss = t_list(s, rr);
    CHECK(json_array_size(rss) == 1);
    json_t *rs = json_array_get(rss, 0);
    const char *hash =
        json_string_value(json_object_get(jx_get(rs, "metadata.labels"), APPS_LABEL_HASH));
    char want[64];
    snprintf(want, sizeof(want), "redis-%s", hash ? hash : "?");
    CHECK(hash && strcmp(jx_str(rs, "metadata.name", ""), want) == 0);
    CHECK(s_cref(rs, "Deployment") != NULL);
    char rsname[64];
    snprintf(rsname, sizeof(rsname), "%s", jx_str(rs, "metadata.name", ""));
    json_decref(rss);
    CHECK(t_active(s, rp) == 3);
    json_t *pods = t_list(s, rp);
    json_t *p0 = json_array_get(pods, 0);
    CHECK(strncmp(jx_str(p0, "metadata.name", ""), rsname, strlen(rsname)) == 0 &&
          strlen(jx_str(p0, "metadata.name", "")) == strlen(rsname) + 6);
    CHECK(s_cref(p0, "ReplicaSet") != NULL);
    char victim[64];
    snprintf(victim, sizeof(victim), "%s", jx_str(p0, "metadata.name", ""));
    json_decref(pods);
    json_t *dep = t_get(s, rd, "redis");
    CHECK(jx_int(dep, "status.readyReplicas", 0) == 3 &&
          jx_int(dep, "status.availableReplicas", 0) == 3 &&
          jx_int(dep, "status.updatedReplicas", 0) == 3);
    const json_t *av = jx_array_find(jx_get(dep, "status.conditions"), "type", "Available");
    const json_t *pg = jx_array_find(jx_get(dep, "status.conditions"), "type", "Progressing");
    CHECK(av && strcmp(jx_str(av, "reason", ""), "MinimumReplicasAvailable") == 0);
    CHECK(pg && strcmp(jx_str(pg, "reason", ""), "NewReplicaSetAvailable") == 0);
    if (verbose)
        printf("deployment status %s\n", json_dumps(json_object_get(dep, "status"), 0));
    json_decref(dep);
    /* a deleted pod is replaced */
    objstore_delete_opts_t now = {.grace_set = true, .grace_seconds = 0};
    CHECK(objstore_delete(s, rp, "default", victim, &now, NULL, NULL, &st) == 0);
    simtest_step(k, c, &clk, 600);
    CHECK(t_active(s, rp) == 3);
    json_t *gone = t_get(s, rp, victim);
    CHECK(gone == NULL);
    json_decref(gone);
    /* 4 replicas and a new template at once: a rolling update within maxSurge 25% (1 up) and
     * maxUnavailable 25% (1 down): never more than 5 pods, never fewer than 3 Ready */
    dep = t_get(s, rd, "redis");
    json_t *upd = json_deep_copy(dep);
    json_decref(dep);
    jx_set_path(upd, "spec.replicas", json_integer(4));
    jx_set_path(json_array_get(jx_get(upd, "spec.template.spec.containers"), 0), "image",
                json_string("redis:8"));
    CHECK(objstore_update(s, rd, "default", "redis", &upd, NULL, NULL, NULL, &st) == 0);
    size_t most = 0, fewest = 100, i;
    for (int t = 0; t < 80; t++) {
        simtest_step(k, c, &clk, SIMTEST_TICK_MS);
        pods = t_list(s, rp);
        size_t live = 0, rdy = 0;
        json_array_foreach(pods, i, p0)
        {
            live += jx_get(p0, "metadata.deletionTimestamp") == NULL;
            rdy += jx_get(p0, "metadata.deletionTimestamp") == NULL && s_pod_ready(p0);
        }
        json_decref(pods);
        most = live > most ? live : most;
        fewest = rdy < fewest ? rdy : fewest;
    }
    if (verbose)
        printf("rolling update: at most %zu pods, at least %zu Ready\n", most, fewest);
    CHECK(most == 5 && fewest >= 3);
    rss = t_list(s, rr);
    CHECK(json_array_size(rss) == 2);
    json_array_foreach(rss, i, rs)
    {
        bool old = strcmp(jx_str(rs, "metadata.name", ""), rsname) == 0;
        CHECK(jx_int(rs, "spec.replicas", -1) == (old ? 0 : 4));
        CHECK(strcmp(json_string_value(
                         json_object_get(jx_get(rs, "metadata.annotations"), APPS_ANN_REVISION)),
                     old ? "1" : "2") == 0);
    }
    json_decref(rss);
    CHECK(t_active(s, rp) == 4);
    pods = t_list(s, rp);
    json_array_foreach(pods, i, p0)
    {
        if (!jx_get(p0, "metadata.deletionTimestamp"))
            CHECK(strcmp(jx_str(json_array_get(jx_get(p0, "spec.containers"), 0), "image", ""),
                         "redis:8") == 0);
    }
    json_decref(pods);
    dep = t_get(s, rd, "redis");
    pg = jx_array_find(jx_get(dep, "status.conditions"), "type", "Progressing");
    CHECK(pg && strcmp(jx_str(pg, "reason", ""), "NewReplicaSetAvailable") == 0);
    CHECK(jx_int(dep, "status.updatedReplicas", 0) == 4 && jx_int(dep, "status.replicas", 0) == 4);
    json_decref(dep);
    /* scale down to 1 */
    dep = t_get(s, rd, "redis");
    upd = json_deep_copy(dep);
    json_decref(dep);
    jx_set_path(upd, "spec.replicas", json_integer(1));
    CHECK(objstore_update(s, rd, "default", "redis", &upd, NULL, NULL, NULL, &st) == 0);
    simtest_step(k, c, &clk, 3000);
    CHECK(t_active(s, rp) == 1);

    /* minReadySeconds: Ready pods count as available only once Ready that long */
    o = json_pack("{s:{s:s},s:{s:i,s:i,s:{s:{s:s}},s:{s:{s:{s:s}},s:{s:[{s:s,s:s}]}}}}", "metadata",
                  "name", "slow", "spec", "replicas", 2, "minReadySeconds", 2, "selector",
                  "matchLabels", "app", "slow", "template", "metadata", "labels", "app", "slow",
                  "spec", "containers", "name", "c", "image", "x");
    CHECK(objstore_create(s, rr, "default", &o, NULL, &st) == 0);
    simtest_step(k, c, &clk, 600);
    json_t *slow = t_get(s, rr, "slow");
    CHECK(jx_int(slow, "status.readyReplicas", 0) == 2 &&
          jx_int(slow, "status.availableReplicas", 0) == 0);
    json_decref(slow);
    simtest_step(k, c, &clk, 2000);
    slow = t_get(s, rr, "slow");
    CHECK(jx_int(slow, "status.availableReplicas", 0) == 2);
    json_decref(slow);
    CHECK(objstore_delete(s, rr, "default", "slow", NULL, NULL, NULL, &st) == 0);

    /* StatefulSet: ordinals in order, each after the previous is Ready */
    o = json_pack("{s:{s:s},s:{s:i,s:s,s:{s:{s:s}},s:{s:{s:{s:s}},s:{s:[{s:s,s:s}]}},s:[{s:{s:s},"
                  "s:{s:[s],s:{s:{s:s}}}}]}}",
                  "metadata", "name", "db", "spec", "replicas", 3, "serviceName", "db", "selector",
                  "matchLabels", "app", "db", "template", "metadata", "labels", "app", "db", "spec",
                  "containers", "name", "db", "image", "pg", "volumeClaimTemplates", "metadata",
                  "name", "data", "spec", "accessModes", "ReadWriteOnce", "resources", "requests",
                  "storage", "1Gi");
    apps_defaults("statefulsets", o);
    CHECK(objstore_create(s, rt, "default", &o, NULL, &st) == 0);
    controllers_tick(c);
    json_t *d0 = t_get(s, rp, "db-0"), *d1 = t_get(s, rp, "db-1");
    CHECK(d0 && !d1);
    CHECK(strcmp(jx_str(d0, "spec.hostname", ""), "db-0") == 0 &&
          strcmp(jx_str(d0, "spec.subdomain", ""), "db") == 0);
    CHECK(strcmp(json_string_value(
                     json_object_get(jx_get(d0, "metadata.labels"), APPS_LABEL_POD_INDEX)),
                 "0") == 0);
    CHECK(strcmp(jx_str(json_array_get(jx_get(d0, "spec.volumes"), 0),
                        "persistentVolumeClaim.claimName", ""),
                 "data-db-0") == 0);
    json_decref(d0);
    json_decref(d1);
    for (int t = 0; t < 2000; t += SIMTEST_TICK_MS) {
        simtest_step(k, c, &clk, SIMTEST_TICK_MS);
        storage_tick(sto);
    }
    objstore_res_t *rv = objstore_find(s, "", "persistentvolumeclaims");
    json_t *pvcs = t_list(s, rv);
    CHECK(json_array_size(pvcs) == 3);
    json_array_foreach(pvcs, i, p0)
    {
        char pn[32];
        snprintf(pn, sizeof(pn), "data-db-%zu", i);
        CHECK(strcmp(jx_str(p0, "metadata.name", ""), pn) == 0);
        CHECK(strcmp(jx_str(jx_get(p0, "metadata.labels"), "app", ""), "db") == 0);
    }
    json_decref(pvcs);
    json_t *sts = t_get(s, rt, "db");
    CHECK(jx_int(sts, "status.readyReplicas", 0) == 3 && jx_int(sts, "status.replicas", 0) == 3);
    json_decref(sts);
    /* owner deleted: the GC removes ReplicaSets and pods */
    CHECK(objstore_delete(s, rd, "default", "redis", NULL, NULL, NULL, &st) == 0);
    CHECK(objstore_delete(s, rt, "default", "db", NULL, NULL, NULL, &st) == 0);
    for (int n = 0; n < 10; n++) {
        while (objstore_gc_run(s) > 0)
            ;
        simtest_step(k, c, &clk, 500);
    }
    CHECK(objstore_res_count(rr) == 0);
    CHECK(objstore_res_count(rp) == 0);

    storage_destroy(&sto);
    controllers_destroy(&c);
    kubelet_destroy(&k);
    objstore_destroy(&s);
    return SELFTEST_RESULT("apps", verbose);
}

#endif /* RF_SELFTEST */
