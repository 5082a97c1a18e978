"""`keel drift` shows small shifts and untestable columns apart from the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.monitoring.log import PredictionLog


def _run(*args: str) -> tuple[int, str]:
    """Run the CLI in-process; returns exit code and stdout."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reference CSV and a log of 3,000 rows: temperature never logged (null), wind
    moved by a fifth of a standard deviation."""
    root = tmp_path_factory.mktemp("cli-drift")
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"wind": rng.normal(20, 5, 20_000), "temperature": rng.normal(12, 7, 20_000)}
    )
    reference.to_csv(root / "reference.csv", index=False)
    wind = rng.normal(21, 5, 3_000)
    with PredictionLog(root / "log") as log:
        log.append({"inputs": {"wind": float(w), "temperature": None}, "output": 0.5} for w in wind)
    return root


def _drift(logged: Path, *extra: str) -> tuple[int, str]:
    return _run(
        "drift", "--log", str(logged / "log"), "--reference", str(logged / "reference.csv"), *extra
    )


def test_json_lists_small_shifts_and_untestable_columns(logged: Path) -> None:
    """--json: "no drift" with wind as a small shift and temperature untestable."""
    code, out = _drift(logged, "--json")
    report = json.loads(out)
    assert code == 0
    assert (report["decision"], report["small_shifts"], report["untestable"]) == (
        "no_drift",
        ["wind"],
        ["temperature"],
    )


def test_text_output_says_what_was_not_tested_and_why(logged: Path) -> None:
    """The table leaves the null column out and a line below names it with the reason;
    the small shift is printed as info with its effect against the gate."""
    code, out = _drift(logged)
    assert code == 0
    assert "not tested: temperature (every value in the window is null)" in out
    assert "info: small shifts" in out and "wind (" in out
