/*
 * ctrl_it: a second controller on the controller runtime (ctrl/ctrl.h), against kubesim.
 *
 * The controller ("mirror", first part of this file, on ctrl.h alone): a ConfigMap labelled
 * mirror.example.com/enabled=true gets a Secret <name>-mirror holding its data, owned by it; its
 * desired set (that one Secret) is recorded in desired_objects. The runtime gives it the pass, the
 * cause, the write window and fence, the audit rows, the Events (about a ConfigMap: core/v1), the
 * ensured-once creation and the desired-set writer.
 *
 * The test (second part): kubesim on the loop; the ConfigMaps are created there and their rows
 * written into observed.db by the test (standing in for a watcher); a bus event is noted as the
 * cause; the pass runs from the work queue. Checked: the Secret exists with the data; one audit
 * row for its create (status 201, the cause's key, event id and resourceVersion, a correlation
 * id) and one for the Event, which kubesim holds with involvedObject v1 ConfigMap and the
 * controller's component; an Event about another object (the Secret) with its audit row; the
 * desired row; a second pass writes nothing (ensured); a fenced pass
 * writes nothing and audits nothing; a ConfigMap gone from observed.db has its desired rows
 * deleted; an unlabelled ConfigMap gets nothing. A row whose secret values were replaced (as the
 * watcher writes it, redact.h) is read live: the Secret gets the real value, the desired row none;
 * fenced, the read is withheld and the pass ends; gone from the API server, the pass ends clean.
 */
#include "harness.h"

#include "ctrl.h"
#include "redact.h"

/* ---------- the controller: ConfigMap -> mirror Secret (on ctrl.h only) ---------- */

#define MIRROR_LABEL "mirror.example.com/enabled" /* "true": the ConfigMap is mirrored */
#define MIRROR_SUFFIX "-mirror" /* the Secret's name is the ConfigMap's plus this */

/* Per pass: the Secret wanted, or NULL. */
typedef struct {
    json_t *secret; /* the Secret to create (owned) */
} mirror_pass_t;

/* The Secret mirroring ConfigMap `cm`, owned by it; NULL on out of memory. */
static json_t *mirror_secret(const json_t *cm)
{
    char name[CTRL_KEY_MAX];
    snprintf(name, sizeof(name), "%.200s" MIRROR_SUFFIX, jx_str(cm, "metadata.name", ""));
    json_t *data = json_object_get(cm, "data");
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:b}]}, s:O?}", "apiVersion",
                     "v1", "kind", "Secret", "metadata", "name", name, "namespace",
                     jx_str(cm, "metadata.namespace", ""), "ownerReferences", "apiVersion", "v1",
                     "kind", "ConfigMap", "name", jx_str(cm, "metadata.name", ""), "uid",
                     jx_str(cm, "metadata.uid", ""), "controller", 1, "stringData", data);
}

static ctrl_begin_t mirror_begin(ctrl_pass_t *p)
{
    mirror_pass_t *m = p->data;
    const char *on =
        json_string_value(json_object_get(jx_get(p->obj, "metadata.labels"), MIRROR_LABEL));
    if (!on || strcmp(on, "true") != 0) {
        if (ctrl_desired_written(p))
            ctrl_desired_forget(p);
        return CTRL_BEGIN_OK;
    }
    m->secret = mirror_secret(p->obj);
    if (!m->secret)
        return CTRL_BEGIN_ERROR;
    json_t *set = json_pack("[{s:s, s:s, s:s, s:{s:i}, s:s}]", "group", "", "kind", "Secret",
                            "name", jx_str(m->secret, "metadata.name", ""), "json", "want", 1,
                            "reason", "label " MIRROR_LABEL "=true");
    char hash[CTRL_MEMO_MAX];
    snprintf(hash, sizeof(hash), "%s/%s", jx_str(p->obj, "metadata.uid", ""),
             jx_str(m->secret, "metadata.name", ""));
    ctrl_desired_record(p, set, hash);
    json_decref(set);
    return CTRL_BEGIN_STAGES;
}

