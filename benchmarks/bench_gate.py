"""The gate on an imbalanced loan table: what the positive class and the baseline change,
and what per-slice confidence intervals cost.

A synthetic 9,857-row loan table with a 5% minority ("Charged Off", which sorts first)
and a 50-value slice column. Prints one table: average precision with the minority and
the majority called positive, the DummyClassifier's scores, and the time to gather slice
evidence (metrics, intervals, counts) for 50 slices and for 5.

    python benchmarks/bench_gate.py [--rows 9857] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, average_precision_score

from keel.schema import SliceSpec
from keel.training.artifact import make_bundle
from keel.training.inputs import infer_schema, prepare
from keel.training.slice_evidence import slice_evidence

BAD, GOOD = "Charged Off", "Fully Paid"


def loans(rows: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(60, 15, rows).round(1)
    grade = rng.choice(list("ABCD"), rows)
    risk = -(income - 60) / 10 + (grade == "D") * 1.5 + rng.normal(0, 1, rows)
    bad = np.argsort(np.argsort(-risk)) < round(rows * 0.05)
    return pd.DataFrame(
        {
            "income": income,
            "grade": grade,
            "branch": rng.integers(0, 50, rows),
            "region": rng.integers(0, 5, rows),
            "loan_status": np.where(bad, BAD, GOOD),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=9857)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = loans(args.rows)
    train, test = frame.iloc[: int(len(frame) * 0.8)], frame.iloc[int(len(frame) * 0.8) :]
    schema = infer_schema(frame[["income", "grade"]])
    X_train, X_test = prepare(train, schema), prepare(test, schema)
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0)
    model.fit(X_train, train["loan_status"])
    dummy = DummyClassifier(strategy="prior").fit(X_train, train["loan_status"])
    bundle = make_bundle(model, schema, "loan_status", train["loan_status"].to_numpy())
    proba = model.predict_proba(X_test)
    y = test["loan_status"]
    rows = [
        ("positive class chosen", str(bundle["positive"])),
        ("AP, minority positive", f"{average_precision_score(y, proba[:, 0], pos_label=BAD):.3f}"),
        ("AP, majority positive", f"{average_precision_score(y, proba[:, 1], pos_label=GOOD):.3f}"),
        (
            "dummy AP, minority / majority",
            f"{average_precision_score(y == BAD, dummy.predict_proba(X_test)[:, 0]):.3f} / "
            f"{average_precision_score(y == GOOD, dummy.predict_proba(X_test)[:, 1]):.3f}",
        ),
        (
            "accuracy, model / dummy",
            f"{accuracy_score(y, model.predict(X_test)):.4f} / "
            f"{accuracy_score(y, dummy.predict(X_test)):.4f}",
        ),
    ]
    for column, count in (("branch", 50), ("region", 5)):
        spec = SliceSpec(column=column, thresholds={"roc_auc": ">= 0.8", "f1": ">= 0.3"})
        timings, found = [], {}
        for _ in range(args.repeat):
            started = time.perf_counter()
            found = slice_evidence(spec, bundle, test)
            timings.append(time.perf_counter() - started)
        judged = sum(1 for s in found.values() if min(s.positives or 0, s.negatives or 0) >= 10)
        rows.append(
            (
                f"slice evidence, {count} slices (roc_auc + f1)",
                f"{statistics.median(timings):.2f} s; {judged} of {len(found)} judged",
            )
        )
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
