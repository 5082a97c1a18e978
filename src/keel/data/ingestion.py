"""Ingestion: read -> profile -> validate -> publish or quarantine, one source at a time.

A thin shell around the pure core. Each source runs under the lease ``ingest:<source>``
so two runs never interleave. Publishing writes the batch as Parquet to the artifact
store, then records the version and its run in one metadata transaction: a crash before
the transaction leaves only an orphan blob, and the next run, reading the same input,
reuses that blob and completes the publish. Every run is recorded with its report.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel.data.batch import TABLE, Batch, jsonable, quote
from keel.data.catalog import Catalog
from keel.data.history import key_index, load_keys, load_values
from keel.data.model import DataVersion, Profile, Report, Run
from keel.data.profiling import profile as profile_batch
from keel.data.report import render_html, warning_line
from keel.data.sources import Read, read_source
from keel.data.validation import Context, validate
from keel.errors import SourceError
from keel.project import Project
from keel.schema import SourceConfig
from keel.store.leases import Lease

__all__ = [
    "LEASE_TTL_S",
    "Ingestion",
    "ingest",
    "ingestion_order",
    "published_message",
    "utc_now",
]

LEASE_TTL_S = 60.0
Progress = Callable[[str, str], None]


def utc_now() -> datetime:
    """The clock ingestion judges freshness and the future by: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def ingestion_order(sources: dict[str, SourceConfig]) -> list[str]:
    """Source names with every referenced source before the sources that reference it."""
    ordered: list[str] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in ordered or name in trail or name not in sources:
            return
        for ref in sources[name].checks.references:
            visit(ref.to.split(".")[0], (*trail, name))
        ordered.append(name)

    for name in sources:
        visit(name, ())
    return ordered


def ingest(
    project: Project, source: str | None = None, *, progress: Progress | None = None
) -> list[Run]:
    """Ingest one source, or every source in dependency order; one run each."""
    sources = project.config.sources
    if not sources:
        raise SourceError("keel.yaml declares no sources; add a sources: section to ingest data")
    if source is not None and source not in sources:
        known = ", ".join(sources) or "none are declared"
        raise SourceError(f"no source named '{source}' in keel.yaml (sources: {known})")
    names = [source] if source is not None else ingestion_order(dict(sources))
    runner = Ingestion(project, progress=progress)
    return [runner.run(name) for name in names]


@dataclass
class _Started:
    id: str
    source: str
    at: float
    lease: Lease


