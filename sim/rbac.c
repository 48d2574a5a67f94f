/*
 * rbac: kubesim's RBAC authorizer (see rbac.h).
 */
#include "rbac.h"

#include "buf.h"
#include "err.h"
#include "httpd.h"
#include "json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RBAC_GROUP "rbac.authorization.k8s.io"
#define RBAC_MAX_COUNTED 1024 /* distinct (user, verb, resource) refusal rows kept */

/* One counted refusal. */
typedef struct {
    char user[RBAC_USER_MAX]; /* who */
    char verb[24]; /* what */
    char what[RBAC_FIELD_MAX * 2]; /* resource[/subresource], or the path */
    char group[RBAC_FIELD_MAX]; /* API group */
    char ns[RBAC_FIELD_MAX]; /* namespace ("" = cluster scope) */
    bool resource; /* a resource request */
    long count; /* how many times */
} denied_t;

struct rbac {
    denied_t *rows; /* counted refusals */
    size_t nrows; /* their number */
    long total; /* every refusal, also those past RBAC_MAX_COUNTED rows */
};

/* Bounded copy (cut at n - 1 bytes). */
static void s_copy(char *dst, size_t n, const char *src)
{
    size_t l = src ? strnlen(src, n - 1) : 0;
    if (l)
        memcpy(dst, src, l);
    dst[l] = '\0';
}

/* ---- identities ------------------------------------------------------------------------- */

void rbac_user_serviceaccount(rbac_user_t *u, const char *ns, const char *name)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->name, sizeof(u->name), "system:serviceaccount:%s:%s", ns, name);
    s_copy(u->groups[0], sizeof(u->groups[0]), "system:serviceaccounts");
    snprintf(u->groups[1], sizeof(u->groups[1]), "system:serviceaccounts:%s", ns);
    s_copy(u->groups[2], sizeof(u->groups[2]), "system:authenticated");
    u->ngroups = 3;
}

static bool s_in_group(const rbac_user_t *u, const char *g)
{
    for (int i = 0; i < u->ngroups; i++)
        if (strcmp(u->groups[i], g) == 0)
            return true;
    return false;
}

bool rbac_user_is_master(const rbac_user_t *u)
{
    return s_in_group(u, "system:masters");
}

/* ---- request attributes ----------------------------------------------------------------- */

/* The value of query parameter `key` (percent-decoded) into out. Returns true when present. */
static bool s_query(const char *query, const char *key, char *out, size_t n)
{
    size_t kl = strlen(key);
    const char *p = query;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            if (httpd_pct_decode(p + kl + 1, len - kl - 1, out, n) < 0)
                return false;
            for (char *c = out; *c; c++)
                if (*c == '+')
                    *c = ' ';
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

/* Go's strconv.ParseBool true values. */
static bool s_truthy(const char *v)
{
    return strcmp(v, "1") == 0 || strcmp(v, "t") == 0 || strcmp(v, "T") == 0 ||
           strcmp(v, "true") == 0 || strcmp(v, "TRUE") == 0 || strcmp(v, "True") == 0;
}

/* The name a field selector requires exactly (metadata.name=N or ==N), into out. */
static bool s_selector_name(const char *sel, char *out, size_t n)
{
    const char *p = sel;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        static const char k[] = "metadata.name";
        size_t kl = sizeof(k) - 1;
        if (len > kl && strncmp(p, k, kl) == 0 && p[kl] == '=' && p[kl + 1] != '!') {
            size_t off = kl + (p[kl + 1] == '=' ? 2 : 1);
            if (len > off && len - off < n && !memchr(p + off, '/', len - off)) {
                memcpy(out, p + off, len - off);
                out[len - off] = '\0';
                return true;
            }
        }
        p = comma ? comma + 1 : p + len;
    }
    return false;
}

int rbac_request_info(const char *method, const char *path, const char *query, rbac_attrs_t *out)
{
    memset(out, 0, sizeof(*out));
    s_copy(out->path, sizeof(out->path), path);
    /* Non-resource verb: the lower-cased method. */
    for (size_t i = 0; method[i] && i + 1 < sizeof(out->verb); i++)
        out->verb[i] = (char)tolower((unsigned char)method[i]);
    char buf[RBAC_PATH_MAX];
    s_copy(buf, sizeof(buf), path);
    char *part[64];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, "/", &save); t && n < 64; t = strtok_r(NULL, "/", &save))
        part[n++] = t;
    if (n < 3 || (strcmp(part[0], "api") != 0 && strcmp(part[0], "apis") != 0))
        return 0;
    int i = 1;
    if (strcmp(part[0], "apis") == 0) {
        if (n < 4)
            return 0;
        s_copy(out->group, sizeof(out->group), part[i++]);
    }
    out->resource_request = true;
    s_copy(out->version, sizeof(out->version), part[i++]);
    bool special = strcmp(part[i], "watch") == 0 || strcmp(part[i], "proxy") == 0;
    if (special) {
        if (n - i < 2)
            return ERR_INVAL;
        s_copy(out->verb, sizeof(out->verb), part[i++]);
    } else if (strcmp(method, "POST") == 0) {
        s_copy(out->verb, sizeof(out->verb), "create");
    } else if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        s_copy(out->verb, sizeof(out->verb), "get");
    } else if (strcmp(method, "PUT") == 0) {
        s_copy(out->verb, sizeof(out->verb), "update");
    } else if (strcmp(method, "PATCH") == 0) {
        s_copy(out->verb, sizeof(out->verb), "patch");
    } else if (strcmp(method, "DELETE") == 0) {
        s_copy(out->verb, sizeof(out->verb), "delete");
    } else {
        out->verb[0] = '\0';
    }
    if (strcmp(part[i], "namespaces") == 0) {
        if (n - i > 1) {
            s_copy(out->ns, sizeof(out->ns), part[i + 1]);
            /* namespaces/{ns}/status and /finalize are the namespace's own subresources. */
            if (n - i > 2 && strcmp(part[i + 2], "status") != 0 &&
                strcmp(part[i + 2], "finalize") != 0)
                i += 2;
        }
    }
    int np = n - i;
    char **p = part + i;
    if (np >= 3 && strcmp(out->verb, "proxy") != 0)
        s_copy(out->subresource, sizeof(out->subresource), p[2]);
    if (np >= 2)
        s_copy(out->name, sizeof(out->name), p[1]);
    if (np >= 1)
        s_copy(out->resource, sizeof(out->resource), p[0]);
    if (!out->name[0] && strcmp(out->verb, "get") == 0) {
        char v[RBAC_FIELD_MAX];
        bool watch = s_query(query, "watch", v, sizeof(v)) && s_truthy(v);
        s_copy(out->verb, sizeof(out->verb), watch ? "watch" : "list");
        char sel[RBAC_PATH_MAX];
        if (s_query(query, "fieldSelector", sel, sizeof(sel)))
            s_selector_name(sel, out->name, sizeof(out->name));
    }
    if (!out->name[0] && strcmp(out->verb, "delete") == 0)
        s_copy(out->verb, sizeof(out->verb), "deletecollection");
    return 0;
}

