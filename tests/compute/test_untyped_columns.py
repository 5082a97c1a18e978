"""A partitioned source whose files include a month with no rows, or a column never filled
that month, as pandas writes them: such a column has Arrow's ``null`` type (no type at
all), and takes the other files' type, through ``keel ingest``, ``keel validate`` and
``keel data partitions``, on the local engine and on the real test cluster. A column of
another real type is still refused by name.

Every count is pandas' reading of the files, never Keel's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.data.access import read_version
from keel.data.catalog import Catalog
from keel.project import Project
from tests.cluster import Cluster

CONFIG = """\
name: shop
sources:
  orders:
    kind: parquet
    path: data/orders/
    partitioned: true
    key: order_id
    checks:
      columns:
        order_id: {type: int}
        customer: {type: string, not_null: true}
        amount: {type: float, range: [0, 1000]}
        coupon: {type: string}
"""
TYPES = {"order_id": "int64", "customer": "string", "amount": "double", "coupon": "string"}


def _month(start: int, rows: int, coupons: bool) -> pd.DataFrame:
    """Orders as an export writes them: text columns of dtype object; ``coupons`` False
    leaves the coupon column without any value (None in every row)."""
    rng = np.random.default_rng(start)
    coupon = [f"SAVE{i}" if i % 3 else None for i in range(rows)] if coupons else [None] * rows
    return pd.DataFrame(
        {
            "order_id": np.arange(start, start + rows, dtype="int64"),
            "customer": pd.Series([f"c{i}" for i in rng.integers(0, 40, rows)], dtype=object),
            "amount": rng.uniform(0, 1000, rows).round(2),
            "coupon": pd.Series(coupon, dtype=object),
        }
    )


def _empty() -> pd.DataFrame:
    """A month with no rows, as pandas writes it: its object columns typed null."""
    return pd.DataFrame(
        {
            "order_id": pd.Series([], dtype="int64"),
            "customer": pd.Series([], dtype=object),
            "amount": pd.Series([], dtype=float),
            "coupon": pd.Series([], dtype=object),
        }
    )


def _shop(root: Path, compute: str = "") -> Path:
    """Four monthly files: January has no rows (sorted first), February's coupon column is
    never filled, March and April are complete."""
    folder = root / "data" / "orders"
    folder.mkdir(parents=True)
    (root / "keel.yaml").write_text(CONFIG + compute)
    _empty().to_parquet(folder / "2026-01.parquet", index=False)
    _month(0, 120, coupons=False).to_parquet(folder / "2026-02.parquet", index=False)
    _month(120, 90, coupons=True).to_parquet(folder / "2026-03.parquet", index=False)
    _month(210, 60, coupons=True).to_parquet(folder / "2026-04.parquet", index=False)
    return root


@pytest.fixture(params=["local", "dask"])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """The shop on the local engine, and on the test cluster (100-row partitions); on the
    cluster, every test's partitions must have been checked there."""
    if request.param == "local":
        yield _shop(tmp_path / "shop")
        return
    cluster: Cluster = request.getfixturevalue("cluster")
    compute = f"compute:\n  engine: dask\n  address: {cluster.address}\n  partition_rows: 100\n"
    before = _checked_on(cluster)
    yield _shop(tmp_path / "shop", compute)
    assert _checked_on(cluster) - before


def _checked_on(cluster: Cluster) -> set[str]:
    """The partition checks the scheduler's recent transitions show finished (it names
    Keel's tasks ``keel-<function>-<token>-<i>``; its log keeps the latest transitions
    only, so a test compares the keys, not their number)."""
    from distributed import Client

    def finished(dask_scheduler: Any) -> list[str]:
        log = getattr(dask_scheduler, "transition_log", ())
        return [str(entry[0]) for entry in log if entry[2] == "memory"]

    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        keys = client.run_on_scheduler(finished)
    return {key for key in keys if key.startswith(("keel-_check_item-", "keel-check_part-"))}


def _files(root: Path) -> list[Path]:
    return sorted((root / "data" / "orders").glob("*.parquet"))


def _whole(root: Path) -> pd.DataFrame:
    """Every file's rows, read by pandas."""
    return pd.concat([pd.read_parquet(f) for f in _files(root)], ignore_index=True)


def _keel(root: Path, *args: str) -> tuple[int, Any]:
    """``keel <args> --json`` on the project: its exit code and its JSON (``keel ingest``:
    its runs)."""
    done = CliRunner().invoke(app, [*args, "--json", "--project", str(root)])
    try:
        found = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(done.stdout + repr(done.exception)) from None
    return done.exit_code, found["runs"] if args[0] == "ingest" else found


