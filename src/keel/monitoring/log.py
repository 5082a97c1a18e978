"""The prediction log: a durable spool now, Parquet segments a moment later.

``PredictionLog(folder)`` needs nothing else from Keel. ``record()`` returns only once
the prediction is in this process's spool file (fsync'd, unless ``sync=False``: then in
the kernel's page cache, which a killed process cannot lose), so it is safe to acknowledge.
``flush()`` seals the spool and rolls every sealed or abandoned spool file (another
process's, after a crash) into a committed Parquet segment; opening a log and flushing is
the replay after a restart.

With ``serving.log_roll: ship`` replicas do not roll: they ship their sealed spool files
as they are to ``<artifacts>/spools/<host>/`` (``keel.monitoring.shipping``), and
``flush()`` here, in the worker, wherever it runs, fetches and rolls those too. A shipped
file whose segment is already committed (shipped twice, or rolled by another worker) is
deleted, not counted again; one that does not read to its end (a corrupt or truncated
frame) has its intact records rolled, is named in a warning and in ``FlushResult.damaged``
and is moved to ``spools-damaged/``, and the other files are rolled all the same.

When the segment store (S3) or the manifest's database is down or refuses the upload,
``flush()`` keeps the spool files, logs the first failure and then one summary with a
count per interval (not one line per attempt), and the next flush that gets through
uploads them: each spool file is committed once, under its own id, however many
attempts it took.

Layout of the folder::

    spool/<id>.log           frames being written (locked) or waiting to be rolled
    tmp/shipped/<id>.log     a shipped spool file fetched to be rolled (removed after)
    segments/<id>.parquet    rolled segments (unless they go to the artifact store)
    committed/<id>.json      commit markers: a segment counts only once this exists
    cache/<digest>.parquet   segments fetched from a remote artifact store (S3), verified
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.monitoring.segments import (
    ArtifactSegments,
    FolderSegments,
    Manifest,
    SegmentInfo,
    SegmentManifest,
    SegmentStore,
    Sketcher,
    fsync_dir,
    locations,
    overlapping,
    read_segments,
    write_parquet,
)
from keel.monitoring.shipping import SpoolDrop
from keel.monitoring.spool import SpoolContents, SpoolWriter, read_spool, try_lock
from keel.monitoring.wrap import logged

if TYPE_CHECKING:
    import pandas as pd

    from keel.project import Project
    from keel.serving.outages import OutageLog

__all__ = ["FlushResult", "PredictionLog", "Sketcher"]

logger = logging.getLogger("keel.monitoring")


@dataclass(frozen=True)
class FlushResult:
    """What one flush did; ``pending`` spool files wait for the next one (the upload
    failed with ``error``); ``damaged`` names the shipped spool files that did not read
    to their end (their intact records are rolled, the files set aside)."""

    segments: int
    rows: int
    dropped_bytes: int
    pending: int = 0
    error: str | None = None
    damaged: tuple[str, ...] = ()


class PredictionLog:
    """Append predictions durably; roll them into Parquet segments; read them back."""

    def __init__(
        self,
        folder: str | Path,
        *,
        segments: SegmentStore | None = None,
        manifest: SegmentManifest | None = None,
        sync: bool = True,
        sketcher: Sketcher | None = None,
        clock: Callable[[], float] = time.time,
        outage_every_s: float | None = None,
        shipped: SpoolDrop | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.shipped = shipped  # where replicas ship raw spool files, for flush() to roll
        self.store = segments or FolderSegments(self.folder / "segments")
        self.manifest = manifest or Manifest(self.folder / "committed")
        self._sync, self._sketcher, self._clock = sync, sketcher, clock
        self._replica = _replica_name()
        self._serial = 0
        self._rotate_lock = threading.Lock()
        self._writer: SpoolWriter | None = None
        self._written: list[Path] = []  # the spool files this log created
        self._flusher: _Flusher | None = None
        self._outage: OutageLog | None = None  # made on the first failed upload
        self._outage_every_s = outage_every_s  # between failure summaries (None: 30 s)

    @classmethod
    def for_project(cls, project: Project, **options: Any) -> PredictionLog:
        """The project's log: spool under ``.keel/predictions`` (or ``monitoring.log``),
        segments as artifacts committed in the metadata store (so every replica's segments
        are seen from anywhere), each sketched on ``monitoring.reference`` when set; the
        spool files replicas ship (``serving.log_roll: ship``) are rolled by ``flush()``
        too, unless ``shipped=None`` is passed."""
        config = project.config.monitoring
        folder = project.root / config.log if config and config.log else None
        if "sketcher" not in options:
            from keel.monitoring.project_reference import project_sketcher

            options["sketcher"] = project_sketcher(project)
        from keel.monitoring.store_manifest import StoreManifest  # sqlalchemy, on first use

        folder = folder or project.state_dir / "predictions"
        segments = ArtifactSegments(project.artifacts, cache=folder / "cache")
        options.setdefault("manifest", StoreManifest(project.store))
        options.setdefault("shipped", SpoolDrop.for_artifacts(project.artifacts))
        return cls(folder, segments=segments, **options)

    # -- writing --------------------------------------------------------------------

    def record(
        self,
        inputs: Mapping[str, Any],
        output: Any,
        *,
        model_version: str | None = None,
        route: str | None = None,
        features: Mapping[str, Any] | None = None,
        confidence: float | None = None,
        score: float | None = None,
        latency_ms: float | None = None,
        fallback: str | None = None,
        failure: str | None = None,
        prediction_id: str | None = None,
        findings: list[dict[str, Any]] | None = None,
        features_missing: list[str] | None = None,
    ) -> str:
        """Log one prediction durably and return its id; ``findings`` are what request
        validation found in the row (``{"field", "check", "msg"}`` each), and
        ``features_missing`` the features the online store could not serve for it."""
        entry = {
            "prediction_id": prediction_id,
            "inputs": dict(inputs),
            "features": dict(features) if features is not None else None,
            "output": output,
            "model_version": model_version,
            "route": route,
            "confidence": confidence,
            "score": score,
            "latency_ms": latency_ms,
            "fallback": fallback,
            "failure": failure,
            "findings": findings,
            "features_missing": features_missing,
        }
        return self.append([entry])[0]

    def append(self, entries: Iterable[Mapping[str, Any]]) -> list[str]:
        """Log many predictions as one spool frame (one fsync); fills in missing ids and
        times. Entries that are dicts with both are written as they are, not copied."""
        now = self._clock()
        rows = [_complete(entry, now) for entry in entries]
        with self._rotate_lock:
            if self._writer is None:
                self._writer = self._new_writer()
            self._writer.append(rows)
        return [row["prediction_id"] for row in rows]

    def watch(self, **options: Any) -> Callable[[Any], Any]:
        """Decorator: log every call of a ``predict`` function (see ``keel.monitoring.logged``)."""
        return logged(self, **options)

    # -- rolling --------------------------------------------------------------------

    def flush(self, *, own: bool = False) -> FlushResult:
        """Seal this process's spool and roll every sealed spool file into a segment, then
        every shipped one (see the module's docstring); with ``own``, only the spool files
        this log wrote (other processes' and shipped ones are left to them).

        A file that cannot be rolled stays in the spool (``pending``) for the next flush
        and the others are still rolled; when the store is unreachable (every file after
        would wait as long) the flush ends there, the rest pending. Failures are logged
        as an outage (first failure, then a counted summary per interval, then the
        recovery).
        """
        with self._rotate_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        if own:
            spooled = [path for path in self._written if path.exists()]
        elif self._spool_dir.exists():
            spooled = sorted(self._spool_dir.glob("*.log"))
        else:
            spooled = []
        done: list[FlushResult] = []
        failed: list[Exception] = []
        for index, path in enumerate(spooled):
            try:
                result = self._roll(path)
            except Exception as error:  # the store is down or refuses: keep the spool
                self._upload_failed(error)
                if _unreachable(error):
                    pending = len(failed) + len(spooled) - index
                    return _total(done, pending=pending, error=str(error))
                failed.append(error)
                continue
            if result is not None:
                done.append(result)
        if self.shipped is not None and not own:
            try:
                keys = self.shipped.list_keys()
            except Exception as error:
                self._upload_failed(error)
                return _total(done, pending=len(failed), error=str(error))
            for index, key in enumerate(keys):
                try:
                    done.append(self._roll_shipped(self.shipped, key))
                except Exception as error:
                    self._upload_failed(error)
                    if _unreachable(error):
                        pending = len(failed) + len(keys) - index
                        return _total(done, pending=pending, error=str(error))
                    failed.append(error)
        if failed:
            return _total(done, pending=len(failed), error=str(failed[0]))
        if self._outage is not None:
            self._outage.succeeded()
        return _total(done)

    def _upload_failed(self, error: Exception) -> None:
        if self._outage is None:
            from keel.serving.outages import OutageLog

            self._outage = OutageLog("prediction log uploads", logger, self._outage_every_s)
        self._outage.failed(error)

    def _roll(self, path: Path) -> FlushResult | None:
        handle = try_lock(path)
        if handle is None:
            return None  # still being written by a live writer
        try:
            if not path.exists():
                return None  # another flusher rolled it while we waited for the lock
            result = roll_spool(path, self.manifest, self.store, self._sketcher)
        finally:
            handle.close()
        return result

    def _roll_shipped(self, shipped: SpoolDrop, key: str) -> FlushResult:
        """Roll one shipped spool file into a committed segment, then delete it; a file
        already committed is only deleted; a damaged one is rolled as far as it reads and
        set aside."""
        name = key.rsplit("/", 1)[-1]
        segment_id = name.removesuffix(".log")
        if self.manifest.is_committed(segment_id):  # shipped twice, or rolled elsewhere
            shipped.delete(key)
            return FlushResult(segments=0, rows=0, dropped_bytes=0)
        local = shipped.fetch(key, self.folder / "tmp" / "shipped" / name)
        try:
            contents = read_spool(local)
            rows = _commit(segment_id, contents, self.folder, self.manifest, self.store,
                           self._sketcher)  # fmt: skip
        finally:
            local.unlink(missing_ok=True)
        if contents.dropped_bytes:
            aside = shipped.set_aside(key)
            logger.warning(
                "shipped spool file %s is damaged: %d bytes after its %d intact records do not "
                "read as frames (truncated or corrupt); the intact records are logged and the "
                "file is kept as %s",
                name, contents.dropped_bytes, len(contents.records), aside,
            )  # fmt: skip
            return FlushResult(1 if rows else 0, rows, contents.dropped_bytes, damaged=(name,))
        shipped.delete(key)
        return FlushResult(segments=1 if rows else 0, rows=rows, dropped_bytes=0)

    def start_flusher(self, interval: float = 5.0) -> None:
        """Flush in a background thread every ``interval`` seconds until ``close()``."""
        if self._flusher is None:
            self._flusher = _Flusher(self, interval)
            self._flusher.start()

    # -- reading --------------------------------------------------------------------

    def segments(self) -> list[SegmentInfo]:
        """Every committed segment."""
        return self.manifest.segments()

    def read(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        last: int | None = None,
    ) -> pd.DataFrame:
        """Committed predictions as a DataFrame, by time, optionally only the last N."""
        import pandas as pd

        segments = self.segments()
        chosen = overlapping(segments, start=start, end=end, last=last) or segments[-1:]
        paths = locations(chosen, self.store)
        if not paths:
            return pd.DataFrame()
        return read_segments(paths, start=start, end=end, last=last)

    # -- lifecycle ------------------------------------------------------------------

    def close(self, *, flush: bool = True, own: bool = False) -> None:
        """Stop the flusher, flush what is spooled (unless told not to; with ``own``, only
        what this log wrote) and release."""
        if self._flusher is not None:
            self._flusher.stop()
            self._flusher = None
        if flush:
            self.flush(own=own)
        with self._rotate_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def _spool_dir(self) -> Path:
        return self.folder / "spool"

    def _new_writer(self) -> SpoolWriter:
        self._serial += 1
        stamp = f"{time.time_ns() // 1_000_000:013d}"
        name = f"{stamp}-{self._replica}-{self._serial:06d}.log"
        writer = SpoolWriter(self._spool_dir / name, sync=self._sync)
        self._written.append(writer.path)
        return writer


def _unreachable(error: Exception) -> bool:
    """Whether the store is out of reach (not this one file's fault): no point trying the
    next file now."""
    from keel.errors import ArtifactStoreUnavailable, StoreUnavailable

    if isinstance(error, ArtifactStoreUnavailable | StoreUnavailable | OSError | TimeoutError):
        return True
    kind = type(error)
    return kind.__module__.startswith("sqlalchemy") and kind.__name__ in (
        "OperationalError",
        "InterfaceError",
        "TimeoutError",
    )


def _total(done: list[FlushResult], pending: int = 0, error: str | None = None) -> FlushResult:
    return FlushResult(
        segments=sum(1 for r in done if r.rows),
        rows=sum(r.rows for r in done),
        dropped_bytes=sum(r.dropped_bytes for r in done),
        pending=pending,
        error=error,
        damaged=tuple(name for r in done for name in r.damaged),
    )


def roll_spool(
    path: Path, manifest: SegmentManifest, store: SegmentStore, sketcher: Sketcher | None = None
) -> FlushResult:
    """Turn one sealed spool file into a committed segment, then delete it (idempotent)."""
    contents = read_spool(path)
    rows = _commit(path.stem, contents, path.parent.parent, manifest, store, sketcher)
    if contents.dropped_bytes:
        logger.warning("dropped a torn tail of %d bytes from %s", contents.dropped_bytes, path)
    path.unlink()
    fsync_dir(path.parent)
    return FlushResult(segments=1 if rows else 0, rows=rows, dropped_bytes=contents.dropped_bytes)


def _commit(
    segment_id: str,
    contents: SpoolContents,
    folder: Path,
    manifest: SegmentManifest,
    store: SegmentStore,
    sketcher: Sketcher | None,
) -> int:
    """Write and commit the segment of a spool file's records unless it is committed
    already; returns the rows committed now."""
    if not contents.records or manifest.is_committed(segment_id):
        return 0
    records = [_with_inputs(record) for record in contents.records]
    info = write_segment(segment_id, records, folder, store, sketcher)
    manifest.commit(info)
    return info.rows


def write_segment(
    segment_id: str,
    records: list[dict[str, Any]],
    folder: Path,
    store: SegmentStore,
    sketcher: Sketcher | None = None,
) -> SegmentInfo:
    """Write and store the segment for ``records`` (not yet committed)."""
    tmp_dir = folder / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{segment_id}.parquet"
    write_parquet(records, tmp)
    location = store.put(segment_id, tmp)
    times = [float(record["time"]) for record in records]
    return SegmentInfo(
        id=segment_id,
        location=location,
        rows=len(records),
        start=min(times),
        end=max(times),
        sketch=sketcher(records) if sketcher is not None else None,
    )


def _with_inputs(record: dict[str, Any]) -> dict[str, Any]:
    """A server record that kept its request body (``{"instance": {...}}``) gets the
    instance as its inputs: the body was copied into the spool instead of the row."""
    request = record.pop("request", None)
    if request is not None:
        record["inputs"] = request["instance"]
    return record


def _complete(entry: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The entry with an id and a time: itself when it has both (the server's), else a copy."""
    stamp = entry.get("time")
    if type(entry) is dict and entry.get("prediction_id") and stamp and type(stamp) is float:
        return entry
    row = dict(entry)
    row["prediction_id"] = row.get("prediction_id") or uuid.uuid4().hex
    row["time"] = float(row.get("time") or now)
    return row


def _replica_name() -> str:
    host = re.sub(r"[^A-Za-z0-9]+", "_", socket.gethostname())[:24]
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class _Flusher(threading.Thread):
    def __init__(self, log: PredictionLog, interval: float) -> None:
        super().__init__(name="keel-prediction-log-flusher", daemon=True)
        self._log, self._interval = log, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            try:
                self._log.flush()  # a failed upload is logged there, as an outage
            except Exception:  # a bug, not an outage: the server must keep serving
                logger.exception("prediction log flush failed; will retry")

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
