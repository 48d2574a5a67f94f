/*
 * pbkube: the Kubernetes protobuf encoding of a few built-in kinds (see pbkube.h).
 */
#include "pbkube.h"

#include "err.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef enum { F_STR, F_STRS, F_INT, F_BOOL, F_MSG, F_MSGS, F_MAP } ftype_t;

typedef struct pbmsg pbmsg_t;

/* One field of a message schema. */
typedef struct {
    int num; /* field number */
    const char *name; /* JSON name */
    ftype_t type; /* how it decodes */
    const pbmsg_t *sub; /* F_MSG / F_MSGS: the message */
} pbfield_t;

struct pbmsg {
    const pbfield_t *fields; /* its fields */
    size_t n; /* their number */
};

#define MSG(arr)                                                                                   \
    {                                                                                              \
        arr, sizeof(arr) / sizeof(arr[0])                                                          \
    }

static const pbfield_t s_meta_f[] = {
    {1, "name", F_STR, NULL},    {2, "generateName", F_STR, NULL}, {3, "namespace", F_STR, NULL},
    {11, "labels", F_MAP, NULL}, {12, "annotations", F_MAP, NULL}, {14, "finalizers", F_STRS, NULL},
};
static const pbmsg_t s_meta = MSG(s_meta_f);

static const pbfield_t s_ns_f[] = {{1, "metadata", F_MSG, &s_meta}};
static const pbmsg_t s_ns = MSG(s_ns_f);

static const pbfield_t s_sa_f[] = {{1, "metadata", F_MSG, &s_meta},
                                   {4, "automountServiceAccountToken", F_BOOL, NULL}};
static const pbmsg_t s_sa = MSG(s_sa_f);

static const pbfield_t s_trspec_f[] = {{1, "audiences", F_STRS, NULL},
                                       {4, "expirationSeconds", F_INT, NULL}};
static const pbmsg_t s_trspec = MSG(s_trspec_f);
static const pbfield_t s_tr_f[] = {{1, "metadata", F_MSG, &s_meta}, {2, "spec", F_MSG, &s_trspec}};
static const pbmsg_t s_tr = MSG(s_tr_f);

static const pbfield_t s_rule_f[] = {
    {1, "verbs", F_STRS, NULL},           {2, "apiGroups", F_STRS, NULL},
    {3, "resources", F_STRS, NULL},       {4, "resourceNames", F_STRS, NULL},
    {5, "nonResourceURLs", F_STRS, NULL},
};
static const pbmsg_t s_rule = MSG(s_rule_f);
static const pbfield_t s_role_f[] = {{1, "metadata", F_MSG, &s_meta},
                                     {2, "rules", F_MSGS, &s_rule}};
static const pbmsg_t s_role = MSG(s_role_f);

static const pbfield_t s_subject_f[] = {{1, "kind", F_STR, NULL},
                                        {2, "apiGroup", F_STR, NULL},
                                        {3, "name", F_STR, NULL},
                                        {4, "namespace", F_STR, NULL}};
static const pbmsg_t s_subject = MSG(s_subject_f);
static const pbfield_t s_roleref_f[] = {
    {1, "apiGroup", F_STR, NULL}, {2, "kind", F_STR, NULL}, {3, "name", F_STR, NULL}};
static const pbmsg_t s_roleref = MSG(s_roleref_f);
static const pbfield_t s_binding_f[] = {{1, "metadata", F_MSG, &s_meta},
                                        {2, "subjects", F_MSGS, &s_subject},
                                        {3, "roleRef", F_MSG, &s_roleref}};
static const pbmsg_t s_binding = MSG(s_binding_f);

/* The kinds decoded. */
static const struct {
    const char *api_version, *kind; /* TypeMeta */
    const pbmsg_t *msg; /* schema */
} s_kinds[] = {
    {"v1", "Namespace", &s_ns},
    {"v1", "ServiceAccount", &s_sa},
    {"authentication.k8s.io/v1", "TokenRequest", &s_tr},
    {"rbac.authorization.k8s.io/v1", "Role", &s_role},
    {"rbac.authorization.k8s.io/v1", "ClusterRole", &s_role},
    {"rbac.authorization.k8s.io/v1", "RoleBinding", &s_binding},
    {"rbac.authorization.k8s.io/v1", "ClusterRoleBinding", &s_binding},
};

/* Reads a varint at *p (< end). Returns false when malformed. */
static bool s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* Iterates the fields of a message: calls fn for each (number, wire type, varint value or
 * bytes). Returns 0 or ERR_PARSE. */
