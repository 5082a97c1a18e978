"""API keys: how they look, how they are stored, and how a request's key is checked.

A key reads ``keel_<id>_<secret>``. The store keeps the id, the sha256 of the secret and
the scopes, never the key. The secret is 256 random bits, so one round of sha256 is the
right hash (a slow password hash protects guessable secrets, and costs every request).
The server holds the hashes in a ``KeyRing`` in memory, refreshed from the store in the
background: checking a key costs one dict lookup, one sha256 and one constant-time
comparison, and no database round trip.

Scopes: ``predict`` and ``feedback`` open those routes, ``viewer`` opens the dashboard
read-only (and no model route), ``admin`` opens everything. Revoking a key also ends its
dashboard sessions on every replica.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from keel.errors import ServingError
from keel.serving.tables import api_keys, ui_sessions
from keel.store.metadata import MetadataStore

__all__ = ["SCOPES", "ApiKey", "KeyRing", "KeyStore", "allows", "new_key", "split_key"]

SCOPES = ("predict", "feedback", "viewer", "admin")
_PREFIX = "keel_"
_ID_HEX = 12


@dataclass(frozen=True)
class ApiKey:
    """One stored key: who it is for, what it may do, and whether it was revoked."""

    key_id: str
    name: str
    secret_sha256: str
    scopes: tuple[str, ...]
    rate_limit: str | None
    created_at: float
    created_by: str
    revoked_at: float | None

    @classmethod
    def from_row(cls, row: sa.Row[tuple[object, ...]]) -> ApiKey:
        values = dict(row._mapping)
        values["scopes"] = tuple(str(values["scopes"]).split(","))
        return cls(**values)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, object]:
        """Everything about the key except its hash."""
        return {
            "id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "rate_limit": self.rate_limit,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "revoked_at": self.revoked_at,
        }


def new_key() -> tuple[str, str, str]:
    """A fresh key as ``(key, key_id, sha256 of its secret)``."""
    key_id = secrets.token_hex(_ID_HEX // 2)
    secret = secrets.token_urlsafe(32)
    return f"{_PREFIX}{key_id}_{secret}", key_id, _digest(secret)


def split_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    if len(key) < len(_PREFIX) + _ID_HEX + 2 or not key.startswith(_PREFIX):
        return None
    key_id, sep, secret = key[len(_PREFIX) :].partition("_")
    if len(key_id) != _ID_HEX or not sep or not secret:
        return None
    return key_id, secret


def allows(scopes: tuple[str, ...], needed: str | None) -> bool:
    """Whether a key with ``scopes`` may use a route needing ``needed`` (None: any key)."""
    return needed is None or needed in scopes or "admin" in scopes


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(scopes))
    unknown = [scope for scope in chosen if scope not in SCOPES]
    if unknown or not chosen:
        raise ServingError(
            f"'{', '.join(unknown) or 'nothing'}' is not a scope; use {', '.join(SCOPES)}"
        )
    return chosen


class KeyStore:
    """Create, list and revoke keys in the metadata store."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def create(
        self, name: str, scopes: Iterable[str], actor: str, rate_limit: str | None = None
    ) -> tuple[str, ApiKey]:
        """A new key and its record; the key itself is shown once and never stored."""
        chosen = _check_scopes(scopes)
        if rate_limit is not None:
            _check_rate(rate_limit)
        key, key_id, digest = new_key()
        values = {
            "key_id": key_id,
            "name": name,
            "secret_sha256": digest,
            "scopes": ",".join(chosen),
            "rate_limit": rate_limit,
            "created_at": time.time(),
            "created_by": actor,
            "revoked_at": None,
        }
        with self.store.begin() as connection:
            connection.execute(api_keys.insert().values(**values))
        return key, ApiKey(**{**values, "scopes": chosen})  # type: ignore[arg-type]

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.store.engine.connect() as connection:
            return [ApiKey.from_row(row) for row in connection.execute(query)]

    def revoke(self, ref: str) -> ApiKey:
        """Revoke the key with id (or unique name) ``ref``, ending its dashboard sessions."""
        found = [k for k in self.list() if ref in (k.key_id, k.name) and k.active]
        if len(found) != 1:
            state = "no active key" if not found else "several active keys"
            raise ServingError(f"{state} with id or name '{ref}'; `keel keys list` shows them")
        with self.store.begin() as connection:
            connection.execute(
                api_keys.update()
                .where(api_keys.c.key_id == found[0].key_id)
                .values(revoked_at=time.time())
            )
            connection.execute(ui_sessions.delete().where(ui_sessions.c.key_id == found[0].key_id))
        return found[0]


def _check_rate(text: str) -> None:
    from limits import parse

    try:
        parse(text)
    except ValueError:
        raise ServingError(f"'{text}' is not a rate limit; write it like 100/second") from None


class KeyRing:
    """The active keys in memory, by id: what the server checks each request against."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self._keys: dict[str, ApiKey] = {}
        self.replace(keys)

    def replace(self, keys: Iterable[ApiKey]) -> None:
        """Swap in a fresh set of keys (revoked ones are dropped) in one assignment."""
        self._keys = {key.key_id: key for key in keys if key.active}

    def __len__(self) -> int:
        return len(self._keys)

    def check(self, presented: str) -> ApiKey | None:
        """The key record matching ``presented``, or None (unknown, malformed, revoked)."""
        parts = split_key(presented)
        if parts is None:
            return None
        found = self._keys.get(parts[0])
        if found is None:
            return None
        digest = _digest(parts[1])
        return found if hmac.compare_digest(digest, found.secret_sha256) else None
