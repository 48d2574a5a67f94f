/*
 * bench-store: batched writes through common/store against plain sqlite3 inserts of the same rows.
 *
 * Two workloads, each measured both ways on a fresh file with the same schema and pragmas (WAL,
 * synchronous=NORMAL, foreign_keys, busy timeout):
 *   - observed upserts: realistic pod rows with about 1 KB of JSON, through store_observed_upsert()
 *     (queued, flushed every --batch rows) against one prepared INSERT with BEGIN/COMMIT per batch;
 *   - audit appends: store_audit_append() against a plain INSERT into the audit table.
 * Runs are interleaved (store then plain, then plain then store) so drift in the machine's speed
 * hits both sides alike; the table gives the median rows/s of each and their ratio. The rows are
 * generated before timing starts; files live on tmpfs (/dev/shm) when there is one.
 */
#include "benchclock.h"
#include "log.h"
#include "store.h"

#include <sqlite3.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#define BENCH_ROWS_DEFAULT 200000
#define BENCH_BATCH_DEFAULT 1000
#define BENCH_RUNS_DEFAULT 5
#define BENCH_RUNS_MAX 15
#define BENCH_JSON_VARIANTS 64 /* distinct JSON bodies, reused round-robin */
#define BENCH_JSON_MAX 2048
#define BENCH_NAME_MAX 64
#define BENCH_TARGET_RATIO 0.80
#define BENCH_BUDGET_S 55.0 /* no new run starts that would end after this */

/* The pre-generated input of one run. */
typedef struct {
    size_t rows; /* rows per run */
    size_t batch; /* rows per transaction */
    char (*names)[BENCH_NAME_MAX]; /* one object name per row */
    char json[BENCH_JSON_VARIANTS][BENCH_JSON_MAX]; /* pod JSON bodies of about 1 KB */
    char summary[BENCH_JSON_VARIANTS][BENCH_JSON_MAX]; /* audit request summaries */
} bench_t;

/* A pod as the watcher would store it: metadata, labels, owner reference, spec and status. */
static void s_make_json(char *out, size_t cap, int v)
{
    snprintf(out, cap,
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"raycluster-%d-"
             "worker-small-group-%05d\",\"namespace\":\"team-%d\",\"uid\":\"6f1c%04d-5b1e-4c2d-"
             "9a3b-0c7d%08d\",\"resourceVersion\":\"%d\",\"creationTimestamp\":\"2026-11-22T10:00:"
             "00Z\",\"labels\":{\"ray.io/cluster\":\"raycluster-%d\",\"ray.io/node-type\":"
             "\"worker\",\"ray.io/group\":\"small-group\",\"ray.io/is-ray-node\":\"yes\","
             "\"app.kubernetes.io/created-by\":\"kuberay-operator\"},\"ownerReferences\":[{"
             "\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"name\":\"raycluster-%d\","
             "\"uid\":\"0a1b2c3d-%04d\",\"controller\":true,\"blockOwnerDeletion\":true}]},"
             "\"spec\":{\"containers\":[{\"name\":\"ray-worker\",\"image\":\"rayproject/ray:2.9."
             "0\",\"command\":[\"/bin/bash\",\"-lc\",\"--\"],\"args\":[\"ulimit -n 65536; ray "
             "start --address=raycluster-%d-head-svc:6379 --block --num-cpus=1 "
             "--memory=2000000000\"],\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"2Gi\"},"
             "\"requests\":{\"cpu\":\"500m\",\"memory\":\"1Gi\"}},\"env\":[{\"name\":\"RAY_"
             "CLUSTER_NAME\",\"value\":\"raycluster-%d\"},{\"name\":\"RAY_PORT\",\"value\":"
             "\"6379\"}]}],\"restartPolicy\":\"Always\",\"nodeName\":\"node-%03d\"},\"status\":{"
             "\"phase\":\"Running\",\"podIP\":\"10.%d.%d.%d\",\"conditions\":[{\"type\":\"Ready\","
             "\"status\":\"True\"},{\"type\":\"ContainersReady\",\"status\":\"True\"},{\"type\":"
             "\"PodScheduled\",\"status\":\"True\"}]}}",
             v, v, v % 8, v, v, 1000 + v, v, v, v, v, v, v % 1000, v % 250, v % 200, v % 100);
}

