#!/usr/bin/env bash
# What the test cloud (tools/cloud.py, docs/TEST-CLOUD.md) needs from Debian on a
# machine that may be new: MariaDB, RabbitMQ, qemu-img, and HAProxy and openssl for
# the tls profile (its proxy and its private CA). The cloud starts them
# as private processes; their system services must not start (no systemd here, and
# a stray mysqld or beam on the default ports helps nobody), so installing runs
# behind a policy-rc.d that refuses every service start, removed afterwards.
set -euo pipefail
. "$(dirname "$0")/apt.sh"

need=()
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
[ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v openssl >/dev/null || need+=(openssl)
[ ${#need[@]} -eq 0 ] && exit 0

echo "cloud: installing ${need[*]}"
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f "$policy"' EXIT
apt_install "${need[@]}"
