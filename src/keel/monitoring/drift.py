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
from keel.monitoring.multivariate import mmd_result
from keel.monitoring.reference import Reference
from keel.monitoring.results import (
    ColumnDrift,
    Decision,
    DriftReport,
    DriftSettings,
    Moved,
    TestName,
)
from keel.monitoring.sketch import Bins, ColumnSketch, Sketch, column_values

__all__ = ["compare", "compare_frame", "role_of"]

OUTPUT_PREFIX = "output"
SCORES = ("confidence", "score")  # logged beside the output: how sure, and the raw score


def role_of(column: str) -> str:
    """Model outputs (``output``, ``output.*``, ``confidence``, ``score``) versus input
    features."""
    is_output = column in SCORES or column.split(".", 1)[0] == OUTPUT_PREFIX
    return "output" if is_output else "feature"


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
        _column(name, reference, window.columns[name], settings, raw, alpha)
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
    adjusted = stats.adjust([r.p_value for r in results], settings.correction)
    return [
        dataclasses.replace(r, p_adjusted=float(p), decision=_decision(r, float(p), settings))
        for r, p in zip(results, adjusted, strict=True)
    ]


def _decision(result: ColumnDrift, p_adjusted: float, settings: DriftSettings) -> Decision:
    if p_adjusted <= settings.alpha and result.effect >= result.min_effect:
        return "drift"
    if p_adjusted > settings.alpha and result.critical_effect > result.min_effect:
        return "insufficient_data"
    return "no_drift"


def _per_test_alpha(settings: DriftSettings, tests: int) -> float:
    """The level one test faces after correction (Bonferroni's, the strictest step)."""
    return settings.alpha if settings.correction == "none" else settings.alpha / max(tests, 1)


def _family_size(reference: Reference, settings: DriftSettings) -> int:
    size = sum(_tested(bins, settings) for bins in reference.layout.columns.values())
    return size + ("mmd" in settings.tests)


# -- one column -------------------------------------------------------------------------


def _column(
    name: str,
    reference: Reference,
    window: ColumnSketch,
    settings: DriftSettings,
    raw: Mapping[str, np.ndarray] | None,
    alpha: float,
) -> ColumnDrift:
    bins = reference.layout.columns[name]
    ref = reference.sketch.columns[name]
    base = {
        "column": name,
        "role": role_of(name),
        "rows": window.rows,
        "reference_rows": ref.rows,
        "nulls": window.nulls,
        "reference_nulls": ref.nulls,
    }
    if window.counts.sum() == 0 or ref.counts.sum() == 0:
        return _empty(base, bins, settings)
    if bins.kind == "categorical":
        return _categorical(base, bins, ref, window, settings, alpha)
    values = raw.get(name) if raw is not None else None
    return _numeric(base, reference, name, ref, window, settings, alpha, values)


def _empty(base: dict[str, Any], bins: Bins, settings: DriftSettings) -> ColumnDrift:
    test: TestName = "chi2" if bins.kind == "categorical" else _numeric_test(settings)
    return ColumnDrift(
        **base,
        test=test,
        statistic=0.0,
        p_value=1.0,
        effect=0.0,
        effect_name=_EFFECT_NAMES[test],
        min_effect=settings.effect_gate(test),
        critical_effect=float("inf"),
        note="every value in the window is null" if base["rows"] else "the window is empty",
    )


_EFFECT_NAMES = {"ks": "ks_distance", "chi2": "total_variation", "psi": "psi", "mmd": "mmd2"}


def _numeric_test(settings: DriftSettings) -> TestName:
    return "ks" if "ks" in settings.tests else "psi"


