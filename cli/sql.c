/*
 * sql: see sql.h.
 */
#include "sql.h"

#include "args.h"
#include "buf.h"
#include "err.h"
#include "fleetdb.h"
#include "launch.h"
#include "store.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sql_out {
    FILE *f; /* where to write (borrowed) */
    sql_fmt_t fmt; /* the format */
    int ncols; /* columns */
    char *names[SQL_MAX_COLS]; /* column names (owned) */
    char **cells; /* table: buffered rows * ncols owned cells */
    size_t nrows; /* table: buffered rows */
    size_t cap; /* table: rows allocated */
    size_t width[SQL_MAX_COLS]; /* table: column widths, fixed at the first flush */
    bool header_done; /* table/csv: header written; json: '[' written */
    uint64_t count; /* rows written */
};

int sql_parse_format(const char *s, sql_fmt_t *out)
{
    static const char *const names[] = {"table", "json", "jsonl", "csv"};
    for (int i = 0; s && i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (sql_fmt_t)i;
            return 0;
        }
    }
    return -1;
}

sql_out_t *sql_out_new(FILE *f, sql_fmt_t fmt, int ncols, const char *const *names)
{
    if (!f || ncols < 1 || ncols > SQL_MAX_COLS || !names)
        return NULL;
    sql_out_t *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->f = f;
    o->fmt = fmt;
    o->ncols = ncols;
    for (int i = 0; i < ncols; i++) {
        o->names[i] = strdup(names[i] ? names[i] : "");
        if (!o->names[i]) {
            sql_out_end(&o);
            return NULL;
        }
    }
    return o;
}

/* JSON string body of bytes s[0..len-1] (bytes >= 0x80 are passed as they are). */
static void s_json_str(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void s_hex(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02x", (unsigned char)s[i]);
}

static void s_json_val(FILE *f, const sql_val_t *v)
{
    size_t len = v->len > SQL_VALUE_MAX ? SQL_VALUE_MAX : v->len;
    switch (v->type) {
    case SQLITE_INTEGER:
        fprintf(f, "%" PRId64, v->i);
        break;
    case SQLITE_FLOAT:
        fprintf(f, "%.17g", v->d);
        break;
    case SQLITE_TEXT:
        s_json_str(f, v->s ? v->s : "", v->s ? len : 0);
        break;
    case SQLITE_BLOB:
        fputc('"', f);
        s_hex(f, v->s, v->s ? len : 0);
        fputc('"', f);
        break;
    default:
        fputs("null", f);
    }
}

static void s_csv_field(FILE *f, const char *s, size_t len)
{
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        fwrite(s, 1, len, f);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            fputc('"', f);
        fputc(s[i], f);
    }
    fputc('"', f);
}

static void s_csv_val(FILE *f, const sql_val_t *v)
{
    size_t len = v->len > SQL_VALUE_MAX ? SQL_VALUE_MAX : v->len;
    switch (v->type) {
    case SQLITE_INTEGER:
        fprintf(f, "%" PRId64, v->i);
        break;
    case SQLITE_FLOAT:
        fprintf(f, "%.17g", v->d);
        break;
    case SQLITE_TEXT:
        s_csv_field(f, v->s ? v->s : "", v->s ? len : 0);
        break;
    case SQLITE_BLOB:
        s_hex(f, v->s, v->s ? len : 0);
        break;
    default:
        break;
    }
}

