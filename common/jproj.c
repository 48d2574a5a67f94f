/*
 * jproj: validate a JSON text in one pass, build only the kept paths. See jproj.h.
 *
 * A recursive-descent scanner over the bytes. Each value is scanned under a node of the trie of
 * kept paths: no node (skip: validate only, allocate nothing), a "whole" node (build the value),
 * or an inner node (build objects, follow the children). Duplicate keys are found per object from
 * a stack of key records (FNV-1a hash of the decoded key and where its text lies): pairwise for
 * small objects, sorted for large ones.
 */
#include "jproj.h"

#include "err.h"
#include "quote.h"
#include "yaml.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_NUM_STACK 64 /* numbers shorter than this are converted from a stack copy */
#define S_KEY_STACK 256 /* escaped keys shorter than this are decoded on the stack */
#define S_SKIP_REAL_DIGITS 300 /* a real without exponent this long may overflow */
#define S_SKIP_INT_DIGITS 19 /* an integer this long may be outside 64 bits */

typedef struct s_node s_node_t;
struct s_node {
    char *key; /* object key (NULL at the root) */
    size_t klen; /* its length */
    bool whole; /* a kept path ends here: keep the whole value */
    s_node_t *kids; /* children (inner node) */
    size_t nkids; /* how many */
};

struct jproj {
    s_node_t root; /* the trie of kept paths */
    char *span[JPROJ_MAX_SEGMENTS]; /* span path segments */
    size_t span_len[JPROJ_MAX_SEGMENTS]; /* their lengths */
    int nspan; /* how many; -1: no span path */
};

/* A key seen in the object being scanned. */
typedef struct {
    uint64_t h; /* FNV-1a of the decoded key */
    size_t off; /* its raw text (between the quotes) */
    size_t len; /* raw length */
    bool esc; /* the raw text has escapes */
} s_key_t;

typedef struct {
    const unsigned char *d; /* the text */
    size_t n; /* its length */
    size_t i; /* scan position */
    const jproj_t *jp; /* the projection */
    const char *name; /* for messages */
    buf_t *err; /* messages */
    s_key_t *keys; /* key stack */
    size_t nkeys, capkeys; /* used, allocated */
    bool keys_heap; /* keys was malloc'd */
    char *sbuf; /* decoded string scratch */
    size_t scap; /* allocated */
    jproj_span_t *spans; /* spans found */
    size_t nspans, capspans; /* used, allocated */
    bool span_found; /* the span path was seen */
    s_key_t stack_keys[JPROJ_STACK_KEYS]; /* keys without allocating */
} s_p_t;

/* 1 for bytes a string may hold as they are (printable ASCII but '"' and '\\'). */
static unsigned char s_plain[256];
static bool s_plain_init;

static void s_tables(void)
{
    if (s_plain_init)
        return;
    for (int c = 0x20; c < 0x80; c++)
        s_plain[c] = c != '"' && c != '\\';
    s_plain_init = true;
}

/* ---------- compiling ---------- */

static void s_node_free(s_node_t *n)
{
    for (size_t i = 0; i < n->nkids; i++)
        s_node_free(&n->kids[i]);
    free(n->kids);
    free(n->key);
}

static s_node_t *s_child(const s_node_t *n, const char *k, size_t klen)
{
    for (size_t i = 0; i < n->nkids; i++)
        if (n->kids[i].klen == klen && memcmp(n->kids[i].key, k, klen) == 0)
            return &n->kids[i];
    return NULL;
}

static int s_add_path(s_node_t *root, const char *path)
{
    s_node_t *n = root;
    const char *p = path;
    int segs = 0;
    if (!*p)
        return ERR_INVAL;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0 || ++segs > JPROJ_MAX_SEGMENTS)
            return ERR_INVAL;
        s_node_t *c = s_child(n, p, len);
        if (!c) {
            s_node_t *nk = realloc(n->kids, (n->nkids + 1) * sizeof(*nk));
            if (!nk)
                return ERR_NOMEM;
            n->kids = nk;
            c = &n->kids[n->nkids];
            memset(c, 0, sizeof(*c));
            c->key = strndup(p, len);
            if (!c->key)
                return ERR_NOMEM;
            c->klen = len;
            n->nkids++;
        }
        n = c;
        if (!dot)
            break;
        p = dot + 1;
    }
    n->whole = true;
    return 0;
}

jproj_t *jproj_new(const char *const *keep, const char *span_path)
{
    jproj_t *jp = calloc(1, sizeof(*jp));
    if (!jp)
        return NULL;
    jp->nspan = -1;
    if (!keep) {
        jp->root.whole = true;
    } else {
        size_t i = 0;
        for (; keep[i]; i++)
            if (i >= JPROJ_MAX_PATHS || s_add_path(&jp->root, keep[i]) != 0)
                goto fail;
    }
    if (span_path) {
        jp->nspan = 0;
        const char *p = span_path;
        for (;;) {
            const char *dot = strchr(p, '.');
            size_t len = dot ? (size_t)(dot - p) : strlen(p);
            if (len == 0 || jp->nspan >= JPROJ_MAX_SEGMENTS)
                goto fail;
            jp->span[jp->nspan] = strndup(p, len);
            if (!jp->span[jp->nspan])
                goto fail;
            jp->span_len[jp->nspan++] = len;
            if (!dot)
                break;
            p = dot + 1;
        }
    }
    return jp;
fail:
    jproj_destroy(&jp);
    return NULL;
}

void jproj_destroy(jproj_t **p)
{
    if (!p || !*p)
        return;
    jproj_t *jp = *p;
    s_node_free(&jp->root);
    for (int i = 0; i < jp->nspan; i++)
        free(jp->span[i]);
    free(jp);
    *p = NULL;
}

void jproj_result_free(jproj_result_t *res)
{
    if (!res)
        return;
    json_decref(res->value);
    free(res->spans);
    memset(res, 0, sizeof(*res));
}

/* ---------- scanning ---------- */

static int s_fail(s_p_t *p, size_t at, const char *msg)
{
    if (p->err)
        (void)buf_printf(p->err, "%s: byte %zu: %s", p->name ? p->name : "<input>", at, msg);
    return ERR_PARSE;
}

static void s_ws(s_p_t *p)
{
    const unsigned char *d = p->d;
    size_t i = p->i, n = p->n;
    while (i < n && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t'))
        i++;
    p->i = i;
}

/* The 4 hex digits at d[i..i+4) into *v; false when not 4 hex digits. */
static bool s_hex4(const unsigned char *d, size_t n, size_t i, uint32_t *v)
{
    if (i + 4 > n)
        return false;
    uint32_t x = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = quote_hexval((unsigned char)d[i + k]);
        if (h < 0)
            return false;
        x = (x << 4) | (uint32_t)h;
    }
    *v = x;
    return true;
}

