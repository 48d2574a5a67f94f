/*
 * gates_it: KubeRay's gated RayCluster features on kubesim, with the scheduler's feature gates on
 * (`gates_it on`) and off (`gates_it off`); the watcher, the reconciler and kubesim in-process
 * (tests/integration/harness.h).
 *
 * on:  (a) the upstream sample ray-cluster.network-policy-deny-all.yaml applied unchanged (gate
 *      RayClusterNetworkPolicy): its two NetworkPolicies exist field by field (§4.6) with their
 *      Created Events; mode DenyAllIngress updates them; the worker group removed deletes its
 *      policy; networkPolicy removed deletes them all.
 *      (b) gate GCSFaultToleranceEmbeddedStorage: a rocksdb RayCluster gets the PVC
 *      "<c>-gcs-pvc" (1Gi, ReadWriteOnce, owned), Bound by kubesim's provisioner; its head pod
 *      mounts it at /data/gcs with RAY_gcs_storage=rocksdb; the cluster is ready; the RayCluster
 *      deleted, the PVC goes. deletionPolicy Retain: the PVC has no owner reference and stays.
 *      A user claimName: no PVC is created and the head mounts the user's claim.
 * off: both RayClusters are refused with KubeRay's InvalidRayClusterSpec Event; no pods, no
 *      NetworkPolicy, no PVC.
 */
#include "harness.h"
#include "netpol.h"

#define IT_WAIT_MS 20000 /* longest wait for one expected state */
#define IT_QUIET_MS 1500 /* how long "nothing happens" is watched */

static harness_t g_h;

/* ---------- predicates ---------- */

typedef struct {
    const char *group, *resource, *ns, *name;
} it_obj_t;

static bool s_exists(void *arg)
{
    const it_obj_t *o = arg;
    json_t *x = harness_get(&g_h, o->group, o->resource, o->ns, o->name);
    json_decref(x);
    return x != NULL;
}

static bool s_gone(void *arg)
{
    return !s_exists(arg);
}

/* A PVC ns/name is Bound. */
static bool s_pvc_bound(void *arg)
{
    const it_obj_t *o = arg;
    json_t *x = harness_get(&g_h, "", "persistentvolumeclaims", o->ns, o->name);
    bool b = x && !strcmp(jx_str(x, "status.phase", ""), "Bound");
    json_decref(x);
    return b;
}

/* RayCluster ns/name has state ready. */
static bool s_rc_ready(void *arg)
{
    const it_obj_t *o = arg;
    json_t *x = harness_get(&g_h, "ray.io", "rayclusters", o->ns, o->name);
    bool b = x && !strcmp(jx_str(x, "status.state", ""), "ready");
    json_decref(x);
    return b;
}

typedef struct {
    const char *ns, *name, *reason, *part;
} it_event_t;

static bool s_event(void *arg)
{
    const it_event_t *e = arg;
    return harness_has_event(&g_h, e->ns, e->name, e->reason, e->part);
}

/* The NetworkPolicy ns/name's spec.policyTypes is exactly `want` (a JSON text). */
typedef struct {
    const char *ns, *name, *types;
} it_types_t;

static bool s_np_types(void *arg)
{
    const it_types_t *t = arg;
    json_t *x = harness_get(&g_h, "networking.k8s.io", "networkpolicies", t->ns, t->name);
    json_t *w = json_loads(t->types, 0, NULL);
    bool b = x && w && json_equal(jx_get(x, "spec.policyTypes"), w);
    json_decref(x);
    json_decref(w);
    return b;
}

/* ---------- helpers ---------- */

static bool s_eq_yaml(const json_t *got, const char *want_yaml)
{
    json_t *docs = NULL;
    json_t *w = NULL;
    if (yaml_load_buf(want_yaml, strlen(want_yaml), "want", &docs, NULL) == 0)
        w = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    bool eq = got && w && json_equal(got, w);
    if (!eq) {
        char *g = got ? json_dumps(got, JSON_SORT_KEYS | JSON_INDENT(1)) : NULL;
        char *x = w ? json_dumps(w, JSON_SORT_KEYS | JSON_INDENT(1)) : NULL;
        printf("  got:  %s\n  want: %s\n", g ? g : "(none)", x ? x : "(none)");
        free(g);
        free(x);
    }
    json_decref(w);
    return eq;
}

