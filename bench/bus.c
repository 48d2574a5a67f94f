/*
 * bench-bus: throughput of the bus against plain ZeroMQ, between two processes on loopback TCP.
 *
 * Both sides send the same ~200-byte events, N of them, from the parent to a forked child:
 *
 *   bus  parent: bus_pub_publish_view() for every event (envelope filled, protobuf encoded by
 *        envwire, appended to the pending batch; the bus coalesces up to batch_max events of a
 *        shard into one "SSSS/Batch" frame on XPUB, connected), then bus_pub_flush() for the
 *        last partial batch -> child: SUB (bound) -> frame checks, a walk of the batch, envwire
 *        decode of every event, version/shard checks, handler (checks event_id ordering).
 *        Direct, without the forwarder: one hop, as the raw baseline.
 *   raw  parent: zmq_send() of the same encoded bytes, encoded once, on PUSH, one event per
 *        message -> child: PULL, zmq_msg_recv() and a check of the frame's size.
 *
 *   fwd  the bus path through a forwarder (bus_forwarder_new) in the child: parent publisher
 *        --tcp--> forwarder frontend; forwarder backend --tcp--> subscriber (in the child too, on
 *        the same loop), CURVE off.
 *   curve the same with CURVE on both hops: the forwarder a CURVE server with its allow-list
 *        (ZAP), publisher and subscriber CURVE clients with listed keys, as `rayfleetctl up`
 *        runs the set over tcp:// (compose, the chart). The curve/fwd ratio is the cost of
 *        encryption.
 *   ipc  the fwd path over ipc:// (socket files in a private temporary directory), no
 *        authentication: the plain baseline of `rayfleetctl up`, which runs the set over ipc://.
 *   ipc-curve  ipc with CURVE on both hops (`up --bus-ipc-auth curve`).
 *   peercred  ipc with the forwarder admitting peers by their uid (ZAP, NULL mechanism;
 *        `up`'s default, bus.h "Local peers"). The peercred/ipc ratio is what authentication
 *        costs `up`'s bus (target >= 0.90, issue 17).
 *
 * So both paths carry the same events between the same two processes, and the bus does all of
 * its per-event work (fill, encode, decode, checks, handler) for each of them; what batching
 * saves is ZeroMQ's per-message cost, which is the point of it.
 *
 * Both senders never block: a send refused at the high-water mark (the same HWM on both) is
 * retried after BENCH_BACKOFF_US, so no message is lost and the child counts all N (a bus
 * publish or flush refused with ERR_AGAIN took nothing, see bus.h "Flow control"). Time runs
 * from the first send to the child's report that the Nth message arrived. Runs are interleaved
 * (each row rotates which path goes first) and the medians compared, as well as the median of
 * each run's own authenticated/plain ratio. Each run also measures the CPU time (user + system,
 * every thread, getrusage) of the sender and of the receiver from the first send to the last
 * event: per event, it is what the path costs whatever else runs on the machine, and the
 * receiver's (forwarder + subscriber) bounds the rate of an idle machine, so the ratio of CPU
 * per event is the steadier figure of what authentication costs on a shared machine.
 *
 *   bench-bus [--count N] [--runs R] [--hwm H] [--batch B]
 *             [--only bus|raw|fwd|curve|ipc|ipc-curve|peercred]
 *
 * --batch sets the bus's batch_max (1 = one event per frame, as before batching).
 *
 * --only runs one path alone (for profiling it); the ratio is then not computed.
 */
