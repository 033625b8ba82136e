"""Full softmax against sampled softmax for the retriever: epoch seconds and val quality under one time budget.

    .venv/bin/python -m benchmarks.sampled_softmax --real --data 10x=.kgrank/bench-scaling/10x/data \
        --negatives full,256,1024 --minutes 5
Each (dataset, loss) pair trains LRURec seed 0 for at most MINUTES (early stopping as usual), one after another,
nothing else running. Chosen on VALIDATION only: test metrics are written for the record, never compared.
Writes benchmarks/results/sampled_softmax.{json,md,png}; finished pairs are kept in the JSON and skipped on a rerun
with the same options (--fresh starts over).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, command_line, environment, markdown_table, real_dataset
from services.graph_loader.dataset import ProcessedDataset
from training.retriever import RetrieverConfig, train_retriever

OUT = RESULTS / "sampled_softmax"


def loss_name(negatives: int | None) -> str:
    return "full softmax" if negatives is None else f"sampled, {negatives} negatives"


def train_one(dataset: ProcessedDataset, negatives: int | None, minutes: float, run: Path) -> dict[str, Any]:
    config = RetrieverConfig(model="lrurec", seed=0, negatives=negatives, max_minutes=minutes)
    cpu_started = time.process_time()
    result = train_retriever(dataset, config, run, progress=True)
    cpu_seconds = time.process_time() - cpu_started
    saved = json.loads((run / "training.json").read_text())
    best = next(h for h in result.history if h["epoch"] == result.best_epoch)
    seconds = [h["seconds"] for h in result.history]
    return {
        "loss": loss_name(negatives),
        "negatives": negatives,
        "items": len(dataset.items),
        "interactions": len(dataset.interactions),
        "epochs": result.epochs_run,
        "first_epoch_s": seconds[0],  # one epoch of training plus its validation
        "mean_epoch_s": round(seconds[-1] / len(seconds), 1),
        "seconds": result.seconds,
        "stopped_by": result.stopped_by,
        # CPU seconds per wall second: near the thread count when the run had the cores to itself, lower when
        # something else ran beside it (then its seconds are not a measurement)
        "cpu_per_wall": round(cpu_seconds / max(result.seconds, 1e-9), 2),
        "best_epoch": result.best_epoch,
        "best_at_s": best["seconds"],
        "val_R@10": best["val_R@10"],
        "val_N@10": best["val_N@10"],
        "test": saved["metrics_over_all_items"]["test"],
        "history": result.history,
    }


def report(payload: dict[str, Any]) -> str:
    header = [
        "data",
        "items",
        "loss",
        "epoch (s)",
        "epochs",
        "best at (s)",
        "val R@10",
        "val N@10",
        "stopped by",
        "CPU/wall",
    ]
    rows = [
        [
            r["data"],
            f"{r['items']:,}",
            r["loss"],
            r["mean_epoch_s"],
            r["epochs"],
            r["best_at_s"],
            f"{r['val_R@10']:.4f}",
            f"{r['val_N@10']:.4f}",
            r["stopped_by"],
            r["cpu_per_wall"],
        ]
        for r in payload["runs"]
    ]
    return "\n".join(
        [
            "# Retriever loss: full softmax vs sampled softmax (LRURec, seed 0)",
            "",
            f"`{payload['command']}` on {payload['environment']['machine']}, {payload['environment']['date']}.",
            f"Each run: at most {payload['minutes']} min (the epoch running when time is up finishes), early stopping "
            "on val R@10 (patience 20). Epoch seconds include the epoch's validation. Compared on val only.",
            "",
            markdown_table(header, rows),
            "",
        ]
    )


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["data"] for r in payload["runs"]))
    figure, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for axis, name in zip(axes[0], datasets, strict=True):
        for run in (r for r in payload["runs"] if r["data"] == name):
            seconds = [h["seconds"] for h in run["history"]]
            axis.plot(seconds, [h["val_R@10"] for h in run["history"]], marker="o", markersize=3, label=run["loss"])
        axis.set(title=f"{name} ({run['items']:,} items)", xlabel="training seconds (2 cores)", ylabel="val R@10")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle("Retriever: val Recall@10 against training time, full vs sampled softmax")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", action="store_true", help="the real ml-latest-small (KGRANK_DATA_DIR)")
    parser.add_argument("--data", action="append", default=[], help="NAME=FOLDER of a prepared dataset; repeatable")
    parser.add_argument("--negatives", default="full,256,1024", help="comma-separated: full or a number")
    parser.add_argument("--minutes", type=float, default=5.0, help="time budget per run")
    parser.add_argument("--fresh", action="store_true", help="forget the runs of an earlier invocation")
    args = parser.parse_args()
    losses = [None if n == "full" else int(n) for n in args.negatives.split(",")]
    named = [part.split("=", 1) for part in args.data]
    if any(len(pair) != 2 for pair in named):
        parser.error("--data takes NAME=FOLDER")
    OUT.mkdir(parents=True, exist_ok=True)
    saved_path = OUT / "sampled_softmax.json"
    saved = {} if args.fresh or not saved_path.is_file() else json.loads(saved_path.read_text())
    payload = {
        "command": command_line("benchmarks.sampled_softmax", args),
        # where the runs of an earlier invocation are kept, so is the machine and date they were measured on
        "environment": saved.get("environment") or environment("not used (no graph)"),
        "minutes": args.minutes,
        "runs": [r for r in saved.get("runs", []) if saved.get("minutes") == args.minutes],
    }
    with tempfile.TemporaryDirectory() as tmp:
        datasets = [("ml-latest-small", lambda: real_dataset(Path(tmp)))] if args.real else []
        datasets += [(name, lambda folder=folder: ProcessedDataset.load(Path(folder))) for name, folder in named]
        for name, load in datasets:
            dataset = None
            for negatives in losses:
                if any(r["data"] == name and r["negatives"] == negatives for r in payload["runs"]):
                    continue
                dataset = dataset or load()
                print(f"[{name}] {loss_name(negatives)}", flush=True)
                run = train_one(dataset, negatives, args.minutes, Path(tmp) / f"{name}-{negatives}")
                payload["runs"].append({"data": name, **run})
                saved_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    markdown = report(payload)
    (OUT / "sampled_softmax.md").write_text(markdown, encoding="utf-8")
    plot(payload, OUT / "sampled_softmax.png")
    print(markdown)


if __name__ == "__main__":
    main()
