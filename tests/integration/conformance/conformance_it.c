/*
 * conformance_it: every KubeRay sample through rayfleet's reconciler, checked against the spec
 * rules, in-process on one loop.
 *
 * Setup (as tests/integration/scheduler): kubesim's API server with simulate=true and rayfleet's
 * CRDs from deploy/crds, the watcher logic writing observed.db and publishing on an inproc://
 * bus, and the scheduler logic (bus subscriber -> work queue -> reconcile) writing through the
 * Kubernetes API.
 *
 * Samples: every *.yaml / *.yml under $RF_SHARED_DIR/kuberay/samples (recursive, sorted). Each
 * RayCluster document is a sample; so is the spec.rayClusterSpec of a RayJob and the
 * spec.rayClusterConfig of a RayService, wrapped as a RayCluster named after the sample object
 * and labelled ray.io/originated-from-crd / ray.io/originated-from-cr-name as KubeRay's RayJob
 * and RayService controllers label theirs. Each sample gets its own namespace (cf-NNN), where
 * the namespaced objects kubesim serves from the same file (ConfigMaps, Secrets, Services,
 * ServiceAccounts, RBAC, ...) are created first; every other document is counted and printed as
 * not applied with the reason (cluster-scoped, not served by kubesim, another Ray kind).
 *
 * Batches of CF_BATCH samples are applied through the API; the reconciler runs until each
 * sample's head pod, worker pods (desired count per group) and services exist, or, for a sample
 * KubeRay rejects (validate.h says so), its Warning event exists; then CF_SETTLE_MS more. The
 * created objects are read back from kubesim and checked one rule at a time against the
 * expected objects: podbuild_head / podbuild_worker_ex on the stored RayCluster (with the
 * defaults the reconciler applies) for pods, objbuild for services, plus independent checks of
 * the label, name and ownerReference rules. Each failure names the sample and the rule.
 *
 * Usage: conformance_it [-v] [-g GATES]. -v prints a line per sample and the totals; -g runs the
 * reconciler and the expectations with those feature gates (KubeRay's --feature-gates). Exit 0 when
 * every check passes.
 */
#include "harness.h"
#include "names.h"
#include "objbuild.h"
#include "podbuild.h"
#include "validate.h"

#include <dirent.h>
#include <sqlite3.h>
#include <sys/stat.h>

#define CF_BATCH 16 /* samples applied at once */
#define CF_WAIT_MS 30000 /* longest wait for a batch to settle */
#define CF_SETTLE_MS 1500 /* extra time after a batch settled (duplicates, late pods) */
#define CF_MAX_SAMPLES 512 /* samples at most */
#define CF_MAX_FILE (8u << 20) /* largest sample file */
#define CF_MAX_DEPTH 6 /* sample directory depth */
#define CF_PATH_MAX 1024 /* longest path */
#define CF_NAME_MAX 256 /* longest name */
#define CF_SHOW_MAX 300 /* characters of a value shown in a failure */
#define CF_GEN_SUFFIX 5 /* generateName suffix length */
#define CF_CONCURRENCY 16 /* reconcile passes in flight */

/* One sample: a RayCluster to apply and what was found. */
typedef struct {
    char file[CF_PATH_MAX]; /* path relative to the samples directory */
    char kind[32]; /* RayCluster, RayJob or RayService */
    char name[CF_NAME_MAX]; /* the sample object's (and the RayCluster's) name */
    char ns[32]; /* the namespace it runs in */
    json_t *rc; /* the RayCluster to apply (owned) */
    json_t *extras; /* other documents of the same file (borrowed from the file's docs) */
    bool applied; /* the RayCluster was created */
    char note[1024]; /* why it was not applied, or other remarks */
    json_t *stored; /* the stored RayCluster with the reconciler's defaults (owned) */
    bool invalid; /* KubeRay rejects it */
    char reason[64]; /* expected event reason when invalid */
    char message[RECONCILE_MSG_MAX]; /* expected event message when invalid */
    bool settled; /* the wait is over for it */
    int pods; /* pods found */
    int rules; /* rules checked */
    int failures; /* rules failed */
    json_t *failed_rules; /* distinct failed rule names (owned array) */
} sample_t;

static harness_t g_h; /* kubesim, watcher, bus and reconciler on one loop */
static sample_t *g_s; /* the samples */
static validate_gates_t g_gates; /* the feature gates of the run (-g), KubeRay's defaults else */
static size_t g_ns; /* their count */
static int g_rules, g_fails; /* totals */
static int g_docs, g_other_docs; /* documents; those not of a Ray kind */
static int g_extras_applied, g_not_applied; /* other documents applied per sample namespace, not */
static int failed; /* setup CHECK failures */

/* ---------- rules ---------- */

static void s_show(const char *what, const json_t *v)
{
    char *t = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
    printf("      %s: %.*s%s\n", what, CF_SHOW_MAX, t ? t : "(absent)",
           t && strlen(t) > CF_SHOW_MAX ? "..." : "");
    free(t);
}

/* Shows where two values differ: the first differing array element or object key. */
static void s_diff(const json_t *want, const json_t *got)
{
    if (json_is_array(want) && json_is_array(got)) {
        size_t n = json_array_size(want) > json_array_size(got) ? json_array_size(want)
                                                                : json_array_size(got);
        for (size_t i = 0; i < n; i++) {
            if (!json_equal(json_array_get(want, i), json_array_get(got, i))) {
                printf("      first difference at [%zu] (sizes %zu/%zu)\n", i,
                       json_array_size(want), json_array_size(got));
                s_show("want", json_array_get(want, i));
                s_show("got ", json_array_get(got, i));
                return;
            }
        }
    }
    if (json_is_object(want) && json_is_object(got)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            if (!json_equal(v, json_object_get(got, k))) {
                printf("      key %s:\n", k);
                s_diff(v, json_object_get(got, k));
                return;
            }
        }
        json_object_foreach((json_t *)got, k, v)
        {
            if (!json_object_get(want, k)) {
                printf("      unexpected key %s:\n", k);
                s_show("got ", v);
                return;
            }
        }
    }
    s_show("want", want);
    s_show("got ", got);
}

/* Counts one rule of sample `s` about object `what`; a failure prints the sample, the object,
 * the rule and (when given) the expected and actual values. Returns ok. */
