"""The deterministic example data set: a customer-churn business, month by month.

``generate(out)`` writes, under ``out/data``:

- ``customers.csv``: one row per customer: customer_id, signup_at, plan, region, age,
  income, monthly_charges, updated_at;
- ``events/events-YYYY-MM.csv``: one file per month of payments, logins, tickets and
  refunds (event_id, customer_id, event_time, kind, amount), sorted by time;
- ``labels.csv``: one prediction per customer at a month boundary (customer_id,
  prediction_time, churned, label_time); the label says whether the customer churned in
  the 30 days after prediction_time and becomes known 30 days later, at label_time;
- ``hard_examples.csv``: clear-cut customers, with their features at prediction time and
  ``expected_churned``, for a no-regression check.

Whether a customer churns depends only on what is known at prediction_time (tenure, plan,
charges, tickets and logins in the 30 days before) plus noise; a churned customer has no
events after churning. Drift changes the second half of the period: customers updated after
the midpoint, their events from the update on, and labels predicted after the midpoint. The
midpoint is the start of month ``months // 2`` (the middle of the month when months is 1).
Faults make the files wrong in ways a validator must catch.

The same arguments always give the same bytes, and adding drift or faults leaves the rows
they do not touch unchanged. Timestamps are naive UTC, written ``YYYY-MM-DD HH:MM:SS``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from keel.errors import ExampleError
from keel.examples._csv import IdFormat, write_csv
from keel.examples._drift import DRIFT_KINDS, apply_drift
from keel.examples._faults import FAULT_KINDS, customer_faults, event_faults
from keel.examples._labels import Scores, hard_examples, score
from keel.examples._world import (
    EVENT_KINDS,
    HORIZON,
    PLANS,
    REGIONS,
    Events,
    History,
    Ints,
    Population,
    Timeline,
    month_events,
    population,
    timeline,
)

__all__ = ["DRIFT_KINDS", "FAULT_KINDS", "GeneratedData", "generate"]

MIN_ROWS, MAX_ROWS = 10, 5_000_000
MAX_MONTHS = 120
YEARS = (1900, 2200)
IDS: dict[str, IdFormat] = {"customer_id": ("c_", 6), "event_id": ("e_", 9)}


@dataclass(frozen=True)
class GeneratedData:
    """What ``generate`` wrote: files relative to ``out`` and the rows in each table."""

    out: Path
    files: tuple[Path, ...]
    customers: int  # rows in customers.csv (duplicate_keys adds rows)
    events: int  # rows over all event files
    labels: int
    drift: tuple[str, ...]
    faults: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly summary, paths as strings."""
        return {
            "out": str(self.out),
            "files": [str(path) for path in self.files],
            "customers": self.customers,
            "events": self.events,
            "labels": self.labels,
            "drift": list(self.drift),
            "faults": list(self.faults),
        }


def generate(
    out: Path,
    *,
    rows: int = 2000,
    seed: int = 42,
    start: date = date(2026, 1, 1),
    months: int = 6,
    drift: Sequence[str] = (),
    faults: Sequence[str] = (),
) -> GeneratedData:
    """Write the example data for ``rows`` customers over ``months`` months from ``start``.

    ``drift`` takes kinds from ``DRIFT_KINDS`` and ``faults`` from ``FAULT_KINDS``. Files
    of the same name under ``out`` are overwritten; other files are left alone.
    """
    drift_kinds = _kinds("drift", drift, DRIFT_KINDS)
    fault_kinds = _kinds("fault", faults, FAULT_KINDS)
    rows = _whole("rows", rows, MIN_ROWS, MAX_ROWS, "a number of customers from 10 to 5,000,000")
    seed = _whole("seed", seed, 0, None, "a non-negative integer")
    months = _whole("months", months, 1, MAX_MONTHS, "a number of months from 1 to 120")
    period = timeline(_first_day(start), months)
    people = apply_drift(population(rows, period, seed), period, drift_kinds, seed)
    output = _Output(Path(out))
    customer_table = customer_faults(_customers(people), fault_kinds, seed)
    customers = output.write("customers.csv", customer_table)
    scores, events = _simulate(output, people, period, seed, drift_kinds, fault_kinds)
    labels = output.write("labels.csv", _labels(scores))
    output.write("hard_examples.csv", _hard_examples(people, hard_examples(scores, period)))
    return GeneratedData(
        output.root, output.files, customers, events, labels, drift_kinds, fault_kinds
    )


