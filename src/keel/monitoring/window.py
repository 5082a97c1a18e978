"""From the prediction log to drift inputs: column names, segment sketches, references.

Logged columns are named ``input.<name>`` / ``feature.<name>``; references name the
plain feature. ``feature_view`` renames (a computed feature wins over the raw input of
the same name) and keeps the model outputs (``output``, ``output.*``, ``confidence``,
``score``) so drift of the model's own outputs is tested beside its inputs. A window is
one model version's rows: two versions' predictions differ by design, never drift.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from keel.errors import MonitoringError
from keel.monitoring.drift import role_of
from keel.monitoring.reference import Reference
from keel.monitoring.segments import SegmentInfo, Sketcher, records_frame
from keel.monitoring.sketch import Layout, Sketch

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "VERSION",
    "by_version",
    "feature_view",
    "layout_key",
    "load_frame",
    "main_version",
    "merged_sketch",
    "segment_versions",
    "sketcher_for",
    "version_counts",
]

_PREFIXES = ("input.", "feature.")
VERSION = "model_version"


def feature_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The logged columns a drift check compares, under their plain names."""
    renamed: dict[str, Any] = {}
    for prefix in _PREFIXES:  # feature.* after input.*, so features win
        for column in frame.columns:
            if column.startswith(prefix):
                renamed[column.removeprefix(prefix)] = frame[column]
    for column in frame.columns:
        if role_of(column) == "output":
            renamed[column] = frame[column]
    import pandas as pd

    return pd.DataFrame(renamed)


def layout_key(layout: Layout) -> str:
    """A short fingerprint: sketches merge only when their layouts match."""
    data = orjson.dumps(layout.to_dict(), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()[:16]


def sketcher_for(reference: Reference) -> Sketcher:
    """Summarise each rolled segment as a sketch on the reference's layout, with its rows
    per model version (and a sketch per version when the segment holds several), so a
    window can be judged one model version at a time without reading rows."""
    key = layout_key(reference.layout)

    def sketch(records: list[dict[str, Any]]) -> dict[str, Any]:
        frame = records_frame(records)
        counts = version_counts(frame)
        out = {
            "layout": key,
            "columns": reference.layout.sketch(feature_view(frame)).to_dict(),
            "versions": counts,
        }
        if len(counts) > 1:
            out["by_version"] = {
                version: reference.layout.sketch(feature_view(rows)).to_dict()
                for version, rows in by_version(frame).items()
            }
        return out

    return sketch


def version_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per model version (``""`` for rows logged without one)."""
    if VERSION not in frame.columns:
        return {"": len(frame)} if len(frame) else {}
    counts = frame[VERSION].fillna("").astype(str).value_counts(sort=False)
    return {str(version): int(rows) for version, rows in counts.items()}


def by_version(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of each model version."""
    if VERSION not in frame.columns:
        return {"": frame}
    versions = frame[VERSION].fillna("").astype(str)
    return {str(v): frame[versions == v] for v in versions.unique()}


def main_version(counts: Mapping[str, int]) -> str | None:
    """The version a window is judged for: the one that served the most rows (under a
    canary, production), ties to the greater name. None for an empty window."""
    if not counts:
        return None
    return max(counts, key=lambda version: (counts[version], version))


def segment_versions(segments: Sequence[SegmentInfo]) -> dict[str, int] | None:
    """Rows per version over segments, from their sketches; None if one lacks them."""
    total: dict[str, int] = {}
    for segment in segments:
        versions = (segment.sketch or {}).get("versions")
        if versions is None:
            return None
        for version, rows in versions.items():
            total[version] = total.get(version, 0) + int(rows)
    return total


def merged_sketch(
    segments: Sequence[SegmentInfo], reference: Reference, version: str | None = None
) -> Sketch | None:
    """The window's sketch from its segments' sketches (only ``version``'s rows when
    given), or None if any lacks a matching one."""
    key = layout_key(reference.layout)
    merged = Sketch({})
    for segment in segments:
        if not segment.sketch or segment.sketch.get("layout") != key:
            return None
        columns = _version_columns(segment.sketch, version)
        if columns is False:
            return None
        if columns is not None:
            merged = merged.merge(Sketch.from_dict(columns))
    return merged


def _version_columns(sketch: Mapping[str, Any], version: str | None) -> Any:
    """A segment's column sketches for ``version``: None if it has no rows of it, False
    if it cannot tell (sketched before versions were recorded)."""
    if version is None:
        return sketch["columns"]
    versions = sketch.get("versions")
    if versions is None:
        return False
    if version not in versions:
        return None
    if len(versions) == 1:
        return sketch["columns"]
    return sketch["by_version"][version]


def load_frame(path: Path) -> pd.DataFrame:
    """A CSV or Parquet data file as a DataFrame (Parquet read by DuckDB)."""
    if not path.exists():
        raise MonitoringError(f"reference file {path} does not exist; pass an existing file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        import pandas as pd

        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        import duckdb

        with duckdb.connect() as con:
            return con.execute("SELECT * FROM read_parquet(?)", [str(path)]).df()
    if suffix == ".json":
        raise MonitoringError(f"{path} looks like saved reference statistics; use Reference.load")
    raise MonitoringError(f"cannot read {path}: use a .csv or .parquet file")
