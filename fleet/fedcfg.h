/*
 * fedcfg: the `federation:` configuration of the rayfleet set: the management cluster, the
 * member clusters, the placement strategy, the priority classes and the tenants' queues.
 *
 * The set file is loaded as YAML into a jansson tree; fedcfg_parse() reads the value of its
 * top-level `federation:` key:
 *
 *   federation:
 *     management: {name: management, context: management}   # kubeconfig optional
 *     members:
 *       - {name: member-1, context: member-1, kubeconfig: PATH, labels: {region: us-east}}
 *     placement: {strategy: spread}          # spread (default) | pack
 *     priorities: {high: 1000, default: 0, low: -100}
 *     queues:
 *       - name: team-a
 *         namespaces: [team-a]
 *         weight: 1                          # > 0, default 1
 *         cohort: research                   # optional
 *         quota: {cpu: 64, memory: 256Gi, gpu: 8}   # nominal; an absent dimension is unlimited
 *         borrowingLimit: {cpu: 32}          # needs a cohort; absent: unlimited borrowing
 *
 * Rules (each error names the path and the rule, e.g. `federation.queues[2].weight: must be
 * greater than 0`, prefixed `file:line:column: ` when the caller gives the document's marks from
 * yaml_load_buf_marks()): unknown keys are refused at every level; cluster, queue, cohort and
 * priority names and namespaces are DNS-1123 labels; member names are unique and differ from the
 * management cluster's; at least one member; a namespace is in at most one queue; member labels
 * are Kubernetes labels (qualified-name keys, label values); priorities are int32; quotas use
 * fleet_res_parse_quota's names and quantities; a borrowingLimit needs a cohort and, per
 * dimension, a quota. Bounds: FEDCFG_MAX_* below. `context` defaults to the cluster's name.
 *
 * A queue named "default" (weight 1, no quota, no cohort) is added when none is configured: it
 * holds the work of namespaces in no queue. Objects name their queue with the label
 * kueue.x-k8s.io/queue-name (else by namespace) and their priority with
 * kueue.x-k8s.io/priority-class (else the priority named "default", else 0).
 *
 * Purity: no clock, no globals, and no I/O but fedcfg_load()'s one read of the file. The input
 * trees are borrowed.
 */
#ifndef RF_FLEET_FEDCFG_H
#define RF_FLEET_FEDCFG_H

#include "buf.h"
#include "place.h"
#include "res.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FEDCFG_MAX_MEMBERS 256
#define FEDCFG_MAX_QUEUES 1024
#define FEDCFG_MAX_PRIORITIES 256
/* The most namespaces over all queues. */
#define FEDCFG_MAX_NAMESPACES 16384
/* The most labels of one member. */
#define FEDCFG_MAX_LABELS 64
/* The longest context name and kubeconfig path. */
#define FEDCFG_MAX_TEXT 4096
/* The largest queue weight. */
#define FEDCFG_MAX_WEIGHT 1000000.0
/* A quota or borrowing limit dimension without a bound. */
#define FEDCFG_UNLIMITED INT64_MAX
/* The largest federation file fedcfg_load() reads. */
#define FEDCFG_MAX_FILE (1u << 20)

#define FEDCFG_DEFAULT_QUEUE "default"
#define FEDCFG_DEFAULT_PRIORITY "default"
#define FEDCFG_LABEL_QUEUE "kueue.x-k8s.io/queue-name"
#define FEDCFG_LABEL_PRIORITY "kueue.x-k8s.io/priority-class"

typedef struct {
    char *name; /* DNS-1123 label (owned) */
    char *context; /* kubeconfig context (owned; the name when not written) */
    char *kubeconfig; /* kubeconfig path (owned; NULL: the set's default) */
    json_t *labels; /* owned; {} when none (the management cluster's always {}) */
} fedcfg_cluster_t;

typedef struct {
    char *name; /* owned */
    int32_t value; /* higher is more important */
} fedcfg_priority_t;

typedef struct {
    char *name; /* owned */
    char **namespaces; /* owned */
    size_t nnamespaces;
    double weight; /* > 0 */
    char *cohort; /* owned; NULL: none */
    fleet_res_t quota; /* nominal quota; FEDCFG_UNLIMITED per dimension without one */
    fleet_res_t borrowing_limit; /* 0 without a cohort; FEDCFG_UNLIMITED where not written */
    bool implicit; /* the "default" queue added because none was configured */
} fedcfg_queue_t;

typedef struct {
    fedcfg_cluster_t management;
    fedcfg_cluster_t *members; /* owned */
    size_t nmembers;
    fleet_strategy_t strategy; /* place.h */
    fedcfg_priority_t *priorities; /* owned */
    size_t npriorities;
    fedcfg_queue_t *queues; /* owned; "default" among them */
    size_t nqueues;
} fedcfg_t;

/* Parses `federation` (the value of the set file's `federation:` key) into *out (zeroed first;
 * fedcfg_free() it, also after a failure). `marks` (may be NULL) are the whole document's
 * positions from yaml_load_buf_marks(), `file` (may be NULL) its name for the error prefix.
 * Returns 0, ERR_INVAL with one line in `err`, or ERR_NOMEM. */
int fedcfg_parse(const json_t *federation, const json_t *marks, const char *file, fedcfg_t *out,
                 buf_t *err);

/* Reads the YAML file `path` (at most FEDCFG_MAX_FILE bytes; the module's one read of a file,
 * through common/yaml) and parses its top-level `federation:` key as fedcfg_parse() does, errors
 * prefixed with file:line:column. A file without members is refused ("federation.members: must
 * be a non-empty list"). Returns 0, ERR_NOTFOUND / ERR_IO (no such file: one line in err),
 * ERR_INVAL or ERR_NOMEM; fedcfg_free() *out in every case. */
int fedcfg_load(const char *path, fedcfg_t *out, buf_t *err);

/* Releases what *c owns and zeroes it. NULL-safe. */
void fedcfg_free(fedcfg_t *c);

/* The member named `name`, or NULL. */
const fedcfg_cluster_t *fedcfg_member(const fedcfg_t *c, const char *name);

/* The queue of an object in namespace `ns` with `labels` (may be NULL): the queue its
 * kueue.x-k8s.io/queue-name label names, else its namespace's, else "default". Returns 0 with the
 * index in *idx, or ERR_NOTFOUND with a line in `err` when the label names no queue (the object
 * waits, as Kueue leaves a workload of an unknown LocalQueue pending). */
int fedcfg_queue_of(const fedcfg_t *c, const char *ns, const json_t *labels, size_t *idx,
                    buf_t *err);

/* The priority of an object with `labels`: the value of the class its
 * kueue.x-k8s.io/priority-class label names, else of the class "default", else 0. Returns 0, or
 * ERR_NOTFOUND with a line in `err` when the label names no class. */
int fedcfg_priority_of(const fedcfg_t *c, const json_t *labels, int32_t *out, buf_t *err);

#endif
