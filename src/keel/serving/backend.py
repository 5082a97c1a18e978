"""The one shape on the predict path, and the scikit-learn backend behind it.

Everything that answers predictions — a model, the fallback chain, the micro-batcher,
later shadow and canary routing — is a ``ModelBackend``: an object with a ``version``
and ``async predict(batch) -> predictions``. Wrappers take a backend and are one, the
way ASGI middleware takes an app and is one.

Model calls run on one daemon thread per model (``ModelThread``): the event loop keeps
serving while the model works, a per-request deadline can fire while a model hangs, and
a hung model cannot keep the process from exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["ModelBackend", "ModelThread", "Prediction", "SklearnBackend", "logged_probabilities"]

T = TypeVar("T")
TOP_CLASSES = 10
"""A model with more classes logs the probabilities of its ten likeliest per prediction."""


@dataclass(slots=True)
class Prediction:
    """One answer: the prediction, how sure it is, and where it came from."""

    prediction: Any
    probability: float | None = None
    confidence: float | None = None
    interval: tuple[float, float] | None = None
    fallback: str | None = None
    reason: str | None = None
    failure: str | None = None  # why the model did not answer: error, timeout or unloaded
    model_version: str | None = None
    features: dict[str, Any] | None = None  # looked-up inputs the request did not carry
    # many classes: every class's probability as predict_proba gave it (no copy), and the
    # model's class names in that order (one tuple shared by all its answers)
    proba: list[float] | None = None
    classes: tuple[str, ...] | None = None
    features_missing: tuple[str, ...] = ()  # features the online store could not serve
    errors: list[dict[str, Any]] | None = None  # refused: {"field", "check", "msg"} each

    @property
    def declined(self) -> bool:
        """An inner backend passed this row to the fallback chain (``failure`` says why)."""
        return self.failure is not None and self.fallback is None and self.errors is None

    @property
    def score(self) -> float | None:
        """What training summarised as the model's reference output: the positive class's
        probability (binary), a regressor's value; None for a fallback or many classes."""
        if self.fallback is not None:
            return None
        if self.probability is not None:
            return self.probability
        if self.confidence is None and isinstance(self.prediction, float):
            return self.prediction
        return None


@runtime_checkable
class ModelBackend(Protocol):
    """Anything that answers a batch of validated rows with one prediction per row.

    A wrapper may decline a row (``failure`` set, no ``fallback``: the fallback chain in
    front answers it) or refuse it (``errors``: the row's slot carries them instead).
    """

    version: str

    async def predict(self, batch: list[dict[str, Any]]) -> list[Prediction]: ...


