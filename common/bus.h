/*
 * bus: publish/subscribe between rayfleet processes, ZeroMQ carrying protobuf envelopes.
 *
 * Wire format. Every message is exactly one ZeroMQ frame: a topic, one space (BUS_TOPIC_SEP),
 * then the body.
 *
 *   topic    ASCII, 1..BUS_TOPIC_MAX bytes, no space, no NUL:
 *              "SSSS/ObjectChanged"   SSSS = shard, decimal, zero-padded to BUS_SHARD_DIGITS
 *                                     digits ("0042/ObjectChanged")
 *              "SSSS/Batch"           several ObjectChanged of shard SSSS (see Batches)
 *              "hb/<source>"          a heartbeat ("hb/watcher/0")
 *   body     a packed rayfleet.Envelope (proto/rayfleet.proto), at most max_frame bytes,
 *            version BUS_VERSION, with source, sequence and sent_at_ms set by the bus; for a
 *            batch, length-delimited Envelopes, at most max_frame bytes in all.
 *
 * One frame rather than two (topic frame + body frame) because ZeroMQ filters subscriptions on
 * the head of the first frame either way, and a second frame costs about a fifth of ZeroMQ's
 * per-message throughput (measured with bench-bus).
 *
 * Batches. A publisher coalesces the ObjectChanged envelopes it publishes on one shard within one
 * loop turn into one frame:
 *
 *   "SSSS/Batch" SEP <len1><env1><len2><env2>...
 *
 * each len a protobuf varint giving the size of the packed Envelope after it: the standard
 * length-delimited protobuf stream (what protobuf's writeDelimitedTo / parseDelimitedFrom speak),
 * so any protobuf library can walk it. Every envelope in the frame belongs to shard SSSS and
 * they are in publish order; the body after the separator is at most max_frame bytes. A frame
 * that would carry ONE envelope is sent in the single form "SSSS/ObjectChanged" SEP <env>, byte
 * for byte as without batching; so are all frames of a publisher with batch_max 1. Heartbeats
 * are never batched. The subscription prefix "SSSS/" matches both forms, so subscriptions and
 * the forwarder (which checks sizes only) are unaffected.
 * Why: ZeroMQ's cost is per message (pipe writes, the XPUB subscription trie, message
 * allocation, the receiver's wake-up), not per byte; at ~200-byte events it dominates the whole
 * path. Coalescing a burst into one frame pays it once per batch instead of once per event,
 * while a lone event (the common case at low rates) keeps the single form and its latency:
 * a batch is sent no later than the end of the loop turn that started it (a before-sleep hook).
 * A subscriber that predates batches counts a batch frame as malformed, so subscribers are
 * upgraded before publishers, or publishers run with batch_max 1.
 *
 * The bus encodes and decodes envelopes with envwire (common/envwire.h), which writes exactly the
 * bytes protobuf-c would and reads any valid protobuf encoding without allocating, so a peer
 * using protobuf-c or any other protobuf library interoperates. Handlers receive the decoded
 * envwire_msg_t, whose strings are (pointer, length) views into the received frame.
 *
 * Because the shard has a fixed width and is followed by '/', the subscription prefix "0042/"
 * matches shard 42 and nothing else. Heartbeat topics begin with "hb/", which no shard topic
 * does; every subscriber subscribes to BUS_TOPIC_HEARTBEAT, so it receives all heartbeats.
 *
 * Topology. Publishers connect to the forwarder's frontend (an XSUB socket), subscribers to its
 * backend (an XPUB socket); the forwarder copies messages frontend -> backend and subscriptions
 * backend -> frontend. It runs embedded on any loop (bus_forwarder_new) or as the standalone
 * process `rayfleet-bus` (services/bus). An endpoint beginning with '@' is bound and one
 * beginning with '>' is connected; without a prefix, publishers and subscribers connect and the
 * forwarder binds (the CZMQ convention), so a publisher can also talk to a subscriber directly.
 *
 * Flow control. Every socket has a bounded high-water mark (never 0). Publishers use XPUB with
 * ZMQ_XPUB_NODROP, so a full queue makes the send fail with EAGAIN. A batch refused that way is
 * NOT dropped: it stays pending (bounded by batch_max and max_frame) and is retried every
 * BUS_FLUSH_RETRY_MS and at every loop turn; meanwhile a publish that would need the pending
 * batch sent first (its shard differs, or the batch is full) is refused with ERR_AGAIN, not
 * queued, and counted in dropped_hwm. So ERR_AGAIN from a publish means exactly what it meant
 * before batching: this event was not taken, retry or drop it; an event a publish accepted (0)
 * is never dropped for lack of room, except by bus_pub_destroy(). The forwarder's backend is
 * lossy on purpose, so one slow subscriber cannot stall the others; ZeroMQ drops silently there
 * and cannot tell us.
 *
 * Validation. A received message with more than one frame, no topic, a body over max_frame (checked
 * before anything is decoded), bytes that do not decode, an unsupported version, a missing body
 * or a topic that disagrees with the body is counted in bus_stats_t, logged (at most once per
 * BUS_LOG_INTERVAL_MS per object) and dropped. In a batch, each length is checked against
 * max_frame (oversize) and against the end of the frame (malformed) before its envelope is
 * decoded; a bad length, an empty batch or trailing bytes count once and drop the rest of the
 * frame, while an envelope that is framed correctly but fails the checks above (or is not an
 * ObjectChanged) counts once and is skipped alone. Subscribers also set ZMQ_MAXMSGSIZE to
 * BUS_MAXMSGSIZE_FACTOR * max_frame, so a peer sending far larger frames is disconnected by
 * ZeroMQ before the frame is stored in memory.
 *
 * Liveness. Publishers and the forwarder send a Heartbeat every heartbeat_ms (a loop timer).
 * Subscribers remember each source's last heartbeat and the interval it announced; a source
 * silent for `liveness` of its intervals is reported lost, and reported seen when it is heard
 * again (and the first time it is heard). Only heartbeats count for liveness.
 *
 * Gaps. ZeroMQ drops silently: a publisher's XPUB drops what no subscription matches (the
 * forwarder is down, or a subscription has not reached it yet), the forwarder's backend drops at
 * its high-water mark, and a reconnect loses what was in flight. So every envelope carries
 * Envelope.epoch, the sender's incarnation (its start time in microseconds, unique per process;
 * a new value means the sender restarted), and every ObjectChanged carries
 * Envelope.shard_sequence, 1, 2, 3, ... per (source, epoch, shard): a subscriber that takes only
 * some shards can still tell that it missed an event of one of them. (Envelope.sequence stays
 * the per-source count of everything sent, which a partial subscriber cannot check.) An event a
 * publish refuses (ERR_AGAIN, ERR_TOOBIG, ...) still uses up its number, so a dropped event is
 * seen as missed. The subscriber keeps, per source, the epoch, the next heartbeat sequence and
 * the next shard sequence of each shard (a table of BUS_SHARD_LIMIT entries, for at most
 * BUS_SEQ_SOURCES_MAX sources: in practice the watchers), and reports to the gap handler:
 *   BUS_GAP_SHARD    numbers skipped on one shard (`missed` of them);
 *   BUS_GAP_SOURCE   heartbeats skipped (`missed`), or the first heartbeat of a source after
 *                    another source restarted (a restarted forwarder broke every path through
 *                    it; the source's heartbeat arriving again shows its path is back), or a
 *                    source without epochs heard again after it was lost;
 *   BUS_GAP_RESTART  the source's epoch changed: it restarted, and what it sent before the
 *                    first envelope heard from the new epoch is unknown.
 * The first epoch heard from a source, and the first number on a shard just subscribed, are
 * taken as they come: what was sent before is not for this subscriber, whose owner scans the
 * state once the subscription is in place. A source-wide report (shard BUS_SHARD_ALL) comes
 * with the heartbeat or envelope that shows the path works again, so a rescan made then sees
 * everything the source stored before it published. Senders without epochs (older versions,
 * epoch 0) are not checked.
 *
 * Security. With curve_server_key set, clients use CurveZMQ; with curve_secret_key set, both
 * forwarder sockets (frontend and backend) are CURVE servers and the forwarder authenticates
 * every client against an allow-list of public keys (curve_allow, required with a secret key):
 * it answers ZeroMQ's ZAP requests (RFC 27, inproc BUS_ZAP_ENDPOINT, on the forwarder's own
 * loop) with 200 for a listed key and 400 for any other. A refused key is counted in
 * auth_refused and logged at most once per BUS_LOG_INTERVAL_MS per key (public keys only; a
 * secret key is never logged). A peer that fails the handshake before ZAP is asked (plain ZMTP,
 * a client with the wrong server key) is counted in auth_failed and logged, rate-limited, from
 * a socket monitor. So no message of a peer without a listed key ever reaches a subscriber, and
 * a subscriber without one never receives. Keys are Z85 strings (40 characters); the files
 * holding them are read by common/busopt.h. A ZeroMQ context has one ZAP handler, so one CURVE
 * (or peer-credential) forwarder per context.
 *
 * Local peers (ipc_auth BUS_IPC_PEERCRED). On an ipc:// endpoint CURVE buys nothing a local
 * attacker lacks: a process of the same uid can read the key files, and encrypting every byte
 * three times per event (publisher, forwarder in and out, subscriber) costs about half the
 * forwarder's throughput. So with ipc_auth BUS_IPC_PEERCRED a forwarder socket bound on ipc://
 * runs ZeroMQ's NULL mechanism with a ZAP domain (BUS_ZAP_DOMAIN_IPC) and its ZAP handler admits
 * a peer only when the kernel's credentials of the connection (SO_PEERCRED, taken at connect
 * time; libzmq puts them in the ZAP request's address frame as "host:UID:GID:PID") name a uid of
 * ipc_uids (none: the forwarder's own effective uid). A request without credentials is refused
 * (fail closed). Refusals count in auth_refused, admissions in auth_allowed, and are logged at
 * most once per BUS_LOG_INTERVAL_MS per uid; a CURVE client at a peer-credential socket fails the
 * handshake (auth_failed). Publishers and subscribers with BUS_IPC_PEERCRED skip CURVE on an
 * ipc:// endpoint (their keys, if any, serve tcp:// endpoints). A tcp:// (or any non-ipc)
 * endpoint keeps CURVE whatever ipc_auth says, so one forwarder may bind its frontend on ipc://
 * (peer credentials) and its backend on tcp:// (CURVE). The socket file itself is 0600 in a state
 * directory of 0700 (privfs.h), which already keeps other uids out; the uid check also covers an
 * abstract socket ("ipc://@name", which has no file mode), a socket in a shared directory and the
 * moment between bind() and the chmod. libzmq's ZMQ_IPC_FILTER_UID would refuse in accept()
 * without telling anyone (no count, no log) and is listed as deprecated in zmq.h in favour of ZAP.
 *
 * Threading: every object belongs to one loop and one thread. The ZeroMQ context is created once
 * by main() and passed in.
 */
