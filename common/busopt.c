/*
 * busopt: the bus's CurveZMQ options and key files; see busopt.h.
 */
#include "busopt.h"
#include "privfs.h"
#include "err.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static const char *const s_ipc_auth_choices[] = {BUSOPT_IPC_PEERCRED, BUSOPT_IPC_CURVE, NULL};

const cfg_opt_t busopt_client_options[] = {
    {"bus.ipc-auth", CFG_STRING, BUSOPT_IPC_PEERCRED, 0, 0, false, false,
     "How an ipc:// bus endpoint authenticates: peercred (the bus admits peers by their uid, "
     "no encryption) or curve (CurveZMQ as on tcp://, which always uses CURVE when keys are "
     "set). Set it alike on the bus and its clients.",
     s_ipc_auth_choices},
    {"bus.curve-server-key-file", CFG_STRING, NULL, 0, 0, false, false,
     "File holding the bus forwarder's CurveZMQ public key (public-key = \"Z85\"); set it to use "
     "CURVE (then --bus.curve-key-file is required).",
     NULL},
    {"bus.curve-key-file", CFG_STRING, NULL, 0, 0, false, false,
     "File holding this process's CurveZMQ key pair (public-key and secret-key lines, Z85; mode "
     "0600); its public key must be in the bus's allow-list.",
     NULL},
    {0},
};

const cfg_opt_t busopt_forwarder_options[] = {
    {"bus.ipc-auth", CFG_STRING, BUSOPT_IPC_PEERCRED, 0, 0, false, false,
     "How an ipc:// socket of the bus authenticates its peers: peercred (only the uids of "
     "--bus.ipc-allow-uids get in; no encryption) or curve (CurveZMQ with the allow-list, as "
     "tcp:// sockets always do when keys are set).",
     s_ipc_auth_choices},
    {"bus.ipc-allow-uids", CFG_LIST, NULL, 0, 0, false, false,
     "With --bus.ipc-auth=peercred: the uids allowed on the ipc:// sockets (comma-separated "
     "numbers); default: the bus's own effective uid.",
     NULL},
    {"bus.curve-key-file", CFG_STRING, NULL, 0, 0, false, false,
     "File holding the forwarder's CurveZMQ key pair (public-key and secret-key lines, Z85; mode "
     "0600); set it to require CURVE from every peer (then --bus.curve-allow-file is required).",
     NULL},
    {"bus.curve-allow-file", CFG_STRING, NULL, 0, 0, false, false,
     "File of the client public keys allowed on the bus, one Z85 key per line ('#' comments); "
     "any other peer is refused.",
     NULL},
    {0},
};

/* True for exactly BUS_CURVE_KEY_LEN characters of valid Z85. */
static bool s_z85_ok(const char *s, size_t n)
{
    uint8_t bin[BUS_CURVE_KEY_BYTES];
    char tmp[BUS_CURVE_KEY_LEN + 1];
    if (n != BUS_CURVE_KEY_LEN)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return zmq_z85_decode(bin, tmp) != NULL;
}

/* Trims spaces at both ends of [*p, *p + *n). */
static void s_trim(const char **p, size_t *n)
{
    while (*n && isspace((unsigned char)**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)(*p)[*n - 1]))
        (*n)--;
}

/* Line-by-line reader of a bounded file. */
typedef struct {
    FILE *f; /* the open file */
    const char *path; /* for messages */
    int line; /* current line number */
    size_t total; /* bytes read so far */
    char buf[BUSOPT_LINE_MAX + 2]; /* the current line */
} s_reader_t;

/* Opens path. Returns 0 or ERR_IO (in err). */
static int s_open(s_reader_t *r, const char *path, buf_t *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->f = fopen(path, "r");
    if (!r->f) {
        buf_printf(err, "%s: cannot read: %s", path, strerror(errno));
        return ERR_IO;
    }
    return 0;
}

/* Reads the next line into r->buf, without its newline, trimmed into (*p, *n), skipping blank
 * and comment lines. Returns 1 (a line), 0 (end of file) or ERR_TOOBIG (in err). */
