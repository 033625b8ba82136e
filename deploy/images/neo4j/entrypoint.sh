#!/usr/bin/env bash
# The Neo4j container's main process: deploy/neo4j/neo4j.sh starts the server in the background and returns once
# it answers, so this process stays to keep the container alive while the server runs, and turns the container's
# stop (SIGTERM) into neo4j.sh's clean shutdown.
set -euo pipefail
script=/opt/kgrank-neo4j/neo4j.sh
password_file=$NEO4J_HOME/password

if [[ ! -s $password_file ]]; then
  [[ ${NEO4J_AUTH:-} == neo4j/?* ]] || { echo "neo4j: set NEO4J_AUTH=neo4j/PASSWORD" >&2; exit 64; }
  (umask 077 && printf '%s' "${NEO4J_AUTH#neo4j/}" > "$password_file")
fi

# shellcheck disable=SC2317  # run by the trap
stop() { "$script" down; exit 0; }
trap stop TERM INT

"$script" up
pid=$(< "$NEO4J_HOME/run/neo4j.pid")
# Sleeping in the background lets the trap run as soon as the signal comes, not after the sleep.
while kill -0 "$pid" 2> /dev/null; do
  sleep 2 &
  wait $! || true
done
echo "neo4j: the server exited; last log lines:" >&2
tail -n 30 "$NEO4J_HOME/logs/console.log" >&2
exit 1
