"""The offline store: feature values computed with DuckDB over validated data versions.

A view's values as of a grid time are one Parquet blob in the artifact store, named in
the metadata store by (view definition hash, input data versions, until). Computing the
same thing twice reuses the blob. Training sets are point-in-time joins of label events
against those blobs; no label row is ever dropped.

With ``compute.engine: dask`` (or an engine given) snapshots and training sets are computed
partition by partition on that engine (``keel.features.cluster``), with the same SQL and
the same results; the blobs and their cache are the same whichever engine computed them.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from keel.errors import FeatureError
from keel.features.definitions import FeatureSet, FeatureView
from keel.features.keys import missing_key_error, normalize_keys
from keel.features.rows import apply_transforms, plain, run_transform
from keel.features.sql import (
    floor_to_grid,
    literal,
    path_literal,
    point_in_time_sql,
    quote,
    snapshot_sql,
)
from keel.features.tables import feature_snapshots
from keel.project import Project

if TYPE_CHECKING:
    from keel.compute.engine import Engine

__all__ = [
    "OfflineStore",
    "Snapshot",
    "TrainingSet",
    "apply_transforms",
    "inputs_hash",
    "plain",
    "run_transform",
]


@dataclass(frozen=True)
class Snapshot:
    """A view's values as of ``until``, stored as Parquet."""

    view: str
    definition_hash: str
    inputs: tuple[str, ...]
    until: datetime
    artifact: str
    rows: int


@dataclass(frozen=True)
class TrainingSet:
    """Label rows with features attached, and how many values each feature lacks."""

    frame: Any  # pandas.DataFrame
    missing: dict[str, int]
    snapshots: tuple[Snapshot, ...]
    definition_hash: str


