"""Time `keel.audit.audit` over synthetic pilots of growing size: medians of 5 runs.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_audit.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from keel.audit import audit

PREDICT = """
import pickle
import pandas as pd

model = pickle.load(open("/home/alice/models/churn.pkl", "rb"))
API_TOKEN = "sk_live_0123456789abcdefghijklmn"


def predict(payload):
    frame = pd.DataFrame([payload])
    return model.predict(frame)[0]
"""

TRAIN = """
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

data = pd.read_csv("customers.csv")
model = RandomForestClassifier().fit(data.drop(columns="churned"), data["churned"])
"""


def notebook(*cells: str) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "source": cell, "metadata": {}, "outputs": []}
                for cell in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def build(root: Path, modules: int, notebooks: int) -> None:
    for i in range(modules):
        package = root / f"pkg{i % 20}"
        package.mkdir(exist_ok=True)
        (package / f"mod{i}.py").write_text(PREDICT * 5)
    for i in range(notebooks):
        (root / f"nb{i}.ipynb").write_text(notebook(TRAIN * 5))
    (root / "requirements.txt").write_text("pandas==2.2.2\nflask\n")


def main() -> None:
    print(f"{'files':>6} {'MB':>6} {'median s':>9} {'findings':>9}")
    for modules, notebooks in ((50, 5), (500, 50), (2000, 200)):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            build(root, modules, notebooks)
            size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
            times, findings = [], 0
            for _ in range(5):
                started = time.perf_counter()
                findings = len(audit(root).findings)
                times.append(time.perf_counter() - started)
            files = modules + notebooks + 1
            print(f"{files:>6} {size:>6.1f} {statistics.median(times):>9.3f} {findings:>9}")


if __name__ == "__main__":
    main()
