/*
 * raydash_it: common/raydash through the API server's service proxy, against kubesim's API
 * server started in-process (sim/apiserver.h, simulate=true) with a head pod labelled
 * ray.io/node-type=head (a simulated Ray head once Running) and its Service.
 *
 * Checks: list jobs once the head answers; submit; a duplicate submission_id is ERR_EXISTS; get
 * while PENDING/RUNNING and after SUCCEEDED (times); 404 is ERR_NOTFOUND with KubeRay's wording;
 * stop of a running job ({"stopped": true}, then STOPPED) and of a finished one (false); logs;
 * delete, after which the job is gone; a Service without endpoints is the proxy's 503
 * (ERR_SERVER with its text); an unknown Service is an error naming it.
 *
 * Serve (through the same Service proxy, and the head pod's proxy for the Serve proxy's health
 * check): GET before any PUT has no applications (not ready); the health check is refused (the
 * head's port 8000 is closed until Serve runs: the proxy's 503); a config Serve's validation
 * refuses is ERR_INVAL with Serve's ValidationError; a two-app config is accepted; the health
 * check answers 503 "Route table is not populated yet." while the apps deploy; the apps go
 * DEPLOYING -> RUNNING on the head's timings (rayhead's defaults: kubesim takes no head options);
 * then the health check answers 200, 503 while the proxy drains, and an unknown pod is
 * ERR_NOTFOUND.
 *
 * Usage: raydash_it [-v]. Exit 0 when every check passes.
 */
#include "apiserver.h"
#include "err.h"
#include "json.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "kubelet.h"
#include "log.h"
#include "raydash.h"
#include "selftest.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IT_WAIT_MS 15000 /* longest wait for one step */
#define IT_TURN_MS 10 /* loop wait of one turn */

static loop_t *g_loop;
static bool g_verbose;

/* A k8s answer. */
typedef struct {
    int done, err;
    char message[256];
} k_res_t;

static void s_k_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    k_res_t *x = arg;
    x->done++;
    x->err = r->err;
    snprintf(x->message, sizeof(x->message), "%s", r->message);
}

/* A dashboard answer, copied out of the callback. */
typedef struct {
    int done, err;
    long status;
    char message[RAYDASH_MSG_MAX];
    char jstatus[32];
    int64_t start_ms, end_ms;
    bool stopped;
    bool has_logs;
    size_t list_n;
    int ready_rc; /* raydash_serve_ready(body) */
    size_t napps; /* its application count */
    bool ready; /* its readiness */
    char app1[24], app2[24]; /* applications.app{1,2}.status, "" when absent */
} r_res_t;

static void s_r_done(const raydash_result_t *r, void *arg)
{
    r_res_t *x = arg;
    x->done++;
    x->err = r->err;
    x->status = r->status;
    snprintf(x->message, sizeof(x->message), "%s", r->message);
    snprintf(x->jstatus, sizeof(x->jstatus), "%s", r->job.status ? r->job.status : "");
    x->start_ms = r->job.start_time_ms;
    x->end_ms = r->job.end_time_ms;
    x->stopped = r->stopped;
    x->has_logs = r->logs != NULL;
    x->list_n = json_is_array(r->body) ? json_array_size(r->body) : 0;
    x->ready_rc = raydash_serve_ready(r->body, &x->napps, &x->ready);
    snprintf(x->app1, sizeof(x->app1), "%s", jx_str(r->body, "applications.app1.status", ""));
    snprintf(x->app2, sizeof(x->app2), "%s", jx_str(r->body, "applications.app2.status", ""));
}

/* Runs the loop until *flag >= 1 or IT_WAIT_MS pass. */
static bool s_wait(const int *flag)
{
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while (*flag < 1 && loop_clock_ms() < end)
        loop_run_once(g_loop, IT_TURN_MS);
    return *flag >= 1;
}

/* Starts a dashboard call into a fresh *x and waits for its answer. */
#define RUN(x, call)                                                                               \
    do {                                                                                           \
        memset((x), 0, sizeof(*(x)));                                                              \
        int64_t id_ = (call);                                                                      \
        CHECK(id_ > 0);                                                                            \
        if (id_ > 0)                                                                               \
            CHECK(s_wait(&(x)->done));                                                             \
    } while (0)

