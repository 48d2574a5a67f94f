/*
 * raysubmit: the simulated KubeRay submitter (`ray job submit` shell) run in process. See
 * raysubmit.h for the model and its simplifications.
 */
#include "raysubmit.h"

#include "buf.h"
#include "err.h"
#include "json.h"
#include "log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_NAME_MAX 320 /* bytes of a namespace or pod name */
#define S_MAX_TOKENS 4096 /* words + separators of one script */
#define S_GUARD 6 /* stages run back to back in one step at most */

/* Stages of a run. */
enum {
    ST_HEALTH = 0, /* until ... gcs_healthz ...; do sleep; done */
    ST_STATUS, /* if ! ray job status <id> */
    ST_SUBMIT, /* ray job submit */
    ST_LOGS, /* ray job logs [--follow]: the first request */
    ST_FOLLOW, /* ... --follow: the stream, until the job ends */
    ST_TAIL /* ray job submit without --no-wait: tail, then the job's status decides */
};

/* One lexed word (text after quote removal and expansion) or separator. */
typedef struct {
    char *text; /* the word (owned), NULL for a separator */
    size_t start, end; /* raw byte span in the script */
} s_tok_t;

typedef struct {
    s_tok_t *v; /* tokens */
    size_t n, cap; /* used, allocated */
} s_toks_t;

struct raysubmit {
    raysubmit_spec_t spec; /* the parsed command */
    char ns[S_NAME_MAX]; /* the pod's namespace */
    char pod[S_NAME_MAX]; /* the pod's name */
    char *sid; /* submission id in use (the spec's, or the one the head generated) */
    int stage; /* ST_* */
    int64_t poll_ms, dns_fail_ms; /* timing */
    int64_t nx_since; /* first NXDOMAIN of the current run of them, -1 none */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static char *s_dup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void s_toks_free(s_toks_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].text);
    free(t->v);
    memset(t, 0, sizeof(*t));
}

/* Appends a token (text stolen; NULL = separator). Returns 0, ERR_NOMEM or ERR_TOOBIG. */
static int s_toks_add(s_toks_t *t, char *text, size_t start, size_t end)
{
    if (t->n >= S_MAX_TOKENS) {
        free(text);
        return ERR_TOOBIG;
    }
    if (t->n == t->cap) {
        size_t c = t->cap ? t->cap * 2 : 64;
        s_tok_t *v = realloc(t->v, c * sizeof(*v));
        if (!v) {
            free(text);
            return ERR_NOMEM;
        }
        t->v = v;
        t->cap = c;
    }
    t->v[t->n++] = (s_tok_t){.text = text, .start = start, .end = end};
    return 0;
}

/* The value of env var `name` (len n) from a container's literal env, or NULL. */
static const char *s_env(const json_t *env, const char *name, size_t n)
{
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        const char *k = jx_str(e, "name", "");
        if (strlen(k) == n && memcmp(k, name, n) == 0)
            return json_string_value(json_object_get(e, "value"));
    }
    return NULL;
}

static bool s_is_name_char(char c, bool first)
{
    return c == '_' || isalpha((unsigned char)c) || (!first && isdigit((unsigned char)c));
}

/* Expands $NAME / ${NAME} at s[*i] (s[*i] == '$') into b. Unknown names expand to "" as in a
 * shell; `$` followed by anything else is kept literally. */
static int s_expand(const char *s, size_t *i, const json_t *env, buf_t *b)
{
    size_t j = *i + 1;
    bool brace = s[j] == '{';
    if (brace)
        j++;
    size_t k = j;
    while (s[k] && s_is_name_char(s[k], k == j))
        k++;
    if (k == j || (brace && s[k] != '}')) {
        (*i)++;
        return buf_append(b, "$", 1);
    }
    const char *v = s_env(env, s + j, k - j);
    *i = brace ? k + 1 : k;
    return v ? buf_puts(b, v) : 0;
}

static bool s_is_meta(char c)
{
    return c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '\n' || c == '<' ||
           c == '>';
}

/* Lexes a shell script into words and separators (see raysubmit.h). */
static int s_lex(const char *s, const json_t *env, s_toks_t *out)
{
    size_t i = 0;
    int rc = 0;
    buf_t w;
    buf_init(&w, RAYSUBMIT_SCRIPT_MAX);
    while (s[i] && rc == 0) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r') {
            i++;
            continue;
        }
        if (c == '#') {
            while (s[i] && s[i] != '\n')
                i++;
            continue;
        }
        if (c == '\\' && s[i + 1] == '\n') {
            i += 2;
            continue;
        }
        if (c == '>' || c == '<') {
            /* A redirection: drop the operator and its target word. */
            i++;
            while (s[i] == '>' || s[i] == '&')
                i++;
            while (s[i] == ' ' || s[i] == '\t')
                i++;
            while (s[i] && !isspace((unsigned char)s[i]) && !s_is_meta(s[i]))
                i++;
            continue;
        }
        if (s_is_meta(c)) {
            size_t st = i++;
            if ((c == '&' || c == '|') && s[i] == c)
                i++;
            rc = s_toks_add(out, NULL, st, i);
            continue;
        }
        size_t start = i;
        buf_reset(&w);
        bool any = false;
        while (s[i] && rc == 0) {
            c = s[i];
            if (c == ' ' || c == '\t' || c == '\r' || s_is_meta(c))
                break;
            any = true;
            if (c == '\'') {
                const char *e = strchr(s + i + 1, '\'');
                size_t n = e ? (size_t)(e - (s + i + 1)) : strlen(s + i + 1);
                rc = buf_append(&w, s + i + 1, n);
                i += n + 1 + (e != NULL);
            } else if (c == '"') {
                i++;
                while (s[i] && s[i] != '"' && rc == 0) {
                    if (s[i] == '\\' && s[i + 1] && strchr("\"\\$`\n", s[i + 1])) {
                        if (s[i + 1] != '\n')
                            rc = buf_append(&w, s + i + 1, 1);
                        i += 2;
                    } else if (s[i] == '$') {
                        rc = s_expand(s, &i, env, &w);
                    } else {
                        rc = buf_append(&w, s + i, 1);
                        i++;
                    }
                }
                if (s[i] == '"')
                    i++;
            } else if (c == '\\' && s[i + 1]) {
                rc = buf_append(&w, s + i + 1, 1);
                i += 2;
            } else if (c == '$') {
                rc = s_expand(s, &i, env, &w);
            } else {
                rc = buf_append(&w, s + i, 1);
                i++;
            }
        }
        if (rc == 0 && (s[i] == '>' || s[i] == '<')) {
            /* "2>&1": an all-digit word right before a redirection is its fd. */
            bool digits = w.len > 0;
            for (size_t k = 0; k < w.len; k++)
                digits = digits && isdigit((unsigned char)w.data[k]);
            if (digits)
                continue;
        }
        if (rc == 0 && any) {
            char *text = s_dup(w.len ? w.data : "", w.len);
            rc = text ? s_toks_add(out, text, start, i) : ERR_NOMEM;
        }
    }
    buf_free(&w);
    return rc;
}

