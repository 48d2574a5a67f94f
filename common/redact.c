/*
 * redact: see redact.h.
 */
#include "redact.h"

#include "err.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_secret_words[] = {"TOKEN",      "PASSWORD", "PASSWD", "SECRET", "KEY",
                                             "CREDENTIAL", "AUTH",     "COOKIE", "PRIVATE"};
#define S_NWORDS (sizeof(s_secret_words) / sizeof(s_secret_words[0]))
#define S_NAME_MAX 256 /* longer names are judged by their first bytes */
#define S_LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"
#define S_CHANGED 2 /* s_walk() in dry mode: the walk would change something */
#define S_DUMP_SLACK 64 /* room past the bound for the last value written */

/* Whether s[0..len-1] looks secret. */
static bool s_secretn(const char *s, size_t len)
{
    char up[S_NAME_MAX + 1];
    if (len > S_NAME_MAX)
        len = S_NAME_MAX;
    for (size_t i = 0; i < len; i++)
        up[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
    up[len] = '\0';
    for (size_t i = 0; i < S_NWORDS; i++)
        if (strstr(up, s_secret_words[i]))
            return true;
    return false;
}

bool redact_name_is_secret(const char *name)
{
    return name && s_secretn(name, strlen(name));
}

/* Whether s[0..n-1] begins, compared case-insensitively, with the upper-case word w. */
static bool s_starts_upper(const char *s, size_t n, const char *w)
{
    size_t i = 0;
    for (; w[i]; i++) {
        char c = i < n ? s[i] : '\0';
        if (((c >= 'a' && c <= 'z') ? (char)(c - 32) : c) != w[i])
            return false;
    }
    return true;
}

bool redact_text_may_hold(const char *s, size_t n)
{
    // Everything the rule replaces is found by one of these: a secret word (a secret-looking
    // name, key or free-text word, and kind Secret), the schemes, the last-applied annotation,
    // and any \u escape (it could spell a word the scan does not see).
    static const char *const more[] = {"BEARER ", "BASIC ", "LAST-APPLIED-CONFIGURATION", "\\U"};
    if (!s)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
        if (!strchr("TPSKCABL\\", c) || c == '\0')
            continue;
        for (size_t k = 0; k < S_NWORDS; k++)
            if (s_secret_words[k][0] == c && s_starts_upper(s + i, n - i, s_secret_words[k]))
                return true;
        for (size_t k = 0; k < sizeof(more) / sizeof(more[0]); k++)
            if (more[k][0] == c && s_starts_upper(s + i, n - i, more[k]))
                return true;
    }
    return false;
}

static bool s_valchar_end(char c)
{
    return c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' ||
           c == ',' || c == ';' || c == '&';
}

static bool s_wordchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

int redact_text(const char *in, buf_t *out)
{
    if (!in || !out)
        return ERR_INVAL;
    size_t start_len = out->len;
    int rc = 0;
    const char *p = in;
    const char *copied = in; // in[copied..p) not yet appended
    while (*p && !rc) {
        const char *val = NULL;
        if (*p == '=' || *p == ':') {
            const char *w = p;
            while (w > in && s_wordchar(w[-1]))
                w--;
            if (w < p && s_secretn(w, (size_t)(p - w))) {
                val = p + 1;
                if (*p == ':' && *val == ' ')
                    val++;
            }
        } else if ((strncmp(p, "Bearer ", 7) == 0 || strncmp(p, "Basic ", 6) == 0) &&
                   (p == in || !s_wordchar(p[-1]))) {
            val = p + (p[1] == 'e' ? 7 : 6);
        }
        if (!val || s_valchar_end(*val) || strncmp(val, REDACT_MARK, strlen(REDACT_MARK)) == 0) {
            p++;
            continue;
        }
        // A value that is itself "Bearer x": keep the scheme word, redact the token.
        if (strncmp(val, "Bearer ", 7) == 0 || strncmp(val, "Basic ", 6) == 0) {
            p = val;
            continue;
        }
        rc = buf_append(out, copied, (size_t)(val - copied));
        if (!rc)
            rc = buf_puts(out, REDACT_MARK);
        while (*val && !s_valchar_end(*val))
            val++;
        p = copied = val;
    }
    if (!rc)
        rc = buf_puts(out, copied);
    if (rc) {
        out->len = start_len;
        if (out->data)
            out->data[start_len] = '\0';
    }
    return rc;
}

/* Replaces the string `v` (a member of `parent` under `key`, or item `index` of an array) with
 * its redact_text() version when that differs; with `dry`, changes nothing and returns S_CHANGED
 * instead. Returns 0, S_CHANGED (dry) or ERR_NOMEM. */
static int s_fix_string(json_t *v, buf_t *tmp, bool dry)
{
    const char *s = json_string_value(v);
    if (!s || (!strchr(s, '=') && !strchr(s, ':') && !strstr(s, "Bearer ") && !strstr(s, "Basic ")))
        return 0;
    buf_reset(tmp);
    int rc = redact_text(s, tmp);
    if (rc) // too long to scan: drop it
        return dry ? S_CHANGED : json_string_set(v, REDACT_MARK) ? ERR_NOMEM : 0;
    if (strcmp(buf_str(tmp), s) != 0)
        return dry ? S_CHANGED : json_string_set(v, buf_str(tmp)) ? ERR_NOMEM : 0;
    return 0;
}

static bool s_exempt(const char *key)
{
    return strcmp(key, "name") == 0 || strcmp(key, "key") == 0 || strcmp(key, "secretName") == 0;
}

/* Redacts `node` in place; with `dry`, changes nothing and returns S_CHANGED as soon as the walk
 * would change something (the same sites, so a dry 0 means the object has nothing to redact).
 * Returns 0, 1 (too deep: the caller replaces the node), S_CHANGED (dry) or ERR_NOMEM. */
