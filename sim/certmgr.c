/*
 * certmgr: the simulated cert-manager. See certmgr.h.
 */
#include "certmgr.h"

#include "buf.h"
#include "err.h"
#include "json.h"
#include "kubeconfig.h"
#include "log.h"
#include "rftime.h"
#include "tls.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PEM_MAX (1 << 20) /* bytes of one PEM */

struct certmgr {
    loop_t *loop; /* NULL: the caller ticks */
    objstore_t *store; /* the objects */
    int64_t timer; /* periodic timer id (0 = none) */
    uint64_t last_rv; /* store resourceVersion of the last pass that wrote nothing */
    int64_t next_due_ms; /* earliest renewalTime seen (0 = none) */
};

/* The Secret data value `key` of `secret`, base64-decoded into out (NUL-terminated). */
static bool s_secret_data(const json_t *secret, const char *key, buf_t *out)
{
    json_t *v = jx_getv(secret, "data", key, NULL);
    const char *b64 = json_is_string(v) ? json_string_value(v) : NULL;
    if (!b64 || !*b64)
        return false;
    unsigned char *raw = NULL;
    size_t n = 0;
    if (kubeconfig_base64_decode(b64, &raw, &n) < 0)
        return false;
    bool ok = n > 0 && buf_append(out, raw, n) == 0;
    free(raw);
    return ok;
}

/* The string value of v, or "". */
static const char *s_sval(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "";
}

static json_t *s_get(certmgr_t *c, objstore_res_t *r, const char *ns, const char *name)
{
    json_t *out = NULL;
    objstore_status_t st;
    if (!r || objstore_get(c->store, r, ns, name, &out, &st) < 0)
        return NULL;
    return out;
}

/* A Ready condition; keeps lastTransitionTime of `old` when the status did not change. */
static json_t *s_cond(const char *type, bool status, const char *reason, const char *message,
                      json_int_t gen, const json_t *old_conds, const char *now)
{
    const char *ltt = now;
    json_t *old = jx_array_find(old_conds, "type", type);
    if (old && strcmp(jx_str(old, "status", ""), status ? "True" : "False") == 0)
        ltt = jx_str(old, "lastTransitionTime", now);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "type", type, "status",
                     status ? "True" : "False", "lastTransitionTime", ltt, "reason", reason,
                     "message", message, "observedGeneration", gen);
}

/* Writes `status` as obj's status unless equal. Returns 1 when written, 0, or < 0. */
static int s_put_status(certmgr_t *c, objstore_res_t *r, const json_t *obj, json_t *status)
{
    objstore_status_t st;
    int rc = objstore_put_status(c->store, r, obj, status, &st);
    if (rc < 0)
        log_warn("certmgr: status update failed", "name", jx_str(obj, "metadata.name", ""), "error",
                 st.message, NULL);
    return rc;
}

/* Whether the issuer `iss` is ready to sign; for a CA issuer the CA secret into *ca_secret. */
static bool s_issuer_ready(const json_t *iss)
{
    json_t *rc = jx_array_find(jx_get(iss, "status.conditions"), "type", "Ready");
    return rc && strcmp(jx_str(rc, "status", ""), "True") == 0;
}

static int s_sync_issuer(certmgr_t *c, objstore_res_t *r, objstore_res_t *rsec, const json_t *iss,
                         const char *now)
{
    bool cluster = !objstore_res_desc(r)->namespaced;
    const char *ns = cluster ? CERTMGR_CLUSTER_NS : jx_str(iss, "metadata.namespace", "");
    json_int_t gen = jx_int(iss, "metadata.generation", 1);
    const json_t *conds = jx_get(iss, "status.conditions");
    json_t *cond;
    if (jx_get(iss, "spec.selfSigned")) {
        cond = s_cond("Ready", true, "IsReady", "", gen, conds, now);
    } else if (jx_get(iss, "spec.ca")) {
        const char *sn = jx_str(iss, "spec.ca.secretName", "");
        json_t *sec = s_get(c, rsec, ns, sn);
        buf_t a, b;
        buf_init(&a, S_PEM_MAX);
        buf_init(&b, S_PEM_MAX);
        bool ok = sec && s_secret_data(sec, "tls.crt", &a) && s_secret_data(sec, "tls.key", &b);
        json_decref(sec);
        buf_free(&a);
        buf_free(&b);
        char msg[512];
        snprintf(msg, sizeof(msg), "Error getting keypair for CA issuer: secrets \"%s\" not found",
                 sn);
        cond = ok ? s_cond("Ready", true, "KeyPairVerified", "Signing CA verified", gen, conds, now)
                  : s_cond("Ready", false, "ErrGetKeyPair", msg, gen, conds, now);
    } else {
        cond = s_cond("Ready", false, "ErrConfigUnsupported",
                      "the simulated cert-manager supports only selfSigned and ca issuers", gen,
                      conds, now);
    }
    json_t *status = json_pack("{s:[o]}", "conditions", cond);
    return status ? s_put_status(c, r, iss, status) : ERR_NOMEM;
}

