from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.core.cypher import CYPHER_DIR, CypherLibrary, cypher_library
from services.core.errors import CypherLibraryError


def test_every_statement_has_a_header_and_uses_parameters() -> None:
    library = cypher_library()
    assert len(library.names()) >= 14
    for name in library.names():
        text = library.statement(name).text
        assert text.startswith("//"), f"{name} needs a header comment naming its parameters"
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
        # Values arrive as $parameters; the only other substitutions are the typed slots.
        assert not re.search(r"\{[a-z_]+\}", re.sub(r"\{\{(ident|int) [a-z_]+\}\}", "", body)), name
        assert "+ '" not in body and "' +" not in body, f"{name} concatenates strings"


def test_slots_are_validated() -> None:
    library = cypher_library()
    assert "`Genre`" in library.render("load_attributes", label="Genre", rel_type="HAS_GENRE")
    with pytest.raises(CypherLibraryError, match="needs an identifier"):
        library.render("load_attributes", label="Genre) DETACH DELETE (n", rel_type="HAS_GENRE")
    with pytest.raises(CypherLibraryError, match="needs an identifier"):
        library.render("load_attributes", label="Gen`re", rel_type="HAS_GENRE")
    with pytest.raises(CypherLibraryError, match="takes slots"):
        library.render("load_attributes", label="Genre")
    with pytest.raises(CypherLibraryError, match="takes slots"):
        library.render("load_users", label="Genre")
    types = ("HAS_GENRE", "SIMILAR_TO")
    with pytest.raises(CypherLibraryError, match="needs an integer"):
        library.render("paths", left_hops=99, right_bound=1, path_types=types)
    with pytest.raises(CypherLibraryError, match="needs an integer"):
        library.render("paths", left_hops="1", right_bound=1, path_types=types)
    assert "`HAS_GENRE`|`SIMILAR_TO`" in library.render("paths", left_hops=1, right_bound=1, path_types=types)
    with pytest.raises(CypherLibraryError, match="needs a non-empty tuple"):
        library.render("paths", left_hops=1, right_bound=1, path_types=())
    with pytest.raises(CypherLibraryError, match="needs a non-empty tuple"):
        library.render("paths", left_hops=1, right_bound=1, path_types="HAS_GENRE")
    with pytest.raises(CypherLibraryError, match="needs an identifier"):
        library.render("paths", left_hops=1, right_bound=1, path_types=("HAS_GENRE", "X]-() DETACH DELETE (n"))
    with pytest.raises(CypherLibraryError, match="takes slots"):
        _ = library["paths"]


def test_missing_statement_and_folder() -> None:
    with pytest.raises(CypherLibraryError, match="no Cypher statement named 'nope'"):
        cypher_library().statement("nope")
    with pytest.raises(CypherLibraryError, match="Cypher folder not found"):
        CypherLibrary(Path("/nonexistent/cypher"))


def test_library_reads_the_repository_folder() -> None:
    assert CYPHER_DIR.name == "cypher"
    assert (CYPHER_DIR / "paths.cypher").is_file()
