/*
 * pbcrd_it: the upstream KubeRay CRDs (ray.io_*.yaml, 0.8 to 1.4 MB of YAML each, read in place
 * from ../shared/kuberay/crd) through Kubernetes protobuf (sim/pbjson with
 * sim/proto/k8s/apiextensions_v1.proto) and back.
 *
 * For each CRD: JSON -> envelope -> JSON is the same object (the YAML's nulls aside: the wire
 * has none, as Go's omitempty pointers); the bytes unpack with protobuf-c driven by our
 * descriptors alone, and protobuf-c's own re-pack decodes to the same object again (an
 * independent reader and writer of the wire); the JSON names that are no proto names
 * (x-kubernetes-*) and the either messages (additionalProperties, items) really occur (these
 * CRDs have no x-kubernetes-preserve-unknown-fields: sim.pbjson covers it); every
 * 499th prefix of the encoded RayCluster CRD is an error or an object, never a crash. Prints the
 * JSON and protobuf sizes and the times.
 *
 * What this cannot show is that the field numbers are Kubernetes' own: scripts/k8sproto.py
 * --check compares the schema with upstream's generated.proto, integration.kubectl-proto reads
 * CRDs in protobuf from kubesim.
 *
 * Usage: pbcrd_it CRD_DIR [-v]. Exit 0 when every check passes.
 */
#include "buf.h"
#include "err.h"
#include "json.h"
#include "pbjson.h"
#include "rftime.h"
#include "selftest.h"
#include "yaml.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PBCRD_MAX_FILE (8u << 20) /* bound of one CRD file */
#define PBCRD_MAX_WIRE (64u << 20) /* bound of one encoding */

static bool g_verbose;

/* v without its null members, recursively (Go's unset pointers). */
static void s_strip_nulls(json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, x)
        {
            if (json_is_null(x))
                json_object_del(v, k);
            else
                s_strip_nulls(x);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) s_strip_nulls(x);
    }
}

/* How many members named `name` v holds, at any depth. */
static size_t s_count(const json_t *v, const char *name)
{
    size_t n = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) n += (strcmp(k, name) == 0) + s_count(x, name);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) n += s_count(x, name);
    }
    return n;
}

/* The first path where a and b differ, for the failure message. */
static void s_diff(const json_t *a, const json_t *b, buf_t *path)
{
    size_t at = path->len;
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)a, k, x)
        {
            if (!json_equal(x, json_object_get(b, k))) {
                buf_printf(path, ".%s", k);
                if (json_object_get(b, k))
                    s_diff(x, json_object_get(b, k), path);
                return;
            }
        }
        json_object_foreach((json_t *)b, k, x) if (!json_object_get(a, k))
        {
            buf_printf(path, ".%s (only after)", k);
            return;
        }
    } else if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b)) {
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_equal(json_array_get(a, i), json_array_get(b, i))) {
                buf_printf(path, "[%zu]", i);
                s_diff(json_array_get(a, i), json_array_get(b, i), path);
                return;
            }
    }
    (void)at;
}

