#!/usr/bin/env bash
# deploy.helm: the Helm chart (deploy/helm/rayfleet) and the kustomize base rendered from it.
#   helm_test.sh [path/to/kubesim]
# Installs the pinned helm (scripts/helm.sh, timed), lints the chart, renders it with the default
# values and with tests/integration/deploy/full-values.yaml (every supported key: each must show in
# the rendered objects), checks every unsupported setting fails the render naming it, checks the
# committed deploy/kustomize/base equals a fresh render and builds with `kubectl kustomize`, and
# applies the manifests to a kubesim it starts (server-side dry run, then for real). Prints one
# line per check and ends with "N passed, M failed"; exit 0 only when all pass.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
KUBESIM=${1:-$ROOT/build/bin/kubesim}
CHART="$ROOT/deploy/helm/rayfleet"
NS=rayfleet-system
for tool in kubectl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FATAL: $tool is not installed"; exit 1; }
done
[ -x "$KUBESIM" ] || { echo "FATAL: no kubesim binary at $KUBESIM"; exit 1; }

WORK=$(mktemp -d)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL $1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/       /' | head -30
}
# check NAME CMD...: CMD's exit status decides; its output is shown on failure.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}

# ---- helm, installed through the Go module proxy at the pinned version ----
t0=$(date +%s)
if ! HELM=$("$ROOT/scripts/helm.sh" 2>"$WORK/helm-install.err"); then
    cat "$WORK/helm-install.err"
    echo "FATAL: scripts/helm.sh could not install helm"
    exit 1
fi
echo "note: scripts/helm.sh took $(($(date +%s) - t0)) s ($HELM)"
sed 's/^/note: /' "$WORK/helm-install.err"
# helm notes on stderr that crds/ is a link to deploy/crds: expected
helm_() { "$HELM" "$@" 2> >(grep -v 'found symbolic link in path' >&2); }
tpl() { helm_ template rayfleet "$CHART" --namespace "$NS" "$@"; }

check "helm lint --strict" helm_ lint --strict "$CHART"
check "helm lint --strict with every supported value" \
    helm_ lint --strict "$CHART" --namespace "$NS" -f "$HERE/full-values.yaml"

if tpl >"$WORK/default.yaml" 2>"$WORK/default.err"; then ok "helm template (defaults)"; else
    bad "helm template (defaults)" "$(cat "$WORK/default.err")"; fi
if tpl -f "$HERE/full-values.yaml" >"$WORK/full.yaml" 2>"$WORK/full.err"; then
    ok "helm template (every supported value)"
else bad "helm template (every supported value)" "$(cat "$WORK/full.err")"; fi
if tpl --include-crds >"$WORK/crds.yaml" 2>&1 &&
    [ "$(grep -c '^kind: CustomResourceDefinition' "$WORK/crds.yaml")" -eq 4 ]; then
    ok "the chart's crds/ (a link to deploy/crds) holds the 4 CRDs"
else bad "the chart's crds/ holds the 4 CRDs" "$(grep '^kind:' "$WORK/crds.yaml")"; fi

mkdir -p "$WORK/pkg"
if helm_ package "$CHART" -d "$WORK/pkg" >/dev/null 2>"$WORK/e" &&
    [ "$(tar tzf "$WORK"/pkg/rayfleet-*.tgz | grep -c '^rayfleet/crds/ray.io_.*\.yaml$')" -eq 4 ] &&
    ! tar tzf "$WORK"/pkg/rayfleet-*.tgz | grep -q 'crds/README' &&
    tar tzf "$WORK"/pkg/rayfleet-*.tgz | grep -qx 'rayfleet/dashboards/rayfleet-dashboard.json'; then
    ok "helm package carries the 4 CRDs and the dashboard (links dereferenced), not the README"
else bad "helm package carries the 4 CRDs" "$(cat "$WORK/e"; tar tzf "$WORK"/pkg/rayfleet-*.tgz)"; fi

# ---- unsupported settings: the render fails, naming the setting ----
# refuse NAME REGEX HELM-ARGS...
refuse() {
    local name=$1 want=$2 out
    shift 2
    if out=$(tpl "$@" 2>&1); then bad "$name is refused" "rendered without error"; return; fi
    if printf '%s\n' "$out" | grep -Eq -- "$want"; then ok "$name is refused naming it"; else
        bad "$name is refused naming it" "$out"; fi
}
refuse "batchScheduler.name unknown" "batchScheduler.name=slurm: must be one of volcano" \
    --set batchScheduler.name=slurm
