/*
 * svc: the start and end of every rayfleet process, so each service's main() is a few lines.
 *
 * This module is main()'s half of the runtime: unlike the rest of common/, it prints (usage,
 * version, configuration errors) and decides exit codes. It does, in order:
 *
 *   1. cfg_load() with the service's option table plus the standard options (--config,
 *      --kubeconfig, --state-dir, --log-level, --help, --version);
 *   2. log_setup() with the service name and level, to stderr;
 *   3. process-global initialisation, exactly once: curl_global_init and one ZeroMQ context;
 *   4. an event loop that stops on SIGTERM and SIGINT (and ignores SIGPIPE).
 *
 *   int main(int argc, char **argv) {
 *       svc_t svc;
 *       if (svc_start(&svc, "watcher", s_options, argc, argv) != 0)
 *           return svc.exit_code;
 *       ... create the service's objects on svc.loop ...
 *       int code = svc_run(&svc);
 *       ... destroy them ...
 *       svc_end(&svc);
 *       return code;
 *   }
 */
#ifndef RF_SVC_H
#define RF_SVC_H

#include "cfg.h"
#include "loop.h"

/* Exit codes. */
#define SVC_EXIT_OK 0 /* clean stop, or --help / --version */
#define SVC_EXIT_FAILURE 1 /* the service could not start or its loop failed */
#define SVC_EXIT_USAGE 2 /* bad flag, environment variable or configuration file */

typedef struct {
    const char *name; /* service name, e.g. "watcher" (borrowed, usually a literal) */
    cfg_t *cfg; /* the loaded configuration */
    loop_t *loop; /* the process's event loop */
    void *zctx; /* the process's one ZeroMQ context */
    int exit_code; /* what main() returns when svc_start() did not return 0 */
    int signal; /* the signal that stopped the loop, 0 if none */
} svc_t;

/* Starts the process as described above. Returns 0 when the service should run; otherwise the
 * process is done (help or version printed on stdout, or an error on stderr, everything freed)
 * and main() returns svc->exit_code. `table` may be NULL when the service has no options of its
 * own. */
int svc_start(svc_t *svc, const char *name, const cfg_opt_t *table, int argc, char **argv);

/* Runs the loop until SIGTERM/SIGINT or loop_stop(). Returns SVC_EXIT_OK, or SVC_EXIT_FAILURE
 * when a handler stopped the loop with an error (logged). */
int svc_run(svc_t *svc);

/* Frees the loop, the ZeroMQ context (after the caller closed its sockets) and the
 * configuration, and cleans up curl. NULL-safe members. */
void svc_end(svc_t *svc);

/* Makes sure the state directory exists (mkdir -p, mode 0750) and writes the path of `file`
 * inside it into `out`. Returns 0, ERR_TOOBIG, ERR_NOMEM or ERR_IO (logged with the path). */
int svc_state_path(svc_t *svc, const char *file, buf_t *out);

#endif
