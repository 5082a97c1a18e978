"""The default engine: every partition in this process, one after another.

One partition at a time keeps memory at one partition's worth whatever the table's size;
the libraries underneath (DuckDB, NumPy, the model) use the cores within a partition. A
shuffle's pieces wait in a temporary folder (pickled), so a bucket's reduction holds
that bucket only; so do held values, each read back for the task that takes it.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["LocalEngine"]


class LocalEngine:
    """Runs the partitions in order, in the calling process."""

    name = "local"

    def map(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]
    ) -> Generator[tuple[int, Any], None, None]:
        for position, item in enumerate(items):
            yield position, fn(shared, _taken(item))

    def shuffle(
        self,
        fn: Callable[[Any, Any], tuple[Any, Sequence[Any]]],
        shared: Any,
        items: Sequence[Any],
        buckets: int,
        reduce: Callable[[Any, list[Any]], Any],
    ) -> Generator[tuple[Literal["item", "bucket"], int, Any], None, None]:
        with tempfile.TemporaryDirectory(prefix="keel-shuffle-") as folder:
            for position, item in enumerate(items):
                result, pieces = fn(shared, _taken(item))
                for bucket in range(buckets):
                    _spill(Path(folder) / f"{bucket}-{position}", pieces[bucket])
                del pieces
                yield "item", position, result
            for bucket in range(buckets):
                files = [Path(folder) / f"{bucket}-{i}" for i in range(len(items))]
                yield "bucket", bucket, reduce(shared, [_unspill(file) for file in files])

    @contextmanager
    def held(self, fetch: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[list[Any]]:
        """Each ``fetch(item)`` now, written to a temporary folder removed after the block."""
        with tempfile.TemporaryDirectory(prefix="keel-held-") as folder:
            handles = []
            for position, item in enumerate(items):
                path = Path(folder) / str(position)
                with path.open("wb") as file:
                    pickle.dump(fetch(item), file, protocol=pickle.HIGHEST_PROTOCOL)
                handles.append(_Held(path))
            yield handles

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class _Held:
    """A value ``LocalEngine.held`` keeps on disk; a task receives the value."""

    path: Path


def _taken(item: Any) -> Any:
    """``item`` with the held values it holds read back, inside tuples, lists and dicts
    too, as a Dask task receives the results of the futures inside its arguments."""
    if isinstance(item, _Held):
        with item.path.open("rb") as file:
            return pickle.load(file)  # written by this process within the block
    if type(item) in (tuple, list):
        return type(item)(_taken(part) for part in item)
    if type(item) is dict:
        return {key: _taken(value) for key, value in item.items()}
    return item


def _spill(path: Path, piece: Any) -> None:
    with path.open("wb") as file:
        pickle.dump(piece, file, protocol=pickle.HIGHEST_PROTOCOL)


def _unspill(path: Path) -> Any:
    with path.open("rb") as file:
        found = pickle.load(file)  # written by this process a moment ago
    path.unlink()
    return found
