"""The seam between Keel's data work and where it runs.

Everything heavy that Keel does over a big table has one shape: a function applied to
each partition, then the results merged. An ``Engine`` applies the function; the caller
merges. ``shared`` is what every call needs (a model, settings): an engine sends it to
each worker once, not once per partition. Results come back as they finish, with the
partition's position, so the caller can show progress and put them back in order.

Two engines exist: ``local`` (this process, one partition after another) and ``dask``
(a Dask cluster). Another backend (Ray, say) is one more module with the same two methods.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Sequence
from typing import Any, Protocol, TypeVar

from keel.schema import ComputeConfig

__all__ = ["ADDRESS_ENV", "Engine", "open_engine", "scheduler_address"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

ADDRESS_ENV = "KEEL_DASK_ADDRESS"


class Engine(Protocol):
    """Runs ``fn(shared, item)`` for every item, wherever the engine runs things."""

    name: str

    def map(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]
    ) -> Generator[tuple[int, Any], None, None]:
        """``(position, result)`` for each item, in the order they finish.

        Closing the generator early (an error, Ctrl-C) cancels the work not yet done."""
        ...

    def close(self) -> None:
        """Release the engine's resources (a cluster started for this engine stops)."""
        ...


def scheduler_address(config: ComputeConfig) -> str | None:
    """The scheduler to use: ``compute.address``, else ``$KEEL_DASK_ADDRESS``, else None
    (start a local cluster for the command)."""
    return config.address or os.environ.get(ADDRESS_ENV) or None


def open_engine(config: ComputeConfig | None, engine: str | None = None) -> Engine:
    """The engine ``config`` asks for (``engine`` overrides ``compute.engine``)."""
    config = config or ComputeConfig()
    if (engine or config.engine) == "local":
        from keel.compute.local import LocalEngine

        return LocalEngine()
    from keel.compute.dask import DaskEngine

    return DaskEngine.connect(
        scheduler_address(config), config.connect_timeout.total_seconds(), config.workers
    )