/* Appends a string array's elements (command or args) as words. */
static int s_add_argv(const json_t *arr, s_toks_t *out)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        char *text = s_dup(s, strlen(s));
        int rc = text ? s_toks_add(out, text, 0, 0) : ERR_NOMEM;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static const char *s_base(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static bool s_is_shell(const char *s)
{
    const char *b = s_base(s);
    return strcmp(b, "sh") == 0 || strcmp(b, "bash") == 0 || strcmp(b, "dash") == 0 ||
           strcmp(b, "zsh") == 0 || strcmp(b, "ash") == 0;
}

/* Splits a container's command + args into words: a shell's -c script is lexed (*script set to
 * it, borrowed), anything else is taken as an argv (*script NULL). */
static int s_words(const json_t *c, s_toks_t *out, const char **script)
{
    *script = NULL;
    json_t *all = json_array();
    if (!all)
        return ERR_NOMEM;
    json_array_extend(all, json_object_get(c, "command"));
    json_array_extend(all, json_object_get(c, "args"));
    const char *argv0 = json_string_value(json_array_get(all, 0));
    int rc = 0;
    if (argv0 && s_is_shell(argv0)) {
        bool dash_c = false;
        for (size_t i = 1; i < json_array_size(all); i++) {
            const char *a = json_string_value(json_array_get(all, i));
            if (!a)
                break;
            if (strcmp(a, "--") == 0)
                continue;
            if (a[0] == '-' || a[0] == '+') {
                if (a[0] == '-' && a[1] != '-' && strchr(a, 'c'))
                    dash_c = true;
                continue;
            }
            if (dash_c) {
                if (strlen(a) > RAYSUBMIT_SCRIPT_MAX) {
                    rc = ERR_TOOBIG;
                } else {
                    *script = a;
                    rc = s_lex(a, json_object_get(c, "env"), out);
                }
                json_decref(all);
                return rc;
            }
            break;
        }
    }
    rc = s_add_argv(all, out);
    json_decref(all);
    return rc;
}

/* True when the words are an argv (no shell script) run by KubeRay's lightweight Go submitter
 * (ray-operator/rayjob-submitter, image quay.io/kuberay/submitter, binary `/submitter`). */
static bool s_is_light(const s_toks_t *t, const char *script)
{
    return !script && t->n > 0 && t->v[0].text && strcmp(s_base(t->v[0].text), "submitter") == 0;
}

/* True when words t[i..] start with `ray job <verb>`. */
static bool s_is_ray_job(const s_toks_t *t, size_t i, const char *verb)
{
    return i + 2 < t->n && t->v[i].text && t->v[i + 1].text && t->v[i + 2].text &&
           strcmp(s_base(t->v[i].text), "ray") == 0 && strcmp(t->v[i + 1].text, "job") == 0 &&
           strcmp(t->v[i + 2].text, verb) == 0;
}

bool raysubmit_detect(const json_t *container)
{
    if (!json_is_object(container))
        return false;
    /* Cheap first: the words must appear somewhere. */
    bool hint = false;
    for (int pass = 0; pass < 2 && !hint; pass++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(container, pass ? "args" : "command"), i, v)
        {
            const char *s = json_string_value(v);
            if (s && (strstr(s, "submit") != NULL))
                hint = true;
        }
    }
    if (!hint)
        return false;
    s_toks_t t = {0};
    const char *script;
    bool found = false;
    if (s_words(container, &t, &script) == 0) {
        found = s_is_light(&t, script);
        for (size_t i = 0; i < t.n && !found; i++)
            found = s_is_ray_job(&t, i, "submit");
    }
    s_toks_free(&t);
    return found;
}

int raysubmit_find(const json_t *pod)
{
    json_t *cs = jx_get(pod, "spec.containers");
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c)
    {
        if (strcmp(jx_str(c, "name", ""), RAYSUBMIT_CONTAINER) == 0 && raysubmit_detect(c))
            return (int)i;
    }
    json_array_foreach(cs, i, c)
    {
        if (raysubmit_detect(c))
            return (int)i;
    }
    return -1;
}

void raysubmit_spec_free(raysubmit_spec_t *spec)
{
    if (!spec)
        return;
    free(spec->address);
    free(spec->service);
    free(spec->service_ns);
    free(spec->submission_id);
    free(spec->entrypoint);
    json_decref(spec->runtime_env);
    json_decref(spec->metadata);
    json_decref(spec->resources);
    memset(spec, 0, sizeof(*spec));
}

/* Replaces *dst with a copy of s. */
static int s_set(char **dst, const char *s)
{
    char *p = s ? s_dup(s, strlen(s)) : NULL;
    if (s && !p)
        return ERR_NOMEM;
    free(*dst);
    *dst = p;
    return 0;
}

/* Parses a JSON option value into *dst; a bad one goes to spec->error as the CLI's failure. */
static void s_json_opt(raysubmit_spec_t *spec, const char *opt, const char *v, json_t **dst)
{
    json_error_t e;
    json_t *j = json_loads(v, JSON_DECODE_ANY, &e);
    if (!j) {
        if (!spec->error[0])
            snprintf(spec->error, sizeof(spec->error), "%s: invalid JSON: %s", opt, e.text);
        return;
    }
    json_decref(*dst);
    *dst = j;
}

/* Parses a float option value. */
static void s_num_opt(raysubmit_spec_t *spec, const char *opt, const char *v, double *dst,
                      bool *has)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (end == v || *end) {
        if (!spec->error[0])
            snprintf(spec->error, sizeof(spec->error),
                     "Invalid value for '%s': '%s' is not a valid float.", opt, v);
        return;
    }
    *dst = d;
    *has = true;
}

/* Splits the address into service / namespace / port (or local). */
static int s_address(raysubmit_spec_t *spec, const char *ns)
{
    const char *a = spec->address;
    if (!a)
        return 0;
    const char *p = strstr(a, "://");
    p = p ? p + 3 : a;
    size_t hl = strcspn(p, "/?#");
    char host[S_NAME_MAX];
    snprintf(host, sizeof(host), "%.*s", (int)(hl < sizeof(host) ? hl : sizeof(host) - 1), p);
    char *at = strrchr(host, '@');
    if (at)
        memmove(host, at + 1, strlen(at + 1) + 1);
    spec->port = 80;
    char *colon = NULL;
    if (host[0] == '[') {
        char *rb = strchr(host, ']');
        if (rb) {
            colon = rb[1] == ':' ? rb + 1 : NULL;
            rb[1] = '\0';
        }
    } else {
        colon = strrchr(host, ':');
    }
    if (colon) {
        *colon = '\0';
        char *end = NULL;
        long port = strtol(colon + 1, &end, 10);
        spec->port = end != colon + 1 && !*end && port > 0 && port < 65536 ? (int)port : -1;
    }
    for (char *c = host; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
        strcmp(host, "[::1]") == 0 || strcmp(host, "0.0.0.0") == 0) {
        spec->local = true;
        return 0;
    }
    bool ip = host[0] != '\0';
    for (char *c = host; *c; c++)
        ip = ip && (isdigit((unsigned char)*c) || *c == '.');
    if (ip || !host[0] || host[0] == '[')
        return 0; /* an address nothing in the simulation answers */
    char *dot = strchr(host, '.');
    if (dot)
        *dot = '\0';
    int rc = s_set(&spec->service, host);
    if (rc == 0 && dot && dot[1]) {
        char *ns2 = dot + 1;
        char *d2 = strchr(ns2, '.');
        if (d2)
            *d2 = '\0';
        rc = s_set(&spec->service_ns, ns2);
    } else if (rc == 0) {
        rc = s_set(&spec->service_ns, ns);
    }
    return rc;
}

