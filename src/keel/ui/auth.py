"""Who is looking: the login cookie, the key behind it, and the checks on every form.

Keys with the ``viewer`` or ``admin`` scope may sign in; only ``admin`` may act. A
``predict`` or ``feedback`` key is the kind built into client apps, so it cannot open the
dashboard. A form action must carry the session's CSRF token, and a browser's ``Origin``
(when sent) must be this site, as the browser saw it: behind a TLS-terminating proxy the
scheme comes from the forwarded headers of a trusted proxy (``serving.proxy``). The
cookie is also ``SameSite=Strict``, so another site cannot ride on it.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from keel.ui.session import LIFETIME, Session, SessionBook

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


__all__ = [
    "COOKIE",
    "LIFETIME",
    "SIGN_IN_SCOPES",
    "Viewer",
    "may_sign_in",
    "origin_ok",
    "read_form",
    "set_cookie",
    "viewer",
]

COOKIE = "keel_session"
SIGN_IN_SCOPES = ("viewer", "admin")
_MAX_FORM = 16 * 1024


@dataclass(frozen=True)
class Viewer:
    """A signed-in person: the key's name and scopes, and their session."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    session: Session
    csrf: str

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    @property
    def actor(self) -> str:
        return f"ui:{self.name}"

    def csrf_ok(self, token: str | None) -> bool:
        """Whether a form sent back this session's CSRF token."""
        return bool(token) and hmac.compare_digest(str(token), self.csrf)


def may_sign_in(scopes: tuple[str, ...]) -> bool:
    """Whether a key with ``scopes`` may open the dashboard (viewer or admin)."""
    return any(scope in SIGN_IN_SCOPES for scope in scopes)


def viewer(request: Request, sessions: SessionBook) -> Viewer | None:
    """The signed-in viewer, or None (no cookie, forged, expired, signed out, key revoked)."""
    now = time.time()
    signer = sessions.signer(now)
    session = signer.unsign(request.cookies.get(COOKIE), now)
    if session is None:
        return None
    key = sessions.key_for(session, now)
    if key is None or not may_sign_in(key.scopes):
        return None
    return Viewer(key.key_id, key.name, key.scopes, session, signer.csrf_token(session))


def set_cookie(response: Response, value: str, prefix: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(LIFETIME),
        path=prefix or "/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def origin_ok(request: Request) -> bool:
    """False when the browser says the form came from another site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.url.scheme}://{request.url.netloc}"


async def read_form(request: Request) -> dict[str, str] | None:
    """An urlencoded form body (first value per field), or None if too large or not a form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}