#include "bus.h"
#include "err.h"
#include "log.h"
#include "loop.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define BENCH_COUNT_DEFAULT 200000 /* events per run */
#define BENCH_RUNS_DEFAULT 5 /* runs of each kind */
#define BENCH_RUNS_MAX 50 /* most runs accepted */
#define BENCH_HWM_DEFAULT 10000 /* the same high-water mark on both paths */
#define BENCH_BACKOFF_US 20 /* wait before retrying a send refused at the HWM */
#define BENCH_SHARD 42 /* the shard every event is published on */
#define BENCH_STOP (-1000) /* handler value that ends the child's loop */
#define BENCH_TARGET 0.80 /* bus / raw ratio to reach */
#define BENCH_SYNC_MS 5000 /* longest wait for the subscription to arrive */
#define BENCH_AUTH_TARGET 0.90 /* authenticated / plain ratio to reach (issue 17) */
#define BENCH_STALL (-1001) /* timer value that ends a child that stopped receiving */
#define BENCH_STALL_CHECK_MS 1000 /* period of the stall check */
#define BENCH_STALL_CHECKS 5 /* checks without progress before the child gives up */

/* The paths measured (columns of the table). */
typedef enum { P_BUS, P_RAW, P_FWD, P_CURVE, P_IPC, P_CURVE_IPC, P_PEERCRED, P_N } path_t;

static const char *const s_path_names[P_N] = {"bus", "raw",       "fwd",     "curve",
                                              "ipc", "ipc-curve", "peercred"};

/* True for the paths through a forwarder; for those over ipc://; with CURVE. */
static bool s_forwarded(path_t p)
{
    return p != P_BUS && p != P_RAW;
}
static bool s_over_ipc(path_t p)
{
    return p == P_IPC || p == P_CURVE_IPC || p == P_PEERCRED;
}
static bool s_curve(path_t p)
{
    return p == P_CURVE || p == P_CURVE_IPC;
}

/* The CURVE keys of the curve path: forwarder, publisher, subscriber (Z85). */
typedef struct {
    char spub[BUS_CURVE_KEY_LEN + 1], ssec[BUS_CURVE_KEY_LEN + 1]; /* forwarder */
    char ppub[BUS_CURVE_KEY_LEN + 1], psec[BUS_CURVE_KEY_LEN + 1]; /* publisher */
    char cpub[BUS_CURVE_KEY_LEN + 1], csec[BUS_CURVE_KEY_LEN + 1]; /* subscriber */
} keys_t;

/* What the child reports after a run. */
typedef struct {
    uint64_t count; /* messages received */
    uint64_t last_event; /* event_id of the last one (bus), to check ordering */
    uint64_t bad; /* malformed, oversize or out-of-order messages */
    double cpu_s; /* CPU seconds (user + system, every thread) the child used for the run */
} result_t;

/* What one run measured. */
typedef struct {
    double rate; /* events per second, wall clock */
    double cpu_ns; /* CPU ns per event, sender and receiver processes together */
    double rcpu_ns; /* CPU ns per event of the receiver (forwarder + subscriber) alone */
} run_t;

/* The child's state on the bus path. */
typedef struct {
    uint64_t want; /* messages to receive */
    result_t r; /* what was received */
    uint64_t seen; /* r.count at the last stall check */
    int idle; /* stall checks without progress */
} child_t;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds this process used so far, every thread (libzmq's I/O threads do the encryption). */
static double s_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void s_backoff(void)
{
    struct timespec ts = {0, BENCH_BACKOFF_US * 1000};
    nanosleep(&ts, NULL);
}

/* Reads exactly n bytes. Returns 0 or -1. */
static int s_read_full(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Writes exactly n bytes. Returns 0 or -1. */
static int s_write_full(int fd, const void *p, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, (const char *)p + put, n - put);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        put += (size_t)w;
    }
    return 0;
}

/* A realistic event: a pod of a RayCluster changed. */
static void s_event(envwire_object_changed_t *oc, uint64_t i)
{
    envwire_object_changed_t ev = {
        .cluster = envwire_str("member-eu-1"),
        .group = envwire_str("ray.io"),
        .kind = envwire_str("RayCluster"),
        .namespace_ = envwire_str("team-a"),
        .name = envwire_str("rc-autoscale"),
        .uid = envwire_str("5f0e6d5c-3b1a-4c2e-9d7f-8a6b5c4d3e2f"),
        .resource_version = envwire_str("184467440"),
        .generation = 3,
        .type = RAYFLEET__EVENT_TYPE__EVENT_MODIFIED,
        .shard = BENCH_SHARD,
        .event_id = 1000000000 + i,
        .child_kind = envwire_str("Pod"),
        .child_name = envwire_str("rc-autoscale-gpu-x7k2p"),
        .child_uid = envwire_str("0c9b8a7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"),
    };
    *oc = ev;
}

