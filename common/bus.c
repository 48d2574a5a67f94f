/*
 * bus: ZeroMQ publish/subscribe of protobuf envelopes; the contract and the wire format are in
 * bus.h.
 *
 * Hot paths allocate nothing: a publisher encodes with envwire (a hand-written encoder that
 * writes the same bytes as protobuf-c) into one reused buffer and sends the two frames with
 * zmq_send (ZMQ_SNDMORE on the topic); a subscriber receives into zmq_msg_t (no copy) and
 * decodes with envwire_decode, whose strings are views into the received frame, so the handler
 * gets the message without a single copy or allocation. protobuf-c itself is used only by the
 * self-test, to prove that peers using it interoperate.
 */
#include "bus.h"
#include "envwire.h"
#include "err.h"
#include "log.h"
#include "selftest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* The longest a publisher waits for the second frame of a message whose first frame was
 * accepted (ZeroMQ accepts a message's frames together, so this wait does not happen). */
#define BUS_PART_TIMEOUT_MS 100
/* Initial size of a publisher's pack buffer (it grows up to max_frame). */
#define BUS_PACK_INITIAL 1024

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
} peer_t;

/* Validated numeric settings. */
typedef struct {
    int hwm; /* high-water mark */
    size_t max_frame; /* largest Envelope frame */
    int64_t heartbeat_ms; /* heartbeat or check interval */
    int liveness; /* missed intervals before lost */
} settings_t;

/* What a heartbeating sender (publisher or forwarder) keeps. */
typedef struct {
    void *sock; /* where envelopes go */
    char source[BUS_SOURCE_MAX + 1]; /* Envelope.source */
    size_t source_len; /* strlen(source) */
    uint64_t sequence; /* last Envelope.sequence sent */
    uint64_t hb_sequence; /* last Heartbeat.sequence sent */
    int64_t heartbeat_ms; /* heartbeat interval */
    int64_t hb_timer; /* the heartbeat timer id, 0 when none */
    uint8_t *pack; /* reused encode buffer */
    size_t pack_cap; /* bytes allocated in pack */
    size_t max_frame; /* largest packed Envelope sent */
} sender_t;

struct bus_pub {
    loop_t *loop; /* the loop it lives on */
    sender_t tx; /* socket, sequence numbers, pack buffer */
    char topic[BUS_TOPIC_MAX]; /* the ObjectChanged topic of topic_shard, cached */
    size_t topic_len; /* its length; 0 until the first publish */
    uint32_t topic_shard; /* the shard topic was made for */
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
    void *arg; /* for the handlers */
    uint8_t shards[(BUS_SHARD_LIMIT + 7) / 8]; /* subscribed shards, one bit each */
    peer_t *peers; /* known sources */
    size_t n_peers; /* entries used */
    size_t cap_peers; /* entries allocated */
    bus_stats_t stats; /* counters */
    ratelimit_t rl; /* warning rate limit */
};

struct bus_forwarder {
    loop_t *loop; /* the loop it lives on */
    void *front; /* XSUB: publishers connect here */
    sender_t tx; /* the XPUB backend, for forwarding and heartbeats */
    char frontend[BUS_ENDPOINT_MAX]; /* as bound */
    char backend[BUS_ENDPOINT_MAX]; /* as bound */
    bus_stats_t stats; /* counters */
    ratelimit_t rl; /* warning rate limit */
};

/* ---- Small helpers ---- */

/* Wall-clock ms since the epoch, for Envelope.sent_at_ms only. */
static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
    if (s->hwm < 1 || s->hwm > BUS_HWM_MAX || s->max_frame > BUS_FRAME_MAX_LIMIT ||
        s->heartbeat_ms < 1 || s->heartbeat_ms > BUS_HEARTBEAT_MS_MAX || s->liveness < 1 ||
        s->liveness > BUS_LIVENESS_MAX)
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

/* Makes sock a CURVE client of `server_key` (no-op when NULL). Without own keys it uses an
 * ephemeral pair. Returns 0, ERR_INVAL or ERR_IO. */
