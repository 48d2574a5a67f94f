/*
 * envwire: hand-written protobuf encoding and zero-copy decoding of rayfleet.Envelope; the
 * contract is in envwire.h.
 *
 * Encoding is two passes: sizes first (the body submessage is length-prefixed, so its size must
 * be known before it is written), then the bytes, with no bounds checks left once the total has
 * been checked against `cap`. Every field of the schema has a number below 16, so each tag is
 * one byte. Decoding is one pass over the tags with a cursor that is checked against the end of
 * the enclosing message before every read.
 */
#include "envwire.h"
#include "err.h"
#include "rayfleet.pb-c.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Protobuf wire types. */
#define WT_VARINT 0 /* varint */
#define WT_FIXED64 1 /* 8 little-endian bytes */
#define WT_LEN 2 /* varint length, then that many bytes */
#define WT_FIXED32 5 /* 4 little-endian bytes */
#define WT_BITS 3 /* bits of a tag that hold the wire type */
#define WT_MASK 7 /* mask of the wire type in a tag */
#define VARINT_MORE 0x80 /* continuation bit of a varint byte */
#define VARINT_BITS 7 /* payload bits per varint byte */
#define FIXED64_BYTES 8 /* size of a fixed64 */
#define FIXED32_BYTES 4 /* size of a fixed32 */
/* A string length beyond which sizes are clamped, so that summing them cannot overflow. */
#define HUGE_LEN (SIZE_MAX / 64)

/* Clearing object_changed clears the whole body union. */
_Static_assert(sizeof(envwire_object_changed_t) >= sizeof(envwire_heartbeat_t),
               "object_changed is the largest body");

/* The one-byte tag of field `num` (< 16) with wire type `wt`. */
#define TAG(num, wt) ((uint8_t)(((num) << WT_BITS) | (wt)))

/* ---- Encoding ---- */

/* Bytes in the varint encoding of v (1..10). */
static inline size_t s_varint_len(uint64_t v)
{
    if (v < (1u << VARINT_BITS))
        return 1;
    int bits = 64 - __builtin_clzll(v);
    return (size_t)(bits + VARINT_BITS - 1) / VARINT_BITS;
}

