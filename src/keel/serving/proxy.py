"""The request as the browser made it, when a trusted proxy in front says so.

Behind a TLS-terminating ingress the server sees plain http from the ingress's address,
so the dashboard's same-origin check would compare ``https://`` (the browser's Origin)
with ``http://`` and refuse every login. ``serving.proxy`` names the proxies to believe
(addresses or CIDRs) and the header they set; a request from any other address keeps
what the connection says, so a forged header from outside changes nothing.

``x-forwarded`` uses uvicorn's ``ProxyHeadersMiddleware`` (``X-Forwarded-Proto`` and
``X-Forwarded-For``). uvicorn reads no ``Forwarded`` header (RFC 7239), so ``forwarded``
is the small middleware below around a pure parser. Either way the proxy must pass the
``Host`` header through (nginx, Traefik, Envoy and cloud load balancers do by default).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from keel.schema import ProxySpec

__all__ = ["ForwardedMiddleware", "behind_proxy", "forwarded_hop", "parse_forwarded"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = frozenset({"http", "https"})


def behind_proxy(app: ASGIApp, spec: ProxySpec | None) -> ASGIApp:
    """``app`` believing the forwarded headers of ``spec.trusted`` proxies (or ``app``)."""
    if spec is None:
        return app
    if spec.headers == "x-forwarded":
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        trusted = [str(network) for network in spec.trusted]
        middleware = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]
        return cast("ASGIApp", middleware)  # uvicorn types the same ASGI shape more narrowly
    return ForwardedMiddleware(app, spec.trusted)


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """The hops of a ``Forwarded`` header, first (the client's side) to last, each as
    lower-cased parameter names to unquoted values; a malformed pair is skipped."""
    hops = []
    for element in value.split(","):
        pairs = {}
        for pair in element.split(";"):
            name, sep, raw = pair.strip().partition("=")
            if sep and name:
                pairs[name.strip().lower()] = raw.strip().strip('"')
        hops.append(pairs)
    return hops


def forwarded_hop(hops: Sequence[dict[str, str]], trusted: Sequence[Network]) -> dict[str, str]:
    """The hop the outermost trusted proxy wrote: walking back from the last hop, the first
    whose ``for`` is not itself a trusted proxy (or the first hop, if all are)."""
    for hop in reversed(hops):
        if not _trusted(_address(hop.get("for", "")), trusted):
            return hop
    return hops[0] if hops else {}


def _address(node: str) -> str:
    """The address in a ``for`` node: ``192.0.2.1``, ``192.0.2.1:80``, ``[2001:db8::1]:80``."""
    if node.startswith("["):
        return node[1 : node.find("]")] if "]" in node else ""
    return node.rsplit(":", 1)[0] if node.count(":") == 1 else node


def _trusted(address: str | None, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in trusted)


class ForwardedMiddleware:
    """Sets the scheme and client address from a trusted proxy's ``Forwarded`` header."""

    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = list(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] == "http" and peer and _trusted(peer[0], self.trusted):
            values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"forwarded"]
            if values:
                scope = _apply(
                    dict(scope), forwarded_hop(parse_forwarded(",".join(values)), self.trusted)
                )
        await self.app(scope, receive, send)


def _apply(scope: Scope, hop: dict[str, str]) -> Scope:
    """``scope`` with the hop's scheme and client address, where they are well-formed."""
    proto = hop.get("proto", "").lower()
    if proto in _SCHEMES:
        scope["scheme"] = proto
    client = _address(hop.get("for", ""))
    if _is_ip(client):
        scope["client"] = (client, 0)
    return scope


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
