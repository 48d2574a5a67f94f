#!/usr/bin/env bash
# make images: the base image (scripts/base-image.sh, only when debian:bookworm-slim is absent),
# then docker/Dockerfile, tagged rayfleet:dev and rayfleet:<version of CMakeLists.txt>. Quiet on
# success but for one line per image and its time; on failure, the end of the build log.
# The build uses the host's network (--network host) and passes the host's address of the Debian
# mirror (--add-host) so apt-get in the build resolves it as the host does (/etc/hosts).
#   RF_IMAGE        repository to tag (default rayfleet)
#   RF_DEBIAN_MIRROR  Debian mirror host taken from its URL (default http://deb.debian.org/debian)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
repo=${RF_IMAGE:-rayfleet}
mirror=${RF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
version=$(sed -n 's/^project(rayfleet VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
[[ -n "$version" ]] || { echo "images: no 'project(rayfleet VERSION x.y.z' line in CMakeLists.txt" >&2; exit 1; }

t0=$(date +%s)
"$top/scripts/base-image.sh"
t1=$(date +%s)
echo "images: debian:bookworm-slim ready ($((t1 - t0)) s)"

net=(--network host)
mhost=$(echo "$mirror" | sed -n 's#^[a-z]*://\([^/:]*\).*#\1#p')
if [[ -n "$mhost" ]] && addr=$(getent ahostsv4 "$mhost" | awk 'NR==1{print $1}') && [[ -n "$addr" ]]; then
    net+=(--add-host "$mhost:$addr")
fi
log=$(mktemp /tmp/rf-images.XXXXXX)
trap 'rm -f "$log"' EXIT
if ! docker build "${net[@]}" -f "$top/docker/Dockerfile" --build-arg RF_VERSION="$version" \
    -t "$repo:dev" -t "$repo:$version" "$top" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "images: docker build of docker/Dockerfile failed (the end of its log is above)" >&2
    exit 1
fi
t2=$(date +%s)
size=$(docker image inspect -f '{{.Size}}' "$repo:dev")
echo "images: $repo:dev and $repo:$version built ($((t2 - t1)) s, $((size / 1000000)) MB)"
