/*
 * metrics: see metrics.h.
 *
 * Families are a singly linked list in registration order, series a list per family in creation
 * order. metric_with() compares label values linearly: families are small (bounded), and hot
 * paths keep the series handle instead of looking it up each time.
 */
#include "metrics.h"

#include "err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_NUM_MAX 40 /* longest formatted number */

struct metric_series {
    metric_t *fam; /* owning family */
    char *values[METRICS_MAX_LABELS]; /* label values (owned) */
    double value; /* counter or gauge value */
    double sum; /* histogram: sum of observations */
    uint64_t count; /* histogram: number of observations */
    uint64_t *buckets; /* histogram: per-bucket (not cumulative) counts, nbounds + 1 (owned) */
    metrics_read_fn *fn; /* callback for a callback-valued series, else NULL */
    void *arg; /* its argument */
    int which; /* its selector */
    metric_series_t *next; /* next series of the family */
};

struct metric {
    metrics_t *reg; /* owning registry */
    char *name; /* metric name (owned) */
    char *help; /* help text (owned) */
    metric_type_t type; /* counter, gauge or histogram */
    size_t nlabels; /* label names */
    char *labels[METRICS_MAX_LABELS]; /* their names (owned) */
    double *bounds; /* histogram upper bounds (owned) */
    size_t nbounds; /* how many */
    metric_series_t *series; /* first series */
    metric_series_t *last; /* last series (appends) */
    size_t nseries; /* how many */
    uint64_t dropped; /* series refused at the bound */
    size_t limit; /* series bound (METRICS_MAX_SERIES unless raised) */
    metric_t *next; /* next family */
};

struct metrics {
    metric_t *first; /* first family */
    metric_t *last; /* last family */
    size_t nfamilies; /* how many */
    metrics_collect_fn *collect[METRICS_MAX_COLLECTORS]; /* scrape-time collectors */
    void *collect_arg[METRICS_MAX_COLLECTORS]; /* their arguments */
    size_t ncollect; /* how many */
};

/* ---- names and numbers ---------------------------------------------------------------------- */

/* A metric name matches [a-zA-Z_:][a-zA-Z0-9_:]*, a label name [a-zA-Z_][a-zA-Z0-9_]* and does
 * not start with "__" (reserved). */
static bool s_valid_name(const char *s, bool label)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > METRICS_MAX_NAME || (label && strncmp(s, "__", 2) == 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0) && !(c == ':' && !label))
            return false;
    }
    return true;
}

/* Formats v as the Go client does for the values that matter: integers without a fraction,
 * others in the shortest of %.15g/%.17g that reads back exactly, and +Inf, -Inf, NaN. */
static const char *s_num(double v, char out[METRICS_NUM_MAX])
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, METRICS_NUM_MAX, "%.0f", v);
    else {
        snprintf(out, METRICS_NUM_MAX, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, METRICS_NUM_MAX, "%.17g", v);
    }
    return out;
}

/* Appends s escaped: backslash and newline always, double quote when `quote`. */
static int s_escape(buf_t *out, const char *s, bool quote)
{
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        if (*p == '\\')
            rc = buf_append(out, "\\\\", 2);
        else if (*p == '\n')
            rc = buf_append(out, "\\n", 2);
        else if (*p == '"' && quote)
            rc = buf_append(out, "\\\"", 2);
        else
            rc = buf_append(out, p, 1);
    }
    return rc;
}

/* ---- registry ------------------------------------------------------------------------------ */

metrics_t *metrics_new(void)
{
    return calloc(1, sizeof(metrics_t));
}

static void s_series_free(metric_series_t *s)
{
    for (size_t i = 0; i < METRICS_MAX_LABELS; i++)
        free(s->values[i]);
    free(s->buckets);
    free(s);
}

static void s_family_free(metric_t *f)
{
    for (metric_series_t *s = f->series, *n; s; s = n) {
        n = s->next;
        s_series_free(s);
    }
    for (size_t i = 0; i < METRICS_MAX_LABELS; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f->bounds);
    free(f);
}

void metrics_destroy(metrics_t **m_p)
{
    if (!m_p || !*m_p)
        return;
    for (metric_t *f = (*m_p)->first, *n; f; f = n) {
        n = f->next;
        s_family_free(f);
    }
    free(*m_p);
    *m_p = NULL;
}