/* ---- rules ------------------------------------------------------------------------------ */

/* True when the JSON string array `arr` holds "*" or `want`. */
static bool s_has(const json_t *arr, const char *want)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (s && (strcmp(s, "*") == 0 || strcmp(s, want) == 0))
            return true;
    }
    return false;
}

static bool s_resource_matches(const json_t *rule, const rbac_attrs_t *at)
{
    char combined[RBAC_FIELD_MAX * 2 + 1];
    snprintf(combined, sizeof(combined), "%s%s%s", at->resource, at->subresource[0] ? "/" : "",
             at->subresource);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rule, "resources"), i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        if (strcmp(s, "*") == 0 || strcmp(s, combined) == 0)
            return true;
        if (at->subresource[0] && s[0] == '*' && s[1] == '/' && strcmp(s + 2, at->subresource) == 0)
            return true;
    }
    return false;
}

static bool s_name_matches(const json_t *rule, const rbac_attrs_t *at)
{
    const json_t *names = json_object_get(rule, "resourceNames");
    if (json_array_size(names) == 0)
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        const char *s = json_string_value(v);
        if (s && at->name[0] && strcmp(s, at->name) == 0)
            return true;
    }
    return false;
}

static bool s_url_matches(const json_t *rule, const char *path)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rule, "nonResourceURLs"), i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        size_t l = strlen(s);
        if (strcmp(s, "*") == 0 || strcmp(s, path) == 0 ||
            (l > 0 && s[l - 1] == '*' && strncmp(s, path, l - 1) == 0))
            return true;
    }
    return false;
}

/* True when one PolicyRule allows the request (kube's RuleAllows). */
static bool s_rule_allows(const json_t *rule, const rbac_attrs_t *at)
{
    if (!s_has(json_object_get(rule, "verbs"), at->verb))
        return false;
    if (at->resource_request)
        return s_has(json_object_get(rule, "apiGroups"), at->group) &&
               s_resource_matches(rule, at) && s_name_matches(rule, at);
    return s_url_matches(rule, at->path);
}

static bool s_rules_allow(const json_t *rules, const rbac_attrs_t *at)
{
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        if (s_rule_allows(r, at))
            return true;
    }
    return false;
}

/* The bootstrap ClusterRoles bound to system:authenticated (system:discovery, system:basic-user,
 * system:public-info-viewer), as kube-apiserver 1.32 creates them. */
static const json_t *s_bootstrap_rules(void)
{
    static json_t *rules;
    if (!rules)
        rules = json_pack("[{s:[s],s:[s,s,s,s,s,s,s,s,s,s,s]},"
                          "{s:[s],s:[s],s:[s,s]},{s:[s],s:[s],s:[s]}]",
                          "verbs", "get", "nonResourceURLs", "/api", "/api/*", "/apis", "/apis/*",
                          "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version",
                          "/version/", "verbs", "create", "apiGroups", "authorization.k8s.io",
                          "resources", "selfsubjectaccessreviews", "selfsubjectrulesreviews",
                          "verbs", "create", "apiGroups", "authentication.k8s.io", "resources",
                          "selfsubjectreviews");
    return rules;
}

/* True when a binding subject names the identity (kube's appliesToUser); `bns` is the
 * binding's namespace ("" for a ClusterRoleBinding). */
static bool s_subject_applies(const json_t *subj, const rbac_user_t *u, const char *bns)
{
    const char *kind = jx_str(subj, "kind", "");
    const char *name = jx_str(subj, "name", "");
    if (strcmp(kind, "User") == 0)
        return strcmp(name, u->name) == 0;
    if (strcmp(kind, "Group") == 0)
        return s_in_group(u, name);
    if (strcmp(kind, "ServiceAccount") == 0) {
        const char *ns = jx_str(subj, "namespace", "");
        if (!*ns)
            ns = bns;
        if (!*ns)
            return false;
        char full[RBAC_USER_MAX];
        snprintf(full, sizeof(full), "system:serviceaccount:%s:%s", ns, name);
        return strcmp(full, u->name) == 0;
    }
    return false;
}

static bool s_binding_applies(const json_t *b, const rbac_user_t *u, const char *bns)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(b, "subjects"), i, s)
    {
        if (s_subject_applies(s, u, bns))
            return true;
    }
    return false;
}

/* Appends `err` to the reason's error list ("a, b" as utilerrors.NewAggregate prints them). */
static void s_reason_add(char *reason, size_t n, int *nerr, const char *err)
{
    size_t l = strlen(reason);
    snprintf(reason + l, n - l, "%s%s", *nerr ? ", " : "", err);
    (*nerr)++;
}

/* Whether the roleRef of binding b (namespace bns) allows the request; a missing role adds an
 * error to the reason. */
