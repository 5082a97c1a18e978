"""keel.yaml: its schema, loading with line-precise errors, and ``${ENV}`` interpolation.

Every section is optional, so a team can adopt one layer at a time. The schema lives in
``keel.schema``; this module turns a file into a validated ``KeelConfig`` or a
``ConfigError`` that names the file, the line and the key, and suggests a fix.
"""

from __future__ import annotations

import difflib
import glob
import os
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from keel.errors import ConfigError
from keel.schema import KeelConfig

__all__ = ["CONFIG_FILE", "LoadedConfig", "load_config", "mask_url", "parse_config"]

CONFIG_FILE = "keel.yaml"
MASK = "****"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config with where it came from and which values are secrets."""

    config: KeelConfig
    path: Path
    secrets: dict[Loc, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def root(self) -> Path:
        return self.path.parent

    def resolved(self) -> dict[str, Any]:
        """The config as plain data with defaults filled in and secrets masked."""
        data: dict[str, Any] = self.config.model_dump(mode="json", exclude_none=True)
        for loc, template in self.secrets.items():
            _set_in(data, loc, _ENV.sub(MASK, template))
        masked: dict[str, Any] = _mask_urls(data)
        return masked


def load_config(path: Path) -> LoadedConfig:
    """Read, interpolate and validate one keel.yaml."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; run `keel init` to create a project") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> LoadedConfig:
    """Validate keel.yaml text; ``path`` names the file in errors and anchors relative paths."""
    node = _compose(text, path)
    lines = dict(_walk_lines(node)) if node is not None else {}
    raw = yaml.load(text, Loader=_Loader) if node is not None else None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: the file must be a mapping of sections (name:, store:, ...)")
    secrets: dict[Loc, str] = {}
    data = _interpolate(raw, (), secrets, path, lines)
    try:
        config = KeelConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path, lines)) from None
    _check_files(config, path, lines)
    _check_training_source(config, path, lines)
    _check_storage_secrets(config, secrets, path, lines)
    return LoadedConfig(config, path, secrets, tuple(_warnings(config, path.parent)))


def mask_url(url: str) -> str:
    """Hide the password in a URL such as ``postgresql://user:secret@host/db``."""
    return _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", url)


# -- YAML with line numbers -------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so keys like ``on:`` stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _compose(text: str, path: Path) -> yaml.Node | None:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.context_mark or exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        context = f"{exc.context}: " if exc.context else ""
        raise ConfigError(f"{path}{line}: malformed YAML, {context}{exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML, {exc}") from None
    if node is not None:
        _reject_duplicate_keys(node, path)
    return node


def _reject_duplicate_keys(node: yaml.Node, path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                line = key.start_mark.line + 1
                raise ConfigError(f"{path}:{line}: key '{key.value}' appears twice; keep one")
            seen.add(key.value)
            _reject_duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, path)


def _walk_lines(node: yaml.Node, loc: Loc = ()) -> Iterator[tuple[Loc, int]]:
    yield loc, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield (*loc, key.value), key.start_mark.line + 1
            for sub, line in _walk_lines(value, (*loc, key.value)):
                if sub != (*loc, key.value):
                    yield sub, line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk_lines(item, (*loc, index))


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int:
    while loc not in lines and loc:
        loc = loc[:-1]
    return lines.get(loc, 1)


def _check_storage_secrets(
    config: KeelConfig, secrets: dict[Loc, str], path: Path, lines: dict[Loc, int]
) -> None:
    """An object store's secret written into keel.yaml would be committed with it."""
    s3 = config.storage.s3 if config.storage is not None else None
    for name in ("secret", "token"):
        loc: Loc = ("storage", "s3", name)
        if s3 is not None and getattr(s3, name) is not None and loc not in secrets:
            raise ConfigError(
                f"{path}:{_line_of(loc, lines)}: {_dotted(loc)} is written in the file; "
                f"write ${{VAR}} and export VAR instead, so the secret stays out of keel.yaml"
            )


# -- ${ENV} interpolation ---------------------------------------------------------------


def _interpolate(
    value: Any, loc: Loc, secrets: dict[Loc, str], path: Path, lines: dict[Loc, int]
) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, k), secrets, path, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), secrets, path, lines) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    secrets[loc] = value
    return _ENV.sub(lambda m: _env(m.group(1), loc, path, lines), value)


