"""Ingesting a partitioned source (``partitioned: true``): a version that is a manifest.

A partitioned source is a folder or glob of Parquet files that together are the table
(the files are its partitions, not successive batches). Each ingest makes one version:
the manifest of the partitions' paths, sha256 digests, sizes and row counts plus the
schema; its id is the sha256 of that manifest and the source's name, so no whole-batch
hash is taken. Publishing copies each partition into the artifact store under its
digest (an unchanged partition is already there) and stores the manifest, which the
version's ``artifact`` and ``lineage["manifest"]`` name.

When the source is remote (``s3://``...) or the artifact store is, a changed partition is
streamed into the artifact store first (hashed as it passes, no local copy), its footer
is read there, and the engine's tasks read it from the store (``keel.data.remote.Blob``:
the store's URL and keel.yaml's storage options travel with the task). So a Dask cluster
on other machines needs only the object store, never this machine's folders. (The
partitions of a version that is then quarantined stay in the store unreferenced, as its
report does.) Only a local source with a local artifact store is read in place and
copied on publish.

Unchanged partitions are not read again. The stored manifest also keeps, per partition,
how the file looked when listed (size and modification time; an object's ETag on S3) and
the digest of its check result (its findings, edges and mergeable summary: small, no key
values). On the next ingest a file that still looks the same, checked by the same checks,
takes its digest and result from the manifest without being opened; a file that looks
different is hashed, and only if its digest changed is it checked again (on the project's
compute engine). The merge then runs over every partition's result. A check that depends
on the clock (``not_future``) is not re-run on an unchanged partition.

Uniqueness across partitions is the key shuffle of ``keel.data.partitioned``, run in the
same job as the checks: a checked partition's task cuts its keys from the table it has
loaded, and an unchanged partition's task reads only its key columns, from its copy in
the artifact store (the bytes the previous version published, so the file in the source
folder is still not opened). Only the clashing rows come back to this process.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from keel.data.partitioned import (
    KeyClashes,
    Part,
    PartitionCheck,
    PartitionedReport,
    Shared,
    check_part,
    key_job,
    merge_partitions,
    per_partition,
    shuffle_parts,
    typed,
    values_table,
)
from keel.data.partitions import UNTYPED, joined_schema, schema_difference
from keel.data.remote import Blob, object_chunks, readable, where_to_read
from keel.data.sources import file_lineage, list_files
from keel.errors import SourceError

if TYPE_CHECKING:
    from keel.compute.engine import ShuffleEngine
    from keel.data.catalog import Catalog
    from keel.data.model import DataVersion, Finding, Profile, Report
    from keel.project import Project
    from keel.schema import SourceConfig
    from keel.store.artifacts import ArtifactStore

_RESULTS = 2
"""The form of a stored partition result; a result stored in another form (before 2 a
result held the partition's key values) is not reused: its partition is checked again."""

__all__ = [
    "Listed",
    "Planned",
    "as_report",
    "check_manifest_version",
    "check_planned",
    "checks_digest",
    "column_values",
    "identity",
    "list_partitions",
    "plan",
    "previous_manifest",
    "reference_values",
    "store",
    "values_table",
]


@dataclass(frozen=True)
class Listed:
    """One file as listed: how it is named, how it looked, and where it lies: a local
    file (``local``) or an object (``remote``: its filesystem and path in it)."""

    path: str
    looks: dict[str, Any]
    local: Path | None = None
    remote: tuple[Any, str] | None = None

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes, in chunks, from where it lies."""
        if self.remote is not None:
            fs, name = self.remote
            yield from object_chunks(fs, name, self.path)
            return
        assert self.local is not None
        with self.local.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk


@dataclass(frozen=True)
class Planned:
    """Every partition's manifest entry, and the results already known (by position)."""

    entries: list[dict[str, Any]]
    known: dict[int, PartitionCheck]
    schema: list[list[str]]

    @property
    def read(self) -> int:
        return len(self.entries) - len(self.known)


def list_local(root: Path, pattern: str) -> list[Listed]:
    """The files of a local partitioned source, with their size and modification time."""
    found = []
    for file in list_files(root, pattern):
        stat = file.stat()
        shown = str(file.relative_to(root) if file.is_relative_to(root) else file)
        looks = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        found.append(Listed(shown, looks, local=file))
    if not found:
        raise SourceError(f"no files match '{pattern}'; check path: in keel.yaml")
    return found


def checks_digest(shared: Shared) -> str:
    """What a partition's result depends on besides its bytes: the checks and the
    referenced values (not the clock)."""
    body = {
        "checks": shared.config.model_dump(mode="json"),
        "lookups": shared.lookups,
        "results": _RESULTS,
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def plan(
    files: list[Listed], previous: dict[str, Any] | None, checks: str, artifacts: ArtifactStore
) -> Planned:
    """Each file's entry: from the previous manifest when it looks the same (not opened),
    else hashed with its row count and schema read; results kept when digest and checks
    match and its untyped columns are typed as before. Every partition must have one
    schema, a column without a type (all null) taking the others' (a file that differs is
    named)."""
    before = {p["path"]: p for p in (previous or {}).get("partitions", [])}
    kept = (previous or {}).get("schema") or []
    entries: list[dict[str, Any]] = []
    schemas: dict[int, list[list[str]]] = {}
    read: dict[int, list[list[str]]] = {}
    for position, file in enumerate(files):
        old = before.get(file.path)
        if old is not None and old.get("looks") == file.looks:
            entries.append(dict(old, untyped=_untyped(old, kept)))
            schemas[position] = _own_schema(kept, entries[-1]["untyped"])
            continue
        entry, read[position] = _read_entry(file, artifacts)
        entry["untyped"] = [name for name, kind in read[position] if kind == UNTYPED]
        if old is not None and old["sha256"] == entry["sha256"]:
            entry.update(result=old.get("result"), checks=old.get("checks"))
        entries.append(entry)
    schema = _one_schema(files, schemas, read)
    was, now = {n: k for n, k in kept}, {n: k for n, k in schema}
    known = {}
    for position, entry in enumerate(entries):
        alike = all(was.get(name) == now.get(name) for name in entry["untyped"])
        result = _cached(artifacts, entry) if alike and entry.get("checks") == checks else None
        if result is not None:
            known[position] = result
    return Planned(entries, known, schema)


def _untyped(entry: dict[str, Any], schema: list[list[str]]) -> list[str]:
    """The columns without a type in a previous manifest's partition (an older manifest
    does not list them: every partition then had the table's schema)."""
    if "untyped" in entry:
        return list(entry["untyped"])
    return [name for name, kind in schema if kind == UNTYPED]


def _own_schema(schema: list[list[str]], untyped: list[str]) -> list[list[str]]:
    """An unchanged partition's schema: the previous table's, its untyped columns so."""
    return [[name, UNTYPED if name in untyped else kind] for name, kind in schema]


def _read_entry(file: Listed, artifacts: ArtifactStore) -> tuple[dict[str, Any], list[list[str]]]:
    """A file's digest, size, row count and schema: the one place a partition is opened
    before its check (a remote one, or any bound for a remote store, is put in the
    artifact store first and its footer read there)."""
    from keel.data.partitioned import footer

    if file.local is not None and artifacts.is_local:
        schema, rows = footer(str(file.local))
        return {**file_lineage(file.local, file.path), "looks": file.looks, "rows": rows}, schema
    digest, size = _put(artifacts, file)
    schema, rows = _stored_footer(artifacts, digest, file.path)
    entry = {"path": file.path, "sha256": digest, "bytes": size, "looks": file.looks}
    return {**entry, "rows": rows}, schema


def _put(artifacts: ArtifactStore, file: Listed) -> tuple[str, int]:
    """Stream the file into the artifact store; its digest and size."""
    size = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for chunk in file.chunks():
            size += len(chunk)
            yield chunk

    return artifacts.put_stream(counted()), size


def _stored_footer(
    artifacts: ArtifactStore, digest: str, shown: str
) -> tuple[list[list[str]], int]:
    """A stored partition's schema and row count from its footer, read where it lies (in
    an object store by range requests, not downloaded); ``shown`` names it in errors."""
    import duckdb

    try:
        with _connection(artifacts) as con:
            url = _location(artifacts, digest)
            found = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [url]).fetchall()
            counted = con.execute(
                "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)", [url]
            ).fetchone()
    except duckdb.Error as error:
        said = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        message = f"{shown} is not a readable Parquet file ({said}); replace or remove it"
        raise SourceError(message) from None
    return [[str(row[0]), str(row[1])] for row in found], int(counted[0]) if counted else 0


@contextmanager
def _connection(artifacts: ArtifactStore) -> Iterator[Any]:
    """A DuckDB connection that reads the artifact store's URLs (its fsspec filesystem
    registered when the store is remote)."""
    import duckdb

    from keel.store.artifacts import open_filesystem

    with duckdb.connect() as con:
        if not artifacts.is_local:
            con.register_filesystem(open_filesystem(artifacts.location, artifacts.storage)[0])
        yield con


def _location(artifacts: ArtifactStore, digest: str) -> str:
    """Where this process reads a stored blob: its verified path, or its URL."""
    return str(artifacts.local_path(digest)) if artifacts.is_local else artifacts.url(digest)


def _one_schema(
    files: list[Listed], unchanged: dict[int, list[list[str]]], read: dict[int, list[list[str]]]
) -> list[list[str]]:
    """The table's schema: every partition's joined (``joined_schema``: a column without a
    type takes the others'), the unchanged ones' first; a read file that does not join is
    refused by name."""
    ordered = [*unchanged.values(), *read.values()]
    schema = ordered[0] if ordered else []
    for position, found in [*unchanged.items(), *read.items()]:
        joined = joined_schema(schema, found)
        if joined is None:
            shown = schema_difference(found, schema)
            message = f"{files[position].path} has another schema than the other partitions"
            raise SourceError(f"{message}: {shown}; give all one schema")
        schema = joined
    return schema


def _cached(artifacts: ArtifactStore, entry: dict[str, Any]) -> PartitionCheck | None:
    """A partition's stored result; None when missing or unreadable (then it is re-read)."""
    digest = entry.get("result")
    if not digest or not artifacts.exists(digest):
        return None
    try:
        found = pickle.loads(artifacts.get_bytes(digest))  # Keel's own, digest verified
    except Exception:  # written by another version of a library: check the file again
        return None
    return found if isinstance(found, PartitionCheck) else None


def identity(source: str, schema: list[list[str]], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest proper: schema and each partition's path, digest, size and rows."""
    parts = [{k: e[k] for k in ("path", "sha256", "bytes", "rows")} for e in entries]
    body = {"schema": schema, "partitions": parts}
    digest = hashlib.sha256(orjson.dumps({"source": source, **body}, option=orjson.OPT_SORT_KEYS))
    return {**body, "sha256": digest.hexdigest(), "rows": sum(p["rows"] for p in parts)}


def check_planned(
    project: Project, shared: Shared, files: list[Listed], planned: Planned
) -> tuple[tuple[PartitionCheck, ...], list[Finding]]:
    """Every partition's result, and the key checks across partitions: known results as
    they are, the rest checked on the engine (each stored as it arrives, named in
    ``planned.entries``), in one job with the key shuffle over every partition."""
    from keel.compute import open_engine

    rows = sum(int(entry["rows"]) for entry in planned.entries)
    unique = key_job(shared.config, len(files), rows)
    shared = replace(shared, unique=unique, schema=typed(planned.schema))
    clashes = KeyClashes(shared.unique, [file.path for file in files])
    results = dict(planned.known)
    parts = [_part(project.artifacts, file, planned, i) for i, file in enumerate(files)]
    todo = [part for part in parts if part.check or shared.unique.buckets]
    if todo:
        engine = open_engine(project.config.compute)
        try:
            results.update(_checked(project.artifacts, engine, shared, todo, planned, clashes))
        finally:
            engine.close()
    return tuple(results[i] for i in range(len(files))), clashes.findings(shared.config)


def _checked(
    artifacts: ArtifactStore,
    engine: ShuffleEngine,
    shared: Shared,
    parts: list[Part],
    planned: Planned,
    clashes: KeyClashes,
) -> dict[int, PartitionCheck]:
    """``parts`` shuffled on ``engine``: each new result stored as it arrives."""
    digest, results = checks_digest(shared), {}
    for index, result in shuffle_parts(engine, shared, parts, _check_item, clashes):
        position = parts[index].index
        stored = artifacts.put_bytes(pickle.dumps(result))
        planned.entries[position].update(result=stored, checks=digest)
        results[position] = result
    return results


def _part(artifacts: ArtifactStore, file: Listed, planned: Planned, position: int) -> Part:
    """A partition's task: checked when its result is not known, else its keys only,
    read from its published copy."""
    entry = planned.entries[position]
    if position not in planned.known:
        return Part(_where(artifacts, file, entry), file.path, position)
    return Part(_published(artifacts, entry["sha256"]), file.path, position, check=False)


def _published(artifacts: ArtifactStore, digest: str) -> str | Blob:
    """Where a task reads a published partition: in a local store the blob's path (not
    hashed again here: a blob is written once, under its digest, and hashing every
    partition would read the whole table in this process), else as a ``Blob``."""
    return artifacts.url(digest) if artifacts.is_local else where_to_read(artifacts, digest)


def _where(artifacts: ArtifactStore, file: Listed, entry: dict[str, Any]) -> str | Blob:
    """Where a task reads a partition: a local file in place when the store is local
    too, else its blob in the artifact store (put there when it was planned)."""
    if file.local is not None and artifacts.is_local:
        return str(file.local)
    return where_to_read(artifacts, entry["sha256"])


def _check_item(shared: Shared, part: Part) -> tuple[PartitionCheck | None, list[Any]]:
    """One partition's task on a worker (``check_part``), read from a path or fetched
    from its store."""
    with readable(part.where) as local:
        return check_part(shared, replace(part, where=local))


def store(
    artifacts: ArtifactStore, files: list[Listed], planned: Planned, found: dict[str, Any]
) -> str:
    """Put the partitions into the artifact store (each under its digest; one already
    there, as every remote one is since it was planned, is not copied) and store the
    manifest with its cache entries; its digest."""
    for file, entry in zip(files, planned.entries, strict=True):
        digest = entry["sha256"]
        if not artifacts.exists(digest) and _put(artifacts, file)[0] != digest:
            raise SourceError(f"{file.path} changed while it was ingested; run keel ingest again")
    body = {**found, "partitions": planned.entries}
    return artifacts.put_bytes(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))


def previous_manifest(
    artifacts: ArtifactStore, version: DataVersion | None
) -> dict[str, Any] | None:
    """The stored manifest of ``version`` when it is a manifest version."""
    digest = (version.lineage or {}).get("manifest") if version is not None else None
    if not digest or not artifacts.exists(digest):
        return None
    loaded: dict[str, Any] = orjson.loads(artifacts.get_bytes(digest))
    return loaded


def reference_values(
    project: Project, catalog: Catalog, config: SourceConfig
) -> dict[str, tuple[str, ...]]:
    """For each ``references:`` check, the distinct values (as text) of the referenced
    column over the referenced source's live versions, plain or manifest."""
    values: dict[str, tuple[str, ...]] = {}
    for spec in config.checks.references:
        other, column = spec.to.split(".")
        found = column_values(project, catalog.live_versions(other), column)
        if found is not None:
            values[spec.to] = found
    return values


def column_values(
    project: Project, versions: list[DataVersion], column: str
) -> tuple[str, ...] | None:
    """The distinct non-null values (as text) of ``column`` over ``versions``, plain or
    manifest; None when no version holds it."""
    holding = [v for v in versions if column in v.schema]
    paths = [p for v in holding for p in _parquet_files(project, v)]
    if not paths:
        return None
    listed = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
    quoted = '"' + column.replace('"', '""') + '"'
    with _connection(project.artifacts) as con:
        rows = con.execute(
            f"SELECT DISTINCT {quoted}::VARCHAR FROM read_parquet({listed}, "
            f"union_by_name = true) WHERE {quoted} IS NOT NULL"
        ).fetchall()
    return tuple(sorted(str(r[0]) for r in rows))


def _parquet_files(project: Project, version: DataVersion) -> list[str]:
    found = previous_manifest(project.artifacts, version)
    digests = [p["sha256"] for p in found["partitions"]] if found else [version.artifact]
    return [_location(project.artifacts, d) for d in digests]


def check_manifest_version(
    project: Project,
    name: str,
    config: SourceConfig,
    version: DataVersion,
    now: Any,
    reference: tuple[str, Profile] | None = None,
) -> PartitionedReport:
    """The checks of ``config`` over the published partitions of a manifest version,
    named by their original paths, on the project's engine (nothing cached, nothing
    published)."""
    from keel.compute import open_engine
    from keel.data.catalog import Catalog

    found = previous_manifest(project.artifacts, version)
    if found is None:
        raise SourceError(f"version {version.id[:12]} of '{name}' has no stored manifest")
    lookups = reference_values(project, Catalog(project.store), config)
    kept = identity(name, found["schema"], found["partitions"])
    job = key_job(config, len(found["partitions"]), kept["rows"])
    shared = Shared(name, per_partition(config), now, lookups, job, typed(found["schema"]))
    parts = [
        Part(where_to_read(project.artifacts, p["sha256"]), p["path"], i)
        for i, p in enumerate(found["partitions"])
    ]
    clashes = KeyClashes(job, [p["path"] for p in found["partitions"]])
    engine = open_engine(project.config.compute)
    try:
        done = dict(shuffle_parts(engine, shared, parts, _check_item, clashes))
    finally:
        engine.close()
    ordered = tuple(done[i] for i in range(len(parts)))
    return merge_partitions(config, kept, ordered, now, reference, clashes.findings(config))


def as_report(source: str, checked: PartitionedReport) -> Report:
    """The partitioned report as one ``Report``: every partition's failing findings (named
    by their file), then the findings over the whole table."""
    from keel.data.model import Report

    found = [f for part in checked.partitions for f in part.findings] + list(checked.merged)
    return Report(source, checked.manifest["rows"], tuple(found))


def list_partitions(
    root: Path, config: SourceConfig, storage: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Listed]:
    """The files of a partitioned source as they look now (listed only, none read)."""
    pattern = config.path or ""
    if "://" in pattern:
        return list_remote(pattern, storage)
    return list_local(root, pattern)


def list_remote(url: str, storage: Mapping[str, Mapping[str, Any]] | None = None) -> list[Listed]:
    """The objects ``url`` names (an object, a prefix or a glob), each with its size and
    ETag (or modification time), without reading any."""
    from keel.data.remote import BUCKETED, _bucket_exists, _filesystem, _guarded

    fs, path = _filesystem(url, storage)
    protocol = url.split("://", 1)[0]
    infos = _guarded(url, lambda: _infos(fs, path))
    if not infos and protocol in BUCKETED:
        _guarded(url, lambda: _bucket_exists(fs, url))
    if not infos:
        raise SourceError(f"no files match '{url}'; check path: in keel.yaml")
    found = []
    for name, info in sorted(infos.items()):
        looks: dict[str, Any] = {"bytes": int(info.get("size") or 0)}
        tag = info.get("ETag") or info.get("etag") or info.get("LastModified") or info.get("mtime")
        looks["tag"] = str(tag)
        shown = f"{protocol}://{name.removeprefix('/')}"
        found.append(Listed(shown, looks, remote=(fs, name)))
    return found


def _infos(fs: Any, path: str) -> dict[str, dict[str, Any]]:
    fs.invalidate_cache()  # the filesystem lives on (shared): list what is there now
    if any(char in path for char in "*?["):
        found = fs.glob(path, detail=True)
    elif fs.isdir(path):
        found = fs.find(path, detail=True)
    else:
        found = {path: fs.info(path)} if fs.exists(path) else {}
    return {str(k): v for k, v in found.items() if v.get("type") != "directory"}
