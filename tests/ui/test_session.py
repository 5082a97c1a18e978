"""Session cookies and CSRF tokens (signed with hmac, checked in constant time, expiring),
and the secrets and sessions the store keeps for every replica."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from keel.serving.keys import KeyStore
from keel.serving.tables import ui_secrets, ui_sessions
from keel.store.metadata import MetadataStore
from keel.ui.session import LIFETIME, Session, SessionBook, Signer, accepted_secrets

SECRET = b"k" * 32
SESSION = Session("abc123def456", expires_at=1_000.0, nonce="n0nce", generation=1)


def test_signed_session_round_trips() -> None:
    """What is signed is read back unchanged before it expires."""
    signer = Signer({1: SECRET})
    assert signer.unsign(signer.sign(SESSION), now=999.0) == SESSION


def test_expired_session_is_refused() -> None:
    """A session past its expiry is no session."""
    signer = Signer({1: SECRET})
    assert signer.unsign(signer.sign(SESSION), now=1_000.0) is None


def test_other_secret_cannot_read_the_cookie() -> None:
    """A cookie signed by another project's secret is refused."""
    value = Signer({1: b"x" * 32}).sign(SESSION)
    assert Signer({1: SECRET}).unsign(value, now=0.0) is None


def test_tampered_payload_is_refused() -> None:
    """Changing the payload (another key id) breaks the signature."""
    signer = Signer({1: SECRET})
    generation, payload, signature = signer.sign(SESSION).split(".")
    other = signer.sign(Session("000000000000", 1_000.0, "n0nce")).split(".")[1]
    assert signer.unsign(f"{generation}.{other}.{signature}", now=0.0) is None
    assert signer.unsign(f"{generation}.{payload}.{signature}", now=0.0) == SESSION


def test_a_cookie_names_the_generation_that_signed_it() -> None:
    """The newest secret signs; a cookie relabelled with another generation is refused."""
    signer = Signer({1: b"o" * 32, 2: SECRET})
    value = signer.sign(SESSION)
    assert value.startswith("2.")
    assert signer.unsign("1" + value[1:], now=0.0) is None


def test_an_older_accepted_secret_still_verifies() -> None:
    """A cookie signed before a rotation passes while its secret is still accepted, and
    keeps the CSRF token it was given."""
    old = Signer({1: SECRET})
    both = Signer({1: SECRET, 2: b"n" * 32})
    session = old.unsign(old.sign(SESSION), now=0.0)
    assert session is not None
    assert both.unsign(old.sign(SESSION), now=0.0) == SESSION
    assert both.csrf_ok(session, old.csrf_token(session))


@pytest.mark.parametrize(
    "value", [None, "", "no-dot", "a.b", "1.!!!.00", "1.e30.00", "x.e30.00", "9.e30.00"]
)
def test_malformed_cookies_are_refused(value: str | None) -> None:
    """Anything that is not a signed payload of a known generation reads as no session."""
    assert Signer({1: SECRET}).unsign(value, now=0.0) is None


def test_signed_but_incomplete_payload_is_refused() -> None:
    """A correctly signed payload missing fields is still no session."""
    signer = Signer({1: SECRET})
    signed = "1.e30"  # base64url of {}
    assert signer.unsign(f"{signed}.{signer._mac(1, 'session', signed)}", now=0.0) is None


def test_csrf_token_belongs_to_its_session() -> None:
    """A session's token passes; another session's token and no token do not."""
    signer = Signer({1: SECRET})
    other = Session(SESSION.key_id, SESSION.expires_at, "other", 1)
    assert signer.csrf_ok(SESSION, signer.csrf_token(SESSION))
    assert not signer.csrf_ok(SESSION, signer.csrf_token(other))
    assert not signer.csrf_ok(SESSION, None)


def test_short_secrets_are_refused() -> None:
    """A secret under 16 bytes is a bug, not a setting."""
    with pytest.raises(ValueError, match="16 bytes"):
        Signer({1: b"short"})


@pytest.mark.parametrize(
    ("now", "kept"),
    [(150.0, [1, 2, 3]), (100.0 + LIFETIME, [2, 3]), (200.0 + LIFETIME, [3])],
)
def test_a_rotated_out_secret_is_accepted_for_one_lifetime(now: float, kept: list[int]) -> None:
    """Generation 1 (replaced at 100) holds until 100 + lifetime, generation 2 (replaced
    at 200) until 200 + lifetime; the newest always holds."""
    rows = [(2, b"b" * 32, 100.0), (1, b"a" * 32, 0.0), (3, b"c" * 32, 200.0)]
    assert sorted(accepted_secrets(rows, now)) == kept


def test_the_first_secret_is_created_once_for_every_replica(store_url: str) -> None:
    """Two replicas opening the same store get the same first secret, stored once."""
    first, second = MetadataStore.open(store_url), MetadataStore.open(store_url)
    try:
        cookie = SessionBook(first).signer(10.0).sign(SESSION)
        assert SessionBook(second).signer(10.0).unsign(cookie, now=0.0) == SESSION
        with first.engine.connect() as connection:
            rows = connection.execute(sa.select(sa.func.count()).select_from(ui_secrets))
            assert rows.scalar_one() == 1
    finally:
        first.engine.dispose()
        second.engine.dispose()


def test_rotation_deletes_secrets_past_their_lifetime(store_url: str) -> None:
    """A rotation more than a lifetime after the last one leaves only the two newest: the
    one before has nothing left to verify and is deleted from the store."""
    store = MetadataStore.open(store_url)
    try:
        book = SessionBook(store)
        book.signer(0.0)
        first = book.rotate(100.0)
        second = book.rotate(200.0 + LIFETIME)
        with store.engine.connect() as connection:
            stored = sorted(connection.execute(sa.select(ui_secrets.c.generation)).scalars())
    finally:
        store.engine.dispose()
    assert (first.generation, first.previous, first.previous_until) == (2, 1, 100.0 + LIFETIME)
    assert second.generation == 3 and stored == [2, 3]


def test_a_session_lives_until_it_is_ended_or_expires(store_url: str) -> None:
    """A started session finds its key until it is ended, or once it has expired."""
    store = MetadataStore.open(store_url)
    try:
        _, key = KeyStore(store).create("analyst", ["viewer"], "tester")
        book = SessionBook(store)
        now = time.time()
        alive, ended = (book.signer(now).new_session(key.key_id, now) for _ in range(2))
        for session in (alive, ended):
            book.start(session, now)
        book.end(ended)
        found = [book.key_for(s, now) is not None for s in (alive, ended)]
        expired = book.key_for(alive, alive.expires_at)
    finally:
        store.engine.dispose()
    assert found == [True, False] and expired is None


def test_revoking_a_key_deletes_its_sessions(store_url: str) -> None:
    """After a revoke the key's session rows are gone, and other keys' sessions stay."""
    store = MetadataStore.open(store_url)
    try:
        keys = KeyStore(store)
        gone, kept = (keys.create(name, ["viewer"], "tester")[1] for name in ("a", "b"))
        book = SessionBook(store)
        now = time.time()
        for key in (gone, kept):
            book.start(book.signer(now).new_session(key.key_id, now), now)
        keys.revoke("a")
        with store.engine.connect() as connection:
            left = list(connection.execute(sa.select(ui_sessions.c.key_id)).scalars())
    finally:
        store.engine.dispose()
    assert left == [kept.key_id]
