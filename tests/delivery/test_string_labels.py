"""Canary and shadow evidence on a model whose classes are text (``Yes``/``No``).

Feedback is stored as sent; each arm's answers are matched to it by the rules the
monitoring layer uses (``keel.monitoring.labels``), so text classes are judged instead of
dropped as "not a number", and 0/1 models keep matching ``1``, ``true`` and ``yes``.
"""

from __future__ import annotations

import pandas as pd
import pytest

from keel.delivery import ShadowCriteria, ShadowPair
from keel.delivery.evidence import arm_stats, labels_for
from keel.delivery.shadow import compare
from keel.monitoring.feedback import store_feedback
from keel.monitoring.labels import same_label
from keel.project import Project


@pytest.mark.parametrize(
    ("answer", "label", "same"),
    [
        ("Yes", "Yes", True),
        ("Yes", " yes ", True),
        ("Yes", "No", False),
        (1, "1", True),
        (1.0, "true", True),
        (0, "no", True),
        (0, "yes", False),
        (True, "1", True),
        (False, "false", True),
        (2, "2.0", True),
        (12.5, "12.5", True),
        (None, "Yes", False),
        ("Yes", None, False),
        (float("nan"), "1", False),
    ],
)
def test_same_label(answer: object, label: object, same: bool) -> None:
    """A served answer is a label when their text or number agrees (yes/true for 1)."""
    assert same_label(answer, label) is same


def test_a_text_class_canary_gets_its_realised_accuracy() -> None:
    """40 Yes/No answers, 30 right by label: accuracy 0.75 (it was None: labels were read
    as numbers and 'Yes' is none)."""
    answers = ["Yes", "No"] * 20
    truth = answers[:30] + ["No" if a == "Yes" else "Yes" for a in answers[30:]]
    rows = [{"prediction_id": f"p{i}", "output": a} for i, a in enumerate(answers)]
    labels = {f"p{i}": y for i, y in enumerate(truth)}
    expected = sum(a == y for a, y in zip(answers, truth, strict=True)) / len(answers)
    assert arm_stats(rows, labels).metric == pytest.approx(expected)


def test_shadow_accuracy_on_text_labels_ignores_case() -> None:
    """The shadow report's accuracy matches 'yes' sent by a team to the answer 'Yes'."""
    pairs = [ShadowPair("Yes", "No", label="yes"), ShadowPair("No", "No", label="no")] * 5
    report = compare(pairs, "classification", ShadowCriteria(5))
    assert report.accuracy_production == 1.0 and report.accuracy_shadow == 0.5


def test_labels_for_returns_the_labels_as_sent(project: Project) -> None:
    """Stored feedback comes back as sent ('Yes', not NaN) for the logged prediction ids."""
    sent = pd.DataFrame({"prediction_id": ["p1", "p2"], "label": ["Yes", "No"]})
    store_feedback(project.store, sent, now=1_700_000_000.0)
    frame = pd.DataFrame({"prediction_id": ["p1", "p2", "p3"]})
    assert labels_for(project, frame) == {"p1": "Yes", "p2": "No"}