def _env(name: str, loc: Loc, path: Path, lines: dict[Loc, int]) -> str:
    if name not in os.environ:
        raise ConfigError(
            f"{path}:{_line_of(loc, lines)}: {_dotted(loc)} uses ${{{name}}} but the environment "
            f"variable {name} is not set; export it or remove the reference"
        )
    return os.environ[name]


# -- explaining validation errors -------------------------------------------------------


def _explain(exc: ValidationError, path: Path, lines: dict[Loc, int]) -> str:
    problems = sorted(
        (_line_of(_clean_loc(err["loc"]), lines), _explain_one(err, path, lines))
        for err in exc.errors()
    )
    return "\n".join(problem for _, problem in problems)


def _explain_one(err: Any, path: Path, lines: dict[Loc, int]) -> str:
    loc = _clean_loc(err["loc"])
    where = f"{path}:{_line_of(loc, lines)}"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key '{loc[-1]}'{_in(loc[:-1])}{_suggest(loc)}"
    if err["type"] == "missing":
        return f"{where}: {_dotted(loc)} is required"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {_dotted(loc)}: {message}"


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    # pydantic adds union member and tag names (e.g. 'function-after[...]') to locations
    return tuple(p for p in loc if isinstance(p, int) or not _is_pydantic_tag(p))


def _is_pydantic_tag(part: str) -> bool:
    return "[" in part or part in {"str", "int", "float", "bool", "list", "dict", "tuple"}


def _in(loc: Loc) -> str:
    return f" in {_dotted(loc)}" if loc else ""


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc) or "the top level"


def _suggest(loc: Loc) -> str:
    allowed = _fields_at(KeelConfig, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; expected one of: {', '.join(allowed)}" if allowed else ""


def _fields_at(model: Any, loc: Loc) -> list[str]:
    node: Any = model
    for part in loc:
        node = _step(node, part)
        if node is None:
            return []
    model_class = _model_in(node)
    return list(model_class.model_fields) if model_class is not None else []


def _step(node: Any, part: str | int) -> Any:
    model_class = _model_in(node)
    if model_class is not None and isinstance(part, str) and part in model_class.model_fields:
        return model_class.model_fields[part].annotation
    origin = typing.get_origin(node)
    args = typing.get_args(node)
    if origin is dict and args:
        return args[1]
    if origin in (list, tuple) and args:
        return args[0]
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            stepped = _step(arg, part)
            if stepped is not None:
                return stepped
    return None


def _model_in(node: Any) -> type[BaseModel] | None:
    if isinstance(node, type) and issubclass(node, BaseModel):
        return node
    for arg in typing.get_args(node):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# -- files the config refers to ---------------------------------------------------------


def _check_files(config: KeelConfig, path: Path, lines: dict[Loc, int]) -> None:
    for loc, ref in config.referenced_files():
        if not (path.parent / ref).exists():
            raise ConfigError(
                f"{path}:{_line_of(loc, lines)}: {_dotted(loc)} refers to '{ref}', "
                f"which does not exist (paths are relative to {path.parent})"
            )


def _check_training_source(config: KeelConfig, path: Path, lines: dict[Loc, int]) -> None:
    named = None if config.training is None else config.training.source_named(config.training.data)
    if named is None or named[0] in config.sources:
        return
    known = ", ".join(config.sources) or "none are declared"
    raise ConfigError(
        f"{path}:{_line_of(('training', 'data'), lines)}: training.data names '{named[0]}', "
        f"which is not a source in keel.yaml (sources: {known}); name a source, a CSV/Parquet "
        "file, module:function or features"
    )


def _warnings(config: KeelConfig, root: Path) -> Iterator[str]:
    for name, source in (config.sources or {}).items():
        pattern = source.path
        if pattern is None or "://" in pattern:
            continue
        if not glob.glob(str(root / pattern), recursive=True):
            yield f"source '{name}': nothing matches {pattern} yet"
    training = config.training
    if training is not None and training.data == "latest" and len(config.sources) > 1:
        yield (
            f"training.data is 'latest' but there are {len(config.sources)} sources "
            f"({', '.join(config.sources)}); name the one to train on"
        )


# -- helpers for masking ----------------------------------------------------------------


def _set_in(data: Any, loc: Loc, value: Any) -> None:
    try:
        for part in loc[:-1]:
            data = data[part]
        if loc[-1] in data if isinstance(data, dict) else isinstance(data, list):
            data[loc[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass  # the value was dropped by the schema (e.g. None); nothing to mask


def _mask_urls(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _mask_urls(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_mask_urls(v) for v in data]
    return mask_url(data) if isinstance(data, str) else data