typedef int (*field_fn)(int num, int wt, uint64_t v, const uint8_t *b, size_t n, void *arg);

static int s_walk(const uint8_t *p, size_t len, field_fn fn, void *arg)
{
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t tag, v = 0;
        if (!s_varint(&p, end, &tag))
            return ERR_PARSE;
        int wt = (int)(tag & 7), num = (int)(tag >> 3);
        const uint8_t *b = NULL;
        size_t n = 0;
        if (wt == 0) {
            if (!s_varint(&p, end, &v))
                return ERR_PARSE;
        } else if (wt == 2) {
            if (!s_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return ERR_PARSE;
            b = p;
            n = (size_t)v;
            p += n;
        } else if (wt == 1 || wt == 5) {
            size_t skip = wt == 1 ? 8 : 4;
            if ((size_t)(end - p) < skip)
                return ERR_PARSE;
            p += skip;
        } else {
            return ERR_PARSE;
        }
        int rc = fn(num, wt, v, b, n, arg);
        if (rc < 0)
            return rc;
    }
    return 0;
}

typedef struct {
    const pbmsg_t *msg; /* schema */
    json_t *obj; /* what is filled */
    int depth; /* nesting */
} dec_t;

static int s_decode_msg(const pbmsg_t *m, const uint8_t *b, size_t n, int depth, json_t **out);

typedef struct {
    json_t *key, *val; /* a map entry's key and value */
} entry_t;

static int s_entry_cb(int num, int wt, uint64_t v, const uint8_t *b, size_t n, void *arg)
{
    entry_t *e = arg;
    if (wt != 2 || (num != 1 && num != 2))
        return 0;
    json_t *s = json_stringn((const char *)b, n);
    if (!s)
        return ERR_PARSE; /* not UTF-8 */
    json_t **slot = num == 1 ? &e->key : &e->val;
    json_decref(*slot);
    *slot = s;
    return 0;
}

static int s_field_cb(int num, int wt, uint64_t v, const uint8_t *b, size_t n, void *arg)
{
    dec_t *d = arg;
    const pbfield_t *f = NULL;
    for (size_t i = 0; i < d->msg->n; i++)
        if (d->msg->fields[i].num == num)
            f = &d->msg->fields[i];
    if (!f)
        return 0; /* a field we do not read */
    if ((f->type == F_INT || f->type == F_BOOL) != (wt == 0))
        return ERR_PARSE;
    switch (f->type) {
    case F_INT:
        return json_object_set_new(d->obj, f->name, json_integer((json_int_t)v)) ? ERR_PARSE : 0;
    case F_BOOL:
        return json_object_set_new(d->obj, f->name, json_boolean(v != 0)) ? ERR_PARSE : 0;
    case F_STR:
    case F_STRS: {
        json_t *s = json_stringn((const char *)b, n);
        if (!s)
            return ERR_PARSE;
        if (f->type == F_STR) {
            if (n == 0) {
                json_decref(s);
                return 0;
            }
            return json_object_set_new(d->obj, f->name, s) ? ERR_PARSE : 0;
        }
        json_t *arr = json_object_get(d->obj, f->name);
        if (!arr) {
            arr = json_array();
            json_object_set_new(d->obj, f->name, arr);
        }
        return json_array_append_new(arr, s) ? ERR_PARSE : 0;
    }
    case F_MAP: {
        entry_t e = {NULL, NULL};
        int rc = s_walk(b, n, s_entry_cb, &e);
        if (rc == 0 && e.key) {
            json_t *map = json_object_get(d->obj, f->name);
            if (!map) {
                map = json_object();
                json_object_set_new(d->obj, f->name, map);
            }
            rc = json_object_set_new(map, json_string_value(e.key),
                                     e.val ? json_incref(e.val) : json_string(""))
                     ? ERR_PARSE
                     : 0;
        }
        json_decref(e.key);
        json_decref(e.val);
        return rc;
    }
    case F_MSG:
    case F_MSGS: {
        json_t *sub = NULL;
        int rc = s_decode_msg(f->sub, b, n, d->depth + 1, &sub);
        if (rc < 0)
            return rc;
        if (f->type == F_MSG)
            return json_object_set_new(d->obj, f->name, sub) ? ERR_PARSE : 0;
        json_t *arr = json_object_get(d->obj, f->name);
        if (!arr) {
            arr = json_array();
            json_object_set_new(d->obj, f->name, arr);
        }
        return json_array_append_new(arr, sub) ? ERR_PARSE : 0;
    }
    }
    return 0;
}

