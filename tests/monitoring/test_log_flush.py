"""A spool file that cannot be rolled does not hold back the others: the flush rolls
every other file and keeps the bad one for the next attempt. An unreachable store still
ends the flush at once."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from keel.monitoring.log import PredictionLog
from keel.monitoring.segments import ArtifactSegments
from keel.store import ArtifactStore


def _poisoned(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A sketcher that cannot summarise one particular file (a bug's stand-in)."""
    if any(record["inputs"].get("x") == -1.0 for record in records):
        raise ValueError("cannot sketch this segment")
    return {}


def _spool(folder: Path, xs: list[float]) -> list[str]:
    """One sealed spool file per value, in the order given (each from its own log)."""
    ids = []
    for x in xs:
        log = PredictionLog(folder, sync=False)
        ids.append(log.record({"x": x}, 1))
        log.close(flush=False)
    return ids


def test_a_file_that_cannot_be_rolled_does_not_hold_back_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first of four spool files fails to roll: the other three are committed, the
    failed one is pending and stays in the spool, and the failure is logged."""
    ids = _spool(tmp_path, [-1.0, 1.0, 2.0, 3.0])
    log = PredictionLog(tmp_path, sync=False, sketcher=_poisoned)
    with caplog.at_level(logging.WARNING, logger="keel.monitoring"):
        result = log.flush()
    logged = set(log.read()["prediction_id"])
    left = list((tmp_path / "spool").glob("*.log"))
    log.close(flush=False)
    assert (result.rows, result.pending) == (3, 1)
    assert logged == set(ids[1:]) and len(left) == 1
    assert "cannot sketch this segment" in (result.error or "") and caplog.records


def test_an_unreachable_store_ends_the_flush_at_the_first_file(tmp_path: Path) -> None:
    """With S3 unreachable (nothing listens at its endpoint), the flush stops at the first
    failed upload instead of waiting on each file: all three stay pending, and the error
    says the store cannot be reached."""
    _spool(tmp_path, [1.0, 2.0, 3.0])
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    options = {"endpoint_url": endpoint, "key": "k", "secret": "s"}
    options["config_kwargs"] = {"retries": {"max_attempts": 1}}
    store = ArtifactStore("s3://keel-nowhere/log", storage={"s3": options})
    log = PredictionLog(tmp_path, sync=False, segments=ArtifactSegments(store))
    result = log.flush()
    log.close(flush=False)
    assert (result.rows, result.pending) == (0, 3)
    assert "cannot reach s3://keel-nowhere/log" in (result.error or "")
    assert len(list((tmp_path / "spool").glob("*.log"))) == 3
