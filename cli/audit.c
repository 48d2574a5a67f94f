/*
 * audit: see audit.h.
 */
#include "audit.h"

#include "args.h"
#include "buf.h"
#include "err.h"
#include "fleetdb.h"
#include "launch.h"
#include "rftime.h"
#include "proc.h"
#include "sql.h"
#include "store.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_DAY_MS 86400000LL /* one day, for durations like 7d */
#define S_CAUSE_MAX 512 /* longest CAUSE cell */

static const args_opt_t s_list_opts[] = {
    {"state-dir", "DIR",
     "State directory of 'rayfleetctl up' (default " LAUNCH_DEFAULT_STATE_DIR ")."},
    {"db", "FILE", "Audit database to read (default STATE/" AUDIT_DB_FILE ")."},
    {"context", "NAME",
     "With 'up --members': only the audit files of this cluster (member-<i>: "
     "STATE/member-<i>.*.db; management: the management set). Default: every cluster's files "
     "that fit in one connection (a note names the others)."},
    {"cluster", "NAME", "Only this member cluster."},
    {"namespace", "NS", "Only targets in this namespace."},
    {"kind", "KIND", "Only targets of this kind (Pod, Service, RayCluster, ...)."},
    {"name", "NAME", "Only targets with this name."},
    {"verb", "VERB", "Only this verb (create, update, patch, delete, status, job-submit, ...)."},
    {"result", "RESULT", "NNN (a status), Nxx (a class, e.g. 2xx), ok, or error."},
    {"actor", "SERVICE", "Only this actor service (scheduler, submitter, ...)."},
    {"correlation", "ID", "Only the actions of this reconcile."},
    {"since", "TIME", "From this time: RFC 3339 or a duration back from now (15m, 2h, 7d)."},
    {"until", "TIME", "Before this time (exclusive): RFC 3339 or a duration back from now."},
    {"limit", "N", "The newest N rows (default 100; export: all)."},
    {"output", "FORMAT", "table (default), json (an array; JSON lines with --follow), jsonl, csv."},
    {"follow", NULL, "Keep polling (every 500 ms) and print new rows until interrupted."},
    {"explain", NULL, "Print SQLite's query plan (the index used) instead of the rows."},
    {NULL, NULL, NULL},
};

static const args_opt_t s_prune_opts[] = {
    {"state-dir", "DIR",
     "State directory of 'rayfleetctl up' (default " LAUNCH_DEFAULT_STATE_DIR ")."},
    {"db", "FILE", "Audit database (default STATE/" AUDIT_DB_FILE ")."},
    {"context", "NAME",
     "With 'up --members': only the audit files of this cluster (member-<i> or management)."},
    {"older-than", "DURATION", "Delete the rows older than now minus this (e.g. 30d, 12h)."},
    {"chunk", "N", "Rows deleted per transaction (default 10000)."},
    {"pause", "DURATION", "Pause between chunks (default 50ms)."},
    {"dry-run", NULL, "Only count the rows that would be deleted."},
    {NULL, NULL, NULL},
};

/* Parses a duration, with "d" (days) on top of args_parse_duration(). Returns 0 or -1. */
static int s_duration(const char *s, int64_t *out_ms)
{
    size_t n = strlen(s);
    if (n >= 2 && s[n - 1] == 'd') {
        char *end = NULL;
        double v = strtod(s, &end);
        if (end != s + n - 1 || v < 0 || v > 100000)
            return -1;
        *out_ms = (int64_t)(v * (double)S_DAY_MS);
        return 0;
    }
    return args_parse_duration(s, out_ms);
}

/* --since/--until: RFC 3339 (milliseconds kept) or a duration back from now_ms. */
static int s_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    if (rftime_parse(s, out_ms) == 0)
        return 0;
    int64_t d = 0;
    if (s_duration(s, &d) != 0)
        return -1;
    *out_ms = now_ms - d;
    return 0;
}

