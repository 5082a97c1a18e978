"""The reference a window is compared with: bucket layout, counts and a row sample.

Build it from training data (``Reference.from_frame``), from a data file, or from a
logged window, and keep it as JSON (``to_dict``/``save``). The training layer can store
the same JSON beside a model version; the drift check only needs this object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from keel.monitoring.sketch import Bins, Layout, Sketch

__all__ = ["Reference"]

_KNOWN_LIMIT = 10_000  # past this many distinct values, new ones cannot be told from rare


@dataclass(frozen=True)
class Reference:
    """Reference statistics for drift: layout, sketch, and a joint sample of rows."""

    layout: Layout
    sketch: Sketch
    sample: Mapping[str, np.ndarray]
    rows: int
    singletons: Mapping[str, int] = field(default_factory=dict)
    """Per categorical column, how many values the reference saw exactly once: by
    Good-Turing, the share of a new sample the reference has never seen is about
    ``singletons / rows``, so a long tail's new values are expected, not drift."""

    @classmethod
    def from_frame(
        cls,
        frame: Any,
        *,
        columns: Sequence[str] | None = None,
        bins: int = 100,
        max_categories: int = 50,
        sample: int = 20_000,
        seed: int = 0,
    ) -> Reference:
        """Reference statistics of a DataFrame (or a mapping of equal-length columns).

        Without ``columns``, text columns that are mostly unique (identifiers, timestamps
        as text) are left out: every new id would look like an unseen category.
        """
        names = list(columns) if columns is not None else [str(name) for name in frame]
        arrays = {name: np.asarray(frame[name]) for name in names}
        if columns is None:
            arrays = {n: v for n, v in arrays.items() if not _identifier(v, max_categories)}
        layout = Layout(
            {name: _bins(values, bins, max_categories) for name, values in arrays.items()},
            {name: _known(values) for name, values in arrays.items() if not _numeric(values)},
        )
        rows = len(next(iter(arrays.values()))) if arrays else 0
        picked = np.random.default_rng(seed).permutation(rows)[:sample]
        singletons = {name: _singletons(arrays[name]) for name in layout.known}
        sampled = _sample(arrays, layout, picked)
        return cls(layout, layout.sketch(arrays), sampled, rows, singletons)

    def sorted_sample(self, name: str) -> np.ndarray:
        """The non-null sampled values of a numeric column, sorted (computed once)."""
        cache: dict[str, np.ndarray] = self.__dict__.setdefault("_sorted", {})
        if name not in cache:
            values = self.sample[name]
            cache[name] = np.sort(values[~np.isnan(values)])
        return cache[name]

    def numeric_columns(self) -> list[str]:
        return [name for name, bins in self.layout.columns.items() if bins.kind == "numeric"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout.to_dict(),
            "sketch": self.sketch.to_dict(),
            "sample": {name: values.tolist() for name, values in self.sample.items()},
            "rows": self.rows,
            "singletons": dict(self.singletons),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        layout = Layout.from_dict(data["layout"])
        sample = {
            name: np.asarray(values, dtype=np.float64 if _is_numeric(layout, name) else object)
            for name, values in data["sample"].items()
        }
        singletons = {str(k): int(v) for k, v in data.get("singletons", {}).items()}
        return cls(layout, Sketch.from_dict(data["sketch"]), sample, int(data["rows"]), singletons)

    def save(self, path: Path) -> None:
        path.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))

    @classmethod
    def load(cls, path: Path) -> Reference:
        return cls.from_dict(orjson.loads(path.read_bytes()))


def _identifier(values: np.ndarray, max_categories: int) -> bool:
    """A text column with more distinct values than categories and than half its rows."""
    if _numeric(values) or len(values) == 0:
        return False
    import pandas as pd

    distinct = len(pd.unique(values))
    return distinct > max(max_categories, len(values) // 2)


def _numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "fiu"


def _bins(values: np.ndarray, bins: int, max_categories: int) -> Bins:
    if _numeric(values):
        return Bins.numeric(values.astype(np.float64), bins)
    import pandas as pd

    present = values[~np.asarray(pd.isna(values), dtype=bool)]
    return Bins.categorical(present, max_categories)


def _known(values: np.ndarray) -> frozenset[str]:
    import pandas as pd

    present = values[~np.asarray(pd.isna(values), dtype=bool)]
    distinct = pd.unique(present.astype(str))
    return frozenset(str(v) for v in distinct) if len(distinct) <= _KNOWN_LIMIT else frozenset()


def _singletons(values: np.ndarray) -> int:
    import pandas as pd

    counts = pd.Series(values).dropna().astype(str).value_counts()
    return int((counts == 1).sum())


def _sample(arrays: Mapping[str, np.ndarray], layout: Layout, picked: np.ndarray) -> dict[str, Any]:
    """The same sampled rows of every column (numeric as floats, nulls as NaN)."""
    return {
        name: values[picked].astype(np.float64 if _is_numeric(layout, name) else object)
        for name, values in arrays.items()
    }


def _is_numeric(layout: Layout, name: str) -> bool:
    return layout.columns[name].kind == "numeric"