static bool s_rule(sample_t *s, bool ok, const char *what, const char *rule, const json_t *want,
                   const json_t *got, bool show)
{
    s->rules++;
    g_rules++;
    if (ok)
        return true;
    s->failures++;
    g_fails++;
    printf("FAIL %s#%s [%s] %s\n", s->file, s->name, what, rule);
    if (show)
        s_diff(want, got);
    size_t i;
    json_t *r;
    json_array_foreach(s->failed_rules, i, r) if (!strcmp(json_string_value(r), rule)) return false;
    json_array_append_new(s->failed_rules, json_string(rule));
    return false;
}

static bool s_eq(const json_t *a, const json_t *b)
{
    return (!a && !b) || (a && b && json_equal(a, b));
}

/* A rule that two values are equal (absent == absent). */
static bool s_rule_eq(sample_t *s, const char *what, const char *rule, const json_t *want,
                      const json_t *got)
{
    return s_rule(s, s_eq(want, got), what, rule, want, got, true);
}

static bool s_streq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* ---------- kubesim access ---------- */

/* The live pods of sample `s` (labelled with its cluster, not terminating), as a new array. */
static json_t *s_pods(const sample_t *s)
{
    json_t *all = harness_list(&g_h, "", "pods", s->ns), *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(all, i, p)
    {
        if (s_streq(harness_label(p, "ray.io/cluster"), s->name) &&
            !jx_get(p, "metadata.deletionTimestamp"))
            json_array_append(out, p);
    }
    json_decref(all);
    return out;
}

/* KubeRay's GetWorkerGroupDesiredReplicas (spec §1.9): 0 when the group or the cluster is
 * suspended, else replicas clamped to [minReplicas, maxReplicas] (max when min > max), times
 * numOfHosts. Written here from the spec, not taken from rcstatus. */
static int64_t s_desired(const json_t *rc, const json_t *wg)
{
    if (jx_bool(rc, "spec.suspend", false) || jx_bool(wg, "suspend", false))
        return 0;
    int64_t mn = jx_int(wg, "minReplicas", 0), mx = jx_int(wg, "maxReplicas", INT32_MAX);
    const json_t *r = json_object_get(wg, "replicas");
    int64_t n = json_is_integer(r) ? json_integer_value(r) : mn;
    if (mn > mx)
        n = mx;
    else if (n < mn)
        n = mn;
    else if (n > mx)
        n = mx;
    return n * jx_int(wg, "numOfHosts", 1);
}

/* The Events of `s`'s RayCluster, as a new array. */
static json_t *s_events(const sample_t *s)
{
    json_t *all = harness_list(&g_h, "", "events", s->ns), *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e)
    {
        if (s_streq(jx_str(e, "involvedObject.name", NULL), s->name) &&
            s_streq(jx_str(e, "involvedObject.kind", NULL), "RayCluster"))
            json_array_append(out, e);
    }
    json_decref(all);
    return out;
}

static bool s_has_service(const sample_t *s, const char *name)
{
    json_t *o = name ? harness_get(&g_h, "", "services", s->ns, name) : NULL;
    json_decref(o);
    return o != NULL;
}

/* True when the wait for `s` is over. */
static bool s_settled(sample_t *s)
{
    if (!s->applied || !s->stored)
        return true;
    if (s->invalid) {
        json_t *ev = s_events(s);
        bool found = false;
        size_t i;
        json_t *e;
        json_array_foreach(ev, i, e) found = found || s_streq(jx_str(e, "reason", ""), s->reason);
        json_decref(ev);
        return found;
    }
    json_t *pods = s_pods(s);
    const json_t *spec = json_object_get(s->stored, "spec");
    bool suspended = jx_bool(spec, "suspend", false);
    size_t heads = 0, i;
    json_t *p;
    json_array_foreach(pods, i, p) heads += s_streq(harness_label(p, "ray.io/node-type"), "head");
    bool ok = heads == (suspended ? 0u : 1u);
    json_t *wg;
    json_array_foreach(json_object_get(spec, "workerGroupSpecs"), i, wg)
    {
        int64_t n = 0;
        size_t k;
        json_array_foreach(pods, k, p) n +=
            s_streq(harness_label(p, "ray.io/node-type"), "worker") &&
            s_streq(harness_label(p, "ray.io/group"), jx_str(wg, "groupName", ""));
        ok = ok && n == s_desired(s->stored, wg);
    }
    json_decref(pods);
    char *svc = names_head_service(s->name, spec);
    ok = ok && s_has_service(s, svc);
    free(svc);
    if (ok && objbuild_needs_headless(s->stored)) {
        char *n = names_headless_service(s->name);
        ok = s_has_service(s, n);
        free(n);
    }
    return ok;
}

/* ---------- samples ---------- */

static bool s_is_ray_kind(const char *kind)
{
    return s_streq(kind, "RayCluster") || s_streq(kind, "RayJob") || s_streq(kind, "RayService") ||
           s_streq(kind, "RayCronJob");
}

