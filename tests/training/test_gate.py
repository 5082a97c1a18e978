"""The gate decision: a pure function of policy and evidence."""

from __future__ import annotations

from typing import Any

import pytest

from keel.errors import ConfigError
from keel.schema import GateConfig
from keel.training.gate import (
    Evidence,
    HardExampleResult,
    SliceEvidence,
    decide,
    parse_threshold,
)


def _evidence(**changes: Any) -> Evidence:
    values: dict[str, Any] = {
        "metrics": {"roc_auc": 0.85, "log_loss": 0.4},
        "size_bytes": 2_000_000,
        "latency_p99_ms": 3.0,
        "loadable": True,
    }
    return Evidence(**(values | changes))


def _check(policy: dict[str, Any], evidence: Evidence, name: str) -> Any:
    decision = decide(GateConfig.model_validate(policy), evidence)
    return next(check for check in decision.checks if check.name == name)


@pytest.mark.parametrize(
    ("threshold", "passed"),
    [(">= 0.8", True), (">= 0.9", False), ("< 0.86", True), ("> 0.85", False)],
)
def test_thresholds(threshold: str, passed: bool) -> None:
    """An absolute threshold compares the held-out metric with its bound."""
    check = _check({"thresholds": {"roc_auc": threshold}}, _evidence(), "threshold:roc_auc")
    assert check.passed is passed


def test_undefined_metric_fails_with_reason() -> None:
    """A metric that is undefined (one class held out) fails its check and says why."""
    evidence = _evidence(metrics={"roc_auc": None})
    check = _check({"thresholds": {"roc_auc": ">= 0.8"}}, evidence, "threshold:roc_auc")
    assert not check.passed and "undefined" in check.detail


def test_regression_beyond_tolerance_fails() -> None:
    """Dropping more than max_drop below production's metric fails."""
    evidence = _evidence(production_metrics={"roc_auc": 0.9})
    policy = {"vs_production": {"roc_auc": {"max_drop": 0.01}}}
    assert not _check(policy, evidence, "vs_production:roc_auc").passed


def test_lower_is_better_metrics_regress_upwards() -> None:
    """For log loss a rise is the regression: 0.4 vs production 0.3 fails."""
    evidence = _evidence(production_metrics={"log_loss": 0.3})
    policy = {"vs_production": {"log_loss": {"max_drop": 0.05}}}
    assert not _check(policy, evidence, "vs_production:log_loss").passed


def test_no_production_model_passes_comparison() -> None:
    """Without a production model there is nothing to regress against."""
    check = _check(
        {"vs_production": {"roc_auc": {"max_drop": 0}}}, _evidence(), "vs_production:roc_auc"
    )
    assert check.passed and "no production" in check.detail


def test_must_pass_failures_fail_the_gate() -> None:
    """A must-pass hard example predicted wrong fails the gate and is named."""
    hard = HardExampleResult(
        rows=4,
        metric="accuracy",
        value=0.75,
        production_value=None,
        must_pass_failed=("case-3",),
        must_pass_total=2,
    )
    check = _check(
        {"hard_examples": {"file": "x.csv"}},
        _evidence(hard_examples=hard),
        "hard_examples:must_pass",
    )
    assert not check.passed and "case-3" in check.detail


def test_hard_example_regression_fails() -> None:
    """Doing worse than production on the hard examples fails."""
    hard = HardExampleResult(rows=4, metric="accuracy", value=0.5, production_value=1.0)
    check = _check(
        {"hard_examples": {"file": "x.csv"}},
        _evidence(hard_examples=hard),
        "hard_examples:accuracy",
    )
    assert not check.passed


def test_slice_thresholds_apply_per_value() -> None:
    """Each slice value is checked against the slice threshold (here: no interval)."""
    evidence = _evidence(
        slices={
            "north": SliceEvidence(50, {"roc_auc": 0.6}, positives=25, negatives=25),
            "south": SliceEvidence(50, {"roc_auc": 0.9}, positives=25, negatives=25),
        },
    )
    policy = {"slices": {"column": "region", "thresholds": {"roc_auc": ">= 0.7"}}}
    decision = decide(GateConfig.model_validate(policy), evidence)
    assert [c.name for c in decision.failures] == ["slice:region=north:roc_auc"]


def test_small_slices_are_not_gated() -> None:
    """A slice with too few positives is not judged: no failure, and no tick."""
    evidence = _evidence(
        slices={"west": SliceEvidence(30, {"roc_auc": 0.1}, positives=3, negatives=27)}
    )
    policy = {"slices": {"column": "region", "thresholds": {"roc_auc": ">= 0.7"}}}
    decision = decide(GateConfig.model_validate(policy), evidence)
    west = next(check for check in decision.checks if check.name == "slice:region=west")
    assert decision.passed and west.outcome == "not judged"


def test_size_budget() -> None:
    """A 2 MB model fails a 1 MB budget."""
    assert not _check({"max_size_mb": 1}, _evidence(), "size_mb").passed


def test_latency_budget() -> None:
    """A 3 ms p99 passes a 5 ms budget."""
    assert _check({"latency_p99_ms": 5}, _evidence(), "latency_p99_ms").passed


def test_unloadable_model_fails() -> None:
    """A model that does not load back fails even with an empty policy."""
    decision = decide(GateConfig(), _evidence(loadable=False, loadable_detail="corrupt"))
    assert not decision.passed


def test_decision_lists_every_check() -> None:
    """The recorded decision holds each check's name, value, threshold and outcome."""
    data = decide(GateConfig(max_size_mb=10), _evidence()).to_dict()
    assert data["passed"] is True
    assert {"name", "passed", "value", "threshold", "detail"} <= set(data["checks"][0])


def test_bad_threshold_text_is_a_config_error() -> None:
    """A threshold that is not a comparison is a one-sentence config error."""
    with pytest.raises(ConfigError, match="not a comparison"):
        parse_threshold("at least 0.8")
