"""Before a version is deployed: its artifact is read back, loaded and asked to predict.

A deploy (production, canary, shadow, rollback) records a version as serving; a server
then loads it. A version whose bytes were changed after registration (the artifact store
verifies the sha256 on every read), that does not unpickle as a Keel bundle, or that
cannot predict on the rows it was evaluated on, would only fail there, in every replica.
``verify_deployable`` finds that first and refuses in one sentence, so nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from keel.errors import ArtifactError, DeployRefused, KeelError
from keel.training.artifact import load_bundle, predict_scores
from keel.training.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

    from keel.project import Project
    from keel.training.versions import ModelVersion

__all__ = ["sample_rows", "typical_row", "verify_deployable"]

_SAMPLE = 20  # holdout rows predicted before a deploy: enough to hit each column's path


def verify_deployable(project: Project, version: ModelVersion, action: str = "deployed") -> None:
    """Refuse (``DeployRefused``) unless ``version``'s artifact verifies, loads and predicts."""
    registry = Registry(project.store)
    try:
        bundle = load_bundle(project.artifacts, version.artifact)
        rows = sample_rows(project, registry.record(version.version), bundle["schema"])
        scores = predict_scores(bundle, rows)
    except ArtifactError as error:
        _refuse(version, action, f"its artifact cannot be read back intact ({error})")
    except KeelError as error:
        _refuse(version, action, f"its artifact does not load ({error})")
    except Exception as error:  # the model's own code failed on its own rows
        _refuse(version, action, f"it fails to predict on a sample row ({type(error).__name__})")
    if len(scores) != len(rows):
        _refuse(version, action, f"it answered {len(scores)} of {len(rows)} sample rows")


def sample_rows(
    project: Project, record: Mapping[str, Any], schema: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """The first rows of the version's recorded holdout, else one row shaped by its schema."""
    import pandas as pd

    if (record.get("holdout") or {}).get("sha256"):
        from keel.training.data import load_holdout

        return load_holdout(project, dict(record)).head(_SAMPLE)
    reference = (record.get("reference") or {}).get("features") or {}
    return pd.DataFrame([typical_row(reference, schema)])


def typical_row(
    reference: Mapping[str, Any], schema: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Each numeric feature's reference mean (0 when unknown), each category's most common
    value (the first known one, else an empty string)."""
    row: dict[str, Any] = {}
    for column in schema:
        stats = reference.get(column["name"]) or {}
        if column.get("type") == "category":
            counts = stats.get("counts") or {}
            known = list(column.get("categories") or [])
            common = max(counts, key=lambda name: counts[name]) if counts else None
            row[column["name"]] = common or (known[0] if known else "")
        else:
            mean = stats.get("mean")
            usable = isinstance(mean, float | int) and math.isfinite(mean)
            row[column["name"]] = mean if usable else 0.0
    return row


def _refuse(version: ModelVersion, action: str, why: str) -> NoReturn:
    raise DeployRefused(
        f"version {version.version} cannot be {action}: {why}; nothing was changed — "
        "train or import the model again and deploy the new version"
    ) from None
