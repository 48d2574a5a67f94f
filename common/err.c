/*
 * err: names for the error codes of err.h, and the HTTP-status mapping.
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

static const char *const s_names[] = {
    "ok",           "out of memory",      "invalid argument",    "I/O error",
    "timed out",    "connection refused", "protocol error",      "too big",
    "busy",         "not found",          "already exists",      "conflict",
    "parse error",  "TLS error",          "HTTP transfer error", "closed",
    "try again",    "gone (expired)",     "unauthorized",        "forbidden",
    "throttled",    "server error",       "database error",      "not allowed in this state",
    "out of range",
};

const char *err_str(int code)
{
    if (code > 0 || code <= ERR_LAST)
        return "unknown error";
    return s_names[-code];
}

err_t err_from_http_status(long status)
{
    if (status >= 200 && status < 300)
        return ERR_OK;
    switch (status) {
    case 400:
    case 422:
        return ERR_INVAL;
    case 401:
        return ERR_UNAUTHORIZED;
    case 403:
        return ERR_FORBIDDEN;
    case 404:
        return ERR_NOTFOUND;
    case 409:
        return ERR_CONFLICT;
    case 410:
        return ERR_GONE;
    case 413:
        return ERR_TOOBIG;
    case 429:
        return ERR_THROTTLED;
    case 504:
        return ERR_TIMEOUT;
    default:
        return status >= 500 ? ERR_SERVER : ERR_PROTO;
    }
}

#ifdef RF_SELFTEST
#include "selftest.h"

int err_test(bool verbose)
{
    int failed = 0;
    CHECK(sizeof(s_names) / sizeof(s_names[0]) == (size_t)(-ERR_LAST));
    CHECK(strcmp(err_str(ERR_OK), "ok") == 0);
    CHECK(strcmp(err_str(ERR_NOMEM), "out of memory") == 0);
    CHECK(strcmp(err_str(ERR_STATE), "not allowed in this state") == 0);
    CHECK(strcmp(err_str(ERR_RANGE), "out of range") == 0);
    CHECK(strcmp(err_str(5), "unknown error") == 0);
    CHECK(strcmp(err_str(ERR_LAST), "unknown error") == 0);
    CHECK(strcmp(err_str(-1000), "unknown error") == 0);
    CHECK(err_from_http_status(201) == ERR_OK);
    CHECK(err_from_http_status(409) == ERR_CONFLICT);
    CHECK(err_from_http_status(410) == ERR_GONE);
    CHECK(err_from_http_status(503) == ERR_SERVER);
    CHECK(err_from_http_status(429) == ERR_THROTTLED);
    CHECK(err_from_http_status(302) == ERR_PROTO);
    return SELFTEST_RESULT("err", verbose);
}

#endif /* RF_SELFTEST */
