/*
 * members: see members.h.
 */
#include "members.h"
#include "table.h"

#include "fedcfg.h"

#include "args.h"
#include "buf.h"
#include "err.h"
#include "json.h"
#include "launch.h"
#include "member.h"
#include "proc.h"
#include "rcstatus.h"
#include "rftime.h"
#include "store.h"
#include "watcher.h"

#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ERR_MAX 2048 /* longest error text kept */

/* One member (or the management cluster) as the table shows it. */
typedef struct {
    fleet_member_t m; /* capacity (fleet/member.c) */
    size_t rayclusters; /* RayCluster rows */
    bool seen; /* a ClusterHealth row exists */
    int64_t last_ok_ms; /* its lastOkMs */
    int64_t checked_ms; /* its checkedMs */
    char last_error[256]; /* its lastError */
} s_row_t;

static const char *s_state(const args_t *a)
{
    return args_str(a, "state-dir") ? args_str(a, "state-dir") : LAUNCH_DEFAULT_STATE_DIR;
}

/* STATE/federation.yaml read and checked by fleet/fedcfg into *out (fedcfg_free() it). Returns
 * 0, or -1 after printing why (the error names the file, line, path and rule). */
static int s_federation(const char *cmd, const char *state, fedcfg_t *out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", state, LAUNCH_FEDERATION_FILE);
    buf_t err;
    buf_init(&err, S_ERR_MAX);
    int rc = fedcfg_load(path, out, &err);
    if (rc == ERR_NOTFOUND || rc == ERR_IO)
        fprintf(stderr,
                "rayfleetctl %s: no %s (run 'rayfleetctl up --sim --members N --state-dir %s' "
                "first)\n",
                cmd, path, state);
    else if (rc != 0)
        fprintf(stderr, "rayfleetctl %s: %s\n", cmd, buf_str(&err));
    buf_free(&err);
    return rc == 0 ? 0 : -1;
}

/* Index in rows[0..n) of the cluster called `name`, or -1. */
static int s_find(const s_row_t *rows, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(rows[i].m.name, name) == 0)
            return (int)i;
    return -1;
}

/* Fills rows from observed.db. Returns 0 or an err_t (printed). */
static int s_read_rows(const char *state, s_row_t *rows, size_t n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/observed.db", state);
    int err = 0;
    store_query_t *q = store_query_open(path, NULL, 0, &err);
    if (!q) {
        fprintf(stderr, "rayfleetctl members: cannot read %s: %s (is the watcher running?)\n", path,
                err_str(err));
        return err ? err : ERR_IO;
    }
    sqlite3_stmt *st = NULL;
    buf_t why;
    buf_init(&why, STORE_QUERY_WHY_MAX);
    /* nodes before their pods: ClusterHealth < Node < PodUsage < RayCluster */
    int rc = store_query_prepare(q,
                                 "SELECT cluster, kind, json FROM observed_objects WHERE kind IN "
                                 "('" WATCHER_HEALTH_KIND "', 'Node', '" WATCHER_PODUSE_KIND
                                 "', 'RayCluster') ORDER BY kind",
                                 &st, &why);
    if (rc != 0)
        fprintf(stderr, "rayfleetctl members: %s: %s\n", path, buf_str(&why));
    buf_t err_b;
    buf_init(&err_b, S_ERR_MAX);
    size_t bad = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        int i = s_find(rows, n, (const char *)sqlite3_column_text(st, 0));
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        const char *js = (const char *)sqlite3_column_text(st, 2);
        if (i < 0 || !kind)
            continue;
        s_row_t *r = &rows[i];
        if (strcmp(kind, "RayCluster") == 0) {
            r->rayclusters++;
            continue;
        }
        json_t *o = NULL;
        buf_reset(&err_b);
        if (!js || jx_parse(js, strlen(js), "row", &o, &err_b) != 0) {
            bad++;
            continue;
        }
        int ar = 0;
        if (strcmp(kind, "Node") == 0) {
            ar = fleet_member_add_node(&r->m, o, &err_b);
        } else if (strcmp(kind, WATCHER_PODUSE_KIND) == 0) {
            ar = fleet_member_add_pod(&r->m, o, &err_b);
        } else {
            r->seen = true;
            r->last_ok_ms = jx_int(o, "lastOkMs", 0);
            r->checked_ms = jx_int(o, "checkedMs", 0);
            snprintf(r->last_error, sizeof(r->last_error), "%s", jx_str(o, "lastError", ""));
        }
        if (ar != 0 && bad++ == 0)
            fprintf(stderr, "rayfleetctl members: %s: %s (row skipped)\n", r->m.name,
                    buf_str(&err_b));
        json_decref(o);
    }
    sqlite3_finalize(st);
    buf_free(&why);
    buf_free(&err_b);
    store_query_close(&q);
    return rc;
}

