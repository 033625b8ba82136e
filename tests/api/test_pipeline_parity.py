"""The numbers we publish are the numbers we serve: `kgrank evaluate` and POST /rank rank through one pipeline.

The same users are ranked by evaluation's entry point (`build_ranker` + `evaluate`, as the CLI calls them)
and by the API, with a fused checkpoint and a sequential retriever, on a graph holding the train
interactions only: val's history is then exactly what the graph serves. Prompts must be identical,
scores equal to float rounding (evaluation batches prompts, serving scores them one by one), and the
orders the same.
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from kgrank.evaluate_cli import ParsedModel, build_ranker
from services.api.app import build_service, create_app
from services.core.errors import ModelError
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.loader import load_graph
from services.ranker.context import RANKING_PATHS, GraphContext
from services.ranker.llm.metadata import METADATA_FILE
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.pipeline import RankingPipeline
from tests.api.conftest import Served
from training.config import RetrieverConfig
from training.evaluation.evaluate import evaluate
from training.evaluation.harness import ModelSpec
from training.retriever import train_retriever

FUSION_WEIGHT = 0.4  # set by hand: what is checked is that both sides fuse alike, not which weight val picks


@pytest.fixture(scope="module")
def parity(served: Served, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("parity")
    graph = EmbeddedGraph(work / "train.sqlite")
    load_graph(served.dataset, graph, target="embedded", split="train", progress=False)
    graph.close()
    retriever = work / "lrurec"
    train_retriever(served.dataset, RetrieverConfig(model="lrurec", max_epochs=2, dim=16), retriever, progress=False)
    model = work / "ranker"
    shutil.copytree(served.bundle.ranker, model)
    metadata = json.loads((model / METADATA_FILE).read_text())
    metadata["fusion"]["weight"] = FUSION_WEIGHT
    # A prompt shorter than the paths' history: the preference module must still see the history both
    # sides exported, and the prompt show the same last items.
    metadata["prompt"]["history_items"] = 12
    (model / METADATA_FILE).write_text(json.dumps(metadata))
    return work / "train.sqlite", retriever, model


def test_evaluation_and_serving_build_the_same_prompts_and_scores(
    served: Served, parity: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph_path, retriever, model = parity
    evaluated: list[tuple[object, object]] = []
    served_prompts: list[str] = []
    rank, prompts = RankingPipeline.rank, RankingPipeline.prompts

    def spy_rank(self: RankingPipeline, inputs):  # type: ignore[no-untyped-def]
        rankings = rank(self, inputs)
        evaluated.extend(zip(inputs, rankings, strict=True))
        return rankings

    def spy_prompts(self: RankingPipeline, inputs, chosen):  # type: ignore[no-untyped-def]
        built = prompts(self, inputs, chosen)
        served_prompts.extend(p.text for p in built)
        return built

    graph = EmbeddedGraph(graph_path)
    monkeypatch.setattr(RankingPipeline, "rank", spy_rank)
    with ExitStack() as stack:
        context = GraphContext(
            served.dataset,
            EmbeddedPathSource(graph, dataset=served.dataset.name, schema=served.dataset.schema, config=RANKING_PATHS),
        )
        ranker = build_ranker(
            ParsedModel("fused", [retriever], f"llm+fusion:{model}"),
            served.dataset,
            context,
            scorer="transformers",
            vllm_url="",
            stack=stack,
        )
        evaluate(
            served.dataset,
            [ModelSpec("fused", [retriever], ranker)],
            split="val",
            out=tmp_path / "eval",
            command="test",
            ks=[10],
            retrieval_ks=[10],
            resamples=100,
            progress=False,
        )
    graph.close()
    monkeypatch.setattr(RankingPipeline, "rank", rank)
    assert len(evaluated) >= 3, "too few val users retrieved to compare"

    monkeypatch.setattr(RankingPipeline, "prompts", spy_prompts)
    settings = served.settings(model_dir=model, retriever_dir=retriever, graph_path=graph_path)
    with TestClient(create_app(settings, service=build_service(settings))) as client:
        for item, ranking in evaluated:
            candidates = [c.item_id for c in item.paths.candidates]
            response = client.post("/rank", json={"user_id": item.paths.user_id, "candidates": candidates})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["degraded"] == [] and body["model"]["fusion_weight"] == FUSION_WEIGHT
            assert served_prompts[-1] == ranking.prompt.text
            by_item = {entry["item_id"]: entry for entry in body["ranking"]}
            assert np.allclose([by_item[c]["ranker_score"] for c in candidates], ranking.model_scores, atol=1e-4)
            assert np.allclose([by_item[c]["retriever_score"] for c in candidates], ranking.retriever_scores, atol=1e-4)
            assert np.allclose([by_item[c]["score"] for c in candidates], ranking.scores, atol=1e-4)
            assert [entry["item_id"] for entry in body["ranking"]] == [candidates[i] for i in ranking.order]


def test_a_fused_ranking_without_a_preference_module_falls_back_to_the_retriever_order(
    served: Served, parity: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    graph_path, retriever, fused = parity
    model = tmp_path / "no-module"
    shutil.copytree(fused, model)
    (model / "preference.pt").unlink()
    metadata = json.loads((model / METADATA_FILE).read_text())
    metadata["path_strategy"] = "none"
    (model / METADATA_FILE).write_text(json.dumps(metadata))
    settings = served.settings(
        model_dir=model,
        retriever_dir=retriever,
        graph_path=graph_path,
        scorer="vllm",
        vllm_url="http://127.0.0.1:9",
        scorer_timeout_s=5,
    )
    user = served.dataset.user_id(4)
    candidates = [item.id for item in served.dataset.items[:12]]
    with TestClient(create_app(settings, service=build_service(settings))) as client:
        body = client.post("/rank", json={"user_id": user, "candidates": candidates}).json()
    assert body["degraded"] == ["scorer"] and body["model"]["ranked_by"] == "retriever"
    scores = [item["score"] for item in body["ranking"]]
    assert scores == sorted(scores, reverse=True)
    assert all(item["score"] == item["retriever_score"] for item in body["ranking"])


def test_a_checkpoint_whose_tokenizer_does_not_match_its_letter_ids_is_refused(served: Served, tmp_path: Path) -> None:
    model = tmp_path / "ranker"
    shutil.copytree(served.bundle.ranker, model)
    metadata = json.loads((model / METADATA_FILE).read_text())
    ids = metadata["letter_token_ids"]
    metadata["letter_token_ids"] = [ids[1], ids[0], *ids[2:]]
    (model / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(ModelError, match="other token ids than the model was trained to produce"):
        build_service(served.settings(model_dir=model))
