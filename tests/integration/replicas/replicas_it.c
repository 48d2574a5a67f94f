/*
 * replicas_it: two rayfleet-scheduler replicas sharing shard leases in <state>/leases.db, one
 * killed with SIGKILL mid-reconcile (fleet.h runs kubesim, the bus, the watcher and the replicas
 * as child processes, the real binaries).
 *
 * Scenario: both replicas start and split the 256 shards; IT_CLUSTERS RayClusters (1 head + 3
 * workers) are created at once; the replicas' client rate (--client.qps IT_QPS) and kubesim's
 * latency keep writes in flight for seconds. As soon as replica 1 has audited IT_KILL_AFTER
 * writes, and while clusters are still not ready, it is killed with SIGKILL at wall time T.
 *
 * Checks:
 *   1. both replicas wrote for some keys before the kill (the shards were split);
 *   2. takeover: every shard lease is held, unexpired, by replica 0 within two lease durations
 *      of T;
 *   3. every RayCluster becomes ready;
 *   4. no key reconciled by two replicas at once. A pass is the set of audit rows with one
 *      correlation id; its span is [first request sent, last result received] (time_ms -
 *      latency_ms .. time_ms, wall clock, one host). For every key, the spans of passes of
 *      DIFFERENT replicas must not overlap. Writes are the only effect a pass has, and every
 *      write a pass makes lies inside its span, so two replicas reconciling one key at once
 *      would show as overlapping spans. What the rows cannot show is a write of replica 1 whose
 *      row was not yet committed when it died (rows are batched per loop turn); hence also:
 *      replica 0's first write for a key that replica 1 had written for is sent after T, and
 *   5. no duplicate pods: each RayCluster has exactly 1 head and 3 worker pods in kubesim, and
 *      the audit shows at most 4 successful pod creates for it, whoever made them (fewer when
 *      the killed replica's last rows died with it: rows are committed once per loop turn).
 *
 * The leases live in <state>/leases.db (--lease sqlite, the default; one lease per shard) or, for
 * replicas on several hosts, in Lease objects in kubesim (--lease kubernetes; 16 leases, each for
 * a group of 16 shards); the checks are the same.
 *
 * Usage: replicas_it [-v] [-k] [--lease sqlite|kubernetes] (-k keeps the state dir). Exit 0 when
 * every check passes.
 */
#include "fleet.h"

#include "lease.h"
#include "log.h"
#include "rftime.h"
#include "selftest.h"

#define IT_CLUSTERS 40 /* RayClusters created */
#define IT_LEASE_MS 2000 /* --shards.lease-duration */
#define IT_QPS 40 /* replicas' client qps: keeps writes in flight for seconds */
#define IT_LATENCY_MS 10 /* kubesim's added latency */
#define IT_KILL_AFTER 8 /* replica 1's audited writes before it is killed */
#define IT_WAIT_MS 90000 /* longest wait for readiness */
#define IT_SPLIT_MS 20000 /* longest wait for the replicas to split the shards */
#define IT_WORKERS 3 /* workers per RayCluster */
#define IT_PREFIX "rep" /* RayCluster name prefix */

static bool g_verbose;

static const char *g_backend = "sqlite"; /* --shards.lease of the replicas */
/* leases the shards are grouped under: one per shard with sqlite, the scheduler's default
 * (MAIN_K8S_LEASE_GROUPS) with Lease objects */
static long g_groups = FLEET_SHARDS;
#define IT_K8S_GROUPS 16

/* Shard leases held unexpired now, by holder (index 0: "scheduler-0", 1: "scheduler-1"), from
 * <state>/leases.db or, with the kubernetes backend, from the Lease objects in kubesim (expiry:
 * spec.renewTime + the duration the holder wrote in its annotation). */
