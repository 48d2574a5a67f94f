/*
 * bench-audit: the audit store's two figures of issue 6.
 *
 * (a) Ingest: N audit rows through store_audit_append() + store_flush() every --batch rows,
 *     against plain prepared sqlite3 INSERTs of the same rows with BEGIN IMMEDIATE/COMMIT per
 *     batch, on fresh files with the same schema, indexes and pragmas (store_open() creates both
 *     files: WAL, synchronous=NORMAL). Runs alternate (store, plain, plain, store, ...); medians of
 *     rows/s and their ratio (target >= 0.80). Files on /dev/shm when there is one (CPU-bound).
 * (b) Query latency over 10 million rows: the file $TMPDIR/rayfleet-bench-audit-<N>.db (TMPDIR
 *     defaults to /tmp) is built once with the fastest path (plain prepared inserts in
 *     transactions of 100,000 rows, journal off, the audit indexes dropped before and created
 *     after with their own definitions), then marked complete in a table bench_meta; a later run
 *     that finds a complete file with the right row count reuses it and says so. Then, on a
 *     read-only store, --queries random queries of each kind after 100 warm-up queries:
 *       by target: store_audit_query_target(), one of 100,000 targets (~100 rows each), newest 100;
 *       by window, newest 100: store_audit_query() with a random 1-hour window (~14,000 rows);
 *       by window, all rows: store_audit_query() of a random 1-minute window (~230 rows).
 *     p50/p99 latency per kind (target p99 <= 20 ms). The file is read once sequentially before
 *     the queries so they run warm-cache (a cold 4.6 GB file on this disk gives p99 of 100-200 ms:
 *     random reads of table pages).
 */
#include "log.h"
#include "store.h"

#include <sqlite3.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_INGEST_ROWS_DEFAULT 200000
#define BENCH_BATCH_DEFAULT 2000
#define BENCH_RUNS 3 /* runs of each side in (a) */
#define BENCH_BIG_ROWS_DEFAULT 10000000
#define BENCH_BUILD_TXN 100000 /* rows per transaction while building the big file */
#define BENCH_TARGETS 100000 /* distinct targets in the big file */
#define BENCH_SPAN_MS (30LL * 86400000LL) /* the big file covers 30 days */
#define BENCH_T0_MS 1700000000000LL /* its first row */
#define BENCH_QUERIES_DEFAULT 1000
#define BENCH_WARMUP 100
#define BENCH_QUERY_LIMIT 100
#define BENCH_TARGET_RATIO 0.80
#define BENCH_TARGET_P99_MS 20.0

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t s_rng = 0x9e3779b97f4a7c15ULL;
static uint64_t s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static const char *const s_kinds[] = {"Pod", "Service", "RayCluster", "RayJob"};
static const char *const s_verbs[] = {"create", "update", "patch",
                                      "delete", "status", "job-submit"};
static const char *const s_actors[] = {"scheduler", "submitter", "serve"};
static const int s_statuses[] = {201, 200, 200, 201, 409, 404, 500, 0};

/* The strings of one generated row, in a caller buffer. */
typedef struct {
    char cluster[8];
    char ns[16];
    char name[48];
    char corr[24];
    char msg[64];
    char summary[160];
    char rv[16];
} s_row_t;

/* Target t (0 .. BENCH_TARGETS-1) as cluster, kind, namespace, name. */
static const char *s_target(uint64_t t, s_row_t *r)
{
    snprintf(r->cluster, sizeof(r->cluster), "c%u", (unsigned)(t % 4));
    snprintf(r->ns, sizeof(r->ns), "ns%u", (unsigned)(t / 4 % 100));
    snprintf(r->name, sizeof(r->name), "raycluster-%u-worker-%u", (unsigned)(t / 400),
             (unsigned)(t % 400));
    return s_kinds[t / 4 % 4];
}

