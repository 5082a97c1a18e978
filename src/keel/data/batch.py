"""A batch: rows held in a private in-memory DuckDB table named ``batch``.

Keeping the rows inside DuckDB means profiling and every check are vectorised SQL over
native columns, and publishing is one ``COPY ... TO parquet``. Arrival order is the
table's ``rowid``, which the ordering checks rely on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

__all__ = [
    "TABLE",
    "Batch",
    "jsonable",
    "key_present",
    "key_sql",
    "kind_of",
    "quote",
    "readable_by_rowid",
    "records",
    "sql_literal",
]

TABLE = "batch"
_CHUNK = 1 << 20

_KINDS = {
    "TINYINT": "int",
    "SMALLINT": "int",
    "INTEGER": "int",
    "BIGINT": "int",
    "HUGEINT": "int",
    "UTINYINT": "int",
    "USMALLINT": "int",
    "UINTEGER": "int",
    "UBIGINT": "int",
    "FLOAT": "float",
    "DOUBLE": "float",
    "VARCHAR": "string",
    "BOOLEAN": "bool",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
}


def kind_of(duck_type: str) -> str:
    """Keel's word for a DuckDB column type: int, float, string, bool, date, timestamp."""
    if duck_type.startswith("DECIMAL"):
        return "float"
    return _KINDS.get(duck_type, "other")


def readable_by_rowid(schema: Iterable[str]) -> bool:
    """Whether DuckDB's ``rowid`` (arrival order) can be read: no column of these names
    shadows it."""
    return not any(name.lower() == "rowid" for name in schema)


def quote(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def key_sql(keys: Sequence[str]) -> str:
    """A key's value as one SQL expression: the column as text for a single key, the list
    of its columns as text for a composite key (compared exactly, shown as ``[a, b]``)."""
    texts = [f"{quote(name)}::VARCHAR" for name in keys]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def key_present(keys: Sequence[str]) -> str:
    """A SQL condition true where every column of the key holds a value."""
    return " AND ".join(f"{quote(name)} IS NOT NULL" for name in keys)


def sql_literal(value: object) -> str:
    """A SQL literal for a number, bool or string from keel.yaml."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return repr(int(value))  # an integer literal spares integer columns a cast
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def jsonable(value: Any) -> Any:
    """A value from DuckDB in a form JSON can hold."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None if value != value else str(value)  # JSON has no NaN or infinity
    if isinstance(value, bytes | dt.timedelta):
        return str(value)
    return value


def records(cursor: Any) -> list[dict[str, Any]]:
    """The rows of an executed DuckDB query as JSON-ready dicts."""
    names = [d[0] for d in cursor.description]
    return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


class Batch:
    """One batch of rows in its own DuckDB connection; close it when done."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    @classmethod
    def empty_connection(cls, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:")
        if memory_limit is not None:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        return con

    @classmethod
    def from_sql(cls, select: str, params: Sequence[object] = ()) -> Batch:
        """The rows of a DuckDB ``SELECT`` (e.g. over ``read_csv``) as a batch."""
        con = cls.empty_connection()
        try:
            con.execute(f"CREATE TABLE {TABLE} AS {select}", list(params))
        except BaseException:
            con.close()
            raise
        return cls(con)

    @classmethod
    def from_frame(cls, frame: Any) -> Batch:
        """A pandas DataFrame as a batch (copied into DuckDB)."""
        con = cls.empty_connection()
        try:
            con.register("keel_frame", frame)
            con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM keel_frame")
            con.unregister("keel_frame")
        except BaseException:
            con.close()
            raise
        return cls(con)

    @property
    def rows(self) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {TABLE}"))

    @property
    def schema(self) -> dict[str, str]:
        """Column name to DuckDB type, in column order."""
        described = self.con.execute(f"DESCRIBE {TABLE}").fetchall()
        return {str(row[0]): str(row[1]) for row in described}

    def scalar(self, sql: str, params: Sequence[object] = ()) -> Any:
        row = self.con.execute(sql, list(params)).fetchone()
        return None if row is None else row[0]

    def records(self, sql: str) -> list[dict[str, Any]]:
        """The rows of a query as JSON-ready dicts."""
        return records(self.con.execute(sql))

    def drop_through(self, column: str, watermark: str) -> None:
        """Delete rows at or below ``watermark`` (incremental reads past a watermark)."""
        self.con.execute(f"DELETE FROM {TABLE} WHERE {quote(column)} <= ?", [watermark])

    def write_parquet(self, path: Path) -> Path:
        self.con.execute(
            f"COPY {TABLE} TO '{_path_literal(path)}' (FORMAT parquet, COMPRESSION zstd)"
        )
        return path

    def content_id(self, source: str) -> str:
        """sha256 of a canonical form: source, schema, then the rows as CSV in arrival order.

        Hashing a canonical CSV rather than the Parquet bytes keeps the id stable across
        DuckDB versions, whose Parquet writers may lay out the same rows differently.
        """
        hasher = hashlib.sha256(f"{source}\n{sorted(self.schema.items())}\n".encode())
        with tempfile.TemporaryDirectory(prefix="keel-hash-") as folder:
            path = Path(folder) / "canonical.csv"
            self.con.execute(
                f"COPY (SELECT * FROM {TABLE} ORDER BY rowid) TO '{_path_literal(path)}' "
                "(HEADER, DELIMITER ',', QUOTE '\"', DATEFORMAT '%Y-%m-%d', "
                "TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S.%f')"
            )
            for chunk in _chunks(path):
                hasher.update(chunk)
        return hasher.hexdigest()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _path_literal(path: Path) -> str:
    return str(path).replace("'", "''")


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk
