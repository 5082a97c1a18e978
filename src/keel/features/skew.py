"""Skew checks: what the online path serves against what the offline join recomputes.

Views keyed by the same columns are checked together on one sample of their entities;
views keyed by other columns get a sample of their own. A request-time transform is
checked with the group whose features it reads (one that reads features of several groups
runs the same code on inputs that are each checked). The report says per view how many
entities were compared and how many disagreed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keel.features.definitions import FeatureSet
from keel.features.rows import plain

__all__ = ["SkewReport", "compare", "key_groups", "spread"]


@dataclass(frozen=True)
class SkewReport:
    """Mismatches between online and offline at ``at``; ``views``: entities checked per view."""

    at: datetime
    checked: int
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    views: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def by_view(self) -> dict[str, dict[str, Any]]:
        """Per view: entities checked, entities that disagreed, and the features that did."""
        report = {}
        for name, checked in self.views.items():
            found = [m for m in self.mismatches if m["view"] == name]
            report[name] = {
                "checked": checked,
                "mismatched": len({m["entity"] for m in found}),
                "features": sorted({m["feature"] for m in found}),
            }
        return report


def key_groups(features: FeatureSet) -> list[FeatureSet]:
    """The views grouped by their key columns, each with the transforms it can check."""
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for name, view in features.views.items():
        groups.setdefault(view.keys, {})[name] = view
    owned = {n: v.keys for v in features.views.values() for n in v.feature_names}
    result = []
    for keys, views in groups.items():
        transforms = {
            name: transform
            for name, transform in features.transforms.items()
            if all(owned.get(i, keys) == keys for i in transform.inputs)
        }
        result.append(FeatureSet(views, transforms))
    return result


def spread(ids: Sequence[str], size: int) -> list[str]:
    """Up to ``size`` of ``ids``, evenly spread over them."""
    step = max(1, len(ids) // max(size, 1))
    return list(ids[::step][:size])


def compare(
    group: FeatureSet, entities: Sequence[str], served: Sequence[Any], recomputed: Any
) -> list[dict[str, Any]]:
    """Each feature value the online path served that the offline join does not give."""
    owner = {n: v.name for v in group.views.values() for n in v.feature_names}
    mismatches = []
    for entity, online, (_, offline) in zip(entities, served, recomputed.iterrows(), strict=True):
        for name, value in online.values.items():
            if not _same(value, offline[name]):
                mismatches.append(
                    {
                        "view": owner.get(name),
                        "entity": entity,
                        "feature": name,
                        "online": value,
                        "offline": plain(offline[name]),
                        "stale": list(online.stale),
                        "missing": list(online.missing),
                    }
                )
    return mismatches


def _same(online: Any, offline: Any) -> bool:
    offline = plain(offline)
    if online is None or offline is None:
        return online is None and offline is None
    if isinstance(online, int | float) and isinstance(offline, int | float):
        return math.isclose(online, offline, rel_tol=1e-9, abs_tol=1e-12)
    return bool(online == offline)
