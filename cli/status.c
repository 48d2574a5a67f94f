/*
 * status: see status.h.
 */
#include "status.h"
#include "table.h"

#include "args.h"
#include "buf.h"
#include "err.h"
#include "json.h"
#include "kube.h"
#include "kubeconfig.h"
#include "launch.h"
#include "leader.h"
#include "place.h"
#include "proc.h"
#include "rftime.h"
#include "store.h"
#include "supervise.h"

#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* kubectl's age format: 45s, 12m, 5h, 3d. */
static void s_age(const char *ts, char *out, size_t size)
{
    int64_t then = 0;
    if (!ts || rftime_parse_sec(ts, &then) != 0) {
        snprintf(out, size, "-");
        return;
    }
    int64_t d = (int64_t)time(NULL) - then;
    if (d < 0)
        d = 0;
    if (d < 120)
        snprintf(out, size, "%" PRId64 "s", d);
    else if (d < 7200)
        snprintf(out, size, "%" PRId64 "m", d / 60);
    else if (d < 172800)
        snprintf(out, size, "%" PRId64 "h", d / 3600);
    else
        snprintf(out, size, "%" PRId64 "d", d / 86400);
}

static void s_int(const json_t *o, const char *path, char *out, size_t size)
{
    json_t *v = jx_get(o, path);
    if (json_is_integer(v))
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_string(v))
        snprintf(out, size, "%s", json_string_value(v));
    else
        snprintf(out, size, "-");
}

/* The status of the condition `type`, or "-". */
static const char *s_condition(const json_t *o, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(o, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "type", ""), type) == 0)
            return jx_str(c, "status", "-");
    }
    return "-";
}

/* Lists /apis/ray.io/v1/<resource> into `items`; prints why not on failure. */
static int s_list(kube_t *k, const char *resource, json_t **list)
{
    k8s_res_t res = {.group = "ray.io", .version = "v1", .resource = resource};
    buf_t err;
    buf_init(&err, KUBE_ERR_MAX);
    int r = kube_call(k, KUBE_LIST, &res, NULL, 0, list, &err);
    if (r == ERR_NOTFOUND)
        printf("(%s: the ray.io CRDs are not installed in this cluster)\n", resource);
    else if (r != 0)
        fprintf(stderr, "rayfleetctl status: cannot list %s at %s: %s\n", resource, kube_server(k),
                buf_str(&err));
    buf_free(&err);
    return r;
}

/* The state column of object o (its status at `path`); on a federation's management cluster
 * (`mgmt`), where the placer puts each object on a member (launch.h, LAUNCH_PLACED), with the
 * member it runs on, or "waiting for placement". */
static const char *s_state(const json_t *o, const char *path, bool mgmt, char *out, size_t n)
{
    const char *st = jx_str(o, path, "-");
    if (!mgmt)
        return st;
    json_t *on = jx_getv(o, "metadata", "annotations", FLEET_ANN_PLACED_ON, NULL);
    if (json_is_string(on))
        snprintf(out, n, "%s (on %s)", st, json_string_value(on));
    else
        snprintf(out, n, "waiting for placement");
    return out;
}

