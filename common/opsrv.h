/*
 * opsrv: the operations endpoint every service serves on the loop: /healthz (and /livez),
 * /readyz and /metrics, over common/httpd.
 *
 * /healthz and /livez answer 200 "ok" while the loop turns. /readyz asks the readiness callback:
 * 0 reasons is 200 "ok", otherwise 503 "not ready:" followed by the reasons the callback wrote
 * (one per line). /metrics runs the registry's collectors (metrics_collect) and renders it
 * (METRICS_CONTENT_TYPE). Any other path is 404; a method other than GET or HEAD is 405 (with
 * "Allow: GET, HEAD"); HEAD gets the status and headers without a body. The query string is
 * ignored.
 *
 * Bounds are tight, as probes and scrapes are small and rare: OPSRV_MAX_HEADER bytes of request
 * header (431 past it), OPSRV_MAX_BODY bytes of body (413), at most max_conns connections (more
 * are closed at accept), idle connections closed after idle_ms, responses at most
 * OPSRV_MAX_RESPONSE bytes (500 past it). Connections are kept alive as HTTP/1.1 allows.
 */
#ifndef RF_OPSRV_H
#define RF_OPSRV_H

#include "buf.h"
#include "loop.h"
#include "metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPSRV_MAX_HEADER 8192 /* request line + headers */
#define OPSRV_MAX_BODY 4096 /* request body (probes send none) */
#define OPSRV_MAX_RESPONSE (8 << 20) /* longest response body */
#define OPSRV_DEFAULT_MAX_CONNS 64 /* connections at once */
#define OPSRV_DEFAULT_IDLE_MS 5000 /* idle connections are closed after this */

typedef struct opsrv opsrv_t;

/* Readiness: returns how many reasons there are not to be ready (0: ready) after appending one
 * line per reason to `why`, or a negative err_t (not ready). */
typedef int(opsrv_ready_fn)(void *arg, buf_t *why);

/* Settings. Zero fields take the defaults shown. */
typedef struct {
    const char *host; /* listen address (IPv4); NULL: 127.0.0.1 */
    int port; /* listen port; 0: ephemeral (see opsrv_port) */
    metrics_t *metrics; /* registry served at /metrics (borrowed); NULL: /metrics is 404 */
    opsrv_ready_fn *ready; /* readiness; NULL: always ready */
    void *ready_arg; /* its argument */
    size_t max_conns; /* connections at once; 0: OPSRV_DEFAULT_MAX_CONNS */
    int64_t idle_ms; /* idle close; 0: OPSRV_DEFAULT_IDLE_MS */
} opsrv_config_t;

/* Listens on host:port on `loop`. Returns NULL (logged) when the address cannot be bound, the
 * config is invalid, or out of memory. */
opsrv_t *opsrv_new(loop_t *loop, const opsrv_config_t *cfg);

/* Closes the listener and every connection, frees, NULLs *srv_p. NULL-safe. */
void opsrv_destroy(opsrv_t **srv_p);

/* The bound port. */
int opsrv_port(const opsrv_t *srv);

/* Self-test. */
int opsrv_test(bool verbose);

#endif