static bool s_roleref_allows(objstore_t *store, const json_t *b, const char *bns,
                             const rbac_attrs_t *at, char *reason, size_t n, int *nerr)
{
    const char *kind = jx_str(b, "roleRef.kind", "");
    const char *name = jx_str(b, "roleRef.name", "");
    bool cluster = strcmp(kind, "ClusterRole") == 0;
    if (!cluster && (strcmp(kind, "Role") != 0 || !*bns))
        return false;
    objstore_res_t *r = objstore_find(store, RBAC_GROUP, cluster ? "clusterroles" : "roles");
    json_t *role = NULL;
    objstore_status_t st;
    if (!r || objstore_get(store, r, cluster ? NULL : bns, name, &role, &st) < 0) {
        char e[RBAC_FIELD_MAX * 2];
        snprintf(e, sizeof(e), "%s.%s \"%s\" not found", cluster ? "clusterrole" : "role",
                 RBAC_GROUP, name);
        s_reason_add(reason, n, nerr, e);
        return false;
    }
    bool ok = s_rules_allow(json_object_get(role, "rules"), at);
    json_decref(role);
    return ok;
}

/* Whether a binding of resource `res` in namespace ns (NULL = cluster-scoped) allows. */
static bool s_bindings_allow(objstore_t *store, const char *res, const char *ns,
                             const rbac_user_t *u, const rbac_attrs_t *at, char *reason, size_t n,
                             int *nerr)
{
    objstore_res_t *r = objstore_find(store, RBAC_GROUP, res);
    if (!r)
        return false;
    objstore_list_opts_t lo = {.ns = ns};
    objstore_list_t l;
    objstore_status_t st;
    if (objstore_list(store, r, &lo, &l, &st) < 0)
        return false;
    bool ok = false;
    size_t i;
    json_t *b;
    json_array_foreach(l.items, i, b)
    {
        if (!s_binding_applies(b, u, ns ? ns : ""))
            continue;
        if (s_roleref_allows(store, b, ns ? ns : "", at, reason, n, nerr)) {
            ok = true;
            break;
        }
    }
    objstore_list_free(&l);
    return ok;
}

/* kube's forbiddenMessage inside apierrors.NewForbidden's wording. */
static void s_message(const rbac_user_t *u, const rbac_attrs_t *at, const char *reason, char *msg,
                      size_t n)
{
    char why[RBAC_MSG_MAX];
    if (!at->resource_request) {
        snprintf(why, sizeof(why), "User \"%s\" cannot %s path \"%s\"", u->name, at->verb,
                 at->path);
        snprintf(msg, n, "forbidden: %s%s%s", why, *reason ? ": " : "", reason);
        return;
    }
    char res[RBAC_FIELD_MAX * 2 + 1];
    snprintf(res, sizeof(res), "%s%s%s", at->resource, at->subresource[0] ? "/" : "",
             at->subresource);
    if (at->ns[0])
        snprintf(why, sizeof(why),
                 "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" in the namespace "
                 "\"%s\"",
                 u->name, at->verb, res, at->group, at->ns);
    else
        snprintf(why, sizeof(why),
                 "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" at the cluster scope",
                 u->name, at->verb, res, at->group);
    char gr[RBAC_FIELD_MAX * 2 + 1];
    snprintf(gr, sizeof(gr), "%s%s%s", at->resource, at->group[0] ? "." : "", at->group);
    if (at->name[0])
        snprintf(msg, n, "%s \"%s\" is forbidden: %s%s%s", gr, at->name, why, *reason ? ": " : "",
                 reason);
    else
        snprintf(msg, n, "%s is forbidden: %s%s%s", gr, why, *reason ? ": " : "", reason);
}

bool rbac_authorize(objstore_t *store, const rbac_user_t *u, const rbac_attrs_t *at, char *msg,
                    size_t msg_len)
{
    if (rbac_user_is_master(u))
        return true;
    if (s_in_group(u, "system:authenticated") && s_rules_allow(s_bootstrap_rules(), at))
        return true;
    /* RBAC errors, e.g. a binding naming a missing role (kube: "RBAC: <aggregate>"). */
    char errs[RBAC_MSG_MAX] = "";
    int nerr = 0;
    if (s_bindings_allow(store, "clusterrolebindings", NULL, u, at, errs, sizeof(errs), &nerr))
        return true;
    if (at->resource_request && at->ns[0] &&
        s_bindings_allow(store, "rolebindings", at->ns, u, at, errs, sizeof(errs), &nerr))
        return true;
    if (msg) {
        char reason[RBAC_MSG_MAX + 16] = "";
        if (nerr > 1)
            snprintf(reason, sizeof(reason), "RBAC: [%s]", errs);
        else if (nerr == 1)
            snprintf(reason, sizeof(reason), "RBAC: %s", errs);
        s_message(u, at, reason, msg, msg_len);
    }
    return false;
}

/* ---- escalation prevention --------------------------------------------------------------- */

/* Appends `{APIGroups:["g"], Resources:["r"], ResourceNames:["n"], Verbs:["v"]}` (kube's
 * CompactString of an atomic rule) as one line of the missing list. */
static void s_missing(buf_t *b, const rbac_attrs_t *at, bool has_name)
{
    if (b->len)
        buf_puts(b, "\n");
    if (!at->resource_request) {
        buf_printf(b, "{NonResourceURLs:[\"%s\"], Verbs:[\"%s\"]}", at->path, at->verb);
        return;
    }
    buf_printf(b, "{APIGroups:[\"%s\"], Resources:[\"%s%s%s\"]", at->group, at->resource,
               at->subresource[0] ? "/" : "", at->subresource);
    if (has_name)
        buf_printf(b, ", ResourceNames:[\"%s\"]", at->name);
    buf_printf(b, ", Verbs:[\"%s\"]}", at->verb);
}

/* Whether the identity holds one atomic permission (an owner rule covers it literally: a "*" in
 * the granted rule needs a "*" in the owner's). */
static bool s_holds(objstore_t *store, const rbac_user_t *u, rbac_attrs_t *at)
{
    char ignored[RBAC_MSG_MAX];
    return rbac_authorize(store, u, at, ignored, sizeof(ignored));
}

