"""keel.yaml before its schema: where it is, its YAML with the place of every key,
``${ENV}`` interpolation, and the metadata store URL it names.

``keel.config`` validates what this module reads against ``keel.schema``; ``keel status``
uses this module alone, so that its answer does not wait for the schema to be built. Both
share every rule here: a missing ``${VAR}`` is the same one-sentence ``ConfigError``
naming the file, the place and the key, and the store URL is resolved by ``store_url``
for every command (``keel.project.Project.store_url``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from keel.errors import ConfigError, ConfigProblem, ProjectError

__all__ = [
    "CONFIG_FILE",
    "ENV_REFERENCE",
    "STATE_DIR",
    "STORE_ENV",
    "ConfigText",
    "Loader",
    "Loc",
    "Marks",
    "Place",
    "config_path",
    "dotted",
    "find_root",
    "parse_text",
    "problem",
    "read_text",
    "store_url",
]

CONFIG_FILE = "keel.yaml"
STATE_DIR = ".keel"
STORE_ENV = "KEEL_STORE_URL"
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Loc = tuple[str | int, ...]


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that holds a keel.yaml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ProjectError(
        f"no {CONFIG_FILE} in {start} or any folder above it; run `keel init` to create a "
        "project or pass --project DIR"
    )


def config_path(path: str | Path | None = None) -> Path:
    """The keel.yaml of ``path`` (a folder or the file itself), or above the cwd."""
    where = Path(path) if path is not None else Path.cwd()
    if where.is_file():
        return where
    if path is not None and not where.exists():
        raise ProjectError(f"{where} does not exist; pass the folder that holds keel.yaml")
    return find_root(where) / CONFIG_FILE


def read_text(path: Path) -> str:
    """The text of keel.yaml at ``path``; a missing or unreadable file is one sentence."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        refused = problem(path, None, None, "no such file", "run `keel init` to create a project")
    except OSError as exc:
        refused = problem(path, None, None, f"cannot read it ({exc.strerror})")
    raise ConfigError(problems=[refused])


def store_url(root: Path, configured: str | None) -> str:
    """KEEL_STORE_URL, else ``configured`` (store: in keel.yaml), else .keel/keel.db
    (SQLite); a relative SQLite path is relative to the project ``root``."""
    url = os.environ.get(STORE_ENV) or configured
    if url is None:
        return f"sqlite:///{root / STATE_DIR / 'keel.db'}"
    return _anchor_sqlite(url, root)


def _anchor_sqlite(url: str, root: Path) -> str:
    """Relative SQLite paths are relative to the project, not to the cwd."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    path = Path(url.removeprefix(prefix))
    return url if path.is_absolute() else f"{prefix}{root / path}"


@dataclass(frozen=True)
class ConfigText:
    """keel.yaml as plain data: as written (``raw``), with ``${VAR}`` replaced (``data``),
    the place of each key and value, and the template of each value that named a variable."""

    raw: dict[str, Any]
    data: dict[str, Any]
    marks: Marks
    secrets: dict[Loc, str]


def parse_text(text: str, path: Path) -> ConfigText:
    """keel.yaml text as plain data: YAML 1.2 booleans, keys that are names and appear
    once, ``${VAR}`` replaced from the environment; ``path`` names the file in errors."""
    node = _compose(text, path)
    marks = Marks.of(node)
    raw = yaml.load(text, Loader=Loader) if node is not None else None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        sentence = "the file must be a mapping of sections (name:, store:, ...)"
        raise ConfigError(problems=[problem(path, marks.place(()), None, sentence)])
    secrets: dict[Loc, str] = {}
    data = _interpolate(raw, (), secrets, path, marks)
    return ConfigText(raw, data, marks, secrets)


# -- YAML with line numbers -------------------------------------------------------------


class Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so keys like ``on:`` stay strings."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _compose(text: str, path: Path) -> yaml.Node | None:
    try:
        node = yaml.compose(text, Loader=Loader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(problems=[_malformed(exc, path)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(problems=[problem(path, None, None, f"malformed YAML, {exc}")]) from None
    if node is not None:
        _reject_duplicate_keys(node, path)
    return node


def _malformed(exc: yaml.MarkedYAMLError, path: Path) -> ConfigProblem:
    """PyYAML's complaint at the place it names, said plainly where it is a common one."""
    complaint, context = exc.problem or "", exc.context or ""
    mark = exc.context_mark or exc.problem_mark
    for (in_context, in_complaint, use_problem_mark), sentence in _YAML_PROBLEMS.items():
        if in_context in context and in_complaint in complaint:
            mark = exc.problem_mark if use_problem_mark else mark
            said, hint = sentence.split("; ", 1)
            return problem(path, _place(mark), None, f"malformed YAML, {said}", hint)
    said = f"malformed YAML, {context + ': ' if context else ''}{complaint}"
    return problem(path, _place(mark), None, said)


