"""The catalog: data versions and ingestion runs in the metadata store.

Versions are never deleted: a retired version keeps its row (lineage still points at
it) with ``retired_at`` and ``retired_reason`` set, and ``live_versions`` leaves it out.

Publishing is one transaction that inserts the version row and its run row together, so
a version is either fully recorded or absent. The Parquet blob is written to the
artifact store before that transaction; if the process dies in between, the blob is an
orphan that the next run, finding the same content, simply reuses.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from keel.data.model import DataVersion, Profile, Report, Run
from keel.data.tables import data_runs, data_versions
from keel.errors import DataError, DataVersionNotFound, KeelError
from keel.store.metadata import MetadataStore

__all__ = ["Catalog", "live_version"]


class Catalog:
    """Read and record data versions and runs."""

    def __init__(self, store: MetadataStore) -> None:
        self._engine = store.engine

    # -- versions ---------------------------------------------------------------------

    def versions(self, source: str | None = None) -> list[DataVersion]:
        """Published versions, oldest first, of one source or all."""
        query = sa.select(data_versions).order_by(data_versions.c.created_at, data_versions.c.id)
        if source is not None:
            query = query.where(data_versions.c.source == source)
        with self._engine.connect() as connection:
            return [_version(row) for row in connection.execute(query).mappings()]

    def live_versions(self, source: str) -> list[DataVersion]:
        """Published versions of ``source`` that are not retired, oldest first."""
        query = (
            sa.select(data_versions)
            .where(data_versions.c.source == source, data_versions.c.retired_reason.is_(None))
            .order_by(data_versions.c.created_at, data_versions.c.id)
        )
        with self._engine.connect() as connection:
            return [_version(row) for row in connection.execute(query).mappings()]

    def latest(self, source: str) -> DataVersion | None:
        query = (
            sa.select(data_versions)
            .where(data_versions.c.source == source)
            .order_by(data_versions.c.created_at.desc(), data_versions.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().one_or_none()
        return None if row is None else _version(row)

    def find(self, version_id: str) -> DataVersion | None:
        """The version with exactly this id, if published."""
        query = sa.select(data_versions).where(data_versions.c.id == version_id)
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().one_or_none()
        return None if row is None else _version(row)

    def get(self, prefix: str) -> DataVersion:
        """The one version whose id starts with ``prefix`` (at least 4 characters)."""
        if len(prefix) < 4:
            raise DataVersionNotFound(f"'{prefix}' is too short; give at least 4 characters")
        query = sa.select(data_versions).where(data_versions.c.id.startswith(prefix)).limit(2)
        with self._engine.connect() as connection:
            rows = list(connection.execute(query).mappings())
        if len(rows) != 1:
            what = "no data version" if not rows else "more than one data version"
            raise DataVersionNotFound(f"{what} starts with '{prefix}'; see `keel data list`")
        return _version(rows[0])

    def retire(self, version_id: str, reason: str) -> DataVersion:
        """Mark a version retired with a reason; it stays in the catalog for lineage."""
        reason = reason.strip()
        if not reason:
            raise DataError("retiring a data version needs a reason; pass --reason '...'")
        update = (
            data_versions.update()
            .where(data_versions.c.id == version_id, data_versions.c.retired_reason.is_(None))
            .values(retired_at=time.time(), retired_reason=reason)
        )
        with self._engine.begin() as connection:
            changed = connection.execute(update).rowcount
        found = self.find(version_id)
        if found is None:
            raise DataVersionNotFound(f"no data version {version_id}; see `keel data list`")
        if not changed:
            raise DataError(
                f"data version {found.short} is already retired ({found.retired_reason})"
            )
        return found

    def ingested_files(self, source: str) -> dict[tuple[str, str], str]:
        """(path, sha256) of every file in a published version of ``source`` -> version id."""
        seen: dict[tuple[str, str], str] = {}
        for version in self.versions(source):
            for item in version.lineage.get("files", ()):
                seen[(item["path"], item["sha256"])] = version.id
        return seen

    # -- runs -------------------------------------------------------------------------

    def publish(self, version: DataVersion, run: Run) -> bool:
        """Record a version and its run in one transaction; False if it already existed."""
        with self._engine.begin() as connection:
            exists = connection.execute(
                sa.select(data_versions.c.id).where(data_versions.c.id == version.id)
            ).first()
            if exists is None:
                connection.execute(data_versions.insert().values(**_version_row(version)))
            connection.execute(data_runs.insert().values(**_run_row(run)))
        return exists is None

    def record(self, run: Run) -> None:
        with self._engine.begin() as connection:
            connection.execute(data_runs.insert().values(**_run_row(run)))

    def runs(self, source: str | None = None, limit: int = 50) -> list[Run]:
        """The latest runs, newest first."""
        query = sa.select(data_runs).order_by(data_runs.c.started_at.desc()).limit(limit)
        if source is not None:
            query = query.where(data_runs.c.source == source)
        with self._engine.connect() as connection:
            return [_run(row) for row in connection.execute(query).mappings()]

    def run(self, prefix: str) -> Run:
        query = sa.select(data_runs).where(data_runs.c.id.startswith(prefix)).limit(2)
        with self._engine.connect() as connection:
            rows = list(connection.execute(query).mappings())
        if len(rows) != 1 or len(prefix) < 4:
            raise DataVersionNotFound(
                f"no single ingestion run starts with '{prefix}'; see `keel data runs`"
            )
        return _run(rows[0])


def _version_row(version: DataVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "source": version.source,
        "artifact": version.artifact,
        "rows": version.rows,
        "schema": version.schema,
        "profile": version.profile.to_dict() if version.profile else {},
        "watermark": version.watermark,
        "time_min": version.time_min,
        "time_max": version.time_max,
        "lineage": version.lineage,
        "run_id": version.run_id,
        "created_at": version.created_at,
        "retired_at": version.retired_at,
        "retired_reason": version.retired_reason,
    }


def _version(row: Any) -> DataVersion:
    profile = Profile.from_dict(row["profile"]) if row["profile"] else None
    return DataVersion(
        id=row["id"],
        source=row["source"],
        artifact=row["artifact"],
        rows=int(row["rows"]),
        schema=dict(row["schema"]),
        created_at=float(row["created_at"]),
        profile=profile,
        watermark=row["watermark"],
        time_min=row["time_min"],
        time_max=row["time_max"],
        lineage=dict(row["lineage"]),
        run_id=row["run_id"],
        retired_at=row["retired_at"],
        retired_reason=row["retired_reason"],
    )


def _run_row(run: Run) -> dict[str, Any]:
    return run.to_dict()


def _run(row: Any) -> Run:
    report = Report.from_dict(row["report"]) if row["report"] else None
    fields = {k: row[k] for k in row if k != "report"}
    return Run(**fields, report=report)


def live_version(
    catalog: Catalog, source: str, prefix: str, named: str, error: type[KeelError], otherwise: str
) -> DataVersion:
    """The one live version of ``source`` whose id starts with ``prefix`` (at least 4
    characters), else ``error`` in one sentence: ``named`` says where the reference was
    written (``training.data names events@1a2b``), ``otherwise`` what else to do."""
    if len(prefix) < 4:
        raise error(f"{named}: give at least 4 characters of a version id (see `keel data list`)")
    found = [v for v in catalog.versions(source) if v.id.startswith(prefix)]
    listed = f"`keel data list --source {source}`"
    if not found:
        raise error(
            f"{named}, but '{source}' has no data version starting with '{prefix}'; pick one "
            f"from {listed}{otherwise}"
        )
    if len(found) > 1:
        raise error(
            f"{named}, but more than one version of '{source}' starts with '{prefix}'; give "
            "more characters of the id"
        )
    if found[0].retired_reason is not None:
        raise error(
            f"{named}, but data version {found[0].short} of '{source}' was retired "
            f"({found[0].retired_reason}); pick a live one from {listed}{otherwise}"
        )
    return found[0]
