/*
 * bus: ZeroMQ publish/subscribe of protobuf envelopes; the contract and the wire format are in
 * bus.h.
 *
 * Hot paths allocate nothing: a publisher encodes with envwire (a hand-written encoder that
 * writes the same bytes as protobuf-c) straight into its pending batch, a reused buffer laid out
 * as [headroom][len1][env1][len2][env2]..., and sends it with one zmq_send: the topic is written
 * into the headroom just before the first length ("SSSS/Batch ") or, for a batch of one, just
 * before the first envelope ("SSSS/ObjectChanged "), so neither form copies an envelope. A
 * subscriber receives into zmq_msg_t (no copy) and
 * decodes with envwire_decode, whose strings are views into the received frame, so the handler
 * gets the message without a single copy or allocation. protobuf-c itself is used only by the
 * self-test, to prove that peers using it interoperate.
 */
#include "bus.h"
#include "envwire.h"
#include "err.h"
#include "log.h"
#include "privfs.h"
#include "rftime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* The longest a publisher waits for the second frame of a message whose first frame was
 * accepted (ZeroMQ accepts a message's frames together, so this wait does not happen). */
#define BUS_PART_TIMEOUT_MS 100
/* Initial size of a publisher's pack buffer (it grows up to max_frame). */
#define BUS_PACK_INITIAL 1024
/* Bytes kept free at the head of a batch buffer for the topic and its separator. */
#define BUS_BATCH_HEAD 32
/* The length prefix an envelope is first encoded behind, in bytes (a varint of 128..16383, as
 * most envelopes are); another size moves the envelope once. */
#define BUS_LEN_GUESS 2
/* Longest varint of a length up to BUS_FRAME_MAX_LIMIT. */
#define BUS_LEN_MAX 4

_Static_assert(BUS_BATCH_HEAD >= BUS_SHARD_DIGITS + 1 + sizeof BUS_TOPIC_OBJECT_CHANGED,
               "the headroom holds the single-message topic and separator");
_Static_assert(BUS_BATCH_HEAD >= BUS_SHARD_DIGITS + 1 + sizeof BUS_TOPIC_BATCH,
               "the headroom holds the batch topic and separator");
_Static_assert(BUS_FRAME_MAX_LIMIT < (1 << (7 * BUS_LEN_MAX)), "lengths fit BUS_LEN_MAX bytes");

/* At most one warning per BUS_LOG_INTERVAL_MS; the others are counted and reported with it. */
typedef struct {
    int64_t last_ms; /* when the last warning was written, monotonic ms */
    uint64_t suppressed; /* warnings skipped since */
} ratelimit_t;

/* What a subscriber knows about one source. */
typedef struct {
    char source[BUS_SOURCE_MAX + 1]; /* the source name */
    int64_t last_ms; /* monotonic ms of its last heartbeat */
    int64_t interval_ms; /* the interval it announced */
    bool lost; /* declared lost and not heard since */
    bool heard; /* a heartbeat of it was received at least once */
    bool check_path; /* another source restarted: report a gap at its next heartbeat */
    uint64_t epoch; /* its Envelope.epoch, 0 until one is seen */
    uint64_t hb_next; /* the Heartbeat.sequence expected next, 0: unknown (take any) */
    uint64_t *next; /* next[shard]: Envelope.shard_sequence expected next, 0: unknown (take
                     * any); BUS_SHARD_LIMIT entries, NULL until its first ObjectChanged */
} peer_t;

/* Validated numeric settings. */
typedef struct {
    int hwm; /* high-water mark */
    size_t max_frame; /* largest Envelope frame */
    int64_t heartbeat_ms; /* heartbeat or check interval */
    int liveness; /* missed intervals before lost */
    int batch_max; /* envelopes per batch frame */
} settings_t;

/* What a heartbeating sender (publisher or forwarder) keeps. */
typedef struct {
    void *sock; /* where envelopes go */
    char source[BUS_SOURCE_MAX + 1]; /* Envelope.source */
    size_t source_len; /* strlen(source) */
    uint64_t sequence; /* last Envelope.sequence sent */
    uint64_t hb_sequence; /* last Heartbeat.sequence sent */
    uint64_t epoch; /* Envelope.epoch of everything it sends (s_new_epoch()) */
    int64_t heartbeat_ms; /* heartbeat interval */
    int64_t hb_timer; /* the heartbeat timer id, 0 when none */
    uint8_t *pack; /* reused encode buffer */
    size_t pack_cap; /* bytes allocated in pack */
    size_t max_frame; /* largest packed Envelope sent */
} sender_t;

/* The envelopes a publisher has accepted and not yet sent, all of one shard. */
typedef struct {
    uint8_t *buf; /* BUS_BATCH_HEAD bytes of headroom, then <len><env> per envelope */
    size_t cap; /* bytes allocated in buf */
    size_t len; /* bytes used in buf, headroom included (BUS_BATCH_HEAD when empty) */
    size_t n; /* envelopes pending */
    size_t first_len; /* size of the first pending envelope (its length prefix's value) */
    uint32_t shard; /* the shard of every pending envelope */
    int max; /* envelopes per frame (batch_max) */
    int64_t retry_timer; /* timer retrying a batch refused at the HWM; 0 when none */
} batch_t;

struct bus_pub {
    loop_t *loop; /* the loop it lives on */
    sender_t tx; /* socket, sequence numbers, pack buffer (heartbeats) */
    batch_t batch; /* the pending ObjectChanged envelopes */
    uint64_t *shard_seq; /* shard_seq[shard]: last Envelope.shard_sequence used; BUS_SHARD_LIMIT
                          * entries, allocated at the first publish */
    bool hooked; /* the before-sleep hook is registered */
    char endpoint[BUS_ENDPOINT_MAX]; /* as bound or connected */
    bus_stats_t stats; /* counters */
    ratelimit_t rl; /* warning rate limit */
};

struct bus_sub {
    loop_t *loop; /* the loop it lives on */
    void *sock; /* the SUB socket */
    char endpoint[BUS_ENDPOINT_MAX]; /* as bound or connected */
    size_t max_frame; /* largest Envelope frame accepted */
    int64_t check_ms; /* liveness check period, and interval for silent peers */
    int liveness; /* missed intervals before a peer is lost */
    int64_t check_timer; /* the liveness timer id */
    bus_msg_fn *on_msg; /* message handler */
    bus_peer_fn *on_peer; /* peer handler, may be NULL */
    bus_gap_fn *on_gap; /* gap handler, may be NULL */
    size_t n_tables; /* peers holding a shard sequence table (at most BUS_SEQ_SOURCES_MAX) */
    void *arg; /* for the handlers */
    uint8_t shards[(BUS_SHARD_LIMIT + 7) / 8]; /* subscribed shards, one bit each */
    peer_t *peers; /* known sources */
    size_t n_peers; /* entries used */
    size_t cap_peers; /* entries allocated */
    bus_stats_t stats; /* counters */
    ratelimit_t rl; /* warning rate limit */
};

/* A peer the forwarder refused lately, for the once-per-peer-per-interval log: "key:<Z85>" of a
 * CURVE client, "uid:<n>" of an ipc peer, or the reason when the request named neither. */
#define S_REFUSED_ID_MAX (BUS_CURVE_KEY_LEN + 8)
typedef struct {
    char id[S_REFUSED_ID_MAX]; /* who, as above */
    ratelimit_t rl; /* its log rate limit */
} refused_t;

struct bus_forwarder {
    loop_t *loop; /* the loop it lives on */
    void *front; /* XSUB: publishers connect here */
    sender_t tx; /* the XPUB backend, for forwarding and heartbeats */
    char frontend[BUS_ENDPOINT_MAX]; /* as bound */
    char backend[BUS_ENDPOINT_MAX]; /* as bound */
    bus_stats_t stats; /* counters */
    ratelimit_t rl; /* warning rate limit */
    void *zap; /* CURVE or peer credentials: the REP socket answering ZAP requests, else NULL */
    bool peercred[2]; /* frontend, backend: an ipc:// socket checking peer uids */
    bool curve[2]; /* frontend, backend: a CURVE server */
    uint32_t uids[BUS_IPC_UIDS_MAX]; /* peer credentials: the uids allowed */
    size_t n_uids; /* entries in uids */
    uint8_t (*allow)[BUS_CURVE_KEY_BYTES]; /* CURVE: the allowed client keys, binary */
    size_t n_allow; /* entries in allow */
    refused_t refused[BUS_REFUSED_KEYS_MAX]; /* keys refused lately */
    size_t n_refused; /* entries used in refused */
    void *mon[2]; /* PAIR sockets reading the frontend's and backend's monitor events */
    void *monitored[2]; /* the sockets mon[] watch (to stop their monitors) */
    ratelimit_t rl_handshake; /* rate limit of the handshake-failure warning */
};

/* ---- Small helpers ---- */

/* Logs a dropped message, at most once per BUS_LOG_INTERVAL_MS. */
static void s_log_drop(ratelimit_t *rl, const char *who, const char *reason)
{
    int64_t now = loop_clock_ms();
    if (rl->last_ms != 0 && now - rl->last_ms < BUS_LOG_INTERVAL_MS) {
        rl->suppressed++;
        return;
    }
    char n[32];
    snprintf(n, sizeof n, "%" PRIu64, rl->suppressed);
    log_warn("bus: message dropped", "object", who, "reason", reason, "suppressed", n, NULL);
    rl->last_ms = now;
    rl->suppressed = 0;
}

/* Writes the BUS_SHARD_DIGITS digits of shard (< BUS_SHARD_LIMIT) into out. */
static void s_shard_digits(uint32_t shard, char *out)
{
    for (int i = BUS_SHARD_DIGITS - 1; i >= 0; i--) {
        out[i] = (char)('0' + shard % 10);
        shard /= 10;
    }
}

/* Parses the shard at the start of a topic "SSSS/...". Returns it, or -1 when malformed. */
static int64_t s_topic_shard(const char *topic, size_t len)
{
    if (len <= BUS_SHARD_DIGITS || topic[BUS_SHARD_DIGITS] != '/')
        return -1;
    int64_t shard = 0;
    for (int i = 0; i < BUS_SHARD_DIGITS; i++) {
        if (topic[i] < '0' || topic[i] > '9')
            return -1;
        shard = shard * 10 + (topic[i] - '0');
    }
    return shard;
}

int bus_topic_shard_prefix(uint32_t shard, char *out, size_t size)
{
    if (shard >= BUS_SHARD_LIMIT || !out)
        return ERR_INVAL;
    if (size < BUS_SHARD_DIGITS + 2)
        return ERR_TOOBIG;
    s_shard_digits(shard, out);
    out[BUS_SHARD_DIGITS] = '/';
    out[BUS_SHARD_DIGITS + 1] = '\0';
    return BUS_SHARD_DIGITS + 1;
}

int bus_topic_object_changed(uint32_t shard, char *out, size_t size)
{
    size_t suffix = strlen(BUS_TOPIC_OBJECT_CHANGED);
    if (shard >= BUS_SHARD_LIMIT || !out)
        return ERR_INVAL;
    if (size < BUS_SHARD_DIGITS + 2 + suffix)
        return ERR_TOOBIG;
    s_shard_digits(shard, out);
    out[BUS_SHARD_DIGITS] = '/';
    memcpy(out + BUS_SHARD_DIGITS + 1, BUS_TOPIC_OBJECT_CHANGED, suffix + 1);
    return (int)(BUS_SHARD_DIGITS + 1 + suffix);
}

/* Folds the bytes of `s` (NULL: none) into the FNV-1a 64 hash h. */
static uint64_t s_fnv1a(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        h ^= *p;
        h *= BUS_FNV_PRIME;
    }
    return h;
}

uint32_t bus_shard_of(const char *cluster, const char *ns, const char *name, uint32_t nshards)
{
    if (nshards == 0)
        return 0;
    uint64_t h = s_fnv1a(BUS_FNV_OFFSET, cluster);
    h = s_fnv1a(h, "/");
    h = s_fnv1a(h, ns);
    h = s_fnv1a(h, "/");
    h = s_fnv1a(h, name);
    return (uint32_t)(h % nshards);
}

/* Checks the numeric options and fills in defaults. Returns 0 or ERR_INVAL. */
static int s_settings(const bus_options_t *o, settings_t *s)
{
    s->hwm = o->hwm ? o->hwm : BUS_HWM_DEFAULT;
    s->max_frame = o->max_frame ? o->max_frame : BUS_FRAME_MAX_DEFAULT;
    s->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : BUS_HEARTBEAT_MS_DEFAULT;
    s->liveness = o->liveness ? o->liveness : BUS_LIVENESS_DEFAULT;
    s->batch_max = o->batch_max ? o->batch_max : BUS_BATCH_DEFAULT;
    if (s->hwm < 1 || s->hwm > BUS_HWM_MAX || s->max_frame > BUS_FRAME_MAX_LIMIT ||
        s->heartbeat_ms < 1 || s->heartbeat_ms > BUS_HEARTBEAT_MS_MAX || s->liveness < 1 ||
        s->liveness > BUS_LIVENESS_MAX || s->batch_max < 1 || s->batch_max > BUS_BATCH_MAX ||
        (o->ipc_auth != BUS_IPC_CURVE && o->ipc_auth != BUS_IPC_PEERCRED))
        return ERR_INVAL;
    return 0;
}

/* True for a Z85 CURVE key of the right length (or NULL when allowed). */
static bool s_key_ok(const char *key, bool may_be_null)
{
    if (!key)
        return may_be_null;
    return strlen(key) == BUS_CURVE_KEY_LEN;
}

/* Sets an option, logging a failure. Returns 0 or ERR_IO. */
static int s_setopt(void *sock, int option, const void *value, size_t len, const char *what)
{
    if (zmq_setsockopt(sock, option, value, len) == 0)
        return 0;
    log_error("bus: zmq_setsockopt failed", "option", what, "error", zmq_strerror(errno), NULL);
    return ERR_IO;
}

/* Sets linger 0 and both high-water marks. Returns 0 or ERR_IO. */
static int s_socket_basics(void *sock, int hwm)
{
    int zero = 0;
    if (s_setopt(sock, ZMQ_LINGER, &zero, sizeof zero, "linger") < 0 ||
        s_setopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm, "sndhwm") < 0 ||
        s_setopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm, "rcvhwm") < 0)
        return ERR_IO;
    return 0;
}

bool bus_endpoint_is_ipc(const char *endpoint)
{
    if (endpoint && (endpoint[0] == '@' || endpoint[0] == '>'))
        endpoint++;
    return endpoint && strncmp(endpoint, "ipc://", 6) == 0;
}

/* Makes sock a CURVE client of `server_key` (no-op when NULL, and on an ipc:// endpoint with
 * BUS_IPC_PEERCRED, where the forwarder checks the peer's uid instead). Without own keys it uses
 * an ephemeral pair. Returns 0, ERR_INVAL or ERR_IO. */
static int s_curve_client(void *sock, const bus_options_t *o)
{
    if (!o->curve_server_key ||
        (o->ipc_auth == BUS_IPC_PEERCRED && bus_endpoint_is_ipc(o->endpoint)))
        return 0;
    char pub[BUS_CURVE_KEY_LEN + 1];
    char sec[BUS_CURVE_KEY_LEN + 1];
    if (!zmq_has("curve")) {
        log_error("bus: CURVE asked for but libzmq lacks it", NULL);
        return ERR_INVAL;
    }
    if (o->curve_public_key && o->curve_secret_key) {
        snprintf(pub, sizeof pub, "%s", o->curve_public_key);
        snprintf(sec, sizeof sec, "%s", o->curve_secret_key);
    } else if (zmq_curve_keypair(pub, sec) != 0) {
        return ERR_IO;
    }
    int rc = 0;
    if (s_setopt(sock, ZMQ_CURVE_SERVERKEY, o->curve_server_key, BUS_CURVE_KEY_LEN, "serverkey") <
            0 ||
        s_setopt(sock, ZMQ_CURVE_PUBLICKEY, pub, BUS_CURVE_KEY_LEN, "publickey") < 0 ||
        s_setopt(sock, ZMQ_CURVE_SECRETKEY, sec, BUS_CURVE_KEY_LEN, "secretkey") < 0)
        rc = ERR_IO;
    memset(sec, 0, sizeof sec);
    return rc;
}

/* Makes sock a CURVE server with `secret` (no-op when NULL). Returns 0 or ERR_IO/ERR_INVAL. */
static int s_curve_server(void *sock, const char *secret)
{
    if (!secret)
        return 0;
    if (!zmq_has("curve")) {
        log_error("bus: CURVE asked for but libzmq lacks it", NULL);
        return ERR_INVAL;
    }
    int one = 1;
    if (s_setopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one, "curve_server") < 0 ||
        s_setopt(sock, ZMQ_CURVE_SECRETKEY, secret, BUS_CURVE_KEY_LEN, "secretkey") < 0)
        return ERR_IO;
    return 0;
}

/* Binds ('@' or default bind) or connects ('>' or default connect) sock to `endpoint`, and
 * writes the resulting endpoint into out (BUS_ENDPOINT_MAX bytes). Returns 0, ERR_INVAL or
 * ERR_IO (logged). */
static int s_attach(void *sock, const char *endpoint, bool bind_default, char *out)
{
    if (!endpoint || strlen(endpoint) >= BUS_ENDPOINT_MAX)
        return ERR_INVAL;
    bool bind = bind_default;
    if (endpoint[0] == '@' || endpoint[0] == '>') {
        bind = endpoint[0] == '@';
        endpoint++;
    }
    int rc = bind ? zmq_bind(sock, endpoint) : zmq_connect(sock, endpoint);
    if (rc != 0) {
        log_error(bind ? "bus: bind failed" : "bus: connect failed", "endpoint", endpoint, "error",
                  zmq_strerror(errno), NULL);
        return ERR_IO;
    }
    // an ipc:// socket file is private whatever the umask (privfs.h): only its owner connects
    if (bind && strncmp(endpoint, "ipc://", 6) == 0 && endpoint[6] != '@' &&
        privfs_tighten(endpoint + 6) != 0) {
        log_error("bus: cannot make the ipc socket private", "endpoint", endpoint, "error",
                  strerror(errno), NULL);
        return ERR_IO;
    }
    snprintf(out, BUS_ENDPOINT_MAX, "%s", endpoint);
    if (bind) {
        size_t len = BUS_ENDPOINT_MAX;
        if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, out, &len) != 0)
            snprintf(out, BUS_ENDPOINT_MAX, "%s", endpoint);
    }
    return 0;
}

/* Closes a socket if open and NULLs the pointer. */
static void s_close(void **sock_p)
{
    if (*sock_p) {
        zmq_close(*sock_p);
        *sock_p = NULL;
    }
}

