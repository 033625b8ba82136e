"""MovieLens titles: "Matrix, The (1999)" -> "The Matrix (1999)", other parenthesised parts dropped."""

from __future__ import annotations

import re

_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$")
_PARENTHESISED = re.compile(r"\s*\([^()]*\)")
# MovieLens moves leading articles of many languages to the end ("Misérables, Les").
_ARTICLES = (
    "The",
    "A",
    "An",
    "Les",
    "La",
    "Le",
    "L'",
    "Il",
    "Lo",
    "Gli",
    "Das",
    "Der",
    "Die",
    "Den",
    "Det",
    "El",
    "Los",
    "Las",
    "Un",
    "Una",
    "Une",
    "Ein",
    "Eine",
    "De",
    "Het",
    "Een",
)
_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<article>" + "|".join(map(re.escape, _ARTICLES)) + r")$")


def split_year(raw_title: str) -> tuple[str, int | None]:
    """Split a trailing "(1995)" (or a range "(2006–2007)", first year kept) off a title."""
    match = _YEAR_SUFFIX.search(raw_title)
    if match is None:
        return raw_title.strip(), None
    return raw_title[: match.start()].strip(), int(match.group(1))


def clean_movie_title(raw_title: str) -> tuple[str, int | None]:
    """Return (clean title with its year re-appended, year)."""
    title, year = split_year(raw_title)
    without_parts = _PARENTHESISED.sub("", title).strip() or title
    match = _TRAILING_ARTICLE.match(without_parts)
    if match:
        article = match.group("article")
        separator = "" if article.endswith("'") else " "
        without_parts = f"{article}{separator}{match.group('rest')}"
    without_parts = " ".join(without_parts.split())
    year_part = f"({year})" if year is not None else ""
    return " ".join(part for part in (without_parts, year_part) if part), year