static int s_decode_msg(const pbmsg_t *m, const uint8_t *b, size_t n, int depth, json_t **out)
{
    *out = NULL;
    if (depth > PBKUBE_MAX_DEPTH)
        return ERR_PARSE;
    dec_t d = {m, json_object(), depth};
    if (!d.obj)
        return ERR_NOMEM;
    int rc = s_walk(b, n, s_field_cb, &d);
    if (rc < 0) {
        json_decref(d.obj);
        return rc;
    }
    *out = d.obj;
    return 0;
}

/* runtime.Unknown: typeMeta (1: apiVersion, 2: kind), raw (2). */
typedef struct {
    char api_version[128], kind[128]; /* TypeMeta */
    const uint8_t *raw; /* the object's bytes */
    size_t raw_len; /* their length */
    bool has_raw; /* raw was present */
} unknown_t;

static int s_typemeta_cb(int num, int wt, uint64_t v, const uint8_t *b, size_t n, void *arg)
{
    unknown_t *u = arg;
    if (wt != 2 || (num != 1 && num != 2))
        return 0;
    char *dst = num == 1 ? u->api_version : u->kind;
    if (n >= sizeof(u->kind))
        return ERR_PARSE;
    memcpy(dst, b, n);
    dst[n] = '\0';
    return 0;
}

static int s_unknown_cb(int num, int wt, uint64_t v, const uint8_t *b, size_t n, void *arg)
{
    unknown_t *u = arg;
    if (wt != 2)
        return 0;
    if (num == 1)
        return s_walk(b, n, s_typemeta_cb, u);
    if (num == 2) {
        u->raw = b;
        u->raw_len = n;
        u->has_raw = true;
    }
    return 0;
}

int pbkube_decode(const void *data, size_t len, json_t **out, char *kind_out)
{
    *out = NULL;
    if (kind_out)
        kind_out[0] = '\0';
    static const uint8_t magic[4] = {'k', '8', 's', 0};
    if (len < 4 || memcmp(data, magic, 4) != 0)
        return ERR_PARSE;
    unknown_t u;
    memset(&u, 0, sizeof(u));
    if (s_walk((const uint8_t *)data + 4, len - 4, s_unknown_cb, &u) < 0 || !u.has_raw)
        return ERR_PARSE;
    if (kind_out)
        snprintf(kind_out, 128, "%s", u.kind);
    for (size_t i = 0; i < sizeof(s_kinds) / sizeof(s_kinds[0]); i++) {
        if (strcmp(s_kinds[i].api_version, u.api_version) != 0 ||
            strcmp(s_kinds[i].kind, u.kind) != 0)
            continue;
        json_t *obj = NULL;
        int rc = s_decode_msg(s_kinds[i].msg, u.raw, u.raw_len, 0, &obj);
        if (rc < 0)
            return rc;
        json_object_set_new(obj, "apiVersion", json_string(u.api_version));
        json_object_set_new(obj, "kind", json_string(u.kind));
        *out = obj;
        return 0;
    }
    return ERR_NOTFOUND;
}

#ifdef RF_SELFTEST
#include "json.h"
#include "selftest.h"

