/*
 * gateway: the Gateway API add-on of kubesim: the gateway.networking.k8s.io/v1 CRDs it installs
 * at boot, a simulated gateway controller that writes their status, and the data plane that
 * routes a request through a Gateway to a backend Service by the HTTPRoute's weights.
 *
 * - CRDs (gateway_crds()): GatewayClass (cluster-scoped, short name gc), Gateway (gtw) and
 *   HTTPRoute, v1 served and stored, category gateway-api, status subresource, printer columns.
 *   The structural schemas are kubesim's own, minimal but enforcing what matters: GatewayClass
 *   spec.controllerName (domain/path); Gateway spec.gatewayClassName and spec.listeners (1-64,
 *   each name, port 1-65535, protocol; allowedRoutes.namespaces.from defaults to Same);
 *   HTTPRoute parentRefs[].name (group/kind default to the Gateway's), backendRefs[].name
 *   (kind defaults to Service, weight to 1, 0-1000000), rules and matches default to one
 *   PathPrefix "/" match as upstream's do. Status is kept as written.
 * - Controller (over objstore, like sim/controllers.h; the writes happen in gateway_tick(), run
 *   by a 0 ms loop timer armed by any change of a GatewayClass, Gateway, HTTPRoute or, when
 *   routes exist, Service):
 *   - every GatewayClass: Accepted=True reason Accepted;
 *   - a Gateway whose class exists: Accepted=True (Accepted) and Programmed=True (Programmed),
 *     observedGeneration, one status.listeners entry per listener (supportedKinds HTTPRoute,
 *     attachedRoutes, Accepted/Programmed/ResolvedRefs True, Conflicted False NoConflicts) and
 *     an address (IPAddress 10.96.128.x, stable per Gateway); a Gateway whose class does not
 *     exist stays as upstream's CRD defaults it: Accepted and Programmed Unknown, reason
 *     Pending, "Waiting for controller" (no controller owns it); one whose class goes away
 *     keeps its last status, as no controller writes it any more;
 *   - an HTTPRoute: one status.parents entry per parentRef naming a Gateway that exists and has
 *     a class (controllerName = the class's spec.controllerName): Accepted=True (Accepted), or
 *     False NotAllowedByListeners (allowedRoutes Same/All/Selector-by-matchLabels; or
 *     sectionName/port naming no listener: NoMatchingParent); ResolvedRefs=True (ResolvedRefs),
 *     or False with BackendNotFound (a Service that does not exist), InvalidKind (not a core
 *     Service) or RefNotPermitted (another namespace: kubesim has no ReferenceGrant). A
 *     parentRef to a missing Gateway gets no entry (no controller sees it).
 *   A condition keeps its lastTransitionTime while its status does not change; an unchanged
 *   status is not written.
 * - Data plane (gateway_proxy(), behind GET|POST|PUT|DELETE
 *   /kubesim/gateways/{ns}/{gateway}/proxy/{path}): among the HTTPRoutes Accepted by the Gateway,
 *   the match for the path is chosen as Gateway API orders them (Exact before PathPrefix, longer
 *   prefix first, then the older route, then namespace/name; a match with headers or
 *   queryParams is not supported and never matches; method is honoured); the rule's backendRef
 *   is picked by smooth weighted round-robin kept per rule (reset when the route changes), so N
 *   requests at weights 30/70 give exactly 30%/70% of every 100, a weight of 0 is never chosen.
 *   Then, as Envoy-based gateways answer: no match 404 "no matching route"; every weight 0 or
 *   the chosen backend unresolved (missing Service, other kind or namespace) 500; otherwise the
 *   request goes through raysim_proxy() to the Service's backendRef port, as the API server's
 *   service proxy sends it (the Ray head behind it answers). Hostnames are not matched; filters,
 *   timeouts and session persistence are ignored.
 * Single-threaded, on kubesim's loop, like every sim/ module.
 */
#ifndef RF_GATEWAY_H
#define RF_GATEWAY_H

#include "loop.h"
#include "objstore.h"
#include "rayhead.h"
#include "raysim.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GATEWAY_GROUP "gateway.networking.k8s.io"
#define GATEWAY_MAX_BACKENDS 64 /* backendRefs of one rule considered by the data plane */

typedef struct gateway gateway_t;

/* The three CustomResourceDefinitions (GatewayClass, Gateway, HTTPRoute) as a new JSON array of
 * CRD objects, or NULL when out of memory. */
json_t *gateway_crds(void);

/* Starts the controller on `store` and `loop` (NULL = the caller drives gateway_tick()). The
 * Gateway API resources are looked up now and again at each gateway_rebind(); services are
 * used when registered. `ray` (may be NULL: every proxied request then gets 503) answers the
 * backends. Returns NULL when out of memory. */
gateway_t *gateway_new(loop_t *loop, objstore_t *store, raysim_t *ray);

/* Stops the watches and the timer and frees everything (objects stay). NULL-safe; NULLs *gp. */
void gateway_destroy(gateway_t **gp);

/* Call after a CustomResourceDefinition was written or deleted: drops the watches on the
 * Gateway API resources and starts them again on whatever is registered now (a deleted CRD's
 * resource is no longer touched). */
void gateway_rebind(gateway_t *g);

/* Writes the status of every GatewayClass, Gateway and HTTPRoute that needs it. Returns the
 * number of store writes (>= 0). */
int gateway_tick(gateway_t *g);

/* Routes one request through Gateway ns/name (see the header comment). Fills *out (initialised
 * here; free with rayhead_response_free() after any return). Returns 0 whatever the HTTP status,
 * ERR_INVAL for NULL arguments, ERR_NOMEM / ERR_TOOBIG when the answer could not be built. */
int gateway_proxy(gateway_t *g, const char *ns, const char *name, const char *method,
                  const char *path_and_query, const char *body, size_t len, int64_t now_ms,
                  rayhead_response_t *out);

/* Self-test. */
int gateway_test(bool verbose);

#endif
