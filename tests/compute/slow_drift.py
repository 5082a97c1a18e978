"""A ``dask worker --preload``: the first segment of every drift count
(``keel-count_segment-...-0``) sleeps ``KEEL_SLOW_SEGMENT_SECONDS`` (default 30) before
it counts, so a test can act while ``keel drift`` runs on the cluster. The task is the
real one, only late."""

from __future__ import annotations

import os
import time
from typing import Any

import keel.monitoring.cluster as cluster

_counted = cluster.count_segment


def _late(window: Any, where: Any) -> Any:
    from distributed import get_worker

    if str(get_worker().get_current_task()).endswith("-0"):
        time.sleep(float(os.environ.get("KEEL_SLOW_SEGMENT_SECONDS", "30")))
    return _counted(window, where)


def dask_setup(worker: Any) -> None:
    """Called by ``dask worker`` at start: tasks unpickle ``count_segment`` by name, so
    they find the late one."""
    cluster.count_segment = _late  # type: ignore[assignment]
