"""From the prediction log to drift inputs: column names, segment sketches, references.

Logged columns are named ``input.<name>`` / ``feature.<name>``; references name the
plain feature. ``feature_view`` renames (a computed feature wins over the raw input of
the same name) and keeps the model outputs (``output``, ``output.*``, ``confidence``,
``score``) so drift of the model's own outputs is tested beside its inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from keel.errors import MonitoringError
from keel.monitoring.drift import role_of
from keel.monitoring.log import Sketcher
from keel.monitoring.reference import Reference
from keel.monitoring.segments import SegmentInfo, records_frame
from keel.monitoring.sketch import Layout, Sketch

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["feature_view", "layout_key", "load_frame", "merged_sketch", "sketcher_for"]

_PREFIXES = ("input.", "feature.")


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
    """Summarise each rolled segment as a sketch on the reference's layout."""
    key = layout_key(reference.layout)

    def sketch(records: list[dict[str, Any]]) -> dict[str, Any]:
        view = feature_view(records_frame(records))
        return {"layout": key, "columns": reference.layout.sketch(view).to_dict()}

    return sketch


def merged_sketch(segments: Sequence[SegmentInfo], reference: Reference) -> Sketch | None:
    """The window's sketch from its segments' sketches, or None if any lacks a match."""
    key = layout_key(reference.layout)
    merged = Sketch({})
    for segment in segments:
        if not segment.sketch or segment.sketch.get("layout") != key:
            return None
        merged = merged.merge(Sketch.from_dict(segment.sketch["columns"]))
    return merged


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
