"""The example project's data: a deterministic customer-churn data set with optional drift
and data-quality faults (see ``generate``)."""

from __future__ import annotations

from keel.examples.generate import DRIFT_KINDS, FAULT_KINDS, GeneratedData, generate

__all__ = ["DRIFT_KINDS", "FAULT_KINDS", "GeneratedData", "generate"]
