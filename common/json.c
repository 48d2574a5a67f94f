/*
 * json: jansson helpers. Loading checks the nesting depth with a cheap pre-scan (strings are
 * skipped, brackets counted) so the depth limit does not depend on how jansson was compiled.
 */
#include "json.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Appends "name:line:col: msg" to err (if any). */
static void s_errf(buf_t *err, const char *name, int line, int col, const char *msg)
{
    if (!err)
        return;
    (void)buf_printf(err, "%s:%d:%d: %s", name ? name : "<input>", line, col, msg);
}

/* Checks the nesting depth of the JSON text; on failure reports where the limit was passed. Also
 * refuses a NUL byte outside a string: jansson's lexer loses one NUL that follows a number or a
 * literal (it ungets it into its NUL-terminated look-ahead buffer), so json_loadb() accepts "8\0"
 * and "[8\0]", which are not JSON (RFC 8259 allows no NUL outside a string, where jansson refuses
 * it as a control character). jproj.c refuses them too: both parsers accept the same texts. */
static int s_check_depth(const char *data, size_t len, const char *name, buf_t *err)
{
    int depth = 0;
    int line = 1;
    int col = 0;
    bool in_str = false;
    bool esc = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if ((c & 0xC0) != 0x80)
            col++;
        if (c == '\n') {
            line++;
            col = 0;
            continue;
        }
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '\0') {
            s_errf(err, name, line, col, "NUL byte outside a string");
            return ERR_PARSE;
        } else if (c == '{' || c == '[') {
            if (++depth > JX_MAX_DEPTH) {
                char msg[96];
                snprintf(msg, sizeof msg, "nesting deeper than %d levels", JX_MAX_DEPTH);
                s_errf(err, name, line, col, msg);
                return ERR_PARSE;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

int jx_parse(const char *data, size_t len, const char *name, json_t **out, buf_t *err)
{
    *out = NULL;
    if (!data && len)
        return ERR_INVAL;
    int rc = s_check_depth(data ? data : "", len, name, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *j = json_loadb(data ? data : "", len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        if (json_error_code(&je) == json_error_out_of_memory)
            return ERR_NOMEM;
        s_errf(err, name, je.line < 1 ? 1 : je.line, je.column < 1 ? 1 : je.column, je.text);
        return ERR_PARSE;
    }
    *out = j;
    return 0;
}

json_t *jx_load_buf(const char *data, size_t len, const char *name, buf_t *err)
{
    json_t *j = NULL;
    int rc = jx_parse(data, len, name, &j, err);
    if (rc == ERR_NOMEM && err)
        (void)buf_printf(err, "%s: out of memory", name ? name : "<input>");
    return j;
}

json_t *jx_load_file(const char *path, size_t max_bytes, buf_t *err)
{
    json_t *j = NULL;
    buf_t data;
    buf_init(&data, max_bytes);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
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
            if (err)
                (void)buf_printf(err, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        int rc = buf_append(&data, chunk, (size_t)n);
        if (rc) {
            if (err && rc == ERR_TOOBIG)
                (void)buf_printf(err, "%s: file larger than %zu bytes", path, max_bytes);
            else if (err)
                (void)buf_printf(err, "%s: %s", path, err_str(rc));
            goto out;
        }
    }
    j = jx_load_buf(buf_str(&data), data.len, path, err);
out:
    if (fd >= 0)
        close(fd);
    buf_free(&data);
    return j;
}

/* One step down: key in an object, or an all-digit index in an array. */
static json_t *s_step(const json_t *cur, const char *key)
{
    if (json_is_object(cur))
        return json_object_get(cur, key);
    if (json_is_array(cur)) {
        if (!*key || strlen(key) > 18)
            return NULL;
        size_t idx = 0;
        for (const char *p = key; *p; p++) {
            if (*p < '0' || *p > '9')
                return NULL;
            idx = idx * 10 + (size_t)(*p - '0');
        }
        return json_array_get(cur, idx);
    }
    return NULL;
}

json_t *jx_get(const json_t *obj, const char *path)
{
    if (!obj || !path || !*path)
        return NULL;
    size_t n = strlen(path);
    if (n > JX_PATH_MAX)
        return NULL;
    char copy[JX_PATH_MAX + 1];
    memcpy(copy, path, n + 1);
    json_t *cur = (json_t *)obj;
    char *seg = copy;
    for (;;) {
        char *dot = strchr(seg, '.');
        if (dot)
            *dot = '\0';
        cur = s_step(cur, seg);
        if (!cur || !dot)
            return cur;
        seg = dot + 1;
    }
}

json_t *jx_vgetv(const json_t *obj, va_list ap)
{
    json_t *cur = (json_t *)obj;
    const char *key;
    while (cur && (key = va_arg(ap, const char *)) != NULL)
        cur = s_step(cur, key);
    return cur;
}

json_t *jx_getv(const json_t *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    json_t *r = jx_vgetv(obj, ap);
    va_end(ap);
    return r;
}

const char *jx_str(const json_t *obj, const char *path, const char *def)
{
    json_t *v = jx_get(obj, path);
    return json_is_string(v) ? json_string_value(v) : def;
}

json_int_t jx_int(const json_t *obj, const char *path, json_int_t def)
{
    json_t *v = jx_get(obj, path);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

bool jx_bool(const json_t *obj, const char *path, bool def)
{
    json_t *v = jx_get(obj, path);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

#define JX_CANON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

/* Context for the dump callback: the buffer and the first error seen. */
typedef struct {
    buf_t *out; /* where the text goes */
    int rc; /* 0, or the first buf_append error */
} s_dump_ctx_t;

static int s_dump_cb(const char *p, size_t n, void *data)
{
    s_dump_ctx_t *c = data;
    int rc = buf_append(c->out, p, n);
    if (rc) {
        c->rc = rc;
        return -1;
    }
    return 0;
}

int jx_dump_canonical(const json_t *obj, buf_t *out)
{
    if (!obj)
        return ERR_INVAL;
    size_t start = out->len;
    s_dump_ctx_t c = {out, 0};
    if (json_dump_callback(obj, s_dump_cb, &c, JX_CANON_FLAGS) != 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return c.rc ? c.rc : ERR_NOMEM;
    }
    return 0;
}

static int s_hash_cb(const char *p, size_t n, void *data)
{
    uint64_t *h = data;
    for (size_t i = 0; i < n; i++) {
        *h ^= (unsigned char)p[i];
        *h *= JX_FNV_PRIME;
    }
    return 0;
}

int jx_hash(const json_t *obj, uint64_t *out)
{
    if (!obj)
        return ERR_INVAL;
    uint64_t h = JX_FNV_OFFSET;
    if (json_dump_callback(obj, s_hash_cb, &h, JX_CANON_FLAGS) != 0)
        return ERR_NOMEM;
    *out = h;
    return 0;
}

/* Returns the object under `key` in `cur`, creating it when missing; NULL when the key holds a
 * non-object (ERR_INVAL) or on allocation failure (ERR_NOMEM), with *rc set. */
static json_t *s_child_obj(json_t *cur, const char *key, int *rc)
{
    json_t *next = json_object_get(cur, key);
    if (next) {
        if (!json_is_object(next))
            *rc = ERR_INVAL;
        return json_is_object(next) ? next : NULL;
    }
    next = json_object();
    if (!next || json_object_set_new(cur, key, next) != 0) {
        *rc = ERR_NOMEM;
        return NULL;
    }
    return next;
}

/* obj[key] when `is` says it has the wanted type, else a new `make()` stored there. */
static json_t *s_child_typed(json_t *obj, const char *key, int (*is)(const json_t *),
                             json_t *(*make)(void))
{
    if (!json_is_object(obj) || !key)
        return NULL;
    json_t *v = json_object_get(obj, key);
    if (v && is(v))
        return v;
    v = make();
    if (!v || json_object_set_new(obj, key, v) != 0)
        return NULL;
    return v;
}

static int s_is_object(const json_t *v)
{
    return json_is_object(v);
}

static int s_is_array(const json_t *v)
{
    return json_is_array(v);
}

json_t *jx_array_find(const json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *v = json_string_value(json_object_get(e, key));
        if (v && value && strcmp(v, value) == 0)
            return e;
    }
    return NULL;
}

bool jx_array_has_string(const json_t *arr, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (value && json_is_string(e) && strcmp(json_string_value(e), value) == 0)
            return true;
    }
    return false;
}

json_t *jx_child_obj(json_t *obj, const char *key)
{
    return s_child_typed(obj, key, s_is_object, json_object);
}

json_t *jx_child_arr(json_t *obj, const char *key)
{
    return s_child_typed(obj, key, s_is_array, json_array);
}

int jx_set_path(json_t *obj, const char *path, json_t *value)
{
    int rc = 0;
    size_t n = path ? strlen(path) : 0;
    if (!json_is_object(obj) || !value || n == 0 || n > JX_PATH_MAX) {
        rc = value ? ERR_INVAL : ERR_NOMEM;
        goto out;
    }
    char copy[JX_PATH_MAX + 1];
    memcpy(copy, path, n + 1);
    json_t *cur = obj;
    char *seg = copy;
    char *dot;
    while ((dot = strchr(seg, '.')) != NULL) {
        *dot = '\0';
        cur = s_child_obj(cur, seg, &rc);
        if (!cur)
            goto out;
        seg = dot + 1;
    }
    if (json_object_set_new(cur, seg, value) != 0)
        return ERR_INVAL; // set_new released value
    return 0;
out:
    json_decref(value);
    return rc;
}

int jx_setv(json_t *obj, json_t *value, ...)
{
    int rc = 0;
    va_list ap;
    va_start(ap, value);
    const char *key = va_arg(ap, const char *);
    if (!json_is_object(obj) || !value || !key) {
        rc = value ? ERR_INVAL : ERR_NOMEM;
        goto out;
    }
    json_t *cur = obj;
    const char *next;
    while ((next = va_arg(ap, const char *)) != NULL) {
        cur = s_child_obj(cur, key, &rc);
        if (!cur)
            goto out;
        key = next;
    }
    va_end(ap);
    return json_object_set_new(cur, key, value) != 0 ? ERR_INVAL : 0;
out:
    va_end(ap);
    json_decref(value);
    return rc;
}

/* ---------- the compact writer ---------- */

#define DUMP_DEPTH_MAX 512 /* deeper trees go to json_dumps */
#define DUMP_FALLBACK 1 /* s_dump: let json_dumps write this tree */

int jx_escape(buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        if (run && buf_append(b, s + i - run, run) < 0)
            return ERR_NOMEM;
        run = 0;
        char esc[6] = {'\\', 0, '0', '0', 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        if (buf_append(b, esc, el) < 0)
            return ERR_NOMEM;
    }
    return run && buf_append(b, s + n - run, run) < 0 ? ERR_NOMEM : 0;
}

/* A JSON string (with quotes) as jansson writes it; non-ASCII text goes to json_dumps (it
 * validates UTF-8 and fails on bad bytes; we keep its answer). */
static int s_dump_str(buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return DUMP_FALLBACK;
    if (buf_append(b, "\"", 1) < 0 || jx_escape(b, s, n) != 0 || buf_append(b, "\"", 1) < 0)
        return ERR_NOMEM;
    return 0;
}

/* Appends v as json_dumps(v, JSON_COMPACT) would. Returns 0, DUMP_FALLBACK or ERR_NOMEM. */
static int s_dump(buf_t *b, const json_t *v, int depth)
{
    if (depth > DUMP_DEPTH_MAX)
        return DUMP_FALLBACK;
    int rc;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (buf_append(b, "{", 1) < 0)
            return ERR_NOMEM;
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first && buf_append(b, ",", 1) < 0)
                return ERR_NOMEM;
            first = false;
            if ((rc = s_dump_str(b, json_object_iter_key(it), json_object_iter_key_len(it))) != 0)
                return rc;
            if (buf_append(b, ":", 1) < 0)
                return ERR_NOMEM;
            if ((rc = s_dump(b, json_object_iter_value(it), depth + 1)) != 0)
                return rc;
        }
        return buf_append(b, "}", 1) < 0 ? ERR_NOMEM : 0;
    }
    case JSON_ARRAY: {
        if (buf_append(b, "[", 1) < 0)
            return ERR_NOMEM;
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i && buf_append(b, ",", 1) < 0)
                return ERR_NOMEM;
            if ((rc = s_dump(b, json_array_get(v, i), depth + 1)) != 0)
                return rc;
        }
        return buf_append(b, "]", 1) < 0 ? ERR_NOMEM : 0;
    }
    case JSON_STRING:
        return s_dump_str(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        char num[32];
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf_append(b, num, (size_t)n) < 0 ? ERR_NOMEM : 0;
    }
    case JSON_TRUE:
        return buf_append(b, "true", 4) < 0 ? ERR_NOMEM : 0;
    case JSON_FALSE:
        return buf_append(b, "false", 5) < 0 ? ERR_NOMEM : 0;
    case JSON_NULL:
        return buf_append(b, "null", 4) < 0 ? ERR_NOMEM : 0;
    default:
        return DUMP_FALLBACK; /* reals: jansson's own formatting */
    }
}

