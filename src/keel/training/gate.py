"""The evaluation gate: a pure decision over a policy (``gate:`` in keel.yaml) and evidence.

``decide`` does no I/O and reads no clock. The evidence (metrics, the production model's
metrics, hard-example results, slice metrics, measured latency, size, loadability) is
gathered by ``keel.training.evaluate``; the decision lists every check with its value,
threshold and outcome, and passes only if every check passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from keel.expressions import parse_threshold
from keel.schema import GateConfig
from keel.training.checks import OPS, Check
from keel.training.slice_gate import SliceEvidence, slice_checks

__all__ = [
    "LOWER_IS_BETTER",
    "Check",
    "Evidence",
    "GateDecision",
    "HardExampleResult",
    "SliceEvidence",
    "decide",
    "parse_threshold",
]

LOWER_IS_BETTER = frozenset({"log_loss", "brier", "mae", "rmse"})


@dataclass(frozen=True)
class GateDecision:
    """Every check and the verdict: pass only if all checks pass."""

    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def to_dict(self) -> dict[str, Any]:
        checks = [{**asdict(check), "outcome": check.outcome} for check in self.checks]
        return {"passed": self.passed, "checks": checks}


@dataclass(frozen=True)
class HardExampleResult:
    """A model's results on the hard-example file."""

    rows: int
    metric: str
    value: float | None
    production_value: float | None
    must_pass_failed: tuple[str, ...] = ()
    must_pass_total: int = 0


@dataclass(frozen=True)
class Evidence:
    """What the gate decides on, measured by the shell."""

    metrics: dict[str, float | None]
    size_bytes: int
    latency_p99_ms: float | None
    loadable: bool
    loadable_detail: str = ""
    production_version: int | None = None
    production_metrics: dict[str, float | None] | None = None
    baseline_metrics: dict[str, float | None] | None = None
    baseline_model: str = "the trivial model"
    hard_examples: HardExampleResult | None = None
    production_same_rows: bool = True
    slices: dict[str, SliceEvidence] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def decide(policy: GateConfig, evidence: Evidence) -> GateDecision:
    """The gate's decision for ``evidence`` under ``policy``."""
    checks = [
        *_thresholds(policy.thresholds, evidence.metrics, "threshold"),
        *_vs_production(policy, evidence),
        *_baseline(policy, evidence),
        *_hard_examples(policy, evidence.hard_examples),
        *slice_checks(policy.slices, evidence.slices),
        *_budgets(policy, evidence),
        *(
            Check(name, False, None, "evidence could be gathered", reason)
            for name, reason in sorted(evidence.problems.items())
        ),
        Check(
            "loadable",
            evidence.loadable,
            None,
            "loads and predicts as trained",
            evidence.loadable_detail,
        ),
    ]
    return GateDecision(tuple(checks))


def _compare(name: str, value: float | None, threshold: str, why_none: str) -> Check:
    op, bound = parse_threshold(threshold)
    if value is None:
        return Check(name, False, None, threshold, why_none)
    return Check(name, OPS[op](value, bound), value, threshold)


def _thresholds(
    thresholds: dict[str, str], metrics: dict[str, float | None], prefix: str
) -> Iterator[Check]:
    for metric, threshold in sorted(thresholds.items()):
        why = (
            f"{metric} is undefined on these rows (e.g. only one class present)"
            if metric in metrics
            else _not_computed(metric)
        )
        yield _compare(f"{prefix}:{metric}", metrics.get(metric), threshold, why)


def _drop(metric: str, value: float, baseline: float) -> float:
    return value - baseline if metric in LOWER_IS_BETTER else baseline - value