static void s_lease_holders(fleet_t *f, long out[2])
{
    out[0] = out[1] = 0;
    if (strcmp(g_backend, "kubernetes") == 0) {
        json_t *list = NULL;
        if (fleet_call(f, "GET", "/apis/coordination.k8s.io/v1/namespaces/" FLEET_NS "/leases",
                       "application/json", NULL, 0, &list) == 200) {
            int64_t now = fleet_wall_ms();
            size_t i;
            json_t *l;
            json_array_foreach(json_object_get(list, "items"), i, l)
            {
                json_t *ann = json_object_get(json_object_get(l, "metadata"), "annotations");
                const char *name = json_string_value(json_object_get(ann, LEASE_K8S_ANN_NAME));
                const char *dur = json_string_value(json_object_get(ann, LEASE_K8S_ANN_DURATION));
                const char *h = jx_str(l, "spec.holderIdentity", "");
                int64_t renew = -1;
                if (rftime_parse(jx_str(l, "spec.renewTime", ""), &renew) != 0)
                    renew = -1;
                if (!name || strncmp(name, "scheduler/shard/", 16) != 0 || !dur || renew < 0 ||
                    renew + strtoll(dur, NULL, 10) <= now)
                    continue;
                if (strcmp(h, "scheduler-0") == 0)
                    out[0]++;
                else if (strcmp(h, "scheduler-1") == 0)
                    out[1]++;
            }
        }
        json_decref(list);
        return;
    }
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/leases.db", f->dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 1000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db,
                               "SELECT holder, count(*) FROM leases WHERE name LIKE "
                               "'scheduler/shard/%' AND expires_ms > ?1 GROUP BY holder",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, fleet_wall_ms());
            while (sqlite3_step(st) == SQLITE_ROW) {
                const char *h = (const char *)sqlite3_column_text(st, 0);
                if (h && strcmp(h, "scheduler-0") == 0)
                    out[0] = (long)sqlite3_column_int64(st, 1);
                else if (h && strcmp(h, "scheduler-1") == 0)
                    out[1] = (long)sqlite3_column_int64(st, 1);
            }
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

/* Audited writes of replica i so far. */
static long s_audit_count(fleet_t *f, int i)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/scheduler-%d.db", f->dir, i);
    sqlite3 *db = NULL;
    long c = 0;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 1000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM audit", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            c = (long)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return c;
}

/* One pass: rows of one (key, replica, correlation id). */
typedef struct {
    const char *key; /* its key (borrowed from the rows) */
    int replica; /* who */
    int64_t start, end; /* span, wall ms */
} s_pass_t;

static int s_pass_cmp(const void *a, const void *b)
{
    const s_pass_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Check 4 and the audit half of 5. Returns the violations. */
static int s_check_audit(fleet_t *f, int64_t kill_ms, int *keys_by[2])
{
    fleet_row_t *rows = NULL;
    size_t n = 0;
    if (fleet_audit_rows(f, IT_PREFIX, &rows, &n) != 0 || n == 0) {
        fprintf(stderr, "replicas_it: no audit rows\n");
        free(rows);
        return 1;
    }
    qsort(rows, n, sizeof(*rows), fleet_row_cmp);
    /* passes: group by (key, replica, corr); rows of one pass are contiguous after sorting
     * by key only when passes of one key do not interleave, so group explicitly */
    s_pass_t *ps = calloc(n, sizeof(*ps));
    char(*corr)[40] = calloc(n, sizeof(*corr));
    size_t np = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = np;
        for (size_t k = np; k-- > 0;) {
            if (strcmp(ps[k].key, rows[i].key) != 0)
                break;
            if (ps[k].replica == rows[i].replica && strcmp(corr[k], rows[i].corr) == 0) {
                j = k;
                break;
            }
        }
        if (j == np) {
            ps[np] = (s_pass_t){rows[i].key, rows[i].replica, rows[i].sent_ms, rows[i].done_ms};
            snprintf(corr[np], sizeof(corr[np]), "%s", rows[i].corr);
            np++;
        } else {
            if (rows[i].sent_ms < ps[j].start)
                ps[j].start = rows[i].sent_ms;
            if (rows[i].done_ms > ps[j].end)
                ps[j].end = rows[i].done_ms;
        }
    }
    qsort(ps, np, sizeof(*ps), s_pass_cmp);
    size_t overlaps = 0, late = 0, handed = 0;
    for (size_t a = 0; a < np;) {
        size_t b = a;
        while (b < np && strcmp(ps[b].key, ps[a].key) == 0)
            b++;
        bool by[2] = {false, false};
        int64_t first0_after = INT64_MAX;
        for (size_t x = a; x < b; x++) {
            by[ps[x].replica & 1] = true;
            if (ps[x].replica == 0 && ps[x].start < first0_after)
                first0_after = ps[x].start;
            for (size_t y = x + 1; y < b; y++)
                if (ps[x].replica != ps[y].replica && ps[y].start <= ps[x].end &&
                    ps[x].start <= ps[y].end) {
                    overlaps++;
                    fprintf(stderr,
                            "replicas_it: key %s: replica %d pass [%" PRId64 ",%" PRId64
                            "] overlaps replica %d pass [%" PRId64 ",%" PRId64 "]\n",
                            ps[x].key, ps[x].replica, ps[x].start, ps[x].end, ps[y].replica,
                            ps[y].start, ps[y].end);
                }
        }
        (*keys_by[0]) += by[0];
        (*keys_by[1]) += by[1];
        if (by[0] && by[1]) {
            handed++;
            /* replica 0's passes for a key replica 1 wrote for: those after replica 1's last pass
             * must start after the kill */
            int64_t last1 = 0;
            for (size_t x = a; x < b; x++)
                if (ps[x].replica == 1 && ps[x].end > last1)
                    last1 = ps[x].end;
            for (size_t x = a; x < b; x++)
                if (ps[x].replica == 0 && ps[x].start > last1 && ps[x].start < kill_ms) {
                    late++;
                    fprintf(stderr,
                            "replicas_it: key %s: replica 0 wrote at %" PRId64
                            " before the kill at %" PRId64 "\n",
                            ps[x].key, ps[x].start, kill_ms);
                }
        }
        a = b;
    }
    if (g_verbose)
        printf("replicas_it: %zu rows, %zu passes, %d keys by replica 0, %d by replica 1, %zu "
               "keys written by both\n",
               n, np, *keys_by[0], *keys_by[1], handed);
    bad += (int)(overlaps + late);
    /* successful pod creates per RayCluster */
    for (size_t a = 0; a < n;) {
        size_t b = a, creates = 0;
        while (b < n && strcmp(rows[b].key, rows[a].key) == 0) {
            if (strcmp(rows[b].kind, "Pod") == 0 && strcmp(rows[b].verb, "create") == 0 &&
                rows[b].status == 201)
                creates++;
            b++;
        }
        /* at most 4: the killed replica's last rows may be lost (uncommitted batch) */
        if (creates > 1 + IT_WORKERS) {
            bad++;
            fprintf(stderr, "replicas_it: key %s: %zu pod creates audited, want <= %d\n",
                    rows[a].key, creates, 1 + IT_WORKERS);
        }
        a = b;
    }
    free(corr);
    free(ps);
    free(rows);
    return bad;
}

