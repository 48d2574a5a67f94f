#!/usr/bin/env bash
# CRD validation rules (x-kubernetes-validations, CEL) on kubesim, driven by the real kubectl
# (issue 18): the upstream KubeRay CRDs' rules refuse what kube-apiserver refuses, with the CRD's
# messages in kube's 422 body, and valid objects are still accepted.
#   cel_test.sh [path/to/kubesim]
# Prints one line per check and ends with "N passed, M failed". Exit 0 only when all pass.
set -u
KUBESIM=${1:-${RF_BIN_DIR:-build/bin}/kubesim}
SHARED=${RF_SHARED_DIR:-$(dirname "$0")/../../../../shared}
KS_NODES=1
. "$(dirname "$0")/kslib.sh"
[ -d "$SHARED/kuberay/crd" ] || { echo "FATAL: no CRDs under $SHARED/kuberay/crd"; exit 1; }

for crd in rayclusters rayjobs rayservices raycronjobs; do
    k create -f "$SHARED/kuberay/crd/ray.io_$crd.yaml"
    expect_fixed "create upstream CRD $crd (every rule compiles)" 0 "$crd.ray.io created"
done

# A rule kubesim cannot compile is refused at CRD creation, naming the rule and why.
cat >"$WORK/badcrd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: string}
            x-kubernetes-validations:
            - rule: quantity(self.size).isGreaterThan(quantity('1Gi'))
              message: too small
EOF
k create -f "$WORK/badcrd.yaml"
expect_fixed "CRD with an unsupported rule refused (422 naming the rule)" 1 'The CustomResourceDefinition "widgets.example.com" is invalid: spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:"quantity(self.size).isGreaterThan(quantity('"'"'1Gi'"'"'))", Message:"too small"'
expect_fixed "... and saying why" 1 "compilation failed: ERROR: <input>:1:1: undeclared reference to 'quantity' (in container '')"
k get crd widgets.example.com
expect_fixed "the refused CRD was not stored" 1 'customresourcedefinitions.apiextensions.k8s.io "widgets.example.com" not found'

rayjob() { # NAME MANAGEDBY DELETIONSTRATEGY-YAML
    cat <<EOF
apiVersion: ray.io/v1
kind: RayJob
metadata: {name: $1}
spec:
  entrypoint: python -c "print(1)"
${2:+  managedBy: $2}
${3:+  deletionStrategy: $3}
  rayClusterSpec:
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers: [{name: ray-head, image: "rayproject/ray:2.46.0"}]
EOF
}

# managedBy: an unsupported value at creation; immutable afterwards.
rayjob rj-bad other.io/controller "" >"$WORK/rj-bad.yaml"
k apply -f "$WORK/rj-bad.yaml"
expect_fixed "unsupported managedBy refused with the CRD's message" 1 "The RayJob \"rj-bad\" is invalid: spec.managedBy: Invalid value: \"string\": the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'"

rayjob rj ray.io/kuberay-operator "" >"$WORK/rj.yaml"
k apply -f "$WORK/rj.yaml"
expect_fixed "RayJob with a supported managedBy accepted" 0 "rayjob.ray.io/rj created"
k patch rayjob rj --type=merge -p '{"spec":{"managedBy":"kueue.x-k8s.io/multikueue"}}'
expect_fixed "managedBy changed after creation refused (patch)" 1 'The RayJob "rj" is invalid: spec.managedBy: Invalid value: "string": the managedBy field is immutable'
sed 's|managedBy: ray.io/kuberay-operator|managedBy: kueue.x-k8s.io/multikueue|' "$WORK/rj.yaml" >"$WORK/rj2.yaml"
k apply -f "$WORK/rj2.yaml"
expect_fixed "managedBy changed after creation refused (apply)" 1 "spec.managedBy: Invalid value: \"string\": the managedBy field is immutable"
k replace -f "$WORK/rj2.yaml"
expect_fixed "managedBy changed after creation refused (replace)" 1 "spec.managedBy: Invalid value: \"string\": the managedBy field is immutable"
k patch rayjob rj --type=merge -p '{"spec":{"entrypoint":"python -c \"print(2)\""}}'
expect_fixed "other fields still change (managedBy unchanged)" 0 "rayjob.ray.io/rj patched"
k get rayjob rj -o 'jsonpath={.spec.managedBy}'
expect_fixed "managedBy kept" 0 "ray.io/kuberay-operator"