#ifndef RF_BUS_H
#define RF_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envwire.h"
#include "loop.h"
#include "rayfleet.pb-c.h"

#define BUS_VERSION 1 /* Envelope.version this code sends and accepts */
#define BUS_SHARD_DIGITS 4 /* width of the zero-padded shard in topics */
#define BUS_SHARD_LIMIT 10000 /* shards are 0 .. BUS_SHARD_LIMIT - 1 */
#define BUS_TOPIC_MAX 128 /* longest topic frame accepted or sent, in bytes */
#define BUS_TOPIC_HEARTBEAT "hb/" /* prefix of every heartbeat topic */
#define BUS_TOPIC_SEP ' ' /* ends the topic at the head of every frame */
#define BUS_TOPIC_OBJECT_CHANGED "ObjectChanged" /* topic suffix after "SSSS/" */
#define BUS_TOPIC_BATCH "Batch" /* topic suffix after "SSSS/" of a batch frame */
#define BUS_BATCH_DEFAULT 64 /* envelopes per batch frame when the options say 0 */
#define BUS_BATCH_MAX 4096 /* largest batch_max accepted */
#define BUS_FLUSH_RETRY_MS 10 /* retry period of a batch refused at the high-water mark */
#define BUS_SOURCE_MAX 63 /* longest source name, in bytes */
#define BUS_ENDPOINT_MAX 256 /* longest endpoint string, in bytes */
#define BUS_HWM_DEFAULT 10000 /* high-water mark when the options say 0 */
#define BUS_HWM_MAX 10000000 /* largest high-water mark accepted */
#define BUS_FRAME_MAX_DEFAULT 65536 /* largest Envelope frame when the options say 0 */
#define BUS_FRAME_MAX_LIMIT (16 << 20) /* largest max_frame accepted */
#define BUS_MAXMSGSIZE_FACTOR 4 /* ZMQ_MAXMSGSIZE = factor * max_frame (disconnects) */
#define BUS_HEARTBEAT_MS_DEFAULT 1000 /* heartbeat interval when the options say 0 */
#define BUS_HEARTBEAT_MS_MAX 3600000 /* longest heartbeat interval accepted (1 h) */
#define BUS_LIVENESS_DEFAULT 3 /* missed intervals before a peer is lost */
#define BUS_LIVENESS_MAX 1000 /* largest liveness accepted */
#define BUS_PEERS_MAX 1024 /* sources a subscriber tracks at most */
#define BUS_SEQ_SOURCES_MAX 16 /* sources whose shard sequences a subscriber checks at most */
#define BUS_SHARD_ALL UINT32_MAX /* bus_gap_t.shard of a gap that may touch every shard */
#define BUS_RECV_BATCH 256 /* messages handled per readiness before polling again */
#define BUS_LOG_INTERVAL_MS 1000 /* at most one drop warning per object per interval */
#define BUS_FNV_OFFSET 0xcbf29ce484222325ull /* FNV-1a 64 offset basis (bus_shard_of) */
#define BUS_FNV_PRIME 0x100000001b3ull /* FNV-1a 64 prime */
#define BUS_CURVE_KEY_LEN 40 /* length of a Z85-encoded CURVE key */
#define BUS_CURVE_KEY_BYTES 32 /* length of a binary CURVE key */
#define BUS_ALLOW_MAX 4096 /* most client keys in a forwarder's allow-list */
#define BUS_ZAP_ENDPOINT "inproc://zeromq.zap.01" /* where libzmq sends ZAP requests (RFC 27) */
#define BUS_ZAP_DOMAIN "rayfleet-bus" /* ZAP domain of the forwarder's CURVE sockets */
#define BUS_ZAP_DOMAIN_IPC "rayfleet-bus-ipc" /* ZAP domain of its peer-credential sockets */
#define BUS_IPC_UIDS_MAX 64 /* most uids in a forwarder's ipc_uids */
#define BUS_REFUSED_KEYS_MAX 64 /* refused keys remembered for the once-per-interval log */
#define BUS_FORWARDER_SOURCE "bus" /* the forwarder's heartbeat source by default */
#define BUS_FRONTEND_DEFAULT "tcp://127.0.0.1:5570" /* rayfleet-bus frontend (publishers) */
#define BUS_BACKEND_DEFAULT "tcp://127.0.0.1:5571" /* rayfleet-bus backend (subscribers) */