/* "used/alloc" of dimension d, in the dimension's units (CPU cores, memory binary units). */
static void s_pair(const fleet_member_t *m, int d, char *out, size_t size)
{
    char u[32], a[32];
    if (d == FLEET_RES_CPU) {
        rcstatus_format_quantity(m->used.v[d], false, u, sizeof(u));
        rcstatus_format_quantity(m->alloc.v[d], false, a, sizeof(a));
    } else if (d == FLEET_RES_MEMORY) {
        /* binary units when whole mebibytes, else decimal ("4G", not "3906250Ki") */
        rcstatus_format_quantity(m->used.v[d] * 1000, m->used.v[d] % (1 << 20) == 0, u, sizeof(u));
        rcstatus_format_quantity(m->alloc.v[d] * 1000, m->alloc.v[d] % (1 << 20) == 0, a,
                                 sizeof(a));
    } else {
        snprintf(u, sizeof(u), "%" PRId64, m->used.v[d]);
        snprintf(a, sizeof(a), "%" PRId64, m->alloc.v[d]);
    }
    snprintf(out, size, "%s/%s", u, a);
}

/* The HEALTHY column of r (members.h); `watcher_ms` the management row's checkedMs. */
static void s_health(const s_row_t *r, int64_t now, char *out, size_t size)
{
    if (!r->seen) {
        snprintf(out, size, "no (never answered)");
    } else if (now - r->checked_ms > MEMBERS_HEALTHY_MS) {
        snprintf(out, size, "unknown (the watcher's last probe %" PRId64 "s ago)",
                 (now - r->checked_ms) / 1000);
    } else if (fleet_member_answering(r->last_ok_ms, now)) {
        snprintf(out, size, "yes");
    } else {
        snprintf(out, size, "no (last answer %s%" PRId64 "s ago%s%s)",
                 r->last_ok_ms ? "" : "never; ", r->last_ok_ms ? (now - r->last_ok_ms) / 1000 : 0,
                 r->last_error[0] ? ": " : "", r->last_error);
    }
}

static const args_opt_t s_members_opts[] = {
    {"state-dir", "DIR",
     "State directory of 'rayfleetctl up --sim --members N' (default " LAUNCH_DEFAULT_STATE_DIR
     ")."},
    {NULL, NULL, NULL},
};