/* --result into the filter. Returns 0 or -1. */
static int s_result(const char *s, store_audit_filter_t *f)
{
    size_t n = strlen(s);
    if (strcmp(s, "error") == 0) {
        f->errors_only = true;
        return 0;
    }
    if (strcmp(s, "ok") == 0) {
        f->status_min = 1;
        f->status_max = 399;
        return 0;
    }
    if (n == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] | 32) == 'x' && (s[2] | 32) == 'x') {
        f->status_min = (s[0] - '0') * 100;
        f->status_max = f->status_min + 99;
        return 0;
    }
    if (n == 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
        s[2] <= '9') {
        f->status_min = f->status_max = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
        return 0;
    }
    return -1;
}

/* RFC 3339 UTC with milliseconds ("-" when out of range). */
static void s_rfc3339(int64_t ms, char *out, size_t size)
{
    if (rftime_format(ms, RFTIME_MILLI, out, size) != 0)
        snprintf(out, size, "-");
}

/* The json/csv columns: id, time, then the 22 columns of the statement. */
#define S_FULL_COLS (2 + STORE_AUDIT_NCOLS - 1)
static const char *const s_full_names[S_FULL_COLS] = {"id", "time",
                                                      STORE_AUDIT_COLUMN_LIST(STORE_AUDIT_NAME_)};
#define S_TABLE_COLS 12
static const char *const s_table_names[S_TABLE_COLS] = {"ID",     "TIME(UTC)",   "ACTOR",  "VERB",
                                                        "RESULT", "KIND",        "OBJECT", "REASON",
                                                        "CAUSE",  "CORRELATION", "MS",     "ERROR"};
/* The table with a CLUSTER column after ACTOR: when the files of several clusters are read
 * (a federation's members, fleetdb.h). */
#define S_CLUSTER_COL 3 /* where CLUSTER goes */
static const char *const s_table_cluster_names[S_TABLE_COLS + 1] = {
    "ID",     "TIME(UTC)", "ACTOR", "CLUSTER",     "VERB", "RESULT", "KIND",
    "OBJECT", "REASON",    "CAUSE", "CORRELATION", "MS",   "ERROR"};

static sql_val_t s_text(const char *s)
{
    return (sql_val_t){.type = s ? SQLITE_TEXT : SQLITE_NULL, .s = s, .len = s ? strlen(s) : 0};
}

static const char *s_coltext(sqlite3_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st, col);
}

/* Writes the current row of an audit statement (the table with a CLUSTER column when
 * `cluster`). Returns 0 or a negative err_t. */
static int s_print_row(sql_out_t *out, sql_fmt_t fmt, bool cluster, sqlite3_stmt *st)
{
    char when[40];
    s_rfc3339(sqlite3_column_int64(st, 0), when, sizeof(when));
    if (fmt != SQL_OUT_TABLE) {
        sql_val_t v[S_FULL_COLS];
        sql_val_from(st, STORE_AUDIT_NCOLS - 1, &v[0]);
        v[1] = s_text(when);
        for (int i = 0; i < STORE_AUDIT_NCOLS - 1; i++)
            sql_val_from(st, i, &v[2 + i]);
        return sql_out_row(out, v);
    }
    char object[600];
    char cause[S_CAUSE_MAX];
    char actor[300];
    snprintf(object, sizeof(object), "%s/%s", s_coltext(st, 7) ? s_coltext(st, 7) : "",
             s_coltext(st, 8) ? s_coltext(st, 8) : "");
    buf_t c;
    buf_init(&c, sizeof(cause) - 1);
    buf_puts(&c, s_coltext(st, 13) ? s_coltext(st, 13) : "");
    if (sqlite3_column_type(st, 14) != SQLITE_NULL)
        buf_printf(&c, " gen %" PRId64, (int64_t)sqlite3_column_int64(st, 14));
    if (s_coltext(st, 15))
        buf_printf(&c, " rv %s", s_coltext(st, 15));
    if (sqlite3_column_type(st, 16) != SQLITE_NULL)
        buf_printf(&c, " ev %" PRId64, (int64_t)sqlite3_column_int64(st, 16));
    snprintf(cause, sizeof(cause), "%s", buf_str(&c));
    buf_free(&c);
    const char *svc = s_coltext(st, 1);
    const char *rep = s_coltext(st, 2);
    snprintf(actor, sizeof(actor), "%s", rep && *rep ? rep : svc ? svc : "");
    sql_val_t v[S_TABLE_COLS];
    sql_val_from(st, STORE_AUDIT_NCOLS - 1, &v[0]);
    v[1] = s_text(when);
    v[2] = s_text(actor);
    sql_val_from(st, 10, &v[3]);
    sql_val_from(st, 19, &v[4]);
    sql_val_from(st, 6, &v[5]);
    v[6] = s_text(object);
    sql_val_from(st, 11, &v[7]);
    v[8] = s_text(cause);
    sql_val_from(st, 17, &v[9]);
    sql_val_from(st, 21, &v[10]);
    sql_val_from(st, 20, &v[11]);
    if (!cluster)
        return sql_out_row(out, v);
    sql_val_t w[S_TABLE_COLS + 1];
    for (int i = 0, j = 0; i < S_TABLE_COLS + 1; i++)
        if (i == S_CLUSTER_COL)
            sql_val_from(st, 4, &w[i]);
        else
            w[i] = v[j++];
    return sql_out_row(out, w);
}

