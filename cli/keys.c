/*
 * keys: see keys.h.
 */
#include "keys.h"
#include "privfs.h"

#include "args.h"
#include "buf.h"
#include "bus.h"
#include "busopt.h"
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define KEYS_PATH_MAX 4096 /* longest key file path */

int keys_pair_path(const char *dir, const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s.key", dir, name);
    return n < 0 || (size_t)n >= size ? ERR_TOOBIG : 0;
}

int keys_server_path(const char *dir, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s.pub", dir, KEYS_SERVER);
    return n < 0 || (size_t)n >= size ? ERR_TOOBIG : 0;
}

int keys_allow_path(const char *dir, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", dir, KEYS_ALLOW);
    return n < 0 || (size_t)n >= size ? ERR_TOOBIG : 0;
}

/* Reads `name`'s pair from dir, generating it first when absent, into pub. Returns 0 or an
 * err_t (printed). */
static int s_pair(const char *cmd, const char *dir, const char *name, char *pub)
{
    char path[KEYS_PATH_MAX], sec[BUS_CURVE_KEY_LEN + 1];
    if (keys_pair_path(dir, name, path, sizeof path) != 0)
        return ERR_TOOBIG;
    int rc = 0;
    if (access(path, F_OK) != 0) {
        if (zmq_curve_keypair(pub, sec) != 0) {
            fprintf(stderr, "rayfleetctl %s: cannot generate CURVE keys: %s\n", cmd,
                    zmq_strerror(errno));
            return ERR_IO;
        }
        rc = busopt_write_keys(path, name, pub, sec);
        memset(sec, 0, sizeof sec);
        if (rc != 0) {
            fprintf(stderr, "rayfleetctl %s: cannot write %s: %s\n", cmd, path, strerror(errno));
            return rc;
        }
    }
    buf_t err;
    buf_init(&err, 1024);
    rc = busopt_read_keys(path, true, pub, sec, &err);
    memset(sec, 0, sizeof sec);
    if (rc != 0)
        fprintf(stderr, "rayfleetctl %s: %s (delete it to generate a new pair)\n", cmd,
                buf_str(&err));
    buf_free(&err);
    if (rc == 0 && chmod(path, PRIVFS_FILE_MODE) != 0) {
        fprintf(stderr, "rayfleetctl %s: chmod %s: %s\n", cmd, path, strerror(errno));
        rc = ERR_IO;
    }
    return rc;
}

int keys_ensure(const char *cmd, const char *state, const char *const *clients, size_t n,
                char *dir_out, size_t size)
{
    char dir[KEYS_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", state, KEYS_DIR) >= (int)sizeof dir ||
        n > KEYS_CLIENTS_MAX)
        return ERR_TOOBIG;
    if (privfs_mkdirs(dir) != 0) {
        fprintf(stderr, "rayfleetctl %s: cannot create %s: %s\n", cmd, dir, strerror(errno));
        return ERR_IO;
    }
    if (chmod(dir, PRIVFS_DIR_MODE) != 0) { // made by an older version, or by hand
        fprintf(stderr, "rayfleetctl %s: chmod %s: %s\n", cmd, dir, strerror(errno));
        return ERR_IO;
    }
    char pub[BUS_CURVE_KEY_LEN + 1];
    int rc = s_pair(cmd, dir, KEYS_SERVER, pub);
    if (rc != 0)
        return rc;
    char path[KEYS_PATH_MAX];
    if (keys_server_path(dir, path, sizeof path) != 0 ||
        busopt_write_keys(path, KEYS_SERVER, pub, NULL) != 0) {
        fprintf(stderr, "rayfleetctl %s: cannot write %s: %s\n", cmd, path, strerror(errno));
        return ERR_IO;
    }
    char pubs[KEYS_CLIENTS_MAX][BUS_CURVE_KEY_LEN + 1];
    for (size_t i = 0; i < n; i++)
        if ((rc = s_pair(cmd, dir, clients[i], pubs[i])) != 0)
            return rc;
    const char *keys[KEYS_CLIENTS_MAX];
    for (size_t i = 0; i < n; i++)
        keys[i] = pubs[i];
    if (keys_allow_path(dir, path, sizeof path) != 0 ||
        busopt_write_allow(path, clients, keys, n) != 0) {
        fprintf(stderr, "rayfleetctl %s: cannot write %s: %s\n", cmd, path, strerror(errno));
        return ERR_IO;
    }
    snprintf(dir_out, size, "%s", dir);
    return 0;
}

static const args_opt_t s_keys_opts[] = {
    {"state-dir", "DIR",
     "State directory whose keys/ to fill, created when absent (default " KEYS_DEFAULT_STATE_DIR
     ")."},
    {"clients", "NAME[,NAME...]",
     "The client services, one key pair each (default " KEYS_SET_CLIENTS ")."},
    {NULL, NULL, NULL},
};

int keys_main(int argc, char **argv)
{
    args_t a;
    int pr = args_parse("bus-keys", "[--state-dir DIR] [--clients NAME,...]",
                        "Generates the bus's CurveZMQ keys into STATE/keys, as 'up' does: the "
                        "forwarder's pair (bus.key, bus.pub), one pair per client service\n"
                        "(NAME.key) and the allow-list (allow); pairs that exist are kept. For "
                        "sets started otherwise (docker-compose, a pod's init container).",
                        s_keys_opts, 0, argc, argv, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    const char *state =
        args_str(&a, "state-dir") ? args_str(&a, "state-dir") : KEYS_DEFAULT_STATE_DIR;
    char list[512];
    const char *clients = args_str(&a, "clients") ? args_str(&a, "clients") : KEYS_SET_CLIENTS;
    if (strlen(clients) >= sizeof list) {
        fprintf(stderr, "rayfleetctl bus-keys: --clients: longer than %zu bytes\n",
                sizeof list - 1);
        return 2;
    }
    snprintf(list, sizeof list, "%s", clients);
    const char *names[KEYS_CLIENTS_MAX];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        bool ok = t[0] != '\0' && strcmp(t, KEYS_SERVER) != 0 && n < KEYS_CLIENTS_MAX;
        for (const char *c = t; ok && *c; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-';
        if (!ok) {
            fprintf(stderr,
                    "rayfleetctl bus-keys: --clients: '%s': each name is [a-z0-9-]+, not '%s', "
                    "at most %d names\n",
                    t, KEYS_SERVER, KEYS_CLIENTS_MAX);
            return 2;
        }
        names[n++] = t;
    }
    if (n == 0) {
        fprintf(stderr, "rayfleetctl bus-keys: --clients: no name\n");
        return 2;
    }
    if (privfs_mkdirs(state) != 0) {
        fprintf(stderr, "rayfleetctl bus-keys: --state-dir: cannot create %s: %s\n", state,
                strerror(errno));
        return 1;
    }
    char dir[KEYS_PATH_MAX];
    if (keys_ensure("bus-keys", state, names, n, dir, sizeof dir) != 0)
        return 1;
    printf("%s\n", dir);
    return 0;
}