refuse "batchScheduler enabled and name" "batchScheduler: set batchScheduler.name" \
    --set batchScheduler.enabled=true --set batchScheduler.name=yunikorn
# batch schedulers: --batch-scheduler on the scheduler and the submitter, podgroups rules as used
for bs in volcano scheduler-plugins yunikorn enabled; do
    set_=(--set "batchScheduler.name=$bs"); want=$bs
    [ "$bs" = enabled ] && { set_=(--set batchScheduler.enabled=true); want=volcano; }
    if tpl "${set_[@]}" >"$WORK/bs.yaml" 2>"$WORK/e" &&
        python3 - "$WORK/bs.yaml" "$want" >"$WORK/e" 2>&1 <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
want = sys.argv[2]
dep = next(d for d in docs if d["kind"] == "Deployment")
for c in dep["spec"]["template"]["spec"]["containers"]:
    has = "--batch-scheduler=" + want in c.get("args", [])
    assert has == (c["name"] in ("scheduler", "submitter")), (c["name"], c.get("args"))
role = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "rayfleet")
pg = {g: r["verbs"] for r in role["rules"] if "podgroups" in r["resources"] for g in r["apiGroups"]}
exp = {"volcano": {"scheduling.volcano.sh": ["get", "create", "update"]},
       "scheduler-plugins": {"scheduling.x-k8s.io": ["get", "create"]}}.get(want, {})
assert pg == exp, pg
PY
    then ok "batchScheduler $bs: --batch-scheduler=$want on scheduler+submitter, podgroups rules"
    else bad "batchScheduler $bs: --batch-scheduler=$want on scheduler+submitter, podgroups rules" \
        "$(cat "$WORK/e")"; fi
done
# gate KubernetesWAS: the scheduling.k8s.io rules only with the gate on (the list wins over the
# Configuration's featureGates, applied before it)
for case in "off||" "list|--set featureGates[0].name=KubernetesWAS --set featureGates[0].enabled=true|on" \
    "config|--set configuration.featureGates.KubernetesWAS=true|on" \
    "config-then-list-off|--set configuration.featureGates.KubernetesWAS=true --set featureGates[0].name=KubernetesWAS --set featureGates[0].enabled=false|"; do
    IFS='|' read -r name args want <<<"$case"
    # shellcheck disable=SC2086
    if tpl $args >"$WORK/was.yaml" 2>"$WORK/e" &&
        python3 - "$WORK/was.yaml" "$want" >"$WORK/e" 2>&1 <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
role = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "rayfleet")
got = [r for r in role["rules"] if "scheduling.k8s.io" in r["apiGroups"]]
exp = [{"apiGroups": ["scheduling.k8s.io"], "resources": ["workloads", "podgroups"],
        "verbs": ["get", "create", "update", "delete"]}] if sys.argv[2] == "on" else []
assert got == exp, got
PY
    then ok "KubernetesWAS $name: scheduling.k8s.io rules ${want:-absent}"
    else bad "KubernetesWAS $name: scheduling.k8s.io rules ${want:-absent}" "$(cat "$WORK/e")"; fi
done
refuse "members" "members: member clusters \(federation\) are not supported" \
    --set 'members[0].name=east'
refuse "audit.retention" "audit.retention=30d: automatic audit retention is not supported" \
    --set audit.retention=30d
refuse "bus.curveKeysSecret" "bus.curveKeysSecret=keys: .*not supported" \
    --set bus.curveKeysSecret=keys
refuse "shards.lease sqlite" "shards.lease=sqlite: want off or kubernetes" --set shards.lease=sqlite
refuse "a feature gate without enabled" "featureGates: each entry needs name and enabled" \
    --set 'featureGates[0].name=RayJobDeletionPolicy'
refuse "a misspelt key (values.schema.json)" "additional properties 'reconcileConcurency' not allowed" \
    --set reconcileConcurency=3
refuse "an unknown log level" "logLevel" --set logLevel=verbose

