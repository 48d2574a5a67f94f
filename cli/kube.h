/*
 * kube: blocking Kubernetes calls for a command-line tool, over common/k8s.
 *
 * rayfleetctl does one thing at a time, so each call here starts a k8s request on a private event
 * loop and runs that loop until the request ends or a deadline passes (the k8s client's retries
 * and rate limit apply inside). Services never use this module: they stay on their own loop.
 * main() calls curl_global_init() before kube_open().
 */
#ifndef RF_CLI_KUBE_H
#define RF_CLI_KUBE_H

#include "buf.h"
#include "k8s.h"

#include <jansson.h>
#include <stdint.h>

#define KUBE_CALL_TIMEOUT_MS 15000 /* default deadline of one call, retries included */
#define KUBE_MAX_RETRIES 3 /* k8s client retries: a CLI should fail fast */
#define KUBE_ERR_MAX 2048 /* longest error text kept */

typedef struct kube kube_t;

/* The verbs kube_call() knows. */
typedef enum {
    KUBE_GET, /* GET one object */
    KUBE_LIST, /* GET a collection */
    KUBE_CREATE /* POST `body` */
} kube_verb_t;

/* Opens a client for the kubeconfig at `path` (NULL: $KUBECONFIG or ~/.kube/config). Returns
 * NULL after appending a reason to `err`. */
kube_t *kube_open(const char *path, buf_t *err);

/* kube_open() with the kubeconfig's context `context` (NULL: its current-context). */
kube_t *kube_open_context(const char *path, const char *context, buf_t *err);

/* Closes the client and NULLs *k_p. NULL-safe. */
void kube_close(kube_t **k_p);

/* The server URL of the kubeconfig (borrowed). */
const char *kube_server(const kube_t *k);

/* Runs one request to its end, waiting at most `timeout_ms` (0: KUBE_CALL_TIMEOUT_MS). On 2xx
 * returns 0 and stores the response body in *out (caller json_decref()s; may be NULL when out is
 * NULL). Otherwise returns the k8s err (ERR_NOTFOUND, ERR_EXISTS, ERR_TIMEOUT, ...) and appends
 * "HTTP status: message" to `err` (may be NULL). */
int kube_call(kube_t *k, kube_verb_t verb, const k8s_res_t *res, const json_t *body,
              int64_t timeout_ms, json_t **out, buf_t *err);

#endif
