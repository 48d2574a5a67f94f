/*
 * fleetdb: see fleetdb.h.
 */
#include "fleetdb.h"

#include "err.h"
#include "fedcfg.h"
#include "launch.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define S_SCHEMA_MAX (FLEETDB_NAME_MAX + 32) /* longest schema name (a member's file's) */
#define S_ERR_MAX 4096 /* longest message of fleetdb_select() */
#define S_NO_REPLICA (-1) /* replica number of scheduler.db, sorted first */

/* The desired_objects columns, in table order (the store's schema). */
#define S_DESIRED_COLS                                                                             \
    "cluster, namespace, owner_kind, owner_name, owner_uid, child_group, child_kind, "             \
    "child_name, spec_hash, json, reason, correlation_id, decided_ms"

struct fleetdb {
    store_query_t *q; /* the read-only connection */
    size_t n; /* files */
    char schema[FLEETDB_MAX_FILES][S_SCHEMA_MAX]; /* schema of each file */
    char path[FLEETDB_MAX_FILES][PATH_MAX]; /* path of each file */
    char set[FLEETDB_MAX_FILES][FLEETDB_NAME_MAX]; /* "" or the member of each file */
    size_t nsets; /* sets read */
};

/* The other controllers' audit files (fleetdb.h). */
static const char *const s_controller_files[FLEETDB_NCONTROLLER_FILES] = FLEETDB_CONTROLLER_FILES;

/* The file name of `path` after the "<member>." prefix of a member's file (`set` "": none). */
static const char *s_base(const char *path, const char *set)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(set);
    if (n && strncmp(base, set, n) == 0 && base[n] == '.')
        base += n + 1;
    return base;
}

/* When `path` names a controller file (of set `set`: see s_base()), writes its schema (the name
 * without .db, '-' written '_': serve-upgrade.db is schema serve_upgrade) to `out` and returns
 * true. */
static bool s_controller_schema(const char *path, const char *set, char *out, size_t size)
{
    const char *base = s_base(path, set);
    for (size_t i = 0; i < FLEETDB_NCONTROLLER_FILES; i++) {
        size_t len = strlen(s_controller_files[i]);
        if (strcmp(base, s_controller_files[i]) == 0 && len > 3 && len - 3 < size) {
            snprintf(out, size, "%.*s", (int)(len - 3), s_controller_files[i]);
            for (char *c = out; *c; c++)
                if (*c == '-')
                    *c = '_';
            return true;
        }
    }
    return false;
}

/* One file found by fleetdb_find(). */
typedef struct {
    long replica; /* i of scheduler-<i>.db, S_NO_REPLICA for scheduler.db */
    char name[256]; /* the file name */
} s_found_t;

static int s_found_cmp(const void *a, const void *b)
{
    long x = ((const s_found_t *)a)->replica, y = ((const s_found_t *)b)->replica;
    return x < y ? -1 : x > y;
}

/* The replica number of a file name scheduler-<digits>.db, or -2 when it is not one. */
static long s_replica_of(const char *nm)
{
    size_t plen = strlen(FLEETDB_REPLICA_PREFIX);
    size_t len = strlen(nm);
    if (strncmp(nm, FLEETDB_REPLICA_PREFIX, plen) != 0 || len <= plen + 3 ||
        strcmp(nm + len - 3, ".db") != 0 || len - plen - 3 > 6)
        return -2;
    long v = 0;
    for (size_t i = plen; i < len - 3; i++) {
        if (!isdigit((unsigned char)nm[i]))
            return -2;
        v = v * 10 + (nm[i] - '0');
    }
    return v;
}

/* Appends to *out (from out->n on; its room must be FLEETDB_SET_FILES) the files of the set
 * `member` ("": the management set) in state_dir, as fleetdb_find() says. Returns 0, ERR_TOOBIG
 * or ERR_NOTFOUND (no directory, or no file: out->n unchanged). */
