/*
 * launch: see launch.h.
 */
#include "launch.h"

#include "args.h"
#include "batchsched.h"
#include "busopt.h"
#include "err.h"
#include "json.h"
#include "keys.h"
#include "kube.h"
#include "loop.h"
#include "privfs.h"
#include "proc.h"
#include "supervise.h"
#include "validate.h"
#include "yaml.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define LAUNCH_MAX_ARGV 64 /* most arguments passed to one service */
#define LAUNCH_PROBE_BYTES 256 /* bytes of an HTTP answer read to find its status */
#define LAUNCH_PROBE_IO_MS 1000 /* socket timeout of one readiness probe */
#define LAUNCH_CRD_POLL_MS 200 /* Established polling period */

/* A rayfleet service `up` knows how to start. */
typedef struct {
    const char *name; /* short name: log file, pid file, messages */
    const char *binary; /* file name beside rayfleetctl */
    bool bus_endpoint_is_backend; /* what its --bus.endpoint means: subscriber (backend) side */
    bool controller; /* reconciles one cluster: with --members, one per member */
} s_service_t;

/* The fixed list, in start order (the bus first: the others connect to it). */
static const s_service_t s_services[] = {
    {"bus", "rayfleet-bus", false, false},
    {"watcher", "rayfleet-watcher", false, false},
    {"scheduler", "rayfleet-scheduler", true, true},
    {"submitter", "rayfleet-submitter", true, true},
    {"serve-upgrade", "rayfleet-serve-upgrade", true, true},
};
#define S_NSERVICES (sizeof(s_services) / sizeof(s_services[0]))

/* Everything one `up` run knows. */
typedef struct {
    char state[PATH_MAX]; /* absolute state dir */
    char bin[PATH_MAX]; /* directory of the binaries */
    char kubeconfig[PATH_MAX]; /* kubeconfig the services use */
    char pidfile[PATH_MAX]; /* STATE/pids */
    char frontend[PATH_MAX]; /* bus frontend endpoint */
    char backend[PATH_MAX]; /* bus backend endpoint */
    const char *log_level; /* --log-level */
    int64_t timeout_ms; /* --timeout */
    proc_entry_t procs[PROC_MAX]; /* started processes, in order */
    size_t nprocs; /* how many */
    bool with_self; /* procs[0] is rayfleetctl itself (the supervisor) */
    supervise_t sv; /* restarts the services that die (supervise.h) */
    bool sim; /* against kubesim (dashboards reachable only through the service proxy) */
    bool take_over; /* --take-over: controllers start even when a KubeRay operator is active */
    bool refused; /* a controller refused to start: a KubeRay operator is reconciling */
    int signal; /* SIGINT/SIGTERM received while starting */
    const char *cmd; /* the command, in messages: "up" or "crds" */
    const char *feature_gates; /* --feature-gates, or NULL */
    const char *batch_scheduler; /* --batch-scheduler, or NULL */
    const char *watch_namespace; /* --watch-namespace, or NULL */
    char sim_minor[8]; /* --sim-k8s-minor, or "" (kubesim's default) */
    char kuberay_config[PATH_MAX]; /* --kuberay-config made absolute, or "" */
    char config[PATH_MAX]; /* --config (rayfleet's set file) made absolute, or "" */
    char keys[PATH_MAX]; /* STATE/keys, the bus's CURVE keys (cli/keys.h); "" unless CURVE */
    const char *ipc_auth; /* --bus-ipc-auth for every service (busopt.h): peercred or curve */
    int nmembers; /* --members: member clusters (0: one cluster, as without federation) */
    bool placer; /* the service being started is the management cluster's scheduler (placer) */
    int64_t member_nodes[LAUNCH_MAX_MEMBERS]; /* nodes of member i+1 */
    char urls[LAUNCH_MAX_MEMBERS + 1][128]; /* API URL of the management (0) and member clusters */
    const char *member; /* the member whose controller s_start_service starts, or NULL */
} s_up_t;

static const args_opt_t s_up_opts[] = {
    {"sim", NULL,
     "Start kubesim, the simulated Kubernetes cluster, and run against it (its kubeconfig is "
     "STATE/kubeconfig). Starts from an empty cluster, so the state dir's databases are reset."},
    {"kubeconfig", "FILE",
     "Run against the cluster of this kubeconfig instead of --sim (the ray.io CRDs are installed "
     "when absent)."},
    {"detach", NULL,
     "Return once everything is ready, leaving it running, and print the kubeconfig path; "
     "'rayfleetctl down' stops it. Without it, up stays until Ctrl-C or SIGTERM."},
    {"state-dir", "DIR",
     "Directory for the kubeconfig, bus sockets, databases, pid file and logs/ "
     "(default " LAUNCH_DEFAULT_STATE_DIR ")."},
    {"nodes", "N", "Simulated nodes (--sim only; 1..1000, default 4)."},
    {"sim-k8s-minor", "N",
     "The Kubernetes minor version kubesim reports on /version (--sim only; 20..99, default 32), "
     "e.g. 35 for KubeRay's SidecarSubmitterRestart gate, which needs 1.35+."},
    {"crds", "DIR",
     "CRD manifests to install (default: deploy/crds of the source tree, found from the binary)."},
    {"bin-dir", "DIR",
     "Where kubesim and the rayfleet-* services are (default: rayfleetctl's own "
     "directory)."},
    {"timeout", "DURATION", "How long each step may take to become ready (default 60s)."},
    {"log-level", "LEVEL", "Log level of the services: debug, info, warn or error (default info)."},
    {"take-over", NULL,
     "Start the controllers even when a KubeRay operator is reconciling (its ray-operator-leader "
     "Lease is held); without it they refuse (exit 2) and say how to stop KubeRay. Leader "
     "election is always on: a second 'up' against the same cluster waits as a hot standby."},
    {"scheduler-replicas", "N",
     "Scheduler replicas to start (1..8, default 1). With N > 1 they split the shards through "
     "SQLite leases in STATE/leases.db, replica i writing STATE/scheduler-<i>.db."},
    {"feature-gates", "GATES",
     "KubeRay's feature gates for every controller, as KubeRay's flag, e.g. "
     "RayCronJob=true,RayClusterNetworkPolicy=true (checked before anything starts)."},
    {"batch-scheduler", "NAME",
     "KubeRay's batch scheduler for every controller (volcano, yunikorn, kai-scheduler, "
     "scheduler-plugins), as KubeRay's flag (checked before anything starts)."},
    {"config", "FILE",
     "rayfleet's configuration file for every service: shared keys at the top level, a section "
     "per service (bus:, watcher:, scheduler:, submitter:, serve-upgrade:)."},
    {"kuberay-config", "FILE",
     "KubeRay's Configuration file (config.ray.io/v1alpha1) for every controller: pod defaults, "
     "sidecars, featureGates, ..."},
    {"watch-namespace", "NS[,NS...]",
     "Namespaces to reconcile: the watcher lists and watches only these (--watch.namespaces) and "
     "the controllers ignore others (--watch-namespace). Default: all."},
    {"bus-ipc-auth", "MODE",
     "How the bus's ipc:// sockets (STATE/bus-in, STATE/bus-out) authenticate: peercred (the "
     "default: the bus admits only processes of its own uid, by the kernel's peer credentials, "
     "without encryption) or curve (CurveZMQ with keys in STATE/keys and an allow-list of the "
     "set's services, about half the throughput)."},
    {"members", "N",
     "Federation (--sim only; 1..8): also start N member clusters, each its own kubesim with its "
     "own nodes (member i: --nodes × i), and per member a scheduler, submitter and serve-upgrade; "
     "STATE/kubeconfig gets the contexts management and member-1..member-N (current: "
     "management), STATE/federation.yaml describes them. The management cluster has no nodes; its "
     "scheduler is the placer: RayClusters, RayJobs and RayServices applied there are placed on "
     "a member with room and their status mirrored back."},
    {"member-nodes", "N,N,...",
     "With --members: each member's nodes (1..1000 each, as many numbers as members) instead of "
     "--nodes × i."},
    {"bus-insecure", NULL,
     "Run the bus without authentication (neither peer uids nor CurveZMQ): any local process "
     "that reaches its sockets could then read every event and publish forged ones (a warning "
     "says so). Not with --bus-ipc-auth."},
    {NULL, NULL, NULL},
};

