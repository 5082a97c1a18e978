"""``keel init``: lay out a working example project in a folder.

Two processes initialising one folder at once are serialised by a lock file; the
keel.yaml is written last and atomically, so a folder either is a complete project or
is not one at all.
"""

from __future__ import annotations

import calendar
import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path

from filelock import FileLock, Timeout

from keel.config import CONFIG_FILE
from keel.errors import ProjectError

__all__ = ["EXAMPLE_MONTHS", "Scaffold", "example_start", "init_project"]

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
