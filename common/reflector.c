/*
 * reflector: list + watch into a local cache, with 410 relists as differences. See reflector.h.
 */
#include "reflector.h"

#include "err.h"
#include "json.h"
#include "log.h"
#include "selftest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct reflector {
    loop_t *loop; /* the loop */
    k8s_client_t *client; /* borrowed */
    reflector_config_t cfg; /* settings (strings point at the copies below) */
    char *group, *version, *resource, *ns, *lsel, *fsel; /* owned copies */
    json_t *cache; /* "ns/name" -> object */
    json_t *seen; /* keys listed by the list in progress ("ns/name" -> true), or NULL */
    char **keep; /* kept paths (NULL-terminated, the config's plus the reflector's), or NULL */
    char *cont; /* continue token of the list in progress, or NULL */
    char *rv; /* last resourceVersion ("" before the first list) */
    bool started; /* reflector_start() ran */
    bool synced; /* the first list was applied */
    bool relist; /* the next list follows a 410 */
    bool gone; /* the current watch saw an ERROR 410 */
    bool watch_had_events; /* the current watch delivered something */
    int64_t list_id; /* list request in flight, 0 when none */
    int64_t watch_id; /* watch in flight, 0 when none */
    int64_t timer; /* backoff timer, 0 when none */
    int64_t resync_timer; /* resync timer, 0 when none */
    int failures; /* consecutive failures (backoff exponent) */
    uint64_t rng; /* jitter state */
    reflector_stats_t stats; /* counters */
    const json_t *raw_obj; /* the watch event object being handled, or NULL */
    const char *raw; /* its text as received (k8s_event_raw), or NULL */
    size_t raw_len; /* bytes at raw */
};

static void s_list(reflector_t *r);
static void s_watch(reflector_t *r);

static uint64_t s_rand(reflector_t *r)
{
    uint64_t x = r->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->rng = x;
    return x;
}

const char *reflector_event_name(reflector_event_t type)
{
    switch (type) {
    case REFLECTOR_ADDED:
        return "ADDED";
    case REFLECTOR_MODIFIED:
        return "MODIFIED";
    case REFLECTOR_DELETED:
        return "DELETED";
    case REFLECTOR_RESYNC:
        return "RESYNC";
    }
    return "?";
}

/* "ns/name" of an object; 0 or ERR_INVAL (no name) / ERR_TOOBIG. */
static int s_key(const json_t *obj, char *key, size_t size)
{
    const char *name = jx_str(obj, "metadata.name", NULL);
    const char *ns = jx_str(obj, "metadata.namespace", "");
    if (!name || !*name)
        return ERR_INVAL;
    int n = snprintf(key, size, "%s/%s", ns, name);
    return n < 0 || (size_t)n >= size ? ERR_TOOBIG : 0;
}

static void s_set_rv(reflector_t *r, const char *rv)
{
    if (!rv || !*rv)
        return;
    char *copy = strdup(rv);
    if (!copy)
        return; /* keep the older RV: a later watch replays a little more */
    free(r->rv);
    r->rv = copy;
}

static void s_emit(reflector_t *r, reflector_event_t type, json_t *obj, json_t *old)
{
    r->stats.events++;
    r->cfg.on_event(r, type, obj, old, r->cfg.arg);
}

static bool s_same(const json_t *a, const json_t *b)
{
    return strcmp(jx_str(a, "metadata.resourceVersion", ""),
                  jx_str(b, "metadata.resourceVersion", "")) == 0 &&
           strcmp(jx_str(a, "metadata.uid", ""), jx_str(b, "metadata.uid", "")) == 0;
}

/* Emits obj with its raw text (len bytes, may be NULL) available to reflector_event_raw(). */
static void s_emit_raw(reflector_t *r, reflector_event_t type, json_t *obj, json_t *old,
                       const char *raw, size_t len)
{
    r->raw = raw;
    r->raw_len = raw ? len : 0;
    r->raw_obj = raw ? obj : NULL;
    s_emit(r, type, obj, old);
    r->raw = NULL;
    r->raw_len = 0;
    r->raw_obj = NULL;
}