/* Row i of a data set spread over span_ms. */
static void s_make(uint64_t i, int64_t span_ms, uint64_t nrows, s_row_t *r, store_audit_t *a)
{
    uint64_t t = s_rand() % BENCH_TARGETS;
    const char *kind = s_target(t, r);
    int st = s_statuses[i % 8];
    snprintf(r->corr, sizeof(r->corr), "%016" PRIx64, (uint64_t)((i / 8) * 0x9e3779b97f4a7c15ULL));
    snprintf(r->msg, sizeof(r->msg), "wanted %u workers, have %u", (unsigned)(i % 9),
             (unsigned)(i % 7));
    snprintf(r->summary, sizeof(r->summary),
             "{\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},"
             "\"spec\":{\"replicas\":%u}}",
             kind, r->name, r->ns, (unsigned)(i % 16));
    snprintf(r->rv, sizeof(r->rv), "%" PRIu64, 1000 + i);
    *a = (store_audit_t){
        .time_ms = BENCH_T0_MS + (int64_t)((double)i * (double)span_ms / (double)nrows),
        .actor_service = s_actors[i % 3],
        .actor_replica = "scheduler/0",
        .actor_version = "bench",
        .cluster = r->cluster,
        .target_group = "",
        .target_kind = kind,
        .target_namespace = r->ns,
        .target_name = r->name,
        .target_uid = NULL,
        .verb = s_verbs[i % 6],
        .reason = "CreatedWorkerPod",
        .message = r->msg,
        .cause_key = "ray.io/RayCluster/ns/x",
        .cause_generation = 1 + (int64_t)(i % 5),
        .cause_resource_version = r->rv,
        .cause_event_id = i + 1,
        .correlation_id = r->corr,
        .request_summary = r->summary,
        .result_status = st,
        .result_error = st == 0 || st >= 400 ? "conflict" : NULL,
        .latency_ms = (int64_t)(i % 40),
    };
}

#define S_INSERT                                                                                   \
    "INSERT INTO audit (" STORE_AUDIT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "     \
    "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"

