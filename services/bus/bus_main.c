/*
 * rayfleet-bus: the bus forwarder process. Publishers connect to its frontend, subscribers to
 * its backend; it copies messages one way and subscriptions the other, and heartbeats as "bus"
 * (see common/bus.h). One event loop; exits cleanly on SIGTERM or SIGINT.
 *
 * /healthz, /readyz and /metrics (common/opsrv) on <health.host>:<health.port> (default
 * 127.0.0.1:8086; 0 turns it off): ready once both sockets are bound (the forwarder exists);
 * rayfleet_bus_* counters of messages and bytes forwarded, drops by reason, heartbeats and the
 * subscriptions the subscribers hold now, and the peers allowed or refused by CURVE.
 *
 * CURVE (--bus.curve-key-file and --bus.curve-allow-file, common/busopt.h): tcp:// sockets are
 * CURVE servers and only the clients whose public keys are listed get in. ipc:// sockets check
 * the peer's uid instead (--bus.ipc-auth=peercred, the default; --bus.ipc-allow-uids), or use
 * CURVE too with --bus.ipc-auth=curve. A socket with neither is open to any process that
 * reaches it, and the bus says so in a warning.
 */
#include "bus.h"
#include "busopt.h"
#include "log.h"
#include "metrics.h"
#include "opsrv.h"
#include "svc.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const cfg_opt_t s_options[] = {
    {"bus.frontend", CFG_STRING, BUS_FRONTEND_DEFAULT, 0, 0, false, false,
     "ZeroMQ endpoint the forwarder binds for publishers.", NULL},
    {"bus.backend", CFG_STRING, BUS_BACKEND_DEFAULT, 0, 0, false, false,
     "ZeroMQ endpoint the forwarder binds for subscribers.", NULL},
    {"bus.hwm", CFG_INT, "100000", 1, BUS_HWM_MAX, false, false,
     "High-water mark (messages queued per peer) on both sides.", NULL},
    {"bus.heartbeat", CFG_DURATION, "1s", 10, 3600000, false, false,
     "Interval between the forwarder's heartbeats.", NULL},
    {"health.host", CFG_STRING, "127.0.0.1", 0, 0, false, false,
     "Address of the /healthz, /readyz and /metrics listener (0.0.0.0: every interface).", NULL},
    {"health.port", CFG_INT, "8086", 0, 65535, false, false,
     "Port of the /healthz, /readyz and /metrics listener; 0: off.", NULL},
    {0},
};

typedef enum {
    B_FORWARDED,
    B_BYTES,
    B_DROP_HWM,
    B_DROP_MALFORMED,
    B_DROP_OVERSIZE,
    B_HEARTBEATS,
    B_SUBSCRIPTIONS,
    B_READY,
    B_AUTH_ALLOWED,
    B_AUTH_REFUSED,
    B_AUTH_FAILED,
    B_AUTH_IPC_ALLOWED,
    B_AUTH_IPC_REFUSED
} b_metric_t;

static double s_read(void *arg, int which)
{
    bus_forwarder_t *const *fwd = arg;
    bus_stats_t st = {0};
    if (*fwd)
        bus_forwarder_stats(*fwd, &st);
    switch ((b_metric_t)which) {
    case B_FORWARDED:
        return (double)st.forwarded;
    case B_BYTES:
        return (double)st.bytes_forwarded;
    case B_DROP_HWM:
        return (double)st.dropped_hwm;
    case B_DROP_MALFORMED:
        return (double)st.dropped_malformed;
    case B_DROP_OVERSIZE:
        return (double)st.dropped_oversize;
    case B_HEARTBEATS:
        return (double)st.heartbeats_sent;
    case B_SUBSCRIPTIONS:
        return (double)st.subscriptions;
    case B_READY:
        return *fwd ? 1 : 0;
    case B_AUTH_ALLOWED:
        return (double)st.auth_allowed;
    case B_AUTH_REFUSED:
        return (double)st.auth_refused;
    case B_AUTH_FAILED:
        return (double)st.auth_failed;
    case B_AUTH_IPC_ALLOWED:
        return (double)st.auth_ipc_allowed;
    case B_AUTH_IPC_REFUSED:
        return (double)st.auth_ipc_refused;
    }
    return 0;
}

/* Readiness: both sockets bound. */
static int s_ready(void *arg, buf_t *why)
{
    bus_forwarder_t *const *fwd = arg;
    if (*fwd)
        return 0;
    int rc = buf_puts(why, "forwarder sockets not bound\n");
    return rc < 0 ? rc : 1;
}

#define S_AUTH_HELP                                                                                \
    "Peers authenticated, by result: CURVE keys and ipc:// peer uids (allowed, refused), "         \
    "handshakes failed before (handshake_failed)."
#define S_AUTH_IPC_HELP "ipc:// peers admitted or refused by their uid (--bus.ipc-auth=peercred)."