static int s_find_set(const char *state_dir, const char *member, fleetdb_files_t *out)
{
    size_t n0 = out->n;
    char pre[FLEETDB_NAME_MAX + 1] = "";
    if (*member)
        snprintf(pre, sizeof(pre), "%s.", member);
    size_t plen = strlen(pre);
    DIR *d = opendir(state_dir);
    if (!d)
        return ERR_NOTFOUND;
    s_found_t found[FLEETDB_MAX_SCHEDULER_FILES + 1];
    size_t n = 0;
    bool more = false;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strncmp(ent->d_name, pre, plen) != 0)
            continue;
        const char *nm = ent->d_name + plen;
        long r = strcmp(nm, FLEETDB_MAIN_FILE) == 0 ? S_NO_REPLICA : s_replica_of(nm);
        if (r < S_NO_REPLICA || strlen(ent->d_name) >= sizeof(found[0].name))
            continue;
        s_found_t f = {.replica = r};
        snprintf(f.name, sizeof(f.name), "%s", ent->d_name);
        if (n < FLEETDB_MAX_SCHEDULER_FILES + 1) {
            found[n++] = f;
        } else {
            more = true;
            // keep the lowest numbers: replace the largest when this one is smaller
            size_t big = 0;
            for (size_t i = 1; i < n; i++)
                if (found[i].replica > found[big].replica)
                    big = i;
            if (f.replica < found[big].replica)
                found[big] = f;
        }
    }
    closedir(d);
    qsort(found, n, sizeof(found[0]), s_found_cmp);
    if (n > FLEETDB_MAX_SCHEDULER_FILES) {
        n = FLEETDB_MAX_SCHEDULER_FILES;
        more = true;
    }
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out->path[out->n], PATH_MAX, "%s/%s", state_dir, found[i].name);
        if (w > 0 && w < PATH_MAX)
            snprintf(out->set[out->n++], FLEETDB_NAME_MAX, "%s", member);
    }
    for (size_t i = 0; i < FLEETDB_NCONTROLLER_FILES; i++) {
        int w =
            snprintf(out->path[out->n], PATH_MAX, "%s/%s%s", state_dir, pre, s_controller_files[i]);
        if (w > 0 && w < PATH_MAX && access(out->path[out->n], F_OK) == 0)
            snprintf(out->set[out->n++], FLEETDB_NAME_MAX, "%s", member);
    }
    if (out->n > n0)
        out->nsets++;
    if (more)
        return ERR_TOOBIG;
    return out->n > n0 ? 0 : ERR_NOTFOUND;
}

int fleetdb_find(const char *state_dir, fleetdb_files_t *out)
{
    if (!state_dir || !out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    return s_find_set(state_dir, "", out);
}

int fleetdb_find_member(const char *state_dir, const char *member, fleetdb_files_t *out)
{
    if (!state_dir || !member || !*member || strlen(member) >= FLEETDB_NAME_MAX ||
        strchr(member, '/') || !out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    return s_find_set(state_dir, member, out);
}

size_t fleetdb_attach_max(void)
{
    sqlite3 *db = NULL;
    int lim = 0;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK)
        lim = sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, -1);
    sqlite3_close(db);
    if (lim < 0)
        lim = 0;
    return (size_t)lim < FLEETDB_MAX_FILES - 1 ? (size_t)lim : FLEETDB_MAX_FILES - 1;
}

/* STATE/federation.yaml read and checked by fleet/fedcfg into *fed (fedcfg_free() it). Returns 0,
 * ERR_NOTFOUND (no file), or ERR_INVAL/ERR_NOMEM with one line in `err`. */
static int s_federation(const char *state_dir, fedcfg_t *fed, buf_t *err)
{
    memset(fed, 0, sizeof(*fed));
    char path[PATH_MAX];
    int w = snprintf(path, sizeof(path), "%s/%s", state_dir, LAUNCH_FEDERATION_FILE);
    if (w < 0 || (size_t)w >= sizeof(path)) {
        buf_printf(err, "%s/%s: the path is longer than %d bytes", state_dir,
                   LAUNCH_FEDERATION_FILE, PATH_MAX - 1);
        return ERR_INVAL;
    }
    if (access(path, F_OK) != 0)
        return ERR_NOTFOUND;
    buf_t why;
    buf_init(&why, S_ERR_MAX);
    int rc = fedcfg_load(path, fed, &why);
    if (rc != 0) {
        buf_printf(err, "%s", buf_str(&why)[0] ? buf_str(&why) : err_str(rc));
        if (!strstr(buf_str(err), path))
            buf_printf(err, " (%s)", path);
        rc = rc == ERR_NOMEM ? ERR_NOMEM : ERR_INVAL;
    }
    buf_free(&why);
    return rc;
}

