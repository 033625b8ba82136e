"""Micro-batching: prompts of concurrent requests share one scorer call, run off the event loop.

A prompt waits at most `wait_s` for others to join (or until `max_batch` are queued); the batch is
scored in a worker thread, so the event loop keeps answering cache hits and health checks meanwhile.
A caller gives up after its timeout; the batch it was part of still finishes for the others, and its
prompt, if still queued, is dropped: after a stall the scorer gets the prompts someone still waits for,
not a backlog of abandoned ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from services.core.errors import KgrankError, ScorerError

logger = logging.getLogger(__name__)

ScoreBatch = Callable[[Sequence[str], Sequence[int]], list[np.ndarray]]
AsyncScoreBatch = Callable[[Sequence[str], Sequence[int]], Awaitable[list[np.ndarray]]]


@dataclass
class _Pending:
    prompt: str
    count: int
    future: asyncio.Future[np.ndarray]


class MicroBatcher:
    def __init__(
        self,
        score: ScoreBatch | AsyncScoreBatch,
        *,
        max_batch: int,
        wait_s: float,
        timeout_s: float,
        workers: int = 1,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`score` runs in `workers` threads, or on the event loop when it is a coroutine function (an HTTP
        client); `workers` then bounds the batches in flight."""
        self._score = score
        self._on_close = on_close
        self._max_batch = max_batch
        self._wait_s = wait_s
        self._timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kgrank-scorer")
        self._slots = asyncio.Semaphore(workers)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._loop_task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self.batch_sizes: list[int] = []  # the last few batch sizes, for tests and metrics
        self.on_batch: Callable[[int], None] = lambda size: None

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._on_close is not None:
            await self._on_close()

    async def score(self, prompt: str, count: int) -> np.ndarray:
        """The letter scores of one prompt; ScorerError when the scorer fails or takes too long."""
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        # Retrieve the outcome even if this caller gave up, so no "exception never retrieved" noise.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        await self._queue.put(_Pending(prompt, count, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout_s)
        except TimeoutError as e:
            raise ScorerError(f"the scorer took longer than {self._timeout_s:g} s") from e
        finally:
            future.cancel()  # a no-op once answered; otherwise the caller gave up (timeout or cancelled)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self._wait_s
            while len(batch) < self._max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0 and self._queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), max(remaining, 0)))
                except TimeoutError:
                    break
            await self._slots.acquire()
            task = loop.create_task(self._score_batch(batch))
            self._in_flight.add(task)  # the loop holds only weak references to tasks
            task.add_done_callback(self._in_flight.discard)

    async def _score_batch(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        try:
            batch = [pending for pending in batch if not pending.future.done()]  # their callers gave up
            if not batch:
                return
            self.batch_sizes = [*self.batch_sizes[-99:], len(batch)]
            self.on_batch(len(batch))
            try:
                prompts, counts = [p.prompt for p in batch], [p.count for p in batch]
                if inspect.iscoroutinefunction(self._score):
                    scores = await self._score(prompts, counts)
                else:
                    scores = await loop.run_in_executor(self._executor, self._score, prompts, counts)
            except KgrankError as e:
                error: Exception = e if isinstance(e, ScorerError) else ScorerError(e.message)
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                return
            except Exception as e:  # a scorer bug must fail its requests, not kill the batching loop
                logger.exception("scorer failed")
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(ScorerError(f"scorer failed: {type(e).__name__}: {e}"))
                return
            for pending, result in zip(batch, scores, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)
        finally:
            self._slots.release()
