#!/usr/bin/env bash
# Make sure a Docker engine runs and has debian:bookworm-slim, on a machine that may be new
# (Debian, as root: missing packages come from apt). `make demo` and `make test` run it too.
set -euo pipefail
. "$(dirname "$0")/apt.sh"

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
    echo "engine: installing ${need[*]}"
    apt_install "${need[@]}"
fi

if ! docker info >/dev/null 2>&1; then
    echo "engine: starting dockerd"
    nohup dockerd >/var/log/tcup-dockerd.log 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "engine: dockerd did not start; see /var/log/tcup-dockerd.log" >&2; exit 1; }
fi

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1 \
        && ! timeout 300 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
    # No registry answers (as on CI here): build the same base from Debian's mirror.
    echo "engine: making debian:bookworm-slim with debootstrap"
    # The first active Debian mirror in apt's sources (deb822 or one-line form), not a commented one.
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -v '^\s*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    # Like Debian's own slim image: no downloaded packages, no package lists.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import - debian:bookworm-slim >/dev/null
fi
echo "engine: ready ($(docker version --format '{{.Server.Version}}'))"
