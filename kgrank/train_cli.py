"""`kgrank train …`: the models behind ranking."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Literal

import typer

from kgrank.options import (
    DataDir,
    EmbeddedPath,
    Neo4jUri,
    Threads,
    check_retriever_run,
    output_folder,
    path_source,
    use_threads,
)
from kgrank.train_ranking_cli import preference, ranker
from services.graph_loader.dataset import ProcessedDataset
from training.config import RetrieverConfig

train_app = typer.Typer(help="Train retrievers and rankers.", no_args_is_help=True)
_DEFAULTS = {f.name: f.default for f in fields(RetrieverConfig)}
train_app.command("preference")(preference)
train_app.command("ranker")(ranker)


@train_app.command("retriever")
def retriever(
    data: DataDir,
    out: Annotated[Path, typer.Option(help="Run folder (one seed-N subfolder per seed when several).")],
    model: Annotated[Literal["lrurec", "sasrec", "pop"], typer.Option(help="Which retriever.")] = "lrurec",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = "0",
    max_len: Annotated[int | None, typer.Option(min=2, help="History length (default: 200 ML, 50 Amazon).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Default: 16 ML, 64 Amazon.")] = None,
    dim: Annotated[int, typer.Option(min=8)] = _DEFAULTS["dim"],
    blocks: Annotated[int, typer.Option(min=1)] = _DEFAULTS["blocks"],
    dropout: Annotated[float, typer.Option(min=0.0, max=0.9)] = _DEFAULTS["dropout"],
    lr: Annotated[float, typer.Option(min=0.0)] = _DEFAULTS["lr"],
    weight_decay: Annotated[float, typer.Option(min=0.0)] = _DEFAULTS["weight_decay"],
    max_epochs: Annotated[int, typer.Option(min=1)] = _DEFAULTS["max_epochs"],
    patience: Annotated[int, typer.Option(min=1, help="Epochs without a better val R@10 before stopping.")] = (
        _DEFAULTS["patience"]
    ),
    top_k: Annotated[int, typer.Option(min=20, help="Candidates kept per user.")] = _DEFAULTS["top_k"],
    max_minutes: Annotated[float | None, typer.Option(min=0.1, help="Time budget per seed.")] = None,
    negatives: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Sampled softmax: each position's next item against N uniformly drawn items (default: softmax over "
            "the whole catalogue). For big catalogues, where the full softmax dominates an epoch.",
        ),
    ] = None,
    threads: Threads = None,
) -> None:
    """Train with early stopping on val Recall@10; write checkpoint, training.json and candidates.

    Data parallel: torchrun --nproc-per-node N -m kgrank train retriever … (--batch-size stays global).
    """
    from services.core.atomic import check_replaceable
    from training.distributed import data_parallel
    from training.retriever import RUN_MARKERS, train_retriever

    use_threads(threads)
    dataset = ProcessedDataset.load(data)
    seed_list = parse_ints(seeds, option="--seeds")
    if len(seed_list) > 1:
        output_folder(out)
    runs = {seed: out / f"seed-{seed}" if len(seed_list) > 1 else out for seed in seed_list}
    for run in runs.values():
        check_replaceable(run, markers=RUN_MARKERS)
    with data_parallel() as workers:
        for seed, run in runs.items():
            config = RetrieverConfig(
                model=model,
                seed=seed,
                max_len=max_len,
                batch_size=batch_size,
                dim=dim,
                blocks=blocks,
                dropout=dropout,
                lr=lr,
                weight_decay=weight_decay,
                max_epochs=max_epochs,
                patience=patience,
                top_k=top_k,
                max_minutes=max_minutes,
                negatives=negatives,
            )
            result = train_retriever(dataset, config, run, workers=workers)
            if workers.is_main:
                typer.echo(
                    f"{model} seed {seed}: best val R@10 {result.best_val_recall10:.4f} at epoch {result.best_epoch} "
                    f"({result.epochs_run} epochs, {result.seconds:.0f} s, stopped: {result.stopped_by}) -> {run}"
                )


@train_app.command("ensemble")
def ensemble(
    data: DataDir,
    runs: Annotated[str, typer.Option(help="Comma-separated retriever runs (or folders of seed-N runs) to combine.")],
    out: Annotated[Path, typer.Option(help="Run folder for the ensemble (a retriever run like any other).")],
    top_k: Annotated[int, typer.Option(min=20, help="Candidates kept per user.")] = _DEFAULTS["top_k"],
    threads: Threads = None,
) -> None:
    """Average the runs' next-item log-probabilities; write checkpoint, training.json and candidates."""
    from training.ensemble import build_ensemble

    use_threads(threads)
    members = [Path(part) for part in runs.split(",") if part.strip()]
    for member in members:
        check_retriever_run(member, usage="--runs {}", seed_folders=True)
    record = build_ensemble(ProcessedDataset.load(data), members, out, top_k=top_k)
    val, test = record["metrics_over_all_items"]["val"], record["metrics_over_all_items"]["test"]
    typer.echo(
        f"ensemble of {len(record['members'])} runs: val R@10 {val['R@10']:.4f} N@10 {val['N@10']:.4f}, "
        f"test R@10 {test['R@10']:.4f} N@10 {test['N@10']:.4f} ({record['seconds']:.0f} s) -> {out}"
    )


