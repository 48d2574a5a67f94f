/*
 * cfg: layered configuration. The standard options and the service's table are combined into
 * one array of values; each source parses its text with the same per-type parser, so a value
 * means the same in the file, the environment and a flag, and errors differ only in the prefix
 * naming the source.
 */
#include "cfg.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "rftime.h"
#include "yaml.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Where a value came from, in increasing precedence. */
typedef enum { S_UNSET, S_DEFAULT, S_FILE, S_ENV, S_FLAG } s_source_t;

static const char *const s_source_names[] = {"unset", "default", "file", "environment", "flag"};

/* The current value of one option. */
typedef struct {
    const cfg_opt_t *opt; /* its declaration (standard table or the service's) */
    s_source_t source; /* where the value came from */
    char *str; /* CFG_STRING: the text (owned), or NULL */
    int64_t num; /* CFG_INT, CFG_DURATION (milliseconds) */
    bool b; /* CFG_BOOL */
    char **list; /* CFG_LIST: NULL-terminated items (owned), or NULL for none */
    size_t nlist; /* CFG_LIST: item count */
} s_val_t;

struct cfg {
    size_t n; /* number of options */
    s_val_t *vals; /* one per option: the standard ones first */
};

enum { S_STD_CONFIG, S_STD_KUBECONFIG, S_STD_STATE_DIR, S_STD_LOG_LEVEL, S_STD_COUNT };

static const char *const s_log_levels[] = {"debug", "info", "warn", "error", NULL};

static const cfg_opt_t s_std[S_STD_COUNT] = {
    {"config", CFG_STRING, NULL, 0, 0, false, false,
     "YAML configuration file (flag or environment only).", NULL},
    {"kubeconfig", CFG_STRING, NULL, 0, 0, false, false,
     "kubeconfig file; unset means in-cluster credentials.", NULL},
    {"state-dir", CFG_STRING, CFG_DEFAULT_STATE_DIR, 0, 0, false, false,
     "Directory for local state (SQLite database, sockets).", NULL},
    {"log-level", CFG_STRING, CFG_DEFAULT_LOG_LEVEL, 0, 0, false, false,
     "Lowest log level written: debug, info, warn or error.", s_log_levels},
};

static const char *const s_empty_list[] = {NULL};

static bool s_is_secret(const cfg_opt_t *o)
{
    static const char *const words[] = {"token",      "password", "secret",
                                        "credential", "key-data", "key_data"};
    if (o->secret)
        return true;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcasestr(o->key, words[i]))
            return true;
    }
    return false;
}

/* Writes RAYFLEET_<KEY> for `key` into `out` (at least CFG_KEY_MAX + 16 bytes). */
static void s_env_name(const char *key, char *out, size_t cap)
{
    size_t n = strlen(CFG_ENV_PREFIX);
    memcpy(out, CFG_ENV_PREFIX, n);
    for (const char *p = key; *p && n + 1 < cap; p++) {
        char ch = *p == '.' || *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        out[n++] = ch;
    }
    out[n] = '\0';
}

static void s_val_clear(s_val_t *v)
{
    free(v->str);
    v->str = NULL;
    if (v->list) {
        for (size_t i = 0; i < v->nlist; i++)
            free(v->list[i]);
        free(v->list);
    }
    v->list = NULL;
    v->nlist = 0;
}

/* Writes a duration in the largest unit that divides it. */
static void s_fmt_ms(int64_t ms, char *out, size_t cap)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(out, cap, "%lldh", (long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(out, cap, "%lldm", (long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(out, cap, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, cap, "%lldms", (long long)ms);
}

/* Appends the rule a value of `o` must follow, e.g. "must be an integer between 1 and 10". */
static void s_rule(const cfg_opt_t *o, buf_t *out)
{
    bool ranged = o->min < o->max;
    char a[32], b[32];
    switch (o->type) {
    case CFG_INT:
        if (ranged)
            (void)buf_printf(out, "must be an integer between %lld and %lld", (long long)o->min,
                             (long long)o->max);
        else
            (void)buf_puts(out, "must be an integer");
        break;
    case CFG_BOOL:
        (void)buf_puts(out, "must be true or false");
        break;
    case CFG_DURATION:
        (void)buf_puts(out, "must be a duration such as 500ms, 2s, 1m or 1h");
        if (ranged) {
            s_fmt_ms(o->min, a, sizeof a);
            s_fmt_ms(o->max, b, sizeof b);
            (void)buf_printf(out, ", between %s and %s", a, b);
        }
        break;
    case CFG_LIST:
        (void)buf_printf(out, "must be a comma-separated list of at most %d items", CFG_LIST_MAX);
        break;
    case CFG_STRING:
        if (o->choices) {
            (void)buf_puts(out, "must be one of ");
            for (size_t i = 0; o->choices[i]; i++)
                (void)buf_printf(out, "%s%s", i ? ", " : "", o->choices[i]);
        } else
            (void)buf_printf(out, "must be text of at most %d bytes", CFG_VALUE_MAX);
        break;
    case CFG_ALIAS: /* never holds a value: s_find() gives its target */
        break;
    }
}

static bool s_parse_int(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s))
        return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool s_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool s_parse_duration(const char *s, int64_t *out)
{
    return rftime_duration_parse(s, out) == 0;
}

/* Splits a comma-separated list into v (items trimmed, empty ones dropped). */
static int s_parse_list(s_val_t *v, const char *s)
{
    char **items = calloc(CFG_LIST_MAX + 1, sizeof *items);
    if (!items)
        return ERR_NOMEM;
    size_t n = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *a = p;
        while (a < end && isspace((unsigned char)*a))
            a++;
        const char *b = end;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            if (n == CFG_LIST_MAX)
                goto fail_inval;
            if (!(items[n] = strndup(a, (size_t)(b - a))))
                goto fail_nomem;
            n++;
        }
        p = comma ? comma + 1 : end;
    }
    s_val_clear(v);
    v->list = items;
    v->nlist = n;
    return 0;
fail_inval:
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
    return ERR_INVAL;
fail_nomem:
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
    return ERR_NOMEM;
}

/* Parses `text` into the value. Returns 0, ERR_INVAL (breaks the rule) or ERR_NOMEM. */
static int s_parse(s_val_t *v, const char *text)
{
    const cfg_opt_t *o = v->opt;
    if (strlen(text) > CFG_VALUE_MAX)
        return ERR_INVAL;
    int64_t num = 0;
    bool b = false;
    switch (o->type) {
    case CFG_INT:
        if (!s_parse_int(text, &num) || (o->min < o->max && (num < o->min || num > o->max)))
            return ERR_INVAL;
        v->num = num;
        return 0;
    case CFG_DURATION:
        if (!s_parse_duration(text, &num) || (o->min < o->max && (num < o->min || num > o->max)))
            return ERR_INVAL;
        v->num = num;
        return 0;
    case CFG_BOOL:
        if (!s_parse_bool(text, &b))
            return ERR_INVAL;
        v->b = b;
        return 0;
    case CFG_LIST:
        return s_parse_list(v, text);
    case CFG_ALIAS:
        return ERR_INVAL;
    case CFG_STRING: {
        if (o->choices) {
            size_t i = 0;
            while (o->choices[i] && strcmp(o->choices[i], text) != 0)
                i++;
            if (!o->choices[i])
                return ERR_INVAL;
        }
        char *copy = strdup(text);
        if (!copy)
            return ERR_NOMEM;
        free(v->str);
        v->str = copy;
        return 0;
    }
    }
    return ERR_INVAL;
}

