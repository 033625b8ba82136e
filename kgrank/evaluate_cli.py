"""`kgrank evaluate`: the paper's protocol over any rankers, beside the paper's numbers."""

from __future__ import annotations

import shlex
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from kgrank.options import (
    DataDir,
    EmbeddedPath,
    Neo4jUri,
    Threads,
    check_retriever_run,
    graph_context,
    output_folder,
    use_threads,
)
from kgrank.train_cli import parse_ints
from services.core.errors import ConfigError, ModelError
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.context import RANKING_PATHS, GraphContext
from services.ranker.ranking import Ranker, RetrieverOrder
from training.evaluation.evaluate import evaluate as run_evaluation
from training.evaluation.harness import ModelSpec

if TYPE_CHECKING:
    from services.ranker.llm.scorer import LetterScorer

Scorers = dict[Path, tuple["LetterScorer", Any]]  # a loaded checkpoint's (memoized) scorer and tokenizer

MODEL_SYNTAX = "NAME=RUNS[@RANKER]"
MODEL_HELP = (
    "A model to evaluate, named NAME: the candidates of the retriever runs RUNS (comma-separated folders; a "
    "folder of seed-N runs counts as its seeds), re-ranked by RANKER: retriever (default, their own order), "
    "preference:DIR, llm:DIR, or preference+fusion:DIR, llm+fusion:DIR (mixed with the retriever's scores at the "
    "weight chosen on val in training). E.g. lrurec=runs/lrurec, llm=runs/ensemble@llm:models/ranker. "
    "Repeatable; the first model is the baseline of the paired comparisons."
)
RANKER_KINDS = ("preference", "llm", "preference+fusion", "llm+fusion")


@dataclass(frozen=True)
class ParsedModel:
    name: str
    runs: list[Path]
    ranker: str


def evaluate(
    data: DataDir,
    model: Annotated[list[str], typer.Option(help=MODEL_HELP, metavar=MODEL_SYNTAX)],
    out: Annotated[Path, typer.Option(help="Folder for metrics.json, metrics.md, metrics.png.")],
    split: Annotated[Literal["val", "test"], typer.Option()] = "test",
    ks: Annotated[str, typer.Option(help="Cut-offs for rankers (≤ --candidates).")] = "1,5,10",
    retrieval_ks: Annotated[str, typer.Option(help="Cut-offs for the retrievers' own ranking.")] = "1,5,10,20,50",
    candidates: Annotated[int, typer.Option(min=1, max=20, help="How many retrieved items a ranker re-orders.")] = 20,
    resamples: Annotated[int, typer.Option(min=100, help="Bootstrap and randomisation resamples.")] = 2000,
    scorer: Annotated[Literal["transformers", "vllm"], typer.Option(help="How llm rankers are run.")] = "transformers",
    vllm_url: Annotated[
        str, typer.Option(help="vLLM server for --scorer vllm; several, comma-separated, share the load.")
    ] = "http://127.0.0.1:8000",
    neo4j_uri: Neo4jUri = None,
    embedded: EmbeddedPath = None,
    threads: Threads = None,
) -> None:
    """Evaluate on val or test; write metrics.json, a Markdown table beside the paper's rows, a plot."""
    use_threads(threads)
    dataset = ProcessedDataset.load(data)
    output_folder(out)
    parsed = [parse_model(text) for text in model]
    if len({p.name for p in parsed}) != len(parsed):
        raise ConfigError("model names must be unique")
    for p in parsed:
        for run in p.runs:
            check_retriever_run(run, usage=f"--model {p.name}={{}}", seed_folders=True)
    with ExitStack() as stack:
        graph: GraphContext | None = None
        if any(p.ranker != "retriever" for p in parsed):
            graph = stack.enter_context(
                graph_context(data, dataset, neo4j_uri=neo4j_uri, embedded=embedded, config=RANKING_PATHS)
            )
        scorers: Scorers = {}  # one loaded checkpoint per folder, shared
        specs = [
            ModelSpec(
                p.name,
                p.runs,
                build_ranker(p, dataset, graph, scorer=scorer, vllm_url=vllm_url, stack=stack, scorers=scorers),
            )
            for p in parsed
        ]
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


def parse_model(text: str) -> ParsedModel:
    name, _, rest = text.partition("=")
    runs_text, _, ranker = rest.partition("@")
    paths = [Path(part) for part in runs_text.split(",") if part.strip()]
    if not name or not paths:
        raise ConfigError(f"--model needs {MODEL_SYNTAX}, got {text!r}")
    kind, _, argument = ranker.partition(":")
    if ranker not in ("", "retriever") and not (kind in RANKER_KINDS and argument):
        raise ConfigError(f"unknown ranker {ranker!r}: use retriever, or {', '.join(k + ':DIR' for k in RANKER_KINDS)}")
    return ParsedModel(name=name, runs=paths, ranker=ranker or "retriever")


def build_ranker(
    parsed: ParsedModel,
    dataset: ProcessedDataset,
    graph: GraphContext | None,
    *,
    scorer: str,
    vllm_url: str,
    stack: ExitStack,
    scorers: Scorers | None = None,
) -> Ranker:
    """The ranking pipeline a --model names, as serving would build it from the same folder.

    `scorers` shares one loaded checkpoint (and its scores) between rankers of the same folder.
    """
    kind, _, argument = parsed.ranker.partition(":")
    if kind == "retriever" and not argument:
        return RetrieverOrder()
    assert graph is not None, "evaluate opens the graph for every ranker but the retriever's own order"
    from services.ranker.llm.metadata import RankerMetadata
    from services.ranker.llm.scorer import MemoizedScorer, TransformersScorer, load_tokenizer
    from services.ranker.llm.vllm import VLLMScorer
    from services.ranker.pipeline import PipelineRanker, RankingPipeline
    from services.ranker.preference.scorer import PreferenceScorer

    folder = Path(argument)
    base, _, fusion = kind.partition("+")
    if base == "preference":
        check_trained_on(dataset, PreferenceScorer.load(folder).meta.get("data_hash"), folder)
        return PipelineRanker(graph, RankingPipeline.from_preference(folder, fused=bool(fusion)))
    metadata = RankerMetadata.load(folder)
    check_trained_on(dataset, metadata.data_hash, folder)
    scorers = {} if scorers is None else scorers
    if folder.resolve() not in scorers:
        letter_scorer: LetterScorer
        if scorer == "vllm":
            remote = VLLMScorer(vllm_url, metadata)
            stack.callback(remote.close)
            letter_scorer, tokenizer = remote, load_tokenizer(folder)
        else:
            local = TransformersScorer(folder)
            letter_scorer, tokenizer = local, local.tokenizer
        scorers[folder.resolve()] = (MemoizedScorer(letter_scorer), tokenizer)
    letter_scorer, tokenizer = scorers[folder.resolve()]
    pipeline = RankingPipeline.from_checkpoint(folder, scorer=letter_scorer, tokenizer=tokenizer, fused=bool(fusion))
    return PipelineRanker(graph, pipeline)


def check_trained_on(dataset: ProcessedDataset, data_hash: str | None, folder: Path) -> None:
    if data_hash != dataset.manifest.data_hash:
        raise ModelError(f"{folder} was trained on another dataset or version than {dataset.name}; retrain it")
