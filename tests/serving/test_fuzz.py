"""Seeded fuzzing of the documented routes: no input makes the server answer 5xx.

Bodies come from the OpenAPI schema's routes with random JSON values, mutated valid
instances and raw random bytes, with a fixed seed so failures reproduce; it complements
the schema-driven cases of ``test_schemathesis.py`` with bytes no schema describes.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import GOOD, auth, backend, client, create_key

SEED = 20261126
CASES = 150


def random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 3 else 6)
    simple: list[Any] = [
        None,
        rng.choice([True, False]),
        rng.randint(-(10**20), 10**20),
        rng.uniform(-1e308, 1e308),
        "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(12))),
        rng.choice(["", "0", "NaN", "Infinity", "-1e999", "null", "\u0000"]),
    ]
    if choice < 6:
        return simple[choice]
    if choice == 6:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["tenure", "spend", "visits", "instance", "instances", "explain", "label", "x"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def mutated_instance(rng: random.Random) -> dict[str, Any]:
    instance: dict[str, Any] = dict(GOOD)
    field = rng.choice([*GOOD, "extra"])
    if rng.random() < 0.3:
        instance.pop(field, None)
    else:
        instance[field] = random_json(rng, 2)
    return {"instances": [instance] * rng.randrange(1, 4), "explain": rng.random() < 0.5}


def bodies(rng: random.Random) -> list[bytes]:
    out = []
    for i in range(CASES):
        kind = i % 3
        if kind == 0:
            out.append(json.dumps(random_json(rng)).encode())
        elif kind == 1:
            out.append(json.dumps(mutated_instance(rng)).encode())
        else:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
    return out


@pytest.mark.anyio
async def test_no_fuzzed_body_gets_a_5xx(project: Project) -> None:
    """Random and mutated bodies on every documented POST route answer below 500."""
    key = create_key(project, "admin")
    rng = random.Random(SEED)
    app = create_app(project, model=backend())
    headers = {**auth(key), "Content-Type": "application/json"}
    async with client(app) as c:
        schema = (await c.get("/openapi.json", headers=auth(key))).json()
        posts = [path for path, item in schema["paths"].items() if "post" in item]
        failures = []
        for body in bodies(rng):
            for path in posts:
                response = await c.post(path, content=body, headers=headers)
                if response.status_code >= 500:
                    failures.append((path, body[:80], response.status_code))
    assert posts and failures == []