/* Check 5 on kubesim: 1 head and IT_WORKERS workers per RayCluster. Returns violations. */
static int s_check_pods(fleet_t *f)
{
    json_t *list = NULL;
    long st = fleet_call(f, "GET", "/api/v1/namespaces/" FLEET_NS "/pods", "application/json", NULL,
                         0, &list);
    if (st != 200) {
        json_decref(list);
        return 1;
    }
    int heads[IT_CLUSTERS] = {0}, workers[IT_CLUSTERS] = {0}, bad = 0;
    size_t i;
    json_t *pod;
    json_array_foreach(json_object_get(list, "items"), i, pod)
    {
        json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
        const char *cl = json_string_value(json_object_get(labels, "ray.io/cluster"));
        const char *type = json_string_value(json_object_get(labels, "ray.io/node-type"));
        if (!cl || strncmp(cl, IT_PREFIX "-", strlen(IT_PREFIX) + 1) != 0 || !type)
            continue;
        long idx = strtol(cl + strlen(IT_PREFIX) + 1, NULL, 10);
        if (idx < 0 || idx >= IT_CLUSTERS)
            continue;
        if (strcmp(type, "head") == 0)
            heads[idx]++;
        else
            workers[idx]++;
    }
    for (int c = 0; c < IT_CLUSTERS; c++)
        if (heads[c] != 1 || workers[c] != IT_WORKERS) {
            bad++;
            fprintf(stderr, "replicas_it: %s-%06d has %d head and %d worker pods\n", IT_PREFIX, c,
                    heads[c], workers[c]);
        }
    json_decref(list);
    return bad;
}

