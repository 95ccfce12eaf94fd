#!/usr/bin/env bash
# Podman for TCUP's tests, in both modes, each serving the Docker-compatible API and each
# holding debian:bookworm-slim (copied from dockerd). Debian 12, as root; safe to run again.
#   bash .ci/podman.sh        install what is missing, start both services, load the base image
#   bash .ci/podman.sh stop   stop both services, their containers and the rootless pause process
# The sandbox-only settings are in /etc/tcup-ci/ and reach only the Podman started here
# (through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF); a real user's Podman needs none of them.
# By hand, go through the services:  podman --remote --url unix:///run/podman/podman.sock ps
# (as root, the rootless one too: --url unix:///run/user/$(id -u tcup-rootless)/podman/podman.sock).
set -euo pipefail

IMAGE=debian:bookworm-slim
FULL_IMAGE=docker.io/library/$IMAGE      # what `podman pull debian:bookworm-slim` names it
RL_USER=tcup-rootless
CONF_DIR=/etc/tcup-ci
CONF=$CONF_DIR/containers.conf
STORAGE_CONF=$CONF_DIR/storage.conf
ROOTFUL_SOCK=/run/podman/podman.sock
ROOTFUL_LOG=/var/log/tcup-podman-rootful.log
ROOTLESS_LOG=/var/log/tcup-podman-rootless.log
here=$(cd "$(dirname "$0")" && pwd)

log() { echo "podman: $*"; }
die() { echo "podman: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run me as root"

# ---- how to run things in each mode ---------------------------------------------------------
# A clean environment, like a service manager gives (nothing of the caller's leaks into Podman).
rootful=(env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    CONTAINERS_CONF="$CONF")
rootless=()        # filled by rootless_known
rl_uid='' rl_home='' rl_run='' ROOTLESS_SOCK=''
rootless_known() {
    id -u "$RL_USER" >/dev/null 2>&1 || return 1
    rl_uid=$(id -u "$RL_USER")
    rl_home=$(getent passwd "$RL_USER" | cut -d: -f6)
    rl_run=/run/user/$rl_uid
    ROOTLESS_SOCK=$rl_run/podman/podman.sock
    # setpriv execs (no fork), so a background job's $! is Podman's own pid; a clean environment.
    rootless=(setpriv --reuid="$rl_uid" --regid="$(id -g "$RL_USER")" --init-groups
        env -i HOME="$rl_home" USER="$RL_USER" LOGNAME="$RL_USER" PATH=/usr/local/bin:/usr/bin:/bin
        XDG_RUNTIME_DIR="$rl_run" CONTAINERS_CONF="$CONF" CONTAINERS_STORAGE_CONF="$STORAGE_CONF")
}
in_rootless() { (cd "$rl_home" && exec "${rootless[@]}" "$@"); }
in_rootful() { "${rootful[@]}" "$@"; }

answers() { [ -S "$1" ] && [ "$(curl -s --max-time 3 --unix-socket "$1" http://d/_ping 2>/dev/null)" = OK ]; }

# Pids of `podman system service ... unix://SOCK` (matched on the exact socket argument).
service_pids() {
    local f pid args
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}; pid=${pid%/cmdline}
        args=$({ tr '\0' '\n' <"$f"; } 2>/dev/null || true)
        args=$'\n'$args$'\n'
        if [[ $args == *$'\n'"unix://$1"$'\n'* && $args == *$'\n'service$'\n'* ]]; then echo "$pid"; fi
    done
    return 0
}

end_pids() {   # TERM, wait up to 10 s, then KILL
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    for _ in $(seq 50); do
        local alive=0 p
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.2
    done
    kill -KILL "$@" 2>/dev/null || true
}

