"""`kgrank evaluate` as a function: evaluate named models, summarise, compare, write the report."""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from pathlib import Path

from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.sequences import EvalSplit, user_sequences
from training.evaluation.harness import ModelSpec, evaluate_models
from training.evaluation.paper import paper_rows
from training.evaluation.report import EvaluationReport, comparisons, model_report, write_report

DEFAULT_KS = (1, 5, 10)
DEFAULT_RETRIEVAL_KS = (1, 5, 10, 20, 50)


def evaluate(
    dataset: ProcessedDataset,
    models: Sequence[ModelSpec],
    *,
    split: EvalSplit,
    out: Path,
    command: str,
    ks: Sequence[int] = DEFAULT_KS,
    retrieval_ks: Sequence[int] = DEFAULT_RETRIEVAL_KS,
    candidates: int = 20,
    resamples: int = 2000,
    progress: bool = True,
) -> EvaluationReport:
    started = time.perf_counter()
    results = evaluate_models(
        dataset,
        user_sequences(dataset),
        models,
        split=split,
        ks=ks,
        retrieval_ks=retrieval_ks,
        candidates=candidates,
        progress=progress,
    )
    report = EvaluationReport(
        dataset=dataset.name,
        data_hash=dataset.manifest.data_hash,
        split=split,
        users=len(results[0].seeds[0].retrieved),
        candidates=candidates,
        ks=list(ks),
        retrieval_ks=list(retrieval_ks),
        resamples=resamples,
        command=command,
        models=[model_report(result, resamples=resamples) for result in results],
        comparisons=comparisons(results, resamples=resamples),
        paper=paper_rows(dataset.manifest.kind, dataset.name) if split == "test" else {},
        seconds=round(time.perf_counter() - started, 1),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    write_report(report, out)
    return report
