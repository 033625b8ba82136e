"""Summaries of evaluated models: metrics.json, a Markdown table beside the paper's rows, a PNG plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from services.core.atomic import atomic_write_text, write_json
from training.evaluation.harness import ModelResult
from training.evaluation.paper import COLUMNS
from training.evaluation.statistics import PairedComparison, bootstrap_interval, paired_comparison

COMPARED = ("N@10", "R@10", "N@5", "R@5", "M@10")


class MetricSummary(BaseModel):
    mean: float  # mean over seeds
    std: float  # standard deviation over seeds (0 with one seed)
    per_seed: list[float]
    ci_low: float  # bootstrap 95% interval over users of the seed-averaged values
    ci_high: float


class RunInfo(BaseModel):
    """What a retriever run's training.json says about how it was trained."""

    run: str
    seed: int
    best_epoch: int | None = None
    epochs_run: int | None = None
    seconds: float | None = None


class ModelReport(BaseModel):
    name: str
    ranker: str
    runs: list[RunInfo]
    seeds: list[int]
    overall: dict[str, MetricSummary]
    subset: dict[str, MetricSummary]
    retrieval: dict[str, MetricSummary]
    retrieved_share: MetricSummary


class Comparison(PairedComparison):
    baseline: str
    model: str
    metric: str


class EvaluationReport(BaseModel):
    dataset: str
    data_hash: str
    split: str
    users: int
    candidates: int
    ks: list[int]
    retrieval_ks: list[int]
    resamples: int
    command: str
    models: list[ModelReport]
    comparisons: list[Comparison]
    paper: dict[str, dict[str, float]]
    seconds: float
    peak_rss_mb: float


def summarize(
    per_seed_values: list[np.ndarray], *, per: list[np.ndarray] | None = None, resamples: int
) -> MetricSummary:
    """Seed means and their spread, plus the bootstrap interval of the seed-averaged per-user values."""
    weights = per or [np.ones_like(v) for v in per_seed_values]
    means = [float(v.sum() / w.sum()) for v, w in zip(per_seed_values, weights, strict=True)]
    interval = bootstrap_interval(
        np.mean(per_seed_values, axis=0), per=np.mean(weights, axis=0) if per else None, resamples=resamples
    )
    return MetricSummary(
        mean=float(np.mean(means)),
        std=float(np.std(means, ddof=1)) if len(means) > 1 else 0.0,
        per_seed=means,
        ci_low=interval.low,
        ci_high=interval.high,
    )


def model_report(result: ModelResult, *, resamples: int) -> ModelReport:
    seeds = result.seeds
    retrieved = [seed.retrieved.astype(np.float64) for seed in seeds]
    return ModelReport(
        name=result.name,
        ranker=result.ranker,
        runs=[run_info(seed.run, seed.seed) for seed in seeds],
        seeds=[seed.seed for seed in seeds],
        overall={m: summarize([s.overall[m] for s in seeds], resamples=resamples) for m in seeds[0].overall},
        subset={
            m: summarize([s.overall[m] for s in seeds], per=retrieved, resamples=resamples) for m in seeds[0].overall
        },
        retrieval={m: summarize([s.retrieval[m] for s in seeds], resamples=resamples) for m in seeds[0].retrieval},
        retrieved_share=summarize(retrieved, resamples=resamples),
    )


def run_info(run: Path, seed: int) -> RunInfo:
    path = run / "training.json"
    if not path.is_file():
        return RunInfo(run=str(run), seed=seed)
    saved = json.loads(path.read_text(encoding="utf-8"))
    return RunInfo(
        run=str(run),
        seed=seed,
        best_epoch=saved.get("best_epoch"),
        epochs_run=saved.get("epochs_run"),
        seconds=saved.get("seconds"),
    )


def comparisons(results: Sequence[ModelResult], *, resamples: int) -> list[Comparison]:
    """Every model against the first one, on the same users, with seed-averaged per-user values."""
    baseline, found = results[0], []
    for result in results[1:]:
        for metric in COMPARED:
            if metric not in baseline.seeds[0].overall:
                continue
            a = np.mean([s.overall[metric] for s in baseline.seeds], axis=0)
            b = np.mean([s.overall[metric] for s in result.seeds], axis=0)
            found.append(
                Comparison(
                    baseline=baseline.name,
                    model=result.name,
                    metric=metric,
                    **paired_comparison(a, b, resamples=resamples).model_dump(),
                )
            )
    return found


def _cell(summary: MetricSummary | None) -> str:
    if summary is None:
        return "–"
    return f"{summary.mean:.4f} ± {summary.std:.4f}" if len(summary.per_seed) > 1 else f"{summary.mean:.4f}"


def _ranked_users(report: EvaluationReport) -> str:
    """How many users a ranker scored, per candidate set (one figure when every model shares it)."""
    counts = sorted({round(share * report.users) for m in report.models for share in m.retrieved_share.per_seed})
    return ", ".join(map(str, counts)) if len(counts) <= 3 else f"{counts[0]}–{counts[-1]}"


