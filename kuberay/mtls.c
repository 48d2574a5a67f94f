/*
 * mtls: KubeRay's mTLS objects and pod parts. See mtls.h.
 */
#include "mtls.h"

#include "err.h"
#include "json.h"
#include "labels.h"
#include "objbuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KubeRay's wait script (configureTLS), with CERT = RayTLSCertMountPath + "/tls.crt". */
static const char s_wait_script[] =
    "CERT=\"" MTLS_MOUNT_PATH "/tls.crt\"\n"
    "if [ -z \"${POD_IP}\" ]; then\n"
    "  POD_IP=$(hostname -i 2>/dev/null | awk '{print $1}')\n"
    "fi\n"
    "if ! command -v openssl >/dev/null 2>&1; then\n"
    "  echo \"openssl not found; cannot verify IP SAN\" >&2\n"
    "  exit 1\n"
    "fi\n"
    "echo \"Waiting for TLS cert to include IP SAN for ${POD_IP}...\"\n"
    "while true; do\n"
    "  if openssl x509 -in \"${CERT}\" -noout -text 2>/dev/null | grep -qE \"IP "
    "Address:${POD_IP}([^0-9.]|$)\"; then\n"
    "    echo \"TLS cert now includes IP SAN for ${POD_IP}\"\n"
    "    exit 0\n"
    "  fi\n"
    "  echo \"IP SAN for ${POD_IP} not yet in cert, retrying in 5s...\"\n"
    "  sleep 5\n"
    "done";

static const char *s_name(const json_t *rc)
{
    return jx_str(rc, "metadata.name", NULL);
}

bool mtls_enabled(const json_t *raycluster)
{
    const json_t *spec = jx_get(raycluster, "spec");
    return json_is_true(jx_get(spec ? spec : raycluster, "tlsOptions.enabled"));
}

void mtls_selfsigned_issuer_name(const char *cluster, char *out)
{
    snprintf(out, MTLS_NAME_MAX, "ray-selfsigned-issuer-%s", cluster);
}

void mtls_ca_issuer_name(const char *cluster, char *out)
{
    snprintf(out, MTLS_NAME_MAX, "ray-ca-issuer-%s", cluster);
}

void mtls_ca_cert_name(const char *cluster, char *out)
{
    snprintf(out, MTLS_NAME_MAX, "ray-ca-certificate-%s", cluster);
}

void mtls_ca_secret_name(const json_t *raycluster, char *out)
{
    const char *uid = jx_str(raycluster, "metadata.uid", "");
    snprintf(out, MTLS_NAME_MAX, "%s-ca-secret-%.8s", jx_str(raycluster, "metadata.name", ""), uid);
}

void mtls_cert_name(const char *cluster, mtls_node_t node, char *out)
{
    snprintf(out, MTLS_NAME_MAX, "ray-%s-cert-%s", node == MTLS_HEAD ? "head" : "worker", cluster);
}

void mtls_secret_name(const char *cluster, mtls_node_t node, char *out)
{
    snprintf(out, MTLS_NAME_MAX, "ray-%s-secret-%s", node == MTLS_HEAD ? "head" : "worker",
             cluster);
}

/* {apiVersion, kind, metadata{name, namespace, labels, ownerReferences}, spec}; spec stolen. */
static json_t *s_obj(const json_t *rc, const char *kind, const char *name, json_t *spec)
{
    const char *c = s_name(rc);
    if (!c || !spec) {
        json_decref(spec);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}, s:o}, s:o}", "apiVersion",
                     MTLS_GROUP "/" MTLS_VERSION, "kind", kind, "metadata", "name", name,
                     "namespace", jx_str(rc, "metadata.namespace", ""), "labels", LABEL_CLUSTER, c,
                     LABEL_CREATED_BY, LABEL_CREATED_BY_KUBERAY, "ownerReferences",
                     objbuild_owner_refs(rc), "spec", spec);
}

