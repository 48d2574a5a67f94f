/*
 * gateway: Gateway API CRDs, the simulated gateway controller and data plane. See gateway.h.
 */
#include "gateway.h"

#include "buf.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "rftime.h"
#include "yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX 640 /* bytes of a "ns/name/rule" key */
#define S_CT_TEXT "text/plain; charset=utf-8"
#define S_PENDING_MSG "Waiting for controller"
#define S_EPOCH "1970-01-01T00:00:00Z" /* upstream's lastTransitionTime of the Pending default */

/* The CRDs, kubesim's own schemas (see gateway.h for what they enforce). */
static const char s_crds_yaml[] =
    "apiVersion: apiextensions.k8s.io/v1\n"
    "kind: CustomResourceDefinition\n"
    "metadata:\n"
    "  name: gatewayclasses.gateway.networking.k8s.io\n"
    "  annotations: {gateway.networking.k8s.io/bundle-version: v1.2.1,\n"
    "                gateway.networking.k8s.io/channel: standard, kubesim.io/add-on: gateway-api}\n"
    "spec:\n"
    "  group: gateway.networking.k8s.io\n"
    "  scope: Cluster\n"
    "  names: {kind: GatewayClass, listKind: GatewayClassList, plural: gatewayclasses,\n"
    "          singular: gatewayclass, shortNames: [gc], categories: [gateway-api]}\n"
    "  versions:\n"
    "  - name: v1\n"
    "    served: true\n"
    "    storage: true\n"
    "    subresources: {status: {}}\n"
    "    additionalPrinterColumns:\n"
    "    - {name: Controller, type: string, jsonPath: .spec.controllerName}\n"
    "    - {name: Accepted, type: string,\n"
    "       jsonPath: '.status.conditions[?(@.type==\"Accepted\")].status'}\n"
    "    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}\n"
    "    - {name: Description, type: string, jsonPath: .spec.description, priority: 1}\n"
    "    schema:\n"
    "      openAPIV3Schema:\n"
    "        type: object\n"
    "        required: [spec]\n"
    "        properties:\n"
    "          apiVersion: {type: string}\n"
    "          kind: {type: string}\n"
    "          metadata: {type: object}\n"
    "          spec:\n"
    "            type: object\n"
    "            required: [controllerName]\n"
    "            properties:\n"
    "              controllerName: {type: string, minLength: 1, maxLength: 253,\n"
    "                               pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[^ ]+$'}\n"
    "              description: {type: string, maxLength: 64}\n"
    "              parametersRef:\n"
    "                type: object\n"
    "                required: [group, kind, name]\n"
    "                properties:\n"
    "                  group: {type: string, maxLength: 253}\n"
    "                  kind: {type: string, minLength: 1, maxLength: 63}\n"
    "                  name: {type: string, minLength: 1, maxLength: 253}\n"
    "                  namespace: {type: string, minLength: 1, maxLength: 63}\n"
    "          status: {type: object, x-kubernetes-preserve-unknown-fields: true}\n"
    "---\n"
    "apiVersion: apiextensions.k8s.io/v1\n"
    "kind: CustomResourceDefinition\n"
    "metadata:\n"
    "  name: gateways.gateway.networking.k8s.io\n"
    "  annotations: {gateway.networking.k8s.io/bundle-version: v1.2.1,\n"
    "                gateway.networking.k8s.io/channel: standard, kubesim.io/add-on: gateway-api}\n"
    "spec:\n"
    "  group: gateway.networking.k8s.io\n"
    "  scope: Namespaced\n"
    "  names: {kind: Gateway, listKind: GatewayList, plural: gateways, singular: gateway,\n"
    "          shortNames: [gtw], categories: [gateway-api]}\n"
    "  versions:\n"
    "  - name: v1\n"
    "    served: true\n"
    "    storage: true\n"
    "    subresources: {status: {}}\n"
    "    additionalPrinterColumns:\n"
    "    - {name: Class, type: string, jsonPath: .spec.gatewayClassName}\n"
    "    - {name: Address, type: string, jsonPath: '.status.addresses[*].value'}\n"
    "    - {name: Programmed, type: string,\n"
    "       jsonPath: '.status.conditions[?(@.type==\"Programmed\")].status'}\n"
    "    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}\n"
    "    schema:\n"
    "      openAPIV3Schema:\n"
    "        type: object\n"
    "        required: [spec]\n"
    "        properties:\n"
    "          apiVersion: {type: string}\n"
    "          kind: {type: string}\n"
    "          metadata: {type: object}\n"
    "          spec:\n"
    "            type: object\n"
    "            required: [gatewayClassName, listeners]\n"
    "            properties:\n"
    "              gatewayClassName: {type: string, minLength: 1, maxLength: 253}\n"
    "              listeners:\n"
    "                type: array\n"
    "                minItems: 1\n"
    "                maxItems: 64\n"
    "                x-kubernetes-list-type: map\n"
    "                x-kubernetes-list-map-keys: [name]\n"
    "                items:\n"
    "                  type: object\n"
    "                  required: [name, port, protocol]\n"
    "                  properties:\n"
    "                    name: {type: string, minLength: 1, maxLength: 253,\n"
    "                           pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'}\n"
    "                    hostname: {type: string, minLength: 1, maxLength: 253}\n"
    "                    port: {type: integer, format: int32, minimum: 1, maximum: 65535}\n"
    "                    protocol: {type: string, minLength: 1, maxLength: 255}\n"
    "                    tls: {type: object, x-kubernetes-preserve-unknown-fields: true}\n"
    "                    allowedRoutes:\n"
    "                      type: object\n"
    "                      default: {namespaces: {from: Same}}\n"
    "                      properties:\n"
    "                        namespaces:\n"
    "                          type: object\n"
    "                          default: {from: Same}\n"
    "                          properties:\n"
    "                            from: {type: string, default: Same, enum: [All, Selector, Same]}\n"
    "                            selector: {type: object,\n"
    "                                       x-kubernetes-preserve-unknown-fields: true}\n"
    "                        kinds:\n"
    "                          type: array\n"
    "                          maxItems: 8\n"
    "                          items:\n"
    "                            type: object\n"
    "                            required: [kind]\n"
    "                            properties:\n"
    "                              group: {type: string, maxLength: 253}\n"
    "                              kind: {type: string, minLength: 1, maxLength: 63}\n"
    "              addresses:\n"
    "                type: array\n"
    "                maxItems: 16\n"
    "                items:\n"
    "                  type: object\n"
    "                  properties:\n"
    "                    type: {type: string, default: IPAddress, minLength: 1, maxLength: 253}\n"
    "                    value: {type: string, minLength: 1, maxLength: 253}\n"
    "              infrastructure: {type: object, x-kubernetes-preserve-unknown-fields: true}\n"
    "          status: {type: object, x-kubernetes-preserve-unknown-fields: true}\n"
    "---\n"
    "apiVersion: apiextensions.k8s.io/v1\n"
    "kind: CustomResourceDefinition\n"
    "metadata:\n"
    "  name: httproutes.gateway.networking.k8s.io\n"
    "  annotations: {gateway.networking.k8s.io/bundle-version: v1.2.1,\n"
    "                gateway.networking.k8s.io/channel: standard, kubesim.io/add-on: gateway-api}\n"
    "spec:\n"
    "  group: gateway.networking.k8s.io\n"
    "  scope: Namespaced\n"
    "  names: {kind: HTTPRoute, listKind: HTTPRouteList, plural: httproutes,\n"
    "          singular: httproute, categories: [gateway-api]}\n"
    "  versions:\n"
    "  - name: v1\n"
    "    served: true\n"
    "    storage: true\n"
    "    subresources: {status: {}}\n"
    "    additionalPrinterColumns:\n"
    "    - {name: Hostnames, type: string, jsonPath: .spec.hostnames}\n"
    "    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}\n"
    "    schema:\n"
    "      openAPIV3Schema:\n"
    "        type: object\n"
    "        required: [spec]\n"
    "        properties:\n"
    "          apiVersion: {type: string}\n"
    "          kind: {type: string}\n"
    "          metadata: {type: object}\n"
    "          spec:\n"
    "            type: object\n"
    "            properties:\n"
    "              parentRefs:\n"
    "                type: array\n"
    "                maxItems: 32\n"
    "                items:\n"
    "                  type: object\n"
    "                  required: [name]\n"
    "                  properties:\n"
    "                    group: {type: string, default: gateway.networking.k8s.io, maxLength: "
    "253}\n"
    "                    kind: {type: string, default: Gateway, minLength: 1, maxLength: 63}\n"
    "                    namespace: {type: string, minLength: 1, maxLength: 63}\n"
    "                    name: {type: string, minLength: 1, maxLength: 253}\n"
    "                    sectionName: {type: string, minLength: 1, maxLength: 253}\n"
    "                    port: {type: integer, format: int32, minimum: 1, maximum: 65535}\n"
    "              hostnames:\n"
    "                type: array\n"
    "                maxItems: 16\n"
    "                items: {type: string, minLength: 1, maxLength: 253}\n"
    "              rules:\n"
    "                type: array\n"
    "                maxItems: 16\n"
    "                default: [{matches: [{path: {type: PathPrefix, value: /}}]}]\n"
    "                items:\n"
    "                  type: object\n"
    "                  properties:\n"
    "                    name: {type: string, minLength: 1, maxLength: 253}\n"
    "                    matches:\n"
    "                      type: array\n"
    "                      maxItems: 64\n"
    "                      default: [{path: {type: PathPrefix, value: /}}]\n"
    "                      items:\n"
    "                        type: object\n"
    "                        properties:\n"
    "                          path:\n"
    "                            type: object\n"
    "                            default: {type: PathPrefix, value: /}\n"
    "                            properties:\n"
    "                              type: {type: string, default: PathPrefix,\n"
    "                                     enum: [Exact, PathPrefix, RegularExpression]}\n"
    "                              value: {type: string, default: /, maxLength: 1024}\n"
    "                          headers: {type: array, maxItems: 16, items: {type: object,\n"
    "                                    x-kubernetes-preserve-unknown-fields: true}}\n"
    "                          queryParams: {type: array, maxItems: 16, items: {type: object,\n"
    "                                        x-kubernetes-preserve-unknown-fields: true}}\n"
    "                          method: {type: string, enum: [GET, HEAD, POST, PUT, DELETE,\n"
    "                                   CONNECT, OPTIONS, TRACE, PATCH]}\n"
    "                    filters: {type: array, maxItems: 16, items: {type: object,\n"
    "                              x-kubernetes-preserve-unknown-fields: true}}\n"
    "                    backendRefs:\n"
    "                      type: array\n"
    "                      maxItems: 16\n"
    "                      items:\n"
    "                        type: object\n"
    "                        required: [name]\n"
    "                        properties:\n"
    "                          group: {type: string, default: '', maxLength: 253}\n"
    "                          kind: {type: string, default: Service, minLength: 1,\n"
    "                                 maxLength: 63}\n"
    "                          name: {type: string, minLength: 1, maxLength: 253}\n"
    "                          namespace: {type: string, minLength: 1, maxLength: 63}\n"
    "                          port: {type: integer, format: int32, minimum: 1,\n"
    "                                 maximum: 65535}\n"
    "                          weight: {type: integer, format: int32, default: 1, minimum: 0,\n"
    "                                   maximum: 1000000}\n"
    "                          filters: {type: array, maxItems: 16, items: {type: object,\n"
    "                                    x-kubernetes-preserve-unknown-fields: true}}\n"
    "                    timeouts: {type: object, x-kubernetes-preserve-unknown-fields: true}\n"
    "                    sessionPersistence: {type: object,\n"
    "                                         x-kubernetes-preserve-unknown-fields: true}\n"
    "          status: {type: object, x-kubernetes-preserve-unknown-fields: true}\n";