/* The encoded bytes of a bus envelope around s_event(), as the bus sends them. Returns their
 * length, or 0 when they do not fit in cap. */
static size_t s_envelope_bytes(uint8_t *out, size_t cap)
{
    envwire_msg_t m = {.version = BUS_VERSION,
                       .source = envwire_str("bench/pub"),
                       .sequence = 1000000,
                       .sent_at_ms = 1763786400000,
                       .body = ENVWIRE_BODY_OBJECT_CHANGED};
    s_event(&m.object_changed, 0);
    int n = envwire_encode(&m, out, cap);
    return n < 0 ? 0 : (size_t)n;
}

static int s_child_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    child_t *c = arg;
    uint64_t id = msg->object_changed.event_id;
    if (c->r.count > 0 && id != c->r.last_event + 1)
        c->r.bad++;
    c->r.last_event = id;
    c->r.count++;
    return c->r.count >= c->want ? BENCH_STOP : 0;
}

/* Ends the child's loop when nothing arrived for BENCH_STALL_CHECKS checks (a message lost,
 * e.g. dropped by the forwarder's lossy backend), so the run fails instead of hanging. */
static int64_t s_child_stall(loop_t *loop, int64_t timer_id, void *arg)
{
    child_t *c = arg;
    c->idle = c->r.count == c->seen ? c->idle + 1 : 0;
    c->seen = c->r.count;
    return c->idle >= BENCH_STALL_CHECKS ? BENCH_STALL : BENCH_STALL_CHECK_MS;
}

/* The receiving child. Binds, sends its endpoint on fd, receives `want` messages of `size`
 * bytes (raw path), reports. */