def _no_regression(
    name: str,
    metric: str,
    value: float | None,
    baseline: float | None,
    max_drop: float,
    scored: str,
) -> Check:
    """``scored`` says who the baseline is and on which rows, e.g. "production v3 scored"."""
    threshold = f"drop <= {max_drop}"
    if baseline is None:
        return Check.not_judged(name, "no production value to compare with", value)
    if value is None:
        return Check(name, False, None, threshold, f"{metric} is undefined for this model")
    drop = round(_drop(metric, value, baseline), 9)
    detail = f"{scored.format(score=f'{baseline:g}')}; drop {drop}"
    return Check(name, drop <= max_drop, value, threshold, detail, baseline)


def _vs_production(policy: GateConfig, evidence: Evidence) -> Iterator[Check]:
    production = evidence.production_metrics or {}
    rows = (
        "on the same held-out rows"
        if evidence.production_same_rows
        else "on its own held-out rows (it takes other inputs; its recorded metrics)"
    )
    scored = f"production v{evidence.production_version} scored {{score}} {rows}"
    for metric, rule in sorted(policy.vs_production.items()):
        yield _no_regression(
            f"vs_production:{metric}",
            metric,
            evidence.metrics.get(metric),
            production.get(metric),
            rule.max_drop,
            scored,
        )


def _baseline(policy: GateConfig, evidence: Evidence) -> Iterator[Check]:
    spec = policy.baseline
    if spec is None:
        return
    gated = sorted(set(policy.thresholds) | set(policy.vs_production))
    for metric in spec.metrics if spec.metrics is not None else gated or sorted(evidence.metrics):
        name = f"baseline:{metric}"
        if evidence.baseline_metrics is None:
            yield Check.not_judged(name, "no trivial model was recorded with this version")
        elif metric not in evidence.metrics:
            yield Check(name, False, None, "beats the trivial model", _not_computed(metric))
        else:
            yield _beats(name, metric, evidence, spec.margin)


def _beats(name: str, metric: str, evidence: Evidence, margin: float) -> Check:
    """The candidate must be better than the trivial model's score by at least ``margin``."""
    value = evidence.metrics.get(metric)
    dummy = (evidence.baseline_metrics or {}).get(metric)
    if dummy is None:
        return Check.not_judged(name, f"{metric} is undefined for the trivial model here", value)
    lower = metric in LOWER_IS_BETTER
    bound = round(dummy - margin if lower else dummy + margin, 9)
    threshold = f"{'<=' if lower else '>='} {bound:g}"
    detail = (
        f"{evidence.baseline_model} scored {dummy:g} on the same held-out rows; margin {margin:g}"
    )
    if value is None:
        return Check(name, False, None, threshold, f"{metric} is undefined for this model", dummy)
    passed = value <= bound if lower else value >= bound
    return Check(name, passed, value, threshold, detail, dummy)


def _not_computed(metric: str) -> str:
    return f"{metric} was not computed; add it to training.metrics"


def _hard_examples(policy: GateConfig, result: HardExampleResult | None) -> Iterator[Check]:
    spec = policy.hard_examples
    if spec is None or result is None:
        return
    yield _no_regression(
        f"hard_examples:{spec.metric}",
        spec.metric,
        result.value,
        result.production_value,
        spec.max_drop,
        "production scored {score} on the same hard examples",
    )
    if spec.must_pass:
        failed = result.must_pass_failed
        detail = f"failed: {', '.join(failed[:10])}" if failed else ""
        yield Check(
            "hard_examples:must_pass",
            not failed,
            float(len(failed)),
            f"0 of {result.must_pass_total} fail",
            detail,
        )


def _budgets(policy: GateConfig, evidence: Evidence) -> Iterator[Check]:
    if policy.latency_p99_ms is not None:
        yield _compare(
            "latency_p99_ms",
            evidence.latency_p99_ms,
            f"<= {policy.latency_p99_ms}",
            "not measured: the model did not load",
        )
    if policy.max_size_mb is not None:
        size_mb = round(evidence.size_bytes / 1_000_000, 6)
        yield _compare("size_mb", size_mb, f"<= {policy.max_size_mb}", "not measured")
