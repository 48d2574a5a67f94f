/*
 * schedops_it: rayfleet-scheduler's operations endpoint (ctrl/ctrlsvc.c over common/opsrv), the
 * real binary against kubesim (fleet.h: kubesim, the bus, the watcher and one scheduler replica
 * with SQLite shard leases, as child processes).
 *
 * Checks:
 *   1. before it is ready: a scheduler whose state dir has no observed.db yet answers /readyz 503
 *      naming the reason, /healthz 200, and /metrics 200 with rayfleet_controller_ready 0;
 *   2. the fleet's replica answers /readyz 200 once observed.db is open and its shard membership
 *      has started, and /healthz 200;
 *   3. after a RayCluster is reconciled to ready: /metrics is 200 with the Prometheus text
 *      content type, and rayfleet_controller_passes_total, rayfleet_controller_creates_total,
 *      controller_runtime_reconcile_total{result="success"} are > 0 for controller
 *      "raycluster"; the replica owns all 256 shards and its queue gauge is there;
 *   4. an unknown path is 404.
 *
 * Usage: schedops_it [-v] [-k] (-k keeps the state dir). Exit 0 when every check passes.
 */
#include "fleet.h"

#include "log.h"
#include "metrics.h"
#include "selftest.h"

#define IT_PREFIX "ops" /* RayCluster name prefix */
#define IT_WAIT_MS 60000 /* longest wait for a condition */
#define IT_BODY_MAX (1 << 20) /* longest response body kept */

static bool g_verbose;

/* One GET answer. */
typedef struct {
    bool done; /* on_done ran */
    long status; /* HTTP status, -1 on a transport error */
    char ctype[128]; /* Content-Type */
    buf_t body; /* the body */
} s_get_t;

static void s_get_done(http_client_t *client, http_response_t *resp, void *arg)
{
    s_get_t *g = arg;
    g->done = true;
    g->status = resp->err ? -1 : resp->status;
    const char *ct = http_header_get(resp, "Content-Type");
    snprintf(g->ctype, sizeof(g->ctype), "%s", ct ? ct : "");
    if (resp->body.len)
        buf_append(&g->body, resp->body.data, resp->body.len);
}

/* GET http://127.0.0.1:<port><path> into *g (g->body initialized here; free it). Returns the
 * status or -1. */
static long s_get(fleet_t *f, int port, const char *path, s_get_t *g)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    *g = (s_get_t){.status = -1};
    buf_init(&g->body, IT_BODY_MAX);
    http_request_t req = {.method = "GET", .url = url, .on_done = s_get_done, .arg = g};
    if (http_request(f->http, &req) < 0)
        return -1;
    while (!g->done)
        loop_run_once(f->loop, FLEET_POLL_MS);
    return g->status;
}

/* Polls GET path until it answers `want` (or the deadline). Returns the last status. */
static long s_wait_status(fleet_t *f, int port, const char *path, long want)
{
    double deadline = fleet_now() + IT_WAIT_MS / 1000.0;
    long st = -1;
    while (fleet_now() < deadline) {
        s_get_t g;
        st = s_get(f, port, path, &g);
        buf_free(&g.body);
        if (st == want)
            break;
        fleet_sleep_ms(50);
    }
    return st;
}

/* The value of the sample line starting with `series` ("name{labels}") in a text exposition, or
 * -1 when absent. */
static double s_sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* Check 1: a scheduler of an empty state dir (no watcher: no observed.db) is alive, not ready. */
static int s_check_not_ready(fleet_t *f)
{
    int failed = 0;
    char dir[PATH_MAX], kc[PATH_MAX], be[PATH_MAX], port[16];
    snprintf(dir, sizeof(dir), "%s/early", f->dir);
    mkdir(dir, 0750);
    snprintf(kc, sizeof(kc), "%s/kubeconfig", f->dir);
    snprintf(be, sizeof(be), "ipc://%s/be.sock", f->dir);
    int p = fleet_free_port();
    snprintf(port, sizeof(port), "%d", p);
    char *argv[] = {NULL, "--kubeconfig",  kc,   "--state-dir", dir,    "--bus.endpoint",
                    be,   "--health.port", port, "--log-level", "warn", NULL};
    pid_t pid = fleet_spawn(f, "scheduler-early", "rayfleet-scheduler", argv);
    CHECK(pid > 0);
    CHECK(s_wait_status(f, p, "/healthz", 200) == 200);
    s_get_t g;
    CHECK(s_get(f, p, "/readyz", &g) == 503);
    if (g_verbose)
        printf("schedops_it: /readyz before observed.db: %ld %s", g.status, buf_str(&g.body));
    CHECK(strstr(buf_str(&g.body), "not ready:") != NULL);
    CHECK(strstr(buf_str(&g.body), "observed database") != NULL &&
          strstr(buf_str(&g.body), "not open yet") != NULL);
    buf_free(&g.body);
    CHECK(s_get(f, p, "/metrics", &g) == 200);
    CHECK(s_sample(buf_str(&g.body), "rayfleet_controller_ready") == 0);
    /* no controller yet: its labelled families are not there */
    CHECK(strstr(buf_str(&g.body), "rayfleet_controller_passes_total{") == NULL);
    buf_free(&g.body);
    CHECK(fleet_alive(pid));
    fleet_kill(&pid, false);
    return failed;
}

