/*
 * evcorr: the Event correlator of the controller runtime, client-go's EventCorrelator
 * (tools/record/events_cache.go) reimplemented: every Event ctrl records goes through it first.
 *
 *   1. aggregation: Events alike but for their message (same source, involved object, type,
 *      reason, reporting controller and instance) are "similar". Once EVCORR_AGG_MAX distinct
 *      messages of one similar group were seen less than EVCORR_AGG_INTERVAL_MS apart, each further
 *      Event of the group becomes one combined Event, message "(combined from similar events):
 *      <msg>", counted under the group's key (so the next one patches it).
 *   2. deduplication: an Event identical to one already recorded (same source, involved object,
 *      type, reason and message; or the same combined group) is not a new object: the recorded
 *      one is patched with count + 1 and a new lastTimestamp (firstTimestamp and name kept).
 *   3. spam filter: a token bucket per (source, involved object), burst EVCORR_SPAM_BURST,
 *      refilled at one token per EVCORR_SPAM_REFILL_MS; an Event finding it empty is dropped
 *      (client-go's order: counted by 2 first, then filtered).
 *
 * Each of the three caches is a least-recently-used table of at most `cap` entries
 * (EVCORR_CACHE_MAX as client-go); keys are SHA-1 digests of the fields, so an entry's size does
 * not depend on the message. The clock is the caller's (wall milliseconds), for tests.
 */
#ifndef RF_EVCORR_H
#define RF_EVCORR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVCORR_CACHE_MAX 4096 /* entries of each LRU cache (client-go maxLruCacheEntries) */
#define EVCORR_AGG_MAX 10 /* distinct messages of similar Events before combining */
#define EVCORR_AGG_INTERVAL_MS (600 * 1000) /* a similar group older than this starts over */
#define EVCORR_SPAM_BURST 25 /* Events per source and object at once */
#define EVCORR_SPAM_REFILL_MS (300 * 1000) /* one more token per this long */
#define EVCORR_NAME_MAX 512 /* longest Event name kept, NUL included */
#define EVCORR_KEY_LEN 41 /* a cache key as text: 40 hex digits and NUL */
#define EVCORR_COMBINED_PREFIX "(combined from similar events): "

typedef struct evcorr evcorr_t;

/* The fields of an Event the correlator reads (NULL reads as ""). */
typedef struct {
    const char *component; /* source.component */
    const char *host; /* source.host */
    const char *api_version; /* involvedObject.apiVersion */
    const char *kind; /* involvedObject.kind */
    const char *ns; /* involvedObject.namespace */
    const char *name; /* involvedObject.name */
    const char *uid; /* involvedObject.uid */
    const char *type; /* "Normal" or "Warning" */
    const char *reason; /* reason */
    const char *message; /* message */
    const char *reporting_controller; /* reportingComponent */
    const char *reporting_instance; /* reportingInstance */
} evcorr_event_t;

/* What to do with an Event. */
typedef enum {
    EVCORR_CREATE = 1, /* create a new Event object named `name` with `count` */
    EVCORR_PATCH, /* patch Event `name` (recorded before) to `count`, lastTimestamp now */
    EVCORR_SKIP /* drop it: the spam filter's bucket for its object is empty */
} evcorr_action_t;

typedef struct {
    evcorr_action_t action; /* the decision */
    bool combined; /* the message is to be EVCORR_COMBINED_PREFIX + the message */
    char name[EVCORR_NAME_MAX]; /* CREATE, PATCH: the Event object's name */
    int64_t count; /* its count after this occurrence */
    int64_t first_ms; /* its firstTimestamp, wall ms */
    char key[EVCORR_KEY_LEN]; /* the deduplication key (evcorr_forget()) */
} evcorr_result_t;

/* A correlator with caches of `cap` entries each (0: EVCORR_CACHE_MAX). NULL out of memory. */
evcorr_t *evcorr_new(size_t cap);

/* Frees it and NULLs *e_p. NULL-safe. */
void evcorr_destroy(evcorr_t **e_p);

/* Correlates Event `ev` seen at wall time now_ms; `new_name` is the name a new object would get
 * (client-go: "<involved name>.<hex nanoseconds>"; a combined Event gets it too). Returns 0 or
 * ERR_INVAL / ERR_NOMEM (out is then a plain EVCORR_CREATE of new_name, count 1). */
int evcorr_correlate(evcorr_t *e, const evcorr_event_t *ev, const char *new_name, int64_t now_ms,
                     evcorr_result_t *out);

/* Forgets what `key` recorded (the Event could not be written: the next occurrence creates it
 * anew). */
void evcorr_forget(evcorr_t *e, const char *key);

/* Entries in the (aggregation, deduplication, spam) caches; for tests and stats. */
void evcorr_sizes(const evcorr_t *e, size_t *agg, size_t *dedup, size_t *spam);

/* Self-test: deduplication, similar aggregation and its interval, the spam filter and its refill,
 * the LRU bound and recency. */
int evcorr_test(bool verbose);

#endif
