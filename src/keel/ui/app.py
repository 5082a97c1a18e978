"""The dashboard's shell: the ``Dashboard`` every page and action is handed (routes are
``keel.ui.routes``: ``create_ui_app(project)`` answers every path under ``/ui``).

It does its own authentication (a login form and a signed session cookie), so the
serving layer hands it every path under the prefix before its own Bearer-key gateway.
Handlers that touch the stores are plain functions run in the thread pool, so a slow
query never stalls the model server's event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from keel.errors import DashboardError, KeelError
from keel.ui.auth import Viewer, origin_ok, read_form, viewer
from keel.ui.memo import Memo
from keel.ui.render import STYLESHEET, environment
from keel.ui.session import SessionBook

if TYPE_CHECKING:
    from starlette.requests import Request

    from keel.project import Project

__all__ = ["MEMO_SECONDS", "NAV", "Dashboard", "HealthProbe"]

MEMO_SECONDS = 30.0
"""How long traffic, drift and performance figures are reused before the log is read again."""

HealthProbe = Callable[[], Mapping[str, Any]]
Page = Callable[["Request", Viewer], tuple[str, dict[str, Any]]]
Action = Callable[["Request", Viewer, dict[str, str]], str]

NAV = (
    ("/", "Overview"),
    ("/registry", "Models"),
    ("/deployments", "Deployments"),
    ("/drift", "Drift"),
    ("/performance", "Performance"),
    ("/alerts", "Alerts"),
    ("/data", "Data"),
    ("/runbook", "Runbook"),
)
_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class Dashboard:
    """The project, its sessions (secrets and rows in the store) and the page plumbing."""

    def __init__(
        self, project: Project, prefix: str = "/ui", health: HealthProbe | None = None
    ) -> None:
        self.project = project
        self.prefix = prefix.rstrip("/")
        self.health = health
        self.sessions = SessionBook(project.store)
        self.memo = Memo(MEMO_SECONDS)

    def render(
        self, template: str, context: dict[str, Any], who: Viewer | None, status: int = 200
    ) -> HTMLResponse:
        here = context.pop("here", "")
        page = (
            environment()
            .get_template(template)
            .render(
                prefix=self.prefix,
                project=self.project.config.name,
                nav=NAV,
                here=here,
                viewer=who,
                notice=context.pop("notice", None),
                **context,
            )
        )
        return HTMLResponse(page, status, headers=_HEADERS)

    def refuse(self, status: int, message: str, who: Viewer | None = None) -> HTMLResponse:
        titles = {400: "Cannot do that", 401: "Sign in", 403: "Refused", 404: "Not found"}
        context = {"title": titles.get(status, "Cannot do that"), "message": message}
        return self.render("error.html", context, who, status)

    def page(self, build: Page, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """A GET route: signed-in viewers only; others are sent to the login form."""

        async def endpoint(request: Request) -> Response:
            who = await run_in_threadpool(viewer, request, self.sessions)
            if who is None:
                target = quote(
                    request.url.path + (f"?{request.url.query}" if request.url.query else "")
                )
                return RedirectResponse(f"{self.prefix}/login?next={target}", 303)
            if admin and not who.admin:
                return self.refuse(403, "Only a key with the admin scope can do this.", who)
            try:
                template, context = await run_in_threadpool(build, request, who)
            except DashboardError as error:
                return self.refuse(400, str(error), who)
            except KeelError as error:
                return self.refuse(404, str(error), who)
            return self.render(template, context, who)

        return endpoint

    def action(self, do: Action, admin: bool = True) -> Callable[[Request], Awaitable[Response]]:
        """A POST route: same-site form, signed-in viewer, valid CSRF token, admin scope."""

        async def endpoint(request: Request) -> Response:
            if not origin_ok(request):
                return self.refuse(403, "This form was sent from another site.")
            form = await read_form(request)
            if form is None:
                return self.refuse(400, "Send the form from the dashboard.")
            who = await run_in_threadpool(viewer, request, self.sessions)
            if who is None:
                return self.refuse(401, "Sign in first: your session is missing or has expired.")
            if not who.csrf_ok(form.get("csrf")):
                return self.refuse(403, "This form is stale or forged; reload the page.", who)
            if admin and not who.admin:
                return self.refuse(403, "Only a key with the admin scope can do this.", who)
            try:
                location = await run_in_threadpool(do, request, who, form)
            except KeelError as error:
                return self.refuse(409, str(error), who)
            return RedirectResponse(f"{self.prefix}{location}", 303)

        return endpoint

    def stylesheet(self, request: Request) -> Response:
        return FileResponse(
            STYLESHEET, media_type="text/css", headers={"cache-control": "max-age=300"}
        )
