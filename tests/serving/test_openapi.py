"""/openapi.json against the server: each documented case is sent over real HTTP, and the
status, body and headers that come back must be the ones the document describes; every
status the document lists must be provoked by a case here (or named as tested elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import h11
import httpx
import jsonschema_rs
import pytest

from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import backend, create_key, over_http, write_config

SETTINGS = "rate_limit: 1000/second\ntimeout_ms: 2000\nmax_instances: 5\nmax_body_kb: 4\n"
SLOW = "body_timeout: 1s"
# documented statuses this file cannot provoke cheaply, and the test that provokes them
ELSEWHERE = {("/v1/feedback", "post", "503"): "tests/serving/test_feedback_outage.py"}


@dataclass(frozen=True)
class Served:
    """A running server: its URL, keys by what they may do, its document, its routes."""

    url: str
    keys: dict[str, str]
    document: dict[str, Any]
    routes: frozenset[str]


@dataclass(frozen=True)
class Case:
    """One request and the status it must get; ``server`` is "model" (a model is served)
    or "empty" (no model, serving.docs: key)."""

    name: str
    method: str
    path: str
    status: int
    key: str | None = "admin"
    body: bytes | None = None
    content_type: str | None = "application/json"
    server: str = "model"
    tries: int = 1  # send up to this many times until the status comes (rate limits)
    slow: bool = False  # send the headers and part of the body, then stall
    headers: dict[str, str] = field(default_factory=dict)


@contextmanager
def _served(root: Path, serving: str, model: bool) -> Iterator[Served]:
    root.mkdir()
    write_config(root, serving)
    with Project.open(root) as project:
        keys = {
            "predict": create_key(project, "predict"),
            "feedback": create_key(project, "feedback"),
            "admin": create_key(project, "predict", "feedback", "admin"),
            "limited": create_key(project, "predict", "feedback", "admin", rate_limit="1/hour"),
        }
        app = create_app(project, model=backend() if model else None)
        with over_http(app) as url:
            auth = {"Authorization": f"Bearer {keys['admin']}"}
            document = httpx.get(f"{url}/openapi.json", headers=auth, timeout=30).json()
            yield Served(url, keys, document, frozenset(path for path, _ in app.routes))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """A server with a model (docs public), and one without (docs behind a key)."""
    folder = tmp_path_factory.mktemp("openapi")
    with ExitStack() as stack:
        with_model = stack.enter_context(_served(folder / "m", SETTINGS + SLOW, model=True))
        empty = stack.enter_context(_served(folder / "e", SETTINGS + "docs: key", model=False))
        yield {"model": with_model, "empty": empty}


KEYED = [("/v1/status", "GET"), ("/metrics", "GET"), ("/v1/predict", "POST"),
         ("/v1/feedback", "POST")]  # fmt: skip
ONE = b'{"instance": {"tenure": 12, "spend": 55.5, "visits": 3}}'
FEEDBACK = b'{"prediction_id": "p1", "label": 1}'
CASES = [
    Case("alive", "GET", "/healthz", 200, key=None, content_type=None),
    Case("ready", "GET", "/readyz", 200, key=None, content_type=None),
    Case("status", "GET", "/v1/status", 200, key="predict", content_type=None),
    Case("metrics", "GET", "/metrics", 200, content_type=None),
    Case("predict", "POST", "/v1/predict", 200, body=ONE),
    Case("feedback", "POST", "/v1/feedback", 200, body=FEEDBACK),
    *[Case(f"no key {p}", m, p, 401, key=None) for p, m in KEYED],
    *[Case(f"rate limit {p}", m, p, 429, key="limited", tries=2) for p, m in KEYED],
    *[Case(f"too long {p}", m, p, 413, body=b" " * 5000) for p, m in KEYED],
    Case("metrics needs admin", "GET", "/metrics", 403, key="predict"),
    Case("predict needs predict", "POST", "/v1/predict", 403, key="feedback", body=ONE),
    Case("feedback needs feedback", "POST", "/v1/feedback", 403, key="predict", body=FEEDBACK),
    Case("jsonfoo predict", "POST", "/v1/predict", 415, body=ONE,
         content_type="application/jsonfoo"),
    Case("no type predict", "POST", "/v1/predict", 415, body=ONE, content_type=None),
    Case("jsonfoo feedback", "POST", "/v1/feedback", 415, body=FEEDBACK,
         content_type="application/jsonfoo"),
    Case("charset is json", "POST", "/v1/predict", 200, body=ONE,
         content_type="Application/JSON; charset=utf-8"),
    Case("not json", "POST", "/v1/predict", 400, body=b'{"instance": '),
    Case("no instances", "POST", "/v1/predict", 422, body=b'{"instances": []}'),
    Case("both envelopes", "POST", "/v1/predict", 422, body=b'{"instance": {}, "instances": [{}]}'),
    Case("explain null", "POST", "/v1/predict", 422, body=b'{"instance": {}, "explain": null}'),
    Case("refused row", "POST", "/v1/predict", 422,
         body=b'{"instance": {"tenure": "x", "spend": 1.0, "visits": 1}}'),
    Case("too many", "POST", "/v1/predict", 413, body=b'{"instances": [{}, {}, {}, {}, {}, {}]}'),
    Case("slow body", "POST", "/v1/predict", 408, body=ONE, slow=True),
    Case("bad feedback", "POST", "/v1/feedback", 422, body=b'{"label": 1}'),
    Case("string value", "POST", "/v1/feedback", 422,
         body=b'{"prediction_id": "p1", "label": 1, "value": "1.5"}'),
    Case("no model", "POST", "/v1/predict", 503, body=ONE, server="empty"),
    Case("not ready", "GET", "/readyz", 503, key=None, content_type=None, server="empty"),
]  # fmt: skip


def send(served: Served, case: Case) -> tuple[int, dict[str, str], bytes]:
    """Send the case; (status, lower-cased headers, body)."""
    headers = dict(case.headers)
    if case.key is not None:
        headers["Authorization"] = f"Bearer {served.keys[case.key]}"
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    if case.slow:
        return _stalled(served.url, case.path, headers, case.body or b"")
    for _ in range(case.tries):
        response = httpx.request(
            case.method, served.url + case.path, content=case.body, headers=headers, timeout=30
        )
        if response.status_code == case.status:
            break
    return response.status_code, dict(response.headers), response.content


def _stalled(url: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
    """A POST whose body stops half way: what the server answers while it waits."""
    import socket

    where = urlparse(url)
    connection = h11.Connection(h11.CLIENT)
    fields = [("Host", "t"), ("Content-Length", str(len(body))), *headers.items()]
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall(connection.send(h11.Request(method="POST", target=path, headers=fields)))
        sock.sendall(connection.send(h11.Data(data=body[: len(body) // 2])))
        status, found, parts = 0, {}, []
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                found = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, found, b"".join(parts)


def described(document: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    """The document's response for (path, method, status); fails when it has none."""
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, not documented"
    return dict(responses[str(status)])