/* Writes v as a varint at p; returns the byte after it. */
static inline uint8_t *s_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= VARINT_MORE) {
        *p++ = (uint8_t)(v | VARINT_MORE);
        v >>= VARINT_BITS;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Size of a varint field: nothing when v is 0 (the proto3 default). */
static inline size_t s_uint_size(uint64_t v)
{
    return v ? 1 + s_varint_len(v) : 0;
}

/* Size of a string field: nothing when empty. */
static inline size_t s_str_size(envwire_str_t s)
{
    if (s.n > HUGE_LEN)
        return HUGE_LEN * 2;
    return s.n ? 1 + s_varint_len(s.n) + s.n : 0;
}

static inline uint8_t *s_put_uint(uint8_t *p, unsigned num, uint64_t v)
{
    if (!v)
        return p;
    *p++ = TAG(num, WT_VARINT);
    return s_put_varint(p, v);
}

static inline uint8_t *s_put_str(uint8_t *p, unsigned num, envwire_str_t s)
{
    if (!s.n)
        return p;
    *p++ = TAG(num, WT_LEN);
    p = s_put_varint(p, s.n);
    memcpy(p, s.p, s.n);
    return p + s.n;
}

/* int32 and enum values are sign-extended to 64 bits before varint encoding (protobuf rule). */
static inline uint64_t s_int32_wire(int32_t v)
{
    return (uint64_t)(int64_t)v;
}

static size_t s_oc_size(const envwire_object_changed_t *oc)
{
    return s_str_size(oc->cluster) + s_str_size(oc->group) + s_str_size(oc->kind) +
           s_str_size(oc->namespace_) + s_str_size(oc->name) + s_str_size(oc->uid) +
           s_str_size(oc->resource_version) + s_uint_size((uint64_t)oc->generation) +
           s_uint_size(s_int32_wire(oc->type)) + s_uint_size(oc->shard) +
           s_uint_size(oc->event_id) + s_str_size(oc->child_kind) + s_str_size(oc->child_name) +
           s_str_size(oc->child_uid);
}

static size_t s_hb_size(const envwire_heartbeat_t *hb)
{
    return s_str_size(hb->source) + s_uint_size(hb->sequence) +
           s_uint_size((uint64_t)hb->interval_ms);
}

/* Size of the body submessage alone (without its tag and length). */
static size_t s_body_size(const envwire_msg_t *m)
{
    if (m->body == ENVWIRE_BODY_OBJECT_CHANGED)
        return s_oc_size(&m->object_changed);
    if (m->body == ENVWIRE_BODY_HEARTBEAT)
        return s_hb_size(&m->heartbeat);
    return 0;
}

/* Size of the envelope given its body's size. */
static size_t s_total_size(const envwire_msg_t *m, size_t body)
{
    size_t n = s_uint_size(m->version) + s_str_size(m->source) + s_uint_size(m->sequence) +
               s_uint_size((uint64_t)m->sent_at_ms) + s_uint_size(m->epoch) +
               s_uint_size(m->shard_sequence);
    if (m->body != ENVWIRE_BODY_NONE)
        n += 1 + s_varint_len(body) + body;
    return n;
}

envwire_str_t envwire_str(const char *s)
{
    envwire_str_t v = {s, s ? strlen(s) : 0};
    return v;
}

bool envwire_str_eq(envwire_str_t v, const char *s)
{
    if (!s)
        return v.n == 0;
    size_t n = strlen(s);
    return n == v.n && (n == 0 || memcmp(v.p, s, n) == 0);
}

size_t envwire_size(const envwire_msg_t *m)
{
    return m ? s_total_size(m, s_body_size(m)) : 0;
}

int envwire_encode(const envwire_msg_t *m, uint8_t *out, size_t cap)
{
    if (!m || !out ||
        (m->body != ENVWIRE_BODY_NONE && m->body != ENVWIRE_BODY_OBJECT_CHANGED &&
         m->body != ENVWIRE_BODY_HEARTBEAT))
        return ERR_INVAL;
    size_t body = s_body_size(m);
    size_t total = s_total_size(m, body);
    if (total > cap || total > INT_MAX)
        return ERR_TOOBIG;
    uint8_t *p = out;
    p = s_put_uint(p, 1, m->version);
    p = s_put_str(p, 2, m->source);
    p = s_put_uint(p, 3, m->sequence);
    p = s_put_uint(p, 4, (uint64_t)m->sent_at_ms);
    p = s_put_uint(p, 5, m->epoch);
    p = s_put_uint(p, 6, m->shard_sequence);
    if (m->body == ENVWIRE_BODY_OBJECT_CHANGED) {
        const envwire_object_changed_t *oc = &m->object_changed;
        *p++ = TAG(ENVWIRE_BODY_OBJECT_CHANGED, WT_LEN);
        p = s_put_varint(p, body);
        p = s_put_str(p, 1, oc->cluster);
        p = s_put_str(p, 2, oc->group);
        p = s_put_str(p, 3, oc->kind);
        p = s_put_str(p, 4, oc->namespace_);
        p = s_put_str(p, 5, oc->name);
        p = s_put_str(p, 6, oc->uid);
        p = s_put_str(p, 7, oc->resource_version);
        p = s_put_uint(p, 8, (uint64_t)oc->generation);
        p = s_put_uint(p, 9, s_int32_wire(oc->type));
        p = s_put_uint(p, 10, oc->shard);
        p = s_put_uint(p, 11, oc->event_id);
        p = s_put_str(p, 12, oc->child_kind);
        p = s_put_str(p, 13, oc->child_name);
        p = s_put_str(p, 14, oc->child_uid);
    } else if (m->body == ENVWIRE_BODY_HEARTBEAT) {
        const envwire_heartbeat_t *hb = &m->heartbeat;
        *p++ = TAG(ENVWIRE_BODY_HEARTBEAT, WT_LEN);
        p = s_put_varint(p, body);
        p = s_put_str(p, 1, hb->source);
        p = s_put_uint(p, 2, hb->sequence);
        p = s_put_uint(p, 3, (uint64_t)hb->interval_ms);
    }
    return (int)(p - out);
}

/* ---- Decoding ---- */

/* Reads a varint of at most ENVWIRE_VARINT_MAX bytes from [*pp, end) and advances *pp. Bits
 * past the 64th (in a tenth byte) are dropped, as protobuf parsers do. Returns 0 or ERR_PARSE
 * (truncated or too long). */
static inline int s_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    if (p < end && *p < VARINT_MORE) {
        *v = *p;
        *pp = p + 1;
        return 0;
    }
    uint64_t r = 0;
    for (int i = 0; i < ENVWIRE_VARINT_MAX; i++) {
        if (p >= end)
            return ERR_PARSE;
        uint8_t b = *p++;
        r |= (uint64_t)(b & (VARINT_MORE - 1)) << (VARINT_BITS * i);
        if (b < VARINT_MORE) {
            *v = r;
            *pp = p;
            return 0;
        }
    }
    return ERR_PARSE;
}

/* Reads a length-delimited payload's length and checks it fits before `end`; *pp is left at
 * the payload. Returns 0 or ERR_PARSE. */
static inline int s_get_len(const uint8_t **pp, const uint8_t *end, size_t *n)
{
    uint64_t len;
    if (s_get_varint(pp, end, &len) < 0 || len > (uint64_t)(end - *pp))
        return ERR_PARSE;
    *n = (size_t)len;
    return 0;
}

/* Reads a string field's payload as a view. */
static inline int s_get_str(const uint8_t **pp, const uint8_t *end, envwire_str_t *s)
{
    size_t n;
    if (s_get_len(pp, end, &n) < 0)
        return ERR_PARSE;
    s->p = (const char *)*pp;
    s->n = n;
    *pp += n;
    return 0;
}