static const args_opt_t s_down_opts[] = {
    {"state-dir", "DIR", "State directory given to 'up' (default " LAUNCH_DEFAULT_STATE_DIR ")."},
    {"timeout", "DURATION",
     "How long each process may take to stop after SIGTERM before SIGKILL (default 10s)."},
    {NULL, NULL, NULL},
};

/* snprintf into a fixed buffer, cutting silently (paths are bounded by PATH_MAX and checked
 * where it matters). */
static void s_fmt(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_fmt(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}

static bool s_is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool s_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Directory of the running binary, or "." */
static void s_self_dir(char *out, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    if (n <= 0) {
        s_fmt(out, size, ".");
        return;
    }
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = '\0';
}

/* Makes `dir` absolute (it must exist). */
static int s_absolute(const char *dir, char *out)
{
    char resolved[PATH_MAX];
    if (!realpath(dir, resolved))
        return ERR_IO;
    s_fmt(out, PATH_MAX, "%s", resolved);
    return 0;
}

static void s_path(char *out, const char *dir, const char *file)
{
    s_fmt(out, PATH_MAX, "%s/%s", dir, file);
}

/* The state dir from the arguments, created, made absolute. Prints errors. */
static int s_state_dir(const char *cmd, const args_t *a, bool create, char *out)
{
    const char *dir = args_str(a, "state-dir");
    if (!dir)
        dir = LAUNCH_DEFAULT_STATE_DIR;
    if (create && privfs_mkdirs(dir) != 0) {
        fprintf(stderr, "rayfleetctl %s: --state-dir: cannot create '%s': %s\n", cmd, dir,
                strerror(errno));
        return ERR_IO;
    }
    if (!s_is_dir(dir)) {
        s_fmt(out, PATH_MAX, "%s", dir);
        return ERR_NOTFOUND;
    }
    return s_absolute(dir, out);
}

/* ---- pid file ---------------------------------------------------------------------------- */

static void s_save(s_up_t *u)
{
    if (proc_pidfile_write(u->pidfile, u->procs, u->nprocs) != 0)
        fprintf(stderr, "rayfleetctl up: warning: cannot write %s: %s\n", u->pidfile,
                strerror(errno));
}

static void s_stop_everything(s_up_t *u)
{
    size_t from = u->with_self ? 1 : 0;
    proc_stop_all(u->procs + from, u->nprocs - from, LAUNCH_STOP_TIMEOUT_MS, stderr);
    unlink(u->pidfile);
}

/* Reports a started process that died, with its log tail. */
static void s_report_death(const s_up_t *u, const proc_entry_t *e, int status)
{
    char how[128];
    proc_describe_status(status, how, sizeof(how));
    char log[PATH_MAX];
    s_fmt(log, sizeof(log), "%s/logs/%s.log", u->state, e->name);
    fprintf(stderr, "rayfleetctl: %s (pid %d) %s; the last lines of %s:\n", e->name, (int)e->pid,
            how, log);
    proc_tail(log, LAUNCH_TAIL_LINES, "  | ", stderr);
}

/* Whether the file at `path` contains `text` (read up to LAUNCH_LOG_SCAN_MAX bytes). */
static bool s_log_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char *buf = malloc(LAUNCH_LOG_SCAN_MAX + 1);
    size_t n = buf ? fread(buf, 1, LAUNCH_LOG_SCAN_MAX, f) : 0;
    fclose(f);
    bool found = false;
    if (buf) {
        buf[n] = '\0';
        found = memmem(buf, n, text, strlen(text)) != NULL;
    }
    free(buf);
    return found;
}

/* Whether the last started process is still alive; reports it when not. */
static bool s_check_alive(s_up_t *u, const proc_entry_t *e)
{
    int status = 0;
    if (proc_exited(e, &status)) {
        s_report_death(u, e, status);
        return false;
    }
    return true;
}

/* ---- readiness probes -------------------------------------------------------------------- */

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* GET http://127.0.0.1:port/path; returns the HTTP status, or -1 when nothing answered. */
/* A TCP connection to host:port (a name or an address) with LAUNCH_PROBE_IO_MS socket
 * timeouts, or -1. */
static int s_connect(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char service[16];
    s_fmt(service, sizeof(service), "%d", port);
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        struct timeval tv = {0, LAUNCH_PROBE_IO_MS * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* The HTTP status of `method` http://host:port/path with `body` (JSON, NULL: none), or -1. */
static int s_http_request(const char *host, int port, const char *method, const char *path,
                          const char *body)
{
    int fd = s_connect(host, port);
    if (fd < 0)
        return -1;
    int status = -1;
    char req[2048];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.0\r\nHost: %s:%d\r\nConnection: close\r\n%s%s%zu\r\n\r\n%s",
                     method, path, host, port, body ? "Content-Type: application/json\r\n" : "",
                     "Content-Length: ", blen, body ? body : "");
    char answer[LAUNCH_PROBE_BYTES + 1];
    if (n < 0 || n >= (int)sizeof(req))
        goto done;
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        goto done;
    size_t got = 0;
    while (got < LAUNCH_PROBE_BYTES) {
        ssize_t r = recv(fd, answer + got, LAUNCH_PROBE_BYTES - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memchr(answer, '\n', got))
            break;
    }
    answer[got] = '\0';
    if (strncmp(answer, "HTTP/1.", 7) == 0 && got >= 12) {
        char *end = NULL;
        long code = strtol(answer + 9, &end, 10);
        if (end != answer + 9 && code >= 100 && code <= 599)
            status = (int)code;
    }
done:
    close(fd);
    return status;
}

/* The HTTP status of GET http://host:port/path, or -1. */
static int s_http_status_at(const char *host, int port, const char *path)
{
    return s_http_request(host, port, "GET", path, NULL);
}

int launch_http_request(const char *base, const char *method, const char *path, const char *body)
{
    char host[256] = "";
    int port = 0;
    if (strncmp(base, "http://", 7) == 0) {
        const char *h = base + 7, *colon = strrchr(h, ':');
        char *end = NULL;
        long p = colon ? strtol(colon + 1, &end, 10) : 0;
        if (colon && (size_t)(colon - h) < sizeof(host) && end != colon + 1 &&
            (*end == '\0' || *end == '/') && p > 0 && p <= 65535) {
            memcpy(host, h, (size_t)(colon - h));
            host[colon - h] = '\0';
            port = (int)p;
        }
    }
    if (!host[0] || !port)
        return -1;
    return s_http_request(host, port, method, path, body);
}

static int s_http_status(int port, const char *path)
{
    return s_http_status_at("127.0.0.1", port, path);
}

int launch_http_status(int port, const char *path)
{
    return s_http_status(port, path);
}

/* ---- kubesim ----------------------------------------------------------------------------- */

/* Starts one kubesim: `cluster` NULL is the single cluster of `up --sim` (process "kubesim",
 * STATE/kubeconfig, STATE/kubesim.ready); else the federation's cluster of that name (process
 * "kubesim" for the management cluster, "kubesim-<cluster>" for a member;
 * STATE/kubeconfig-<cluster> and STATE/kubesim-<cluster>.ready). Its URL goes into url[128]. */
static int s_start_kubesim(s_up_t *u, const char *cluster, int64_t nodes, char *url)
{
    char bin[PATH_MAX], ready[PATH_MAX], log[PATH_MAX], nodes_s[32], kc[PATH_MAX];
    char name[PROC_NAME_MAX];
    bool member = cluster && strcmp(cluster, LAUNCH_MANAGEMENT) != 0;
    if (member)
        s_fmt(name, sizeof(name), LAUNCH_MEMBER_KUBESIM, cluster);
    else
        s_fmt(name, sizeof(name), "kubesim");
    s_path(bin, u->bin, "kubesim");
    if (cluster) {
        s_fmt(ready, sizeof(ready), "%s/kubesim-%s.ready", u->state, cluster);
        s_fmt(kc, sizeof(kc), "%s/kubeconfig-%s", u->state, cluster);
    } else {
        s_path(ready, u->state, "kubesim.ready");
        s_fmt(kc, sizeof(kc), "%s", u->kubeconfig);
    }
    s_fmt(log, sizeof(log), "%s/logs/%s.log", u->state, name);
    s_fmt(nodes_s, sizeof(nodes_s), "%" PRId64, nodes);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr,
                "rayfleetctl up: --sim needs kubesim, not found at %s (build it, or set "
                "--bin-dir)\n",
                bin);
        return ERR_NOTFOUND;
    }
    if (u->nprocs >= PROC_MAX) {
        fprintf(stderr, "rayfleetctl up: more than %d processes\n", PROC_MAX);
        return ERR_TOOBIG;
    }
    unlink(ready);
    unlink(kc);
    unlink(log);
    char *argv[] = {bin,
                    "--port",
                    "0",
                    "--nodes",
                    nodes_s,
                    "--kubeconfig-out",
                    kc,
                    "--ready-file",
                    ready,
                    "--log-level",
                    (char *)u->log_level,
                    u->sim_minor[0] ? "--minor" : NULL,
                    u->sim_minor,
                    NULL};
    proc_entry_t *e = &u->procs[u->nprocs];
    if (proc_spawn(name, argv, log, e) != 0) {
        fprintf(stderr, "rayfleetctl up: cannot start %s: %s\n", name, strerror(errno));
        return ERR_IO;
    }
    u->nprocs++;
    s_save(u);
    if (supervise_track(&u->sv, u->nprocs - 1, argv, log, 0, true) != 0)
        return ERR_NOMEM;
    fprintf(stderr, "rayfleetctl: starting %s (%s nodes, pid %d)\n", name, nodes_s, (int)e->pid);
    int64_t deadline = loop_clock_ms() + u->timeout_ms;
    struct stat st;
    while (!(stat(ready, &st) == 0 && st.st_size > 0 && s_exists(kc))) {
        if (!s_check_alive(u, e))
            return ERR_CLOSED;
        if (loop_clock_ms() >= deadline) {
            fprintf(stderr, "rayfleetctl up: %s did not write %s within %" PRId64 " ms; see %s\n",
                    name, ready, u->timeout_ms, log);
            return ERR_TIMEOUT;
        }
        if ((u->signal = proc_sleep(LAUNCH_PROBE_MS)) != 0)
            return ERR_CLOSED;
    }
    url[0] = '\0';
    FILE *f = fopen(ready, "re");
    if (f) {
        if (fgets(url, 128, f))
            url[strcspn(url, "\r\n")] = '\0';
        fclose(f);
    }
    fprintf(stderr, "rayfleetctl: %s ready at %s\n", name, url);
    return 0;
}

