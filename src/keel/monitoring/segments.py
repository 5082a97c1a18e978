"""Parquet segments of the prediction log, where they live, and the commit markers.

A segment is the Parquet file rolled from one spool file, written with DuckDB (no
pyarrow). Records are flattened: ``input.<name>``, ``feature.<name>``, ``output`` (or
``output.<key>`` for a dict output) beside the fixed columns; a many-class model's
probabilities are one list column ``proba`` beside ``proba_classes``, the JSON list of the
classes it holds (the same text on every row of a model: Parquet keeps it once). Segments
rolled before that have one ``proba.<class>`` column per class. A segment counts only once
its commit marker exists; the marker is named after the spool file, so rolling the same
spool twice (a crash between writing and committing) commits it once.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    import pandas as pd

    from keel.data.remote import Blob
    from keel.store.artifacts import ArtifactStore

__all__ = [
    "ArtifactSegments",
    "FolderSegments",
    "LogReader",
    "Manifest",
    "SegmentInfo",
    "SegmentManifest",
    "SegmentStore",
    "Sketcher",
    "flatten",
    "overlapping",
    "read_segments",
    "write_parquet",
]

FIXED = (
    "prediction_id",
    "model_version",
    "route",
    "confidence",
    "score",
    "latency_ms",
    "fallback",
    "failure",
    "findings",
    "features_missing",
)
# "probabilities" (a name -> probability dict): records spooled before ``proba`` lists
NESTED = {"inputs": "input", "features": "feature", "probabilities": "proba"}
_LISTS = ("findings", "features_missing")  # lists kept as one JSON text column each
_NUMBER_LISTS = ("proba",)  # lists kept as one list column each
_TEXT = ("prediction_id", "model_version", "route", "fallback", "failure", *_LISTS)


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """One logged record as one flat row of scalar columns."""
    row = {name: record.get(name) for name in FIXED}
    for name in _LISTS:
        if row[name] is not None:
            row[name] = orjson.dumps(row[name]).decode()
    row["time"] = record.get("time")
    for key, prefix in NESTED.items():
        for name, value in (record.get(key) or {}).items():
            row[f"{prefix}.{name}"] = value
    if record.get("proba") is not None:
        row["proba"] = record["proba"]
        row["proba_classes"] = orjson.dumps(record.get("proba_classes")).decode()
    output = record.get("output")
    if isinstance(output, Mapping):
        for name, value in output.items():
            row[f"output.{name}"] = value
    else:
        row["output"] = output
    return row


def _column(values: list[Any]) -> Any:
    """A pandas-ready column: numbers as float, booleans, strings, anything else as JSON."""
    import pandas as pd

    present = [value for value in values if value is not None]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.array([float("nan") if v is None else float(v) for v in values], "float64")
    if all(isinstance(v, bool) for v in present):
        return pd.array(values, dtype="boolean")
    return pd.array(
        [v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values],
        dtype="object",
    )


def records_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The flattened records as a DataFrame with one type per column."""
    import pandas as pd

    rows = [flatten(record) for record in records]
    names = list(dict.fromkeys(name for row in rows for name in row))
    data = {
        name: _column([row.get(name) for row in rows])
        if name not in _NUMBER_LISTS  # DuckDB writes a column of number lists as a DOUBLE[]
        else pd.array([row.get(name) for row in rows], dtype="object")
        for name in names
        if name != "time"
    }
    for name in _TEXT:
        data[name] = pd.array([row.get(name) for row in rows], dtype="string")
    frame = pd.DataFrame(data)
    seconds = [row.get("time") or 0.0 for row in rows]
    frame.insert(1, "time", pd.to_datetime(seconds, unit="s", utc=True))
    frame.insert(2, "seq", range(len(rows)))
    return frame


