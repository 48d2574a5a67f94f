/*
 * fleet: a whole rayfleet as child processes, for integration.replicas and bench-scale (which
 * includes this file; both are single programs, so the helpers are file-static).
 *
 * fleet_start() makes a temporary state dir, starts kubesim (--latency-ms, --nodes) and waits for
 * its ready file, registers the ray.io CRDs of deploy/crds, starts rayfleet-bus (ipc:// sockets in
 * the state dir), rayfleet-watcher and N rayfleet-scheduler replicas, each with --replica
 * scheduler/<i>, its own --audit.db scheduler-<i>.db and shard leases in the shared
 * <state>/leases.db (--shards.lease sqlite), and no health port (--health.port 0: fixed ports
 * clash between fleets) unless fleet_opts_t.health gives each a free one. With
 * fleet_opts_t.submitter, rayfleet-submitter too (bench-rayjob): --use-kubernetes-proxy=true
 * (kubesim's heads are reachable only through the service proxy), its own --audit.db submitter.db,
 * no health port. With fleet_opts_t.serveup, rayfleet-serve-upgrade (the RayService controller,
 * bench-rayservice) the same way, its audit in serve-upgrade.db, --steady-poll from the options.
 * Children die with the parent (PR_SET_PDEATHSIG) and log into
 * <state>/logs/<name>.log. Requests go through common/http on a loop of this process.
 *
 * Also: RayCluster creation at a pace (or unpaced) with K requests in flight, recording when each
 * create was acknowledged (or of any namespaced object from a template: fleet_create_objs(); on
 * a client of the caller's, e.g. one request at a time as kubectl: fleet_create_run());
 * readiness counted from the watcher's observed.db; audit rows of every replica's database; VmRSS
 * and CPU seconds of the children from /proc.
 */
#ifndef RF_FLEET_H
#define RF_FLEET_H

#include "buf.h"
#include "err.h"
#include "http.h"
#include "json.h"
#include "loop.h"
#include "procstat.h"
#include "rftime.h"
#include "yaml.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLEET_FN static __attribute__((unused)) /* helpers: each includer uses a subset */
#define FLEET_REPLICAS_MAX 16 /* most scheduler replicas */
#define FLEET_READY_MS 30000 /* longest wait for a child to be ready */
#define FLEET_POLL_MS 5 /* loop wait while driving requests */
#define FLEET_INFLIGHT 32 /* requests in flight while creating */
#define FLEET_BODY_MAX 16384 /* bytes of one request body */
#define FLEET_FILE_MAX (8u << 20) /* bytes of a CRD or sample file */
#define FLEET_NS "default" /* namespace of the RayClusters */
#define FLEET_CLUSTER "default" /* member cluster name (the watcher's and scheduler's default) */
#define FLEET_SHARDS 256 /* the services' default shard count */

typedef struct {
    int nodes; /* kubesim --nodes */
    int latency_ms; /* kubesim --latency-ms */
    int replicas; /* scheduler replicas */
    int64_t lease_ms; /* --shards.lease-duration */
    int qps; /* schedulers' --client.qps and --client.burst */
    int concurrency; /* schedulers' --concurrency */
    int max_inflight; /* schedulers' --client.max-inflight; 0: their default */
    int connections; /* schedulers' --client.connections; 0: their default */
    const char *log_level; /* services' --log-level */
    const char *lease_backend; /* --shards.lease: "sqlite" (NULL) or "kubernetes" */
    bool health; /* schedulers serve /healthz, /readyz, /metrics on a free port each (else off) */
    bool submitter; /* also start rayfleet-submitter (the RayJob controller) */
    const char *submitter_gates; /* its --feature-gates (e.g. "RayCronJob=true"), or NULL */
    bool serveup; /* also start rayfleet-serve-upgrade (the RayService controller) */
    const char *steady_poll; /* its --steady-poll (NULL: its default) */
    const char *kubesim_flag; /* one more kubesim flag (e.g. "--fairness"), or NULL */
    const char *kubesim_value; /* its value (e.g. "off") */
} fleet_opts_t;

typedef struct {
    char dir[PATH_MAX - 64]; /* state dir (temporary) */
    char bin[PATH_MAX - 64]; /* directory of kubesim and the rayfleet-* binaries */
    char shared[PATH_MAX - 64]; /* RF_SHARED_DIR */
    char src[PATH_MAX - 64]; /* source tree (deploy/crds) */
    char base[128]; /* kubesim URL */
    pid_t kubesim, bus, watcher, submitter; /* children (submitter: 0 unless asked for) */
    pid_t serveup; /* rayfleet-serve-upgrade (0 unless asked for) */
    pid_t sched[FLEET_REPLICAS_MAX]; /* scheduler replicas (0: not running) */
    int sched_health[FLEET_REPLICAS_MAX]; /* their --health.port (0: off) */
    int nsched; /* replicas started */
    double sched_cpu_dead; /* CPU seconds of replicas already reaped */
    loop_t *loop; /* this process's loop */
    http_client_t *http; /* its HTTP client */
    json_t *cr; /* the RayCluster template */
} fleet_t;

