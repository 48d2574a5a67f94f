/*
 * cfg: the configuration of every rayfleet process, from defaults, a YAML file, the environment
 * and command-line flags, validated with errors that name where the bad value came from.
 *
 * A service declares a static table of options, each with a dotted key ("bus.hwm"), a type, a
 * default written as text, a range, whether it is required, and a one-line help. cfg_load()
 * applies, each source overriding the one before:
 *
 *   1. the defaults of the table;
 *   2. the YAML file named by --config FILE (or RAYFLEET_CONFIG): keys nest ("bus:\n  hwm: 5")
 *      or are written dotted ("bus.hwm: 5"); unknown keys are errors (strict); a null value
 *      leaves the option as it was;
 *   3. the environment: RAYFLEET_ + the key upper-cased with '.' and '-' turned into '_'
 *      (bus.hwm -> RAYFLEET_BUS_HWM); a variable set to "" counts as unset;
 *   4. flags: --bus.hwm=VALUE or --bus.hwm VALUE; a bool flag alone (--dry-run) means true and
 *      takes a value only with '=' (--dry-run=false). Unknown flags and positional arguments
 *      are errors.
 *
 * Every service also has, without declaring them: --config FILE, --kubeconfig FILE, --state-dir
 * DIR, --log-level debug|info|warn|error, --help (-h) and --version. cfg_load() never prints or
 * exits: for --help it returns CFG_HELP with the generated usage (every option, its environment
 * variable, default, range and help) in `msg`, for --version CFG_VERSION with the version line,
 * and for a bad value a negative error with one line in `msg`, such as
 *
 *   config.yaml:4:8: bus.hwm: must be an integer between 1 and 10000000, got "lots"
 *   environment RAYFLEET_BUS_HWM: must be an integer between 1 and 10000000, got "lots"
 *   flag --bus.hwm: must be an integer between 1 and 10000000, got "lots"
 *
 * Values of options marked secret, or whose key looks secret (token, password, secret,
 * credential, key-data), are never copied into messages: they read "(value hidden)".
 *
 * Types: string; int (64-bit, decimal); bool (true/false, yes/no, on/off, 1/0, any case);
 * duration (an integer with unit ms, s, m or h, several may follow each other as in "1m30s", or
 * "0"; stored in milliseconds, min/max are in milliseconds too); list (comma-separated in the
 * environment and flags, a YAML sequence or a comma-separated string in the file; items are
 * trimmed and empty items dropped).
 */
#ifndef RF_CFG_H
#define RF_CFG_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The prefix of every environment variable. */
#define CFG_ENV_PREFIX "RAYFLEET_"
/* The largest configuration file read. */
#define CFG_MAX_FILE_BYTES (1024u * 1024u)
/* The longest option key, and the longest value accepted from any source. */
#define CFG_KEY_MAX 128
#define CFG_VALUE_MAX 65536
/* The most items a list option may hold. */
#define CFG_LIST_MAX 1024
/* The largest buffer cfg_load() will grow `msg` to for the usage text. */
#define CFG_MSG_MAX (256u * 1024u)
/* Defaults of the standard options. */
#define CFG_DEFAULT_STATE_DIR "/var/lib/rayfleet"
#define CFG_DEFAULT_LOG_LEVEL "info"

/* cfg_load() results besides 0 and the negative err_t codes. */
#define CFG_HELP 1 /* --help was given; msg holds the usage */
#define CFG_VERSION 2 /* --version was given; msg holds the version line */

typedef enum {
    CFG_STRING = 1, /* any text */
    CFG_INT, /* a 64-bit integer */
    CFG_BOOL, /* true or false */
    CFG_DURATION, /* milliseconds, written 500ms, 2s, 1m, 1h */
    CFG_LIST, /* a list of strings */
    CFG_ALIAS, /* a second name of the option whose key is `def`, as a flag and a file key (e.g.
                  KubeRay's --reconcile-concurrency for --concurrency): one setting, two names;
                  no environment variable of its own, nothing else of the row is used */
} cfg_type_t;

/* One declared option. A table is an array of these ending with an entry whose key is NULL. */
typedef struct {
    const char *key; /* dotted name: lower-case letters, digits, '.', '-', '_' */
    cfg_type_t type; /* how values are parsed */
    const char *def; /* the default, written as in the environment; NULL for none */
    int64_t min; /* int and duration: the smallest value allowed (when min < max) */
    int64_t max; /* int and duration: the largest value allowed (when min < max) */
    bool required; /* loading fails when no source sets it */
    bool secret; /* never show its value (keys that look secret are hidden anyway) */
    const char *help; /* one line for --help */
    const char *const *choices; /* string: the allowed values, NULL-terminated; NULL: any */
} cfg_opt_t;

