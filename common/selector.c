/*
 * selector: label and field selectors. The label parser is a small lexer plus a recursive-descent
 * parser with the same token set, lookahead rules and error texts as apimachinery's labels
 * package, so a bad selector fails here exactly where and how it fails in kube-apiserver.
 */
#include "selector.h"
#include "err.h"
#include "quote.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    OP_EQ, /* = */
    OP_DEQ, /* == */
    OP_NEQ, /* != */
    OP_IN, /* in (...) */
    OP_NOTIN, /* notin (...) */
    OP_EXISTS, /* key */
    OP_NOTEXIST, /* !key */
    OP_GT, /* > integer */
    OP_LT /* < integer */
} op_t;

typedef struct {
    char *key; /* label key or field path */
    op_t op; /* the operator */
    char **values; /* sorted, de-duplicated values */
    size_t nvalues; /* number of values */
} req_t;

struct selector {
    req_t *reqs; /* requirements, sorted by key */
    size_t nreqs; /* number of requirements */
    bool nothing; /* matches nothing (a nil LabelSelector) */
    bool is_field; /* a field selector: keys are dotted paths into the object */
};

/* ---- validation messages (k8s.io/apimachinery/pkg/util/validation) ---- */

#define MSG_QNAME_FMT                                                                              \
    "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "         \
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "         \
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define MSG_DNS1123_SUB                                                                            \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "   \
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "  \
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define MSG_LABEL_VALUE                                                                            \
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "    \
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "             \
    "'my_value',  or '12345', regex used for validation is "                                       \
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"

static bool s_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] over s[0..n), n > 0. */
static bool s_qname_ok(const char *s, size_t n)
{
    if (n == 0 || !s_alnum(s[0]) || !s_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!s_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static bool s_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* DNS-1123 subdomain: dot-separated labels of [a-z0-9]([-a-z0-9]*[a-z0-9])?. */
static bool s_dns1123_sub_ok(const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            size_t len = i - start;
            if (len == 0 || !s_lower_alnum(s[start]) || !s_lower_alnum(s[i - 1]))
                return false;
            for (size_t j = start; j < i; j++)
                if (!s_lower_alnum(s[j]) && s[j] != '-')
                    return false;
            start = i + 1;
        }
    }
    return true;
}

/* Appends "; " between messages when `*first` is false. */
static void s_msg(buf_t *err, bool *first, const char *msg)
{
    if (err && !*first)
        buf_puts(err, "; ");
    if (err)
        buf_puts(err, msg);
    *first = false;
}

int selector_validate_label_key(const char *key, buf_t *err)
{
    bool first = true;
    const char *slash = strchr(key, '/');
    const char *name = key;
    if (slash) {
        if (strchr(slash + 1, '/')) {
            s_msg(err, &first,
                  "a qualified name must " MSG_QNAME_FMT " with an optional DNS subdomain prefix "
                  "and '/' (e.g. 'example.com/MyName')");
            return ERR_INVAL;
        }
        size_t plen = (size_t)(slash - key);
        if (plen == 0) {
            s_msg(err, &first, "prefix part must be non-empty");
        } else {
            if (plen > SELECTOR_PREFIX_MAX)
                s_msg(err, &first, "prefix part must be no more than 253 characters");
            if (!s_dns1123_sub_ok(key, plen))
                s_msg(err, &first, "prefix part " MSG_DNS1123_SUB);
        }
        name = slash + 1;
    }
    size_t nlen = strlen(name);
    if (nlen == 0) {
        s_msg(err, &first, "name part must be non-empty");
    } else {
        if (nlen > SELECTOR_LABEL_MAX)
            s_msg(err, &first, "name part must be no more than 63 characters");
        if (!s_qname_ok(name, nlen))
            s_msg(err, &first, "name part must " MSG_QNAME_FMT);
    }
    return first ? 0 : ERR_INVAL;
}

int selector_validate_label_value(const char *value, buf_t *err)
{
    bool first = true;
    size_t n = strlen(value);
    if (n > SELECTOR_LABEL_MAX)
        s_msg(err, &first, "must be no more than 63 characters");
    if (n > 0 && !s_qname_ok(value, n))
        s_msg(err, &first, MSG_LABEL_VALUE);
    return first ? 0 : ERR_INVAL;
}

/* ---- requirement lists ---- */

static void s_req_free(req_t *r)
{
    free(r->key);
    for (size_t i = 0; i < r->nvalues; i++)
        free(r->values[i]);
    free(r->values);
    memset(r, 0, sizeof(*r));
}

void selector_destroy(selector_t **s)
{
    if (!s || !*s)
        return;
    for (size_t i = 0; i < (*s)->nreqs; i++)
        s_req_free(&(*s)->reqs[i]);
    free((*s)->reqs);
    free(*s);
    *s = NULL;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int s_cmp_req(const void *a, const void *b)
{
    return strcmp(((const req_t *)a)->key, ((const req_t *)b)->key);
}

/* Adds a value to `r`, keeping a set (duplicates dropped; sorted later). */
static int s_req_add_value(req_t *r, const char *v, size_t n)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strlen(r->values[i]) == n && memcmp(r->values[i], v, n) == 0)
            return 0;
    if (r->nvalues >= SELECTOR_MAX_TERMS)
        return ERR_TOOBIG;
    char **nv = realloc(r->values, (r->nvalues + 1) * sizeof(*nv));
    if (!nv)
        return ERR_NOMEM;
    r->values = nv;
    r->values[r->nvalues] = strndup(v, n);
    if (!r->values[r->nvalues])
        return ERR_NOMEM;
    r->nvalues++;
    return 0;
}

