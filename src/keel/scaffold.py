"""``keel init``: lay out a working example project in a folder.

Two processes initialising one folder at once are serialised by a lock file; the
keel.yaml is written last and atomically, so a folder either is a complete project or
is not one at all.
"""

from __future__ import annotations

import calendar
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from keel.config import CONFIG_FILE
from keel.errors import ProjectError

if TYPE_CHECKING:
    from keel.data.batch import Batch
    from keel.data.sources import Read
    from keel.tableplan import Declared, Plan

__all__ = [
    "EXAMPLE_MONTHS",
    "FromTable",
    "Scaffold",
    "example_start",
    "init_from_table",
    "init_project",
]

_TEMPLATE = ("keel.yaml", "features.py")
EXAMPLE_MONTHS = 6
_GITIGNORE = ".keel/\n"


@dataclass(frozen=True)
class Scaffold:
    root: Path
    files: tuple[str, ...]
    customers: int
    events: int
    labels: int

    def to_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "files": list(self.files),
            "customers": self.customers,
            "events": self.events,
            "labels": self.labels,
        }


def example_start(today: date | None = None) -> date:
    """Six months before ``today``, on the same day of the month: the example data ends today.

    Served features look back 30 days from now, over the same span of the data as the
    features the model was trained on. On the 29th to the 31st the day may not exist six
    months back; the month's last day is taken and the data ends up to three days early.
    """
    today = today or datetime.now(UTC).date()
    year, month = divmod(today.year * 12 + today.month - 1 - EXAMPLE_MONTHS, 12)
    return date(year, month + 1, min(today.day, calendar.monthrange(year, month + 1)[1]))


def init_project(folder: Path, *, rows: int = 2000, seed: int = 42) -> Scaffold:
    """Create keel.yaml, features.py and data covering the last six months in ``folder``."""
    folder = folder.resolve()
    _make_folder(folder)
    try:
        with FileLock(str(folder / ".keel-init.lock"), timeout=120):
            return _init_locked(folder, rows, seed)
    except Timeout:
        raise ProjectError(f"another `keel init` is still running in {folder}") from None
    finally:
        _remove_quietly(folder / ".keel-init.lock")


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass  # proves the folder is writable before any work is done
    except OSError as error:
        raise ProjectError(
            f"cannot write to {folder} ({error.strerror}); choose a writable folder"
        ) from None


def _init_locked(folder: Path, rows: int, seed: int) -> Scaffold:
    from keel.examples import generate

    if (folder / CONFIG_FILE).exists():
        raise ProjectError(f"{folder} is already a Keel project (it has a {CONFIG_FILE})")
    data = generate(folder, rows=rows, seed=seed, start=example_start(), months=EXAMPLE_MONTHS)
    _write_text(folder / "features.py", _template("features.py"))
    if not (folder / ".gitignore").exists():
        _write_text(folder / ".gitignore", _GITIGNORE)
    _write_text(folder / CONFIG_FILE, _template("keel.yaml"))
    files = (*_TEMPLATE, *(str(f) for f in data.files))
    return Scaffold(folder, files, data.customers, data.events, data.labels)


def _template(name: str) -> str:
    return (resources.files("keel.examples") / "template" / name).read_text(encoding="utf-8")