class OfflineStore:
    """Compute, cache and join feature values for one project."""

    def __init__(
        self, project: Project, features: FeatureSet, engine: Engine | None = None
    ) -> None:
        self.project = project
        self.features = features
        self.engine = engine  # None: compute.engine decides, per call

    @contextmanager
    def _engine(self) -> Iterator[Engine | None]:
        """The engine to compute on, or None for this process's DuckDB (the default)."""
        if self.engine is not None:
            yield None if self.engine.name == "local" else self.engine
            return
        from keel.compute import cluster_engine

        with cluster_engine(self.project.config.compute) as engine:
            yield engine

    # -- snapshots ------------------------------------------------------------------

    def snapshot(self, view: FeatureView, until: datetime) -> Snapshot:
        """The view's rows up to ``until`` (floored to the view's grid), cached."""
        with self._engine() as engine:
            return self._snapshot(view, until, engine)

    def _snapshot(self, view: FeatureView, until: datetime, engine: Engine | None) -> Snapshot:
        if view.is_aggregate:
            until = floor_to_grid(until, view.step)
        versions = self._versions(view.source)
        inputs = tuple(v.id for v in versions)
        cached = self._cached(view, inputs, until)
        if cached is not None:
            return cached
        if engine is not None:
            return self._compute_on(engine, view, versions, inputs, until)
        with ExitStack() as stack, _duckdb() as con:
            paths = [
                stack.enter_context(self._local(digest))
                for digest in _source_digests(self.project, versions)
            ]
            _register_source(con, paths)
            return self._compute(con, view, inputs, until)

    def _compute(
        self, con: Any, view: FeatureView, inputs: tuple[str, ...], until: datetime
    ) -> Snapshot:
        import duckdb

        sql = snapshot_sql(view, "src", until)
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "snapshot.parquet"
            try:
                ordered = f"{sql} ORDER BY entity_id, feature_ts"
                con.execute(f"COPY ({ordered}) TO {path_literal(out)} (FORMAT parquet)")
            except duckdb.Error as error:  # bad columns or SQL in the definitions
                raise FeatureError(
                    f"feature view '{view.name}' cannot be computed: {error}"
                ) from None
            rows = con.execute(
                f"SELECT count(*) FROM read_parquet({path_literal(out)})"
            ).fetchone()[0]
            digest = self.project.artifacts.put_file(out)
        snapshot = Snapshot(view.name, view.definition_hash, inputs, until, digest, int(rows))
        self._record(snapshot)
        return snapshot

    def _compute_on(
        self,
        engine: Engine,
        view: FeatureView,
        versions: list[Any],
        inputs: tuple[str, ...],
        until: datetime,
    ) -> Snapshot:
        """The snapshot computed by entity-hash partitions on ``engine``; the same blob."""
        from keel.data.remote import where_to_read
        from keel.features.cluster import SnapshotJob, partition_count, snapshot_parts

        files = tuple(
            where_to_read(self.project.artifacts, digest)
            for digest in _source_digests(self.project, versions)
        )
        partitions = partition_count(sum(v.rows for v in versions), self._compute_settings())
        job = SnapshotJob(view, files, until, partitions)
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "snapshot.parquet"
            rows = snapshot_parts(engine, job, out)
            digest = self.project.artifacts.put_file(out)
        snapshot = Snapshot(view.name, view.definition_hash, inputs, until, digest, rows)
        self._record(snapshot)
        return snapshot

    def _local(self, digest: str) -> AbstractContextManager[Path]:
        """A verified local path to a stored blob (fetched from an object store)."""
        from keel.data.access import parquet_path

        return parquet_path(self.project.artifacts, digest)

    def _compute_settings(self) -> Any:
        from keel.schema import ComputeConfig

        return self.project.config.compute or ComputeConfig()

    def _versions(self, source: str) -> list[Any]:
        """The versions whose rows make up ``source`` (a partitioned source's newest
        manifest stands for every version before it)."""
        from keel.data import Catalog
        from keel.data.access import table_versions

        versions = table_versions(Catalog(self.project.store).versions(source), None, False)
        if not versions:
            raise FeatureError(
                f"source '{source}' has no ingested data yet; run `keel ingest --source {source}`"
            )
        return versions

    def _cached(
        self, view: FeatureView, inputs: tuple[str, ...], until: datetime
    ) -> Snapshot | None:
        table = feature_snapshots
        query = sa.select(table).where(
            table.c.view == view.name,
            table.c.definition_hash == view.definition_hash,
            table.c.inputs_hash == inputs_hash(inputs),
            table.c.until == until.isoformat(),
        )
        with self.project.store.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None or not self.project.artifacts.exists(row["artifact"]):
            return None
        return Snapshot(
            view.name, view.definition_hash, inputs, until, row["artifact"], row["rows"]
        )

    def _record(self, snapshot: Snapshot) -> None:
        values = {
            "view": snapshot.view,
            "definition_hash": snapshot.definition_hash,
            "inputs_hash": inputs_hash(snapshot.inputs),
            "inputs": list(snapshot.inputs),
            "until": snapshot.until.isoformat(),
            "artifact": snapshot.artifact,
            "rows": snapshot.rows,
            "created_at": time.time(),
        }
        with self.project.store.begin() as connection:
            connection.execute(feature_snapshots.insert().values(**values))

    # -- training sets --------------------------------------------------------------

    def training_set(self, labels: Any, timestamp: str) -> TrainingSet:
        """Attach every view's value as of each label's time, joined on the view's own key
        columns in the labels; apply request transforms."""
        keys = self._check_labels(labels, timestamp)
        until = _after(labels[timestamp].max())
        with self._engine() as engine:
            views = self.features.views.values()
            snapshots = tuple(self._snapshot(v, until, engine) for v in views)
            if engine is None:
                frame = self._join(labels, timestamp, keys, snapshots)
            else:
                frame = self._join_on(engine, labels, timestamp, keys, snapshots)
        frame = apply_transforms(frame, self.features.transforms)
        missing = {n: int(frame[n].isna().sum()) for n in self.features.feature_names}
        return TrainingSet(frame, missing, snapshots, self.features.definition_hash)

    def _check_labels(self, labels: Any, timestamp: str) -> list[str]:
        """The key columns the views need; each must be in the labels."""
        if timestamp not in labels.columns:
            known = ", ".join(map(str, labels.columns))
            raise FeatureError(f"the labels have no column '{timestamp}' (columns: {known})")
        keys = list(dict.fromkeys(k for v in self.features.views.values() for k in v.keys))
        for view in self.features.views.values():
            for column in view.keys:
                if column not in labels.columns:
                    raise missing_key_error(view.name, column, list(labels.columns))
        return keys

    def _join(
        self, labels: Any, timestamp: str, keys: list[str], snapshots: tuple[Snapshot, ...]
    ) -> Any:
        """The label rows as given, with each view's columns beside them.

        Only the key and time columns go through DuckDB; the feature columns come back in
        label order and are put beside the untouched label frame.
        """
        import numpy as np
        import pandas as pd

        labels = labels.reset_index(drop=True)
        if not snapshots:
            return labels
        used = normalize_keys(labels[list(dict.fromkeys([*keys, timestamp]))], keys)
        with ExitStack() as stack, _duckdb() as con:
            con.register("labels", used.assign(_keel_row=np.arange(len(used))))
            joins = []
            for i, snap in enumerate(snapshots):
                path = stack.enter_context(self._local(snap.artifact))
                con.execute(f"CREATE VIEW s{i} AS SELECT * FROM read_parquet({path_literal(path)})")
                joins.append((self.features.view(snap.view), f"s{i}"))
            features = con.execute(point_in_time_sql("labels", timestamp, joins)).df()
        return pd.concat([labels, features], axis=1)

    def _join_on(
        self,
        engine: Engine,
        labels: Any,
        timestamp: str,
        keys: list[str],
        snapshots: tuple[Snapshot, ...],
    ) -> Any:
        """``_join``, by entity-hash partitions on ``engine``: one job per group of views
        keyed by the same columns; the columns come back in the views' order."""
        import pandas as pd

        from keel.data.remote import Blob, where_to_read
        from keel.features.cluster import JoinJob, join_partitions, partition_count

        labels = labels.reset_index(drop=True)
        if not snapshots:
            return labels
        used = normalize_keys(labels[list(dict.fromkeys([*keys, timestamp]))], keys)
        partitions = partition_count(len(used), self._compute_settings())
        groups: dict[tuple[str, ...], list[tuple[FeatureView, str | Blob]]] = {}
        for snap in snapshots:
            view = self.features.view(snap.view)
            where = where_to_read(self.project.artifacts, snap.artifact)
            groups.setdefault(view.keys, []).append((view, where))
        jobs = [JoinJob(tuple(views), timestamp, partitions) for views in groups.values()]
        # the labels go to the workers as files beside the project's state, which they see
        scratch = self.project.state_dir / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch, prefix="labels-") as folder:
            features = join_partitions(engine, used, jobs, Path(folder), self.project.artifacts)
        order = [
            name
            for snap in snapshots
            for name in [*self.features.view(snap.view).feature_names, f"{snap.view}__missing"]
        ]
        return pd.concat([labels, features[order]], axis=1)

    def latest_rows(
        self, snapshot: Snapshot, after: datetime | None
    ) -> Iterator[tuple[str, datetime, dict[str, Any]]]:
        """Each entity's newest row in a snapshot, if newer than ``after``."""
        view = self.features.view(snapshot.view)
        since = "" if after is None else f"WHERE feature_ts > {literal(after)}"
        names = ", ".join(quote(n) for n in view.feature_names)
        with self._local(snapshot.artifact) as path, _duckdb() as con:
            sql = (
                f"SELECT entity_id, feature_ts, {names} "
                f"FROM read_parquet({path_literal(path)}) {since} "
                "QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY feature_ts DESC) = 1 "
                "ORDER BY entity_id"
            )
            cursor = con.execute(sql)
            while batch := cursor.fetchmany(10_000):
                for entity_id, feature_ts, *values in batch:
                    yield (
                        entity_id,
                        feature_ts,
                        dict(zip(view.feature_names, map(plain, values), strict=True)),
                    )