int members_main(int argc, char **argv)
{
    args_t a;
    int pr = args_parse("members", "[--state-dir DIR]",
                        "Shows each member cluster of STATE/federation.yaml as the watcher sees it "
                        "(STATE/observed.db): nodes schedulable/total; CPU, memory, GPU and pods "
                        "used/allocatable over the schedulable nodes (used: the requests of the "
                        "pods bound there, by kube's rule); RayClusters; and whether it answers "
                        "(the watcher's last successful list at most 5 s ago).",
                        s_members_opts, 0, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    const char *state = s_state(&a);
    fedcfg_t fed;
    if (s_federation("members", state, &fed) != 0) {
        fedcfg_free(&fed);
        return 1;
    }
    size_t n = fed.nmembers;
    s_row_t *rows = calloc(n + 1, sizeof(*rows));
    int code = rows ? 0 : 1;
    size_t i;
    for (i = 0; code == 0 && i < n; i++)
        if (fleet_member_init(&rows[i].m, fed.members[i].name, fed.members[i].labels) != 0)
            code = 1;
    const char *mgmt = fed.management.name ? fed.management.name : LAUNCH_MANAGEMENT;
    if (code == 0 && fleet_member_init(&rows[n].m, mgmt, NULL) != 0)
        code = 1;
    if (code == 0 && s_read_rows(state, rows, n + 1) != 0)
        code = 1;
    if (code == 0) {
        int64_t now = rftime_now_ms();
        table_t t = {.ncols = 8,
                     .header = {"MEMBER", "NODES", "CPU", "MEMORY", "GPU", "PODS", "RAYCLUSTERS",
                                "HEALTHY"}};
        for (i = 0; code == 0 && i < n; i++) {
            s_row_t *r = &rows[i];
            size_t ok = fleet_member_finish(&r->m);
            char nodes[32], cpu[64], memo[64], gpu[64], pods[64], rcs[24], health[400];
            snprintf(nodes, sizeof(nodes), "%zu/%zu", ok, r->m.nnodes);
            s_pair(&r->m, FLEET_RES_CPU, cpu, sizeof(cpu));
            s_pair(&r->m, FLEET_RES_MEMORY, memo, sizeof(memo));
            s_pair(&r->m, FLEET_RES_GPU, gpu, sizeof(gpu));
            s_pair(&r->m, FLEET_RES_PODS, pods, sizeof(pods));
            snprintf(rcs, sizeof(rcs), "%zu", r->rayclusters);
            s_health(r, now, health, sizeof(health));
            const char *row[] = {r->m.name, nodes, cpu, memo, gpu, pods, rcs, health};
            if (table_row(&t, row) != 0)
                code = 1;
        }
        if (code == 0)
            table_print(&t, stdout);
        table_free(&t);
        if (rows[n].rayclusters)
            printf("\n%s: %zu RayCluster(s), each placed on a member by the placer or waiting "
                   "('rayfleetctl status' names its member)\n",
                   mgmt, rows[n].rayclusters);
    }
    for (i = 0; rows && i <= n; i++)
        fleet_member_free(&rows[i].m);
    free(rows);
    fedcfg_free(&fed);
    return code;
}

/* ---- member ACTION NAME ------------------------------------------------------------------ */

static const args_opt_t s_member_opts[] = {
    {"state-dir", "DIR",
     "State directory of 'rayfleetctl up --sim --members N' (default " LAUNCH_DEFAULT_STATE_DIR
     ")."},
    {"latency-ms", "N", "slow: milliseconds added to every API request (1..600000, default 2000)."},
    {NULL, NULL, NULL},
};

/* The member kubesim's URL from STATE/kubesim-<name>.ready into url[size]. */
static int s_url(const char *state, const char *name, char *url, size_t size)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/kubesim-%s.ready", state, name);
    FILE *f = fopen(path, "re");
    url[0] = '\0';
    if (f) {
        if (fgets(url, (int)size, f))
            url[strcspn(url, "\r\n")] = '\0';
        fclose(f);
    }
    if (!url[0]) {
        fprintf(stderr, "rayfleetctl member: no URL in %s (is '%s' a running simulated member?)\n",
                path, name);
        return ERR_NOTFOUND;
    }
    return 0;
}

/* One admin call; prints what failed. */
static int s_admin(const char *url, const char *method, const char *path, const char *body)
{
    int status = launch_http_request(url, method, path, body);
    if (status != 200) {
        fprintf(stderr, "rayfleetctl member: %s %s%s: %s%d\n", method, url, path,
                status < 0 ? "no answer " : "HTTP ", status);
        return ERR_IO;
    }
    return 0;
}