# ---- the committed kustomize base is the chart's render ----
mkdir -p "$WORK/base"
if HELM="$HELM" "$ROOT/scripts/render-deploy.sh" "$WORK/base" 2>"$WORK/render.err"; then
    check "committed deploy/kustomize/base equals a fresh scripts/render-deploy.sh" \
        diff -ru "$ROOT/deploy/kustomize/base" "$WORK/base"
else bad "scripts/render-deploy.sh" "$(cat "$WORK/render.err")"; fi
if HELM="$HELM" "$ROOT/scripts/render-deploy.sh" "$WORK/proxy" --set useKubernetesProxy=true \
    2>"$WORK/render.err" && grep -q "services/proxy" "$WORK/proxy/rbac.yaml" &&
    ! grep -q "services/proxy" "$ROOT/deploy/kustomize/base/rbac.yaml"; then
    ok "render-deploy.sh OUT --set useKubernetesProxy=true: a variant with the proxy rules"
else bad "render-deploy.sh variant with useKubernetesProxy" "$(cat "$WORK/render.err")"; fi
check "kubectl kustomize deploy/kustomize/base builds" \
    kubectl kustomize "$ROOT/deploy/kustomize/base" -o "$WORK/kustomized.yaml"
# an overlay moving the base to another namespace moves everything (the leader flags read the
# pod's namespace from the downward API, not a fixed name)
mkdir -p "$WORK/overlay"
REL=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' \
    "$ROOT/deploy/kustomize/base" "$WORK/overlay")
printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ops-x\nresources:\n  - %s\n' \
    "$REL" >"$WORK/overlay/kustomization.yaml"
if kubectl kustomize "$WORK/overlay" >"$WORK/overlay.yaml" 2>&1 && ! grep -q rayfleet-system "$WORK/overlay.yaml" &&
    [ "$(grep -c 'namespace: ops-x' "$WORK/overlay.yaml")" -ge 7 ]; then
    ok "a kustomize overlay with namespace ops-x moves every object and reference"
else bad "a kustomize overlay with namespace ops-x" "$(grep -n 'rayfleet-system\|namespace:' "$WORK/overlay.yaml")"; fi
check "rbac.yaml holds only ClusterRoles, ClusterRoleBindings, Roles and RoleBindings" \
    python3 - "$ROOT/deploy/kustomize/base/rbac.yaml" <<'PY'
import re, sys
kinds = re.findall(r'^kind: (\S+)', open(sys.argv[1]).read(), re.M)
allowed = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
assert kinds and set(kinds) <= allowed, kinds
assert {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} <= set(kinds), kinds
PY

# ---- kubesim: the manifests as the API server takes them (JSON for the structural checks) ----
"$KUBESIM" --port 0 --nodes 1 --kubeconfig-out "$WORK/kubeconfig" --ready-file "$WORK/ready" \
    >"$WORK/kubesim.out" 2>"$WORK/kubesim.err" &
