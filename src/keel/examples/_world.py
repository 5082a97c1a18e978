"""The simulated world behind the example data: customers, their activity and their churn.

Customers are numpy arrays indexed from 0 (``customer_id`` is the index plus one); times
are int64 seconds since the Unix epoch, naive UTC. Every random draw comes from its own
named stream (``stream``), and each stream draws the same numbers whatever the drift and
faults, so those options change only the rows they are meant to change.

The story: each customer is scored once, at a month boundary (their prediction time). Their
record was last updated in the month before it. Whether they churn in the 30 days after it
is drawn from a logistic model of what is known at that time: tenure, plan, monthly
charges, and their tickets and logins in the 30 days before. A churned customer produces
no events after their churn time, which falls in those 30 days.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from enum import IntEnum

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

DAY = 86_400
HORIZON = 30 * DAY  # a label says whether the customer churned within this long
SIGNUP_SPAN = 730 * DAY  # customers signed up within two years before the period
NEVER = np.iinfo(np.int64).max

PLANS = ("basic", "standard", "premium")
PLAN_SHARES = (0.5, 0.35, 0.15)
PLAN_PRICES: Floats = np.array([25.0, 55.0, 95.0])
REGIONS = ("north", "south", "east", "west", "central")  # central appears only with drift
REGION_SHARES = (0.3, 0.25, 0.25, 0.2)
EVENT_KINDS = ("payment", "login", "ticket", "refund")
PAYMENT, LOGIN, TICKET, REFUND = range(4)
LOGINS_PER_MONTH = 4.5  # for an average customer; with a payment and a ticket or so, ~6 events


class Stream(IntEnum):
    """The independent random streams; each is split further by month or kind."""

    CUSTOMERS = 0
    EVENTS = 1
    LABELS = 2
    DRIFT = 3
    FAULTS = 4


def stream(seed: int, *key: int) -> np.random.Generator:
    """The random generator for one named part of the data."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class Timeline:
    """Month starts of the period (``months + 1`` of them, the last is its end)."""

    starts: tuple[int, ...]
    midpoint: int

    @property
    def months(self) -> int:
        return len(self.starts) - 1

    @property
    def scoring_months(self) -> tuple[int, ...]:
        """Indices of the month starts used as prediction times."""
        return tuple(range(1, self.months)) if self.months > 1 else (0,)


