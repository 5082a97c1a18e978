"""Who is looking: the login cookie, the key behind it, and the checks on every form.

Any active key may view; only a key with the ``admin`` scope may act. A form action must
carry the session's CSRF token, and a browser's ``Origin`` (when sent) must be this
site; the cookie is also ``SameSite=Strict``, so another site cannot ride on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from keel.ui.session import Session, Signer

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from keel.project import Project

__all__ = ["COOKIE", "LIFETIME", "Viewer", "origin_ok", "read_form", "set_cookie", "viewer"]

COOKIE = "keel_session"
LIFETIME = 12 * 3600.0
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


def viewer(request: Request, project: Project, signer: Signer) -> Viewer | None:
    """The signed-in viewer, or None (no cookie, forged, expired, or key revoked)."""
    from keel.ui.readers import active_key

    session = signer.unsign(request.cookies.get(COOKIE), time.time())
    if session is None:
        return None
    key = active_key(project, session.key_id)
    if key is None:
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