/* Parses `text` from a source; on a rule error appends "<where>: <rule>, got "<text>"". */
static int s_set(s_val_t *v, const char *text, s_source_t src, const char *where, buf_t *msg)
{
    int rc = s_parse(v, text);
    if (rc == 0) {
        v->source = src;
        return 0;
    }
    if (msg) {
        (void)buf_printf(msg, "%s: ", where);
        s_rule(v->opt, msg);
        if (s_is_secret(v->opt)) {
            (void)buf_puts(msg, ", got a value (value hidden)");
        } else {
            (void)buf_puts(msg, ", got \"");
            (void)buf_json_escape(msg, strlen(text) > 200 ? "(a value too long to show)" : text);
            (void)buf_puts(msg, "\"");
        }
    }
    return rc;
}

static s_val_t *s_find(const cfg_t *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->vals[i].opt->key, key) != 0)
            continue;
        if (c->vals[i].opt->type != CFG_ALIAS)
            return &c->vals[i];
        for (size_t j = 0; j < c->n; j++) { /* an alias stands for its target */
            if (c->vals[j].opt->type != CFG_ALIAS && strcmp(c->vals[j].opt->key, key) != 0 &&
                strcmp(c->vals[j].opt->key, c->vals[i].opt->def) == 0)
                return &c->vals[j];
        }
        return NULL;
    }
    return NULL;
}

/* True when some option's key starts with `prefix` followed by '.'. */
static bool s_is_prefix(const cfg_t *c, const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->vals[i].opt->key;
        if (strncmp(k, prefix, n) == 0 && k[n] == '.')
            return true;
    }
    return false;
}

/* Position of a file value (slot 2) or key (slot 0), 1-based; 1:1 when unknown. */
static void s_pos(const json_t *marks, const char *path, int slot, long long *line, long long *col)
{
    json_t *m = json_object_get(marks, path);
    *line = m ? json_integer_value(json_array_get(m, (size_t)slot)) : 1;
    *col = m ? json_integer_value(json_array_get(m, (size_t)slot + 1)) : 1;
    if (*line < 1 || *col < 1) {
        *line = 1;
        *col = 1;
    }
}

/* Applies one value from the file. */
static int s_file_value(s_val_t *v, const json_t *j, const char *file, const char *path,
                        const char *mpath, const json_t *marks, buf_t *msg)
{
    long long line, col;
    s_pos(marks, mpath, 2, &line, &col);
    char where[CFG_KEY_MAX * 2 + 4200];
    snprintf(where, sizeof where, "%s:%lld:%lld: %s", file, line, col, path);
    char num[64];
    switch (json_typeof(j)) {
    case JSON_NULL:
        return 0;
    case JSON_STRING:
        return s_set(v, json_string_value(j), S_FILE, where, msg);
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return s_set(v, num, S_FILE, where, msg);
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(j));
        return s_set(v, num, S_FILE, where, msg);
    case JSON_TRUE:
    case JSON_FALSE:
        return s_set(v, json_is_true(j) ? "true" : "false", S_FILE, where, msg);
    case JSON_ARRAY:
        if (v->opt->type == CFG_LIST) {
            // Join the scalars with commas and parse as a list, so items obey the same rules.
            buf_t joined;
            buf_init(&joined, CFG_VALUE_MAX);
            size_t i;
            json_t *e;
            int rc = 0;
            json_array_foreach(j, i, e)
            {
                const char *s = json_string_value(e);
                if (json_is_integer(e)) {
                    snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(e));
                    s = num;
                }
                if (!s || strchr(s, ',')) {
                    rc = ERR_INVAL;
                    if (msg)
                        (void)buf_printf(msg, "%s: list items must be strings without commas",
                                         where);
                    break;
                }
                rc = buf_printf(&joined, "%s%s", i ? "," : "", s);
                if (rc) {
                    if (msg)
                        (void)buf_printf(msg, "%s: list too long", where);
                    break;
                }
            }
            if (!rc)
                rc = s_set(v, buf_str(&joined), S_FILE, where, msg);
            buf_free(&joined);
            return rc;
        }
        // fall through
    case JSON_OBJECT:
        if (msg) {
            (void)buf_printf(msg, "%s: ", where);
            s_rule(v->opt, msg);
            (void)buf_printf(msg, ", got a %s", json_is_array(j) ? "sequence" : "mapping");
        }
        return ERR_INVAL;
    }
    return ERR_INVAL;
}

/* Walks a mapping of the file, matching dotted paths to options. */
/* The services of the set, in the order of a set file's sections (see cfg.h). */
static const char *const s_services[] = {"bus",       "watcher",       "scheduler",
                                         "submitter", "serve-upgrade", NULL};

static bool s_is_service(const char *k)
{
    for (size_t i = 0; s_services[i]; i++) {
        if (strcmp(s_services[i], k) == 0)
            return true;
    }
    return false;
}

/* A set file: a section (a mapping) named after a service other than the bus, whose name is also
 * the prefix of its options. */
static bool s_is_set_file(const json_t *root)
{
    for (size_t i = 1; s_services[i]; i++) {
        if (json_is_object(json_object_get(root, s_services[i])))
            return true;
    }
    return false;
}

/* Applies the keys of `obj` under `prefix` (the option path) whose positions in the document are
 * under `mbase` ("" or a section name). `service`: this service's name in a set file (its section
 * is applied, the others skipped; a key of its section unknown as such is tried as
 * "<service>.<key>", so the bus's section may say `frontend` for bus.frontend); NULL otherwise. */
static int s_file_walk(cfg_t *c, const json_t *obj, const char *prefix, const char *mbase,
                       const char *service, const char *file, const json_t *marks, buf_t *msg,
                       int depth)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (service && depth == 0 && s_is_service(k) && json_is_object(v))
            continue; /* a section: this service's after the loop, the others' by them */
        if (depth == 0 && !*prefix && strcmp(k, "federation") == 0 && json_is_object(v))
            continue; /* the set's federation (fleet/fedcfg.h), read by the placer from the file
                         its --federation.config names */
        char path[CFG_KEY_MAX + 1], mpath[2 * CFG_KEY_MAX + 2];
        int n = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k);
        snprintf(mpath, sizeof mpath, "%s%s%s", mbase, *mbase ? "." : "", path);
        s_val_t *val = n < (int)sizeof path ? s_find(c, path) : NULL;
        if (!val && service && depth == 1 && !*prefix && n < (int)sizeof path &&
            !s_is_prefix(c, path)) {
            char alt[CFG_KEY_MAX + 1];
            int m = snprintf(alt, sizeof alt, "%s.%s", service, k);
            if (m < (int)sizeof alt && (s_find(c, alt) || s_is_prefix(c, alt))) {
                memcpy(path, alt, (size_t)m + 1);
                val = s_find(c, path);
            }
        }
        if (val && val->opt != &s_std[S_STD_CONFIG]) {
            int rc = s_file_value(val, v, file, path, mpath, marks, msg);
            if (rc)
                return rc;
            continue;
        }
        if (n < (int)sizeof path && json_is_object(v) && s_is_prefix(c, path) && depth < 16) {
            int rc = s_file_walk(c, v, path, mbase, service, file, marks, msg, depth + 1);
            if (rc)
                return rc;
            continue;
        }
        long long line, col;
        s_pos(marks, n < (int)sizeof path ? mpath : "", 0, &line, &col);
        if (msg) {
            (void)buf_printf(msg, "%s:%lld:%lld: unknown key \"", file, line, col);
            (void)buf_json_escape(msg, n < (int)sizeof path ? mpath : k);
            if (service && depth == 0)
                (void)buf_printf(msg,
                                 "\" (not an option of rayfleet-%s; a set file's top-level "
                                 "keys are shared by every service that reads it, put the "
                                 "others under their service's section)",
                                 service);
            else if (service)
                (void)buf_printf(msg, "\" (not an option of rayfleet-%s)", service);
            else
                (void)buf_puts(msg, "\"");
        }
        return ERR_INVAL;
    }
    json_t *own = service && depth == 0 ? json_object_get(obj, service) : NULL;
    return json_is_object(own) ? s_file_walk(c, own, "", service, service, file, marks, msg, 1) : 0;
}

