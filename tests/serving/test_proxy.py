"""Reading RFC 7239 ``Forwarded`` headers: which hop speaks for the browser."""

from __future__ import annotations

import ipaddress

import pytest

from keel.serving.proxy import forwarded_hop, parse_forwarded

INGRESS = [ipaddress.ip_network("10.0.0.0/8")]


def test_parameters_are_read_unquoted_and_case_insensitively() -> None:
    """Names are lower-cased and quotes dropped; each comma starts a hop."""
    hops = parse_forwarded('For="[2001:db8::1]:443";Proto=https, for=10.0.0.5;proto=http')
    assert hops == [
        {"for": "[2001:db8::1]:443", "proto": "https"},
        {"for": "10.0.0.5", "proto": "http"},
    ]


def test_malformed_pairs_are_skipped() -> None:
    """A pair without ``=`` or without a name is dropped; the rest of the hop stays."""
    assert parse_forwarded("proto=https;garbage;=x") == [{"proto": "https"}]


@pytest.mark.parametrize(
    ("header", "proto"),
    [
        ("for=203.0.113.7;proto=https", "https"),
        # the outer ingress saw https from the browser; an inner trusted proxy wrote http
        ("for=203.0.113.7;proto=https, for=10.0.0.5;proto=http", "https"),
        # a client-written hop before the browser's address is not believed
        ("for=198.51.100.1;proto=http, for=203.0.113.7;proto=https", "https"),
    ],
)
def test_the_hop_about_the_first_untrusted_address_is_used(header: str, proto: str) -> None:
    """Walking back from the last hop past trusted proxies, the first hop naming an
    outside address is the one the outermost trusted proxy wrote."""
    assert forwarded_hop(parse_forwarded(header), INGRESS)["proto"] == proto


def test_when_every_hop_is_trusted_the_first_is_used() -> None:
    """A request that came from inside (every ``for`` trusted) reads the first hop."""
    hops = parse_forwarded("for=10.0.0.9;proto=https, for=10.0.0.5;proto=http")
    assert forwarded_hop(hops, INGRESS)["proto"] == "https"