/* Parses the options and entrypoint of `ray job submit` whose options start at word t[i]. */
static int s_parse_submit(const s_toks_t *t, size_t i, const char *script, raysubmit_spec_t *spec)
{
    int rc = 0;
    for (; i < t->n && t->v[i].text && rc == 0; i++) {
        const char *w = t->v[i].text;
        if (strcmp(w, "--") == 0) {
            i++;
            break;
        }
        if (strncmp(w, "--", 2) != 0 && strcmp(w, "-v") != 0) {
            break; /* click takes the first positional word as the entrypoint */
        }
        char opt[64];
        const char *eq = strchr(w, '=');
        const char *val = NULL;
        snprintf(opt, sizeof(opt), "%.*s", (int)(eq ? (size_t)(eq - w) : strlen(w)), w);
        if (strcmp(opt, "--no-wait") == 0) {
            spec->no_wait = true;
            continue;
        }
        if (strcmp(opt, "--verify") == 0 || strcmp(opt, "--log-color") == 0 ||
            strcmp(opt, "-v") == 0 || strcmp(opt, "--verbose") == 0 ||
            strcmp(opt, "--disable-usage-stats") == 0) {
            if (!eq && strcmp(opt, "--log-color") == 0 && i + 1 < t->n && t->v[i + 1].text &&
                strncmp(t->v[i + 1].text, "--", 2) != 0)
                i++;
            continue;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < t->n && t->v[i + 1].text) {
            val = t->v[++i].text;
        } else {
            snprintf(spec->error, sizeof(spec->error), "Option '%s' requires an argument.", opt);
            continue;
        }
        if (strcmp(opt, "--address") == 0)
            rc = s_set(&spec->address, val);
        else if (strcmp(opt, "--submission-id") == 0 || strcmp(opt, "--job-id") == 0)
            rc = s_set(&spec->submission_id, val);
        else if (strcmp(opt, "--runtime-env-json") == 0)
            s_json_opt(spec, opt, val, &spec->runtime_env);
        else if (strcmp(opt, "--metadata-json") == 0)
            s_json_opt(spec, opt, val, &spec->metadata);
        else if (strcmp(opt, "--entrypoint-resources") == 0)
            s_json_opt(spec, opt, val, &spec->resources);
        else if (strcmp(opt, "--entrypoint-num-cpus") == 0)
            s_num_opt(spec, opt, val, &spec->num_cpus, &spec->has_cpus);
        else if (strcmp(opt, "--entrypoint-num-gpus") == 0)
            s_num_opt(spec, opt, val, &spec->num_gpus, &spec->has_gpus);
        else if (strcmp(opt, "--entrypoint-memory") == 0)
            s_num_opt(spec, opt, val, &spec->memory, &spec->has_memory);
        /* Other options (--working-dir, --runtime-env, --headers, --log-style, ...) are
         * accepted and ignored. */
    }
    if (rc < 0)
        return rc;
    size_t first = i, last = i;
    while (last < t->n && t->v[last].text)
        last++;
    if (first >= last)
        return 0; /* no entrypoint: the CLI fails (spec->entrypoint NULL) */
    if (script) {
        size_t a = t->v[first].start, b = t->v[last - 1].end;
        spec->entrypoint = s_dup(script + a, b - a);
        return spec->entrypoint ? 0 : ERR_NOMEM;
    }
    buf_t e;
    buf_init(&e, RAYSUBMIT_SCRIPT_MAX);
    for (size_t k = first; k < last && rc == 0; k++)
        rc = buf_printf(&e, "%s%s", k > first ? " " : "", t->v[k].text);
    if (rc == 0)
        spec->entrypoint = s_dup(buf_str(&e), e.len);
    buf_free(&e);
    return rc < 0 ? rc : spec->entrypoint ? 0 : ERR_NOMEM;
}