/* Receives and discards the remaining frames of a message. */
static void s_drain(void *sock)
{
    int more = 1;
    size_t len = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int rc = zmq_msg_recv(&m, sock, ZMQ_DONTWAIT);
        zmq_msg_close(&m);
        if (rc < 0)
            break;
    }
}

/* Finds the topic at the head of a frame: the bytes before the first BUS_TOPIC_SEP, which must
 * come within BUS_TOPIC_MAX + 1 bytes and not first. Returns the topic length, or 0 when the
 * frame has no topic. */
static size_t s_topic_len(const uint8_t *frame, size_t len)
{
    size_t scan = len < BUS_TOPIC_MAX + 1 ? len : BUS_TOPIC_MAX + 1;
    const uint8_t *sep = memchr(frame, BUS_TOPIC_SEP, scan);
    return sep ? (size_t)(sep - frame) : 0;
}

/* ---- Sending ---- */

/* Encodes m into tx->pack at byte `off` (the topic and separator go before it), growing the
 * buffer when needed. The envelope alone may be at most max_frame bytes. Returns the encoded
 * length, ERR_TOOBIG (envelope over max_frame) or ERR_NOMEM. */
static int s_encode(sender_t *tx, const envwire_msg_t *m, size_t off)
{
    if (tx->pack && tx->pack_cap > off) {
        int n = envwire_encode(m, tx->pack + off, tx->pack_cap - off);
        if (n != ERR_TOOBIG)
            return n;
    }
    size_t need = envwire_size(m);
    if (need > tx->max_frame)
        return ERR_TOOBIG;
    size_t cap = tx->pack_cap ? tx->pack_cap : BUS_PACK_INITIAL;
    while (cap < off + need)
        cap *= 2;
    uint8_t *p = realloc(tx->pack, cap);
    if (!p)
        return ERR_NOMEM;
    tx->pack = p;
    tx->pack_cap = cap;
    return envwire_encode(m, tx->pack + off, tx->pack_cap - off);
}

/* A new sender epoch: the wall clock in microseconds, strictly increasing within the process,
 * so a restarted sender (or a second publisher of the same source) never reuses one. */
static uint64_t s_new_epoch(void)
{
    static _Atomic uint64_t last;
    int64_t now = rftime_now_us();
    uint64_t e = now > 0 ? (uint64_t)now : 1;
    uint64_t prev = atomic_load(&last);
    do {
        if (e <= prev)
            e = prev + 1;
    } while (!atomic_compare_exchange_weak(&last, &prev, e));
    return e;
}

/* Fills the envelope header, encodes it into tx->pack and sends topic + body without
 * blocking. Returns 0, ERR_TOOBIG, ERR_AGAIN, ERR_NOMEM or ERR_IO; counts into stats. */
