"""Key uniqueness across files as a hash shuffle on the engine: each file's keys are cut
into buckets by a hash, one task per bucket finds the values more than one file holds,
and only those rows come back. Every expectation is computed here with pandas
(``duplicated(keep=False)`` over the concatenated files), on the local engine and on a
real two-worker cluster."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from keel.compute.dask import DaskEngine
from keel.compute.engine import ShuffleEngine
from keel.compute.local import LocalEngine
from keel.data.partitioned import ROW, task_connection, unique_across, unique_findings
from keel.schema import SourceConfig
from tests.compute.conftest import Cluster

FILES, ROWS = 5, 400


def _files(seed: int = 3) -> list[pd.DataFrame]:
    """Five files whose ``id`` repeats within a file and across files (including a value
    in three files), with null ids; ``region`` + ``n`` is a composite key drawn from few
    values (many clashes), some rows missing one of the two."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(FILES):
        ids = pd.array(rng.integers(0, 3000, ROWS), dtype="Int64")
        ids[rng.choice(ROWS, 15, replace=False)] = pd.NA
        region = pd.array(rng.choice(["north", "south", "east"], ROWS), dtype="string")
        region[rng.choice(ROWS, 10, replace=False)] = pd.NA
        n = pd.array(rng.integers(0, 150, ROWS), dtype="Int64")
        n[rng.choice(ROWS, 10, replace=False)] = pd.NA
        frames.append(pd.DataFrame({"id": ids, "region": region, "n": n}))
    frames[0].loc[7, "id"] = 99_999  # one value in three files, and twice in the last
    frames[2].loc[300, "id"] = 99_999
    frames[4].loc[[0, 399], "id"] = 99_999
    frames[1].loc[[5, 6], "id"] = 88_888  # twice within one file only: not across files
    return frames


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """The five files as Parquet, as (where to read, how to name) pairs."""
    root = tmp_path_factory.mktemp("unique")
    pairs = []
    for i, frame in enumerate(_files()):
        path = root / f"part-{i}.parquet"
        frame.to_parquet(path, index=False)
        pairs.append((str(path), path.name))
    return pairs


@pytest.fixture(params=["local", "dask"])
def engine(request: pytest.FixtureRequest) -> Iterator[ShuffleEngine]:
    """The local engine, and a client of the real two-worker cluster."""
    if request.param == "local":
        yield LocalEngine()
        return
    cluster: Cluster = request.getfixturevalue("cluster")
    connected = DaskEngine.connect(cluster.address, 30)
    try:
        yield connected
    finally:
        connected.close()


def _config(key: str | list[str]) -> SourceConfig:
    return SourceConfig.model_validate({"kind": "parquet", "path": "x", "key": key})


def _expected(columns: list[str]) -> set[tuple[str, int]]:
    """(file, row) of every row whose key (no column null) is duplicated in the whole
    table (pandas ``duplicated(keep=False)``) by a row of another file."""
    frames = [
        f.assign(file=f"part-{i}.parquet", row=np.arange(len(f))) for i, f in enumerate(_files())
    ]
    whole = pd.concat(frames, ignore_index=True).dropna(subset=columns)
    repeated = whole[whole.duplicated(columns, keep=False)]
    files = repeated.groupby(columns)["file"].transform("nunique")
    spanning = repeated[files > 1]
    return set(zip(spanning["file"], spanning["row"].astype(int), strict=True))


def _found(
    engine: ShuffleEngine, pairs: list[tuple[str, str]], key: str | list[str]
) -> pd.DataFrame:
    config = _config(key)
    found = unique_across(engine, config, pairs, limit=None)
    (name,) = found
    count, rows = found[name]
    assert count == len(rows)
    return rows


def test_every_row_of_a_value_in_several_files_is_found(
    engine: ShuffleEngine, folder: list[tuple[str, str]]
) -> None:
    """A single key: the rows found are exactly pandas' duplicates whose value another
    file holds (a value in three files, one repeated within a file, nulls never clash)."""
    rows = _found(engine, folder, "id")
    assert set(zip(rows["partition"], rows[ROW], strict=True)) == _expected(["id"])
    assert 99_999 in set(rows["id"]) and 88_888 not in set(rows["id"])