static int s_next(s_reader_t *r, const char **p, size_t *n, buf_t *err)
{
    while (fgets(r->buf, sizeof r->buf, r->f)) {
        r->line++;
        size_t len = strlen(r->buf);
        r->total += len;
        if (r->total > BUSOPT_FILE_MAX) {
            buf_printf(err, "%s:%d: file longer than %d bytes", r->path, r->line, BUSOPT_FILE_MAX);
            return ERR_TOOBIG;
        }
        if (len > BUSOPT_LINE_MAX) {
            buf_printf(err, "%s:%d: line longer than %d bytes", r->path, r->line, BUSOPT_LINE_MAX);
            return ERR_TOOBIG;
        }
        *p = r->buf;
        *n = len;
        s_trim(p, n);
        if (*n == 0 || **p == '#')
            continue;
        return 1;
    }
    return 0;
}

int busopt_read_keys(const char *path, bool need_secret, char *pub, char *sec, buf_t *err)
{
    s_reader_t r;
    int rc = s_open(&r, path, err);
    if (rc != 0)
        return rc;
    pub[0] = '\0';
    if (sec)
        sec[0] = '\0';
    const char *p;
    size_t n;
    while ((rc = s_next(&r, &p, &n, err)) == 1) {
        const char *eq = memchr(p, '=', n);
        if (!eq) {
            if ((n == 8 && !memcmp(p, "metadata", 8)) || (n == 5 && !memcmp(p, "curve", 5)))
                continue; // zcert's sections
            buf_printf(err, "%s:%d: expected 'public-key = \"Z85\"' or 'secret-key = \"Z85\"'",
                       path, r.line);
            rc = ERR_INVAL;
            break;
        }
        const char *k = p, *v = eq + 1;
        size_t kn = (size_t)(eq - p), vn = n - kn - 1;
        s_trim(&k, &kn);
        s_trim(&v, &vn);
        if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
            v++;
            vn -= 2;
        }
        bool is_pub = kn == 10 && !memcmp(k, "public-key", 10);
        bool is_sec = kn == 10 && !memcmp(k, "secret-key", 10);
        if (!is_pub && !is_sec)
            continue; // zcert metadata
        if (!s_z85_ok(v, vn)) {
            buf_printf(err, "%s:%d: %.*s: must be exactly %d characters of Z85", path, r.line,
                       (int)kn, k, BUS_CURVE_KEY_LEN);
            rc = ERR_INVAL;
            break;
        }
        if (is_pub) {
            memcpy(pub, v, vn);
            pub[vn] = '\0';
        } else if (sec) {
            memcpy(sec, v, vn);
            sec[vn] = '\0';
        }
    }
    memset(r.buf, 0, sizeof r.buf);
    fclose(r.f);
    if (rc < 0)
        return rc;
    if (!pub[0] || (need_secret && !sec[0])) {
        buf_printf(err, "%s: no %s line", path, !pub[0] ? "public-key" : "secret-key");
        return ERR_INVAL;
    }
    if (need_secret) {
        char derived[BUS_CURVE_KEY_LEN + 1];
        if (zmq_curve_public(derived, sec) != 0 || strcmp(derived, pub) != 0) {
            buf_printf(err, "%s: public-key is not the public key of secret-key", path);
            return ERR_INVAL;
        }
    }
    return 0;
}