/* Strings of the array at `path` of obj into v[] (at most max); returns the count. */
static size_t s_strs(const json_t *obj, const char *path, const char **v, size_t max)
{
    size_t n = 0, i;
    json_t *e;
    json_array_foreach(jx_get(obj, path), i, e)
    {
        if (json_is_string(e) && n < max)
            v[n++] = json_string_value(e);
    }
    return n;
}

static void s_join(const char **v, size_t n, buf_t *out)
{
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "%s%s", i ? "," : "", v[i]);
}

static int64_t s_dur(const json_t *cert, const char *path, int64_t def_s)
{
    const char *s = jx_str(cert, path, NULL);
    int64_t ns;
    if (!s || rftime_go_duration_parse(s, &ns) < 0 || ns <= 0)
        return def_s;
    return ns / RFTIME_NS_PER_S;
}

/* Issues `cert` signed through `iss`; writes the Secret. *why gets the reason on failure. */
static int s_issue(certmgr_t *c, objstore_res_t *rsec, const json_t *cert, const json_t *iss,
                   const char *iss_kind, int64_t now_s, int64_t *not_after, int64_t *renew_at,
                   buf_t *why)
{
    const char *ns = jx_str(cert, "metadata.namespace", "");
    const char *name = jx_str(cert, "metadata.name", "");
    const char *dns[TLS_ISSUE_NAMES_MAX], *ips[TLS_ISSUE_NAMES_MAX];
    tls_issue_req_t rq = {0};
    rq.common_name = jx_str(cert, "spec.commonName", NULL);
    rq.is_ca = jx_bool(cert, "spec.isCA", false);
    rq.ndns = s_strs(cert, "spec.dnsNames", dns, TLS_ISSUE_NAMES_MAX);
    rq.nips = s_strs(cert, "spec.ipAddresses", ips, TLS_ISSUE_NAMES_MAX);
    rq.dns = dns;
    rq.ips = ips;
    int64_t dur = s_dur(cert, "spec.duration", CERTMGR_DEFAULT_DURATION_S);
    int64_t before = s_dur(cert, "spec.renewBefore", dur / 3);
    if (before >= dur)
        before = dur / 3;
    rq.not_before = now_s;
    rq.not_after = now_s + dur;
    const char *alg = jx_str(cert, "spec.privateKey.algorithm", "RSA");
    rq.alg = strcmp(alg, "ECDSA") == 0 ? TLS_KEY_ECDSA : TLS_KEY_RSA;
    rq.key_size = (int)jx_int(cert, "spec.privateKey.size", 0);
    buf_t ca_crt, ca_key, crt, key;
    buf_init(&ca_crt, S_PEM_MAX);
    buf_init(&ca_key, S_PEM_MAX);
    buf_init(&crt, S_PEM_MAX);
    buf_init(&key, S_PEM_MAX);
    int rc = 0;
    if (jx_get(iss, "spec.ca")) {
        bool cluster = strcmp(iss_kind, "ClusterIssuer") == 0;
        json_t *sec = s_get(c, rsec, cluster ? CERTMGR_CLUSTER_NS : ns,
                            jx_str(iss, "spec.ca.secretName", ""));
        if (!sec || !s_secret_data(sec, "tls.crt", &ca_crt) ||
            !s_secret_data(sec, "tls.key", &ca_key)) {
            buf_puts(why, "the CA issuer's secret has no key pair");
            rc = ERR_NOTFOUND;
        }
        json_decref(sec);
        rq.signer_cert = buf_str(&ca_crt);
        rq.signer_key = buf_str(&ca_key);
    }
    if (rc == 0)
        rc = tls_issue(&rq, &crt, &key, why);
    json_t *secret = NULL;
    if (rc == 0) {
        buf_t b64c, b64k, b64a, alt, ipl;
        buf_init(&b64c, 4 * S_PEM_MAX);
        buf_init(&b64k, 4 * S_PEM_MAX);
        buf_init(&b64a, 4 * S_PEM_MAX);
        buf_init(&alt, 64 * 1024);
        buf_init(&ipl, 64 * 1024);
        const buf_t *ca = rq.signer_cert ? &ca_crt : &crt;
        tls_base64(buf_str(&crt), strlen(buf_str(&crt)), &b64c);
        tls_base64(buf_str(&key), strlen(buf_str(&key)), &b64k);
        tls_base64(buf_str(ca), strlen(buf_str(ca)), &b64a);
        s_join(dns, rq.ndns, &alt);
        s_join(ips, rq.nips, &ipl);
        json_t *labels = json_deep_copy(jx_get(cert, "spec.secretTemplate.labels"));
        json_t *ann = json_deep_copy(jx_get(cert, "spec.secretTemplate.annotations"));
        labels = json_is_object(labels) ? labels : json_object();
        ann = json_is_object(ann) ? ann : json_object();
        json_object_set_new(labels, "controller.cert-manager.io/fao", json_string("true"));
        json_object_set_new(ann, "cert-manager.io/certificate-name", json_string(name));
        json_object_set_new(ann, "cert-manager.io/issuer-name",
                            json_string(jx_str(iss, "metadata.name", "")));
        json_object_set_new(ann, "cert-manager.io/issuer-kind", json_string(iss_kind));
        json_object_set_new(ann, "cert-manager.io/issuer-group", json_string(CERTMGR_GROUP));
        json_object_set_new(ann, "cert-manager.io/common-name",
                            json_string(rq.common_name ? rq.common_name : ""));
        json_object_set_new(ann, "cert-manager.io/alt-names", json_string(buf_str(&alt)));
        json_object_set_new(ann, "cert-manager.io/ip-sans", json_string(buf_str(&ipl)));
        json_object_set_new(ann, "cert-manager.io/uri-sans", json_string(""));
        secret = json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:o}, s:s, s:{s:s, s:s, s:s}}",
                           "apiVersion", "v1", "kind", "Secret", "metadata", "name",
                           jx_str(cert, "spec.secretName", ""), "namespace", ns, "labels", labels,
                           "annotations", ann, "type", "kubernetes.io/tls", "data", "ca.crt",
                           buf_str(&b64a), "tls.crt", buf_str(&b64c), "tls.key", buf_str(&b64k));
        buf_free(&b64c);
        buf_free(&b64k);
        buf_free(&b64a);
        buf_free(&alt);
        buf_free(&ipl);
        rc = secret ? 0 : ERR_NOMEM;
    }
    if (rc == 0) {
        const char *sn = jx_str(secret, "metadata.name", "");
        json_t *old = s_get(c, rsec, ns, sn);
        objstore_status_t st;
        if (old) {
            /* Keep the Secret's other metadata (uid, rv, user labels) and replace the rest. */
            json_t *upd = json_deep_copy(old);
            json_t *md = jx_child_obj(upd, "metadata");
            json_t *l = jx_child_obj(md, "labels"), *a = jx_child_obj(md, "annotations");
            json_object_update(l, jx_get(secret, "metadata.labels"));
            json_object_update(a, jx_get(secret, "metadata.annotations"));
            json_object_set(upd, "type", jx_get(secret, "type"));
            json_object_set(upd, "data", jx_get(secret, "data"));
            objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
            rc = objstore_update(c->store, rsec, ns, sn, &upd, &uo, NULL, NULL, &st);
            json_decref(secret);
        } else {
            rc = objstore_create(c->store, rsec, ns, &secret, NULL, &st);
        }
        json_decref(old);
        if (rc < 0)
            buf_puts(why, st.message);
    }
    *not_after = rq.not_after;
    *renew_at = rq.not_after - before;
    buf_free(&ca_crt);
    buf_free(&ca_key);
    buf_free(&crt);
    buf_free(&key);
    return rc;
}