static int s_curve_client(void *sock, const bus_options_t *o)
{
    if (!o->curve_server_key)
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

/* Fills the envelope header, encodes it into tx->pack and sends topic + body without
 * blocking. Returns 0, ERR_TOOBIG, ERR_AGAIN, ERR_NOMEM or ERR_IO; counts into stats. */
static int s_send_envelope(sender_t *tx, const char *topic, size_t topic_len, envwire_msg_t *m,
                           bus_stats_t *stats, ratelimit_t *rl)
{
    m->version = BUS_VERSION;
    m->source.p = tx->source;
    m->source.n = tx->source_len;
    m->sequence = ++tx->sequence;
    m->sent_at_ms = s_wall_ms();
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
    if (pub->tx.hb_timer > 0)
        loop_cancel_timer(pub->loop, pub->tx.hb_timer);
    if (pub->tx.sock)
        loop_remove_socket(pub->loop, pub->tx.sock);
    s_close(&pub->tx.sock);
    free(pub->tx.pack);
    free(pub);
    *pub_p = NULL;
}

int bus_pub_publish_view(bus_pub_t *pub, const envwire_object_changed_t *oc)
{
    if (!pub || !oc || oc->shard >= BUS_SHARD_LIMIT)
        return ERR_INVAL;
    // Publishers mostly publish on a few shards in runs, so the last topic is kept.
    if (pub->topic_len == 0 || pub->topic_shard != oc->shard) {
        int len = bus_topic_object_changed(oc->shard, pub->topic, sizeof pub->topic);
        if (len < 0)
            return len;
        pub->topic_len = (size_t)len;
        pub->topic_shard = oc->shard;
    }
    envwire_msg_t m = {.body = ENVWIRE_BODY_OBJECT_CHANGED, .object_changed = *oc};
    return s_send_envelope(&pub->tx, pub->topic, pub->topic_len, &m, &pub->stats, &pub->rl);
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
    } else {
        for (size_t i = 0; i < sub->n_peers && !p; i++)
            if (sub->peers[i].lost)
                p = &sub->peers[i];
    }
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    snprintf(p->source, sizeof p->source, "%s", source);
    p->lost = true;
    return p;
}

