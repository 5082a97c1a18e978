"""The dashboard as a Starlette app: ``create_ui_app(project)``, every route under ``/ui``.

Pages (``keel.ui.pages``) and actions (``keel.ui.actions``) are plain functions of the
``Dashboard`` (``keel.ui.app``); this module binds them to paths, so neither imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from keel.ui import actions, pages
from keel.ui.app import Dashboard, HealthProbe

if TYPE_CHECKING:
    from starlette.requests import Request

    from keel.project import Project

__all__ = ["create_ui_app", "ui_routes"]


def ui_routes(
    project: Project, prefix: str = "/ui", health: HealthProbe | None = None
) -> list[Route]:
    """Every dashboard route, with full paths under ``prefix``."""
    board = Dashboard(project, prefix, health)
    p = board.prefix
    get = [
        ("/", pages.overview), ("/registry", pages.registry), ("/registry/diff", pages.diff),
        ("/registry/{version:int}", pages.version), ("/deployments", pages.deployments),
        ("/deployments/rollback", pages.rollback), ("/drift", pages.drift),
        ("/performance", pages.performance), ("/alerts", pages.alerts), ("/data", pages.data),
        ("/data/runs/{run_id}", pages.run), ("/runbook", pages.runbook),
    ]  # fmt: skip
    post = [
        ("/alerts/{alert_id}/ack", actions.acknowledge),
        ("/alerts/{alert_id}/resolve", actions.resolve),
        ("/deployments/rollback", actions.rollback),
    ]
    routes = [
        Route(f"{p}{path}", board.page(partial(build, board), admin=path.endswith("/rollback")))
        for path, build in get
    ]
    routes += [
        Route(f"{p}{path}", board.action(partial(do, board)), methods=["POST"]) for path, do in post
    ]
    return [
        *routes,
        Route(f"{p}/login", actions.login_form(board), methods=["GET"]),
        Route(f"{p}/login", actions.login(board), methods=["POST"]),
        Route(f"{p}/logout", actions.logout(board), methods=["POST"]),
        Route(f"{p}/static/keel.css", board.stylesheet, methods=["GET"]),
        Route(p, _slash(p)),
    ]


def _slash(prefix: str) -> Callable[[Request], Response]:
    def redirect(request: Request) -> Response:
        return RedirectResponse(f"{prefix}/", 307)

    return redirect


def create_ui_app(
    project: Project, prefix: str = "/ui", health: HealthProbe | None = None
) -> Starlette:
    """The dashboard as one ASGI app answering every path under ``prefix``.

    ``health``, when the model server passes one, returns what ``/readyz`` knows.
    """
    return Starlette(routes=ui_routes(project, prefix, health))
