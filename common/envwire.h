/*
 * envwire: a hand-written protobuf codec for the bus's hot messages (rayfleet.Envelope).
 *
 * The bus sends one rayfleet.Envelope (proto/rayfleet.proto) per message. protobuf-c packs it in
 * ~400 ns and unpacks it in ~500 ns, mostly spent walking descriptors and allocating one block
 * per string; that alone is more than ZeroMQ's own cost per message. This module encodes and
 * decodes the same wire format directly:
 *
 *   - envwire_encode() writes exactly the bytes rayfleet__envelope__pack() writes for the same
 *     values: fields in field-number order, proto3 defaults (0, empty string) omitted, uint32 /
 *     uint64 / int64 / enum as plain varints (a negative int64 or enum takes 10 bytes; no
 *     zigzag, as there are no sint fields), and the body submessage written whenever the body
 *     case is set, even when the submessage itself is empty (as protobuf-c does for a oneof).
 *   - envwire_decode() reads any valid proto3 encoding of an Envelope without allocating: the
 *     strings of the result are views into the caller's buffer. Fields may come in any order;
 *     a scalar or string that appears twice keeps its last value; unknown fields are skipped by
 *     their wire type; a body field replaces any body decoded before it (protobuf-c's oneof
 *     rule). Malformed input (truncation, a varint over 10 bytes, a length past the end of its
 *     message, a known field with the wrong wire type, field number 0, group wire types) is
 *     refused with ERR_PARSE. The decoder never reads outside [buf, buf + len).
 *
 * So a protobuf-c peer (or any other protobuf implementation) interoperates with a bus using
 * this codec in either direction. Strings are byte strings: no UTF-8 check is made (protobuf-c
 * makes none either), and a string view is not NUL-terminated.
 *
 * When proto/rayfleet.proto gains a field, this module must gain it too; until then the new
 * field is skipped as unknown by the decoder (and never sent by the encoder). The self-test
 * compares both directions against protobuf-c on random messages.
 */
#ifndef RF_ENVWIRE_H
#define RF_ENVWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENVWIRE_VARINT_MAX 10 /* longest varint accepted, in bytes */

/* A borrowed byte string: `n` bytes at `p`, not NUL-terminated. {NULL, 0} is the empty string. */
typedef struct {
    const char *p; /* the first byte; may be NULL when n is 0 */
    size_t n; /* length in bytes */
} envwire_str_t;

/* Which body an envelope carries; the values are the protobuf field numbers. */
typedef enum {
    ENVWIRE_BODY_NONE = 0, /* no body field present */
    ENVWIRE_BODY_OBJECT_CHANGED = 10, /* Envelope.object_changed */
    ENVWIRE_BODY_HEARTBEAT = 11 /* Envelope.heartbeat */
} envwire_body_t;

/* rayfleet.ObjectChanged, field for field. */
typedef struct {
    envwire_str_t cluster; /* 1: member cluster, as named in the configuration */
    envwire_str_t group; /* 2: API group of the owning object */
    envwire_str_t kind; /* 3: kind of the owning object */
    envwire_str_t namespace_; /* 4: namespace of the owning object */
    envwire_str_t name; /* 5: name of the owning object */
    envwire_str_t uid; /* 6: uid of the owning object */
    envwire_str_t resource_version; /* 7: of the object that changed */
    int64_t generation; /* 8: of the owning object, 0 when unknown */
    int32_t type; /* 9: a rayfleet.EventType value (open enum: any int32) */
    uint32_t shard; /* 10: shard of the owning object's key */
    uint64_t event_id; /* 11: the watcher's sequence number */
    envwire_str_t child_kind; /* 12: the object that changed, when not the owner */
    envwire_str_t child_name; /* 13: its name */
    envwire_str_t child_uid; /* 14: its uid */
} envwire_object_changed_t;

/* rayfleet.Heartbeat, field for field. */
typedef struct {
    envwire_str_t source; /* 1: the sending process */
    uint64_t sequence; /* 2: heartbeat sequence number */
    int64_t interval_ms; /* 3: the sender's heartbeat interval */
} envwire_heartbeat_t;

/* rayfleet.Envelope, field for field. Only the body member named by `body` is meaningful. */
typedef struct {
    uint32_t version; /* 1: schema version of the sender */
    envwire_str_t source; /* 2: the sending process */
    uint64_t sequence; /* 3: per-source sequence number */
    int64_t sent_at_ms; /* 4: sender's wall clock, ms since the epoch */
    uint64_t epoch; /* 5: the sender's incarnation, 0 when not set */
    uint64_t shard_sequence; /* 6: ObjectChanged: per (source, epoch, shard) sequence, 0: not set */
    envwire_body_t body; /* which of the members below is set */
    union {
        envwire_object_changed_t object_changed; /* 10: when body is OBJECT_CHANGED */
        envwire_heartbeat_t heartbeat; /* 11: when body is HEARTBEAT */
    };
} envwire_msg_t;

/* A view of the NUL-terminated string `s` (NULL gives the empty view). The view borrows `s`. */
envwire_str_t envwire_str(const char *s);

/* True when the view holds exactly the NUL-terminated string `s`. */
bool envwire_str_eq(envwire_str_t v, const char *s);

/* The exact number of bytes envwire_encode() writes for `m`. */
size_t envwire_size(const envwire_msg_t *m);

/* Encodes `m` (borrowed) as a protobuf rayfleet.Envelope into out[0..cap), byte for byte what
 * rayfleet__envelope__pack() writes for the same values. Returns the number of bytes written,
 * ERR_TOOBIG when they would not fit in `cap` (or exceed INT_MAX; nothing useful is written
 * then), or ERR_INVAL (NULL argument or a body value not in envwire_body_t). */
int envwire_encode(const envwire_msg_t *m, uint8_t *out, size_t cap);

/* Decodes the protobuf rayfleet.Envelope in buf[0..len) into *out, which is overwritten. The
 * string views in *out point into `buf`: they are valid while the caller keeps `buf`. Nothing
 * is allocated. Returns 0, ERR_PARSE (malformed input; *out is then unspecified) or ERR_INVAL
 * (NULL out, or NULL buf with len > 0). */
int envwire_decode(const uint8_t *buf, size_t len, envwire_msg_t *out);

/* Self-test: compares against protobuf-c in both directions and feeds malformed input. */
int envwire_test(bool verbose);

#endif
