/*
 * yaml: libyaml events to jansson trees and back.
 *
 * Loading walks libyaml's event stream with an explicit stack of open collections (no
 * recursion, so depth is a checked number). Each anchor remembers its value and how many values
 * and scalar bytes it holds, so an alias is charged its full size before it is copied. Dumping
 * writes block YAML by hand: libyaml's emitter would need one event per node and still leave us
 * to decide quoting, which is the part that matters for round-trips.
 */
/* This file's own header shares its name with libyaml's <yaml.h>, and common/ is on the include
 * path, so <yaml.h> finds ours; with RF_YAML_IMPL defined, ours pulls in libyaml's with
 * #include_next, which only works when ours was itself found through the include path. */
#define RF_YAML_IMPL
#include <yaml.h>
#include "err.h"
#include "json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

/* What a plain scalar resolves to. */
typedef enum {
    S_STR,
    S_NULL,
    S_BOOL,
    S_INT,
    S_FLOAT,
    S_MERGE,
} s_kind_t;

/* One open mapping or sequence. */
typedef struct {
    json_t *node; /* the object or array being filled (owned by the frame) */
    char *anchor; /* its anchor name (owned), or NULL */
    size_t nodes_at_start; /* value count when it opened, to size the anchor */
    size_t bytes_at_start; /* scalar-byte count when it opened */
    char *key; /* mapping: the key waiting for its value (owned), or NULL */
    char *path; /* its dotted path when marks are kept (owned), or NULL */
    bool have_key; /* mapping: a key has been read and its value is awaited */
    bool key_is_merge; /* mapping: the waiting key is the merge key << */
    json_t *merged; /* mapping: keys from merge sources, applied at the end, or NULL */
} s_frame_t;

/* The state of one load. */
typedef struct {
    const char *name; /* file name for messages */
    buf_t *err; /* where messages go (may be NULL) */
    s_frame_t stack[YAML_MAX_DEPTH]; /* open collections */
    int depth; /* how many frames are open */
    json_t *docs; /* the result array */
    json_t *root; /* the current document's root value, or NULL */
    json_t *anchors; /* anchor name -> [value, nodes, bytes] */
    json_t *marks; /* path -> [key line, key col, value line, value col], or NULL */
    size_t nodes; /* values produced so far, alias copies included */
    size_t bytes; /* scalar bytes produced so far, alias copies included */
} s_load_t;