static void s_bt(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Binds and steps one row the way the store stores it. Returns an SQLite code. */
static int s_insert(sqlite3_stmt *st, const store_audit_t *a)
{
    sqlite3_bind_int64(st, 1, a->time_ms);
    s_bt(st, 2, a->actor_service);
    s_bt(st, 3, a->actor_replica);
    s_bt(st, 4, a->actor_version);
    s_bt(st, 5, a->cluster);
    s_bt(st, 6, a->target_group);
    s_bt(st, 7, a->target_kind);
    s_bt(st, 8, a->target_namespace);
    s_bt(st, 9, a->target_name);
    s_bt(st, 10, a->target_uid);
    s_bt(st, 11, a->verb);
    s_bt(st, 12, a->reason);
    s_bt(st, 13, a->message);
    s_bt(st, 14, a->cause_key);
    sqlite3_bind_int64(st, 15, a->cause_generation);
    s_bt(st, 16, a->cause_resource_version);
    sqlite3_bind_int64(st, 17, (int64_t)a->cause_event_id);
    s_bt(st, 18, a->correlation_id);
    s_bt(st, 19, a->request_summary);
    sqlite3_bind_int(st, 20, a->result_status);
    s_bt(st, 21, a->result_error);
    sqlite3_bind_int64(st, 22, a->latency_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void s_rm(const char *path)
{
    char p[4200];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

/* A fresh file with the store's schema and pragmas. */
static int s_fresh(const char *path)
{
    s_rm(path);
    int err = 0;
    store_t *s = store_open(path, STORE_READWRITE, &err);
    if (!s)
        return -1;
    store_destroy(&s);
    return 0;
}

/* (a) one run of n pre-generated rows; returns rows/s or -1. */
static double s_run_store(const char *path, const store_audit_t *rows, size_t n, size_t batch)
{
    if (s_fresh(path))
        return -1;
    int err = 0;
    store_t *s = store_open(path, STORE_READWRITE, &err);
    if (!s || store_set_batch_max(s, batch) != 0)
        return -1;
    double t0 = s_now();
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = store_audit_append(s, &rows[i]);
        if (!rc && (i + 1) % batch == 0)
            rc = store_flush(s);
    }
    if (!rc)
        rc = store_flush(s);
    double dt = s_now() - t0;
    store_destroy(&s);
    return rc ? -1 : (double)n / dt;
}

static double s_run_plain(const char *path, const store_audit_t *rows, size_t n, size_t batch)
{
    if (s_fresh(path))
        return -1;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    double r = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        goto done;
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS_DEFAULT);
    if (sqlite3_exec(db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                     "PRAGMA foreign_keys = ON",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, S_INSERT, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        goto done;
    double t0 = s_now();
    for (size_t i = 0; i < n; i += batch) {
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            goto done;
        for (size_t j = i; j < n && j < i + batch; j++)
            if (s_insert(st, &rows[j]) != SQLITE_OK)
                goto done;
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            goto done;
    }
    r = (double)n / (s_now() - t0);
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return r;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(double), s_cmp);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* Reads bench_meta.rows of a complete big file, or -1. */
static int64_t s_big_rows(const char *path)
{
    if (access(path, F_OK) != 0)
        return -1;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT rows FROM bench_meta", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Builds the big file. Returns 0 or -1. */
static int s_build(const char *path, uint64_t nrows)
{
    if (s_fresh(path))
        return -1;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char **idx_sql = NULL;
    int nidx = 0;
    int ret = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        goto done;
    // Save the audit indexes' definitions, drop them, load, recreate them.
    if (sqlite3_prepare_v2(db,
                           "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                           "tbl_name = 'audit' AND sql IS NOT NULL",
                           -1, &st, NULL) != SQLITE_OK)
        goto done;
    idx_sql = calloc(16, sizeof(char *));
    char drops[2048] = "";
    size_t dl = 0;
    while (idx_sql && nidx < 16 && sqlite3_step(st) == SQLITE_ROW) {
        idx_sql[nidx++] = strdup((const char *)sqlite3_column_text(st, 1));
        dl += (size_t)snprintf(drops + dl, sizeof(drops) - dl, "DROP INDEX %s;",
                               (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!idx_sql || dl >= sizeof(drops) ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; "
                     "PRAGMA cache_size = -262144",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, drops, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, S_INSERT, -1, &st, NULL) != SQLITE_OK)
        goto done;
    double t0 = s_now();
    s_rng = 0x1234567887654321ULL;
    for (uint64_t i = 0; i < nrows; i++) {
        if (i % BENCH_BUILD_TXN == 0 && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            goto done;
        s_row_t r;
        store_audit_t a;
        s_make(i, BENCH_SPAN_MS, nrows, &r, &a);
        if (s_insert(st, &a) != SQLITE_OK)
            goto done;
        if ((i + 1) % BENCH_BUILD_TXN == 0 || i + 1 == nrows) {
            if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                goto done;
            if ((i + 1) % 2000000 == 0) {
                printf("  ... %" PRIu64 " rows (%.0f s)\n", i + 1, s_now() - t0);
                fflush(stdout);
            }
        }
    }
    double t1 = s_now();
    for (int i = 0; i < nidx; i++)
        if (sqlite3_exec(db, idx_sql[i], NULL, NULL, NULL) != SQLITE_OK)
            goto done;
    double t2 = s_now();
    char meta[128];
    snprintf(meta, sizeof(meta),
             "CREATE TABLE bench_meta (rows INTEGER); INSERT INTO bench_meta VALUES (%" PRIu64 ")",
             nrows);
    if (sqlite3_exec(db, meta, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK)
        goto done;
    printf("built %" PRIu64 " rows in %.1f s (inserts %.1f s, %.0f rows/s; %d indexes %.1f s)\n",
           nrows, s_now() - t0, t1 - t0, (double)nrows / (t1 - t0), nidx, t2 - t1);
    ret = 0;
done:
    if (ret)
        fprintf(stderr, "bench-audit: build failed: %s\n", db ? sqlite3_errmsg(db) : "open");
    sqlite3_finalize(st);
    sqlite3_close(db);
    for (int i = 0; i < nidx; i++)
        free(idx_sql[i]);
    free(idx_sql);
    return ret;
}

/* One timed query of `kind` (0 target, 1 window newest 100, 2 window all); returns ms or -1. */
static double s_query(store_t *s, int kind, uint64_t nrows, size_t *nout)
{
    s_row_t r;
    store_audit_list_t l;
    int rc;
    double t0;
    if (kind == 0) {
        const char *k = s_target(s_rand() % BENCH_TARGETS, &r);
        t0 = s_now();
        rc = store_audit_query_target(s, r.cluster, k, r.ns, r.name, 0, 0, BENCH_QUERY_LIMIT, &l);
    } else {
        int64_t w = kind == 1 ? 3600000 : 60000;
        int64_t since = BENCH_T0_MS + (int64_t)(s_rand() % (uint64_t)(BENCH_SPAN_MS - w));
        store_audit_filter_t f = {.since_ms = since,
                                  .until_ms = since + w,
                                  .limit = kind == 1 ? BENCH_QUERY_LIMIT : STORE_LIST_MAX,
                                  .order = STORE_AUDIT_NEWEST};
        t0 = s_now();
        rc = store_audit_query(s, &f, &l);
    }
    double ms = (s_now() - t0) * 1000;
    (void)nrows;
    *nout = l.n;
    store_audit_list_free(&l);
    return rc ? -1 : ms;
}

int main(int argc, char **argv)
{
    size_t ingest = BENCH_INGEST_ROWS_DEFAULT;
    size_t batch = BENCH_BATCH_DEFAULT;
    uint64_t big = BENCH_BIG_ROWS_DEFAULT;
    size_t queries = BENCH_QUERIES_DEFAULT;
    bool skip_big = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            ingest = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--big-rows") == 0 && i + 1 < argc)
            big = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc)
            queries = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--ingest-only") == 0)
            skip_big = true;
        else {
            fprintf(stderr, "usage: bench-audit [--rows N] [--batch N] [--big-rows N] "
                            "[--queries N] [--ingest-only]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (ingest < 1 || batch < 1 || batch > STORE_QUEUE_MAX_OPS || big < 1000 || queries < 1)
        return 2;
    log_setup("bench-audit", LOG_WARN, 2);

    // (a) ingest
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char path[4096];
    snprintf(path, sizeof(path), "%s/rf-bench-audit-ingest-%d.db", dir, (int)getpid());
    store_audit_t *rows = calloc(ingest, sizeof(*rows));
    s_row_t *strs = calloc(ingest, sizeof(*strs));
    if (!rows || !strs)
        return 1;
    for (size_t i = 0; i < ingest; i++)
        s_make(i, 86400000, ingest, &strs[i], &rows[i]);
    double rs[BENCH_RUNS];
    double rp[BENCH_RUNS];
    for (int r = 0; r < BENCH_RUNS; r++) {
        if (r % 2 == 0) {
            rs[r] = s_run_store(path, rows, ingest, batch);
            rp[r] = s_run_plain(path, rows, ingest, batch);
        } else {
            rp[r] = s_run_plain(path, rows, ingest, batch);
            rs[r] = s_run_store(path, rows, ingest, batch);
        }
        if (rs[r] < 0 || rp[r] < 0) {
            fprintf(stderr, "bench-audit: an ingest run failed\n");
            return 1;
        }
    }
    s_rm(path);
    free(rows);
    free(strs);
    double ms_ = s_pct(rs, BENCH_RUNS, 0.5);
    double mp = s_pct(rp, BENCH_RUNS, 0.5);
    printf("bench-audit (a) ingest: %zu rows per run, batches of %zu, %d runs each side "
           "alternating, files in %s\n",
           ingest, batch, BENCH_RUNS, dir);
    printf("%-34s %14s %14s %8s %8s\n", "workload", "store rows/s", "plain rows/s", "ratio",
           "target");
    printf("%-34s %14.0f %14.0f %8.2f %8s  %s\n", "audit append (median)", ms_, mp, ms_ / mp,
           ">=0.80", ms_ / mp >= BENCH_TARGET_RATIO ? "MET" : "MISSED");
    fflush(stdout);
    if (skip_big)
        return 0;

    // (b) query latency over the big file
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof(path), "%s/rayfleet-bench-audit-%" PRIu64 ".db", tmp, big);
    int64_t have = s_big_rows(path);
    if (have == (int64_t)big) {
        printf("bench-audit (b): reusing %s (%" PRIu64 " rows, built by an earlier run)\n", path,
               big);
    } else {
        printf("bench-audit (b): building %s with %" PRIu64 " rows (once; reused later)\n", path,
               big);
        fflush(stdout);
        if (s_build(path, big) != 0)
            return 1;
    }
    // Queries are measured with the file in the page cache (a reused file may have been
    // evicted): read it once sequentially first, and say how long that took.
    double tw = s_now();
    FILE *wf = fopen(path, "rb");
    static char wbuf[1 << 20];
    size_t wbytes = 0;
    while (wf && !feof(wf) && !ferror(wf))
        wbytes += fread(wbuf, 1, sizeof(wbuf), wf);
    if (wf)
        fclose(wf);
    printf("page cache warmed: read %.1f GB in %.1f s; latencies below are warm-cache\n",
           (double)wbytes / 1e9, s_now() - tw);
    int err = 0;
    store_t *s = store_open(path, STORE_READONLY, &err);
    if (!s) {
        fprintf(stderr, "bench-audit: cannot open %s read-only\n", path);
        return 1;
    }
    static const char *const names[] = {"by target, newest 100", "by 1h window, newest 100",
                                        "by 1min window, all rows"};
    printf("%-34s %8s %10s %10s %10s %8s\n",
           "query ("
           "store API, read-only)",
           "queries", "rows/query", "p50 ms", "p99 ms", "target");
    double *lat = calloc(queries, sizeof(double));
    if (!lat)
        return 1;
    int code = 0;
    s_rng = 0xabcdef0123456789ULL;
    for (int k = 0; k < 3; k++) {
        size_t n = 0;
        size_t total = 0;
        for (int w = 0; w < BENCH_WARMUP; w++)
            s_query(s, k, big, &n);
        for (size_t q = 0; q < queries; q++) {
            lat[q] = s_query(s, k, big, &n);
            total += n;
            if (lat[q] < 0) {
                fprintf(stderr, "bench-audit: query failed\n");
                return 1;
            }
        }
        double p50 = s_pct(lat, queries, 0.5);
        double p99 = s_pct(lat, queries, 0.99);
        printf("%-34s %8zu %10.1f %10.3f %10.3f %8s  %s\n", names[k], queries,
               (double)total / (double)queries, p50, p99, "<=20ms",
               p99 <= BENCH_TARGET_P99_MS ? "MET" : "MISSED");
    }
    free(lat);
    store_destroy(&s);
    return code;
}