/* Moves `r` into `s` (r is zeroed). */
static int s_add_req(selector_t *s, req_t *r)
{
    if (s->nreqs >= SELECTOR_MAX_TERMS)
        return ERR_TOOBIG;
    req_t *nr = realloc(s->reqs, (s->nreqs + 1) * sizeof(*nr));
    if (!nr)
        return ERR_NOMEM;
    s->reqs = nr;
    if (r->nvalues > 1)
        qsort(r->values, r->nvalues, sizeof(char *), s_cmp_str);
    s->reqs[s->nreqs++] = *r;
    memset(r, 0, sizeof(*r));
    return 0;
}

/* Appends `values` as Go's %#v of a []string. */
static void s_go_slice(buf_t *b, const req_t *r, bool nil_when_empty)
{
    if (r->nvalues == 0) {
        buf_puts(b, nil_when_empty ? "[]string(nil)" : "[]string{}");
        return;
    }
    buf_puts(b, "[]string{");
    for (size_t i = 0; i < r->nvalues; i++) {
        if (i)
            buf_puts(b, ", ");
        quote_go(b, r->values[i]);
    }
    buf_puts(b, "}");
}

/* NewRequirement's checks on a requirement whose key is already valid: appends each error
 * (field-path form) to `errs` separated by ", " and counts them in *nerr. */
static void s_check_req(const req_t *r, bool nil_values, buf_t *errs, int *nerr)
{
    buf_t m;
    buf_init(&m, 4096);
    const char *what = NULL;
    switch (r->op) {
    case OP_IN:
    case OP_NOTIN:
        if (r->nvalues == 0)
            what = "for 'in', 'notin' operators, values set can't be empty";
        break;
    case OP_EQ:
    case OP_DEQ:
    case OP_NEQ:
        if (r->nvalues != 1)
            what = "exact-match compatibility requires one single value";
        break;
    case OP_EXISTS:
    case OP_NOTEXIST:
        if (r->nvalues != 0)
            what = "values set must be empty for exists and does not exist";
        break;
    case OP_GT:
    case OP_LT:
        if (r->nvalues != 1)
            what = "for 'Gt', 'Lt' operators, exactly one value is required";
        break;
    }
    if (what && errs) {
        if ((*nerr)++)
            buf_puts(errs, ", ");
        buf_puts(errs, "values: Invalid value: ");
        s_go_slice(errs, r, nil_values);
        buf_printf(errs, ": %s", what);
    }
    for (size_t i = 0; i < r->nvalues; i++) {
        if (r->op == OP_GT || r->op == OP_LT) {
            char *end = NULL;
            errno = 0;
            (void)strtoll(r->values[i], &end, 10);
            if (errno || !r->values[i][0] || *end) {
                if (errs) {
                    if ((*nerr)++)
                        buf_puts(errs, ", ");
                    buf_printf(errs, "values[%zu]: Invalid value: ", i);
                    quote_go(errs, r->values[i]);
                    buf_puts(errs, ": for 'Gt', 'Lt' operators, the value must be an integer");
                } else {
                    (*nerr)++;
                }
            }
        }
        buf_reset(&m);
        if (selector_validate_label_value(r->values[i], &m) != 0) {
            if (errs) {
                if ((*nerr)++)
                    buf_puts(errs, ", ");
                buf_printf(errs, "values[%zu][%s]: Invalid value: ", i, r->key);
                quote_go(errs, r->values[i]);
                buf_printf(errs, ": %s", buf_str(&m));
            } else {
                (*nerr)++;
            }
        }
    }
    if (what && !errs)
        (*nerr)++;
    buf_free(&m);
}

/* Validates `r` as NewRequirement does; on failure writes "prefix" + the aggregate to `err`. */
static int s_validate_req(const req_t *r, bool nil_values, const char *prefix, buf_t *err)
{
    buf_t errs;
    buf_init(&errs, 1 << 16);
    int nerr = 0;
    buf_t km;
    buf_init(&km, 4096);
    if (selector_validate_label_key(r->key, &km) != 0) {
        buf_puts(&errs, "key: Invalid value: ");
        quote_go(&errs, r->key);
        buf_printf(&errs, ": %s", buf_str(&km));
        nerr++;
    }
    buf_free(&km);
    s_check_req(r, nil_values, &errs, &nerr);
    if (nerr && err)
        buf_printf(err, "%s%s%s%s", prefix, nerr > 1 ? "[" : "", buf_str(&errs),
                   nerr > 1 ? "]" : "");
    buf_free(&errs);
    return nerr ? ERR_INVAL : 0;
}

/* ---- the label selector lexer and parser ---- */

typedef enum {
    T_ERROR,
    T_EOS,
    T_CLOSE,
    T_COMMA,
    T_NOT,
    T_DEQ,
    T_EQ,
    T_GT,
    T_ID,
    T_IN,
    T_LT,
    T_NEQ,
    T_NOTIN,
    T_OPEN
} tok_t;

typedef struct {
    tok_t tok; /* token kind */
    char *lit; /* literal text (owned) */
} item_t;

typedef struct {
    item_t *items; /* all tokens, the last one T_EOS */
    size_t n; /* number of tokens */
    size_t pos; /* next token to consume */
} parser_t;

static bool s_special(char c)
{
    return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

static bool s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static tok_t s_symbol_tok(const char *s, size_t n)
{
    static const struct {
        const char *text;
        tok_t tok;
    } map[] = {{")", T_CLOSE}, {",", T_COMMA},     {"!", T_NOT}, {"==", T_DEQ},
               {"=", T_EQ},    {">", T_GT},        {"in", T_IN}, {"<", T_LT},
               {"!=", T_NEQ},  {"notin", T_NOTIN}, {"(", T_OPEN}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].text) == n && memcmp(map[i].text, s, n) == 0)
            return map[i].tok;
    return T_ID;
}

static void s_parser_free(parser_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->items[i].lit);
    free(p->items);
    p->items = NULL;
    p->n = 0;
}

