/*
 * crds_test: generator and test of rayfleet's compact ray.io/v1 CRDs (deploy/crds/).
 *
 * Generation (`crds_test --write [DIR]`, DIR defaulting to <source>/deploy/crds): reads each
 * upstream KubeRay CRD from $RF_SHARED_DIR/kuberay/crd and writes it back with every embedded
 * Kubernetes core type collapsed (see deploy/crds/README.md): a PodTemplateSpec or a Service
 * schema becomes `type: object` + `x-kubernetes-preserve-unknown-fields: true`, keeping only
 * the skeleton of properties that lead to a `default` (so defaulting is unchanged). Everything
 * else (names, versions, subresources, printer columns, Ray's own fields, enums, required lists,
 * x-kubernetes-* markers) is copied as is.
 *
 * Test (no arguments, or -v): the committed files equal the generator's output; each is below
 * 256 KiB; their non-schema parts equal upstream's; every RayCluster/RayJob/RayService/
 * RayCronJob sample validates with no error against our schema and defaults to the same tree
 * as with the upstream schema; and an in-process kubesim accepts our CRDs and one sample of
 * each kind.
 */
#include "apiserver.h"
#include "buf.h"
#include "err.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "log.h"
#include "loop.h"
#include "schema.h"
#include "selftest.h"
#include "yaml.h"

#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* kubectl's client-side apply stores the object in an annotation limited to 256 KiB. */
#define CRD_MAX_BYTES (256u * 1024u)
/* Largest upstream CRD read. */
#define CRD_READ_MAX (8u << 20)
/* Largest sample read. */
#define SAMPLE_READ_MAX (1u << 20)
/* Largest generated file. */
#define CRD_OUT_MAX (4u << 20)
/* Longest wait for one API call. */
#define WAIT_MS 15000

static const char *const g_banner =
    "# GENERATED FILE, DO NOT EDIT: rayfleet's compact copy of KubeRay's CRD, written by\n"
    "# `crds_test --write` (tests/integration/crds/crds_test.c); see deploy/crds/README.md.\n";

typedef struct {
    const char *plural; /* resource */
    const char *kind; /* Kind */
} crd_kind_t;

static const crd_kind_t g_kinds[] = {{"rayclusters", "RayCluster"},
                                     {"rayjobs", "RayJob"},
                                     {"rayservices", "RayService"},
                                     {"raycronjobs", "RayCronJob"}};
#define NKINDS (sizeof(g_kinds) / sizeof(g_kinds[0]))

static bool g_verbose;

static const char *s_env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static bool s_has_prop(const json_t *node, const char *name)
{
    return json_object_get(json_object_get(node, "properties"), name) != NULL;
}

/* Kubernetes core types we collapse, each recognised by properties its schema must have. */
static const char *const g_core[][4] = {
    {"metadata", "spec", NULL}, /* PodTemplateSpec (spec has containers) */
    {"spec", "status", NULL}, /* Service (spec has clusterIP) */
    {"name", "value", "valueFrom", NULL}, /* EnvVar */
    {"configMapRef", "secretRef", NULL}, /* EnvFromSource */
    {"claims", "limits", "requests", NULL}, /* ResourceRequirements */
    {"capabilities", "seLinuxOptions", NULL}, /* SecurityContext */
    {"mountPath", "mountPropagation", NULL}, /* VolumeMount */
    {"ipBlock", "namespaceSelector", NULL}, /* NetworkPolicyPeer */
    {"matchExpressions", "matchLabels", NULL}, /* LabelSelector */
};

/* True for the schema of a Kubernetes core type we collapse (see g_core). */
static bool s_is_core(const json_t *node)
{
    for (size_t i = 0; i < sizeof(g_core) / sizeof(g_core[0]); i++) {
        bool all = true;
        for (size_t j = 0; j < 4 && g_core[i][j]; j++) {
            all = all && s_has_prop(node, g_core[i][j]);
        }
        if (!all) {
            continue;
        }
        const json_t *spec = json_object_get(json_object_get(node, "properties"), "spec");
        if (i == 0 && !s_has_prop(spec, "containers")) {
            continue;
        }
        if (i == 1 && !s_has_prop(spec, "clusterIP")) {
            continue;
        }
        return true;
    }
    return false;
}

