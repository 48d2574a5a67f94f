#!/usr/bin/env bash
# Builds the base image debian:bookworm-slim from Debian's packages when the Docker engine does not
# have it (there is no registry to pull it from): debootstrap --variant=minbase of bookworm into a
# temporary directory, trimmed like the official slim image (no docs, man pages or locales, and a
# dpkg filter that keeps later installs trimmed), imported with `docker import`. Idempotent: prints
# nothing and does nothing when the tag exists. Needs root (debootstrap); installs debootstrap with
# apt-get when it is missing.
#   RF_DEBIAN_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   RF_BASE_IMAGE     tag to create (default debian:bookworm-slim)
set -euo pipefail
mirror=${RF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
tag=${RF_BASE_IMAGE:-debian:bookworm-slim}
suite=bookworm

die() { echo "base-image: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "the docker command is missing; install Docker Engine first"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker engine ('docker info' fails); is it running and may this user use it?"
docker image inspect "$tag" >/dev/null 2>&1 && exit 0

SUDO=
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null ||
        die "building $tag with debootstrap needs root; run this script as root (or with sudo)"
    SUDO=sudo
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    install=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap)
    # A fresh machine may have no package lists yet: update once, then try again.
    if ! out=$("${install[@]}" 2>&1) && ! out=$($SUDO apt-get update -qq 2>&1 && "${install[@]}" 2>&1); then
        echo "$out" >&2
        die "cannot install debootstrap with apt-get (its output is above)"
    fi
fi

work=$(mktemp -d /var/tmp/rf-base.XXXXXX)
trap '$SUDO rm -rf "$work"' EXIT
root="$work/rootfs"
log="$work/debootstrap.log"
start=$(date +%s)
if ! $SUDO debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "debootstrap $suite from $mirror failed (the last lines of its log are above)"
fi

# Trim like the slim image, and keep later installs (apt-get in a Dockerfile) trimmed the same way.
$SUDO tee "$root/etc/dpkg/dpkg.cfg.d/docker" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
$SUDO tee "$root/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
$SUDO tee "$root/etc/apt/apt.conf.d/docker-no-languages" >/dev/null <<'EOF'
Acquire::Languages "none";
EOF
$SUDO rm -f "$root/etc/apt/sources.list"
$SUDO tee "$root/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
$SUDO find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
$SUDO find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
$SUDO rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
    "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.cache
$SUDO find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
: | $SUDO tee "$root/etc/machine-id" >/dev/null
$SUDO rm -f "$root/etc/hostname" "$root/etc/resolv.conf"

if ! $SUDO tar -C "$root" --numeric-owner -c . |
    docker import -c 'CMD ["bash"]' -m "debootstrap --variant=minbase $suite $mirror" - "$tag" >/dev/null; then
    die "docker import of the $suite root filesystem as $tag failed"
fi
[[ -n "${RF_BASE_IMAGE_VERBOSE:-}" ]] && echo "base-image: built $tag in $(($(date +%s) - start)) s" >&2
exit 0
