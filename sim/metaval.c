/*
 * metaval: object metadata validation as kube-apiserver does it. See metaval.h.
 *
 * Message sources (kube 1.32): k8s.io/apimachinery/pkg/util/validation/validation.go
 * (IsQualifiedName, IsValidLabelValue, IsDNS1123Label, IsDNS1123Subdomain, IsDNS1035Label,
 * IsConfigMapKey, RegexError, MaxLenError, EmptyError), .../api/validation/path
 * (IsValidPathSegmentName), .../api/validation/objectmeta.go (ValidateObjectMeta,
 * ValidateAnnotations, TotalAnnotationSizeLimitB, maskTrailingDash), and field.Error's
 * ErrorBody (`Invalid value: %q: <detail>`, `Too long: may not be more than N bytes`).
 */
#include "metaval.h"

#include "buf.h"
#include "err.h"
#include "json.h"
#include "quote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MSG_MAX ((size_t)4 << 20) /* one cause message (a value may be 256 KiB) */
#define S_ERRS_MAX 4 /* messages one predicate returns at most */

/* RegexError texts (note kube's ",  or " spacing). */
#define S_QNAME_FMT "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
#define S_QNAME_RE                                                                                 \
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "    \
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "         \
    "validation is '" S_QNAME_FMT "')"
#define S_QNAME_PARTS                                                                              \
    "a qualified name " S_QNAME_RE                                                                 \
    " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
#define S_LABEL_VALUE_RE                                                                           \
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "    \
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "             \
    "'my_value',  or '12345', regex used for validation is '(" S_QNAME_FMT ")?')"
#define S_DNS1035_RE                                                                               \
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "   \
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "           \
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
#define S_CMKEY_RE                                                                                 \
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "           \
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"

/* Up to S_ERRS_MAX messages of one predicate, each "<prefix><text>". */
typedef struct {
    const char *prefix[S_ERRS_MAX];
    const char *text[S_ERRS_MAX];
    char maxlen[S_ERRS_MAX][64];
    int n;
} errs_t;

static void s_err(errs_t *e, const char *prefix, const char *text)
{
    if (e->n < S_ERRS_MAX) {
        e->prefix[e->n] = prefix;
        e->text[e->n] = text;
        e->maxlen[e->n][0] = '\0';
        e->n++;
    }
}

static void s_err_maxlen(errs_t *e, const char *prefix, size_t max)
{
    if (e->n < S_ERRS_MAX) {
        snprintf(e->maxlen[e->n], sizeof(e->maxlen[e->n]), "must be no more than %zu characters",
                 max);
        e->prefix[e->n] = prefix;
        e->text[e->n] = e->maxlen[e->n];
        e->n++;
    }
}

