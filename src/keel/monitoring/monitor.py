"""``DriftMonitor``: a streaming drift detector in River's shape.

``update(batch)`` folds a batch of rows into the current window's sketch (and keeps raw
values while the window is small enough for the exact KS test, plus a uniform row
sample for MMD); ``report`` and ``drift_detected`` read the verdict; ``reset()`` starts a
new window. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from keel.monitoring.drift import compare
from keel.monitoring.reference import Reference
from keel.monitoring.results import DriftReport, DriftSettings
from keel.monitoring.sketch import Sketch

__all__ = ["DriftMonitor"]


class DriftMonitor:
    """Accumulates a window batch by batch and reports its drift against a reference.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> monitor = DriftMonitor(Reference.from_frame({"x": rng.normal(0, 1, 5000)}))
    >>> _ = monitor.update({"x": rng.normal(1, 1, 500)})
    >>> monitor.drift_detected, monitor.report.drifted
    (True, ['x'])
    """

    def __init__(self, reference: Reference, settings: DriftSettings | None = None) -> None:
        self.reference = reference
        self.settings = settings or DriftSettings()
        self.reset()

    def reset(self) -> None:
        """Start a new, empty window."""
        self._sketch = Sketch({})
        self._raw: dict[str, list[np.ndarray]] | None = {}
        self._sample: dict[str, np.ndarray] = {}
        self._keys = np.zeros(0)
        self._rng = np.random.default_rng(self.settings.seed)
        self._report: DriftReport | None = None

    @property
    def rows(self) -> int:
        return self._sketch.rows

    def update(self, batch: Mapping[str, Any]) -> DriftMonitor:
        """Add a batch of rows (a DataFrame or a mapping of equal-length columns)."""
        names = [name for name in self.reference.layout.columns if name in batch]
        arrays = {name: np.asarray(batch[name]) for name in names}
        self._sketch = self._sketch.merge(self.reference.layout.sketch(arrays))
        self._keep_raw(arrays)
        self._keep_sample(arrays)
        self._report = None
        return self

    def merge_sketch(self, sketch: Sketch) -> DriftMonitor:
        """Add rows already summarised as a sketch (e.g. a committed segment's)."""
        self._sketch = self._sketch.merge(sketch)
        self._raw = None  # raw values no longer cover the whole window
        self._report = None
        return self

    @property
    def report(self) -> DriftReport:
        """The drift verdict on everything added since the last reset."""
        if self._report is None:
            raw = {name: np.concatenate(parts) for name, parts in (self._raw or {}).items()}
            self._report = compare(
                self.reference,
                self._sketch,
                self.settings,
                raw=raw if self._raw is not None else None,
                sample=self._sample or None,
            )
        return self._report

    @property
    def drift_detected(self) -> bool:
        return self.report.decision == "drift"

    def _keep_raw(self, arrays: Mapping[str, np.ndarray]) -> None:
        if self._raw is None:
            return
        if self._sketch.rows > self.settings.exact_rows:
            self._raw = None
            return
        for name, values in arrays.items():
            self._raw.setdefault(name, []).append(values)

    def _keep_sample(self, arrays: Mapping[str, np.ndarray]) -> None:
        """A uniform sample of rows: keep the rows with the smallest random keys."""
        if not arrays or "mmd" not in self.settings.tests:
            return
        size = len(next(iter(arrays.values())))
        keys = np.concatenate([self._keys, self._rng.random(size)])
        keep = np.argsort(keys, kind="stable")[: self.settings.mmd_sample]
        for name, values in arrays.items():
            joined = np.concatenate([self._sample.get(name, values[:0]), values])
            if len(joined) == len(keys):
                self._sample[name] = joined[keep]
            else:  # a column missing from an earlier batch cannot be sampled jointly
                self._sample.pop(name, None)
        self._keys = keys[keep]