/* What "none found" says for set `member` ("": the management set). */
static void s_none(const char *state_dir, const char *member, buf_t *err)
{
    if (*member)
        buf_printf(err,
                   "no audit database of member %s at %s/%s.%s (nor %s.%s<i>.db, %s.%s: has "
                   "its scheduler run?)",
                   member, state_dir, member, FLEETDB_MAIN_FILE, member, FLEETDB_REPLICA_PREFIX,
                   member, s_controller_files[0]);
    else
        buf_printf(err, "no audit database at %s/%s (nor %s<i>.db: has the scheduler run?)",
                   state_dir, FLEETDB_MAIN_FILE, FLEETDB_REPLICA_PREFIX);
}

/* What ERR_TOOBIG says. */
static void s_toobig(const char *state_dir, const char *member, buf_t *err)
{
    buf_printf(err,
               "%s holds more than %d scheduler databases%s%s (only the first %d are read as "
               "one); read the others with --db FILE one at a time",
               state_dir, FLEETDB_MAX_SCHEDULER_FILES, *member ? " of member " : "", member,
               FLEETDB_MAX_SCHEDULER_FILES);
}

int fleetdb_select(const char *state_dir, const char *context, size_t reserve, fleetdb_files_t *out,
                   buf_t *err)
{
    if (!state_dir || !out || !err)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    fedcfg_t fed;
    int rc = s_federation(state_dir, &fed, err);
    if (rc != 0 && rc != ERR_NOTFOUND) {
        fedcfg_free(&fed);
        return rc;
    }
    bool federation = rc == 0;
    const char *mgmt = federation ? fed.management.name : LAUNCH_MANAGEMENT;
    const fedcfg_cluster_t *only = NULL; /* the member --context names */
    if (context && strcmp(context, mgmt) != 0 &&
        !(federation && fed.management.context && strcmp(context, fed.management.context) == 0)) {
        for (size_t i = 0; federation && !only && i < fed.nmembers; i++)
            if (strcmp(context, fed.members[i].name) == 0 ||
                (fed.members[i].context && strcmp(context, fed.members[i].context) == 0))
                only = &fed.members[i];
        if (!only) {
            if (!federation) {
                buf_printf(err,
                           "--context %s: %s has no %s (only 'rayfleetctl up --sim --members N' "
                           "has member clusters); the audit files there are the management "
                           "set's (--context %s, or no --context)",
                           context, state_dir, LAUNCH_FEDERATION_FILE, LAUNCH_MANAGEMENT);
            } else {
                buf_printf(err, "--context %s: no such cluster in %s/%s (clusters: %s", context,
                           state_dir, LAUNCH_FEDERATION_FILE, mgmt);
                for (size_t i = 0; i < fed.nmembers; i++)
                    buf_printf(err, ", %s", fed.members[i].name);
                buf_puts(err, ")");
            }
            fedcfg_free(&fed);
            return ERR_INVAL;
        }
        if (strlen(only->name) >= FLEETDB_NAME_MAX) {
            buf_printf(err, "--context %s: the member name is longer than %d bytes", context,
                       FLEETDB_NAME_MAX - 1);
            fedcfg_free(&fed);
            return ERR_INVAL;
        }
    }
    int result = 0;
    if (only) {
        rc = s_find_set(state_dir, only->name, out);
        if (rc == ERR_NOTFOUND)
            s_none(state_dir, only->name, err);
        else if (rc == ERR_TOOBIG)
            s_toobig(state_dir, only->name, err);
        fedcfg_free(&fed);
        return rc;
    }
    rc = s_find_set(state_dir, "", out);
    if (rc == ERR_TOOBIG) {
        s_toobig(state_dir, "", err);
        result = ERR_TOOBIG;
    }
    if (federation && !context) {
        size_t room = 1 + fleetdb_attach_max();
        room = room > reserve ? room - reserve : 0;
        fleetdb_files_t *one = malloc(sizeof(*one));
        if (!one) {
            fedcfg_free(&fed);
            return ERR_NOMEM;
        }
        for (size_t i = 0; i < fed.nmembers; i++) {
            const char *m = fed.members[i].name;
            if (strlen(m) >= FLEETDB_NAME_MAX)
                continue; /* fedcfg's DNS-1123 labels are shorter */
            memset(one, 0, sizeof(*one));
            rc = s_find_set(state_dir, m, one);
            if (rc == ERR_TOOBIG && !result) {
                s_toobig(state_dir, m, err);
                result = ERR_TOOBIG;
            }
            if (one->n == 0)
                continue;
            if (out->n + one->n > room) {
                out->room = room;
                if (out->nskipped < FLEETDB_MAX_SKIPPED)
                    snprintf(out->skipped[out->nskipped++], FLEETDB_NAME_MAX, "%s", m);
                out->skipped_files += one->n;
                continue;
            }
            for (size_t k = 0; k < one->n; k++) {
                memcpy(out->path[out->n], one->path[k], PATH_MAX);
                memcpy(out->set[out->n++], one->set[k], FLEETDB_NAME_MAX);
            }
            out->nsets++;
        }
        free(one);
    }
    fedcfg_free(&fed);
    if (out->n == 0 && !result) {
        s_none(state_dir, "", err);
        if (federation && !context)
            buf_printf(err, "; nor <member>.%s of a member of %s", FLEETDB_MAIN_FILE,
                       LAUNCH_FEDERATION_FILE);
        return ERR_NOTFOUND;
    }
    return result;
}