static int s_push(parser_t *p, tok_t t, const char *lit, size_t n)
{
    if (p->n >= 4 * SELECTOR_MAX_TERMS + 8)
        return ERR_TOOBIG;
    item_t *ni = realloc(p->items, (p->n + 1) * sizeof(*ni));
    if (!ni)
        return ERR_NOMEM;
    p->items = ni;
    p->items[p->n].tok = t;
    p->items[p->n].lit = strndup(lit, n);
    if (!p->items[p->n].lit)
        return ERR_NOMEM;
    p->n++;
    return 0;
}

static int s_scan(parser_t *p, const char *s)
{
    size_t i = 0;
    size_t len = strlen(s);
    for (;;) {
        while (i < len && s_space(s[i]))
            i++;
        if (i >= len)
            return s_push(p, T_EOS, "", 0);
        int rc;
        if (s_special(s[i])) {
            // Longest run of special characters that still forms a token.
            size_t best = 0;
            tok_t bt = T_ERROR;
            for (size_t j = i; j < len && s_special(s[j]); j++) {
                tok_t t = s_symbol_tok(s + i, j - i + 1);
                if (t != T_ID) {
                    best = j - i + 1;
                    bt = t;
                } else if (best) {
                    break;
                }
            }
            rc = s_push(p, bt, s + i, best);
            i += best;
        } else {
            size_t j = i;
            while (j < len && !s_special(s[j]) && !s_space(s[j]))
                j++;
            rc = s_push(p, s_symbol_tok(s + i, j - i), s + i, j - i);
            i = j;
        }
        if (rc)
            return rc;
    }
}

/* In value context `in` and `notin` are plain identifiers. */
static tok_t s_ctx(tok_t t, bool values)
{
    if (values && (t == T_IN || t == T_NOTIN))
        return T_ID;
    return t;
}

static tok_t s_look(parser_t *p, bool values, const char **lit)
{
    if (lit)
        *lit = p->items[p->pos].lit;
    return s_ctx(p->items[p->pos].tok, values);
}

static tok_t s_consume(parser_t *p, bool values, const char **lit)
{
    size_t at = p->pos;
    if (p->pos + 1 < p->n)
        p->pos++;
    if (lit)
        *lit = p->items[at].lit;
    return s_ctx(p->items[at].tok, values);
}

/* Parses one requirement into *r; on a syntax error appends the reason to `why`. */
static int s_parse_req(parser_t *p, req_t *r, buf_t *why)
{
    const char *lit = NULL;
    tok_t t = s_consume(p, true, &lit);
    bool not = false;
    if (t == T_NOT) {
        not = true;
        t = s_consume(p, true, &lit);
    }
    if (t != T_ID) {
        buf_printf(why, "found '%s', expected: identifier", lit);
        return ERR_INVAL;
    }
    buf_t km;
    buf_init(&km, 4096);
    if (selector_validate_label_key(lit, &km) != 0) {
        buf_puts(why, "<nil>: Invalid value: ");
        quote_go(why, lit);
        buf_printf(why, ": %s", buf_str(&km));
        buf_free(&km);
        return ERR_INVAL;
    }
    buf_free(&km);
    r->key = strdup(lit);
    if (!r->key)
        return ERR_NOMEM;
    tok_t la = s_look(p, true, NULL);
    if (not || la == T_EOS || la == T_COMMA) {
        r->op = not ? OP_NOTEXIST : OP_EXISTS;
        return 0;
    }
    t = s_consume(p, false, &lit);
    switch (t) {
    case T_IN:
        r->op = OP_IN;
        break;
    case T_EQ:
        r->op = OP_EQ;
        break;
    case T_DEQ:
        r->op = OP_DEQ;
        break;
    case T_GT:
        r->op = OP_GT;
        break;
    case T_LT:
        r->op = OP_LT;
        break;
    case T_NOTIN:
        r->op = OP_NOTIN;
        break;
    case T_NEQ:
        r->op = OP_NEQ;
        break;
    default:
        buf_printf(why, "found '%s', expected: '=', '!=', '==', 'in', notin'", lit);
        return ERR_INVAL;
    }
    int rc = 0;
    if (r->op == OP_IN || r->op == OP_NOTIN) {
        t = s_consume(p, true, &lit);
        if (t != T_OPEN) {
            buf_printf(why, "found '%s' expected: '('", lit);
            return ERR_INVAL;
        }
        const char *first = NULL;
        t = s_look(p, true, &first);
        if (t == T_CLOSE) {
            s_consume(p, true, NULL);
            return s_req_add_value(r, "", 0);
        }
        if (t != T_ID && t != T_COMMA) {
            buf_printf(why, "found '%s', expected: ',', ')' or identifier", first);
            return ERR_INVAL;
        }
        for (;;) {
            t = s_consume(p, true, &lit);
            if (t == T_ID) {
                if ((rc = s_req_add_value(r, lit, strlen(lit))) != 0)
                    return rc;
                const char *l2 = NULL;
                tok_t t2 = s_look(p, true, &l2);
                if (t2 == T_COMMA)
                    continue;
                if (t2 == T_CLOSE)
                    break;
                buf_printf(why, "found '%s', expected: ',' or ')'", l2);
                return ERR_INVAL;
            } else if (t == T_COMMA) {
                if (r->nvalues == 0 && (rc = s_req_add_value(r, "", 0)) != 0)
                    return rc;
                tok_t t2 = s_look(p, true, NULL);
                if (t2 == T_CLOSE)
                    break;
                if (t2 == T_COMMA) {
                    s_consume(p, true, NULL);
                    if ((rc = s_req_add_value(r, "", 0)) != 0)
                        return rc;
                }
            } else {
                buf_printf(why, "found '%s', expected: ',', or identifier", lit);
                return ERR_INVAL;
            }
        }
        // The closing parenthesis; the reference reports the first value's literal here.
        if (s_consume(p, true, NULL) != T_CLOSE) {
            buf_printf(why, "found '%s', expected: ')'", first);
            return ERR_INVAL;
        }
        return 0;
    }
    t = s_look(p, true, NULL);
    if (t == T_EOS || t == T_COMMA)
        return s_req_add_value(r, "", 0);
    t = s_consume(p, true, &lit);
    if (t != T_ID) {
        buf_printf(why, "found '%s', expected: identifier", lit);
        return ERR_INVAL;
    }
    return s_req_add_value(r, lit, strlen(lit));
}

