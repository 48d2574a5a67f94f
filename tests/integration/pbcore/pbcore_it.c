/*
 * pbcore_it: kubesim's core/v1 protobuf schema (sim/proto/k8s/core_v1.proto and the meta,
 * resource, intstr messages it uses) with the transcoder (sim/pbjson) on realistic objects.
 *
 * pbjson_kind maps every served core/v1 kind and its List to its message. Every realistic object
 * in tests/golden/pbcore (<name>.json: kubesim's own objects read back with kubectl, three pods
 * as rayfleet's KubeRay builders make them, a ResourceQuota and a LimitRange) goes JSON ->
 * protobuf -> JSON unchanged (nulls aside: the wire has none), and the bytes pbjson writes unpack
 * with protobuf-c, driven by our descriptors only, with no unknown field anywhere. Every prefix
 * and single-byte corruption of the encoded worker Pod and PodList decodes to an object or an
 * error with a reason, never a crash.
 *
 * What this cannot show is that our field numbers are Kubernetes' own: that is checked against
 * the published generated.proto files by scripts/k8sproto.py --check, and on the wire against
 * kubectl's own encoder and decoder by integration.kubectl-proto.
 *
 * Usage: pbcore_it FIXTURE_DIR [-v]. Exit 0 when every check passes.
 */
#include "buf.h"
#include "pbjson.h"
#include "selftest.h"

#include "k8s/core_v1.pb-c.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PBC_MAX_FILE (4u << 20) /* bound of one fixture */
#define PBC_MAX_DEPTH 40 /* nesting bound of the walks */

static bool g_verbose;

typedef struct {
    const char *kind;
    const ProtobufCMessageDescriptor *d;
} pbc_kind_t;

/* The served core/v1 kinds (sim/apiserver.c s_builtins, ResourceQuota and LimitRange, Binding
 * for pods/binding, PodTemplate for the apps/batch templates) and their Lists. */
static const pbc_kind_t s_kinds[] = {
    {"Namespace", &k8s__io__api__core__v1__namespace__descriptor},
    {"NamespaceList", &k8s__io__api__core__v1__namespace_list__descriptor},
    {"Pod", &k8s__io__api__core__v1__pod__descriptor},
    {"PodList", &k8s__io__api__core__v1__pod_list__descriptor},
    {"Service", &k8s__io__api__core__v1__service__descriptor},
    {"ServiceList", &k8s__io__api__core__v1__service_list__descriptor},
    {"Endpoints", &k8s__io__api__core__v1__endpoints__descriptor},
    {"EndpointsList", &k8s__io__api__core__v1__endpoints_list__descriptor},
    {"Node", &k8s__io__api__core__v1__node__descriptor},
    {"NodeList", &k8s__io__api__core__v1__node_list__descriptor},
    {"Event", &k8s__io__api__core__v1__event__descriptor},
    {"EventList", &k8s__io__api__core__v1__event_list__descriptor},
    {"ConfigMap", &k8s__io__api__core__v1__config_map__descriptor},
    {"ConfigMapList", &k8s__io__api__core__v1__config_map_list__descriptor},
    {"Secret", &k8s__io__api__core__v1__secret__descriptor},
    {"SecretList", &k8s__io__api__core__v1__secret_list__descriptor},
    {"ServiceAccount", &k8s__io__api__core__v1__service_account__descriptor},
    {"ServiceAccountList", &k8s__io__api__core__v1__service_account_list__descriptor},
    {"PersistentVolumeClaim", &k8s__io__api__core__v1__persistent_volume_claim__descriptor},
    {"PersistentVolumeClaimList",
     &k8s__io__api__core__v1__persistent_volume_claim_list__descriptor},
    {"PersistentVolume", &k8s__io__api__core__v1__persistent_volume__descriptor},
    {"PersistentVolumeList", &k8s__io__api__core__v1__persistent_volume_list__descriptor},
    {"ResourceQuota", &k8s__io__api__core__v1__resource_quota__descriptor},
    {"ResourceQuotaList", &k8s__io__api__core__v1__resource_quota_list__descriptor},
    {"LimitRange", &k8s__io__api__core__v1__limit_range__descriptor},
    {"LimitRangeList", &k8s__io__api__core__v1__limit_range_list__descriptor},
    {"Binding", &k8s__io__api__core__v1__binding__descriptor},
    {"PodTemplate", &k8s__io__api__core__v1__pod_template__descriptor},
    {"PodTemplateList", &k8s__io__api__core__v1__pod_template_list__descriptor},
};

/* Whether field f of unpacked message m is present; its elements (for a message field) in
 * *elems / *n. */
static bool s_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, void ***elems,
                      size_t *n)
{
    const char *base = (const char *)m;
    *elems = NULL;
    *n = 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t count = *(const size_t *)(base + f->quantifier_offset);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            *elems = *(void ***)(base + f->offset);
            *n = count;
        }
        return count > 0;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        void **p = (void **)(base + f->offset);
        if (*p) {
            *elems = p;
            *n = 1;
        }
        return *p != NULL;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(const char *const *)(base + f->offset);
        return s && s != f->default_value;
    }
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
}

