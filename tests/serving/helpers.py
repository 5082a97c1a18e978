"""Shared test helpers: a small fitted model, a project with keys, an in-process client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

FEATURES = ["tenure", "spend", "visits"]


def churn_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A learnable binary problem on three numeric features."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows),
            "spend": rng.normal(50, 10, rows).round(2),
            "visits": rng.integers(0, 30, rows),
        }
    )
    logit = (frame["spend"] - 50) / 5 - (frame["tenure"] - 36) / 20
    frame["churned"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def fitted_model(seed: int = 0) -> tuple[Any, list[dict[str, Any]]]:
    """A LogisticRegression fitted on ``churn_frame`` and the schema it was trained on."""
    from sklearn.linear_model import LogisticRegression

    from keel.training.inputs import infer_schema

    frame = churn_frame(seed=seed)
    model = LogisticRegression(max_iter=500).fit(frame[FEATURES], frame["churned"])
    return model, infer_schema(frame[FEATURES])


def backend(version: str = "churn@1", seed: int = 0, model: Any = None) -> Any:
    from keel.serving import SklearnBackend

    fitted, schema = fitted_model(seed)
    return SklearnBackend(model if model is not None else fitted, schema, version)


GOOD = {"tenure": 12, "spend": 55.5, "visits": 3}


def write_config(root: Path, serving: str = "") -> None:
    """keel.yaml with a ``serving:`` section (indented YAML body)."""
    text = "name: churn\n"
    if serving:
        text += "serving:\n" + "".join(f"  {line}\n" for line in serving.strip().splitlines())
    (root / "keel.yaml").write_text(text)


def create_key(project: Any, *scopes: str, rate_limit: str | None = None) -> str:
    from keel.serving import KeyStore

    key, _ = KeyStore(project.store).create("test", scopes or ("predict",), "tests", rate_limit)
    return key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def client(app: Any) -> AsyncIterator[Any]:
    """An httpx client talking to ``app`` in process, with the app started and stopped."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with app.running(), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def import_fitted(
    project: Any, tmp: Path, seed: int = 0, model: Any = None, prefix: str = "model"
) -> Any:
    """Register ``model`` (or one fitted with ``seed``) through the training layer's import;
    files go to ``tmp`` under ``prefix``, so several imports in one test do not collide."""
    import pickle

    from keel.training import import_model

    model_path = tmp / f"{prefix}-{seed}.pkl"
    model_path.write_bytes(pickle.dumps(model if model is not None else fitted_model(seed)[0]))
    sample_path = tmp / f"{prefix}-sample-{seed}.csv"
    churn_frame(rows=120, seed=seed + 100).to_csv(sample_path, index=False)
    return import_model(project, model_path, sample_path, "churned", None)


def register_model(project: Any, tmp: Path, seed: int = 0, model: Any = None) -> Any:
    """Register a fitted model through the training layer's import and make it production."""
    from keel.training import deploy

    version = import_fitted(project, tmp, seed, model)
    return deploy(project, str(version.version), force=True, reason="test")


class Switchable:
    """A classifier whose predict_proba can be made to raise or hang, for failure tests."""

    def __init__(self, model: Any) -> None:
        import threading

        self.model = model
        self.classes_ = model.classes_
        self.feature_names_in_ = model.feature_names_in_
        self.mode = "ok"
        self.release = threading.Event()

    def predict_proba(self, X: Any) -> Any:
        if self.mode == "raise":
            raise ValueError("the model broke")
        if self.mode == "hang":
            self.release.wait(10)
        return self.model.predict_proba(X)


@contextmanager
def over_http(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, started and stopped around the block
    (its lifespan runs as in ``keel serve``); yields the base URL for real HTTP requests."""
    import threading
    import time

    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
