/*
 * cel: the CEL subset of cel.h. A hand-written lexer and recursive-descent parser (CEL's
 * grammar: conditional, ||, &&, relations, additive, multiplicative, unary, member, primary)
 * build an AST whose identifiers, functions and macros are resolved at compile time; the
 * evaluator walks it with values that are either scalars or borrowed-and-counted JSON (strings,
 * lists, maps), and errors that are values carrying their message.
 */
#include "cel.h"
#include "err.h"
#include "quote.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tallest AST evaluated (bounds the evaluator's recursion). */
#define CEL_MAX_HEIGHT (2 * CEL_MAX_DEPTH)
/* The longest compile-error message. */
#define CEL_MSG_MAX 256
/* cel-go's message when the cost limit is reached (Kubernetes tests its prefix). */
#define CEL_COST_MSG "operation cancelled: actual cost limit exceeded"

/* ---- AST ------------------------------------------------------------------------------- */

typedef enum {
    N_INT,
    N_UINT,
    N_DOUBLE,
    N_STRING,
    N_BOOL,
    N_NULL,
    N_SELF,
    N_OLDSELF,
    N_VAR,
    N_SELECT,
    N_HAS,
    N_INDEX,
    N_LIST,
    N_MAP,
    N_NOT,
    N_NEG,
    N_BIN,
    N_AND,
    N_OR,
    N_COND,
    N_CALL,
    N_COMP,
} ntype_t;

/* Binary operators of N_BIN. */
typedef enum {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
} binop_t;

/* Functions and methods of N_CALL. */
typedef enum {
    F_SIZE,
    F_STARTS,
    F_ENDS,
    F_CONTAINS,
    F_MATCHES,
    F_LOWER,
    F_UPPER,
    F_INT,
    F_UINT,
    F_DOUBLE,
    F_STRING,
    F_HASVALUE,
    F_VALUE,
    F_ORVALUE,
} fn_t;

/* Macros of N_COMP. */
typedef enum {
    M_ALL,
    M_EXISTS,
    M_EXISTS_ONE,
    M_FILTER,
    M_MAP,
} macro_t;

typedef struct node node_t;
struct node {
    ntype_t t; /* node type */
    int op; /* binop_t, fn_t or macro_t */
    size_t pos; /* offset in the source */
    int height; /* 1 + the tallest child */
    int64_t i; /* N_INT; N_VAR and N_COMP: the variable slot */
    uint64_t u; /* N_UINT */
    double d; /* N_DOUBLE */
    bool b; /* N_BOOL */
    char *s; /* N_STRING value, N_SELECT/N_HAS field name */
    size_t slen; /* its length */
    node_t *kid[3]; /* operands (select/has/index/unary/binary/cond/comprehension) */
    node_t **args; /* N_CALL arguments (a method's receiver first), N_LIST items, N_MAP k,v,... */
    size_t nargs; /* their number */
    regex_t *re; /* F_MATCHES with a literal pattern: compiled once */
};

struct cel_prog {
    node_t *root; /* the expression */
    bool uses_old; /* refers to oldSelf */
};

static void s_node_free(node_t *n)
{
    if (!n)
        return;
    for (int k = 0; k < 3; k++)
        s_node_free(n->kid[k]);
    for (size_t k = 0; k < n->nargs; k++)
        s_node_free(n->args[k]);
    free(n->args);
    free(n->s);
    if (n->re) {
        regfree(n->re);
        free(n->re);
    }
    free(n);
}

void cel_free(cel_prog_t *p)
{
    if (!p)
        return;
    s_node_free(p->root);
    free(p);
}

bool cel_uses_old_self(const cel_prog_t *p)
{
    return p && p->uses_old;
}

/* ---- lexer ----------------------------------------------------------------------------- */

typedef enum {
    T_EOF,
    T_IDENT,
    T_INT,
    T_UINT,
    T_DOUBLE,
    T_STRING,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_LBRACE,
    T_RBRACE,
    T_DOT,
    T_COMMA,
    T_COLON,
    T_QUEST,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PERCENT,
    T_NOT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_AND,
    T_OR,
    T_IN,
} ttype_t;

typedef struct {
    ttype_t t; /* token type */
    size_t pos; /* offset of its first byte */
    size_t len; /* its length in the source */
    uint64_t u; /* T_INT (up to 2^63, for a negated literal) and T_UINT */
    double d; /* T_DOUBLE */
    char *s; /* T_STRING: the decoded bytes (owned until taken) */
    size_t slen; /* their length */
} tok_t;

typedef struct {
    const char *src; /* the expression */
    size_t len; /* its length */
    size_t pos; /* the lexer's position */
    tok_t tok; /* the current token */
    int depth; /* recursion depth of the parser */
    int err; /* 0, ERR_INVAL, ERR_TOOBIG or ERR_NOMEM */
    size_t err_pos; /* where the first error is */
    char err_msg[CEL_MSG_MAX]; /* what it is */
    bool uses_old; /* oldSelf seen */
    const char *scope[CEL_MAX_VARS]; /* comprehension variables in scope, innermost last */
    size_t scope_len[CEL_MAX_VARS]; /* their lengths */
    int nscope; /* their number */
} parser_t;

static void s_perr(parser_t *p, int code, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_perr(parser_t *p, int code, size_t pos, const char *fmt, ...)
{
    if (p->err)
        return;
    p->err = code;
    p->err_pos = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err_msg, sizeof(p->err_msg), fmt, ap);
    va_end(ap);
}

/* Appends the code point `cp` as UTF-8 to `b`. */
static int s_utf8(buf_t *b, uint32_t cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_append(b, o, n);
}

/* Lexes a string literal starting at the quote at p->pos (after any r prefix). */
static void s_lex_string(parser_t *p, bool raw)
{
    const char *s = p->src;
    size_t start = p->tok.pos;
    char q = s[p->pos];
    bool triple = p->pos + 2 < p->len && s[p->pos + 1] == q && s[p->pos + 2] == q;
    p->pos += triple ? 3 : 1;
    buf_t b;
    buf_init(&b, CEL_MAX_SOURCE);
    for (;;) {
        if (p->pos >= p->len) {
            s_perr(p, ERR_INVAL, start, "Syntax error: token recognition error at: '%.*s'",
                   (int)(p->len - start > 20 ? 20 : p->len - start), s + start);
            break;
        }
        char c = s[p->pos];
        if (c == q &&
            (!triple || (p->pos + 2 < p->len && s[p->pos + 1] == q && s[p->pos + 2] == q))) {
            p->pos += triple ? 3 : 1;
            break;
        }
        if (!triple && (c == '\n' || c == '\r')) {
            s_perr(p, ERR_INVAL, start, "Syntax error: token recognition error at: '%.*s'",
                   (int)(p->pos - start), s + start);
            break;
        }
        if (c != '\\' || raw) {
            buf_append(&b, &c, 1);
            p->pos++;
            continue;
        }
        if (p->pos + 1 >= p->len) {
            s_perr(p, ERR_INVAL, p->pos, "Syntax error: invalid escape sequence");
            break;
        }
        char e = s[p->pos + 1];
        p->pos += 2;
        const char *simple = strchr("abfnrtv\\'\"`?", e);
        if (simple && e) {
            static const char out[] = "\a\b\f\n\r\t\v\\'\"`?";
            buf_append(&b, &out[simple - "abfnrtv\\'\"`?"], 1);
            continue;
        }
        int digits = e == 'x' || e == 'X' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        uint32_t cp = 0;
        bool bad = false;
        if (digits) {
            for (int k = 0; k < digits; k++) {
                int h = p->pos < p->len ? quote_hexval((unsigned char)s[p->pos]) : -1;
                if (h < 0) {
                    bad = true;
                    break;
                }
                cp = cp * 16 + (uint32_t)h;
                p->pos++;
            }
        } else if (e >= '0' && e <= '3') {
            cp = (uint32_t)(e - '0');
            for (int k = 0; k < 2; k++) {
                char o = p->pos < p->len ? s[p->pos] : 0;
                if (o < '0' || o > '7') {
                    bad = true;
                    break;
                }
                cp = cp * 8 + (uint32_t)(o - '0');
                p->pos++;
            }
        } else {
            bad = true;
        }
        if (bad || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            s_perr(p, ERR_INVAL, start, "Syntax error: invalid escape sequence");
            break;
        }
        s_utf8(&b, cp);
    }
    if (b.len >= b.max)
        s_perr(p, ERR_TOOBIG, start, "string literal too long");
    p->tok.t = T_STRING;
    p->tok.slen = b.len;
    p->tok.s = b.data ? buf_take(&b, NULL) : strdup("");
    if (!p->tok.s)
        s_perr(p, ERR_NOMEM, start, "out of memory");
    buf_free(&b);
}

/* Lexes a number at p->pos. */
static void s_lex_number(parser_t *p)
{
    const char *s = p->src;
    size_t at = p->pos;
    bool hex = s[at] == '0' && at + 1 < p->len && (s[at + 1] == 'x' || s[at + 1] == 'X');
    size_t e = at + (hex ? 2 : 0);
    while (e < p->len && (hex ? isxdigit((unsigned char)s[e]) : isdigit((unsigned char)s[e])))
        e++;
    bool dbl = false;
    if (!hex && e + 1 < p->len && s[e] == '.' && isdigit((unsigned char)s[e + 1])) {
        dbl = true;
        e++;
        while (e < p->len && isdigit((unsigned char)s[e]))
            e++;
    }
    if (!hex && e < p->len && (s[e] == 'e' || s[e] == 'E')) {
        size_t x = e + 1;
        if (x < p->len && (s[x] == '+' || s[x] == '-'))
            x++;
        if (x < p->len && isdigit((unsigned char)s[x])) {
            dbl = true;
            e = x;
            while (e < p->len && isdigit((unsigned char)s[e]))
                e++;
        }
    }
    char num[128];
    size_t n = e - at;
    if (n >= sizeof(num) || (hex && n == 2)) {
        s_perr(p, ERR_INVAL, at, "invalid int literal");
        p->pos = e;
        return;
    }
    memcpy(num, s + at, n);
    num[n] = '\0';
    p->pos = e;
    if (dbl) {
        p->tok.t = T_DOUBLE;
        p->tok.d = strtod(num, NULL);
        return;
    }
    bool is_uint = p->pos < p->len && (s[p->pos] == 'u' || s[p->pos] == 'U');
    if (is_uint)
        p->pos++;
    uint64_t v = 0;
    const char *d = hex ? num + 2 : num;
    for (; *d; d++) {
        int h = quote_hexval((unsigned char)*d);
        uint64_t base = hex ? 16 : 10;
        if (v > (UINT64_MAX - (uint64_t)h) / base) {
            s_perr(p, ERR_INVAL, at, "invalid %s literal", is_uint ? "uint" : "int");
            return;
        }
        v = v * base + (uint64_t)h;
    }
    if (!is_uint && v > (uint64_t)INT64_MAX + 1) {
        s_perr(p, ERR_INVAL, at, "invalid int literal");
        return;
    }
    p->tok.t = is_uint ? T_UINT : T_INT;
    p->tok.u = v;
}

