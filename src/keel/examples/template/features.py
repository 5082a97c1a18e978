"""Feature code for the churn project: the same functions run in training and serving."""

from __future__ import annotations


def churn_rule(instance: dict[str, object]) -> float:
    """The rule-based fallback: a churn probability from two plain signals."""
    tickets = float(instance.get("tickets_30d") or 0)
    logins = float(instance.get("logins_30d") or 0)
    return min(0.95, 0.1 + 0.15 * tickets - 0.02 * logins) if logins < 20 else 0.05
