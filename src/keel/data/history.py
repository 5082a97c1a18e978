"""Keys across history: a source's ``key:`` against the keys of its live published versions.

A key is one column or several (a composite key, named ``carrier+flight+date`` in check
names, its value the list of its columns as text). Within a batch, ``<key>.unique`` catches
repeats. Across batches, ``<key>.unique_history``
compares the batch's keys with every live (unretired) version of the source, and the
source's ``key_policy`` decides what a key seen before means: ``reject`` (an error: the
batch is quarantined), ``warn`` (published, with a warning) or ``upsert`` (published: the
rows are new versions of those keys, counted as updated keys beside the new ones).

The published keys are read by DuckDB from the key columns of the versions' Parquet files
only (a columnar read, no other column decoded), into one table of distinct values in the
batch's own connection, so the comparison is one hash join.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.data.access import is_manifest, parquet_path, version_files
from keel.data.batch import TABLE, Batch, key_present, key_sql, quote, records
from keel.data.model import DataVersion, Finding, Severity
from keel.store.artifacts import ArtifactStore

__all__ = [
    "HISTORY_TABLE",
    "KeyCounts",
    "count_keys",
    "history_finding",
    "key_index",
    "load_keys",
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
    return _load_distinct(batch, artifacts, versions, (column,), (against or column,), table)


def load_keys(
    batch: Batch,
    artifacts: ArtifactStore,
    versions: Sequence[DataVersion],
    keys: str | Sequence[str],
    table: str = HISTORY_TABLE,
) -> str | None:
    """Load into ``table`` the distinct keys (one column or several) of ``versions`` that
    the batch also holds, as ``load_values`` does for one column; the table's name, or
    None when no version has every key column or the batch lacks one."""
    columns = _columns(keys)
    return _load_distinct(batch, artifacts, versions, columns, columns, table)


def _load_distinct(
    batch: Batch,
    artifacts: ArtifactStore,
    versions: Sequence[DataVersion],
    columns: tuple[str, ...],
    against: tuple[str, ...],
    table: str,
) -> str | None:
    """The one query behind ``load_values`` and ``load_keys``: the published values of
    ``columns`` (as ``key_sql`` text) that the batch's ``against`` columns also hold."""
    holding = [v for v in versions if all(c in v.schema for c in columns)]
    if not holding or not all(c in batch.schema for c in against):
        return None
    value, present = key_sql(columns), key_present(columns)
    wanted, known = key_sql(against), key_present(against)
    with ExitStack() as stack:
        paths = [p for v in holding for p in _files(stack, artifacts, v, columns)]
        files = ", ".join(f"'{_literal(path)}'" for path in paths)
        batch.con.execute(
            f"CREATE OR REPLACE TABLE {table} AS SELECT DISTINCT {value} AS value "
            f"FROM read_parquet([{files}], union_by_name = true) WHERE {present} AND {value} "
            f"IN (SELECT DISTINCT {wanted} FROM {TABLE} WHERE {known})"
        )
    return table


def key_index(batch: Batch, keys: str | Sequence[str], path: Path) -> Path:
    """Write the batch's distinct keys with every column non-null, sorted, as a Parquet
    file of the key's columns."""
    columns = _columns(keys)
    listed = ", ".join(quote(c) for c in columns)
    batch.con.execute(
        f"COPY (SELECT DISTINCT {listed} FROM {TABLE} WHERE {key_present(columns)} "
        f"ORDER BY ALL) TO '{_literal(path)}' (FORMAT parquet, COMPRESSION zstd)"
    )
    return path


def _columns(keys: str | Sequence[str]) -> tuple[str, ...]:
    return (keys,) if isinstance(keys, str) else tuple(keys)


def _files(
    stack: ExitStack, artifacts: ArtifactStore, version: DataVersion, columns: tuple[str, ...]
) -> list[Path]:
    """Local paths to read ``columns``' values of ``version`` from: every partition of a
    manifest version, else the key index or the version's blob."""
    if is_manifest(version):
        return stack.enter_context(version_files(artifacts, version))
    return [stack.enter_context(parquet_path(artifacts, _blob(version, columns)))]


def _blob(version: DataVersion, keys: str | Sequence[str]) -> str:
    """The artifact to read the key's values from: the key index when it holds them."""
    index = version.lineage.get("key_index")
    if isinstance(index, dict):
        indexed = index.get("columns", [index.get("column")])
        if list(indexed) == list(_columns(keys)):
            return str(index["artifact"])
    return version.artifact


def count_keys(batch: Batch, keys: str | Sequence[str], history: str) -> KeyCounts:
    """Count the batch's keys (every column non-null) found in ``history`` and not found."""
    columns = _columns(keys)
    value = key_sql(columns)
    marked = (
        f"SELECT k, k IN (SELECT value FROM {history}) AS seen "
        f"FROM (SELECT {value} AS k FROM {TABLE} WHERE {key_present(columns)})"
    )
    row = batch.con.execute(
        f"SELECT count(*) FILTER (WHERE seen), count(DISTINCT k) FILTER (WHERE seen), "
        f"count(DISTINCT k) FILTER (WHERE NOT seen) FROM ({marked})"
    ).fetchone() or (0, 0, 0)
    if not row[0]:
        return KeyCounts(0, 0, int(row[2]))
    first = f"SELECT DISTINCT k FROM ({marked}) WHERE seen ORDER BY k LIMIT {EXAMPLES}"
    shown = [str(k) for (k,) in batch.con.execute(
        f"SELECT k::VARCHAR FROM ({first}) ORDER BY k"
    ).fetchall()]  # fmt: skip
    order = ", ".join(quote(c) for c in columns)
    cursor = batch.con.execute(
        f"SELECT * FROM {TABLE} WHERE {value} IN ({first}) ORDER BY {order}, rowid LIMIT {EXAMPLES}"
    )
    return KeyCounts(int(row[0]), int(row[1]), int(row[2]), tuple(shown), tuple(records(cursor)))


def history_finding(key: str, policy: str, counts: KeyCounts | None) -> Finding:
    """The ``<key>.unique_history`` finding for ``counts`` under ``policy`` (pure); ``key``
    is the key's name (``customer_id``, or ``carrier+flight+date`` for a composite key)."""
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
