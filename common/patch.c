/*
 * patch: RFC 7386 merge patch, RFC 6902 JSON patch, strategic merge patch and an approximate
 * server-side apply. Every function copies what it changes, so a failure leaves the input as it
 * was and the caller can answer 4xx with the stored object untouched.
 */
#include "patch.h"
#include "err.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The longest field path tracked by the strategic merge (deeper paths match no table entry). */
#define PATCH_PATH_MAX 1024

/* ---- JSON merge patch (RFC 7386) ---- */

json_t *patch_merge(const json_t *target, const json_t *patch)
{
    if (!json_is_object(patch))
        return patch ? json_deep_copy(patch) : json_null();
    json_t *res = json_is_object(target) ? json_deep_copy(target) : json_object();
    if (!res)
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (json_is_null(v)) {
            json_object_del(res, k);
            continue;
        }
        json_t *m = patch_merge(json_object_get(res, k), v);
        if (!m || json_object_set_new(res, k, m) != 0) {
            json_decref(res);
            return NULL;
        }
    }
    return res;
}

/* ---- JSON patch (RFC 6902) ---- */

/* Numbers compare by value (kube decodes them all as float64), everything else structurally. */
static bool s_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !s_equal(v, w))
                return false;
        }
        return true;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!s_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

typedef struct {
    char **tok; /* unescaped reference tokens */
    size_t n; /* number of tokens */
} ptr_t;

static void s_ptr_free(ptr_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->tok[i]);
    free(p->tok);
    p->tok = NULL;
    p->n = 0;
}

/* Parses a JSON pointer; ERR_PARSE when it does not start with '/' or has a bad ~ escape. */
static int s_ptr_parse(const char *s, ptr_t *p)
{
    p->tok = NULL;
    p->n = 0;
    if (*s == '\0')
        return 0;
    if (*s != '/')
        return ERR_PARSE;
    const char *cur = s + 1;
    for (;;) {
        const char *end = strchr(cur, '/');
        size_t n = end ? (size_t)(end - cur) : strlen(cur);
        char *t = malloc(n + 1);
        char **nt = realloc(p->tok, (p->n + 1) * sizeof(*nt));
        if (!t || !nt) {
            free(t);
            if (nt)
                p->tok = nt;
            s_ptr_free(p);
            return ERR_NOMEM;
        }
        p->tok = nt;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (cur[i] == '~') {
                if (i + 1 < n && (cur[i + 1] == '0' || cur[i + 1] == '1')) {
                    t[k++] = cur[i + 1] == '0' ? '~' : '/';
                    i++;
                } else {
                    free(t);
                    s_ptr_free(p);
                    return ERR_PARSE;
                }
            } else {
                t[k++] = cur[i];
            }
        }
        t[k] = '\0';
        p->tok[p->n++] = t;
        if (!end)
            return 0;
        cur = end + 1;
    }
}

/* An array index token: decimal without leading zeros. Returns false for anything else. */
static bool s_index(const char *t, size_t *idx)
{
    if (!*t || (t[0] == '0' && t[1]) || strlen(t) > 18)
        return false;
    size_t v = 0;
    for (const char *c = t; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        v = v * 10 + (size_t)(*c - '0');
    }
    *idx = v;
    return true;
}

/* Walks the first `n` tokens of `p` from `doc`; NULL when a step does not exist. */
static json_t *s_walk(json_t *doc, const ptr_t *p, size_t n)
{
    json_t *cur = doc;
    for (size_t i = 0; i < n && cur; i++) {
        if (json_is_object(cur)) {
            cur = json_object_get(cur, p->tok[i]);
        } else if (json_is_array(cur)) {
            size_t idx = 0;
            cur = s_index(p->tok[i], &idx) ? json_array_get(cur, idx) : NULL;
        } else {
            cur = NULL;
        }
    }
    return cur;
}

/* Adds (steals) `val` at `p` in *doc. Returns 0 or ERR_INVAL with the reason in `err`. */
static int s_op_add(json_t **doc, const ptr_t *p, const char *path, json_t *val, buf_t *err,
                    bool replace_only)
{
    const char *opname = replace_only ? "replace" : "add";
    if (p->n == 0) {
        json_decref(*doc);
        *doc = val;
        return 0;
    }
    json_t *parent = s_walk(*doc, p, p->n - 1);
    const char *last = p->tok[p->n - 1];
    int rc = ERR_INVAL;
    if (json_is_object(parent)) {
        // kube-apiserver applies JSON patches with evanphx/json-patch v4, whose replace of a
        // missing object key sets it, like add. Ray's autoscaler relies on this when it
        // replaces a worker group's scaleStrategy that was never written.
        if (json_object_set_new(parent, last, val) != 0)
            return ERR_NOMEM;
        return 0;
    }
    if (json_is_array(parent)) {
        size_t idx = 0;
        size_t size = json_array_size(parent);
        if (!replace_only && strcmp(last, "-") == 0) {
            if (json_array_append_new(parent, val) != 0)
                return ERR_NOMEM;
            return 0;
        }
        if (!s_index(last, &idx) || idx > size || (replace_only && idx == size)) {
            buf_printf(err, "Unable to access invalid index: %s: invalid index referenced", last);
            goto fail;
        }
        rc = replace_only || idx == size ? (replace_only ? json_array_set_new(parent, idx, val)
                                                         : json_array_append_new(parent, val))
                                         : json_array_insert_new(parent, idx, val);
        return rc ? ERR_NOMEM : 0;
    }
    buf_printf(err, "%s operation does not apply: doc is missing path: \"%s\": missing value",
               opname, path);
fail:
    json_decref(val);
    return ERR_INVAL;
}