/* Length of the valid UTF-8 sequence at s (first byte >= 0x80), or 0 (jansson's rules). */
static size_t s_utf8(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    uint32_t v;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        k = 2;
        v = c & 0x1F;
    } else if (c < 0xF0) {
        k = 3;
        v = c & 0x0F;
    } else if (c < 0xF5) {
        k = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t j = 1; j < k; j++) {
        if ((s[j] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[j] & 0x3F);
    }
    if ((k == 3 && v < 0x800) || (k == 4 && v < 0x10000) || (v >= 0xD800 && v <= 0xDFFF) ||
        v > 0x10FFFF)
        return 0;
    return k;
}

/* Scans the string at p->i (on its quote): validates it and sets its raw content span
 * [*start, *end) and whether it has escapes; p->i ends after the closing quote. */
static int s_scan_string(s_p_t *p, size_t *start, size_t *end, bool *esc)
{
    const unsigned char *d = p->d;
    size_t n = p->n, i = p->i + 1;
    *start = i;
    *esc = false;
    for (;;) {
        while (i < n && s_plain[d[i]])
            i++;
        if (i >= n)
            return s_fail(p, i, "premature end of input in a string");
        unsigned char c = d[i];
        if (c == '"')
            break;
        if (c == '\\') {
            *esc = true;
            if (i + 1 >= n)
                return s_fail(p, i, "premature end of input in an escape");
            unsigned char e = d[i + 1];
            if (e == 'u') {
                uint32_t v, lo;
                if (!s_hex4(d, n, i + 2, &v))
                    return s_fail(p, i, "invalid escape");
                if (v == 0)
                    return s_fail(p, i, "\\u0000 is not allowed");
                if (v >= 0xDC00 && v <= 0xDFFF)
                    return s_fail(p, i, "unpaired low surrogate");
                i += 6;
                if (v >= 0xD800 && v <= 0xDBFF) {
                    if (!(i + 1 < n && d[i] == '\\' && d[i + 1] == 'u' &&
                          s_hex4(d, n, i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF))
                        return s_fail(p, i, "unpaired high surrogate");
                    i += 6;
                }
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                i += 2;
            } else {
                return s_fail(p, i, "invalid escape");
            }
            continue;
        }
        if (c < 0x20)
            return s_fail(p, i, "control character in a string");
        size_t k = s_utf8(d + i, n - i);
        if (!k)
            return s_fail(p, i, "invalid UTF-8 in a string");
        i += k;
    }
    *end = i;
    p->i = i + 1;
    return 0;
}

static size_t s_put_utf8(char *o, uint32_t v)
{
    if (v < 0x80) {
        o[0] = (char)v;
        return 1;
    }
    if (v < 0x800) {
        o[0] = (char)(0xC0 | (v >> 6));
        o[1] = (char)(0x80 | (v & 0x3F));
        return 2;
    }
    if (v < 0x10000) {
        o[0] = (char)(0xE0 | (v >> 12));
        o[1] = (char)(0x80 | ((v >> 6) & 0x3F));
        o[2] = (char)(0x80 | (v & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (v >> 18));
    o[1] = (char)(0x80 | ((v >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((v >> 6) & 0x3F));
    o[3] = (char)(0x80 | (v & 0x3F));
    return 4;
}

/* Decodes the validated raw string content d[start..end) into out (room for end-start bytes:
 * escapes never grow). Returns the decoded length. */
static size_t s_decode(const unsigned char *d, size_t start, size_t end, char *out)
{
    size_t o = 0;
    for (size_t i = start; i < end;) {
        if (d[i] != '\\') {
            out[o++] = (char)d[i++];
            continue;
        }
        unsigned char e = d[i + 1];
        i += 2;
        switch (e) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            uint32_t v = 0, lo = 0;
            s_hex4(d, end, i, &v);
            i += 4;
            if (v >= 0xD800 && v <= 0xDBFF) {
                s_hex4(d, end, i + 2, &lo);
                i += 6;
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += s_put_utf8(out + o, v);
            break;
        }
        default:
            out[o++] = (char)e;
        }
    }
    return o;
}

/* Room for n bytes in p->sbuf. */
static int s_sroom(s_p_t *p, size_t n)
{
    if (n <= p->scap)
        return 0;
    size_t cap = p->scap ? p->scap : 256;
    while (cap < n)
        cap *= 2;
    char *nb = realloc(p->sbuf, cap);
    if (!nb)
        return ERR_NOMEM;
    p->sbuf = nb;
    p->scap = cap;
    return 0;
}

static uint64_t s_fnv(const char *s, size_t n)
{
    uint64_t h = JX_FNV_OFFSET;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= JX_FNV_PRIME;
    }
    return h;
}

static int s_number(s_p_t *p, json_t **out)
{
    const unsigned char *d = p->d;
    size_t n = p->n, i = p->i, st = p->i;
    bool real = false, exp = false;
    if (d[i] == '-')
        i++;
    if (i >= n)
        return s_fail(p, st, "invalid number");
    size_t dstart = i;
    if (d[i] == '0') {
        i++;
        if (i < n && d[i] >= '0' && d[i] <= '9')
            return s_fail(p, st, "invalid number (leading zero)");
    } else if (d[i] >= '1' && d[i] <= '9') {
        while (i < n && d[i] >= '0' && d[i] <= '9')
            i++;
    } else {
        return s_fail(p, st, "invalid number");
    }
    size_t idigits = i - dstart;
    if (i < n && d[i] == '.') {
        i++;
        if (!(i < n && d[i] >= '0' && d[i] <= '9'))
            return s_fail(p, st, "invalid number");
        while (i < n && d[i] >= '0' && d[i] <= '9')
            i++;
        real = true;
    }
    if (i < n && (d[i] == 'e' || d[i] == 'E')) {
        i++;
        if (i < n && (d[i] == '+' || d[i] == '-'))
            i++;
        if (!(i < n && d[i] >= '0' && d[i] <= '9'))
            return s_fail(p, st, "invalid number");
        while (i < n && d[i] >= '0' && d[i] <= '9')
            i++;
        real = exp = true;
    }
    p->i = i;
    size_t len = i - st;
    bool check = out || (real ? exp || len >= S_SKIP_REAL_DIGITS : idigits >= S_SKIP_INT_DIGITS);
    if (!check)
        return 0;
    char tmp[S_NUM_STACK];
    char *s = tmp;
    if (len >= sizeof(tmp)) {
        if (s_sroom(p, len + 1))
            return ERR_NOMEM;
        s = p->sbuf;
    }
    memcpy(s, d + st, len);
    s[len] = 0;
    errno = 0;
    if (real) {
        double v = strtod(s, NULL);
        if ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE)
            return s_fail(p, st, "real number overflow");
        if (out && !(*out = json_real(v)))
            return ERR_NOMEM;
    } else {
        long long v = strtoll(s, NULL, 10);
        if (errno == ERANGE)
            return s_fail(p, st, "too big integer");
        if (out && !(*out = json_integer((json_int_t)v)))
            return ERR_NOMEM;
    }
    return 0;
}

/* Decoded key text: into `stack` (S_KEY_STACK bytes) when it fits, else malloc'd into *heap. */
static const char *s_key_text(const s_p_t *p, const s_key_t *k, char *stack, char **heap,
                              size_t *len)
{
    if (!k->esc) {
        *len = k->len;
        return (const char *)p->d + k->off;
    }
    char *o = stack;
    if (k->len > S_KEY_STACK) {
        *heap = malloc(k->len);
        if (!*heap)
            return NULL;
        o = *heap;
    }
    *len = s_decode(p->d, k->off, k->off + k->len, o);
    return o;
}

/* True when the two keys are equal once decoded (*nomem set on allocation failure). */
static bool s_key_eq(const s_p_t *p, const s_key_t *a, const s_key_t *b, bool *nomem)
{
    if (a->h != b->h)
        return false;
    if (!a->esc && !b->esc)
        return a->len == b->len && memcmp(p->d + a->off, p->d + b->off, a->len) == 0;
    char sa[S_KEY_STACK], sb[S_KEY_STACK];
    char *ha = NULL, *hb = NULL;
    size_t la = 0, lb = 0;
    const char *ta = s_key_text(p, a, sa, &ha, &la);
    const char *tb = s_key_text(p, b, sb, &hb, &lb);
    bool eq = ta && tb && la == lb && memcmp(ta, tb, la) == 0;
    if (!ta || !tb)
        *nomem = true;
    free(ha);
    free(hb);
    return eq;
}

static int s_key_cmp(const void *x, const void *y)
{
    const s_key_t *a = x, *b = y;
    return a->h < b->h ? -1 : a->h > b->h ? 1 : 0;
}

/* Fails on a duplicate among the keys of the object that started at keys[base]. */
static int s_dups(s_p_t *p, size_t base, size_t at)
{
    s_key_t *k = p->keys + base;
    size_t n = p->nkeys - base;
    bool nomem = false;
    if (n <= JPROJ_LINEAR_KEYS) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (s_key_eq(p, &k[i], &k[j], &nomem))
                    return s_fail(p, at, "duplicate object key");
    } else {
        qsort(k, n, sizeof(*k), s_key_cmp);
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && k[j - 1].h == k[i].h; j--)
                if (s_key_eq(p, &k[i], &k[j - 1], &nomem))
                    return s_fail(p, at, "duplicate object key");
    }
    return nomem ? ERR_NOMEM : 0;
}