static int s_send_envelope(sender_t *tx, const char *topic, size_t topic_len, envwire_msg_t *m,
                           bus_stats_t *stats, ratelimit_t *rl)
{
    m->version = BUS_VERSION;
    m->source.p = tx->source;
    m->source.n = tx->source_len;
    m->sequence = ++tx->sequence;
    m->sent_at_ms = rftime_now_ms();
    m->epoch = tx->epoch;
    size_t off = topic_len + 1;
    int n = s_encode(tx, m, off);
    if (n == ERR_TOOBIG) {
        stats->dropped_oversize++;
        s_log_drop(rl, tx->source, "envelope over max_frame");
        return ERR_TOOBIG;
    }
    if (n < 0)
        return n;
    memcpy(tx->pack, topic, topic_len);
    tx->pack[topic_len] = BUS_TOPIC_SEP;
    int rc;
    do {
        rc = zmq_send(tx->sock, tx->pack, off + (size_t)n, ZMQ_DONTWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        if (errno == EAGAIN) {
            stats->dropped_hwm++;
            s_log_drop(rl, tx->source, "high-water mark reached");
            return ERR_AGAIN;
        }
        log_error("bus: send failed", "source", tx->source, "error", zmq_strerror(errno), NULL);
        return ERR_IO;
    }
    stats->sent++;
    stats->frames_sent++;
    return 0;
}

/* Sends one heartbeat on "hb/<source>". */
static int s_send_heartbeat(sender_t *tx, bus_stats_t *stats, ratelimit_t *rl)
{
    char topic[BUS_TOPIC_MAX];
    int len = snprintf(topic, sizeof topic, "%s%s", BUS_TOPIC_HEARTBEAT, tx->source);
    envwire_msg_t m = {.body = ENVWIRE_BODY_HEARTBEAT};
    m.heartbeat.source.p = tx->source;
    m.heartbeat.source.n = tx->source_len;
    m.heartbeat.sequence = ++tx->hb_sequence;
    m.heartbeat.interval_ms = tx->heartbeat_ms;
    int rc = s_send_envelope(tx, topic, (size_t)len, &m, stats, rl);
    if (rc == 0)
        stats->heartbeats_sent++;
    return rc;
}

/* Copies a source name, which must be 1..BUS_SOURCE_MAX bytes. Returns 0 or ERR_INVAL. */
static int s_set_source(sender_t *tx, const char *source)
{
    // The source is part of the heartbeat topic, so it cannot hold the topic separator.
    if (!source || !source[0] || strlen(source) > BUS_SOURCE_MAX || strchr(source, BUS_TOPIC_SEP))
        return ERR_INVAL;
    snprintf(tx->source, sizeof tx->source, "%s", source);
    tx->source_len = strlen(tx->source);
    return 0;
}

/* ---- Batches ---- */

/* The size of the protobuf varint encoding of v. */
static size_t s_varint_len(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

/* Writes the protobuf varint encoding of v at p (s_varint_len(v) bytes). */
static void s_put_varint(uint8_t *p, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        *p++ = (uint8_t)(v | 0x80);
    *p = (uint8_t)v;
}

/* Writes "SSSS/<suffix>" and the separator so that they end right before `end`. Returns where
 * they begin: the first byte of the frame. */
static uint8_t *s_put_topic(uint8_t *end, uint32_t shard, const char *suffix, size_t suffix_len)
{
    uint8_t *p = end - (BUS_SHARD_DIGITS + 1 + suffix_len + 1);
    s_shard_digits(shard, (char *)p);
    p[BUS_SHARD_DIGITS] = '/';
    memcpy(p + BUS_SHARD_DIGITS + 1, suffix, suffix_len);
    end[-1] = BUS_TOPIC_SEP;
    return p;
}

/* Grows b->buf to hold at least `need` bytes, keeping its contents. Returns 0 or ERR_NOMEM. */
static int s_batch_reserve(batch_t *b, size_t need)
{
    if (b->cap >= need)
        return 0;
    size_t cap = b->cap ? b->cap : BUS_PACK_INITIAL;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->buf, cap);
    if (!p)
        return ERR_NOMEM;
    b->buf = p;
    b->cap = cap;
    return 0;
}

/* Empties the batch, keeping its memory. */
static void s_batch_clear(batch_t *b)
{
    b->n = 0;
    b->len = BUS_BATCH_HEAD;
}

/* Sends the pending envelopes as one frame without blocking: the single form for one, the batch
 * form for more (bus.h, "Batches"). Returns 0 (sent, or nothing pending; the batch is empty),
 * ERR_AGAIN (refused at the high-water mark; the batch is kept as it was and nothing counted) or
 * ERR_IO (logged; the batch is dropped). */
static int s_batch_send(bus_pub_t *pub)
{
    batch_t *b = &pub->batch;
    if (b->n == 0)
        return 0;
    size_t first_prefix = s_varint_len(b->first_len);
    uint8_t *start;
    if (b->n == 1) {
        // The topic goes over the headroom and the length prefix, right before the envelope.
        start = s_put_topic(b->buf + BUS_BATCH_HEAD + first_prefix, b->shard,
                            BUS_TOPIC_OBJECT_CHANGED, sizeof BUS_TOPIC_OBJECT_CHANGED - 1);
    } else {
        // A refused single-form send may have overwritten the first length: write it again.
        s_put_varint(b->buf + BUS_BATCH_HEAD, b->first_len);
        start = s_put_topic(b->buf + BUS_BATCH_HEAD, b->shard, BUS_TOPIC_BATCH,
                            sizeof BUS_TOPIC_BATCH - 1);
    }
    size_t len = (size_t)(b->buf + b->len - start);
    int rc;
    do {
        rc = zmq_send(pub->tx.sock, start, len, ZMQ_DONTWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno == EAGAIN)
        return ERR_AGAIN;
    if (rc < 0) {
        log_error("bus: send failed, batch dropped", "source", pub->tx.source, "error",
                  zmq_strerror(errno), NULL);
        s_batch_clear(b);
        return ERR_IO;
    }
    pub->stats.sent += b->n;
    pub->stats.frames_sent++;
    s_batch_clear(b);
    return 0;
}

/* Encodes `m` with a length prefix at the end of the batch (b->buf + b->len) without adding it
 * to the batch. Sets *prefix to the size of the length prefix. Returns the envelope's size,
 * ERR_TOOBIG (over max_frame) or ERR_NOMEM. */
static int s_batch_encode(bus_pub_t *pub, const envwire_msg_t *m, size_t *prefix)
{
    batch_t *b = &pub->batch;
    size_t at = b->len;
    int n = ERR_TOOBIG;
    if (b->cap > at + BUS_LEN_GUESS)
        n = envwire_encode(m, b->buf + at + BUS_LEN_GUESS, b->cap - at - BUS_LEN_GUESS);
    if (n == ERR_TOOBIG) {
        size_t need = envwire_size(m);
        if (need > pub->tx.max_frame)
            return ERR_TOOBIG;
        if (s_batch_reserve(b, at + BUS_LEN_MAX + need) < 0)
            return ERR_NOMEM;
        n = envwire_encode(m, b->buf + at + BUS_LEN_GUESS, b->cap - at - BUS_LEN_GUESS);
    }
    if (n < 0)
        return n;
    if ((size_t)n > pub->tx.max_frame)
        return ERR_TOOBIG;
    size_t vl = s_varint_len((uint64_t)n);
    if (vl != BUS_LEN_GUESS) {
        if (s_batch_reserve(b, at + vl + (size_t)n) < 0)
            return ERR_NOMEM;
        memmove(b->buf + at + vl, b->buf + at + BUS_LEN_GUESS, (size_t)n);
    }
    s_put_varint(b->buf + at, (uint64_t)n);
    *prefix = vl;
    return n;
}

static int64_t s_pub_retry_timer(loop_t *loop, int64_t timer_id, void *arg)
{
    bus_pub_t *pub = arg;
    if (s_batch_send(pub) == ERR_AGAIN)
        return BUS_FLUSH_RETRY_MS;
    pub->batch.retry_timer = 0;
    return LOOP_TIMER_DONE;
}

/* Makes sure a batch refused at the HWM is retried even when the loop has nothing else to do. */
static void s_pub_arm_retry(bus_pub_t *pub)
{
    if (pub->batch.retry_timer)
        return;
    int64_t t = loop_add_timer(pub->loop, BUS_FLUSH_RETRY_MS, s_pub_retry_timer, pub);
    pub->batch.retry_timer = t > 0 ? t : 0;
}

/* Counts a publish refused because a send it needed failed. Returns rc. */
static int s_pub_refused(bus_pub_t *pub, int rc)
{
    if (rc == ERR_AGAIN) {
        pub->stats.dropped_hwm++;
        s_log_drop(&pub->rl, pub->tx.source, "high-water mark reached");
        s_pub_arm_retry(pub);
    }
    return rc;
}

static int s_pub_before_sleep(loop_t *loop, void *arg)
{
    bus_pub_flush(arg);
    return 0;
}

/* ---- Publisher ---- */

static int64_t s_pub_heartbeat_timer(loop_t *loop, int64_t timer_id, void *arg)
{
    bus_pub_t *pub = arg;
    bus_pub_heartbeat(pub);
    return pub->tx.heartbeat_ms;
}

/* Reads subscription messages (first byte 1 subscribe, 0 unsubscribe) from the XPUB socket. */
static int s_pub_readable(loop_t *loop, void *socket, int revents, void *arg)
{
    bus_pub_t *pub = arg;
    for (int i = 0; i < BUS_RECV_BATCH; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        const unsigned char *d = zmq_msg_data(&m);
        if (zmq_msg_size(&m) >= 1 && d[0] == 1)
            pub->stats.subscriptions++;
        else if (zmq_msg_size(&m) >= 1 && d[0] == 0)
            pub->stats.subscriptions--;
        bool more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        if (more)
            s_drain(socket);
    }
    return 0;
}

bus_pub_t *bus_pub_new(loop_t *loop, void *zctx, const bus_options_t *opts)
{
    settings_t s;
    if (!loop || !zctx || !opts || s_settings(opts, &s) < 0 || !opts->endpoint ||
        !s_key_ok(opts->curve_server_key, true) || !s_key_ok(opts->curve_public_key, true) ||
        !s_key_ok(opts->curve_secret_key, true) ||
        (!opts->curve_public_key != !opts->curve_secret_key)) {
        log_error("bus: invalid publisher options", NULL);
        return NULL;
    }
    bus_pub_t *pub = calloc(1, sizeof *pub);
    if (!pub)
        return NULL;
    pub->loop = loop;
    pub->tx.heartbeat_ms = s.heartbeat_ms;
    pub->tx.max_frame = s.max_frame;
    pub->tx.epoch = s_new_epoch();
    pub->batch.max = s.batch_max;
    s_batch_clear(&pub->batch);
    if (s_set_source(&pub->tx, opts->source) < 0) {
        log_error("bus: invalid publisher source", NULL);
        goto fail;
    }
    pub->tx.sock = zmq_socket(zctx, ZMQ_XPUB);
    if (!pub->tx.sock) {
        log_error("bus: zmq_socket failed", "error", zmq_strerror(errno), NULL);
        goto fail;
    }
    int one = 1;
    int part_timeout = BUS_PART_TIMEOUT_MS;
    if (s_socket_basics(pub->tx.sock, s.hwm) < 0 ||
        s_setopt(pub->tx.sock, ZMQ_XPUB_NODROP, &one, sizeof one, "xpub_nodrop") < 0 ||
        s_setopt(pub->tx.sock, ZMQ_SNDTIMEO, &part_timeout, sizeof part_timeout, "sndtimeo") < 0 ||
        s_curve_client(pub->tx.sock, opts) < 0 ||
        s_attach(pub->tx.sock, opts->endpoint, false, pub->endpoint) < 0)
        goto fail;
    if (loop_add_socket(loop, pub->tx.sock, LOOP_READ, s_pub_readable, pub) < 0)
        goto fail;
    pub->tx.hb_timer = loop_add_timer(loop, 0, s_pub_heartbeat_timer, pub);
    if (pub->tx.hb_timer < 0) {
        pub->tx.hb_timer = 0;
        goto fail;
    }
    if (loop_add_before_sleep(loop, s_pub_before_sleep, pub) < 0)
        goto fail;
    pub->hooked = true;
    return pub;
fail:
    bus_pub_destroy(&pub);
    return NULL;
}

void bus_pub_destroy(bus_pub_t **pub_p)
{
    if (!pub_p || !*pub_p)
        return;
    bus_pub_t *pub = *pub_p;
    if (pub->hooked)
        loop_remove_before_sleep(pub->loop, s_pub_before_sleep, pub);
    if (pub->batch.retry_timer > 0)
        loop_cancel_timer(pub->loop, pub->batch.retry_timer);
    if (pub->tx.hb_timer > 0)
        loop_cancel_timer(pub->loop, pub->tx.hb_timer);
    size_t pending = pub->batch.n;
    if (pending && s_batch_send(pub) == ERR_AGAIN) {
        char n[32];
        snprintf(n, sizeof n, "%zu", pending);
        pub->stats.dropped_hwm += pending;
        log_warn("bus: publisher destroyed, pending batch dropped at the high-water mark", "source",
                 pub->tx.source, "envelopes", n, NULL);
    }
    if (pub->tx.sock)
        loop_remove_socket(pub->loop, pub->tx.sock);
    s_close(&pub->tx.sock);
    free(pub->tx.pack);
    free(pub->batch.buf);
    free(pub->shard_seq);
    free(pub);
    *pub_p = NULL;
}

int bus_pub_publish_view(bus_pub_t *pub, const envwire_object_changed_t *oc)
{
    if (!pub || !oc || oc->shard >= BUS_SHARD_LIMIT)
        return ERR_INVAL;
    if (!pub->shard_seq) {
        pub->shard_seq = calloc(BUS_SHARD_LIMIT, sizeof *pub->shard_seq);
        if (!pub->shard_seq)
            return ERR_NOMEM;
    }
    batch_t *b = &pub->batch;
    uint64_t *shard_seq = &pub->shard_seq[oc->shard];
    // A batch holds one shard: the topic is the shard's. Sending it first keeps the order.
    if (b->n > 0 && b->shard != oc->shard) {
        int rc = s_batch_send(pub);
        if (rc < 0) {
            ++*shard_seq; /* this event is not taken: its number is skipped (a gap) */
            return s_pub_refused(pub, rc);
        }
    }
    envwire_msg_t m = {.version = BUS_VERSION,
                       .source = {pub->tx.source, pub->tx.source_len},
                       .sequence = pub->tx.sequence + 1,
                       .sent_at_ms = rftime_now_ms(),
                       .epoch = pub->tx.epoch,
                       .shard_sequence = *shard_seq + 1,
                       .body = ENVWIRE_BODY_OBJECT_CHANGED,
                       .object_changed = *oc};
    size_t prefix = 0;
    int n = s_batch_encode(pub, &m, &prefix);
    if (n < 0)
        ++*shard_seq; /* not taken: its number is skipped (a gap) */
    if (n == ERR_TOOBIG) {
        pub->stats.dropped_oversize++;
        s_log_drop(&pub->rl, pub->tx.source, "envelope over max_frame");
        return ERR_TOOBIG;
    }
    if (n < 0)
        return n;
    size_t at = b->len;
    if (b->n > 0 && at + prefix + (size_t)n - BUS_BATCH_HEAD > pub->tx.max_frame) {
        // The batch body would pass max_frame: send the batch, then move this one to the front.
        int rc = s_batch_send(pub);
        if (rc < 0) {
            ++*shard_seq; /* not taken: its number is skipped (a gap) */
            return s_pub_refused(pub, rc);
        }
        memmove(b->buf + BUS_BATCH_HEAD, b->buf + at, prefix + (size_t)n);
        at = BUS_BATCH_HEAD;
    }
    if (b->n == 0) {
        b->shard = oc->shard;
        b->first_len = (size_t)n;
    }
    b->len = at + prefix + (size_t)n;
    b->n++;
    pub->tx.sequence++;
    ++*shard_seq;
    if (b->n >= (size_t)b->max) {
        int rc = s_batch_send(pub);
        if (rc == ERR_AGAIN) {
            // Take this envelope back out: the caller is told it was not taken. Its shard
            // sequence number stays used, so subscribers see the event as missed.
            b->len = at;
            b->n--;
            pub->tx.sequence--;
        }
        if (rc < 0)
            return s_pub_refused(pub, rc);
    }
    return 0;
}

int bus_pub_flush(bus_pub_t *pub)
{
    if (!pub)
        return ERR_INVAL;
    int rc = s_batch_send(pub);
    if (rc == ERR_AGAIN)
        s_pub_arm_retry(pub);
    return rc;
}

int bus_pub_publish(bus_pub_t *pub, const Rayfleet__ObjectChanged *oc)
{
    if (!pub || !oc)
        return ERR_INVAL;
    envwire_object_changed_t v = {
        .cluster = envwire_str(oc->cluster),
        .group = envwire_str(oc->group),
        .kind = envwire_str(oc->kind),
        .namespace_ = envwire_str(oc->namespace_),
        .name = envwire_str(oc->name),
        .uid = envwire_str(oc->uid),
        .resource_version = envwire_str(oc->resource_version),
        .generation = oc->generation,
        .type = (int32_t)oc->type,
        .shard = oc->shard,
        .event_id = oc->event_id,
        .child_kind = envwire_str(oc->child_kind),
        .child_name = envwire_str(oc->child_name),
        .child_uid = envwire_str(oc->child_uid),
    };
    return bus_pub_publish_view(pub, &v);
}

int bus_pub_heartbeat(bus_pub_t *pub)
{
    if (!pub)
        return ERR_INVAL;
    return s_send_heartbeat(&pub->tx, &pub->stats, &pub->rl);
}

void bus_pub_stats(const bus_pub_t *pub, bus_stats_t *out)
{
    *out = pub->stats;
    out->pending = (int64_t)pub->batch.n;
}

const char *bus_pub_endpoint(const bus_pub_t *pub)
{
    return pub->endpoint;
}

/* ---- Subscriber ---- */

/* The peer entry for source, or NULL. */
static peer_t *s_peer_find(const bus_sub_t *sub, const char *source)
{
    for (size_t i = 0; i < sub->n_peers; i++)
        if (strcmp(sub->peers[i].source, source) == 0)
            return &sub->peers[i];
    return NULL;
}

/* A new peer entry: appended, or a lost peer's entry reused when the table is full. */
static peer_t *s_peer_add(bus_sub_t *sub, const char *source)
{
    peer_t *p = NULL;
    if (sub->n_peers == sub->cap_peers && sub->cap_peers < BUS_PEERS_MAX) {
        size_t cap = sub->cap_peers ? sub->cap_peers * 2 : 8;
        if (cap > BUS_PEERS_MAX)
            cap = BUS_PEERS_MAX;
        peer_t *grown = realloc(sub->peers, cap * sizeof *grown);
        if (grown) {
            sub->peers = grown;
            sub->cap_peers = cap;
        }
    }
    if (sub->n_peers < sub->cap_peers) {
        p = &sub->peers[sub->n_peers++];
        memset(p, 0, sizeof *p);
    } else {
        for (size_t i = 0; i < sub->n_peers && !p; i++)
            if (sub->peers[i].lost)
                p = &sub->peers[i];
    }
    if (!p)
        return NULL;
    if (p->next) { /* a lost peer's entry, reused */
        free(p->next);
        sub->n_tables--;
    }
    memset(p, 0, sizeof *p);
    snprintf(p->source, sizeof p->source, "%s", source);
    p->lost = true;
    return p;
}

/* The peer of an envelope's source (added when new), or NULL: the source is not a valid name
 * (empty, too long, a NUL inside) or the table is full. */
static peer_t *s_peer_of(bus_sub_t *sub, envwire_str_t src)
{
    if (src.n == 0 || src.n > BUS_SOURCE_MAX || memchr(src.p, 0, src.n))
        return NULL;
    char source[BUS_SOURCE_MAX + 1];
    memcpy(source, src.p, src.n);
    source[src.n] = '\0';
    peer_t *p = s_peer_find(sub, source);
    if (!p)
        p = s_peer_add(sub, source);
    if (!p)
        s_log_drop(&sub->rl, sub->endpoint, "peer table full");
    return p;
}

/* Counts a gap and hands it to the gap handler. */
static void s_gap(bus_sub_t *sub, const peer_t *p, bus_gap_kind_t kind, uint32_t shard,
                  uint64_t missed)
{
    sub->stats.gaps++;
    if (sub->on_gap)
        sub->on_gap(
            sub, &(bus_gap_t){.source = p->source, .kind = kind, .shard = shard, .missed = missed},
            sub->arg);
}

/* Checks the epoch of an envelope from `p`. The first epoch seen is taken as it is (nothing is
 * known of what came before); a different one later means the source restarted: its sequences
 * start again at 1, a BUS_GAP_RESTART is reported, and every other source is checked at its
 * next heartbeat (a restarted relay, the forwarder, broke their paths too). Returns true when
 * it reported a restart. */
static bool s_peer_epoch(bus_sub_t *sub, peer_t *p, uint64_t epoch)
{
    if (epoch == 0 || epoch == p->epoch)
        return false;
    if (p->epoch == 0) {
        p->epoch = epoch;
        return false;
    }
    p->epoch = epoch;
    p->hb_next = 1;
    for (size_t s = 0; p->next && s < BUS_SHARD_LIMIT; s++)
        p->next[s] = bus_sub_subscribed(sub, (uint32_t)s) ? 1 : 0;
    for (size_t i = 0; i < sub->n_peers; i++)
        if (&sub->peers[i] != p)
            sub->peers[i].check_path = true;
    s_gap(sub, p, BUS_GAP_RESTART, BUS_SHARD_ALL, 0);
    return true;
}

/* Checks the shard sequence of an ObjectChanged of a subscribed shard against the last one of
 * its source and reports a BUS_GAP_SHARD when numbers were skipped. */
static void s_sub_track(bus_sub_t *sub, const envwire_msg_t *m)
{
    if (m->epoch == 0 || m->shard_sequence == 0)
        return; /* a sender from before sequences: nothing to check */
    peer_t *p = s_peer_of(sub, m->source);
    if (!p)
        return;
    s_peer_epoch(sub, p, m->epoch);
    if (!p->next) {
        if (sub->n_tables >= BUS_SEQ_SOURCES_MAX) {
            s_log_drop(&sub->rl, sub->endpoint, "too many sources to track sequences of");
            return;
        }
        p->next = calloc(BUS_SHARD_LIMIT, sizeof *p->next);
        if (!p->next)
            return;
        sub->n_tables++;
    }
    uint32_t shard = m->object_changed.shard;
    uint64_t want = p->next[shard];
    if (want != 0 && m->shard_sequence < want)
        return; /* an old number again: ZeroMQ does not reorder, so nothing to learn */
    p->next[shard] = m->shard_sequence + 1;
    if (want != 0 && m->shard_sequence > want)
        s_gap(sub, p, BUS_GAP_SHARD, shard, m->shard_sequence - want);
}

/* Records a heartbeat (envelope m) of its source; reports it seen when new or back, and a
 * BUS_GAP_SOURCE when heartbeats were skipped, when another source restarted since its last
 * one (check_path), or when it comes back after lost without an epoch to tell. */
static void s_peer_heard(bus_sub_t *sub, const envwire_msg_t *m)
{
    peer_t *p = s_peer_of(sub, m->source);
    if (!p)
        return;
    bool restarted = s_peer_epoch(sub, p, m->epoch);
    uint64_t seq = m->heartbeat.sequence, missed = 0;
    bool gap = p->check_path || (m->epoch == 0 && p->heard && p->lost);
    if (seq != 0 && p->hb_next != 0 && seq > p->hb_next) {
        missed = seq - p->hb_next;
        gap = true;
    }
    if (seq != 0 && (p->hb_next == 0 || seq >= p->hb_next))
        p->hb_next = seq + 1;
    p->check_path = false;
    p->heard = true;
    if (gap && !restarted)
        s_gap(sub, p, BUS_GAP_SOURCE, BUS_SHARD_ALL, missed);
    int64_t interval_ms = m->heartbeat.interval_ms;
    p->last_ms = loop_clock_ms();
    p->interval_ms =
        interval_ms >= 1 && interval_ms <= BUS_HEARTBEAT_MS_MAX ? interval_ms : sub->check_ms;
    if (p->lost) {
        p->lost = false;
        sub->stats.peers_seen++;
        log_info("bus: peer seen", "source", p->source, NULL);
        if (sub->on_peer)
            sub->on_peer(sub, p->source, BUS_PEER_SEEN, sub->arg);
    }
}

static int64_t s_sub_check_timer(loop_t *loop, int64_t timer_id, void *arg)
{
    bus_sub_t *sub = arg;
    int64_t now = loop_clock_ms();
    for (size_t i = 0; i < sub->n_peers; i++) {
        peer_t *p = &sub->peers[i];
        if (p->lost || now - p->last_ms <= p->interval_ms * sub->liveness)
            continue;
        p->lost = true;
        sub->stats.peers_lost++;
        log_warn("bus: peer lost", "source", p->source, NULL);
        if (sub->on_peer)
            sub->on_peer(sub, p->source, BUS_PEER_LOST, sub->arg);
    }
    return sub->check_ms;
}

/* Counts and logs a malformed message. */
static void s_sub_malformed(bus_sub_t *sub, const char *reason)
{
    sub->stats.dropped_malformed++;
    s_log_drop(&sub->rl, sub->endpoint, reason);
}

/* Counts and logs an envelope or frame over max_frame. */
static void s_sub_oversize(bus_sub_t *sub, const char *reason)
{
    sub->stats.dropped_oversize++;
    s_log_drop(&sub->rl, sub->endpoint, reason);
}

/* True when the topic is a batch's, "SSSS/Batch" (the shard digits are checked elsewhere). */
static bool s_topic_is_batch(const char *topic, size_t len)
{
    return len == BUS_SHARD_DIGITS + 1 + sizeof BUS_TOPIC_BATCH - 1 &&
           topic[BUS_SHARD_DIGITS] == '/' &&
           memcmp(topic + BUS_SHARD_DIGITS + 1, BUS_TOPIC_BATCH, sizeof BUS_TOPIC_BATCH - 1) == 0;
}

/* Reads the varint length prefix at *pp (before end) and advances *pp. Returns 0, or ERR_PARSE
 * when it is truncated or longer than ENVWIRE_VARINT_MAX bytes. */
static int s_get_length(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    const uint8_t *p = *pp;
    for (int i = 0; i < ENVWIRE_VARINT_MAX && p < end; i++) {
        uint8_t c = *p++;
        if (i < 9)
            v |= (uint64_t)(c & 0x7f) << (7 * i);
        else
            v |= (uint64_t)(c & 0x01) << 63;
        if (!(c & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return ERR_PARSE;
}

/* Walks a batch body of shard `shard`: every length is checked (max_frame, then the end of the
 * frame) before its envelope is decoded; each envelope is checked and dispatched in order.
 * Returns the first negative handler value (the rest of the frame is then dropped) or 0. */
static int s_sub_batch(bus_sub_t *sub, int64_t shard, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    if (len == 0 || shard < 0) {
        s_sub_malformed(sub, len ? "bad shard in a batch topic" : "empty batch");
        return 0;
    }
    bool wanted = bus_sub_subscribed(sub, (uint32_t)shard);
    while (p < end) {
        uint64_t n;
        if (s_get_length(&p, end, &n) < 0) {
            s_sub_malformed(sub, "bad envelope length in a batch");
            return 0;
        }
        if (n > sub->max_frame) {
            s_sub_oversize(sub, "envelope in a batch over max_frame");
            return 0;
        }
        if (n > (uint64_t)(end - p)) {
            s_sub_malformed(sub, "envelope in a batch goes past the end of the frame");
            return 0;
        }
        envwire_msg_t m;
        if (envwire_decode(p, (size_t)n, &m) < 0) {
            s_sub_malformed(sub, "envelope does not decode");
        } else if (m.version < 1 || m.version > BUS_VERSION) {
            s_sub_malformed(sub, "unknown envelope version");
        } else if (m.body != ENVWIRE_BODY_OBJECT_CHANGED) {
            s_sub_malformed(sub, "envelope in a batch is not an ObjectChanged");
        } else if ((int64_t)m.object_changed.shard != shard) {
            s_sub_malformed(sub, "topic and body disagree on the shard");
        } else if (wanted) {
            s_sub_track(sub, &m);
            sub->stats.received++;
            int rc = sub->on_msg(sub, &m, sub->arg);
            if (rc < 0)
                return rc;
        }
        p += n;
    }
    return 0;
}

/* Validates, decodes and dispatches one frame. Returns the handler's value or 0. */
static int s_sub_handle(bus_sub_t *sub, const char *topic, size_t topic_len, const uint8_t *body,
                        size_t body_len)
{
    if (topic_len == 0 || topic_len > BUS_TOPIC_MAX) {
        s_sub_malformed(sub, "bad topic length");
        return 0;
    }
    if (body_len > sub->max_frame) {
        s_sub_oversize(sub, "frame over max_frame");
        return 0;
    }
    if (s_topic_is_batch(topic, topic_len))
        return s_sub_batch(sub, s_topic_shard(topic, topic_len), body, body_len);
    envwire_msg_t m;
    if (envwire_decode(body, body_len, &m) < 0) {
        s_sub_malformed(sub, "envelope does not decode");
        return 0;
    }
    size_t hb_len = sizeof BUS_TOPIC_HEARTBEAT - 1;
    if (m.version < 1 || m.version > BUS_VERSION) {
        s_sub_malformed(sub, "unknown envelope version");
    } else if (m.body == ENVWIRE_BODY_OBJECT_CHANGED) {
        if (s_topic_shard(topic, topic_len) != (int64_t)m.object_changed.shard) {
            s_sub_malformed(sub, "topic and body disagree on the shard");
        } else if (bus_sub_subscribed(sub, m.object_changed.shard)) {
            // Messages queued before an unsubscribe still arrive; they are skipped here.
            s_sub_track(sub, &m);
            sub->stats.received++;
            return sub->on_msg(sub, &m, sub->arg);
        }
    } else if (m.body == ENVWIRE_BODY_HEARTBEAT) {
        // The peer table keys on C strings, so the source must be one: no NUL inside.
        if (topic_len < hb_len || memcmp(topic, BUS_TOPIC_HEARTBEAT, hb_len) != 0 ||
            m.source.n == 0 || m.source.n > BUS_SOURCE_MAX || memchr(m.source.p, 0, m.source.n)) {
            s_sub_malformed(sub, "bad heartbeat topic or source");
        } else {
            sub->stats.heartbeats_received++;
            s_peer_heard(sub, &m);
        }
    } else {
        s_sub_malformed(sub, "envelope without a known body");
    }
    return 0;
}

static int s_sub_readable(loop_t *loop, void *socket, int revents, void *arg)
{
    bus_sub_t *sub = arg;
    for (int i = 0; i < BUS_RECV_BATCH; i++) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            break;
        }
        int rc = 0;
        const uint8_t *data = zmq_msg_data(&frame);
        size_t len = zmq_msg_size(&frame);
        sub->stats.frames_received++;
        size_t topic_len = s_topic_len(data, len);
        if (zmq_msg_more(&frame)) {
            s_drain(socket);
            s_sub_malformed(sub, "more than one frame");
        } else if (topic_len == 0) {
            s_sub_malformed(sub, "no topic at the head of the frame");
        } else {
            rc = s_sub_handle(sub, (const char *)data, topic_len, data + topic_len + 1,
                              len - topic_len - 1);
        }
        zmq_msg_close(&frame);
        if (rc < 0)
            return rc;
    }
    return 0;
}

bus_sub_t *bus_sub_new(loop_t *loop, void *zctx, const bus_options_t *opts, bus_msg_fn *on_msg,
                       bus_peer_fn *on_peer, void *arg)
{
    settings_t s;
    if (!loop || !zctx || !opts || !on_msg || s_settings(opts, &s) < 0 || !opts->endpoint ||
        !s_key_ok(opts->curve_server_key, true) || !s_key_ok(opts->curve_public_key, true) ||
        !s_key_ok(opts->curve_secret_key, true) ||
        (!opts->curve_public_key != !opts->curve_secret_key)) {
        log_error("bus: invalid subscriber options", NULL);
        return NULL;
    }
    bus_sub_t *sub = calloc(1, sizeof *sub);
    if (!sub)
        return NULL;
    sub->loop = loop;
    sub->max_frame = s.max_frame;
    sub->check_ms = s.heartbeat_ms;
    sub->liveness = s.liveness;
    sub->on_msg = on_msg;
    sub->on_peer = on_peer;
    sub->arg = arg;
    sub->sock = zmq_socket(zctx, ZMQ_SUB);
    if (!sub->sock) {
        log_error("bus: zmq_socket failed", "error", zmq_strerror(errno), NULL);
        goto fail;
    }
    int64_t maxmsg = (int64_t)s.max_frame * BUS_MAXMSGSIZE_FACTOR;
    if (s_socket_basics(sub->sock, s.hwm) < 0 ||
        s_setopt(sub->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg, "maxmsgsize") < 0 ||
        s_setopt(sub->sock, ZMQ_SUBSCRIBE, BUS_TOPIC_HEARTBEAT, strlen(BUS_TOPIC_HEARTBEAT),
                 "subscribe") < 0 ||
        s_curve_client(sub->sock, opts) < 0 ||
        s_attach(sub->sock, opts->endpoint, false, sub->endpoint) < 0)
        goto fail;
    if (loop_add_socket(loop, sub->sock, LOOP_READ, s_sub_readable, sub) < 0)
        goto fail;
    sub->check_timer = loop_add_timer(loop, sub->check_ms, s_sub_check_timer, sub);
    if (sub->check_timer < 0) {
        sub->check_timer = 0;
        goto fail;
    }
    return sub;
fail:
    bus_sub_destroy(&sub);
    return NULL;
}

void bus_sub_destroy(bus_sub_t **sub_p)
{
    if (!sub_p || !*sub_p)
        return;
    bus_sub_t *sub = *sub_p;
    if (sub->check_timer > 0)
        loop_cancel_timer(sub->loop, sub->check_timer);
    if (sub->sock)
        loop_remove_socket(sub->loop, sub->sock);
    s_close(&sub->sock);
    for (size_t i = 0; i < sub->n_peers; i++)
        free(sub->peers[i].next);
    free(sub->peers);
    free(sub);
    *sub_p = NULL;
}

bool bus_sub_subscribed(const bus_sub_t *sub, uint32_t shard)
{
    return shard < BUS_SHARD_LIMIT && (sub->shards[shard / 8] & (1u << (shard % 8)));
}

int bus_sub_subscribe(bus_sub_t *sub, uint32_t shard)
{
    char prefix[BUS_TOPIC_MAX];
    int len = bus_topic_shard_prefix(shard, prefix, sizeof prefix);
    if (!sub || len < 0)
        return ERR_INVAL;
    if (bus_sub_subscribed(sub, shard))
        return 0;
    if (s_setopt(sub->sock, ZMQ_SUBSCRIBE, prefix, (size_t)len, "subscribe") < 0)
        return ERR_IO;
    sub->shards[shard / 8] |= (uint8_t)(1u << (shard % 8));
    // What the sources sent on the shard before now was not for us: take their next number as
    // it comes (the caller scans the shard's state once the subscription is in place).
    for (size_t i = 0; i < sub->n_peers; i++)
        if (sub->peers[i].next)
            sub->peers[i].next[shard] = 0;
    return 0;
}

void bus_sub_on_gap(bus_sub_t *sub, bus_gap_fn *on_gap)
{
    if (sub)
        sub->on_gap = on_gap;
}

int bus_sub_unsubscribe(bus_sub_t *sub, uint32_t shard)
{
    char prefix[BUS_TOPIC_MAX];
    int len = bus_topic_shard_prefix(shard, prefix, sizeof prefix);
    if (!sub || len < 0)
        return ERR_INVAL;
    if (!bus_sub_subscribed(sub, shard))
        return ERR_NOTFOUND;
    if (s_setopt(sub->sock, ZMQ_UNSUBSCRIBE, prefix, (size_t)len, "unsubscribe") < 0)
        return ERR_IO;
    sub->shards[shard / 8] &= (uint8_t) ~(1u << (shard % 8));
    return 0;
}

bool bus_sub_peer_alive(const bus_sub_t *sub, const char *source)
{
    const peer_t *p = source ? s_peer_find(sub, source) : NULL;
    return p && !p->lost;
}

void bus_sub_stats(const bus_sub_t *sub, bus_stats_t *out)
{
    *out = sub->stats;
}

const char *bus_sub_endpoint(const bus_sub_t *sub)
{
    return sub->endpoint;
}

/* ---- Forwarder ---- */

static int64_t s_fwd_heartbeat_timer(loop_t *loop, int64_t timer_id, void *arg)
{
    bus_forwarder_t *fwd = arg;
    s_send_heartbeat(&fwd->tx, &fwd->stats, &fwd->rl);
    return fwd->tx.heartbeat_ms;
}

/* Counts and logs a message the forwarder drops. */
static void s_fwd_drop(bus_forwarder_t *fwd, uint64_t *counter, const char *reason)
{
    (*counter)++;
    s_log_drop(&fwd->rl, fwd->frontend, reason);
}

/* Copies messages frontend -> backend, checking frame count, topic and size but not decoding. */
static int s_fwd_front_readable(loop_t *loop, void *socket, int revents, void *arg)
{
    bus_forwarder_t *fwd = arg;
    for (int i = 0; i < BUS_RECV_BATCH; i++) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            break;
        }
        size_t len = zmq_msg_size(&frame);
        size_t topic_len = s_topic_len(zmq_msg_data(&frame), len);
        if (zmq_msg_more(&frame)) {
            s_drain(socket);
            s_fwd_drop(fwd, &fwd->stats.dropped_malformed, "more than one frame");
        } else if (topic_len == 0) {
            s_fwd_drop(fwd, &fwd->stats.dropped_malformed, "no topic at the head of the frame");
        } else if (len - topic_len - 1 > fwd->tx.max_frame) {
            s_fwd_drop(fwd, &fwd->stats.dropped_oversize, "frame over max_frame");
        } else if (zmq_msg_send(&frame, fwd->tx.sock, ZMQ_DONTWAIT) < 0) {
            s_fwd_drop(fwd, &fwd->stats.dropped_hwm, "backend refused the message");
        } else {
            fwd->stats.forwarded++;
            fwd->stats.bytes_forwarded += len;
        }
        zmq_msg_close(&frame);
    }
    return 0;
}

/* Copies subscriptions backend -> frontend. */
static int s_fwd_back_readable(loop_t *loop, void *socket, int revents, void *arg)
{
    bus_forwarder_t *fwd = arg;
    for (int i = 0; i < BUS_RECV_BATCH; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        bool more = zmq_msg_more(&m);
        /* an XPUB subscription message: 1 subscribe, 0 unsubscribe, then the topic */
        const unsigned char *d = zmq_msg_data(&m);
        if (zmq_msg_size(&m) >= 1 && (d[0] == 1 || d[0] == 0))
            fwd->stats.subscriptions += d[0] == 1 ? 1 : -1;
        if (zmq_msg_send(&m, fwd->front, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0)
            log_warn("bus: subscription not forwarded", "error", zmq_strerror(errno), NULL);
        zmq_msg_close(&m);
    }
    return 0;
}

/* ---- Forwarder authentication (CURVE keys, ipc peer uids) ---- */

/* Frames of a ZAP request (RFC 27): version, request id, domain, address, identity, mechanism,
 * then the credentials (CURVE: one, the client's 32-byte public key; NULL: none). */
#define S_ZAP_FRAMES_MAX 8
#define S_ZAP_VERSION "1.0"
#define S_ZAP_ADDRESS_MAX 256 /* longest ZAP address frame parsed for credentials */

/* True when `key` (BUS_CURVE_KEY_BYTES) is in the forwarder's allow-list. */
static bool s_allowed(const bus_forwarder_t *fwd, const uint8_t *key)
{
    for (size_t i = 0; i < fwd->n_allow; i++)
        if (memcmp(fwd->allow[i], key, BUS_CURVE_KEY_BYTES) == 0)
            return true;
    return false;
}

/* True when `uid` may use the forwarder's peer-credential sockets. */
static bool s_uid_allowed(const bus_forwarder_t *fwd, uint32_t uid)
{
    for (size_t i = 0; i < fwd->n_uids; i++)
        if (fwd->uids[i] == uid)
            return true;
    return false;
}

/* Parses the peer credentials libzmq appends to the ZAP address of an ipc:// connection
 * (SO_PEERCRED): "HOST:UID:GID:PID", HOST possibly empty. Returns true and fills the three
 * numbers, or false when the address does not end with them (no credentials: refused). */
static bool s_peer_cred(const void *data, size_t len, uint32_t *uid, uint32_t *gid, uint32_t *pid)
{
    if (len == 0 || len > S_ZAP_ADDRESS_MAX)
        return false;
    const char *a = data;
    uint32_t *out[3] = {pid, gid, uid}; // read from the end
    size_t end = len;
    for (int f = 0; f < 3; f++) {
        size_t start = end;
        while (start > 0 && a[start - 1] >= '0' && a[start - 1] <= '9')
            start--;
        if (start == end || end - start > 10 || start == 0 || a[start - 1] != ':')
            return false;
        uint64_t v = 0;
        for (size_t i = start; i < end; i++)
            v = v * 10 + (uint64_t)(a[i] - '0');
        if (v > UINT32_MAX)
            return false;
        *out[f] = (uint32_t)v;
        end = start - 1;
    }
    return true;
}

/* Logs a refused peer `id` (see refused_t), at most once per BUS_LOG_INTERVAL_MS per peer (the
 * least recently logged slot is reused when the table is full). Public keys and uids only.
 * `fields` are extra key/value pairs (NULL-terminated, at most 6 strings). */
static void s_log_refused(bus_forwarder_t *fwd, const char *id, const char *msg,
                          const char *const *fields)
{
    refused_t *slot = NULL;
    for (size_t i = 0; i < fwd->n_refused && !slot; i++)
        if (strcmp(fwd->refused[i].id, id) == 0)
            slot = &fwd->refused[i];
    if (!slot && fwd->n_refused < BUS_REFUSED_KEYS_MAX)
        slot = &fwd->refused[fwd->n_refused++];
    if (!slot) {
        slot = &fwd->refused[0];
        for (size_t i = 1; i < fwd->n_refused; i++)
            if (fwd->refused[i].rl.last_ms < slot->rl.last_ms)
                slot = &fwd->refused[i];
    }
    if (strcmp(slot->id, id) != 0) {
        snprintf(slot->id, sizeof slot->id, "%s", id);
        slot->rl = (ratelimit_t){0};
    }
    int64_t now = loop_clock_ms();
    if (slot->rl.last_ms != 0 && now - slot->rl.last_ms < BUS_LOG_INTERVAL_MS) {
        slot->rl.suppressed++;
        return;
    }
    char n[32];
    snprintf(n, sizeof n, "%" PRIu64, slot->rl.suppressed);
    const char *f[8] = {NULL}; // the fields, then "suppressed", then NULLs that end the list
    int k = 0;
    while (k < 6 && fields[k]) {
        f[k] = fields[k];
        k++;
    }
    f[k] = "suppressed";
    f[k + 1] = n;
    log_warn(msg, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], NULL);
    slot->rl.last_ms = now;
    slot->rl.suppressed = 0;
}

/* Logs a refused CURVE key (all-zero: the peer was not CURVE). */
static void s_log_refused_key(bus_forwarder_t *fwd, const uint8_t *key, const char *mechanism)
{
    char z85[BUS_CURVE_KEY_LEN + 1] = "";
    char id[S_REFUSED_ID_MAX];
    zmq_z85_encode(z85, key, BUS_CURVE_KEY_BYTES);
    snprintf(id, sizeof id, "key:%s", z85);
    const char *fields[] = {"key", z85, "mechanism", mechanism, NULL};
    s_log_refused(fwd, id, "bus: client refused: public key not in the allow-list", fields);
}

/* Decides one NULL-mechanism request of a peer-credential socket: the uid in `address` (into
 * *uid). Returns true to admit; counts and logs. */
static bool s_zap_peercred(bus_forwarder_t *fwd, const void *address, size_t len, uint32_t *uid_out)
{
    uint32_t uid = 0, gid, pid;
    if (!s_peer_cred(address, len, &uid, &gid, &pid)) {
        fwd->stats.auth_refused++;
        fwd->stats.auth_ipc_refused++;
        const char *fields[] = {"reason", "no peer credentials in the ZAP request", NULL};
        s_log_refused(fwd, "nocred", "bus: ipc client refused: its uid is unknown", fields);
        return false;
    }
    *uid_out = uid;
    if (s_uid_allowed(fwd, uid)) {
        fwd->stats.auth_allowed++;
        fwd->stats.auth_ipc_allowed++;
        return true;
    }
    fwd->stats.auth_refused++;
    fwd->stats.auth_ipc_refused++;
    char id[S_REFUSED_ID_MAX], u[16], g[16], p[16];
    snprintf(id, sizeof id, "uid:%" PRIu32, uid);
    snprintf(u, sizeof u, "%" PRIu32, uid);
    snprintf(g, sizeof g, "%" PRIu32, gid);
    snprintf(p, sizeof p, "%" PRIu32, pid);
    const char *fields[] = {"uid", u, "gid", g, "pid", p, NULL};
    s_log_refused(fwd, id, "bus: ipc client refused: uid not allowed", fields);
    return false;
}

/* Sends one ZAP reply frame. */
static void s_zap_send(void *sock, const void *data, size_t len, bool more)
{
    if (zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0)
        log_warn("bus: ZAP reply not sent", "error", zmq_strerror(errno), NULL);
}

/* True when ZAP frame m holds exactly the string s. */
static bool s_frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

/* Answers the ZAP requests libzmq sends for each handshake on the forwarder's sockets: CURVE in
 * domain BUS_ZAP_DOMAIN (the key against the allow-list), NULL in BUS_ZAP_DOMAIN_IPC (the peer's
 * uid); anything else is refused. */
static int s_zap_readable(loop_t *loop, void *socket, int revents, void *arg)
{
    bus_forwarder_t *fwd = arg;
    for (int r = 0; r < BUS_RECV_BATCH; r++) {
        zmq_msg_t f[S_ZAP_FRAMES_MAX];
        int n = 0;
        bool more = true;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, socket, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            if (n < S_ZAP_FRAMES_MAX)
                f[n++] = m; // the frames of one message arrive together
            else
                zmq_msg_close(&m);
        }
        if (n == 0)
            break;
        const char *status = "400";
        const char *text = "public key not allowed";
        char user[24] = "";
        bool version_ok = n >= 2 && s_frame_is(&f[0], S_ZAP_VERSION);
        bool curve = n >= 7 && s_frame_is(&f[2], BUS_ZAP_DOMAIN) && s_frame_is(&f[5], "CURVE") &&
                     zmq_msg_size(&f[6]) == BUS_CURVE_KEY_BYTES;
        bool ipc = n >= 6 && s_frame_is(&f[2], BUS_ZAP_DOMAIN_IPC) && s_frame_is(&f[5], "NULL");
        if (!version_ok || n < 6) {
            status = "500";
            text = "malformed ZAP request";
        } else if (ipc) {
            uint32_t uid = 0;
            if (s_zap_peercred(fwd, zmq_msg_data(&f[3]), zmq_msg_size(&f[3]), &uid)) {
                status = "200";
                text = "OK";
                snprintf(user, sizeof user, "uid:%" PRIu32, uid);
            } else {
                text = "uid not allowed";
            }
        } else if (curve && s_allowed(fwd, zmq_msg_data(&f[6]))) {
            status = "200";
            text = "OK";
            fwd->stats.auth_allowed++;
        } else {
            fwd->stats.auth_refused++;
            static const uint8_t none[BUS_CURVE_KEY_BYTES];
            s_log_refused_key(fwd, curve ? zmq_msg_data(&f[6]) : none,
                              curve ? "CURVE" : "not CURVE");
        }
        s_zap_send(socket, S_ZAP_VERSION, strlen(S_ZAP_VERSION), true);
        if (n >= 2)
            s_zap_send(socket, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), true);
        else
            s_zap_send(socket, "", 0, true);
        s_zap_send(socket, status, 3, true);
        s_zap_send(socket, text, strlen(text), true);
        s_zap_send(socket, user, strlen(user), true); // user id
        s_zap_send(socket, "", 0, false); // metadata
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
    return 0;
}

