"""Signing in behind a TLS-terminating proxy: real `keel serve` processes believe the
forwarded scheme only from the address ``serving.proxy`` trusts (requests sent from
127.0.0.2 stand for the ingress; from 127.0.0.1, which uvicorn would trust by default, for
anyone else)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from keel.project import Project
from tests.ui.conftest import Replicas

X_FORWARDED = {"x-forwarded-proto": "https"}
FORWARDED = {"forwarded": 'for="203.0.113.7:5555";proto=https'}
KINDS = [("a", X_FORWARDED), ("b", FORWARDED)]  # replica A reads X-Forwarded-*, B Forwarded


def https_login(
    base: str, key: str, headers: dict[str, str], source: str = "127.0.0.2"
) -> httpx.Response:
    """A login as a browser on the https page sends it, arriving from ``source``."""
    netloc = base.removeprefix("http://")
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.post(
            f"{base}/ui/login",
            data={"api_key": key, "next": "/ui/"},
            headers={"origin": f"https://{netloc}", **headers},
        )


@pytest.mark.parametrize(("replica", "headers"), KINDS, ids=["x-forwarded", "forwarded"])
def test_a_trusted_proxy_makes_the_https_login_pass(
    replicas: Replicas, replica: str, headers: dict[str, str]
) -> None:
    """With the trusted proxy's header saying https, the https origin matches: the login
    succeeds and the cookie is marked Secure."""
    response = https_login(getattr(replicas, replica), replicas.viewer, headers)
    assert response.status_code == 303, response.text
    assert "secure" in response.headers["set-cookie"].lower()


def test_without_the_forwarded_scheme_an_https_origin_is_refused(replicas: Replicas) -> None:
    """The same login without the proxy's header is refused: the server sees http."""
    assert https_login(replicas.a, replicas.viewer, {}).status_code == 400


@pytest.mark.parametrize(("replica", "headers"), KINDS, ids=["x-forwarded", "forwarded"])
def test_forged_headers_from_an_untrusted_address_are_ignored(
    replicas: Replicas, replica: str, headers: dict[str, str]
) -> None:
    """The header that lets the login through from the ingress is ignored from 127.0.0.1,
    so a client cannot talk its way past the origin check."""
    url = getattr(replicas, replica)
    response = https_login(url, replicas.viewer, headers, source="127.0.0.1")
    assert response.status_code == 400 and "keel_session" not in response.cookies


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("ingress", "is not an address or CIDR"),
        ("10.0.0.1/8", "has bits set past its prefix; write 10.0.0.0/8"),
    ],
)
def test_proxy_settings_that_are_not_addresses_are_refused(
    tmp_path: Path, entry: str, says: str
) -> None:
    """A trusted entry that is not an address or a CIDR is one sentence naming it."""
    from keel.errors import ConfigError

    config = f"name: shop\nserving:\n  proxy: {{trusted: ['{entry}']}}\n"
    (tmp_path / "keel.yaml").write_text(config)
    expected = re.escape(f"serving.proxy.trusted: '{entry}' {says}")
    with pytest.raises(ConfigError, match=expected):
        Project.open(tmp_path)
