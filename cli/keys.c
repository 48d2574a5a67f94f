/*
 * keys: see keys.h.
 */
#include "keys.h"

#include "buf.h"
#include "bus.h"
#include "busopt.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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
static int s_pair(const char *dir, const char *name, char *pub)
{
    char path[KEYS_PATH_MAX], sec[BUS_CURVE_KEY_LEN + 1];
    if (keys_pair_path(dir, name, path, sizeof path) != 0)
        return ERR_TOOBIG;
    int rc = 0;
    if (access(path, F_OK) != 0) {
        if (zmq_curve_keypair(pub, sec) != 0) {
            fprintf(stderr, "rayfleetctl up: cannot generate CURVE keys: %s\n",
                    zmq_strerror(errno));
            return ERR_IO;
        }
        rc = busopt_write_keys(path, name, pub, sec);
        memset(sec, 0, sizeof sec);
        if (rc != 0) {
            fprintf(stderr, "rayfleetctl up: cannot write %s: %s\n", path, strerror(errno));
            return rc;
        }
    }
    buf_t err;
    buf_init(&err, 1024);
    rc = busopt_read_keys(path, true, pub, sec, &err);
    memset(sec, 0, sizeof sec);
    if (rc != 0)
        fprintf(stderr, "rayfleetctl up: %s (delete it to generate a new pair)\n", buf_str(&err));
    buf_free(&err);
    if (rc == 0 && chmod(path, 0600) != 0) {
        fprintf(stderr, "rayfleetctl up: chmod %s: %s\n", path, strerror(errno));
        rc = ERR_IO;
    }
    return rc;
}

int keys_ensure(const char *state, const char *const *clients, size_t n, char *dir_out, size_t size)
{
    char dir[KEYS_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", state, KEYS_DIR) >= (int)sizeof dir || n > 64)
        return ERR_TOOBIG;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "rayfleetctl up: cannot create %s: %s\n", dir, strerror(errno));
        return ERR_IO;
    }
    if (chmod(dir, 0700) != 0) {
        fprintf(stderr, "rayfleetctl up: chmod %s: %s\n", dir, strerror(errno));
        return ERR_IO;
    }
    char pub[BUS_CURVE_KEY_LEN + 1];
    int rc = s_pair(dir, KEYS_SERVER, pub);
    if (rc != 0)
        return rc;
    char path[KEYS_PATH_MAX];
    if (keys_server_path(dir, path, sizeof path) != 0 ||
        busopt_write_keys(path, KEYS_SERVER, pub, NULL) != 0) {
        fprintf(stderr, "rayfleetctl up: cannot write %s: %s\n", path, strerror(errno));
        return ERR_IO;
    }
    char pubs[64][BUS_CURVE_KEY_LEN + 1];
    for (size_t i = 0; i < n; i++)
        if ((rc = s_pair(dir, clients[i], pubs[i])) != 0)
            return rc;
    const char *keys[64];
    for (size_t i = 0; i < n; i++)
        keys[i] = pubs[i];
    if (keys_allow_path(dir, path, sizeof path) != 0 ||
        busopt_write_allow(path, clients, keys, n) != 0) {
        fprintf(stderr, "rayfleetctl up: cannot write %s: %s\n", path, strerror(errno));
        return ERR_IO;
    }
    snprintf(dir_out, size, "%s", dir);
    return 0;
}