/* Creates `obj` as `res` and waits; returns the error. */
static int s_create(k8s_client_t *c, const k8s_res_t *res, json_t *obj)
{
    k_res_t x = {0};
    int64_t id = k8s_create(c, res, obj, NULL, s_k_done, &x);
    json_decref(obj);
    if (id < 0)
        return (int)id;
    if (!s_wait(&x.done))
        return ERR_TIMEOUT;
    if (x.err && g_verbose)
        printf("  create: %s\n", x.message);
    return x.err;
}

/* Polls job `id` until its status is terminal (or IT_WAIT_MS pass); the last answer in *x. */
static void s_until_terminal(raydash_t *d, const raydash_target_t *t, const char *id, r_res_t *x)
{
    int failed = 0;
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    do {
        RUN(x, raydash_get_job(d, t, id, s_r_done, x));
        if (raydash_status_terminal(x->jstatus))
            return;
        int64_t pause = loop_clock_ms() + 50;
        while (loop_clock_ms() < pause)
            loop_run_once(g_loop, IT_TURN_MS);
    } while (loop_clock_ms() < end);
    (void)failed;
}

/* The Serve API and the Serve proxy's health check of head pod default/demo-head (head: its
 * simulated head), with the dashboard at `t`. */
static int s_serve(raydash_t *d, const raydash_target_t *t, rayhead_t *head)
{
    int failed = 0;
    r_res_t x;
    RUN(&x, raydash_serve_get(d, t, s_r_done, &x));
    CHECK(x.err == 0 && x.status == 200 && x.ready_rc == 0 && x.napps == 0 && !x.ready);
    raydash_pod_t pod = {.ns = "default", .pod = "demo-head"}; /* port 0: 8000 */
    RUN(&x, raydash_serve_healthz(d, &pod, s_r_done, &x));
    if (g_verbose)
        printf("  healthz before Serve: err %d status %ld %s\n", x.err, x.status, x.message);
    CHECK(x.err == ERR_SERVER && x.status == 503 &&
          strstr(x.message, ":8000: connect: connection refused"));

    json_t *bad =
        json_pack("{s:[{s:s, s:s}]}", "applications", "name", "app1", "import_path", "nodots");
    RUN(&x, raydash_serve_put(d, t, bad, s_r_done, &x));
    json_decref(bad);
    if (g_verbose)
        printf("  bad config: err %d status %ld %s\n", x.err, x.status, x.message);
    CHECK(x.err == ERR_INVAL && x.status == 400 &&
          strncmp(x.message, "put serve apps: HTTP 400: ValidationError(", 42) == 0 &&
          strstr(x.message, "Got invalid import path \"nodots\""));
    RUN(&x, raydash_serve_get(d, t, s_r_done, &x));
    CHECK(x.err == 0 && x.napps == 0); /* nothing deployed */

    json_t *cfg = json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "applications", "name",
                            "app1", "route_prefix", "/a", "import_path", "fruit.stand:app", "name",
                            "app2", "route_prefix", "/b", "import_path", "calc.main:app");
    int64_t put_ms = loop_clock_ms();
    RUN(&x, raydash_serve_put(d, t, cfg, s_r_done, &x));
    json_decref(cfg);
    CHECK(x.err == 0 && x.status == 200 && *x.message == 0);
    RUN(&x, raydash_serve_get(d, t, s_r_done, &x));
    CHECK(x.err == 0 && x.ready_rc == 0 && x.napps == 2 && !x.ready &&
          strcmp(x.app1, "DEPLOYING") == 0 && strcmp(x.app2, "DEPLOYING") == 0);
    RUN(&x, raydash_serve_healthz(d, &pod, s_r_done, &x));
    if (g_verbose)
        printf("  healthz while deploying: err %d status %ld %s\n", x.err, x.status, x.message);
    CHECK(x.err == ERR_SERVER && x.status == 503 &&
          strcmp(x.message, "serve healthz: HTTP 503: Route table is not populated yet.") == 0);

    /* DEPLOYING -> RUNNING on the head's timings */
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    do {
        RUN(&x, raydash_serve_get(d, t, s_r_done, &x));
        if (x.err || x.ready)
            break;
        CHECK(strcmp(x.app1, "DEPLOYING") == 0 && strcmp(x.app2, "DEPLOYING") == 0);
        int64_t pause = loop_clock_ms() + 100;
        while (loop_clock_ms() < pause)
            loop_run_once(g_loop, IT_TURN_MS);
    } while (loop_clock_ms() < end);
    int64_t took = loop_clock_ms() - put_ms;
    if (g_verbose)
        printf("  apps RUNNING after %lld ms\n", (long long)took);
    CHECK(x.err == 0 && x.ready_rc == 0 && x.napps == 2 && x.ready &&
          strcmp(x.app1, "RUNNING") == 0 && strcmp(x.app2, "RUNNING") == 0);
    CHECK(took >= RAYHEAD_DEFAULT_SERVE_BUILD_MS + RAYHEAD_DEFAULT_SERVE_UPDATE_MS - 200);

    RUN(&x, raydash_serve_healthz(d, &pod, s_r_done, &x));
    CHECK(x.err == 0 && x.status == 200 && *x.message == 0);
    pod.port = 8000;
    RUN(&x, raydash_serve_healthz(d, &pod, s_r_done, &x));
    CHECK(x.err == 0 && x.status == 200);
    CHECK(head != NULL);
    if (head) {
        rayhead_set_serve_draining(head, true);
        RUN(&x, raydash_serve_healthz(d, &pod, s_r_done, &x));
        CHECK(x.err == ERR_SERVER && x.status == 503 && strstr(x.message, "being drained"));
        rayhead_set_serve_draining(head, false);
    }
    pod.pod = "no-such-pod";
    RUN(&x, raydash_serve_healthz(d, &pod, s_r_done, &x));
    CHECK(x.err == ERR_NOTFOUND && x.status == 404 && strstr(x.message, "no-such-pod"));
    return failed;
}

