"""What each dashboard page shows: a template name and its context, built from readers.

Each builder takes the dashboard, the request and the signed-in viewer; the charts are
drawn here as inline SVG so the templates only place them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from keel.errors import DashboardError
from keel.ui import readers
from keel.ui.charts import Series, histogram_svg, line_svg
from keel.ui.runbook import runbook_anchor

if TYPE_CHECKING:
    from starlette.requests import Request

    from keel.ui.app import Dashboard
    from keel.ui.auth import Viewer

__all__ = [
    "alerts",
    "data",
    "deployments",
    "diff",
    "drift",
    "overview",
    "performance",
    "registry",
    "rollback",
    "run",
    "runbook",
    "version",
]

Built = tuple[str, dict[str, Any]]
_DAY = 86_400.0
_NOTICES = {
    "acknowledged": "Alert acknowledged.",
    "resolved": "Alert resolved.",
    "rolled-back": "Rolled back. Servers load the new production model on their next refresh.",
}


def _base(request: Request, title: str, here: str) -> dict[str, Any]:
    return {
        "title": title,
        "here": here,
        "notice": _NOTICES.get(request.query_params.get("done", "")),
    }


def _figure(svg: str, caption: str = "") -> Markup:
    text = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return Markup(f"<figure>{svg}{text}</figure>")


def _chart(series: list[Series], title: str, percent: bool = False) -> Markup:
    return _figure(line_svg(series, title, percent), title)


def overview(board: Dashboard, request: Request, who: Viewer) -> Built:
    from keel.ui.traffic import Traffic, log_files, traffic_series, traffic_summary

    def read() -> tuple[Traffic, dict[str, list[Any]]]:
        now = time.time()
        files = log_files(board.project, now - _DAY)
        return traffic_summary(files, now - 3600, now), traffic_series(files, now - _DAY)

    traffic, series = board.memo.get("traffic", read)
    charts = [
        _chart([("requests", series["requests"])], "Requests per hour"),
        _chart([("p99 ms", series["p99_ms"])], "Latency p99 (ms) per hour"),
        _chart([("fallback", series["fallback_rate"])], "Fallback rate per hour", True),
    ]
    active, _ = readers.alerts(board.project, resolved=0)
    return "overview.html", {
        **_base(request, "Overview", "/"),
        "status": readers.status(board.project),
        "health": dict(board.health()) if board.health else None,
        "traffic": traffic,
        "charts": charts,
        "alerts": active,
    }


def registry(board: Dashboard, request: Request, who: Viewer) -> Built:
    limit = 100
    versions = readers.registry_versions(board.project, limit)
    return "registry.html", {
        **_base(request, "Models", "/registry"),
        "versions": versions,
        "limit": limit,
    }


def version(board: Dashboard, request: Request, who: Viewer) -> Built:
    number = int(request.path_params["version"])
    detail = readers.version_detail(board.project, number)
    return "version.html", {**_base(request, f"Model version {number}", "/registry"), "d": detail}


def diff(board: Dashboard, request: Request, who: Viewer) -> Built:
    try:
        a, b = int(request.query_params["a"]), int(request.query_params["b"])
    except (KeyError, ValueError):
        raise DashboardError("give two version numbers to compare, as ?a=1&b=2") from None
    found = readers.versions_diff(board.project, a, b)
    return "diff.html", {**_base(request, f"Version {a} against {b}", "/registry"), "diff": found}


def deployments(board: Dashboard, request: Request, who: Viewer) -> Built:
    from keel.delivery.metrics import read_delivery, report_lines

    return "deployments.html", {
        **_base(request, "Deployments", "/deployments"),
        "events": readers.deployments(board.project),
        "target": readers.rollback_target(board.project) if who.admin else None,
        "delivery": report_lines(read_delivery(board.project).to_dict()),
    }


def rollback(board: Dashboard, request: Request, who: Viewer) -> Built:
    """The confirmation step before a rollback (admins only)."""
    target = readers.rollback_target(board.project)
    if target is None:
        raise DashboardError("there is no earlier production version to roll back to")
    from keel.training.registry import Registry

    return "rollback.html", {
        **_base(request, f"Roll back to version {target.version}?", "/deployments"),
        "target": target,
        "current": Registry(board.project.store).production(),
    }


def drift(board: Dashboard, request: Request, who: Viewer) -> Built:
    from keel.ui.drift import drift_view

    view = board.memo.get("drift", lambda: drift_view(board.project, time.time()))
    charts = [
        _figure(histogram_svg(c.labels, c.reference, c.current, f"{c.name}: reference and current"))
        for c in view.columns
    ]
    history = _chart(view.history, "Effect size per window") if view.history else ""
    return "drift.html", {
        **_base(request, "Drift", "/drift"),
        "view": view,
        "charts": charts,
        "history": history,
    }


def performance(board: Dashboard, request: Request, who: Viewer) -> Built:
    from keel.ui.traffic import log_files, performance_series

    days = 30

    def read() -> dict[str, list[Any]]:
        since = time.time() - days * _DAY
        labels = readers.feedback_labels(board.project, since)
        return performance_series(log_files(board.project, since), since, labels)

    found = board.memo.get("performance", read)
    accuracy = [("realised", found["realised"]), ("estimated", found["estimated"])]
    charts = [
        _figure(line_svg(accuracy, "Accuracy per day: realised and estimated", percent=True)),
        _figure(
            line_svg([("labelled", found["labelled"])], "Predictions with ground truth per day")
        ),
    ]
    return "performance.html", {
        **_base(request, "Performance", "/performance"),
        "days": days,
        "has_data": bool(found["estimated"] or found["realised"]),
        "charts": charts,
    }


def alerts(board: Dashboard, request: Request, who: Viewer) -> Built:
    active, resolved = readers.alerts(board.project)
    return "alerts.html", {
        **_base(request, "Alerts", "/alerts"),
        "active": active,
        "resolved": resolved,
        "anchor": runbook_anchor,
    }


def data(board: Dashboard, request: Request, who: Viewer) -> Built:
    return "data.html", {
        **_base(request, "Data", "/data"),
        "versions": readers.data_versions(board.project),
        "runs": readers.data_runs(board.project),
    }


def run(board: Dashboard, request: Request, who: Viewer) -> Built:
    from keel.data.catalog import Catalog

    found = Catalog(board.project.store).run(request.path_params["run_id"])
    findings = (
        sorted(found.report.findings, key=lambda f: f.status != "fail") if found.report else []
    )
    return "run.html", {
        **_base(request, f"Ingestion run {found.id[:12]}", "/data"),
        "run": found,
        "findings": findings,
    }


def runbook(board: Dashboard, request: Request, who: Viewer) -> Built:
    from keel.ui.render import render_html, runbook_for

    body = Markup(render_html(runbook_for(board.project, time.time()), standalone=False))
    return "runbook.html", {**_base(request, "On-call runbook", "/runbook"), "body": body}
