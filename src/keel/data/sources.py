"""Read a source's new data into a batch: CSV / Parquet files, a SQL query, a callable.

File sources read only files not already in a published version (by path and sha256);
any source with a ``watermark:`` column keeps only rows past the last published
watermark. Transient errors (I/O, timeouts, a database that drops the connection) are
retried with exponential backoff; anything else becomes one ``SourceError`` sentence.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.data.batch import Batch, quote
from keel.errors import SourceError
from keel.schema import SourceConfig

__all__ = ["Read", "csv_options", "file_lineage", "list_files", "load_callable", "read_source"]

_TRANSIENT: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)


@dataclass
class Read:
    """What a read produced: a batch (None when nothing is new) and where it came from."""

    batch: Batch | None
    lineage: dict[str, Any] = field(default_factory=dict)
    already: list[str] = field(default_factory=list)


def read_source(
    root: Path,
    config: SourceConfig,
    seen: set[tuple[str, str]],
    watermark: str | None,
    storage: Mapping[str, Mapping[str, Any]] | None = None,
) -> Read:
    """Read the new data of a source, retrying transient errors; ``storage``: options
    for a remote path's filesystem (keel.yaml's ``storage:``)."""
    read = _retrying(config, lambda: _read_once(root, config, seen, watermark, storage))
    if read.batch is not None and config.watermark and watermark is not None:
        if config.watermark not in read.batch.schema:
            read.batch.close()
            raise SourceError(f"the watermark column '{config.watermark}' is not in the data")
        read.batch.drop_through(config.watermark, watermark)
        read.lineage["since"] = watermark
    return read


def _retrying(config: SourceConfig, attempt: Callable[[], Read]) -> Read:
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    transient: tuple[type[BaseException], ...] = (*_TRANSIENT, _TransientIO)
    backoff = config.retry.backoff.total_seconds()
    retrying = Retrying(
        stop=stop_after_attempt(config.retry.attempts),
        wait=wait_exponential(multiplier=backoff, max=backoff * 30),
        retry=retry_if_exception_type(transient),
        reraise=True,
    )
    try:
        return retrying(attempt)
    except transient as error:
        raise SourceError(
            f"the source kept failing after {config.retry.attempts} attempts ({_first_line(error)})"
        ) from None


class _TransientIO(OSError):
    """An I/O error worth retrying (the file system or network hiccupped)."""


def _read_once(
    root: Path,
    config: SourceConfig,
    seen: set[tuple[str, str]],
    watermark: str | None,
    storage: Mapping[str, Mapping[str, Any]] | None = None,
) -> Read:
    if config.kind in ("csv", "parquet"):
        return _read_files(root, config, seen, storage)
    if config.kind == "sql":
        return _read_sql(config)
    return _read_callable(root, config, watermark)


# -- files ------------------------------------------------------------------------------


def list_files(root: Path, pattern: str) -> list[Path]:
    """Files a ``path:`` names: one file, every file in a folder, or a glob; sorted."""
    base = Path(pattern) if Path(pattern).is_absolute() else root / pattern
    if base.is_file():
        return [base]
    if base.is_dir():
        return sorted(p for p in base.iterdir() if p.is_file() and not p.name.startswith("."))
    anchor = Path(base.anchor)
    return sorted(p for p in anchor.glob(str(base.relative_to(anchor))) if p.is_file())


def file_lineage(path: Path, shown: str) -> dict[str, Any]:
    """Where a file came from (``shown``: its project-relative path or URL) and its sha256."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return {"path": shown, "sha256": hasher.hexdigest(), "bytes": path.stat().st_size}


def _read_files(
    root: Path,
    config: SourceConfig,
    seen: set[tuple[str, str]],
    storage: Mapping[str, Mapping[str, Any]] | None = None,
) -> Read:
    pattern = config.path or ""
    if "://" not in pattern:
        files = list_files(root, pattern)
        shown = [str(f.relative_to(root) if f.is_relative_to(root) else f) for f in files]
        return _read_listed(list(zip(files, shown, strict=True)), config, seen)
    from keel.data.remote import fetch_remote

    with tempfile.TemporaryDirectory(prefix="keel-fetch-") as folder:
        return _read_listed(fetch_remote(pattern, Path(folder), storage), config, seen)


def _read_listed(
    files: list[tuple[Path, str]], config: SourceConfig, seen: set[tuple[str, str]]
) -> Read:
    if not files:
        raise SourceError(f"no files match '{config.path}'; check path: in keel.yaml")
    items = [file_lineage(path, shown) for path, shown in files]
    new = [(path, item) for (path, _), item in zip(files, items, strict=True)
           if (item["path"], item["sha256"]) not in seen]  # fmt: skip
    already = [item["path"] for item in items if (item["path"], item["sha256"]) in seen]
    if not new:
        return Read(None, {"files": []}, already)
    batch = _scan([str(path) for path, _ in new], config)
    return Read(batch, {"files": [item for _, item in new]}, already)


def _scan(paths: list[str], config: SourceConfig) -> Batch:
    import duckdb

    listed = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    if config.kind == "parquet":
        select = f"SELECT * FROM read_parquet({listed}, union_by_name = true)"
    else:
        select = f"SELECT * FROM read_csv({listed}, {csv_options(config)})"
    try:
        batch = Batch.from_sql(select)
        return batch if config.kind == "parquet" else _words_kept(batch, listed, config)
    except duckdb.IOException as error:
        raise _TransientIO(_first_line(error)) from None
    except duckdb.Error as error:
        raise SourceError(_explain(paths, config, error)) from None


