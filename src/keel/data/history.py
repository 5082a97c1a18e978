"""Keys across history: a source's ``key:`` against the keys of its live published versions.

Within a batch, ``<key>.unique`` catches repeats. Across batches, ``<key>.unique_history``
compares the batch's keys with every live (unretired) version of the source, and the
source's ``key_policy`` decides what a key seen before means: ``reject`` (an error: the
batch is quarantined), ``warn`` (published, with a warning) or ``upsert`` (published: the
rows are new versions of those keys, counted as updated keys beside the new ones).

The published keys are read by DuckDB from the key column of the versions' Parquet files
only (a columnar read, no other column decoded), into one table of distinct values in the
batch's own connection, so the comparison is one hash join.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.data.access import parquet_path
from keel.data.batch import TABLE, Batch, quote, records
from keel.data.model import DataVersion, Finding, Severity
from keel.store.artifacts import ArtifactStore

__all__ = [
    "HISTORY_TABLE",
    "KeyCounts",
    "count_keys",
    "history_finding",
    "key_index",
    "load_values",
]

HISTORY_TABLE = "keel_key_history"
EXAMPLES = 20
_SEVERITY: dict[str, Severity] = {"reject": "error", "warn": "warn", "upsert": "info"}


@dataclass(frozen=True)
class KeyCounts:
    """How a batch's keys meet the published ones: rows and distinct keys seen before,
    distinct keys never seen, and the first keys seen before with their rows."""

    seen_rows: int
    seen_keys: int
    new_keys: int
    keys: tuple[str, ...] = ()
    examples: tuple[dict[str, Any], ...] = ()


def load_values(
    batch: Batch,
    artifacts: ArtifactStore,
    versions: Sequence[DataVersion],
    column: str,
    table: str = HISTORY_TABLE,
    *,
    against: str | None = None,
) -> str | None:
    """Load into ``table`` beside the batch the distinct ``column`` values (as text) of
    ``versions`` that the batch's ``against`` column (default: ``column``) also holds;
    the table's name, or None when no version has the column.

    Only values the batch holds are kept: the batch's values are the hash table and the
    published ones stream past it, so memory follows the batch, not the history. A
    version's key index (``lineage["key_index"]``, written at publish) is read instead of
    its full Parquet when it indexes ``column``.
    """
    against = against or column
    holding = [v for v in versions if column in v.schema]
    if not holding or against not in batch.schema:
        return None
    with ExitStack() as stack:
        paths = [stack.enter_context(parquet_path(artifacts, _blob(v, column))) for v in holding]
        files = ", ".join(f"'{_literal(path)}'" for path in paths)
        batch.con.execute(
            f"CREATE OR REPLACE TABLE {table} AS SELECT DISTINCT {quote(column)}::VARCHAR "
            f"AS value FROM read_parquet([{files}], union_by_name = true) "
            f"WHERE {quote(column)}::VARCHAR IN (SELECT DISTINCT {quote(against)}::VARCHAR "
            f"FROM {TABLE} WHERE {quote(against)} IS NOT NULL)"
        )
    return table


def key_index(batch: Batch, key: str, path: Path) -> Path:
    """Write the batch's distinct non-null keys, sorted, as a one-column Parquet file."""
    batch.con.execute(
        f"COPY (SELECT DISTINCT {quote(key)} FROM {TABLE} WHERE {quote(key)} IS NOT NULL "
        f"ORDER BY 1) TO '{_literal(path)}' (FORMAT parquet, COMPRESSION zstd)"
    )
    return path


def _blob(version: DataVersion, column: str) -> str:
    """The artifact to read ``column``'s values from: the key index when it holds them."""
    index = version.lineage.get("key_index")
    if isinstance(index, dict) and index.get("column") == column:
        return str(index["artifact"])
    return version.artifact


def count_keys(batch: Batch, key: str, history: str) -> KeyCounts:
    """Count the batch's non-null keys found in ``history`` and those not found."""
    marked = (
        f"SELECT k, k IN (SELECT value FROM {history}) AS seen "
        f"FROM (SELECT {quote(key)}::VARCHAR AS k FROM {TABLE} WHERE {quote(key)} IS NOT NULL)"
    )
    row = batch.con.execute(
        f"SELECT count(*) FILTER (WHERE seen), count(DISTINCT k) FILTER (WHERE seen), "
        f"count(DISTINCT k) FILTER (WHERE NOT seen) FROM ({marked})"
    ).fetchone() or (0, 0, 0)
    if not row[0]:
        return KeyCounts(0, 0, int(row[2]))
    keys = [str(k) for (k,) in batch.con.execute(
        f"SELECT DISTINCT k FROM ({marked}) WHERE seen ORDER BY k LIMIT {EXAMPLES}"
    ).fetchall()]  # fmt: skip
    cursor = batch.con.execute(
        f"SELECT * FROM {TABLE} WHERE {quote(key)}::VARCHAR IN (SELECT unnest($keys)) "
        f"ORDER BY {quote(key)}, rowid LIMIT {EXAMPLES}",
        {"keys": keys},
    )
    return KeyCounts(int(row[0]), int(row[1]), int(row[2]), tuple(keys), tuple(records(cursor)))


def history_finding(key: str, policy: str, counts: KeyCounts | None) -> Finding:
    """The ``<key>.unique_history`` finding for ``counts`` under ``policy`` (pure)."""
    name, severity = f"{key}.unique_history", _SEVERITY[policy]
    if counts is None:
        message = "skipped: no live version of this source to compare keys with yet"
        return Finding(name, "unique_history", severity, "skip", message, key)
    if policy == "upsert":
        message = f"{_n(counts.new_keys)} new keys, {_n(counts.seen_keys)} updated keys"
        return Finding(name, "unique_history", severity, "pass", message, key, rows=0)
    if counts.seen_rows == 0:
        return Finding(name, "unique_history", severity, "pass", "ok", key, rows=0)
    shown = ", ".join(counts.keys[:5]) + (", …" if counts.seen_keys > 5 else "")
    rows = "row has a key" if counts.seen_rows == 1 else "rows have keys"
    message = (
        f"{_n(counts.seen_rows)} {rows} already published in a live version of this source "
        f"({_n(counts.seen_keys)} keys, e.g. {shown}); set key_policy: upsert if they are "
        "updates, or retire the version they came from"
    )
    return Finding(
        name, "unique_history", severity, "fail", message, key, counts.seen_rows,
        counts.examples, rows=counts.seen_rows,
    )  # fmt: skip


def _n(count: int) -> str:
    return f"{count:,}"


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")