static int s_prepare_input(bench_t *b)
{
    b->names = calloc(b->rows, sizeof(*b->names));
    if (!b->names)
        return -1;
    for (size_t i = 0; i < b->rows; i++)
        snprintf(b->names[i], BENCH_NAME_MAX, "raycluster-%zu-worker-%06zu", i / 4, i);
    for (int v = 0; v < BENCH_JSON_VARIANTS; v++) {
        s_make_json(b->json[v], BENCH_JSON_MAX, v);
        snprintf(b->summary[v], BENCH_JSON_MAX,
                 "POST /api/v1/namespaces/team-%d/pods name=raycluster-%d-worker-%05d "
                 "image=rayproject/ray:2.9.0 cpu=1 memory=2Gi env=[RAY_CLUSTER_NAME,RAY_PORT,"
                 "REDIS_PASSWORD=[redacted]]",
                 v % 8, v, v);
    }
    return 0;
}

static store_observed_t s_obs_row(const bench_t *b, size_t i)
{
    return (store_observed_t){.cluster = "default",
                              .api_group = "",
                              .kind = "Pod",
                              .ns = "team-1",
                              .name = b->names[i],
                              .uid = "6f1c0001-5b1e-4c2d-9a3b-0c7d00000001",
                              .resource_version = "123456",
                              .generation = 0,
                              .owner_kind = "RayCluster",
                              .owner_name = "raycluster-1",
                              .owner_uid = "0a1b2c3d-0001",
                              .phase = "Running",
                              .conditions = "Ready=True,ContainersReady=True,PodScheduled=True",
                              .deleting = false,
                              .updated_ms = 1795000000000 + (int64_t)i,
                              .json = b->json[i % BENCH_JSON_VARIANTS]};
}

static store_audit_t s_audit_row(const bench_t *b, size_t i)
{
    return (store_audit_t){.time_ms = 1795000000000 + (int64_t)i,
                           .actor_service = "scheduler",
                           .actor_replica = "scheduler/0",
                           .actor_version = "0.1.0",
                           .cluster = "default",
                           .target_group = "",
                           .target_kind = "Pod",
                           .target_namespace = "team-1",
                           .target_name = b->names[i],
                           .target_uid = "6f1c0001-5b1e-4c2d-9a3b-0c7d00000001",
                           .verb = "create",
                           .reason = "CreatedWorkerPod",
                           .message = "worker group small-group has 2 of 3 replicas",
                           .cause_key = "default/team-1/raycluster-1",
                           .cause_generation = 3,
                           .cause_resource_version = "123455",
                           .cause_event_id = (uint64_t)i + 1,
                           .correlation_id = "r-00000000000001",
                           .request_summary = b->summary[i % BENCH_JSON_VARIANTS],
                           .result_status = 201,
                           .result_error = NULL,
                           .latency_ms = 4};
}

/* Binds a text value or NULL. */
static void s_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Creates an empty file with the store's schema, for the plain side. */
static int s_create_schema(const char *path)
{
    int err = 0;
    store_t *s = store_open(path, STORE_READWRITE, &err);
    store_destroy(&s);
    return err;
}

static sqlite3 *s_plain_open(const char *path)
{
    sqlite3 *db = NULL;
    // The same open flags as the store: one connection per thread, so no SQLite mutex.
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (s_create_schema(path) != 0 || sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS_DEFAULT);
    sqlite3_exec(db,
                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                 "PRAGMA foreign_keys = ON",
                 NULL, NULL, NULL);
    return db;
}