class ModelThread:
    """One daemon thread that runs a model's calls in order, awaited from the event loop.

    The thread runs its models with one OpenMP and BLAS thread: a request carries a few
    rows, and a parallel region over them costs more than it saves. Worse, when the other
    cores are busy (the log flusher, another replica, the client), each call waits for
    threads that cannot run: on two cores a gradient-boosting model went from about 2 ms
    to over 50 ms a call.
    """

    def __init__(self, name: str = "keel-model") -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None]
        self._jobs = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    async def run(self, call: Callable[[], T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((call, future))
        return await future

    def stop(self) -> None:
        self._jobs.put(None)

    def _work(self) -> None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)  # OpenMP's thread count is per calling thread
        while (job := self._jobs.get()) is not None:
            call, future = job
            try:
                result = call()
            except BaseException as error:  # handed to the awaiting request
                _settle(future, None, error)
            else:
                _settle(future, result, None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    def apply() -> None:
        if future.done():
            return  # the request gave up (deadline) before the model answered
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
        future.get_loop().call_soon_threadsafe(apply)


class SklearnBackend:
    """A fitted scikit-learn model and the input schema it was trained on."""

    def __init__(
        self,
        model: Any,
        schema: Sequence[Mapping[str, Any]],
        version: str,
        *,
        halfwidth: float | None = None,
        baseline: Mapping[str, Any] | None = None,
        thread: ModelThread | None = None,
        positive: Any = None,
        left_out: Sequence[str] = (),
    ) -> None:
        self.model = model
        self.schema = [dict(column) for column in schema]
        # columns of the training table the model does not take (key, time, ids): a row
        # copied from that table is accepted with them, and they are logged, not scored
        self.left_out = tuple(left_out)
        self.version = version
        self.halfwidth = halfwidth
        self.names = [column["name"] for column in self.schema]
        known = {k: v for k, v in (baseline or {}).items() if v is not None}
        self.baseline = {**_default_baseline(self.schema), **known}
        classes = getattr(model, "classes_", None)
        self.classes: list[Any] | None = None
        if hasattr(model, "predict_proba") and classes is not None:
            self.classes = [getattr(c, "item", lambda c=c: c)() for c in classes]
            self._names = tuple(str(c) for c in self.classes)
        # binary: the positive class's column (the version's choice; else the last class)
        self._positive = (
            -1 if positive is None or not self.classes else self.classes.index(positive)
        )
        self.thread = thread or ModelThread(f"keel-model-{version}")
        # A model fitted on a plain array with numeric inputs takes a plain array: no pandas
        # frame to build per batch. Models fitted on frames get the frame they expect.
        numeric = all(c.get("type") in ("number", "integer", "boolean") for c in self.schema)
        self._plain_array = numeric and not hasattr(model, "feature_names_in_")
        self._prepare: Callable[[list[dict[str, Any]]], Any] | None = None
        if not self._plain_array:
            from keel.training.inputs import rows_preparer

            self._prepare = rows_preparer(self.schema)

    @property
    def task(self) -> str:
        return "classification" if self.classes is not None else "regression"

    def warm_up_rows(self) -> list[dict[str, Any]]:
        """One typical row: predicting it once warms the model before it serves."""
        return [dict(self.baseline)]

    def close(self) -> None:
        self.thread.stop()

    async def predict(self, batch: list[dict[str, Any]]) -> list[Prediction]:
        return await self.thread.run(lambda: self.predict_now(batch))

    async def explain(self, row: dict[str, Any], top: int = 3) -> list[dict[str, Any]]:
        return await self.thread.run(lambda: self.explain_now(row, top))

    def predict_now(self, batch: list[dict[str, Any]]) -> list[Prediction]:
        """Predict on the calling thread (warm-up, benchmarks, the model thread)."""
        if self.classes is None:
            values = self._scores(batch)
            return [self._regression(float(v)) for v in values]
        proba = self.model.predict_proba(self._frame(batch))
        return [self._classification(row) for row in proba.tolist()]

    def explain_now(self, row: dict[str, Any], top: int = 3) -> list[dict[str, Any]]:
        """Top features by occlusion: how far the score moves when a feature is typical."""
        variants = [row] + [{**row, name: self.baseline.get(name)} for name in self.names]
        scores = self._scores(variants)
        moves = [(name, float(scores[0] - scores[i + 1])) for i, name in enumerate(self.names)]
        moves.sort(key=lambda item: abs(item[1]), reverse=True)
        return [{"feature": n, "contribution": round(c, 6)} for n, c in moves[:top]]

    def _scores(self, batch: list[dict[str, Any]]) -> Any:
        frame = self._frame(batch)
        if self.classes is None:
            return self.model.predict(frame)
        return self.model.predict_proba(frame)[:, self._positive]

    def _frame(self, batch: list[dict[str, Any]]) -> Any:
        if self._prepare is None:
            return _array(batch, self.names)
        return self._prepare(batch)

    def _classification(self, proba: list[float]) -> Prediction:
        best = max(range(len(proba)), key=proba.__getitem__)
        assert self.classes is not None
        if len(proba) == 2:
            return Prediction(
                prediction=self.classes[best],
                probability=proba[self._positive],
                confidence=proba[best],
                model_version=self.version,
            )
        return Prediction(  # the log picks what it keeps of ``proba``, and only when on
            prediction=self.classes[best],
            confidence=proba[best],
            model_version=self.version,
            proba=proba,
            classes=self._names,
        )

    def _regression(self, value: float) -> Prediction:
        interval = None
        if self.halfwidth is not None:
            interval = (value - self.halfwidth, value + self.halfwidth)
        return Prediction(prediction=value, interval=interval, model_version=self.version)


def logged_probabilities(
    proba: list[float], classes: Sequence[str]
) -> tuple[list[float], Sequence[str]]:
    """What the prediction log keeps of a many-class answer: every class's probability in
    the model's class order, or the ``TOP_CLASSES`` likeliest (still in class order), each
    with the names of the classes it holds."""
    if len(proba) <= TOP_CLASSES:
        return proba, classes
    cut = sorted(proba, reverse=True)[TOP_CLASSES - 1]  # sorting floats is C-fast
    top = [i for i, p in enumerate(proba) if p >= cut][:TOP_CLASSES]
    return [proba[i] for i in top], [classes[i] for i in top]


def _default_baseline(schema: list[dict[str, Any]]) -> dict[str, Any]:
    """Typical values when no reference statistics are known: mid-range, first category."""
    out: dict[str, Any] = {}
    for column in schema:
        if column.get("type") == "category":
            out[column["name"]] = (column.get("categories") or [None])[0]
        elif column.get("min") is not None and column.get("max") is not None:
            out[column["name"]] = (float(column["min"]) + float(column["max"])) / 2
        else:
            out[column["name"]] = None
    return out


def _array(batch: list[dict[str, Any]], names: list[str]) -> Any:
    """Rows as a float array in schema order; None (a missing value) becomes NaN."""
    import numpy as np

    pick = operator.itemgetter(*names)
    try:
        rows = [pick(row) for row in batch]
    except KeyError:  # rows that were not validated may lack a column
        rows = [tuple(row.get(name) for name in names) for row in batch]
    return np.array(rows, dtype="float64").reshape(len(batch), len(names))
