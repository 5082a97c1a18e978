"""The runbook: built from keel.yaml, one entry per rule and per event Keel raises, each
with a stable anchor, and the CLI."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from keel.cli.main import app
from keel.config import load_config
from keel.monitoring.alerts import AlertBook
from keel.schema import KeelConfig
from keel.store.metadata import MetadataStore
from keel.ui import Runbook, build_runbook, render_html, render_markdown, runbook_anchor
from keel.ui import runbook as runbook_module
from keel.ui.events import EVENTS
from keel.ui.runbook import RESPONSE, rule_signals
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
    assert report["rules"] == 4 and report["events"] == len(EVENTS)
    assert Path(report["markdown"]).read_text().startswith("# On-call runbook: shop")
    assert 'id="auc-drop"' in Path(report["html"]).read_text()
    assert '<a id="canary_rolled_back"></a>' in Path(report["markdown"]).read_text()


def test_cli_refuses_a_file_as_the_output_folder(tmp_path: Path) -> None:
    """--out pointing at a file is one sentence on stderr and exit code 1."""
    _config(tmp_path)
    (tmp_path / "taken").write_text("x")
    result = keel("runbook", "--out", str(tmp_path / "taken"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'taken'} is a file; pass a folder to --out"


# -- events ---------------------------------------------------------------------------

SOURCE = Path(runbook_module.__file__).parents[1]
RAISED = re.compile(r'(?:\.event|\b_alert)\(\s*(?:project,\s*)?"(\w+)"([^)]*)')
SEVERITY = re.compile(r'"(critical|warning|info)"')


def _raised_in_source() -> set[tuple[str, str | None]]:
    """(name, severity) of every literal ``AlertBook.event`` / delivery ``_alert`` call."""
    found = set()
    for path in SOURCE.rglob("*.py"):
        for call in RAISED.finditer(path.read_text(encoding="utf-8")):
            severity = SEVERITY.search(call.group(2))
            found.add((call.group(1), severity.group(1) if severity else None))
    return found


def test_every_event_raised_in_the_source_has_an_entry() -> None:
    """An event Keel raises without a runbook entry, or with another severity, fails here;
    so does an entry for an event nothing raises any more."""
    assert _raised_in_source() == {(event.name, event.severity) for event in EVENTS}


def test_events_follow_the_rules_in_markdown_under_both_anchors(tmp_path: Path) -> None:
    """Each event's entry sits after the rules, reachable by its slug and by its own name."""
    text = render_markdown(build_runbook(_config(tmp_path), now=0.0))
    start = text.index("## Events Keel raises")
    assert text.index("## Alert rules") < start < text.index("## Where logs and reports live")
    for event in EVENTS:
        for target in (event.anchor, event.name):
            assert text.index(f'<a id="{target}"></a>') > start
        assert f"- **Severity**: {event.severity}. {RESPONSE[event.severity]}" in text
    assert '<a id="canary-rolled-back"></a>\n<a id="canary_rolled_back"></a>' in text


def test_events_are_in_the_html_contents_under_both_anchors(tmp_path: Path) -> None:
    """The HTML lists every event in the section's contents and gives each both anchors,
    with no id on the page used twice."""
    html = render_html(build_runbook(_config(tmp_path), now=0.0))
    ids = re.findall(r'id="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for event in EVENTS:
        assert f'<a href="#{event.anchor}">{event.name}</a> ({event.severity})' in html
        assert event.anchor in ids and event.name in ids
    assert 'id="canary-rolled-back"' in html and 'id="canary_rolled_back"' in html


def test_the_link_an_event_alert_carries_lands_on_its_entry(tmp_path: Path) -> None:
    """``AlertBook.event`` links ``runbook#<name>``; the runbook has that anchor for each."""
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'keel.db'}")
    try:
        book = AlertBook(store)
        links = [book.event(e.name, "model@3", e.severity, "s", {}, 0.0).runbook for e in EVENTS]
    finally:
        store.close()
    html = render_html(build_runbook(_config(tmp_path), now=0.0))
    for link in links:
        assert link is not None and f'id="{link.removeprefix("runbook#")}"' in html


def test_event_mitigation_rolls_back_to_the_previous_version(tmp_path: Path) -> None:
    """Where an event's way out is a rollback, its entry names the version it restores."""
    runbook = build_runbook(_config(tmp_path), now=0.0, production=7, previous=6)
    steps = {event.name: " ".join(event.mitigate) for event in runbook.events}
    for name in ("model_load_failed", "canary_promoted"):
        assert "`keel rollback --reason 'WHY'` serves version 6 again" in steps[name]
    assert "Production kept serving the previous model" in steps["canary_rolled_back"]
    assert not any("{rollback}" in text for text in steps.values())


def _commands(runbook: Runbook) -> list[str]:
    """Every ``keel`` command the runbook tells on-call to run."""
    texts = [runbook.rollback, *(step for e in runbook.entries for step in e.mitigate)]
    texts += [step for event in runbook.events for step in event.mitigate]
    spans = [span for text in texts for span in re.findall(r"`(keel [^`]+)`", text)]
    listed = [c for item in [*runbook.entries, *runbook.events] for c in item.diagnose]
    return listed + spans


def _parses(line: str) -> bool:
    command: Any = typer.main.get_command(app)
    words = shlex.split(line)[1:]
    while words and hasattr(command, "commands") and words[0] in command.commands:
        command = command.commands[words.pop(0)]
    try:
        command.make_context("keel", words)  # raises on an unknown option or a missing argument
    except typer.TyperException:
        return False
    return not hasattr(command, "commands")


@pytest.mark.parametrize("text", [CONFIG, "name: bare\n"])
def test_every_command_the_runbook_names_exists(tmp_path: Path, text: str) -> None:
    """Diagnostics and mitigations name real commands with real options and arguments."""
    commands = _commands(build_runbook(_config(tmp_path, text), now=0.0, previous=3))
    assert "keel deployments" in commands and "keel registry show VERSION" in commands
    assert [line for line in commands if not _parses(line)] == []