# kube-apiserver's 422 Status body, causes included.
BODY=$(curl -s -X PATCH -H 'Content-Type: application/merge-patch+json' \
    "$URL/apis/ray.io/v1/namespaces/default/rayjobs/rj" -d '{"spec":{"managedBy":"x"}}')
OUT=$BODY
RC=0
if printf '%s' "$BODY" | python3 -c '
import json, sys
b = json.load(sys.stdin)
c = b["details"]["causes"]
assert b["code"] == 422 and b["reason"] == "Invalid" and b["status"] == "Failure", b
assert b["details"] == {"name": "rj", "group": "ray.io", "kind": "RayJob", "causes": c}, b
assert b["message"] == ("RayJob.ray.io \"rj\" is invalid: [spec.managedBy: Invalid value: \"string\": "
    "the managedBy field is immutable, spec.managedBy: Invalid value: \"string\": the managedBy field "
    "value must be either \x27ray.io/kuberay-operator\x27 or \x27kueue.x-k8s.io/multikueue\x27]"), b["message"]
assert c[0] == {"reason": "FieldValueInvalid", "field": "spec.managedBy",
    "message": "Invalid value: \"string\": the managedBy field is immutable"}, c
assert len(c) == 2 and c[1]["field"] == "spec.managedBy", c
'; then ok "422 Status body: message and details.causes as kube-apiserver"; else bad "422 Status body: message and details.causes as kube-apiserver"; fi

# deletionStrategy: the invalid combinations, each refused with the CRD's message.
check_ds() { # NAME YAML MESSAGE
    rayjob "$1" "" "$2" >"$WORK/$1.yaml"
    k apply -f "$WORK/$1.yaml"
    expect_fixed "deletionStrategy $1 refused" 1 "$3"
}
check_ds ds-both '{onSuccess: {policy: DeleteCluster}, onFailure: {policy: DeleteNone}, deletionRules: [{policy: DeleteCluster, condition: {jobStatus: SUCCEEDED}}]}' \
    'spec.deletionStrategy: Invalid value: "object": legacy policies (onSuccess/onFailure) and deletionRules cannot be used together within the same deletionStrategy'
check_ds ds-onsuccess '{onSuccess: {policy: DeleteCluster}}' \
    'spec.deletionStrategy: Invalid value: "object": deletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules field (cannot be empty)'
check_ds ds-two-conds '{deletionRules: [{policy: DeleteCluster, condition: {jobStatus: FAILED, jobDeploymentStatus: Failed}}]}' \
    'spec.deletionStrategy.deletionRules[0].condition: Invalid value: "object": JobStatus and JobDeploymentStatus cannot be used together within the same deletion condition.'
check_ds ds-no-cond '{deletionRules: [{policy: DeleteWorkers, condition: {jobStatus: FAILED}}, {policy: DeleteCluster, condition: {ttlSeconds: 10}}]}' \
    'spec.deletionStrategy.deletionRules[1].condition: Invalid value: "object": the deletion condition requires either the JobStatus or the JobDeploymentStatus field.'
check_ds ds-empty '{}' \
    'spec.deletionStrategy: Invalid value: "object": deletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules field (cannot be empty)'

# ... and the valid ones accepted.
rayjob ds-legacy "" '{onSuccess: {policy: DeleteCluster}, onFailure: {policy: DeleteNone}}' >"$WORK/ok1.yaml"
k apply -f "$WORK/ok1.yaml"
expect_fixed "deletionStrategy with onSuccess and onFailure accepted" 0 "rayjob.ray.io/ds-legacy created"
rayjob ds-rules "" '{deletionRules: [{policy: DeleteWorkers, condition: {jobStatus: FAILED}}, {policy: DeleteSelf, condition: {jobDeploymentStatus: Failed, ttlSeconds: 30}}]}' >"$WORK/ok2.yaml"
k apply -f "$WORK/ok2.yaml"
expect_fixed "deletionStrategy with deletionRules accepted" 0 "rayjob.ray.io/ds-rules created"
k patch rayjob ds-rules --type=json -p '[{"op":"add","path":"/spec/deletionStrategy/onSuccess","value":{"policy":"DeleteCluster"}}]'
expect_fixed "adding a legacy policy to deletionRules refused on update" 1 "legacy policies (onSuccess/onFailure) and deletionRules cannot be used together"

