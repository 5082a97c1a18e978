"""Shipping raw spool files (``serving.log_roll: ship``): a replica copies each sealed spool
file as it is to the artifact store and deletes its own copy only once the upload is
confirmed; a worker elsewhere rolls the shipped files, counting each once, and a damaged
one is named and set aside without holding up the others. Segment rows are counted with
pandas from the Parquet files themselves, not through Keel."""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from keel.monitoring.log import PredictionLog
from keel.monitoring.segments import ArtifactSegments, Manifest
from keel.monitoring.shipping import SpoolDrop, SpoolShipper
from keel.store.artifacts import ArtifactStore
from tests.s3server import S3Server


def _replica(folder: Path, batches: list[int]) -> tuple[PredictionLog, list[list[str]]]:
    """A replica's log with one append (one spool frame) per batch size; sealed."""
    log = PredictionLog(folder, sync=False, shipped=None)
    ids = [
        log.append([{"inputs": {"x": float(i)}, "output": i % 2} for i in range(size)])
        for size in batches
    ]
    log.close(flush=False)
    return log, ids


def _worker(folder: Path, artifacts: ArtifactStore) -> PredictionLog:
    """A worker on another machine: its own folder, the shared store and manifest."""
    return PredictionLog(
        folder,
        segments=ArtifactSegments(artifacts),
        manifest=Manifest(Path(artifacts.location).parent / "committed"),
        shipped=SpoolDrop.for_artifacts(artifacts),
    )


def _segment_ids(artifacts: Path) -> pd.Series:
    """Every prediction id in every Parquet segment under ``artifacts``, read with pandas."""
    frames = [
        pd.read_parquet(path, columns=["prediction_id"])
        for path in sorted((artifacts / "sha256").glob("*/*"))
        if path.read_bytes()[:4] == b"PAR1"
    ]
    if not frames:
        return pd.Series([], dtype=object)
    return pd.concat(frames, ignore_index=True)["prediction_id"]


def test_a_shipped_spool_is_rolled_by_a_worker_that_never_saw_the_spool(tmp_path: Path) -> None:
    """The replica ships its sealed spool (its local file goes once the copy is in the
    store); a worker with a folder of its own rolls it: every id logged exactly once."""
    artifacts = ArtifactStore(tmp_path / "artifacts")
    replica, ids = _replica(tmp_path / "replica", [3, 4])
    shipper = SpoolShipper(replica.folder / "spool", SpoolDrop.for_artifacts(artifacts))
    result = shipper.ship()
    left = list((replica.folder / "spool").glob("*.log"))
    with _worker(tmp_path / "worker", artifacts) as worker:
        rolled = worker.flush()
    logged = _segment_ids(tmp_path / "artifacts")
    assert (result.shipped, result.pending, left) == (1, 0, [])
    assert rolled.rows == 7
    assert sorted(logged) == sorted(i for batch in ids for i in batch)


def test_a_raw_spool_uploaded_twice_is_counted_once(tmp_path: Path) -> None:
    """The same spool file shipped again after the worker rolled it (a replica killed
    between the upload and deleting its copy ships it again on restart), and once more
    under a second replica's prefix: the log still holds each of its rows once, and the
    extra copies are removed from the store."""
    artifacts = ArtifactStore(tmp_path / "artifacts")
    drop = SpoolDrop.for_artifacts(artifacts)
    replica, ids = _replica(tmp_path / "replica", [5])
    (spooled,) = (replica.folder / "spool").glob("*.log")
    kept = spooled.read_bytes()
    SpoolShipper(spooled.parent, drop, prefix="host-a").ship()
    with _worker(tmp_path / "worker", artifacts) as worker:
        first = worker.flush()
        spooled.write_bytes(kept)  # the replica's copy, back after a crash before delete
        SpoolShipper(spooled.parent, drop, prefix="host-a").ship()
        spooled.write_bytes(kept)
        SpoolShipper(spooled.parent, drop, prefix="host-b").ship()
        second = worker.flush()
        rows = len(worker.read())
    logged = _segment_ids(tmp_path / "artifacts")
    assert (first.rows, second.rows, rows) == (5, 0, 5)
    assert sorted(logged) == sorted(ids[0])
    assert drop.list_keys() == []