static int s_fail(s_load_t *l, yaml_mark_t m, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_fail(s_load_t *l, yaml_mark_t m, int rc, const char *fmt, ...)
{
    if (l->err) {
        (void)buf_printf(l->err, "%s:%zu:%zu: ", l->name, m.line + 1, m.column + 1);
        va_list ap;
        va_start(ap, fmt);
        (void)buf_vprintf(l->err, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- scalar resolution (go-yaml v2 resolve.go) ---- */

/* The go-yaml v2 resolve table: words that are not strings. */
static const struct {
    const char *word; /* the exact spelling */
    s_kind_t kind; /* what it means */
    int value; /* bool value, or for floats: 1 +inf, -1 -inf, 0 NaN */
} s_words[] = {
    {"y", S_BOOL, 1},       {"Y", S_BOOL, 1},       {"yes", S_BOOL, 1},     {"Yes", S_BOOL, 1},
    {"YES", S_BOOL, 1},     {"true", S_BOOL, 1},    {"True", S_BOOL, 1},    {"TRUE", S_BOOL, 1},
    {"on", S_BOOL, 1},      {"On", S_BOOL, 1},      {"ON", S_BOOL, 1},      {"n", S_BOOL, 0},
    {"N", S_BOOL, 0},       {"no", S_BOOL, 0},      {"No", S_BOOL, 0},      {"NO", S_BOOL, 0},
    {"false", S_BOOL, 0},   {"False", S_BOOL, 0},   {"FALSE", S_BOOL, 0},   {"off", S_BOOL, 0},
    {"Off", S_BOOL, 0},     {"OFF", S_BOOL, 0},     {"", S_NULL, 0},        {"~", S_NULL, 0},
    {"null", S_NULL, 0},    {"Null", S_NULL, 0},    {"NULL", S_NULL, 0},    {".nan", S_FLOAT, 0},
    {".NaN", S_FLOAT, 0},   {".NAN", S_FLOAT, 0},   {".inf", S_FLOAT, 1},   {".Inf", S_FLOAT, 1},
    {".INF", S_FLOAT, 1},   {"+.inf", S_FLOAT, 1},  {"+.Inf", S_FLOAT, 1},  {"+.INF", S_FLOAT, 1},
    {"-.inf", S_FLOAT, -1}, {"-.Inf", S_FLOAT, -1}, {"-.INF", S_FLOAT, -1}, {"<<", S_MERGE, 0},
};

/* The resolved value of a scalar. */
typedef struct {
    s_kind_t kind; /* its type */
    bool b; /* S_BOOL */
    json_int_t i; /* S_INT that fits int64 */
    double f; /* S_FLOAT, or S_INT beyond int64 (is_big) */
    bool is_big; /* S_INT in (INT64_MAX, UINT64_MAX], held in f */
} s_res_t;

static bool s_is_digit_in(char c, int base)
{
    if (base == 16)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    return c >= '0' && c < '0' + base;
}

/* Go's strconv.ParseInt(s, 0, 64) then ParseUint(s, 0, 64), on a string without '_'. */
static bool s_parse_go_int(const char *s, s_res_t *r)
{
    bool neg = false;
    const char *p = s;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
        base = 8;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
        base = 2;
        p += 2;
    } else if (p[0] == '0' && p[1] != '\0') {
        base = 8;
        p += 1;
    }
    if (!*p)
        return false;
    uint64_t v = 0;
    for (; *p; p++) {
        if (!s_is_digit_in(*p, base))
            return false;
        int d = *p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    r->kind = S_INT;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        r->i = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(json_int_t)v;
    } else if (v > (uint64_t)INT64_MAX) {
        if (s[0] == '+')
            return false; // ParseUint takes no sign
        r->is_big = true;
        r->f = (double)v;
    } else {
        r->i = (json_int_t)v;
    }
    return true;
}

/* Matches ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ (go-yaml's yamlStyleFloat). */
static bool s_yaml_style_float(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    } else {
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9')
                p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

/* strtod that fails on out-of-range results, as Go's ParseFloat returns an error for them. */
static bool s_parse_float(const char *s, double *out)
{
    errno = 0;
    char *end = NULL;
    double d = strtod(s, &end);
    if (end == s || *end != '\0' || isinf(d) || errno == ERANGE)
        return false;
    *out = d;
    return true;
}

/* Resolves a plain scalar's text (NUL-terminated, `len` bytes) per go-yaml v2. */
static void s_resolve(const char *s, size_t len, s_res_t *r)
{
    memset(r, 0, sizeof *r);
    r->kind = S_STR;
    unsigned char c0 = len ? (unsigned char)s[0] : 'N';
    bool is_map_hint = strchr("yYnNtTfFoO~", c0) != NULL && c0 != '\0';
    bool is_num_hint = (c0 >= '0' && c0 <= '9') || c0 == '+' || c0 == '-';
    if (len != 0 && !is_map_hint && !is_num_hint && c0 != '.' && c0 != '<')
        return;
    if (len == 0) {
        r->kind = S_NULL;
        return;
    }
    for (size_t i = 0; i < sizeof s_words / sizeof s_words[0]; i++) {
        if (strcmp(s, s_words[i].word) == 0) {
            r->kind = s_words[i].kind;
            r->b = s_words[i].value != 0;
            r->f = s_words[i].value > 0 ? INFINITY : s_words[i].value < 0 ? -INFINITY : NAN;
            return;
        }
    }
    if (c0 == '.') {
        // Not a word: maybe .5 or .5e3 (go-yaml: ParseFloat of the text as written).
        if (s_yaml_style_float(s) && s_parse_float(s, &r->f))
            r->kind = S_FLOAT;
        return;
    }
    if (!is_num_hint || len > 4096)
        return;
    char plain[4097];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '_')
            plain[n++] = s[i];
    }
    plain[n] = '\0';
    s_res_t t;
    memset(&t, 0, sizeof t);
    if (s_parse_go_int(plain, &t)) {
        *r = t;
        return;
    }
    if (s_yaml_style_float(plain) && s_parse_float(plain, &r->f)) {
        r->kind = S_FLOAT;
        return;
    }
}

/* The JSON value of a resolved scalar; `keep_real` keeps integral floats as reals. NULL for
 * values JSON cannot hold (NaN, infinity) or out of memory. */
static json_t *s_res_json(const s_res_t *r, const char *s, size_t len, bool keep_real)
{
    switch (r->kind) {
    case S_NULL:
        return json_null();
    case S_BOOL:
        return json_boolean(r->b);
    case S_INT:
        return r->is_big ? json_real(r->f) : json_integer(r->i);
    case S_FLOAT:
        if (!isfinite(r->f))
            return NULL;
        // 9.2e18: the largest magnitude whose integral doubles all fit int64.
        if (!keep_real && r->f == floor(r->f) && fabs(r->f) < 9.2e18)
            return json_integer((json_int_t)r->f);
        return json_real(r->f);
    case S_STR:
    case S_MERGE:
        break;
    }
    return json_stringn(s, len);
}

/* ---- loading ---- */

/* Charges `nodes` values and `bytes` scalar bytes to the load. */
static int s_charge(s_load_t *l, yaml_mark_t m, size_t nodes, size_t bytes)
{
    if (nodes > YAML_MAX_NODES - l->nodes || bytes > YAML_MAX_EXPANDED_BYTES - l->bytes)
        return s_fail(l, m, ERR_TOOBIG,
                      "document expands to more than %d values or %u bytes (alias bomb?)",
                      YAML_MAX_NODES, YAML_MAX_EXPANDED_BYTES);
    l->nodes += nodes;
    l->bytes += bytes;
    return 0;
}

/* Records `v` under anchor `name` with its size. */
static int s_anchor_set(s_load_t *l, const char *name, json_t *v, size_t nodes, size_t bytes)
{
    json_t *rec = json_pack("[O,I,I]", v, (json_int_t)nodes, (json_int_t)bytes);
    if (!rec || json_object_set_new(l->anchors, name, rec) != 0)
        return ERR_NOMEM;
    return 0;
}

/* The object-key form of a scalar value, as sigs.k8s.io/yaml converts keys. Returns a new
 * string (caller frees) or NULL with *why set. */
static char *s_key_string(const json_t *v, const char **why)
{
    char tmp[64];
    *why = "mapping keys must be scalars";
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (strlen(json_string_value(v)) != json_string_length(v)) {
            *why = "mapping key contains a NUL character";
            return NULL;
        }
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(tmp);
    case JSON_REAL: {
        // Go: strconv.FormatFloat(k, 'g', -1, 32): the shortest text naming the same float32.
        double d = json_real_value(v);
        for (int prec = 1; prec <= 9; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, d);
            if ((float)strtod(tmp, NULL) == (float)d)
                break;
        }
        return strdup(tmp);
    }
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    case JSON_NULL:
        *why = "mapping key is null";
        return NULL;
    default:
        return NULL;
    }
}

/* Applies one merge source object: its keys not yet merged are taken. */
static int s_merge_from(s_frame_t *f, json_t *src)
{
    if (!f->merged && !(f->merged = json_object()))
        return ERR_NOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v)
    {
        if (!json_object_get(f->merged, k) && json_object_set(f->merged, k, v) != 0)
            return ERR_NOMEM;
    }
    return 0;
}

/* The dotted path of the next value placed (or of the waiting key): a new string, or NULL when
 * out of memory. The root is "". */
static char *s_next_path(const s_load_t *l)
{
    if (l->depth == 0)
        return strdup("");
    const s_frame_t *f = &l->stack[l->depth - 1];
    const char *parent = f->path ? f->path : "";
    char idx[32];
    const char *leaf = f->key ? f->key : "";
    if (json_is_array(f->node)) {
        snprintf(idx, sizeof idx, "%zu", json_array_size(f->node));
        leaf = idx;
    }
    buf_t b;
    buf_init(&b, strlen(parent) + strlen(leaf) + 2);
    if (buf_printf(&b, "%s%s%s", parent, *parent ? "." : "", leaf) != 0)
        return NULL;
    return buf_take(&b, NULL);
}

/* Records the position of the waiting key (slot 0) or of the next value (slot 2) when marks are
 * kept for the first document. A failure to record only loses the position. */
static void s_note(s_load_t *l, yaml_mark_t m, int slot)
{
    if (!l->marks || json_array_size(l->docs) > 0)
        return;
    if (l->depth > 0) {
        const s_frame_t *f = &l->stack[l->depth - 1];
        if (json_is_object(f->node) && (!f->have_key || f->key_is_merge))
            return;
    }
    char *path = s_next_path(l);
    if (!path)
        return;
    json_t *rec = json_object_get(l->marks, path);
    if (!rec) {
        rec = json_pack("[i,i,i,i]", 0, 0, 0, 0);
        if (!rec || json_object_set_new(l->marks, path, rec) != 0) {
            free(path);
            return;
        }
    }
    json_array_set_new(rec, (size_t)slot, json_integer((json_int_t)m.line + 1));
    json_array_set_new(rec, (size_t)slot + 1, json_integer((json_int_t)m.column + 1));
    free(path);
}

/* Places a finished value (stolen) into the open collection or as the document root.
 * `is_merge_key` marks a plain << scalar. */
