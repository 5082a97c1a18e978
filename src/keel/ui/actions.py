"""What the dashboard's forms do: sign in and out, acknowledge and resolve alerts, roll back.

Admin actions receive a viewer already checked for a same-site form, a valid CSRF token
and the admin scope (``Dashboard.action``); each records the key's name as the actor.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from keel.errors import DashboardError
from keel.ui.auth import COOKIE, Viewer, may_sign_in, origin_ok, read_form, set_cookie, viewer
from keel.ui.readers import check_key

if TYPE_CHECKING:
    from starlette.requests import Request

    from keel.monitoring.alerts import AlertBook
    from keel.ui.app import Dashboard

__all__ = ["acknowledge", "login", "login_form", "logout", "resolve", "rollback", "safe_next"]

Endpoint = Callable[["Request"], Awaitable[Response]]


def safe_next(prefix: str, target: str | None) -> str:
    """Where to go after signing in: a path inside the dashboard, never another site."""
    if target and target.startswith(f"{prefix}/") and not target.startswith("//"):
        return target
    return f"{prefix}/"


def login_form(board: Dashboard) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        target = safe_next(board.prefix, request.query_params.get("next"))
        return board.render("login.html", {"title": "Sign in", "next": target, "error": None}, None)

    return endpoint


_NOT_FOR_DASHBOARD = (
    "That key cannot open the dashboard: sign in with a key that has the viewer or admin scope."
)


def login(board: Dashboard) -> Endpoint:
    """Check the key and its scope; on success record the session, set the cookie and go
    where the viewer was going."""

    async def endpoint(request: Request) -> Response:
        form = await read_form(request)
        if form is None or not origin_ok(request):
            return board.refuse(400, "Sign in from the dashboard's login form.")
        target = safe_next(board.prefix, form.get("next"))
        key = await run_in_threadpool(check_key, board.project, form.get("api_key", ""))
        if key is None or not may_sign_in(key.scopes):
            error = "That key is not valid." if key is None else _NOT_FOR_DASHBOARD
            context = {"title": "Sign in", "next": target, "error": error}
            return board.render("login.html", context, None, 401 if key is None else 403)
        cookie = await run_in_threadpool(_start_session, board, key.key_id)
        response = RedirectResponse(target, 303)
        set_cookie(response, cookie, board.prefix, request.url.scheme == "https")
        return response

    return endpoint


def _start_session(board: Dashboard, key_id: str) -> str:
    """A new session for ``key_id``, recorded in the store; returns its cookie value."""
    now = time.time()
    signer = board.sessions.signer(now)
    session = signer.new_session(key_id, now)
    board.sessions.start(session, now)
    return signer.sign(session)


def logout(board: Dashboard) -> Endpoint:
    """End the session on every replica (needs the session's CSRF token, like any action)."""

    async def endpoint(request: Request) -> Response:
        form = await read_form(request) if origin_ok(request) else None
        who = await run_in_threadpool(viewer, request, board.sessions)
        if form is None or who is None or not who.csrf_ok(form.get("csrf")):
            return board.refuse(403, "This sign-out form is stale or forged; reload the page.")
        await run_in_threadpool(board.sessions.end, who.session)
        response = RedirectResponse(f"{board.prefix}/login", 303)
        response.delete_cookie(COOKIE, path=board.prefix or "/", httponly=True, samesite="strict")
        return response

    return endpoint


def _alert_book(board: Dashboard) -> AlertBook:
    from keel.monitoring.alerts import AlertBook
    from keel.monitoring.alerts.setup import sinks_from_config

    routes, _ = sinks_from_config(board.project.config.alerts)
    return AlertBook(board.project.store, routes)


def acknowledge(board: Dashboard, request: Request, who: Viewer, form: dict[str, str]) -> str:
    alert_id = request.path_params["alert_id"]
    _alert_book(board).acknowledge(alert_id, who.actor, time.time())
    return f"/alerts?done=acknowledged#a-{quote(alert_id)}"


def resolve(board: Dashboard, request: Request, who: Viewer, form: dict[str, str]) -> str:
    alert_id = request.path_params["alert_id"]
    _alert_book(board).resolve(alert_id, time.time())
    return "/alerts?done=resolved"


def rollback(board: Dashboard, request: Request, who: Viewer, form: dict[str, str]) -> str:
    """Make the previous production version the production model again, on record."""
    from keel.training.gating import deploy_allowed
    from keel.training.registry import Registry
    from keel.ui.readers import rollback_target

    target = rollback_target(board.project)
    asked = form.get("version", "")
    if target is None or asked != str(target.version):
        raise DashboardError("the version to roll back to changed; open the Deployments page again")
    reason = form.get("reason", "").strip()[:500]
    if not reason:
        raise DashboardError("say why you roll back: the reason goes into the status history")
    refusal = deploy_allowed(target.gate_passed, True, reason)
    if refusal is not None:
        raise DashboardError(f"version {target.version} {refusal}")
    why = f"rollback from the dashboard: {reason}"
    Registry(board.project.store).transition(
        target.version, "production", who.actor, why, forced=not target.gate_passed
    )
    return "/deployments?done=rolled-back"
