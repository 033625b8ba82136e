"""Data-parallel training over the processes `torchrun` starts; one plain process when it did not.

    torchrun --nproc-per-node 2 -m kgrank train retriever --data data/ml --out runs/lrurec

Every rank builds the same global batches from the same seed and trains on its contiguous share of
each one, and DistributedDataParallel averages the gradients: an epoch still shows every example
once, and the run takes the steps one process takes with the same --batch-size, up to float
rounding. Rank 0 alone validates, decides when to stop and writes files; the others follow its
decisions. A single process (no torchrun, or one worker) runs exactly the code it ran before.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from pydantic import BaseModel, Field, ValidationError, model_validator
from torch.nn.parallel import DistributedDataParallel

from services.core.errors import ConfigError
from services.ranker.llm.device import model_device

T = TypeVar("T")
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
# Rank 0 validates and saves alone while the others wait in their next collective; the default
# timeouts (10 minutes with NCCL) are shorter than validating a real LLM ranker on a large dataset.
WAIT_FOR_RANK_0 = timedelta(hours=2)


class TorchrunEnvironment(BaseModel):
    """Where torchrun placed this process: its rank among all workers and its number on this node."""

    rank: int = Field(ge=0)
    world_size: int = Field(ge=1)
    local_rank: int = Field(ge=0)

    @model_validator(mode="after")
    def rank_within_world(self) -> TorchrunEnvironment:
        if self.rank >= self.world_size:
            raise ValueError(f"RANK {self.rank} is not below WORLD_SIZE {self.world_size}")
        return self

    @classmethod
    def read(cls, environ: Mapping[str, str]) -> TorchrunEnvironment | None:
        """None outside torchrun (no WORLD_SIZE)."""
        if "WORLD_SIZE" not in environ:
            return None
        missing = [name for name in TORCHRUN_VARIABLES if name not in environ]
        if missing:
            raise ConfigError(f"WORLD_SIZE is set but {', '.join(missing)} not: start data parallel runs with torchrun")
        try:
            return cls(rank=environ["RANK"], world_size=environ["WORLD_SIZE"], local_rank=environ["LOCAL_RANK"])
        except ValidationError as e:
            raise ConfigError(f"torchrun's environment is not usable: {e.errors()[0]['msg']}") from e


@dataclass(frozen=True)
class BatchShare:
    """This rank's rows of one global batch."""

    rows: slice
    # A batch with fewer rows than ranks leaves some without any: they run the batch's first row as a
    # stand-in, weighted 0, because every rank must join each gradient all-reduce.
    stand_in: bool
    world_size: int

    def loss_weight(self, local_targets: int, batch_targets: int) -> float:
        """The factor for this rank's mean loss over `local_targets` of the batch's `batch_targets`
        (rows, or labels that are not padding). DDP averages the ranks' gradients, so weighting each
        by its share of the targets turns that average into the gradient of the whole batch's mean,
        also for a short last batch that splits unevenly. Exactly 1.0 in a single process."""
        if self.stand_in:
            return 0.0
        return local_targets * self.world_size / batch_targets


@dataclass(frozen=True)
class Workers:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The rank that validates, prints and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def place(self, device: torch.device) -> torch.device:
        """Each rank on its own GPU, the one torchrun numbered it with; CPUs are shared."""
        if self.distributed and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def check_batch_size(self, batch_size: int) -> None:
        """The batch size is the global one, so that results compare across process counts."""
        if batch_size % self.world_size:
            raise ConfigError(
                f"--batch-size {batch_size} is the global batch and must split evenly over the "
                f"{self.world_size} processes (each trains on batch size / {self.world_size})"
            )

    def share(self, batch_rows: int) -> BatchShare:
        per_rank = math.ceil(batch_rows / self.world_size)
        start = min(self.rank * per_rank, batch_rows)
        end = min(start + per_rank, batch_rows)
        if start == end:
            return BatchShare(slice(0, 1), stand_in=True, world_size=self.world_size)
        return BatchShare(slice(start, end), stand_in=False, world_size=self.world_size)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DDP around the model for the training forward pass; the model itself in a single process.
        Ranks must have built the same model; DDP copies rank 0's weights to the others."""
        if not self.distributed:
            return model
        device = next(model.parameters()).device
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def seed_dropout(self, seed: int) -> None:
        """Once the model is built from the shared seed: a seed per rank, so ranks draw different
        dropout masks for their different rows (a single process keeps its random stream)."""
        if self.distributed:
            torch.manual_seed(seed + self.rank)

    def mean(self, value: float) -> float:
        """The average of the ranks' values (e.g. their weighted losses, for the log)."""
        if not self.distributed:
            return value
        total = torch.tensor(value, dtype=torch.float64)
        dist.all_reduce(total)
        return total.item() / self.world_size

    def agree(self, decision: T) -> T:
        """Rank 0's decision on every rank (to stop, to validate now), so that all ranks act together."""
        if not self.distributed:
            return decision
        return self._from_rank_0(decision)

    def result_from_main(self, result: T | None) -> T:
        """Rank 0 passes what it trained and saved, the others None; every rank returns rank 0's."""
        shared = self._from_rank_0(result) if self.distributed else result
        if shared is None:
            raise RuntimeError("rank 0 has no training result to share")
        return shared

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block before the others, e.g. so that it fills a cache they then read
        instead of all writing the same files at once."""
        if self.distributed and not self.is_main:
            dist.barrier()
        yield
        if self.distributed and self.is_main:
            dist.barrier()

    def _from_rank_0(self, value: Any) -> Any:
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


SINGLE_PROCESS = Workers()


@contextmanager
def data_parallel(environ: Mapping[str, str] = os.environ) -> Iterator[Workers]:
    """Join torchrun's process group for the block (gloo for CPU tensors, NCCL for GPU ones) and
    leave it after; a single process when torchrun did not start several."""
    place = TorchrunEnvironment.read(environ)
    if place is None or place.world_size == 1:
        yield SINGLE_PROCESS
        return
    gpus = model_device().type == "cuda"
    if gpus:
        if place.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"torchrun started local rank {place.local_rank} but this node has {torch.cuda.device_count()} "
                "GPUs; use --nproc-per-node at most that, or KGRANK_DEVICE=cpu"
            )
        torch.cuda.set_device(place.local_rank)
    dist.init_process_group(
        "cpu:gloo,cuda:nccl" if gpus else "gloo",
        rank=place.rank,
        world_size=place.world_size,
        timeout=WAIT_FOR_RANK_0,
    )
    root = logging.getLogger()
    level = root.level
    if place.rank != 0:
        root.setLevel(logging.WARNING)  # one rank's progress log is enough
    try:
        yield Workers(place.rank, place.world_size, place.local_rank)
    finally:
        root.setLevel(level)
        dist.destroy_process_group()
