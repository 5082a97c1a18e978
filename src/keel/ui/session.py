"""Dashboard sessions: signed cookies, CSRF tokens, and their rows in the metadata store.

A cookie is ``<generation>.<payload>.<signature>``: the payload is base64url JSON holding
the key id, an expiry and a random nonce; the signature is HMAC-SHA256 over generation
and payload with that generation's secret. The secrets live in the metadata store
(``keel_ui_secrets``), so every replica signs and checks with the same ones: the first
is created on first use, ``keel keys rotate-ui-secret`` adds the next, and the one before
is still accepted for one session lifetime so nobody signed in is thrown out.

A signature only proves the cookie was issued here; the session must also have a row
(``keel_ui_sessions``), which signing out deletes, so a copied cookie dies on every
replica at once. The CSRF token of a session is an HMAC of its nonce. ``Signer`` and
``accepted_secrets`` are pure; ``SessionBook`` is the thin shell over the store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from keel.serving.tables import api_keys, ui_secrets, ui_sessions

if TYPE_CHECKING:
    from keel.serving.keys import ApiKey
    from keel.store.metadata import MetadataStore

__all__ = [
    "LIFETIME",
    "Rotation",
    "Session",
    "SessionBook",
    "Signer",
    "accepted_secrets",
    "session_id",
]

LIFETIME = 12 * 3600.0
"""How long a session lasts, and how long a rotated-out secret is still accepted."""

_SECRET_BYTES = 32


@dataclass(frozen=True)
class Session:
    """Who is signed in (by key id), until when, the nonce their CSRF token hangs on, and
    the secret generation that signed the cookie."""

    key_id: str
    expires_at: float
    nonce: str
    generation: int = 0


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: the new generation, and until when the previous one holds."""

    generation: int
    rotated_at: float
    previous: int | None
    previous_until: float | None


class Signer:
    """Signs with the newest secret; checks cookies and CSRF tokens with any accepted one."""

    def __init__(self, secrets_by_generation: Mapping[int, bytes]) -> None:
        if not secrets_by_generation:
            raise ValueError("a signer needs at least one secret")
        if any(len(secret) < 16 for secret in secrets_by_generation.values()):
            raise ValueError("a session secret needs at least 16 bytes")
        self._secrets = dict(secrets_by_generation)
        self.generation = max(self._secrets)

    def _mac(self, generation: int, purpose: str, text: str) -> str:
        message = f"{purpose}|{text}".encode()
        return hmac.new(self._secrets[generation], message, hashlib.sha256).hexdigest()

    def sign(self, session: Session) -> str:
        """The cookie value for ``session``, signed with the newest secret."""
        data = {"k": session.key_id, "e": session.expires_at, "n": session.nonce}
        payload = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
        signed = f"{self.generation}.{payload}"
        return f"{signed}.{self._mac(self.generation, 'session', signed)}"

    def unsign(self, value: str | None, now: float) -> Session | None:
        """The session in a cookie value, or None if forged, malformed, expired, or signed
        with a secret no longer accepted."""
        if not value or value.count(".") != 2:
            return None
        generation_text, payload, signature = value.split(".")
        if not generation_text.isdigit() or int(generation_text) not in self._secrets:
            return None
        generation = int(generation_text)
        expected = self._mac(generation, "session", f"{generation}.{payload}")
        if not hmac.compare_digest(signature, expected):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(str(data["k"]), float(data["e"]), str(data["n"]), generation)
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > now else None

    def csrf_token(self, session: Session) -> str:
        """The token every form of this session must send back."""
        known = session.generation in self._secrets
        return self._mac(session.generation if known else self.generation, "csrf", session.nonce)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))

    def new_session(self, key_id: str, now: float, lifetime: float = LIFETIME) -> Session:
        return Session(key_id, now + lifetime, secrets.token_urlsafe(16), self.generation)