def markdown(report: EvaluationReport, *, plot_name: str) -> str:
    seeds = {len(m.seeds) for m in report.models}
    lines = [
        f"# {report.dataset}: {report.split} evaluation",
        "",
        f"`{report.command}`",
        "",
        f"{report.users} users, leave-one-out, history masked, all items ranked by the retriever; rankers "
        f"re-order its top {report.candidates}. Overall = all users (a true item outside the top "
        f"{report.candidates} is a miss). ± = standard deviation over seeds "
        f"({', '.join(map(str, sorted(seeds)))} per model). Rankers are run only for the users whose true item "
        f"is in the top {report.candidates} ({_ranked_users(report)} of {report.users}); the others are misses "
        "whatever a ranker does, so scoring them would change nothing. "
        "Took {:.0f} s, peak memory {:.0f} MB.".format(report.seconds, report.peak_rss_mb),
        "",
        "## Overall, beside the paper",
        "",
        "| model | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for model in report.models:
        lines.append(f"| {model.name} | " + " | ".join(_cell(model.overall.get(c)) for c in COLUMNS) + " |")
    for name, row in report.paper.items():
        lines.append(f"| *paper: {name}* | " + " | ".join(f"{row[c]:.4f}" for c in COLUMNS) + " |")
    lines += [
        "",
        "## 95% bootstrap intervals over users",
        "",
        f"| model | N@10 | R@10 | retrieved in top {report.candidates} | subset N@10 | subset R@10 |",
        "|---|---|---|---|---|---|",
    ]
    for model in report.models:
        cells = [
            model.overall.get("N@10"),
            model.overall.get("R@10"),
            model.retrieved_share,
            model.subset.get("N@10"),
            model.subset.get("R@10"),
        ]
        lines.append(
            f"| {model.name} | "
            + " | ".join(f"{c.mean:.4f} [{c.ci_low:.4f}, {c.ci_high:.4f}]" if c else "–" for c in cells)
            + " |"
        )
    retrieval_columns = [f"R@{k}" for k in report.retrieval_ks] + [f"N@{k}" for k in report.retrieval_ks]
    lines += [
        "",
        "## The retrievers' own ranking (all items)",
        "",
        "| candidates of | " + " | ".join(retrieval_columns) + " |",
        "|---|" + "---|" * len(retrieval_columns),
    ]
    seen_runs: set[tuple[str, ...]] = set()
    for model in report.models:
        runs = tuple(run.run for run in model.runs)
        if runs in seen_runs:
            continue
        seen_runs.add(runs)
        lines.append(f"| {model.name} | " + " | ".join(_cell(model.retrieval.get(c)) for c in retrieval_columns) + " |")
    trained, listed = [], set()
    for model in report.models:
        for run in model.runs:
            if run.epochs_run and run.run not in listed:
                listed.add(run.run)
                trained.append(
                    f"{Path(run.run).parent.name}/{Path(run.run).name}: best epoch {run.best_epoch} of "
                    f"{run.epochs_run}, {(run.seconds or 0) / 60:.1f} min"
                )
    if trained:
        lines += ["", "Retriever training: " + "; ".join(trained) + "."]
    if report.comparisons:
        lines += [
            "",
            f"## Paired comparisons against {report.comparisons[0].baseline} (same users)",
            "",
            "| model | metric | difference | 95% interval | p | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for c in report.comparisons:
            verdict = ("better" if c.mean_difference > 0 else "worse") if c.significant else "within noise"
            lines.append(
                f"| {c.model} | {c.metric} | {c.mean_difference:+.4f} | [{c.low:+.4f}, {c.high:+.4f}] | "
                f"{'< 0.001' if c.p_value < 0.001 else f'{c.p_value:.3f}'} | {verdict} |"
            )
    lines += ["", f"![metrics at k]({plot_name})", ""]
    return "\n".join(lines)


def plot(report: EvaluationReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for axis, metric in zip(axes, ("R", "N"), strict=True):
        for model in report.models:
            ks = [k for k in report.ks if f"{metric}@{k}" in model.overall]
            means = [model.overall[f"{metric}@{k}"].mean for k in ks]
            low = [model.overall[f"{metric}@{k}"].ci_low for k in ks]
            high = [model.overall[f"{metric}@{k}"].ci_high for k in ks]
            axis.plot(ks, means, marker="o", label=model.name)
            axis.fill_between(ks, low, high, alpha=0.15)
        axis.set_xlabel("k")
        axis.set_title({"R": "Recall@k", "N": "NDCG@k"}[metric] + f" (overall, {report.split})")
        axis.set_xticks(report.ks)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    partial = path.with_name(f".{path.name}.partial.png")
    figure.savefig(partial, dpi=120)
    plt.close(figure)
    partial.replace(path)


def write_report(report: EvaluationReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plot(report, out / "metrics.png")
    write_json(out / "metrics.json", report.model_dump(mode="json"))
    atomic_write_text(out / "metrics.md", markdown(report, plot_name="metrics.png"))