/* Reads a tag: field number >= 1 and wire type. Returns 0 or ERR_PARSE. */
static inline int s_get_tag(const uint8_t **pp, const uint8_t *end, uint32_t *num, unsigned *wt)
{
    uint64_t tag;
    if (s_get_varint(pp, end, &tag) < 0 || tag > UINT32_MAX || (tag >> WT_BITS) == 0)
        return ERR_PARSE;
    *num = (uint32_t)(tag >> WT_BITS);
    *wt = (unsigned)(tag & WT_MASK);
    return 0;
}

/* Skips the payload of an unknown field of wire type wt. Returns 0 or ERR_PARSE (truncated, or
 * a group or reserved wire type, which proto3 never produces). */
static int s_skip(const uint8_t **pp, const uint8_t *end, unsigned wt)
{
    uint64_t v;
    size_t n;
    switch (wt) {
    case WT_VARINT:
        return s_get_varint(pp, end, &v);
    case WT_FIXED64:
        n = FIXED64_BYTES;
        break;
    case WT_FIXED32:
        n = FIXED32_BYTES;
        break;
    case WT_LEN:
        if (s_get_len(pp, end, &n) < 0)
            return ERR_PARSE;
        break;
    default:
        return ERR_PARSE;
    }
    if (n > (size_t)(end - *pp))
        return ERR_PARSE;
    *pp += n;
    return 0;
}

/* Reads a varint field's value, checking the wire type. */
static inline int s_get_uint(const uint8_t **pp, const uint8_t *end, unsigned wt, uint64_t *v)
{
    if (wt != WT_VARINT)
        return ERR_PARSE;
    return s_get_varint(pp, end, v);
}

/* Reads a string field's value, checking the wire type. */
static inline int s_get_str_field(const uint8_t **pp, const uint8_t *end, unsigned wt,
                                  envwire_str_t *s)
{
    if (wt != WT_LEN)
        return ERR_PARSE;
    return s_get_str(pp, end, s);
}

/* Decodes an ObjectChanged occupying exactly [p, end) into *oc (fields not present keep their
 * value). Returns 0 or ERR_PARSE. */
static int s_decode_oc(const uint8_t *p, const uint8_t *end, envwire_object_changed_t *oc)
{
    while (p < end) {
        uint32_t num;
        unsigned wt;
        uint64_t v = 0;
        int rc;
        if (s_get_tag(&p, end, &num, &wt) < 0)
            return ERR_PARSE;
        switch (num) {
        case 1:
            rc = s_get_str_field(&p, end, wt, &oc->cluster);
            break;
        case 2:
            rc = s_get_str_field(&p, end, wt, &oc->group);
            break;
        case 3:
            rc = s_get_str_field(&p, end, wt, &oc->kind);
            break;
        case 4:
            rc = s_get_str_field(&p, end, wt, &oc->namespace_);
            break;
        case 5:
            rc = s_get_str_field(&p, end, wt, &oc->name);
            break;
        case 6:
            rc = s_get_str_field(&p, end, wt, &oc->uid);
            break;
        case 7:
            rc = s_get_str_field(&p, end, wt, &oc->resource_version);
            break;
        case 8:
            rc = s_get_uint(&p, end, wt, &v);
            oc->generation = (int64_t)v;
            break;
        case 9:
            rc = s_get_uint(&p, end, wt, &v);
            oc->type = (int32_t)(uint32_t)v;
            break;
        case 10:
            rc = s_get_uint(&p, end, wt, &v);
            oc->shard = (uint32_t)v;
            break;
        case 11:
            rc = s_get_uint(&p, end, wt, &v);
            oc->event_id = v;
            break;
        case 12:
            rc = s_get_str_field(&p, end, wt, &oc->child_kind);
            break;
        case 13:
            rc = s_get_str_field(&p, end, wt, &oc->child_name);
            break;
        case 14:
            rc = s_get_str_field(&p, end, wt, &oc->child_uid);
            break;
        default:
            rc = s_skip(&p, end, wt);
            break;
        }
        if (rc < 0)
            return ERR_PARSE;
    }
    return 0;
}

/* Decodes a Heartbeat occupying exactly [p, end) into *hb. Returns 0 or ERR_PARSE. */
static int s_decode_hb(const uint8_t *p, const uint8_t *end, envwire_heartbeat_t *hb)
{
    while (p < end) {
        uint32_t num;
        unsigned wt;
        uint64_t v = 0;
        int rc;
        if (s_get_tag(&p, end, &num, &wt) < 0)
            return ERR_PARSE;
        switch (num) {
        case 1:
            rc = s_get_str_field(&p, end, wt, &hb->source);
            break;
        case 2:
            rc = s_get_uint(&p, end, wt, &v);
            hb->sequence = v;
            break;
        case 3:
            rc = s_get_uint(&p, end, wt, &v);
            hb->interval_ms = (int64_t)v;
            break;
        default:
            rc = s_skip(&p, end, wt);
            break;
        }
        if (rc < 0)
            return ERR_PARSE;
    }
    return 0;
}