/* Creates the YAML text `yaml` (one document) in namespace ns through the admin client. */
static int s_create_yaml(const char *ns, const char *yaml)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/doc.yaml", g_h.dir);
    int failed = 0;
    CHECK(harness_write_file(path, yaml, strlen(yaml)) == 0);
    failed += harness_apply_file(&g_h, path, ns, NULL, 0);
    return failed;
}

static int s_delete(const char *group, const char *resource, const char *ns, const char *name)
{
    objstore_status_t st = {0};
    return objstore_delete(apiserver_store(g_h.api), harness_res(&g_h, group, resource), ns, name,
                           NULL, NULL, NULL, &st);
}

/* The head pod of RayCluster ns/c (new reference), or NULL. */
static json_t *s_head_pod(const char *ns, const char *c)
{
    json_t *pods = harness_list(&g_h, "", "pods", ns);
    json_t *head = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        const char *cl = harness_label(p, LABEL_CLUSTER), *t = harness_label(p, LABEL_NODE_TYPE);
        if (!head && cl && t && !strcmp(cl, c) && !strcmp(t, "head"))
            head = json_incref(p);
    }
    json_decref(pods);
    return head;
}

/* The claimName of the head pod's volume `vol`, "" when none. */
static const char *s_claim_of(const json_t *pod, const char *vol)
{
    size_t i;
    json_t *v;
    json_array_foreach(jx_get(pod, "spec.volumes"), i, v)
    {
        if (!strcmp(jx_str(v, "name", ""), vol))
            return jx_str(v, "persistentVolumeClaim.claimName", "");
    }
    return "";
}

/* True when the head pod's first container mounts `vol` at `path` and has env name=value. */
static bool s_mount_env(const json_t *pod, const char *vol, const char *path, const char *name,
                        const char *value)
{
    const json_t *c = json_array_get(jx_get(pod, "spec.containers"), 0);
    bool mount = false, env = false;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(c, "volumeMounts"), i, x)
    {
        if (!strcmp(jx_str(x, "name", ""), vol) && !strcmp(jx_str(x, "mountPath", ""), path))
            mount = true;
    }
    json_array_foreach(json_object_get(c, "env"), i, x)
    {
        if (!strcmp(jx_str(x, "name", ""), name) && !strcmp(jx_str(x, "value", ""), value))
            env = true;
    }
    return mount && env;
}

static size_t s_count(const char *group, const char *resource, const char *ns)
{
    json_t *l = harness_list(&g_h, group, resource, ns);
    size_t n = json_array_size(l);
    json_decref(l);
    return n;
}

/* ---------- (a) NetworkPolicy ---------- */

#define NS_NP "np"
#define RC_NP "raycluster-deny-all"
#define NP_HEAD RC_NP "-head"
#define NP_WORKERS RC_NP "-workers-workergroup"

static const char s_dns_rule[] = "- to:\n"
                                 "  - namespaceSelector:\n"
                                 "      matchLabels: {kubernetes.io/metadata.name: kube-system}\n"
                                 "    podSelector:\n"
                                 "      matchLabels: {k8s-app: kube-dns}\n"
                                 "  ports:\n"
                                 "  - {port: 53, protocol: UDP}\n"
                                 "  - {port: 53, protocol: TCP}\n";

static void s_deny_ingress(json_t *rc, void *arg)
{
    (void)arg;
    json_t *np = json_object_get(json_object_get(rc, "spec"), "networkPolicy");
    json_object_set_new(np, "mode", json_string("DenyAllIngress"));
    json_object_del(np, "head");
    json_object_del(np, "worker");
}