static int s_crd(const char *path, const char *name)
{
    int failed = 0;
    buf_t err, env, raw;
    buf_init(&err, PBJSON_ERR_MAX);
    buf_init(&env, PBCRD_MAX_WIRE);
    buf_init(&raw, PBCRD_MAX_WIRE);
    json_t *docs = NULL, *back = NULL, *again = NULL;
    int rc = yaml_load_file(path, PBCRD_MAX_FILE, &docs, &err);
    json_t *in = json_array_get(docs, 0);
    CHECK(rc == 0 && json_array_size(docs) == 1 && in);
    if (!in) {
        printf("pbcrd: %s: %s\n", name, buf_str(&err));
        goto out;
    }
    s_strip_nulls(in);
    const ProtobufCMessageDescriptor *d =
        pbjson_kind(jx_str(in, "apiVersion", ""), jx_str(in, "kind", ""));
    CHECK(d && strcmp(d->short_name, "CustomResourceDefinition") == 0);
    if (!d)
        goto out;

    /* JSON -> envelope -> JSON */
    int64_t t0 = rftime_now_us();
    rc = pbjson_encode_object(in, &env, &err);
    int64_t t1 = rftime_now_us();
    if (rc == 0)
        rc = pbjson_decode_object(env.data, env.len, &back, &err);
    int64_t t2 = rftime_now_us();
    CHECK(rc == 0 && back && json_equal(in, back));
    if (rc < 0 || !back || !json_equal(in, back)) {
        buf_t p;
        buf_init(&p, 4096);
        if (back)
            s_diff(in, back, &p);
        printf("pbcrd: %s: round trip: rc %d %s; first difference at %s\n", name, rc, buf_str(&err),
               buf_str(&p));
        buf_free(&p);
    }

    /* protobuf-c reads our bytes with no unknown field and writes them back its own way */
    rc = pbjson_encode(d, in, &raw, &err);
    CHECK(rc == 0);
    ProtobufCMessage *m =
        rc == 0 ? protobuf_c_message_unpack(d, NULL, raw.len, (const uint8_t *)raw.data) : NULL;
    CHECK(m != NULL);
    if (m) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *p = malloc(n ? n : 1);
        CHECK(p && protobuf_c_message_pack(m, p) == n);
        if (p)
            rc = pbjson_decode(d, p, n, &again, &err);
        json_t *want = json_deep_copy(in);
        json_object_del(want, "apiVersion");
        json_object_del(want, "kind");
        CHECK(p && rc == 0 && json_equal(want, again));
        if (rc < 0)
            printf("pbcrd: %s: protobuf-c's bytes: %s\n", name, buf_str(&err));
        json_decref(want);
        free(p);
        protobuf_c_message_free_unpacked(m, NULL);
    }

    /* the special names and the either messages occur in these schemas */
    size_t ios = s_count(back, "x-kubernetes-int-or-string"),
           lt = s_count(back, "x-kubernetes-list-type"),
           lmk = s_count(back, "x-kubernetes-list-map-keys"),
           ap = s_count(back, "additionalProperties"), it = s_count(back, "items");
    CHECK(ios > 0 && lt > 0 && lmk > 0 && ap > 0 && it > 0);

    size_t jlen = 0;
    char *js = jx_dumps_compact(in, &jlen);
    printf("pbcrd: %s: JSON %zu bytes, protobuf %zu bytes (%.0f%%); encode %lld us, decode %lld "
           "us; x-kubernetes-int-or-string %zu, -list-type %zu, -list-map-keys %zu, "
           "additionalProperties %zu\n",
           name, jlen, env.len, jlen ? 100.0 * (double)env.len / (double)jlen : 0.0,
           (long long)(t1 - t0), (long long)(t2 - t1), ios, lt, lmk, ap);
    free(js);

    /* truncated inputs: an error or an object */
    if (strstr(name, "rayclusters")) {
        size_t tried = 0;
        for (size_t n = 0; n < env.len; n += 499, tried++) {
            json_t *o = NULL;
            buf_reset(&err);
            int r = pbjson_decode_object(env.data, n, &o, &err);
            CHECK(r == 0 || (r == ERR_PARSE && !o && err.len > 0));
            json_decref(o);
        }
        if (g_verbose)
            printf("pbcrd: %s: %zu prefixes decoded or refused\n", name, tried);
    }
out:
    json_decref(docs);
    json_decref(back);
    json_decref(again);
    buf_free(&err);
    buf_free(&env);
    buf_free(&raw);
    return failed;
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pbcrd_it CRD_DIR [-v]\n");
        return 2;
    }
    g_verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
    DIR *dir = opendir(argv[1]);
    if (!dir) {
        printf("pbcrd: cannot open %s\n", argv[1]);
        return 1;
    }
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n < 64) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".yaml") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(dir);
    qsort(names, n, sizeof(names[0]), s_cmp);
    int failed = 0;
    CHECK(n >= 4); /* rayclusters, raycronjobs, rayjobs, rayservices */
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]);
        failed += s_crd(path, names[i]);
        free(names[i]);
    }
    printf("pbcrd: %zu CRDs, %d failed\n", n, failed);
    return failed ? 1 : 0;
}