def _categorical(
    base: dict[str, Any],
    bins: Bins,
    ref: ColumnSketch,
    window: ColumnSketch,
    settings: DriftSettings,
    alpha: float,
) -> ColumnDrift:
    unseen = int(window.counts[-1])
    statistic, p_value, df = stats.categorical_test(ref.counts, window.counts, unseen)
    n_eff = stats.effective_n(int(ref.counts.sum()), int(window.counts.sum()))
    return ColumnDrift(
        **base,
        test="chi2",
        statistic=statistic,
        p_value=p_value,
        effect=stats.tvd(ref.counts, window.counts),
        effect_name="total_variation",
        min_effect=settings.effect_gate("chi2"),
        critical_effect=stats.tvd_critical(n_eff, df, alpha),
        moved=_moved(bins.labels(), ref.counts, window.counts, settings.top),
        note=f"{unseen / window.counts.sum():.1%} of values never seen in the reference"
        if unseen
        else None,
    )


def _numeric(
    base: dict[str, Any],
    reference: Reference,
    name: str,
    ref: ColumnSketch,
    window: ColumnSketch,
    settings: DriftSettings,
    alpha: float,
    values: np.ndarray | None,
) -> ColumnDrift:
    groups = stats.psi_groups(ref.counts, settings.psi_bins)
    ref_coarse, win_coarse = np.bincount(groups, ref.counts), np.bincount(groups, window.counts)
    psi_value, psi_p = stats.psi_test(ref_coarse, win_coarse)
    n_ref, n_win = int(ref.counts.sum()), int(window.counts.sum())
    moved = _moved(_group_labels(reference.layout.columns[name], groups), ref_coarse, win_coarse)
    if _numeric_test(settings) == "psi":
        n_eff = stats.effective_n(n_ref, n_win)
        statistic, p_value, critical = (
            psi_value,
            psi_p,
            stats.psi_critical(n_eff, len(ref_coarse), alpha),
        )
    else:
        statistic, p_value, n_ref = _ks(reference, name, ref, window, values)
        critical = stats.ks_critical(n_ref, n_win, alpha)
    test = _numeric_test(settings)
    return ColumnDrift(
        **base,
        test=test,
        statistic=statistic,
        p_value=p_value,
        effect=statistic,
        effect_name=_EFFECT_NAMES[test],
        min_effect=settings.effect_gate(test),
        critical_effect=critical,
        psi=psi_value,
        moved=moved[: settings.top],
    )


def _ks(
    reference: Reference,
    name: str,
    ref: ColumnSketch,
    window: ColumnSketch,
    values: np.ndarray | None,
) -> tuple[float, float, int]:
    """KS on raw values when both sides have them (exact for small samples), else on bins."""
    if values is not None and name in reference.sample:
        ref_values = reference.sorted_sample(name)
        win_values, _ = column_values(values, "numeric")
        if ref_values.size and win_values.size:
            distance, p_value = stats.ks_samples(ref_values, win_values)
            return distance, p_value, int(ref_values.size)
    distance, p_value = stats.ks_counts(ref.counts, window.counts)
    return distance, p_value, int(ref.counts.sum())


def _group_labels(bins: Bins, groups: np.ndarray) -> list[str]:
    edges = bins.edges
    labels = []
    for group in range(int(groups.max()) + 1):
        members = np.flatnonzero(groups == group)
        if members.size == 0:
            labels.append("(empty)")
        elif members[0] == 0:
            labels.append(f"< {edges[0]:.4g}")
        elif members[-1] == len(groups) - 1:
            labels.append(f">= {edges[-1]:.4g}")
        else:
            labels.append(f"[{edges[members[0] - 1]:.4g}, {edges[members[-1]]:.4g})")
    return labels


def _moved(
    labels: list[str], reference: np.ndarray, window: np.ndarray, top: int = 100
) -> tuple[Moved, ...]:
    ref_share = reference / max(reference.sum(), 1)
    win_share = window / max(window.sum(), 1)
    order = np.argsort(-np.abs(win_share - ref_share), kind="stable")[:top]
    return tuple(
        Moved(labels[i], float(ref_share[i]), float(win_share[i]))
        for i in order
        if ref_share[i] != win_share[i]
    )


def _row_sample(arrays: Mapping[str, np.ndarray], size: int, seed: int) -> dict[str, np.ndarray]:
    picked = np.random.default_rng(seed).permutation(_length(arrays))[:size]
    return {name: values[picked] for name, values in arrays.items()}


def _length(arrays: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(arrays.values()))) if arrays else 0
