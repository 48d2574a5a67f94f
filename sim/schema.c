/*
 * schema: structural schema defaulting, pruning and validation for custom resources. Each step
 * is one recursive walk over the object alongside its schema; the walks keep a dotted field path
 * in a bounded buffer for pruning reports and error causes.
 */
#include "schema.h"
#include "cel.h"
#include "err.h"
#include "json.h"
#include "quote.h"
#include "strfmt.h"
#include "yaml.h"

#include <dirent.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

/* The longest field path named in a cause; a longer one is cut. */
#define SCHEMA_PATH_MAX 4096
/* The largest CRD file the self-test reads. */
#define SCHEMA_TEST_MAX_FILE (16u * 1024u * 1024u)

static const char *const s_object_meta[] = {
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
};

static bool s_flag(const json_t *schema, const char *name)
{
    return json_is_true(json_object_get(schema, name));
}

static const char *s_type(const json_t *schema)
{
    return json_string_value(json_object_get(schema, "type"));
}

/* Pushes a path component (".key" or "[i]"); returns the length to restore. */
static size_t s_push_key(buf_t *path, const char *key)
{
    size_t at = path->len;
    if (buf_printf(path, "%s%s", at ? "." : "", key) != 0 && path->data) {
        path->len = at;
        path->data[at] = '\0';
    }
    return at;
}

static size_t s_push_index(buf_t *path, size_t i)
{
    size_t at = path->len;
    if (buf_printf(path, "[%zu]", i) != 0 && path->data) {
        path->len = at;
        path->data[at] = '\0';
    }
    return at;
}

static void s_pop(buf_t *path, size_t at)
{
    path->len = at;
    if (path->data)
        path->data[at] = '\0';
}

/* The schema of field `key` of an object described by `schema`, or NULL. */
static const json_t *s_prop_schema(const json_t *schema, const char *key)
{
    const json_t *p = json_object_get(json_object_get(schema, "properties"), key);
    if (p)
        return p;
    const json_t *ap = json_object_get(schema, "additionalProperties");
    return json_is_object(ap) ? ap : NULL;
}

/* ---- defaulting ---- */

static int s_default(const json_t *schema, json_t *v, int depth)
{
    if (!schema || depth > SCHEMA_MAX_DEPTH)
        return 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *fv;
        void *tmp;
        // Nulls of non-nullable fields go, unless a default will take their place.
        json_object_foreach_safe(v, tmp, k, fv)
        {
            const json_t *ps = s_prop_schema(schema, k);
            if (json_is_null(fv) && ps && !s_flag(ps, "nullable"))
                json_object_del(v, k);
        }
        json_t *props = json_object_get(schema, "properties");
        json_object_foreach(props, k, fv)
        {
            json_t *def = json_object_get(fv, "default");
            if (def && !json_object_get(v, k)) {
                json_t *copy = json_deep_copy(def);
                if (!copy || json_object_set_new(v, k, copy) != 0)
                    return ERR_NOMEM;
            }
        }
        json_object_foreach(v, k, fv)
        {
            int rc = s_default(s_prop_schema(schema, k), fv, depth + 1);
            if (rc)
                return rc;
        }
    } else if (json_is_array(v)) {
        const json_t *items = json_object_get(schema, "items");
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it)
        {
            int rc = s_default(items, it, depth + 1);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int schema_default(const json_t *schema, json_t *obj)
{
    return s_default(schema, obj, 0);
}

/* ---- pruning ---- */

static int s_note(json_t *pruned, buf_t *path)
{
    if (!pruned)
        return 0;
    return json_array_append_new(pruned, json_string(buf_str(path))) ? ERR_NOMEM : 0;
}

/* Cuts a metadata object to the ObjectMeta fields. */
static int s_prune_meta(json_t *meta, buf_t *path, json_t *pruned)
{
    if (!json_is_object(meta))
        return 0;
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(meta, tmp, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(s_object_meta) / sizeof(s_object_meta[0]) && !known; i++)
            known = strcmp(s_object_meta[i], k) == 0;
        if (!known) {
            size_t at = s_push_key(path, k);
            int rc = s_note(pruned, path);
            s_pop(path, at);
            if (rc)
                return rc;
            json_object_del(meta, k);
        }
    }
    return 0;
}

static int s_prune(const json_t *schema, json_t *v, bool resource, buf_t *path, json_t *pruned,
                   int depth)
{
    if (!schema || depth > SCHEMA_MAX_DEPTH)
        return 0;
    int rc = 0;
    if (json_is_object(v)) {
        bool preserve = s_flag(schema, "x-kubernetes-preserve-unknown-fields");
        json_t *props = json_object_get(schema, "properties");
        const json_t *ap = json_object_get(schema, "additionalProperties");
        const char *k;
        json_t *fv;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, fv)
        {
            size_t at = s_push_key(path, k);
            if (resource && (strcmp(k, "apiVersion") == 0 || strcmp(k, "kind") == 0)) {
                s_pop(path, at);
                continue;
            }
            if (resource && strcmp(k, "metadata") == 0) {
                rc = s_prune_meta(fv, path, pruned);
                s_pop(path, at);
                if (rc)
                    return rc;
                continue;
            }
            const json_t *ps = json_object_get(props, k);
            if (!ps && json_is_object(ap))
                ps = ap;
            if (ps) {
                bool embedded = s_flag(ps, "x-kubernetes-embedded-resource");
                rc = s_prune(ps, fv, embedded, path, pruned, depth + 1);
            } else if (!preserve && !json_is_true(ap)) {
                rc = s_note(pruned, path);
                json_object_del(v, k);
            }
            s_pop(path, at);
            if (rc)
                return rc;
        }
    } else if (json_is_array(v)) {
        const json_t *items = json_object_get(schema, "items");
        bool embedded = s_flag(items, "x-kubernetes-embedded-resource");
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it)
        {
            size_t at = s_push_index(path, i);
            rc = s_prune(items, it, embedded, path, pruned, depth + 1);
            s_pop(path, at);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int schema_prune(const json_t *schema, json_t *obj, json_t *pruned)
{
    buf_t path;
    buf_init(&path, SCHEMA_PATH_MAX);
    int rc = s_prune(schema, obj, true, &path, pruned, 0);
    buf_free(&path);
    return rc;
}

/* ---- validation ---- */

typedef struct {
    buf_t path; /* the current field path */
    buf_t msg; /* scratch for one message */
    json_t *causes; /* where causes go */
    int rc; /* ERR_NOMEM once an append failed */
} vctx_t;

/* Appends a JSON number as Go's %v prints the float64 or int64 kube decoded it into. */
static void s_number(buf_t *b, const json_t *v)
{
    if (json_is_integer(v)) {
        buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    }
    double d = json_number_value(v);
    if (d == floor(d) && fabs(d) < 1e21)
        buf_printf(b, "%.0f", d);
    else
        buf_printf(b, "%.17g", d);
}

/* Appends a bad value as field.Error prints it. */
static void s_value(buf_t *b, const json_t *v)
{
    if (json_is_string(v)) {
        quote_go(b, json_string_value(v));
    } else if (json_is_number(v)) {
        s_number(b, v);
    } else if (json_is_boolean(v)) {
        buf_puts(b, json_is_true(v) ? "true" : "false");
    } else {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        buf_puts(b, t ? t : "null");
        free(t);
    }
}

static const char *s_json_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

/* Adds a cause with the message in c->msg. */
static void s_cause(vctx_t *c, const char *reason)
{
    json_t *cause = json_pack("{s:s,s:s,s:s}", "reason", reason, "message", buf_str(&c->msg),
                              "field", buf_str(&c->path));
    if (!cause || json_array_append_new(c->causes, cause) != 0)
        c->rc = ERR_NOMEM;
    buf_reset(&c->msg);
}

/* "Invalid value: <v>: <path> in body <text>" as FieldValueInvalid. */
static void s_invalid(vctx_t *c, const json_t *v, const char *text)
{
    buf_puts(&c->msg, "Invalid value: ");
    s_value(&c->msg, v);
    buf_printf(&c->msg, ": %s in body %s", buf_str(&c->path), text);
    s_cause(c, "FieldValueInvalid");
}

static bool s_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

static size_t s_utf8_len(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/* False when the value's type does not fit; adds the cause. */
static bool s_check_type(vctx_t *c, const json_t *schema, const json_t *v)
{
    const char *want = s_type(schema);
    bool ios = s_flag(schema, "x-kubernetes-int-or-string");
    if (json_is_null(v)) {
        if (s_flag(schema, "nullable") || (!want && !ios))
            return true;
    } else if (ios) {
        if (json_is_integer(v) || json_is_string(v))
            return true;
        want = "integer,string";
    } else if (!want) {
        return true;
    } else if (strcmp(want, "integer") == 0) {
        if (json_is_integer(v))
            return true;
    } else if (strcmp(want, "number") == 0) {
        if (json_is_number(v))
            return true;
    } else if (strcmp(want, s_json_type(v)) == 0) {
        return true;
    }
    const char *have = s_json_type(v);
    buf_printf(&c->msg, "Invalid value: \"%s\": %s in body must be of type %s: \"%s\"", have,
               buf_str(&c->path), want ? want : "?", have);
    s_cause(c, "FieldValueTypeInvalid");
    return false;
}

static void s_validate(vctx_t *c, const json_t *schema, const json_t *v, int depth);

static void s_check_enum(vctx_t *c, const json_t *schema, const json_t *v)
{
    const json_t *en = json_object_get(schema, "enum");
    if (!json_is_array(en))
        return;
    size_t i;
    json_t *e;
    json_array_foreach(en, i, e)
    {
        if (s_equal(e, v))
            return;
    }
    buf_puts(&c->msg, "Unsupported value: ");
    s_value(&c->msg, v);
    buf_puts(&c->msg, ": supported values: ");
    json_array_foreach(en, i, e)
    {
        if (i)
            buf_puts(&c->msg, ", ");
        if (json_is_string(e)) {
            quote_go(&c->msg, json_string_value(e));
        } else {
            char *t = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
            quote_go(&c->msg, t ? t : "null");
            free(t);
        }
    }
    s_cause(c, "FieldValueNotSupported");
}

static void s_check_number(vctx_t *c, const json_t *schema, const json_t *v)
{
    double d = json_number_value(v);
    const json_t *min = json_object_get(schema, "minimum");
    const json_t *max = json_object_get(schema, "maximum");
    buf_t t;
    buf_init(&t, 256);
    if (json_is_number(min)) {
        bool excl = s_flag(schema, "exclusiveMinimum");
        double m = json_number_value(min);
        if (excl ? d <= m : d < m) {
            buf_printf(&t, "should be greater than %s", excl ? "" : "or equal to ");
            s_number(&t, min);
            s_invalid(c, v, buf_str(&t));
        }
    }
    buf_reset(&t);
    if (json_is_number(max)) {
        bool excl = s_flag(schema, "exclusiveMaximum");
        double m = json_number_value(max);
        if (excl ? d >= m : d > m) {
            buf_printf(&t, "should be less than %s", excl ? "" : "or equal to ");
            s_number(&t, max);
            s_invalid(c, v, buf_str(&t));
        }
    }
    const json_t *mult = json_object_get(schema, "multipleOf");
    if (json_is_number(mult) && json_number_value(mult) > 0) {
        double q = d / json_number_value(mult);
        if (q != floor(q)) {
            buf_reset(&t);
            buf_puts(&t, "should be a multiple of ");
            s_number(&t, mult);
            s_invalid(c, v, buf_str(&t));
        }
    }
    buf_free(&t);
}

static void s_check_string(vctx_t *c, const json_t *schema, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = s_utf8_len(s);
    const json_t *minl = json_object_get(schema, "minLength");
    const json_t *maxl = json_object_get(schema, "maxLength");
    buf_t t;
    buf_init(&t, 256);
    if (json_is_integer(maxl) && (json_int_t)n > json_integer_value(maxl)) {
        buf_printf(&c->msg, "Too long: may not be more than %" JSON_INTEGER_FORMAT " bytes",
                   json_integer_value(maxl));
        s_cause(c, "FieldValueTooLong");
    }
    if (json_is_integer(minl) && (json_int_t)n < json_integer_value(minl)) {
        buf_printf(&t, "should be at least %" JSON_INTEGER_FORMAT " chars long",
                   json_integer_value(minl));
        s_invalid(c, v, buf_str(&t));
    }
    const char *pat = json_string_value(json_object_get(schema, "pattern"));
    regex_t re;
    if (pat && regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) == 0) {
        if (regexec(&re, s, 0, NULL, 0) != 0) {
            buf_reset(&t);
            buf_printf(&t, "should match '%s'", pat);
            s_invalid(c, v, buf_str(&t));
        }
        regfree(&re);
    }
    /* format: only those kube keeps (strfmt.h), kube-openapi's InvalidType wording */
    const char *fmt = json_string_value(json_object_get(schema, "format"));
    if (fmt && !strfmt_valid(fmt, s)) {
        buf_reset(&t);
        buf_puts(&t, "must be of type ");
        buf_puts(&t, fmt);
        buf_puts(&t, ": ");
        quote_go(&t, s);
        s_invalid(c, v, buf_str(&t));
    }
    buf_free(&t);
}

static void s_check_object(vctx_t *c, const json_t *schema, const json_t *v, int depth)
{
    const json_t *req = json_object_get(schema, "required");
    size_t i;
    json_t *r;
    json_array_foreach(req, i, r)
    {
        const char *k = json_string_value(r);
        if (k && !json_object_get(v, k)) {
            size_t at = s_push_key(&c->path, k);
            buf_puts(&c->msg, "Required value");
            s_cause(c, "FieldValueRequired");
            s_pop(&c->path, at);
        }
    }
    const json_t *minp = json_object_get(schema, "minProperties");
    const json_t *maxp = json_object_get(schema, "maxProperties");
    json_int_t n = (json_int_t)json_object_size(v);
    if (json_is_integer(maxp) && n > json_integer_value(maxp)) {
        buf_printf(&c->msg,
                   "Too many: %" JSON_INTEGER_FORMAT ": must have at most %" JSON_INTEGER_FORMAT
                   " items",
                   n, json_integer_value(maxp));
        s_cause(c, "FieldValueTooMany");
    }
    if (json_is_integer(minp) && n < json_integer_value(minp)) {
        buf_t t;
        buf_init(&t, 256);
        buf_printf(&t, "should have at least %" JSON_INTEGER_FORMAT " properties",
                   json_integer_value(minp));
        s_invalid(c, v, buf_str(&t));
        buf_free(&t);
    }
    // Fields in sorted order, so the causes come out the same on every run.
    const char **keys = calloc(json_object_size(v) + 1, sizeof(*keys));
    if (!keys) {
        c->rc = ERR_NOMEM;
        return;
    }
    size_t nk = 0;
    const char *k;
    json_t *fv;
    json_object_foreach((json_t *)v, k, fv)
    {
        keys[nk++] = k;
    }
    for (size_t a = 1; a < nk; a++)
        for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
            const char *tmp = keys[b];
            keys[b] = keys[b - 1];
            keys[b - 1] = tmp;
        }
    for (size_t j = 0; j < nk; j++) {
        const json_t *ps = s_prop_schema(schema, keys[j]);
        if (!ps)
            continue;
        size_t at = s_push_key(&c->path, keys[j]);
        s_validate(c, ps, json_object_get(v, keys[j]), depth + 1);
        s_pop(&c->path, at);
    }
    free(keys);
}

