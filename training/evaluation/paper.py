"""The LlamaRec paper's rows (arXiv 2311.02089, anchors.md): all users, leave-one-out, all items ranked."""

from __future__ import annotations

COLUMNS = ("M@5", "N@5", "R@5", "M@10", "N@10", "R@10")

# "ML-100K" in the paper's code is ml-latest-small (docs/method.md §1).
PAPER_ROWS: dict[str, dict[str, tuple[float, ...]]] = {
    "ml-latest-small": {
        "SASRec": (0.0333, 0.0409, 0.0641, 0.0378, 0.0522, 0.0993),
        "LRURec (retriever)": (0.0390, 0.0468, 0.0705, 0.0491, 0.0705, 0.1426),
        "LlamaRec (Llama-2-7B ranker)": (0.0440, 0.0543, 0.0852, 0.0529, 0.0759, 0.1524),
    },
    "amazon-beauty": {
        "LRURec": (0.0376, 0.0435, 0.0614, 0.0417, 0.0533, 0.0916),
        "LlamaRec": (0.0385, 0.0450, 0.0648, 0.0428, 0.0554, 0.0971),
    },
}


def paper_rows(dataset_kind: str, dataset_name: str) -> dict[str, dict[str, float]]:
    """The paper's rows for a dataset we can compare with, keyed by model then metric."""
    rows = PAPER_ROWS.get(dataset_name) or PAPER_ROWS.get(dataset_kind) or {}
    return {model: dict(zip(COLUMNS, values, strict=True)) for model, values in rows.items()}
