"""Reading and writing tables the user hands to the feature store (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keel.errors import FeatureError
from keel.features.sql import path_literal

__all__ = ["read_table", "write_table"]


def read_table(path: Path) -> Any:
    """A CSV or Parquet file as a DataFrame, with timestamps parsed by DuckDB."""
    import duckdb

    if not path.is_file():
        raise FeatureError(f"{path} does not exist")
    reader = "read_parquet" if path.suffix == ".parquet" else "read_csv"
    con = duckdb.connect()
    try:
        return con.execute(f"SELECT * FROM {reader}(?)", [str(path)]).df()
    except duckdb.Error as error:
        raise FeatureError(f"{path} cannot be read: {error}") from None
    finally:
        con.close()


def write_table(frame: Any, path: Path) -> None:
    """Write a DataFrame as Parquet or CSV (by suffix), atomically."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    kind = "parquet" if path.suffix == ".parquet" else "csv"
    con = duckdb.connect()
    try:
        con.register("frame", frame)
        con.execute(f"COPY frame TO {path_literal(tmp)} (FORMAT {kind})")
    finally:
        con.close()
    tmp.replace(path)
