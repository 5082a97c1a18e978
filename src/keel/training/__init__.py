"""Training: reproducible training from one config, a model registry, an evaluation gate.

    training:
      data: data/train.csv            # or module:function, or a data version (Data layer)
      target: churned
      exclude: [customer_id]          # columns that are neither target nor features
      model: {estimator: sklearn.ensemble.HistGradientBoostingClassifier, params: {}}
      split: {by: time, column: prediction_time, test_size: 0.2}
      seed: 42
      positive_class: 1               # default: the minority class of the training labels
    gate:
      thresholds: {roc_auc: ">= 0.80"}
      vs_production: {roc_auc: {max_drop: 0.01}}
      baseline: {margin: 0.005}       # beat DummyClassifier/DummyRegressor; false: off
      hard_examples: {file: data/hard_examples.csv, must_pass: true}
      slices: {column: region, thresholds: {roc_auc: ">= 0.75"}, min_positives: 10}
      latency_p99_ms: 5
      max_size_mb: 50

``model_classes(project, version)`` tells other layers a version's classes and positive
class. ``train(project)`` fits, registers and gates a version; ``deploy(project, "latest")``
promotes it; ``read_status()`` answers what runs in production. ``read_versions``,
``count_versions``, ``last_event``, ``previous_production_version`` and
``read_run_record`` are the registry's read functions over a connection
(``keel.store.reads``). Names are imported on first use, so ``keel status`` (SQLAlchemy
Core, through ``keel.training.status``) never pays for pandas or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel._lazy import lazy_getattr

__all__ = [
    "Check",
    "Evidence",
    "GateDecision",
    "ModelClasses",
    "ModelVersion",
    "Registry",
    "StatusEvent",
    "TrainResult",
    "TrainingFrame",
    "build_training_table",
    "count_versions",
    "decide",
    "deploy",
    "deploy_allowed",
    "diff_records",
    "import_model",
    "last_event",
    "load_bundle",
    "model_classes",
    "predict_scores",
    "previous_production_version",
    "read_run_record",
    "read_status",
    "read_versions",
    "resolve_training_frame",
    "run_gate",
    "status_of",
    "train",
]

if TYPE_CHECKING:
    from keel.training.artifact import load_bundle, model_classes, predict_scores
    from keel.training.classes import ModelClasses
    from keel.training.data import TrainingFrame, resolve_training_frame
    from keel.training.diff import diff_records
    from keel.training.example import build_training_table
    from keel.training.gate import Check, Evidence, GateDecision, decide
    from keel.training.gating import deploy, deploy_allowed, run_gate
    from keel.training.importer import import_model
    from keel.training.pipeline import TrainResult, train
    from keel.training.reads import (
        count_versions,
        last_event,
        previous_production_version,
        read_run_record,
        read_versions,
    )
    from keel.training.registry import Registry
    from keel.training.status import read_status, status_of
    from keel.training.versions import ModelVersion, StatusEvent

_LAZY = {
    "Check": "gate",
    "Evidence": "gate",
    "GateDecision": "gate",
    "ModelClasses": "classes",
    "ModelVersion": "versions",
    "Registry": "registry",
    "StatusEvent": "versions",
    "TrainResult": "pipeline",
    "TrainingFrame": "data",
    "build_training_table": "example",
    "count_versions": "reads",
    "decide": "gate",
    "deploy": "gating",
    "deploy_allowed": "gating",
    "diff_records": "diff",
    "import_model": "importer",
    "last_event": "reads",
    "load_bundle": "artifact",
    "model_classes": "artifact",
    "predict_scores": "artifact",
    "previous_production_version": "reads",
    "read_run_record": "reads",
    "read_status": "status",
    "read_versions": "reads",
    "resolve_training_frame": "data",
    "run_gate": "gating",
    "status_of": "status",
    "train": "pipeline",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