int main(int argc, char **argv)
{
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            g_verbose = true;
        else if (strcmp(argv[i], "-k") == 0)
            keep = true;
        else if (strcmp(argv[i], "--lease") == 0 && i + 1 < argc &&
                 (strcmp(argv[i + 1], "sqlite") == 0 || strcmp(argv[i + 1], "kubernetes") == 0))
            g_backend = argv[++i];
        else {
            fprintf(stderr, "usage: replicas_it [-v] [-k] [--lease sqlite|kubernetes]\n");
            return 2;
        }
    }
    if (strcmp(g_backend, "kubernetes") == 0)
        g_groups = IT_K8S_GROUPS;
    signal(SIGPIPE, SIG_IGN);
    log_setup("replicas_it", LOG_WARN, STDERR_FILENO);
    int failed = 0;
    fleet_t f = {0};
    fleet_opts_t o = {.nodes = 20,
                      .latency_ms = IT_LATENCY_MS,
                      .replicas = 2,
                      .lease_ms = IT_LEASE_MS,
                      .qps = IT_QPS,
                      .concurrency = 4,
                      .log_level = "info",
                      .lease_backend = g_backend};
    int64_t acked[IT_CLUSTERS] = {0};
    if (fleet_start(&f, &o) != 0) {
        fprintf(stderr, "replicas_it: cannot start the fleet (state %s)\n", f.dir);
        fleet_stop(&f, true);
        return 1;
    }
    if (g_verbose)
        printf("replicas_it: state %s, kubesim %s\n", f.dir, f.base);
    /* the replicas split the shards */
    long h[2] = {0, 0};
    double deadline = fleet_now() + IT_SPLIT_MS / 1000.0;
    while (fleet_now() < deadline) {
        s_lease_holders(&f, h);
        if (h[0] == g_groups / 2 && h[1] == g_groups / 2)
            break; /* balanced: no rebalancing while the clusters are created */
        fleet_sleep_ms(100);
    }
    CHECK(h[0] == g_groups / 2 && h[1] == g_groups / 2);
    if (g_verbose)
        printf("replicas_it: shards split %ld / %ld\n", h[0], h[1]);

    CHECK(fleet_create(&f, IT_PREFIX, IT_CLUSTERS, 0, acked, NULL, NULL, false) == 0);
    /* kill replica 1 mid-reconcile */
    deadline = fleet_now() + IT_WAIT_MS / 1000.0;
    while (fleet_now() < deadline && s_audit_count(&f, 1) < IT_KILL_AFTER)
        fleet_sleep_ms(5);
    long ready_at_kill = fleet_ready_count(&f, IT_PREFIX);
    int64_t kill_ms = fleet_wall_ms();
    double kill_t = fleet_now();
    f.sched_cpu_dead += fleet_cpu(f.sched[1]);
    fleet_kill(&f.sched[1], true);
    CHECK(ready_at_kill >= 0 && ready_at_kill < IT_CLUSTERS);
    if (g_verbose)
        printf("replicas_it: replica 1 killed after %ld audited writes, %ld/%d ready\n",
               s_audit_count(&f, 1), ready_at_kill, IT_CLUSTERS);
    /* takeover within two lease durations */
    double took = -1;
    while (fleet_now() - kill_t < 3.0 * IT_LEASE_MS / 1000.0) {
        s_lease_holders(&f, h);
        if (h[0] == g_groups && h[1] == 0) {
            took = fleet_now() - kill_t;
            break;
        }
        fleet_sleep_ms(10);
    }
    if (g_verbose)
        printf("replicas_it: takeover of all shards after %.3f s (lease %d ms)\n", took,
               IT_LEASE_MS);
    CHECK(took >= 0 && took <= 2.0 * IT_LEASE_MS / 1000.0);
    /* every cluster ready */
    long ready = 0;
    while (fleet_now() < deadline && (ready = fleet_ready_count(&f, IT_PREFIX)) < IT_CLUSTERS)
        fleet_sleep_ms(100);
    if (g_verbose)
        printf("replicas_it: %ld/%d ready %.1f s after the kill\n", ready, IT_CLUSTERS,
               fleet_now() - kill_t);
    CHECK(ready == IT_CLUSTERS);
    CHECK(fleet_alive(f.sched[0]));
    fleet_sleep_ms(500); /* the survivor's last rows committed */
    int k0 = 0, k1 = 0;
    int *keys_by[2] = {&k0, &k1};
    CHECK(s_check_audit(&f, kill_ms, keys_by) == 0);
    CHECK(k0 > 0 && k1 > 0);
    CHECK(s_check_pods(&f) == 0);
    fleet_stop(&f, keep || failed);
    if (failed || keep)
        fprintf(stderr, "replicas_it: state kept in %s\n", f.dir);
    return SELFTEST_RESULT("integration.replicas", g_verbose) == 0 ? 0 : 1;
}
