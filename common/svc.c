/*
 * svc: process bootstrap shared by every service (see svc.h).
 */
#include "svc.h"
#include "err.h"
#include "log.h"
#include "privfs.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define SVC_MSG_MAX (256u * 1024u)
#define SVC_PATH_MAX 4096u

static int s_on_stop_signal(loop_t *loop, int signo, void *arg)
{
    svc_t *svc = arg;
    svc->signal = signo;
    log_info("stopping", "signal", signo == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    loop_stop(loop);
    return 0;
}

int svc_start(svc_t *svc, const char *name, const cfg_opt_t *table, int argc, char **argv)
{
    memset(svc, 0, sizeof *svc);
    svc->name = name;
    svc->exit_code = SVC_EXIT_FAILURE;

    static const cfg_opt_t none[] = {{0}};
    buf_t msg;
    buf_init(&msg, SVC_MSG_MAX);
    int rc = cfg_load_service(name, table ? table : none, argc, argv, &svc->cfg, &msg);
    if (rc == CFG_HELP || rc == CFG_VERSION) {
        fputs(buf_str(&msg), stdout);
        buf_free(&msg);
        svc->exit_code = SVC_EXIT_OK;
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "rayfleet-%s: %s\n", name, msg.len ? buf_str(&msg) : err_str(rc));
        buf_free(&msg);
        svc->exit_code = rc == ERR_NOMEM ? SVC_EXIT_FAILURE : SVC_EXIT_USAGE;
        return 1;
    }
    buf_free(&msg);

    log_level_t level = LOG_INFO;
    log_level_parse(cfg_str(svc->cfg, "log-level"), &level); // validated by cfg_load
    log_setup(name, level, STDERR_FILENO);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("curl_global_init failed", NULL);
        goto fail;
    }
    signal(SIGPIPE, SIG_IGN);
    svc->zctx = zmq_ctx_new();
    svc->loop = loop_new();
    if (!svc->zctx || !svc->loop) {
        log_error("out of memory at start", NULL);
        goto fail;
    }
    if (loop_watch_signal(svc->loop, SIGTERM, s_on_stop_signal, svc) != 0 ||
        loop_watch_signal(svc->loop, SIGINT, s_on_stop_signal, svc) != 0) {
        log_error("cannot watch SIGTERM/SIGINT", NULL);
        goto fail;
    }
    log_info("starting", "version", RF_VERSION, "config", cfg_str(svc->cfg, "config"), NULL);
    return 0;

fail:
    svc_end(svc);
    svc->exit_code = SVC_EXIT_FAILURE;
    return 1;
}

int svc_run(svc_t *svc)
{
    int rc = loop_run(svc->loop);
    if (rc < 0) {
        log_error("event loop failed", "error", err_str(rc), NULL);
        return SVC_EXIT_FAILURE;
    }
    return SVC_EXIT_OK;
}

void svc_end(svc_t *svc)
{
    loop_destroy(&svc->loop);
    if (svc->zctx) {
        zmq_ctx_term(svc->zctx);
        svc->zctx = NULL;
        curl_global_cleanup();
    }
    cfg_destroy(&svc->cfg);
}

int svc_state_path(svc_t *svc, const char *file, buf_t *out)
{
    const char *dir = cfg_str(svc->cfg, "state-dir");
    int rc = privfs_mkdirs(dir);
    if (rc) {
        log_error("cannot create the state directory", "state-dir", dir, "error", strerror(errno),
                  NULL);
        return rc;
    }
    buf_reset(out);
    return buf_printf(out, "%s/%s", dir, file);
}

#ifdef RF_SELFTEST
#include "selftest.h"

int svc_test(bool verbose)
{
    int failed = 0;
    static const cfg_opt_t table[] = {
        {"bus.hwm", CFG_INT, "1000", 1, 1000000, false, false, "queue bound", NULL},
        {0},
    };
    // --version and --help are served and end the process with 0, printing to stdout.
    char *v_argv[] = {"rf-test", "--version", NULL};
    svc_t svc;
    CHECK(svc_start(&svc, "test", table, 2, v_argv) != 0 && svc.exit_code == SVC_EXIT_OK);
    CHECK(svc.loop == NULL && svc.cfg == NULL);

    // A bad value ends with the usage exit code.
    char *bad_argv[] = {"rf-test", "--bus.hwm=0", NULL};
    CHECK(svc_start(&svc, "test", table, 2, bad_argv) != 0 && svc.exit_code == SVC_EXIT_USAGE);
    char *unknown_argv[] = {"rf-test", "--no-such-flag", NULL};
    CHECK(svc_start(&svc, "test", table, 2, unknown_argv) != 0 && svc.exit_code == SVC_EXIT_USAGE);

    // A good start gives a loop that SIGTERM stops, and a state directory made on demand.
    char dir[] = "/tmp/rf-svc-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char state_flag[64];
    snprintf(state_flag, sizeof state_flag, "--state-dir=%s/a/b", dir);
    char *ok_argv[] = {"rf-test", state_flag, "--log-level=warn", NULL};
    CHECK(svc_start(&svc, "test", table, 3, ok_argv) == 0);
    CHECK(svc.loop && svc.zctx && svc.cfg && cfg_int(svc.cfg, "bus.hwm") == 1000);
    buf_t path;
    buf_init(&path, SVC_PATH_MAX);
    CHECK(svc_state_path(&svc, "observed.db", &path) == 0);
    char want[128];
    snprintf(want, sizeof want, "%s/a/b/observed.db", dir);
    CHECK(strcmp(buf_str(&path), want) == 0);
    struct stat st;
    snprintf(want, sizeof want, "%s/a/b", dir);
    CHECK(stat(want, &st) == 0 && S_ISDIR(st.st_mode));
    buf_free(&path);
    raise(SIGTERM);
    CHECK(svc_run(&svc) == SVC_EXIT_OK && svc.signal == SIGTERM);
    svc_end(&svc);
    CHECK(svc.loop == NULL && svc.zctx == NULL && svc.cfg == NULL);
    rmdir(want);
    snprintf(want, sizeof want, "%s/a", dir);
    rmdir(want);
    rmdir(dir);
    log_setup("rayfleet", LOG_INFO, STDERR_FILENO);
    return SELFTEST_RESULT("svc", verbose);
}

#endif /* RF_SELFTEST */