int member_main(int argc, char **argv)
{
    args_t a;
    int pr = args_parse(
        "member", "stop|start|partition|heal|slow|fast NAME [--latency-ms N] [--state-dir DIR]",
        "Faults of a simulated member cluster (up --sim --members N), each undone by its pair: "
        "stop/start (SIGSTOP/SIGCONT of its kubesim: it answers nothing but keeps its objects "
        "and port), partition/heal (every API request answered 503 and open watches dropped / "
        "every fault rule and latency removed), slow/fast (--latency-ms added to every API "
        "request / none).",
        s_member_opts, 2, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    if (a.npositional != 2) {
        fprintf(stderr, "rayfleetctl member: want ACTION NAME (e.g. 'member stop member-1')\n");
        return 2;
    }
    const char *action = a.positional[0], *name = a.positional[1];
    int64_t latency = 0;
    if (args_int(&a, "member", "latency-ms", 1, 600000, MEMBERS_SLOW_MS, &latency) != 0)
        return 2;
    const char *state = s_state(&a);
    fedcfg_t fed;
    if (s_federation("member", state, &fed) != 0) {
        fedcfg_free(&fed);
        return 1;
    }
    bool known = strcmp(fed.management.name ? fed.management.name : LAUNCH_MANAGEMENT, name) == 0 ||
                 fedcfg_member(&fed, name) != NULL;
    fedcfg_free(&fed);
    if (!known) {
        fprintf(stderr, "rayfleetctl member: NAME: '%s' is not a cluster of %s/%s\n", name, state,
                LAUNCH_FEDERATION_FILE);
        return 2;
    }
    bool sig = strcmp(action, "stop") == 0 || strcmp(action, "start") == 0;
    if (sig) {
        char pidfile[PATH_MAX], proc[PROC_NAME_MAX];
        snprintf(pidfile, sizeof(pidfile), "%s/%s", state, LAUNCH_PIDFILE);
        if (strcmp(name, LAUNCH_MANAGEMENT) == 0)
            snprintf(proc, sizeof(proc), "kubesim");
        else
            snprintf(proc, sizeof(proc), LAUNCH_MEMBER_KUBESIM, name);
        proc_entry_t e[PROC_MAX];
        size_t n = 0;
        if (proc_pidfile_read(pidfile, e, PROC_MAX, &n) != 0) {
            fprintf(stderr, "rayfleetctl member: cannot read %s (is 'up' running?)\n", pidfile);
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            if (strcmp(e[i].name, proc) != 0)
                continue;
            if (!proc_alive(&e[i])) {
                fprintf(stderr, "rayfleetctl member: %s (pid %d) is not running\n", proc,
                        (int)e[i].pid);
                return 1;
            }
            bool stop = action[2] == 'o';
            if (kill(e[i].pid, stop ? SIGSTOP : SIGCONT) != 0) {
                perror("rayfleetctl member: kill");
                return 1;
            }
            printf("rayfleetctl: %s %s (%s, pid %d)\n", name,
                   stop ? "stopped: its API server answers nothing" : "started: answering again",
                   proc, (int)e[i].pid);
            return 0;
        }
        fprintf(stderr, "rayfleetctl member: no process %s in %s\n", proc, pidfile);
        return 1;
    }
    char url[256];
    if (s_url(state, name, url, sizeof(url)) != 0)
        return 1;
    int rc;
    char body[256];
    if (strcmp(action, "partition") == 0) {
        rc = s_admin(url, "POST", "/kubesim/faults",
                     "{\"rules\":[{\"verb\":\"*\",\"resource\":\"*\",\"rate\":1,\"code\":503}]}");
        if (rc == 0)
            rc = s_admin(url, "POST", "/kubesim/drop-watches", "{}");
    } else if (strcmp(action, "heal") == 0) {
        rc = s_admin(url, "DELETE", "/kubesim/faults", NULL);
    } else if (strcmp(action, "slow") == 0) {
        snprintf(body, sizeof(body), "{\"latencyMs\":%" PRId64 "}", latency);
        rc = s_admin(url, "POST", "/kubesim/faults", body);
    } else if (strcmp(action, "fast") == 0) {
        rc = s_admin(url, "POST", "/kubesim/faults", "{\"latencyMs\":0,\"jitterMs\":0}");
    } else {
        fprintf(stderr,
                "rayfleetctl member: ACTION: must be stop, start, partition, heal, slow or fast "
                "(got '%s')\n",
                action);
        return 2;
    }
    if (rc != 0)
        return 1;
    printf("rayfleetctl: %s: %s\n", name,
           strcmp(action, "partition") == 0 ? "partitioned: every API request answered 503"
           : strcmp(action, "heal") == 0    ? "healed: no fault rule, no added latency"
           : strcmp(action, "slow") == 0    ? "slow: latency added to every API request"
                                            : "fast: no added latency");
    return 0;
}
