"""Cost of keel.yaml's expression language: parsing, evaluating one row in Python (an
action condition on every answer), and checking a data rule against a batch's types.

Run from the repository root with the project's virtualenv active:

    PYTHONPATH=src python benchmarks/bench_expressions.py [--repeat 20000]

For comparison, "python eval" is the compiled ``eval`` the serving layer used before the
one language (no null logic, and a parse tree checked only by a node whitelist).
Target: evaluating an action condition stays under 20 us, so it is noise beside a
prediction.
"""

from __future__ import annotations

import argparse
import ast
import time
from collections.abc import Callable

from keel.data.rules import to_sql
from keel.expressions import ACTION_CONDITION, DATA_RULE, parse

CONDITION = "probability >= 0.7 and plan in ('basic', 'standard') or tenure < 3"
ROW = {"probability": 0.8, "plan": "gold", "tenure": 2}
RULE = "amount >= 0 or kind == 'refund'"
TYPES = {"amount": "BIGINT", "kind": "VARCHAR"}


def per_call(function: Callable[[], object], repeat: int) -> float:
    """Microseconds per call, best of three rounds."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            function()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20000, help="calls per round")
    repeat = parser.parse_args().repeat
    condition = parse(CONDITION, ACTION_CONDITION)
    code = compile(ast.parse(CONDITION, mode="eval"), "<keel.yaml>", "eval")
    rows = [
        ("parse an action condition", per_call(lambda: parse(CONDITION, ACTION_CONDITION), repeat)),
        ("evaluate it on one row", per_call(lambda: condition.evaluate(ROW), repeat)),
        ("python eval, for comparison", per_call(lambda: eval(code, {}, ROW), repeat)),
        (
            "parse a data rule, compile SQL",
            per_call(lambda: parse(RULE, DATA_RULE).to_sql(), repeat),
        ),
        (
            "... and try it on the types",
            per_call(lambda: to_sql(RULE, TYPES), max(repeat // 100, 10)),
        ),
    ]
    print(f"{'step':34} {'us/call':>10}")
    for name, micros in rows:
        print(f"{name:34} {micros:10.1f}")


if __name__ == "__main__":
    main()