/* Adds the samples of one file (documents `docs`, owned by the caller's list `keep`). */
static void s_add_file(const char *rel, json_t *docs)
{
    size_t i, first = g_ns;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        g_docs++;
        const char *kind = jx_str(doc, "kind", "");
        const char *name = jx_str(doc, "metadata.name", "");
        char gname[CF_NAME_MAX];
        if (!name[0] && jx_str(doc, "metadata.generateName", NULL)) {
            /* a RayJob with generateName: the cluster gets a fixed name in its place */
            snprintf(gname, sizeof(gname), "%scf%zu", jx_str(doc, "metadata.generateName", ""),
                     g_ns);
            name = gname;
        }
        json_t *spec = NULL;
        if (s_streq(kind, "RayCluster"))
            spec = json_object_get(doc, "spec");
        else if (s_streq(kind, "RayJob"))
            spec = jx_get(doc, "spec.rayClusterSpec");
        else if (s_streq(kind, "RayService"))
            spec = jx_get(doc, "spec.rayClusterConfig");
        if (!json_is_object(spec)) {
            if (s_is_ray_kind(kind)) {
                g_not_applied++;
                printf("  not a sample: %s#%s (%s: %s)\n", rel, name, kind,
                       s_streq(kind, "RayCronJob")
                           ? "RayCronJob, outside the brief's kinds"
                           : "no cluster spec (clusterSelector: uses an existing cluster)");
            }
            continue;
        }
        if (g_ns >= CF_MAX_SAMPLES) {
            printf("  too many samples; %s#%s dropped\n", rel, name);
            failed++;
            continue;
        }
        sample_t *s = &g_s[g_ns];
        memset(s, 0, sizeof(*s));
        snprintf(s->file, sizeof(s->file), "%s", rel);
        snprintf(s->kind, sizeof(s->kind), "%s", kind);
        snprintf(s->name, sizeof(s->name), "%s", name);
        snprintf(s->ns, sizeof(s->ns), "cf-%03zu", g_ns);
        s->failed_rules = json_array();
        if (s_streq(kind, "RayCluster")) {
            s->rc = json_deep_copy(doc);
            json_object_del(json_object_get(s->rc, "metadata"), "namespace");
            json_object_del(json_object_get(s->rc, "metadata"), "generateName");
            json_object_set_new(json_object_get(s->rc, "metadata"), "name", json_string(name));
        } else {
            s->rc = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}}, s:O}", "apiVersion", "ray.io/v1",
                              "kind", "RayCluster", "metadata", "name", name, "labels",
                              LABEL_ORIGINATED_FROM_CRD, kind, LABEL_ORIGINATED_FROM_CR_NAME, name,
                              "spec", spec);
        }
        json_object_del(json_object_get(s->rc, "metadata"), "status");
        json_object_del(s->rc, "status");
        s->extras = docs;
        g_ns++;
    }
    json_array_foreach(docs, i, doc)
    {
        if (s_is_ray_kind(jx_str(doc, "kind", "")))
            continue;
        g_other_docs++;
        if (g_ns > first)
            continue; /* applied (or reported) with the file's samples */
        g_not_applied++;
        printf("  not applied: %s#%s (%s; no RayCluster sample in the file)\n", rel,
               jx_str(doc, "metadata.name", ""), jx_str(doc, "kind", ""));
    }
}

static int s_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Walks `dir` (relative part `rel`) in sorted order; loaded documents go into `keep`. */
static void s_walk(const char *dir, const char *rel, json_t *keep, int depth)
{
    struct dirent **list = NULL;
    int n = depth > CF_MAX_DEPTH ? -1 : scandir(dir, &list, NULL, s_cmp);
    for (int k = 0; k < n; k++) {
        const char *nm = list[k]->d_name;
        char path[CF_PATH_MAX], r2[CF_PATH_MAX];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", dir, nm);
        snprintf(r2, sizeof(r2), "%s%s%s", rel, rel[0] ? "/" : "", nm);
        size_t l = strlen(nm);
        if (nm[0] == '.' || stat(path, &sb) != 0) {
        } else if (S_ISDIR(sb.st_mode)) {
            s_walk(path, r2, keep, depth + 1);
        } else if ((l > 5 && !strcmp(nm + l - 5, ".yaml")) ||
                   (l > 4 && !strcmp(nm + l - 4, ".yml"))) {
            json_t *docs = NULL;
            buf_t err;
            buf_init(&err, 4096);
            if (yaml_load_file(path, CF_MAX_FILE, &docs, &err) != 0) {
                printf("  not loadable: %s: %s\n", r2, buf_str(&err));
                failed++;
            } else {
                json_array_append_new(keep, docs);
                s_add_file(r2, docs);
            }
            buf_free(&err);
        } else {
            printf("  not a YAML file, ignored: %s\n", r2);
        }
        free(list[k]);
    }
    free(list);
}

/* ---------- applying ---------- */

/* Creates the namespaced documents of the sample's file that kubesim serves, except Ray kinds,
 * in the sample's namespace; counts and prints the others. */
static void s_apply_extras(k8s_client_t *c, sample_t *s)
{
    size_t i;
    json_t *doc;
    json_array_foreach(s->extras, i, doc)
    {
        const char *kind = jx_str(doc, "kind", ""), *av = jx_str(doc, "apiVersion", "");
        const char *name = jx_str(doc, "metadata.name", "");
        if (s_is_ray_kind(kind))
            continue;
        char group[128] = "", version[64] = "";
        const char *slash = strchr(av, '/');
        if (slash) {
            snprintf(group, sizeof(group), "%.*s", (int)(slash - av), av);
            snprintf(version, sizeof(version), "%s", slash + 1);
        } else {
            snprintf(version, sizeof(version), "%s", av);
        }
        objstore_res_t *r = objstore_find_kind(apiserver_store(g_h.api), group, kind);
        const objstore_resdesc_t *d = r ? objstore_res_desc(r) : NULL;
        if (!d || !d->namespaced) {
            g_not_applied++;
            if (g_h.verbose)
                printf("  %s: %s %s not applied (%s)\n", s->ns, kind, name,
                       d ? "cluster-scoped"
                         : "not served by kubesim; the simulated kubelet "
                           "does not need it");
            continue;
        }
        json_t *o = json_deep_copy(doc);
        json_object_del(json_object_get(o, "metadata"), "namespace");
        k8s_res_t res = {
            .group = group, .version = version, .resource = d->resource, .namespace_ = s->ns};
        char msg[512];
        int rc = harness_create(&g_h, c, &res, o, msg, sizeof(msg));
        json_decref(o);
        if (rc == 0) {
            g_extras_applied++;
        } else {
            g_not_applied++;
            printf("  %s: %s %s rejected by kubesim: %s\n", s->ns, kind, name, msg);
        }
    }
}

/* What the reconciler will conclude from validation (its s_validate order). */
static void s_expect_validation(sample_t *s)
{
    buf_t m;
    buf_init(&m, RECONCILE_MSG_MAX);
    const json_t *spec = json_object_get(s->stored, "spec");
    const char *reason = NULL, *prefix = NULL;
    if (validate_metadata(s->stored, &m) != 0) {
        reason = VALIDATE_REASON_METADATA;
        prefix = VALIDATE_PREFIX_METADATA;
    } else if (validate_spec(spec, jx_get(s->stored, "metadata.annotations"), &g_gates, &m) != 0) {
        reason = VALIDATE_REASON_SPEC;
        prefix = VALIDATE_PREFIX_SPEC;
    } else {
        buf_reset(&m);
        if (validate_upgrade_options(s->stored, &m) != 0) {
            reason = VALIDATE_REASON_SPEC;
            prefix = VALIDATE_PREFIX_UPGRADE;
        }
    }
    if (reason) {
        s->invalid = true;
        snprintf(s->reason, sizeof(s->reason), "%s", reason);
        snprintf(s->message, sizeof(s->message), "%s %s/%s: %s", prefix, s->ns, s->name,
                 buf_str(&m));
    }
    buf_free(&m);
}

