"""A source too big for one batch: a folder or glob of Parquet files, one partition each.

Its version is a manifest: the schema, and each partition's path, sha256, size and row
count; the manifest's own sha256 names the version, so the same files give the same
version and any changed file gives another. Every partition must have the schema of the
first (a file that differs is named, with the columns that differ), and a file that is
not Parquet is named too.

Each partition is checked on its own, on whatever engine runs it, with the source's
checks (``keel.data.validation.validate``): findings name the partition, and each
example row carries ``_row``, its row number in that file. The key's uniqueness is also
checked exactly across partitions: each partition returns its keys and row numbers, and
the merge finds every key held by more than one partition.
"""

from __future__ import annotations

import hashlib
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from keel.data.model import Finding
from keel.data.partitions import Table, parquet_rows
from keel.data.sources import file_lineage
from keel.errors import SourceError
from keel.schema import ColumnCheck, SourceConfig

if TYPE_CHECKING:
    import pandas as pd

    from keel.compute.engine import Engine

__all__ = [
    "ROW",
    "PartitionCheck",
    "PartitionedReport",
    "check_partitioned",
    "manifest",
    "store_manifest",
]

ROW = "_row"
"""The column each example row carries: its row number (from 0) within its file."""

_EXAMPLES = 20


@dataclass(frozen=True)
class PartitionCheck:
    """What one partition's checks found, and its keys (with row numbers) for the merge."""

    path: str
    rows: int
    findings: tuple[Finding, ...]
    keys: pd.DataFrame | None


@dataclass(frozen=True)
class PartitionedReport:
    """The manifest, each partition's failing findings, and the cross-partition checks."""

    manifest: dict[str, Any]
    partitions: tuple[PartitionCheck, ...]
    merged: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        found = [f for p in self.partitions for f in p.findings] + list(self.merged)
        return not any(finding.blocking for finding in found)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.manifest["sha256"],
            "manifest": self.manifest,
            "passed": self.passed,
            "partitions": [
                {"path": p.path, "rows": p.rows, "findings": [f.__dict__ for f in p.findings]}
                for p in self.partitions
            ],
            "merged": [f.__dict__ for f in self.merged],
        }


def manifest(table: Table) -> dict[str, Any]:
    """The version of ``table`` (Parquet files) as a manifest; a file whose schema differs
    from the first's, or that is not Parquet, is refused by name."""
    if table.kind != "parquet":
        raise SourceError("a partitioned source is Parquet files; convert the CSV files first")
    parts = []
    first: list[list[str]] | None = None
    for path in table.files:
        schema = _schema(path)
        if first is None:
            first = schema
        elif schema != first:
            raise SourceError(_schema_differs(path, table.files[0], first, schema))
        parts.append({**file_lineage(Path(path), path), "rows": parquet_rows(path)})
    body = {"schema": first or [], "partitions": parts}
    digest = hashlib.sha256(_canonical(body)).hexdigest()
    return {**body, "sha256": digest, "rows": sum(p["rows"] for p in parts)}


def store_manifest(artifacts: Any, found: dict[str, Any]) -> str:
    """Keep the manifest in the artifact store, under its own digest (the version id)."""
    return str(artifacts.put_bytes(_canonical({k: found[k] for k in ("schema", "partitions")})))


def _canonical(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _schema(path: str) -> list[list[str]]:
    import duckdb

    try:
        with duckdb.connect() as con:
            found = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [path]).fetchall()
    except duckdb.Error as error:
        said = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        message = f"{path} is not a readable Parquet file ({said}); replace or remove it"
        raise SourceError(message) from None
    return [[str(row[0]), str(row[1])] for row in found]


