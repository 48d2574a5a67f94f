/*
 * opsrv: see opsrv.h. A request handler on common/httpd; nothing here touches sockets.
 */
#include "opsrv.h"

#include "err.h"
#include "httpd.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPSRV_WHY_MAX 65536 /* longest list of not-ready reasons */
#define OPSRV_TEXT "text/plain; charset=utf-8"

struct opsrv {
    httpd_t *http; /* the server (owned) */
    metrics_t *metrics; /* registry (borrowed), or NULL */
    opsrv_ready_fn *ready; /* readiness, or NULL */
    void *ready_arg; /* its argument */
};

/* Fills body with the answer to GET `path`; returns the status. */
static int s_answer(opsrv_t *srv, const char *path, buf_t *body, const char **ctype)
{
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0)
        return buf_puts(body, "ok\n") == 0 ? 200 : 500;
    if (strcmp(path, "/readyz") == 0) {
        buf_t why;
        buf_init(&why, OPSRV_WHY_MAX);
        int n = srv->ready ? srv->ready(srv->ready_arg, &why) : 0;
        int rc = n == 0 ? buf_puts(body, "ok\n") : buf_puts(body, "not ready:\n");
        if (rc == 0 && n < 0)
            rc = buf_printf(body, "%s\n", err_str(n));
        if (rc == 0 && n != 0 && why.len)
            rc = buf_append(body, why.data, why.len);
        buf_free(&why);
        return rc != 0 ? 500 : n == 0 ? 200 : 503;
    }
    if (strcmp(path, "/metrics") == 0 && srv->metrics) {
        int crc = metrics_collect(srv->metrics);
        if (crc != 0)
            log_warn("a metrics collector failed; its families show what it had", "error",
                     err_str(crc), NULL);
        if (metrics_render(srv->metrics, body) != 0) {
            buf_reset(body);
            buf_puts(body, "metrics do not fit the response bound\n");
            return 500;
        }
        *ctype = METRICS_CONTENT_TYPE;
        return 200;
    }
    buf_puts(body, "not found\n");
    return 404;
}

static void s_handle(httpd_conn_t *c, const httpd_req_t *req, void *arg)
{
    opsrv_t *srv = arg;
    buf_t body;
    buf_init(&body, OPSRV_MAX_RESPONSE);
    const char *ctype = OPSRV_TEXT;
    const char *extra = NULL;
    int status;
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) {
        status = s_answer(srv, req->path, &body, &ctype);
    } else {
        status = 405;
        extra = "Allow: GET, HEAD\r\n";
        buf_puts(&body, "method not allowed\n");
    }
    if (httpd_respond(c, status, ctype, extra, body.data, body.len) != 0)
        httpd_conn_abort(c);
    buf_free(&body);
}

opsrv_t *opsrv_new(loop_t *loop, const opsrv_config_t *cfg)
{
    if (!loop || !cfg || cfg->port < 0 || cfg->port > 65535 || cfg->idle_ms < 0)
        return NULL;
    opsrv_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->metrics = cfg->metrics;
    srv->ready = cfg->ready;
    srv->ready_arg = cfg->ready_arg;
    const char *host = cfg->host ? cfg->host : "127.0.0.1";
    srv->http = httpd_new(loop, host, cfg->port, OPSRV_MAX_BODY, s_handle, srv);
    httpd_limits_t lim = {
        .max_header = OPSRV_MAX_HEADER,
        .max_conns = cfg->max_conns ? cfg->max_conns : OPSRV_DEFAULT_MAX_CONNS,
        .idle_ms = cfg->idle_ms ? cfg->idle_ms : OPSRV_DEFAULT_IDLE_MS,
    };
    if (!srv->http || httpd_set_limits(srv->http, &lim) != 0) {
        char port[16];
        snprintf(port, sizeof(port), "%d", cfg->port);
        log_error("opsrv: cannot serve", "host", host, "port", port, NULL);
        opsrv_destroy(&srv);
        return NULL;
    }
    return srv;
}

void opsrv_destroy(opsrv_t **srv_p)
{
    if (!srv_p || !*srv_p)
        return;
    httpd_destroy(&(*srv_p)->http);
    free(*srv_p);
    *srv_p = NULL;
}

