/*
 * kubeconfig: where a Kubernetes API server is and how to authenticate to it.
 *
 * Two sources, one result (kubeconfig_t):
 *   - a kubeconfig file (YAML, read with common/yaml): the current-context or a named context
 *     selects a cluster (server, certificate-authority file or certificate-authority-data,
 *     insecure-skip-tls-verify) and a user (token, tokenFile, client-certificate(-data),
 *     client-key(-data), or an exec credential plugin). Relative file paths resolve against the
 *     directory of the kubeconfig, as kubectl does. *-data fields are base64 of PEM and are
 *     decoded here. tls-server-name is refused with a clear error: common/http cannot override
 *     the TLS server name yet, and silently ignoring it would verify the wrong name.
 *   - in-cluster: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT and the service account
 *     directory (token, ca.crt, namespace; KUBECONFIG_SA_DIR by default, overridable for tests).
 *     The token is a token *file*, so a rotated token is picked up (see k8s.h).
 *
 * Exec credential plugins (client.authentication.k8s.io/v1 and v1beta1): kubeconfig_exec_run()
 * starts the command with posix_spawn (args, env entries added to ours, KUBERNETES_EXEC_INFO set)
 * with its stdout on a pipe watched by the loop, so the loop never blocks on the plugin; the
 * ExecCredential on stdout is parsed when the pipe closes. The plugin is killed after
 * KUBECONFIG_EXEC_TIMEOUT_MS. Its output is bounded (KUBECONFIG_EXEC_MAX_OUTPUT).
 *
 * Errors: every loading error appends one line naming the file and the field, e.g.
 * "kubeconfig /x/config: users[0].user.client-key: file not readable". Secrets (tokens, keys) are
 * never logged nor written into error text.
 */
#ifndef RF_KUBECONFIG_H
#define RF_KUBECONFIG_H

#include "buf.h"
#include "http.h"
#include "loop.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KUBECONFIG_MAX_FILE (4u * 1024 * 1024) /* largest kubeconfig accepted */
#define KUBECONFIG_MAX_SECRET_FILE (1024u * 1024) /* largest token / PEM file read */
#define KUBECONFIG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount" /* in-cluster files */
#define KUBECONFIG_SA_DIR_ENV "RAYFLEET_SERVICEACCOUNT_DIR" /* overrides KUBECONFIG_SA_DIR */
#define KUBECONFIG_EXEC_TIMEOUT_MS 30000 /* an exec plugin running longer is killed */
#define KUBECONFIG_EXEC_MAX_OUTPUT (1024u * 1024) /* most bytes read from a plugin's stdout */
#define KUBECONFIG_EXEC_REAP_MS 10 /* waitpid() polling period after the pipe closed */
#define KUBECONFIG_EXEC_MAX_ARGS 64 /* most args / env entries of an exec plugin */

/* An exec credential plugin, from users[].user.exec. */
typedef struct {
    char *api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
    char *command; /* program: absolute, relative to the kubeconfig dir (has '/'), or on PATH */
    char **args; /* NULL-terminated argument list without argv[0] (never NULL) */
    char **env; /* NULL-terminated "NAME=value" list added to the environment (never NULL) */
} kubeconfig_exec_t;

/* A resolved configuration. Every string is owned by the struct; NULL when unset. */
typedef struct {
    char *source; /* the kubeconfig path, or "in-cluster" (for error messages) */
    char *context; /* the context used (NULL in-cluster) */
    char *server; /* base URL, without trailing '/' (e.g. "https://10.0.0.1:443") */
    char *namespace_; /* the context's / service account's namespace, or "default" */
    char *ca_file; /* CA bundle file (absolute) */
    unsigned char *ca_data; /* CA bundle PEM (decoded certificate-authority-data) */
    size_t ca_data_len; /* bytes at ca_data */
    char *cert_file; /* client certificate file (absolute) */
    unsigned char *cert_data; /* client certificate PEM */
    size_t cert_data_len; /* bytes at cert_data */
    char *key_file; /* client key file (absolute; secret content) */
    unsigned char *key_data; /* client key PEM (secret) */
    size_t key_data_len; /* bytes at key_data */
    bool insecure_skip_verify; /* insecure-skip-tls-verify: true */
    char *token; /* static bearer token (secret) */
    char *token_file; /* bearer token file, re-read when it changes (absolute) */
    kubeconfig_exec_t *exec; /* exec credential plugin, or NULL */
} kubeconfig_t;

