"""The prediction log: durable before acknowledged, rolled once, replayed after a crash."""

from __future__ import annotations

import time
from pathlib import Path

from keel.monitoring.log import PredictionLog, roll_spool, write_segment
from keel.monitoring.segments import ArtifactSegments
from keel.monitoring.spool import read_spool
from keel.store.artifacts import ArtifactStore


def _log_some(log: PredictionLog, count: int, start: int = 0) -> list[str]:
    return [
        log.record(
            {"age": 20 + i, "plan": "basic" if i % 2 else "premium"},
            {"label": "churn", "probability": i / 100},
            model_version="churn@1",
            confidence=0.9,
            latency_ms=1.5,
        )
        for i in range(start, start + count)
    ]


def test_recorded_predictions_read_back_flattened(tmp_path: Path) -> None:
    """After a flush, predictions read back with input.* and output.* columns."""
    with PredictionLog(tmp_path) as log:
        ids = _log_some(log, 5)
        result = log.flush()
        frame = log.read()
    assert result.rows == 5 and result.segments == 1
    assert list(frame["prediction_id"]) == ids
    assert list(frame["input.age"]) == [20.0, 21.0, 22.0, 23.0, 24.0]
    assert set(frame["output.label"]) == {"churn"}
    assert frame["model_version"].iloc[0] == "churn@1"


def test_a_record_is_in_the_spool_before_record_returns(tmp_path: Path) -> None:
    """The spool file holds the prediction as soon as record() returns its id."""
    log = PredictionLog(tmp_path)
    prediction_id = _log_some(log, 1)[0]
    spooled = [read_spool(p).records for p in (tmp_path / "spool").glob("*.log")]
    assert [r["prediction_id"] for records in spooled for r in records] == [prediction_id]
    log.close()


def test_unflushed_spool_is_replayed_by_the_next_process(tmp_path: Path) -> None:
    """Predictions spooled by a log that never flushed appear after a new log flushes."""
    first = PredictionLog(tmp_path)
    ids = _log_some(first, 7)
    first.close(flush=False)
    with PredictionLog(tmp_path) as second:
        second.flush()
        assert list(second.read()["prediction_id"]) == ids


def test_crash_between_segment_write_and_commit_leaves_no_duplicates(tmp_path: Path) -> None:
    """A segment written but not committed is rewritten under the same id: one copy."""
    log = PredictionLog(tmp_path)
    ids = _log_some(log, 4)
    log.close(flush=False)
    spool = next((tmp_path / "spool").glob("*.log"))
    write_segment(spool.stem, read_spool(spool).records, tmp_path, log.store)  # then "crash"
    with PredictionLog(tmp_path) as again:
        again.flush()
        again.flush()
        assert list(again.read()["prediction_id"]) == ids
        assert len(again.segments()) == 1


def test_crash_after_commit_before_spool_delete_leaves_no_duplicates(tmp_path: Path) -> None:
    """A spool whose segment is already committed is deleted, not committed twice."""
    log = PredictionLog(tmp_path)
    ids = _log_some(log, 3)
    log.close(flush=False)
    spool = next((tmp_path / "spool").glob("*.log"))
    copy = spool.read_bytes()
    roll_spool(spool, log.manifest, log.store)
    spool.write_bytes(copy)  # the delete never happened
    with PredictionLog(tmp_path) as again:
        again.flush()
        assert list(again.read()["prediction_id"]) == ids


def test_torn_spool_tail_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    """A spool ending in half a frame rolls its intact records and reports the bytes."""
    log = PredictionLog(tmp_path)
    ids = _log_some(log, 3)
    log.close(flush=False)
    spool = next((tmp_path / "spool").glob("*.log"))
    with spool.open("ab") as handle:
        handle.write(b"\x40\x00\x00\x00\x01\x02")
    with PredictionLog(tmp_path) as again:
        result = again.flush()
        assert result.dropped_bytes == 6
        assert list(again.read()["prediction_id"]) == ids


def test_segments_can_live_in_the_artifact_store(tmp_path: Path) -> None:
    """With ArtifactSegments the Parquet files are content-addressed artifacts."""
    artifacts = ArtifactStore(tmp_path / "artifacts")
    with PredictionLog(tmp_path / "log", segments=ArtifactSegments(artifacts)) as log:
        ids = _log_some(log, 4)
        log.flush()
        assert log.segments()[0].location.startswith("sha256:")
        assert list(log.read()["prediction_id"]) == ids
    assert len(list(artifacts.digests())) == 1


def test_a_clock_stepping_backwards_loses_nothing(tmp_path: Path) -> None:
    """Records stamped earlier than their predecessors are all kept, read back by time."""
    times = iter([1000.0, 2000.0, 1500.0, 500.0])
    with PredictionLog(tmp_path, clock=lambda: next(times)) as log:
        ids = _log_some(log, 4)
        log.flush()
        frame = log.read()
    assert sorted(frame["prediction_id"]) == sorted(ids)
    assert list(frame["prediction_id"]) == [ids[3], ids[0], ids[2], ids[1]]


def test_background_flusher_rolls_segments(tmp_path: Path) -> None:
    """start_flusher rolls the spool on its own within a few intervals."""
    log = PredictionLog(tmp_path)
    log.start_flusher(interval=0.02)
    _log_some(log, 2)
    deadline = time.monotonic() + 5
    while not log.segments() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(segment.rows for segment in log.segments()) == 2
    log.close()


def test_each_flush_with_new_records_adds_a_segment(tmp_path: Path) -> None:
    """Windows accumulate as segments; reading unions them with columns by name."""
    with PredictionLog(tmp_path) as log:
        _log_some(log, 2)
        log.flush()
        log.record({"age": 30, "region": "north"}, 0.5)
        log.flush()
        frame = log.read()
        assert len(log.segments()) == 2
    assert len(frame) == 3
    assert frame["input.region"].iloc[-1] == "north"
    assert frame["input.region"].isna().iloc[0]


def test_read_last_n_returns_the_newest_in_time_order(tmp_path: Path) -> None:
    """read(last=N) gives the N newest predictions, oldest first."""
    times = iter([float(t) for t in range(10)])
    with PredictionLog(tmp_path, clock=lambda: next(times)) as log:
        ids = _log_some(log, 10)
        log.flush()
        assert list(log.read(last=3)["prediction_id"]) == ids[-3:]


def test_concurrent_flushes_commit_each_record_once(tmp_path: Path) -> None:
    """Flushing from several threads at once never duplicates or loses a record."""
    import threading

    log = PredictionLog(tmp_path)
    ids: list[str] = []
    for _ in range(5):
        ids += _log_some(log, 20)
        log.close(flush=False)  # leave a sealed spool file behind each time
    threads = [threading.Thread(target=log.flush) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(log.read()["prediction_id"]) == sorted(ids)
    log.close()


def test_complete_entries_are_written_as_given(tmp_path: Path) -> None:
    """An entry with its own id and time (as the server sends them) keeps both; one
    without gets the log's, and the caller's dict is left as it was."""
    given = {"prediction_id": "p1", "time": 1000.0, "inputs": {"x": 1}, "output": 1}
    bare = {"inputs": {"x": 2}, "output": 2}
    with PredictionLog(tmp_path, clock=lambda: 2000.0) as log:
        ids = log.append([given, bare])
        spooled = read_spool(next((tmp_path / "spool").glob("*.log"))).records
    assert ids[0] == "p1" and bare == {"inputs": {"x": 2}, "output": 2}
    assert [(r["prediction_id"], r["time"]) for r in spooled] == [("p1", 1000.0), (ids[1], 2000.0)]
