"""keel data infer: proposed checks that their own table and the next honest batch pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.data.batch import Batch
from keel.data.infer import csv_texts, infer, time_problem
from keel.data.model import Report
from keel.data.profiling import profile
from keel.data.validation import Context, validate
from keel.errors import SourceError
from keel.schema import SourceConfig
from tests.data.test_validation import NOW


def customers(rows: int = 2000, seed: int = 7) -> pd.DataFrame:
    """A customer table shaped like a real one: ids, categories, skewed money, nulls."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.6, rows).round(2)
    income[rng.random(rows) < 0.08] = np.nan
    seconds = pd.to_timedelta(rng.integers(0, 86400 * 120, rows), "s")
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:06d}" for i in range(rows)],
            "plan": rng.choice(["basic", "standard", "premium"], rows, p=[0.5, 0.3, 0.2]),
            "region": rng.choice(["north", "south", "east", "west", "central"], rows),
            "age": rng.integers(18, 90, rows),
            "income": income,
            "tickets": rng.poisson(1.5, rows),
            "city": [f"city_{i}" for i in rng.integers(0, 1000, rows)],
            "notes": [None] * rows,
            "updated_at": pd.Timestamp("2026-01-01") + seconds,
            "churned": rng.choice(["yes", "no"], rows, p=[0.3, 0.7]),
        }
    )


def check(frame: pd.DataFrame, checks: dict[str, Any], key: str | None = None) -> Report:
    """Keel's own validation of ``frame`` against ``checks``."""
    config = SourceConfig.model_validate({"kind": "csv", "path": "x", "key": key, "checks": checks})
    with Batch.from_frame(frame) as batch:
        return validate(batch, "t", config, profile(batch), Context(now=NOW))


def columns_of(frame: pd.DataFrame, **options: Any) -> dict[str, Any]:
    with Batch.from_frame(frame) as batch:
        columns: dict[str, Any] = infer(batch, now=NOW, **options).checks["columns"]
    return columns


def test_table_passes_its_own_checks() -> None:
    """Validating the table against what was inferred from it finds nothing at all."""
    table = customers()
    with Batch.from_frame(table) as batch:
        checks = infer(batch, key="customer_id", now=NOW).checks
    assert [f.check for f in check(table, checks, "customer_id").failures] == []


@pytest.mark.parametrize("seed", range(1, 11))
def test_next_honest_batch_passes(seed: int) -> None:
    """Checks inferred from 70% of a table pass on the held-out 30%, warnings included."""
    table = customers(seed=seed)
    seen = table.sample(frac=0.7, random_state=seed)
    held_out = table.drop(seen.index)
    with Batch.from_frame(seen) as batch:
        checks = infer(batch, key="customer_id", time="updated_at", now=NOW).checks
    assert [f.check for f in check(held_out, checks, "customer_id").failures] == []


def test_range_reaches_past_the_observed_values_and_warns() -> None:
    """A numeric range holds a margin beyond the observed min and max and only warns."""
    table = customers()
    income = columns_of(table)["income"]
    low, high = income["range"]
    assert 0 <= low < table["income"].min() and high > table["income"].max()
    assert income["severity"] == "warn"


def test_zero_floor_only_where_values_bunch_against_zero() -> None:
    """Counts stop at zero; a symmetric measure that happened to stay positive does not."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"visits": rng.poisson(1.2, 3000), "charges": rng.normal(100, 25, 3000)})
    assert frame["charges"].min() > 0
    columns = columns_of(frame)
    assert columns["visits"]["range"][0] == 0
    assert columns["charges"]["range"][0] < 0


def test_null_ceiling_sits_above_the_observed_rate() -> None:
    """A column with nulls gets a max_null_rate above its rate, not not_null."""
    table = customers()
    income = columns_of(table)["income"]
    assert income["max_null_rate"] > table["income"].isna().mean()
    assert "not_null" not in income


def test_not_null_only_for_identifiers_and_required_columns() -> None:
    """A null-free id and a required column get not_null; a null-free measure does not."""
    columns = columns_of(customers(), required=["churned"])
    assert columns["customer_id"]["not_null"] is True
    assert columns["churned"]["not_null"] is True
    assert "not_null" not in columns["age"] and columns["age"]["max_null_rate"] > 0


def test_categories_only_for_few_distinct_values() -> None:
    """Three plans are an allowed-list; a thousand cities are not."""
    table = customers()
    columns = columns_of(table)
    assert columns["plan"]["allowed"] == sorted(table["plan"].unique())
    assert table["city"].nunique() > 500
    assert "allowed" not in columns["city"] and columns["city"]["type"] == "string"


def test_new_category_warns_by_default() -> None:
    """A plan never seen before is a warning: the batch still passes."""
    table = customers()
    checks = {"columns": columns_of(table)}
    report = check(table.assign(plan=["enterprise", *table["plan"][1:]]), checks)
    assert [(f.check, f.severity) for f in report.failures] == [("plan.allowed", "warn")]
    assert report.passed


def test_new_category_policy_error_blocks() -> None:
    """With new_categories='error' a plan never seen before blocks the batch."""
    table = customers()
    checks = {"columns": columns_of(table, new_categories="error")}
    report = check(table.assign(plan=["enterprise", *table["plan"][1:]]), checks)
    assert not report.passed


def test_uniqueness_only_for_the_declared_key() -> None:
    """Unique values alone make no unique check; the declared key gets one."""
    table = customers()
    assert "unique" not in columns_of(table)["customer_id"]
    assert columns_of(table, key="customer_id")["customer_id"]["unique"] is True


def test_duplicate_keys_are_flagged_by_the_unique_check() -> None:
    """Inference on a key with duplicates still proposes unique, and validation blocks them."""
    table = customers()
    table.loc[5, "customer_id"] = table.loc[4, "customer_id"]
    checks = {"columns": columns_of(table, key="customer_id")}
    report = check(table, checks, "customer_id")
    assert [f.check for f in report.failures if f.blocking] == ["customer_id.unique"]


def test_entirely_null_column_is_reported_and_not_checked() -> None:
    """A column with no value is named in one note and carries no checks."""
    with Batch.from_frame(customers()) as batch:
        found = infer(batch, now=NOW)
    assert found.empty == ("notes",)
    assert found.checks["columns"]["notes"] == {}
    assert len(found.notes) == 1 and "'notes'" in found.notes[0]


def test_time_column_with_mixed_zones_and_garbage_is_one_sentence(tmp_path: Path) -> None:
    """The declared time column's bad values are one error naming the column."""
    table = customers(rows=50).astype({"updated_at": str})
    table.loc[3, "updated_at"] = "2026-01-05T10:00:00+02:00"
    table.loc[7, "updated_at"] = "last tuesday"
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    with Batch.from_frame(pd.read_csv(path)) as batch, pytest.raises(SourceError) as error:
        infer(batch, time="updated_at", time_texts=csv_texts(path, "updated_at"))
    message = str(error.value)
    assert "'updated_at'" in message and "last tuesday" in message and "time zone" in message
    assert message.count(". ") == 0 and "\n" not in message


def test_times_all_with_a_zone_are_fine() -> None:
    """Different offsets, each written out, are unambiguous: no problem."""
    assert time_problem("t", ["2026-01-01T10:00:00+02:00", "2026-01-01T10:00:00Z", None]) is None


def test_times_with_and_without_a_zone_are_a_problem() -> None:
    """One value with a zone among values without one is ambiguous."""
    problem = time_problem("t", ["2026-01-01 10:00:00", "2026-01-01T10:00:00+02:00"])
    assert problem is not None and "time zone" in problem
