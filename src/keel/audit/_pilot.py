"""Reading a pilot from disk: the only I/O in the audit.

Everything the rules need is loaded here into a frozen ``Pilot``: parsed code units (a
Python file, or one notebook code cell), the text of the requirements files, every file
name seen (for layout rules), and a finding for each file that could not be read. A bad
file never stops the audit: it becomes a finding and the walk carries on.
"""

from __future__ import annotations

import ast
import codecs
import os
import stat
import warnings
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cached_property
from pathlib import Path, PurePosixPath

from keel.audit._kinds import finding
from keel.audit._model import Finding
from keel.audit._notebook import code_cells, strip_magics
from keel.errors import AuditError

__all__ = ["MAX_BYTES", "CodeUnit", "Pilot", "TextFile", "by_file", "is_requirements", "load_pilot"]

MAX_BYTES = 5 * 1024 * 1024
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", "env"}
_REQUIREMENTS = ("pyproject.toml", "setup.cfg", "environment.yml", "environment.yaml", "Pipfile")


@dataclass(frozen=True)
class CodeUnit:
    """Parsed Python: a whole .py file (``cell`` None) or one notebook code cell."""

    file: str
    cell: int | None
    tree: ast.Module

    @cached_property
    def nodes(self) -> tuple[ast.AST, ...]:
        """Every node of the tree in source order, walked once and shared by all the rules.

        Source order makes "the first place" a rule reports the first place in the file.
        """
        return tuple(sorted(ast.walk(self.tree), key=_position))

    @property
    def in_notebook(self) -> bool:
        return self.file.endswith(".ipynb")


@dataclass(frozen=True)
class TextFile:
    """A requirements file's text, by its path relative to the pilot."""

    file: str
    text: str


@dataclass(frozen=True)
class Pilot:
    """What the rules see: ``paths`` lists every file found (read or not, for layout
    rules), ``problems`` the files that could not be read. ``single_file`` is set when
    one file was audited alone, so rules about the whole pilot's layout stay quiet."""

    root: str
    paths: tuple[str, ...]
    code: tuple[CodeUnit, ...]
    requirements: tuple[TextFile, ...]
    problems: tuple[Finding, ...]
    single_file: bool = False

    @property
    def files(self) -> tuple[str, ...]:
        """The files that were read: code and requirements."""
        read = {unit.file for unit in self.code} | {req.file for req in self.requirements}
        return tuple(sorted(read))


def _position(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)


def by_file(units: tuple[CodeUnit, ...]) -> dict[str, list[CodeUnit]]:
    """Code units grouped by file: a notebook's cells together, in order."""
    files: dict[str, list[CodeUnit]] = {}
    for unit in units:
        files.setdefault(unit.file, []).append(unit)
    return files


def is_requirements(name: str) -> bool:
    return name in _REQUIREMENTS or fnmatch(name, "requirements*.txt")


def load_pilot(path: Path, max_bytes: int = MAX_BYTES) -> Pilot:
    """Read every Python file, notebook and requirements file under ``path``."""
    root, paths, problems = _list(path)
    loaded = [item for rel in paths if _audited(rel) for item in _load(root, rel, max_bytes)]
    return Pilot(
        root=str(path),
        paths=tuple(paths),
        code=tuple(item for item in loaded if isinstance(item, CodeUnit)),
        requirements=tuple(item for item in loaded if isinstance(item, TextFile)),
        problems=(*problems, *(item for item in loaded if isinstance(item, Finding))),
        single_file=path.is_file(),
    )


def _load(root: Path, rel: str, max_bytes: int) -> list[CodeUnit | TextFile | Finding]:
    text = _read(root / rel, rel, max_bytes)
    if isinstance(text, Finding):
        return [text]
    if is_requirements(PurePosixPath(rel).name):
        return [TextFile(rel, text)]
    if rel.endswith(".ipynb"):
        return list(_parse_notebook(rel, text))
    return list(_parse(rel, None, text))


def _list(path: Path) -> tuple[Path, list[str], list[Finding]]:
    """The folder to audit, every file under it (relative), and folders it could not list."""
    if not path.exists():
        raise AuditError(f"{path} does not exist; give the folder (or file) of the pilot")
    if path.is_file():
        if not _audited(path.name):
            raise AuditError(f"{path} is not a Python file, notebook or requirements file")
        return path.parent, [path.name], []
    if not os.access(path, os.R_OK | os.X_OK):
        raise AuditError(f"cannot list {path}: permission denied")
    found: list[str] = []
    errors: list[OSError] = []
    for folder, dirs, files in os.walk(path, onerror=errors.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
        base = Path(folder).relative_to(path)
        found.extend((base / name).as_posix() for name in sorted(files))
    return path, found, [_unlisted(path, error) for error in errors]


def _unlisted(root: Path, error: OSError) -> Finding:
    rel = Path(error.filename).relative_to(root).as_posix() if error.filename else "."
    return finding("unreadable", rel, None, f"cannot list folder: {error.strerror or error}")


def _audited(path: str) -> bool:
    return path.endswith((".py", ".ipynb")) or is_requirements(PurePosixPath(path).name)


def _read(path: Path, rel: str, max_bytes: int) -> str | Finding:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return finding("unreadable", rel, None, "not a regular file; skipped")
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)  # bounded even if the file grows meanwhile
    except OSError as error:
        return finding("unreadable", rel, None, f"cannot read it: {error.strerror or error}")
    if len(data) > max_bytes:
        size = f"{max(info.st_size, len(data)) / 1024 / 1024:.1f} MB"
        return finding("too-large", rel, None, f"{size} is over the audit's limit; skipped")
    return _decode(data, rel)


def _decode(data: bytes, rel: str) -> str | Finding:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"  # what `pip freeze > requirements.txt` writes in PowerShell
    elif b"\x00" in data[:8192]:
        return finding("binary-file", rel, None, "binary content under a text file's name")
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        return finding("binary-file", rel, None, f"not {encoding} text (bad byte at {error.start})")


def _parse(rel: str, cell: int | None, source: str) -> list[CodeUnit | Finding]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. invalid escape sequences in the pilot
            return [CodeUnit(rel, cell, ast.parse(source, filename=rel))]
    except (SyntaxError, ValueError, RecursionError) as error:
        line = getattr(error, "lineno", None)
        reason = getattr(error, "msg", None) or str(error)
        return [finding("syntax-error", rel, line, f"does not parse: {reason}", cell=cell)]


def _parse_notebook(rel: str, text: str) -> list[CodeUnit | Finding]:
    try:
        cells = code_cells(text)
    except (ValueError, RecursionError) as error:
        return [finding("malformed-notebook", rel, None, f"not a readable notebook: {error}")]
    units: list[CodeUnit | Finding] = []
    for position, source in cells:
        units.extend(_parse(rel, position, strip_magics(source)))
    return units