/* Counts unknown fields (anywhere below m) as failures. */
static int s_walk(const ProtobufCMessage *m, const char *where, int depth)
{
    int failed = 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > PBC_MAX_DEPTH) {
        printf("%s: %s nests deeper than %d\n", where, d->name, PBC_MAX_DEPTH);
        return 1;
    }
    if (m->n_unknown_fields) {
        for (unsigned i = 0; i < m->n_unknown_fields; i++)
            printf("%s: %s: field number %u is not in our schema\n", where, d->name,
                   (unsigned)m->unknown_fields[i].tag);
        failed += (int)m->n_unknown_fields;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        void **elems;
        size_t n;
        if (!s_present(m, &d->fields[i], &elems, &n))
            continue;
        for (size_t j = 0; j < n; j++)
            failed += s_walk(elems[j], where, depth + 1);
    }
    return failed;
}

/* Prints the first few places where got and want differ, by JSON path. */
static void s_diff(const char *what, const json_t *got, const json_t *want, buf_t *path,
                   int *budget)
{
    if (*budget <= 0 || json_equal(got, want))
        return;
    size_t mark = path->len;
    if (json_is_object(got) && json_is_object(want)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            buf_printf(path, ".%s", k);
            json_t *g = json_object_get(got, k);
            if (!g) {
                char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                printf("%s: %s missing (want %.80s)\n", what, buf_str(path), s ? s : "?");
                free(s);
                (*budget)--;
            } else {
                s_diff(what, g, v, path, budget);
            }
            path->len = mark;
            path->data[mark] = 0;
        }
        json_object_foreach((json_t *)got, k, v)
        {
            if (!json_object_get(want, k) && *budget > 0) {
                char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                printf("%s: %s.%s extra (%.80s)\n", what, buf_str(path), k, s ? s : "?");
                free(s);
                (*budget)--;
            }
        }
        return;
    }
    if (json_is_array(got) && json_is_array(want) &&
        json_array_size(got) == json_array_size(want)) {
        for (size_t i = 0; i < json_array_size(want); i++) {
            buf_printf(path, "[%zu]", i);
            s_diff(what, json_array_get(got, i), json_array_get(want, i), path, budget);
            path->len = mark;
            path->data[mark] = 0;
        }
        return;
    }
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
    printf("%s: %s is %.80s, want %.80s\n", what, path->len ? buf_str(path) : ".", g ? g : "?",
           w ? w : "?");
    free(g);
    free(w);
    (*budget)--;
}

static int s_same(const char *what, const json_t *got, const json_t *want)
{
    if (got && want && json_equal(got, want))
        return 0;
    buf_t path;
    buf_init(&path, 4096);
    int budget = 8;
    if (got && want)
        s_diff(what, got, want, &path, &budget);
    else
        printf("%s: nothing to compare\n", what);
    buf_free(&path);
    return 1;
}

/* apiVersion and kind travel in the envelope, not in the message: drop them (top and items). */
static void s_strip_typemeta(json_t *o)
{
    json_object_del(o, "apiVersion");
    json_object_del(o, "kind");
    json_t *items = json_object_get(o, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_object_del(json_array_get(items, i), "apiVersion");
        json_object_del(json_array_get(items, i), "kind");
    }
}

/* Drops every null member: kubesim stores Go's null for a zero Time (a pod condition's
 * lastProbeTime), which is no value on the wire. */
static void s_strip_nulls(json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, e)
        {
            if (json_is_null(e))
                json_object_del(v, k);
            else
                s_strip_nulls(e);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            s_strip_nulls(json_array_get(v, i));
    }
}

/* kubesim's JSON (nulls and type meta dropped) -> pbjson -> pbjson: unchanged; and the bytes
 * pbjson wrote unpack with protobuf-c, no unknown field anywhere. */