int envwire_decode(const uint8_t *buf, size_t len, envwire_msg_t *out)
{
    if (!out || (!buf && len > 0))
        return ERR_INVAL;
    memset(out, 0, sizeof *out);
    const uint8_t *p = buf;
    const uint8_t *end = buf + len;
    while (p < end) {
        uint32_t num;
        unsigned wt;
        uint64_t v = 0;
        size_t n = 0;
        int rc;
        if (s_get_tag(&p, end, &num, &wt) < 0)
            return ERR_PARSE;
        switch (num) {
        case 1:
            rc = s_get_uint(&p, end, wt, &v);
            out->version = (uint32_t)v;
            break;
        case 2:
            rc = s_get_str_field(&p, end, wt, &out->source);
            break;
        case 3:
            rc = s_get_uint(&p, end, wt, &v);
            out->sequence = v;
            break;
        case 4:
            rc = s_get_uint(&p, end, wt, &v);
            out->sent_at_ms = (int64_t)v;
            break;
        case 5:
            rc = s_get_uint(&p, end, wt, &v);
            out->epoch = v;
            break;
        case 6:
            rc = s_get_uint(&p, end, wt, &v);
            out->shard_sequence = v;
            break;
        case ENVWIRE_BODY_OBJECT_CHANGED:
        case ENVWIRE_BODY_HEARTBEAT:
            // A body replaces whatever body came before it, even the same member: protobuf-c
            // frees the earlier member of a oneof rather than merging into it.
            if (wt != WT_LEN || s_get_len(&p, end, &n) < 0)
                return ERR_PARSE;
            memset(&out->object_changed, 0, sizeof out->object_changed);
            out->body = (envwire_body_t)num;
            if (num == ENVWIRE_BODY_OBJECT_CHANGED)
                rc = s_decode_oc(p, p + n, &out->object_changed);
            else
                rc = s_decode_hb(p, p + n, &out->heartbeat);
            p += n;
            break;
        default:
            rc = s_skip(&p, end, wt);
            break;
        }
        if (rc < 0)
            return ERR_PARSE;
    }
    return 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- Self-test ---- */

/* Bytes of string storage one random message may use (all its strings together). */
#define T_STORE 8192
/* Room for one encoded test message. */
#define T_WIRE 16384

/* A xorshift64* generator: deterministic, so a failure can be replayed. */
static uint64_t s_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ULL;
}

/* A random string of non-NUL bytes written into store at *used, NUL-terminated, as a view
 * (sometimes {NULL, 0}, sometimes an empty view into the store). */
static envwire_str_t s_rand_str(uint64_t *rs, char *store, size_t *used)
{
    envwire_str_t v = {NULL, 0};
    uint64_t pick = s_rand(rs) % 16;
    size_t n;
    if (pick < 3)
        n = 0;
    else if (pick < 12)
        n = 1 + s_rand(rs) % 40;
    else if (pick < 15)
        n = 100 + s_rand(rs) % 200; // two-byte length varint
    else
        n = 300 + s_rand(rs) % 300;
    if (n == 0 && pick == 0)
        return v;
    char *s = store + *used;
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(1 + s_rand(rs) % 255);
    s[n] = '\0';
    *used += n + 1;
    v.p = s;
    v.n = n;
    return v;
}

/* A random 64-bit value biased towards the edges: 0, small, huge, negative. */
static uint64_t s_rand_u64(uint64_t *rs)
{
    switch (s_rand(rs) % 6) {
    case 0:
        return 0;
    case 1:
        return s_rand(rs) % 128;
    case 2:
        return s_rand(rs) % 100000;
    case 3:
        return UINT64_MAX - s_rand(rs) % 3;
    case 4:
        return (uint64_t) - (int64_t)(1 + s_rand(rs) % 1000);
    default:
        return s_rand(rs);
    }
}