static int s_put(s_load_t *l, json_t *v, yaml_mark_t m, bool is_merge_key)
{
    int rc = 0;
    if (l->depth == 0) {
        json_decref(l->root);
        l->root = v;
        return 0;
    }
    s_frame_t *f = &l->stack[l->depth - 1];
    if (json_is_array(f->node)) {
        if (json_array_append_new(f->node, v) != 0)
            return ERR_NOMEM;
        return 0;
    }
    if (!f->have_key) {
        const char *why = NULL;
        if (is_merge_key) {
            f->key_is_merge = true;
            f->have_key = true;
            goto out;
        }
        char *k = s_key_string(v, &why);
        if (!k) {
            rc = s_fail(l, m, ERR_PARSE, "%s", why);
            goto out;
        }
        if (json_object_get(f->node, k)) {
            rc = s_fail(l, m, ERR_PARSE, "duplicate mapping key \"%s\"", k);
            free(k);
            goto out;
        }
        f->key = k;
        f->have_key = true;
        f->key_is_merge = false;
        s_note(l, m, 0);
        goto out;
    }
    f->have_key = false;
    if (f->key_is_merge) {
        f->key_is_merge = false;
        if (json_is_object(v)) {
            rc = s_merge_from(f, v);
        } else if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                if (!json_is_object(e)) {
                    rc = s_fail(l, m, ERR_PARSE,
                                "merge key << needs a mapping or a sequence "
                                "of mappings");
                    goto out;
                }
                if ((rc = s_merge_from(f, e)) != 0)
                    goto out;
            }
        } else {
            rc = s_fail(l, m, ERR_PARSE, "merge key << needs a mapping or a sequence of mappings");
        }
        goto out;
    }
    if (json_object_set_new(f->node, f->key, v) != 0)
        rc = ERR_NOMEM;
    v = NULL;
    free(f->key);
    f->key = NULL;
out:
    json_decref(v);
    return rc;
}

/* The short name of a YAML core tag, for messages. */
static const char *s_short_tag(const char *tag)
{
    size_t n = strlen(YAML_TAG_PREFIX);
    return strncmp(tag, YAML_TAG_PREFIX, n) == 0 ? tag + n : tag;
}

static const char *s_kind_name(s_kind_t k)
{
    static const char *const names[] = {"str", "null", "bool", "int", "float", "merge"};
    return names[k];
}

/* Builds the value of a scalar event (new reference in *out). *is_merge tells a plain <<. */
static int s_scalar(s_load_t *l, const yaml_event_t *ev, json_t **out, bool *is_merge)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    yaml_mark_t m = ev->start_mark;
    *out = NULL;
    *is_merge = false;
    int rc = s_charge(l, m, 1, len);
    if (rc)
        return rc;
    bool is_plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    const char *want = NULL;
    if (tag && strcmp(tag, "!") != 0) {
        const char *st = s_short_tag(tag);
        if (st == tag || strcmp(st, "str") == 0 || strcmp(st, "binary") == 0 ||
            strcmp(st, "timestamp") == 0 ||
            (strcmp(st, "int") && strcmp(st, "float") && strcmp(st, "bool") && strcmp(st, "null")))
            goto as_string;
        want = st;
    } else if (!is_plain || tag) {
        goto as_string;
    }
    s_res_t r;
    s_resolve(s, len, &r);
    if (r.kind == S_MERGE && !want) {
        *is_merge = true;
        *out = json_string("<<");
        return *out ? 0 : ERR_NOMEM;
    }
    if (want) {
        const char *got = s_kind_name(r.kind == S_MERGE ? S_STR : r.kind);
        bool ok = strcmp(want, got) == 0 || (strcmp(want, "float") == 0 && r.kind == S_INT);
        if (!ok)
            return s_fail(l, m, ERR_PARSE, "cannot decode !!%s `%.*s` as a !!%s", got,
                          (int)(len > 64 ? 64 : len), s, want);
        if (strcmp(want, "float") == 0 && r.kind == S_INT) {
            r.f = r.is_big ? r.f : (double)r.i;
            r.kind = S_FLOAT;
        }
    }
    *out = s_res_json(&r, s, len, want != NULL);
    if (!*out) {
        if (r.kind == S_FLOAT)
            return s_fail(l, m, ERR_PARSE, "%.*s cannot be represented in JSON", (int)len, s);
        return ERR_NOMEM;
    }
    return 0;
as_string:
    *out = json_stringn(s, len);
    if (!*out)
        return s_fail(l, m, ERR_PARSE, "scalar is not valid UTF-8");
    return 0;
}

static void s_frame_clear(s_frame_t *f)
{
    free(f->path);
    json_decref(f->node);
    json_decref(f->merged);
    free(f->anchor);
    free(f->key);
    memset(f, 0, sizeof *f);
}

/* Opens a mapping or sequence. */
static int s_open(s_load_t *l, const yaml_event_t *ev, bool is_map)
{
    yaml_mark_t m = ev->start_mark;
    if (l->depth > 0) {
        s_frame_t *top = &l->stack[l->depth - 1];
        if (json_is_object(top->node) && !top->have_key)
            return s_fail(l, m, ERR_PARSE, "mapping keys must be scalars");
    }
    if (l->depth >= YAML_MAX_DEPTH)
        return s_fail(l, m, ERR_PARSE, "nesting deeper than %d levels", YAML_MAX_DEPTH);
    int rc = s_charge(l, m, 1, 0);
    if (rc)
        return rc;
    s_frame_t *f = &l->stack[l->depth];
    memset(f, 0, sizeof *f);
    f->node = is_map ? json_object() : json_array();
    const yaml_char_t *anchor =
        is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    if (anchor && !(f->anchor = strdup((const char *)anchor))) {
        json_decref(f->node);
        return ERR_NOMEM;
    }
    if (!f->node) {
        free(f->anchor);
        return ERR_NOMEM;
    }
    s_note(l, m, 2);
    if (l->marks && !(f->path = s_next_path(l))) {
        s_frame_clear(f);
        return ERR_NOMEM;
    }
    f->nodes_at_start = l->nodes - 1;
    f->bytes_at_start = l->bytes;
    l->depth++;
    return 0;
}

/* Closes the innermost collection and places it in its parent. */
static int s_close(s_load_t *l, const yaml_event_t *ev)
{
    int rc = 0;
    s_frame_t f = l->stack[--l->depth];
    memset(&l->stack[l->depth], 0, sizeof f);
    if (f.merged) {
        const char *k;
        json_t *v;
        json_object_foreach(f.merged, k, v)
        {
            if (!json_object_get(f.node, k) && json_object_set(f.node, k, v) != 0) {
                rc = ERR_NOMEM;
                goto out;
            }
        }
        // Merged values were charged where they were written; the copies here share them.
    }
    if (f.anchor) {
        rc = s_anchor_set(l, f.anchor, f.node, l->nodes - f.nodes_at_start,
                          l->bytes - f.bytes_at_start);
        if (rc)
            goto out;
    }
    rc = s_put(l, f.node, ev->start_mark, false);
    f.node = NULL;
out:
    s_frame_clear(&f);
    return rc;
}