/* Reads monitor events of an authenticating socket: handshakes that failed before ZAP was asked
 * (a plain ZMTP peer, a CURVE client with another server key, a CURVE client at a peer-credential
 * socket) are counted and logged. */
static int s_mon_readable(loop_t *loop, void *socket, int revents, void *arg)
{
    bus_forwarder_t *fwd = arg;
    for (int r = 0; r < BUS_RECV_BATCH; r++) {
        uint8_t head[6];
        int n = zmq_recv(socket, head, sizeof head, ZMQ_DONTWAIT);
        if (n < 0)
            break;
        int more = 0;
        size_t more_len = sizeof more;
        while (zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_len) == 0 && more) {
            char skip[8];
            if (zmq_recv(socket, skip, sizeof skip, 0) < 0)
                break;
        }
        if (n != (int)sizeof head)
            continue;
        uint16_t event;
        uint32_t value;
        memcpy(&event, head, sizeof event);
        memcpy(&value, head + 2, sizeof value);
        if (event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
            event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            continue;
        fwd->stats.auth_failed++;
        int64_t now = loop_clock_ms();
        if (fwd->rl_handshake.last_ms != 0 &&
            now - fwd->rl_handshake.last_ms < BUS_LOG_INTERVAL_MS) {
            fwd->rl_handshake.suppressed++;
            continue;
        }
        char code[16], sup[32];
        snprintf(code, sizeof code, "0x%" PRIx32, value);
        snprintf(sup, sizeof sup, "%" PRIu64, fwd->rl_handshake.suppressed);
        int i = socket == fwd->mon[0] ? 0 : 1;
        log_warn(fwd->peercred[i]
                     ? "bus: ipc client refused: handshake failed (a CURVE client at a socket "
                       "that checks peer uids: set --bus.ipc-auth alike on both sides)"
                     : "bus: client refused: CURVE handshake failed (plain ZMTP or a wrong server "
                       "key)",
                 "socket", i == 0 ? "frontend" : "backend", "protocol_error",
                 event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? code : "none", "suppressed", sup,
                 NULL);
        fwd->rl_handshake.last_ms = now;
        fwd->rl_handshake.suppressed = 0;
    }
    return 0;
}