static void s_drop_workers(json_t *rc, void *arg)
{
    (void)arg;
    json_object_set_new(json_object_get(rc, "spec"), "workerGroupSpecs", json_array());
}

static void s_drop_netpol(json_t *rc, void *arg)
{
    (void)arg;
    json_object_del(json_object_get(rc, "spec"), "networkPolicy");
}

static int s_netpol_on(void)
{
    int failed = 0;
    char path[1024];
    snprintf(path, sizeof(path), "%s/kuberay/samples/ray-cluster.network-policy-deny-all.yaml",
             harness_shared_dir());
    failed += harness_apply_file(&g_h, path, NS_NP, NULL, 0);
    it_obj_t head = {"networking.k8s.io", "networkpolicies", NS_NP, NP_HEAD};
    it_obj_t workers = {"networking.k8s.io", "networkpolicies", NS_NP, NP_WORKERS};
    CHECK(harness_wait(&g_h, s_exists, &head, IT_WAIT_MS));
    CHECK(harness_wait(&g_h, s_exists, &workers, IT_WAIT_MS));
    json_t *rc = harness_get(&g_h, "ray.io", "rayclusters", NS_NP, RC_NP);
    const char *uid = jx_str(rc, "metadata.uid", "");
    json_t *h = harness_get(&g_h, "networking.k8s.io", "networkpolicies", NS_NP, NP_HEAD);
    json_t *w = harness_get(&g_h, "networking.k8s.io", "networkpolicies", NS_NP, NP_WORKERS);
    char want[2048];
    /* labels and owner */
    CHECK(s_eq_yaml(jx_get(h, "metadata.labels"),
                    "{ray.io/cluster: " RC_NP ", ray.io/group: headgroup,"
                    " app.kubernetes.io/name: kuberay, app.kubernetes.io/created-by: "
                    "kuberay-operator}"));
    CHECK(s_eq_yaml(jx_get(w, "metadata.labels"),
                    "{ray.io/cluster: " RC_NP ", ray.io/group: workergroup,"
                    " app.kubernetes.io/name: kuberay, app.kubernetes.io/created-by: "
                    "kuberay-operator}"));
    snprintf(want, sizeof(want),
             "- {apiVersion: ray.io/v1, kind: RayCluster, name: " RC_NP
             ", uid: %s, controller: true, blockOwnerDeletion: true}\n",
             uid);
    CHECK(s_eq_yaml(jx_get(h, "metadata.ownerReferences"), want));
    CHECK(s_eq_yaml(jx_get(w, "metadata.ownerReferences"), want));
    /* specs */
    snprintf(want, sizeof(want),
             "podSelector: {matchLabels: {ray.io/cluster: " RC_NP ", ray.io/node-type: head}}\n"
             "policyTypes: [Ingress, Egress]\n"
             "ingress:\n"
             "- from: [{podSelector: {matchLabels: {ray.io/cluster: " RC_NP "}}}]\n"
             "egress:\n"
             "- to: [{podSelector: {matchLabels: {ray.io/cluster: " RC_NP "}}}]\n"
             "%s",
             s_dns_rule);
    CHECK(s_eq_yaml(jx_get(h, "spec"), want));
    snprintf(want, sizeof(want),
             "podSelector: {matchLabels: {ray.io/cluster: " RC_NP ", ray.io/node-type: worker,"
             " ray.io/group: workergroup}}\n"
             "policyTypes: [Ingress, Egress]\n"
             "ingress:\n"
             "- from: [{podSelector: {matchLabels: {ray.io/cluster: " RC_NP "}}}]\n"
             "egress:\n"
             "- to: [{podSelector: {matchLabels: {ray.io/cluster: " RC_NP "}}}]\n"
             "%s",
             s_dns_rule);
    CHECK(s_eq_yaml(jx_get(w, "spec"), want));
    json_decref(h);
    json_decref(w);
    json_decref(rc);
    it_event_t ev = {NS_NP, RC_NP, NETPOL_REASON_CREATED,
                     "Created NetworkPolicy " NS_NP "/" NP_HEAD};
    CHECK(harness_wait(&g_h, s_event, &ev, IT_WAIT_MS));
    /* the mode changes: both policies updated (Ingress only, the user's egress rules gone) */
    CHECK(harness_rc_modify(&g_h, NS_NP, RC_NP, s_deny_ingress, NULL) == 0);
    it_types_t t = {NS_NP, NP_HEAD, "[\"Ingress\"]"};
    CHECK(harness_wait(&g_h, s_np_types, &t, IT_WAIT_MS));
    t.name = NP_WORKERS;
    CHECK(harness_wait(&g_h, s_np_types, &t, IT_WAIT_MS));
    h = harness_get(&g_h, "networking.k8s.io", "networkpolicies", NS_NP, NP_HEAD);
    CHECK(h && !jx_get(h, "spec.egress"));
    json_decref(h);
    ev = (it_event_t){NS_NP, RC_NP, NETPOL_REASON_UPDATED, "Updated NetworkPolicy " NS_NP "/"};
    CHECK(harness_wait(&g_h, s_event, &ev, IT_WAIT_MS));
    /* the worker group removed: its policy deleted, the head's kept */
    CHECK(harness_rc_modify(&g_h, NS_NP, RC_NP, s_drop_workers, NULL) == 0);
    CHECK(harness_wait(&g_h, s_gone, &workers, IT_WAIT_MS));
    CHECK(s_exists(&head));
    ev = (it_event_t){NS_NP, RC_NP, NETPOL_REASON_DELETED,
                      "Deleted NetworkPolicy " NS_NP "/" NP_WORKERS};
    CHECK(harness_wait(&g_h, s_event, &ev, IT_WAIT_MS));
    /* networkPolicy removed: every policy deleted */
    CHECK(harness_rc_modify(&g_h, NS_NP, RC_NP, s_drop_netpol, NULL) == 0);
    CHECK(harness_wait(&g_h, s_gone, &head, IT_WAIT_MS));
    CHECK(s_count("networking.k8s.io", "networkpolicies", NS_NP) == 0);
    /* a policy of the head's name that another owner holds: KubeRay's collision Warning, the
     * foreign policy untouched */
    failed += s_create_yaml("np2", "apiVersion: networking.k8s.io/v1\n"
                                   "kind: NetworkPolicy\n"
                                   "metadata: {name: clash-head}\n"
                                   "spec: {podSelector: {}}\n");
    failed += s_create_yaml("np2", "apiVersion: ray.io/v1\n"
                                   "kind: RayCluster\n"
                                   "metadata: {name: clash}\n"
                                   "spec:\n"
                                   "  networkPolicy: {mode: DenyAllIngress}\n"
                                   "  headGroupSpec:\n"
                                   "    rayStartParams: {}\n"
                                   "    template:\n"
                                   "      spec:\n"
                                   "        containers:\n"
                                   "        - {name: ray-head, image: rayproject/ray:2.52.0}\n");
    ev = (it_event_t){"np2", "clash", NETPOL_REASON_COLLISION,
                      "NetworkPolicy np2/clash-head already exists and is not owned by this "
                      "RayCluster, network isolation will not be applied. Rename the existing "
                      "NetworkPolicy or use a different RayCluster name to avoid the collision"};
    CHECK(harness_wait(&g_h, s_event, &ev, IT_WAIT_MS));
    h = harness_get(&g_h, "networking.k8s.io", "networkpolicies", "np2", "clash-head");
    CHECK(h && !jx_get(h, "metadata.ownerReferences") && !jx_get(h, "spec.ingress"));
    json_decref(h);
    if (g_h.verbose)
        printf("  networkpolicy: %s\n", failed ? "FAILED" : "ok");
    return failed;
}

