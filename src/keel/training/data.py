"""Where the training frame comes from: the one seam between training and the data layers.

``training.data`` in keel.yaml is one of:

- a CSV or Parquet file, relative to the project (``data/train.csv``);
- ``module:function``, a callable that takes the project root and returns a DataFrame
  (``keel.training.example:build_training_table`` builds the example project's table);
- ``features``: the label events in ``training.labels`` with the project's feature views
  and transforms joined point in time by the feature store (``training.label_time`` names
  the labels' event-time column);
- ``SOURCE``: what ``keel ingest`` published for that source, as of its newest live data
  version; ``SOURCE@VERSION`` as of that version (an id or a prefix of at least 4
  characters, as ``keel data`` takes them); ``latest``: the one source keel.yaml declares.
  A file source's versions each hold only the files that were new, so its data as of a
  version is every live version up to and including it (``keel.data.access``); a
  partitioned source's version (a manifest) is its whole table, its files read by DuckDB
  here, or one per task on the workers with ``compute.engine: dask``.

``rows_on_workers`` is the other way in, for a run that keeps a partitioned source's
rows on the Dask workers (a booster with ``compute.engine: dask``): the same published
rows as a Dask frame, one partition per file, never gathered here.

``resolve_training_frame`` is the only function that knows these kinds; everything after
it sees a ``TrainingFrame``: the rows, a reference that names them, their digest and, for
a source, its lineage (versions, their rows, the time span of its ``timestamp:`` column).
"""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import TrainingDataError
from keel.schema import TrainingConfig

if TYPE_CHECKING:
    import pandas as pd

    from keel.compute.engine import Engine
    from keel.data.catalog import Catalog
    from keel.data.model import DataVersion
    from keel.project import Project

__all__ = [
    "TrainingFrame",
    "WorkerRows",
    "frame_digest",
    "load_holdout",
    "missing_labels",
    "read_table",
    "resolve_training_frame",
    "rows_on_workers",
]

_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class TrainingFrame:
    """The rows a run trains on, and how to name them again."""

    frame: pd.DataFrame
    ref: str
    digest: str
    lineage: dict[str, Any] | None = None


def resolve_training_frame(
    root: Path, spec: str, training: TrainingConfig | None = None
) -> TrainingFrame:
    """The frame ``training.data`` names, read relative to the project ``root``."""
    if spec == "features":
        return _from_features(root, training)
    if spec.lower().endswith(_TABLE_SUFFIXES) or "/" in spec:
        return _from_file(root, spec)
    if _CALLABLE.match(spec):
        return _from_callable(root, spec)
    if spec == "latest":
        return _from_source(root, None, None)
    named = TrainingConfig.source_named(spec)
    if named is None:
        return _from_file(root, spec)
    return _from_source(root, *named)


@dataclass
class WorkerRows:
    """A partitioned source's published rows left on the Dask workers.

    ``frame`` is a Dask DataFrame with one partition per file of the version, in row
    order, persisted on the cluster of ``client``; its dtypes are those of the local read
    (a column that is null in some files only is nullable in all). ``digest`` equals
    ``frame_digest`` of the local read of the same rows. ``take`` hands the frame over:
    this object is its only holder, so once the taker drops it the workers free it.
    """

    frame: Any
    client: Any
    workers: int
    ref: str
    digest: str
    lineage: dict[str, Any]

    def take(self) -> Any:
        """``frame``, no longer held here (``frame`` is None from now on)."""
        frame, self.frame = self.frame, None
        return frame


@contextmanager
def rows_on_workers(project: Project, spec: str) -> Iterator[WorkerRows | None]:
    """The rows ``training.data`` names, kept on the cluster ``compute:`` names, for the
    block; None (read them with ``resolve_training_frame``) unless they are one manifest
    version of a partitioned source without upserts, in artifacts the workers can open
    by path, with ``compute.engine: dask``."""
    version = _published_table(project, spec)
    if version is None:
        yield None
        return
    from keel.compute import open_engine
    from keel.data.access import version_files

    engine = open_engine(project.config.compute, "dask")
    try:
        with version_files(project.artifacts, version) as paths:
            client = engine.client  # type: ignore[attr-defined]
            frame = _read_on_workers(client, paths)
            timestamp = project.config.sources[version.source].timestamp
            rows = WorkerRows(
                frame,
                client,
                engine.workers(),  # type: ignore[attr-defined]
                f"{version.source}@{version.short}",
                _digest_on_workers(client, frame),
                _worker_lineage(client, version, frame, timestamp),
            )
            del frame  # ``rows`` is its only holder, for ``WorkerRows.take``
            yield rows
    finally:
        engine.close()