/* Reads the next token into p->tok (freeing a string left in it). */
static void s_next(parser_t *p)
{
    free(p->tok.s);
    memset(&p->tok, 0, sizeof(p->tok));
    const char *s = p->src;
    for (;;) {
        while (p->pos < p->len && isspace((unsigned char)s[p->pos]))
            p->pos++;
        if (p->pos + 1 < p->len && s[p->pos] == '/' && s[p->pos + 1] == '/') {
            while (p->pos < p->len && s[p->pos] != '\n')
                p->pos++;
            continue;
        }
        break;
    }
    p->tok.pos = p->pos;
    if (p->err || p->pos >= p->len) {
        p->tok.t = T_EOF;
        return;
    }
    char c = s[p->pos];
    char c1 = p->pos + 1 < p->len ? s[p->pos + 1] : '\0';
    if ((c == 'r' || c == 'R') && (c1 == '\'' || c1 == '"')) {
        p->pos++;
        s_lex_string(p, true);
    } else if ((c == 'b' || c == 'B') && (c1 == '\'' || c1 == '"')) {
        s_perr(p, ERR_INVAL, p->pos, "bytes literals are not supported");
        p->tok.t = T_EOF;
    } else if (c == '\'' || c == '"') {
        s_lex_string(p, false);
    } else if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)c1))) {
        s_lex_number(p);
    } else if (isalpha((unsigned char)c) || c == '_') {
        size_t e = p->pos;
        while (e < p->len && (isalnum((unsigned char)s[e]) || s[e] == '_'))
            e++;
        p->tok.t = e - p->pos == 2 && memcmp(s + p->pos, "in", 2) == 0 ? T_IN : T_IDENT;
        p->pos = e;
    } else {
        static const struct {
            const char *text;
            ttype_t t;
        } ops[] = {{"==", T_EQ},     {"!=", T_NE},    {"<=", T_LE},    {">=", T_GE},
                   {"&&", T_AND},    {"||", T_OR},    {"(", T_LPAREN}, {")", T_RPAREN},
                   {"[", T_LBRACK},  {"]", T_RBRACK}, {"{", T_LBRACE}, {"}", T_RBRACE},
                   {".", T_DOT},     {",", T_COMMA},  {":", T_COLON},  {"?", T_QUEST},
                   {"+", T_PLUS},    {"-", T_MINUS},  {"*", T_STAR},   {"/", T_SLASH},
                   {"%", T_PERCENT}, {"!", T_NOT},    {"<", T_LT},     {">", T_GT}};
        for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
            size_t n = strlen(ops[k].text);
            if (p->pos + n <= p->len && memcmp(s + p->pos, ops[k].text, n) == 0) {
                p->tok.t = ops[k].t;
                p->pos += n;
                p->tok.len = n;
                return;
            }
        }
        s_perr(p, ERR_INVAL, p->pos, "Syntax error: token recognition error at: '%c'", c);
        p->tok.t = T_EOF;
        return;
    }
    p->tok.len = p->pos - p->tok.pos;
}

/* ---- parser ---------------------------------------------------------------------------- */

static node_t *s_expr(parser_t *p);

static node_t *s_new(parser_t *p, ntype_t t, size_t pos)
{
    node_t *n = calloc(1, sizeof(*n));
    if (!n) {
        s_perr(p, ERR_NOMEM, pos, "out of memory");
        return NULL;
    }
    n->t = t;
    n->pos = pos;
    n->height = 1;
    return n;
}

/* Sets a child (taking it) and checks the AST's height. */
static void s_kid(parser_t *p, node_t *n, int k, node_t *c)
{
    n->kid[k] = c;
    if (c && c->height + 1 > n->height)
        n->height = c->height + 1;
    if (n->height > CEL_MAX_HEIGHT)
        s_perr(p, ERR_TOOBIG, n->pos, "expression nesting exceeds the limit of %d", CEL_MAX_HEIGHT);
}

static void s_arg(parser_t *p, node_t *n, node_t *c)
{
    node_t **a = realloc(n->args, (n->nargs + 1) * sizeof(*a));
    if (!a) {
        s_node_free(c);
        s_perr(p, ERR_NOMEM, n->pos, "out of memory");
        return;
    }
    n->args = a;
    n->args[n->nargs++] = c;
    if (c && c->height + 1 > n->height)
        n->height = c->height + 1;
    if (n->height > CEL_MAX_HEIGHT)
        s_perr(p, ERR_TOOBIG, n->pos, "expression nesting exceeds the limit of %d", CEL_MAX_HEIGHT);
}

static bool s_accept(parser_t *p, ttype_t t)
{
    if (p->tok.t != t)
        return false;
    s_next(p);
    return true;
}

static void s_expect(parser_t *p, ttype_t t, const char *what)
{
    if (!s_accept(p, t))
        s_perr(p, ERR_INVAL, p->tok.pos, "Syntax error: mismatched input '%.*s' expecting %s",
               p->tok.t == T_EOF ? 5 : (int)p->tok.len,
               p->tok.t == T_EOF ? "<EOF>" : p->src + p->tok.pos, what);
}

/* The functions and methods known, with their argument counts (receiver not counted). */
static const struct {
    const char *name; /* CEL name */
    fn_t fn; /* what it is */
    int fargs; /* arguments as a global function, -1 when not one */
    int margs; /* arguments as a method, -1 when not one */
} s_fns[] = {
    {"size", F_SIZE, 1, 0},         {"startsWith", F_STARTS, -1, 1},
    {"endsWith", F_ENDS, -1, 1},    {"contains", F_CONTAINS, -1, 1},
    {"matches", F_MATCHES, 2, 1},   {"lowerAscii", F_LOWER, -1, 0},
    {"upperAscii", F_UPPER, -1, 0}, {"int", F_INT, 1, -1},
    {"uint", F_UINT, 1, -1},        {"double", F_DOUBLE, 1, -1},
    {"string", F_STRING, 1, -1},    {"hasValue", F_HASVALUE, -1, 0},
    {"value", F_VALUE, -1, 0},      {"orValue", F_ORVALUE, -1, 1},
};

static const struct {
    const char *name; /* CEL macro name */
    macro_t m; /* which */
} s_macros[] = {
    {"all", M_ALL},       {"exists", M_EXISTS}, {"exists_one", M_EXISTS_ONE},
    {"filter", M_FILTER}, {"map", M_MAP},
};

/* Parses "(args)" after the name of a call; the receiver, if any, is args[0]. */
static node_t *s_call(parser_t *p, const char *name, size_t nlen, size_t pos, node_t *recv)
{
    // Macros over a receiver: x.all(v, pred) etc.
    for (size_t k = 0; recv && k < sizeof(s_macros) / sizeof(s_macros[0]); k++) {
        if (strlen(s_macros[k].name) != nlen || memcmp(s_macros[k].name, name, nlen) != 0)
            continue;
        node_t *n = s_new(p, N_COMP, pos);
        if (!n) {
            s_node_free(recv);
            return NULL;
        }
        n->op = (int)s_macros[k].m;
        s_kid(p, n, 0, recv);
        if (p->tok.t != T_IDENT) {
            s_perr(p, ERR_INVAL, p->tok.pos, "argument must be a simple name");
            return n;
        }
        if (p->nscope >= CEL_MAX_VARS) {
            s_perr(p, ERR_TOOBIG, p->tok.pos, "more than %d nested comprehensions", CEL_MAX_VARS);
            return n;
        }
        p->scope[p->nscope] = p->src + p->tok.pos;
        p->scope_len[p->nscope] = p->tok.len;
        n->i = p->nscope;
        s_next(p);
        s_expect(p, T_COMMA, "','");
        p->nscope++;
        s_kid(p, n, 1, s_expr(p));
        if (n->op == M_MAP && s_accept(p, T_COMMA))
            s_kid(p, n, 2, s_expr(p));
        p->nscope--;
        s_expect(p, T_RPAREN, "')'");
        return n;
    }
    if (!recv && nlen == 3 && memcmp(name, "has", 3) == 0) {
        node_t *a = s_expr(p);
        s_expect(p, T_RPAREN, "')'");
        if (a && a->t != N_SELECT) {
            s_node_free(a);
            s_perr(p, ERR_INVAL, pos, "invalid argument to has() macro");
            return NULL;
        }
        if (a)
            a->t = N_HAS;
        return a;
    }
    int fi = -1;
    for (size_t k = 0; k < sizeof(s_fns) / sizeof(s_fns[0]); k++)
        if (strlen(s_fns[k].name) == nlen && memcmp(s_fns[k].name, name, nlen) == 0)
            fi = (int)k;
    node_t *n = s_new(p, N_CALL, pos);
    if (!n) {
        s_node_free(recv);
        return NULL;
    }
    if (recv)
        s_arg(p, n, recv);
    if (p->tok.t != T_RPAREN) {
        do {
            s_arg(p, n, s_expr(p));
        } while (!p->err && s_accept(p, T_COMMA));
    }
    s_expect(p, T_RPAREN, "')'");
    if (fi < 0) {
        s_perr(p, ERR_INVAL, pos, "undeclared reference to '%.*s' (in container '')", (int)nlen,
               name);
        return n;
    }
    n->op = (int)s_fns[fi].fn;
    int want = recv ? s_fns[fi].margs : s_fns[fi].fargs;
    if (want < 0 || n->nargs != (size_t)want + (recv ? 1 : 0)) {
        s_perr(p, ERR_INVAL, pos,
               "found no matching overload for '%.*s' applied to %zu argument(s)", (int)nlen, name,
               n->nargs);
        return n;
    }
    // A literal pattern is compiled now, so that a bad one is a compile error.
    node_t *pat = n->nargs == 2 ? n->args[1] : NULL;
    if (n->op == F_MATCHES && pat && pat->t == N_STRING) {
        n->re = calloc(1, sizeof(*n->re));
        if (!n->re) {
            s_perr(p, ERR_NOMEM, pos, "out of memory");
            return n;
        }
        int rc = regcomp(n->re, pat->s, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, n->re, why, sizeof(why));
            free(n->re);
            n->re = NULL;
            s_perr(p, ERR_INVAL, pat->pos, "invalid regular expression: %s", why);
        }
    }
    return n;
}

