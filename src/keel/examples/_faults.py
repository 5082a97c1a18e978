"""Data-quality faults for a validator to catch, injected into the frames before writing.

Each fault touches a few percent of the rows of every file it applies to, and at least one.
Customer faults: nulls, out_of_range, duplicate_keys, type_change, dropped_column. Event
faults: nulls, orphan_keys, out_of_order. Labels and hard examples are never faulted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from keel.examples._world import DAY, Ints, Stream, stream

__all__ = ["FAULT_KINDS", "customer_faults", "event_faults"]

FAULT_KINDS = (
    "nulls",
    "out_of_range",
    "duplicate_keys",
    "orphan_keys",
    "out_of_order",
    "type_change",
    "dropped_column",
)

SHARE = 0.02
BAD_AGES = (-3, 250)
AGE_WORDS = ("forty", "thirty-two", "unknown", "sixty five")

Fault = Callable[[pd.DataFrame, np.random.Generator, int], pd.DataFrame]


def customer_faults(frame: pd.DataFrame, kinds: Sequence[str], seed: int) -> pd.DataFrame:
    """The customers table with the customer faults among ``kinds``."""
    return _apply(_CUSTOMER_FAULTS, frame, kinds, seed, file=0, customers=len(frame))


def event_faults(
    frame: pd.DataFrame, kinds: Sequence[str], seed: int, *, month: int, customers: int
) -> pd.DataFrame:
    """One month of events with the event faults among ``kinds``."""
    return _apply(_EVENT_FAULTS, frame, kinds, seed, file=month + 1, customers=customers)


def _apply(
    faults: dict[str, Fault],
    frame: pd.DataFrame,
    kinds: Sequence[str],
    seed: int,
    *,
    file: int,
    customers: int,
) -> pd.DataFrame:
    for index, kind in enumerate(FAULT_KINDS):
        if kind in kinds and kind in faults and len(frame) > 1:
            rng = stream(seed, Stream.FAULTS, index, file)
            frame = faults[kind](frame.copy(), rng, customers)
    return frame


def _pick(rng: np.random.Generator, candidates: int, share: float = SHARE) -> Ints:
    """A few percent of ``candidates`` row positions, at least one, in ascending order."""
    count = min(candidates, max(1, round(candidates * share)))
    return np.sort(rng.choice(candidates, count, replace=False)).astype(np.int64)


def _set(frame: pd.DataFrame, column: str, rows: Ints, values: object) -> None:
    array = frame[column].array.copy()
    array[rows] = values
    frame[column] = array


def _customer_nulls(frame: pd.DataFrame, rng: np.random.Generator, _: int) -> pd.DataFrame:
    frame["age"] = frame["age"].astype("Int64")
    _set(frame, "age", _pick(rng, len(frame)), pd.NA)
    _set(frame, "plan", _pick(rng, len(frame)), np.nan)
    return frame


def _event_nulls(frame: pd.DataFrame, rng: np.random.Generator, _: int) -> pd.DataFrame:
    _set(frame, "amount", _pick(rng, len(frame)), np.nan)
    return frame


def _out_of_range(frame: pd.DataFrame, rng: np.random.Generator, _: int) -> pd.DataFrame:
    ages = _pick(rng, len(frame))
    _set(frame, "age", ages, rng.choice(BAD_AGES, len(ages)))
    charged = _pick(rng, len(frame))
    _set(frame, "monthly_charges", charged, -frame["monthly_charges"].to_numpy()[charged])
    return frame


def _duplicate_keys(frame: pd.DataFrame, rng: np.random.Generator, _: int) -> pd.DataFrame:
    copies = frame.iloc[_pick(rng, len(frame))].copy()
    extra = np.round(rng.uniform(5, 30, len(copies)), 2)
    copies["monthly_charges"] = copies["monthly_charges"] + extra
    later = rng.integers(DAY, 10 * DAY, len(copies)).astype("timedelta64[s]")
    copies["updated_at"] = copies["updated_at"].to_numpy() + later
    both = pd.concat([frame, copies], ignore_index=True)
    return both.sort_values("customer_id", kind="stable", ignore_index=True)


def _orphan_keys(frame: pd.DataFrame, rng: np.random.Generator, customers: int) -> pd.DataFrame:
    rows = _pick(rng, len(frame), SHARE / 2)
    _set(frame, "customer_id", rows, customers + 1 + rng.integers(0, 1000, len(rows)))
    return frame


def _out_of_order(frame: pd.DataFrame, rng: np.random.Generator, _: int) -> pd.DataFrame:
    """Move some events back in time, so that they come after later ones in the file."""
    times = frame["event_time"].to_numpy().astype(np.int64)
    movable = np.flatnonzero(times[:-1] > times[0]) + 1  # rows whose predecessor is later
    if not len(movable):
        return frame
    rows = movable[_pick(rng, len(movable))]
    back = times[rows] - rng.integers(DAY, 5 * DAY, len(rows))
    earlier = np.maximum(np.minimum(back, times[rows - 1] - 1), times[0])
    _set(frame, "event_time", rows, earlier.astype("datetime64[s]"))
    return frame


def _type_change(frame: pd.DataFrame, rng: np.random.Generator, _: int) -> pd.DataFrame:
    frame["age"] = frame["age"].astype(object)
    rows = _pick(rng, len(frame))
    _set(frame, "age", rows, rng.choice(AGE_WORDS, len(rows)).astype(object))
    return frame


def _dropped_column(frame: pd.DataFrame, rng: np.random.Generator, _: int) -> pd.DataFrame:
    return frame.drop(columns="income")


_CUSTOMER_FAULTS: dict[str, Fault] = {
    "nulls": _customer_nulls,
    "out_of_range": _out_of_range,
    "duplicate_keys": _duplicate_keys,
    "type_change": _type_change,
    "dropped_column": _dropped_column,
}
_EVENT_FAULTS: dict[str, Fault] = {
    "nulls": _event_nulls,
    "orphan_keys": _orphan_keys,
    "out_of_order": _out_of_order,
}