/* Runs the query of `f` on every file (ceil: see fleetdb_audit_prepare()) and prints its rows;
 * *last_id (may be NULL) gets the largest id seen. Returns 0, or 1 after printing why. */
static int s_run(fleetdb_t *fdb, const store_audit_filter_t *f, const int64_t *ceil, sql_out_t *out,
                 sql_fmt_t fmt, int64_t *last_id, size_t *nrows)
{
    store_query_t *q = fleetdb_query(fdb);
    sqlite3_stmt *st = NULL;
    int rc = fleetdb_audit_prepare(fdb, f, -1, ceil, &st, NULL);
    if (rc) {
        fprintf(stderr, "rayfleetctl audit: cannot query the audit table: %s\n",
                rc == ERR_DB ? sqlite3_errmsg(store_query_handle(q)) : err_str(rc));
        return 1;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, STORE_AUDIT_NCOLS - 1);
        if (last_id && id > *last_id)
            *last_id = id;
        if (nrows)
            (*nrows)++;
        if (s_print_row(out, fmt, fleetdb_set_count(fdb) > 1, st) != 0) {
            sqlite3_finalize(st);
            fprintf(stderr, "rayfleetctl audit: cannot write the output\n");
            return 1;
        }
    }
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "rayfleetctl audit: reading the audit table: %s\n",
                sqlite3_errmsg(store_query_handle(q)));
        sqlite3_finalize(st);
        return 1;
    }
    sqlite3_finalize(st);
    return 0;
}

/* Follows every file: prints the rows appended after last[k] to file k, merged by time
 * (time_ms, then file, then id), AUDIT_FOLLOW_BATCH rows of a file per query, until a poll is not
 * cut by the bound; updates last[]. Returns 0, or 1 after printing why. */