def check_body(document: dict[str, Any], spec: dict[str, Any], headers: dict, body: bytes) -> None:
    media = headers.get("content-type", "").split(";")[0].strip()
    content = spec.get("content", {})
    assert media in content, f"{media} is not a documented body ({sorted(content)})"
    schema = content[media].get("schema", {})
    if media == "application/json":
        import orjson

        rooted = {**schema, "components": document["components"]}
        errors = [
            e.message for e in jsonschema_rs.validator_for(rooted).iter_errors(orjson.loads(body))
        ]
        assert errors == [], errors
    for name in spec.get("headers", {}):
        assert name.lower() in headers, f"the documented header {name} is missing"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_case_gets_the_documented_answer(servers: dict[str, Served], case: Case) -> None:
    """The case gets its status, and the status, body and headers are the documented ones."""
    served = servers[case.server]
    status, headers, body = send(served, case)
    assert status == case.status, body[:300]
    spec = described(servers["model"].document, case.path, case.method, status)
    check_body(servers["model"].document, spec, headers, body)


def test_every_documented_status_is_provoked(servers: dict[str, Served]) -> None:
    """Each (route, method, status) in the document is a case above or tested elsewhere:
    the document lists no status the server never sends."""
    document = servers["model"].document
    listed = {
        (path, method, status)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status in operation["responses"]
    }
    provoked = {(c.path, c.method.lower(), str(c.status)) for c in CASES}
    assert listed - provoked - set(ELSEWHERE) == set()


def test_the_document_covers_every_route_the_gateway_answers(servers: dict[str, Served]) -> None:
    """Every route the app answers, the docs' own pages aside, is in the document."""
    served = servers["model"]
    docs = {"/docs", "/docs/oauth2-redirect", "/openapi.json", "/docs/static"}
    assert served.routes - docs == set(served.document["paths"])


def test_instances_are_documented_as_one_to_max_instances(servers: dict[str, Served]) -> None:
    """The predict body says instances holds 1 to serving.max_instances (5 here) objects."""
    body = servers["model"].document["paths"]["/v1/predict"]["post"]["requestBody"]
    instances = body["content"]["application/json"]["schema"]["properties"]["instances"]
    assert (instances["minItems"], instances["maxItems"]) == (1, 5)


def test_the_docs_need_no_key_by_default(servers: dict[str, Served]) -> None:
    """serving.docs: public (the default): /docs and /openapi.json answer without a key."""
    url = servers["model"].url
    page = httpx.get(f"{url}/docs", timeout=30)
    document = httpx.get(f"{url}/openapi.json", timeout=30)
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert document.status_code == 200 and document.json()["info"]["title"] == "Keel model server"


def test_the_docs_need_a_key_when_configured(servers: dict[str, Served]) -> None:
    """serving.docs: key: /docs and /openapi.json answer 401 without a key."""
    url = servers["empty"].url
    codes = [
        httpx.get(f"{url}{path}", timeout=30).status_code for path in ("/docs", "/openapi.json")
    ]
    assert codes == [401, 401]


def test_swagger_ui_is_served_locally(servers: dict[str, Served]) -> None:
    """The docs page loads its script and style from this server, not from a CDN."""
    url = servers["model"].url
    page = httpx.get(f"{url}/docs", timeout=30).text
    script = httpx.get(f"{url}/docs/static/swagger-ui-bundle.js", timeout=30)
    assert "/docs/static/swagger-ui-bundle.js" in page and "/docs/static/swagger-ui.css" in page
    assert "cdn" not in page.lower() and script.status_code == 200 and len(script.content) > 100_000


def test_the_docs_page_opens_in_a_browser(servers: dict[str, Served]) -> None:
    """Headless Chromium renders /docs: every route is listed, the page shows no error,
    and no request leaves this server."""
    from tests.ui.test_browser import ARGS, CHROMIUM, SHOTS, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    url = servers["model"].url
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        errors = page.locator(".errors-wrapper").count()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "api-docs.png"), full_page=True)
        browser.close()
    assert {p.replace("\u200b", "") for p in paths} == set(servers["model"].document["paths"])
    assert errors == 0 and all(link.startswith(url) for link in requested), requested
