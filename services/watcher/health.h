/*
 * health: a tiny HTTP/1.1 responder on the event loop for /healthz and /readyz probes.
 *
 * common/ has no HTTP server yet (sim/httpd is kubesim's and lives in rfsim, which services must
 * not link), so the watcher carries this minimal one: a non-blocking listener, one bounded read
 * buffer per connection (HEALTH_MAX_REQUEST bytes of request line and headers; bodies are not
 * read), a GET/HEAD request line parsed, the answer asked of a callback, written without
 * blocking (the rest waits for the socket to become writable), then the connection is closed
 * ("Connection: close"). At most HEALTH_MAX_CONNS connections at once; a connection silent for
 * HEALTH_IDLE_MS is closed. Probes are tiny and rare, so nothing more is needed.
 */
#ifndef RF_WATCHER_HEALTH_H
#define RF_WATCHER_HEALTH_H

#include "buf.h"
#include "loop.h"

#include <stdbool.h>
#include <stddef.h>

#define HEALTH_MAX_REQUEST 4096 /* request line + headers read at most */
#define HEALTH_MAX_RESPONSE 65536 /* response body bound */
#define HEALTH_MAX_CONNS 64 /* connections served at once; more are closed at accept */
#define HEALTH_IDLE_MS 5000 /* a connection that sends nothing for this long is closed */
#define HEALTH_BACKLOG 16 /* listen() backlog */

typedef struct health health_t;

/* Answers one request: `path` is the request path (query removed). Appends the body (text) to
 * `body` and returns the HTTP status (200, 503, 404, ...). */
typedef int(health_fn)(const char *path, buf_t *body, void *arg);

/* Listens on host:port (port 0: ephemeral) on `loop`. Returns NULL (logged) when the address
 * cannot be bound, or out of memory. */
health_t *health_new(loop_t *loop, const char *host, int port, health_fn *fn, void *arg);

/* Closes the listener and every connection, frees, NULLs *h_p. NULL-safe. */
void health_destroy(health_t **h_p);

/* The bound port. */
int health_port(const health_t *h);

#endif