static node_t *s_primary(parser_t *p)
{
    size_t pos = p->tok.pos;
    node_t *n = NULL;
    switch (p->tok.t) {
    case T_INT:
        if (p->tok.u > (uint64_t)INT64_MAX) {
            s_perr(p, ERR_INVAL, pos, "invalid int literal");
            return NULL;
        }
        n = s_new(p, N_INT, pos);
        if (n)
            n->i = (int64_t)p->tok.u;
        s_next(p);
        return n;
    case T_UINT:
        n = s_new(p, N_UINT, pos);
        if (n)
            n->u = p->tok.u;
        s_next(p);
        return n;
    case T_DOUBLE:
        n = s_new(p, N_DOUBLE, pos);
        if (n)
            n->d = p->tok.d;
        s_next(p);
        return n;
    case T_STRING:
        n = s_new(p, N_STRING, pos);
        if (n) {
            n->s = p->tok.s;
            n->slen = p->tok.slen;
            p->tok.s = NULL;
        }
        s_next(p);
        return n;
    case T_LPAREN:
        s_next(p);
        n = s_expr(p);
        s_expect(p, T_RPAREN, "')'");
        return n;
    case T_LBRACK:
        s_next(p);
        n = s_new(p, N_LIST, pos);
        while (n && !p->err && p->tok.t != T_RBRACK) {
            s_arg(p, n, s_expr(p));
            if (!s_accept(p, T_COMMA))
                break;
        }
        s_expect(p, T_RBRACK, "']'");
        return n;
    case T_LBRACE:
        s_next(p);
        n = s_new(p, N_MAP, pos);
        while (n && !p->err && p->tok.t != T_RBRACE) {
            node_t *k = s_expr(p);
            if (k && (k->t == N_INT || k->t == N_UINT || k->t == N_DOUBLE || k->t == N_BOOL ||
                      k->t == N_NULL))
                s_perr(p, ERR_INVAL, k->pos,
                       "unsupported map key type (kubesim's CEL keys "
                       "maps by strings only)");
            s_arg(p, n, k);
            s_expect(p, T_COLON, "':'");
            s_arg(p, n, s_expr(p));
            if (!s_accept(p, T_COMMA))
                break;
        }
        s_expect(p, T_RBRACE, "'}'");
        return n;
    case T_DOT:
    case T_IDENT: {
        if (p->tok.t == T_DOT)
            s_next(p);
        if (p->tok.t != T_IDENT) {
            s_expect(p, T_IDENT, "IDENTIFIER");
            return NULL;
        }
        const char *name = p->src + p->tok.pos;
        size_t nlen = p->tok.len;
        pos = p->tok.pos;
        s_next(p);
        if (s_accept(p, T_LPAREN))
            return s_call(p, name, nlen, pos, NULL);
        for (int k = p->nscope - 1; k >= 0; k--) {
            if (p->scope_len[k] == nlen && memcmp(p->scope[k], name, nlen) == 0) {
                n = s_new(p, N_VAR, pos);
                if (n)
                    n->i = k;
                return n;
            }
        }
        if (nlen == 4 && memcmp(name, "self", 4) == 0)
            return s_new(p, N_SELF, pos);
        if (nlen == 7 && memcmp(name, "oldSelf", 7) == 0) {
            p->uses_old = true;
            return s_new(p, N_OLDSELF, pos);
        }
        if ((nlen == 4 && memcmp(name, "true", 4) == 0) ||
            (nlen == 5 && memcmp(name, "false", 5) == 0)) {
            n = s_new(p, N_BOOL, pos);
            if (n)
                n->b = nlen == 4;
            return n;
        }
        if (nlen == 4 && memcmp(name, "null", 4) == 0)
            return s_new(p, N_NULL, pos);
        s_perr(p, ERR_INVAL, pos, "undeclared reference to '%.*s' (in container '')", (int)nlen,
               name);
        return NULL;
    }
    case T_EOF:
        s_perr(p, ERR_INVAL, pos, "Syntax error: mismatched input '<EOF>' expecting an expression");
        return NULL;
    default:
        s_perr(p, ERR_INVAL, pos, "Syntax error: extraneous input '%.*s'", (int)p->tok.len,
               p->src + pos);
        return NULL;
    }
}

static node_t *s_member(parser_t *p)
{
    node_t *n = s_primary(p);
    while (n && !p->err) {
        size_t pos = p->tok.pos;
        if (s_accept(p, T_DOT)) {
            if (p->tok.t != T_IDENT) {
                s_expect(p, T_IDENT, "IDENTIFIER");
                break;
            }
            const char *name = p->src + p->tok.pos;
            size_t nlen = p->tok.len;
            size_t npos = p->tok.pos;
            s_next(p);
            if (s_accept(p, T_LPAREN)) {
                n = s_call(p, name, nlen, npos, n);
                continue;
            }
            node_t *sel = s_new(p, N_SELECT, pos); // cel-go places a selection at its dot
            if (!sel)
                break;
            sel->s = strndup(name, nlen);
            sel->slen = nlen;
            if (!sel->s)
                s_perr(p, ERR_NOMEM, npos, "out of memory");
            s_kid(p, sel, 0, n);
            n = sel;
        } else if (s_accept(p, T_LBRACK)) {
            node_t *ix = s_new(p, N_INDEX, pos);
            if (!ix)
                break;
            s_kid(p, ix, 0, n);
            s_kid(p, ix, 1, s_expr(p));
            s_expect(p, T_RBRACK, "']'");
            n = ix;
        } else {
            break;
        }
    }
    return n;
}

static node_t *s_unary(parser_t *p)
{
    size_t pos = p->tok.pos;
    if (s_accept(p, T_NOT)) {
        node_t *n = s_new(p, N_NOT, pos);
        if (n)
            s_kid(p, n, 0, s_unary(p));
        return n;
    }
    if (s_accept(p, T_MINUS)) {
        // -9223372036854775808 is a literal, not the negation of one too large.
        if (p->tok.t == T_INT && p->tok.u == (uint64_t)INT64_MAX + 1) {
            node_t *n = s_new(p, N_INT, pos);
            if (n)
                n->i = INT64_MIN;
            s_next(p);
            return n;
        }
        node_t *n = s_new(p, N_NEG, pos);
        if (n)
            s_kid(p, n, 0, s_unary(p));
        return n;
    }
    return s_member(p);
}

static node_t *s_binary(parser_t *p, node_t *l, ntype_t t, int op, node_t *(*next)(parser_t *))
{
    node_t *n = s_new(p, t, l ? l->pos : p->tok.pos);
    if (!n) {
        s_node_free(l);
        return NULL;
    }
    n->op = op;
    s_kid(p, n, 0, l);
    s_kid(p, n, 1, next(p));
    return n;
}

static node_t *s_mul(parser_t *p)
{
    node_t *n = s_unary(p);
    while (n && !p->err) {
        int op = p->tok.t == T_STAR      ? OP_MUL
                 : p->tok.t == T_SLASH   ? OP_DIV
                 : p->tok.t == T_PERCENT ? OP_MOD
                                         : -1;
        if (op < 0)
            break;
        s_next(p);
        n = s_binary(p, n, N_BIN, op, s_unary);
    }
    return n;
}

static node_t *s_add(parser_t *p)
{
    node_t *n = s_mul(p);
    while (n && !p->err) {
        int op = p->tok.t == T_PLUS ? OP_ADD : p->tok.t == T_MINUS ? OP_SUB : -1;
        if (op < 0)
            break;
        s_next(p);
        n = s_binary(p, n, N_BIN, op, s_mul);
    }
    return n;
}

static node_t *s_rel(parser_t *p)
{
    node_t *n = s_add(p);
    while (n && !p->err) {
        int op;
        switch (p->tok.t) {
        case T_EQ:
            op = OP_EQ;
            break;
        case T_NE:
            op = OP_NE;
            break;
        case T_LT:
            op = OP_LT;
            break;
        case T_LE:
            op = OP_LE;
            break;
        case T_GT:
            op = OP_GT;
            break;
        case T_GE:
            op = OP_GE;
            break;
        case T_IN:
            op = OP_IN;
            break;
        default:
            return n;
        }
        s_next(p);
        n = s_binary(p, n, N_BIN, op, s_add);
    }
    return n;
}

static node_t *s_and(parser_t *p)
{
    node_t *n = s_rel(p);
    while (n && !p->err && s_accept(p, T_AND))
        n = s_binary(p, n, N_AND, 0, s_rel);
    return n;
}

static node_t *s_or(parser_t *p)
{
    node_t *n = s_and(p);
    while (n && !p->err && s_accept(p, T_OR))
        n = s_binary(p, n, N_OR, 0, s_and);
    return n;
}

static node_t *s_expr(parser_t *p)
{
    if (++p->depth > CEL_MAX_DEPTH) {
        s_perr(p, ERR_TOOBIG, p->tok.pos, "expression nesting exceeds the limit of %d",
               CEL_MAX_DEPTH);
        p->depth--;
        return NULL;
    }
    node_t *n = s_or(p);
    size_t pos = p->tok.pos;
    if (n && !p->err && s_accept(p, T_QUEST)) {
        node_t *c = s_new(p, N_COND, pos);
        if (c) {
            s_kid(p, c, 0, n);
            s_kid(p, c, 1, s_or(p));
            s_expect(p, T_COLON, "':'");
            s_kid(p, c, 2, s_expr(p));
        } else {
            s_node_free(n);
        }
        n = c;
    }
    p->depth--;
    return n;
}

/* Writes cel-go's report for the parser's error: "ERROR: <input>:L:C: msg", the source line and
 * a caret under the column. */
void cel_report(const char *src, size_t pos, const char *msg, buf_t *err)
{
    if (!err)
        return;
    size_t len = strlen(src);
    size_t line = 1, bol = 0;
    for (size_t k = 0; k < pos && k < len; k++) {
        if (src[k] == '\n') {
            line++;
            bol = k + 1;
        }
    }
    size_t eol = bol;
    while (eol < len && src[eol] != '\n')
        eol++;
    size_t col = 0;
    for (size_t k = bol; k < pos && k < len; k++)
        if (((unsigned char)src[k] & 0xC0) != 0x80)
            col++;
    buf_printf(err, "ERROR: <input>:%zu:%zu: %s\n | %.*s\n | ", line, col + 1, msg,
               (int)(eol - bol), src + bol);
    for (size_t k = 0; k < col; k++)
        buf_puts(err, ".");
    buf_puts(err, "^");
}

