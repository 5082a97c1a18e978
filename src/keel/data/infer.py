"""Propose a checks section from a sample, for the user to edit (like TFDV's schema
inference), such that the next honest batch of the same table passes it too.

A sample shows what the table held, not what it may hold, so every proposal leaves room:

- numeric ranges reach past the observed min and max by a tenth of the span plus twice
  the distance from the 5%/95% quantile to the extreme (a long tail gets a long margin:
  a range is there to catch a changed unit or sign, not a rare customer), stop at zero
  when nothing was negative and the values bunch against zero (counts, money: a short
  low tail beside a long high one), and only warn;
- a null-rate ceiling sits above the observed rate; ``not_null`` is kept for columns that
  had no nulls and are required (a declared key or time, a target, or named like an id);
- allowed values are proposed only for text with few distinct values (at most 50, and at
  most a twentieth of the rows), and a new value is treated as ``new_categories`` says
  (``warn`` by default; ``error`` blocks the batch; ``ignore`` lists no values);
- ``unique`` only for a declared single key, never guessed from a sample (the columns of
  a composite key, several ``--key``, are each ``not_null``: ``key:`` lists them, and the
  source checks the key's uniqueness over them together);
- a column with no value at all is declared without checks and reported in ``notes``.

The declared time column must hold timestamps: values that do not parse, or values with
and without a time zone side by side, are a ``SourceError`` naming the column (see
``time_problem``): the time column orders the training split and the data versions, and
guessing a zone would shift rows silently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from keel.data.batch import TABLE, Batch, quote
from keel.data.model import QUANTILES, ColumnProfile, Profile
from keel.data.profiling import profile

__all__ = [
    "CategoryPolicy",
    "Inference",
    "category_policy",
    "csv_texts",
    "infer",
    "infer_checks",
    "propose",
    "read_sample",
    "time_problem",
]

CategoryPolicy = Literal["warn", "error", "ignore"]

MAX_CATEGORIES = 50
"""Text with more distinct values than this is not proposed as an allowed-list."""
_CATEGORY_SHARE = 0.05
"""...nor text whose distinct values are more than this share of its values."""
_NULL_SLACK = 0.05
_POLICIES = ("warn", "error", "ignore")
_IDENTIFIER = re.compile(r"(?i)(^id$|_id$|^id_|uuid|guid)|[a-z]Id$")
_ZONE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_TAIL = 2.0
"""A range reaches this many times the extreme's distance from the 5%/95% quantile."""
_LOW, _HIGH = QUANTILES.index(0.05), QUANTILES.index(0.95)


@dataclass(frozen=True)
class Inference:
    """The proposed ``checks:`` mapping, the columns with no value, and one note for each."""

    checks: dict[str, Any]
    empty: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def infer(
    batch: Batch,
    *,
    key: str | Sequence[str] | None = None,
    time: str | None = None,
    time_texts: Sequence[str | None] | None = None,
    required: Iterable[str] = (),
    new_categories: CategoryPolicy = "warn",
    now: datetime | None = None,
) -> Inference:
    """The proposal for the sample in ``batch``, after checking the declared ``time`` column.

    ``time_texts`` are that column's values as written in the file (a CSV reader may
    already have read them as times, assuming UTC where a zone was missing); without them
    the batch's values are checked as text.
    """
    if time is not None and time in batch.schema:
        if time_texts is None:
            query = f"SELECT {quote(time)}::VARCHAR FROM {TABLE}"
            time_texts = [row[0] for row in batch.con.execute(query).fetchall()]
        problem = time_problem(time, time_texts)
        if problem is not None:
            from keel.errors import SourceError

            raise SourceError(problem)
    keys = _keys(key)
    needed = {*required, *keys, *((time,) if time is not None else ())}
    clock = now or datetime.now(UTC).replace(tzinfo=None)
    return propose(profile(batch), key=key, required=needed, new_categories=new_categories,
                   now=clock)  # fmt: skip


def read_sample(
    path: Path,
    *,
    key: str | Sequence[str] | None = None,
    time: str | None = None,
    required: Iterable[str] = (),
    new_categories: str = "warn",
) -> Inference:
    """The proposal for a CSV or Parquet file, read as ``keel ingest`` reads it."""
    from keel.data.sources import read_source
    from keel.errors import SourceError
    from keel.schema import SourceConfig

    policy = category_policy(new_categories)
    if not path.is_file():
        raise SourceError(f"{path} does not exist; pass a CSV or Parquet file")
    kind = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    read = read_source(path.parent, SourceConfig(kind=kind, path=str(path.resolve())), set(), None)
    if read.batch is None:
        raise SourceError(f"{path} holds no data")
    with read.batch as batch:
        for name in (*_keys(key), time, *required):
            if name is not None and name not in batch.schema:
                raise SourceError(_no_column(name, path, batch.schema))
        texts = csv_texts(path, time) if kind == "csv" and time is not None else None
        return infer(batch, key=key, time=time, time_texts=texts, required=required,
                     new_categories=policy)  # fmt: skip


def _keys(key: str | Sequence[str] | None) -> tuple[str, ...]:
    """The declared key's columns: none, one, or several for a composite key."""
    if key is None:
        return ()
    return (key,) if isinstance(key, str) else tuple(key)


def category_policy(value: str) -> CategoryPolicy:
    """``--new-categories`` as a policy, or one sentence naming the choices."""
    from keel.errors import SourceError

    if value not in _POLICIES:
        raise SourceError(f"--new-categories is warn, error or ignore, not '{value}'")
    return value  # type: ignore[return-value]


def _no_column(name: str, path: Path, schema: dict[str, str]) -> str:
    listed = ", ".join(list(schema)[:20])
    return f"{path.name} has no column '{name}'; its columns are {listed}"