int raysubmit_parse(const json_t *container, const char *ns, raysubmit_spec_t *out)
{
    if (!out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (!json_is_object(container) || !ns)
        return ERR_INVAL;
    s_toks_t t = {0};
    const char *script = NULL;
    int rc = s_words(container, &t, &script);
    bool found = false;
    if (rc == 0 && s_is_light(&t, script)) {
        /* The Go submitter takes the CLI's options (flag package: `--opt value`, `--opt=value`)
         * and `-- <entrypoint>`, submits (an existing submission id counts as submitted), then
         * tails the logs until the job ends and exits 0. Played as `ray job status` (no second
         * POST), `ray job submit --no-wait`, `ray job logs --follow`; no health wait. */
        found = out->check_status = out->no_wait = out->logs = out->follow = true;
        rc = s_parse_submit(&t, 1, NULL, out);
    }
    for (size_t i = 0; rc == 0 && !s_is_light(&t, script) && i < t.n; i++) {
        if (!found && s_is_ray_job(&t, i, "submit")) {
            found = true;
            rc = s_parse_submit(&t, i + 3, script, out);
        } else if (s_is_ray_job(&t, i, "status")) {
            out->check_status = true;
        } else if (s_is_ray_job(&t, i, "logs")) {
            out->logs = true;
            for (size_t k = i + 3; k < t.n && t.v[k].text; k++)
                if (strcmp(t.v[k].text, "--follow") == 0 || strcmp(t.v[k].text, "-f") == 0)
                    out->follow = true;
        }
    }
    if (rc == 0 && !found)
        rc = ERR_INVAL;
    if (rc == 0 && script)
        out->wait_health = strstr(script, "until") != NULL && strstr(script, "gcs_healthz") != NULL;
    const json_t *env = json_object_get(container, "env");
    if (rc == 0 && !out->address) {
        const char *a = s_env(env, "RAY_DASHBOARD_ADDRESS", strlen("RAY_DASHBOARD_ADDRESS"));
        if (a && *a) {
            char full[S_NAME_MAX * 2];
            snprintf(full, sizeof(full), "%s%s", strstr(a, "://") ? "" : "http://", a);
            rc = s_set(&out->address, full);
        }
    }
    if (rc == 0 && !out->submission_id) {
        const char *id = s_env(env, "RAY_JOB_SUBMISSION_ID", strlen("RAY_JOB_SUBMISSION_ID"));
        if (id && *id)
            rc = s_set(&out->submission_id, id);
    }
    if (rc == 0)
        rc = s_address(out, ns);
    if (rc == 0 && !out->entrypoint && !out->error[0])
        snprintf(out->error, sizeof(out->error), "Missing argument 'ENTRYPOINT...'.");
    if (rc == 0 && !out->address && !out->error[0])
        snprintf(out->error, sizeof(out->error), "no --address and no RAY_ADDRESS");
    s_toks_free(&t);
    return rc;
}

json_t *raysubmit_body(const raysubmit_spec_t *spec)
{
    if (!spec)
        return NULL;
    json_t *b = json_object();
    if (!b)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(b, "entrypoint",
                               spec->entrypoint ? json_string(spec->entrypoint) : json_null());
    bad |= json_object_set_new(
        b, "submission_id", spec->submission_id ? json_string(spec->submission_id) : json_null());
    bad |= json_object_set_new(
        b, "runtime_env", spec->runtime_env ? json_deep_copy(spec->runtime_env) : json_object());
    bad |= json_object_set_new(b, "metadata",
                               spec->metadata ? json_deep_copy(spec->metadata) : json_object());
    bad |= json_object_set_new(b, "entrypoint_num_cpus",
                               spec->has_cpus ? json_real(spec->num_cpus) : json_null());
    bad |= json_object_set_new(b, "entrypoint_num_gpus",
                               spec->has_gpus ? json_real(spec->num_gpus) : json_null());
    bad |= json_object_set_new(b, "entrypoint_memory",
                               spec->has_memory ? json_integer((json_int_t)spec->memory)
                                                : json_null());
    bad |= json_object_set_new(b, "entrypoint_resources",
                               spec->resources ? json_deep_copy(spec->resources) : json_null());
    if (bad) {
        json_decref(b);
        return NULL;
    }
    return b;
}

/* ---- runs ------------------------------------------------------------------------------- */

raysubmit_t *raysubmit_new(const json_t *pod, int idx, const raysubmit_opts_t *opts, int64_t now_ms)
{
    (void)now_ms;
    json_t *c = json_array_get(jx_get(pod, "spec.containers"), idx < 0 ? SIZE_MAX : (size_t)idx);
    const char *ns = jx_str(pod, "metadata.namespace", "default");
    if (!c)
        return NULL;
    raysubmit_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (raysubmit_parse(c, ns, &s->spec) < 0) {
        raysubmit_destroy(&s);
        return NULL;
    }
    snprintf(s->ns, sizeof(s->ns), "%s", ns);
    snprintf(s->pod, sizeof(s->pod), "%s", jx_str(pod, "metadata.name", ""));
    s->poll_ms = opts && opts->poll_ms > 0 ? opts->poll_ms : RAYSUBMIT_POLL_MS;
    s->dns_fail_ms = opts && opts->dns_fail_ms > 0 ? opts->dns_fail_ms : RAYSUBMIT_DNS_FAIL_MS;
    s->nx_since = -1;
    if (s_set(&s->sid, s->spec.submission_id) < 0) {
        raysubmit_destroy(&s);
        return NULL;
    }
    s->stage = s->spec.wait_health ? ST_HEALTH : s->spec.check_status ? ST_STATUS : ST_SUBMIT;
    return s;
}

void raysubmit_destroy(raysubmit_t **sp)
{
    if (!sp || !*sp)
        return;
    raysubmit_spec_free(&(*sp)->spec);
    free((*sp)->sid);
    free(*sp);
    *sp = NULL;
}

const raysubmit_spec_t *raysubmit_spec(const raysubmit_t *s)
{
    return s ? &s->spec : NULL;
}

/* One request to the submitter's address. Returns 0 (answer in *out), ERR_NOTFOUND (NXDOMAIN),
 * ERR_CONNREFUSED (nothing answers) or another error. */
static int s_call(raysubmit_t *s, raysim_t *r, int64_t now, const char *method, const char *path,
                  const char *body, rayhead_response_t *out)
{
    const raysubmit_spec_t *sp = &s->spec;
    if (!r || sp->port <= 0 || (!sp->local && !sp->service)) {
        memset(out, 0, sizeof(*out));
        return ERR_CONNREFUSED;
    }
    return raysim_dial(r, sp->local ? s->ns : sp->service_ns, sp->local ? NULL : sp->service,
                       sp->local ? s->pod : NULL, sp->port, method, path, body,
                       body ? strlen(body) : 0, now, out);
}

/* The job's status from a GET /api/jobs/<id> answer ("" when unreadable). */
static void s_job_status(const rayhead_response_t *resp, char *out, size_t n)
{
    json_t *j = json_loadb(buf_str(&resp->body), resp->body.len, 0, NULL);
    snprintf(out, n, "%s", jx_str(j, "status", ""));
    json_decref(j);
}

static bool s_terminal(const char *st)
{
    return strcmp(st, "SUCCEEDED") == 0 || strcmp(st, "FAILED") == 0 || strcmp(st, "STOPPED") == 0;
}

/* The stage after the submission (or after finding the job already there). */
static int s_after_submit(const raysubmit_t *s)
{
    if (!s->spec.no_wait)
        return ST_TAIL;
    return s->spec.logs ? ST_LOGS : -1;
}

int raysubmit_step(raysubmit_t *s, raysim_t *r, int64_t now_ms, int64_t *next_ms, int *exit_code)
{
    if (!s || !next_ms || !exit_code)
        return ERR_INVAL;
    char path[S_NAME_MAX + 32];
    char st[32];
    for (int guard = 0; guard < S_GUARD; guard++) {
        rayhead_response_t resp;
        int rc;
        int next = -2; /* -2: poll again later, -1: exit with *exit_code, else the next stage */
        switch (s->stage) {
        case ST_HEALTH:
            rc = s_call(s, r, now_ms, "GET", "/api/gcs_healthz", NULL, &resp);
            if (rc == ERR_NOTFOUND) {
                if (s->nx_since < 0)
                    s->nx_since = now_ms;
                if (now_ms - s->nx_since >= s->dns_fail_ms) {
                    *exit_code = 1;
                    next = -1;
                }
            } else {
                s->nx_since = -1;
                if (rc == 0 && resp.status == 200 && strstr(buf_str(&resp.body), "success"))
                    next = s->spec.check_status ? ST_STATUS : ST_SUBMIT;
            }
            break;
        case ST_STATUS:
            if (!s->sid) {
                rc = ERR_INVAL;
                memset(&resp, 0, sizeof(resp));
            } else {
                snprintf(path, sizeof(path), "/api/jobs/%s", s->sid);
                rc = s_call(s, r, now_ms, "GET", path, NULL, &resp);
            }
            next = rc == 0 && resp.status == 200 ? s_after_submit(s) : ST_SUBMIT;
            if (next == -1)
                *exit_code = 0;
            break;
        case ST_SUBMIT: {
            *exit_code = 1;
            next = -1;
            if (s->spec.error[0]) {
                memset(&resp, 0, sizeof(resp));
                break;
            }
            json_t *b = raysubmit_body(&s->spec);
            char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
            json_decref(b);
            if (!text)
                return ERR_NOMEM;
            rc = s_call(s, r, now_ms, "POST", "/api/jobs/", text, &resp);
            free(text);
            if (rc == 0 && resp.status == 200) {
                if (!s->sid) {
                    json_t *j = json_loadb(buf_str(&resp.body), resp.body.len, 0, NULL);
                    if (s_set(&s->sid, jx_str(j, "submission_id", "")) < 0) {
                        json_decref(j);
                        rayhead_response_free(&resp);
                        return ERR_NOMEM;
                    }
                    json_decref(j);
                }
                next = s_after_submit(s);
                if (next == -1)
                    *exit_code = 0;
            }
            break;
        }
        case ST_LOGS:
            snprintf(path, sizeof(path), "/api/jobs/%s%s", s->sid ? s->sid : "",
                     s->spec.follow ? "" : "/logs");
            rc = s_call(s, r, now_ms, "GET", path, NULL, &resp);
            if (rc != 0 || resp.status != 200 || !s->sid) {
                *exit_code = 1;
                next = -1;
            } else if (!s->spec.follow) {
                *exit_code = 0;
                next = -1;
            } else {
                s_job_status(&resp, st, sizeof(st));
                if (s_terminal(st)) {
                    *exit_code = 0;
                    next = -1;
                } else {
                    s->stage = ST_FOLLOW;
                }
            }
            break;
        case ST_FOLLOW:
        case ST_TAIL:
            snprintf(path, sizeof(path), "/api/jobs/%s", s->sid ? s->sid : "");
            rc = s_call(s, r, now_ms, "GET", path, NULL, &resp);
            if (rc == 0 && resp.status == 200) {
                s_job_status(&resp, st, sizeof(st));
                if (s_terminal(st)) {
                    next = -1;
                    *exit_code = s->stage == ST_FOLLOW || strcmp(st, "SUCCEEDED") == 0 ? 0 : 1;
                }
            } else if ((rc == 0 && resp.status == 404) || rc == ERR_CONNREFUSED ||
                       rc == ERR_NOTFOUND) {
                /* The stream ended without a terminal status: `logs` exits 0, `submit` cannot
                 * read the final status and fails. */
                next = -1;
                *exit_code = s->stage == ST_FOLLOW ? 0 : 1;
            }
            break;
        default:
            *exit_code = 1;
            return 1;
        }
        rayhead_response_free(&resp);
        if (next == -1)
            return 1;
        if (next == -2) {
            *next_ms = now_ms + s->poll_ms;
            return 0;
        }
        s->stage = next;
    }
    *next_ms = now_ms + s->poll_ms;
    return 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test -------------------------------------------------------------------------- */

#include "simtest.h"

/* KubeRay's K8sJobMode script (§2.5) for address addr, submission id id and entrypoint ep, with
 * optional extra `ray job submit` options. */
static char *s_kuberay_script(const char *addr, const char *id, const char *extra, const char *ep)
{
    buf_t b;
    buf_init(&b, 1 << 16);
    buf_printf(&b,
               "until python -c \"import urllib.request; r=urllib.request.urlopen('%s/api/"
               "gcs_healthz', timeout=10); exit(0 if b'success' in r.read() else 1)\" >/dev/null "
               "2>&1 ; do echo \"Waiting for Ray Dashboard GCS to become healthy at %s ...\" ; "
               "sleep 2 ; done ; if ! ray job status --address %s %s >/dev/null 2>&1 ; then ray "
               "job submit --address %s --no-wait %s --submission-id %s -- %s ; fi ; ray job logs "
               "--address %s --follow %s",
               addr, addr, addr, id, addr, extra, id, ep, addr, id);
    return buf_take(&b, NULL);
}

/* A container object running script under /bin/bash -ce --. */
static json_t *s_container(const char *name, const char *script)
{
    return json_pack("{s:s,s:s,s:[s,s,s],s:[s],s:[{s:s,s:s}]}", "name", name, "image",
                     "rayproject/ray:2.46.0", "command", "/bin/bash", "-ce", "--", "args", script,
                     "env", "name", "PYTHONUNBUFFERED", "value", "1");
}

typedef struct {
    simtest_clock_t clk; /* fake clock */
    objstore_t *s; /* store */
    kubelet_t *k; /* kubelet */
    controllers_t *c; /* Job + Endpoints controllers */
    raysim_t *r; /* heads */
} s_env_t;

static void s_step(s_env_t *e, int64_t ms)
{
    for (int64_t t = 0; t < ms; t += 50) {
        e->clk.now += 50;
        kubelet_tick(e->k);
        controllers_tick(e->c);
    }
    kubelet_tick(e->k);
    controllers_tick(e->c);
}

static json_t *s_get(s_env_t *e, const char *res, const char *name)
{
    json_t *o = NULL;
    objstore_status_t st;
    objstore_res_t *r = objstore_find(e->s, strcmp(res, "jobs") == 0 ? "batch" : "", res);
    if (objstore_get(e->s, r, "default", name, &o, &st) < 0)
        return NULL;
    return o;
}

/* The Ray job `id` on the cluster's head Service, as the operator would read it. */
static json_t *s_ray_job(s_env_t *e, const char *svc, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/jobs/%s", id);
    rayhead_response_t resp;
    json_t *j = NULL;
    if (raysim_proxy(e->r, "default", svc, "dashboard", "GET", path, NULL, 0, e->clk.now, &resp) ==
            0 &&
        resp.status == 200)
        j = json_loadb(buf_str(&resp.body), resp.body.len, 0, NULL);
    rayhead_response_free(&resp);
    return j;
}

/* Pods of Job `job` (list owned by the caller). */
static json_t *s_job_pods(s_env_t *e, const char *job)
{
    objstore_list_t l;
    objstore_status_t st;
    json_t *out = json_array();
    if (objstore_list(e->s, objstore_find(e->s, "", "pods"), NULL, &l, &st) == 0) {
        size_t i;
        json_t *p;
        json_array_foreach(l.items, i, p)
        {
            if (strcmp(jx_str(jx_get(p, "metadata.labels"), "job-name", ""), job) == 0)
                json_array_append(out, p);
        }
        objstore_list_free(&l);
    }
    return out;
}

static const char *s_job_cond(const json_t *job, const char *type, const char *field)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(job, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "type", ""), type) == 0 &&
            strcmp(jx_str(c, "status", ""), "True") == 0)
            return jx_str(c, field, "");
    }
    return NULL;
}