/* Encoders for the self-test's messages (small fields only). */
static size_t t_varint(uint8_t *b, size_t at, uint64_t v)
{
    while (v >= 0x80) {
        b[at++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[at++] = (uint8_t)v;
    return at;
}

static size_t t_bytes(uint8_t *b, size_t at, int num, const void *p, size_t n)
{
    at = t_varint(b, at, (uint64_t)num << 3 | 2);
    at = t_varint(b, at, n);
    memcpy(b + at, p, n);
    return at + n;
}

static size_t t_str(uint8_t *b, size_t at, int num, const char *s)
{
    return t_bytes(b, at, num, s, strlen(s));
}

int pbkube_test(bool verbose)
{
    int failed = 0;
    /* What kubectl 1.32 sends for `kubectl -n rfs create token sa1 --duration 20m --audience
     * aud1` (its -v=8 dump). */
    static const uint8_t tr[] = {
        0x6b, 0x38, 0x73, 0x00, 0x0a, 0x28, 0x0a, 0x18, 0x61, 0x75, 0x74, 0x68, 0x65, 0x6e, 0x74,
        0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2e, 0x6b, 0x38, 0x73, 0x2e, 0x69, 0x6f, 0x2f,
        0x76, 0x31, 0x12, 0x0c, 0x54, 0x6f, 0x6b, 0x65, 0x6e, 0x52, 0x65, 0x71, 0x75, 0x65, 0x73,
        0x74, 0x12, 0x23, 0x0a, 0x10, 0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00,
        0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x09, 0x0a, 0x04, 0x61, 0x75, 0x64, 0x31, 0x20,
        0xb0, 0x09, 0x1a, 0x04, 0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00};
    json_t *o = NULL;
    char kind[128];
    CHECK(pbkube_decode(tr, sizeof(tr), &o, kind) == 0 && strcmp(kind, "TokenRequest") == 0);
    CHECK(o && jx_int(o, "spec.expirationSeconds", 0) == 1200 &&
          json_is_string(json_array_get(jx_get(o, "spec.audiences"), 0)) &&
          strcmp(json_string_value(json_array_get(jx_get(o, "spec.audiences"), 0)), "aud1") == 0 &&
          strcmp(jx_str(o, "apiVersion", ""), "authentication.k8s.io/v1") == 0 &&
          json_object_size(jx_get(o, "metadata")) == 0);
    json_decref(o);
    /* A ClusterRoleBinding as `kubectl create clusterrolebinding x --clusterrole=c
     * --serviceaccount=rfs:sa1` sends it, with a label added. */
    uint8_t meta[64], subj[64], ref[64], raw[256], tm[128], unk[512], crb[600];
    size_t nm = 0, ns = 0, nr = 0, nraw = 0, ntm = 0, nu = 0, nc = 0;
    uint8_t lab[16];
    size_t nl = 0;
    nm = t_str(meta, nm, 1, "x");
    nm = t_str(meta, nm, 2, "");
    nl = t_str(lab, nl, 1, "a");
    nl = t_str(lab, nl, 2, "bcd");
    nm = t_bytes(meta, nm, 11, lab, nl);
    ns = t_str(subj, ns, 1, "ServiceAccount");
    ns = t_str(subj, ns, 2, "");
    ns = t_str(subj, ns, 3, "sa1");
    ns = t_str(subj, ns, 4, "rfs");
    nr = t_str(ref, nr, 1, "rbac.authorization.k8s.io");
    nr = t_str(ref, nr, 2, "ClusterRole");
    nr = t_str(ref, nr, 3, "c");
    nraw = t_bytes(raw, nraw, 1, meta, nm);
    nraw = t_bytes(raw, nraw, 2, subj, ns);
    nraw = t_bytes(raw, nraw, 3, ref, nr);
    nraw = t_varint(raw, nraw, 9 << 3); /* an unknown varint field, skipped */
    nraw = t_varint(raw, nraw, 300);
    ntm = t_str(tm, ntm, 1, "rbac.authorization.k8s.io/v1");
    ntm = t_str(tm, ntm, 2, "ClusterRoleBinding");
    nu = t_bytes(unk, nu, 1, tm, ntm);
    nu = t_bytes(unk, nu, 2, raw, nraw);
    memcpy(crb, "k8s", 4);
    memcpy(crb + 4, unk, nu);
    nc = 4 + nu;
    CHECK(pbkube_decode(crb, nc, &o, kind) == 0);
    json_t *s0 = json_array_get(jx_get(o, "subjects"), 0);
    CHECK(o && strcmp(jx_str(o, "metadata.name", ""), "x") == 0 &&
          !jx_get(o, "metadata.generateName") &&
          strcmp(jx_str(o, "metadata.labels.a", ""), "bcd") == 0 &&
          strcmp(jx_str(s0, "kind", ""), "ServiceAccount") == 0 &&
          strcmp(jx_str(s0, "namespace", ""), "rfs") == 0 && !jx_get(s0, "apiGroup") &&
          strcmp(jx_str(o, "roleRef.kind", ""), "ClusterRole") == 0 &&
          strcmp(jx_str(o, "roleRef.name", ""), "c") == 0 &&
          strcmp(jx_str(o, "kind", ""), "ClusterRoleBinding") == 0);
    json_decref(o);
    /* Cut short: malformed. */
    CHECK(pbkube_decode(crb, nc - 3, &o, NULL) == ERR_PARSE && !o);
    CHECK(pbkube_decode("{}", 2, &o, NULL) == ERR_PARSE);
    /* Another kind: not decoded, named. */
    ntm = 0;
    ntm = t_str(tm, ntm, 1, "batch/v1");
    ntm = t_str(tm, ntm, 2, "Job");
    nu = 0;
    nu = t_bytes(unk, nu, 1, tm, ntm);
    nu = t_bytes(unk, nu, 2, raw, nraw);
    memcpy(crb + 4, unk, nu);
    CHECK(pbkube_decode(crb, 4 + nu, &o, kind) == ERR_NOTFOUND && !o && strcmp(kind, "Job") == 0);
    return SELFTEST_RESULT("pbkube", verbose);
}
#endif