/* How ipc:// endpoints are authenticated (see Local peers above). */
typedef enum {
    BUS_IPC_CURVE = 0, /* as tcp://: CURVE when keys are given, else open */
    BUS_IPC_PEERCRED = 1 /* the kernel's peer uid, checked by the forwarder's ZAP handler */
} bus_ipc_auth_t;

typedef struct bus_pub bus_pub_t;
typedef struct bus_sub bus_sub_t;
typedef struct bus_forwarder bus_forwarder_t;

/* Settings of a publisher, subscriber or forwarder. Zero-initialise, then set what you need: a
 * zero numeric field means its default. Strings are copied by the constructors. */
typedef struct {
    const char *source; /* pub/forwarder: name in envelopes and heartbeats ("watcher/0") */
    const char *endpoint; /* pub/sub: the forwarder's frontend (pub) or backend (sub) */
    const char *frontend; /* forwarder: endpoint publishers connect to */
    const char *backend; /* forwarder: endpoint subscribers connect to */
    int hwm; /* send and receive high-water mark, 1..BUS_HWM_MAX; 0 = default */
    size_t max_frame; /* largest Envelope (or batch body), bytes; 0 = BUS_FRAME_MAX_DEFAULT */
    int batch_max; /* pub: envelopes per frame, 1..BUS_BATCH_MAX; 0 = default; 1 = no batching */
    int64_t heartbeat_ms; /* pub/forwarder: heartbeat interval; sub: liveness check period */
    int liveness; /* sub: missed intervals before a peer is lost; 0 = default */
    const char *curve_server_key; /* pub/sub: the forwarder's Z85 public key; NULL = no CURVE */
    const char *curve_public_key; /* pub/sub: own Z85 public key (NULL: an ephemeral pair) */
    const char *curve_secret_key; /* pub/sub: own Z85 secret key; forwarder: server secret key */
    const char *const *curve_allow; /* forwarder: Z85 public keys of the clients allowed */
    size_t curve_allow_n; /* forwarder: entries in curve_allow, 1..BUS_ALLOW_MAX with CURVE */
    bus_ipc_auth_t ipc_auth; /* all: how ipc:// endpoints authenticate (BUS_IPC_CURVE = 0) */
    const uint32_t *ipc_uids; /* forwarder, BUS_IPC_PEERCRED: uids allowed; NULL: own euid */
    size_t ipc_uids_n; /* forwarder: entries in ipc_uids, 0..BUS_IPC_UIDS_MAX */
} bus_options_t;

