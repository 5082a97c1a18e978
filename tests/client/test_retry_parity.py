"""keel.Client and keel.AsyncClient decide alike: the same scripted failures from a real
server on loopback lead both to the same tries, the same waits and the same end."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

import keel
from keel.client import RetryPolicy
from tests.client.conftest import DROP, Script
from tests.serving.helpers import GOOD

JSON = {"content-type": "application/json"}
POLICY = RetryPolicy(retries=3, backoff=0.05, max_wait=30.0)
PREDICTED = orjson.dumps(
    {"predictions": [{"prediction_id": "p" * 32, "model_version": "churn@1", "prediction": 1}]}
)
STATUS = orjson.dumps(
    {
        "ready": True,
        "model": {"version": "churn@1", "task": "classification", "loaded_at": 1.0},
        "metadata_store": "reachable",
        "keys": 1,
        "uptime_s": 2.0,
        "pid": 7,
        "settings": {"max_instances": 10},
    }
)
STORED = orjson.dumps({"stored": 1})
OK = {"predict": PREDICTED, "status": STATUS, "feedback": STORED}

# each answer: (status, Retry-After or None); DROP closes the connection unanswered
Step = tuple[int, str | None]


@dataclass(frozen=True)
class Case:
    """A call, what the server answers to each try, and what the module docstring of
    keel.client promises: how many tries reach the server and the least wait before each
    retry (Retry-After when given, else 0.05 s doubled per failed try)."""

    call: str
    steps: tuple[Step, ...]
    tries: int
    waits: tuple[float, ...]


CASES = {
    "503 then 429 then an answer": Case(
        "predict", ((503, None), (429, "0"), (200, None)), 3, (0.05, 0.0)
    ),
    "429 past the retries": Case("predict", ((429, "0"),) * 5, 4, (0.0, 0.0, 0.0)),
    "Retry-After beyond max_wait": Case("status", ((503, "120"), (200, None)), 1, ()),
    "500 is not retried": Case("predict", ((500, None), (200, None)), 1, ()),
    "predict is not repeated after a drop": Case("predict", ((DROP, None), (200, None)), 1, ()),
    "status is repeated after drops": Case(
        "status", ((DROP, None), (DROP, None), (200, None)), 3, (0.05, 0.1)
    ),
    "feedback is repeated after a drop": Case("feedback", ((DROP, None), (200, None)), 2, (0.05,)),
    "drops past the retries": Case("status", ((DROP, None),) * 5, 4, (0.05, 0.1, 0.2)),
}


def _script(case: Case) -> Script:
    def answer(n: int) -> tuple[int, dict[str, str], bytes]:
        status, retry_after = case.steps[min(n, len(case.steps) - 1)]
        headers = {**JSON, **({"retry-after": retry_after} if retry_after else {})}
        body = OK[case.call] if status == 200 else orjson.dumps({"error": f"said {status}"})
        return status, headers, body

    return Script(answer)


def _ended(result: Any) -> str:
    """What a call ended with: the result's repr, or the error's class and sentence."""
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    return repr(result)


def _sync(url: str, call: str) -> str:
    with keel.Client(url, "k", retry=POLICY, batch_size=10) as client:
        calls: dict[str, Callable[[], Any]] = {
            "predict": lambda: client.predict(GOOD),
            "status": client.status,
            "feedback": lambda: client.feedback("p" * 32, 1),
        }
        try:
            return _ended(calls[call]())
        except keel.KeelError as error:
            return _ended(error)


async def _async(url: str, call: str) -> str:
    async with keel.AsyncClient(url, "k", retry=POLICY, batch_size=10) as client:
        calls: dict[str, Callable[[], Any]] = {
            "predict": lambda: client.predict(GOOD),
            "status": client.status,
            "feedback": lambda: client.feedback("p" * 32, 1),
        }
        try:
            return _ended(await calls[call]())
        except keel.KeelError as error:
            return _ended(error)


def _gaps(seen: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(seen)]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_both_clients_retry_alike(scripted: Callable[[Script], str], case: Case) -> None:
    """Each client makes the promised number of tries, waits at least the promised time
    before each retry, and ends with the same result or the same error sentence."""
    script = _script(case)
    url = scripted(script)
    ended, tries, gaps = [], [], []
    for run in (lambda: _sync(url, case.call), lambda: asyncio.run(_async(url, case.call))):
        script.seen.clear()
        ended.append(run())
        tries.append(len(script.seen))
        gaps.append(_gaps(script.seen))
    assert ended[0] == ended[1], ended
    assert tries == [case.tries, case.tries]
    for measured in gaps:
        assert all(gap >= wait - 0.005 for gap, wait in zip(measured, case.waits, strict=True))
