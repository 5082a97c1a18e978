"""A reader's cache of segments fetched from S3 stays within its bound, and a read of a
window fetches only the segments that can hold its rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from keel.monitoring.log import PredictionLog
from keel.monitoring.segments import ArtifactSegments, Manifest
from keel.store.artifacts import ArtifactStore

T0 = 1_800_000_000.0  # the first segment's rows start here; one segment per hour after
ROWS = 40


def _log(tmp: Path, bucket: str, folder: str, max_cache_bytes: int) -> PredictionLog:
    artifacts = ArtifactStore(f"s3://{bucket}/keel")
    segments = ArtifactSegments(artifacts, tmp / folder / "cache", max_cache_bytes)
    return PredictionLog(tmp / folder, segments=segments, manifest=Manifest(tmp / "committed"))


def _write(log: PredictionLog, hours: int) -> pd.DataFrame:
    """One segment per hour, ROWS rows a minute apart each; the rows as written."""
    rows = []
    for hour in range(hours):
        entries = [
            {"prediction_id": f"h{hour}-{i}", "time": T0 + 3600 * hour + 60 * i,
             "inputs": {"x": float(i)}, "output": i % 2}
            for i in range(ROWS)
        ]  # fmt: skip
        log.append(entries)
        log.flush()
        rows += [(e["prediction_id"], e["time"]) for e in entries]
    return pd.DataFrame(rows, columns=["prediction_id", "time"])


def _cache_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("*.parquet"))


def test_the_segment_cache_stays_within_its_bound(s3_bucket: str, tmp_path: Path) -> None:
    """Six segments on S3, a reader whose cache holds about two: reading each hour's
    window in turn returns that hour's rows (as written) and leaves the cache within its
    bound, though every segment was fetched once."""
    writer = _log(tmp_path, s3_bucket, "writer", 1 << 30)
    written = _write(writer, 6)
    writer.close(flush=False)
    probe = _log(tmp_path, s3_bucket, "probe", 1 << 30)
    probe.read()
    one = max(path.stat().st_size for path in (tmp_path / "probe" / "cache").glob("*"))
    reader = _log(tmp_path, s3_bucket, "reader", int(2.5 * one))
    sizes, matched = [], []
    for hour in range(6):
        start = datetime.fromtimestamp(T0 + 3600 * hour, UTC)
        end = datetime.fromtimestamp(T0 + 3600 * (hour + 1), UTC)
        frame = reader.read(start=start, end=end)
        expected = written[
            (written["time"] >= start.timestamp()) & (written["time"] < end.timestamp())
        ]
        matched.append(sorted(frame["prediction_id"]) == sorted(expected["prediction_id"]))
        sizes.append(_cache_bytes(tmp_path / "reader" / "cache"))
    assert matched == [True] * 6
    assert max(sizes) <= int(2.5 * one), (sizes, one)


def test_the_last_rows_are_read_from_the_newest_segments_only(
    s3_bucket: str, tmp_path: Path
) -> None:
    """Reading the last 50 rows of six 40-row segments fetches the two newest segments,
    and returns the 50 latest rows as written."""
    writer = _log(tmp_path, s3_bucket, "writer", 1 << 30)
    written = _write(writer, 6)
    writer.close(flush=False)
    reader = _log(tmp_path, s3_bucket, "reader", 1 << 30)
    frame = reader.read(last=50)
    fetched = len(list((tmp_path / "reader" / "cache").glob("*.parquet")))
    latest = written.sort_values("time").tail(50)
    assert sorted(frame["prediction_id"]) == sorted(latest["prediction_id"])
    assert fetched == 2