static bool s_has_default(const json_t *node)
{
    if (json_is_object(node)) {
        if (json_object_get(node, "default")) {
            return true;
        }
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)node, k, v)
        {
            if (s_has_default(v)) {
                return true;
            }
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
        {
            if (s_has_default(v)) {
                return true;
            }
        }
    }
    return false;
}

/* The collapsed form of a core-type schema node: its own scalar keywords, open to unknown
 * fields, and only the properties (and array items) that lead to a default; `top` nodes also
 * keep a typed stub of every direct property (so a null there is dropped as upstream does). */
static json_t *s_skeleton(const json_t *node, bool top)
{
    json_t *out = json_object();
    if (!out) {
        return NULL;
    }
    static const char *const keep[] = {"description",
                                       "type",
                                       "default",
                                       "nullable",
                                       "format",
                                       "x-kubernetes-int-or-string",
                                       "x-kubernetes-embedded-resource"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        json_t *v = json_object_get(node, keep[i]);
        if (v) {
            json_object_set_new(out, keep[i], json_deep_copy(v));
        }
    }
    const char *type = json_string_value(json_object_get(node, "type"));
    if (type && strcmp(type, "object") == 0) {
        json_object_set_new(out, "x-kubernetes-preserve-unknown-fields", json_true());
        json_t *props = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(node, "properties"), k, v)
        {
            if (s_has_default(v)) {
                json_object_set_new(props, k, s_skeleton(v, false));
            } else if (top) {
                json_t *stub = json_object();
                json_t *t = json_object_get(v, "type");
                if (t) {
                    json_object_set_new(stub, "type", json_deep_copy(t));
                }
                if (json_is_true(json_object_get(v, "x-kubernetes-int-or-string"))) {
                    json_object_set_new(stub, "x-kubernetes-int-or-string", json_true());
                }
                const char *ts = json_string_value(t);
                if (ts && strcmp(ts, "object") == 0) {
                    json_object_set_new(stub, "x-kubernetes-preserve-unknown-fields", json_true());
                } else if (ts && strcmp(ts, "array") == 0) {
                    json_object_set_new(stub, "items",
                                        s_skeleton(json_object_get(v, "items"), false));
                }
                json_object_set_new(props, k, stub);
            }
        }
        json_t *ap = json_object_get(node, "additionalProperties");
        if (json_is_object(ap) && s_has_default(ap)) {
            json_object_set_new(out, "additionalProperties", s_skeleton(ap, false));
        }
        if (json_object_size(props) > 0) {
            json_object_set_new(out, "properties", props);
        } else {
            json_decref(props);
        }
    } else if (type && strcmp(type, "array") == 0) {
        json_t *items = json_object_get(node, "items");
        if (items && s_has_default(items)) {
            json_object_set_new(out, "items", s_skeleton(items, false));
        } else {
            /* Structural schemas need items: keep them open. */
            json_object_set_new(out, "items",
                                json_pack("{s:s, s:b}", "type", "object",
                                          "x-kubernetes-preserve-unknown-fields", 1));
            const char *it = json_string_value(json_object_get(items, "type"));
            if (it && strcmp(it, "object") != 0) {
                json_object_set_new(json_object_get(out, "items"), "type", json_string(it));
                json_object_del(json_object_get(out, "items"),
                                "x-kubernetes-preserve-unknown-fields");
            }
        }
    }
    return out;
}

/* Collapses core types under `node` in place. */
static void s_collapse(json_t *node)
{
    if (!json_is_object(node)) {
        return;
    }
    json_t *props = json_object_get(node, "properties");
    const char *k;
    json_t *v;
    json_object_foreach(props, k, v)
    {
        if (s_is_core(v)) {
            json_object_set_new(props, k, s_skeleton(v, true));
        } else {
            s_collapse(v);
        }
    }
    json_t *items = json_object_get(node, "items");
    if (items) {
        if (s_is_core(items)) {
            json_object_set_new(node, "items", s_skeleton(items, true));
        } else {
            s_collapse(items);
        }
    }
    json_t *ap = json_object_get(node, "additionalProperties");
    if (json_is_object(ap)) {
        if (s_is_core(ap)) {
            json_object_set_new(node, "additionalProperties", s_skeleton(ap, true));
        } else {
            s_collapse(ap);
        }
    }
}

