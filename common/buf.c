/*
 * buf: growable bounded byte buffer. Growth doubles the allocation (at least 64 bytes) and is
 * clamped to max + 1, the +1 being the terminating NUL.
 */
#include "buf.h"
#include "err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_free(buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Makes room for `n` more bytes plus the NUL. */
static int s_reserve(buf_t *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return ERR_TOOBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
    int rc = s_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return ERR_INVAL;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    int rc = s_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int buf_url_escape(buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t start_len = b->len;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~';
        char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
        int rc = plain ? buf_append(b, p, 1) : buf_append(b, e, 3);
        if (rc) {
            b->len = start_len;
            if (b->data)
                b->data[start_len] = '\0';
            return rc;
        }
    }
    return 0;
}

int buf_json_escape(buf_t *b, const char *s)
{
    size_t start_len = b->len;
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; /* bytes that need no escaping, appended in one go */
    for (;; p++) {
        unsigned char c = *p;
        bool plain = c >= 0x20 && c != '"' && c != '\\';
        if (plain) {
            run++;
            continue;
        }
        int rc = buf_append(b, p - run, run);
        run = 0;
        if (rc == 0 && c != '\0') {
            char esc[8];
            switch (c) {
            case '"':
                rc = buf_append(b, "\\\"", 2);
                break;
            case '\\':
                rc = buf_append(b, "\\\\", 2);
                break;
            case '\n':
                rc = buf_append(b, "\\n", 2);
                break;
            case '\r':
                rc = buf_append(b, "\\r", 2);
                break;
            case '\t':
                rc = buf_append(b, "\\t", 2);
                break;
            default:
                snprintf(esc, sizeof esc, "\\u%04x", c);
                rc = buf_append(b, esc, 6);
            }
        }
        if (rc) {
            b->len = start_len;
            if (b->data)
                b->data[b->len] = '\0';
            return rc;
        }
        if (c == '\0')
            return 0;
    }
}

char *buf_take(buf_t *b, size_t *len_out)
{
    char *p = b->data;
    size_t n = b->len;
    if (!p) {
        p = calloc(1, 1);
        n = 0;
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    if (len_out)
        *len_out = n;
    return p;
}

const char *buf_str(const buf_t *b)
{
    return b->data ? b->data : "";
}

#ifdef RF_SELFTEST
#include "selftest.h"

int buf_test(bool verbose)
{
    int failed = 0;
    buf_t b;
    buf_init(&b, 10);
    CHECK(strcmp(buf_str(&b), "") == 0);
    CHECK(buf_puts(&b, "hello") == 0);
    CHECK(b.len == 5 && strcmp(b.data, "hello") == 0);
    CHECK(buf_puts(&b, "world") == 0);
    CHECK(b.len == 10);
    // One byte over the bound fails and leaves the buffer untouched.
    CHECK(buf_puts(&b, "!") == ERR_TOOBIG);
    CHECK(b.len == 10 && strcmp(b.data, "helloworld") == 0);
    CHECK(buf_printf(&b, "%d", 1) == ERR_TOOBIG);
    buf_reset(&b);
    CHECK(b.len == 0 && strcmp(buf_str(&b), "") == 0);
    CHECK(buf_printf(&b, "%s-%d", "ab", 42) == 0 && strcmp(b.data, "ab-42") == 0);
    buf_free(&b);

    // A long printf goes through the second path.
    buf_init(&b, 100000);
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(buf_printf(&b, "<%s>", big) == 0 && b.len == 1001 && b.data[1000] == '>');
    size_t n = 0;
    char *t = buf_take(&b, &n);
    CHECK(t && n == 1001 && b.data == NULL && b.len == 0);
    free(t);
    t = buf_take(&b, &n);
    CHECK(t && n == 0 && t[0] == '\0');
    free(t);

    // JSON escaping, including control characters, and rollback when the bound is hit.
    CHECK(buf_json_escape(&b, "a\"b\\c\nd\x01") == 0);
    CHECK(strcmp(buf_str(&b), "a\\\"b\\\\c\\nd\\u0001") == 0);
    buf_free(&b);
    buf_init(&b, 64);
    CHECK(buf_url_escape(&b, "a/b c?d~e.f_g-h%") == 0);
    CHECK(strcmp(buf_str(&b), "a%2Fb%20c%3Fd~e.f_g-h%25") == 0);
    buf_free(&b);
    buf_init(&b, 8); /* over the bound: restored */
    CHECK(buf_puts(&b, "x") == 0 && buf_url_escape(&b, "//////") == ERR_TOOBIG);
    CHECK(strcmp(buf_str(&b), "x") == 0);
    buf_free(&b);
    buf_init(&b, 8);
    CHECK(buf_puts(&b, "ab") == 0);
    CHECK(buf_json_escape(&b, "\"\"\"\"") == ERR_TOOBIG);
    CHECK(b.len == 2 && strcmp(b.data, "ab") == 0);
    buf_free(&b);

    // A zero bound accepts only empty appends.
    buf_init(&b, 0);
    CHECK(buf_append(&b, "", 0) == 0);
    CHECK(buf_append(&b, "x", 1) == ERR_TOOBIG);
    buf_free(&b);
    return SELFTEST_RESULT("buf", verbose);
}

#endif /* RF_SELFTEST */