static int s_push_key(s_p_t *p, const s_key_t *k)
{
    if (p->nkeys == p->capkeys) {
        size_t cap = p->capkeys * 2;
        s_key_t *nk =
            p->keys_heap ? realloc(p->keys, cap * sizeof(*nk)) : malloc(cap * sizeof(*nk));
        if (!nk)
            return ERR_NOMEM;
        if (!p->keys_heap)
            memcpy(nk, p->keys, p->nkeys * sizeof(*nk));
        p->keys = nk;
        p->keys_heap = true;
        p->capkeys = cap;
    }
    p->keys[p->nkeys++] = *k;
    return 0;
}

static int s_add_span(s_p_t *p, size_t off, size_t len)
{
    if (p->nspans == p->capspans) {
        size_t cap = p->capspans ? p->capspans * 2 : 64;
        jproj_span_t *ns = realloc(p->spans, cap * sizeof(*ns));
        if (!ns)
            return ERR_NOMEM;
        p->spans = ns;
        p->capspans = cap;
    }
    p->spans[p->nspans++] = (jproj_span_t){off, len};
    return 0;
}

static int s_value(s_p_t *p, const s_node_t *node, int sl, json_t **out, int depth);

/* After a member of an object or array: 1 after a ',' (another member follows), 0 after the
 * closing `close`, or the error of anything else. */
static int s_after_member(s_p_t *p, char close)
{
    s_ws(p);
    if (p->i < p->n && p->d[p->i] == ',') {
        p->i++;
        s_ws(p);
        return 1;
    }
    if (p->i < p->n && p->d[p->i] == close) {
        p->i++;
        return 0;
    }
    return s_fail(p, p->i, close == '}' ? "',' or '}' expected" : "',' or ']' expected");
}

static int s_object(s_p_t *p, const s_node_t *node, int sl, json_t **out, int depth)
{
    const jproj_t *jp = p->jp;
    size_t open = p->i++;
    json_t *obj = NULL;
    if (node && !(obj = json_object()))
        return ERR_NOMEM;
    size_t base = p->nkeys;
    int rc = 0;
    s_ws(p);
    if (p->i < p->n && p->d[p->i] == '}') {
        p->i++;
        goto done;
    }
    for (;;) {
        if (p->i >= p->n || p->d[p->i] != '"') {
            rc = s_fail(p, p->i, "string or '}' expected");
            goto done;
        }
        s_key_t k;
        size_t kend;
        if ((rc = s_scan_string(p, &k.off, &kend, &k.esc)) != 0)
            goto done;
        k.len = kend - k.off;
        char kstack[S_KEY_STACK];
        char *kheap = NULL;
        size_t klen = 0;
        const char *key = s_key_text(p, &k, kstack, &kheap, &klen);
        if (!key) {
            rc = ERR_NOMEM;
            goto done;
        }
        k.h = s_fnv(key, klen);
        const s_node_t *child = !node ? NULL : node->whole ? node : s_child(node, key, klen);
        int csl = -1;
        if (sl >= 0 && sl < jp->nspan && jp->span_len[sl] == klen &&
            memcmp(jp->span[sl], key, klen) == 0)
            csl = sl + 1;
        rc = s_push_key(p, &k);
        if (!rc) {
            s_ws(p);
            if (p->i >= p->n || p->d[p->i] != ':')
                rc = s_fail(p, p->i, "':' expected");
        }
        json_t *v = NULL;
        if (!rc) {
            p->i++;
            s_ws(p);
            rc = s_value(p, child, csl, child ? &v : NULL, depth);
        }
        if (!rc && v && json_object_setn_new_nocheck(obj, key, klen, v) != 0)
            rc = ERR_NOMEM;
        free(kheap);
        if (rc)
            goto done;
        rc = s_after_member(p, '}');
        if (rc > 0)
            continue;
        if (rc == 0)
            break;
        goto done;
    }
    rc = s_dups(p, base, open);
done:
    p->nkeys = base;
    if (rc)
        json_decref(obj);
    else if (out)
        *out = obj;
    return rc;
}

