from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from services.graph_loader.schema import GraphSchema
from services.ranker.paths import CandidateItem, HistoryItem, Hop, PathNode, RelationPath, UserPaths
from services.ranker.preference.features import encode_paths, feature_size, node_bucket
from services.ranker.preference.model import PreferenceModel

SCHEMA = GraphSchema(attributes={"Genre": "HAS_GENRE", "Actor": "HAS_ACTOR"}, links=("ALSO_BOUGHT",))


def example() -> UserPaths:
    def item(key: str) -> PathNode:
        return PathNode("Item", key, f"title {key}")

    genre = RelationPath(
        (item("h1"), PathNode("Genre", "Drama"), item("c2")), (Hop("HAS_GENRE", True), Hop("HAS_GENRE", False))
    )
    link = RelationPath((item("h2"), item("c1")), (Hop("ALSO_BOUGHT", True),))
    return UserPaths(
        user_id="u",
        known_user=True,
        history=(
            HistoryItem(item_id="h1", title="t", rating=4.0, timestamp=1),
            HistoryItem(item_id="h2", title="t", rating=None, timestamp=2),
        ),
        candidates=(
            CandidateItem(item_id="c1", title="t"),
            CandidateItem(item_id="c2", title="t"),
            CandidateItem(item_id="c3", title="t"),
        ),
        paths=(link, genre),
    )


def test_features() -> None:
    batch, ordered = encode_paths([(7, example())], SCHEMA, candidates=3)
    assert batch.features.shape == (2, feature_size(SCHEMA)) == (2, 3 + 3 + 3)
    link, genre = batch.features.tolist()
    # composition over (HAS_GENRE, HAS_ACTOR, ALSO_BOUGHT), length one-hot, rating/5, has rating, recency
    assert link == pytest.approx([0, 0, 1, 1, 0, 0, 0, 0, 0.5])
    assert genre == pytest.approx([1, 0, 0, 0, 1, 0, 0.8, 1, 1.0])
    assert batch.slot.tolist() == [0, 1]  # c1 is candidate 0, c2 candidate 1
    assert batch.users.tolist() == [7, 7]
    assert batch.buckets.tolist() == [0, node_bucket("Genre", "Drama")]
    assert node_bucket("Genre", "Drama") == node_bucket("Genre", "Drama") != node_bucket("Genre", "Comedy")
    assert [p.history_item for p in ordered[0]] == ["h2", "h1"]


def test_candidate_score_pools_paths_with_log_sum_exp() -> None:
    torch.manual_seed(0)
    model = PreferenceModel(users=10, features=feature_size(SCHEMA))
    batch, _ = encode_paths([(3, example()), (4, example())], SCHEMA, candidates=3)
    path_scores = model.path_scores(batch).detach()
    scores = model.candidate_scores(batch).detach()
    floor = float(model.no_path)
    for e in range(2):
        for c in range(3):
            mine = [float(s) for s, slot in zip(path_scores, batch.slot, strict=True) if int(slot) == e * 3 + c]
            assert float(scores[e, c]) == pytest.approx(math.log(math.exp(floor) + sum(map(math.exp, mine))), rel=1e-5)
    assert float(scores[0, 2]) == pytest.approx(floor)  # no path: the learned floor


def test_position_prior_is_added_per_slot() -> None:
    torch.manual_seed(0)
    model = PreferenceModel(users=10, features=feature_size(SCHEMA))
    batch, _ = encode_paths([(3, example())], SCHEMA, candidates=3)
    before = model.candidate_scores(batch).detach()
    with torch.no_grad():
        model.position[:3] = torch.tensor([2.0, 0.0, -1.0])
    assert torch.allclose(model.candidate_scores(batch).detach() - before, torch.tensor([[2.0, 0.0, -1.0]]))


def test_gradients_reach_every_part() -> None:
    model = PreferenceModel(users=10, features=feature_size(SCHEMA))
    batch, _ = encode_paths([(3, example())], SCHEMA, candidates=3)
    torch.nn.functional.cross_entropy(model.candidate_scores(batch), torch.tensor([1])).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.count_nonzero(parameter.grad) > 0, name


def test_no_paths_at_all() -> None:
    empty = example().model_copy(update={"paths": ()})
    model = PreferenceModel(users=10, features=feature_size(SCHEMA))
    batch, _ = encode_paths([(1, empty)], SCHEMA, candidates=3)
    assert np.allclose(model.candidate_scores(batch).detach().numpy(), float(model.no_path))


def test_paths_that_differ_only_in_their_candidate_score_exactly_alike_wherever_they_sit() -> None:
    """Evaluation scores many users' paths in one batch, serving one user's: a tie between paths to two
    candidates must stay an exact tie in both, so the canonical order picks the same path (the pipeline parity
    test caught a flip)."""
    torch.manual_seed(0)
    model = PreferenceModel(users=50, features=feature_size(SCHEMA))
    same = encode_paths([(7, example())], SCHEMA, candidates=3)[0]
    noise = torch.rand(300, feature_size(SCHEMA))
    places = [0, 17, 150, 299]
    features = noise.clone()
    features[places] = same.features[1]
    buckets = torch.randint(0, 4096, (300,))
    buckets[places] = same.buckets[1]
    users = torch.randint(0, 51, (300,))
    users[places] = 7
    batch = type(same)(features, buckets, users, torch.zeros(300, dtype=torch.long), examples=1, candidates=3)
    with torch.inference_mode():
        scores = model.distinct_path_scores(batch)
        plain = model.path_scores(batch)
        alone = model.distinct_path_scores(same)
    assert len(set(scores[places].tolist())) == 1
    assert torch.allclose(scores, plain, atol=1e-6)
    assert scores[0].item() == pytest.approx(alone[1].item(), abs=1e-6)
