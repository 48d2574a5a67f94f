/* objbuild: KubeRay's non-pod child objects of a RayCluster (see objbuild.h). */
#include "objbuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "err.h"
#include "names.h"
#include "yaml.h"

static const char *s_name(const json_t *rc)
{
    return jx_str(rc, "metadata.name", "");
}

static const char *s_ns(const json_t *rc)
{
    return jx_str(rc, "metadata.namespace", "");
}

json_t *objbuild_controller_refs(const json_t *owner, const char *kind)
{
    return json_pack("[{s:s,s:s,s:s,s:s,s:b,s:b}]", "apiVersion", "ray.io/v1", "kind", kind, "name",
                     s_name(owner), "uid", jx_str(owner, "metadata.uid", ""), "controller", 1,
                     "blockOwnerDeletion", 1);
}

json_t *objbuild_owner_refs(const json_t *rc)
{
    return objbuild_controller_refs(rc, "RayCluster");
}

/* New object {apiVersion, kind, metadata{name, namespace, labels(stolen), ownerReferences}}.
 * `name` is freed. */
static json_t *s_object(const json_t *rc, const char *api, const char *kind, char *name,
                        json_t *labels, bool owner)
{
    json_t *o = NULL;
    if (!name || !labels)
        goto out;
    o = json_pack("{s:s,s:s,s:{s:s,s:s,s:O}}", "apiVersion", api, "kind", kind, "metadata", "name",
                  name, "namespace", s_ns(rc), "labels", labels);
    if (o && owner && jx_set_path(o, "metadata.ownerReferences", objbuild_owner_refs(rc)) != 0) {
        json_decref(o);
        o = NULL;
    }
out:
    free(name);
    json_decref(labels);
    return o;
}

json_t *objbuild_head_service_labels(const json_t *rc)
{
    char *id = names_identifier(s_name(rc), NAMES_NODE_HEAD);
    if (!id)
        return NULL;
    const json_t *tl = jx_get(rc, "spec.headGroupSpec.template.metadata.labels");
    const char *app = json_string_value(json_object_get(tl, LABEL_APP_NAME));
    json_t *l =
        json_pack("{s:s,s:s,s:s,s:s,s:s}", LABEL_CLUSTER, s_name(rc), LABEL_NODE_TYPE,
                  NAMES_NODE_HEAD, LABEL_IDENTIFIER, id, LABEL_APP_NAME,
                  app ? app : LABEL_APP_NAME_KUBERAY, LABEL_CREATED_BY, LABEL_CREATED_BY_KUBERAY);
    free(id);
    return l;
}

static int s_port_cmp(const void *a, const void *b)
{
    return strcmp(jx_str(*(json_t *const *)a, "name", ""), jx_str(*(json_t *const *)b, "name", ""));
}

json_t *objbuild_head_ports(const json_t *rc)
{
    json_t *map = json_object(); /* name -> port (last wins, as a Go map) */
    json_t *out = json_array();
    if (!map || !out)
        goto fail;
    const json_t *c0 = json_array_get(jx_get(rc, "spec.headGroupSpec.template.spec.containers"), 0);
    size_t i;
    json_t *p;
    json_array_foreach(jx_get(c0, "ports"), i, p)
    {
        json_int_t cp = jx_int(p, "containerPort", 0);
        const char *n = jx_str(p, "name", "");
        char unnamed[64];
        if (!n[0]) {
            snprintf(unnamed, sizeof(unnamed), "%lld-port", (long long)cp);
            n = unnamed;
        }
        if (json_object_set_new(map, n, json_integer(cp)))
            goto fail;
    }
    if (json_object_size(map) == 0) {
        if (json_object_set_new(map, "client", json_integer(OBJ_PORT_CLIENT)) ||
            json_object_set_new(map, "gcs-server", json_integer(OBJ_PORT_GCS)) ||
            json_object_set_new(map, "dashboard", json_integer(OBJ_PORT_DASHBOARD)) ||
            json_object_set_new(map, "serve", json_integer(OBJ_PORT_SERVE)))
            goto fail;
    }
    if (!json_object_get(map, "metrics") &&
        json_object_set_new(map, "metrics", json_integer(OBJ_PORT_METRICS)))
        goto fail;
    const char *k;
    json_t *v;
    json_object_foreach(map, k, v)
    {
        if (json_array_append_new(out, json_pack("{s:s,s:I,s:s}", "name", k, "port",
                                                 json_integer_value(v), "appProtocol",
                                                 OBJ_APP_PROTOCOL)))
            goto fail;
    }
    size_t n = json_array_size(out);
    json_t **items = calloc(n ? n : 1, sizeof(*items));
    if (!items)
        goto fail;
    for (i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(out, i));
    qsort(items, n, sizeof(*items), s_port_cmp);
    json_array_clear(out);
    for (i = 0; i < n; i++)
        json_array_append_new(out, items[i]);
    free(items);
    json_decref(map);
    return out;
fail:
    json_decref(map);
    json_decref(out);
    return NULL;
}

/* dst[k] = src[k] for every key of src (src wins). */
static int s_merge(json_t *dst, const json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v)
    {
        if (json_object_set(dst, k, v))
            return ERR_NOMEM;
    }
    return 0;
}

