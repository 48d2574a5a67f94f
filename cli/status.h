/*
 * status: `rayfleetctl status` (the Ray objects of a cluster, read through the Kubernetes API, as
 * tables with more columns than `kubectl get`), then, when the state dir's pid file lists several
 * scheduler replicas ("scheduler-<i>", see launch.h), one line per replica: pid, whether it runs,
 * and how many shards it holds now (unexpired shard leases in STATE/leases.db whose holder is
 * the replica's id); last, with a state dir, the processes `up` supervises (STATE/supervise.json,
 * supervise.h): pid, state, restarts, last exit, and each one's /readyz asked now.
 * `rayfleetctl audit` is in audit.h.
 */
#ifndef RF_CLI_STATUS_H
#define RF_CLI_STATUS_H

#define STATUS_SHARD_LEASES "scheduler/shard/%" /* LIKE pattern of the schedulers' shard leases */

/* `rayfleetctl status ARGS`; returns the exit code. */
int status_main(int argc, char **argv);

#endif
