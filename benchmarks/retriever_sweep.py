"""Retriever hyper-parameters on ml-latest-small, seed 0, chosen on VALIDATION (test shown, never used).

    .venv/bin/python -m benchmarks.retriever_sweep --models lrurec,sasrec
Writes benchmarks/results/ml-latest-small/retriever_sweep.{json,md}. The grid is the paper's range:
weight decay {0, 0.01}, dropout 0.1–0.5.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, markdown_table, real_dataset
from training.retriever import RetrieverConfig, train_retriever

GRID = [{"dropout": dropout, "weight_decay": decay} for dropout in (0.1, 0.2, 0.3, 0.5) for decay in (0.0, 0.01)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="lrurec,sasrec")
    args = parser.parse_args()
    out = RESULTS / "ml-latest-small"
    path = out / "retriever_sweep.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    done = {(r["model"], r["dropout"], r["weight_decay"]) for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        dataset = real_dataset(Path(tmp))
        for model in args.models.split(","):
            for params in GRID:
                if (model, params["dropout"], params["weight_decay"]) in done:
                    continue
                started = time.perf_counter()
                run = Path(tmp) / f"{model}-{params['dropout']}-{params['weight_decay']}"
                config = RetrieverConfig(model=model, seed=0, **params)  # type: ignore[arg-type]
                result = train_retriever(dataset, config, run, progress=False)
                saved = json.loads((run / "training.json").read_text())
                best = next(h for h in result.history if h["epoch"] == result.best_epoch)
                rows.append(
                    {
                        "model": model,
                        **params,
                        "best_epoch": result.best_epoch,
                        "epochs": result.epochs_run,
                        "seconds": round(time.perf_counter() - started),
                        "val_R@10": best["val_R@10"],
                        "val_N@10": best["val_N@10"],
                        "test": saved["metrics_over_all_items"]["test"],
                    }
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(rows, indent=2) + "\n")
                print(json.dumps(rows[-1]), flush=True)
    header = [
        "model",
        "dropout",
        "weight decay",
        "best epoch",
        "val R@10",
        "val N@10",
        "test R@10",
        "test N@10",
        "s",
    ]
    table = markdown_table(
        header,
        [
            [
                r["model"],
                r["dropout"],
                r["weight_decay"],
                r["best_epoch"],
                f"{r['val_R@10']:.4f}",
                f"{r['val_N@10']:.4f}",
                f"{r['test']['R@10']:.4f}",
                f"{r['test']['N@10']:.4f}",
                r["seconds"],
            ]
            for r in sorted(rows, key=lambda r: (r["model"], -r["val_R@10"], -r["val_N@10"]))
        ],
    )
    (out / "retriever_sweep.md").write_text(
        "# Retriever sweep on ml-latest-small (seed 0)\n\n"
        "`.venv/bin/python -m benchmarks.retriever_sweep`. Chosen on val R@10 (the early-stopping metric), "
        "ties broken by val N@10; "
        "test figures are shown for the record and never used to choose.\n\n" + table + "\n"
    )


if __name__ == "__main__":
    main()
