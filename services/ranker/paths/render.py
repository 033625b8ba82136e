"""Paths as prompt text ("(3) Heat (1995) -> HAS_ACTOR -> Al Pacino -> …") and as Neo4j Browser Cypher."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable

from services.core.errors import RequestError
from services.graph_loader.schema import ITEM_LABEL, USER_LABEL, GraphSchema
from services.ranker.paths.models import PathNode, RelationPath, UserPaths

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def candidate_letter(position: int) -> str:
    """A..Z for the first 26 candidates (the prompt uses A..T), then C27, C28, …"""
    return string.ascii_uppercase[position] if position < 26 else f"C{position + 1}"


def format_path(path: RelationPath, *, origin: str, target: str, name: Callable[[PathNode], str]) -> str:
    """ "origin name -> TYPE -> middle -> TYPE -> target name": every hop written "-> TYPE ->" whatever its
    direction, as in the paper's prompts; `origin` and `target` tag the endpoints (e.g. "(3)", "(B)")."""
    parts = []
    for position, node in enumerate(path.nodes):
        if position == 0:
            parts.append(f"{origin} {name(node)}")
        elif position == path.length:
            parts.append(f"{target} {name(node)}")
        else:
            parts.append(name(node))
        if position < path.length:
            parts.append(path.hops[position].type)
    return " -> ".join(parts)


def path_text(paths: UserPaths, path: RelationPath) -> str:
    """The paper's relation line, endpoints tagged with their history number and candidate letter."""
    history_number = {item.item_id: n for n, item in enumerate(paths.history, start=1)}
    letters = {item.item_id: candidate_letter(i) for i, item in enumerate(paths.candidates)}
    return format_path(
        path,
        origin=f"({history_number[path.history_item]})",
        target=f"({letters[path.candidate]})",
        name=lambda node: node.display,
    )


def rating_text(paths: UserPaths, item_id: str) -> str | None:
    """ "The user rated the (3) Heat (1995) 4.0 stars." for a history item with a rating."""
    for number, item in enumerate(paths.history, start=1):
        if item.item_id == item_id and item.rating is not None:
            return f"The user rated the ({number}) {item.title} {item.rating:.1f} stars."
    return None


def path_cypher(path: RelationPath, *, dataset: str, schema: GraphSchema) -> str:
    """A self-contained query that draws exactly this path in Neo4j Browser.

    It is text for people to paste into Browser, never executed by kgrank with request data: labels
    and types are checked against the dataset schema, values are written as escaped string literals.
    """
    allowed_labels = {ITEM_LABEL, *schema.attributes}
    allowed_types = set(schema.path_types)
    pattern = []
    for position, node in enumerate(path.nodes):
        if node.label not in allowed_labels or node.label == USER_LABEL:
            raise RequestError(f"label {node.label!r} is not in the {dataset} schema")
        key = "id" if node.label == ITEM_LABEL else "name"
        properties = f"dataset: {cypher_string(dataset)}, {key}: {cypher_string(node.key)}"
        pattern.append(f"(n{position}:{node.label} {{{properties}}})")
        if position < path.length:
            hop = path.hops[position]
            if hop.type not in allowed_types or not _IDENTIFIER.match(hop.type):
                raise RequestError(f"relationship type {hop.type!r} is not in the {dataset} schema")
            pattern.append(f"-[:{hop.type}]->" if hop.forward else f"<-[:{hop.type}]-")
    return f"MATCH p = {''.join(pattern)} RETURN p"


def cypher_string(value: str) -> str:
    """A Cypher string literal: JSON escaping (backslash, quotes, control characters) in single quotes."""
    escaped = json.dumps(value, ensure_ascii=False)[1:-1].replace("'", "\\'")
    return f"'{escaped}'"
