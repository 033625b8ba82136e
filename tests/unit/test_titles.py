from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.graph_loader.titles import clean_movie_title, split_year


@pytest.mark.parametrize(
    ("raw", "clean", "year"),
    [
        ("Toy Story (1995)", "Toy Story (1995)", 1995),
        ("Matrix, The (1999)", "The Matrix (1999)", 1999),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            "The City of Lost Children (1995)",
            1995,
        ),
        ("Seven (a.k.a. Se7en) (1995)", "Seven (1995)", 1995),
        (
            "Good, the Bad, the Weird, The (Joheunnom nabbeunnom isanghannom) (2008)",
            "The Good, the Bad, the Weird (2008)",
            2008,
        ),
        ("Goods: Live Hard, Sell Hard, The (2009)", "The Goods: Live Hard, Sell Hard (2009)", 2009),
        ("King in New York, A (1957)", "A King in New York (1957)", 1957),
        ("Avventura, L' (1960)", "L'Avventura (1960)", 1960),
        ("Misérables, Les (1995)", "Les Misérables (1995)", 1995),
        ("Death Note: Desu nôto (2006–2007)", "Death Note: Desu nôto (2006)", 2006),
        ("Babylon 5", "Babylon 5", None),
        ("Big Bang Theory, The (2007-)", "The Big Bang Theory (2007)", 2007),
        ("  Heat  (1995) ", "Heat (1995)", 1995),
    ],
)
def test_clean_movie_title(raw: str, clean: str, year: int | None) -> None:
    assert clean_movie_title(raw) == (clean, year)


def test_split_year_keeps_title_without_year() -> None:
    assert split_year("Ready Player One") == ("Ready Player One", None)


@given(
    st.text(alphabet=st.characters(blacklist_characters="()\n\r", blacklist_categories=["Cs", "Cc"]), min_size=1),
    st.integers(min_value=1874, max_value=2030),
)
def test_year_always_reappended_once(title: str, year: int) -> None:
    clean, found = clean_movie_title(f"{title} ({year})")
    assert found == year
    assert clean.endswith(f"({year})")
    assert clean.count(f"({year})") == 1 or f"({year})" in title
