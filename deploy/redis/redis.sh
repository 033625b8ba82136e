#!/usr/bin/env bash
# Redis (Debian's redis-server) on loopback for tests and local runs; state under <repo>/.redis.
#   deploy/redis/redis.sh up|down|status
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
home=${REDIS_HOME:-$root/.redis}
port=${REDIS_PORT:-6379}
pidfile=$home/redis.pid

log() { echo "redis: $*" >&2; }
running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

up() {
  if running; then log "already running (pid $(cat "$pidfile"))"; return; fi
  command -v redis-server > /dev/null || { log "redis-server not installed (apt-get install redis-server)"; exit 1; }
  mkdir -p "$home"
  # A cache, not a store: no snapshots, no append-only file.
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$pidfile" --dir "$home" \
    --logfile "$home/redis.log" --save '' --appendonly no
  for _ in $(seq 1 50); do
    if redis-cli -p "$port" ping 2> /dev/null | grep -q PONG; then log "ready on 127.0.0.1:$port"; return; fi
    sleep 0.2
  done
  log "not ready"; tail -n 20 "$home/redis.log" >&2; exit 1
}

down() {
  if ! running; then log "not running"; return; fi
  redis-cli -p "$port" shutdown nosave > /dev/null 2>&1 || kill -TERM "$(cat "$pidfile")"
  for _ in $(seq 1 50); do running || { log "stopped"; return; }; sleep 0.2; done
  kill -KILL "$(cat "$pidfile")"; rm -f "$pidfile"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) if running; then echo "running (pid $(cat "$pidfile"))"; else echo "stopped"; exit 3; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
esac
