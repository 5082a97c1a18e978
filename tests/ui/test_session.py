"""Session cookies and CSRF tokens: signed with hmac, checked in constant time, expiring."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from keel.ui.session import SECRET_FILE, Session, Signer, load_secret

SECRET = b"k" * 32
SESSION = Session("abc123def456", expires_at=1_000.0, nonce="n0nce")


def test_signed_session_round_trips() -> None:
    """What is signed is read back unchanged before it expires."""
    signer = Signer(SECRET)
    assert signer.unsign(signer.sign(SESSION), now=999.0) == SESSION


def test_expired_session_is_refused() -> None:
    """A session past its expiry is no session."""
    signer = Signer(SECRET)
    assert signer.unsign(signer.sign(SESSION), now=1_000.0) is None


def test_other_secret_cannot_read_the_cookie() -> None:
    """A cookie signed by another project's secret is refused."""
    value = Signer(b"x" * 32).sign(SESSION)
    assert Signer(SECRET).unsign(value, now=0.0) is None


def test_tampered_payload_is_refused() -> None:
    """Changing the payload (another key id) breaks the signature."""
    signer = Signer(SECRET)
    payload, signature = signer.sign(SESSION).split(".")
    other = signer.sign(Session("000000000000", 1_000.0, "n0nce")).split(".")[0]
    assert signer.unsign(f"{other}.{signature}", now=0.0) is None
    assert signer.unsign(f"{payload}.{signature}", now=0.0) == SESSION


@pytest.mark.parametrize("value", [None, "", "no-dot", "a.b.c", "!!!.00", "e30.00"])
def test_malformed_cookies_are_refused(value: str | None) -> None:
    """Anything that is not a signed payload reads as no session."""
    assert Signer(SECRET).unsign(value, now=0.0) is None


def test_signed_but_incomplete_payload_is_refused() -> None:
    """A correctly signed payload missing fields is still no session."""
    signer = Signer(SECRET)
    payload = "e30"  # base64url of {}
    assert signer.unsign(f"{payload}.{signer._mac('session', payload)}", now=0.0) is None


def test_csrf_token_belongs_to_its_session() -> None:
    """A session's token passes; another session's token and no token do not."""
    signer = Signer(SECRET)
    other = Session(SESSION.key_id, SESSION.expires_at, "other")
    assert signer.csrf_ok(SESSION, signer.csrf_token(SESSION))
    assert not signer.csrf_ok(SESSION, signer.csrf_token(other))
    assert not signer.csrf_ok(SESSION, None)


def test_short_secrets_are_refused() -> None:
    """A secret under 16 bytes is a bug, not a setting."""
    with pytest.raises(ValueError, match="16 bytes"):
        Signer(b"short")


def test_secret_is_created_once_and_kept_private(tmp_path: Path) -> None:
    """The first call creates an owner-only secret; later calls read the same one."""
    first = load_secret(tmp_path / ".keel")
    assert load_secret(tmp_path / ".keel") == first and len(first) == 32
    mode = stat.S_IMODE((tmp_path / ".keel" / SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    assert [p.name for p in (tmp_path / ".keel").iterdir()] == [SECRET_FILE]