static void s_apply(k8s_client_t *c, sample_t *s)
{
    k8s_res_t nsres = {.version = "v1", .resource = "namespaces"};
    json_t *ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                           "metadata", "name", s->ns);
    char msg[512];
    int rc = harness_create(&g_h, c, &nsres, ns, msg, sizeof(msg));
    json_decref(ns);
    if (rc != 0) {
        snprintf(s->note, sizeof(s->note), "namespace not created: %s", msg);
        s_rule(s, false, "namespace", "apply: namespace created", NULL, NULL, false);
        return;
    }
    s_apply_extras(c, s);
    k8s_res_t res = {
        .group = "ray.io", .version = "v1", .resource = "rayclusters", .namespace_ = s->ns};
    rc = harness_create(&g_h, c, &res, s->rc, msg, sizeof(msg));
    if (rc != 0) {
        snprintf(s->note, sizeof(s->note), "RayCluster rejected by kubesim: %s", msg);
        printf("FAIL %s#%s: %s\n", s->file, s->name, s->note);
        s_rule(s, false, "RayCluster", "apply: kubesim accepts the RayCluster", NULL, NULL, false);
        return;
    }
    s->applied = true;
    json_t *got = harness_get(&g_h, "ray.io", "rayclusters", s->ns, s->name);
    s->stored = got ? json_deep_copy(got) : NULL;
    json_decref(got);
    if (!s->stored || validate_apply_defaults(s->stored) != 0) {
        s_rule(s, false, "RayCluster", "apply: the RayCluster reads back", NULL, NULL, false);
        return;
    }
    s_expect_validation(s);
}

/* ---------- checks ---------- */

/* The ownerReference rules on object `o` (what names it in messages). */
static void s_check_owner(sample_t *s, const char *what, const json_t *o)
{
    const json_t *refs = jx_get(o, "metadata.ownerReferences");
    const json_t *own = json_array_get(refs, 0);
    s_rule(s, json_array_size(refs) == 1, what, "ownerReferences: exactly one", NULL, refs, true);
    s_rule(s,
           s_streq(jx_str(own, "kind", NULL), "RayCluster") &&
               s_streq(jx_str(own, "apiVersion", NULL), "ray.io/v1") &&
               s_streq(jx_str(own, "name", NULL), s->name),
           what, "ownerReferences: kind RayCluster ray.io/v1 and the cluster's name", NULL, own,
           true);
    json_t *uid = json_object_get(json_object_get(s->stored, "metadata"), "uid");
    s_rule_eq(s, what, "ownerReferences: uid of the RayCluster", uid, json_object_get(own, "uid"));
    s_rule(s, jx_bool(own, "controller", false), what, "ownerReferences: controller true", NULL,
           own, true);
    s_rule(s, jx_bool(own, "blockOwnerDeletion", false), what,
           "ownerReferences: blockOwnerDeletion true", NULL, own, true);
}

/* The label rules of the spec (§1.4), computed here from the RayCluster, not from podbuild. */
static void s_check_labels(sample_t *s, const char *what, const json_t *pod, bool head,
                           const json_t *group)
{
    const json_t *labels = jx_get(pod, "metadata.labels");
    const char *gname = head ? "headgroup" : jx_str(group, "groupName", "");
    const json_t *tl = jx_get(group, "template.metadata.labels");
    const json_t *gl = json_object_get(group, "labels");
    char want[CF_NAME_MAX + 16];
    json_t *w;
#define LBL(key, val, rule)                                                                        \
    do {                                                                                           \
        w = json_string(val);                                                                      \
        s_rule_eq(s, what, rule, w, json_object_get(labels, key));                                 \
        json_decref(w);                                                                            \
    } while (0)
    LBL("ray.io/cluster", s->name, "labels: ray.io/cluster = cluster name");
    LBL("ray.io/node-type", head ? "head" : "worker", "labels: ray.io/node-type");
    LBL("ray.io/group", gname, "labels: ray.io/group = headgroup / groupName");
    snprintf(want, sizeof(want), "%s-%s", s->name, head ? "head" : "worker");
    char *id = names_check_label(want);
    LBL("ray.io/identifier", id ? id : "",
        "labels: ray.io/identifier = CheckLabel(<cluster>-<type>)");
    free(id);
    LBL("ray.io/is-ray-node", "yes", "labels: ray.io/is-ray-node = yes");
    const char *app = json_string_value(json_object_get(gl, "app.kubernetes.io/name"));
    if (!app)
        app = json_string_value(json_object_get(tl, "app.kubernetes.io/name"));
    LBL("app.kubernetes.io/name", app ? app : "kuberay",
        "labels: app.kubernetes.io/name = template's else kuberay");
    LBL("app.kubernetes.io/created-by", "kuberay-operator",
        "labels: app.kubernetes.io/created-by = kuberay-operator");
    const char *crd = harness_label(s->stored, LABEL_ORIGINATED_FROM_CRD);
    if (s_streq(crd, "RayService"))
        LBL(LABEL_SERVE, head ? "false" : "true", "labels: RayService ray.io/serve");
#undef LBL
    bool ok = true;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tl, k, v)
    {
        if (!strcmp(k, "ray.io/cluster") || !strcmp(k, "ray.io/node-type") ||
            !strcmp(k, "ray.io/group") || json_object_get(gl, k))
            continue;
        ok = ok && s_eq(v, json_object_get(labels, k));
    }
    s_rule(s, ok, what, "labels: template labels merged", tl, labels, true);
    ok = true;
    json_object_foreach((json_t *)gl, k, v)
    {
        if (!strcmp(k, "ray.io/cluster") || !strcmp(k, "ray.io/node-type") ||
            !strcmp(k, "ray.io/group"))
            continue;
        ok = ok && s_eq(v, json_object_get(labels, k));
    }
    s_rule(s, ok, what, "labels: group labels merged (win over the template's)", gl, labels, true);
}