def accepted_secrets(
    rows: Iterable[tuple[int, bytes, float]], now: float, lifetime: float = LIFETIME
) -> dict[int, bytes]:
    """The secrets that still verify cookies, by generation, from ``(generation, secret,
    created_at)`` rows: the newest, and each older one until ``lifetime`` after the next
    generation was created (by then every cookie it signed has expired)."""
    ordered = sorted(rows)
    kept = {generation: secret for generation, secret, _ in ordered[-1:]}
    for (generation, secret, _), (_, _, retired_at) in itertools.pairwise(ordered):
        if now < retired_at + lifetime:
            kept[generation] = secret
    return kept


def session_id(session: Session) -> str:
    """The stored id of a session: the sha256 of its nonce, which the cookie carries."""
    return hashlib.sha256(session.nonce.encode()).hexdigest()


class SessionBook:
    """The dashboard's secrets and sessions in the metadata store, shared by replicas."""

    def __init__(self, store: MetadataStore, lifetime: float = LIFETIME) -> None:
        self.store = store
        self.lifetime = lifetime

    def signer(self, now: float) -> Signer:
        """A signer over the accepted secrets, creating the first secret if there is none."""
        rows = self._secret_rows()
        if not rows:
            self._add_secret(1, now)
            rows = self._secret_rows()
        return Signer(accepted_secrets(rows, now, self.lifetime))

    def rotate(self, now: float) -> Rotation:
        """Make a new secret current; the one before it verifies for one more lifetime."""
        rows = self._secret_rows()
        previous = max((row[0] for row in rows), default=None)
        generation = (previous or 0) + 1
        self._add_secret(generation, now)
        self._forget_retired(now)
        until = None if previous is None else now + self.lifetime
        return Rotation(generation, now, previous, until)

    def start(self, session: Session, now: float) -> None:
        """Record a new session (and drop the rows of sessions that have expired)."""
        row = {
            "session_id": session_id(session),
            "key_id": session.key_id,
            "created_at": now,
            "expires_at": session.expires_at,
        }
        with self.store.begin() as connection:
            connection.execute(ui_sessions.delete().where(ui_sessions.c.expires_at <= now))
            connection.execute(ui_sessions.insert().values(**row))

    def key_for(self, session: Session, now: float) -> ApiKey | None:
        """The active key behind a live session; None once signed out, expired or revoked."""
        from keel.serving.keys import ApiKey

        query = (
            sa.select(api_keys)
            .join(ui_sessions, ui_sessions.c.key_id == api_keys.c.key_id)
            .where(ui_sessions.c.session_id == session_id(session))
            .where(ui_sessions.c.key_id == session.key_id)
            .where(ui_sessions.c.expires_at > now)
            .where(api_keys.c.revoked_at.is_(None))
        )
        with self.store.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else ApiKey.from_row(row)

    def end(self, session: Session) -> None:
        """Sign a session out on every replica."""
        with self.store.begin() as connection:
            connection.execute(
                ui_sessions.delete().where(ui_sessions.c.session_id == session_id(session))
            )

    def _secret_rows(self) -> list[tuple[int, bytes, float]]:
        query = sa.select(ui_secrets.c.generation, ui_secrets.c.secret, ui_secrets.c.created_at)
        with self.store.engine.connect() as connection:
            return [(g, bytes.fromhex(s), t) for g, s, t in connection.execute(query)]

    def _add_secret(self, generation: int, now: float) -> None:
        """Insert one generation; if another replica inserted it first, theirs stands."""
        row = {"generation": generation, "secret": secrets.token_hex(_SECRET_BYTES)}
        try:
            with self.store.begin() as connection:
                connection.execute(ui_secrets.insert().values(**row, created_at=now))
        except sa.exc.IntegrityError:
            pass

    def _forget_retired(self, now: float) -> None:
        """Delete secrets that no longer verify anything, so none lingers in the store."""
        kept = accepted_secrets(self._secret_rows(), now, self.lifetime)
        with self.store.begin() as connection:
            connection.execute(ui_secrets.delete().where(ui_secrets.c.generation.not_in(kept)))
