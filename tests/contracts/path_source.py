"""What every PathSource must return on the toy catalogue (tests/fixtures/toy.py).

Subclasses provide the fixture `make_source(config) -> PathSource` over the toy dataset loaded
with split "all". Expected paths are written out by hand from the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from services.core.errors import UnknownItemsError
from services.ranker.paths import HistoryCutoff, PathConfig, PathRequest, PathSource, UserPaths
from services.ranker.paths.render import path_text

MakeSource = Callable[[PathConfig], PathSource]


def texts(result: UserPaths) -> list[str]:
    return [path_text(result, path) for path in result.paths]


class PathSourceContract:
    def fetch_one(self, make_source: MakeSource, request: PathRequest, **config: int) -> UserPaths:
        (result,) = make_source(PathConfig(**config)).fetch([request])
        return result

    def test_history_is_chronological_with_item_tie_break(self, make_source: MakeSource) -> None:
        result = self.fetch_one(make_source, PathRequest(user_id="alice", candidates=("2",)))
        assert result.known_user
        assert [(h.item_id, h.rating, h.timestamp) for h in result.history] == [
            ("1", 5.0, 10),
            ("3", 3.0, 20),
            ("4", 4.0, 20),
            ("5", 2.5, 30),
        ]
        assert [c.title for c in result.candidates] == ["The Godfather (1972)"]

    def test_sequence_holds_the_last_stored_ids_beyond_the_history(self, make_source: MakeSource) -> None:
        request = PathRequest(user_id="alice", candidates=("2",))
        short = self.fetch_one(make_source, request, history_length=2, sequence_length=3)
        assert [h.item_id for h in short.history] == ["4", "5"]  # paths start from the last two only
        assert short.sequence == ("3", "4", "5")
        assert {p.history_item for p in short.paths} <= {"4", "5"}
        longer = self.fetch_one(make_source, request, history_length=2, sequence_length=50)
        assert longer.sequence == ("1", "3", "4", "5")  # fewer stored than asked for: all of them
        assert self.fetch_one(make_source, request).sequence == ()  # not asked for
        cut = self.fetch_one(
            make_source,
            PathRequest(user_id="alice", candidates=("2",), cutoff=HistoryCutoff(timestamp=20, item_idx=4)),
            sequence_length=10,
        )
        assert cut.sequence == ("1", "3")
        given = PathRequest(user_id="alice", candidates=("2",), history=short.history)
        assert self.fetch_one(make_source, given, sequence_length=10).sequence == ()  # the caller's history

    def test_two_hop_paths_in_canonical_order(self, make_source: MakeSource) -> None:
        request = PathRequest(user_id="alice", candidates=("2", "6"), cutoff=HistoryCutoff(timestamp=30))
        result = self.fetch_one(make_source, request)
        assert texts(result) == [
            "(1) Heat (1995) -> SIMILAR_TO -> (A) The Godfather (1972)",
            "(1) Heat (1995) -> HAS_GENRE -> Crime -> HAS_GENRE -> (A) The Godfather (1972)",
            "(1) Heat (1995) -> HAS_GENRE -> Drama -> HAS_GENRE -> (A) The Godfather (1972)",
            "(1) Heat (1995) -> HAS_ACTOR -> Al Pacino -> HAS_ACTOR -> (A) The Godfather (1972)",
            "(2) Casino (1995) -> HAS_GENRE -> Crime -> HAS_GENRE -> (A) The Godfather (1972)",
        ]
        assert result.paths_to("6") == ()
        first, second = result.paths[0], result.paths[1]
        assert [(h.type, h.forward) for h in first.hops] == [("SIMILAR_TO", True)]
        assert [(h.type, h.forward) for h in second.hops] == [("HAS_GENRE", True), ("HAS_GENRE", False)]
        assert [(n.label, n.key, n.title) for n in second.nodes] == [
            ("Item", "1", "Heat (1995)"),
            ("Genre", "Crime", None),
            ("Item", "2", "The Godfather (1972)"),
        ]

    def test_backward_link(self, make_source: MakeSource) -> None:
        request = PathRequest(user_id="bob", candidates=("5",))
        result = self.fetch_one(make_source, PathRequest(user_id="alice", candidates=("2",)))
        assert result.paths  # alice has history; bob below has none towards Up
        result = self.fetch_one(make_source, request)
        assert texts(result) == []
        request = PathRequest(user_id="alice", candidates=("5",), cutoff=HistoryCutoff(timestamp=30))
        result = self.fetch_one(make_source, request)
        assert texts(result) == [
            "(3) Toy Story (1995) -> SIMILAR_TO -> (A) Up (2009)",
            "(3) Toy Story (1995) -> HAS_GENRE -> Animation -> HAS_GENRE -> (A) Up (2009)",
        ]
        assert result.paths[0].hops[0].forward is False  # Up -[SIMILAR_TO]-> Toy Story

    def test_cutoff_uses_timestamp_then_item(self, make_source: MakeSource) -> None:
        def history(cutoff: HistoryCutoff) -> list[str]:
            result = self.fetch_one(make_source, PathRequest(user_id="alice", candidates=("6",), cutoff=cutoff))
            return [h.item_id for h in result.history]

        assert history(HistoryCutoff(timestamp=20)) == ["1"]
        assert history(HistoryCutoff(timestamp=20, item_idx=4)) == ["1", "3"]
        assert history(HistoryCutoff(timestamp=20, item_idx=5)) == ["1", "3", "4"]
        assert history(HistoryCutoff(timestamp=10)) == []

    def test_history_length_keeps_the_latest(self, make_source: MakeSource) -> None:
        result = self.fetch_one(make_source, PathRequest(user_id="alice", candidates=("6",)), history_length=2)
        assert [h.item_id for h in result.history] == ["4", "5"]

    def test_cap_per_pair(self, make_source: MakeSource) -> None:
        request = PathRequest(user_id="alice", candidates=("2",), cutoff=HistoryCutoff(timestamp=11))
        result = self.fetch_one(make_source, request, max_paths_per_pair=2)
        assert texts(result) == [
            "(1) Heat (1995) -> SIMILAR_TO -> (A) The Godfather (1972)",
            "(1) Heat (1995) -> HAS_GENRE -> Crime -> HAS_GENRE -> (A) The Godfather (1972)",
        ]

    def test_one_hop_bound_keeps_direct_links_only(self, make_source: MakeSource) -> None:
        result = self.fetch_one(make_source, PathRequest(user_id="alice", candidates=("2", "5")), max_hops=1)
        assert texts(result) == [
            "(1) Heat (1995) -> SIMILAR_TO -> (A) The Godfather (1972)",
            "(3) Toy Story (1995) -> SIMILAR_TO -> (B) Up (2009)",
        ]

    def test_three_hops_reach_through_an_intermediate_item(self, make_source: MakeSource) -> None:
        request = PathRequest(user_id="alice", candidates=("2",), cutoff=HistoryCutoff(timestamp=20, item_idx=4))
        result = self.fetch_one(make_source, request, max_hops=3, max_paths_per_pair=100)
        casino = [t for t in texts(result) if t.startswith("(2) Casino")]
        assert casino == [
            "(2) Casino (1995) -> HAS_GENRE -> Crime -> HAS_GENRE -> (A) The Godfather (1972)",
            "(2) Casino (1995) -> HAS_GENRE -> Crime -> HAS_GENRE -> Heat (1995) -> SIMILAR_TO -> (A) The Godfather (1972)",
            "(2) Casino (1995) -> RELEASED_IN -> 1995 -> RELEASED_IN -> Heat (1995) -> SIMILAR_TO -> (A) The Godfather (1972)",
            "(2) Casino (1995) -> HAS_ACTOR -> Robert De Niro -> HAS_ACTOR -> Heat (1995) -> SIMILAR_TO -> (A) The Godfather (1972)",
        ]
        assert all(len({n.key for n in p.nodes}) == len(p.nodes) for p in result.paths)

    def test_hubs_are_met_but_never_crossed(self, make_source: MakeSource) -> None:
        # Crime and 1995 have 3 path relationships each: hubs at a cap of 2; Robert De Niro (2) is not.
        request = PathRequest(user_id="alice", candidates=("2",), cutoff=HistoryCutoff(timestamp=20, item_idx=4))
        result = self.fetch_one(make_source, request, max_hops=3, max_paths_per_pair=100, max_hub_degree=2)
        assert [t for t in texts(result) if t.startswith("(2) Casino")] == [
            "(2) Casino (1995) -> HAS_GENRE -> Crime -> HAS_GENRE -> (A) The Godfather (1972)",
            "(2) Casino (1995) -> HAS_ACTOR -> Robert De Niro -> HAS_ACTOR -> Heat (1995) -> SIMILAR_TO -> (A) The Godfather (1972)",
        ]
        # Heat has 6 path relationships: items are never hubs, so its own paths all stay.
        assert any(t.startswith("(1) Heat (1995) -> SIMILAR_TO") for t in texts(result))

    def test_unknown_user_is_a_cold_start(self, make_source: MakeSource) -> None:
        result = self.fetch_one(make_source, PathRequest(user_id="nobody", candidates=("1", "2")))
        assert not result.known_user
        assert result.history == () and result.paths == ()
        assert [c.item_id for c in result.candidates] == ["1", "2"]

    def test_unknown_candidates_are_named(self, make_source: MakeSource) -> None:
        with pytest.raises(UnknownItemsError) as error:
            make_source(PathConfig()).fetch([PathRequest(user_id="alice", candidates=("2", "x9", "' OR 1=1"))])
        assert error.value.details["item_ids"] == ["x9", "' OR 1=1"]

    def test_duplicate_candidates_are_rejected(self) -> None:
        with pytest.raises(ValidationError, match="duplicate candidate ids"):
            PathRequest(user_id="alice", candidates=("2", "2"))

    def test_candidate_in_history_gets_no_path_to_itself(self, make_source: MakeSource) -> None:
        result = self.fetch_one(make_source, PathRequest(user_id="alice", candidates=("1",)))
        assert all(p.history_item != p.candidate for p in result.paths)
        assert {p.history_item for p in result.paths} == {"3", "4"}

    def test_batch_equals_single_requests(self, make_source: MakeSource) -> None:
        source = make_source(PathConfig())
        requests = [
            PathRequest(user_id="alice", candidates=("2", "5", "6")),
            PathRequest(user_id="bob", candidates=("1", "3")),
            PathRequest(user_id="nobody", candidates=("4",)),
        ]
        assert source.fetch(requests) == [source.fetch([r])[0] for r in requests]

    def test_given_history_replaces_the_graphs(self, make_source: MakeSource) -> None:
        from services.ranker.paths import HistoryItem

        given = (
            HistoryItem(item_id="3", title="Casino as the caller names it", rating=None, timestamp=1),
            HistoryItem(item_id="1", title="Heat (1995)", rating=2.0, timestamp=5),
            HistoryItem(item_id="nope", title="not in the graph", rating=None, timestamp=6),
        )
        result = self.fetch_one(make_source, PathRequest(user_id="nobody", candidates=("2",), history=given))
        assert not result.known_user
        assert result.history == given
        assert texts(result) == [
            "(1) Casino (1995) -> HAS_GENRE -> Crime -> HAS_GENRE -> (A) The Godfather (1972)",  # nodes: graph titles
            "(2) Heat (1995) -> SIMILAR_TO -> (A) The Godfather (1972)",
            "(2) Heat (1995) -> HAS_GENRE -> Crime -> HAS_GENRE -> (A) The Godfather (1972)",
            "(2) Heat (1995) -> HAS_GENRE -> Drama -> HAS_GENRE -> (A) The Godfather (1972)",
            "(2) Heat (1995) -> HAS_ACTOR -> Al Pacino -> HAS_ACTOR -> (A) The Godfather (1972)",
        ]
        shortened = self.fetch_one(
            make_source, PathRequest(user_id="alice", candidates=("2",), history=given), history_length=1
        )
        assert [h.item_id for h in shortened.history] == ["nope"] and shortened.paths == ()

    def test_history_and_cutoff_are_exclusive(self) -> None:
        from services.ranker.paths import HistoryItem

        with pytest.raises(ValidationError, match="either a cutoff"):
            PathRequest(
                user_id="alice",
                candidates=("2",),
                cutoff=HistoryCutoff(timestamp=3),
                history=(HistoryItem(item_id="1", title="t", rating=None, timestamp=1),),
            )
