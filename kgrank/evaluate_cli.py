"""`kgrank evaluate`: the paper's protocol over any rankers, beside the paper's numbers."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from kgrank.options import DataDir
from kgrank.train_cli import parse_ints
from services.core.errors import ConfigError
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.ranking import RetrieverOrder
from training.evaluation.evaluate import evaluate as run_evaluation
from training.evaluation.harness import ModelSpec

MODEL_HELP = (
    "NAME=RUN[,RUN…]: retriever run folders (or folders of seed-N runs). Repeatable; "
    "the first is the baseline of the paired comparisons."
)


MODEL_HELP = (
    "NAME=RUN[,RUN…]: retriever run folders (or folders of seed-N runs). Repeatable; "
    "the first is the baseline of the paired comparisons."
)


def evaluate(
    data: DataDir,
    model: Annotated[list[str], typer.Option(help=MODEL_HELP)],
    out: Annotated[Path, typer.Option(help="Folder for metrics.json, metrics.md, metrics.png.")],
    split: Annotated[Literal["val", "test"], typer.Option()] = "test",
    ks: Annotated[str, typer.Option(help="Cut-offs for rankers (≤ --candidates).")] = "1,5,10",
    retrieval_ks: Annotated[
        str, typer.Option(help="Cut-offs for the retrievers' own ranking.")
    ] = "1,5,10,20,50",
    candidates: Annotated[int, typer.Option(min=1, help="How many retrieved items a ranker re-orders.")] = 20,
    resamples: Annotated[int, typer.Option(min=100, help="Bootstrap and randomisation resamples.")] = 2000,
) -> None:
    """Evaluate on val or test; write metrics.json, a Markdown table beside the paper's rows, a plot."""
    dataset = ProcessedDataset.load(data)
    specs = [parse_model(text) for text in model]
    if len({spec.name for spec in specs}) != len(specs):
        raise ConfigError("model names must be unique")
    report = run_evaluation(
        dataset,
        specs,
        split=split,
        out=out,
        command="kgrank " + " ".join(shlex.quote(arg) for arg in sys.argv[1:]),
        ks=parse_ints(ks, option="--ks"),
        retrieval_ks=parse_ints(retrieval_ks, option="--retrieval-ks"),
        candidates=candidates,
        resamples=resamples,
    )
    for entry in report.models:
        n10, r10 = entry.overall["N@10"], entry.overall["R@10"]
        typer.echo(
            f"{entry.name}: N@10 {n10.mean:.4f} [{n10.ci_low:.4f}, {n10.ci_high:.4f}], "
            f"R@10 {r10.mean:.4f} [{r10.ci_low:.4f}, {r10.ci_high:.4f}] over {len(entry.seeds)} seed(s)"
        )
    typer.echo(f"wrote {out / 'metrics.md'}, {out / 'metrics.json'}, {out / 'metrics.png'}")


def parse_model(text: str) -> ModelSpec:
    name, _, runs = text.partition("=")
    paths = [Path(part) for part in runs.split(",") if part.strip()]
    if not name or not paths:
        raise ConfigError(f"--model needs NAME=RUN[,RUN…], got {text!r}")
    return ModelSpec(name=name, runs=paths, ranker=RetrieverOrder())