/* Removes the value at `p`; stores it in *taken (new reference) when taken is not NULL. */
static int s_op_remove(json_t *doc, const ptr_t *p, const char *path, buf_t *err, json_t **taken,
                       const char *opname)
{
    json_t *parent = p->n ? s_walk(doc, p, p->n - 1) : NULL;
    const char *last = p->n ? p->tok[p->n - 1] : "";
    if (json_is_object(parent)) {
        json_t *v = json_object_get(parent, last);
        if (!v) {
            buf_printf(err, "unable to remove nonexistent key: %s: missing value", last);
            return ERR_INVAL;
        }
        if (taken)
            *taken = json_incref(v);
        json_object_del(parent, last);
        return 0;
    }
    if (json_is_array(parent)) {
        size_t idx = 0;
        if (!s_index(last, &idx) || idx >= json_array_size(parent)) {
            buf_printf(err, "Unable to access invalid index: %s: invalid index referenced", last);
            return ERR_INVAL;
        }
        if (taken)
            *taken = json_incref(json_array_get(parent, idx));
        json_array_remove(parent, idx);
        return 0;
    }
    buf_printf(err, "%s operation does not apply: doc is missing path: \"%s\": missing value",
               opname, path);
    return ERR_INVAL;
}

static const char *s_str(const json_t *op, const char *key)
{
    return json_string_value(json_object_get(op, key));
}

int patch_json(const json_t *target, const json_t *ops, json_t **out, buf_t *err)
{
    buf_t scratch;
    buf_init(&scratch, 1 << 16);
    if (!err)
        err = &scratch;
    *out = NULL;
    if (!json_is_array(ops)) {
        buf_printf(err, "json: cannot unmarshal %s into Go value of type jsonpatch.Patch",
                   json_is_object(ops) ? "object" : "non-array");
        buf_free(&scratch);
        return ERR_PARSE;
    }
    if (json_array_size(ops) > PATCH_JSON_MAX_OPS) {
        buf_printf(err, "The allowed maximum operations in a JSON patch is %d, got %zu",
                   PATCH_JSON_MAX_OPS, json_array_size(ops));
        buf_free(&scratch);
        return ERR_TOOBIG;
    }
    // Decode everything first, so an undecodable patch is 400 whatever its operations would do.
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        const char *name = s_str(op, "op");
        const char *path = s_str(op, "path");
        ptr_t p;
        if (!json_is_object(op) || !name || !path) {
            buf_printf(err, "invalid JSON patch operation %zu: 'op' and 'path' are required", i);
            buf_free(&scratch);
            return ERR_PARSE;
        }
        bool known = strcmp(name, "add") == 0 || strcmp(name, "remove") == 0 ||
                     strcmp(name, "replace") == 0 || strcmp(name, "move") == 0 ||
                     strcmp(name, "copy") == 0 || strcmp(name, "test") == 0;
        bool needs_value =
            strcmp(name, "add") == 0 || strcmp(name, "replace") == 0 || strcmp(name, "test") == 0;
        bool needs_from = strcmp(name, "move") == 0 || strcmp(name, "copy") == 0;
        int rc = 0;
        if (!known) {
            buf_printf(err, "Unexpected kind: %s", name);
            rc = ERR_PARSE;
        } else if (needs_value && !json_object_get(op, "value")) {
            buf_printf(err, "invalid JSON patch operation %zu: %s needs a 'value'", i, name);
            rc = ERR_PARSE;
        } else if (needs_from && !s_str(op, "from")) {
            buf_printf(err, "invalid JSON patch operation %zu: %s needs a 'from'", i, name);
            rc = ERR_PARSE;
        } else if ((rc = s_ptr_parse(path, &p)) == 0) {
            s_ptr_free(&p);
            if (needs_from && (rc = s_ptr_parse(s_str(op, "from"), &p)) == 0)
                s_ptr_free(&p);
        }
        if (rc == ERR_PARSE && err->len == 0)
            buf_printf(err, "invalid JSON pointer in operation %zu", i);
        if (rc) {
            buf_free(&scratch);
            return rc;
        }
    }
    json_t *doc = target ? json_deep_copy(target) : json_null();
    if (!doc) {
        buf_free(&scratch);
        return ERR_NOMEM;
    }
    int rc = 0;
    json_array_foreach(ops, i, op)
    {
        const char *name = s_str(op, "op");
        const char *path = s_str(op, "path");
        ptr_t p;
        ptr_t f = {0};
        if ((rc = s_ptr_parse(path, &p)) != 0)
            break;
        if (strcmp(name, "add") == 0 || strcmp(name, "replace") == 0) {
            json_t *v = json_deep_copy(json_object_get(op, "value"));
            bool replace = name[0] == 'r';
            if (!v)
                rc = ERR_NOMEM;
            else if (replace && p.n && !s_walk(doc, &p, p.n - 1)) {
                buf_printf(err,
                           "replace operation does not apply: doc is missing path: %s: missing "
                           "value",
                           path);
                json_decref(v);
                rc = ERR_INVAL;
            } else {
                rc = s_op_add(&doc, &p, path, v, err, replace);
            }
        } else if (strcmp(name, "remove") == 0) {
            rc = s_op_remove(doc, &p, path, err, NULL, "remove");
        } else if (strcmp(name, "test") == 0) {
            json_t *have = s_walk(doc, &p, p.n);
            if (!have && !(p.n == 0)) {
                buf_printf(err, "test operation does not apply: is missing path: %s", path);
                rc = ERR_INVAL;
            } else if (!s_equal(have, json_object_get(op, "value"))) {
                buf_printf(err, "testing value %s failed: test failed", path);
                rc = ERR_INVAL;
            }
        } else {
            const char *from = s_str(op, "from");
            bool move = name[0] == 'm';
            if ((rc = s_ptr_parse(from, &f)) != 0)
                goto next;
            size_t fl = strlen(from);
            if (move && strncmp(from, path, fl) == 0 && path[fl] == '/') {
                buf_printf(err,
                           "move operation does not apply: a location cannot be moved into "
                           "one of its children: %s",
                           path);
                rc = ERR_INVAL;
                goto next;
            }
            json_t *v = NULL;
            if (move) {
                if (strcmp(from, path) == 0)
                    goto next;
                rc = s_op_remove(doc, &f, from, err, &v, "move");
            } else {
                json_t *src = s_walk(doc, &f, f.n);
                if (!src) {
                    buf_printf(err,
                               "copy operation does not apply: doc is missing from path: %s: "
                               "missing value",
                               from);
                    rc = ERR_INVAL;
                } else if (!(v = json_deep_copy(src))) {
                    rc = ERR_NOMEM;
                }
            }
            if (!rc)
                rc = s_op_add(&doc, &p, path, v, err, false);
        }
    next:
        s_ptr_free(&f);
        s_ptr_free(&p);
        if (rc)
            break;
    }
    buf_free(&scratch);
    if (rc) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

