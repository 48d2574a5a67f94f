#!/usr/bin/env bash
# Installs, with apt-get, exactly the Debian packages rayfleet needs to build, test and run,
# and only those that are missing. Prints nothing when everything is present.
#   --build-only  only the packages that build the binaries (docker/Dockerfile's build stage)
#   --fuzz        only the packages of the libFuzzer harnesses (scripts/fuzz.sh, make fuzz-smoke)
set -euo pipefail

BUILD_PACKAGES=(
    gcc make cmake pkg-config git ca-certificates tzdata
    libzmq3-dev               # bus: ZeroMQ
    libprotobuf-c-dev         # bus: protobuf-c runtime
    protobuf-c-compiler       # protoc-c, generates proto/*.pb-c.[ch] at build time
    libsqlite3-dev            # store
    libcurl4-openssl-dev      # http (Kubernetes and Ray HTTP APIs)
    libyaml-dev               # yaml
    libjansson-dev            # json
    libmicrohttpd-dev         # sim/kubesim HTTP server
    libssl-dev                # sim/kubesim: self-signed CA and certificates
    libmimalloc-dev           # every executable allocates with mimalloc (CMakeLists.txt RF_MIMALLOC)
)
PACKAGES=(
    "${BUILD_PACKAGES[@]}"
    openssl                   # tests: client certificates
    curl                      # tests: HTTP requests to kubesim
    sqlite3                   # tests: read audit rows the way an SRE would
    jq                        # tests: compare JSON (statuses mirrored, pod fields)
    procps                    # tests and bench: ps for RSS
    clang-format              # make lint: the committed .clang-format
    prometheus                # integration.prometheus: prometheus and promtool (19 MB download, 96 MB installed)
)

FUZZ_PACKAGES=(
    clang                     # tests/fuzz: the harnesses are built with clang -fsanitize=fuzzer
    libclang-rt-14-dev        # libFuzzer and the sanitizer runtimes for clang 14 (bookworm)
)

[[ "${1:-}" == --build-only ]] && PACKAGES=("${BUILD_PACKAGES[@]}")
[[ "${1:-}" == --fuzz ]] && PACKAGES=("${FUZZ_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing missing Debian packages: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=sudo
    else
        echo "deps: these packages are missing and installing them needs root:" >&2
        echo "      apt-get install -y ${missing[*]}" >&2
        echo "      run that as root (or make deps with sudo), then try again." >&2
        exit 1
    fi
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