/* Applies one list page's items to the cache at once, emitting what differs, and records their
 * keys in r->seen. `text` and `spans` (n of them, may be NULL) give each item's raw text. A
 * changed uid under one name gives DELETED (old) then ADDED, so a consumer never holds two objects
 * of one name. Returns 0 or ERR_NOMEM. */
static int s_apply_page(reflector_t *r, json_t *items, const char *text, const jproj_span_t *spans,
                        size_t n)
{
    if (!r->seen && !(r->seen = json_object()))
        return ERR_NOMEM;
    if (spans && n != json_array_size(items))
        spans = NULL; /* cannot happen: the spans are the array's own elements */
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        char key[REFLECTOR_MAX_KEY];
        if (s_key(it, key, sizeof(key)) != 0)
            continue;
        if (json_object_set(r->seen, key, json_true()) != 0)
            return ERR_NOMEM;
        const char *raw = spans && text ? text + spans[i].off : NULL;
        size_t len = spans ? spans[i].len : 0;
        json_t *old = json_incref(json_object_get(r->cache, key));
        if (old && s_same(old, it)) {
            json_decref(old);
            continue;
        }
        if (json_object_set(r->cache, key, it) != 0) {
            json_decref(old);
            return ERR_NOMEM;
        }
        if (!old) {
            s_emit_raw(r, REFLECTOR_ADDED, it, NULL, raw, len);
        } else if (strcmp(jx_str(it, "metadata.uid", ""), jx_str(old, "metadata.uid", "")) != 0) {
            /* same name, another object: the old one was deleted during the gap */
            s_emit(r, REFLECTOR_DELETED, old, old);
            s_emit_raw(r, REFLECTOR_ADDED, it, NULL, raw, len);
        } else {
            s_emit_raw(r, REFLECTOR_MODIFIED, it, old, raw, len);
        }
        json_decref(old);
    }
    return 0;
}

/* The list is complete: cached objects it did not contain are DELETED; rv is the list's. */
static void s_list_end(reflector_t *r, const char *rv)
{
    const char *key;
    json_t *old, *tmp;
    json_object_foreach_safe(r->cache, tmp, key, old)
    {
        if (r->seen && json_object_get(r->seen, key))
            continue;
        json_incref(old);
        json_object_del(r->cache, key);
        s_emit(r, REFLECTOR_DELETED, old, old);
        json_decref(old);
    }
    json_decref(r->seen);
    r->seen = NULL;
    s_set_rv(r, rv);
}

/* Applies one watch event. Returns 0, or ERR_GONE (410: relist), or another err to restart. */
static int s_handle_event(reflector_t *r, const char *type, json_t *obj)
{
    const char *rv = jx_str(obj, "metadata.resourceVersion", NULL);
    if (strcmp(type, "BOOKMARK") == 0) {
        r->stats.bookmarks++;
        s_set_rv(r, rv);
        return 0;
    }
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = jx_int(obj, "code", 0);
        log_info("reflector: watch ERROR event", "resource", r->resource, "reason",
                 jx_str(obj, "reason", ""), "message", jx_str(obj, "message", ""), NULL);
        return code == 410 ? ERR_GONE : ERR_SERVER;
    }
    char key[REFLECTOR_MAX_KEY];
    if (s_key(obj, key, sizeof(key)))
        return 0; /* not an object we can key: ignore it */
    json_t *old = json_object_get(r->cache, key);
    json_incref(old); /* stays valid through the callback */
    r->watch_had_events = true;
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        if (json_object_set(r->cache, key, obj) != 0) {
            json_decref(old);
            return ERR_NOMEM;
        }
        s_set_rv(r, rv);
        if (old && strcmp(jx_str(old, "metadata.uid", ""), jx_str(obj, "metadata.uid", "")) != 0) {
            s_emit(r, REFLECTOR_DELETED, old, old);
            s_emit(r, REFLECTOR_ADDED, obj, NULL);
        } else if (old) {
            if (!s_same(old, obj) || strcmp(type, "MODIFIED") == 0)
                s_emit(r, REFLECTOR_MODIFIED, obj, old);
        } else {
            s_emit(r, REFLECTOR_ADDED, obj, NULL);
        }
    } else if (strcmp(type, "DELETED") == 0) {
        json_object_del(r->cache, key);
        s_set_rv(r, rv);
        s_emit(r, REFLECTOR_DELETED, obj, old);
    }
    json_decref(old);
    return 0;
}