/* The name of cluster i of the federation: 0 the management cluster, i > 0 member i. */
static void s_cluster_name(int i, char *out, size_t size)
{
    if (i == 0)
        s_fmt(out, size, "%s", LAUNCH_MANAGEMENT);
    else
        s_fmt(out, size, LAUNCH_MEMBER_NAME, i);
}

/* Writes STATE/kubeconfig (a context per cluster, current: management) and
 * STATE/federation.yaml (fed-design.md's format) for the started kubesims. */
static int s_write_federation(s_up_t *u)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    int rc = buf_puts(&b, "apiVersion: v1\nkind: Config\nclusters:\n");
    char name[64];
    for (int i = 0; rc == 0 && i <= u->nmembers; i++) {
        s_cluster_name(i, name, sizeof(name));
        rc = buf_printf(&b, "- name: %s\n  cluster:\n    server: %s\n", name, u->urls[i]);
    }
    if (rc == 0)
        rc = buf_puts(&b, "contexts:\n");
    for (int i = 0; rc == 0 && i <= u->nmembers; i++) {
        s_cluster_name(i, name, sizeof(name));
        rc = buf_printf(&b,
                        "- name: %s\n  context:\n    cluster: %s\n    user: kubesim\n"
                        "    namespace: default\n",
                        name, name);
    }
    if (rc == 0)
        rc = buf_printf(&b, "current-context: %s\nusers:\n- name: kubesim\n  user: {}\n",
                        LAUNCH_MANAGEMENT);
    if (rc == 0)
        rc = privfs_write_atomic(u->kubeconfig, buf_str(&b), b.len, PRIVFS_FILE_MODE);
    if (rc != 0) {
        fprintf(stderr, "rayfleetctl up: cannot write %s: %s\n", u->kubeconfig, err_str(rc));
        buf_free(&b);
        return rc;
    }
    buf_reset(&b);
    rc = buf_printf(&b,
                    "# written by rayfleetctl up --members %d: the simulated federation\n"
                    "federation:\n  management: {name: %s, context: %s, kubeconfig: \"%s\"}\n"
                    "  members:\n",
                    u->nmembers, LAUNCH_MANAGEMENT, LAUNCH_MANAGEMENT, u->kubeconfig);
    for (int i = 1; rc == 0 && i <= u->nmembers; i++) {
        s_cluster_name(i, name, sizeof(name));
        rc = buf_printf(&b,
                        "    - name: %s\n      context: %s\n      kubeconfig: \"%s\"\n"
                        "      labels: {sim.rayfleet.io/nodes: \"%" PRId64 "\"}\n",
                        name, name, u->kubeconfig, u->member_nodes[i - 1]);
    }
    char path[PATH_MAX];
    s_path(path, u->state, LAUNCH_FEDERATION_FILE);
    if (rc == 0)
        rc = privfs_write_atomic(path, buf_str(&b), b.len, PRIVFS_FILE_MODE);
    if (rc != 0)
        fprintf(stderr, "rayfleetctl up: cannot write %s: %s\n", path, err_str(rc));
    buf_free(&b);
    return rc;
}

/* ---- CRDs -------------------------------------------------------------------------------- */

static int s_find_crds(const char *cmd, const args_t *a, char *out)
{
    const char *given = args_str(a, "crds");
    if (given) {
        if (!s_is_dir(given)) {
            fprintf(stderr, "rayfleetctl %s: --crds: '%s' is not a directory\n", cmd, given);
            return ERR_NOTFOUND;
        }
        return s_absolute(given, out);
    }
    char self[PATH_MAX];
    s_self_dir(self, sizeof(self));
    const char *rel[] = {"../../deploy/crds", "../deploy/crds", "../share/rayfleet/crds"};
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        char p[PATH_MAX];
        s_fmt(p, sizeof(p), "%s/%s", self, rel[i]);
        if (s_is_dir(p))
            return s_absolute(p, out);
    }
    if (s_is_dir(RF_SOURCE_DIR "/deploy/crds"))
        return s_absolute(RF_SOURCE_DIR "/deploy/crds", out);
    fprintf(stderr,
            "rayfleetctl %s: cannot find the CRD manifests (looked beside %s and in "
            "%s/deploy/crds); give --crds DIR\n",
            cmd, self, RF_SOURCE_DIR);
    return ERR_NOTFOUND;
}

static bool s_established(const json_t *crd)
{
    json_t *conds = jx_get(crd, "status.conditions");
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        if (strcmp(jx_str(c, "type", ""), "Established") == 0 &&
            strcmp(jx_str(c, "status", ""), "True") == 0)
            return true;
    }
    return false;
}

static int s_yaml_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && ((n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0) ||
                                   (n > 4 && strcmp(d->d_name + n - 4, ".yml") == 0));
}

