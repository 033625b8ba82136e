"""The ranking ablation as one table: how each ranker was trained and chosen on val, and what it did on test.

    .venv/bin/python -m benchmarks.ranking_table --evaluation benchmarks/results/ml-latest-small/ranking-smollm2

Reads the evaluation's metrics.json (test figures, paired comparisons against its first model) and, for
each ranker named in its command, the model folder's own record (kgrank_ranker.json or preference.pt:
training cost, best val step, the fusion weight chosen on val). Writes ablation.json, ablation.md and
ablation.png (each ranker's paired N@10 difference against the retriever order, with its 95% interval)
into the evaluation folder.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
from pathlib import Path
from typing import Any

from benchmarks.common import markdown_table
from kgrank.evaluate_cli import parse_model
from services.ranker.llm.metadata import RankerMetadata
from services.ranker.preference.scorer import PreferenceScorer


def model_folders(command: str) -> dict[str, tuple[str, Path | None]]:
    """NAME -> (ranker kind, model folder) for every --model of a `kgrank evaluate` command line."""
    words = shlex.split(command)
    found: dict[str, tuple[str, Path | None]] = {}
    for flag, value in itertools.pairwise(words):
        if flag == "--model":
            parsed = parse_model(value)
            kind, _, folder = parsed.ranker.partition(":")
            found[parsed.name] = (kind, Path(folder) if folder else None)
    return found


def training_record(kind: str, folder: Path | None) -> dict[str, Any]:
    """What the model folder says about its training and its fusion weight (chosen on val)."""
    if folder is None:
        return {}
    if kind.startswith("preference"):
        meta = PreferenceScorer.load(folder).meta
        fusion = meta.get("fusion") or {}
        return {
            "model": "preference module" + ("" if meta.get("trained") else " (untrained)"),
            "train_examples": meta.get("train_examples"),
            "val_N@10": meta.get("val_ndcg10"),
            "untrained_val_N@10": meta.get("untrained_val_ndcg10"),
            "beats_untrained": meta.get("beats_untrained"),
            "fusion": fusion,
        }
    metadata = RankerMetadata.load(folder)
    training = metadata.training
    return {
        "model": metadata.base_model,
        "paths": metadata.path_strategy,
        "budget_tokens": metadata.prompt.budget_tokens,
        "history_items": metadata.prompt.history_items,
        "train_examples": training.get("train_examples"),
        "steps": training.get("steps"),
        "planned_steps": training.get("planned_steps"),  # absent in checkpoints older than the field
        "val_curve": metadata.val_curve,
        "best_step": training.get("best_step"),
        "val_N@10": training.get("best_val_N@10"),
        "minutes": round(float(training.get("seconds", 0)) / 60, 1),
        "device": training.get("device"),
        "fusion": {} if metadata.fusion is None else metadata.fusion.model_dump(mode="json"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluation", type=Path, required=True, help="a `kgrank evaluate --out` folder")
    args = parser.parse_args()
    metrics = json.loads((args.evaluation / "metrics.json").read_text(encoding="utf-8"))
    folders = model_folders(metrics["command"])
    against = {(c["model"], c["metric"]): c for c in metrics["comparisons"]}
    baseline = metrics["models"][0]["name"]
    rows: list[dict[str, Any]] = []
    for model in metrics["models"]:
        kind, folder = folders.get(model["name"], ("retriever", None))
        record = training_record(kind, folder)
        n10, r10 = model["overall"]["N@10"], model["overall"]["R@10"]
        paired = against.get((model["name"], "N@10"))
        rows.append(
            {
                "name": model["name"],
                "ranker": model["ranker"],
                "fused": "+fusion" in kind,
                "folder": None if folder is None else str(folder),
                "training": record,
                "test": {
                    "N@10": n10,
                    "R@10": r10,
                    "subset_N@10": model["subset"]["N@10"],
                    "vs_baseline_N@10": paired,
                },
            }
        )
    payload = {"evaluation": str(args.evaluation), "split": metrics["split"], "baseline": baseline, "rows": rows}
    (args.evaluation / "ablation.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    (args.evaluation / "ablation.md").write_text(markdown(payload, metrics), encoding="utf-8")
    plot(payload, args.evaluation / "ablation.png")
    print((args.evaluation / "ablation.md").read_text(encoding="utf-8"))


def _interval(summary: dict[str, Any]) -> str:
    return f"{summary['mean']:.4f} [{summary['ci_low']:.4f}, {summary['ci_high']:.4f}]"


def _versus(paired: dict[str, Any] | None) -> str:
    if paired is None:
        return ""
    p = "< 0.001" if paired["p_value"] < 0.001 else f"{paired['p_value']:.3f}"
    verdict = ("better" if paired["mean_difference"] > 0 else "worse") if paired["significant"] else "within noise"
    return f"{paired['mean_difference']:+.4f} [{paired['low']:+.4f}, {paired['high']:+.4f}], p {p}, {verdict}"


def _trained(row: dict[str, Any]) -> str:
    record = row["training"]
    if not record:
        return ""
    if "steps" in record:
        return (
            f"{record['model']}, {record['train_examples']} examples, {record['budget_tokens']} tokens, "
            f"{record['history_items']} history items; best step {record['best_step']} of {record['steps']}"
            f"{_planned(record)}, "
            f"{record['minutes']} min ({record['device']})"
        )
    return f"{record['model']}, {record['train_examples'] or 0} examples"


def _planned(record: dict[str, Any]) -> str:
    planned = record.get("planned_steps")
    return f" ({planned} planned, stopped by --max-minutes)" if planned and planned > record["steps"] else ""


def _val(row: dict[str, Any]) -> str:
    record = row["training"]
    if not record:
        return ""
    fusion = record.get("fusion") or {}
    if row["fused"] and fusion:
        return (
            f"{fusion['val_ndcg10']:.4f} at w = {fusion['weight']:.2f} (retriever {fusion['val_ndcg10_retriever']:.4f})"
        )
    value = record.get("val_N@10")
    if value is None:
        return ""
    untrained = record.get("untrained_val_N@10")
    if untrained is None:
        return f"{value:.4f}"
    verdict = "beats" if record.get("beats_untrained") else "**does not beat**"
    return f"{value:.4f} ({verdict} its untrained start, {untrained:.4f})"


def markdown(payload: dict[str, Any], metrics: dict[str, Any]) -> str:
    table = markdown_table(
        ["ranker", "test N@10 [95% CI]", "test R@10 [95% CI]", f"N@10 vs {payload['baseline']}", "val N@10", "trained"],
        [
            [
                row["name"],
                _interval(row["test"]["N@10"]),
                _interval(row["test"]["R@10"]),
                _versus(row["test"]["vs_baseline_N@10"]),
                _val(row),
                _trained(row),
            ]
            for row in payload["rows"]
        ],
    )
    return (
        f"# Ranking ablation: {metrics['dataset']}, {metrics['split']}\n\n"
        f"`{metrics['command']}`\n\n"
        f"{metrics['users']} users; rankers re-order the top {metrics['candidates']} of the first row's retriever; "
        "overall figures count users whose true item was not retrieved as misses. Paired differences are on the "
        "same users (bootstrap 95% interval, sign-flip p-value). val N@10 is on the val users the retriever "
        "found (unfused: the ranker alone at its best step; fused: at the weight chosen there, never on test). "
        f"Full metrics: metrics.md.\n\n{table}\n\n![paired N@10 differences](ablation.png)\n"
    )


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in payload["rows"] if row["test"]["vs_baseline_N@10"]]
    figure, axis = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5), constrained_layout=True)
    for position, row in enumerate(reversed(rows)):
        paired = row["test"]["vs_baseline_N@10"]
        color = (
            "tab:green"
            if paired["significant"] and paired["mean_difference"] > 0
            else ("tab:red" if paired["significant"] else "tab:gray")
        )
        axis.errorbar(
            paired["mean_difference"],
            position,
            xerr=[[paired["mean_difference"] - paired["low"]], [paired["high"] - paired["mean_difference"]]],
            fmt="o" if row["fused"] else "s",
            color=color,
            capsize=3,
        )
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_yticks(range(len(rows)), [row["name"] for row in reversed(rows)], fontsize=8)
    axis.set_xlabel(f"test N@10 minus {payload['baseline']}\n95% interval; green: better, red: worse (p < 0.05)")
    axis.set_title("squares: ranker alone, circles: fused with the retriever (weight chosen on val)", fontsize=8)
    axis.grid(axis="x", alpha=0.3)
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