static int s_apply_file(cfg_t *c, const char *file, const char *service, buf_t *msg)
{
    json_t *docs = NULL;
    json_t *marks = NULL;
    int rc = yaml_load_file_marks(file, CFG_MAX_FILE_BYTES, &docs, &marks, msg);
    if (rc)
        return rc;
    if (json_array_size(docs) > 1) {
        rc = ERR_PARSE;
        if (msg)
            (void)buf_printf(msg, "%s: one YAML document expected, found %zu", file,
                             json_array_size(docs));
    } else if (json_array_size(docs) == 1) {
        json_t *root = json_array_get(docs, 0);
        if (!json_is_object(root)) {
            rc = ERR_PARSE;
            if (msg)
                (void)buf_printf(msg, "%s:1:1: the configuration must be a mapping", file);
        } else {
            rc = s_file_walk(c, root, "", "", service && s_is_set_file(root) ? service : NULL, file,
                             marks, msg, 0);
        }
    }
    json_decref(docs);
    json_decref(marks);
    return rc;
}

/* Checks one declared option; appends the problem to msg. */
static int s_check_opt(const cfg_opt_t *o, buf_t *msg)
{
    size_t n = strlen(o->key);
    bool ok = n > 0 && n <= CFG_KEY_MAX && o->type >= CFG_STRING && o->type <= CFG_ALIAS &&
              (o->type != CFG_ALIAS || (o->def && !o->required));
    for (size_t i = 0; ok && i < n; i++) {
        char ch = o->key[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
             ch == '_';
    }
    if (!ok && msg)
        (void)buf_printf(msg, "option table: invalid option \"%s\"", o->key);
    return ok ? 0 : ERR_INVAL;
}

/* A flag assignment waiting for the earlier sources to be applied. */
typedef struct {
    s_val_t *val; /* the option */
    const char *value; /* the text, borrowed from argv */
} s_pending_t;

static cfg_t *s_new(const cfg_opt_t *table, buf_t *msg, int *rc)
{
    size_t n = S_STD_COUNT;
    for (const cfg_opt_t *o = table; o && o->key; o++)
        n++;
    cfg_t *c = calloc(1, sizeof *c);
    if (!c || !(c->vals = calloc(n, sizeof *c->vals))) {
        free(c);
        *rc = ERR_NOMEM;
        return NULL;
    }
    for (size_t i = 0; i < S_STD_COUNT; i++)
        c->vals[c->n++].opt = &s_std[i];
    for (const cfg_opt_t *o = table; o && o->key; o++) {
        *rc = s_check_opt(o, msg);
        if (!*rc && o->type != CFG_ALIAS && s_find(c, o->key)) {
            *rc = ERR_INVAL;
            if (msg)
                (void)buf_printf(msg, "option table: \"%s\" declared twice", o->key);
        }
        if (*rc) {
            cfg_destroy(&c);
            return NULL;
        }
        c->vals[c->n++].opt = o;
    }
    for (size_t i = 0; i < c->n; i++) {
        s_val_t *v = &c->vals[i];
        if (v->opt->type == CFG_ALIAS && !s_find(c, v->opt->key)) {
            *rc = ERR_INVAL;
            if (msg)
                (void)buf_printf(msg, "option table: alias \"%s\" names no option \"%s\"",
                                 v->opt->key, v->opt->def);
            cfg_destroy(&c);
            return NULL;
        }
        if (v->opt->def && v->opt->type != CFG_ALIAS) {
            char where[CFG_KEY_MAX + 32];
            snprintf(where, sizeof where, "option table: default of %s", v->opt->key);
            *rc = s_set(v, v->opt->def, S_DEFAULT, where, msg);
            if (*rc) {
                cfg_destroy(&c);
                return NULL;
            }
        }
    }
    *rc = 0;
    return c;
}

/* Parses argv into pending assignments; the first problem goes to msg. */
static int s_parse_flags(cfg_t *c, int argc, char **argv, s_pending_t *pend, size_t *npend,
                         buf_t *msg)
{
    *npend = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (msg) {
                (void)buf_puts(msg, "unexpected argument \"");
                (void)buf_json_escape(msg, strlen(arg) > 200 ? "(too long to show)" : arg);
                (void)buf_puts(msg, "\" (see --help)");
            }
            return ERR_INVAL;
        }
        const char *eq = strchr(arg + 2, '=');
        size_t klen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        char key[CFG_KEY_MAX + 1];
        s_val_t *v = NULL;
        if (klen <= CFG_KEY_MAX) {
            memcpy(key, arg + 2, klen);
            key[klen] = '\0';
            v = s_find(c, key);
        }
        if (!v) {
            if (msg) {
                (void)buf_puts(msg, "flag --");
                (void)buf_json_escape(msg, klen <= CFG_KEY_MAX ? key : "(too long)");
                (void)buf_puts(msg, ": unknown option (see --help)");
            }
            return ERR_INVAL;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && v->opt->type == CFG_BOOL) {
            value = "true";
        } else if (!value) {
            if (i + 1 >= argc) {
                if (msg)
                    (void)buf_printf(msg, "flag --%s: needs a value", key);
                return ERR_INVAL;
            }
            value = argv[++i];
        }
        pend[*npend].val = v;
        pend[*npend].value = value;
        (*npend)++;
    }
    return 0;
}

int cfg_load(const cfg_opt_t *table, int argc, char **argv, cfg_t **out, buf_t *msg)
{
    return cfg_load_service(NULL, table, argc, argv, out, msg);
}