FLEET_FN double fleet_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

FLEET_FN int64_t fleet_wall_ms(void)
{
    return rftime_now_ms();
}

FLEET_FN void fleet_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* CPU seconds (user + system) used so far by `pid`, or -1. */
FLEET_FN double fleet_cpu(pid_t pid)
{
    return pid > 0 ? procstat_cpu_of(pid) : -1;
}

/* VmRSS of `pid` in bytes, or 0. */
FLEET_FN long long fleet_rss(pid_t pid)
{
    int64_t b = pid > 0 ? procstat_rss_bytes(pid) : -1;
    return b > 0 ? b : 0;
}

/* Starts binary `bin` of f->bin with argv (argv[0] is replaced), output to logs/<name>.log.
 * Returns the pid or -1. */
FLEET_FN pid_t fleet_spawn(fleet_t *f, const char *name, const char *bin, char **argv)
{
    char exe[PATH_MAX], log[PATH_MAX];
    snprintf(exe, sizeof(exe), "%s/%s", f->bin, bin);
    snprintf(log, sizeof(log), "%s/logs/%s.log", f->dir, name);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0640);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        argv[0] = exe;
        execv(exe, argv);
        _exit(127);
    }
    return pid;
}

/* Kills and reaps a child (SIGKILL when hard, else SIGTERM and a wait). */
FLEET_FN void fleet_kill(pid_t *pid, bool hard)
{
    if (*pid <= 0)
        return;
    kill(*pid, hard ? SIGKILL : SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
        fleet_sleep_ms(10);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

/* ---- requests on the loop --------------------------------------------------------------- */

typedef struct {
    bool done; /* on_done ran */
    long status; /* HTTP status */
    int err; /* transport error */
    json_t *body; /* parsed body or NULL */
} fleet_sync_t;

FLEET_FN void fleet_sync_done(http_client_t *client, http_response_t *resp, void *arg)
{
    fleet_sync_t *r = arg;
    r->done = true;
    r->status = resp->status;
    r->err = resp->err;
    if (resp->body.len)
        r->body = json_loadb(resp->body.data, resp->body.len, 0, NULL);
}

/* One blocking request. Returns the HTTP status or -1; *out receives the parsed body. */
FLEET_FN long fleet_call(fleet_t *f, const char *method, const char *path, const char *ctype,
                         const char *body, size_t len, json_t **out)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", f->base, path);
    http_header_t h[] = {{"Content-Type", ctype}, {"Accept", "application/json"}};
    fleet_sync_t r = {0};
    http_request_t req = {.method = method,
                          .url = url,
                          .headers = h,
                          .n_headers = 2,
                          .body = body,
                          .body_len = len,
                          .on_done = fleet_sync_done,
                          .arg = &r};
    int64_t id = http_request(f->http, &req);
    if (id < 0)
        return -1;
    while (!r.done)
        loop_run_once(f->loop, FLEET_POLL_MS);
    if (out)
        *out = r.body;
    else
        json_decref(r.body);
    return r.err ? -1 : r.status;
}

FLEET_FN char *fleet_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *p = malloc(FLEET_FILE_MAX + 1);
    size_t n = p ? fread(p, 1, FLEET_FILE_MAX + 1, fp) : 0;
    fclose(fp);
    if (!p || n > FLEET_FILE_MAX) {
        free(p);
        return NULL;
    }
    p[n] = '\0';
    *len = n;
    return p;
}

/* Sets small requests on every container of a pod template (1,000 nodes must hold 40,000
 * pods). */
FLEET_FN void fleet_small_resources(json_t *tmpl)
{
    json_t *cs = json_object_get(json_object_get(tmpl, "spec"), "containers");
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c)
    {
        json_object_set_new(c, "resources",
                            json_pack("{s:{s:s,s:s},s:{s:s,s:s}}", "requests", "cpu", "100m",
                                      "memory", "256Mi", "limits", "cpu", "100m", "memory",
                                      "256Mi"));
    }
}