static int64_t s_backoff(reflector_t *r)
{
    int64_t d = r->cfg.backoff_base_ms;
    for (int i = 1; i < r->failures && d < r->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > r->cfg.backoff_max_ms)
        d = r->cfg.backoff_max_ms;
    return d / 2 + (int64_t)(s_rand(r) % (uint64_t)(d / 2 + 1));
}

static int64_t s_timer_fn(loop_t *loop, int64_t id, void *arg)
{
    reflector_t *r = arg;
    r->timer = 0;
    if (!r->synced || r->relist || r->seen)
        s_list(r);
    else
        s_watch(r);
    return LOOP_TIMER_DONE;
}

/* Schedules the next list/watch after `delay_ms`. */
static void s_later(reflector_t *r, int64_t delay_ms)
{
    if (r->timer)
        return;
    int64_t t = loop_add_timer(r->loop, delay_ms, s_timer_fn, r);
    if (t > 0)
        r->timer = t;
    else
        log_error("reflector: cannot arm a timer", "resource", r->resource, NULL);
}

static void s_failed(reflector_t *r)
{
    r->failures++;
    r->stats.failures++;
    s_later(r, s_backoff(r));
}

static void s_list_done(k8s_client_t *c, const k8s_result_t *res, void *arg)
{
    reflector_t *r = arg;
    r->list_id = 0;
    r->stats.list_pages++;
    if (res->err) {
        if (res->err == ERR_GONE && r->cont) {
            /* continue token expired: restart the list from scratch */
            free(r->cont);
            r->cont = NULL;
            json_decref(r->seen); /* a new snapshot: what it lacks is deleted at its end */
            r->seen = NULL;
            s_later(r, 0);
            return;
        }
        log_info("reflector: list failed", "resource", r->resource, "error", err_str(res->err),
                 "message", res->message, NULL);
        s_failed(r);
        return;
    }
    if (s_apply_page(r, json_object_get(res->body, "items"), res->raw, res->items, res->n_items) !=
        0) {
        s_failed(r);
        return;
    }
    const char *cont = jx_str(res->body, "metadata.continue", "");
    free(r->cont);
    r->cont = *cont ? strdup(cont) : NULL;
    if (*cont && !r->cont) {
        s_failed(r);
        return;
    }
    if (r->cont) {
        s_list(r);
        return;
    }
    /* complete */
    bool was_relist = r->relist;
    r->relist = false;
    r->failures = 0;
    r->stats.lists++;
    if (was_relist)
        r->stats.relists++;
    s_list_end(r, jx_str(res->body, "metadata.resourceVersion", ""));
    if (!r->synced) {
        r->synced = true;
        if (r->cfg.on_synced)
            r->cfg.on_synced(r, r->cfg.arg);
    }
    s_watch(r);
}

static void s_list(reflector_t *r)
{
    k8s_res_t res = {
        .group = r->group, .version = r->version, .resource = r->resource, .namespace_ = r->ns};
    k8s_opts_t o = {.label_selector = r->lsel,
                    .field_selector = r->fsel,
                    .limit = r->cfg.page_size,
                    .continue_token = r->cont,
                    .keep = (const char *const *)r->keep};
    int64_t id = k8s_list(r->client, &res, &o, s_list_done, r);
    if (id < 0) {
        s_failed(r);
        return;
    }
    r->list_id = id;
}