/* Replaces an alias by a copy of its anchor's value, charged at full size. */
static int s_alias(s_load_t *l, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    json_t *rec = json_object_get(l->anchors, name);
    if (!rec)
        return s_fail(l, ev->start_mark, ERR_PARSE, "unknown anchor '%s'", name);
    json_t *v = json_array_get(rec, 0);
    int rc = s_charge(l, ev->start_mark, (size_t)json_integer_value(json_array_get(rec, 1)),
                      (size_t)json_integer_value(json_array_get(rec, 2)));
    if (rc)
        return rc;
    json_t *copy = json_deep_copy(v);
    if (!copy)
        return ERR_NOMEM;
    // A plain << anchored and aliased stays an ordinary string key: go-yaml treats only a
    // literal << as the merge key.
    s_note(l, ev->start_mark, 2);
    return s_put(l, copy, ev->start_mark, false);
}

/* Line and column (1-based) of a byte offset, for reader errors that carry only an offset. */
static yaml_mark_t s_mark_at(const char *data, size_t len, size_t off)
{
    yaml_mark_t m = {off, 0, 0};
    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)data[i] & 0xC0) != 0x80) {
            m.column++;
        }
    }
    return m;
}

/* Reports a libyaml error. */
static int s_parser_error(s_load_t *l, const yaml_parser_t *p, const char *data, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return ERR_NOMEM;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        yaml_mark_t m = s_mark_at(data, len, p->problem_offset);
        return s_fail(l, m, ERR_PARSE, "%s", problem);
    }
    yaml_mark_t m = p->problem_mark;
    if (m.index < len && data[m.index] == '\t' && strstr(problem, "cannot start any token"))
        return s_fail(l, m, ERR_PARSE,
                      "tab character where indentation or a token is expected "
                      "(YAML indents with spaces only)");
    if (p->context)
        return s_fail(l, m, ERR_PARSE, "%s (%s at %zu:%zu)", problem, p->context,
                      p->context_mark.line + 1, p->context_mark.column + 1);
    return s_fail(l, m, ERR_PARSE, "%s", problem);
}

/* Loads a buffer; keeps value positions in *marks_out when it is not NULL. */
static int s_load(const char *data, size_t len, const char *name, json_t **docs_out,
                  json_t **marks_out, buf_t *err)
{
    int rc = 0;
    *docs_out = NULL;
    if (marks_out)
        *marks_out = NULL;
    s_load_t *l = calloc(1, sizeof *l);
    if (!l)
        return ERR_NOMEM;
    l->name = name ? name : "<input>";
    l->err = err;
    l->docs = json_array();
    l->anchors = json_object();
    if (marks_out)
        l->marks = json_object();
    yaml_parser_t parser;
    bool parser_ok = yaml_parser_initialize(&parser) != 0;
    if (!l->docs || !l->anchors || !parser_ok || (marks_out && !l->marks)) {
        rc = ERR_NOMEM;
        goto out;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(data ? data : ""), len);
    bool done = false;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = s_parser_error(l, &parser, data, len);
            goto out;
        }
        json_t *v = NULL;
        bool is_merge = false;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            json_decref(l->root);
            l->root = NULL;
            json_object_clear(l->anchors);
            break;
        case YAML_DOCUMENT_END_EVENT:
            if (l->root && !json_is_null(l->root))
                rc = json_array_append(l->docs, l->root) ? ERR_NOMEM : 0;
            json_decref(l->root);
            l->root = NULL;
            break;
        case YAML_SCALAR_EVENT:
            rc = s_scalar(l, &ev, &v, &is_merge);
            if (!rc && ev.data.scalar.anchor)
                rc = s_anchor_set(l, (const char *)ev.data.scalar.anchor, v, 1,
                                  ev.data.scalar.length);
            if (!rc) {
                if (!is_merge)
                    s_note(l, ev.start_mark, 2);
                rc = s_put(l, v, ev.start_mark, is_merge);
            } else
                json_decref(v);
            break;
        case YAML_ALIAS_EVENT:
            rc = s_alias(l, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = s_open(l, &ev, false);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = s_open(l, &ev, true);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            rc = s_close(l, &ev);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc)
            goto out;
    }
    *docs_out = l->docs;
    l->docs = NULL;
    if (marks_out) {
        *marks_out = l->marks;
        l->marks = NULL;
    }
out:
    if (parser_ok)
        yaml_parser_delete(&parser);
    while (l->depth > 0)
        s_frame_clear(&l->stack[--l->depth]);
    json_decref(l->root);
    json_decref(l->docs);
    json_decref(l->anchors);
    json_decref(l->marks);
    free(l);
    return rc;
}

int yaml_load_buf(const char *data, size_t len, const char *name, json_t **docs_out, buf_t *err)
{
    return s_load(data, len, name, docs_out, NULL, err);
}

int yaml_load_buf_marks(const char *data, size_t len, const char *name, json_t **docs_out,
                        json_t **marks_out, buf_t *err)
{
    return s_load(data, len, name, docs_out, marks_out, err);
}

static int s_load_file(const char *path, size_t max_bytes, json_t **docs_out, json_t **marks_out,
                       buf_t *err)
{
    int rc = 0;
    *docs_out = NULL;
    if (marks_out)
        *marks_out = NULL;
    buf_t data;
    buf_init(&data, max_bytes);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = ERR_IO;
        if (err)
            (void)buf_printf(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ERR_IO;
            if (err)
                (void)buf_printf(err, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        rc = buf_append(&data, chunk, (size_t)n);
        if (rc) {
            if (err && rc == ERR_TOOBIG)
                (void)buf_printf(err, "%s: file larger than %zu bytes", path, max_bytes);
            goto out;
        }
    }
    rc = s_load(buf_str(&data), data.len, path, docs_out, marks_out, err);
out:
    if (fd >= 0)
        close(fd);
    buf_free(&data);
    return rc;
}

int yaml_load_file(const char *path, size_t max_bytes, json_t **docs_out, buf_t *err)
{
    return s_load_file(path, max_bytes, docs_out, NULL, err);
}

int yaml_load_file_marks(const char *path, size_t max_bytes, json_t **docs_out, json_t **marks_out,
                         buf_t *err)
{
    return s_load_file(path, max_bytes, docs_out, marks_out, err);
}

/* ---- dumping ---- */

/* Decodes one UTF-8 character at s (valid UTF-8, as jansson guarantees); returns its length. */
static size_t s_utf8(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if ((s[0] & 0xF0) == 0xE0) {
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

/* True for characters that must be escaped: not printable for YAML, or read as line breaks. */
static bool s_needs_escape(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF;
}

/* True when the string holds a character that must be escaped (newlines and tabs count). */
static bool s_has_special(const char *s, size_t len, bool allow_nl_tab)
{
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += s_utf8((const unsigned char *)s + i, &cp);
        if (allow_nl_tab && (cp == '\n' || cp == '\t'))
            continue;
        if (s_needs_escape(cp))
            return true;
    }
    return false;
}

/* True when `s` can be written as a plain scalar and read back as the same string. */
static bool s_plain_ok(const char *s, size_t len)
{
    if (len == 0 || len > 4096 || strlen(s) != len)
        return false;
    if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) || s[len - 1] == ' ' || s[len - 1] == ':')
        return false;
    if (strstr(s, ": ") || strstr(s, " #") || strstr(s, "\t") || strncmp(s, "...", 3) == 0)
        return false;
    if (s_has_special(s, len, false))
        return false;
    s_res_t r;
    s_resolve(s, len, &r);
    return r.kind == S_STR;
}