static metric_t *s_register(metrics_t *m, metric_type_t type, const char *name, const char *help,
                            const char *const *labels, const double *bounds, size_t nbounds)
{
    if (!m || !s_valid_name(name, false) || m->nfamilies >= METRICS_MAX_FAMILIES ||
        (help && strlen(help) > METRICS_MAX_HELP) || nbounds > METRICS_MAX_BUCKETS ||
        (nbounds && !bounds))
        return NULL;
    if (metrics_find(m, name))
        return NULL;
    size_t nlabels = 0;
    for (; labels && labels[nlabels]; nlabels++) {
        if (nlabels == METRICS_MAX_LABELS || !s_valid_name(labels[nlabels], true) ||
            (type == METRIC_HISTOGRAM && strcmp(labels[nlabels], "le") == 0))
            return NULL;
        for (size_t j = 0; j < nlabels; j++)
            if (strcmp(labels[j], labels[nlabels]) == 0)
                return NULL;
    }
    for (size_t i = 0; i < nbounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return NULL;
    metric_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->reg = m;
    f->type = type;
    f->nlabels = nlabels;
    f->nbounds = nbounds;
    f->limit = METRICS_MAX_SERIES;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    bool ok = f->name && f->help;
    for (size_t i = 0; i < nlabels && ok; i++)
        ok = (f->labels[i] = strdup(labels[i])) != NULL;
    if (ok && nbounds) {
        f->bounds = malloc(nbounds * sizeof(double));
        ok = f->bounds != NULL;
        if (ok)
            memcpy(f->bounds, bounds, nbounds * sizeof(double));
    }
    /* A family without labels has its one series from the start, so it always shows. */
    if (!ok || (nlabels == 0 && !metric_with(f, NULL))) {
        s_family_free(f);
        return NULL;
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    m->nfamilies++;
    return f;
}

metric_t *metrics_counter(metrics_t *m, const char *name, const char *help,
                          const char *const *labels)
{
    return s_register(m, METRIC_COUNTER, name, help, labels, NULL, 0);
}

metric_t *metrics_gauge(metrics_t *m, const char *name, const char *help, const char *const *labels)
{
    return s_register(m, METRIC_GAUGE, name, help, labels, NULL, 0);
}

metric_t *metrics_histogram(metrics_t *m, const char *name, const char *help,
                            const char *const *labels, const double *bounds, size_t nbounds)
{
    return s_register(m, METRIC_HISTOGRAM, name, help, labels, bounds, nbounds);
}

metric_t *metrics_find(metrics_t *m, const char *name)
{
    for (metric_t *f = m && name ? m->first : NULL; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* ---- series -------------------------------------------------------------------------------- */

static metric_series_t *s_find(metric_t *fam, const char *const *values)
{
    for (metric_series_t *s = fam->series; s; s = s->next) {
        size_t i = 0;
        while (i < fam->nlabels && strcmp(s->values[i], values[i]) == 0)
            i++;
        if (i == fam->nlabels)
            return s;
    }
    return NULL;
}

/* Checks the label values. Returns 0, ERR_INVAL or ERR_TOOBIG. */
static int s_check_values(const metric_t *fam, const char *const *values)
{
    if (fam->nlabels && !values)
        return ERR_INVAL;
    for (size_t i = 0; i < fam->nlabels; i++) {
        if (!values[i])
            return ERR_INVAL;
        if (strlen(values[i]) > METRICS_MAX_VALUE)
            return ERR_TOOBIG;
    }
    return 0;
}

/* Makes a new series (values checked, not present). Returns it or NULL (*rc set). */
static metric_series_t *s_make(metric_t *fam, const char *const *values, int *rc)
{
    if (fam->nseries >= fam->limit) {
        fam->dropped++;
        *rc = ERR_TOOBIG;
        return NULL;
    }
    *rc = ERR_NOMEM;
    metric_series_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->fam = fam;
    bool ok = true;
    for (size_t i = 0; i < fam->nlabels && ok; i++)
        ok = (s->values[i] = strdup(values[i])) != NULL;
    if (ok && fam->type == METRIC_HISTOGRAM)
        ok = (s->buckets = calloc(fam->nbounds + 1, sizeof(uint64_t))) != NULL;
    if (!ok) {
        s_series_free(s);
        return NULL;
    }
    if (fam->last)
        fam->last->next = s;
    else
        fam->series = s;
    fam->last = s;
    fam->nseries++;
    *rc = 0;
    return s;
}

metric_series_t *metric_with(metric_t *fam, const char *const *values)
{
    if (!fam || s_check_values(fam, values) != 0)
        return NULL;
    metric_series_t *s = s_find(fam, values);
    int rc;
    return s ? s : s_make(fam, values, &rc);
}

metric_series_t *metric_append(metric_t *fam, const char *const *values)
{
    int rc;
    if (!fam || s_check_values(fam, values) != 0)
        return NULL;
    return s_make(fam, values, &rc);
}

int metric_set_limit(metric_t *fam, size_t max)
{
    if (!fam || max == 0 || max > METRICS_MAX_SERIES_LIMIT)
        return ERR_INVAL;
    fam->limit = max;
    return 0;
}

void metric_clear(metric_t *fam)
{
    if (!fam || fam->nlabels == 0)
        return;
    for (metric_series_t *s = fam->series, *n; s; s = n) {
        n = s->next;
        s_series_free(s);
    }
    fam->series = fam->last = NULL;
    fam->nseries = 0;
}

int metrics_add_collector(metrics_t *m, metrics_collect_fn *fn, void *arg)
{
    if (!m || !fn)
        return ERR_INVAL;
    if (m->ncollect >= METRICS_MAX_COLLECTORS)
        return ERR_TOOBIG;
    m->collect[m->ncollect] = fn;
    m->collect_arg[m->ncollect++] = arg;
    return 0;
}

int metrics_collect(metrics_t *m)
{
    int first = 0;
    for (size_t i = 0; m && i < m->ncollect; i++) {
        int rc = m->collect[i](m->collect_arg[i]);
        if (rc != 0 && first == 0)
            first = rc;
    }
    return first;
}

int metric_series_fn(metric_t *fam, const char *const *values, metrics_read_fn *fn, void *arg,
                     int which)
{
    if (!fam || !fn || fam->type == METRIC_HISTOGRAM)
        return ERR_INVAL;
    int rc = s_check_values(fam, values);
    if (rc != 0)
        return rc;
    metric_series_t *s = s_find(fam, values);
    /* The series a label-less family makes at registration may become callback-valued once. */
    if (s && (s->fn || fam->nlabels))
        return ERR_EXISTS;
    if (!s && !(s = s_make(fam, values, &rc)))
        return rc;
    s->fn = fn;
    s->arg = arg;
    s->which = which;
    return 0;
}

int metric_add(metric_series_t *s, double v)
{
    if (!s || s->fn || s->fam->type == METRIC_HISTOGRAM ||
        (s->fam->type == METRIC_COUNTER && !(v >= 0)))
        return ERR_INVAL;
    s->value += v;
    return 0;
}

int metric_set(metric_series_t *s, double v)
{
    if (!s || s->fn || s->fam->type != METRIC_GAUGE)
        return ERR_INVAL;
    s->value = v;
    return 0;
}

int metric_observe(metric_series_t *s, double v)
{
    if (!s || s->fam->type != METRIC_HISTOGRAM)
        return ERR_INVAL;
    size_t i = 0;
    while (i < s->fam->nbounds && v > s->fam->bounds[i])
        i++;
    s->buckets[i]++;
    s->count++;
    s->sum += v;
    return 0;
}

double metric_value(const metric_series_t *s)
{
    if (!s)
        return 0;
    if (s->fn)
        return s->fn(s->arg, s->which);
    return s->fam->type == METRIC_HISTOGRAM ? (double)s->count : s->value;
}

uint64_t metric_dropped(const metric_t *fam)
{
    return fam ? fam->dropped : 0;
}

/* ---- rendering ----------------------------------------------------------------------------- */

/* Appends `name[suffix]{labels[,le="le"]} value\n`. */
static int s_line(buf_t *out, const metric_series_t *s, const char *suffix, const char *le,
                  double v)
{
    const metric_t *f = s->fam;
    int rc = buf_puts(out, f->name);
    if (rc == 0 && suffix)
        rc = buf_puts(out, suffix);
    if (rc == 0 && (f->nlabels || le)) {
        rc = buf_append(out, "{", 1);
        for (size_t i = 0; i < f->nlabels && rc == 0; i++) {
            rc = buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
            if (rc == 0)
                rc = s_escape(out, s->values[i], true);
            if (rc == 0)
                rc = buf_append(out, "\"", 1);
        }
        if (rc == 0 && le)
            rc = buf_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
        if (rc == 0)
            rc = buf_append(out, "}", 1);
    }
    char num[METRICS_NUM_MAX];
    if (rc == 0)
        rc = buf_printf(out, " %s\n", s_num(v, num));
    return rc;
}

static int s_render_series(buf_t *out, const metric_series_t *s)
{
    const metric_t *f = s->fam;
    if (f->type != METRIC_HISTOGRAM)
        return s_line(out, s, NULL, NULL, metric_value(s));
    int rc = 0;
    uint64_t cum = 0;
    char le[METRICS_NUM_MAX];
    for (size_t i = 0; i <= f->nbounds && rc == 0; i++) {
        cum += s->buckets[i];
        const char *bound = i < f->nbounds ? s_num(f->bounds[i], le) : "+Inf";
        rc = s_line(out, s, "_bucket", bound, (double)cum);
    }
    if (rc == 0)
        rc = s_line(out, s, "_sum", NULL, s->sum);
    if (rc == 0)
        rc = s_line(out, s, "_count", NULL, (double)s->count);
    return rc;
}

int metrics_render(const metrics_t *m, buf_t *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    int rc = 0;
    for (const metric_t *f = m ? m->first : NULL; f && rc == 0; f = f->next) {
        if (!f->series)
            continue;
        rc = buf_printf(out, "# HELP %s ", f->name);
        if (rc == 0)
            rc = s_escape(out, f->help, false);
        if (rc == 0)
            rc = buf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
        for (const metric_series_t *s = f->series; s && rc == 0; s = s->next)
            rc = s_render_series(out, s);
    }
    bool header = false;
    for (const metric_t *f = m ? m->first : NULL; f && rc == 0; f = f->next) {
        if (!f->dropped)
            continue;
        if (!header)
            rc = buf_puts(out, "# HELP rayfleet_metrics_series_dropped_total Series refused at "
                               "their family's bound (not exported).\n"
                               "# TYPE rayfleet_metrics_series_dropped_total counter\n");
        header = true;
        char num[METRICS_NUM_MAX];
        if (rc == 0)
            rc = buf_printf(out, "rayfleet_metrics_series_dropped_total{metric=\"%s\"} %s\n",
                            f->name, s_num((double)f->dropped, num));
    }
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ----------------------------------------------------------------------------- */

static double t_read(void *arg, int which)
{
    const uint64_t *vals = arg;
    return (double)vals[which];
}

/* Refills rf_objs with 3,002 objects (3,000 fit). */
static int t_collect(void *arg)
{
    metric_t *fam = arg;
    metric_clear(fam);
    for (int i = 0; i < 3002; i++) {
        char v[16];
        snprintf(v, sizeof(v), "o%d", i);
        metric_set(metric_append(fam, (const char *const[]){v}), 1);
    }
    return 0;
}

int metrics_test(bool verbose)
{
    int failed = 0;
    metrics_t *m = metrics_new();
    CHECK(m != NULL);
    buf_t out;
    buf_init(&out, 1 << 20);
    CHECK(metrics_render(m, &out) == 0 && out.len == 0);

    /* Registration: names, duplicates, label names, bounds. */
    metric_t *req = metrics_counter(m, "rf_requests_total", "Requests served.",
                                    (const char *const[]){"code", "path", NULL});
    CHECK(req != NULL);
    CHECK(metrics_counter(m, "rf_requests_total", "again", NULL) == NULL);
    CHECK(metrics_find(m, "rf_requests_total") == req);
    CHECK(metrics_find(m, "rf_nothing") == NULL);
    CHECK(metrics_gauge(m, "9bad", "x", NULL) == NULL);
    CHECK(metrics_gauge(m, "bad-name", "x", NULL) == NULL);
    CHECK(metrics_gauge(m, "", "x", NULL) == NULL);
    CHECK(metrics_gauge(m, "ok", "x", (const char *const[]){"__reserved", NULL}) == NULL);
    CHECK(metrics_gauge(m, "ok", "x", (const char *const[]){"a:b", NULL}) == NULL);
    CHECK(metrics_gauge(m, "ok", "x", (const char *const[]){"a", "a", NULL}) == NULL);
    CHECK(metrics_gauge(m, "ok", "x",
                        (const char *const[]){"a", "b", "c", "d", "e", "f", "g", NULL}) == NULL);
    CHECK(metrics_histogram(m, "h", "x", (const char *const[]){"le", NULL}, NULL, 0) == NULL);
    CHECK(metrics_histogram(m, "h", "x", NULL, (const double[]){1, 1}, 2) == NULL);
    CHECK(metrics_histogram(m, "h", "x", NULL, (const double[]){1, INFINITY}, 2) == NULL);

    /* Counters: label values escaped, steps must not be negative. */
    metric_series_t *ok = metric_with(req, (const char *const[]){"200", "/a\"b\\c\nd"});
    CHECK(ok != NULL);
    CHECK(metric_with(req, (const char *const[]){"200", "/a\"b\\c\nd"}) == ok);
    CHECK(metric_with(req, NULL) == NULL);
    CHECK(metric_with(req, (const char *const[]){"200", NULL}) == NULL);
    CHECK(metric_add(ok, 2) == 0 && metric_add(ok, 1.5) == 0);
    CHECK(metric_add(ok, -1) == ERR_INVAL);
    CHECK(metric_add(ok, NAN) == ERR_INVAL);
    CHECK(metric_set(ok, 1) == ERR_INVAL);
    CHECK(metric_observe(ok, 1) == ERR_INVAL);
    CHECK(metric_value(ok) == 3.5);
    CHECK(metric_add(metric_with(req, (const char *const[]){"404", "/"}), 1) == 0);

    /* A gauge without labels shows from the start; help text escaped. */
    metric_t *temp = metrics_gauge(m, "rf_temp", "Line one\\two\nthree \"q\"", NULL);
    CHECK(temp != NULL);
    metric_series_t *t = metric_with(temp, NULL);
    CHECK(metric_set(t, -0.25) == 0 && metric_add(t, 0.125) == 0);
    CHECK(metric_value(t) == -0.125);

    /* Histogram. */
    metric_t *lat =
        metrics_histogram(m, "rf_latency_seconds", "Latency.", (const char *const[]){"op", NULL},
                          (const double[]){0.005, 0.1, 1, 2.5}, 4);
    CHECK(lat != NULL);
    metric_series_t *h = metric_with(lat, (const char *const[]){"get"});
    CHECK(metric_observe(h, 0.005) == 0 && metric_observe(h, 0.05) == 0);
    CHECK(metric_observe(h, 2) == 0 && metric_observe(h, 100) == 0);
    CHECK(metric_add(h, 1) == ERR_INVAL);
    CHECK(metric_value(h) == 4);

    /* Callback-valued series, read at render time. */
    uint64_t vals[2] = {7, 11};
    metric_t *ev = metrics_counter(m, "rf_events_total", "Events.", NULL);
    CHECK(metric_series_fn(ev, NULL, t_read, vals, 0) == 0);
    CHECK(metric_series_fn(ev, NULL, t_read, vals, 1) == ERR_EXISTS);
    CHECK(metric_add(metric_with(ev, NULL), 1) == ERR_INVAL);
    metric_t *q = metrics_gauge(m, "rf_queue", "Queue sizes.", (const char *const[]){"q", NULL});
    CHECK(metric_series_fn(q, (const char *const[]){"pending"}, t_read, vals, 1) == 0);
    CHECK(metric_series_fn(q, (const char *const[]){"pending"}, t_read, vals, 1) == ERR_EXISTS);
    CHECK(metric_series_fn(lat, (const char *const[]){"x"}, t_read, vals, 1) == ERR_INVAL);
    vals[0] = 8;
    /* A labelled family with no series is left out. */
    CHECK(metrics_gauge(m, "rf_empty", "Nothing yet.", (const char *const[]){"x", NULL}) != NULL);
    CHECK(metrics_gauge(m, "rf_big", "Big.", NULL) != NULL);
    CHECK(metric_set(metric_with(metrics_gauge(m, "rf_frac", "F.", NULL), NULL), 0.1) == 0);
    metric_set(metric_with(metrics_gauge(m, "rf_inf", "I.", NULL), NULL), -INFINITY);

    CHECK(metrics_render(m, &out) == 0);
    const char *want = "# HELP rf_requests_total Requests served.\n"
                       "# TYPE rf_requests_total counter\n"
                       "rf_requests_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"} 3.5\n"
                       "rf_requests_total{code=\"404\",path=\"/\"} 1\n"
                       "# HELP rf_temp Line one\\\\two\\nthree \"q\"\n"
                       "# TYPE rf_temp gauge\n"
                       "rf_temp -0.125\n"
                       "# HELP rf_latency_seconds Latency.\n"
                       "# TYPE rf_latency_seconds histogram\n"
                       "rf_latency_seconds_bucket{op=\"get\",le=\"0.005\"} 1\n"
                       "rf_latency_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
                       "rf_latency_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
                       "rf_latency_seconds_bucket{op=\"get\",le=\"2.5\"} 3\n"
                       "rf_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
                       "rf_latency_seconds_sum{op=\"get\"} 102.055\n"
                       "rf_latency_seconds_count{op=\"get\"} 4\n"
                       "# HELP rf_events_total Events.\n"
                       "# TYPE rf_events_total counter\n"
                       "rf_events_total 8\n"
                       "# HELP rf_queue Queue sizes.\n"
                       "# TYPE rf_queue gauge\n"
                       "rf_queue{q=\"pending\"} 11\n"
                       "# HELP rf_big Big.\n"
                       "# TYPE rf_big gauge\n"
                       "rf_big 0\n"
                       "# HELP rf_frac F.\n"
                       "# TYPE rf_frac gauge\n"
                       "rf_frac 0.1\n"
                       "# HELP rf_inf I.\n"
                       "# TYPE rf_inf gauge\n"
                       "rf_inf -Inf\n";
    CHECK(strcmp(buf_str(&out), want) == 0);
    if (verbose || strcmp(buf_str(&out), want) != 0)
        printf("%s", buf_str(&out));

    /* A histogram without labels, and numbers that need 17 digits or are large. */
    metric_t *h2 = metrics_histogram(m, "rf_h2", "H2.", NULL, NULL, 0);
    CHECK(h2 != NULL && metric_observe(metric_with(h2, NULL), 3) == 0);
    metric_set(metric_with(metrics_gauge(m, "rf_third", "T.", NULL), NULL), 1.0 / 3);
    metric_set(metric_with(metrics_gauge(m, "rf_huge", "U.", NULL), NULL), 1e20);
    buf_reset(&out);
    CHECK(metrics_render(m, &out) == 0);
    CHECK(strstr(buf_str(&out), "\nrf_h2_bucket{le=\"+Inf\"} 1\nrf_h2_sum 3\nrf_h2_count 1\n"));
    CHECK(strstr(buf_str(&out), "\nrf_third 0.33333333333333331\n"));
    CHECK(strstr(buf_str(&out), "\nrf_huge 1e+20\n"));

    /* Bounds: label value length, series per family, output buffer. */
    char longv[METRICS_MAX_VALUE + 2];
    memset(longv, 'v', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    CHECK(metric_with(q, (const char *const[]){longv}) == NULL);
    CHECK(metric_series_fn(q, (const char *const[]){longv}, t_read, vals, 0) == ERR_TOOBIG);
    metric_t *many = metrics_counter(m, "rf_many", "M.", (const char *const[]){"i", NULL});
    size_t made = 0;
    for (int i = 0; i < METRICS_MAX_SERIES + 5; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        if (metric_with(many, (const char *const[]){v}))
            made++;
    }
    CHECK(made == METRICS_MAX_SERIES);
    CHECK(metric_dropped(many) == 5);
    CHECK(metric_with(many, (const char *const[]){"0"}) != NULL); /* existing ones still found */
    buf_reset(&out);
    CHECK(metrics_render(m, &out) == 0);
    CHECK(strstr(buf_str(&out), "\nrayfleet_metrics_series_dropped_total{metric=\"rf_many\"} 5\n"));

    /* A scrape-time collector: cleared and refilled on each collect, past the default bound. */
    metric_t *objs = metrics_gauge(m, "rf_objs", "O.", (const char *const[]){"name", NULL});
    CHECK(objs && metric_set_limit(objs, 3000) == 0);
    CHECK(metric_set_limit(objs, METRICS_MAX_SERIES_LIMIT + 1) == ERR_INVAL);
    CHECK(metrics_add_collector(m, t_collect, objs) == 0);
    for (int round = 0; round < 2; round++) {
        CHECK(metrics_collect(m) == 0);
        buf_reset(&out);
        CHECK(metrics_render(m, &out) == 0);
        CHECK(strstr(buf_str(&out), "\nrf_objs{name=\"o0\"} 1\n") != NULL);
        CHECK(strstr(buf_str(&out), "\nrf_objs{name=\"o2999\"} 1\n") != NULL);
        CHECK(strstr(buf_str(&out), "rf_objs{name=\"o3000\"}") == NULL);
        CHECK(metric_dropped(objs) == (uint64_t)(round + 1) * 2);
    }
    CHECK(strstr(buf_str(&out), "\nrayfleet_metrics_series_dropped_total{metric=\"rf_objs\"} 4\n"));
    buf_t small;
    buf_init(&small, 64);
    CHECK(metrics_render(m, &small) == ERR_TOOBIG);
    buf_free(&small);

    buf_free(&out);
    metrics_destroy(&m);
    CHECK(m == NULL);
    metrics_destroy(&m);
    return SELFTEST_RESULT("metrics", verbose);
}

#endif /* RF_SELFTEST */