def _words_kept(batch: Batch, listed: str, config: SourceConfig) -> Batch:
    """The batch, re-read with yes/no-style columns as text when any were sniffed as bool.

    DuckDB reads Yes/No, Y/N and T/F as booleans; a team's labels and clients use the words
    in the file, so only a column written true/false (or 1/0) is kept as a boolean.
    """
    flags = [name for name, kind in batch.schema.items() if kind == "BOOLEAN"]
    if not flags:
        return batch
    raw = f"read_csv({listed}, {csv_options(config)}, all_varchar = true)"
    words = [name for name, has in zip(flags, _has_words(batch, raw, flags), strict=True) if has]
    if not words:
        return batch
    batch.close()
    types = ", ".join(f"'{n.replace(chr(39), chr(39) * 2)}': 'VARCHAR'" for n in words)
    options = f"{csv_options(config)}, types = {{{types}}}"
    return Batch.from_sql(f"SELECT * FROM read_csv({listed}, {options})")


def _has_words(batch: Batch, raw: str, names: list[str]) -> list[bool]:
    """Per column, whether the file holds a value other than true/false/1/0 (one scan)."""
    counts = ", ".join(
        f"count_if(lower(trim({quote(n)})) NOT IN ('true', 'false', '1', '0'))" for n in names
    )
    found = batch.con.execute(f"SELECT {counts} FROM {raw}").fetchone() or ()
    return [bool(count) for count in found]


def csv_options(config: SourceConfig) -> str:
    """DuckDB read_csv options for a source: every file by column name, typed on all rows."""
    options = ["union_by_name = true", "sample_size = -1", "header = true"]
    if config.delimiter is not None:
        options.append(f"delim = '{config.delimiter.replace(chr(39), chr(39) * 2)}'")
    if config.encoding is not None:
        options.append(f"encoding = '{config.encoding}'")
    return ", ".join(options)


def _explain(paths: list[str], config: SourceConfig, error: Exception) -> str:
    text = str(error)
    where = paths[0] if len(paths) == 1 else f"{len(paths)} files ({paths[0]}, ...)"
    if "unicode" in text.lower() or "utf-8" in text.lower():
        return f"{where} is not valid UTF-8; set encoding: latin-1 (or utf-16) on the source"
    if config.kind == "parquet":
        return f"{where} is not a readable Parquet file ({_first_line(error)}); it may be truncated"
    return f"cannot read {where} as CSV ({_first_line(error)}); check delimiter: and encoding:"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


# -- SQL and callables ------------------------------------------------------------------


def _read_sql(config: SourceConfig) -> Read:
    import pandas as pd
    import sqlalchemy as sa

    url = sa.make_url(config.url or "")
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)
    try:
        connection = _connect(engine)
        with connection:
            result = connection.execute(sa.text(config.query or ""))
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    except sa.exc.DBAPIError as error:
        if error.connection_invalidated:
            raise ConnectionError(_first_line(error)) from None
        raise SourceError(f"the source query failed: {_first_line(error.orig or error)}") from None
    finally:
        engine.dispose()
    return Read(_frame_batch(frame), {"query": config.query, "url": url.render_as_string()})


def _connect(engine: Any) -> Any:
    """A connection; failing to connect at all is transient (the server may be restarting)."""
    import sqlalchemy as sa

    try:
        return engine.connect()
    except sa.exc.OperationalError as error:
        raise ConnectionError(_first_line(error.orig or error)) from None


def _read_callable(root: Path, config: SourceConfig, watermark: str | None) -> Read:
    """Call the loader: with ``since=<last watermark>`` if it takes ``since``, else bare."""
    function = load_callable(root, config.callable or "")
    takes_since = "since" in inspect.signature(function).parameters
    frame = function(since=watermark) if takes_since else function()
    return Read(_frame_batch(frame), {"callable": config.callable})


def _frame_batch(frame: Any) -> Batch | None:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise SourceError(f"the source returned {type(frame).__name__}, not a pandas DataFrame")
    if len(frame.columns) == 0:
        return None
    import duckdb

    try:
        return Batch.from_frame(frame)
    except duckdb.Error as error:
        raise SourceError(
            f"the source's DataFrame cannot be stored: {_first_line(error)}"
        ) from None


def load_callable(root: Path, spec: str) -> Callable[..., Any]:
    """``module:function`` or ``file.py:function`` (relative to the project)."""
    module_name, _, name = spec.partition(":")
    if not name:
        raise SourceError(f"callable '{spec}' must look like module:function or file.py:function")
    module = _module(root, module_name)
    function = getattr(module, name, None)
    if not callable(function):
        raise SourceError(f"'{module_name}' has no function '{name}'")
    required = [
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.default is p.empty and p.name != "since"
    ]
    if required:
        raise SourceError(
            f"'{spec}' must take no arguments (or only since=) and return a pandas DataFrame"
        )
    return function  # type: ignore[no-any-return]


def _module(root: Path, name: str) -> Any:
    path = root / name
    if name.endswith(".py"):
        if not path.is_file():
            raise SourceError(f"{path} does not exist; fix callable: in keel.yaml")
        spec = importlib.util.spec_from_file_location(f"keel_source_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise SourceError(f"cannot import '{name}' ({error}); fix callable: in keel.yaml") from None
