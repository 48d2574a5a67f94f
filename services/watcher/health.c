/*
 * health: see health.h.
 */
#include "health.h"

#include "err.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEALTH_SWEEP_MS 1000 /* idle connections are looked for this often */

/* One accepted connection. */
typedef struct {
    int fd; /* the socket, -1 when the slot is free */
    char in[HEALTH_MAX_REQUEST + 1]; /* request bytes read so far (NUL-terminated) */
    size_t in_len; /* bytes in `in` */
    char *out; /* the response (owned), NULL until the request is complete */
    size_t out_len; /* bytes in `out` */
    size_t out_off; /* bytes of `out` written */
    int64_t last_ms; /* loop time of the last activity */
} hconn_t;

struct health {
    loop_t *loop; /* the loop (borrowed) */
    int lfd; /* the listening socket */
    int port; /* the bound port */
    int64_t sweep_timer; /* idle sweep timer id */
    health_fn *fn; /* the answering callback */
    void *arg; /* its argument */
    hconn_t conns[HEALTH_MAX_CONNS]; /* connection slots */
};

static void s_close(health_t *h, hconn_t *c)
{
    if (c->fd < 0)
        return;
    loop_remove_fd(h->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    free(c->out);
    c->out = NULL;
    c->in_len = c->out_len = c->out_off = 0;
}

static const char *s_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* Builds the response of the complete request in c->in. Returns 0 or ERR_NOMEM. */
static int s_answer(health_t *h, hconn_t *c)
{
    buf_t body, out;
    buf_init(&body, HEALTH_MAX_RESPONSE);
    buf_init(&out, HEALTH_MAX_RESPONSE + 512);
    int status = 400;
    bool head = false;
    char *sp1 = strchr(c->in, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 && sp2) {
        *sp1 = '\0';
        *sp2 = '\0';
        char *path = sp1 + 1;
        char *q = strchr(path, '?');
        if (q)
            *q = '\0';
        head = strcmp(c->in, "HEAD") == 0;
        if (strcmp(c->in, "GET") != 0 && !head)
            status = 405;
        else
            status = h->fn(path, &body, h->arg);
    }
    if (status == 400 || status == 405)
        buf_puts(&body, s_reason(status));
    int rc = buf_printf(&out,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                        status, s_reason(status), body.len);
    if (rc == 0 && !head && body.len)
        rc = buf_append(&out, body.data, body.len);
    buf_free(&body);
    if (rc != 0) {
        buf_free(&out);
        return rc;
    }
    c->out = buf_take(&out, &c->out_len);
    c->out_off = 0;
    return c->out ? 0 : ERR_NOMEM;
}

/* Writes what it can. Returns true when the connection is finished. */
static bool s_flush(hconn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        return true;
    }
    return true;
}

static int s_conn_ready(loop_t *loop, int fd, int revents, void *arg)
{
    health_t *h = arg;
    hconn_t *c = NULL;
    for (size_t i = 0; i < HEALTH_MAX_CONNS; i++)
        if (h->conns[i].fd == fd)
            c = &h->conns[i];
    if (!c) {
        loop_remove_fd(loop, fd);
        return 0;
    }
    c->last_ms = loop_now(loop);
    if (c->out) {
        if (s_flush(c))
            s_close(h, c);
        return 0;
    }
    for (;;) {
        if (c->in_len >= HEALTH_MAX_REQUEST) {
            s_close(h, c);
            return 0;
        }
        ssize_t n = recv(fd, c->in + c->in_len, HEALTH_MAX_REQUEST - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            c->in[c->in_len] = '\0';
            if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n"))
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        s_close(h, c); /* peer closed or failed before a complete request */
        return 0;
    }
    if (s_answer(h, c) != 0 || s_flush(c)) {
        s_close(h, c);
        return 0;
    }
    loop_set_fd_events(loop, fd, LOOP_WRITE);
    return 0;
}

static int s_accept(loop_t *loop, int fd, int revents, void *arg)
{
    health_t *h = arg;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            return 0; /* EAGAIN, or a transient error: the listener stays */
        hconn_t *c = NULL;
        for (size_t i = 0; i < HEALTH_MAX_CONNS && !c; i++)
            if (h->conns[i].fd < 0)
                c = &h->conns[i];
        if (!c || loop_add_fd(loop, cfd, LOOP_READ, s_conn_ready, h) != 0) {
            close(cfd);
            continue;
        }
        c->fd = cfd;
        c->in_len = 0;
        c->last_ms = loop_now(loop);
    }
}

static int64_t s_sweep(loop_t *loop, int64_t timer_id, void *arg)
{
    health_t *h = arg;
    int64_t now = loop_now(loop);
    for (size_t i = 0; i < HEALTH_MAX_CONNS; i++)
        if (h->conns[i].fd >= 0 && now - h->conns[i].last_ms > HEALTH_IDLE_MS)
            s_close(h, &h->conns[i]);
    return HEALTH_SWEEP_MS;
}

health_t *health_new(loop_t *loop, const char *host, int port, health_fn *fn, void *arg)
{
    if (!loop || !fn || port < 0 || port > 65535)
        return NULL;
    health_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->loop = loop;
    h->fn = fn;
    h->arg = arg;
    h->lfd = -1;
    for (size_t i = 0; i < HEALTH_MAX_CONNS; i++)
        h->conns[i].fd = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host ? host : "127.0.0.1", &sa.sin_addr) != 1) {
        log_error("health: bad listen address", "host", host, NULL);
        goto fail;
    }
    h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (h->lfd < 0 || setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(h->lfd, HEALTH_BACKLOG) != 0) {
        char p[16];
        snprintf(p, sizeof(p), "%d", port);
        log_error("health: cannot listen", "host", host ? host : "127.0.0.1", "port", p, "error",
                  strerror(errno), NULL);
        goto fail;
    }
    socklen_t len = sizeof(sa);
    if (getsockname(h->lfd, (struct sockaddr *)&sa, &len) != 0)
        goto fail;
    h->port = ntohs(sa.sin_port);
    if (loop_add_fd(loop, h->lfd, LOOP_READ, s_accept, h) != 0)
        goto fail;
    h->sweep_timer = loop_add_timer(loop, HEALTH_SWEEP_MS, s_sweep, h);
    if (h->sweep_timer <= 0) {
        loop_remove_fd(loop, h->lfd);
        goto fail;
    }
    return h;
fail:
    if (h->lfd >= 0)
        close(h->lfd);
    free(h);
    return NULL;
}

void health_destroy(health_t **h_p)
{
    if (!h_p || !*h_p)
        return;
    health_t *h = *h_p;
    for (size_t i = 0; i < HEALTH_MAX_CONNS; i++)
        s_close(h, &h->conns[i]);
    loop_cancel_timer(h->loop, h->sweep_timer);
    loop_remove_fd(h->loop, h->lfd);
    close(h->lfd);
    free(h);
    *h_p = NULL;
}

int health_port(const health_t *h)
{
    return h ? h->port : 0;
}