char *jx_dumps_compact(const json_t *v, size_t *len)
{
    if (!v)
        return NULL;
    buf_t b;
    buf_init(&b, SIZE_MAX / 4);
    int rc = s_dump(&b, v, 0);
    if (rc == 0) {
        char *text = buf_take(&b, len);
        if (text)
            return text;
    }
    buf_free(&b);
    if (rc < 0)
        return NULL;
    char *text = json_dumps(v, JSON_COMPACT);
    if (text && len)
        *len = strlen(text);
    return text;
}

#ifdef RF_SELFTEST
#include "selftest.h"

int json_test(bool verbose)
{
    int failed = 0;
    /* jx_dumps_compact writes json_dumps's compact bytes; jx_escape escapes as it does */
    {
        json_t *d = json_pack("{s:s,s:I,s:I,s:[i,b,n,{},[]],s:{s:{s:s}},s:f,s:s,s:s,s:b}", "plain",
                              "a/b c", "big", (json_int_t)INT64_MAX, "neg", (json_int_t)INT64_MIN,
                              "arr", -1, 0, "nest", "k\"q\\", "v", "\b\f\n\r\t\x01\x1f\x7f", "real",
                              0.1, "utf8", "caf\xc3\xa9", "", "", "t", 1);
        json_object_set_new(d, "nul\0key", json_stringn("x\0y", 3));
        json_t *deep = json_array();
        for (int i = 0; i < 600; i++)
            deep = json_pack("[o]", deep);
        json_object_set_new(d, "deep", deep);
        size_t n = 0;
        char *got = jx_dumps_compact(d, &n);
        char *want = json_dumps(d, JSON_COMPACT);
        CHECK(got && want && n == strlen(want) && strcmp(got, want) == 0);
        free(got);
        json_object_del(d, "utf8");
        json_object_del(d, "real");
        json_object_del(d, "deep");
        got = jx_dumps_compact(d, &n);
        free(want);
        want = json_dumps(d, JSON_COMPACT);
        CHECK(got && want && n == strlen(want) && strcmp(got, want) == 0);
        free(got);
        free(want);
        json_decref(d);
        CHECK(jx_dumps_compact(NULL, NULL) == NULL);
        buf_t eb;
        buf_init(&eb, 256);
        CHECK(jx_escape(&eb, "a\"\\\b\f\n\r\t\x01\x1f\x7f\xc3\xa9/", 14) == 0 &&
              strcmp(buf_str(&eb), "a\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001F\x7f\xc3\xa9/") == 0);
        buf_free(&eb);
    }
    buf_t err;
    buf_init(&err, 1024);

    // Loading: good input, syntax errors with line and column, depth bound.
    const char *good = "{\"metadata\":{\"name\":\"c1\",\"labels\":{\"ray.io/node-type\":\"head\"}},"
                       "\"spec\":{\"n\":3,\"on\":true,\"groups\":[{\"replicas\":2}]}}";
    json_t *j = jx_load_buf(good, strlen(good), "t.json", &err);
    CHECK(j != NULL);
    CHECK(strcmp(jx_str(j, "metadata.name", ""), "c1") == 0);
    CHECK(jx_get(j, "metadata.labels.ray.io/node-type") == NULL);
    CHECK(strcmp(json_string_value(jx_getv(j, "metadata", "labels", "ray.io/node-type", NULL)),
                 "head") == 0);
    CHECK(jx_getv(j, "metadata", "nope", NULL) == NULL);
    CHECK(jx_getv(NULL, "a", NULL) == NULL);
    CHECK(jx_int(j, "spec.n", -1) == 3);
    CHECK(jx_int(j, "spec.groups.0.replicas", -1) == 2);
    CHECK(jx_int(j, "spec.groups.1.replicas", -1) == -1);
    CHECK(jx_int(j, "spec.groups.x", -1) == -1);
    CHECK(jx_int(j, "metadata.name", 7) == 7);
    CHECK(jx_bool(j, "spec.on", false) == true);
    CHECK(jx_bool(j, "spec.off", true) == true);
    CHECK(strcmp(jx_str(j, "spec.n", "d"), "d") == 0);
    CHECK(jx_get(j, "") == NULL && jx_get(NULL, "a") == NULL);

    const char *bad = "{\n  \"a\": 1,\n  \"b\": }\n";
    CHECK(jx_load_buf(bad, strlen(bad), "bad.json", &err) == NULL);
    CHECK(strncmp(buf_str(&err), "bad.json:3:", 11) == 0);
    if (verbose)
        printf("  error: %s\n", buf_str(&err));
    buf_reset(&err);
    json_t *tmp = NULL;
    CHECK(jx_parse("{\"a\":1,\"a\":2}", 13, "dup", &tmp, &err) == ERR_PARSE && tmp == NULL);
    buf_reset(&err);

    buf_t deep;
    buf_init(&deep, 4096);
    for (int i = 0; i < JX_MAX_DEPTH + 1; i++)
        CHECK(buf_puts(&deep, "[") == 0);
    CHECK(jx_parse(deep.data, deep.len, "deep", &tmp, &err) == ERR_PARSE);
    CHECK(strstr(buf_str(&err), "deep:1:257: nesting deeper") != NULL);
    buf_reset(&err);
    buf_reset(&deep);
    for (int i = 0; i < JX_MAX_DEPTH; i++)
        CHECK(buf_puts(&deep, "[") == 0);
    for (int i = 0; i < JX_MAX_DEPTH; i++)
        CHECK(buf_puts(&deep, "]") == 0);
    CHECK(jx_parse(deep.data, deep.len, "deep", &tmp, &err) == 0 && tmp != NULL);
    json_decref(tmp);
    // Brackets inside strings do not count.
    CHECK(jx_parse("\"[[[[\\\"[[\"", 10, "s", &tmp, &err) == 0 && tmp != NULL);
    json_decref(tmp);
    // A NUL outside a string is refused (jansson alone loses one after a number or a literal:
    // found by tests/fuzz/fuzz_jproj, the differential against jproj).
    static const struct {
        const char *text;
        size_t len;
    } nul_cases[] = {{"8\0", 2}, {"889\0", 4}, {"[8\0]", 5}, {"true\0 ", 6}, {"{\"a\":1\0}", 8}};
    for (size_t i = 0; i < sizeof nul_cases / sizeof nul_cases[0]; i++) {
        buf_reset(&err);
        CHECK(jx_parse(nul_cases[i].text, nul_cases[i].len, "nul", &tmp, &err) == ERR_PARSE &&
              tmp == NULL);
        CHECK(strstr(buf_str(&err), "NUL byte outside a string") != NULL);
    }
    buf_reset(&err);
    CHECK(jx_parse("\"a\\u0041\"", 9, "s", &tmp, &err) == 0 && tmp != NULL);
    json_decref(tmp);
    buf_free(&deep);

    // Files: missing, too big, good.
    CHECK(jx_load_file("/nonexistent/x.json", 100, &err) == NULL);
    CHECK(strstr(buf_str(&err), "/nonexistent/x.json: ") != NULL);
    buf_reset(&err);
    char path[] = "/tmp/rf-json-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, good, strlen(good)) == (ssize_t)strlen(good));
        close(fd);
        CHECK(jx_load_file(path, 10, &err) == NULL);
        CHECK(strstr(buf_str(&err), "larger than 10 bytes") != NULL);
        buf_reset(&err);
        json_t *f = jx_load_file(path, 1 << 20, &err);
        CHECK(f && json_equal(f, j));
        json_decref(f);
        unlink(path);
    }

    // Canonical dump and hash: key order does not matter, values do.
    buf_t c1, c2;
    buf_init(&c1, 4096);
    buf_init(&c2, 4096);
    json_t *a = json_pack("{s:i,s:{s:s,s:[i,b]}}", "z", 1, "a", "y", "q", "x", 1, 0);
    json_t *b = json_pack("{s:{s:[i,b],s:s},s:i}", "a", "x", 1, 0, "y", "q", "z", 1);
    CHECK(a && b);
    CHECK(jx_dump_canonical(a, &c1) == 0 && jx_dump_canonical(b, &c2) == 0);
    CHECK(strcmp(buf_str(&c1), "{\"a\":{\"x\":[1,false],\"y\":\"q\"},\"z\":1}") == 0);
    CHECK(strcmp(buf_str(&c1), buf_str(&c2)) == 0);
    uint64_t h1 = 0, h2 = 0;
    CHECK(jx_hash(a, &h1) == 0 && jx_hash(b, &h2) == 0 && h1 == h2);
    CHECK(jx_dump_canonical(NULL, &c1) == ERR_INVAL && jx_hash(NULL, &h1) == ERR_INVAL);
    json_object_set_new(b, "z", json_integer(2));
    CHECK(jx_hash(b, &h2) == 0 && h1 != h2);
    // FNV-1a 64 of "1" (0x31): the reference value of the algorithm.
    json_t *one = json_integer(1);
    CHECK(jx_hash(one, &h1) == 0 && h1 == 0xaf63ac4c86019afcULL);
    json_decref(one);
    buf_t tiny;
    buf_init(&tiny, 5);
    CHECK(buf_puts(&tiny, "ab") == 0);
    CHECK(jx_dump_canonical(a, &tiny) == ERR_TOOBIG && strcmp(buf_str(&tiny), "ab") == 0);
    buf_free(&tiny);
    buf_free(&c1);
    buf_free(&c2);

    // Setters create intermediate objects and refuse to walk through scalars.
    json_t *o = json_object();
    CHECK(jx_set_path(o, "metadata.labels.app", json_string("ray")) == 0);
    CHECK(strcmp(jx_str(o, "metadata.labels.app", ""), "ray") == 0);
    CHECK(jx_setv(o, json_string("worker"), "metadata", "labels", "ray.io/node-type", NULL) == 0);
    CHECK(strcmp(json_string_value(jx_getv(o, "metadata", "labels", "ray.io/node-type", NULL)),
                 "worker") == 0);
    CHECK(jx_set_path(o, "metadata.labels.app.x", json_true()) == ERR_INVAL);
    CHECK(jx_setv(o, json_true(), "metadata", "labels", "app", "x", NULL) == ERR_INVAL);
    CHECK(jx_set_path(o, "", json_true()) == ERR_INVAL);
    CHECK(jx_set_path(a, "top", json_integer(5)) == 0 && jx_int(a, "top", 0) == 5);
    CHECK(jx_set_path(one = json_array(), "a", json_true()) == ERR_INVAL);
    CHECK(jx_setv(one, json_true(), "a", NULL) == ERR_INVAL);
    CHECK(jx_set_path(o, "x", NULL) == ERR_NOMEM);
    /* child getters: existing kept, missing created, wrong type replaced, non-object refused */
    json_t *kid = json_pack("{s:{s:i}, s:i}", "o", "k", 1, "n", 2);
    CHECK(jx_child_obj(kid, "o") == json_object_get(kid, "o") && jx_int(kid, "o.k", 0) == 1);
    CHECK(json_is_array(jx_child_arr(kid, "new")) && json_is_array(json_object_get(kid, "new")));
    CHECK(json_is_object(jx_child_obj(kid, "n")) && json_is_object(json_object_get(kid, "n")));
    CHECK(jx_child_obj(one, "x") == NULL && jx_child_arr(NULL, "x") == NULL);
    json_t *conds = json_pack("[{s:s, s:s}, {s:i}, {s:s, s:s}]", "type", "Ready", "status", "False",
                              "type", 1, "type", "Scheduled", "status", "True");
    CHECK(jx_array_find(conds, "type", "Scheduled") == json_array_get(conds, 2));
    CHECK(jx_array_find(conds, "type", "Other") == NULL && jx_array_find(kid, "type", "R") == NULL);
    json_decref(conds);
    json_decref(kid);
    json_decref(one);
    json_decref(o);
    json_decref(a);
    json_decref(b);
    json_decref(j);
    buf_free(&err);
    return SELFTEST_RESULT("json", verbose);
}

#endif /* RF_SELFTEST */