static int s_watch_event(k8s_client_t *c, int64_t id, const char *type, json_t *obj, void *arg)
{
    reflector_t *r = arg;
    r->raw = k8s_event_raw(c, &r->raw_len);
    r->raw_obj = r->raw ? obj : NULL;
    int rc = s_handle_event(r, type, obj);
    r->raw_obj = NULL;
    r->raw = NULL;
    r->raw_len = 0;
    if (rc == ERR_GONE)
        r->gone = true;
    return rc;
}

static void s_watch_done(k8s_client_t *c, const k8s_result_t *res, void *arg)
{
    reflector_t *r = arg;
    r->watch_id = 0;
    if (r->gone || res->err == ERR_GONE) {
        r->gone = false;
        r->relist = true;
        log_info("reflector: resourceVersion expired, relisting", "resource", r->resource, "rv",
                 r->rv, NULL);
        s_later(r, 0);
        return;
    }
    if (res->err == 0) {
        r->failures = 0;
        s_later(r, 0); /* normal end: watch again from the last RV */
        return;
    }
    if (r->watch_had_events)
        r->failures = 0;
    s_failed(r);
}

static void s_watch(reflector_t *r)
{
    k8s_res_t res = {
        .group = r->group, .version = r->version, .resource = r->resource, .namespace_ = r->ns};
    int64_t to = r->cfg.watch_timeout_s;
    if (to <= 0)
        to = REFLECTOR_WATCH_MIN_S + (int64_t)(s_rand(r) % REFLECTOR_WATCH_MIN_S);
    k8s_opts_t o = {.label_selector = r->lsel,
                    .field_selector = r->fsel,
                    .resource_version = r->rv,
                    .allow_bookmarks = true,
                    .timeout_seconds = to,
                    .keep = (const char *const *)r->keep};
    r->gone = false;
    r->watch_had_events = false;
    int64_t id = k8s_watch(r->client, &res, &o, s_watch_event, s_watch_done, r);
    if (id < 0) {
        s_failed(r);
        return;
    }
    r->watch_id = id;
    r->stats.watches++;
}

static int64_t s_resync(loop_t *loop, int64_t id, void *arg)
{
    reflector_t *r = arg;
    if (r->synced) {
        /* a copy of the keys: the callback may not change the cache, but stay safe */
        const char *key;
        json_t *obj;
        json_t *snap = json_copy(r->cache);
        if (snap) {
            json_object_foreach(snap, key, obj) s_emit(r, REFLECTOR_RESYNC, obj, NULL);
            json_decref(snap);
        }
    }
    return r->cfg.resync_ms;
}

static char *s_dup(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* The paths the reflector itself reads: keys, list diffs, bookmarks. */
static const char *const s_own_paths[] = {"metadata.name", "metadata.namespace", "metadata.uid",
                                          "metadata.resourceVersion", NULL};

/* r->keep = cfg's paths + s_own_paths, or NULL when cfg keeps everything. 0 or ERR_NOMEM. */
static int s_keep_init(reflector_t *r, const char *const *keep)
{
    if (!keep)
        return 0;
    size_t n = 0, m = 0;
    while (keep[n])
        n++;
    r->keep = calloc(n + 5, sizeof(*r->keep));
    if (!r->keep)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(r->keep[m++] = strdup(keep[i])))
            return ERR_NOMEM;
    for (size_t i = 0; s_own_paths[i]; i++)
        if (!(r->keep[m++] = strdup(s_own_paths[i])))
            return ERR_NOMEM;
    return 0;
}