# ---- stop -----------------------------------------------------------------------------------
stop_all() {
    command -v podman >/dev/null || { log "not installed, nothing to stop"; return 0; }
    local ids=() pids=()
    mapfile -t ids < <(in_rootful podman ps -q 2>/dev/null || true)
    if [ ${#ids[@]} -gt 0 ]; then
        log "stopping rootful containers"; in_rootful podman stop -t 5 "${ids[@]}" >/dev/null || true
    fi
    mapfile -t pids < <(service_pids "$ROOTFUL_SOCK")
    if rootless_known && [ -d "$rl_run" ]; then
        mapfile -t ids < <(in_rootless podman ps -q 2>/dev/null || true)
        if [ ${#ids[@]} -gt 0 ]; then
            log "stopping rootless containers"; in_rootless podman stop -t 5 "${ids[@]}" >/dev/null || true
        fi
        mapfile -t -O "${#pids[@]}" pids < <(service_pids "$ROOTLESS_SOCK")
    fi
    end_pids "${pids[@]}"                # both services at once: each takes ~1.5 s to exit
    rm -f "$ROOTFUL_SOCK"
    if [ -n "$rl_uid" ]; then
        rm -f "$ROOTLESS_SOCK"
        # Then the user namespace's pause process, and anything else the CI-only user still runs.
        mapfile -t pids < <(pgrep -u "$rl_uid" || true)
        end_pids "${pids[@]}"
        rm -f "$rl_run/libpod/tmp/pause.pid"
    fi
    log "stopped"
}

if [ "${1:-}" = stop ]; then rootless_known || true; stop_all; exit 0; fi
[ $# -eq 0 ] || die "usage: $0 [stop]"

# ---- 1. packages ----------------------------------------------------------------------------
# catatonit: `--init` (init=True) runs /usr/libexec/podman/catatonit. Debian's podman only
# recommends "catatonit | tini | dumb-init", and tini (which docker.io brings) satisfies that
# without giving Podman an init. uidmap (newuidmap) and slirp4netns are for rootless.
# Not needed here: fuse-overlayfs (this kernel mounts overlay in a user namespace), dbus-user-session
# (cgroupfs manager, no systemd), netavark (the CNI plugins come with podman).
need=()
for p in podman catatonit uidmap slirp4netns curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# ---- 4. the test-only configuration ---------------------------------------------------------
# CONTAINERS_CONF replaces Debian's /usr/share/containers/containers.conf instead of adding to it,
# and that file is more than defaults (it drops AUDIT_WRITE, MKNOD and NET_RAW from the default
# capabilities): so the test file is Debian's own with these settings put into their sections.
ovr_containers=$(cat <<'EOF'
# TCUP CI: rootful Podman raises RLIMIT_NOFILE to 1048576, above this sandbox's hard limit: "error setting rlimit type 7".
default_ulimits = []
EOF
)
ovr_network=$(cat <<'EOF'
# TCUP CI: podman brings the CNI plugins, netavark is only recommended: pin CNI so installing netavark cannot switch.
network_backend = "cni"
EOF
)
ovr_engine=$(cat <<'EOF'
# TCUP CI: no systemd here (PID 1 is the sandbox's own init), so cgroupfs (Podman's guess too), never a systemd scope.
cgroup_manager = "cgroupfs"
# TCUP CI: no journald here either, so events go to a file (Podman's guess too).
events_logger = "file"
EOF
)
# Some machines mount cgroup v1 with a cgroup2 tree beside it that holds a controller (hugetlb, seen
# here): crun then refuses every container ("cgroups in hybrid mode not supported"); runc copes.
if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
    command -v runc >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null; }
    ovr_engine+=$'\n# TCUP CI: cgroup v1 with a cgroup2 tree that holds controllers, which crun refuses (hybrid mode).\nruntime = "runc"'
fi
install -d -m 0755 "$CONF_DIR"
{
    echo "# TCUP CI only: written by .ci/podman.sh for its Podman services (CONTAINERS_CONF);"
    echo "# a real user's machine needs none of this. Debian's containers.conf plus the TCUP CI lines."
    distro=/usr/share/containers/containers.conf
    [ -f "$distro" ] || distro=/dev/null
    OVR_containers=$ovr_containers OVR_network=$ovr_network OVR_engine=$ovr_engine awk '
        /^[[:space:]]*(#|$)/ { next }
        skip { if ($0 ~ /\]/) skip = 0; next }
        /^[[:space:]]*(default_ulimits|network_backend|cgroup_manager|events_logger|runtime)[[:space:]]*=/ {
            if ($0 ~ /\[/ && $0 !~ /\]/) skip = 1
            next
        }
        { print }
        /^\[(containers|network|engine)\][[:space:]]*$/ {
            sec = $0; gsub(/[][[:space:]]/, "", sec); print ENVIRON["OVR_" sec]; seen[sec] = 1
        }
        END {
            n = split("containers network engine", all, " ")
            for (i = 1; i <= n; i++) if (!(all[i] in seen)) print "[" all[i] "]\n" ENVIRON["OVR_" all[i]]
        }' "$distro"
} >"$CONF.new"
[ ! -f /etc/containers/containers.conf ] || log "note: /etc/containers/containers.conf is not used by the test services"
cat >"$STORAGE_CONF.new" <<'EOF'
# TCUP CI only: CONTAINERS_STORAGE_CONF of the rootless Podman started by .ci/podman.sh.
[storage]
# Without fuse-overlayfs rootless would fall back to vfs (a full copy per layer); this kernel does overlay in a userns.
driver = "overlay"
EOF
conf_changed=0
for f in "$CONF" "$STORAGE_CONF"; do
    chmod 0644 "$f.new"
    if cmp -s "$f.new" "$f"; then rm -f "$f.new"; else mv -f "$f.new" "$f"; conf_changed=1; fi
done

# ---- 3. the rootless user -------------------------------------------------------------------
if ! id -u "$RL_USER" >/dev/null 2>&1; then
    log "creating user $RL_USER"
    useradd --create-home --shell /bin/bash --comment "TCUP CI rootless Podman" "$RL_USER"
fi
rootless_known
add_subids() {   # FILE usermod-option: 65536 subordinate ids past every range already given
    local file=$1 opt=$2 start
    grep -qE "^($RL_USER|$rl_uid):" "$file" 2>/dev/null && return 0
    start=$(awk -F: 'BEGIN { m = 100000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }' "$file" 2>/dev/null || echo 100000)
    usermod "$opt" "$start-$((start + 65535))" "$RL_USER"
}
add_subids /etc/subuid --add-subuids
add_subids /etc/subgid --add-subgids
install -d -m 0755 /run/user
install -d -m 0700 -o "$rl_uid" -g "$(id -g "$RL_USER")" "$rl_run" "$rl_run/podman"
# Sandbox: /dev/net/tun is 0600 here (udev makes it 0666 on Debian); slirp4netns opens it as the user.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then chmod 0666 /dev/net/tun; fi

# ---- 5. the base image, from dockerd, into both storages ------------------------------------
docker_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
load_into=()
for mode in rootful rootless; do
    have=$(in_"$mode" podman image inspect -f '{{.Id}}' "$FULL_IMAGE" 2>/dev/null || true)
    if [ -z "$have" ] || { [ -n "$docker_id" ] && [ "sha256:${have#sha256:}" != "$docker_id" ]; }; then
        load_into+=("$mode")
    fi
done
if [ ${#load_into[@]} -gt 0 ]; then
    if [ -z "$docker_id" ]; then
        bash "$here/engine.sh"
        docker_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
    fi
    tmp=$(mktemp -d /var/tmp/tcup-podman.XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    chmod 0755 "$tmp"
    docker save "$IMAGE" -o "$tmp/base.tar"
    chmod 0644 "$tmp/base.tar"
    for mode in "${load_into[@]}"; do
        log "loading $IMAGE into $mode Podman"
        in_"$mode" podman load -q -i "$tmp/base.tar" >/dev/null
        # A `docker save` tar loads as localhost/debian:bookworm-slim: name it as a pull would.
        in_"$mode" podman tag "$docker_id" "$FULL_IMAGE"
        if in_"$mode" podman image exists "localhost/$IMAGE"; then
            in_"$mode" podman untag "$FULL_IMAGE" "localhost/$IMAGE"
        fi
    done
fi

# ---- 2./3. the services ---------------------------------------------------------------------
start_service() {   # MODE SOCK LOG: start `podman system service` unless SOCK already answers
    local mode=$1 sock=$2 logf=$3 pid
    if answers "$sock" && [ "$conf_changed" = 0 ]; then return 0; fi
    # shellcheck disable=SC2046
    end_pids $(service_pids "$sock")     # one that no longer answers, or has an older config
    rm -f "$sock"
    echo "=== $(date -Is) starting" >>"$logf"
    if [ "$mode" = rootful ]; then
        install -d -m 0755 "$(dirname "$sock")"
        nohup "${rootful[@]}" podman system service --time=0 "unix://$sock" >>"$logf" 2>&1 </dev/null &
    else
        (cd "$rl_home" && exec nohup "${rootless[@]}" podman system service --time=0 "unix://$sock") \
            >>"$logf" 2>&1 </dev/null &
    fi
    pid=$!
    for _ in $(seq 150); do
        answers "$sock" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    tail -n 20 "$logf" >&2
    die "$mode service did not answer on $sock (log: $logf)"
}
start_service rootful "$ROOTFUL_SOCK" "$ROOTFUL_LOG"
start_service rootless "$ROOTLESS_SOCK" "$ROOTLESS_LOG"

log "rootful unix://$ROOTFUL_SOCK ready"
log "rootless ($RL_USER) unix://$ROOTLESS_SOCK ready"
