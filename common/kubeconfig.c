/*
 * kubeconfig: kubeconfig files, in-cluster configuration and exec credential plugins. See
 * kubeconfig.h.
 */
#include "kubeconfig.h"

#include "err.h"
#include "json.h"
#include "log.h"
#include "rftime.h"
#include "yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---------- small helpers ---------- */

static void s_wipe_free(void *p, size_t n)
{
    if (!p)
        return;
    volatile unsigned char *v = p;
    for (size_t i = 0; i < n; i++)
        v[i] = 0;
    free(p);
}

static void s_wipe_str(char *s)
{
    if (s)
        s_wipe_free(s, strlen(s));
}

static void s_free_list(char **l)
{
    if (!l)
        return;
    for (char **p = l; *p; p++)
        free(*p);
    free(l);
}

/* Reads a whole file (at most `max` bytes) into a new NUL-terminated buffer. */
static int s_read_file(const char *path, size_t max, unsigned char **out, size_t *len_out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ERR_IO;
    buf_t b;
    buf_init(&b, max);
    char chunk[4096];
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ERR_IO;
            break;
        }
        if (n == 0)
            break;
        rc = buf_append(&b, chunk, (size_t)n);
        if (rc)
            break;
    }
    close(fd);
    if (rc) {
        s_wipe_free(b.data, b.cap);
        return rc;
    }
    size_t len = 0;
    char *d = buf_take(&b, &len);
    if (!d)
        return ERR_NOMEM;
    *out = (unsigned char *)d;
    if (len_out)
        *len_out = len;
    return 0;
}

