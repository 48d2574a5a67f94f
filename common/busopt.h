/*
 * busopt: the bus's CurveZMQ settings of every rayfleet process, as options and key files, in
 * one place. The watcher and every controller (ctrl/ctrlsvc.c) add busopt_client_options to
 * their table and call busopt_client(); rayfleet-bus adds busopt_forwarder_options and calls
 * busopt_forwarder(). Keys are read from FILES, never from flags (argv is world-readable in
 * /proc). rayfleetctl up writes these files (cli/keys.c).
 *
 * Key files. A key pair file (--bus.curve-key-file) is the secret certificate of CZMQ's zcert,
 * reduced to what is used; `#` starts a comment, blank lines are skipped, and a line
 * "metadata" or "curve" (zcert's sections) is ignored, as are other "name = value" lines:
 *
 *     # rayfleet CURVE key pair of watcher (ZeroMQ Z85; keep this file 0600)
 *     public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
 *     secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
 *
 * A server key file (--bus.curve-server-key-file) holds the public-key line only (the public
 * certificate; a key pair file works too, its secret is then ignored). Values may be quoted;
 * each is exactly BUS_CURVE_KEY_LEN characters of Z85. An allow-list file
 * (--bus.curve-allow-file) holds one client public key per line, bare Z85, comments and blank
 * lines allowed, at most BUS_ALLOW_MAX keys. Every file is at most BUSOPT_FILE_MAX bytes, every
 * line at most BUSOPT_LINE_MAX; an error names file:line and the rule.
 *
 * Rules. A client with a server key must have its own pair (listed in the bus's allow-list),
 * and a pair without a server key is refused too. A forwarder with a key pair must have an
 * allow-list (with one key at least), and an allow-list without a pair is refused. With none of
 * them the bus runs without CURVE, which is still what standalone services and tests use.
 *
 * ipc://. bus.ipc-auth (peercred, the default, or curve) says how an ipc:// endpoint is
 * authenticated (bus.h, "Local peers"): with peercred the forwarder admits a peer of an ipc://
 * socket by its kernel-reported uid (bus.ipc-allow-uids, default the bus's own uid) and neither
 * side encrypts; keys, when set, then serve tcp:// endpoints only. tcp:// always uses CURVE when
 * keys are set. The bus and its clients must agree on it.
 */
#ifndef RF_BUSOPT_H
#define RF_BUSOPT_H

#include "buf.h"
#include "bus.h"
#include "cfg.h"

#include <stddef.h>

#define BUSOPT_FILE_MAX (256 * 1024) /* largest key or allow-list file, bytes */
#define BUSOPT_IPC_PEERCRED "peercred" /* bus.ipc-auth: peer uids on ipc:// (the default) */
#define BUSOPT_IPC_CURVE "curve" /* bus.ipc-auth: CURVE on ipc:// as on tcp:// */
#define BUSOPT_LINE_MAX 512 /* longest line of a key file, bytes */

/* Options of a publisher or subscriber (NULL-key terminated): bus.ipc-auth,
 * bus.curve-server-key-file, bus.curve-key-file. */
extern const cfg_opt_t busopt_client_options[];

/* Options of the forwarder (NULL-key terminated): bus.ipc-auth, bus.ipc-allow-uids,
 * bus.curve-key-file, bus.curve-allow-file. */
extern const cfg_opt_t busopt_forwarder_options[];

/* The keys read for one process; bus_options_t points into it, so it lives as long as the
 * publisher, subscriber or forwarder is created (the bus copies what it keeps). */
typedef struct {
    char server_key[BUS_CURVE_KEY_LEN + 1]; /* the forwarder's public key, "" when none */
    char public_key[BUS_CURVE_KEY_LEN + 1]; /* own public key, "" when none */
    char secret_key[BUS_CURVE_KEY_LEN + 1]; /* own secret key, "" when none */
    char (*allow)[BUS_CURVE_KEY_LEN + 1]; /* forwarder: the allow-list */
    const char **allow_ptrs; /* the same as pointers, for bus_options_t.curve_allow */
    size_t n_allow; /* entries */
    uint32_t uids[BUS_IPC_UIDS_MAX]; /* forwarder: bus.ipc-allow-uids */
    size_t n_uids; /* entries in uids (0: the forwarder's own uid) */
} busopt_keys_t;

/* Fills ipc_auth and the CURVE fields of *o from the client options of `cfg` (the files read
 * into *keys).
 * Returns 0 (also when CURVE is off), ERR_INVAL (a rule above, or a malformed file; `err`
 * names the option or file:line), ERR_IO (unreadable), ERR_TOOBIG or ERR_NOMEM. */
int busopt_client(const cfg_t *cfg, busopt_keys_t *keys, bus_options_t *o, buf_t *err);

/* The same for the forwarder: ipc_auth, ipc_uids (into keys->uids), curve_secret_key and
 * curve_allow. bus.ipc-allow-uids with bus.ipc-auth=curve is refused (ERR_INVAL). */
int busopt_forwarder(const cfg_t *cfg, busopt_keys_t *keys, bus_options_t *o, buf_t *err);

/* Parses n uids (decimal, 0..UINT32_MAX - 1; at most BUS_IPC_UIDS_MAX) into uids[], count in
 * *n_out. Returns 0, ERR_INVAL or ERR_TOOBIG (`err` names bus.ipc-allow-uids and the rule). */
int busopt_parse_uids(const char *const *items, size_t n, uint32_t *uids, size_t *n_out,
                      buf_t *err);

/* Wipes the secret key and frees the allow-list. NULL-safe. */
void busopt_keys_clear(busopt_keys_t *keys);

/* Reads a key pair file (need_secret) or a server key file into pub and sec (each
 * BUS_CURVE_KEY_LEN + 1 bytes; sec may be NULL when !need_secret). Returns as busopt_client(). */
int busopt_read_keys(const char *path, bool need_secret, char *pub, char *sec, buf_t *err);

/* Reads an allow-list file into keys->allow. Returns as busopt_client(). */
int busopt_read_allow(const char *path, busopt_keys_t *keys, buf_t *err);

/* Writes a key pair file (sec non-NULL) or a public certificate (sec NULL) at path, mode 0600
 * like every state file (privfs.h), replacing it atomically; `who` names the owner in the comment.
 * Returns 0 or ERR_IO (errno kept). */
int busopt_write_keys(const char *path, const char *who, const char *pub, const char *sec);

/* Writes an allow-list file (mode 0600) holding keys[i], each after a comment naming names[i],
 * replacing it atomically. Returns 0 or ERR_IO (errno kept). */
int busopt_write_allow(const char *path, const char *const *names, const char *const *keys,
                       size_t n);

/* Self-test. */
int busopt_test(bool verbose);

#endif