def test_a_composite_key_clashes_only_on_every_column(
    engine: ShuffleEngine, folder: list[tuple[str, str]]
) -> None:
    """``region`` + ``n``: a row clashes only when both columns equal another file's row,
    and a row missing either column never clashes."""
    rows = _found(engine, folder, ["region", "n"])
    expected = _expected(["region", "n"])
    assert len(expected) > 100
    assert set(zip(rows["partition"], rows[ROW], strict=True)) == expected


def test_only_the_first_rows_come_back_with_the_full_count(
    engine: ShuffleEngine, folder: list[tuple[str, str]]
) -> None:
    """With the default limit each bucket returns its count and 20 rows at most: the
    finding counts every clashing row (as pandas does) and shows the first 20 by value,
    file and row."""
    config = _config(["region", "n"])
    (finding,) = unique_findings(config, unique_across(engine, config, folder))
    expected = _expected(["region", "n"])
    assert finding.status == "fail" and finding.violations == finding.rows == len(expected)
    shown = [(e["region"], e["n"], e["partition"], e[ROW]) for e in finding.examples]
    assert len(shown) == 20 and shown == sorted(shown)
    frames = [f.assign(partition=f"part-{i}.parquet") for i, f in enumerate(_files())]
    whole = pd.concat([f.assign(**{ROW: np.arange(len(f))}) for f in frames])
    clashing = whole[
        [(p, r) in expected for p, r in zip(whole["partition"], whole[ROW], strict=True)]
    ]
    first = clashing.sort_values(["region", "n", "partition", ROW]).head(20)
    assert shown == list(
        first[["region", "n", "partition", ROW]].itertuples(index=False, name=None)
    )


def test_files_without_clashes_pass(engine: ShuffleEngine, folder: list[tuple[str, str]]) -> None:
    """Each file alone holds no value of another (one file): the check passes with no rows."""
    config = _config("id")
    (finding,) = unique_findings(config, unique_across(engine, config, folder[:1]))
    assert (finding.status, finding.rows) == ("pass", 0)


def _threads(_: object, __: object) -> int:
    with task_connection() as con:
        return int(con.execute("SELECT current_setting('threads')").fetchone()[0])


def test_a_task_on_a_one_thread_worker_runs_duckdb_on_one_thread(cluster: Cluster) -> None:
    """The cluster's workers have one thread each (``--nthreads 1``): a partition's DuckDB
    runs on one thread there, so a second worker adds a core instead of contention."""
    engine = DaskEngine.connect(cluster.address, 30)
    try:
        found = [threads for _, threads in engine.map(_threads, None, [0, 1, 2, 3])]
    finally:
        engine.close()
    assert found == [1, 1, 1, 1]


def test_a_shuffle_brings_each_bucket_its_pieces_in_order(engine: ShuffleEngine) -> None:
    """``ShuffleEngine.shuffle``: each item's own result comes back by position, and
    bucket b's reduction gets piece b of every item, in the items' order (checked against
    the same cut done here)."""
    items = [list(range(i, i + 10)) for i in range(0, 40, 10)]
    done = list(engine.shuffle(_cut, 3, items, 3, _joined))
    own = {index: value for kind, index, value in done if kind == "item"}
    reduced = {index: value for kind, index, value in done if kind == "bucket"}
    assert own == {i: sum(item) for i, item in enumerate(items)}
    assert reduced == {b: [v for item in items for v in item if v % 3 == b] for b in range(3)}


def _cut(buckets: int, item: list[int]) -> tuple[int, list[list[int]]]:
    return sum(item), [[v for v in item if v % buckets == b] for b in range(buckets)]


def _joined(_: int, pieces: list[list[int]]) -> list[int]:
    return [v for piece in pieces for v in piece]