static json_t *s_secret_template(const json_t *rc)
{
    return json_pack("{s:{s:s}}", "labels", LABEL_CLUSTER, s_name(rc));
}

json_t *mtls_selfsigned_issuer(const json_t *raycluster)
{
    char n[MTLS_NAME_MAX];
    if (!s_name(raycluster))
        return NULL;
    mtls_selfsigned_issuer_name(s_name(raycluster), n);
    return s_obj(raycluster, "Issuer", n, json_pack("{s:{}}", "selfSigned"));
}

json_t *mtls_ca_issuer(const json_t *raycluster)
{
    char n[MTLS_NAME_MAX], sec[MTLS_NAME_MAX];
    if (!s_name(raycluster))
        return NULL;
    mtls_ca_issuer_name(s_name(raycluster), n);
    mtls_ca_secret_name(raycluster, sec);
    return s_obj(raycluster, "Issuer", n, json_pack("{s:{s:s}}", "ca", "secretName", sec));
}

json_t *mtls_ca_certificate(const json_t *raycluster)
{
    char n[MTLS_NAME_MAX], sec[MTLS_NAME_MAX], iss[MTLS_NAME_MAX], cn[MTLS_NAME_MAX];
    const char *c = s_name(raycluster);
    if (!c)
        return NULL;
    mtls_ca_cert_name(c, n);
    mtls_ca_secret_name(raycluster, sec);
    mtls_selfsigned_issuer_name(c, iss);
    snprintf(cn, sizeof(cn), "ray-ca-%s", c);
    json_t *spec =
        json_pack("{s:b, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:o}", "isCA", 1, "commonName", cn,
                  "secretName", sec, "duration", MTLS_CA_DURATION, "renewBefore",
                  MTLS_CA_RENEW_BEFORE, "issuerRef", "name", iss, "kind", "Issuer", "group",
                  MTLS_GROUP, "secretTemplate", s_secret_template(raycluster));
    return s_obj(raycluster, "Certificate", n, spec);
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 127.0.0.1 then the sorted unique strings of ips. */
static json_t *s_ip_list(const json_t *ips)
{
    size_t n = json_array_size(ips), k = 0, i;
    const char **v = calloc(n + 1, sizeof(*v));
    json_t *out = json_array();
    if (!v || !out) {
        free(v);
        json_decref(out);
        return NULL;
    }
    json_t *e;
    json_array_foreach(ips, i, e)
    {
        if (json_is_string(e) && json_string_length(e) > 0 &&
            strcmp(json_string_value(e), MTLS_LOOPBACK_IP) != 0)
            v[k++] = json_string_value(e);
    }
    qsort(v, k, sizeof(*v), s_cmp);
    json_array_append_new(out, json_string(MTLS_LOOPBACK_IP));
    for (i = 0; i < k; i++)
        if (i == 0 || strcmp(v[i], v[i - 1]) != 0)
            json_array_append_new(out, json_string(v[i]));
    free(v);
    return out;
}

json_t *mtls_leaf_certificate(const json_t *raycluster, mtls_node_t node, const char *fqdn,
                              const json_t *ips)
{
    char n[MTLS_NAME_MAX], sec[MTLS_NAME_MAX], iss[MTLS_NAME_MAX];
    const char *c = s_name(raycluster);
    if (!c)
        return NULL;
    mtls_cert_name(c, node, n);
    mtls_secret_name(c, node, sec);
    mtls_ca_issuer_name(c, iss);
    json_t *dns = json_pack("[s]", "localhost");
    if (dns && node == MTLS_HEAD && fqdn && fqdn[0])
        json_array_append_new(dns, json_string(fqdn));
    json_t *spec =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:{s:s, s:s, s:s}, s:o}", "secretName", sec,
                  "duration", MTLS_LEAF_DURATION, "renewBefore", MTLS_LEAF_RENEW_BEFORE, "dnsNames",
                  dns, "ipAddresses", s_ip_list(ips), "issuerRef", "name", iss, "kind", "Issuer",
                  "group", MTLS_GROUP, "secretTemplate", s_secret_template(raycluster));
    return s_obj(raycluster, "Certificate", n, spec);
}