/* Counters of one object. All counters only grow. */
typedef struct {
    uint64_t sent; /* envelopes sent (ObjectChanged and heartbeats) */
    uint64_t frames_sent; /* pub/forwarder: frames sent by the bus itself (batches, heartbeats) */
    uint64_t received; /* ObjectChanged envelopes handed to the handler */
    uint64_t frames_received; /* sub: frames received (each may hold a batch) */
    uint64_t forwarded; /* forwarder: messages copied frontend -> backend */
    uint64_t heartbeats_sent; /* heartbeats sent */
    uint64_t heartbeats_received; /* valid heartbeats received */
    uint64_t dropped_hwm; /* sends refused because a queue was at its high-water mark */
    uint64_t dropped_malformed; /* frame count, garbage, truncated, version, body or topic */
    uint64_t dropped_oversize; /* frames over max_frame, dropped before decoding */
    uint64_t peers_lost; /* sub: times a source was declared lost */
    uint64_t peers_seen; /* sub: times a source was first heard or heard again */
    uint64_t gaps; /* sub: gaps reported (see Gaps above), of every kind */
    uint64_t bytes_forwarded; /* forwarder: bytes of the messages copied frontend -> backend */
    int64_t subscriptions; /* pub and forwarder: topic subscriptions currently asked of it (XPUB) */
    int64_t pending; /* pub: envelopes accepted and not yet handed to ZeroMQ (the batch) */
    uint64_t auth_allowed; /* forwarder: listed CURVE keys and allowed ipc uids (ZAP 200) */
    uint64_t auth_refused; /* forwarder: unlisted keys, other uids, no credentials (ZAP 400) */
    uint64_t auth_failed; /* forwarder: handshakes failed before ZAP (plain ZMTP, bad CURVE) */
    uint64_t auth_ipc_allowed; /* forwarder: of auth_allowed, ipc peers admitted by uid */
    uint64_t auth_ipc_refused; /* forwarder: of auth_refused, ipc peers refused by uid */
} bus_stats_t;