PID=$!
for _ in $(seq 100); do [ -s "$WORK/ready" ] && break; sleep 0.05; done
[ -s "$WORK/ready" ] || { echo "FATAL: kubesim did not start"; cat "$WORK/kubesim.err"; exit 1; }
N=0
k() { N=$((N + 1)); kubectl --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/cache$N" "$@"; }

# namespaces the renders name, and prometheus-operator's ServiceMonitor kind (a stand-in CRD)
cat >"$WORK/prereq.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: v1
kind: Namespace
metadata: {name: monitoring-x}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor, listKind: ServiceMonitorList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
YAML
check "prerequisites (namespaces, a ServiceMonitor CRD) applied to kubesim" \
    k apply -f "$WORK/prereq.yaml"
k wait --for=condition=Established crd/servicemonitors.monitoring.coreos.com --timeout=20s \
    >/dev/null 2>&1
check "the namespace $NS applied from the base" k apply -f "$ROOT/deploy/kustomize/base/namespace.yaml"

if k apply --dry-run=server -o json -f "$WORK/default.yaml" >"$WORK/default.json" 2>"$WORK/e"; then
    ok "kubectl apply --dry-run=server of the default render"
else bad "kubectl apply --dry-run=server of the default render" "$(cat "$WORK/e")"; fi
if k apply --dry-run=server -o json -f "$WORK/full.yaml" >"$WORK/full.json" 2>"$WORK/e"; then
    ok "kubectl apply --dry-run=server of the render with every value"
else bad "kubectl apply --dry-run=server of the render with every value" "$(cat "$WORK/e")"; fi

check "the default render: objects, containers, flags, probes, security" \
    python3 - "$WORK/default.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
items = doc["items"] if doc.get("kind") == "List" else [doc]
by = {(o["kind"], o["metadata"]["name"]): o for o in items}
want = {("ServiceAccount", "rayfleet"), ("ClusterRole", "rayfleet"), ("ClusterRoleBinding", "rayfleet"),
        ("Role", "rayfleet-leases"), ("RoleBinding", "rayfleet-leases"), ("Service", "rayfleet-metrics"),
        ("Deployment", "rayfleet")}
assert set(by) == want, sorted(by)
for o in items:
    if o["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
        assert o["metadata"]["namespace"] == "rayfleet-system", o["metadata"]
d = by[("Deployment", "rayfleet")]
assert d["spec"]["replicas"] == 1
ps = d["spec"]["template"]["spec"]
assert ps["serviceAccountName"] == "rayfleet" and ps["automountServiceAccountToken"] is True
psc = ps["securityContext"]
assert psc["runAsNonRoot"] and psc["runAsUser"] == 65532 and psc["seccompProfile"]["type"] == "RuntimeDefault"
vols = {v["name"]: v for v in ps["volumes"]}
assert "emptyDir" in vols["state"] and "emptyDir" in vols["tmp"]
ports = {"bus": 8086, "watcher": 8082, "scheduler": 8083, "submitter": 8084, "serve-upgrade": 8085}
cs = {c["name"]: c for c in ps["containers"]}
assert list(cs) == ["bus", "watcher", "scheduler", "submitter", "serve-upgrade"], list(cs)
images = {c["image"] for c in cs.values()}
assert images == {"rayfleet:0.1.0"}, images
for name, c in cs.items():
    a = c["args"]
    assert c["command"] == ["rayfleet-" + name], c["command"]
    assert "--state-dir=/var/lib/rayfleet" in a and "--health.host=0.0.0.0" in a, a
    assert "--health.port=%d" % ports[name] in a, a
    assert c["ports"] == [{"name": name, "containerPort": ports[name], "protocol": "TCP"}], c["ports"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": name}, c["livenessProbe"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": name}, c["readinessProbe"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] == 65532 and sc["readOnlyRootFilesystem"], sc
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], sc
    assert sc["seccompProfile"]["type"] == "RuntimeDefault", sc
    assert c["resources"]["limits"] and c["resources"]["requests"], c["resources"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts == {"/var/lib/rayfleet": "state", "/tmp": "tmp"}, mounts
    leader = [x for x in a if x.startswith("--leader.")]
    if name in ("scheduler", "submitter", "serve-upgrade"):
        assert leader == ["--leader.elect=true", "--leader.namespace=$(POD_NAMESPACE)",
                          "--leader.identity=$(POD_NAME)"], leader
        env = {e["name"]: e for e in c["env"]}
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
        assert "--bus.endpoint=tcp://127.0.0.1:5571" in a, a
    else:
        assert leader == [], (name, leader)
assert "--bus.frontend=tcp://127.0.0.1:5570" in cs["bus"]["args"]
assert "--bus.backend=tcp://127.0.0.1:5571" in cs["bus"]["args"]
assert "--bus.endpoint=tcp://127.0.0.1:5570" in cs["watcher"]["args"]
# flags of settings left unset are not passed
flat = " ".join(" ".join(c["args"]) for c in cs.values())
for f in ("--concurrency", "--client.qps", "--watch.namespaces", "--feature-gates",
          "--use-kubernetes-proxy", "--shards.lease", "--leader.take-over", "--watch-namespace",
          "--kuberay-config"):
    assert f not in flat, f
svc = by[("Service", "rayfleet-metrics")]
assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == ports, svc["spec"]["ports"]
assert svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
tl = d["spec"]["template"]["metadata"]["labels"]
assert all(tl[k] == v for k, v in svc["spec"]["selector"].items())
crb = by[("ClusterRoleBinding", "rayfleet")]
assert crb["roleRef"]["name"] == "rayfleet" and crb["subjects"] == [
    {"kind": "ServiceAccount", "name": "rayfleet", "namespace": "rayfleet-system"}], crb
rules = by[("ClusterRole", "rayfleet")]["rules"]
res = {r for rule in rules for r in rule["resources"]}
assert "services/proxy" not in res and "pods/proxy" not in res, res
for r in ("rayclusters", "rayclusters/status", "pods", "services", "events", "jobs", "endpointslices",
          "leases", "roles", "rolebindings", "serviceaccounts", "secrets", "ingresses", "gateways"):
    assert r in res, r
for rule in rules:
    assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
    assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
lr = by[("Role", "rayfleet-leases")]["rules"]
assert lr == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
               "verbs": ["get", "create", "update"]}], lr
