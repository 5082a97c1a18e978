"""Validation on a real cluster: each partition profiled and checked on a worker, the
profiles merged through mergeable sketches, and the whole-table checks run on the merge.
Every number is compared with the local engine on the concatenated data and with pandas /
NumPy computed here."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from keel.compute.dask import DaskEngine
from keel.data.batch import Batch
from keel.data.model import QUANTILES, Finding, Profile, Report
from keel.data.partitioned import ROW, PartitionedReport, check_partitioned
from keel.data.partitions import resolve_table
from keel.data.profiling import profile
from keel.data.sketches import KLL_RANK_ERROR
from keel.data.validation import Context, validate
from keel.schema import KeelConfig
from tests.compute.conftest import Cluster

CONFIG = """\
name: events
sources:
  events:
    kind: parquet
    path: data/events/
    key: id
    checks:
      columns:
        id: {type: int}
        amount: {type: float, range: [0, 100], max_null_rate: 0.01}
        plan: {type: category, allowed: [basic, standard, premium], severity: warn}
        customer: {type: string}
        seq: {type: int}
        flag: {type: bool}
      references: [{column: customer, to: customers.customer_id}]
      ordered: {by: seq, within: customer}
"""
FILES, ROWS, CUSTOMERS = 4, 2000, 600
KNOWN = tuple(f"c{i}" for i in range(CUSTOMERS - 20))
"""The customers the referenced source holds: the last 20 are unknown."""
NOW = datetime(2026, 1, 1)
TO = "customers.customer_id"


def _table(seed: int = 7) -> list[pd.DataFrame]:
    """Four files of events with planted faults: nulls and out-of-range amounts, a plan
    not allowed, unknown customers, a key repeated across files, and seq going back both
    within a file (file 1, row 500) and at a file boundary (file 2, row 0)."""
    rng = np.random.default_rng(seed)
    n = FILES * ROWS
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "amount": rng.uniform(0, 100, n),
            "plan": rng.choice(["basic", "standard", "premium"], n),
            "customer": [f"c{i}" for i in rng.integers(0, CUSTOMERS, n)],
            "seq": np.arange(n) * 10,
            "flag": rng.random(n) < 0.3,
        }
    )
    frame.loc[rng.choice(n, 120, replace=False), "amount"] = np.nan
    frame.loc[[17, 2500, 7001], "amount"] = [-1.0, 150.0, 101.0]
    frame.loc[rng.choice(n, 7, replace=False), "plan"] = "gold"
    frame.loc[ROWS + 1000, "id"] = 3  # file 1 repeats file 0's id 3
    frame.loc[ROWS + 500, "seq"] = 5
    frame.loc[2 * ROWS, "seq"] = -5
    return [frame.iloc[i * ROWS : (i + 1) * ROWS].reset_index(drop=True) for i in range(FILES)]


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose ``events`` source is the four files of ``_table``."""
    root = tmp_path_factory.mktemp("sketch") / "project"
    folder = root / "data" / "events"
    folder.mkdir(parents=True)
    (root / "keel.yaml").write_text(CONFIG)
    for i, part in enumerate(_table()):
        part.to_parquet(folder / f"part-{i}.parquet", index=False)
    return root


def _whole() -> pd.DataFrame:
    return pd.concat(_table(), ignore_index=True)


def _config(root: Path) -> KeelConfig:
    return KeelConfig.model_validate(yaml.safe_load((root / "keel.yaml").read_text()))


@pytest.fixture(scope="module")
def on_cluster(events: Path, cluster: Cluster) -> PartitionedReport:
    """The partitioned check of ``events`` run on the real two-worker cluster."""
    config = _config(events)
    table = resolve_table(events, "events", config.sources)
    engine = DaskEngine.connect(cluster.address, 30)
    try:
        source = config.sources["events"]
        return check_partitioned(engine, "events", source, table, NOW, lookups={TO: KNOWN})
    finally:
        engine.close()


@pytest.fixture(scope="module")
def on_local(events: Path) -> tuple[Profile, Report]:
    """The local engine's profile and report of the same rows as one batch."""
    with Batch.from_frame(_whole()) as batch:
        batch.con.register("known", pd.DataFrame({"value": list(KNOWN)}))
        batch.con.execute("CREATE TABLE keel_known AS SELECT value::VARCHAR AS value FROM known")
        profiled = profile(batch)
        context = Context(NOW, lookups={TO: "keel_known"})
        return profiled, validate(
            batch, "events", _config(events).sources["events"], profiled, context
        )


def _column(found: Profile, name: str) -> dict[str, object]:
    column = found.column(name)
    assert column is not None
    return column.__dict__


EXACT = ("type", "kind", "count", "nulls", "min", "max", "top")


@pytest.mark.parametrize("name", ["id", "amount", "plan", "customer", "seq", "flag"])
def test_merged_counts_equal_the_local_profile(
    on_cluster: PartitionedReport, on_local: tuple[Profile, Report], name: str
) -> None:
    """Counts, nulls, min, max and category counts of the merged profile are exactly the
    local engine's; mean and standard deviation agree to 1e-9 (relative)."""
    assert on_cluster.profile is not None
    merged, local = _column(on_cluster.profile, name), _column(on_local[0], name)
    assert {k: merged[k] for k in EXACT} == {k: local[k] for k in EXACT}
    for moment in ("mean", "std"):
        expected = local[moment]
        assert merged[moment] == (
            expected if expected is None else pytest.approx(expected, rel=1e-9)
        )


