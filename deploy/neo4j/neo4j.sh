#!/usr/bin/env bash
# A real Neo4j 5.26 Community server from Maven Central jars, for machines without Docker.
#   deploy/neo4j/neo4j.sh up       fetch jars (cached), write the config, set a password once (NEO4J_HOME/password
#                                  if it exists, else a generated one), start, wait
#   deploy/neo4j/neo4j.sh down     stop it (SIGTERM, clean shutdown)
#   deploy/neo4j/neo4j.sh status   say whether it runs
#   deploy/neo4j/neo4j.sh import ARGS…
#                                  stop the server, run `neo4j-admin database import full ARGS…` (the offline
#                                  importer `kgrank graph load --bulk` drives), start it again
# Everything lives under NEO4J_HOME (default: <repo>/.neo4j, git-ignored). After `up`,
# NEO4J_HOME/env holds KGRANK_NEO4J_URI / _USER / _PASSWORD for `source`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
home=${NEO4J_HOME:-$root/.neo4j}
java_home=${NEO4J_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
bolt=${NEO4J_BOLT_ADDRESS:-127.0.0.1:7687}
http=${NEO4J_HTTP_ADDRESS:-127.0.0.1:7474}
heap=${NEO4J_HEAP:-1g}
pagecache=${NEO4J_PAGECACHE:-512m}
wait_s=${NEO4J_WAIT_S:-120}
pidfile=$home/run/neo4j.pid

log() { echo "neo4j: $*" >&2; }

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

fetch_jars() {
  local stamp=$home/lib/.pom.sha256 want
  want=$(sha256sum "$here/pom.xml" | cut -d' ' -f1)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return; fi
  log "resolving Neo4j jars from Maven Central (cached in ~/.m2)"
  rm -rf "$home/lib"
  mvn -q -B --no-transfer-progress -Dstyle.color=never -f "$here/pom.xml" package -Dneo4j.lib.dir="$home/lib"
  echo "$want" > "$stamp"
}

write_config() {
  mkdir -p "$home/conf" "$home/data" "$home/logs" "$home/run"
  cat > "$home/conf/neo4j.conf" <<CONF
server.default_listen_address=127.0.0.1
server.bolt.listen_address=$bolt
server.http.listen_address=$http
server.https.enabled=false
server.directories.data=$home/data
server.directories.logs=$home/logs
server.directories.run=$home/run
server.memory.pagecache.size=$pagecache
dbms.usage_report.enabled=false
dbms.security.auth_enabled=true
CONF
}

# The password never appears on a command line (where `ps` and /proc/*/cmdline show it to every user):
# it goes to the admin tool in a Java @argfile and to curl in a config read from stdin.
escaped_password() {  # backslashes and double quotes escaped, for a double-quoted argfile or curl config value
  local password
  password=$(< "$home/password")
  password=${password//\\/\\\\}
  printf '%s' "${password//\"/\\\"}"
}

set_password_once() {
  if [[ -f $home/data/dbms/auth.ini ]]; then return; fi
  if [[ -s $home/password ]]; then
    log "using the password in $home/password for user neo4j"
  else
    (umask 077 && od -An -N18 -tx1 /dev/urandom | tr -d ' \n' > "$home/password")
    log "generated a password for user neo4j (in $home/password)"
  fi
  # AdminTool itself, not the neo4j-admin launcher: that one starts a second JVM with the password on its
  # command line.
  local args=$home/run/set-initial-password.args
  (umask 077 && printf 'org.neo4j.cli.AdminTool dbms set-initial-password "%s"\n' "$(escaped_password)" > "$args")
  NEO4J_HOME=$home NEO4J_CONF=$home/conf "$java_home/bin/java" -cp "$home/conf/*:$home/lib/*" \
    -Dfile.encoding=UTF-8 "@$args" > /dev/null
  rm -f "$args"
}

write_env() {
  (umask 077 && cat > "$home/env" <<ENV
export KGRANK_NEO4J_URI=bolt://$bolt
export KGRANK_NEO4J_USER=neo4j
export KGRANK_NEO4J_PASSWORD=$(printf %q "$(< "$home/password")")
ENV
  )
}

wait_ready() {
  local deadline=$((SECONDS + wait_s))
  until curl -fs -o /dev/null -K - -H 'Content-Type: application/json' \
      -d '{"statements":[{"statement":"RETURN 1"}]}' "http://$http/db/neo4j/tx/commit" \
      <<< "user = \"neo4j:$(escaped_password)\""; do
    if ! running; then log "exited during start-up; last log lines:"; tail -n 30 "$home/logs/console.log" >&2; exit 1; fi
    if (( SECONDS > deadline )); then log "not ready after ${wait_s}s"; tail -n 30 "$home/logs/console.log" >&2; exit 1; fi
    sleep 1
  done
}

up() {
  if running; then log "already running (pid $(cat "$pidfile"))"; write_env; return; fi
  [[ -x $java_home/bin/java ]] || { log "no Java 17 at $java_home (set NEO4J_JAVA_HOME)"; exit 1; }
  fetch_jars
  write_config
  set_password_once
  # What the tarball's launcher would add: heap and the module openings Neo4j needs on Java 17.
  nohup "$java_home/bin/java" "-Xms$heap" "-Xmx$heap" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
    --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED \
    -cp "$home/lib/*" org.neo4j.server.CommunityEntryPoint \
    --home-dir="$home" --config-dir="$home/conf" --console-mode \
    > "$home/logs/console.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  wait_ready
  write_env
  log "ready: Bolt bolt://$bolt, Browser http://$http/browser/ (pid $(cat "$pidfile"))"
}

down() {
  if ! running; then log "not running"; rm -f "$pidfile"; return; fi
  local pid deadline=$((SECONDS + 60))
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS > deadline )); then log "no clean stop after 60s, killing"; kill -KILL "$pid"; break; fi
    sleep 1
  done
  rm -f "$pidfile"
  log "stopped"
}

# The offline importer writes the store files itself, so the server must be down while it runs; it comes back
# up afterwards even when the import failed (the old store is untouched then).
bulk_import() {
  fetch_jars
  write_config
  local was_running=0 status=0
  if running; then was_running=1; down; fi
  NEO4J_HOME=$home NEO4J_CONF=$home/conf "$java_home/bin/java" -Xmx${NEO4J_IMPORT_HEAP:-2g} \
    -cp "$home/conf/*:$home/lib/*" org.neo4j.cli.AdminTool database import full "$@" || status=$?
  if (( was_running )); then up; fi
  return "$status"
}

case ${1:-} in
  up) up ;;
  import) shift; bulk_import "$@" ;;
  down) down ;;
  status) if running; then echo "running (pid $(cat "$pidfile"))"; else echo "stopped"; exit 3; fi ;;
  *) echo "usage: $0 up|down|status|import ARGS…" >&2; exit 64 ;;
esac
