/*
 * pbjson_golden: sim/pbjson against Kubernetes' own encoder. The fixtures of tests/golden/pbcore
 * (scripts/pbcore-fixtures: the Go types of k8s.io/api v0.32.0 wrote both files) pair an object's
 * protobuf (X.pb, the message without the envelope) with Go's JSON of the same object (X.go.json,
 * else X.json). For each pair, pbjson must decode the protobuf to Go's JSON (Go's nulls are unset
 * fields; apiVersion and kind travel in the envelope, not the message), and encode that JSON back
 * to protobuf that decodes to the same JSON again. Byte-for-byte equality with Go's bytes is
 * counted, not required: Go also writes the zero of every non-pointer field, which JSON omits.
 *
 * groups/{fill,zero}/<group>_<version>_<Kind>.pb hold the other groups' served kinds the same way.
 *
 * Usage: pbjson_golden FIXTURE_DIR [-v]. Exit 0 when every check passes.
 */
#include "buf.h"
#include "err.h"
#include "json.h"
#include "pbjson.h"
#include "selftest.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_MAX_FILE (8u << 20) /* bound of one fixture */

static bool g_verbose;

/* Go's JSON without its nulls (unset pointers, slices and maps; the zero Time). */
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
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) s_strip_nulls(e);
    }
}

