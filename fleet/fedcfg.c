/*
 * fedcfg: the `federation:` configuration. See fedcfg.h.
 */
#include "fedcfg.h"

#include "err.h"
#include "validate.h"
#include "yaml.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest path an error names ("federation.queues[1023].namespaces[16383]" and a key). */
#define S_PATH_MAX 512

/* The parse: where errors go and how positions are found. */
typedef struct {
    const json_t *marks; /* the document's positions, or NULL */
    const char *file; /* its name, or NULL */
    buf_t *err; /* may be NULL */
} s_ctx_t;

/* The marks key of a display path: "a.b[2].c" -> "a.b.2.c". */
static void s_mark_path(const char *path, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; path[i] && j + 1 < n; i++) {
        if (path[i] == '[')
            out[j++] = '.';
        else if (path[i] != ']')
            out[j++] = path[i];
    }
    out[j] = '\0';
}

/* Formats a path into out[S_PATH_MAX] (a longer one is cut: it only names a place). */
static void s_path(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_path(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(out, S_PATH_MAX, fmt, ap);
    va_end(ap);
}

/* Appends "[file:line:col: ]path: rule" to the error buffer; `key` picks the key's position
 * (unknown keys) instead of the value's. Returns ERR_INVAL. */
static int s_fail(const s_ctx_t *x, const char *path, bool key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int s_fail(const s_ctx_t *x, const char *path, bool key, const char *fmt, ...)
{
    if (!x->err)
        return ERR_INVAL;
    if (x->marks) {
        char mp[S_PATH_MAX];
        s_mark_path(path, mp, sizeof mp);
        const json_t *m = json_object_get(x->marks, mp);
        json_int_t line = json_integer_value(json_array_get(m, key ? 0 : 2));
        json_int_t col = json_integer_value(json_array_get(m, key ? 1 : 3));
        if (m && line > 0 && col > 0)
            (void)buf_printf(x->err, "%s:%lld:%lld: ", x->file ? x->file : "<input>",
                             (long long)line, (long long)col);
        else if (x->file)
            (void)buf_printf(x->err, "%s: ", x->file);
    } else if (x->file) {
        (void)buf_printf(x->err, "%s: ", x->file);
    }
    (void)buf_printf(x->err, "%s: ", path);
    va_list ap;
    va_start(ap, fmt);
    (void)buf_vprintf(x->err, fmt, ap);
    va_end(ap);
    return ERR_INVAL;
}

/* Refuses every key of `obj` not in the NULL-terminated `allowed`. */
static int s_keys(const s_ctx_t *x, const json_t *obj, const char *path, const char *const *allowed,
                  const char *want)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], k) != 0)
            i++;
        if (!allowed[i]) {
            char p[S_PATH_MAX];
            s_path(p, "%s.%s", path, k);
            return s_fail(x, p, true, "unknown key (want %s)", want);
        }
    }
    return 0;
}

static int s_object(const s_ctx_t *x, const json_t *v, const char *path)
{
    return json_is_object(v) ? 0 : s_fail(x, path, false, "must be a mapping");
}

/* The text of validate_*'s errors without the last separator "; ". */
static const char *s_trim(buf_t *e)
{
    if (e->len >= 2 && e->data[e->len - 2] == ';' && e->data[e->len - 1] == ' ') {
        e->len -= 2;
        e->data[e->len] = '\0';
    }
    return buf_str(e);
}

/* A DNS-1123 label into *out (owned). */
static int s_label(const s_ctx_t *x, const json_t *v, const char *path, char **out)
{
    const char *s = json_string_value(v);
    if (!s)
        return s_fail(x, path, false, "must be a string (a DNS-1123 label)");
    buf_t e;
    buf_init(&e, 1024);
    int bad = validate_dns1123_label(s, &e, "; ");
    if (bad != 0) {
        int rc = s_fail(x, path, false, "\"%s\": %s", s, s_trim(&e));
        buf_free(&e);
        return bad < 0 && bad != ERR_INVAL ? bad : rc;
    }
    buf_free(&e);
    *out = strdup(s);
    return *out ? 0 : ERR_NOMEM;
}

/* A non-empty string of at most FEDCFG_MAX_TEXT bytes into *out (owned). */
static int s_text(const s_ctx_t *x, const json_t *v, const char *path, char **out)
{
    const char *s = json_string_value(v);
    if (!s || !*s)
        return s_fail(x, path, false, "must be a non-empty string");
    if (strlen(s) > FEDCFG_MAX_TEXT)
        return s_fail(x, path, false, "must be at most %d bytes", FEDCFG_MAX_TEXT);
    *out = strdup(s);
    return *out ? 0 : ERR_NOMEM;
}

