"""Shadow comparison: how a candidate answered the same requests as production.

Pure: the caller hands in pairs of outputs logged for the same requests. For a classifier
the report is the share of requests where both chose the same label; for a regressor it
is the mean absolute difference relative to production's spread. Promotion needs the
configured number of requests, agreement (or parity) at or above the bar, and no more
unanswered requests (the shadow raised, hung or was dropped) than the allowed rate. A
report with enough requests that is not ready says the shadow should be rejected.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from keel.monitoring.labels import same_label

__all__ = ["ShadowCriteria", "ShadowPair", "ShadowReport", "compare"]


@dataclass(frozen=True)
class ShadowPair:
    """Production's and the shadow's answer to one request (None: the shadow failed)."""

    production: float | str
    shadow: float | str | None
    shadow_latency_ms: float | None = None
    label: float | str | None = None  # ground truth, once it has arrived
    failure: str | None = None  # unanswered: error, timeout, or missing (dropped, not logged)


@dataclass(frozen=True)
class ShadowCriteria:
    min_requests: int = 500
    min_agreement: float = 0.9
    max_error_rate: float = 0.01


@dataclass(frozen=True)
class ShadowReport:
    kind: Literal["classification", "regression"]
    requests: int
    compared: int
    errors: int
    agreement: float | None
    error_delta: float | None
    latency_p50_ms: float | None
    unanswered: dict[str, int]  # errors by cause: error, timeout, missing
    accuracy_production: float | None
    accuracy_shadow: float | None
    ready: bool
    reason: str
    min_requests: int = 0

    @property
    def rejected(self) -> bool:
        """Enough requests were compared and the shadow still fell short."""
        return not self.ready and self.requests >= self.min_requests

    def to_dict(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "rejected": self.rejected}


def compare(
    pairs: list[ShadowPair], kind: Literal["classification", "regression"], criteria: ShadowCriteria
) -> ShadowReport:
    """Summarise shadow traffic and say whether the candidate may go on to canary."""
    answered = [p for p in pairs if p.shadow is not None]
    errors = len(pairs) - len(answered)
    causes = Counter(p.failure or "missing" for p in pairs if p.shadow is None)
    agreement = _agreement(answered) if kind == "classification" else None
    delta = _error_delta(answered) if kind == "regression" else None
    production_acc, shadow_acc = _accuracies(answered) if kind == "classification" else (None, None)
    latencies = [p.shadow_latency_ms for p in answered if p.shadow_latency_ms is not None]
    ready, reason = _verdict(criteria, len(pairs), errors, agreement, delta)
    return ShadowReport(
        kind=kind,
        requests=len(pairs),
        compared=len(answered),
        errors=errors,
        agreement=agreement,
        error_delta=delta,
        latency_p50_ms=statistics.median(latencies) if latencies else None,
        unanswered=dict(sorted(causes.items())),
        accuracy_production=production_acc,
        accuracy_shadow=shadow_acc,
        ready=ready,
        reason=reason,
        min_requests=criteria.min_requests,
    )


def _agreement(pairs: list[ShadowPair]) -> float | None:
    if not pairs:
        return None
    return sum(p.production == p.shadow for p in pairs) / len(pairs)


def _error_delta(pairs: list[ShadowPair]) -> float | None:
    """Mean |shadow - production| over production's standard deviation."""
    if len(pairs) < 2:
        return None
    production = [float(p.production) for p in pairs]
    diffs = [abs(float(p.shadow) - float(p.production)) for p in pairs]  # type: ignore[arg-type]
    spread = statistics.pstdev(production) or 1.0
    return statistics.fmean(diffs) / spread


def _accuracies(pairs: list[ShadowPair]) -> tuple[float | None, float | None]:
    labelled = [p for p in pairs if p.label is not None]
    if not labelled:
        return None, None
    production = sum(same_label(p.production, p.label) for p in labelled) / len(labelled)
    shadow = sum(same_label(p.shadow, p.label) for p in labelled) / len(labelled)
    return production, shadow


def _verdict(
    criteria: ShadowCriteria,
    requests: int,
    errors: int,
    agreement: float | None,
    delta: float | None,
) -> tuple[bool, str]:
    if requests < criteria.min_requests:
        return False, f"{requests}/{criteria.min_requests} shadow requests so far"
    if errors > criteria.max_error_rate * requests:
        return False, f"the shadow did not answer {errors} of {requests} requests"
    if agreement is not None and agreement < criteria.min_agreement:
        return False, f"agreement {agreement:.1%} is below {criteria.min_agreement:.0%}"
    if delta is not None and delta > 1 - criteria.min_agreement:
        return False, f"mean difference {delta:.2f} sd exceeds {1 - criteria.min_agreement:.2f} sd"
    return True, "ready for canary"