json_t *objbuild_head_service(const json_t *rc, const objbuild_opts_t *opts, buf_t *err)
{
    json_t *labels = objbuild_head_service_labels(rc);
    json_t *ports = objbuild_head_ports(rc);
    json_t *ann = json_deep_copy(jx_get(rc, "spec.headServiceAnnotations"));
    char *name = names_head_service(s_name(rc), jx_get(rc, "spec"));
    const char *type = jx_str(rc, "spec.headGroupSpec.serviceType", "");
    json_t *svc = NULL;
    if (!ann)
        ann = json_object();
    if (!labels || !ports || !ann || !name)
        goto out;
    const json_t *user = jx_get(rc, "spec.headGroupSpec.headService");
    if (user && json_is_object(user)) {
        svc = json_deep_copy(user);
        if (!svc)
            goto out;
        json_object_set_new(svc, "apiVersion", json_string("v1"));
        json_object_set_new(svc, "kind", json_string("Service"));
        jx_set_path(svc, "spec.selector", json_deep_copy(labels));
        json_t *ua = jx_get(svc, "metadata.annotations");
        if (!json_is_object(ua)) {
            jx_set_path(svc, "metadata.annotations", json_object());
            ua = jx_get(svc, "metadata.annotations");
        }
        s_merge(ua, ann);
        json_t *up = jx_get(svc, "spec.ports");
        if (!json_is_array(up)) {
            jx_set_path(svc, "spec.ports", json_array());
            up = jx_get(svc, "spec.ports");
        }
        json_array_extend(up, ports);
        json_t *ul = jx_get(svc, "metadata.labels");
        if (!json_is_object(ul)) {
            jx_set_path(svc, "metadata.labels", json_object());
            ul = jx_get(svc, "metadata.labels");
        }
        s_merge(ul, labels);
        if (!jx_str(svc, "metadata.name", "")[0])
            jx_set_path(svc, "metadata.name", json_string(name));
        jx_set_path(svc, "metadata.namespace", json_string(s_ns(rc)));
        if (!jx_str(svc, "spec.type", "")[0])
            jx_set_path(svc, "spec.type", json_string(type));
    } else {
        svc = json_pack("{s:s,s:s,s:{s:s,s:s,s:O,s:O},s:{s:O,s:O}}", "apiVersion", "v1", "kind",
                        "Service", "metadata", "name", name, "namespace", s_ns(rc), "labels",
                        labels, "annotations", ann, "spec", "selector", labels, "ports", ports);
        if (!svc)
            goto out;
        if (type[0])
            jx_set_path(svc, "spec.type", json_string(type));
        bool cluster_ip = !type[0] || strcmp(type, "ClusterIP") == 0;
        if (cluster_ip && !(opts && opts->head_cluster_ip)) {
            jx_set_path(svc, "spec.clusterIP", json_string("None"));
            jx_set_path(svc, "spec.publishNotReadyAddresses", json_true());
        }
    }
    if (json_array_size(jx_get(svc, "spec.ports")) == 0) {
        if (err)
            buf_puts(err, OBJ_ERR_NO_PORTS);
        json_decref(svc);
        svc = NULL;
        goto out;
    }
    if (jx_set_path(svc, "metadata.ownerReferences", objbuild_owner_refs(rc)) != 0) {
        json_decref(svc);
        svc = NULL;
    }
out:
    json_decref(labels);
    json_decref(ports);
    json_decref(ann);
    free(name);
    return svc;
}

json_t *objbuild_owner_head_service(const json_t *owner, const char *kind, const json_t *rc,
                                    buf_t *err)
{
    json_t *svc = objbuild_head_service(rc, NULL, err);
    if (!svc)
        return NULL;
    const char *on = s_name(owner);
    char *name = names_head_service(on, NULL);
    char *id = names_identifier(on, NAMES_NODE_HEAD);
    json_t *labels =
        json_pack("{s:s,s:s,s:s,s:s}", LABEL_ORIGINATED_FROM_CR_NAME, on, LABEL_ORIGINATED_FROM_CRD,
                  kind, LABEL_NODE_TYPE, NAMES_NODE_HEAD, LABEL_IDENTIFIER, id ? id : "");
    bool ok =
        name && id && labels && jx_set_path(svc, "metadata.name", json_string(name)) == 0 &&
        jx_set_path(svc, "metadata.namespace", json_string(s_ns(owner))) == 0 &&
        jx_set_path(svc, "metadata.labels", json_incref(labels)) == 0 &&
        jx_set_path(svc, "metadata.ownerReferences", objbuild_controller_refs(owner, kind)) == 0;
    free(name);
    free(id);
    json_decref(labels);
    if (!ok) {
        if (err)
            buf_puts(err, "out of memory");
        json_decref(svc);
        return NULL;
    }
    return svc;
}

bool objbuild_needs_headless(const json_t *rc)
{
    size_t i;
    json_t *wg;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), i, wg)
    {
        if (jx_int(wg, "numOfHosts", 1) > 1)
            return true;
    }
    return false;
}

