/*
 * pbcore_it: kubesim's core/v1 protobuf schema (sim/proto/k8s/core_v1.proto and the meta,
 * resource, intstr messages it uses) checked against Kubernetes' own encoder. The fixtures in
 * tests/golden/pbcore were written by scripts/pbcore-fixtures with the Go types of k8s.io/api
 * v0.32.0; nothing here encodes them, so the schema is never checked against itself.
 *
 * For every served core/v1 kind and its List, fill/<Kind>.pb is the object with every field set
 * (no nil pointer, slice or map) as the generated Go Marshal() writes it. protobuf-c, driven by
 * our descriptors only, must:
 *   - unpack it with no unknown field anywhere (every field number Go wrote is in our schema,
 *     with a wire type our field type accepts);
 *   - pack it back to the same bytes (same numbers, types, labels and order);
 *   - have seen every field of every message reachable from the kinds (every field of our schema
 *     is one Go writes: none invented, none misnumbered into another's place).
 * zero/<Kind>.pb (every pointer, slice and map set, every scalar zero) must do the same.
 * Realistic objects (<name>.pb: kubesim's own objects, read back with kubectl; three pods as
 * rayfleet's KubeRay builders make them (tests/golden/podbuild); a
 * ResourceQuota and a LimitRange, decoded strictly into the Go types and encoded by Go) must
 * unpack and pack back the same way.
 *
 * The transcoder (sim/pbjson) with this schema: it maps each kind to the same message; kubesim's
 * objects go JSON -> protobuf -> JSON unchanged (nulls aside: the wire has none), and the bytes
 * it writes unpack with protobuf-c with no unknown field. (That pbjson decodes Go's bytes of
 * every fixture to exactly Go's JSON, which proves every inline field and keep-zero marker, is
 * integration.pbjson-golden, on the same fixtures.) Every prefix and single-byte corruption of Go's
 * Pod (every field set) and PodList (kubesim's) bytes decodes to an object or an error, never a
 * crash.
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
#define PBC_MAX_MSGS 512 /* messages reachable from the kinds */
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

/* Which fields of which messages the fixtures had (bit i: field index i of the descriptor). */
typedef struct {
    const ProtobufCMessageDescriptor *d;
    uint64_t seen;
} pbc_cover_t;

static pbc_cover_t s_cover[PBC_MAX_MSGS];
static size_t s_ncover;

static pbc_cover_t *s_cover_of(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < s_ncover; i++)
        if (s_cover[i].d == d)
            return &s_cover[i];
    if (s_ncover == PBC_MAX_MSGS)
        return NULL;
    s_cover[s_ncover].d = d;
    s_cover[s_ncover].seen = 0;
    return &s_cover[s_ncover++];
}

static int s_read(const char *path, buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char tmp[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        if (buf_append(out, tmp, n) < 0) {
            rc = -1;
            break;
        }
    if (ferror(f))
        rc = -1;
    fclose(f);
    return rc;
}

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

/* Records what m has; counts unknown fields (anywhere below m) as failures. */
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
    pbc_cover_t *c = s_cover_of(d);
    CHECK(c != NULL);
    CHECK(d->n_fields <= 64);
    for (unsigned i = 0; i < d->n_fields && i < 64; i++) {
        void **elems;
        size_t n;
        if (!s_present(m, &d->fields[i], &elems, &n))
            continue;
        if (c)
            c->seen |= (uint64_t)1 << i;
        for (size_t j = 0; j < n; j++)
            failed += s_walk(elems[j], where, depth + 1);
    }
    return failed;
}