static int s_child(path_t path, uint64_t want, size_t size, int hwm, const keys_t *k, int fd)
{
    void *zctx = zmq_ctx_new();
    loop_t *loop = loop_new();
    char endpoint[BUS_ENDPOINT_MAX] = "";
    child_t c = {.want = want};
    int status = 1;
    double cpu0 = s_cpu();
    char dir[] = "/tmp/bench-bus.XXXXXX";
    char front[64] = "tcp://127.0.0.1:*", back[64] = "tcp://127.0.0.1:*";
    if (s_over_ipc(path)) {
        if (!mkdtemp(dir)) // 0700: the sockets are private, as in STATE
            goto done;
        snprintf(front, sizeof front, "ipc://%s/in", dir);
        snprintf(back, sizeof back, "ipc://%s/out", dir);
    }
    if (s_forwarded(path)) {
        bool curve = s_curve(path);
        bus_ipc_auth_t ipc_auth = path == P_PEERCRED ? BUS_IPC_PEERCRED : BUS_IPC_CURVE;
        const char *allow[] = {k->ppub, k->cpub};
        // The forwarder's backend drops at its HWM (bus.h): room for the whole run, so the
        // two paths are compared without loss.
        uint64_t room = want + 1000 > BUS_HWM_MAX ? BUS_HWM_MAX : want + 1000;
        int fwd_hwm = (uint64_t)hwm > room ? hwm : (int)room;
        bus_options_t fo = {.frontend = front,
                            .backend = back,
                            .hwm = fwd_hwm,
                            .curve_secret_key = curve ? k->ssec : NULL,
                            .curve_allow = curve ? allow : NULL,
                            .curve_allow_n = curve ? 2 : 0,
                            .ipc_auth = ipc_auth};
        bus_forwarder_t *fwd = bus_forwarder_new(loop, zctx, &fo);
        bus_sub_t *sub = NULL;
        if (fwd) {
            bus_options_t so = {.endpoint = bus_forwarder_backend(fwd),
                                .hwm = fwd_hwm,
                                .curve_server_key = curve ? k->spub : NULL,
                                .curve_public_key = curve ? k->cpub : NULL,
                                .curve_secret_key = curve ? k->csec : NULL,
                                .ipc_auth = ipc_auth};
            sub = bus_sub_new(loop, zctx, &so, s_child_msg, NULL, &c);
        }
        int rc = 0;
        if (sub && bus_sub_subscribe(sub, BENCH_SHARD) == 0) {
            snprintf(endpoint, sizeof endpoint, "%s", bus_forwarder_frontend(fwd));
            if (s_write_full(fd, endpoint, sizeof endpoint) == 0 &&
                loop_add_timer(loop, BENCH_STALL_CHECK_MS, s_child_stall, &c) > 0)
                rc = loop_run(loop);
            bus_stats_t st;
            bus_sub_stats(sub, &st);
            c.r.bad += st.dropped_malformed + st.dropped_oversize;
        }
        bus_sub_destroy(&sub);
        bus_forwarder_destroy(&fwd);
        if (rc != BENCH_STOP && rc != BENCH_STALL)
            goto done;
    } else if (path == P_BUS) {
        bus_options_t o = {.endpoint = "@tcp://127.0.0.1:*", .hwm = hwm};
        bus_sub_t *sub = bus_sub_new(loop, zctx, &o, s_child_msg, NULL, &c);
        if (!sub || bus_sub_subscribe(sub, BENCH_SHARD) < 0)
            goto done;
        snprintf(endpoint, sizeof endpoint, "%s", bus_sub_endpoint(sub));
        if (s_write_full(fd, endpoint, sizeof endpoint) < 0)
            goto done;
        int rc = loop_run(loop);
        bus_stats_t st;
        bus_sub_stats(sub, &st);
        c.r.bad += st.dropped_malformed + st.dropped_oversize;
        bus_sub_destroy(&sub);
        if (rc != BENCH_STOP)
            goto done;
    } else {
        void *pull = zmq_socket(zctx, ZMQ_PULL);
        int zero = 0;
        zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
        size_t len = sizeof endpoint;
        if (zmq_bind(pull, "tcp://127.0.0.1:*") != 0 ||
            zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0 ||
            s_write_full(fd, endpoint, sizeof endpoint) < 0) {
            zmq_close(pull);
            goto done;
        }
        // One warm-up message (sent blocking, so the connection exists) plus `want`.
        for (uint64_t i = 0; i < want + 1; i++) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, pull, 0) < 0) {
                zmq_msg_close(&m);
                if (errno == EINTR) {
                    i--;
                    continue;
                }
                break;
            }
            if (i > 0) {
                c.r.count++;
                if (zmq_msg_size(&m) != size)
                    c.r.bad++;
            }
            zmq_msg_close(&m);
        }
        zmq_close(pull);
    }
    c.r.cpu_s = s_cpu() - cpu0;
    status = s_write_full(fd, &c.r, sizeof c.r) < 0;
done:
    loop_destroy(&loop);
    zmq_ctx_term(zctx);
    if (s_over_ipc(path)) {
        unlink(front + 6);
        unlink(back + 6);
        rmdir(dir);
    }
    return status;
}