/* ---- strategic merge patch ---- */

typedef enum {
    LIST_KEYED, /* merge list items by the value of `key` */
    LIST_SET /* merge a list of primitives as a set */
} list_how_t;

typedef struct {
    const char *path; /* field path, list items contribute no component */
    list_how_t how; /* how the list merges */
    const char *key; /* the merge key for LIST_KEYED */
} smp_entry_t;

/* Pod spec lists, relative to the pod spec (core/v1 types.go patchStrategy:"merge"). */
static const smp_entry_t s_podspec[] = {
    {"containers", LIST_KEYED, "name"},
    {"initContainers", LIST_KEYED, "name"},
    {"ephemeralContainers", LIST_KEYED, "name"},
    {"containers.env", LIST_KEYED, "name"},
    {"initContainers.env", LIST_KEYED, "name"},
    {"ephemeralContainers.env", LIST_KEYED, "name"},
    {"containers.ports", LIST_KEYED, "containerPort"},
    {"initContainers.ports", LIST_KEYED, "containerPort"},
    {"ephemeralContainers.ports", LIST_KEYED, "containerPort"},
    {"containers.volumeMounts", LIST_KEYED, "mountPath"},
    {"initContainers.volumeMounts", LIST_KEYED, "mountPath"},
    {"ephemeralContainers.volumeMounts", LIST_KEYED, "mountPath"},
    {"containers.volumeDevices", LIST_KEYED, "devicePath"},
    {"initContainers.volumeDevices", LIST_KEYED, "devicePath"},
    {"volumes", LIST_KEYED, "name"},
    {"imagePullSecrets", LIST_KEYED, "name"},
    {"hostAliases", LIST_KEYED, "ip"},
    {"topologySpreadConstraints", LIST_KEYED, "topologyKey"},
    {"schedulingGates", LIST_KEYED, "name"},
    {"resourceClaims", LIST_KEYED, "name"},
};

/* Lists every kind shares, from the object root. */
static const smp_entry_t s_common[] = {
    {"metadata.ownerReferences", LIST_KEYED, "uid"},
    {"metadata.finalizers", LIST_SET, NULL},
    {"status.conditions", LIST_KEYED, "type"},
};

/* Kind-specific lists, from the object root. */
typedef struct {
    const char *kind; /* the kind */
    const char *podspec; /* where its pod spec lives, or NULL */
    const smp_entry_t *extra; /* further entries, or NULL */
    size_t nextra; /* number of further entries */
} smp_kind_t;

static const smp_entry_t s_pod_extra[] = {{"status.podIPs", LIST_KEYED, "ip"}};
static const smp_entry_t s_service_extra[] = {{"spec.ports", LIST_KEYED, "port"}};
static const smp_entry_t s_node_extra[] = {{"status.addresses", LIST_KEYED, "type"}};

static const smp_kind_t s_kinds[] = {
    {"Pod", "spec", s_pod_extra, 1},
    {"Deployment", "spec.template.spec", NULL, 0},
    {"ReplicaSet", "spec.template.spec", NULL, 0},
    {"StatefulSet", "spec.template.spec", NULL, 0},
    {"DaemonSet", "spec.template.spec", NULL, 0},
    {"Job", "spec.template.spec", NULL, 0},
    {"PodTemplate", "template.spec", NULL, 0},
    {"CronJob", "spec.jobTemplate.spec.template.spec", NULL, 0},
    {"Service", NULL, s_service_extra, 1},
    {"Node", NULL, s_node_extra, 1},
};

typedef struct {
    const smp_kind_t *kind; /* the kind's table, or NULL */
    bool apply; /* server-side apply: directives are stripped, not honoured */
    buf_t path; /* the current field path */
    buf_t *err; /* where reasons go */
} smp_t;

static const smp_entry_t *s_find(const smp_entry_t *t, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].path, path) == 0)
            return &t[i];
    return NULL;
}

static const smp_entry_t *s_lookup(const smp_t *c, const char *path)
{
    const smp_entry_t *e = s_find(s_common, sizeof(s_common) / sizeof(s_common[0]), path);
    if (e || !c->kind)
        return e;
    if (c->kind->extra && (e = s_find(c->kind->extra, c->kind->nextra, path)) != NULL)
        return e;
    const char *ps = c->kind->podspec;
    size_t pl = ps ? strlen(ps) : 0;
    if (ps && strncmp(path, ps, pl) == 0 && path[pl] == '.')
        return s_find(s_podspec, sizeof(s_podspec) / sizeof(s_podspec[0]), path + pl + 1);
    return NULL;
}

