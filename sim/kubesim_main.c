/*
 * kubesim: the embedded Kubernetes API server with simulated nodes (see sim/apiserver.h).
 *
 *   kubesim --port P --nodes N --kubeconfig-out FILE [--ready-file FILE] [--minor 32]
 *           [--tls-port P --token TOKEN] [--tls-host ADDR] [--tls-san NAME[,NAME]]...
 *           [--kubeconfig-for SERVER=FILE]...
 *           [--fault verb:resource:rate[:code|drop|timeout]]... [--latency-ms N] [--jitter-ms N]
 *           [--history N] [--bookmark-ms N] [--log-level L]
 *
 * Prints "kubesim listening on http://127.0.0.1:PORT" (and "kubesim listening on
 * https://127.0.0.1:PORT" with TLS) on stdout once serving, writes the kubeconfig (and then the
 * ready file, containing the plain URL) and runs until SIGTERM or SIGINT. With --tls-port the
 * kubeconfig points at the TLS listener, carries the generated CA as certificate-authority-data
 * and the token (or, without --token, the generated admin client certificate). In a container
 * (docker-compose.yml), --tls-host 0.0.0.0 serves HTTPS on every interface (the plain port stays
 * on 127.0.0.1), --tls-san adds the names clients use (the compose service name) to the server
 * certificate, and --kubeconfig-for writes further kubeconfigs whose server is the given URL (the
 * in-network name, or the port published on the host). --kubeconfig-out and the ready file are
 * written mode 0600, --kubeconfig-for kubeconfigs 0640 (a group shares them).
 */
#include "apiserver.h"
#include "buf.h"
#include "err.h"
#include "tls.h"
#include "log.h"
#include "loop.h"
#include "privfs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KUBESIM_MAX_FAULT_FLAGS 64
#define KUBESIM_MAX_KUBECONFIGS 4 /* --kubeconfig-for flags */

