"""Reading a source as of a data version (``keel.data.access.read_published``).

Expected rows are computed with pandas from the files the tests write.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from keel.data.access import read_published, versions_as_of
from keel.data.catalog import Catalog
from keel.data.ingestion import ingest
from keel.data.model import DataVersion
from keel.errors import DataVersionNotFound, SourceError
from keel.project import Project

CONFIG = """\
name: published
sources:
  orders:
    kind: csv
    path: data/orders/*.csv
    key: order_id
    key_policy: upsert
  snapshot:
    kind: python
    callable: loader.py:load
"""
LOADER = "import pandas as pd\n\ndef load():\n    return pd.read_csv('{path}')\n"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A project with a file source (orders) and a callable read whole (snapshot)."""
    (tmp_path / "data" / "orders").mkdir(parents=True)
    (tmp_path / "keel.yaml").write_text(CONFIG)
    snapshot = tmp_path / "data" / "snapshot.csv"
    (tmp_path / "loader.py").write_text(LOADER.format(path=snapshot))
    with Project.open(tmp_path) as opened:
        yield opened


def _orders(project: Project, name: str, frame: pd.DataFrame) -> str:
    frame.to_csv(project.root / "data" / "orders" / name, index=False)
    version = ingest(project, "orders")[0].version_id
    assert version is not None
    return version


def _version(name: str) -> DataVersion:
    return DataVersion(id=name, source="s", artifact="0" * 64, rows=1, schema={}, created_at=0)


def test_versions_as_of_is_a_prefix_or_a_snapshot() -> None:
    """Accumulating versions: every one up to ``upto``; snapshots: ``upto`` alone."""
    live = [_version("a"), _version("b"), _version("c")]
    assert [v.id for v in versions_as_of(live, live[1], snapshots=False)] == ["a", "b"]
    assert [v.id for v in versions_as_of(live, None, snapshots=False)] == ["a", "b", "c"]
    assert [v.id for v in versions_as_of(live, live[1], snapshots=True)] == ["b"]
    assert versions_as_of([], None, snapshots=False) == []


def test_versions_as_of_refuses_a_version_not_live() -> None:
    """An ``upto`` outside the live list is DataVersionNotFound, not a silent empty read."""
    with pytest.raises(DataVersionNotFound, match="is not a live version of source 's'"):
        versions_as_of([_version("a")], _version("gone"), snapshots=False)


def test_file_versions_add_up_and_columns_match_by_name(project: Project) -> None:
    """Two batches read back as one table; a column the first lacked is null there."""
    first = pd.DataFrame({"order_id": [1, 2], "amount": [5.0, 6.0]})
    second = pd.DataFrame({"order_id": [3], "amount": [7.0], "coupon": ["x"]})
    _orders(project, "a.csv", first)
    _orders(project, "b.csv", second)
    read = read_published(project, "orders")
    expected = pd.concat([first, second], ignore_index=True)
    assert read.frame["order_id"].tolist() == expected["order_id"].tolist()
    assert read.frame["coupon"].isna().sum() == expected["coupon"].isna().sum()
    assert [v.rows for v in read.versions] == [len(first), len(second)]


def test_callable_versions_are_whole_snapshots(project: Project) -> None:
    """A callable read whole each time: the source as of a version is that version alone."""
    path = project.root / "data" / "snapshot.csv"
    pd.DataFrame({"id": [1, 2, 3]}).to_csv(path, index=False)
    ingest(project, "snapshot")
    changed = pd.DataFrame({"id": [1, 2, 3, 4]})
    changed.to_csv(path, index=False)
    ingest(project, "snapshot")
    assert len(Catalog(project.store).versions("snapshot")) == 2
    assert read_published(project, "snapshot").frame["id"].tolist() == changed["id"].tolist()


def test_upsert_keeps_the_newest_row_of_each_key(project: Project) -> None:
    """With key_policy: upsert, a key seen again keeps only its newest row."""
    first = pd.DataFrame({"order_id": [1, 2, 3], "amount": [5.0, 6.0, 7.0]})
    second = pd.DataFrame({"order_id": [2, 4], "amount": [60.0, 8.0]})
    _orders(project, "a.csv", first)
    _orders(project, "b.csv", second)
    read = read_published(project, "orders")
    both = pd.concat([first, second], ignore_index=True)
    expected = both.drop_duplicates("order_id", keep="last").sort_values("order_id")
    got = read.frame.sort_values("order_id")
    assert got["amount"].tolist() == expected["amount"].tolist()


def test_unknown_source_names_the_sources(project: Project) -> None:
    """Reading a source keel.yaml does not declare is a SourceError listing the declared."""
    with pytest.raises(SourceError, match=r"'nope' .*\(sources: orders, snapshot\)"):
        read_published(project, "nope")


def test_no_version_reads_nothing(project: Project) -> None:
    """A source never ingested reads as no frame and no versions."""
    read = read_published(project, "orders")
    assert read.frame is None and read.versions == ()