int busopt_read_allow(const char *path, busopt_keys_t *keys, buf_t *err)
{
    s_reader_t r;
    int rc = s_open(&r, path, err);
    if (rc != 0)
        return rc;
    size_t cap = 16;
    keys->allow = calloc(cap, sizeof *keys->allow);
    keys->n_allow = 0;
    if (!keys->allow)
        rc = ERR_NOMEM;
    const char *p;
    size_t n;
    while (rc == 0 && (rc = s_next(&r, &p, &n, err)) == 1) {
        rc = 0;
        if (!s_z85_ok(p, n)) {
            buf_printf(err, "%s:%d: must be one public key of exactly %d Z85 characters", path,
                       r.line, BUS_CURVE_KEY_LEN);
            rc = ERR_INVAL;
        } else if (keys->n_allow >= BUS_ALLOW_MAX) {
            buf_printf(err, "%s:%d: more than %d keys", path, r.line, BUS_ALLOW_MAX);
            rc = ERR_TOOBIG;
        } else if (keys->n_allow == cap) {
            void *grown = realloc(keys->allow, 2 * cap * sizeof *keys->allow);
            rc = grown ? 0 : ERR_NOMEM;
            if (grown) {
                keys->allow = grown;
                cap *= 2;
            }
        }
        if (rc == 0) {
            memcpy(keys->allow[keys->n_allow], p, n);
            keys->allow[keys->n_allow++][n] = '\0';
        }
    }
    fclose(r.f);
    if (rc == 0 && keys->n_allow == 0) {
        buf_printf(err, "%s: no key (at least one client public key is needed)", path);
        rc = ERR_INVAL;
    }
    if (rc == 0) {
        keys->allow_ptrs = calloc(keys->n_allow, sizeof *keys->allow_ptrs);
        if (!keys->allow_ptrs)
            rc = ERR_NOMEM;
        for (size_t i = 0; rc == 0 && i < keys->n_allow; i++)
            keys->allow_ptrs[i] = keys->allow[i];
    }
    return rc < 0 ? rc : 0;
}

void busopt_keys_clear(busopt_keys_t *keys)
{
    if (!keys)
        return;
    free(keys->allow);
    free(keys->allow_ptrs);
    volatile char *s = keys->secret_key;
    for (size_t i = 0; i < sizeof keys->secret_key; i++)
        s[i] = 0;
    memset(keys, 0, sizeof *keys);
}

/* Sets o->ipc_auth from bus.ipc-auth (validated by cfg's choices). */
static void s_ipc_auth(const cfg_t *cfg, bus_options_t *o)
{
    const char *mode = cfg_str(cfg, "bus.ipc-auth");
    o->ipc_auth = mode && strcmp(mode, BUSOPT_IPC_CURVE) == 0 ? BUS_IPC_CURVE : BUS_IPC_PEERCRED;
}

int busopt_parse_uids(const char *const *items, size_t n, uint32_t *uids, size_t *n_out, buf_t *err)
{
    *n_out = 0;
    if (n > BUS_IPC_UIDS_MAX) {
        buf_printf(err, "bus.ipc-allow-uids: at most %d uids", BUS_IPC_UIDS_MAX);
        return ERR_TOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = items[i];
        uint64_t v = 0;
        size_t len = strlen(p);
        bool ok = len > 0 && len <= 10;
        for (size_t j = 0; ok && j < len; j++) {
            ok = p[j] >= '0' && p[j] <= '9';
            v = v * 10 + (uint64_t)(p[j] - '0');
        }
        if (!ok || v >= UINT32_MAX) { // (uid_t)-1 is "no uid"
            buf_printf(err, "bus.ipc-allow-uids: '%.32s': must be a uid, a number 0..%u", p,
                       UINT32_MAX - 1);
            return ERR_INVAL;
        }
        uids[(*n_out)++] = (uint32_t)v;
    }
    return 0;
}

int busopt_client(const cfg_t *cfg, busopt_keys_t *keys, bus_options_t *o, buf_t *err)
{
    memset(keys, 0, sizeof *keys);
    s_ipc_auth(cfg, o);
    const char *server = cfg_str(cfg, "bus.curve-server-key-file");
    const char *pair = cfg_str(cfg, "bus.curve-key-file");
    if (!server && !pair)
        return 0;
    if (!server || !pair) {
        buf_printf(err,
                   "%s is set but %s is not: a CURVE client needs the bus's public key and "
                   "its own key pair (listed in the bus's allow-list)",
                   server ? "bus.curve-server-key-file" : "bus.curve-key-file",
                   server ? "bus.curve-key-file" : "bus.curve-server-key-file");
        return ERR_INVAL;
    }
    int rc = busopt_read_keys(server, false, keys->server_key, NULL, err);
    if (rc == 0)
        rc = busopt_read_keys(pair, true, keys->public_key, keys->secret_key, err);
    if (rc != 0) {
        busopt_keys_clear(keys);
        return rc;
    }
    o->curve_server_key = keys->server_key;
    o->curve_public_key = keys->public_key;
    o->curve_secret_key = keys->secret_key;
    return 0;
}