/* Installs (when absent) and waits for every CRD in `dir`. */
static int s_install_crds(s_up_t *u, kube_t *k, const char *dir)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, s_yaml_filter, alphasort);
    if (n <= 0) {
        fprintf(stderr, "rayfleetctl %s: no CRD manifests (*.yaml) in %s\n", u->cmd, dir);
        free(list);
        return ERR_NOTFOUND;
    }
    int rc = 0;
    json_t *names = json_array();
    buf_t err;
    buf_init(&err, KUBE_ERR_MAX);
    k8s_res_t res = {
        .group = "apiextensions.k8s.io", .version = "v1", .resource = "customresourcedefinitions"};
    for (int i = 0; i < n && rc == 0; i++) {
        char path[PATH_MAX];
        s_path(path, dir, list[i]->d_name);
        json_t *docs = NULL;
        buf_reset(&err);
        if (yaml_load_file(path, LAUNCH_CRD_MAX_FILE, &docs, &err) != 0) {
            fprintf(stderr, "rayfleetctl %s: %s\n", u->cmd, buf_str(&err));
            rc = ERR_PARSE;
            break;
        }
        size_t j;
        json_t *doc;
        json_array_foreach(docs, j, doc)
        {
            if (strcmp(jx_str(doc, "kind", ""), "CustomResourceDefinition") != 0)
                continue;
            const char *name = jx_str(doc, "metadata.name", NULL);
            if (!name)
                continue;
            res.name = name;
            buf_reset(&err);
            int r = kube_call(k, KUBE_GET, &res, NULL, u->timeout_ms, NULL, &err);
            const char *what = "present";
            if (r == ERR_NOTFOUND) {
                res.name = NULL;
                buf_reset(&err);
                r = kube_call(k, KUBE_CREATE, &res, doc, u->timeout_ms, NULL, &err);
                what = "created";
                if (r == ERR_EXISTS)
                    r = 0;
            }
            if (r != 0) {
                fprintf(stderr, "rayfleetctl %s: CRD %s: %s\n", u->cmd, name, buf_str(&err));
                rc = r;
                break;
            }
            fprintf(stderr, "rayfleetctl: CRD %s %s\n", name, what);
            json_array_append_new(names, json_string(name));
        }
        json_decref(docs);
    }
    /* Wait until each is Established. */
    size_t j;
    json_t *nm;
    json_array_foreach(names, j, nm)
    {
        if (rc != 0)
            break;
        res.name = json_string_value(nm);
        int64_t deadline = loop_clock_ms() + u->timeout_ms;
        for (;;) {
            json_t *crd = NULL;
            buf_reset(&err);
            int r = kube_call(k, KUBE_GET, &res, NULL, u->timeout_ms, &crd, &err);
            bool ok = r == 0 && s_established(crd);
            json_decref(crd);
            if (ok)
                break;
            if (loop_clock_ms() >= deadline) {
                fprintf(stderr,
                        "rayfleetctl %s: CRD %s not Established within %" PRId64 " ms%s%s\n",
                        u->cmd, res.name, u->timeout_ms, r ? ": " : "", r ? buf_str(&err) : "");
                rc = ERR_TIMEOUT;
                break;
            }
            if ((u->signal = proc_sleep(LAUNCH_CRD_POLL_MS)) != 0) {
                rc = ERR_CLOSED;
                break;
            }
        }
    }
    if (rc == 0)
        fprintf(stderr, "rayfleetctl: %zu CRDs Established\n", json_array_size(names));
    json_decref(names);
    buf_free(&err);
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return rc;
}

/* ---- services ---------------------------------------------------------------------------- */

/* Whether `help` lists option --name. */
static bool s_has_flag(const char *help, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = help; (p = strstr(p, "--")) != NULL; p += 2) {
        if (strncmp(p + 2, name, len) == 0) {
            char c = p[2 + len];
            if (c == ' ' || c == '\n' || c == '=' || c == ',' || c == '\0' || c == '\t')
                return true;
        }
    }
    return false;
}

/* The argument vector of one service; strings owned. */
typedef struct {
    char *v[LAUNCH_MAX_ARGV + 1]; /* NULL-terminated */
    int n; /* count */
} s_argv_t;

static int s_arg(s_argv_t *a, const char *flag, const char *value)
{
    if (a->n + 2 > LAUNCH_MAX_ARGV)
        return ERR_TOOBIG;
    char *f = NULL;
    if (flag) {
        size_t len = strlen(flag) + 3;
        f = malloc(len);
        if (!f)
            return ERR_NOMEM;
        s_fmt(f, len, "--%s", flag);
    }
    char *v = value ? strdup(value) : NULL;
    if ((value && !v)) {
        free(f);
        return ERR_NOMEM;
    }
    if (f)
        a->v[a->n++] = f;
    if (v)
        a->v[a->n++] = v;
    a->v[a->n] = NULL;
    return 0;
}

static void s_argv_free(s_argv_t *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
}

/* Passes the CURVE key files (cli/keys.h) to service `s`, whose --help is `h`. Returns 0 or an
 * err_t (reported). */
static int s_key_args(const s_up_t *u, const s_service_t *s, const char *h, s_argv_t *a)
{
    bool is_bus = strcmp(s->name, "bus") == 0;
    if (!s_has_flag(h, "bus.curve-key-file")) {
        fprintf(stderr,
                "rayfleetctl up: %s has no --bus.curve-key-file option, so it cannot join the "
                "set's CURVE bus; rebuild it, or use --bus-ipc-auth peercred (the default)\n",
                s->binary);
        return ERR_INVAL;
    }
    char pair[PATH_MAX], other[PATH_MAX];
    if (keys_pair_path(u->keys, is_bus ? KEYS_SERVER : s->name, pair, sizeof(pair)) != 0 ||
        (is_bus ? keys_allow_path(u->keys, other, sizeof(other))
                : keys_server_path(u->keys, other, sizeof(other))) != 0)
        return ERR_TOOBIG;
    int r = s_arg(a, "bus.curve-key-file", pair);
    if (r == 0)
        r = s_arg(a, is_bus ? "bus.curve-allow-file" : "bus.curve-server-key-file", other);
    return r;
}

/* Starts one service and waits until it is ready; `replica` >= 0 starts scheduler replica
 * `replica` (see launch.h), -1 the service as it is. Returns 0, ERR_NOTFOUND (not built) or an
 * error (reported). */
