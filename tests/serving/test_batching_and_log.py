"""Micro-batching coalesces concurrent requests; every answer reaches the prediction log."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.serving import MicroBatcher, Prediction, create_app
from tests.serving.helpers import GOOD, auth, backend, client, create_key, fitted_model


class CountingModel:
    """Records the size of every call and takes 20 ms, so requests pile up."""

    def __init__(self) -> None:
        self.model = fitted_model()[0]
        self.classes_ = self.model.classes_
        self.feature_names_in_ = self.model.feature_names_in_
        self.calls: list[int] = []

    def predict_proba(self, X: Any) -> Any:
        self.calls.append(len(X))
        time.sleep(0.02)
        return self.model.predict_proba(X)


@pytest.mark.anyio
async def test_concurrent_single_rows_share_model_calls(project: Project) -> None:
    """Thirty concurrent one-row requests take far fewer than thirty model calls."""
    model = CountingModel()
    key = create_key(project)
    async with client(create_app(project, model=backend(model=model))) as c:
        model.calls.clear()
        responses = await asyncio.gather(
            *(c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key)) for _ in range(30))
        )
    assert all(r.status_code == 200 for r in responses)
    assert sum(model.calls) == 30 and len(model.calls) <= 10


class Echo:
    """A backend that answers each row with its own 'x' and records batch sizes."""

    version = "echo@1"

    def __init__(self) -> None:
        self.batches: list[int] = []

    async def predict(self, batch: list[dict[str, Any]]) -> list[Prediction]:
        self.batches.append(len(batch))
        await asyncio.sleep(0.01)
        return [Prediction(prediction=row["x"]) for row in batch]


@pytest.mark.anyio
async def test_the_batcher_hands_each_caller_its_own_rows() -> None:
    """Callers get back exactly their rows' answers, in order, and batches respect max_batch."""
    echo = Echo()
    batcher = MicroBatcher(echo, max_batch=4)
    calls = [[{"x": i}, {"x": i + 100}] for i in range(6)]
    results = await asyncio.gather(*(batcher.predict(rows) for rows in calls))
    assert [[p.prediction for p in r] for r in results] == [[i, i + 100] for i in range(6)]
    assert max(echo.batches) <= 4


@pytest.mark.anyio
async def test_every_answer_is_in_the_prediction_log(project: Project) -> None:
    """After serving three requests and shutting down, the log holds their prediction ids."""
    key = create_key(project)
    async with client(create_app(project, model=backend())) as c:
        responses = [
            await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
            for _ in range(3)
        ]
    ids = {r.json()["predictions"][0]["prediction_id"] for r in responses}
    with PredictionLog.for_project(project) as log:
        logged = log.read()
    assert ids <= set(logged["prediction_id"]) and set(logged["model_version"]) == {"churn@1"}


def test_array_and_frame_paths_agree() -> None:
    """A model fitted on an array (fast path) and on a frame give the same probabilities."""
    from sklearn.linear_model import LogisticRegression

    from keel.serving import SklearnBackend
    from keel.training.inputs import infer_schema
    from tests.serving.helpers import FEATURES, churn_frame

    frame = churn_frame()
    on_frame = LogisticRegression(max_iter=500).fit(frame[FEATURES], frame["churned"])
    on_array = LogisticRegression(max_iter=500).fit(frame[FEATURES].to_numpy(), frame["churned"])
    schema = infer_schema(frame[FEATURES])
    rows = [GOOD, {**GOOD, "tenure": 60}]
    a = SklearnBackend(on_frame, schema, "a@1").predict_now(rows)
    b = SklearnBackend(on_array, schema, "b@1").predict_now(rows)
    assert [round(p.probability or 0, 9) for p in a] == [round(p.probability or 0, 9) for p in b]


@pytest.mark.anyio
async def test_with_log_fsync_concurrent_answers_share_appends(project_dir: Any) -> None:
    """With serving.log_fsync, concurrent answers are group-committed and all logged."""
    from tests.serving.helpers import write_config

    write_config(project_dir, "log_fsync: true\nrate_limit: 1000/second")
    with Project.open(project_dir) as project:
        key = create_key(project)
        async with client(create_app(project, model=backend())) as c:
            responses = await asyncio.gather(
                *(
                    c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
                    for _ in range(20)
                )
            )
        ids = {r.json()["predictions"][0]["prediction_id"] for r in responses}
        with PredictionLog.for_project(project) as log:
            logged = set(log.read()["prediction_id"])
    assert len(ids) == 20 and ids <= logged