def _published_table(project: Project, spec: str) -> DataVersion | None:
    """The one manifest version ``spec`` trains on, when its rows can stay on workers."""
    from keel.data.access import accumulates, is_manifest, table_versions, upsert_keys
    from keel.data.catalog import Catalog

    compute = project.config.compute
    named = (None, None) if spec == "latest" else TrainingConfig.source_named(spec)
    if compute is None or compute.engine != "dask" or named is None:
        return None
    source, prefix = named
    name = source if source is not None else _only_source(project)
    _check_declared(project, name)
    config = project.config.sources[name]
    if not config.partitioned or upsert_keys(config) or not project.artifacts.is_local:
        return None
    catalog = Catalog(project.store)
    upto = None if prefix is None else _version_of(catalog, name, prefix)
    live = catalog.live_versions(name)
    versions = table_versions(live, upto, snapshots=not accumulates(config))
    if len(versions) != 1 or not is_manifest(versions[0]):
        return None
    return versions[0]


def _read_on_workers(client: Any, paths: list[Path]) -> Any:
    """The files as a persisted Dask frame, a partition per file read on a worker."""
    import dask.dataframe as dd

    from keel.data.access import read_partition_frame

    token = uuid.uuid4().hex[:12]
    keys = [f"keel-read_partition_frame-{token}-{i}" for i in range(len(paths))]
    parts = client.map(read_partition_frame, [str(path) for path in paths], key=keys)
    empty = _common_empty(client.gather(client.map(_empty, parts)))
    frame = dd.from_delayed(parts, meta=empty, verify_meta=False)
    frame = frame.map_partitions(_typed_as, empty, meta=empty)
    return client.persist(frame)  # the untyped parts are released once it is computed


def _empty(part: pd.DataFrame) -> pd.DataFrame:
    return part.iloc[:0]


def _common_empty(empties: list[pd.DataFrame]) -> pd.DataFrame:
    """Every file's columns typed as one read of them all types them: DuckDB gives a
    whole number or flag column pandas' nullable dtype only where it holds a null."""
    import pandas as pd

    dtypes = {}
    for column in empties[0].columns:
        found = [empty[column].dtype for empty in empties]
        nullable = [d for d in found if isinstance(d, pd.api.extensions.ExtensionDtype)]
        dtypes[column] = nullable[0] if nullable and len(set(map(str, found))) > 1 else found[0]
    return empties[0].astype(dtypes)


def _typed_as(part: pd.DataFrame, empty: pd.DataFrame) -> pd.DataFrame:
    return part.astype(empty.dtypes.to_dict())


def _digest_on_workers(client: Any, frame: Any) -> str:
    """``frame_digest`` of the rows, each partition's row hashes (8 bytes a row) brought
    here and hashed in row order one partition at a time."""
    from dask.delayed import delayed

    hasher = hashlib.sha256()
    hasher.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    futures = client.compute([delayed(_row_hashes)(p) for p in frame.to_delayed()])
    for future in futures:
        hasher.update(future.result())
        future.release()
    return hasher.hexdigest()


def _row_hashes(part: pd.DataFrame) -> bytes:
    import pandas as pd

    return bytes(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())


