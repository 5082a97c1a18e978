"""keel.yaml: its schema, loading with line-precise errors, and ``${ENV}`` interpolation.

Every section is optional, so a team can adopt one layer at a time. The schema lives in
``keel.schema``; this module turns a file into a validated ``KeelConfig`` or a
``ConfigError`` with one line per problem: ``FILE:LINE:COLUMN: key.path: sentence``, the
place taken from the YAML nodes and the sentence saying what the key expects (through
``keel.schemadoc``) or which key was meant. Every problem is found at once and each is
also data (``ConfigError.problems``, for ``keel config check --json``); a config error
found later, by the code that uses a key, gets the key's place from
``LoadedConfig.locate``. Reading the file, its YAML, the places of its keys and
``${ENV}`` interpolation are ``keel.configtext``'s, shared with ``keel status``.
"""

from __future__ import annotations

import difflib
import glob
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from keel import schemadoc
from keel.configtext import (
    CONFIG_FILE,
    ENV_REFERENCE,
    Loc,
    Marks,
    Place,
    dotted,
    parse_text,
    problem,
    read_text,
)
from keel.configtext import Loader as _Loader  # noqa: F401  (tests/test_schemadoc.py)
from keel.errors import ConfigError, ConfigProblem, ExpressionError
from keel.expressions import check as check_expression
from keel.schema import KeelConfig

__all__ = ["CONFIG_FILE", "LoadedConfig", "load_config", "mask_url", "parse_config"]

MASK = "****"
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config with where it came from and which values are secrets."""

    config: KeelConfig
    path: Path
    secrets: dict[Loc, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    marks: Marks = field(default_factory=Marks)

    @property
    def root(self) -> Path:
        return self.path.parent

    def locate(self, error: ConfigError) -> ConfigError:
        """``error`` at the file, line and column of the key it names, if it names one
        that this keel.yaml writes; else ``error`` itself."""
        places = {dotted(loc): place for loc, place in self.marks.keys.items()}
        if error.problems or error.key not in places:
            return error
        line, column = places[error.key]
        found = ConfigProblem(str(self.path), line, column, error.key, error.reason, error.hint)
        return ConfigError(problems=[found])

    @contextmanager
    def locating(self) -> Iterator[None]:
        """Inside, a ``ConfigError`` naming a key of this keel.yaml gains its place."""
        try:
            yield
        except ConfigError as error:
            located = self.locate(error)
            if located is error:
                raise
            raise located from None

    def resolved(self) -> dict[str, Any]:
        """The config as plain data with defaults filled in and secrets masked."""
        data: dict[str, Any] = self.config.model_dump(mode="json", exclude_none=True)
        for loc, template in self.secrets.items():
            _set_in(data, loc, ENV_REFERENCE.sub(MASK, template))
        masked: dict[str, Any] = _mask_urls(data)
        return masked


def load_config(path: Path) -> LoadedConfig:
    """Read, interpolate and validate one keel.yaml."""
    return parse_config(read_text(path), path)


def parse_config(text: str, path: Path) -> LoadedConfig:
    """Validate keel.yaml text; ``path`` names the file in errors and anchors relative paths."""
    parsed = parse_text(text, path)
    marks = parsed.marks
    try:
        config = KeelConfig.model_validate(parsed.data)
    except ValidationError as exc:
        raise ConfigError(problems=_explain(exc, path, marks, parsed.raw)) from None  # no secrets
    problems = _in_file_order(
        [
            *_check_files(config, path, marks),
            *_check_training_source(config, path, marks),
            *_check_expressions(config, path, marks, text),
            *_check_storage_secrets(config, parsed.secrets, path, marks),
        ]
    )
    if problems:
        raise ConfigError(problems=problems)
    warnings = tuple(_warnings(config, path.parent))
    return LoadedConfig(config, path, parsed.secrets, warnings, marks)


def mask_url(url: str) -> str:
    """Hide the password in a URL such as ``postgresql://user:secret@host/db``."""
    return _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", url)


