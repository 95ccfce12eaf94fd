#!/usr/bin/env bash
# The fresh-machine figure of docs/BENCHMARKS.md: `make demo` from a new clone with every cache
# empty (pip, uv, the test cloud's venvs, the demo cloud), each line of its output stamped with
# the seconds since the start; the total at the end.
#
#   bash tools/fresh_demo_bench.sh                   caches empty; engine and Debian packages as they are
#   bash tools/fresh_demo_bench.sh --as-new-machine  also no engine: dockerd stopped, docker.io (containerd, runc, tini),
#        debootstrap, MariaDB (server and core), RabbitMQ, qemu-utils and HAProxy removed, /var/lib/docker moved aside (every
#        image with it); afterwards the new engine is stopped and the old /var/lib/docker put back.
#        Only when nothing else uses the engine or those packages. As root, on Debian.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
new_machine=${1:-}
work=$(mktemp -d /var/tmp/tcup-fresh-demo.XXXXXX)
saved=/var/lib/docker.fresh-demo-saved

stop_dockerd() {
    local pid
    pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do sleep 1; done
}

restore_engine() {
    echo "fresh-demo: putting the earlier engine back"
    stop_dockerd
    if [ -d "$saved" ]; then
        rm -rf /var/lib/docker
        mv "$saved" /var/lib/docker
    fi
    command -v dockerd >/dev/null || bash "$here/.ci/engine.sh" >/dev/null  # the demo failed before installing it
    stop_dockerd
    nohup dockerd >/var/log/tcup-dockerd.log 2>&1 &
}

if [ "$new_machine" = "--as-new-machine" ]; then
    [ ! -e "$saved" ] || { echo "fresh-demo: $saved exists (an earlier run was cut short); put it back first" >&2; exit 1; }
    echo "fresh-demo: stopping dockerd, removing docker.io, debootstrap and the test cloud's back ends"
    trap restore_engine EXIT
    stop_dockerd
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq docker.io containerd runc tini debootstrap mariadb-server mariadb-server-core rabbitmq-server qemu-utils haproxy >/dev/null
    mv /var/lib/docker "$saved"
fi

git clone -q "$here" "$work/tcup"
export XDG_CACHE_HOME=$work/cache PIP_CACHE_DIR=$work/cache/pip UV_CACHE_DIR=$work/cache/uv
start=$(date +%s.%N)
status=0
(cd "$work/tcup" && make demo) 2>&1 | python3 -u -c '
import sys, time
start = float(sys.argv[1])
for line in sys.stdin:
    print(f"{time.time() - start:7.1f}  {line}", end="", flush=True)
' "$start" || status=$?
echo "fresh-demo: make demo exited $status after $(python3 -c "import time; print(round(time.time() - $start))") s (clone and caches in $work)"
exit $status