static void s_usage(FILE *f)
{
    fprintf(
        f, "usage: kubesim [options]\n"
           "  --port P               listen port on 127.0.0.1 (0 = ephemeral, default 0)\n"
           "  --nodes N              Node objects to create (default 3)\n"
           "  --kubeconfig-out FILE  write a kubeconfig pointing at this server\n"
           "  --ready-file FILE      write the server URL here once serving\n"
           "  --minor M              /version minor to report (default 32)\n"
           "  --tls-port P           also serve HTTPS (generated CA) on P (0 = ephemeral)\n"
           "  --token T              admin bearer token accepted over HTTPS (system:masters;\n"
           "                         service-account tokens from `kubectl create token` go\n"
           "                         through RBAC)\n"
           "  --tls-host ADDR        address of the HTTPS listener (default 127.0.0.1;\n"
           "                         0.0.0.0 in a container)\n"
           "  --tls-san NAME[,NAME]  extra host names or IP addresses of the server\n"
           "                         certificate (besides 127.0.0.1 and localhost)\n"
           "  --kubeconfig-for SERVER=FILE  also write a kubeconfig whose server is the URL\n"
           "                         SERVER (e.g. https://kubesim:6443), at most 4\n"
           "  --fault V:R:RATE[:C]   inject errors: verb, resource ('*' = any), rate 0..1, code\n"
           "                         (C 'drop' or 'timeout': an ambiguous write, the request\n"
           "                         is done (a create applied) and its success answer lost:\n"
           "                         the connection closed, or kube's 504 Timeout)\n"
           "  --latency-ms N         add N ms to every API request\n"
           "  --jitter-ms N          add a random 0..N ms to every API request\n"
           "  --history N            watch history events kept (default 100000)\n"
           "  --bookmark-ms N        watch bookmark period (default 60000)\n"
           "  --log-level L          debug, info, warn, error (default info)\n"
           "  --simulate on|off      simulated scheduler, kubelet, Job/EndpointSlice and\n"
           "                         Deployment/ReplicaSet/StatefulSet controllers and Ray\n"
           "                         heads (default on)\n"
           "  --gateway-api on|off   Gateway API add-on: gateway.networking.k8s.io/v1 CRDs\n"
           "                         (GatewayClass, Gateway, HTTPRoute) installed at boot and,\n"
           "                         with --simulate on, a gateway controller (default on)\n"
           "  --fairness on|off      serve clients fairly (by User-Agent, or credential over\n"
           "                         TLS: round-robin, a few requests per turn, as kube's API\n"
           "                         Priority and Fairness) or in arrival order (default on)\n"
           "  --pod-start-ms N       pod bound -> Running delay (default 0)\n"
           "  --pod-ready-ms N       Running -> Ready delay (default 0)\n"
           "  --pod-jitter-ms N      random 0..N ms added to each pod stage\n"
           "  --submit-poll-ms N     KubeRay submitter containers' poll period (default 200)\n"
           "  --submit-dns-fail-ms N submitter exits 1 after its Service name failed to\n"
           "                         resolve this long (default 10000)\n"
           "  --help, --version\n"
           "\n"
           "Simulation admin calls (POST, JSON body) on /kubesim/...:\n"
           "  nodes      {\"add\":NAME,\"cpu\":\"32\",\"memory\":\"128Gi\"} | {\"fail\":NAME} |\n"
           "             {\"restore\":NAME}\n"
           "  pod-fault  {\"namespace\":NS,\"name\":POD,\"kind\":\"ImagePull\"|\"Crash\"|\"OOM\"}\n"
           "             or \"kind\":\"ServeProxyDown\"|\"ServeProxyUp\": the pod's Serve proxy\n"
           "             /-/healthz answers 503 (sets/removes sim.rayfleet.io/serve-proxy: down)\n"
           "             or \"kind\":\"Exit\",\"container\":C,\"code\":N,\"afterSeconds\":S: that\n"
           "             container (or native sidecar) exits N, S s after each start (sets\n"
           "             sim.rayfleet.io/exit.C: \"N@S\"); the kubelet restarts it as kube would\n"
           "  demand     {\"namespace\":NS,\"cluster\":NAME,\"demand\":{GROUP:REPLICAS}}\n"
           "             (the Ray autoscaler emulation, for enableInTreeAutoscaling)\n"
           "  ray-head   {\"namespace\":NS,\"pod\":HEADPOD,\"gcsDown\":BOOL,\"restart\":BOOL}\n"
           "and faults ({\"rules\":[{\"verb\",\"resource\",\"rate\",\"code\"} or with\n"
           "\"after\":\"drop\"|\"timeout\" instead of a code: done, then the answer lost]}),\n"
           "latency, throttle, drop-watches, compact, bookmark, fairness ({\"on\":BOOL});\n"
           "GET stats;\n"
           "GET forbidden: the 403s answered so far by user, verb and resource (DELETE resets).\n"
           "GET ray-submissions[?submissionId=ID]: POST /api/jobs/ counted over every\n"
           "simulated head, live or gone ({\"attempts\":N,\"accepted\":N,...}).\n"
           "GET ray-requests: requests every simulated head answered, live or gone, by\n"
           "port ({\"dashboard\":N,\"agent\":N,\"serveControl\":N,\"serveTraffic\":N,...}).\n"
           "Any method on gateways/NS/GATEWAY/proxy/PATH: a request through that Gateway,\n"
           "routed by its HTTPRoutes (weighted round-robin) to a backend Service's head.\n"
           "KubeRay submitter containers (`ray job submit`) run for real against the heads.\n"
           "Pods: annotations sim.rayfleet.io/fail, exit-code, run-seconds, exit.<container>\n"
           "script outcomes;\n"
           "sim.rayfleet.io/serve-proxy: down fails the pod's Serve proxy (head or worker),\n"
           "and a readiness probe that checks /-/healthz with it.\n"
           "Ray jobs: an entrypoint word FAKE:pending=S,sleep=S,exit=N,log=TEXT scripts them.\n");
}

static int s_on_signal(loop_t *loop, int signo, void *arg)
{
    loop_stop(loop);
    return 0;
}