/* A random message whose strings live in store (T_STORE bytes). */
static void s_rand_msg(uint64_t *rs, envwire_msg_t *m, char *store)
{
    size_t used = 0;
    memset(m, 0, sizeof *m);
    m->version = (uint32_t)s_rand_u64(rs);
    m->source = s_rand_str(rs, store, &used);
    m->sequence = s_rand_u64(rs);
    m->sent_at_ms = (int64_t)s_rand_u64(rs);
    m->epoch = s_rand(rs) % 2 ? s_rand_u64(rs) : 0;
    m->shard_sequence = s_rand(rs) % 2 ? s_rand_u64(rs) : 0;
    uint64_t pick = s_rand(rs) % 10;
    if (pick == 0) {
        m->body = ENVWIRE_BODY_NONE;
    } else if (pick == 1) {
        m->body = ENVWIRE_BODY_OBJECT_CHANGED; // an empty submessage
    } else if (pick == 2) {
        m->body = ENVWIRE_BODY_HEARTBEAT; // an empty submessage
    } else if (pick < 5) {
        m->body = ENVWIRE_BODY_HEARTBEAT;
        m->heartbeat.source = s_rand_str(rs, store, &used);
        m->heartbeat.sequence = s_rand_u64(rs);
        m->heartbeat.interval_ms = (int64_t)s_rand_u64(rs);
    } else {
        envwire_object_changed_t *oc = &m->object_changed;
        m->body = ENVWIRE_BODY_OBJECT_CHANGED;
        oc->cluster = s_rand_str(rs, store, &used);
        oc->group = s_rand_str(rs, store, &used);
        oc->kind = s_rand_str(rs, store, &used);
        oc->namespace_ = s_rand_str(rs, store, &used);
        oc->name = s_rand_str(rs, store, &used);
        oc->uid = s_rand_str(rs, store, &used);
        oc->resource_version = s_rand_str(rs, store, &used);
        oc->generation = (int64_t)s_rand_u64(rs);
        uint64_t t = s_rand(rs) % 8;
        oc->type = t < 5 ? (int32_t)t : (t == 5 ? -1 : (int32_t)s_rand(rs));
        oc->shard = (uint32_t)s_rand_u64(rs);
        oc->event_id = s_rand_u64(rs);
        oc->child_kind = s_rand_str(rs, store, &used);
        oc->child_name = s_rand_str(rs, store, &used);
        oc->child_uid = s_rand_str(rs, store, &used);
    }
}

/* The C string protobuf-c wants for a view made by s_rand_str (NUL-terminated in the store). */
static char *s_cstr(envwire_str_t v)
{
    return v.n ? (char *)v.p : (char *)"";
}

/* Fills protobuf-c structs with the values of m. */
static void s_to_pbc(const envwire_msg_t *m, Rayfleet__Envelope *env, Rayfleet__ObjectChanged *oc,
                     Rayfleet__Heartbeat *hb)
{
    rayfleet__envelope__init(env);
    rayfleet__object_changed__init(oc);
    rayfleet__heartbeat__init(hb);
    env->version = m->version;
    env->source = s_cstr(m->source);
    env->sequence = m->sequence;
    env->sent_at_ms = m->sent_at_ms;
    env->epoch = m->epoch;
    env->shard_sequence = m->shard_sequence;
    if (m->body == ENVWIRE_BODY_OBJECT_CHANGED) {
        const envwire_object_changed_t *o = &m->object_changed;
        env->body_case = RAYFLEET__ENVELOPE__BODY_OBJECT_CHANGED;
        env->object_changed = oc;
        oc->cluster = s_cstr(o->cluster);
        oc->group = s_cstr(o->group);
        oc->kind = s_cstr(o->kind);
        oc->namespace_ = s_cstr(o->namespace_);
        oc->name = s_cstr(o->name);
        oc->uid = s_cstr(o->uid);
        oc->resource_version = s_cstr(o->resource_version);
        oc->generation = o->generation;
        oc->type = (Rayfleet__EventType)o->type;
        oc->shard = o->shard;
        oc->event_id = o->event_id;
        oc->child_kind = s_cstr(o->child_kind);
        oc->child_name = s_cstr(o->child_name);
        oc->child_uid = s_cstr(o->child_uid);
    } else if (m->body == ENVWIRE_BODY_HEARTBEAT) {
        env->body_case = RAYFLEET__ENVELOPE__BODY_HEARTBEAT;
        env->heartbeat = hb;
        hb->source = s_cstr(m->heartbeat.source);
        hb->sequence = m->heartbeat.sequence;
        hb->interval_ms = m->heartbeat.interval_ms;
    }
}