/* The container list of a pod spec by name, as a new array of names. */
static json_t *s_names(const json_t *arr)
{
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c) json_array_append_new(out, json_string(jx_str(c, "name", "")));
    return out;
}

static const json_t *s_named(const json_t *arr, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c) if (s_streq(jx_str(c, "name", NULL), name)) return c;
    return NULL;
}

/* The value of "--key=value" in a rendered command line, copied into out; false if absent. */
static bool s_flag(const char *cmd, const char *key, char *out, size_t n)
{
    char pat[128];
    snprintf(pat, sizeof(pat), " --%s=", key);
    const char *p = cmd ? strstr(cmd, pat) : NULL;
    if (!p)
        return false;
    p += strlen(pat);
    size_t l = strcspn(p, " ");
    snprintf(out, n, "%.*s", (int)l, p);
    return true;
}

/* A worker's --address (in KUBERAY_GEN_RAY_START_CMD, which holds the ray start line even when
 * the user's command replaces the container's) is <head Service>.<ns>.svc.cluster.local:<port>,
 * where the Service is the one kubesim holds and reaches that port. */
static void s_check_address(sample_t *s, const char *what, const json_t *ray)
{
    char addr[CF_PATH_MAX], want[CF_PATH_MAX];
    const char *cmd = json_string_value(json_object_get(
        s_named(json_object_get(ray, "env"), "KUBERAY_GEN_RAY_START_CMD"), "value"));
    if (!s_rule(s, s_flag(cmd, "address", addr, sizeof(addr)), what,
                "ray start: worker --address in KUBERAY_GEN_RAY_START_CMD", NULL, NULL, false))
        return;
    char *svc = names_head_service(s->name, json_object_get(s->stored, "spec"));
    json_t *obj = svc ? harness_get(&g_h, "", "services", s->ns, svc) : NULL;
    const char *port = jx_str(s->stored, "spec.headGroupSpec.rayStartParams.port", "6379");
    snprintf(want, sizeof(want), "%s.%s.svc.cluster.local:%s", svc ? svc : "", s->ns, port);
    json_t *w = json_string(want), *g = json_string(addr);
    s_rule_eq(s, what, "ray start: worker --address = <head Service FQDN>:<gcs port>", w, g);
    json_decref(w);
    json_decref(g);
    /* a headless head Service resolves to the pod IP: every port is reachable */
    bool exposed = s_streq(jx_str(obj, "spec.clusterIP", ""), "None");
    size_t i;
    json_t *sp;
    json_array_foreach(jx_get(obj, "spec.ports"), i, sp) exposed =
        exposed || jx_int(sp, "port", -1) == strtol(port, NULL, 10);
    s_rule(s, exposed, what,
           "ray start: the head Service is headless or exposes the --address port", NULL,
           jx_get(obj, "spec.ports"), true);
    json_decref(obj);
    free(svc);
}

/* True when every key of `selector` has the same value in `labels`. */
static bool s_selects(const json_t *selector, const json_t *labels)
{
    const char *k;
    json_t *v;
    if (!json_object_size(selector))
        return false;
    json_object_foreach((json_t *)selector, k,
                        v) if (!s_eq(v, json_object_get(labels, k))) return false;
    return true;
}

