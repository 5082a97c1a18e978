"""Helpers for the delivery tests: stage a fitted model as shadow or canary."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from keel.delivery.staging import StageKind, stage
from tests.serving.helpers import churn_frame, fitted_model


def stage_model(
    project: Any, tmp: Path, kind: StageKind, seed: int = 1, model: Any = None, share: float = 30
) -> Any:
    """Import a model (fitted with ``seed``, or ``model``) and stage it as ``kind``."""
    from keel.training import import_model

    fitted, _ = fitted_model(seed)
    model_path = tmp / f"staged-{seed}.pkl"
    model_path.write_bytes(pickle.dumps(model if model is not None else fitted))
    sample_path = tmp / f"staged-sample-{seed}.csv"
    churn_frame(rows=120, seed=seed + 100).to_csv(sample_path, index=False)
    version = import_model(project, model_path, sample_path, "churned", None)
    return stage(project, str(version.version), kind, share=share, force=True, reason="test")
