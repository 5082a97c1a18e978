"""keel.Client and keel.AsyncClient against a real ``keel serve`` on loopback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

import keel
from keel.client import RetryPolicy
from keel.errors import AuthError, InstanceRefused, RateLimited
from keel.project import Project
from keel.serving import create_app
from keel.serving.tables import feedback
from tests.client.conftest import MAX_INSTANCES, Served
from tests.serving.helpers import (
    FEATURES,
    GOOD,
    churn_frame,
    create_key,
    fitted_model,
    over_http,
    register_model,
    write_config,
)


def expected(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and their probabilities (the served confidence) from scikit-learn."""
    model = fitted_model(0)[0]
    frame = pd.DataFrame(rows)[FEATURES]
    return model.predict(frame), model.predict_proba(frame).max(axis=1)


def rows(count: int) -> list[dict[str, Any]]:
    frame = churn_frame(rows=count, seed=7)[FEATURES]
    return [
        {"tenure": int(r.tenure), "spend": float(r.spend), "visits": int(r.visits)}
        for r in frame.itertuples()
    ]


def predict_requests(served: Served) -> float:
    """How many predict requests the server answered 200, read from /metrics."""
    text = httpx.get(
        f"{served.url}/metrics", headers={"authorization": f"Bearer {served.keys['admin']}"}
    ).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "keel_requests_total"
        and sample.labels.get("route") == "/v1/predict"
        and sample.labels.get("status") == "200"
    )


def test_predict_returns_the_models_answer(served: Served) -> None:
    """predict(row) gives the label and confidence scikit-learn computes for the row."""
    labels, confidences = expected([GOOD])
    with keel.Client(served.url, served.keys["predict"]) as client:
        answer = client.predict(GOOD)
    assert answer.label == labels[0] and answer.confidence == pytest.approx(confidences[0])
    assert answer.fallback is None and not answer.refused and len(answer.prediction_id) == 32


def test_predict_many_sends_batches_of_the_servers_limit(served: Served) -> None:
    """25 rows against max_instances 10 go out as 3 requests, answered in order."""
    batch = rows(25)
    labels, confidences = expected(batch)
    before = predict_requests(served)
    with keel.Client(served.url, served.keys["admin"]) as client:
        answers = client.predict_many(batch)
    assert predict_requests(served) - before == 3 and client.batch_size == MAX_INSTANCES
    assert [a.label for a in answers] == labels.tolist()
    assert [a.confidence for a in answers] == pytest.approx(confidences.tolist())


def test_feedback_is_stored_under_the_prediction_id(served: Served) -> None:
    """feedback(id, label, value) lands in the server's feedback table."""
    with keel.Client(served.url, served.keys["admin"]) as client:
        answer = client.predict(GOOD)
        stored = client.feedback(answer.prediction_id, 1, value=2.5)
    with Project.open(served.root) as project, project.store.engine.connect() as connection:
        query = sa.select(feedback.c.label, feedback.c.value).where(
            feedback.c.prediction_id == answer.prediction_id
        )
        found = connection.execute(query).all()
    assert stored == 1 and [tuple(row) for row in found] == [("1", 2.5)]


def test_status_reports_the_served_model_and_limits(served: Served) -> None:
    """status() names the version /v1/status names, and the configured max_instances."""
    raw = httpx.get(
        f"{served.url}/v1/status", headers={"authorization": f"Bearer {served.keys['predict']}"}
    ).json()
    with keel.Client(served.url, served.keys["predict"]) as client:
        status = client.status()
    assert status.ready and status.model.version == raw["model"]["version"] is not None
    assert status.max_instances == MAX_INSTANCES and status.model.task == "classification"


def test_an_unknown_key_raises_auth_error_with_the_servers_message(served: Served) -> None:
    """A wrong key is an AuthError carrying status 401 and the server's own sentence."""
    with keel.Client(served.url, "keel_nope_nope") as client, pytest.raises(AuthError) as caught:
        client.predict(GOOD)
    assert caught.value.status == 401
    assert caught.value.message == "send a valid API key: Authorization: Bearer <key>"


def test_a_key_without_the_scope_raises_auth_error(served: Served) -> None:
    """A predict-only key sending feedback gets a 403 AuthError naming the route."""
    with keel.Client(served.url, served.keys["predict"]) as client, pytest.raises(AuthError) as e:
        client.feedback("p1", 1)
    assert e.value.status == 403 and "/v1/feedback" in e.value.message


def test_a_refused_instance_raises_with_its_findings(served: Served) -> None:
    """A row validation refuses raises InstanceRefused whose slot names the bad field."""
    client = keel.Client(served.url, served.keys["predict"])
    with client, pytest.raises(InstanceRefused) as caught:
        client.predict({**GOOD, "tenure": "twelve"})
    [slot] = caught.value.slots
    assert caught.value.status == 422 and [f.field for f in slot.errors] == ["tenure"]


def test_predict_many_returns_refused_slots_beside_answers(served: Served) -> None:
    """A batch with one bad row answers the good row and gives the bad one its errors."""
    with keel.Client(served.url, served.keys["predict"]) as client:
        good, bad = client.predict_many([GOOD, {**GOOD, "visits": "many"}])
    assert not good.refused and good.label == expected([GOOD])[0][0]
    assert bad.refused and bad.prediction is None and bad.errors[0].field == "visits"


def test_a_rate_limit_longer_than_max_wait_gives_up_at_once(served: Served) -> None:
    """Past a 2/minute limit, the server's Retry-After exceeds max_wait: RateLimited at
    once, with the server's message and how long it asked to wait."""
    policy = RetryPolicy(max_wait=1.0)
    with keel.Client(served.url, served.keys["limited"], retry=policy) as client:
        client.predict(GOOD)
        client.predict(GOOD)
        with pytest.raises(RateLimited) as caught:
            client.predict(GOOD)
    assert caught.value.message == "rate limit reached"
    assert caught.value.retry_after is not None and caught.value.retry_after > 1.0


@pytest.mark.anyio
async def test_the_async_client_predicts_and_reports(served: Served) -> None:
    """AsyncClient: predict_many in order, then feedback for the first answer."""
    batch = rows(12)
    labels, _ = expected(batch)
    async with keel.AsyncClient(served.url, served.keys["admin"]) as client:
        answers = await client.predict_many(batch)
        receipt = await client.feedback_many([(answers[0].prediction_id, 0)])
        status = await client.status()
    assert [a.label for a in answers] == labels.tolist() and receipt.stored == 1
    assert status.model.version == answers[0].model_version


def test_status_names_a_version_that_failed_to_load(tmp_path: Path) -> None:
    """A production artifact that fails its digest check: status() has no model loaded, and its
    last_load_error names the version and the digest failure."""
    root = tmp_path / "project"
    root.mkdir()
    write_config(root, "rate_limit: 1000/second")
    with Project.open(root) as project:
        bad = register_model(project, tmp_path)
        key = create_key(project)
        artifact = Path(project.artifacts_location) / "sha256" / bad.artifact[:2] / bad.artifact
        os.chmod(artifact, 0o644)
        artifact.write_bytes(b"not the model")
        with over_http(create_app(project)) as url, keel.Client(url, key) as client:
            status = client.status()
    failed = status.last_load_error
    assert status.model.loaded_at is None and not status.ready
    assert failed is not None and failed.ref == str(bad.version) and "corrupt" in failed.error