static void s_report(const parser_t *p, buf_t *err)
{
    cel_report(p->src, p->err_pos, p->err_msg, err);
}

/* Calls fn for the longest selection chains from self/oldSelf in the tree under n. */
static int s_fields(const node_t *n, cel_field_fn fn, void *arg)
{
    if (!n)
        return 0;
    if (n->t == N_SELECT || n->t == N_HAS) {
        const char *names[CEL_MAX_HEIGHT];
        size_t pos[CEL_MAX_HEIGHT];
        size_t cnt = 0;
        const node_t *at = n;
        while ((at->t == N_SELECT || at->t == N_HAS) && cnt < CEL_MAX_HEIGHT) {
            pos[cnt] = at->pos;
            names[cnt++] = at->s;
            at = at->kid[0];
        }
        if (at->t == N_SELF || at->t == N_OLDSELF) {
            // names[] runs from the last selection back; hand them over in source order.
            for (size_t k = 0; k < cnt / 2; k++) {
                const char *t = names[k];
                names[k] = names[cnt - 1 - k];
                names[cnt - 1 - k] = t;
                size_t q = pos[k];
                pos[k] = pos[cnt - 1 - k];
                pos[cnt - 1 - k] = q;
            }
            return fn(names, pos, cnt, arg);
        }
    }
    for (int k = 0; k < 3; k++) {
        int rc = s_fields(n->kid[k], fn, arg);
        if (rc)
            return rc;
    }
    for (size_t k = 0; k < n->nargs; k++) {
        int rc = s_fields(n->args[k], fn, arg);
        if (rc)
            return rc;
    }
    return 0;
}

int cel_fields(const cel_prog_t *p, cel_field_fn fn, void *arg)
{
    return p ? s_fields(p->root, fn, arg) : 0;
}

int cel_compile(const char *src, cel_prog_t **out, buf_t *err)
{
    *out = NULL;
    size_t len = src ? strlen(src) : 0;
    if (len > CEL_MAX_SOURCE) {
        if (err)
            buf_printf(err, "expression of %zu bytes exceeds the limit of %d", len, CEL_MAX_SOURCE);
        return ERR_TOOBIG;
    }
    parser_t p = {.src = src ? src : "", .len = len};
    s_next(&p);
    node_t *root = s_expr(&p);
    if (!p.err && p.tok.t != T_EOF)
        s_perr(&p, ERR_INVAL, p.tok.pos, "Syntax error: extraneous input '%.*s' expecting <EOF>",
               (int)p.tok.len, p.src + p.tok.pos);
    if (!p.err && !root)
        s_perr(&p, ERR_INVAL, 0, "Syntax error: empty expression");
    free(p.tok.s);
    if (p.err) {
        s_node_free(root);
        if (p.err == ERR_NOMEM) {
            if (err)
                buf_puts(err, "out of memory");
        } else {
            s_report(&p, err);
        }
        return p.err;
    }
    cel_prog_t *prog = calloc(1, sizeof(*prog));
    if (!prog) {
        s_node_free(root);
        return ERR_NOMEM;
    }
    prog->root = root;
    prog->uses_old = p.uses_old;
    *out = prog;
    return 0;
}

/* ---- values ---------------------------------------------------------------------------- */

typedef enum {
    V_ERR,
    V_NULL,
    V_BOOL,
    V_INT,
    V_UINT,
    V_DOUBLE,
    V_STR,
    V_LIST,
    V_MAP,
    V_OPT,
} vkind_t;

typedef struct {
    vkind_t k; /* kind */
    bool b; /* V_BOOL */
    int64_t i; /* V_INT */
    uint64_t u; /* V_UINT */
    double d; /* V_DOUBLE */
    json_t *j; /* V_STR/V_LIST/V_MAP value, V_OPT value (NULL: none), V_ERR message; owned */
} val_t;

typedef struct {
    cel_env_t *env; /* the bindings and cost */
    int64_t limit; /* the cost limit */
    bool over; /* the cost limit was reached: everything unwinds */
    bool nomem; /* an allocation failed */
    val_t vars[CEL_MAX_VARS]; /* comprehension variables (borrowed) */
} ctx_t;

static void s_drop(val_t *v)
{
    json_decref(v->j);
    v->j = NULL;
}

static val_t s_err(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static val_t s_err(ctx_t *c, const char *fmt, ...)
{
    char msg[CEL_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    val_t v = {.k = V_ERR, .j = json_string(msg)};
    if (!v.j)
        c->nomem = true;
    return v;
}

static val_t s_overload(ctx_t *c)
{
    return s_err(c, "no such overload");
}

static val_t s_bool(bool b)
{
    return (val_t){.k = V_BOOL, .b = b};
}

static val_t s_int(int64_t i)
{
    return (val_t){.k = V_INT, .i = i};
}

/* A JSON value as a CEL value (strings, lists and maps referenced). */
static val_t s_from_json(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return (val_t){.k = V_MAP, .j = json_incref((json_t *)j)};
    case JSON_ARRAY:
        return (val_t){.k = V_LIST, .j = json_incref((json_t *)j)};
    case JSON_STRING:
        return (val_t){.k = V_STR, .j = json_incref((json_t *)j)};
    case JSON_INTEGER:
        return s_int(json_integer_value(j));
    case JSON_REAL:
        return (val_t){.k = V_DOUBLE, .d = json_real_value(j)};
    case JSON_TRUE:
        return s_bool(true);
    case JSON_FALSE:
        return s_bool(false);
    default:
        return (val_t){.k = V_NULL};
    }
}

/* A CEL value as JSON (new reference), or NULL for an error, an optional or a uint too large. */
static json_t *s_to_json(const val_t *v)
{
    switch (v->k) {
    case V_NULL:
        return json_null();
    case V_BOOL:
        return json_boolean(v->b);
    case V_INT:
        return json_integer(v->i);
    case V_UINT:
        return v->u <= (uint64_t)INT64_MAX ? json_integer((json_int_t)v->u) : NULL;
    case V_DOUBLE:
        return json_real(v->d);
    case V_STR:
    case V_LIST:
    case V_MAP:
        return json_incref(v->j);
    default:
        return NULL;
    }
}

static const char *s_str(const val_t *v)
{
    return json_string_value(v->j);
}

static size_t s_slen(const val_t *v)
{
    return json_string_length(v->j);
}

static bool s_spend(ctx_t *c, int64_t n)
{
    c->env->cost += n;
    if (c->env->cost > c->limit)
        c->over = true;
    return !c->over;
}

static bool s_is_num(vkind_t k)
{
    return k == V_INT || k == V_UINT || k == V_DOUBLE;
}

/* Compares two numbers of any numeric kinds: -1, 0, 1, or 2 when unordered (NaN). */
static int s_numcmp(const val_t *a, const val_t *b)
{
    if (a->k == V_DOUBLE || b->k == V_DOUBLE) {
        double x = a->k == V_DOUBLE ? a->d : a->k == V_INT ? (double)a->i : (double)a->u;
        double y = b->k == V_DOUBLE ? b->d : b->k == V_INT ? (double)b->i : (double)b->u;
        if (isnan(x) || isnan(y))
            return 2;
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a->k == V_INT && b->k == V_INT)
        return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
    if (a->k == V_UINT && b->k == V_UINT)
        return a->u < b->u ? -1 : a->u > b->u ? 1 : 0;
    if (a->k == V_INT)
        return a->i < 0 ? -1 : (uint64_t)a->i < b->u ? -1 : (uint64_t)a->i > b->u ? 1 : 0;
    return b->i < 0 ? 1 : a->u < (uint64_t)b->i ? -1 : a->u > (uint64_t)b->i ? 1 : 0;
}

static bool s_json_eq(ctx_t *c, const json_t *a, const json_t *b);

/* CEL equality (heterogeneous: values of different kinds are unequal, numbers compare by
 * value). */
static bool s_eq(ctx_t *c, const val_t *a, const val_t *b)
{
    s_spend(c, 1);
    if (s_is_num(a->k) && s_is_num(b->k))
        return s_numcmp(a, b) == 0;
    if (a->k != b->k)
        return false;
    switch (a->k) {
    case V_NULL:
        return true;
    case V_BOOL:
        return a->b == b->b;
    case V_OPT:
        if (!a->j || !b->j)
            return !a->j && !b->j;
        return s_json_eq(c, a->j, b->j);
    default:
        return s_json_eq(c, a->j, b->j);
    }
}

static bool s_json_eq(ctx_t *c, const json_t *a, const json_t *b)
{
    if (c->over || !s_spend(c, 1))
        return false;
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !s_json_eq(c, v, w))
                return false;
        }
        return true;
    }
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t k = 0; k < json_array_size(a); k++)
            if (!s_json_eq(c, json_array_get(a, k), json_array_get(b, k)))
                return false;
        return true;
    }
    if (json_is_string(a) && json_is_string(b)) {
        size_t n = json_string_length(a);
        s_spend(c, (int64_t)n / 10 + 1);
        return n == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), n) == 0;
    }
    val_t x = s_from_json(a), y = s_from_json(b);
    bool eq = (x.k == V_MAP || x.k == V_LIST || x.k == V_STR) ? false : s_eq(c, &x, &y);
    s_drop(&x);
    s_drop(&y);
    return eq;
}

/* ---- evaluation ------------------------------------------------------------------------ */

static val_t s_eval(ctx_t *c, const node_t *n);

static val_t s_cost_err(ctx_t *c)
{
    return s_err(c, CEL_COST_MSG);
}

/* Evaluates a node that must give a bool: the value, or an error. */
static val_t s_eval_bool(ctx_t *c, const node_t *n)
{
    val_t v = s_eval(c, n);
    if (v.k != V_BOOL && v.k != V_ERR) {
        s_drop(&v);
        return s_overload(c);
    }
    return v;
}

/* && and || with CEL's commutative error handling: the deciding value wins over an error. */
static val_t s_logic(ctx_t *c, const node_t *n, bool is_and)
{
    val_t l = s_eval_bool(c, n->kid[0]);
    if (c->over)
        return l;
    if (l.k == V_BOOL && l.b != is_and)
        return l;
    val_t r = s_eval_bool(c, n->kid[1]);
    if (c->over) {
        s_drop(&l);
        return r;
    }
    if (r.k == V_BOOL && r.b != is_and) {
        s_drop(&l);
        return r;
    }
    if (l.k == V_ERR) {
        s_drop(&r);
        return l;
    }
    return r;
}