/* Records a heartbeat of `source`; reports it seen when new or back. */
static void s_peer_heard(bus_sub_t *sub, const char *source, int64_t interval_ms)
{
    peer_t *p = s_peer_find(sub, source);
    if (!p)
        p = s_peer_add(sub, source);
    if (!p) {
        s_log_drop(&sub->rl, sub->endpoint, "peer table full");
        return;
    }
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

/* Validates, decodes and dispatches one two-frame message. Returns the handler's value or 0. */
static int s_sub_handle(bus_sub_t *sub, const char *topic, size_t topic_len, const uint8_t *body,
                        size_t body_len)
{
    if (topic_len == 0 || topic_len > BUS_TOPIC_MAX) {
        s_sub_malformed(sub, "bad topic length");
        return 0;
    }
    if (body_len > sub->max_frame) {
        sub->stats.dropped_oversize++;
        s_log_drop(&sub->rl, sub->endpoint, "frame over max_frame");
        return 0;
    }
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
            sub->stats.received++;
            return sub->on_msg(sub, &m, sub->arg);
        }
    } else if (m.body == ENVWIRE_BODY_HEARTBEAT) {
        // The peer table keys on C strings, so the source must be one: no NUL inside.
        if (topic_len < hb_len || memcmp(topic, BUS_TOPIC_HEARTBEAT, hb_len) != 0 ||
            m.source.n == 0 || m.source.n > BUS_SOURCE_MAX || memchr(m.source.p, 0, m.source.n)) {
            s_sub_malformed(sub, "bad heartbeat topic or source");
        } else {
            char source[BUS_SOURCE_MAX + 1];
            memcpy(source, m.source.p, m.source.n);
            source[m.source.n] = '\0';
            sub->stats.heartbeats_received++;
            s_peer_heard(sub, source, m.heartbeat.interval_ms);
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
    return 0;
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
        if (zmq_msg_send(&m, fwd->front, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0)
            log_warn("bus: subscription not forwarded", "error", zmq_strerror(errno), NULL);
        zmq_msg_close(&m);
    }
    return 0;
}

bus_forwarder_t *bus_forwarder_new(loop_t *loop, void *zctx, const bus_options_t *opts)
{
    settings_t s;
    if (!loop || !zctx || !opts || s_settings(opts, &s) < 0 || !opts->frontend || !opts->backend ||
        !s_key_ok(opts->curve_secret_key, true)) {
        log_error("bus: invalid forwarder options", NULL);
        return NULL;
    }
    bus_forwarder_t *fwd = calloc(1, sizeof *fwd);
    if (!fwd)
        return NULL;
    fwd->loop = loop;
    fwd->tx.heartbeat_ms = s.heartbeat_ms;
    fwd->tx.max_frame = s.max_frame;
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
        s_curve_server(fwd->front, opts->curve_secret_key) < 0 ||
        s_curve_server(fwd->tx.sock, opts->curve_secret_key) < 0 ||
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
             opts->curve_secret_key ? "on" : "off", NULL);
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
    }
    zmq_close(raw);
    bus_sub_destroy(&sub2);
    CHECK(sub2 == NULL);

    // High-water mark: a subscriber that never reads makes publish return ERR_AGAIN.
    {
        s_probe_t probe3 = {0};
        bus_options_t so3 = {.endpoint = "@inproc://bus-test-hwm", .hwm = 1};
        bus_sub_t *sub3 = bus_sub_new(loop, zctx, &so3, s_probe_msg, NULL, &probe3);
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
            oc.shard = 1;
            int again = 0;
            for (int i = 0; i < 100; i++)
                if (bus_pub_publish(pub3, &oc) == ERR_AGAIN)
                    again++;
            bus_pub_stats(pub3, &st);
            CHECK(again > 0);
            CHECK(st.dropped_hwm == (uint64_t)again);
        }
        bus_pub_destroy(&pub3);
        bus_sub_destroy(&sub3);
    }

    // CURVE: the right server key gets messages; a wrong key or no key gets none.
    if (zmq_has("curve")) {
        char spub[41], ssec[41], cpub[41], csec[41], wpub[41], wsec[41];
        CHECK(zmq_curve_keypair(spub, ssec) == 0);
        CHECK(zmq_curve_keypair(cpub, csec) == 0);
        CHECK(zmq_curve_keypair(wpub, wsec) == 0);
        bus_options_t cf = {.frontend = "tcp://127.0.0.1:*",
                            .backend = "tcp://127.0.0.1:*",
                            .heartbeat_ms = 20,
                            .curve_secret_key = ssec};
        bus_forwarder_t *cfwd = bus_forwarder_new(loop, zctx, &cf);
        CHECK(cfwd != NULL);
        s_probe_t good_probe = {0}, wrong_probe = {0}, plain_probe = {0};
        bus_pub_t *cpubr = NULL;
        bus_sub_t *good_sub = NULL, *wrong_sub = NULL, *plain_sub = NULL;
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
            bus_options_t cs = {.endpoint = bus_forwarder_backend(cfwd),
                                .heartbeat_ms = 20,
                                .curve_server_key = spub};
            good_sub = bus_sub_new(loop, zctx, &cs, s_probe_msg, s_probe_peer, &good_probe);
            cs.curve_server_key = wpub;
            wrong_sub = bus_sub_new(loop, zctx, &cs, s_probe_msg, s_probe_peer, &wrong_probe);
            cs.curve_server_key = NULL;
            plain_sub = bus_sub_new(loop, zctx, &cs, s_probe_msg, s_probe_peer, &plain_probe);
            bus_options_t half = cs;
            half.curve_server_key = spub;
            half.curve_public_key = cpub;
            CHECK(bus_sub_new(loop, zctx, &half, s_probe_msg, NULL, NULL) == NULL);
        }
        CHECK(cpubr && good_sub && wrong_sub && plain_sub);
        if (cpubr && good_sub && wrong_sub && plain_sub) {
            CHECK(bus_sub_subscribe(good_sub, 5) == 0);
            CHECK(bus_sub_subscribe(wrong_sub, 5) == 0);
            CHECK(bus_sub_subscribe(plain_sub, 5) == 0);
            oc.shard = 5;
            end = loop_clock_ms() + 5000;
            while (good_probe.got < 3 && loop_clock_ms() < end) {
                bus_pub_publish(cpubr, &oc);
                loop_run_once(loop, 5);
            }
            CHECK(good_probe.got >= 3);
            end = loop_clock_ms() + 100;
            while (loop_clock_ms() < end) {
                bus_pub_publish(cpubr, &oc);
                loop_run_once(loop, 5);
            }
            CHECK(s_pump_until(loop, &good_probe.seen, 1, 2000));
            CHECK(wrong_probe.got == 0 && wrong_probe.seen == 0);
            CHECK(plain_probe.got == 0 && plain_probe.seen == 0);
        }
        bus_sub_destroy(&good_sub);
        bus_sub_destroy(&wrong_sub);
        bus_sub_destroy(&plain_sub);
        bus_pub_destroy(&cpubr);
        bus_forwarder_destroy(&cfwd);
        // A forwarder with a malformed server key is refused.
        cf.curve_secret_key = "short";
        CHECK(bus_forwarder_new(loop, zctx, &cf) == NULL);
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
