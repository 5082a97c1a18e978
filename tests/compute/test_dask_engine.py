"""One Dask engine running several jobs on the test cluster and closing: the client keeps
its connection from one job to the next, and neither a job's end nor the close logs a
closed comm or leaves a socket for the collector. Values held for several passes
(``Engine.held``) are fetched once on either engine."""

from __future__ import annotations

import gc
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.compute.dask import DaskEngine
from keel.compute.local import LocalEngine
from tests.compute.conftest import Cluster


def split(shared: int, item: int) -> tuple[int, list[list[int]]]:
    """``item`` as the item's result, into bucket 0, and ``item + shared`` into bucket 1."""
    return item, [[item], [item + shared]]


def add_up(shared: int, pieces: list[list[int]]) -> int:
    return sum(sum(piece) for piece in pieces)


def double(shared: int, item: int) -> int:
    return shared * item


@pytest.fixture
def batched_log() -> Iterator[list[logging.LogRecord]]:
    """What distributed's batched sender logs meanwhile ("Batched Comm Closed ...")."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("distributed.batched")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_a_shuffle_then_a_map_on_one_engine_both_finish(
    cluster: Cluster, batched_log: list[logging.LogRecord]
) -> None:
    """A map after a shuffle on the same engine gets its results (the shuffle's end used
    to cancel its shared task, whose released dependents made the scheduler drop the
    client: the map then failed with "scheduler-connection-lost"), and nothing is logged
    about a closed comm, neither then nor on closing."""
    engine = DaskEngine.connect(cluster.address, 30)
    try:
        for _ in range(2):
            done = list(engine.shuffle(split, 10, list(range(6)), 2, add_up))
            assert {i: v for kind, i, v in done if kind == "item"} == {i: i for i in range(6)}
            buckets = {i: v for kind, i, v in done if kind == "bucket"}
            assert buckets == {0: sum(range(6)), 1: sum(range(6)) + 6 * 10}
            assert dict(engine.map(double, 3, [1, 2, 3])) == {0: 3, 1: 6, 2: 9}
    finally:
        engine.close()
    assert [r.getMessage() for r in batched_log] == []


def test_a_map_left_early_leaves_the_engine_usable(cluster: Cluster) -> None:
    """A caller that stops after the first result (Ctrl-C, an error in a partition):
    the rest is cancelled and the next job on the engine runs."""
    engine = DaskEngine.connect(cluster.address, 30)
    try:
        jobs = engine.map(double, 2, list(range(8)))
        next(jobs)
        jobs.close()
        assert sorted(result for _, result in engine.map(double, 2, [5, 6])) == [10, 12]
    finally:
        engine.close()


def test_closing_after_a_shuffle_leaves_no_socket_to_collect(cluster: Cluster) -> None:
    """Every socket the engine opened is closed by ``close``: collecting afterwards finds
    none to warn about."""
    engine = DaskEngine.connect(cluster.address, 30)
    try:
        list(engine.shuffle(split, 1, list(range(4)), 2, add_up))
    finally:
        engine.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def fetch_logged(item: tuple[str, int]) -> bytes:
    """``item``'s value as bytes, with a line in the log file each time it is fetched."""
    log, value = item
    with open(log, "a") as file:
        file.write(f"{value}\n")
    return str(value).encode() * 1000


def length_of(shared: int, value: bytes) -> int:
    return len(value) + shared


def length_in_pair(shared: int, pair: tuple[bytes, int]) -> int:
    value, extra = pair
    return len(value) + extra


def _held_on_scheduler(engine: DaskEngine) -> list[str]:
    """The scheduler's held tasks, polled until it forgets them (released, asynchronously)
    or 10 s pass."""
    deadline = time.monotonic() + 10
    while True:
        held = engine.client.run_on_scheduler(
            lambda dask_scheduler: [k for k in dask_scheduler.tasks if "fetch_logged" in k]
        )
        if not held or time.monotonic() > deadline:
            return list(held)
        time.sleep(0.1)


@pytest.mark.parametrize("engine_name", ["local", "dask"])
def test_held_values_are_fetched_once_for_every_pass(
    cluster: Cluster, tmp_path: Path, engine_name: str
) -> None:
    """``Engine.held``: two maps over the handles, one with each handle inside a tuple,
    both receive the fetched values; each item was fetched once (a line per fetch, written
    by whichever process fetched it); after the block nothing is held (the local engine's
    folder is gone, the scheduler knows no held task)."""
    log = tmp_path / "fetches.txt"
    items = [(str(log), value) for value in (7, 42, 123)]
    lengths = {0: 1000, 1: 2000, 2: 3000}
    engine = LocalEngine() if engine_name == "local" else DaskEngine.connect(cluster.address, 30)
    try:
        with engine.held(fetch_logged, items) as handles:
            assert dict(engine.map(length_of, 0, handles)) == lengths
            pairs = [(handle, i) for i, handle in enumerate(handles)]
            assert dict(engine.map(length_in_pair, 0, pairs)) == {0: 1000, 1: 2001, 2: 3002}
            folder = handles[0].path.parent if engine_name == "local" else None
        assert sorted(log.read_text().split()) == ["123", "42", "7"]
        if isinstance(engine, DaskEngine):
            assert _held_on_scheduler(engine) == []
        else:
            assert folder is not None and not folder.exists()
    finally:
        engine.close()