/* Called for each valid ObjectChanged envelope: msg->body is ENVWIRE_BODY_OBJECT_CHANGED, its
 * version is supported, and msg->object_changed.shard is subscribed and matches the topic.
 * `msg` and every string view in it are borrowed: they point into the received frame and are
 * valid only during the call (copy what must outlive it). Views are not NUL-terminated. Return 0
 * to go on or a negative value to stop the loop with it (the envelopes after this one in the
 * same batch frame are then dropped, uncounted). Must not destroy `sub`. */
typedef int(bus_msg_fn)(bus_sub_t *sub, const envwire_msg_t *msg, void *arg);

/* What happened to a peer. */
typedef enum {
    BUS_PEER_SEEN = 1, /* first heartbeat from a source, or the first after it was lost */
    BUS_PEER_LOST = 2 /* no heartbeat for liveness x the source's interval */
} bus_peer_event_t;

/* Called when a source is seen or lost; `source` is borrowed for the call. */
typedef void(bus_peer_fn)(bus_sub_t *sub, const char *source, bus_peer_event_t event, void *arg);

/* What kind of gap a subscriber saw (see Gaps above). */
typedef enum {
    BUS_GAP_SHARD = 1, /* shard sequence numbers of one shard skipped */
    BUS_GAP_SOURCE = 2, /* heartbeats skipped, or the source's path was broken */
    BUS_GAP_RESTART = 3 /* the source restarted (a new epoch) */
} bus_gap_kind_t;

