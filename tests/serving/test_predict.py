"""POST /v1/predict: answers people can use, and bad input refused with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import GOOD, auth, backend, client, create_key, write_config


async def post(project: Project, body: Any = None, *, app: Any = None, **options: Any) -> Any:
    key = create_key(project)
    app = app or create_app(project, model=backend())
    headers = {**auth(key), **options.pop("headers", {})}
    async with client(app) as c:
        if body is not None:
            return await c.post("/v1/predict", json=body, headers=headers)
        return await c.post("/v1/predict", headers=headers, **options)


def reopen(project_dir: Path, serving: str) -> Project:
    write_config(project_dir, serving)
    return Project.open(project_dir)


@pytest.mark.anyio
async def test_a_batch_gets_one_answer_per_instance(project: Project) -> None:
    """Three instances give three predictions, each with its own id."""
    response = await post(project, {"instances": [GOOD, {**GOOD, "tenure": 60}, GOOD]})
    answers = response.json()["predictions"]
    assert len(answers) == 3 and len({a["prediction_id"] for a in answers}) == 3


@pytest.mark.anyio
async def test_explain_names_the_top_features(project: Project) -> None:
    """explain=true adds the top contributing features with signed contributions."""
    response = await post(project, {"instance": GOOD, "explain": True})
    explanation = response.json()["predictions"][0]["explanation"]
    assert {item["feature"] for item in explanation} <= {"tenure", "spend", "visits"}
    assert len(explanation) == 3


@pytest.mark.anyio
async def test_an_action_is_said_in_plain_words(project_dir: Path) -> None:
    """keel.yaml's actions map the probability to a recommended action."""
    serving = (
        'actions:\n  - {when: "probability >= 0.0", say: "Call within 24 hours"}\n'
        "rate_limit: 1000/second"
    )
    with reopen(project_dir, serving) as project:
        response = await post(project, {"instance": GOOD})
    assert response.json()["predictions"][0]["action"] == "Call within 24 hours"


@pytest.mark.anyio
async def test_a_repeated_input_is_served_from_the_cache(project_dir: Path) -> None:
    """With a cache configured, the second identical request is marked cached."""
    with reopen(project_dir, "cache: {ttl: 60s}\nrate_limit: 1000/second") as project:
        key = create_key(project)
        async with client(create_app(project, model=backend())) as c:
            first = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
            reordered = dict(reversed(list(GOOD.items())))
            second = await c.post("/v1/predict", json={"instance": reordered}, headers=auth(key))
    assert "cached" not in first.json()["predictions"][0]
    assert second.json()["predictions"][0]["cached"] is True
    assert second.json()["predictions"][0]["label"] == first.json()["predictions"][0]["label"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{not json", 400),
        (b'{"instance": {"tenure": NaN, "spend": 1, "visits": 1}}', 400),
        (b'{"instance": {"tenure": Infinity, "spend": 1, "visits": 1}}', 400),
        (b'{"instance": {"tenure": 1e999, "spend": 1, "visits": 1}}', 400),
        (b'{"instance": "\xff\xfe"}', 400),
        (b"[]", 422),
        (b'{"instances": []}', 422),
        (b'{"instances": [1, 2]}', 422),
        (b'{"instance": {}, "instances": []}', 422),
        (b'{"instance": {"tenure": 1, "spend": 50, "visits": 1}, "explain": "yes"}', 422),
    ],
)
async def test_malformed_bodies_are_refused(project: Project, content: bytes, status: int) -> None:
    """Malformed JSON, NaN, Infinity, invalid UTF-8 and wrong envelopes get 4xx, never 5xx."""
    headers = {"Content-Type": "application/json"}
    response = await post(project, content=content, headers=headers)
    assert response.status_code == status, response.text
    assert "error" in response.json()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("instance", "field"),
    [
        ({**GOOD, "spend": "fifty"}, "spend"),
        ({**GOOD, "tenure": 3.5}, "tenure"),
        ({"spend": 50.0, "visits": 1}, "tenure"),
        ({**GOOD, "colour": "red"}, "colour"),
        ({**GOOD, "tenure": None}, "tenure"),
    ],
)
async def test_invalid_fields_get_422_with_a_message_per_field(
    project: Project, instance: dict[str, Any], field: str
) -> None:
    """Strings in numeric fields, missing, extra and null fields are named (an instance
    alone in its request with nothing to score is a 422)."""
    response = await post(project, {"instance": instance})
    assert response.status_code == 422
    assert [d["loc"] for d in response.json()["detail"]] == [["instances", 0, field]]


@pytest.mark.anyio
async def test_a_wrong_content_type_gets_415(project: Project) -> None:
    """A form-encoded body is refused with 415."""
    response = await post(project, data={"instance": "x"})
    assert response.status_code == 415


@pytest.mark.anyio
async def test_an_oversized_body_gets_413(project_dir: Path) -> None:
    """A body past serving.max_body_kb is refused with 413 before it is parsed."""
    with reopen(project_dir, "max_body_kb: 1\nrate_limit: 1000/second") as project:
        response = await post(project, {"instances": [GOOD] * 100})
    assert response.status_code == 413


@pytest.mark.anyio
async def test_an_oversized_batch_gets_413(project_dir: Path) -> None:
    """More instances than serving.max_instances are refused with 413."""
    with reopen(project_dir, "max_instances: 5\nrate_limit: 1000/second") as project:
        response = await post(project, {"instances": [GOOD] * 6})
    assert response.status_code == 413


@pytest.mark.anyio
async def test_get_on_predict_is_405(project: Project) -> None:
    """Predict takes POST only and says so."""
    key = create_key(project)
    async with client(create_app(project, model=backend())) as c:
        response = await c.get("/v1/predict", headers=auth(key))
    assert response.status_code == 405 and response.headers["allow"] == "POST"