/* Loads ray-cluster.sample.yaml as the template: 1 head + `workers` workers, small requests. */
FLEET_FN int fleet_load_cr(fleet_t *f, int workers)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/kuberay/samples/ray-cluster.sample.yaml", f->shared);
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, 1024);
    int rc = yaml_load_file(path, FLEET_FILE_MAX, &docs, &err);
    json_t *cr = rc == 0 ? json_array_get(docs, 0) : NULL;
    if (!json_is_object(cr)) {
        fprintf(stderr, "fleet: cannot load %s: %s\n", path, buf_str(&err));
        json_decref(docs);
        buf_free(&err);
        return -1;
    }
    buf_free(&err);
    f->cr = json_deep_copy(cr);
    json_decref(docs);
    json_t *spec = json_object_get(f->cr, "spec");
    fleet_small_resources(json_object_get(json_object_get(spec, "headGroupSpec"), "template"));
    json_t *groups = json_object_get(spec, "workerGroupSpecs");
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        json_object_set_new(g, "replicas", json_integer(i == 0 ? workers : 0));
        json_object_set_new(g, "minReplicas", json_integer(0));
        json_object_set_new(g, "maxReplicas", json_integer(workers > 10 ? workers : 10));
        fleet_small_resources(json_object_get(g, "template"));
    }
    return 0;
}

/* ---- start and stop ---------------------------------------------------------------------- */