/* path joined to dir when relative; new string or NULL. */
static char *s_resolve(const char *dir, const char *path)
{
    if (path[0] == '/' || !dir || !*dir)
        return strdup(path);
    buf_t b;
    buf_init(&b, PATH_MAX);
    if (buf_printf(&b, "%s/%s", dir, path)) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

int kubeconfig_base64_decode(const char *in, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    size_t n = strlen(in);
    unsigned char *o = malloc(n / 4 * 3 + 4);
    if (!o)
        return ERR_NOMEM;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=') {
            pad++;
            continue;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        else
            goto bad;
        if (pad)
            goto bad; /* data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    if (bits >= 6 || pad > 2)
        goto bad;
    o[k] = 0;
    *out = o;
    *out_len = k;
    return 0;
bad:
    s_wipe_free(o, n / 4 * 3 + 4);
    return ERR_PARSE;
}

void kubeconfig_destroy(kubeconfig_t **kc_p)
{
    if (!kc_p || !*kc_p)
        return;
    kubeconfig_t *kc = *kc_p;
    free(kc->source);
    free(kc->context);
    free(kc->server);
    free(kc->namespace_);
    free(kc->ca_file);
    free(kc->ca_data);
    free(kc->cert_file);
    free(kc->cert_data);
    free(kc->key_file);
    s_wipe_free(kc->key_data, kc->key_data_len);
    s_wipe_str(kc->token);
    free(kc->token_file);
    if (kc->exec) {
        free(kc->exec->api_version);
        free(kc->exec->command);
        s_free_list(kc->exec->args);
        s_free_list(kc->exec->env);
        free(kc->exec);
    }
    free(kc);
    *kc_p = NULL;
}

void kubeconfig_tls(const kubeconfig_t *kc, http_tls_t *tls)
{
    memset(tls, 0, sizeof(*tls));
    tls->ca_file = kc->ca_file;
    tls->ca_data = kc->ca_data;
    tls->ca_data_len = kc->ca_data_len;
    tls->cert_file = kc->cert_file;
    tls->cert_data = kc->cert_data;
    tls->cert_data_len = kc->cert_data_len;
    tls->key_file = kc->key_file;
    tls->key_data = kc->key_data;
    tls->key_data_len = kc->key_data_len;
    tls->insecure_skip_verify = kc->insecure_skip_verify;
}

/* ---------- file loading ---------- */

typedef struct {
    const char *file; /* for messages */
    char *dir; /* directory for relative paths */
    buf_t *err;
} s_ctx_t;

static int s_fail(s_ctx_t *c, int rc, const char *field, const char *what)
{
    if (c->err)
        buf_printf(c->err, "kubeconfig %s: %s: %s", c->file, field, what);
    return rc;
}

/* Finds the element of array `key` whose "name" is `name`; sets *index. */
static json_t *s_find_named(json_t *root, const char *key, const char *name, size_t *index)
{
    json_t *arr = json_object_get(root, key);
    size_t i;
    json_t *e;
    if (!json_is_array(arr))
        return NULL;
    json_array_foreach(arr, i, e)
    {
        if (json_is_string(json_object_get(e, "name")) &&
            strcmp(json_string_value(json_object_get(e, "name")), name) == 0) {
            *index = i;
            return e;
        }
    }
    return NULL;
}

/* A string field: 0 and *out (borrowed or NULL when absent), or ERR_PARSE when not a string. */
static int s_str(s_ctx_t *c, json_t *obj, const char *key, const char *prefix, const char **out)
{
    *out = NULL;
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        char f[256];
        // A field path longer than f is cut; the message still names its start.
        if (snprintf(f, sizeof(f), "%s.%s", prefix, key) >= (int)sizeof(f))
            f[sizeof(f) - 1] = '\0';
        return s_fail(c, ERR_PARSE, f, "not a string");
    }
    *out = json_string_value(v);
    return 0;
}

/* A file-or-data pair: reads data (base64) or checks the file is readable and stores its path. */
static int s_file_or_data(s_ctx_t *c, json_t *obj, const char *prefix, const char *file_key,
                          const char *data_key, char **file_out, unsigned char **data_out,
                          size_t *len_out)
{
    const char *file, *data;
    int rc = s_str(c, obj, file_key, prefix, &file);
    if (!rc)
        rc = s_str(c, obj, data_key, prefix, &data);
    if (rc)
        return rc;
    char f[256];
    if (data && *data) {
        snprintf(f, sizeof(f), "%s.%s", prefix, data_key);
        rc = kubeconfig_base64_decode(data, data_out, len_out);
        if (rc == ERR_NOMEM)
            return s_fail(c, rc, f, "out of memory");
        if (rc)
            return s_fail(c, rc, f, "not valid base64");
        return 0;
    }
    if (file && *file) {
        snprintf(f, sizeof(f), "%s.%s", prefix, file_key);
        *file_out = s_resolve(c->dir, file);
        if (!*file_out)
            return s_fail(c, ERR_NOMEM, f, "out of memory");
        if (access(*file_out, R_OK) != 0)
            return s_fail(c, ERR_IO, f, "file not readable");
    }
    return 0;
}

static char **s_str_list(size_t n)
{
    return calloc(n + 1, sizeof(char *));
}

static int s_parse_exec(s_ctx_t *c, json_t *ex, const char *prefix, kubeconfig_t *kc)
{
    char f[256];
    if (!json_is_object(ex)) {
        snprintf(f, sizeof(f), "%s.exec", prefix);
        return s_fail(c, ERR_PARSE, f, "not a mapping");
    }
    snprintf(f, sizeof(f), "%s.exec", prefix);
    const char *cmd, *api;
    int rc = s_str(c, ex, "command", f, &cmd);
    if (!rc)
        rc = s_str(c, ex, "apiVersion", f, &api);
    if (rc)
        return rc;
    char ff[300];
    if (!cmd || !*cmd) {
        snprintf(ff, sizeof(ff), "%s.command", f);
        return s_fail(c, ERR_INVAL, ff, "missing");
    }
    if (!api || (strcmp(api, "client.authentication.k8s.io/v1") != 0 &&
                 strcmp(api, "client.authentication.k8s.io/v1beta1") != 0)) {
        snprintf(ff, sizeof(ff), "%s.apiVersion", f);
        return s_fail(
            c, ERR_INVAL, ff,
            "must be client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1");
    }
    kubeconfig_exec_t *e = calloc(1, sizeof(*e));
    if (!e)
        return ERR_NOMEM;
    kc->exec = e;
    e->api_version = strdup(api);
    /* A command with a '/' that is relative resolves against the kubeconfig's directory. */
    e->command = (strchr(cmd, '/') && cmd[0] != '/') ? s_resolve(c->dir, cmd) : strdup(cmd);
    json_t *args = json_object_get(ex, "args");
    json_t *env = json_object_get(ex, "env");
    size_t na = json_is_array(args) ? json_array_size(args) : 0;
    size_t ne = json_is_array(env) ? json_array_size(env) : 0;
    e->args = s_str_list(na);
    e->env = s_str_list(ne);
    if (!e->api_version || !e->command || !e->args || !e->env)
        return s_fail(c, ERR_NOMEM, f, "out of memory");
    if (na > KUBECONFIG_EXEC_MAX_ARGS || ne > KUBECONFIG_EXEC_MAX_ARGS)
        return s_fail(c, ERR_TOOBIG, f, "too many args or env entries");
    if ((args && !json_is_null(args) && !json_is_array(args)) ||
        (env && !json_is_null(env) && !json_is_array(env)))
        return s_fail(c, ERR_PARSE, f, "args and env must be sequences");
    for (size_t i = 0; i < na; i++) {
        json_t *a = json_array_get(args, i);
        if (!json_is_string(a)) {
            snprintf(ff, sizeof(ff), "%s.args[%zu]", f, i);
            return s_fail(c, ERR_PARSE, ff, "not a string");
        }
        if (!(e->args[i] = strdup(json_string_value(a))))
            return ERR_NOMEM;
    }
    for (size_t i = 0; i < ne; i++) {
        json_t *v = json_array_get(env, i);
        const char *name = jx_str(v, "name", NULL), *value = jx_str(v, "value", NULL);
        if (!name || !value || !*name || strchr(name, '=')) {
            snprintf(ff, sizeof(ff), "%s.env[%zu]", f, i);
            return s_fail(c, ERR_PARSE, ff, "needs string name and value");
        }
        buf_t b;
        buf_init(&b, 1 << 20);
        if (buf_printf(&b, "%s=%s", name, value)) {
            buf_free(&b);
            return ERR_NOMEM;
        }
        e->env[i] = buf_take(&b, NULL);
        if (!e->env[i])
            return ERR_NOMEM;
    }
    return 0;
}

static int s_load_tree(s_ctx_t *c, json_t *root, const char *context, kubeconfig_t *kc)
{
    if (!json_is_object(root))
        return s_fail(c, ERR_PARSE, "(root)", "not a mapping");
    const char *ctxname = context;
    if (!ctxname) {
        int rc = s_str(c, root, "current-context", "", &ctxname);
        if (rc)
            return rc;
        if (!ctxname || !*ctxname)
            return s_fail(c, ERR_NOTFOUND, "current-context", "not set and no context given");
    }
    size_t ci = 0, li = 0, ui = 0;
    json_t *ctx = s_find_named(root, "contexts", ctxname, &ci);
    if (!ctx) {
        char f[300];
        snprintf(f, sizeof(f), "contexts[name=%s]", ctxname);
        return s_fail(c, ERR_NOTFOUND, f, "no such context");
    }
    char pfx[128];
    snprintf(pfx, sizeof(pfx), "contexts[%zu].context", ci);
    json_t *cx = json_object_get(ctx, "context");
    const char *cluster_name, *user_name, *ns;
    int rc = s_str(c, cx, "cluster", pfx, &cluster_name);
    if (!rc)
        rc = s_str(c, cx, "user", pfx, &user_name);
    if (!rc)
        rc = s_str(c, cx, "namespace", pfx, &ns);
    if (rc)
        return rc;
    if (!cluster_name) {
        char f[160];
        snprintf(f, sizeof(f), "%s.cluster", pfx);
        return s_fail(c, ERR_NOTFOUND, f, "missing");
    }
    kc->context = strdup(ctxname);
    kc->namespace_ = strdup(ns && *ns ? ns : "default");
    if (!kc->context || !kc->namespace_)
        return ERR_NOMEM;

    json_t *cl = s_find_named(root, "clusters", cluster_name, &li);
    if (!cl) {
        char f[300];
        snprintf(f, sizeof(f), "clusters[name=%s]", cluster_name);
        return s_fail(c, ERR_NOTFOUND, f, "no such cluster");
    }
    snprintf(pfx, sizeof(pfx), "clusters[%zu].cluster", li);
    json_t *cv = json_object_get(cl, "cluster");
    if (!json_is_object(cv))
        return s_fail(c, ERR_PARSE, pfx, "not a mapping");
    const char *server, *sni;
    rc = s_str(c, cv, "server", pfx, &server);
    if (!rc)
        rc = s_str(c, cv, "tls-server-name", pfx, &sni);
    if (rc)
        return rc;
    char f[300];
    if (!server || !*server) {
        snprintf(f, sizeof(f), "%s.server", pfx);
        return s_fail(c, ERR_INVAL, f, "missing");
    }
    if (strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0) {
        snprintf(f, sizeof(f), "%s.server", pfx);
        return s_fail(c, ERR_INVAL, f, "must start with http:// or https://");
    }
    if (sni && *sni) {
        snprintf(f, sizeof(f), "%s.tls-server-name", pfx);
        return s_fail(c, ERR_INVAL, f, "not supported by rayfleet's HTTP client");
    }
    kc->server = strdup(server);
    if (!kc->server)
        return ERR_NOMEM;
    size_t sl = strlen(kc->server);
    while (sl > 0 && kc->server[sl - 1] == '/')
        kc->server[--sl] = 0;
    json_t *ins = json_object_get(cv, "insecure-skip-tls-verify");
    if (ins && !json_is_boolean(ins) && !json_is_null(ins)) {
        snprintf(f, sizeof(f), "%s.insecure-skip-tls-verify", pfx);
        return s_fail(c, ERR_PARSE, f, "not a boolean");
    }
    kc->insecure_skip_verify = json_is_true(ins);
    rc = s_file_or_data(c, cv, pfx, "certificate-authority", "certificate-authority-data",
                        &kc->ca_file, &kc->ca_data, &kc->ca_data_len);
    if (rc)
        return rc;

    if (!user_name)
        return 0; /* no user: anonymous */
    json_t *us = s_find_named(root, "users", user_name, &ui);
    if (!us) {
        snprintf(f, sizeof(f), "users[name=%s]", user_name);
        return s_fail(c, ERR_NOTFOUND, f, "no such user");
    }
    snprintf(pfx, sizeof(pfx), "users[%zu].user", ui);
    json_t *uv = json_object_get(us, "user");
    if (!uv || json_is_null(uv))
        return 0;
    if (!json_is_object(uv))
        return s_fail(c, ERR_PARSE, pfx, "not a mapping");
    if (json_object_get(uv, "auth-provider")) {
        snprintf(f, sizeof(f), "%s.auth-provider", pfx);
        return s_fail(c, ERR_INVAL, f, "not supported (use an exec plugin)");
    }
    const char *token, *token_file;
    rc = s_str(c, uv, "token", pfx, &token);
    if (!rc)
        rc = s_str(c, uv, "tokenFile", pfx, &token_file);
    if (rc)
        return rc;
    if (token && *token) {
        if (!(kc->token = strdup(token)))
            return ERR_NOMEM;
    } else if (token_file && *token_file) {
        snprintf(f, sizeof(f), "%s.tokenFile", pfx);
        kc->token_file = s_resolve(c->dir, token_file);
        if (!kc->token_file)
            return ERR_NOMEM;
        if (access(kc->token_file, R_OK) != 0)
            return s_fail(c, ERR_IO, f, "file not readable");
    }
    rc = s_file_or_data(c, uv, pfx, "client-certificate", "client-certificate-data", &kc->cert_file,
                        &kc->cert_data, &kc->cert_data_len);
    if (!rc)
        rc = s_file_or_data(c, uv, pfx, "client-key", "client-key-data", &kc->key_file,
                            &kc->key_data, &kc->key_data_len);
    if (rc)
        return rc;
    bool has_cert = kc->cert_file || kc->cert_data, has_key = kc->key_file || kc->key_data;
    if (has_cert != has_key) {
        snprintf(f, sizeof(f), "%s.%s", pfx, has_cert ? "client-key" : "client-certificate");
        return s_fail(c, ERR_INVAL, f, "missing (certificate and key go together)");
    }
    json_t *ex = json_object_get(uv, "exec");
    if (ex && !json_is_null(ex))
        return s_parse_exec(c, ex, pfx, kc);
    return 0;
}

int kubeconfig_load_buf(const char *data, size_t len, const char *path, const char *context,
                        kubeconfig_t **out, buf_t *err)
{
    *out = NULL;
    const char *name = path ? path : "<input>";
    s_ctx_t c = {.file = name, .err = err};
    kubeconfig_t *kc = calloc(1, sizeof(*kc));
    json_t *docs = NULL;
    int rc = ERR_NOMEM;
    if (!kc)
        return ERR_NOMEM;
    if (path) {
        const char *slash = strrchr(path, '/');
        c.dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
        if (slash == path) { /* "/config" */
            free(c.dir);
            c.dir = strdup("/");
        }
    } else {
        c.dir = strdup(".");
    }
    kc->source = strdup(name);
    if (!c.dir || !kc->source)
        goto out;
    buf_t yerr;
    buf_init(&yerr, 4096);
    rc = yaml_load_buf(data, len, name, &docs, &yerr);
    if (rc) {
        if (err)
            buf_printf(err, "kubeconfig %s: %s", name, buf_str(&yerr));
        buf_free(&yerr);
        goto out;
    }
    buf_free(&yerr);
    if (json_array_size(docs) != 1) {
        rc = s_fail(&c, ERR_PARSE, "(root)", "expected exactly one YAML document");
        goto out;
    }
    rc = s_load_tree(&c, json_array_get(docs, 0), context, kc);
out:
    json_decref(docs);
    free(c.dir);
    if (rc)
        kubeconfig_destroy(&kc);
    *out = kc;
    return rc;
}

int kubeconfig_load(const char *path, const char *context, kubeconfig_t **out, buf_t *err)
{
    *out = NULL;
    char fallback[PATH_MAX];
    if (!path) {
        const char *env = getenv("KUBECONFIG");
        if (env && *env) {
            size_t n = strcspn(env, ":");
            if (n >= sizeof(fallback))
                return ERR_TOOBIG;
            memcpy(fallback, env, n);
            fallback[n] = 0;
        } else {
            const char *home = getenv("HOME");
            if (!home)
                home = "";
            if ((size_t)snprintf(fallback, sizeof(fallback), "%s/.kube/config", home) >=
                sizeof(fallback))
                return ERR_TOOBIG;
        }
        path = fallback;
    }
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = s_read_file(path, KUBECONFIG_MAX_FILE, &data, &len);
    if (rc) {
        if (err)
            buf_printf(err, "kubeconfig %s: %s", path,
                       rc == ERR_TOOBIG ? "file too large" : "file not readable");
        return rc;
    }
    rc = kubeconfig_load_buf((const char *)data, len, path, context, out, err);
    s_wipe_free(data, len);
    return rc;
}

int kubeconfig_in_cluster(const char *sa_dir, kubeconfig_t **out, buf_t *err)
{
    *out = NULL;
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        if (err)
            buf_puts(err, "in-cluster: KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT not set");
        return ERR_NOTFOUND;
    }
    if (!sa_dir) {
        sa_dir = getenv(KUBECONFIG_SA_DIR_ENV);
        if (!sa_dir || !*sa_dir)
            sa_dir = KUBECONFIG_SA_DIR;
    }
    kubeconfig_t *kc = calloc(1, sizeof(*kc));
    if (!kc)
        return ERR_NOMEM;
    int rc = ERR_NOMEM;
    buf_t b;
    buf_init(&b, PATH_MAX);
    bool v6 = strchr(host, ':') != NULL;
    if (buf_printf(&b, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port))
        goto out;
    kc->server = buf_take(&b, NULL);
    kc->source = strdup("in-cluster");
    kc->token_file = s_resolve(sa_dir, "token");
    kc->ca_file = s_resolve(sa_dir, "ca.crt");
    if (!kc->server || !kc->source || !kc->token_file || !kc->ca_file)
        goto out;
    if (access(kc->token_file, R_OK) != 0) {
        if (err)
            buf_printf(err, "in-cluster: %s: file not readable", kc->token_file);
        rc = ERR_IO;
        goto out;
    }
    if (access(kc->ca_file, R_OK) != 0) {
        if (err)
            buf_printf(err, "in-cluster: %s: file not readable", kc->ca_file);
        rc = ERR_IO;
        goto out;
    }
    char *nsf = s_resolve(sa_dir, "namespace");
    if (!nsf)
        goto out;
    unsigned char *ns = NULL;
    size_t nl = 0;
    const char *pod_ns = getenv("POD_NAMESPACE");
    if (pod_ns && *pod_ns) {
        kc->namespace_ = strdup(pod_ns);
    } else if (s_read_file(nsf, 256, &ns, &nl) == 0) {
        while (nl > 0 && (ns[nl - 1] == '\n' || ns[nl - 1] == ' ' || ns[nl - 1] == '\r'))
            ns[--nl] = 0;
        kc->namespace_ = nl ? strdup((char *)ns) : strdup("default");
        free(ns);
    } else {
        kc->namespace_ = strdup("default");
    }
    free(nsf);
    if (!kc->namespace_)
        goto out;
    rc = 0;
out:
    buf_free(&b);
    if (rc)
        kubeconfig_destroy(&kc);
    *out = kc;
    return rc;
}