static json_t *s_load_one(const char *path, size_t max)
{
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, 4096);
    int rc = yaml_load_file(path, max, &docs, &err);
    if (rc < 0) {
        printf("%s: %s\n", path, buf_str(&err));
    }
    buf_free(&err);
    json_t *one = docs ? json_incref(json_array_get(docs, 0)) : NULL;
    json_decref(docs);
    return one;
}

/* The text of our CRD for upstream `up`. Caller frees. */
static char *s_generate(const json_t *up)
{
    json_t *crd = json_deep_copy(up);
    size_t i;
    json_t *ver;
    json_array_foreach(json_object_get(json_object_get(crd, "spec"), "versions"), i, ver)
    {
        s_collapse(json_object_get(json_object_get(ver, "schema"), "openAPIV3Schema"));
    }
    buf_t out;
    buf_init(&out, CRD_OUT_MAX);
    int rc = buf_puts(&out, g_banner);
    if (rc == 0) {
        rc = buf_puts(&out, "---\n");
    }
    if (rc == 0) {
        rc = yaml_dump(crd, &out);
    }
    json_decref(crd);
    if (rc < 0) {
        buf_free(&out);
        return NULL;
    }
    return buf_take(&out, NULL);
}

static char *s_read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    buf_t b;
    buf_init(&b, CRD_OUT_MAX);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = buf_append(&b, chunk, n);
    }
    fclose(f);
    if (rc < 0) {
        buf_free(&b);
        return NULL;
    }
    if (b.len == 0) {
        buf_free(&b);
        return calloc(1, 1);
    }
    return buf_take(&b, NULL);
}

/* A CRD without its schemas (for comparing everything else). */
static json_t *s_without_schemas(const json_t *crd)
{
    json_t *c = json_deep_copy(crd);
    size_t i;
    json_t *ver;
    json_array_foreach(json_object_get(json_object_get(c, "spec"), "versions"), i, ver)
    {
        json_object_del(ver, "schema");
    }
    return c;
}

/* ---- samples ---- */

typedef struct {
    json_t *ours[NKINDS]; /* our CRDs */
    json_t *up[NKINDS]; /* upstream CRDs */
    json_t *first[NKINDS]; /* first sample of each kind */
    int checked[NKINDS]; /* samples checked per kind */
} ctx_t;