static int s_sync_cert(certmgr_t *c, objstore_res_t *rcert, objstore_res_t *riss,
                       objstore_res_t *rciss, objstore_res_t *rsec, const json_t *cert,
                       const char *now)
{
    const char *ns = jx_str(cert, "metadata.namespace", "");
    json_int_t gen = jx_int(cert, "metadata.generation", 1);
    const json_t *conds = jx_get(cert, "status.conditions");
    const char *kind = jx_str(cert, "spec.issuerRef.kind", "Issuer");
    const char *iname = jx_str(cert, "spec.issuerRef.name", "");
    bool cluster = strcmp(kind, "ClusterIssuer") == 0;
    json_t *iss = s_get(c, cluster ? rciss : riss, cluster ? NULL : ns, iname);
    json_t *sec = s_get(c, rsec, ns, jx_str(cert, "spec.secretName", ""));
    int64_t now_ms = objstore_now_ms(c->store);
    /* Up to date? */
    json_t *ready = jx_array_find(conds, "type", "Ready");
    int64_t renew_ms = 0;
    rftime_parse(jx_str(cert, "status.renewalTime", ""), &renew_ms);
    buf_t tmp;
    buf_init(&tmp, S_PEM_MAX);
    bool have = sec && s_secret_data(sec, "tls.crt", &tmp) && s_secret_data(sec, "tls.key", &tmp);
    buf_free(&tmp);
    json_t *sann = jx_get(sec, "metadata.annotations");
    bool fresh = have && ready && strcmp(jx_str(ready, "status", ""), "True") == 0 &&
                 jx_int(ready, "observedGeneration", -1) == gen && renew_ms > now_ms &&
                 strcmp(s_sval(jx_getv(sann, "cert-manager.io/issuer-name", NULL)), iname) == 0 &&
                 strcmp(s_sval(jx_getv(sann, "cert-manager.io/certificate-name", NULL)),
                        jx_str(cert, "metadata.name", "")) == 0;
    json_decref(sec);
    int rc = 0;
    if (fresh) {
        if (!c->next_due_ms || renew_ms < c->next_due_ms)
            c->next_due_ms = renew_ms;
        json_decref(iss);
        return 0;
    }
    json_t *status = json_deep_copy(jx_get(cert, "status"));
    status = json_is_object(status) ? status : json_object();
    json_t *nconds = json_array();
    bool iss_ready = iss && s_issuer_ready(iss);
    if (!iss_ready) {
        const char *msg = have ? "Issuing certificate as Certificate does not match the spec"
                               : "Issuing certificate as Secret does not exist";
        const char *reason = have ? "Incomplete" : "DoesNotExist";
        json_array_append_new(nconds, s_cond("Ready", false, reason, msg, gen, conds, now));
        json_array_append_new(nconds, s_cond("Issuing", true, reason, msg, gen, conds, now));
    } else {
        buf_t why;
        buf_init(&why, 1024);
        int64_t not_after = 0, renew_at = 0;
        int64_t now_s = now_ms / 1000;
        rc = s_issue(c, rsec, cert, iss, cluster ? "ClusterIssuer" : "Issuer", now_s, &not_after,
                     &renew_at, &why);
        if (rc == 0) {
            char nb[RFTIME_BUF], na[RFTIME_BUF], rt[RFTIME_BUF];
            rftime_format(now_s * 1000, RFTIME_SEC, nb, sizeof(nb));
            rftime_format(not_after * 1000, RFTIME_SEC, na, sizeof(na));
            rftime_format(renew_at * 1000, RFTIME_SEC, rt, sizeof(rt));
            json_array_append_new(
                nconds, s_cond("Ready", true, "Ready", CERTMGR_READY_MESSAGE, gen, conds, now));
            json_object_set_new(status, "notBefore", json_string(nb));
            json_object_set_new(status, "notAfter", json_string(na));
            json_object_set_new(status, "renewalTime", json_string(rt));
            json_object_set_new(status, "revision",
                                json_integer(jx_int(status, "revision", 0) + 1));
            if (!c->next_due_ms || renew_at * 1000 < c->next_due_ms)
                c->next_due_ms = renew_at * 1000;
        } else {
            log_warn("certmgr: cannot issue", "certificate", jx_str(cert, "metadata.name", ""),
                     "error", buf_str(&why), NULL);
            json_array_append_new(nconds,
                                  s_cond("Ready", false, "Failed", buf_str(&why), gen, conds, now));
            json_array_append_new(
                nconds, s_cond("Issuing", false, "Failed", buf_str(&why), gen, conds, now));
            json_object_set_new(status, "lastFailureTime", json_string(now));
            rc = 0;
        }
        buf_free(&why);
    }
    json_decref(iss);
    json_object_set_new(status, "conditions", nconds);
    int w = s_put_status(c, rcert, cert, status);
    return w < 0 ? w : w + (rc == 0 && iss_ready ? 1 : 0);
}