/* `unplaced`: the cluster is a federation's management cluster (STATE/federation.yaml). */
static int s_clusters(kube_t *k, bool unplaced)
{
    json_t *list = NULL;
    int r = s_list(k, "rayclusters", &list);
    if (r != 0)
        return r == ERR_NOTFOUND ? 0 : r;
    table_t t = {.ncols = 12,
                 .header = {"NAMESPACE", "NAME", "STATE", "DESIRED", "READY", "AVAILABLE", "CPUS",
                            "MEMORY", "GPUS", "HEAD-POD-IP", "HEAD-READY", "AGE"}};
    size_t i;
    json_t *o;
    json_array_foreach(jx_get(list, "items"), i, o)
    {
        char desired[32], ready[32], avail[32], age[32], st[128];
        s_int(o, "status.desiredWorkerReplicas", desired, sizeof(desired));
        s_int(o, "status.readyWorkerReplicas", ready, sizeof(ready));
        s_int(o, "status.availableWorkerReplicas", avail, sizeof(avail));
        s_age(jx_str(o, "metadata.creationTimestamp", NULL), age, sizeof(age));
        const char *row[] = {jx_str(o, "metadata.namespace", "-"),
                             jx_str(o, "metadata.name", "-"),
                             s_state(o, "status.state", unplaced, st, sizeof(st)),
                             desired,
                             ready,
                             avail,
                             jx_str(o, "status.desiredCPU", "-"),
                             jx_str(o, "status.desiredMemory", "-"),
                             jx_str(o, "status.desiredGPU", "-"),
                             jx_str(o, "status.head.podIP", "-"),
                             s_condition(o, "HeadPodReady"),
                             age};
        if ((r = table_row(&t, row)) != 0)
            break;
    }
    printf("RayClusters (%zu)\n", t.nrows);
    if (t.nrows)
        table_print(&t, stdout);
    table_free(&t);
    json_decref(list);
    return r;
}

static int s_jobs(kube_t *k, bool unplaced)
{
    json_t *list = NULL;
    int r = s_list(k, "rayjobs", &list);
    if (r != 0)
        return r == ERR_NOTFOUND ? 0 : r;
    table_t t = {.ncols = 9,
                 .header = {"NAMESPACE", "NAME", "JOB-STATUS", "DEPLOYMENT", "CLUSTER", "JOB-ID",
                            "START", "END", "AGE"}};
    size_t i;
    json_t *o;
    json_array_foreach(jx_get(list, "items"), i, o)
    {
        char age[32], st[128];
        s_age(jx_str(o, "metadata.creationTimestamp", NULL), age, sizeof(age));
        const char *row[] = {jx_str(o, "metadata.namespace", "-"),
                             jx_str(o, "metadata.name", "-"),
                             jx_str(o, "status.jobStatus", "-"),
                             s_state(o, "status.jobDeploymentStatus", unplaced, st, sizeof(st)),
                             jx_str(o, "status.rayClusterName", "-"),
                             jx_str(o, "status.jobId", "-"),
                             jx_str(o, "status.startTime", "-"),
                             jx_str(o, "status.endTime", "-"),
                             age};
        if ((r = table_row(&t, row)) != 0)
            break;
    }
    printf("\nRayJobs (%zu)\n", t.nrows);
    if (t.nrows)
        table_print(&t, stdout);
    table_free(&t);
    json_decref(list);
    return r;
}

static int s_services(kube_t *k, bool unplaced)
{
    json_t *list = NULL;
    int r = s_list(k, "rayservices", &list);
    if (r != 0)
        return r == ERR_NOTFOUND ? 0 : r;
    /* the CRD's printer columns (service status, num serve endpoints), then the conditions and
     * the clusters */
    table_t t = {.ncols = 9,
                 .header = {"NAMESPACE", "NAME", "SERVICE-STATUS", "SERVE-ENDPOINTS", "READY",
                            "UPGRADING", "ACTIVE-CLUSTER", "PENDING-CLUSTER", "AGE"}};
    size_t i;
    json_t *o;
    json_array_foreach(jx_get(list, "items"), i, o)
    {
        char age[32], endpoints[32], st[128];
        s_age(jx_str(o, "metadata.creationTimestamp", NULL), age, sizeof(age));
        s_int(o, "status.numServeEndpoints", endpoints, sizeof(endpoints));
        const char *row[] = {jx_str(o, "metadata.namespace", "-"),
                             jx_str(o, "metadata.name", "-"),
                             s_state(o, "status.serviceStatus", unplaced, st, sizeof(st)),
                             endpoints,
                             s_condition(o, "Ready"),
                             s_condition(o, "UpgradeInProgress"),
                             jx_str(o, "status.activeServiceStatus.rayClusterName", "-"),
                             jx_str(o, "status.pendingServiceStatus.rayClusterName", "-"),
                             age};
        if ((r = table_row(&t, row)) != 0)
            break;
    }
    printf("\nRayServices (%zu)\n", t.nrows);
    if (t.nrows)
        table_print(&t, stdout);
    table_free(&t);
    json_decref(list);
    return r;
}