static void s_check_array(vctx_t *c, const json_t *schema, const json_t *v, int depth)
{
    json_int_t n = (json_int_t)json_array_size(v);
    const json_t *mini = json_object_get(schema, "minItems");
    const json_t *maxi = json_object_get(schema, "maxItems");
    if (json_is_integer(maxi) && n > json_integer_value(maxi)) {
        buf_printf(&c->msg,
                   "Too many: %" JSON_INTEGER_FORMAT ": must have at most %" JSON_INTEGER_FORMAT
                   " items",
                   n, json_integer_value(maxi));
        s_cause(c, "FieldValueTooMany");
    }
    if (json_is_integer(mini) && n < json_integer_value(mini)) {
        buf_t t;
        buf_init(&t, 256);
        buf_printf(&t, "should have at least %" JSON_INTEGER_FORMAT " items",
                   json_integer_value(mini));
        s_invalid(c, v, buf_str(&t));
        buf_free(&t);
    }
    const json_t *items = json_object_get(schema, "items");
    if (!json_is_object(items))
        return;
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it)
    {
        size_t at = s_push_index(&c->path, i);
        s_validate(c, items, it, depth + 1);
        s_pop(&c->path, at);
    }
}

static void s_validate(vctx_t *c, const json_t *schema, const json_t *v, int depth)
{
    if (!json_is_object(schema) || c->rc)
        return;
    if (depth > SCHEMA_MAX_DEPTH) {
        buf_printf(&c->msg, "Invalid value: \"\": %s in body is nested too deeply",
                   buf_str(&c->path));
        s_cause(c, "FieldValueInvalid");
        return;
    }
    if (!s_check_type(c, schema, v) || json_is_null(v))
        return;
    s_check_enum(c, schema, v);
    if (json_is_number(v))
        s_check_number(c, schema, v);
    else if (json_is_string(v))
        s_check_string(c, schema, v);
    else if (json_is_object(v))
        s_check_object(c, schema, v, depth);
    else if (json_is_array(v))
        s_check_array(c, schema, v, depth);
}

int schema_validate(const json_t *schema, const json_t *obj, json_t *causes)
{
    vctx_t c = {.causes = causes, .rc = 0};
    buf_init(&c.path, SCHEMA_PATH_MAX);
    buf_init(&c.msg, 1 << 16);
    size_t before = json_array_size(causes);
    // metadata is ObjectMeta, checked by the store, whatever the schema says of it.
    if (json_is_object(obj) && json_is_object(schema)) {
        json_t *shallow = json_copy((json_t *)obj);
        if (!shallow) {
            c.rc = ERR_NOMEM;
        } else {
            json_object_del(shallow, "metadata");
            s_validate(&c, schema, shallow, 0);
            json_decref(shallow);
        }
    } else {
        s_validate(&c, schema, obj, 0);
    }
    buf_free(&c.path);
    buf_free(&c.msg);
    if (c.rc)
        return c.rc;
    return json_array_size(causes) > before ? ERR_INVAL : 0;
}

int schema_apply(const json_t *schema, json_t *obj, json_t *pruned, json_t *causes)
{
    int rc = schema_default(schema, obj);
    if (!rc)
        rc = schema_prune(schema, obj, pruned);
    if (!rc)
        rc = schema_validate(schema, obj, causes);
    return rc;
}

const json_t *schema_for_version(const json_t *crd, const char *version)
{
    const json_t *versions = json_object_get(json_object_get(crd, "spec"), "versions");
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        bool hit = version ? (name && strcmp(name, version) == 0)
                           : json_is_true(json_object_get(v, "storage"));
        if (hit)
            return json_object_get(json_object_get(v, "schema"), "openAPIV3Schema");
    }
    return NULL;
}

int schema_invalid_message(const char *kind, const char *group, const char *name,
                           const json_t *causes, buf_t *out)
{
    int rc = buf_printf(out, "%s%s%s \"%s\" is invalid", kind, group && *group ? "." : "",
                        group ? group : "", name ? name : "");
    // The distinct "<field>: <message>" texts, as an aggregate prints them.
    size_t n = json_array_size(causes);
    size_t distinct = 0;
    buf_t all;
    buf_init(&all, out->max);
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *ci = json_array_get(causes, i);
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++) {
            json_t *cj = json_array_get(causes, j);
            dup = json_equal(json_object_get(ci, "field"), json_object_get(cj, "field")) &&
                  json_equal(json_object_get(ci, "message"), json_object_get(cj, "message"));
        }
        if (dup)
            continue;
        const char *f = json_string_value(json_object_get(ci, "field"));
        rc = buf_printf(&all, "%s%s%s%s", distinct ? ", " : "", f && *f ? f : "",
                        f && *f ? ": " : "", json_string_value(json_object_get(ci, "message")));
        distinct++;
    }
    if (!rc && distinct)
        rc = buf_printf(out, ": %s%s%s", distinct > 1 ? "[" : "", buf_str(&all),
                        distinct > 1 ? "]" : "");
    buf_free(&all);
    return rc;
}

json_t *schema_invalid_status(const char *kind, const char *group, const char *name,
                              const json_t *causes)
{
    buf_t m;
    buf_init(&m, 1 << 20);
    if (schema_invalid_message(kind, group, name, causes, &m) != 0) {
        buf_free(&m);
        return NULL;
    }
    json_t *st =
        json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i,s:{s:s,s:s,s:s,s:O}}", "kind", "Status",
                  "apiVersion", "v1", "metadata", "status", "Failure", "message", buf_str(&m),
                  "reason", "Invalid", "code", 422, "details", "name", name ? name : "", "group",
                  group ? group : "", "kind", kind, "causes", causes);
    buf_free(&m);
    return st;
}

/* ---- validation rules (x-kubernetes-validations) ---- */

/* kube's RuntimeCELCostBudget: the cost all rules may spend on one object. */
#define SCHEMA_RULES_BUDGET 10000000
/* The longest message or fieldPath kept. */
#define SCHEMA_RULE_TEXT_MAX 4096
/* kube's MaxEvaluatedMessageExpressionSizeBytes. */
#define SCHEMA_MSGEXPR_MAX 5120

/* One compiled rule. */
typedef struct {
    cel_prog_t *prog; /* the rule, NULL when it did not compile */
    cel_prog_t *msg_prog; /* messageExpression, or NULL */
    char *rule; /* the rule, trimmed */
    char *message; /* the message, trimmed, or NULL */
    char *compile_err; /* why the rule did not compile, or NULL */
    const char *reason; /* the cause reason (a static string) */
    char *field_path; /* the normalized fieldPath, or NULL */
    bool optional_old; /* optionalOldSelf */
} srule_t;

/* How a rule node is reached from its parent. */
typedef enum {
    RN_ROOT,
    RN_PROP,
    RN_ITEMS,
    RN_ADDL,
} rnhow_t;

/* A schema node on the way to rules: only the nodes that hold rules or lead to them. */
typedef struct rnode rnode_t;
struct rnode {
    rnhow_t how; /* how it is reached */
    char *name; /* RN_PROP: the property */
    char *type; /* the schema's type, as kube prints it in causes */
    json_t *list_keys; /* RN_ITEMS of a list-type map: the keys correlating old items, or NULL */
    srule_t *rules; /* rules at this node */
    size_t nrules; /* their number */
    rnode_t **kids; /* nodes below that lead to rules */
    size_t nkids; /* their number */
};

struct schema_rules {
    rnode_t *root; /* the schema's root */
    size_t count; /* rules in the tree */
};

static void s_rnode_free(rnode_t *n)
{
    if (!n)
        return;
    for (size_t k = 0; k < n->nrules; k++) {
        srule_t *r = &n->rules[k];
        cel_free(r->prog);
        cel_free(r->msg_prog);
        free(r->rule);
        free(r->message);
        free(r->compile_err);
        free(r->field_path);
    }
    free(n->rules);
    for (size_t k = 0; k < n->nkids; k++)
        s_rnode_free(n->kids[k]);
    free(n->kids);
    free(n->name);
    free(n->type);
    json_decref(n->list_keys);
    free(n);
}

void schema_rules_free(schema_rules_t *r)
{
    if (!r)
        return;
    s_rnode_free(r->root);
    free(r);
}

size_t schema_rules_count(const schema_rules_t *r)
{
    return r ? r->count : 0;
}

/* A copy of s without leading and trailing white space (Go's strings.TrimSpace). */
static char *s_trim_dup(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\v' || *s == '\f')
        s++;
    size_t n = strlen(s);
    while (n && strchr(" \t\n\r\v\f", s[n - 1]))
        n--;
    return strndup(s, n);
}

typedef struct {
    json_t *causes; /* where CRD causes go, or NULL */
    buf_t msg; /* scratch */
    size_t count; /* rules compiled */
    int rc; /* 0, ERR_INVAL or ERR_NOMEM */
} cctx_t;

/* Adds a CRD cause: field, reason and the message in c->msg. */
static void s_crd_cause(cctx_t *c, const char *field, const char *reason)
{
    if (!c->rc)
        c->rc = ERR_INVAL;
    if (c->causes) {
        json_t *cause = json_pack("{s:s,s:s,s:s}", "reason", reason, "message", buf_str(&c->msg),
                                  "field", field);
        if (!cause || json_array_append_new(c->causes, cause) != 0)
            c->rc = ERR_NOMEM;
    }
    buf_reset(&c->msg);
}