static int s_sync_all(certmgr_t *c, objstore_res_t *r,
                      int (*fn)(certmgr_t *, const json_t *, void *), void *arg)
{
    if (!r)
        return 0;
    objstore_list_t l = {0};
    objstore_status_t st;
    if (objstore_list(c->store, r, NULL, &l, &st) < 0)
        return 0;
    int writes = 0;
    size_t i;
    json_t *o;
    json_array_foreach(l.items, i, o)
    {
        int w = fn(c, o, arg);
        writes += w > 0 ? w : 0;
    }
    objstore_list_free(&l);
    return writes;
}

typedef struct {
    objstore_res_t *rcert, *riss, *rciss, *rsec, *rcur;
    char now[RFTIME_BUF];
} s_pass_t;

static int s_on_issuer(certmgr_t *c, const json_t *o, void *arg)
{
    s_pass_t *p = arg;
    return s_sync_issuer(c, p->rcur, p->rsec, o, p->now);
}

static int s_on_cert(certmgr_t *c, const json_t *o, void *arg)
{
    s_pass_t *p = arg;
    return s_sync_cert(c, p->rcert, p->riss, p->rciss, p->rsec, o, p->now);
}

int certmgr_tick(certmgr_t *c)
{
    s_pass_t p;
    p.rcert = objstore_find(c->store, CERTMGR_GROUP, "certificates");
    p.riss = objstore_find(c->store, CERTMGR_GROUP, "issuers");
    p.rciss = objstore_find(c->store, CERTMGR_GROUP, "clusterissuers");
    p.rsec = objstore_find(c->store, "", "secrets");
    if (!p.rsec || (!p.rcert && !p.riss && !p.rciss))
        return 0;
    int64_t now_ms = objstore_now_ms(c->store);
    uint64_t rv = objstore_rv(c->store);
    if (rv == c->last_rv && !(c->next_due_ms && now_ms >= c->next_due_ms))
        return 0;
    c->next_due_ms = 0;
    rftime_format(now_ms, RFTIME_SEC, p.now, sizeof(p.now));
    int writes = 0;
    p.rcur = p.riss;
    writes += s_sync_all(c, p.riss, s_on_issuer, &p);
    p.rcur = p.rciss;
    writes += s_sync_all(c, p.rciss, s_on_issuer, &p);
    writes += s_sync_all(c, p.rcert, s_on_cert, &p);
    /* A pass that wrote may have made more work ready (a CA secret for its Issuer): look again. */
    c->last_rv = writes ? 0 : objstore_rv(c->store);
    return writes;
}