json_t *mtls_pod_ips(const json_t *pods, mtls_node_t node)
{
    json_t *out = json_array();
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod)
    {
        json_t *t = jx_getv(pod, "metadata", "labels", LABEL_NODE_TYPE, NULL);
        bool head = json_is_string(t) && strcmp(json_string_value(t), "head") == 0;
        if (head != (node == MTLS_HEAD) || jx_get(pod, "metadata.deletionTimestamp"))
            continue;
        const char *ip = jx_str(pod, "status.podIP", "");
        if (ip[0])
            json_array_append_new(out, json_string(ip));
    }
    return out;
}

bool mtls_leaf_differs(const json_t *have, const json_t *want)
{
    return !json_equal(jx_get(have, "spec.dnsNames"), jx_get(want, "spec.dnsNames")) ||
           !json_equal(jx_get(have, "spec.ipAddresses"), jx_get(want, "spec.ipAddresses"));
}

bool mtls_cert_ready(const json_t *cert)
{
    json_t *c = jx_array_find(jx_get(cert, "status.conditions"), "type", "Ready");
    return c && strcmp(jx_str(c, "status", ""), "True") == 0 &&
           jx_int(c, "observedGeneration", -1) == jx_int(cert, "metadata.generation", -2);
}

bool mtls_secret_complete(const json_t *secret)
{
    static const char *const keys[] = {"tls.crt", "tls.key", "ca.crt"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = jx_getv(secret, "data", keys[i], NULL);
        if (!json_is_string(v) || json_string_length(v) == 0)
            return false;
    }
    return true;
}

static bool s_env_has(const json_t *env, const char *name)
{
    return jx_array_find(env, "name", name) != NULL;
}

int mtls_container(json_t *container)
{
    static const char *const env[][2] = {
        {"RAY_USE_TLS", "1"},
        {"RAY_TLS_SERVER_CERT", MTLS_MOUNT_PATH "/tls.crt"},
        {"RAY_TLS_SERVER_KEY", MTLS_MOUNT_PATH "/tls.key"},
        {"RAY_TLS_CA_CERT", MTLS_MOUNT_PATH "/ca.crt"},
    };
    json_t *arr = jx_child_arr(container, "env");
    if (!arr)
        return ERR_NOMEM;
    for (size_t i = 0; i < 4; i++) {
        if (s_env_has(arr, env[i][0]))
            continue;
        if (json_array_append_new(
                arr, json_pack("{s:s, s:s}", "name", env[i][0], "value", env[i][1])) != 0)
            return ERR_NOMEM;
    }
    json_t *mounts = jx_child_arr(container, "volumeMounts");
    if (!mounts)
        return ERR_NOMEM;
    if (jx_array_find(mounts, "name", MTLS_VOLUME) ||
        jx_array_find(mounts, "mountPath", MTLS_MOUNT_PATH))
        return 0;
    return json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name", MTLS_VOLUME,
                                                   "mountPath", MTLS_MOUNT_PATH, "readOnly", 1)) ==
                   0
               ? 0
               : ERR_NOMEM;
}

static json_t *s_resources(void)
{
    return json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "limits", "cpu", "50m", "memory", "64Mi",
                     "requests", "cpu", "50m", "memory", "64Mi");
}