static selector_t *s_new(bool is_field)
{
    selector_t *s = calloc(1, sizeof(*s));
    if (s)
        s->is_field = is_field;
    return s;
}

int selector_parse_labels(const char *text, selector_t **out, buf_t *err)
{
    *out = NULL;
    if (text && strlen(text) > SELECTOR_MAX_TEXT)
        return ERR_TOOBIG;
    size_t err_start = err ? err->len : 0;
    selector_t *s = s_new(false);
    if (!s)
        return ERR_NOMEM;
    parser_t p = {0};
    req_t r = {0};
    buf_t why;
    buf_init(&why, 1 << 16);
    int rc = s_scan(&p, text ? text : "");
    if (rc)
        goto done;
    for (;;) {
        const char *lit = NULL;
        tok_t t = s_look(&p, true, &lit);
        if (t == T_EOS)
            break;
        if (t != T_ID && t != T_NOT) {
            buf_printf(&why, "found '%s', expected: !, identifier, or 'end of string'", lit);
            rc = ERR_INVAL;
            goto done;
        }
        rc = s_parse_req(&p, &r, &why);
        if (rc == ERR_INVAL) {
            if (err)
                buf_printf(err, "unable to parse requirement: %s", buf_str(&why));
            goto done;
        }
        if (rc)
            goto done;
        if (r.nvalues > 1)
            qsort(r.values, r.nvalues, sizeof(char *), s_cmp_str);
        if ((rc = s_validate_req(&r, false, "unable to parse requirement: ", err)) != 0)
            goto done;
        if ((rc = s_add_req(s, &r)) != 0)
            goto done;
        t = s_consume(&p, true, &lit);
        if (t == T_EOS)
            break;
        if (t == T_COMMA) {
            const char *l2 = NULL;
            tok_t t2 = s_look(&p, true, &l2);
            if (t2 != T_ID && t2 != T_NOT) {
                buf_printf(&why, "found '%s', expected: identifier after ','", l2);
                rc = ERR_INVAL;
                goto done;
            }
            continue;
        }
        buf_printf(&why, "found '%s', expected: ',' or 'end of string'", lit);
        rc = ERR_INVAL;
        goto done;
    }
    if (s->nreqs > 1)
        qsort(s->reqs, s->nreqs, sizeof(req_t), s_cmp_req);
done:
    if (rc == ERR_INVAL && err && err->len == err_start)
        buf_puts(err, buf_str(&why));
    buf_free(&why);
    s_req_free(&r);
    s_parser_free(&p);
    if (rc)
        selector_destroy(&s);
    *out = s;
    return rc;
}

/* ---- field selectors ---- */

/* Unescapes a field selector value (\\ \, \=); ERR_INVAL on a bad escape or a bare , or =. */
static int s_unescape(const char *v, size_t n, char **out, buf_t *err)
{
    char *o = malloc(n + 1);
    if (!o)
        return ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\\') {
            if (i + 1 >= n || (v[i + 1] != '\\' && v[i + 1] != ',' && v[i + 1] != '=')) {
                if (err)
                    buf_printf(err, "invalid field selector: invalid escape sequence: \\%.1s",
                               i + 1 < n ? v + i + 1 : "");
                free(o);
                return ERR_INVAL;
            }
            o[k++] = v[++i];
        } else if (c == ',' || c == '=') {
            if (err)
                buf_printf(err, "invalid field selector: unescaped = or , in value: %.*s", (int)n,
                           v);
            free(o);
            return ERR_INVAL;
        } else {
            o[k++] = c;
        }
    }
    o[k] = '\0';
    *out = o;
    return 0;
}

int selector_parse_fields(const char *text, const char *const *fields, size_t nfields,
                          selector_t **out, buf_t *err)
{
    *out = NULL;
    if (text && strlen(text) > SELECTOR_MAX_TEXT)
        return ERR_TOOBIG;
    selector_t *s = s_new(true);
    if (!s)
        return ERR_NOMEM;
    const char *t = text ? text : "";
    size_t len = strlen(t);
    req_t r = {0};
    int rc = 0;
    size_t start = 0;
    bool esc = false;
    for (size_t i = 0; len > 0 && i <= len; i++) {
        if (i < len && esc) {
            esc = false;
            continue;
        }
        if (i < len && t[i] == '\\') {
            esc = true;
            continue;
        }
        if (i < len && t[i] != ',')
            continue;
        const char *term = t + start;
        size_t tl = i - start;
        start = i + 1;
        if (tl == 0)
            continue;
        size_t at = 0;
        size_t oplen = 0;
        op_t op = OP_EQ;
        for (at = 0; at < tl; at++) {
            if (at + 1 < tl && term[at] == '!' && term[at + 1] == '=') {
                op = OP_NEQ;
                oplen = 2;
            } else if (at + 1 < tl && term[at] == '=' && term[at + 1] == '=') {
                op = OP_DEQ;
                oplen = 2;
            } else if (term[at] == '=') {
                op = OP_EQ;
                oplen = 1;
            }
            if (oplen)
                break;
        }
        if (!oplen) {
            if (err)
                buf_printf(err, "invalid selector: '%s'; can't understand '%.*s'", t, (int)tl,
                           term);
            rc = ERR_INVAL;
            goto done;
        }
        r.key = strndup(term, at);
        if (!r.key) {
            rc = ERR_NOMEM;
            goto done;
        }
        r.op = op;
        bool known = false;
        for (size_t f = 0; f < nfields && !known; f++)
            known = fields[f] && strcmp(fields[f], r.key) == 0;
        if (!known) {
            if (err)
                buf_printf(err, "field label not supported: %s", r.key);
            rc = ERR_INVAL;
            goto done;
        }
        char *val = NULL;
        if ((rc = s_unescape(term + at + oplen, tl - at - oplen, &val, err)) != 0)
            goto done;
        r.values = malloc(sizeof(char *));
        if (!r.values) {
            free(val);
            rc = ERR_NOMEM;
            goto done;
        }
        r.values[0] = val;
        r.nvalues = 1;
        if ((rc = s_add_req(s, &r)) != 0)
            goto done;
    }
    if (s->nreqs > 1)
        qsort(s->reqs, s->nreqs, sizeof(req_t), s_cmp_req);
done:
    s_req_free(&r);
    if (rc)
        selector_destroy(&s);
    *out = s;
    return rc;
}

