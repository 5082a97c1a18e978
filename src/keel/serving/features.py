"""Online features on the predict path: a backend that completes each row from the store.

``FeatureLookup`` wraps the model's backend: each request row names its entities (e.g.
``customer_id``); the project's feature store (``keel.features``) adds the features its
views hold for them and runs the request-time transforms, in one round trip per batch,
so serving computes features with the same code as training. A store that cannot be
reached declines the batch, and the fallback chain in front answers instead; the outage
is logged once when it starts, summarised every 30 s, and once when lookups recover.

The request then carries only what the store does not: ``request_schema`` drops the
store's feature columns from the model's schema, and the entity columns pass through.

A prediction says which features the store could not serve (``features_missing``: the
entity has no row in a view, or its row is older than the view's ``ttl``). An entity no
view has a row for (an unknown customer, or a store never materialized) is handled as
``serving.unknown_entity`` says: ``fallback`` (default) declines it to the fallback chain,
``reject`` refuses it (its slot carries the error), ``serve`` lets the model score it with
every stored feature missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel.errors import OnlineStoreUnavailable
from keel.serving.backend import ModelBackend, ModelThread, Prediction
from keel.serving.outages import OutageLog

__all__ = ["FeatureClient", "FeatureLookup", "Looked", "request_schema"]

logger = logging.getLogger("keel.serving")


@dataclass(frozen=True, slots=True)
class Looked:
    """One row's features as the store served them, and what it could not serve."""

    values: dict[str, Any]
    missing: tuple[str, ...] = ()  # features of views with no row (or a stale one)
    unknown: bool = False  # no view has a row for the row's entity


def looked(found: Any, views: Mapping[str, Sequence[str]]) -> Looked:
    """What ``FeatureStore.lookup`` found for one row (``OnlineFeatures``), in serving's
    terms: the features the model gets as missing, and whether the entity is unknown."""
    absent = (*found.missing, *found.stale)
    missing = tuple(name for view in absent for name in views.get(view, ()))
    unknown = bool(views) and len(found.missing) == len(views)
    return Looked(dict(found.values), missing, unknown)


class FeatureClient:
    """The feature store behind one thread of its own: its connections stay open and warm,
    and lookups never queue behind other blocking work in the default executor."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._thread = ModelThread("keel-features")
        self.outage = OutageLog("feature lookups", logger)
        self._views = {
            name: tuple(view.feature_names) for name, view in store.features.views.items()
        }

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.store.features.feature_names)

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k for v in self.store.features.views.values() for k in v.keys))

    async def lookup(self, rows: Sequence[dict[str, Any]]) -> list[Looked]:
        try:
            found = await self._thread.run(lambda: self.store.lookup(rows))
        except OnlineStoreUnavailable as error:
            self.outage.failed(error)
            raise
        self.outage.succeeded()
        return [looked(features, self._views) for features in found]

    async def warm_up(self) -> None:
        """One lookup of an unknown entity: opens the store's connections before traffic."""
        try:
            await self.lookup([{entity: "__keel_warm_up__" for entity in self.entities}])
        except Exception as error:  # serving starts anyway; lookups fall back until it is up
            logger.warning("online feature store not reachable at start: %r", error)

    def close(self) -> None:
        self._thread.stop()
        self.store.close()


class FeatureLookup:
    """A backend that adds online features to each row, then asks ``inner``."""

    def __init__(
        self, inner: ModelBackend, client: FeatureClient, unknown_entity: str = "fallback"
    ) -> None:
        self.inner = inner
        self.version = inner.version
        self.client = client
        self.unknown_entity = unknown_entity  # serve | fallback | reject

    async def predict(self, batch: list[dict[str, Any]]) -> list[Prediction]:
        try:
            found = await self.client.lookup(batch)
        except OnlineStoreUnavailable as error:  # the client logs the outage, not each call
            reason = f"the online feature store is unreachable ({type(error).__name__})"
            return [Prediction(None, failure="error", reason=reason) for _ in batch]
        scored = [i for i, one in enumerate(found) if self._scored(one)]
        rows = [{**batch[i], **found[i].values} for i in scored]
        results = await self.inner.predict(rows) if rows else []
        if len(scored) == len(batch):  # the common case: every entity known
            return [self._noted(r, f) for r, f in zip(results, found, strict=True)]
        out = [self._unknown(row) for row in batch]
        for i, result in zip(scored, results, strict=True):
            out[i] = self._noted(result, found[i])
        return out

    def _scored(self, found: Looked) -> bool:
        return not found.unknown or self.unknown_entity == "serve"

    @staticmethod
    def _noted(result: Prediction, found: Looked) -> Prediction:
        result.features = found.values  # logged beside the inputs: what the model really saw
        result.features_missing = found.missing
        return result

    def _unknown(self, row: dict[str, Any]) -> Prediction:
        """The answer for an entity no view knows: declined to the chain, or refused."""
        entities = list(self.client.entities) or ["entity"]
        sent = [f"{name} {row[name]!r}" for name in entities if row.get(name) is not None]
        reason = (
            f"the online store has no features for {', '.join(sent)} (unknown, or not materialized)"
            if sent
            else f"the request names no {' or '.join(entities)} to look features up by"
        )
        missing = tuple(self.client.feature_names)
        if self.unknown_entity == "reject":
            errors = [{"field": entities[0], "check": "entity", "msg": reason}]
            return Prediction(
                None, failure="unknown_entity", errors=errors, features_missing=missing
            )
        return Prediction(None, failure="unknown_entity", reason=reason, features_missing=missing)

    async def complete(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = await self.client.lookup(batch)
        return [{**row, **one.values} for row, one in zip(batch, found, strict=True)]

    async def explain(self, row: dict[str, Any], top: int) -> list[dict[str, Any]]:
        explain = getattr(self.inner, "explain", None)
        if explain is None:
            return []
        result: list[dict[str, Any]] = await explain((await self.complete([row]))[0], top)
        return result


def request_schema(
    schema: Sequence[Mapping[str, Any]], feature_names: Sequence[str]
) -> list[Mapping[str, Any]]:
    """The model's input columns a request must carry: those the store does not provide."""
    provided = set(feature_names)
    return [column for column in schema if column["name"] not in provided]
