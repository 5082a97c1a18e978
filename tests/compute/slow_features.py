"""A ``dask worker --preload``: partition 0 of every feature snapshot sleeps
``KEEL_SLOW_PARTITION_SECONDS`` (default 30) before it computes, so a test can act while
a build runs on the cluster. The task is the real one, only late."""

from __future__ import annotations

import os
import time
from typing import Any

import keel.features.cluster as cluster

_computed = cluster.snapshot_partition


def _late(job: Any, partition: int) -> Any:
    if partition == 0:
        time.sleep(float(os.environ.get("KEEL_SLOW_PARTITION_SECONDS", "30")))
    return _computed(job, partition)


def dask_setup(worker: Any) -> None:
    """Called by ``dask worker`` at start: tasks unpickle ``snapshot_partition`` by name,
    so they find the late one."""
    cluster.snapshot_partition = _late  # type: ignore[assignment]