def _in_file_order(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    """Each problem once, top of the file first (a problem of the whole file leads)."""
    return sorted(set(problems), key=lambda p: (p.line or 0, p.column or 0, str(p)))


def _check_storage_secrets(
    config: KeelConfig, secrets: dict[Loc, str], path: Path, marks: Marks
) -> Iterator[ConfigProblem]:
    """An object store's secret written into keel.yaml would be committed with it."""
    s3 = config.storage.s3 if config.storage is not None else None
    for name in ("secret", "token"):
        loc: Loc = ("storage", "s3", name)
        if s3 is not None and getattr(s3, name) is not None and loc not in secrets:
            yield problem(
                path,
                marks.place(loc),
                loc,
                "the secret is written in the file",
                "write ${VAR} and export VAR instead, so it stays out of keel.yaml",
            )


# -- explaining validation errors -------------------------------------------------------


@dataclass(frozen=True)
class _Refusal:
    """One pydantic error, its location cleaned of pydantic's own parts."""

    loc: Loc
    group: Loc  # where a union began: its members' errors are one problem
    error: Any


def _explain(exc: ValidationError, path: Path, marks: Marks, data: Any) -> list[ConfigProblem]:
    """One problem per mistake, in the file's order; a union's refusals are one problem."""
    return _in_file_order(
        one for group in _grouped(exc) for one in _explain_group(group, path, marks, data)
    )


def _grouped(exc: ValidationError) -> list[list[_Refusal]]:
    groups: dict[Loc, list[_Refusal]] = {}
    for err in exc.errors():
        raw = tuple(err["loc"])
        tag = next((i for i, p in enumerate(raw) if isinstance(p, str) and _is_tag(p)), None)
        loc = _clean_loc(raw)
        group = _clean_loc(raw[:tag]) if tag is not None else loc
        key = group if tag is not None else (len(groups),)  # outside a union: on its own
        groups.setdefault(key, []).append(_Refusal(loc, group, err))
    return list(groups.values())


def _explain_group(
    group: list[_Refusal], path: Path, marks: Marks, data: Any
) -> Iterator[ConfigProblem]:
    deepest = max(len(p.loc) for p in group)
    if len(group) > 1 and deepest == len(group[0].group):
        # every member of a union refused the value itself: say what any of them takes
        loc = group[0].group
        annotation, info = schemadoc.at(loc)
        got = _got(_value_at(data, loc))
        text = f"expected {schemadoc.shape(annotation, info)}{got}"
        yield problem(path, marks.place(loc), loc, text)
        return
    for one in group:
        if len(group) == 1 or len(one.loc) == deepest:
            yield _explain_one(one, path, marks, data)


def _explain_one(one: _Refusal, path: Path, marks: Marks, data: Any) -> ConfigProblem:
    loc, err = one.loc, one.error
    kind = err["type"]
    if kind == "invalid_key" or (err["loc"][-1:] == ("[key]",) and kind == "string_type"):
        text = f"the key {loc[-1]} is a name, so quote it: '{loc[-1]}'"
        return problem(path, marks.place((*loc[:-1], str(loc[-1])), key=True), loc[:-1], text)
    if kind == "extra_forbidden" or err["loc"][-1:] == ("[key]",):
        return problem(path, marks.place(loc, key=True), loc, "unknown key", _unknown_key(loc, err))
    if kind == "missing" and loc and isinstance(loc[-1], int):
        loc = loc[:-1]  # a pair with one item: the pair is the wrong shape
        kind = "pair"
    if kind == "missing":
        annotation, info = schemadoc.at(loc)
        example = schemadoc.flow(schemadoc.example_of(annotation, info))
        hint = f"add e.g. {loc[-1]}: {example}"
        return problem(path, marks.place(loc[:-1]), loc, "required but missing", hint)
    return problem(path, marks.place(loc), loc, *_sentence(kind, loc, err, data))


def _unknown_key(loc: Loc, err: Any) -> str | None:
    """The hint for an unknown key: the closest known one, else every known one."""
    if err["type"] == "literal_error":  # a mapping whose keys are a fixed set
        choices = re.findall(r"'([^']*)'", err["ctx"]["expected"])
        close = difflib.get_close_matches(str(loc[-1]), choices, n=1, cutoff=0.6)
        return f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(choices)}"
    return _suggest(loc)


_SHAPE_ERRORS = {"model_type", "dict_type", "list_type", "tuple_type", "pair", "string_type"}
_SHAPE_ERRORS |= {"int_parsing", "int_type", "int_from_float", "float_parsing", "float_type"}
_SHAPE_ERRORS |= {"bool_parsing", "bool_type", "time_delta_type", "time_delta_parsing"}
_LIMITS = {
    "greater_than": "more than {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than": "less than {lt}",
    "less_than_equal": "at most {le}",
}


