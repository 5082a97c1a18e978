"""``keel registry import``: bring an existing pilot model into the registry.

The model file is a joblib dump or a pickle. Loading either runs code from the file, so
import only models you or your team produced. A data sample (features and target) gives
the metrics, reference statistics and input schema a trained version would have; the
sample is stored as the version's held-out rows, so ``keel gate`` works on it too.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from keel.errors import ModelLoadError, TrainingDataError
from keel.training import provenance
from keel.training.artifact import dump_bundle, make_bundle
from keel.training.data import read_table
from keel.training.inputs import infer_schema
from keel.training.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from keel.training.record import model_summary, registry_row, store_frame
from keel.training.registry import Registry
from keel.training.versions import ModelVersion

if TYPE_CHECKING:
    from keel.project import Project

__all__ = ["PICKLE_WARNING", "import_model", "load_pilot_model", "read_sample", "register_model"]

PICKLE_WARNING = (
    "loading a pickle or joblib file runs code stored in it: import only models you trust"
)


def load_pilot_model(path: Path) -> Any:
    """The object in a joblib or pickle file (which runs code: trusted files only)."""
    if not path.is_file():
        raise TrainingDataError(f"{path} does not exist; pass the model file to import")
    try:
        if path.suffix in (".joblib", ".jl"):
            import joblib

            return joblib.load(path)
        with path.open("rb") as handle:
            return pickle.load(handle)  # runs code: the user vouches for the file
    except Exception as error:
        raise ModelLoadError(
            f"{path.name} does not load as a model ({type(error).__name__}: {error})"
        ) from None


def import_model(
    project: Project, model_path: Path, sample_path: Path, target: str, schema_path: Path | None
) -> ModelVersion:
    """Register a pilot model, measured on ``sample_path``; returns the new version."""
    started = time.perf_counter()
    model = load_pilot_model(model_path)
    sample = read_sample(sample_path)
    features = _features(sample, target, schema_path)
    origin = {"imported_from": model_path.name}
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    data_ref = f"sample:{sample_path.name}"
    return register_model(
        project, model, (sample, data_ref), target, features, origin, digest, started
    )


def read_sample(path: Path) -> Any:
    """The data sample an imported model is measured on."""
    return read_table(path) if path.is_file() else _missing(path)


def register_model(
    project: Project,
    model: Any,
    measured_on: tuple[Any, str],
    target: str,
    features: list[str],
    origin: dict[str, Any],
    digest: str,
    started: float,
) -> ModelVersion:
    """Register a fitted ``model`` from outside Keel, measured on a sample (the frame and
    its data reference): ``origin`` joins the record's training section (where it came
    from, its own lineage) and ``digest`` identifies what was imported."""
    sample, data_ref = measured_on
    if not hasattr(model, "predict"):
        where = origin.get("imported_from", "the file")
        raise ModelLoadError(f"{where} holds a {type(model).__name__}, not a model")
    if target not in sample.columns:
        raise TrainingDataError(f"the sample has no target column '{target}'")
    bundle = make_bundle(model, infer_schema(sample[features]), target, sample[target].to_numpy())
    names = list(
        CLASSIFICATION_METRICS if bundle["task"] == "classification" else REGRESSION_METRICS
    )
    blob = dump_bundle(bundle)
    record = {
        "source": "import",
        "name": project.config.name,
        "training": {**origin, "target": target, "features": features},
        "config_hash": digest,
        "data": {
            "ref": data_ref,
            "sha256": None,
            "rows": len(sample),
            "start": None,
            "end": None,
        },
        "code": provenance.code_version(project.root),
        "libraries": provenance.library_versions(),
        "artifact": {"sha256": project.artifacts.put_bytes(blob), "size_bytes": len(blob)},
        **model_summary(bundle, sample, names),
    }
    record["holdout"]["sha256"] = store_frame(project.artifacts, sample)
    record["duration_s"] = {"fit": 0.0, "total": round(time.perf_counter() - started, 4)}
    return Registry(project.store).register(registry_row(record), record, provenance.actor())


def _features(sample: Any, target: str, schema_path: Path | None) -> list[str]:
    if target not in sample.columns:
        raise TrainingDataError(f"the sample has no target column '{target}'")
    if schema_path is None:
        return [str(c) for c in sample.columns if c != target]
    features = _read_schema(schema_path)
    missing = [name for name in features if name not in sample.columns]
    if missing:
        raise TrainingDataError(f"the sample lacks the schema's columns {', '.join(missing)}")
    return features


def _read_schema(path: Path) -> list[str]:
    try:
        raw = (json.loads if path.suffix == ".json" else yaml.safe_load)(path.read_text())
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise TrainingDataError(f"cannot read the schema file {path} ({error})") from None
    if isinstance(raw, dict):
        raw = raw.get("features", list(raw))
    if not isinstance(raw, list) or not raw:
        raise TrainingDataError(f"{path} must list the feature columns (a list, or features:)")
    return [str(item["name"] if isinstance(item, dict) else item) for item in raw]


def _missing(path: Path) -> Any:
    raise TrainingDataError(f"the data sample {path} does not exist; pass --sample FILE")
