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
#include <time.h>

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

/* ---- issuing ---------------------------------------------------------------------------- */

static int s_fail(buf_t *err, int rc, const char *why)
{
    if (err)
        buf_puts(err, why);
    return rc;
}

static EVP_PKEY *s_pem_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return k;
}

static X509 *s_pem_cert(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *c = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return c;
}

/* The subjectAltName value of req into b ("DNS:a,IP:1.2.3.4"); false on a bad address. */
static bool s_issue_san(const tls_issue_req_t *req, buf_t *b)
{
    unsigned char addr[16];
    for (size_t i = 0; i < req->ndns; i++)
        if (buf_printf(b, "%sDNS:%s", buf_str(b)[0] ? "," : "", req->dns[i]) < 0)
            return false;
    for (size_t i = 0; i < req->nips; i++) {
        if (inet_pton(AF_INET, req->ips[i], addr) != 1 &&
            inet_pton(AF_INET6, req->ips[i], addr) != 1)
            return false;
        if (buf_printf(b, "%sIP:%s", buf_str(b)[0] ? "," : "", req->ips[i]) < 0)
            return false;
    }
    return true;
}

static int s_pem_out(X509 *c, EVP_PKEY *k, buf_t *cert_pem, buf_t *key_pem)
{
    BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_mem());
    int rc = ERR_NOMEM;
    if (bc && bk && PEM_write_bio_X509(bc, c) == 1 &&
        PEM_write_bio_PrivateKey(bk, k, NULL, NULL, 0, NULL, NULL) == 1) {
        char *data;
        long n = BIO_get_mem_data(bc, &data);
        rc = buf_append(cert_pem, data, (size_t)n);
        n = BIO_get_mem_data(bk, &data);
        if (rc == 0)
            rc = buf_append(key_pem, data, (size_t)n);
    }
    BIO_free(bc);
    BIO_free(bk);
    return rc;
}

int tls_issue(const tls_issue_req_t *req, buf_t *cert_pem, buf_t *key_pem, buf_t *err)
{
    if (req->ndns > TLS_ISSUE_NAMES_MAX || req->nips > TLS_ISSUE_NAMES_MAX)
        return s_fail(err, ERR_INVAL, "too many subject alternative names");
    buf_t san;
    buf_init(&san, 64 * 1024);
    if (!s_issue_san(req, &san)) {
        buf_free(&san);
        return s_fail(err, ERR_INVAL, "invalid IP address in ipAddresses");
    }
    X509 *signer = NULL;
    EVP_PKEY *signer_key = NULL;
    if (req->signer_cert) {
        signer = s_pem_cert(req->signer_cert);
        signer_key = req->signer_key ? s_pem_key(req->signer_key) : NULL;
        if (!signer || !signer_key || X509_check_private_key(signer, signer_key) != 1) {
            X509_free(signer);
            EVP_PKEY_free(signer_key);
            buf_free(&san);
            return s_fail(err, ERR_INVAL, "the signing CA's certificate or key is invalid");
        }
    }
    EVP_PKEY *key = NULL;
    if (req->alg == TLS_KEY_ECDSA)
        key = EVP_EC_gen(req->key_size == 384 ? "P-384" : "P-256");
    else
        key = EVP_RSA_gen(req->key_size > 0 ? (unsigned)req->key_size : 2048);
    X509 *c = key ? X509_new() : NULL;
    bool ok = c != NULL;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    ok = ok && RAND_bytes(serial, sizeof(serial)) == 1;
    serial[0] &= 0x7f;
    ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL;
    ok = ok && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) != NULL;
    BN_free(bn);
    ok = ok && X509_set_version(c, 2) == 1;
    ok = ok && ASN1_TIME_set(X509_getm_notBefore(c), (time_t)req->not_before) != NULL;
    ok = ok && ASN1_TIME_set(X509_getm_notAfter(c), (time_t)req->not_after) != NULL;
    ok = ok && X509_set_pubkey(c, key) == 1;
    if (ok && req->common_name && req->common_name[0])
        ok = X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_UTF8,
                                        (const unsigned char *)req->common_name, -1, -1, 0) == 1;
    X509 *iss = signer ? signer : c;
    ok = ok && X509_set_issuer_name(c, X509_get_subject_name(iss)) == 1;
    ok = ok && s_ext(c, iss, NID_subject_key_identifier, "hash");
    if (req->is_ca) {
        ok = ok && s_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
        ok = ok && s_ext(c, iss, NID_key_usage,
                         "critical,digitalSignature,keyEncipherment,"
                         "keyCertSign,cRLSign");
    } else {
        ok = ok && s_ext(c, iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    }
    if (signer)
        ok = ok && s_ext(c, iss, NID_authority_key_identifier, "keyid:always");
    if (buf_str(&san)[0]) {
        bool empty_subject = !req->common_name || !req->common_name[0];
        buf_t v;
        buf_init(&v, 64 * 1024);
        ok = ok && buf_printf(&v, "%s%s", empty_subject ? "critical," : "", buf_str(&san)) >= 0;
        ok = ok && s_ext(c, iss, NID_subject_alt_name, buf_str(&v));
        buf_free(&v);
    }
    ok = ok && X509_sign(c, signer_key ? signer_key : key, EVP_sha256()) > 0;
    int rc = ok ? s_pem_out(c, key, cert_pem, key_pem) : ERR_NOMEM;
    if (!ok && err)
        buf_puts(err, "cannot generate the certificate");
    X509_free(c);
    EVP_PKEY_free(key);
    X509_free(signer);
    EVP_PKEY_free(signer_key);
    buf_free(&san);
    return rc;
}