/* ---- building from objects ---- */

int selector_labels_from_map(const json_t *match_labels, selector_t **out, buf_t *err)
{
    *out = NULL;
    selector_t *s = s_new(false);
    if (!s)
        return ERR_NOMEM;
    int rc = 0;
    req_t r = {0};
    if (match_labels && !json_is_null(match_labels) && !json_is_object(match_labels)) {
        if (err)
            buf_puts(err, "matchLabels must be an object");
        rc = ERR_INVAL;
        goto done;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)match_labels, k, v)
    {
        if (!json_is_string(v)) {
            if (err)
                buf_printf(err, "label %s: value must be a string", k);
            rc = ERR_INVAL;
            goto done;
        }
        r.key = strdup(k);
        if (!r.key) {
            rc = ERR_NOMEM;
            goto done;
        }
        r.op = OP_EQ;
        if ((rc = s_req_add_value(&r, json_string_value(v), json_string_length(v))) != 0)
            goto done;
        if ((rc = s_validate_req(&r, false, "", err)) != 0)
            goto done;
        if ((rc = s_add_req(s, &r)) != 0)
            goto done;
    }
    if (s->nreqs > 1)
        qsort(s->reqs, s->nreqs, sizeof(req_t), s_cmp_req);
done:
    s_req_free(&r);
    if (rc)
        selector_destroy(&s);
    *out = s;
    return rc;
}

int selector_from_label_selector(const json_t *ls, selector_t **out, buf_t *err)
{
    *out = NULL;
    if (!ls || json_is_null(ls)) {
        selector_t *s = s_new(false);
        if (!s)
            return ERR_NOMEM;
        s->nothing = true;
        *out = s;
        return 0;
    }
    if (!json_is_object(ls)) {
        if (err)
            buf_puts(err, "a label selector must be an object");
        return ERR_INVAL;
    }
    selector_t *s = NULL;
    int rc = selector_labels_from_map(json_object_get(ls, "matchLabels"), &s, err);
    if (rc)
        return rc;
    req_t r = {0};
    json_t *exprs = json_object_get(ls, "matchExpressions");
    size_t i;
    json_t *e;
    if (exprs && !json_is_null(exprs) && !json_is_array(exprs)) {
        if (err)
            buf_puts(err, "matchExpressions must be an array");
        rc = ERR_INVAL;
        goto done;
    }
    json_array_foreach(exprs, i, e)
    {
        const char *key = json_string_value(json_object_get(e, "key"));
        const char *op = json_string_value(json_object_get(e, "operator"));
        if (!op)
            op = "";
        if (strcmp(op, "In") == 0) {
            r.op = OP_IN;
        } else if (strcmp(op, "NotIn") == 0) {
            r.op = OP_NOTIN;
        } else if (strcmp(op, "Exists") == 0) {
            r.op = OP_EXISTS;
        } else if (strcmp(op, "DoesNotExist") == 0) {
            r.op = OP_NOTEXIST;
        } else {
            if (err) {
                quote_go(err, op);
                buf_puts(err, " is not a valid label selector operator");
            }
            rc = ERR_INVAL;
            goto done;
        }
        r.key = strdup(key ? key : "");
        if (!r.key) {
            rc = ERR_NOMEM;
            goto done;
        }
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(e, "values"), j, v)
        {
            const char *sv = json_string_value(v);
            if ((rc = s_req_add_value(&r, sv ? sv : "", sv ? strlen(sv) : 0)) != 0)
                goto done;
        }
        if (r.nvalues > 1)
            qsort(r.values, r.nvalues, sizeof(char *), s_cmp_str);
        if ((rc = s_validate_req(&r, true, "", err)) != 0)
            goto done;
        if ((rc = s_add_req(s, &r)) != 0)
            goto done;
    }
    if (s->nreqs > 1)
        qsort(s->reqs, s->nreqs, sizeof(req_t), s_cmp_req);
done:
    s_req_free(&r);
    if (rc)
        selector_destroy(&s);
    *out = s;
    return rc;
}

/* ---- matching ---- */

