/*
 * fuzz_envwire: libFuzzer harness for envwire_decode() (common/envwire.c), which reads every bus
 * message. The input is decoded from a block of exactly its size (ASan catches any read past
 * it). Properties: where envwire and protobuf-c's rayfleet__envelope__unpack() both accept the
 * bytes they read the same values (a string holding a NUL byte is compared up to it, as protobuf-c
 * keeps C strings); and a decoded message encodes to bytes that envwire and protobuf-c both decode
 * to the same message. Built by -DRF_FUZZ=ON (scripts/fuzz.sh).
 */
#include "envwire.h"
#include "err.h"
#include "rayfleet.pb-c.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A view against protobuf-c's C string (which ends at the first NUL). */
static bool s_eq_c(envwire_str_t v, const char *s)
{
    const char *nul = v.n ? memchr(v.p, '\0', v.n) : NULL;
    size_t n = nul ? (size_t)(nul - v.p) : v.n;
    return s && strlen(s) == n && (n == 0 || memcmp(v.p, s, n) == 0);
}

static bool s_eq(envwire_str_t a, envwire_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static bool s_same_pbc(const Rayfleet__Envelope *e, const envwire_msg_t *m)
{
    if (e->version != m->version || !s_eq_c(m->source, e->source) || e->sequence != m->sequence ||
        e->sent_at_ms != m->sent_at_ms || (int)e->body_case != (int)m->body)
        return false;
    if (m->body == ENVWIRE_BODY_HEARTBEAT) {
        const Rayfleet__Heartbeat *hb = e->heartbeat;
        return hb && s_eq_c(m->heartbeat.source, hb->source) &&
               hb->sequence == m->heartbeat.sequence && hb->interval_ms == m->heartbeat.interval_ms;
    }
    if (m->body == ENVWIRE_BODY_NONE)
        return true;
    const Rayfleet__ObjectChanged *oc = e->object_changed;
    const envwire_object_changed_t *o = &m->object_changed;
    return oc && s_eq_c(o->cluster, oc->cluster) && s_eq_c(o->group, oc->group) &&
           s_eq_c(o->kind, oc->kind) && s_eq_c(o->namespace_, oc->namespace_) &&
           s_eq_c(o->name, oc->name) && s_eq_c(o->uid, oc->uid) &&
           s_eq_c(o->resource_version, oc->resource_version) && oc->generation == o->generation &&
           (int32_t)oc->type == o->type && oc->shard == o->shard && oc->event_id == o->event_id &&
           s_eq_c(o->child_kind, oc->child_kind) && s_eq_c(o->child_name, oc->child_name) &&
           s_eq_c(o->child_uid, oc->child_uid);
}

static bool s_same(const envwire_msg_t *a, const envwire_msg_t *b)
{
    if (a->version != b->version || !s_eq(a->source, b->source) || a->sequence != b->sequence ||
        a->sent_at_ms != b->sent_at_ms || a->body != b->body)
        return false;
    if (a->body == ENVWIRE_BODY_HEARTBEAT)
        return s_eq(a->heartbeat.source, b->heartbeat.source) &&
               a->heartbeat.sequence == b->heartbeat.sequence &&
               a->heartbeat.interval_ms == b->heartbeat.interval_ms;
    if (a->body == ENVWIRE_BODY_NONE)
        return true;
    const envwire_object_changed_t *x = &a->object_changed, *y = &b->object_changed;
    return s_eq(x->cluster, y->cluster) && s_eq(x->group, y->group) && s_eq(x->kind, y->kind) &&
           s_eq(x->namespace_, y->namespace_) && s_eq(x->name, y->name) && s_eq(x->uid, y->uid) &&
           s_eq(x->resource_version, y->resource_version) && x->generation == y->generation &&
           x->type == y->type && x->shard == y->shard && x->event_id == y->event_id &&
           s_eq(x->child_kind, y->child_kind) && s_eq(x->child_name, y->child_name) &&
           s_eq(x->child_uid, y->child_uid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    envwire_msg_t m;
    int rc = envwire_decode(copy, size, &m);
    if (rc != 0 && rc != ERR_PARSE)
        abort();
    Rayfleet__Envelope *e = rayfleet__envelope__unpack(NULL, size, copy);
    // Where both accept the bytes they must read the same values. Acceptance itself may differ
    // on tags: protobuf-c reads a tag of at most 5 bytes and drops its bits past 32, where
    // envwire (as Go's protowire) takes up to 10 bytes and refuses a field number past 2^29-1.
    if (rc == 0 && e && !s_same_pbc(e, &m))
        abort();
    if (rc == 0) {
        // What envwire decoded it encodes again, and both envwire and protobuf-c read that back
        // as the same message.
        size_t n = envwire_size(&m);
        uint8_t *out = malloc(n ? n : 1);
        envwire_msg_t back;
        if (!out || envwire_encode(&m, out, n) != (int)n)
            abort();
        if (envwire_decode(out, n, &back) != 0 || !s_same(&m, &back))
            abort();
        Rayfleet__Envelope *e2 = rayfleet__envelope__unpack(NULL, n, out);
        if (!e2 || !s_same_pbc(e2, &m))
            abort();
        rayfleet__envelope__free_unpacked(e2, NULL);
        free(out);
    }
    if (e)
        rayfleet__envelope__free_unpacked(e, NULL);
    free(copy);
    return 0;
}
