/*
 * quote: Go's strconv.Quote (see quote.h).
 */
#include "quote.h"

#include <stdint.h>
#include <string.h>

#include "err.h"

#define S_RUNE_MAX 0x10FFFF
#define S_BMP_END 0x10000

/* Decodes one UTF-8 rune at p (Go's utf8.DecodeRuneInString). Returns its width, or 0 when p
 * does not start a valid encoding. */
static int s_decode(const unsigned char *p, uint32_t *r)
{
    if (p[0] < 0x80) {
        *r = p[0];
        return 1;
    }
    int n;
    uint32_t min;
    if ((p[0] & 0xE0) == 0xC0) {
        n = 2;
        *r = p[0] & 0x1F;
        min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        n = 3;
        *r = p[0] & 0x0F;
        min = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        n = 4;
        *r = p[0] & 0x07;
        min = S_BMP_END;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) /* also stops at the NUL of a cut sequence */
            return 0;
        *r = *r << 6 | (p[i] & 0x3F);
    }
    if (*r < min || *r > S_RUNE_MAX || (*r >= 0xD800 && *r <= 0xDFFF))
        return 0;
    return n;
}

/* unicode.IsPrint for the runes that occur in practice (see quote.h). */
static bool s_printable(uint32_t r)
{
    if (r < 0x20 || (r >= 0x7F && r <= 0xA0) || r == 0xAD || r == 0x1680 || r == 0x180E)
        return false;
    if ((r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) ||
        (r >= 0x205F && r <= 0x206F) || r == 0x3000 || r == 0xFEFF ||
        (r >= 0xFFF9 && r <= 0xFFFB) || r == 0xFFFE || r == 0xFFFF)
        return false;
    if ((r >= 0xE000 && r <= 0xF8FF) || r >= 0xF0000)
        return false;
    return true;
}

int quote_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int quote_go(buf_t *b, const char *s)
{
    if (!b || !s)
        return ERR_INVAL;
    int rc = buf_puts(b, "\"");
    const unsigned char *p = (const unsigned char *)s;
    while (*p && rc == 0) {
        uint32_t r;
        int n = s_decode(p, &r);
        if (n == 0) {
            rc = buf_printf(b, "\\x%02x", *p);
            p++;
            continue;
        }
        const char *esc = NULL;
        switch (r) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\a':
            esc = "\\a";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\v':
            esc = "\\v";
            break;
        default:
            break;
        }
        if (esc)
            rc = buf_puts(b, esc);
        else if (s_printable(r))
            rc = buf_append(b, p, (size_t)n);
        else if (r < 0x20 || r == 0x7F)
            rc = buf_printf(b, "\\x%02x", (unsigned)r);
        else if (r < S_BMP_END)
            rc = buf_printf(b, "\\u%04x", (unsigned)r);
        else
            rc = buf_printf(b, "\\U%08x", (unsigned)r);
        p += n;
    }
    return rc ? rc : buf_puts(b, "\"");
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

static bool s_is(const char *in, const char *want)
{
    buf_t b;
    buf_init(&b, 256);
    bool ok = quote_go(&b, in) == 0 && strcmp(buf_str(&b), want) == 0;
    if (!ok)
        printf("quote: %s gave %s, want %s\n", in, buf_str(&b), want);
    buf_free(&b);
    return ok;
}

int quote_test(bool verbose)
{
    int failed = 0;
    // {input, Go's fmt.Sprintf("%q", input)}
    static const char *const cases[][2] = {
        {"", "\"\""},
        {"abc", "\"abc\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        // Where selector.c and sim/schema.c drifted: Go writes \r, not \x0d.
        {"a\rb", "\"a\\rb\""},
        {"\a\b\f\n\t\v", "\"\\a\\b\\f\\n\\t\\v\""},
        {"\x01\x1f\x7f", "\"\\x01\\x1f\\x7f\""},
        {"'single' ok ~", "\"'single' ok ~\""},
        // Printable UTF-8 is kept; non-printable runes are \u escapes.
        {"h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
         "\"h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\""},
        {"\xc2\x85", "\"\\u0085\""},
        {"a\xc2\xa0"
         "b",
         "\"a\\u00a0b\""},
        {"\xe2\x80\x8b\xef\xbb\xbf\xe2\x80\xa8", "\"\\u200b\\ufeff\\u2028\""},
        {"\xf3\xb0\x80\x80", "\"\\U000f0000\""},
        // Invalid UTF-8: each bad byte is \xNN, decoding resumes after it.
        {"\xff", "\"\\xff\""},
        {"a\x80z", "\"a\\x80z\""},
        {"\xc3", "\"\\xc3\""},
        {"\xc0\xaf", "\"\\xc0\\xaf\""},
        {"\xed\xa0\x80", "\"\\xed\\xa0\\x80\""},
        {"\xf4\x90\x80\x80", "\"\\xf4\\x90\\x80\\x80\""},
        {"\xe6\x97"
         "x",
         "\"\\xe6\\x97x\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK(s_is(cases[i][0], cases[i][1]));
    // Arguments and the bound.
    buf_t b;
    buf_init(&b, 4);
    CHECK(quote_go(&b, "abcdef") == ERR_TOOBIG);
    CHECK(quote_go(NULL, "x") == ERR_INVAL && quote_go(&b, NULL) == ERR_INVAL);
    buf_free(&b);
    return SELFTEST_RESULT("quote", verbose);
}

#endif /* RF_SELFTEST */