def _worker_lineage(
    client: Any, version: DataVersion, frame: Any, timestamp: str | None
) -> dict[str, Any]:
    """``_source_lineage`` of rows on the workers: counts and the span computed there."""
    start = end = None
    rows = int(client.compute(frame.map_partitions(len)).result().sum())
    if timestamp is not None and timestamp in frame.columns:
        values = frame[timestamp]
        found = client.compute([values.count(), values.min(), values.max()])
        present, low, high = client.gather(found)
        if present:
            start, end = str(low), str(high)
    return {
        "source": version.source,
        "versions": [{"id": version.id, "rows": version.rows}],
        "rows": rows,
        "timestamp": timestamp,
        "start": start,
        "end": end,
    }


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (pandas) or Parquet (DuckDB, so pyarrow is not needed) file as a DataFrame."""
    import pandas as pd

    if path.suffix.lower() in (".parquet", ".pq"):
        import duckdb

        with duckdb.connect() as connection:
            frame: pd.DataFrame = connection.read_parquet(str(path)).df()
        return frame
    try:
        return pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise TrainingDataError(f"{path} is not a readable CSV file ({error})") from None


def missing_labels(frame: pd.DataFrame, target: str) -> int:
    """How many rows have no value in the ``target`` column (0 when there is no such column)."""
    return int(frame[target].isna().sum()) if target in frame.columns else 0


def frame_digest(frame: pd.DataFrame) -> str:
    """A sha256 over a frame's column names, dtypes and values."""
    import pandas as pd

    hasher = hashlib.sha256()
    hasher.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    hasher.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return hasher.hexdigest()


def _from_file(root: Path, spec: str) -> TrainingFrame:
    path = (root / spec).resolve()
    if not path.is_file():
        raise TrainingDataError(
            f"training.data names the file '{spec}', which does not exist in {root}; "
            "fix the path (it is relative to the project folder)"
        )
    from keel.store.artifacts import hash_file

    digest = hash_file(path)
    return TrainingFrame(read_table(path), f"file:{spec}@sha256:{digest[:12]}", digest)


def _from_callable(root: Path, spec: str) -> TrainingFrame:
    module_name, function_name = spec.split(":")
    function = _import(root, module_name, function_name)
    frame = function(root)
    return TrainingFrame(frame, f"callable:{spec}", frame_digest(frame))


def _from_features(root: Path, training: TrainingConfig | None) -> TrainingFrame:
    """Labels joined with every feature as of each label's time (no label row dropped)."""
    import pandas as pd

    from keel.features import FeatureStore
    from keel.project import Project

    if training is None or training.labels is None:
        raise TrainingDataError(
            "training.data is 'features' but training.labels is not set; name the label file"
        )
    when = training.label_time or training.split.column
    if when is None:
        raise TrainingDataError(
            "training.data is 'features': set training.label_time to the labels' time column"
        )
    labels = read_table(root / training.labels)
    if when not in labels.columns:
        raise TrainingDataError(f"{training.labels} has no column '{when}' (training.label_time)")
    labels[when] = pd.to_datetime(labels[when], format="ISO8601")
    with Project.open(root) as project:
        store = FeatureStore.open(project)
        try:
            result = store.training_set(labels, when)
            views = list(store.features.views.values())
        finally:
            store.close()
    _refuse_empty_features(result.missing, len(labels), views, training)
    frame = result.frame.drop(columns=[c for c in result.frame if str(c).endswith("__missing")])
    digest = frame_digest(frame)
    ref = f"features:{result.definition_hash[:12]}+{training.labels}@sha256:{digest[:12]}"
    return TrainingFrame(frame, ref, digest)


def _from_source(root: Path, source: str | None, version: str | None) -> TrainingFrame:
    """A source's published rows as of ``version`` (default: its newest live version)."""
    from keel.data.access import read_published
    from keel.data.catalog import Catalog
    from keel.project import Project

    with Project.open(root) as project:
        name = source if source is not None else _only_source(project)
        _check_declared(project, name)
        upto = None if version is None else _version_of(Catalog(project.store), name, version)
        with _engine(project, project.config.sources[name].partitioned) as engine:
            published = read_published(project, name, upto, engine)
        timestamp = project.config.sources[name].timestamp
    if published.frame is None:
        raise TrainingDataError(
            f"training.data names the source '{name}', which has no live data version (none "
            f"published, or all retired); run `keel ingest --source {name}` first"
        )
    frame: pd.DataFrame = published.frame
    lineage = _source_lineage(name, published.versions, frame, timestamp)
    ref = f"{name}@{published.versions[-1].short}"
    return TrainingFrame(frame, ref, frame_digest(frame), lineage)


