"""Where the served model comes from: the registry's production version.

``RegistrySource`` answers two questions for the server: which version is in production
now (a cheap query, polled for hot switches) and how to load it (the artifact's digest
is verified by the artifact store before anything is unpickled), and which earlier
production versions may stand in when production does not load. Loading also derives
what serving needs beyond the estimator: typical feature values for explanations (from
the version's reference statistics) and, for regression, the conformal interval width
from the held-out residuals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from keel.serving.backend import ModelBackend, SklearnBackend

if TYPE_CHECKING:
    from keel.project import Project
    from keel.serving.arms import Staging

__all__ = ["ModelSource", "RegistrySource", "baseline_from_reference", "conformal_halfwidth"]

_STAND_INS = 3  # earlier versions tried, newest first, when production does not load


class ModelSource(Protocol):
    """Names the model to serve and loads it."""

    def current(self) -> str | None:
        """An id of the model that should be served now, or None if there is none."""
        ...

    def load(self, ref: str) -> ModelBackend:
        """The loaded model for ``ref`` (raises if it cannot be loaded)."""
        ...


class RegistrySource:
    """The production version of the project's model registry."""

    def __init__(self, project: Project, coverage: float = 0.9) -> None:
        self.project = project
        self.coverage = coverage

    def current(self) -> str | None:
        from keel.training import Registry

        production = Registry(self.project.store).production()
        return None if production is None else str(production.version)

    def earlier(self, ref: str) -> list[str]:
        """Versions that were production before, newest first, ``ref`` left out: the ones
        that may stand in when ``ref`` cannot be loaded."""
        from keel.delivery.deployments import deployments

        found: list[str] = []
        for event in deployments(self.project, limit=200):
            version = str(event.version)
            if event.to_status == "production" and version != ref and version not in found:
                found.append(version)
        return found[:_STAND_INS]

    def staged(self) -> Staging:
        """The running canary (with its share as a fraction) and shadow, if any."""
        from keel.delivery.staging import staged
        from keel.serving.arms import Staging

        canary = shadow = None
        share = 0.0
        for found in staged(self.project):
            if found.kind == "canary" and canary is None:
                canary, share = str(found.version), found.share / 100
            elif found.kind == "shadow" and shadow is None:
                shadow = str(found.version)
        return Staging(canary, share, shadow)

    def load(self, ref: str) -> SklearnBackend:
        return SklearnBackend(**self.backend_arguments(ref))

    def backend_arguments(self, ref: str) -> dict[str, Any]:
        """What ``SklearnBackend`` is built from for ``ref``: plain values that can be
        pickled, so batch scoring can build the same backend on a cluster's workers."""
        from keel.training import Registry, load_bundle

        registry = Registry(self.project.store)
        version = registry.get(int(ref))
        bundle = load_bundle(self.project.artifacts, version.artifact)
        record = registry.record(version.version)
        reference = (record.get("reference") or {}).get("features") or {}
        halfwidth = None
        if bundle["task"] == "regression" and (record.get("holdout") or {}).get("sha256"):
            halfwidth = conformal_halfwidth(self._residuals(record, bundle), self.coverage)
        return {
            "model": bundle["model"],
            "schema": bundle["schema"],
            "version": version.label,
            "halfwidth": halfwidth,
            "baseline": baseline_from_reference(reference, bundle["schema"]),
            "positive": bundle.get("positive"),
            "left_out": tuple(bundle.get("left_out", ())),
        }

    def _residuals(self, record: dict[str, Any], bundle: dict[str, Any]) -> list[float]:
        from keel.training import predict_scores
        from keel.training.gating import load_holdout

        holdout = load_holdout(self.project, record)
        predicted = predict_scores(bundle, holdout)
        actual = holdout[bundle["target"]].to_numpy(dtype="float64")
        return [abs(float(a - p)) for a, p in zip(actual, predicted, strict=True)]


def conformal_halfwidth(residuals: Sequence[float], coverage: float) -> float | None:
    """Split-conformal half-width: the ceil((n+1)·coverage)-th smallest |residual|."""
    values = sorted(r for r in residuals if math.isfinite(r))
    if not values:
        return None
    rank = math.ceil((len(values) + 1) * coverage)
    return values[min(rank, len(values)) - 1]


def baseline_from_reference(
    reference: Mapping[str, Any], schema: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Typical values: each numeric feature's mean, each category's most common value."""
    out: dict[str, Any] = {}
    for column in schema:
        stats = reference.get(column["name"]) or {}
        if column.get("type") == "category":
            counts = stats.get("counts") or {}
            out[column["name"]] = max(counts, key=lambda name: counts[name]) if counts else None
        else:
            out[column["name"]] = stats.get("mean")
    return out