/* Breaks `rules` into atomic rules (kube's BreakdownRule) and lists those not held. */
static void s_uncovered(objstore_t *store, const rbac_user_t *u, const char *ns,
                        const json_t *rules, buf_t *missing)
{
    size_t i, gi, ri, vi, ni;
    json_t *rule, *g, *r, *v, *n;
    json_array_foreach(rules, i, rule)
    {
        json_t *verbs = json_object_get(rule, "verbs");
        json_t *names = json_object_get(rule, "resourceNames");
        json_array_foreach(json_object_get(rule, "apiGroups"), gi, g)
        {
            json_array_foreach(json_object_get(rule, "resources"), ri, r)
            {
                json_array_foreach(verbs, vi, v)
                {
                    rbac_attrs_t at;
                    memset(&at, 0, sizeof(at));
                    at.resource_request = true;
                    s_copy(at.group, sizeof(at.group), json_string_value(g));
                    const char *res = json_string_value(r) ? json_string_value(r) : "";
                    const char *slash = strchr(res, '/');
                    s_copy(at.resource, sizeof(at.resource), res);
                    if (slash) {
                        at.resource[slash - res] = '\0';
                        s_copy(at.subresource, sizeof(at.subresource), slash + 1);
                    }
                    s_copy(at.verb, sizeof(at.verb), json_string_value(v));
                    s_copy(at.ns, sizeof(at.ns), ns);
                    if (json_array_size(names) == 0) {
                        if (!s_holds(store, u, &at))
                            s_missing(missing, &at, false);
                        continue;
                    }
                    json_array_foreach(names, ni, n)
                    {
                        s_copy(at.name, sizeof(at.name), json_string_value(n));
                        if (!s_holds(store, u, &at))
                            s_missing(missing, &at, true);
                    }
                }
            }
        }
        json_array_foreach(json_object_get(rule, "nonResourceURLs"), ri, r)
        {
            json_array_foreach(verbs, vi, v)
            {
                rbac_attrs_t at;
                memset(&at, 0, sizeof(at));
                s_copy(at.path, sizeof(at.path), json_string_value(r));
                s_copy(at.verb, sizeof(at.verb), json_string_value(v));
                if (!s_holds(store, u, &at))
                    s_missing(missing, &at, false);
            }
        }
    }
}

static int s_cmp_line(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts the lines of b (kube sorts the missing rules). */
static void s_sort_lines(buf_t *b)
{
    if (!b->len)
        return;
    char *text = strdup(buf_str(b));
    if (!text)
        return;
    size_t n = 1;
    for (char *c = text; *c; c++)
        n += *c == '\n';
    char **lines = calloc(n, sizeof(*lines));
    if (!lines) {
        free(text);
        return;
    }
    size_t k = 0;
    for (char *save = NULL, *t = strtok_r(text, "\n", &save); t && k < n;
         t = strtok_r(NULL, "\n", &save))
        lines[k++] = t;
    qsort(lines, k, sizeof(*lines), s_cmp_line);
    buf_reset(b);
    for (size_t i = 0; i < k; i++)
        buf_printf(b, "%s%s", i ? "\n" : "", lines[i]);
    free(lines);
    free(text);
}

bool rbac_escalation_ok(objstore_t *store, const rbac_user_t *u, const char *resource,
                        const char *ns, const char *name, const json_t *rules,
                        const char *role_kind, const char *role_name, char *msg, size_t msg_len)
{
    if (rbac_user_is_master(u))
        return true;
    bool binding = role_kind != NULL;
    /* escalate on the role written, or bind on the role referenced. */
    rbac_attrs_t at;
    memset(&at, 0, sizeof(at));
    at.resource_request = true;
    s_copy(at.group, sizeof(at.group), RBAC_GROUP);
    s_copy(at.ns, sizeof(at.ns), ns);
    s_copy(at.verb, sizeof(at.verb), binding ? "bind" : "escalate");
    if (binding)
        s_copy(at.resource, sizeof(at.resource),
               strcmp(role_kind, "ClusterRole") == 0 ? "clusterroles" : "roles");
    else
        s_copy(at.resource, sizeof(at.resource), resource);
    s_copy(at.name, sizeof(at.name), binding ? role_name : name);
    if (s_holds(store, u, &at))
        return true;
    buf_t missing;
    buf_init(&missing, RBAC_MSG_MAX * 8);
    s_uncovered(store, u, ns, rules, &missing);
    bool ok = missing.len == 0;
    if (!ok && msg) {
        s_sort_lines(&missing);
        buf_t g;
        buf_init(&g, RBAC_MSG_MAX);
        for (int i = 0; i < u->ngroups; i++)
            buf_printf(&g, "%s\"%s\"", i ? " " : "", u->groups[i]);
        snprintf(msg, msg_len,
                 "%s." RBAC_GROUP " \"%s\" is forbidden: user \"%s\" (groups=[%s]) is attempting "
                 "to grant RBAC permissions not currently held:\n%s",
                 resource, name, u->name, buf_str(&g), buf_str(&missing));
        buf_free(&g);
    }
    buf_free(&missing);
    return ok;
}

/* ---- counters --------------------------------------------------------------------------- */

rbac_t *rbac_new(void)
{
    return calloc(1, sizeof(rbac_t));
}

void rbac_destroy(rbac_t **rp)
{
    if (!rp || !*rp)
        return;
    free((*rp)->rows);
    free(*rp);
    *rp = NULL;
}

void rbac_count_denied(rbac_t *r, const rbac_user_t *u, const rbac_attrs_t *at)
{
    r->total++;
    denied_t key;
    memset(&key, 0, sizeof(key));
    s_copy(key.user, sizeof(key.user), u->name);
    s_copy(key.verb, sizeof(key.verb), at->verb);
    key.resource = at->resource_request;
    if (at->resource_request)
        snprintf(key.what, sizeof(key.what), "%s%s%s", at->resource, at->subresource[0] ? "/" : "",
                 at->subresource);
    else
        s_copy(key.what, sizeof(key.what), at->path);
    s_copy(key.group, sizeof(key.group), at->group);
    s_copy(key.ns, sizeof(key.ns), at->ns);
    for (size_t i = 0; i < r->nrows; i++) {
        denied_t *d = &r->rows[i];
        if (d->resource == key.resource && strcmp(d->user, key.user) == 0 &&
            strcmp(d->verb, key.verb) == 0 && strcmp(d->what, key.what) == 0 &&
            strcmp(d->group, key.group) == 0 && strcmp(d->ns, key.ns) == 0) {
            d->count++;
            return;
        }
    }
    if (r->nrows == RBAC_MAX_COUNTED)
        return;
    denied_t *rows = realloc(r->rows, (r->nrows + 1) * sizeof(*rows));
    if (!rows)
        return;
    r->rows = rows;
    key.count = 1;
    r->rows[r->nrows++] = key;
}

json_t *rbac_denied_json(const rbac_t *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < r->nrows; i++) {
        const denied_t *d = &r->rows[i];
        json_t *o = d->resource ? json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "user", d->user, "verb",
                                            d->verb, "resource", d->what, "group", d->group,
                                            "namespace", d->ns, "count", (json_int_t)d->count)
                                : json_pack("{s:s,s:s,s:s,s:I}", "user", d->user, "verb", d->verb,
                                            "path", d->what, "count", (json_int_t)d->count);
        json_array_append_new(arr, o);
    }
    return json_pack("{s:I,s:o}", "total", (json_int_t)r->total, "denied",
                     arr ? arr : json_array());
}