int tls_verify_pem(const char *cert_pem, const char *ca_pem, int64_t at, buf_t *err)
{
    X509 *c = s_pem_cert(cert_pem), *ca = s_pem_cert(ca_pem);
    int rc = ERR_INVAL;
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *vc = X509_STORE_CTX_new();
    if (!c || !ca || !st || !vc) {
        if (err)
            buf_puts(err, "unparsable certificate");
        goto out;
    }
    X509_STORE_add_cert(st, ca);
    if (X509_STORE_CTX_init(vc, st, c, NULL) != 1)
        goto out;
    if (at > 0)
        X509_STORE_CTX_set_time(vc, 0, (time_t)at);
    if (X509_verify_cert(vc) == 1) {
        rc = 0;
    } else {
        rc = ERR_TLS;
        if (err)
            buf_puts(err, X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)));
    }
out:
    X509_STORE_CTX_free(vc);
    X509_STORE_free(st);
    X509_free(c);
    X509_free(ca);
    return rc;
}

bool tls_pem_has_san(const char *cert_pem, const char *name)
{
    X509 *c = s_pem_cert(cert_pem);
    if (!c)
        return false;
    unsigned char addr[16];
    bool ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
    bool ok = ip ? X509_check_ip_asc(c, name, 0) == 1
                 : X509_check_host(c, name, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1;
    X509_free(c);
    return ok;
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
    /* Issuing: a self-signed CA, a leaf signed by it; the leaf verifies and lists its SANs. */
    buf_t cc, ck, lc, lk, e;
    buf_init(&cc, 1 << 16);
    buf_init(&ck, 1 << 16);
    buf_init(&lc, 1 << 16);
    buf_init(&lk, 1 << 16);
    buf_init(&e, 1024);
    int64_t now = (int64_t)time(NULL);
    tls_issue_req_t rq = {.common_name = "ray-ca",
                          .is_ca = true,
                          .not_before = now,
                          .not_after = now + 86400,
                          .alg = TLS_KEY_ECDSA};
    CHECK(tls_issue(&rq, &cc, &ck, &e) == 0);
    const char *dns[] = {"localhost", "h.ns.svc.cluster.local"};
    const char *ips[] = {"127.0.0.1", "10.244.0.7"};
    tls_issue_req_t lr = {.dns = dns,
                          .ndns = 2,
                          .ips = ips,
                          .nips = 2,
                          .not_before = now,
                          .not_after = now + 3600,
                          .signer_cert = buf_str(&cc),
                          .signer_key = buf_str(&ck)};
    CHECK(tls_issue(&lr, &lc, &lk, &e) == 0 && strstr(buf_str(&lk), "PRIVATE KEY"));
    CHECK(tls_verify_pem(buf_str(&lc), buf_str(&cc), 0, NULL) == 0);
    CHECK(tls_verify_pem(buf_str(&cc), buf_str(&cc), 0, NULL) == 0);
    CHECK(tls_verify_pem(buf_str(&lc), buf_str(&cc), now + 7200, NULL) == ERR_TLS);
    CHECK(tls_pem_has_san(buf_str(&lc), "10.244.0.7") &&
          tls_pem_has_san(buf_str(&lc), "localhost"));
    CHECK(tls_pem_has_san(buf_str(&lc), "h.ns.svc.cluster.local"));
    CHECK(!tls_pem_has_san(buf_str(&lc), "10.244.0.8") && !tls_pem_has_san(buf_str(&lc), "x"));
    /* A leaf not from this CA does not verify against it. */
    buf_reset(&lc);
    buf_reset(&lk);
    lr.signer_cert = lr.signer_key = NULL;
    CHECK(tls_issue(&lr, &lc, &lk, &e) == 0);
    CHECK(tls_verify_pem(buf_str(&lc), buf_str(&cc), 0, NULL) == ERR_TLS);
    const char *bad[] = {"10.0.0.300"};
    lr.ips = bad;
    lr.nips = 1;
    CHECK(tls_issue(&lr, &lc, &lk, &e) == ERR_INVAL);
    lr.ips = ips;
    lr.signer_cert = buf_str(&cc);
    lr.signer_key = "junk";
    CHECK(tls_issue(&lr, &lc, &lk, &e) == ERR_INVAL);
    buf_free(&cc);
    buf_free(&ck);
    buf_free(&lc);
    buf_free(&lk);
    buf_free(&e);
    buf_free(&b);
    return SELFTEST_RESULT("tls", verbose);
}

#endif /* RF_SELFTEST */