static bool s_has_value(const req_t *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

/* Matches one requirement given the value found (NULL when the key is absent). */
static bool s_req_match(const req_t *r, const char *v)
{
    switch (r->op) {
    case OP_EQ:
    case OP_DEQ:
    case OP_IN:
        return v && s_has_value(r, v);
    case OP_NEQ:
    case OP_NOTIN:
        return !v || !s_has_value(r, v);
    case OP_EXISTS:
        return v != NULL;
    case OP_NOTEXIST:
        return v == NULL;
    case OP_GT:
    case OP_LT: {
        if (!v || r->nvalues != 1 || !*v)
            return false;
        char *end = NULL;
        errno = 0;
        long long have = strtoll(v, &end, 10);
        if (errno || *end)
            return false;
        long long want = strtoll(r->values[0], &end, 10);
        return r->op == OP_GT ? have > want : have < want;
    }
    }
    return false;
}

bool selector_matches_labels(const selector_t *s, const json_t *labels)
{
    if (!s || s->nothing)
        return false;
    for (size_t i = 0; i < s->nreqs; i++) {
        const char *v = json_string_value(json_object_get(labels, s->reqs[i].key));
        if (!s_req_match(&s->reqs[i], v))
            return false;
    }
    return true;
}

int selector_field_value(const json_t *obj, const char *path, buf_t *out)
{
    const json_t *cur = obj;
    const char *p = path;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        cur = json_object_getn(cur, p, n);
        p += n;
        if (*p == '.')
            p++;
    }
    if (!cur)
        return 0;
    switch (json_typeof(cur)) {
    case JSON_STRING:
        return buf_append(out, json_string_value(cur), json_string_length(cur));
    case JSON_INTEGER:
        return buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(cur));
    case JSON_REAL:
        return buf_printf(out, "%g", json_real_value(cur));
    case JSON_TRUE:
        return buf_puts(out, "true");
    case JSON_FALSE:
        return buf_puts(out, "false");
    default:
        return 0;
    }
}

bool selector_matches_fields(const selector_t *s, const json_t *obj)
{
    if (!s || s->nothing)
        return false;
    buf_t v;
    buf_init(&v, 1 << 20);
    bool ok = true;
    for (size_t i = 0; i < s->nreqs && ok; i++) {
        buf_reset(&v);
        if (selector_field_value(obj, s->reqs[i].key, &v) != 0) {
            ok = false;
            break;
        }
        ok = s_req_match(&s->reqs[i], buf_str(&v));
    }
    buf_free(&v);
    return ok;
}

bool selector_is_empty(const selector_t *s)
{
    return s && !s->nothing && s->nreqs == 0;
}

const char *selector_exact_value(const selector_t *s, const char *key)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->nreqs; i++) {
        const req_t *r = &s->reqs[i];
        if (strcmp(r->key, key) != 0)
            continue;
        if ((r->op == OP_EQ || r->op == OP_DEQ || r->op == OP_IN) && r->nvalues == 1)
            return r->values[0];
        return NULL;
    }
    return NULL;
}