def _after(latest: Any) -> datetime:
    """Just past the newest label time, so rows stamped exactly then are included."""
    import pandas as pd

    if pd.isna(latest):
        raise FeatureError("the labels have no timestamps; fill the timestamp column")
    moment: datetime = pd.Timestamp(latest).to_pydatetime()
    return moment + timedelta(microseconds=1)


def inputs_hash(inputs: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(inputs).encode()).hexdigest()


@contextmanager
def _duckdb() -> Iterator[Any]:
    import duckdb

    con = duckdb.connect()
    try:
        yield con
    finally:
        con.close()


def _register_source(con: Any, paths: list[Path]) -> None:
    parts = []
    for ordinal, path in enumerate(paths):
        parts.append(
            f"SELECT *, {ordinal} * 10000000000 + file_row_number AS _keel_seq "
            f"FROM read_parquet({path_literal(path)}, file_row_number = true)"
        )
    con.execute(f"CREATE VIEW src AS {' UNION ALL BY NAME '.join(parts)}")


def _source_digests(project: Project, versions: list[Any]) -> list[str]:
    """The digests of the Parquet blobs of ``versions`` in row order: one per plain
    version, one per partition of a manifest version."""
    from keel.data.access import version_digests

    artifacts = project.artifacts
    return [digest for version in versions for digest in version_digests(artifacts, version)]