/* ---------- (b) embedded GCS storage ---------- */

#define NS_GCS "gcs"

static const char s_rc_fmt[] = "apiVersion: ray.io/v1\n"
                               "kind: RayCluster\n"
                               "metadata: {name: %s}\n"
                               "spec:\n"
                               "  rayVersion: '2.52.0'\n"
                               "  gcsFaultToleranceOptions:\n"
                               "    backend: rocksdb\n"
                               "%s"
                               "  headGroupSpec:\n"
                               "    rayStartParams: {}\n"
                               "    template:\n"
                               "      spec:\n"
                               "        containers:\n"
                               "        - name: ray-head\n"
                               "          image: rayproject/ray:2.52.0\n"
                               "          resources: {requests: {cpu: '1', memory: 1Gi}}\n";

static int s_create_rc(const char *ns, const char *name, const char *storage)
{
    char y[2048];
    snprintf(y, sizeof(y), s_rc_fmt, name, storage);
    return s_create_yaml(ns, y);
}

static int s_gcs_on(void)
{
    int failed = 0;
    /* the operator-managed PVC */
    failed += s_create_rc(NS_GCS, "gcs", "");
    it_obj_t pvc = {"", "persistentvolumeclaims", NS_GCS, "gcs-gcs-pvc"};
    it_obj_t rco = {"ray.io", "rayclusters", NS_GCS, "gcs"};
    CHECK(harness_wait(&g_h, s_pvc_bound, &pvc, IT_WAIT_MS));
    json_t *rc = harness_get(&g_h, "ray.io", "rayclusters", NS_GCS, "gcs");
    json_t *p = harness_get(&g_h, "", "persistentvolumeclaims", NS_GCS, "gcs-gcs-pvc");
    CHECK(p && !strcmp(jx_str(p, "spec.resources.requests.storage", ""), "1Gi"));
    CHECK(s_eq_yaml(jx_get(p, "spec.accessModes"), "[ReadWriteOnce]"));
    CHECK(!strcmp(jx_str(p, "status.capacity.storage", ""), "1Gi"));
    CHECK(!strcmp(jx_str(json_array_get(jx_get(p, "metadata.ownerReferences"), 0), "uid", "-"),
                  jx_str(rc, "metadata.uid", "")));
    json_decref(p);
    json_decref(rc);
    CHECK(harness_wait(&g_h, s_rc_ready, &rco, IT_WAIT_MS));
    json_t *head = s_head_pod(NS_GCS, "gcs");
    CHECK(head && !strcmp(s_claim_of(head, "gcs-storage"), "gcs-gcs-pvc"));
    CHECK(head && s_mount_env(head, "gcs-storage", "/data/gcs", "RAY_gcs_storage", "rocksdb"));
    json_decref(head);
    /* the RayCluster deleted: its PVC goes with it */
    CHECK(s_delete("ray.io", "rayclusters", NS_GCS, "gcs") == 0);
    CHECK(harness_wait(&g_h, s_gone, &pvc, IT_WAIT_MS));

    /* deletionPolicy Retain: no owner reference, the PVC outlives the RayCluster */
    failed += s_create_rc(NS_GCS, "keep", "    storage: {deletionPolicy: Retain, size: 2Gi}\n");
    it_obj_t kpvc = {"", "persistentvolumeclaims", NS_GCS, "keep-gcs-pvc"};
    it_obj_t krc = {"ray.io", "rayclusters", NS_GCS, "keep"};
    CHECK(harness_wait(&g_h, s_pvc_bound, &kpvc, IT_WAIT_MS));
    p = harness_get(&g_h, "", "persistentvolumeclaims", NS_GCS, "keep-gcs-pvc");
    CHECK(p && !jx_get(p, "metadata.ownerReferences") &&
          !strcmp(jx_str(p, "spec.resources.requests.storage", ""), "2Gi"));
    json_decref(p);
    CHECK(harness_wait(&g_h, s_rc_ready, &krc, IT_WAIT_MS));
    CHECK(s_delete("ray.io", "rayclusters", NS_GCS, "keep") == 0);
    CHECK(harness_wait(&g_h, s_gone, &krc, IT_WAIT_MS));
    harness_pump(&g_h, IT_QUIET_MS);
    CHECK(s_pvc_bound(&kpvc));

    /* a user claimName: no PVC created, the head mounts the user's claim */
    failed += s_create_yaml(NS_GCS, "apiVersion: v1\n"
                                    "kind: PersistentVolumeClaim\n"
                                    "metadata: {name: mine}\n"
                                    "spec:\n"
                                    "  accessModes: [ReadWriteOnce]\n"
                                    "  resources: {requests: {storage: 5Gi}}\n");
    failed += s_create_rc(NS_GCS, "user", "    storage: {claimName: mine}\n");
    it_obj_t urc = {"ray.io", "rayclusters", NS_GCS, "user"};
    CHECK(harness_wait(&g_h, s_rc_ready, &urc, IT_WAIT_MS));
    it_obj_t upvc = {"", "persistentvolumeclaims", NS_GCS, "user-gcs-pvc"};
    CHECK(!s_exists(&upvc));
    head = s_head_pod(NS_GCS, "user");
    CHECK(head && !strcmp(s_claim_of(head, "gcs-storage"), "mine"));
    json_decref(head);
    if (g_h.verbose)
        printf("  gcs storage: %s\n", failed ? "FAILED" : "ok");
    return failed;
}

