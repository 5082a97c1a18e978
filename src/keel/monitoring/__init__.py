"""Monitoring: a durable prediction log, mergeable sketches and drift that is right.

Usable on its own, around a model Keel did not train (this example runs as a test)::

    >>> import tempfile
    >>> import numpy as np, pandas as pd
    >>> from keel.monitoring import DriftMonitor, PredictionLog, Reference, feature_view
    >>> log = PredictionLog(tempfile.mkdtemp())          # a folder is enough
    >>> @log.watch(model_version="churn-v3")
    ... def predict(rows):
    ...     return [0.9 if row["tenure"] < 12 else 0.1 for row in rows]
    >>> rng = np.random.default_rng(0)
    >>> training = pd.DataFrame({"tenure": rng.integers(1, 72, 2000)})
    >>> _ = predict([{"tenure": int(t)} for t in rng.integers(40, 72, 1000)])  # older customers
    >>> log.flush()                                      # the spool becomes a segment drift reads
    FlushResult(segments=1, rows=1000, dropped_bytes=0, pending=0, error=None, damaged=())
    >>> monitor = DriftMonitor(Reference.from_frame(training))
    >>> monitor.update(feature_view(log.read())).report.drifted
    ['tenure']
    >>> log.close()

Inside a Keel project the same parts are wired by ``keel.monitoring.cycle`` (``keel
monitor``): segments committed in the metadata store, alerts (``keel.monitoring.alerts``)
with an outbox, performance from feedback, and the retrain trigger
(``keel.monitoring.retrain``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel._lazy import lazy_getattr

if TYPE_CHECKING:
    from keel.monitoring.drift import compare, compare_frame
    from keel.monitoring.log import FlushResult, PredictionLog
    from keel.monitoring.monitor import DriftMonitor
    from keel.monitoring.performance import Performance, join_feedback, window_performance
    from keel.monitoring.reads import open_alert_counts
    from keel.monitoring.reference import Reference
    from keel.monitoring.results import ColumnDrift, DriftReport, DriftSettings, Moved
    from keel.monitoring.retrain import last_passed_retrain
    from keel.monitoring.segments import SegmentInfo
    from keel.monitoring.sketch import Bins, ColumnSketch, Layout, Sketch
    from keel.monitoring.window import feature_view
    from keel.monitoring.wrap import logged

# Imported on first use: logging predictions must not pay for scipy at import time.
_LAZY = {
    "Bins": "sketch",
    "ColumnDrift": "results",
    "ColumnSketch": "sketch",
    "DriftMonitor": "monitor",
    "DriftReport": "results",
    "DriftSettings": "results",
    "FlushResult": "log",
    "Layout": "sketch",
    "Moved": "results",
    "Performance": "performance",
    "PredictionLog": "log",
    "Reference": "reference",
    "SegmentInfo": "segments",
    "Sketch": "sketch",
    "compare": "drift",
    "compare_frame": "drift",
    "feature_view": "window",
    "join_feedback": "performance",
    "last_passed_retrain": "retrain",
    "logged": "wrap",
    "open_alert_counts": "reads",
    "window_performance": "performance",
}

__all__ = [
    "Bins",
    "ColumnDrift",
    "ColumnSketch",
    "DriftMonitor",
    "DriftReport",
    "DriftSettings",
    "FlushResult",
    "Layout",
    "Moved",
    "Performance",
    "PredictionLog",
    "Reference",
    "SegmentInfo",
    "Sketch",
    "compare",
    "compare_frame",
    "feature_view",
    "join_feedback",
    "last_passed_retrain",
    "logged",
    "open_alert_counts",
    "window_performance",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