static int s_follow_poll(fleetdb_t *fdb, const store_audit_filter_t *f, sql_out_t *out,
                         sql_fmt_t fmt, int64_t *last)
{
    size_t n = fleetdb_count(fdb);
    bool cut[FLEETDB_MAX_FILES];
    for (size_t k = 0; k < n; k++)
        cut[k] = true;
    for (bool any = true; any;) {
        // Every row up to max[k] is committed when it is read (one writer per file, atomic
        // commits), so when a file's poll is not cut by the batch bound, its next one starts
        // after max[k] and does not rescan rows that did not match.
        int64_t max[FLEETDB_MAX_FILES];
        fleetdb_max_ids(fdb, max);
        sqlite3_stmt *st[FLEETDB_MAX_FILES] = {0};
        bool has[FLEETDB_MAX_FILES] = {0};
        size_t got[FLEETDB_MAX_FILES] = {0};
        int code = 0;
        for (size_t k = 0; k < n && !code; k++) {
            if (!cut[k])
                continue;
            store_audit_filter_t g = *f;
            g.order = STORE_AUDIT_BY_ID;
            g.after_id = last[k];
            g.limit = AUDIT_FOLLOW_BATCH;
            int rc = fleetdb_audit_prepare(fdb, &g, (int)k, NULL, &st[k], NULL);
            if (rc) {
                fprintf(stderr, "rayfleetctl audit: cannot query the audit table of %s: %s\n",
                        fleetdb_path(fdb, k),
                        rc == ERR_DB ? sqlite3_errmsg(store_query_handle(fleetdb_query(fdb)))
                                     : err_str(rc));
                code = 1;
                break;
            }
            has[k] = sqlite3_step(st[k]) == SQLITE_ROW;
        }
        for (;;) {
            if (code)
                break;
            int best = -1;
            for (size_t k = 0; k < n; k++) {
                if (!has[k])
                    continue;
                if (best < 0 || sqlite3_column_int64(st[k], 0) < sqlite3_column_int64(st[best], 0))
                    best = (int)k;
            }
            if (best < 0)
                break;
            int64_t id = sqlite3_column_int64(st[best], STORE_AUDIT_NCOLS - 1);
            if (id > last[best])
                last[best] = id;
            got[best]++;
            if (s_print_row(out, fmt, fleetdb_set_count(fdb) > 1, st[best]) != 0) {
                fprintf(stderr, "rayfleetctl audit: cannot write the output\n");
                code = 1;
                break;
            }
            has[best] = sqlite3_step(st[best]) == SQLITE_ROW;
        }
        any = false;
        for (size_t k = 0; k < n; k++) {
            sqlite3_finalize(st[k]);
            if (!cut[k])
                continue;
            cut[k] = got[k] >= AUDIT_FOLLOW_BATCH;
            if (!cut[k] && max[k] > last[k])
                last[k] = max[k];
            any = any || cut[k];
        }
        if (code)
            return code;
        sql_out_flush(out);
    }
    return 0;
}

/* Prints the EXPLAIN QUERY PLAN of the query of `f`. */
static int s_explain(fleetdb_t *fdb, const store_audit_filter_t *f)
{
    store_query_t *q = fleetdb_query(fdb);
    buf_t sql;
    buf_init(&sql, 8192);
    buf_t plan;
    buf_init(&plan, STORE_QUERY_SQL_MAX);
    sqlite3_stmt *st = NULL;
    int code = 1;
    int rc = fleetdb_audit_prepare(fdb, f, -1, NULL, &st, &sql);
    sqlite3_finalize(st);
    st = NULL;
    if (rc || buf_puts(&plan, "EXPLAIN QUERY PLAN ") || buf_puts(&plan, buf_str(&sql))) {
        fprintf(stderr, "rayfleetctl audit: cannot query the audit table: %s\n",
                rc == ERR_DB ? sqlite3_errmsg(store_query_handle(q))
                             : err_str(rc ? rc : ERR_TOOBIG));
        goto done;
    }
    buf_t why;
    buf_init(&why, STORE_QUERY_WHY_MAX);
    rc = store_query_prepare(q, buf_str(&plan), &st, &why);
    if (rc) {
        fprintf(stderr, "rayfleetctl audit: explain: %s\n", buf_str(&why));
        buf_free(&why);
        goto done;
    }
    buf_free(&why);
    if (fleetdb_count(fdb) > 1)
        printf("FILES: %zu of %zu cluster(s) (the union of the audit tables of every "
               "scheduler replica and controller read)\n",
               fleetdb_count(fdb), fleetdb_set_count(fdb));
    printf("SQL: %s\n", buf_str(&sql));
    while (sqlite3_step(st) == SQLITE_ROW)
        printf("QUERY PLAN: %s\n", s_coltext(st, 3) ? s_coltext(st, 3) : "");
    code = 0;
done:
    sqlite3_finalize(st);
    buf_free(&sql);
    buf_free(&plan);
    return code;
}

/* The audit databases: --db FILE alone, or the files of the state dir fleetdb_select() picks
 * (--context). Returns 0, 1 (none found, bad federation.yaml or --context) or 2 (usage);
 * messages printed, and the note when members' files were left out. */
