#!/usr/bin/env bash
# The distro matrix's machines: Debian 11, 12, 13 and unstable (sid) as container
# images (tcup-ci/debian:11 ... tcup-ci/debian:sid) with their own python3, and
# Debian 12 for 64-bit ARM (tcup-ci/debian:12-arm64, run through qemu-user-static),
# made with debootstrap from this machine's Debian mirror (no registry is in reach)
# and kept between runs. The tests run tcup.pyz inside each with that distro's Python.
set -euo pipefail
. "$(dirname "$0")/apt.sh"

mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -v '^\s*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian}
# openssh-client: the matrix signs with keys in OpenSSH form made by ssh-keygen.
packages=python3,openssh-client

# arm64 binaries run here through the kernel's binfmt_misc and Debian's qemu-user-static
# (registered with the F flag, so they run inside containers too).
arm64_emulation() {
    if ! [ -x /usr/bin/qemu-aarch64-static ] || ! command -v update-binfmts >/dev/null; then
        echo "distros: installing qemu-user-static and binfmt-support"
        apt_install qemu-user-static binfmt-support
    fi
    [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
}

make_image() {
    local name=$1 suite=$2 arch=${3:-} tag="tcup-ci/debian:$1" root
    if docker image inspect "$tag" >/dev/null 2>&1; then
        return
    fi
    echo "distros: making $tag ($suite${arch:+ $arch}) with debootstrap"
    root=$(mktemp -d)
    if [ -n "$arch" ]; then
        # A foreign architecture: unpack here, configure inside through the emulator.
        debootstrap --variant=minbase --include=$packages --arch="$arch" --foreign "$suite" "$root" "$mirror" >/dev/null
        chroot "$root" /debootstrap/debootstrap --second-stage >/dev/null
    else
        debootstrap --variant=minbase --include=$packages "$suite" "$root" "$mirror" >/dev/null
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import ${arch:+--platform "linux/$arch"} - "$tag" >/dev/null
    rm -rf "$root"
}

arm64_emulation
make_image 11 bullseye &
make_image 12 bookworm &
make_image 13 trixie &
make_image sid sid &
make_image 12-arm64 bookworm arm64 &
wait
for name in 11 12 13 sid 12-arm64; do
    docker image inspect "tcup-ci/debian:$name" >/dev/null
    echo "distros: tcup-ci/debian:$name: $(docker run --rm "tcup-ci/debian:$name" sh -c \
        'echo "$(python3 -V) glibc $(ldd --version | head -n1 | grep -oE "[0-9.]+\$") $(uname -m)"')"
done
