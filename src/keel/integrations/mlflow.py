"""MLflow both ways: import an MLflow model into the registry, export a version as one.

Import takes an MLflow model directory (the folder with an ``MLmodel`` file) or a
``runs:/`` / ``models:/`` URI that MLflow resolves with its own tracking settings. The
scikit-learn, XGBoost and LightGBM flavours load through MLflow's own loaders; the input
signature becomes the version's feature list (without one, the sample's columns are used
and the record says so); the run's params and metrics, when MLflow can reach the run,
are kept in the version's lineage.

Export writes a ``python_function`` model around the version's artifact: MLflow's
``pyfunc.load_model`` loads it and answers a frame with Keel's own fields, ``prediction``
and, for a binary classifier, ``probability`` of the positive class, computed as the
server computes them.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from keel.errors import MissingExtraError, ModelLoadError, RegistryError

if TYPE_CHECKING:
    import pandas as pd

    from keel.project import Project
    from keel.training.versions import ModelVersion

__all__ = ["export_mlflow", "import_mlflow", "is_mlflow_model"]

FLAVORS = ("sklearn", "xgboost", "lightgbm")  # the loaders tried, in this order
_BUNDLE = "keel-model.pkl"


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise MissingExtraError("mlflow", "mlflow") from None
    return mlflow


def is_mlflow_model(location: str) -> bool:
    """Whether ``location`` names an MLflow model: a URI MLflow resolves, or a folder
    holding an ``MLmodel`` file."""
    if location.startswith(("runs:/", "models:/")):
        return True
    return (Path(location) / "MLmodel").is_file()


# -- import -------------------------------------------------------------------------------


def import_mlflow(project: Project, location: str, sample_path: Path, target: str) -> ModelVersion:
    """Register the MLflow model at ``location``, measured on ``sample_path``."""
    from keel.training.importer import read_sample, register_model

    started = time.perf_counter()
    folder = _local_folder(location)
    spec = _read_mlmodel(folder)
    flavor = _flavor(spec, location)
    model = _load(flavor, folder)
    sample = read_sample(sample_path)
    features, schema_from = _features(spec, sample, target)
    origin = {
        "imported_from": location,
        "mlflow": {
            "flavor": flavor,
            "run_id": spec.get("run_id"),
            "schema_from": schema_from,
            **_run_lineage(spec.get("run_id")),
        },
    }
    digest = _digest(folder)
    measured_on = (sample, f"sample:{sample_path.name}")
    return register_model(project, model, measured_on, target, features, origin, digest, started)


def _local_folder(location: str) -> Path:
    if not location.startswith(("runs:/", "models:/")):
        return Path(location)
    try:
        return Path(_mlflow().artifacts.download_artifacts(artifact_uri=location))
    except MissingExtraError:
        raise
    except Exception as error:
        raise ModelLoadError(
            f"MLflow cannot resolve {location} ({type(error).__name__}); check "
            "MLFLOW_TRACKING_URI and the run or model name"
        ) from None


def _read_mlmodel(folder: Path) -> dict[str, Any]:
    path = folder / "MLmodel"
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ModelLoadError(
            f"{folder} is not an MLflow model directory: cannot read MLmodel ({error})"
        ) from None
    if not isinstance(spec, dict) or not isinstance(spec.get("flavors"), dict):
        raise ModelLoadError(f"{path} lists no flavors; is it an MLflow model?")
    return spec


def _flavor(spec: dict[str, Any], location: str) -> str:
    present = [name for name in spec["flavors"] if name != "python_function"]
    for name in FLAVORS:
        if name in present:
            return name
    found = ", ".join(present) or "python_function only"
    raise ModelLoadError(
        f"the MLflow model at {location} has flavor {found}; Keel imports "
        f"{', '.join(FLAVORS)} models"
    )


def _load(flavor: str, folder: Path) -> Any:
    import importlib

    _mlflow()  # the extra is installed, or one sentence saying how

    loader = importlib.import_module(f"mlflow.{flavor}")
    try:
        model = loader.load_model(str(folder))
    except Exception as error:
        raise ModelLoadError(
            f"MLflow's {flavor} loader cannot load {folder} ({type(error).__name__}: {error})"
        ) from None
    if flavor != "sklearn" and not hasattr(model, "get_params"):
        raise ModelLoadError(
            f"the {flavor} model in {folder} is a native {type(model).__name__}; log it "
            f"through the scikit-learn API ({_sklearn_api(flavor)}) to import it"
        )
    return model


def _sklearn_api(flavor: str) -> str:
    return {"xgboost": "XGBClassifier / XGBRegressor", "lightgbm": "LGBMClassifier"}[flavor]


def _features(spec: dict[str, Any], sample: pd.DataFrame, target: str) -> tuple[list[str], str]:
    """The signature's input columns, or the sample's columns when there is none."""
    import json

    from keel.errors import TrainingDataError

    inputs = (spec.get("signature") or {}).get("inputs")
    if not inputs:
        return [str(c) for c in sample.columns if c != target], "sample (no MLflow signature)"
    names = [str(column["name"]) for column in json.loads(inputs) if "name" in column]
    if not names:
        raise TrainingDataError("the MLflow signature has unnamed inputs; Keel needs columns")
    missing = [name for name in names if name not in sample.columns]
    if missing:
        raise TrainingDataError(
            f"the sample lacks the MLflow signature's columns {', '.join(missing)}"
        )
    return names, "MLflow signature"


def _run_lineage(run_id: str | None) -> dict[str, Any]:
    """The run's params and metrics, when MLflow can reach the run (else nothing)."""
    if not run_id:
        return {}
    try:
        run = _mlflow().get_run(run_id)
    except Exception:  # no tracking server here: the model is imported without its run
        return {"run": "not reachable from here"}
    return {"params": dict(run.data.params), "metrics": dict(run.data.metrics)}