def test_a_damaged_shipped_spool_is_named_and_does_not_block_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One shipped spool truncated inside its last frame and one whose first frame is
    garbage, between intact ones: the flush rolls every intact file, rolls the truncated
    file's intact frames, names both damaged files (result and a warning each), and
    moves them out of the way so the next flush does not meet them again."""
    artifacts = ArtifactStore(tmp_path / "artifacts")
    drop = SpoolDrop.for_artifacts(artifacts)
    shipped: dict[str, list[list[str]]] = {}
    for name, batches in [("a", [2]), ("torn", [3, 4]), ("garbage", [2]), ("z", [3])]:
        replica, ids = _replica(tmp_path / name, batches)
        (path,) = (replica.folder / "spool").glob("*.log")
        shipped[name] = ids
        SpoolShipper(path.parent, drop, prefix=name).ship()
    keys = {key.split("/")[-2]: key for key in drop.list_keys()}
    torn, garbage = Path(keys["torn"]), Path(keys["garbage"])
    torn.write_bytes(torn.read_bytes()[:-10])  # cut inside the second frame
    data = bytearray(garbage.read_bytes())
    data[struct.calcsize("<II") + 1] ^= 0xFF  # the first frame's payload no longer matches
    garbage.write_bytes(bytes(data))
    caplog.set_level(logging.WARNING, logger="keel.monitoring")
    with _worker(tmp_path / "worker", artifacts) as worker:
        result = worker.flush()
        again = worker.flush()
    logged = _segment_ids(tmp_path / "artifacts")
    expected = shipped["a"][0] + shipped["torn"][0] + shipped["z"][0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    damaged = sorted([torn.name, garbage.name])
    assert sorted(result.damaged) == damaged and result.pending == 0
    assert [name for name in damaged if any(name in line for line in warnings)] == damaged
    assert sorted(logged) == sorted(expected)
    assert (again.rows, again.damaged, drop.list_keys()) == (0, (), [])
    assert sorted(p.name for p in (tmp_path / "artifacts" / "spools-damaged").iterdir()) == damaged


def _dead_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_spool_stays_on_the_replica_until_s3_confirms_its_upload(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With S3 unreachable a pass ships nothing and deletes nothing (the files are
    pending); once S3 answers, the same shipper uploads them byte for byte and only then
    removes the local files."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    replica, _ = _replica(tmp_path / "replica", [3])
    (path,) = (replica.folder / "spool").glob("*.log")
    raw = path.read_bytes()
    location = f"s3://{s3_bucket}/keel"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", _dead_endpoint())
    down = SpoolShipper(path.parent, SpoolDrop(location), prefix="r1").ship()
    still = path.exists()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.url)
    up = SpoolShipper(path.parent, SpoolDrop(location), prefix="r1").ship()
    stored = s3_server.filesystem().cat(f"{s3_bucket}/keel/spools/r1/{path.name}")
    assert (down.shipped, down.pending, still) == (0, 1, True)
    assert (up.shipped, up.pending, path.exists()) == (1, 0, False)
    assert stored == raw


def test_an_s3_outage_backs_off_and_is_logged_with_a_count(
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A shipper thread facing an unreachable S3 for 3 s with a 0.05 s interval: its
    passes back off (doubling up to 0.4 s), so far fewer than the 60 an unbacked loop
    would make fail; it logs the first failure and then one line per second with a
    count, never one line per failure; the spool is still on disk. The 3 s are counted
    from the first failure: the first pass also builds the S3 client, which under load
    can take seconds of its own."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", _dead_endpoint())
    replica, _ = _replica(tmp_path / "replica", [2])
    caplog.set_level(logging.ERROR, logger="keel.monitoring")
    drop = SpoolDrop(f"s3://{s3_bucket}/keel")
    shipper = SpoolShipper(
        replica.folder / "spool", drop, interval=0.05, max_backoff=0.4, outage_every_s=1.0
    )
    shipper.start()
    try:
        deadline = time.monotonic() + 60
        while shipper.failures == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert shipper.failures >= 1, "the first pass never failed"
        time.sleep(3.0)
    finally:
        shipper.stop()
    failed = shipper.failures  # passes failed in a row: every pass failed
    lines = [r.getMessage() for r in caplog.records if "spool uploads" in r.getMessage()]
    counted = [int(line.split()[0]) for line in lines[1:]]
    assert lines and "failing" in lines[0], lines
    assert 3 <= failed <= 15, failed  # 0.05 + 0.1 + 0.2, then 0.4 s apart: about 9
    assert 2 <= len(lines) <= 5, lines  # the first, then one a second
    assert 1 + sum(counted) <= failed, (lines, failed)  # the rest await the next line
    assert len(list((replica.folder / "spool").glob("*.log"))) == 1


SHIPPING_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from keel.monitoring.log import PredictionLog
    from keel.monitoring.shipping import SpoolDrop, SpoolShipper
    from keel.serving.logwriter import ShippingLog

    folder, drop = Path(sys.argv[1]), SpoolDrop(sys.argv[2])
    log = ShippingLog(
        lambda: PredictionLog(folder, sync=False, shipped=None),
        0.05,
        lambda root: SpoolShipper(root / "spool", drop, interval=0.02),
    )
    i = 0
    while True:
        (pid,) = log.append([{"inputs": {"i": i}, "output": i % 2}])
        sys.stdout.write(pid + "\\n")  # acknowledged: in the spool
        sys.stdout.flush()
        i += 1
    """
)


def test_a_replica_killed_while_shipping_ships_the_rest_after_a_restart(tmp_path: Path) -> None:
    """kill -9 a process that appends, seals every 50 ms and ships as it goes; a new
    shipper on the same spool folder (the restarted replica) ships what was left, and a
    worker elsewhere rolls everything: every acknowledged id is in the segments exactly
    once, counted with pandas from the Parquet files."""
    artifacts = tmp_path / "artifacts"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", SHIPPING_WRITER, str(tmp_path / "replica"), str(artifacts)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
    assert child.stdout is not None
    acknowledged: list[str] = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 2000 or (  # killed once it has shipped some spools itself
        not SpoolDrop(str(artifacts)).list_keys() and time.monotonic() < deadline
    ):
        acknowledged += [child.stdout.readline().strip() for _ in range(100)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    acknowledged += [line.strip() for line in child.stdout if line.endswith("\n")]
    child.stdout.close()
    shipped_before = len(SpoolDrop(str(artifacts)).list_keys())
    store = ArtifactStore(artifacts)
    SpoolShipper(tmp_path / "replica" / "spool", SpoolDrop.for_artifacts(store)).ship()
    with _worker(tmp_path / "worker", store) as worker:
        worker.flush()
    logged = _segment_ids(artifacts)
    assert shipped_before >= 1  # the killed process had shipped some spools itself
    assert set(acknowledged) <= set(logged) and logged.is_unique
    assert list((tmp_path / "replica" / "spool").glob("*.log")) == []