/* Credentials an exec plugin returned. All strings owned; NULL when absent. */
typedef struct {
    char *token; /* status.token (secret) */
    char *cert_data; /* status.clientCertificateData (PEM) */
    char *key_data; /* status.clientKeyData (PEM, secret) */
    int64_t
        expires_unix; /* status.expirationTimestamp as Unix seconds, 0 when absent (no expiry) */
} kubeconfig_cred_t;

/* Called once when an exec plugin run ends: err 0 with the credentials (borrowed for the call),
 * or a negative err_t (ERR_IO spawn failed / non-zero exit, ERR_TIMEOUT, ERR_PARSE bad output,
 * ERR_TOOBIG) with cred NULL and `errtext` describing it (never NULL). */
typedef void(kubeconfig_exec_fn)(void *arg, int err, const kubeconfig_cred_t *cred,
                                 const char *errtext);

typedef struct kubeconfig_run kubeconfig_run_t;

/* Loads the kubeconfig at `path` (NULL: $KUBECONFIG's first entry, else ~/.kube/config) with
 * the context `context` (NULL: current-context). On success stores a new kubeconfig_t in *out
 * (caller frees with kubeconfig_destroy()) and returns 0. Errors (one line appended to `err`,
 * naming file and field): ERR_IO (file unreadable), ERR_PARSE (YAML, base64, wrong types),
 * ERR_NOTFOUND (context/cluster/user missing), ERR_INVAL (no server, unsupported field such as
 * tls-server-name or auth-provider), ERR_TOOBIG, ERR_NOMEM. */
int kubeconfig_load(const char *path, const char *context, kubeconfig_t **out, buf_t *err);

/* Like kubeconfig_load() from `len` bytes of YAML; `path` names it in errors and its directory
 * resolves relative paths (may be NULL: the current directory). */
int kubeconfig_load_buf(const char *data, size_t len, const char *path, const char *context,
                        kubeconfig_t **out, buf_t *err);

/* The in-cluster configuration: server from KUBERNETES_SERVICE_HOST/PORT (https, IPv6
 * bracketed), token file, CA file and namespace from `sa_dir` (NULL: $RAYFLEET_SERVICEACCOUNT_DIR
 * when set and not empty, else KUBECONFIG_SA_DIR; the namespace file is optional: "default";
 * POD_NAMESPACE wins over it). The token file is re-read when it changes (k8s.h), as a projected
 * token rotates. Returns 0 and *out, or ERR_NOTFOUND (not in a cluster:
 * variables missing), ERR_IO (token or ca.crt unreadable), ERR_NOMEM; errors name the file. */
int kubeconfig_in_cluster(const char *sa_dir, kubeconfig_t **out, buf_t *err);

/* Frees everything (wiping secrets) and NULLs *kc_p. NULL-safe. */
void kubeconfig_destroy(kubeconfig_t **kc_p);

/* Fills *tls with the kubeconfig's TLS settings, borrowed from kc (valid while kc lives). */
void kubeconfig_tls(const kubeconfig_t *kc, http_tls_t *tls);

/* Decodes standard base64 (with or without padding; blanks and newlines skipped) into a new
 * NUL-terminated buffer in *out (length in *out_len). Returns 0, ERR_PARSE or ERR_NOMEM. */
int kubeconfig_base64_decode(const char *in, unsigned char **out, size_t *out_len);

/* Parses an ExecCredential (JSON) into *cred (zeroed first; free with kubeconfig_cred_free()).
 * Returns 0, or ERR_PARSE with a line in `err` (wrong kind/apiVersion, no token and no
 * certificate, bad expirationTimestamp). */
int kubeconfig_cred_parse(const char *json, size_t len, kubeconfig_cred_t *cred, buf_t *err);

/* Frees the strings of *cred (wiping secrets) and zeroes it. NULL-safe. */
void kubeconfig_cred_free(kubeconfig_cred_t *cred);

/* Starts kc->exec's plugin on `loop`. `fn` runs once, from the loop, when it ends (never from
 * inside this call). Returns 0 and a handle in *run_out (which becomes invalid once fn ran), or
 * ERR_INVAL (no exec in kc), ERR_IO (pipe/spawn failed), ERR_NOMEM. */
int kubeconfig_exec_run(loop_t *loop, const kubeconfig_t *kc, kubeconfig_exec_fn *fn, void *arg,
                        kubeconfig_run_t **run_out);

/* Stops a run before fn ran: kills and reaps the plugin, frees the run; fn never runs. NULLs
 * *run_p. NULL-safe. */
void kubeconfig_exec_cancel(kubeconfig_run_t **run_p);

/* Self-test: file variants, errors, in-cluster from a temp dir, an exec plugin script. */
int kubeconfig_test(bool verbose);

#endif