/* Unpacks file `path` as message d: no unknown field, packs back to the same bytes. */
static int s_check_file(const char *path, const ProtobufCMessageDescriptor *d)
{
    int failed = 0;
    buf_t in;
    buf_init(&in, PBC_MAX_FILE);
    if (s_read(path, &in) < 0) {
        printf("%s: unreadable\n", path);
        buf_free(&in);
        return 1;
    }
    ProtobufCMessage *m =
        protobuf_c_message_unpack(d, NULL, in.len, (const uint8_t *)(in.data ? in.data : ""));
    if (!m) {
        printf("%s: protobuf-c cannot unpack it as %s (a wire type our schema refuses)\n", path,
               d->name);
        buf_free(&in);
        return 1;
    }
    failed += s_walk(m, path, 0);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *out = malloc(n ? n : 1);
    CHECK(out != NULL);
    if (out) {
        size_t w = protobuf_c_message_pack(m, out);
        if (w != in.len || memcmp(out, in.data, w) != 0) {
            size_t at = 0;
            while (at < w && at < in.len && out[at] == (uint8_t)in.data[at])
                at++;
            printf("%s: packs back to %zu bytes, not Go's %zu (first difference at byte %zu)\n",
                   path, w, in.len, at);
            failed++;
        } else if (g_verbose) {
            printf("%s: %zu bytes as %s, unpacked and packed back identical\n", path, w, d->name);
        }
        free(out);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    buf_free(&in);
    return failed;
}

/* Every field of every message reachable from d must have been seen. */
static int s_check_cover(const ProtobufCMessageDescriptor *d,
                         const ProtobufCMessageDescriptor **done, size_t *ndone, int depth)
{
    int failed = 0;
    for (size_t i = 0; i < *ndone; i++)
        if (done[i] == d)
            return 0;
    if (*ndone == PBC_MAX_MSGS || depth > PBC_MAX_DEPTH)
        return 1;
    done[(*ndone)++] = d;
    pbc_cover_t *c = s_cover_of(d);
    for (unsigned i = 0; i < d->n_fields && i < 64; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!c || !(c->seen & ((uint64_t)1 << i))) {
            printf("%s.%s (number %u): never written by Kubernetes' encoder\n", d->name, f->name,
                   f->id);
            failed++;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            failed += s_check_cover(f->descriptor, done, ndone, depth + 1);
    }
    return failed;
}

/* ---- the transcoder (sim/pbjson) on the same fixtures ------------------------------------ */

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
 * patterns) of Go's bytes in `pb_path` decode to an object or an error with a reason. */
static int s_check_malformed(const char *pb_path, const ProtobufCMessageDescriptor *d,
                             size_t *tried)
{
    int failed = 0;
    buf_t in, err;
    buf_init(&in, PBC_MAX_FILE);
    buf_init(&err, PBJSON_ERR_MAX);
    if (s_read(pb_path, &in) < 0 || in.len == 0) {
        printf("%s: unreadable\n", pb_path);
        buf_free(&in);
        return 1;
    }
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
                printf("%s: byte %zu pattern %zu: error %d without a reason\n", pb_path, at, p, rc);
                failed++;
            }
            if ((rc == 0) != (out != NULL)) {
                printf("%s: byte %zu pattern %zu: rc %d with object %p\n", pb_path, at, p, rc,
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

/* Every realistic fixture <name>.pb (its kind from <name>.json) unpacks and packs back the
 * same. Returns the failures; *count is increased by the fixtures checked. */
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
        if (n < 4 || strcmp(e->d_name + n - 3, ".pb") != 0)
            continue;
        char path[4096], jpath[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        snprintf(jpath, sizeof(jpath), "%s/%.*s.json", dir, (int)(n - 3), e->d_name);
        buf_t err;
        buf_init(&err, 1024);
        json_t *obj = jx_load_file(jpath, PBC_MAX_FILE, &err);
        const ProtobufCMessageDescriptor *d = s_kind(jx_str(obj, "kind", NULL));
        if (!d) {
            printf("%s: no served core/v1 kind (%s)\n", jpath, buf_str(&err));
            failed++;
        } else {
            failed += s_check_file(path, d);
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
        snprintf(path, sizeof(path), "%s/fill/%s.pb", dir, s_kinds[i].kind);
        failed += s_check_file(path, s_kinds[i].d);
        snprintf(path, sizeof(path), "%s/zero/%s.pb", dir, s_kinds[i].kind);
        failed += s_check_file(path, s_kinds[i].d);
    }
    size_t tried = 0;
    snprintf(path, sizeof(path), "%s/fill/Pod.pb", dir);
    failed += s_check_malformed(path, &k8s__io__api__core__v1__pod__descriptor, &tried);
    snprintf(path, sizeof(path), "%s/podlist.pb", dir);
    failed += s_check_malformed(path, &k8s__io__api__core__v1__pod_list__descriptor, &tried);
    if (g_verbose)
        printf("pbcore: %zu truncated or corrupted Pods and PodLists decoded, no crash\n", tried);
    int realistic = 0;
    failed += s_check_realistic(dir, &realistic);
    CHECK(realistic >= 18);
    const ProtobufCMessageDescriptor *done[PBC_MAX_MSGS];
    size_t ndone = 0;
    for (size_t i = 0; i < sizeof(s_kinds) / sizeof(s_kinds[0]); i++)
        failed += s_check_cover(s_kinds[i].d, done, &ndone, 0);
    if (g_verbose)
        printf("pbcore: %zu messages reachable from %zu kinds, every field written by Go\n", ndone,
               sizeof(s_kinds) / sizeof(s_kinds[0]));
    printf("pbcore: %d failure(s)\n", failed);
    return failed ? 1 : 0;
}