void fleetdb_note_skipped(const fleetdb_files_t *files, const char *cmd)
{
    if (!files || files->nskipped == 0)
        return;
    fprintf(stderr, "rayfleetctl %s: note: not read: the audit files of member", cmd);
    fprintf(stderr, "%s", files->nskipped > 1 ? "s" : "");
    for (size_t i = 0; i < files->nskipped; i++)
        fprintf(stderr, "%s%s", i ? ", " : " ", files->skipped[i]);
    size_t max = fleetdb_attach_max();
    fprintf(stderr,
            " (%zu files): one SQLite connection reads at most %zu audit files here (main + "
            "SQLITE_LIMIT_ATTACHED %zu%s; each cluster's files all or none) and %zu are read; "
            "read them with --context %s",
            files->skipped_files, files->room, max,
            files->room < 1 + max ? " - 1 for observed.db" : "", files->n, files->skipped[0]);
    if (files->nskipped > 1)
        fprintf(stderr, " (one member at a time)");
    fprintf(stderr, "\n");
}

/* The schema of a member's file: its name without .db, '-' and '.' written '_'. */
static void s_member_schema(const char *path, char *out, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 3 && strcmp(base + len - 3, ".db") == 0)
        len -= 3;
    snprintf(out, size, "%.*s", (int)len, base);
    for (char *c = out; *c; c++)
        if (*c == '-' || *c == '.')
            *c = '_';
}

fleetdb_t *fleetdb_open(const fleetdb_files_t *files, const char *observed, int *err_out)
{
    if (!files || files->n < 1 || files->n > FLEETDB_MAX_FILES) {
        if (err_out)
            *err_out = ERR_INVAL;
        return NULL;
    }
    fleetdb_t *f = calloc(1, sizeof(*f));
    if (!f) {
        if (err_out)
            *err_out = ERR_NOMEM;
        return NULL;
    }
    store_query_attach_t att[FLEETDB_MAX_FILES];
    size_t natt = 0;
    f->n = files->n;
    for (size_t k = 0; k < files->n; k++) {
        snprintf(f->path[k], PATH_MAX, "%s", files->path[k]);
        snprintf(f->set[k], FLEETDB_NAME_MAX, "%s", files->set[k]);
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(f->set[j], f->set[k]) == 0;
        f->nsets += !seen;
        if (k == 0) {
            snprintf(f->schema[k], S_SCHEMA_MAX, "main");
            continue;
        }
        if (f->set[k][0]) {
            s_member_schema(f->path[k], f->schema[k], S_SCHEMA_MAX);
        } else if (!s_controller_schema(f->path[k], "", f->schema[k], S_SCHEMA_MAX)) {
            snprintf(f->schema[k], S_SCHEMA_MAX, "%s%zu", FLEETDB_SCHEMA_PREFIX, k);
        }
        att[natt++] = (store_query_attach_t){.schema = f->schema[k], .path = f->path[k]};
    }
    if (observed)
        att[natt++] = (store_query_attach_t){.schema = "observed", .path = observed};
    f->q = store_query_open(f->path[0], natt ? att : NULL, natt, err_out);
    if (!f->q) {
        free(f);
        return NULL;
    }
    return f;
}

