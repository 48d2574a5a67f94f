/*
 * tls: the generated CA and certificates. See tls.h.
 */
/* OpenSSL's err.h typedefs ERR_STATE, which common/err.h uses as an enum constant: rename
 * OpenSSL's while its headers are read. */
#define ERR_STATE ossl_ERR_STATE
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#undef ERR_STATE

#include "err.h"
#include "log.h"
#include "tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

struct tls_ca {
    EVP_PKEY *ca_key; /* CA private key */
    X509 *ca_cert; /* CA certificate */
    EVP_PKEY *srv_key; /* server private key */
    X509 *srv_cert; /* server certificate */
    EVP_PKEY *cli_key; /* client private key */
    X509 *cli_cert; /* client certificate */
    SSL_CTX *ctx; /* server context */
};

static bool s_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* A certificate for `key` named by cn/o, signed by issuer (NULL = self-signed). */
static X509 *s_cert(EVP_PKEY *key, const char *cn, const char *o, X509 *issuer,
                    EVP_PKEY *issuer_key, int kind, const char *san)
{
    X509 *c = X509_new();
    if (!c)
        return NULL;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    bool ok = RAND_bytes(serial, sizeof(serial)) == 1;
    serial[0] &= 0x7f;
    ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL;
    ok = ok && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) != NULL;
    BN_free(bn);
    ok = ok && X509_set_version(c, 2) == 1;
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(c), -3600) != NULL;
    ok = ok && X509_gmtime_adj(X509_getm_notAfter(c), (long)TLS_CERT_DAYS * 86400) != NULL;
    ok = ok && X509_set_pubkey(c, key) == 1;
    X509_NAME *name = X509_get_subject_name(c);
    if (ok && o)
        ok = X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)o, -1, -1,
                                        0) == 1;
    ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
                                          -1, 0) == 1;
    X509 *iss = issuer ? issuer : c;
    ok = ok && X509_set_issuer_name(c, X509_get_subject_name(iss)) == 1;
    if (kind == 0) {
        ok = ok && s_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
        ok = ok && s_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
        ok = ok && s_ext(c, iss, NID_subject_key_identifier, "hash");
    } else {
        ok = ok && s_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
        ok = ok && s_ext(c, iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        ok = ok && s_ext(c, iss, NID_ext_key_usage, kind == 1 ? "serverAuth" : "clientAuth");
        ok = ok && s_ext(c, iss, NID_authority_key_identifier, "keyid:always");
        if (kind == 1)
            ok = ok && s_ext(c, iss, NID_subject_alt_name, san);
    }
    ok = ok && X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(c);
        return NULL;
    }
    return c;
}

