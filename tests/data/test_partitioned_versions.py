"""Reading a partitioned source's data version (a manifest of partition files) back: the
version is the whole table, so readers see every partition's rows in file order, and a
newer manifest replaces the older one instead of adding to it.

Each path a user reaches is driven through the CLI where one exists (``keel ingest``,
``keel train`` with ``training.data: SOURCE``, ``keel features build-training-set``);
expected rows come from pandas reading the Parquet files, never from Keel.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.data.access import read_published, read_version
from keel.data.catalog import Catalog
from keel.project import Project
from keel.training.data import resolve_training_frame
from tests.helpers import keel

CONFIG = """\
name: shop
sources:
  orders:
    kind: parquet
    path: data/orders/
    partitioned: true
    key: order_id
    timestamp: ordered_at
training:
  data: orders
  target: label
  exclude: [order_id, ordered_at, customer_id]
  model: {estimator: sklearn.ensemble.HistGradientBoostingClassifier, params: {max_iter: 20}}
  seed: 3
features:
  module: features.py
"""

FEATURES = """\
from keel.features import FeatureView

spend = FeatureView(
    name="spend", source="orders", entity="customer_id", timestamp="ordered_at",
    features=("amount",),
)
"""

START = pd.Timestamp("2026-05-01")


def orders(start: int, rows: int) -> pd.DataFrame:
    """Orders ``start``.. with a few null amounts, times unique across every file."""
    rng = np.random.default_rng(start)
    amount = rng.uniform(0, 100, rows).round(2)
    amount[rng.choice(rows, 3, replace=False)] = np.nan
    return pd.DataFrame(
        {
            "order_id": np.arange(start, start + rows),
            "customer_id": [f"c{i}" for i in rng.integers(0, 12, rows)],
            "amount": amount,
            "label": rng.choice(["yes", "no"], rows),
            "ordered_at": START + pd.to_timedelta(np.arange(start, start + rows) * 60, "s"),
        }
    )


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A project whose partitioned source ``orders`` is three Parquet files (ids 0-99,
    100-179, 180-239), and a feature view over it."""
    root = tmp_path / "shop"
    folder = root / "data" / "orders"
    folder.mkdir(parents=True)
    (root / "keel.yaml").write_text(CONFIG)
    (root / "features.py").write_text(FEATURES)
    for name, (start, rows) in zip("abc", ((0, 100), (100, 80), (180, 60)), strict=True):
        orders(start, rows).to_parquet(folder / f"{name}.parquet", index=False)
    return root


def cli(root: Path, *args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, [*args, "--project", str(root)])
    return done.exit_code, done.stdout + done.stderr


def ingest(root: Path) -> dict[str, object]:
    code, out = cli(root, "ingest", "--source", "orders", "--json")
    assert code == 0, out
    (run,) = json.loads(out)["runs"]
    assert run["status"] == "published", run
    found: dict[str, object] = run
    return found