/* A cluster: name, context, kubeconfig and (members only) labels. */
static int s_cluster(const s_ctx_t *x, const json_t *v, const char *path, bool member,
                     fedcfg_cluster_t *out)
{
    static const char *const mkeys[] = {"name", "context", "kubeconfig", "labels", NULL};
    static const char *const gkeys[] = {"name", "context", "kubeconfig", NULL};
    char p[S_PATH_MAX];
    int rc = s_object(x, v, path);
    if (!rc)
        rc = s_keys(x, v, path, member ? mkeys : gkeys,
                    member ? "name, context, kubeconfig, labels" : "name, context, kubeconfig");
    if (rc)
        return rc;
    s_path(p, "%s.name", path);
    if (!json_object_get(v, "name"))
        return s_fail(x, path, false, "name: is required");
    if ((rc = s_label(x, json_object_get(v, "name"), p, &out->name)))
        return rc;
    const json_t *ctx = json_object_get(v, "context");
    s_path(p, "%s.context", path);
    if (ctx && !json_is_null(ctx))
        rc = s_text(x, ctx, p, &out->context);
    else
        rc = (out->context = strdup(out->name)) ? 0 : ERR_NOMEM;
    if (rc)
        return rc;
    const json_t *kc = json_object_get(v, "kubeconfig");
    s_path(p, "%s.kubeconfig", path);
    if (kc && !json_is_null(kc) && (rc = s_text(x, kc, p, &out->kubeconfig)))
        return rc;
    const json_t *labels = json_object_get(v, "labels");
    s_path(p, "%s.labels", path);
    if (labels && !json_is_null(labels)) {
        if ((rc = s_object(x, labels, p)))
            return rc;
        if (json_object_size(labels) > FEDCFG_MAX_LABELS)
            return s_fail(x, p, false, "at most %d labels", FEDCFG_MAX_LABELS);
        const char *k;
        json_t *lv;
        json_object_foreach((json_t *)labels, k, lv)
        {
            char lp[S_PATH_MAX];
            s_path(lp, "%s.%s", p, k);
            buf_t e;
            buf_init(&e, 2048);
            const char *s = json_string_value(lv);
            int bad = validate_qualified_name(k, &e, "; ");
            if (bad > 0) {
                rc = s_fail(x, lp, true, "key \"%s\": %s", k, s_trim(&e));
            } else if (!s) {
                rc = s_fail(x, lp, false, "must be a string (a label value)");
            } else if (validate_label_value(s, &e, "; ") > 0) {
                rc = s_fail(x, lp, false, "\"%s\": %s", s, s_trim(&e));
            }
            buf_free(&e);
            if (rc)
                return rc;
        }
        out->labels = json_deep_copy(labels);
    } else {
        out->labels = json_object();
    }
    return out->labels ? 0 : ERR_NOMEM;
}

/* A quota map: fleet_res_parse_quota, with dimensions not written left FEDCFG_UNLIMITED. */
static int s_quota(const s_ctx_t *x, const json_t *v, const char *path, fleet_res_t *out)
{
    for (int i = 0; i < FLEET_RES_N; i++)
        out->v[i] = FEDCFG_UNLIMITED;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return s_fail(x, path, false, "must be a map of cpu, memory, gpu, pods to quantities");
    buf_t e;
    buf_init(&e, 1024);
    fleet_res_t q;
    int rc = fleet_res_parse_quota(v, &q, &e);
    if (rc) {
        const char *m = buf_str(&e);
        if (strncmp(m, "quota: ", 7) == 0)
            m += 7;
        rc = s_fail(x, path, false, "%s", m);
        buf_free(&e);
        return rc;
    }
    buf_free(&e);
    const char *k;
    json_t *qv;
    json_object_foreach((json_t *)v, k, qv)
    {
        int dim = strcmp(k, "gpu") == 0 ? FLEET_RES_GPU : fleet_res_of(k);
        if (dim >= 0)
            out->v[dim] = q.v[dim];
    }
    return 0;
}