static void mirror_stage_secret(ctrl_pass_t *p)
{
    mirror_pass_t *m = p->data;
    ctrl_create_once(p, json_incref(m->secret), "", "v1", "secrets", "mirror Secret",
                     "CreatedSecret", "FailedToCreateSecret", 0);
}

static void mirror_pass_free(ctrl_pass_t *p)
{
    mirror_pass_t *m = p->data;
    json_decref(m->secret);
}

static const ctrl_stage_t mirror_stages[] = {{mirror_stage_secret, false}};

static const ctrl_kind_t mirror_kind = {.group = "",
                                        .version = "v1",
                                        .kind = "ConfigMap",
                                        .resource = "configmaps",
                                        .component = "mirror-controller",
                                        .instance = "ctrl-it",
                                        .pass_size = sizeof(mirror_pass_t),
                                        .begin = mirror_begin,
                                        .stages = mirror_stages,
                                        .nstages = 1,
                                        .pass_free = mirror_pass_free};

/* ---------- the test ---------- */

static bool s_owned = true; /* what the fence answers */

static bool s_fence(const char *key, void *arg)
{
    return s_owned;
}

typedef struct {
    ctrl_t *c; /* the runtime */
    uint64_t passes; /* wait until this many passes ended */
} s_wait_t;

static bool s_passes_done(void *arg)
{
    s_wait_t *w = arg;
    ctrl_stats_t st;
    ctrl_stats(w->c, &st);
    return st.passes >= w->passes && st.passes_inflight == 0 && st.requests_inflight == 0;
}

/* Creates ConfigMap default/name in kubesim (labelled when `on`) and writes its row into
 * observed.db as a watcher would. Returns the failed checks. */
static int s_configmap(harness_t *h, const char *name, bool on)
{
    int failed = 0;
    json_t *cm =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
                  "ConfigMap", "metadata", "name", name, "namespace", "default", "labels",
                  MIRROR_LABEL, on ? "true" : "false", "data", "colour", "blue", "size", "7");
    k8s_res_t res = {.version = "v1", .resource = "configmaps", .namespace_ = "default"};
    CHECK(cm && harness_create(h, h->admin, &res, cm, NULL, 0) == 0);
    json_decref(cm);
    json_t *live = harness_get(h, "", "configmaps", "default", name);
    CHECK(live != NULL);
    char *text = live ? json_dumps(live, JSON_COMPACT) : NULL;
    store_observed_t row = {.cluster = HARNESS_CLUSTER,
                            .api_group = "",
                            .kind = "ConfigMap",
                            .ns = "default",
                            .name = name,
                            .uid = jx_str(live, "metadata.uid", ""),
                            .resource_version = jx_str(live, "metadata.resourceVersion", ""),
                            .json = text};
    CHECK(text && store_observed_upsert(h->wdb, &row) == 0 && store_flush(h->wdb) == 0);
    free(text);
    json_decref(live);
    return failed;
}

/* Creates labelled ConfigMap default/name with data {"api-token": value} in kubesim and writes
 * its row as the watcher does: redacted (redact.h), so the row holds the mark, not the value.
 * Returns the failed checks. */
static int s_configmap_secret(harness_t *h, const char *name, const char *value)
{
    int failed = 0;
    json_t *cm = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
                           "ConfigMap", "metadata", "name", name, "namespace", "default", "labels",
                           MIRROR_LABEL, "true", "data", "api-token", value);
    k8s_res_t res = {.version = "v1", .resource = "configmaps", .namespace_ = "default"};
    CHECK(cm && harness_create(h, h->admin, &res, cm, NULL, 0) == 0);
    json_decref(cm);
    json_t *live = harness_get(h, "", "configmaps", "default", name);
    json_t *red = redact_object(live);
    CHECK(live && red && redact_marked(red));
    char *text = red ? json_dumps(red, JSON_COMPACT) : NULL;
    CHECK(text && !strstr(text, value));
    store_observed_t row = {.cluster = HARNESS_CLUSTER,
                            .api_group = "",
                            .kind = "ConfigMap",
                            .ns = "default",
                            .name = name,
                            .uid = jx_str(live, "metadata.uid", ""),
                            .resource_version = jx_str(live, "metadata.resourceVersion", ""),
                            .json = text};
    CHECK(text && store_observed_upsert(h->wdb, &row) == 0 && store_flush(h->wdb) == 0);
    free(text);
    json_decref(red);
    json_decref(live);
    return failed;
}

