#!/usr/bin/env bash
# integration.mtls: KubeRay's mTLS (gate RayClusterMTLS, §4.5) on kubesim's simulated cert-manager.
#   1. The set up with --feature-gates RayClusterMTLS=true; a RayCluster with tlsOptions.enabled
#      applied while cert-manager is NOT installed: KubeRay's Warning (InvalidRayClusterSpec,
#      "tlsOptions requires cert-manager, but cert-manager is not installed"), no pod.
#   2. The cert-manager CRDs installed as a user would (crds/cert-manager.yaml), with the CA
#      Issuer name taken by an Issuer cert-manager cannot serve: the leaf Certificates are made
#      but stay not Ready and no pod is created; that Issuer fixed: the Issuers,
#      the CA and leaf Certificates and their Secrets appear, checked field by field; the CA
#      Secret's certificate verifies the head's and the workers' leaf (openssl verify); the head
#      leaf lists the head pod IP, the worker leaf every worker pod IP; the pods carry the ray-tls
#      volume, the TLS env and the wait-for-tls-ip-san init container; every pod was created at or
#      after both leaf Certificates became Ready; the Event MTLSPKIReady; the cluster becomes
#      ready; scaling the workers to 3 then 1 adds and drops their IPs in the worker leaf (spec
#      and the issued certificate).
#   3. The set again with the gate off: KubeRay's rejection Event, no pods.
# Usage: mtls_test.sh PATH/TO/rayfleetctl   (kubesim and the rayfleet-* services beside it)
set -uo pipefail
ctl=${1:?usage: mtls_test.sh PATH/TO/rayfleetctl}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
. "$here/../cli/testlib.sh"
tl_cell mtls "$ctl"
command -v openssl >/dev/null || { echo "openssl is needed"; exit 1; }
up() {
    "$ctl" up --sim --detach --state-dir "$state" --nodes 2 --timeout 40s "$@" >/dev/null \
        2>"$tmp/up.err"
}
c=rc-mtls
cat >"$tmp/rc.yaml" <<YAML
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: $c}
spec:
  rayVersion: "2.52.0"
  tlsOptions: {enabled: true}
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.52.0
          resources: {limits: {cpu: "1", memory: 2Gi}, requests: {cpu: "1", memory: 2Gi}}
  workerGroupSpecs:
  - groupName: small
    replicas: 2
    minReplicas: 0
    maxReplicas: 4
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-worker
          image: rayproject/ray:2.52.0
          resources: {limits: {cpu: "1", memory: 1Gi}, requests: {cpu: "1", memory: 1Gi}}
YAML
t0=$(date +%s)

# ---- 1. gate on, cert-manager absent: nothing is created --------------------------------------
if up --feature-gates RayClusterMTLS=true; then ok "up --feature-gates RayClusterMTLS=true"; else
    bad "up"; sed 's/^/    | /' "$tmp/up.err"; tl_summary; exit 1; fi
kc_ apply -f "$tmp/rc.yaml" >/dev/null || bad "RayCluster applied"
sleep 3
n=$(kc_ get pods -l ray.io/cluster=$c -o name | wc -l)
[[ $n -eq 0 ]] && ok "no pod while cert-manager is not installed" || bad "pods without certificates ($n)"
has "KubeRay's Warning: cert-manager is not installed" \
    "$(kc_ get events --field-selector reason=InvalidRayClusterSpec -o jsonpath='{range .items[*]}{.type} {.message}{"\n"}{end}')" \
    "^Warning tlsOptions requires cert-manager, but cert-manager is not installed$"

# ---- 2. cert-manager installed ------------------------------------------------------------------
# The RayCluster goes away while cert-manager is installed and the CA Issuer's name is taken (below),
# then comes back: a retry of the scheduler landing in between would otherwise make a working CA
# Issuer first and the hold below could not be seen.
kc_ delete raycluster $c --wait=true >/dev/null || bad "RayCluster deleted"
kc_ apply -f "$here/crds/cert-manager.yaml" >/dev/null && ok "cert-manager CRDs installed" ||
    bad "cert-manager CRDs installed"
tl_wait 10 kc_ get certificates.cert-manager.io
# The CA Issuer taken by an Issuer of that name whose type cert-manager cannot serve: the leaf
# Certificates are made but never become Ready, so the pods must wait (the hold, not a failure).
printf 'apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: ray-ca-issuer-%s}\nspec: {vault: {}}\n' \
    "$c" | kc_ create -f - >/dev/null || bad "the CA Issuer's name taken"
