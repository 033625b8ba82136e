#!/usr/bin/env bash
# A private Docker engine (Debian's dockerd) for the compose test on local images: its own data root, socket
# and containerd under KGRANK_DOCKER_HOME (default <repo>/.kgrank/docker, git-ignored), so it neither needs nor
# touches a system engine.
#   deploy/images/dockerd.sh up      start it and wait until it answers
#   deploy/images/dockerd.sh down    stop it (SIGTERM: containers stop, overlay mounts go)
#   deploy/images/dockerd.sh host    print the DOCKER_HOST value that reaches it
# Containers of the CI compose file use the host's network only, so the engine makes no bridge and leaves the
# host's iptables alone.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
home=${KGRANK_DOCKER_HOME:-$root/.kgrank/docker}
socket=$home/docker.sock
pidfile=$home/dockerd.pid
wait_s=${KGRANK_DOCKER_WAIT_S:-60}

log() { echo "dockerd: $*" >&2; }
running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2> /dev/null; }
answers() { DOCKER_HOST=unix://$socket timeout 10 docker version > /dev/null 2>&1; }

up() {
  if running; then log "already running (pid $(cat "$pidfile"))"; return; fi
  command -v dockerd > /dev/null || { log "dockerd not installed (apt-get install docker.io)"; exit 1; }
  mkdir -p "$home"
  # --pidfile is dockerd's own lock: it refuses to start while another dockerd holds it.
  nohup dockerd --data-root "$home/root" --exec-root "$home/exec" --host "unix://$socket" --pidfile "$pidfile" \
    --bridge none --iptables=false --ip-masq=false > "$home/dockerd.log" 2>&1 < /dev/null &
  local deadline=$((SECONDS + wait_s))
  until answers; do
    if (( SECONDS > deadline )); then log "no answer after ${wait_s}s"; tail -n 30 "$home/dockerd.log" >&2; exit 1; fi
    sleep 1
  done
  log "ready: DOCKER_HOST=unix://$socket"
}

down() {
  if ! running; then log "not running"; return; fi
  local pid deadline=$((SECONDS + 60))
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  while kill -0 "$pid" 2> /dev/null; do
    if (( SECONDS > deadline )); then log "no clean stop after 60s, killing"; kill -KILL "$pid"; break; fi
    sleep 1
  done
  # What it leaves mounted under its home (its network namespace file, always; overlays after a kill), so that the
  # folder can be removed.
  awk -v home="$home/" 'index($2, home) == 1 { print $2 }' /proc/self/mounts | sort -r | xargs -r umount
  log "stopped"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  host) echo "unix://$socket" ;;
  *) echo "usage: $0 up|down|host" >&2; exit 64 ;;
esac