/* One gap: events of `source` may have been lost. */
typedef struct {
    const char *source; /* the sending process; borrowed for the call */
    bus_gap_kind_t kind; /* what was seen */
    uint32_t shard; /* BUS_GAP_SHARD: the shard; else BUS_SHARD_ALL */
    uint64_t missed; /* numbers skipped (events, or heartbeats); 0 when unknown */
} bus_gap_t;

/* Called when a gap is seen, before the envelope that showed it is handed to the message
 * handler; `gap` is borrowed for the call. Must not destroy `sub`. */
typedef void(bus_gap_fn)(bus_sub_t *sub, const bus_gap_t *gap, void *arg);

/* ---- Topics ---- */

/* Writes the topic of an ObjectChanged for `shard` ("0042/ObjectChanged") into out (size
 * `size`). Returns the length, or ERR_INVAL (shard out of range) or ERR_TOOBIG (size). */
int bus_topic_object_changed(uint32_t shard, char *out, size_t size);

/* Writes the subscription prefix of `shard` ("0042/"). Same returns as above. */
int bus_topic_shard_prefix(uint32_t shard, char *out, size_t size);

/* THE shard function: every watcher and reconciler maps a Ray object's key to its shard with it.
 * FNV-1a 64 of the bytes "cluster/ns/name" (NULL strings count as ""), modulo nshards. Returns
 * the shard in 0 .. nshards - 1, or 0 when nshards is 0. */
uint32_t bus_shard_of(const char *cluster, const char *ns, const char *name, uint32_t nshards);

/* True for an ipc:// endpoint, with or without the '@' (bind) or '>' (connect) prefix. */
bool bus_endpoint_is_ipc(const char *endpoint);

/* ---- Publisher ---- */

/* A publisher on `loop` using ZeroMQ context `zctx`; opts->source and opts->endpoint are
 * required. It heartbeats every heartbeat_ms from now on, and registers a before-sleep hook on
 * `loop` that sends the pending batch at every turn (so destroy it before the loop). Returns
 * NULL on a bad option, a ZeroMQ failure or out of memory (logged). */
bus_pub_t *bus_pub_new(loop_t *loop, void *zctx, const bus_options_t *opts);

/* Tries once to send a pending batch (refused at the high-water mark, it is dropped, counted in
 * dropped_hwm and logged), stops the heartbeat, closes the socket (linger 0: whatever ZeroMQ has
 * not sent yet is dropped), frees, and sets *pub_p to NULL. NULL-safe. */
void bus_pub_destroy(bus_pub_t **pub_p);

/* Publishes `oc` (borrowed, not modified) on its shard's topic inside an Envelope whose source,
 * sequence and sent_at_ms the bus fills: encodes it and appends it to the pending batch. The
 * batch is sent first when `oc` is on another shard or would pass max_frame, and sent after
 * the append when it holds batch_max envelopes; otherwise it leaves with bus_pub_flush() or the
 * loop's before-sleep hook at the end of this loop turn. Never blocks. Returns 0 (accepted: it
 * will be sent in order), ERR_INVAL (NULL or shard out of range), ERR_TOOBIG (packed size over
 * max_frame; counted as oversize), ERR_AGAIN (a send this publish needed was refused at the
 * high-water mark; counted in dropped_hwm; THIS envelope was not taken and the pending batch
 * stays pending), ERR_NOMEM or ERR_IO (a send failed otherwise: the pending batch is dropped). */
int bus_pub_publish(bus_pub_t *pub, const Rayfleet__ObjectChanged *oc);

/* The same as bus_pub_publish() for a message held as views (borrowed; strings need not be
 * NUL-terminated), which saves measuring every string. Same returns. */
int bus_pub_publish_view(bus_pub_t *pub, const envwire_object_changed_t *oc);

