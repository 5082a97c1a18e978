"""The multivariate test: MMD over all numeric columns of a row sample.

Per-column tests miss shifts in how columns move together; MMD with an RBF kernel on
standardised columns sees them. It needs rows, so it runs on a sample (never on a
sketch) and counts as one more test in the family being corrected.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from keel.monitoring import stats
from keel.monitoring.reference import Reference
from keel.monitoring.results import ColumnDrift, DriftSettings
from keel.monitoring.sketch import as_float

__all__ = ["mmd_result"]


def mmd_result(
    reference: Reference, sample: Mapping[str, np.ndarray], settings: DriftSettings
) -> list[ColumnDrift]:
    names = [n for n in reference.numeric_columns() if n in sample and n in reference.sample]
    if not names:
        return []
    ref_rows = _standardised(reference.sample, names, reference.sample, settings)
    win_rows = _standardised(sample, names, reference.sample, settings)
    rows = len(win_rows)
    statistic, p_value = (0.0, 1.0)
    if rows >= 2:
        statistic, p_value = stats.mmd_permutation(
            ref_rows, win_rows, permutations=settings.permutations, seed=settings.seed
        )
    enough = rows >= settings.mmd_min_rows
    return [
        ColumnDrift(
            column="+".join(names) if len(names) <= 3 else f"{len(names)} numeric columns",
            role="multivariate",
            test="mmd",
            statistic=statistic,
            p_value=p_value,
            effect=statistic,
            effect_name="mmd2",
            min_effect=settings.effect_gate("mmd"),
            critical_effect=0.0 if enough else float("inf"),
            rows=rows,
            reference_rows=len(ref_rows),
            note=f"on a sample of {rows} window rows",
        )
    ]


def _standardised(
    columns: Mapping[str, np.ndarray],
    names: list[str],
    reference: Mapping[str, np.ndarray],
    settings: DriftSettings,
) -> np.ndarray:
    """Rows of the sample, each column scaled by the reference; nulls at the mean."""
    size = len(next(iter(columns.values()))) if columns else 0
    picked = np.random.default_rng(settings.seed).permutation(size)
    picked = picked[: settings.mmd_sample]
    out = []
    for name in names:
        base = reference[name].astype(np.float64)
        centre, scale = np.nanmean(base), np.nanstd(base) or 1.0
        values = as_float(np.asarray(columns[name])[picked])
        out.append(np.nan_to_num((values - centre) / scale))
    return np.column_stack(out)
