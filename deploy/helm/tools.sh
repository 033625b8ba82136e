#!/usr/bin/env bash
# The chart's offline checks need helm, kubeconform and Kubernetes JSON schemas. GitHub (where kubeconform
# fetches schemas by default) is not reachable, so everything comes from the Go module proxy: both tools are
# built with `go install`, and the schemas are converted from the OpenAPI spec inside the k8s.io/kubernetes
# module by k8s_schemas.py. Versions: versions.env. Output: .kgrank/tools/ (git-ignored). A re-run keeps a
# tool already built at its pinned version and schemas already converted for the pinned Kubernetes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
tools=$root/.kgrank/tools
bin=$tools/bin
schemas=$tools/k8s-schemas/$KUBERNETES_VERSION
mkdir -p "$bin"
# helm v3.22 and kubeconform v0.8 declare go 1.26 in their go.mod.
command -v go > /dev/null || { echo "tools.sh needs the go command (Go 1.26 or newer)" >&2; exit 1; }

# go version -m reads the module version the binary was built from (helm's own `version` needs ldflags).
built_version() { [[ -x $1 ]] && go version -m "$1" | awk '$1 == "mod" { print $3 }'; }

install() {  # install NAME PACKAGE MODULE_VERSION
  if [[ $(built_version "$bin/$1" || true) == "$3" ]]; then
    echo "$1 $3: present"
    return
  fi
  echo "$1 $3: building (go install)"
  GOBIN=$bin go install "$2@$3"
}

install kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"

if [[ -f $schemas/.complete ]]; then
  echo "Kubernetes $KUBERNETES_VERSION schemas: present"
else
  echo "Kubernetes $KUBERNETES_VERSION schemas: converting the OpenAPI spec of k8s.io/kubernetes"
  module_dir=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$schemas.partial"
  python3 "$here/k8s_schemas.py" "$module_dir/api/openapi-spec/swagger.json" "$schemas.partial"
  touch "$schemas.partial/.complete"
  rm -rf "$schemas"
  mv "$schemas.partial" "$schemas"
fi
echo "tools: $bin; schemas: $schemas"