/* Checks one created pod against the expected one. */
static void s_check_pod(sample_t *s, const json_t *pod)
{
    const json_t *spec = json_object_get(s->stored, "spec");
    bool head = s_streq(harness_label(pod, "ray.io/node-type"), "head");
    const char *gname = harness_label(pod, "ray.io/group");
    char what[CF_NAME_MAX + 32];
    snprintf(what, sizeof(what), "%s pod %s", head ? "head" : "worker",
             jx_str(pod, "metadata.name", ""));
    const json_t *group = NULL;
    int gi = -1;
    if (head) {
        group = json_object_get(spec, "headGroupSpec");
    } else {
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(spec, "workerGroupSpecs"), i, g)
        {
            if (s_streq(jx_str(g, "groupName", NULL), gname)) {
                group = g;
                gi = (int)i;
            }
        }
    }
    if (!s_rule(s, group != NULL, what, "pod: belongs to a group of the spec", NULL, NULL, false))
        return;
    json_t *want = NULL;
    buf_t err;
    buf_init(&err, 4096);
    int r;
    if (head) {
        /* the head carries the Recreate hash of the defaulted spec (spec §1.4, §1.9) */
        podbuild_opts_t o;
        podbuild_opts_init(&o);
        char hash[RECONCILE_HASH_LEN + 1];
        if (reconcile_spec_hash(spec, hash, sizeof(hash)) == 0)
            o.recreate_hash = hash;
        r = podbuild_head(s->stored, &o, &want, &err);
    } else {
        const char *ri = harness_label(pod, "ray.io/worker-group-replica-index");
        const char *hi = harness_label(pod, "ray.io/replica-host-index");
        podbuild_replica_t rep = {.replica_index = ri ? (int)strtol(ri, NULL, 10) : 0,
                                  .replica_name =
                                      harness_label(pod, "ray.io/worker-group-replica-name"),
                                  .host_index = hi ? (int)strtol(hi, NULL, 10) : 0};
        r = podbuild_worker_ex(s->stored, gi, &rep, NULL, &want, &err);
    }
    if (!s_rule(s, r == 0, what, "podbuild builds the expected pod", NULL, NULL, false)) {
        printf("      %s\n", buf_str(&err));
        buf_free(&err);
        return;
    }
    buf_free(&err);
    const json_t *wm = json_object_get(want, "metadata"), *gm = json_object_get(pod, "metadata");
    const json_t *ws = json_object_get(want, "spec"), *gs = json_object_get(pod, "spec");
    /* names */
    s_rule_eq(s, what, "name: generateName = PodName(<prefix cut to 50>-head-/-worker-)",
              json_object_get(wm, "generateName"), json_object_get(gm, "generateName"));
    const char *gn = jx_str(wm, "generateName", ""), *nm = jx_str(gm, "name", "");
    s_rule(s, !strncmp(nm, gn, strlen(gn)) && strlen(nm) == strlen(gn) + CF_GEN_SUFFIX, what,
           "name: generateName + 5 random characters", NULL, NULL, false);
    /* labels, owner */
    s_check_labels(s, what, pod, head, group);
    s_rule_eq(s, what, "labels: all equal podbuild's", json_object_get(wm, "labels"),
              json_object_get(gm, "labels"));
    s_rule_eq(s, what, "annotations: equal podbuild's", json_object_get(wm, "annotations"),
              json_object_get(gm, "annotations"));
    s_check_owner(s, what, pod);
    /* the Ray container */
    const json_t *wc = jx_get(ws, "containers.0"), *gc = jx_get(gs, "containers.0");
    json_t *wni = json_pack("[O?,O?]", json_object_get(wc, "name"), json_object_get(wc, "image"));
    json_t *gni = json_pack("[O?,O?]", json_object_get(gc, "name"), json_object_get(gc, "image"));
    s_rule_eq(s, what, "ray container: name and image", wni, gni);
    json_decref(wni);
    json_decref(gni);
    s_rule_eq(s, what, "ray container: command", json_object_get(wc, "command"),
              json_object_get(gc, "command"));
    s_rule_eq(s, what, "ray container: args (ulimit prefix + ray start flags)",
              json_object_get(wc, "args"), json_object_get(gc, "args"));
    s_rule_eq(s, what, "ray container: env names and values, in order", json_object_get(wc, "env"),
              json_object_get(gc, "env"));
    s_rule_eq(s, what, "ray container: ports", json_object_get(wc, "ports"),
              json_object_get(gc, "ports"));
    s_rule_eq(s, what, "ray container: livenessProbe", json_object_get(wc, "livenessProbe"),
              json_object_get(gc, "livenessProbe"));
    s_rule_eq(s, what, "ray container: readinessProbe", json_object_get(wc, "readinessProbe"),
              json_object_get(gc, "readinessProbe"));
    s_rule_eq(s, what, "ray container: volumeMounts", json_object_get(wc, "volumeMounts"),
              json_object_get(gc, "volumeMounts"));
    s_rule_eq(s, what, "ray container: resources", json_object_get(wc, "resources"),
              json_object_get(gc, "resources"));
    /* workers reach the head through the head Service that exists (cross-object) */
    if (!head && !json_object_get(json_object_get(group, "rayStartParams"), "address"))
        s_check_address(s, what, gc);
    /* the rest of the pod */
    s_rule_eq(s, what, "initContainers (wait-gcs-ready on workers)",
              json_object_get(ws, "initContainers"), json_object_get(gs, "initContainers"));
    s_rule_eq(s, what, "volumes", json_object_get(ws, "volumes"), json_object_get(gs, "volumes"));
    bool want_shm = s_named(json_object_get(ws, "volumes"), "shared-mem") != NULL;
    s_rule(s, want_shm == (s_named(json_object_get(gs, "volumes"), "shared-mem") != NULL), what,
           "volumes: /dev/shm shared-mem present iff expected", NULL, NULL, false);
    json_t *wn = s_names(json_object_get(ws, "containers")),
           *gnn = s_names(json_object_get(gs, "containers"));
    s_rule_eq(s, what, "containers: names (autoscaler sidecar iff in-tree autoscaling, head)", wn,
              gnn);
    bool as = head && jx_bool(spec, "enableInTreeAutoscaling", false);
    s_rule(s,
           as == (s_named(json_object_get(gs, "containers"), "autoscaler") != NULL) ||
               s_named(jx_get(group, "template.spec.containers"), "autoscaler"),
           what, "containers: autoscaler present iff enableInTreeAutoscaling (head only)", NULL,
           NULL, false);
    json_decref(wn);
    json_decref(gnn);
    s_rule_eq(s, what, "containers: all equal podbuild's", json_object_get(ws, "containers"),
              json_object_get(gs, "containers"));
    json_t *gcopy = json_deep_copy(gs);
    json_object_del(gcopy, "nodeName"); /* set by the simulated scheduler */
    s_rule_eq(s, what, "pod spec equals podbuild's (nodeName aside)", ws, gcopy);
    json_decref(gcopy);
    json_decref(want);
}

/* Service ports as the API server stores them: protocol TCP and targetPort = port by default. */
static json_t *s_svc_ports_defaulted(const json_t *ports)
{
    json_t *out = json_deep_copy(ports);
    size_t i;
    json_t *p;
    json_array_foreach(out, i, p)
    {
        if (!json_object_get(p, "protocol"))
            json_object_set_new(p, "protocol", json_string("TCP"));
        if (!json_object_get(p, "targetPort") && json_object_get(p, "port"))
            json_object_set(p, "targetPort", json_object_get(p, "port"));
    }
    return out;
}

/* Checks the created Service against objbuild's `want` (kind names it in messages). */
static void s_check_service(sample_t *s, const char *kind, const json_t *want)
{
    char what[CF_NAME_MAX + 32];
    const char *name = jx_str(want, "metadata.name", "");
    snprintf(what, sizeof(what), "%s service %s", kind, name);
    json_t *got = harness_get(&g_h, "", "services", s->ns, name);
    if (!s_rule(s, got != NULL, what, "service: exists with objbuild's name", NULL, NULL, false))
        return;
    s_rule_eq(s, what, "service: labels", jx_get(want, "metadata.labels"),
              jx_get(got, "metadata.labels"));
    s_rule_eq(s, what, "service: annotations", jx_get(want, "metadata.annotations"),
              jx_get(got, "metadata.annotations"));
    s_check_owner(s, what, got);
    s_rule_eq(s, what, "service: selector", jx_get(want, "spec.selector"),
              jx_get(got, "spec.selector"));
    json_t *wp = s_svc_ports_defaulted(jx_get(want, "spec.ports"));
    s_rule_eq(s, what, "service: ports (API defaults aside)", wp, jx_get(got, "spec.ports"));
    json_decref(wp);
    json_t *wt = json_string(jx_str(want, "spec.type", "ClusterIP"));
    s_rule_eq(s, what, "service: type", wt, jx_get(got, "spec.type"));
    json_decref(wt);
    if (jx_get(want, "spec.clusterIP"))
        s_rule_eq(s, what, "service: clusterIP (None when headless)",
                  jx_get(want, "spec.clusterIP"), jx_get(got, "spec.clusterIP"));
    s_rule_eq(s, what, "service: publishNotReadyAddresses",
              jx_get(want, "spec.publishNotReadyAddresses"),
              jx_get(got, "spec.publishNotReadyAddresses"));
    json_decref(got);
}