void rbac_reset(rbac_t *r)
{
    free(r->rows);
    r->rows = NULL;
    r->nrows = 0;
    r->total = 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"
#include "simtest.h"

/* ---- self-test -------------------------------------------------------------------------- */

static void t_put(objstore_t *s, const char *res, const char *ns, const char *yaml_json)
{
    json_error_t je;
    json_t *o = json_loads(yaml_json, 0, &je);
    objstore_status_t st;
    if (!o || objstore_create(s, objstore_find(s, RBAC_GROUP, res), ns, &o, NULL, &st) < 0)
        printf("rbac test: cannot create %s: %s %s\n", res, je.text, st.message);
}

/* Authorizes method path?query for u; returns whether allowed, message in msg. */
static bool t_can(objstore_t *s, const rbac_user_t *u, const char *method, const char *path,
                  const char *query, char *msg)
{
    rbac_attrs_t at;
    msg[0] = '\0';
    if (rbac_request_info(method, path, query, &at) < 0)
        return false;
    return rbac_authorize(s, u, &at, msg, RBAC_MSG_MAX);
}

int rbac_test(bool verbose)
{
    int failed = 0;
    /* Request attributes. */
    rbac_attrs_t at;
    CHECK(rbac_request_info("GET", "/api/v1/namespaces/ns/pods", "watch=true", &at) == 0);
    CHECK(at.resource_request && strcmp(at.verb, "watch") == 0 && strcmp(at.ns, "ns") == 0 &&
          strcmp(at.resource, "pods") == 0 && !at.name[0] && !at.group[0]);
    CHECK(rbac_request_info("GET", "/api/v1/watch/namespaces/ns/pods", NULL, &at) == 0);
    CHECK(strcmp(at.verb, "watch") == 0 && strcmp(at.resource, "pods") == 0);
    CHECK(rbac_request_info("GET", "/api/v1/pods", "limit=500", &at) == 0);
    CHECK(strcmp(at.verb, "list") == 0 && !at.ns[0]);
    CHECK(rbac_request_info("GET", "/api/v1/namespaces/ns/pods", "fieldSelector=metadata.name%3Dp1",
                            &at) == 0);
    CHECK(strcmp(at.verb, "list") == 0 && strcmp(at.name, "p1") == 0);
    CHECK(rbac_request_info("DELETE", "/apis/batch/v1/namespaces/ns/jobs", NULL, &at) == 0);
    CHECK(strcmp(at.verb, "deletecollection") == 0 && strcmp(at.group, "batch") == 0);
    CHECK(rbac_request_info("PATCH", "/apis/ray.io/v1/namespaces/ns/rayclusters/c/status", NULL,
                            &at) == 0);
    CHECK(strcmp(at.verb, "patch") == 0 && strcmp(at.resource, "rayclusters") == 0 &&
          strcmp(at.name, "c") == 0 && strcmp(at.subresource, "status") == 0 &&
          strcmp(at.version, "v1") == 0);
    CHECK(rbac_request_info("POST", "/api/v1/namespaces/ns/services/h:8265/proxy/api/jobs/", NULL,
                            &at) == 0);
    CHECK(strcmp(at.verb, "create") == 0 && strcmp(at.resource, "services") == 0 &&
          strcmp(at.name, "h:8265") == 0 && strcmp(at.subresource, "proxy") == 0);
    CHECK(rbac_request_info("GET", "/api/v1/namespaces/ns", NULL, &at) == 0);
    CHECK(strcmp(at.verb, "get") == 0 && strcmp(at.resource, "namespaces") == 0 &&
          strcmp(at.name, "ns") == 0 && strcmp(at.ns, "ns") == 0);
    CHECK(rbac_request_info("PUT", "/api/v1/namespaces/ns/finalize", NULL, &at) == 0);
    CHECK(strcmp(at.resource, "namespaces") == 0 && strcmp(at.subresource, "finalize") == 0);
    CHECK(rbac_request_info("GET", "/apis/ray.io", NULL, &at) == 0 && !at.resource_request &&
          strcmp(at.verb, "get") == 0);
    CHECK(rbac_request_info("GET", "/api/v1", NULL, &at) == 0 && at.resource_request == false);
    CHECK(rbac_request_info("GET", "/api/v1/watch", NULL, &at) == ERR_INVAL);

    /* The rules. */
    simtest_clock_t clk = {SIMTEST_T0};
    objstore_t *s = objstore_new(0);
    const objstore_resdesc_t rbacres[] = {
        {.group = RBAC_GROUP,
         .version = "v1",
         .resource = "roles",
         .kind = "Role",
         .namespaced = true},
        {.group = RBAC_GROUP,
         .version = "v1",
         .resource = "rolebindings",
         .kind = "RoleBinding",
         .namespaced = true},
        {.group = RBAC_GROUP, .version = "v1", .resource = "clusterroles", .kind = "ClusterRole"},
        {.group = RBAC_GROUP,
         .version = "v1",
         .resource = "clusterrolebindings",
         .kind = "ClusterRoleBinding"},
    };
    CHECK(simtest_core(s, &clk, rbacres, 4) == 0);
    objstore_status_t st;
    json_t *nso = json_pack("{s:{s:s}}", "metadata", "name", "other");
    CHECK(objstore_create(s, objstore_find(s, "", "namespaces"), NULL, &nso, NULL, &st) == 0);
    /* A ClusterRole through a ClusterRoleBinding (ServiceAccount subject). */
    t_put(s, "clusterroles", NULL,
          "{\"metadata\":{\"name\":\"op\"},\"rules\":["
          "{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"verbs\":[\"get\",\"list\",\"watch\"]},"
          "{\"apiGroups\":[\"ray.io\"],\"resources\":[\"rayclusters/status\"],\"verbs\":[\"*\"]},"
          "{\"apiGroups\":[\"*\"],\"resources\":[\"*/scale\"],\"verbs\":[\"get\"]},"
          "{\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],\"resourceNames\":[\"cfg\"],"
          "\"verbs\":[\"get\",\"update\"]},"
          "{\"nonResourceURLs\":[\"/metrics\",\"/logs/*\"],\"verbs\":[\"get\"]}]}");
    t_put(s, "clusterrolebindings", NULL,
          "{\"metadata\":{\"name\":\"op\"},\"roleRef\":{\"apiGroup\":\"" RBAC_GROUP
          "\",\"kind\":\"ClusterRole\",\"name\":\"op\"},\"subjects\":[{\"kind\":"
          "\"ServiceAccount\",\"name\":\"sa\",\"namespace\":\"sys\"}]}");
    rbac_user_t sa, other, grp, usr;
    rbac_user_serviceaccount(&sa, "sys", "sa");
    rbac_user_serviceaccount(&other, "default", "x");
    CHECK(strcmp(sa.name, "system:serviceaccount:sys:sa") == 0 && sa.ngroups == 3 &&
          strcmp(sa.groups[1], "system:serviceaccounts:sys") == 0);
    char m[RBAC_MSG_MAX];
    CHECK(t_can(s, &sa, "GET", "/api/v1/namespaces/default/pods", NULL, m));
    CHECK(t_can(s, &sa, "GET", "/api/v1/pods", "watch=1", m));
    CHECK(!t_can(s, &sa, "DELETE", "/api/v1/namespaces/default/pods/p", NULL, m));
    CHECK(strcmp(m, "pods \"p\" is forbidden: User \"system:serviceaccount:sys:sa\" cannot delete "
                    "resource \"pods\" in API group \"\" in the namespace \"default\"") == 0);
    /* A subresource rule allows only that subresource. */
    CHECK(!t_can(s, &sa, "PATCH", "/api/v1/namespaces/default/pods/p/status", NULL, m));
    CHECK(strstr(m, "cannot patch resource \"pods/status\" in API group \"\"") != NULL);
    CHECK(t_can(s, &sa, "PUT", "/apis/ray.io/v1/namespaces/d/rayclusters/c/status", NULL, m));
    CHECK(!t_can(s, &sa, "PUT", "/apis/ray.io/v1/namespaces/d/rayclusters/c", NULL, m));
    CHECK(strcmp(m, "rayclusters.ray.io \"c\" is forbidden: User "
                    "\"system:serviceaccount:sys:sa\" cannot update resource \"rayclusters\" in "
                    "API group \"ray.io\" in the namespace \"d\"") == 0);
    /* The rule "*\/scale" and apiGroups "*". */
    CHECK(t_can(s, &sa, "GET", "/apis/ray.io/v1/namespaces/d/rayclusters/c/scale", NULL, m));
    CHECK(!t_can(s, &sa, "PUT", "/apis/ray.io/v1/namespaces/d/rayclusters/c/scale", NULL, m));
    /* resourceNames: the named object only; a list is refused unless it names it. */
    CHECK(t_can(s, &sa, "GET", "/api/v1/namespaces/d/configmaps/cfg", NULL, m));
    CHECK(!t_can(s, &sa, "GET", "/api/v1/namespaces/d/configmaps/other", NULL, m));
    CHECK(!t_can(s, &sa, "GET", "/api/v1/namespaces/d/configmaps", NULL, m));
    CHECK(strcmp(m, "configmaps is forbidden: User \"system:serviceaccount:sys:sa\" cannot list "
                    "resource \"configmaps\" in API group \"\" in the namespace \"d\"") == 0);
    CHECK(!t_can(s, &sa, "GET", "/api/v1/namespaces/d/configmaps", "fieldSelector=x%3Dcfg", m));
    CHECK(!t_can(s, &sa, "POST", "/api/v1/namespaces/d/configmaps", NULL, m));
    /* Cluster scope wording. */
    CHECK(!t_can(s, &sa, "GET", "/api/v1/nodes", NULL, m));
    CHECK(strcmp(m, "nodes is forbidden: User \"system:serviceaccount:sys:sa\" cannot list "
                    "resource \"nodes\" in API group \"\" at the cluster scope") == 0);
    /* nonResourceURLs: exact and prefix*; the bootstrap discovery rules. */
    CHECK(t_can(s, &sa, "GET", "/metrics", NULL, m));
    CHECK(t_can(s, &sa, "GET", "/logs/a/b", NULL, m));
    CHECK(!t_can(s, &sa, "GET", "/logsx", NULL, m));
    CHECK(strcmp(m, "forbidden: User \"system:serviceaccount:sys:sa\" cannot get path "
                    "\"/logsx\"") == 0);
    CHECK(!t_can(s, &other, "GET", "/metrics", NULL, m));
    CHECK(t_can(s, &other, "GET", "/apis/ray.io/v1", NULL, m));
    CHECK(t_can(s, &other, "GET", "/version", NULL, m) && t_can(s, &other, "GET", "/api", NULL, m));
    CHECK(t_can(s, &other, "GET", "/openapi/v2", NULL, m));
    CHECK(!t_can(s, &other, "POST", "/version", NULL, m));
    CHECK(t_can(s, &other, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", NULL,
                m));
    CHECK(!t_can(s, &other, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", NULL, m));
    CHECK(!t_can(s, &other, "GET", "/api/v1/namespaces/default/pods", NULL, m));
    /* A Role through a RoleBinding: its namespace only; SA subject namespace defaulted. */
    t_put(s, "roles", "default",
          "{\"metadata\":{\"name\":\"r\",\"namespace\":\"default\"},\"rules\":[{\"apiGroups\":"
          "[\"\"],\"resources\":[\"secrets\"],\"verbs\":[\"create\"]}]}");
    t_put(s, "rolebindings", "default",
          "{\"metadata\":{\"name\":\"rb\",\"namespace\":\"default\"},\"roleRef\":{\"apiGroup\":"
          "\"" RBAC_GROUP
          "\",\"kind\":\"Role\",\"name\":\"r\"},\"subjects\":[{\"kind\":\"ServiceAccount\","
          "\"name\":\"x\"}]}");
    CHECK(t_can(s, &other, "POST", "/api/v1/namespaces/default/secrets", NULL, m));
    CHECK(!t_can(s, &other, "POST", "/api/v1/namespaces/other/secrets", NULL, m));
    CHECK(!t_can(s, &other, "POST", "/api/v1/secrets", NULL, m));
    CHECK(!t_can(s, &sa, "POST", "/api/v1/namespaces/default/secrets", NULL, m));
    /* A ClusterRole through a RoleBinding (Group subject): only in the binding's namespace. */
    t_put(s, "clusterroles", NULL,
          "{\"metadata\":{\"name\":\"jobs\"},\"rules\":[{\"apiGroups\":[\"batch\"],"
          "\"resources\":[\"jobs\"],\"verbs\":[\"*\"]}]}");
    t_put(s, "rolebindings", "other",
          "{\"metadata\":{\"name\":\"g\",\"namespace\":\"other\"},\"roleRef\":{\"apiGroup\":"
          "\"" RBAC_GROUP
          "\",\"kind\":\"ClusterRole\",\"name\":\"jobs\"},\"subjects\":[{\"kind\":\"Group\","
          "\"name\":\"devs\"},{\"kind\":\"User\",\"name\":\"alice\"}]}");
    memset(&grp, 0, sizeof(grp));
    s_copy(grp.name, sizeof(grp.name), "bob");
    s_copy(grp.groups[0], sizeof(grp.groups[0]), "devs");
    grp.ngroups = 1;
    memset(&usr, 0, sizeof(usr));
    s_copy(usr.name, sizeof(usr.name), "alice");
    CHECK(t_can(s, &grp, "DELETE", "/apis/batch/v1/namespaces/other/jobs", NULL, m));
    CHECK(t_can(s, &usr, "PATCH", "/apis/batch/v1/namespaces/other/jobs/j", NULL, m));
    CHECK(!t_can(s, &usr, "PATCH", "/apis/batch/v1/namespaces/default/jobs/j", NULL, m));
    CHECK(!t_can(s, &usr, "GET", "/apis/batch/v1/jobs", NULL, m));
    /* Not authenticated: no bootstrap rules. */
    CHECK(!t_can(s, &usr, "GET", "/api", NULL, m));
    /* A binding naming a missing role: its error in the reason. */
    t_put(s, "clusterrolebindings", NULL,
          "{\"metadata\":{\"name\":\"gone\"},\"roleRef\":{\"apiGroup\":\"" RBAC_GROUP
          "\",\"kind\":\"ClusterRole\",\"name\":\"missing\"},\"subjects\":[{\"kind\":\"User\","
          "\"name\":\"alice\"}]}");
    CHECK(!t_can(s, &usr, "GET", "/api/v1/nodes/n1", NULL, m));
    CHECK(strcmp(m, "nodes \"n1\" is forbidden: User \"alice\" cannot get resource \"nodes\" in "
                    "API group \"\" at the cluster scope: RBAC: clusterrole." RBAC_GROUP
                    " \"missing\" not found") == 0);
    /* Wildcards everywhere, and system:masters. */
    t_put(s, "clusterroles", NULL,
          "{\"metadata\":{\"name\":\"all\"},\"rules\":[{\"apiGroups\":[\"*\"],"
          "\"resources\":[\"*\"],\"verbs\":[\"*\"]}]}");
    t_put(s, "clusterrolebindings", NULL,
          "{\"metadata\":{\"name\":\"all\"},\"roleRef\":{\"apiGroup\":\"" RBAC_GROUP
          "\",\"kind\":\"ClusterRole\",\"name\":\"all\"},\"subjects\":[{\"kind\":\"User\","
          "\"name\":\"bob\"}]}");
    CHECK(t_can(s, &grp, "DELETE", "/apis/ray.io/v1/namespaces/x/rayjobs/j", NULL, m));
    CHECK(!t_can(s, &grp, "GET", "/metrics", NULL, m)); /* resources * is not a URL */
    rbac_user_t root;
    memset(&root, 0, sizeof(root));
    s_copy(root.name, sizeof(root.name), "admin");
    s_copy(root.groups[0], sizeof(root.groups[0]), "system:masters");
    root.ngroups = 1;
    CHECK(rbac_user_is_master(&root) && t_can(s, &root, "GET", "/anything", NULL, m));

    /* Escalation prevention: a role may grant only what its writer holds. */
    json_t *rules = json_loads("[{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"verbs\":"
                               "[\"get\",\"list\"]},{\"apiGroups\":[\"\"],\"resources\":"
                               "[\"configmaps\"],\"resourceNames\":[\"cfg\"],\"verbs\":[\"get\"]},"
                               "{\"nonResourceURLs\":[\"/logs/a\"],\"verbs\":[\"get\"]}]",
                               0, NULL);
    CHECK(rbac_escalation_ok(s, &sa, "roles", "default", "r2", rules, NULL, NULL, m, sizeof(m)));
    json_decref(rules);
    rules = json_loads("[{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"verbs\":[\"update\","
                       "\"get\",\"delete\"]}]",
                       0, NULL);
    CHECK(!rbac_escalation_ok(s, &sa, "roles", "default", "r2", rules, NULL, NULL, m, sizeof(m)));
    CHECK(strcmp(m, "roles.rbac.authorization.k8s.io \"r2\" is forbidden: user "
                    "\"system:serviceaccount:sys:sa\" (groups=[\"system:serviceaccounts\" "
                    "\"system:serviceaccounts:sys\" \"system:authenticated\"]) is attempting to "
                    "grant RBAC permissions not currently held:\n{APIGroups:[\"\"], "
                    "Resources:[\"pods\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], "
                    "Resources:[\"pods\"], Verbs:[\"update\"]}") == 0);
    /* A RoleBinding to a role with those rules: the same check... */
    CHECK(!rbac_escalation_ok(s, &sa, "rolebindings", "default", "rb2", rules, "ClusterRole", "big",
                              m, sizeof(m)));
    CHECK(strncmp(m, "rolebindings.rbac.authorization.k8s.io \"rb2\" is forbidden: user", 63) == 0);
    /* ... unless bind on that role (or escalate on roles) is held; bob holds "*". */
    CHECK(rbac_escalation_ok(s, &grp, "rolebindings", "other", "rb2", rules, "ClusterRole", "big",
                             m, sizeof(m)));
    t_put(s, "clusterroles", NULL,
          "{\"metadata\":{\"name\":\"binder\"},\"rules\":[{\"apiGroups\":[\"" RBAC_GROUP "\"],"
          "\"resources\":[\"clusterroles\"],\"resourceNames\":[\"big\"],\"verbs\":[\"bind\"]},"
          "{\"apiGroups\":[\"" RBAC_GROUP
          "\"],\"resources\":[\"roles\"],\"verbs\":[\"escalate\"]}]}");
    t_put(s, "clusterrolebindings", NULL,
          "{\"metadata\":{\"name\":\"binder\"},\"roleRef\":{\"apiGroup\":\"" RBAC_GROUP
          "\",\"kind\":\"ClusterRole\",\"name\":\"binder\"},\"subjects\":[{\"kind\":"
          "\"ServiceAccount\",\"name\":\"x\",\"namespace\":\"default\"}]}");
    CHECK(rbac_escalation_ok(s, &other, "rolebindings", "default", "rb2", rules, "ClusterRole",
                             "big", m, sizeof(m)));
    CHECK(!rbac_escalation_ok(s, &other, "rolebindings", "default", "rb2", rules, "ClusterRole",
                              "small", m, sizeof(m)));
    CHECK(
        rbac_escalation_ok(s, &other, "roles", "default", "any", rules, NULL, NULL, m, sizeof(m)));
    CHECK(
        !rbac_escalation_ok(s, &other, "clusterroles", "", "any", rules, NULL, NULL, m, sizeof(m)));
    json_decref(rules);
    /* Names, wildcards and URLs are compared literally. */
    rules = json_loads("[{\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],\"resourceNames\":"
                       "[\"cfg\",\"x\"],\"verbs\":[\"get\"]},{\"apiGroups\":[\"ray.io\"],"
                       "\"resources\":[\"*\"],\"verbs\":[\"get\"]},{\"nonResourceURLs\":"
                       "[\"/metrics\",\"/y\"],\"verbs\":[\"get\"]}]",
                       0, NULL);
    CHECK(!rbac_escalation_ok(s, &sa, "clusterroles", "", "c2", rules, NULL, NULL, m, sizeof(m)));
    CHECK(strstr(m, "not currently held:\n{APIGroups:[\"\"], Resources:[\"configmaps\"], "
                    "ResourceNames:[\"x\"], Verbs:[\"get\"]}\n{APIGroups:[\"ray.io\"], "
                    "Resources:[\"*\"], Verbs:[\"get\"]}\n{NonResourceURLs:[\"/y\"], "
                    "Verbs:[\"get\"]}") != NULL);
    json_decref(rules);
    CHECK(rbac_escalation_ok(s, &root, "clusterroles", "", "c2", NULL, NULL, NULL, m, sizeof(m)));
    objstore_destroy(&s);

    /* Counting. */
    rbac_t *r = rbac_new();
    CHECK(r != NULL);
    rbac_request_info("GET", "/api/v1/namespaces/d/pods", NULL, &at);
    rbac_count_denied(r, &sa, &at);
    rbac_count_denied(r, &sa, &at);
    rbac_request_info("GET", "/metrics", NULL, &at);
    rbac_count_denied(r, &other, &at);
    json_t *j = rbac_denied_json(r);
    CHECK(jx_int(j, "total", 0) == 3 && json_array_size(json_object_get(j, "denied")) == 2);
    json_t *d0 = json_array_get(json_object_get(j, "denied"), 0);
    CHECK(jx_int(d0, "count", 0) == 2 && strcmp(jx_str(d0, "resource", ""), "pods") == 0 &&
          strcmp(jx_str(d0, "verb", ""), "list") == 0 &&
          strcmp(jx_str(d0, "user", ""), "system:serviceaccount:sys:sa") == 0);
    CHECK(strcmp(jx_str(json_array_get(json_object_get(j, "denied"), 1), "path", ""), "/metrics") ==
          0);
    json_decref(j);
    rbac_reset(r);
    j = rbac_denied_json(r);
    CHECK(jx_int(j, "total", -1) == 0);
    json_decref(j);
    rbac_destroy(&r);
    CHECK(r == NULL);
    return SELFTEST_RESULT("rbac", verbose);
}
#endif