def csv_texts(path: Path, column: str) -> list[str | None]:
    """One column of a CSV file exactly as written (every value read as text)."""
    import duckdb

    literal = "'" + str(path).replace("'", "''") + "'"
    select = f"SELECT {quote(column)} FROM read_csv({literal}, all_varchar = true, header = true)"
    with duckdb.connect() as connection:
        return [row[0] for row in connection.execute(select).fetchall()]


def infer_checks(batch: Batch) -> dict[str, Any]:
    """A ``checks:`` mapping that the sample in ``batch`` passes (no key declared)."""
    return infer(batch).checks


def propose(
    summary: Profile,
    *,
    key: str | Sequence[str] | None = None,
    required: Iterable[str] = (),
    new_categories: CategoryPolicy = "warn",
    now: datetime | None = None,
) -> Inference:
    """The proposal from a profile (pure): see the module docstring for the rules."""
    needed, keys = set(required), _keys(key)
    unique = keys[0] if len(keys) == 1 else None
    empty = tuple(c.name for c in summary.columns if c.count and c.nulls == c.count)
    columns = {
        c.name: {}
        if c.name in empty
        else _column(c, (c.name in keys, c.name == unique), needed, new_categories, now)
        for c in summary.columns
    }
    notes = tuple(
        f"column '{name}' is entirely null, so it is declared without checks and left out of "
        "the model's features"
        for name in empty
    )
    return Inference({"columns": columns}, empty, notes)


def time_problem(name: str, texts: Sequence[str | None]) -> str | None:
    """Why the declared time column's values cannot be used as times, or None (pure)."""
    import pandas as pd

    values = pd.Series([t for t in texts if t is not None and str(t).strip()], dtype="string")
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
    bad = values[parsed.isna()]
    zoned = values.str.strip().str.contains(_ZONE, regex=True)
    problems = []
    if len(bad):
        count = f"{len(bad)} values that are not timestamps" if len(bad) > 1 else "a value that"
        count += "" if len(bad) > 1 else " is not a timestamp"
        problems.append(f"{count} (such as '{bad.iloc[0]}')")
    if zoned.any() and not zoned.all():
        with_zone, without = values[zoned].iloc[0], values[~zoned].iloc[0]
        problems.append(f"times with and without a time zone ('{with_zone}', '{without}')")
    if not problems:
        return None
    return (
        f"the time column '{name}' holds {' and '.join(problems)}; fix those values in the "
        "table (ISO 8601, one convention for the zone) or choose another --time column"
    )


def _column(
    column: ColumnProfile,
    key: tuple[bool, bool],
    required: set[str],
    policy: CategoryPolicy,
    now: datetime | None,
) -> dict[str, Any]:
    """A column's proposed checks; ``key`` says whether it is a key column and whether it
    is the whole key (then unique)."""
    is_key, whole = key
    spec: dict[str, Any] = {"type": _type(column)} if column.kind != "other" else {}
    needed = is_key or column.name in required or bool(_IDENTIFIER.search(column.name))
    if column.nulls == 0 and needed:
        spec["not_null"] = True
    else:
        spec["max_null_rate"] = _null_ceiling(column.null_rate)
    if is_key:
        return {**spec, "unique": True} if whole else spec
    if column.kind in ("int", "float") and column.min is not None and not needed:
        spec["range"] = _range(column)
        spec["severity"] = "warn"
    if spec.get("type") == "category" and policy != "ignore":
        spec["allowed"] = sorted(value for value, _ in column.top)
        spec["severity"] = policy
    if column.kind == "timestamp" and now is not None and _not_after(column.max, now):
        spec["not_future"] = True
    return spec


def _type(column: ColumnProfile) -> str:
    filled = column.count - column.nulls
    few = len(column.top) <= min(MAX_CATEGORIES, max(2, _CATEGORY_SHARE * filled))
    if column.kind == "string" and column.top_complete and few:
        return "category"
    return column.kind


def _null_ceiling(rate: float) -> float:
    """Room above the observed null rate: 5 points, or half the rate if that is more."""
    return min(1.0, math.ceil((rate + max(_NULL_SLACK, rate / 2)) * 100 - 1e-9) / 100)


def _range(column: ColumnProfile) -> list[float | int]:
    low, high = float(column.min), float(column.max)  # type: ignore[arg-type]
    span = high - low
    quantiles = column.quantiles if len(column.quantiles) == len(QUANTILES) else ()
    low_tail = quantiles[_LOW] - low if quantiles else 0.0
    high_tail = high - quantiles[_HIGH] if quantiles else 0.0
    below, above = 0.1 * span + _TAIL * low_tail, 0.1 * span + _TAIL * high_tail
    if span == 0:
        below = above = max(abs(high) * 0.1, 1.0)
    floor, ceiling = low - below, high + above
    if low >= 0 and (not quantiles or low_tail <= high_tail / 2):
        floor = max(0.0, floor)  # bunched against zero (counts, money): zero is its floor
    if column.kind == "int":
        return [math.floor(floor), math.ceil(ceiling)]
    return [_rounded(floor, math.floor, span), _rounded(ceiling, math.ceil, span)]


def _rounded(value: float, direction: Any, span: float) -> float:
    """``value`` rounded outward to two significant digits of the span."""
    step = 10.0 ** (math.floor(math.log10(span)) - 1) if span > 0 else 1.0
    return float(round(direction(value / step) * step, 12))


def _not_after(newest: object, now: datetime) -> bool:
    if newest is None:
        return True
    text = str(newest).replace("T", " ")[:19]
    return text <= now.strftime("%Y-%m-%d %H:%M:%S")
