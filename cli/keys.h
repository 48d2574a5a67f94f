/*
 * keys: the CurveZMQ keys of a set started by `rayfleetctl up --bus-ipc-auth curve` (the default,
 * peercred, needs none), of compose's and the chart's tcp:// bus, in STATE/keys (mode 0700).
 *
 *   STATE/keys/bus.key       the forwarder's key pair (0600)
 *   STATE/keys/bus.pub       its public key, what every client is given (0644)
 *   STATE/keys/<name>.key    one pair per client service ("watcher", "scheduler", ...; the
 *                            replicas of a service share its pair) (0600)
 *   STATE/keys/allow         the allow-list: the public key of every <name>.key (0600)
 *
 * File formats: common/busopt.h. A pair is generated on the first start and kept after (a
 * restarted set keeps its keys); the allow-list is rewritten at every start from the pairs.
 */
#ifndef RF_CLI_KEYS_H
#define RF_CLI_KEYS_H

#include <stddef.h>

#define KEYS_DIR "keys" /* under the state dir */
#define KEYS_SERVER "bus" /* the forwarder's name in the key files */
#define KEYS_ALLOW "allow" /* the allow-list file */
#define KEYS_CLIENTS_MAX 64 /* most client services */
#define KEYS_DEFAULT_STATE_DIR ".rayfleet" /* bus-keys' --state-dir default (as launch.h's) */
/* The client services of a set (bus-keys' default; `up` derives them from its services). */
#define KEYS_SET_CLIENTS "watcher,scheduler,submitter,serve-upgrade"

/* `rayfleetctl bus-keys [--state-dir DIR] [--clients NAME,...]`: keys_ensure() for sets not
 * started by `up` (docker-compose's keys step). Returns the exit code. */
int keys_main(int argc, char **argv);

/* Makes sure STATE/keys holds the forwarder's pair and one pair for each of `clients` (n
 * names, each [a-z0-9-]+), and writes the allow-list. Writes the directory into dir_out
 * (size bytes). Returns 0, or an err_t with the reason printed on stderr after "rayfleetctl
 * <cmd>: ". */
int keys_ensure(const char *cmd, const char *state, const char *const *clients, size_t n,
                char *dir_out, size_t size);

/* Writes the path of `name`'s key pair file (KEYS_SERVER: the forwarder's) into out.
 * Returns 0 or ERR_TOOBIG (the three path functions). */
int keys_pair_path(const char *dir, const char *name, char *out, size_t size);

/* Writes the path of the forwarder's public key file into out. */
int keys_server_path(const char *dir, char *out, size_t size);

/* Writes the path of the allow-list into out. */
int keys_allow_path(const char *dir, char *out, size_t size);

#endif