static int s_start_service(s_up_t *u, const s_service_t *s, int replica, char *summary,
                           size_t summary_size)
{
    char bin[PATH_MAX], log[PATH_MAX], name[PROC_NAME_MAX];
    s_path(bin, u->bin, s->binary);
    if (replica >= 0)
        s_fmt(name, sizeof(name), LAUNCH_REPLICA_NAME, replica);
    else if (u->member)
        s_fmt(name, sizeof(name), LAUNCH_MEMBER_SERVICE, u->member, s->name);
    else
        s_fmt(name, sizeof(name), "%s", s->name);
    s_fmt(log, sizeof(log), "%s/logs/%s.log", u->state, name);
    if (access(bin, X_OK) != 0)
        return ERR_NOTFOUND;
    buf_t help;
    buf_init(&help, PROC_CAPTURE_MAX);
    char *hargv[] = {bin, "--help", NULL};
    int rc = proc_capture(hargv, &help);
    if (rc != 0) {
        fprintf(stderr, "rayfleetctl up: '%s --help' failed (%s); cannot tell its options\n", bin,
                err_str(rc));
        buf_free(&help);
        return rc;
    }
    const char *h = buf_str(&help);
    s_argv_t a = {0};
    int health = -1, r = s_arg(&a, NULL, bin);
    bool is_bus = strcmp(s->name, "bus") == 0;
    if (r == 0 && s_has_flag(h, "kubeconfig"))
        r = s_arg(&a, "kubeconfig", u->kubeconfig);
    if (r == 0 && s_has_flag(h, "state-dir"))
        r = s_arg(&a, "state-dir", u->state);
    if (r == 0 && s_has_flag(h, "log-level"))
        r = s_arg(&a, "log-level", u->log_level);
    if (r == 0 && s_has_flag(h, "bus.frontend"))
        r = s_arg(&a, "bus.frontend", u->frontend);
    if (r == 0 && s_has_flag(h, "bus.backend"))
        r = s_arg(&a, "bus.backend", u->backend);
    if (r == 0 && !is_bus && s_has_flag(h, "bus.endpoint"))
        r = s_arg(&a, "bus.endpoint", s->bus_endpoint_is_backend ? u->backend : u->frontend);
    if (r == 0 && s_has_flag(h, "bus.publish"))
        r = s_arg(&a, "bus.publish", u->frontend);
    if (r == 0 && s_has_flag(h, "bus.subscribe"))
        r = s_arg(&a, "bus.subscribe", u->backend);
    if (r == 0 && s_has_flag(h, "bus.ipc-auth"))
        r = s_arg(&a, "bus.ipc-auth", u->ipc_auth);
    if (r == 0 && u->keys[0])
        r = s_key_args(u, s, h, &a);
    if (r == 0 && s_has_flag(h, "health.port")) {
        char port[16];
        health = s_free_port();
        s_fmt(port, sizeof(port), "%d", health);
        r = s_arg(&a, "health.port", port);
    }
    if (r == 0 && u->take_over && s_has_flag(h, "leader.take-over"))
        r = s_arg(&a, "leader.take-over=true", NULL); // a bool: one word
    if (r == 0 && u->config[0] && s_has_flag(h, "config"))
        r = s_arg(&a, "config", u->config);
    if (r == 0 && u->feature_gates && s_has_flag(h, "feature-gates"))
        r = s_arg(&a, "feature-gates", u->feature_gates);
    if (r == 0 && u->batch_scheduler && s_has_flag(h, "batch-scheduler"))
        r = s_arg(&a, "batch-scheduler", u->batch_scheduler);
    if (r == 0 && u->kuberay_config[0] && s_has_flag(h, "kuberay-config"))
        r = s_arg(&a, "kuberay-config", u->kuberay_config);
    if (r == 0 && u->watch_namespace && s_has_flag(h, "watch-namespace"))
        r = s_arg(&a, "watch-namespace", u->watch_namespace);
    if (r == 0 && u->watch_namespace && s_has_flag(h, "watch.namespaces"))
        r = s_arg(&a, "watch.namespaces", u->watch_namespace);
    if (r == 0 && u->sim && s_has_flag(h, "use-kubernetes-proxy"))
        r = s_arg(&a, "use-kubernetes-proxy=true", NULL); // a bool: one word, not "--flag true"
    if (r == 0 && s_has_flag(h, "metrics.port")) {
        char port[16];
        s_fmt(port, sizeof(port), "%d", s_free_port());
        r = s_arg(&a, "metrics.port", port);
    }
    if (r == 0 && u->member) {
        if (!s_has_flag(h, "cluster") || !s_has_flag(h, "context") || !s_has_flag(h, "audit.db")) {
            fprintf(stderr,
                    "rayfleetctl up: --members: %s has no --cluster, --context or --audit.db "
                    "option, so it cannot reconcile a member; rebuild it\n",
                    bin);
            s_argv_free(&a);
            buf_free(&help);
            return ERR_INVAL;
        }
        char db[PROC_NAME_MAX + 8];
        s_fmt(db, sizeof(db), "%s.db", name);
        r = s_arg(&a, "cluster", u->member);
        if (r == 0)
            r = s_arg(&a, "context", u->member);
        if (r == 0)
            r = s_arg(&a, "audit.db", db);
    }
    if (r == 0 && u->placer) {
        if (!s_has_flag(h, "cluster") || !s_has_flag(h, "context") ||
            !s_has_flag(h, "federation.config")) {
            fprintf(stderr,
                    "rayfleetctl up: --members: %s has no --cluster, --context or "
                    "--federation.config option, so it cannot place the management cluster's "
                    "objects; rebuild it\n",
                    bin);
            s_argv_free(&a);
            buf_free(&help);
            return ERR_INVAL;
        }
        char fed[PATH_MAX];
        s_path(fed, u->state, LAUNCH_FEDERATION_FILE);
        r = s_arg(&a, "cluster", LAUNCH_MANAGEMENT);
        if (r == 0)
            r = s_arg(&a, "context", LAUNCH_MANAGEMENT);
        if (r == 0)
            r = s_arg(&a, "federation.config", fed);
        /* its passes are small (a mirror, a decision) but one to a member that stopped answering
         * waits up to PLACER_MEMBER_TIMEOUT_MS: more of them at once than a member's scheduler */
        if (r == 0 && s_has_flag(h, "concurrency"))
            r = s_arg(&a, "concurrency", LAUNCH_PLACER_CONCURRENCY);
    }
    if (r == 0 && u->nmembers > 0 && strcmp(s->name, "watcher") == 0) {
        if (!s_has_flag(h, "clusters") || !s_has_flag(h, "watch.nodes")) {
            fprintf(stderr,
                    "rayfleetctl up: --members: %s has no --clusters or --watch.nodes option, "
                    "so it cannot watch the members; rebuild it\n",
                    bin);
            s_argv_free(&a);
            buf_free(&help);
            return ERR_INVAL;
        }
        buf_t cl;
        buf_init(&cl, 64 * 1024);
        for (int i = 0; r == 0 && i <= u->nmembers; i++) {
            char cn[64];
            s_cluster_name(i, cn, sizeof(cn));
            r = buf_printf(&cl, "%s%s=%s@%s", i ? "," : "", cn, u->kubeconfig, cn);
        }
        if (r == 0)
            r = s_arg(&a, "clusters", buf_str(&cl));
        if (r == 0)
            r = s_arg(&a, "watch.nodes=true", NULL); // a bool: one word
        buf_free(&cl);
    }
    if (r == 0 && replica >= 0) {
        if (!s_has_flag(h, "replica") || !s_has_flag(h, "audit.db") ||
            !s_has_flag(h, "shards.lease")) {
            fprintf(stderr,
                    "rayfleetctl up: --scheduler-replicas: %s has no --replica, --audit.db or "
                    "--shards.lease option, so it cannot run as several replicas; rebuild it or "
                    "use --scheduler-replicas 1\n",
                    bin);
            s_argv_free(&a);
            buf_free(&help);
            return ERR_INVAL;
        }
        char id[64], db[64];
        s_fmt(id, sizeof(id), LAUNCH_REPLICA_ID, replica);
        s_fmt(db, sizeof(db), LAUNCH_REPLICA_DB, replica);
        r = s_arg(&a, "replica", id);
        if (r == 0)
            r = s_arg(&a, "audit.db", db);
        if (r == 0)
            r = s_arg(&a, "shards.lease", "sqlite");
    }
    buf_free(&help);
    if (r != 0) {
        s_argv_free(&a);
        fprintf(stderr, "rayfleetctl up: %s: %s\n", name, err_str(r));
        return r;
    }
    unlink(log);
    if (u->nprocs >= PROC_MAX) {
        s_argv_free(&a);
        fprintf(stderr, "rayfleetctl up: more than %d processes\n", PROC_MAX);
        return ERR_TOOBIG;
    }
    proc_entry_t *e = &u->procs[u->nprocs];
    r = proc_spawn(name, a.v, log, e);
    if (r != 0) {
        s_argv_free(&a);
        fprintf(stderr, "rayfleetctl up: cannot start %s: %s\n", bin, strerror(errno));
        return r;
    }
    u->nprocs++;
    s_save(u);
    r = supervise_track(&u->sv, u->nprocs - 1, a.v, log, health > 0 ? health : 0, false);
    s_argv_free(&a);
    if (r != 0)
        return r;
    int64_t started = loop_clock_ms();
    int64_t deadline = started + u->timeout_ms;
    const char *how = "alive";
    for (;;) {
        if (!s_check_alive(u, e)) {
            if (s_log_has(log, LAUNCH_KUBERAY_REFUSAL)) {
                u->refused = true;
                fprintf(stderr,
                        "rayfleetctl up: a KubeRay operator is reconciling this cluster: stop it "
                        "(see above), or run 'rayfleetctl up --take-over' to start anyway\n");
            }
            return ERR_CLOSED;
        }
        bool ready;
        if (health > 0) {
            ready = s_http_status(health, "/readyz") == 200;
            how = "/readyz 200";
        } else if (is_bus) {
            ready = s_exists(u->frontend + 6) && s_exists(u->backend + 6);
            how = "sockets bound";
        } else {
            ready = loop_clock_ms() - started >= LAUNCH_SETTLE_MS;
        }
        if (ready)
            break;
        if (loop_clock_ms() >= deadline) {
            fprintf(stderr,
                    "rayfleetctl up: %s (pid %d) not ready within %" PRId64 " ms (%s); the "
                    "last lines of %s:\n",
                    name, (int)e->pid, u->timeout_ms,
                    health > 0 ? "its /readyz does not answer 200" : "no sockets", log);
            proc_tail(log, LAUNCH_TAIL_LINES, "  | ", stderr);
            return ERR_TIMEOUT;
        }
        if ((u->signal = proc_sleep(LAUNCH_PROBE_MS)) != 0)
            return ERR_CLOSED;
    }
    char port_note[32] = "";
    if (health > 0)
        s_fmt(port_note, sizeof(port_note), ", health port %d", health);
    fprintf(stderr, "rayfleetctl: %s ready (pid %d, %s%s)\n", name, (int)e->pid, how, port_note);
    s_fmt(summary, summary_size, "%s pid %d%s", name, (int)e->pid, port_note);
    return 0;
}

