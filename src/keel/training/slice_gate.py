"""The gate's slice checks: judged on class counts and a confidence interval.

A slice of a binary classifier is judged only when it holds ``min_positives`` positives
and ``min_negatives`` negatives (other models: ``min_rows`` rows); otherwise it is listed
as not judged, which never fails the gate and never prints a tick. A judged slice fails
only when the whole confidence interval of its metric (``keel.training.bounds``) misses
the threshold, and the printed line states the comparison that was actually made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from keel.schema import SliceSpec
from keel.training.checks import NOT, OPS, Check, parse_threshold

__all__ = ["SliceEvidence", "slice_checks", "too_few"]


@dataclass(frozen=True)
class SliceEvidence:
    """One slice's held-out metrics, their confidence intervals and its class counts."""

    rows: int
    metrics: dict[str, float | None]
    intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    positives: int | None = None  # binary targets only
    negatives: int | None = None


def slice_checks(spec: SliceSpec | None, slices: dict[str, SliceEvidence]) -> Iterator[Check]:
    """One check per slice and threshold, or one "not judged" line per thin slice."""
    if spec is None:
        return
    for value, found in sorted(slices.items()):
        prefix = f"slice:{spec.column}={value}"
        reason = too_few(spec, found)
        if reason is not None:
            yield Check.not_judged(prefix, reason, float(found.rows))
            continue
        for metric, threshold in sorted(spec.thresholds.items()):
            yield _slice_check(f"{prefix}:{metric}", found, metric, threshold, spec.confidence)


def too_few(spec: SliceSpec, found: SliceEvidence) -> str | None:
    """Why a slice cannot be judged, or None if it can."""
    if found.positives is not None and found.negatives is not None:
        if min(found.positives, found.negatives) == 0:
            return f"one class only: {_counts(found)}"
        if found.positives < spec.min_positives or found.negatives < spec.min_negatives:
            return (
                f"too few to judge: {_counts(found)}; judging needs "
                f"{spec.min_positives} positives and {spec.min_negatives} negatives"
            )
    if found.rows < spec.min_rows:
        return f"too few to judge: {found.rows} rows; judging needs {spec.min_rows}"
    return None


def _slice_check(
    name: str, found: SliceEvidence, metric: str, threshold: str, confidence: float
) -> Check:
    """Fail only when the whole confidence interval misses the threshold."""
    op, bound = parse_threshold(threshold)
    value = found.metrics.get(metric)
    if value is None:
        return Check.not_judged(name, f"{metric} is undefined on this slice")
    span = found.intervals.get(metric)
    if span is None or op == "==":
        return Check(name, OPS[op](value, bound), value, threshold, _counts(found))
    side, edge = ("upper", span[1]) if op in (">=", ">") else ("lower", span[0])
    level = f"{confidence:.0%}"
    detail = f"{level} interval {span[0]:.4g} to {span[1]:.4g}; {_counts(found)}"
    if OPS[op](value, bound):
        statement = f"{value:g} {op} {bound:g}"
    elif OPS[op](edge, bound):
        statement = f"{value:g}, but its {side} {level} bound {edge:.4g} {op} {bound:g}"
        detail = f"too uncertain to fail; {detail}"
    else:
        statement = f"{value:g}, and its {side} {level} bound {edge:.4g} {NOT[op]} {bound:g}"
    passed = OPS[op](edge, bound)
    return Check(name, passed, value, threshold, detail, statement=statement)


def _counts(found: SliceEvidence) -> str:
    if found.positives is None:
        return _plural(found.rows, "row")
    negatives = found.negatives or 0
    return f"{_plural(found.positives, 'positive')}, {_plural(negatives, 'negative')}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
