/* names: KubeRay's object-name and label-value rules (see names.h). */
#include "names.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

bool names_is_punct(unsigned char c)
{
    /* Go unicode.IsPunct for ASCII: categories Pc, Pd, Ps, Pe, Pi, Pf, Po. */
    return c != 0 && strchr("!\"#%&'()*,-./:;?@[\\]_{}", c) != NULL;
}

static char *s_dup(const char *s, size_t n)
{
    char *r = malloc(n + 1);
    if (!r)
        return NULL;
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

/* Keeps the last `max` bytes of s. */
static char *s_tail(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return s_dup(s + (n - max), max);
    return s_dup(s, n);
}

char *names_check_name(const char *s)
{
    if (!s)
        return NULL;
    char *r = s_tail(s, NAMES_MAX_NAME);
    if (!r || !r[0])
        return r;
    if (isdigit((unsigned char)r[0]))
        r[0] = 'r';
    if (names_is_punct((unsigned char)r[0]))
        r[0] = 'r';
    return r;
}

char *names_check_label(const char *s)
{
    if (!s)
        return NULL;
    char *r = s_tail(s, NAMES_MAX_LABEL);
    if (r && r[0] && names_is_punct((unsigned char)r[0]))
        r[0] = 'r';
    return r;
}

char *names_trim_job_name(const char *s)
{
    return names_check_label(s);
}

/* "<a><sep><b>" in a new string, or NULL. */
static char *s_join(const char *a, const char *sep, const char *b)
{
    if (!a || !b)
        return NULL;
    buf_t w;
    buf_init(&w, NAMES_MAX_INPUT);
    if (buf_printf(&w, "%s%s%s", a, sep, b) < 0) {
        buf_free(&w);
        return NULL;
    }
    char *r = buf_take(&w, NULL);
    buf_free(&w);
    return r;
}

char *names_pod_name(const char *prefix, const char *node_type, bool generate)
{
    if (!prefix || !node_type)
        return NULL;
    size_t n = strlen(prefix);
    if (n > NAMES_MAX_POD_PREFIX)
        n = NAMES_MAX_POD_PREFIX;
    buf_t w;
    buf_init(&w, NAMES_MAX_INPUT);
    if (buf_append(&w, prefix, n) < 0 ||
        buf_printf(&w, "-%s%s", node_type, generate ? "-" : "") < 0) {
        buf_free(&w);
        return NULL;
    }
    char *r = buf_take(&w, NULL);
    buf_free(&w);
    if (!r)
        return NULL;
    for (char *p = r; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return r;
}

char *names_head_pod(const char *cluster, bool generate)
{
    return names_pod_name(cluster, NAMES_NODE_HEAD, generate);
}

char *names_worker_pod(const char *cluster, const char *group, bool generate)
{
    char *prefix = s_join(cluster, "-", group);
    if (!prefix)
        return NULL;
    char *r = names_pod_name(prefix, NAMES_NODE_WORKER, generate);
    free(prefix);
    return r;
}

char *names_head_service(const char *cluster, const json_t *spec)
{
    if (!cluster)
        return NULL;
    const char *user = jx_str(spec, "headGroupSpec.headService.metadata.name", "");
    if (user[0])
        return s_dup(user, strlen(user));
    return s_join(cluster, "-", "head-svc");
}

char *names_headless_service(const char *cluster)
{
    return s_join(cluster, "-", "headless");
}

char *names_serve_service(const char *cluster)
{
    return s_join(cluster, "-", "serve-svc");
}

char *names_serve_label(const char *cluster)
{
    return s_join(cluster, "-", "serve");
}

/* CheckName(a + "-" + b). */
static char *s_checked(const char *a, const char *b)
{
    char *raw = s_join(a, "-", b);
    if (!raw)
        return NULL;
    char *r = names_check_name(raw);
    free(raw);
    return r;
}

char *names_ingress(const char *cluster)
{
    return s_checked(cluster, "head-ingress");
}

char *names_route(const char *cluster, const char *ns)
{
    if (!ns)
        return NULL;
    char *raw = s_join(cluster, "-", "head-route");
    if (!raw)
        return NULL;
    long max = 51 - (long)strlen(ns);
    if (max < 0)
        max = 0; /* Go would panic on a negative slice bound; keep nothing */
    if ((long)strlen(raw) > max)
        raw[max] = '\0';
    char *r = names_check_name(raw);
    free(raw);
    return r;
}

char *names_identifier(const char *cluster, const char *node_type)
{
    char *raw = s_join(cluster, "-", node_type);
    if (!raw)
        return NULL;
    char *r = names_check_label(raw);
    free(raw);
    return r;
}

char *names_redis_cleanup_job(const char *cluster)
{
    char *raw = s_join(cluster, "-", "redis-cleanup");
    if (!raw)
        return NULL;
    char *r = names_trim_job_name(raw);
    free(raw);
    return r;
}

char *names_gcs_pvc(const char *cluster)
{
    return s_join(cluster, "-", "gcs-pvc");
}

char *names_netpol_head(const char *cluster)
{
    return s_join(cluster, "-", "head");
}

char *names_netpol_workers(const char *cluster, const char *group)
{
    char *w = s_join(cluster, "-", "workers");
    char *out = w ? s_join(w, "-", group) : NULL;
    free(w);
    return out;
}

char *names_autoscaler_sa(const char *cluster, const json_t *spec)
{
    if (!cluster)
        return NULL;
    const char *sa = jx_str(spec, "headGroupSpec.template.spec.serviceAccountName", "");
    return names_check_name(sa[0] ? sa : cluster);
}

char *names_autoscaler_role(const char *cluster)
{
    return names_check_name(cluster);
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

static bool s_eq(char *got, const char *want)
{
    bool ok = got && want && strcmp(got, want) == 0;
    if (!ok)
        printf("names: got '%s' want '%s'\n", got ? got : "(null)", want ? want : "(null)");
    free(got);
    return ok;
}

int names_test(bool verbose)
{
    int failed = 0;
    /* CheckName */
    CHECK(s_eq(names_check_name("raycluster-sample"), "raycluster-sample"));
    CHECK(s_eq(names_check_name("1abc"), "rabc"));
    CHECK(s_eq(names_check_name("-abc"), "rabc"));
    CHECK(s_eq(names_check_name("_abc"), "rabc"));
    CHECK(s_eq(names_check_name("+abc"), "+abc")); /* '+' is a symbol in Go, not punctuation */
    CHECK(s_eq(names_check_name(""), ""));
    CHECK(names_check_name(NULL) == NULL);
    /* 60 chars: keep the last 50 */
    const char *s60 = "abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789";
    CHECK(s_eq(names_check_name(s60), "r123456789abcdefghij0123456789abcdefghij0123456789"));
    CHECK(s_eq(names_check_name("x-abcdefghij0123456789abcdefghij0123456789abcdefghij"),
               "abcdefghij0123456789abcdefghij0123456789abcdefghij"));
    /* 51 chars whose last 50 start with '-' */
    CHECK(s_eq(names_check_name("a-bcdefghij0123456789abcdefghij0123456789abcdefghij"),
               "rbcdefghij0123456789abcdefghij0123456789abcdefghij"));
    /* CheckLabel: digits allowed, 63 kept */
    CHECK(s_eq(names_check_label("1abc"), "1abc"));
    CHECK(s_eq(names_check_label(".abc"), "rabc"));
    char s70[71];
    memset(s70, 'a', 70);
    s70[70] = '\0';
    s70[7] = '-';
    char *l = names_check_label(s70);
    CHECK(l && strlen(l) == 63 && l[0] == 'r');
    free(l);
    CHECK(s_eq(names_trim_job_name("job"), "job"));
    CHECK(names_check_label(NULL) == NULL);
    /* PodName */
    CHECK(s_eq(names_head_pod("raycluster-sample", true), "raycluster-sample-head-"));
    CHECK(s_eq(names_head_pod("raycluster-sample", false), "raycluster-sample-head"));
    CHECK(s_eq(names_worker_pod("raycluster-sample", "small-group", true),
               "raycluster-sample-small-group-worker-"));
    CHECK(s_eq(names_worker_pod("MyCluster", "GPU", true), "mycluster-gpu-worker-"));
    CHECK(s_eq(names_pod_name(s60, NAMES_NODE_WORKER, true),
               "abcdefghij0123456789abcdefghij0123456789abcdefghij-worker-"));
    CHECK(names_pod_name(NULL, NAMES_NODE_HEAD, true) == NULL);
    CHECK(names_worker_pod("c", NULL, true) == NULL);
    /* services */
    CHECK(s_eq(names_head_service("rc", NULL), "rc-head-svc"));
    json_t *spec = json_pack("{s:{s:{s:{s:s}}}}", "headGroupSpec", "headService", "metadata",
                             "name", "custom-svc");
    CHECK(s_eq(names_head_service("rc", spec), "custom-svc"));
    json_t *spec2 =
        json_pack("{s:{s:{s:{s:s}}}}", "headGroupSpec", "headService", "metadata", "name", "");
    CHECK(s_eq(names_head_service("rc", spec2), "rc-head-svc"));
    CHECK(s_eq(names_head_service(s60, NULL),
               "abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789-head-svc"));
    CHECK(names_head_service(NULL, spec) == NULL);
    CHECK(s_eq(names_headless_service("rc"), "rc-headless"));
    CHECK(s_eq(names_serve_service("rc"), "rc-serve-svc"));
    CHECK(s_eq(names_serve_label("rc"), "rc-serve"));
    CHECK(s_eq(names_ingress("rc"), "rc-head-ingress"));
    CHECK(s_eq(names_ingress("0123456789012345678901234567890123456789012345"),
               "r012345678901234567890123456789012345-head-ingress"));
    CHECK(s_eq(names_route("rc", "default"), "rc-head-route"));
    /* 51 - len("a-very-long-namespace-name-here-xyzw") = 15 */
    CHECK(s_eq(names_route("raycluster-sample", "a-very-long-namespace-name-here-xyzw"),
               "raycluster-samp"));
    CHECK(s_eq(names_identifier("rc", NAMES_NODE_HEAD), "rc-head"));
    CHECK(s_eq(names_identifier("rc", NAMES_NODE_WORKER), "rc-worker"));
    CHECK(s_eq(names_redis_cleanup_job("rc"), "rc-redis-cleanup"));
    CHECK(s_eq(names_redis_cleanup_job("abcdefghij0123456789abcdefghij0123456789abcdefghij012"),
               "efghij0123456789abcdefghij0123456789abcdefghij012-redis-cleanup"));
    CHECK(s_eq(names_gcs_pvc("rc"), "rc-gcs-pvc"));
    CHECK(s_eq(names_netpol_head("rc"), "rc-head"));
    CHECK(s_eq(names_netpol_workers("rc", "gpu"), "rc-workers-gpu"));
    CHECK(s_eq(names_autoscaler_sa("rc", NULL), "rc"));
    json_t *spec3 = json_pack("{s:{s:{s:{s:s}}}}", "headGroupSpec", "template", "spec",
                              "serviceAccountName", "my-sa");
    CHECK(s_eq(names_autoscaler_sa("rc", spec3), "my-sa"));
    CHECK(s_eq(names_autoscaler_role("9rc"), "rrc"));
    CHECK(names_is_punct('_') && names_is_punct('@') && !names_is_punct('$') &&
          !names_is_punct('a'));
    json_decref(spec);
    json_decref(spec2);
    json_decref(spec3);
    return SELFTEST_RESULT("names", verbose);
}

#endif /* RF_SELFTEST */
