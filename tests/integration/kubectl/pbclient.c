/*
 * pbclient: a small Kubernetes protobuf client for kubectl_proto_test.sh (sim/pbjson.h decodes
 * and encodes; libcurl talks HTTP).
 *
 *   pbclient get URL [ACCEPT]        GET; prints "HTTP <code> <content-type>", then the body as
 *                                    JSON (decoded from the "k8s\0" envelope when protobuf)
 *   pbclient watch URL NAME...       GET a protobuf watch stream; prints "<TYPE> <kind> <name>"
 *                                    per frame until every NAME was ADDED (20 s at most)
 *   pbclient post URL FILE [FIELD]   POSTs the JSON object in FILE as protobuf (with an extra
 *                                    varint field number FIELD in the object's message when
 *                                    given); prints as get
 * Exit status 0 when the request went as described (an HTTP error status is still 0 for get
 * and post: the caller checks the printed code), 1 otherwise.
 */
#include "buf.h"
#include "err.h"
#include "json.h"
#include "pbjson.h"
#include "tls.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PB_MAX (64u << 20) /* bound of a response */

static size_t s_write(char *p, size_t sz, size_t n, void *arg)
{
    return buf_append(arg, p, sz * n) == 0 ? sz * n : 0;
}

/* Prints a response body: decoded when protobuf, else as it came. */
static int s_print(long code, const char *ctype, const buf_t *body)
{
    printf("HTTP %ld %s\n", code, ctype ? ctype : "-");
    if (ctype && strncasecmp(ctype, PBJSON_MEDIA, strlen(PBJSON_MEDIA)) == 0) {
        json_t *o = NULL;
        buf_t err;
        buf_init(&err, PBJSON_ERR_MAX);
        int rc = pbjson_decode_object(body->data, body->len, &o, &err);
        if (rc < 0) {
            printf("decode error: %s\n", buf_str(&err));
            buf_free(&err);
            return 1;
        }
        char *t = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", t ? t : "");
        free(t);
        json_decref(o);
        buf_free(&err);
        return 0;
    }
    printf("%s\n", buf_str(body));
    return 0;
}

static int s_request(const char *method, const char *url, const char *accept, const char *ctype,
                     const buf_t *send)
{
    CURL *h = curl_easy_init();
    if (!h)
        return 1;
    struct curl_slist *hl = NULL;
    char hdr[512];
    snprintf(hdr, sizeof(hdr), "Accept: %s", accept);
    hl = curl_slist_append(hl, hdr);
    if (ctype) {
        snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
        hl = curl_slist_append(hl, hdr);
    }
    buf_t body;
    buf_init(&body, PB_MAX);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    if (send) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, send->data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)send->len);
    }
    int rc = 1;
    if (curl_easy_perform(h) == CURLE_OK) {
        long code = 0;
        char *ct = NULL;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
        rc = s_print(code, ct, &body);
    }
    buf_free(&body);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc;
}

/* The watch: frames are parsed as they arrive. */
typedef struct {
    buf_t in; /* bytes not yet framed */
    char **names; /* names still to see ADDED */
    int left; /* how many */
    int bad; /* decode errors */
} watch_t;

static size_t s_watch_write(char *p, size_t sz, size_t n, void *arg)
{
    watch_t *w = arg;
    if (buf_append(&w->in, p, sz * n) < 0)
        return 0;
    size_t at = 0;
    while (w->in.len - at >= 4) {
        const unsigned char *f = (const unsigned char *)w->in.data + at;
        size_t len = (size_t)f[0] << 24 | (size_t)f[1] << 16 | (size_t)f[2] << 8 | f[3];
        if (w->in.len - at - 4 < len)
            break;
        char type[32];
        json_t *o = NULL;
        buf_t err;
        buf_init(&err, PBJSON_ERR_MAX);
        if (pbjson_decode_watch_event(f + 4, len, type, sizeof(type), &o, &err) < 0) {
            printf("decode error: %s\n", buf_str(&err));
            w->bad++;
        } else {
            const char *name = jx_str(o, "metadata.name", "");
            printf("%s %s %s\n", type, jx_str(o, "kind", ""), name);
            fflush(stdout);
            for (int i = 0; strcmp(type, "ADDED") == 0 && w->names[i]; i++) {
                if (w->names[i][0] && strcmp(w->names[i], name) == 0) {
                    w->names[i] = "";
                    w->left--;
                }
            }
        }
        json_decref(o);
        buf_free(&err);
        at += 4 + len;
    }
    memmove(w->in.data, w->in.data + at, w->in.len - at);
    w->in.len -= at;
    return w->left > 0 && !w->bad ? sz * n : 0; /* 0 ends the transfer */
}

