/*
 * rayfleetctl: the operator's command-line tool. `rayfleetctl COMMAND [OPTIONS]`; each command
 * has its own --help. Commands: up, down, crds and probe (launch.h), bus-keys (keys.h), status
 * (status.h), audit (audit.h), sql (sql.h), explain and drift (explain.h).
 */
#include "audit.h"
#include "explain.h"
#include "keys.h"
#include "launch.h"
#include "members.h"
#include "sql.h"
#include "status.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* One command. */
typedef struct {
    const char *name; /* the word after rayfleetctl */
    int (*run)(int argc, char **argv); /* gets the words after the command */
    const char *summary; /* one line for the tool's help */
} s_command_t;

static const s_command_t s_commands[] = {
    {"up", launch_up,
     "Start rayfleet (and with --sim a simulated cluster): foreground or --detach."},
    {"down", launch_down, "Stop what 'up --detach' started."},
    {"crds", launch_crds, "Install the ray.io CRDs into a cluster when absent (as 'up' does)."},
    {"probe", launch_probe, "Exit 0 when http://HOST:PORT/PATH answers 200 (health checks)."},
    {"bus-keys", keys_main, "Generate the bus's CurveZMQ keys into STATE/keys (as 'up' does)."},
    {"status", status_main,
     "Show the Ray objects (RayClusters, RayJobs, RayServices) and their state."},
    {"audit", audit_main,
     "List, follow, export or prune the actions rayfleet took, with their causes."},
    {"sql", sql_main, "Run one read-only SQL query on rayfleet's databases."},
    {"explain", explain_main, "Why does KIND/NAME exist or why was it deleted: its causes."},
    {"drift", drift_main, "Children each RayCluster wants versus those observed (observed.db)."},
    {"members", members_main,
     "Member clusters (up --sim --members N): nodes, capacity and use, Ray clusters, health."},
    {"member", member_main,
     "Fault a simulated member: stop|start|partition|heal|slow|fast NAME (each undoable)."},
};
#define S_NCOMMANDS (sizeof(s_commands) / sizeof(s_commands[0]))

static void s_usage(FILE *f)
{
    fprintf(f, "Usage: rayfleetctl COMMAND [OPTIONS]\n\n"
               "rayfleet's command-line tool.\n\nCommands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        fprintf(f, "  %-8s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf(f, "\nOptions:\n  --help, -h   Print this help and exit.\n"
               "  --version    Print the version and exit.\n\n"
               "'rayfleetctl COMMAND --help' describes a command's options.\n"
               "Example: rayfleetctl up --sim --detach --state-dir .state/run\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        s_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("rayfleetctl %s\n", RF_VERSION);
        return 0;
    }
    const s_command_t *c = NULL;
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp(s_commands[i].name, cmd) == 0)
            c = &s_commands[i];
    if (!c) {
        fprintf(stderr,
                "rayfleetctl: unknown command '%s' (commands: up, down, status, audit, sql, "
                "explain, drift; see "
                "'rayfleetctl --help')\n",
                cmd);
        return 2;
    }
    /* SIGINT and SIGTERM are taken with sigtimedwait() (proc_sleep) so that `up` can stop its
     * children in order; children get a clean mask (proc_spawn). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    /* A shell starts background jobs with SIGINT ignored, and an ignored signal is discarded
     * even while blocked: make both deliverable to sigtimedwait(). */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "rayfleetctl: cannot initialise libcurl\n");
        return 1;
    }
    int code = c->run(argc - 2, argv + 2);
    curl_global_cleanup();
    return code;
}
