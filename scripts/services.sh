#!/usr/bin/env bash
# Make sure the local PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) that the service
# tests talk to are running; start them the way this machine's image does if they are not.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 6379 && command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
if ! port_open 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
for _ in $(seq 1 30); do
    port_open 6379 && port_open 5432 && exit 0
    sleep 1
done
port_open 6379 || echo "warning: Redis is not reachable on 127.0.0.1:6379; its tests will be skipped" >&2
port_open 5432 || echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432; its tests will be skipped" >&2
exit 0