class Ingestion:
    """Runs ingestion for the sources of one project."""

    def __init__(
        self, project: Project, *, now: datetime | None = None, progress: Progress | None = None
    ) -> None:
        self.project = project
        self.catalog = Catalog(project.store)
        self.now = now
        self._progress = progress or (lambda _source, _step: None)

    def run(self, name: str, config: SourceConfig | None = None) -> Run:
        """Ingest source ``name`` under its lease and return the recorded run.

        ``config`` overrides the source's keel.yaml entry (e.g. to read another file).
        """
        config = config or self.project.config.sources[name]
        with self.project.store.leases.hold(f"ingest:{name}", ttl=LEASE_TTL_S) as lease:
            started = _Started(uuid.uuid4().hex, name, time.time(), lease)
            try:
                run = self._attempt(started, config)
            except SourceError as error:
                run = self._record(started, "failed", str(error))
            except Exception as error:  # a bug or a store failure: still leave a record
                self._record(started, "failed", f"{type(error).__name__}: {error}")
                raise
        return run

    def check_file(self, name: str, path: Path) -> Report:
        """Validate a file against source ``name``'s checks without publishing anything."""
        config = self.project.config.sources[name]
        kind = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
        local = config.model_copy(update={"kind": kind, "path": str(path.resolve())})
        read = read_source(self.project.root, local, set(), None)
        if read.batch is None:
            raise SourceError(f"{path} holds no data")
        with read.batch as batch:
            return self._validate(batch, name, config, profile_batch(batch))

    def check_latest(self, name: str) -> tuple[DataVersion, Report]:
        """Validate the newest published version of ``name`` against the source's checks
        as keel.yaml has them now, publishing nothing: a change of checks tried on the data
        it will meet. Its keys are checked against the other live versions and its
        statistics against the version before it, as when it was ingested."""
        from keel.data.access import parquet_path

        latest = self.catalog.latest(name)
        if latest is None:
            raise SourceError(f"source '{name}' has no published version yet; run keel ingest")
        config = self.project.config.sources[name]
        if (latest.lineage or {}).get("manifest"):
            return latest, self._check_manifest(name, config, latest)
        with parquet_path(self.project.artifacts, latest.artifact) as path:
            local = config.model_copy(update={"kind": "parquet", "path": str(path)})
            read = read_source(self.project.root, local, set(), None)
            if read.batch is None:
                raise SourceError(f"version {latest.id[:12]} of '{name}' holds no rows")
            with read.batch as batch:
                report = self._validate(batch, name, config, profile_batch(batch), latest.id)
        return latest, report

    def _attempt(self, started: _Started, config: SourceConfig) -> Run:
        if config.partitioned:
            return self._partitioned(started, config)
        self._progress(started.source, "reading")
        latest = self.catalog.latest(started.source)
        seen = self.catalog.ingested_files(started.source)
        watermark = latest.watermark if latest is not None else None
        storage = self.project.artifacts.storage
        read = read_source(self.project.root, config, set(seen), watermark, storage)
        if read.batch is None:
            return self._nothing_new(started, read, seen)
        with read.batch as batch:
            return self._process(started, config, batch, read.lineage)

    def _partitioned(self, started: _Started, config: SourceConfig) -> Run:
        """A partitioned source's whole table as one manifest version (keel.data.manifests):
        files that look as they did are not read, changed ones are checked on the engine."""
        from keel.data import manifests

        self._progress(started.source, "listing partitions")
        try:
            files = manifests.list_partitions(
                self.project.root, config, self.project.artifacts.storage
            )
            return self._manifest_version(started, config, files)
        except ConnectionError as error:  # the remote store did not answer
            raise SourceError(str(error)) from None

    def _manifest_version(self, started: _Started, config: SourceConfig, files: list[Any]) -> Run:
        from keel.data import manifests
        from keel.data.partitioned import Shared, merge_partitions, per_partition

        name, artifacts = started.source, self.project.artifacts
        now = self.now or utc_now()
        lookups = manifests.reference_values(self.project, self.catalog, config)
        shared = Shared(name, per_partition(config), now, lookups)
        previous = manifests.previous_manifest(artifacts, self.catalog.latest(name))
        planned = manifests.plan(files, previous, manifests.checks_digest(shared), artifacts)
        found = manifests.identity(name, planned.schema, planned.entries)
        if self.catalog.find(found["sha256"]) is not None:
            message = f"already ingested as version {found['sha256'][:12]}"
            return self._record(
                started, "already_ingested", message, version_id=found["sha256"], rows=0
            )
        self._progress(
            name, f"checking {planned.read} of {len(files)} partitions, and keys across all"
        )
        reference = None
        if config.checks.reference is not None:
            reference = self._reference(name, config.checks.reference.against)
        parts, keys = manifests.check_planned(self.project, shared, files, planned)
        merged = merge_partitions(config, found, parts, now, reference, keys)
        report = manifests.as_report(name, merged)
        page = render_html(report)
        self._keep_page(started, page)
        html = artifacts.put_bytes(page.encode())
        lineage = {"partitions": len(files), "read": planned.read}
        if not report.passed:
            blocking = [f.check for f in report.findings if f.blocking]
            message = (
                f"quarantined: {len(blocking)} blocking check(s) failed: {', '.join(blocking)}"
            )
            return self._record(
                started, "quarantined", message, rows=found["rows"], report=report,
                report_artifact=html, lineage=lineage,
            )  # fmt: skip
        self._progress(name, "publishing partitions")
        digest = manifests.store(artifacts, files, planned, found)
        profile = merged.profile
        assert profile is not None
        version = DataVersion(
            id=found["sha256"], source=name, artifact=digest, rows=found["rows"],
            schema=profile.schema, created_at=time.time(), profile=profile,
            time_min=_bound(profile, config.timestamp, "min"),
            time_max=_bound(profile, config.timestamp, "max"),
            lineage={**lineage, "manifest": digest}, run_id=started.id,
        )  # fmt: skip
        read = f"; {planned.read} of {len(files)} partitions read"
        message = published_message(found["sha256"], found["rows"], report) + read
        run = self._finish(
            started, "published", message, version_id=version.id, rows=version.rows,
            report=report, report_artifact=html, lineage=version.lineage,
        )  # fmt: skip
        self.project.store.leases.renew(started.lease, LEASE_TTL_S)
        if not self.catalog.publish(version, run):
            run = replace(run, status="already_ingested")
        return run

    def _check_manifest(self, name: str, config: SourceConfig, latest: DataVersion) -> Report:
        from keel.data import manifests

        reference = None
        if config.checks.reference is not None:
            reference = self._reference(name, config.checks.reference.against, latest.id)
        now = self.now or utc_now()
        checked = manifests.check_manifest_version(
            self.project, name, config, latest, now, reference
        )
        return manifests.as_report(name, checked)

    def _nothing_new(self, started: _Started, read: Read, seen: dict[Any, str]) -> Run:
        latest = self.catalog.latest(started.source)
        holding = [v for (path, _), v in seen.items() if path in set(read.already)]
        version = holding[-1] if holding else (latest.id if latest is not None else None)
        message = "already ingested: nothing new since version " + (version or "-")[:12]
        return self._record(started, "already_ingested", message, version_id=version, rows=0)

    def _process(
        self, started: _Started, config: SourceConfig, batch: Batch, lineage: dict[str, Any]
    ) -> Run:
        rows = batch.rows
        if rows == 0 and "since" in lineage:
            message = f"already ingested: no rows past {config.watermark} = {lineage['since']}"
            return self._record(started, "already_ingested", message, rows=0)
        if rows == 0:
            return self._record(
                started, "empty", "the batch has no rows; nothing published", rows=0
            )
        content = batch.content_id(started.source)
        found = self.catalog.find(content)
        if found is not None:
            retired = "" if found.live else f" (retired: {found.retired_reason})"
            message = f"already ingested as version {content[:12]}{retired}"
            return self._record(started, "already_ingested", message, version_id=content, rows=0)
        self._progress(started.source, "profiling")
        profile = profile_batch(batch)
        self._progress(started.source, "validating")
        report = self._validate(batch, started.source, config, profile)
        page = render_html(report)
        html = self.project.artifacts.put_bytes(page.encode())
        self._keep_page(started, page)
        checked = _Checked(content, profile, report, html, lineage)
        if not report.passed:
            return self._quarantine(started, batch, checked)
        return self._publish(started, config, batch, checked)

    def _validate(
        self,
        batch: Batch,
        name: str,
        config: SourceConfig,
        profile: Profile,
        published: str | None = None,
    ) -> Report:
        """The batch's report; ``published`` names the version the batch already is, left
        out of the key history and of what "previous" means."""
        reference = None
        if config.checks.reference is not None:
            reference = self._reference(name, config.checks.reference.against, published)
        lookups = self._load_lookups(batch, config)
        history = None
        if config.keys:
            live = [v for v in self.catalog.live_versions(name) if v.id != published]
            history = load_keys(batch, self.project.artifacts, live, config.keys)
        now = self.now or utc_now()
        context = Context(now=now, reference=reference, lookups=lookups, history=history)
        return validate(batch, name, config, profile, context)

    def _reference(
        self, name: str, against: str, published: str | None = None
    ) -> tuple[str, Profile] | None:
        if against == "previous" and published is None:
            version = self.catalog.latest(name)
        elif against == "previous":
            before = [v for v in self.catalog.versions(name) if v.id != published]
            version = before[-1] if before else None
        else:
            version = self.catalog.get(against)
        if version is None or version.profile is None:
            return None
        return version.id, version.profile

    def _load_lookups(self, batch: Batch, config: SourceConfig) -> dict[str, str]:
        """Load each referenced column's distinct values, over every live version of the
        referenced source (file sources publish only new files), beside the batch."""
        lookups: dict[str, str] = {}
        for index, spec in enumerate(config.checks.references):
            other, column = spec.to.split(".")
            live = self.catalog.live_versions(other)
            if any((v.lineage or {}).get("manifest") for v in live):
                view = self._manifest_values(batch, live, column, f"keel_lookup_{index}")
                if view is not None:
                    lookups[spec.to] = view
                continue
            view = load_values(
                batch, self.project.artifacts, live, column, f"keel_lookup_{index}",
                against=spec.column,
            )  # fmt: skip
            if view is not None:
                lookups[spec.to] = view
        return lookups

    def _manifest_values(
        self, batch: Batch, live: list[DataVersion], column: str, table: str
    ) -> str | None:
        """A referenced source's values when its versions are manifests (read from their
        stored partitions), as a table beside the batch."""
        from keel.data.manifests import column_values, values_table

        values = column_values(self.project, live, column)
        return None if values is None else values_table(batch.con, table, values)

    def _store_batch(self, batch: Batch) -> str:
        with tempfile.TemporaryDirectory(prefix="keel-batch-") as folder:
            path = batch.write_parquet(Path(folder) / "batch.parquet")
            return self.project.artifacts.put_file(path)

    def _key_index(self, batch: Batch, keys: tuple[str, ...]) -> dict[str, Any]:
        """Store the batch's distinct keys beside it, so key checks read only those."""
        if not keys or not all(k in batch.schema for k in keys):
            return {}
        with tempfile.TemporaryDirectory(prefix="keel-keys-") as folder:
            digest = self.project.artifacts.put_file(key_index(batch, keys, Path(folder) / "k"))
        named = {"column": keys[0]} if len(keys) == 1 else {"columns": list(keys)}
        return {"key_index": {**named, "artifact": digest}}

    def _quarantine(self, started: _Started, batch: Batch, checked: _Checked) -> Run:
        self._progress(started.source, "quarantining")
        blob = self._store_batch(batch)
        blocking = [f.check for f in checked.report.findings if f.blocking]
        message = f"quarantined: {len(blocking)} blocking check(s) failed: {', '.join(blocking)}"
        return self._record(
            started, "quarantined", message, rows=checked.profile.rows, report=checked.report,
            report_artifact=checked.html, quarantine_artifact=blob, lineage=checked.lineage,
        )  # fmt: skip

    def _publish(
        self, started: _Started, config: SourceConfig, batch: Batch, checked: _Checked
    ) -> Run:
        self._progress(started.source, "publishing")
        profile, content = checked.profile, checked.content
        version = DataVersion(
            id=content,
            source=started.source,
            artifact=self._store_batch(batch),
            rows=profile.rows,
            schema=profile.schema,
            created_at=time.time(),
            profile=profile,
            watermark=_highest(batch, config.watermark),
            time_min=_bound(profile, config.timestamp, "min"),
            time_max=_bound(profile, config.timestamp, "max"),
            lineage={**checked.lineage, **self._key_index(batch, config.keys)},
            run_id=started.id,
        )
        message = published_message(content, profile.rows, checked.report)
        run = self._finish(
            started, "published", message, version_id=content, rows=profile.rows,
            report=checked.report, report_artifact=checked.html, lineage=checked.lineage,
        )  # fmt: skip
        # Fencing: publish only while the lease is still ours (LeaseHeld otherwise).
        self.project.store.leases.renew(started.lease, LEASE_TTL_S)
        if not self.catalog.publish(version, run):
            run = replace(run, status="already_ingested")
        return run

    def _keep_page(self, started: _Started, page: str) -> None:
        """A copy of the HTML report at .keel/reports/<source>-<run>.html to open directly."""
        folder = self.project.state_dir / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{started.source}-{started.id[:8]}.html").write_text(page)

    def _record(self, started: _Started, status: Any, message: str, **fields: Any) -> Run:
        run = self._finish(started, status, message, **fields)
        self.catalog.record(run)
        return run

    def _finish(self, started: _Started, status: Any, message: str, **fields: Any) -> Run:
        return Run(started.id, started.source, status, started.at, time.time(), message, **fields)


@dataclass(frozen=True)
class _Checked:
    """A validated batch's content id, profile, report (and its HTML digest), lineage."""

    content: str
    profile: Profile
    report: Report
    html: str
    lineage: dict[str, Any]


def published_message(content: str, rows: int, report: Report) -> str:
    """The one line a published run says: version, rows, the keys it updated, and the
    warn-level checks that failed with their failing row counts."""
    upserted = [f for f in report.findings if f.kind == "unique_history" and f.severity == "info"]
    keys = f"; {upserted[0].message}" if upserted and upserted[0].status == "pass" else ""
    return f"published version {content[:12]} ({rows:,} rows{keys}){warning_line(report)}"


def _highest(batch: Batch, column: str | None) -> str | None:
    """The batch's watermark: the largest value of the watermark column, as text."""
    if column is None or column not in batch.schema:
        return None
    value = jsonable(batch.scalar(f"SELECT max({quote(column)}) FROM {TABLE}"))
    return None if value is None else str(value)


def _bound(profile: Profile, column: str | None, end: str) -> str | None:
    found = profile.column(column) if column else None
    value = None if found is None else getattr(found, end)
    return None if value is None else str(value)
