"""What the server writes to the prediction log: one instance sent as-is keeps its body."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keel.monitoring.log import PredictionLog
from keel.monitoring.spool import read_spool
from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import GOOD, auth, backend, client, create_key, write_config


def _spooled(project: Project) -> list[dict[str, Any]]:
    folder = Path(project.state_dir) / "predictions" / "spool"
    return [record for path in folder.glob("*.log") for record in read_spool(path).records]


def _logged_inputs(project: Project) -> list[dict[str, Any]]:
    with PredictionLog.for_project(project) as log:
        frame = log.read()
    columns = [name for name in frame.columns if name.startswith("input.")]
    return [
        {name.removeprefix("input."): value for name, value in row.items() if value == value}
        for row in frame[columns].to_dict("records")
    ]


@pytest.mark.anyio
async def test_one_instance_as_sent_is_spooled_as_its_body(project: Project) -> None:
    """The spool keeps the request body for an instance the validator passed as it is;
    the rolled segment reads its instance back as the inputs."""
    key = create_key(project)
    async with client(create_app(project, model=backend())) as c:
        response = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
        spooled = _spooled(project)
    assert response.status_code == 200
    assert [set(record) & {"inputs", "request"} for record in spooled] == [{"request"}]
    assert _logged_inputs(project) == [GOOD]


@pytest.mark.anyio
async def test_a_row_that_differs_from_its_instance_is_spooled_as_the_row(
    project_dir: Path,
) -> None:
    """An extra field the validator ignores is not logged: the row is encoded instead."""
    write_config(project_dir, "rate_limit: 1000/second\nvalidation:\n  extra_fields: ignore")
    with Project.open(project_dir) as project:
        key = create_key(project)
        async with client(create_app(project, model=backend())) as c:
            sent = {"instance": {**GOOD, "colour": "red"}}
            response = await c.post("/v1/predict", json=sent, headers=auth(key))
            spooled = _spooled(project)
        assert response.status_code == 200
        assert [set(record) & {"inputs", "request"} for record in spooled] == [{"inputs"}]
        assert _logged_inputs(project) == [GOOD]


@pytest.mark.anyio
async def test_several_instances_are_spooled_as_rows(project: Project) -> None:
    """A request of several instances logs each row on its own, in order."""
    key = create_key(project)
    rows = [GOOD, {**GOOD, "tenure": 30}]
    async with client(create_app(project, model=backend())) as c:
        response = await c.post("/v1/predict", json={"instances": rows}, headers=auth(key))
    assert response.status_code == 200
    assert _logged_inputs(project) == rows


def test_findings_are_read_back_as_json_text(tmp_path: Path) -> None:
    """A record's findings survive the roll into a segment as one JSON text column; a row
    without findings reads back as missing."""
    import json

    finding = {"field": "spend", "check": "range", "msg": "is outside 0 to 100"}
    with PredictionLog(tmp_path) as log:
        log.record({"spend": 500.0}, 1, findings=[finding])
        log.record({"spend": 50.0}, 0)
        log.flush()
        frame = log.read()
    assert json.loads(frame["findings"][0]) == [finding] and frame["findings"].isna()[1]


@pytest.mark.anyio
async def test_a_many_class_answer_logs_one_list_in_the_models_class_order(
    project: Project,
) -> None:
    """A three-class model's logged row holds every class's probability as one list, in
    the model's class order, equal to its predict_proba, beside the class names."""
    import json

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from tests.serving.helpers import FEATURES, churn_frame

    frame = churn_frame(300)
    tiers = np.array(["gold", "bronze", "silver"])[np.digitize(frame["spend"], [45, 55])]
    model = LogisticRegression(max_iter=500).fit(frame[FEATURES], tiers)
    key = create_key(project)
    async with client(create_app(project, model=backend(model=model))) as c:
        response = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
    with PredictionLog.for_project(project) as log:
        row = log.read().iloc[0]
    expected = model.predict_proba(pd.DataFrame([GOOD])[FEATURES])[0]
    assert response.status_code == 200
    assert not [name for name in row.index if name.startswith("proba.")]
    assert json.loads(row["proba_classes"]) == ["bronze", "gold", "silver"]
    assert list(row["proba"]) == pytest.approx(list(expected), abs=1e-12)