/* Appends the Go %#v of an internal apiextensions.ValidationRule (what field.Invalid prints for
 * it). A set pointer prints as an address in Go; a fixed one stands in for it. */
static void s_rule_gov(buf_t *b, const json_t *rule)
{
    const char *fields[] = {"rule", "message", "messageExpression"};
    const char *names[] = {"Rule", "Message", "MessageExpression"};
    buf_puts(b, "apiextensions.ValidationRule{");
    for (int k = 0; k < 3; k++) {
        buf_printf(b, "%s:", names[k]);
        quote_go(b, jx_str(rule, fields[k], ""));
        buf_puts(b, ", ");
    }
    buf_printf(b, "Reason:(*apiextensions.FieldValueErrorReason)(%s), FieldPath:",
               json_object_get(rule, "reason") ? "0xc000a1b2c0" : "nil");
    quote_go(b, jx_str(rule, "fieldPath", ""));
    buf_printf(b, ", OptionalOldSelf:(*bool)(%s)}",
               json_object_get(rule, "optionalOldSelf") ? "0xc000a1b2c8" : "nil");
}

/* Resolves the JSON path `fp` (".a.b", ".m['k']") against `schema` as kube's ValidFieldPath
 * does, writing the normalized path (field.Path's String(): "a.b", "m[k]") to `out`. */
static bool s_field_path(const json_t *schema, const char *fp, buf_t *out)
{
    const char *p = fp;
    bool first = true;
    while (*p) {
        char name[512];
        size_t n = 0;
        if (*p == '.') {
            p++;
            while (*p && *p != '.' && *p != '[' && *p != ']' && n + 1 < sizeof(name))
                name[n++] = *p++;
        } else if (*p == '[' && p[1] == '\'') {
            p += 2;
            while (*p && !(*p == '\'' && p[-1] != '\\') && n + 1 < sizeof(name)) {
                if (*p == '\\' && p[1]) {
                    const char *esc = strchr("abfnrtv'\\", p[1]);
                    if (!esc)
                        return false;
                    name[n++] = "\a\b\f\n\r\t\v'\\"[esc - "abfnrtv'\\"];
                    p += 2;
                    continue;
                }
                name[n++] = *p++;
            }
            if (*p != '\'' || p[1] != ']')
                return false;
            p += 2;
        } else {
            return false;
        }
        name[n] = '\0';
        if (n == 0)
            return false;
        const json_t *props = json_object_get(schema, "properties");
        const json_t *addl = json_object_get(schema, "additionalProperties");
        bool named;
        if (json_is_object(props)) {
            named = true;
            schema = json_object_get(props, name);
            if (!schema)
                return false;
        } else if (json_is_object(addl)) {
            named = false;
            schema = addl;
        } else {
            return false;
        }
        if (named)
            buf_printf(out, "%s%s", first ? "" : ".", name);
        else
            buf_printf(out, "[%s]", name);
        first = false;
    }
    return !first;
}

/* What s_check_field() checks a rule's selections against. */
typedef struct {
    const json_t *schema; /* the rule's schema node */
    bool root; /* it is the resource's root (apiVersion, kind, metadata implied) */
    const char *rule; /* the rule's text */
    buf_t *err; /* cel-go's report of the first undefined field */
} fieldck_t;

/* A selection chain of a rule against the schema, as kube's type check does for declared
 * objects: a name an object schema does not declare is "undefined field". Maps
 * (additionalProperties), preserved unknown fields, int-or-string and untyped nodes end the
 * check (their fields are dynamic). */
static int s_check_field(const char *const *names, const size_t *pos, size_t n, void *arg)
{
    fieldck_t *f = arg;
    const json_t *node = f->schema;
    for (size_t k = 0; k < n && node; k++) {
        const json_t *props = json_object_get(node, "properties");
        if (s_flag(node, "x-kubernetes-preserve-unknown-fields") ||
            s_flag(node, "x-kubernetes-int-or-string"))
            return 0;
        if (json_is_object(props)) {
            const json_t *sub = json_object_get(props, names[k]);
            if (!sub && f->root && k == 0 &&
                (strcmp(names[k], "apiVersion") == 0 || strcmp(names[k], "kind") == 0 ||
                 strcmp(names[k], "metadata") == 0))
                return 0;
            if (!sub) {
                char msg[600];
                snprintf(msg, sizeof(msg), "undefined field '%s'", names[k]);
                cel_report(f->rule, pos[k], msg, f->err);
                return ERR_INVAL;
            }
            node = sub;
        } else if (json_is_object(json_object_get(node, "additionalProperties"))) {
            node = json_object_get(node, "additionalProperties");
        } else {
            return 0;
        }
    }
    return 0;
}

/* Compiles the rules of one schema node into n (n->rules), checking each as kube does. */
static void s_compile_node_rules(cctx_t *c, const json_t *schema, rnode_t *n, buf_t *path,
                                 const char *uncorrelatable)
{
    const json_t *xv = json_object_get(schema, "x-kubernetes-validations");
    size_t cnt = json_array_size(xv);
    if (!cnt)
        return;
    n->rules = calloc(cnt, sizeof(*n->rules));
    if (!n->rules) {
        c->rc = ERR_NOMEM;
        return;
    }
    static const char *const reasons[] = {"FieldValueDuplicate", "FieldValueForbidden",
                                          "FieldValueInvalid", "FieldValueRequired"};
    buf_t f, err;
    buf_init(&f, SCHEMA_PATH_MAX);
    buf_init(&err, SCHEMA_RULE_TEXT_MAX);
    for (size_t i = 0; i < cnt; i++) {
        const json_t *rule = json_array_get(xv, i);
        srule_t *r = &n->rules[n->nrules++];
        c->count++;
        buf_reset(&f);
        buf_printf(&f, "%s.x-kubernetes-validations[%zu]", buf_str(path), i);
        size_t base = f.len;
        const char *text = jx_str(rule, "rule", "");
        const char *msg = json_string_value(json_object_get(rule, "message"));
        const char *mexpr = json_string_value(json_object_get(rule, "messageExpression"));
        const char *reason = json_string_value(json_object_get(rule, "reason"));
        const char *fp = json_string_value(json_object_get(rule, "fieldPath"));
        r->rule = s_trim_dup(text);
        r->message = msg ? s_trim_dup(msg) : NULL;
        r->optional_old = jx_bool(rule, "optionalOldSelf", false);
        r->reason = "FieldValueInvalid";
        if (!r->rule || (msg && !r->message)) {
            c->rc = ERR_NOMEM;
            break;
        }
        bool rule_nl = strchr(r->rule, '\n') != NULL;
        // kube's checks, in its order (apiextensions validation.go).
        if (!*r->rule) {
            buf_puts(&f, ".rule");
            buf_puts(&c->msg, "Required value: rule is not specified");
            s_crd_cause(c, buf_str(&f), "FieldValueRequired");
        } else if (msg && !*r->message) {
            buf_puts(&f, ".message");
            buf_puts(&c->msg, "Invalid value: ");
            quote_go(&c->msg, msg);
            buf_puts(&c->msg, ": message must be non-empty if specified");
            s_crd_cause(c, buf_str(&f), "FieldValueInvalid");
        } else if (r->message && strchr(r->message, '\n')) {
            buf_puts(&f, ".message");
            buf_puts(&c->msg, "Invalid value: ");
            quote_go(&c->msg, msg);
            buf_puts(&c->msg, ": message must not contain line breaks");
            s_crd_cause(c, buf_str(&f), "FieldValueInvalid");
        } else if (rule_nl && !(r->message && *r->message)) {
            buf_puts(&f, ".message");
            buf_puts(&c->msg, "Required value: message must be specified if rule contains line "
                              "breaks");
            s_crd_cause(c, buf_str(&f), "FieldValueRequired");
        }
        s_pop(&f, base);
        if (mexpr) {
            char *t = s_trim_dup(mexpr);
            if (t && !*t) {
                buf_puts(&f, ".messageExpression");
                buf_puts(&c->msg, "Required value: messageExpression must be non-empty if "
                                  "specified");
                s_crd_cause(c, buf_str(&f), "FieldValueRequired");
                s_pop(&f, base);
            }
            free(t);
        }
        if (reason) {
            bool known = false;
            for (size_t k = 0; k < 4; k++) {
                if (strcmp(reason, reasons[k]) == 0) {
                    known = true;
                    r->reason = reasons[k];
                }
            }
            if (!known) {
                buf_puts(&f, ".reason");
                buf_puts(&c->msg, "Unsupported value: ");
                quote_go(&c->msg, reason);
                buf_puts(&c->msg, ": supported values: \"FieldValueDuplicate\", "
                                  "\"FieldValueForbidden\", \"FieldValueInvalid\", "
                                  "\"FieldValueRequired\"");
                s_crd_cause(c, buf_str(&f), "FieldValueNotSupported");
                s_pop(&f, base);
            }
        }
        if (fp) {
            buf_t norm;
            buf_init(&norm, SCHEMA_RULE_TEXT_MAX);
            char *t = s_trim_dup(fp);
            const char *why = NULL;
            if (t && !*t)
                why = "fieldPath must be non-empty if specified";
            else if (strchr(fp, '\n'))
                why = "fieldPath must not contain line breaks";
            else if (t && !s_field_path(schema, t, &norm))
                why = "fieldPath must be a valid path";
            if (why) {
                buf_puts(&f, ".fieldPath");
                buf_puts(&c->msg, "Invalid value: ");
                quote_go(&c->msg, fp);
                buf_printf(&c->msg, ": %s", why);
                s_crd_cause(c, buf_str(&f), "FieldValueInvalid");
                s_pop(&f, base);
            } else if (norm.len) {
                r->field_path = buf_take(&norm, NULL);
            }
            free(t);
            buf_free(&norm);
        }
        if (*r->rule) {
            buf_reset(&err);
            int rc = cel_compile(r->rule, &r->prog, &err);
            if (rc == ERR_NOMEM) {
                c->rc = ERR_NOMEM;
                break;
            }
            fieldck_t fc = {
                .schema = schema, .root = n->how == RN_ROOT, .rule = r->rule, .err = &err};
            if (rc == 0 && cel_fields(r->prog, s_check_field, &fc) != 0) {
                cel_free(r->prog);
                r->prog = NULL;
                rc = ERR_INVAL;
            }
            if (rc != 0) {
                r->compile_err = strdup(buf_str(&err));
                buf_puts(&f, ".rule");
                buf_puts(&c->msg, "Invalid value: ");
                s_rule_gov(&c->msg, rule);
                buf_printf(&c->msg, ": compilation failed: %s", buf_str(&err));
                s_crd_cause(c, buf_str(&f), "FieldValueInvalid");
                s_pop(&f, base);
            } else if (cel_uses_old_self(r->prog) && uncorrelatable) {
                buf_puts(&f, ".rule");
                buf_printf(&c->msg,
                           "Forbidden: oldSelf cannot be used on the uncorrelatable portion of "
                           "the schema within %s",
                           uncorrelatable);
                s_crd_cause(c, buf_str(&f), "FieldValueForbidden");
                s_pop(&f, base);
            }
        }
        if (mexpr && *mexpr) {
            buf_reset(&err);
            int rc = cel_compile(mexpr, &r->msg_prog, &err);
            if (rc == ERR_NOMEM) {
                c->rc = ERR_NOMEM;
                break;
            }
            if (rc != 0) {
                buf_puts(&f, ".messageExpression");
                buf_puts(&c->msg, "Invalid value: ");
                s_rule_gov(&c->msg, rule);
                buf_printf(&c->msg, ": messageExpression compilation failed: %s", buf_str(&err));
                s_crd_cause(c, buf_str(&f), "FieldValueInvalid");
                s_pop(&f, base);
            }
        }
    }
    buf_free(&f);
    buf_free(&err);
}

