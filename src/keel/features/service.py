"""The feature store of one project: materialize, look up online, build training sets.

Online and offline agree by construction: a lookup at time t serves a view's stored row
only if the row is not from the future and is within the view's maximum age, which is
exactly the condition the offline point-in-time join applies. A row that fails it is
served as null, and the response says which views were stale or missing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from keel.features.definitions import FeatureSet, FeatureView, load_features
from keel.features.keys import entity_id, key_row
from keel.features.offline import OfflineStore, TrainingSet, inputs_hash
from keel.features.online import Key, OnlineRow, OnlineStore, open_online_store, stamp
from keel.features.rows import run_transform
from keel.features.skew import SkewReport, compare, key_groups, spread
from keel.features.tables import feature_materializations
from keel.project import Project

__all__ = ["FeatureStore", "Materialized", "OnlineFeatures", "SkewReport", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class OnlineFeatures:
    """One entity's features as served, with the views that could not be served."""

    values: dict[str, Any]
    missing: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()


@dataclass(frozen=True)
class Materialized:
    view: str
    until: datetime
    written: int
    rows: int


class FeatureStore:
    """Offline and online features of a project, from its features.py."""

    def __init__(self, project: Project, features: FeatureSet, online: OnlineStore) -> None:
        self.project = project
        self.features = features
        self.online = online
        self.offline = OfflineStore(project, features)

    @classmethod
    def open(cls, project: Project) -> FeatureStore:
        from keel.errors import FeatureError

        config = project.config.features
        if config is None:
            raise FeatureError(
                "keel.yaml has no features: section; add features: {module: features.py}"
            )
        features = load_features(project.root / config.module)
        online = open_online_store(config.online, project.state_dir, project.config.name)
        return cls(project, features, online)

    def close(self) -> None:
        self.online.close()

    # -- online ---------------------------------------------------------------------

    def lookup(
        self, rows: Sequence[dict[str, Any]], at: datetime | None = None
    ) -> list[OnlineFeatures]:
        """Features for each request row (which names its entities), in one round trip."""
        at = at or utc_now()
        views = list(self.features.views.values())
        keys = {
            (v.name, key)
            for row in rows
            for v in views
            if (key := entity_id(v.keys, row)) is not None
        }
        found = self.online.read(sorted(keys)) if keys else {}
        return [self._assemble(row, views, found, at) for row in rows]

    def _assemble(
        self,
        row: dict[str, Any],
        views: list[FeatureView],
        found: dict[Key, OnlineRow],
        at: datetime,
    ) -> OnlineFeatures:
        values: dict[str, Any] = {}
        missing, stale = [], []
        for view in views:
            key = entity_id(view.keys, row)
            stored = None if key is None else found.get((view.name, key))
            usable = stored is not None and _servable(view, stored.feature_ts, at)
            if stored is None:
                missing.append(view.name)
            elif not usable:
                stale.append(view.name)
            for name in view.feature_names:
                values[name] = stored.values.get(name) if usable and stored else None
        payload = {**row, **values}
        for name, transform in self.features.transforms.items():
            values[name] = run_transform(transform, payload)
            payload[name] = values[name]
        return OnlineFeatures(values, tuple(missing), tuple(stale))

    # -- materialization --------------------------------------------------------------

    def materialize(self, until: datetime | None = None) -> list[Materialized]:
        """Bring the online store up to ``until`` (default now); only changed rows are written."""
        until = until or utc_now()
        with self.project.store.leases.hold("features:materialize", ttl=60):
            return [self._materialize_view(view, until) for view in self.features.views.values()]

    def _materialize_view(self, view: FeatureView, until: datetime) -> Materialized:
        snapshot = self.offline.snapshot(view, until)
        inputs = inputs_hash(snapshot.inputs)
        previous = self._last_materialization(view)
        if previous is not None and previous["definition_hash"] != view.definition_hash:
            self.online.clear(view.name)
            previous = None
        # with the same input data only newer grid rows can differ; new data may change any
        same_inputs = previous is not None and previous["inputs_hash"] == inputs
        after = datetime.fromisoformat(previous["until"]) if same_inputs else None
        written = self.online.write(view.name, self.offline.latest_rows(snapshot, after))
        self._record(view, snapshot.until, inputs, snapshot.artifact, written)
        return Materialized(view.name, snapshot.until, written, snapshot.rows)

    def _last_materialization(self, view: FeatureView) -> Any:
        table = feature_materializations
        query = (
            sa.select(table)
            .where(table.c.view == view.name, table.c.online == self._online_name)
            .order_by(table.c.id.desc())
            .limit(1)
        )
        with self.project.store.engine.connect() as connection:
            return connection.execute(query).mappings().first()

    def _record(
        self, view: FeatureView, until: datetime, inputs: str, artifact: str, written: int
    ) -> None:
        values = {
            "view": view.name,
            "definition_hash": view.definition_hash,
            "until": stamp(until),
            "inputs_hash": inputs,
            "artifact": artifact,
            "written": written,
            "online": self._online_name,
            "created_at": time.time(),
        }
        with self.project.store.begin() as connection:
            connection.execute(feature_materializations.insert().values(**values))

    @property
    def _online_name(self) -> str:
        return str(getattr(self.online, "location", type(self.online).__name__))

    # -- offline ----------------------------------------------------------------------

    def training_set(self, labels: Any, timestamp: str) -> TrainingSet:
        """Labels with every view joined point in time on its own key columns."""
        return self.offline.training_set(labels, timestamp)

    # -- skew -------------------------------------------------------------------------

    def sample_entities(self, size: int, at: datetime | None = None) -> dict[str, list[str]]:
        """Per view, up to ``size`` entity ids spread evenly over its entities; views keyed
        by the same columns share one sample."""
        at = at or utc_now()
        samples: dict[str, list[str]] = {}
        for group in key_groups(self.features):
            ids: set[str] = set()
            for view in group.views.values():
                snapshot = self.offline.snapshot(view, at)
                ids |= {entity for entity, _, _ in self.offline.latest_rows(snapshot, None)}
            chosen = spread(sorted(ids), size)
            samples |= {name: list(chosen) for name in group.views}
        return samples

    def check(
        self, entities: Mapping[str, Sequence[str]] | Sequence[str], at: datetime | None = None
    ) -> SkewReport:
        """Compare the online path with offline recomputation at ``at``.

        ``entities`` gives entity ids per view (as ``sample_entities`` returns them), or one
        list of ids for every view.
        """
        at = at or utc_now()
        if not isinstance(entities, Mapping):
            entities = {name: list(entities) for name in self.features.views}
        mismatches: list[dict[str, Any]] = []
        checked, views = 0, dict[str, int]()
        for group in key_groups(self.features):
            ids = list(dict.fromkeys(e for name in group.views for e in entities.get(name, ())))
            if ids:
                mismatches += self._check_group(group, ids, at)
                checked += len(ids)
                views |= dict.fromkeys(group.views, len(ids))
        return SkewReport(at, checked, mismatches, views)

    def _check_group(self, group: FeatureSet, ids: list[str], at: datetime) -> list[dict[str, Any]]:
        import pandas as pd

        keys = next(iter(group.views.values())).keys
        rows = [key_row(keys, entity) for entity in ids]
        part = FeatureStore(self.project, group, self.online)
        online = part.lookup(rows, at)
        labels = pd.DataFrame([{**row, "_keel_at": at} for row in rows])
        return compare(group, ids, online, part.training_set(labels, "_keel_at").frame)


def _servable(view: FeatureView, feature_ts: datetime, at: datetime) -> bool:
    if feature_ts > at:
        return False
    return view.max_age is None or at - feature_ts <= view.max_age
