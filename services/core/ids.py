"""The rule every id kgrank stores or is asked about obeys: users, items and live event ids.

1 to 128 characters, all printable (no control, format or line-separator characters: a NUL or a
zero-width space in an id is a bug or an attack, never data), and no white space at either end.
Readers check dataset ids against it at `data prepare`; the API answers 422 for an id that breaks it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

MAX_ID_LENGTH = 128
ID_RULE = f"1-{MAX_ID_LENGTH} printable characters, no white space at either end"


def id_problem(value: str) -> str | None:
    """What is wrong with `value` as an id, or None if it obeys the rule."""
    if not value:
        return "is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long (at most {MAX_ID_LENGTH})"
    if not value.isprintable():
        return "holds a control or other non-printable character"
    if value != value.strip():
        return "starts or ends with white space"
    return None


def _checked(value: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"an id {problem}; ids are {ID_RULE}")
    return value


#: An id field of a request body: a 422 naming the rule when it is broken.
Id = Annotated[str, AfterValidator(_checked)]