/* A table cell: the value as text on one line, cut to SQL_CELL_MAX; "-" for NULL. */
static char *s_cell(const sql_val_t *v)
{
    char num[64];
    const char *s = "-";
    size_t len = 1;
    if (v->type == SQLITE_INTEGER) {
        snprintf(num, sizeof(num), "%" PRId64, v->i);
        s = num;
        len = strlen(num);
    } else if (v->type == SQLITE_FLOAT) {
        snprintf(num, sizeof(num), "%g", v->d);
        s = num;
        len = strlen(num);
    } else if (v->type == SQLITE_TEXT && v->s && v->len) {
        s = v->s;
        len = v->len;
    } else if (v->type == SQLITE_BLOB) {
        s = "(blob)";
        len = 6;
    }
    bool cut = len > SQL_CELL_MAX;
    if (cut)
        len = SQL_CELL_MAX - 3;
    char *c = malloc(len + 4);
    if (!c)
        return NULL;
    memcpy(c, s, len);
    if (cut) {
        // never end inside a UTF-8 sequence
        while (len > 0 && ((unsigned char)c[len] & 0xc0) == 0x80)
            len--;
        memcpy(c + len, "...", 3);
        len += 3;
    }
    c[len] = '\0';
    for (char *p = c; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
    return c;
}

int sql_out_row(sql_out_t *o, const sql_val_t *vals)
{
    if (!o || !vals)
        return ERR_INVAL;
    FILE *f = o->f;
    switch (o->fmt) {
    case SQL_OUT_TABLE: {
        if (o->nrows == o->cap) {
            size_t cap = o->cap ? o->cap * 2 : 64;
            char **c = realloc(o->cells, cap * (size_t)o->ncols * sizeof(char *));
            if (!c)
                return ERR_NOMEM;
            o->cells = c;
            o->cap = cap;
        }
        char **row = o->cells + o->nrows * (size_t)o->ncols;
        for (int i = 0; i < o->ncols; i++) {
            row[i] = s_cell(&vals[i]);
            if (!row[i]) {
                for (int j = 0; j < i; j++)
                    free(row[j]);
                return ERR_NOMEM;
            }
        }
        o->nrows++;
        break;
    }
    case SQL_OUT_JSON:
    case SQL_OUT_JSONL:
        if (o->fmt == SQL_OUT_JSON)
            fputs(o->header_done ? ",\n" : "[\n", f);
        o->header_done = true;
        fputc('{', f);
        for (int i = 0; i < o->ncols; i++) {
            if (i)
                fputc(',', f);
            s_json_str(f, o->names[i], strlen(o->names[i]));
            fputc(':', f);
            s_json_val(f, &vals[i]);
        }
        fputc('}', f);
        if (o->fmt == SQL_OUT_JSONL)
            fputc('\n', f);
        break;
    case SQL_OUT_CSV:
        if (!o->header_done) {
            for (int i = 0; i < o->ncols; i++) {
                if (i)
                    fputc(',', f);
                s_csv_field(f, o->names[i], strlen(o->names[i]));
            }
            fputc('\n', f);
            o->header_done = true;
        }
        for (int i = 0; i < o->ncols; i++) {
            if (i)
                fputc(',', f);
            s_csv_val(f, &vals[i]);
        }
        fputc('\n', f);
        break;
    }
    o->count++;
    return ferror(f) ? ERR_IO : 0;
}

int sql_out_flush(sql_out_t *o)
{
    if (!o)
        return ERR_INVAL;
    if (o->fmt == SQL_OUT_TABLE && (o->nrows || !o->header_done)) {
        FILE *f = o->f;
        if (!o->header_done) {
            for (int i = 0; i < o->ncols; i++) {
                o->width[i] = strlen(o->names[i]);
                for (size_t r = 0; r < o->nrows; r++) {
                    size_t l = strlen(o->cells[r * (size_t)o->ncols + (size_t)i]);
                    if (l > o->width[i])
                        o->width[i] = l;
                }
            }
            for (int i = 0; i < o->ncols; i++)
                fprintf(f, "%-*s%s", i + 1 < o->ncols ? (int)o->width[i] : 0, o->names[i],
                        i + 1 < o->ncols ? "  " : "\n");
            o->header_done = true;
        }
        for (size_t r = 0; r < o->nrows; r++) {
            for (int i = 0; i < o->ncols; i++) {
                char *c = o->cells[r * (size_t)o->ncols + (size_t)i];
                fprintf(f, "%-*s%s", i + 1 < o->ncols ? (int)o->width[i] : 0, c,
                        i + 1 < o->ncols ? "  " : "\n");
                free(c);
            }
        }
        o->nrows = 0;
    }
    fflush(o->f);
    return ferror(o->f) ? ERR_IO : 0;
}

uint64_t sql_out_count(const sql_out_t *o)
{
    return o ? o->count : 0;
}

void sql_out_end(sql_out_t **o_p)
{
    if (!o_p || !*o_p)
        return;
    sql_out_t *o = *o_p;
    if (o->fmt == SQL_OUT_JSON)
        fputs(o->header_done ? "\n]\n" : "[]\n", o->f);
    if (o->fmt == SQL_OUT_TABLE && o->count)
        sql_out_flush(o);
    fflush(o->f);
    for (size_t r = 0; r < o->nrows; r++)
        for (int i = 0; i < o->ncols; i++)
            free(o->cells[r * (size_t)o->ncols + (size_t)i]);
    free(o->cells);
    for (int i = 0; i < o->ncols; i++)
        free(o->names[i]);
    free(o);
    *o_p = NULL;
}

void sql_val_from(sqlite3_stmt *st, int col, sql_val_t *v)
{
    memset(v, 0, sizeof(*v));
    v->type = sqlite3_column_type(st, col);
    switch (v->type) {
    case SQLITE_INTEGER:
        v->i = sqlite3_column_int64(st, col);
        break;
    case SQLITE_FLOAT:
        v->d = sqlite3_column_double(st, col);
        break;
    case SQLITE_TEXT:
        v->s = (const char *)sqlite3_column_text(st, col);
        v->len = (size_t)sqlite3_column_bytes(st, col);
        break;
    case SQLITE_BLOB:
        v->s = sqlite3_column_blob(st, col);
        v->len = (size_t)sqlite3_column_bytes(st, col);
        break;
    default:
        v->type = SQLITE_NULL;
    }
}

/* ---- sql_main ---------------------------------------------------------------------------- */

static const args_opt_t s_sql_opts[] = {
    {"state-dir", "DIR",
     "State directory of 'rayfleetctl up' (default " LAUNCH_DEFAULT_STATE_DIR
     "): main = scheduler.db, observed.db attached as schema 'observed'; with several scheduler "
     "replicas, audit and desired_objects name the union of every replica's file; submitter.db "
     "(the RayJob controller's audit) and serve-upgrade.db (the RayService controller's) join "
     "that union as schemas 'submitter' and 'serve_upgrade'."},
    {"db", "FILE", "Query this SQLite file only (schema 'main')."},
    {"context", "NAME",
     "With 'up --members': only the files of this cluster (member-<i>: STATE/member-<i>.*.db; "
     "management: the management set). Default: every cluster's files that fit in one "
     "connection (a note names the others); a member's file is schema member_<i>_<service>."},
    {"output", "FORMAT", "table (default), json (one array), jsonl (one object per line) or csv."},
    {"limit", "N",
     "Print at most N rows (default 1000); a note on stderr says when rows were cut."},
    {"timeout", "DURATION", "Stop the query after this long (default 10s)."},
    {NULL, NULL, NULL},
};

static bool s_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

int sql_main(int argc, char **argv)
{
    args_t a;
    int pr = args_parse(
        "sql",
        "\"SELECT ...\" [--state-dir DIR [--context NAME] | --db FILE] [--output FORMAT] "
        "[--limit N]",
        "Runs ONE read-only SQL statement on rayfleet's databases (scheduler.db: audit, "
        "desired_objects, leases; observed.db as observed.observed_objects). With several "
        "scheduler replicas (scheduler-<i>.db), `audit` and `desired_objects` are the union of "
        "every replica's rows (order by time_ms); main.audit, replica1.audit, ... name one file. "
        "submitter.db (rayfleet-submitter, the RayJob controller) and serve-upgrade.db "
        "(rayfleet-serve-upgrade, the RayService controller) are part of the union too, as "
        "schemas submitter and serve_upgrade (actor_service says which service wrote a row). "
        "With 'up --members', each member's files (member-<i>.scheduler.db, ...) join the union "
        "too, as schemas member_<i>_scheduler, ... (the cluster column says whose row it is), "
        "or are read alone with --context member-<i>. "
        "Writes, ATTACH, DETACH, PRAGMAs that set values, load_extension() and several statements "
        "are refused.",
        s_sql_opts, 1, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    if (a.npositional != 1) {
        fprintf(stderr, "rayfleetctl sql: give the query, e.g. rayfleetctl sql \"SELECT count(*) "
                        "FROM audit\"\n");
        return 2;
    }
    int64_t limit = 0;
    int64_t timeout_ms = 0;
    if (args_int(&a, "sql", "limit", 1, SQL_LIMIT_MAX, SQL_LIMIT_DEFAULT, &limit) != 0 ||
        args_duration(&a, "sql", "timeout", 1, SQL_TIMEOUT_MAX_MS, SQL_TIMEOUT_DEFAULT_MS,
                      &timeout_ms) != 0)
        return 2;
    sql_fmt_t fmt = SQL_OUT_TABLE;
    if (args_has(&a, "output") && sql_parse_format(args_str(&a, "output"), &fmt) != 0) {
        fprintf(stderr, "rayfleetctl sql: --output: must be table, json, jsonl or csv (got '%s')\n",
                args_str(&a, "output"));
        return 2;
    }
    if (args_has(&a, "state-dir") && args_has(&a, "db")) {
        fprintf(stderr, "rayfleetctl sql: give --state-dir or --db, not both\n");
        return 2;
    }
    if (args_has(&a, "context") && args_has(&a, "db")) {
        fprintf(stderr, "rayfleetctl sql: give --context or --db, not both\n");
        return 2;
    }
    fleetdb_files_t *files = calloc(1, sizeof(*files));
    if (!files)
        return 1;
    char obs_db[PATH_MAX];
    bool with_obs = false;
    if (args_has(&a, "db")) {
        snprintf(files->path[0], PATH_MAX, "%s", args_str(&a, "db"));
        files->n = 1;
        if (!s_exists(files->path[0])) {
            fprintf(stderr, "rayfleetctl sql: no database at %s\n", files->path[0]);
            free(files);
            return 1;
        }
    } else {
        const char *dir =
            args_str(&a, "state-dir") ? args_str(&a, "state-dir") : LAUNCH_DEFAULT_STATE_DIR;
        snprintf(obs_db, sizeof(obs_db), "%s/%s", dir, SQL_OBSERVED_DB);
        buf_t ferr;
        buf_init(&ferr, 4096);
        // observed.db takes one attachment when it is there (the reserve of fleetdb_select())
        int fr =
            fleetdb_select(dir, args_str(&a, "context"), s_exists(obs_db) ? 1 : 0, files, &ferr);
        if (fr != 0 && fr != ERR_NOTFOUND) {
            fprintf(stderr, "rayfleetctl sql: %s\n",
                    buf_str(&ferr)[0] ? buf_str(&ferr) : err_str(fr));
            buf_free(&ferr);
            free(files);
            return 1;
        }
        if (fr == ERR_NOTFOUND && args_has(&a, "context")) {
            fprintf(stderr, "rayfleetctl sql: %s\n", buf_str(&ferr));
            buf_free(&ferr);
            free(files);
            return 1;
        }
        buf_free(&ferr);
        fleetdb_note_skipped(files, "sql");
        if (files->n == 0 && s_exists(obs_db)) {
            snprintf(files->path[0], PATH_MAX, "%s", obs_db);
            files->n = 1;
        } else if (files->n == 0) {
            fprintf(stderr, "rayfleetctl sql: no %s or %s in %s (has rayfleet run?)\n",
                    SQL_SCHEDULER_DB, SQL_OBSERVED_DB, dir);
            free(files);
            return 1;
        } else {
            with_obs = s_exists(obs_db);
        }
    }
    int err = 0;
    fleetdb_t *fdb = fleetdb_open(files, with_obs ? obs_db : NULL, &err);
    if (!fdb) {
        fprintf(stderr, "rayfleetctl sql: cannot open %s%s read-only: %s\n", files->path[0],
                files->n > 1 ? " and the other files" : "", err_str(err));
        free(files);
        return 1;
    }
    free(files);
    store_query_t *q = fleetdb_query(fdb);
    int code = 1;
    buf_t why;
    buf_init(&why, STORE_QUERY_WHY_MAX);
    sqlite3_stmt *st = NULL;
    sql_out_t *out = NULL;
    int rc = fleetdb_prepare(fdb, a.positional[0], -1, &st, &why);
    if (rc == ERR_FORBIDDEN) {
        fprintf(stderr, "rayfleetctl sql: refused: %s (rayfleetctl sql is read-only)\n",
                buf_str(&why));
        goto done;
    } else if (rc) {
        fprintf(stderr, "rayfleetctl sql: %s\n", rc == ERR_NOMEM ? "out of memory" : buf_str(&why));
        goto done;
    }
    int ncols = sqlite3_column_count(st);
    if (ncols > SQL_MAX_COLS) {
        fprintf(stderr, "rayfleetctl sql: the result has %d columns; at most %d are printed\n",
                ncols, SQL_MAX_COLS);
        goto done;
    }
    if (ncols == 0) {
        fprintf(stderr, "rayfleetctl sql: the statement returns no columns\n");
        goto done;
    }
    const char *names[SQL_MAX_COLS];
    for (int i = 0; i < ncols; i++)
        names[i] = sqlite3_column_name(st, i);
    out = sql_out_new(stdout, fmt, ncols, names);
    if (!out)
        goto done;
    store_query_set_timeout(q, timeout_ms);
    sql_val_t vals[SQL_MAX_COLS];
    bool cut = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((int64_t)sql_out_count(out) >= limit) {
            cut = true;
            break;
        }
        for (int i = 0; i < ncols; i++)
            sql_val_from(st, i, &vals[i]);
        if (sql_out_row(out, vals) != 0) {
            fprintf(stderr, "rayfleetctl sql: cannot write the output\n");
            goto done;
        }
    }
    if (store_query_timed_out(q)) {
        fprintf(stderr,
                "rayfleetctl sql: the query ran longer than %" PRId64 " ms and was "
                "stopped (--timeout)\n",
                timeout_ms);
        goto done;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fprintf(stderr, "rayfleetctl sql: %s\n", sqlite3_errmsg(store_query_handle(q)));
        goto done;
    }
    sql_out_flush(out);
    if (cut)
        fprintf(stderr, "rayfleetctl sql: output cut at %" PRId64 " rows (--limit)\n", limit);
    code = 0;
done:
    sql_out_end(&out);
    sqlite3_finalize(st);
    fleetdb_close(&fdb);
    buf_free(&why);
    return code;
}