bool tls_san_valid(const char *name)
{
    unsigned char addr[16];
    size_t n = strlen(name);
    if (n == 0 || n > 253)
        return false;
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
        return true;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0 || name[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum(c) || (c == '-' && label > 0)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && name[n - 1] != '-';
}

/* The server certificate's subjectAltName value: 127.0.0.1, localhost and `sans`. */
static bool s_san_value(const char *sans, char *out, size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "IP:127.0.0.1,DNS:localhost");
    const char *p = sans ? sans : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        char name[256];
        if (n >= sizeof(name))
            return false;
        memcpy(name, p, n);
        name[n] = '\0';
        if (!tls_san_valid(name))
            return false;
        unsigned char addr[16];
        bool ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
        int w = snprintf(out + len, cap - len, ",%s:%s", ip ? "IP" : "DNS", name);
        if (w < 0 || (size_t)w >= cap - len)
            return false;
        len += (size_t)w;
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

bool tls_sans_valid(const char *sans)
{
    char san[TLS_SANS_MAX + 64];
    return s_san_value(sans, san, sizeof(san));
}

tls_ca_t *tls_ca_new(void)
{
    return tls_ca_new_sans(NULL);
}

tls_ca_t *tls_ca_new_sans(const char *sans)
{
    char san[TLS_SANS_MAX + 64];
    if (!s_san_value(sans, san, sizeof(san))) {
        log_error("tls: bad subjectAltName list (want host names or IP addresses, comma-separated)",
                  "sans", sans, NULL);
        return NULL;
    }
    tls_ca_t *ca = calloc(1, sizeof(*ca));
    if (!ca)
        return NULL;
    ca->ca_key = EVP_EC_gen("P-256");
    ca->srv_key = EVP_EC_gen("P-256");
    ca->cli_key = EVP_EC_gen("P-256");
    if (!ca->ca_key || !ca->srv_key || !ca->cli_key)
        goto fail;
    ca->ca_cert = s_cert(ca->ca_key, "kubesim-ca", NULL, NULL, NULL, 0, NULL);
    if (!ca->ca_cert)
        goto fail;
    ca->srv_cert = s_cert(ca->srv_key, "kubesim", NULL, ca->ca_cert, ca->ca_key, 1, san);
    ca->cli_cert =
        s_cert(ca->cli_key, "kubesim-admin", "system:masters", ca->ca_cert, ca->ca_key, 2, NULL);
    if (!ca->srv_cert || !ca->cli_cert)
        goto fail;
    ca->ctx = SSL_CTX_new(TLS_server_method());
    if (!ca->ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ca->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ca->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate(ca->ctx, ca->srv_cert) != 1 ||
        SSL_CTX_use_PrivateKey(ca->ctx, ca->srv_key) != 1 ||
        SSL_CTX_check_private_key(ca->ctx) != 1)
        goto fail;
    X509_STORE *store = SSL_CTX_get_cert_store(ca->ctx);
    if (X509_STORE_add_cert(store, ca->ca_cert) != 1)
        goto fail;
    /* Ask for a client certificate, verify it against the CA, but do not require one. */
    SSL_CTX_set_verify(ca->ctx, SSL_VERIFY_PEER, NULL);
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    if (names) {
        X509_NAME *n = X509_NAME_dup(X509_get_subject_name(ca->ca_cert));
        if (n && sk_X509_NAME_push(names, n) <= 0)
            X509_NAME_free(n);
        SSL_CTX_set_client_CA_list(ca->ctx, names);
    }
    return ca;
fail:
    log_error("tls: cannot generate certificates", NULL);
    tls_ca_destroy(&ca);
    return NULL;
}

void tls_ca_destroy(tls_ca_t **ca_p)
{
    if (!ca_p || !*ca_p)
        return;
    tls_ca_t *ca = *ca_p;
    SSL_CTX_free(ca->ctx);
    X509_free(ca->ca_cert);
    X509_free(ca->srv_cert);
    X509_free(ca->cli_cert);
    EVP_PKEY_free(ca->ca_key);
    EVP_PKEY_free(ca->srv_key);
    EVP_PKEY_free(ca->cli_key);
    free(ca);
    *ca_p = NULL;
}

SSL_CTX *tls_ca_server_ctx(tls_ca_t *ca)
{
    return ca->ctx;
}

int tls_ca_pem(const tls_ca_t *ca, tls_pem_t which, buf_t *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return ERR_NOMEM;
    int ok;
    switch (which) {
    case TLS_PEM_CA:
        ok = PEM_write_bio_X509(bio, ca->ca_cert);
        break;
    case TLS_PEM_CLIENT_CERT:
        ok = PEM_write_bio_X509(bio, ca->cli_cert);
        break;
    case TLS_PEM_CLIENT_KEY:
        ok = PEM_write_bio_PrivateKey(bio, ca->cli_key, NULL, NULL, 0, NULL, NULL);
        break;
    default:
        ok = 0;
    }
    int rc = ERR_INVAL;
    if (ok == 1) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        rc = buf_append(out, data, (size_t)n);
    }
    BIO_free(bio);
    return rc;
}

int tls_base64(const void *data, size_t len, buf_t *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        char q[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63],
                     i + 1 < len ? tbl[(v >> 6) & 63] : '=', i + 2 < len ? tbl[v & 63] : '='};
        int rc = buf_append(out, q, 4);
        if (rc)
            return rc;
    }
    return 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

