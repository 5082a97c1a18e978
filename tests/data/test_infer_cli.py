"""`keel data infer` through the real command: notes, declared columns, one-sentence errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from tests.data.test_infer import customers
from tests.helpers import keel


def sample(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    customers(rows=300).to_csv(path, index=False)
    return path


def test_infer_names_the_entirely_null_column(tmp_path: Path) -> None:
    """An entirely null column is named in one note on stderr; --json lists it."""
    result = keel("data", "infer", str(sample(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "'notes'" in line] != []
    out = json.loads(keel("data", "infer", str(sample(tmp_path)), "--json").stdout)
    assert len(out["notes"]) == 1 and out["checks"]["columns"]["notes"] == {}


def test_infer_makes_the_declared_key_unique(tmp_path: Path) -> None:
    """--key makes the key unique; without it no column is guessed unique."""
    path = str(sample(tmp_path))
    keyed = json.loads(keel("data", "infer", path, "--key", "customer_id", "--json").stdout)
    plain = json.loads(keel("data", "infer", path, "--json").stdout)
    assert keyed["checks"]["columns"]["customer_id"]["unique"] is True
    assert not any(spec.get("unique") for spec in plain["checks"]["columns"].values())


def test_infer_with_two_keys_makes_each_not_null_and_neither_unique(tmp_path: Path) -> None:
    """--key twice (a composite key) makes each key column not_null; neither alone is unique,
    as plan repeats on its own (pandas) and would fail a unique check."""
    path = sample(tmp_path)
    table = pd.read_csv(path)
    args = ["--key", "plan", "--key", "customer_id", "--json"]
    out = json.loads(keel("data", "infer", str(path), *args).stdout)
    columns = out["checks"]["columns"]
    assert table["plan"].duplicated().any()
    assert columns["plan"]["not_null"] is True and columns["customer_id"]["not_null"] is True
    assert "unique" not in columns["plan"] and "unique" not in columns["customer_id"]


def test_infer_refuses_a_time_column_that_is_not_times(tmp_path: Path) -> None:
    """--time on a column with unparsable values is one sentence naming it, exit 1."""
    table = customers(rows=100).astype({"updated_at": str})
    table.loc[4, "updated_at"] = "soon"
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    result = keel("data", "infer", str(path), "--time", "updated_at")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "'updated_at'" in result.stderr


def test_infer_refuses_a_missing_key_column(tmp_path: Path) -> None:
    """--key naming no column of the sample is one sentence naming it, exit 1."""
    result = keel("data", "infer", str(sample(tmp_path)), "--key", "client")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "'client'" in result.stderr


def test_infer_reads_parquet(tmp_path: Path) -> None:
    """A Parquet sample gets the same proposal for its category column."""
    path, table = tmp_path / "c.parquet", customers(rows=300)
    with duckdb.connect() as connection:
        connection.register("t", table)
        connection.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    out = json.loads(keel("data", "infer", str(path), "--json").stdout)
    expected = sorted(table["plan"].unique())
    assert out["checks"]["columns"]["plan"]["allowed"] == expected


def test_infer_refuses_an_unknown_category_policy(tmp_path: Path) -> None:
    """--new-categories outside warn/error/ignore is one sentence, exit 1."""
    result = keel("data", "infer", str(sample(tmp_path)), "--new-categories", "sometimes")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "--new-categories" in result.stderr
