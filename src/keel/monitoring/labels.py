"""Ground truth matched to a model's classes (pure).

Feedback is stored as text (``POST /v1/feedback`` keeps ``str(label)``), so ``1``,
``1.0``, ``"1"`` and ``True`` arrive as different strings. A label matches a class when
its text is the class's text (ignoring case and surrounding space), or when both are
numbers of equal value; for a model whose classes are 0/1 or False/True, true/false and
yes/no also read as 1/0. A label that matches no class is *unmatched*: counted, shown,
and left out of the metrics. One bad row in a batch of thousands should not hide the
window's performance, and it must not silently become a class either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MISSING", "UNMATCHED", "infer_classes", "match_labels", "same_label"]

MISSING = -2
"""Index for a row without a label (no feedback yet)."""
UNMATCHED = -1
"""Index for a label that is none of the model's classes."""

_TRUE, _FALSE = ("true", "yes"), ("false", "no")


def match_labels(labels: Sequence[Any], classes: Sequence[Any]) -> np.ndarray[Any, Any]:
    """Each label's index into ``classes``, ``UNMATCHED`` or ``MISSING``."""
    lookup = _lookup(classes)
    return np.array([_index(label, lookup) for label in labels], dtype=np.int64)


def same_label(answer: Any, label: Any) -> bool:
    """Whether a served answer is this label, by the rules of ``match_labels``: the same
    text (case and surrounding space ignored), or equal numbers, with yes/true read as 1
    and no/false as 0 against an answer of 0/1 or a bool."""
    if _missing(answer) or _missing(label):
        return False
    number = _number(answer)
    classes = [answer, 1 - number] if number is not None and number in (0.0, 1.0) else [answer]
    return _index(label, _lookup(classes)) == 0


def infer_classes(labels: Sequence[Any]) -> list[Any]:
    """Classes as scikit-learn would sort them when no registered model says: numbers by
    value when every label is a number (0/1 both, even if one is absent), else text."""
    texts = sorted({str(label).strip() for label in labels if not _missing(label)})
    numbers = [_number(text) for text in texts]
    if texts and all(number is not None for number in numbers):
        found = {_plain_number(n) for n in numbers if n is not None}
        return [0, 1] if found <= {0, 1} else sorted(found)
    return texts


def _lookup(classes: Sequence[Any]) -> dict[str, int]:
    lookup: dict[str, int] = {}
    for index, value in enumerate(classes):
        text = str(value).strip()
        lookup.setdefault(text, index)
        lookup.setdefault(text.lower(), index)
        number = _number(value)
        if number is not None:
            lookup.setdefault(f"#{number!r}", index)
    if {_number(c) for c in classes} == {0.0, 1.0}:
        one, zero = lookup["#1.0"], lookup["#0.0"]
        lookup.update({word: one for word in _TRUE} | {word: zero for word in _FALSE})
    return lookup


def _index(label: Any, lookup: dict[str, int]) -> int:
    if _missing(label):
        return MISSING
    text = str(label).strip()
    found = lookup.get(text, lookup.get(text.lower()))
    if found is None and (number := _number(text)) is not None:
        found = lookup.get(f"#{number!r}")
    return UNMATCHED if found is None else found


def _number(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _plain_number(number: float) -> int | float:
    return int(number) if number.is_integer() else number


def _missing(label: Any) -> bool:
    if label is None:
        return True
    try:
        return bool(label != label)  # NaN
    except TypeError:  # pandas' NA refuses to be a bool
        return True