/* One run into *out. Returns 0, or -1 on failure. */
static int s_run(path_t path, uint64_t count, int hwm, int batch, const keys_t *k,
                 uint64_t *retries, run_t *out)
{
    bool bus = path != P_RAW;
    uint8_t bytes[BUS_TOPIC_MAX * 4];
    size_t n = s_envelope_bytes(bytes, sizeof bytes);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        _exit(s_child(path, count, n, hwm, k, fds[1]));
    }
    close(fds[1]);
    double rate = -1;
    char endpoint[BUS_ENDPOINT_MAX];
    void *zctx = NULL;
    loop_t *loop = NULL;
    bus_pub_t *pub = NULL;
    void *push = NULL;
    if (s_read_full(fds[0], endpoint, sizeof endpoint) < 0)
        goto done;
    endpoint[sizeof endpoint - 1] = '\0';
    zctx = zmq_ctx_new();
    loop = loop_new();
    double t0, cpu0 = 0;
    *retries = 0;
    if (bus) {
        bool curve = s_curve(path);
        bus_options_t o = {.source = "bench/pub",
                           .endpoint = endpoint,
                           .hwm = hwm,
                           .batch_max = batch,
                           .curve_server_key = curve ? k->spub : NULL,
                           .curve_public_key = curve ? k->ppub : NULL,
                           .curve_secret_key = curve ? k->psec : NULL,
                           .ipc_auth = path == P_PEERCRED ? BUS_IPC_PEERCRED : BUS_IPC_CURVE};
        pub = bus_pub_new(loop, zctx, &o);
        if (!pub)
            goto done;
        // Wait until the child's subscriptions (heartbeats and our shard) have arrived.
        bus_stats_t st;
        int64_t end = loop_clock_ms() + BENCH_SYNC_MS;
        do {
            loop_run_once(loop, 10);
            bus_pub_stats(pub, &st);
        } while (st.subscriptions < 2 && loop_clock_ms() < end);
        if (st.subscriptions < 2)
            goto done;
        envwire_object_changed_t oc;
        s_event(&oc, 0);
        t0 = s_now();
        cpu0 = s_cpu();
        for (uint64_t i = 0; i < count; i++) {
            oc.event_id = 1000000000 + i;
            int rc;
            while ((rc = bus_pub_publish_view(pub, &oc)) == ERR_AGAIN) {
                (*retries)++;
                s_backoff();
            }
            if (rc < 0)
                goto done;
        }
        // The last partial batch; the loop's before-sleep hook would send it too, but this
        // sender does not run the loop.
        int rc;
        while ((rc = bus_pub_flush(pub)) == ERR_AGAIN) {
            (*retries)++;
            s_backoff();
        }
        if (rc < 0)
            goto done;
    } else {
        push = zmq_socket(zctx, ZMQ_PUSH);
        int zero = 0;
        zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
        if (n == 0 || zmq_connect(push, endpoint) != 0 || zmq_send(push, bytes, n, 0) < 0)
            goto done;
        t0 = s_now();
        cpu0 = s_cpu();
        for (uint64_t i = 0; i < count; i++) {
            while (zmq_send(push, bytes, n, ZMQ_DONTWAIT) < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    goto done;
                (*retries)++;
                s_backoff();
            }
        }
    }
    result_t r;
    if (s_read_full(fds[0], &r, sizeof r) < 0)
        goto done;
    double t1 = s_now();
    if (r.count != count || r.bad != 0) {
        fprintf(stderr, "bench-bus: child received %" PRIu64 " of %" PRIu64 ", %" PRIu64 " bad\n",
                r.count, count, r.bad);
        goto done;
    }
    rate = (double)count / (t1 - t0);
    out->rate = rate;
    out->rcpu_ns = r.cpu_s * 1e9 / (double)count;
    out->cpu_ns = (s_cpu() - cpu0 + r.cpu_s) * 1e9 / (double)count;