int cfg_load_service(const char *service, const cfg_opt_t *table, int argc, char **argv,
                     cfg_t **out, buf_t *msg)
{
    int rc = 0;
    *out = NULL;
    const char *prog = argc > 0 && argv[0] ? argv[0] : "rayfleet";
    const char *slash = strrchr(prog, '/');
    prog = slash ? slash + 1 : prog;
    // --help and --version win over everything else on the line, even over mistakes.
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            rc = cfg_usage(table, prog, msg);
            return rc ? rc : CFG_HELP;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            if (msg)
                (void)buf_printf(msg, "%s (rayfleet) %s\n", prog, RF_VERSION);
            return CFG_VERSION;
        }
    }
    s_pending_t *pend = NULL;
    cfg_t *c = s_new(table, msg, &rc);
    if (!c)
        return rc;
    pend = calloc((size_t)(argc > 0 ? argc : 1), sizeof *pend);
    if (!pend) {
        rc = ERR_NOMEM;
        goto out;
    }
    size_t npend = 0;
    rc = s_parse_flags(c, argc, argv, pend, &npend, msg);
    if (rc)
        goto out;

    // The file named by the last --config flag, else by RAYFLEET_CONFIG.
    const char *file = NULL;
    char env[CFG_KEY_MAX + 32];
    s_env_name("config", env, sizeof env);
    const char *e = getenv(env);
    if (e && *e)
        file = e;
    for (size_t i = 0; i < npend; i++) {
        if (pend[i].val->opt == &s_std[S_STD_CONFIG])
            file = pend[i].value;
    }
    if (file) {
        rc = s_apply_file(c, file, service, msg);
        if (rc)
            goto out;
    }

    for (size_t i = 0; i < c->n; i++) {
        s_val_t *v = &c->vals[i];
        if (v->opt->type == CFG_ALIAS)
            continue;
        // RAYFLEET_<KEY>, then the service's own RAYFLEET_<SERVICE>_<KEY>, which wins
        for (int pass = 0; pass < (service ? 2 : 1); pass++) {
            char key[2 * CFG_KEY_MAX + 2];
            snprintf(key, sizeof key, "%s%s%s", pass ? service : "", pass ? "." : "", v->opt->key);
            s_env_name(key, env, sizeof env);
            e = getenv(env);
            if (!e || !*e)
                continue;
            char where[sizeof env + 16];
            snprintf(where, sizeof where, "environment %s", env);
            rc = s_set(v, e, S_ENV, where, msg);
            if (rc)
                goto out;
        }
    }

    for (size_t i = 0; i < npend; i++) {
        char where[CFG_KEY_MAX + 16];
        snprintf(where, sizeof where, "flag --%s", pend[i].val->opt->key);
        rc = s_set(pend[i].val, pend[i].value, S_FLAG, where, msg);
        if (rc)
            goto out;
    }

    for (size_t i = 0; i < c->n; i++) {
        s_val_t *v = &c->vals[i];
        if (v->opt->required && v->source == S_UNSET) {
            s_env_name(v->opt->key, env, sizeof env);
            if (msg)
                (void)buf_printf(msg,
                                 "%s: required but not set (set it in the configuration file, "
                                 "with %s or with --%s)",
                                 v->opt->key, env, v->opt->key);
            rc = ERR_INVAL;
            goto out;
        }
    }
    *out = c;
    c = NULL;
out:
    free(pend);
    cfg_destroy(&c);
    return rc;
}

void cfg_destroy(cfg_t **pc)
{
    if (!pc || !*pc)
        return;
    cfg_t *c = *pc;
    for (size_t i = 0; i < c->n; i++)
        s_val_clear(&c->vals[i]);
    free(c->vals);
    free(c);
    *pc = NULL;
}

/* The value of `key` when it exists with `type`; else logs the programming error. */
static const s_val_t *s_get(const cfg_t *c, const char *key, cfg_type_t type)
{
    const s_val_t *v = c && key ? s_find(c, key) : NULL;
    if (!v || v->opt->type != type) {
        log_error("cfg: option read with the wrong type or not declared", "key", key, NULL);
        return NULL;
    }
    return v;
}

const char *cfg_str(const cfg_t *c, const char *key)
{
    const s_val_t *v = s_get(c, key, CFG_STRING);
    return v ? v->str : NULL;
}

int64_t cfg_int(const cfg_t *c, const char *key)
{
    const s_val_t *v = s_get(c, key, CFG_INT);
    return v ? v->num : 0;
}

bool cfg_bool(const cfg_t *c, const char *key)
{
    const s_val_t *v = s_get(c, key, CFG_BOOL);
    return v ? v->b : false;
}

int64_t cfg_duration_ms(const cfg_t *c, const char *key)
{
    const s_val_t *v = s_get(c, key, CFG_DURATION);
    return v ? v->num : 0;
}

const char *const *cfg_list(const cfg_t *c, const char *key, size_t *n_out)
{
    const s_val_t *v = s_get(c, key, CFG_LIST);
    if (n_out)
        *n_out = v ? v->nlist : 0;
    return v && v->list ? (const char *const *)v->list : s_empty_list;
}

int cfg_override(cfg_t *c, const char *key, const char *text, const char *where, buf_t *msg)
{
    s_val_t *v = c && key ? s_find(c, key) : NULL;
    if (!v || !text) {
        if (msg)
            (void)buf_printf(msg, "%s: no option %s", where ? where : "override", key ? key : "");
        return ERR_INVAL;
    }
    s_val_t tmp = *v; /* parsed into a copy so a bad value leaves the option as it was */
    tmp.str = NULL;
    tmp.list = NULL;
    tmp.nlist = 0;
    int rc = s_set(&tmp, text, S_FILE, where ? where : key, msg);
    if (rc) {
        s_val_clear(&tmp);
        return rc;
    }
    s_val_clear(v);
    *v = tmp;
    return 0;
}

const char *cfg_source(const cfg_t *c, const char *key)
{
    const s_val_t *v = c && key ? s_find(c, key) : NULL;
    return v ? s_source_names[v->source] : NULL;
}

static const char *s_metavar(const cfg_opt_t *o)
{
    static const char *const names[] = {"", "TEXT", "INT", "BOOL", "DURATION", "LIST", ""};
    if (o == &s_std[S_STD_CONFIG] || o == &s_std[S_STD_KUBECONFIG])
        return "FILE";
    if (o == &s_std[S_STD_STATE_DIR])
        return "DIR";
    if (o == &s_std[S_STD_LOG_LEVEL])
        return "LEVEL";
    return names[o->type];
}

static int s_usage_opt(const cfg_opt_t *o, buf_t *out)
{
    if (o->type == CFG_ALIAS)
        return buf_printf(out, "  --%s\n      %s Same as --%s.\n", o->key, o->help ? o->help : "",
                          o->def);
    char env[CFG_KEY_MAX + 32];
    s_env_name(o->key, env, sizeof env);
    int rc =
        buf_printf(out, "  --%s %s\n      %s\n      env %s", o->key, s_metavar(o), o->help, env);
    if (!rc && o->def)
        rc = buf_printf(out, "; default %s", s_is_secret(o) ? "(hidden)" : o->def);
    if (!rc && o->min < o->max && o->type == CFG_INT)
        rc = buf_printf(out, "; range %lld..%lld", (long long)o->min, (long long)o->max);
    if (!rc && o->min < o->max && o->type == CFG_DURATION) {
        char a[32], b[32];
        s_fmt_ms(o->min, a, sizeof a);
        s_fmt_ms(o->max, b, sizeof b);
        rc = buf_printf(out, "; range %s..%s", a, b);
    }
    if (!rc && o->required)
        rc = buf_puts(out, "; required");
    return rc ? rc : buf_puts(out, "\n");
}