static int s_files(const args_t *a, const char *cmd, fleetdb_files_t *files)
{
    memset(files, 0, sizeof(*files));
    if (args_has(a, "state-dir") && args_has(a, "db")) {
        fprintf(stderr, "rayfleetctl %s: give --state-dir or --db, not both\n", cmd);
        return 2;
    }
    if (args_has(a, "context") && args_has(a, "db")) {
        fprintf(stderr, "rayfleetctl %s: give --context or --db, not both\n", cmd);
        return 2;
    }
    if (args_has(a, "db")) {
        snprintf(files->path[0], PATH_MAX, "%s", args_str(a, "db"));
        files->n = 1;
        if (access(files->path[0], F_OK) != 0) {
            fprintf(stderr, "rayfleetctl %s: no audit database at %s\n", cmd, files->path[0]);
            return 1;
        }
        return 0;
    }
    const char *dir =
        args_str(a, "state-dir") ? args_str(a, "state-dir") : LAUNCH_DEFAULT_STATE_DIR;
    buf_t err;
    buf_init(&err, 4096);
    int rc = fleetdb_select(dir, args_str(a, "context"), 0, files, &err);
    if (rc != 0)
        fprintf(stderr, "rayfleetctl %s: %s\n", cmd,
                buf_str(&err)[0] ? buf_str(&err) : err_str(rc));
    buf_free(&err);
    if (rc != 0)
        return 1;
    fleetdb_note_skipped(files, cmd);
    return 0;
}

