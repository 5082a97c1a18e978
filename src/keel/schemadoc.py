"""keel.yaml's schema in words: what a key holds, an example, and the reference built on them.

Error messages say "expected a mapping like {max_drop: 0.02}" instead of pydantic's
"valid dictionary or instance of MaxDrop"; ``docs/keel-yaml.md`` lists every key with its
type, default, description and example; editors read the JSON Schema. All three come from
the models in ``keel.schema`` (their fields' ``description`` and ``examples``), so they cannot
disagree with what ``keel config check`` accepts.
"""

from __future__ import annotations

import ipaddress
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeGuard

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticUndefined, core_schema

from keel.schema import KeelConfig, format_duration

__all__ = [
    "DURATION_PATTERN",
    "REFERENCE_COMMAND",
    "Entry",
    "ReferenceSection",
    "at",
    "default_of",
    "entries",
    "example_of",
    "flow",
    "json_schema",
    "members",
    "model_example",
    "model_of",
    "reference",
    "shape",
    "type_name",
]

REFERENCE_COMMAND = "keel config reference > docs/keel-yaml.md"
DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*$"  # keel.schema.parse_duration's
Loc = tuple[str | int, ...]


# -- walking the schema -----------------------------------------------------------------


def members(annotation: Any) -> list[Any]:
    """The types a value may have: a union's members without None, Annotated unwrapped."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found: list[Any] = []
        for arg in typing.get_args(annotation):
            found.extend(m for m in members(arg) if m not in found)
        return [m for m in found if m is not type(None)]
    return [annotation]


def _is_model(member: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(member, type) and issubclass(member, BaseModel)


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The section model a value of this type is, if one of its types is a model."""
    for member in members(annotation):
        if _is_model(member):
            return member
    return None


def at(loc: Loc, root: type[BaseModel] = KeelConfig) -> tuple[Any, FieldInfo | None]:
    """The declared type at ``loc`` (e.g. ``("sources", "c", "kind")``) and its field, if any.

    ``(None, None)`` when the location is not in the schema.
    """
    annotation: Any = root
    field: FieldInfo | None = None
    for part in loc:
        annotation, field = _step(annotation, part)
        if annotation is None:
            return None, None
    return annotation, field


def _step(annotation: Any, part: str | int) -> tuple[Any, FieldInfo | None]:
    for member in members(annotation):
        if _is_model(member):
            if isinstance(part, str) and part in member.model_fields:
                field = member.model_fields[part]
                return field.annotation, field
            continue
        origin, args = typing.get_origin(member), typing.get_args(member)
        if origin is dict and args:
            return args[1], None
        if origin is list and args and isinstance(part, int):
            return args[0], None
        if origin is tuple and isinstance(part, int) and part < len(args):
            return args[part], None
    return None, None


# -- names and examples -----------------------------------------------------------------

_NAMES: dict[Any, tuple[str, str]] = {  # type: (singular, plural)
    bool: ("true/false", "true/false values"),
    int: ("whole number", "whole numbers"),
    float: ("number", "numbers"),
    str: ("text", "texts"),
    timedelta: ("duration", "durations"),
    Any: ("any value", "any values"),
}


def type_name(annotation: Any, plural: bool = False) -> str:
    """A short name for the docs: ``duration``, ``list of text``, ``one of: csv, sql``."""
    names = list(dict.fromkeys(_one_name(m, plural) for m in members(annotation)))
    if _NAMES[float][plural] in names and _NAMES[int][plural] in names:
        names.remove(_NAMES[int][plural])  # a number may be whole
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _one_name(member: Any, plural: bool) -> str:
    origin, args = typing.get_origin(member), typing.get_args(member)
    if member in _NAMES:
        return _NAMES[member][plural]
    if origin is Literal:
        return "one of: " + ", ".join(str(_plain(a)) for a in args)
    if origin is list:
        return f"list{'s' if plural else ''} of {type_name(args[0], plural=True)}"
    if origin is tuple:
        return "pairs [low, high]" if plural else "pair [low, high]"
    if origin is dict:
        key = "name" if args[0] is str else f"({type_name(args[0])})"
        return f"mapping{'s' if plural else ''} of {key} → {type_name(args[1])}"
    if _is_model(member):
        return "mappings" if plural else "mapping"
    return "addresses or CIDRs" if plural else "address or CIDR"  # IPvAnyNetwork


