"""A reference computed partition by partition (``reference_from_partitions``) equals the
one drawn from the whole table in one frame, and its bins are numpy's quantiles.

Real Parquet files (written by pandas), read by DuckDB in each pass, on the local engine
(the Dask cluster runs the same tasks: tests/compute/test_drift_data_reference.py). The
whole table is read by pandas; bin edges are checked against ``np.quantile`` on the raw
column, not against Keel.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.compute.local import LocalEngine
from keel.monitoring.data_reference import _lerp, quantiles_of, reference_from_partitions
from keel.monitoring.reference import Reference
from tests.helpers import keel

KINDS = (
    ("amount", "numeric"),
    ("visits", "numeric"),
    ("refund", "numeric"),
    ("plan", "categorical"),
    ("city", "categorical"),
)


def _part(rows: int, seed: int) -> pd.DataFrame:
    """A continuous column with nulls, a count, a mostly-zero amount, a category with
    nulls and a long tail of cities (many seen once)."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(50, 10, rows)
    amount[rng.choice(rows, rows // 40, replace=False)] = np.nan
    refund = np.where(rng.random(rows) < 0.7, 0.0, rng.exponential(20, rows).round(2))
    plan = rng.choice(np.array(["basic", "plus", "pro", None], dtype=object), rows)
    return pd.DataFrame(
        {
            "amount": amount,
            "visits": rng.poisson(3, rows),
            "refund": refund,
            "plan": plan,
            "city": [f"c{int(v)}" for v in rng.zipf(1.6, rows)],
        }
    )


def _files(folder: Path, sizes: list[int]) -> tuple[list[str], pd.DataFrame]:
    folder.mkdir()
    paths = []
    for i, rows in enumerate(sizes):
        path = folder / f"part-{i}.parquet"
        _part(rows, seed=i + 1).to_parquet(path, index=False)
        paths.append(str(path))
    whole = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    return paths, whole


def _same_reference(got: Reference, expected: Reference) -> None:
    assert got.layout.to_dict() == expected.layout.to_dict()
    assert got.sketch.to_dict() == expected.sketch.to_dict()
    assert got.rows == expected.rows
    assert dict(got.singletons) == dict(expected.singletons)
    assert list(got.sample) == list(expected.sample)
    for name, values in expected.sample.items():
        mine = got.sample[name]
        assert mine.dtype == values.dtype
        assert list(pd.isna(mine)) == list(pd.isna(values))
        present = ~pd.isna(values)
        assert list(mine[present]) == list(values[present])


@pytest.mark.parametrize("grid", [8, 8192])
def test_partition_by_partition_equals_the_whole_table(tmp_path: Path, grid: int) -> None:
    """Four partitions (one empty of rows of its own but a few) give the reference
    ``Reference.from_frame`` draws from the four in one frame: bins, counts, known
    categories, singletons and the row sample; a grid of 8 ranks per partition makes the
    quantiles' brackets wide, and they still hold the exact values."""
    paths, whole = _files(tmp_path / "t", [3_000, 5, 2_500, 1_700])
    names = [name for name, _ in KINDS]
    expected = Reference.from_frame(whole[names], columns=names, sample=1_000, seed=4)
    got = reference_from_partitions(
        LocalEngine(), paths, [3_000, 5, 2_500, 1_700], KINDS, sample=1_000, seed=4, grid=grid
    )
    _same_reference(got, expected)


def test_the_bins_are_numpys_quantiles_of_the_raw_column(tmp_path: Path) -> None:
    """The continuous column's inner edges are ``np.quantile`` of its finite values at 0,
    1/100, ..., 1; the last lies just past the maximum; the count column has a bucket of
    one value for each of its values; the cities' categories are pandas' 50 most frequent."""
    paths, whole = _files(tmp_path / "t", [4_000, 3_001])
    got = reference_from_partitions(LocalEngine(), paths, [4_000, 3_001], KINDS, grid=64)
    amount = whole["amount"].dropna().to_numpy()
    quantiles = np.quantile(amount, np.linspace(0, 1, 101))
    edges = np.asarray(got.layout.columns["amount"].edges)
    assert np.array_equal(edges[:-1], quantiles[:-1])
    assert edges[-1] == np.nextafter(amount.max(), np.inf)
    visits = np.sort(whole["visits"].unique()).astype(float)
    points = np.unique(np.concatenate([visits, np.nextafter(visits, np.inf)]))
    assert got.layout.columns["visits"].edges == tuple(points)  # [v, nextafter(v)) each
    counts = whole["city"].value_counts()
    top = sorted(counts.index, key=lambda c: (-counts[c], c))[:50]
    assert got.layout.columns["city"].categories == tuple(top)
    assert got.singletons["city"] == int((counts == 1).sum())


class _Received:
    """The local engine, noting the pickled size of every result it hands the caller
    (what a cluster would send to the client)."""

    name = "local"

    def __init__(self) -> None:
        self.engine = LocalEngine()
        self.sizes: list[int] = []

    def map(self, fn: Any, shared: Any, items: Any) -> Generator[tuple[int, Any], None, None]:
        for position, result in self.engine.map(fn, shared, items):
            self.sizes.append(len(pickle.dumps(result)))
            yield position, result

    def shuffle(self, fn: Any, shared: Any, items: Any, buckets: int, reduce: Any) -> Any:
        for what, position, result in self.engine.shuffle(fn, shared, items, buckets, reduce):
            self.sizes.append(len(pickle.dumps(result)))
            yield what, position, result

    def held(self, fetch: Any, items: Any) -> Any:
        return self.engine.held(fetch, items)

    def close(self) -> None:
        self.engine.close()


def test_a_column_of_many_distinct_values_stays_on_the_workers(tmp_path: Path) -> None:
    """200,000 order ids over four partitions, each seen once but a few: the reference
    equals ``Reference.from_frame`` (no known-value set past 10,000 values, the singletons
    pandas counts, the 50 most frequent), and no result handed back holds the ids: the
    largest (a partition's numeric ranks, bounded by the grid) is a small fraction of the
    ids' own pickled size, as the values each bucket sends are bounded by 10,000."""
    rng = np.random.default_rng(5)
    folder = tmp_path / "t"
    folder.mkdir()
    sizes = [60_000, 45_000, 55_000, 40_000]
    paths = []
    for i, rows in enumerate(sizes):
        orders = [f"order-{i}-{j}" for j in range(rows)]
        orders[:30] = [f"repeat-{k % 60}" for k in range(30 * i, 30 * i + 30)]
        frame = pd.DataFrame({"order": orders, "amount": rng.normal(size=rows)})
        frame.to_parquet(folder / f"part-{i}.parquet", index=False)
        paths.append(str(folder / f"part-{i}.parquet"))
    whole = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    kinds = (("order", "categorical"), ("amount", "numeric"))
    expected = Reference.from_frame(whole, columns=["order", "amount"], sample=500, seed=2)
    engine = _Received()
    got = reference_from_partitions(engine, paths, sizes, kinds, sample=500, seed=2)
    _same_reference(got, expected)
    counts = whole["order"].value_counts()
    assert got.singletons["order"] == int((counts == 1).sum()) == 200_000 - 120
    assert got.layout.known.get("order", frozenset()) == frozenset()
    everything = len(pickle.dumps(set(whole["order"])))
    assert max(engine.sizes) < everything / 10, (max(engine.sizes), everything)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 999, 1000, 1001, 4097])
