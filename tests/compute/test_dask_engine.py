"""One Dask engine running several jobs on the test cluster and closing: the client keeps
its connection from one job to the next, and neither a job's end nor the close logs a
closed comm or leaves a socket for the collector."""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Iterator

import pytest

from keel.compute.dask import DaskEngine
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
