/*
 * satoken: kubesim's service-account tokens (see satoken.h).
 */
/* OpenSSL's err.h typedefs ERR_STATE, which common/err.h uses as an enum constant: rename
 * OpenSSL's while its headers are read (as sim/tls.c). */
#define ERR_STATE ossl_ERR_STATE
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#undef ERR_STATE

#include "err.h"
#include "json.h"
#include "satoken.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SATOKEN_KEY_LEN 32 /* HMAC-SHA256 key bytes */
#define SATOKEN_MAX_LEN 8192 /* longest token accepted */

struct satoken {
    unsigned char key[SATOKEN_KEY_LEN]; /* the signing key */
};

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Base64url without padding of n bytes into a new string. */
static char *s_b64url(const unsigned char *in, size_t n)
{
    char *out = malloc(n / 3 * 4 + 5);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = s_b64[(v >> 18) & 63];
        out[o++] = s_b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = s_b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = s_b64[v & 63];
    }
    out[o] = '\0';
    return out;
}

/* Decodes n chars of base64url (no padding) into out (room for n bytes). Returns the length or
 * -1 when malformed. */
static long s_unb64url(const char *in, size_t n, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    long o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = memchr(s_b64, in[i], 64);
        if (!p || !in[i])
            return -1;
        acc = (acc << 6) | (uint32_t)(p - s_b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return n % 4 == 1 ? -1 : o;
}

satoken_t *satoken_new(void)
{
    satoken_t *t = calloc(1, sizeof(*t));
    if (t && RAND_bytes(t->key, sizeof(t->key)) != 1) {
        free(t);
        return NULL;
    }
    return t;
}

void satoken_destroy(satoken_t **tp)
{
    if (!tp || !*tp)
        return;
    volatile unsigned char *k = (*tp)->key;
    for (size_t i = 0; i < SATOKEN_KEY_LEN; i++)
        k[i] = 0;
    free(*tp);
    *tp = NULL;
}

/* HMAC-SHA256 of data under the key, base64url, into a new string. */
static char *s_sign(const satoken_t *t, const char *data, size_t n)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    if (!HMAC(EVP_sha256(), t->key, sizeof(t->key), (const unsigned char *)data, n, mac, &ml))
        return NULL;
    return s_b64url(mac, ml);
}

char *satoken_mint(const satoken_t *t, const char *ns, const char *name, const char *uid,
                   const json_t *audiences, int64_t now_s, int64_t seconds)
{
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return NULL;
    char jti[40];
    snprintf(jti, sizeof(jti),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10], rnd[11],
             rnd[12], rnd[13], rnd[14], rnd[15]);
    char sub[SATOKEN_FIELD_MAX * 2 + 32];
    snprintf(sub, sizeof(sub), "system:serviceaccount:%s:%s", ns, name);
    json_t *aud =
        json_array_size(audiences) ? json_deep_copy(audiences) : json_pack("[s]", SATOKEN_ISSUER);
    json_t *claims =
        json_pack("{s:o,s:I,s:I,s:s,s:s,s:{s:s,s:{s:s,s:s}},s:I,s:s}", "aud", aud, "exp",
                  (json_int_t)(now_s + seconds), "iat", (json_int_t)now_s, "iss", SATOKEN_ISSUER,
                  "jti", jti, "kubernetes.io", "namespace", ns, "serviceaccount", "name", name,
                  "uid", uid, "nbf", (json_int_t)now_s, "sub", sub);
    char *body = claims ? json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(claims);
    static const char hdr[] = "{\"alg\":\"HS256\",\"kid\":\"kubesim\",\"typ\":\"JWT\"}";
    char *h = s_b64url((const unsigned char *)hdr, sizeof(hdr) - 1);
    char *b = body ? s_b64url((const unsigned char *)body, strlen(body)) : NULL;
    free(body);
    char *out = NULL;
    if (h && b) {
        size_t n = strlen(h) + strlen(b) + 2;
        char *signing = malloc(n);
        if (signing) {
            snprintf(signing, n, "%s.%s", h, b);
            char *sig = s_sign(t, signing, n - 1);
            if (sig) {
                size_t m = n + strlen(sig) + 1;
                out = malloc(m);
                if (out)
                    snprintf(out, m, "%s.%s", signing, sig);
            }
            free(sig);
            free(signing);
        }
    }
    free(h);
    free(b);
    return out;
}

static void s_field(char *dst, const char *src)
{
    snprintf(dst, SATOKEN_FIELD_MAX, "%s", src);
}