/* Watches the handshake failures of `sock` (index i of fwd->mon). Returns 0 or ERR_IO. */
static int s_monitor(bus_forwarder_t *fwd, void *zctx, void *sock, int i)
{
    /* a sequence number besides the address: a forwarder made where a destroyed one was may
     * meet that one's monitor endpoint still bound in a shared context ("Address already in
     * use", seen in the self-test) */
    static _Atomic unsigned long seq;
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://rayfleet-bus-monitor-%p-%d-%lu", (void *)fwd, i, ++seq);
    if (zmq_socket_monitor(sock, ep,
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
        log_error("bus: zmq_socket_monitor failed", "error", zmq_strerror(errno), NULL);
        return ERR_IO;
    }
    fwd->monitored[i] = sock;
    fwd->mon[i] = zmq_socket(zctx, ZMQ_PAIR);
    int zero = 0;
    if (!fwd->mon[i] || s_setopt(fwd->mon[i], ZMQ_LINGER, &zero, sizeof zero, "linger") < 0 ||
        zmq_connect(fwd->mon[i], ep) != 0 ||
        loop_add_socket(fwd->loop, fwd->mon[i], LOOP_READ, s_mon_readable, fwd) < 0) {
        log_error("bus: cannot read socket monitor events", "error", zmq_strerror(errno), NULL);
        return ERR_IO;
    }
    return 0;
}

/* Sets up authentication: the allow-list (CURVE), the uids (peer credentials), the ZAP handler,
 * the domain of each authenticating socket and its monitor. Returns 0, ERR_INVAL, ERR_NOMEM or
 * ERR_IO (logged). */
static int s_fwd_auth(bus_forwarder_t *fwd, void *zctx, const bus_options_t *opts)
{
    if (fwd->curve[0] || fwd->curve[1]) {
        fwd->allow = calloc(opts->curve_allow_n, sizeof *fwd->allow);
        if (!fwd->allow)
            return ERR_NOMEM;
        for (size_t i = 0; i < opts->curve_allow_n; i++) {
            const char *k = opts->curve_allow[i];
            if (!s_key_ok(k, false) || !zmq_z85_decode(fwd->allow[i], k)) {
                char idx[24];
                snprintf(idx, sizeof idx, "%zu", i);
                log_error("bus: curve_allow: entry is not a 40-character Z85 key", "index", idx,
                          NULL);
                return ERR_INVAL;
            }
        }
        fwd->n_allow = opts->curve_allow_n;
    }
    if (opts->ipc_uids_n > 0) {
        memcpy(fwd->uids, opts->ipc_uids, opts->ipc_uids_n * sizeof *fwd->uids);
        fwd->n_uids = opts->ipc_uids_n;
    } else {
        fwd->uids[0] = (uint32_t)geteuid();
        fwd->n_uids = 1;
    }
    fwd->zap = zmq_socket(zctx, ZMQ_REP);
    int zero = 0;
    if (!fwd->zap || s_setopt(fwd->zap, ZMQ_LINGER, &zero, sizeof zero, "linger") < 0)
        return ERR_IO;
    if (zmq_bind(fwd->zap, BUS_ZAP_ENDPOINT) != 0) {
        log_error("bus: cannot bind the ZAP handler (another authenticating forwarder in this "
                  "context?)",
                  "endpoint", BUS_ZAP_ENDPOINT, "error", zmq_strerror(errno), NULL);
        return ERR_IO;
    }
    if (loop_add_socket(fwd->loop, fwd->zap, LOOP_READ, s_zap_readable, fwd) < 0)
        return ERR_IO;
    void *socks[2] = {fwd->front, fwd->tx.sock};
    for (int i = 0; i < 2; i++) {
        if (!fwd->curve[i] && !fwd->peercred[i])
            continue;
        const char *domain = fwd->peercred[i] ? BUS_ZAP_DOMAIN_IPC : BUS_ZAP_DOMAIN;
        if (s_setopt(socks[i], ZMQ_ZAP_DOMAIN, domain, strlen(domain), "zap_domain") < 0 ||
            s_monitor(fwd, zctx, socks[i], i) < 0)
            return ERR_IO;
    }
    return 0;
}

/* The authentication of socket i as the log names it. */
static const char *s_auth_name(const bus_forwarder_t *fwd, int i)
{
    return fwd->peercred[i] ? "peercred" : fwd->curve[i] ? "curve" : "none";
}

bus_forwarder_t *bus_forwarder_new(loop_t *loop, void *zctx, const bus_options_t *opts)
{
    settings_t s;
    if (!loop || !zctx || !opts || s_settings(opts, &s) < 0 || !opts->frontend || !opts->backend ||
        !s_key_ok(opts->curve_secret_key, true)) {
        log_error("bus: invalid forwarder options", NULL);
        return NULL;
    }
    if (opts->curve_secret_key &&
        (!opts->curve_allow || opts->curve_allow_n == 0 || opts->curve_allow_n > BUS_ALLOW_MAX)) {
        log_error("bus: a CURVE forwarder needs an allow-list of 1..4096 client public keys", NULL);
        return NULL;
    }
    if (opts->ipc_uids_n > BUS_IPC_UIDS_MAX || (opts->ipc_uids_n > 0 && !opts->ipc_uids)) {
        log_error("bus: ipc_uids: at most 64 uids", NULL);
        return NULL;
    }
    bus_forwarder_t *fwd = calloc(1, sizeof *fwd);
    if (!fwd)
        return NULL;
    fwd->loop = loop;
    fwd->tx.heartbeat_ms = s.heartbeat_ms;
    fwd->tx.max_frame = s.max_frame;
    fwd->tx.epoch = s_new_epoch();
    const char *eps[2] = {opts->frontend, opts->backend};
    for (int i = 0; i < 2; i++) {
        fwd->peercred[i] = opts->ipc_auth == BUS_IPC_PEERCRED && bus_endpoint_is_ipc(eps[i]);
        fwd->curve[i] = !fwd->peercred[i] && opts->curve_secret_key;
    }
    if (s_set_source(&fwd->tx, opts->source ? opts->source : BUS_FORWARDER_SOURCE) < 0) {
        log_error("bus: invalid forwarder source", NULL);
        goto fail;
    }
    fwd->front = zmq_socket(zctx, ZMQ_XSUB);
    fwd->tx.sock = zmq_socket(zctx, ZMQ_XPUB);
    if (!fwd->front || !fwd->tx.sock) {
        log_error("bus: zmq_socket failed", "error", zmq_strerror(errno), NULL);
        goto fail;
    }
    int part_timeout = BUS_PART_TIMEOUT_MS;
    if (s_socket_basics(fwd->front, s.hwm) < 0 || s_socket_basics(fwd->tx.sock, s.hwm) < 0 ||
        s_setopt(fwd->tx.sock, ZMQ_SNDTIMEO, &part_timeout, sizeof part_timeout, "sndtimeo") < 0 ||
        s_curve_server(fwd->front, fwd->curve[0] ? opts->curve_secret_key : NULL) < 0 ||
        s_curve_server(fwd->tx.sock, fwd->curve[1] ? opts->curve_secret_key : NULL) < 0 ||
        ((fwd->curve[0] || fwd->curve[1] || fwd->peercred[0] || fwd->peercred[1]) &&
         s_fwd_auth(fwd, zctx, opts) < 0) ||
        s_attach(fwd->front, opts->frontend, true, fwd->frontend) < 0 ||
        s_attach(fwd->tx.sock, opts->backend, true, fwd->backend) < 0)
        goto fail;
    if (loop_add_socket(loop, fwd->front, LOOP_READ, s_fwd_front_readable, fwd) < 0 ||
        loop_add_socket(loop, fwd->tx.sock, LOOP_READ, s_fwd_back_readable, fwd) < 0)
        goto fail;
    fwd->tx.hb_timer = loop_add_timer(loop, 0, s_fwd_heartbeat_timer, fwd);
    if (fwd->tx.hb_timer < 0) {
        fwd->tx.hb_timer = 0;
        goto fail;
    }
    log_info("bus: forwarder ready", "frontend", fwd->frontend, "backend", fwd->backend, "curve",
             fwd->curve[0] || fwd->curve[1] ? "on" : "off", "frontend_auth", s_auth_name(fwd, 0),
             "backend_auth", s_auth_name(fwd, 1), NULL);
    return fwd;
fail:
    bus_forwarder_destroy(&fwd);
    return NULL;
}

void bus_forwarder_destroy(bus_forwarder_t **fwd_p)
{
    if (!fwd_p || !*fwd_p)
        return;
    bus_forwarder_t *fwd = *fwd_p;
    if (fwd->tx.hb_timer > 0)
        loop_cancel_timer(fwd->loop, fwd->tx.hb_timer);
    if (fwd->front)
        loop_remove_socket(fwd->loop, fwd->front);
    if (fwd->tx.sock)
        loop_remove_socket(fwd->loop, fwd->tx.sock);
    for (int i = 0; i < 2; i++) {
        if (fwd->monitored[i])
            zmq_socket_monitor(fwd->monitored[i], NULL, 0);
        if (fwd->mon[i])
            loop_remove_socket(fwd->loop, fwd->mon[i]);
        s_close(&fwd->mon[i]);
    }
    if (fwd->zap) {
        loop_remove_socket(fwd->loop, fwd->zap);
        zmq_unbind(fwd->zap, BUS_ZAP_ENDPOINT); // at once: closing frees the name later
    }
    s_close(&fwd->zap);
    free(fwd->allow);
    s_close(&fwd->front);
    s_close(&fwd->tx.sock);
    free(fwd->tx.pack);
    free(fwd);
    *fwd_p = NULL;
}

void bus_forwarder_stats(const bus_forwarder_t *fwd, bus_stats_t *out)
{
    *out = fwd->stats;
}

const char *bus_forwarder_frontend(const bus_forwarder_t *fwd)
{
    return fwd->frontend;
}

const char *bus_forwarder_backend(const bus_forwarder_t *fwd)
{
    return fwd->backend;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- Self-test ---- */

/* What the test handlers saw. */
typedef struct {
    int got; /* ObjectChanged envelopes received */
    uint32_t last_shard; /* shard of the last one */
    uint64_t last_sequence; /* its envelope sequence */
    char last_source[64]; /* its envelope source */
    uint32_t last_version; /* its envelope version */
    char last_name[64]; /* its object name */
    uint64_t last_event_id; /* its event id */
    int seen; /* BUS_PEER_SEEN events */
    int lost; /* BUS_PEER_LOST events */
    char last_peer[64]; /* source of the last peer event */
    bus_peer_event_t last_event; /* the last peer event */
    int forged; /* envelopes whose object is named "forged" */
} s_probe_t;

/* Copies a view into dst (cap bytes) as a C string, truncating. */
static void s_copy_view(char *dst, size_t cap, envwire_str_t v)
{
    size_t n = v.n < cap - 1 ? v.n : cap - 1;
    if (n)
        memcpy(dst, v.p, n);
    dst[n] = '\0';
}

static int s_probe_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    s_probe_t *p = arg;
    p->got++;
    p->last_shard = msg->object_changed.shard;
    p->last_sequence = msg->sequence;
    p->last_version = msg->version;
    s_copy_view(p->last_source, sizeof p->last_source, msg->source);
    s_copy_view(p->last_name, sizeof p->last_name, msg->object_changed.name);
    p->forged += strcmp(p->last_name, "forged") == 0;
    p->last_event_id = msg->object_changed.event_id;
    return 0;
}

static void s_probe_peer(bus_sub_t *sub, const char *source, bus_peer_event_t event, void *arg)
{
    s_probe_t *p = arg;
    if (event == BUS_PEER_SEEN)
        p->seen++;
    else
        p->lost++;
    p->last_event = event;
    snprintf(p->last_peer, sizeof p->last_peer, "%s", source);
}

/* Most events a recorder keeps. */
#define S_REC_MAX 1024

/* Every ObjectChanged a test subscriber received, in order. */
typedef struct {
    int got; /* envelopes received */
    uint32_t shard[S_REC_MAX]; /* their shards */
    uint64_t id[S_REC_MAX]; /* their event ids */
} s_rec_t;

static int s_rec_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    s_rec_t *r = arg;
    if (r->got < S_REC_MAX) {
        r->shard[r->got] = msg->object_changed.shard;
        r->id[r->got] = msg->object_changed.event_id;
    }
    r->got++;
    return 0;
}

/* Publishes event `id` on `shard` through the view API. Returns what the publish returned. */
static int s_pub_event(bus_pub_t *pub, uint32_t shard, uint64_t id)
{
    envwire_object_changed_t ev = {.cluster = {"c1", 2},
                                   .kind = {"RayCluster", 10},
                                   .name = {"rc-batch", 8},
                                   .shard = shard,
                                   .event_id = id};
    return bus_pub_publish_view(pub, &ev);
}

/* Receives the next non-heartbeat frame from a raw SUB socket into out (cap bytes), waiting at
 * most 2 s. Returns its length, or -1. */
static int s_raw_next(void *sock, uint8_t *out, size_t cap)
{
    int64_t end = loop_clock_ms() + 2000;
    while (loop_clock_ms() < end) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 10) <= 0)
            continue;
        int n = zmq_recv(sock, out, cap, 0);
        if (n < 0 || (size_t)n > cap)
            return -1;
        if (n >= 3 && memcmp(out, BUS_TOPIC_HEARTBEAT, 3) == 0)
            continue;
        return n;
    }
    return -1;
}

/* Checks a raw batch body with protobuf-c: each length-delimited Envelope must unpack, be
 * version BUS_VERSION on `shard`, with event ids from *next on (advanced). Returns the number
 * of envelopes, or -1. */
static int s_walk_batch(const uint8_t *p, size_t len, uint32_t shard, uint64_t *next)
{
    const uint8_t *end = p + len;
    int count = 0;
    while (p < end) {
        uint64_t n;
        if (s_get_length(&p, end, &n) < 0 || n > (uint64_t)(end - p))
            return -1;
        Rayfleet__Envelope *e = rayfleet__envelope__unpack(NULL, (size_t)n, p);
        bool ok = e && e->version == BUS_VERSION &&
                  e->body_case == RAYFLEET__ENVELOPE__BODY_OBJECT_CHANGED &&
                  e->object_changed->shard == shard && e->object_changed->event_id == *next;
        if (e)
            rayfleet__envelope__free_unpacked(e, NULL);
        if (!ok)
            return -1;
        (*next)++;
        count++;
        p += n;
    }
    return count;
}

/* Appends the varint n and then `len` bytes of `body` to a raw frame under construction.
 * Returns the new length, or 0 when it would pass cap. */
static size_t s_raw_put(uint8_t *frame, size_t at, size_t cap, uint64_t n, const void *body,
                        size_t len)
{
    if (at + ENVWIRE_VARINT_MAX + len > cap)
        return 0;
    s_put_varint(frame + at, n);
    at += s_varint_len(n);
    if (len)
        memcpy(frame + at, body, len);
    return at + len;
}

/* Runs the loop for `ms`. */
static void s_pump(loop_t *loop, int64_t ms)
{
    int64_t end = loop_clock_ms() + ms;
    while (loop_clock_ms() < end)
        loop_run_once(loop, 5);
}

/* Runs the loop until *counter >= want or `ms` pass; true when reached. */
static bool s_pump_until(loop_t *loop, const int *counter, int want, int64_t ms)
{
    int64_t end = loop_clock_ms() + ms;
    while (*counter < want && loop_clock_ms() < end)
        loop_run_once(loop, 5);
    return *counter >= want;
}

/* Sends raw frames (parts[i] of lens[i]) as one message on a raw socket. */
static void s_raw_send(void *sock, const void *const *parts, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++)
        zmq_send(sock, parts[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0);
}

/* Sends one frame "topic SEP body" on a raw socket, as a publisher does. */
static void s_raw_frame(void *sock, const char *topic, const void *body, size_t len)
{
    uint8_t frame[8192];
    size_t tl = strlen(topic);
    if (tl + 1 + len > sizeof frame)
        return;
    memcpy(frame, topic, tl);
    frame[tl] = BUS_TOPIC_SEP;
    memcpy(frame + tl + 1, body, len);
    zmq_send(sock, frame, tl + 1 + len, 0);
}

/* Packs an Envelope holding `oc` with `version` into out (at least 4 KiB). Returns its length. */
static size_t s_pack_test(const Rayfleet__ObjectChanged *oc, uint32_t version, uint8_t *out)
{
    Rayfleet__Envelope env = RAYFLEET__ENVELOPE__INIT;
    env.version = version;
    env.source = "test/raw";
    env.sequence = 1;
    env.body_case = RAYFLEET__ENVELOPE__BODY_OBJECT_CHANGED;
    env.object_changed = (Rayfleet__ObjectChanged *)oc;
    return rayfleet__envelope__pack(&env, out);
}

/* Every gap a test subscriber saw, and the ObjectChanged count, in order. */
typedef struct {
    int got; /* ObjectChanged envelopes received */
    int n; /* gaps */
    bus_gap_kind_t kind[16]; /* their kinds */
    uint32_t shard[16]; /* their shards */
    uint64_t missed[16]; /* their missed counts */
    char source[16][BUS_SOURCE_MAX + 1]; /* their sources */
} s_gaps_t;

static int s_gaps_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    ((s_gaps_t *)arg)->got++;
    return 0;
}

static void s_gaps_gap(bus_sub_t *sub, const bus_gap_t *gap, void *arg)
{
    s_gaps_t *g = arg;
    if (g->n < 16) {
        g->kind[g->n] = gap->kind;
        g->shard[g->n] = gap->shard;
        g->missed[g->n] = gap->missed;
        snprintf(g->source[g->n], sizeof g->source[g->n], "%s", gap->source);
    }
    g->n++;
}

/* True when gap i of g is (kind, shard, missed, source). */
static bool s_gap_is(const s_gaps_t *g, int i, bus_gap_kind_t kind, uint32_t shard, uint64_t missed,
                     const char *source)
{
    return i < g->n && i < 16 && g->kind[i] == kind && g->shard[i] == shard &&
           g->missed[i] == missed && strcmp(g->source[i], source) == 0;
}

/* Encodes an envelope of `source` with `epoch` into out (4 KiB): an ObjectChanged on `shard`
 * with shard sequence `seq`, or a heartbeat with sequence `seq` when shard is BUS_SHARD_ALL.
 * Returns its length. */
static size_t s_gap_env(const char *source, uint64_t epoch, uint32_t shard, uint64_t seq,
                        uint8_t *out)
{
    envwire_msg_t m = {.version = BUS_VERSION, .source = envwire_str(source), .epoch = epoch};
    if (shard == BUS_SHARD_ALL) {
        m.body = ENVWIRE_BODY_HEARTBEAT;
        m.heartbeat.source = m.source;
        m.heartbeat.sequence = seq;
        m.heartbeat.interval_ms = 3600000;
    } else {
        m.body = ENVWIRE_BODY_OBJECT_CHANGED;
        m.shard_sequence = seq;
        m.object_changed.shard = shard;
        m.object_changed.name = envwire_str("rc-gap");
    }
    int n = envwire_encode(&m, out, 4096);
    return n > 0 ? (size_t)n : 0;
}

/* Sends one envelope made by s_gap_env() on a raw socket, on its topic. */
static void s_gap_send(void *raw, const char *source, uint64_t epoch, uint32_t shard, uint64_t seq)
{
    static uint8_t body[4096];
    char t[BUS_TOPIC_MAX];
    if (shard == BUS_SHARD_ALL)
        snprintf(t, sizeof t, "%s%s", BUS_TOPIC_HEARTBEAT, source);
    else
        bus_topic_object_changed(shard, t, sizeof t);
    s_raw_frame(raw, t, body, s_gap_env(source, epoch, shard, seq, body));
}

/* Publishes `good` on pub and `forged` on each forger until probe got `want` events, then for
 * `ms` more (so a forged event that would get through has had its chance). */
static void s_publish_mix(loop_t *loop, bus_pub_t *pub, bus_pub_t *const *forgers, int nforgers,
                          const Rayfleet__ObjectChanged *good,
                          const Rayfleet__ObjectChanged *forged, const s_probe_t *probe, int want,
                          int64_t ms)
{
    int64_t end = loop_clock_ms() + 5000;
    int64_t tail = 0;
    while (loop_clock_ms() < end) {
        for (int i = 0; i < nforgers; i++)
            if (forgers[i])
                bus_pub_publish(forgers[i], forged);
        if (pub)
            bus_pub_publish(pub, good);
        loop_run_once(loop, 5);
        if (probe->got >= want && tail == 0)
            tail = loop_clock_ms() + ms;
        if (tail && loop_clock_ms() >= tail)
            break;
    }
}

