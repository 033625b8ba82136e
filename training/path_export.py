"""History and relation paths for many examples, fetched in batches and cached on disk.

One graph round trip per batch (never one per example). The cache key covers the dataset version,
the graph load it came from, the path settings and the examples themselves, so a stale cache is never
read: anything that changes the paths changes the file name.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.ranker.context import TaskContext
from services.ranker.paths.models import UserPaths
from training.examples import Example
from training.progress import progress_bar

logger = logging.getLogger(__name__)


def cache_key(examples: Sequence[Example], identity: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    for example in examples:
        task = example.task
        digest.update(f"{task.user}|{task.history.tolist()}|{task.candidates.tolist()}\n".encode())
    return digest.hexdigest()[:20]


def export_paths(
    examples: Sequence[Example],
    context: TaskContext,
    *,
    cache_dir: Path,
    identity: dict[str, Any],
    batch_size: int = 32,
    progress: bool = True,
) -> list[UserPaths]:
    path = cache_dir / f"paths-{cache_key(examples, identity)}.jsonl.gz"
    if path.is_file():
        logger.info("relation paths of %d examples from cache %s", len(examples), path)
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return [UserPaths.model_validate_json(line) for line in handle]
    logger.info("exporting the relation paths of %d examples (not cached yet) to %s", len(examples), path)
    results: list[UserPaths] = []
    bar = progress_bar(len(examples), "exporting relation paths", enabled=progress, unit=" examples")
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        results.extend(context.fetch([example.task for example in batch]))
        bar.update(len(batch))
    bar.close()
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with gzip.open(partial, "wt", encoding="utf-8") as handle:
        for result in results:
            handle.write(result.model_dump_json() + "\n")
    partial.replace(path)
    return results
