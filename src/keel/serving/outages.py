"""What the server logs while a dependency is down: the first failure, a summary per
interval, and the recovery, instead of one line per failed call.

``Outage`` is the pure part: told each failure and success with the time, it says which
line (if any) to log. ``OutageLog`` is the thin shell that reads the clock and logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Outage", "OutageLog"]

SUMMARY_EVERY_S = 30.0  # the default interval between summaries


@dataclass(frozen=True, slots=True)
class Line:
    """One line to log, and at which level."""

    level: int
    text: str


class Outage:
    """The state of one dependency's outage, as seen by calls that need it.

    ``what`` names the calls in the lines, e.g. "feature lookups".
    """

    def __init__(self, what: str, every_s: float | None = None) -> None:
        self.what = what
        self.every_s = SUMMARY_EVERY_S if every_s is None else every_s
        self.since: float | None = None  # when the outage began; None while up
        self._reported_at = 0.0
        self._pending = 0  # failures since the last line
        self._total = 0
        self._last_error = ""

    def failed(self, error: str, now: float) -> Line | None:
        """A call failed with ``error``: the first failure's line, or a due summary."""
        self._total += 1
        self._last_error = error
        if self.since is None:
            self.since = self._reported_at = now
            return Line(logging.ERROR, f"{self.what} are failing: {error}")
        self._pending += 1
        if now - self._reported_at < self.every_s:
            return None
        return self._summary(now)

    def succeeded(self, now: float) -> Line | None:
        """A call succeeded: the recovery line when an outage was under way."""
        if self.since is None:
            return None
        text = (
            f"{self.what} recovered after {now - self.since:.0f} s "
            f"({self._total} failed; last error: {self._last_error})"
        )
        self.since, self._pending, self._total = None, 0, 0
        return Line(logging.WARNING, text)

    def _summary(self, now: float) -> Line:
        text = (
            f"{self._pending} {self.what} failed in the last {now - self._reported_at:.0f} s: "
            f"{self._last_error}"
        )
        self._reported_at, self._pending = now, 0
        return Line(logging.ERROR, text)


class OutageLog:
    """Logs an ``Outage`` to ``logger`` (from any thread); ``clock`` is monotonic seconds."""

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outage = Outage(what, every_s)
        self.logger = logger
        self.clock = clock
        self._lock = threading.Lock()

    def failed(self, error: BaseException) -> None:
        with self._lock:
            line = self.outage.failed(f"{error} ({type(error).__name__})", self.clock())
        self._log(line)

    def succeeded(self) -> None:
        if self.outage.since is None:  # the common case: one comparison, no lock
            return
        with self._lock:
            line = self.outage.succeeded(self.clock())
        self._log(line)

    def _log(self, line: Line | None) -> None:
        if line is not None:
            self.logger.log(line.level, "%s", line.text)
