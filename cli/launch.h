/*
 * launch: `rayfleetctl up` and `rayfleetctl down`.
 *
 * up: (with --sim) starts kubesim and waits for its ready file; installs the CRDs of deploy/crds
 * through the Kubernetes API when absent and waits until each is Established; then starts every
 * rayfleet service found beside rayfleetctl from a fixed list (bus, watcher, scheduler), naming the
 * ones not built. A service gets only the flags its --help lists: the standard --kubeconfig,
 * --state-dir and --log-level, the bus endpoints (ipc:// sockets in the state dir), and a free
 * port for --health.port / --metrics.port. Readiness: the watcher's (or any service's) /readyz
 * answers 200; the bus's ipc sockets exist; a service without a health port stays alive for
 * LAUNCH_SETTLE_MS. Logs go to STATE/logs/<name>.log and pids to STATE/pids (see proc.h).
 * Foreground: waits, stops everything on SIGINT/SIGTERM (exit 0) or when a child dies (its log
 * tail is printed; exit 1). --detach: returns once all are ready, printing the kubeconfig path.
 *
 * down: stops what the pid file lists (SIGTERM, then SIGKILL after --timeout), removes the file;
 * idempotent.
 */
#ifndef RF_CLI_LAUNCH_H
#define RF_CLI_LAUNCH_H

#define LAUNCH_DEFAULT_STATE_DIR ".rayfleet" /* --state-dir default of every command */
#define LAUNCH_DEFAULT_NODES 4 /* --nodes default */
#define LAUNCH_MAX_NODES 1000 /* --nodes upper bound */
#define LAUNCH_DEFAULT_TIMEOUT_MS 60000 /* --timeout default of up */
#define LAUNCH_STOP_TIMEOUT_MS 10000 /* --timeout default of down (SIGTERM -> SIGKILL) */
#define LAUNCH_SETTLE_MS 1000 /* a service without a health port must live this long */
#define LAUNCH_PROBE_MS 100 /* readiness polling period */
#define LAUNCH_TAIL_LINES 20 /* log lines shown for a process that died */
#define LAUNCH_IPC_PATH_MAX 100 /* longest ipc:// socket path (sun_path is 108 bytes) */
#define LAUNCH_CRD_MAX_FILE (8u * 1024 * 1024) /* largest CRD manifest read */

/* `rayfleetctl up ARGS`; returns the process exit code (0, 1 failure, 2 usage). */
int launch_up(int argc, char **argv);

/* `rayfleetctl down ARGS`; returns the process exit code. */
int launch_down(int argc, char **argv);

#endif