static val_t s_select(ctx_t *c, const node_t *n, bool test)
{
    val_t o = s_eval(c, n->kid[0]);
    if (o.k == V_ERR)
        return o;
    if (o.k != V_MAP) {
        s_drop(&o);
        return s_overload(c);
    }
    json_t *f = json_object_get(o.j, n->s);
    val_t r;
    if (test)
        r = s_bool(f != NULL);
    else
        r = f ? s_from_json(f) : s_err(c, "no such key: %s", n->s);
    s_drop(&o);
    return r;
}

static val_t s_index(ctx_t *c, const node_t *n)
{
    val_t o = s_eval(c, n->kid[0]);
    if (o.k == V_ERR)
        return o;
    val_t k = s_eval(c, n->kid[1]);
    val_t r;
    if (k.k == V_ERR) {
        r = k;
        k.j = NULL;
    } else if (o.k == V_LIST && (k.k == V_INT || k.k == V_UINT)) {
        size_t sz = json_array_size(o.j);
        bool in = k.k == V_INT ? k.i >= 0 && (uint64_t)k.i < sz : k.u < sz;
        if (in)
            r = s_from_json(json_array_get(o.j, k.k == V_INT ? (size_t)k.i : (size_t)k.u));
        else if (k.k == V_INT)
            r = s_err(c, "index out of bounds: %lld", (long long)k.i);
        else
            r = s_err(c, "index out of bounds: %llu", (unsigned long long)k.u);
    } else if (o.k == V_MAP && k.k == V_STR) {
        json_t *f = json_object_get(o.j, s_str(&k));
        r = f ? s_from_json(f) : s_err(c, "no such key: %s", s_str(&k));
    } else if (o.k == V_MAP) {
        r = s_err(c, "no such key: %s", "(non-string key)");
    } else {
        r = s_overload(c);
    }
    s_drop(&o);
    s_drop(&k);
    return r;
}

static val_t s_in(ctx_t *c, const val_t *x, const val_t *coll)
{
    if (coll->k == V_LIST) {
        size_t k;
        json_t *e;
        json_array_foreach(coll->j, k, e)
        {
            val_t ev = s_from_json(e);
            bool eq = s_eq(c, x, &ev);
            s_drop(&ev);
            if (eq)
                return s_bool(true);
            if (c->over)
                return s_cost_err(c);
        }
        return s_bool(false);
    }
    if (coll->k == V_MAP) {
        if (x->k != V_STR)
            return s_bool(false);
        return s_bool(json_object_get(coll->j, s_str(x)) != NULL);
    }
    return s_overload(c);
}

static val_t s_new_str(ctx_t *c, const char *s, size_t n)
{
    if (n > CEL_MAX_VALUE)
        return s_err(c, "string of %zu bytes exceeds the limit of %d", n, CEL_MAX_VALUE);
    s_spend(c, (int64_t)n / 10 + 1);
    val_t v = {.k = V_STR, .j = json_stringn(s, n)};
    if (!v.j)
        return s_err(c, "invalid UTF-8 in string");
    return v;
}

static val_t s_arith(ctx_t *c, int op, const val_t *a, const val_t *b)
{
    if (a->k == V_INT && b->k == V_INT) {
        int64_t r = 0;
        bool ovf = false;
        switch (op) {
        case OP_ADD:
            ovf = __builtin_add_overflow(a->i, b->i, &r);
            break;
        case OP_SUB:
            ovf = __builtin_sub_overflow(a->i, b->i, &r);
            break;
        case OP_MUL:
            ovf = __builtin_mul_overflow(a->i, b->i, &r);
            break;
        case OP_DIV:
        case OP_MOD:
            if (b->i == 0)
                return s_err(c, op == OP_DIV ? "division by zero" : "modulus by zero");
            if (a->i == INT64_MIN && b->i == -1) {
                ovf = true;
                break;
            }
            r = op == OP_DIV ? a->i / b->i : a->i % b->i;
            break;
        }
        return ovf ? s_err(c, "integer overflow") : s_int(r);
    }
    if (a->k == V_UINT && b->k == V_UINT) {
        uint64_t r = 0;
        bool ovf = false;
        switch (op) {
        case OP_ADD:
            ovf = __builtin_add_overflow(a->u, b->u, &r);
            break;
        case OP_SUB:
            ovf = __builtin_sub_overflow(a->u, b->u, &r);
            break;
        case OP_MUL:
            ovf = __builtin_mul_overflow(a->u, b->u, &r);
            break;
        case OP_DIV:
        case OP_MOD:
            if (b->u == 0)
                return s_err(c, op == OP_DIV ? "division by zero" : "modulus by zero");
            r = op == OP_DIV ? a->u / b->u : a->u % b->u;
            break;
        }
        return ovf ? s_err(c, "unsigned integer overflow") : (val_t){.k = V_UINT, .u = r};
    }
    if (a->k == V_DOUBLE && b->k == V_DOUBLE && op != OP_MOD) {
        double r = op == OP_ADD   ? a->d + b->d
                   : op == OP_SUB ? a->d - b->d
                   : op == OP_MUL ? a->d * b->d
                                  : a->d / b->d;
        return (val_t){.k = V_DOUBLE, .d = r};
    }
    if (op == OP_ADD && a->k == V_STR && b->k == V_STR) {
        size_t n = s_slen(a) + s_slen(b);
        if (n > CEL_MAX_VALUE)
            return s_err(c, "string of %zu bytes exceeds the limit of %d", n, CEL_MAX_VALUE);
        char *s = malloc(n + 1);
        if (!s) {
            c->nomem = true;
            return s_err(c, "out of memory");
        }
        memcpy(s, s_str(a), s_slen(a));
        memcpy(s + s_slen(a), s_str(b), s_slen(b));
        val_t v = s_new_str(c, s, n);
        free(s);
        return v;
    }
    if (op == OP_ADD && a->k == V_LIST && b->k == V_LIST) {
        size_t n = json_array_size(a->j) + json_array_size(b->j);
        if (n > CEL_MAX_VALUE)
            return s_err(c, "list of %zu elements exceeds the limit of %d", n, CEL_MAX_VALUE);
        s_spend(c, (int64_t)n / 10 + 1);
        json_t *l = json_array();
        if (!l || json_array_extend(l, a->j) < 0 || json_array_extend(l, b->j) < 0) {
            json_decref(l);
            c->nomem = true;
            return s_err(c, "out of memory");
        }
        return (val_t){.k = V_LIST, .j = l};
    }
    return s_overload(c);
}

static val_t s_binop(ctx_t *c, const node_t *n)
{
    val_t a = s_eval(c, n->kid[0]);
    if (a.k == V_ERR)
        return a;
    val_t b = s_eval(c, n->kid[1]);
    if (b.k == V_ERR) {
        s_drop(&a);
        return b;
    }
    val_t r;
    switch (n->op) {
    case OP_EQ:
    case OP_NE: {
        bool eq = s_eq(c, &a, &b);
        r = c->over ? s_cost_err(c) : s_bool(n->op == OP_EQ ? eq : !eq);
        break;
    }
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        int cmp;
        if (s_is_num(a.k) && s_is_num(b.k)) {
            cmp = s_numcmp(&a, &b);
        } else if (a.k == V_STR && b.k == V_STR) {
            size_t la = s_slen(&a), lb = s_slen(&b);
            s_spend(c, (int64_t)(la < lb ? la : lb) / 10 + 1);
            int m = memcmp(s_str(&a), s_str(&b), la < lb ? la : lb);
            cmp = m < 0 ? -1 : m > 0 ? 1 : la < lb ? -1 : la > lb ? 1 : 0;
        } else if (a.k == V_BOOL && b.k == V_BOOL) {
            cmp = (int)a.b - (int)b.b;
        } else {
            r = s_overload(c);
            break;
        }
        bool res = cmp != 2 && (n->op == OP_LT   ? cmp < 0
                                : n->op == OP_LE ? cmp <= 0
                                : n->op == OP_GT ? cmp > 0
                                                 : cmp >= 0);
        r = s_bool(res);
        break;
    }
    case OP_IN:
        r = s_in(c, &a, &b);
        break;
    default:
        r = s_arith(c, n->op, &a, &b);
        break;
    }
    s_drop(&a);
    s_drop(&b);
    return r;
}

/* Formats a double as Go's strconv.FormatFloat(d, 'g', -1, 64), which cel-go's string() uses:
 * the shortest digits that round-trip, in %e form when the exponent is < -4 or >= 6. */