static bool s_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool s_alnum(char c)
{
    return s_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

bool metaval_dns1123_label(const char *p, size_t n)
{
    if (!p || n == 0 || !s_lower_alnum(p[0]) || !s_lower_alnum(p[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!s_lower_alnum(p[i]) && p[i] != '-')
            return false;
    return true;
}

bool metaval_dns1123_subdomain(const char *p, size_t n)
{
    if (!p || n == 0)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '.') {
            if (!metaval_dns1123_label(p + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

static bool s_dns1035(const char *p, size_t n)
{
    return n > 0 && p[0] >= 'a' && p[0] <= 'z' && metaval_dns1123_label(p, n);
}

static bool s_qname_re(const char *p, size_t n)
{
    if (n == 0 || !s_alnum(p[0]) || !s_alnum(p[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!s_alnum(p[i]) && p[i] != '-' && p[i] != '_' && p[i] != '.')
            return false;
    return true;
}

/* IsDNS1123Subdomain. */
static void s_is_subdomain(const char *p, size_t n, const char *prefix, errs_t *e)
{
    if (n > METAVAL_DNS1123_SUBDOMAIN_MAX)
        s_err_maxlen(e, prefix, METAVAL_DNS1123_SUBDOMAIN_MAX);
    if (!metaval_dns1123_subdomain(p, n))
        s_err(e, prefix, METAVAL_MSG_SUBDOMAIN);
}

/* IsQualifiedName. */
static void s_is_qname(const char *v, errs_t *e)
{
    const char *slash = strchr(v, '/');
    const char *name = v;
    if (slash) {
        if (strchr(slash + 1, '/')) {
            s_err(e, "", S_QNAME_PARTS);
            return;
        }
        size_t pl = (size_t)(slash - v);
        if (pl == 0)
            s_err(e, "prefix part ", "must be non-empty");
        else
            s_is_subdomain(v, pl, "prefix part ", e);
        name = slash + 1;
    }
    size_t n = strlen(name);
    if (n == 0)
        s_err(e, "name part ", "must be non-empty");
    else if (n > METAVAL_QNAME_MAX)
        s_err_maxlen(e, "name part ", METAVAL_QNAME_MAX);
    if (!s_qname_re(name, n))
        s_err(e, "name part ", S_QNAME_RE);
}

/* A name function of kube's (ValidateNameFunc) with `prefix` (generateName). */
typedef enum { NF_SUBDOMAIN = 0, NF_LABEL, NF_DNS1035, NF_PATHSEG } namefn_t;

static void s_is_name(namefn_t fn, const char *v, bool prefix, char *masked, size_t msize,
                      errs_t *e)
{
    size_t n = strlen(v);
    const char *p = v;
    if (prefix && fn != NF_PATHSEG && n > 1 && v[n - 1] == '-' && n + 1 <= msize) {
        /* maskTrailingDash: name[:len(name)-2] + "a" (sic) */
        memcpy(masked, v, n - 2);
        masked[n - 2] = 'a';
        masked[n - 1] = '\0';
        p = masked;
        n = n - 1;
    }
    switch (fn) {
    case NF_SUBDOMAIN:
        s_is_subdomain(p, n, "", e);
        break;
    case NF_LABEL:
        if (n > METAVAL_DNS1123_LABEL_MAX)
            s_err_maxlen(e, "", METAVAL_DNS1123_LABEL_MAX);
        if (!metaval_dns1123_label(p, n))
            s_err(e, "", METAVAL_MSG_LABEL);
        break;
    case NF_DNS1035:
        if (n > METAVAL_DNS1123_LABEL_MAX)
            s_err_maxlen(e, "", METAVAL_DNS1123_LABEL_MAX);
        if (!s_dns1035(p, n))
            s_err(e, "", S_DNS1035_RE);
        break;
    case NF_PATHSEG:
        if (!prefix && strcmp(v, ".") == 0) {
            s_err(e, "", "may not be '.'");
        } else if (!prefix && strcmp(v, "..") == 0) {
            s_err(e, "", "may not be '..'");
        } else {
            if (strchr(v, '/'))
                s_err(e, "", "may not contain '/'");
            if (strchr(v, '%'))
                s_err(e, "", "may not contain '%'");
        }
        break;
    }
}

/* IsConfigMapKey. */
static void s_is_cmkey(const char *v, errs_t *e)
{
    size_t n = strlen(v);
    if (n > METAVAL_DNS1123_SUBDOMAIN_MAX)
        s_err_maxlen(e, "", METAVAL_DNS1123_SUBDOMAIN_MAX);
    bool ok = n > 0;
    for (size_t i = 0; i < n && ok; i++)
        ok = s_alnum(v[i]) || v[i] == '-' || v[i] == '_' || v[i] == '.';
    if (!ok)
        s_err(e, "", S_CMKEY_RE);
    if (e->n == 0) {
        if (strcmp(v, ".") == 0)
            s_err(e, "", "must not be '.'");
        else if (strcmp(v, "..") == 0)
            s_err(e, "", "must not be '..'");
        else if (strncmp(v, "..", 2) == 0)
            s_err(e, "", "must not start with '..'");
    }
}

/* Appends one FieldValueInvalid cause per message of e: `Invalid value: %q: <msg>`. */
static int s_invalid(json_t *causes, const char *field, const char *value, const errs_t *e)
{
    int added = 0;
    for (int i = 0; i < e->n; i++) {
        buf_t m;
        buf_init(&m, S_MSG_MAX);
        int rc = buf_puts(&m, "Invalid value: ");
        if (!rc)
            rc = quote_go(&m, value);
        if (!rc)
            rc = buf_printf(&m, ": %s%s", e->prefix[i], e->text[i]);
        json_t *c = rc ? NULL
                       : json_pack("{s:s,s:s,s:s}", "reason", "FieldValueInvalid", "message",
                                   buf_str(&m), "field", field);
        buf_free(&m);
        if (!c || json_array_append_new(causes, c) != 0)
            return ERR_NOMEM;
        added++;
    }
    return added;
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of object o, sorted (a new array of borrowed strings; *n its length). */
static const char **s_keys(const json_t *o, size_t *n)
{
    *n = 0;
    size_t cap = json_object_size(o);
    const char **k = calloc(cap ? cap : 1, sizeof(*k));
    if (!k)
        return NULL;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        if (*n < cap)
            k[(*n)++] = key;
    }
    qsort(k, *n, sizeof(*k), s_cmp);
    return k;
}

static int s_labels(const json_t *labels, json_t *causes)
{
    size_t n;
    const char **keys = s_keys(labels, &n);
    if (!keys)
        return ERR_NOMEM;
    int added = 0;
    for (size_t i = 0; i < n && added >= 0; i++) {
        errs_t e = {0};
        s_is_qname(keys[i], &e);
        int rc = s_invalid(causes, "metadata.labels", keys[i], &e);
        added = rc < 0 ? rc : added + rc;
        const char *v = json_string_value(json_object_get(labels, keys[i]));
        if (!v || added < 0)
            continue;
        errs_t ev = {0};
        size_t vl = strlen(v);
        if (vl > METAVAL_QNAME_MAX)
            s_err_maxlen(&ev, "", METAVAL_QNAME_MAX);
        if (vl > 0 && !s_qname_re(v, vl))
            s_err(&ev, "", S_LABEL_VALUE_RE);
        rc = s_invalid(causes, "metadata.labels", v, &ev);
        added = rc < 0 ? rc : added + rc;
    }
    free(keys);
    return added;
}

static int s_annotations(const json_t *ann, json_t *causes)
{
    size_t n;
    const char **keys = s_keys(ann, &n);
    if (!keys)
        return ERR_NOMEM;
    int added = 0;
    size_t total = 0;
    for (size_t i = 0; i < n && added >= 0; i++) {
        size_t kl = strlen(keys[i]);
        char *lower = malloc(kl + 1);
        if (!lower) {
            added = ERR_NOMEM;
            break;
        }
        for (size_t j = 0; j <= kl; j++)
            lower[j] =
                keys[i][j] >= 'A' && keys[i][j] <= 'Z' ? (char)(keys[i][j] + 32) : keys[i][j];
        errs_t e = {0};
        s_is_qname(lower, &e);
        free(lower);
        int rc = s_invalid(causes, "metadata.annotations", keys[i], &e);
        added = rc < 0 ? rc : added + rc;
        const char *v = json_string_value(json_object_get(ann, keys[i]));
        total += kl + (v ? strlen(v) : 0);
    }
    free(keys);
    if (added >= 0 && total > METAVAL_ANNOTATIONS_MAX) {
        char msg[80];
        snprintf(msg, sizeof(msg), "Too long: may not be more than %d bytes",
                 METAVAL_ANNOTATIONS_MAX);
        json_t *c = json_pack("{s:s,s:s,s:s}", "reason", "FieldValueTooLong", "message", msg,
                              "field", "metadata.annotations");
        if (!c || json_array_append_new(causes, c) != 0)
            return ERR_NOMEM;
        added++;
    }
    return added;
}

/* ConfigMap / Secret data keys under `member` (field "<member>[<key>]"). */
static int s_data_keys(const json_t *data, const char *member, json_t *causes)
{
    size_t n;
    const char **keys = s_keys(data, &n);
    if (!keys)
        return ERR_NOMEM;
    int added = 0;
    for (size_t i = 0; i < n && added >= 0; i++) {
        errs_t e = {0};
        s_is_cmkey(keys[i], &e);
        if (e.n == 0)
            continue;
        buf_t f;
        buf_init(&f, S_MSG_MAX);
        int rc = buf_printf(&f, "%s[", member);
        if (!rc)
            rc = buf_puts(&f, keys[i]);
        if (!rc)
            rc = buf_puts(&f, "]");
        rc = rc ? ERR_NOMEM : s_invalid(causes, buf_str(&f), keys[i], &e);
        buf_free(&f);
        added = rc < 0 ? rc : added + rc;
    }
    free(keys);
    return added;
}

static namefn_t s_namefn(const char *group, const char *resource)
{
    if (strcmp(group, "rbac.authorization.k8s.io") == 0)
        return NF_PATHSEG;
    if (!*group && strcmp(resource, "namespaces") == 0)
        return NF_LABEL;
    if (!*group && strcmp(resource, "services") == 0)
        return NF_DNS1035;
    return NF_SUBDOMAIN;
}

/* The kube finalizer rule of the built-in kinds (pkg/apis/core/validation
 * validateKubeFinalizerName): a name without '/' must be a standard one. */
static int s_kube_finalizers(const json_t *fins, json_t *causes)
{
    int added = 0;
    size_t i;
    json_t *f;
    json_array_foreach(fins, i, f)
    {
        const char *v = json_string_value(f);
        if (!v || strchr(v, '/') || strcmp(v, "kubernetes") == 0 || strcmp(v, "orphan") == 0 ||
            strcmp(v, "foregroundDeletion") == 0)
            continue;
        char field[64];
        snprintf(field, sizeof(field), "metadata.finalizers[%zu]", i);
        errs_t e = {0};
        s_err(&e, "", "name is neither a standard finalizer name nor is it fully qualified");
        int rc = s_invalid(causes, field, v, &e);
        if (rc < 0)
            return rc;
        added += rc;
    }
    return added;
}

/* ValidateFinalizers' `orphan` + `foregroundDeletion` rule; the value printed as Go's %#v of a
 * []string. */
static int s_fin_both(const json_t *fins, json_t *causes)
{
    bool orphan = false, fg = false;
    size_t i;
    json_t *f;
    json_array_foreach(fins, i, f)
    {
        orphan = orphan || (json_is_string(f) && strcmp(json_string_value(f), "orphan") == 0);
        fg = fg || (json_is_string(f) && strcmp(json_string_value(f), "foregroundDeletion") == 0);
    }
    if (!orphan || !fg)
        return 0;
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    int rc = buf_puts(&m, "Invalid value: []string{");
    json_array_foreach(fins, i, f)
    {
        if (!rc && i)
            rc = buf_puts(&m, ", ");
        if (!rc)
            rc = quote_go(&m, json_is_string(f) ? json_string_value(f) : "");
    }
    if (!rc)
        rc = buf_puts(&m, "}: finalizer orphan and foregroundDeletion cannot be both set");
    json_t *c = rc ? NULL
                   : json_pack("{s:s,s:s,s:s}", "reason", "FieldValueInvalid", "message",
                               buf_str(&m), "field", "metadata.finalizers");
    buf_free(&m);
    if (!c || json_array_append_new(causes, c) != 0)
        return ERR_NOMEM;
    return 1;
}

int metaval_check(const char *group, const char *resource, const json_t *obj, bool create,
                  bool builtin, json_t *causes)
{
    if (!group)
        group = "";
    if (!resource || !json_is_object(obj) || !json_is_array(causes))
        return 0;
    const json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta))
        return 0;
    int added = 0, rc;
    namefn_t fn = s_namefn(group, resource);
    const char *gen = json_string_value(json_object_get(meta, "generateName"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (create && gen && *gen) {
        errs_t e = {0};
        size_t gl = strlen(gen);
        char *masked = malloc(gl + 1);
        if (!masked)
            return ERR_NOMEM;
        s_is_name(fn, gen, true, masked, gl + 1, &e);
        rc = s_invalid(causes, "metadata.generateName", gen, &e);
        free(masked);
        if (rc < 0)
            return rc;
        added += rc;
    }
    if (create && name && *name) {
        errs_t e = {0};
        s_is_name(fn, name, false, NULL, 0, &e);
        if ((rc = s_invalid(causes, "metadata.name", name, &e)) < 0)
            return rc;
        added += rc;
    }
    const json_t *labels = json_object_get(meta, "labels");
    if (json_is_object(labels)) {
        if ((rc = s_labels(labels, causes)) < 0)
            return rc;
        added += rc;
    }
    const json_t *ann = json_object_get(meta, "annotations");
    if (json_is_object(ann)) {
        if ((rc = s_annotations(ann, causes)) < 0)
            return rc;
        added += rc;
    }
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(meta, "finalizers"), i, f)
    {
        if (!json_is_string(f))
            continue;
        errs_t e = {0};
        s_is_qname(json_string_value(f), &e);
        if ((rc = s_invalid(causes, "metadata.finalizers", json_string_value(f), &e)) < 0)
            return rc;
        added += rc;
    }
    if ((rc = s_fin_both(json_object_get(meta, "finalizers"), causes)) < 0)
        return rc;
    added += rc;
    if (builtin) {
        if ((rc = s_kube_finalizers(json_object_get(meta, "finalizers"), causes)) < 0)
            return rc;
        added += rc;
    }
    if (!*group && (strcmp(resource, "configmaps") == 0 || strcmp(resource, "secrets") == 0)) {
        static const char *const members[][2] = {
            {"data", "data"}, {"binaryData", "binaryData"}, {"stringData", "data"}};
        for (size_t m = 0; m < sizeof(members) / sizeof(members[0]); m++) {
            const json_t *d = json_object_get(obj, members[m][0]);
            if (!json_is_object(d))
                continue;
            if ((rc = s_data_keys(d, members[m][1], causes)) < 0)
                return rc;
            added += rc;
        }
    }
    return added;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* Checks obj (JSON text) against the expected "<field>: <message>" causes joined by " | ". */
static bool s_t(const char *group, const char *resource, const char *objtext, bool create,
                const char *want)
{
    json_t *obj = json_loads(objtext, 0, NULL);
    json_t *causes = json_array();
    int n = metaval_check(group, resource, obj, create, !strstr(group, "."), causes);
    buf_t got;
    buf_init(&got, 1 << 22);
    size_t i;
    json_t *c;
    json_array_foreach(causes, i, c)
    {
        buf_printf(&got, "%s", i ? " | " : "");
        buf_puts(&got, jx_str(c, "field", ""));
        buf_puts(&got, ": ");
        buf_puts(&got, jx_str(c, "message", ""));
    }
    bool ok = obj && n == (int)json_array_size(causes) && strcmp(buf_str(&got), want) == 0;
    if (!ok)
        printf("metaval: %s\n  got:  %s\n  want: %s\n", objtext, buf_str(&got), want);
    buf_free(&got);
    json_decref(causes);
    json_decref(obj);
    return ok;
}

/* A sample document's metadata (and a Service's name rule) passes. */
static int s_t_sample(const char *file, json_t *doc, void *arg)
{
    (void)arg;
    json_t *c = json_array();
    const char *kind = jx_str(doc, "kind", "");
    int n =
        metaval_check("", strcmp(kind, "Service") == 0 ? "services" : "other", doc, true, true, c);
    if (n != 0) {
        char *t = json_dumps(c, 0);
        printf("metaval: %s: %s\n", file, t ? t : "?");
        free(t);
    }
    json_decref(c);
    return n != 0;
}

#define QRE                                                                                        \
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "    \
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "         \
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"

int metaval_test(bool verbose)
{
    int failed = 0;
    /* Valid metadata of every shape: no cause. */
    CHECK(s_t("", "pods",
              "{\"metadata\":{\"name\":\"demo-head-x.y\",\"labels\":{\"ray.io/node-type\":\"head\","
              "\"a\":\"\",\"A_b.c-D\":\"My_value.1\"},\"annotations\":{\"Example.COM/Key\":\"x\"},"
              "\"finalizers\":[\"ray.io/gcs-ft-redis-cleanup-finalizer\",\"kubernetes\"]}}",
              true, ""));
    /* Label keys: the brief's `bad key!`, prefix problems, too many slashes, too long. */
    CHECK(s_t("", "pods", "{\"metadata\":{\"name\":\"p\",\"labels\":{\"bad key!\":\"v\"}}}", true,
              "metadata.labels: Invalid value: \"bad key!\": name part " QRE));
    CHECK(s_t("", "pods", "{\"metadata\":{\"labels\":{\"/x\":\"v\"}}}", true,
              "metadata.labels: Invalid value: \"/x\": prefix part must be non-empty"));
    CHECK(s_t("", "pods", "{\"metadata\":{\"labels\":{\"Ex.com/x\":\"v\"}}}", true,
              "metadata.labels: Invalid value: \"Ex.com/x\": prefix part " METAVAL_MSG_SUBDOMAIN));
    CHECK(s_t("", "pods", "{\"metadata\":{\"labels\":{\"a/b/c\":\"v\"}}}", true,
              "metadata.labels: Invalid value: \"a/b/c\": a qualified name " QRE
              " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
    CHECK(s_t("", "pods", "{\"metadata\":{\"labels\":{\"x/\":\"v\"}}}", true,
              "metadata.labels: Invalid value: \"x/\": name part must be non-empty | "
              "metadata.labels: Invalid value: \"x/\": name part " QRE));
    {
        char key[80], obj[256], want[512];
        memset(key, 'k', 64);
        key[64] = '\0';
        snprintf(obj, sizeof(obj), "{\"metadata\":{\"labels\":{\"%s\":\"v\"}}}", key);
        snprintf(want, sizeof(want),
                 "metadata.labels: Invalid value: \"%s\": name part must be no more than 63 "
                 "characters",
                 key);
        CHECK(s_t("", "pods", obj, true, want));
    }
    /* Label values: 10,000 characters (two causes: length and, with a space, the pattern). */
    {
        size_t n = 10000;
        char *v = malloc(n + 1), *obj = malloc(n + 128), *want = malloc(2 * n + 1024);
        memset(v, 'v', n);
        v[n] = '\0';
        snprintf(obj, n + 128, "{\"metadata\":{\"labels\":{\"k\":\"%s\"}}}", v);
        snprintf(want, 2 * n + 1024,
                 "metadata.labels: Invalid value: \"%s\": must be no more than 63 characters", v);
        CHECK(s_t("", "pods", obj, true, want));
        v[5] = ' ';
        snprintf(obj, n + 128, "{\"metadata\":{\"labels\":{\"k\":\"%s\"}}}", v);
        snprintf(want, 2 * n + 1024,
                 "metadata.labels: Invalid value: \"%s\": must be no more than 63 characters | "
                 "metadata.labels: Invalid value: \"%s\": a valid label must be an empty string "
                 "or consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                 "with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
                 "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                 v, v);
        CHECK(s_t("", "pods", obj, true, want));
        free(v);
        free(obj);
        free(want);
    }
    CHECK(s_t("ray.io", "rayclusters", "{\"metadata\":{\"labels\":{\"k\":\"-x\"}}}", false,
              "metadata.labels: Invalid value: \"-x\": a valid label must be an empty string or "
              "consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
              "an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
              "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
    /* Go's %q of the value. */
    CHECK(s_t("", "pods", "{\"metadata\":{\"labels\":{\"a\\\"b\\n\":\"v\"}}}", true,
              "metadata.labels: Invalid value: \"a\\\"b\\n\": name part " QRE));
    /* Annotations: upper case allowed in the prefix (lower-cased first), the value shown as
     * sent; the total size bound. */
    CHECK(s_t("", "configmaps", "{\"metadata\":{\"annotations\":{\"Bad Key\":\"v\"}}}", false,
              "metadata.annotations: Invalid value: \"Bad Key\": name part " QRE));
    {
        size_t n = METAVAL_ANNOTATIONS_MAX;
        char *v = malloc(n + 1), *obj = malloc(n + 128);
        memset(v, 'a', n);
        v[n] = '\0';
        snprintf(obj, n + 128, "{\"metadata\":{\"annotations\":{\"k\":\"%s\"}}}", v + 1);
        CHECK(s_t("", "pods", obj, true, "")); /* 1 + 262143: at the limit */
        snprintf(obj, n + 128, "{\"metadata\":{\"annotations\":{\"k\":\"%s\"}}}", v);
        CHECK(s_t("", "pods", obj, true,
                  "metadata.annotations: Too long: may not be more than 262144 bytes"));
        free(v);
        free(obj);
    }
    /* Finalizers. */
    CHECK(s_t("ray.io", "rayjobs", "{\"metadata\":{\"finalizers\":[\"ray.io/ok\",\"bad/fin/x\"]}}",
              false,
              "metadata.finalizers: Invalid value: \"bad/fin/x\": a qualified name " QRE
              " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
    /* Built-in kinds: a finalizer without '/' must be a standard one; orphan + foreground. */
    CHECK(s_t("", "pods", "{\"metadata\":{\"finalizers\":[\"kubernetes\",\"mine\"]}}", false,
              "metadata.finalizers[1]: Invalid value: \"mine\": name is neither a standard "
              "finalizer name nor is it fully qualified"));
    CHECK(s_t("ray.io", "rayclusters", "{\"metadata\":{\"finalizers\":[\"mine\"]}}", false, ""));
    CHECK(
        s_t("ray.io", "rayclusters",
            "{\"metadata\":{\"finalizers\":[\"orphan\",\"x/y\",\"foregroundDeletion\"]}}", false,
            "metadata.finalizers: Invalid value: []string{\"orphan\", \"x/y\", "
            "\"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set"));
    /* Names per kind: subdomain (pods, custom resources), label (namespaces), DNS-1035
     * (services), path segments (RBAC); both causes when too long and malformed. */
    CHECK(s_t("", "pods", "{\"metadata\":{\"name\":\"Demo\"}}", true,
              "metadata.name: Invalid value: \"Demo\": " METAVAL_MSG_SUBDOMAIN));
    CHECK(s_t("", "pods", "{\"metadata\":{\"name\":\"Demo\"}}", false, ""));
    CHECK(s_t("ray.io", "rayclusters", "{\"metadata\":{\"name\":\"a_b\"}}", true,
              "metadata.name: Invalid value: \"a_b\": " METAVAL_MSG_SUBDOMAIN));
    CHECK(s_t("", "namespaces", "{\"metadata\":{\"name\":\"team.a\"}}", true,
              "metadata.name: Invalid value: \"team.a\": " METAVAL_MSG_LABEL));
    CHECK(s_t("", "services", "{\"metadata\":{\"name\":\"1svc\"}}", true,
              "metadata.name: Invalid value: \"1svc\": " S_DNS1035_RE));
    CHECK(s_t("", "services", "{\"metadata\":{\"name\":\"svc-1\"}}", true, ""));
    CHECK(s_t("rbac.authorization.k8s.io", "clusterroles",
              "{\"metadata\":{\"name\":\"system:Aggregate_to-admin\"}}", true, ""));
    CHECK(s_t("rbac.authorization.k8s.io", "roles", "{\"metadata\":{\"name\":\"a/b%c\"}}", true,
              "metadata.name: Invalid value: \"a/b%c\": may not contain '/' | metadata.name: "
              "Invalid value: \"a/b%c\": may not contain '%'"));
    CHECK(s_t("rbac.authorization.k8s.io", "roles", "{\"metadata\":{\"name\":\"..\"}}", true,
              "metadata.name: Invalid value: \"..\": may not be '..'"));
    {
        char name[300], obj[400], want[1200];
        memset(name, 'a', 254);
        name[254] = '\0';
        snprintf(obj, sizeof(obj), "{\"metadata\":{\"name\":\"%s\"}}", name);
        snprintf(want, sizeof(want),
                 "metadata.name: Invalid value: \"%s\": must be no more than 253 characters", name);
        CHECK(s_t("", "pods", obj, true, want));
        name[253] = '_';
        snprintf(obj, sizeof(obj), "{\"metadata\":{\"name\":\"%s\"}}", name);
        snprintf(want, sizeof(want),
                 "metadata.name: Invalid value: \"%s\": must be no more than 253 characters | "
                 "metadata.name: Invalid value: \"%s\": " METAVAL_MSG_SUBDOMAIN,
                 name, name);
        CHECK(s_t("", "pods", obj, true, want));
        memset(name, 'n', 64);
        name[64] = '\0';
        snprintf(obj, sizeof(obj), "{\"metadata\":{\"name\":\"%s\"}}", name);
        snprintf(want, sizeof(want),
                 "metadata.name: Invalid value: \"%s\": must be no more than 63 characters", name);
        CHECK(s_t("", "namespaces", obj, true, want));
        CHECK(s_t("", "services", obj, true, want));
    }
    /* generateName: the trailing dash is masked; the rest must pass. */
    CHECK(s_t("", "pods", "{\"metadata\":{\"generateName\":\"demo-worker-\"}}", true, ""));
    CHECK(s_t("", "services", "{\"metadata\":{\"generateName\":\"1x-\"}}", true,
              "metadata.generateName: Invalid value: \"1x-\": " S_DNS1035_RE));
    CHECK(s_t("", "pods", "{\"metadata\":{\"generateName\":\"Up-\"}}", true,
              "metadata.generateName: Invalid value: \"Up-\": " METAVAL_MSG_SUBDOMAIN));
    CHECK(s_t("", "pods", "{\"metadata\":{\"generateName\":\"-\"}}", true,
              "metadata.generateName: Invalid value: \"-\": " METAVAL_MSG_SUBDOMAIN));
    /* ConfigMap and Secret keys. */
    CHECK(s_t("", "configmaps",
              "{\"metadata\":{\"name\":\"c\"},\"data\":{\"ok.key_1-A\":\"\",\"bad key\":\"\","
              "\"..x\":\"\"},\"binaryData\":{\".\":\"\"}}",
              true,
              "data[..x]: Invalid value: \"..x\": must not start with '..' | data[bad key]: "
              "Invalid value: \"bad key\": " S_CMKEY_RE " | binaryData[.]: Invalid value: \".\": "
              "must not be '.'"));
    CHECK(s_t("", "secrets", "{\"metadata\":{\"name\":\"s\"},\"stringData\":{\"a/b\":\"x\"}}", true,
              "data[a/b]: Invalid value: \"a/b\": " S_CMKEY_RE));
    /* Order: generateName, name, labels, annotations, finalizers. */
    CHECK(s_t("", "pods",
              "{\"metadata\":{\"name\":\"A\",\"generateName\":\"B\",\"labels\":{\"k\":\"-\"},"
              "\"annotations\":{\"?\":\"\"},\"finalizers\":[\"!\"]}}",
              true,
              "metadata.generateName: Invalid value: \"B\": " METAVAL_MSG_SUBDOMAIN
              " | metadata.name: Invalid value: \"A\": " METAVAL_MSG_SUBDOMAIN
              " | metadata.labels: Invalid value: \"-\": a valid label must be an empty string or "
              "consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
              "an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
              "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?') | "
              "metadata.annotations: Invalid value: \"?\": name part " QRE
              " | metadata.finalizers: Invalid value: \"!\": name part " QRE
              " | metadata.finalizers[0]: Invalid value: \"!\": name is neither a standard "
              "finalizer name nor is it fully qualified"));
    /* Malformed input: no crash, no cause. */
    CHECK(metaval_check("", "pods", NULL, true, true, NULL) == 0);
    CHECK(s_t("", "pods", "{\"metadata\":[1]}", true, ""));
    CHECK(s_t("", "pods", "{\"metadata\":{\"labels\":{\"k\":1},\"finalizers\":\"x\"}}", true, ""));
    /* Every upstream sample's metadata passes (every document of every kind). */
    int docs = 0;
    failed += selftest_samples(NULL, NULL, s_t_sample, NULL, &docs);
    CHECK(!selftest_shared_dir() || docs > 50);
    return SELFTEST_RESULT("metaval", verbose);
}
#endif