static int s_watch(const char *url, char **names, int n)
{
    CURL *h = curl_easy_init();
    if (!h)
        return 1;
    watch_t w = {.names = names, .left = n};
    buf_init(&w.in, PB_MAX);
    struct curl_slist *hl = curl_slist_append(NULL, "Accept: " PBJSON_MEDIA ", application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s_watch_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_perform(h);
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    printf("content-type %s\n", ct ? ct : "-");
    int rc = w.left == 0 && !w.bad ? 0 : 1;
    buf_free(&w.in);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc;
}

/* The object in FILE in the envelope; with an extra varint field `extra` in its message. */
static int s_body(const char *file, int extra, buf_t *out)
{
    buf_t err;
    buf_init(&err, PBJSON_ERR_MAX);
    json_t *o = jx_load_file(file, 1 << 20, &err);
    int rc = o ? 0 : ERR_PARSE;
    if (rc == 0 && !extra) {
        rc = pbjson_encode_object(o, out, &err);
    } else if (rc == 0) {
        const ProtobufCMessageDescriptor *d =
            pbjson_kind(jx_str(o, "apiVersion", ""), jx_str(o, "kind", ""));
        buf_t raw;
        buf_init(&raw, PB_MAX);
        rc = d ? pbjson_encode(d, o, &raw, &err) : ERR_NOTFOUND;
        unsigned char t[16];
        size_t n = 0;
        for (unsigned long long v = (unsigned long long)extra << 3;; v >>= 7) {
            t[n++] = (unsigned char)(v < 0x80 ? v : (v & 0x7f) | 0x80);
            if (v < 0x80)
                break;
        }
        t[n++] = 1;
        if (rc == 0)
            rc = buf_append(&raw, t, n);
        /* runtime.Unknown, through its own schema (typeMeta is inline there) */
        char *b64 = NULL;
        buf_t b;
        buf_init(&b, PB_MAX);
        if (rc == 0) {
            rc = tls_base64(raw.data, raw.len, &b);
            b64 = b.data;
        }
        json_t *u = rc == 0 ? json_pack("{s:s,s:s,s:s}", "apiVersion", jx_str(o, "apiVersion", ""),
                                        "kind", jx_str(o, "kind", ""), "raw", b64 ? b64 : "")
                            : NULL;
        if (rc == 0)
            rc = buf_append(out, "k8s\0", 4);
        if (rc == 0)
            rc = pbjson_encode(pbjson_message("k8s.io.apimachinery.pkg.runtime.Unknown"), u, out,
                               &err);
        json_decref(u);
        buf_free(&b);
        buf_free(&raw);
    }
    if (rc < 0)
        fprintf(stderr, "pbclient: %s: %s\n", file, buf_str(&err));
    json_decref(o);
    buf_free(&err);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: pbclient get URL [ACCEPT] | watch URL NAME... | post URL FILE "
                        "[FIELD]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 2;
    if (strcmp(argv[1], "get") == 0) {
        rc = s_request("GET", argv[2], argc > 3 ? argv[3] : PBJSON_MEDIA, NULL, NULL);
    } else if (strcmp(argv[1], "watch") == 0) {
        rc = s_watch(argv[2], argv + 3, argc - 3);
    } else if (strcmp(argv[1], "post") == 0 && argc > 3) {
        buf_t body;
        buf_init(&body, PB_MAX);
        rc = s_body(argv[3], argc > 4 ? (int)strtol(argv[4], NULL, 10) : 0, &body) < 0
                 ? 1
                 : s_request("POST", argv[2], PBJSON_MEDIA ", application/json", PBJSON_MEDIA,
                             &body);
        buf_free(&body);
    }
    curl_global_cleanup();
    return rc;
}