PY

check "the render with every value: each one shows" python3 - "$WORK/full.json" \
    "$ROOT/deploy/grafana/rayfleet-dashboard.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
items = doc["items"] if doc.get("kind") == "List" else [doc]
by = {(o["kind"], o["metadata"]["name"]): o for o in items}
assert ("Namespace", "rayfleet-system") in by  # createNamespace
d = by[("Deployment", "rayfleet")]
assert d["spec"]["replicas"] == 2
pt = d["spec"]["template"]
assert pt["metadata"]["labels"]["team-x"] == "ops" and pt["metadata"]["annotations"]["note-x"] == "hello"
ps = pt["spec"]
assert ps["serviceAccountName"] == "sa-x" and ("ServiceAccount", "sa-x") in by
assert ps["imagePullSecrets"] == [{"name": "pull-secret-x"}]
assert ps["priorityClassName"] == "prio-x"
assert ps["nodeSelector"] == {"pool-x": "ray-ops"}
assert ps["tolerations"][0]["key"] == "dedicated-x"
assert ps["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0]["key"] == "zone-x"
assert ps["securityContext"]["fsGroup"] == 4321 and ps["securityContext"]["runAsUser"] == 1234
assert {v["name"]: v for v in ps["volumes"]}["state"]["emptyDir"]["sizeLimit"] == "3Gi"
cs = {c["name"]: c for c in ps["containers"]}
for name, c in cs.items():
    a = c["args"]
    assert c["image"] == "registry.example/rayfleet:9.8.7" and c["imagePullPolicy"] == "Always"
    assert "--log-level=debug" in a, a
    assert {"name": "EXTRA_X", "value": "1"} in c["env"], c.get("env")
    assert c["securityContext"]["runAsUser"] == 1234
    lp, rp = c["livenessProbe"], c["readinessProbe"]
    assert (lp["initialDelaySeconds"], lp["periodSeconds"], lp["failureThreshold"]) == (31, 32, 33)
    assert (rp["initialDelaySeconds"], rp["periodSeconds"], rp["failureThreshold"]) == (41, 42, 43)
    want_cpu = "222m" if name == "scheduler" else "111m"
    assert c["resources"]["limits"]["cpu"] == want_cpu, (name, c["resources"])
    if name != "bus":
        assert "--client.qps=77" in a and "--client.burst=155" in a, (name, a)
    if name in ("scheduler", "submitter", "serve-upgrade"):
        for f in ("--leader.elect=false", "--leader.take-over=true", "--concurrency=7", "--shards=64",
                  "--shards.lease=kubernetes", "--shards.lease-namespace=$(POD_NAMESPACE)",
                  "--shards.lease-duration=12s", "--bus.endpoint=tcp://127.0.0.1:5581"):
            assert f in a, (name, f, a)
        assert "--feature-gates=RayJobDeletionPolicy=false,RayClusterMTLS=true" in a, a
        assert "--watch-namespace=team-a,team-b" in a, a
        assert "--kuberay-config=/etc/rayfleet/kuberay/config.yaml" in a, a
        assert {"name": "kuberay-config", "mountPath": "/etc/rayfleet/kuberay",
                "readOnly": True} in c["volumeMounts"], c["volumeMounts"]
    else:
        assert "kuberay-config" not in " ".join(a), a
    if name in ("submitter", "serve-upgrade"):
        assert "--use-kubernetes-proxy=true" in a, a
assert "--watch.namespaces=team-a,team-b" in cs["watcher"]["args"]
vols = {v["name"]: v for v in ps["volumes"]}
assert vols["kuberay-config"]["configMap"]["name"] == "rayfleet-kuberay-config", vols
kcm = by[("ConfigMap", "rayfleet-kuberay-config")]["data"]["config.yaml"]
assert kcm.startswith("apiVersion: config.ray.io/v1alpha1\nkind: Configuration\n"), kcm
assert "name: sidecar-x" in kcm and "team-y: ml" in kcm, kcm
assert "--shards=64" in cs["watcher"]["args"] and "--bus.endpoint=tcp://127.0.0.1:5580" in cs["watcher"]["args"]
assert "--bus.frontend=tcp://127.0.0.1:5580" in cs["bus"]["args"]
rules = by[("ClusterRole", "rayfleet")]["rules"]
res = {r: rule["verbs"] for rule in rules for r in rule["resources"]}
assert res["services/proxy"] == ["get", "create", "update", "delete"] and res["pods/proxy"] == ["get"], res
lr = by[("Role", "rayfleet-leases")]["rules"]
assert any(r["verbs"] == ["list"] for r in lr), lr  # shard leases list their group
sm = by[("ServiceMonitor", "rayfleet")]
assert sm["metadata"]["namespace"] == "monitoring-x" and sm["metadata"]["labels"]["release"] == "prom-x"
eps = sm["spec"]["endpoints"]
assert [e["port"] for e in eps] == ["bus", "watcher", "scheduler", "submitter", "serve-upgrade"]
assert all(e["interval"] == "17s" and e["honorLabels"] is False and e["path"] == "/metrics" for e in eps)
assert sm["spec"]["namespaceSelector"]["matchNames"] == ["rayfleet-system"]
cm = by[("ConfigMap", "rayfleet-dashboard")]
assert cm["metadata"]["namespace"] == "monitoring-x", cm["metadata"]
assert cm["metadata"]["labels"]["grafana_dashboard"] == "1" and cm["metadata"]["labels"]["dash-x"] == "yes"
assert json.loads(cm["data"]["rayfleet-dashboard.json"]) == json.load(open(sys.argv[2]))
PY

# singleNamespaceInstall: namespaced Roles in each watched namespace, nothing cluster-scoped
if tpl --set singleNamespaceInstall=true --set 'watchNamespace={team-a,team-b}' >"$WORK/single.yaml" 2>"$WORK/e" &&
    k apply --dry-run=server -o json -f "$WORK/single.yaml" >"$WORK/single.json" 2>"$WORK/e"; then
    check "singleNamespaceInstall: a Role and RoleBinding per watched namespace, no cluster scope" \
        python3 - "$WORK/single.json" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
kinds = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in items]
assert not [k for k in kinds if k[0].startswith("Cluster")], kinds
for ns in ("team-a", "team-b"):
    assert ("Role", ns, "rayfleet") in kinds and ("RoleBinding", ns, "rayfleet") in kinds, kinds
