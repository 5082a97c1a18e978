"""Validation compiled from a recorded input schema: one finding per bad field, and the
policy that decides what each kind of finding does to its row."""

from __future__ import annotations

from typing import Any

import pytest

from keel.serving import ValidationPolicy, compile_validator

SCHEMA: list[dict[str, Any]] = [
    {"name": "age", "type": "integer", "nullable": False, "min": 18.0, "max": 90.0},
    {"name": "spend", "type": "number", "nullable": True, "min": 0.0, "max": 100.0},
    {"name": "plan", "type": "category", "nullable": False, "categories": ["basic", "premium"]},
    {"name": "active", "type": "boolean", "nullable": False},
]
GOOD = {"age": 40, "spend": 12.5, "plan": "basic", "active": True}


def errors_of(instance: Any, policy: ValidationPolicy | None = None) -> dict[str, str]:
    validator = compile_validator(SCHEMA, policy or ValidationPolicy())
    _, errors = validator.validate([instance])
    return {error.field: error.message for error in errors}


def test_a_valid_instance_passes_unchanged() -> None:
    """A row matching every column gives no errors and the same values back."""
    rows, errors = compile_validator(SCHEMA, ValidationPolicy()).validate([GOOD])
    assert errors == [] and rows == [GOOD]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("age", "forty", "must be an integer"),
        ("age", 40.5, "must be an integer"),
        ("age", True, "must be an integer"),
        ("spend", "12", "must be a number"),
        ("spend", float("nan"), "not NaN"),
        ("spend", float("inf"), "not NaN or infinity"),
        ("plan", "gold", "not a known category"),
        ("plan", 3, "must be a string"),
        ("active", 1, "true or false"),
        ("age", 500, "training range"),
    ],
)
def test_a_bad_value_gets_a_message_naming_its_field(field: str, value: Any, fragment: str) -> None:
    """Wrong types, NaN, infinity, unknown categories and out-of-range values are refused."""
    assert fragment in errors_of({**GOOD, field: value})[field]


def test_a_missing_required_field_is_named() -> None:
    """Leaving out a non-nullable column says the field is required."""
    instance = {k: v for k, v in GOOD.items() if k != "plan"}
    assert errors_of(instance) == {"plan": "field required"}


def test_a_nullable_field_may_be_missing() -> None:
    """A column that had nulls in training may be left out."""
    instance = {k: v for k, v in GOOD.items() if k != "spend"}
    assert errors_of(instance) == {}


def test_an_extra_field_is_refused_by_default() -> None:
    """A field the model does not take is an error unless extra fields are ignored."""
    assert "not an input" in errors_of({**GOOD, "colour": "red"})["colour"]
    assert errors_of({**GOOD, "colour": "red"}, ValidationPolicy(extra_fields="ignore")) == {}


def test_a_passthrough_field_is_kept_but_not_checked() -> None:
    """An entity id named as passthrough survives validation for logging and caching."""
    validator = compile_validator(SCHEMA, ValidationPolicy(passthrough=("customer_id",)))
    rows, errors = validator.validate([{**GOOD, "customer_id": "c1"}])
    assert errors == [] and rows[0]["customer_id"] == "c1"


@pytest.mark.parametrize(
    ("field", "value", "check"),
    [
        ("age", "forty", "type"),
        ("age", None, "type"),
        ("age", 500, "range"),
        ("plan", "gold", "category"),
        ("colour", "red", "extra"),
    ],
)
def test_each_finding_names_its_kind(field: str, value: Any, check: str) -> None:
    """Wrong types and nulls are type findings; range, category and extra fields their own."""
    _, findings = compile_validator(SCHEMA, ValidationPolicy()).validate([{**GOOD, field: value}])
    assert [(f.field, f.check) for f in findings] == [(field, check)]


@pytest.mark.parametrize(
    ("instance", "action"),
    [
        ({**GOOD, "age": "forty"}, "reject"),
        ({**GOOD, "age": 500}, "flag"),
        ({**GOOD, "plan": "gold"}, "flag"),
        ({**GOOD, "age": 500, "spend": "lots"}, "reject"),
    ],
)
def test_by_default_type_errors_reject_and_the_rest_flag(
    instance: dict[str, Any], action: str
) -> None:
    """The default policy refuses a wrong type, answers out-of-range and unseen categories,
    and a row with several findings takes the strictest action among them."""
    screening = compile_validator(SCHEMA, ValidationPolicy()).screen([instance])
    assert screening.actions == {0: action}


def test_a_fallback_finding_outranks_a_flag() -> None:
    """With ranges: fallback, a row both out of range and of an unseen category goes to
    the fallback chain, not to the model."""
    policy = ValidationPolicy(ranges="fallback")
    screening = compile_validator(SCHEMA, policy).screen([{**GOOD, "age": 500, "plan": "gold"}])
    assert screening.actions == {0: "fallback"} and screening.indexes("answer") == []


def test_a_wrongly_typed_value_is_passed_on_as_missing() -> None:
    """The row keeps a bad value's field as None: the log and a fallback rule never see a
    string where a number belongs."""
    rows, _ = compile_validator(SCHEMA, ValidationPolicy()).validate([{**GOOD, "age": "forty"}])
    assert rows[0]["age"] is None and rows[0]["spend"] == GOOD["spend"]


@pytest.mark.parametrize(
    ("setting", "earlier"), [("ranges", "ignore"), ("unseen_categories", "allow")]
)
def test_the_earlier_values_read_as_flag(setting: str, earlier: str) -> None:
    """keel.yaml's earlier ``ranges: ignore`` and ``unseen_categories: allow`` still load,
    and answer the row as before, now flagged."""
    from keel.schema import ValidationSpec

    assert getattr(ValidationSpec.model_validate({setting: earlier}), setting) == "flag"
    check = "range" if setting == "ranges" else "category"
    assert ValidationPolicy(**{setting: earlier}).action(check) == "flag"


def test_the_margin_widens_the_training_range() -> None:
    """A value just past the training maximum passes within the configured margin."""
    assert errors_of({**GOOD, "age": 95}, ValidationPolicy(range_margin=0.1)) == {}


def test_an_instance_that_is_not_an_object_is_refused() -> None:
    """A list or number where an object belongs gets one error for the instance."""
    _, errors = compile_validator(SCHEMA, ValidationPolicy()).validate([[1, 2]])
    assert errors[0].message == "an instance must be a JSON object"