/* Peer credentials on ipc:// (BUS_IPC_PEERCRED). Returns the number of failed checks. */
static int s_test_peercred(loop_t *loop, void *zctx, const Rayfleet__ObjectChanged *oc_in,
                           bool verbose)
{
    int failed = 0;
    Rayfleet__ObjectChanged oc = *oc_in, forged = *oc_in;
    oc.shard = forged.shard = 6;
    forged.name = "forged";
    uint32_t uid, gid, pid;

    // The credentials libzmq puts in the ZAP address of an ipc:// peer: "HOST:UID:GID:PID".
    CHECK(s_peer_cred("localhost:1000:100:4242", 23, &uid, &gid, &pid));
    CHECK(uid == 1000 && gid == 100 && pid == 4242);
    CHECK(s_peer_cred(":0:0:1", 6, &uid, &gid, &pid) && uid == 0 && pid == 1);
    CHECK(!s_peer_cred("127.0.0.1", 9, &uid, &gid, &pid)); // a tcp peer: none
    CHECK(!s_peer_cred("", 0, &uid, &gid, &pid));
    CHECK(!s_peer_cred("localhost:1:2", 13, &uid, &gid, &pid));
    CHECK(!s_peer_cred("1:2:3", 5, &uid, &gid, &pid)); // no ':' before the uid
    CHECK(!s_peer_cred("h:x1:2:3", 8, &uid, &gid, &pid));
    CHECK(!s_peer_cred("h:4294967296:2:3", 16, &uid, &gid, &pid)); // over 32 bits
    CHECK(!s_peer_cred("h:1:2:", 6, &uid, &gid, &pid));

    // Bad settings are refused.
    bus_options_t bad = {.frontend = "ipc://@rf-bad-in", .backend = "ipc://@rf-bad-out"};
    bad.ipc_auth = (bus_ipc_auth_t)7;
    CHECK(bus_forwarder_new(loop, zctx, &bad) == NULL);
    bad.ipc_auth = BUS_IPC_PEERCRED;
    bad.ipc_uids_n = BUS_IPC_UIDS_MAX + 1;
    CHECK(bus_forwarder_new(loop, zctx, &bad) == NULL);

    char dir[] = "/tmp/rfbus-ipc.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char front[128];
    snprintf(front, sizeof front, "ipc://%s/in", dir);
    char spub[41], ssec[41], cpub[41], csec[41], gpub[41], gsec[41];
    CHECK(zmq_curve_keypair(spub, ssec) == 0 && zmq_curve_keypair(cpub, csec) == 0 &&
          zmq_curve_keypair(gpub, gsec) == 0);
    const char *allow[] = {cpub, gpub};

    // One forwarder, two mechanisms: the ipc:// frontend checks uids, the tcp:// backend keeps
    // CURVE. A same-uid publisher without CURVE gets through; a CURVE client at the ipc socket
    // fails the handshake; a plain subscriber at the tcp backend is refused.
    bus_options_t fo = {.frontend = front,
                        .backend = "tcp://127.0.0.1:*",
                        .heartbeat_ms = 20,
                        .curve_secret_key = ssec,
                        .curve_allow = allow,
                        .curve_allow_n = 2,
                        .ipc_auth = BUS_IPC_PEERCRED};
    bus_forwarder_t *fwd = bus_forwarder_new(loop, zctx, &fo);
    CHECK(fwd != NULL);
    s_probe_t good = {0}, plain = {0};
    bus_pub_t *pub = NULL, *curve_pub = NULL;
    bus_sub_t *sub = NULL, *plain_sub = NULL;
    if (fwd) {
        bus_options_t po = {.source = "test/ipc",
                            .endpoint = bus_forwarder_frontend(fwd),
                            .heartbeat_ms = 20,
                            .curve_server_key = spub, // ignored on ipc:// with PEERCRED
                            .curve_public_key = cpub,
                            .curve_secret_key = csec,
                            .ipc_auth = BUS_IPC_PEERCRED};
        pub = bus_pub_new(loop, zctx, &po);
        po.source = "test/ipc-curve";
        po.ipc_auth = BUS_IPC_CURVE; // CURVE at a peer-credential socket
        curve_pub = bus_pub_new(loop, zctx, &po);
        bus_options_t so = {.endpoint = bus_forwarder_backend(fwd),
                            .heartbeat_ms = 20,
                            .curve_server_key = spub,
                            .curve_public_key = gpub,
                            .curve_secret_key = gsec,
                            .ipc_auth = BUS_IPC_PEERCRED}; // tcp://: CURVE all the same
        sub = bus_sub_new(loop, zctx, &so, s_probe_msg, s_probe_peer, &good);
        so.curve_server_key = so.curve_public_key = so.curve_secret_key = NULL;
        plain_sub = bus_sub_new(loop, zctx, &so, s_probe_msg, s_probe_peer, &plain);
    }
    CHECK(pub && curve_pub && sub && plain_sub);
    if (pub && curve_pub && sub && plain_sub) {
        struct stat sst;
        CHECK(stat(front + 6, &sst) == 0 && (sst.st_mode & 0777) == PRIVFS_FILE_MODE);
        CHECK(bus_sub_subscribe(sub, 6) == 0 && bus_sub_subscribe(plain_sub, 6) == 0);
        bus_pub_t *forgers[] = {curve_pub};
        s_publish_mix(loop, pub, forgers, 1, &oc, &forged, &good, 3, 300);
        CHECK(good.got >= 3); // the envelope path is the same: decoded, checked, handled
        CHECK(good.forged == 0);
        CHECK(strcmp(good.last_source, "test/ipc") == 0);
        CHECK(bus_sub_peer_alive(sub, "test/ipc"));
        CHECK(!bus_sub_peer_alive(sub, "test/ipc-curve"));
        CHECK(plain.got == 0 && plain.seen == 0);
        bus_stats_t st;
        bus_forwarder_stats(fwd, &st);
        CHECK(st.auth_ipc_allowed >= 1); // the ipc publisher, by uid
        CHECK(st.auth_allowed >= st.auth_ipc_allowed + 1); // and the CURVE subscriber
        CHECK(st.auth_ipc_refused == 0);
        CHECK(st.auth_failed >= 2); // CURVE at the ipc socket, plain at the tcp one
        if (verbose)
            printf("bus: peercred+curve allowed %" PRIu64 " (ipc %" PRIu64 ") failed %" PRIu64 "\n",
                   st.auth_allowed, st.auth_ipc_allowed, st.auth_failed);
    }
    bus_pub_destroy(&pub);
    bus_pub_destroy(&curve_pub);
    bus_sub_destroy(&sub);
    bus_sub_destroy(&plain_sub);
    bus_forwarder_destroy(&fwd);

    // Another uid is refused. The test runs as one uid, so the forwarder allows only another
    // one: this process's own connections must then be refused by uid, counted, and get nothing
    // through. Abstract sockets have no file mode, so only the uid check stands in the way.
    char ain[64], aout[64];
    snprintf(ain, sizeof ain, "ipc://@rfbus-test-%d-in", (int)getpid());
    snprintf(aout, sizeof aout, "ipc://@rfbus-test-%d-out", (int)getpid());
    uint32_t other = (uint32_t)geteuid() + 1;
    bus_options_t ro = {.frontend = ain,
                        .backend = aout,
                        .heartbeat_ms = 20,
                        .ipc_auth = BUS_IPC_PEERCRED,
                        .ipc_uids = &other,
                        .ipc_uids_n = 1};
    fwd = bus_forwarder_new(loop, zctx, &ro);
    CHECK(fwd != NULL);
    s_probe_t refused = {0};
    if (fwd) {
        bus_options_t po = {.source = "test/other-uid",
                            .endpoint = ain,
                            .heartbeat_ms = 20,
                            .ipc_auth = BUS_IPC_PEERCRED};
        pub = bus_pub_new(loop, zctx, &po);
        bus_options_t so = {.endpoint = aout, .heartbeat_ms = 20, .ipc_auth = BUS_IPC_PEERCRED};
        sub = bus_sub_new(loop, zctx, &so, s_probe_msg, s_probe_peer, &refused);
        CHECK(pub && sub);
        if (pub && sub) {
            CHECK(bus_sub_subscribe(sub, 6) == 0);
            bus_stats_t st = {0};
            int64_t end = loop_clock_ms() + 3000;
            while (loop_clock_ms() < end) {
                bus_pub_publish(pub, &forged);
                loop_run_once(loop, 5);
                bus_forwarder_stats(fwd, &st);
                if (st.auth_ipc_refused >= 2 && end - loop_clock_ms() > 300)
                    end = loop_clock_ms() + 300; // both refused: a little longer, then stop
            }
            CHECK(st.auth_ipc_refused >= 2); // the publisher and the subscriber
            CHECK(st.auth_ipc_allowed == 0 && st.forwarded == 0);
            CHECK(refused.got == 0 && refused.seen == 0);
            if (verbose)
                printf("bus: peercred refused %" PRIu64 " connections of uid %u\n",
                       st.auth_ipc_refused, (unsigned)geteuid());
        }
        bus_pub_destroy(&pub);
        bus_sub_destroy(&sub);
        bus_forwarder_destroy(&fwd);
    }
    // The own uid (the default list) is allowed. New names: an abstract name is freed by
    // libzmq's I/O thread some time after the close.
    snprintf(ain, sizeof ain, "ipc://@rfbus-test-%d-in2", (int)getpid());
    snprintf(aout, sizeof aout, "ipc://@rfbus-test-%d-out2", (int)getpid());
    ro.ipc_uids = NULL;
    ro.ipc_uids_n = 0;
    fwd = bus_forwarder_new(loop, zctx, &ro);
    CHECK(fwd != NULL);
    s_probe_t own = {0};
    if (fwd) {
        bus_options_t po = {.source = "test/own-uid",
                            .endpoint = ain,
                            .heartbeat_ms = 20,
                            .ipc_auth = BUS_IPC_PEERCRED};
        pub = bus_pub_new(loop, zctx, &po);
        bus_options_t so = {.endpoint = aout, .heartbeat_ms = 20, .ipc_auth = BUS_IPC_PEERCRED};
        sub = bus_sub_new(loop, zctx, &so, s_probe_msg, s_probe_peer, &own);
        CHECK(pub && sub);
        if (pub && sub) {
            CHECK(bus_sub_subscribe(sub, 6) == 0);
            s_publish_mix(loop, pub, NULL, 0, &oc, &forged, &own, 3, 0);
            CHECK(own.got >= 3 && strcmp(own.last_source, "test/own-uid") == 0);
            bus_stats_t st;
            bus_forwarder_stats(fwd, &st);
            CHECK(st.auth_ipc_allowed >= 2 && st.auth_ipc_refused == 0);
        }
        bus_pub_destroy(&pub);
        bus_sub_destroy(&sub);
        bus_forwarder_destroy(&fwd);
    }
    unlink(front + 6);
    rmdir(dir);
    return failed;
}

