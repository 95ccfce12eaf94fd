#!/usr/bin/env bash
# The distro matrix's machines: Debian 11, 12 and 13 as container images
# (tcup-ci/debian:11 ...) with their own python3, made with debootstrap from
# this machine's Debian mirror (no registry is in reach) and kept between
# runs. The tests run tcup.pyz inside each with that distro's Python.
set -euo pipefail

mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -v '^\s*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian}

make_image() {
    local number=$1 suite=$2 tag="tcup-ci/debian:$1" root
    if docker image inspect "$tag" >/dev/null 2>&1; then
        return
    fi
    echo "distros: making $tag ($suite) with debootstrap"
    root=$(mktemp -d)
    # openssh-client: the matrix signs with keys in OpenSSH form made by ssh-keygen.
    debootstrap --variant=minbase --include=python3,openssh-client "$suite" "$root" "$mirror" >/dev/null
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import - "$tag" >/dev/null
    rm -rf "$root"
}

make_image 11 bullseye &
make_image 12 bookworm &
make_image 13 trixie &
wait
for number in 11 12 13; do
    docker image inspect "tcup-ci/debian:$number" >/dev/null
    echo "distros: tcup-ci/debian:$number: $(docker run --rm "tcup-ci/debian:$number" python3 -V) \
glibc $(docker run --rm "tcup-ci/debian:$number" sh -c "ldd --version | head -n1 | grep -oE '[0-9.]+\$'")"
done
