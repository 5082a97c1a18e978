"""The seam between Keel's data work and where it runs.

Everything heavy that Keel does over a big table has one shape: a function applied to
each partition, then the results merged. An ``Engine`` applies the function; the caller
merges. ``shared`` is what every call needs (a model, settings): an engine sends it to
each worker once, not once per partition. Results come back as they finish, with the
partition's position, so the caller can show progress and put them back in order.

Data that several passes read (a log segment in an object store, read once for its
columns, once for its counts, once for its sample rows) is fetched once for all of them:
``Engine.held(fetch, items)`` runs ``fetch(item)`` once per item where the tasks run and
holds the values there for a block; a map or shuffle given the handles passes each task
the fetched value. A Dask cluster holds them in its workers' memory; this process holds
them in a temporary folder, one value in memory at a time.

Work that must meet across partitions (every copy of a key, wherever it lies) is a
shuffle: ``ShuffleEngine.shuffle(fn, shared, items, buckets, reduce)`` runs ``fn`` once per
item, which returns the item's own result and its output cut into ``buckets`` pieces by a
hash; the pieces stay where they were made and ``reduce`` runs once per bucket on that
bucket's pieces. Only the items' results and the reductions come back, so the caller's
memory does not grow with the table, and one read of each partition serves both its own
checks and the checks across partitions.

A task's libraries (DuckDB) take ``worker_threads()`` threads: on a Dask worker the
worker's thread budget, shared by its tasks, so a worker of one thread uses one core and
adding a worker adds a core; in this process, every core.

Two engines exist: ``local`` (this process, one partition after another) and ``dask``
(a Dask cluster). Another backend (Ray, say) is one more module with the same methods.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal, Protocol, TypeVar

from keel.schema import ComputeConfig

__all__ = [
    "ADDRESS_ENV",
    "Engine",
    "ShuffleEngine",
    "Shuffled",
    "current_worker",
    "open_engine",
    "scheduler_address",
    "worker_threads",
]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

ADDRESS_ENV = "KEEL_DASK_ADDRESS"

Shuffled = tuple[Literal["item", "bucket"], int, Any]
"""What a shuffle yields: ``("item", position, result)`` when an item's task is done,
``("bucket", bucket, reduction)`` when a bucket's reduction is."""


class Engine(Protocol):
    """Runs ``fn(shared, item)`` for every item, wherever the engine runs things."""

    name: str

    def map(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]
    ) -> Generator[tuple[int, Any], None, None]:
        """``(position, result)`` for each item, in the order they finish.

        Closing the generator early (an error, Ctrl-C) cancels the work not yet done."""
        ...

    def held(
        self, fetch: Callable[[Any], Any], items: Sequence[Any]
    ) -> AbstractContextManager[list[Any]]:
        """A block in which ``fetch(item)`` of each item, run once where the tasks run, is
        held there: the handles it yields stand for the values in any ``map`` or
        ``shuffle`` of this engine (each task receives the value). Released after it."""
        ...

    def close(self) -> None:
        """Release the engine's resources (a cluster started for this engine stops)."""
        ...


class ShuffleEngine(Engine, Protocol):
    """An engine that can also shuffle (both of Keel's engines; a wrapper that only maps,
    such as one reporting progress, is an ``Engine``)."""

    def shuffle(
        self,
        fn: Callable[[Any, Any], tuple[Any, Sequence[Any]]],
        shared: Any,
        items: Sequence[Any],
        buckets: int,
        reduce: Callable[[Any, list[Any]], Any],
    ) -> Generator[Shuffled, None, None]:
        """``fn(shared, item)`` returns ``(result, pieces)``, ``buckets`` pieces; yields
        ``("item", position, result)`` for each item and ``("bucket", bucket,
        reduce(shared, pieces))`` for each bucket (its pieces in the items' order), as
        they finish.

        The pieces stay where they were made (worker memory, or a temporary file) until
        their bucket's ``reduce`` reads them. Closing early cancels the work not done."""
        ...


def current_worker() -> Any:
    """The Dask worker running this task, or None outside a Dask task."""
    distributed = sys.modules.get("distributed")  # a worker has imported it; don't import it
    if distributed is None:
        return None
    try:
        return distributed.get_worker()
    except ValueError:  # not inside a Dask task
        return None


def worker_threads() -> int | None:
    """The threads a task's libraries may use: inside a Dask task, the worker's thread
    budget (``--nthreads``), which its running tasks share; elsewhere None (every core)."""
    worker = current_worker()
    return None if worker is None else max(1, int(worker.state.nthreads))


def scheduler_address(config: ComputeConfig) -> str | None:
    """The scheduler to use: ``compute.address``, else ``$KEEL_DASK_ADDRESS``, else None
    (start a local cluster for the command)."""
    return config.address or os.environ.get(ADDRESS_ENV) or None


def open_engine(config: ComputeConfig | None, engine: str | None = None) -> ShuffleEngine:
    """The engine ``config`` asks for (``engine`` overrides ``compute.engine``)."""
    config = config or ComputeConfig()
    if (engine or config.engine) == "local":
        from keel.compute.local import LocalEngine

        return LocalEngine()
    from keel.compute.dask import DaskEngine

    return DaskEngine.connect(
        scheduler_address(config), config.connect_timeout.total_seconds(), config.workers
    )


@contextmanager
def cluster_engine(config: ComputeConfig | None) -> Iterator[ShuffleEngine | None]:
    """The cluster ``config`` names, open for the block and closed after it; None when
    ``compute.engine`` is local (the caller then works in its own process)."""
    if config is None or config.engine == "local":
        yield None
        return
    engine = open_engine(config)
    try:
        yield engine
    finally:
        engine.close()