/* True when two views hold the same bytes. */
static bool s_str_same(envwire_str_t a, envwire_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* True when a decoded view and an expected message agree on every field. */
static bool s_same(const envwire_msg_t *a, const envwire_msg_t *b)
{
    if (a->version != b->version || !s_str_same(a->source, b->source) ||
        a->sequence != b->sequence || a->sent_at_ms != b->sent_at_ms || a->epoch != b->epoch ||
        a->shard_sequence != b->shard_sequence || a->body != b->body)
        return false;
    if (a->body == ENVWIRE_BODY_HEARTBEAT)
        return s_str_same(a->heartbeat.source, b->heartbeat.source) &&
               a->heartbeat.sequence == b->heartbeat.sequence &&
               a->heartbeat.interval_ms == b->heartbeat.interval_ms;
    if (a->body == ENVWIRE_BODY_NONE)
        return true;
    const envwire_object_changed_t *x = &a->object_changed;
    const envwire_object_changed_t *y = &b->object_changed;
    return s_str_same(x->cluster, y->cluster) && s_str_same(x->group, y->group) &&
           s_str_same(x->kind, y->kind) && s_str_same(x->namespace_, y->namespace_) &&
           s_str_same(x->name, y->name) && s_str_same(x->uid, y->uid) &&
           s_str_same(x->resource_version, y->resource_version) && x->generation == y->generation &&
           x->type == y->type && x->shard == y->shard && x->event_id == y->event_id &&
           s_str_same(x->child_kind, y->child_kind) && s_str_same(x->child_name, y->child_name) &&
           s_str_same(x->child_uid, y->child_uid);
}

/* True when a protobuf-c unpacked envelope holds the values of m. */
static bool s_same_pbc(const Rayfleet__Envelope *e, const envwire_msg_t *m)
{
    if (e->version != m->version || !envwire_str_eq(m->source, e->source) ||
        e->sequence != m->sequence || e->sent_at_ms != m->sent_at_ms || e->epoch != m->epoch ||
        e->shard_sequence != m->shard_sequence || (int)e->body_case != (int)m->body)
        return false;
    if (m->body == ENVWIRE_BODY_HEARTBEAT) {
        const Rayfleet__Heartbeat *hb = e->heartbeat;
        return hb && envwire_str_eq(m->heartbeat.source, hb->source) &&
               hb->sequence == m->heartbeat.sequence && hb->interval_ms == m->heartbeat.interval_ms;
    }
    if (m->body == ENVWIRE_BODY_NONE)
        return true;
    const Rayfleet__ObjectChanged *oc = e->object_changed;
    const envwire_object_changed_t *o = &m->object_changed;
    return oc && envwire_str_eq(o->cluster, oc->cluster) && envwire_str_eq(o->group, oc->group) &&
           envwire_str_eq(o->kind, oc->kind) && envwire_str_eq(o->namespace_, oc->namespace_) &&
           envwire_str_eq(o->name, oc->name) && envwire_str_eq(o->uid, oc->uid) &&
           envwire_str_eq(o->resource_version, oc->resource_version) &&
           oc->generation == o->generation && (int32_t)oc->type == o->type &&
           oc->shard == o->shard && oc->event_id == o->event_id &&
           envwire_str_eq(o->child_kind, oc->child_kind) &&
           envwire_str_eq(o->child_name, oc->child_name) &&
           envwire_str_eq(o->child_uid, oc->child_uid);
}

/* Decodes a copy of buf[0..len) held in a block of exactly len bytes, so that the sanitizers
 * catch any read past the end. Returns envwire_decode()'s result, or 1 when out of memory. */
static int s_decode_exact(const uint8_t *buf, size_t len, envwire_msg_t *out)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return 1;
    if (len)
        memcpy(copy, buf, len);
    int rc = envwire_decode(copy, len, out);
    // Touch every view so a view outside the block is caught while the block still lives.
    if (rc == 0 && out->body == ENVWIRE_BODY_OBJECT_CHANGED) {
        volatile char sink = 0;
        const envwire_object_changed_t *oc = &out->object_changed;
        const envwire_str_t *views[] = {&oc->cluster, &oc->child_uid, &out->source};
        for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
            if (views[i]->n)
                sink ^= views[i]->p[views[i]->n - 1] ^ views[i]->p[0];
        (void)sink;
    }
    free(copy);
    return rc;
}

