"""`keel config check | reference | schema` as a user runs them: each problem at its place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _check_json(project: Path, text: str) -> dict[str, Any]:
    """What `keel config check --json` prints for this keel.yaml, which must fail (exit 1)."""
    (project / "keel.yaml").write_text(text, encoding="utf-8")
    result = keel("config", "check", "--json", "--project", str(project))
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["ok"] is False and report["file"] == str(project / "keel.yaml")
    return report


def _place(text: str, line_holding: str, token: str) -> tuple[int, int]:
    """The 1-based line and column of ``token`` on the first line holding ``line_holding``."""
    lines = text.splitlines()
    number = next(i for i, line in enumerate(lines) if line_holding in line)
    return number + 1, lines[number].index(token) + 1


def test_config_check_json_reports_malformed_yaml(tmp_path: Path) -> None:
    """A tab in the indentation is one problem at the tab, with no key and a hint."""
    text = "name: shop\nserving:\n\ttimeout_ms: 50\n"
    [problem] = _check_json(tmp_path, text)["problems"]
    assert (problem["line"], problem["column"]) == _place(text, "timeout_ms", "\t")
    assert problem["path"] is None
    assert problem["message"] == "malformed YAML, a tab where YAML allows only spaces"
    assert problem["hint"] == "indent with spaces"


def test_config_check_json_reports_a_schema_error(tmp_path: Path) -> None:
    """A wrong type is one problem at its value, with the dotted key and no hint."""
    text = "name: shop\nmonitoring:\n  drift:\n    alpha: high\n"
    [problem] = _check_json(tmp_path, text)["problems"]
    assert (problem["line"], problem["column"]) == _place(text, "alpha", "high")
    assert problem["path"] == "monitoring.drift.alpha"
    assert problem["message"] == "expected a number like 0.01, not 'high'"
    assert "hint" not in problem


def test_config_check_json_reports_every_problem_in_file_order(tmp_path: Path) -> None:
    """Two mistakes in two sections are two problems, top of the file first, the unknown
    key with the closest real one as its hint."""
    text = "gate:\n  vs_production: {roc_auc: 0.02}\nnmae: shop\n"
    problems = _check_json(tmp_path, text)["problems"]
    assert [(p["line"], p["column"]) for p in problems] == [
        _place(text, "vs_production", "0.02"),
        _place(text, "nmae", "nmae"),
    ]
    assert [p["path"] for p in problems] == ["gate.vs_production.roc_auc", "nmae"]
    assert (problems[1]["message"], problems[1]["hint"]) == (
        "unknown key",
        "did you mean 'name'?",
    )


def test_config_check_json_reports_expression_errors_at_their_token(tmp_path: Path) -> None:
    """Each expression outside the language is a problem at the offending token's line
    and column in the file, under the rule's key."""
    text = (
        "name: p\nsources:\n  people:\n    kind: csv\n    path: people.csv\n"
        "    checks:\n      rules:\n        - {name: r, expr: 'age > 0 and distinct(age)'}\n"
        "        - name: s\n          expr: age >> 3\n"
    )
    problems = _check_json(tmp_path, text)["problems"]
    assert [(p["line"], p["column"]) for p in problems] == [
        _place(text, "name: r", "distinct"),
        _place(text, "expr: age >> 3", "age >> 3"),
    ]
    assert [p["path"] for p in problems] == [
        "sources.people.checks.rules[0].expr",
        "sources.people.checks.rules[1].expr",
    ]
    assert problems[0]["message"].startswith(
        "data rule 'age > 0 and distinct(age)', column 13: 'distinct' is not a function"
    )


def test_config_check_json_without_a_project(tmp_path: Path) -> None:
    """No keel.yaml at all is still one JSON answer: one problem, no file, no place."""
    result = keel("config", "check", "--json", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["ok"] is False and report["file"] is None
    [problem] = report["problems"]
    assert problem["line"] is None and problem["message"].startswith("no keel.yaml in")


def test_config_check_json_says_what_it_checked(tmp_path: Path) -> None:
    """A valid file: ok, the file, the sections written, the expressions and files checked,
    and the resolved config as before."""
    (tmp_path / "features.py").write_text("", encoding="utf-8")
    text = (
        "name: p\nfeatures: {module: features.py}\nalerts:\n  rules:\n"
        "    - {name: a, when: drifted_features >= 3}\n    - {name: b, when: output_drift}\n"
    )
    (tmp_path / "keel.yaml").write_text(text, encoding="utf-8")
    result = keel("config", "check", "--json", "--project", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["valid"] is True
    assert report["file"] == str(tmp_path / "keel.yaml")
    assert report["checked"] == {
        "sections": ["name", "features", "alerts"],
        "expressions": 2,
        "files": 1,
    }
    assert report["config"]["name"] == "p"


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


def test_the_readme_json_example_is_what_check_prints(tmp_path: Path) -> None:
    """The README's `keel config check --json` answer for its gate example is the real
    one, but for the folder it was run in."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    text = readme.split("```yaml\ngate:\n", 1)[1].split("```", 1)[0]
    shown = readme.split("$ keel config check --json\n", 1)[1].split("```", 1)[0]
    expected = json.loads(shown.replace("/home/me/churn-project", str(tmp_path)))
    assert _check_json(tmp_path, "gate:\n" + text) == expected
