"""`kgrank train preference` and `kgrank train ranker`: the two learned parts of the ranking stage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

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
from services.core.errors import ConfigError
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.context import RANKING_PATHS
from services.ranker.llm.tiny_config import TinyLlamaConfig
from services.ranker.strategy import PREFERENCE_STRATEGIES
from training.config import PreferenceConfig, RankerConfig

if TYPE_CHECKING:
    from training.ranking_data import RankingData

Retriever = Annotated[Path, typer.Option(help="Retriever run whose val candidates drive model selection.")]
TrainExamples = Annotated[int, typer.Option(min=1, help="Training prefixes sampled.")]
TrainCandidatesOption = Annotated[
    Literal["random", "hard", "retrieved"],
    typer.Option(
        help="retrieved (default): the retriever's top 20 in its order, as evaluation and serving hand them over "
        "(LlamaRec's recipe); random: next item + 19 random negatives, shuffled (the LKG-RAG paper's); hard: + the "
        "retriever's 19 best guesses, shuffled."
    ),
]


def load_data(
    data: Path,
    dataset: ProcessedDataset,
    *,
    retriever: Path,
    examples: int,
    seed: int,
    candidates: str,
    neo4j_uri: str | None,
    embedded: Path | None,
) -> RankingData:
    from training.ranking_data import ranking_data

    with graph_context(data, dataset, neo4j_uri=neo4j_uri, embedded=embedded, config=RANKING_PATHS) as context:
        return ranking_data(
            dataset,
            context,
            retriever_run=retriever,
            train_examples=examples,
            seed=seed,
            candidates=candidates,  # type: ignore[arg-type]
            path_config=RANKING_PATHS,
            cache_dir=data / "cache",
        )


def preference(
    data: DataDir,
    retriever: Retriever,
    out: Annotated[Path, typer.Option(help="Folder for preference.pt.")],
    train_examples: TrainExamples = 4000,
    train_candidates: TrainCandidatesOption = "retrieved",
    seed: Annotated[int, typer.Option()] = 0,
    max_epochs: Annotated[int, typer.Option(min=1)] = PreferenceConfig.max_epochs,
    untrained: Annotated[bool, typer.Option(help="Save the seeded initial module untrained (paper ablation).")] = False,
    neo4j_uri: Neo4jUri = None,
    embedded: EmbeddedPath = None,
    threads: Threads = None,
) -> None:
    """Train the preference module (listwise, early stopping on val NDCG@10); writes OUT/preference.pt."""
    from training.preference import save_untrained, train_preference

    use_threads(threads)
    dataset = ProcessedDataset.load(data)
    output_folder(out)
    check_retriever_run(retriever, usage="--retriever {}")
    loaded = load_data(
        data,
        dataset,
        retriever=retriever,
        examples=train_examples,
        seed=seed,
        candidates=train_candidates,
        neo4j_uri=neo4j_uri,
        embedded=embedded,
    )
    config = PreferenceConfig(seed=seed, max_epochs=max_epochs)
    if untrained:
        score = save_untrained(dataset, config, val=loaded.val, out=out, retriever=str(retriever))
        typer.echo(f"untrained preference module: val N@10 {score:.4f} -> {out}")
        return
    result = train_preference(dataset, config, train=loaded.train, val=loaded.val, out=out, retriever=str(retriever))
    fused = (
        ""
        if result.fusion_weight is None
        else f"; fused with the retriever at weight {result.fusion_weight:.2f}: {result.fused_val_ndcg10:.4f}"
    )
    typer.echo(
        f"preference module: val N@10 {result.best_val_ndcg10:.4f} at epoch {result.best_epoch} "
        f"(untrained: {result.untrained_val_ndcg10:.4f}{fused}; {len(loaded.train[0])} training examples, "
        f"{len(loaded.val[0])} validation users, {result.seconds:.0f} s) -> {out}"
    )
    if not result.beats_untrained:  # training logged the WARNING with both numbers; this is what to do about it
        typer.echo("hint: --train-candidates retrieved (what evaluation shows a ranker) usually fixes this", err=True)


def ranker(
    data: DataDir,
    retriever: Retriever,
    out: Annotated[Path, typer.Option(help="Folder for the merged Hugging Face checkpoint.")],
    base_model: Annotated[
        str,
        typer.Option(
            help="'tiny' (built here), 'smollm2' or 'gemma3' (after `kgrank base-model fetch NAME`), or a local "
            "Llama-architecture checkpoint folder."
        ),
    ] = "tiny",
    paths: Annotated[
        Literal["none", "shortest", "preference", "untrained-preference"],
        typer.Option(help="Which relation paths the prompts show."),
    ] = "preference",
    preference_dir: Annotated[
        Path | None,
        typer.Option("--preference", help="Preference module folder (for the preference strategies)."),
    ] = None,
    train_examples: TrainExamples = 3000,
    train_candidates: TrainCandidatesOption = "retrieved",
    seed: Annotated[int, typer.Option()] = 0,
    epochs: Annotated[int | None, typer.Option(min=1, help="Default: 1 with LoRA, 3 for tiny.")] = None,
    lr: Annotated[float | None, typer.Option(min=0.0, help="Default: 1e-4 with LoRA, 1e-3 for tiny.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    budget_tokens: Annotated[int | None, typer.Option(min=64, help="Default: 2286, 1024 for tiny.")] = None,
    history_items: Annotated[
        int,
        typer.Option(min=1, max=RANKING_PATHS.history_length, help="History items a prompt shows (the last N)."),
    ] = RANKING_PATHS.history_length,
    warmup_steps: Annotated[
        int | None, typer.Option(min=1, help="Default: 100 (the paper's), at most a tenth of the run.")
    ] = None,
    lora: Annotated[bool | None, typer.Option(help="Default: LoRA for a checkpoint, full for tiny.")] = None,
    lora_dropout: Annotated[float, typer.Option(min=0.0, max=0.9)] = RankerConfig.lora_dropout,
    load_in_4bit: Annotated[bool, typer.Option(help="QLoRA (needs a GPU and bitsandbytes).")] = False,
    eval_every: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Steps between validations (default: a fifth of the run, so at least 5 after step 0; at most 100).",
        ),
    ] = None,
    max_minutes: Annotated[float | None, typer.Option(min=0.1)] = None,
    hidden_size: Annotated[int, typer.Option(min=16, help="tiny only")] = TinyLlamaConfig().hidden_size,
    layers: Annotated[int, typer.Option(min=1, help="tiny only")] = TinyLlamaConfig().layers,
    heads: Annotated[int, typer.Option(min=1, help="tiny only")] = TinyLlamaConfig().heads,
    vocab_size: Annotated[int, typer.Option(min=512, help="tiny only")] = TinyLlamaConfig().vocab_size,
    neo4j_uri: Neo4jUri = None,
    embedded: EmbeddedPath = None,
    threads: Threads = None,
) -> None:
    """Fine-tune the LLM ranker on letter answers, select on val NDCG@10, merge, choose the fusion weight, save.

    Data parallel: torchrun --nproc-per-node N -m kgrank train ranker … (--batch-size stays global).
    """
    from services.core.atomic import check_replaceable
    from services.ranker.preference.scorer import PreferenceScorer
    from services.ranker.preference.select import selector_for
    from training.distributed import data_parallel
    from training.ranker import RANKER_MARKERS, check_base_model, train_ranker

    use_threads(threads)
    dataset = ProcessedDataset.load(data)
    check_replaceable(out, markers=RANKER_MARKERS)
    check_base_model(base_model)
    uses_module = paths in PREFERENCE_STRATEGIES
    if uses_module and preference_dir is None:
        raise ConfigError(f"--paths {paths} needs --preference DIR (from `kgrank train preference`)")
    selector_for(paths, PreferenceScorer.load(preference_dir) if uses_module else None)  # a mismatch fails here
    check_retriever_run(retriever, usage="--retriever {}")
    config = RankerConfig(
        base_model=base_model,
        path_strategy=paths,
        seed=seed,
        budget_tokens=budget_tokens,
        history_items=history_items,
        warmup_steps=warmup_steps,
        lora=lora,
        lora_dropout=lora_dropout,
        load_in_4bit=load_in_4bit,
        lr=lr,
        batch_size=batch_size,
        epochs=epochs,
        eval_every=eval_every,
        max_minutes=max_minutes,
        tiny=TinyLlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, layers=layers, heads=heads),
    )
    with data_parallel() as workers:
        with workers.main_first():  # rank 0 exports the relation paths into the cache; the others read it
            loaded = load_data(
                data,
                dataset,
                retriever=retriever,
                examples=train_examples,
                seed=seed,
                candidates=train_candidates,
                neo4j_uri=neo4j_uri,
                embedded=embedded,
            )
        result = train_ranker(
            dataset,
            config,
            train=loaded.train,
            val=loaded.val,
            out=out,
            preference_dir=preference_dir if uses_module else None,
            retriever=str(retriever),
            workers=workers,
        )
    if not workers.is_main:
        return
    fused = (
        ""
        if result.fusion_weight is None
        else f"; fused with the retriever at weight {result.fusion_weight:.2f}: val N@10 {result.fused_val_ndcg10:.4f}"
    )
    stopped = (
        f" (--max-minutes stopped it; {result.planned_steps} planned)" if result.steps < result.planned_steps else ""
    )
    typer.echo(
        f"ranker ({paths}): val N@10 {result.best_val_ndcg10:.4f} at step {result.best_step} of {result.steps}"
        f"{stopped}{fused} "
        f"({len(loaded.train[0])} training examples, {result.seconds / 60:.1f} min; saved scores match within "
        f"{result.reload_max_abs_difference:.1e}) -> {out}"
    )