/* The shards each live holder has in `leases` (STATE/leases.db) into a JSON object holder ->
 * count. Returns 0 or an err_t (the file is missing or unreadable). */
static int s_lease_counts(const char *leases, json_t *counts)
{
    int err = 0;
    store_query_t *q = store_query_open(leases, NULL, 0, &err);
    if (!q)
        return err;
    sqlite3_stmt *st = NULL;
    buf_t why;
    buf_init(&why, STORE_QUERY_WHY_MAX);
    int rc = store_query_prepare(
        q,
        "SELECT holder, count(*) FROM leases WHERE name LIKE '" STATUS_SHARD_LEASES
        "' AND holder <> '' AND expires_ms > ?1 GROUP BY holder",
        &st, &why);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, store_wall_ms());
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *h = (const char *)sqlite3_column_text(st, 0);
            if (h)
                json_object_set_new(counts, h, json_integer(sqlite3_column_int64(st, 1)));
        }
    }
    sqlite3_finalize(st);
    buf_free(&why);
    store_query_close(&q);
    return rc;
}

/* The scheduler replicas of the state dir (processes "scheduler-<i>" in its pid file) with the
 * shards each holds; prints nothing when there is at most one. Returns 0 or 1. */
static int s_replicas(const char *dir)
{
    char pidfile[PATH_MAX], leases[PATH_MAX];
    snprintf(pidfile, sizeof(pidfile), "%s/%s", dir, LAUNCH_PIDFILE);
    snprintf(leases, sizeof(leases), "%s/%s", dir, LAUNCH_LEASES_DB);
    proc_entry_t e[PROC_MAX];
    size_t n = 0, nrep = 0;
    if (proc_pidfile_read(pidfile, e, PROC_MAX, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        nrep += strncmp(e[i].name, "scheduler-", 10) == 0;
    if (nrep < 2)
        return 0;
    json_t *counts = json_object();
    if (!counts)
        return 1;
    int lr = s_lease_counts(leases, counts);
    table_t t = {.ncols = 5, .header = {"REPLICA", "PID", "PROCESS", "SHARDS", "AUDIT-DB"}};
    int64_t total = 0;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        if (strncmp(e[i].name, "scheduler-", 10) != 0)
            continue;
        char pid[32], shards[32], db[PROC_NAME_MAX + 8];
        snprintf(pid, sizeof(pid), "%d", (int)e[i].pid);
        json_int_t c = json_integer_value(json_object_get(counts, e[i].name));
        total += c;
        snprintf(shards, sizeof(shards), "%" JSON_INTEGER_FORMAT, c);
        snprintf(db, sizeof(db), "%.*s.db", PROC_NAME_MAX - 1, e[i].name);
        const char *row[] = {e[i].name, pid, proc_alive(&e[i]) ? "running" : "not running",
                             lr == 0 ? shards : "-", db};
        r = table_row(&t, row);
    }
    printf("\nScheduler replicas (%zu", nrep);
    if (lr == 0)
        printf(", %" PRId64 " shards held, leases in %s)\n", total, LAUNCH_LEASES_DB);
    else
        printf("; no shard leases readable in %s: %s)\n", leases, err_str(lr));
    table_print(&t, stdout);
    table_free(&t);
    json_decref(counts);
    return r ? 1 : 0;
}

/* The STATE column of one supervised process: running / restarting in Ns / crash-looping
 * (restart in Ns) / stopped, and "(no supervisor)" when nothing will restart it. */
static void s_proc_state(const json_t *o, bool supervisor, int64_t now, char *out, size_t size)
{
    const char *st = jx_str(o, "state", "?");
    proc_entry_t e = {.pid = (pid_t)jx_int(o, "pid", 0),
                      .start = (unsigned long long)jx_int(o, "start", 0)};
    if (strcmp(st, "running") == 0) {
        if (e.pid > 0 && proc_paused(&e))
            snprintf(out, size, "paused"); /* SIGSTOP: rayfleetctl member stop */
        else if (e.pid > 0 && proc_alive(&e))
            snprintf(out, size, "running");
        else
            snprintf(out, size, "dead%s", supervisor ? " (restart due)" : " (no supervisor)");
        return;
    }
    if (strcmp(st, "restarting") == 0 || strcmp(st, "crash-looping") == 0) {
        int64_t left = (jx_int(o, "next_restart_ms", 0) - now + 999) / 1000;
        if (left < 0)
            left = 0;
        if (!supervisor)
            snprintf(out, size, "%s, never restarted (no supervisor)", st);
        else if (strcmp(st, "restarting") == 0)
            snprintf(out, size, "restarting in %" PRId64 "s", left);
        else
            snprintf(out, size, "crash-looping (restart in %" PRId64 "s)", left);
        return;
    }
    snprintf(out, size, "%s", st);
}

/* The processes `up` supervises (STATE/supervise.json, supervise.h): pid, state, restarts, last
 * exit and readiness (their /readyz, asked now). Prints nothing when the file is absent. Returns
 * 0, or 1 when it is unreadable. */
static int s_supervised(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, SUPERVISE_FILE);
    json_t *j = NULL;
    int lr = supervise_load(path, &j);
    if (lr == ERR_NOTFOUND)
        return 0;
    if (lr != 0) {
        printf("\nServices: cannot read %s: %s\n", path, err_str(lr));
        return 1;
    }
    proc_entry_t sup = {.pid = (pid_t)jx_int(j, "supervisor.pid", 0),
                        .start = (unsigned long long)jx_int(j, "supervisor.start", 0)};
    bool supervised = sup.pid > 0 && proc_alive(&sup);
    const char *ended = jx_str(j, "ended", "");
    if (supervised)
        printf("\nServices (supervised by rayfleetctl pid %d, %s; backoff %" JSON_INTEGER_FORMAT
               "s doubling to %" JSON_INTEGER_FORMAT "s)\n",
               (int)sup.pid,
               json_is_true(jx_get(j, "supervisor.detached")) ? "detached" : "foreground",
               jx_int(j, "backoff.min_ms", 0) / 1000, jx_int(j, "backoff.max_ms", 0) / 1000);
    else
        printf("\nServices (no supervisor runs: nothing is restarted%s%s)\n",
               ended[0] ? "; it ended: " : "", ended);
    table_t t = {.ncols = 6,
                 .header = {"SERVICE", "PID", "STATE", "RESTARTS", "LAST-EXIT", "HEALTH"}};
    int64_t now = rftime_now_ms();
    int r = 0;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "services"), i, o)
    {
        char pid[32], state[96], restarts[32], last[160], health[64] = "-";
        snprintf(pid, sizeof(pid), "%" JSON_INTEGER_FORMAT, jx_int(o, "pid", 0));
        s_proc_state(o, supervised, now, state, sizeof(state));
        snprintf(restarts, sizeof(restarts), "%" JSON_INTEGER_FORMAT, jx_int(o, "restarts", 0));
        const char *how = jx_str(o, "last_exit", "");
        char ago[32];
        int64_t at = jx_int(o, "last_exit_ms", 0);
        snprintf(ago, sizeof(ago), "%" PRId64 "s", at > 0 && now > at ? (now - at) / 1000 : 0);
        if (how[0])
            snprintf(last, sizeof(last), "%s, %s ago", how, ago);
        else
            snprintf(last, sizeof(last), "-");
        long port = (long)jx_int(o, "health_port", 0);
        if (strcmp(state, "running") == 0 && port > 0 && port <= 65535) {
            int code = launch_http_status((int)port, "/readyz");
            if (code == 200)
                snprintf(health, sizeof(health), "ready (/readyz on %ld)", port);
            else if (code > 0)
                snprintf(health, sizeof(health), "not ready (/readyz %d on %ld)", code, port);
            else
                snprintf(health, sizeof(health), "no answer (/readyz on %ld)", port);
        }
        const char *row[] = {jx_str(o, "name", "?"), pid, state, restarts, last, health};
        if ((r = table_row(&t, row)) != 0)
            break;
    }
    if (supervised && ended[0])
        printf("(supervision ended: %s)\n", ended);
    table_print(&t, stdout);
    table_free(&t);
    json_decref(j);
    return r ? 1 : 0;
}