def example_of(annotation: Any, field: FieldInfo | None = None) -> Any:
    """A value someone would write for this key: its example, its default, or one made up."""
    if field is not None and field.examples:
        return field.examples[0]
    default = default_of(field)
    if default is not None and not isinstance(default, BaseModel) and default not in ([], {}):
        return _plain(default)
    return _made_up(members(annotation)[0])


def _made_up(member: Any) -> Any:
    origin, args = typing.get_origin(member), typing.get_args(member)
    if origin is Literal:
        return args[0]
    if origin is list:
        return [example_of(args[0])]
    if origin is tuple:
        return [0, 100]
    if origin is dict:
        return {"NAME": example_of(args[1])}
    if _is_model(member):
        return model_example(member)
    made_up = {bool: True, int: 10, float: 0.5, str: "text", timedelta: "10m", Any: 1}
    return made_up.get(member, "10.0.0.0/8")


def model_example(model: type[BaseModel]) -> dict[str, Any]:
    """A short mapping for a section: its required keys and one exemplified key."""
    fields = model.model_fields
    chosen = [name for name, field in fields.items() if field.is_required()]
    chosen += [name for name, field in fields.items() if field.examples and name not in chosen][:1]
    return {
        name: example_of(fields[name].annotation, fields[name]) for name in chosen or [*fields][:1]
    }


def default_of(field: FieldInfo | None) -> Any:
    """The field's default (a factory called), or None when it has none."""
    if field is None or field.is_required():
        return None
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None if field.default is PydanticUndefined else field.default


def _plain(value: Any) -> Any:
    """A value as keel.yaml spells it: durations as ``10m``, sections as mappings."""
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(exclude_defaults=True))
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def flow(value: Any) -> str:
    """A value in YAML's one-line flow style: ``{max_drop: 0.02}``, ``[ks, chi2]``, ``10m``."""
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=10_000, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def shape(annotation: Any, field: FieldInfo | None = None) -> str:
    """What a value must look like, for an error: ``a mapping like {max_drop: 0.02}``."""
    return ", or ".join(dict.fromkeys(_one_shape(m, field) for m in members(annotation)))


def _one_shape(member: Any, field: FieldInfo | None) -> str:
    origin = typing.get_origin(member)
    if origin is Literal:
        return "one of " + _choices([str(a) for a in typing.get_args(member)])
    if member is bool:
        return "true or false"
    if member is timedelta:
        return "a duration like 30s, 10m or 1h"
    if member is str:  # made-up text would say nothing: "text like text"
        written = _fitting(member, field)
        return f"text like {flow(written[0])}" if written else "text"
    example = flow(_member_example(member, field))
    if member in (int, float):
        return f"a {_NAMES[member][0]} like {example}"
    if origin in (list, tuple):
        return f"a {'pair' if origin is tuple else 'list'} like {example}"
    if origin is dict or (_is_model(member)):
        return f"a mapping like {example}"
    return f"{type_name(member)} like {example}"


def _member_example(member: Any, field: FieldInfo | None) -> Any:
    """The field's first example (or default) of this union member's kind, else one made up."""
    fitting = _fitting(member, field)
    return fitting[0] if fitting else _made_up(member)


def _fitting(member: Any, field: FieldInfo | None) -> list[Any]:
    """The field's examples, then its default, that are of this union member's kind."""
    candidates = list(field.examples or []) if field is not None else []
    default = _plain(default_of(field))
    if default is not None and default not in ([], {}):
        candidates.append(default)
    return [c for c in candidates if _fits(c, member)]


