"""Where the served model comes from: the registry's production version.

``RegistrySource`` answers two questions for the server: which version is in production
now (a cheap query, polled for hot switches) and how to load it (the artifact's digest
is verified by the artifact store before anything is unpickled), and which earlier
production versions may stand in when production does not load. Loading also derives
what serving needs beyond the estimator: typical feature values for explanations (from
the version's reference statistics) and, for regression, the conformal interval width
from the held-out residuals.

Loading is two steps. ``recipe(ref)`` reads from the store what the server needs about a
version (its label, artifact digest, typical values and interval width: a ``ModelRecipe``);
``build(recipe)`` turns it into a backend from the artifact's bytes. Both are what the
replica's snapshot keeps (``keel.serving.snapshot``): with a ``cache`` the bytes are read
from the snapshot's local copy when it is there and verifies, and copied there when not,
and recipes ``seed``-ed from a snapshot are used without the store until it is back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from keel.errors import ArtifactError
from keel.serving.backend import ModelBackend, SklearnBackend

if TYPE_CHECKING:
    from keel.delivery.staging import Rollout
    from keel.project import Project
    from keel.store.artifacts import ArtifactStore

__all__ = [
    "ModelRecipe",
    "ModelSource",
    "RegistrySource",
    "Staging",
    "baseline_from_reference",
    "conformal_halfwidth",
    "staging_of",
]

_STAND_INS = 3  # earlier versions tried, newest first, when production does not load


@dataclass(frozen=True)
class Staging:
    """What the registry has beside production: canary ref and share (0..1), shadow ref."""

    canary: str | None = None
    share: float = 0.0
    shadow: str | None = None


class BundleCache(Protocol):
    """A local copy of model bundles (the replica's snapshot, ``keel.serving.snapshot``)."""

    store: ArtifactStore

    def put(self, digest: str, data: bytes) -> None: ...

    def touch(self, digest: str) -> None: ...


class ModelSource(Protocol):
    """Names the model to serve and loads it."""

    def current(self) -> str | None:
        """An id of the model that should be served now, or None if there is none."""
        ...

    def load(self, ref: str) -> ModelBackend:
        """The loaded model for ``ref`` (raises if it cannot be loaded)."""
        ...


@dataclass(frozen=True)
class ModelRecipe:
    """What the server needs, besides the artifact's bytes, to serve one version."""

    ref: str
    label: str
    artifact: str  # the sha256 digest of the model bundle
    halfwidth: float | None = None  # the conformal interval's (regression)
    baseline: dict[str, Any] = field(default_factory=dict)  # typical values, for explanations


class RegistrySource:
    """The production version of the project's model registry."""

    def __init__(
        self, project: Project, coverage: float = 0.9, cache: BundleCache | None = None
    ) -> None:
        self.project = project
        self.coverage = coverage
        self.cache = cache
        self.rollouts: tuple[Rollout, ...] = ()  # as ``staged`` last read them
        self._known: dict[str, ModelRecipe] = {}  # every recipe read or seeded, by ref
        self._seeded: set[str] = set()  # refs whose recipe came from a snapshot

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

        self.rollouts = tuple(staged(self.project))
        return staging_of(self.rollouts)

    def load(self, ref: str) -> SklearnBackend:
        if ref in self._seeded:
            return self.build(self._known[ref])
        recipe, bundle = self._read(ref)
        return _backend(recipe, bundle)

    def backend_arguments(self, ref: str) -> dict[str, Any]:
        """What ``SklearnBackend`` is built from for ``ref``: plain values that can be
        pickled, so batch scoring can build the same backend on a cluster's workers."""
        recipe, bundle = self._read(ref)
        return _arguments(recipe, bundle)

    def build(self, recipe: ModelRecipe) -> SklearnBackend:
        """The backend for ``recipe``, from the artifact's verified bytes."""
        return _backend(recipe, self._bundle(recipe.artifact))

    def known(self, ref: str | None) -> ModelRecipe | None:
        """The recipe last read (or seeded) for ``ref``, without asking the store."""
        return None if ref is None else self._known.get(ref)

    def seed(self, recipes: Iterable[ModelRecipe]) -> None:
        """Serve these versions without the store (it is down; they come from a snapshot)."""
        for recipe in recipes:
            self._known[recipe.ref] = recipe
            self._seeded.add(recipe.ref)

    def forget_seeds(self) -> None:
        """The store is back: recipes are read from it again."""
        self._seeded.clear()

    def _read(self, ref: str) -> tuple[ModelRecipe, dict[str, Any]]:
        """The recipe of ``ref`` read from the store (and remembered), and its bundle."""
        from keel.training import Registry

        registry = Registry(self.project.store)
        version = registry.get(int(ref))
        bundle = self._bundle(version.artifact)
        record = registry.record(version.version)
        reference = (record.get("reference") or {}).get("features") or {}
        halfwidth = None
        if bundle["task"] == "regression" and (record.get("holdout") or {}).get("sha256"):
            halfwidth = conformal_halfwidth(self._residuals(record, bundle), self.coverage)
        baseline = baseline_from_reference(reference, bundle["schema"])
        recipe = ModelRecipe(ref, version.label, version.artifact, halfwidth, baseline)
        self._known[ref] = recipe
        return recipe, bundle

    def _bundle(self, digest: str) -> dict[str, Any]:
        """The model bundle, from the local cache when it holds verified bytes."""
        from keel.training import load_bundle

        if self.cache is None:
            return load_bundle(self.project.artifacts, digest)
        try:
            bundle = load_bundle(self.cache.store, digest)
        except ArtifactError:  # not cached yet, or the cached copy is corrupt
            self.cache.put(digest, self.project.artifacts.get_bytes(digest))
            return load_bundle(self.cache.store, digest)
        self.cache.touch(digest)
        return bundle

    def _residuals(self, record: dict[str, Any], bundle: dict[str, Any]) -> list[float]:
        from keel.training import predict_scores
        from keel.training.gating import load_holdout

        holdout = load_holdout(self.project, record)
        predicted = predict_scores(bundle, holdout)
        actual = holdout[bundle["target"]].to_numpy(dtype="float64")
        return [abs(float(a - p)) for a, p in zip(actual, predicted, strict=True)]


def _backend(recipe: ModelRecipe, bundle: dict[str, Any]) -> SklearnBackend:
    return SklearnBackend(**_arguments(recipe, bundle))


def _arguments(recipe: ModelRecipe, bundle: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": bundle["model"],
        "schema": bundle["schema"],
        "version": recipe.label,
        "halfwidth": recipe.halfwidth,
        "baseline": recipe.baseline,
        "positive": bundle.get("positive"),
        "left_out": tuple(bundle.get("left_out", ())),
    }


def staging_of(rollouts: Iterable[Rollout]) -> Staging:
    """The canary (its share as a fraction) and shadow among running rollout records."""
    canary = shadow = None
    share = 0.0
    for found in rollouts:
        if found.kind == "canary" and canary is None:
            canary, share = str(found.version), found.share / 100
        elif found.kind == "shadow" and shadow is None:
            shadow = str(found.version)
    return Staging(canary, share, shadow)


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
