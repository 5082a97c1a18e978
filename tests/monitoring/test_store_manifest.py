"""Segment commits in the metadata store (SQLite and PostgreSQL): once each, seen anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.monitoring.log import PredictionLog, write_segment
from keel.monitoring.segments import FolderSegments, SegmentInfo
from keel.monitoring.spool import read_spool
from keel.monitoring.store_manifest import StoreManifest
from keel.store.metadata import MetadataStore


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    """A migrated metadata store on each backend."""
    opened = MetadataStore.open(store_url)
    yield opened
    opened.close()


def test_committing_a_segment_twice_records_it_once(store: MetadataStore) -> None:
    """The segment id is the key: a replayed commit is a no-op."""
    manifest = StoreManifest(store)
    info = SegmentInfo("s-000001", "file:s.parquet", 3, 1.0, 2.0, {"layout": "k", "columns": {}})
    manifest.commit(info)
    manifest.commit(info)
    assert manifest.segments() == [info]
    assert manifest.segments()[0].sketch == {"layout": "k", "columns": {}}
    assert manifest.is_committed("s-000001") and not manifest.is_committed("s-000002")


def test_two_replicas_segments_are_read_through_one_store(
    store: MetadataStore, tmp_path: Path
) -> None:
    """Replicas spool in their own folders; a reader sees every committed segment."""
    segments_folder = tmp_path / "shared-segments"
    ids = []
    for replica in ("a", "b"):
        with PredictionLog(
            tmp_path / replica,
            segments=FolderSegments(segments_folder),
            manifest=StoreManifest(store),
        ) as log:
            ids.append(log.record({"replica": replica}, 1.0))
    reader = PredictionLog(
        tmp_path / "reader", segments=FolderSegments(segments_folder), manifest=StoreManifest(store)
    )
    assert sorted(reader.read()["prediction_id"]) == sorted(ids)
    reader.close()


def test_replay_after_a_crash_before_commit_leaves_no_duplicates(
    store: MetadataStore, tmp_path: Path
) -> None:
    """Written but uncommitted, then replayed: the store holds the segment once."""
    log = PredictionLog(tmp_path, manifest=StoreManifest(store))
    ids = [log.record({"i": i}, i) for i in range(4)]
    log.close(flush=False)
    spool = next((tmp_path / "spool").glob("*.log"))
    write_segment(spool.stem, read_spool(spool).records, tmp_path, log.store)
    with PredictionLog(tmp_path, manifest=StoreManifest(store)) as again:
        again.flush()
        assert list(again.read()["prediction_id"]) == ids
        assert len(again.segments()) == 1