static void s_check_valid(sample_t *s)
{
    const json_t *spec = json_object_get(s->stored, "spec");
    json_t *pods = s_pods(s);
    s->pods = (int)json_array_size(pods);
    bool suspended = jx_bool(spec, "suspend", false);
    size_t heads = 0, i;
    json_t *p;
    json_array_foreach(pods, i, p) heads += s_streq(harness_label(p, "ray.io/node-type"), "head");
    s_rule(s, heads == (suspended ? 0u : 1u), "cluster", "pods: exactly one head pod", NULL, NULL,
           false);
    json_t *wg;
    json_array_foreach(json_object_get(spec, "workerGroupSpecs"), i, wg)
    {
        int64_t n = 0;
        size_t k;
        json_array_foreach(pods, k, p) n +=
            s_streq(harness_label(p, "ray.io/node-type"), "worker") &&
            s_streq(harness_label(p, "ray.io/group"), jx_str(wg, "groupName", ""));
        char what[CF_NAME_MAX + 16];
        snprintf(what, sizeof(what), "group %s", jx_str(wg, "groupName", ""));
        if (!s_rule(s, n == s_desired(s->stored, wg), what,
                    "pods: worker count = clamp(replicas, min, max) x numOfHosts", NULL, NULL,
                    false))
            printf("      want %lld, got %lld\n", (long long)s_desired(s->stored, wg),
                   (long long)n);
    }
    json_array_foreach(pods, i, p) s_check_pod(s, p);
    json_decref(pods);
    /* services */
    buf_t err;
    buf_init(&err, 4096);
    json_t *hs = objbuild_head_service(s->stored, NULL, &err);
    if (s_rule(s, hs != NULL, "head service", "objbuild builds the head service", NULL, NULL,
               false))
        s_check_service(s, "head", hs);
    json_t *hso =
        hs ? harness_get(&g_h, "", "services", s->ns, jx_str(hs, "metadata.name", "")) : NULL;
    pods = s_pods(s);
    json_array_foreach(pods, i, p)
    {
        bool is_head = s_streq(harness_label(p, "ray.io/node-type"), "head");
        bool sel = s_selects(jx_get(hso, "spec.selector"), jx_get(p, "metadata.labels"));
        s_rule(s, sel == is_head, "head service",
               "service: the head Service selects the head pod and no worker", NULL, NULL, false);
    }
    json_decref(hs);
    buf_free(&err);
    json_decref(hso);
    if (objbuild_needs_headless(s->stored)) {
        json_t *w = objbuild_headless_service(s->stored);
        s_check_service(s, "headless", w);
        json_t *o = harness_get(&g_h, "", "services", s->ns, jx_str(w, "metadata.name", ""));
        json_array_foreach(pods, i, p)
        {
            bool is_head = s_streq(harness_label(p, "ray.io/node-type"), "head");
            bool sel = s_selects(jx_get(o, "spec.selector"), jx_get(p, "metadata.labels"));
            s_rule(s, sel != is_head, "headless service",
                   "service: the headless Service selects the workers, not the head", NULL, NULL,
                   false);
        }
        json_decref(o);
        json_decref(w);
    }
    if (objbuild_needs_serve_service(s->stored)) {
        buf_init(&err, 4096);
        json_t *w = objbuild_serve_service(s->stored, &err);
        if (w)
            s_check_service(s, "serve", w);
        json_decref(w);
        buf_free(&err);
    }
    json_decref(pods);
    /* no Warning events but the autoscaler-v1 warning validation allows */
    buf_t m;
    buf_init(&m, RECONCILE_MSG_MAX);
    bool v1warn = validate_autoscaler_v1_warning(spec, &m) == 1;
    json_t *ev = s_events(s);
    json_t *e;
    json_array_foreach(ev, i, e)
    {
        if (!s_streq(jx_str(e, "type", ""), "Warning"))
            continue;
        bool allowed = v1warn && s_streq(jx_str(e, "message", ""), buf_str(&m));
        json_t *shown = json_pack("{s:O?, s:O?}", "reason", json_object_get(e, "reason"), "message",
                                  json_object_get(e, "message"));
        s_rule(s, allowed, "events", "events: no Warning event for a valid cluster", NULL, shown,
               true);
        json_decref(shown);
    }
    json_decref(ev);
    buf_free(&m);
}

static void s_check_invalid(sample_t *s)
{
    json_t *pods = s_pods(s);
    s->pods = (int)json_array_size(pods);
    s_rule(s, json_array_size(pods) == 0, "cluster", "rejected: no pods created", NULL, NULL,
           false);
    json_decref(pods);
    json_t *svcs = harness_list(&g_h, "", "services", s->ns);
    size_t n = 0, i;
    json_t *v;
    json_array_foreach(svcs, i, v) n += s_streq(harness_label(v, "ray.io/cluster"), s->name);
    json_decref(svcs);
    s_rule(s, n == 0, "cluster", "rejected: no services created", NULL, NULL, false);
    json_t *ev = s_events(s), *e, *seen = NULL;
    bool found = false;
    json_array_foreach(ev, i, e)
    {
        if (!s_streq(jx_str(e, "reason", ""), s->reason))
            continue;
        seen = e;
        found = found || (s_streq(jx_str(e, "type", ""), "Warning") &&
                          s_streq(jx_str(e, "message", ""), s->message));
    }
    s_rule(s, seen != NULL, "events", "rejected: Warning event with the validation reason", NULL,
           NULL, false);
    json_t *wm = json_string(s->message);
    s_rule(s, found, "events", "rejected: event message is KubeRay's exact message", wm,
           seen ? json_object_get(seen, "message") : NULL, true);
    json_decref(wm);
    json_decref(ev);
}

