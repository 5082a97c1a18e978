"""What a pilot declares it needs, read from each kind of requirements file.

Pure functions over text. Each returns ``Declared`` entries: the package's canonical
name, whether it carries a version bound, and the line it was declared on (found by
searching the text when the format's parser does not keep lines).
"""

from __future__ import annotations

import configparser
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from keel.audit._pilot import TextFile

__all__ = ["PARSE_ERRORS", "Declared", "declared"]

# What a malformed requirements file raises, from any of the formats' parsers.
PARSE_ERRORS = (ValueError, TypeError, AttributeError, configparser.Error, yaml.YAMLError)

_CONDA_SPEC = re.compile(r"^\s*(?:[\w.-]+::)?([A-Za-z0-9][\w.-]*)\s*(.*)$")
_NOT_PACKAGES = {"python", "pip"}


@dataclass(frozen=True)
class Declared:
    name: str
    pinned: bool
    file: str
    line: int | None


def declared(req: TextFile) -> list[Declared]:
    """Every package ``req`` declares; one of ``PARSE_ERRORS`` when it does not parse."""
    name = PurePosixPath(req.file).name
    parse = _PARSERS.get(name, _requirements_txt)
    return [
        Declared(canonicalize_name(pkg), pinned, req.file, _line_of(req.text, pkg, line))
        for pkg, pinned, line in parse(req.text)
        if pkg.lower() not in _NOT_PACKAGES
    ]


Entry = tuple[str, bool, int | None]


def _requirements_txt(text: str) -> Iterator[Entry]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            entry = _pep508(line)
            if entry is not None:
                yield entry[0], entry[1], number


def _pep508(spec: str) -> tuple[str, bool] | None:
    try:
        requirement = Requirement(spec)
    except InvalidRequirement:
        return None  # a bare URL or path: nothing to check a version against
    return requirement.name, bool(requirement.specifier) or requirement.url is not None


def _pep508_all(specs: Any) -> Iterator[Entry]:
    for spec in specs if isinstance(specs, list) else []:
        entry = _pep508(spec) if isinstance(spec, str) else None
        if entry is not None:
            yield entry[0], entry[1], None


def _pyproject(text: str) -> Iterator[Entry]:
    data = tomllib.loads(text)
    project = data.get("project", {})
    yield from _pep508_all(project.get("dependencies"))
    for group in project.get("optional-dependencies", {}).values():
        yield from _pep508_all(group)
    poetry = data.get("tool", {}).get("poetry", {})
    yield from _table(poetry.get("dependencies", {}))
    for group in poetry.get("group", {}).values():
        yield from _table(group.get("dependencies", {}))


def _pipfile(text: str) -> Iterator[Entry]:
    data = tomllib.loads(text)
    yield from _table(data.get("packages", {}))
    yield from _table(data.get("dev-packages", {}))


def _table(table: dict[str, Any]) -> Iterator[Entry]:
    """Poetry / Pipfile tables: name = "^1.2" | "*" | {version = "...", git = "..."}."""
    for name, spec in table.items():
        if isinstance(spec, dict):
            source = any(key in spec for key in ("git", "path", "url"))
            pinned = spec.get("version", "*") != "*" or source
        else:
            pinned = str(spec).strip() not in ("", "*")
        yield name, pinned, None


def _setup_cfg(text: str) -> Iterator[Entry]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    lines = parser.get("options", "install_requires", fallback="").splitlines()
    yield from _pep508_all([line.strip() for line in lines if line.strip()])


def _environment_yml(text: str) -> Iterator[Entry]:
    data = yaml.safe_load(text) or {}
    for item in data.get("dependencies", []) if isinstance(data, dict) else []:
        if isinstance(item, dict):
            yield from _pep508_all(item.get("pip"))
        elif isinstance(item, str) and (match := _CONDA_SPEC.match(item)):
            yield match.group(1), bool(match.group(2).strip()), None


def _line_of(text: str, name: str, known: int | None) -> int | None:
    if known is not None:
        return known
    pattern = re.compile(rf"(?:^|[\s\"':]){re.escape(name)}(?:$|[\s\"'=<>~!^\[;:])", re.I)
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None


_PARSERS = {
    "pyproject.toml": _pyproject,
    "Pipfile": _pipfile,
    "setup.cfg": _setup_cfg,
    "environment.yml": _environment_yml,
    "environment.yaml": _environment_yml,
}