static int s_array(s_p_t *p, const s_node_t *node, bool at_span, json_t **out, int depth)
{
    p->i++;
    json_t *arr = NULL;
    if (node && !(arr = json_array()))
        return ERR_NOMEM;
    int rc = 0;
    s_ws(p);
    if (p->i < p->n && p->d[p->i] == ']') {
        p->i++;
        goto done;
    }
    for (;;) {
        size_t st = p->i;
        json_t *v = NULL;
        rc = s_value(p, node, -1, node ? &v : NULL, depth);
        if (!rc && at_span)
            rc = s_add_span(p, st, p->i - st);
        if (!rc && node && json_array_append_new(arr, v ? v : json_null()) != 0)
            rc = ERR_NOMEM;
        if (rc)
            goto done;
        rc = s_after_member(p, ']');
        if (rc > 0)
            continue;
        if (rc == 0)
            break;
        goto done;
    }
done:
    if (rc)
        json_decref(arr);
    else if (out)
        *out = arr;
    return rc;
}

static int s_lit(s_p_t *p, const char *word, size_t len)
{
    if (p->n - p->i < len || memcmp(p->d + p->i, word, len) != 0)
        return s_fail(p, p->i, "invalid token");
    p->i += len;
    return 0;
}

/* Scans one value at p->i under `node` (NULL: skip). `sl`: span path segments matched so far
 * (-1: off the path). Sets *out (when out) to the value built, or leaves it NULL (undefined). */
static int s_value(s_p_t *p, const s_node_t *node, int sl, json_t **out, int depth)
{
    if (p->i >= p->n)
        return s_fail(p, p->i, "premature end of input");
    bool at_span = sl >= 0 && sl == p->jp->nspan;
    if (at_span) {
        p->span_found = true;
        p->nspans = 0;
    }
    size_t st = p->i;
    bool build = node && node->whole; /* scalars are built only when kept whole */
    int rc;
    unsigned char c = p->d[p->i];
    switch (c) {
    case '{':
        if (depth + 1 > JPROJ_MAX_DEPTH)
            return s_fail(p, st, "nesting too deep");
        rc = s_object(p, node, at_span ? -1 : sl, out, depth + 1);
        break;
    case '[':
        if (depth + 1 > JPROJ_MAX_DEPTH)
            return s_fail(p, st, "nesting too deep");
        rc = s_array(p, node, at_span, out, depth + 1);
        if (!rc && at_span)
            return 0;
        break;
    case '"': {
        size_t s0, s1;
        bool esc;
        rc = s_scan_string(p, &s0, &s1, &esc);
        if (!rc && build) {
            const char *t = (const char *)p->d + s0;
            size_t len = s1 - s0;
            if (esc) {
                if (s_sroom(p, len + 1))
                    return ERR_NOMEM;
                len = s_decode(p->d, s0, s1, p->sbuf);
                t = p->sbuf;
            }
            if (!(*out = json_stringn_nocheck(t, len)))
                rc = ERR_NOMEM;
        }
        break;
    }
    case 't':
        rc = s_lit(p, "true", 4);
        if (!rc && build)
            *out = json_true();
        break;
    case 'f':
        rc = s_lit(p, "false", 5);
        if (!rc && build)
            *out = json_false();
        break;
    case 'n':
        rc = s_lit(p, "null", 4);
        if (!rc && build)
            *out = json_null();
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            rc = s_number(p, build ? out : NULL);
        else
            rc = s_fail(p, st, "invalid token");
    }
    if (!rc && at_span)
        rc = s_add_span(p, st, p->i - st);
    return rc;
}