# gcsFaultToleranceOptions.backend is immutable (RayCluster).
cat >"$WORK/rc.yaml" <<'EOF'
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: rc-gcs}
spec:
  gcsFaultToleranceOptions:
    backend: redis
    redisAddress: redis:6379
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers: [{name: ray-head, image: "rayproject/ray:2.46.0"}]
EOF
k apply -f "$WORK/rc.yaml"
expect_fixed "RayCluster with gcsFaultToleranceOptions.backend accepted" 0 "raycluster.ray.io/rc-gcs created"
k patch raycluster rc-gcs --type=merge -p '{"spec":{"gcsFaultToleranceOptions":{"backend":"rocksdb"}}}'
expect_fixed "gcsFaultToleranceOptions.backend change refused" 1 'The RayCluster "rc-gcs" is invalid: spec.gcsFaultToleranceOptions.backend: Invalid value: "string": gcsFaultToleranceOptions.backend is immutable'
k patch raycluster rc-gcs --type=merge -p '{"spec":{"gcsFaultToleranceOptions":{"redisAddress":"redis2:6379"}}}'
expect_fixed "other gcsFaultToleranceOptions fields still change" 0 "raycluster.ray.io/rc-gcs patched"
k patch raycluster rc-gcs --type=merge -p '{"spec":{"managedBy":"kueue.x-k8s.io/multikueue"}}'
expect_fixed "managedBy set on a RayCluster that had none (no old value: only the value rule)" 0 "raycluster.ray.io/rc-gcs patched"
k patch raycluster rc-gcs --type=merge -p '{"spec":{"managedBy":"ray.io/kuberay-operator"}}'
expect_fixed "RayCluster managedBy change refused" 1 'spec.managedBy: Invalid value: "string": the managedBy field is immutable'

# RayService and RayCronJob: the nested RayCluster spec's rules apply too.
cat >"$WORK/rs.yaml" <<'EOF'
apiVersion: ray.io/v1
kind: RayService
metadata: {name: rs}
spec:
  managedBy: ray.io/kuberay-operator
  rayClusterConfig:
    managedBy: nobody
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers: [{name: ray-head, image: "rayproject/ray:2.46.0"}]
EOF
k apply -f "$WORK/rs.yaml"
expect_fixed "RayService rayClusterConfig.managedBy unsupported value refused" 1 "spec.rayClusterConfig.managedBy: Invalid value: \"string\": the managedBy field value must be either"
sed -i '/managedBy: nobody/d' "$WORK/rs.yaml"
k apply -f "$WORK/rs.yaml"
expect_fixed "valid RayService accepted" 0 "rayservice.ray.io/rs created"
k patch rayservice rs --type=merge -p '{"spec":{"managedBy":"kueue.x-k8s.io/multikueue"}}'
expect_fixed "RayService managedBy change refused" 1 'The RayService "rs" is invalid: spec.managedBy: Invalid value: "string": the managedBy field is immutable'

# Server-side dry run is validated the same way.
k patch rayjob rj --type=merge -p '{"spec":{"managedBy":"kueue.x-k8s.io/multikueue"}}' --dry-run=server
expect_fixed "server-side dry run refused too" 1 "the managedBy field is immutable"

# The upstream samples still apply (those of the four kinds).
SAMPLES=0
SFAIL=0
for f in "$SHARED"/kuberay/samples/*.yaml; do
    grep -Eq '^kind: (RayCluster|RayJob|RayService|RayCronJob)$' "$f" || continue
    SAMPLES=$((SAMPLES + 1))
    k apply --dry-run=server -f "$f"
    if [ "$RC" -ne 0 ] && printf '%s\n' "$OUT" | grep -q 'Invalid value'; then
        SFAIL=$((SFAIL + 1))
        echo "     $f: $OUT" | head -3
    fi
done
OUT="$SFAIL of $SAMPLES samples refused by a rule"
RC=0
if [ "$SAMPLES" -gt 40 ] && [ "$SFAIL" -eq 0 ]; then ok "every upstream sample passes the rules ($SAMPLES)"; else bad "every upstream sample passes the rules"; fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