/* Sends the pending batch now (nothing to do is a success). Never blocks. Returns 0, ERR_INVAL
 * (NULL), ERR_AGAIN (refused at the high-water mark: the batch stays pending, whole and in
 * order, nothing is counted as dropped, and the publisher retries it every BUS_FLUSH_RETRY_MS
 * and at every loop turn; calling again later is also fine) or ERR_IO (the batch is dropped).
 * Call it after a burst of publishes made in a before-sleep hook, which may run after the
 * publisher's own hook in the same turn. */
int bus_pub_flush(bus_pub_t *pub);

/* Sends a heartbeat now (the timer calls this). Same returns as bus_pub_publish(). */
int bus_pub_heartbeat(bus_pub_t *pub);

/* Copies the counters into *out. */
void bus_pub_stats(const bus_pub_t *pub, bus_stats_t *out);

/* The endpoint as bound or connected (for "@tcp://127.0.0.1:*", the port chosen). Borrowed. */
const char *bus_pub_endpoint(const bus_pub_t *pub);

/* ---- Subscriber ---- */

/* A subscriber on `loop`; opts->endpoint is required. It receives heartbeats at once and
 * ObjectChanged only for the shards subscribed. `on_msg` is required; `on_peer` may be NULL.
 * Returns NULL on a bad option, a ZeroMQ failure or out of memory (logged). */
bus_sub_t *bus_sub_new(loop_t *loop, void *zctx, const bus_options_t *opts, bus_msg_fn *on_msg,
                       bus_peer_fn *on_peer, void *arg);

/* Sets the gap handler (NULL: none), called with the `arg` given to bus_sub_new(). */
void bus_sub_on_gap(bus_sub_t *sub, bus_gap_fn *on_gap);

/* Closes the socket, frees everything, sets *sub_p to NULL. NULL-safe. Not from a callback. */
void bus_sub_destroy(bus_sub_t **sub_p);

/* Subscribes to `shard`; subscribing twice is the same as once. The next shard sequence of each
 * source on it is taken as it comes (no gap is reported for what came before). Returns 0,
 * ERR_INVAL (out of range) or ERR_IO. */
int bus_sub_subscribe(bus_sub_t *sub, uint32_t shard);

/* Unsubscribes from `shard`. Returns 0, ERR_INVAL, ERR_NOTFOUND (not subscribed) or ERR_IO. */
int bus_sub_unsubscribe(bus_sub_t *sub, uint32_t shard);

/* True when `shard` is subscribed. */
bool bus_sub_subscribed(const bus_sub_t *sub, uint32_t shard);

/* True when `source` is known and not lost. */
bool bus_sub_peer_alive(const bus_sub_t *sub, const char *source);

/* Copies the counters into *out. */
void bus_sub_stats(const bus_sub_t *sub, bus_stats_t *out);

/* The endpoint as bound or connected. Borrowed. */
const char *bus_sub_endpoint(const bus_sub_t *sub);

/* ---- Forwarder ---- */

/* A forwarder on `loop`: binds (by default) opts->frontend and opts->backend, both required,
 * and heartbeats as opts->source (default BUS_FORWARDER_SOURCE) on the backend. With
 * opts->curve_secret_key it is a CURVE server and needs opts->curve_allow (each key valid Z85);
 * with opts->ipc_auth BUS_IPC_PEERCRED an ipc:// socket checks peer uids instead of CURVE. With
 * either it binds BUS_ZAP_ENDPOINT in zctx. Returns NULL on a bad option (a secret key without an
 * allow-list included), a ZeroMQ failure (an endpoint in use, another CURVE forwarder in zctx)
 * or out of memory (logged). */
bus_forwarder_t *bus_forwarder_new(loop_t *loop, void *zctx, const bus_options_t *opts);

/* Closes both sockets, frees, sets *fwd_p to NULL. NULL-safe. */
void bus_forwarder_destroy(bus_forwarder_t **fwd_p);

/* Copies the counters into *out. */
void bus_forwarder_stats(const bus_forwarder_t *fwd, bus_stats_t *out);

/* The frontend and backend endpoints as bound (ports resolved). Borrowed. */
const char *bus_forwarder_frontend(const bus_forwarder_t *fwd);
const char *bus_forwarder_backend(const bus_forwarder_t *fwd);

/* Self-test. */
int bus_test(bool verbose);

#endif