def _schema_differs(
    path: str, reference: str, first: list[list[str]], schema: list[list[str]]
) -> str:
    mine = {name: kind for name, kind in schema}
    theirs = {name: kind for name, kind in first}
    differ = sorted(n for n in mine.keys() | theirs.keys() if mine.get(n) != theirs.get(n))
    shown = ", ".join(
        f"{n} {mine.get(n, 'missing')} (not {theirs.get(n, 'missing')})" for n in differ
    )
    return f"{path} has another schema than {reference}: {shown}; give all partitions one schema"


def check_partitioned(
    engine: Engine, source: str, config: SourceConfig, table: Table, now: datetime
) -> PartitionedReport:
    """Check every partition of ``table`` on ``engine``, then the key across partitions."""
    found = manifest(table)
    shared = (source, _with_row(config), now)
    results: list[PartitionCheck | None] = [None] * len(table.files)
    with closing(engine.map(check_partition, shared, list(table.files))) as checked:
        for position, result in checked:
            results[position] = result
    done = tuple(r for r in results if r is not None)
    merged = () if not config.keys else (cross_partition_keys(config, done),)
    return PartitionedReport(found, done, merged)


def _with_row(config: SourceConfig) -> SourceConfig:
    """The source's checks with ``_row`` declared, so it is never an undeclared column."""
    if not config.checks.columns:
        return config
    columns = {**config.checks.columns, ROW: ColumnCheck()}
    checks = config.checks.model_copy(update={"columns": columns})
    return config.model_copy(update={"checks": checks})


def check_partition(shared: tuple[str, SourceConfig, datetime], path: str) -> PartitionCheck:
    """One file's checks (runs on an engine's worker): failing findings named by the file,
    examples with their ``_row``, and the file's keys for the merge."""
    from keel.data.batch import Batch
    from keel.data.profiling import profile
    from keel.data.validation import Context, validate

    source, config, now = shared
    scan = "read_parquet(?, file_row_number = true)"
    select = f"SELECT * EXCLUDE (file_row_number), file_row_number AS {ROW} FROM {scan}"
    batch = Batch.from_sql(select, [path])
    try:
        report = validate(batch, source, config, profile(batch), Context(now))
        keys = _keys(batch, config) if config.keys else None
        rows = batch.rows
    finally:
        batch.close()
    failing = tuple(_named(f, path) for f in report.findings if f.status == "fail")
    if rows == 0:
        message = f"{path}: the partition has no rows"
        failing += (Finding("partition:empty", "empty", "warn", "fail", message, violations=1),)
    return PartitionCheck(path, rows, failing, keys)


def _named(finding: Finding, path: str) -> Finding:
    return replace(finding, message=f"{path}: {finding.message}")


def _keys(batch: Any, config: SourceConfig) -> pd.DataFrame:
    from keel.data.batch import quote

    columns = ", ".join(quote(k) for k in config.keys)
    return batch.con.execute(f"SELECT {columns}, {ROW} FROM batch").df()


def cross_partition_keys(config: SourceConfig, parts: tuple[PartitionCheck, ...]) -> Finding:
    """``<key>.unique_across_partitions``: every row whose key another partition also
    holds (exact: all keys are compared), with up to 20 of them as examples."""
    import pandas as pd

    keys, name = list(config.keys), f"{config.key_name}.unique_across_partitions"
    frames = [p.keys.assign(partition=p.path) for p in parts if p.keys is not None]
    every = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=keys)
    every = every.dropna(subset=keys)
    spread = every.groupby(keys, dropna=True)["partition"].transform("nunique")
    clashing = every[spread > 1]
    severity = config.checks.columns.get(keys[0], ColumnCheck()).severity
    if clashing.empty:
        return Finding(name, "unique", severity, "pass", "ok", config.key_name, rows=0)
    examples = tuple(clashing.sort_values(keys).head(_EXAMPLES).to_dict("records"))
    message = f"{len(clashing)} rows hold a {config.key_name} that another partition also holds"
    return Finding(
        name, "unique", severity, "fail", message, config.key_name, len(clashing), examples,
        rows=len(clashing),
    )  # fmt: skip