/* One queue. `seen` maps namespaces already placed to their queue's name. */
static int s_queue(const s_ctx_t *x, const json_t *v, const char *path, json_t *seen, size_t *nns,
                   fedcfg_queue_t *out)
{
    static const char *const keys[] = {"name",  "namespaces",     "weight", "cohort",
                                       "quota", "borrowingLimit", NULL};
    char p[S_PATH_MAX];
    int rc = s_object(x, v, path);
    if (!rc)
        rc = s_keys(x, v, path, keys, "name, namespaces, weight, cohort, quota, borrowingLimit");
    if (rc)
        return rc;
    if (!json_object_get(v, "name"))
        return s_fail(x, path, false, "name: is required");
    s_path(p, "%s.name", path);
    if ((rc = s_label(x, json_object_get(v, "name"), p, &out->name)))
        return rc;
    const json_t *nss = json_object_get(v, "namespaces");
    s_path(p, "%s.namespaces", path);
    if (nss && !json_is_null(nss)) {
        if (!json_is_array(nss))
            return s_fail(x, p, false, "must be a list of namespaces");
        size_t n = json_array_size(nss);
        if (*nns + n > FEDCFG_MAX_NAMESPACES)
            return s_fail(x, p, false, "at most %d namespaces over all queues",
                          FEDCFG_MAX_NAMESPACES);
        out->namespaces = calloc(n ? n : 1, sizeof(char *));
        if (!out->namespaces)
            return ERR_NOMEM;
        for (size_t i = 0; i < n; i++) {
            char np[S_PATH_MAX];
            s_path(np, "%s[%zu]", p, i);
            if ((rc = s_label(x, json_array_get(nss, i), np, &out->namespaces[i])))
                return rc;
            out->nnamespaces++;
            const char *other = json_string_value(json_object_get(seen, out->namespaces[i]));
            if (other)
                return s_fail(x, np, false,
                              "namespace \"%s\" is already in queue \"%s\" (a namespace is in at "
                              "most one queue)",
                              out->namespaces[i], other);
            if (json_object_set_new(seen, out->namespaces[i], json_string(out->name)))
                return ERR_NOMEM;
        }
        *nns += n;
    }
    const json_t *w = json_object_get(v, "weight");
    s_path(p, "%s.weight", path);
    out->weight = 1;
    if (w && !json_is_null(w)) {
        if (!json_is_number(w))
            return s_fail(x, p, false, "must be a number");
        double d = json_number_value(w);
        if (!(d > 0) || !isfinite(d))
            return s_fail(x, p, false, "must be greater than 0");
        if (d > FEDCFG_MAX_WEIGHT)
            return s_fail(x, p, false, "must be at most %.0f", FEDCFG_MAX_WEIGHT);
        out->weight = d;
    }
    const json_t *cohort = json_object_get(v, "cohort");
    s_path(p, "%s.cohort", path);
    if (cohort && !json_is_null(cohort) && (rc = s_label(x, cohort, p, &out->cohort)))
        return rc;
    s_path(p, "%s.quota", path);
    if ((rc = s_quota(x, json_object_get(v, "quota"), p, &out->quota)))
        return rc;
    const json_t *bl = json_object_get(v, "borrowingLimit");
    s_path(p, "%s.borrowingLimit", path);
    if (bl && !json_is_null(bl) && !out->cohort)
        return s_fail(x, p, false,
                      "needs a cohort (a queue borrows from its cohort's unused quota)");
    if ((rc = s_quota(x, bl, p, &out->borrowing_limit)))
        return rc;
    for (int i = 0; i < FLEET_RES_N; i++) {
        if (!out->cohort) {
            out->borrowing_limit.v[i] = 0;
        } else if (out->borrowing_limit.v[i] != FEDCFG_UNLIMITED &&
                   out->quota.v[i] == FEDCFG_UNLIMITED) {
            char dp[S_PATH_MAX];
            s_path(dp, "%s.%s", p, fleet_res_name((fleet_resname_t)i));
            return s_fail(x, dp, false, "needs a quota for %s (its nominal quota is unlimited)",
                          fleet_res_name((fleet_resname_t)i));
        }
    }
    return 0;
}

static int s_members(const s_ctx_t *x, const json_t *v, fedcfg_t *c)
{
    const char *path = "federation.members";
    if (!v || json_is_null(v))
        return s_fail(x, path, false, "is required (at least one member cluster)");
    if (!json_is_array(v))
        return s_fail(x, path, false, "must be a list of member clusters");
    size_t n = json_array_size(v);
    if (n == 0)
        return s_fail(x, path, false, "must name at least one member cluster");
    if (n > FEDCFG_MAX_MEMBERS)
        return s_fail(x, path, false, "at most %d members", FEDCFG_MAX_MEMBERS);
    c->members = calloc(n, sizeof(*c->members));
    if (!c->members)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char p[S_PATH_MAX], np[S_PATH_MAX];
        s_path(p, "%s[%zu]", path, i);
        fedcfg_cluster_t *m = &c->members[i];
        c->nmembers++;
        int rc = s_cluster(x, json_array_get(v, i), p, true, m);
        if (rc)
            return rc;
        s_path(np, "%s.name", p);
        if (c->management.name && strcmp(m->name, c->management.name) == 0)
            return s_fail(x, np, false, "\"%s\" is the management cluster's name", m->name);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->members[j].name, m->name) == 0)
                return s_fail(x, np, false, "\"%s\" is already the name of members[%zu]", m->name,
                              j);
        }
    }
    return 0;
}