def test_merged_counts_match_pandas(on_cluster: PartitionedReport) -> None:
    """The merged profile's numbers for amount and plan are the ones pandas computes."""
    assert on_cluster.profile is not None
    whole = _whole()
    amount, plan = on_cluster.profile.column("amount"), on_cluster.profile.column("plan")
    assert amount is not None and plan is not None
    assert (amount.count, amount.nulls) == (len(whole), int(whole["amount"].isna().sum()))
    assert (amount.min, amount.max) == (whole["amount"].min(), whole["amount"].max())
    assert amount.std == pytest.approx(whole["amount"].std(), rel=1e-9)
    assert dict(plan.top) == whole["plan"].value_counts().to_dict()
    assert plan.distinct == whole["plan"].nunique()


@pytest.mark.parametrize("name", ["amount", "seq"])
def test_quantiles_are_within_the_sketch_rank_error(
    on_cluster: PartitionedReport, name: str
) -> None:
    """Each merged quantile's rank among the values (NumPy, exact) is within the KLL
    sketch's documented normalized rank error of the asked probability."""
    assert on_cluster.profile is not None
    column = on_cluster.profile.column(name)
    assert column is not None and len(column.quantiles) == len(QUANTILES)
    values = np.sort(_whole()[name].dropna().to_numpy(dtype=float))
    for probability, value in zip(QUANTILES, column.quantiles, strict=True):
        low = np.searchsorted(values, value, side="left") / len(values)
        high = np.searchsorted(values, value, side="right") / len(values)
        assert low - KLL_RANK_ERROR <= probability <= high + KLL_RANK_ERROR, (probability, value)


def test_distinct_customers_are_within_the_hll_error(on_cluster: PartitionedReport) -> None:
    """The distinct count of a many-valued column (HyperLogLog, lg k 12: 1.6% standard
    error) is within three standard errors of pandas' exact count."""
    assert on_cluster.profile is not None
    customer = on_cluster.profile.column("customer")
    assert customer is not None
    exact = _whole()["customer"].nunique()
    assert abs(customer.distinct - exact) <= 3 * 0.0163 * exact


def _violations(report: PartitionedReport, check: str) -> int:
    found = [f for p in report.partitions for f in p.findings if f.check == check]
    found += [f for f in report.merged if f.check == check]
    return sum(f.violations for f in found if f.status == "fail")


def _local(report: Report, check: str) -> Finding:
    (finding,) = [f for f in report.findings if f.check == check]
    return finding


def test_row_checks_count_what_the_local_engine_and_pandas_count(
    on_cluster: PartitionedReport, on_local: tuple[Profile, Report]
) -> None:
    """Range, allowed values and references: the partitions' violations add up to the
    local engine's count, which is pandas' count."""
    whole = _whole()
    expected = {
        "amount.range": int(((whole["amount"] < 0) | (whole["amount"] > 100)).sum()),
        "plan.allowed": int((~whole["plan"].isin(["basic", "standard", "premium"])).sum()),
        f"reference:customer->{TO}": int((~whole["customer"].isin(KNOWN)).sum()),
    }
    cluster = {check: _violations(on_cluster, check) for check in expected}
    local = {check: _local(on_local[1], check).violations for check in expected}
    assert cluster == local == expected


def test_failing_rows_are_named_by_file_and_row(on_cluster: PartitionedReport) -> None:
    """The three out-of-range amounts are reported in their files at their rows."""
    named = sorted(
        (Path(part.path).name, example[ROW])
        for part in on_cluster.partitions
        for finding in part.findings
        if finding.check == "amount.range"
        for example in finding.examples
    )
    assert named == [("part-0.parquet", 17), ("part-1.parquet", 500), ("part-3.parquet", 1001)]


def test_order_is_checked_across_file_boundaries(
    on_cluster: PartitionedReport, on_local: tuple[Profile, Report]
) -> None:
    """Rows whose seq is below their customer's previous seq: within files plus across
    boundaries the cluster counts what the local engine and pandas count, and the
    boundary row is named (file 2, row 0)."""
    whole = _whole()
    previous = whole.groupby("customer")["seq"].shift()
    expected = int((whole["seq"] < previous).sum())
    within = _violations(on_cluster, "ordered:seq within customer")
    across = [f for f in on_cluster.merged if f.check.endswith(".across_partitions")]
    assert len(across) == 1 and across[0].status == "fail"
    assert (
        within + across[0].violations
        == _local(on_local[1], "ordered:seq within customer").violations
    )
    assert within + across[0].violations == expected
    assert [(Path(e["partition"]).name, e[ROW]) for e in across[0].examples] == [
        ("part-2.parquet", 0)
    ]


def test_null_rate_is_judged_on_the_whole_table(
    on_cluster: PartitionedReport, on_local: tuple[Profile, Report]
) -> None:
    """max_null_rate is one finding on the merged profile, equal to the local engine's
    (120 nulls in 8,000 rows: 1.5%, above the 1% limit), not one per partition."""
    (merged,) = [f for f in on_cluster.merged if f.check == "amount.max_null_rate"]
    local = _local(on_local[1], "amount.max_null_rate")
    assert (merged.status, merged.violations) == (local.status, local.violations) == ("fail", 120)
    assert not [f for p in on_cluster.partitions for f in p.findings if "null_rate" in f.check]


def test_a_key_repeated_across_files_is_found(on_cluster: PartitionedReport) -> None:
    """id 3 is held by file 0 (row 3) and file 1 (row 1000): both rows are named."""
    (keys,) = [f for f in on_cluster.merged if f.check == "id.unique_across_partitions"]
    assert sorted((Path(e["partition"]).name, e[ROW]) for e in keys.examples) == [
        ("part-0.parquet", 3),
        ("part-1.parquet", 1000),
    ]