/* The committed audit rows of target kind/name (newest first) into *l. */
static int s_audit(harness_t *h, const char *kind, const char *name, store_audit_list_t *l)
{
    store_flush(h->sdb);
    return store_audit_query_target(h->sdb, HARNESS_CLUSTER, kind, "default", name, 0, 0, 100, l);
}

int main(int argc, char **argv)
{
    int failed = 0;
    bool verbose = argc > 1 && !strcmp(argv[1], "-v");
    harness_t h = {0};
    harness_opts_t o = {.nodes = 1, .wait_ms = 10000, .qps = 1000, .concurrency = 4};
    failed += harness_init(&h, "ctrl-it", verbose, LOG_WARN, &o);
    if (!h.api)
        return 1;
    char dbpath[256], schedpath[256];
    snprintf(dbpath, sizeof(dbpath), "%s/observed.db", h.dir);
    snprintf(schedpath, sizeof(schedpath), "%s/ctrl.db", h.dir);
    buf_t err;
    buf_init(&err, HARNESS_ERR_MAX);
    CHECK(kubeconfig_load(h.kcpath, NULL, &h.kc, &err) == 0);
    buf_free(&err);
    h.admin = h.kc ? k8s_client_new(h.loop, h.kc, NULL) : NULL;
    h.client = h.kc ? k8s_client_new(h.loop, h.kc, NULL) : NULL;
    int e = 0;
    h.wdb = store_open(dbpath, STORE_READWRITE, &e);
    h.obs = store_open(dbpath, STORE_READONLY, &e);
    h.sdb = store_open(schedpath, STORE_READWRITE, &e);
    CHECK(h.admin && h.client && h.wdb && h.obs && h.sdb);
    if (h.sdb)
        store_attach_loop(h.sdb, h.loop);
    h.aud = h.sdb ? actlog_new(h.sdb, &(actlog_actor_t){.service = "mirror", .replica = "mirror/0"})
                  : NULL;
    ctrl_t *c = h.aud && h.obs && h.client
                    ? ctrl_new(h.loop, &(ctrl_config_t){.kind = &mirror_kind,
                                                        .cluster = HARNESS_CLUSTER,
                                                        .observed = h.obs,
                                                        .client = h.client,
                                                        .audit = h.aud,
                                                        .desired = h.sdb,
                                                        .events = true,
                                                        .fence = s_fence})
                    : NULL;
    h.q = c ? workq_new(h.loop, NULL, ctrl_fn, c) : NULL;
    CHECK(c && h.q);
    if (!c || !h.q)
        goto out;

    /* 1. a labelled ConfigMap, woken by a bus event: the Secret, its audit row and the Event */
    failed += s_configmap(&h, "cfg", true);
    json_t *live = harness_get(&h, "", "configmaps", "default", "cfg");
    char rv[64];
    snprintf(rv, sizeof(rv), "%s", jx_str(live, "metadata.resourceVersion", ""));
    envwire_object_changed_t oc = {.cluster = {HARNESS_CLUSTER, strlen(HARNESS_CLUSTER)},
                                   .kind = {"ConfigMap", 9},
                                   .namespace_ = {"default", 7},
                                   .name = {"cfg", 3},
                                   .resource_version = {rv, strlen(rv)},
                                   .event_id = 99};
    char key[CTRL_KEY_MAX];
    CHECK(ctrl_note_change(c, &oc, key, sizeof(key)) == 0 && !strcmp(key, "c1/default/cfg"));
    CHECK(workq_add(h.q, key) == 0);
    s_wait_t w = {.c = c, .passes = 1};
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    json_t *sec = harness_get(&h, "", "secrets", "default", "cfg-mirror");
    CHECK(sec != NULL);
    json_t *ref = json_array_get(jx_get(sec, "metadata.ownerReferences"), 0);
    CHECK(!strcmp(jx_str(ref, "uid", "-"), jx_str(live, "metadata.uid", "")));
    CHECK(!strcmp(jx_str(sec, "stringData.colour", ""), "blue"));
    json_decref(sec);
    store_audit_list_t al = {0};
    CHECK(s_audit(&h, "Secret", "cfg-mirror", &al) == 0 && al.n == 1);
    char corr[ACTLOG_CORR_LEN] = "";
    if (al.n == 1) {
        const store_audit_t *a = al.rows[0];
        CHECK(!strcmp(a->verb, "create") && a->result_status == 201 && !a->result_error);
        CHECK(!strcmp(a->reason, "CreatedSecret") && !strcmp(a->actor_service, "mirror"));
        CHECK(!strcmp(a->cause_key, "c1/default/cfg") && a->cause_event_id == 99);
        CHECK(!strcmp(a->cause_resource_version, rv));
        CHECK(a->correlation_id && strlen(a->correlation_id) == ACTLOG_CORR_LEN - 1);
        CHECK(!strcmp(a->message, "Created mirror Secret default/cfg-mirror"));
        snprintf(corr, sizeof(corr), "%s", a->correlation_id ? a->correlation_id : "");
    }
    store_audit_list_free(&al);
    CHECK(harness_has_event(&h, "default", "cfg", "CreatedSecret", "cfg-mirror"));
    json_t *evs = harness_list(&h, "", "events", "default");
    size_t i, nev = 0;
    json_t *ev;
    json_array_foreach(evs, i, ev)
    {
        if (strcmp(jx_str(ev, "reason", ""), "CreatedSecret") != 0)
            continue;
        nev++;
        CHECK(!strcmp(jx_str(ev, "involvedObject.kind", ""), "ConfigMap"));
        CHECK(!strcmp(jx_str(ev, "involvedObject.apiVersion", ""), "v1"));
        CHECK(!strcmp(jx_str(ev, "involvedObject.uid", ""), jx_str(live, "metadata.uid", "-")));
        CHECK(!strcmp(jx_str(ev, "source.component", ""), "mirror-controller"));
        /* the Event's own audit row shares the pass's correlation id */
        CHECK(s_audit(&h, "Event", jx_str(ev, "metadata.name", ""), &al) == 0 && al.n == 1);
        if (al.n == 1)
            CHECK(!strcmp(al.rows[0]->correlation_id, corr) && al.rows[0]->result_status == 201);
        store_audit_list_free(&al);
    }
    CHECK(nev == 1);
    json_decref(evs);
    json_decref(live);
    store_desired_list_t dl = {0};
    store_flush(h.sdb);
    CHECK(store_desired_list_owner(h.sdb, HARNESS_CLUSTER, "default", "ConfigMap", "cfg", &dl) ==
              0 &&
          dl.n == 1);
    if (dl.n == 1)
        CHECK(!strcmp(dl.rows[0]->child_kind, "Secret") &&
              !strcmp(dl.rows[0]->child_name, "cfg-mirror") &&
              !strcmp(dl.rows[0]->correlation_id, corr));
    store_desired_list_free(&dl);

    /* an Event about any object (here the Secret), audited with the given correlation id */
    ctrl_event_about(
        c,
        &(ctrl_ref_t){.api_version = "v1", .kind = "Secret", .ns = "default", .name = "cfg-mirror"},
        NULL, corr, true, "Checked", "Check", "the mirror Secret was checked");
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    CHECK(harness_has_event(&h, "default", "cfg-mirror", "Checked", "was checked"));
    evs = harness_list(&h, "", "events", "default");
    nev = 0;
    json_array_foreach(evs, i, ev)
    {
        if (strcmp(jx_str(ev, "reason", ""), "Checked") != 0)
            continue;
        nev++;
        CHECK(!strcmp(jx_str(ev, "involvedObject.kind", ""), "Secret"));
        CHECK(!strcmp(jx_str(ev, "type", ""), "Warning"));
        CHECK(s_audit(&h, "Event", jx_str(ev, "metadata.name", ""), &al) == 0 && al.n == 1);
        if (al.n == 1)
            CHECK(!strcmp(al.rows[0]->message,
                          "Recorded Event Checked on Secret default/cfg-mirror") &&
                  !strcmp(al.rows[0]->correlation_id, corr));
        store_audit_list_free(&al);
    }
    CHECK(nev == 1);
    json_decref(evs);

    /* the same Event again: no new object, the recorded one is patched (count 2, its name and
     * firstTimestamp kept), audited as a patch; once that object is gone, the next repeat creates
     * it anew under the same name with the count reached (client-go's EventCorrelator) */
    ctrl_ref_t sref = {
        .api_version = "v1", .kind = "Secret", .ns = "default", .name = "cfg-mirror"};
    ctrl_event_about(c, &sref, NULL, corr, true, "Checked", "Check",
                     "the mirror Secret was checked");
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    evs = harness_list(&h, "", "events", "default");
    char ename[256] = "", first[64] = "";
    nev = 0;
    json_array_foreach(evs, i, ev)
    {
        if (strcmp(jx_str(ev, "reason", ""), "Checked") != 0)
            continue;
        nev++;
        snprintf(ename, sizeof(ename), "%s", jx_str(ev, "metadata.name", ""));
        snprintf(first, sizeof(first), "%s", jx_str(ev, "firstTimestamp", ""));
        CHECK(jx_int(ev, "count", 0) == 2);
        CHECK(!strcmp(jx_str(ev, "message", ""), "the mirror Secret was checked"));
    }
    CHECK(nev == 1 && ename[0] && first[0]);
    json_decref(evs);
    CHECK(s_audit(&h, "Event", ename, &al) == 0 && al.n == 2);
    for (size_t r = 0; verbose && r < al.n; r++)
        printf("ctrl_it: Event row %s %d %s\n", al.rows[r]->verb, al.rows[r]->result_status,
               al.rows[r]->message);
    if (al.n == 2)
        CHECK(!strcmp(al.rows[0]->verb, "patch") && al.rows[0]->result_status == 200 &&
              !strcmp(al.rows[0]->message,
                      "Recorded Event Checked on Secret default/cfg-mirror again (count 2)"));
    store_audit_list_free(&al);
    harness_call_t dx = {0};
    k8s_res_t evres = {
        .version = "v1", .resource = "events", .namespace_ = "default", .name = ename};
    CHECK(harness_call_wait(&h, h.admin,
                            k8s_delete(h.admin, &evres, NULL, s_harness_call_done, &dx), &dx) == 0);
    json_decref(dx.body);
    CHECK(harness_get(&h, "", "events", "default", ename) == NULL);
    ctrl_event_about(c, &sref, NULL, corr, true, "Checked", "Check",
                     "the mirror Secret was checked");
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    json_t *again = harness_get(&h, "", "events", "default", ename);
    CHECK(again && jx_int(again, "count", 0) == 3 &&
          !strcmp(jx_str(again, "firstTimestamp", ""), first));
    json_decref(again);
    CHECK(s_audit(&h, "Event", ename, &al) == 0 && al.n == 3);
    if (al.n == 3)
        CHECK(!strcmp(al.rows[0]->verb, "create") && al.rows[0]->result_status == 201);
    store_audit_list_free(&al);
    ctrl_stats_t est;
    ctrl_stats(c, &est);
    CHECK(est.events_patched == 2 && est.events_dropped == 0);

    /* 2. a second pass: the Secret is ensured, nothing is written */
    CHECK(workq_add(h.q, key) == 0);
    w.passes = 2;
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    CHECK(s_audit(&h, "Secret", "cfg-mirror", &al) == 0 && al.n == 1);
    store_audit_list_free(&al);
    ctrl_stats_t st;
    ctrl_stats(c, &st);
    CHECK(st.creates == 1 && st.events == 3 && st.write_errors == 0 && st.errors == 0);

    /* 3. fenced: the shard is lost, the write is withheld and not audited */
    failed += s_configmap(&h, "cfg2", true);
    s_owned = false;
    CHECK(workq_add(h.q, "c1/default/cfg2") == 0);
    w.passes = 3;
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    s_owned = true;
    ctrl_stats(c, &st);
    CHECK(st.fenced == 1 && st.creates == 1);
    json_t *none = harness_get(&h, "", "secrets", "default", "cfg2-mirror");
    CHECK(none == NULL);
    json_decref(none);
    CHECK(s_audit(&h, "Secret", "cfg2-mirror", &al) == 0 && al.n == 0);
    store_audit_list_free(&al);

    /* 4. an unlabelled ConfigMap gets nothing */
    failed += s_configmap(&h, "plain", false);
    CHECK(workq_add(h.q, "c1/default/plain") == 0);
    w.passes = 4;
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    ctrl_stats(c, &st);
    CHECK(st.creates == 1 && st.fenced == 1);

    /* 5. gone from observed.db: its desired rows are deleted and its state forgotten */
    CHECK(store_observed_delete(h.wdb, HARNESS_CLUSTER, "ConfigMap", "default", "cfg") == 0);
    CHECK(store_flush(h.wdb) == 0);
    CHECK(workq_add(h.q, key) == 0);
    w.passes = 5;
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    store_flush(h.sdb);
    CHECK(store_desired_list_owner(h.sdb, HARNESS_CLUSTER, "default", "ConfigMap", "cfg", &dl) ==
              0 &&
          dl.n == 0);
    store_desired_list_free(&dl);
    ctrl_stats(c, &st);
    CHECK(st.not_found == 1 && st.passes == 5);

    /* 6. a failed write (kubesim answers 403 to creating the Secret): its log line, at error
     * level, carries the correlation id its audit row has, and so does the failed pass's */
    FILE *logf = tmpfile();
    CHECK(logf != NULL);
    if (logf) {
        failed += s_configmap(&h, "cfg3", true);
        CHECK(apiserver_add_fault(h.api, &(apiserver_fault_t){.verb = "create",
                                                              .resource = "secrets",
                                                              .rate = 1.0,
                                                              .code = 403}) == 0);
        log_setup("ctrl-it", LOG_WARN, fileno(logf));
        CHECK(workq_add(h.q, "c1/default/cfg3") == 0);
        w.passes = 6;
        CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
        log_setup("ctrl-it", LOG_WARN, STDERR_FILENO);
        apiserver_clear_faults(h.api);
        ctrl_stats(c, &st);
        CHECK(st.write_errors >= 1);
        store_flush(h.sdb);
        CHECK(s_audit(&h, "Secret", "cfg3-mirror", &al) == 0 && al.n >= 1);
        /* the first attempt's row (newest first: the last one), written while logs went here */
        const store_audit_t *a = al.n ? al.rows[al.n - 1] : NULL;
        CHECK(a && a->result_status == 403 && a->correlation_id && strlen(a->correlation_id) == 32);
        char logs[65536] = "", want[64];
        size_t n = fseek(logf, 0, SEEK_SET) == 0 ? fread(logs, 1, sizeof(logs) - 1, logf) : 0;
        logs[n] = '\0';
        snprintf(want, sizeof(want), "\"correlation_id\":\"%s\"", a ? a->correlation_id : "?");
        bool write_line = false, pass_line = false;
        for (char *line = logs, *nl; *line; line = nl ? nl + 1 : line + strlen(line)) {
            if ((nl = strchr(line, '\n')))
                *nl = '\0';
            if (!strstr(line, want) || !strstr(line, "\"level\":\"error\""))
                continue;
            write_line |= strstr(line, "\"msg\":\"write failed\"") &&
                          strstr(line, "\"object\":\"cfg3-mirror\"") &&
                          strstr(line, "\"status\":\"403\"");
            pass_line |= strstr(line, "\"msg\":\"reconcile failed\"") &&
                         strstr(line, "\"key\":\"c1/default/cfg3\"");
        }
        CHECK(write_line);
        CHECK(pass_line);
        store_audit_list_free(&al);
        fclose(logf);
    }

    /* 7. a row whose secret values the watcher replaced: the pass reads the object live, so the
     * Secret carries the real value; the desired row holds none */
    failed += s_configmap_secret(&h, "sec", "s3cret-cm-value");
    CHECK(workq_add(h.q, "c1/default/sec") == 0);
    w.passes = 7;
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    ctrl_stats(c, &st);
    CHECK(st.live_reads == 1);
    sec = harness_get(&h, "", "secrets", "default", "sec-mirror");
    CHECK(sec && !strcmp(jx_str(sec, "stringData.api-token", ""), "s3cret-cm-value"));
    json_decref(sec);
    store_flush(h.sdb);
    CHECK(store_desired_list_owner(h.sdb, HARNESS_CLUSTER, "default", "ConfigMap", "sec", &dl) ==
              0 &&
          dl.n == 1);
    if (dl.n == 1)
        CHECK(dl.rows[0]->json && !strstr(dl.rows[0]->json, "s3cret-cm-value"));
    store_desired_list_free(&dl);

    /* 8. the same, fenced: the read is withheld too and the pass ends, creating nothing */
    failed += s_configmap_secret(&h, "sec2", "s3cret-cm-two");
    s_owned = false;
    CHECK(workq_add(h.q, "c1/default/sec2") == 0);
    w.passes = 8;
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    s_owned = true;
    none = harness_get(&h, "", "secrets", "default", "sec2-mirror");
    CHECK(none == NULL);
    json_decref(none);

    /* 9. the object is gone from the API server while its row remains: the live read's 404 ends
     * the pass cleanly (the watcher's DELETED follows), nothing created, no error */
    failed += s_configmap_secret(&h, "sec3", "s3cret-cm-three");
    CHECK(objstore_delete(apiserver_store(h.api), harness_res(&h, "", "configmaps"), "default",
                          "sec3", NULL, NULL, NULL, NULL) == 0);
    ctrl_stats(c, &st);
    uint64_t errors = st.errors;
    CHECK(workq_add(h.q, "c1/default/sec3") == 0);
    w.passes = 9;
    CHECK(harness_wait(&h, s_passes_done, &w, o.wait_ms));
    ctrl_stats(c, &st);
    CHECK(st.live_reads == 3 && st.errors == errors);
    none = harness_get(&h, "", "secrets", "default", "sec3-mirror");
    CHECK(none == NULL);
    json_decref(none);

    if (verbose)
        printf("ctrl_it: %llu passes, %llu creates, %llu events, %llu fenced, %llu keys\n",
               (unsigned long long)st.passes, (unsigned long long)st.creates,
               (unsigned long long)st.events, (unsigned long long)st.fenced,
               (unsigned long long)st.keys);
out:
    workq_destroy(&h.q);
    k8s_client_destroy(&h.client);
    ctrl_destroy(&c);
    failed += harness_stop(&h);
    harness_end(&h);
    printf("ctrl_it: %d failure(s)\n", failed);
    return failed ? 1 : 0;
}
