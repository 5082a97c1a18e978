"""Drift in the second half of the period.

The customers affected are those whose record was updated after the midpoint; since a
record is updated in the month before the customer's prediction time, these are exactly the
customers scored after the midpoint. Their new values hold from the update on, so their
payments change from then and their label is drawn from the drifted record. Concept drift
changes no record: it switches the label model (see ``_labels.churn_logit``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from keel.examples._world import (
    REGIONS,
    Bools,
    Population,
    Stream,
    Timeline,
    price,
    stream,
    to_cents,
)

__all__ = ["DRIFT_KINDS", "apply_drift"]

DRIFT_KINDS = ("numeric_shift", "new_category", "category_share", "concept")

SHIFT_IN_STD = 1.5
DRIFTED_PLAN_SHARES = (0.15, 0.25, 0.6)  # premium becomes the majority
NEW_REGION_SHARE = 0.3
# New plans are priced before the price shift, so that both can apply.
_ORDER = ("category_share", "numeric_shift", "new_category", "concept")

Drift = Callable[[Population, Bools, np.random.Generator], Population]


def apply_drift(
    people: Population, period: Timeline, kinds: Sequence[str], seed: int
) -> Population:
    """Apply each of the drift ``kinds`` to the customers updated after the midpoint."""
    affected = people.updated_at > period.midpoint
    for kind in _ORDER:
        if kind in kinds:
            rng = stream(seed, Stream.DRIFT, DRIFT_KINDS.index(kind))
            people = _DRIFTS[kind](people, affected, rng)
    return people


def _numeric_shift(people: Population, affected: Bools, rng: np.random.Generator) -> Population:
    charges_step = SHIFT_IN_STD * float(np.std(people.charges_before))
    income_step = SHIFT_IN_STD * float(np.std(people.income))
    return dataclasses.replace(
        people,
        charges=to_cents(np.where(affected, people.charges + charges_step, people.charges)),
        income=to_cents(np.where(affected, people.income + income_step, people.income)),
    )


def _new_category(people: Population, affected: Bools, rng: np.random.Generator) -> Population:
    moved = affected & (rng.random(len(people)) < NEW_REGION_SHARE)
    region = np.where(moved, REGIONS.index("central"), people.region)
    return dataclasses.replace(people, region=region)


def _category_share(people: Population, affected: Bools, rng: np.random.Generator) -> Population:
    drawn = rng.choice(len(DRIFTED_PLAN_SHARES), len(people), p=DRIFTED_PLAN_SHARES)
    plan = np.where(affected, drawn, people.plan)
    return dataclasses.replace(people, plan=plan, charges=price(plan, people.price_noise))


def _concept(people: Population, affected: Bools, rng: np.random.Generator) -> Population:
    return people


_DRIFTS: dict[str, Drift] = {
    "numeric_shift": _numeric_shift,
    "new_category": _new_category,
    "category_share": _category_share,
    "concept": _concept,
}