int selector_to_string(const selector_t *s, buf_t *out)
{
    if (!s || s->nothing)
        return ERR_INVAL;
    static const char *const ops[] = {"=", "==", "!=", " in ", " notin ", "", "", ">", "<"};
    int rc = 0;
    for (size_t i = 0; i < s->nreqs && !rc; i++) {
        const req_t *r = &s->reqs[i];
        if (i)
            rc = buf_puts(out, ",");
        if (!rc && r->op == OP_NOTEXIST)
            rc = buf_puts(out, "!");
        if (!rc)
            rc = buf_printf(out, "%s%s", r->key, ops[r->op]);
        if (rc || r->op == OP_EXISTS || r->op == OP_NOTEXIST)
            continue;
        bool set = r->op == OP_IN || r->op == OP_NOTIN;
        if (set)
            rc = buf_puts(out, "(");
        for (size_t j = 0; j < r->nvalues && !rc; j++) {
            if (j)
                rc = buf_puts(out, ",");
            if (!s->is_field) {
                rc = rc ? rc : buf_puts(out, r->values[j]);
                continue;
            }
            // fields.EscapeValue: a backslash before \, , and = (s_unescape's inverse).
            for (const char *c = r->values[j]; *c && !rc; c++) {
                if (*c == '\\' || *c == ',' || *c == '=')
                    rc = buf_append(out, "\\", 1);
                rc = rc ? rc : buf_append(out, c, 1);
            }
        }
        if (!rc && set)
            rc = buf_puts(out, ")");
    }
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

static bool s_lmatch(const char *sel, const char *labels_json)
{
    selector_t *s = NULL;
    if (selector_parse_labels(sel, &s, NULL) != 0)
        return false;
    json_t *l = json_loads(labels_json, 0, NULL);
    bool m = selector_matches_labels(s, l);
    json_decref(l);
    selector_destroy(&s);
    return m;
}

/* Parses `sel` expecting failure; true when the message equals `want`. */
static bool s_lerr(const char *sel, const char *want)
{
    selector_t *s = NULL;
    buf_t e;
    buf_init(&e, 1 << 16);
    int rc = selector_parse_labels(sel, &s, &e);
    bool ok = rc == ERR_INVAL && s == NULL && strcmp(buf_str(&e), want) == 0;
    if (!ok)
        printf("selector %s: rc %d msg [%s]\n", sel, rc, buf_str(&e));
    buf_free(&e);
    return ok;
}

static bool s_roundtrip(const char *sel, const char *want)
{
    selector_t *s = NULL;
    buf_t o;
    buf_init(&o, 4096);
    bool ok = selector_parse_labels(sel, &s, NULL) == 0 && selector_to_string(s, &o) == 0 &&
              strcmp(buf_str(&o), want) == 0;
    if (!ok)
        printf("selector %s -> [%s]\n", sel, buf_str(&o));
    buf_free(&o);
    selector_destroy(&s);
    return ok;
}

int selector_test(bool verbose)
{
    int failed = 0;
    const char *L = "{\"app\":\"ray\",\"tier\":\"head\",\"n\":\"5\",\"in\":\"notin\"}";

    // Equality, sets, existence, whitespace, AND.
    CHECK(s_lmatch("", L));
    CHECK(s_lmatch("app=ray", L));
    CHECK(s_lmatch("app==ray", L));
    CHECK(!s_lmatch("app!=ray", L));
    CHECK(s_lmatch("app!=x", L));
    CHECK(s_lmatch("missing!=x", L));
    CHECK(s_lmatch("  app = ray ,  tier in ( head , worker ) ", L));
    CHECK(!s_lmatch("app=ray,tier notin (head)", L));
    CHECK(s_lmatch("tier notin (worker)", L));
    CHECK(s_lmatch("missing notin (worker)", L));
    CHECK(!s_lmatch("missing in (worker)", L));
    CHECK(s_lmatch("app", L));
    CHECK(!s_lmatch("!app", L));
    CHECK(s_lmatch("!missing", L));
    CHECK(s_lmatch("app,!missing,tier", L));
    CHECK(s_lmatch("n>4,n<6", L));
    CHECK(!s_lmatch("n>5", L));
    CHECK(s_lmatch("in=notin", L));
    CHECK(s_lmatch("in in (notin)", L));
    CHECK(s_lmatch("x in ()", "{\"x\":\"\"}"));
    CHECK(s_lmatch("x=", "{\"x\":\"\"}"));
    CHECK(!s_lmatch("app=ray", "{}"));
    CHECK(!s_lmatch("app=ray", "null"));
    CHECK(s_lmatch("example.com/app=ray", "{\"example.com/app\":\"ray\"}"));
    CHECK(s_roundtrip("tier in (worker,head),app=ray,!gone,has",
                      "app=ray,!gone,has,tier in (head,worker)"));
    CHECK(s_roundtrip("a==b,c!=d,e notin (f),n>3", "a==b,c!=d,e notin (f),n>3"));

    // Errors, worded as kube-apiserver words them.
    CHECK(s_lerr("app:monolith",
                 "unable to parse requirement: <nil>: Invalid value: \"app:monolith\": name part "
                 "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                 "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
                 "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
    CHECK(s_lerr("a/b/c ?=? def",
                 "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name "
                 "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                 "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
                 "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an "
                 "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
    CHECK(s_lerr("app.kubernetes_io/name=x",
                 "unable to parse requirement: <nil>: Invalid value: \"app.kubernetes_io/name\": "
                 "prefix part " MSG_DNS1123_SUB));
    CHECK(s_lerr("app=demo-{nginx}",
                 "unable to parse requirement: values[0][app]: Invalid value: \"demo-{nginx}\": "
                 "a valid label must be an empty string or consist of alphanumeric characters, "
                 "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                 "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                 "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
    CHECK(s_lerr("environment>qa",
                 "unable to parse requirement: values[0]: Invalid value: "
                 "\"qa\": for 'Gt', 'Lt' operators, the value must be an integer"));
    CHECK(s_lerr("app=ray,", "found '', expected: identifier after ','"));
    CHECK(s_lerr("app=ray tier", "found 'tier', expected: ',' or 'end of string'"));
    CHECK(s_lerr("=x", "found '=', expected: !, identifier, or 'end of string'"));
    CHECK(s_lerr("app in x", "unable to parse requirement: found 'x' expected: '('"));
    CHECK(s_lerr("app in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"));
    CHECK(s_lerr("app (", "unable to parse requirement: found '(', expected: '=', '!=', '==', "
                          "'in', notin'"));
    CHECK(s_lerr("!app=x", "found '=', expected: ',' or 'end of string'"));
    {
        char longv[80];
        memset(longv, 'a', sizeof(longv) - 1);
        longv[sizeof(longv) - 1] = '\0';
        buf_t q;
        buf_init(&q, 4096);
        buf_printf(&q, "k=%s", longv);
        CHECK(s_lerr(buf_str(&q), "unable to parse requirement: values[0][k]: Invalid value: "
                                  "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                  "aaaaaaaaaaaaaaaaaaaa\": must be no more than 63 characters"));
        buf_free(&q);
    }
    CHECK(selector_validate_label_key("/x", NULL) == ERR_INVAL);
    CHECK(selector_validate_label_key("x/", NULL) == ERR_INVAL);
    CHECK(selector_validate_label_key("ray.io/node-type", NULL) == 0);
    CHECK(selector_validate_label_value("", NULL) == 0);
    CHECK(selector_validate_label_value("-x", NULL) == ERR_INVAL);
    {
        selector_t *s = NULL;
        char *big = malloc(SELECTOR_MAX_TEXT + 2);
        if (big) {
            memset(big, 'a', SELECTOR_MAX_TEXT + 1);
            big[SELECTOR_MAX_TEXT + 1] = '\0';
            CHECK(selector_parse_labels(big, &s, NULL) == ERR_TOOBIG && !s);
            CHECK(selector_parse_fields(big, NULL, 0, &s, NULL) == ERR_TOOBIG && !s);
            free(big);
        }
    }

    // Field selectors.
    {
        static const char *const pf[] = {"metadata.name", "metadata.namespace", "spec.nodeName",
                                         "status.phase",  "spec.hostNetwork",   "spec.priority"};
        json_t *pod = json_pack("{s:{s:s,s:s},s:{s:s,s:b,s:i},s:{s:s}}", "metadata", "name", "p1",
                                "namespace", "default", "spec", "nodeName", "n,1", "hostNetwork", 1,
                                "priority", 7, "status", "phase", "Running");
        selector_t *s = NULL;
        buf_t e;
        buf_init(&e, 4096);
        CHECK(selector_parse_fields("metadata.name=p1,status.phase!=Pending", pf, 6, &s, &e) == 0);
        CHECK(selector_matches_fields(s, pod));
        CHECK(strcmp(selector_exact_value(s, "metadata.name"), "p1") == 0);
        CHECK(selector_exact_value(s, "status.phase") == NULL);
        CHECK(!selector_is_empty(s));
        selector_destroy(&s);
        CHECK(s == NULL);
        selector_destroy(&s);
        CHECK(selector_parse_fields("spec.nodeName==n\\,1,spec.hostNetwork=true,spec.priority=7",
                                    pf, 6, &s, &e) == 0);
        CHECK(selector_matches_fields(s, pod));
        selector_destroy(&s);
        CHECK(selector_parse_fields("metadata.namespace=kube-system", pf, 6, &s, &e) == 0);
        CHECK(!selector_matches_fields(s, pod));
        selector_destroy(&s);
        CHECK(selector_parse_fields("", pf, 6, &s, &e) == 0 && selector_is_empty(s));
        CHECK(selector_matches_fields(s, pod));
        selector_destroy(&s);
        CHECK(selector_parse_fields("status.podIP=", pf, 6, &s, &e) == ERR_INVAL && !s);
        CHECK(strcmp(buf_str(&e), "field label not supported: status.podIP") == 0);
        buf_reset(&e);
        CHECK(selector_parse_fields("metadata.name", pf, 6, &s, &e) == ERR_INVAL);
        CHECK(strcmp(buf_str(&e),
                     "invalid selector: 'metadata.name'; can't understand 'metadata.name'") == 0);
        buf_reset(&e);
        CHECK(selector_parse_fields("metadata.name=a\\x", pf, 6, &s, &e) == ERR_INVAL);
        buf_reset(&e);
        CHECK(selector_parse_fields("metadata.name=a=b", pf, 6, &s, &e) == ERR_INVAL);
        buf_reset(&e);
        // Printing escapes \\ , = in values, so the text parses back (found by fuzz_selector).
        CHECK(selector_parse_fields("metadata.name=\\\\a\\,b\\=c", pf, 6, &s, &e) == 0);
        CHECK(selector_to_string(s, &e) == 0 &&
              strcmp(buf_str(&e), "metadata.name=\\\\a\\,b\\=c") == 0);
        selector_destroy(&s);
        buf_reset(&e);
        CHECK(selector_field_value(pod, "spec.hostNetwork", &e) == 0);
        CHECK(strcmp(buf_str(&e), "true") == 0);
        buf_reset(&e);
        CHECK(selector_field_value(pod, "spec.none.deeper", &e) == 0 && e.len == 0);
        buf_free(&e);
        json_decref(pod);
    }

    // matchLabels and matchExpressions.
    {
        selector_t *s = NULL;
        buf_t e;
        buf_init(&e, 4096);
        json_t *ml = json_pack("{s:s,s:s}", "ray.io/cluster", "demo", "ray.io/node-type", "head");
        CHECK(selector_labels_from_map(ml, &s, &e) == 0);
        buf_t o;
        buf_init(&o, 4096);
        CHECK(selector_to_string(s, &o) == 0);
        CHECK(strcmp(buf_str(&o), "ray.io/cluster=demo,ray.io/node-type=head") == 0);
        CHECK(selector_matches_labels(s, ml));
        CHECK(strcmp(selector_exact_value(s, "ray.io/cluster"), "demo") == 0);
        selector_destroy(&s);
        json_t *bad = json_pack("{s:s}", "k", "bad value");
        CHECK(selector_labels_from_map(bad, &s, &e) == ERR_INVAL && !s);
        CHECK(strncmp(buf_str(&e), "values[0][k]: Invalid value: \"bad value\": a valid label",
                      52) == 0);
        json_decref(bad);
        buf_reset(&e);
        CHECK(selector_labels_from_map(NULL, &s, &e) == 0 && selector_is_empty(s));
        selector_destroy(&s);

        CHECK(selector_from_label_selector(NULL, &s, &e) == 0);
        CHECK(!selector_matches_labels(s, ml) && !selector_is_empty(s));
        CHECK(selector_to_string(s, &o) == ERR_INVAL);
        selector_destroy(&s);
        json_t *ls = json_loads("{}", 0, NULL);
        CHECK(selector_from_label_selector(ls, &s, &e) == 0 && selector_matches_labels(s, ml));
        selector_destroy(&s);
        json_decref(ls);
        ls = json_loads("{\"matchLabels\":{\"ray.io/cluster\":\"demo\"},\"matchExpressions\":["
                        "{\"key\":\"ray.io/node-type\",\"operator\":\"In\",\"values\":[\"head\","
                        "\"worker\"]},{\"key\":\"gone\",\"operator\":\"DoesNotExist\"},"
                        "{\"key\":\"ray.io/cluster\",\"operator\":\"Exists\"},"
                        "{\"key\":\"x\",\"operator\":\"NotIn\",\"values\":[\"y\"]}]}",
                        0, NULL);
        CHECK(selector_from_label_selector(ls, &s, &e) == 0);
        CHECK(selector_matches_labels(s, ml));
        selector_destroy(&s);
        json_decref(ls);
        ls = json_loads("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Foo\"}]}", 0, NULL);
        CHECK(selector_from_label_selector(ls, &s, &e) == ERR_INVAL && !s);
        CHECK(strcmp(buf_str(&e), "\"Foo\" is not a valid label selector operator") == 0);
        json_decref(ls);
        buf_reset(&e);
        ls = json_loads("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}", 0, NULL);
        CHECK(selector_from_label_selector(ls, &s, &e) == ERR_INVAL);
        CHECK(strcmp(buf_str(&e), "values: Invalid value: []string(nil): for 'in', 'notin' "
                                  "operators, values set can't be empty") == 0);
        json_decref(ls);
        buf_reset(&e);
        ls = json_loads("{\"matchExpressions\":[{\"key\":\"a b\",\"operator\":\"Exists\","
                        "\"values\":[\"x\"]}]}",
                        0, NULL);
        CHECK(selector_from_label_selector(ls, &s, &e) == ERR_INVAL);
        CHECK(strncmp(buf_str(&e), "[key: Invalid value: \"a b\": name part must", 42) == 0);
        CHECK(strstr(buf_str(&e), ", values: Invalid value: []string{\"x\"}: values set must be "
                                  "empty for exists and does not exist]") != NULL);
        json_decref(ls);
        buf_free(&o);
        buf_free(&e);
        json_decref(ml);
    }
    return SELFTEST_RESULT("selector", verbose);
}

#endif /* RF_SELFTEST */