static int s_tests(k8s_client_t *kc, raysim_t *ray)
{
    int failed = 0;
    k8s_res_t pods = {.version = "v1", .resource = "pods", .namespace_ = "default"};
    k8s_res_t svcs = {.version = "v1", .resource = "services", .namespace_ = "default"};
    json_t *pod = json_pack(
        "{s:s, s:s, s:{s:s, s:{s:s, s:s}}, s:{s:[{s:s, s:s, s:{s:{s:s, s:s}}, s:[{s:i, s:s}]}]}}",
        "apiVersion", "v1", "kind", "Pod", "metadata", "name", "demo-head", "labels",
        "ray.io/node-type", "head", "ray.io/cluster", "demo", "spec", "containers", "name",
        "ray-head", "image", "rayproject/ray:2.46.0", "resources", "requests", "cpu", "1", "memory",
        "1Gi", "ports", "containerPort", 8265, "name", "dashboard");
    CHECK(s_create(kc, &pods, pod) == 0);
    json_t *svc = json_pack("{s:s, s:s, s:{s:s}, s:{s:{s:s, s:s}, s:[{s:s, s:i}]}}", "apiVersion",
                            "v1", "kind", "Service", "metadata", "name", "demo-head-svc", "spec",
                            "selector", "ray.io/node-type", "head", "ray.io/cluster", "demo",
                            "ports", "name", "dashboard", "port", 8265);
    CHECK(s_create(kc, &svcs, svc) == 0);
    svc = json_pack("{s:s, s:s, s:{s:s}, s:{s:{s:s}, s:[{s:s, s:i}]}}", "apiVersion", "v1", "kind",
                    "Service", "metadata", "name", "empty-svc", "spec", "selector", "app", "none",
                    "ports", "name", "dashboard", "port", 8265);
    CHECK(s_create(kc, &svcs, svc) == 0);

    raydash_t *d = raydash_new(g_loop, &(raydash_config_t){.k8s = kc});
    CHECK(d != NULL);
    if (!d)
        return failed;
    raydash_target_t t = {.ns = "default", .service = "demo-head-svc", .token = "tok"};
    r_res_t x;

    /* the head answers once its pod runs (503 from the proxy until then) */
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    do {
        RUN(&x, raydash_list_jobs(d, &t, s_r_done, &x));
        if (x.err == 0)
            break;
        int64_t pause = loop_clock_ms() + 100;
        while (loop_clock_ms() < pause)
            loop_run_once(g_loop, IT_TURN_MS);
    } while (loop_clock_ms() < end);
    if (g_verbose)
        printf("  list: err %d status %ld %s\n", x.err, x.status, x.message);
    CHECK(x.err == 0 && x.status == 200 && x.list_n == 0);

    /* submit, duplicate, get while running, 404 */
    json_t *req =
        json_pack("{s:s, s:s, s:{s:s}}", "entrypoint", "python ok.py FAKE:pending=0.2,sleep=0.5",
                  "submission_id", "it-1", "metadata", "owner", "raydash_it");
    RUN(&x, raydash_submit(d, &t, req, s_r_done, &x));
    CHECK(x.err == 0 && x.status == 200);
    RUN(&x, raydash_submit(d, &t, req, s_r_done, &x));
    if (g_verbose)
        printf("  duplicate: err %d status %ld %s\n", x.err, x.status, x.message);
    CHECK(x.err == ERR_EXISTS && x.status == 500);
    json_decref(req);
    RUN(&x, raydash_get_job(d, &t, "it-1", s_r_done, &x));
    CHECK(x.err == 0 && (strcmp(x.jstatus, "PENDING") == 0 || strcmp(x.jstatus, "RUNNING") == 0) &&
          x.start_ms > 0 && x.end_ms == 0);
    RUN(&x, raydash_get_job(d, &t, "no such/job", s_r_done, &x));
    CHECK(x.err == ERR_NOTFOUND && x.status == 404 &&
          strcmp(x.message, "Job no such/job does not exist on the cluster") == 0);
    s_until_terminal(d, &t, "it-1", &x);
    CHECK(x.err == 0 && strcmp(x.jstatus, "SUCCEEDED") == 0 && x.end_ms > x.start_ms);
    RUN(&x, raydash_list_jobs(d, &t, s_r_done, &x));
    CHECK(x.err == 0 && x.list_n == 1);

    /* stop a running job, then a finished one */
    req = json_pack("{s:s, s:s}", "entrypoint", "python long.py FAKE:pending=0,sleep=60",
                    "submission_id", "it-2");
    RUN(&x, raydash_submit(d, &t, req, s_r_done, &x));
    CHECK(x.err == 0);
    json_decref(req);
    RUN(&x, raydash_stop_job(d, &t, "it-2", s_r_done, &x));
    CHECK(x.err == 0 && x.stopped);
    s_until_terminal(d, &t, "it-2", &x);
    CHECK(x.err == 0 && strcmp(x.jstatus, "STOPPED") == 0);
    RUN(&x, raydash_stop_job(d, &t, "it-1", s_r_done, &x));
    CHECK(x.err == 0 && !x.stopped);

    /* logs, delete */
    RUN(&x, raydash_job_logs(d, &t, "it-1", s_r_done, &x));
    CHECK(x.err == 0 && x.has_logs);
    RUN(&x, raydash_delete_job(d, &t, "it-1", s_r_done, &x));
    CHECK(x.err == 0);
    RUN(&x, raydash_get_job(d, &t, "it-1", s_r_done, &x));
    CHECK(x.err == ERR_NOTFOUND);

    /* the proxy's own errors */
    raydash_target_t e = t;
    e.service = "empty-svc";
    RUN(&x, raydash_get_job(d, &e, "it-2", s_r_done, &x));
    if (g_verbose)
        printf("  no endpoints: err %d status %ld %s\n", x.err, x.status, x.message);
    CHECK(x.err == ERR_SERVER && x.status == 503 && strstr(x.message, "no endpoints available"));
    e.service = "missing-svc";
    RUN(&x, raydash_list_jobs(d, &e, s_r_done, &x));
    if (g_verbose)
        printf("  no service: err %d status %ld %s\n", x.err, x.status, x.message);
    CHECK(x.err == ERR_NOTFOUND && strstr(x.message, "missing-svc"));

    failed += s_serve(d, &t, raysim_head(ray, "default", "demo-head"));

    raydash_stats_t st;
    raydash_stats(d, &st);
    CHECK(st.inflight == 0 && st.calls == st.answered);
    raydash_destroy(&d);
    return failed;
}

int main(int argc, char **argv)
{
    g_verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int failed = 0;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_setup("raydash_it", g_verbose ? LOG_INFO : LOG_WARN, 2);
    g_loop = loop_new();
    kubelet_opts_t ko;
    kubelet_opts_default(&ko);
    ko.nodes = 1;
    ko.create_ms = 50;
    ko.ready_ms = 50;
    apiserver_t *api =
        g_loop ? apiserver_new(g_loop,
                               &(apiserver_opts_t){.simulate = true, .nodes = 1, .kubelet = &ko})
               : NULL;
    CHECK(g_loop && api);
    if (!api)
        return 1;
    char server[64];
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", apiserver_port(api));
    kubeconfig_t kc = {.server = server, .namespace_ = "default"};
    k8s_client_t *c = k8s_client_new(g_loop, &kc, NULL);
    CHECK(c != NULL);
    if (c)
        failed += s_tests(c, apiserver_raysim(api));
    k8s_client_destroy(&c);
    apiserver_destroy(&api);
    loop_destroy(&g_loop);
    curl_global_cleanup();
    printf("raydash_it: %d failure(s)\n", failed);
    return failed ? 1 : 0;
}