static int s_priorities(const s_ctx_t *x, const json_t *v, fedcfg_t *c)
{
    const char *path = "federation.priorities";
    if (!v || json_is_null(v))
        return 0;
    int rc = s_object(x, v, path);
    if (rc)
        return rc;
    size_t n = json_object_size(v);
    if (n > FEDCFG_MAX_PRIORITIES)
        return s_fail(x, path, false, "at most %d priority classes", FEDCFG_MAX_PRIORITIES);
    c->priorities = calloc(n ? n : 1, sizeof(*c->priorities));
    if (!c->priorities)
        return ERR_NOMEM;
    const char *k;
    json_t *pv;
    json_object_foreach((json_t *)v, k, pv)
    {
        char p[S_PATH_MAX];
        s_path(p, "%s.%s", path, k);
        buf_t e;
        buf_init(&e, 1024);
        int bad = validate_dns1123_label(k, &e, "; ");
        if (bad > 0)
            rc = s_fail(x, p, true, "name \"%s\": %s", k, s_trim(&e));
        buf_free(&e);
        if (rc)
            return rc;
        if (!json_is_integer(pv) || json_integer_value(pv) < INT32_MIN ||
            json_integer_value(pv) > INT32_MAX)
            return s_fail(x, p, false, "must be an integer between %d and %d", INT32_MIN,
                          INT32_MAX);
        fedcfg_priority_t *pr = &c->priorities[c->npriorities];
        if (!(pr->name = strdup(k)))
            return ERR_NOMEM;
        pr->value = (int32_t)json_integer_value(pv);
        c->npriorities++;
    }
    return 0;
}

static int s_queues(const s_ctx_t *x, const json_t *v, fedcfg_t *c)
{
    const char *path = "federation.queues";
    size_t n = 0;
    if (v && !json_is_null(v)) {
        if (!json_is_array(v))
            return s_fail(x, path, false, "must be a list of queues");
        n = json_array_size(v);
        if (n > FEDCFG_MAX_QUEUES)
            return s_fail(x, path, false, "at most %d queues", FEDCFG_MAX_QUEUES);
    }
    c->queues = calloc(n + 1, sizeof(*c->queues));
    json_t *seen = json_object();
    int rc = c->queues && seen ? 0 : ERR_NOMEM;
    size_t nns = 0;
    bool has_default = false;
    for (size_t i = 0; !rc && i < n; i++) {
        char p[S_PATH_MAX];
        s_path(p, "%s[%zu]", path, i);
        fedcfg_queue_t *q = &c->queues[i];
        c->nqueues++;
        rc = s_queue(x, json_array_get(v, i), p, seen, &nns, q);
        for (size_t j = 0; !rc && j < i; j++) {
            if (strcmp(c->queues[j].name, q->name) == 0) {
                char np[S_PATH_MAX];
                s_path(np, "%s.name", p);
                rc = s_fail(x, np, false, "\"%s\" is already the name of queues[%zu]", q->name, j);
            }
        }
        if (!rc && strcmp(q->name, FEDCFG_DEFAULT_QUEUE) == 0)
            has_default = true;
    }
    json_decref(seen);
    if (rc || has_default)
        return rc;
    fedcfg_queue_t *d = &c->queues[c->nqueues++];
    d->implicit = true;
    d->weight = 1;
    for (int i = 0; i < FLEET_RES_N; i++)
        d->quota.v[i] = FEDCFG_UNLIMITED;
    return (d->name = strdup(FEDCFG_DEFAULT_QUEUE)) ? 0 : ERR_NOMEM;
}

int fedcfg_parse(const json_t *federation, const json_t *marks, const char *file, fedcfg_t *out,
                 buf_t *err)
{
    static const char *const keys[] = {"management", "members", "placement",
                                       "priorities", "queues",  NULL};
    static const char *const pkeys[] = {"strategy", NULL};
    if (!out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    s_ctx_t x = {.marks = json_is_object(marks) ? marks : NULL, .file = file, .err = err};
    int rc = s_object(&x, federation, "federation");
    if (!rc)
        rc = s_keys(&x, federation, "federation", keys,
                    "management, members, placement, priorities, queues");
    if (rc)
        return rc;
    const json_t *mg = json_object_get(federation, "management");
    if (!mg || json_is_null(mg))
        return s_fail(&x, "federation.management", false,
                      "is required (the cluster users apply their objects to)");
    if ((rc = s_cluster(&x, mg, "federation.management", false, &out->management)))
        return rc;
    if ((rc = s_members(&x, json_object_get(federation, "members"), out)))
        return rc;
    const json_t *pl = json_object_get(federation, "placement");
    if (pl && !json_is_null(pl)) {
        if ((rc = s_object(&x, pl, "federation.placement")) ||
            (rc = s_keys(&x, pl, "federation.placement", pkeys, "strategy")))
            return rc;
        const json_t *st = json_object_get(pl, "strategy");
        const char *s = json_string_value(st);
        if (st && !json_is_null(st)) {
            if (!s || fleet_strategy_parse(s, &out->strategy) != 0)
                return s_fail(&x, "federation.placement.strategy", false, "must be spread or pack");
        }
    }
    if ((rc = s_priorities(&x, json_object_get(federation, "priorities"), out)))
        return rc;
    return s_queues(&x, json_object_get(federation, "queues"), out);
}

static void s_cluster_free(fedcfg_cluster_t *m)
{
    free(m->name);
    free(m->context);
    free(m->kubeconfig);
    json_decref(m->labels);
}

void fedcfg_free(fedcfg_t *c)
{
    if (!c)
        return;
    s_cluster_free(&c->management);
    for (size_t i = 0; i < c->nmembers; i++)
        s_cluster_free(&c->members[i]);
    free(c->members);
    for (size_t i = 0; i < c->npriorities; i++)
        free(c->priorities[i].name);
    free(c->priorities);
    for (size_t i = 0; i < c->nqueues; i++) {
        fedcfg_queue_t *q = &c->queues[i];
        free(q->name);
        for (size_t j = 0; j < q->nnamespaces; j++)
            free(q->namespaces[j]);
        free(q->namespaces);
        free(q->cohort);
    }
    free(c->queues);
    memset(c, 0, sizeof(*c));
}

const fedcfg_cluster_t *fedcfg_member(const fedcfg_t *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->nmembers; i++) {
        if (strcmp(c->members[i].name, name) == 0)
            return &c->members[i];
    }
    return NULL;
}