/* Builds the rule node for `schema` (NULL *out when nothing below it has rules). */
static void s_rnode_build(cctx_t *c, const json_t *schema, rnhow_t how, const char *name,
                          buf_t *path, const char *uncorrelatable, int depth, rnode_t **out)
{
    *out = NULL;
    if (!json_is_object(schema) || depth > SCHEMA_MAX_DEPTH || c->rc == ERR_NOMEM)
        return;
    rnode_t *n = calloc(1, sizeof(*n));
    if (!n) {
        c->rc = ERR_NOMEM;
        return;
    }
    n->how = how;
    n->name = name ? strdup(name) : NULL;
    n->type = strdup(s_type(schema) ? s_type(schema) : "");
    if ((name && !n->name) || !n->type)
        c->rc = ERR_NOMEM;
    s_compile_node_rules(c, schema, n, path, uncorrelatable);
    // Children: properties, additionalProperties, items.
    const json_t *props = json_object_get(schema, "properties");
    const char *k;
    json_t *sub;
    json_object_foreach((json_t *)props, k, sub)
    {
        size_t at = path->len;
        buf_puts(path, ".properties[");
        buf_puts(path, k);
        buf_puts(path, "]");
        rnode_t *kid = NULL;
        s_rnode_build(c, sub, RN_PROP, k, path, uncorrelatable, depth + 1, &kid);
        s_pop(path, at);
        if (kid) {
            rnode_t **kids = realloc(n->kids, (n->nkids + 1) * sizeof(*kids));
            if (!kids) {
                s_rnode_free(kid);
                c->rc = ERR_NOMEM;
                break;
            }
            n->kids = kids;
            n->kids[n->nkids++] = kid;
        }
    }
    for (int which = 0; which < 2; which++) {
        const json_t *sub2 = json_object_get(schema, which ? "items" : "additionalProperties");
        if (!json_is_object(sub2))
            continue;
        size_t at = path->len;
        const char *list_type = jx_str(schema, "x-kubernetes-list-type", "atomic");
        const json_t *keys = json_object_get(schema, "x-kubernetes-list-map-keys");
        bool correlated = !which || (strcmp(list_type, "map") == 0 && json_array_size(keys) > 0);
        char *here = (!correlated && !uncorrelatable) ? strdup(buf_str(path)) : NULL;
        buf_puts(path, which ? ".items" : ".additionalProperties");
        rnode_t *kid = NULL;
        s_rnode_build(c, sub2, which ? RN_ITEMS : RN_ADDL, NULL, path, here ? here : uncorrelatable,
                      depth + 1, &kid);
        s_pop(path, at);
        free(here);
        if (!kid)
            continue;
        if (which && correlated)
            kid->list_keys = json_deep_copy(keys);
        rnode_t **kids = realloc(n->kids, (n->nkids + 1) * sizeof(*kids));
        if (!kids) {
            s_rnode_free(kid);
            c->rc = ERR_NOMEM;
            break;
        }
        n->kids = kids;
        n->kids[n->nkids++] = kid;
    }
    if (!n->nrules && !n->nkids) {
        s_rnode_free(n);
        return;
    }
    *out = n;
}

int schema_rules_compile(const json_t *schema, const char *path, schema_rules_t **out,
                         json_t *causes)
{
    *out = NULL;
    cctx_t c = {.causes = causes};
    buf_init(&c.msg, 1 << 16);
    buf_t p;
    buf_init(&p, SCHEMA_PATH_MAX);
    buf_puts(&p, path ? path : "");
    rnode_t *root = NULL;
    s_rnode_build(&c, schema, RN_ROOT, NULL, &p, NULL, 0, &root);
    buf_free(&p);
    buf_free(&c.msg);
    if (c.rc == ERR_NOMEM) {
        s_rnode_free(root);
        return ERR_NOMEM;
    }
    if (root) {
        schema_rules_t *r = calloc(1, sizeof(*r));
        if (!r) {
            s_rnode_free(root);
            return ERR_NOMEM;
        }
        r->root = root;
        r->count = c.count;
        *out = r;
    }
    return c.rc;
}

int schema_crd_rules_check(const json_t *crd, json_t *causes)
{
    const json_t *versions = jx_get(crd, "spec.versions");
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v)
    {
        const json_t *sch = jx_get(v, "schema.openAPIV3Schema");
        if (!sch)
            continue;
        char path[96];
        snprintf(path, sizeof(path), "spec.versions[%zu].schema.openAPIV3Schema", i);
        schema_rules_t *r = NULL;
        int one = schema_rules_compile(sch, path, &r, causes);
        schema_rules_free(r);
        if (one == ERR_NOMEM)
            return ERR_NOMEM;
        if (one)
            rc = ERR_INVAL;
    }
    const json_t *top = jx_get(crd, "spec.validation.openAPIV3Schema");
    if (top) {
        schema_rules_t *r = NULL;
        int one = schema_rules_compile(top, "spec.validation.openAPIV3Schema", &r, causes);
        schema_rules_free(r);
        if (one == ERR_NOMEM)
            return ERR_NOMEM;
        if (one)
            rc = ERR_INVAL;
    }
    return rc;
}

typedef struct {
    json_t *causes; /* where causes go */
    buf_t path; /* the current field path ("" at the root) */
    buf_t msg; /* scratch */
    int64_t spent; /* cost spent on this object */
    bool stop; /* a budget ran out: no further rules */
    int rc; /* ERR_NOMEM once an append failed */
} rctx_t;

static void s_rcause(rctx_t *c, const char *field, const char *reason)
{
    json_t *cause = json_pack("{s:s,s:s,s:s}", "reason", reason, "message", buf_str(&c->msg),
                              "field", field && *field ? field : "<nil>");
    if (!cause || json_array_append_new(c->causes, cause) != 0)
        c->rc = ERR_NOMEM;
    buf_reset(&c->msg);
}

/* The cause "Invalid value: "<type>": <detail>" at the current path. */
static void s_rinvalid(rctx_t *c, const rnode_t *n, const char *detail)
{
    buf_puts(&c->msg, "Invalid value: ");
    quote_go(&c->msg, n->type);
    buf_printf(&c->msg, ": %s", detail);
    s_rcause(c, buf_str(&c->path), "FieldValueInvalid");
}

/* The message of a failed rule: messageExpression's result when it gives a usable string,
 * else the message, else "failed rule: <rule>". */
static void s_rule_detail(rctx_t *c, const srule_t *r, cel_env_t *env, buf_t *out)
{
    if (r->msg_prog) {
        json_t *res = NULL;
        cel_env_t menv = *env;
        menv.cost = 0;
        menv.limit = SCHEMA_RULES_BUDGET - c->spent;
        if (menv.limit > CEL_PER_CALL_LIMIT)
            menv.limit = CEL_PER_CALL_LIMIT;
        int rc = menv.limit > 0 ? cel_eval(r->msg_prog, &menv, &res, NULL) : ERR_RANGE;
        c->spent += menv.cost;
        if (rc == 0 && json_is_string(res)) {
            char *t = s_trim_dup(json_string_value(res));
            bool ok = t && *t && strlen(t) <= SCHEMA_MSGEXPR_MAX && !strchr(t, '\n');
            if (ok)
                buf_puts(out, t);
            free(t);
            json_decref(res);
            if (ok)
                return;
        } else {
            json_decref(res);
        }
    }
    if (r->message && *r->message)
        buf_puts(out, r->message);
    else
        buf_printf(out, "failed rule: %s", r->rule);
}

/* Evaluates the rules of node n on value v (old: its correlated old value or NULL). */
static void s_rules_at(rctx_t *c, const rnode_t *n, const json_t *v, const json_t *old)
{
    for (size_t k = 0; k < n->nrules && !c->stop && !c->rc; k++) {
        const srule_t *r = &n->rules[k];
        const char *rule_text = r->message && *r->message ? r->message : r->rule;
        char detail[SCHEMA_RULE_TEXT_MAX + 256];
        if (!r->prog) {
            snprintf(detail, sizeof(detail), "rule compile error: %s",
                     r->compile_err ? r->compile_err : "unknown");
            s_rinvalid(c, n, detail);
            continue;
        }
        bool uses_old = cel_uses_old_self(r->prog);
        if (uses_old && !old && !r->optional_old)
            continue; // transition rules need an old value
        if (c->spent >= SCHEMA_RULES_BUDGET) {
            s_rinvalid(c, n,
                       "validation failed due to running out of cost budget, no further "
                       "validation rules will be run");
            c->stop = true;
            return;
        }
        cel_env_t env = {.self = v, .old_self = old, .optional_old_self = r->optional_old};
        env.limit = SCHEMA_RULES_BUDGET - c->spent;
        bool budget_binds = env.limit <= CEL_PER_CALL_LIMIT;
        if (!budget_binds)
            env.limit = CEL_PER_CALL_LIMIT;
        json_t *res = NULL;
        buf_t err;
        buf_init(&err, SCHEMA_RULE_TEXT_MAX);
        int rc = cel_eval(r->prog, &env, &res, &err);
        c->spent += env.cost;
        if (rc == ERR_NOMEM) {
            c->rc = ERR_NOMEM;
        } else if (rc == ERR_RANGE) {
            if (budget_binds)
                snprintf(detail, sizeof(detail),
                         "validation failed due to running out of cost budget, no further "
                         "validation rules will be run");
            else
                snprintf(detail, sizeof(detail),
                         "'%s': no further validation rules will be run due to call cost "
                         "exceeds limit for rule: %s",
                         buf_str(&err), rule_text);
            s_rinvalid(c, n, detail);
            c->stop = true;
        } else if (rc != 0 || !json_is_boolean(res)) {
            const char *e = rc ? buf_str(&err) : "no such overload";
            if (strncmp(e, "no such overload", 16) == 0)
                snprintf(detail, sizeof(detail),
                         "'%s': call arguments did not match a supported operator, function or "
                         "macro signature for rule: %s",
                         e, rule_text);
            else
                snprintf(detail, sizeof(detail), "%s evaluating rule: %s", e, rule_text);
            s_rinvalid(c, n, detail);
        } else if (json_is_false(res) && !(!uses_old && old && json_equal(v, old))) {
            // (A failed rule on an unchanged value is ratcheted: kube only warns.)
            size_t at = c->path.len;
            if (r->field_path)
                buf_printf(&c->path, "%s%s", at ? "." : "", r->field_path);
            buf_t d;
            buf_init(&d, SCHEMA_RULE_TEXT_MAX + 64);
            s_rule_detail(c, r, &env, &d);
            if (strcmp(r->reason, "FieldValueForbidden") == 0) {
                buf_printf(&c->msg, "Forbidden: %s", buf_str(&d));
            } else if (strcmp(r->reason, "FieldValueRequired") == 0) {
                buf_printf(&c->msg, "Required value: %s", buf_str(&d));
            } else if (strcmp(r->reason, "FieldValueDuplicate") == 0) {
                buf_puts(&c->msg, "Duplicate value: ");
                quote_go(&c->msg, n->type);
            } else {
                buf_puts(&c->msg, "Invalid value: ");
                quote_go(&c->msg, n->type);
                buf_printf(&c->msg, ": %s", buf_str(&d));
            }
            s_rcause(c, buf_str(&c->path), r->reason);
            buf_free(&d);
            s_pop(&c->path, at);
        }
        json_decref(res);
        buf_free(&err);
    }
}

/* The element of the old list `old` whose list-map keys equal those of `item`, or NULL. */
static const json_t *s_correlate_item(const json_t *keys, const json_t *item, const json_t *old)
{
    if (!keys || !json_is_object(item))
        return NULL;
    size_t i;
    json_t *o;
    json_array_foreach(old, i, o)
    {
        bool same = json_is_object(o);
        size_t k;
        json_t *key;
        json_array_foreach(keys, k, key)
        {
            const char *name = json_string_value(key);
            const json_t *a = name ? json_object_get(item, name) : NULL;
            const json_t *b = name && same ? json_object_get(o, name) : NULL;
            if (!same || (a || b ? !(a && b && json_equal(a, b)) : false))
                same = false;
        }
        if (same)
            return o;
    }
    return NULL;
}