struct gateway {
    loop_t *loop; /* event loop or NULL */
    objstore_t *store; /* the objects */
    raysim_t *ray; /* answers the backends, or NULL */
    objstore_res_t *rclasses, *rgws, *rroutes; /* Gateway API resources (NULL when absent) */
    objstore_res_t *rsvcs, *rnss; /* services, namespaces (NULL when absent) */
    objstore_watch_t *wclasses, *wgws, *wroutes, *wsvcs; /* watches */
    json_t *wrr; /* "ns/route/rule" -> {"uid", "gen", "cur": [current weights]} */
    loop_soon_t soon; /* the coalesced tick after watch events (soon.running: in the tick) */
    bool dirty; /* something changed since the last tick */
};

json_t *gateway_crds(void)
{
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, 4096);
    if (yaml_load_buf(s_crds_yaml, sizeof(s_crds_yaml) - 1, "gateway-api-crds", &docs, &err) < 0) {
        log_error("gateway: built-in CRDs do not load", "error", buf_str(&err), NULL);
        docs = NULL;
    }
    buf_free(&err);
    return docs;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static void s_soon(void *arg)
{
    gateway_tick(arg);
}

static void s_kick(gateway_t *g)
{
    g->dirty = true;
    loop_soon(&g->soon);
}

static int s_on_change(const objstore_event_t *ev, void *arg)
{
    (void)ev;
    s_kick(arg);
    return 0;
}

static int s_on_service(const objstore_event_t *ev, void *arg)
{
    (void)ev;
    gateway_t *g = arg;
    if (g->rroutes && objstore_res_count(g->rroutes) > 0)
        s_kick(g);
    return 0;
}

static const char *s_ns(const json_t *obj)
{
    return jx_str(obj, "metadata.namespace", "");
}

static const char *s_name(const json_t *obj)
{
    return jx_str(obj, "metadata.name", "");
}

/* A list of every object of r (namespace ns, NULL = all) as a new array (empty when r is NULL). */
static json_t *s_list(gateway_t *g, objstore_res_t *r, const char *ns)
{
    if (!r)
        return json_array();
    objstore_list_opts_t o = {.ns = ns};
    objstore_list_t l;
    objstore_status_t st;
    if (objstore_list(g->store, r, &o, &l, &st) < 0)
        return json_array();
    json_t *items = json_incref(l.items);
    objstore_list_free(&l);
    return items;
}

static json_t *s_get(gateway_t *g, objstore_res_t *r, const char *ns, const char *name)
{
    json_t *out = NULL;
    objstore_status_t st;
    if (!r || objstore_get(g->store, r, ns, name, &out, &st) < 0)
        return NULL;
    return out;
}

/* A condition, keeping lastTransitionTime from `old` (a conditions array) while the status of
 * the same type is unchanged, as meta.SetStatusCondition does. */
static json_t *s_cond(const json_t *old, const char *type, const char *status, const char *reason,
                      const char *msg, json_int_t gen, const char *now)
{
    const char *ts = now;
    json_t *o = jx_array_find(old, "type", type);
    if (o && strcmp(jx_str(o, "status", ""), status) == 0)
        ts = jx_str(o, "lastTransitionTime", now);
    return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "type", type, "status", status, "reason", reason,
                     "message", msg, "observedGeneration", gen, "lastTransitionTime", ts);
}