def _kinds(what: str, given: Sequence[str], known: tuple[str, ...]) -> tuple[str, ...]:
    asked = (given,) if isinstance(given, str) else tuple(given)
    for kind in asked:
        if kind not in known:
            raise ExampleError(f"unknown {what} kind {kind!r}: choose from {', '.join(known)}")
    return tuple(kind for kind in known if kind in asked)


def _whole(name: str, value: object, low: int, high: int | None, what: str) -> int:
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = None
    too_big = high is not None and number is not None and number > high
    if isinstance(value, bool) or number is None or number < low or too_big:
        raise ExampleError(f"{name} is {value!r}: choose {what}")
    return number


def _first_day(start: object) -> date:
    day = start.date() if isinstance(start, datetime) else start
    if not isinstance(day, date) or not YEARS[0] <= day.year <= YEARS[1]:
        raise ExampleError(
            f"start is {start!r}: choose a date between {YEARS[0]} and {YEARS[1]}, "
            "like date(2026, 1, 1)"
        )
    return day


@dataclass
class _Output:
    """Writes CSV files under ``root/data`` and remembers what it wrote."""

    root: Path
    files: tuple[Path, ...] = ()

    def write(self, name: str, frame: pd.DataFrame) -> int:
        """Write ``frame`` to ``data/name`` and return its number of rows."""
        path = Path("data", name)
        try:
            (self.root / path).parent.mkdir(parents=True, exist_ok=True)
            write_csv(self.root / path, frame, IDS)
        except OSError as error:
            reason = error.strerror or str(error)
            raise ExampleError(
                f"cannot write {self.root / path} ({reason}): choose a folder you can write to"
            ) from None
        self.files += (path,)
        return len(frame)


def _simulate(
    output: _Output,
    people: Population,
    period: Timeline,
    seed: int,
    drift: tuple[str, ...],
    faults: tuple[str, ...],
) -> tuple[Scores, int]:
    """Play the months in order: score the month's cohort, then write its events."""
    history = History.empty(len(people))
    cohorts: list[Scores] = []
    written, next_id = 0, 1
    for month in range(period.months):
        if month in period.scoring_months:
            concept = "concept" in drift and period.starts[month] > period.midpoint
            cohorts.append(score(people, history, period, month, seed=seed, concept=concept))
        events = history.survivors(month_events(people, period, month, seed))
        history.record(events, people)
        frame = _events(events, next_id)
        frame = event_faults(frame, faults, seed, month=month, customers=len(people))
        written += output.write(f"events/events-{_month_name(period, month)}.csv", frame)
        next_id += len(events)
    return Scores.concat(cohorts), written


def _month_name(period: Timeline, month: int) -> str:
    return str(np.datetime64(period.starts[month], "s").astype("datetime64[M]"))


def _timestamps(seconds: Ints) -> np.ndarray:
    return seconds.astype("datetime64[s]")


def _category(codes: Ints, names: tuple[str, ...]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=names)


def _customers(people: Population) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, len(people) + 1),
            "signup_at": _timestamps(people.signup_at),
            "plan": _category(people.plan, PLANS),
            "region": _category(people.region, REGIONS),
            "age": people.age,
            "income": people.income,
            "monthly_charges": people.charges,
            "updated_at": _timestamps(people.updated_at),
        }
    )


def _events(events: Events, first_id: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": np.arange(first_id, first_id + len(events)),
            "customer_id": events.customer + 1,
            "event_time": _timestamps(events.time),
            "kind": _category(events.kind, EVENT_KINDS),
            "amount": events.amount,
        }
    )


def _labels(scores: Scores) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": scores.customer + 1,
            "prediction_time": _timestamps(scores.prediction_time),
            "churned": scores.churned,
            "label_time": _timestamps(scores.prediction_time + HORIZON),
        }
    )


def _hard_examples(people: Population, chosen: Scores) -> pd.DataFrame:
    customer = chosen.customer
    return pd.DataFrame(
        {
            "customer_id": customer + 1,
            "prediction_time": _timestamps(chosen.prediction_time),
            "signup_at": _timestamps(people.signup_at[customer]),
            "plan": _category(chosen.plan, PLANS),
            "region": _category(people.region[customer], REGIONS),
            "age": people.age[customer],
            "income": people.income[customer],
            "monthly_charges": chosen.charges,
            "tenure_days": chosen.tenure_days,
            "tickets_30d": chosen.tickets,
            "logins_30d": chosen.logins,
            "expected_churned": chosen.churned,
        }
    )