int busopt_forwarder(const cfg_t *cfg, busopt_keys_t *keys, bus_options_t *o, buf_t *err)
{
    memset(keys, 0, sizeof *keys);
    s_ipc_auth(cfg, o);
    size_t nitems = 0;
    const char *const *items = cfg_list(cfg, "bus.ipc-allow-uids", &nitems);
    if (items && nitems > 0) {
        if (o->ipc_auth != BUS_IPC_PEERCRED) {
            buf_printf(err, "bus.ipc-allow-uids is set but bus.ipc-auth is not peercred");
            return ERR_INVAL;
        }
        int rc = busopt_parse_uids(items, nitems, keys->uids, &keys->n_uids, err);
        if (rc != 0)
            return rc;
        o->ipc_uids = keys->uids;
        o->ipc_uids_n = keys->n_uids;
    }
    const char *pair = cfg_str(cfg, "bus.curve-key-file");
    const char *allow = cfg_str(cfg, "bus.curve-allow-file");
    if (!pair && !allow)
        return 0;
    if (!pair || !allow) {
        buf_printf(err,
                   "%s is set but %s is not: a CURVE forwarder needs its key pair and the "
                   "allow-list of its clients' public keys",
                   pair ? "bus.curve-key-file" : "bus.curve-allow-file",
                   pair ? "bus.curve-allow-file" : "bus.curve-key-file");
        return ERR_INVAL;
    }
    int rc = busopt_read_keys(pair, true, keys->public_key, keys->secret_key, err);
    if (rc == 0)
        rc = busopt_read_allow(allow, keys, err);
    if (rc != 0) {
        busopt_keys_clear(keys);
        return rc;
    }
    o->curve_secret_key = keys->secret_key;
    o->curve_allow = keys->allow_ptrs;
    o->curve_allow_n = keys->n_allow;
    return 0;
}

/* Writes `text` to path atomically (a temporary file renamed over it) with `mode`. Returns 0
 * or ERR_IO (errno kept). */

int busopt_write_keys(const char *path, const char *who, const char *pub, const char *sec)
{
    buf_t text;
    buf_init(&text, BUSOPT_FILE_MAX);
    int rc =
        buf_printf(&text, "# rayfleet CURVE %s of %s (ZeroMQ Z85)%s\npublic-key = \"%s\"\n",
                   sec ? "key pair" : "public key", who, sec ? "; keep this file 0600" : "", pub);
    if (rc >= 0 && sec)
        rc = buf_printf(&text, "secret-key = \"%s\"\n", sec);
    rc = rc < 0 ? ERR_IO : privfs_write_atomic(path, buf_str(&text), text.len, PRIVFS_FILE_MODE);
    volatile char *wipe = text.data;
    for (size_t i = 0; wipe && i < text.len; i++)
        wipe[i] = 0;
    buf_free(&text);
    return rc;
}

