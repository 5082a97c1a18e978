"""Slice gates: judged on class counts and a confidence bound, never on noise."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from keel.project import Project
from keel.schema import GateConfig
from keel.training import train
from keel.training.artifact import load_bundle
from keel.training.gate import Evidence, SliceEvidence, decide
from keel.training.gating import deploy, load_holdout, run_gate
from keel.training.inputs import prepare
from keel.training.registry import Registry
from tests.training.test_positive_class import BAD, GOOD, loan_body, loan_frame

MakeProject = Callable[..., Project]
POLICY = {"slices": {"column": "region", "thresholds": {"roc_auc": ">= 0.7"}}}


def _slice_check(found: SliceEvidence, policy: dict[str, Any] = POLICY) -> Any:
    evidence = Evidence(metrics={}, size_bytes=1, latency_p99_ms=1.0, loadable=True)
    evidence = Evidence(**{**evidence.__dict__, "slices": {"x": found}})
    decision = decide(GateConfig.model_validate(policy), evidence)
    return next(check for check in decision.checks if check.name.startswith("slice:"))


def test_below_threshold_but_uncertain_passes_without_a_false_inequality() -> None:
    """0.65 with an upper bound of 0.74 is too uncertain to fail; the line says exactly that."""
    check = _slice_check(SliceEvidence(60, {"roc_auc": 0.65}, {"roc_auc": (0.56, 0.74)}, 12, 48))
    assert check.passed and check.judged
    assert check.statement == "0.65, but its upper 95% bound 0.74 >= 0.7"


def test_whole_interval_below_threshold_fails() -> None:
    """A slice fails when even the upper bound of its metric is below the threshold."""
    check = _slice_check(SliceEvidence(400, {"roc_auc": 0.55}, {"roc_auc": (0.48, 0.62)}, 100, 300))
    assert not check.passed
    assert check.statement == "0.55, and its upper 95% bound 0.62 < 0.7"


def test_lower_is_better_uses_the_lower_bound() -> None:
    """For `log_loss <= 0.3` a slice fails only when the lower bound is above 0.3."""
    policy = {"slices": {"column": "region", "thresholds": {"log_loss": "<= 0.3"}}}
    uncertain = SliceEvidence(60, {"log_loss": 0.4}, {"log_loss": (0.25, 0.6)}, 20, 40)
    certain = SliceEvidence(600, {"log_loss": 0.4}, {"log_loss": (0.35, 0.45)}, 200, 400)
    assert _slice_check(uncertain, policy).passed
    assert not _slice_check(certain, policy).passed


@pytest.mark.parametrize(
    ("positives", "negatives", "reason"),
    [(3, 200, "too few to judge: 3 positives"), (0, 40, "one class only"), (50, 4, "4 neg")],
)
def test_thin_slices_are_not_judged(positives: int, negatives: int, reason: str) -> None:
    """Too few positives or negatives, or one class: not judged, never a failure."""
    found = SliceEvidence(positives + negatives, {"roc_auc": 0.1}, {}, positives, negatives)
    check = _slice_check(found)
    assert check.outcome == "not judged" and check.passed and reason in check.detail


def test_regression_slices_use_min_rows() -> None:
    """A regressor's slice (no classes) is judged on rows against min_rows."""
    policy = {"slices": {"column": "region", "thresholds": {"mae": "<= 1"}, "min_rows": 30}}
    check = _slice_check(SliceEvidence(12, {"mae": 5.0}, {"mae": (4.0, 6.0)}), policy)
    assert check.outcome == "not judged" and "12 rows" in check.detail


def _branches_project(make_project: MakeProject) -> Project:
    frame = loan_frame(rows=3000)
    frame["branch"] = np.random.default_rng(5).integers(0, 30, len(frame))
    gate = (
        "  exclude: [branch]\ngate:\n  baseline: false\n"
        "  slices: {column: branch, thresholds: {roc_auc: '>= 0.99'}}\n"
    )
    return make_project(loan_body(gate), files={"data/loans.csv": frame})


def test_thin_slices_never_fail_the_gate(make_project: MakeProject) -> None:
    """Every branch with < 10 charged-off or < 10 paid held-out loans is listed not judged."""
    project = _branches_project(make_project)
    result = train(project)
    holdout = load_holdout(project, Registry(project.store).record(result.version.version))
    counts = pd.crosstab(holdout["branch"], holdout["loan_status"]).reindex(
        columns=[BAD, GOOD], fill_value=0
    )
    thin = {f"slice:branch={b}" for b, row in counts.iterrows() if min(row) < 10}
    not_judged = {c.name for c in result.decision.checks if not c.judged}
    assert thin and thin == not_judged and result.decision.passed


def test_cli_never_ticks_a_slice_it_did_not_judge(make_project: MakeProject) -> None:
    """No printed slice line carries a tick without a true comparison."""
    project = _branches_project(make_project)
    done = subprocess.run(
        [sys.executable, "-m", "keel", "train", "--project", str(project.root)],
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if "slice:branch=" in line]
    assert lines and all("✓" not in line for line in lines if "not judged" in line)
    assert all(">=" not in line for line in lines if "not judged" in line)


def _flipped_region_frame() -> pd.DataFrame:
    """North is learnable; south's labels are coin flips with the same 20% rate."""
    frame = loan_frame(rows=3000, minority=0.2)
    frame["region"] = np.where(np.arange(len(frame)) % 2 == 0, "north", "south")
    rng = np.random.default_rng(9)
    south = frame["region"] == "south"
    frame.loc[south, "loan_status"] = np.where(rng.random(south.sum()) < 0.2, BAD, GOOD)
    return frame


def test_a_truly_bad_slice_fails(make_project: MakeProject) -> None:
    """South (random labels, many positives) fails roc_auc >= 0.8; north passes."""
    gate = (
        "  exclude: [region]\ngate:\n  baseline: false\n"
        "  slices: {column: region, thresholds: {roc_auc: '>= 0.8'}}\n"
    )
    project = make_project(loan_body(gate), files={"data/loans.csv": _flipped_region_frame()})
    result = train(project)
    failed = [check.name for check in result.decision.failures]
    assert failed == ["slice:region=south:roc_auc"]


def test_vs_production_scores_both_on_the_same_rows(make_project: MakeProject) -> None:
    """vs_production names production's score on the candidate's held-out rows."""
    project = make_project(
        loan_body("gate:\n  vs_production: {roc_auc: {max_drop: 0.5}}\n"),
        files={"data/loans.csv": loan_frame()},
    )
    first = train(project).version.version
    deploy(project, str(first))
    second = train(project).version.version
    decision = run_gate(project, second)
    registry = Registry(project.store)
    holdout = load_holdout(project, registry.record(second))
    bundle = load_bundle(project.artifacts, registry.get(first).artifact)
    proba = bundle["model"].predict_proba(prepare(holdout, bundle["schema"]))
    column = list(bundle["model"].classes_).index(BAD)
    expected = roc_auc_score(holdout["loan_status"] == BAD, proba[:, column])
    check = next(c for c in decision.checks if c.name == "vs_production:roc_auc")
    assert check.compared_with == pytest.approx(expected, abs=1e-6)
    assert f"production v{first} scored" in check.detail and "same held-out rows" in check.detail