def _sentence(kind: str, loc: Loc, err: Any, data: Any) -> tuple[str, str | None]:
    """Pydantic's message for one error, said plainly with the expected shape, and a hint."""
    annotation, info = schemadoc.at(loc)
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", err["ctx"]["expected"])
        value = _value_at(data, loc)
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else None
        return f"expected one of {err['ctx']['expected']}{_got(value)}", hint
    return _plain_sentence(kind, loc, err, data, annotation, info), None


def _plain_sentence(kind: str, loc: Loc, err: Any, data: Any, annotation: Any, info: Any) -> str:
    if kind in _SHAPE_ERRORS and annotation is not None:
        return f"expected {schemadoc.shape(annotation, info)}{_got(_value_at(data, loc))}"
    if kind in _LIMITS:
        return f"must be {_LIMITS[kind].format(**err['ctx'])}{_got(_value_at(data, loc))}"
    if kind == "too_short":
        least = err["ctx"]["min_length"]
        return f"needs at least {least} item{'s' * (least != 1)}"
    if kind in ("string_too_short", "string_too_long"):
        most = err["ctx"].get("max_length")
        limit = f"at most {most}" if most is not None else f"at least {err['ctx']['min_length']}"
        return f"must be {limit} character(s) long{_got(_value_at(data, loc))}"
    if kind == "string_pattern_mismatch" and info is not None and info.examples:
        example = schemadoc.flow(info.examples[0])
        return f"expected text like {example}{_got(_value_at(data, loc))}"
    return str(err["msg"]).removeprefix("Value error, ")


def _value_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _got(value: Any) -> str:
    """``, not 'fast'``: the value as written (before ``${VAR}``, so no secret is shown)."""
    if value is None:
        return ", not an empty value"
    text = f"'{value}'" if isinstance(value, str) else schemadoc.flow(value)
    if len(text) <= 40:
        return f", not {text}"
    if isinstance(value, dict | list):
        return f", not a {'mapping' if isinstance(value, dict) else 'list'}"
    return ""


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    # pydantic adds union member and tag names (e.g. 'function-after[...]') to locations
    return tuple(p for p in loc if isinstance(p, int) or not _is_tag(p))


def _is_tag(part: str) -> bool:
    return "[" in part or part in {"str", "int", "float", "bool", "list", "dict", "tuple"}


def _suggest(loc: Loc) -> str | None:
    annotation, _ = schemadoc.at(loc[:-1])
    model = schemadoc.model_of(annotation)
    allowed = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"expected one of: {', '.join(allowed)}" if allowed else None


# -- files the config refers to ---------------------------------------------------------


def _check_files(config: KeelConfig, path: Path, marks: Marks) -> Iterator[ConfigProblem]:
    for loc, ref in config.referenced_files():
        if not (path.parent / ref).exists():
            said = f"refers to '{ref}', which does not exist (paths are relative to {path.parent})"
            yield problem(path, marks.place(loc), loc, said)


def _check_training_source(config: KeelConfig, path: Path, marks: Marks) -> Iterator[ConfigProblem]:
    named = None if config.training is None else config.training.source_named(config.training.data)
    if named is None or named[0] in config.sources:
        return
    known = ", ".join(config.sources) or "none are declared"
    loc: Loc = ("training", "data")
    said = f"names '{named[0]}', which is not a source in keel.yaml (sources: {known})"
    hint = "name a source, a CSV/Parquet file, module:function or features"
    yield problem(path, marks.place(loc), loc, said, hint)


def _check_expressions(
    config: KeelConfig, path: Path, marks: Marks, text: str
) -> Iterator[ConfigProblem]:
    """Every rule, condition and threshold is in the expression language, so none fails
    later (at ingest, in the worker, on a request). The column is the offending token's
    in the file when the expression is written on one line as it reads."""
    lines = text.splitlines()
    for loc, expression, kind in config.expressions():
        try:
            check_expression(expression, kind)
        except ExpressionError as error:
            place = _token_place(marks.place(loc), lines, expression, error.column)
            said = f"{error.kind} {error.text!r}, column {error.column}: {error.reason}"
            yield problem(path, place, loc, said)


def _token_place(value: Place, lines: list[str], expression: str, column: int) -> Place:
    """Where the expression's ``column`` sits in the file: the value's place moved along
    the line, past an opening quote; the value's own place when the line does not hold
    the expression as written (folded over lines, escapes, or a ``${VAR}``)."""
    line, start = value
    written = lines[line - 1][start - 1 :] if line <= len(lines) else ""
    for skip in (1, 0) if written[:1] in ("'", '"') else (0,):
        if written[skip:].startswith(expression):
            return line, start + skip + column - 1
    return value


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