int jproj_parse(const jproj_t *jp, const char *data, size_t len, const char *name,
                jproj_result_t *out, buf_t *err)
{
    if (!out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (!jp || (!data && len))
        return ERR_INVAL;
    s_tables();
    s_p_t *p = malloc(sizeof(*p));
    if (!p)
        return ERR_NOMEM;
    memset(p, 0, offsetof(s_p_t, stack_keys));
    p->d = (const unsigned char *)(data ? data : "");
    p->n = len;
    p->jp = jp;
    p->name = name;
    p->err = err;
    p->keys = p->stack_keys;
    p->capkeys = JPROJ_STACK_KEYS;
    json_t *v = NULL;
    s_ws(p);
    int rc = s_value(p, &jp->root, jp->nspan >= 0 ? 0 : -1, &v, 0);
    if (!rc) {
        s_ws(p);
        if (p->i != p->n)
            rc = s_fail(p, p->i, "end of input expected");
    }
    if (rc) {
        json_decref(v);
        free(p->spans);
    } else {
        out->value = v;
        out->spans = p->spans;
        out->n_spans = p->nspans;
        out->span_found = p->span_found;
    }
    if (p->keys_heap)
        free(p->keys);
    free(p->sbuf);
    free(p);
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------- self-test ---------- */

/* The reference projection: P(v, n) of jproj.h over a tree jx_parse() built. */
static json_t *s_t_prune(json_t *v, const s_node_t *n)
{
    if (n->whole)
        return json_incref(v);
    if (json_is_object(v)) {
        json_t *o = json_object();
        for (size_t i = 0; o && i < n->nkids; i++) {
            json_t *c = json_object_getn(v, n->kids[i].key, n->kids[i].klen);
            json_t *r = c ? s_t_prune(c, &n->kids[i]) : NULL;
            if (r)
                json_object_setn_new(o, n->kids[i].key, n->kids[i].klen, r);
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            json_t *r = s_t_prune(e, n);
            json_array_append_new(a, r ? r : json_null());
        }
        return a;
    }
    return NULL;
}

/* 0 when jproj and "jx_parse then prune" agree on the text (both reject, or equal values). */
static int s_t_same(const jproj_t *jp, const char *text, size_t len, int *accepted)
{
    json_t *full = NULL;
    int want = jx_parse(text, len, "t", &full, NULL);
    jproj_result_t res;
    int got = jproj_parse(jp, text, len, "t", &res, NULL);
    int bad = 0;
    if ((want == 0) != (got == 0)) {
        bad = 1;
    } else if (want == 0) {
        json_t *ref = s_t_prune(full, &jp->root);
        bad = !((ref == NULL && res.value == NULL) ||
                (ref && res.value && json_equal(ref, res.value)));
        json_decref(ref);
        if (accepted)
            (*accepted)++;
    }
    if (bad) {
        printf("  jproj mismatch (jx %d, jproj %d) on: %.*s\n", want, got,
               (int)(len > 300 ? 300 : len), text);
    }
    json_decref(full);
    jproj_result_free(&res);
    return bad;
}

static const char *const s_t_watch_keep[] = {"metadata",          "status.phase", "status.state",
                                             "status.conditions", "kind",         NULL};
static const char *const s_t_keep2[] = {"spec.headGroupSpec.template.spec.containers",
                                        "metadata.labels", "spec.rayVersion", NULL};
static const char *const s_t_keep3[] = {"kind", "apiVersion", NULL};
static const char *const s_t_keep_none[] = {NULL};
static const char *const s_t_keep_rand[] = {"a",     "b.c", "metadata.name", "k\"q.a", "x",
                                            "b.a.b", NULL};

/* Checks every document of every YAML file under dir, as JSON text in two forms. */
static int s_t_walk(const char *dir, jproj_t **jps, size_t njps, int *docs, int *fails)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return 0;
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t nl = strlen(de->d_name);
        if (de->d_type == DT_DIR) {
            s_t_walk(path, jps, njps, docs, fails);
            continue;
        }
        if (nl < 5 || strcmp(de->d_name + nl - 5, ".yaml") != 0)
            continue;
        json_t *ds = NULL;
        if (yaml_load_file(path, 8u << 20, &ds, NULL) != 0)
            continue;
        size_t i;
        json_t *d;
        json_array_foreach(ds, i, d)
        {
            char *t1 = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
            char *t2 = json_dumps(d, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
            for (size_t k = 0; k < njps; k++) {
                if (t1)
                    *fails += s_t_same(jps[k], t1, strlen(t1), NULL);
                if (t2)
                    *fails += s_t_same(jps[k], t2, strlen(t2), NULL);
            }
            free(t1);
            free(t2);
            (*docs)++;
        }
        json_decref(ds);
    }
    closedir(dh);
    return 0;
}

static uint64_t s_t_rng = 88172645463325252ULL;

static uint64_t s_t_rand(void)
{
    s_t_rng ^= s_t_rng << 13;
    s_t_rng ^= s_t_rng >> 7;
    s_t_rng ^= s_t_rng << 17;
    return s_t_rng;
}

static json_t *s_t_gen(int depth)
{
    static const char *const keys[] = {"a",    "b",    "c",        "x",   "metadata",
                                       "name", "k\"q", "\xc3\xa9", "x.y", ""};
    static const char *const strs[] = {"",
                                       "plain",
                                       "tab\there",
                                       "quote\"back\\",
                                       "\xe2\x82\xac",
                                       "\xf0\x9f\x98\x80",
                                       "ctl\x01\x1f",
                                       "del\x7f",
                                       "/slash"};
    int kind = (int)(s_t_rand() % (depth > 4 ? 6 : 8));
    switch (kind) {
    case 0:
        return json_integer((json_int_t)(s_t_rand() % 3 == 0
                                             ? (int64_t)s_t_rand()
                                             : (int64_t)(s_t_rand() % 2000) - 1000));
    case 1:
        return json_real((double)(int64_t)(s_t_rand() % 100000) / 7.0 *
                         (s_t_rand() % 2 ? 1e-30 : 1e30));
    case 2:
        return json_string(strs[s_t_rand() % (sizeof(strs) / sizeof(*strs))]);
    case 3:
        return s_t_rand() % 2 ? json_true() : json_false();
    case 4:
        return json_null();
    case 5:
        return json_string("s");
    case 6: {
        json_t *a = json_array();
        int n = (int)(s_t_rand() % 5);
        for (int i = 0; i < n; i++)
            json_array_append_new(a, s_t_gen(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        int n = (int)(s_t_rand() % 6);
        for (int i = 0; i < n; i++)
            json_object_set_new(o, keys[s_t_rand() % (sizeof(keys) / sizeof(*keys))],
                                s_t_gen(depth + 1));
        return o;
    }
    }
}

/* A pod-sized object, like the ones a watch carries. */
static char *s_t_pod(void)
{
    json_t *pod = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s}, "
        "s:{s:s, s:s}, s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}}",
        "apiVersion", "v1", "kind", "Pod", "metadata", "name", "raycluster-sample-worker-abcde",
        "namespace", "default", "uid", "6f1c1a2e-8d0b-4c2a-9b1f-0a1b2c3d4e5f", "resourceVersion",
        "123456", "creationTimestamp", "2024-01-01T00:00:00Z", "generation", 1, "generateName",
        "raycluster-sample-worker-", "labels", "ray.io/cluster", "raycluster-sample",
        "ray.io/node-type", "worker", "ray.io/group", "small-group", "ray.io/is-ray-node", "yes",
        "app.kubernetes.io/created-by", "kuberay-operator", "app.kubernetes.io/name", "kuberay",
        "annotations", "ray.io/ft-enabled", "false", "ray.io/overwrite-container-cmd", "true",
        "ownerReferences", "apiVersion", "ray.io/v1", "kind", "RayCluster", "name",
        "raycluster-sample", "uid", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "controller", 1,
        "blockOwnerDeletion", 1);
    json_t *c = json_pack(
        "{s:s, s:s, s:[s, s], s:[s], s:[{s:s, s:i, s:s}, {s:s, s:i, s:s}], "
        "s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:[{s:s, s:s}, {s:s, s:s}], s:s, s:s}",
        "name", "ray-worker", "image", "rayproject/ray:2.9.0", "command", "/bin/bash", "-lc",
        "args", "ulimit -n 65536; ray start --address=raycluster-sample-head-svc:6379 --block",
        "ports", "name", "metrics", "containerPort", 8080, "protocol", "TCP", "name", "dashboard",
        "containerPort", 8265, "protocol", "TCP", "resources", "limits", "cpu", "1", "memory",
        "1Gi", "requests", "cpu", "500m", "memory", "512Mi", "volumeMounts", "name", "ray-logs",
        "mountPath", "/tmp/ray", "name", "kube-api-access", "mountPath",
        "/var/run/secrets/kubernetes.io/serviceaccount", "terminationMessagePath",
        "/dev/termination-log", "imagePullPolicy", "IfNotPresent");
    json_t *env = json_array();
    for (int i = 0; i < 12; i++) {
        char k[32], v[64];
        snprintf(k, sizeof k, "RAY_ENV_VARIABLE_%d", i);
        snprintf(v, sizeof v, "value-of-the-variable-number-%d", i);
        json_array_append_new(env, json_pack("{s:s, s:s}", "name", k, "value", v));
    }
    json_object_set_new(c, "env", env);
    json_t *conds = json_array();
    const char *types[] = {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                           "PodScheduled"};
    for (int i = 0; i < 5; i++)
        json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:s}", "type", types[i], "status",
                                               "True", "lastProbeTime", "lastTransitionTime",
                                               "2024-01-01T00:00:05Z"));
    json_object_set_new(pod, "spec",
                        json_pack("{s:[o], s:s, s:s, s:s, s:i, s:s, s:[{s:s, s:{}}]}", "containers",
                                  c, "nodeName", "node-1", "restartPolicy", "Always",
                                  "schedulerName", "default-scheduler",
                                  "terminationGracePeriodSeconds", 30, "serviceAccountName",
                                  "default", "volumes", "name", "ray-logs", "emptyDir"));
    json_object_set_new(pod, "status",
                        json_pack("{s:s, s:o, s:s, s:s, s:s, s:[{s:s, s:b, s:i, s:s, s:s}]}",
                                  "phase", "Running", "conditions", conds, "hostIP", "10.0.0.1",
                                  "podIP", "10.244.1.7", "startTime", "2024-01-01T00:00:01Z",
                                  "containerStatuses", "name", "ray-worker", "ready", 1,
                                  "restartCount", 0, "image", "rayproject/ray:2.9.0", "containerID",
                                  "containerd://0123456789abcdef0123456789abcdef"));
    char *s = json_dumps(pod, JSON_COMPACT);
    json_decref(pod);
    return s;
}