def _digest(folder: Path) -> str:
    """A digest of the model directory's files, names and bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# -- export -------------------------------------------------------------------------------


def export_mlflow(project: Project, version: ModelVersion, folder: Path) -> Path:
    """Write ``version`` as an MLflow model into ``folder`` (which must not exist yet)."""
    import tempfile

    from keel.training.artifact import load_bundle

    mlflow = _mlflow()
    from keel.integrations.pyfunc import KeelPyfunc

    if folder.exists():
        raise RegistryError(f"{folder} exists; MLflow writes a new folder: pick another path")
    bundle = load_bundle(project.artifacts, version.artifact)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / _BUNDLE
        path.write_bytes(project.artifacts.get_bytes(version.artifact))
        mlflow.pyfunc.save_model(
            path=str(folder),
            python_model=KeelPyfunc(),
            artifacts={"bundle": str(path)},
            signature=_signature(bundle),
            pip_requirements=_requirements(),
            metadata={"keel_version": version.label, "keel_artifact": version.artifact},
        )
    return folder


def _signature(bundle: dict[str, Any]) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    kinds = {"category": "string", "boolean": "boolean", "integer": "double"}
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(kinds.get(column["type"], "double"), column["name"], required=False)
        for column in bundle["schema"]
    ]
    if bundle["task"] != "classification":
        return ModelSignature(Schema(inputs), Schema([ColSpec("double", "prediction")]))
    classes = list(bundle["model"].classes_)
    outputs: list[ColSpec | TensorSpec] = [ColSpec(_label_type(classes), "prediction")]
    if len(classes) == 2:
        outputs.append(ColSpec("double", "probability"))
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def _label_type(classes: list[Any]) -> str:
    import numbers

    if all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in classes):
        return "long"
    if all(isinstance(c, numbers.Real) for c in classes):
        return "double"
    return "string"


def _requirements() -> list[str]:
    from importlib import metadata

    names = ("keel-ml", "scikit-learn", "pandas", "numpy", "xgboost", "lightgbm")
    found = []
    for name in names:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return found
