/*
 * err: the one error enum of rayfleet.
 *
 * Functions in common/ return 0 (ERR_OK) on success or a negative err_t. err_str() names each
 * code in a short English phrase. Codes are stable: they appear in logs and audit rows.
 */
#ifndef RF_ERR_H
#define RF_ERR_H

#include <stdbool.h>

typedef enum {
    ERR_OK = 0,
    ERR_NOMEM = -1, /* an allocation failed */
    ERR_INVAL = -2, /* an argument or input is invalid */
    ERR_IO = -3, /* an operating-system I/O call failed (errno kept by the caller) */
    ERR_TIMEOUT = -4, /* a deadline passed */
    ERR_CONNREFUSED = -5, /* the peer refused the connection */
    ERR_PROTO = -6, /* the peer broke a protocol (malformed frame, bad response) */
    ERR_TOOBIG = -7, /* an input exceeds its configured bound */
    ERR_BUSY = -8, /* a resource (database, queue) is busy; try later */
    ERR_NOTFOUND = -9, /* the thing asked for does not exist */
    ERR_EXISTS = -10, /* the thing to create exists already */
    ERR_CONFLICT = -11, /* an optimistic-concurrency check failed */
    ERR_PARSE = -12, /* a document (YAML, JSON, protobuf) could not be parsed */
    ERR_TLS = -13, /* a TLS handshake or verification failed */
    ERR_HTTP = -14, /* an HTTP transfer failed below the status line */
    ERR_CLOSED = -15, /* the object or connection was closed */
    ERR_AGAIN = -16, /* nothing to do now; call again later */
    ERR_GONE = -17, /* the state asked for has expired (HTTP 410) */
    ERR_UNAUTHORIZED = -18, /* credentials missing or rejected (HTTP 401) */
    ERR_FORBIDDEN = -19, /* credentials accepted but not allowed (HTTP 403) */
    ERR_THROTTLED = -20, /* the server asked us to slow down (HTTP 429) */
    ERR_SERVER = -21, /* the server failed (HTTP 5xx) */
    ERR_DB = -22, /* SQLite reported an error */
    ERR_STATE = -23, /* the call is not allowed in the object's current state */
    ERR_RANGE = -24, /* a number or index lies outside the range allowed */
    ERR_LAST = -25 /* one past the last code; not an error */
} err_t;

/* A short, static, English description of `code` (0 or negative). Never NULL. */
const char *err_str(int code);

/* The err_t for an HTTP status code: 0 for 2xx, else the closest code above. */
err_t err_from_http_status(long status);

#endif
