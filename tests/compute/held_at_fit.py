"""A worker plugin that looks at what a worker holds when a booster starts fitting there:
at the start of XGBoost's or LightGBM's training task (the one task per worker that
builds the booster's matrix from the parts it depends on and trains), every pandas frame
in the worker's memory, each object once (a part handed to the booster sits inside its
dict of parts and under its own key, one object)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distributed import Client
from distributed.diagnostics.plugin import WorkerPlugin

TRAINING_TASKS = {
    ("xgboost.dask", "map_worker_partitions.<locals>.fn"),
    ("lightgbm.dask", "_train_part"),
}
"""The functions of the boosters' Dask training tasks, by module and qualified name."""


@dataclass(frozen=True)
class Held:
    """The frames one worker held as its training task started: the ``event_id`` values
    of those with that column (the table's rows), the columns and rows of the others."""

    table_ids: list[int]
    others: list[tuple[tuple[str, ...], int]]


class HeldAtFit(WorkerPlugin):
    name = "keel-held-at-fit"

    def setup(self, worker: Any) -> None:
        self.worker = worker
        self.found: list[Held] = []

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish == "executing" and _is_training(self.worker.state.tasks[key].run_spec):
            self.found.append(_held(self.worker.data.values()))


def held_at_fit(client: Client) -> list[Held]:
    """Every worker's ``Held`` at each training task it started, since registration."""

    def found(dask_worker: Any) -> list[Held]:
        return list(dask_worker.plugins[HeldAtFit.name].found)

    return [held for each in client.run(found).values() for held in each]


def _is_training(spec: Any) -> bool:
    func = getattr(spec, "func", None)
    func = getattr(func, "func", func)  # XGBoost's is a partial
    name = (getattr(func, "__module__", None), getattr(func, "__qualname__", None))
    return name in TRAINING_TASKS


def _held(values: Any) -> Held:
    import pandas as pd

    frames: dict[int, pd.DataFrame] = {}
    for value in values:
        inside = value.values() if isinstance(value, dict) else [value]
        inside = value if isinstance(value, (list, tuple)) else inside
        for item in inside:
            if isinstance(item, pd.DataFrame):
                frames[id(item)] = item
    table_ids = [
        int(i) for frame in frames.values() if "event_id" in frame for i in frame["event_id"]
    ]
    others = [
        (tuple(map(str, frame.columns)), len(frame))
        for frame in frames.values()
        if "event_id" not in frame
    ]
    return Held(table_ids, others)
