/*
 * satoken: kubesim's service-account tokens, what the TokenRequest API
 * (POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token) hands out and the authenticator
 * accepts: a JWT (HS256 under a key drawn at start, so tokens die with the kubesim that issued
 * them) with kube-apiserver's claims: iss, sub system:serviceaccount:<ns>:<name>, aud, iat,
 * nbf, exp, jti and kubernetes.io.{namespace, serviceaccount.{name, uid}}. The API server checks
 * the ServiceAccount still exists with that uid (a token dies with its ServiceAccount).
 */
#ifndef RF_SATOKEN_H
#define RF_SATOKEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SATOKEN_ISSUER "https://kubernetes.default.svc.cluster.local" /* iss, default audience */
#define SATOKEN_DEFAULT_SECONDS 3600 /* spec.expirationSeconds when absent */
#define SATOKEN_MIN_SECONDS 600 /* kube's lower bound (10 minutes) */
#define SATOKEN_MAX_SECONDS 4294967296LL /* kube's upper bound (2^32 seconds) */
#define SATOKEN_FIELD_MAX 256 /* namespace, name and uid bound */

typedef struct satoken satoken_t;

/* The claims of a verified token. */
typedef struct {
    char ns[SATOKEN_FIELD_MAX]; /* the ServiceAccount's namespace */
    char name[SATOKEN_FIELD_MAX]; /* its name */
    char uid[SATOKEN_FIELD_MAX]; /* its uid when the token was issued */
    int64_t exp; /* expiry, Unix seconds */
} satoken_claims_t;

/* A signer with a fresh random key; NULL on failure. */
satoken_t *satoken_new(void);

/* Frees it and NULLs *tp. NULL-safe. */
void satoken_destroy(satoken_t **tp);

/* Mints a token for ServiceAccount ns/name (uid) for `audiences` (a JSON string array; NULL or
 * empty = [SATOKEN_ISSUER]), valid from now_s for `seconds`. Returns a new string or NULL. */
char *satoken_mint(const satoken_t *t, const char *ns, const char *name, const char *uid,
                   const json_t *audiences, int64_t now_s, int64_t seconds);

/* Verifies a token's signature, time window (now_s) and audience (SATOKEN_ISSUER among aud).
 * Fills *c. Returns 0, or ERR_INVAL (malformed, wrong signature, wrong audience) or ERR_TIMEOUT
 * (outside its time window). */
int satoken_verify(const satoken_t *t, const char *token, int64_t now_s, satoken_claims_t *c);

/* Self-test. */
int satoken_test(bool verbose);

#endif