static void s_fmt_double(double d, char *out, size_t n)
{
    if (isnan(d)) {
        snprintf(out, n, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(out, n, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    int prec = 1;
    char e[64];
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    const char *x = strchr(e, 'e');
    long exp = x ? strtol(x + 1, NULL, 10) : 0;
    if (exp < -4 || exp >= 6) {
        // Go writes at least two exponent digits, as C does.
        snprintf(out, n, "%s", e);
        return;
    }
    int dec = prec - 1 - (int)exp;
    snprintf(out, n, "%.*f", dec > 0 ? dec : 0, d);
}

static val_t s_convert(ctx_t *c, int fn, const val_t *a)
{
    char tmp[64];
    switch (fn) {
    case F_INT:
        if (a->k == V_INT)
            return *a;
        if (a->k == V_UINT)
            return a->u > (uint64_t)INT64_MAX ? s_err(c, "integer overflow") : s_int((int64_t)a->u);
        if (a->k == V_DOUBLE) {
            if (!(a->d > -9223372036854775808.0 && a->d < 9223372036854775808.0))
                return s_err(c, "integer overflow");
            return s_int((int64_t)a->d);
        }
        if (a->k == V_STR) {
            char *end = NULL;
            const char *s = s_str(a);
            long long v = strtoll(s, &end, 10);
            if (!*s || *end || isspace((unsigned char)*s))
                return s_err(c, "strconv.ParseInt: parsing \"%s\": invalid syntax", s);
            return s_int(v);
        }
        return s_overload(c);
    case F_UINT:
        if (a->k == V_UINT)
            return *a;
        if (a->k == V_INT)
            return a->i < 0 ? s_err(c, "unsigned integer overflow")
                            : (val_t){.k = V_UINT, .u = (uint64_t)a->i};
        if (a->k == V_DOUBLE) {
            if (!(a->d > -1.0 && a->d < 18446744073709551616.0))
                return s_err(c, "unsigned integer overflow");
            return (val_t){.k = V_UINT, .u = (uint64_t)a->d};
        }
        if (a->k == V_STR) {
            char *end = NULL;
            const char *s = s_str(a);
            unsigned long long v = strtoull(s, &end, 10);
            if (!*s || *end || *s == '-' || isspace((unsigned char)*s))
                return s_err(c, "strconv.ParseUint: parsing \"%s\": invalid syntax", s);
            return (val_t){.k = V_UINT, .u = v};
        }
        return s_overload(c);
    case F_DOUBLE:
        if (a->k == V_DOUBLE)
            return *a;
        if (a->k == V_INT)
            return (val_t){.k = V_DOUBLE, .d = (double)a->i};
        if (a->k == V_UINT)
            return (val_t){.k = V_DOUBLE, .d = (double)a->u};
        if (a->k == V_STR) {
            char *end = NULL;
            const char *s = s_str(a);
            double v = strtod(s, &end);
            if (!*s || *end || isspace((unsigned char)*s))
                return s_err(c, "strconv.ParseFloat: parsing \"%s\": invalid syntax", s);
            return (val_t){.k = V_DOUBLE, .d = v};
        }
        return s_overload(c);
    default: // F_STRING
        if (a->k == V_STR)
            return *a;
        if (a->k == V_INT)
            snprintf(tmp, sizeof(tmp), "%lld", (long long)a->i);
        else if (a->k == V_UINT)
            snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)a->u);
        else if (a->k == V_DOUBLE)
            s_fmt_double(a->d, tmp, sizeof(tmp));
        else if (a->k == V_BOOL)
            snprintf(tmp, sizeof(tmp), "%s", a->b ? "true" : "false");
        else
            return s_overload(c);
        return s_new_str(c, tmp, strlen(tmp));
    }
}

static val_t s_call_fn(ctx_t *c, const node_t *n)
{
    val_t a[2] = {{.k = V_NULL}, {.k = V_NULL}};
    for (size_t k = 0; k < n->nargs && k < 2; k++) {
        a[k] = s_eval(c, n->args[k]);
        if (a[k].k == V_ERR) {
            val_t e = a[k];
            if (k == 1)
                s_drop(&a[0]);
            return e;
        }
    }
    val_t r;
    switch (n->op) {
    case F_SIZE:
        if (a[0].k == V_STR) {
            int64_t cps = 0;
            const char *s = s_str(&a[0]);
            for (size_t k = 0; k < s_slen(&a[0]); k++)
                cps += ((unsigned char)s[k] & 0xC0) != 0x80;
            s_spend(c, (int64_t)s_slen(&a[0]) / 10 + 1);
            r = s_int(cps);
        } else if (a[0].k == V_LIST) {
            r = s_int((int64_t)json_array_size(a[0].j));
        } else if (a[0].k == V_MAP) {
            r = s_int((int64_t)json_object_size(a[0].j));
        } else {
            r = s_overload(c);
        }
        break;
    case F_STARTS:
    case F_ENDS:
    case F_CONTAINS:
    case F_MATCHES: {
        if (a[0].k != V_STR || a[1].k != V_STR) {
            r = s_overload(c);
            break;
        }
        const char *s = s_str(&a[0]), *t = s_str(&a[1]);
        size_t sn = s_slen(&a[0]), tn = s_slen(&a[1]);
        s_spend(c, (int64_t)(sn + tn) / 10 + 1);
        if (n->op == F_STARTS) {
            r = s_bool(tn <= sn && memcmp(s, t, tn) == 0);
        } else if (n->op == F_ENDS) {
            r = s_bool(tn <= sn && memcmp(s + sn - tn, t, tn) == 0);
        } else if (n->op == F_CONTAINS) {
            r = s_bool(tn == 0 || memmem(s, sn, t, tn) != NULL);
        } else if (n->re) {
            r = s_bool(regexec(n->re, s, 0, NULL, 0) == 0);
        } else {
            regex_t re;
            int rc = regcomp(&re, t, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char why[128];
                regerror(rc, &re, why, sizeof(why));
                r = s_err(c, "invalid regular expression: %s", why);
            } else {
                r = s_bool(regexec(&re, s, 0, NULL, 0) == 0);
                regfree(&re);
            }
        }
        break;
    }
    case F_LOWER:
    case F_UPPER: {
        if (a[0].k != V_STR) {
            r = s_overload(c);
            break;
        }
        size_t sn = s_slen(&a[0]);
        char *s = malloc(sn + 1);
        if (!s) {
            c->nomem = true;
            r = s_err(c, "out of memory");
            break;
        }
        for (size_t k = 0; k < sn; k++) {
            unsigned char ch = (unsigned char)s_str(&a[0])[k];
            s[k] = (char)(n->op == F_LOWER ? tolower(ch) : toupper(ch));
        }
        r = s_new_str(c, s, sn);
        free(s);
        break;
    }
    case F_HASVALUE:
    case F_VALUE:
    case F_ORVALUE:
        if (a[0].k != V_OPT) {
            r = s_overload(c);
        } else if (n->op == F_HASVALUE) {
            r = s_bool(a[0].j != NULL);
        } else if (a[0].j) {
            r = s_from_json(a[0].j);
        } else if (n->op == F_VALUE) {
            r = s_err(c, "optional.none() dereference");
        } else {
            r = a[1];
            a[1].j = NULL;
        }
        break;
    default:
        r = s_convert(c, n->op, &a[0]);
        if (r.j == a[0].j)
            a[0].j = NULL; // handed over
        break;
    }
    s_drop(&a[0]);
    s_drop(&a[1]);
    return r;
}

static val_t s_list_lit(ctx_t *c, const node_t *n)
{
    json_t *l = json_array();
    if (!l) {
        c->nomem = true;
        return s_err(c, "out of memory");
    }
    for (size_t k = 0; k < n->nargs; k++) {
        val_t e = s_eval(c, n->args[k]);
        if (e.k == V_ERR) {
            json_decref(l);
            return e;
        }
        json_t *j = s_to_json(&e);
        s_drop(&e);
        if (!j) {
            json_decref(l);
            return s_err(c, "unsupported list element (kubesim's CEL keeps lists as JSON)");
        }
        json_array_append_new(l, j);
    }
    return (val_t){.k = V_LIST, .j = l};
}

static val_t s_map_lit(ctx_t *c, const node_t *n)
{
    json_t *m = json_object();
    if (!m) {
        c->nomem = true;
        return s_err(c, "out of memory");
    }
    for (size_t k = 0; k + 1 < n->nargs; k += 2) {
        val_t key = s_eval(c, n->args[k]);
        if (key.k == V_ERR) {
            json_decref(m);
            return key;
        }
        if (key.k != V_STR) {
            s_drop(&key);
            json_decref(m);
            return s_err(c, "unsupported map key type (kubesim's CEL keys maps by strings only)");
        }
        if (json_object_get(m, s_str(&key))) {
            val_t e = s_err(c, "Failed with repeated key");
            s_drop(&key);
            json_decref(m);
            return e;
        }
        val_t v = s_eval(c, n->args[k + 1]);
        json_t *j = v.k == V_ERR ? NULL : s_to_json(&v);
        if (!j) {
            s_drop(&key);
            json_decref(m);
            return v.k == V_ERR ? v : s_err(c, "unsupported map value");
        }
        s_drop(&v);
        json_object_set_new(m, s_str(&key), j);
        s_drop(&key);
    }
    return (val_t){.k = V_MAP, .j = m};
}

/* all, exists, exists_one, filter and map over a list's elements or a map's keys. */
static val_t s_comp(ctx_t *c, const node_t *n)
{
    val_t range = s_eval(c, n->kid[0]);
    if (range.k == V_ERR)
        return range;
    if (range.k != V_LIST && range.k != V_MAP) {
        s_drop(&range);
        return s_overload(c);
    }
    size_t count = range.k == V_LIST ? json_array_size(range.j) : json_object_size(range.j);
    void *it = range.k == V_MAP ? json_object_iter(range.j) : NULL;
    json_t *out = NULL;
    if (n->op == M_FILTER || n->op == M_MAP) {
        out = json_array();
        if (!out) {
            s_drop(&range);
            c->nomem = true;
            return s_err(c, "out of memory");
        }
    }
    val_t err = {.k = V_NULL};
    int64_t ones = 0;
    bool decided = false;
    for (size_t k = 0; k < count && !decided; k++) {
        val_t elem;
        if (range.k == V_LIST) {
            elem = s_from_json(json_array_get(range.j, k));
        } else {
            elem = (val_t){.k = V_STR, .j = json_string(json_object_iter_key(it))};
            it = json_object_iter_next(range.j, it);
        }
        if (!s_spend(c, 1)) {
            s_drop(&elem);
            break;
        }
        c->vars[n->i] = elem;
        bool skip = false;
        val_t r;
        if (n->op == M_MAP && n->kid[2]) {
            r = s_eval_bool(c, n->kid[1]);
            skip = r.k == V_BOOL && !r.b;
            if (r.k == V_BOOL && r.b)
                r = s_eval(c, n->kid[2]);
        } else if (n->op == M_MAP) {
            r = s_eval(c, n->kid[1]);
        } else {
            r = s_eval_bool(c, n->kid[1]);
        }
        if (r.k == V_ERR) {
            if (n->op == M_ALL || n->op == M_EXISTS) {
                if (err.k != V_ERR)
                    err = r;
                else
                    s_drop(&r);
            } else {
                s_drop(&err);
                err = r;
                decided = true;
            }
            r = (val_t){.k = V_NULL};
        } else if (n->op == M_ALL && !r.b) {
            decided = true;
        } else if (n->op == M_EXISTS && r.b) {
            decided = true;
        } else if (n->op == M_EXISTS_ONE) {
            ones += r.b;
        } else if (n->op == M_FILTER && r.b) {
            json_t *j = s_to_json(&elem);
            if (!j || json_array_append_new(out, j) < 0)
                c->nomem = true;
        } else if (n->op == M_MAP && !skip) {
            json_t *j = s_to_json(&r);
            if (!j) {
                s_drop(&err);
                err = s_err(c, "unsupported list element (kubesim's CEL keeps lists as JSON)");
                decided = true;
            } else if (json_array_append_new(out, j) < 0) {
                c->nomem = true;
            }
        }
        s_drop(&r);
        c->vars[n->i] = (val_t){.k = V_NULL};
        s_drop(&elem);
    }
    s_drop(&range);
    if (c->over) {
        s_drop(&err);
        json_decref(out);
        return s_cost_err(c);
    }
    bool is_decided = decided;
    if (err.k == V_ERR && !(is_decided && (n->op == M_ALL || n->op == M_EXISTS))) {
        json_decref(out);
        return err;
    }
    s_drop(&err);
    switch (n->op) {
    case M_ALL:
        return s_bool(!is_decided);
    case M_EXISTS:
        return s_bool(is_decided);
    case M_EXISTS_ONE:
        return s_bool(ones == 1);
    default:
        return (val_t){.k = V_LIST, .j = out};
    }
}

static val_t s_eval(ctx_t *c, const node_t *n)
{
    if (c->over || !s_spend(c, 1))
        return s_cost_err(c);
    switch (n->t) {
    case N_INT:
        return s_int(n->i);
    case N_UINT:
        return (val_t){.k = V_UINT, .u = n->u};
    case N_DOUBLE:
        return (val_t){.k = V_DOUBLE, .d = n->d};
    case N_STRING:
        return s_new_str(c, n->s, n->slen);
    case N_BOOL:
        return s_bool(n->b);
    case N_NULL:
        return (val_t){.k = V_NULL};
    case N_SELF:
        return s_from_json(c->env->self);
    case N_OLDSELF:
        if (c->env->optional_old_self) {
            val_t v = {.k = V_OPT, .j = json_incref((json_t *)c->env->old_self)};
            return v;
        }
        if (!c->env->old_self)
            return s_err(c, "no such attribute: oldSelf");
        return s_from_json(c->env->old_self);
    case N_VAR: {
        val_t v = c->vars[n->i];
        json_incref(v.j);
        return v;
    }
    case N_SELECT:
        return s_select(c, n, false);
    case N_HAS:
        return s_select(c, n, true);
    case N_INDEX:
        return s_index(c, n);
    case N_LIST:
        return s_list_lit(c, n);
    case N_MAP:
        return s_map_lit(c, n);
    case N_NOT: {
        val_t v = s_eval_bool(c, n->kid[0]);
        if (v.k == V_BOOL)
            v.b = !v.b;
        return v;
    }
    case N_NEG: {
        val_t v = s_eval(c, n->kid[0]);
        if (v.k == V_INT) {
            if (v.i == INT64_MIN)
                return s_err(c, "integer overflow");
            v.i = -v.i;
        } else if (v.k == V_DOUBLE) {
            v.d = -v.d;
        } else if (v.k != V_ERR) {
            s_drop(&v);
            return s_overload(c);
        }
        return v;
    }
    case N_BIN:
        return s_binop(c, n);
    case N_AND:
        return s_logic(c, n, true);
    case N_OR:
        return s_logic(c, n, false);
    case N_COND: {
        val_t cond = s_eval_bool(c, n->kid[0]);
        if (cond.k == V_ERR)
            return cond;
        return s_eval(c, n->kid[cond.b ? 1 : 2]);
    }
    case N_CALL:
        return s_call_fn(c, n);
    case N_COMP:
        return s_comp(c, n);
    }
    return s_overload(c);
}

int cel_eval(const cel_prog_t *p, cel_env_t *env, json_t **out, buf_t *err)
{
    *out = NULL;
    ctx_t c = {.env = env, .limit = env->limit > 0 ? env->limit : CEL_PER_CALL_LIMIT};
    val_t v = s_eval(&c, p->root);
    if (c.nomem) {
        s_drop(&v);
        return ERR_NOMEM;
    }
    if (c.over) {
        s_drop(&v);
        if (err)
            buf_puts(err, CEL_COST_MSG);
        return ERR_RANGE;
    }
    if (v.k == V_ERR) {
        if (err)
            buf_puts(err, json_string_value(v.j) ? json_string_value(v.j) : "error");
        s_drop(&v);
        return ERR_INVAL;
    }
    if (v.k == V_OPT) {
        *out = v.j ? v.j : json_null();
        return 0;
    }
    *out = s_to_json(&v);
    s_drop(&v);
    if (!*out) {
        if (err)
            buf_puts(err, "unsigned integer overflow");
        return ERR_INVAL;
    }
    return 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* One evaluator case: `want` is the result as compact JSON, "!msg" for an evaluation error
 * whose message starts with msg, or "#msg" for a compile error containing msg. */
typedef struct {
    const char *expr; /* the expression */
    const char *self; /* self as JSON */
    const char *old; /* oldSelf as JSON, or NULL */
    const char *want; /* what it gives */
} cel_case_t;

static const cel_case_t s_cases[] = {
    // literals
    {"1", "null", NULL, "1"},
    {"-9223372036854775808", "null", NULL, "-9223372036854775808"},
    {"9223372036854775808", "null", NULL, "#invalid int literal"},
    {"0x1F + 1", "null", NULL, "32"},
    {"3u", "null", NULL, "3"},
    {"1.5 + 2.25", "null", NULL, "3.75"},
    {"1e3 == 1000.0", "null", NULL, "true"},
    {"'a\\tb\\x41\\u00e9\\101\\'\\\\'", "null", NULL, "\"a\\tbA\u00e9A'\\\\\""},
    {"r'a\\n'", "null", NULL, "\"a\\\\n\""},
    {"\"\"\"x'y\"\"\"", "null", NULL, "\"x'y\""},
    {"[1, 'a', true, null, [2]]", "null", NULL, "[1,\"a\",true,null,[2]]"},
    {"{'a': 1, 'b': [true]}", "null", NULL, "{\"a\":1,\"b\":[true]}"},
    {"{'a': 1, 'a': 2}", "null", NULL, "!Failed with repeated key"},
    {"{1: 2}", "null", NULL, "#unsupported map key type"},
    {"b'x'", "null", NULL, "#bytes literals are not supported"},
    {"'\\q'", "null", NULL, "#invalid escape sequence"},
    {"'abc", "null", NULL, "#token recognition error"},
    // self, selection, index, has
    {"self.a.b", "{\"a\":{\"b\":7}}", NULL, "7"},
    {"self.a.c", "{\"a\":{\"b\":7}}", NULL, "!no such key: c"},
    {"self['a']['b']", "{\"a\":{\"b\":7}}", NULL, "7"},
    {"self.l[1]", "{\"l\":[4,5]}", NULL, "5"},
    {"self.l[2]", "{\"l\":[4,5]}", NULL, "!index out of bounds: 2"},
    {"self.l[-1]", "{\"l\":[4,5]}", NULL, "!index out of bounds: -1"},
    {"has(self.a)", "{\"a\":1}", NULL, "true"},
    {"has(self.b)", "{\"a\":1}", NULL, "false"},
    {"has(self.a.x)", "{\"a\":{\"x\":null}}", NULL, "true"},
    {"has(self)", "{}", NULL, "#invalid argument to has() macro"},
    {"self.s.x", "{\"s\":\"str\"}", NULL, "!no such overload"},
    // size, in
    {"size(self) + self.size()", "\"h\u00e9llo\"", NULL, "10"},
    {"size([1,2,3]) == 3 && size({'a':1}) == 1", "null", NULL, "true"},
    {"size(1)", "null", NULL, "!no such overload"},
    {"self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']",
     "\"kueue.x-k8s.io/multikueue\"", NULL, "true"},
    {"self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']", "\"other\"", NULL,
     "false"},
    {"'a' in {'a': 1}", "null", NULL, "true"},
    {"2 in [1.0, 2.0]", "null", NULL, "true"},
    // comparisons across numeric types, strings, bools
    {"1 == 1.0 && 1u == 1 && 2 > 1u && 1.5 < 2 && -1 < 0u", "null", NULL, "true"},
    {"'abc' < 'abd' && 'ab' < 'abc' && !('b' <= 'a') && false < true", "null", NULL, "true"},
    {"'a' == 1", "null", NULL, "false"},
    {"[1, [2]] == [1.0, [2u]] && {'a': 1} != {'a': 2}", "null", NULL, "true"},
    {"'a' < 1", "null", NULL, "!no such overload"},
    {"self == oldSelf", "\"x\"", "\"x\"", "true"},
    {"self == oldSelf", "\"x\"", "\"y\"", "false"},
    {"self == oldSelf", "{\"a\":[1,{\"b\":2}]}", "{\"a\":[1,{\"b\":2}]}", "true"},
    {"self == null", "null", NULL, "true"},
    // logic and CEL's commutative errors
    {"!(has(self.jobStatus) && has(self.jobDeploymentStatus))", "{\"jobStatus\":\"FAILED\"}", NULL,
     "true"},
    {"self.x || true", "{}", NULL, "true"},
    {"true || self.x", "{}", NULL, "true"},
    {"self.x && false", "{}", NULL, "false"},
    {"self.x || false", "{}", NULL, "!no such key: x"},
    {"false || self.x", "{}", NULL, "!no such key: x"},
    {"1 || true", "null", NULL, "true"},
    {"1 && true", "null", NULL, "!no such overload"},
    {"!1", "null", NULL, "!no such overload"},
    {"self.a ? 'y' : 'n'", "{\"a\":false}", NULL, "\"n\""},
    {"1 ? 2 : 3", "null", NULL, "!no such overload"},
    {"false ? 1 : true ? 2 : 3", "null", NULL, "2"},
    {"true ? false ? 1 : 2 : 3", "null", NULL, "#Syntax error"},
    // arithmetic
    {"7 / 2 * 2 + 7 % 2 - 1", "null", NULL, "6"},
    {"9223372036854775807 + 1", "null", NULL, "!integer overflow"},
    {"-self", "-9223372036854775808", NULL, "!integer overflow"},
    {"1 / 0", "null", NULL, "!division by zero"},
    {"1 % 0", "null", NULL, "!modulus by zero"},
    {"0u - 1u", "null", NULL, "!unsigned integer overflow"},
    {"1 + 1.0", "null", NULL, "!no such overload"},
    {"'ab' + 'cd'", "null", NULL, "\"abcd\""},
    {"[1] + [2, 3]", "null", NULL, "[1,2,3]"},
    {"-(1.5)", "null", NULL, "-1.5"},
    // strings
    {"self.startsWith('ray') && self.endsWith('.io') && self.contains('y.i')", "\"ray.io\"", NULL,
     "true"},
    {"self.matches('^[a-z]+[.]io$') && !self.matches('^x')", "\"ray.io\"", NULL, "true"},
    {"self.matches(oldSelf)", "\"abc\"", "\"b+\"", "true"},
    {"matches(self, '[')", "\"abc\"", NULL, "#invalid regular expression"},
    {"self.matches(oldSelf)", "\"abc\"", "\"[\"", "!invalid regular expression"},
    {"'AbC'.lowerAscii() + 'x'.upperAscii()", "null", NULL, "\"abcX\""},
    {"self.startsWith(1)", "\"a\"", NULL, "!no such overload"},
    // conversions
    {"string(1) + string(2u) + string(true) + string(1.5) + string(1e6) + string(123456.0)", "null",
     NULL, "\"12true1.51e+06123456\""},
    {"int('12') + int(2.9) + int(3u)", "null", NULL, "17"},
    {"int('x')", "null", NULL, "!strconv.ParseInt"},
    {"uint(-1)", "null", NULL, "!unsigned integer overflow"},
    {"double(1) / 4.0", "null", NULL, "0.25"},
    // macros
    {"self.all(x, x > 0)", "[1,2,3]", NULL, "true"},
    {"self.all(x, x > 1)", "[1,2,3]", NULL, "false"},
    {"self.exists(x, x == 2)", "[1,2,3]", NULL, "true"},
    {"self.exists_one(x, x > 1)", "[1,2,3]", NULL, "false"},
    {"self.filter(x, x % 2 == 1)", "[1,2,3]", NULL, "[1,3]"},
    {"self.map(x, x * 10)", "[1,2,3]", NULL, "[10,20,30]"},
    {"self.map(x, x > 1, x * 10)", "[1,2,3]", NULL, "[20,30]"},
    {"self.all(k, self[k] > 0)", "{\"a\":1,\"b\":2}", NULL, "true"},
    {"self.all(x, x.all(y, y < 5))", "[[1],[2,3]]", NULL, "true"},
    {"self.all(x, x > 0)", "[1,\"a\",0]", NULL, "false"},
    {"self.exists(x, x > 0)", "[\"a\",1]", NULL, "true"},
    {"self.all(x, x > 0)", "[1,\"a\"]", NULL, "!no such overload"},
    {"self.all(1, true)", "[]", NULL, "#argument must be a simple name"},
    {"x", "null", NULL, "#undeclared reference to 'x' (in container '')"},
    // optionalOldSelf
    {"!oldSelf.hasValue() || self == oldSelf.value()", "1", NULL, "true"},
    {"oldSelf.orValue(5) == 5", "1", NULL, "true"},
    {"oldSelf.value()", "1", NULL, "!optional.none() dereference"},
    // unsupported and malformed
    {"self.foo()", "null", NULL, "#undeclared reference to 'foo' (in container '')"},
    {"quantity('1Gi')", "null", NULL, "#undeclared reference to 'quantity'"},
    {"size(1, 2)", "null", NULL, "#found no matching overload for 'size'"},
    {"1 +", "null", NULL, "#Syntax error"},
    {"(1", "null", NULL, "#Syntax error"},
    {"1 2", "null", NULL, "#extraneous input '2'"},
    {"", "null", NULL, "#Syntax error"},
    {"@", "null", NULL, "#token recognition error"},
};

static int s_run_case(const cel_case_t *tc, bool optional_old, bool verbose)
{
    int failed = 0;
    cel_prog_t *p = NULL;
    buf_t err;
    buf_init(&err, 4096);
    int rc = cel_compile(tc->expr, &p, &err);
    if (tc->want[0] == '#') {
        CHECK(rc == ERR_INVAL && strstr(buf_str(&err), tc->want + 1));
    } else if (rc != 0) {
        CHECK(rc == 0);
    } else {
        json_t *self = json_loads(tc->self, JSON_DECODE_ANY, NULL);
        json_t *old = tc->old ? json_loads(tc->old, JSON_DECODE_ANY, NULL) : NULL;
        cel_env_t env = {.self = self, .old_self = old, .optional_old_self = optional_old};
        json_t *out = NULL;
        rc = cel_eval(p, &env, &out, &err);
        if (tc->want[0] == '!') {
            CHECK(rc == ERR_INVAL &&
                  strncmp(buf_str(&err), tc->want + 1, strlen(tc->want + 1)) == 0);
        } else {
            char *got = out ? json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            CHECK(rc == 0 && got && strcmp(got, tc->want) == 0);
            if (verbose || !got || strcmp(got, tc->want) != 0)
                printf("  %s -> %s\n", tc->expr, got ? got : buf_str(&err));
            free(got);
        }
        CHECK(env.cost > 0);
        json_decref(out);
        json_decref(self);
        json_decref(old);
    }
    if (failed)
        printf("  case %s (want %s): rc %d, %s\n", tc->expr, tc->want, rc, buf_str(&err));
    buf_free(&err);
    cel_free(p);
    return failed;
}

static int s_test_chain(const char *const *names, const size_t *pos, size_t n, void *arg)
{
    buf_t *b = arg;
    for (size_t k = 0; k < n; k++)
        buf_printf(b, "%s%s", k ? "." : "", names[k]);
    buf_printf(b, "@%zu ", n ? pos[n - 1] : 0);
    return 0;
}

int cel_test(bool verbose)
{
    int failed = 0;
    for (size_t k = 0; k < sizeof(s_cases) / sizeof(s_cases[0]); k++) {
        bool opt = strstr(s_cases[k].expr, "oldSelf.") != NULL &&
                   strstr(s_cases[k].expr, "matches") == NULL;
        failed += s_run_case(&s_cases[k], opt, verbose);
    }

    // Malformed input: every prefix of every case, and each with one byte changed, compiles or
    // fails cleanly, and what compiles evaluates to a value or an error (ASan/UBSan builds check
    // there is no bad access on the way).
    json_t *doc = json_loads("{\"a\":{\"b\":[1,\"x\",{\"c\":null}]},\"s\":\"ray.io\"}", 0, NULL);
    static const char flips[] = "()[]{}.,:?!'\"\\-+*/%<=>&|0u9a_ \n";
    uint32_t rng = 12345;
    size_t compiled = 0;
    for (size_t k = 0; k < sizeof(s_cases) / sizeof(s_cases[0]); k++) {
        const char *src = s_cases[k].expr;
        size_t n = strlen(src);
        for (size_t cut = 0; cut <= n; cut++) {
            for (int variant = 0; variant < 3; variant++) {
                char text[512];
                size_t len = cut < sizeof(text) - 1 ? cut : sizeof(text) - 1;
                memcpy(text, src, len);
                text[len] = '\0';
                if (variant && len) {
                    rng = rng * 1103515245u + 12345u;
                    text[(rng >> 8) % len] = flips[(rng >> 16) % (sizeof(flips) - 1)];
                }
                cel_prog_t *q = NULL;
                buf_t e;
                buf_init(&e, 4096);
                int rc = cel_compile(text, &q, &e);
                CHECK((rc == 0) == (q != NULL));
                CHECK(rc == 0 || e.len > 0);
                if (q) {
                    compiled++;
                    cel_env_t env = {
                        .self = doc, .old_self = doc, .optional_old_self = variant == 2};
                    json_t *res = NULL;
                    rc = cel_eval(q, &env, &res, &e);
                    CHECK(rc == 0 || rc == ERR_INVAL || rc == ERR_RANGE);
                    CHECK((rc == 0) == (res != NULL));
                    json_decref(res);
                }
                cel_free(q);
                buf_free(&e);
            }
        }
    }
    CHECK(compiled > 100);
    json_decref(doc);

    // cel-go's report: position, source line and caret.
    cel_prog_t *p = NULL;
    buf_t err;
    buf_init(&err, 4096);
    CHECK(cel_compile("self.x + foo", &p, &err) == ERR_INVAL && !p);
    CHECK(strcmp(buf_str(&err), "ERROR: <input>:1:10: undeclared reference to 'foo' (in "
                                "container '')\n | self.x + foo\n | .........^") == 0);
    buf_reset(&err);

    // Field selection chains, for the schema check.
    CHECK(cel_compile("self.a.b + oldSelf.c[0].d > 0 && has(self.e.f) && self.l.all(x, x.y)", &p,
                      &err) == 0);
    buf_t chains;
    buf_init(&chains, 1024);
    CHECK(cel_fields(p, s_test_chain, &chains) == 0);
    if (verbose)
        printf("  chains: %s\n", buf_str(&chains));
    CHECK(strcmp(buf_str(&chains), "a.b@6 c@18 e.f@43 l@54 ") == 0);
    buf_free(&chains);
    cel_free(p);
    p = NULL;

    // Transition rules are recognised.
    CHECK(cel_compile("self == oldSelf", &p, &err) == 0 && cel_uses_old_self(p));
    cel_free(p);
    CHECK(cel_compile("self == 'x'", &p, &err) == 0 && !cel_uses_old_self(p));
    cel_free(p);
    p = NULL;

    // Bounds: source length, nesting depth, AST height, cost.
    char *big = malloc(CEL_MAX_SOURCE + 2);
    CHECK(big != NULL);
    if (big) {
        memset(big, '1', CEL_MAX_SOURCE + 1);
        big[CEL_MAX_SOURCE + 1] = '\0';
        CHECK(cel_compile(big, &p, &err) == ERR_TOOBIG && !p);
        buf_reset(&err);
        size_t n = 0;
        for (int k = 0; k < CEL_MAX_DEPTH + 1; k++)
            big[n++] = '(';
        big[n++] = '1';
        for (int k = 0; k < CEL_MAX_DEPTH + 1; k++)
            big[n++] = ')';
        big[n] = '\0';
        CHECK(cel_compile(big, &p, &err) == ERR_TOOBIG && !p);
        buf_reset(&err);
        n = 0;
        for (int k = 0; k < CEL_MAX_HEIGHT + 1; k++)
            big[n++] = '!';
        big[n++] = '1';
        big[n] = '\0';
        CHECK(cel_compile(big, &p, &err) == ERR_TOOBIG && !p);
        buf_reset(&err);
        free(big);
    }
    // A quadratic expression over a large list runs out of budget instead of running away.
    json_t *list = json_array();
    for (int k = 0; k < 2000; k++)
        json_array_append_new(list, json_integer(k));
    CHECK(cel_compile("self.all(x, self.all(y, x + y >= 0))", &p, &err) == 0);
    cel_env_t env = {.self = list};
    json_t *out = NULL;
    CHECK(p && cel_eval(p, &env, &out, &err) == ERR_RANGE && !out);
    CHECK(strcmp(buf_str(&err), "operation cancelled: actual cost limit exceeded") == 0);
    CHECK(env.cost > CEL_PER_CALL_LIMIT);
    cel_free(p);
    buf_reset(&err);
    // A string doubled until it passes the value bound is an error, not an allocation spree.
    CHECK(cel_compile("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21].map(i, "
                      "self + self + self + self + self + self + self + self)",
                      &p, &err) == 0);
    json_t *s = json_string("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    env = (cel_env_t){.self = s, .limit = 100};
    CHECK(p && cel_eval(p, &env, &out, &err) == ERR_RANGE);
    cel_free(p);
    json_decref(s);
    json_decref(list);
    buf_free(&err);
    return SELFTEST_RESULT("cel", verbose);
}
#endif /* RF_SELFTEST */