int cfg_table_join(const cfg_opt_t *a, const cfg_opt_t *b, cfg_opt_t *out, size_t max)
{
    size_t n = 0;
    const cfg_opt_t *tables[2] = {a, b};
    for (int t = 0; t < 2; t++)
        for (const cfg_opt_t *o = tables[t]; o && o->key; o++) {
            if (n + 1 >= max)
                return ERR_TOOBIG;
            out[n++] = *o;
        }
    if (max == 0)
        return ERR_TOOBIG;
    out[n] = (cfg_opt_t){0};
    return (int)n;
}

int cfg_usage(const cfg_opt_t *table, const char *prog, buf_t *out)
{
    if (!out)
        return 0;
    size_t start = out->len;
    int rc = buf_printf(out,
                        "Usage: %s [OPTIONS]\n\n"
                        "Every option can be set in the YAML file given by --config, in the "
                        "environment, or as a flag\n(--key=VALUE or --key VALUE). Flags override "
                        "the environment, which overrides the file,\nwhich overrides the "
                        "defaults.\n\nOptions:\n",
                        prog);
    for (const cfg_opt_t *o = table; !rc && o && o->key; o++)
        rc = s_usage_opt(o, out);
    for (size_t i = 0; !rc && i < S_STD_COUNT; i++)
        rc = s_usage_opt(&s_std[i], out);
    if (!rc)
        rc = buf_puts(out, "  --help, -h\n      Print this help and exit.\n"
                           "  --version\n      Print the version and exit.\n");
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

static const cfg_opt_t s_test_table[] = {
    {"bus.hwm", CFG_INT, "1000", 1, 10000000, false, false, "High-water mark of bus sockets.",
     NULL},
    {"bus.endpoint", CFG_STRING, "tcp://127.0.0.1:5555", 0, 0, false, false, "Bus endpoint.", NULL},
    {"bus.heartbeat", CFG_DURATION, "2s", 100, 3600000, false, false, "Heartbeat interval.", NULL},
    {"dry-run", CFG_BOOL, "false", 0, 0, false, false, "Change nothing.", NULL},
    {"watch.namespaces", CFG_LIST, "default, ray", 0, 0, false, false, "Namespaces watched.", NULL},
    {"api.token", CFG_STRING, NULL, 0, 0, false, false, "API token.", NULL},
    {"api.pin", CFG_STRING, NULL, 0, 0, false, true, "A secret by declaration.", NULL},
    {"name", CFG_STRING, NULL, 0, 0, true, false, "Instance name.", NULL},
    {"hwm", CFG_ALIAS, "bus.hwm", 0, 0, false, false, "High-water mark.", NULL},
    {NULL, 0, NULL, 0, 0, false, false, NULL, NULL},
};

/* Runs cfg_load_service(service, ...) with --config FILE. */
static int s_t_load_svc(cfg_t **c, buf_t *msg, const char *service, const char *file)
{
    char *argv[] = {"rf-test", "--config", (char *)file, NULL};
    buf_reset(msg);
    return cfg_load_service(service, s_test_table, 3, argv, c, msg);
}

/* Runs cfg_load on a NULL-terminated argument list (argv[0] is "rf-test"). */
static int s_t_load(cfg_t **c, buf_t *msg, ...)
{
    char *argv[32] = {"rf-test"};
    int argc = 1;
    va_list ap;
    va_start(ap, msg);
    char *a;
    while (argc < 31 && (a = va_arg(ap, char *)) != NULL)
        argv[argc++] = a;
    va_end(ap);
    buf_reset(msg);
    return cfg_load(s_test_table, argc, argv, c, msg);
}

static bool s_t_msg(const buf_t *msg, const char *want, bool verbose)
{
    bool ok = strcmp(buf_str(msg), want) == 0;
    if (!ok || verbose)
        printf("  %s: %s\n", ok ? "ok" : "MISMATCH", buf_str(msg));
    if (!ok)
        printf("  wanted: %s\n", want);
    return ok;
}

static bool s_t_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

int cfg_test(bool verbose)
{
    int failed = 0;
    static const char *const envs[] = {
        "RAYFLEET_BUS_HWM",   "RAYFLEET_CONFIG",        "RAYFLEET_API_TOKEN", "RAYFLEET_NAME",
        "RAYFLEET_LOG_LEVEL", "RAYFLEET_BUS_HEARTBEAT", "RAYFLEET_API_PIN",   "RAYFLEET_STATE_DIR"};
    enum { NENV = sizeof envs / sizeof envs[0] };
    char *saved[NENV];
    for (int i = 0; i < NENV; i++) {
        const char *v = getenv(envs[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(envs[i]);
    }
    buf_t msg;
    buf_init(&msg, CFG_MSG_MAX);
    cfg_t *c = NULL;
    char dir[] = "/tmp/rf-cfg-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char file[64], bad[64], multi[64];
    snprintf(file, sizeof file, "%s/config.yaml", dir);
    snprintf(bad, sizeof bad, "%s/bad.yaml", dir);
    snprintf(multi, sizeof multi, "%s/multi.yaml", dir);
    CHECK(s_t_write(file, "# rayfleet test\nname: from-file\nbus:\n  hwm: 5\n  heartbeat: 1m30s\n"
                          "watch.namespaces: [a, b, c]\nlog-level: debug\ndry-run: yes\n"));

    // Defaults only (name is required, so give it by flag).
    CHECK(s_t_load(&c, &msg, "--name", "n1", NULL) == 0 && c);
    CHECK(cfg_int(c, "bus.hwm") == 1000 && strcmp(cfg_source(c, "bus.hwm"), "default") == 0);
    CHECK(cfg_duration_ms(c, "bus.heartbeat") == 2000);
    CHECK(cfg_bool(c, "dry-run") == false);
    size_t n = 0;
    const char *const *l = cfg_list(c, "watch.namespaces", &n);
    CHECK(n == 2 && strcmp(l[0], "default") == 0 && strcmp(l[1], "ray") == 0 && l[2] == NULL);
    CHECK(strcmp(cfg_str(c, "state-dir"), CFG_DEFAULT_STATE_DIR) == 0);
    CHECK(strcmp(cfg_str(c, "log-level"), "info") == 0);
    CHECK(cfg_str(c, "kubeconfig") == NULL && strcmp(cfg_source(c, "kubeconfig"), "unset") == 0);
    CHECK(strcmp(cfg_str(c, "name"), "n1") == 0 && strcmp(cfg_source(c, "name"), "flag") == 0);
    // Wrong-type and unknown reads are programming errors: logged, neutral results.
    CHECK(cfg_int(c, "name") == 0 && cfg_str(c, "nope") == NULL && cfg_source(c, "nope") == NULL);
    CHECK(cfg_list(c, "bus.hwm", &n)[0] == NULL && n == 0);
    cfg_destroy(&c);
    cfg_destroy(&c);

    // Precedence: default < file < environment < flag.
    CHECK(s_t_load(&c, &msg, "--config", file, NULL) == 0 && c);
    CHECK(cfg_int(c, "bus.hwm") == 5 && strcmp(cfg_source(c, "bus.hwm"), "file") == 0);
    CHECK(cfg_duration_ms(c, "bus.heartbeat") == 90000);
    CHECK(cfg_bool(c, "dry-run") == true);
    CHECK(strcmp(cfg_str(c, "name"), "from-file") == 0);
    CHECK(strcmp(cfg_str(c, "log-level"), "debug") == 0);
    l = cfg_list(c, "watch.namespaces", &n);
    CHECK(n == 3 && strcmp(l[2], "c") == 0);
    cfg_destroy(&c);
    setenv("RAYFLEET_BUS_HWM", "7", 1);
    setenv("RAYFLEET_CONFIG", file, 1);
    CHECK(s_t_load(&c, &msg, NULL) == 0 && c);
    CHECK(cfg_int(c, "bus.hwm") == 7 && strcmp(cfg_source(c, "bus.hwm"), "environment") == 0);
    CHECK(strcmp(cfg_str(c, "name"), "from-file") == 0);
    cfg_destroy(&c);
    CHECK(s_t_load(&c, &msg, "--bus.hwm=9", "--dry-run=false", "--bus.heartbeat", "500ms", NULL) ==
              0 &&
          c);
    CHECK(cfg_int(c, "bus.hwm") == 9 && strcmp(cfg_source(c, "bus.hwm"), "flag") == 0);
    CHECK(cfg_bool(c, "dry-run") == false && cfg_duration_ms(c, "bus.heartbeat") == 500);
    cfg_destroy(&c);
    CHECK(s_t_load(&c, &msg, "--dry-run", "--bus.hwm", "11", "--bus.hwm=12", NULL) == 0 && c);
    CHECK(cfg_bool(c, "dry-run") == true && cfg_int(c, "bus.hwm") == 12);
    cfg_destroy(&c);
    unsetenv("RAYFLEET_CONFIG");
    unsetenv("RAYFLEET_BUS_HWM");

    // An alias is the same option under a second name (flag and file key); cfg_override sets a
    // value after loading with the option's rule.
    CHECK(s_t_load(&c, &msg, "--name=x", "--hwm", "4", NULL) == 0 && c);
    CHECK(cfg_int(c, "bus.hwm") == 4 && strcmp(cfg_source(c, "bus.hwm"), "flag") == 0);
    CHECK(cfg_int(c, "hwm") == 4);
    CHECK(cfg_override(c, "bus.hwm", "6", "k.yaml: qps", &msg) == 0 && cfg_int(c, "bus.hwm") == 6);
    CHECK(strcmp(cfg_source(c, "bus.hwm"), "file") == 0);
    buf_reset(&msg);
    CHECK(cfg_override(c, "bus.hwm", "0", "k.yaml: qps", &msg) == ERR_INVAL);
    CHECK(s_t_msg(&msg, "k.yaml: qps: must be an integer between 1 and 10000000, got \"0\"",
                  verbose));
    CHECK(cfg_override(c, "nope", "1", "x", NULL) == ERR_INVAL && cfg_int(c, "bus.hwm") == 6);
    CHECK(cfg_override(c, "name", "n2", "x", NULL) == 0 && strcmp(cfg_str(c, "name"), "n2") == 0);
    cfg_destroy(&c);
    CHECK(s_t_write(multi, "name: y\nhwm: 3\n"));
    CHECK(s_t_load(&c, &msg, "--config", multi, NULL) == 0 && c && cfg_int(c, "bus.hwm") == 3);
    cfg_destroy(&c);
    // the set's federation: section is skipped by every service (the placer reads it itself);
    // a federation key that is not a mapping is still an unknown key
    CHECK(s_t_write(multi, "name: y\nfederation:\n  members: [{name: m1}]\n"));
    CHECK(s_t_load(&c, &msg, "--config", multi, NULL) == 0 && c);
    cfg_destroy(&c);
    CHECK(s_t_write(multi, "scheduler:\n  name: z\nfederation:\n  members: []\n"));
    CHECK(s_t_load_svc(&c, &msg, "scheduler", multi) == 0 && c &&
          strcmp(cfg_str(c, "name"), "z") == 0);
    cfg_destroy(&c);
    CHECK(s_t_write(multi, "federation: 3\n"));
    CHECK(s_t_load(&c, &msg, "--config", multi, NULL) == ERR_INVAL && !c);

    char want[512];
    // One file for the set: shared top-level keys, a section per service (after the top level),
    // the other services' sections skipped; unknown keys named with their section and the file.
    CHECK(s_t_write(multi, "scheduler:\n  bus.hwm: 7\n  dry-run: true\nname: shared\n"
                           "bus.hwm: 3\nwatcher:\n  bus:\n    hwm: 9\n  nope: 1\n"
                           "bus:\n  endpoint: tcp://b:1\n"));
    CHECK(s_t_load_svc(&c, &msg, "scheduler", multi) == 0 && c);
    CHECK(c && cfg_int(c, "bus.hwm") == 7 && cfg_bool(c, "dry-run"));
    CHECK(c && strcmp(cfg_str(c, "name"), "shared") == 0);
    CHECK(c && strcmp(cfg_str(c, "bus.endpoint"), "tcp://127.0.0.1:5555") == 0);
    cfg_destroy(&c);
    CHECK(s_t_load_svc(&c, &msg, "bus", multi) == 0 && c);
    CHECK(c && cfg_int(c, "bus.hwm") == 3 && strcmp(cfg_str(c, "bus.endpoint"), "tcp://b:1") == 0);
    cfg_destroy(&c);
    CHECK(s_t_load_svc(&c, &msg, "watcher", multi) == ERR_INVAL && !c);
    snprintf(want, sizeof want,
             "%s:9:3: unknown key \"watcher.nope\" (not an option of rayfleet-watcher)", multi);
    CHECK(s_t_msg(&msg, want, verbose));
    CHECK(s_t_load(&c, &msg, "--config", multi, NULL) == ERR_INVAL); // no service: no sections
    CHECK(s_t_write(multi, "name: x\nsubmitter: {}\nconcurrency: 3\n"));
    CHECK(s_t_load_svc(&c, &msg, "submitter", multi) == ERR_INVAL);
    snprintf(want, sizeof want,
             "%s:3:1: unknown key \"concurrency\" (not an option of rayfleet-submitter; a set "
             "file's top-level keys are shared by every service that reads it, put the others "
             "under their service's section)",
             multi);
    CHECK(s_t_msg(&msg, want, verbose));
    // The environment: RAYFLEET_<SERVICE>_<KEY> wins over RAYFLEET_<KEY>.
    setenv("RAYFLEET_BUS_HWM", "5", 1);
    setenv("RAYFLEET_SCHEDULER_BUS_HWM", "6", 1);
    setenv("RAYFLEET_SERVE_UPGRADE_BUS_HWM", "8", 1);
    CHECK(s_t_write(multi, "name: z\n"));
    CHECK(s_t_load_svc(&c, &msg, "scheduler", multi) == 0 && c && cfg_int(c, "bus.hwm") == 6);
    cfg_destroy(&c);
    CHECK(s_t_load_svc(&c, &msg, "serve-upgrade", multi) == 0 && c && cfg_int(c, "bus.hwm") == 8);
    cfg_destroy(&c);
    CHECK(s_t_load_svc(&c, &msg, "watcher", multi) == 0 && c && cfg_int(c, "bus.hwm") == 5);
    cfg_destroy(&c);
    setenv("RAYFLEET_SCHEDULER_BUS_HWM", "lots", 1);
    CHECK(s_t_load_svc(&c, &msg, "scheduler", multi) == ERR_INVAL);
    CHECK(s_t_msg(&msg,
                  "environment RAYFLEET_SCHEDULER_BUS_HWM: must be an integer between 1 and "
                  "10000000, got \"lots\"",
                  verbose));
    unsetenv("RAYFLEET_BUS_HWM");
    unsetenv("RAYFLEET_SCHEDULER_BUS_HWM");
    unsetenv("RAYFLEET_SERVE_UPGRADE_BUS_HWM");

    // Each error kind names the source, the key and the rule.
    CHECK(s_t_write(bad, "name: x\nbus:\n  endpoint: tcp://x\n  hwm: lots\n"));
    CHECK(s_t_load(&c, &msg, "--config", bad, NULL) == ERR_INVAL && c == NULL);
    snprintf(want, sizeof want,
             "%s:4:8: bus.hwm: must be an integer between 1 and 10000000, got \"lots\"", bad);
    CHECK(s_t_msg(&msg, want, verbose));
    setenv("RAYFLEET_BUS_HWM", "lots", 1);
    CHECK(s_t_load(&c, &msg, "--name=x", NULL) == ERR_INVAL);
    CHECK(s_t_msg(&msg,
                  "environment RAYFLEET_BUS_HWM: must be an integer between 1 and 10000000, got "
                  "\"lots\"",
                  verbose));
    unsetenv("RAYFLEET_BUS_HWM");
    CHECK(s_t_load(&c, &msg, "--name=x", "--bus.hwm", "0", NULL) == ERR_INVAL);
    CHECK(s_t_msg(&msg, "flag --bus.hwm: must be an integer between 1 and 10000000, got \"0\"",
                  verbose));
    CHECK(s_t_load(&c, &msg, "--name=x", "--bus.heartbeat=5x", NULL) == ERR_INVAL);
    CHECK(s_t_msg(&msg,
                  "flag --bus.heartbeat: must be a duration such as 500ms, 2s, 1m or 1h, between "
                  "100ms and 1h, got \"5x\"",
                  verbose));
    CHECK(s_t_load(&c, &msg, "--name=x", "--bus.heartbeat=2h", NULL) == ERR_INVAL);
    CHECK(s_t_load(&c, &msg, "--name=x", "--dry-run=maybe", NULL) == ERR_INVAL);
    CHECK(s_t_msg(&msg, "flag --dry-run: must be true or false, got \"maybe\"", verbose));
    CHECK(s_t_load(&c, &msg, "--name=x", "--log-level=loud", NULL) == ERR_INVAL);
    CHECK(s_t_msg(&msg, "flag --log-level: must be one of debug, info, warn, error, got \"loud\"",
                  verbose));
    CHECK(s_t_load(&c, &msg, "--name=x", "--bus.hwmm=3", NULL) == ERR_INVAL);
    CHECK(s_t_msg(&msg, "flag --bus.hwmm: unknown option (see --help)", verbose));
    CHECK(s_t_load(&c, &msg, "--name=x", "extra", NULL) == ERR_INVAL);
    CHECK(s_t_msg(&msg, "unexpected argument \"extra\" (see --help)", verbose));
    CHECK(s_t_load(&c, &msg, "--name", NULL) == ERR_INVAL);
    CHECK(s_t_msg(&msg, "flag --name: needs a value", verbose));
    CHECK(s_t_load(&c, &msg, NULL) == ERR_INVAL);
    CHECK(s_t_msg(&msg,
                  "name: required but not set (set it in the configuration file, with "
                  "RAYFLEET_NAME or with --name)",
                  verbose));
    // Secrets: by name and by declaration, their values never appear.
    setenv("RAYFLEET_API_TOKEN", "hunter2-token", 1);
    CHECK(s_t_load(&c, &msg, "--name=x", "--api.pin=1234", NULL) == 0 && c);
    CHECK(strcmp(cfg_str(c, "api.token"), "hunter2-token") == 0);
    CHECK(strcmp(cfg_str(c, "api.pin"), "1234") == 0);
    cfg_destroy(&c);
    unsetenv("RAYFLEET_API_TOKEN");
    CHECK(s_t_write(bad, "name: x\napi:\n  token: [hunter2]\n"));
    CHECK(s_t_load(&c, &msg, "--config", bad, NULL) == ERR_INVAL);
    CHECK(strstr(buf_str(&msg), "hunter2") == NULL && strstr(buf_str(&msg), "api.token: "));
    // A value too long for its type is refused without echoing it, secret or not.
    static char huge[CFG_VALUE_MAX + 16];
    memset(huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    CHECK(s_t_load(&c, &msg, "--name", huge, NULL) == ERR_INVAL);
    CHECK(strstr(buf_str(&msg), "too long to show") != NULL);

    // File errors: unknown key with its position, wrong shape, bad YAML, missing file.
    CHECK(s_t_write(bad, "name: x\nbus:\n  hwm: 3\n  hmw: 4\n"));
    CHECK(s_t_load(&c, &msg, "--config", bad, NULL) == ERR_INVAL);
    snprintf(want, sizeof want, "%s:4:3: unknown key \"bus.hmw\"", bad);
    CHECK(s_t_msg(&msg, want, verbose));
    CHECK(s_t_write(bad, "name: x\nconfig: other.yaml\n"));
    CHECK(s_t_load(&c, &msg, "--config", bad, NULL) == ERR_INVAL);
    snprintf(want, sizeof want, "%s:2:1: unknown key \"config\"", bad);
    CHECK(s_t_msg(&msg, want, verbose));
    CHECK(s_t_write(bad, "name: x\nbus: 5\n"));
    CHECK(s_t_load(&c, &msg, "--config", bad, NULL) == ERR_INVAL);
    snprintf(want, sizeof want, "%s:2:1: unknown key \"bus\"", bad);
    CHECK(s_t_msg(&msg, want, verbose));
    CHECK(s_t_write(bad, "name: x\ndry-run: [1]\n"));
    CHECK(s_t_load(&c, &msg, "--config", bad, NULL) == ERR_INVAL);
    snprintf(want, sizeof want, "%s:2:10: dry-run: must be true or false, got a sequence", bad);
    CHECK(s_t_msg(&msg, want, verbose));
    CHECK(s_t_write(bad, "- a\n"));
    CHECK(s_t_load(&c, &msg, "--config", bad, NULL) == ERR_PARSE);
    CHECK(s_t_write(bad, "name: x\n  bad: indent\n"));
    CHECK(s_t_load(&c, &msg, "--config", bad, NULL) == ERR_PARSE);
    snprintf(want, sizeof want, "%s:2:6: mapping values are not allowed in this context", bad);
    CHECK(s_t_msg(&msg, want, verbose));
    CHECK(s_t_write(multi, "name: a\n---\nname: b\n"));
    CHECK(s_t_load(&c, &msg, "--config", multi, NULL) == ERR_PARSE);
    CHECK(s_t_write(multi, "# nothing\n"));
    CHECK(s_t_load(&c, &msg, "--config", multi, "--name=q", NULL) == 0 && c);
    cfg_destroy(&c);
    CHECK(s_t_load(&c, &msg, "--config", "/nonexistent/rf.yaml", NULL) == ERR_IO);

    // Durations.
    int64_t ms = 0;
    CHECK(s_parse_duration("500ms", &ms) && ms == 500);
    CHECK(s_parse_duration("2s", &ms) && ms == 2000);
    CHECK(s_parse_duration("1m", &ms) && ms == 60000);
    CHECK(s_parse_duration("1h2m3s4ms", &ms) && ms == 3723004);
    CHECK(s_parse_duration("0", &ms) && ms == 0);
    CHECK(!s_parse_duration("", &ms) && !s_parse_duration("5", &ms) &&
          !s_parse_duration("1.5s", &ms) && !s_parse_duration("-1s", &ms) &&
          !s_parse_duration("99999999999999999999h", &ms) && !s_parse_duration("s", &ms));

    // --help and --version, even next to mistakes.
    CHECK(s_t_load(&c, &msg, "--bogus", "--help", NULL) == CFG_HELP && c == NULL);
    CHECK(strstr(buf_str(&msg), "  --hwm\n      High-water mark. Same as --bus.hwm.\n"));
    for (const cfg_opt_t *o = s_test_table; o->key && o->type != CFG_ALIAS; o++) {
        char env[CFG_KEY_MAX + 32];
        s_env_name(o->key, env, sizeof env);
        char flag[CFG_KEY_MAX + 4];
        snprintf(flag, sizeof flag, "--%s ", o->key);
        CHECK(strstr(buf_str(&msg), flag) && strstr(buf_str(&msg), env) &&
              strstr(buf_str(&msg), o->help));
    }
    for (int i = 0; i < S_STD_COUNT; i++)
        CHECK(strstr(buf_str(&msg), s_std[i].key) != NULL);
    CHECK(strstr(buf_str(&msg), "Usage: rf-test [OPTIONS]") &&
          strstr(buf_str(&msg), "default 1000; range 1..10000000") &&
          strstr(buf_str(&msg), "default 2s; range 100ms..1h") &&
          strstr(buf_str(&msg), "RAYFLEET_WATCH_NAMESPACES") && strstr(buf_str(&msg), "--help") &&
          strstr(buf_str(&msg), "--version") && strstr(buf_str(&msg), "; required"));
    if (verbose)
        printf("%s", buf_str(&msg));
    CHECK(s_t_load(&c, &msg, "-h", NULL) == CFG_HELP);
    CHECK(s_t_load(&c, &msg, "--version", NULL) == CFG_VERSION && c == NULL);
    CHECK(strcmp(buf_str(&msg), "rf-test (rayfleet) " RF_VERSION "\n") == 0);

    // A string option with declared choices takes only those, and says which.
    static const char *const modes[] = {"off", "sqlite", "kubernetes", NULL};
    static const cfg_opt_t chosen[] = {{"lease", CFG_STRING, "off", 0, 0, false, false, "x", modes},
                                       {NULL, 0, NULL, 0, 0, false, false, NULL, NULL}};
    char *ok_argv[] = {"rf-test", "--lease=sqlite"};
    CHECK(cfg_load(chosen, 2, ok_argv, &c, NULL) == 0 && c &&
          strcmp(cfg_str(c, "lease"), "sqlite") == 0);
    cfg_destroy(&c);
    char *bad_argv[] = {"rf-test", "--lease=maybe"};
    buf_reset(&msg);
    CHECK(cfg_load(chosen, 2, bad_argv, &c, &msg) == ERR_INVAL && c == NULL);
    CHECK(s_t_msg(&msg, "flag --lease: must be one of off, sqlite, kubernetes, got \"maybe\"",
                  verbose));
    static const cfg_opt_t baddef_choice[] = {
        {"lease", CFG_STRING, "maybe", 0, 0, false, false, "x", modes},
        {NULL, 0, NULL, 0, 0, false, false, NULL, NULL}};
    char *none_argv[] = {"rf-test"};
    CHECK(cfg_load(baddef_choice, 1, none_argv, &c, NULL) == ERR_INVAL && c == NULL);

    // Faulty tables are refused.
    static const cfg_opt_t dup[] = {{"a", CFG_INT, NULL, 0, 0, false, false, "x", NULL},
                                    {"a", CFG_INT, NULL, 0, 0, false, false, "x", NULL},
                                    {NULL, 0, NULL, 0, 0, false, false, NULL, NULL}};
    static const cfg_opt_t baddef[] = {{"a", CFG_INT, "x", 0, 0, false, false, "x", NULL},
                                       {NULL, 0, NULL, 0, 0, false, false, NULL, NULL}};
    static const cfg_opt_t badkey[] = {{"A B", CFG_INT, NULL, 0, 0, false, false, "x", NULL},
                                       {NULL, 0, NULL, 0, 0, false, false, NULL, NULL}};
    static const cfg_opt_t stdclash[] = {
        {"log-level", CFG_INT, NULL, 0, 0, false, false, "x", NULL},
        {NULL, 0, NULL, 0, 0, false, false, NULL, NULL}};
    char *argv[] = {"rf-test"};
    CHECK(cfg_load(dup, 1, argv, &c, NULL) == ERR_INVAL && c == NULL);
    CHECK(cfg_load(baddef, 1, argv, &c, NULL) == ERR_INVAL);
    CHECK(cfg_load(badkey, 1, argv, &c, NULL) == ERR_INVAL);
    CHECK(cfg_load(stdclash, 1, argv, &c, NULL) == ERR_INVAL);
    CHECK(cfg_load(NULL, 1, argv, &c, NULL) == 0 && c && cfg_source(c, "state-dir"));
    cfg_destroy(&c);

    unlink(file);
    unlink(bad);
    unlink(multi);
    rmdir(dir);
    buf_free(&msg);
    for (int i = 0; i < NENV; i++) {
        if (saved[i])
            setenv(envs[i], saved[i], 1);
        else
            unsetenv(envs[i]);
        free(saved[i]);
    }
    {
        static const cfg_opt_t ta[] = {{"a", CFG_STRING, NULL, 0, 0, false, false, "a", NULL},
                                       {NULL}};
        static const cfg_opt_t tb[] = {{"b", CFG_INT, "1", 0, 0, false, false, "b", NULL},
                                       {"c", CFG_BOOL, "false", 0, 0, false, false, "c", NULL},
                                       {NULL}};
        cfg_opt_t joined[4];
        CHECK(cfg_table_join(ta, tb, joined, 4) == 3);
        CHECK(!strcmp(joined[0].key, "a") && !strcmp(joined[2].key, "c") && !joined[3].key);
        CHECK(cfg_table_join(ta, tb, joined, 3) == ERR_TOOBIG);
        CHECK(cfg_table_join(NULL, tb, joined, 4) == 2);
    }
    return SELFTEST_RESULT("cfg", verbose);
}

#endif /* RF_SELFTEST */