json_t *objbuild_headless_service(const json_t *rc)
{
    json_t *o = s_object(rc, "v1", "Service", names_headless_service(s_name(rc)),
                         json_pack("{s:s}", LABEL_HEADLESS_WORKER_SVC, s_name(rc)), true);
    if (o &&
        jx_set_path(o, "spec",
                    json_pack("{s:s,s:s,s:{s:s,s:s},s:b}", "clusterIP", "None", "type", "ClusterIP",
                              "selector", LABEL_CLUSTER, s_name(rc), LABEL_NODE_TYPE,
                              NAMES_NODE_WORKER, "publishNotReadyAddresses", 1)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

bool objbuild_needs_serve_service(const json_t *rc)
{
    const char *v = json_string_value(
        json_object_get(jx_get(rc, "metadata.annotations"), ANN_ENABLE_SERVE_SERVICE));
    return v && strcmp(v, "true") == 0;
}

json_t *objbuild_serve_service(const json_t *rc, buf_t *err)
{
    json_t *ports = json_array();
    const json_t *c0 = json_array_get(jx_get(rc, "spec.headGroupSpec.template.spec.containers"), 0);
    size_t i;
    json_t *p;
    json_array_foreach(jx_get(c0, "ports"), i, p)
    {
        const char *n = jx_str(p, "name", "");
        if (strcmp(n, "serve") == 0 || strncmp(n, "serve-", 6) == 0)
            json_array_append_new(
                ports, json_pack("{s:s,s:I}", "name", n, "port", jx_int(p, "containerPort", 0)));
    }
    if (!ports || json_array_size(ports) == 0) {
        if (ports && err)
            buf_puts(err, OBJ_ERR_NO_SERVE_PORT);
        json_decref(ports);
        return NULL;
    }
    char *label = names_serve_label(s_name(rc));
    json_t *o = s_object(rc, "v1", "Service", names_serve_service(s_name(rc)),
                         json_pack("{s:s,s:s,s:s}", LABEL_ORIGINATED_FROM_CR_NAME, s_name(rc),
                                   LABEL_ORIGINATED_FROM_CRD, "RayCluster", LABEL_SERVE,
                                   label ? label : ""),
                         true);
    free(label);
    const char *type = jx_str(rc, "spec.headGroupSpec.serviceType", "");
    if (o) {
        jx_set_path(
            o, "spec",
            json_pack("{s:{s:s},s:O}", "selector", LABEL_CLUSTER, s_name(rc), "ports", ports));
        if (type[0])
            jx_set_path(o, "spec.type", json_string(type));
    }
    json_decref(ports);
    return o;
}

json_t *objbuild_ingress(const json_t *rc)
{
    char id[512];
    json_t *o = NULL, *ann = json_object(), *ports = objbuild_head_ports(rc);
    char *svc = names_head_service(s_name(rc), jx_get(rc, "spec"));
    const char *klass = NULL;
    const char *k;
    json_t *v;
    snprintf(id, sizeof(id), "%s-head", s_name(rc));
    if (!ann || !ports || !svc)
        goto out;
    json_object_foreach(jx_get(rc, "metadata.annotations"), k, v)
    {
        if (strcmp(k, ANN_INGRESS_CLASS) == 0)
            klass = json_string_value(v);
        else
            json_object_set(ann, k, v);
    }
    json_int_t dash = OBJ_PORT_DASHBOARD;
    size_t i;
    json_array_foreach(ports, i, v)
    {
        if (strcmp(jx_str(v, "name", ""), "dashboard") == 0)
            dash = jx_int(v, "port", OBJ_PORT_DASHBOARD);
    }
    o = s_object(rc, "networking.k8s.io/v1", "Ingress", names_ingress(s_name(rc)),
                 json_pack("{s:s,s:s,s:s,s:s}", LABEL_CLUSTER, s_name(rc), LABEL_IDENTIFIER, id,
                           LABEL_APP_NAME, LABEL_APP_NAME_KUBERAY, LABEL_CREATED_BY,
                           LABEL_CREATED_BY_KUBERAY),
                 true);
    if (!o)
        goto out;
    jx_set_path(o, "metadata.annotations", json_incref(ann));
    const json_t *io = jx_get(rc, "spec.headGroupSpec.ingressOptions");
    json_t *rule =
        json_pack("{s:{s:[{s:s,s:s,s:{s:{s:s,s:{s:I}}}}]}}", "http", "paths", "path",
                  jx_str(io, "path", "/")[0] ? jx_str(io, "path", "/") : "/", "pathType",
                  jx_str(io, "pathType", "Prefix")[0] ? jx_str(io, "pathType", "Prefix") : "Prefix",
                  "backend", "service", "name", svc, "port", "number", dash);
    const char *host = jx_str(io, "host", "");
    if (rule && host[0])
        json_object_set_new(rule, "host", json_string(host));
    jx_set_path(o, "spec.rules", json_pack("[o]", rule));
    if (klass)
        jx_set_path(o, "spec.ingressClassName", json_string(klass));
    if (jx_get(io, "tls"))
        jx_set_path(o, "spec.tls", json_deep_copy(jx_get(io, "tls")));
out:
    free(svc);
    json_decref(ann);
    json_decref(ports);
    return o;
}

static json_t *s_rbac_labels(const json_t *rc)
{
    return json_pack("{s:s,s:s,s:s}", LABEL_CLUSTER, s_name(rc), LABEL_APP_NAME,
                     LABEL_APP_NAME_KUBERAY, LABEL_CREATED_BY, LABEL_CREATED_BY_KUBERAY);
}

json_t *objbuild_service_account(const json_t *rc)
{
    return s_object(rc, "v1", "ServiceAccount", names_autoscaler_sa(s_name(rc), jx_get(rc, "spec")),
                    s_rbac_labels(rc), true);
}

json_t *objbuild_role(const json_t *rc)
{
    json_t *o = s_object(rc, "rbac.authorization.k8s.io/v1", "Role",
                         names_autoscaler_role(s_name(rc)), s_rbac_labels(rc), true);
    if (o && jx_set_path(
                 o, "rules",
                 json_pack("[{s:[s],s:[s],s:[s,s,s,s]},{s:[s],s:[s],s:[s]},{s:[s],s:[s],s:[s,s]}]",
                           "apiGroups", "", "resources", "pods", "verbs", "get", "list", "watch",
                           "patch", "apiGroups", "", "resources", "pods/resize", "verbs", "patch",
                           "apiGroups", "ray.io", "resources", "rayclusters", "verbs", "get",
                           "patch")) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

json_t *objbuild_role_binding(const json_t *rc)
{
    char *sa = names_autoscaler_sa(s_name(rc), jx_get(rc, "spec"));
    char *role = names_autoscaler_role(s_name(rc));
    json_t *o = s_object(rc, "rbac.authorization.k8s.io/v1", "RoleBinding",
                         names_autoscaler_role(s_name(rc)), s_rbac_labels(rc), true);
    if (o && (!sa || !role ||
              jx_set_path(o, "subjects",
                          json_pack("[{s:s,s:s,s:s}]", "kind", "ServiceAccount", "name", sa,
                                    "namespace", s_ns(rc))) ||
              jx_set_path(o, "roleRef",
                          json_pack("{s:s,s:s,s:s}", "apiGroup", "rbac.authorization.k8s.io",
                                    "kind", "Role", "name", role)))) {
        json_decref(o);
        o = NULL;
    }
    free(sa);
    free(role);
    return o;
}

bool objbuild_needs_auth_secret(const json_t *rc)
{
    return strcmp(jx_str(rc, "spec.authOptions.mode", ""), "token") == 0 &&
           !jx_str(rc, "spec.authOptions.secretName", "")[0] &&
           !jx_bool(rc, "spec.authOptions.enableK8sTokenAuth", false);
}

static void s_base64(const unsigned char *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

json_t *objbuild_auth_secret(const json_t *rc, objbuild_rand_fn rnd, void *rnd_ctx)
{
    unsigned char raw[OBJ_AUTH_TOKEN_BYTES];
    char tok[(OBJ_AUTH_TOKEN_BYTES + 2) / 3 * 4 + 1];
    char b64[sizeof(tok) / 3 * 4 + 8];
    if (!rnd || rnd(rnd_ctx, raw, sizeof(raw)) != 0)
        return NULL;
    s_base64(raw, sizeof(raw), tok);
    /* Secret.data values are base64 of the bytes: the token text itself is base64(random). */
    s_base64((const unsigned char *)tok, strlen(tok), b64);
    json_t *o = s_object(rc, "v1", "Secret", names_check_name(s_name(rc)),
                         json_pack("{s:s}", LABEL_CLUSTER, s_name(rc)), true);
    if (o && jx_set_path(o, "data", json_pack("{s:s}", OBJ_AUTH_TOKEN_KEY, b64)) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (o)
        json_object_set_new(o, "type", json_string("Opaque"));
    return o;
}

bool objbuild_needs_gcs_pvc(const json_t *rc)
{
    return strcmp(jx_str(rc, "spec.gcsFaultToleranceOptions.backend", ""), "rocksdb") == 0 &&
           !jx_str(rc, "spec.gcsFaultToleranceOptions.storage.claimName", "")[0];
}

json_t *objbuild_gcs_pvc(const json_t *rc)
{
    const json_t *st = jx_get(rc, "spec.gcsFaultToleranceOptions.storage");
    bool retain = strcmp(jx_str(st, "deletionPolicy", ""), "Retain") == 0;
    json_t *o = s_object(rc, "v1", "PersistentVolumeClaim", names_gcs_pvc(s_name(rc)),
                         json_pack("{s:s}", LABEL_CLUSTER, s_name(rc)), !retain);
    if (!o)
        return NULL;
    const json_t *modes = jx_get(st, "accessModes");
    json_t *spec =
        json_pack("{s:O,s:{s:{s:s}}}", "accessModes",
                  json_array_size(modes) ? (json_t *)modes : json_pack("[s]", "ReadWriteOnce"),
                  "resources", "requests", "storage", jx_str(st, "size", OBJ_GCS_PVC_DEFAULT_SIZE));
    if (!json_array_size(modes) && spec)
        json_decref(
            json_object_get(spec, "accessModes")); /* drop the extra ref of the packed default */
    if (!spec || jx_set_path(o, "spec", spec)) {
        json_decref(o);
        return NULL;
    }
    if (jx_str(st, "storageClassName", NULL))
        jx_set_path(o, "spec.storageClassName", json_string(jx_str(st, "storageClassName", "")));
    return o;
}

#define S_CLEANUP_ARGS_HEAD                                                                        \
    "echo \"To get more information about manually deleting the storage namespace in Redis and "   \
    "removing the RayCluster's finalizer, please check "                                           \
    "https://docs.ray.io/en/master/cluster/kubernetes/user-guides/kuberay-gcs-ft.html for more "   \
    "details.\" && python -c \"from ray._private.gcs_utils import cleanup_redis_storage; from "    \
    "urllib.parse import urlparse; import os; import sys; redis_address = "                        \
    "os.getenv('RAY_REDIS_ADDRESS', '').split(',')[0]; redis_address = redis_address if '://' in " \
    "redis_address else 'redis://' + redis_address; parsed = urlparse(redis_address); "
#define S_CLEANUP_ARGS_USER                                                                        \
    "sys.exit(1) if not cleanup_redis_storage(host=parsed.hostname, port=parsed.port, "            \
    "username=os.getenv('REDIS_USERNAME', parsed.username), password=os.getenv('REDIS_PASSWORD', " \
    "parsed.password or ''), use_ssl=parsed.scheme=='rediss', "                                    \
    "storage_namespace=os.getenv('RAY_external_storage_namespace')) else None\""
#define S_CLEANUP_ARGS_NOUSER                                                                      \
    "sys.exit(1) if not cleanup_redis_storage(host=parsed.hostname, port=parsed.port, "            \
    "password=os.getenv('REDIS_PASSWORD', parsed.password or ''), "                                \
    "use_ssl=parsed.scheme=='rediss', "                                                            \
    "storage_namespace=os.getenv('RAY_external_storage_namespace')) else None\""

json_t *objbuild_redis_cleanup_job(const json_t *rc, const json_t *head_pod)
{
    json_t *pod = json_deep_copy(head_pod);
    json_t *job = NULL;
    char *name = names_redis_cleanup_job(s_name(rc));
    if (!pod || !name)
        goto out;
    jx_set_path(pod, "metadata.labels." LABEL_NODE_TYPE, json_string(NAMES_NODE_REDIS_CLEANUP));
    json_t *labels = jx_get(pod, "metadata.labels");
    if (!json_is_object(labels)) {
        jx_set_path(pod, "metadata.labels", json_object());
        labels = jx_get(pod, "metadata.labels");
    }
    json_object_set_new(labels, LABEL_NODE_TYPE, json_string(NAMES_NODE_REDIS_CLEANUP));
    json_t *c = json_deep_copy(json_array_get(jx_get(pod, "spec.containers"), 0));
    if (!c)
        goto out;
    bool has_user = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(c, "env"), i, e)
    {
        if (strcmp(jx_str(e, "name", ""), "REDIS_USERNAME") == 0)
            has_user = true;
    }
    // KubeRay's default container shell (`-lc` only with its login-shell option, which the
    // cleanup Job does not take).
    json_object_set_new(c, "command", json_pack("[s,s,s]", "/bin/bash", "-c", "--"));
    buf_t a;
    buf_init(&a, 1u << 16);
    buf_puts(&a, S_CLEANUP_ARGS_HEAD);
    buf_puts(&a, has_user ? S_CLEANUP_ARGS_USER : S_CLEANUP_ARGS_NOUSER);
    json_object_set_new(c, "args", json_pack("[s]", buf_str(&a)));
    buf_free(&a);
    json_object_del(c, "livenessProbe");
    json_object_del(c, "readinessProbe");
    json_t *env = json_object_get(c, "env");
    if (!json_is_array(env)) {
        json_object_set_new(c, "env", json_array());
        env = json_object_get(c, "env");
    }
    json_array_append_new(
        env, json_pack("{s:s,s:s}", "name", "RAY_redis_db_connect_retries", "value", "120"));
    json_array_append_new(env, json_pack("{s:s,s:s}", "name",
                                         "RAY_redis_db_connect_wait_milliseconds", "value", "500"));
    json_object_set_new(c, "resources",
                        json_pack("{s:{s:s,s:s},s:{s:s,s:s}}", "limits", "cpu", OBJ_CLEANUP_CPU,
                                  "memory", OBJ_CLEANUP_MEMORY, "requests", "cpu", OBJ_CLEANUP_CPU,
                                  "memory", OBJ_CLEANUP_MEMORY));
    jx_set_path(pod, "spec.containers", json_pack("[o]", c));
    /* drop the TLS IP-SAN wait init container */
    json_t *inits = jx_get(pod, "spec.initContainers");
    for (i = json_array_size(inits); i-- > 0;)
        if (strcmp(jx_str(json_array_get(inits, i), "name", ""), "wait-for-tls-ip-san") == 0)
            json_array_remove(inits, i);
    jx_set_path(pod, "spec.restartPolicy", json_string("Never"));
    json_t *meta = json_deep_copy(jx_get(pod, "metadata"));
    json_object_del(meta, "ownerReferences");
    job = json_pack("{s:s,s:s,s:{s:s,s:s,s:O,s:O},s:{s:i,s:i,s:{s:o,s:O}}}", "apiVersion",
                    "batch/v1", "kind", "Job", "metadata", "name", name, "namespace", s_ns(rc),
                    "labels", jx_get(pod, "metadata.labels"), "annotations",
                    jx_get(pod, "metadata.annotations") ? jx_get(pod, "metadata.annotations")
                                                        : json_null(),
                    "spec", "backoffLimit", 0, "activeDeadlineSeconds", OBJ_CLEANUP_ACTIVE_DEADLINE,
                    "template", "metadata", meta, "spec", jx_get(pod, "spec"));
    if (job && !jx_get(pod, "metadata.annotations"))
        json_object_del(jx_get(job, "metadata"), "annotations");
    if (job && jx_set_path(job, "metadata.ownerReferences", objbuild_owner_refs(rc))) {
        json_decref(job);
        job = NULL;
    }
out:
    json_decref(pod);
    free(name);
    return job;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

static int s_fixed_rand(void *ctx, unsigned char *out, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)i;
    return 0;
}

static int s_bad_rand(void *ctx, unsigned char *out, size_t n)
{
    (void)ctx;
    (void)out;
    (void)n;
    return ERR_IO;
}

static json_t *s_load_sample(const char *file)
{
    const char *shared = selftest_shared_dir();
    char path[1024];
    snprintf(path, sizeof(path), "%s/kuberay/samples/%s", shared ? shared : ".", file);
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, 4096);
    yaml_load_file(path, 1u << 22, &docs, &err);
    buf_free(&err);
    json_t *rc = NULL;
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        if (!rc && strcmp(jx_str(d, "kind", ""), "RayCluster") == 0)
            rc = json_incref(d);
    }
    json_decref(docs);
    if (rc) {
        jx_set_path(rc, "metadata.namespace", json_string("default"));
        jx_set_path(rc, "metadata.uid", json_string("uid-1"));
    }
    return rc;
}

/* "name:port,name:port" of a ports array. */
static bool s_ports_are(const json_t *ports, const char *want)
{
    buf_t b;
    buf_init(&b, 4096);
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p)
    {
        buf_printf(&b, "%s%s:%lld", i ? "," : "", jx_str(p, "name", ""),
                   (long long)jx_int(p, "port", 0));
        if (json_object_get(p, "appProtocol") && strcmp(jx_str(p, "appProtocol", ""), "tcp") != 0)
            buf_puts(&b, "!proto");
    }
    bool ok = strcmp(buf_str(&b), want) == 0;
    if (!ok)
        printf("objbuild: ports '%s' want '%s'\n", buf_str(&b), want);
    buf_free(&b);
    return ok;
}

static bool s_owner_ok(const json_t *o, const char *name)
{
    const json_t *r = json_array_get(jx_get(o, "metadata.ownerReferences"), 0);
    return r && strcmp(jx_str(r, "kind", ""), "RayCluster") == 0 &&
           strcmp(jx_str(r, "name", ""), name) == 0 &&
           strcmp(jx_str(r, "apiVersion", ""), "ray.io/v1") == 0 &&
           jx_bool(r, "controller", false) && jx_bool(r, "blockOwnerDeletion", false) &&
           strcmp(jx_str(r, "uid", ""), "uid-1") == 0;
}

static bool s_label(const json_t *o, const char *path, const char *key, const char *want)
{
    const char *v = json_string_value(json_object_get(jx_get(o, path), key));
    bool ok = v && strcmp(v, want) == 0;
    if (!ok)
        printf("objbuild: %s[%s] = '%s' want '%s'\n", path, key, v ? v : "(none)", want);
    return ok;
}

int objbuild_test(bool verbose)
{
    int failed = 0;
    buf_t err;
    buf_init(&err, 4096);

    /* ray-cluster.sample.yaml */
    json_t *rc = s_load_sample("ray-cluster.sample.yaml");
    CHECK(rc != NULL);
    const char *cn = s_name(rc);
    json_t *svc = objbuild_head_service(rc, NULL, &err);
    CHECK(svc && strcmp(jx_str(svc, "metadata.name", ""), "raycluster-kuberay-head-svc") == 0);
    CHECK(strcmp(jx_str(svc, "metadata.namespace", ""), "default") == 0);
    CHECK(s_label(svc, "spec.selector", LABEL_CLUSTER, cn));
    CHECK(s_label(svc, "spec.selector", LABEL_NODE_TYPE, "head"));
    CHECK(s_label(svc, "spec.selector", LABEL_IDENTIFIER, "raycluster-kuberay-head"));
    CHECK(s_label(svc, "spec.selector", LABEL_APP_NAME, "kuberay"));
    CHECK(s_label(svc, "spec.selector", LABEL_CREATED_BY, "kuberay-operator"));
    CHECK(json_object_size(jx_get(svc, "spec.selector")) == 5);
    CHECK(json_equal(jx_get(svc, "spec.selector"), jx_get(svc, "metadata.labels")));
    CHECK(s_ports_are(jx_get(svc, "spec.ports"),
                      "client:10001,dashboard:8265,gcs-server:6379,metrics:8080"));
    CHECK(strcmp(jx_str(svc, "spec.clusterIP", ""), "None") == 0 &&
          jx_bool(svc, "spec.publishNotReadyAddresses", false));
    CHECK(s_owner_ok(svc, cn));
    json_decref(svc);
    objbuild_opts_t o = {.head_cluster_ip = true};
    svc = objbuild_head_service(rc, &o, &err);
    CHECK(svc && jx_get(svc, "spec.clusterIP") == NULL &&
          jx_get(svc, "spec.publishNotReadyAddresses") == NULL);
    json_decref(svc);
    CHECK(!objbuild_needs_headless(rc) && !objbuild_needs_serve_service(rc) &&
          !objbuild_needs_auth_secret(rc));
    /* serve service needs a serve port: the sample has none */
    buf_reset(&err);
    CHECK(objbuild_serve_service(rc, &err) == NULL &&
          strcmp(buf_str(&err), OBJ_ERR_NO_SERVE_PORT) == 0);
    /* defaults when the head declares no ports; unnamed port; app name override */
    json_t *c0 = json_array_get(jx_get(rc, "spec.headGroupSpec.template.spec.containers"), 0);
    json_object_del(c0, "ports");
    svc = objbuild_head_service(rc, NULL, &err);
    CHECK(svc &&
          s_ports_are(jx_get(svc, "spec.ports"),
                      "client:10001,dashboard:8265,gcs-server:6379,metrics:8080,serve:8000"));
    json_decref(svc);
    json_object_set_new(c0, "ports",
                        json_pack("[{s:i},{s:s,s:i},{s:s,s:i}]", "containerPort", 7000, "name",
                                  "serve-grpc", "containerPort", 9000, "name", "metrics",
                                  "containerPort", 9090));
    jx_set_path(rc, "spec.headGroupSpec.template.metadata.labels",
                json_pack("{s:s}", LABEL_APP_NAME, "myapp"));
    jx_set_path(rc, "spec.headServiceAnnotations", json_pack("{s:s}", "a", "b"));
    jx_set_path(rc, "spec.headGroupSpec.serviceType", json_string("NodePort"));
    svc = objbuild_head_service(rc, NULL, &err);
    CHECK(svc &&
          s_ports_are(jx_get(svc, "spec.ports"), "7000-port:7000,metrics:9090,serve-grpc:9000"));
    CHECK(svc && s_label(svc, "spec.selector", LABEL_APP_NAME, "myapp") &&
          s_label(svc, "metadata.annotations", "a", "b"));
    CHECK(svc && strcmp(jx_str(svc, "spec.type", ""), "NodePort") == 0 &&
          !jx_get(svc, "spec.clusterIP"));
    json_decref(svc);
    json_t *serve = objbuild_serve_service(rc, &err);
    CHECK(serve && strcmp(jx_str(serve, "metadata.name", ""), "raycluster-kuberay-serve-svc") == 0);
    CHECK(serve && s_ports_are(jx_get(serve, "spec.ports"), "serve-grpc:9000") &&
          !jx_get(json_array_get(jx_get(serve, "spec.ports"), 0), "appProtocol"));
    CHECK(serve && s_label(serve, "spec.selector", LABEL_CLUSTER, cn) &&
          json_object_size(jx_get(serve, "spec.selector")) == 1);
    CHECK(serve && s_label(serve, "metadata.labels", LABEL_SERVE, "raycluster-kuberay-serve"));
    CHECK(serve && s_label(serve, "metadata.labels", LABEL_ORIGINATED_FROM_CRD, "RayCluster") &&
          s_owner_ok(serve, cn));
    CHECK(serve && strcmp(jx_str(serve, "spec.type", ""), "NodePort") == 0);
    json_decref(serve);
    /* headless */
    json_t *hl = objbuild_headless_service(rc);
    CHECK(hl && strcmp(jx_str(hl, "metadata.name", ""), "raycluster-kuberay-headless") == 0);
    CHECK(hl && s_label(hl, "metadata.labels", LABEL_HEADLESS_WORKER_SVC, cn) &&
          s_label(hl, "spec.selector", LABEL_NODE_TYPE, "worker"));
    CHECK(hl && strcmp(jx_str(hl, "spec.clusterIP", ""), "None") == 0 &&
          jx_bool(hl, "spec.publishNotReadyAddresses", false) && !jx_get(hl, "spec.ports") &&
          s_owner_ok(hl, cn));
    json_decref(hl);
    /* ingress */
    jx_set_path(rc, "metadata.annotations",
                json_pack("{s:s,s:s}", ANN_INGRESS_CLASS, "nginx", "x", "y"));
    json_object_set_new(c0, "ports",
                        json_pack("[{s:s,s:i}]", "name", "dashboard", "containerPort", 8266));
    json_t *ing = objbuild_ingress(rc);
    CHECK(ing && strcmp(jx_str(ing, "metadata.name", ""), "raycluster-kuberay-head-ingress") == 0);
    CHECK(ing && strcmp(jx_str(ing, "spec.ingressClassName", ""), "nginx") == 0 &&
          s_label(ing, "metadata.annotations", "x", "y") &&
          !json_object_get(jx_get(ing, "metadata.annotations"), ANN_INGRESS_CLASS));
    const json_t *path0 =
        json_array_get(jx_get(json_array_get(jx_get(ing, "spec.rules"), 0), "http.paths"), 0);
    CHECK(path0 && strcmp(jx_str(path0, "path", ""), "/") == 0 &&
          strcmp(jx_str(path0, "pathType", ""), "Prefix") == 0 &&
          strcmp(jx_str(path0, "backend.service.name", ""), "raycluster-kuberay-head-svc") == 0 &&
          jx_int(path0, "backend.service.port.number", 0) == 8266);
    CHECK(ing && s_label(ing, "metadata.labels", LABEL_IDENTIFIER, "raycluster-kuberay-head") &&
          s_owner_ok(ing, cn));
    json_decref(ing);
    json_decref(rc);

    /* ray-cluster.complete.yaml */
    rc = s_load_sample("ray-cluster.complete.yaml");
    CHECK(rc != NULL);
    svc = objbuild_head_service(rc, NULL, &err);
    CHECK(svc && strcmp(jx_str(svc, "metadata.name", ""), "raycluster-complete-head-svc") == 0);
    CHECK(svc && s_ports_are(jx_get(svc, "spec.ports"),
                             "client:10001,dashboard:8265,gcs:6379,metrics:8080"));
    json_decref(svc);
    json_decref(rc);

    /* ray-cluster.autoscaler.yaml: RBAC */
    rc = s_load_sample("ray-cluster.autoscaler.yaml");
    CHECK(rc != NULL && jx_bool(rc, "spec.enableInTreeAutoscaling", false));
    cn = s_name(rc);
    json_t *sa = objbuild_service_account(rc), *role = objbuild_role(rc),
           *rb = objbuild_role_binding(rc);
    CHECK(sa && strcmp(jx_str(sa, "metadata.name", ""), cn) == 0 &&
          strcmp(jx_str(sa, "kind", ""), "ServiceAccount") == 0);
    CHECK(sa && s_label(sa, "metadata.labels", LABEL_CLUSTER, cn) &&
          s_label(sa, "metadata.labels", LABEL_APP_NAME, "kuberay") &&
          s_label(sa, "metadata.labels", LABEL_CREATED_BY, "kuberay-operator") &&
          s_owner_ok(sa, cn));
    json_t *want_rules =
        json_loads("[{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"verbs\":[\"get\",\"list\","
                   "\"watch\",\"patch\"]},"
                   "{\"apiGroups\":[\"\"],\"resources\":[\"pods/resize\"],\"verbs\":[\"patch\"]},"
                   "{\"apiGroups\":[\"ray.io\"],\"resources\":[\"rayclusters\"],\"verbs\":[\"get\","
                   "\"patch\"]}]",
                   0, NULL);
    CHECK(role && json_equal(jx_get(role, "rules"), want_rules) &&
          strcmp(jx_str(role, "metadata.name", ""), cn) == 0 && s_owner_ok(role, cn));
    json_decref(want_rules);
    CHECK(rb && strcmp(jx_str(json_array_get(jx_get(rb, "subjects"), 0), "name", ""), cn) == 0 &&
          strcmp(jx_str(rb, "roleRef.name", ""), cn) == 0 &&
          strcmp(jx_str(rb, "roleRef.kind", ""), "Role") == 0 &&
          strcmp(jx_str(json_array_get(jx_get(rb, "subjects"), 0), "namespace", ""), "default") ==
              0);
    json_decref(sa);
    json_decref(role);
    json_decref(rb);
    jx_set_path(rc, "spec.headGroupSpec.template.spec.serviceAccountName",
                json_string("7-custom-sa"));
    sa = objbuild_service_account(rc);
    rb = objbuild_role_binding(rc);
    CHECK(sa && strcmp(jx_str(sa, "metadata.name", ""), "r-custom-sa") == 0);
    CHECK(rb && strcmp(jx_str(json_array_get(jx_get(rb, "subjects"), 0), "name", ""),
                       "r-custom-sa") == 0);
    json_decref(sa);
    json_decref(rb);
    json_decref(rc);

    /* ray-cluster.custom-head-service.yaml */
    rc = s_load_sample("ray-cluster.custom-head-service.yaml");
    CHECK(rc != NULL);
    svc = objbuild_head_service(rc, NULL, &err);
    CHECK(svc && strcmp(jx_str(svc, "metadata.name", ""), "custom-ray-head-service-name") == 0);
    CHECK(svc && strcmp(jx_str(svc, "spec.type", ""), "LoadBalancer") == 0 &&
          !jx_get(svc, "spec.clusterIP"));
    CHECK(svc && s_label(svc, "metadata.labels", "custom-label", "custom-ray-head-service-label") &&
          s_label(svc, "metadata.labels", LABEL_NODE_TYPE, "head") &&
          s_label(svc, "metadata.annotations", "custom-annotation",
                  "custom-ray-head-service-annotation"));
    CHECK(svc && json_object_size(jx_get(svc, "spec.selector")) == 5 &&
          s_label(svc, "spec.selector", LABEL_CLUSTER, "custom-head-svc"));
    CHECK(svc &&
          s_ports_are(jx_get(svc, "spec.ports"), "custom-ray-head-service-port:12345,client:10001,"
                                                 "dashboard:8265,gcs-server:6379,metrics:8080"));
    CHECK(svc && strcmp(jx_str(svc, "metadata.namespace", ""), "default") == 0 &&
          s_owner_ok(svc, "custom-head-svc"));
    json_decref(svc);

    /* auth secret */
    jx_set_path(rc, "spec.authOptions", json_pack("{s:s}", "mode", "token"));
    CHECK(objbuild_needs_auth_secret(rc));
    json_t *sec = objbuild_auth_secret(rc, s_fixed_rand, NULL);
    /* token = base64(00..1f) = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" */
    CHECK(sec && strcmp(jx_str(sec, "data.auth_token", ""),
                        "QUFFQ0F3UUZCZ2NJQ1FvTERBME9EeEFSRWhNVUZSWVhHQmthR3h3ZEhoOD0=") == 0);
    CHECK(sec && strcmp(jx_str(sec, "metadata.name", ""), "custom-head-svc") == 0 &&
          s_label(sec, "metadata.labels", LABEL_CLUSTER, "custom-head-svc") &&
          s_owner_ok(sec, "custom-head-svc"));
    json_decref(sec);
    CHECK(objbuild_auth_secret(rc, s_bad_rand, NULL) == NULL);
    jx_set_path(rc, "spec.authOptions.secretName", json_string("mine"));
    CHECK(!objbuild_needs_auth_secret(rc));

    /* GCS PVC */
    jx_set_path(rc, "spec.gcsFaultToleranceOptions", json_pack("{s:s}", "backend", "rocksdb"));
    CHECK(objbuild_needs_gcs_pvc(rc));
    json_t *pvc = objbuild_gcs_pvc(rc);
    CHECK(pvc && strcmp(jx_str(pvc, "metadata.name", ""), "custom-head-svc-gcs-pvc") == 0 &&
          strcmp(jx_str(pvc, "spec.resources.requests.storage", ""), "1Gi") == 0 &&

          strcmp(json_string_value(json_array_get(jx_get(pvc, "spec.accessModes"), 0)),
                 "ReadWriteOnce") == 0 &&
          s_owner_ok(pvc, "custom-head-svc"));
    json_decref(pvc);
    jx_set_path(rc, "spec.gcsFaultToleranceOptions.storage",
                json_pack("{s:s,s:s}", "deletionPolicy", "Retain", "size", "5Gi"));
    pvc = objbuild_gcs_pvc(rc);
    CHECK(pvc && !jx_get(pvc, "metadata.ownerReferences") &&
          strcmp(jx_str(pvc, "spec.resources.requests.storage", ""), "5Gi") == 0);
    json_decref(pvc);

    /* redis cleanup job */
    json_t *head = json_loads(
        "{\"metadata\":{\"labels\":{\"ray.io/cluster\":\"custom-head-svc\",\"ray.io/"
        "node-type\":\"head\"},"
        "\"annotations\":{\"ray.io/ft-enabled\":\"true\"}},\"spec\":{\"initContainers\":[{\"name\":"
        "\"wait-for-tls-ip-san\"}],\"containers\":[{\"name\":\"ray-head\",\"image\":\"img\","
        "\"env\":[],"
        "\"livenessProbe\":{}},{\"name\":\"autoscaler\"}]}}",
        0, NULL);
    json_t *job = objbuild_redis_cleanup_job(rc, head);
    CHECK(job && strcmp(jx_str(job, "metadata.name", ""), "custom-head-svc-redis-cleanup") == 0);
    CHECK(job && s_label(job, "metadata.labels", LABEL_NODE_TYPE, "redis-cleanup") &&
          s_label(job, "spec.template.metadata.labels", LABEL_NODE_TYPE, "redis-cleanup") &&
          s_label(job, "metadata.annotations", "ray.io/ft-enabled", "true"));
    CHECK(job && jx_int(job, "spec.backoffLimit", -1) == 0 &&
          jx_int(job, "spec.activeDeadlineSeconds", 0) == 300 &&
          strcmp(jx_str(job, "spec.template.spec.restartPolicy", ""), "Never") == 0);
    const json_t *jc = json_array_get(jx_get(job, "spec.template.spec.containers"), 0);
    CHECK(json_array_size(jx_get(job, "spec.template.spec.containers")) == 1 &&
          !jx_get(jc, "livenessProbe") &&
          strcmp(jx_str(jc, "resources.limits.cpu", ""), "200m") == 0 &&
          strcmp(jx_str(jc, "resources.requests.memory", ""), "256Mi") == 0 &&
          json_array_size(jx_get(jc, "env")) == 2 &&
          json_array_size(jx_get(job, "spec.template.spec.initContainers")) == 0);
    CHECK(jc &&
          strstr(json_string_value(json_array_get(jx_get(jc, "args"), 0)),
                 "cleanup_redis_storage(host=parsed.hostname") != NULL &&
          strcmp(json_string_value(json_array_get(jx_get(jc, "command"), 1)), "-c") == 0);
    CHECK(job && s_owner_ok(job, "custom-head-svc"));
    json_decref(job);
    json_decref(head);
    json_decref(rc);
    buf_free(&err);
    return SELFTEST_RESULT("objbuild", verbose);
}

#endif /* RF_SELFTEST */
