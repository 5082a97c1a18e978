"""The default engine: every partition in this process, one after another.

One partition at a time keeps memory at one partition's worth whatever the table's size;
the libraries underneath (DuckDB, NumPy, the model) use the cores within a partition.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

__all__ = ["LocalEngine"]


class LocalEngine:
    """Runs the partitions in order, in the calling process."""

    name = "local"

    def map(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]
    ) -> Generator[tuple[int, Any], None, None]:
        for position, item in enumerate(items):
            yield position, fn(shared, item)

    def close(self) -> None:
        """Nothing to release."""