static int64_t s_count(sqlite3 *db, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The plain side: one prepared INSERT, BEGIN/COMMIT per batch. Returns rows per wall-clock
 * second (and per CPU second in *cpu_rate), or -1. */
static double s_plain_run(const bench_t *b, const char *path, bool audit, double *cpu_rate)
{
    sqlite3 *db = s_plain_open(path);
    if (!db)
        return -1;
    const char *sql =
        audit ? "INSERT INTO audit (" STORE_AUDIT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
              : "INSERT INTO observed_objects (cluster, api_group, kind, namespace, name, uid, "
                "resource_version, generation, owner_kind, owner_name, owner_uid, phase, "
                "conditions, deleting, updated_ms, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    bool ok = true;
    double t0 = benchclock_now();
    double c0 = benchclock_cpu();
    for (size_t i = 0; i < b->rows && ok; i++) {
        if (i % b->batch == 0)
            ok = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
        if (audit) {
            store_audit_t r = s_audit_row(b, i);
            sqlite3_bind_int64(st, 1, r.time_ms);
            s_bind_text(st, 2, r.actor_service);
            s_bind_text(st, 3, r.actor_replica);
            s_bind_text(st, 4, r.actor_version);
            s_bind_text(st, 5, r.cluster);
            s_bind_text(st, 6, r.target_group);
            s_bind_text(st, 7, r.target_kind);
            s_bind_text(st, 8, r.target_namespace);
            s_bind_text(st, 9, r.target_name);
            s_bind_text(st, 10, r.target_uid);
            s_bind_text(st, 11, r.verb);
            s_bind_text(st, 12, r.reason);
            s_bind_text(st, 13, r.message);
            s_bind_text(st, 14, r.cause_key);
            sqlite3_bind_int64(st, 15, r.cause_generation);
            s_bind_text(st, 16, r.cause_resource_version);
            sqlite3_bind_int64(st, 17, (int64_t)r.cause_event_id);
            s_bind_text(st, 18, r.correlation_id);
            s_bind_text(st, 19, r.request_summary);
            sqlite3_bind_int(st, 20, r.result_status);
            s_bind_text(st, 21, r.result_error);
            sqlite3_bind_int64(st, 22, r.latency_ms);
        } else {
            store_observed_t r = s_obs_row(b, i);
            s_bind_text(st, 1, r.cluster);
            s_bind_text(st, 2, r.api_group);
            s_bind_text(st, 3, r.kind);
            s_bind_text(st, 4, r.ns);
            s_bind_text(st, 5, r.name);
            s_bind_text(st, 6, r.uid);
            s_bind_text(st, 7, r.resource_version);
            sqlite3_bind_int64(st, 8, r.generation);
            s_bind_text(st, 9, r.owner_kind);
            s_bind_text(st, 10, r.owner_name);
            s_bind_text(st, 11, r.owner_uid);
            s_bind_text(st, 12, r.phase);
            s_bind_text(st, 13, r.conditions);
            sqlite3_bind_int(st, 14, r.deleting);
            sqlite3_bind_int64(st, 15, r.updated_ms);
            s_bind_text(st, 16, r.json);
        }
        ok = ok && sqlite3_step(st) == SQLITE_DONE;
        sqlite3_reset(st);
        if (ok && (i % b->batch == b->batch - 1 || i == b->rows - 1))
            ok = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    }
    double dt = benchclock_now() - t0;
    double dc = benchclock_cpu() - c0;
    sqlite3_finalize(st);
    if (ok && s_count(db, audit ? "audit" : "observed_objects") != (int64_t)b->rows)
        ok = false;
    if (!ok)
        fprintf(stderr, "bench-store: plain run failed: %s\n", sqlite3_errmsg(db));
    sqlite3_close(db);
    *cpu_rate = ok ? (double)b->rows / dc : -1;
    return ok ? (double)b->rows / dt : -1;
}

/* The store side. Returns as s_plain_run(). */
static double s_store_run(const bench_t *b, const char *path, bool audit, double *cpu_rate)
{
    int err = 0;
    store_t *s = store_open(path, STORE_READWRITE, &err);
    if (!s || store_set_batch_max(s, b->batch) != 0) {
        store_destroy(&s);
        return -1;
    }
    bool ok = true;
    double t0 = benchclock_now();
    double c0 = benchclock_cpu();
    for (size_t i = 0; i < b->rows && ok; i++) {
        if (audit) {
            store_audit_t r = s_audit_row(b, i);
            ok = store_audit_append(s, &r) == 0;
        } else {
            store_observed_t r = s_obs_row(b, i);
            ok = store_observed_upsert(s, &r) == 0;
        }
    }
    ok = ok && store_flush(s) == 0;
    double dt = benchclock_now() - t0;
    double dc = benchclock_cpu() - c0;
    store_stats_t st;
    store_stats(s, &st);
    store_destroy(&s);
    sqlite3 *db = NULL;
    if (ok && (st.rows_written != b->rows || st.dropped != 0 ||
               sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
               s_count(db, audit ? "audit" : "observed_objects") != (int64_t)b->rows))
        ok = false;
    sqlite3_close(db);
    if (!ok)
        fprintf(stderr, "bench-store: store run failed\n");
    *cpu_rate = ok ? (double)b->rows / dc : -1;
    return ok ? (double)b->rows / dt : -1;
}

/* Removes a database file and its WAL and shared-memory files. */
static void s_remove_db(const char *path)
{
    char p[616];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), s_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: bench-store [--rows N] [--batch N] [--runs N] [--dir DIR]\n"
               "Batched writes through common/store against plain sqlite3 inserts of the same\n"
               "rows (observed upserts with ~1 KB JSON, and audit appends). Prints median rows/s\n"
               "and the ratio; exits 1 if a run fails. Defaults: 200000 rows, batches of 1000,\n"
               "5 runs, in /dev/shm (or /tmp).\n");
}

