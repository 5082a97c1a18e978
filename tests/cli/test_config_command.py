"""`keel config check | reference | schema` as a user runs them: each problem at its place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel import schemadoc

from ..helpers import keel

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "keel-yaml.md"


def _check(project: Path, text: str) -> list[str]:
    """The error lines `keel config check` prints for this keel.yaml (exit code 1)."""
    (project / "keel.yaml").write_text(text, encoding="utf-8")
    result = keel("config", "check", "--project", str(project))
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.removeprefix("error: ").splitlines()
    return [line.removeprefix(str(project / "keel.yaml")) for line in lines]


RULES = """\
name: shop
alerts:
  rules:
    - name: drift
      when: drifted_features >= 3
    - name: latency
      severity: critical
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "name: shop\nmonitoring:\n  drift:\n    alpha: high\n",
            ":4:12: monitoring.drift.alpha: expected a number like 0.01, not 'high'",
            id="wrong type three levels down",
        ),
        pytest.param(
            "serving:\n  batching:\n    max_bach: 8\n",
            ":3:5: serving.batching.max_bach: unknown key; did you mean 'max_batch'?",
            id="unknown key with the closest real one",
        ),
        pytest.param(
            RULES,
            ":6:7: alerts.rules[1].when: required but missing; "
            "add e.g. when: drifted_features >= 3 or output_drift",
            id="list item at the item's line",
        ),
        pytest.param(
            "name: shop\nserving:\n\ttimeout_ms: 50\n",
            ":3:1: malformed YAML, a tab where YAML allows only spaces; indent with spaces",
            id="tab indentation",
        ),
        pytest.param(
            "name: shop\nmonitoring:\n  drift: {tests: [ks, psi}\n",
            ":3:18: malformed YAML, the list opened here with [ never ends; close it with ]",
            id="malformed YAML",
        ),
    ],
)
def test_config_check_names_line_column_key_and_fix(
    tmp_path: Path, text: str, expected: str
) -> None:
    """One line per problem: the file's line and column, the key, and what it expects."""
    assert _check(tmp_path, text) == [expected]


def test_config_check_lists_every_problem_in_file_order(tmp_path: Path) -> None:
    """Problems in different sections come together, top of the file first."""
    text = "gate:\n  vs_production: {roc_auc: 0.02}\nnmae: shop\n"
    assert _check(tmp_path, text) == [
        ":2:28: gate.vs_production.roc_auc: expected a mapping like {max_drop: 0.02}, not 0.02",
        ":3:1: nmae: unknown key; did you mean 'name'?",
    ]


def test_config_reference_prints_the_committed_reference() -> None:
    """`keel config reference` prints docs/keel-yaml.md as committed."""
    result = keel("config", "reference")
    assert result.returncode == 0, result.stderr
    assert result.stdout == REFERENCE.read_text(encoding="utf-8")


def test_config_reference_json_lists_every_key() -> None:
    """`keel config reference --json` gives each key's path, type, default and example."""
    result = keel("config", "reference", "--json")
    keys = {key["path"]: key for key in json.loads(result.stdout)["keys"]}
    assert keys["serving.keep_alive"]["default"] == "75s"
    assert keys["sources.NAME.checks.rules[].expr"]["type"] == "text"
    assert len(keys) == sum(len(s.entries) for s in schemadoc.entries())


def test_config_schema_prints_a_json_schema(tmp_path: Path) -> None:
    """`keel config schema > keel.schema.json` writes the schema an editor reads."""
    result = keel("config", "schema")
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert "keep_alive" in schema["$defs"]["ServingConfig"]["properties"]