def _write_text(path: Path, text: str) -> None:
    """Write atomically: readers see the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keel-", suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


# -- a project around a team's own table -------------------------------------------------


@dataclass(frozen=True)
class FromTable:
    """A project made around a table: where, from what, and what was left out and why."""

    root: Path
    files: tuple[str, ...]
    source: str
    rows: int
    task: str
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "root": str(self.root), "files": list(self.files),
                "notes": list(self.notes)}  # fmt: skip


_HEADER = """\
# Made by `keel init --from {table}`: every check and setting below was inferred from the
# table. Review them. A range or an allowed-list only warns (severity: warn); the key must
# be unique and present; max_null_rate leaves room above the rate the table showed.
"""


def init_from_table(
    folder: Path,
    table: str,
    *,
    target: str,
    time: str | None = None,
    keys: Sequence[str] = (),
    positive: str | None = None,
    query: str | None = None,
    new_categories: str = "warn",
) -> FromTable:
    """Write a project in the new or empty ``folder`` with one source holding ``table``."""
    from keel.tableplan import Declared

    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()):
        raise ProjectError(f"{folder} is not empty; choose a new or empty folder for the project")
    location, original = _location(table, query)
    name = _source_name(original)
    declared = Declared(folder.name, name, location, target, time, tuple(keys), positive)
    plan, rows = _plan(declared, original, new_categories)
    _make_folder(folder)
    files = [CONFIG_FILE, ".gitignore"]
    if original is not None:
        (folder / "data").mkdir(exist_ok=True)
        shutil.copyfile(original, folder / location["path"])
        files.append(location["path"])
    _write_text(folder / ".gitignore", _GITIGNORE)
    notes = "".join(f"# note: {note}\n" for note in plan.notes)
    _write_text(folder / CONFIG_FILE, _HEADER.format(table=table) + notes + _yaml(plan.config))
    return FromTable(folder, tuple(files), name, rows, plan.task, plan.notes)


def _location(table: str, query: str | None) -> tuple[dict[str, str], Path | None]:
    """The source's kind and location in the project, and the file to copy there."""
    if "://" in table:
        if query is None:
            raise ProjectError(f"{table} is a database URL; pass --query 'SELECT ...' as well")
        return {"kind": "sql", "url": table, "query": query}, None
    path = Path(table).expanduser().resolve()
    if not path.is_file():
        raise ProjectError(f"{table} is not a file; pass a CSV or Parquet file, or a SQL URL")
    kind = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    return {"kind": kind, "path": f"data/{path.name}"}, path


def _source_name(original: Path | None) -> str:
    stem = re.sub(r"[^\w-]", "_", original.stem) if original is not None else "table"
    return stem if re.match(r"^[A-Za-z_]", stem) else f"t_{stem}"


def _plan(declared: Declared, original: Path | None, new_categories: str) -> tuple[Plan, int]:
    from keel.data.batch import TABLE, quote
    from keel.data.infer import category_policy, csv_texts, infer
    from keel.data.sources import read_source
    from keel.schema import SourceConfig
    from keel.tableplan import check_declared, plan_project

    location = dict(declared.location)
    if original is not None:
        location["path"] = str(original)
    config = SourceConfig.model_validate({**location, "retry": {"attempts": 1}})
    read = _read(lambda: read_source(Path.cwd(), config, set(), None), declared.location)
    with read as batch:
        check_declared(declared, list(batch.schema))
        texts = None
        if declared.time is not None and location["kind"] == "csv" and original is not None:
            texts = csv_texts(original, declared.time)
        found = infer(batch, key=declared.keys, time=declared.time,
                      time_texts=texts, required=[declared.target, *declared.keys],
                      new_categories=category_policy(new_categories))  # fmt: skip
        target = batch.con.execute(f"SELECT {quote(declared.target)} FROM {TABLE}").df()
        cardinality = _text_cardinality(batch)
        rows = batch.rows
    plan = plan_project(declared, found.checks, target[declared.target], cardinality,
                        found.empty)  # fmt: skip
    _validate(plan)
    return replace(plan, notes=found.notes + plan.notes), rows


def _read(read: Callable[[], Read], location: dict[str, str]) -> Batch:
    """The table as a batch; a file that cannot be read is one sentence saying so."""
    from keel.errors import SourceError

    shown = location.get("path", location.get("url", ""))
    try:
        batch = read().batch
    except SourceError as error:
        if location["kind"] == "sql":
            raise
        what = "a CSV file with a header row" if location["kind"] == "csv" else "a Parquet file"
        raise SourceError(f"{str(error).split('; ')[0]}; pass {what}") from None
    if batch is None:
        raise SourceError(f"{Path(shown).name or 'the query'} holds no columns; pass a table")
    return batch


def _text_cardinality(batch: Batch) -> dict[str, int]:
    from keel.data.batch import TABLE, quote

    text = [name for name, kind in batch.schema.items() if kind == "VARCHAR"]
    if not text:
        return {}
    counts = ", ".join(f"count(DISTINCT {quote(name)})" for name in text)
    found = batch.con.execute(f"SELECT {counts} FROM {TABLE}").fetchone() or ()
    return {name: int(count) for name, count in zip(text, found, strict=True)}


def _validate(plan: Plan) -> None:
    """The written keel.yaml must load."""
    from keel.schema import KeelConfig

    KeelConfig.model_validate(plan.config)


def _yaml(config: dict[str, Any]) -> str:
    import yaml

    text: str = yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=100)
    return text