done:
    bus_pub_destroy(&pub);
    if (push)
        zmq_close(push);
    loop_destroy(&loop);
    if (zctx)
        zmq_ctx_term(zctx);
    close(fds[0]);
    int wstatus;
    waitpid(pid, &wstatus, 0);
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
        rate = -1;
    return rate < 0 ? -1 : 0;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    uint64_t count = BENCH_COUNT_DEFAULT;
    int runs = BENCH_RUNS_DEFAULT;
    int hwm = BENCH_HWM_DEFAULT;
    int batch = BUS_BATCH_DEFAULT;
    static const struct option longopts[] = {
        {"count", required_argument, NULL, 'n'}, {"runs", required_argument, NULL, 'r'},
        {"hwm", required_argument, NULL, 'w'},   {"batch", required_argument, NULL, 'b'},
        {"only", required_argument, NULL, 'o'},  {NULL, 0, NULL, 0},
    };
    int c;
    bool only[P_N];
    for (int p = 0; p < P_N; p++)
        only[p] = true;
    while ((c = getopt_long(argc, argv, "n:r:w:b:o:", longopts, NULL)) != -1) {
        if (c == 'o') {
            bool known = false;
            for (int p = 0; p < P_N; p++) {
                only[p] = strcmp(optarg, s_path_names[p]) == 0;
                known = known || only[p];
            }
            if (!known) {
                fprintf(stderr, "bench-bus: --only takes bus, raw, fwd, curve, ipc, ipc-curve "
                                "or peercred\n");
                return 2;
            }
            continue;
        }
        char *end = NULL;
        long v = strtol(optarg ? optarg : "", &end, 10);
        if (!end || *end || v < 1) {
            fprintf(stderr, "usage: bench-bus [--count N] [--runs R] [--hwm H] [--batch B] "
                            "[--only bus|raw|fwd|curve|ipc|ipc-curve|peercred]\n");
            return 2;
        }
        if (c == 'n')
            count = (uint64_t)v;
        else if (c == 'r')
            runs = v > BENCH_RUNS_MAX ? BENCH_RUNS_MAX : (int)v;
        else if (c == 'w')
            hwm = v > BUS_HWM_MAX ? BUS_HWM_MAX : (int)v;
        else if (c == 'b')
            batch = v > BUS_BATCH_MAX ? BUS_BATCH_MAX : (int)v;
        else
            return 2;
    }
    // Drops at the high-water mark are expected here (the sender outruns the receiver and
    // retries); the table counts them as retries, so the warnings are not printed.
    log_setup("bench-bus", LOG_ERROR, STDERR_FILENO);

    uint8_t bytes[BUS_TOPIC_MAX * 4];
    size_t n = s_envelope_bytes(bytes, sizeof bytes);
    printf("bench-bus: %" PRIu64
           " events of %zu bytes (packed Envelope; a bus frame adds its topic and a space, and "
           "in a batch a 2-byte length per event), tcp://127.0.0.1 (ipc:// where named), parent -> "
           "forked child, HWM "
           "%d on every path\n",
           count, n, hwm);
    printf("  bus: bus_pub_publish_view per event (envelope + envwire encode) -> XPUB --tcp--> SUB "
           "-> checks + envwire decode per event -> handler; direct, no forwarder; the bus "
           "coalesces up to batch_max = %d events of a shard per frame\n",
           batch);
    printf("  raw: zmq_send of the same pre-encoded bytes, one event per message -> PUSH --tcp--> "
           "PULL -> zmq_msg_recv + size check\n");
    printf("  fwd: the bus path through a forwarder in the child (publisher --tcp--> forwarder "
           "--tcp--> subscriber), CURVE off\n");
    printf("  curve: the fwd path with CURVE on both hops (forwarder with its ZAP allow-list)\n");
    printf("  ipc: the fwd path over ipc:// (sockets in a 0700 directory), no authentication\n");
    printf("  ipc-curve: ipc with CURVE on both hops (rayfleetctl up --bus-ipc-auth curve)\n");
    printf("  peercred: ipc with the forwarder admitting peers by uid (ZAP, NULL mechanism; "
           "rayfleetctl up's default)\n");
    printf("%-4s", "run");
    for (int p = 0; p < P_N; p++)
        printf(" %11s/s", s_path_names[p]);
    printf(" %10s %10s\n", "bus retry", "raw retry");
    keys_t keys;
    if (zmq_curve_keypair(keys.spub, keys.ssec) != 0 ||
        zmq_curve_keypair(keys.ppub, keys.psec) != 0 ||
        zmq_curve_keypair(keys.cpub, keys.csec) != 0) {
        fprintf(stderr, "bench-bus: libzmq without CURVE\n");
        return 1;
    }
    double rates[P_N][BENCH_RUNS_MAX], cpu[P_N][BENCH_RUNS_MAX], rcpu[P_N][BENCH_RUNS_MAX];
    for (int i = 0; i < runs; i++) {
        uint64_t retry[P_N] = {0};
        // Rotate which path goes first, so none always runs on a warmer machine. A path left
        // out by --only counts as rate 1 and is not compared.
        for (int j = 0; j < P_N; j++) {
            path_t p = (path_t)((i + j) % P_N);
            run_t r = {1, 1, 1};
            if (only[p] && s_run(p, count, hwm, batch, &keys, &retry[p], &r) < 0) {
                fprintf(stderr, "bench-bus: run %d (%s) failed\n", i + 1, s_path_names[p]);
                return 1;
            }
            rates[p][i] = r.rate;
            cpu[p][i] = r.cpu_ns;
            rcpu[p][i] = r.rcpu_ns;
        }
        printf("%-4d", i + 1);
        for (int p = 0; p < P_N; p++)
            printf(" %13.0f", rates[p][i]);
        printf(" %10" PRIu64 " %10" PRIu64 "\n", retry[P_BUS], retry[P_RAW]);
        fflush(stdout);
    }
    double med[P_N], med_cpu[P_N], med_rcpu[P_N];
    for (int p = 0; p < P_N; p++) {
        med[p] = s_median(rates[p], runs);
        med_cpu[p] = s_median(cpu[p], runs);
        med_rcpu[p] = s_median(rcpu[p], runs);
    }
    printf("%-4s", "med");
    for (int p = 0; p < P_N; p++)
        printf(" %13.0f", med[p]);
    printf("\n");
    // CPU time per event is far less exposed to other load on the machine than the wall clock:
    // the receiver (forwarder and subscriber on one loop, plus libzmq's I/O threads) is the
    // process that bounds the rate on an idle machine.
    printf("%-4s", "cpu");
    for (int p = 0; p < P_N; p++)
        printf(" %11.0fns", med_cpu[p]);
    printf("   (median CPU per event, sender + receiver, all threads)\n");
    printf("%-4s", "rcpu");
    for (int p = 0; p < P_N; p++)
        printf(" %11.0fns", med_rcpu[p]);
    printf("   (median CPU per event of the receiver: forwarder + subscriber)\n");
    if (only[P_BUS] && only[P_RAW])
        printf("ratio bus/raw: %.2f (target >= %.2f): %s\n", med[P_BUS] / med[P_RAW], BENCH_TARGET,
               med[P_BUS] / med[P_RAW] >= BENCH_TARGET ? "met" : "NOT met");
    // Authenticated / plain through the forwarder, on the same transport.
    static const struct {
        path_t auth, plain;
    } ratios[] = {{P_CURVE, P_FWD}, {P_CURVE_IPC, P_IPC}, {P_PEERCRED, P_IPC}};
    for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++) {
        path_t a = ratios[i].auth, b = ratios[i].plain;
        if (!only[a] || !only[b])
            continue;
        // Also the median of each run's own ratio: the two paths of a run ran back to back, so
        // it is less exposed to a machine whose load changes between runs.
        double paired[BENCH_RUNS_MAX];
        for (int r = 0; r < runs; r++)
            paired[r] = rates[a][r] / rates[b][r];
        printf("ratio %s/%s: %.2f (target >= %.2f): %s; median of per-run ratios %.2f; by CPU "
               "per event %.2f (receiver %.2f)\n",
               s_path_names[a], s_path_names[b], med[a] / med[b], BENCH_AUTH_TARGET,
               med[a] / med[b] >= BENCH_AUTH_TARGET ? "met" : "NOT met", s_median(paired, runs),
               med_cpu[b] / med_cpu[a], med_rcpu[b] / med_rcpu[a]);
    }
    if (only[P_PEERCRED] && only[P_FWD])
        printf("ratio peercred/fwd: %.2f (up's authenticated bus against the plain tcp:// one)\n",
               med[P_PEERCRED] / med[P_FWD]);
    return 0;
}
