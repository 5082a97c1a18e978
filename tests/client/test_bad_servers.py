"""The client against servers that misbehave: none at all, a 429 storm, HTML, silence."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import orjson
import pytest

import keel
from keel.client import RetryPolicy
from keel.errors import RateLimited, ServerUnreachable, ServiceUnavailable, UnexpectedResponse
from tests.client.conftest import Script
from tests.helpers import free_port
from tests.serving.helpers import GOOD

ANSWER = orjson.dumps(
    {
        "predictions": [
            {
                "prediction_id": "p" * 32,
                "model_version": "churn@1",
                "prediction": 1,
                "label": 1,
                "probability": 0.7,
                "confidence": 0.7,
                "fallback": None,
            }
        ],
        "model_version": "churn@1",
        "latency_ms": 0.2,
    }
)
JSON = {"content-type": "application/json"}
LIMITED = orjson.dumps({"error": "rate limit reached"})


def storm(refusals: int, retry_after: str) -> Script:
    """429 with Retry-After for the first ``refusals`` requests, then a prediction."""

    def answer(n: int) -> tuple[int, dict[str, str], bytes]:
        if n < refusals:
            return 429, {**JSON, "retry-after": retry_after}, LIMITED
        return 200, JSON, ANSWER

    return Script(answer)


def test_a_dead_port_is_a_clear_error_in_bounded_time() -> None:
    """Nothing listening: ServerUnreachable naming the URL, after the few backed-off
    connection retries (well inside a generous deadline, never a hang)."""
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with keel.Client(url, "k", timeout=2) as client, pytest.raises(ServerUnreachable) as caught:
        client.predict(GOOD)
    assert time.monotonic() - started < 30
    assert url in str(caught.value) and "tried 4 times" in str(caught.value)


def test_a_429_storm_is_waited_out(scripted: Callable[[Script], str]) -> None:
    """Two 429s with Retry-After: 1, then 200: the client waits as asked and answers."""
    script = storm(2, "1")
    with keel.Client(scripted(script), "k") as client:
        answer = client.predict(GOOD)
    gaps = [later - earlier for earlier, later in zip(script.seen, script.seen[1:], strict=False)]
    assert answer.label == 1 and len(script.seen) == 3
    assert min(gaps) >= 0.95  # each retry waited the second the server asked for


def test_a_429_storm_past_the_retry_budget_gives_up(scripted: Callable[[Script], str]) -> None:
    """An endless 429 storm: 1 + 3 attempts, then RateLimited with the server's message."""
    script = storm(1_000, "0")
    with keel.Client(scripted(script), "k") as client, pytest.raises(RateLimited) as caught:
        client.predict(GOOD)
    assert len(script.seen) == 4 and caught.value.message == "rate limit reached"


def test_a_retry_after_beyond_max_wait_gives_up_at_once(scripted: Callable[[Script], str]) -> None:
    """Retry-After: 120 with max_wait 30: one request, and the error says 120 s."""
    script = storm(1_000, "120")
    with keel.Client(scripted(script), "k") as client, pytest.raises(RateLimited) as caught:
        client.predict(GOOD)
    assert len(script.seen) == 1 and caught.value.retry_after == 120
    assert "retry after 120 s" in str(caught.value)


def test_a_503_for_feedback_is_sent_again(scripted: Callable[[Script], str]) -> None:
    """A 503 with Retry-After: 0, then a receipt: feedback is stored on the second try."""

    def answer(n: int) -> tuple[int, dict[str, str], bytes]:
        if n == 0:
            body = orjson.dumps({"error": "the metadata store is unreachable", "stored": 0})
            return 503, {**JSON, "retry-after": "0"}, body
        return 200, JSON, b'{"stored": 1}'

    script = Script(answer)
    with keel.Client(scripted(script), "k") as client:
        stored = client.feedback("p1", 1)
    assert stored == 1 and len(script.seen) == 2


def test_a_503_that_lasts_is_service_unavailable(scripted: Callable[[Script], str]) -> None:
    """503 on every try: ServiceUnavailable carrying the server's sentence."""
    body = orjson.dumps({"error": "no model is loaded"})
    script = Script(lambda n: (503, {**JSON, "retry-after": "0"}, body))
    with keel.Client(scripted(script), "k") as client, pytest.raises(ServiceUnavailable) as e:
        client.predict(GOOD)
    assert e.value.message == "no model is loaded" and len(script.seen) == 4


@pytest.mark.parametrize("status", [200, 502])
def test_an_html_page_is_a_clear_error(scripted: Callable[[Script], str], status: int) -> None:
    """A proxy's HTML page is UnexpectedResponse naming the status and the content type."""
    page = b"<html><body><h1>Bad Gateway</h1></body></html>"
    script = Script(lambda n: (status, {"content-type": "text/html"}, page))
    with keel.Client(scripted(script), "k") as client, pytest.raises(UnexpectedResponse) as e:
        client.predict(GOOD)
    assert f"answered {status} with text/html" in str(e.value)


def test_a_silent_server_times_out_predict_once(silent: tuple[str, list[socket.socket]]) -> None:
    """A server that never answers: predict (not idempotent) times out without a retry."""
    url, accepted = silent
    with keel.Client(url, "k", timeout=0.3) as client, pytest.raises(ServerUnreachable) as e:
        client.predict(GOOD)
    assert "no answer in time (tried once)" in str(e.value) and len(accepted) == 1


def test_a_silent_server_times_out_status_after_retries(
    silent: tuple[str, list[socket.socket]],
) -> None:
    """status() is idempotent: it is sent again after each timeout, then gives up."""
    url, accepted = silent
    policy = RetryPolicy(retries=2, backoff=0.05)
    client = keel.Client(url, "k", timeout=0.3, retry=policy)
    with client, pytest.raises(ServerUnreachable, match="tried 3 times"):
        client.status()
    deadline = time.monotonic() + 10
    while len(accepted) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(accepted) == 3


@pytest.mark.anyio
async def test_the_async_client_waits_out_a_429_storm(scripted: Callable[[Script], str]) -> None:
    """AsyncClient: one 429 with Retry-After: 1, then 200; it waits and answers."""
    script = storm(1, "1")
    async with keel.AsyncClient(scripted(script), "k") as client:
        answer = await client.predict(GOOD)
    assert answer.prediction_id == "p" * 32 and script.seen[1] - script.seen[0] >= 0.95