def timeline(start: date, months: int) -> Timeline:
    """The period of ``months`` months from ``start``; drift begins at its midpoint."""
    starts = tuple(_seconds(_add_months(start, k)) for k in range(months + 1))
    if months > 1:
        return Timeline(starts, starts[months // 2])
    return Timeline(starts, (starts[0] + starts[1]) // 2 // DAY * DAY)


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _seconds(day: date) -> int:
    return (day - date(1970, 1, 1)).days * DAY


@dataclass(frozen=True)
class Population:
    """Every customer's record, before and after its last update, and hidden traits."""

    signup_at: Ints
    updated_at: Ints
    scored_at: Ints  # the prediction time
    plan_before: Ints
    plan: Ints
    region: Ints
    age: Ints
    income: Floats
    price_noise: Floats
    charges_before: Floats
    charges: Floats
    engagement: Floats  # drives logins
    grievance: Floats  # drives tickets and refunds

    def __len__(self) -> int:
        return len(self.signup_at)

    def plan_at(self, customers: Ints, times: Ints) -> Ints:
        """Each customer's plan at the given time."""
        updated = times >= self.updated_at[customers]
        return np.where(updated, self.plan[customers], self.plan_before[customers])

    def charges_at(self, customers: Ints, times: Ints) -> Floats:
        """Each customer's monthly charges at the given time."""
        updated = times >= self.updated_at[customers]
        return np.where(updated, self.charges[customers], self.charges_before[customers])


def population(rows: int, period: Timeline, seed: int) -> Population:
    """Draw ``rows`` customers; the draws do not depend on any drift or fault."""
    rng = stream(seed, Stream.CUSTOMERS)
    signup_at = period.starts[0] - rng.integers(1, SIGNUP_SPAN, rows)
    plan = rng.choice(len(PLANS), rows, p=PLAN_SHARES)
    region = rng.choice(len(REGION_SHARES), rows, p=REGION_SHARES)
    age = np.clip(np.rint(rng.normal(45, 15, rows)), 18, 90).astype(np.int64)
    income = to_cents(np.exp(rng.normal(np.log(52_000), 0.5, rows)))
    price_noise = rng.normal(0, 8, rows)
    charges = price(plan, price_noise)
    engagement, grievance = rng.gamma(2.0, 0.5, rows), rng.gamma(1.0, 0.6, rows)
    scored_at, updated_at = _schedule(rng, rows, period)
    return Population(
        signup_at=signup_at,
        updated_at=updated_at,
        scored_at=scored_at,
        plan_before=plan,
        plan=plan,
        region=region,
        age=age,
        income=income,
        price_noise=price_noise,
        charges_before=charges,
        charges=charges,
        engagement=engagement,
        grievance=grievance,
    )


def price(plan: Ints, noise: Floats) -> Floats:
    """Monthly charges: the plan's list price plus a customer's add-ons and discounts."""
    return to_cents(np.maximum(PLAN_PRICES[plan] + noise, 5.0))


def to_cents(amounts: Floats) -> Floats:
    """Amounts rounded to whole cents, as they are written."""
    return np.asarray(np.round(amounts, 2), dtype=np.float64)


def _schedule(rng: np.random.Generator, rows: int, period: Timeline) -> tuple[Ints, Ints]:
    """A prediction time per customer, and a record update in the month before it."""
    months = np.array(period.scoring_months)[rng.integers(0, len(period.scoring_months), rows)]
    starts = np.array(period.starts)
    update_month = np.maximum(months - 1, 0)
    low, high = starts[update_month] + 1, starts[update_month + 1]
    return starts[months], rng.integers(low, high)


@dataclass(frozen=True)
class Events:
    """One month of events, sorted by time."""

    customer: Ints
    time: Ints
    kind: Ints
    amount: Floats

    def __len__(self) -> int:
        return len(self.time)

    def take(self, rows: Ints | Bools) -> Events:
        return Events(self.customer[rows], self.time[rows], self.kind[rows], self.amount[rows])


def month_events(people: Population, period: Timeline, month: int, seed: int) -> Events:
    """Every customer's events in one month, as if nobody churned, sorted by time.

    Ties in time are broken by customer and kind; all three are packed into one integer
    sort key, which is much faster than sorting by several keys.
    """
    rng = stream(seed, Stream.EVENTS, month)
    low, high = period.starts[month], period.starts[month + 1]
    scale = (high - low) / (30.44 * DAY)
    rates = (LOGINS_PER_MONTH * people.engagement, people.grievance, 0.05 + 0.1 * people.grievance)
    counts = [np.ones(len(people), np.int64)] + [rng.poisson(r * scale) for r in rates]
    customer = np.concatenate([np.repeat(np.arange(len(people)), c) for c in counts])
    kind = np.repeat(np.arange(len(counts)), [int(c.sum()) for c in counts])
    offset = rng.integers(0, high - low, len(customer))
    key = np.sort((offset * len(people) + customer) * len(EVENT_KINDS) + kind)
    offset, rest = np.divmod(key, len(people) * len(EVENT_KINDS))
    customer, kind = np.divmod(rest, len(EVENT_KINDS))
    share = rng.uniform(0.1, 1.0, int(np.count_nonzero(kind == REFUND)))
    return Events(
        customer, low + offset, kind, _amounts(people, customer, low + offset, kind, share)
    )


def _amounts(people: Population, customer: Ints, time: Ints, kind: Ints, share: Floats) -> Floats:
    """Payments are the monthly charges; refunds give back a share of them."""
    amount = np.zeros(len(kind))
    paid, refunded = kind == PAYMENT, kind == REFUND
    amount[paid] = people.charges_at(customer[paid], time[paid])
    charged = people.charges_at(customer[refunded], time[refunded])
    amount[refunded] = -to_cents(charged * share)
    return amount


@dataclass
class History:
    """What is known about each customer so far: recent activity and churn."""

    tickets: Ints  # in the 30 days before the customer's prediction time
    logins: Ints
    churn_at: Ints  # NEVER for customers who have not churned

    @classmethod
    def empty(cls, rows: int) -> History:
        zeros = np.zeros(rows, np.int64)
        return cls(zeros, zeros.copy(), np.full(rows, NEVER, dtype=np.int64))

    def survivors(self, events: Events) -> Events:
        """The events that happen before their customer churned."""
        return events.take(events.time < self.churn_at[events.customer])

    def record(self, events: Events, people: Population) -> None:
        """Count tickets and logins in each customer's 30 days before their prediction."""
        scored_at = people.scored_at[events.customer]
        recent = (events.time >= scored_at - HORIZON) & (events.time < scored_at)
        rows = len(people)
        for kind, counts in ((TICKET, self.tickets), (LOGIN, self.logins)):
            chosen = events.customer[recent & (events.kind == kind)]
            counts += np.bincount(chosen, minlength=rows)