static int s_create_job(s_env_t *e, const char *name, int backoff, json_t *container)
{
    json_t *o = json_pack("{s:s,s:s,s:{s:s},s:{s:i,s:{s:{s:{s:s}},s:{s:s,s:[o]}}}}", "apiVersion",
                          "batch/v1", "kind", "Job", "metadata", "name", name, "spec",
                          "backoffLimit", backoff, "template", "metadata", "labels", "app",
                          "submitter", "spec", "restartPolicy", "Never", "containers", container);
    objstore_status_t st;
    return objstore_create(e->s, objstore_find(e->s, "batch", "jobs"), "default", &o, NULL, &st);
}

/* A Ray head pod with the given containers (stolen), restartPolicy Never. */
static int s_create_head(s_env_t *e, const char *name, const char *cluster, json_t *containers)
{
    json_t *o = json_pack("{s:{s:s,s:{s:s,s:s}},s:{s:s,s:o}}", "metadata", "name", name, "labels",
                          "ray.io/cluster", cluster, "ray.io/node-type", "head", "spec",
                          "restartPolicy", "Never", "containers", containers);
    objstore_status_t st;
    return objstore_create(e->s, objstore_find(e->s, "", "pods"), "default", &o, NULL, &st);
}

static json_t *s_head_container(void)
{
    return json_pack("{s:s,s:s,s:[{s:s,s:i},{s:s,s:i}]}", "name", "ray-head", "image",
                     "rayproject/ray:2.46.0", "ports", "name", "dashboard", "containerPort", 8265,
                     "name", "gcs-server", "containerPort", 6379);
}