int envwire_test(bool verbose)
{
    int failed = 0;
    static char store[T_STORE];
    static uint8_t mine[T_WIRE];
    static uint8_t theirs[T_WIRE];
    uint64_t rs = 0x9E3779B97F4A7C15ULL;
    envwire_msg_t m;
    envwire_msg_t d;
    Rayfleet__Envelope env;
    Rayfleet__ObjectChanged oc;
    Rayfleet__Heartbeat hb;

    // Views.
    envwire_str_t v = envwire_str("abc");
    CHECK(v.n == 3 && envwire_str_eq(v, "abc") && !envwire_str_eq(v, "abd"));
    CHECK(!envwire_str_eq(v, "ab") && !envwire_str_eq(v, NULL));
    v = envwire_str(NULL);
    CHECK(v.n == 0 && envwire_str_eq(v, "") && envwire_str_eq(v, NULL));

    // (1)-(3): random messages against protobuf-c, both directions.
    int encode_diff = 0;
    int decode_diff = 0;
    int pbc_diff = 0;
    for (int i = 0; i < 5000; i++) {
        s_rand_msg(&rs, &m, store);
        s_to_pbc(&m, &env, &oc, &hb);
        size_t want = rayfleet__envelope__get_packed_size(&env);
        size_t theirs_n = rayfleet__envelope__pack(&env, theirs);
        int n = envwire_encode(&m, mine, sizeof mine);
        if (n < 0 || (size_t)n != theirs_n || want != theirs_n || envwire_size(&m) != theirs_n ||
            memcmp(mine, theirs, theirs_n) != 0) {
            if (encode_diff++ == 0 && verbose)
                printf("envwire: encoding %d differs (%d vs %zu bytes)\n", i, n, theirs_n);
        }
        if (envwire_decode(theirs, theirs_n, &d) != 0 || !s_same(&d, &m))
            decode_diff++;
        if (n > 0) {
            Rayfleet__Envelope *u = rayfleet__envelope__unpack(NULL, (size_t)n, mine);
            if (!u || !s_same_pbc(u, &m))
                pbc_diff++;
            if (u)
                rayfleet__envelope__free_unpacked(u, NULL);
        }
        // Too small a buffer: refused, by exactly one byte.
        if (n > 0)
            CHECK(envwire_encode(&m, mine, (size_t)n - 1) == ERR_TOOBIG);
    }
    CHECK(encode_diff == 0);
    CHECK(decode_diff == 0);
    CHECK(pbc_diff == 0);
    CHECK(envwire_encode(NULL, mine, sizeof mine) == ERR_INVAL);
    CHECK(envwire_encode(&m, NULL, sizeof mine) == ERR_INVAL);
    m.body = (envwire_body_t)12;
    CHECK(envwire_encode(&m, mine, sizeof mine) == ERR_INVAL);
    CHECK(envwire_decode(NULL, 1, &d) == ERR_INVAL);
    CHECK(envwire_decode(mine, 1, NULL) == ERR_INVAL);
    CHECK(envwire_decode(NULL, 0, &d) == 0 && d.body == ENVWIRE_BODY_NONE && d.version == 0);
    CHECK(envwire_size(NULL) == 0);

    // Known encodings: an empty body is still sent; an empty envelope is zero bytes.
    memset(&m, 0, sizeof m);
    CHECK(envwire_encode(&m, mine, sizeof mine) == 0);
    m.body = ENVWIRE_BODY_HEARTBEAT;
    CHECK(envwire_encode(&m, mine, sizeof mine) == 2 && mine[0] == 0x5a && mine[1] == 0);
    m.version = 1;
    m.body = ENVWIRE_BODY_OBJECT_CHANGED;
    m.object_changed.generation = -1;
    CHECK(envwire_encode(&m, mine, sizeof mine) == 15 && mine[2] == 0x52 && mine[3] == 11);

    // (4) Every truncation of valid messages, and random mutations: never a crash or an
    // out-of-bounds read (the sanitizer build checks), only 0 or ERR_PARSE. When protobuf-c
    // also accepts the bytes, both must agree on the scalars.
    int bad_rc = 0;
    int disagree = 0;
    int parsed = 0;
    int refused = 0;
    for (int i = 0; i < 40; i++) {
        s_rand_msg(&rs, &m, store);
        int n = envwire_encode(&m, mine, sizeof mine);
        s_to_pbc(&m, &env, &oc, &hb);
        CHECK(n == (int)rayfleet__envelope__get_packed_size(&env)); /* protobuf-c's exact size */
        for (int cut = 0; cut < n; cut++) {
            int rc = s_decode_exact(mine, (size_t)cut, &d);
            if (rc != 0 && rc != ERR_PARSE)
                bad_rc++;
        }
    }
    for (int i = 0; i < 20000; i++) {
        s_rand_msg(&rs, &m, store);
        int n = envwire_encode(&m, mine, sizeof mine - 16);
        if (n <= 0)
            continue;
        int edits = 1 + (int)(s_rand(&rs) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(s_rand(&rs) % (uint64_t)n);
            uint64_t how = s_rand(&rs) % 4;
            if (how == 0) {
                mine[at] = (uint8_t)s_rand(&rs);
            } else if (how == 1) {
                mine[at] ^= (uint8_t)(1u << (s_rand(&rs) % 8));
            } else if (how == 2 && n > 1) {
                memmove(mine + at, mine + at + 1, (size_t)n - at - 1);
                n--;
            } else {
                memmove(mine + at + 1, mine + at, (size_t)n - at);
                mine[at] = (uint8_t)s_rand(&rs);
                n++;
            }
        }
        int rc = s_decode_exact(mine, (size_t)n, &d);
        if (rc != 0 && rc != ERR_PARSE)
            bad_rc++;
        if (rc == 0)
            parsed++;
        else
            refused++;
        Rayfleet__Envelope *u = rayfleet__envelope__unpack(NULL, (size_t)n, mine);
        if (u && rc == 0 &&
            (u->version != d.version || u->sequence != d.sequence ||
             u->sent_at_ms != d.sent_at_ms || (int)u->body_case != (int)d.body ||
             (d.body == ENVWIRE_BODY_OBJECT_CHANGED &&
              (u->object_changed->shard != d.object_changed.shard ||
               u->object_changed->event_id != d.object_changed.event_id))))
            disagree++;
        if (u)
            rayfleet__envelope__free_unpacked(u, NULL);
    }
    CHECK(bad_rc == 0);
    CHECK(disagree == 0);
    CHECK(parsed > 0 && refused > 0);
    if (verbose)
        printf("envwire: mutations: %d decoded, %d refused, %d disagreements with protobuf-c\n",
               parsed, refused, disagree);

    // Specific malformed input.
    static const uint8_t overlong[] = {0x18, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(envwire_decode(overlong, sizeof overlong, &d) == ERR_PARSE);
    static const uint8_t ten[] = {0x18, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0x01}; // UINT64_MAX, 10 bytes
    CHECK(envwire_decode(ten, sizeof ten, &d) == 0 && d.sequence == UINT64_MAX);
    static const uint8_t past_end[] = {0x12, 0x05, 'a', 'b'};
    CHECK(envwire_decode(past_end, sizeof past_end, &d) == ERR_PARSE);
    static const uint8_t wrong_wt[] = {0x0a, 0x01, 'a'}; // version as a string
    CHECK(envwire_decode(wrong_wt, sizeof wrong_wt, &d) == ERR_PARSE);
    static const uint8_t wrong_wt2[] = {0x10, 0x01}; // source as a varint
    CHECK(envwire_decode(wrong_wt2, sizeof wrong_wt2, &d) == ERR_PARSE);
    static const uint8_t body_varint[] = {0x50, 0x01}; // object_changed as a varint
    CHECK(envwire_decode(body_varint, sizeof body_varint, &d) == ERR_PARSE);
    static const uint8_t tag0[] = {0x00, 0x01};
    CHECK(envwire_decode(tag0, sizeof tag0, &d) == ERR_PARSE);
    static const uint8_t group[] = {0xab, 0x01}; // field 21, start group
    CHECK(envwire_decode(group, sizeof group, &d) == ERR_PARSE);
    static const uint8_t nested_past[] = {0x52, 0x04, 0x0a, 0x05, 'a', 'b', 'c', 'd'};
    CHECK(envwire_decode(nested_past, sizeof nested_past, &d) == ERR_PARSE);
    static const uint8_t fixed_short[] = {0xa9, 0x01, 1, 2, 3}; // field 21 fixed64, 3 bytes
    CHECK(envwire_decode(fixed_short, sizeof fixed_short, &d) == ERR_PARSE);
    static const uint8_t big_tag[] = {0x88, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00};
    CHECK(envwire_decode(big_tag, sizeof big_tag, &d) == ERR_PARSE);

    // (5) Unknown fields everywhere, fields out of order, repeated scalars (last wins).
    static const uint8_t odd[] = {
        0x52, 0x13, // object_changed, 19 bytes:
        0x50, 0x2a, //   shard 42
        0x7a, 0x02, 'z',  'z', //   field 15 (unknown), "zz"
        0x2a, 0x02, 'r',  'c', //   name "rc"
        0x0a, 0x01, 'c', //   cluster "c"
        0x58, 0x07, //   event_id 7
        0x48, 0x03, //   type 3
        0x50, 0x2b, //   shard 43 (last wins)
        0x98, 0x06, 0x05, // field 99 varint (unknown)
        0x91, 0x03, 1,    2,    3,    4, 5, 6, 7, 8, // field 50 fixed64 (unknown)
        0x9d, 0x03, 1,    2,    3,    4, // field 51 fixed32 (unknown)
        0xa2, 0x03, 0x02, 0xff, 0xff, // field 52 bytes (unknown)
        0x12, 0x03, 'p',  'u',  'b', // source "pub"
        0x08, 0x02, // version 2
        0x08, 0x01, // version 1 (last wins)
        0x18, 0x09, // sequence 9
    };
    CHECK(envwire_decode(odd, sizeof odd, &d) == 0);
    CHECK(d.version == 1 && d.sequence == 9 && envwire_str_eq(d.source, "pub"));
    CHECK(d.body == ENVWIRE_BODY_OBJECT_CHANGED && d.object_changed.shard == 43);
    CHECK(envwire_str_eq(d.object_changed.name, "rc"));
    CHECK(envwire_str_eq(d.object_changed.cluster, "c"));
    CHECK(d.object_changed.event_id == 7 && d.object_changed.type == 3);
    CHECK(d.object_changed.kind.n == 0);
    Rayfleet__Envelope *u = rayfleet__envelope__unpack(NULL, sizeof odd, odd);
    CHECK(u != NULL);
    if (u) {
        CHECK(u->version == 1 && u->object_changed && u->object_changed->shard == 43);
        rayfleet__envelope__free_unpacked(u, NULL);
    }

    // A second body replaces the first, as protobuf-c does with a oneof.
    static const uint8_t two_bodies[] = {
        0x52, 0x03, 0x0a, 0x01, 'a', // object_changed {cluster "a"}
        0x5a, 0x02, 0x10, 0x05, // heartbeat {sequence 5}
        0x52, 0x02, 0x50, 0x07, // object_changed {shard 7}
    };
    CHECK(envwire_decode(two_bodies, sizeof two_bodies, &d) == 0);
    CHECK(d.body == ENVWIRE_BODY_OBJECT_CHANGED && d.object_changed.shard == 7);
    CHECK(d.object_changed.cluster.n == 0);
    u = rayfleet__envelope__unpack(NULL, sizeof two_bodies, two_bodies);
    CHECK(u != NULL);
    if (u) {
        CHECK(u->body_case == RAYFLEET__ENVELOPE__BODY_OBJECT_CHANGED);
        CHECK(u->object_changed->shard == 7 && u->object_changed->cluster[0] == '\0');
        rayfleet__envelope__free_unpacked(u, NULL);
    }

    return SELFTEST_RESULT("envwire", verbose);
}

#endif /* RF_SELFTEST */
