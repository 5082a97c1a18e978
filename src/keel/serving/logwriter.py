"""Writing answers to the prediction log before the response is sent.

By default (``serving.log_fsync: false``) the answers finished in one turn of the event
loop are appended together on the loop itself, one frame in one ``write`` to the spool
file: the bytes are in the kernel's page cache before any of those responses leaves, so a
killed server (SIGKILL included) loses nothing it acknowledged, and no thread hand-off is
paid.
With ``log_fsync: true`` each append is also fsync'd, which survives power loss too;
fsyncs are slow, so they run on a writer thread with group commit: while one append
runs, new entries gather and the next append takes them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from keel.serving.backend import ModelThread

if TYPE_CHECKING:
    from pathlib import Path

    from keel.monitoring.log import PredictionLog
    from keel.monitoring.shipping import SpoolShipper

__all__ = ["LogWriter", "PredictionSink", "SealingLog", "ShippingLog"]

logger = logging.getLogger("keel.serving")


class PredictionSink(Protocol):
    """The write side of a prediction log (``keel.monitoring.log.PredictionLog``)."""

    def append(self, entries: Iterable[Mapping[str, Any]]) -> list[str]: ...

    def close(self, *, flush: bool = True) -> None: ...


class SealingLog:
    """A prediction log whose spool is sealed every ``every`` seconds, for others to roll.

    Rolling a spool into a Parquet segment costs far more CPU than appending to it, so
    with ``serving.log_roll: worker`` the server only appends and seals (a fresh spool
    file every ``log_seal_every``); ``keel monitor`` / ``keel worker`` (another process,
    another core) roll the sealed files. At shutdown the server rolls only its own last
    spool: the sealed ones of every replica sharing the folder are the worker's, and a
    backlog of them (a store outage the worker waited out) must not hold the server's
    exit past its process manager's stop timeout.
    A spool with entries is sealed when it is due, at the next append or at the server's
    next tick (``seal_if_due``), whichever comes first: an idle server does not keep its
    last predictions from the worker.
    Sealing swaps in the fresh spool at once; closing the old one (an fsync of up to
    ``every`` seconds of answers, then its lock released for the worker) runs on a
    thread of its own, so the event loop that appends never waits on the disk for it.
    ``settle()`` waits until every sealed spool is closed.
    """

    def __init__(
        self,
        open_log: Callable[[], PredictionLog],
        every: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = open_log
        self.every = every
        self._clock = clock
        self.current = open_log()
        self._due = clock() + every
        self._written = False
        self._closer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keel-spool-seal")
        self._closing: list[Future[None]] = []

    def append(self, entries: Iterable[Mapping[str, Any]]) -> list[str]:
        if self._clock() >= self._due:
            self.seal()
        ids = self.current.append(entries)
        self._written = True
        return ids

    def seal_if_due(self) -> None:
        """Seal a spool that has entries and is due; an empty one is left alone."""
        if self._written and self._clock() >= self._due:
            self.seal()

    def seal(self) -> None:
        """Start a fresh spool file; the previous one is closed, ready to be rolled."""
        old, self.current = self.current, self._open()
        self._due = self._clock() + self.every
        self._written = False
        self._closing = [f for f in self._closing if not f.done()]
        closing = self._closer.submit(old.close, flush=False)
        closing.add_done_callback(_report_seal_failure)
        self._closing.append(closing)

    def settle(self) -> None:
        """Wait until every sealed spool is closed (fsync'd and unlocked for the worker)."""
        for closing in self._closing:
            closing.result()
        self._closing = []

    def close(self, *, flush: bool = True) -> None:
        try:
            self.settle()
        finally:
            self._closer.shutdown(wait=True)
            self.current.close(flush=flush, own=True)


class ShippingLog(SealingLog):
    """A sealing log whose sealed spools the server ships, as they are, for a worker
    anywhere to roll (``serving.log_roll: ship``).

    ``shipper_for(folder)`` makes the ``SpoolShipper`` of the log folder's spools; it runs
    on a thread of its own from the start (a restarted replica ships what its spool held)
    and is woken as each sealed spool is closed, so a spool leaves the replica about as
    soon as it is sealed. Shipping is a byte copy: no record is decoded on the server.
    At shutdown the last spool is closed and one more pass ships what is sealed; an
    unreachable store ends that pass at once, and the files wait on disk for the next
    start.
    """

    def __init__(
        self,
        open_log: Callable[[], PredictionLog],
        every: float,
        shipper_for: Callable[[Path], SpoolShipper],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(open_log, every, clock)
        self.shipper = shipper_for(self.current.folder)
        self.shipper.start()

    def seal(self) -> None:
        super().seal()
        self._closing[-1].add_done_callback(lambda _: self.shipper.wake())

    def close(self, *, flush: bool = True) -> None:
        try:
            self.settle()
        finally:
            self._closer.shutdown(wait=True)
            self.current.close(flush=False)
            self.shipper.stop()
        if flush:
            result = self.shipper.ship()
            if result.pending:
                logger.warning(
                    "%d prediction spool files not shipped (%s); they are shipped on the next "
                    "start", result.pending, result.error,
                )  # fmt: skip


def _report_seal_failure(closing: Future[None]) -> None:
    error = closing.exception()
    if error is not None:
        logger.error("sealing a prediction spool failed: %r; it is rolled on the next start", error)


class LogWriter:
    """Appends entries durably, many requests per append."""

    def __init__(self, sink: PredictionSink, *, inline: bool = False) -> None:
        self.sink = sink
        self.inline = inline
        self.errors = 0
        self._thread = None if inline else ModelThread("keel-prediction-log")
        self._entries: list[Mapping[str, Any]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._busy = False
        self._tick: asyncio.Future[bool] | None = None

    def write(self, entries: list[dict[str, Any]]) -> Awaitable[bool]:
        """Append ``entries``: awaits True once durable, False if the log could not take them.

        Inline, the awaitable is the loop turn's own future, not a coroutine around it: one
        frame fewer to suspend and resume on the hot path.
        """
        if not self.inline:
            return self._write_on_thread(entries)
        self._entries.extend(entries)
        if self._tick is None:  # the first answer of this loop turn: append at its end
            loop = asyncio.get_running_loop()
            self._tick = loop.create_future()
            loop.call_soon(self._append_inline)
        return self._tick

    async def _write_on_thread(self, entries: list[dict[str, Any]]) -> bool:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._entries.extend(entries)
        self._waiters.append(future)
        if not self._busy:
            self._start()
        try:
            await future
        except Exception as error:
            logger.error("prediction log append failed: %r", error)
            return False
        return True

    def _append_inline(self) -> None:
        """One append (one write) for every answer finished in this turn of the loop."""
        entries, tick = self._entries, self._tick
        self._entries, self._tick = [], None
        assert tick is not None
        try:
            self.sink.append(entries)
        except Exception as error:
            self.errors += 1
            logger.error("prediction log append failed: %r", error)
            tick.set_result(False)
        else:
            tick.set_result(True)

    def _start(self) -> None:
        entries, waiters = self._entries, self._waiters
        self._entries, self._waiters = [], []
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._append(entries, waiters))
        task.add_done_callback(lambda _: None)
        self._task = task

    async def _append(self, entries: list[Mapping[str, Any]], waiters: list[Any]) -> None:
        try:
            assert self._thread is not None
            await self._thread.run(lambda: self.sink.append(entries))
        except Exception as error:
            self.errors += 1
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)
        else:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        finally:
            self._busy = False
            if self._waiters:
                self._start()

    async def tick(self) -> None:
        """Seal the spool if it is due (a sink that seals), in the thread that appends."""
        seal = getattr(self.sink, "seal_if_due", None)
        if seal is None:
            return
        if self._thread is None:
            seal()
        else:
            await self._thread.run(seal)

    def close(self) -> None:
        """Flush the log into segments and stop the writer thread (at shutdown)."""
        try:
            self.sink.close(flush=True)
        except Exception as error:  # e.g. the metadata store is down: the spool stays on disk
            logger.error("prediction log not flushed (%r); it is rolled on the next start", error)
            with contextlib.suppress(Exception):
                self.sink.close(flush=False)
        if self._thread is not None:
            self._thread.stop()