typedef struct cfg cfg_t;

/* Builds the configuration from `table` (borrowed; must outlive the cfg_t, usually static) and
 * argv[1..argc-1]. Returns 0 and stores a new cfg_t in *out (cfg_destroy() it); CFG_HELP or
 * CFG_VERSION with the text in `msg` and *out NULL; or, with one line in `msg` and *out NULL:
 * ERR_INVAL (bad value, unknown key or flag, missing required option, or a faulty table),
 * ERR_PARSE (the file is not valid YAML or not a mapping), ERR_IO (file unreadable), ERR_TOOBIG,
 * ERR_NOMEM. `msg` may be NULL; text is appended to it. Reads the environment; prints nothing. */
int cfg_load(const cfg_opt_t *table, int argc, char **argv, cfg_t **out, buf_t *msg);

/* cfg_load() for the service `service` of the rayfleet set ("bus", "watcher", "scheduler",
 * "submitter", "serve-upgrade"; NULL: as cfg_load()):
 *
 *   - one configuration file for the whole set (a "set file"): a file with a top-level mapping
 *     named after a service other than the bus is a set file. Its top-level keys are shared: every
 *     service that reads it applies them, so each must be an option of every service given the
 *     file (state-dir, log-level, kubeconfig, bus.hwm, ...); a section `scheduler:`,
 *     `submitter:`, `serve-upgrade:`, `watcher:` or `bus:` holds one service's keys (written as
 *     at top level, dotted or nested; in the bus's section `frontend` also means bus.frontend),
 *     applied after the top level by that service and skipped by the others. An unknown key, at
 *     the top level or in the service's own section, is an error naming the key (with its
 *     section) and the file. A file without sections is read as before by every service. A
 *     top-level mapping `federation:` (the members, placement and queues: fleet/fedcfg.h) is
 *     skipped by every service; the scheduler reads it when --federation.config names the file.
 *   - the environment: RAYFLEET_<KEY> as before, then RAYFLEET_<SERVICE>_<KEY>
 *     (RAYFLEET_SCHEDULER_CONCURRENCY, RAYFLEET_SERVE_UPGRADE_BUS_ENDPOINT), which wins: one
 *     environment for the whole set without RAYFLEET_BUS_ENDPOINT or RAYFLEET_RESYNC meaning two
 *     things. */
int cfg_load_service(const char *service, const cfg_opt_t *table, int argc, char **argv,
                     cfg_t **out, buf_t *msg);

/* Releases the configuration and sets *pc to NULL. NULL-safe. */
void cfg_destroy(cfg_t **pc);

/* Getters for a declared or standard option. The key must exist with that type: otherwise the
 * call is a programming error, logged, and returns NULL / 0 / false / an empty list. */

/* The string value, borrowed from the cfg_t, or NULL when unset. */
const char *cfg_str(const cfg_t *c, const char *key);
int64_t cfg_int(const cfg_t *c, const char *key);
bool cfg_bool(const cfg_t *c, const char *key);
int64_t cfg_duration_ms(const cfg_t *c, const char *key);

/* The list's items, a NULL-terminated array borrowed from the cfg_t (never NULL); *n_out (may be
 * NULL) receives the item count. */
const char *const *cfg_list(const cfg_t *c, const char *key, size_t *n_out);

/* Where the value of `key` came from: "default", "file", "environment", "flag", or "unset".
 * NULL for an unknown key. */
const char *cfg_source(const cfg_t *c, const char *key);

/* Sets the declared option `key` from `text` as a value read from a file (source "file"), after
 * cfg_load(): for a second configuration format (KubeRay's Configuration file) whose settings
 * are rayfleet options. On a bad value appends "<where>: <rule>, got ..." to msg. Returns 0 or
 * ERR_INVAL (unknown key, bad value; the option keeps its value). */
int cfg_override(cfg_t *c, const char *key, const char *text, const char *where, buf_t *msg);

/* Appends the usage text for `table` (as --help gives it) to `out`. `prog` names the program.
 * Returns 0, ERR_TOOBIG or ERR_NOMEM. */
int cfg_usage(const cfg_opt_t *table, const char *prog, buf_t *out);

/* Copies table `a` then table `b` (either may be NULL) into out[max], NULL-key terminated, for
 * a service whose options come from several modules. Returns the number of options, or
 * ERR_TOOBIG when out is too small. */
int cfg_table_join(const cfg_opt_t *a, const cfg_opt_t *b, cfg_opt_t *out, size_t max);

#endif
