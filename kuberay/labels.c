/*
 * labels: see labels.h. The names are macros; this file holds the one rule about them and the
 * self-test that every name is a valid Kubernetes key, every fixed value a valid label value, and
 * no two names collide.
 */
#include "labels.h"

#include <string.h>

#include "buf.h"
#include "selector.h"

bool labels_is_protected(const char *key)
{
    return key && (strcmp(key, LABEL_NODE_TYPE) == 0 || strcmp(key, LABEL_GROUP) == 0 ||
                   strcmp(key, LABEL_CLUSTER) == 0);
}

#ifdef RF_SELFTEST
#include "selftest.h"

int labels_test(bool verbose)
{
    int failed = 0;
    static const char *const keys[] = {
        LABEL_CLUSTER,
        LABEL_NODE_TYPE,
        LABEL_GROUP,
        LABEL_IDENTIFIER,
        LABEL_IS_RAY_NODE,
        LABEL_APP_NAME,
        LABEL_CREATED_BY,
        LABEL_HEADLESS_WORKER_SVC,
        LABEL_ORIGINATED_FROM_CR_NAME,
        LABEL_ORIGINATED_FROM_CRD,
        LABEL_SERVE,
        LABEL_REPLICA_INDEX,
        LABEL_REPLICA_NAME,
        LABEL_HOST_INDEX,
        LABEL_JOB_SUBMISSION_MODE,
        LABEL_CRONJOB_NAME,
        LABEL_PRIORITY_CLASS_NAME,
        LABEL_GANG_SCHEDULING,
        LABEL_SERVICE_NAME,
        ANN_FT_ENABLED,
        ANN_EXTERNAL_STORAGE_NS,
        ANN_OVERWRITE_CONTAINER_CMD,
        ANN_KUBERAY_VERSION,
        ANN_RECREATE_HASH,
        ANN_ENABLE_SERVE_SERVICE,
        ANN_INGRESS_CLASS,
        ANN_DISABLE_HEAD_RESTART,
        ANN_FT_DELETION_TIMEOUT,
        ANN_HASH_WITHOUT_REPLICAS,
        ANN_NUM_WORKER_GROUPS,
        ANN_INITIALIZING_TIMEOUT,
        ANN_CRONJOB_SCHEDULED_TIMESTAMP,
        FINALIZER_GCS_FT_REDIS_CLEANUP,
        FINALIZER_RAYJOB,
        FINALIZER_RAYSERVICE,
    };
    static const char *const values[] = {
        LABEL_IS_RAY_NODE_YES,
        LABEL_APP_NAME_KUBERAY,
        LABEL_CREATED_BY_KUBERAY,
        LABEL_GROUP_HEAD,
    };
    size_t nkeys = sizeof(keys) / sizeof(keys[0]);
    buf_t err;
    buf_init(&err, 1024);

    // Every name is a qualified name with a DNS prefix (a label or annotation key; finalizer names
    // follow the same rule), in KubeRay's ray.io/ or Kubernetes' own domain, and none repeats.
    for (size_t i = 0; i < nkeys; i++) {
        buf_reset(&err);
        int rc = selector_validate_label_key(keys[i], &err);
        if (rc != 0)
            printf("labels: %s: %s\n", keys[i], buf_str(&err));
        CHECK(rc == 0);
        CHECK(strncmp(keys[i], "ray.io/", 7) == 0 || strstr(keys[i], "kubernetes.io/") != NULL);
        for (size_t j = i + 1; j < nkeys; j++)
            CHECK(strcmp(keys[i], keys[j]) != 0);
    }
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        buf_reset(&err);
        CHECK(selector_validate_label_value(values[i], &err) == 0);
    }
    // The wire values the watcher's selectors and every builder depend on.
    CHECK(strcmp(LABEL_CLUSTER, "ray.io/cluster") == 0);
    CHECK(strcmp(LABEL_NODE_TYPE, "ray.io/node-type") == 0);
    CHECK(strcmp(LABEL_CREATED_BY "=" LABEL_CREATED_BY_KUBERAY,
                 "app.kubernetes.io/created-by=kuberay-operator") == 0);

    CHECK(labels_is_protected(LABEL_NODE_TYPE));
    CHECK(labels_is_protected(LABEL_GROUP));
    CHECK(labels_is_protected(LABEL_CLUSTER));
    CHECK(!labels_is_protected(LABEL_IDENTIFIER));
    CHECK(!labels_is_protected(LABEL_APP_NAME));
    CHECK(!labels_is_protected("ray.io/cluster-x"));
    CHECK(!labels_is_protected("ray.io/Cluster"));
    CHECK(!labels_is_protected(""));
    CHECK(!labels_is_protected(NULL));
    buf_free(&err);
    return SELFTEST_RESULT("labels", verbose);
}

#endif /* RF_SELFTEST */