def table(root: Path) -> pd.DataFrame:
    """The files of ``data/orders`` now, in name order, read by pandas."""
    files = sorted((root / "data" / "orders").glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def same_rows(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal values row for row (DuckDB and pyarrow pick different but equal dtypes)."""
    found = found.astype({"ordered_at": "datetime64[ns]"})
    pd.testing.assert_frame_equal(
        found.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )


def change_last_file(root: Path) -> None:
    """c.parquet now holds 70 other orders (ids 180-249)."""
    orders(180, 70).assign(amount=7.0).to_parquet(root / "data" / "orders" / "c.parquet")


def test_read_version_gives_every_partition_in_file_order(shop: Path) -> None:
    """``read_version`` of a manifest version is the three files' rows, in file order."""
    run = ingest(shop)
    with Project.open(shop) as project:
        frame = read_version(project, Catalog(project.store).get(str(run["version_id"])))
    same_rows(frame, table(shop))


def test_a_newer_manifest_replaces_the_older_one(shop: Path) -> None:
    """After a file changes and a second manifest publishes, the source's rows are the
    files as they are now (250 rows), not both versions' rows added up (490)."""
    ingest(shop)
    change_last_file(shop)
    second = ingest(shop)
    with Project.open(shop) as project:
        published = read_published(project, "orders")
    assert [v.id for v in published.versions] == [second["version_id"]]
    same_rows(published.frame, table(shop))


def test_training_data_as_of_an_older_manifest_version(shop: Path) -> None:
    """``training.data: orders@<first version>`` reads the first manifest's files (the
    old c.parquet), not the newer one's."""
    before = table(shop)
    first = ingest(shop)
    change_last_file(shop)
    ingest(shop)
    found = resolve_training_frame(shop, f"orders@{str(first['version_id'])[:12]}")
    same_rows(found.frame, before)
    assert found.lineage is not None and found.lineage["rows"] == len(before) == 240


def test_keel_train_on_a_partitioned_source(shop: Path) -> None:
    """``keel train`` with ``training.data: orders`` trains on the newest manifest: the
    version's data lineage names that one version and the 250 rows pandas counts."""
    ingest(shop)
    change_last_file(shop)
    second = ingest(shop)
    code, out = cli(shop, "train", "--json")
    assert code == 0, out
    code, out = cli(shop, "registry", "show", "1", "--json")
    assert code == 0, out
    lineage = json.loads(out)["record"]["data"]["lineage"]
    assert lineage["versions"] == [{"id": second["version_id"], "rows": 250}]
    assert lineage["rows"] == len(table(shop)) == 250


def test_a_feature_view_over_a_partitioned_source(shop: Path, tmp_path: Path) -> None:
    """``keel features build-training-set`` joins each label to its customer's newest
    order at or before the label time, over every partition of the newest manifest
    (pandas ``merge_asof`` on the files as they are now)."""
    ingest(shop)
    change_last_file(shop)
    ingest(shop)
    rows = table(shop)
    labels = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(12)] * 2,
            "timestamp": [START + pd.Timedelta(minutes=m) for m in [60] * 12 + [245] * 12],
        }
    )
    labels.to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "set.parquet"
    code, said = cli(
        shop, "features", "build-training-set", "--labels", str(tmp_path / "labels.csv"),
        "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 0, said
    built = pd.read_parquet(out)
    left = labels.assign(_row=range(len(labels))).sort_values("timestamp")
    expected = pd.merge_asof(
        left,
        rows[["customer_id", "ordered_at", "amount"]].sort_values("ordered_at"),
        left_on="timestamp",
        right_on="ordered_at",
        by="customer_id",
    ).set_index("_row").sort_index()  # fmt: skip
    assert built["amount"].tolist() == pytest.approx(expected["amount"].tolist(), nan_ok=True)
    assert built["amount"].notna().sum() > 12  # the changed file's 7.0 amounts joined too
    assert (built["amount"] == 7.0).sum() == (expected["amount"] == 7.0).sum() > 0


def test_a_plain_version_after_a_manifest_is_refused_for_training(shop: Path) -> None:
    """With ``partitioned: true`` taken off (and ``key_policy: warn``, as every key is in
    the manifest), the next ingest publishes the files again as a plain batch; ``keel
    train`` then refuses with one sentence naming it instead of counting rows twice."""
    ingest(shop)
    config = (shop / "keel.yaml").read_text().replace("    partitioned: true\n", "")
    warn = config.replace("key: order_id", "key: order_id\n    key_policy: warn")
    (shop / "keel.yaml").write_text(warn)
    plain = ingest(shop)
    done = keel("train", "--json", "--project", str(shop))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "ingested without partitioned: true after the partitioned version" in done.stderr
    assert str(plain["version_id"])[:12] in done.stderr


def test_a_plain_ingest_after_a_manifest_checks_keys_against_its_partitions(
    shop: Path,
) -> None:
    """With ``partitioned: true`` taken off, the files ingested again as one plain batch
    repeat every key the manifest's partitions hold: ``order_id.unique_history`` names
    all 240 rows (pandas counts them) and the batch is quarantined."""
    ingest(shop)
    config = (shop / "keel.yaml").read_text().replace("    partitioned: true\n", "")
    (shop / "keel.yaml").write_text(config)
    code, out = cli(shop, "ingest", "--source", "orders", "--json")
    assert code == 1, out
    (run,) = json.loads(out)["runs"]
    assert run["status"] == "quarantined", run
    (finding,) = [f for f in run["report"]["findings"] if f["check"] == "order_id.unique_history"]
    assert finding["violations"] == table(shop)["order_id"].nunique() == 240


def test_upsert_on_a_partitioned_source_is_the_newest_manifest_whole(shop: Path) -> None:
    """With ``key_policy: upsert``, a key whose file left the folder is gone from the
    source's rows (the newest manifest is the whole table; upserting older versions' rows
    would keep it): the rows are a.parquet and c.parquet as pandas reads them."""
    config = (shop / "keel.yaml").read_text()
    (shop / "keel.yaml").write_text(
        config.replace("key: order_id", "key: order_id\n    key_policy: upsert")
    )
    ingest(shop)
    (shop / "data" / "orders" / "b.parquet").unlink()
    ingest(shop)
    with Project.open(shop) as project:
        published = read_published(project, "orders")
    same_rows(published.frame, table(shop))
    assert len(published.frame) == 100 + 60