static void s_rwalk(rctx_t *c, const rnode_t *n, const json_t *v, const json_t *old, int depth)
{
    if (!v || json_is_null(v) || c->stop || c->rc || depth > SCHEMA_MAX_DEPTH)
        return;
    if (old && json_is_null(old))
        old = NULL;
    s_rules_at(c, n, v, old);
    for (size_t k = 0; k < n->nkids && !c->stop && !c->rc; k++) {
        const rnode_t *kid = n->kids[k];
        if (kid->how == RN_PROP && json_is_object(v)) {
            size_t at = s_push_key(&c->path, kid->name);
            s_rwalk(c, kid, json_object_get(v, kid->name),
                    json_is_object(old) ? json_object_get(old, kid->name) : NULL, depth + 1);
            s_pop(&c->path, at);
        } else if (kid->how == RN_ADDL && json_is_object(v)) {
            const char *key;
            json_t *sub;
            json_object_foreach((json_t *)v, key, sub)
            {
                size_t at = c->path.len;
                buf_printf(&c->path, "[%s]", key);
                s_rwalk(c, kid, sub, json_is_object(old) ? json_object_get(old, key) : NULL,
                        depth + 1);
                s_pop(&c->path, at);
            }
        } else if (kid->how == RN_ITEMS && json_is_array(v)) {
            size_t i;
            json_t *sub;
            json_array_foreach(v, i, sub)
            {
                size_t at = s_push_index(&c->path, i);
                s_rwalk(c, kid, sub,
                        json_is_array(old) ? s_correlate_item(kid->list_keys, sub, old) : NULL,
                        depth + 1);
                s_pop(&c->path, at);
            }
        }
    }
}

int schema_rules_validate(const schema_rules_t *r, const json_t *obj, const json_t *old,
                          json_t *causes)
{
    if (!r || !r->root)
        return 0;
    size_t before = json_array_size(causes);
    rctx_t c = {.causes = causes};
    buf_init(&c.path, SCHEMA_PATH_MAX);
    buf_init(&c.msg, 1 << 16);
    size_t i;
    json_t *cause;
    bool blocked = false;
    json_array_foreach(causes, i, cause)
    {
        const char *reason = jx_str(cause, "reason", "");
        if (strcmp(reason, "FieldValueTypeInvalid") == 0 ||
            strcmp(reason, "FieldValueNotSupported") == 0)
            blocked = true;
    }
    if (blocked) {
        // kube's hasBlockingErr(): field.Invalid(nil, nil, ...).
        buf_puts(&c.msg, "Invalid value: \"null\": some validation rules were not checked "
                         "because the object was invalid; correct the existing errors to "
                         "complete validation");
        s_rcause(&c, NULL, "FieldValueInvalid");
    } else {
        s_rwalk(&c, r->root, obj, old, 0);
    }
    buf_free(&c.path);
    buf_free(&c.msg);
    if (c.rc)
        return c.rc;
    return json_array_size(causes) > before ? ERR_INVAL : 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

/* Joins "<field>: <message>" of every cause with " | " for easy comparison. */
static void s_causes_text(const json_t *causes, buf_t *out)
{
    size_t i;
    json_t *c;
    json_array_foreach(causes, i, c)
    {
        buf_printf(out, "%s%s: %s", i ? " | " : "", json_string_value(json_object_get(c, "field")),
                   json_string_value(json_object_get(c, "message")));
    }
}

/* Validates `obj_json` against `schema`; true when the causes read exactly `want`. */
static bool s_expect(const json_t *schema, const char *obj_json, const char *want)
{
    json_t *obj = json_loads(obj_json, 0, NULL);
    json_t *causes = json_array();
    buf_t t;
    buf_init(&t, 1 << 16);
    int rc = schema_apply(schema, obj, NULL, causes);
    s_causes_text(causes, &t);
    bool ok = strcmp(buf_str(&t), want) == 0 && (rc == 0) == (want[0] == '\0');
    if (!ok)
        printf("schema: got [%s] rc %d, want [%s]\n", buf_str(&t), rc, want);
    buf_free(&t);
    json_decref(causes);
    json_decref(obj);
    return ok;
}

/* True when `after` holds everything `before` holds (values equal; `after` may add fields). */
static bool s_superset(const json_t *before, const json_t *after)
{
    if (json_is_object(before)) {
        if (!json_is_object(after))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)before, k, v)
        {
            json_t *w = json_object_get(after, k);
            if (!w && json_is_null(v))
                continue; // a null that was dropped
            if (!w || !s_superset(v, w))
                return false;
        }
        return true;
    }
    if (json_is_array(before)) {
        if (!json_is_array(after) || json_array_size(before) != json_array_size(after))
            return false;
        for (size_t i = 0; i < json_array_size(before); i++)
            if (!s_superset(json_array_get(before, i), json_array_get(after, i)))
                return false;
        return true;
    }
    return s_equal(before, after);
}

/* Checks every RayCluster document in the YAML files of `dir` (one level of subfolders too). */
static int s_test_samples(const json_t *schema, const char *dir, int level, int *seen)
{
    int failed = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        buf_t p;
        buf_init(&p, 4096);
        buf_printf(&p, "%s/%s", dir, e->d_name);
        size_t nl = strlen(e->d_name);
        if (nl > 5 && strcmp(e->d_name + nl - 5, ".yaml") == 0) {
            json_t *docs = NULL;
            if (yaml_load_file(buf_str(&p), SCHEMA_TEST_MAX_FILE, &docs, NULL) == 0) {
                size_t i;
                json_t *doc;
                json_array_foreach(docs, i, doc)
                {
                    const char *kind = json_string_value(json_object_get(doc, "kind"));
                    const char *av = json_string_value(json_object_get(doc, "apiVersion"));
                    if (!kind || strcmp(kind, "RayCluster") != 0 || !av ||
                        strcmp(av, "ray.io/v1") != 0)
                        continue;
                    (*seen)++;
                    json_t *obj = json_deep_copy(doc);
                    json_t *causes = json_array();
                    json_t *pruned = json_array();
                    int rc = schema_apply(schema, obj, pruned, causes);
                    bool ok = rc == 0 && json_array_size(pruned) == 0 && s_superset(doc, obj);
                    if (!ok) {
                        char *c = json_dumps(causes, JSON_COMPACT);
                        char *pr = json_dumps(pruned, JSON_COMPACT);
                        printf("schema: sample %s: rc %d causes %s pruned %s\n", buf_str(&p), rc,
                               c ? c : "", pr ? pr : "");
                        free(c);
                        free(pr);
                        failed++;
                    }
                    json_decref(pruned);
                    json_decref(causes);
                    json_decref(obj);
                }
            }
            json_decref(docs);
        } else if (level == 0 && e->d_type == DT_DIR) {
            failed += s_test_samples(schema, buf_str(&p), level + 1, seen);
        }
        buf_free(&p);
    }
    closedir(d);
    return failed;
}

/* The schema node at the dotted path of property names (`items` followed through arrays when
 * the name is "[]"), or NULL. */
static json_t *s_schema_at(const json_t *schema, const char *const *names)
{
    json_t *cur = (json_t *)schema;
    for (size_t i = 0; cur && names[i]; i++) {
        if (strcmp(names[i], "[]") == 0)
            cur = json_object_get(cur, "items");
        else
            cur = json_object_get(json_object_get(cur, "properties"), names[i]);
    }
    return cur;
}

/* ---- self-test: validation rules ---- */

/* Compiles `schema_json`, validates `obj_json` (old: `old_json` or NULL) and compares the causes
 * ("<field>: <message>" joined by " | ", "" for none) with `want`. */
static bool s_rules_expect(const char *schema_json, const char *obj_json, const char *old_json,
                           const char *want)
{
    json_t *sch = json_loads(schema_json, 0, NULL);
    json_t *obj = json_loads(obj_json, 0, NULL);
    json_t *old = old_json ? json_loads(old_json, 0, NULL) : NULL;
    json_t *causes = json_array();
    schema_rules_t *r = NULL;
    buf_t t;
    buf_init(&t, 1 << 16);
    bool ok = sch && obj && (!old_json || old) &&
              schema_rules_compile(sch, "spec.versions[0].schema.openAPIV3Schema", &r, causes) == 0;
    if (ok) {
        int rc = schema_rules_validate(r, obj, old, causes);
        s_causes_text(causes, &t);
        ok = strcmp(buf_str(&t), want) == 0 && rc == (*want ? ERR_INVAL : 0);
    } else {
        s_causes_text(causes, &t);
    }
    if (!ok)
        printf("  rules on %s: got \"%s\"\n  want \"%s\"\n", obj_json, buf_str(&t), want);
    buf_free(&t);
    schema_rules_free(r);
    json_decref(causes);
    json_decref(sch);
    json_decref(obj);
    json_decref(old);
    return ok;
}

/* The causes schema_crd_rules_check() gives for a CRD whose only version's schema is
 * `schema_json`, joined as above. */
static bool s_crd_rules_expect(const char *schema_json, const char *want)
{
    json_t *crd = json_pack("{s:{s:[{s:s,s:{s:o}}]}}", "spec", "versions", "name", "v1", "schema",
                            "openAPIV3Schema", json_loads(schema_json, 0, NULL));
    json_t *causes = json_array();
    int rc = crd ? schema_crd_rules_check(crd, causes) : ERR_NOMEM;
    buf_t t;
    buf_init(&t, 1 << 16);
    s_causes_text(causes, &t);
    bool ok = strcmp(buf_str(&t), want) == 0 && rc == (*want ? ERR_INVAL : 0);
    if (!ok)
        printf("  CRD rules: got \"%s\"\n  want \"%s\"\n", buf_str(&t), want);
    buf_free(&t);
    json_decref(causes);
    json_decref(crd);
    return ok;
}