int mtls_configure_pod(const json_t *raycluster, mtls_node_t node, json_t *pod_spec)
{
    if (!mtls_enabled(raycluster))
        return 0;
    json_t *ray = json_array_get(json_object_get(pod_spec, "containers"), 0);
    const char *c = s_name(raycluster);
    if (!ray || !c)
        return ERR_INVAL;
    char sec[MTLS_NAME_MAX];
    mtls_secret_name(c, node, sec);
    json_t *vols = jx_child_arr(pod_spec, "volumes");
    if (!vols)
        return ERR_NOMEM;
    if (!jx_array_find(vols, "name", MTLS_VOLUME) &&
        json_array_append_new(vols, json_pack("{s:s, s:{s:s}}", "name", MTLS_VOLUME, "secret",
                                              "secretName", sec)) != 0)
        return ERR_NOMEM;
    int rc = mtls_container(ray);
    json_t *ics = jx_child_arr(pod_spec, "initContainers");
    if (!ics)
        return ERR_NOMEM;
    size_t i;
    json_t *ic;
    json_array_foreach(ics, i, ic)
    {
        if (rc == 0 && strcmp(jx_str(ic, "name", ""), "wait-gcs-ready") == 0)
            rc = mtls_container(ic);
    }
    if (rc || jx_array_find(ics, "name", MTLS_INIT_CONTAINER))
        return rc;
    json_t *w = json_pack(
        "{s:s, s:[s, s], s:[s], s:[{s:s, s:{s:{s:s}}}], s:[{s:s, s:s, s:b}], s:o}", "name",
        MTLS_INIT_CONTAINER, "command", "sh", "-c", "args", s_wait_script, "env", "name", "POD_IP",
        "valueFrom", "fieldRef", "fieldPath", "status.podIP", "volumeMounts", "name", MTLS_VOLUME,
        "mountPath", MTLS_MOUNT_PATH, "readOnly", 1, "resources", s_resources());
    if (!w)
        return ERR_NOMEM;
    static const char *const copy[] = {"image", "imagePullPolicy", "securityContext"};
    for (i = 0; i < 3; i++) {
        json_t *v = json_object_get(ray, copy[i]);
        if (v && !json_is_null(v))
            json_object_set_new(w, copy[i], json_deep_copy(v));
    }
    return json_array_insert_new(ics, 0, w) == 0 ? 0 : ERR_NOMEM;
}

#ifdef RF_SELFTEST
#include "selftest.h"