reflector_t *reflector_new(loop_t *loop, k8s_client_t *client, const reflector_config_t *cfg)
{
    if (!loop || !client || !cfg || !cfg->version || !cfg->resource || !cfg->on_event)
        return NULL;
    reflector_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = loop;
    r->client = client;
    r->cfg = *cfg;
    if (r->cfg.page_size <= 0)
        r->cfg.page_size = REFLECTOR_DEFAULT_PAGE;
    if (r->cfg.backoff_base_ms <= 0)
        r->cfg.backoff_base_ms = REFLECTOR_BACKOFF_BASE_MS;
    if (r->cfg.backoff_max_ms <= 0)
        r->cfg.backoff_max_ms = REFLECTOR_BACKOFF_MAX_MS;
    r->group = s_dup(cfg->group);
    r->version = strdup(cfg->version);
    r->resource = strdup(cfg->resource);
    r->ns = s_dup(cfg->namespace_);
    r->lsel = s_dup(cfg->label_selector);
    r->fsel = s_dup(cfg->field_selector);
    r->rv = strdup("");
    r->cache = json_object();
    r->rng = (uint64_t)loop_clock_ms() * 2862933555777941757ULL + (uint64_t)getpid() + 7;
    if (!r->version || !r->resource || !r->rv || !r->cache || s_keep_init(r, cfg->keep) != 0 ||
        (cfg->group && *cfg->group && !r->group) ||
        (cfg->namespace_ && *cfg->namespace_ && !r->ns) ||
        (cfg->label_selector && *cfg->label_selector && !r->lsel) ||
        (cfg->field_selector && *cfg->field_selector && !r->fsel)) {
        reflector_destroy(&r);
        return NULL;
    }
    return r;
}

int reflector_start(reflector_t *r)
{
    if (!r)
        return ERR_INVAL;
    if (r->started)
        return ERR_STATE;
    r->started = true;
    if (r->cfg.resync_ms > 0) {
        int64_t t = loop_add_timer(r->loop, r->cfg.resync_ms, s_resync, r);
        r->resync_timer = t > 0 ? t : 0;
    }
    k8s_res_t res = {
        .group = r->group, .version = r->version, .resource = r->resource, .namespace_ = r->ns};
    k8s_opts_t o = {.label_selector = r->lsel,
                    .field_selector = r->fsel,
                    .limit = r->cfg.page_size,
                    .keep = (const char *const *)r->keep};
    int64_t id = k8s_list(r->client, &res, &o, s_list_done, r);
    if (id < 0)
        return (int)id;
    r->list_id = id;
    return 0;
}

void reflector_destroy(reflector_t **r_p)
{
    if (!r_p || !*r_p)
        return;
    reflector_t *r = *r_p;
    if (r->list_id)
        k8s_cancel(r->client, r->list_id);
    if (r->watch_id)
        k8s_cancel(r->client, r->watch_id);
    if (r->timer)
        loop_cancel_timer(r->loop, r->timer);
    if (r->resync_timer)
        loop_cancel_timer(r->loop, r->resync_timer);
    json_decref(r->cache);
    json_decref(r->seen);
    for (size_t i = 0; r->keep && r->keep[i]; i++)
        free(r->keep[i]);
    free(r->keep);
    free(r->cont);
    free(r->rv);
    free(r->group);
    free(r->version);
    free(r->resource);
    free(r->ns);
    free(r->lsel);
    free(r->fsel);
    free(r);
    *r_p = NULL;
}

bool reflector_synced(const reflector_t *r)
{
    return r && r->synced;
}

const char *reflector_resource_version(const reflector_t *r)
{
    return r->rv ? r->rv : "";
}

size_t reflector_count(const reflector_t *r)
{
    return json_object_size(r->cache);
}

json_t *reflector_get(const reflector_t *r, const char *ns, const char *name)
{
    char key[REFLECTOR_MAX_KEY];
    int n = snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name ? name : "");
    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    return json_object_get(r->cache, key);
}