static int s_merge_map(smp_t *c, const json_t *orig, const json_t *patch, int depth, json_t **res);
static int s_merge_list(smp_t *c, const json_t *orig, const json_t *patch, int depth, json_t **res);

/* Pushes ".name" on the path; returns the length to restore. */
static size_t s_push(smp_t *c, const char *name)
{
    size_t at = c->path.len;
    if (buf_printf(&c->path, "%s%s", at ? "." : "", name) != 0) {
        // Too deep to name: a path that matches no entry keeps the merge correct (replace).
        buf_reset(&c->path);
        buf_puts(&c->path, "#");
    }
    return at;
}

static void s_pop(smp_t *c, size_t at)
{
    if (at <= c->path.len) {
        c->path.len = at;
        if (c->path.data)
            c->path.data[at] = '\0';
    }
}

/* The value a patch value becomes under `orig` (merged, cleaned of directives and nulls). */
static int s_merge_value(smp_t *c, const json_t *orig, const json_t *pv, int depth, json_t **res)
{
    *res = NULL;
    if (json_is_object(pv))
        return s_merge_map(c, json_is_object(orig) ? orig : NULL, pv, depth + 1, res);
    if (json_is_array(pv))
        return s_merge_list(c, json_is_array(orig) ? orig : NULL, pv, depth + 1, res);
    *res = json_deep_copy(pv);
    return *res ? 0 : ERR_NOMEM;
}

/* The item of `arr` whose `key` equals `kv`, or -1. */
static long s_find_item(const json_t *arr, const char *key, const json_t *kv)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *it = json_array_get(arr, i);
        json_t *v = json_object_get(it, key);
        if (v && s_equal(v, kv))
            return (long)i;
    }
    return -1;
}

static bool s_directive(const json_t *o, const char *value)
{
    const char *d = json_string_value(json_object_get(o, "$patch"));
    return d && strcmp(d, value) == 0;
}

static int s_merge_list(smp_t *c, const json_t *orig, const json_t *patch, int depth, json_t **res)
{
    *res = NULL;
    if (depth > PATCH_MAX_DEPTH)
        return ERR_TOOBIG;
    const smp_entry_t *e = s_lookup(c, buf_str(&c->path));
    bool replace_all = false;
    size_t i;
    json_t *pv;
    if (!c->apply) {
        json_array_foreach(patch, i, pv)
        {
            if (json_is_object(pv) && s_directive(pv, "replace"))
                replace_all = true;
        }
    }
    json_t *out = json_array();
    if (!out)
        return ERR_NOMEM;
    int rc = 0;
    if (!e || replace_all) {
        // Atomic list: the patch's items replace the original's.
        json_array_foreach(patch, i, pv)
        {
            if (json_is_object(pv) && s_directive(pv, "replace") && !c->apply)
                continue;
            json_t *m = NULL;
            if ((rc = s_merge_value(c, NULL, pv, depth, &m)) != 0)
                goto fail;
            if (m && json_array_append_new(out, m) != 0) {
                rc = ERR_NOMEM;
                goto fail;
            }
        }
        *res = out;
        return 0;
    }
    json_array_foreach(orig, i, pv)
    {
        if (json_array_append(out, pv) != 0) {
            rc = ERR_NOMEM;
            goto fail;
        }
    }
    if (e->how == LIST_SET) {
        json_array_foreach(patch, i, pv)
        {
            bool have = false;
            for (size_t j = 0; j < json_array_size(out) && !have; j++)
                have = s_equal(json_array_get(out, j), pv);
            if (!have && !json_is_object(pv) && json_array_append(out, pv) != 0) {
                rc = ERR_NOMEM;
                goto fail;
            }
        }
        *res = out;
        return 0;
    }
    json_array_foreach(patch, i, pv)
    {
        json_t *kv = json_object_get(pv, e->key);
        if (!json_is_object(pv) || !kv) {
            char *txt = json_dumps(pv, JSON_COMPACT | JSON_ENCODE_ANY);
            buf_printf(c->err, "map: %s does not contain declared merge key: %s", txt ? txt : "?",
                       e->key);
            free(txt);
            rc = ERR_INVAL;
            goto fail;
        }
        long at = s_find_item(out, e->key, kv);
        if (!c->apply && s_directive(pv, "delete")) {
            while (at >= 0) {
                json_array_remove(out, (size_t)at);
                at = s_find_item(out, e->key, kv);
            }
            continue;
        }
        json_t *m = NULL;
        rc = s_merge_map(c, at >= 0 ? json_array_get(out, (size_t)at) : NULL, pv, depth + 1, &m);
        if (rc)
            goto fail;
        if (!m) {
            if (at >= 0)
                json_array_remove(out, (size_t)at);
            continue;
        }
        rc = at >= 0 ? json_array_set_new(out, (size_t)at, m) : json_array_append_new(out, m);
        if (rc) {
            rc = ERR_NOMEM;
            goto fail;
        }
    }
    *res = out;
    return 0;
fail:
    json_decref(out);
    return rc;
}