static int64_t s_on_timer(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    certmgr_tick(arg);
    return CERTMGR_TICK_MS;
}

certmgr_t *certmgr_new(loop_t *loop, objstore_t *store)
{
    certmgr_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->store = store;
    if (loop) {
        int64_t id = loop_add_timer(loop, CERTMGR_TICK_MS, s_on_timer, c);
        if (id < 0) {
            free(c);
            return NULL;
        }
        c->timer = id;
    }
    return c;
}

void certmgr_destroy(certmgr_t **cp)
{
    if (!cp || !*cp)
        return;
    certmgr_t *c = *cp;
    if (c->loop && c->timer > 0)
        loop_cancel_timer(c->loop, c->timer);
    free(c);
    *cp = NULL;
}

#ifdef RF_SELFTEST
#include "selftest.h"

static objstore_res_t *s_reg(objstore_t *s, const char *group, const char *res, const char *kind,
                             bool ns, bool status, bool custom)
{
    objstore_resdesc_t d = {.group = group,
                            .version = "v1",
                            .resource = res,
                            .kind = kind,
                            .namespaced = ns,
                            .has_status = status,
                            .is_custom = custom};
    return objstore_register(s, &d);
}

static void s_make(objstore_t *s, objstore_res_t *r, const char *ns, const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    objstore_status_t st;
    objstore_create(s, r, ns, &o, NULL, &st);
}