static bool s_queue_named(const fedcfg_t *c, const char *name, size_t *idx)
{
    for (size_t i = 0; i < c->nqueues; i++) {
        if (strcmp(c->queues[i].name, name) == 0) {
            *idx = i;
            return true;
        }
    }
    return false;
}

int fedcfg_queue_of(const fedcfg_t *c, const char *ns, const json_t *labels, size_t *idx,
                    buf_t *err)
{
    if (!c || !idx)
        return ERR_INVAL;
    const char *named = json_string_value(json_object_get(labels, FEDCFG_LABEL_QUEUE));
    if (named) {
        if (s_queue_named(c, named, idx))
            return 0;
        if (err)
            (void)buf_printf(err, "label %s: no queue named \"%s\"", FEDCFG_LABEL_QUEUE, named);
        return ERR_NOTFOUND;
    }
    for (size_t i = 0; ns && i < c->nqueues; i++) {
        for (size_t j = 0; j < c->queues[i].nnamespaces; j++) {
            if (strcmp(c->queues[i].namespaces[j], ns) == 0) {
                *idx = i;
                return 0;
            }
        }
    }
    return s_queue_named(c, FEDCFG_DEFAULT_QUEUE, idx) ? 0 : ERR_NOTFOUND;
}

int fedcfg_priority_of(const fedcfg_t *c, const json_t *labels, int32_t *out, buf_t *err)
{
    if (!c || !out)
        return ERR_INVAL;
    const char *named = json_string_value(json_object_get(labels, FEDCFG_LABEL_PRIORITY));
    const char *want = named ? named : FEDCFG_DEFAULT_PRIORITY;
    for (size_t i = 0; i < c->npriorities; i++) {
        if (strcmp(c->priorities[i].name, want) == 0) {
            *out = c->priorities[i].value;
            return 0;
        }
    }
    *out = 0;
    if (!named)
        return 0;
    if (err)
        (void)buf_printf(err, "label %s: no priority class named \"%s\"", FEDCFG_LABEL_PRIORITY,
                         named);
    return ERR_NOTFOUND;
}

