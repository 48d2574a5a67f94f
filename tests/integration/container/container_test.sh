#!/usr/bin/env bash
# The pieces docker-compose.yml relies on, without Docker (see CMakeLists.txt).
#   container_test.sh BIN_DIR   (kubesim and rayfleetctl in it)
# Ends with "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../cli/testlib.sh"
tmp=$(mktemp -d)
ks=
trap '[[ -n "$ks" ]] && kill "$ks" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
ctl="$bin/rayfleetctl"

# --- kubesim as in the compose file: HTTPS on every interface, the service name in the cert ----
mkdir "$tmp/out"
"$bin/kubesim" --port 0 --tls-port 0 --tls-host 0.0.0.0 --tls-san kubesim --tls-san 10.9.8.7 \
    --nodes 1 --ready-file "$tmp/ready" \
    --kubeconfig-for "https://kubesim:1=$tmp/internal" \
    --kubeconfig-out "$tmp/host" >"$tmp/ks.out" 2>"$tmp/ks.err" &
ks=$!
for _ in $(seq 100); do [[ -s "$tmp/ready" ]] && break; sleep 0.1; done
plain=$(sed -n 's#^kubesim listening on http://127.0.0.1:\([0-9]*\)$#\1#p' "$tmp/ks.out")
tls=$(sed -n 's#^kubesim listening on https://127.0.0.1:\([0-9]*\)$#\1#p' "$tmp/ks.out")
if [[ -n "$plain" && -n "$tls" ]]; then ok "kubesim started"; else bad "kubesim started"; cat "$tmp/ks.err"; fi
# Listening IPv4 sockets from /proc/net/tcp (state 0A), as ADDR:PORT in hex: 00000000 is any.
listening() { awk 'NR > 1 && $4 == "0A" {print $2}' /proc/net/tcp; }
has "HTTPS listens on every interface, the plain port on 127.0.0.1 only" "$(listening)" \
    "^00000000:$(printf %04X "$tls")$" "^0100007F:$(printf %04X "$plain")$"
has "--kubeconfig-for writes the given server" "$(cat "$tmp/internal")" "server: https://kubesim:1$" \
    "certificate-authority-data: " "client-certificate-data: "
has "--kubeconfig-out keeps the local server" "$(cat "$tmp/host")" "server: https://127.0.0.1:$tls$"
expect_code "--kubeconfig-for kubeconfigs are mode 0640 (a credential the compose group reads)" 0 \
    test "$(stat -c %a "$tmp/internal")" = 640
expect_code "--kubeconfig-out and the ready file are mode 0600 (private)" 0 \
    test "$(stat -c %a "$tmp/host" "$tmp/ready" | sort -u)" = 600
# The in-network kubeconfig works where `kubesim` resolves to the server (here: to 127.0.0.1).
sed "s#https://kubesim:1#https://kubesim:$tls#" "$tmp/internal" >"$tmp/internal.port"
sed -n 's/^ *certificate-authority-data: //p' "$tmp/internal" | base64 -d >"$tmp/ca.pem"
expect_code "the certificate names kubesim (TLS verified)" 0 \
    curl -sf --cacert "$tmp/ca.pem" --resolve "kubesim:$tls:127.0.0.1" "https://kubesim:$tls/version"
expect_code "and not another name" 60 \
    curl -s --cacert "$tmp/ca.pem" --resolve "other:$tls:127.0.0.1" "https://other:$tls/version"
has "the extra IP address is in the certificate" \
    "$(openssl s_client -connect "127.0.0.1:$tls" </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName)" \
    "IP Address:127\.0\.0\.1" "DNS:localhost" "DNS:kubesim" "IP Address:10\.9\.8\.7"
expect_code "kubectl through the local kubeconfig" 0 kubectl --kubeconfig "$tmp/host" get nodes

# --- rayfleetctl crds: the compose file's one-shot step --------------------------------------
out=$("$ctl" crds --kubeconfig "$tmp/host" 2>&1)
has "crds installs the ray.io CRDs" "$out" "CRD rayclusters.ray.io created" "4 CRDs Established"
out=$("$ctl" crds --kubeconfig "$tmp/host" 2>&1)
has "crds again: present, nothing created" "$out" "CRD rayclusters.ray.io present" "4 CRDs Established"
expect_code "kubectl sees the RayCluster resource" 0 kubectl --kubeconfig "$tmp/host" get rayclusters
out=$("$ctl" crds 2>&1)
has "crds without --kubeconfig names it" "$out" "--kubeconfig: required"
expect_code "crds without --kubeconfig exits 2" 2 "$ctl" crds
has "crds names itself and --crds in errors" "$("$ctl" crds --kubeconfig "$tmp/host" --crds /nonexistent 2>&1)" \
    "^rayfleetctl crds: --crds: '/nonexistent' is not a directory$"