static int s_check_roundtrip(const char *json_path, const ProtobufCMessageDescriptor *d)
{
    int failed = 0;
    buf_t err, out;
    buf_init(&err, PBJSON_ERR_MAX);
    buf_init(&out, PBC_MAX_FILE);
    json_t *in = jx_load_file(json_path, PBC_MAX_FILE, &err), *back = NULL;
    if (!in) {
        printf("%s: %s\n", json_path, buf_str(&err));
        failed++;
        goto done;
    }
    s_strip_typemeta(in);
    s_strip_nulls(in);
    if (pbjson_encode(d, in, &out, &err) != 0) {
        printf("%s: pbjson cannot encode it: %s\n", json_path, buf_str(&err));
        failed++;
        goto done;
    }
    ProtobufCMessage *m =
        protobuf_c_message_unpack(d, NULL, out.len, (const uint8_t *)(out.data ? out.data : ""));
    if (!m) {
        printf("%s: pbjson's bytes do not unpack as %s\n", json_path, d->name);
        failed++;
    } else {
        failed += s_walk(m, json_path, 0);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    if (pbjson_decode(d, out.data ? out.data : "", out.len, &back, &err) != 0) {
        printf("%s: pbjson cannot decode its bytes: %s\n", json_path, buf_str(&err));
        failed++;
        goto done;
    }
    failed += s_same(json_path, back, in);
done:
    json_decref(in);
    json_decref(back);
    buf_free(&err);
    buf_free(&out);
    return failed;
}

/* Malformed bytes never crash pbjson: every prefix and every single-byte corruption (two
 * patterns) of pbjson's encoding of the object in `json_path` (message d) decode to an object or
 * an error with a reason. */
static int s_check_malformed(const char *json_path, const ProtobufCMessageDescriptor *d,
                             size_t *tried)
{
    int failed = 0;
    buf_t in, err;
    buf_init(&in, PBC_MAX_FILE);
    buf_init(&err, PBJSON_ERR_MAX);
    json_t *obj = jx_load_file(json_path, PBC_MAX_FILE, &err);
    if (obj) {
        s_strip_typemeta(obj);
        s_strip_nulls(obj);
    }
    if (!obj || pbjson_encode(d, obj, &in, &err) != 0 || in.len == 0) {
        printf("%s: cannot encode it: %s\n", json_path, buf_str(&err));
        json_decref(obj);
        buf_free(&in);
        buf_free(&err);
        return 1;
    }
    json_decref(obj);
    static const uint8_t pats[] = {0xff, 0x80};
    for (size_t at = 0; at <= in.len; at++) {
        for (size_t p = 0; p < 1 + sizeof(pats); p++) {
            if (p > 0 && at == in.len)
                break;
            size_t len = p == 0 ? at : in.len;
            uint8_t saved = at < in.len ? (uint8_t)in.data[at] : 0;
            if (p > 0)
                in.data[at] = (char)(saved ^ pats[p - 1]);
            json_t *out = NULL;
            buf_reset(&err);
            int rc = pbjson_decode(d, in.data, len, &out, &err);
            if (rc != 0 && err.len == 0) {
                printf("%s: byte %zu pattern %zu: error %d without a reason\n", json_path, at, p,
                       rc);
                failed++;
            }
            if ((rc == 0) != (out != NULL)) {
                printf("%s: byte %zu pattern %zu: rc %d with object %p\n", json_path, at, p, rc,
                       (void *)out);
                failed++;
            }
            json_decref(out);
            if (p > 0)
                in.data[at] = (char)saved;
            (*tried)++;
        }
    }
    buf_free(&in);
    buf_free(&err);
    return failed;
}

static const ProtobufCMessageDescriptor *s_kind(const char *kind)
{
    for (size_t i = 0; i < sizeof(s_kinds) / sizeof(s_kinds[0]); i++)
        if (kind && strcmp(s_kinds[i].kind, kind) == 0)
            return s_kinds[i].d;
    return NULL;
}

/* Every realistic fixture <name>.json round-trips. Returns the failures; *count is increased
 * by the fixtures checked. */
static int s_check_realistic(const char *dir, int *count)
{
    int failed = 0;
    DIR *dh = opendir(dir);
    if (!dh) {
        printf("%s: cannot open\n", dir);
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(dh))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        char jpath[4096];
        snprintf(jpath, sizeof(jpath), "%s/%s", dir, e->d_name);
        buf_t err;
        buf_init(&err, 1024);
        json_t *obj = jx_load_file(jpath, PBC_MAX_FILE, &err);
        const ProtobufCMessageDescriptor *d = s_kind(jx_str(obj, "kind", NULL));
        if (!d) {
            printf("%s: no served core/v1 kind (%s)\n", jpath, buf_str(&err));
            failed++;
        } else {
            failed += s_check_roundtrip(jpath, d);
            (*count)++;
        }
        json_decref(obj);
        buf_free(&err);
    }
    closedir(dh);
    return failed;
}

int main(int argc, char **argv)
{
    int failed = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: pbcore_it FIXTURE_DIR [-v]\n");
        return 2;
    }
    const char *dir = argv[1];
    g_verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
    char path[4096];
    for (size_t i = 0; i < sizeof(s_kinds) / sizeof(s_kinds[0]); i++) {
        if (pbjson_kind("v1", s_kinds[i].kind) != s_kinds[i].d) {
            printf("pbjson_kind(v1, %s) is not %s\n", s_kinds[i].kind, s_kinds[i].d->name);
            failed++;
        }
    }
    size_t tried = 0;
    snprintf(path, sizeof(path), "%s/pod-worker.json", dir);
    failed += s_check_malformed(path, &k8s__io__api__core__v1__pod__descriptor, &tried);
    snprintf(path, sizeof(path), "%s/podlist.json", dir);
    failed += s_check_malformed(path, &k8s__io__api__core__v1__pod_list__descriptor, &tried);
    if (g_verbose)
        printf("pbcore: %zu truncated or corrupted Pods and PodLists decoded, no crash\n", tried);
    int realistic = 0;
    failed += s_check_realistic(dir, &realistic);
    CHECK(realistic >= 18);
    printf("pbcore: %d failure(s)\n", failed);
    return failed ? 1 : 0;
}