def _fits(value: Any, member: Any) -> bool:
    origin = typing.get_origin(member)
    if origin is Literal:
        return value in typing.get_args(member)
    if origin in (list, tuple):
        return isinstance(value, list)
    if origin is dict or (_is_model(member)):
        return isinstance(value, dict)
    if member in (int, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return not isinstance(value, list | dict)


def _choices(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


# -- the reference ----------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One key of keel.yaml as the reference lists it."""

    section: str  # e.g. sources.NAME.checks
    key: str
    type: str
    default: Any
    description: str
    example: Any
    section_below: bool = False  # a section of its own, listed after this one

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}" if self.section else self.key


@dataclass(frozen=True)
class ReferenceSection:
    """A mapping in keel.yaml: where it sits, what it is for, and its keys."""

    path: str
    about: str
    entries: tuple[Entry, ...]


def entries(model: type[BaseModel] = KeelConfig, path: str = "") -> Iterator[ReferenceSection]:
    """Every section of keel.yaml, outermost first, each followed by the sections in it."""
    rows = tuple(_entry(path, name, field) for name, field in model.model_fields.items())
    yield ReferenceSection(path, _about(model), rows)
    for name, field in model.model_fields.items():
        for member in members(field.annotation):
            inner = _nested(member, f"{path}.{name}" if path else name)
            if inner is not None:
                yield from entries(*inner)
                break


def _nested(member: Any, path: str) -> tuple[type[BaseModel], str] | None:
    """The section a key holds: a model itself, or each value of a mapping or list of them."""
    origin, args = typing.get_origin(member), typing.get_args(member)
    if _is_model(member):
        return member, path
    inner = model_of(args[1]) if origin is dict else model_of(args[0]) if origin is list else None
    return (inner, f"{path}{'.NAME' if origin is dict else '[]'}") if inner is not None else None


def _entry(section: str, name: str, field: FieldInfo) -> Entry:
    return Entry(
        section=section,
        key=name,
        type=type_name(field.annotation),
        default=_plain(default_of(field)),
        description=" ".join((field.description or "").split()),
        example=example_of(field.annotation, field),
        section_below=any(_is_model(m) for m in members(field.annotation)),
    )


def _about(model: type[BaseModel]) -> str:
    doc = model.__dict__.get("__doc__") or ""
    return " ".join(doc.split())


def reference() -> str:
    """docs/keel-yaml.md: every section and key with type, default, description, example."""
    lines = [
        "# keel.yaml reference",
        "",
        f"<!-- Generated from keel.schema by `{REFERENCE_COMMAND}`; do not edit by hand. -->",
        "",
        "Every section is optional, so a project can adopt one layer at a time. Unknown keys",
        "are refused with the closest real key. Durations are written `250ms`, `30s`, `10m`,",
        "`1h`, `2d`, `1w` or a number of seconds. A value may use `${VAR}` to read an",
        "environment variable (`keel config check` prints it masked). `NAME` in a section's",
        "path stands for a name you choose; `[]` marks the items of a list.",
        "",
        "`keel config check` validates a file; `keel config schema > keel.schema.json` writes",
        "the JSON Schema, which editors with the YAML language server read when keel.yaml",
        "starts with:",
        "",
        "```yaml",
        "# yaml-language-server: $schema=keel.schema.json",
        "```",
    ]
    for section in entries():
        lines += ["", f"## {f'`{section.path}`' if section.path else 'Top level'}", ""]
        if section.about:
            lines += [section.about, ""]
        lines += ["| Key | Type | Default | Description | Example |", "|---|---|---|---|---|"]
        lines += [_row(entry) for entry in section.entries]
    return "\n".join(lines) + "\n"


def _row(entry: Entry) -> str:
    default = "—" if entry.default is None else _code(flow(entry.default))
    example = _code(f"{entry.key}: {flow(entry.example)}")
    if entry.section_below:
        default = "its defaults" if entry.default == {} else default
        example = f"see `{entry.path}` below"
    cells = [f"`{entry.key}`", entry.type, default, entry.description, example]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


class _KeelJsonSchema(GenerateJsonSchema):
    """Durations and defaults as keel.yaml spells them (``10m``), not ISO 8601."""

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        text = {"type": "string", "pattern": DURATION_PATTERN}
        return {"anyOf": [text, {"type": "number", "minimum": 0}]}

    def encode_default(self, dft: Any) -> Any:
        return super().encode_default(_plain(dft))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of keel.yaml (draft 2020-12), for editors and other tools."""
    schema = KeelConfig.model_json_schema(mode="validation", schema_generator=_KeelJsonSchema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "keel.yaml",
    }