/* Orders `list` (in place) as `order` says: named items first in that order, then the rest. */
static int s_set_order(const smp_entry_t *e, json_t *list, const json_t *order)
{
    json_t *sorted = json_array();
    if (!sorted)
        return ERR_NOMEM;
    size_t i;
    json_t *o;
    json_array_foreach(order, i, o)
    {
        for (size_t j = 0; j < json_array_size(list); j++) {
            json_t *it = json_array_get(list, j);
            bool same = e->how == LIST_SET
                            ? s_equal(it, o)
                            : (json_object_get(it, e->key) && json_object_get(o, e->key) &&
                               s_equal(json_object_get(it, e->key), json_object_get(o, e->key)));
            if (same) {
                json_array_append(sorted, it);
                json_array_remove(list, j);
                break;
            }
        }
    }
    json_array_extend(sorted, list);
    json_array_clear(list);
    json_array_extend(list, sorted);
    json_decref(sorted);
    return 0;
}

static int s_merge_map(smp_t *c, const json_t *orig, const json_t *patch, int depth, json_t **res)
{
    *res = NULL;
    if (depth > PATCH_MAX_DEPTH)
        return ERR_TOOBIG;
    const char *d = json_string_value(json_object_get(patch, "$patch"));
    if (d && !c->apply) {
        if (strcmp(d, "delete") == 0)
            return 0;
        if (strcmp(d, "replace") == 0)
            orig = NULL;
        else if (strcmp(d, "merge") != 0) {
            buf_printf(c->err, "unknown patch type: %s in map", d);
            return ERR_PARSE;
        }
    }
    json_t *out = orig ? json_deep_copy(orig) : json_object();
    if (!out)
        return ERR_NOMEM;
    int rc = 0;
    const char *k;
    json_t *pv;
    json_t *retain = json_object_get(patch, "$retainKeys");
    if (retain && !c->apply) {
        if (!json_is_array(retain)) {
            buf_puts(c->err, "invalid patch: $retainKeys must be a list of strings");
            rc = ERR_PARSE;
            goto fail;
        }
        void *tmp;
        json_object_foreach_safe(out, tmp, k, pv)
        {
            bool keep = false;
            size_t i;
            json_t *rk;
            json_array_foreach(retain, i, rk)
            {
                if (json_is_string(rk) && strcmp(json_string_value(rk), k) == 0)
                    keep = true;
            }
            if (!keep)
                json_object_del(out, k);
        }
    }
    static const char del_prefix[] = "$deleteFromPrimitiveList/";
    json_object_foreach((json_t *)patch, k, pv)
    {
        if (c->apply || strncmp(k, del_prefix, sizeof(del_prefix) - 1) != 0)
            continue;
        json_t *list = json_object_get(out, k + sizeof(del_prefix) - 1);
        if (!json_is_array(pv)) {
            buf_printf(c->err, "invalid patch: %s must be a list", k);
            rc = ERR_PARSE;
            goto fail;
        }
        for (size_t j = 0; json_is_array(list) && j < json_array_size(list);) {
            bool drop = false;
            size_t i;
            json_t *dv;
            json_array_foreach(pv, i, dv)
            {
                if (s_equal(dv, json_array_get(list, j)))
                    drop = true;
            }
            if (drop)
                json_array_remove(list, j);
            else
                j++;
        }
    }
    json_object_foreach((json_t *)patch, k, pv)
    {
        if (k[0] == '$')
            continue;
        if (json_is_null(pv)) {
            json_object_del(out, k);
            continue;
        }
        size_t at = s_push(c, k);
        json_t *m = NULL;
        rc = s_merge_value(c, json_object_get(out, k), pv, depth, &m);
        s_pop(c, at);
        if (rc)
            goto fail;
        if (!m)
            json_object_del(out, k);
        else if (json_object_set_new(out, k, m) != 0) {
            rc = ERR_NOMEM;
            goto fail;
        }
    }
    static const char order_prefix[] = "$setElementOrder/";
    json_object_foreach((json_t *)patch, k, pv)
    {
        if (c->apply || strncmp(k, order_prefix, sizeof(order_prefix) - 1) != 0)
            continue;
        const char *field = k + sizeof(order_prefix) - 1;
        json_t *list = json_object_get(out, field);
        size_t at = s_push(c, field);
        const smp_entry_t *e = s_lookup(c, buf_str(&c->path));
        s_pop(c, at);
        if (e && json_is_array(list) && json_is_array(pv) && (rc = s_set_order(e, list, pv)) != 0)
            goto fail;
    }
    *res = out;
    return 0;
fail:
    json_decref(out);
    return rc;
}

static int s_strategic(const json_t *target, const json_t *patch, const char *kind, bool apply,
                       json_t **out, buf_t *err)
{
    *out = NULL;
    buf_t scratch;
    buf_init(&scratch, 1 << 16);
    smp_t c = {.kind = NULL, .apply = apply, .err = err ? err : &scratch};
    buf_init(&c.path, PATCH_PATH_MAX);
    for (size_t i = 0; kind && i < sizeof(s_kinds) / sizeof(s_kinds[0]); i++)
        if (strcmp(s_kinds[i].kind, kind) == 0)
            c.kind = &s_kinds[i];
    int rc;
    if (!json_is_object(patch)) {
        buf_puts(c.err, "invalid patch: the patch must be a JSON object");
        rc = ERR_PARSE;
    } else {
        rc = s_merge_map(&c, json_is_object(target) ? target : NULL, patch, 0, out);
        if (!rc && !*out)
            *out = json_object();
        if (!rc && !*out)
            rc = ERR_NOMEM;
    }
    buf_free(&c.path);
    buf_free(&scratch);
    return rc;
}

int patch_strategic(const json_t *target, const json_t *patch, const char *kind, json_t **out,
                    buf_t *err)
{
    return s_strategic(target, patch, kind, false, out, err);
}