FLEET_FN bool fleet_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* A TCP port of 127.0.0.1 free now (the kernel's pick), or 0. */
FLEET_FN int fleet_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Starts scheduler replica i (its health port: a free one with o->health, else off: fixed
 * ports would clash between replicas and fleets). Returns 0 or -1. */
FLEET_FN int fleet_start_scheduler(fleet_t *f, const fleet_opts_t *o, int i)
{
    char name[32], replica[32], db[64], kc[PATH_MAX], be[PATH_MAX], lease[32], qps[32], conc[32],
        health[16];
    f->sched_health[i] = o->health ? fleet_free_port() : 0;
    snprintf(health, sizeof(health), "%d", f->sched_health[i]);
    snprintf(name, sizeof(name), "scheduler-%d", i);
    snprintf(replica, sizeof(replica), "scheduler/%d", i);
    snprintf(db, sizeof(db), "scheduler-%d.db", i);
    snprintf(kc, sizeof(kc), "%s/kubeconfig", f->dir);
    snprintf(be, sizeof(be), "ipc://%s/be.sock", f->dir);
    snprintf(lease, sizeof(lease), "%" PRId64 "ms", o->lease_ms);
    snprintf(qps, sizeof(qps), "%d", o->qps);
    snprintf(conc, sizeof(conc), "%d", o->concurrency);
    char *argv[] = {NULL,
                    "--kubeconfig",
                    kc,
                    "--state-dir",
                    f->dir,
                    "--bus.endpoint",
                    be,
                    "--replica",
                    replica,
                    "--audit.db",
                    db,
                    "--shards.lease",
                    (char *)(o->lease_backend ? o->lease_backend : "sqlite"),
                    "--shards.lease-duration",
                    lease,
                    "--client.qps",
                    qps,
                    "--client.burst",
                    qps,
                    "--concurrency",
                    conc,
                    "--log-level",
                    (char *)o->log_level,
                    "--health.port",
                    health,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL};
    char inflight[16], conns[16];
    size_t at = sizeof(argv) / sizeof(argv[0]) - 5;
    if (o->max_inflight > 0) {
        snprintf(inflight, sizeof(inflight), "%d", o->max_inflight);
        argv[at++] = "--client.max-inflight";
        argv[at++] = inflight;
    }
    if (o->connections > 0) {
        snprintf(conns, sizeof(conns), "%d", o->connections);
        argv[at++] = "--client.connections";
        argv[at++] = conns;
    }
    f->sched[i] = fleet_spawn(f, name, "rayfleet-scheduler", argv);
    if (f->sched[i] <= 0)
        return -1;
    if (i >= f->nsched)
        f->nsched = i + 1;
    return 0;
}

/* Starts rayfleet-submitter (the RayJob controller) with its own audit database submitter.db,
 * dashboards reached through kubesim's service proxy, no health port. Returns 0 or -1. */
FLEET_FN int fleet_start_submitter(fleet_t *f, const fleet_opts_t *o)
{
    char kc[PATH_MAX], be[PATH_MAX], qps[32], conc[32];
    snprintf(kc, sizeof(kc), "%s/kubeconfig", f->dir);
    snprintf(be, sizeof(be), "ipc://%s/be.sock", f->dir);
    snprintf(qps, sizeof(qps), "%d", o->qps > 0 ? o->qps : 100000);
    snprintf(conc, sizeof(conc), "%d", o->concurrency > 0 ? o->concurrency : 8);
    char *argv[] = {NULL,
                    "--kubeconfig",
                    kc,
                    "--state-dir",
                    f->dir,
                    "--bus.endpoint",
                    be,
                    "--audit.db",
                    "submitter.db",
                    "--use-kubernetes-proxy=true",
                    "--client.qps",
                    qps,
                    "--client.burst",
                    qps,
                    "--concurrency",
                    conc,
                    "--log-level",
                    (char *)o->log_level,
                    "--health.port",
                    "0",
                    NULL,
                    NULL,
                    NULL};
    if (o->submitter_gates) {
        size_t end = sizeof(argv) / sizeof(argv[0]) - 3;
        argv[end] = "--feature-gates";
        argv[end + 1] = (char *)o->submitter_gates;
    }
    f->submitter = fleet_spawn(f, "submitter", "rayfleet-submitter", argv);
    return f->submitter > 0 ? 0 : -1;
}

/* Starts rayfleet-serve-upgrade (the RayService controller) with its own audit database
 * serve-upgrade.db, dashboards and head pods reached through kubesim's proxy, no health port.
 * Returns 0 or -1. */
FLEET_FN int fleet_start_serveup(fleet_t *f, const fleet_opts_t *o)
{
    char kc[PATH_MAX], be[PATH_MAX], qps[32], conc[32];
    snprintf(kc, sizeof(kc), "%s/kubeconfig", f->dir);
    snprintf(be, sizeof(be), "ipc://%s/be.sock", f->dir);
    snprintf(qps, sizeof(qps), "%d", o->qps > 0 ? o->qps : 100000);
    snprintf(conc, sizeof(conc), "%d", o->concurrency > 0 ? o->concurrency : 8);
    char *argv[] = {NULL,
                    "--kubeconfig",
                    kc,
                    "--state-dir",
                    f->dir,
                    "--bus.endpoint",
                    be,
                    "--audit.db",
                    "serve-upgrade.db",
                    "--use-kubernetes-proxy=true",
                    "--client.qps",
                    qps,
                    "--client.burst",
                    qps,
                    "--concurrency",
                    conc,
                    "--log-level",
                    (char *)o->log_level,
                    "--health.port",
                    "0",
                    NULL,
                    NULL,
                    NULL};
    if (o->steady_poll) {
        argv[20] = "--steady-poll";
        argv[21] = (char *)o->steady_poll;
    }
    f->serveup = fleet_spawn(f, "serve-upgrade", "rayfleet-serve-upgrade", argv);
    return f->serveup > 0 ? 0 : -1;
}

/* Starts everything. Returns 0 or -1 (reason on stderr); call fleet_stop() either way. */
FLEET_FN int fleet_start(fleet_t *f, const fleet_opts_t *o)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    const char *env = getenv("RF_BIN_DIR");
    snprintf(f->bin, sizeof(f->bin), "%.3900s", env && *env ? env : exe);
    env = getenv("RF_SHARED_DIR");
    snprintf(f->shared, sizeof(f->shared), "%.3900s", env && *env ? env : RF_SHARED_DIR);
#ifdef RF_SOURCE_DIR
    snprintf(f->src, sizeof(f->src), "%.3900s", RF_SOURCE_DIR);
#else
    snprintf(f->src, sizeof(f->src), "%.3900s/../..", exe); /* <build>/bin/../.. */
#endif
    snprintf(f->dir, sizeof(f->dir), "/tmp/rf-fleet-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/logs", f->dir);
    mkdir(p, 0750);
    f->loop = loop_new();
    /* one connection per request in flight: the raw baselines are not held back by the
     * client's default of 8 connections per host */
    f->http = f->loop ? http_client_new(f->loop,
                                        &(http_config_t){.max_host_connections = FLEET_INFLIGHT,
                                                         .max_total_connections = FLEET_INFLIGHT})
                      : NULL;
    if (!f->http || fleet_load_cr(f, 3) != 0)
        return -1;

    char ready[PATH_MAX], kc[PATH_MAX], nodes[16], lat[16];
    snprintf(ready, sizeof(ready), "%s/kubesim.ready", f->dir);
    snprintf(kc, sizeof(kc), "%s/kubeconfig", f->dir);
    snprintf(nodes, sizeof(nodes), "%d", o->nodes);
    snprintf(lat, sizeof(lat), "%d", o->latency_ms);
    char *kargv[] = {NULL,
                     "--port",
                     "0",
                     "--nodes",
                     nodes,
                     "--latency-ms",
                     lat,
                     "--ready-file",
                     ready,
                     "--kubeconfig-out",
                     kc,
                     "--log-level",
                     "warn",
                     (char *)o->kubesim_flag,
                     (char *)o->kubesim_value,
                     NULL};
    f->kubesim = fleet_spawn(f, "kubesim", "kubesim", kargv);
    double deadline = fleet_now() + FLEET_READY_MS / 1000.0;
    while (fleet_now() < deadline) {
        size_t len = 0;
        char *s = fleet_exists(kc) ? fleet_read_file(ready, &len) : NULL;
        if (s && strncmp(s, "http://", 7) == 0) {
            s[strcspn(s, "\r\n")] = '\0';
            snprintf(f->base, sizeof(f->base), "%s", s);
            free(s);
            break;
        }
        free(s);
        fleet_sleep_ms(20);
    }
    if (!f->base[0]) {
        fprintf(stderr, "fleet: kubesim not ready (see %s/logs/kubesim.log)\n", f->dir);
        return -1;
    }
    static const char *const crds[] = {"ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml",
                                       "ray.io_rayservices.yaml", "ray.io_raycronjobs.yaml"};
    for (size_t i = 0; i < sizeof(crds) / sizeof(crds[0]); i++) {
        snprintf(p, sizeof(p), "%s/deploy/crds/%s", f->src, crds[i]);
        size_t len = 0;
        char *y = fleet_read_file(p, &len);
        if (!y)
            continue;
        long st = fleet_call(f, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                             "application/yaml", y, len, NULL);
        free(y);
        if (st != 201 && st != 409) {
            fprintf(stderr, "fleet: CRD %s: HTTP %ld\n", crds[i], st);
            return -1;
        }
    }
    char fe[PATH_MAX], be[PATH_MAX];
    snprintf(fe, sizeof(fe), "ipc://%s/fe.sock", f->dir);
    snprintf(be, sizeof(be), "ipc://%s/be.sock", f->dir);
    char *bargv[] = {NULL,   "--bus.frontend", fe,     "--bus.backend", be,  "--state-dir",
                     f->dir, "--log-level",    "warn", "--health.port", "0", NULL};
    f->bus = fleet_spawn(f, "bus", "rayfleet-bus", bargv);
    deadline = fleet_now() + FLEET_READY_MS / 1000.0;
    while (fleet_now() < deadline && !(fleet_exists(fe + 6) && fleet_exists(be + 6)))
        fleet_sleep_ms(20);
    char *wargv[] = {NULL,
                     "--kubeconfig",
                     kc,
                     "--state-dir",
                     f->dir,
                     "--bus.endpoint",
                     fe,
                     "--log-level",
                     (char *)o->log_level,
                     "--client.qps",
                     "100000",
                     "--client.burst",
                     "100000",
                     "--health.port", /* off: fixed 8082 would clash between fleets */
                     "0",
                     NULL};
    f->watcher = fleet_spawn(f, "watcher", "rayfleet-watcher", wargv);
    for (int i = 0; i < o->replicas && i < FLEET_REPLICAS_MAX; i++)
        if (fleet_start_scheduler(f, o, i) != 0)
            return -1;
    if (o->submitter && fleet_start_submitter(f, o) != 0)
        return -1;
    if (o->serveup && fleet_start_serveup(f, o) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/observed.db", f->dir);
    deadline = fleet_now() + FLEET_READY_MS / 1000.0;
    while (fleet_now() < deadline && !fleet_exists(p))
        fleet_sleep_ms(20);
    if (!fleet_exists(p)) {
        fprintf(stderr, "fleet: no observed.db (see %s/logs/watcher.log)\n", f->dir);
        return -1;
    }
    return 0;
}

/* Whether child `pid` still runs (reaps it when not). */
FLEET_FN bool fleet_alive(pid_t pid)
{
    return pid > 0 && waitpid(pid, NULL, WNOHANG) == 0;
}

/* Removes the state dir (files and logs/ only: the layout fleet_start() made). */
FLEET_FN void fleet_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (strcmp(e->d_name, "logs") == 0)
            fleet_rmdir(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Stops every child and frees everything; keeps the state dir when keep is true. */
FLEET_FN void fleet_stop(fleet_t *f, bool keep)
{
    for (int i = 0; i < f->nsched; i++)
        fleet_kill(&f->sched[i], false);
    fleet_kill(&f->submitter, false);
    fleet_kill(&f->serveup, false);
    fleet_kill(&f->watcher, false);
    fleet_kill(&f->bus, false);
    fleet_kill(&f->kubesim, false);
    http_client_destroy(&f->http);
    loop_destroy(&f->loop);
    json_decref(f->cr);
    f->cr = NULL;
    if (!keep && f->dir[0])
        fleet_rmdir(f->dir);
}

/* VmRSS and CPU seconds split by process: bus, watcher, schedulers (summed, with replicas already
 * reaped), the submitter and serve-upgrade (0 when not started) and kubesim (not rayfleet's, for
 * comparison). */
typedef struct {
    long long rss_bus, rss_watcher, rss_sched, rss_kubesim; /* VmRSS bytes */
    double cpu_bus, cpu_watcher, cpu_sched, cpu_kubesim; /* CPU seconds */
    long long rss_submitter; /* VmRSS bytes of rayfleet-submitter */
    double cpu_submitter; /* its CPU seconds */
    long long rss_serveup; /* VmRSS bytes of rayfleet-serve-upgrade */
    double cpu_serveup; /* its CPU seconds */
} fleet_split_t;

FLEET_FN void fleet_usage_split(fleet_t *f, fleet_split_t *s)
{
    memset(s, 0, sizeof(*s));
    s->rss_bus = fleet_rss(f->bus);
    s->cpu_bus = fleet_cpu(f->bus);
    s->rss_watcher = fleet_rss(f->watcher);
    s->cpu_watcher = fleet_cpu(f->watcher);
    s->rss_kubesim = fleet_rss(f->kubesim);
    s->cpu_kubesim = fleet_cpu(f->kubesim);
    s->rss_submitter = fleet_rss(f->submitter);
    s->cpu_submitter = f->submitter > 0 ? fleet_cpu(f->submitter) : 0;
    s->rss_serveup = fleet_rss(f->serveup);
    s->cpu_serveup = f->serveup > 0 ? fleet_cpu(f->serveup) : 0;
    s->cpu_sched = f->sched_cpu_dead;
    for (int i = 0; i < f->nsched; i++)
        if (f->sched[i] > 0) {
            s->rss_sched += fleet_rss(f->sched[i]);
            s->cpu_sched += fleet_cpu(f->sched[i]);
        }
}

/* ---- creating RayClusters ---------------------------------------------------------------- */

typedef struct fleet_create fleet_create_t;

typedef struct {
    fleet_create_t *c; /* the run */
    size_t i; /* the index being created */
    double sent; /* monotonic time the request was started */
    char url[512]; /* request URL */
    char body[FLEET_BODY_MAX]; /* request body */
} fleet_slot_t;

/* What fleet_create_run() creates and how; a field left 0/NULL takes the default shown. */
typedef struct {
    const char *coll; /* collection path; NULL: RayClusters */
    json_t *tmpl; /* object template (name and namespace set per object); NULL: f->cr */
    const char *prefix; /* name prefix: objects are <prefix>-NNNNNN */
    size_t n; /* objects to create */
    double rate; /* creates per second, 0: unpaced */
    int64_t *acked_ms; /* acked_ms[i]: wall-clock ms at the 201 (0 when it failed) */
    void (*tick)(void *); /* run every loop turn, or NULL */
    void *tick_arg; /* its argument */
    bool pods; /* create bare pods (the raw baseline) instead */
    http_client_t *http; /* the client to send with; NULL: f->http */
    int inflight; /* requests in flight at once, 1..FLEET_INFLIGHT; 0: FLEET_INFLIGHT */
    int64_t *lat_us; /* NULL, or lat_us[i]: request started -> answered, microseconds */
} fleet_create_opts_t;

struct fleet_create {
    fleet_t *f; /* the fleet */
    fleet_create_opts_t o; /* what to create */
    http_client_t *http; /* the client */
    size_t started, done, failed; /* progress */
    double t0; /* monotonic start */
    fleet_slot_t slots[FLEET_INFLIGHT]; /* requests in flight */
    bool busy[FLEET_INFLIGHT]; /* slot in use */
};

FLEET_FN void fleet_create_start(fleet_create_t *c, int k);

FLEET_FN void fleet_create_done(http_client_t *client, http_response_t *resp, void *arg)
{
    fleet_slot_t *s = arg;
    fleet_create_t *c = s->c;
    c->done++;
    c->busy[s - c->slots] = false;
    if (c->o.lat_us)
        c->o.lat_us[s->i] = (int64_t)((fleet_now() - s->sent) * 1e6);
    if (resp->err || resp->status != 201) {
        if (c->failed++ == 0)
            fprintf(stderr, "fleet: create %s: HTTP %ld %.200s\n", s->url, resp->status,
                    resp->body.len ? buf_str(&resp->body) : err_str(resp->err));
        return;
    }
    if (c->o.acked_ms)
        c->o.acked_ms[s->i] = fleet_wall_ms();
}

FLEET_FN void fleet_create_start(fleet_create_t *c, int k)
{
    fleet_slot_t *s = &c->slots[k];
    s->c = c;
    s->i = c->started++;
    snprintf(s->url, sizeof(s->url), "%s/apis/ray.io/v1/namespaces/%s/rayclusters", c->f->base,
             FLEET_NS);
    char name[96];
    snprintf(name, sizeof(name), "%s-%06zu", c->o.prefix, s->i);
    if (c->o.pods) {
        snprintf(s->url, sizeof(s->url), "%s/api/v1/namespaces/%s/pods", c->f->base, FLEET_NS);
        int len = snprintf(
            s->body, sizeof(s->body),
            "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
            "\"namespace\":\"%s\",\"labels\":{\"app\":\"raw\"}},\"spec\":{\"containers\":[{"
            "\"name\":\"ray-worker\",\"image\":\"rayproject/ray:2.46.0\",\"resources\":{"
            "\"requests\":{\"cpu\":\"100m\",\"memory\":\"256Mi\"}}}]}}",
            name, FLEET_NS);
        http_header_t ph[] = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
        http_request_t preq = {.method = "POST",
                               .url = s->url,
                               .headers = ph,
                               .n_headers = 2,
                               .body = s->body,
                               .body_len = (size_t)len,
                               .body_borrowed = true,
                               .on_done = fleet_create_done,
                               .arg = s};
        c->busy[k] = true;
        s->sent = fleet_now();
        if (http_request(c->http, &preq) < 0) {
            c->busy[k] = false;
            c->done++;
            c->failed++;
        }
        return;
    }
    json_t *obj = c->o.tmpl ? c->o.tmpl : c->f->cr;
    if (c->o.coll)
        snprintf(s->url, sizeof(s->url), "%s%s", c->f->base, c->o.coll);
    json_t *md = json_object_get(obj, "metadata");
    json_object_set_new(md, "name", json_string(name));
    json_object_set_new(md, "namespace", json_string(FLEET_NS));
    size_t len = json_dumpb(obj, s->body, sizeof(s->body), JSON_COMPACT);
    http_header_t h[] = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    http_request_t req = {.method = "POST",
                          .url = s->url,
                          .headers = h,
                          .n_headers = 2,
                          .body = s->body,
                          .body_len = len < sizeof(s->body) ? len : 0,
                          .body_borrowed = true,
                          .on_done = fleet_create_done,
                          .arg = s};
    c->busy[k] = true;
    s->sent = fleet_now();
    if (len == 0 || len >= sizeof(s->body) || http_request(c->http, &req) < 0) {
        c->busy[k] = false;
        c->done++;
        c->failed++;
    }
}

/* Creates o->n objects named <prefix>-NNNNNN (see fleet_create_opts_t) at o->rate/s (0: as fast
 * as o->inflight requests in flight go). Returns the failures. */
FLEET_FN size_t fleet_create_run(fleet_t *f, const fleet_create_opts_t *o)
{
    fleet_create_t *c = calloc(1, sizeof(*c));
    if (!c)
        return o->n;
    int inflight = o->inflight > 0 && o->inflight < FLEET_INFLIGHT ? o->inflight : FLEET_INFLIGHT;
    *c = (fleet_create_t){.f = f, .o = *o, .http = o->http ? o->http : f->http};
    c->t0 = fleet_now();
    while (c->done < o->n) {
        for (int k = 0; k < inflight && c->started < o->n; k++) {
            if (c->busy[k])
                continue;
            if (o->rate > 0 && (double)c->started / o->rate > fleet_now() - c->t0)
                break;
            fleet_create_start(c, k);
        }
        loop_run_once(f->loop, 1);
        if (o->tick)
            o->tick(o->tick_arg);
    }
    size_t failed = c->failed;
    free(c);
    return failed;
}

/* Creates n RayClusters named <prefix>-NNNNNN at `rate`/s (0: as fast as FLEET_INFLIGHT
 * requests in flight go); acked_ms[i] receives each acknowledgement's wall-clock time (0 when
 * it failed). `tick` (may be NULL) runs every loop turn. pods: bare pods instead (the raw
 * baseline). Returns the failures. */
FLEET_FN size_t fleet_create(fleet_t *f, const char *prefix, size_t n, double rate,
                             int64_t *acked_ms, void (*tick)(void *), void *tick_arg, bool pods)
{
    return fleet_create_run(f, &(fleet_create_opts_t){.prefix = prefix,
                                                      .n = n,
                                                      .rate = rate,
                                                      .acked_ms = acked_ms,
                                                      .tick = tick,
                                                      .tick_arg = tick_arg,
                                                      .pods = pods});
}

/* Like fleet_create(), for objects of template `tmpl` (name and namespace set per object) POSTed
 * to collection path `coll` (e.g. "/apis/ray.io/v1/namespaces/default/rayjobs"); NULL coll and
 * tmpl: RayClusters of f->cr. Returns the failures. */
FLEET_FN size_t fleet_create_objs(fleet_t *f, const char *coll, json_t *tmpl, const char *prefix,
                                  size_t n, double rate, int64_t *acked_ms, void (*tick)(void *),
                                  void *tick_arg, bool pods)
{
    return fleet_create_run(f, &(fleet_create_opts_t){.coll = coll,
                                                      .tmpl = tmpl,
                                                      .prefix = prefix,
                                                      .n = n,
                                                      .rate = rate,
                                                      .acked_ms = acked_ms,
                                                      .tick = tick,
                                                      .tick_arg = tick_arg,
                                                      .pods = pods});
}

/* ---- observing --------------------------------------------------------------------------- */

/* RayClusters whose name starts with prefix and whose status.state is "ready", from
 * observed.db; -1 when it cannot be read. */
FLEET_FN long fleet_ready_count(fleet_t *f, const char *prefix)
{
    char p[PATH_MAX], like[128];
    snprintf(p, sizeof(p), "%s/observed.db", f->dir);
    snprintf(like, sizeof(like), "%s-%%", prefix);
    sqlite3 *db = NULL;
    long n = -1;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 1000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db,
                               "SELECT count(*) FROM observed_objects WHERE kind = 'RayCluster' "
                               "AND name LIKE ?1 AND phase = 'ready'",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, like, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                n = (long)sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

/* One audit row, as the checks need it. */
typedef struct {
    int replica; /* index of the database it came from */
    int64_t sent_ms; /* time_ms - latency_ms: when the request was sent (wall clock) */
    int64_t done_ms; /* time_ms: when its result arrived */
    char key[160]; /* cause_key */
    char corr[40]; /* correlation_id: one reconcile pass */
    char kind[32]; /* target_kind */
    char verb[16]; /* verb */
    char name[128]; /* target_name */
    int status; /* result_status */
} fleet_row_t;

/* Reads the audit rows of every replica's database (rows whose cause_key contains `prefix`),
 * appended to *rows (realloc'd) / *n. Returns 0 or -1. */
FLEET_FN int fleet_audit_rows(fleet_t *f, const char *prefix, fleet_row_t **rows, size_t *n)
{
    size_t cap = *n;
    char like[128];
    snprintf(like, sizeof(like), "%%/%s-%%", prefix);
    for (int i = 0; i < f->nsched; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/scheduler-%d.db", f->dir, i);
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
            sqlite3_close(db);
            continue;
        }
        sqlite3_busy_timeout(db, 2000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db,
                               "SELECT time_ms, latency_ms, cause_key, correlation_id, "
                               "target_kind, verb, target_name, result_status FROM audit WHERE "
                               "cause_key LIKE ?1",
                               -1, &st, NULL) != SQLITE_OK) {
            sqlite3_close(db);
            continue;
        }
        sqlite3_bind_text(st, 1, like, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 1024;
                fleet_row_t *nr = realloc(*rows, cap * sizeof(**rows));
                if (!nr) {
                    sqlite3_finalize(st);
                    sqlite3_close(db);
                    return -1;
                }
                *rows = nr;
            }
            fleet_row_t *r = &(*rows)[(*n)++];
            memset(r, 0, sizeof(*r));
            r->replica = i;
            r->done_ms = sqlite3_column_int64(st, 0);
            r->sent_ms = r->done_ms - sqlite3_column_int64(st, 1);
            const char *s;
            s = (const char *)sqlite3_column_text(st, 2);
            snprintf(r->key, sizeof(r->key), "%s", s ? s : "");
            s = (const char *)sqlite3_column_text(st, 3);
            snprintf(r->corr, sizeof(r->corr), "%s", s ? s : "");
            s = (const char *)sqlite3_column_text(st, 4);
            snprintf(r->kind, sizeof(r->kind), "%s", s ? s : "");
            s = (const char *)sqlite3_column_text(st, 5);
            snprintf(r->verb, sizeof(r->verb), "%s", s ? s : "");
            s = (const char *)sqlite3_column_text(st, 6);
            snprintf(r->name, sizeof(r->name), "%s", s ? s : "");
            r->status = sqlite3_column_int(st, 7);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    return 0;
}

/* Orders rows by key, then send time. */
FLEET_FN int fleet_row_cmp(const void *a, const void *b)
{
    const fleet_row_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->sent_ms < y->sent_ms ? -1 : x->sent_ms > y->sent_ms;
}

#endif
