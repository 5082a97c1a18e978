"""Online features on the predict path: a backend that completes each row from the store.

``FeatureLookup`` wraps the model's backend: each request row names its entities (e.g.
``customer_id``); the project's feature store (``keel.features``) adds the features its
views hold for them and runs the request-time transforms, in one round trip per batch,
so serving computes features with the same code as training. A store that cannot be
reached raises, and the fallback chain in front answers instead.

The request then carries only what the store does not: ``request_schema`` drops the
store's feature columns from the model's schema, and the entity columns pass through.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from keel.serving.backend import ModelBackend, ModelThread, Prediction

__all__ = ["FeatureClient", "FeatureLookup", "request_schema"]

logger = logging.getLogger("keel.serving")


class FeatureClient:
    """The feature store behind one thread of its own: its connections stay open and warm,
    and lookups never queue behind other blocking work in the default executor."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._thread = ModelThread("keel-features")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.store.features.feature_names)

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k for v in self.store.features.views.values() for k in v.keys))

    async def lookup(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        found = await self._thread.run(lambda: self.store.lookup(rows))
        return [dict(features.values) for features in found]

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

    def __init__(self, inner: ModelBackend, client: FeatureClient) -> None:
        self.inner = inner
        self.version = inner.version
        self.client = client

    async def predict(self, batch: list[dict[str, Any]]) -> list[Prediction]:
        found = await self._lookup(batch)
        rows = [{**row, **values} for row, values in zip(batch, found, strict=True)]
        results = await self.inner.predict(rows)
        for result, values in zip(results, found, strict=True):
            result.features = values  # logged beside the inputs: what the model really saw
        return results

    async def complete(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = await self._lookup(batch)
        return [{**row, **values} for row, values in zip(batch, found, strict=True)]

    async def _lookup(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await self.client.lookup(batch)

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