/* Refuses to start over a running set; removes a stale pid file. */
static int s_check_not_running(const s_up_t *u)
{
    proc_entry_t e[PROC_MAX];
    size_t n = 0;
    if (proc_pidfile_read(u->pidfile, e, PROC_MAX, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (proc_alive(&e[i])) {
            fprintf(stderr,
                    "rayfleetctl up: rayfleet already runs in %s (%s, pid %d); run "
                    "'rayfleetctl down --state-dir %s' first\n",
                    u->state, e[i].name, (int)e[i].pid, u->state);
            return ERR_EXISTS;
        }
    }
    unlink(u->pidfile);
    return 0;
}

/* Removes the databases of a previous simulated cluster (a new kubesim starts empty). */
static void s_reset_databases(const char *state)
{
    DIR *d = opendir(state);
    if (!d)
        return;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        const char *nm = ent->d_name;
        size_t len = strlen(nm);
        bool db = (len > 3 && strcmp(nm + len - 3, ".db") == 0) ||
                  (len > 7 &&
                   (strcmp(nm + len - 7, ".db-wal") == 0 || strcmp(nm + len - 7, ".db-shm") == 0));
        if (db) {
            char p[PATH_MAX];
            s_path(p, state, nm);
            unlink(p);
        }
    }
    closedir(d);
}

