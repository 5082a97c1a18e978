"""The feature store: one definition for training and serving.

    from keel.features import Aggregation, FeatureView, request_transform

Define views and transforms in a project's features.py; ``FeatureStore.open(project)``
materializes them online, looks them up for serving, and builds point-in-time training
sets with the same semantics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel._lazy import lazy_getattr

if TYPE_CHECKING:
    from keel.features.definitions import (
        Aggregation,
        FeatureSet,
        FeatureView,
        RequestTransform,
        load_features,
        request_transform,
    )
    from keel.features.offline import TrainingSet
    from keel.features.online import OnlineStore, RedisOnlineStore, SQLiteOnlineStore
    from keel.features.service import FeatureStore, OnlineFeatures
    from keel.features.skew import SkewReport

__all__ = [
    "Aggregation",
    "FeatureSet",
    "FeatureStore",
    "FeatureView",
    "OnlineFeatures",
    "OnlineStore",
    "RedisOnlineStore",
    "RequestTransform",
    "SQLiteOnlineStore",
    "SkewReport",
    "TrainingSet",
    "load_features",
    "request_transform",
]

_HOMES = {
    "Aggregation": "keel.features.definitions",
    "FeatureSet": "keel.features.definitions",
    "FeatureView": "keel.features.definitions",
    "RequestTransform": "keel.features.definitions",
    "load_features": "keel.features.definitions",
    "request_transform": "keel.features.definitions",
    "TrainingSet": "keel.features.offline",
    "OnlineStore": "keel.features.online",
    "RedisOnlineStore": "keel.features.online",
    "SQLiteOnlineStore": "keel.features.online",
    "FeatureStore": "keel.features.service",
    "OnlineFeatures": "keel.features.service",
    "SkewReport": "keel.features.skew",
}


__getattr__ = lazy_getattr(__name__, _HOMES)