/* Whether the cell of `dir` leads: reads the leader Lease (up's defaults: LEADER_DEFAULT_NAME in
 * LEADER_DEFAULT_NAMESPACE) and compares its holder with the cell's identity (leader.h). Prints
 * one line; returns 0, or 1 when the Lease cannot be read for another reason than its absence. */
static int s_leader(kube_t *k, const char *dir)
{
    char abs[PATH_MAX], host[256] = "", id[LEASE_NAME_MAX + 1] = "";
    if (!realpath(dir, abs) || gethostname(host, sizeof(host) - 1) != 0 ||
        leader_default_identity(host, abs, id, sizeof(id)) != 0)
        id[0] = '\0';
    k8s_res_t res = {.group = "coordination.k8s.io",
                     .version = "v1",
                     .resource = "leases",
                     .namespace_ = LEADER_DEFAULT_NAMESPACE,
                     .name = LEADER_DEFAULT_NAME};
    json_t *lease = NULL;
    buf_t err;
    buf_init(&err, KUBE_ERR_MAX);
    int r = kube_call(k, KUBE_GET, &res, NULL, 0, &lease, &err);
    if (r == ERR_NOTFOUND) {
        printf("\nLeader: nobody yet (no Lease %s/%s); this cell (%s) waits for it\n",
               LEADER_DEFAULT_NAMESPACE, LEADER_DEFAULT_NAME, id[0] ? id : "?");
        buf_free(&err);
        return 0;
    }
    if (r != 0) {
        printf("\nLeader: cannot read Lease %s/%s: %s\n", LEADER_DEFAULT_NAMESPACE,
               LEADER_DEFAULT_NAME, buf_str(&err));
        buf_free(&err);
        return 1;
    }
    buf_free(&err);
    const char *holder = jx_str(lease, "spec.holderIdentity", "");
    int64_t exp = lease_k8s_expiry(lease), now = rftime_now_ms();
    char age[32];
    s_age(jx_str(lease, "spec.renewTime", NULL), age, sizeof(age));
    if (!holder[0] || exp <= now)
        printf("\nLeader: nobody (Lease %s/%s %s, last renewed %s ago); this cell (%s) takes it "
               "at its next try\n",
               LEADER_DEFAULT_NAMESPACE, LEADER_DEFAULT_NAME, holder[0] ? "expired" : "released",
               age, id[0] ? id : "?");
    else if (id[0] && strcmp(holder, id) == 0)
        printf("\nLeader: this cell leads (identity %s, Lease %s/%s renewed %s ago)\n", holder,
               LEADER_DEFAULT_NAMESPACE, LEADER_DEFAULT_NAME, age);
    else
        printf("\nLeader: this cell waits (standby, identity %s); %s leads (Lease %s/%s renewed "
               "%s ago)\n",
               id[0] ? id : "?", holder, LEADER_DEFAULT_NAMESPACE, LEADER_DEFAULT_NAME, age);
    json_decref(lease);
    return 0;
}