void fleetdb_close(fleetdb_t **f_p)
{
    if (!f_p || !*f_p)
        return;
    store_query_close(&(*f_p)->q);
    free(*f_p);
    *f_p = NULL;
}

store_query_t *fleetdb_query(fleetdb_t *f)
{
    return f ? f->q : NULL;
}

size_t fleetdb_count(const fleetdb_t *f)
{
    return f ? f->n : 0;
}

size_t fleetdb_scheduler_count(const fleetdb_t *f)
{
    size_t n = 0;
    char schema[S_SCHEMA_MAX];
    for (size_t k = 0; f && k < f->n; k++)
        if (!s_controller_schema(f->path[k], f->set[k], schema, sizeof(schema)))
            n++;
    return n;
}

size_t fleetdb_set_count(const fleetdb_t *f)
{
    return f ? f->nsets : 0;
}

const char *fleetdb_schema(const fleetdb_t *f, size_t k)
{
    return f && k < f->n ? f->schema[k] : NULL;
}

const char *fleetdb_path(const fleetdb_t *f, size_t k)
{
    return f && k < f->n ? f->path[k] : NULL;
}

/* ---- the rewrite ------------------------------------------------------------------------- */

/* Skips white space and SQL comments. */
static const char *s_skip(const char *p)
{
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
        } else {
            return p;
        }
    }
}

/* When `p` starts with keyword `kw` (any case, followed by a non-identifier character), returns
 * the position after it; else NULL. */
static const char *s_word(const char *p, const char *kw)
{
    size_t n = strlen(kw);
    if (strncasecmp(p, kw, n) != 0)
        return NULL;
    unsigned char c = (unsigned char)p[n];
    if (isalnum(c) || c == '_' || c == '$' || c >= 0x80)
        return NULL;
    return p + n;
}

/* Appends the CTEs (without WITH) that name the union (file < 0) or one file; ceil (may be
 * NULL) bounds the audit ids of each file. */
static int s_ctes(const fleetdb_t *f, int file, const int64_t *ceil, bool audit_only, buf_t *out)
{
    int rc = buf_puts(out, "audit AS (");
    for (size_t k = 0; !rc && k < f->n; k++) {
        if (file >= 0 && (size_t)file != k)
            continue;
        rc = buf_printf(out, "%sSELECT * FROM \"%s\".audit", file < 0 && k ? " UNION ALL " : "",
                        f->schema[k]);
        if (!rc && ceil)
            rc = buf_printf(out, " WHERE id <= %" PRId64, ceil[k]);
    }
    if (!rc)
        rc = buf_puts(out, ")");
    if (rc || file >= 0 || audit_only)
        return rc;
    rc = buf_puts(out, ", rf_desired_all AS (");
    for (size_t k = 0; !rc && k < f->n; k++)
        rc = buf_printf(out, "%sSELECT *, %zu AS rf_file FROM \"%s\".desired_objects",
                        k ? " UNION ALL " : "", k, f->schema[k]);
    if (!rc)
        rc = buf_puts(
            out,
            "), rf_desired_owner AS (SELECT cluster AS c, namespace AS ns, owner_kind "
            "AS ok, owner_name AS oname, rf_file AS fi, max(decided_ms) AS m FROM "
            "rf_desired_all GROUP BY 1, 2, 3, 4, 5), desired_objects AS (SELECT " S_DESIRED_COLS
            " FROM rf_desired_all a WHERE NOT EXISTS (SELECT 1 FROM rf_desired_owner "
            "x, rf_desired_owner y WHERE x.c = a.cluster AND x.ns = a.namespace AND "
            "x.ok = a.owner_kind AND x.oname = a.owner_name AND x.fi = a.rf_file AND "
            "y.c = x.c AND y.ns = x.ns AND y.ok = x.ok AND y.oname = x.oname AND (y.m > "
            "x.m OR (y.m = x.m AND y.fi < x.fi))))");
    return rc;
}

