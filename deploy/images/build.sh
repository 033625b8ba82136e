#!/usr/bin/env bash
# The images docker-compose.ci.yml runs, built where no image registry is reachable (CI): a Debian bookworm base
# from debootstrap, and on it kgrank (the repository's Dockerfile), Neo4j (deploy/neo4j's Maven Central jars),
# Redis and the nginx proxy, each from Debian's packages; and Compose v2 to run them (`compose`: built from its
# Go module into KGRANK_IMAGES_WORK/bin/docker-compose). Needs root, debootstrap, Maven, Go and a Docker engine
# (DOCKER_HOST; deploy/images/dockerd.sh starts a private one).
#   deploy/images/build.sh [base|app|neo4j|redis|proxy|compose]...    default: all of them, in that order
# The base is made once per checkout: its rootfs tarball stays under KGRANK_IMAGES_WORK (default
# <repo>/.kgrank/images, git-ignored) and the image in the engine; the others are rebuilt each time, from
# Docker's layer cache where nothing changed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${KGRANK_IMAGES_WORK:-$root/.kgrank/images}
mirror=${KGRANK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Debian's docker-compose is v1, which refuses docker-compose.yml's published ports beside network_mode: host
# (v2 leaves them to the engine, which ignores them). 2.28 talks to Debian's engine (API 1.41).
compose_version=v2.28.1
# The names docker-compose.ci.yml uses.
base_image=kgrank-ci/base:bookworm
declare -A images=(
  [app]=kgrank-ci/kgrank:local
  [neo4j]=kgrank-ci/neo4j:5.26
  [redis]=kgrank-ci/redis:local
  [proxy]=kgrank-ci/nginx:local
)
# The classic builder: Debian's engine has no buildx, and the newer client that may come first on PATH would
# otherwise ask for it.
export DOCKER_BUILDKIT=0

log() { echo "images: $*" >&2; }

timed() {  # timed NAME COMMAND…: run it and say how long it took
  local name=$1 started=$SECONDS
  shift
  "$@"
  log "$name: done in $((SECONDS - started))s"
}

image_id() { docker image inspect --format '{{.Id}}' "$1" 2> /dev/null || true; }

build() {  # build IMAGE DOCKERFILE: the build context is the tar on stdin
  local old
  old=$(image_id "$1")
  docker build --quiet --force-rm --network host --build-arg "BASE_IMAGE=$base_image" -f "$2" -t "$1" - > /dev/null
  # The image this one replaces would stay behind untagged (GBs for kgrank's); one a container still uses stays.
  if [[ -n $old && $old != "$(image_id "$1")" ]]; then docker rmi "$old" > /dev/null 2>&1 || true; fi
}

base() {
  if docker image inspect "$base_image" > /dev/null 2>&1; then log "$base_image is there"; return; fi
  local tarball=$work/bookworm-rootfs.tar rootfs=$work/rootfs
  if [[ ! -f $tarball ]]; then
    command -v debootstrap > /dev/null || { log "debootstrap not installed (apt-get install debootstrap)"; exit 1; }
    mkdir -p "$work"
    rm -rf "$rootfs"
    # python3-venv: the Dockerfile installs kgrank into a virtual environment (Debian's python3 is 3.11).
    debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv bookworm "$rootfs" "$mirror" \
      > "$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    # The local CAs this machine trusts (e.g. a TLS-inspecting egress proxy's), so apt and pip in the images reach
    # what the host reaches.
    if compgen -G '/usr/local/share/ca-certificates/*.crt' > /dev/null; then
      cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
      chroot "$rootfs" update-ca-certificates > /dev/null
    fi
    # As in Debian's own images: package scripts start no services during a build; no package cache kept.
    printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
    chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --numeric-owner -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$rootfs"
  fi
  # An imported image has no environment at all; later ENV lines extend this PATH.
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' "$tarball" "$base_image" > /dev/null
}

app() {
  # The context is exactly what the Dockerfile copies: the checkout also holds .venv, .kgrank (this engine's
  # own data) and other large folders that no build needs.
  local sources
  mapfile -t sources < <(awk '$1 == "COPY" { for (i = 2; i < NF; i++) print $i }' "$root/Dockerfile")
  tar -C "$root" --exclude=__pycache__ -c Dockerfile "${sources[@]}" | build "${images[app]}" Dockerfile
}

neo4j() {
  # The jars of deploy/neo4j/pom.xml, stamped with its hash the way neo4j.sh stamps its own lib folder.
  local lib=$work/neo4j-lib want
  want=$(sha256sum "$root/deploy/neo4j/pom.xml" | cut -d' ' -f1)
  if [[ ! -f $lib/.pom.sha256 || $(< "$lib/.pom.sha256") != "$want" ]]; then
    rm -rf "$lib"
    mvn -q -B --no-transfer-progress -Dstyle.color=never -f "$root/deploy/neo4j/pom.xml" package \
      -Dneo4j.lib.dir="$lib"
    echo "$want" > "$lib/.pom.sha256"
  fi
  tar -c -C "$root" deploy/neo4j/neo4j.sh deploy/neo4j/pom.xml deploy/images/neo4j -C "$work" neo4j-lib \
    | build "${images[neo4j]}" deploy/images/neo4j/Dockerfile
}

redis() { tar -C "$root/deploy/images/redis" -c Dockerfile | build "${images[redis]}" Dockerfile; }

proxy() { tar -C "$root/deploy/images/proxy" -c Dockerfile | build "${images[proxy]}" Dockerfile; }

compose() {
  local binary=$work/bin/docker-compose
  command -v go > /dev/null || { log "Compose v2 is built with the go command (Go 1.21 or newer)"; exit 1; }
  # go version -m reads the module version the binary was built from.
  if [[ -x $binary && $(go version -m "$binary" | awk '$1 == "mod" { print $3 }') == "$compose_version" ]]; then
    log "Compose $compose_version is there"
    return
  fi
  mkdir -p "$work/bin"
  # The package is named cmd; its version string comes from the linker flag.
  GOBIN=$work/bin CGO_ENABLED=0 go install \
    -ldflags "-X github.com/docker/compose/v2/internal.Version=$compose_version" \
    "github.com/docker/compose/v2/cmd@$compose_version"
  mv "$work/bin/cmd" "$binary"
}

targets=("$@")
(( ${#targets[@]} )) || targets=(base app neo4j redis proxy compose)
for target in "${targets[@]}"; do
  case $target in
    base | app | neo4j | redis | proxy | compose) timed "$target" "$target" ;;
    *) echo "usage: $0 [base|app|neo4j|redis|proxy|compose]..." >&2; exit 64 ;;
  esac
done