static bool s_pem(objstore_t *s, objstore_res_t *rsec, const char *name, const char *key,
                  buf_t *out)
{
    json_t *sec = NULL;
    objstore_status_t st;
    if (objstore_get(s, rsec, "ns", name, &sec, &st) < 0)
        return false;
    bool ok = s_secret_data(sec, key, out);
    json_decref(sec);
    return ok;
}

int certmgr_test(bool verbose)
{
    int failed = 0;
    objstore_t *s = objstore_new(0);
    objstore_res_t *rns = s_reg(s, "", "namespaces", "Namespace", false, true, false);
    objstore_res_t *rsec = s_reg(s, "", "secrets", "Secret", true, false, false);
    CHECK(rns && rsec);
    s_make(s, rns, NULL, "{\"metadata\":{\"name\":\"ns\"}}");
    certmgr_t *c = certmgr_new(NULL, s);
    CHECK(c != NULL);
    CHECK(certmgr_tick(c) == 0); /* no CRDs: nothing */
    objstore_res_t *riss = s_reg(s, CERTMGR_GROUP, "issuers", "Issuer", true, true, true);
    objstore_res_t *rcert =
        s_reg(s, CERTMGR_GROUP, "certificates", "Certificate", true, true, true);
    CHECK(riss && rcert);
    s_make(s, riss, "ns", "{\"metadata\":{\"name\":\"self\"},\"spec\":{\"selfSigned\":{}}}");
    s_make(s, riss, "ns",
           "{\"metadata\":{\"name\":\"ca\"},\"spec\":{\"ca\":{\"secretName\":\"ca-secret\"}}}");
    s_make(s, rcert, "ns",
           "{\"metadata\":{\"name\":\"leaf\"},\"spec\":{\"secretName\":\"leaf-secret\","
           "\"issuerRef\":{\"name\":\"ca\",\"kind\":\"Issuer\"},\"dnsNames\":[\"localhost\","
           "\"h.ns.svc.cluster.local\"],\"ipAddresses\":[\"127.0.0.1\",\"10.244.0.5\"],"
           "\"duration\":\"2160h\",\"renewBefore\":\"360h\",\"secretTemplate\":{\"labels\":"
           "{\"ray.io/cluster\":\"c\"}}}}");
    /* The leaf waits for its CA issuer. */
    for (int i = 0; i < 5; i++)
        certmgr_tick(c);
    json_t *o = NULL;
    objstore_status_t st;
    objstore_get(s, rcert, "ns", "leaf", &o, &st);
    json_t *rc = jx_array_find(jx_get(o, "status.conditions"), "type", "Ready");
    CHECK(rc && strcmp(jx_str(rc, "status", ""), "False") == 0 &&
          strcmp(jx_str(rc, "reason", ""), "DoesNotExist") == 0);
    json_decref(o);
    objstore_get(s, riss, "ns", "ca", &o, &st);
    rc = jx_array_find(jx_get(o, "status.conditions"), "type", "Ready");
    CHECK(rc && strcmp(jx_str(rc, "reason", ""), "ErrGetKeyPair") == 0);
    json_decref(o);
    /* The CA certificate (self-signed, isCA) makes the CA issuer ready, then the leaf issues. */
    s_make(s, rcert, "ns",
           "{\"metadata\":{\"name\":\"ca-cert\"},\"spec\":{\"secretName\":\"ca-secret\","
           "\"isCA\":true,\"commonName\":\"ray-ca\",\"duration\":\"87600h\",\"privateKey\":"
           "{\"algorithm\":\"ECDSA\",\"size\":256},\"issuerRef\":{\"name\":\"self\"}}}");
    for (int i = 0; i < 6; i++)
        certmgr_tick(c);
    objstore_get(s, rcert, "ns", "leaf", &o, &st);
    rc = jx_array_find(jx_get(o, "status.conditions"), "type", "Ready");
    CHECK(rc && strcmp(jx_str(rc, "status", ""), "True") == 0 &&
          strcmp(jx_str(rc, "message", ""), CERTMGR_READY_MESSAGE) == 0 &&
          jx_int(rc, "observedGeneration", 0) == 1);
    CHECK(jx_int(o, "status.revision", 0) == 1 && jx_get(o, "status.notAfter") &&
          jx_get(o, "status.notBefore"));
    int64_t nb = 0, na = 0, rt = 0;
    rftime_parse_sec(jx_str(o, "status.notBefore", ""), &nb);
    rftime_parse_sec(jx_str(o, "status.notAfter", ""), &na);
    rftime_parse_sec(jx_str(o, "status.renewalTime", ""), &rt);
    CHECK(na - nb == 2160 * 3600 && na - rt == 360 * 3600);
    json_decref(o);
    buf_t ca, crt, key, ca2;
    buf_init(&ca, S_PEM_MAX);
    buf_init(&crt, S_PEM_MAX);
    buf_init(&key, S_PEM_MAX);
    buf_init(&ca2, S_PEM_MAX);
    CHECK(s_pem(s, rsec, "ca-secret", "tls.crt", &ca) &&
          s_pem(s, rsec, "ca-secret", "ca.crt", &ca2));
    CHECK(strcmp(buf_str(&ca), buf_str(&ca2)) == 0); /* self-signed: ca.crt is itself */
    buf_reset(&ca2);
    CHECK(s_pem(s, rsec, "leaf-secret", "tls.crt", &crt) &&
          s_pem(s, rsec, "leaf-secret", "tls.key", &key) &&
          s_pem(s, rsec, "leaf-secret", "ca.crt", &ca2));
    CHECK(strcmp(buf_str(&ca), buf_str(&ca2)) == 0 && strstr(buf_str(&key), "PRIVATE KEY"));
    CHECK(tls_verify_pem(buf_str(&crt), buf_str(&ca), 0, NULL) == 0);
    CHECK(tls_pem_has_san(buf_str(&crt), "10.244.0.5") &&
          tls_pem_has_san(buf_str(&crt), "h.ns.svc.cluster.local") &&
          !tls_pem_has_san(buf_str(&crt), "10.244.0.6"));
    objstore_get(s, rsec, "ns", "leaf-secret", &o, &st);
    CHECK(strcmp(jx_str(o, "type", ""), "kubernetes.io/tls") == 0);
    CHECK(strcmp(s_sval(jx_getv(o, "metadata", "labels", "ray.io/cluster", NULL)), "c") == 0);
    CHECK(strcmp(s_sval(jx_getv(o, "metadata", "annotations", "cert-manager.io/ip-sans", NULL)),
                 "127.0.0.1,10.244.0.5") == 0);
    json_decref(o);
    /* Steady: nothing more to write. */
    CHECK(certmgr_tick(c) == 0 && certmgr_tick(c) == 0);
    /* A spec change (a new pod IP) re-issues with the new SAN, revision 2. */
    objstore_get(s, rcert, "ns", "leaf", &o, &st);
    json_t *upd = json_deep_copy(o);
    json_decref(o);
    json_array_append_new(jx_get(upd, "spec.ipAddresses"), json_string("10.244.0.6"));
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
    CHECK(objstore_update(s, rcert, "ns", "leaf", &upd, &uo, NULL, NULL, &st) == 0);
    CHECK(certmgr_tick(c) > 0);
    objstore_get(s, rcert, "ns", "leaf", &o, &st);
    rc = jx_array_find(jx_get(o, "status.conditions"), "type", "Ready");
    CHECK(jx_int(o, "status.revision", 0) == 2 && jx_int(rc, "observedGeneration", 0) == 2);
    json_decref(o);
    buf_reset(&crt);
    CHECK(s_pem(s, rsec, "leaf-secret", "tls.crt", &crt) &&
          tls_pem_has_san(buf_str(&crt), "10.244.0.6") &&
          tls_verify_pem(buf_str(&crt), buf_str(&ca), 0, NULL) == 0);
    /* A deleted Secret is issued again. */
    CHECK(objstore_delete(s, rsec, "ns", "leaf-secret", NULL, NULL, NULL, &st) == 0);
    CHECK(certmgr_tick(c) > 0);
    objstore_get(s, rcert, "ns", "leaf", &o, &st);
    CHECK(jx_int(o, "status.revision", 0) == 3);
    json_decref(o);
    buf_free(&ca);
    buf_free(&ca2);
    buf_free(&crt);
    buf_free(&key);
    certmgr_destroy(&c);
    CHECK(c == NULL);
    objstore_destroy(&s);
    return SELFTEST_RESULT("certmgr", verbose);
}

#endif /* RF_SELFTEST */