/* True when a multi-line string reads back exactly from a | block. */
static bool s_literal_ok(const char *s, size_t len)
{
    if (len < 2 || strlen(s) != len || !memchr(s, '\n', len) || s[0] == ' ' || s[0] == '\n' ||
        s[0] == '\t')
        return false;
    if (len >= 2 && s[len - 1] == '\n' && s[len - 2] == '\n')
        return false;
    // Trailing spaces on a line and whitespace-only lines survive, but keep them quoted.
    for (size_t i = 0; i + 1 < len; i++) {
        if ((s[i] == ' ' || s[i] == '\t') && s[i + 1] == '\n')
            return false;
    }
    if (s[len - 1] == ' ' || s[len - 1] == '\t')
        return false;
    return !s_has_special(s, len, true);
}

static int s_quoted(buf_t *b, const char *s, size_t len)
{
    int rc = buf_append(b, "\"", 1);
    for (size_t i = 0; i < len && !rc;) {
        uint32_t cp;
        size_t n = s_utf8((const unsigned char *)s + i, &cp);
        if (cp == '"')
            rc = buf_append(b, "\\\"", 2);
        else if (cp == '\\')
            rc = buf_append(b, "\\\\", 2);
        else if (cp == '\n')
            rc = buf_append(b, "\\n", 2);
        else if (cp == '\t')
            rc = buf_append(b, "\\t", 2);
        else if (cp == '\r')
            rc = buf_append(b, "\\r", 2);
        else if (s_needs_escape(cp) && cp <= 0xFF)
            rc = buf_printf(b, "\\x%02X", (unsigned)cp);
        else if (s_needs_escape(cp))
            rc = buf_printf(b, "\\u%04X", (unsigned)cp);
        else
            rc = buf_append(b, s + i, n);
        i += n;
    }
    return rc ? rc : buf_append(b, "\"", 1);
}

static int s_spaces(buf_t *b, int n)
{
    static const char sp[] = "                                                                ";
    int rc = 0;
    while (n > 0 && !rc) {
        int k = n > (int)sizeof sp - 1 ? (int)sizeof sp - 1 : n;
        rc = buf_append(b, sp, (size_t)k);
        n -= k;
    }
    return rc;
}

/* Writes a string scalar; a | block's lines are indented by `indent`. */
static int s_string(buf_t *b, const char *s, size_t len, int indent)
{
    if (s_plain_ok(s, len))
        return buf_append(b, s, len);
    if (!s_literal_ok(s, len))
        return s_quoted(b, s, len);
    int rc = buf_puts(b, s[len - 1] == '\n' ? "|" : "|-");
    const char *p = s;
    const char *end = s + len;
    while (!rc && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        rc = buf_append(b, "\n", 1);
        if (!rc && n)
            rc = s_spaces(b, indent);
        if (!rc)
            rc = buf_append(b, p, n);
        p += n + 1;
    }
    return rc;
}

/* Writes a non-collection value (or an empty collection) with no line end. */
static int s_scalar_out(buf_t *b, const json_t *v, int indent)
{
    char tmp[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return buf_puts(b, "{}");
    case JSON_ARRAY:
        return buf_puts(b, "[]");
    case JSON_STRING:
        return s_string(b, json_string_value(v), json_string_length(v), indent);
    case JSON_INTEGER:
        return buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL: {
        double d = json_real_value(v);
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
        // Text that would read back as an integer gets an explicit tag to stay a real.
        s_res_t r;
        s_resolve(tmp, strlen(tmp), &r);
        bool plain = r.kind == S_FLOAT && !(r.f == floor(r.f) && fabs(r.f) < 9.2e18);
        return buf_printf(b, "%s%s", plain ? "" : "!!float ", tmp);
    }
    case JSON_TRUE:
        return buf_puts(b, "true");
    case JSON_FALSE:
        return buf_puts(b, "false");
    case JSON_NULL:
        return buf_puts(b, "null");
    }
    return ERR_INVAL;
}

static bool s_is_big(const json_t *v)
{
    return json_is_object(v) ? json_object_size(v) > 0 : json_is_array(v) && json_array_size(v);
}

static int s_emit_seq(buf_t *b, const json_t *a, int indent, bool inline_first, int depth);

/* Writes a non-empty object's entries at `indent`; the first one on the current line when
 * `inline_first` (after "- "). */