/* Writes `status` (stolen) to obj when it differs from the stored one. Returns 1 after a write. */
static int s_put_status(gateway_t *g, objstore_res_t *r, const json_t *obj, json_t *status)
{
    objstore_status_t st;
    int rc = objstore_put_status(g->store, r, obj, status, &st);
    if (rc < 0)
        log_warn("gateway: status write failed", "name", s_name(obj), "error", st.message, NULL);
    return rc == 1;
}

/* True when every matchLabels pair of `sel` is in the labels of namespace ns (an empty
 * selector matches every namespace; matchExpressions are not evaluated: no match). */
static bool s_ns_selected(gateway_t *g, const json_t *sel, const char *ns)
{
    if (json_array_size(json_object_get(sel, "matchExpressions")) > 0)
        return false;
    json_t *nso = s_get(g, g->rnss, NULL, ns);
    const json_t *labels = jx_get(nso, "metadata.labels");
    bool ok = true;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(sel, "matchLabels"), k, v)
    {
        json_t *lv = json_object_get(labels, k);
        if (!json_is_string(lv) || !json_is_string(v) ||
            strcmp(json_string_value(lv), json_string_value(v)) != 0)
            ok = false;
    }
    json_decref(nso);
    return ok;
}

/* The Gateway namespace a parentRef of `route` names, or NULL when it names no Gateway. */
static const char *s_parent_gw_ns(const json_t *route, const json_t *pref)
{
    if (strcmp(jx_str(pref, "group", GATEWAY_GROUP), GATEWAY_GROUP) != 0 ||
        strcmp(jx_str(pref, "kind", "Gateway"), "Gateway") != 0)
        return NULL;
    return jx_str(pref, "namespace", s_ns(route));
}

/* Does listener `l` of gateway `gw` name parentRef `pref` (sectionName, port)? */
static bool s_listener_named(const json_t *l, const json_t *pref)
{
    const char *sec = jx_str(pref, "sectionName", NULL);
    json_int_t port = jx_int(pref, "port", 0);
    return (!sec || strcmp(sec, jx_str(l, "name", "")) == 0) &&
           (!port || port == jx_int(l, "port", 0));
}

/* Does listener `l` of gw let an HTTPRoute in route_ns attach? */
static bool s_listener_allows(gateway_t *g, const json_t *gw, const json_t *l, const char *route_ns)
{
    const char *proto = jx_str(l, "protocol", "");
    if (strcmp(proto, "HTTP") != 0 && strcmp(proto, "HTTPS") != 0)
        return false;
    const json_t *kinds = jx_get(l, "allowedRoutes.kinds");
    if (json_array_size(kinds) > 0) {
        size_t i;
        json_t *k;
        bool found = false;
        json_array_foreach(kinds, i, k)
        {
            if (strcmp(jx_str(k, "group", GATEWAY_GROUP), GATEWAY_GROUP) == 0 &&
                strcmp(jx_str(k, "kind", ""), "HTTPRoute") == 0)
                found = true;
        }
        if (!found)
            return false;
    }
    const char *from = jx_str(l, "allowedRoutes.namespaces.from", "Same");
    if (strcmp(from, "All") == 0)
        return true;
    if (strcmp(from, "Selector") == 0)
        return s_ns_selected(g, jx_get(l, "allowedRoutes.namespaces.selector"), route_ns);
    return strcmp(route_ns, s_ns(gw)) == 0;
}

/* How parentRef `pref` of `route` attaches to `gw`: 1 accepted (listeners counted into
 * `counts`, an array parallel to the listeners, when not NULL), 0 not allowed, -1 no listener
 * of that section/port. */
static int s_attach(gateway_t *g, const json_t *gw, const json_t *route, const json_t *pref,
                    json_int_t *counts)
{
    const json_t *ls = jx_get(gw, "spec.listeners");
    bool named = false, ok = false;
    size_t i;
    json_t *l;
    json_array_foreach(ls, i, l)
    {
        if (!s_listener_named(l, pref))
            continue;
        named = true;
        if (s_listener_allows(g, gw, l, s_ns(route))) {
            ok = true;
            if (counts)
                counts[i]++;
        }
    }
    return ok ? 1 : named ? 0 : -1;
}

/* Does parentRef pref of route name gateway gw? */
static bool s_refers(const json_t *route, const json_t *pref, const json_t *gw)
{
    const char *ns = s_parent_gw_ns(route, pref);
    return ns && strcmp(ns, s_ns(gw)) == 0 && strcmp(jx_str(pref, "name", ""), s_name(gw)) == 0;
}

/* Checks one backendRef of `route`: 0 resolved, else fills reason/message. */
static int s_backend_check(gateway_t *g, const json_t *route, const json_t *br, const char **reason,
                           char *msg, size_t n)
{
    const char *group = jx_str(br, "group", "");
    const char *kind = jx_str(br, "kind", "Service");
    const char *name = jx_str(br, "name", "");
    const char *ns = jx_str(br, "namespace", s_ns(route));
    if (group[0] || strcmp(kind, "Service") != 0) {
        *reason = "InvalidKind";
        snprintf(msg, n, "backendRef %s: kind %s%s%s is not supported (only core Service)", name,
                 kind, group[0] ? "." : "", group);
        return -1;
    }
    if (strcmp(ns, s_ns(route)) != 0) {
        *reason = "RefNotPermitted";
        snprintf(msg, n, "backendRef %s/%s not permitted: no ReferenceGrant allows it", ns, name);
        return -1;
    }
    json_t *svc = s_get(g, g->rsvcs, ns, name);
    if (!svc) {
        *reason = "BackendNotFound";
        snprintf(msg, n, "service %s/%s not found", ns, name);
        return -1;
    }
    json_decref(svc);
    return 0;
}

/* ---- controller ------------------------------------------------------------------------- */

static int s_sync_class(gateway_t *g, const json_t *gc, const char *now)
{
    json_int_t gen = jx_int(gc, "metadata.generation", 1);
    const json_t *old = jx_get(gc, "status.conditions");
    json_t *st = json_pack("{s:[o]}", "conditions",
                           s_cond(old, "Accepted", "True", "Accepted",
                                  "Handled by the kubesim gateway controller", gen, now));
    return s_put_status(g, g->rclasses, gc, st);
}