def _shown(root: Path) -> dict[str, Any]:
    """``keel data show`` of the source's newest version."""
    with Project.open(root) as project:
        latest = Catalog(project.store).latest("orders")
    assert latest is not None
    code, shown = _keel(root, "data", "show", latest.id[:12])
    assert code == 0, shown
    return dict(shown)


def test_the_files_have_columns_without_a_type(tmp_path: Path) -> None:
    """The premise, read by pyarrow: pandas types January's text columns and February's
    coupon column as null."""
    root = _shop(tmp_path / "shop")
    january, february, march, _ = (pq.read_schema(f) for f in _files(root))
    assert str(january.field("customer").type) == "null"
    assert str(january.field("coupon").type) == "null"
    assert str(february.field("coupon").type) == "null"
    assert str(march.field("coupon").type) in ("string", "large_string")


def test_ingest_publishes_the_real_types_and_counts(shop: Path) -> None:
    """``keel ingest`` publishes the four files as one version: its rows and each column's
    nulls are pandas' counts, its schema the filled files' types (not NULL)."""
    code, runs = _keel(shop, "ingest")
    assert code == 0, runs
    (run,) = runs
    assert run["status"] == "published", run["message"]
    whole = _whole(shop)
    assert run["rows"] == len(whole) == 270
    shown = _shown(shop)
    assert shown["schema"] == {
        "order_id": "BIGINT",
        "customer": "VARCHAR",
        "amount": "DOUBLE",
        "coupon": "VARCHAR",
    }
    columns = {c["name"]: c for c in shown["profile"]["columns"]}
    for name in TYPES:
        assert columns[name]["count"] == len(whole)
        assert columns[name]["nulls"] == int(whole[name].isna().sum())
    assert columns["coupon"]["distinct"] == whole["coupon"].nunique()


def test_the_published_rows_read_back_as_pandas_reads_the_files(shop: Path) -> None:
    """The version's rows (its files in order, January's untyped columns first) are the
    files' rows as pandas reads them."""
    code, runs = _keel(shop, "ingest")
    assert code == 0 and runs[0]["status"] == "published", runs
    with Project.open(shop) as project:
        latest = Catalog(project.store).latest("orders")
        assert latest is not None
        rows = read_version(project, latest)
    expected = _whole(shop)
    pd.testing.assert_frame_equal(
        rows.astype(object).where(rows.notna(), None),
        expected.astype(object).where(expected.notna(), None),
        check_dtype=False,
    )


def test_validate_latest_checks_the_published_partitions(shop: Path) -> None:
    """``keel validate --latest`` on the version passes its type checks, and a tighter
    range fails the rows pandas counts."""
    assert _keel(shop, "ingest")[0] == 0
    config = (shop / "keel.yaml").read_text().replace("range: [0, 1000]", "range: [0, 500]")
    (shop / "keel.yaml").write_text(config)
    code, report = _keel(shop, "validate", "--source", "orders", "--latest")
    assert code == 1, report
    failing = [f for f in report["findings"] if f["status"] == "fail" and f["severity"] != "warn"]
    assert {f["check"] for f in failing} == {"amount.range"}
    assert sum(f["violations"] for f in failing) == int((_whole(shop)["amount"] > 500).sum())


def test_data_partitions_accepts_the_untyped_columns(shop: Path) -> None:
    """``keel data partitions`` versions the same files with the filled files' types."""
    code, report = _keel(shop, "data", "partitions", "--source", "orders")
    assert code == 0, report
    assert report["manifest"]["rows"] == len(_whole(shop))
    assert dict(map(tuple, report["manifest"]["schema"])) == {
        "order_id": "BIGINT",
        "customer": "VARCHAR",
        "amount": "DOUBLE",
        "coupon": "VARCHAR",
    }