/* Prunes one file (see s_prune). Returns 0 or 1 (printed); adds to *total. */
static int s_prune_file(const char *db, int64_t before, int64_t chunk, int64_t pause, bool many,
                        uint64_t *total_all)
{
    char when[40];
    s_rfc3339(before, when, sizeof(when));
    int err = 0;
    store_t *s = store_open(db, STORE_READWRITE | STORE_AUDIT, &err);
    if (!s) {
        fprintf(stderr, "rayfleetctl audit prune: cannot open %s for writing: %s\n", db,
                err_str(err));
        return 1;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t total = 0;
    unsigned chunks = 0;
    int busy = 0;
    int code = 0;
    for (;;) {
        size_t n = 0;
        int rc = store_audit_prune_chunk(s, before, (size_t)chunk, &n);
        if (rc == ERR_BUSY && ++busy <= AUDIT_PRUNE_BUSY_RETRIES) {
            if (proc_sleep(pause ? pause : 10))
                break;
            continue;
        }
        if (rc) {
            fprintf(stderr, "rayfleetctl audit prune: %s: %s after %" PRIu64 " rows\n", db,
                    err_str(rc), total);
            code = 1;
            break;
        }
        busy = 0;
        total += n;
        chunks++;
        if (n < (size_t)chunk)
            break;
        if (pause && proc_sleep(pause)) {
            fprintf(stderr, "rayfleetctl audit prune: interrupted\n");
            code = 1;
            break;
        }
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("audit prune: deleted %" PRIu64 " rows older than %s in %u chunks of at most %" PRId64
           " (%" PRId64 " ms)%s%s\n",
           total, when, chunks, chunk, ms, many ? " from " : "", many ? db : "");
    *total_all += total;
    store_destroy(&s);
    return code;
}

/* Counts (dry run) the rows of one file older than `before`. Returns 0 or 1 (printed). */
static int s_prune_count(const char *db, int64_t before, int64_t *count)
{
    int err = 0;
    store_query_t *q = store_query_open(db, NULL, 0, &err);
    sqlite3_stmt *st = NULL;
    buf_t why;
    buf_init(&why, STORE_QUERY_WHY_MAX);
    int code = 1;
    if (q &&
        store_query_prepare(q, "SELECT count(*) FROM audit WHERE time_ms < ?1", &st, &why) == 0) {
        sqlite3_bind_int64(st, 1, before);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *count = sqlite3_column_int64(st, 0);
            code = 0;
        }
    }
    if (code)
        fprintf(stderr, "rayfleetctl audit prune: cannot count in %s: %s\n", db,
                q ? (buf_str(&why)[0] ? buf_str(&why) : sqlite3_errmsg(store_query_handle(q)))
                  : err_str(err));
    sqlite3_finalize(st);
    buf_free(&why);
    store_query_close(&q);
    return code;
}

static int s_prune(int argc, char **argv)
{
    args_t a;
    int pr = args_parse("audit prune",
                        "--older-than DURATION [--state-dir DIR [--context NAME] | --db FILE]",
                        "Deletes the audit rows older than now minus DURATION, in chunks of "
                        "--chunk rows, each in its own short transaction, with --pause between "
                        "them. An administrative writer: it takes the write lock of the "
                        "scheduler's database one chunk at a time, so the scheduler (the file's "
                        "normal writer) is never blocked for long and loses nothing.",
                        s_prune_opts, 0, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    int64_t older = 0;
    if (!args_has(&a, "older-than") || s_duration(args_str(&a, "older-than"), &older) != 0) {
        fprintf(stderr,
                "rayfleetctl audit prune: --older-than: give a duration like 30d, 12h or "
                "90m (got '%s')\n",
                args_str(&a, "older-than") ? args_str(&a, "older-than") : "");
        return 2;
    }
    int64_t chunk = 0;
    int64_t pause = 0;
    if (args_int(&a, "audit prune", "chunk", 1, STORE_PRUNE_CHUNK_MAX, AUDIT_PRUNE_CHUNK_DEFAULT,
                 &chunk) != 0 ||
        args_duration(&a, "audit prune", "pause", 0, 60000, AUDIT_PRUNE_PAUSE_DEFAULT_MS, &pause) !=
            0)
        return 2;
    fleetdb_files_t *files = malloc(sizeof(*files));
    if (!files)
        return 1;
    int code = s_files(&a, "audit prune", files);
    if (code) {
        free(files);
        return code;
    }
    int64_t before = store_wall_ms() - older;
    char when[40];
    s_rfc3339(before, when, sizeof(when));
    bool many = files->n > 1;
    if (args_has(&a, "dry-run")) {
        int64_t all = 0;
        for (size_t k = 0; k < files->n && !code; k++) {
            int64_t c = 0;
            code = s_prune_count(files->path[k], before, &c);
            all += c;
            if (!code && many)
                printf("audit prune: %" PRId64 " rows older than %s would be deleted from %s "
                       "(dry run)\n",
                       c, when, files->path[k]);
        }
        if (!code)
            printf("audit prune: %" PRId64 " rows older than %s would be deleted%s (dry run)\n",
                   all, when, many ? " in all" : "");
        free(files);
        return code;
    }
    uint64_t total = 0;
    for (size_t k = 0; k < files->n; k++)
        if (s_prune_file(files->path[k], before, chunk, pause, many, &total) != 0)
            code = 1;
    if (many)
        printf("audit prune: deleted %" PRIu64 " rows older than %s in all from %zu files\n", total,
               when, files->n);
    free(files);
    return code;
}

int audit_main(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "prune") == 0)
        return s_prune(argc - 1, argv + 1);
    bool export = argc >= 1 && strcmp(argv[0], "export") == 0;
    if (export) {
        argc--;
        argv++;
    }
    const char *cmd = export ? "audit export" : "audit";
    args_t a;
    int pr = args_parse(
        cmd,
        export ? "--output json|jsonl|csv [FILTERS] [--limit N] [--context NAME]"
               : "[FILTERS] [--output FORMAT] [--limit N] [--follow] [--explain] [--context NAME]\n"
                 "       rayfleetctl audit export --output json|csv [FILTERS]\n"
                 "       rayfleetctl audit prune --older-than DURATION",
        export ? "Writes every matching audit row, oldest first, as JSON or CSV."
               : "Lists the actions rayfleet took, with their causes (the audit table of the "
                 "scheduler's database, read-only): the newest rows that match, oldest first. "
                 "With 'up --members' every cluster's files are read as one (a CLUSTER column "
                 "says whose row it is), or one cluster's with --context NAME.",
        s_list_opts, 0, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    int64_t limit = 0;
    if (args_int(&a, cmd, "limit", 1, AUDIT_MAX_LIMIT, export ? 0 : AUDIT_DEFAULT_LIMIT, &limit) !=
        0)
        return 2;
    sql_fmt_t fmt = export ? SQL_OUT_JSON : SQL_OUT_TABLE;
    if (args_has(&a, "output") && sql_parse_format(args_str(&a, "output"), &fmt) != 0) {
        fprintf(stderr, "rayfleetctl %s: --output: must be table, json, jsonl or csv (got '%s')\n",
                cmd, args_str(&a, "output"));
        return 2;
    }
    if (export && fmt == SQL_OUT_TABLE) {
        fprintf(stderr, "rayfleetctl audit export: --output: must be json, jsonl or csv\n");
        return 2;
    }
    bool follow = args_has(&a, "follow");
    if (export && follow) {
        fprintf(stderr, "rayfleetctl audit export: --follow is not available for export\n");
        return 2;
    }
    if (follow && fmt == SQL_OUT_JSON)
        fmt = SQL_OUT_JSONL;
    store_audit_filter_t f = {.cluster = args_str(&a, "cluster"),
                              .ns = args_str(&a, "namespace"),
                              .kind = args_str(&a, "kind"),
                              .name = args_str(&a, "name"),
                              .verb = args_str(&a, "verb"),
                              .actor = args_str(&a, "actor"),
                              .correlation_id = args_str(&a, "correlation"),
                              .limit = (size_t)limit,
                              .order = export ? STORE_AUDIT_OLDEST : STORE_AUDIT_LAST};
    int64_t now = store_wall_ms();
    if (args_has(&a, "result") && s_result(args_str(&a, "result"), &f) != 0) {
        fprintf(stderr,
                "rayfleetctl %s: --result: must be a status (409), a class (2xx), ok or "
                "error (got '%s')\n",
                cmd, args_str(&a, "result"));
        return 2;
    }
    const char *tnames[2] = {"since", "until"};
    int64_t *tvals[2] = {&f.since_ms, &f.until_ms};
    for (int i = 0; i < 2; i++) {
        if (args_has(&a, tnames[i]) && s_time(args_str(&a, tnames[i]), now, tvals[i]) != 0) {
            fprintf(stderr,
                    "rayfleetctl %s: --%s: must be RFC 3339 (2025-01-31T12:00:00Z) or a "
                    "duration back from now (15m, 2h, 7d) (got '%s')\n",
                    cmd, tnames[i], args_str(&a, tnames[i]));
            return 2;
        }
    }
    fleetdb_files_t *files = malloc(sizeof(*files));
    if (!files)
        return 1;
    int fr = s_files(&a, cmd, files);
    int err = 0;
    fleetdb_t *fdb = fr ? NULL : fleetdb_open(files, NULL, &err);
    if (!fr && !fdb)
        fprintf(stderr, "rayfleetctl %s: cannot open %s%s read-only: %s\n", cmd, files->path[0],
                files->n > 1 ? " and the other files" : "", err_str(err));
    free(files);
    if (!fdb)
        return fr ? fr : 1;
    if (args_has(&a, "explain")) {
        int code = s_explain(fdb, &f);
        fleetdb_close(&fdb);
        return code;
    }
    bool clusters = fleetdb_set_count(fdb) > 1;
    sql_out_t *out = fmt != SQL_OUT_TABLE ? sql_out_new(stdout, fmt, S_FULL_COLS, s_full_names)
                     : clusters ? sql_out_new(stdout, fmt, S_TABLE_COLS + 1, s_table_cluster_names)
                                : sql_out_new(stdout, fmt, S_TABLE_COLS, s_table_names);
    if (!out) {
        fleetdb_close(&fdb);
        return 1;
    }
    // Rows committed from here on are followed, even those the first query does not show (with
    // several files the first query stops at these ids, so no row is printed twice).
    size_t nfiles = fleetdb_count(fdb);
    int64_t last[FLEETDB_MAX_FILES] = {0};
    if (follow)
        fleetdb_max_ids(fdb, last);
    size_t nrows = 0;
    int code = s_run(fdb, &f, follow && nfiles > 1 ? last : NULL, out, fmt,
                     nfiles == 1 ? &last[0] : NULL, &nrows);
    if (code == 0 && fmt == SQL_OUT_TABLE && !follow)
        printf("Audit rows (%zu, newest %" PRId64 " at most)\n", nrows, limit);
    if (code == 0)
        sql_out_flush(out);
    while (code == 0 && follow) {
        if (proc_sleep(AUDIT_FOLLOW_POLL_MS))
            break;
        code = s_follow_poll(fdb, &f, out, fmt, last);
    }
    sql_out_end(&out);
    fleetdb_close(&fdb);
    return code;
}
