/*
 * mtls_it: the mTLS stage of the RayCluster reconciler (gate RayClusterMTLS) in-process on one
 * loop, set up like tests/integration/fairness: kubesim (simulate=true, so its simulated
 * cert-manager runs), the watcher logic, the scheduler logic with the gate on. Its point is the
 * RBAC mode (rbac.mtls, tests/integration/rbac): the reconciler's requests for cert-manager
 * Issuers and Certificates and for the leaf Secrets are made as the chart's ServiceAccount, and
 * the run fails on any 403.
 *
 * Scenario: the cert-manager CRDs (tests/integration/mtls/crds/cert-manager.yaml) are installed;
 * a RayCluster from ray-cluster.sample.yaml with tlsOptions.enabled is created; the two Issuers
 * and three Certificates appear, both leaf Certificates become Ready and the head leaf lists the
 * head pod IP; every pod carries the wait-for-tls-ip-san init container and the ray-tls volume.
 *
 * Usage: mtls_it [-v]. Exit 0 when every check passes.
 */
#include "harness.h"

#define IT_WAIT_MS 60000 /* longest wait for one step (a bound, not an assertion) */
#define IT_NS "default" /* namespace */
#define IT_RC "mtls" /* the RayCluster */

static harness_t g_h; /* kubesim, watcher, bus and reconciler on one loop */

static bool s_ready_true(const json_t *o)
{
    json_t *c = jx_array_find(jx_get(o, "status.conditions"), "type", "Ready");
    return c && strcmp(jx_str(c, "status", ""), "True") == 0;
}

/* Both leaves Ready, the head leaf listing the head pod's IP, every pod Running. */
static bool s_done(void *arg)
{
    (void)arg;
    json_t *head =
        harness_get(&g_h, "cert-manager.io", "certificates", IT_NS, "ray-head-cert-" IT_RC);
    json_t *worker =
        harness_get(&g_h, "cert-manager.io", "certificates", IT_NS, "ray-worker-cert-" IT_RC);
    json_t *pods = harness_list(&g_h, "", "pods", IT_NS);
    bool ok = head && worker && s_ready_true(head) && s_ready_true(worker) &&
              json_array_size(pods) > 1 && harness_count_ready(pods, true) == json_array_size(pods);
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        const char *t = harness_label(p, "ray.io/node-type");
        if (ok && t && strcmp(t, "head") == 0)
            ok = jx_array_has_string(jx_get(head, "spec.ipAddresses"),
                                     jx_str(p, "status.podIP", "-"));
    }
    json_decref(head);
    json_decref(worker);
    json_decref(pods);
    return ok;
}

static int s_scenario(void)
{
    json_t *rc = NULL;
    int failed = harness_start(&g_h);
    if (!g_h.started)
        goto out;
    char missing[256];
    CHECK(harness_apply_file(&g_h, RF_SOURCE_DIR "/tests/integration/mtls/crds/cert-manager.yaml",
                             IT_NS, missing, sizeof(missing)) == 0);
    rc = harness_load_sample(&g_h, "ray-cluster.sample.yaml");
    CHECK(rc != NULL);
    if (!rc)
        goto out;
    jx_set_path(rc, "metadata.name", json_string(IT_RC));
    json_object_set_new(jx_get(rc, "spec"), "tlsOptions", json_pack("{s:b}", "enabled", 1));
    k8s_res_t rcres = {
        .group = "ray.io", .version = "v1", .resource = "rayclusters", .namespace_ = IT_NS};
    CHECK(harness_create(&g_h, g_h.admin, &rcres, rc, NULL, 0) == 0);
    bool ok = harness_wait(&g_h, s_done, NULL, IT_WAIT_MS);
    CHECK(ok);
    static const char *const issuers[] = {"ray-selfsigned-issuer-" IT_RC, "ray-ca-issuer-" IT_RC};
    for (size_t i = 0; i < 2; i++) {
        json_t *o = harness_get(&g_h, "cert-manager.io", "issuers", IT_NS, issuers[i]);
        CHECK(o && s_ready_true(o));
        json_decref(o);
    }
    json_t *ca =
        harness_get(&g_h, "cert-manager.io", "certificates", IT_NS, "ray-ca-certificate-" IT_RC);
    CHECK(ca && json_is_true(jx_get(ca, "spec.isCA")) && s_ready_true(ca));
    json_decref(ca);
    json_t *pods = harness_list(&g_h, "", "pods", IT_NS);
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        CHECK(strcmp(jx_str(json_array_get(jx_get(p, "spec.initContainers"), 0), "name", ""),
                     "wait-for-tls-ip-san") == 0);
        CHECK(jx_array_find(jx_get(p, "spec.volumes"), "name", "ray-tls") != NULL);
    }
    if (g_h.verbose)
        printf("  %zu pods with the TLS parts, certificates Ready: %s\n", json_array_size(pods),
               ok ? "yes" : "no");
    json_decref(pods);
out:
    json_decref(rc);
    failed += harness_stop(&g_h);
    return failed;
}

int main(int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    validate_gates_t gates;
    validate_gates_default(&gates);
    gates.mtls = true;
    int failed = harness_init(
        &g_h, "mtls_it", verbose, verbose ? LOG_WARN : LOG_ERROR,
        &(harness_opts_t){
            .nodes = 2, .wait_ms = IT_WAIT_MS, .qps = 1000, .concurrency = 2, .gates = &gates});
    if (g_h.api)
        failed += s_scenario();
    harness_end(&g_h);
    return SELFTEST_RESULT("mtls_it", true);
}