int mtls_test(bool verbose)
{
    int failed = 0;
    json_t *rc = json_loads(
        "{\"metadata\":{\"name\":\"rc\",\"namespace\":\"ns\",\"uid\":\"0123456789abcdef\"},"
        "\"spec\":{\"tlsOptions\":{\"enabled\":true}}}",
        0, NULL);
    CHECK(rc && mtls_enabled(rc) && mtls_enabled(jx_get(rc, "spec")));
    char n[MTLS_NAME_MAX];
    mtls_ca_secret_name(rc, n);
    CHECK(strcmp(n, "rc-ca-secret-01234567") == 0);
    mtls_cert_name("rc", MTLS_WORKER, n);
    CHECK(strcmp(n, "ray-worker-cert-rc") == 0);
    mtls_secret_name("rc", MTLS_HEAD, n);
    CHECK(strcmp(n, "ray-head-secret-rc") == 0);
    json_t *o = mtls_selfsigned_issuer(rc);
    CHECK(strcmp(jx_str(o, "metadata.name", ""), "ray-selfsigned-issuer-rc") == 0 &&
          json_is_object(jx_get(o, "spec.selfSigned")) &&
          strcmp(jx_str(o, "apiVersion", ""), "cert-manager.io/v1") == 0 &&
          strcmp(jx_str(json_array_get(jx_get(o, "metadata.ownerReferences"), 0), "uid", ""),
                 "0123456789abcdef") == 0);
    json_decref(o);
    o = mtls_ca_issuer(rc);
    CHECK(strcmp(jx_str(o, "spec.ca.secretName", ""), "rc-ca-secret-01234567") == 0 &&
          strcmp(jx_str(o, "metadata.name", ""), "ray-ca-issuer-rc") == 0);
    json_decref(o);
    o = mtls_ca_certificate(rc);
    CHECK(json_is_true(jx_get(o, "spec.isCA")) &&
          strcmp(jx_str(o, "spec.duration", ""), "87600h") == 0 &&
          strcmp(jx_str(o, "spec.renewBefore", ""), "720h") == 0 &&
          strcmp(jx_str(o, "spec.issuerRef.name", ""), "ray-selfsigned-issuer-rc") == 0 &&
          strcmp(jx_str(o, "metadata.name", ""), "ray-ca-certificate-rc") == 0);
    json_decref(o);
    json_t *pods = json_loads(
        "[{\"metadata\":{\"labels\":{\"ray.io/node-type\":\"head\"}},\"status\":{\"podIP\":"
        "\"10.0.0.9\"}},{\"metadata\":{\"labels\":{\"ray.io/node-type\":\"worker\"}},\"status\":"
        "{\"podIP\":\"10.0.0.3\"}},{\"metadata\":{\"labels\":{\"ray.io/node-type\":\"worker\"}},"
        "\"status\":{\"podIP\":\"10.0.0.2\"}},{\"metadata\":{\"labels\":{\"ray.io/node-type\":"
        "\"worker\"}},\"status\":{}},{\"metadata\":{\"labels\":{\"ray.io/node-type\":\"worker\"},"
        "\"deletionTimestamp\":\"x\"},\"status\":{\"podIP\":\"10.0.0.4\"}}]",
        0, NULL);
    json_t *wips = mtls_pod_ips(pods, MTLS_WORKER), *hips = mtls_pod_ips(pods, MTLS_HEAD);
    CHECK(json_array_size(wips) == 2 && json_array_size(hips) == 1);
    json_t *head = mtls_leaf_certificate(rc, MTLS_HEAD, "rc-head-svc.ns.svc.cluster.local", hips);
    json_t *want = json_loads("[\"localhost\",\"rc-head-svc.ns.svc.cluster.local\"]", 0, NULL);
    CHECK(json_equal(jx_get(head, "spec.dnsNames"), want));
    json_decref(want);
    want = json_loads("[\"127.0.0.1\",\"10.0.0.9\"]", 0, NULL);
    CHECK(json_equal(jx_get(head, "spec.ipAddresses"), want));
    json_decref(want);
    CHECK(strcmp(jx_str(head, "spec.secretName", ""), "ray-head-secret-rc") == 0 &&
          strcmp(jx_str(head, "spec.duration", ""), "2160h") == 0 &&
          strcmp(jx_str(head, "spec.renewBefore", ""), "360h") == 0 &&
          strcmp(jx_str(head, "spec.issuerRef.name", ""), "ray-ca-issuer-rc") == 0);
    json_t *worker = mtls_leaf_certificate(rc, MTLS_WORKER, "ignored", wips);
    want = json_loads("[\"127.0.0.1\",\"10.0.0.2\",\"10.0.0.3\"]", 0, NULL);
    CHECK(json_equal(jx_get(worker, "spec.ipAddresses"), want) &&
          json_array_size(jx_get(worker, "spec.dnsNames")) == 1);
    json_decref(want);
    CHECK(!mtls_leaf_differs(worker, worker) && mtls_leaf_differs(worker, head));
    /* Readiness. */
    json_t *cert = json_loads("{\"metadata\":{\"generation\":2},\"status\":{\"conditions\":[{"
                              "\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":1}]}}",
                              0, NULL);
    CHECK(!mtls_cert_ready(cert));
    json_object_set_new(jx_get(cert, "metadata"), "generation", json_integer(1));
    CHECK(mtls_cert_ready(cert));
    json_t *sec = json_loads("{\"data\":{\"tls.crt\":\"YQ==\",\"tls.key\":\"YQ==\"}}", 0, NULL);
    CHECK(!mtls_secret_complete(sec));
    json_object_set_new(jx_get(sec, "data"), "ca.crt", json_string("YQ=="));
    CHECK(mtls_secret_complete(sec));
    /* Pod parts: volume, env in order (a user value kept), mounts, the init container first. */
    json_t *pspec = json_loads(
        "{\"containers\":[{\"name\":\"ray\",\"image\":\"rayproject/ray:2.52.0\",\"env\":[{"
        "\"name\":\"RAY_TLS_CA_CERT\",\"value\":\"/mine\"}]}],\"initContainers\":[{\"name\":"
        "\"wait-gcs-ready\"},{\"name\":\"user\"}]}",
        0, NULL);
    CHECK(mtls_configure_pod(rc, MTLS_WORKER, pspec) == 0);
    json_t *ray = json_array_get(jx_get(pspec, "containers"), 0);
    json_t *env = jx_get(ray, "env");
    CHECK(json_array_size(env) == 4 &&
          strcmp(jx_str(json_array_get(env, 1), "name", ""), "RAY_USE_TLS") == 0 &&
          strcmp(jx_str(json_array_get(env, 3), "name", ""), "RAY_TLS_SERVER_KEY") == 0 &&
          strcmp(jx_str(json_array_get(env, 0), "value", ""), "/mine") == 0);
    CHECK(jx_array_find(jx_get(ray, "volumeMounts"), "mountPath", "/etc/ray/tls"));
    json_t *v = jx_array_find(jx_get(pspec, "volumes"), "name", "ray-tls");
    CHECK(v && strcmp(jx_str(v, "secret.secretName", ""), "ray-worker-secret-rc") == 0);
    json_t *ics = jx_get(pspec, "initContainers");
    json_t *w = json_array_get(ics, 0);
    CHECK(json_array_size(ics) == 3 && strcmp(jx_str(w, "name", ""), MTLS_INIT_CONTAINER) == 0);
    CHECK(strcmp(jx_str(w, "image", ""), "rayproject/ray:2.52.0") == 0 &&
          strcmp(jx_str(w, "resources.limits.cpu", ""), "50m") == 0 &&
          strcmp(jx_str(w, "resources.requests.memory", ""), "64Mi") == 0 &&
          strcmp(jx_str(json_array_get(jx_get(w, "command"), 1), "", "-c"), "-c") == 0);
    const char *script = json_string_value(json_array_get(jx_get(w, "args"), 0));
    CHECK(script && strstr(script, "grep -qE \"IP Address:${POD_IP}([^0-9.]|$)\"") &&
          strstr(script, "sleep 5") && strncmp(script, "CERT=\"/etc/ray/tls/tls.crt\"\n", 28) == 0);
    CHECK(jx_array_find(jx_get(json_array_get(ics, 1), "env"), "name", "RAY_USE_TLS"));
    CHECK(!jx_get(json_array_get(ics, 2), "env")); /* user init containers untouched */
    /* Idempotent. */
    CHECK(mtls_configure_pod(rc, MTLS_WORKER, pspec) == 0 && json_array_size(ics) == 3 &&
          json_array_size(jx_get(pspec, "volumes")) == 1 && json_array_size(env) == 4);
    json_decref(pspec);
    /* Disabled: nothing. */
    json_object_set_new(jx_get(rc, "spec"), "tlsOptions", json_pack("{s:b}", "enabled", 0));
    pspec = json_pack("{s:[{s:s}]}", "containers", "name", "ray");
    CHECK(mtls_configure_pod(rc, MTLS_HEAD, pspec) == 0 && !jx_get(pspec, "volumes"));
    json_decref(pspec);
    json_decref(sec);
    json_decref(cert);
    json_decref(head);
    json_decref(worker);
    json_decref(wips);
    json_decref(hips);
    json_decref(pods);
    json_decref(rc);
    return SELFTEST_RESULT("mtls", verbose);
}

#endif /* RF_SELFTEST */