/* Splits a --kubeconfig-for value SERVER=FILE (SERVER an http(s) URL) in place. */
static bool s_kubeconfig_for(char *v, const char **server, const char **file)
{
    char *eq = strchr(v, '=');
    if (!eq || eq[1] == '\0' || (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0))
        return false;
    *eq = '\0';
    *server = v;
    *file = eq + 1;
    return strlen(v) > 8; // something after the scheme
}

/* Parses a non-negative integer flag value. */
static bool s_num(const char *s, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > max)
        return false;
    *out = v;
    return true;
}

/* The rule of each flag that takes a value, for the error when a value breaks it. */
static const char *s_rule(const char *flag)
{
    static const struct {
        const char *flag; /* the flag */
        const char *rule; /* what its value must be */
    } rules[] = {
        {"--port", "an integer between 0 and 65535 (0: ephemeral)"},
        {"--tls-port", "an integer between 0 and 65535 (0: ephemeral)"},
        {"--nodes", "an integer between 0 and 100000"},
        {"--history", "an integer between 0 and 100000000"},
        {"--bookmark-ms", "an integer between 1 and 86400000"},
        {"--latency-ms", "an integer between 0 and 3600000"},
        {"--jitter-ms", "an integer between 0 and 3600000"},
        {"--pod-start-ms", "an integer between 0 and 3600000"},
        {"--pod-ready-ms", "an integer between 0 and 3600000"},
        {"--pod-jitter-ms", "an integer between 0 and 3600000"},
        {"--submit-poll-ms", "an integer between 1 and 3600000"},
        {"--submit-dns-fail-ms", "an integer between 1 and 3600000"},
        {"--token", "1 to 199 characters"},
        {"--tls-host", "an IPv4 or IPv6 address, such as 0.0.0.0"},
        {"--tls-san", "host names or IP addresses, comma-separated, at most 1024 bytes in all"},
        {"--kubeconfig-for",
         "SERVER=FILE with SERVER an http:// or https:// URL and FILE a path, at most 4 of them"},
        {"--minor", "at most 3 characters, such as 32"},
        {"--simulate", "on or off"},
        {"--gateway-api", "on or off"},
        {"--fairness", "on or off"},
        {"--log-level", "one of debug, info, warn, error"},
        {"--fault", "VERB:RESOURCE:RATE[:CODE], at most 64 of them"},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (strcmp(rules[i].flag, flag) == 0)
            return rules[i].rule;
    return NULL;
}

/* Appends the base64 of PEM `which` of the server's CA to out. */
static int s_pem_b64(apiserver_t *api, int which, buf_t *out)
{
    buf_t pem;
    buf_init(&pem, 1 << 16);
    int rc = apiserver_tls_pem(api, which, &pem);
    if (rc == 0)
        rc = tls_base64(pem.data, pem.len, out);
    buf_free(&pem);
    return rc;
}

/* Writes the kubeconfig: plain HTTP, or HTTPS with the CA and the token or client cert. Its
 * server is `server`, else this process's listener (`url`, or the TLS one). */
static int s_kubeconfig(apiserver_t *api, const char *path, const char *server, const char *url,
                        const char *token)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    int rc = 0;
    if (apiserver_tls_port(api) > 0) {
        char tls_url[64];
        snprintf(tls_url, sizeof(tls_url), "https://127.0.0.1:%d", apiserver_tls_port(api));
        rc = buf_printf(&b,
                        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n"
                        "    server: %s\n    certificate-authority-data: ",
                        server ? server : tls_url);
        if (!rc)
            rc = s_pem_b64(api, TLS_PEM_CA, &b);
    } else {
        rc = buf_printf(&b,
                        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n"
                        "    server: %s",
                        server ? server : url);
    }
    if (!rc)
        rc = buf_puts(&b, "\ncontexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n"
                          "    user: kubesim\n    namespace: default\ncurrent-context: kubesim\n"
                          "users:\n- name: kubesim\n  user:");
    if (!rc && apiserver_tls_port(api) > 0 && token) {
        rc = buf_printf(&b, "\n    token: %s\n", token);
    } else if (!rc && apiserver_tls_port(api) > 0) {
        rc = buf_puts(&b, "\n    client-certificate-data: ");
        if (!rc)
            rc = s_pem_b64(api, TLS_PEM_CLIENT_CERT, &b);
        if (!rc)
            rc = buf_puts(&b, "\n    client-key-data: ");
        if (!rc)
            rc = s_pem_b64(api, TLS_PEM_CLIENT_KEY, &b);
        if (!rc)
            rc = buf_puts(&b, "\n");
    } else if (!rc) {
        rc = buf_puts(&b, " {}\n");
    }
    // the kubeconfig holds a credential: private, but --kubeconfig-for's are shared with a group
    // on purpose (docker-compose.yml: the host user's group reads the published one)
    if (!rc)
        rc = privfs_write_atomic(path, buf_str(&b), b.len, server ? 0640 : PRIVFS_FILE_MODE);
    buf_free(&b);
    return rc;
}