int launch_up(int argc, char **argv)
{
    args_t a;
    int pr = args_parse("up", "(--sim | --kubeconfig FILE) [--detach] [--state-dir DIR] [OPTIONS]",
                        "Starts rayfleet: with --sim, kubesim (a simulated Kubernetes cluster) "
                        "first; then installs the ray.io CRDs when absent and starts every\n"
                        "rayfleet service that is built (bus, watcher, scheduler), each with its "
                        "log in STATE/logs/<name>.log and its pid in STATE/pids.",
                        s_up_opts, 0, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    bool sim = args_has(&a, "sim");
    const char *kc = args_str(&a, "kubeconfig");
    if (sim == (kc != NULL)) {
        fprintf(stderr, "rayfleetctl up: give exactly one of --sim (start a simulated cluster) "
                        "and --kubeconfig FILE (use a real one)\n");
        return 2;
    }
    int64_t nodes = LAUNCH_DEFAULT_NODES;
    int64_t replicas = LAUNCH_DEFAULT_SCHEDULER_REPLICAS;
    if (args_int(&a, "up", "scheduler-replicas", 1, LAUNCH_MAX_SCHEDULER_REPLICAS,
                 LAUNCH_DEFAULT_SCHEDULER_REPLICAS, &replicas) != 0)
        return 2;
    if (args_has(&a, "nodes") && !sim) {
        fprintf(stderr, "rayfleetctl up: --nodes: only with --sim\n");
        return 2;
    }
    if (args_has(&a, "sim-k8s-minor") && !sim) {
        fprintf(stderr, "rayfleetctl up: --sim-k8s-minor: only with --sim\n");
        return 2;
    }
    int64_t minor = 0;
    if (args_int(&a, "up", "sim-k8s-minor", 20, 99, 0, &minor) != 0)
        return 2;
    int64_t nmembers = 0;
    if ((args_has(&a, "members") || args_has(&a, "member-nodes")) && !sim) {
        fprintf(stderr, "rayfleetctl up: --members, --member-nodes: only with --sim\n");
        return 2;
    }
    if (args_int(&a, "up", "members", 1, LAUNCH_MAX_MEMBERS, 0, &nmembers) != 0)
        return 2;
    if (args_has(&a, "member-nodes") && nmembers == 0) {
        fprintf(stderr, "rayfleetctl up: --member-nodes: only with --members\n");
        return 2;
    }
    if (nmembers > 0 && replicas > 1) {
        fprintf(stderr, "rayfleetctl up: --scheduler-replicas: not with --members (each member "
                        "runs one scheduler)\n");
        return 2;
    }
    s_up_t *u = calloc(1, sizeof(*u));
    if (!u)
        return 1;
    u->cmd = "up";
    int notify = -1; /* --detach: the pipe to the waiting parent (supervise.h) */
    if (minor > 0)
        s_fmt(u->sim_minor, sizeof(u->sim_minor), "%" PRId64, minor);
    int code = 2;
    if (args_int(&a, "up", "nodes", 1, LAUNCH_MAX_NODES, LAUNCH_DEFAULT_NODES, &nodes) != 0 ||
        args_duration(&a, "up", "timeout", 100, 3600000, LAUNCH_DEFAULT_TIMEOUT_MS,
                      &u->timeout_ms) != 0)
        goto out;
    u->nmembers = (int)nmembers;
    for (int i = 0; i < u->nmembers; i++)
        u->member_nodes[i] = nodes * (i + 1);
    if (args_str(&a, "member-nodes")) {
        const char *p = args_str(&a, "member-nodes");
        int i = 0;
        while (*p) {
            char *end = NULL;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || errno || v < 1 || v > LAUNCH_MAX_NODES || i >= u->nmembers ||
                (*end && *end != ',')) {
                fprintf(stderr,
                        "rayfleetctl up: --member-nodes: want %d numbers 1..%d separated by "
                        "commas, one per member (got '%s')\n",
                        u->nmembers, LAUNCH_MAX_NODES, args_str(&a, "member-nodes"));
                goto out;
            }
            u->member_nodes[i++] = v;
            p = *end ? end + 1 : end;
        }
        if (i != u->nmembers) {
            fprintf(stderr,
                    "rayfleetctl up: --member-nodes: want %d numbers, one per member (got %d)\n",
                    u->nmembers, i);
            goto out;
        }
    }
    u->log_level = args_str(&a, "log-level") ? args_str(&a, "log-level") : "info";
    u->feature_gates = args_str(&a, "feature-gates");
    if (u->feature_gates) {
        buf_t gerr;
        buf_init(&gerr, 512);
        int grc = validate_gates_option(u->feature_gates, &gerr);
        if (grc != 0)
            fprintf(stderr, "rayfleetctl up: %s\n", buf_str(&gerr));
        buf_free(&gerr);
        if (grc != 0)
            goto out;
    }
    u->ipc_auth = args_str(&a, "bus-ipc-auth") ? args_str(&a, "bus-ipc-auth") : BUSOPT_IPC_PEERCRED;
    if (strcmp(u->ipc_auth, BUSOPT_IPC_PEERCRED) != 0 && strcmp(u->ipc_auth, BUSOPT_IPC_CURVE)) {
        fprintf(stderr, "rayfleetctl up: --bus-ipc-auth: \"%s\": must be peercred or curve\n",
                u->ipc_auth);
        goto out;
    }
    if (args_str(&a, "bus-ipc-auth") && args_has(&a, "bus-insecure")) {
        fprintf(stderr, "rayfleetctl up: --bus-insecure and --bus-ipc-auth exclude each other "
                        "(--bus-insecure turns every authentication off)\n");
        goto out;
    }
    if (args_has(&a, "bus-insecure"))
        u->ipc_auth = BUSOPT_IPC_CURVE; // and no keys: open
    u->batch_scheduler = args_str(&a, "batch-scheduler");
    if (u->batch_scheduler) {
        batchsched_t bs;
        if (batchsched_parse(u->batch_scheduler, &bs) != 0) {
            fprintf(stderr,
                    "rayfleetctl up: batch scheduler \"%s\": must be one of volcano, yunikorn, "
                    "kai-scheduler, scheduler-plugins\n",
                    u->batch_scheduler);
            goto out;
        }
    }
    const char *levels[] = {"debug", "info", "warn", "error"};
    bool level_ok = false;
    for (size_t i = 0; i < 4; i++)
        level_ok = level_ok || strcmp(u->log_level, levels[i]) == 0;
    if (!level_ok) {
        fprintf(stderr,
                "rayfleetctl up: --log-level: must be debug, info, warn or error (got '%s')\n",
                u->log_level);
        goto out;
    }
    if (kc) {
        if (access(kc, R_OK) != 0) {
            fprintf(stderr, "rayfleetctl up: --kubeconfig: cannot read '%s': %s\n", kc,
                    strerror(errno));
            goto out;
        }
        s_absolute(kc, u->kubeconfig);
    }
    u->watch_namespace = args_str(&a, "watch-namespace");
    const char *rfc = args_str(&a, "config");
    if (rfc) {
        if (access(rfc, R_OK) != 0) {
            fprintf(stderr, "rayfleetctl up: --config: cannot read '%s': %s\n", rfc,
                    strerror(errno));
            goto out;
        }
        s_absolute(rfc, u->config);
    }
    const char *krc = args_str(&a, "kuberay-config");
    if (krc) {
        if (access(krc, R_OK) != 0) {
            fprintf(stderr, "rayfleetctl up: --kuberay-config: cannot read '%s': %s\n", krc,
                    strerror(errno));
            goto out;
        }
        s_absolute(krc, u->kuberay_config);
    }
    if (args_str(&a, "bin-dir")) {
        if (!s_is_dir(args_str(&a, "bin-dir"))) {
            fprintf(stderr, "rayfleetctl up: --bin-dir: '%s' is not a directory\n",
                    args_str(&a, "bin-dir"));
            goto out;
        }
        s_absolute(args_str(&a, "bin-dir"), u->bin);
    } else {
        s_self_dir(u->bin, sizeof(u->bin));
    }
    char crds[PATH_MAX];
    if (s_find_crds("up", &a, crds) != 0)
        goto out;
    if (s_state_dir("up", &a, true, u->state) != 0)
        goto out;
    code = 1;
    s_fmt(u->frontend, sizeof(u->frontend), "ipc://%s/bus-in", u->state);
    s_fmt(u->backend, sizeof(u->backend), "ipc://%s/bus-out", u->state);
    if (strlen(u->backend) - 6 > LAUNCH_IPC_PATH_MAX) {
        fprintf(stderr,
                "rayfleetctl up: --state-dir: '%s' is too long for the bus's ipc:// sockets "
                "(at most %d bytes with '/bus-out'); choose a shorter path\n",
                u->state, LAUNCH_IPC_PATH_MAX);
        code = 2;
        goto out;
    }
    s_path(u->pidfile, u->state, LAUNCH_PIDFILE);
    if (s_check_not_running(u) != 0)
        goto out;
    if (u->nmembers == 0) {
        /* no federation now: status must not read an earlier run's */
        char fed[PATH_MAX];
        s_path(fed, u->state, LAUNCH_FEDERATION_FILE);
        unlink(fed);
    }
    char logs[PATH_MAX];
    s_path(logs, u->state, "logs");
    if (privfs_mkdirs(logs) != 0) {
        fprintf(stderr, "rayfleetctl up: cannot create %s: %s\n", logs, strerror(errno));
        goto out;
    }
    if (args_has(&a, "bus-insecure")) {
        fprintf(stderr, "rayfleetctl up: warning: --bus-insecure: the bus runs without CurveZMQ "
                        "and without checking peer uids; any local process that reaches its "
                        "sockets can read every event and publish forged ones\n");
    } else if (strcmp(u->ipc_auth, BUSOPT_IPC_CURVE) == 0) {
        const char *clients[S_NSERVICES];
        size_t nclients = 0;
        for (size_t i = 0; i < S_NSERVICES; i++)
            if (strcmp(s_services[i].name, "bus") != 0)
                clients[nclients++] = s_services[i].name;
        if (keys_ensure("up", u->state, clients, nclients, u->keys, sizeof(u->keys)) != 0)
            goto out;
    }
    bool detach = args_has(&a, "detach");
    u->take_over = args_has(&a, "take-over");
    if (kc) {
        /* STATE/kubeconfig names the cluster for status, audit and explain, as with --sim */
        char link[PATH_MAX];
        s_path(link, u->state, "kubeconfig");
        struct stat lst;
        if (lstat(link, &lst) == 0 && S_ISLNK(lst.st_mode))
            unlink(link);
        if (symlink(u->kubeconfig, link) != 0 && errno != EEXIST)
            fprintf(stderr, "rayfleetctl up: cannot link %s to %s: %s\n", link, u->kubeconfig,
                    strerror(errno));
    }
    if (detach) {
        int pcode = 1, dr = supervise_detach(&notify, &pcode);
        if (dr == 1) {
            code = pcode; /* the parent: the supervisor said how it went */
            goto out;
        }
        if (dr != 0) {
            fprintf(stderr, "rayfleetctl up: cannot fork the supervisor: %s\n", strerror(errno));
            goto out;
        }
    }
    {
        /* This process supervises (supervise.h): `down` signals it first; it stops the children. */
        proc_entry_t *self = &u->procs[u->nprocs++];
        s_fmt(self->name, sizeof(self->name), "rayfleetctl");
        self->pid = getpid();
        proc_start_time(self->pid, &self->start);
        u->with_self = true;
    }
    supervise_init(&u->sv, u->procs, &u->nprocs, u->state, u->pidfile, detach);
    (void)supervise_save(&u->sv); /* no state of an earlier set stays readable */
    if (sim) {
        u->sim = true;
        s_path(u->kubeconfig, u->state, "kubeconfig");
        s_reset_databases(u->state);
        if (u->nmembers == 0 && s_start_kubesim(u, NULL, nodes, u->urls[0]) != 0)
            goto fail;
        for (int i = 0; u->nmembers > 0 && i <= u->nmembers; i++) {
            char cn[64];
            s_cluster_name(i, cn, sizeof(cn));
            /* the management cluster has no nodes: nothing is to run there */
            if (s_start_kubesim(u, cn, i ? u->member_nodes[i - 1] : 0, u->urls[i]) != 0)
                goto fail;
        }
        if (u->nmembers > 0 && s_write_federation(u) != 0)
            goto fail;
    }
    int r = 0;
    for (int i = 0; r == 0 && i <= u->nmembers; i++) {
        char kc_i[PATH_MAX], cn[64];
        s_cluster_name(i, cn, sizeof(cn));
        if (u->nmembers)
            s_fmt(kc_i, sizeof(kc_i), "%s/kubeconfig-%s", u->state, cn);
        else
            s_fmt(kc_i, sizeof(kc_i), "%s", u->kubeconfig);
        buf_t err;
        buf_init(&err, KUBE_ERR_MAX);
        kube_t *k = kube_open(kc_i, &err);
        if (!k) {
            fprintf(stderr, "rayfleetctl up: kubeconfig %s: %s\n", kc_i, buf_str(&err));
            buf_free(&err);
            goto fail;
        }
        buf_free(&err);
        fprintf(stderr, "rayfleetctl: installing the CRDs of %s%s%s\n", crds,
                u->nmembers ? " into " : "", u->nmembers ? cn : "");
        r = s_install_crds(u, k, crds);
        kube_close(&k);
    }
    if (r != 0)
        goto fail;
    char missing[512] = "";
    size_t mlen = 0;
    for (size_t i = 0; i < S_NSERVICES; i++) {
        char summary[128];
        bool many = replicas > 1 && strcmp(s_services[i].name, "scheduler") == 0;
        bool per_member = u->nmembers > 0 && s_services[i].controller;
        if (per_member) {
            /* a controller per member; on the management cluster the scheduler alone, as the
             * placer (services/scheduler/placer.h) */
            for (int m = 1; m <= u->nmembers; m++) {
                char mn[64];
                s_cluster_name(m, mn, sizeof(mn));
                u->member = mn;
                r = s_start_service(u, &s_services[i], -1, summary, sizeof(summary));
                u->member = NULL;
                if (r != 0)
                    break;
            }
            if (r == 0 && strcmp(s_services[i].name, "scheduler") == 0) {
                u->placer = true;
                r = s_start_service(u, &s_services[i], -1, summary, sizeof(summary));
                u->placer = false;
            }
        } else {
            r = s_start_service(u, &s_services[i], many ? 0 : -1, summary, sizeof(summary));
        }
        for (int j = 1; many && r == 0 && j < (int)replicas; j++)
            r = s_start_service(u, &s_services[i], j, summary, sizeof(summary));
        if (r == ERR_NOTFOUND) {
            int w = snprintf(missing + mlen, sizeof(missing) - mlen, "%s%s", mlen ? ", " : "",
                             s_services[i].binary);
            if (w > 0 && (size_t)w < sizeof(missing) - mlen)
                mlen += (size_t)w;
            continue;
        }
        if (r != 0)
            goto fail;
    }
    if (mlen)
        fprintf(stderr, "rayfleetctl: not built, not started: %s (looked in %s)\n", missing,
                u->bin);
    if (u->nmembers > 0)
        fprintf(stderr,
                "rayfleetctl: %d member clusters (contexts member-1..member-%d, %s/%s); %s\n",
                u->nmembers, u->nmembers, u->state, LAUNCH_FEDERATION_FILE, LAUNCH_PLACED);
    s_save(u);
    if (detach) {
        char slog[PATH_MAX];
        s_fmt(slog, sizeof(slog), "%s/logs/%s", u->state, SUPERVISE_LOG);
        fprintf(stderr,
                "rayfleetctl: ready; supervised by pid %d (restarts what dies; log %s); "
                "'rayfleetctl down --state-dir %s' stops it. The cluster's kubeconfig:\n",
                (int)getpid(), slog, u->state);
        printf("%s\n", u->kubeconfig);
        supervise_detached_ready(&notify, 0, slog);
    } else {
        fprintf(stderr,
                "rayfleetctl: ready; kubeconfig %s; a service that dies is restarted; Ctrl-C "
                "stops everything\n",
                u->kubeconfig);
    }
    int sr = supervise_run(&u->sv, stderr);
    if (sr > 0) {
        fprintf(stderr, "rayfleetctl: %s; stopping\n", strsignal(sr));
        code = 0;
    } else {
        fprintf(stderr, "rayfleetctl: stopping everything\n");
        code = 1;
    }
    s_stop_everything(u);
    supervise_stopped(&u->sv, sr > 0 ? "stopped by a signal (rayfleetctl down, Ctrl-C)" : NULL);
    goto out;
fail:
    if (u->signal)
        fprintf(stderr, "rayfleetctl up: %s while starting; stopping\n", strsignal(u->signal));
    s_stop_everything(u);
    supervise_stopped(&u->sv, "up failed while starting");
    code = u->signal ? 0 : u->refused ? 2 : 1;
    if (!u->signal)
        fprintf(stderr,
                "rayfleetctl up: failed; everything started was stopped (logs in %s/logs)\n",
                u->state);
out:
    supervise_detached_ready(&notify, code, NULL);
    supervise_free(&u->sv);
    free(u);
    return code;
}

