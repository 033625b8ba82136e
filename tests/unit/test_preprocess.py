from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.errors import DatasetFormatError, EmptyDatasetError
from services.graph_loader.preprocess import k_core, leave_one_out, preprocess, sorted_ids
from services.graph_loader.raw import RawDataset, RawItem
from services.graph_loader.schema import standard_schema


def raw_dataset(rows: list[tuple[str, str, float, int]], items: dict[str, RawItem] | None = None) -> RawDataset:
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).astype(
        {"user": object, "item": object, "rating": float, "timestamp": np.int64}
    )
    if items is None:
        items = {i: RawItem(title=f"Movie {i}", attributes={"Genre": ["Drama"]}) for i in frame["item"].unique()}
    return RawDataset("toy", "ml-latest-small", frame, items, standard_schema(["Genre"]), sources=[])


def interactions(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"user": [u for u, _ in pairs], "item": [i for _, i in pairs]})


def test_k_core_needs_several_rounds() -> None:
    # Round 1 drops (u3, d): d has one user. Then u3 has one item, so round 2 drops (u3, c).
    # Then c has one user, so round 3 drops (u2, c). Now every user and item has two.
    pairs = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u2", "c"), ("u3", "c"), ("u3", "d")]
    kept, rounds = k_core(interactions(pairs), 2)
    assert sorted(zip(kept["user"], kept["item"], strict=True)) == [
        ("u1", "a"),
        ("u1", "b"),
        ("u2", "a"),
        ("u2", "b"),
    ]
    assert rounds == 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=120, unique=True),
    st.integers(1, 4),
)
def test_k_core_is_the_fixpoint(pairs: list[tuple[int, int]], k: int) -> None:
    kept, _ = k_core(interactions([(f"u{u}", f"i{i}") for u, i in pairs]), k)
    if len(kept):
        assert kept.groupby("user").size().min() >= k
        assert kept.groupby("item").size().min() >= k
    again, rounds = k_core(kept, k)
    assert rounds == 0 and len(again) == len(kept)


def test_sorted_ids_numeric_and_string() -> None:
    assert sorted_ids(np.array(["10", "9", "100"])) == ["9", "10", "100"]
    assert sorted_ids(np.array(["B2", "A10", "A9"])) == ["A10", "A9", "B2"]


def test_leave_one_out_marks_last_two() -> None:
    splits = leave_one_out(pd.Series([1, 1, 1, 1, 2, 2, 2]))
    assert splits.tolist() == ["train", "train", "val", "test", "train", "val", "test"]


def test_order_split_and_ids() -> None:
    # User "7": ties at ts 100 are ordered by item id; item "20" sorts after "3" numerically.
    rows = [
        (u, i, 4.0, ts) for u in ("7", "12") for i, ts in (("20", 100), ("3", 100), ("5", 50), ("8", 200), ("9", 300))
    ]
    processed = preprocess(raw_dataset(rows), min_interactions=2)
    assert processed.users == ["7", "12"]
    assert [item.id for item in processed.items] == ["3", "5", "8", "9", "20"]
    user7 = processed.interactions[processed.interactions["user"] == 1]
    assert [processed.item(i).id for i in user7["item"]] == ["5", "3", "20", "8", "9"]
    assert user7["split"].tolist() == ["train", "train", "train", "val", "test"]
    assert processed.stats.split_interactions == {"train": 6, "val": 2, "test": 2}


def test_untitled_items_and_duplicates_are_dropped_first() -> None:
    rows = [(u, i, 3.0, ts) for u in ("1", "2") for ts, i in enumerate(("a", "b", "c"))]
    rows += [("1", "a", 5.0, 99)]  # a repeat of (1, a): the first event is kept
    items = {"a": RawItem("A"), "b": RawItem("B"), "c": RawItem(None)}
    processed = preprocess(raw_dataset(rows, items), min_interactions=2)
    assert processed.stats.dropped_duplicates == 1
    assert processed.stats.dropped_untitled == 2
    assert [item.id for item in processed.items] == ["a", "b"]
    first = processed.interactions.iloc[0]
    assert (first["rating"], first["timestamp"]) == (3.0, 0)


def test_links_restricted_to_catalogue() -> None:
    rows = [(u, i, 3.0, n) for u in ("1", "2") for n, i in enumerate(("a", "b"))]
    items = {
        "a": RawItem("A", links={"ALSO_BOUGHT": ["b", "gone", "a"]}),
        "b": RawItem("B", links={"ALSO_BOUGHT": ["gone"]}),
    }
    raw = raw_dataset(rows, items)
    raw.schema = standard_schema([], links=("ALSO_BOUGHT",))
    processed = preprocess(raw, min_interactions=2)
    assert processed.items[0].links == {"ALSO_BOUGHT": ["b"]}
    assert processed.items[1].links == {}
    assert processed.stats.link_edges == {"ALSO_BOUGHT": 1}


def test_nothing_left_is_an_error() -> None:
    with pytest.raises(EmptyDatasetError, match="no interactions left after the title filter and the 5-core"):
        preprocess(raw_dataset([("1", "a", 3.0, 1), ("1", "b", 3.0, 2)]))


@pytest.mark.parametrize(
    ("user", "problem"), [("u\x00x", "non-printable"), ("x" * 129, "129 characters"), (" u", "white space")]
)
def test_ids_the_api_would_refuse_are_refused_at_prepare(user: str, problem: str) -> None:
    rows = [(u, i, 3.0, n) for u in ("1", user) for n, i in enumerate(("a", "b"))]
    with pytest.raises(DatasetFormatError, match=f"the user id .* {problem}"):
        preprocess(raw_dataset(rows), min_interactions=2)