/* Prints up to `left` differences between want and got under path. */
static void s_diff(const json_t *w, const json_t *g, const char *path, int *left)
{
    if (*left <= 0 || json_equal(w, g))
        return;
    char p[512];
    if (json_is_object(w) && json_is_object(g)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)w, k, e)
        {
            snprintf(p, sizeof(p), "%s.%s", path, k);
            s_diff(e, json_object_get(g, k), p, left);
        }
        json_object_foreach((json_t *)g, k, e)
        {
            if (!json_object_get(w, k) && (*left)-- > 0)
                printf("    %s.%s: not in Go's JSON\n", path, k);
        }
        return;
    }
    if (json_is_array(w) && json_is_array(g) && json_array_size(w) == json_array_size(g)) {
        for (size_t i = 0; i < json_array_size(w); i++) {
            snprintf(p, sizeof(p), "%s[%zu]", path, i);
            s_diff(json_array_get(w, i), json_array_get(g, i), p, left);
        }
        return;
    }
    char *a = w ? json_dumps(w, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    char *b = g ? json_dumps(g, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    printf("    %s: Go %.200s, pbjson %.200s\n", path, a ? a : "(absent)", b ? b : "(absent)");
    free(a);
    free(b);
    (*left)--;
}

static int s_read(const char *path, buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ERR_IO;
    char tmp[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        rc = buf_append(out, tmp, n);
    fclose(f);
    return rc;
}

/* One fixture pair: dir/stem.pb and its JSON. Returns the failures. */
static int s_check(const char *dir, const char *stem, bool exact, int *pairs, int *same_bytes)
{
    int failed = 0;
    char path[1024];
    buf_t pb, err, again;
    buf_init(&pb, PG_MAX_FILE);
    buf_init(&err, PBJSON_ERR_MAX);
    buf_init(&again, PG_MAX_FILE);
    snprintf(path, sizeof(path), "%s/%s.go.json", dir, stem);
    json_t *want = jx_load_file(path, PG_MAX_FILE, &err);
    if (!want) {
        buf_reset(&err);
        snprintf(path, sizeof(path), "%s/%s.json", dir, stem);
        want = jx_load_file(path, PG_MAX_FILE, &err);
    }
    snprintf(path, sizeof(path), "%s/%s.pb", dir, stem);
    if (!want || s_read(path, &pb) < 0) {
        printf("pbjson_golden: %s/%s: unreadable %s\n", dir, stem, buf_str(&err));
        json_decref(want);
        buf_free(&pb);
        buf_free(&err);
        buf_free(&again);
        return 1;
    }
    /* groups/: <group>_<version>_<Kind> (scripts/pbcore-fixtures/groups.go), else core's */
    char av[256] = "v1";
    const char *kind = jx_str(want, "kind", stem);
    const char *us = strrchr(stem, '_');
    if (us && !json_object_get(want, "kind")) {
        const char *vs = us - 1;
        while (vs > stem && *vs != '_')
            vs--;
        if (*vs == '_')
            snprintf(av, sizeof(av), "%.*s/%.*s", (int)(vs - stem), stem, (int)(us - vs - 1),
                     vs + 1);
        kind = us + 1;
    }
    const ProtobufCMessageDescriptor *d = pbjson_kind(av, kind);
    json_object_del(want, "apiVersion");
    json_object_del(want, "kind");
    s_strip_nulls(want);
    /* a List's items carry no TypeMeta on the wire (Go's JSON of them came from kubectl's) */
    size_t ii;
    json_t *item;
    json_array_foreach(json_object_get(want, "items"), ii, item)
    {
        json_object_del(item, "apiVersion");
        json_object_del(item, "kind");
    }
    json_t *got = NULL, *back = NULL;
    int rc = d ? pbjson_decode(d, pb.data, pb.len, &got, &err) : ERR_NOTFOUND;
    (*pairs)++;
    if (rc < 0 || !json_equal(want, got)) {
        printf("pbjson_golden: %s/%s (%s): decode rc %d %s\n", dir, stem, kind, rc, buf_str(&err));
        int left = 12;
        if (got)
            s_diff(want, got, "", &left);
        failed++;
    } else {
        rc = pbjson_encode(d, got, &again, &err);
        if (rc == 0)
            rc = pbjson_decode(d, again.data, again.len, &back, &err);
        bool same = rc == 0 && again.len == pb.len && memcmp(again.data, pb.data, pb.len) == 0;
        if (rc < 0 || !json_equal(got, back) || (exact && !same)) {
            printf("pbjson_golden: %s/%s: encode back: rc %d %s, %zu bytes (Go %zu), %s\n", dir,
                   stem, rc, buf_str(&err), again.len, pb.len,
                   back && json_equal(got, back) ? "same JSON" : "other JSON");
            failed++;
        }
        if (same)
            (*same_bytes)++;
        if (g_verbose)
            printf("pbjson_golden: %s/%s: %zu bytes, %s\n", dir, stem, pb.len,
                   same ? "re-encoded byte for byte" : "re-encoded to the same JSON");
    }
    json_decref(want);
    json_decref(got);
    json_decref(back);
    buf_free(&pb);
    buf_free(&err);
    buf_free(&again);
    return failed;
}

static int s_dir(const char *dir, bool exact, int *pairs, int *same)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        printf("pbjson_golden: no directory %s\n", dir);
        return 1;
    }
    char *names[512];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL && n < 512) {
        size_t l = strlen(e->d_name);
        if (l > 3 && strcmp(e->d_name + l - 3, ".pb") == 0)
            names[n++] = strndup(e->d_name, l - 3);
    }
    closedir(dp);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        failed += s_check(dir, names[i], exact, pairs, same);
        free(names[i]);
    }
    return failed;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pbjson_golden FIXTURE_DIR [-v]\n");
        return 2;
    }
    g_verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
    int failed = 0, pairs = 0, same = 0;
    char sub[1024];
    failed += s_dir(argv[1], false, &pairs, &same);
    snprintf(sub, sizeof(sub), "%s/fill", argv[1]);
    failed += s_dir(sub, false, &pairs, &same);
    snprintf(sub, sizeof(sub), "%s/zero", argv[1]);
    failed += s_dir(sub, false, &pairs, &same);
    snprintf(sub, sizeof(sub), "%s/groups/fill", argv[1]);
    failed += s_dir(sub, false, &pairs, &same);
    snprintf(sub, sizeof(sub), "%s/groups/zero", argv[1]);
    failed += s_dir(sub, false, &pairs, &same);
    CHECK(pairs >= 130); /* 18 realistic, 29 + 29 core, 31 + 31 other groups' at the writing */
    printf("pbjson_golden: %d fixtures, %d re-encoded byte for byte, %d failure(s)\n", pairs, same,
           failed);
    return failed ? 1 : 0;
}