const json_t *reflector_cache(const reflector_t *r)
{
    return r->cache;
}

const char *reflector_event_raw(const reflector_t *r, const json_t *obj, size_t *len)
{
    bool ok = r && obj && r->raw && r->raw_obj == obj;
    if (len)
        *len = ok ? r->raw_len : 0;
    return ok ? r->raw : NULL;
}

void reflector_stats(const reflector_t *r, reflector_stats_t *out)
{
    *out = r->stats;
}

/* ---------- self-test ---------- */

typedef struct {
    char log[2048];
    int n;
    int synced;
} s_t_rec_t;

static void s_t_event(reflector_t *r, reflector_event_t type, json_t *obj, json_t *old, void *arg)
{
    s_t_rec_t *t = arg;
    size_t len = strlen(t->log);
    size_t rl = 0;
    const char *raw = reflector_event_raw(r, obj, &rl);
    snprintf(t->log + len, sizeof(t->log) - len, "%s:%s:%s%s%s%.*s;", reflector_event_name(type),
             jx_str(obj, "metadata.name", "?"), jx_str(obj, "metadata.resourceVersion", "?"),
             old ? "+old" : "", raw ? "@" : "", raw ? (int)rl : 0, raw ? raw : "");
    t->n++;
}

static json_t *s_t_obj(const char *name, const char *uid, const char *rv)
{
    return json_pack("{s:{s:s, s:s, s:s, s:s}}", "metadata", "name", name, "namespace", "ns", "uid",
                     uid, "resourceVersion", rv);
}