static int s_test_rules(void)
{
    int failed = 0;
    // A rule on a string property: value printed as the schema type, message trimmed.
    const char *mb =
        "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\","
        "\"properties\":{\"managedBy\":{\"type\":\"string\","
        "\"x-kubernetes-validations\":[{\"rule\":\"self == oldSelf\",\"message\":"
        "\" the managedBy field is immutable \"},{\"rule\":\"self in ['a', 'b']\"}]}}}}}";
    CHECK(s_rules_expect(mb, "{\"spec\":{\"managedBy\":\"a\"}}", NULL, ""));
    CHECK(s_rules_expect(mb, "{\"spec\":{\"managedBy\":\"c\"}}", NULL,
                         "spec.managedBy: Invalid value: \"string\": failed rule: self in ['a', "
                         "'b']"));
    CHECK(s_rules_expect(mb, "{\"spec\":{\"managedBy\":\"b\"}}", "{\"spec\":{\"managedBy\":\"a\"}}",
                         "spec.managedBy: Invalid value: \"string\": the managedBy field is "
                         "immutable"));
    // Transition rules need an old value at that node; a null value is not validated.
    CHECK(s_rules_expect(mb, "{\"spec\":{\"managedBy\":\"b\"}}", "{\"spec\":{}}", ""));
    CHECK(s_rules_expect(mb, "{\"spec\":{\"managedBy\":null}}", NULL, ""));
    // Ratcheting: an unchanged invalid value only warns in kube, so no cause.
    CHECK(s_rules_expect(mb, "{\"spec\":{\"managedBy\":\"c\"}}", "{\"spec\":{\"managedBy\":\"c\"}}",
                         ""));
    // Reasons, fieldPath, messageExpression, a rule at the root (field "<nil>").
    const char *rs =
        "{\"type\":\"object\",\"x-kubernetes-validations\":[{\"rule\":\"has(self.spec)\","
        "\"reason\":\"FieldValueRequired\",\"message\":\"spec is required\"}],\"properties\":{"
        "\"spec\":{\"type\":\"object\",\"x-kubernetes-validations\":["
        "{\"rule\":\"self.min <= self.max\",\"fieldPath\":\".min\",\"messageExpression\":"
        "\"'min ' + string(self.min) + ' above max ' + string(self.max)\"},"
        "{\"rule\":\"self.min != 7\",\"reason\":\"FieldValueForbidden\",\"message\":\"not 7\"},"
        "{\"rule\":\"self.min != 8\",\"reason\":\"FieldValueDuplicate\"},"
        "{\"rule\":\"self.min != 9\",\"messageExpression\":\"self.nope\",\"message\":\"m9\"},"
        "{\"rule\":\"self.m.all(k, k.startsWith('x'))\",\"fieldPath\":\".m['a.b']\"}],"
        "\"properties\":{\"min\":{\"type\":\"integer\"},\"max\":{\"type\":\"integer\"},"
        "\"m\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}}}}}";
    CHECK(s_rules_expect(rs, "{\"spec\":{\"min\":1,\"max\":2,\"m\":{}}}", NULL, ""));
    CHECK(s_rules_expect(rs, "{}", NULL, "<nil>: Required value: spec is required"));
    CHECK(s_rules_expect(rs, "{\"spec\":{\"min\":3,\"max\":2,\"m\":{}}}", NULL,
                         "spec.min: Invalid value: \"object\": min 3 above max 2"));
    CHECK(s_rules_expect(rs, "{\"spec\":{\"min\":7,\"max\":9,\"m\":{}}}", NULL,
                         "spec: Forbidden: not 7"));
    CHECK(s_rules_expect(rs, "{\"spec\":{\"min\":8,\"max\":9,\"m\":{}}}", NULL,
                         "spec: Duplicate value: \"object\""));
    CHECK(s_rules_expect(rs, "{\"spec\":{\"min\":9,\"max\":9,\"m\":{}}}", NULL,
                         "spec: Invalid value: \"object\": m9"));
    CHECK(s_rules_expect(rs, "{\"spec\":{\"min\":1,\"max\":9,\"m\":{\"y\":\"1\"}}}", NULL,
                         "spec.m[a.b]: Invalid value: \"object\": failed rule: self.m.all(k, "
                         "k.startsWith('x'))"));
    // Evaluation errors name the rule, at the node's path.
    CHECK(s_rules_expect(rs, "{\"spec\":{\"max\":1,\"m\":{}}}", NULL,
                         "spec: Invalid value: \"object\": no such key: min evaluating rule: "
                         "self.min <= self.max | spec: Invalid value: \"object\": no such key: "
                         "min evaluating rule: not 7 | spec: Invalid value: \"object\": no such "
                         "key: min evaluating rule: self.min != 8 | spec: Invalid value: "
                         "\"object\": no such key: min evaluating rule: m9"));
    CHECK(s_rules_expect(rs, "{\"spec\":{\"min\":\"x\",\"max\":1,\"m\":{}}}", NULL,
                         "spec: Invalid value: \"object\": 'no such overload': call arguments did "
                         "not match a supported operator, function or macro signature for rule: "
                         "self.min <= self.max"));
    // Every element of arrays and maps; list-type map items correlate with their old items by
    // key, other lists do not (no transition rule runs there).
    const char *ls =
        "{\"type\":\"object\",\"properties\":{\"l\":{\"type\":\"array\",\"x-kubernetes-list-type\":"
        "\"map\",\"x-kubernetes-list-map-keys\":[\"name\"],\"items\":{\"type\":\"object\","
        "\"x-kubernetes-validations\":[{\"rule\":\"self.v == oldSelf.v\",\"message\":\"fixed\"},"
        "{\"rule\":\"self.v >= 0\",\"message\":\"negative\"}]}},\"a\":{\"type\":\"array\","
        "\"items\":{\"type\":\"integer\",\"x-kubernetes-validations\":[{\"rule\":\"self < 10\"}]}}"
        ",\"opt\":{\"type\":\"string\",\"x-kubernetes-validations\":[{\"rule\":"
        "\"!oldSelf.hasValue() || self == oldSelf.value()\",\"optionalOldSelf\":true,"
        "\"message\":\"set once\"},{\"rule\":\"oldSelf.hasValue() || self != 'z'\","
        "\"optionalOldSelf\":true,\"message\":\"not z at first\"}]}}}";
    CHECK(s_rules_expect(ls,
                         "{\"l\":[{\"name\":\"p\",\"v\":1},{\"name\":\"q\",\"v\":-1}],"
                         "\"a\":[1,20,30]}",
                         "{\"l\":[{\"name\":\"q\",\"v\":-1},{\"name\":\"p\",\"v\":2}]}",
                         "l[0]: Invalid value: \"object\": fixed | a[1]: Invalid value: "
                         "\"integer\": failed rule: self < 10 | a[2]: Invalid value: \"integer\": "
                         "failed rule: self < 10"));
    CHECK(s_rules_expect(ls, "{\"l\":[{\"name\":\"n\",\"v\":-1}]}", "{\"l\":[]}",
                         "l[0]: Invalid value: \"object\": negative"));
    CHECK(s_rules_expect(ls, "{\"opt\":\"a\"}", NULL, ""));
    CHECK(s_rules_expect(ls, "{\"opt\":\"z\"}", NULL,
                         "opt: Invalid value: \"string\": not z at first"));
    CHECK(s_rules_expect(ls, "{\"opt\":\"b\"}", "{\"opt\":\"a\"}",
                         "opt: Invalid value: \"string\": set once"));
    // Structural type errors block the rules, as kube's hasBlockingErr() does.
    {
        json_t *sch = json_loads(mb, 0, NULL);
        json_t *obj = json_loads("{\"spec\":{\"managedBy\":5}}", 0, NULL);
        json_t *causes = json_array();
        schema_rules_t *r = NULL;
        CHECK(schema_rules_compile(sch, NULL, &r, NULL) == 0 && schema_rules_count(r) == 2);
        CHECK(schema_validate(sch, obj, causes) == ERR_INVAL);
        CHECK(schema_rules_validate(r, obj, NULL, causes) == ERR_INVAL);
        buf_t t;
        buf_init(&t, 4096);
        s_causes_text(causes, &t);
        CHECK(strstr(buf_str(&t), " | <nil>: Invalid value: \"null\": some validation rules were "
                                  "not checked because the object was invalid; correct the "
                                  "existing errors to complete validation") != NULL);
        buf_free(&t);
        schema_rules_free(r);
        json_decref(causes);
        json_decref(obj);
        json_decref(sch);
    }
    // The evaluation budget: an expensive rule on many elements stops with kube's cause.
    {
        json_t *sch = json_loads("{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{"
                                 "\"type\":\"integer\"},\"x-kubernetes-validations\":[{\"rule\":"
                                 "\"self.all(x, self.all(y, x + y >= 0))\"}]}}",
                                 0, NULL);
        json_t *inner = json_array();
        for (int k = 0; k < 300; k++)
            json_array_append_new(inner, json_integer(k));
        json_t *obj = json_array();
        for (int k = 0; k < 200; k++)
            json_array_append(obj, inner);
        json_t *causes = json_array();
        schema_rules_t *r = NULL;
        CHECK(schema_rules_compile(sch, NULL, &r, NULL) == 0);
        CHECK(schema_rules_validate(r, obj, NULL, causes) == ERR_INVAL);
        CHECK(json_array_size(causes) == 1);
        const char *m = jx_str(json_array_get(causes, 0), "message", "");
        CHECK(strstr(m, "validation failed due to running out of cost budget, no further "
                        "validation rules will be run") != NULL);
        schema_rules_free(r);
        json_decref(causes);
        json_decref(obj);
        json_decref(inner);
        json_decref(sch);
    }
    // CRD creation: what kube refuses, named by field.
    CHECK(s_crd_rules_expect(mb, ""));
    CHECK(s_crd_rules_expect(
        "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\","
        "\"x-kubernetes-validations\":[{\"rule\":\"self.x.foo()\"},{\"rule\":\"  \"},"
        "{\"rule\":\"true\",\"reason\":\"Bogus\",\"message\":\"\"},"
        "{\"rule\":\"true\",\"fieldPath\":\".nope\"},"
        "{\"rule\":\"true\",\"messageExpression\":\"1 +\"}]},"
        "\"l\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"x-kubernetes-validations\":"
        "[{\"rule\":\"self == oldSelf\"}]}}}}",
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0]."
        "rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.x.foo()\", Message:\"\", "
        "MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), "
        "FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: "
        "<input>:1:8: undeclared reference to 'foo' (in container '')\n | self.x.foo()\n | "
        ".......^ | "
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[1]."
        "rule: Required value: rule is not specified | "
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[2]."
        "message: Invalid value: \"\": message must be non-empty if specified | "
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[2]."
        "reason: Unsupported value: \"Bogus\": supported values: \"FieldValueDuplicate\", "
        "\"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\" | "
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[3]."
        "fieldPath: Invalid value: \".nope\": fieldPath must be a valid path | "
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[4]."
        "messageExpression: Invalid value: apiextensions.ValidationRule{Rule:\"true\", "
        "Message:\"\", MessageExpression:\"1 +\", Reason:(*apiextensions.FieldValueErrorReason)"
        "(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: messageExpression compilation "
        "failed: ERROR: <input>:1:4: Syntax error: mismatched input '<EOF>' expecting an "
        "expression\n | 1 +\n | ...^ | "
        "spec.versions[0].schema.openAPIV3Schema.properties[l].items.x-kubernetes-validations[0]."
        "rule: Forbidden: oldSelf cannot be used on the uncorrelatable portion of the schema "
        "within spec.versions[0].schema.openAPIV3Schema.properties[l]"));
    // Selections are checked against the schema as kube's type check does.
    CHECK(s_crd_rules_expect(
        "{\"type\":\"object\",\"x-kubernetes-validations\":[{\"rule\":\"self.metadata.name "
        "!= '' && self.spec.m.anykey.x == 1 && has(self.spec.free.y)\"}],\"properties\":{\"spec\":"
        "{\"type\":\"object\",\"properties\":{\"m\":{\"type\":\"object\",\"additionalProperties\":"
        "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}}}},\"free\":{\"type\":"
        "\"object\",\"x-kubernetes-preserve-unknown-fields\":true}}}}}",
        ""));
    CHECK(s_crd_rules_expect(
        "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":{"
        "\"a\":{\"type\":\"object\",\"properties\":{\"b\":{\"type\":\"string\"}}}},"
        "\"x-kubernetes-validations\":[{\"rule\":\"has(self.a) && self.a.c == 'x'\"}]}}}",
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0]."
        "rule: Invalid value: apiextensions.ValidationRule{Rule:\"has(self.a) && self.a.c == "
        "'x'\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)"
        "(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: "
        "<input>:1:22: undefined field 'c'\n | has(self.a) && self.a.c == 'x'\n | "
        ".....................^"));

    // A rule that does not compile (a CRD stored before) fails every object it applies to.
    {
        json_t *sch = json_loads(
            "{\"type\":\"object\",\"x-kubernetes-validations\":[{\"rule\":\"nope\"}]}", 0, NULL);
        json_t *obj = json_object();
        json_t *causes = json_array();
        schema_rules_t *r = NULL;
        CHECK(schema_rules_compile(sch, NULL, &r, NULL) == ERR_INVAL && r);
        CHECK(schema_rules_validate(r, obj, NULL, causes) == ERR_INVAL);
        buf_t t;
        buf_init(&t, 4096);
        s_causes_text(causes, &t);
        CHECK(strcmp(buf_str(&t), "<nil>: Invalid value: \"object\": rule compile error: ERROR: "
                                  "<input>:1:1: undeclared reference to 'nope' (in container "
                                  "'')\n | nope\n | ^") == 0);
        buf_free(&t);
        schema_rules_free(r);
        json_decref(causes);
        json_decref(obj);
        json_decref(sch);
    }
    return failed;
}

/* One upstream rule's cases: self (and oldSelf) that make it true, and that make it false. */
typedef struct {
    const char *rule; /* the rule text, as in the CRDs */
    const char *yes; /* self when true */
    const char *yes_old; /* oldSelf when true, or NULL */
    const char *no; /* self when false */
    const char *no_old; /* oldSelf when false, or NULL */
} rule_case_t;

static const rule_case_t s_rule_cases[] = {
    {"self == oldSelf", "\"redis\"", "\"redis\"", "\"redis\"", "\"rocksdb\""},
    {"self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']",
     "\"kueue.x-k8s.io/multikueue\"", NULL, "\"other\"", NULL},
    {"!(has(self.jobStatus) && has(self.jobDeploymentStatus))", "{\"jobStatus\":\"FAILED\"}", NULL,
     "{\"jobStatus\":\"FAILED\",\"jobDeploymentStatus\":\"Failed\"}", NULL},
    {"has(self.jobStatus) || has(self.jobDeploymentStatus)", "{\"jobDeploymentStatus\":\"Failed\"}",
     NULL, "{}", NULL},
    {"!((has(self.onSuccess) || has(self.onFailure)) && has(self.deletionRules))",
     "{\"deletionRules\":[]}", NULL, "{\"onSuccess\":{},\"deletionRules\":[]}", NULL},
    {"((has(self.onSuccess) && has(self.onFailure)) || has(self.deletionRules))",
     "{\"onSuccess\":{},\"onFailure\":{}}", NULL, "{\"onSuccess\":{}}", NULL},
};