kc_ apply -f "$tmp/rc.yaml" >/dev/null || bad "RayCluster applied again"
uid=$(kc_ get raycluster $c -o jsonpath='{.metadata.uid}')
ca_secret="$c-ca-secret-${uid:0:8}"
leaf_pending() {
    [[ $(kc_ get certificate ray-head-cert-$c -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}') == DoesNotExist &&
        $(kc_ get certificate ray-worker-cert-$c -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}') == DoesNotExist ]]
}
tl_wait 15 leaf_pending && ok "leaf Certificates made, not Ready (their issuer is not Ready)" ||
    bad "leaf Certificates pending ($(kc_ get certificates -o yaml | grep -E 'reason|message' | paste -sd' '))"
sleep 3
n=$(kc_ get pods -l ray.io/cluster=$c -o name | wc -l)
[[ $n -eq 0 ]] && ok "no pod while the leaf Certificates are not Ready" ||
    bad "pods before the certificates were Ready ($n)"
kc_ patch issuer ray-ca-issuer-$c --type merge -p "{\"spec\":{\"vault\":null,\"ca\":{\"secretName\":\"$ca_secret\"}}}" >/dev/null ||
    bad "CA Issuer fixed"
ready() { [[ $(kc_ get raycluster $c -o jsonpath='{.status.state}') == ready ]]; }
if tl_wait 40 ready; then ok "RayCluster ready"; else
    bad "RayCluster ready"; kc_ get raycluster $c -o yaml | sed -n '/^status/,$p' | head -30
    kc_ get certificates,issuers -o wide; kc_ get pods -o wide; fi
j() { kc_ get "$1" "$2" -o jsonpath="$3"; }
has "selfSigned Issuer" "$(j issuer ray-selfsigned-issuer-$c '{.spec.selfSigned} {.status.conditions[0].type}={.status.conditions[0].status} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.metadata.labels.ray\.io/cluster}')" \
    "^\{\} Ready=True RayCluster/$c $c$"
has "CA Issuer on the CA secret" "$(j issuer ray-ca-issuer-$c '{.spec.ca.secretName} {.status.conditions[0].status} {.status.conditions[0].message}')" \
    "^$ca_secret True Signing CA verified$"
has "CA Certificate" "$(j certificate ray-ca-certificate-$c '{.spec.isCA} {.spec.duration} {.spec.renewBefore} {.spec.secretName} {.spec.issuerRef.name} {.status.conditions[0].status}')" \
    "^true 87600h 720h $ca_secret ray-selfsigned-issuer-$c True$"
fqdn="$c-head-svc.default.svc.cluster.local"
hip=$(kc_ get pods -l ray.io/cluster=$c,ray.io/node-type=head -o jsonpath='{.items[0].status.podIP}')
wips=$(kc_ get pods -l ray.io/cluster=$c,ray.io/node-type=worker -o jsonpath='{.items[*].status.podIP}')
[[ -n $hip && $(wc -w <<<"$wips") -eq 2 ]] && ok "pod IPs: head $hip, workers $wips" ||
    bad "pod IPs (head '$hip', workers '$wips')"
leaf_ok() { # the leaf lists every pod IP and is Ready at its generation
    local cert=$1; shift
    local ips gen og st
    ips=$(j certificate "$cert" '{.spec.ipAddresses[*]}')
    st=$(j certificate "$cert" '{.status.conditions[?(@.type=="Ready")].status}')
    og=$(j certificate "$cert" '{.status.conditions[?(@.type=="Ready")].observedGeneration}')
    gen=$(j certificate "$cert" '{.metadata.generation}')
    [[ $st == True && $og == "$gen" ]] || return 1
    for ip in 127.0.0.1 "$@"; do grep -qw -- "$ip" <<<"$ips" || return 1; done
}
# shellcheck disable=SC2086
tl_wait 20 leaf_ok ray-head-cert-$c "$hip" && tl_wait 20 leaf_ok ray-worker-cert-$c $wips &&
    ok "leaf Certificates Ready at their generation, IP SANs = 127.0.0.1 + pod IPs" ||
    bad "leaf Certificates ($(kc_ get certificates -o yaml | grep -E 'ipAddresses|- [0-9]|observedGen|generation' | tr -s ' ' | paste -sd' '))"
has "head Certificate" "$(j certificate ray-head-cert-$c '{.spec.secretName} {.spec.dnsNames[*]} {.spec.duration} {.spec.renewBefore} {.spec.issuerRef.name} {.status.conditions[0].message}')" \
    "^ray-head-secret-$c localhost $fqdn 2160h 360h ray-ca-issuer-$c Certificate is up to date and has not expired$"
has "worker Certificate" "$(j certificate ray-worker-cert-$c '{.spec.secretName} {.spec.dnsNames[*]} {.spec.issuerRef.name}')" \
    "^ray-worker-secret-$c localhost ray-ca-issuer-$c$"
for s in ray-head-secret-$c ray-worker-secret-$c $ca_secret; do
    has "Secret $s: kubernetes.io/tls with tls.crt, tls.key, ca.crt, labelled for the cluster" \
        "$(kc_ get secret "$s" -o jsonpath='{.type} {.metadata.labels.ray\.io/cluster} {.data}')" \
        "^kubernetes.io/tls $c .*\"ca.crt\":\"[A-Za-z0-9+/=]{100,}\".*\"tls.crt\":\"[A-Za-z0-9+/=]{100,}\".*\"tls.key\":\"[A-Za-z0-9+/=]{100,}\""
done
pem() { kc_ get secret "$1" -o jsonpath="{.data.${2//./\\.}}" | base64 -d >"$tmp/$3"; }
pem "$ca_secret" tls.crt ca.pem
pem ray-head-secret-$c tls.crt head.pem
pem ray-head-secret-$c ca.crt head-ca.pem
pem ray-head-secret-$c tls.key head.key
pem ray-worker-secret-$c tls.crt worker.pem
has "CA is a CA" "$(openssl x509 -in "$tmp/ca.pem" -noout -text)" "CA:TRUE" "Subject: CN ?= ?ray-ca-$c"
has "openssl verify: the CA secret's certificate verifies the head leaf" \
    "$(openssl verify -CAfile "$tmp/ca.pem" "$tmp/head.pem" 2>&1)" ": OK$"
has "openssl verify: ... and the worker leaf" \
    "$(openssl verify -CAfile "$tmp/ca.pem" "$tmp/worker.pem" 2>&1)" ": OK$"
cmp -s "$tmp/ca.pem" "$tmp/head-ca.pem" && ok "the head Secret's ca.crt is the CA" || bad "head ca.crt"
[[ $(openssl x509 -in "$tmp/head.pem" -noout -pubkey) == $(openssl pkey -in "$tmp/head.key" -pubout) ]] &&
    ok "tls.key matches tls.crt" || bad "tls.key matches tls.crt"
# the init container's own test: KubeRay's grep on `openssl x509 -text`
htext=$(openssl x509 -in "$tmp/head.pem" -noout -text)
has "head leaf SANs: localhost, the FQDN, 127.0.0.1, the head pod IP" "$htext" \
    "DNS:localhost" "DNS:$fqdn" "IP Address:127.0.0.1" "IP Address:${hip//./\\.}([^0-9.]|$)"
wtext=$(openssl x509 -in "$tmp/worker.pem" -noout -text)
for ip in $wips; do has "worker leaf lists $ip" "$wtext" "IP Address:${ip//./\\.}([^0-9.]|$)"; done

# the pods
for pod in $(kc_ get pods -l ray.io/cluster=$c -o name); do
    t=$(kc_ get "$pod" -o jsonpath='{.metadata.labels.ray\.io/node-type}')
    has "$pod: ray-tls volume of the $t Secret" "$(kc_ get "$pod" -o jsonpath='{.spec.volumes[?(@.name=="ray-tls")].secret.secretName}')" \
        "^ray-$t-secret-$c$"
    has "$pod: TLS env in order and the mount" "$(kc_ get "$pod" -o jsonpath='{range .spec.containers[0].env[*]}{.name}={.value}{"\n"}{end}{range .spec.containers[0].volumeMounts[*]}{.name}:{.mountPath}:{.readOnly}{"\n"}{end}' | grep -E 'TLS|ray-tls' | paste -sd' ')" \
        "^RAY_USE_TLS=1 RAY_TLS_SERVER_CERT=/etc/ray/tls/tls.crt RAY_TLS_SERVER_KEY=/etc/ray/tls/tls.key RAY_TLS_CA_CERT=/etc/ray/tls/ca.crt ray-tls:/etc/ray/tls:true$"
    has "$pod: wait-for-tls-ip-san first, sh -c, POD_IP, 50m/64Mi" "$(kc_ get "$pod" -o jsonpath='{.spec.initContainers[0].name} {.spec.initContainers[0].image} {.spec.initContainers[0].command[*]} {.spec.initContainers[0].env[0].name}={.spec.initContainers[0].env[0].valueFrom.fieldRef.fieldPath} {.spec.initContainers[0].resources.requests.cpu}/{.spec.initContainers[0].resources.limits.memory} {.spec.initContainers[0].volumeMounts[0].mountPath}')" \
        "^wait-for-tls-ip-san rayproject/ray:2.52.0 sh -c POD_IP=status.podIP 50m/64Mi /etc/ray/tls$"
    has "$pod: the wait script" "$(kc_ get "$pod" -o jsonpath='{.spec.initContainers[0].args[0]}')" \
        'CERT="/etc/ray/tls/tls.crt"' 'grep -qE "IP Address:\$\{POD_IP\}\(\[\^0-9\.\]\|\$\)"' 'sleep 5'
    if [[ $t == worker ]]; then
        has "$pod: wait-gcs-ready second, with the TLS env" "$(kc_ get "$pod" -o jsonpath='{.spec.initContainers[1].name} {.spec.initContainers[1].env[*].name}')" \
            "^wait-gcs-ready .*RAY_USE_TLS RAY_TLS_SERVER_CERT RAY_TLS_SERVER_KEY RAY_TLS_CA_CERT"
    fi
done
# pods only after the certificates were Ready (seconds: creationTimestamp >= Ready transition)
ready_at=$( (j certificate ray-head-cert-$c '{.status.conditions[?(@.type=="Ready")].lastTransitionTime}'; echo
    j certificate ray-worker-cert-$c '{.status.conditions[?(@.type=="Ready")].lastTransitionTime}'; echo) | sort | tail -1)
first_pod=$(kc_ get pods -l ray.io/cluster=$c -o jsonpath='{range .items[*]}{.metadata.creationTimestamp}{"\n"}{end}' | sort | head -1)
[[ -n $ready_at && -n $first_pod && ! $first_pod < $ready_at ]] &&
    ok "first pod ($first_pod) created at or after both leaves were Ready ($ready_at)" ||
    bad "pod creation order (first pod $first_pod, certificates Ready $ready_at)"

has "Event MTLSPKIReady before the first pods" \
    "$(kc_ get events --field-selector reason=MTLSPKIReady -o jsonpath='{range .items[*]}{.type} {.involvedObject.name} {.message}{"\n"}{end}')" \
    "^Normal $c mTLS PKI is ready"

# scale: the worker leaf follows the worker pods' IPs (added on scale-up, dropped on scale-down)
worker_ips_match() { # the worker Certificate, and the certificate in its Secret, list exactly the IPs
    local want have crt
    want=$(kc_ get pods -l ray.io/cluster=$c,ray.io/node-type=worker -o json | python3 -c '
import json, sys
print(" ".join(sorted(p["status"]["podIP"] for p in json.load(sys.stdin)["items"]
                      if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp"))))')
    [[ $(wc -w <<<"$want") -eq $1 ]] || return 1
    have=$(j certificate ray-worker-cert-$c '{.spec.ipAddresses[*]}' | tr ' ' '\n' | grep -vx 127.0.0.1 | sort | paste -sd' ')
    [[ $have == "$want" ]] || return 1
    crt=$(kc_ get secret ray-worker-secret-$c -o jsonpath='{.data.tls\.crt}' | base64 -d |
        openssl x509 -noout -ext subjectAltName | grep -o 'IP Address:[0-9.]*' | sed 's/IP Address://' |
        grep -vx 127.0.0.1 | sort | paste -sd' ')
    [[ $crt == "$want" ]]
}
kc_ patch raycluster $c --type json -p '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":3}]' >/dev/null
tl_wait 20 worker_ips_match 3 && ok "scale to 3: the worker leaf and its Secret list the 3 worker IPs" ||
    bad "scale to 3: worker leaf IPs ($(j certificate ray-worker-cert-$c '{.spec.ipAddresses[*]}'))"
kc_ patch raycluster $c --type json -p '[{"op":"replace","path":"/spec/workerGroupSpecs/0/replicas","value":1}]' >/dev/null
tl_wait 20 worker_ips_match 1 && ok "scale to 1: the removed workers' IPs are dropped" ||
    bad "scale to 1: worker leaf IPs ($(j certificate ray-worker-cert-$c '{.spec.ipAddresses[*]}'))"

# ---- 3. gate off: rejected ----------------------------------------------------------------------
"$ctl" down --state-dir "$state" --timeout 2s >/dev/null 2>&1
if up; then ok "up without the gate"; else bad "up"; sed 's/^/    | /' "$tmp/up.err"; fi
kc_ apply -f "$tmp/rc.yaml" >/dev/null || bad "RayCluster applied (gate off)"
rejected() {
    kc_ get events --field-selector reason=InvalidRayClusterSpec -o jsonpath='{.items[*].message}' |
        grep -q "The RayCluster spec is invalid default/$c: spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled"
}
tl_wait 15 rejected && ok "gate off: KubeRay's InvalidRayClusterSpec Event" ||
    bad "gate off: no rejection Event ($(kc_ get events -o jsonpath='{.items[*].message}'))"
n=$(kc_ get pods -l ray.io/cluster=$c -o name | wc -l)
[[ $n -eq 0 ]] && ok "gate off: no pods" || bad "gate off: $n pods"
echo "integration.mtls took $(($(date +%s) - t0)) s"
tl_summary
