"""Segment commits in the metadata store, so every replica's segments are seen anywhere.

The segment id is the primary key: committing a segment twice (a replay after a crash
between writing and committing) inserts it once. Sketches ride along as JSON, which is
what "sketches in PostgreSQL" means for a deployment of many replicas.
"""

from __future__ import annotations

import time

import orjson
import sqlalchemy as sa
from sqlalchemy import exc

from keel.monitoring.segments import SegmentInfo
from keel.monitoring.tables import log_segments
from keel.store.metadata import MetadataStore

__all__ = ["StoreManifest"]


class StoreManifest:
    """A segment manifest in the ``keel_log_segments`` table."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def is_committed(self, segment_id: str) -> bool:
        query = sa.select(log_segments.c.id).where(log_segments.c.id == segment_id)
        with self.store.begin() as conn:
            return conn.execute(query).first() is not None

    def commit(self, info: SegmentInfo) -> None:
        """Insert the segment; a second commit of the same id changes nothing."""
        values = {
            "id": info.id,
            "location": info.location,
            "rows": info.rows,
            "starts_at": info.start,
            "ends_at": info.end,
            "sketch": orjson.dumps(info.sketch).decode() if info.sketch is not None else None,
            "committed_at": time.time(),
        }
        try:
            with self.store.begin() as conn:
                conn.execute(log_segments.insert().values(**values))
        except exc.IntegrityError:
            return  # already committed by an earlier attempt

    def segments(self) -> list[SegmentInfo]:
        """Every committed segment, in segment-id order (oldest spool first)."""
        with self.store.begin() as conn:
            rows = conn.execute(sa.select(log_segments).order_by(log_segments.c.id)).all()
        return [
            SegmentInfo(
                id=row.id,
                location=row.location,
                rows=row.rows,
                start=row.starts_at,
                end=row.ends_at,
                sketch=orjson.loads(row.sketch) if row.sketch else None,
            )
            for row in rows
        ]