static int s_test_parse(bool verbose)
{
    int failed = 0;
    const char *addr = "http://rc-head-svc.team-a.svc.cluster.local:8265";
    char *script = s_kuberay_script(
        addr, "rj-1",
        "--runtime-env-json \"{\\\"pip\\\":[\\\"requests\\\"],\\\"env_vars\\\":{\\\"A\\\":\\\"x "
        "y\\\"}}\" "
        "--metadata-json \"{\\\"owner\\\":\\\"me\\\"}\" --entrypoint-num-cpus 1.000000 "
        "--entrypoint-num-gpus 0.500000 --entrypoint-resources \"{\\\"TPU\\\":4}\"",
        "python -c \"print('hi; there')\" --n 3");
    json_t *c = s_container(RAYSUBMIT_CONTAINER, script);
    CHECK(raysubmit_detect(c));
    raysubmit_spec_t sp;
    CHECK(raysubmit_parse(c, "default", &sp) == 0);
    CHECK(sp.address && strcmp(sp.address, addr) == 0);
    CHECK(sp.service && strcmp(sp.service, "rc-head-svc") == 0);
    CHECK(sp.service_ns && strcmp(sp.service_ns, "team-a") == 0);
    CHECK(sp.port == 8265 && !sp.local);
    CHECK(sp.submission_id && strcmp(sp.submission_id, "rj-1") == 0);
    CHECK(sp.entrypoint && strcmp(sp.entrypoint, "python -c \"print('hi; there')\" --n 3") == 0);
    if (verbose)
        printf("raysubmit: entrypoint [%s]\n", sp.entrypoint ? sp.entrypoint : "(null)");
    CHECK(strcmp(jx_str(sp.runtime_env, "env_vars.A", ""), "x y") == 0);
    const char *pip0 = json_string_value(json_array_get(jx_get(sp.runtime_env, "pip"), 0));
    CHECK(pip0 && strcmp(pip0, "requests") == 0);
    CHECK(strcmp(jx_str(sp.metadata, "owner", ""), "me") == 0);
    CHECK(jx_int(sp.resources, "TPU", 0) == 4);
    CHECK(sp.has_cpus && sp.num_cpus == 1.0 && sp.has_gpus && sp.num_gpus == 0.5);
    CHECK(!sp.has_memory);
    CHECK(sp.wait_health && sp.check_status && sp.no_wait && sp.logs && sp.follow);
    CHECK(sp.error[0] == '\0');
    json_t *b = raysubmit_body(&sp);
    CHECK(strcmp(jx_str(b, "submission_id", ""), "rj-1") == 0);
    CHECK(strcmp(jx_str(b, "entrypoint", ""), sp.entrypoint) == 0);
    CHECK(json_real_value(json_object_get(b, "entrypoint_num_cpus")) == 1.0);
    CHECK(json_is_null(json_object_get(b, "entrypoint_memory")));
    CHECK(json_is_object(json_object_get(b, "runtime_env")));
    json_decref(b);
    raysubmit_spec_free(&sp);
    json_decref(c);
    free(script);

    /* SidecarMode short form; env fallbacks; argv form; a non-submitter. */
    c = s_container(RAYSUBMIT_CONTAINER,
                    "until python -c \"import urllib.request; "
                    "r=urllib.request.urlopen('http://localhost:8265/api/gcs_healthz', "
                    "timeout=10); exit(0 if b'success' in r.read() else 1)\" >/dev/null 2>&1 ; do "
                    "echo \"Waiting ...\" ; sleep 2 ; done ; ray job submit --address "
                    "http://127.0.0.1:8265 --submission-id sc-1 -- python train.py");
    CHECK(raysubmit_parse(c, "ns1", &sp) == 0);
    CHECK(sp.local && sp.port == 8265 && !sp.service);
    CHECK(sp.wait_health && !sp.check_status && !sp.no_wait && !sp.logs);
    CHECK(strcmp(sp.entrypoint, "python train.py") == 0);
    raysubmit_spec_free(&sp);
    json_decref(c);
    c = json_pack("{s:s,s:[s,s,s,s,s,s],s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "name", "mine",
                  "command", "ray", "job", "submit", "--runtime-env-json={\"a\": 1}", "--",
                  "python a.py", "env", "name", "RAY_DASHBOARD_ADDRESS", "value", "svc:8265",
                  "name", "RAY_JOB_SUBMISSION_ID", "value", "env-id", "name", "X", "value", "1");
    CHECK(raysubmit_detect(c));
    CHECK(raysubmit_parse(c, "ns2", &sp) == 0);
    CHECK(strcmp(sp.address, "http://svc:8265") == 0 && strcmp(sp.service_ns, "ns2") == 0);
    CHECK(strcmp(sp.submission_id, "env-id") == 0);
    CHECK(strcmp(sp.entrypoint, "python a.py") == 0);
    CHECK(jx_int(sp.runtime_env, "a", 0) == 1);
    CHECK(!sp.wait_health && !sp.check_status);
    raysubmit_spec_free(&sp);
    json_decref(c);
    /* $VAR expansion, bad JSON recorded as the CLI's failure. */
    c = json_pack("{s:s,s:[s,s],s:[s],s:[{s:s,s:s}]}", "name", "x", "command", "sh", "-c", "args",
                  "ray job submit --address \"$ADDR\" --metadata-json '{bad' -- ${EP}", "env",
                  "name", "ADDR", "value", "http://h.n:1234");
    CHECK(raysubmit_parse(c, "ns3", &sp) == 0);
    CHECK(strcmp(sp.address, "http://h.n:1234") == 0 && strcmp(sp.service_ns, "n") == 0);
    CHECK(sp.port == 1234 && sp.error[0] != '\0');
    raysubmit_spec_free(&sp);
    json_decref(c);
    /* KubeRay's lightweight Go submitter (sample ray-job.light-weight-submitter.yaml). */
    c = json_pack("{s:s,s:[s],s:[s,s,s,s,s],s:[{s:s,s:s},{s:s,s:s}]}", "name", "my-submitter",
                  "command", "/submitter", "args", "--runtime-env-json", "{\"pip\": [\"x\"]}", "--",
                  "python", "/home/ray/a.py", "env", "name", "RAY_DASHBOARD_ADDRESS", "value",
                  "h-svc.ns4.svc.cluster.local:8265", "name", "RAY_JOB_SUBMISSION_ID", "value",
                  "lw-1");
    CHECK(raysubmit_detect(c));
    CHECK(raysubmit_parse(c, "default", &sp) == 0);
    CHECK(sp.service && strcmp(sp.service, "h-svc") == 0 && strcmp(sp.service_ns, "ns4") == 0);
    CHECK(sp.port == 8265 && strcmp(sp.submission_id, "lw-1") == 0);
    CHECK(sp.entrypoint && strcmp(sp.entrypoint, "python /home/ray/a.py") == 0);
    CHECK(json_array_size(json_object_get(sp.runtime_env, "pip")) == 1 && !sp.error[0]);
    CHECK(!sp.wait_health && sp.check_status && sp.no_wait && sp.logs && sp.follow);
    raysubmit_spec_free(&sp);
    json_decref(c);
    c = json_pack("{s:s,s:[s,s,s]}", "name", "plain", "command", "python", "-c", "print(1)");
    CHECK(!raysubmit_detect(c));
    CHECK(raysubmit_parse(c, "default", &sp) == ERR_INVAL);
    raysubmit_spec_free(&sp);
    json_decref(c);
    CHECK(raysubmit_parse(NULL, "default", &sp) == ERR_INVAL);
    return failed;
}

/* A fresh store with the core resources and a fake clock. */
static objstore_t *s_test_store(simtest_clock_t *clk)
{
    objstore_t *s = objstore_new(0);
    if (s && simtest_core(s, clk, NULL, 0) != 0)
        objstore_destroy(&s);
    return s;
}

