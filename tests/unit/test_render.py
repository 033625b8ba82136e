from __future__ import annotations

import dataclasses

import pytest

from services.core.errors import RequestError
from services.graph_loader.schema import GraphSchema
from services.ranker.paths import CandidateItem, HistoryItem, Hop, PathNode, RelationPath, UserPaths
from services.ranker.paths.render import candidate_letter, cypher_string, path_cypher, path_text, rating_text

SCHEMA = GraphSchema(attributes={"Actor": "HAS_ACTOR"}, links=("ALSO_BOUGHT",))
PATH = RelationPath(
    nodes=(
        PathNode(label="Item", key="6", title="Heat (1995)"),
        PathNode(label="Actor", key="Al Pacino"),
        PathNode(label="Item", key="858", title="The Godfather (1972)"),
    ),
    hops=(Hop(type="HAS_ACTOR", forward=True), Hop(type="HAS_ACTOR", forward=False)),
)
PATHS = UserPaths(
    user_id="1",
    known_user=True,
    history=(
        HistoryItem(item_id="1", title="Toy Story (1995)", rating=None, timestamp=1),
        HistoryItem(item_id="2", title="Jumanji (1995)", rating=3.5, timestamp=2),
        HistoryItem(item_id="6", title="Heat (1995)", rating=4.0, timestamp=3),
    ),
    candidates=(
        CandidateItem(item_id="50", title="The Usual Suspects (1995)"),
        CandidateItem(item_id="858", title="The Godfather (1972)"),
    ),
    paths=(PATH,),
)


def test_path_text_is_the_papers_relation_line() -> None:
    assert path_text(PATHS, PATH) == (
        "(3) Heat (1995) -> HAS_ACTOR -> Al Pacino -> HAS_ACTOR -> (B) The Godfather (1972)"
    )


def test_rating_text() -> None:
    assert rating_text(PATHS, "6") == "The user rated the (3) Heat (1995) 4.0 stars."
    assert rating_text(PATHS, "1") is None


def test_candidate_letters() -> None:
    assert [candidate_letter(i) for i in (0, 1, 19, 25, 26)] == ["A", "B", "T", "Z", "C27"]


def test_path_cypher_draws_exactly_the_path() -> None:
    assert path_cypher(PATH, dataset="ml", schema=SCHEMA) == (
        "MATCH p = (n0:Item {dataset: 'ml', id: '6'})-[:HAS_ACTOR]->"
        "(n1:Actor {dataset: 'ml', name: 'Al Pacino'})<-[:HAS_ACTOR]-"
        "(n2:Item {dataset: 'ml', id: '858'}) RETURN p"
    )


def test_cypher_string_escapes() -> None:
    assert cypher_string("O'Brien") == "'O\\'Brien'"
    assert cypher_string('back\\slash "q"\n') == "'back\\\\slash \\\"q\\\"\\n'"


def test_path_cypher_refuses_labels_outside_the_schema() -> None:
    injected = PathNode(label="Genre) DETACH DELETE (x", key="a")
    bad = dataclasses.replace(PATH, nodes=(PATH.nodes[0], injected, PATH.nodes[2]))
    with pytest.raises(RequestError, match="not in the ml schema"):
        path_cypher(bad, dataset="ml", schema=SCHEMA)
    bad = dataclasses.replace(PATH, hops=(Hop(type="RATED", forward=True), PATH.hops[1]))
    with pytest.raises(RequestError, match="relationship type 'RATED'"):
        path_cypher(bad, dataset="ml", schema=SCHEMA)
