/*
 * hash: SHA-1 through libcrypto, hex and base32hex (see hash.h).
 */
/* OpenSSL's err.h typedefs ERR_STATE, which common/err.h uses as an enum constant: rename
 * OpenSSL's while its headers are read (as sim/tls.c does). */
#define ERR_STATE ossl_ERR_STATE
#include <openssl/evp.h>
#undef ERR_STATE

#include "hash.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define S_B32_GROUP_IN 5 /* bytes per base32 group */
#define S_B32_GROUP_OUT 8 /* characters per base32 group */

int hash_sha1(const void *data, size_t n, unsigned char out[HASH_SHA1_LEN])
{
    if (!out || (!data && n > 0))
        return ERR_INVAL;
    unsigned int len = 0;
    if (!EVP_Digest(n ? data : "", n, out, &len, EVP_sha1(), NULL) || len != HASH_SHA1_LEN)
        return ERR_NOMEM;
    return 0;
}

size_t hash_base32hex_len(size_t n)
{
    return (n + S_B32_GROUP_IN - 1) / S_B32_GROUP_IN * S_B32_GROUP_OUT;
}

int hash_base32hex(const void *in, size_t n, hash_case_t c, char *out, size_t size)
{
    static const char upper[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
    static const char lower[] = "0123456789abcdefghijklmnopqrstuv";
    if (!out || (!in && n > 0))
        return ERR_INVAL;
    if (n > (SIZE_MAX - 1) / 2 || size < hash_base32hex_len(n) + 1) {
        if (size > 0)
            out[0] = '\0';
        return ERR_TOOBIG;
    }
    const char *abc = c == HASH_LOWER ? lower : upper;
    const unsigned char *p = in;
    size_t o = 0;
    for (size_t g = 0; g < n; g += S_B32_GROUP_IN) {
        size_t take = n - g < S_B32_GROUP_IN ? n - g : S_B32_GROUP_IN;
        uint64_t v = 0;
        for (size_t k = 0; k < S_B32_GROUP_IN; k++)
            v = v << 8 | (k < take ? p[g + k] : 0);
        /* 8 bits in give ceil(8k/5) characters; the rest of the group is padding */
        size_t chars = (take * 8 + 4) / 5;
        for (size_t k = 0; k < S_B32_GROUP_OUT; k++)
            out[o++] = k < chars ? abc[(v >> (5 * (7 - k))) & 31] : '=';
    }
    out[o] = '\0';
    return 0;
}

int hash_hex(const void *in, size_t n, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    if (!out || (!in && n > 0))
        return ERR_INVAL;
    if (n > (SIZE_MAX - 1) / 2 || size < 2 * n + 1) {
        if (size > 0)
            out[0] = '\0';
        return ERR_TOOBIG;
    }
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}

int hash_sha1_b32hex(const void *text, size_t n, hash_case_t c, char *out, size_t size)
{
    unsigned char d[HASH_SHA1_LEN];
    int rc = hash_sha1(text, n, d);
    return rc ? rc : hash_base32hex(d, sizeof(d), c, out, size);
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

static bool s_sha1_is(const void *data, size_t n, const char *want_hex)
{
    unsigned char d[HASH_SHA1_LEN];
    char h[2 * HASH_SHA1_LEN + 1];
    return hash_sha1(data, n, d) == 0 && hash_hex(d, sizeof(d), h, sizeof(h)) == 0 &&
           strcmp(h, want_hex) == 0;
}

static bool s_b32_is(const char *in, hash_case_t c, const char *want)
{
    char b[64];
    return hash_base32hex(in, strlen(in), c, b, sizeof(b)) == 0 && strcmp(b, want) == 0 &&
           strlen(b) == hash_base32hex_len(strlen(in));
}

int hash_test(bool verbose)
{
    int failed = 0;

    // SHA-1: FIPS 180 / RFC 3174 vectors.
    CHECK(s_sha1_is("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    CHECK(s_sha1_is(NULL, 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    CHECK(s_sha1_is("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(s_sha1_is(two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
    size_t mn = 1000000;
    char *million = malloc(mn);
    CHECK(million != NULL);
    if (million) {
        memset(million, 'a', mn);
        CHECK(s_sha1_is(million, mn, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
        free(million);
    }
    unsigned char d[HASH_SHA1_LEN];
    CHECK(hash_sha1(NULL, 1, d) == ERR_INVAL && hash_sha1("a", 1, NULL) == ERR_INVAL);

    // base32hex: RFC 4648 section 10, padding, both cases.
    CHECK(s_b32_is("", HASH_UPPER, ""));
    CHECK(s_b32_is("f", HASH_UPPER, "CO======"));
    CHECK(s_b32_is("fo", HASH_UPPER, "CPNG===="));
    CHECK(s_b32_is("foo", HASH_UPPER, "CPNMU==="));
    CHECK(s_b32_is("foob", HASH_UPPER, "CPNMUOG="));
    CHECK(s_b32_is("fooba", HASH_UPPER, "CPNMUOJ1"));
    CHECK(s_b32_is("foobar", HASH_UPPER, "CPNMUOJ1E8======"));
    CHECK(s_b32_is("foobar", HASH_LOWER, "cpnmuoj1e8======"));
    char b[HASH_SHA1_B32HEX_LEN + 1];
    CHECK(hash_base32hex("fooba", 5, HASH_UPPER, b, 8) == ERR_TOOBIG && b[0] == '\0');
    CHECK(hash_base32hex("fooba", 5, HASH_UPPER, b, 9) == 0 && strcmp(b, "CPNMUOJ1") == 0);
    CHECK(hash_base32hex(NULL, 1, HASH_UPPER, b, sizeof(b)) == ERR_INVAL);
    CHECK(hash_base32hex_len(20) == HASH_SHA1_B32HEX_LEN && hash_base32hex_len(0) == 0 &&
          hash_base32hex_len(6) == 16);

    // The spec-hash composition: base32hex(sha1("abc")) as the scheduler's Recreate hash uses it.
    CHECK(hash_sha1_b32hex("abc", 3, HASH_UPPER, b, sizeof(b)) == 0 &&
          strcmp(b, "L6CJSDI70Q0MLEHU4LONGK62DIED1M4T") == 0);
    CHECK(hash_sha1_b32hex("abc", 3, HASH_LOWER, b, sizeof(b)) == 0 &&
          strcmp(b, "l6cjsdi70q0mlehu4longk62died1m4t") == 0);
    CHECK(hash_sha1_b32hex("abc", 3, HASH_UPPER, b, HASH_SHA1_B32HEX_LEN) == ERR_TOOBIG);

    // hex
    char h[9];
    CHECK(hash_hex("\x00\xff\x1a", 3, h, sizeof(h)) == 0 && strcmp(h, "00ff1a") == 0);
    CHECK(hash_hex("abcd", 4, h, sizeof(h)) == 0 && strcmp(h, "61626364") == 0);
    CHECK(hash_hex("abcd", 4, h, 8) == ERR_TOOBIG && h[0] == '\0');
    CHECK(hash_hex("abcde", 5, h, sizeof(h)) == ERR_TOOBIG && h[0] == '\0');
    CHECK(hash_hex(NULL, 1, h, sizeof(h)) == ERR_INVAL);
    CHECK(hash_hex("", 0, h, 1) == 0 && h[0] == '\0');
    return SELFTEST_RESULT("hash", verbose);
}

#endif /* RF_SELFTEST */