static int s_test_run(bool verbose)
{
    int failed = 0;
    s_env_t e = {.clk = {.now = 1700000000000LL}};
    e.s = s_test_store(&e.clk);
    CHECK(e.s != NULL);
    objstore_status_t st;
    json_t *o;
    kubelet_opts_t ko;
    kubelet_opts_default(&ko);
    ko.nodes = 2;
    ko.jitter_ms = 0;
    ko.create_ms = 100;
    ko.ready_ms = 100;
    ko.job_run_ms = 300;
    ko.submit_dns_fail_ms = 1000;
    e.k = kubelet_new(NULL, e.s, &ko);
    e.c = controllers_new(NULL, e.s);
    rayhead_options_t ho;
    rayhead_options_default(&ho);
    ho.ports_open_ms = 300;
    ho.healthy_ms = 1000;
    ho.job_pending_ms = 200;
    ho.job_run_ms = 500;
    e.r = raysim_new(NULL, e.s, &ho);
    CHECK(e.k && e.c && e.r);
    kubelet_set_raysim(e.k, e.r);

    /* The head pod and its Service. */
    json_t *cs = json_array();
    json_array_append_new(cs, s_head_container());
    CHECK(s_create_head(&e, "rc-head", "rc", cs) == 0);
    o = json_pack("{s:{s:s},s:{s:b,s:{s:s,s:s},s:[{s:s,s:i}]}}", "metadata", "name", "rc-head-svc",
                  "spec", "publishNotReadyAddresses", 1, "selector", "ray.io/cluster", "rc",
                  "ray.io/node-type", "head", "ports", "name", "dashboard", "port", 8265);
    CHECK(objstore_create(e.s, objstore_find(e.s, "", "services"), "default", &o, NULL, &st) == 0);

    /* K8sJobMode: the submitter waits for health, submits once, follows to the end. */
    const char *addr = "http://rc-head-svc.default.svc.cluster.local:8265";
    char *script = s_kuberay_script(addr, "rj-ok", "", "python ok.py FAKE:sleep=1");
    CHECK(s_create_job(&e, "rj-ok", 2, s_container(RAYSUBMIT_CONTAINER, script)) == 0);
    free(script);
    script = s_kuberay_script(addr, "rj-bad", "", "python bad.py FAKE:sleep=0.5,exit=1");
    CHECK(s_create_job(&e, "rj-bad", 2, s_container(RAYSUBMIT_CONTAINER, script)) == 0);
    free(script);
    s_step(&e, 600);
    CHECK(kubelet_submitter_count(e.k) == 2);
    json_t *pods = s_job_pods(&e, "rj-ok");
    CHECK(json_array_size(pods) == 1);
    CHECK(strcmp(jx_str(json_array_get(pods, 0), "status.phase", ""), "Running") == 0);
    json_decref(pods);
    rayhead_submit_count_t sc;
    CHECK(raysim_submit_counts(e.r, NULL, &sc) == 0 && sc.attempts == 0); /* still unhealthy */
    s_step(&e, 900);
    json_t *rj = s_ray_job(&e, "rc-head-svc", "rj-ok");
    CHECK(rj && strcmp(jx_str(rj, "entrypoint", ""), "python ok.py FAKE:sleep=1") == 0);
    CHECK(rj && strcmp(jx_str(rj, "submission_id", ""), "rj-ok") == 0);
    json_decref(rj);
    json_t *job = s_get(&e, "jobs", "rj-ok");
    CHECK(job && !s_job_cond(job, "Complete", "type")); /* the Ray job still runs */
    json_decref(job);
    s_step(&e, 2500);
    rj = s_ray_job(&e, "rc-head-svc", "rj-ok");
    CHECK(rj && strcmp(jx_str(rj, "status", ""), "SUCCEEDED") == 0);
    json_decref(rj);
    job = s_get(&e, "jobs", "rj-ok");
    CHECK(job && s_job_cond(job, "Complete", "type") != NULL);
    json_decref(job);
    pods = s_job_pods(&e, "rj-ok");
    json_t *c0 = json_array_get(jx_get(json_array_get(pods, 0), "status.containerStatuses"), 0);
    CHECK(strcmp(jx_str(json_array_get(pods, 0), "status.phase", ""), "Succeeded") == 0);
    CHECK(jx_int(c0, "state.terminated.exitCode", -1) == 0);
    json_decref(pods);
    CHECK(raysim_submit_counts(e.r, "rj-ok", &sc) == 0 && sc.attempts == 1 && sc.accepted == 1);
    /* FAKE:exit=1: the Ray job FAILED, `ray job logs --follow` still exits 0. */
    rj = s_ray_job(&e, "rc-head-svc", "rj-bad");
    CHECK(rj && strcmp(jx_str(rj, "status", ""), "FAILED") == 0);
    json_decref(rj);
    job = s_get(&e, "jobs", "rj-bad");
    CHECK(job && s_job_cond(job, "Complete", "type") != NULL);
    CHECK(job && jx_int(job, "status.failed", -1) == 0 && jx_int(job, "status.succeeded", 0) == 1);
    json_decref(job);
    CHECK(kubelet_submitter_count(e.k) == 0);

    /* A second submitter pod for an existing id: `ray job status` finds it, no new POST. */
    script = s_kuberay_script(addr, "rj-ok", "", "python ok.py FAKE:sleep=1");
    CHECK(s_create_job(&e, "rj-ok-again", 0, s_container(RAYSUBMIT_CONTAINER, script)) == 0);
    free(script);
    s_step(&e, 1000);
    job = s_get(&e, "jobs", "rj-ok-again");
    CHECK(job && s_job_cond(job, "Complete", "type") != NULL);
    json_decref(job);
    CHECK(raysim_submit_counts(e.r, "rj-ok", &sc) == 0 && sc.attempts == 1 && sc.accepted == 1);

    /* Missing Service: each pod exits 1 after dns_fail_ms; backoffLimit 1 -> 2 pods, Failed. */
    script = s_kuberay_script("http://nope-head-svc.default.svc.cluster.local:8265", "rj-nx", "",
                              "python x.py");
    CHECK(s_create_job(&e, "rj-nx", 1, s_container(RAYSUBMIT_CONTAINER, script)) == 0);
    free(script);
    s_step(&e, 700);
    pods = s_job_pods(&e, "rj-nx");
    CHECK(json_array_size(pods) == 1 &&
          strcmp(jx_str(json_array_get(pods, 0), "status.phase", ""), "Running") == 0);
    json_decref(pods);
    s_step(&e, 3000);
    job = s_get(&e, "jobs", "rj-nx");
    CHECK(job && jx_int(job, "status.failed", 0) == 2);
    CHECK(job && s_job_cond(job, "Failed", "reason") &&
          strcmp(s_job_cond(job, "Failed", "reason"), "BackoffLimitExceeded") == 0);
    json_decref(job);
    pods = s_job_pods(&e, "rj-nx");
    CHECK(json_array_size(pods) == 2);
    c0 = json_array_get(jx_get(json_array_get(pods, 0), "status.containerStatuses"), 0);
    CHECK(strcmp(jx_str(json_array_get(pods, 0), "status.phase", ""), "Failed") == 0);
    CHECK(jx_int(c0, "state.terminated.exitCode", 0) == 1);
    CHECK(strcmp(jx_str(c0, "state.terminated.reason", ""), "Error") == 0);
    json_decref(pods);
    CHECK(raysim_submit_counts(e.r, "rj-nx", &sc) == 0 && sc.attempts == 0);

    /* The exit-code annotation wins over the real run. */
    script = s_kuberay_script(addr, "rj-ann", "", "python x.py");
    json_t *ct = s_container(RAYSUBMIT_CONTAINER, script);
    free(script);
    o = json_pack("{s:s,s:s,s:{s:s},s:{s:i,s:{s:{s:{s:s}},s:{s:s,s:[o]}}}}", "apiVersion",
                  "batch/v1", "kind", "Job", "metadata", "name", "rj-ann", "spec", "backoffLimit",
                  0, "template", "metadata", "annotations", KUBELET_ANN_EXIT_CODE, "3", "spec",
                  "restartPolicy", "Never", "containers", ct);
    CHECK(objstore_create(e.s, objstore_find(e.s, "batch", "jobs"), "default", &o, NULL, &st) == 0);
    s_step(&e, 1000);
    job = s_get(&e, "jobs", "rj-ann");
    CHECK(job && s_job_cond(job, "Failed", "type") != NULL);
    json_decref(job);
    CHECK(raysim_submit_counts(e.r, "rj-ann", &sc) == 0 && sc.attempts == 0);

    /* SidecarMode: the submitter container ends alone, the head keeps running. */
    const char *side = "until python -c \"import urllib.request; "
                       "r=urllib.request.urlopen('http://localhost:8265/api/gcs_healthz', "
                       "timeout=10); exit(0 if b'success' in r.read() else 1)\" >/dev/null 2>&1 "
                       "; do echo \"Waiting ...\" ; sleep 2 ; done ; ray job submit --address "
                       "http://127.0.0.1:8265 --submission-id %s -- python side.py FAKE:%s";
    char buf[1024];
    const char *ids[2] = {"sc-ok", "sc-bad"};
    const char *fakes[2] = {"sleep=0.5", "sleep=0.5,exit=1"};
    for (int i = 0; i < 2; i++) {
        snprintf(buf, sizeof(buf), side, ids[i], fakes[i]);
        cs = json_array();
        json_array_append_new(cs, s_head_container());
        json_array_append_new(cs, s_container(RAYSUBMIT_CONTAINER, buf));
        CHECK(s_create_head(&e, ids[i], ids[i], cs) == 0);
    }
    s_step(&e, 1000);
    json_t *pod = s_get(&e, "pods", "sc-ok");
    json_t *c1 = json_array_get(jx_get(pod, "status.containerStatuses"), 1);
    CHECK(jx_get(c1, "state.running") != NULL);
    json_decref(pod);
    s_step(&e, 2500);
    for (int i = 0; i < 2; i++) {
        pod = s_get(&e, "pods", ids[i]);
        c0 = json_array_get(jx_get(pod, "status.containerStatuses"), 0);
        c1 = json_array_get(jx_get(pod, "status.containerStatuses"), 1);
        CHECK(strcmp(jx_str(pod, "status.phase", ""), "Running") == 0);
        CHECK(jx_get(c0, "state.running") != NULL);
        CHECK(strcmp(jx_str(c1, "name", ""), RAYSUBMIT_CONTAINER) == 0);
        CHECK(jx_int(c1, "state.terminated.exitCode", -1) == i);
        CHECK(strcmp(jx_str(c1, "state.terminated.reason", ""), i ? "Error" : "Completed") == 0);
        CHECK(jx_get(c1, "state.terminated.finishedAt") != NULL);
        CHECK(!jx_bool(c1, "ready", true));
        if (verbose)
            printf("raysubmit: sidecar %s exit %d\n", ids[i],
                   (int)jx_int(c1, "state.terminated.exitCode", -1));
        json_decref(pod);
        CHECK(raysim_submit_counts(e.r, ids[i], &sc) == 0 && sc.attempts == 1 && sc.accepted == 1);
    }
    CHECK(raysim_head_count(e.r) == 3);
    CHECK(kubelet_submitter_count(e.k) == 0);
    /* Counts survive the head: delete one, the total stays. */
    rayhead_submit_count_t before, after;
    raysim_submit_counts(e.r, NULL, &before);
    CHECK(objstore_delete(e.s, objstore_find(e.s, "", "pods"), "default", "sc-ok", NULL, NULL, NULL,
                          &st) == 0);
    s_step(&e, 1500);
    CHECK(raysim_head_count(e.r) == 2);
    raysim_submit_counts(e.r, NULL, &after);
    CHECK(after.attempts == before.attempts && after.accepted == before.accepted);
    CHECK(raysim_submit_counts(e.r, "sc-ok", &sc) == 0 && sc.accepted == 1);

    kubelet_set_raysim(e.k, NULL);
    raysim_destroy(&e.r);
    controllers_destroy(&e.c);
    kubelet_destroy(&e.k);
    objstore_destroy(&e.s);
    return failed;
}