static int s_kind_index(const char *kind)
{
    for (size_t i = 0; kind && i < NKINDS; i++) {
        if (strcmp(g_kinds[i].kind, kind) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int s_check_doc(ctx_t *c, const char *path, const json_t *doc)
{
    int failed = 0;
    int k = s_kind_index(json_string_value(json_object_get(doc, "kind")));
    const char *api = json_string_value(json_object_get(doc, "apiVersion"));
    if (k < 0 || !api || strncmp(api, "ray.io/", 7) != 0) {
        return 0;
    }
    const char *ver = api + 7;
    const json_t *so = schema_for_version(c->ours[k], ver);
    const json_t *su = schema_for_version(c->up[k], ver);
    CHECK(so != NULL && su != NULL);
    if (!so || !su) {
        return failed;
    }
    json_t *a = json_deep_copy(doc), *b = json_deep_copy(doc);
    json_t *ca = json_array(), *cb = json_array();
    int ra = schema_apply(so, a, NULL, ca);
    int rb = schema_apply(su, b, NULL, cb);
    if (ra != 0 || json_array_size(ca) > 0) {
        char *s = json_dumps(ca, 0);
        printf("%s: %s invalid against our CRD: %s\n", path, g_kinds[k].kind, s ? s : "?");
        free(s);
        failed++;
    }
    if (rb != 0 && g_verbose) {
        char *s = json_dumps(cb, 0);
        printf("note: %s invalid against upstream CRD too: %s\n", path, s ? s : "?");
        free(s);
    }
    if (!json_equal(a, b)) {
        char *sa = json_dumps(a, JSON_SORT_KEYS), *sb = json_dumps(b, JSON_SORT_KEYS);
        printf("%s: defaulted trees differ\n ours: %s\n upstream: %s\n", path, sa ? sa : "?",
               sb ? sb : "?");
        free(sa);
        free(sb);
        failed++;
    }
    c->checked[k]++;
    if (!c->first[k]) {
        c->first[k] = json_deep_copy(doc);
    }
    json_decref(a);
    json_decref(b);
    json_decref(ca);
    json_decref(cb);
    return failed;
}

static bool s_is_yaml(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int s_walk_samples(ctx_t *c, const char *dir, int depth)
{
    int failed = 0;
    DIR *d = opendir(dir);
    if (!d) {
        printf("cannot open %s\n", dir);
        return 1;
    }
    /* Sorted for a stable "first sample" of each kind. */
    struct dirent **names = NULL;
    closedir(d);
    int n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, nm);
        struct stat st;
        if (nm[0] != '.' && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth < 4) {
                failed += s_walk_samples(c, path, depth + 1);
            } else if (S_ISREG(st.st_mode) && s_is_yaml(nm)) {
                json_t *docs = NULL;
                buf_t err;
                buf_init(&err, 4096);
                if (yaml_load_file(path, SAMPLE_READ_MAX, &docs, &err) == 0) {
                    size_t j;
                    json_t *doc;
                    json_array_foreach(docs, j, doc)
                    {
                        failed += s_check_doc(c, path, doc);
                    }
                } else if (g_verbose) {
                    printf("note: skipped %s: %s\n", path, buf_str(&err));
                }
                json_decref(docs);
                buf_free(&err);
            }
        }
        free(names[i]);
    }
    free(names);
    return failed;
}

/* ---- kubesim ---- */

typedef struct {
    int done; /* requests finished */
    long status; /* HTTP status of the last */
    char message[512]; /* its message */
} res_t;

static void s_done(k8s_client_t *cl, const k8s_result_t *r, void *arg)
{
    res_t *x = arg;
    x->done++;
    x->status = r->status;
    snprintf(x->message, sizeof(x->message), "%s", r->message ? r->message : "");
}

static bool s_wait(loop_t *loop, res_t *x)
{
    int64_t end = loop_clock_ms() + WAIT_MS;
    while (x->done < 1 && loop_clock_ms() < end) {
        loop_run_once(loop, 20);
    }
    return x->done >= 1;
}

static int s_kubesim(ctx_t *c)
{
    int failed = 0;
    loop_t *loop = loop_new();
    apiserver_t *api = loop ? apiserver_new(loop, &(apiserver_opts_t){0}) : NULL;
    CHECK(api != NULL);
    if (!api) {
        loop_destroy(&loop);
        return failed;
    }
    char text[512];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
             "clusters: [{name: sim, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
             "contexts: [{name: sim, context: {cluster: sim, user: u, namespace: default}}]\n"
             "users: [{name: u, user: {}}]\n",
             apiserver_port(api));
    kubeconfig_t *kc = NULL;
    buf_t err;
    buf_init(&err, 4096);
    CHECK(kubeconfig_load_buf(text, strlen(text), "/tmp/crds-kubeconfig", NULL, &kc, &err) == 0);
    k8s_client_t *cl = kc ? k8s_client_new(loop, kc, NULL) : NULL;
    CHECK(cl != NULL);
    for (size_t k = 0; cl && k < NKINDS; k++) {
        res_t x = {0};
        k8s_res_t r = {.group = "apiextensions.k8s.io",
                       .version = "v1",
                       .resource = "customresourcedefinitions"};
        CHECK(k8s_create(cl, &r, c->ours[k], NULL, s_done, &x) > 0);
        CHECK(s_wait(loop, &x));
        if (x.status != 201) {
            printf("create CRD %s: %ld %s\n", g_kinds[k].plural, x.status, x.message);
        }
        CHECK(x.status == 201);
    }
    for (size_t k = 0; cl && k < NKINDS; k++) {
        CHECK(c->first[k] != NULL);
        if (!c->first[k]) {
            continue;
        }
        json_t *obj = json_deep_copy(c->first[k]);
        json_object_del(json_object_get(obj, "metadata"), "namespace");
        const char *api_v = json_string_value(json_object_get(obj, "apiVersion"));
        res_t x = {0};
        k8s_res_t r = {.group = "ray.io",
                       .version = api_v ? api_v + 7 : "v1",
                       .resource = g_kinds[k].plural,
                       .namespace_ = "default"};
        CHECK(k8s_create(cl, &r, obj, NULL, s_done, &x) > 0);
        CHECK(s_wait(loop, &x));
        if (x.status != 201) {
            printf("create %s: %ld %s\n", g_kinds[k].kind, x.status, x.message);
        } else if (g_verbose) {
            printf("created %s %s\n", g_kinds[k].kind,
                   json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")));
        }
        CHECK(x.status == 201);
        json_decref(obj);
    }
    k8s_client_destroy(&cl);
    kubeconfig_destroy(&kc);
    buf_free(&err);
    apiserver_destroy(&api);
    loop_destroy(&loop);
    return failed;
}

int main(int argc, char **argv)
{
    int failed = 0;
    bool write = false;
    const char *outdir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            g_verbose = true;
        } else if (strcmp(argv[i], "--write") == 0) {
            write = true;
        } else if (write && !outdir) {
            outdir = argv[i];
        } else {
            fprintf(stderr, "usage: crds_test [-v] [--write [DIR]]\n");
            return 2;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_setup("crds_test", g_verbose ? LOG_INFO : LOG_WARN, 2);
    const char *shared = s_env_or("RF_SHARED_DIR", RF_SHARED_DIR);
    const char *src = s_env_or("RF_SOURCE_DIR", RF_SOURCE_DIR);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/deploy/crds", src);
    if (!outdir) {
        outdir = dir;
    }
    ctx_t c = {0};
    for (size_t k = 0; k < NKINDS; k++) {
        char up_path[8192], our_path[8192];
        snprintf(up_path, sizeof(up_path), "%s/kuberay/crd/ray.io_%s.yaml", shared,
                 g_kinds[k].plural);
        snprintf(our_path, sizeof(our_path), "%s/ray.io_%s.yaml", outdir, g_kinds[k].plural);
        c.up[k] = s_load_one(up_path, CRD_READ_MAX);
        CHECK(c.up[k] != NULL);
        char *gen = c.up[k] ? s_generate(c.up[k]) : NULL;
        CHECK(gen != NULL);
        if (!gen) {
            continue;
        }
        if (write) {
            FILE *f = fopen(our_path, "w");
            CHECK(f != NULL);
            if (f) {
                CHECK(fputs(gen, f) >= 0);
                CHECK(fclose(f) == 0);
            }
            printf("wrote %s (%zu bytes)\n", our_path, strlen(gen));
            free(gen);
            continue;
        }
        char *have = s_read_text(our_path);
        if (!have || strcmp(have, gen) != 0) {
            printf("%s is missing or out of date: run `crds_test --write`\n", our_path);
            failed++;
        }
        size_t size = have ? strlen(have) : 0;
        if (g_verbose) {
            printf("%s: %zu bytes (upstream %s)\n", our_path, size, up_path);
        }
        CHECK(size > 0 && size < CRD_MAX_BYTES);
        free(have);
        free(gen);
        c.ours[k] = s_load_one(our_path, CRD_READ_MAX);
        CHECK(c.ours[k] != NULL);
        /* The JSON kubectl stores in last-applied-configuration must fit too. */
        char *js = c.ours[k] ? json_dumps(c.ours[k], JSON_COMPACT) : NULL;
        CHECK(js != NULL && strlen(js) < CRD_MAX_BYTES);
        if (g_verbose && js) {
            printf("%s: %zu bytes as compact JSON (the last-applied annotation)\n", our_path,
                   strlen(js));
        }
        free(js);
        /* Everything but the schemas is upstream's. */
        json_t *a = s_without_schemas(c.ours[k]), *b = s_without_schemas(c.up[k]);
        CHECK(json_equal(a, b));
        json_decref(a);
        json_decref(b);
    }
    if (!write && failed == 0) {
        char samples[4096];
        snprintf(samples, sizeof(samples), "%s/kuberay/samples", shared);
        failed += s_walk_samples(&c, samples, 0);
        for (size_t k = 0; k < NKINDS; k++) {
            if (g_verbose) {
                printf("%s: %d sample(s) checked\n", g_kinds[k].kind, c.checked[k]);
            }
            CHECK(c.checked[k] > 0);
        }
        failed += s_kubesim(&c);
    }
    for (size_t k = 0; k < NKINDS; k++) {
        json_decref(c.ours[k]);
        json_decref(c.up[k]);
        json_decref(c.first[k]);
    }
    curl_global_cleanup();
    printf("crds: %d failure(s)\n", failed);
    return failed ? 1 : 0;
}
