"""API keys: stored hashed, checked in memory, revoked for good."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from keel.errors import ServingError
from keel.serving import KeyRing, KeyStore
from keel.serving.keys import allows, split_key
from keel.serving.tables import api_keys
from keel.store.metadata import MetadataStore


@pytest.fixture
def keys(store_url: str) -> Iterator[KeyStore]:
    store = MetadataStore.open(store_url)
    yield KeyStore(store)
    store.close()


def test_a_created_key_checks_against_the_ring(keys: KeyStore) -> None:
    """A fresh key, loaded into a key ring, is recognised with its scopes."""
    key, record = keys.create("app", ["predict"], "tester")
    found = KeyRing(keys.list()).check(key)
    assert found is not None and found.scopes == ("predict",) and found.key_id == record.key_id


def test_the_store_never_holds_the_key(keys: KeyStore) -> None:
    """Only the sha256 of the secret is stored: the key text appears in no column."""
    key, _ = keys.create("app", ["predict"], "tester")
    with keys.store.engine.connect() as connection:
        row = connection.execute(sa.select(api_keys)).one()
    assert all(key not in str(value) and split_key(key)[1] not in str(value) for value in row)  # type: ignore[index]


def test_a_revoked_key_leaves_the_ring(keys: KeyStore) -> None:
    """After revoke, a ring built from the store no longer accepts the key."""
    key, record = keys.create("app", ["predict"], "tester")
    keys.revoke(record.key_id)
    assert KeyRing(keys.list()).check(key) is None


@pytest.mark.parametrize(
    "presented",
    ["", "nonsense", "keel_", "keel_0123456789ab_", "keel_0123456789ab_wrongsecret"],
)
def test_malformed_or_unknown_keys_are_refused(presented: str) -> None:
    """Anything that is not a stored key is refused without an error."""
    assert KeyRing().check(presented) is None


def test_a_wrong_secret_for_a_known_id_is_refused(keys: KeyStore) -> None:
    """The right id with a different secret fails the constant-time comparison."""
    key, _ = keys.create("app", ["predict"], "tester")
    assert KeyRing(keys.list()).check(key[:-4] + "AAAA") is None


def test_an_unknown_scope_is_a_user_error(keys: KeyStore) -> None:
    """Asking for a scope that does not exist names the valid ones."""
    with pytest.raises(ServingError, match="predict, feedback, viewer, admin"):
        keys.create("app", ["everything"], "tester")


def test_admin_allows_every_scope() -> None:
    """An admin key may use routes that need predict or feedback."""
    assert allows(("admin",), "predict") and allows(("admin",), "feedback")
    assert not allows(("predict",), "feedback")


@pytest.mark.parametrize("needed", ["predict", "feedback", "admin"])
def test_a_viewer_key_opens_no_model_route(needed: str) -> None:
    """The viewer scope is for the dashboard: it opens no route that needs a scope."""
    assert not allows(("viewer",), needed)
