#!/usr/bin/env bash
# kubesim's volumes and network policies over its real HTTP API, driven by kubectl:
# StorageClasses (the default one), PersistentVolumeClaims bound by the simulated provisioner,
# PersistentVolumes, kube's PVC immutability, pods waiting for their claims with
# kube-scheduler's message, garbage collection of an owned claim, NetworkPolicy defaults,
# validation and printer columns.
#   kubesim_storage.sh PATH/TO/kubesim
# Ends with "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
kubesim=$1
work=$(mktemp -d)
pass=0
fail=0
trap 'kill $ks_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # check NAME COMMAND...
    local name=$1; shift
    if "$@" >"$work/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/     /' "$work/out" | head -20; fi
}
eq() { # eq WANT GOT
    [[ "$1" == "$2" ]] || { echo "want: $1"; echo "got:  $2"; return 1; }
}
# wait_for CMD... : retries CMD for up to 10 s
wait_for() {
    for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    "$@"
}

"$kubesim" --port 0 --nodes 2 --kubeconfig-out "$work/kc" --ready-file "$work/ready" \
    --pod-start-ms 50 --pod-ready-ms 50 >"$work/kubesim.log" 2>&1 &
ks_pid=$!
for _ in $(seq 100); do [[ -s "$work/ready" ]] && break; sleep 0.1; done
k() { kubectl --kubeconfig "$work/kc" --cache-dir "$work/cache" "$@"; }

# --- StorageClass ---
check "default StorageClass listed with kube's columns" bash -c "
    out=\$(kubectl --kubeconfig $work/kc get storageclass)
    echo \"\$out\"
    echo \"\$out\" | head -1 | grep -Eq '^NAME +PROVISIONER +RECLAIMPOLICY +VOLUMEBINDINGMODE +ALLOWVOLUMEEXPANSION +AGE' &&
    echo \"\$out\" | grep -Eq '^standard \(default\) +kubesim.rayfleet.io/hostpath +Delete +Immediate +false'"

# --- a claim without a class: default class, bound to pvc-<uid> ---
cat >"$work/pvc.yaml" <<'YAML'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
YAML
check "claim created" k apply -f "$work/pvc.yaml"
bound() { [[ $(k get pvc "$1" -o jsonpath='{.status.phase}') == Bound ]]; }
check "claim Bound" wait_for bound data
uid=$(k get pvc data -o jsonpath='{.metadata.uid}')
check "class defaulted, volume pvc-<uid>, capacity and modes" bash -c "
    got=\$(kubectl --kubeconfig $work/kc get pvc data -o jsonpath='{.spec.storageClassName} {.spec.volumeName} {.status.capacity.storage} {.status.accessModes[0]} {.spec.volumeMode}')
    [[ \"\$got\" == 'standard pvc-$uid 1Gi ReadWriteOnce Filesystem' ]] || { echo \"\$got\"; exit 1; }"
check "PVC printer columns" bash -c "
    out=\$(kubectl --kubeconfig $work/kc get pvc data); echo \"\$out\"
    echo \"\$out\" | head -1 | grep -Eq '^NAME +STATUS +VOLUME +CAPACITY +ACCESS MODES +STORAGECLASS +VOLUMEATTRIBUTESCLASS +AGE$' &&
    echo \"\$out\" | grep -Eq '^data +Bound +pvc-$uid +1Gi +RWO +standard +<unset> +[0-9]+s$'"
check "PV exists, Bound, claimRef, Delete" bash -c "
    out=\$(kubectl --kubeconfig $work/kc get pv pvc-$uid); echo \"\$out\"
    echo \"\$out\" | head -1 | grep -Eq '^NAME +CAPACITY +ACCESS MODES +RECLAIM POLICY +STATUS +CLAIM +STORAGECLASS' &&
    echo \"\$out\" | grep -Eq '^pvc-$uid +1Gi +RWO +Delete +Bound +default/data +standard'"

# --- immutability ---
check "spec change refused with kube's message" bash -c "
    out=\$(kubectl --kubeconfig $work/kc patch pvc data --type merge -p '{\"spec\":{\"storageClassName\":\"other\"}}' 2>&1); echo \"\$out\"
    echo \"\$out\" | grep -qF 'The PersistentVolumeClaim \"data\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests for bound claims'"
check "requests change of a bound claim allowed" \
    k patch pvc data --type merge -p '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}'

# --- pods wait for their claims ---
cat >"$work/pod.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: user}
spec:
  containers: [{name: c, image: busybox}]
  volumes: [{name: v, persistentVolumeClaim: {claimName: later}}]
YAML
check "pod created" k apply -f "$work/pod.yaml"
msg() { k get pod user -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].message}'; }
want1='0/2 nodes are available: persistentvolumeclaim "later" not found. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.'
check "missing claim: Pending with kube-scheduler's message" wait_for bash -c "[[ \"\$(kubectl --kubeconfig $work/kc get pod user -o jsonpath='{.status.conditions[?(@.type==\"PodScheduled\")].message}')\" == '$want1' ]]"
# an unbound claim (class with no provisioner here)
cat >"$work/later.yaml" <<'YAML'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: later}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
YAML
check "unbound claim created" k apply -f "$work/later.yaml"
want2='0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.'
check "unbound claim: Pending with kube-scheduler's message" wait_for bash -c "[[ \"\$(kubectl --kubeconfig $work/kc get pod user -o jsonpath='{.status.conditions[?(@.type==\"PodScheduled\")].message}')\" == '$want2' ]]"
cat >"$work/manual.yaml" <<'YAML'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: manual}
provisioner: kubesim.rayfleet.io/hostpath
reclaimPolicy: Retain
YAML
check "class appears" k apply -f "$work/manual.yaml"
check "claim binds once its class exists" wait_for bound later
running() { [[ $(k get pod user -o jsonpath='{.status.phase}') == Running ]]; }
check "pod runs once its claim is Bound" wait_for running
lpv=$(k get pvc later -o jsonpath='{.spec.volumeName}')
k delete pod user --wait=false >/dev/null 2>&1
check "claim deleted" k delete pvc later --wait=false
released() { [[ $(k get pv "$lpv" -o jsonpath='{.status.phase}') == Released ]]; }
check "Retain: the PV stays, Released" wait_for released