int reflector_test(bool verbose)
{
    int failed = 0;
    loop_t *loop = loop_new();
    kubeconfig_t kc = {.server = "http://127.0.0.1:1"};
    k8s_config_t kcfg = {.max_retries = -1};
    k8s_client_t *c = loop ? k8s_client_new(loop, &kc, &kcfg) : NULL;
    s_t_rec_t t = {0};
    reflector_config_t cfg = {
        .version = "v1", .resource = "pods", .on_event = s_t_event, .arg = &t};
    CHECK(reflector_new(loop, c, &(reflector_config_t){.version = "v1"}) == NULL);
    reflector_t *r = c ? reflector_new(loop, c, &cfg) : NULL;
    CHECK(r != NULL);
    if (r) {
        CHECK(!reflector_synced(r) && strcmp(reflector_resource_version(r), "") == 0);
        /* first list: all ADDED */
        /* in two pages, the first with the raw text of its items */
        json_t *l = json_array();
        json_array_append_new(l, s_t_obj("a", "u1", "1"));
        json_array_append_new(l, s_t_obj("b", "u2", "2"));
        const char *text = "[A,BB]";
        jproj_span_t sp[2] = {{1, 1}, {3, 2}};
        CHECK(s_apply_page(r, l, text, sp, 2) == 0);
        json_decref(l);
        l = json_array();
        json_array_append_new(l, s_t_obj("c", "u3", "3"));
        json_array_append_new(l, json_pack("{s:{s:s}}", "metadata", "namespace", "x"));
        CHECK(s_apply_page(r, l, text, sp, 1) == 0); /* spans not matching: none used */
        json_decref(l);
        s_list_end(r, "3");
        CHECK(strcmp(t.log, "ADDED:a:1@A;ADDED:b:2@BB;ADDED:c:3;") == 0);
        CHECK(reflector_count(r) == 3 && strcmp(reflector_resource_version(r), "3") == 0);
        /* watch events */
        t.log[0] = 0;
        json_t *o = s_t_obj("d", "u4", "4");
        CHECK(s_handle_event(r, "ADDED", o) == 0);
        json_decref(o);
        o = s_t_obj("a", "u1", "5");
        CHECK(s_handle_event(r, "MODIFIED", o) == 0);
        /* the raw text is handed out only for the watch event's own object */
        size_t rl = 9;
        r->raw = "{}";
        r->raw_len = 2;
        r->raw_obj = o;
        CHECK(reflector_event_raw(r, o, &rl) != NULL && rl == 2);
        CHECK(reflector_event_raw(r, r->cache, &rl) == NULL && rl == 0);
        r->raw = NULL;
        r->raw_obj = NULL;
        CHECK(reflector_event_raw(r, o, &rl) == NULL && rl == 0);
        CHECK(reflector_event_raw(NULL, o, NULL) == NULL);
        json_decref(o);
        o = s_t_obj("b", "u2", "6");
        CHECK(s_handle_event(r, "DELETED", o) == 0);
        json_decref(o);
        o = json_pack("{s:{s:s}}", "metadata", "resourceVersion", "7");
        CHECK(s_handle_event(r, "BOOKMARK", o) == 0);
        json_decref(o);
        CHECK(strcmp(reflector_resource_version(r), "7") == 0);
        o = json_pack("{s:s, s:i, s:s}", "kind", "Status", "code", 410, "reason", "Expired");
        CHECK(s_handle_event(r, "ERROR", o) == ERR_GONE);
        json_decref(o);
        o = json_pack("{s:s, s:i}", "kind", "Status", "code", 500);
        CHECK(s_handle_event(r, "ERROR", o) == ERR_SERVER);
        json_decref(o);
        CHECK(strcmp(t.log, "ADDED:d:4;MODIFIED:a:5+old;DELETED:b:6+old;") == 0);
        CHECK(reflector_get(r, "ns", "b") == NULL && reflector_get(r, "ns", "d") != NULL);
        /* an identical list: nothing */
        t.log[0] = 0;
        {
            l = json_array();
            const char *k;
            json_t *v;
            json_object_foreach(r->cache, k, v) json_array_append_new(l, json_deep_copy(v));
            CHECK(s_apply_page(r, l, NULL, NULL, 0) == 0);
            json_decref(l);
            s_list_end(r, "8");
        }
        CHECK(t.log[0] == 0);
        /* relist after a gap: c deleted, a changed, d replaced by another uid, e new */
        l = json_array();
        json_array_append_new(l, s_t_obj("a", "u1", "9"));
        json_array_append_new(l, s_t_obj("d", "u4x", "10"));
        json_array_append_new(l, s_t_obj("e", "u5", "11"));
        CHECK(s_apply_page(r, l, NULL, NULL, 0) == 0);
        json_decref(l);
        s_list_end(r, "11");
        if (verbose)
            printf("  relist: %s\n", t.log);
        CHECK(strcmp(t.log, "MODIFIED:a:9+old;DELETED:d:4+old;ADDED:d:10;ADDED:e:11;"
                            "DELETED:c:3+old;") == 0);
        CHECK(strcmp(reflector_resource_version(r), "11") == 0);
        CHECK(reflector_count(r) == 3);
        const json_t *cache = reflector_cache(r);
        CHECK(json_object_get(cache, "ns/e") != NULL);
        /* resync */
        t.n = 0;
        r->synced = true;
        s_resync(loop, 0, r);
        CHECK(t.n == 3);
        reflector_stats_t st;
        reflector_stats(r, &st);
        CHECK(st.bookmarks == 1 && st.events > 0);
        CHECK(strcmp(reflector_event_name(REFLECTOR_RESYNC), "RESYNC") == 0);
        /* start against a closed port: the list fails and backs off */
        r->synced = false;
        CHECK(reflector_start(r) == 0);
        CHECK(reflector_start(r) == ERR_STATE);
        for (int i = 0; i < 20; i++)
            loop_run_once(loop, 10);
        reflector_stats(r, &st);
        CHECK(st.failures >= 1 && !reflector_synced(r));
    }
    reflector_destroy(&r);
    reflector_destroy(&r);
    k8s_client_destroy(&c);
    loop_destroy(&loop);
    return SELFTEST_RESULT("reflector", verbose);
}