static void s_address(const json_t *gw, char *out, size_t n)
{
    uint32_t h = 2166136261u;
    for (const char *p = jx_str(gw, "metadata.uid", s_name(gw)); *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(out, n, "10.96.%u.%u", 128 + (h >> 8) % 128, 1 + (h & 0xff) % 254);
}

static int s_sync_gateway(gateway_t *g, const json_t *gw, const json_t *routes, const char *now)
{
    json_int_t gen = jx_int(gw, "metadata.generation", 1);
    const json_t *old = jx_get(gw, "status.conditions");
    json_t *gc = s_get(g, g->rclasses, NULL, jx_str(gw, "spec.gatewayClassName", ""));
    if (!gc) {
        /* No controller owns it: upstream's CRD default, written once. */
        if (jx_get(gw, "status.conditions"))
            return 0;
        json_t *st = json_pack("{s:[{s:s,s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s,s:s}]}", "conditions",
                               "type", "Accepted", "status", "Unknown", "reason", "Pending",
                               "message", S_PENDING_MSG, "lastTransitionTime", S_EPOCH, "type",
                               "Programmed", "status", "Unknown", "reason", "Pending", "message",
                               S_PENDING_MSG, "lastTransitionTime", S_EPOCH);
        return s_put_status(g, g->rgws, gw, st);
    }
    json_decref(gc);
    const json_t *ls = jx_get(gw, "spec.listeners");
    size_t nl = json_array_size(ls);
    json_int_t *counts = calloc(nl ? nl : 1, sizeof(*counts));
    if (!counts)
        return 0;
    size_t i, j;
    json_t *r, *pref, *l;
    json_array_foreach(routes, i, r)
    {
        json_array_foreach(jx_get(r, "spec.parentRefs"), j, pref)
        {
            if (s_refers(r, pref, gw))
                s_attach(g, gw, r, pref, counts);
        }
    }
    json_t *lst = json_array();
    json_array_foreach(ls, i, l)
    {
        const json_t *lold =
            jx_get(jx_array_find(jx_get(gw, "status.listeners"), "name", jx_str(l, "name", "")),
                   "conditions");
        json_array_append_new(
            lst,
            json_pack(
                "{s:s,s:[{s:s,s:s}],s:I,s:[o,o,o,o]}", "name", jx_str(l, "name", ""),
                "supportedKinds", "group", GATEWAY_GROUP, "kind", "HTTPRoute", "attachedRoutes",
                counts[i], "conditions",
                s_cond(lold, "Accepted", "True", "Accepted", "Listener accepted", gen, now),
                s_cond(lold, "Programmed", "True", "Programmed", "Listener programmed", gen, now),
                s_cond(lold, "ResolvedRefs", "True", "ResolvedRefs", "All references resolved", gen,
                       now),
                s_cond(lold, "Conflicted", "False", "NoConflicts", "No conflicts", gen, now)));
    }
    free(counts);
    char addr[32];
    s_address(gw, addr, sizeof(addr));
    json_t *st = json_pack("{s:[{s:s,s:s}],s:[o,o],s:o}", "addresses", "type", "IPAddress", "value",
                           addr, "conditions",
                           s_cond(old, "Accepted", "True", "Accepted",
                                  "Gateway accepted by the kubesim controller", gen, now),
                           s_cond(old, "Programmed", "True", "Programmed",
                                  "Gateway programmed: kubesim routes it", gen, now),
                           "listeners", lst);
    return s_put_status(g, g->rgws, gw, st);
}

static int s_sync_route(gateway_t *g, const json_t *route, const char *now)
{
    json_int_t gen = jx_int(route, "metadata.generation", 1);
    /* ResolvedRefs: the first unresolved backendRef, over every rule. */
    const char *rreason = NULL;
    char rmsg[512] = "";
    size_t i, j;
    json_t *rule, *br, *pref;
    json_array_foreach(jx_get(route, "spec.rules"), i, rule)
    {
        json_array_foreach(json_object_get(rule, "backendRefs"), j, br)
        {
            if (!rreason && s_backend_check(g, route, br, &rreason, rmsg, sizeof(rmsg)) < 0)
                break;
        }
    }
    json_t *parents = json_array();
    json_array_foreach(jx_get(route, "spec.parentRefs"), i, pref)
    {
        const char *gns = s_parent_gw_ns(route, pref);
        json_t *gw = gns ? s_get(g, g->rgws, gns, jx_str(pref, "name", "")) : NULL;
        json_t *gc =
            gw ? s_get(g, g->rclasses, NULL, jx_str(gw, "spec.gatewayClassName", "")) : NULL;
        if (!gc) {
            json_decref(gw);
            continue; /* no controller sees this parent */
        }
        const json_t *pold = NULL;
        size_t k;
        json_t *p;
        json_array_foreach(jx_get(route, "status.parents"), k, p)
        {
            if (json_equal(json_object_get(p, "parentRef"), pref))
                pold = json_object_get(p, "conditions");
        }
        int at = s_attach(g, gw, route, pref, NULL);
        json_t *acc =
            at > 0    ? s_cond(pold, "Accepted", "True", "Accepted", "Route was valid", gen, now)
            : at == 0 ? s_cond(pold, "Accepted", "False", "NotAllowedByListeners",
                               "No listener of the Gateway allows this route", gen, now)
                      : s_cond(pold, "Accepted", "False", "NoMatchingParent",
                               "No listener matches the parentRef's sectionName or port", gen, now);
        json_t *res = rreason ? s_cond(pold, "ResolvedRefs", "False", rreason, rmsg, gen, now)
                              : s_cond(pold, "ResolvedRefs", "True", "ResolvedRefs",
                                       "All references resolved", gen, now);
        json_array_append_new(
            parents, json_pack("{s:O,s:s,s:[o,o]}", "parentRef", pref, "controllerName",
                               jx_str(gc, "spec.controllerName", ""), "conditions", acc, res));
        json_decref(gw);
        json_decref(gc);
    }
    if (!json_array_size(parents) && !jx_get(route, "status.parents")) {
        json_decref(parents);
        return 0;
    }
    return s_put_status(g, g->rroutes, route, json_pack("{s:o}", "parents", parents));
}

int gateway_tick(gateway_t *g)
{
    if (!g || g->soon.running)
        return 0;
    g->soon.running = true;
    g->dirty = false;
    char now[32];
    rftime_format(objstore_now_ms(g->store), RFTIME_SEC, now, sizeof(now));
    int writes = 0;
    json_t *classes = s_list(g, g->rclasses, NULL);
    json_t *gws = s_list(g, g->rgws, NULL);
    json_t *routes = s_list(g, g->rroutes, NULL);
    size_t i;
    json_t *o;
    json_array_foreach(classes, i, o) writes += s_sync_class(g, o, now);
    json_array_foreach(gws, i, o) writes += s_sync_gateway(g, o, routes, now);
    json_array_foreach(routes, i, o) writes += s_sync_route(g, o, now);
    /* Forget the round-robin state of rules whose route is gone. */
    json_t *live = json_object();
    json_array_foreach(routes, i, o)
    {
        char key[S_KEY_MAX];
        snprintf(key, sizeof(key), "%s/%s", s_ns(o), s_name(o));
        json_object_set_new(live, key, json_true());
    }
    const char *k;
    void *tmp;
    json_object_foreach_safe(g->wrr, tmp, k, o)
    {
        const char *slash = strrchr(k, '/');
        char key[S_KEY_MAX];
        snprintf(key, sizeof(key), "%.*s", slash ? (int)(slash - k) : 0, k);
        if (!json_object_get(live, key))
            json_object_del(g->wrr, k);
    }
    json_decref(live);
    json_decref(classes);
    json_decref(gws);
    json_decref(routes);
    /* Events of our own writes only: everything was computed from the specs above. */
    g->dirty = false;
    g->soon.running = false;
    return writes;
}

/* ---- lifetime --------------------------------------------------------------------------- */

static void s_unwatch(gateway_t *g)
{
    objstore_watch_stop(g->store, &g->wclasses);
    objstore_watch_stop(g->store, &g->wgws);
    objstore_watch_stop(g->store, &g->wroutes);
    g->rclasses = g->rgws = g->rroutes = NULL;
}

static void s_watch(gateway_t *g, objstore_res_t *r, objstore_watch_t **w, objstore_watch_fn fn)
{
    objstore_status_t st;
    if (r && objstore_watch(g->store, r, NULL, NULL, NULL, NULL, fn, g, w, &st) < 0)
        *w = NULL;
}

void gateway_rebind(gateway_t *g)
{
    if (!g)
        return;
    objstore_res_t *c = objstore_find(g->store, GATEWAY_GROUP, "gatewayclasses");
    objstore_res_t *w = objstore_find(g->store, GATEWAY_GROUP, "gateways");
    objstore_res_t *r = objstore_find(g->store, GATEWAY_GROUP, "httproutes");
    if (c == g->rclasses && w == g->rgws && r == g->rroutes && (c || w || r))
        return;
    s_unwatch(g);
    json_object_clear(g->wrr);
    g->rclasses = c;
    g->rgws = w;
    g->rroutes = r;
    s_watch(g, c, &g->wclasses, s_on_change);
    s_watch(g, w, &g->wgws, s_on_change);
    s_watch(g, r, &g->wroutes, s_on_change);
    s_kick(g);
}

gateway_t *gateway_new(loop_t *loop, objstore_t *store, raysim_t *ray)
{
    if (!store)
        return NULL;
    gateway_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->loop = loop;
    loop_soon_init(&g->soon, loop, s_soon, g);
    g->store = store;
    g->ray = ray;
    g->wrr = json_object();
    g->rsvcs = objstore_find(store, "", "services");
    g->rnss = objstore_find(store, "", "namespaces");
    if (!g->wrr) {
        gateway_destroy(&g);
        return NULL;
    }
    s_watch(g, g->rsvcs, &g->wsvcs, s_on_service);
    gateway_rebind(g);
    return g;
}

void gateway_destroy(gateway_t **gp)
{
    if (!gp || !*gp)
        return;
    gateway_t *g = *gp;
    s_unwatch(g);
    objstore_watch_stop(g->store, &g->wsvcs);
    loop_soon_cancel(&g->soon);
    json_decref(g->wrr);
    free(g);
    *gp = NULL;
}

/* ---- data plane ------------------------------------------------------------------------- */

static int s_reply(rayhead_response_t *out, int status, const char *msg)
{
    out->status = status;
    out->content_type = S_CT_TEXT;
    buf_reset(&out->body);
    return buf_puts(&out->body, msg);
}

/* How well match `m` takes `path` (query cut) for `method`: 0 no, else a rank where a higher one
 * wins (Exact over PathPrefix, then the longer value). */
static long s_match_rank(const json_t *m, const char *path, size_t plen, const char *method)
{
    if (json_array_size(json_object_get(m, "headers")) > 0 ||
        json_array_size(json_object_get(m, "queryParams")) > 0)
        return 0;
    const char *mm = jx_str(m, "method", NULL);
    if (mm && strcmp(mm, method) != 0)
        return 0;
    const char *type = jx_str(m, "path.type", "PathPrefix");
    const char *v = jx_str(m, "path.value", "/");
    size_t vl = strlen(v);
    if (strcmp(type, "Exact") == 0)
        return vl == plen && memcmp(v, path, plen) == 0 ? 2000000 + (long)vl : 0;
    if (strcmp(type, "PathPrefix") != 0)
        return 0;
    while (vl > 1 && v[vl - 1] == '/')
        vl--; /* "/foo/" is the prefix "/foo" */
    if (vl == 1 && v[0] == '/')
        return 1;
    if (plen < vl || memcmp(path, v, vl) != 0 || (plen > vl && path[vl] != '/'))
        return 0;
    return 1 + (long)vl;
}

/* Precedence of two routes of equal match rank: the older, then the smaller ns/name. */
static bool s_route_before(const json_t *a, const json_t *b)
{
    int c = strcmp(jx_str(a, "metadata.creationTimestamp", ""),
                   jx_str(b, "metadata.creationTimestamp", ""));
    if (c)
        return c < 0;
    c = strcmp(s_ns(a), s_ns(b));
    return c ? c < 0 : strcmp(s_name(a), s_name(b)) < 0;
}

/* Smooth weighted round-robin over the rule's backendRefs. Returns the index, or -1 when every
 * weight is 0. */
static int s_pick(gateway_t *g, const json_t *route, size_t rule_idx, const json_t *brs)
{
    size_t n = json_array_size(brs);
    if (n > GATEWAY_MAX_BACKENDS)
        n = GATEWAY_MAX_BACKENDS;
    char key[S_KEY_MAX];
    snprintf(key, sizeof(key), "%s/%s/%zu", s_ns(route), s_name(route), rule_idx);
    const char *uid = jx_str(route, "metadata.uid", "");
    json_int_t gen = jx_int(route, "metadata.generation", 0);
    json_t *stt = json_object_get(g->wrr, key);
    json_t *cur = json_object_get(stt, "cur");
    if (!stt || strcmp(jx_str(stt, "uid", ""), uid) != 0 || jx_int(stt, "gen", -1) != gen ||
        json_array_size(cur) != n) {
        cur = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(cur, json_integer(0));
        stt = json_pack("{s:s,s:I,s:o}", "uid", uid, "gen", gen, "cur", cur);
        if (!stt || json_object_set_new(g->wrr, key, stt) < 0)
            return -1;
    }
    json_int_t total = 0;
    int best = -1;
    json_int_t best_v = 0;
    for (size_t i = 0; i < n; i++) {
        json_int_t w = jx_int(json_array_get(brs, i), "weight", 1);
        if (w <= 0)
            continue;
        total += w;
        json_int_t v = json_integer_value(json_array_get(cur, i)) + w;
        json_integer_set(json_array_get(cur, i), v);
        if (best < 0 || v > best_v) {
            best = (int)i;
            best_v = v;
        }
    }
    if (best >= 0)
        json_integer_set(json_array_get(cur, (size_t)best), best_v - total);
    return best;
}

int gateway_proxy(gateway_t *g, const char *ns, const char *name, const char *method,
                  const char *path_and_query, const char *body, size_t len, int64_t now_ms,
                  rayhead_response_t *out)
{
    if (!out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    buf_init(&out->body, RAYHEAD_RESPONSE_MAX);
    if (!g || !ns || !name || !method || !path_and_query)
        return ERR_INVAL;
    json_t *gw = s_get(g, g->rgws, ns, name);
    if (!gw) {
        char msg[OBJSTORE_MSG_MAX];
        snprintf(msg, sizeof(msg), "gateways.gateway.networking.k8s.io \"%s\" not found", name);
        return s_reply(out, 404, msg);
    }
    json_t *gc = s_get(g, g->rclasses, NULL, jx_str(gw, "spec.gatewayClassName", ""));
    if (!gc) {
        json_decref(gw);
        return s_reply(out, 503, "gateway is not programmed: its GatewayClass does not exist");
    }
    json_decref(gc);
    size_t plen = strcspn(path_and_query, "?");
    json_t *routes = s_list(g, g->rroutes, NULL);
    const json_t *best_route = NULL;
    size_t best_rule = 0;
    long best_rank = 0;
    size_t i, j, k, m;
    json_t *r, *pref, *rule, *match;
    json_array_foreach(routes, i, r)
    {
        bool attached = false;
        json_array_foreach(jx_get(r, "spec.parentRefs"), j, pref)
        {
            if (s_refers(r, pref, gw) && s_attach(g, gw, r, pref, NULL) > 0)
                attached = true;
        }
        if (!attached)
            continue;
        json_array_foreach(jx_get(r, "spec.rules"), k, rule)
        {
            json_array_foreach(json_object_get(rule, "matches"), m, match)
            {
                long rank = s_match_rank(match, path_and_query, plen, method);
                if (rank > best_rank ||
                    (rank && rank == best_rank && s_route_before(r, best_route))) {
                    best_rank = rank;
                    best_route = r;
                    best_rule = k;
                }
            }
        }
    }
    json_decref(gw);
    int rc;
    if (!best_route) {
        rc = s_reply(out, 404, "no matching route");
    } else {
        const json_t *brs = json_object_get(
            json_array_get(jx_get(best_route, "spec.rules"), best_rule), "backendRefs");
        int pick = s_pick(g, best_route, best_rule, brs);
        const json_t *br = pick >= 0 ? json_array_get(brs, (size_t)pick) : NULL;
        const char *reason;
        char msg[512];
        if (!br || s_backend_check(g, best_route, br, &reason, msg, sizeof(msg)) < 0) {
            rc = s_reply(out, 500, br ? msg : "no backend with a weight above 0");
        } else if (!g->ray) {
            rc = s_reply(out, 503, "no simulated workloads behind this gateway");
        } else {
            char port[16] = "";
            if (json_object_get(br, "port"))
                snprintf(port, sizeof(port), "%lld", (long long)jx_int(br, "port", 0));
            rayhead_response_free(out);
            rc = raysim_proxy(g->ray, s_ns(best_route), jx_str(br, "name", ""), port, method,
                              path_and_query, body, len, now_ms, out);
        }
    }
    json_decref(routes);
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test -------------------------------------------------------------------------- */

#include "schema.h"
#include "simtest.h"

typedef struct {
    objstore_t *s;
    simtest_clock_t clk;
    kubelet_t *k;
    controllers_t *c;
    raysim_t *r;
    gateway_t *g;
} t_env_t;

static void t_step(t_env_t *e, int64_t ms)
{
    simtest_step(e->k, e->c, &e->clk, ms);
}

/* The objstore resource of a Kind. */
static objstore_res_t *t_res(objstore_t *s, const char *kind)
{
    objstore_res_t *r = objstore_find_kind(s, "", kind);
    return r ? r : objstore_find_kind(s, GATEWAY_GROUP, kind);
}

/* Creates (or, with update, replaces the spec of) every document of `yaml`. Returns failures. */
static int t_apply(objstore_t *s, const char *yaml, bool update)
{
    json_t *docs = NULL;
    int bad = 0;
    if (yaml_load_buf(yaml, strlen(yaml), "t", &docs, NULL) < 0)
        return 1;
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        objstore_res_t *r = t_res(s, jx_str(d, "kind", ""));
        const char *ns = jx_str(d, "metadata.namespace", "default");
        if (!objstore_res_desc(r)->namespaced)
            ns = NULL;
        objstore_status_t st;
        json_t *o = json_incref(d);
        int rc;
        if (update) {
            objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
            rc =
                objstore_update(s, r, ns, jx_str(d, "metadata.name", ""), &o, &uo, NULL, NULL, &st);
        } else {
            rc = objstore_create(s, r, ns, &o, NULL, &st);
        }
        if (rc < 0) {
            printf("apply %s: %s\n", jx_str(d, "metadata.name", ""), st.message);
            bad++;
        }
    }
    json_decref(docs);
    return bad;
}

static json_t *t_get(t_env_t *e, const char *kind, const char *ns, const char *name)
{
    json_t *o = NULL;
    objstore_status_t st;
    objstore_get(e->s, t_res(e->s, kind), ns, name, &o, &st);
    return o;
}

/* "status/reason" of condition `type` in conds, e.g. "True/Accepted". */
static const char *t_cond(const json_t *conds, const char *type, char *buf, size_t n)
{
    const json_t *c = jx_array_find(conds, "type", type);
    snprintf(buf, n, "%s/%s", jx_str(c, "status", "-"), jx_str(c, "reason", "-"));
    return buf;
}

/* Sends `count` requests through default/rs-gateway at `path`; counts answers naming clusters
 * rc-a and rc-b and other statuses. */
static void t_traffic(t_env_t *e, const char *gw, const char *path, int count, int *a, int *b,
                      int *other, int *last_status)
{
    *a = *b = *other = 0;
    for (int i = 0; i < count; i++) {
        rayhead_response_t resp;
        int rc = gateway_proxy(e->g, "default", gw, "GET", path, NULL, 0, e->clk.now, &resp);
        const char *body = buf_str(&resp.body);
        *last_status = rc == 0 ? resp.status : -1;
        if (rc == 0 && resp.status == 200 && strstr(body, "on cluster 'rc-a'."))
            (*a)++;
        else if (rc == 0 && resp.status == 200 && strstr(body, "on cluster 'rc-b'."))
            (*b)++;
        else
            (*other)++;
        rayhead_response_free(&resp);
    }
}

static const char t_heads[] =
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: rc-a-head\n"
    "  labels: {ray.io/cluster: rc-a, ray.io/node-type: head}\n"
    "spec:\n  containers:\n  - name: ray-head\n    image: rayproject/ray\n"
    "    ports: [{name: dashboard, containerPort: 8265}, {name: serve, containerPort: 8000}]\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: rc-b-head\n"
    "  labels: {ray.io/cluster: rc-b, ray.io/node-type: head}\n"
    "spec:\n  containers:\n  - name: ray-head\n    image: rayproject/ray\n"
    "    ports: [{name: dashboard, containerPort: 8265}, {name: serve, containerPort: 8000}]\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: rc-a-serve-svc}\n"
    "spec:\n  selector: {ray.io/cluster: rc-a, ray.io/node-type: head}\n"
    "  ports: [{name: serve, port: 8000}]\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: rc-b-serve-svc}\n"
    "spec:\n  selector: {ray.io/cluster: rc-b, ray.io/node-type: head}\n"
    "  ports: [{name: serve, port: 8000}]\n";

static const char t_gw[] =
    "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: sim}\n"
    "spec: {controllerName: kubesim.io/gateway-controller}\n---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: rs-gateway}\n"
    "spec:\n  gatewayClassName: sim\n"
    "  listeners: [{name: http, protocol: HTTP, port: 80,\n"
    "               allowedRoutes: {namespaces: {from: Same}}}]\n---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: empty}\n"
    "spec:\n  gatewayClassName: sim\n  listeners: [{name: http, protocol: HTTP, port: 80}]\n---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: orphan}\n"
    "spec:\n  gatewayClassName: nope\n  listeners: [{name: http, protocol: HTTP, port: 80}]\n---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: rs-httproute}\n"
    "spec:\n  parentRefs: [{name: rs-gateway}]\n"
    "  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n"
    "    backendRefs: [{name: rc-a-serve-svc, port: 8000, weight: 30},\n"
    "                  {name: rc-b-serve-svc, port: 8000, weight: 70}]\n---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: broken}\n"
    "spec:\n  parentRefs: [{name: rs-gateway}]\n"
    "  rules:\n  - matches: [{path: {type: PathPrefix, value: /broken/}}]\n"
    "    backendRefs: [{name: missing-svc, port: 8000}]\n---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
    "metadata: {name: foreign, namespace: other}\n"
    "spec:\n  parentRefs: [{name: rs-gateway, namespace: default},\n"
    "               {name: rs-gateway, namespace: default, sectionName: https}]\n"
    "  rules: [{backendRefs: [{name: x, port: 1}]}]\n";

static int t_schemas(void)
{
    int failed = 0;
    json_t *crds = gateway_crds();
    CHECK(json_array_size(crds) == 3);
    const json_t *sgc = schema_for_version(json_array_get(crds, 0), "v1");
    const json_t *sgw = schema_for_version(json_array_get(crds, 1), "v1");
    const json_t *srt = schema_for_version(json_array_get(crds, 2), "v1");
    CHECK(sgc && sgw && srt);
    CHECK(strcmp(jx_str(json_array_get(crds, 0), "spec.scope", ""), "Cluster") == 0);
    CHECK(strcmp(jx_str(json_array_get(crds, 2), "metadata.name", ""),
                 "httproutes.gateway.networking.k8s.io") == 0);
    struct {
        const json_t *schema;
        const char *doc; /* JSON */
        const char *field; /* the expected cause's field, NULL = valid */
    } cases[] = {
        {sgc, "{\"spec\":{}}", "spec.controllerName"},
        {sgc, "{\"spec\":{\"controllerName\":\"no-path\"}}", "spec.controllerName"},
        {sgc, "{\"spec\":{\"controllerName\":\"istio.io/gateway-controller\"}}", NULL},
        {sgw, "{\"spec\":{\"listeners\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"HTTP\"}]}}",
         "spec.gatewayClassName"},
        {sgw, "{\"spec\":{\"gatewayClassName\":\"c\"}}", "spec.listeners"},
        {sgw, "{\"spec\":{\"gatewayClassName\":\"c\",\"listeners\":[]}}", "spec.listeners"},
        {sgw,
         "{\"spec\":{\"gatewayClassName\":\"c\",\"listeners\":[{\"name\":\"http\",\"port\":0,"
         "\"protocol\":\"HTTP\"}]}}",
         "spec.listeners[0].port"},
        {srt, "{\"spec\":{\"parentRefs\":[{\"sectionName\":\"http\"}]}}",
         "spec.parentRefs[0].name"},
        {srt, "{\"spec\":{\"rules\":[{\"backendRefs\":[{\"port\":8000}]}]}}",
         "spec.rules[0].backendRefs[0].name"},
        {srt, "{\"spec\":{\"rules\":[{\"backendRefs\":[{\"name\":\"s\",\"weight\":-1}]}]}}",
         "spec.rules[0].backendRefs[0].weight"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *o = json_loads(cases[i].doc, 0, NULL), *causes = json_array();
        int rc = schema_apply(cases[i].schema, o, NULL, causes);
        const char *f = jx_str(json_array_get(causes, 0), "field", "");
        if (cases[i].field ? !(rc == ERR_INVAL && strcmp(f, cases[i].field) == 0) : rc != 0) {
            printf("schema case %zu: rc %d, field %s\n", i, rc, f);
            failed++;
        }
        json_decref(o);
        json_decref(causes);
    }
    /* Defaults: listeners allow the same namespace; a route without rules gets one PathPrefix "/"
     * rule; a backendRef is a Service of weight 1; a parentRef names a Gateway. */
    json_t *o = json_loads("{\"spec\":{\"gatewayClassName\":\"c\",\"listeners\":[{\"name\":\"h\","
                           "\"port\":80,\"protocol\":\"HTTP\"}]}}",
                           0, NULL);
    CHECK(schema_apply(sgw, o, NULL, NULL) == 0);
    CHECK(strcmp(jx_str(json_array_get(jx_get(o, "spec.listeners"), 0),
                        "allowedRoutes.namespaces.from", ""),
                 "Same") == 0);
    json_decref(o);
    o = json_loads("{\"spec\":{\"parentRefs\":[{\"name\":\"g\"}]}}", 0, NULL);
    CHECK(schema_apply(srt, o, NULL, NULL) == 0);
    const json_t *m0 =
        json_array_get(jx_get(json_array_get(jx_get(o, "spec.rules"), 0), "matches"), 0);
    CHECK(strcmp(jx_str(m0, "path.type", ""), "PathPrefix") == 0 &&
          strcmp(jx_str(m0, "path.value", ""), "/") == 0);
    CHECK(strcmp(jx_str(json_array_get(jx_get(o, "spec.parentRefs"), 0), "kind", ""), "Gateway") ==
          0);
    json_decref(o);
    o = json_loads("{\"spec\":{\"rules\":[{\"backendRefs\":[{\"name\":\"s\"}]}]}}", 0, NULL);
    CHECK(schema_apply(srt, o, NULL, NULL) == 0);
    const json_t *b0 =
        json_array_get(jx_get(json_array_get(jx_get(o, "spec.rules"), 0), "backendRefs"), 0);
    CHECK(jx_int(b0, "weight", 0) == 1 && strcmp(jx_str(b0, "kind", ""), "Service") == 0);
    json_decref(o);
    json_decref(crds);
    return failed;
}

int gateway_test(bool verbose)
{
    int failed = t_schemas();
    t_env_t e = {.clk = {.now = SIMTEST_T0}};
    e.s = objstore_new(0);
    CHECK(e.s && simtest_core(e.s, &e.clk, NULL, 0) == 0);
    objstore_status_t st;
    kubelet_opts_t ko;
    kubelet_opts_default(&ko);
    ko.nodes = 2;
    ko.jitter_ms = 0;
    ko.create_ms = 100;
    ko.ready_ms = 100;
    e.k = kubelet_new(NULL, e.s, &ko);
    e.c = controllers_new(NULL, e.s);
    rayhead_options_t ho;
    rayhead_options_default(&ho);
    ho.serve_build_ms = 100;
    ho.serve_update_ms = 100;
    e.r = raysim_new(NULL, e.s, &ho);
    /* The controller starts before the Gateway API is installed: gateway_rebind() finds it. */
    e.g = gateway_new(NULL, e.s, e.r);
    CHECK(e.k && e.c && e.r && e.g);
    CHECK(gateway_tick(e.g) == 0);
    const char *kinds[][2] = {
        {"gatewayclasses", "GatewayClass"}, {"gateways", "Gateway"}, {"httproutes", "HTTPRoute"}};
    for (size_t i = 0; i < 3; i++) {
        objstore_resdesc_t gd = {.group = GATEWAY_GROUP,
                                 .version = "v1",
                                 .resource = kinds[i][0],
                                 .kind = kinds[i][1],
                                 .namespaced = i > 0,
                                 .has_status = true,
                                 .is_custom = true};
        CHECK(objstore_register(e.s, &gd) != NULL);
    }
    gateway_rebind(e.g);

    /* Two RayCluster heads, each with a Serve app, behind their serve Services. */
    CHECK(t_apply(e.s, t_heads, false) == 0);
    t_step(&e, 300);
    CHECK(raysim_head_count(e.r) == 2);
    const char *serve = "{\"applications\":[{\"name\":\"app1\",\"route_prefix\":\"/\","
                        "\"import_path\":\"fruit.deployment_graph\"}]}";
    const char *heads[] = {"rc-a-head", "rc-b-head"};
    for (int i = 0; i < 2; i++) {
        rayhead_response_t resp;
        CHECK(raysim_proxy_pod(e.r, "default", heads[i], "8265", "PUT", "/api/serve/applications/",
                               serve, strlen(serve), e.clk.now, &resp) == 0 &&
              resp.status == 200);
        rayhead_response_free(&resp);
    }
    t_step(&e, 500);
    {
        /* The Serve answer names the cluster, through the API server's Service proxy path. */
        rayhead_response_t resp;
        CHECK(raysim_proxy(e.r, "default", "rc-a-serve-svc", "serve", "GET", "/", NULL, 0,
                           e.clk.now, &resp) == 0);
        CHECK(resp.status == 200 &&
              strcmp(buf_str(&resp.body),
                     "Hello from simulated Serve application 'app1' on cluster 'rc-a'.") == 0);
        rayhead_response_free(&resp);
    }

    /* The Gateway API objects; the controller writes their status. */
    CHECK(t_apply(e.s, t_gw, false) == 0);
    CHECK(gateway_tick(e.g) > 0);
    CHECK(gateway_tick(e.g) == 0); /* converged: nothing rewritten */
    char b1[64], b2[64];
    json_t *gc = t_get(&e, "GatewayClass", NULL, "sim");
    CHECK(strcmp(t_cond(jx_get(gc, "status.conditions"), "Accepted", b1, sizeof(b1)),
                 "True/Accepted") == 0);
    json_t *gw = t_get(&e, "Gateway", "default", "rs-gateway");
    const json_t *gconds = jx_get(gw, "status.conditions");
    CHECK(strcmp(t_cond(gconds, "Accepted", b1, sizeof(b1)), "True/Accepted") == 0);
    CHECK(strcmp(t_cond(gconds, "Programmed", b2, sizeof(b2)), "True/Programmed") == 0);
    CHECK(jx_int(jx_array_find(gconds, "type", "Programmed"), "observedGeneration", 0) == 1);
    const json_t *l0 = json_array_get(jx_get(gw, "status.listeners"), 0);
    CHECK(strcmp(jx_str(l0, "name", ""), "http") == 0 && jx_int(l0, "attachedRoutes", -1) == 2);
    CHECK(strncmp(jx_str(json_array_get(jx_get(gw, "status.addresses"), 0), "value", ""), "10.96.",
                  6) == 0);
    json_t *orphan = t_get(&e, "Gateway", "default", "orphan");
    CHECK(strcmp(t_cond(jx_get(orphan, "status.conditions"), "Accepted", b1, sizeof(b1)),
                 "Unknown/Pending") == 0);
    json_t *rt = t_get(&e, "HTTPRoute", "default", "rs-httproute");
    const json_t *p0 = json_array_get(jx_get(rt, "status.parents"), 0);
    CHECK(json_array_size(jx_get(rt, "status.parents")) == 1);
    CHECK(strcmp(jx_str(p0, "controllerName", ""), "kubesim.io/gateway-controller") == 0);
    CHECK(strcmp(jx_str(p0, "parentRef.name", ""), "rs-gateway") == 0);
    CHECK(strcmp(t_cond(jx_get(p0, "conditions"), "Accepted", b1, sizeof(b1)), "True/Accepted") ==
          0);
    CHECK(strcmp(t_cond(jx_get(p0, "conditions"), "ResolvedRefs", b2, sizeof(b2)),
                 "True/ResolvedRefs") == 0);
    json_t *br = t_get(&e, "HTTPRoute", "default", "broken");
    const json_t *bp = json_array_get(jx_get(br, "status.parents"), 0);
    CHECK(strcmp(t_cond(jx_get(bp, "conditions"), "Accepted", b1, sizeof(b1)), "True/Accepted") ==
          0);
    CHECK(strcmp(t_cond(jx_get(bp, "conditions"), "ResolvedRefs", b2, sizeof(b2)),
                 "False/BackendNotFound") == 0);
    CHECK(strstr(jx_str(jx_array_find(jx_get(bp, "conditions"), "type", "ResolvedRefs"), "message",
                        ""),
                 "default/missing-svc") != NULL);
    json_t *fr = t_get(&e, "HTTPRoute", "other", "foreign");
    const json_t *fps = jx_get(fr, "status.parents");
    CHECK(json_array_size(fps) == 2);
    CHECK(strcmp(t_cond(jx_get(json_array_get(fps, 0), "conditions"), "Accepted", b1, sizeof(b1)),
                 "False/NotAllowedByListeners") == 0);
    CHECK(strcmp(t_cond(jx_get(json_array_get(fps, 1), "conditions"), "Accepted", b2, sizeof(b2)),
                 "False/NoMatchingParent") == 0);
    json_decref(gc);
    json_decref(gw);
    json_decref(orphan);
    json_decref(rt);
    json_decref(br);
    json_decref(fr);

    /* Traffic: exactly 30/70 of 100, then of every further 10. */
    int a, b, other, status;
    t_traffic(&e, "rs-gateway", "/", 100, &a, &b, &other, &status);
    CHECK(a == 30 && b == 70 && other == 0);
    t_traffic(&e, "rs-gateway", "/fruit?x=1", 10, &a, &b, &other, &status);
    CHECK(a == 3 && b == 7 && other == 0);
    /* /broken/... matches the longer prefix of the broken route: 500 (no such Service). */
    t_traffic(&e, "rs-gateway", "/broken/x", 1, &a, &b, &other, &status);
    CHECK(other == 1 && status == 500);
    /* /brokenx is not under the /broken/ prefix. */
    t_traffic(&e, "rs-gateway", "/brokenx", 1, &a, &b, &other, &status);
    CHECK(a + b == 1);
    t_traffic(&e, "empty", "/", 1, &a, &b, &other, &status);
    CHECK(status == 404);
    t_traffic(&e, "nosuch", "/", 1, &a, &b, &other, &status);
    CHECK(status == 404);
    t_traffic(&e, "orphan", "/", 1, &a, &b, &other, &status);
    CHECK(status == 503);

    /* Weight 0 is never chosen; all 0 is 500. */
    const char *w0 = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: "
                     "rs-httproute}\n"
                     "spec:\n  parentRefs: [{name: rs-gateway}]\n"
                     "  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n"
                     "    backendRefs: [{name: rc-a-serve-svc, port: 8000, weight: 0},\n"
                     "                  {name: rc-b-serve-svc, port: 8000, weight: 100}]\n";
    CHECK(t_apply(e.s, w0, true) == 0);
    t_traffic(&e, "rs-gateway", "/", 100, &a, &b, &other, &status);
    CHECK(a == 0 && b == 100 && other == 0);
    const char *w00 = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: "
                      "rs-httproute}\n"
                      "spec:\n  parentRefs: [{name: rs-gateway}]\n"
                      "  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n"
                      "    backendRefs: [{name: rc-a-serve-svc, port: 8000, weight: 0},\n"
                      "                  {name: rc-b-serve-svc, port: 8000, weight: 0}]\n";
    CHECK(t_apply(e.s, w00, true) == 0);
    t_traffic(&e, "rs-gateway", "/", 5, &a, &b, &other, &status);
    CHECK(other == 5 && status == 500);

    /* A backend Service deleted: ResolvedRefs False/BackendNotFound, its share answers 500. */
    CHECK(t_apply(e.s, w0, true) == 0);
    CHECK(objstore_delete(e.s, objstore_find(e.s, "", "services"), "default", "rc-b-serve-svc",
                          NULL, NULL, NULL, &st) == 0);
    CHECK(gateway_tick(e.g) > 0);
    rt = t_get(&e, "HTTPRoute", "default", "rs-httproute");
    p0 = json_array_get(jx_get(rt, "status.parents"), 0);
    CHECK(strcmp(t_cond(jx_get(p0, "conditions"), "ResolvedRefs", b2, sizeof(b2)),
                 "False/BackendNotFound") == 0);
    CHECK(jx_int(jx_array_find(jx_get(p0, "conditions"), "type", "ResolvedRefs"),
                 "observedGeneration", 0) == 4);
    json_decref(rt);
    t_traffic(&e, "rs-gateway", "/", 3, &a, &b, &other, &status);
    CHECK(other == 3 && status == 500);
    CHECK(gateway_proxy(NULL, "default", "x", "GET", "/", NULL, 0, 0, NULL) == ERR_INVAL);

    /* A deleted route's round-robin state is dropped; the Gateway counts one route less. */
    CHECK(json_object_get(e.g->wrr, "default/broken/0") != NULL);
    CHECK(objstore_delete(e.s, t_res(e.s, "HTTPRoute"), "default", "broken", NULL, NULL, NULL,
                          &st) == 0);
    CHECK(gateway_tick(e.g) > 0);
    CHECK(json_object_get(e.g->wrr, "default/broken/0") == NULL);
    CHECK(json_object_get(e.g->wrr, "default/rs-httproute/0") != NULL);
    gw = t_get(&e, "Gateway", "default", "rs-gateway");
    CHECK(jx_int(json_array_get(jx_get(gw, "status.listeners"), 0), "attachedRoutes", -1) == 1);
    json_decref(gw);

    gateway_destroy(&e.g);
    CHECK(e.g == NULL);
    gateway_destroy(&e.g);
    raysim_destroy(&e.r);
    controllers_destroy(&e.c);
    kubelet_destroy(&e.k);
    objstore_destroy(&e.s);
    return SELFTEST_RESULT("gateway", verbose);
}

#endif /* RF_SELFTEST */