class PickyEcho(Echo):
    """Fails any batch that holds the row x=13."""

    async def predict(self, batch: list[dict[str, Any]]) -> list[Prediction]:
        if any(row["x"] == 13 for row in batch):
            raise ValueError("13")
        return await super().predict(batch)


@pytest.mark.anyio
async def test_one_bad_row_fails_only_its_own_request() -> None:
    """Batched with a row the model rejects, the other callers still get their answers."""
    batcher = MicroBatcher(PickyEcho(), max_batch=8)
    results = await asyncio.gather(
        *(batcher.predict([{"x": x}]) for x in (1, 13, 2)), return_exceptions=True
    )
    assert isinstance(results[1], ValueError)
    assert [r[0].prediction for r in (results[0], results[2])] == [1, 2]  # type: ignore[index]


def test_sealed_spools_are_rolled_by_another_process_s_flush(tmp_path: Any) -> None:
    """With every spool sealed at once, a separate log object rolls all but the live one."""
    from keel.serving.logwriter import SealingLog

    folder = tmp_path / "log"
    sealing = SealingLog(lambda: PredictionLog(folder, sync=False), every=0.0)
    for i in range(3):
        sealing.append([{"inputs": {"x": i}, "output": i}])
    sealing.settle()  # the sealed spools are closed on a thread of their own
    worker = PredictionLog(folder)
    rolled = worker.flush()
    sealing.close()
    assert rolled.rows == 2 and len(worker.read()) == 3
    worker.close()


@pytest.mark.anyio
async def test_an_idle_server_seals_its_last_predictions_for_the_worker(project_dir: Any) -> None:
    """No request after the last one: the server's tick still seals it, and another log
    object (the worker's) can roll and read it while the server runs."""
    from tests.serving.helpers import write_config

    write_config(project_dir, "log_seal_every: 100ms\nrate_limit: 1000/second")
    with Project.open(project_dir) as project:
        key = create_key(project)
        async with client(create_app(project, model=backend())) as c:
            await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
            await asyncio.sleep(0.5)
            with PredictionLog.for_project(project) as worker:
                rolled = worker.flush()
                rows = len(worker.read())
    assert (rolled.rows, rows) == (1, 1)


def test_sealing_does_not_wait_for_the_old_spool_to_close(tmp_path: Any) -> None:
    """The loop that appends never waits on the sealed spool's fsync: while closing the old
    spool is held up, sealing returns and appends go on into the fresh one; once the close
    ends, the worker rolls the sealed spool."""
    import threading

    from keel.serving.logwriter import SealingLog

    release = threading.Event()

    class SlowDisk(PredictionLog):
        def close(self, *, flush: bool = True, own: bool = False) -> None:
            release.wait(10)
            super().close(flush=flush, own=own)

    folder = tmp_path / "log"
    sealing = SealingLog(lambda: SlowDisk(folder, sync=False), every=60.0)
    sealing.append([{"inputs": {"x": 1}, "output": 1}])
    sealing.seal()  # returns although the old spool's close is held up
    sealing.append([{"inputs": {"x": 2}, "output": 2}])
    with PredictionLog(folder) as worker:
        held = worker.flush().rows  # the old spool is still locked: nothing to roll
        release.set()
        sealing.settle()
        rolled = worker.flush().rows
    sealing.close()
    assert (held, rolled) == (0, 1)


def test_an_empty_spool_is_not_sealed(tmp_path: Any) -> None:
    """A due tick with nothing written leaves the spool alone: no empty files."""
    from keel.serving.logwriter import SealingLog

    now = [0.0]
    sealing = SealingLog(lambda: PredictionLog(tmp_path, sync=False), 1.0, clock=lambda: now[0])
    empty = sealing.current
    now[0] = 5.0
    sealing.seal_if_due()
    assert sealing.current is empty
    sealing.append([{"inputs": {"x": 1}, "output": 1}])  # due: sealed first, due again at 6
    written = sealing.current
    now[0] = 5.5
    sealing.seal_if_due()
    assert sealing.current is written
    now[0] = 6.0
    sealing.seal_if_due()
    assert sealing.current is not written
    sealing.close()