int patch_apply_approx(const json_t *target, const json_t *patch, const char *kind, json_t **out,
                       buf_t *err)
{
    return s_strategic(target, patch, kind, true, out, err);
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

/* True when applying `how` ("merge", "json", "smp:<Kind>", "apply:<Kind>") of `p` to `t` gives
 * `want` (or, when want starts with '!', fails with that err_t and message prefix). */
static bool s_case(const char *how, const char *t, const char *p, const char *want)
{
    json_t *tj = json_loads(t, JSON_DECODE_ANY, NULL);
    json_t *pj = json_loads(p, JSON_DECODE_ANY, NULL);
    json_t *before = json_deep_copy(tj);
    json_t *got = NULL;
    buf_t e;
    buf_init(&e, 1 << 16);
    int rc = 0;
    if (strcmp(how, "merge") == 0)
        got = patch_merge(tj, pj);
    else if (strcmp(how, "json") == 0)
        rc = patch_json(tj, pj, &got, &e);
    else if (strncmp(how, "smp:", 4) == 0)
        rc = patch_strategic(tj, pj, how + 4, &got, &e);
    else
        rc = patch_apply_approx(tj, pj, how + 6, &got, &e);
    bool ok;
    if (want[0] == '!') {
        char *end = NULL;
        long code = strtol(want + 1, &end, 10);
        const char *msg = end && *end == ' ' ? end + 1 : "";
        ok = rc == code && got == NULL && strncmp(buf_str(&e), msg, strlen(msg)) == 0;
    } else {
        json_t *wj = json_loads(want, JSON_DECODE_ANY, NULL);
        ok = rc == 0 && wj && got && json_equal(got, wj);
        json_decref(wj);
    }
    ok = ok && json_equal(tj, before); // inputs untouched
    if (!ok) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
        printf("patch %s %s: rc %d got %s err [%s]\n", how, p, rc, g ? g : "-", buf_str(&e));
        free(g);
    }
    buf_free(&e);
    json_decref(got);
    json_decref(before);
    json_decref(tj);
    json_decref(pj);
    return ok;
}