int tls_test(bool verbose)
{
    int failed = 0;
    buf_t b;
    buf_init(&b, 1 << 16);
    CHECK(tls_base64("foobar", 6, &b) == 0 && strcmp(buf_str(&b), "Zm9vYmFy") == 0);
    buf_reset(&b);
    CHECK(tls_base64("fo", 2, &b) == 0 && strcmp(buf_str(&b), "Zm8=") == 0);
    buf_reset(&b);
    CHECK(tls_base64("f", 1, &b) == 0 && strcmp(buf_str(&b), "Zg==") == 0);
    tls_ca_t *ca = tls_ca_new();
    CHECK(ca != NULL);
    if (ca) {
        CHECK(tls_ca_server_ctx(ca) != NULL);
        buf_reset(&b);
        CHECK(tls_ca_pem(ca, TLS_PEM_CA, &b) == 0 && strstr(buf_str(&b), "BEGIN CERTIFICATE"));
        buf_reset(&b);
        CHECK(tls_ca_pem(ca, TLS_PEM_CLIENT_CERT, &b) == 0 &&
              strstr(buf_str(&b), "BEGIN CERTIFICATE"));
        buf_reset(&b);
        CHECK(tls_ca_pem(ca, TLS_PEM_CLIENT_KEY, &b) == 0 && strstr(buf_str(&b), "PRIVATE KEY"));
        CHECK(tls_ca_pem(ca, (tls_pem_t)9, &b) == ERR_INVAL);
        /* The client and server certificates verify against the CA. */
        X509_STORE *st = X509_STORE_new();
        X509_STORE_add_cert(st, ca->ca_cert);
        X509_STORE_CTX *vc = X509_STORE_CTX_new();
        X509_STORE_CTX_init(vc, st, ca->cli_cert, NULL);
        CHECK(X509_verify_cert(vc) == 1);
        X509_STORE_CTX_cleanup(vc);
        X509_STORE_CTX_init(vc, st, ca->srv_cert, NULL);
        CHECK(X509_verify_cert(vc) == 1);
        X509_STORE_CTX_free(vc);
        X509_STORE_free(st);
    }
    tls_ca_destroy(&ca);
    CHECK(ca == NULL);
    tls_ca_destroy(&ca);
    /* Extra names: the server certificate matches them (and still 127.0.0.1 / localhost). */
    CHECK(tls_san_valid("kubesim") && tls_san_valid("a-b.example.com") &&
          tls_san_valid("10.1.2.3") && tls_san_valid("::1"));
    CHECK(!tls_san_valid("") && !tls_san_valid("-a") && !tls_san_valid("a-") &&
          !tls_san_valid("a..b") && !tls_san_valid("a b") && !tls_san_valid("a_b"));
    ca = tls_ca_new_sans("kubesim,10.1.2.3");
    CHECK(ca != NULL);
    if (ca) {
        CHECK(X509_check_host(ca->srv_cert, "kubesim", 0, 0, NULL) == 1);
        CHECK(X509_check_host(ca->srv_cert, "localhost", 0, 0, NULL) == 1);
        CHECK(X509_check_host(ca->srv_cert, "other", 0, 0, NULL) == 0);
        CHECK(X509_check_ip_asc(ca->srv_cert, "10.1.2.3", 0) == 1);
        CHECK(X509_check_ip_asc(ca->srv_cert, "127.0.0.1", 0) == 1);
        CHECK(X509_check_ip_asc(ca->srv_cert, "10.1.2.4", 0) == 0);
    }
    tls_ca_destroy(&ca);
    CHECK(tls_ca_new_sans("kubesim,bad name") == NULL);
    CHECK(tls_ca_new_sans("kubesim,,x") == NULL);
    buf_free(&b);
    return SELFTEST_RESULT("tls", verbose);
}

#endif /* RF_SELFTEST */