# --- rayfleetctl probe: the containers' health checks ------------------------------------------
expect_code "probe: 200 is healthy" 0 "$ctl" probe --quiet "http://127.0.0.1:$plain/version"
has "probe prints the status" "$("$ctl" probe "http://localhost:$plain/version")" ": 200$"
expect_code "probe: 404 is not" 1 "$ctl" probe --quiet "http://127.0.0.1:$plain/no-such-path"
expect_code "probe: tcp:// connects" 0 "$ctl" probe --quiet "tcp://127.0.0.1:$tls"
kill "$ks"; wait "$ks" 2>/dev/null; ks=
expect_code "probe: nothing listening is not healthy (http)" 1 "$ctl" probe --quiet "http://127.0.0.1:$plain/version"
expect_code "probe: nothing listening is not healthy (tcp)" 1 "$ctl" probe --quiet "tcp://127.0.0.1:$tls"
has "probe: a bad URL names the rule" "$("$ctl" probe ftp://x 2>&1)" "URL: must be http://HOST:PORT/PATH or tcp://HOST:PORT"
expect_code "probe: a bad URL exits 2" 2 "$ctl" probe "http://127.0.0.1/no-port"

# --- kubesim refuses bad values of the new flags, naming flag and rule ------------------------
has "--tls-host must be an address" "$("$bin/kubesim" --tls-host kubesim 2>&1)" "--tls-host: must be an IPv4 or IPv6 address"
has "--tls-san entries must be names or addresses" "$("$bin/kubesim" --tls-san 'a b' 2>&1)" "--tls-san: must be host names or IP addresses"
has "--kubeconfig-for must be SERVER=FILE" "$("$bin/kubesim" --kubeconfig-for /tmp/x 2>&1)" "--kubeconfig-for: must be SERVER=FILE"
expect_code "a bad --tls-san exits 2" 2 "$bin/kubesim" --tls-san 'bad_name'

# --- rayfleetctl bus-keys: the compose file's keys step; the bus reads its key files from the
# environment as the compose file sets it ---------------------------------------------------------
out=$("$ctl" bus-keys --state-dir "$tmp/cs" 2>&1)
has "bus-keys prints STATE/keys" "$out" "^$tmp/cs/keys$"
has "bus-keys: the bus's pair, a pair per client, the allow-list" \
    "$(cd "$tmp/cs/keys" && ls | tr '\n' ' ')" \
    "^allow bus.key bus.pub scheduler.key serve-upgrade.key submitter.key watcher.key $"
has "bus-keys: the keys dir is 0700, a pair 0600" \
    "$(stat -c %a "$tmp/cs/keys") $(stat -c %a "$tmp/cs/keys/watcher.key")" "^700 600$"
before=$(cat "$tmp/cs/keys/bus.pub")
"$ctl" bus-keys --state-dir "$tmp/cs" >/dev/null 2>&1
[[ $(cat "$tmp/cs/keys/bus.pub") == "$before" ]] && ok "bus-keys again keeps the keys" ||
    bad "bus-keys again keeps the keys"
RAYFLEET_BUS_CURVE_KEY_FILE="$tmp/cs/keys/bus.key" RAYFLEET_BUS_CURVE_ALLOW_FILE="$tmp/cs/keys/allow" \
    RAYFLEET_BUS_IPC_AUTH=curve "$bin/rayfleet-bus" --bus.frontend "ipc://$tmp/b-in" --bus.backend "ipc://$tmp/b-out" \
    --health.port 0 >"$tmp/bus.log" 2>&1 &
bp=$!
tl_wait 10 grep -q 'forwarder ready' "$tmp/bus.log"
has "the bus takes its key files from the environment" "$(cat "$tmp/bus.log")" '"curve":"on"'
kill "$bp" 2>/dev/null
wait "$bp" 2>/dev/null

# --- the image's runtime stage installs every shared library the binaries need ---------------
# (kubesim gained libprotobuf-c once and the image lacked it: only compose-test noticed). Each
# NEEDED library of each binary the image holds is found with ldconfig, its Debian package with
# dpkg -S, and that package must be in the Dockerfile's runtime apt-get line.
dockerfile="$here/../../../docker/Dockerfile"
pkgs=$(awk '/^FROM debian:bookworm-slim/{rt=1} rt && /apt-get install/{on=1} on{print} on && !/\\$/{on=0}' \
    "$dockerfile" | tr ' \\' '\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' | sort -u)
missing=""
for b in rayfleet-bus rayfleet-watcher rayfleet-scheduler rayfleet-submitter rayfleet-serve-upgrade \
    rayfleetctl kubesim; do
    [[ -x "$bin/$b" ]] || { missing+=" $b(not built)"; continue; }
    for lib in $(readelf -d "$bin/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
        pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
        [[ -z "$pkg" ]] && pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
        # libc6 is in the base; the sanitizer runtimes only in an ASan/UBSan test build
        [[ "$pkg" == libc6 || "$lib" == libasan.* || "$lib" == libubsan.* ]] && continue
        grep -qx -- "$pkg" <<<"$pkgs" || missing+=" $b:$lib(${pkg:-no package})"
    done
done
if [[ -z "$missing" ]]; then
    ok "the image's runtime stage installs every library the binaries link"
else
    bad "the image's runtime stage installs every library the binaries link"
    echo "     missing:$missing"
fi

tl_summary
