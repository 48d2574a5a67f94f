/*
 * metrics: a registry of counters, gauges and histograms, written in the Prometheus text
 * exposition format 0.0.4 (what /metrics of common/opsrv serves).
 *
 * A family (metric_t) has a name, a help text, a type and a fixed set of at most
 * METRICS_MAX_LABELS label names, given at registration. A series (metric_series_t) is one
 * combination of label values; it is made on first use by metric_with() and lives as long as the
 * registry. Each family holds at most METRICS_MAX_SERIES series (label values come from outside
 * input such as cluster or namespace names, so the bound keeps memory fixed); past it,
 * metric_with() returns NULL and the family counts the refusal in its `dropped` field.
 *
 * Values are doubles, as in the Prometheus clients. A series may instead be callback-valued
 * (metric_series_fn): its value is read when the registry is rendered, so a service exports the
 * counters it keeps already without keeping them twice.
 *
 * Scrape-time collectors: a family whose series describe objects (KubeRay's kuberay_cluster_info
 * lists every RayCluster at scrape time) is refilled by a collector that metrics_collect() runs
 * before each render: it empties its families with metric_clear() and appends the current series
 * with metric_append(), which does not look for an existing series (the collector knows each is
 * new), so tens of thousands of series cost one pass. Such families raise their bound with
 * metric_set_limit() (up to METRICS_MAX_SERIES_LIMIT).
 *
 * Never silent: a series refused at a family's bound is counted in the family (cumulative, kept
 * across metric_clear()), and every render ends with rayfleet_metrics_series_dropped_total{metric}
 * for each family that has refused one.
 *
 * Rendering: families in registration order, each with "# HELP" and "# TYPE" lines, then its
 * series in creation order. A family without labels always has its one series (0 until set); a
 * labelled family with no series yet is left out, as the Go client does. Label values escape
 * backslash, double quote and newline; help texts escape backslash and newline. Histograms write
 * cumulative `_bucket{le="..."}` lines ending with le="+Inf", then `_sum` and `_count`.
 *
 * Single-threaded, like everything on the loop. Handles returned here are borrowed from the
 * registry and valid until metrics_destroy().
 */
#ifndef RF_METRICS_H
#define RF_METRICS_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_MAX_FAMILIES 256 /* families per registry */
#define METRICS_MAX_LABELS 6 /* label names per family */
#define METRICS_MAX_SERIES 1024 /* series per family */
#define METRICS_MAX_BUCKETS 48 /* histogram bounds per family (+Inf not counted) */
#define METRICS_MAX_NAME 128 /* longest metric or label name */
#define METRICS_MAX_VALUE 256 /* longest label value */
#define METRICS_MAX_HELP 512 /* longest help text */
#define METRICS_MAX_SERIES_LIMIT 1000000 /* highest per-family bound metric_set_limit() takes */
#define METRICS_MAX_COLLECTORS 16 /* scrape-time collectors per registry */

typedef struct metrics metrics_t;
typedef struct metric metric_t;
typedef struct metric_series metric_series_t;

typedef enum {
    METRIC_COUNTER = 0, /* only goes up (metric_add with v >= 0) */
    METRIC_GAUGE, /* goes up and down (metric_set, metric_add) */
    METRIC_HISTOGRAM /* observations counted in buckets (metric_observe) */
} metric_type_t;

/* Reads a callback-valued series at render time. `which` is the value given at registration, so
 * one function can serve a table of values. */
typedef double(metrics_read_fn)(void *arg, int which);

/* A new, empty registry, or NULL when out of memory. */
metrics_t *metrics_new(void);

/* Frees the registry with every family and series; NULLs *m_p. NULL-safe. */
void metrics_destroy(metrics_t **m_p);

/* Registers a counter or gauge family. `labels` is a NULL-terminated list of label names (NULL:
 * none). Returns the family (borrowed), or NULL when a name is invalid, the name is registered
 * already, a bound is passed, or out of memory. */
metric_t *metrics_counter(metrics_t *m, const char *name, const char *help,
                          const char *const *labels);
metric_t *metrics_gauge(metrics_t *m, const char *name, const char *help,
                        const char *const *labels);

/* Registers a histogram family with `nbounds` strictly increasing finite upper bounds (the +Inf
 * bucket is implicit). NULL as above, or when the bounds are not increasing. */
metric_t *metrics_histogram(metrics_t *m, const char *name, const char *help,
                            const char *const *labels, const double *bounds, size_t nbounds);

/* The family registered under `name`, or NULL. */
metric_t *metrics_find(metrics_t *m, const char *name);

/* The series of `fam` with these label values (one per label name, in order; NULL when the
 * family has no labels), made on first use. NULL when a value is NULL or longer than
 * METRICS_MAX_VALUE, at the series bound, or out of memory. */
metric_series_t *metric_with(metric_t *fam, const char *const *values);

/* Adds v to a counter (v >= 0) or gauge series. Returns 0 or ERR_INVAL (negative counter step,
 * a histogram, or a callback-valued series). */
int metric_add(metric_series_t *s, double v);

/* Sets a gauge series. Returns 0 or ERR_INVAL (not a plain gauge series). */
int metric_set(metric_series_t *s, double v);

/* Records one observation in a histogram series. Returns 0 or ERR_INVAL (not a histogram). */
int metric_observe(metric_series_t *s, double v);

/* The current value of a counter or gauge series (callback-valued ones are read now); the
 * observation count of a histogram series. */
double metric_value(const metric_series_t *s);

/* Makes the series of `fam` with these label values callback-valued: fn(arg, which) is read at
 * each render. Counter and gauge families only. Returns 0, ERR_INVAL, ERR_EXISTS (the series
 * exists already) or ERR_NOMEM/ERR_TOOBIG as metric_with(). */
int metric_series_fn(metric_t *fam, const char *const *values, metrics_read_fn *fn, void *arg,
                     int which);

/* Sets the series bound of `fam` (default METRICS_MAX_SERIES) to max, at most
 * METRICS_MAX_SERIES_LIMIT. Returns 0 or ERR_INVAL. */
int metric_set_limit(metric_t *fam, size_t max);

/* Removes every series of a labelled family (its dropped count stays). NULL-safe. */
void metric_clear(metric_t *fam);

/* Appends a series with these label values without looking for an existing one (the caller
 * guarantees they are new, e.g. refilling a cleared family). NULL as metric_with(). */
metric_series_t *metric_append(metric_t *fam, const char *const *values);

/* A scrape-time collector: refills its families (metric_clear, metric_append, metric_set).
 * Returns 0 or an err_t (the render goes on with what it has). */
typedef int(metrics_collect_fn)(void *arg);

/* Adds a collector run by metrics_collect(). Returns 0, ERR_INVAL or ERR_TOOBIG (more than
 * METRICS_MAX_COLLECTORS). */
int metrics_add_collector(metrics_t *m, metrics_collect_fn *fn, void *arg);

/* Runs every collector in the order added (opsrv calls it before each render). Returns 0 or the
 * first collector error. */
int metrics_collect(metrics_t *m);

/* Series refused at the bound, for tests and logs. */
uint64_t metric_dropped(const metric_t *fam);

/* Appends the whole registry in the text format to `out`. Returns 0 or the buffer's error
 * (ERR_TOOBIG when `out` is full). */
int metrics_render(const metrics_t *m, buf_t *out);

/* Self-test. */
int metrics_test(bool verbose);

#endif