/* Prints the reconciler's failed writes from its audit rows, grouped (diagnostics). */
static void s_audit_failures(store_t *db)
{
    store_flush(db);
    sqlite3_stmt *st = NULL;
    store_query_t *q = store_query_open(store_path(db), NULL, 0, NULL);
    if (!q || sqlite3_prepare_v2(store_query_handle(q),
                                 "SELECT target_kind, verb, result_status, "
                                 "substr(coalesce(result_error, ''), 1, 48), count(*) FROM audit "
                                 "WHERE result_status >= 400 OR result_status = 0 "
                                 "GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 20",
                                 -1, &st, NULL) != SQLITE_OK) {
        store_query_close(&q);
        return;
    }
    while (sqlite3_step(st) == SQLITE_ROW)
        printf("  failed writes: %lld x %s %s -> %lld %s\n", (long long)sqlite3_column_int64(st, 4),
               (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 0),
               (long long)sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    store_query_close(&q);
}

/* ---------- the run ---------- */

static int s_run(void)
{
    json_t *keep = json_array();
    failed += harness_start(&g_h);
    if (!g_h.started)
        goto out;

    /* the samples */
    const char *shared = getenv("RF_SHARED_DIR");
    char sdir[CF_PATH_MAX];
    snprintf(sdir, sizeof(sdir), "%s/kuberay/samples", shared && *shared ? shared : RF_SHARED_DIR);
    s_walk(sdir, "", keep, 0);
    CHECK(g_ns > 0);
    int64_t t0 = loop_clock_ms();
    for (size_t b = 0; b < g_ns; b += CF_BATCH) {
        size_t lim = b + CF_BATCH < g_ns ? b + CF_BATCH : g_ns;
        for (size_t i = b; i < lim; i++)
            s_apply(g_h.admin, &g_s[i]);
        int64_t bend = loop_clock_ms() + CF_WAIT_MS;
        bool all = false;
        while (!all && loop_clock_ms() < bend) {
            loop_run_once(g_h.loop, 10);
            all = true;
            for (size_t i = b; i < lim; i++) {
                if (!g_s[i].settled)
                    g_s[i].settled = s_settled(&g_s[i]);
                all = all && g_s[i].settled;
            }
        }
        harness_pump(&g_h, CF_SETTLE_MS);
        for (size_t i = b; i < lim; i++) {
            sample_t *s = &g_s[i];
            if (!s->applied || !s->stored)
                continue;
            if (!s->settled)
                s_rule(s, false, "cluster",
                       s->invalid ? "wait: the validation event within the wait"
                                  : "wait: head, workers and services within the wait",
                       NULL, NULL, false);
            if (s->invalid)
                s_check_invalid(s);
            else
                s_check_valid(s);
        }
    }
    int64_t elapsed = loop_clock_ms() - t0;

    /* the table */
    int pass = 0, rejected = 0, pods = 0;
    for (size_t i = 0; i < g_ns; i++) {
        sample_t *s = &g_s[i];
        pass += s->failures == 0;
        rejected += s->invalid;
        pods += s->pods;
        if (g_h.verbose || s->failures) {
            char *fr = json_dumps(s->failed_rules, JSON_COMPACT);
            printf("  %-4s %-52s %-10s %s %-8s pods %3d checks %4d failures %3d%s%s\n",
                   s->failures ? "FAIL" : "ok", s->file, s->kind, s->ns,
                   s->invalid ? "rejected" : "", s->pods, s->rules, s->failures,
                   s->failures ? " " : "", s->failures ? fr : "");
            free(fr);
            if (s->invalid && g_h.verbose)
                printf("       expected %s: %s\n", s->reason, s->message);
            if (s->note[0])
                printf("       note: %s\n", s->note);
        }
    }
    reconcile_stats_t rs;
    reconcile_stats(g_h.rec, &rs);
    printf("conformance: %d documents: %zu samples (%d pass, %zu fail, %d rejected by "
           "validation), %d Ray documents that are not samples, %d other documents (%d "
           "applications into sample namespaces; %d documents or applications not applied, "
           "each printed with -v); %d pods, %d checks, %d failures, %lld ms\n",
           g_docs, g_ns, pass, g_ns - (size_t)pass, rejected, g_docs - (int)g_ns - g_other_docs,
           g_other_docs, g_extras_applied, g_not_applied, pods, g_rules, g_fails,
           (long long)elapsed);
    if (g_h.verbose)
        printf("  reconcile: passes %llu invalid %llu creates %llu deletes %llu status %llu "
               "events %llu write_errors %llu errors %llu\n",
               (unsigned long long)rs.passes, (unsigned long long)rs.invalid,
               (unsigned long long)rs.creates, (unsigned long long)rs.deletes,
               (unsigned long long)rs.status_writes, (unsigned long long)rs.events,
               (unsigned long long)rs.write_errors, (unsigned long long)rs.errors);
    if (g_h.verbose)
        s_audit_failures(g_h.sdb);
    CHECK(g_fails == 0);

out:
    failed += harness_stop(&g_h);
    for (size_t i = 0; i < g_ns; i++) {
        json_decref(g_s[i].rc);
        json_decref(g_s[i].stored);
        json_decref(g_s[i].failed_rules);
    }
    json_decref(keep);
    return failed;
}

int main(int argc, char **argv)
{
    bool verbose = false;
    validate_gates_default(&g_gates);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = true;
        } else if (strcmp(argv[i], "-g") == 0 && i + 1 < argc) {
            buf_t err;
            buf_init(&err, 512);
            int rc = validate_gates_option(argv[++i], &err);
            if (rc == 0)
                rc = validate_gates_parse(argv[i], &g_gates, &err);
            if (rc != 0)
                fprintf(stderr, "conformance_it: %s\n", buf_str(&err));
            buf_free(&err);
            if (rc != 0)
                return 2;
        } else {
            fprintf(stderr, "usage: conformance_it [-v] [-g GATES]\n");
            return 2;
        }
    }
    g_s = calloc(CF_MAX_SAMPLES, sizeof(*g_s));
    CHECK(g_s != NULL);
    failed += harness_init(&g_h, "conformance_it", verbose, getenv("CF_LOG") ? LOG_WARN : LOG_ERROR,
                           &(harness_opts_t){.nodes = 8,
                                             .wait_ms = CF_WAIT_MS,
                                             .qps = 5000,
                                             .admin_qps = 5000,
                                             .concurrency = CF_CONCURRENCY,
                                             .desired = true,
                                             .gates = &g_gates});
    if (g_h.api && g_s)
        s_run();
    harness_end(&g_h);
    free(g_s);
    return SELFTEST_RESULT("conformance_it", true);
}
