"""keel.yaml's reference and JSON Schema: complete, true to the schema, and committed current."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from keel import schemadoc
from keel.config import _Loader
from keel.schema import KeelConfig

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "keel-yaml.md"
TEMPLATE = ROOT / "src" / "keel" / "examples" / "template" / "keel.yaml"


def _models(model: type[BaseModel] = KeelConfig) -> dict[str, type[BaseModel]]:
    found = {model.__name__: model}
    for field in model.model_fields.values():
        for member in _all_types(field.annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                found.update(_models(member))
    return found


def _all_types(annotation: Any) -> list[Any]:
    return [annotation, *(t for arg in typing.get_args(annotation) for t in _all_types(arg))]


FIELDS = [
    (f"{name}.{key}", model, key)
    for name, model in sorted(_models().items())
    for key in model.model_fields
]


def test_the_committed_reference_is_the_generated_one() -> None:
    """docs/keel-yaml.md is exactly what the schema generates today."""
    committed = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert committed == schemadoc.reference(), (
        f"docs/keel-yaml.md is out of date with keel.schema; run `{schemadoc.REFERENCE_COMMAND}`"
    )


def test_every_field_has_a_description() -> None:
    """Every key of every section says what it is for."""
    bare = [name for name, model, key in FIELDS if not _described(model, key)]
    assert bare == []


def _described(model: type[BaseModel], key: str) -> bool:
    return len((model.model_fields[key].description or "").split()) >= 3


def test_every_documented_example_is_accepted() -> None:
    """The example the reference shows for each key validates as that key's value."""
    refused = []
    for name, model, key in FIELDS:
        field = model.model_fields[key]
        typed = (
            Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        )
        adapter: TypeAdapter[Any] = TypeAdapter(typed)
        for example in [schemadoc.example_of(field.annotation, field), *(field.examples or [])]:
            try:
                adapter.validate_python(example)
            except ValidationError as error:
                refused.append(f"{name}: {example!r}: {error}")
    assert refused == []


def test_the_reference_lists_every_key_with_its_default() -> None:
    """One row per key in each place it can appear, defaults spelled as in keel.yaml."""
    text = schemadoc.reference()
    places = [entry for section in schemadoc.entries() for entry in section.entries]
    assert text.count("\n| `") == len(places) == len(FIELDS)
    assert "| `keep_alive` | duration | `75s` |" in text


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    """A validator for the exported JSON Schema, itself checked against the meta-schema."""
    schema = schemadoc.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_json_schema_accepts_the_example_project(
    validator: jsonschema.Draft202012Validator,
) -> None:
    """The keel.yaml `keel init` writes is valid to an editor, durations and shorthands too."""
    document = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_Loader)
    errors = [error.message for error in validator.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize(
    "text",
    [
        "sevring: {}\n",
        "serving: {keep_alive: soon}\n",
        "sources: {c: {kind: excel, path: a.csv}}\n",
        "gate: {vs_production: {roc_auc: 0.02}}\n",
    ],
)
def test_the_json_schema_refuses_what_keel_refuses(
    validator: jsonschema.Draft202012Validator, text: str
) -> None:
    """A typo'd key, a bad duration, an unknown kind and a wrong shape are marked in editors."""
    assert not validator.is_valid(yaml.load(text, Loader=_Loader))


def test_the_readme_links_the_reference() -> None:
    """README's configuration section points at the generated reference."""
    assert "(docs/keel-yaml.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
