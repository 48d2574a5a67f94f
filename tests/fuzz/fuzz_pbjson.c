/*
 * fuzz_pbjson: libFuzzer harness for kubesim's Kubernetes protobuf transcoder (sim/pbjson.c),
 * which decodes the bodies kubectl and client-go send with Content-Type
 * application/vnd.kubernetes.protobuf. The input is decoded as an object in its "k8s\0"
 * envelope, as a watch event and its envelope's typeMeta is peeked. Properties: a decoded object
 * encodes again (pbjson_encode_object) and that encoding decodes to an equal object (round
 * trip); errors carry a message; the Accept negotiation of the input as a header answers one of
 * its three values. Built by -DRF_FUZZ=ON (scripts/fuzz.sh).
 */
#include "buf.h"
#include "err.h"
#include "pbjson.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    buf_t err, enc;
    buf_init(&err, PBJSON_ERR_MAX * 4);
    buf_init(&enc, 64u << 20);
    json_t *obj = NULL;
    int rc = pbjson_decode_object(copy, size, &obj, &err);
    if (rc == 0) {
        if (!json_is_object(obj))
            abort();
        buf_reset(&err);
        if (pbjson_encode_object(obj, &enc, &err) != 0)
            abort(); // a decoded object must encode again
        json_t *back = NULL;
        buf_reset(&err);
        if (pbjson_decode_object(enc.data, enc.len, &back, &err) != 0 || !json_equal(obj, back))
            abort(); // encode -> decode must give the object back
        json_decref(back);
    } else if (obj || err.len == 0) {
        abort();
    }
    json_decref(obj);

    char type[64], av[128], kind[128];
    obj = NULL;
    buf_reset(&err);
    rc = pbjson_decode_watch_event(copy, size, type, sizeof type, &obj, &err);
    if (rc == 0 && (!json_is_object(obj) || strnlen(type, sizeof type) == sizeof type))
        abort();
    json_decref(obj);
    if (pbjson_peek_kind(copy, size, av, sizeof av, kind, sizeof kind) == 0 &&
        (strnlen(av, sizeof av) == sizeof av || strnlen(kind, sizeof kind) == sizeof kind))
        abort();

    char *hdr = malloc(size + 1);
    if (hdr) {
        memcpy(hdr, data, size);
        hdr[size] = '\0';
        for (int ok = 0; ok < 2; ok++) {
            int w = pbjson_negotiate(hdr, ok);
            if (w != PBJSON_WANT_NONE && w != PBJSON_WANT_JSON && w != PBJSON_WANT_PROTO)
                abort();
            if (!ok && w == PBJSON_WANT_PROTO)
                abort();
        }
        free(hdr);
    }
    buf_free(&enc);
    buf_free(&err);
    free(copy);
    return 0;
}