int opsrv_port(const opsrv_t *srv)
{
    return srv && srv->http ? httpd_port(srv->http) : 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ----------------------------------------------------------------------------- */

static int t_ready(void *arg, buf_t *why)
{
    const int *reasons = arg;
    for (int i = 0; i < *reasons; i++)
        buf_printf(why, "reason-%d\n", i);
    return *reasons;
}

/* Sends req on fd and runs the loop until the peer closes (want NULL) or `want` arrives.
 * Returns the status of the response in got, or -1. */
static int t_send(loop_t *loop, int fd, const char *req, buf_t *got, const char *want)
{
    buf_reset(got);
    if (!httpd_test_pump(loop, fd, req, req ? strlen(req) : 0, got, want) ||
        strncmp(buf_str(got), "HTTP/1.1 ", 9) != 0)
        return -1;
    return (int)strtol(buf_str(got) + 9, NULL, 10);
}

/* One request on a new connection ("Connection: close" added); returns the status. */
static int t_get(loop_t *loop, int port, const char *method, const char *path, buf_t *got)
{
    char req[512];
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", method,
             path);
    int fd = httpd_test_connect(port);
    int status = fd >= 0 ? t_send(loop, fd, req, got, NULL) : -1;
    if (fd >= 0)
        close(fd);
    return status;
}

/* The body of the response in got (after the blank line). */
static const char *t_body(const buf_t *got)
{
    const char *p = strstr(buf_str(got), "\r\n\r\n");
    return p ? p + 4 : "";
}

/* Pumps until the server has `n` connections (or 2 s pass). */
static bool t_conns(loop_t *loop, const opsrv_t *srv, size_t n)
{
    for (int i = 0; i < 400; i++) {
        if (httpd_conn_count(srv->http) == n)
            return true;
        loop_run_once(loop, 5);
    }
    return false;
}