static int s_walk(json_t *node, int depth, buf_t *tmp, bool dry)
{
    if (depth > REDACT_DEPTH_MAX)
        return 1; // the caller replaces it
    int rc = 0;
    if (json_is_object(node)) {
        json_t *name = json_object_get(node, "name");
        json_t *value = json_object_get(node, "value");
        if (json_is_string(name) && json_is_string(value) &&
            redact_name_is_secret(json_string_value(name))) {
            if (dry)
                return S_CHANGED;
            if (json_string_set(value, REDACT_MARK))
                return ERR_NOMEM;
        }
        const char *k;
        json_t *v;
        json_object_foreach(node, k, v)
        {
            if (json_is_string(v)) {
                if ((redact_name_is_secret(k) && !s_exempt(k)) || strcmp(k, S_LAST_APPLIED) == 0)
                    rc = dry ? S_CHANGED : json_string_set(v, REDACT_MARK) ? ERR_NOMEM : 0;
                else
                    rc = s_fix_string(v, tmp, dry);
            } else if (json_is_object(v) || json_is_array(v)) {
                rc = s_walk(v, depth + 1, tmp, dry);
                if (rc == 1)
                    rc = dry                                                      ? S_CHANGED
                         : json_object_set_new(node, k, json_string(REDACT_MARK)) ? ERR_NOMEM
                                                                                  : 0;
                else if (rc == 0 && json_is_string(json_object_get(v, "value")) &&
                         redact_name_is_secret(k) && !s_exempt(k))
                    rc = dry                                                         ? S_CHANGED
                         : json_object_set_new(v, "value", json_string(REDACT_MARK)) ? ERR_NOMEM
                                                                                     : 0;
            }
            if (rc)
                return rc;
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
        {
            if (json_is_string(v)) {
                rc = s_fix_string(v, tmp, dry);
            } else if (json_is_object(v) || json_is_array(v)) {
                rc = s_walk(v, depth + 1, tmp, dry);
                if (rc == 1)
                    rc = dry                                                     ? S_CHANGED
                         : json_array_set_new(node, i, json_string(REDACT_MARK)) ? ERR_NOMEM
                                                                                 : 0;
            }
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Replaces every value of the object member `key` of `obj`. */
static int s_blank_values(json_t *obj, const char *key)
{
    json_t *m = json_object_get(obj, key);
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        if (json_object_set_new(m, k, json_string(REDACT_MARK)))
            return ERR_NOMEM;
    }
    return 0;
}

json_t *redact_object(const json_t *obj)
{
    if (!obj)
        return NULL;
    json_t *copy = json_deep_copy(obj);
    if (!copy)
        return NULL;
    buf_t tmp;
    buf_init(&tmp, 1u << 20);
    int rc = 0;
    if (json_is_object(copy)) {
        json_t *kind = json_object_get(copy, "kind");
        if (json_is_string(kind) && strcmp(json_string_value(kind), "Secret") == 0) {
            rc = s_blank_values(copy, "data");
            if (!rc)
                rc = s_blank_values(copy, "stringData");
        }
    }
    if (!rc)
        rc = s_walk(copy, 0, &tmp, false);
    buf_free(&tmp);
    if (rc) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}

static bool s_marked(const json_t *v, int depth)
{
    if (json_is_string(v))
        return strstr(json_string_value(v), REDACT_MARK) != NULL;
    if (depth > REDACT_DEPTH_MAX)
        return false; // redact_object() cut it: a replaced subtree is a string, seen above
    const char *k;
    json_t *m;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, m)
        {
            if (strcmp(k, S_LAST_APPLIED) != 0 && s_marked(m, depth + 1))
                return true;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m)
        {
            if (s_marked(m, depth + 1))
                return true;
        }
    }
    return false;
}

bool redact_marked(const json_t *obj)
{
    return obj && s_marked(obj, 0);
}

/* The beginning every cut summary of an object shares: jansson's compact dump of
 * {"truncated":true, the members of `ids`, "head":""} without its closing `"}`, so it ends with
 * `"head":"`. Dumped once per summary (a small object); NULL when out of memory. */
static char *s_cut_prefix(const json_t *ids)
{
    json_t *o = json_object();
    char *s = NULL;
    if (o && !json_object_set_new(o, "truncated", json_true()) &&
        !json_object_update(o, (json_t *)ids) && !json_object_set_new(o, "head", json_string("")))
        s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    size_t n = s ? strlen(s) : 0;
    if (n < 10 || strcmp(s + n - 10, "\"head\":\"\"}") != 0) {
        free(s); // ("head" is the last member: cannot happen)
        return NULL;
    }
    s[n - 2] = '\0';
    return s;
}

/* The cut summary {"truncated":true, the members of the ids, "head": `head` bytes of `full`}:
 * `prefix` (s_cut_prefix()), the head escaped as jansson's compact dump escapes a string, `"}`.
 * The same bytes as jansson's dump of that object (the self-test compares them) without building
 * and dumping a tree per candidate head. NULL when out of memory. */
static char *s_cut(const char *prefix, const char *full, size_t head)
{
    // never split a UTF-8 sequence
    while (head > 0 && ((unsigned char)full[head] & 0xc0) == 0x80)
        head--;
    size_t plen = strlen(prefix);
    buf_t b;
    buf_init(&b, plen + 6 * head + 8);
    if (buf_append(&b, prefix, plen) || jx_escape(&b, full, head) || buf_append(&b, "\"}", 2)) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

/* Bytes that byte `c` of a UTF-8 string takes in jansson's compact dump without
 * JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH: \" \\ \b \f \n \r \t take 2, other control
 * characters \u00XX take 6, everything else (UTF-8 continuation bytes included) 1. */
static size_t s_esc_len(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
        return 2;
    return c < 0x20 ? 6 : 1;
}

/* The longest cut summary of at most `max` bytes with a head of at most `hi` bytes, found by
 * binary search over the head length (s_cut()'s length grows with the head). Returns the
 * malloc'd summary, NULL when none fits (*nomem false) or out of memory (*nomem true). */
static char *s_cut_search(const char *prefix, const char *full, size_t len, size_t max, size_t hi,
                          bool *nomem)
{
    char *best = NULL;
    size_t lo = 0;
    *nomem = false;
    while (lo <= hi) {
        size_t mid = lo + (hi - lo) / 2;
        char *s = s_cut(prefix, full, mid);
        if (!s) {
            free(best);
            *nomem = true;
            return NULL;
        }
        if (strlen(s) <= max) {
            free(best);
            best = s;
            lo = mid + 1;
        } else {
            free(s);
            if (mid == 0)
                break;
            hi = mid - 1;
        }
    }
    return best;
}

/* The same summary as s_cut_search() in one scan and one write instead of ~log2(max) dumps: a
 * cut summary is the prefix, the escaped head and `"}` (s_cut()), so its length is that of the
 * empty-head one plus the escaped length (s_esc_len(): what jx_escape() writes) of the head, and
 * the longest head that fits is found by one scan. The result is checked (its length is the one
 * computed); when not, NULL with *verified false is returned and the caller falls back to the
 * search. Returns the malloc'd summary, or NULL (*verified true: none fits, or out of memory
 * with *nomem true). */
static char *s_cut_fast(const char *prefix, const char *full, size_t len, size_t max, size_t hi,
                        bool *verified, bool *nomem)
{
    *verified = false;
    *nomem = false;
    size_t cost = strlen(prefix) + 2; // the empty head's summary: prefix and `"}`
    if (cost > max) {
        *verified = true; // not even the empty head fits, and heads only grow
        return NULL;
    }
    // b: the longest character boundary <= hi whose head fits
    size_t b = 0;
    size_t i = 0;
    while (i < hi) {
        size_t next = i + 1;
        while (next < len && ((unsigned char)full[next] & 0xc0) == 0x80)
            next++;
        size_t add = 0;
        for (size_t j = i; j < next; j++)
            add += s_esc_len((unsigned char)full[j]);
        if (next > hi || cost + add > max)
            break;
        cost += add;
        i = next;
        b = i;
    }
    char *s = s_cut(prefix, full, b);
    if (!s) {
        *nomem = true;
        *verified = true;
        return NULL;
    }
    if (strlen(s) != cost) {
        free(s); // s_esc_len() disagrees with jx_escape(): the search decides
        return NULL;
    }
    *verified = true;
    return s;
}

/* ---------------------------------------------------------------------------------------------
 * The bounded, redacting dump behind redact_summary(): it writes the compact JSON of `obj` with
 * the rule applied value by value (the same sites as s_walk() on the same tree), in jansson's
 * compact format, and stops as soon as the output passes the bound, so a summary never costs
 * more than the bytes it keeps, whatever the object's size. Every value is redacted BEFORE it is
 * written, so a cut anywhere (inside a secret value included) cannot show a secret.
 */

typedef struct {
    buf_t *out; /* the dump so far */
    size_t limit; /* stop once out->len exceeds this */
    bool stop; /* the dump is incomplete (past the limit, or a string was cut) */
    buf_t tmp; /* redact_text() scratch */
    int err; /* ERR_NOMEM / ERR_TOOBIG met */
} s_emit_t;

/* jx_escape() (jansson's escaping) into the dump. */
static void s_put_esc(s_emit_t *e, const char *s, size_t n)
{
    if (!e->err)
        e->err = jx_escape(e->out, s, n);
}

static void s_put(s_emit_t *e, const char *s)
{
    if (e->stop)
        return; // nothing after the cut
    if (!e->err)
        e->err = buf_puts(e->out, s);
    if (e->out->len > e->limit)
        e->stop = true;
}

/* Writes a quoted string; `fix`: apply the free-text rule (s_fix_string()). Only the bytes that
 * can still be kept are read: a longer string is cut (at a UTF-8 boundary) BEFORE the free-text
 * rule runs on it, and the dump is marked incomplete. */
static void s_emit_str(s_emit_t *e, const char *s, size_t n, bool fix)
{
    if (e->stop)
        return;
    size_t room = e->limit >= e->out->len ? e->limit - e->out->len + 1 : 0;
    bool cut = false;
    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--; // never split a UTF-8 sequence
        cut = true;
    }
    if (!e->err)
        e->err = buf_append(e->out, "\"", 1);
    bool scan = false;
    if (fix)
        for (size_t i = 0; i < n && !scan; i++)
            scan = s[i] == '=' || s[i] == ':' ||
                   (s[i] == 'B' && ((n - i >= 7 && !memcmp(s + i, "Bearer ", 7)) ||
                                    (n - i >= 6 && !memcmp(s + i, "Basic ", 6))));
    if (scan && memchr(s, '\0', n) == NULL) {
        // redact_text() reads a C string: copy the (bounded) bytes kept
        buf_reset(&e->tmp);
        char *c = malloc(n + 1);
        int rc = c ? 0 : ERR_NOMEM;
        if (c) {
            memcpy(c, s, n);
            c[n] = '\0';
            rc = redact_text(c, &e->tmp);
            free(c);
        }
        if (rc == ERR_NOMEM)
            e->err = rc;
        else if (rc) // too long to scan: dropped, as redact_object() does
            s_put_esc(e, REDACT_MARK, strlen(REDACT_MARK));
        else
            s_put_esc(e, e->tmp.data ? e->tmp.data : "", e->tmp.len);
    } else if (scan) {
        s_put_esc(e, REDACT_MARK, strlen(REDACT_MARK)); // NUL inside: not scanned, dropped
    } else {
        s_put_esc(e, s, n);
    }
    if (cut)
        e->stop = true; // the string goes on past the cut: nothing more is written
    s_put(e, "\"");
}

static void s_emit_mark(s_emit_t *e)
{
    s_put(e, "\"" REDACT_MARK "\"");
}

/* Writes `node` (at `depth`, as s_walk() counts) with the rule applied; `blank`: every member
 * value of this object is replaced (a Secret's data and stringData); `cred`: the object is the
 * value of a secret-looking key, its string "value" is replaced (a credential object). */
static void s_emit(s_emit_t *e, const json_t *node, int depth, bool secret_root, bool blank,
                   bool cred)
{
    if (e->stop || e->err)
        return;
    if ((json_is_object(node) || json_is_array(node)) && depth > REDACT_DEPTH_MAX) {
        s_emit_mark(e); // too deep: replaced, as s_walk()'s caller does
        return;
    }
    switch (json_typeof(node)) {
    case JSON_OBJECT: {
        json_t *name = json_object_get(node, "name");
        json_t *value = json_object_get(node, "value");
        bool pair = json_is_string(name) && json_is_string(value) &&
                    redact_name_is_secret(json_string_value(name));
        s_put(e, "{");
        const char *k;
        json_t *v;
        bool first = true;
        // jansson's iterators take non-const pointers; nothing is modified
        json_object_foreach((json_t *)node, k, v)
        {
            if (e->stop || e->err)
                return;
            if (!first)
                s_put(e, ",");
            first = false;
            s_emit_str(e, k, strlen(k), false);
            s_put(e, ":");
            if (e->stop)
                return;
            bool child_blank = secret_root && json_is_object(v) &&
                               (!strcmp(k, "data") || !strcmp(k, "stringData"));
            bool child_cred = json_is_object(v) && redact_name_is_secret(k) && !s_exempt(k);
            if (blank || ((pair || (cred && json_is_string(v))) && !strcmp(k, "value")))
                s_emit_mark(e);
            else if (json_is_string(v) &&
                     ((redact_name_is_secret(k) && !s_exempt(k)) || !strcmp(k, S_LAST_APPLIED)))
                s_emit_mark(e);
            else if (json_is_string(v))
                s_emit_str(e, json_string_value(v), json_string_length(v), true);
            else
                s_emit(e, v, depth + 1, false, child_blank, child_cred);
        }
        s_put(e, "}");
        break;
    }
    case JSON_ARRAY: {
        s_put(e, "[");
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
        {
            if (e->stop || e->err)
                return;
            if (i)
                s_put(e, ",");
            if (json_is_string(v))
                s_emit_str(e, json_string_value(v), json_string_length(v), true);
            else
                s_emit(e, v, depth + 1, false, false, false);
        }
        s_put(e, "]");
        break;
    }
    case JSON_STRING:
        s_emit_str(e, json_string_value(node), json_string_length(node), true);
        break;
    case JSON_INTEGER: {
        char n[32];
        snprintf(n, sizeof(n), "%" JSON_INTEGER_FORMAT, json_integer_value(node));
        s_put(e, n);
        break;
    }
    case JSON_REAL: {
        char *t = json_dumps(node, JSON_COMPACT | JSON_ENCODE_ANY); // jansson's own format
        if (!t) {
            e->err = ERR_NOMEM;
            return;
        }
        s_put(e, t);
        free(t);
        break;
    }
    case JSON_TRUE:
        s_put(e, "true");
        break;
    case JSON_FALSE:
        s_put(e, "false");
        break;
    default:
        s_put(e, "null");
        break;
    }
}

/* The bounded dump of `obj` into `out`: complete (returns 0, *cut false) when it takes at most
 * `limit` bytes, else a prefix of more than `limit` bytes or one ending in a cut string (*cut
 * true). Returns 0 or ERR_NOMEM. */
static int s_bounded_dump(const json_t *obj, size_t limit, buf_t *out, bool *cut)
{
    s_emit_t e = {.out = out, .limit = limit};
    buf_init(&e.tmp, 1u << 20);
    json_t *kind = json_is_object(obj) ? json_object_get(obj, "kind") : NULL;
    bool secret = json_is_string(kind) && strcmp(json_string_value(kind), "Secret") == 0;
    s_emit(&e, obj, 0, secret, false, false);
    buf_free(&e.tmp);
    *cut = e.stop;
    return e.err ? ERR_NOMEM : 0;
}

/* {"kind", "namespace", "name"} of `obj` (top-level kind, metadata.namespace and metadata.name,
 * strings shorter than 256 bytes, with the free-text rule applied) for a cut summary; NULL when
 * out of memory. */
static json_t *s_ids(const json_t *obj)
{
    json_t *ids = json_object();
    json_t *meta = json_object_get(obj, "metadata");
    const char *k[] = {"kind", "namespace", "name"};
    json_t *v[] = {json_object_get(obj, "kind"), json_object_get(meta, "namespace"),
                   json_object_get(meta, "name")};
    buf_t t;
    buf_init(&t, 1024);
    for (int i = 0; ids && i < 3; i++) {
        if (!json_is_string(v[i]) || json_string_length(v[i]) >= 256)
            continue;
        buf_reset(&t);
        if (redact_text(json_string_value(v[i]), &t) != 0 ||
            json_object_set_new(ids, k[i], json_string(t.data ? buf_str(&t) : "")) != 0) {
            json_decref(ids);
            ids = NULL;
        }
    }
    buf_free(&t);
    return ids;
}

int redact_summary(const json_t *obj, size_t max, buf_t *out)
{
    if (!obj || !out || max < REDACT_SUMMARY_MIN)
        return ERR_INVAL;
    // The redacted dump, written only up to the bound (max + 1 bytes tell "does not fit").
    buf_t dump;
    buf_init(&dump, 8 * max + S_DUMP_SLACK);
    bool cut = false;
    json_t *ids = NULL;
    char *best = NULL, *prefix = NULL;
    int rc = s_bounded_dump(obj, max, &dump, &cut);
    if (rc)
        goto done;
    const char *full = dump.data ? dump.data : "";
    size_t len = dump.len;
    if (!cut && len <= max) {
        rc = buf_puts(out, full);
        goto done;
    }
    rc = ERR_NOMEM;
    ids = s_ids(obj);
    prefix = ids ? s_cut_prefix(ids) : NULL;
    if (!prefix)
        goto done;
    // The longest head that fits (escaping may grow it).
    size_t hi = len < max ? len : max;
    bool verified, nomem;
    best = s_cut_fast(prefix, full, len, max, hi, &verified, &nomem);
    if (!verified)
        best = s_cut_search(prefix, full, len, max, hi, &nomem);
    if (nomem)
        goto done;
    rc = best ? buf_puts(out, best) : ERR_TOOBIG;
done:
    free(best);
    free(prefix);
    json_decref(ids);
    buf_free(&dump);
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* (Self-test only: the redacting writer decides as it walks.) Whether redact_object() would change
 * `obj` (true also when out of memory, or for any Secret): a dry walk, so that a summary of an
 * object with nothing to redact skips the deep copy. */
static bool s_needs_redaction(const json_t *obj)
{
    json_t *kind = json_object_get(obj, "kind");
    if (json_is_string(kind) && strcmp(json_string_value(kind), "Secret") == 0)
        return true;
    buf_t tmp;
    buf_init(&tmp, 1u << 20);
    // dry: s_walk() only reads the object (jansson's iterators take non-const pointers)
    int rc = s_walk((json_t *)obj, 0, &tmp, true);
    buf_free(&tmp);
    return rc != 0;
}

/* ---------------------------------------------------------------------------------------------
 * Self-test.
 */

static bool s_has(const buf_t *b, const char *s)
{
    return strstr(buf_str(b), s) != NULL;
}

int redact_test(bool verbose)
{
    int failed = 0;
    CHECK(redact_name_is_secret("DB_PASSWORD") && redact_name_is_secret("api-key") &&
          redact_name_is_secret("Authorization") && redact_name_is_secret("github_token"));
    CHECK(!redact_name_is_secret("RAY_ADDRESS") && !redact_name_is_secret("PATH") &&
          !redact_name_is_secret(NULL));

    // The pre-filter: false only when redact_object() would change nothing.
    static const char *const may[] = {"{\"env\":[{\"name\":\"db_passwd\",\"value\":\"x\"}]}",
                                      "{\"kind\":\"Secret\"}",
                                      "{\"a\":\"Bearer x\"}",
                                      "{\"a\":\"basic x\"}",
                                      "{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/"
                                      "last-applied-configuration\":\"{}\"}}}",
                                      "{\"env\":[{\"name\":\"API_\\u0054OKEN\",\"value\":\"x\"}]}",
                                      "{\"x\":\"--redis-pAsSwOrD=y\"}"};
    for (size_t i = 0; i < sizeof(may) / sizeof(may[0]); i++)
        CHECK(redact_text_may_hold(may[i], strlen(may[i])));
    const char *plain = "{\"kind\":\"Pod\",\"env\":[{\"name\":\"RAY_ADDRESS\",\"value\":"
                        "\"h:6379\"}],\"tolerations\":[]}";
    CHECK(!redact_text_may_hold(plain, strlen(plain)) && !redact_text_may_hold(NULL, 0));
    CHECK(!redact_text_may_hold("{\"a\":\"TOKE", 11)); // the bound is n, not the NUL
    json_t *pj = json_loads(plain, 0, NULL);
    json_t *pr = redact_object(pj);
    CHECK(pj && pr && json_equal(pj, pr) && !redact_marked(pr) && !redact_marked(NULL));
    // redact_marked: a replaced env value says true, the last-applied annotation alone false
    json_t *ma =
        json_pack("{s:{s:{s:s}},s:{s:[{s:s,s:s}]}}", "metadata", "annotations", S_LAST_APPLIED,
                  "{\"spec\":{}}", "spec", "env", "name", "API_TOKEN", "value", "s3cret");
    json_t *mr = redact_object(ma);
    CHECK(mr && redact_marked(mr));
    if (mr)
        json_object_del(mr, "spec");
    CHECK(mr && !redact_marked(mr) &&
          json_is_string(json_object_get(jx_get(mr, "metadata.annotations"), S_LAST_APPLIED)) &&
          strcmp(json_string_value(
                     json_object_get(jx_get(mr, "metadata.annotations"), S_LAST_APPLIED)),
                 REDACT_MARK) == 0);
    json_decref(ma);
    json_decref(mr);

    // A credential object (KubeRay's redisPassword {value | valueFrom}): its value is replaced,
    // its valueFrom kept, by redact_object() and the summary writer alike.
    json_t *rc = json_pack("{s:s,s:{s:{s:s,s:{s:s},s:{s:{s:{s:s,s:s}}}}}}", "kind", "RayCluster",
                           "spec", "gcsFaultToleranceOptions", "redisAddress", "r:6379",
                           "redisPassword", "value", "redis-pw-lit", "redisUsername", "valueFrom",
                           "secretKeyRef", "name", "creds", "key", "user");
    json_t *rcr = redact_object(rc);
    buf_t rb;
    buf_init(&rb, 1u << 16);
    char *rcd = rcr ? json_dumps(rcr, JSON_COMPACT) : NULL;
    CHECK(rcd && redact_summary(rc, 4096, &rb) == 0 && strcmp(buf_str(&rb), rcd) == 0);
    CHECK(rcd && !strstr(rcd, "redis-pw-lit") &&
          strstr(rcd, "\"redisPassword\":{\"value\":\"" REDACT_MARK "\"}") &&
          strstr(rcd, "\"secretKeyRef\":{\"name\":\"creds\",\"key\":\"user\"}") &&
          strstr(rcd, "\"redisAddress\":\"r:6379\""));
    CHECK(redact_marked(rcr));
    char *rct = json_dumps(rc, JSON_COMPACT);
    CHECK(rct && redact_text_may_hold(rct, strlen(rct)));
    free(rct);
    free(rcd);
    buf_free(&rb);
    json_decref(rc);
    json_decref(rcr);
    json_decref(pj);
    json_decref(pr);

    // A pod with literal secret-looking env values, secretKeyRefs, a secret in args and an
    // Authorization header in a probe.
    const char *pod =
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"w-1\",\"namespace\":"
        "\"ns\",\"annotations\":{\"my-token\":\"tok-annot-77\",\"note\":\"fine\"}},\"spec\":{"
        "\"containers\":[{\"name\":\"ray\",\"image\":\"rayproject/ray:2.9\",\"args\":["
        "\"--redis-password=s3cr3t-arg\",\"--port=6379\"],\"env\":[{\"name\":\"DB_PASSWORD\","
        "\"value\":\"hunter2-literal\"},{\"name\":\"API_TOKEN\",\"value\":\"tok-abc-literal\"},"
        "{\"name\":\"PLAIN\",\"value\":\"visible-value\"},{\"name\":\"FROM_SECRET\",\"valueFrom\":"
        "{\"secretKeyRef\":{\"name\":\"db-creds\",\"key\":\"password\"}}}],\"readinessProbe\":{"
        "\"httpGet\":{\"path\":\"/\",\"port\":8265,\"httpHeaders\":[{\"name\":\"Authorization\","
        "\"value\":\"Bearer bearer-xyz\"}]}}}]}}";
    json_error_t je;
    json_t *p = json_loads(pod, 0, &je);
    CHECK(p != NULL);
    buf_t b;
    buf_init(&b, 1u << 20);
    CHECK(redact_summary(p, 4096, &b) == 0);
    const char *never[] = {"hunter2-literal", "tok-abc-literal", "s3cr3t-arg", "bearer-xyz",
                           "tok-annot-77"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        CHECK(!s_has(&b, never[i]));
    CHECK(s_has(&b, "visible-value") && s_has(&b, "\"secretKeyRef\":{\"name\":\"db-creds\","
                                                  "\"key\":\"password\"}"));
    CHECK(s_has(&b, "--port=6379") && s_has(&b, "--redis-password=" REDACT_MARK));
    CHECK(s_has(&b, "\"DB_PASSWORD\",\"value\":\"" REDACT_MARK "\""));
    CHECK(s_has(&b, "\"Authorization\",\"value\":\"" REDACT_MARK "\"") &&
          s_has(&b, "\"note\":\"fine\""));
    json_t *back = json_loads(buf_str(&b), 0, &je);
    CHECK(back != NULL);
    json_decref(back);
    if (verbose)
        printf("redact: pod: %s\n", buf_str(&b));

    // A bound below the object's size: valid JSON, within the bound, still no secret.
    json_t *env = json_object_get(
        json_array_get(json_object_get(json_object_get(p, "spec"), "containers"), 0), "env");
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof(name), "VAR_%d_SECRET", i);
        json_array_append_new(env,
                              json_pack("{s:s,s:s}", "name", name, "value", "hunter2-literal"));
    }
    for (size_t max = REDACT_SUMMARY_MIN; max <= 2048; max *= 2) {
        buf_reset(&b);
        CHECK(redact_summary(p, max, &b) == 0 && b.len <= max);
        back = json_loads(buf_str(&b), 0, &je);
        CHECK(back && json_is_true(json_object_get(back, "truncated")) &&
              strcmp(json_string_value(json_object_get(back, "name")), "w-1") == 0);
        json_decref(back);
        CHECK(!s_has(&b, "hunter2-literal") && !s_has(&b, "s3cr3t-arg"));
    }
    if (verbose)
        printf("redact: cut: %s\n", buf_str(&b));

    // The dry walk: nothing to redact -> the summary is the object's own dump; else a copy.
    CHECK(s_needs_redaction(p));
    json_t *clean =
        json_pack("{s:s,s:{s:s},s:[s,s,{s:s,s:s}]}", "kind", "Pod", "metadata", "name", "c-1",
                  "args", "--port=6379", "a: b", "name", "RAY_ADDRESS", "value", "x:1");
    CHECK(clean && !s_needs_redaction(clean));
    char *cd = clean ? json_dumps(clean, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    buf_reset(&b);
    CHECK(cd && redact_summary(clean, 4096, &b) == 0 && strcmp(buf_str(&b), cd) == 0);
    free(cd);
    json_t *nest = json_object();
    for (int i = 0; nest && i < REDACT_DEPTH_MAX + 2; i++)
        nest = json_pack("{s:o}", "d", nest);
    CHECK(nest && s_needs_redaction(nest));
    json_decref(nest);
    const char *dirty[][2] = {{"DB_PASSWORD", "x"},
                              {"note", "token=abc"},
                              {"h", "Bearer abc"},
                              {S_LAST_APPLIED, "{}"},
                              {"api-key", "k"}};
    for (size_t i = 0; clean && i < sizeof(dirty) / sizeof(dirty[0]); i++) {
        json_t *o = json_deep_copy(clean);
        CHECK(o && json_object_set_new(json_object_get(o, "metadata"), dirty[i][0],
                                       json_string(dirty[i][1])) == 0);
        CHECK(s_needs_redaction(o));
        json_decref(o);
    }
    json_t *pair = json_deep_copy(clean);
    CHECK(pair && json_object_set_new(json_array_get(json_object_get(pair, "args"), 2), "name",
                                      json_string("MY_SECRET")) == 0);
    CHECK(s_needs_redaction(pair));
    json_decref(pair);
    json_decref(clean);

    // The one-scan cut equals the binary search's, escapes and multi-byte UTF-8 included.
    json_t *esc = json_pack("{s:s,s:{s:s,s:s}}", "kind", "Pod", "metadata", "name", "e\"1",
                            "namespace", "n\\s");
    json_t *arr = json_array();
    for (int i = 0; esc && arr && i < 60; i++)
        json_array_append_new(
            arr, json_string("q\"b\\n\n\x01\x1f t\t/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    CHECK(esc && arr && json_object_set_new(esc, "data", arr) == 0);
    json_t *red = redact_object(esc);
    json_t *ids = s_ids(esc);
    char *prefix = ids ? s_cut_prefix(ids) : NULL;
    char *full = red ? json_dumps(red, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    CHECK(full != NULL && prefix != NULL);
    size_t flen = full ? strlen(full) : 0;
    for (size_t max = 40; full && prefix && max <= flen + 8; max += 7) {
        size_t hi = flen < max ? flen : max;
        bool verified, nomem, nomem2;
        char *fast = s_cut_fast(prefix, full, flen, max, hi, &verified, &nomem);
        char *slow = s_cut_search(prefix, full, flen, max, hi, &nomem2);
        CHECK(verified && !nomem && !nomem2);
        CHECK((!fast && !slow) || (fast && slow && strcmp(fast, slow) == 0));
        free(fast);
        free(slow);
    }
    // A cut summary is byte for byte jansson's dump of the object it stands for: every head
    // length (escapes, control characters and 2-, 3- and 4-byte UTF-8 sequences included).
    for (size_t head = 0; full && prefix && head <= flen; head++) {
        size_t h = head;
        while (h > 0 && ((unsigned char)full[h] & 0xc0) == 0x80)
            h--;
        json_t *o = json_object();
        json_object_set_new(o, "truncated", json_true());
        json_object_update(o, ids);
        json_object_set_new(o, "head", json_stringn(full, h));
        char *want = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char *got = s_cut(prefix, full, head);
        CHECK(want && got && strcmp(want, got) == 0);
        free(want);
        free(got);
        json_decref(o);
    }
    free(prefix);
    free(full);
    json_decref(red);
    json_decref(ids);
    json_decref(esc);
    CHECK(redact_summary(p, 10, &b) == ERR_INVAL);
    CHECK(redact_summary(NULL, 4096, &b) == ERR_INVAL);
    buf_t small;
    buf_init(&small, 16);
    CHECK(redact_summary(p, 4096, &small) == ERR_TOOBIG && small.len == 0);
    buf_free(&small);
    json_decref(p);

    // A Secret shows no data values.
    json_t *sec = json_loads("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
                             "\"db\",\"annotations\":{\"" S_LAST_APPLIED "\":\"{\\\"data\\\":"
                             "{\\\"password\\\":\\\"aGlkZGVu\\\"}}\"}},\"type\":\"Opaque\","
                             "\"data\":{\"password\":\"aGlkZGVu\",\"user\":\"YWRtaW4=\"},"
                             "\"stringData\":{\"extra\":\"plain-secret\"}}",
                             0, &je);
    CHECK(sec != NULL);
    buf_reset(&b);
    CHECK(redact_summary(sec, 4096, &b) == 0);
    CHECK(!s_has(&b, "aGlkZGVu") && !s_has(&b, "YWRtaW4=") && !s_has(&b, "plain-secret"));
    CHECK(s_has(&b, "\"password\":\"" REDACT_MARK "\"") && s_has(&b, "\"type\":\"Opaque\""));
    if (verbose)
        printf("redact: secret: %s\n", buf_str(&b));
    json_decref(sec);
    CHECK(redact_object(NULL) == NULL);

    // Free text.
    buf_reset(&b);
    CHECK(redact_text("start --redis-password=abc1 password: def2 token=ghi3&x=1 "
                      "Authorization: Bearer jkl4 url=http://h:80/ ok",
                      &b) == 0);
    CHECK(!s_has(&b, "abc1") && !s_has(&b, "def2") && !s_has(&b, "ghi3") && !s_has(&b, "jkl4"));
    CHECK(s_has(&b, "&x=1") && s_has(&b, "url=http://h:80/ ok") && s_has(&b, "start "));
    if (verbose)
        printf("redact: text: %s\n", buf_str(&b));
    CHECK(redact_text(NULL, &b) == ERR_INVAL);
    buf_free(&b);

    // The bounded dump equals the dump of redact_object() whenever it fits: reals, integers,
    // null, escapes, UTF-8, a Secret, name/value pairs, secret keys, deep nesting.
    const char *same[] = {
        "{\"kind\":\"Pod\",\"a\":1.5,\"b\":-7,\"c\":null,\"d\":[true,false,[],{}],"
        "\"e\":\"q\\\"b\\\\n\\n\\u0001/\\u00e9\",\"auth\":{\"x\":2},\"my-key\":\"v\","
        "\"env\":[{\"name\":\"X_TOKEN\",\"value\":\"t1\"},{\"name\":\"Y\",\"value\":\"a=b\"}],"
        "\"s\":\"x Bearer abc y\",\"n\":1e300}",
        "{\"kind\":\"Secret\",\"data\":{\"a\":\"b\",\"n\":{\"x\":1}},\"stringData\":[1],"
        "\"metadata\":{\"name\":\"s\"}}",
        "[\"password=x\",3,{\"name\":\"PASSWORD\",\"value\":4}]"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        json_t *o = json_loads(same[i], JSON_DECODE_ANY, &je);
        json_t *ro = o ? redact_object(o) : NULL;
        char *want =
            ro ? json_dumps(ro, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
        buf_reset(&b);
        CHECK(want && redact_summary(o, 4096, &b) == 0 && strcmp(buf_str(&b), want) == 0);
        if (verbose && (!want || strcmp(buf_str(&b), want)))
            printf("redact: same %zu:\n %s\n %s\n", i, buf_str(&b), want);
        free(want);
        json_decref(ro);
        json_decref(o);
    }
    json_t *bare = json_string("just token=abc"); // a bare string gets the free-text rule too
    buf_reset(&b);
    CHECK(bare && redact_summary(bare, 4096, &b) == 0 &&
          !strcmp(buf_str(&b), "\"just token=" REDACT_MARK "\""));
    json_decref(bare);
    json_t *deep2 = json_object();
    for (int i = 0; deep2 && i < REDACT_DEPTH_MAX + 3; i++)
        deep2 = json_pack("{s:o,s:s}", "d", deep2, "pw", "password=zz");
    json_t *rdeep = deep2 ? redact_object(deep2) : NULL;
    char *wdeep = rdeep ? json_dumps(rdeep, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    buf_t bb;
    buf_init(&bb, 1u << 20);
    CHECK(wdeep && redact_summary(deep2, 1u << 16, &bb) == 0 && !strcmp(buf_str(&bb), wdeep));
    free(wdeep);
    json_decref(rdeep);
    json_decref(deep2);

    // A secret value straddling the cut, at every cut position: "--redis-password=qq..", an env
    // pair, a secret-looking key and a Bearer header, each after a filler that moves it across
    // the bound one byte at a time. No two consecutive secret bytes ever appear; the head is a
    // prefix of the complete redacted dump; the summary stays valid JSON within the bound.
    char secret[300];
    memset(secret, 'q', sizeof(secret) - 1);
    secret[sizeof(secret) - 1] = '\0';
    char pw[400], bearer[400];
    snprintf(pw, sizeof(pw), "run --redis-password=%s --x", secret);
    snprintf(bearer, sizeof(bearer), "Bearer %s", secret);
    for (int shape = 0; shape < 4; shape++) {
        for (size_t pad = 0; pad < 420; pad += 1) {
            char fill[512];
            memset(fill, 'f', pad);
            fill[pad] = '\0';
            json_t *o = NULL;
            if (shape == 0)
                o = json_pack("{s:s,s:{s:s},s:s,s:[s]}", "kind", "Pod", "metadata", "name", "p",
                              "fill", fill, "args", pw);
            else if (shape == 1)
                o = json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "kind", "Pod", "fill", fill, "env", "name",
                              "REDIS_PASSWORD", "value", secret);
            else if (shape == 2)
                o = json_pack("{s:s,s:s,s:{s:s}}", "kind", "Pod", "fill", fill, "annotations",
                              "my-token", secret);
            else
                o = json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "kind", "Pod", "fill", fill, "headers",
                              "name", "X-Forwarded", "value", bearer);
            json_t *ro = o ? redact_object(o) : NULL;
            char *whole = ro ? json_dumps(ro, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            buf_reset(&b);
            CHECK(whole && redact_summary(o, REDACT_SUMMARY_MIN, &b) == 0);
            CHECK(b.len <= REDACT_SUMMARY_MIN && !s_has(&b, "qq"));
            json_t *back2 = json_loads(buf_str(&b), 0, &je);
            CHECK(back2 != NULL);
            const char *head = json_string_value(json_object_get(back2, "head"));
            CHECK(whole && (json_is_true(json_object_get(back2, "truncated"))
                                ? head && strncmp(whole, head, strlen(head)) == 0
                                : strcmp(whole, buf_str(&b)) == 0));
            if (failed) {
                printf("redact: straddle shape %d pad %zu: %s\n", shape, pad, buf_str(&b));
                shape = 4;
                pad = 1000;
            }
            json_decref(back2);
            free(whole);
            json_decref(ro);
            json_decref(o);
        }
    }
    // A huge object costs only the bound: a 4 MiB string is never read past the cut.
    size_t huge_n = 4u << 20;
    char *huge = malloc(huge_n + 1);
    CHECK(huge != NULL);
    if (huge) {
        memset(huge, 'h', huge_n);
        huge[huge_n] = '\0';
        json_t *o = json_pack("{s:s,s:s}", "kind", "ConfigMap", "blob", huge);
        buf_reset(&b);
        CHECK(o && redact_summary(o, REDACT_SUMMARY_MIN, &b) == 0 && b.len <= REDACT_SUMMARY_MIN);
        json_decref(o);
        free(huge);
    }
    buf_free(&bb);
    buf_free(&b);

    // Depth beyond the bound is cut, not recursed without limit.
    json_t *deep = json_object();
    json_t *cur = deep;
    for (int i = 0; i < REDACT_DEPTH_MAX + 5; i++) {
        json_t *n = json_object();
        json_object_set_new(cur, "x", n);
        cur = n;
    }
    json_t *rd = redact_object(deep);
    CHECK(rd != NULL);
    json_decref(rd);
    json_decref(deep);
    return SELFTEST_RESULT("redact", verbose);
}

#endif /* RF_SELFTEST */
