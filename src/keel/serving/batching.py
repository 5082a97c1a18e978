"""Micro-batching: concurrent requests share one model call.

``MicroBatcher`` wraps a backend. While the model is busy, arriving rows wait; when it
is free, everything waiting (up to ``max_batch`` rows) goes in one call. When requests
arrive closer together than ``max_wait_ms``, the batcher also waits that long for more
rows before calling an idle model (or until ``max_batch`` rows are waiting); a lone
request goes at once, so batching adds no latency at low load and amortises the
per-call cost of scikit-learn under load. If a batch fails, each caller's rows are
retried on their own, so one bad row fails only its request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from keel.serving.backend import ModelBackend, Prediction

__all__ = ["MicroBatcher"]

_Item = tuple[list[dict[str, Any]], "asyncio.Future[list[Prediction]]"]


class MicroBatcher:
    """A backend that coalesces concurrent ``predict`` calls into batches."""

    def __init__(
        self,
        inner: ModelBackend,
        max_batch: int = 64,
        max_wait_ms: float = 0.0,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.inner = inner
        self.version = inner.version
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._on_batch = on_batch
        self._waiting: list[_Item] = []
        self._rows = 0
        self._busy = False
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._last = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # explain(), task, schema of the wrapped model

    async def predict(self, batch: list[dict[str, Any]]) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Prediction]] = loop.create_future()
        if len(self._waiting) > 8 * self.max_batch:  # a hung model: drop given-up requests
            self._waiting = [item for item in self._waiting if not item[1].done()]
        self._waiting.append((batch, future))
        self._rows += len(batch)
        now = loop.time()
        busy_traffic, self._last = now - self._last < self.max_wait, now
        if self._busy:
            pass  # the running batch flushes what waits when it is done
        elif self._rows >= self.max_batch:
            self._flush()
        elif self._timer is None:
            if busy_traffic:
                self._timer = loop.call_later(self.max_wait, self._flush)
            else:
                self._timer = loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._busy:
            return
        items = self._take()
        if not items:
            return
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._run(items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[_Item]:
        taken: list[_Item] = []
        rows = 0
        waiting = [item for item in self._waiting if not item[1].done()]
        while waiting and (not taken or rows + len(waiting[0][0]) <= self.max_batch):
            item = waiting.pop(0)
            taken.append(item)
            rows += len(item[0])
        self._waiting = waiting
        self._rows = sum(len(batch) for batch, _ in waiting)
        return taken

    async def _one_by_one(self, items: list[_Item]) -> None:
        for batch, future in items:
            if future.done():
                continue
            try:
                results = await self.inner.predict(batch)
            except Exception as error:
                _fail(future, error)
            else:
                if not future.done():
                    future.set_result(results)

    async def _run(self, items: list[_Item]) -> None:
        rows = [row for batch, _ in items for row in batch]
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            results = await self.inner.predict(rows)
        except Exception as error:
            if len(items) == 1:
                _fail(items[0][1], error)
            else:  # one caller's bad row must not fail the others: retry each on its own
                await self._one_by_one(items)
        else:
            if self._on_batch is not None:
                self._on_batch(len(rows), loop.time() - started)
            _hand_out(items, results)
        finally:
            self._busy = False
            if self._waiting:
                self._flush()


def _fail(future: asyncio.Future[list[Prediction]], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)


def _hand_out(items: list[_Item], results: list[Prediction]) -> None:
    start = 0
    for batch, future in items:
        end = start + len(batch)
        if not future.done():
            future.set_result(results[start:end])
        start = end