int bus_test(bool verbose)
{
    int failed = 0;
    char topic[BUS_TOPIC_MAX];

    // Topics: fixed width, exact prefixes, bounds.
    CHECK(bus_topic_object_changed(42, topic, sizeof topic) == 18);
    CHECK(strcmp(topic, "0042/ObjectChanged") == 0);
    CHECK(bus_topic_shard_prefix(7, topic, sizeof topic) == 5);
    CHECK(strcmp(topic, "0007/") == 0);
    CHECK(bus_topic_object_changed(9999, topic, sizeof topic) == 18);
    CHECK(bus_topic_object_changed(BUS_SHARD_LIMIT, topic, sizeof topic) == ERR_INVAL);
    CHECK(bus_topic_shard_prefix(BUS_SHARD_LIMIT, topic, sizeof topic) == ERR_INVAL);
    CHECK(bus_topic_object_changed(1, topic, 5) == ERR_TOOBIG);
    CHECK(bus_topic_shard_prefix(1, topic, 3) == ERR_TOOBIG);
    CHECK(s_topic_shard("0042/ObjectChanged", 18) == 42);
    CHECK(s_topic_shard("004x/ObjectChanged", 18) == -1);
    CHECK(s_topic_shard("0042", 4) == -1);

    // The shard function: FNV-1a 64 of "cluster/ns/name" (reference values from Python).
    CHECK(s_fnv1a(BUS_FNV_OFFSET, "default/default/rc") == 0x7143038e2ccd123eull);
    CHECK(bus_shard_of("default", "default", "rc", 256) == 62);
    CHECK(bus_shard_of("c1", "ns", "x", 10000) == 5682);
    CHECK(bus_shard_of(NULL, NULL, NULL, 7) == 1);
    CHECK(bus_shard_of("c1", "ns", "x", 0) == 0);
    CHECK(bus_shard_of("c1", "ns", "x", 1) == 0);
    CHECK(bus_shard_of("c1", "ns", "x", 256) == bus_shard_of("c1", "ns", "x", 256));

    void *zctx = zmq_ctx_new();
    loop_t *loop = loop_new();
    CHECK(zctx && loop);
    if (!zctx || !loop) {
        loop_destroy(&loop);
        return SELFTEST_RESULT("bus", verbose);
    }
    s_probe_t probe = {0};

    // Bad options are refused.
    bus_options_t bad = {.source = "x", .endpoint = "inproc://bus-bad"};
    bad.hwm = -1;
    CHECK(bus_pub_new(loop, zctx, &bad) == NULL);
    bad.hwm = 0;
    bad.max_frame = (size_t)BUS_FRAME_MAX_LIMIT + 1;
    CHECK(bus_sub_new(loop, zctx, &bad, s_probe_msg, NULL, &probe) == NULL);
    bad.max_frame = 0;
    bad.liveness = -2;
    CHECK(bus_sub_new(loop, zctx, &bad, s_probe_msg, NULL, &probe) == NULL);
    bad.liveness = 0;
    CHECK(bus_sub_new(loop, zctx, &bad, NULL, NULL, &probe) == NULL);
    bad.batch_max = -1;
    CHECK(bus_pub_new(loop, zctx, &bad) == NULL);
    bad.batch_max = BUS_BATCH_MAX + 1;
    CHECK(bus_pub_new(loop, zctx, &bad) == NULL);
    bad.batch_max = 0;
    bad.curve_server_key = "too-short";
    CHECK(bus_pub_new(loop, zctx, &bad) == NULL);
    bad.curve_server_key = NULL;
    bad.source = "";
    CHECK(bus_pub_new(loop, zctx, &bad) == NULL);
    bad.source = NULL;
    CHECK(bus_pub_new(loop, zctx, &bad) == NULL);
    bad.endpoint = NULL;
    bad.source = "x";
    CHECK(bus_pub_new(loop, zctx, &bad) == NULL);
    CHECK(bus_forwarder_new(loop, zctx, &bad) == NULL);
    bad.endpoint = "bogus://nowhere";
    CHECK(bus_pub_new(loop, zctx, &bad) == NULL);
    bus_pub_destroy(NULL);
    bus_sub_destroy(NULL);
    bus_forwarder_destroy(NULL);

    // An embedded forwarder, a publisher and a subscriber over inproc.
    bus_options_t fo = {.frontend = "inproc://bus-test-front",
                        .backend = "inproc://bus-test-back",
                        .heartbeat_ms = 20};
    bus_forwarder_t *fwd = bus_forwarder_new(loop, zctx, &fo);
    CHECK(fwd != NULL);
    CHECK(bus_forwarder_new(loop, zctx, &fo) == NULL); // the endpoints are taken
    bus_options_t po = {
        .source = "test/pub", .endpoint = "inproc://bus-test-front", .heartbeat_ms = 20};
    bus_pub_t *pub = bus_pub_new(loop, zctx, &po);
    bus_options_t so = {.endpoint = "inproc://bus-test-back", .heartbeat_ms = 20, .liveness = 3};
    bus_sub_t *sub = bus_sub_new(loop, zctx, &so, s_probe_msg, s_probe_peer, &probe);
    CHECK(pub && sub);
    if (!fwd || !pub || !sub)
        goto done;
    CHECK(strcmp(bus_forwarder_frontend(fwd), "inproc://bus-test-front") == 0);
    CHECK(strcmp(bus_pub_endpoint(pub), "inproc://bus-test-front") == 0);
    CHECK(strcmp(bus_sub_endpoint(sub), "inproc://bus-test-back") == 0);
    CHECK(bus_sub_subscribe(sub, 42) == 0);
    CHECK(bus_sub_subscribe(sub, 42) == 0);
    CHECK(bus_sub_subscribe(sub, BUS_SHARD_LIMIT) == ERR_INVAL);
    CHECK(bus_sub_subscribed(sub, 42));
    CHECK(!bus_sub_subscribed(sub, 7));

    // Wait until both subscriptions ("hb/" and "0042/") reached the publisher.
    bus_stats_t st;
    int64_t end = loop_clock_ms() + 2000;
    do {
        loop_run_once(loop, 5);
        bus_pub_stats(pub, &st);
    } while (st.subscriptions < 2 && loop_clock_ms() < end);
    CHECK(st.subscriptions == 2);

    // Shard filtering: 42 arrives, 7 does not.
    Rayfleet__ObjectChanged oc = RAYFLEET__OBJECT_CHANGED__INIT;
    oc.cluster = "default";
    oc.kind = "RayCluster";
    oc.name = "raycluster-a";
    oc.shard = 7;
    CHECK(bus_pub_publish(pub, &oc) == 0);
    oc.shard = 42;
    CHECK(bus_pub_publish(pub, &oc) == 0);
    CHECK(bus_pub_publish(pub, &oc) == 0);
    CHECK(s_pump_until(loop, &probe.got, 2, 2000));
    s_pump(loop, 50);
    CHECK(probe.got == 2);
    CHECK(probe.last_shard == 42);
    CHECK(strcmp(probe.last_source, "test/pub") == 0);
    CHECK(probe.last_version == BUS_VERSION);
    CHECK(probe.last_sequence > 2);
    CHECK(strcmp(probe.last_name, "raycluster-a") == 0);

    // The view-based publish: no C strings needed, extreme values survive.
    envwire_object_changed_t ov = {
        .name = {"rc-view-and-more", 7}, .shard = 42, .event_id = UINT64_MAX, .generation = -5};
    CHECK(bus_pub_publish_view(pub, &ov) == 0);
    CHECK(s_pump_until(loop, &probe.got, 3, 2000));
    CHECK(strcmp(probe.last_name, "rc-view") == 0);
    CHECK(probe.last_event_id == UINT64_MAX);
    ov.shard = BUS_SHARD_LIMIT;
    CHECK(bus_pub_publish_view(pub, &ov) == ERR_INVAL);
    CHECK(bus_pub_publish_view(pub, NULL) == ERR_INVAL);
    CHECK(bus_pub_publish_view(NULL, &ov) == ERR_INVAL);
    oc.shard = BUS_SHARD_LIMIT;
    CHECK(bus_pub_publish(pub, &oc) == ERR_INVAL);
    CHECK(bus_pub_publish(pub, NULL) == ERR_INVAL);
    CHECK(bus_pub_heartbeat(pub) == 0);
    CHECK(bus_pub_heartbeat(NULL) == ERR_INVAL);

    // Heartbeats: the publisher and the forwarder are seen.
    CHECK(s_pump_until(loop, &probe.seen, 2, 2000));
    CHECK(bus_sub_peer_alive(sub, "test/pub"));
    CHECK(bus_sub_peer_alive(sub, BUS_FORWARDER_SOURCE));
    CHECK(!bus_sub_peer_alive(sub, "nobody"));

    // Unsubscribed shards are no longer delivered.
    CHECK(bus_sub_unsubscribe(sub, 42) == 0);
    CHECK(bus_sub_unsubscribe(sub, 42) == ERR_NOTFOUND);
    CHECK(bus_sub_unsubscribe(sub, BUS_SHARD_LIMIT) == ERR_INVAL);
    oc.shard = 42;
    CHECK(bus_pub_publish(pub, &oc) == 0);
    s_pump(loop, 50);
    CHECK(probe.got == 3);
    CHECK(bus_sub_subscribe(sub, 42) == 0);

    // A publisher sending an oversized envelope gets ERR_TOOBIG.
    char big_name[2000];
    memset(big_name, 'n', sizeof big_name - 1);
    big_name[sizeof big_name - 1] = '\0';
    bus_options_t po_small = po;
    po_small.source = "test/small";
    po_small.max_frame = 512;
    bus_pub_t *small = bus_pub_new(loop, zctx, &po_small);
    CHECK(small != NULL);
    if (small) {
        oc.name = big_name;
        CHECK(bus_pub_publish(small, &oc) == ERR_TOOBIG);
        oc.name = "raycluster-a";
        bus_pub_stats(small, &st);
        CHECK(st.dropped_oversize == 1);
        bus_pub_destroy(&small);
        CHECK(small == NULL);
    }

    // The forwarder drops a frame without a topic and forwards nothing for it.
    void *raw = zmq_socket(zctx, ZMQ_PUB);
    int zero = 0;
    zmq_setsockopt(raw, ZMQ_LINGER, &zero, sizeof zero);
    CHECK(zmq_connect(raw, "inproc://bus-test-front") == 0);
    end = loop_clock_ms() + 2000;
    do {
        zmq_send(raw, "0042/ObjectChanged", 18, 0);
        loop_run_once(loop, 5);
        bus_forwarder_stats(fwd, &st);
    } while (st.dropped_malformed == 0 && loop_clock_ms() < end);
    CHECK(st.dropped_malformed >= 1);
    CHECK(st.forwarded >= 3);
    CHECK(st.heartbeats_sent >= 1);
    zmq_close(raw);

    // A publisher that disappears is lost after liveness x interval, and seen when back.
    int lost_before = probe.lost;
    int64_t gone_at = loop_clock_ms();
    bus_pub_destroy(&pub);
    CHECK(pub == NULL);
    CHECK(s_pump_until(loop, &probe.lost, lost_before + 1, 2000));
    int64_t took = loop_clock_ms() - gone_at;
    CHECK(took >= 20 && took < 1000);
    CHECK(strcmp(probe.last_peer, "test/pub") == 0);
    CHECK(probe.last_event == BUS_PEER_LOST);
    CHECK(!bus_sub_peer_alive(sub, "test/pub"));
    CHECK(bus_sub_peer_alive(sub, BUS_FORWARDER_SOURCE));
    int seen_before = probe.seen;
    pub = bus_pub_new(loop, zctx, &po);
    CHECK(pub != NULL);
    CHECK(s_pump_until(loop, &probe.seen, seen_before + 1, 2000));
    CHECK(strcmp(probe.last_peer, "test/pub") == 0);
    CHECK(bus_sub_peer_alive(sub, "test/pub"));
    bus_sub_stats(sub, &st);
    CHECK(st.peers_lost >= 1 && st.peers_seen >= 3 && st.heartbeats_received >= 3);

    // Malformed input sent straight to a bound subscriber is counted and dropped.
    s_probe_t probe2 = {0};
    bus_options_t so2 = {.endpoint = "@inproc://bus-test-raw", .max_frame = 512};
    bus_sub_t *sub2 = bus_sub_new(loop, zctx, &so2, s_probe_msg, NULL, &probe2);
    CHECK(sub2 != NULL);
    raw = zmq_socket(zctx, ZMQ_PUB);
    zmq_setsockopt(raw, ZMQ_LINGER, &zero, sizeof zero);
    CHECK(zmq_connect(raw, "inproc://bus-test-raw") == 0);
    if (sub2) {
        CHECK(bus_sub_subscribe(sub2, 42) == 0);
        static uint8_t packed[4096];
        oc.shard = 42;
        size_t n = s_pack_test(&oc, BUS_VERSION, packed);
        const char *t = "0042/ObjectChanged";
        end = loop_clock_ms() + 2000;
        while (probe2.got == 0 && loop_clock_ms() < end) {
            s_raw_frame(raw, t, packed, n);
            loop_run_once(loop, 5);
        }
        CHECK(probe2.got >= 1);
        s_pump(loop, 20);
        int got = probe2.got;
        bus_sub_stats(sub2, &st);
        CHECK(st.dropped_malformed == 0 && st.dropped_oversize == 0);

        // Garbage bytes.
        s_raw_frame(raw, t, "\xff\xff\xff\xff\xff", 5);
        // A truncated protobuf.
        s_raw_frame(raw, t, packed, n - 3);
        // No separator after the topic (the subscription prefix matches, so it reaches us).
        zmq_send(raw, "0042/ObjectChanged", 18, 0);
        // Two frames.
        const void *two[] = {t, packed};
        size_t two_len[] = {strlen(t), n};
        s_raw_send(raw, two, two_len, 2);
        // An unknown version.
        static uint8_t v99[4096];
        size_t n99 = s_pack_test(&oc, 99, v99);
        s_raw_frame(raw, t, v99, n99);
        // Topic and body disagree on the shard.
        static uint8_t other[4096];
        oc.shard = 7;
        size_t n7 = s_pack_test(&oc, BUS_VERSION, other);
        s_raw_frame(raw, t, other, n7);
        // A valid envelope over max_frame: dropped before decoding.
        static uint8_t large[4096];
        oc.shard = 42;
        oc.name = big_name;
        size_t nl = s_pack_test(&oc, BUS_VERSION, large);
        oc.name = "raycluster-a";
        s_raw_frame(raw, t, large, nl);
        // Garbage over max_frame counts as oversize too: the length is checked first.
        static uint8_t junk[1024];
        memset(junk, 0xff, sizeof junk);
        s_raw_frame(raw, t, junk, sizeof junk);
        // A good one last, to know everything before it was handled.
        s_raw_frame(raw, t, packed, n);
        CHECK(s_pump_until(loop, &probe2.got, got + 1, 2000));
        bus_sub_stats(sub2, &st);
        CHECK(st.dropped_malformed == 6);
        CHECK(st.dropped_oversize == 2);
        CHECK(probe2.got == got + 1);
        CHECK(st.received == (uint64_t)probe2.got);

        // Batch frames: a good one is delivered whole; a bad length, an oversize length or
        // trailing bytes count once and drop the rest of the frame; a well-framed envelope that
        // fails its checks counts once and is skipped alone.
        uint64_t mal0 = st.dropped_malformed;
        uint64_t over0 = st.dropped_oversize;
        got = probe2.got;
        static uint8_t bf[8192];
        const char *bt = "0042/Batch";
        size_t bl = s_raw_put(bf, 0, sizeof bf, n, packed, n);
        bl = s_raw_put(bf, bl, sizeof bf, n, packed, n);
        s_raw_frame(raw, bt, bf, bl); // 2 delivered
        memset(bf, 0xff, ENVWIRE_VARINT_MAX + 1);
        s_raw_frame(raw, bt, bf, ENVWIRE_VARINT_MAX + 1); // a varint too long: malformed
        s_raw_frame(raw, bt, "\x80", 1); // a truncated varint: malformed
        bl = s_raw_put(bf, 0, sizeof bf, n, packed, n);
        bl = s_raw_put(bf, bl, sizeof bf, n + 5, packed, n);
        s_raw_frame(raw, bt, bf, bl); // 1 delivered, then a length past the end: malformed
        bl = s_raw_put(bf, 0, sizeof bf, n, packed, n);
        bl = s_raw_put(bf, bl, sizeof bf, n7, other, n7);
        bl = s_raw_put(bf, bl, sizeof bf, n, packed, n);
        s_raw_frame(raw, bt, bf, bl); // 2 delivered, the shard-7 envelope inside is malformed
        bl = s_raw_put(bf, 0, sizeof bf, n, packed, n);
        bl = s_raw_put(bf, bl, sizeof bf, so2.max_frame + 1, junk, 10);
        s_raw_frame(raw, bt, bf, bl); // 1 delivered, then a length over max_frame: oversize
        bl = s_raw_put(bf, 0, sizeof bf, n, packed, n);
        bf[bl++] = 0x05;
        s_raw_frame(raw, bt, bf, bl); // 1 delivered, then trailing garbage: malformed
        s_raw_frame(raw, bt, "", 0); // an empty batch: malformed
        envwire_msg_t hb = {.version = BUS_VERSION, .body = ENVWIRE_BODY_HEARTBEAT};
        hb.heartbeat.source = envwire_str("test/raw");
        static uint8_t hbb[256];
        int hbn = envwire_encode(&hb, hbb, sizeof hbb);
        CHECK(hbn > 0);
        bl = s_raw_put(bf, 0, sizeof bf, (uint64_t)hbn, hbb, (size_t)hbn);
        bl = s_raw_put(bf, bl, sizeof bf, n, packed, n);
        s_raw_frame(raw, bt, bf, bl); // a heartbeat in a batch is malformed; 1 delivered
        bl = 0;
        while (bl <= so2.max_frame)
            bl = s_raw_put(bf, bl, sizeof bf, n, packed, n);
        s_raw_frame(raw, bt, bf, bl); // a body over max_frame: oversize, nothing decoded
        s_raw_frame(raw, t, packed, n); // 1 delivered, last
        CHECK(s_pump_until(loop, &probe2.got, got + 9, 2000));
        s_pump(loop, 20);
        bus_sub_stats(sub2, &st);
        CHECK(probe2.got == got + 9);
        CHECK(st.dropped_malformed - mal0 == 7);
        CHECK(st.dropped_oversize - over0 == 2);
    }
    zmq_close(raw);
    bus_sub_destroy(&sub2);
    CHECK(sub2 == NULL);

    // Batching, seen by a bus subscriber: a burst, interleaved shards, flush, destroy.
    {
        static s_rec_t rec;
        memset(&rec, 0, sizeof rec);
        bus_options_t sb = {.endpoint = "@inproc://bus-test-batch"};
        bus_sub_t *subb = bus_sub_new(loop, zctx, &sb, s_rec_msg, NULL, &rec);
        bus_options_t pb = {.source = "test/batch", .endpoint = "inproc://bus-test-batch"};
        bus_pub_t *pubb = bus_pub_new(loop, zctx, &pb);
        CHECK(subb && pubb);
        if (subb && pubb) {
            CHECK(bus_sub_subscribe(subb, 42) == 0);
            CHECK(bus_sub_subscribe(subb, 43) == 0);
            end = loop_clock_ms() + 2000;
            do {
                loop_run_once(loop, 5);
                bus_pub_stats(pubb, &st);
            } while (st.subscriptions < 3 && loop_clock_ms() < end);
            CHECK(st.subscriptions == 3);

            // 200 publishes in one loop turn: three full batches leave at once, the rest when
            // the turn ends; all arrive in order in 4 frames.
            bus_stats_t b0 = st;
            int refused = 0;
            for (uint64_t i = 1; i <= 200; i++)
                refused += s_pub_event(pubb, 42, i) != 0;
            CHECK(refused == 0);
            bus_pub_stats(pubb, &st);
            CHECK(st.pending == 200 - 3 * BUS_BATCH_DEFAULT);
            CHECK(st.frames_sent - b0.frames_sent == 3);
            CHECK(s_pump_until(loop, &rec.got, 200, 2000));
            bus_pub_stats(pubb, &st);
            CHECK(st.pending == 0);
            uint64_t hbs = st.heartbeats_sent - b0.heartbeats_sent;
            CHECK(st.frames_sent - b0.frames_sent - hbs == 4);
            CHECK(st.sent - b0.sent - hbs == 200);
            bool ordered = rec.got == 200;
            for (int i = 0; i < 200 && ordered; i++)
                ordered = rec.id[i] == (uint64_t)i + 1 && rec.shard[i] == 42;
            CHECK(ordered);
            bus_stats_t sst;
            bus_sub_stats(subb, &sst);
            CHECK(sst.received == 200 && sst.dropped_malformed == 0);
            CHECK(sst.frames_received < 200);

            // Interleaved shards, runs of 5: each switch sends the run before it; order holds.
            rec.got = 0;
            b0 = st;
            for (uint64_t i = 1; i <= 100; i++)
                refused += s_pub_event(pubb, (i - 1) / 5 % 2 ? 43 : 42, i) != 0;
            CHECK(refused == 0);
            CHECK(s_pump_until(loop, &rec.got, 100, 2000));
            bus_pub_stats(pubb, &st);
            hbs = st.heartbeats_sent - b0.heartbeats_sent;
            CHECK(st.frames_sent - b0.frames_sent - hbs == 20);
            ordered = rec.got == 100;
            for (int i = 0; i < 100 && ordered; i++)
                ordered = rec.id[i] == (uint64_t)i + 1 && rec.shard[i] == (i / 5 % 2 ? 43u : 42u);
            CHECK(ordered);

            // bus_pub_flush sends at once; with nothing pending it does nothing.
            rec.got = 0;
            CHECK(s_pub_event(pubb, 43, 7) == 0);
            bus_pub_stats(pubb, &st);
            CHECK(st.pending == 1);
            CHECK(bus_pub_flush(pubb) == 0);
            bus_pub_stats(pubb, &st);
            CHECK(st.pending == 0);
            CHECK(bus_pub_flush(pubb) == 0);
            CHECK(bus_pub_flush(NULL) == ERR_INVAL);
            CHECK(s_pump_until(loop, &rec.got, 1, 2000));
            CHECK(rec.id[0] == 7);

            // Destroying a publisher with a pending batch sends it first.
            rec.got = 0;
            for (uint64_t i = 1; i <= 5; i++)
                CHECK(s_pub_event(pubb, 42, i) == 0);
            bus_pub_stats(pubb, &st);
            CHECK(st.pending == 5);
            bus_pub_destroy(&pubb);
            CHECK(s_pump_until(loop, &rec.got, 5, 2000));
            CHECK(rec.got == 5 && rec.id[0] == 1 && rec.id[4] == 5);
        }
        bus_pub_destroy(&pubb);
        bus_sub_destroy(&subb);
    }

    // The wire, seen by a raw SUB socket: one event in the single form, several in the batch
    // form (read back with protobuf-c), batch_max 1 as before batching, and the byte bound.
    {
        void *rs = zmq_socket(zctx, ZMQ_SUB);
        zmq_setsockopt(rs, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(rs, ZMQ_SUBSCRIBE, "", 0);
        CHECK(zmq_bind(rs, "inproc://bus-test-wire") == 0);
        bus_options_t pw = {.source = "test/wire", .endpoint = "inproc://bus-test-wire"};
        bus_pub_t *pubw = bus_pub_new(loop, zctx, &pw);
        pw.batch_max = 1;
        pw.source = "test/wire1";
        bus_pub_t *pub1 = bus_pub_new(loop, zctx, &pw);
        pw.batch_max = 0;
        pw.max_frame = 512;
        pw.source = "test/wire512";
        bus_pub_t *pubs = bus_pub_new(loop, zctx, &pw);
        CHECK(pubw && pub1 && pubs);
        if (pubw && pub1 && pubs) {
            bus_stats_t s1, s2;
            end = loop_clock_ms() + 2000;
            do {
                // Polling the raw socket makes it process its connections (and subscribe).
                zmq_pollitem_t it = {rs, 0, ZMQ_POLLIN, 0};
                zmq_poll(&it, 1, 0);
                loop_run_once(loop, 5);
                bus_pub_stats(pubw, &st);
                bus_pub_stats(pub1, &s1);
                bus_pub_stats(pubs, &s2);
            } while ((st.subscriptions < 1 || s1.subscriptions < 1 || s2.subscriptions < 1) &&
                     loop_clock_ms() < end);
            static uint8_t fr[4096];
            const size_t single = sizeof "0042/ObjectChanged"; // topic + separator
            const size_t batch = sizeof "0042/Batch";
            envwire_msg_t m;
            CHECK(s_pub_event(pubw, 42, 1) == 0);
            CHECK(bus_pub_flush(pubw) == 0);
            int fl = s_raw_next(rs, fr, sizeof fr);
            CHECK(fl > (int)single && memcmp(fr, "0042/ObjectChanged ", single) == 0);
            CHECK(fl > (int)single && envwire_decode(fr + single, (size_t)fl - single, &m) == 0 &&
                  m.object_changed.event_id == 1 && m.version == BUS_VERSION);
            for (uint64_t i = 1; i <= 3; i++)
                CHECK(s_pub_event(pubw, 42, i) == 0);
            CHECK(bus_pub_flush(pubw) == 0);
            fl = s_raw_next(rs, fr, sizeof fr);
            CHECK(fl > (int)batch && memcmp(fr, "0042/Batch ", batch) == 0);
            uint64_t next = 1;
            CHECK(fl > (int)batch && s_walk_batch(fr + batch, (size_t)fl - batch, 42, &next) == 3);
            for (uint64_t i = 1; i <= 3; i++) {
                CHECK(s_pub_event(pub1, 43, i) == 0);
                bus_pub_stats(pub1, &s1);
                CHECK(s1.pending == 0);
            }
            for (uint64_t i = 1; i <= 3; i++) {
                fl = s_raw_next(rs, fr, sizeof fr);
                CHECK(fl > (int)single && memcmp(fr, "0043/ObjectChanged ", single) == 0);
                CHECK(fl > (int)single &&
                      envwire_decode(fr + single, (size_t)fl - single, &m) == 0 &&
                      m.object_changed.event_id == i);
            }
            for (uint64_t i = 1; i <= 40; i++)
                CHECK(s_pub_event(pubs, 44, i) == 0);
            CHECK(bus_pub_flush(pubs) == 0);
            next = 1;
            int frames = 0;
            bool bounded = true;
            while (next <= 40 && (fl = s_raw_next(rs, fr, sizeof fr)) > (int)batch) {
                frames++;
                if (memcmp(fr, "0044/Batch ", batch) == 0) {
                    bounded = bounded && (size_t)fl - batch <= pw.max_frame;
                    if (s_walk_batch(fr + batch, (size_t)fl - batch, 44, &next) < 2)
                        break;
                } else if (memcmp(fr, "0044/ObjectChanged ", single) == 0 &&
                           envwire_decode(fr + single, (size_t)fl - single, &m) == 0 &&
                           m.object_changed.event_id == next) {
                    next++;
                } else {
                    break;
                }
            }
            CHECK(next == 41 && bounded && frames > 1);
            bus_pub_stats(pubs, &s2);
            CHECK(s2.frames_sent - s2.heartbeats_sent == (uint64_t)frames);
        }
        bus_pub_destroy(&pubw);
        bus_pub_destroy(&pub1);
        bus_pub_destroy(&pubs);
        zmq_close(rs);
    }

    // High-water mark: a subscriber that never reads makes publish return ERR_AGAIN. The batch
    // refused stays pending and is sent, in order, once the subscriber reads again.
    {
        static s_rec_t rec3;
        memset(&rec3, 0, sizeof rec3);
        bus_options_t so3 = {.endpoint = "@inproc://bus-test-hwm", .hwm = 1};
        bus_sub_t *sub3 = bus_sub_new(loop, zctx, &so3, s_rec_msg, NULL, &rec3);
        bus_options_t po3 = {.source = "test/hwm", .endpoint = "inproc://bus-test-hwm", .hwm = 1};
        bus_pub_t *pub3 = bus_pub_new(loop, zctx, &po3);
        CHECK(sub3 && pub3);
        if (sub3 && pub3) {
            CHECK(bus_sub_subscribe(sub3, 1) == 0);
            end = loop_clock_ms() + 2000;
            do {
                loop_run_once(loop, 5);
                bus_pub_stats(pub3, &st);
            } while (st.subscriptions < 2 && loop_clock_ms() < end);
            // Stop reading: take the subscriber's socket off the loop.
            loop_remove_socket(loop, sub3->sock);
            int again = 0;
            int accepted = 0;
            for (uint64_t i = 1; i <= 1000; i++) {
                int rc = s_pub_event(pub3, 1, i);
                again += rc == ERR_AGAIN;
                accepted += rc == 0;
            }
            bus_pub_stats(pub3, &st);
            CHECK(again > 0 && again + accepted == 1000);
            CHECK(st.dropped_hwm == (uint64_t)again);
            // A full batch was refused: it stays pending, less the publish that was refused.
            CHECK(st.pending == BUS_BATCH_DEFAULT - 1);
            CHECK(bus_pub_flush(pub3) == ERR_AGAIN);
            // A publish on another shard needs the batch sent first: it is refused as well.
            CHECK(s_pub_event(pub3, 2, 5000) == ERR_AGAIN);
            bus_pub_stats(pub3, &st);
            CHECK(st.pending == BUS_BATCH_DEFAULT - 1);
            CHECK(st.dropped_hwm == (uint64_t)again + 1);
            // Reading again: every accepted event arrives, in order, with no call from us.
            CHECK(loop_add_socket(loop, sub3->sock, LOOP_READ, s_sub_readable, sub3) == 0);
            CHECK(s_pump_until(loop, &rec3.got, accepted, 3000));
            bool ordered = rec3.got == accepted;
            for (int i = 1; i < rec3.got && i < S_REC_MAX && ordered; i++)
                ordered = rec3.id[i] > rec3.id[i - 1];
            CHECK(ordered);
            bus_pub_stats(pub3, &st);
            CHECK(st.pending == 0);
        }
        bus_pub_destroy(&pub3);
        bus_sub_destroy(&sub3);
    }

    // Gaps: shard sequences, heartbeat sequences and epochs, from raw frames to a bound
    // subscriber (so every number is chosen), then from real publishers (a restart, a drop).
    {
        static s_gaps_t g;
        memset(&g, 0, sizeof g);
        bus_options_t sg = {.endpoint = "@inproc://bus-test-gap", .heartbeat_ms = 3600000};
        bus_sub_t *gs = bus_sub_new(loop, zctx, &sg, s_gaps_msg, NULL, &g);
        CHECK(gs != NULL);
        void *graw = zmq_socket(zctx, ZMQ_PUB);
        zmq_setsockopt(graw, ZMQ_LINGER, &zero, sizeof zero);
        CHECK(zmq_connect(graw, "inproc://bus-test-gap") == 0);
        if (gs) {
            bus_sub_on_gap(gs, s_gaps_gap);
            CHECK(bus_sub_subscribe(gs, 3) == 0 && bus_sub_subscribe(gs, 5) == 0);
            // The first epoch and the first number of a shard are taken as they come.
            end = loop_clock_ms() + 2000;
            while (g.got == 0 && loop_clock_ms() < end) {
                s_gap_send(graw, "w", 100, 3, 7);
                loop_run_once(loop, 5);
            }
            s_pump(loop, 20);
            CHECK(g.got >= 1 && g.n == 0);
            int base = g.got;
            s_gap_send(graw, "w", 100, 3, 8); // next in line
            s_gap_send(graw, "w", 100, 3, 11); // 9 and 10 missed
            s_gap_send(graw, "w", 100, 5, 1); // first on shard 5
            s_gap_send(graw, "w", 100, 5, 2);
            s_gap_send(graw, "w", 100, 3, 4); // an old number: nothing learnt, nothing reported
            s_gap_send(graw, "w", 100, 7, 50); // shard 7 is not subscribed: not checked
            s_gap_send(graw, "old", 0, 3, 0); // a sender without epochs: not checked
            s_pump(loop, 50);
            CHECK(g.got == base + 6);
            CHECK(g.n == 1 && s_gap_is(&g, 0, BUS_GAP_SHARD, 3, 2, "w"));
            // Inside a batch frame too: shard 3, numbers 12 and 14.
            {
                static uint8_t bf[8192], e1[4096], e2[4096];
                size_t n1 = s_gap_env("w", 100, 3, 12, e1);
                size_t n2 = s_gap_env("w", 100, 3, 14, e2);
                size_t bl = s_raw_put(bf, 0, sizeof bf, n1, e1, n1);
                bl = s_raw_put(bf, bl, sizeof bf, n2, e2, n2);
                s_raw_frame(graw, "0003/Batch", bf, bl);
            }
            s_pump(loop, 50);
            CHECK(g.got == base + 8);
            CHECK(g.n == 2 && s_gap_is(&g, 1, BUS_GAP_SHARD, 3, 1, "w"));
            // Heartbeats: the first is taken, then 2 of them skipped.
            s_gap_send(graw, "w", 100, BUS_SHARD_ALL, 1);
            s_gap_send(graw, "w", 100, BUS_SHARD_ALL, 2);
            s_gap_send(graw, "x", 50, BUS_SHARD_ALL, 1);
            s_gap_send(graw, "w", 100, BUS_SHARD_ALL, 5);
            s_pump(loop, 50);
            CHECK(g.n == 3 && s_gap_is(&g, 2, BUS_GAP_SOURCE, BUS_SHARD_ALL, 2, "w"));
            // "w" restarts (a new epoch): reported once; its numbers start again at 1, so shard 3
            // at 2 missed one, shard 5 at 1 missed none; "x", whose path may have gone through
            // the restarted process, is reported at its next heartbeat even without a skip.
            s_gap_send(graw, "w", 200, 3, 2);
            s_gap_send(graw, "w", 200, 5, 1);
            s_gap_send(graw, "w", 200, BUS_SHARD_ALL, 1);
            s_gap_send(graw, "x", 50, BUS_SHARD_ALL, 2);
            s_gap_send(graw, "x", 50, BUS_SHARD_ALL, 3);
            s_pump(loop, 50);
            CHECK(g.n == 6);
            CHECK(s_gap_is(&g, 3, BUS_GAP_RESTART, BUS_SHARD_ALL, 0, "w"));
            CHECK(s_gap_is(&g, 4, BUS_GAP_SHARD, 3, 1, "w"));
            CHECK(s_gap_is(&g, 5, BUS_GAP_SOURCE, BUS_SHARD_ALL, 0, "x"));
            // A shard subscribed again takes the next number as it comes.
            CHECK(bus_sub_unsubscribe(gs, 5) == 0 && bus_sub_subscribe(gs, 5) == 0);
            s_gap_send(graw, "w", 200, 5, 40);
            s_gap_send(graw, "w", 200, 5, 41);
            s_pump(loop, 50);
            CHECK(g.n == 6);
            bus_sub_stats(gs, &st);
            CHECK(st.gaps == 6);
        }
        zmq_close(graw);
        bus_sub_destroy(&gs);

        // Real publishers: a restart of the same source, and an event a publish refused.
        memset(&g, 0, sizeof g);
        bus_options_t sg2 = {.endpoint = "@inproc://bus-test-gap2", .heartbeat_ms = 3600000};
        gs = bus_sub_new(loop, zctx, &sg2, s_gaps_msg, NULL, &g);
        bus_options_t pg = {.source = "test/gap",
                            .endpoint = "inproc://bus-test-gap2",
                            .heartbeat_ms = 3600000,
                            .max_frame = 256};
        bus_pub_t *gp = bus_pub_new(loop, zctx, &pg);
        CHECK(gs && gp);
        if (gs && gp) {
            bus_sub_on_gap(gs, s_gaps_gap);
            CHECK(bus_sub_subscribe(gs, 9) == 0);
            for (int round = 0; round < 2; round++) {
                end = loop_clock_ms() + 2000;
                do {
                    loop_run_once(loop, 5);
                    bus_pub_stats(gp, &st);
                } while (st.subscriptions < 2 && loop_clock_ms() < end);
                int want = g.got + 2;
                CHECK(s_pub_event(gp, 9, 1) == 0 && s_pub_event(gp, 9, 2) == 0);
                CHECK(bus_pub_flush(gp) == 0);
                CHECK(s_pump_until(loop, &g.got, want, 2000));
                if (round == 0) {
                    CHECK(g.n == 0);
                    // The publisher restarts: a new process, the same source.
                    bus_pub_destroy(&gp);
                    gp = bus_pub_new(loop, zctx, &pg);
                    CHECK(gp != NULL);
                    if (!gp)
                        break;
                }
            }
            s_pump(loop, 20);
            // Reported once (by its first heartbeat or event); its shard 9 began again at 1.
            CHECK(g.n == 1 && s_gap_is(&g, 0, BUS_GAP_RESTART, BUS_SHARD_ALL, 0, "test/gap"));
            if (gp) {
                // An event the publisher refuses (over max_frame) still uses up its number.
                char big[300];
                memset(big, 'a', sizeof big);
                envwire_object_changed_t ev = {.name = {big, sizeof big}, .shard = 9};
                CHECK(bus_pub_publish_view(gp, &ev) == ERR_TOOBIG);
                int want = g.got + 1;
                CHECK(s_pub_event(gp, 9, 3) == 0 && bus_pub_flush(gp) == 0);
                CHECK(s_pump_until(loop, &g.got, want, 2000));
                CHECK(g.n == 2 && s_gap_is(&g, 1, BUS_GAP_SHARD, 9, 1, "test/gap"));
            }
        }
        bus_pub_destroy(&gp);
        bus_sub_destroy(&gs);
    }

    // CURVE with the allow-list: a listed key gets through; a plain ZMTP peer, a peer with the
    // wrong server key and a peer whose key is not listed neither receive nor publish (a forged
    // event never reaches a subscriber), and the forwarder counts each refusal.
    if (zmq_has("curve")) {
        char spub[41], ssec[41], cpub[41], csec[41], gpub[41], gsec[41];
        char wpub[41], wsec[41], upub[41], usec[41];
        CHECK(zmq_curve_keypair(spub, ssec) == 0);
        CHECK(zmq_curve_keypair(cpub, csec) == 0);
        CHECK(zmq_curve_keypair(gpub, gsec) == 0);
        CHECK(zmq_curve_keypair(wpub, wsec) == 0);
        CHECK(zmq_curve_keypair(upub, usec) == 0);
        const char *allow[] = {cpub, gpub};
        bus_options_t cf = {.frontend = "tcp://127.0.0.1:*",
                            .backend = "tcp://127.0.0.1:*",
                            .heartbeat_ms = 20,
                            .curve_secret_key = ssec};
        CHECK(bus_forwarder_new(loop, zctx, &cf) == NULL); // no allow-list: refused
        const char *bad_allow[] = {cpub, "not-a-key"};
        cf.curve_allow = bad_allow;
        cf.curve_allow_n = 2;
        CHECK(bus_forwarder_new(loop, zctx, &cf) == NULL); // a malformed key: refused
        cf.curve_allow = allow;
        bus_forwarder_t *cfwd = bus_forwarder_new(loop, zctx, &cf);
        CHECK(cfwd != NULL);
        CHECK(bus_forwarder_new(loop, zctx, &cf) == NULL); // one ZAP handler per context
        s_probe_t good_probe = {0}, wrong_probe = {0}, plain_probe = {0}, unknown_probe = {0};
        bus_pub_t *cpubr = NULL, *forger = NULL, *plain_forger = NULL;
        bus_sub_t *good_sub = NULL, *wrong_sub = NULL, *plain_sub = NULL, *unknown_sub = NULL;
        if (cfwd) {
            CHECK(strncmp(bus_forwarder_frontend(cfwd), "tcp://127.0.0.1:", 16) == 0);
            CHECK(strcmp(bus_forwarder_frontend(cfwd), "tcp://127.0.0.1:*") != 0);
            bus_options_t cp = {.source = "test/curve",
                                .endpoint = bus_forwarder_frontend(cfwd),
                                .heartbeat_ms = 20,
                                .curve_server_key = spub,
                                .curve_public_key = cpub,
                                .curve_secret_key = csec};
            cpubr = bus_pub_new(loop, zctx, &cp);
            cp.source = "test/forger";
            cp.curve_public_key = upub; // right server key, key not listed
            cp.curve_secret_key = usec;
            forger = bus_pub_new(loop, zctx, &cp);
            cp.source = "test/plain-forger";
            cp.curve_server_key = cp.curve_public_key = cp.curve_secret_key = NULL;
            plain_forger = bus_pub_new(loop, zctx, &cp);
            bus_options_t cs = {.endpoint = bus_forwarder_backend(cfwd),
                                .heartbeat_ms = 20,
                                .curve_server_key = spub,
                                .curve_public_key = gpub,
                                .curve_secret_key = gsec};
            good_sub = bus_sub_new(loop, zctx, &cs, s_probe_msg, s_probe_peer, &good_probe);
            cs.curve_server_key = wpub;
            wrong_sub = bus_sub_new(loop, zctx, &cs, s_probe_msg, s_probe_peer, &wrong_probe);
            cs.curve_server_key = NULL;
            cs.curve_public_key = cs.curve_secret_key = NULL;
            plain_sub = bus_sub_new(loop, zctx, &cs, s_probe_msg, s_probe_peer, &plain_probe);
            cs.curve_server_key = spub; // an ephemeral pair: not listed
            unknown_sub = bus_sub_new(loop, zctx, &cs, s_probe_msg, s_probe_peer, &unknown_probe);
            bus_options_t half = cs;
            half.curve_public_key = cpub;
            CHECK(bus_sub_new(loop, zctx, &half, s_probe_msg, NULL, NULL) == NULL);
        }
        CHECK(cpubr && forger && plain_forger && good_sub && wrong_sub && plain_sub && unknown_sub);
        if (cpubr && forger && plain_forger && good_sub && wrong_sub && plain_sub && unknown_sub) {
            CHECK(bus_sub_subscribe(good_sub, 5) == 0);
            CHECK(bus_sub_subscribe(wrong_sub, 5) == 0);
            CHECK(bus_sub_subscribe(plain_sub, 5) == 0);
            CHECK(bus_sub_subscribe(unknown_sub, 5) == 0);
            oc.shard = 5;
            Rayfleet__ObjectChanged forged = oc;
            forged.name = "forged";
            end = loop_clock_ms() + 5000;
            while (good_probe.got < 3 && loop_clock_ms() < end) {
                bus_pub_publish(forger, &forged);
                bus_pub_publish(plain_forger, &forged);
                bus_pub_publish(cpubr, &oc);
                loop_run_once(loop, 5);
            }
            CHECK(good_probe.got >= 3);
            end = loop_clock_ms() + 300;
            while (loop_clock_ms() < end) {
                bus_pub_publish(forger, &forged);
                bus_pub_publish(plain_forger, &forged);
                bus_pub_publish(cpubr, &oc);
                loop_run_once(loop, 5);
            }
            CHECK(s_pump_until(loop, &good_probe.seen, 1, 2000));
            CHECK(good_probe.forged == 0); // no forged event got through
            CHECK(strcmp(good_probe.last_source, "test/curve") == 0);
            CHECK(!bus_sub_peer_alive(good_sub, "test/forger"));
            CHECK(!bus_sub_peer_alive(good_sub, "test/plain-forger"));
            CHECK(bus_sub_peer_alive(good_sub, "test/curve"));
            CHECK(wrong_probe.got == 0 && wrong_probe.seen == 0);
            CHECK(plain_probe.got == 0 && plain_probe.seen == 0);
            CHECK(unknown_probe.got == 0 && unknown_probe.seen == 0);
            bus_forwarder_stats(cfwd, &st);
            CHECK(st.auth_allowed >= 2); // the publisher and the good subscriber
            CHECK(st.auth_refused >= 2); // the forger and the unknown subscriber (ZAP 400)
            CHECK(st.auth_failed >= 2); // plain ZMTP and the wrong server key
            if (verbose)
                printf("bus: curve allowed %" PRIu64 " refused %" PRIu64 " failed %" PRIu64 "\n",
                       st.auth_allowed, st.auth_refused, st.auth_failed);
        }
        bus_sub_destroy(&good_sub);
        bus_sub_destroy(&wrong_sub);
        bus_sub_destroy(&plain_sub);
        bus_sub_destroy(&unknown_sub);
        bus_pub_destroy(&cpubr);
        bus_pub_destroy(&forger);
        bus_pub_destroy(&plain_forger);
        bus_forwarder_destroy(&cfwd);
        // The ZAP endpoint is free again: a new CURVE forwarder starts.
        cfwd = bus_forwarder_new(loop, zctx, &cf);
        CHECK(cfwd != NULL);
        bus_forwarder_destroy(&cfwd);
        // A forwarder with a malformed server key is refused.
        cf.curve_secret_key = "short";
        CHECK(bus_forwarder_new(loop, zctx, &cf) == NULL);
        failed += s_test_peercred(loop, zctx, &oc, verbose);
    } else if (verbose) {
        printf("bus: libzmq without CURVE, CURVE test skipped\n");
    }

done:
    bus_pub_destroy(&pub);
    bus_sub_destroy(&sub);
    bus_forwarder_destroy(&fwd);
    CHECK(loop_timer_count(loop) == 0);
    loop_destroy(&loop);
    zmq_ctx_term(zctx);
    return SELFTEST_RESULT("bus", verbose);
}

#endif /* RF_SELFTEST */
