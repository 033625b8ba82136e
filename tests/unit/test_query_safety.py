"""Cypher only from cypher/*.cypher with parameters: the code never builds an executed query from strings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from services.core.cypher import CYPHER_DIR, cypher_library
from tests.conftest import ROOT

CODE = [path for folder in ("services", "kgrank", "training", "benchmarks") for path in (ROOT / folder).rglob("*.py")]
KEYWORDS = re.compile(r"\b(MATCH|MERGE|CREATE|DELETE|DETACH|SET|UNWIND|CALL)\b")
PATTERN = re.compile(r"\(\w*:\w+|-\[|\]->|<-\[|\$\w+")  # a node or relationship pattern, or a parameter
# Text for people, never executed by kgrank: a query to paste into Neo4j Browser, built from labels and
# types checked against the schema and values written as escaped literals (tests/unit/test_render.py).
BROWSER_TEXT = {("services/ranker/paths/render.py", "path_cypher")}


def _executed_queries(tree: ast.AST) -> list[ast.expr]:
    """The query argument of every `execute_query(...)` / `session.run(...)` / `tx.run(...)` call."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value)
            if node.func.attr == "execute_query" or (
                node.func.attr == "run" and re.search(r"(session|tx|transaction)$", receiver)
            ):
                query = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "query_"), None)
                if query is not None:
                    found.append(query)
    return found


def _built_from_strings(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr | ast.BinOp):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_executed_query_is_built_from_strings(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for query in _executed_queries(tree):
        assert not _built_from_strings(query), f"{path}:{query.lineno}: a query built from strings"
        if isinstance(query, ast.Constant):  # a literal is allowed only without any value spliced in
            assert "{" not in query.value or "$" in query.value, f"{path}:{query.lineno}"


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_cypher_is_assembled_in_code(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    relative = str(path.relative_to(ROOT))
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
        if (relative, function.name) in BROWSER_TEXT:
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.JoinedStr):
                text = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
                cypher = KEYWORDS.search(text) and PATTERN.search(text)
                assert not cypher, f"{relative}:{node.lineno}: Cypher in an f-string"


def test_library_slots_never_sit_inside_string_literals() -> None:
    """Slots take identifiers and integers validated at render time; a slot inside quotes would splice text."""
    for name in cypher_library().names():
        text = (CYPHER_DIR / f"{name}.cypher").read_text()
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
        assert not re.search(r"'[^'\n]*\{\{", body) and not re.search(r'"[^"\n]*\{\{', body), name


def test_the_scan_catches_string_built_queries() -> None:
    """The checks above are only worth something if they flag the usual mistakes."""
    bad = ast.parse(
        "def f(session, driver, name):\n"
        "    session.run(f\"MATCH (n:User {{id: '{name}'}}) RETURN n\")\n"
        '    driver.execute_query("MATCH (n) WHERE n.id = \'" + name + "\' RETURN n")\n'
        "    driver.execute_query(query_='MATCH (n {{id: {}}}) RETURN n'.format(name))\n"
    )
    assert [_built_from_strings(q) for q in _executed_queries(bad)] == [True, True, True]
    fine = ast.parse("def g(driver, library):\n    driver.execute_query(library['paths'], parameters_={'id': 1})\n")
    assert [_built_from_strings(q) for q in _executed_queries(fine)] == [False]
