"""The dashboard's drift page with ``monitoring.reference: model:production`` (what
``keel init`` writes): the reference is the production version's training statistics."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from keel.project import Project
from keel.training.reference import reference_statistics
from keel.training.registry import Registry
from tests.ui.conftest import serving, sign_in
from tests.ui.demo import CONFIG, Demo

SCHEMA = [{"name": "x", "type": "float"}, {"name": "plan", "type": "category"}]


def _promote_a_version_with_statistics(project: Project) -> None:
    """Version 4, registered with reference statistics of its holdout (training's own
    summary function), goes to production."""
    rng = np.random.default_rng(4)
    holdout = pd.DataFrame(
        {"x": rng.normal(0, 1, 2_000), "plan": np.array(["basic", "premium"] * 1_000)}
    )
    row = {
        "name": "churn", "source": "train", "artifact": f"{4:064x}", "size_bytes": 1,
        "config_hash": f"{4:064x}", "data_ref": "customers@4", "data_rows": 2_000,
        "data_start": "2026-01-01", "data_end": "2026-06-30", "metrics": {"roc_auc": 0.85},
        "duration_s": 1.0,
    }  # fmt: skip
    record = {"metrics": row["metrics"], "reference": {"features": reference_statistics(
        holdout, SCHEMA)}}  # fmt: skip
    registry = Registry(project.store)
    registry.register(row, record, "tester")
    registry.record_gate(4, {"passed": True, "checks": []}, True, "tester")
    registry.transition(4, "production", "tester", "statistics recorded")


def test_drift_page_reads_the_production_models_reference(fresh_demo: Demo) -> None:
    """Served over HTTP, the page compares the logged window with version 4's training
    statistics: the shifted input ``x`` drifts, and no file named model:production is
    looked for."""
    config = CONFIG.replace("reference: data/reference.csv", "reference: model:production")
    (fresh_demo.root / "keel.yaml").write_text(config)
    with Project.open(fresh_demo.root) as project:
        _promote_a_version_with_statistics(project)
    with serving(fresh_demo.root) as url, sign_in(url, fresh_demo.viewer_key) as client:
        text = client.get("/ui/drift").text
    assert "does not exist" not in text
    assert "predictions of churn@2)" in text
    assert re.search(r'<a href="#col-\d+">x</a></td><td><span class="decision drift"', text)