def write_parquet(records: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Write the records to one Parquet file with DuckDB."""
    import duckdb

    frame = records_frame(records)
    with duckdb.connect() as con:
        con.register("records", frame)
        con.execute(f"COPY records TO '{_quote(path)}' (FORMAT parquet, COMPRESSION zstd)")


def read_segments(
    paths: Sequence[Path],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    last: int | None = None,
) -> pd.DataFrame:
    """Rows of the given segments (columns unioned by name), by time; optionally only
    those in ``[start, end)`` and only the ``last`` N of them."""
    import duckdb

    files = ", ".join(f"'{_quote(path)}'" for path in paths)
    where, params = _time_filter(start, end)
    sql = f"SELECT * FROM read_parquet([{files}], union_by_name=true) {where}"
    if last is not None:
        sql = f"SELECT * FROM ({sql} ORDER BY time DESC, seq DESC LIMIT {int(last)})"
    with duckdb.connect() as con:
        return con.execute(f"{sql} ORDER BY time, seq", params).df()


def _time_filter(start: datetime | None, end: datetime | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if start is not None:
        clauses.append("time >= ?")
        params.append(start)
    if end is not None:
        clauses.append("time < ?")
        params.append(end)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


# -- where segment files live -----------------------------------------------------------


class SegmentStore(Protocol):
    """Where segment files go: ``put`` returns a location that ``local`` can open here,
    and that ``where`` says how a task on another machine reads (``keel.data.remote``)."""

    def put(self, segment_id: str, path: Path) -> str: ...

    def local(self, location: str) -> Path: ...

    def where(self, location: str) -> str | Blob: ...


class FolderSegments:
    """Segments as ``<folder>/<segment id>.parquet``; a rewrite replaces the same name."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, segment_id: str, path: Path) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.replace(path, self.folder / f"{segment_id}.parquet")
        return f"file:{segment_id}.parquet"

    def local(self, location: str) -> Path:
        return self.folder / location.removeprefix("file:")

    def where(self, location: str) -> str | Blob:
        """The segment's absolute path: a task reads it there (the workers share this
        disk, not necessarily this working directory)."""
        return str(self.local(location).absolute())


CACHE_BYTES = 2 << 30  # what a reader keeps of a remote store's segments, by default


class ArtifactSegments:
    """Segments in Keel's content-addressed artifact store.

    On a remote store (S3) a segment is read from ``cache``: fetched and verified once,
    then kept, since a digest's bytes never change. Any machine that shares the store
    and the manifest reads every replica's segments this way. The cache holds at most
    ``max_cache_bytes``: ``prune`` (which ``locations`` calls after each fetch) removes
    the least recently used segments beyond that, never one the current read needs.
    """

    def __init__(
        self,
        artifacts: ArtifactStore,
        cache: Path | None = None,
        max_cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.artifacts = artifacts
        self.cache = cache
        self.max_cache_bytes = max_cache_bytes

    def put(self, segment_id: str, path: Path) -> str:
        digest = self.artifacts.put_file(path)
        path.unlink()
        return f"sha256:{digest}"

    def local(self, location: str) -> Path:
        digest = location.removeprefix("sha256:")
        if self.artifacts.is_local:
            return self.artifacts.local_path(digest)
        cached = self._cache_folder() / f"{digest}.parquet"
        try:
            os.utime(cached)  # used now: the last to be pruned
        except FileNotFoundError:
            self.artifacts.fetch(digest, cached)
        return cached

    def where(self, location: str) -> str | Blob:
        """How a task reads the segment: by path from a local store, else from the store
        itself (URL, storage options, digest), never from this reader's cache."""
        from keel.data.remote import where_to_read

        return where_to_read(self.artifacts, location.removeprefix("sha256:"))

    def prune(self, keep: Iterable[Path] = ()) -> int:
        """Delete the least recently used cached segments, other than ``keep``, until the
        cache holds at most ``max_cache_bytes``; returns how many were deleted."""
        if self.artifacts.is_local or self.cache is None or not self.cache.exists():
            return 0
        kept = {path.name for path in keep}
        files = []
        for path in self.cache.glob("*.parquet"):
            try:
                status = path.stat()
            except FileNotFoundError:
                continue  # pruned by another reader of the same cache
            files.append((status.st_mtime, status.st_size, path))
        total = sum(size for _, size, _ in files)
        deleted = 0
        for _, size, path in sorted(files):
            if total <= self.max_cache_bytes:
                break
            if path.name in kept:
                continue
            path.unlink(missing_ok=True)
            total -= size
            deleted += 1
        return deleted

    def _cache_folder(self) -> Path:
        if self.cache is None:
            self.cache = Path(tempfile.mkdtemp(prefix="keel-segments-"))
        return self.cache


# -- commit markers ---------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentInfo:
    """A committed segment: where it is, how many rows, their time span, its sketches."""

    id: str
    location: str
    rows: int
    start: float
    end: float
    sketch: dict[str, Any] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "location": self.location,
            "rows": self.rows,
            "start": self.start,
            "end": self.end,
            "sketch": self.sketch,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentInfo:
        return cls(
            id=data["id"],
            location=data["location"],
            rows=int(data["rows"]),
            start=float(data["start"]),
            end=float(data["end"]),
            sketch=data.get("sketch"),
        )


class SegmentManifest(Protocol):
    """Where commits are recorded: a folder of markers, or the metadata store."""

    def is_committed(self, segment_id: str) -> bool: ...

    def commit(self, info: SegmentInfo) -> None: ...

    def segments(self) -> list[SegmentInfo]: ...


class Manifest:
    """Commit markers, one small JSON file per segment, each created atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def is_committed(self, segment_id: str) -> bool:
        return (self.folder / f"{segment_id}.json").exists()

    def commit(self, info: SegmentInfo) -> None:
        """Publish a segment; committing the same id again replaces nothing it should not."""
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.folder / f"{info.id}.json", orjson.dumps(info.to_dict()))

    def segments(self) -> list[SegmentInfo]:
        """Every committed segment, oldest spool first."""
        if not self.folder.exists():
            return []
        markers = sorted(self.folder.glob("*.json"))
        return [SegmentInfo.from_dict(orjson.loads(path.read_bytes())) for path in markers]


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write_chunks(path, iter((data,)))


def atomic_write_chunks(path: Path, chunks: Iterator[bytes]) -> None:
    """Write to a temporary name, fsync, rename into place, fsync the folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def locations(infos: Iterable[SegmentInfo], store: SegmentStore) -> list[Path]:
    """Local paths to read the segments from (fetched into a reader's cache if remote;
    the cache is then pruned to its bound, keeping these)."""
    paths = [store.local(info.location) for info in infos]
    prune = getattr(store, "prune", None)
    if prune is not None:
        prune(paths)
    return paths


def overlapping(
    infos: Sequence[SegmentInfo],
    start: datetime | None = None,
    end: datetime | None = None,
    last: int | None = None,
) -> list[SegmentInfo]:
    """The segments that can hold rows of ``[start, end)``, and of those the ones that
    can hold the ``last`` N rows: a segment's span is its rows' first and last time."""
    lower = _seconds(start, margin=-_NAIVE_MARGIN_S) if start is not None else None
    upper = _seconds(end, margin=_NAIVE_MARGIN_S) if end is not None else None
    chosen = [
        info
        for info in infos
        if (lower is None or info.end >= lower) and (upper is None or info.start < upper)
    ]
    if last is None:
        return chosen
    surely_after = _seconds(start, margin=_NAIVE_MARGIN_S) if start is not None else None
    surely_before = _seconds(end, margin=-_NAIVE_MARGIN_S) if end is not None else None
    newest = sorted(chosen, key=lambda info: info.end, reverse=True)
    rows, floor = 0, None
    for info in newest:  # the newest segments holding N rows of the window: every one of
        floor = info.start if floor is None else min(floor, info.start)  # the last N rows
        inside = (surely_after is None or info.start >= surely_after) and (
            surely_before is None or info.end < surely_before
        )
        rows += info.rows if inside else 0  # is at or after the earliest start among them
        if rows >= last:
            break
    if floor is None or rows < last:
        return chosen
    return [info for info in chosen if info.end >= floor]


_NAIVE_MARGIN_S = 14 * 3600.0  # a time without a zone: any zone's offset, to be safe


def _seconds(moment: datetime, margin: float) -> float:
    if moment.tzinfo is not None:
        return moment.timestamp()
    return moment.replace(tzinfo=UTC).timestamp() + margin


Sketcher = Callable[[list[dict[str, Any]]], dict[str, Any]]
"""Summarises a segment's records (e.g. drift sketches) into its commit marker."""


class LogReader(Protocol):
    """What reading a prediction log's committed segments needs (``PredictionLog`` is
    one): the modules that read windows depend on this, not on the log that writes."""

    folder: Path
    store: SegmentStore

    def segments(self) -> list[SegmentInfo]: ...

    def read(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        last: int | None = None,
    ) -> pd.DataFrame: ...