/* A rule found in a CRD: where its schema node is, the rule object and the node's type. */
typedef struct {
    char steps[32][128]; /* property names; "[]" for items, "{}" for additionalProperties */
    int nsteps; /* their number */
    const json_t *rule; /* the x-kubernetes-validations entry */
    const char *type; /* the node's schema type */
} found_rule_t;

/* Collects every rule under `schema` into found[] (at most max); counts those beyond in *n too.
 * Rules inside allOf/anyOf/oneOf/not are counted into *hidden (this evaluator skips them). */
static void s_collect_rules(const json_t *schema, found_rule_t *path, found_rule_t *found,
                            size_t max, size_t *n, size_t *hidden, int depth)
{
    if (!json_is_object(schema) || depth >= 32)
        return;
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(schema, "x-kubernetes-validations"), i, rule)
    {
        if (*n < max) {
            found[*n] = *path;
            found[*n].rule = rule;
            found[*n].type = s_type(schema) ? s_type(schema) : "";
        }
        (*n)++;
    }
    const char *k;
    json_t *sub;
    json_object_foreach(json_object_get(schema, "properties"), k, sub)
    {
        snprintf(path->steps[path->nsteps++], sizeof(path->steps[0]), "%s", k);
        s_collect_rules(sub, path, found, max, n, hidden, depth + 1);
        path->nsteps--;
    }
    static const char *const kids[] = {"items", "additionalProperties"};
    for (int w = 0; w < 2; w++) {
        snprintf(path->steps[path->nsteps++], sizeof(path->steps[0]), "%s", w ? "{}" : "[]");
        s_collect_rules(json_object_get(schema, kids[w]), path, found, max, n, hidden, depth + 1);
        path->nsteps--;
    }
    static const char *const comb[] = {"allOf", "anyOf", "oneOf"};
    for (int w = 0; w < 3; w++) {
        json_array_foreach(json_object_get(schema, comb[w]), i, sub)
        {
            size_t before = *n;
            s_collect_rules(sub, path, found, 0, n, hidden, depth + 1);
            *hidden += *n - before;
        }
    }
    size_t before = *n;
    s_collect_rules(json_object_get(schema, "not"), path, found, 0, n, hidden, depth + 1);
    *hidden += *n - before;
}

/* An object with `value` (stolen) at the path of f, each array of one element, each map of key
 * "k"; writes the field path to `field`. */
static json_t *s_object_at(const found_rule_t *f, json_t *value, buf_t *field)
{
    json_t *root = NULL;
    json_t **slot = &root;
    json_t *holder = NULL;
    for (int k = 0; k <= f->nsteps; k++) {
        json_t *next = k == f->nsteps                   ? value
                       : strcmp(f->steps[k], "[]") == 0 ? json_array()
                                                        : json_object();
        if (!holder) {
            *slot = next;
        } else if (json_is_array(holder)) {
            json_array_append_new(holder, next);
        } else {
            const char *key = strcmp(f->steps[k - 1], "{}") == 0 ? "k" : f->steps[k - 1];
            json_object_set_new(holder, key, next);
        }
        if (k < f->nsteps) {
            if (strcmp(f->steps[k], "[]") == 0)
                buf_puts(field, "[0]");
            else if (strcmp(f->steps[k], "{}") == 0)
                buf_puts(field, "[k]");
            else
                buf_printf(field, "%s%s", field->len ? "." : "", f->steps[k]);
        }
        holder = next;
    }
    return root;
}

/* Whether `causes` holds the cause of the rule of f at `field`. */
static bool s_has_rule_cause(const json_t *causes, const found_rule_t *f, const char *field)
{
    buf_t want;
    buf_init(&want, 4096);
    buf_puts(&want, "Invalid value: ");
    quote_go(&want, f->type);
    char *msg = s_trim_dup(jx_str(f->rule, "message", ""));
    buf_printf(&want, ": %s", msg ? msg : "");
    free(msg);
    bool hit = false;
    size_t i;
    json_t *c;
    json_array_foreach(causes, i, c)
    {
        hit = hit || (strcmp(jx_str(c, "field", ""), field) == 0 &&
                      strcmp(jx_str(c, "message", ""), buf_str(&want)) == 0 &&
                      strcmp(jx_str(c, "reason", ""), "FieldValueInvalid") == 0);
    }
    buf_free(&want);
    return hit;
}

/* Every x-kubernetes-validations rule of the four upstream CRDs compiles and is evaluated at its
 * node, true and false. Fails when a CRD gains a rule we cannot compile, a rule this test has no
 * cases for, or a rule where the walker does not look. */
static int s_test_upstream_rules(bool verbose)
{
    int failed = 0;
    const char *shared = selftest_shared_dir();
    if (!shared)
        return 0;
    static const char *const crds[] = {"rayclusters", "rayjobs", "rayservices", "raycronjobs"};
    static found_rule_t found[64];
    size_t total = 0, evaluated = 0;
    for (size_t ci = 0; ci < 4; ci++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/kuberay/crd/ray.io_%s.yaml", shared, crds[ci]);
        // The rules as the file's text has them: lines "rule: ..." / "- rule: ...".
        FILE *fp = fopen(path, "r");
        CHECK(fp != NULL);
        size_t text_rules = 0;
        char line[8192];
        while (fp && fgets(line, sizeof(line), fp)) {
            const char *l = line;
            while (*l == ' ')
                l++;
            if (strncmp(l, "- ", 2) == 0)
                l += 2;
            text_rules += strncmp(l, "rule: ", 6) == 0;
        }
        if (fp)
            fclose(fp);
        json_t *docs = NULL;
        buf_t e;
        buf_init(&e, 1024);
        CHECK(yaml_load_file(path, SCHEMA_TEST_MAX_FILE, &docs, &e) == 0);
        buf_free(&e);
        json_t *crd = json_array_get(docs, 0);
        size_t n = 0, hidden = 0;
        size_t vi;
        json_t *ver;
        json_array_foreach(jx_get(crd, "spec.versions"), vi, ver)
        {
            const json_t *sch = jx_get(ver, "schema.openAPIV3Schema");
            found_rule_t at = {.nsteps = 0};
            size_t first = n;
            s_collect_rules(sch, &at, found, sizeof(found) / sizeof(found[0]), &n, &hidden, 0);
            schema_rules_t *r = NULL;
            json_t *causes = json_array();
            CHECK(schema_rules_compile(sch, NULL, &r, causes) == 0);
            CHECK(json_array_size(causes) == 0);
            CHECK(schema_rules_count(r) == n - first);
            json_decref(causes);
            for (size_t k = first; k < n && k < sizeof(found) / sizeof(found[0]); k++) {
                const found_rule_t *f = &found[k];
                const char *text = jx_str(f->rule, "rule", "");
                const rule_case_t *tc = NULL;
                for (size_t j = 0; j < sizeof(s_rule_cases) / sizeof(s_rule_cases[0]); j++)
                    if (strcmp(s_rule_cases[j].rule, text) == 0)
                        tc = &s_rule_cases[j];
                if (!tc) {
                    printf("  %s: no test case for rule %s\n", crds[ci], text);
                    failed++;
                    continue;
                }
                for (int outcome = 0; outcome < 2; outcome++) {
                    const char *self = outcome ? tc->yes : tc->no;
                    const char *old = outcome ? tc->yes_old : tc->no_old;
                    buf_t field, ofield;
                    buf_init(&field, SCHEMA_PATH_MAX);
                    buf_init(&ofield, SCHEMA_PATH_MAX);
                    json_t *obj = s_object_at(f, json_loads(self, JSON_DECODE_ANY, NULL), &field);
                    json_t *oldobj =
                        old ? s_object_at(f, json_loads(old, JSON_DECODE_ANY, NULL), &ofield)
                            : NULL;
                    json_t *causes2 = json_array();
                    schema_rules_validate(r, obj, oldobj, causes2);
                    bool hit = s_has_rule_cause(causes2, f, buf_str(&field));
                    CHECK(hit == !outcome);
                    if (hit != !outcome || verbose)
                        printf("  %s %s at %s (%s): %s\n", crds[ci], text, buf_str(&field),
                               outcome ? "true case" : "false case", hit ? "refused" : "accepted");
                    // A transition rule is not evaluated on create.
                    if (!outcome && old) {
                        json_array_clear(causes2);
                        schema_rules_validate(r, obj, NULL, causes2);
                        CHECK(!s_has_rule_cause(causes2, f, buf_str(&field)));
                    }
                    evaluated += !outcome && hit;
                    json_decref(causes2);
                    json_decref(obj);
                    json_decref(oldobj);
                    buf_free(&field);
                    buf_free(&ofield);
                }
            }
            schema_rules_free(r);
        }
        CHECK(n == text_rules);
        CHECK(hidden == 0);
        CHECK(n <= sizeof(found) / sizeof(found[0]));
        if (verbose || n != text_rules)
            printf("  %s: %zu rules in the text, %zu found in the schema\n", crds[ci], text_rules,
                   n);
        total += n;
        json_decref(docs);
    }
    CHECK(total >= 24);
    CHECK(evaluated == total);
    if (verbose)
        printf("  %zu upstream rules, each refused its false case\n", total);
    return failed;
}