@train_app.command("candidates")
def candidates(
    data: DataDir,
    run: Annotated[Path, typer.Option(help="A retriever run folder (with checkpoint.pt).")],
    top_k: Annotated[int, typer.Option(min=20, help="Candidates kept per user.")] = _DEFAULTS["top_k"],
    threads: Threads = None,
) -> None:
    """Rewrite a run's candidates-{val,test}.npz from its checkpoint, e.g. with more candidates."""
    from training.retriever import recompute_candidates

    use_threads(threads)
    check_retriever_run(run, usage="--run {}")
    metrics = recompute_candidates(ProcessedDataset.load(data), run, top_k=top_k)
    recall = metrics["test"]["R@10"]
    typer.echo(f"wrote {run / 'candidates-val.npz'} and candidates-test.npz (test R@10 {recall:.4f})")


def parse_ints(text: str, *, option: str) -> list[int]:
    from services.core.errors import ConfigError

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise ConfigError(f"{option} needs comma-separated integers, got {text!r}") from e
    if not values:
        raise ConfigError(f"{option} needs at least one value")
    return values


@train_app.command("bundle")
def bundle(
    data: DataDir,
    out: Annotated[Path, typer.Option(help="Folder for retriever/, preference/ and ranker/ (what `serve` loads).")],
    train_examples: Annotated[int, typer.Option(min=50, help="Training prefixes for the ranking models.")] = 600,
    base_model: Annotated[
        str, typer.Option(help="The LLM ranker's base: tiny, smollm2, gemma3 (fetched) or a checkpoint folder.")
    ] = "tiny",
    neo4j_uri: Neo4jUri = None,
    embedded: EmbeddedPath = None,
    threads: Threads = None,
) -> None:
    """Retriever, preference module and LLM ranker in one go, with quick settings (the demo's for tiny)."""
    from services.core.atomic import check_replaceable
    from services.ranker.context import RANKING_PATHS
    from training.bundle import BUNDLE_MARKERS, quick_config, train_bundle
    from training.ranker import check_base_model

    use_threads(threads)
    dataset = ProcessedDataset.load(data)
    check_replaceable(out, markers=BUNDLE_MARKERS)
    check_base_model(base_model)
    config = quick_config(train_examples, base_model=base_model)
    with path_source(data, dataset, neo4j_uri=neo4j_uri, embedded=embedded, config=RANKING_PATHS) as source:
        result = train_bundle(dataset, source, config, out, cache_dir=data / "cache")
    typer.echo(
        f"val N@10: preference module {result.preference_val_ndcg10:.4f} (untrained "
        f"{result.preference_untrained_val_ndcg10:.4f}), {base_model} LLM ranker {result.ranker_val_ndcg10:.4f}; "
        f"serve it: kgrank serve --data {data} --model {result.ranker} --retriever {result.retriever}"
    )