def test_the_order_statistics_interpolate_as_numpy_does(n: int) -> None:
    """``quantiles_of`` picks the ranks and weights ``np.quantile``'s linear method uses:
    interpolating the sorted values at them gives its result bit for bit."""
    values = np.sort(np.random.default_rng(n).lognormal(0, 3, n))
    below, above, gamma = quantiles_of(n, 100)
    expected = np.quantile(values, np.linspace(0, 1, 101))
    assert np.array_equal(_lerp(values[below], values[above], gamma), expected)


CONFIG = """\
name: badreference
sources:
  orders:
    kind: parquet
    path: data/orders/
    partitioned: true
training:
  target: label
{features}
monitoring:
  reference: {reference}
  window: 3650d
"""


def _project(root: Path, reference: str, features: str = "") -> Path:
    """One ingested partitioned source (amount, plan, label) and 50 logged predictions."""
    folder = root / "data" / "orders"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in "ab":
        pd.DataFrame(
            {"amount": rng.normal(size=30), "plan": "basic", "label": rng.choice(["y", "n"], 30)}
        ).to_parquet(folder / f"{name}.parquet", index=False)
    (root / "keel.yaml").write_text(CONFIG.format(reference=reference, features=features))
    assert _cli(root, "ingest", "--source", "orders")[0] == 0
    from keel.monitoring.log import PredictionLog
    from keel.project import Project

    entries = [
        {"inputs": {"amount": float(v), "plan": "basic"}, "output": 0.5, "model_version": "m@1"}
        for v in rng.normal(size=50)
    ]
    with Project.open(root) as opened, PredictionLog.for_project(opened) as log:
        log.append(entries)
        log.flush()
    return root


def _cli(root: Path, *args: str) -> tuple[int, str]:
    done = keel(*args, cwd=root)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("reference", "features", "said"),
    [
        (
            "data:refunds",
            "",
            "monitoring.reference names data:refunds, but keel.yaml declares no source "
            "'refunds' (sources: orders); name a declared source",
        ),
        (
            "data:orders@ffff0000",
            "",
            "monitoring.reference names data:orders@ffff0000, but 'orders' has no data version "
            "starting with 'ffff0000'; pick one from `keel data list --source orders`",
        ),
        (
            "data:orders",
            "  features: [age, income]",
            "has none of the model's feature columns (age, income); name a version of the "
            "source the model was trained on",
        ),
    ],
)
def test_a_bad_data_reference_is_one_sentence(
    tmp_path: Path, reference: str, features: str, said: str
) -> None:
    """An unknown source, an unknown version, a version without the model's features:
    ``keel drift`` exits 1 with one sentence, no traceback, and no warning before it (the
    log's sketcher needs the same reference)."""
    root = _project(tmp_path / "p", reference, features)
    done = keel("drift", cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and said in line, line


def test_data_version_reference_by_prefix_and_latest(tmp_path: Path) -> None:
    """``data:orders@<prefix>`` and ``data:orders`` name the ingested version: the
    reference holds its 60 rows and the window's 50."""
    root = _project(tmp_path / "p", "data:orders")
    code, out = _cli(root, "data", "list", "--json")
    assert code == 0, out
    (listed,) = json.loads(out)
    version = listed["id"]
    for reference in ("data:orders", f"data:orders@{version[:8]}"):
        config = root / "keel.yaml"
        text = config.read_text().splitlines()
        text = [f"  reference: {reference}" if "reference:" in t else t for t in text]
        config.write_text("\n".join(text) + "\n")
        code, out = _cli(root, "drift", "--json")
        assert code in (0, 2), out
        found = json.loads(out)
        assert (found["rows"], found["reference_rows"]) == (50, 60)