/* ---------- ExecCredential ---------- */

void kubeconfig_cred_free(kubeconfig_cred_t *cred)
{
    if (!cred)
        return;
    s_wipe_str(cred->token);
    free(cred->cert_data);
    s_wipe_str(cred->key_data);
    memset(cred, 0, sizeof(*cred));
}

int kubeconfig_cred_parse(const char *json, size_t len, kubeconfig_cred_t *cred, buf_t *err)
{
    memset(cred, 0, sizeof(*cred));
    json_t *root = NULL;
    buf_t perr;
    buf_init(&perr, 1024);
    int rc = jx_parse(json, len, "ExecCredential", &root, &perr);
    if (rc) {
        if (err)
            buf_printf(err, "exec plugin output: %s", buf_str(&perr));
        buf_free(&perr);
        return rc == ERR_NOMEM ? rc : ERR_PARSE;
    }
    buf_free(&perr);
    const char *kind = jx_str(root, "kind", "");
    const char *api = jx_str(root, "apiVersion", "");
    const char *tok = jx_str(root, "status.token", NULL);
    const char *cert = jx_str(root, "status.clientCertificateData", NULL);
    const char *key = jx_str(root, "status.clientKeyData", NULL);
    const char *exp = jx_str(root, "status.expirationTimestamp", NULL);
    rc = ERR_PARSE;
    if (strcmp(kind, "ExecCredential") != 0 ||
        strncmp(api, "client.authentication.k8s.io/", 29) != 0) {
        if (err)
            buf_puts(err, "exec plugin output: not a client.authentication.k8s.io ExecCredential");
        goto out;
    }
    if (!(tok && *tok) && !(cert && *cert && key && *key)) {
        if (err)
            buf_puts(err, "exec plugin output: status has neither token nor "
                          "clientCertificateData+clientKeyData");
        goto out;
    }
    if (exp && *exp && rftime_parse_sec(exp, &cred->expires_unix)) {
        if (err)
            buf_puts(err, "exec plugin output: status.expirationTimestamp: not RFC 3339");
        goto out;
    }
    rc = ERR_NOMEM;
    if (tok && *tok && !(cred->token = strdup(tok)))
        goto out;
    if (cert && *cert && !(cred->cert_data = strdup(cert)))
        goto out;
    if (key && *key && !(cred->key_data = strdup(key)))
        goto out;
    rc = 0;
out:
    json_decref(root);
    if (rc)
        kubeconfig_cred_free(cred);
    return rc;
}