int opsrv_test(bool verbose)
{
    int failed = 0;
    signal(SIGPIPE, SIG_IGN);
    loop_t *loop = loop_new();
    metrics_t *m = metrics_new();
    metric_series_t *s = metric_with(metrics_counter(m, "t_hits_total", "Hits.", NULL), NULL);
    metric_add(s, 3);
    int reasons = 2;
    opsrv_config_t cfg = {
        .metrics = m, .ready = t_ready, .ready_arg = &reasons, .max_conns = 8, .idle_ms = 200};
    opsrv_t *srv = opsrv_new(loop, &cfg);
    CHECK(srv != NULL);
    if (!srv) {
        metrics_destroy(&m);
        loop_destroy(&loop);
        return SELFTEST_RESULT("opsrv", verbose);
    }
    int port = opsrv_port(srv);
    CHECK(port > 0);
    CHECK(opsrv_new(loop, &(opsrv_config_t){.port = port}) == NULL); /* in use */
    CHECK(opsrv_new(loop, &(opsrv_config_t){.host = "no-such-ip"}) == NULL);
    CHECK(opsrv_new(loop, &(opsrv_config_t){.port = 70000}) == NULL);
    CHECK(opsrv_new(loop, NULL) == NULL);

    buf_t got;
    buf_init(&got, 1 << 20);
    /* Probes. */
    CHECK(t_get(loop, port, "GET", "/healthz", &got) == 200 && strcmp(t_body(&got), "ok\n") == 0);
    CHECK(strstr(buf_str(&got), "Content-Type: text/plain; charset=utf-8\r\n") != NULL);
    CHECK(t_get(loop, port, "GET", "/livez?verbose", &got) == 200);
    CHECK(t_get(loop, port, "GET", "/readyz", &got) == 503);
    CHECK(strcmp(t_body(&got), "not ready:\nreason-0\nreason-1\n") == 0);
    reasons = 0;
    CHECK(t_get(loop, port, "GET", "/readyz", &got) == 200 && strcmp(t_body(&got), "ok\n") == 0);
    reasons = ERR_STATE;
    CHECK(t_get(loop, port, "GET", "/readyz", &got) == 503);
    CHECK(strstr(t_body(&got), "not ready:\n") == t_body(&got));

    /* Metrics, read at each scrape. */
    CHECK(t_get(loop, port, "GET", "/metrics", &got) == 200);
    CHECK(strstr(buf_str(&got), "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    CHECK(strcmp(t_body(&got), "# HELP t_hits_total Hits.\n# TYPE t_hits_total counter\n"
                               "t_hits_total 3\n") == 0);
    metric_add(s, 1);
    CHECK(t_get(loop, port, "GET", "/metrics", &got) == 200 && strstr(t_body(&got), "total 4\n"));
    /* HEAD: the length of the body, no body. */
    CHECK(t_get(loop, port, "HEAD", "/metrics", &got) == 200);
    CHECK(strstr(buf_str(&got), "Content-Length: 69\r\n") && *t_body(&got) == '\0');

    /* Errors: unknown path, method, malformed, oversize header and body. */
    CHECK(t_get(loop, port, "GET", "/nope", &got) == 404);
    CHECK(t_get(loop, port, "POST", "/healthz", &got) == 405);
    CHECK(strstr(buf_str(&got), "\r\nAllow: GET, HEAD\r\n") != NULL);
    CHECK(t_get(loop, port, "DELETE", "/metrics", &got) == 405);
    int fd = httpd_test_connect(port);
    CHECK(t_send(loop, fd, "NONSENSE\r\n\r\n", &got, NULL) == 400);
    close(fd);
    char big[OPSRV_MAX_HEADER + 200];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "GET /healthz HTTP/1.1\r\nX: ", 26);
    fd = httpd_test_connect(port);
    CHECK(t_send(loop, fd, big, &got, NULL) == 431);
    close(fd);
    fd = httpd_test_connect(port);
    CHECK(t_send(loop, fd, "POST /healthz HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", &got,
                 NULL) == 413);
    close(fd);
    CHECK(t_conns(loop, srv, 0));

    /* Keep-alive: two requests on one connection; then the idle connection is closed. */
    fd = httpd_test_connect(port);
    CHECK(t_send(loop, fd, "GET /healthz HTTP/1.1\r\n\r\n", &got, "ok\n") == 200);
    CHECK(t_send(loop, fd, "GET /readyz HTTP/1.1\r\n\r\n", &got, "\r\n\r\n") == 503);
    CHECK(t_send(loop, fd, NULL, &got, NULL) == -1); /* EOF: closed when idle */
    CHECK(t_conns(loop, srv, 0));
    close(fd);

    /* Many connections: max_conns are served at once, one more is closed at accept. */
    int fds[9];
    for (int i = 0; i < 8; i++)
        fds[i] = httpd_test_connect(port);
    CHECK(t_conns(loop, srv, 8));
    fds[8] = httpd_test_connect(port);
    CHECK(fds[8] >= 0 && t_send(loop, fds[8], NULL, &got, NULL) == -1 && got.len == 0);
    for (int i = 0; i < 8; i++)
        CHECK(t_send(loop, fds[i], "GET /healthz HTTP/1.1\r\n\r\n", &got, "ok\n") == 200);
    for (int i = 0; i < 9; i++)
        close(fds[i]);
    CHECK(t_conns(loop, srv, 0));
    int served = 0;
    for (int i = 0; i < 100; i++)
        served += t_get(loop, port, "GET", "/healthz", &got) == 200;
    CHECK(served == 100);
    opsrv_destroy(&srv);
    CHECK(srv == NULL);
    opsrv_destroy(&srv);

    /* Without a registry or a readiness callback. */
    srv = opsrv_new(loop, &(opsrv_config_t){.host = "127.0.0.1"});
    CHECK(srv != NULL);
    port = opsrv_port(srv);
    CHECK(t_get(loop, port, "GET", "/metrics", &got) == 404);
    CHECK(t_get(loop, port, "GET", "/readyz", &got) == 200);
    opsrv_destroy(&srv);

    buf_free(&got);
    metrics_destroy(&m);
    loop_destroy(&loop);
    return SELFTEST_RESULT("opsrv", verbose);
}

#endif /* RF_SELFTEST */
