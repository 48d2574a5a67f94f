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

/* Self-test. */
int tls_test(bool verbose);

#endif
