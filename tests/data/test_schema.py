"""The sources: section of keel.yaml: check models, shorthands and refusals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from keel.schema import SourceConfig


def _source(**fields: Any) -> SourceConfig:
    return SourceConfig.model_validate({"kind": "csv", "path": "data/x.csv", **fields})


def test_sketch_vocabulary_parses() -> None:
    """The DESIGN.md sketch's checks parse into typed models."""
    config = _source(
        checks={
            "columns": {
                "age": {"type": "int", "range": [18, 110], "max_null_rate": 0.01},
                "updated_at": {"type": "timestamp", "not_future": True, "freshness": "2d"},
            },
            "rules": [{"name": "r", "expr": "a <= b"}],
            "references": [{"column": "customer_id", "to": "customers.customer_id"}],
            "ordered": {"by": "event_time", "within": "customer_id"},
            "reference": "previous",
        }
    )
    assert config.checks.columns["updated_at"].freshness == timedelta(days=2)
    assert config.checks.reference is not None and config.checks.reference.against == "previous"
    assert config.checks.rules[0].severity == "error"


@pytest.mark.parametrize(
    "fields",
    [
        {"checks": {"columns": {"a": {"regex": "("}}}},
        {"checks": {"columns": {"a": {"type": "integer"}}}},
        {"checks": {"columns": {"a": {"nullable": True}}}},
        {"checks": {"references": [{"column": "a", "to": "customers"}]}},
        {"checks": {"rules": [{"name": "r", "expr": "a > 0"}, {"name": "r", "expr": "b > 0"}]}},
        {"kind": "sql", "query": "select 1"},
        {"kind": "python"},
        {"key": "id", "key_policy": "replace"},
    ],
)
def test_mistakes_are_refused(fields: dict[str, Any]) -> None:
    """Bad regexes, unknown types or keys, bad references, twin rule names, no url/callable."""
    with pytest.raises(ValidationError):
        _source(**fields)


def test_key_policy_defaults_to_reject() -> None:
    """A source that names no key_policy refuses keys published before."""
    assert _source(key="id").key_policy == "reject"
