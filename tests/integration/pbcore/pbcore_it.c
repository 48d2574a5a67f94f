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
 * Realistic objects (<name>.pb: kubesim's own objects, read back with kubectl, and a
 * ResourceQuota and a LimitRange, decoded strictly into the Go types and encoded by Go) must
 * unpack and pack back the same way.
 *
 * Usage: pbcore_it FIXTURE_DIR [-v]. Exit 0 when every check passes.
 */
#include "buf.h"
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
        snprintf(path, sizeof(path), "%s/fill/%s.pb", dir, s_kinds[i].kind);
        failed += s_check_file(path, s_kinds[i].d);
        snprintf(path, sizeof(path), "%s/zero/%s.pb", dir, s_kinds[i].kind);
        failed += s_check_file(path, s_kinds[i].d);
    }
    int realistic = 0;
    failed += s_check_realistic(dir, &realistic);
    CHECK(realistic >= 15);
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
