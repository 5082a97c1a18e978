"""The prediction log with its segments on a real S3 server: acknowledged means spooled,
an outage keeps the spool and is logged once with a count, a restarted replica uploads
what it held, and a worker elsewhere reads every replica's segments."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest

from keel.monitoring.log import FlushResult, PredictionLog
from keel.monitoring.spool import read_spool
from keel.project import Project
from tests.s3server import S3Server


@pytest.fixture(autouse=True)
def fast_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """One attempt per S3 call, so a failed upload fails now, not after seconds of retries."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def _project(root: Path, bucket: str, store: Path) -> Project:
    """A project (a replica's or a worker's) sharing one metadata store and one bucket."""
    root.mkdir(parents=True)
    (root / "keel.yaml").write_text(
        f"name: fleet\nstore: sqlite:///{store}\nartifacts: s3://{bucket}/keel\n"
    )
    return Project.open(root)


def _record(log: PredictionLog, count: int) -> list[str]:
    return [log.record({"x": float(i)}, i % 2, model_version="1") for i in range(count)]


def _spooled_ids(log: PredictionLog) -> set[str]:
    files = sorted((log.folder / "spool").glob("*.log"))
    return {record["prediction_id"] for path in files for record in read_spool(path).records}


def _flush_until_uploaded(log: PredictionLog, timeout: float = 60.0) -> list[FlushResult]:
    """Flush as the background flusher would, until nothing is pending."""
    deadline = time.monotonic() + timeout
    results = [log.flush()]
    while results[-1].pending and time.monotonic() < deadline:
        time.sleep(0.2)
        results.append(log.flush())
    return results


def _uploads(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "keel.monitoring" and r.levelno == level and "uploads" in r.getMessage()
    ]


def test_an_acknowledged_prediction_is_in_the_spool_while_s3_is_unreachable(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """record() returns with S3 down; the flush fails and the spool still holds the row."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{dead}")
    with _project(tmp_path / "replica", s3_bucket, tmp_path / "keel.db") as project:
        log = PredictionLog.for_project(project)
        ids = _record(log, 3)
        result = log.flush()
        assert (result.pending, result.rows) == (1, 0)
        assert _spooled_ids(log) == set(ids)
        log.close(flush=False)


def test_an_s3_outage_loses_nothing_duplicates_nothing_and_is_logged_once(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """S3 stops for a while and comes back: every row uploaded once, one error line, one
    recovery line counting the failed uploads."""
    caplog.set_level(logging.WARNING, logger="keel.monitoring")
    with _project(tmp_path / "replica", s3_bucket, tmp_path / "keel.db") as project:
        log = PredictionLog.for_project(project, outage_every_s=3600)
        ids = _record(log, 2)
        assert log.flush().segments == 1
        s3_server.stop()
        try:
            failed = []
            for _ in range(3):
                ids += _record(log, 2)
                failed.append(log.flush())
        finally:
            s3_server.start()
        assert [(r.pending, r.rows) for r in failed] == [(1, 0), (2, 0), (3, 0)]
        after = _flush_until_uploaded(log)
        frame = log.read()
        log.close()
    attempts = len(failed) + sum(1 for r in after if r.pending)
    assert sorted(frame["prediction_id"]) == sorted(ids)
    assert frame["prediction_id"].is_unique
    assert len(s3_server.filesystem().find(f"{s3_bucket}/keel/sha256", refresh=True)) == 4
    assert len(_uploads(caplog, logging.ERROR)) == 1
    (recovered,) = _uploads(caplog, logging.WARNING)
    assert f"({attempts} failed" in recovered


def test_a_replica_denied_writes_keeps_its_spool_and_uploads_it_after_a_restart(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-only keys: the flush is refused and the spool kept; the replica restarted with
    writing keys uploads exactly what the spool held."""
    root, store = tmp_path / "replica", tmp_path / "keel.db"
    for name, value in s3_server.env(read_only=True).items():
        monkeypatch.setenv(name, value)
    with _project(root, s3_bucket, store) as project:
        log = PredictionLog.for_project(project)
        ids = _record(log, 5)
        refused = log.flush()
        log.close()
    assert refused.pending == 1 and "refused access" in (refused.error or "")
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    with Project.open(root) as project:
        restarted = PredictionLog.for_project(project)
        assert restarted.flush().rows == 5
        assert sorted(restarted.read()["prediction_id"]) == sorted(ids)
        restarted.close()


def test_a_worker_on_another_machine_reads_every_replicas_segments(
    s3_bucket: str, tmp_path: Path
) -> None:
    """Two replicas and a worker, each its own project folder, share the metadata store
    and the bucket: the worker reads both replicas' predictions, fetched from S3."""
    store = tmp_path / "shared" / "keel.db"
    store.parent.mkdir()
    ids = []
    for replica, count in (("replica-a", 3), ("replica-b", 4)):
        with (
            _project(tmp_path / replica, s3_bucket, store) as project,
            PredictionLog.for_project(project) as log,
        ):
            ids += _record(log, count)
    with _project(tmp_path / "worker", s3_bucket, store) as project:
        log = PredictionLog.for_project(project)
        frame = log.read()
        log.close(flush=False)
    assert sorted(frame["prediction_id"]) == sorted(ids)
    assert len(list((tmp_path / "worker" / ".keel" / "predictions" / "cache").iterdir())) == 2