int fedcfg_load(const char *path, fedcfg_t *out, buf_t *err)
{
    if (!out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (!path)
        return ERR_INVAL;
    json_t *docs = NULL, *marks = NULL;
    int rc = yaml_load_file_marks(path, FEDCFG_MAX_FILE, &docs, &marks, err);
    if (rc == 0) {
        rc = fedcfg_parse(json_object_get(json_array_get(docs, 0), "federation"), marks, path, out,
                          err);
        if (rc == 0 && out->nmembers == 0) {
            (void)buf_printf(err, "%s: federation.members: must be a non-empty list", path);
            rc = ERR_INVAL;
        }
    }
    json_decref(docs);
    json_decref(marks);
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* Parses `yaml` (a document with a `federation:` key) into *c; the error text into `err`. */
static int s_try(const char *yaml, fedcfg_t *c, buf_t *err)
{
    json_t *docs = NULL, *marks = NULL;
    buf_reset(err);
    int rc = yaml_load_buf_marks(yaml, strlen(yaml), "set.yaml", &docs, &marks, err);
    if (!rc)
        rc = fedcfg_parse(json_object_get(json_array_get(docs, 0), "federation"), marks, "set.yaml",
                          c, err);
    json_decref(docs);
    json_decref(marks);
    return rc;
}

/* A document whose federation is the base with `queues` (YAML text) in place of its queues. */
#define S_BASE                                                                                     \
    "federation:\n"                                                                                \
    "  management: {name: management}\n"                                                           \
    "  members:\n"                                                                                 \
    "    - {name: member-1, context: ctx-1, labels: {region: us-east}}\n"                          \
    "    - {name: member-2, kubeconfig: /etc/m2.yaml}\n"

/* Expects `yaml` to fail with an error containing `want`. */
static int s_bad(const char *yaml, const char *want, bool verbose)
{
    int failed = 0;
    fedcfg_t c;
    buf_t err;
    buf_init(&err, 4096);
    int rc = s_try(yaml, &c, &err);
    CHECK(rc == ERR_INVAL);
    if (!strstr(buf_str(&err), want)) {
        printf("fedcfg: want \"%s\", got \"%s\"\n", want, buf_str(&err));
        failed++;
    } else if (verbose) {
        printf("  %s\n", buf_str(&err));
    }
    fedcfg_free(&c);
    buf_free(&err);
    return failed;
}

int fedcfg_test(bool verbose)
{
    int failed = 0;
    buf_t err;
    buf_init(&err, 4096);
    fedcfg_t c;
    /* the design's example */
    const char *ok = "federation:\n"
                     "  management: {name: management, context: management}\n"
                     "  members:\n"
                     "    - name: member-1\n"
                     "      context: member-1\n"
                     "      labels: {region: us-east, accelerator: a100}\n"
                     "    - name: member-2\n"
                     "      kubeconfig: /etc/rayfleet/member-2.yaml\n"
                     "  placement:\n"
                     "    strategy: pack\n"
                     "  priorities: {high: 1000, default: 0, low: -100}\n"
                     "  queues:\n"
                     "    - name: team-a\n"
                     "      namespaces: [team-a, team-a-dev]\n"
                     "      weight: 1\n"
                     "      cohort: research\n"
                     "      quota: {cpu: 64, memory: 256Gi, gpu: 8}\n"
                     "      borrowingLimit: {cpu: 32}\n"
                     "    - name: team-b\n"
                     "      namespaces: [team-b]\n"
                     "      weight: 2.5\n";
    CHECK(s_try(ok, &c, &err) == 0);
    if (verbose && buf_str(&err)[0])
        printf("  %s\n", buf_str(&err));
    CHECK(c.nmembers == 2 && strcmp(c.members[0].name, "member-1") == 0);
    CHECK(strcmp(c.members[1].context, "member-2") == 0); /* context defaults to the name */
    CHECK(c.members[1].kubeconfig &&
          strcmp(c.members[1].kubeconfig, "/etc/rayfleet/member-2.yaml") == 0);
    CHECK(strcmp(json_string_value(json_object_get(c.members[0].labels, "accelerator")), "a100") ==
          0);
    CHECK(json_object_size(c.members[1].labels) == 0);
    CHECK(fedcfg_member(&c, "member-2") == &c.members[1] && !fedcfg_member(&c, "nope"));
    CHECK(strcmp(c.management.name, "management") == 0 && !c.management.kubeconfig);
    CHECK(c.strategy == FLEET_PACK && strcmp(fleet_strategy_name(c.strategy), "pack") == 0);
    CHECK(c.npriorities == 3);
    CHECK(c.nqueues == 3 && c.queues[2].implicit && strcmp(c.queues[2].name, "default") == 0);
    const fedcfg_queue_t *qa = &c.queues[0];
    CHECK(qa->weight == 1 && strcmp(qa->cohort, "research") == 0 && qa->nnamespaces == 2);
    CHECK(qa->quota.v[FLEET_RES_CPU] == 64000 && qa->quota.v[FLEET_RES_MEMORY] == 256LL << 30);
    CHECK(qa->quota.v[FLEET_RES_GPU] == 8 && qa->quota.v[FLEET_RES_PODS] == FEDCFG_UNLIMITED);
    CHECK(qa->borrowing_limit.v[FLEET_RES_CPU] == 32000);
    CHECK(qa->borrowing_limit.v[FLEET_RES_MEMORY] == FEDCFG_UNLIMITED);
    CHECK(c.queues[1].weight == 2.5 && !c.queues[1].cohort);
    CHECK(c.queues[1].quota.v[FLEET_RES_CPU] == FEDCFG_UNLIMITED);
    CHECK(c.queues[1].borrowing_limit.v[FLEET_RES_CPU] == 0); /* no cohort: no borrowing */
    /* queue and priority of an object */
    size_t qi = 99;
    json_t *lab = json_pack("{s:s}", FEDCFG_LABEL_QUEUE, "team-b");
    CHECK(fedcfg_queue_of(&c, "team-a", lab, &qi, &err) == 0 && qi == 1); /* the label wins */
    CHECK(fedcfg_queue_of(&c, "team-a-dev", NULL, &qi, &err) == 0 && qi == 0);
    CHECK(fedcfg_queue_of(&c, "elsewhere", NULL, &qi, &err) == 0 && qi == 2);
    json_object_set_new(lab, FEDCFG_LABEL_QUEUE, json_string("team-z"));
    buf_reset(&err);
    CHECK(fedcfg_queue_of(&c, "team-a", lab, &qi, &err) == ERR_NOTFOUND &&
          strstr(buf_str(&err), "\"team-z\""));
    json_decref(lab);
    int32_t pr = 7;
    CHECK(fedcfg_priority_of(&c, NULL, &pr, &err) == 0 && pr == 0);
    lab = json_pack("{s:s}", FEDCFG_LABEL_PRIORITY, "high");
    CHECK(fedcfg_priority_of(&c, lab, &pr, &err) == 0 && pr == 1000);
    json_object_set_new(lab, FEDCFG_LABEL_PRIORITY, json_string("urgent"));
    CHECK(fedcfg_priority_of(&c, lab, &pr, &err) == ERR_NOTFOUND && pr == 0);
    json_decref(lab);
    fedcfg_free(&c);
    fedcfg_free(&c); /* idempotent */
    /* the shape `rayfleetctl up --sim --members N` writes (STATE/federation.yaml) */
    CHECK(s_try("federation:\n  management: {name: management, context: management, "
                "kubeconfig: \"/s/kubeconfig\"}\n  members:\n    - name: member-1\n"
                "      context: member-1\n      kubeconfig: \"/s/kubeconfig\"\n"
                "      labels: {sim.rayfleet.io/nodes: \"4\"}\n",
                &c, &err) == 0);
    CHECK(c.nmembers == 1 && c.nqueues == 1 && c.queues[0].implicit);
    CHECK(strcmp(json_string_value(json_object_get(c.members[0].labels, "sim.rayfleet.io/nodes")),
                 "4") == 0);
    fedcfg_free(&c);
    /* a declared "default" queue is used as it is; no priorities: 0 */
    CHECK(s_try(S_BASE "  queues: [{name: default, weight: 3}]\n", &c, &err) == 0);
    CHECK(c.nqueues == 1 && !c.queues[0].implicit && c.queues[0].weight == 3);
    CHECK(fedcfg_queue_of(&c, "x", NULL, &qi, &err) == 0 && qi == 0);
    CHECK(c.strategy == FLEET_SPREAD);
    fedcfg_free(&c);

    /* every rule, by its message and position */
    failed +=
        s_bad(S_BASE "  queues:\n    - {name: a}\n    - {name: b}\n    - {name: c, weight: 0}\n",
              "set.yaml:9:25: federation.queues[2].weight: must be greater than 0", verbose);
    failed += s_bad(S_BASE "  queues: [{name: a, weight: -1.5}]\n",
                    "federation.queues[0].weight: must be greater than 0", verbose);
    failed += s_bad(S_BASE "  queues: [{name: a, weight: lots}]\n",
                    "federation.queues[0].weight: must be a number", verbose);
    failed += s_bad(S_BASE "  queues: [{name: a, weight: 2000000}]\n",
                    "federation.queues[0].weight: must be at most 1000000", verbose);
    failed += s_bad(
        S_BASE "  queues: [{name: a, wieght: 2}]\n",
        "set.yaml:6:22: federation.queues[0].wieght: unknown key (want name, namespaces", verbose);
    failed +=
        s_bad(S_BASE "  queue: []\n", "federation.queue: unknown key (want management", verbose);
    failed += s_bad(S_BASE "  queues: [{weight: 2}]\n", "federation.queues[0]: name: is required",
                    verbose);
    failed += s_bad(S_BASE "  queues: [{name: Team_A}]\n",
                    "federation.queues[0].name: \"Team_A\": a lowercase RFC 1123 label", verbose);
    failed += s_bad(S_BASE "  queues: [{name: a}, {name: a}]\n",
                    "federation.queues[1].name: \"a\" is already the name of queues[0]", verbose);
    failed +=
        s_bad(S_BASE "  queues: [{name: a, namespaces: [ns-x, ns-y]}, {name: b, namespaces: [ns-z, "
                     "ns-y]}]\n",
              "federation.queues[1].namespaces[1]: namespace \"ns-y\" is already in queue "
              "\"a\"",
              verbose);
    failed += s_bad(S_BASE "  queues: [{name: a, namespaces: [x, x]}]\n",
                    "federation.queues[0].namespaces[1]: namespace \"x\" is already in queue "
                    "\"a\"",
                    verbose);
    failed += s_bad(S_BASE "  queues: [{name: a, namespaces: team-a}]\n",
                    "federation.queues[0].namespaces: must be a list", verbose);
    failed += s_bad(S_BASE "  queues: [{name: a, quota: {cpus: 4}}]\n",
                    "federation.queues[0].quota: unknown resource \"cpus\"", verbose);
    failed += s_bad(S_BASE "  queues: [{name: a, quota: {cpu: -4}}]\n",
                    "federation.queues[0].quota: cpu: not a non-negative quantity", verbose);
    failed += s_bad(S_BASE "  queues: [{name: a, quota: {cpu: 4}, borrowingLimit: {cpu: 1}}]\n",
                    "federation.queues[0].borrowingLimit: needs a cohort", verbose);
    failed += s_bad(S_BASE "  queues: [{name: a, cohort: r, quota: {cpu: 4}, borrowingLimit: "
                           "{gpu: 1}}]\n",
                    "federation.queues[0].borrowingLimit.gpu: needs a quota for gpu", verbose);
    failed += s_bad(S_BASE "  queues: [{name: a, cohort: R}]\n",
                    "federation.queues[0].cohort: \"R\"", verbose);
    failed += s_bad(S_BASE "  queues: {name: a}\n", "federation.queues: must be a list", verbose);
    failed += s_bad(S_BASE "  priorities: {high: 1.5}\n",
                    "federation.priorities.high: must be an integer between -2147483648 and "
                    "2147483647",
                    verbose);
    failed += s_bad(S_BASE "  priorities: {high: 3000000000}\n",
                    "federation.priorities.high: must be an integer", verbose);
    failed += s_bad(S_BASE "  priorities: {High: 1}\n", "federation.priorities.High: name \"High\"",
                    verbose);
    failed += s_bad(S_BASE "  placement: {strategy: random}\n",
                    "federation.placement.strategy: must be spread or pack", verbose);
    failed += s_bad(S_BASE "  placement: {policy: spread}\n",
                    "federation.placement.policy: unknown key (want strategy)", verbose);
    failed += s_bad("federation:\n  members: [{name: m}]\n", "federation.management: is required",
                    verbose);
    failed += s_bad("federation:\n  management: {name: mg, labels: {a: b}}\n  members: [{name: "
                    "m}]\n",
                    "federation.management.labels: unknown key (want name, context, kubeconfig)",
                    verbose);
    failed += s_bad("federation:\n  management: {name: mg}\n", "federation.members: is required",
                    verbose);
    failed += s_bad("federation:\n  management: {name: mg}\n  members: []\n",
                    "federation.members: must name at least one member cluster", verbose);
    failed += s_bad("federation:\n  management: {name: mg}\n  members: [{name: m}, {name: m}]\n",
                    "federation.members[1].name: \"m\" is already the name of members[0]", verbose);
    failed += s_bad("federation:\n  management: {name: mg}\n  members: [{name: mg}]\n",
                    "federation.members[0].name: \"mg\" is the management cluster's name", verbose);
    failed += s_bad("federation:\n  management: {name: mg}\n  members: [{name: m, context: 3}]\n",
                    "federation.members[0].context: must be a non-empty string", verbose);
    failed += s_bad("federation:\n  management: {name: mg}\n  members: [{name: m, labels: {\"a "
                    "b\": x}}]\n",
                    "federation.members[0].labels.a b: key \"a b\"", verbose);
    failed += s_bad("federation:\n  management: {name: mg}\n  members: [{name: m, labels: {a: "
                    "\"x y\"}}]\n",
                    "federation.members[0].labels.a: \"x y\"", verbose);
    failed += s_bad("federation:\n  management: {name: mg}\n  members: [{name: m, zone: x}]\n",
                    "federation.members[0].zone: unknown key", verbose);
    failed += s_bad("federation: [a]\n", "federation: must be a mapping", verbose);
    /* bounds: 257 members, 1025 queues */
    buf_t big;
    buf_init(&big, 1u << 20);
    (void)buf_puts(&big, "federation:\n  management: {name: mg}\n  members:\n");
    for (int i = 0; i <= FEDCFG_MAX_MEMBERS; i++)
        (void)buf_printf(&big, "    - {name: m%d}\n", i);
    failed += s_bad(buf_str(&big), "federation.members: at most 256 members", verbose);
    buf_reset(&big);
    (void)buf_puts(&big, S_BASE "  queues:\n");
    for (int i = 0; i <= FEDCFG_MAX_QUEUES; i++)
        (void)buf_printf(&big, "    - {name: q%d}\n", i);
    failed += s_bad(buf_str(&big), "federation.queues: at most 1024 queues", verbose);
    /* 1024 queues and 256 members are fine */
    buf_reset(&big);
    (void)buf_puts(&big, "federation:\n  management: {name: mg}\n  members:\n");
    for (int i = 0; i < FEDCFG_MAX_MEMBERS; i++)
        (void)buf_printf(&big, "    - {name: m%d}\n", i);
    (void)buf_puts(&big, "  queues:\n");
    for (int i = 0; i < FEDCFG_MAX_QUEUES; i++)
        (void)buf_printf(&big, "    - {name: q%d, namespaces: [n%d]}\n", i, i);
    CHECK(s_try(buf_str(&big), &c, &err) == 0 && c.nmembers == 256 && c.nqueues == 1025);
    fedcfg_free(&c);
    buf_free(&big);
    /* without marks: the path alone */
    json_t *t = json_pack("{s:{s:s},s:[{s:s}],s:[{s:s,s:i}]}", "management", "name", "mg",
                          "members", "name", "m", "queues", "name", "a", "weight", 0);
    buf_reset(&err);
    CHECK(fedcfg_parse(t, NULL, NULL, &c, &err) == ERR_INVAL &&
          strcmp(buf_str(&err), "federation.queues[0].weight: must be greater than 0") == 0);
    fedcfg_free(&c);
    json_decref(t);
    buf_free(&err);
    return SELFTEST_RESULT("fedcfg", verbose);
}
#endif /* RF_SELFTEST */