static int s_emit_map(buf_t *b, const json_t *o, int indent, bool inline_first, int depth)
{
    if (depth > JX_MAX_DEPTH)
        return ERR_INVAL;
    int rc = 0;
    bool first = true;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (!first || !inline_first)
            rc = s_spaces(b, indent);
        first = false;
        size_t start = b->len;
        if (!rc)
            rc = s_string(b, k, strlen(k), indent + 2);
        if (!rc && (b->len - start > YAML_SIMPLE_KEY_MAX || memchr(k, '\n', strlen(k)))) {
            // Long or multi-line keys: rewrite in the explicit "? key" form.
            b->len = start;
            rc = buf_puts(b, "? ");
            if (!rc)
                rc = s_quoted(b, k, strlen(k));
            if (!rc)
                rc = buf_puts(b, "\n");
            if (!rc)
                rc = s_spaces(b, indent);
        }
        if (rc)
            return rc;
        if (json_is_object(v) && s_is_big(v)) {
            rc = buf_puts(b, ":\n");
            if (!rc)
                rc = s_emit_map(b, v, indent + 2, false, depth + 1);
        } else if (json_is_array(v) && s_is_big(v)) {
            rc = buf_puts(b, ":\n");
            if (!rc)
                rc = s_emit_seq(b, v, indent, false, depth + 1);
        } else {
            rc = buf_puts(b, ": ");
            if (!rc)
                rc = s_scalar_out(b, v, indent + 2);
            if (!rc)
                rc = buf_puts(b, "\n");
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int s_emit_seq(buf_t *b, const json_t *a, int indent, bool inline_first, int depth)
{
    if (depth > JX_MAX_DEPTH)
        return ERR_INVAL;
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (i > 0 || !inline_first)
            rc = s_spaces(b, indent);
        if (!rc)
            rc = buf_puts(b, "- ");
        if (rc)
            return rc;
        if (json_is_object(v) && s_is_big(v)) {
            rc = s_emit_map(b, v, indent + 2, true, depth + 1);
        } else if (json_is_array(v) && s_is_big(v)) {
            rc = s_emit_seq(b, v, indent + 2, true, depth + 1);
        } else {
            rc = s_scalar_out(b, v, indent + 2);
            if (!rc)
                rc = buf_puts(b, "\n");
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int s_dump_one(const json_t *v, buf_t *out)
{
    if (json_is_object(v) && s_is_big(v))
        return s_emit_map(out, v, 0, false, 0);
    if (json_is_array(v) && s_is_big(v))
        return s_emit_seq(out, v, 0, false, 0);
    int rc = s_scalar_out(out, v, 2);
    return rc ? rc : buf_puts(out, "\n");
}

int yaml_dump(const json_t *v, buf_t *out)
{
    if (!v)
        return ERR_INVAL;
    size_t start = out->len;
    int rc = s_dump_one(v, out);
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

int yaml_dump_all(const json_t *docs, buf_t *out)
{
    if (!json_is_array(docs))
        return ERR_INVAL;
    size_t start = out->len;
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(docs, i, v)
    {
        if (i > 0)
            rc = buf_puts(out, "---\n");
        if (!rc)
            rc = s_dump_one(v, out);
        if (rc)
            break;
    }
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

/* The Go type name of a JSON value in encoding/json's type errors. */
static const char *s_go_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_ARRAY:
        return "array";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    default:
        return "object";
    }
}

int yaml_go_object(const char *yaml, size_t len, const char *go_type, json_t **out, buf_t *cause)
{
    *out = NULL;
    if (!yaml || len == 0)
        return 0;
    json_t *docs = NULL;
    buf_t perr;
    buf_init(&perr, 64u * 1024u);
    int rc = yaml_load_buf(yaml, len, "yaml", &docs, &perr);
    if (rc == ERR_NOMEM) {
        buf_free(&perr);
        return rc;
    }
    if (rc != 0) {
        /* "yaml:L:C: problem" -> sigs.k8s.io/yaml's "yaml: line L: problem" */
        const char *e = buf_str(&perr);
        const char *l = strchr(e, ':');
        long line = l ? strtol(l + 1, NULL, 10) : 0;
        const char *prob = l ? strchr(l + 1, ':') : NULL;
        prob = prob ? strchr(prob + 1, ':') : NULL;
        if (prob && line > 0)
            buf_printf(cause, "error converting YAML to JSON: yaml: line %ld:%s", line, prob + 1);
        else
            buf_printf(cause, "error converting YAML to JSON: %s", e);
        buf_free(&perr);
        return ERR_INVAL;
    }
    buf_free(&perr);
    json_t *doc = json_array_get(docs, 0);
    if (doc && !json_is_null(doc)) {
        if (!json_is_object(doc)) {
            buf_printf(cause,
                       "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal %s "
                       "into Go value of type %s",
                       s_go_kind(doc), go_type);
            rc = ERR_INVAL;
        } else {
            *out = json_incref(doc);
        }
    }
    json_decref(docs);
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

/* Loads `text` and returns the docs array (or NULL); the error text goes to err. */
static json_t *s_t_load(const char *text, buf_t *err)
{
    json_t *docs = NULL;
    buf_reset(err);
    (void)yaml_load_buf(text, strlen(text), "t.yaml", &docs, err);
    return docs;
}

/* Loads one document holding `text` and compares its canonical JSON with `want`. */
static bool s_t_is(const char *text, const char *want)
{
    buf_t err, c;
    buf_init(&err, 1024);
    buf_init(&c, 65536);
    json_t *docs = s_t_load(text, &err);
    bool ok = docs && json_array_size(docs) == 1 &&
              jx_dump_canonical(json_array_get(docs, 0), &c) == 0 && strcmp(buf_str(&c), want) == 0;
    if (!ok)
        printf("  yaml: %s -> %s (want %s) %s\n", text, buf_str(&c), want, buf_str(&err));
    json_decref(docs);
    buf_free(&err);
    buf_free(&c);
    return ok;
}

/* Loads `text`, expecting failure `rc` with a message starting with `prefix`. */
static bool s_t_err(const char *text, int want_rc, const char *prefix, bool verbose)
{
    buf_t err;
    buf_init(&err, 1024);
    json_t *docs = NULL;
    int rc = yaml_load_buf(text, strlen(text), "t.yaml", &docs, &err);
    bool ok = rc == want_rc && docs == NULL && strncmp(buf_str(&err), prefix, strlen(prefix)) == 0;
    json_decref(docs);
    if (!ok || verbose)
        printf("  %s: rc %d, error: %s\n", ok ? "ok" : "MISMATCH", rc, buf_str(&err));
    buf_free(&err);
    return ok;
}

/* Checks every document of a file: JSON text round-trip and YAML dump round-trip. */
static int s_t_roundtrip(const json_t *docs, const char *path)
{
    int failed = 0;
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        char *txt = json_dumps(d, JSON_ENCODE_ANY);
        json_t *back = txt ? json_loads(txt, JSON_DECODE_ANY, NULL) : NULL;
        CHECK(back && json_equal(back, d));
        free(txt);
        json_decref(back);
        buf_t y, err;
        buf_init(&y, 64u * 1024 * 1024);
        buf_init(&err, 1024);
        json_t *again = NULL;
        CHECK(yaml_dump(d, &y) == 0);
        CHECK(yaml_load_buf(buf_str(&y), y.len, "dump", &again, &err) == 0);
        bool same = again && json_array_size(again) == 1 && json_equal(json_array_get(again, 0), d);
        CHECK(same);
        if (!same)
            printf("  round-trip failed: %s doc %zu: %s\n", path, i, buf_str(&err));
        json_decref(again);
        buf_free(&y);
        buf_free(&err);
    }
    return failed;
}

/* Loads every .yaml/.yml file below `dir`; counts files and documents. */
static int s_t_walk(const char *dir, int *files, int *ndocs, int depth)
{
    int failed = 0;
    DIR *d = opendir(dir);
    if (!d || depth > 16) {
        if (d)
            closedir(d);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            failed += s_t_walk(path, files, ndocs, depth + 1);
            continue;
        }
        size_t n = strlen(e->d_name);
        bool is_yaml = (n > 5 && strcmp(e->d_name + n - 5, ".yaml") == 0) ||
                       (n > 4 && strcmp(e->d_name + n - 4, ".yml") == 0);
        if (!is_yaml)
            continue;
        buf_t err;
        buf_init(&err, 1024);
        json_t *docs = NULL;
        int rc = yaml_load_file(path, 16u * 1024 * 1024, &docs, &err);
        CHECK(rc == 0);
        if (rc)
            printf("  %s\n", buf_str(&err));
        (*files)++;
        if (docs) {
            *ndocs += (int)json_array_size(docs);
            failed += s_t_roundtrip(docs, path);
        }
        json_decref(docs);
        buf_free(&err);
    }
    closedir(d);
    return failed;
}

int yaml_test(bool verbose)
{
    int failed = 0;
    buf_t err;
    buf_init(&err, 1024);

    // Resolution table (go-yaml v2).
    CHECK(s_t_is("a: yes", "{\"a\":true}"));
    CHECK(s_t_is("a: \"yes\"", "{\"a\":\"yes\"}"));
    CHECK(s_t_is("a: 'on'", "{\"a\":\"on\"}"));
    CHECK(s_t_is("[y, Y, n, NO, On, OFF, True, FALSE, yEs, tRUE]",
                 "[true,true,false,false,true,false,true,false,\"yEs\",\"tRUE\"]"));
    CHECK(s_t_is("[~, null, Null, NULL, nULL, '', \"~\"]",
                 "[null,null,null,null,\"nULL\",\"\",\"~\"]"));
    CHECK(s_t_is("a:\nb: ~", "{\"a\":null,\"b\":null}"));
    CHECK(s_t_is("[0x1F, 0X1f, -0x1F, 0o17, 010, 0b101, -0b11, 1_000, +12, 0, -0]",
                 "[31,31,-31,15,8,5,-3,1000,12,0,0]"));
    CHECK(s_t_is("[08, 09.5, 1e3, 1.5, .5, +.5, -1.25e-2, 1., 1_000.5]",
                 "[8,9.5,1000,1.5,0.5,0.5,-0.012500000000000001,1,1000.5]"));
    CHECK(s_t_is("[0x, 1e400, .e3, 1.2.3, -, 0x1G, 2024-01-02, 1:20, 12abc, nan, Infinity]",
                 "[\"0x\",\"1e400\",\".e3\",\"1.2.3\",\"-\",\"0x1G\",\"2024-01-02\",\"1:20\","
                 "\"12abc\",\"nan\",\"Infinity\"]"));
    CHECK(s_t_is("[9223372036854775807, -9223372036854775808, 18446744073709551615]",
                 "[9223372036854775807,-9223372036854775808,1.8446744073709552e19]"));
    CHECK(s_t_is("[!!str 123, !!str yes, !!int '42', !!float 1, !!bool 'true', !!null '', !foo 7]",
                 "[\"123\",\"yes\",42,1.0,true,null,\"7\"]"));
    CHECK(s_t_is("a: |\n  line1\n  line2\nb: >\n  folded\n  text\nc: |-\n  x\n",
                 "{\"a\":\"line1\\nline2\\n\",\"b\":\"folded text\\n\",\"c\":\"x\"}"));
    CHECK(s_t_err("{true: c, y: e}", ERR_PARSE, "t.yaml:1:11: duplicate mapping key \"true\"",
                  verbose));
    CHECK(s_t_is("{1: a, 0x10: b, true: c, 1.5: d}",
                 "{\"1\":\"a\",\"1.5\":\"d\",\"16\":\"b\",\"true\":\"c\"}"));
    CHECK(s_t_err("a: !!int abc\n", ERR_PARSE, "t.yaml:1:4: cannot decode !!str `abc` as a !!int",
                  verbose));
    CHECK(s_t_err("a: .inf\n", ERR_PARSE, "t.yaml:1:4: .inf cannot be represented", verbose));
    CHECK(s_t_err("~: 1\n", ERR_PARSE, "t.yaml:1:1: mapping key is null", verbose));
    CHECK(s_t_err("? [a]\n: 1\n", ERR_PARSE, "t.yaml:1:3: mapping keys must be scalars", verbose));

    // Syntax errors carry exact line and column.
    CHECK(s_t_err("apiVersion: v1\nkind: RayCluster\nmetadata:\n  name: x\n  labels: a: b\n",
                  ERR_PARSE, "t.yaml:5:12: mapping values are not allowed in this context",
                  verbose));
    CHECK(s_t_err("a:\n  b: 1\n\tc: 2\n", ERR_PARSE,
                  "t.yaml:3:1: found a tab character that violates indentation", verbose));
    CHECK(
        s_t_err("a:\n\tb: 1\n", ERR_PARSE, "t.yaml:2:1: tab character where indentation", verbose));
    CHECK(s_t_err("a: [1, 2\nb: 3\n", ERR_PARSE, "t.yaml:2:2: did not find expected ',' or ']'",
                  verbose));
    CHECK(s_t_err("a: 1\na: 2\n", ERR_PARSE, "t.yaml:2:1: duplicate mapping key \"a\"", verbose));
    CHECK(s_t_err("a: *nope\n", ERR_PARSE, "t.yaml:1:4: unknown anchor 'nope'", verbose));
    CHECK(s_t_err("a: \"\\ud800\"\n", ERR_PARSE,
                  "t.yaml:1:7: found invalid Unicode character escape code", verbose));
    CHECK(s_t_err("a: b\n\xff\n", ERR_PARSE, "t.yaml:2:1: invalid leading UTF-8 octet", verbose));

    // YAML 1.1 keeps its surprises, as kubectl does: the key y is the boolean true.
    CHECK(s_t_is("y: 1\nx: 2\n", "{\"true\":1,\"x\":2}"));

    // Anchors, aliases and merge keys.
    CHECK(s_t_is("base: &b {x: 1, w: 2}\nuse:\n  <<: *b\n  w: 3\n  z: 4\n",
                 "{\"base\":{\"w\":2,\"x\":1},\"use\":{\"w\":3,\"x\":1,\"z\":4}}"));
    CHECK(s_t_is("a: &a {x: 1}\nb: &b {x: 2, w: 0}\nc:\n  z: 9\n  <<: [*a, *b]\n",
                 "{\"a\":{\"x\":1},\"b\":{\"w\":0,\"x\":2},\"c\":{\"w\":0,\"x\":1,\"z\":9}}"));
    CHECK(
        s_t_is("a: &s hello\nb: *s\n'<<': q\n", "{\"<<\":\"q\",\"a\":\"hello\",\"b\":\"hello\"}"));
    CHECK(s_t_err("a: 1\nb:\n  <<: 5\n", ERR_PARSE, "t.yaml:3:7: merge key << needs", verbose));
    const char *lol = "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
                      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                      "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                      "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                      "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                      "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                      "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                      "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    CHECK(s_t_err(lol, ERR_TOOBIG, "t.yaml:6:", verbose));
    buf_t deep;
    buf_init(&deep, 4096);
    for (int i = 0; i < YAML_MAX_DEPTH + 1; i++)
        CHECK(buf_puts(&deep, "[") == 0);
    CHECK(s_t_err(buf_str(&deep), ERR_PARSE, "t.yaml:1:257: nesting deeper than", verbose));
    buf_free(&deep);

    // Multiple documents; empty ones are skipped.
    json_t *docs =
        s_t_load("---\n# only a comment\n---\na: 1\n---\n---\n- x\n...\n---\nnull\n", &err);
    CHECK(docs && json_array_size(docs) == 2);
    CHECK(jx_int(json_array_get(docs, 0), "a", 0) == 1);
    CHECK(json_is_array(json_array_get(docs, 1)));
    buf_t y;
    buf_init(&y, 1 << 20);
    CHECK(yaml_dump_all(docs, &y) == 0);
    CHECK(strcmp(buf_str(&y), "a: 1\n---\n- x\n") == 0);
    CHECK(yaml_dump_all(json_array_get(docs, 0), &y) == ERR_INVAL);
    json_decref(docs);
    docs = s_t_load("", &err);
    CHECK(docs && json_array_size(docs) == 0);
    json_decref(docs);

    // Dump quoting: every string that would read back as something else is quoted.
    json_t *t =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:f,s:f,s:f,s:{},s:[]}", "yes",
                  "yes", "n", "0x1F", "e", "", "t", "a: b", "h", "x #y", "lead", " x", "dash",
                  "- x", "ml", "line1\nline2\n", "ml2", "a\n\nb", "ctl", "bell\a\xc2\x85", "<<",
                  "merge", "r1", 9.0, "r2", 0.1, "r3", 1e300, "eo", "ea");
    buf_reset(&y);
    CHECK(t && yaml_dump(t, &y) == 0);
    if (verbose)
        printf("%s", buf_str(&y));
    CHECK(strstr(buf_str(&y), "\"yes\": \"yes\"\n") != NULL);
    CHECK(strstr(buf_str(&y), "\"n\": \"0x1F\"\n") != NULL);
    CHECK(strstr(buf_str(&y), "ml: |\n  line1\n  line2\n") != NULL);
    CHECK(strstr(buf_str(&y), "r1: !!float 9\n") != NULL);
    CHECK(strstr(buf_str(&y), "\"<<\": merge\n") != NULL);
    docs = s_t_load(buf_str(&y), &err);
    CHECK(docs && json_equal(json_array_get(docs, 0), t));
    json_decref(docs);
    buf_reset(&y);
    CHECK(yaml_dump(NULL, &y) == ERR_INVAL);
    buf_t small;
    buf_init(&small, 10);
    CHECK(yaml_dump(t, &small) == ERR_TOOBIG && small.len == 0);
    buf_free(&small);
    json_decref(t);
    // A key longer than libyaml's simple-key limit uses the explicit form.
    char longkey[1500];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    t = json_pack("{s:{s:i}}", longkey, "a", 1);
    CHECK(t && yaml_dump(t, &y) == 0);
    docs = s_t_load(buf_str(&y), &err);
    CHECK(docs && json_equal(json_array_get(docs, 0), t));
    json_decref(docs);
    json_decref(t);
    buf_free(&y);

    // Positions of keys and values in the first document.
    json_t *marks = NULL;
    const char *mt = "bus:\n  hwm: 10\n  peers: [a, b]\nlog-level: debug\n---\nother: 1\n";
    CHECK(yaml_load_buf_marks(mt, strlen(mt), "m.yaml", &docs, &marks, &err) == 0);
    CHECK(marks && json_object_size(marks) == 7);
    t = json_object_get(marks, "bus.hwm");
    CHECK(t && json_integer_value(json_array_get(t, 0)) == 2 &&
          json_integer_value(json_array_get(t, 1)) == 3 &&
          json_integer_value(json_array_get(t, 2)) == 2 &&
          json_integer_value(json_array_get(t, 3)) == 8);
    t = json_object_get(marks, "bus.peers.1");
    CHECK(t && json_integer_value(json_array_get(t, 2)) == 3 &&
          json_integer_value(json_array_get(t, 3)) == 14);
    CHECK(json_object_get(marks, "") && json_object_get(marks, "log-level") &&
          !json_object_get(marks, "other"));
    json_decref(docs);
    json_decref(marks);
    CHECK(yaml_load_file_marks("/nonexistent.yaml", 100, &docs, &marks, &err) == ERR_IO);
    CHECK(docs == NULL && marks == NULL);

    // Files: missing, too big.
    CHECK(yaml_load_file("/nonexistent.yaml", 100, &docs, &err) == ERR_IO && docs == NULL);
    const char *sh = selftest_shared_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/kuberay/crd/ray.io_rayclusters.yaml", sh);
    CHECK(yaml_load_file(path, 1000, &docs, &err) == ERR_TOOBIG && docs == NULL);

    // Every upstream sample and CRD loads and round-trips.
    int files = 0;
    int ndocs = 0;
    snprintf(path, sizeof path, "%s/kuberay/samples", sh);
    failed += s_t_walk(path, &files, &ndocs, 0);
    int sample_files = files;
    snprintf(path, sizeof path, "%s/kuberay/crd", sh);
    failed += s_t_walk(path, &files, &ndocs, 0);
    if (verbose)
        printf("  checked %d sample files and %d CRD files, %d documents\n", sample_files,
               files - sample_files, ndocs);
    CHECK(sample_files >= 80);
    CHECK(files - sample_files == 4);

    buf_free(&err);
    /* sigs.k8s.io/yaml into a Go object type */
    {
        json_t *o = NULL;
        buf_t c;
        buf_init(&c, 1024);
        CHECK(yaml_go_object("a: 1\n", 5, "T", &o, &c) == 0 && json_is_object(o));
        json_decref(o);
        CHECK(yaml_go_object("", 0, "T", &o, &c) == 0 && !o);
        CHECK(yaml_go_object("- x\n", 4, "T", &o, &c) == ERR_INVAL && !o);
        CHECK(strcmp(buf_str(&c), "error unmarshaling JSON: while decoding JSON: json: cannot "
                                  "unmarshal array into Go value of type T") == 0);
        buf_reset(&c);
        CHECK(yaml_go_object("a: [1\n", 6, "T", &o, &c) == ERR_INVAL && !o);
        CHECK(strncmp(buf_str(&c), "error converting YAML to JSON: yaml: line ", 42) == 0);
        buf_free(&c);
    }
    return SELFTEST_RESULT("yaml", verbose);
}

#endif /* RF_SELFTEST */
