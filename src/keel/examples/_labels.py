"""Churn labels: who churns in the 30 days after their prediction time, and why.

The label is drawn from a logistic model of what is known at the prediction time (tenure,
plan, monthly charges, tickets and logins in the 30 days before) plus unobserved noise;
nothing after the prediction time goes into it. Under concept drift tickets stop mattering
and high charges drive churn instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keel.examples._world import (
    DAY,
    HORIZON,
    Bools,
    Floats,
    History,
    Ints,
    Population,
    Stream,
    Timeline,
    stream,
)

__all__ = ["Scores", "churn_logit", "hard_examples", "score"]

PLAN_EFFECT: Floats = np.array([0.3, 0.0, -0.3])  # basic, standard, premium
MEAN_CHARGES = 46.0
UNOBSERVED = 0.3  # standard deviation of what the features cannot see
HARD_PER_SIDE = 15


@dataclass(frozen=True)
class Scores:
    """One cohort's predictions: the features known at prediction time and the outcome."""

    customer: Ints
    prediction_time: Ints
    tenure_days: Ints
    tickets: Ints
    logins: Ints
    charges: Floats
    plan: Ints
    probability: Floats  # under the original concept, without the unobserved noise
    churned: Ints

    def __len__(self) -> int:
        return len(self.customer)

    def take(self, rows: Ints | Bools) -> Scores:
        return Scores(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))

    @staticmethod
    def concat(parts: list[Scores]) -> Scores:
        names = Scores.__dataclass_fields__
        return Scores(*(np.concatenate([getattr(p, name) for p in parts]) for name in names))


def churn_logit(
    tenure_days: Ints, tickets: Ints, logins: Ints, charges: Floats, plan: Ints, *, concept: bool
) -> Floats:
    """Log-odds of churning in the next 30 days.

    New, unengaged, unhappy customers on dear plans churn; the weights give about 20%
    churn and let gradient boosting reach a ROC AUC near 0.8. Under concept drift tickets
    stop mattering and high charges drive churn, at about the same overall rate.
    """
    common = 0.2 - 1.2 * tenure_days / 365 - 0.35 * logins + PLAN_EFFECT[plan]
    if concept:
        return common + 0.5 + 0.06 * (charges - MEAN_CHARGES)
    return common + 1.1 * tickets + 0.012 * (charges - MEAN_CHARGES)


def score(
    people: Population, history: History, period: Timeline, month: int, *, seed: int, concept: bool
) -> Scores:
    """Score the customers whose prediction time is this month's start, and record churn."""
    rng = stream(seed, Stream.LABELS, month)
    at = period.starts[month]
    customer = np.flatnonzero(people.scored_at == at).astype(np.int64)
    noise, draw = rng.normal(0, UNOBSERVED, len(customer)), rng.random(len(customer))
    delay = rng.integers(1, HORIZON, len(customer))
    features = _features(people, history, customer, at)
    logit = churn_logit(*features, concept=concept)
    churned = draw < _sigmoid(logit + noise)
    history.churn_at[customer[churned]] = at + delay[churned]
    probability = _sigmoid(churn_logit(*features, concept=False))
    times = np.full(len(customer), at, dtype=np.int64)
    return Scores(customer, times, *features, probability, churned.astype(np.int64))


def _features(
    people: Population, history: History, customer: Ints, at: int
) -> tuple[Ints, Ints, Ints, Floats, Ints]:
    times = np.full(len(customer), at, dtype=np.int64)
    tenure_days = (at - people.signup_at[customer]) // DAY
    charges = people.charges_at(customer, times)
    plan = people.plan_at(customer, times)
    return tenure_days, history.tickets[customer], history.logins[customer], charges, plan


def _sigmoid(x: Floats) -> Floats:
    return 1.0 / (1.0 + np.exp(-x))


def hard_examples(scores: Scores, period: Timeline) -> Scores:
    """Clear-cut cases from before any drift: likeliest churners who churned, and safest stayers."""
    pool = scores.take(scores.prediction_time <= period.midpoint)
    churners = _extreme(pool, pool.churned == 1, -pool.probability)
    stayers = _extreme(pool, pool.churned == 0, pool.probability)
    chosen = pool.take(np.concatenate([churners, stayers]))
    return chosen.take(np.argsort(chosen.customer, kind="stable"))


def _extreme(pool: Scores, eligible: Bools, key: Floats) -> Ints:
    rows = np.flatnonzero(eligible)
    order = np.lexsort((pool.customer[rows], key[rows]))
    return rows[order[:HARD_PER_SIDE]].astype(np.int64)