int main(int argc, char **argv)
{
    apiserver_opts_t o = {.nodes = 3, .simulate = true};
    kubelet_opts_t ko;
    kubelet_opts_default(&ko);
    o.kubelet = &ko;
    const char *kubeconfig = NULL, *ready = NULL;
    const char *faults[KUBESIM_MAX_FAULT_FLAGS];
    int nfaults = 0;
    const char *kc_server[KUBESIM_MAX_KUBECONFIGS], *kc_file[KUBESIM_MAX_KUBECONFIGS];
    int nkc = 0;
    char sans[TLS_SANS_MAX + 1] = "";
    unsigned char addr[16];
    long long latency = 0, jitter = 0;
    log_level_t level = LOG_INFO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("kubesim %s (Kubernetes API v1.32)\n", RF_VERSION);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "kubesim: %s needs a value (or is unknown)\n", a);
            s_usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--port") == 0 && s_num(v, 65535, &n))
            o.port = (int)n;
        else if (strcmp(a, "--nodes") == 0 && s_num(v, 100000, &n))
            o.nodes = (int)n;
        else if (strcmp(a, "--history") == 0 && s_num(v, 100000000, &n))
            o.history = (size_t)n;
        else if (strcmp(a, "--bookmark-ms") == 0 && s_num(v, 86400000, &n) && n > 0)
            o.bookmark_ms = n;
        else if (strcmp(a, "--latency-ms") == 0 && s_num(v, 3600000, &n))
            latency = n;
        else if (strcmp(a, "--jitter-ms") == 0 && s_num(v, 3600000, &n))
            jitter = n;
        else if (strcmp(a, "--tls-port") == 0 && s_num(v, 65535, &n)) {
            o.tls = true;
            o.tls_port = (int)n;
        } else if (strcmp(a, "--token") == 0 && v[0] && strlen(v) < 200)
            o.token = v;
        else if (strcmp(a, "--tls-host") == 0 &&
                 (inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1))
            o.tls_host = v;
        else if (strcmp(a, "--tls-san") == 0 && tls_sans_valid(v) &&
                 strlen(sans) + 1 + strlen(v) <= TLS_SANS_MAX) {
            size_t len = strlen(sans);
            snprintf(sans + len, sizeof(sans) - len, "%s%s", len ? "," : "", v);
            o.tls_sans = sans;
        } else if (strcmp(a, "--kubeconfig-for") == 0 && nkc < KUBESIM_MAX_KUBECONFIGS &&
                   s_kubeconfig_for(argv[i], &kc_server[nkc], &kc_file[nkc]))
            nkc++;
        else if (strcmp(a, "--minor") == 0 && strlen(v) < 4)
            o.minor = v;
        else if (strcmp(a, "--simulate") == 0 && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0))
            o.simulate = strcmp(v, "on") == 0;
        else if (strcmp(a, "--gateway-api") == 0 && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0))
            o.no_gateway_api = strcmp(v, "off") == 0;
        else if (strcmp(a, "--fairness") == 0 && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0))
            o.no_fairness = strcmp(v, "off") == 0;
        else if (strcmp(a, "--pod-start-ms") == 0 && s_num(v, 3600000, &n))
            ko.create_ms = n;
        else if (strcmp(a, "--pod-ready-ms") == 0 && s_num(v, 3600000, &n))
            ko.ready_ms = n;
        else if (strcmp(a, "--pod-jitter-ms") == 0 && s_num(v, 3600000, &n))
            ko.jitter_ms = n;
        else if (strcmp(a, "--submit-poll-ms") == 0 && s_num(v, 3600000, &n) && n > 0)
            ko.submit_poll_ms = n;
        else if (strcmp(a, "--submit-dns-fail-ms") == 0 && s_num(v, 3600000, &n) && n > 0)
            ko.submit_dns_fail_ms = n;
        else if (strcmp(a, "--kubeconfig-out") == 0)
            kubeconfig = v;
        else if (strcmp(a, "--ready-file") == 0)
            ready = v;
        else if (strcmp(a, "--fault") == 0 && nfaults < KUBESIM_MAX_FAULT_FLAGS)
            faults[nfaults++] = v;
        else if (strcmp(a, "--log-level") == 0 && log_level_parse(v, &level) == 0)
            ;
        else if (s_rule(a)) {
            fprintf(stderr, "kubesim: %s: must be %s, got \"%s\"\n", a, s_rule(a), v);
            return 2;
        } else {
            fprintf(stderr, "kubesim: unknown option %s (see kubesim --help)\n", a);
            return 2;
        }
    }
    log_setup("kubesim", level, 2);
    signal(SIGPIPE, SIG_IGN);
    loop_t *loop = loop_new();
    apiserver_t *api = loop ? apiserver_new(loop, &o) : NULL;
    int rc = 1;
    if (!api) {
        fprintf(stderr,
                "kubesim: cannot start (port %d or --tls-port %d in use, or a bad --tls-san?)\n",
                o.port, o.tls_port);
        goto out;
    }
    for (int i = 0; i < nfaults; i++)
        if (apiserver_add_fault_spec(api, faults[i]) < 0) {
            fprintf(stderr, "kubesim: bad --fault %s (want verb:resource:rate[:code])\n",
                    faults[i]);
            rc = 2;
            goto out;
        }
    apiserver_set_latency(api, latency, jitter);
    loop_watch_signal(loop, SIGTERM, s_on_signal, NULL);
    loop_watch_signal(loop, SIGINT, s_on_signal, NULL);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", apiserver_port(api));
    if (kubeconfig && s_kubeconfig(api, kubeconfig, NULL, url, o.token) < 0) {
        fprintf(stderr, "kubesim: cannot write %s: %s\n", kubeconfig, strerror(errno));
        goto out;
    }
    for (int i = 0; i < nkc; i++)
        if (s_kubeconfig(api, kc_file[i], kc_server[i], url, o.token) < 0) {
            fprintf(stderr, "kubesim: --kubeconfig-for: cannot write %s: %s\n", kc_file[i],
                    strerror(errno));
            goto out;
        }
    printf("kubesim listening on %s\n", url);
    if (apiserver_tls_port(api) > 0)
        printf("kubesim listening on https://127.0.0.1:%d\n", apiserver_tls_port(api));
    fflush(stdout);
    if (ready) {
        char line[80];
        snprintf(line, sizeof(line), "%s\n", url);
        if (privfs_write_atomic(ready, line, strlen(line), PRIVFS_FILE_MODE) < 0) {
            fprintf(stderr, "kubesim: cannot write %s\n", ready);
            goto out;
        }
    }
    log_info("kubesim serving", "url", url, NULL);
    rc = loop_run(loop) < 0 ? 1 : 0;
    log_info("kubesim stopping", NULL);
out:
    apiserver_destroy(&api);
    loop_destroy(&loop);
    return rc;
}