_YAML_PROBLEMS = {  # (context, problem, point at the problem): a plain sentence
    ("", "'\\t'", True): "a tab where YAML allows only spaces; indent with spaces",
    ("flow sequence", "expected ',' or ']'", False): "the list opened here with [ never ends; "
    "close it with ]",
    ("flow mapping", "expected ',' or '}'", False): "the mapping opened here with { never ends; "
    "close it with }",
    ("quoted scalar", "", False): "the quote opened here never ends; close it",
    ("", "mapping values are not allowed here", True): "a ': ' where no key can start; check "
    "this line's indentation, or quote a value that holds ': '",
    ("block mapping", "expected <block end>", True): "this line is indented differently from "
    "the keys above it; line it up with its siblings",
}


def _place(mark: yaml.Mark | None) -> Place | None:
    return (mark.line + 1, mark.column + 1) if mark is not None else None


def _reject_duplicate_keys(node: yaml.Node, path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                sentence = "a key must be a name, not a list or mapping"
                raise ConfigError(problems=[problem(path, _place(key.start_mark), None, sentence)])
            if key.value in seen:
                twice = problem(
                    path,
                    _place(key.start_mark),
                    None,
                    f"key '{key.value}' appears twice",
                    "keep one",
                )
                raise ConfigError(problems=[twice])
            seen.add(key.value)
            _reject_duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, path)


Place = tuple[int, int]  # line and column, both counted from 1


@dataclass
class Marks:
    """Where each key and each value of the file starts."""

    keys: dict[Loc, Place] = field(default_factory=dict)
    values: dict[Loc, Place] = field(default_factory=dict)

    @classmethod
    def of(cls, node: yaml.Node | None) -> Marks:
        marks = cls()
        if node is not None:
            marks._walk(node, ())
        return marks

    def _walk(self, node: yaml.Node, loc: Loc) -> None:
        self.values[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.keys[(*loc, key.value)] = (key.start_mark.line + 1, key.start_mark.column + 1)
                self._walk(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*loc, index))

    def place(self, loc: Loc, key: bool = False) -> Place:
        """The key's place (``key=True``) or the value's; else the nearest enclosing value's."""
        if key and loc in self.keys:
            return self.keys[loc]
        while loc not in self.values and loc:
            loc = loc[:-1]
        return self.values.get(loc, (1, 1))


def problem(
    path: Path, place: Place | None, key: Loc | None, message: str, hint: str | None = None
) -> ConfigProblem:
    """One problem of the file at ``path``: at ``place`` (None: the whole file), about the
    ``key`` (None: the YAML itself), what is wrong and what to do."""
    line, column = place if place is not None else (None, None)
    return ConfigProblem(
        str(path), line, column, None if key is None else dotted(key), message, hint
    )


# -- ${ENV} interpolation ---------------------------------------------------------------


def _interpolate(value: Any, loc: Loc, secrets: dict[Loc, str], path: Path, marks: Marks) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, k), secrets, path, marks) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), secrets, path, marks) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    secrets[loc] = value
    return ENV_REFERENCE.sub(lambda m: _env(m.group(1), loc, path, marks), value)


def _env(name: str, loc: Loc, path: Path, marks: Marks) -> str:
    if name not in os.environ:
        said = f"uses ${{{name}}} but the environment variable {name} is not set"
        unset = problem(path, marks.place(loc), loc, said, "export it or remove the reference")
        raise ConfigError(problems=[unset])
    return os.environ[name]


def dotted(loc: Loc) -> str:
    """``alerts.rules[1].when``: keys joined by dots, list items by their index."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return text or "the top level"