int launch_down(int argc, char **argv)
{
    args_t a;
    int pr = args_parse("down", "[--state-dir DIR] [--timeout DURATION]",
                        "Stops what 'rayfleetctl up' started in the state directory (SIGTERM, "
                        "then SIGKILL after the timeout) and removes its pid file.\n"
                        "Running it when nothing runs is harmless.",
                        s_down_opts, 0, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    int64_t timeout = 0;
    if (args_duration(&a, "down", "timeout", 0, 3600000, LAUNCH_STOP_TIMEOUT_MS, &timeout) != 0)
        return 2;
    char state[PATH_MAX], pidfile[PATH_MAX];
    if (s_state_dir("down", &a, false, state) != 0) {
        printf("rayfleetctl: nothing is running (no state directory %s)\n", state);
        return 0;
    }
    s_path(pidfile, state, LAUNCH_PIDFILE);
    proc_entry_t e[PROC_MAX];
    size_t n = 0;
    int r = proc_pidfile_read(pidfile, e, PROC_MAX, &n);
    if (r == ERR_NOTFOUND) {
        printf("rayfleetctl: nothing is running in %s (no pid file)\n", state);
        return 0;
    }
    if (r != 0) {
        fprintf(stderr, "rayfleetctl down: cannot read %s (%s); stop the processes by hand\n",
                pidfile, err_str(r));
        return 1;
    }
    size_t alive = 0;
    bool was_alive[PROC_MAX];
    for (size_t i = 0; i < n; i++)
        alive += was_alive[i] = proc_alive(&e[i]);
    if (alive == 0) {
        unlink(pidfile);
        printf("rayfleetctl: nothing is running in %s (removed a stale pid file)\n", state);
        return 0;
    }
    /* The supervisor (the `up` process, foreground or detached) stops its own children and
     * restarts nothing once signalled: signal it first, with time for all of them. */
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].name, "rayfleetctl") != 0)
            continue;
        proc_stop_all(&e[i], 1, timeout * (int64_t)n, stdout);
        /* Re-read: a restart may have changed a pid since the first read. */
        proc_entry_t now[PROC_MAX];
        size_t m = 0;
        if (proc_pidfile_read(pidfile, now, PROC_MAX, &m) == 0 && m == n)
            memcpy(e, now, n * sizeof(e[0]));
        for (size_t j = 0; j < n; j++)
            if (j != i && was_alive[j] && !proc_alive(&e[j]))
                printf("rayfleetctl: stopped %s (pid %d) through the supervisor\n", e[j].name,
                       (int)e[j].pid);
    }
    int killed = proc_stop_all(e, n, timeout, stdout);
    unlink(pidfile);
    printf("rayfleetctl: stopped everything in %s%s\n", state,
           killed ? " (some processes needed SIGKILL)" : "");
    return 0;
}

/* ---- crds and probe ---------------------------------------------------------------------- */

static const args_opt_t s_crds_opts[] = {
    {"kubeconfig", "FILE", "kubeconfig of the cluster (required)."},
    {"crds", "DIR",
     "CRD manifests to install (default: deploy/crds of the source tree, found from the binary)."},
    {"timeout", "DURATION",
     "How long each request and each Established wait may take (default "
     "60s)."},
    {NULL, NULL, NULL},
};

int launch_crds(int argc, char **argv)
{
    args_t a;
    int pr = args_parse("crds", "--kubeconfig FILE [--crds DIR] [--timeout DURATION]",
                        "Installs the ray.io CRDs into the cluster when absent (as 'up' does) "
                        "and waits until each is Established. Idempotent.",
                        s_crds_opts, 0, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    const char *kc = args_str(&a, "kubeconfig");
    if (!kc) {
        fprintf(stderr, "rayfleetctl crds: --kubeconfig: required (the cluster to install into)\n");
        return 2;
    }
    s_up_t *u = calloc(1, sizeof(*u));
    if (!u)
        return 1;
    u->cmd = "crds";
    int code = 2;
    char crds[PATH_MAX];
    if (args_duration(&a, "crds", "timeout", 100, 3600000, LAUNCH_DEFAULT_TIMEOUT_MS,
                      &u->timeout_ms) != 0 ||
        s_find_crds("crds", &a, crds) != 0)
        goto out;
    code = 1;
    buf_t err;
    buf_init(&err, KUBE_ERR_MAX);
    kube_t *k = kube_open(kc, &err);
    if (!k) {
        fprintf(stderr, "rayfleetctl crds: --kubeconfig %s: %s\n", kc, buf_str(&err));
        buf_free(&err);
        goto out;
    }
    buf_free(&err);
    if (s_install_crds(u, k, crds) == 0)
        code = 0;
    kube_close(&k);
out:
    free(u);
    return code;
}

static const args_opt_t s_probe_opts[] = {
    {"quiet", NULL, "Print nothing; only the exit code tells."},
    {NULL, NULL, NULL},
};

int launch_probe(int argc, char **argv)
{
    args_t a;
    int pr = args_parse("probe", "URL [--quiet]",
                        "Exits 0 when URL answers: http://HOST:PORT/PATH with status 200 (e.g. a "
                        "service's /readyz), tcp://HOST:PORT when it accepts a connection; 1 "
                        "otherwise. For container health checks (the image has no curl).",
                        s_probe_opts, 1, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    bool quiet = args_has(&a, "quiet");
    const char *url = a.npositional == 1 ? a.positional[0] : NULL;
    bool http = url && strncmp(url, "http://", 7) == 0;
    bool tcp = url && strncmp(url, "tcp://", 6) == 0;
    char host[256] = "", path[512] = "/";
    int port = 0;
    if (http || tcp) {
        const char *h = url + (http ? 7 : 6);
        const char *colon = strrchr(h, ':');
        const char *slash = strchr(h, '/');
        if (colon && (!slash || colon < slash) && (size_t)(colon - h) < sizeof(host)) {
            memcpy(host, h, (size_t)(colon - h));
            host[colon - h] = '\0';
            char *end = NULL;
            long p = strtol(colon + 1, &end, 10);
            if (end != colon + 1 && (*end == '\0' || *end == '/') && p > 0 && p <= 65535)
                port = (int)p;
            if (*end == '/' && tcp)
                port = 0;
            if (*end == '/')
                s_fmt(path, sizeof(path), "%s", end);
        }
    }
    if (!host[0] || port == 0) {
        fprintf(stderr,
                "rayfleetctl probe: URL: must be http://HOST:PORT/PATH or tcp://HOST:PORT "
                "(got '%s')\n",
                url ? url : "");
        return 2;
    }
    if (tcp) {
        int fd = s_connect(host, port);
        if (fd >= 0)
            close(fd);
        if (!quiet)
            printf("%s: %s\n", url, fd >= 0 ? "connected" : "no connection");
        return fd >= 0 ? 0 : 1;
    }
    int status = s_http_status_at(host, port, path);
    if (!quiet) {
        if (status < 0)
            printf("%s: no answer\n", url);
        else
            printf("%s: %d\n", url, status);
    }
    return status == 200 ? 0 : 1;
}