@pytest.mark.anyio
async def test_with_log_roll_server_the_server_rolls_its_own_segments(project_dir: Any) -> None:
    """serving.log_roll: server runs the log's flusher in the server process."""
    from tests.serving.helpers import write_config

    write_config(project_dir, "log_roll: server\nlog_seal_every: 50ms\nrate_limit: 1000/second")
    with Project.open(project_dir) as project:
        key = create_key(project)
        async with client(create_app(project, model=backend())) as c:
            await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
            deadline = time.monotonic() + 30  # a loaded machine rolls late, not never
            with PredictionLog.for_project(project) as log:  # only read until it closes
                while not (rows := len(log.read())) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
    assert rows == 1


@pytest.mark.anyio
async def test_requests_in_quick_succession_wait_for_each_other() -> None:
    """Right after a request, the next one waits up to max_wait_ms and shares the call."""
    echo = Echo()
    batcher = MicroBatcher(echo, max_batch=8, max_wait_ms=200)
    await batcher.predict([{"x": 0}])  # a lone request: its own call
    second = asyncio.ensure_future(batcher.predict([{"x": 1}]))
    await asyncio.sleep(0.01)
    third = asyncio.ensure_future(batcher.predict([{"x": 2}]))
    await asyncio.gather(second, third)
    assert echo.batches == [1, 2]


def test_at_shutdown_a_server_rolls_only_its_own_spool(tmp_path: Any) -> None:
    """Closing a sealing log rolls its own last spool; the spools another replica sealed
    in the shared folder stay for the worker (a backlog must not hold up a shutdown)."""
    from keel.serving.logwriter import SealingLog

    folder = tmp_path / "log"
    other = SealingLog(lambda: PredictionLog(folder, sync=False), every=0.0)
    other.append([{"inputs": {"x": 1}, "output": 1}])
    other.append([{"inputs": {"x": 2}, "output": 2}])  # seals the spool holding 1
    mine = SealingLog(lambda: PredictionLog(folder, sync=False), every=60.0)
    mine.append([{"inputs": {"x": 3}, "output": 3}])
    mine.close()
    other.close(flush=False)
    left = len(list((folder / "spool").glob("*.log")))
    with PredictionLog(folder) as reader:
        rolled = reader.read()["output"].tolist()
    assert (rolled, left) == ([3], 2)


@pytest.mark.anyio
async def test_with_log_roll_ship_the_server_ships_spools_and_a_worker_elsewhere_rolls_them(
    project_dir: Any, tmp_path: Any
) -> None:
    """serving.log_roll: ship: the server rolls nothing (no segment is committed while it
    runs or when it stops) and leaves no spool behind at shutdown; a worker with a folder
    of its own, sharing only the stores, rolls what it shipped: every answer, once."""
    from keel.monitoring.segments import ArtifactSegments
    from keel.monitoring.shipping import SpoolDrop
    from keel.monitoring.store_manifest import StoreManifest
    from tests.serving.helpers import write_config

    write_config(project_dir, "log_roll: ship\nlog_seal_every: 50ms\nrate_limit: 1000/second")
    with Project.open(project_dir) as project:
        key = create_key(project)
        async with client(create_app(project, model=backend())) as c:
            responses = []
            for _ in range(6):
                responses.append(
                    await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
                )
                await asyncio.sleep(0.03)  # some answers in sealed spools, shipped meanwhile
        manifest = StoreManifest(project.store)
        committed_by_server = manifest.segments()
        left = list((project.state_dir / "predictions" / "spool").glob("*.log"))
        worker = PredictionLog(
            tmp_path / "worker",
            segments=ArtifactSegments(project.artifacts),
            manifest=manifest,
            shipped=SpoolDrop.for_artifacts(project.artifacts),
        )
        with worker:
            worker.flush()
            logged = worker.read()["prediction_id"].tolist()
    ids = [r.json()["predictions"][0]["prediction_id"] for r in responses]
    assert (committed_by_server, left) == ([], [])
    assert sorted(logged) == sorted(ids)