/* ---------- exec plugin runs ---------- */

struct kubeconfig_run {
    loop_t *loop; /* the loop watching the pipe */
    pid_t pid; /* the plugin, 0 once reaped */
    int fd; /* read end of its stdout, -1 once closed */
    int64_t timer; /* timeout or reap timer, 0 when none */
    bool reaping; /* the pipe closed: the timer polls waitpid */
    int64_t deadline; /* loop time the plugin must end by */
    buf_t out; /* stdout collected */
    kubeconfig_exec_fn *fn; /* completion callback */
    void *arg; /* its argument */
    int64_t finish_timer; /* timer that runs fn (so it never runs inside exec_run) */
    int result; /* err to report */
    char errtext[256]; /* message to report */
};

static void s_run_free(kubeconfig_run_t *r)
{
    if (r->fd >= 0) {
        loop_remove_fd(r->loop, r->fd);
        close(r->fd);
    }
    if (r->timer)
        loop_cancel_timer(r->loop, r->timer);
    if (r->finish_timer)
        loop_cancel_timer(r->loop, r->finish_timer);
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0); /* SIGKILLed: returns at once */
    }
    s_wipe_free(r->out.data, r->out.cap);
    free(r);
}

static void s_run_finish(kubeconfig_run_t *r, int status_ok)
{
    kubeconfig_cred_t cred;
    int rc = r->result;
    const char *text = r->errtext;
    buf_t e;
    buf_init(&e, 512);
    if (!rc && !status_ok) {
        rc = ERR_IO;
        text = "exec plugin exited with a failure status";
    }
    if (!rc) {
        rc = kubeconfig_cred_parse(buf_str(&r->out), r->out.len, &cred, &e);
        text = buf_str(&e);
    }
    kubeconfig_exec_fn *fn = r->fn;
    void *arg = r->arg;
    r->timer = 0; /* the caller's timer is ending */
    s_run_free(r);
    fn(arg, rc, rc ? NULL : &cred, rc ? text : "");
    if (!rc)
        kubeconfig_cred_free(&cred);
    buf_free(&e);
}

