/*
 * kube: see kube.h.
 */
#include "kube.h"

#include "err.h"
#include "kubeconfig.h"
#include "loop.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define KUBE_POLL_MS 100 /* longest single loop iteration while waiting */

struct kube {
    loop_t *loop; /* the private loop the requests run on */
    kubeconfig_t *kc; /* the loaded kubeconfig */
    k8s_client_t *client; /* the client */
};

/* The state of one call while the loop runs. */
typedef struct {
    bool done; /* the callback ran */
    int err; /* its err */
    long status; /* its HTTP status */
    json_t *body; /* its body (a reference) */
    buf_t msg; /* its message */
} s_call_t;

kube_t *kube_open(const char *path, buf_t *err)
{
    return kube_open_context(path, NULL, err);
}

kube_t *kube_open_context(const char *path, const char *context, buf_t *err)
{
    kube_t *k = calloc(1, sizeof(*k));
    if (!k) {
        buf_puts(err, "out of memory");
        return NULL;
    }
    if (kubeconfig_load(path, context, &k->kc, err) != 0)
        goto fail;
    k->loop = loop_new();
    if (!k->loop) {
        buf_puts(err, "out of memory");
        goto fail;
    }
    k8s_config_t cfg = {.max_retries = KUBE_MAX_RETRIES, .user_agent = "rayfleetctl/" RF_VERSION};
    k->client = k8s_client_new(k->loop, k->kc, &cfg);
    if (!k->client) {
        buf_puts(err, "cannot set up the HTTP client");
        goto fail;
    }
    return k;
fail:
    kube_close(&k);
    return NULL;
}

void kube_close(kube_t **k_p)
{
    if (!k_p || !*k_p)
        return;
    kube_t *k = *k_p;
    k8s_client_destroy(&k->client);
    loop_destroy(&k->loop);
    kubeconfig_destroy(&k->kc);
    free(k);
    *k_p = NULL;
}

const char *kube_server(const kube_t *k)
{
    return k->kc->server ? k->kc->server : "";
}

static void s_done(k8s_client_t *client, const k8s_result_t *res, void *arg)
{
    s_call_t *c = arg;
    c->done = true;
    c->err = res->err;
    c->status = res->status;
    if (res->body)
        c->body = json_incref(res->body);
    (void)buf_puts(&c->msg, res->message);
}

int kube_call(kube_t *k, kube_verb_t verb, const k8s_res_t *res, const json_t *body,
              int64_t timeout_ms, json_t **out, buf_t *err)
{
    if (out)
        *out = NULL;
    if (timeout_ms <= 0)
        timeout_ms = KUBE_CALL_TIMEOUT_MS;
    s_call_t c = {0};
    buf_init(&c.msg, KUBE_ERR_MAX);
    int64_t id;
    switch (verb) {
    case KUBE_GET:
        id = k8s_get(k->client, res, NULL, s_done, &c);
        break;
    case KUBE_LIST:
        id = k8s_list(k->client, res, NULL, s_done, &c);
        break;
    case KUBE_CREATE:
        id = k8s_create(k->client, res, body, NULL, s_done, &c);
        break;
    default:
        id = ERR_INVAL;
    }
    if (id < 0) {
        buf_printf(err, "cannot start the request: %s", err_str((int)id));
        buf_free(&c.msg);
        return (int)id;
    }
    int64_t deadline = loop_clock_ms() + timeout_ms;
    while (!c.done) {
        int64_t left = deadline - loop_clock_ms();
        if (left <= 0) {
            k8s_cancel(k->client, id);
            buf_printf(err, "no answer from %s within %lld ms", kube_server(k),
                       (long long)timeout_ms);
            buf_free(&c.msg);
            return ERR_TIMEOUT;
        }
        (void)loop_run_once(k->loop, left < KUBE_POLL_MS ? left : KUBE_POLL_MS);
    }
    if (c.err != 0) {
        if (c.status)
            buf_printf(err, "HTTP %ld: %s", c.status, buf_str(&c.msg));
        else
            buf_printf(err, "%s: %s", err_str(c.err), buf_str(&c.msg));
        json_decref(c.body);
        buf_free(&c.msg);
        return c.err;
    }
    if (out)
        *out = c.body;
    else
        json_decref(c.body);
    buf_free(&c.msg);
    return 0;
}