int satoken_verify(const satoken_t *t, const char *token, int64_t now_s, satoken_claims_t *c)
{
    memset(c, 0, sizeof(*c));
    size_t n = strnlen(token, SATOKEN_MAX_LEN + 1);
    if (n > SATOKEN_MAX_LEN)
        return ERR_INVAL;
    const char *d1 = memchr(token, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)))
        return ERR_INVAL;
    char *sig = s_sign(t, token, (size_t)(d2 - token));
    bool ok = sig && strlen(sig) == strlen(d2 + 1);
    unsigned char diff = 0; /* constant time over the signature */
    for (size_t i = 0; ok && sig[i]; i++)
        diff |= (unsigned char)(sig[i] ^ d2[1 + i]);
    ok = ok && diff == 0;
    free(sig);
    if (!ok)
        return ERR_INVAL;
    size_t bl = (size_t)(d2 - d1 - 1);
    unsigned char *raw = malloc(bl + 1);
    long rl = raw ? s_unb64url(d1 + 1, bl, raw) : -1;
    json_t *j = rl >= 0 ? json_loadb((const char *)raw, (size_t)rl, 0, NULL) : NULL;
    free(raw);
    if (!j)
        return ERR_INVAL;
    int rc = ERR_INVAL;
    bool aud = false;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(j, "aud"), i, a)
    {
        aud |= json_is_string(a) && strcmp(json_string_value(a), SATOKEN_ISSUER) == 0;
    }
    const json_t *k = json_object_get(j, "kubernetes.io"); /* a key with a dot */
    const char *ns = jx_str(k, "namespace", NULL);
    const char *name = jx_str(k, "serviceaccount.name", NULL);
    const char *uid = jx_str(k, "serviceaccount.uid", NULL);
    if (aud && ns && name && uid) {
        s_field(c->ns, ns);
        s_field(c->name, name);
        s_field(c->uid, uid);
        c->exp = jx_int(j, "exp", 0);
        rc = now_s < jx_int(j, "nbf", INT64_MAX) || now_s >= c->exp ? ERR_TIMEOUT : 0;
    }
    json_decref(j);
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

int satoken_test(bool verbose)
{
    int failed = 0;
    satoken_t *t = satoken_new(), *t2 = satoken_new();
    CHECK(t && t2);
    int64_t now = 1700000000;
    char *tok = satoken_mint(t, "sys", "sa", "u-1", NULL, now, 3600);
    CHECK(tok && strncmp(tok, "eyJ", 3) == 0 && strchr(tok, '=') == NULL);
    satoken_claims_t c;
    CHECK(satoken_verify(t, tok, now + 10, &c) == 0);
    CHECK(strcmp(c.ns, "sys") == 0 && strcmp(c.name, "sa") == 0 && strcmp(c.uid, "u-1") == 0 &&
          c.exp == now + 3600);
    /* Expired, not yet valid, another key, a flipped byte, garbage. */
    CHECK(satoken_verify(t, tok, now + 3600, &c) == ERR_TIMEOUT);
    CHECK(satoken_verify(t, tok, now - 1, &c) == ERR_TIMEOUT);
    CHECK(satoken_verify(t2, tok, now, &c) == ERR_INVAL);
    char *bad = strdup(tok);
    char *dot = strchr(bad, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    CHECK(satoken_verify(t, bad, now, &c) == ERR_INVAL);
    free(bad);
    CHECK(satoken_verify(t, "a.b", now, &c) == ERR_INVAL);
    CHECK(satoken_verify(t, "a.b.c.d", now, &c) == ERR_INVAL);
    CHECK(satoken_verify(t, "", now, &c) == ERR_INVAL);
    /* The claims as kube-apiserver writes them. */
    const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    unsigned char raw[4096];
    long rl = s_unb64url(d1 + 1, (size_t)(d2 - d1 - 1), raw);
    json_t *j = rl > 0 ? json_loadb((const char *)raw, (size_t)rl, 0, NULL) : NULL;
    CHECK(j && strcmp(jx_str(j, "sub", ""), "system:serviceaccount:sys:sa") == 0 &&
          strcmp(jx_str(j, "iss", ""), SATOKEN_ISSUER) == 0 && jx_int(j, "iat", 0) == now &&
          strlen(jx_str(j, "jti", "")) == 36);
    json_decref(j);
    free(tok);
    /* Another audience only: refused by the API server. */
    json_t *aud = json_pack("[s]", "vault");
    tok = satoken_mint(t, "sys", "sa", "u-1", aud, now, 3600);
    CHECK(tok && satoken_verify(t, tok, now, &c) == ERR_INVAL);
    free(tok);
    json_decref(aud);
    /* base64url round trip at every length mod 3. */
    for (size_t n = 0; n < 7; n++) {
        const unsigned char in[] = "\xff\xfe\x00zq9";
        char *e = s_b64url(in, n);
        unsigned char back[16];
        CHECK(e && s_unb64url(e, strlen(e), back) == (long)n && memcmp(in, back, n) == 0);
        free(e);
    }
    satoken_destroy(&t);
    satoken_destroy(&t2);
    CHECK(t == NULL);
    return SELFTEST_RESULT("satoken", verbose);
}
#endif