static int64_t s_run_timer(loop_t *loop, int64_t id, void *arg)
{
    kubeconfig_run_t *r = arg;
    if (r->reaping) {
        int st = 0;
        pid_t p = waitpid(r->pid, &st, WNOHANG);
        if (p == r->pid || (p < 0 && errno == ECHILD)) {
            bool ok = p == r->pid ? (WIFEXITED(st) && WEXITSTATUS(st) == 0) : true;
            r->pid = 0;
            s_run_finish(r, ok);
            return LOOP_TIMER_DONE;
        }
        if (loop_now(loop) < r->deadline)
            return KUBECONFIG_EXEC_REAP_MS;
    }
    /* deadline passed */
    r->result = ERR_TIMEOUT;
    snprintf(r->errtext, sizeof(r->errtext), "exec plugin timed out after %d ms",
             KUBECONFIG_EXEC_TIMEOUT_MS);
    s_run_finish(r, 0);
    return LOOP_TIMER_DONE;
}

static int s_run_fd(loop_t *loop, int fd, int revents, void *arg)
{
    kubeconfig_run_t *r = arg;
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n > 0) {
            if (buf_append(&r->out, chunk, (size_t)n)) {
                r->result = ERR_TOOBIG;
                snprintf(r->errtext, sizeof(r->errtext), "exec plugin output larger than %u bytes",
                         KUBECONFIG_EXEC_MAX_OUTPUT);
            } else {
                continue;
            }
        }
        break; /* EOF, error or too big */
    }
    loop_remove_fd(loop, fd);
    close(fd);
    r->fd = -1;
    r->reaping = true;
    if (r->timer)
        loop_cancel_timer(loop, r->timer);
    r->timer = loop_add_timer(loop, 0, s_run_timer, r);
    if (r->timer < 0) {
        r->timer = 0;
        s_run_finish(r, 0);
    }
    return 0;
}

