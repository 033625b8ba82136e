"""Cypher is data: every statement lives in `cypher/<name>.cypher` and is loaded by name.

Values always travel as `$parameters`. Cypher cannot parameterise labels, relationship types or
variable-length bounds, so a statement may contain typed slots, filled only here and only with
validated values: `{{ident NAME}}` takes an identifier from the graph schema's allow-list (checked by
the caller's schema, re-checked here against the identifier grammar and back-quoted),
`{{types NAME}}` a non-empty list of such identifiers as a relationship-type union (`A`|`B`), and
`{{int NAME}}` takes a small non-negative integer.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from services.core.errors import CypherLibraryError

CYPHER_DIR = Path(__file__).resolve().parents[2] / "cypher"

_SLOT = re.compile(r"\{\{(ident|types|int) ([a-z_]+)\}\}")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_MAX_INT_SLOT = 16


@dataclass(frozen=True)
class CypherStatement:
    name: str
    text: str

    @property
    def slots(self) -> dict[str, str]:
        """Slot name -> kind ("ident", "types" or "int")."""
        return {name: kind for kind, name in _SLOT.findall(self.text)}

    def render(self, **values: str | int | tuple[str, ...]) -> str:
        """Fill every slot; refuse missing, unexpected or invalid values."""
        slots = self.slots
        if set(values) != set(slots):
            raise CypherLibraryError(
                f"Cypher statement {self.name!r} takes slots {sorted(slots)}, got {sorted(values)}",
                statement=self.name,
            )

        def identifier(slot: str, value: object) -> str:
            if not isinstance(value, str) or not _IDENTIFIER.match(value):
                raise CypherLibraryError(
                    f"slot {slot!r} of {self.name!r} needs an identifier, got {value!r}", statement=self.name
                )
            return f"`{value}`"

        def fill(match: re.Match[str]) -> str:
            kind, slot = match.group(1), match.group(2)
            value = values[slot]
            if kind == "ident":
                return identifier(slot, value)
            if kind == "types":
                if not isinstance(value, tuple) or not value:
                    raise CypherLibraryError(
                        f"slot {slot!r} of {self.name!r} needs a non-empty tuple of identifiers, got {value!r}",
                        statement=self.name,
                    )
                return "|".join(identifier(slot, item) for item in value)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT_SLOT:
                raise CypherLibraryError(
                    f"slot {slot!r} of {self.name!r} needs an integer in 0..{_MAX_INT_SLOT}, got {value!r}",
                    statement=self.name,
                )
            return str(value)

        return _SLOT.sub(fill, self.text)


class CypherLibrary:
    """All statements of a folder, read once at construction (fail fast if the folder is missing)."""

    def __init__(self, directory: Path = CYPHER_DIR) -> None:
        if not directory.is_dir():
            raise CypherLibraryError(f"Cypher folder not found: {directory}", path=str(directory))
        self._statements = {
            path.stem: CypherStatement(path.stem, path.read_text(encoding="utf-8"))
            for path in sorted(directory.glob("*.cypher"))
        }

    def names(self) -> list[str]:
        return sorted(self._statements)

    def statement(self, name: str) -> CypherStatement:
        try:
            return self._statements[name]
        except KeyError as e:
            raise CypherLibraryError(f"no Cypher statement named {name!r}", statement=name) from e

    def __getitem__(self, name: str) -> str:
        """The text of a statement without slots."""
        return self.statement(name).render()

    def render(self, name: str, /, **values: str | int | tuple[str, ...]) -> str:
        return self.statement(name).render(**values)


@functools.cache
def cypher_library() -> CypherLibrary:
    """The project's statements, loaded once per process."""
    return CypherLibrary()
