/*
 * rayfleet-bus: the bus forwarder process. Publishers connect to its frontend, subscribers to
 * its backend; it copies messages one way and subscriptions the other, and heartbeats as "bus"
 * (see common/bus.h). One event loop; exits cleanly on SIGTERM or SIGINT.
 */
#include "bus.h"
#include "svc.h"

#include <stddef.h>

static const cfg_opt_t s_options[] = {
    {"bus.frontend", CFG_STRING, BUS_FRONTEND_DEFAULT, 0, 0, false, false,
     "ZeroMQ endpoint the forwarder binds for publishers.", NULL},
    {"bus.backend", CFG_STRING, BUS_BACKEND_DEFAULT, 0, 0, false, false,
     "ZeroMQ endpoint the forwarder binds for subscribers.", NULL},
    {"bus.hwm", CFG_INT, "100000", 1, BUS_HWM_MAX, false, false,
     "High-water mark (messages queued per peer) on both sides.", NULL},
    {"bus.heartbeat", CFG_DURATION, "1s", 10, 3600000, false, false,
     "Interval between the forwarder's heartbeats.", NULL},
    {"bus.curve-secret-key", CFG_STRING, NULL, 0, 0, false, true,
     "Z85 CurveZMQ secret key of the forwarder; set it to require CURVE from every peer.", NULL},
    {NULL},
};

int main(int argc, char **argv)
{
    svc_t svc;
    if (svc_start(&svc, "bus", s_options, argc, argv) != 0)
        return svc.exit_code;
    bus_options_t o = {
        .frontend = cfg_str(svc.cfg, "bus.frontend"),
        .backend = cfg_str(svc.cfg, "bus.backend"),
        .hwm = (int)cfg_int(svc.cfg, "bus.hwm"),
        .heartbeat_ms = cfg_duration_ms(svc.cfg, "bus.heartbeat"),
        .curve_secret_key = cfg_str(svc.cfg, "bus.curve-secret-key"),
    };
    int code = SVC_EXIT_FAILURE;
    bus_forwarder_t *fwd = bus_forwarder_new(svc.loop, svc.zctx, &o);
    if (fwd)
        code = svc_run(&svc);
    bus_forwarder_destroy(&fwd);
    svc_end(&svc);
    return code;
}
