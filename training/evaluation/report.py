"""Summaries of evaluated models: metrics.json, Markdown tables (beside the paper's rows where it has
them), a forest plot of the paired differences against the baseline and metric@k curves.

Redraw the figures and metrics.md of a saved evaluation (no model is run):

    python -m training.evaluation.report RESULTS_DIR [--val VAL_RESULTS_DIR]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from pydantic import BaseModel

from services.core.atomic import atomic_write_text, write_json
from services.core.errors import ConfigError
from training.evaluation.harness import ModelResult
from training.evaluation.paper import COLUMNS
from training.evaluation.statistics import PairedComparison, bootstrap_interval, paired_comparison

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COMPARED = ("N@10", "R@10", "N@5", "R@5", "M@10")
FOREST_PLOT = "metrics.png"
CURVES_PLOT = "curves.png"
VERDICT_COLOURS = {"better": "tab:green", "worse": "tab:red", "within noise": "tab:gray"}
FAMILY_TITLES = {"N": "NDCG", "R": "Recall"}


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


def headline_metrics(report: EvaluationReport) -> list[str]:
    """NDCG and Recall at 10 (at the largest k when --ks lacks 10): what the figures show; the model drawn
    beside the baseline is picked on the first."""
    k = 10 if 10 in report.ks else max(report.ks)
    return [f"N@{k}", f"R@{k}"]


def verdict(comparison: Comparison) -> str:
    if not comparison.significant:
        return "within noise"
    return "better" if comparison.mean_difference > 0 else "worse"


class ForestRow(NamedTuple):
    model: str
    by_metric: dict[str, Comparison]  # the model's paired comparisons with the baseline, headline metrics only


def forest_rows(report: EvaluationReport) -> list[ForestRow]:
    """One row per model compared with the baseline, largest difference on the first headline metric first
    (so the forest plot reads from the most helpful down)."""
    headline = headline_metrics(report)
    rows: dict[str, dict[str, Comparison]] = {}
    for comparison in report.comparisons:
        if comparison.metric in headline:
            rows.setdefault(comparison.model, {})[comparison.metric] = comparison
    found = [ForestRow(model, by_metric) for model, by_metric in rows.items()]
    return sorted(found, key=lambda row: row.by_metric[headline[0]].mean_difference, reverse=True)


def check_val(report: EvaluationReport, val: EvaluationReport) -> None:
    """A model picked on val must be picked on the val split of the same data, or the choice means nothing."""
    if val.split != "val":
        raise ConfigError(f"the model drawn beside the baseline is chosen on val; that evaluation is on {val.split}")
    if (val.dataset, val.data_hash) != (report.dataset, report.data_hash):
        raise ConfigError(f"the val evaluation is of {val.dataset} ({val.data_hash}), not {report.dataset}")


class ValChoice(NamedTuple):
    model: ModelReport  # as evaluated in the report (on test, usually)
    metric: str
    val_value: float  # what picked it


def best_on_val(report: EvaluationReport, val: EvaluationReport | None) -> ValChoice | None:
    """The model, baseline aside, with the best val figure on the first headline metric.

    Never chosen on the test figures the report shows: that would draw whichever model had the luckiest
    draw of test users.
    """
    if val is None:
        return None
    check_val(report, val)
    metric = headline_metrics(report)[0]
    on_val = {model.name: model.overall[metric].mean for model in val.models if metric in model.overall}
    contenders = [ValChoice(model, metric, on_val[model.name]) for model in report.models[1:] if model.name in on_val]
    return max(contenders, key=lambda choice: choice.val_value, default=None)


def curve_models(report: EvaluationReport, choice: ValChoice | None) -> list[ModelReport]:
    """The baseline and the model best on val: two curves and their bands stay apart where eight do not."""
    return [report.models[0]] if choice is None else [report.models[0], choice.model]


def _overall_section(report: EvaluationReport) -> list[str]:
    """Every model on the paper's columns, with the paper's rows only where it reports this dataset and split."""
    heading = "## Overall, beside the paper" if report.paper else "## Overall"
    lines = [heading, ""]
    if not report.paper:
        lines += [f"The paper reports no numbers for {report.dataset} on {report.split}.", ""]
    lines += ["| model | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for model in report.models:
        lines.append(f"| {model.name} | " + " | ".join(_cell(model.overall.get(c)) for c in COLUMNS) + " |")
    # metrics.json sorts its keys; weakest first by N@10 is the paper's own order of its rows.
    for name, row in sorted(report.paper.items(), key=lambda item: item[1]["N@10"]):
        lines.append(f"| *paper: {name}* | " + " | ".join(f"{row[c]:.4f}" for c in COLUMNS) + " |")
    return lines


def _intervals_section(report: EvaluationReport) -> list[str]:
    lines = [
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
    return lines


def _retrieval_section(report: EvaluationReport) -> list[str]:
    """The retrievers' own figures, once per set of runs (rankers over the same runs share them)."""
    retrieval_columns = [f"R@{k}" for k in report.retrieval_ks] + [f"N@{k}" for k in report.retrieval_ks]
    lines = [
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
    return lines


def _training_line(report: EvaluationReport) -> list[str]:
    trained, listed = [], set()
    for model in report.models:
        for run in model.runs:
            if run.epochs_run and run.run not in listed:
                listed.add(run.run)
                trained.append(
                    f"{Path(run.run).parent.name}/{Path(run.run).name}: best epoch {run.best_epoch} of "
                    f"{run.epochs_run}, {(run.seconds or 0) / 60:.1f} min"
                )
    return ["Retriever training: " + "; ".join(trained) + "."] if trained else []


def _comparisons_section(report: EvaluationReport) -> list[str]:
    if not report.comparisons:
        return []
    baseline = report.models[0].name
    lines = [
        f"## Paired comparisons against {baseline} (same users)",
        "",
        "| model | metric | difference | 95% interval | p | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in report.comparisons:
        lines.append(
            f"| {c.model} | {c.metric} | {c.mean_difference:+.4f} | [{c.low:+.4f}, {c.high:+.4f}] | "
            f"{'< 0.001' if c.p_value < 0.001 else f'{c.p_value:.3f}'} | {verdict(c)} |"
        )
    return lines + _forest_caption(report) if forest_rows(report) else lines


def _forest_caption(report: EvaluationReport) -> list[str]:
    headline, baseline = headline_metrics(report), report.models[0].name
    return [
        "",
        f"![paired differences against {baseline}]({FOREST_PLOT})",
        "",
        f"One row per model: its {' and '.join(headline)} minus {baseline}'s on the same users, the dot the mean "
        f"difference and the bar its paired bootstrap 95% interval (the table's). Rows are sorted by the "
        f"{headline[0]} difference, largest first. Green: better, red: worse (p < 0.05 and the interval clear of "
        "zero); grey: within noise. A bar across the zero line is no evidence that the model helps.",
    ]


def _curves_section(report: EvaluationReport, val: EvaluationReport | None) -> list[str]:
    choice = best_on_val(report, val)
    baseline = report.models[0].name
    if choice is not None and val is not None:
        why = (
            f"the baseline, {baseline}, and {choice.model.name}, the model with the best val {choice.metric} "
            f"({choice.val_value:.4f}) in `{val.command}`: chosen on val, never on the test figures drawn here."
        )
    elif len(report.models) == 1:
        why = f"{baseline}, the only model evaluated."
    else:
        why = (
            f"the baseline, {baseline}, alone: no val evaluation of these models was given, and a model picked "
            "by the test figures drawn here would be the luckiest, not the best. "
            "`python -m training.evaluation.report FOLDER --val VAL_FOLDER` adds the model best on val."
        )
    return [
        f"## Metrics at k: {', '.join(model.name for model in curve_models(report, choice))}",
        "",
        f"![metrics at k]({CURVES_PLOT})",
        "",
        f"Drawn: {why} Bands: bootstrap 95% intervals over users. Every model is in the tables above.",
    ]


def markdown(report: EvaluationReport, *, val: EvaluationReport | None = None) -> str:
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
    ]
    sections = [
        _overall_section(report),
        _intervals_section(report),
        _retrieval_section(report),
        _training_line(report),
        _comparisons_section(report),
        _curves_section(report, val),
    ]
    for section in sections:
        if section:
            lines += ["", *section]
    return "\n".join(lines) + "\n"


def _figure(width: float, height: float) -> Figure:
    """A figure drawn without pyplot (no display, no global state); matplotlib is imported only when one is
    drawn, as it is slow to import."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(figure: Figure, path: Path) -> None:
    """Write beside the target and rename, so a reader never sees half a PNG."""
    partial = path.with_name(f".{path.name}.partial.png")
    figure.savefig(partial, dpi=120)
    partial.replace(path)


def plot_forest(report: EvaluationReport, path: Path) -> None:
    rows, headline, baseline = forest_rows(report), headline_metrics(report), report.models[0].name
    figure = _figure(4 * len(headline) + 3.5, 0.45 * len(rows) + 1.8)
    axes = figure.subplots(1, len(headline), sharey=True, squeeze=False)
    for axis, metric in zip(axes[0], headline, strict=True):
        for position, row in enumerate(rows):
            c = row.by_metric[metric]
            axis.errorbar(
                c.mean_difference,
                position,
                xerr=[[c.mean_difference - c.low], [c.high - c.mean_difference]],
                fmt="o",
                color=VERDICT_COLOURS[verdict(c)],
                capsize=3,
            )
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_xlabel(f"{metric} difference (95% interval)")
        axis.set_title(metric)
        axis.grid(axis="x", alpha=0.3)
    first = axes[0][0]
    first.set_yticks(range(len(rows)), [row.model for row in rows], fontsize=9)
    first.invert_yaxis()  # the largest difference on top
    figure.suptitle(
        f"{report.dataset}, {report.split}: each model minus {baseline}, same users\n"
        "green better, red worse (p < 0.05), grey within noise",
        fontsize=10,
    )
    _save(figure, path)


def plot_curves(report: EvaluationReport, models: Sequence[ModelReport], path: Path) -> None:
    """`models`: the baseline, then the model best on val if one was chosen (see curve_models)."""
    families = [metric.split("@")[0] for metric in headline_metrics(report)]  # NDCG, Recall
    figure = _figure(5 * len(families), 4)
    axes = figure.subplots(1, len(families), squeeze=False)
    for axis, family in zip(axes[0], families, strict=True):
        for position, model in enumerate(models):
            style, role = ("--", "baseline") if position == 0 else ("-", "best on val")
            ks = [k for k in report.ks if f"{family}@{k}" in model.overall]
            summaries = [model.overall[f"{family}@{k}"] for k in ks]
            (line,) = axis.plot(ks, [s.mean for s in summaries], style, marker="o", label=f"{model.name} ({role})")
            axis.fill_between(
                ks, [s.ci_low for s in summaries], [s.ci_high for s in summaries], color=line.get_color(), alpha=0.15
            )
        axis.set_xlabel("k")
        axis.set_title(f"{FAMILY_TITLES[family]}@k (overall, {report.split})")
        axis.set_xticks(report.ks)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    _save(figure, path)


def render(report: EvaluationReport, out: Path, *, val: EvaluationReport | None = None) -> None:
    """The figures and metrics.md of a report; `val`, an evaluation of the same models on val, picks the
    model whose curves are drawn beside the baseline's."""
    if forest_rows(report):
        plot_forest(report, out / FOREST_PLOT)
    else:
        # Nothing compared (one model); a forest plot left by an earlier run would contradict metrics.md.
        (out / FOREST_PLOT).unlink(missing_ok=True)
    plot_curves(report, curve_models(report, best_on_val(report, val)), out / CURVES_PLOT)
    atomic_write_text(out / "metrics.md", markdown(report, val=val))


def write_report(report: EvaluationReport, out: Path, *, val: EvaluationReport | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", report.model_dump(mode="json"))
    render(report, out, val=val)


def load_report(folder: Path) -> EvaluationReport:
    return EvaluationReport.model_validate_json((folder / "metrics.json").read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Redraw the figures and metrics.md of a saved evaluation.")
    parser.add_argument("results", type=Path, help="a `kgrank evaluate --out` folder (its metrics.json is read)")
    parser.add_argument(
        "--val", type=Path, help="a `kgrank evaluate --split val` folder of the same models: picks the curve drawn"
    )
    args = parser.parse_args(argv)
    render(load_report(args.results), args.results, val=load_report(args.val) if args.val else None)


if __name__ == "__main__":
    main()
