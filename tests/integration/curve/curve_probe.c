/*
 * curve_probe: a local process on the bus of a running set, for integration.curve.
 *
 *   curve_probe --mode pub --bus.endpoint E [--bus.curve-server-key-file F --bus.curve-key-file
 *               F] --event-id N --duration D
 *       publishes an ObjectChanged of RayCluster default/forged with event id N every 20 ms for
 *       D (a forger when its key is not in the bus's allow-list, or with no CURVE at all);
 *   curve_probe --mode sub --bus.endpoint E [keys as above] --duration D
 *       subscribes to every shard for D and prints "event <id> <source>" per ObjectChanged and
 *       "peer <source>" per source first heard, then "received <n>";
 *   curve_probe --mode keygen --out FILE
 *       writes a new key pair file (one the bus has never heard of).
 *
 * The keys are read with common/busopt.h, as every service reads them. Exits 0, or 2 on bad
 * options (e.g. a server key without a key pair).
 */
#include "bus.h"
#include "busopt.h"
#include "cfg.h"
#include "loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define PROBE_SHARDS 256 /* the set's default --shards */
#define PROBE_PUBLISH_MS 20 /* publish period */

static const char *const s_modes[] = {"pub", "sub", "keygen", NULL};

static const cfg_opt_t s_options[] = {
    {"mode", CFG_STRING, NULL, 0, 0, true, false, "pub, sub or keygen.", s_modes},
    {"out", CFG_STRING, NULL, 0, 0, false, false, "keygen: the key pair file to write.", NULL},
    {"bus.endpoint", CFG_STRING, NULL, 0, 0, false, false, "Bus frontend (pub) or backend (sub).",
     NULL},
    {"event-id", CFG_INT, "1", 1, INT64_MAX, false, false, "Event id of the published event.",
     NULL},
    {"duration", CFG_DURATION, "2s", 1, 600000, false, false, "How long to run.", NULL},
    {NULL},
};

static int s_on_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    (*(int *)arg)++;
    printf("event %" PRIu64 " %.*s\n", msg->object_changed.event_id, (int)msg->source.n,
           msg->source.p);
    return 0;
}

static void s_on_peer(bus_sub_t *sub, const char *source, bus_peer_event_t event, void *arg)
{
    if (event == BUS_PEER_SEEN)
        printf("peer %s\n", source);
}

int main(int argc, char **argv)
{
    cfg_opt_t table[16];
    cfg_t *cfg = NULL;
    buf_t err;
    buf_init(&err, 1024);
    if (cfg_table_join(s_options, busopt_client_options, table, 16) < 0 ||
        cfg_load(table, argc, argv, &cfg, &err) != 0) {
        fprintf(stderr, "curve_probe: %s\n", buf_str(&err));
        cfg_destroy(&cfg);
        buf_free(&err);
        return 2;
    }
    if (!strcmp(cfg_str(cfg, "mode"), "keygen")) {
        char pub[BUS_CURVE_KEY_LEN + 1], sec[BUS_CURVE_KEY_LEN + 1];
        const char *out = cfg_str(cfg, "out");
        int rc = out && zmq_curve_keypair(pub, sec) == 0 &&
                         busopt_write_keys(out, "curve_probe", pub, sec) == 0
                     ? 0
                     : 1;
        cfg_destroy(&cfg);
        buf_free(&err);
        return rc;
    }
    if (!cfg_str(cfg, "bus.endpoint")) {
        fprintf(stderr, "curve_probe: --bus.endpoint is required\n");
        cfg_destroy(&cfg);
        buf_free(&err);
        return 2;
    }
    bus_options_t o = {.endpoint = cfg_str(cfg, "bus.endpoint"),
                       .source = "curve-probe",
                       .heartbeat_ms = 100,
                       .batch_max = 1};
    busopt_keys_t keys;
    if (busopt_client(cfg, &keys, &o, &err) != 0) {
        fprintf(stderr, "curve_probe: %s\n", buf_str(&err));
        cfg_destroy(&cfg);
        buf_free(&err);
        return 2;
    }
    void *zctx = zmq_ctx_new();
    loop_t *loop = loop_new();
    bool pub_mode = !strcmp(cfg_str(cfg, "mode"), "pub");
    int got = 0, code = 0;
    bus_pub_t *pub = pub_mode ? bus_pub_new(loop, zctx, &o) : NULL;
    bus_sub_t *sub = pub_mode ? NULL : bus_sub_new(loop, zctx, &o, s_on_msg, s_on_peer, &got);
    busopt_keys_clear(&keys);
    if (!pub && !sub) {
        code = 1;
        goto out;
    }
    for (uint32_t s = 0; sub && s < PROBE_SHARDS; s++)
        bus_sub_subscribe(sub, s);
    envwire_object_changed_t ev = {.cluster = {"default", 7},
                                   .namespace_ = {"default", 7},
                                   .kind = {"RayCluster", 10},
                                   .name = {"forged", 6},
                                   .event_id = (uint64_t)cfg_int(cfg, "event-id")};
    ev.shard = bus_shard_of("default", "default", "forged", PROBE_SHARDS);
    int64_t end = loop_clock_ms() + cfg_duration_ms(cfg, "duration");
    int64_t next = 0;
    int sent = 0;
    while (loop_clock_ms() < end) {
        if (pub && loop_clock_ms() >= next) {
            sent += bus_pub_publish_view(pub, &ev) == 0;
            next = loop_clock_ms() + PROBE_PUBLISH_MS;
        }
        loop_run_once(loop, 10);
    }
    if (pub)
        printf("published %d\n", sent);
    else
        printf("received %d\n", got);
out:
    bus_pub_destroy(&pub);
    bus_sub_destroy(&sub);
    loop_destroy(&loop);
    zmq_ctx_term(zctx);
    cfg_destroy(&cfg);
    buf_free(&err);
    return code;
}
