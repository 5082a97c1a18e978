"""Templates and the runbook's two renderings (Markdown and HTML), and writing them out.

Templates ship inside the package (``keel/ui/templates``), autoescaped; the runbook's
HTML uses the same fragment inside the dashboard and as a standalone file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from keel.ui.runbook import Entry, Event, Runbook, build_runbook, generated

if TYPE_CHECKING:
    from jinja2 import Environment

    from keel.project import Project

__all__ = ["environment", "render_html", "render_markdown", "runbook_for", "write_runbook"]

STYLESHEET = Path(__file__).parent / "static" / "keel.css"
_EVENTS_INTRO = (
    "Keel records each of these as an alert that is already resolved, so there is nothing "
    "to acknowledge: `keel alerts list --status resolved` lists them and `--json` adds "
    "their details."
)


def _when(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{datetime.fromtimestamp(value, UTC):%Y-%m-%d %H:%M} UTC"


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ticks(text: str) -> Markup:
    """Escaped text with `backticked` spans as <code>."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


@cache
def environment() -> Environment:
    """The Jinja2 environment over the package's templates (autoescaped)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("keel.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, num=_number, pct=_percent, ticks=_ticks)
    return env


def runbook_for(project: Project, now: float) -> Runbook:
    """The project's runbook, naming the production and previous versions if any."""
    from keel.training.status import read_status

    status = read_status(project.root)
    production = status["production"]["version"] if status["production"] else None
    previous = status["previous_production"]
    return build_runbook(project.config, now, production, previous["version"] if previous else None)


def render_html(runbook: Runbook, standalone: bool = True) -> str:
    """The runbook as an HTML page (``standalone``) or as a fragment for the dashboard."""
    template = environment().get_template("runbook_body.html")
    body = template.render(rb=runbook, at=generated(runbook), events_intro=_EVENTS_INTRO)
    if not standalone:
        return body
    return (
        environment()
        .get_template("runbook_page.html")
        .render(rb=runbook, body=Markup(body), css=Markup(STYLESHEET.read_text(encoding="utf-8")))
    )


def render_markdown(runbook: Runbook) -> str:
    """The runbook as Markdown; each rule's and event's heading carries explicit anchors."""
    lines = [f"# On-call runbook: {runbook.project}", "", f"Generated {generated(runbook)}.", ""]
    lines += [f"> {note}" for note in runbook.notes] + ([""] if runbook.notes else [])
    lines += ["## Escalation contacts", ""]
    lines += [
        f"- **{name}**{f' ({role})' if role else ''}: {reach or '-'}"
        for name, role, reach in runbook.contacts
    ] or ["- none in keel.yaml (alerts.contacts)"]
    lines += ["", "## Where alerts go", ""]
    lines += [f"- {name}: {severities}" for name, severities in runbook.sinks]
    lines += ["", "## Alert rules", ""]
    for entry in runbook.entries:
        lines += _markdown_entry(entry)
    lines += ["## Events Keel raises", "", _EVENTS_INTRO, ""]
    for event in runbook.events:
        lines += _markdown_event(event)
    lines += ["## Where logs and reports live", ""]
    lines += [f"- **{what}**: {where}" for what, where in runbook.places]
    lines += ["", "## Rolling back", "", runbook.rollback[0].upper() + runbook.rollback[1:], ""]
    return "\n".join(lines)


def _markdown_entry(entry: Entry) -> list[str]:
    origin = "keel.yaml" if not entry.builtin else "built into Keel"
    if not entry.active:
        origin += "; not active, because keel.yaml defines its own rules"
    lines = _markdown_heading(entry.name, entry.anchor, entry.alias)
    lines += [
        f"- **Severity**: {entry.severity}. {entry.response}",
        f"- **Fires when**: `{entry.when}` ({origin})",
    ]
    lines += [f"- `{name}`: {meaning}" for name, meaning in entry.signals]
    lines += [
        f"- `{name}`: not a signal the monitor produces today, so this rule cannot fire yet"
        for name in entry.unknown
    ]
    return lines + _markdown_steps(entry.diagnose, entry.mitigate)


def _markdown_event(event: Event) -> list[str]:
    lines = _markdown_heading(event.name, event.anchor, event.alias)
    lines += [
        f"- **Severity**: {event.severity}. {event.response}",
        f"- **Fires when**: {event.fires}",
        f"- **Details**: {event.details}",
    ]
    return lines + _markdown_steps(event.diagnose, event.mitigate)


def _markdown_heading(name: str, anchor: str, alias: str | None) -> list[str]:
    targets = [anchor, alias] if alias else [anchor]
    return [*(f'<a id="{target}"></a>' for target in targets), f"### {name}", ""]


def _markdown_steps(diagnose: Sequence[str], mitigate: Sequence[str]) -> list[str]:
    lines = ["", "First diagnostics:", "", "```sh", *diagnose, "```", "", "Mitigation:", ""]
    lines += [f"{i}. {step}" for i, step in enumerate(mitigate, 1)]
    return [*lines, ""]


def write_runbook(project: Project, out: Path, now: float) -> tuple[Path, Path, Runbook]:
    """Write ``runbook.md`` and ``runbook.html`` into ``out``; return them and the runbook."""
    runbook = runbook_for(project, now)
    out.mkdir(parents=True, exist_ok=True)
    markdown, html = out / "runbook.md", out / "runbook.html"
    markdown.write_text(render_markdown(runbook), encoding="utf-8")
    html.write_text(render_html(runbook), encoding="utf-8")
    return markdown, html, runbook