int busopt_write_allow(const char *path, const char *const *names, const char *const *keys,
                       size_t n)
{
    buf_t text;
    buf_init(&text, BUSOPT_FILE_MAX);
    int rc = buf_puts(&text, "# rayfleet bus allow-list: the CURVE public keys of the clients\n");
    for (size_t i = 0; rc >= 0 && i < n; i++)
        rc = buf_printf(&text, "# %s\n%s\n", names[i], keys[i]);
    rc = rc < 0 ? ERR_IO : privfs_write_atomic(path, buf_str(&text), text.len, PRIVFS_FILE_MODE);
    buf_free(&text);
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* Writes text to path. */
static void s_put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

int busopt_test(bool verbose)
{
    int failed = 0;
    char dir[] = "/tmp/rfbusopt.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char pairf[256], pubf[256], allowf[256], bad[256];
    snprintf(pairf, sizeof pairf, "%s/w.key", dir);
    snprintf(pubf, sizeof pubf, "%s/bus.pub", dir);
    snprintf(allowf, sizeof allowf, "%s/allow", dir);
    snprintf(bad, sizeof bad, "%s/bad", dir);
    char pub[41], sec[41], spub[41], ssec[41], rp[41], rs[41];
    CHECK(zmq_curve_keypair(pub, sec) == 0 && zmq_curve_keypair(spub, ssec) == 0);
    buf_t err;
    buf_init(&err, 1024);

    /* a written pair reads back; every key file is 0600 (a state file, privfs.h) */
    CHECK(busopt_write_keys(pairf, "watcher", pub, sec) == 0);
    CHECK(busopt_write_keys(pubf, "bus", spub, NULL) == 0);
    struct stat st;
    CHECK(stat(pairf, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(stat(pubf, &st) == 0 && (st.st_mode & 0777) == PRIVFS_FILE_MODE);
    CHECK(busopt_read_keys(pairf, true, rp, rs, &err) == 0);
    CHECK(!strcmp(rp, pub) && !strcmp(rs, sec));
    CHECK(busopt_read_keys(pubf, false, rp, NULL, &err) == 0 && !strcmp(rp, spub));
    /* the public certificate has no secret */
    buf_reset(&err);
    CHECK(busopt_read_keys(pubf, true, rp, rs, &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), "no secret-key line") != NULL);

    /* a CZMQ zcert secret file is read too */
    char text[1024];
    snprintf(text, sizeof text,
             "#   ****  Generated by CZMQ  ****\n\nmetadata\n    name = \"x\"\ncurve\n"
             "    public-key = \"%s\"\n    secret-key = \"%s\"\n",
             pub, sec);
    s_put(bad, text);
    CHECK(busopt_read_keys(bad, true, rp, rs, &err) == 0 && !strcmp(rp, pub));

    /* errors name file:line and the rule */
    buf_reset(&err);
    s_put(bad, "# c\npublic-key = \"short\"\n");
    CHECK(busopt_read_keys(bad, false, rp, NULL, &err) == ERR_INVAL);
    snprintf(text, sizeof text, "%s:2: public-key: must be exactly 40 characters of Z85", bad);
    CHECK(!strcmp(buf_str(&err), text));
    buf_reset(&err);
    snprintf(text, sizeof text, "public-key = \"%s\"\nsecret-key = \"%s\"\n", pub, ssec);
    s_put(bad, text);
    CHECK(busopt_read_keys(bad, true, rp, rs, &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), "is not the public key of secret-key") != NULL);
    buf_reset(&err);
    s_put(bad, "garbage\n");
    CHECK(busopt_read_keys(bad, false, rp, NULL, &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), ":1: expected") != NULL);
    buf_reset(&err);
    CHECK(busopt_read_keys("/nonexistent/x", false, rp, NULL, &err) == ERR_IO);

    /* the allow-list: written, read back; comments and blank lines; each key 40 Z85 characters */
    busopt_keys_t k = {0};
    const char *names[] = {"watcher", "scheduler"};
    const char *pubs[] = {pub, spub};
    CHECK(busopt_write_allow(allowf, names, pubs, 2) == 0);
    CHECK(stat(allowf, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(busopt_read_allow(allowf, &k, &err) == 0 && k.n_allow == 2);
    CHECK(!strcmp(k.allow_ptrs[0], pub) && !strcmp(k.allow_ptrs[1], spub));
    busopt_keys_clear(&k);
    snprintf(text, sizeof text, "# clients\n%s\n\n  %s  \n", pub, spub);
    s_put(allowf, text);
    CHECK(busopt_read_allow(allowf, &k, &err) == 0 && k.n_allow == 2);
    CHECK(!strcmp(k.allow_ptrs[0], pub) && !strcmp(k.allow_ptrs[1], spub));
    busopt_keys_clear(&k);
    buf_reset(&err);
    snprintf(text, sizeof text, "%s\n%sX\n", pub, spub);
    s_put(bad, text);
    CHECK(busopt_read_allow(bad, &k, &err) == ERR_INVAL);
    snprintf(text, sizeof text, "%s:2: must be one public key of exactly 40 Z85 characters", bad);
    CHECK(!strcmp(buf_str(&err), text));
    busopt_keys_clear(&k);
    buf_reset(&err);
    s_put(bad, "# none\n");
    CHECK(busopt_read_allow(bad, &k, &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), "no key") != NULL);
    busopt_keys_clear(&k);
    buf_reset(&err);
    s_put(bad, "ab\"cdefghijklmnopqrstuvwxyz0123456789ABC\n"); // '"' is not Z85
    CHECK(busopt_read_allow(bad, &k, &err) == ERR_INVAL);
    busopt_keys_clear(&k);
    /* a long line is refused, not cut */
    char longline[BUSOPT_LINE_MAX + 64];
    memset(longline, 'a', sizeof longline - 2);
    longline[sizeof longline - 2] = '\n';
    longline[sizeof longline - 1] = '\0';
    s_put(bad, longline);
    buf_reset(&err);
    CHECK(busopt_read_allow(bad, &k, &err) == ERR_TOOBIG);
    CHECK(strstr(buf_str(&err), ":1: line longer than") != NULL);
    busopt_keys_clear(&k);

    /* the options: none is no CURVE; half a client or half a forwarder is refused */
    cfg_t *cfg = NULL;
    bus_options_t o = {0};
    char a1[300], a2[300];
    snprintf(a1, sizeof a1, "--bus.curve-server-key-file=%s", pubf);
    snprintf(a2, sizeof a2, "--bus.curve-key-file=%s", pairf);
    char *argv_full[] = {"t", a1, a2, NULL};
    CHECK(cfg_load(busopt_client_options, 3, argv_full, &cfg, NULL) == 0);
    CHECK(cfg && busopt_client(cfg, &k, &o, &err) == 0);
    CHECK(o.curve_server_key && !strcmp(o.curve_server_key, spub));
    CHECK(o.curve_public_key && !strcmp(o.curve_public_key, pub));
    CHECK(o.curve_secret_key && !strcmp(o.curve_secret_key, sec));
    busopt_keys_clear(&k);
    cfg_destroy(&cfg);
    char *argv_half[] = {"t", a1, NULL};
    CHECK(cfg_load(busopt_client_options, 2, argv_half, &cfg, NULL) == 0);
    buf_reset(&err);
    CHECK(cfg && busopt_client(cfg, &k, &o, &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), "bus.curve-key-file is not") != NULL);
    cfg_destroy(&cfg);
    char *argv_none[] = {"t", NULL};
    CHECK(cfg_load(busopt_client_options, 1, argv_none, &cfg, NULL) == 0);
    o = (bus_options_t){0};
    CHECK(cfg && busopt_client(cfg, &k, &o, &err) == 0 && !o.curve_server_key);
    cfg_destroy(&cfg);
    char a3[300];
    snprintf(a3, sizeof a3, "--bus.curve-allow-file=%s", allowf);
    char *argv_fwd[] = {"t", a2, a3, NULL};
    CHECK(cfg_load(busopt_forwarder_options, 3, argv_fwd, &cfg, NULL) == 0);
    CHECK(cfg && busopt_forwarder(cfg, &k, &o, &err) == 0);
    CHECK(o.curve_allow_n == 2 && o.curve_secret_key && !strcmp(o.curve_secret_key, sec));
    busopt_keys_clear(&k);
    cfg_destroy(&cfg);
    char *argv_fwd_half[] = {"t", a2, NULL};
    CHECK(cfg_load(busopt_forwarder_options, 2, argv_fwd_half, &cfg, NULL) == 0);
    buf_reset(&err);
    CHECK(cfg && busopt_forwarder(cfg, &k, &o, &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), "bus.curve-allow-file is not") != NULL);
    cfg_destroy(&cfg);

    /* bus.ipc-auth: peercred by default, curve when asked; anything else refused by cfg */
    o = (bus_options_t){0};
    CHECK(cfg_load(busopt_client_options, 1, argv_none, &cfg, NULL) == 0);
    CHECK(cfg && busopt_client(cfg, &k, &o, &err) == 0 && o.ipc_auth == BUS_IPC_PEERCRED);
    cfg_destroy(&cfg);
    char *argv_curve[] = {"t", "--bus.ipc-auth=curve", NULL};
    CHECK(cfg_load(busopt_client_options, 2, argv_curve, &cfg, NULL) == 0);
    CHECK(cfg && busopt_client(cfg, &k, &o, &err) == 0 && o.ipc_auth == BUS_IPC_CURVE);
    cfg_destroy(&cfg);
    char *argv_odd[] = {"t", "--bus.ipc-auth=none", NULL};
    CHECK(cfg_load(busopt_client_options, 2, argv_odd, &cfg, NULL) != 0 && !cfg);
    /* bus.ipc-allow-uids: numbers, at most BUS_IPC_UIDS_MAX, only with peercred */
    char *argv_uids[] = {"t", "--bus.ipc-allow-uids=0, 1000", NULL};
    CHECK(cfg_load(busopt_forwarder_options, 2, argv_uids, &cfg, NULL) == 0);
    o = (bus_options_t){0};
    CHECK(cfg && busopt_forwarder(cfg, &k, &o, &err) == 0);
    CHECK(o.ipc_auth == BUS_IPC_PEERCRED && o.ipc_uids_n == 2 && o.ipc_uids[0] == 0 &&
          o.ipc_uids[1] == 1000);
    busopt_keys_clear(&k);
    cfg_destroy(&cfg);
    char *argv_baduid[] = {"t", "--bus.ipc-allow-uids=1000,nobody", NULL};
    CHECK(cfg_load(busopt_forwarder_options, 2, argv_baduid, &cfg, NULL) == 0);
    buf_reset(&err);
    CHECK(cfg && busopt_forwarder(cfg, &k, &o, &err) == ERR_INVAL);
    CHECK(!strcmp(buf_str(&err), "bus.ipc-allow-uids: 'nobody': must be a uid, a number "
                                 "0..4294967294"));
    cfg_destroy(&cfg);
    char *argv_uidcurve[] = {"t", "--bus.ipc-allow-uids=1000", "--bus.ipc-auth=curve", NULL};
    CHECK(cfg_load(busopt_forwarder_options, 3, argv_uidcurve, &cfg, NULL) == 0);
    buf_reset(&err);
    CHECK(cfg && busopt_forwarder(cfg, &k, &o, &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), "bus.ipc-auth is not peercred") != NULL);
    cfg_destroy(&cfg);
    uint32_t uids[BUS_IPC_UIDS_MAX];
    size_t nu = 0;
    const char *many[BUS_IPC_UIDS_MAX + 1];
    for (size_t i = 0; i <= BUS_IPC_UIDS_MAX; i++)
        many[i] = "7";
    buf_reset(&err);
    CHECK(busopt_parse_uids(many, BUS_IPC_UIDS_MAX + 1, uids, &nu, &err) == ERR_TOOBIG);
    CHECK(busopt_parse_uids(many, BUS_IPC_UIDS_MAX, uids, &nu, &err) == 0 &&
          nu == BUS_IPC_UIDS_MAX);
    const char *huge[] = {"4294967295"};
    CHECK(busopt_parse_uids(huge, 1, uids, &nu, &err) == ERR_INVAL);

    unlink(pairf);
    unlink(pubf);
    unlink(allowf);
    unlink(bad);
    rmdir(dir);
    buf_free(&err);
    return SELFTEST_RESULT("busopt", verbose);
}

#endif /* RF_SELFTEST */
