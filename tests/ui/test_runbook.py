"""The runbook: built from keel.yaml, one entry per rule with a stable anchor, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.config import load_config
from keel.schema import KeelConfig
from keel.ui import build_runbook, render_html, render_markdown, runbook_anchor
from keel.ui.runbook import rule_signals
from tests.helpers import keel

CONFIG = """\
name: shop
monitoring: {reference: data/ref.csv, window: 30m}
alerts:
  rules:
    - {name: auc_drop, when: "roc_auc < 0.75", severity: critical}
    - {name: Too Many Drifted!, when: "drifted_features >= 3 or output_drift", severity: info}
  contacts:
    - {name: Ana, role: primary, reach: "ana@example.com"}
    - {name: Bo}
"""


def _config(tmp_path: Path, text: str = CONFIG) -> KeelConfig:
    (tmp_path / "keel.yaml").write_text(text)
    return load_config(tmp_path / "keel.yaml").config


@pytest.mark.parametrize(
    ("name", "anchor"),
    [
        ("auc_drop", "auc-drop"),
        ("feature_drift", "feature-drift"),
        ("Too Many Drifted!", "too-many-drifted"),
        ("!!!", "rule-"),
        ("section-contacts", "rule-section-contacts"),
    ],
)
def test_anchor_is_a_stable_slug(name: str, anchor: str) -> None:
    """Anchors are lower-case slugs that never collide with the page's own sections."""
    assert runbook_anchor(name) == anchor


def test_builtin_anchors_match_the_links_alerts_carry() -> None:
    """The monitoring layer's built-in rules link to runbook#<anchor> of their entry."""
    from keel.monitoring.alerts import DEFAULT_RULES

    for rule in DEFAULT_RULES:
        assert rule.runbook == f"runbook#{runbook_anchor(rule.name)}"


def test_every_configured_rule_and_builtin_gets_an_entry(tmp_path: Path) -> None:
    """Configured rules come first and are active; built-ins follow, marked inactive."""
    runbook = build_runbook(_config(tmp_path), now=0.0)
    names = [(e.name, e.builtin, e.active) for e in runbook.entries]
    assert names == [
        ("auc_drop", False, True),
        ("Too Many Drifted!", False, True),
        ("feature_drift", True, False),
        ("prediction_drift", True, False),
    ]


def test_without_rules_the_builtins_are_active(tmp_path: Path) -> None:
    """A project with no alerts section is covered by the built-in drift rules."""
    runbook = build_runbook(_config(tmp_path, "name: bare\n"), now=0.0)
    assert [(e.name, e.active) for e in runbook.entries] == [
        ("feature_drift", True),
        ("prediction_drift", True),
    ]
    assert any("alerts.contacts" in note for note in runbook.notes)


def test_signals_the_monitor_never_sends_are_flagged(tmp_path: Path) -> None:
    """roc_auc is not a signal today, so its rule is flagged as unable to fire."""
    entry = build_runbook(_config(tmp_path), now=0.0).entries[0]
    assert entry.unknown == ["roc_auc"] and entry.signals == []


def test_severity_says_how_fast_to_respond(tmp_path: Path) -> None:
    """Critical pages now; info is for the dashboard."""
    first, second = build_runbook(_config(tmp_path), now=0.0).entries[:2]
    assert first.response.startswith("Page now") and second.response.startswith("Dashboard")


def test_drift_rules_get_drift_diagnostics_with_the_window(tmp_path: Path) -> None:
    """Drift rules send on-call to `keel drift` over the configured window."""
    entry = build_runbook(_config(tmp_path), now=0.0).entries[1]
    assert "keel drift --window 30m" in entry.diagnose


def test_rollback_names_the_previous_version(tmp_path: Path) -> None:
    """With a previous production version, the rollback is one exact command."""
    runbook = build_runbook(_config(tmp_path), now=0.0, production=7, previous=6)
    assert "`keel rollback --reason 'WHY'` serves version 6 again" in runbook.rollback


def test_rollback_without_history_says_how_to_find_a_version(tmp_path: Path) -> None:
    """Without a previous version the runbook points to the registry listing."""
    runbook = build_runbook(_config(tmp_path), now=0.0)
    assert "keel registry list" in runbook.rollback


def test_rule_signals_reads_names_in_order() -> None:
    """The signal names of a condition, each once, in order."""
    assert rule_signals("a > 1 or (b and not a)") == ["a", "b"]
    assert rule_signals("not valid (") == []


def test_markdown_has_anchors_contacts_and_commands(tmp_path: Path) -> None:
    """Markdown carries each anchor (and the raw rule name), contacts and commands."""
    text = render_markdown(build_runbook(_config(tmp_path), now=0.0, previous=3))
    assert '<a id="auc-drop"></a>' in text and '<a id="auc_drop"></a>' in text
    assert "- **Ana** (primary): ana@example.com" in text
    assert "keel alerts list --status open" in text
    assert "keel rollback --reason" in text and "serves version 3 again" in text


def test_html_is_standalone_and_escaped(tmp_path: Path) -> None:
    """The HTML embeds its stylesheet, escapes config text and keeps the anchors."""
    config = CONFIG.replace("Bo}", "'<img src=x>'}")
    html = render_html(build_runbook(_config(tmp_path, config), now=0.0))
    assert html.startswith("<!doctype html>") and "<style>" in html
    assert 'id="too-many-drifted"' in html
    assert "<img src=x>" not in html and "&lt;img src=x&gt;" in html


def test_cli_writes_markdown_and_html(tmp_path: Path) -> None:
    """`keel runbook --out DIR --json` writes both files and reports them."""
    _config(tmp_path)
    result = keel("runbook", "--out", str(tmp_path / "rb"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rules"] == 4
    assert Path(report["markdown"]).read_text().startswith("# On-call runbook: shop")
    assert 'id="auc-drop"' in Path(report["html"]).read_text()


def test_cli_refuses_a_file_as_the_output_folder(tmp_path: Path) -> None:
    """--out pointing at a file is one sentence on stderr and exit code 1."""
    _config(tmp_path)
    (tmp_path / "taken").write_text("x")
    result = keel("runbook", "--out", str(tmp_path / "taken"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'taken'} is a file; pass a folder to --out"
