"""The whole ranking stage on a small synthetic dataset: paths → preference module → tiny LLM → evaluation.

Sizes are tiny so this runs in well under a minute; what is checked is behaviour, not quality.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.loader import load_graph
from services.graph_loader.prepare import prepare_dataset
from services.graph_loader.synthetic import generate, write_ml_latest_small
from services.ranker.context import RANKING_PATHS, GraphContext
from services.ranker.llm.metadata import RankerMetadata
from services.ranker.llm.scorer import TransformersScorer, letter_logprobs
from services.ranker.llm.tiny import TinyLlamaConfig, build_tiny_llama
from services.ranker.llm.tokenizer import answer_token_ids, build_bpe_tokenizer
from services.ranker.paths.embedded_source import EmbeddedPathSource
from services.ranker.pipeline import PipelineRanker, RankingPipeline
from services.ranker.preference.scorer import PreferenceScorer
from services.ranker.ranking import RetrieverOrder
from training.evaluation.harness import ModelSpec, evaluate_models
from training.preference import PreferenceConfig, PreferenceResult, save_untrained, train_preference
from training.ranker import RankerConfig, RankerResult, train_ranker
from training.ranking_data import RankingData, ranking_data
from training.retriever import RetrieverConfig, train_retriever

TINY_LLM = TinyLlamaConfig(vocab_size=700, hidden_size=32, layers=1, heads=2, max_positions=1024)


@dataclass
class Stage:
    dataset: ProcessedDataset
    graph: GraphContext
    data: RankingData
    work: Path


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    work = tmp_path_factory.mktemp("stage")
    raw = write_ml_latest_small(generate(users=80, movies=120, seed=3), work / "raw")
    dataset = prepare_dataset("ml-latest-small", raw, work / "data")
    graph = EmbeddedGraph(work / "data" / "graph.sqlite")
    load_graph(dataset, graph, target="embedded", progress=False)
    train_retriever(dataset, RetrieverConfig(model="pop"), work / "pop", progress=False)
    context = GraphContext(
        dataset, EmbeddedPathSource(graph, dataset=dataset.name, schema=dataset.schema, config=RANKING_PATHS)
    )
    data = ranking_data(
        dataset,
        context,
        retriever_run=work / "pop",
        train_examples=400,
        seed=0,
        candidates="random",
        path_config=RANKING_PATHS,
        cache_dir=work / "cache",
        progress=False,
    )
    yield Stage(dataset, context, data, work)
    graph.close()


def test_export_is_cached_and_matches_a_fresh_fetch(stage: Stage) -> None:
    cached = list((stage.work / "cache").glob("paths-*.jsonl.gz"))
    assert len(cached) == 2  # train and val sets
    again = ranking_data(
        stage.dataset,
        stage.graph,
        retriever_run=stage.work / "pop",
        train_examples=400,
        seed=0,
        candidates="random",
        path_config=RANKING_PATHS,
        cache_dir=stage.work / "cache",
        progress=False,
    )
    assert again.train[1] == stage.data.train[1]
    assert stage.graph.fetch([e.task for e in stage.data.val[0][:5]]) == stage.data.val[1][:5]
    for example, paths in zip(*stage.data.train, strict=True):
        assert len(paths.candidates) == 20
        assert paths.candidates[example.target_position].item_id == stage.dataset.item(example.target).id
        shown = [stage.dataset.item(i).id for i in example.task.history[-20:].tolist()]
        assert [h.item_id for h in paths.history] == shown  # exactly the model's input


@pytest.fixture(scope="module")
def preference(stage: Stage) -> tuple[PreferenceResult, Path]:
    out = stage.work / "pref"
    result = train_preference(
        stage.dataset,
        PreferenceConfig(max_epochs=15, patience=15),
        train=stage.data.train,
        val=stage.data.val,
        out=out,
        retriever="pop",
        progress=False,
    )
    return result, out


def test_trained_preference_beats_its_untrained_start(stage: Stage, preference: tuple[PreferenceResult, Path]) -> None:
    result, _ = preference
    assert result.best_val_ndcg10 > result.untrained_val_ndcg10
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    module = PreferenceScorer.load(stage.work / "pref")
    assert module.meta["trained"] is True and module.meta["data_hash"] == stage.dataset.manifest.data_hash
    untrained = save_untrained(stage.dataset, PreferenceConfig(), val=stage.data.val, out=stage.work / "untrained")
    assert untrained == pytest.approx(result.untrained_val_ndcg10)

    ranker = PipelineRanker(stage.graph, RankingPipeline.from_preference(stage.work / "pref", fused=False))
    (retriever,) = evaluate_models(
        stage.dataset,
        _sequences(stage),
        [ModelSpec("p", [stage.work / "pop"], ranker)],
        split="val",
        ks=[10],
        retrieval_ks=[10],
        progress=False,
    )
    assert retriever.seeds[0].overall["N@10"].mean() >= 0


@pytest.fixture(scope="module")
def tiny_ranker(stage: Stage, preference: tuple[PreferenceResult, Path]) -> tuple[RankerResult, Path]:
    out = stage.work / "ranker"
    result = train_ranker(
        stage.dataset,
        RankerConfig(epochs=1, eval_every=10, budget_tokens=600, tiny=TINY_LLM),
        train=stage.data.train,
        val=stage.data.val,
        out=out,
        preference_dir=stage.work / "pref",
        retriever="pop",
        progress=False,
    )
    return result, out


def test_tiny_ranker_trains_saves_and_scores_the_ids_it_trained_on(
    stage: Stage, tiny_ranker: tuple[RankerResult, Path]
) -> None:
    result, out = tiny_ranker
    assert result.steps == 50 and result.reload_max_abs_difference < 1e-3
    assert {"model.safetensors", "tokenizer.json", "kgrank_ranker.json", "preference.pt"} <= {
        p.name for p in out.iterdir()
    }

    scorer = TransformersScorer(out)
    metadata = RankerMetadata.load(out)
    assert metadata.letter_token_ids == answer_token_ids(scorer.tokenizer)
    assert result.planned_steps == result.steps  # no --max-minutes: the whole epoch ran
    steps, scores = zip(*metadata.val_curve, strict=True)
    assert steps[0] == 0 and steps[-1] == result.steps and max(scores) == result.best_val_ndcg10
    ranker = PipelineRanker(
        stage.graph, RankingPipeline.from_checkpoint(out, scorer=scorer, tokenizer=scorer.tokenizer, fused=False)
    )
    tasks = [e.task for e in stage.data.val[0][:4]]
    prompts = [r.prompt for r in ranker.rankings(tasks)]
    assert all(p.tokens <= 600 for p in prompts)
    # The scorer reads exactly the training targets' ids: the id after each prompt for each letter.
    for letter, token in zip("ABC", metadata.letter_token_ids[:3], strict=True):
        assert scorer.tokenizer(prompts[0].text + letter)["input_ids"][-1] == token
    with torch.inference_mode():
        manual = letter_logprobs(scorer.model, scorer.tokenizer, [p.text for p in prompts], metadata.letter_token_ids)
    scored = scorer.score([p.text for p in prompts], [20] * len(prompts))
    assert np.allclose(np.stack(scored), manual.numpy(), atol=1e-5)
    # Batching and padding do not change a prompt's scores.
    alone = scorer.score([prompts[1].text], [20])[0]
    assert np.allclose(alone, scored[1], atol=1e-4)

    specs = [
        ModelSpec("retriever", [stage.work / "pop"], RetrieverOrder()),
        ModelSpec("llm", [stage.work / "pop"], ranker),
    ]
    results = evaluate_models(
        stage.dataset, _sequences(stage), specs, split="val", ks=[1, 10], retrieval_ks=[10], progress=False
    )
    assert np.array_equal(results[0].seeds[0].retrieved, results[1].seeds[0].retrieved)


def test_lora_on_a_local_checkpoint_merges_to_the_same_scores(stage: Stage, tmp_path: Path) -> None:
    base = tmp_path / "base"
    tokenizer = build_bpe_tokenizer(
        ["### Instruction:\n### Input:\n### Response:\n", "Heat (1995)"] * 50, vocab_size=600
    )
    build_tiny_llama(tokenizer, TINY_LLM, seed=1).save_pretrained(base)
    tokenizer.save_pretrained(base)
    out = tmp_path / "ranker"
    result = train_ranker(
        stage.dataset,
        RankerConfig(
            base_model=str(base),
            path_strategy="none",
            epochs=1,
            lr=1e-2,
            eval_every=25,
            budget_tokens=800,
            batch_size=8,
        ),
        train=stage.data.train,
        val=stage.data.val,
        out=out,
        progress=False,
    )
    assert result.reload_max_abs_difference < 1e-3  # merged checkpoint == base + LoRA
    before, after = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    if result.best_step:
        assert changed and all(("q_proj" in n or "v_proj" in n) for n in changed)
    else:
        assert not changed  # the untrained start stayed best: nothing merged
    assert RankerMetadata.load(out).training["lora"] == "True"


def _sequences(stage: Stage):
    from services.graph_loader.sequences import user_sequences

    return user_sequences(stage.dataset)


def test_cli_evaluates_every_kind_of_ranker(
    stage: Stage, preference: tuple[PreferenceResult, Path], tiny_ranker: tuple[RankerResult, Path]
) -> None:
    from tests.unit.test_cli import assert_one_error, kgrank

    ranker_dir = tiny_ranker[1]
    data, pop, out = stage.work / "data", stage.work / "pop", stage.work / "eval"
    result = kgrank(
        "evaluate",
        "--data",
        data,
        "--split",
        "val",
        "--out",
        out,
        "--resamples",
        "100",
        "--retrieval-ks",
        "10",
        "--model",
        f"retriever order={pop}",
        "--model",
        f"preference={pop}@preference:{preference[1]}",
        "--model",
        f"llm={pop}@llm:{ranker_dir}",
        "--model",
        f"llm fused={pop}@llm+fusion:{ranker_dir}",
        "--model",
        f"preference fused={pop}@preference+fusion:{preference[1]}",
    )
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "metrics.json").read_text())
    llm_weight = RankerMetadata.load(ranker_dir).fusion.weight
    preference_weight = PreferenceScorer.load(preference[1]).meta["fusion"]["weight"]
    assert [m["ranker"] for m in saved["models"]] == [
        "retriever order",
        "preference module",
        "llm (paths: preference)",
        f"llm (paths: preference) + retriever at {llm_weight:.2f}",
        f"preference module + retriever at {preference_weight:.2f}",
    ]
    assert_one_error(
        kgrank("evaluate", "--data", data, "--out", out, "--model", f"x={pop}@magic:{pop}"), "unknown ranker 'magic:"
    )
    assert_one_error(
        kgrank("evaluate", "--data", data, "--out", out, "--model", f"x={pop}@llm:{pop}"), "no kgrank_ranker.json"
    )


def not_beating_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "does not beat its untrained start" in r.getMessage()
    ]


def test_a_module_that_learns_nothing_is_recorded_and_warned_as_not_beating_its_untrained_start(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    out = stage.work / "pref-frozen"
    result = train_preference(
        stage.dataset,
        PreferenceConfig(lr=0.0, weight_decay=0.0, max_epochs=2, patience=2),
        train=stage.data.train,
        val=stage.data.val,
        out=out,
        progress=False,
    )
    assert result.best_val_ndcg10 == pytest.approx(result.untrained_val_ndcg10)
    meta = PreferenceScorer.load(out).meta
    assert not result.beats_untrained and meta["beats_untrained"] is False
    assert meta["val_ndcg10"] == result.best_val_ndcg10 and meta["untrained_val_ndcg10"] == result.untrained_val_ndcg10
    (warning,) = not_beating_warnings(caplog)
    assert warning.startswith("the trained preference module") and f"{result.untrained_val_ndcg10:.4f}" in warning


def test_a_ranker_that_learns_nothing_is_warned_and_recorded_and_validates_five_times_by_default(
    stage: Stage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="training")
    few = 40  # five steps of 8
    result = train_ranker(
        stage.dataset,
        RankerConfig(path_strategy="none", epochs=1, lr=0.0, budget_tokens=600, tiny=TINY_LLM),
        train=(stage.data.train[0][:few], stage.data.train[1][:few]),
        val=stage.data.val,
        out=tmp_path / "ranker",
        progress=False,
    )
    assert [h["step"] for h in result.history] == [0, 1, 2, 3, 4, 5]  # default: every fifth of the run
    assert result.best_step == 0 and not result.beats_untrained
    assert result.best_val_ndcg10 == result.untrained_val_ndcg10 == result.history[0]["val_N@10"]
    saved = json.loads((tmp_path / "ranker" / "training.json").read_text())
    assert saved["beats_untrained"] is False and saved["config"]["eval_every"] == 1
    assert saved["best_val_N@10"] == saved["untrained_val_N@10"] == result.untrained_val_ndcg10
    (warning,) = not_beating_warnings(caplog)
    assert warning.startswith("the trained ranker")
    (estimate,) = [r.getMessage() for r in caplog.records if "estimate:" in r.getMessage()]
    assert f"1 epoch × 5 steps + 6 validations of {len(stage.data.val[0])} users" in estimate