# --- garbage collection of an owned claim; Delete removes the PV ---
cat >"$work/owner.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: owner}
YAML
k apply -f "$work/owner.yaml" >/dev/null
ouid=$(k get cm owner -o jsonpath='{.metadata.uid}')
cat >"$work/owned.yaml" <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: owned
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: owner, uid: $ouid, controller: true}]
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 3Gi}}
YAML
check "owned claim created" k apply -f "$work/owned.yaml"
check "owned claim Bound" wait_for bound owned
opv=$(k get pvc owned -o jsonpath='{.spec.volumeName}')
k delete cm owner >/dev/null
gone_pvc() { ! k get pvc owned >/dev/null 2>&1; }
gone_pv() { ! k get pv "$opv" >/dev/null 2>&1; }
check "owner deleted: claim garbage-collected" wait_for gone_pvc
check "reclaimPolicy Delete: its PV deleted" wait_for gone_pv

# --- NetworkPolicy ---
cat >"$work/np.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {matchLabels: {ray.io/node-type: head, ray.io/cluster: demo}}
  egress:
  - ports: [{port: 53}]
YAML
check "policy created" k apply -f "$work/np.yaml"
check "defaults: policyTypes Ingress,Egress and protocol TCP" bash -c "
    got=\$(kubectl --kubeconfig $work/kc get netpol np -o jsonpath='{.spec.policyTypes} {.spec.egress[0].ports[0].protocol}')
    [[ \"\$got\" == '[\"Ingress\",\"Egress\"] TCP' ]] || { echo \"\$got\"; exit 1; }"
check "NetworkPolicy printer columns" bash -c "
    out=\$(kubectl --kubeconfig $work/kc get networkpolicies); echo \"\$out\"
    echo \"\$out\" | head -1 | grep -Eq '^NAME +POD-SELECTOR +AGE$' &&
    echo \"\$out\" | grep -Eq '^np +ray.io/cluster=demo,ray.io/node-type=head +[0-9]+s$'"
cat >"$work/np-bad.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad}
spec:
  podSelector: {}
  policyTypes: [Sideways]
YAML
check "bad policyTypes refused with kube's message" bash -c "
    out=\$(kubectl --kubeconfig $work/kc apply -f $work/np-bad.yaml 2>&1); echo \"\$out\"
    echo \"\$out\" | grep -qF 'The NetworkPolicy \"bad\" is invalid: spec.policyTypes[0]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"'"
cat >"$work/np-bad2.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad2}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 80, protocol: ICMP}]}]
YAML
check "bad protocol refused with kube's message" bash -c "
    out=\$(kubectl --kubeconfig $work/kc apply -f $work/np-bad2.yaml 2>&1); echo \"\$out\"
    echo \"\$out\" | grep -qF 'spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"'"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
