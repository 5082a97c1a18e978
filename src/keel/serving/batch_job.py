"""``keel predict --batch``: a table scored on an engine, published whole or not at all.

The client plans the partitions, the engine scores them (``score_partition``), and the
client keeps each result as it arrives: the response rows in a staging folder, the log
records in a staging prediction log. Only when every partition is scored is the output
file put in place (one rename) and the log's records committed, so a job that fails or
is cancelled leaves neither a partial output nor half its rows in monitoring.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.compute.engine import Engine
from keel.data.partitions import Storage, plan_partitions, resolve_table
from keel.schema import ComputeConfig, ServingConfig
from keel.serving.batch_scoring import Scorer, score_partition

if TYPE_CHECKING:
    import pandas as pd

    from keel.monitoring.log import PredictionLog
    from keel.project import Project

__all__ = ["BatchResult", "predict_batch", "scorer_for"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BatchResult:
    """What a batch scoring job did."""

    out: str
    rows: int
    answered: int
    partitions: int
    model_version: str
    engine: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def scorer_for(project: Project, version: str | None = None) -> Scorer:
    """The production model (or ``version``) and the project's serving settings."""
    from keel.serving.source import RegistrySource
    from keel.training import Registry

    found = Registry(project.store).resolve(version or "production")
    arguments = RegistrySource(project).backend_arguments(str(found.version))
    settings = project.config.serving or ServingConfig()
    return Scorer(arguments, settings, str(project.root))


def predict_batch(
    project: Project,
    table: str,
    out: Path | str,
    engine: Engine,
    *,
    version: str | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Score ``table`` (a source name, file, folder or glob, local or ``s3://``) into the
    Parquet file ``out`` (a path, or an ``s3://`` URL: one object, put whole)."""
    started = time.perf_counter()
    compute = project.config.compute or ComputeConfig()
    found = resolve_table(project.root, table, project.config.sources, project.artifacts.storage)
    partitions = plan_partitions(found, compute.partition_rows, project.artifacts.task_storage)
    scorer = scorer_for(project, version)
    staging = project.state_dir / "batch" / uuid.uuid4().hex
    (staging / "parts").mkdir(parents=True)
    log = _staging_log(project, staging / "log")
    rows = answered = done = 0
    results = engine.map(score_partition, scorer, partitions)
    try:
        for position, scored in results:
            _write_part(scored.output, staging / "parts" / f"part-{position:06d}.parquet")
            log.append(scored.entries)
            rows, answered, done = rows + len(scored.output), answered + scored.answered, done + 1
            if progress is not None:
                progress(done, len(partitions))
        parts = sorted((staging / "parts").glob("part-*.parquet"))
        _publish(parts, out, staging, project.artifacts.storage)
        log.close(flush=True)
    except BaseException:
        results.close()  # cancels the partitions not yet scored
        log.close(flush=False)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = round(time.perf_counter() - started, 3)
    return BatchResult(
        str(out), rows, answered, len(partitions), scorer.version, engine.name, seconds
    )


def _staging_log(project: Project, folder: Path) -> PredictionLog:
    """A prediction log whose spool is private to this job but whose segments, once
    rolled, are committed where the project's monitoring reads them."""
    from keel.monitoring.cycle import project_sketcher
    from keel.monitoring.log import PredictionLog
    from keel.monitoring.segments import ArtifactSegments
    from keel.monitoring.store_manifest import StoreManifest

    return PredictionLog(
        folder,
        segments=ArtifactSegments(project.artifacts),
        manifest=StoreManifest(project.store),
        sketcher=project_sketcher(project),
        sync=False,
    )


def _write_part(frame: pd.DataFrame, path: Path) -> None:
    import duckdb

    if frame.empty:
        return
    with duckdb.connect() as con:
        con.register("part", frame)
        con.execute(f"COPY part TO {_literal(path)} (FORMAT parquet)")


def _publish(parts: list[Path], out: Path | str, staging: Path, storage: Storage = None) -> None:
    """Every part, in order, as one Parquet file at ``out``: a local file put in place by
    one rename, or an object uploaded whole (S3 shows an object only once complete)."""
    if "://" not in str(out):
        _write_out(parts, Path(out))
        return
    from keel.data.remote import _guarded
    from keel.errors import SourceError
    from keel.store.artifacts import open_filesystem

    local = _write_out(parts, staging / "out.parquet")
    url = str(out)
    try:
        fs, path = open_filesystem(url, storage)
        _guarded(url, lambda: fs.put_file(str(local), path))
    except ConnectionError as error:
        raise SourceError(str(error)) from None


def _write_out(parts: list[Path], out: Path) -> Path:
    """Every part, in order, as one Parquet file at ``out``, put in place by one rename."""
    import duckdb

    out.parent.mkdir(parents=True, exist_ok=True)
    pending = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    if parts:
        listed = "[" + ", ".join(_literal(p) for p in parts) + "]"
        select = f"SELECT * FROM read_parquet({listed}, union_by_name = true)"
    else:
        select = "SELECT NULL::VARCHAR AS prediction_id WHERE false"
    try:
        with duckdb.connect() as con:
            # the command shows its own progress; DuckDB's bar would write over it
            con.execute("SET preserve_insertion_order = true; SET enable_progress_bar = false")
            select = _typed(con, select)
            con.execute(f"COPY ({select}) TO {_literal(pending)} (FORMAT parquet)")
        os.replace(pending, out)
    finally:
        pending.unlink(missing_ok=True)
    return out


def _typed(con: Any, select: str) -> str:
    """``select`` with columns that hold only nulls (a fallback no row needed) as text,
    so readers see a string column rather than Parquet's null type."""
    columns = con.execute(f"DESCRIBE {select}").fetchall()
    if not any(kind == '"NULL"' for _, kind, *_ in columns):
        return select
    shown = ", ".join(
        f'"{name}"::VARCHAR AS "{name}"' if kind == '"NULL"' else f'"{name}"'
        for name, kind, *_ in columns
    )
    return f"SELECT {shown} FROM ({select})"


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
