"""Feature code for the churn project: the same definitions run in training and serving."""

from __future__ import annotations

from typing import Any

from keel.features import Aggregation, FeatureView, request_transform

customer_profile = FeatureView(
    name="customer_profile",
    source="customers",
    entity="customer_id",
    timestamp="updated_at",
    features=("plan", "region", "age", "income", "monthly_charges"),
)

activity = FeatureView(
    name="activity",
    source="events",
    entity="customer_id",
    timestamp="event_time",
    every="1d",
    ttl="2d",
    features=(
        Aggregation("logins_30d", fn="count", window="30d", where="kind = 'login'"),
        Aggregation("tickets_30d", fn="count", window="30d", where="kind = 'ticket'"),
        Aggregation("tickets_7d", fn="count", window="7d", where="kind = 'ticket'"),
        Aggregation("spend_30d", fn="sum", column="amount", window="30d", where="kind = 'payment'"),
        Aggregation("refunds_30d", fn="count", window="30d", where="kind = 'refund'"),
    ),
)


@request_transform("spend_30d", "monthly_charges")
def spend_ratio(row: dict[str, Any]) -> float | None:
    """Spend over the last 30 days relative to the monthly charge."""
    spend, charges = row.get("spend_30d"), row.get("monthly_charges")
    if spend is None or not charges:
        return None
    return float(spend) / float(charges)


def churn_rule(instance: dict[str, Any]) -> dict[str, Any]:
    """The rule-based fallback: a churn label and its probability from two plain signals,
    answered in the model's shape (the response names the rule as the version)."""
    tickets = float(instance.get("tickets_30d") or 0)
    logins = float(instance.get("logins_30d") or 0)
    risk = max(0.05, min(0.95, 0.1 + 0.15 * tickets - 0.02 * logins)) if logins < 20 else 0.05
    return {"label": int(risk >= 0.5), "probability": risk}