/* ---------- gates off ---------- */

static int s_off(void)
{
    int failed = 0;
    char path[1024];
    snprintf(path, sizeof(path), "%s/kuberay/samples/ray-cluster.network-policy-deny-all.yaml",
             harness_shared_dir());
    failed += harness_apply_file(&g_h, path, NS_NP, NULL, 0);
    failed += s_create_rc(NS_GCS, "gcs", "");
    it_event_t ev = {NS_NP, RC_NP, VALIDATE_REASON_SPEC,
                     VALIDATE_PREFIX_SPEC " " NS_NP "/" RC_NP ": spec.networkPolicy requires the "
                                          "RayClusterNetworkPolicy feature gate to be enabled"};
    CHECK(harness_wait(&g_h, s_event, &ev, IT_WAIT_MS));
    ev = (it_event_t){NS_GCS, "gcs", VALIDATE_REASON_SPEC,
                      "requires the GCSFaultToleranceEmbeddedStorage feature gate to be enabled"};
    CHECK(harness_wait(&g_h, s_event, &ev, IT_WAIT_MS));
    harness_pump(&g_h, IT_QUIET_MS);
    CHECK(s_count("", "pods", NS_NP) == 0 && s_count("", "pods", NS_GCS) == 0);
    CHECK(s_count("networking.k8s.io", "networkpolicies", NS_NP) == 0);
    CHECK(s_count("", "persistentvolumeclaims", NS_GCS) == 0);
    if (g_h.verbose)
        printf("  gates off: %s\n", failed ? "FAILED" : "ok");
    return failed;
}

int main(int argc, char **argv)
{
    bool on = false, verbose = false;
    for (int i = 1; i < argc; i++) {
        on = on || !strcmp(argv[i], "on");
        verbose = verbose || !strcmp(argv[i], "-v");
    }
    validate_gates_t gates;
    validate_gates_default(&gates);
    gates.network_policy = on;
    gates.gcs_embedded_storage = on;
    int failed = harness_init(
        &g_h, on ? "gates_it on" : "gates_it off", verbose, verbose ? LOG_WARN : LOG_ERROR,
        &(harness_opts_t){
            .nodes = 2, .wait_ms = IT_WAIT_MS, .qps = 1000, .concurrency = 4, .gates = &gates});
    if (g_h.api)
        failed += harness_start(&g_h);
    if (g_h.api && g_h.started)
        failed += on ? s_netpol_on() + s_gcs_on() : s_off();
    if (g_h.started)
        failed += harness_stop(&g_h);
    harness_end(&g_h);
    return SELFTEST_RESULT(on ? "gates_it on" : "gates_it off", true);
}
