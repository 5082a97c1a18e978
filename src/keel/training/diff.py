"""``keel registry diff``: what changed between two versions, as a pure function of records."""

from __future__ import annotations

from typing import Any

__all__ = ["diff_records", "flatten"]

_DATA_KEYS = ("ref", "sha256", "rows", "start", "end")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys (lists stay whole)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def diff_records(
    a: int, record_a: dict[str, Any], b: int, record_b: dict[str, Any]
) -> dict[str, Any]:
    """Metric deltas (b minus a), and changed config, data, code and library entries."""
    return {
        "a": a,
        "b": b,
        "metrics": _metric_deltas(record_a.get("metrics", {}), record_b.get("metrics", {})),
        "config": _changes(
            flatten(record_a.get("training") or {}), flatten(record_b.get("training") or {})
        ),
        "data": _changes(_pick(record_a.get("data", {})), _pick(record_b.get("data", {}))),
        "code": _changes(record_a.get("code") or {}, record_b.get("code") or {}),
        "libraries": _changes(record_a.get("libraries") or {}, record_b.get("libraries") or {}),
    }


def _metric_deltas(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name in sorted(set(a) | set(b)):
        before, after = a.get(name), b.get(name)
        delta = None
        if isinstance(before, int | float) and isinstance(after, int | float):
            delta = round(after - before, 6)
        out[name] = {"a": before, "b": after, "delta": delta}
    return out


def _changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: {"a": a.get(key), "b": b.get(key)}
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    }


def _pick(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data.get(key) for key in _DATA_KEYS}