#define S_SCALE_PODS 2000 /* submitter pods in the scale test */

/* Thousands of submitter pods at once against one head, driven to completion. */
static int s_test_scale(bool verbose)
{
    int failed = 0;
    s_env_t e = {.clk = {.now = 1700000000000LL}};
    e.s = s_test_store(&e.clk);
    kubelet_opts_t ko;
    kubelet_opts_default(&ko);
    ko.nodes = 4;
    ko.node_pods = "1000";
    ko.node_cpu = "1000";
    ko.jitter_ms = 0;
    ko.create_ms = 100;
    ko.ready_ms = 100;
    e.k = kubelet_new(NULL, e.s, &ko);
    e.c = controllers_new(NULL, e.s);
    rayhead_options_t ho;
    rayhead_options_default(&ho);
    ho.job_pending_ms = 200;
    ho.job_run_ms = 500;
    e.r = raysim_new(NULL, e.s, &ho);
    CHECK(e.s && e.k && e.c && e.r);
    kubelet_set_raysim(e.k, e.r);
    json_t *cs = json_array();
    json_array_append_new(cs, s_head_container());
    CHECK(s_create_head(&e, "big-head", "big", cs) == 0);
    objstore_status_t st;
    json_t *o =
        json_pack("{s:{s:s},s:{s:b,s:{s:s,s:s},s:[{s:s,s:i}]}}", "metadata", "name", "big-head-svc",
                  "spec", "publishNotReadyAddresses", 1, "selector", "ray.io/cluster", "big",
                  "ray.io/node-type", "head", "ports", "name", "dashboard", "port", 8265);
    CHECK(objstore_create(e.s, objstore_find(e.s, "", "services"), "default", &o, NULL, &st) == 0);
    s_step(&e, 300);
    objstore_res_t *rp = objstore_find(e.s, "", "pods");
    for (int i = 0; i < S_SCALE_PODS; i++) {
        char id[32], name[40];
        snprintf(id, sizeof(id), "s-%d", i);
        snprintf(name, sizeof(name), "sub-%d", i);
        char *script =
            s_kuberay_script("http://big-head-svc.default.svc:8265", id, "", "python x.py");
        json_t *pod =
            json_pack("{s:{s:s},s:{s:s,s:[o]}}", "metadata", "name", name, "spec", "restartPolicy",
                      "Never", "containers", s_container(RAYSUBMIT_CONTAINER, script));
        free(script);
        CHECK(objstore_create(e.s, rp, "default", &pod, NULL, &st) == 0);
    }
    int64_t t0 = loop_clock_ms();
    size_t peak = 0;
    for (int round = 0; round < 200; round++) {
        s_step(&e, 50);
        size_t n = kubelet_submitter_count(e.k);
        peak = n > peak ? n : peak;
        if (round > 10 && n == 0)
            break;
    }
    int64_t t1 = loop_clock_ms();
    CHECK(peak == S_SCALE_PODS);
    CHECK(kubelet_submitter_count(e.k) == 0);
    rayhead_submit_count_t sc;
    raysim_submit_counts(e.r, NULL, &sc);
    CHECK(sc.attempts == S_SCALE_PODS && sc.accepted == S_SCALE_PODS);
    json_t *last = s_get(&e, "pods", "sub-1999");
    CHECK(last && strcmp(jx_str(last, "status.phase", ""), "Succeeded") == 0);
    json_decref(last);
    if (verbose)
        printf("raysubmit: %d submitter pods ran to the end in %lld ms of CPU (peak %zu running)\n",
               S_SCALE_PODS, (long long)(t1 - t0), peak);
    kubelet_set_raysim(e.k, NULL);
    raysim_destroy(&e.r);
    controllers_destroy(&e.c);
    kubelet_destroy(&e.k);
    objstore_destroy(&e.s);
    return failed;
}

int raysubmit_test(bool verbose)
{
    int failed = 0;
    failed += s_test_parse(verbose);
    failed += s_test_run(verbose);
    failed += s_test_scale(verbose);
    return SELFTEST_RESULT("raysubmit", verbose);
}

#endif /* RF_SELFTEST */