int patch_test(bool verbose)
{
    int failed = 0;

    // RFC 7386 (including its appendix A examples).
    CHECK(s_case("merge", "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"));
    CHECK(s_case("merge", "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"));
    CHECK(s_case("merge", "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"));
    CHECK(s_case("merge", "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"));
    CHECK(s_case("merge", "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"));
    CHECK(s_case("merge", "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"));
    CHECK(s_case("merge", "{\"a\":\"foo\"}", "\"bar\"", "\"bar\""));
    CHECK(s_case("merge", "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"));
    CHECK(s_case("merge", "{\"a\":{\"b\":1,\"c\":2}}", "{\"a\":{\"b\":null,\"d\":3}}",
                 "{\"a\":{\"c\":2,\"d\":3}}"));
    {
        json_t *m = patch_merge(NULL, NULL);
        CHECK(json_is_null(m));
        json_decref(m);
    }

    // RFC 6902.
    const char *doc = "{\"spec\":{\"replicas\":1,\"l\":[1,2,3],\"a/b\":4,\"m~n\":5}}";
    CHECK(s_case("json", doc, "[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":3}]",
                 "{\"spec\":{\"replicas\":3,\"l\":[1,2,3],\"a/b\":4,\"m~n\":5}}"));
    CHECK(s_case("json", doc,
                 "[{\"op\":\"add\",\"path\":\"/spec/l/-\",\"value\":4},"
                 "{\"op\":\"add\",\"path\":\"/spec/l/0\",\"value\":0},"
                 "{\"op\":\"remove\",\"path\":\"/spec/a~1b\"},"
                 "{\"op\":\"test\",\"path\":\"/spec/m~0n\",\"value\":5.0},"
                 "{\"op\":\"move\",\"from\":\"/spec/m~0n\",\"path\":\"/x\"},"
                 "{\"op\":\"copy\",\"from\":\"/x\",\"path\":\"/spec/y\"},"
                 "{\"op\":\"remove\",\"path\":\"/spec/l/1\"}]",
                 "{\"spec\":{\"replicas\":1,\"l\":[0,2,3,4],\"y\":5},\"x\":5}"));
    CHECK(s_case("json", doc, "[{\"op\":\"add\",\"path\":\"\",\"value\":{\"z\":1}}]", "{\"z\":1}"));
    CHECK(s_case("json", doc, "[{\"op\":\"add\",\"path\":\"/spec/l/3\",\"value\":9}]",
                 "{\"spec\":{\"replicas\":1,\"l\":[1,2,3,9],\"a/b\":4,\"m~n\":5}}"));
    CHECK(s_case("json", doc, "[{\"op\":\"replace\",\"path\":\"/spec/l/0\",\"value\":9}]",
                 "{\"spec\":{\"replicas\":1,\"l\":[9,2,3],\"a/b\":4,\"m~n\":5}}"));
    CHECK(s_case("json", doc, "[]", doc));
    // Failed operations: 422, target unchanged even after earlier ops succeeded.
    CHECK(s_case("json", doc,
                 "[{\"op\":\"add\",\"path\":\"/spec/q\",\"value\":1},"
                 "{\"op\":\"test\",\"path\":\"/spec/replicas\",\"value\":2}]",
                 "!-2 testing value /spec/replicas failed: test failed"));
    CHECK(s_case("json", doc, "[{\"op\":\"remove\",\"path\":\"/spec/nope\"}]",
                 "!-2 unable to remove nonexistent key: nope: missing value"));
    CHECK(s_case("json", doc, "[{\"op\":\"replace\",\"path\":\"/spec/nope\",\"value\":1}]",
                 "{\"spec\":{\"replicas\":1,\"l\":[1,2,3],\"a/b\":4,\"m~n\":5,\"nope\":1}}"));
    CHECK(s_case("json", doc, "[{\"op\":\"replace\",\"path\":\"/a/b\",\"value\":1}]",
                 "!-2 replace operation does not apply: doc is missing path: /a/b"));
    CHECK(s_case("json", doc, "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]",
                 "!-2 add operation does not apply: doc is missing path: \"/a/b\""));
    CHECK(s_case("json", doc, "[{\"op\":\"add\",\"path\":\"/spec/l/7\",\"value\":1}]",
                 "!-2 Unable to access invalid index: 7"));
    CHECK(s_case("json", doc, "[{\"op\":\"add\",\"path\":\"/spec/l/01\",\"value\":1}]", "!-2"));
    CHECK(s_case("json", doc, "[{\"op\":\"remove\",\"path\":\"/spec/l/3\"}]", "!-2"));
    CHECK(s_case("json", doc, "[{\"op\":\"test\",\"path\":\"/nope\",\"value\":1}]",
                 "!-2 test operation does not apply: is missing path: /nope"));
    CHECK(s_case("json", doc, "[{\"op\":\"move\",\"from\":\"/spec\",\"path\":\"/spec/x\"}]",
                 "!-2 move operation does not apply: a location cannot be moved"));
    CHECK(s_case("json", doc, "[{\"op\":\"move\",\"from\":\"/nope\",\"path\":\"/x\"}]", "!-2"));
    CHECK(s_case("json", doc, "[{\"op\":\"copy\",\"from\":\"/nope\",\"path\":\"/x\"}]",
                 "!-2 copy operation does not apply: doc is missing from path: /nope"));
    // Undecodable patches: 400.
    CHECK(s_case("json", doc, "{\"op\":\"add\"}", "!-12 json: cannot unmarshal object"));
    CHECK(s_case("json", doc, "[{\"path\":\"/a\",\"value\":1}]", "!-12"));
    CHECK(s_case("json", doc, "[{\"op\":\"frob\",\"path\":\"/a\"}]", "!-12 Unexpected kind: frob"));
    CHECK(s_case("json", doc, "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]", "!-12"));
    CHECK(s_case("json", doc, "[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":1}]", "!-12"));
    CHECK(s_case("json", doc, "[{\"op\":\"add\",\"path\":\"/a\"}]", "!-12"));
    CHECK(s_case("json", doc, "[{\"op\":\"move\",\"path\":\"/a\"}]", "!-12"));
    CHECK(s_case("json", doc, "[1]", "!-12"));
    {
        json_t *many = json_array();
        for (int i = 0; i <= PATCH_JSON_MAX_OPS; i++)
            json_array_append_new(many, json_pack("{s:s,s:s}", "op", "remove", "path", "/x"));
        json_t *t = json_object();
        json_t *o = NULL;
        CHECK(patch_json(t, many, &o, NULL) == ERR_TOOBIG && !o);
        json_decref(t);
        json_decref(many);
    }

    // Strategic merge: keyed lists, directives, tables by kind.
    const char *pod =
        "{\"metadata\":{\"name\":\"p\",\"finalizers\":[\"a\",\"b\"],\"ownerReferences\":"
        "[{\"uid\":\"u1\",\"name\":\"o1\"}]},"
        "\"spec\":{\"containers\":[{\"name\":\"c1\",\"image\":\"i1\",\"env\":[{\"name\":\"A\","
        "\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],\"ports\":[{\"containerPort\":80}]},"
        "{\"name\":\"c2\",\"image\":\"i2\"}],\"tolerations\":[{\"key\":\"t1\"}],"
        "\"volumes\":[{\"name\":\"v1\",\"emptyDir\":{}}]},"
        "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}";
    CHECK(s_case("smp:Pod", pod,
                 "{\"$setElementOrder/containers\":[{\"name\":\"c2\"},{\"name\":\"c1\"}],"
                 "\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"c2\"},{\"name\":\"c1\"}],"
                 "\"containers\":[{\"name\":\"c1\",\"image\":\"i1b\",\"env\":[{\"name\":\"B\","
                 "\"value\":\"3\"},{\"name\":\"C\",\"value\":\"4\"}]}],"
                 "\"tolerations\":[{\"key\":\"t2\"}]}}",
                 "{\"metadata\":{\"name\":\"p\",\"finalizers\":[\"a\",\"b\"],\"ownerReferences\":"
                 "[{\"uid\":\"u1\",\"name\":\"o1\"}]},"
                 "\"spec\":{\"containers\":[{\"name\":\"c2\",\"image\":\"i2\"},{\"name\":\"c1\","
                 "\"image\":\"i1b\",\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\","
                 "\"value\":\"3\"},{\"name\":\"C\",\"value\":\"4\"}],\"ports\":[{\"containerPort\":"
                 "80}]}],\"tolerations\":[{\"key\":\"t2\"}],"
                 "\"volumes\":[{\"name\":\"v1\",\"emptyDir\":{}}]},"
                 "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}"));
    CHECK(s_case("smp:Pod", pod,
                 "{\"metadata\":{\"finalizers\":[\"c\",\"a\"],\"$deleteFromPrimitiveList/"
                 "finalizers\":[\"b\"],\"ownerReferences\":[{\"uid\":\"u2\",\"name\":\"o2\"}]},"
                 "\"spec\":{\"containers\":[{\"name\":\"c2\",\"$patch\":\"delete\"}],"
                 "\"volumes\":[{\"name\":\"v1\",\"$retainKeys\":[\"name\",\"configMap\"],"
                 "\"configMap\":{\"name\":\"cm\"}}]},"
                 "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},"
                 "{\"type\":\"Scheduled\",\"status\":\"True\"}]}}",
                 "{\"metadata\":{\"name\":\"p\",\"finalizers\":[\"a\",\"c\"],\"ownerReferences\":"
                 "[{\"uid\":\"u1\",\"name\":\"o1\"},{\"uid\":\"u2\",\"name\":\"o2\"}]},"
                 "\"spec\":{\"containers\":[{\"name\":\"c1\",\"image\":\"i1\",\"env\":[{\"name\":"
                 "\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],\"ports\":"
                 "[{\"containerPort\":80}]}],\"tolerations\":[{\"key\":\"t1\"}],"
                 "\"volumes\":[{\"name\":\"v1\",\"configMap\":{\"name\":\"cm\"}}]},"
                 "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},"
                 "{\"type\":\"Scheduled\",\"status\":\"True\"}]}}"));
    CHECK(s_case("smp:Pod", pod,
                 "{\"spec\":{\"containers\":[{\"name\":\"c9\",\"image\":\"x\"},"
                 "{\"$patch\":\"replace\"}],\"volumes\":null},\"status\":{\"$patch\":\"delete\"},"
                 "\"metadata\":{\"$patch\":\"replace\",\"name\":\"q\",\"labels\":{\"x\":null,"
                 "\"$patch\":\"merge\"}}}",
                 "{\"metadata\":{\"name\":\"q\",\"labels\":{}},"
                 "\"spec\":{\"containers\":[{\"name\":\"c9\",\"image\":\"x\"}],"
                 "\"tolerations\":[{\"key\":\"t1\"}]}}"));
    const char *dep = "{\"spec\":{\"replicas\":1,\"template\":{\"spec\":{\"containers\":[{\"name\":"
                      "\"a\",\"image\":\"1\"}]}}}}";
    CHECK(s_case("smp:Deployment", dep,
                 "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":"
                 "\"2\"}]}}}}",
                 "{\"spec\":{\"replicas\":1,\"template\":{\"spec\":{\"containers\":[{\"name\":"
                 "\"a\",\"image\":\"1\"},{\"name\":\"b\",\"image\":\"2\"}]}}}}"));
    CHECK(s_case("smp:RayCluster", dep,
                 "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"b\"}]}}}}",
                 "{\"spec\":{\"replicas\":1,\"template\":{\"spec\":{\"containers\":[{\"name\":"
                 "\"b\"}]}}}}"));
    CHECK(s_case("smp:Service", "{\"spec\":{\"ports\":[{\"port\":80,\"name\":\"http\"}]}}",
                 "{\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":8080},{\"port\":443}]}}",
                 "{\"spec\":{\"ports\":[{\"port\":80,\"name\":\"http\",\"targetPort\":8080},"
                 "{\"port\":443}]}}"));
    CHECK(s_case("smp:Pod", pod, "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}",
                 "!-2 map: {\"image\":\"x\"} does not contain declared merge key: name"));
    CHECK(s_case("smp:Pod", pod, "[1]", "!-12"));
    CHECK(s_case("smp:Pod", pod, "{\"spec\":{\"$patch\":\"frob\"}}", "!-12 unknown patch type"));
    CHECK(s_case("smp:Pod", pod, "{\"spec\":{\"$retainKeys\":1}}", "!-12"));
    CHECK(s_case("smp:Pod", pod, "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":1}}",
                 "!-12"));
    CHECK(s_case("smp:Pod", "null",
                 "{\"a\":{\"b\":null,\"$x\":1,\"c\":[{\"$patch\":\"merge\",\"d\":1}]}}",
                 "{\"a\":{\"c\":[{\"d\":1}]}}"));
    CHECK(s_case("smp:Pod", "{}", "{\"a\":[{\"$patch\":\"x\"}]}", "!-12"));
    CHECK(s_case("smp:Pod", pod, "{\"$patch\":\"delete\"}", "{}"));

    // Server-side apply approximation: keyed merge where known, directives stripped.
    CHECK(s_case("apply:Pod", pod,
                 "{\"metadata\":{\"labels\":{\"a\":\"b\"},\"finalizers\":[\"z\"]},\"spec\":{"
                 "\"containers\":[{\"name\":\"c2\",\"image\":\"i3\",\"$patch\":\"delete\"}],"
                 "\"tolerations\":[]}}",
                 "{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"b\"},\"finalizers\":[\"a\","
                 "\"b\",\"z\"],\"ownerReferences\":[{\"uid\":\"u1\",\"name\":\"o1\"}]},"
                 "\"spec\":{\"containers\":[{\"name\":\"c1\",\"image\":\"i1\",\"env\":[{\"name\":"
                 "\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],\"ports\":"
                 "[{\"containerPort\":80}]},{\"name\":\"c2\",\"image\":\"i3\"}],"
                 "\"tolerations\":[],\"volumes\":[{\"name\":\"v1\",\"emptyDir\":{}}]},"
                 "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}"));
    CHECK(s_case("apply:RayCluster", "null", "{\"spec\":{\"x\":[1]}}", "{\"spec\":{\"x\":[1]}}"));
    {
        // Deep nesting is refused, not followed to a stack overflow.
        json_t *deep = json_object();
        json_t *cur = deep;
        for (int i = 0; i < PATCH_MAX_DEPTH + 5; i++) {
            json_t *n = json_object();
            json_object_set_new(cur, "a", n);
            cur = n;
        }
        json_t *o = NULL;
        CHECK(patch_strategic(NULL, deep, "Pod", &o, NULL) == ERR_TOOBIG && !o);
        json_decref(deep);
    }
    return SELFTEST_RESULT("patch", verbose);
}

#endif /* RF_SELFTEST */
