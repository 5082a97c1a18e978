"""Signed session cookies and CSRF tokens, with ``hmac`` from the standard library.

A session is ``<payload>.<signature>``: the payload is base64url JSON holding the key id,
an expiry and a random nonce; the signature is HMAC-SHA256 over the payload with the
project's secret (``.keel/ui-secret``, created on first use, readable by its owner only).
The CSRF token of a session is an HMAC of its nonce, so it needs no server-side storage
and dies with the session. Signing and checking are pure; only ``load_secret`` does I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SECRET_FILE", "Session", "Signer", "load_secret"]

SECRET_FILE = "ui-secret"
_SECRET_BYTES = 32


@dataclass(frozen=True)
class Session:
    """Who is signed in (by key id), until when, and the nonce their CSRF token hangs on."""

    key_id: str
    expires_at: float
    nonce: str


class Signer:
    """Signs and checks session cookies and CSRF tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a session secret needs at least 16 bytes")
        self._secret = secret

    def _mac(self, purpose: str, text: str) -> str:
        message = f"{purpose}|{text}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, session: Session) -> str:
        """The cookie value for ``session``."""
        data = {"k": session.key_id, "e": session.expires_at, "n": session.nonce}
        payload = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
        return f"{payload}.{self._mac('session', payload)}"

    def unsign(self, value: str | None, now: float) -> Session | None:
        """The session in a cookie value, or None if it is forged, malformed or expired."""
        if not value or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(signature, self._mac("session", payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(str(data["k"]), float(data["e"]), str(data["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > now else None

    def csrf_token(self, session: Session) -> str:
        """The token every form of this session must send back."""
        return self._mac("csrf", session.nonce)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))

    @staticmethod
    def new_session(key_id: str, now: float, lifetime: float) -> Session:
        return Session(key_id, now + lifetime, secrets.token_urlsafe(16))


def load_secret(state_dir: Path) -> bytes:
    """The project's session secret, created (owner-only) the first time it is needed."""
    path = state_dir / SECRET_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".{SECRET_FILE}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(_SECRET_BYTES))
        try:
            os.link(tmp, path)  # atomic: a file that exists is always complete
        except FileExistsError:
            pass  # another process won the race; use theirs
        finally:
            tmp.unlink()
    return bytes.fromhex(path.read_text().strip())