int kubeconfig_exec_run(loop_t *loop, const kubeconfig_t *kc, kubeconfig_exec_fn *fn, void *arg,
                        kubeconfig_run_t **run_out)
{
    *run_out = NULL;
    if (!kc || !kc->exec || !fn)
        return ERR_INVAL;
    const kubeconfig_exec_t *e = kc->exec;
    kubeconfig_run_t *r = calloc(1, sizeof(*r));
    if (!r)
        return ERR_NOMEM;
    r->loop = loop;
    r->fd = -1;
    r->fn = fn;
    r->arg = arg;
    buf_init(&r->out, KUBECONFIG_EXEC_MAX_OUTPUT);
    int rc = ERR_NOMEM;
    size_t na = 0, ne = 0, nenv = 0;
    while (e->args[na])
        na++;
    while (e->env[ne])
        ne++;
    while (environ && environ[nenv])
        nenv++;
    char **argv = calloc(na + 2, sizeof(char *));
    char **envp = calloc(nenv + ne + 2, sizeof(char *));
    buf_t info;
    buf_init(&info, 4096);
    int p[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    bool fa_ok = false;
    if (!argv || !envp)
        goto out;
    argv[0] = e->command;
    for (size_t i = 0; i < na; i++)
        argv[i + 1] = e->args[i];
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) != 0)
            envp[k++] = environ[i];
    for (size_t i = 0; i < ne; i++)
        envp[k++] = e->env[i];
    if (buf_printf(&info,
                   "KUBERNETES_EXEC_INFO={\"kind\":\"ExecCredential\",\"apiVersion\":\"%s\","
                   "\"spec\":{\"interactive\":false}}",
                   e->api_version))
        goto out;
    envp[k++] = info.data;
    rc = ERR_IO;
    if (pipe2(p, O_CLOEXEC) != 0)
        goto out;
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto out;
    fa_ok = true;
    if (posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO) ||
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0))
        goto out;
    pid_t pid;
    int sr = strchr(e->command, '/') ? posix_spawn(&pid, e->command, &fa, NULL, argv, envp)
                                     : posix_spawnp(&pid, e->command, &fa, NULL, argv, envp);
    if (sr != 0) {
        log_warn("exec plugin could not start", "command", e->command, "error", strerror(sr), NULL);
        goto out;
    }
    r->pid = pid;
    close(p[1]);
    p[1] = -1;
    r->fd = p[0];
    p[0] = -1;
    fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
    rc = loop_add_fd(loop, r->fd, LOOP_READ, s_run_fd, r);
    if (rc)
        goto out;
    r->deadline = loop_clock_ms() + KUBECONFIG_EXEC_TIMEOUT_MS;
    r->timer = loop_add_timer(loop, KUBECONFIG_EXEC_TIMEOUT_MS, s_run_timer, r);
    if (r->timer < 0) {
        rc = (int)r->timer;
        r->timer = 0;
        goto out;
    }
    rc = 0;
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    free(argv);
    free(envp);
    buf_free(&info);
    if (rc) {
        s_run_free(r);
        return rc;
    }
    *run_out = r;
    return 0;
}

