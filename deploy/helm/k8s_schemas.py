"""Kubernetes' OpenAPI v2 spec (api/openapi-spec/swagger.json) -> kubeconform's standalone-strict JSON schemas.

kubeconform downloads its schemas from GitHub, which CI cannot reach; the spec itself ships in the
k8s.io/kubernetes Go module, so deploy/helm/tools.sh converts it with this script. One file per
group/version/kind, named the way kubeconform expands `{{ .ResourceKind }}{{ .KindSuffix }}.json`:
deployment-apps-v1.json, service-v1.json, ingress-networking-v1.json.

The conversion follows the published standalone-strict schemas:
- every $ref is inlined, so a file stands alone (a recursive type, the CRD's JSONSchemaProps, cannot be
  inlined and is kept once under the file's own `definitions`);
- `additionalProperties: false` wherever the spec lists properties: a misspelt field is an error;
- an optional field may be null (the API server reads null as unset), a required one may not;
- IntOrString accepts integers and strings, a Quantity numbers and strings (as the API server decodes them);
- `kind` and `apiVersion` accept only the file's own.
Descriptions and x-kubernetes-* annotations are dropped: they do not validate anything.

Usage: python3 k8s_schemas.py SWAGGER_JSON OUT_DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

# Types whose JSON form the spec under-describes: the API server also decodes numbers into them.
_ACCEPTS_NUMBERS: dict[str, Schema] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
}
_DROPPED_KEYS = ("description",)
_REF_PREFIX = "#/definitions/"


def kind_suffix(group: str, version: str) -> str:
    """kubeconform's KindSuffix: the first label of the group (none for the core group) and the version."""
    return (f"-{version}" if not group else f"-{group.split('.')[0]}-{version}").lower()


def api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def nullable(schema: Schema) -> Schema:
    if isinstance(schema.get("type"), str):
        return {**schema, "type": [schema["type"], "null"]}
    if "type" not in schema and "oneOf" not in schema and "$ref" not in schema:
        return schema  # already accepts anything, null included
    return {"anyOf": [schema, {"type": "null"}]}


class _Inliner:
    """Inlines the spec's definitions into one standalone schema, remembering recursive ones it had to keep."""

    def __init__(self, definitions: dict[str, Schema]) -> None:
        self._definitions = definitions
        self.kept: set[str] = set()

    def resolve(self, name: str, expanding: tuple[str, ...]) -> Schema:
        if name in _ACCEPTS_NUMBERS:
            return dict(_ACCEPTS_NUMBERS[name])
        if name in expanding:
            self.kept.add(name)
            return {"$ref": _REF_PREFIX + name}
        return self.convert(self._definitions[name], (*expanding, name))

    def convert(self, node: Schema, expanding: tuple[str, ...]) -> Schema:
        if "$ref" in node:
            return self.resolve(node["$ref"].removeprefix(_REF_PREFIX), expanding)
        schema: Schema = {
            key: value for key, value in node.items() if key not in _DROPPED_KEYS and not key.startswith("x-")
        }
        if "properties" in node:
            required = set(node.get("required", ()))
            schema["properties"] = {
                name: self.convert(child, expanding) if name in required else nullable(self.convert(child, expanding))
                for name, child in node["properties"].items()
            }
            schema.setdefault("additionalProperties", False)
        if isinstance(node.get("additionalProperties"), dict):
            schema["additionalProperties"] = self.convert(node["additionalProperties"], expanding)
        if "items" in node:
            schema["items"] = self.convert(node["items"], expanding)
        return schema


def standalone(definitions: dict[str, Schema], name: str, group: str, version: str, kind: str) -> Schema:
    inliner = _Inliner(definitions)
    schema = inliner.resolve(name, ())
    schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
    schema["properties"]["apiVersion"] = {"type": "string", "enum": [api_version(group, version)]}
    kept: dict[str, Schema] = {}
    while pending := sorted(inliner.kept - kept.keys()):
        for recursive in pending:
            kept[recursive] = inliner.convert(definitions[recursive], (recursive,))
    if kept:
        schema["definitions"] = kept
    return schema


def convert_spec(spec: Schema, out: Path) -> int:
    definitions: dict[str, Schema] = spec["definitions"]
    written: dict[str, str] = {}
    out.mkdir(parents=True, exist_ok=True)
    for name, definition in sorted(definitions.items()):
        for gvk in definition.get("x-kubernetes-group-version-kind", ()):
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            file_name = f"{kind.lower()}{kind_suffix(group, version)}.json"
            if written.get(file_name, name) != name:
                raise SystemExit(f"{file_name}: both {written[file_name]} and {name} map to it")
            written[file_name] = name
            schema = standalone(definitions, name, group, version, kind)
            (out / file_name).write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")))
    return len(written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("swagger", type=Path, help="api/openapi-spec/swagger.json of k8s.io/kubernetes")
    parser.add_argument("out", type=Path, help="folder for the <kind>-<group>-<version>.json schemas")
    args = parser.parse_args()
    count = convert_spec(json.loads(args.swagger.read_text()), args.out)
    print(f"{count} schemas in {args.out}")


if __name__ == "__main__":
    main()
