/*
 * tls: kubesim's throw-away certificate authority, made with OpenSSL libcrypto at start-up.
 *
 * tls_ca_new() generates an EC P-256 CA (self-signed, CA:TRUE), a server certificate for
 * 127.0.0.1 / localhost (plus the names given to tls_ca_new_sans()) signed by it, and a client
 * certificate (CN=kubesim-admin, O=system:masters) signed by it. The server SSL_CTX presents the
 * server certificate and asks clients for a certificate, verified against the CA but optional (so
 * bearer tokens work too); httpd tells the API layer whether a verified client certificate was
 * presented. Nothing is written to disk: the kubeconfig carries the PEMs base64-encoded.
 */
#ifndef RF_TLS_H
#define RF_TLS_H

#include "buf.h"

#include <stdbool.h>

/* OpenSSL's context type, declared here so this header does not pull in OpenSSL (whose err.h
 * defines an ERR_STATE type that collides with common/err.h). */
struct ssl_ctx_st;
typedef struct ssl_ctx_st SSL_CTX;

#define TLS_CERT_DAYS 365 /* validity of the generated certificates */

typedef struct tls_ca tls_ca_t;

/* Which PEM tls_ca_pem() returns. */
typedef enum {
    TLS_PEM_CA = 0, /* the CA certificate (certificate-authority-data) */
    TLS_PEM_CLIENT_CERT, /* the client certificate (client-certificate-data) */
    TLS_PEM_CLIENT_KEY /* the client private key (client-key-data) */
} tls_pem_t;

#define TLS_SANS_MAX 1024 /* bytes of extra subjectAltName entries */

/* Generates the CA, server and client certificates. Returns NULL on failure (logged). */
tls_ca_t *tls_ca_new(void);

/* The same with extra subjectAltName entries in the server certificate: `sans` is NULL or a
 * comma-separated list of host names and IP addresses ("kubesim,10.0.0.5"). Returns NULL on
 * failure (logged), e.g. when an entry is not a valid host name or address. */
tls_ca_t *tls_ca_new_sans(const char *sans);

/* Checks one subjectAltName entry (a DNS host name or an IPv4/IPv6 address). Returns true when
 * valid; tls_ca_new_sans() refuses the list otherwise. */
bool tls_san_valid(const char *name);

/* Checks a whole comma-separated --tls-san list as tls_ca_new_sans() will: every entry valid and
 * the list within TLS_SANS_MAX. */
bool tls_sans_valid(const char *sans);

/* Frees everything; NULLs *ca_p. NULL-safe. */
void tls_ca_destroy(tls_ca_t **ca_p);

/* The server SSL_CTX (owned by the CA object; valid until it is destroyed). */
SSL_CTX *tls_ca_server_ctx(tls_ca_t *ca);

/* Appends the PEM text of `which` to out. Returns 0, ERR_INVAL or the buffer's error. */
int tls_ca_pem(const tls_ca_t *ca, tls_pem_t which, buf_t *out);

/* Appends base64 (no line breaks) of data[len] to out. Returns 0 or the buffer's error. */
int tls_base64(const void *data, size_t len, buf_t *out);

/* ---- issuing (sim/certmgr: cert-manager's Certificates) ---- */

/* Key algorithm of an issued certificate. */
typedef enum {
    TLS_KEY_RSA = 0, /* RSA, `key_size` bits (0 = 2048), cert-manager's default */
    TLS_KEY_ECDSA /* ECDSA, `key_size` 256 (0) or 384 */
} tls_keyalg_t;

#define TLS_ISSUE_NAMES_MAX 64 /* dnsNames / ipAddresses per certificate */

/* One certificate to issue. Arrays are borrowed. */
typedef struct {
    const char *common_name; /* subject CN; NULL or "" = empty subject (the SAN is then critical) */
    bool is_ca; /* basicConstraints CA:TRUE, keyCertSign + cRLSign */
    const char *const *dns; /* subjectAltName DNS names */
    size_t ndns;
    const char *const *ips; /* subjectAltName IP addresses (v4 or v6 text) */
    size_t nips;
    int64_t not_before; /* validity, seconds since the epoch */
    int64_t not_after;
    tls_keyalg_t alg; /* private key algorithm */
    int key_size; /* see tls_keyalg_t; 0 = default */
    const char *signer_cert; /* PEM of the signing CA certificate; NULL = self-signed */
    const char *signer_key; /* PEM of the signing CA private key (with signer_cert) */
} tls_issue_req_t;

/* Generates a private key and an X.509 v3 certificate for `req` (random 127-bit serial, SHA-256,
 * subjectKeyIdentifier, authorityKeyIdentifier when signed by a CA, keyUsage digitalSignature +
 * keyEncipherment for leaves) and appends the PEM certificate to cert_pem and the PEM (PKCS#8)
 * key to key_pem. Returns 0, ERR_INVAL (bad IP address, bad signer PEM, signer key not matching,
 * a name list over TLS_ISSUE_NAMES_MAX) with a reason in `err` (may be NULL), or ERR_NOMEM. */
int tls_issue(const tls_issue_req_t *req, buf_t *cert_pem, buf_t *key_pem, buf_t *err);

/* Checks that `cert_pem` is signed by `ca_pem` (a chain of one: X509_verify_cert against the CA
 * alone, at time `at` seconds, 0 = now). Returns 0, ERR_TLS (does not verify; reason in err) or
 * ERR_INVAL (unparsable PEM). */
int tls_verify_pem(const char *cert_pem, const char *ca_pem, int64_t at, buf_t *err);

/* True when the certificate `cert_pem` lists `name` as a SAN: an IP address when it parses as
 * one, else a DNS name. False also when the PEM does not parse. */
bool tls_pem_has_san(const char *cert_pem, const char *name);

/* Self-test. */
int tls_test(bool verbose);

#endif