static const args_opt_t s_status_opts[] = {
    {"state-dir", "DIR",
     "State directory of 'rayfleetctl up'; its kubeconfig is used "
     "(default " LAUNCH_DEFAULT_STATE_DIR ")."},
    {"kubeconfig", "FILE", "Read this cluster instead of the state directory's."},
    {"context", "NAME",
     "The kubeconfig context to read (default its current one); with 'up --members', "
     "member-<i> shows that member's objects and management the management cluster's."},
    {NULL, NULL, NULL},
};

int status_main(int argc, char **argv)
{
    args_t a;
    int pr = args_parse("status", "[--state-dir DIR | --kubeconfig FILE] [--context NAME]",
                        "Shows the Ray objects of the cluster (RayClusters, RayJobs, RayServices) "
                        "with their state, replica counts, resources and head IP; with several "
                        "scheduler replicas (up --scheduler-replicas N), each replica and the "
                        "shards it holds (STATE/leases.db); with --state-dir, whether the cell "
                        "leads or waits and who leads (the Lease " LEADER_DEFAULT_NAMESPACE
                        "/" LEADER_DEFAULT_NAME
                        "); and the processes 'up' supervises: pid, state (running, "
                        "restarting in Ns, crash-looping, stopped), restarts, last exit and "
                        "/readyz (STATE/" SUPERVISE_FILE ", the machine-readable form).",
                        s_status_opts, 0, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    if (args_has(&a, "state-dir") && args_has(&a, "kubeconfig")) {
        fprintf(stderr, "rayfleetctl status: give --state-dir or --kubeconfig, not both\n");
        return 2;
    }
    char kc[PATH_MAX];
    const char *dir = NULL;
    if (args_has(&a, "kubeconfig")) {
        snprintf(kc, sizeof(kc), "%s", args_str(&a, "kubeconfig"));
    } else {
        dir = args_str(&a, "state-dir") ? args_str(&a, "state-dir") : LAUNCH_DEFAULT_STATE_DIR;
        snprintf(kc, sizeof(kc), "%s/kubeconfig", dir);
    }
    if (access(kc, R_OK) != 0) {
        fprintf(stderr,
                "rayfleetctl status: no kubeconfig at %s (is 'rayfleetctl up' running? or "
                "give --kubeconfig FILE)\n",
                kc);
        return 1;
    }
    buf_t err;
    buf_init(&err, KUBE_ERR_MAX);
    const char *ctx = args_str(&a, "context");
    kube_t *k = kube_open_context(kc, ctx, &err);
    if (!k) {
        fprintf(stderr, "rayfleetctl status: kubeconfig %s: %s\n", kc, buf_str(&err));
        buf_free(&err);
        return 1;
    }
    buf_free(&err);
    char fed[PATH_MAX];
    snprintf(fed, sizeof(fed), "%s/%s", dir ? dir : ".", LAUNCH_FEDERATION_FILE);
    bool federation = dir && access(fed, R_OK) == 0;
    /* a federation's management cluster is the kubeconfig's current context (up writes it so) */
    bool unplaced = federation && (!ctx || strcmp(ctx, "management") == 0);
    if (unplaced)
        printf("Federation (%s): this is the management cluster; %s. Members: 'rayfleetctl "
               "members', their objects: 'rayfleetctl status --context member-<i>'.\n\n",
               fed, LAUNCH_PLACED);
    else if (federation)
        printf("Federation (%s): member cluster %s.\n\n", fed, ctx);
    int r = s_clusters(k, unplaced);
    if (r == 0)
        r = s_jobs(k, unplaced);
    if (r == 0)
        r = s_services(k, unplaced);
    if (r == 0 && dir && !unplaced) /* members: each its own leader Lease, in its own cluster */
        r = s_leader(k, dir);
    kube_close(&k);
    if (dir && s_replicas(dir) != 0)
        r = r ? r : ERR_NOMEM;
    if (dir && s_supervised(dir) != 0)
        r = r ? r : ERR_PARSE;
    return r == 0 ? 0 : 1;
}