rb = [o for o in items if o["kind"] == "RoleBinding" and o["metadata"]["namespace"] == "team-a"][0]
assert rb["subjects"][0]["namespace"] == "rayfleet-system", rb
PY
else bad "singleNamespaceInstall render applied" "$(cat "$WORK/e")"; fi
if tpl --set rbacEnable=false >"$WORK/norbac.yaml" 2>"$WORK/e" && ! grep -q "rbac.authorization" "$WORK/norbac.yaml"; then
    ok "rbacEnable=false renders no RBAC"
else bad "rbacEnable=false renders no RBAC" "$(cat "$WORK/e")"; fi

# the kustomize base, applied for real: the Deployment, RBAC and Services exist
check "kubectl apply -k deploy/kustomize/base (server-side dry run)" \
    k apply --dry-run=server -k "$ROOT/deploy/kustomize/base"
check "kubectl apply -k deploy/kustomize/base" k apply -k "$ROOT/deploy/kustomize/base"
check "the Deployment, ServiceAccount, Role, RoleBinding and Service exist in $NS" \
    k -n "$NS" get deployment/rayfleet serviceaccount/rayfleet role/rayfleet-leases \
    rolebinding/rayfleet-leases service/rayfleet-metrics
check "the ClusterRole and ClusterRoleBinding exist" \
    k get clusterrole/rayfleet clusterrolebinding/rayfleet
check "the CRDs apply from the chart's crds/ (deploy/crds)" k apply -f "$CHART/crds/"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