@contextmanager
def _engine(project: Project, partitioned: bool) -> Iterator[Engine | None]:
    """The Dask engine ``compute:`` names, to read a partitioned source's files on its
    workers; None on the local engine or for another source (read in this process)."""
    if not partitioned:
        yield None
        return
    from keel.compute import cluster_engine

    with cluster_engine(project.config.compute) as engine:
        yield engine


def _source_lineage(
    source: str, versions: tuple[DataVersion, ...], frame: pd.DataFrame, timestamp: str | None
) -> dict[str, Any]:
    """What a run read from a source: its versions, their rows, the timestamp's span."""
    start, end = _span(frame, timestamp)
    return {
        "source": source,
        "versions": [{"id": v.id, "rows": v.rows} for v in versions],
        "rows": len(frame),
        "timestamp": timestamp,
        "start": start,
        "end": end,
    }


def _span(frame: pd.DataFrame, column: str | None) -> tuple[str | None, str | None]:
    if column is None or column not in frame.columns:
        return None, None
    values = frame[column].dropna()
    if values.empty:
        return None, None
    return str(values.min()), str(values.max())


def _refuse_empty_features(
    missing: dict[str, int], rows: int, views: list[Any], training: TrainingConfig
) -> None:
    """A feature the model would train on that no label row received is a mistake to name:
    its view's key columns in the labels match none of its rows before the label times."""
    for view in views:
        for name in view.feature_names:
            used = name in training.features if training.features else name not in training.exclude
            if used and rows and missing.get(name) == rows:
                keys = ", ".join(view.keys)
                raise TrainingDataError(
                    f"feature '{name}' of view '{view.name}' is null in all {rows:,} label rows: "
                    f"no label's {keys} matches a row of source '{view.source}' at or before "
                    f"its time; check the labels' {keys} values or list '{name}' in "
                    "training.exclude"
                )


def _only_source(project: Project) -> str:
    """The source ``latest`` means: the only one keel.yaml declares."""
    names = list(project.config.sources)
    if len(names) == 1:
        return names[0]
    if not names:
        raise TrainingDataError(
            "training.data is 'latest' but keel.yaml declares no sources; declare one and "
            "run `keel ingest`, or set training.data to a CSV/Parquet file"
        )
    raise TrainingDataError(
        f"training.data is 'latest' but keel.yaml declares {len(names)} sources "
        f"({', '.join(names)}); set training.data to the one to train on"
    )


def _check_declared(project: Project, name: str) -> None:
    if name not in project.config.sources:
        known = ", ".join(project.config.sources) or "none are declared"
        raise TrainingDataError(
            f"training.data names '{name}', which is not a source in keel.yaml (sources: "
            f"{known}); name a source, a CSV/Parquet file, module:function or features"
        )


def _version_of(catalog: Catalog, source: str, prefix: str) -> DataVersion:
    """The one live version of ``source`` whose id starts with ``prefix``."""
    from keel.data.catalog import live_version

    named = f"training.data names {source}@{prefix}"
    otherwise = f", or train on '{source}' for its newest live data"
    return live_version(catalog, source, prefix, named, TrainingDataError, otherwise)


def _import(root: Path, module_name: str, function_name: str) -> Any:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TrainingDataError(
            f"training.data names '{module_name}:{function_name}' but the module cannot be "
            f"imported ({error}); fix the name or the module"
        ) from None
    if not callable(getattr(module, function_name, None)):
        raise TrainingDataError(
            f"training.data: module '{module_name}' has no function '{function_name}'"
        )
    return getattr(module, function_name)


def load_holdout(project: Project, record: dict[str, Any]) -> pd.DataFrame:
    """The held-out rows stored (as Parquet) with a version's run record."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = project.artifacts.fetch(record["holdout"]["sha256"], Path(folder) / "rows.parquet")
        return read_table(path)