static bool s_parse_size(const char *s, size_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (!s[0] || *end || v == 0 || v > 100000000ULL)
        return false;
    *out = (size_t)v;
    return true;
}

int main(int argc, char **argv)
{
    log_setup("bench-store", LOG_WARN, 2);
    bench_t *b = calloc(1, sizeof(*b));
    if (!b)
        return 1;
    b->rows = BENCH_ROWS_DEFAULT;
    b->batch = BENCH_BATCH_DEFAULT;
    size_t runs = BENCH_RUNS_DEFAULT;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            free(b);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("bench-store %s\n", RF_VERSION);
            free(b);
            return 0;
        } else if (has && strcmp(argv[i], "--rows") == 0 && s_parse_size(argv[i + 1], &b->rows)) {
            i++;
        } else if (has && strcmp(argv[i], "--batch") == 0 && s_parse_size(argv[i + 1], &b->batch) &&
                   b->batch <= STORE_QUEUE_MAX_OPS) {
            i++;
        } else if (has && strcmp(argv[i], "--runs") == 0 && s_parse_size(argv[i + 1], &runs) &&
                   runs <= BENCH_RUNS_MAX) {
            i++;
        } else if (has && strcmp(argv[i], "--dir") == 0) {
            base = argv[++i];
        } else {
            s_usage(stderr);
            free(b);
            return 2;
        }
    }
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/rf-bench-store-XXXXXX", base);
    if (s_prepare_input(b) != 0 || !mkdtemp(dir)) {
        fprintf(stderr, "bench-store: cannot prepare input or %s\n", dir);
        free(b->names);
        free(b);
        return 1;
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    printf("bench-store: %zu rows per run, batches of %zu, %zu runs interleaved, in %s\n", b->rows,
           b->batch, runs, base);
    fflush(stdout);

    static const char *const names[2] = {"observed upsert (~1 KB JSON)", "audit append"};
    double rate[2][2][BENCH_RUNS_MAX]; // [workload][0 store, 1 plain][run]
    double cpu_rate[2][2][BENCH_RUNS_MAX];
    bool failed = false;
    double t_start = benchclock_now();
    size_t done = 0;
    for (size_t r = 0; r < runs && !failed; r++) {
        double per_run = r ? (benchclock_now() - t_start) / (double)r : 0;
        if (r && benchclock_now() - t_start + per_run > BENCH_BUDGET_S) {
            printf("bench-store: stopping after %zu runs to stay within %.0f s\n", r,
                   BENCH_BUDGET_S);
            break;
        }
        for (int w = 0; w < 2 && !failed; w++) {
            for (int k = 0; k < 2; k++) {
                // Even runs measure the store first, odd runs plain first.
                bool store_side = (k == 0) == (r % 2 == 0);
                double cpu = 0;
                double v = store_side ? s_store_run(b, path, w == 1, &cpu)
                                      : s_plain_run(b, path, w == 1, &cpu);
                s_remove_db(path);
                rate[w][store_side ? 0 : 1][r] = v;
                cpu_rate[w][store_side ? 0 : 1][r] = cpu;
                failed = failed || v < 0;
            }
        }
        done = r + 1;
    }
    double elapsed = benchclock_now() - t_start;
    rmdir(dir);
    free(b->names);
    free(b);
    if (failed) {
        fprintf(stderr, "bench-store: a run failed\n");
        return 1;
    }
    printf("%-30s %14s %14s %8s %8s %12s\n", "workload", "store rows/s", "plain rows/s", "ratio",
           "target", "ratio (CPU)");
    for (int w = 0; w < 2; w++) {
        double st = s_median(rate[w][0], (int)done);
        double pl = s_median(rate[w][1], (int)done);
        double cst = s_median(cpu_rate[w][0], (int)done);
        double cpl = s_median(cpu_rate[w][1], (int)done);
        printf("%-30s %14.0f %14.0f %7.1f%% %8s %11.1f%%%s\n", names[w], st, pl, 100.0 * st / pl,
               ">=80%", 100.0 * cst / cpl, st / pl >= BENCH_TARGET_RATIO ? "" : "  (below target)");
    }
    printf("bench-store: medians of %zu runs, %.1f s in total\n", done, elapsed);
    return 0;
}