static double s_t_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int jproj_test(bool verbose)
{
    int failed = 0;
    buf_t err;
    buf_init(&err, 4096);

    /* compiling: bad paths */
    CHECK(jproj_new((const char *const[]){"", NULL}, NULL) == NULL);
    CHECK(jproj_new((const char *const[]){"a..b", NULL}, NULL) == NULL);
    CHECK(jproj_new((const char *const[]){"a.", NULL}, NULL) == NULL);
    CHECK(jproj_new(NULL, "items.") == NULL);
    CHECK(jproj_new((const char *const[]){"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q", NULL}, NULL) ==
          NULL);
    jproj_t *all = jproj_new(NULL, NULL);
    jproj_t *w = jproj_new(s_t_watch_keep, NULL);
    jproj_t *k2 = jproj_new(s_t_keep2, NULL);
    jproj_t *k3 = jproj_new(s_t_keep3, NULL);
    jproj_t *k0 = jproj_new(s_t_keep_none, NULL);
    jproj_t *kr = jproj_new(s_t_keep_rand, "metadata");
    CHECK(all && w && k2 && k3 && k0 && kr);
    jproj_destroy(&k0);
    CHECK(k0 == NULL);
    jproj_destroy(&k0);
    k0 = jproj_new(s_t_keep_none, NULL);
    jproj_result_t res;
    CHECK(jproj_parse(NULL, "{}", 2, NULL, &res, NULL) == ERR_INVAL);
    CHECK(jproj_parse(all, NULL, 2, NULL, &res, NULL) == ERR_INVAL);
    CHECK(jproj_parse(all, "{}", 2, NULL, NULL, NULL) == ERR_INVAL);
    jproj_result_free(NULL);
    if (!(all && w && k2 && k3 && k0 && kr))
        goto out;
    jproj_t *jps[] = {all, w, k2, k3, k0, kr};
    size_t njps = sizeof(jps) / sizeof(*jps);

    /* a simple projection, and the error message */
    const char *pod = "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"b\"}},"
                      "\"spec\":{\"x\":[1,2,{\"y\":null}]},\"status\":{\"phase\":\"Running\","
                      "\"podIP\":\"1.2.3.4\",\"conditions\":[{\"type\":\"Ready\"}]}}";
    CHECK(jproj_parse(w, pod, strlen(pod), "pod", &res, &err) == 0);
    json_t *want = json_pack("{s:s, s:{s:s, s:{s:s}}, s:{s:s, s:[{s:s}]}}", "kind", "Pod",
                             "metadata", "name", "p", "labels", "a", "b", "status", "phase",
                             "Running", "conditions", "type", "Ready");
    CHECK(res.value && json_equal(res.value, want));
    CHECK(res.spans == NULL && res.n_spans == 0 && !res.span_found);
    json_decref(want);
    jproj_result_free(&res);
    CHECK(res.value == NULL);
    CHECK(jproj_parse(w, "{\"a\":tru}", 9, "ev", &res, &err) == ERR_PARSE && res.value == NULL);
    CHECK(strstr(buf_str(&err), "ev: byte 5: invalid token") != NULL);
    if (verbose)
        printf("  error: %s\n", buf_str(&err));

    /* crafted texts: each must be judged as jx_parse judges it */
    static const char *const texts[] = {"",
                                        " ",
                                        "{",
                                        "}",
                                        "[",
                                        "]",
                                        "[1,]",
                                        "{\"a\":1,}",
                                        "{\"a\" 1}",
                                        "{,}",
                                        "{\"a\"}",
                                        "{1:2}",
                                        "nul",
                                        "truex",
                                        "[true false]",
                                        "[true,false,null]",
                                        "tru",
                                        "\"abc",
                                        "\"a\\",
                                        "\"\\x\"",
                                        "\"\\u12\"",
                                        "\"\\u12G4\"",
                                        "\"\\u0000\"",
                                        "\"\\ud800\"",
                                        "\"\\udc00\"",
                                        "\"\\ud800\\udc00\"",
                                        "\"\\ud800\\u0041\"",
                                        "\"\\ud800x\"",
                                        "\"\\uDBFF\\uDFFF\"",
                                        "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
                                        "\"\t\"",
                                        "\"\x7f\"",
                                        "\"\xc0\x80\"",
                                        "\"\xc1\xbf\"",
                                        "\"\xc2\x80\"",
                                        "\"\xe0\x9f\xbf\"",
                                        "\"\xe0\xa0\x80\"",
                                        "\"\xed\xa0\x80\"",
                                        "\"\xed\x9f\xbf\"",
                                        "\"\xf0\x8f\xbf\xbf\"",
                                        "\"\xf4\x8f\xbf\xbf\"",
                                        "\"\xf4\x90\x80\x80\"",
                                        "\"\xf5\x80\x80\x80\"",
                                        "\"\xff\"",
                                        "\"\xc3\"",
                                        "\"\xe2\x82\"",
                                        "\xc3\xa9",
                                        "0",
                                        "-0",
                                        "01",
                                        "-01",
                                        "-",
                                        "1.",
                                        "1.5",
                                        ".5",
                                        "+1",
                                        "1e",
                                        "1e+",
                                        "1e5",
                                        "1E-5",
                                        "1.5e+10",
                                        "1e400",
                                        "-1e400",
                                        "1e-400",
                                        "1.7976931348623157e308",
                                        "2e308",
                                        "9223372036854775807",
                                        "9223372036854775808",
                                        "-9223372036854775808",
                                        "-9223372036854775809",
                                        "123456789012345678901234567890",
                                        "0.000000000000000000000000000001",
                                        "{} x",
                                        "{}{}",
                                        "[1] ",
                                        " \t\r\n[1]\n",
                                        "[1,[2,[3,{\"a\":[]}]]]",
                                        "{\"a\":1,\"a\":2}",
                                        "{\"\\u0061\":1,\"a\":2}",
                                        "{\"a\":{\"a\":1},\"b\":{\"a\":2}}",
                                        "{\"\":1,\"\":2}",
                                        "[\"a\",]",
                                        "[,1]",
                                        "[1 2]",
                                        "{\"a\":1 \"b\":2}",
                                        "\"\"",
                                        "true",
                                        "null",
                                        "[1,2,3",
                                        "{\"metadata\":{\"name\":\"x\",\"name\":\"y\"}}",
                                        "{\"kind\":1e999}",
                                        "[-]",
                                        "[-a]",
                                        "[0x1]",
                                        "[Infinity]",
                                        "[NaN]",
                                        "{\"a\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}"};
    int accepted = 0;
    for (size_t t = 0; t < sizeof(texts) / sizeof(*texts); t++)
        for (size_t k = 0; k < njps; k++)
            failed += s_t_same(jps[k], texts[t], strlen(texts[t]), &accepted);
    CHECK(accepted > 100);
    /* a NUL byte inside and outside strings */
    failed += s_t_same(all, "\"a\0b\"", 5, NULL);
    failed += s_t_same(all, "[1]\0", 4, NULL);
    /* nesting at and beyond the limit */
    {
        buf_t deep;
        buf_init(&deep, 1u << 20);
        for (int i = 0; i < JPROJ_MAX_DEPTH; i++)
            buf_puts(&deep, i % 2 ? "[" : "{\"a\":");
        buf_puts(&deep, "1");
        for (int i = JPROJ_MAX_DEPTH - 1; i >= 0; i--)
            buf_puts(&deep, i % 2 ? "]" : "}");
        accepted = 0;
        failed += s_t_same(all, deep.data, deep.len, &accepted);
        failed += s_t_same(kr, deep.data, deep.len, &accepted);
        CHECK(accepted == 2);
        buf_reset(&deep);
        for (int i = 0; i <= JPROJ_MAX_DEPTH; i++)
            buf_puts(&deep, "[");
        for (int i = 0; i <= JPROJ_MAX_DEPTH; i++)
            buf_puts(&deep, "]");
        failed += s_t_same(all, deep.data, deep.len, NULL);
        CHECK(jproj_parse(k0, deep.data, deep.len, NULL, &res, NULL) == ERR_PARSE);
        buf_free(&deep);
    }
    /* big objects: duplicates found by sorting; long numbers and strings */
    {
        buf_t big;
        buf_init(&big, 1u << 20);
        buf_puts(&big, "{");
        for (int i = 0; i < 300; i++)
            buf_printf(&big, "%s\"key%d\":%d", i ? "," : "", i, i);
        buf_puts(&big, "}");
        accepted = 0;
        failed += s_t_same(all, big.data, big.len, &accepted);
        failed += s_t_same(k0, big.data, big.len, &accepted);
        CHECK(accepted == 2);
        big.len--;
        buf_puts(&big, ",\"key\\u0031\\u00370\":1}");
        CHECK(jproj_parse(k0, big.data, big.len, NULL, &res, NULL) == ERR_PARSE);
        failed += s_t_same(all, big.data, big.len, NULL);
        buf_reset(&big);
        buf_puts(&big, "[1");
        for (int i = 0; i < 400; i++)
            buf_puts(&big, "0");
        buf_puts(&big, ".5, \"");
        for (int i = 0; i < 300; i++)
            buf_puts(&big, "\\u00e9\\n");
        buf_puts(&big, "\"]");
        failed += s_t_same(all, big.data, big.len, NULL);
        failed += s_t_same(k0, big.data, big.len, NULL);
        buf_free(&big);
    }

    /* every upstream sample and CRD, as compact and as indented ASCII JSON */
    {
        const char *sh = selftest_shared_dir();
        char path[4096];
        int docs = 0, fails = 0;
        snprintf(path, sizeof path, "%s/kuberay", sh);
        s_t_walk(path, jps, njps, &docs, &fails);
        if (verbose)
            printf("  %d upstream documents compared, %d mismatches\n", docs, fails);
        CHECK(docs >= 80);
        failed += fails;
    }

    /* generated trees, and mutations of their texts (accept/reject must agree) */
    {
        int fails = 0, acc = 0, n = 0;
        for (int t = 0; t < 1500; t++) {
            json_t *v = s_t_gen(0);
            size_t flags = JSON_ENCODE_ANY | (t % 3 == 0   ? JSON_COMPACT
                                              : t % 3 == 1 ? JSON_INDENT(1) | JSON_ENSURE_ASCII
                                                           : 0);
            char *s = json_dumps(v, flags);
            json_decref(v);
            if (!s)
                continue;
            size_t len = strlen(s);
            for (size_t k = 0; k < njps; k++)
                fails += s_t_same(jps[k], s, len, &acc);
            static const char muts[] = "{}[],:\"\\0-e.u1 tn\x80\xc3\xff";
            char *m = malloc(len + 2);
            for (int j = 0; m && j < 8 && len > 0; j++) {
                memcpy(m, s, len + 1);
                size_t at = s_t_rand() % len, mlen = len;
                int op = (int)(s_t_rand() % 3);
                if (op == 0) {
                    m[at] = muts[s_t_rand() % (sizeof(muts) - 1)];
                } else if (op == 1) {
                    memmove(m + at, m + at + 1, len - at);
                    mlen--;
                } else {
                    memmove(m + at + 1, m + at, len - at + 1);
                    m[at] = muts[s_t_rand() % (sizeof(muts) - 1)];
                    mlen++;
                }
                fails += s_t_same(jps[t % njps], m, mlen, NULL);
                n++;
            }
            free(m);
            free(s);
        }
        if (verbose)
            printf("  generated: %d projections accepted, %d mutations, %d mismatches\n", acc, n,
                   fails);
        CHECK(acc > 5000);
        failed += fails;
    }

    /* spans: the items of a list, the object of a watch event */
    {
        jproj_t *lp =
            jproj_new((const char *const[]){"metadata", "items.metadata.name", NULL}, "items");
        jproj_t *ep = jproj_new((const char *const[]){"type", "object.metadata", NULL}, "object");
        CHECK(lp && ep);
        const char *list = "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"9\"},"
                           "\"items\": [ {\"metadata\":{\"name\":\"a\",\"uid\":\"1\"}} ,\n"
                           "{\"metadata\":{\"name\":\"b\"},\"spec\":{\"x\":[{}]}}, 7 ]}";
        if (lp && jproj_parse(lp, list, strlen(list), NULL, &res, NULL) == 0) {
            CHECK(res.span_found && res.n_spans == 3);
            CHECK(res.n_spans == 3 && res.spans[0].len == 35 &&
                  memcmp(list + res.spans[0].off, "{\"metadata\":{\"name\":\"a\",\"uid\":\"1\"}}",
                         35) == 0);
            CHECK(res.n_spans == 3 && memcmp(list + res.spans[2].off, "7", 1) == 0 &&
                  res.spans[2].len == 1);
            json_t *items = json_object_get(res.value, "items");
            CHECK(json_array_size(items) == 3 && json_is_null(json_array_get(items, 2)));
            CHECK(strcmp(jx_str(json_array_get(items, 1), "metadata.name", ""), "b") == 0);
            CHECK(jx_get(json_array_get(items, 0), "metadata.uid") == NULL);
            CHECK(strcmp(jx_str(res.value, "metadata.resourceVersion", ""), "9") == 0);
            jproj_result_free(&res);
        } else {
            CHECK(0);
        }
        const char *empty = "{\"items\":[],\"metadata\":{}}";
        CHECK(lp && jproj_parse(lp, empty, strlen(empty), NULL, &res, NULL) == 0 &&
              res.span_found && res.n_spans == 0);
        jproj_result_free(&res);
        CHECK(lp && jproj_parse(lp, "{\"x\":{\"items\":[1]}}", 19, NULL, &res, NULL) == 0 &&
              !res.span_found && res.n_spans == 0);
        jproj_result_free(&res);
        const char *ev = "{\"type\":\"MODIFIED\",\"x\":{\"object\":1},\"object\": {\"metadata\":"
                         "{\"name\":\"p\"},\"spec\":\"}\\\"\"} }";
        if (ep && jproj_parse(ep, ev, strlen(ev), NULL, &res, NULL) == 0) {
            const char *o = "{\"metadata\":{\"name\":\"p\"},\"spec\":\"}\\\"\"}";
            CHECK(res.n_spans == 1 && res.spans[0].len == strlen(o) &&
                  memcmp(ev + res.spans[0].off, o, strlen(o)) == 0);
            CHECK(strcmp(jx_str(res.value, "type", ""), "MODIFIED") == 0);
            CHECK(strcmp(jx_str(res.value, "object.metadata.name", ""), "p") == 0);
            CHECK(jx_get(res.value, "object.spec") == NULL);
            jproj_result_free(&res);
        } else {
            CHECK(0);
        }
        /* every sample document inside a list: each span parses back to the document */
        char *podtxt = s_t_pod();
        json_t *doc = podtxt ? json_loads(podtxt, 0, NULL) : NULL;
        buf_t l;
        buf_init(&l, 1u << 20);
        buf_puts(&l, "{\"kind\":\"List\",\"items\":[");
        for (int i = 0; i < 5; i++)
            buf_printf(&l, "%s%s", i ? ",\n " : "", podtxt ? podtxt : "{}");
        buf_puts(&l, "],\"metadata\":{\"continue\":\"c\"}}");
        if (lp && doc && jproj_parse(lp, l.data, l.len, NULL, &res, NULL) == 0) {
            CHECK(res.n_spans == 5);
            for (size_t i = 0; i < res.n_spans; i++) {
                json_t *back = json_loadb(l.data + res.spans[i].off, res.spans[i].len, 0, NULL);
                CHECK(back && json_equal(back, doc));
                json_decref(back);
            }
            jproj_result_free(&res);
        } else {
            CHECK(0);
        }
        buf_free(&l);
        json_decref(doc);

        /* speed on a pod-sized object: jproj keeping what the watcher reads vs json_loadb */
        if (podtxt) {
            size_t plen = strlen(podtxt);
            int iters = verbose ? 20000 : 2000;
            double best_j = 1e9, best_p = 1e9;
            for (int round = 0; round < 3; round++) {
                double t0 = s_t_now();
                for (int i = 0; i < iters; i++) {
                    json_t *j = json_loadb(podtxt, plen, JSON_REJECT_DUPLICATES, NULL);
                    json_decref(j);
                }
                double t1 = s_t_now();
                for (int i = 0; i < iters; i++) {
                    jproj_parse(w, podtxt, plen, NULL, &res, NULL);
                    jproj_result_free(&res);
                }
                double t2 = s_t_now();
                if (t1 - t0 < best_j)
                    best_j = t1 - t0;
                if (t2 - t1 < best_p)
                    best_p = t2 - t1;
            }
            if (verbose)
                printf("  pod of %zu bytes: json_loadb %.2f us, jproj (watcher paths) %.2f us, "
                       "%.1fx faster\n",
                       plen, best_j * 1e6 / iters, best_p * 1e6 / iters, best_j / best_p);
            CHECK(best_p < best_j);
        }
        free(podtxt);
        jproj_destroy(&lp);
        jproj_destroy(&ep);
    }

out:
    jproj_destroy(&all);
    jproj_destroy(&w);
    jproj_destroy(&k2);
    jproj_destroy(&k3);
    jproj_destroy(&k0);
    jproj_destroy(&kr);
    buf_free(&err);
    return SELFTEST_RESULT("jproj", verbose);
}

#endif /* RF_SELFTEST */