int main(int argc, char **argv)
{
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            g_verbose = true;
        else if (strcmp(argv[i], "-k") == 0)
            keep = true;
        else {
            fprintf(stderr, "usage: schedops_it [-v] [-k]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    log_setup("schedops_it", LOG_WARN, STDERR_FILENO);
    int failed = 0;
    fleet_t f = {0};
    fleet_opts_t o = {.nodes = 4,
                      .latency_ms = 0,
                      .replicas = 1,
                      .lease_ms = 2000,
                      .qps = 1000,
                      .concurrency = 4,
                      .log_level = "info",
                      .health = true};
    if (fleet_start(&f, &o) != 0) {
        fprintf(stderr, "schedops_it: cannot start the fleet (state %s)\n", f.dir);
        fleet_stop(&f, true);
        return 1;
    }
    int port = f.sched_health[0];
    if (g_verbose)
        printf("schedops_it: state %s, kubesim %s, scheduler health port %d\n", f.dir, f.base,
               port);
    CHECK(port > 0);
    failed += s_check_not_ready(&f);

    /* 2. ready once observed.db is open and the membership started */
    CHECK(s_wait_status(&f, port, "/readyz", 200) == 200);
    s_get_t g;
    CHECK(s_get(&f, port, "/healthz", &g) == 200);
    buf_free(&g.body);

    /* 3. a RayCluster reconciled, then the counters */
    int64_t acked[1] = {0};
    CHECK(fleet_create(&f, IT_PREFIX, 1, 0, acked, NULL, NULL, false) == 0);
    double deadline = fleet_now() + IT_WAIT_MS / 1000.0;
    while (fleet_now() < deadline && fleet_ready_count(&f, IT_PREFIX) < 1)
        fleet_sleep_ms(100);
    CHECK(fleet_ready_count(&f, IT_PREFIX) == 1);
    CHECK(s_get(&f, port, "/metrics", &g) == 200);
    CHECK(strcmp(g.ctype, METRICS_CONTENT_TYPE) == 0);
    const char *txt = buf_str(&g.body);
    if (g_verbose) /* the samples, without the HELP and TYPE lines */
        for (const char *l = txt; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != '\0'))
            if (*l != '#')
                printf("  | %.*s\n", (int)strcspn(l, "\n"), l);
    CHECK(s_sample(txt, "rayfleet_controller_ready") == 1);
    CHECK(s_sample(txt, "rayfleet_controller_passes_total{controller=\"raycluster\"}") > 0);
    CHECK(s_sample(txt, "rayfleet_controller_creates_total{controller=\"raycluster\"}") >= 4);
    CHECK(s_sample(txt, "rayfleet_controller_status_writes_total{controller=\"raycluster\"}") > 0);
    CHECK(s_sample(txt, "rayfleet_controller_shards_owned{controller=\"raycluster\"}") ==
          FLEET_SHARDS);
    CHECK(s_sample(txt, "rayfleet_controller_queue_depth{controller=\"raycluster\"}") >= 0);
    CHECK(s_sample(txt, "controller_runtime_reconcile_total{controller=\"raycluster\",result="
                        "\"success\"}") > 0);
    CHECK(s_sample(txt, "controller_runtime_reconcile_errors_total{controller=\"raycluster\"}") >=
          0);
    CHECK(s_sample(txt, "workqueue_adds_total{name=\"raycluster\"}") > 0);
    CHECK(strstr(txt, "# TYPE rayfleet_controller_passes_total counter\n") != NULL);
    buf_free(&g.body);

    /* 4. anything else */
    CHECK(s_get(&f, port, "/nothing", &g) == 404);
    buf_free(&g.body);
    CHECK(fleet_alive(f.sched[0]));
    fleet_stop(&f, keep || failed);
    if (failed || keep)
        fprintf(stderr, "schedops_it: state kept in %s\n", f.dir);
    return SELFTEST_RESULT("integration.schedops", g_verbose) == 0 ? 0 : 1;
}