int schema_test(bool verbose)
{
    int failed = 0;

    // A small hand-written schema covering every keyword.
    json_t *sch = json_loads(
        "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\","
        "\"required\":[\"name\"],\"properties\":{"
        "\"name\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":5,\"pattern\":\"^[a-z]+$\"},"
        "\"n\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":10,\"default\":3},"
        "\"x\":{\"type\":\"number\",\"minimum\":0,\"exclusiveMinimum\":true,\"maximum\":1,"
        "\"exclusiveMaximum\":true},"
        "\"mode\":{\"type\":\"string\",\"enum\":[\"A\",\"B\"]},"
        "\"ios\":{\"x-kubernetes-int-or-string\":true},"
        "\"opt\":{\"type\":\"string\",\"nullable\":true},"
        "\"list\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":2,\"items\":{\"type\":"
        "\"object\",\"properties\":{\"k\":{\"type\":\"string\",\"default\":\"d\"}}}},"
        "\"m\":{\"type\":\"object\",\"maxProperties\":1,\"minProperties\":1,"
        "\"additionalProperties\":{\"type\":\"string\"}},"
        "\"free\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true},"
        "\"emb\":{\"type\":\"object\",\"x-kubernetes-embedded-resource\":true,"
        "\"properties\":{\"spec\":{\"type\":\"object\"}}},"
        "\"bad\":{\"type\":\"string\",\"pattern\":\"([a-z\"},"
        "\"obj\":{\"type\":\"object\",\"default\":{\"a\":1},\"properties\":{\"a\":{\"type\":"
        "\"integer\"}}}"
        "}}}}",
        0, NULL);
    CHECK(sch != NULL);
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"abc\"}}", ""));
    CHECK(s_expect(sch, "{\"spec\":{}}", "spec.name: Required value"));
    CHECK(
        s_expect(sch, "{\"spec\":{\"name\":\"abc\",\"n\":-1}}",
                 "spec.n: Invalid value: -1: spec.n in body should be greater than or equal to 0"));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"abc\",\"n\":11}}",
                   "spec.n: Invalid value: 11: spec.n in body should be less than or equal to 10"));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"abc\",\"x\":0}}",
                   "spec.x: Invalid value: 0: spec.x in body should be greater than 0"));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"abc\",\"x\":1.0}}",
                   "spec.x: Invalid value: 1: spec.x in body should be less than 1"));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"abc\",\"x\":0.5}}", ""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"abcdef\"}}",
                   "spec.name: Too long: may not be more than 5 bytes"));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"a\"}}",
                   "spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars "
                   "long"));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"AB\"}}",
                   "spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"mode\":\"C\"}}",
                   "spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\""));
    // format: the string formats kube keeps are checked, int32/int64/unknown ones are not.
    json_t *fs = json_loads(
        "{\"type\":\"object\",\"properties\":{\"t\":{\"type\":\"string\",\"format\":"
        "\"date-time\"},\"u\":{\"type\":\"string\",\"format\":\"uuid\"},\"i\":{\"type\":"
        "\"integer\",\"format\":\"int32\"},\"x\":{\"type\":\"string\",\"format\":\"nope\"}}}",
        0, NULL);
    CHECK(s_expect(fs, "{\"t\":\"2024-01-02T03:04:05Z\",\"i\":99999999999,\"x\":\"?\"}", ""));
    CHECK(s_expect(fs, "{\"i\":-99999999999}", ""));
    CHECK(s_expect(
        fs, "{\"t\":\"soon\\n\",\"u\":\"x\"}",
        "t: Invalid value: \"soon\\n\": t in body must be of type date-time: \"soon\\n\" | "
        "u: Invalid value: \"x\": u in body must be of type uuid: \"x\""));
    json_decref(fs);
    // A carriage return is quoted \r as Go's %q writes it (this file's old copy wrote \x0d).
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"mode\":\"C\\r\"}}",
                   "spec.mode: Unsupported value: \"C\\r\": supported values: \"A\", \"B\""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"ios\":5}}", ""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"ios\":\"5%\"}}", ""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"ios\":true}}",
                   "spec.ios: Invalid value: \"boolean\": spec.ios in body must be of type "
                   "integer,string: \"boolean\""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"opt\":null}}", ""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"n\":null,\"mode\":null}}", ""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"n\":\"7\"}}",
                   "spec.n: Invalid value: \"string\": spec.n in body must be of type integer: "
                   "\"string\""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"list\":[]}}",
                   "spec.list: Invalid value: []: spec.list in body should have at least 1 items"));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"list\":[{},{},{\"k\":1}]}}",
                   "spec.list: Too many: 3: must have at most 2 items | spec.list[2].k: Invalid "
                   "value: \"integer\": spec.list[2].k in body must be of type string: "
                   "\"integer\""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"m\":{\"a\":\"1\",\"b\":2}}}",
                   "spec.m: Too many: 2: must have at most 1 items | spec.m.b: Invalid value: "
                   "\"integer\": spec.m.b in body must be of type string: \"integer\""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"m\":{}}}",
                   "spec.m: Invalid value: {}: spec.m in body should have at least 1 properties"));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":\"ab\",\"bad\":\"anything\"}}", ""));
    CHECK(s_expect(sch, "{\"spec\":\"no\"}",
                   "spec: Invalid value: \"string\": spec in body must be of type object: "
                   "\"string\""));
    CHECK(s_expect(sch, "{\"spec\":{\"name\":5,\"n\":-2}}",
                   "spec.n: Invalid value: -2: spec.n in body should be greater than or equal to "
                   "0 | spec.name: Invalid value: \"integer\": spec.name in body must be of type "
                   "string: \"integer\""));
    {
        // Defaulting, pruning, metadata and embedded resources.
        json_t *o = json_loads(
            "{\"apiVersion\":\"x/v1\",\"kind\":\"K\",\"metadata\":{\"name\":\"a\",\"labels\":"
            "{\"l\":\"v\"},\"bogus\":1},\"top\":1,\"spec\":{\"name\":\"ab\",\"unknown\":{\"a\":1},"
            "\"list\":[{\"z\":1}],\"free\":{\"any\":{\"deep\":1}},\"emb\":{\"apiVersion\":\"v1\","
            "\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"junk\":1},\"spec\":{\"q\":1},"
            "\"other\":1}}}",
            0, NULL);
        json_t *pruned = json_array();
        json_t *causes = json_array();
        CHECK(schema_apply(sch, o, pruned, causes) == 0);
        json_t *want = json_loads(
            "{\"apiVersion\":\"x/v1\",\"kind\":\"K\",\"metadata\":{\"name\":\"a\",\"labels\":"
            "{\"l\":\"v\"}},\"spec\":{\"name\":\"ab\",\"n\":3,\"obj\":{\"a\":1},"
            "\"list\":[{\"k\":\"d\"}],\"free\":{\"any\":{\"deep\":1}},\"emb\":{\"apiVersion\":"
            "\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{}}}}",
            0, NULL);
        CHECK(json_equal(o, want));
        json_t *wp =
            json_loads("[\"metadata.bogus\",\"top\",\"spec.unknown\",\"spec.list[0].z\","
                       "\"spec.emb.metadata.junk\",\"spec.emb.spec.q\",\"spec.emb.other\"]",
                       0, NULL);
        // Pruning order follows the object's key order; compare as sets.
        CHECK(json_array_size(pruned) == json_array_size(wp));
        size_t i;
        json_t *v;
        json_array_foreach(wp, i, v)
        {
            bool found = false;
            for (size_t j = 0; j < json_array_size(pruned) && !found; j++)
                found = json_equal(json_array_get(pruned, j), v);
            CHECK(found);
        }
        json_decref(wp);
        json_decref(want);
        json_decref(causes);
        json_decref(pruned);
        json_decref(o);
    }
    {
        // The 422 message and Status.
        json_t *causes = json_array();
        json_t *o = json_loads("{\"spec\":{\"n\":-1}}", 0, NULL);
        CHECK(schema_validate(sch, o, causes) == ERR_INVAL);
        buf_t m;
        buf_init(&m, 4096);
        CHECK(schema_invalid_message("RayCluster", "ray.io", "demo", causes, &m) == 0);
        CHECK(strcmp(buf_str(&m),
                     "RayCluster.ray.io \"demo\" is invalid: [spec.name: Required value, spec.n: "
                     "Invalid value: -1: spec.n in body should be greater than or equal to 0]") ==
              0);
        json_t *st = schema_invalid_status("RayCluster", "ray.io", "demo", causes);
        CHECK(st && json_integer_value(json_object_get(st, "code")) == 422);
        CHECK(strcmp(json_string_value(json_object_get(st, "reason")), "Invalid") == 0);
        CHECK(strcmp(json_string_value(json_object_get(st, "message")), buf_str(&m)) == 0);
        json_t *c0 = json_array_get(json_object_get(json_object_get(st, "details"), "causes"), 0);
        CHECK(strcmp(json_string_value(json_object_get(c0, "reason")), "FieldValueRequired") == 0);
        CHECK(strcmp(json_string_value(json_object_get(c0, "field")), "spec.name") == 0);
        json_decref(st);
        buf_reset(&m);
        json_array_remove(causes, 1);
        json_array_append(causes, json_array_get(causes, 0)); // a duplicate shows once
        CHECK(schema_invalid_message("Pod", "", "p", causes, &m) == 0);
        CHECK(strcmp(buf_str(&m), "Pod \"p\" is invalid: spec.name: Required value") == 0);
        buf_reset(&m);
        json_array_clear(causes);
        CHECK(schema_invalid_message("Pod", NULL, "p", causes, &m) == 0);
        CHECK(strcmp(buf_str(&m), "Pod \"p\" is invalid") == 0);
        buf_free(&m);
        json_decref(o);
        json_decref(causes);
    }
    json_decref(sch);

    // The real RayCluster CRD and the upstream samples.
    const char *shared = selftest_shared_dir();
    if (!shared || !*shared) {
        printf("schema: RF_SHARED_DIR not set; CRD checks skipped\n");
        return SELFTEST_RESULT("schema", verbose);
    }
    buf_t p;
    buf_init(&p, 4096);
    buf_printf(&p, "%s/kuberay/crd/ray.io_rayclusters.yaml", shared);
    json_t *docs = NULL;
    buf_t e;
    buf_init(&e, 4096);
    CHECK(yaml_load_file(buf_str(&p), SCHEMA_TEST_MAX_FILE, &docs, &e) == 0);
    json_t *crd = json_array_get(docs, 0);
    const json_t *rs = schema_for_version(crd, "v1");
    CHECK(rs != NULL);
    CHECK(schema_for_version(crd, NULL) == rs);
    CHECK(schema_for_version(crd, "v9") == NULL);
    if (rs) {
        int seen = 0;
        buf_reset(&p);
        buf_printf(&p, "%s/kuberay/samples", shared);
        CHECK(s_test_samples(rs, buf_str(&p), 0, &seen) == 0);
        CHECK(seen >= 10);
        if (verbose)
            printf("schema: %d RayCluster samples valid\n", seen);

        const char *base =
            "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"metadata\":{\"name\":"
            "\"demo\"},\"spec\":{\"headGroupSpec\":{\"rayStartParams\":{},\"template\":{"
            "\"spec\":{\"containers\":[{\"name\":\"ray-head\",\"image\":\"rayproject/ray\"}]}}},"
            "\"workerGroupSpecs\":[{\"groupName\":\"w\",\"maxReplicas\":3,\"minReplicas\":0,"
            "\"replicas\":1,\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\","
            "\"image\":\"rayproject/ray\"}]}}}]%s}}";
        buf_t doc;
        buf_init(&doc, 1 << 16);
        // Defaults: numOfHosts and priority of a worker group.
        json_t *o = NULL;
        buf_printf(&doc, base, ",\"frob\":1");
        o = json_loads(buf_str(&doc), 0, NULL);
        json_t *pruned = json_array();
        json_t *causes = json_array();
        CHECK(schema_apply(rs, o, pruned, causes) == 0);
        json_t *wg =
            json_array_get(json_object_get(json_object_get(o, "spec"), "workerGroupSpecs"), 0);
        CHECK(json_integer_value(json_object_get(wg, "numOfHosts")) == 1);
        CHECK(json_is_integer(json_object_get(wg, "priority")));
        CHECK(json_integer_value(json_object_get(wg, "replicas")) == 1);
        CHECK(json_array_size(pruned) == 1 &&
              strcmp(json_string_value(json_array_get(pruned, 0)), "spec.frob") == 0);
        CHECK(!json_object_get(json_object_get(o, "spec"), "frob"));
        json_decref(causes);
        json_decref(pruned);
        json_decref(o);

        buf_reset(&doc);
        buf_printf(&doc, base, ",\"suspend\":\"string\",\"upgradeStrategy\":{\"type\":\"Foo\"}");
        CHECK(s_expect(rs, buf_str(&doc),
                       "spec.suspend: Invalid value: \"string\": spec.suspend in body must be of "
                       "type boolean: \"string\" | spec.upgradeStrategy.type: Unsupported value: "
                       "\"Foo\": supported values: \"Recreate\", \"None\""));
        CHECK(s_expect(rs,
                       "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"metadata\":{"
                       "\"name\":\"demo\"},\"spec\":{\"rayVersion\":\"2.9.0\"}}",
                       "spec.headGroupSpec: Required value"));
        // A bound: the CRD has none on replicas, so add the one the example names.
        static const char *const rp[] = {"spec", "workerGroupSpecs", "[]", "replicas", NULL};
        json_t *rsc = json_deep_copy(rs);
        json_t *node = s_schema_at(rsc, rp);
        CHECK(node != NULL);
        if (node) {
            json_object_set_new(node, "minimum", json_integer(0));
            buf_reset(&doc);
            buf_printf(&doc, base, "");
            o = json_loads(buf_str(&doc), 0, NULL);
            json_object_set_new(
                json_array_get(json_object_get(json_object_get(o, "spec"), "workerGroupSpecs"), 0),
                "replicas", json_integer(-1));
            causes = json_array();
            CHECK(schema_apply(rsc, o, NULL, causes) == ERR_INVAL);
            buf_t t;
            buf_init(&t, 4096);
            s_causes_text(causes, &t);
            CHECK(strcmp(buf_str(&t), "spec.workerGroupSpecs[0].replicas: Invalid value: -1: "
                                      "spec.workerGroupSpecs[0].replicas in body should be "
                                      "greater than or equal to 0") == 0);
            buf_free(&t);
            json_decref(causes);
            json_decref(o);
        }
        json_decref(rsc);
        /* `format: int32` is stripped by kube-apiserver (strfmt.h): 99999999999 replicas pass
         * the upstream CRD as they do on a real cluster. */
        buf_reset(&doc);
        buf_printf(&doc, base, "");
        o = json_loads(buf_str(&doc), 0, NULL);
        json_object_set_new(
            json_array_get(json_object_get(json_object_get(o, "spec"), "workerGroupSpecs"), 0),
            "replicas", json_integer(99999999999LL));
        causes = json_array();
        CHECK(schema_apply(rs, o, NULL, causes) == 0 && json_array_size(causes) == 0);
        json_decref(causes);
        json_decref(o);
        buf_free(&doc);
    }
    json_decref(docs);
    buf_free(&e);
    buf_free(&p);
    failed += s_test_rules();
    failed += s_test_upstream_rules(verbose);
    return SELFTEST_RESULT("schema", verbose);
}

#endif /* RF_SELFTEST */