/* fleetdb_rewrite() with the id ceilings of s_ctes() and, when audit_only, the audit CTE alone. */
static int s_rewrite(const fleetdb_t *f, const char *sql, int file, const int64_t *ceil,
                     bool audit_only, buf_t *out)
{
    if (!f || !sql || !out || file >= (int)f->n || file < -1)
        return ERR_INVAL;
    if ((f->n == 1 || file == 0) && !ceil)
        return buf_puts(out, sql);
    const char *p = s_skip(sql);
    const char *q = s_word(p, "EXPLAIN");
    if (q) {
        p = s_skip(q);
        if ((q = s_word(p, "QUERY")) != NULL) {
            p = s_skip(q);
            if ((q = s_word(p, "PLAN")) == NULL)
                return buf_puts(out, sql); // a syntax error: SQLite says so
            p = s_skip(q);
        }
    }
    const char *with = s_word(p, "WITH");
    if (!with && !s_word(p, "SELECT") && !s_word(p, "VALUES"))
        return buf_puts(out, sql);
    int rc = buf_append(out, sql, (size_t)(p - sql));
    if (rc)
        return rc;
    if (with) {
        p = s_skip(with);
        const char *rec = s_word(p, "RECURSIVE");
        rc = buf_puts(out, rec ? "WITH RECURSIVE " : "WITH ");
        if (rec)
            p = s_skip(rec);
        if (!rc)
            rc = s_ctes(f, file, ceil, audit_only, out);
        if (!rc)
            rc = buf_puts(out, ", ");
    } else {
        rc = buf_puts(out, "WITH ");
        if (!rc)
            rc = s_ctes(f, file, ceil, audit_only, out);
        if (!rc)
            rc = buf_puts(out, " ");
    }
    if (!rc)
        rc = buf_puts(out, p);
    return rc;
}

int fleetdb_rewrite(const fleetdb_t *f, const char *sql, int file, buf_t *out)
{
    return s_rewrite(f, sql, file, NULL, false, out);
}

int fleetdb_prepare(fleetdb_t *f, const char *sql, int file, sqlite3_stmt **out, buf_t *why)
{
    if (out)
        *out = NULL;
    if (!f || !sql || !out || !why)
        return ERR_INVAL;
    buf_t text;
    buf_init(&text, FLEETDB_SQL_MAX);
    int rc = fleetdb_rewrite(f, sql, file, &text);
    if (rc) {
        buf_reset(why);
        buf_puts(why, rc == ERR_INVAL ? "bad file index" : "the query is too long");
    } else {
        rc = store_query_prepare(f->q, buf_str(&text), out, why);
    }
    buf_free(&text);
    return rc;
}

int fleetdb_audit_prepare(fleetdb_t *f, const store_audit_filter_t *flt, int file,
                          const int64_t *ceil, sqlite3_stmt **out, buf_t *sql_out)
{
    if (out)
        *out = NULL;
    if (!f || !flt || !out || file >= (int)f->n || file < -1)
        return ERR_INVAL;
    sqlite3 *db = store_query_handle(f->q);
    if ((f->n == 1 || file == 0) && !ceil)
        return store_audit_prepare(db, flt, out, sql_out);
    sqlite3_stmt *one = NULL;
    int rc = store_audit_prepare(db, flt, &one, NULL);
    if (rc)
        return rc;
    char *expanded = sqlite3_expanded_sql(one);
    sqlite3_finalize(one);
    if (!expanded)
        return ERR_NOMEM;
    buf_t text, why;
    buf_init(&text, FLEETDB_SQL_MAX);
    buf_init(&why, STORE_QUERY_WHY_MAX);
    rc = s_rewrite(f, expanded, file, ceil, true, &text);
    sqlite3_free(expanded);
    if (!rc) {
        rc = store_query_prepare(f->q, buf_str(&text), out, &why);
        if (rc == ERR_PARSE || rc == ERR_FORBIDDEN)
            rc = ERR_DB;
    }
    if (!rc && sql_out)
        rc = buf_puts(sql_out, buf_str(&text));
    if (rc && *out) {
        sqlite3_finalize(*out);
        *out = NULL;
    }
    buf_free(&text);
    buf_free(&why);
    return rc;
}

void fleetdb_max_ids(fleetdb_t *f, int64_t *ids)
{
    for (size_t k = 0; f && ids && k < f->n; k++) {
        ids[k] = 0;
        char sql[256];
        snprintf(sql, sizeof(sql), "SELECT coalesce(max(id), 0) FROM \"%s\".audit", f->schema[k]);
        sqlite3_stmt *st = NULL;
        buf_t why;
        buf_init(&why, STORE_QUERY_WHY_MAX);
        if (store_query_prepare(f->q, sql, &st, &why) == 0 && sqlite3_step(st) == SQLITE_ROW)
            ids[k] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        buf_free(&why);
    }
}