void kubeconfig_exec_cancel(kubeconfig_run_t **run_p)
{
    if (!run_p || !*run_p)
        return;
    s_run_free(*run_p);
    *run_p = NULL;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------- self-test ---------- */

static int s_write(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    return chmod(path, (mode_t)mode);
}

typedef struct {
    int done;
    int err;
    char token[64];
    int64_t exp;
    char text[256];
} s_exec_result_t;

static void s_exec_cb(void *arg, int err, const kubeconfig_cred_t *cred, const char *errtext)
{
    s_exec_result_t *res = arg;
    res->done++;
    res->err = err;
    if (cred && cred->token)
        snprintf(res->token, sizeof(res->token), "%s", cred->token);
    if (cred)
        res->exp = cred->expires_unix;
    snprintf(res->text, sizeof(res->text), "%s", errtext);
}

static int s_wait_exec(loop_t *loop, s_exec_result_t *res)
{
    int64_t end = loop_clock_ms() + 10000;
    while (!res->done && loop_clock_ms() < end)
        loop_run_once(loop, 50);
    return res->done;
}

int kubeconfig_test(bool verbose)
{
    int failed = 0;
    char dir[] = "/tmp/rf-kubeconfig-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[PATH_MAX], q[PATH_MAX];
    buf_t err;
    buf_init(&err, 4096);
    kubeconfig_t *kc = NULL;

    /* base64 */
    unsigned char *d = NULL;
    size_t dl = 0;
    CHECK(kubeconfig_base64_decode("aGVsbG8=", &d, &dl) == 0 && dl == 5 &&
          memcmp(d, "hello", 5) == 0);
    free(d);
    CHECK(kubeconfig_base64_decode("aGVs\nbG8", &d, &dl) == 0 && dl == 5);
    free(d);
    CHECK(kubeconfig_base64_decode("a*b", &d, &dl) == ERR_PARSE && d == NULL);
    CHECK(kubeconfig_base64_decode("aGVsbG8=x", &d, &dl) == ERR_PARSE);

    /* token + CA data + cert/key data, current-context */
    snprintf(p, sizeof(p), "%s/config", dir);
    const char *cfg1 = "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
                       "clusters:\n- name: c1\n  cluster:\n    server: https://h:6443/\n"
                       "    certificate-authority-data: Q0FQRU0=\n"
                       "- name: c2\n  cluster:\n    server: http://127.0.0.1:1\n"
                       "    insecure-skip-tls-verify: true\n    certificate-authority: ca.pem\n"
                       "contexts:\n- name: a\n  context: {cluster: c1, user: u1, namespace: ns1}\n"
                       "- name: b\n  context: {cluster: c2, user: u2}\n"
                       "- name: e\n  context: {cluster: c2, user: u3}\n"
                       "- name: x\n  context: {cluster: nope, user: u1}\n"
                       "users:\n- name: u1\n  user:\n    token: sekret\n"
                       "    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n"
                       "- name: u2\n  user:\n    tokenFile: tok\n"
                       "    client-certificate: c.pem\n    client-key: k.pem\n"
                       "- name: u3\n  user:\n    exec:\n      apiVersion: "
                       "client.authentication.k8s.io/v1\n      command: ./plugin.sh\n"
                       "      args: [one]\n      env: [{name: RF_X, value: tok-from-env}]\n";
    CHECK(s_write(p, cfg1, 0600) == 0);
    CHECK(kubeconfig_load(p, NULL, &kc, &err) == 0);
    if (kc) {
        CHECK(strcmp(kc->server, "https://h:6443") == 0);
        CHECK(strcmp(kc->namespace_, "ns1") == 0);
        CHECK(strcmp(kc->token, "sekret") == 0);
        CHECK(kc->ca_data_len == 5 && memcmp(kc->ca_data, "CAPEM", 5) == 0);
        CHECK(kc->cert_data_len == 4 && kc->key_data_len == 3);
        CHECK(!kc->insecure_skip_verify && !kc->exec && !kc->token_file);
        http_tls_t tls;
        kubeconfig_tls(kc, &tls);
        CHECK(tls.ca_data == kc->ca_data && tls.key_data_len == 3);
    }
    kubeconfig_destroy(&kc);
    kubeconfig_destroy(&kc); /* NULL-safe */

    /* context b: files relative to the kubeconfig dir; missing files are named */
    buf_reset(&err);
    CHECK(kubeconfig_load(p, "b", &kc, &err) == ERR_IO && kc == NULL);
    CHECK(strstr(buf_str(&err), "clusters[1].cluster.certificate-authority: file not readable"));
    snprintf(q, sizeof(q), "%s/ca.pem", dir);
    s_write(q, "x", 0600);
    buf_reset(&err);
    CHECK(kubeconfig_load(p, "b", &kc, &err) == ERR_IO);
    CHECK(strstr(buf_str(&err), "users[1].user.tokenFile: file not readable"));
    snprintf(q, sizeof(q), "%s/tok", dir);
    s_write(q, "filetoken\n", 0600);
    snprintf(q, sizeof(q), "%s/c.pem", dir);
    s_write(q, "c", 0600);
    buf_reset(&err);
    CHECK(kubeconfig_load(p, "b", &kc, &err) == ERR_IO);
    CHECK(strstr(buf_str(&err), "users[1].user.client-key: file not readable"));
    CHECK(strstr(buf_str(&err), p) != NULL);
    snprintf(q, sizeof(q), "%s/k.pem", dir);
    s_write(q, "k", 0600);
    CHECK(kubeconfig_load(p, "b", &kc, &err) == 0);
    if (kc) {
        snprintf(q, sizeof(q), "%s/tok", dir);
        CHECK(strcmp(kc->token_file, q) == 0);
        CHECK(kc->insecure_skip_verify && strcmp(kc->namespace_, "default") == 0);
        snprintf(q, sizeof(q), "%s/k.pem", dir);
        CHECK(strcmp(kc->key_file, q) == 0);
    }
    kubeconfig_destroy(&kc);

    /* missing context / cluster */
    buf_reset(&err);
    CHECK(kubeconfig_load(p, "zzz", &kc, &err) == ERR_NOTFOUND);
    CHECK(strstr(buf_str(&err), "contexts[name=zzz]"));
    buf_reset(&err);
    CHECK(kubeconfig_load(p, "x", &kc, &err) == ERR_NOTFOUND);
    CHECK(strstr(buf_str(&err), "clusters[name=nope]"));
    buf_reset(&err);
    snprintf(q, sizeof(q), "%s/absent", dir);
    CHECK(kubeconfig_load(q, NULL, &kc, &err) == ERR_IO && strstr(buf_str(&err), "absent"));

    /* errors in the buffer form */
    const char *bad[][2] = {
        {"current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
         "clusters: [{name: c, cluster: {server: 'https://h', tls-server-name: foo}}]\n",
         "clusters[0].cluster.tls-server-name: not supported"},
        {"current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
         "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority-data: "
         "'%%'}}]\n",
         "certificate-authority-data: not valid base64"},
        {"current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
         "clusters: [{name: c, cluster: {}}]\n",
         "clusters[0].cluster.server: missing"},
        {"contexts: []\n", "current-context: not set"},
        {"current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
         "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
         "users: [{name: u, user: {client-certificate-data: QQ==}}]\n",
         "users[0].user.client-key: missing"},
        {"current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
         "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
         "users: [{name: u, user: {exec: {apiVersion: v9, command: x}}}]\n",
         "users[0].user.exec.apiVersion"},
        {"current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
         "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
         "users: [{name: u, user: {token: [1]}}]\n",
         "users[0].user.token: not a string"},
        {"a: [\n", "bad.yaml"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_reset(&err);
        int rc = kubeconfig_load_buf(bad[i][0], strlen(bad[i][0]), "/k/bad.yaml", NULL, &kc, &err);
        CHECK(rc < 0 && kc == NULL);
        CHECK(strstr(buf_str(&err), bad[i][1]) != NULL);
        CHECK(strstr(buf_str(&err), "kubeconfig /k/bad.yaml") != NULL);
        if (verbose)
            printf("  error: %s\n", buf_str(&err));
    }

    /* in-cluster */
    char sa[256];
    snprintf(sa, sizeof(sa), "%s/sa", dir);
    mkdir(sa, 0700);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("POD_NAMESPACE");
    buf_reset(&err);
    CHECK(kubeconfig_in_cluster(sa, &kc, &err) == ERR_NOTFOUND);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    buf_reset(&err);
    CHECK(kubeconfig_in_cluster(sa, &kc, &err) == ERR_IO && strstr(buf_str(&err), "/sa/token"));
    snprintf(q, sizeof(q), "%s/token", sa);
    s_write(q, "satoken", 0600);
    snprintf(q, sizeof(q), "%s/ca.crt", sa);
    s_write(q, "ca", 0600);
    snprintf(q, sizeof(q), "%s/namespace", sa);
    s_write(q, "ray-system\n", 0600);
    CHECK(kubeconfig_in_cluster(sa, &kc, &err) == 0);
    if (kc) {
        CHECK(strcmp(kc->server, "https://[fd00::1]:443") == 0);
        CHECK(strcmp(kc->namespace_, "ray-system") == 0);
        CHECK(strstr(kc->token_file, "/sa/token") && strstr(kc->ca_file, "/sa/ca.crt"));
    }
    kubeconfig_destroy(&kc);
    /* No directory given: $RAYFLEET_SERVICEACCOUNT_DIR, else the well-known one. */
    setenv(KUBECONFIG_SA_DIR_ENV, sa, 1);
    CHECK(kubeconfig_in_cluster(NULL, &kc, &err) == 0);
    if (kc) {
        CHECK(strstr(kc->token_file, "/sa/token") && strstr(kc->ca_file, "/sa/ca.crt"));
        CHECK(strcmp(kc->namespace_, "ray-system") == 0);
    }
    kubeconfig_destroy(&kc);
    setenv(KUBECONFIG_SA_DIR_ENV, "", 1);
    buf_reset(&err);
    if (access(KUBECONFIG_SA_DIR "/token", R_OK) != 0)
        CHECK(kubeconfig_in_cluster(NULL, &kc, &err) == ERR_IO &&
              strstr(buf_str(&err), KUBECONFIG_SA_DIR "/token"));
    kubeconfig_destroy(&kc);
    unsetenv(KUBECONFIG_SA_DIR_ENV);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");

    /* ExecCredential parsing */
    kubeconfig_cred_t cred;
    const char *ec = "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
                     "v1\",\"status\":{\"token\":\"t1\",\"expirationTimestamp\":\"2030-01-01T00:"
                     "00:00Z\"}}";
    CHECK(kubeconfig_cred_parse(ec, strlen(ec), &cred, NULL) == 0 && cred.token &&
          strcmp(cred.token, "t1") == 0 && cred.expires_unix == 1893456000);
    kubeconfig_cred_free(&cred);
    const char *ec2 = "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
                      "v1beta1\",\"status\":{}}";
    buf_reset(&err);
    CHECK(kubeconfig_cred_parse(ec2, strlen(ec2), &cred, &err) == ERR_PARSE &&
          strstr(buf_str(&err), "neither token"));
    CHECK(kubeconfig_cred_parse("{", 1, &cred, NULL) == ERR_PARSE);
    kubeconfig_cred_free(NULL);

    /* exec plugin run on a loop */
    snprintf(q, sizeof(q), "%s/plugin.sh", dir);
    s_write(q,
            "#!/bin/sh\n[ \"$1\" = one ] || exit 3\n"
            "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 4;; esac\n"
            "printf '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
            "v1\",\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"2031-01-01T00:00:00Z\"}}'"
            " \"$RF_X\"\n",
            0700);
    loop_t *loop = loop_new();
    CHECK(loop != NULL);
    CHECK(kubeconfig_load(p, "e", &kc, &err) == 0);
    kubeconfig_run_t *run = NULL;
    s_exec_result_t res = {0};
    if (kc && loop) {
        CHECK(kc->exec && strstr(kc->exec->command, "/plugin.sh") && kc->exec->command[0] == '/');
        CHECK(kubeconfig_exec_run(loop, kc, s_exec_cb, &res, &run) == 0 && run);
        CHECK(res.done == 0);
        CHECK(s_wait_exec(loop, &res) == 1);
        CHECK(res.err == 0 && strcmp(res.token, "tok-from-env") == 0);
        CHECK(res.exp == 1924992000);
        /* failing plugin */
        s_write(q, "#!/bin/sh\nexit 1\n", 0700);
        memset(&res, 0, sizeof(res));
        CHECK(kubeconfig_exec_run(loop, kc, s_exec_cb, &res, &run) == 0);
        CHECK(s_wait_exec(loop, &res) == 1 && res.err == ERR_IO);
        /* garbage output */
        s_write(q, "#!/bin/sh\necho garbage\n", 0700);
        memset(&res, 0, sizeof(res));
        CHECK(kubeconfig_exec_run(loop, kc, s_exec_cb, &res, &run) == 0);
        CHECK(s_wait_exec(loop, &res) == 1 && res.err == ERR_PARSE);
        /* cancel a slow plugin: the callback never runs */
        s_write(q, "#!/bin/sh\nsleep 5\n", 0700);
        memset(&res, 0, sizeof(res));
        CHECK(kubeconfig_exec_run(loop, kc, s_exec_cb, &res, &run) == 0);
        loop_run_once(loop, 20);
        kubeconfig_exec_cancel(&run);
        CHECK(run == NULL);
        loop_run_once(loop, 20);
        CHECK(res.done == 0);
        /* missing program */
        free(kc->exec->command);
        kc->exec->command = strdup("/nonexistent/plugin");
        memset(&res, 0, sizeof(res));
        int rc = kubeconfig_exec_run(loop, kc, s_exec_cb, &res, &run);
        if (rc == 0) /* glibc may report exec failure as exit 127 */
            CHECK(s_wait_exec(loop, &res) == 1 && res.err == ERR_IO);
        else
            CHECK(rc == ERR_IO);
    }
    kubeconfig_t none = {0};
    CHECK(kubeconfig_exec_run(loop, &none, s_exec_cb, &res, &run) == ERR_INVAL);
    kubeconfig_destroy(&kc);
    loop_destroy(&loop);

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    buf_free(&err);
    return SELFTEST_RESULT("kubeconfig", verbose);
}

#endif /* RF_SELFTEST */