/* Registers the rayfleet_bus_* families reading *fwd. Returns 0 or an err_t. */
static int s_register(metrics_t *reg, bus_forwarder_t **fwd)
{
    static const struct {
        const char *name, *help, *reason;
        bool counter;
        b_metric_t which;
    } fams[] = {
        {"rayfleet_bus_messages_forwarded_total", "Messages copied from publishers to subscribers.",
         NULL, true, B_FORWARDED},
        {"rayfleet_bus_bytes_forwarded_total", "Bytes of the messages forwarded.", NULL, true,
         B_BYTES},
        {"rayfleet_bus_dropped_total", "Messages dropped, by reason.", "hwm", true, B_DROP_HWM},
        {"rayfleet_bus_dropped_total", "Messages dropped, by reason.", "malformed", true,
         B_DROP_MALFORMED},
        {"rayfleet_bus_dropped_total", "Messages dropped, by reason.", "oversize", true,
         B_DROP_OVERSIZE},
        {"rayfleet_bus_heartbeats_sent_total", "Heartbeats the forwarder sent.", NULL, true,
         B_HEARTBEATS},
        {"rayfleet_bus_subscriptions", "Topic subscriptions the subscribers hold now.", NULL, false,
         B_SUBSCRIPTIONS},
        {"rayfleet_bus_ready", "1 once both sockets are bound.", NULL, false, B_READY},
        {"rayfleet_bus_auth_total", S_AUTH_HELP, "allowed", true, B_AUTH_ALLOWED},
        {"rayfleet_bus_auth_total", S_AUTH_HELP, "refused", true, B_AUTH_REFUSED},
        {"rayfleet_bus_auth_total", S_AUTH_HELP, "handshake_failed", true, B_AUTH_FAILED},
        {"rayfleet_bus_auth_peercred_total", S_AUTH_IPC_HELP, "allowed", true, B_AUTH_IPC_ALLOWED},
        {"rayfleet_bus_auth_peercred_total", S_AUTH_IPC_HELP, "refused", true, B_AUTH_IPC_REFUSED},
    };
    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
        bool auth = !strncmp(fams[i].name, "rayfleet_bus_auth_", 18);
        const char *labels[] = {fams[i].reason ? (auth ? "result" : "reason") : NULL, NULL};
        metric_t *f = metrics_find(reg, fams[i].name);
        if (!f)
            f = fams[i].counter ? metrics_counter(reg, fams[i].name, fams[i].help, labels)
                                : metrics_gauge(reg, fams[i].name, fams[i].help, labels);
        const char *values[] = {fams[i].reason};
        if (!f || metric_series_fn(f, fams[i].reason ? values : NULL, s_read, fwd,
                                   (int)fams[i].which) != 0)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cfg_opt_t table[sizeof s_options / sizeof s_options[0] + 5];
    if (cfg_table_join(s_options, busopt_forwarder_options, table, sizeof table / sizeof table[0]) <
        0) {
        fprintf(stderr, "bus: too many options\n");
        return SVC_EXIT_FAILURE;
    }
    svc_t svc;
    if (svc_start(&svc, "bus", table, argc, argv) != 0)
        return svc.exit_code;
    bus_options_t o = {
        .frontend = cfg_str(svc.cfg, "bus.frontend"),
        .backend = cfg_str(svc.cfg, "bus.backend"),
        .hwm = (int)cfg_int(svc.cfg, "bus.hwm"),
        .heartbeat_ms = cfg_duration_ms(svc.cfg, "bus.heartbeat"),
    };
    int code = SVC_EXIT_FAILURE;
    bus_forwarder_t *fwd = NULL;
    metrics_t *reg = NULL;
    opsrv_t *ops = NULL;
    busopt_keys_t keys;
    buf_t kerr;
    buf_init(&kerr, 1024);
    if (busopt_forwarder(svc.cfg, &keys, &o, &kerr) != 0) {
        fprintf(stderr, "bus: %s\n", buf_str(&kerr));
        code = SVC_EXIT_USAGE;
        goto done;
    }
    const char *eps[2] = {o.frontend, o.backend};
    for (int i = 0; i < 2; i++) {
        bool peercred = o.ipc_auth == BUS_IPC_PEERCRED && bus_endpoint_is_ipc(eps[i]);
        if (!o.curve_secret_key && !peercred)
            log_warn("bus: CURVE is off: any process that reaches this socket can publish and "
                     "subscribe (set --bus.curve-key-file and --bus.curve-allow-file, or "
                     "--bus.ipc-auth=peercred on an ipc:// socket)",
                     "endpoint", eps[i], NULL);
    }
    int port = (int)cfg_int(svc.cfg, "health.port");
    if (port != 0) {
        reg = metrics_new();
        if (!reg || s_register(reg, &fwd) != 0) {
            fprintf(stderr, "bus: cannot register metrics\n");
            goto done;
        }
        ops = opsrv_new(svc.loop, &(opsrv_config_t){.host = cfg_str(svc.cfg, "health.host"),
                                                    .port = port,
                                                    .metrics = reg,
                                                    .ready = s_ready,
                                                    .ready_arg = &fwd});
        if (!ops) {
            fprintf(stderr, "bus: cannot serve /healthz, /readyz and /metrics on %s:%d\n",
                    cfg_str(svc.cfg, "health.host"), port);
            goto done;
        }
    }
    fwd = bus_forwarder_new(svc.loop, svc.zctx, &o);
    if (fwd)
        code = svc_run(&svc);
done:
    opsrv_destroy(&ops);
    bus_forwarder_destroy(&fwd);
    busopt_keys_clear(&keys);
    buf_free(&kerr);
    svc_end(&svc);
    metrics_destroy(&reg);
    return code;
}
