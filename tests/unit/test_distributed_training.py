"""Data-parallel training under torchrun (2 CPU processes, gloo) against one process, same seed and global batch.

Why the comparisons can be tight: each rank takes its share of the very batches one process builds,
weighs its mean loss by its share of the targets, and DDP averages the gradients, so both runs take
the same optimiser steps; only the order of float32 sums differs. Dropout is off (ranks draw their
own masks). Measured: the logged losses differ by at most 6e-8 relative, the retriever's weights by
1.2e-7. LOSS_RTOL (8 float32 epsilons) leaves room for other CPUs and thread counts, yet averaging
the ranks' mean losses unweighted (wrong when ranks hold different numbers of targets) already moves
the retriever's loss by 1.2e-5 relative; an unsynchronised, skipped or doubled batch moves it by far
more. The validation metrics count users whose true item ranks high: rounding changes them only if
it swaps two scores within ~1e-6 of each other, so they must be equal (METRIC_ATOL only absorbs the
float mean).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from services.core.errors import ConfigError
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.embedded import EmbeddedGraph
from services.graph_loader.loader import load_graph
from services.graph_loader.prepare import prepare_dataset
from services.ranker.context import RANKING_PATHS, GraphContext
from services.ranker.llm.metadata import RankerMetadata
from services.ranker.llm.tiny_config import TinyLlamaConfig
from services.ranker.paths.embedded_source import EmbeddedPathSource
from tests.unit.test_cli import cli_environment
from training.config import RankerConfig, RetrieverConfig
from training.distributed import SINGLE_PROCESS, TorchrunEnvironment, Workers, data_parallel
from training.ranker import train_ranker
from training.ranking_data import ranking_data
from training.retriever import train_retriever

LOSS_RTOL = 1e-6
WEIGHT_ATOL = 1e-5
METRIC_ATOL = 1e-9
TIMEOUT_S = 120

# Each run is given to train_* as a config and to the CLI as the same options.
RETRIEVER_OPTIONS = {"dim": 16, "max_len": 16, "batch_size": 8, "max_epochs": 3, "patience": 3, "dropout": 0.0}
RANKER_OPTIONS = {
    "lora": True,
    "lora_dropout": 0.0,
    "lr": 1e-2,
    "batch_size": 8,
    "epochs": 1,
    "eval_every": 2,
    "budget_tokens": 256,
}
TINY_LLM_OPTIONS = {"vocab_size": 512, "hidden_size": 16, "layers": 1, "heads": 2}
RANKER = RankerConfig(path_strategy="none", tiny=TinyLlamaConfig(**TINY_LLM_OPTIONS), **RANKER_OPTIONS)
RANKER_EXAMPLES = 41  # 6 steps of 8; the last has one row, so rank 1 runs the weighted-0 stand-in


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, ml_raw: Path) -> Path:
    """A 40-user dataset with its embedded graph and a popularity retriever run in DATA/pop."""
    folder = tmp_path_factory.mktemp("ddp") / "data"
    dataset = prepare_dataset("ml-latest-small", ml_raw, folder)
    graph = EmbeddedGraph(folder / "graph.sqlite")
    load_graph(dataset, graph, target="embedded", progress=False)
    graph.close()
    train_retriever(dataset, RetrieverConfig(model="pop"), folder / "pop", progress=False)
    return folder


def start_torchrun(*args: str | Path) -> subprocess.Popen[str]:
    """`torchrun --standalone --nproc-per-node 2 -m kgrank ARGS` on CPUs, one thread per process; it
    runs while the test trains the same in one process (two cores, and the ranks often wait)."""
    environment = cli_environment({"OMP_NUM_THREADS": "1", "KGRANK_DEVICE": "cpu"})
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    return subprocess.Popen(
        [*command, "-m", "kgrank", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def output_of(run: subprocess.Popen[str]) -> str:
    """Its stdout, once it has succeeded."""
    try:
        stdout, stderr = run.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        run.kill()
        raise
    assert run.returncode == 0, stderr[-3000:]
    return stdout


def flags(options: dict[str, float | int | bool]) -> list[str]:
    """{"max_len": 16, "lora": True} → --max-len 16 --lora"""
    named = [(f"--{name.replace('_', '-')}", value) for name, value in options.items()]
    return [part for flag, value in named for part in ([flag] if value is True else [flag, str(value)])]


@pytest.mark.parametrize("loss", [{}, {"negatives": 32}], ids=["full-softmax", "sampled-softmax"])
def test_two_processes_train_the_retriever_one_process_trains(data: Path, tmp_path: Path, loss: dict[str, int]) -> None:
    options = RETRIEVER_OPTIONS | loss
    run = start_torchrun("train", "retriever", "--data", data, "--out", tmp_path / "two", *flags(options))
    config = RetrieverConfig(**options)
    one = train_retriever(ProcessedDataset.load(data), config, tmp_path / "one", progress=False)
    assert output_of(run).count("best val R@10") == 1  # rank 0 reports, rank 1 stays quiet
    runs = {p.parent.name for p in tmp_path.rglob("checkpoint.pt")}
    assert runs == {"one", "two"} and {p.name for p in tmp_path.iterdir()} == {"one", "two"}
    assert {p.parent.name for p in tmp_path.rglob("training.json")} == {"one", "two"}
    two = json.loads((tmp_path / "two" / "training.json").read_text())

    assert len(two["history"]) == len(one.history) == 3
    for single, parallel in zip(one.history, two["history"], strict=True):
        assert parallel["loss"] == pytest.approx(single["loss"], rel=LOSS_RTOL)
        for metric in ("val_R@10", "val_N@10"):
            assert parallel[metric] == pytest.approx(single[metric], abs=METRIC_ATOL)
    assert two["best_epoch"] == one.best_epoch
    single_run = json.loads((tmp_path / "one" / "training.json").read_text())
    for split in ("val", "test"):
        single = single_run["metrics_over_all_items"][split]
        assert two["metrics_over_all_items"][split] == pytest.approx(single, abs=METRIC_ATOL)
    trained = [torch.load(tmp_path / run / "checkpoint.pt")["state_dict"] for run in ("one", "two")]
    for name, weights in trained[0].items():
        assert torch.allclose(trained[1][name], weights, atol=WEIGHT_ATOL), name


def test_two_processes_train_the_lora_ranker_one_process_trains(data: Path, tmp_path: Path) -> None:
    dataset = ProcessedDataset.load(data)
    graph = EmbeddedGraph(data / "graph.sqlite")
    context = GraphContext(
        dataset, EmbeddedPathSource(graph, dataset=dataset.name, schema=dataset.schema, config=RANKING_PATHS)
    )
    # What the CLI loads; it fills the path cache before the 2-process run starts and reads it.
    loaded = ranking_data(
        dataset,
        context,
        retriever_run=data / "pop",
        train_examples=RANKER_EXAMPLES,
        seed=0,
        candidates="random",
        path_config=RANKING_PATHS,
        cache_dir=data / "cache",
        progress=False,
    )
    graph.close()
    assert len(loaded.train[0]) % RANKER.batch_size == 1  # the last batch leaves rank 1 without a row
    run = start_torchrun(
        *("train", "ranker", "--data", data, "--retriever", data / "pop", "--out", tmp_path / "two"),
        *("--base-model", "tiny", "--paths", "none", "--train-candidates", "random"),
        *flags({"train_examples": RANKER_EXAMPLES} | RANKER_OPTIONS | TINY_LLM_OPTIONS),
    )
    one = train_ranker(dataset, RANKER, train=loaded.train, val=loaded.val, out=tmp_path / "one", progress=False)
    assert output_of(run).count("ranker (none): val N@10") == 1
    assert {p.parent.name for p in tmp_path.rglob("model.safetensors")} == {"one", "two"}
    assert {p.parent.name for p in tmp_path.rglob("training.json")} == {"one", "two"}
    history = json.loads((tmp_path / "two" / "training.json").read_text())["history"]

    assert [h["step"] for h in history] == [h["step"] for h in one.history] == [0, 2, 4, 6]
    for single, parallel in zip(one.history[1:], history[1:], strict=True):
        assert parallel["loss"] == pytest.approx(single["loss"], rel=LOSS_RTOL)
    for single, parallel in zip(one.history, history, strict=True):
        assert parallel["val_N@10"] == pytest.approx(single["val_N@10"], abs=METRIC_ATOL)
    assert RankerMetadata.load(tmp_path / "two").training["best_step"] == one.best_step


@pytest.mark.parametrize("world_size", [2, 3, 4])
@pytest.mark.parametrize("rows", [1, 5, 8, 12])
def test_every_row_of_a_batch_is_trained_once_and_weighs_as_in_one_process(world_size: int, rows: int) -> None:
    shares = [Workers(rank, world_size).share(rows) for rank in range(world_size)]
    real = [share for share in shares if not share.stand_in]
    assert [i for share in real for i in range(rows)[share.rows]] == list(range(rows))
    assert all(share.rows == slice(0, 1) for share in shares if share.stand_in)
    # Mean-loss weights: DDP divides their sum by the world size; it must come back to one batch's mean.
    weights = [share.loss_weight(len(range(rows)[share.rows]), rows) for share in shares]
    assert sum(weights) / world_size == pytest.approx(1.0)
    assert SINGLE_PROCESS.share(rows).loss_weight(rows, rows) == 1.0


def test_the_global_batch_must_split_evenly_over_the_processes() -> None:
    Workers(1, 4).check_batch_size(16)
    with pytest.raises(ConfigError, match="must split evenly over the 3 processes"):
        Workers(0, 3).check_batch_size(16)


def test_outside_torchrun_training_stays_a_single_process() -> None:
    for environ in ({}, {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}):
        with data_parallel(environ) as workers:
            assert workers is SINGLE_PROCESS and workers.is_main
    with pytest.raises(ConfigError, match="LOCAL_RANK not"):
        TorchrunEnvironment.read({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="not usable"):
        TorchrunEnvironment.read({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
