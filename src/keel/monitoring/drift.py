"""Drift of a window against a reference: per-column tests, correction, effect gate.

Pure functions over a reference and a window's sketch (plus, when the window is small
enough, its raw values for the exact KS test and a row sample for MMD). The bar a
column must clear is the larger of two: its test must be significant after correcting
for every column tested, and its effect must reach ``min_effect``. The first bar falls
like 1/sqrt(rows), so on small windows it decides; as the window grows the effect gate
takes over, which is why a million rows do not flag a negligible shift. A window that
could not have seen ``min_effect`` says ``insufficient_data``, never ``no_drift``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from keel.monitoring import stats
from keel.monitoring.columns import column_drift, role_of
from keel.monitoring.multivariate import mmd_result
from keel.monitoring.reference import Reference
from keel.monitoring.results import ColumnDrift, Decision, DriftReport, DriftSettings
from keel.monitoring.sketch import Bins, Sketch

__all__ = ["compare", "compare_frame", "role_of"]


def compare_frame(
    reference: Reference, frame: Any, settings: DriftSettings | None = None
) -> DriftReport:
    """Drift of a window given as a DataFrame (or mapping of columns) of raw rows."""
    settings = settings or DriftSettings()
    names = [name for name in reference.layout.columns if name in frame]
    arrays = {name: np.asarray(frame[name]) for name in names}
    raw = arrays if _length(arrays) <= settings.exact_rows else None
    sample = _row_sample(arrays, settings.mmd_sample, settings.seed)
    return compare(reference, reference.layout.sketch(arrays), settings, raw=raw, sample=sample)


def compare(
    reference: Reference,
    window: Sketch,
    settings: DriftSettings | None = None,
    *,
    raw: Mapping[str, np.ndarray] | None = None,
    sample: Mapping[str, np.ndarray] | None = None,
) -> DriftReport:
    """Drift of a window given as a sketch; ``raw`` enables exact KS, ``sample`` MMD."""
    settings = settings or DriftSettings()
    alpha = _per_test_alpha(settings, _family_size(reference, settings))
    results = [
        column_drift(name, reference, window.columns[name], settings, raw, alpha)
        for name in reference.layout.columns
        if name in window.columns and _tested(reference.layout.columns[name], settings)
    ]
    if "mmd" in settings.tests and sample is not None:
        results.extend(mmd_result(reference, sample, settings))
    return DriftReport(
        columns=tuple(_decide(results, settings)),
        rows=window.rows,
        reference_rows=reference.rows,
        correction=settings.correction,
        alpha=settings.alpha,
    )


def _tested(bins: Bins, settings: DriftSettings) -> bool:
    wanted = {"ks", "psi"} if bins.kind == "numeric" else {"chi2"}
    return bool(wanted & set(settings.tests))


def _decide(results: list[ColumnDrift], settings: DriftSettings) -> list[ColumnDrift]:
    """Correct the p-values of the testable columns together, then decide each column."""
    tested = [r for r in results if r.decision != "untestable"]
    adjusted = iter(stats.adjust([r.p_value for r in tested], settings.correction))
    decided = []
    for r in results:
        if r.decision != "untestable":
            p = float(next(adjusted))
            r = dataclasses.replace(r, p_adjusted=p, decision=_decision(r, p, settings))
        decided.append(r)
    return decided


def _decision(result: ColumnDrift, p_adjusted: float, settings: DriftSettings) -> Decision:
    """Significant and large enough: drift; significant but under the gate: a small shift;
    neither, in a window that could not have seen the gate's effect: not enough data."""
    if p_adjusted <= settings.alpha:
        return "drift" if result.effect >= result.min_effect else "small_shift"
    if result.critical_effect > result.min_effect:
        return "insufficient_data"
    return "no_drift"


def _per_test_alpha(settings: DriftSettings, tests: int) -> float:
    """The level one test faces after correction (Bonferroni's, the strictest step)."""
    return settings.alpha if settings.correction == "none" else settings.alpha / max(tests, 1)


def _family_size(reference: Reference, settings: DriftSettings) -> int:
    size = sum(_tested(bins, settings) for bins in reference.layout.columns.values())
    return size + ("mmd" in settings.tests)


def _row_sample(arrays: Mapping[str, np.ndarray], size: int, seed: int) -> dict[str, np.ndarray]:
    picked = np.random.default_rng(seed).permutation(_length(arrays))[:size]
    return {name: values[picked] for name, values in arrays.items()}


def _length(arrays: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(arrays.values()))) if arrays else 0