def test_a_column_filled_for_the_first_time_types_the_unchanged_files(shop: Path) -> None:
    """Before April the coupon column is never filled: the version's coupon is untyped
    (no type declared for it: a declared type fails a column that has none). When April
    arrives with coupons, the unchanged files are checked again with coupon as text, so
    the new version's coupon is VARCHAR with pandas' null count."""
    config = (shop / "keel.yaml").read_text().replace("coupon: {type: string}", "coupon: {}")
    (shop / "keel.yaml").write_text(config)
    april = _files(shop)[-1]
    kept = april.read_bytes()
    april.unlink()
    (shop / "data" / "orders" / "2026-03.parquet").unlink()
    _month(120, 90, coupons=False).to_parquet(shop / "data" / "orders" / "2026-03.parquet")
    code, runs = _keel(shop, "ingest")
    assert code == 0 and runs[0]["status"] == "published", runs
    assert _shown(shop)["schema"]["coupon"] == '"NULL"'
    april.write_bytes(kept)
    code, runs = _keel(shop, "ingest")
    assert code == 0 and runs[0]["status"] == "published", runs
    shown = _shown(shop)
    assert shown["schema"]["coupon"] == "VARCHAR"
    whole = _whole(shop)
    coupon = next(c for c in shown["profile"]["columns"] if c["name"] == "coupon")
    assert coupon["nulls"] == int(whole["coupon"].isna().sum()) and coupon["count"] == len(whole)


def test_a_column_of_another_type_is_still_refused(tmp_path: Path) -> None:
    """A file whose customer column holds integers is refused by name, in one sentence
    (before any engine runs)."""
    shop = _shop(tmp_path / "shop")
    folder = shop / "data" / "orders"
    _month(330, 20, coupons=True).assign(customer=lambda f: f["order_id"] * 7).to_parquet(
        folder / "2026-05.parquet", index=False
    )
    done = CliRunner().invoke(app, ["ingest", "--project", str(shop)])
    said = " ".join(done.stdout.split())
    assert done.exit_code == 1, said
    assert (
        "data/orders/2026-05.parquet has another schema than the other partitions: "
        "customer BIGINT (not VARCHAR); give all one schema"
    ) in said
    assert "coupon" not in said and "Traceback" not in said


def test_a_csv_folder_with_an_empty_column_takes_the_filled_files_type(tmp_path: Path) -> None:
    """A folder of CSV files (one of them with a column never filled, read as text on its
    own) is one batch whose column has the other file's type; nulls as pandas counts."""
    root = tmp_path / "csvs"
    (root / "data").mkdir(parents=True)
    (root / "keel.yaml").write_text(
        "name: csvs\nsources:\n  visits:\n    kind: csv\n    path: data/\n"
        "    checks:\n      columns:\n        score: {type: int}\n"
    )
    pd.DataFrame({"id": [1, 2, 3], "score": [None, None, None]}).to_csv(
        root / "data" / "a.csv", index=False
    )
    pd.DataFrame({"id": [4, 5], "score": [7, 9]}).to_csv(root / "data" / "b.csv", index=False)
    code, runs = _keel(root, "ingest")
    assert code == 0 and runs[0]["status"] == "published", runs
    whole = pd.concat([pd.read_csv(f) for f in sorted((root / "data").glob("*.csv"))])
    with Project.open(root) as project:
        latest = Catalog(project.store).latest("visits")
    assert latest is not None
    assert latest.schema["score"] == "BIGINT"
    assert latest.profile is not None
    score = latest.profile.column("score")
    assert score is not None and score.nulls == int(whole["score"].isna().sum())
    assert latest.rows == len(whole)


@pytest.mark.parametrize("partitioned", [False, True])
def test_a_column_never_filled_anywhere_passes_its_declared_type(
    tmp_path: Path, partitioned: bool
) -> None:
    """A coupon column None in every row of every file has no type at all: it holds no
    value of another type, so its declared ``type: string`` passes (its nulls are pandas'
    count) and the version publishes."""
    root = tmp_path / "shop"
    folder = root / "data" / "orders"
    folder.mkdir(parents=True)
    config = CONFIG if partitioned else CONFIG.replace("    partitioned: true\n", "")
    if not partitioned:
        config = config.replace("path: data/orders/", "path: data/orders/2026-02.parquet")
    (root / "keel.yaml").write_text(config)
    _month(0, 120, coupons=False).to_parquet(folder / "2026-02.parquet", index=False)
    if partitioned:
        _month(120, 90, coupons=False).to_parquet(folder / "2026-03.parquet", index=False)
    whole = _whole(root)
    assert whole["coupon"].isna().all()
    code, runs = _keel(root, "ingest")
    assert code == 0 and runs[0]["status"] == "published", runs
    with Project.open(root) as project:
        latest = Catalog(project.store).latest("orders")
    assert latest is not None and latest.profile is not None
    coupon = latest.profile.column("coupon")
    assert coupon is not None and coupon.nulls == len(whole) == latest.rows
