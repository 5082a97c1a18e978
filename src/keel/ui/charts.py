"""Charts as inline SVG, drawn on the server: no JavaScript and no network.

Pure functions from numbers to markup. Colours come from CSS classes (``ref``, ``cur``,
``s0``..``s5``), so the page's Content-Security-Policy can forbid inline styles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape

__all__ = ["Series", "histogram_svg", "line_svg"]

_W, _H = 640, 200
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 48, 12, 12, 28

Series = tuple[str, Sequence[tuple[float, float | None]]]
"""A named line: (label, [(unix time, value or None for a gap)])."""


def _number(value: float) -> str:
    return f"{value:.3g}"


def _percent(value: float) -> str:
    return f"{value:.0%}"


def _frame(body: list[str], title: str) -> str:
    label = escape(title, quote=True)
    return (
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{label}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _axes(top: float, bottom: float = 0.0, fmt: Callable[[float], str] = _number) -> list[str]:
    x0, y0, y1 = _PAD_L, _H - _PAD_B, _PAD_T
    return [
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{_W - _PAD_R}" y2="{y0}"/>',
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/>',
        f'<text class="tick" x="{x0 - 4}" y="{y1 + 8}" text-anchor="end">{fmt(top)}</text>',
        f'<text class="tick" x="{x0 - 4}" y="{y0}" text-anchor="end">{fmt(bottom)}</text>',
    ]


def histogram_svg(
    labels: Sequence[str], reference: Sequence[float], current: Sequence[float], title: str
) -> str:
    """Paired bars per bucket: the reference's share beside the current window's."""
    if not labels:
        return _frame(['<text class="empty" x="320" y="100">no buckets</text>'], title)
    top = max([*reference, *current, 1e-9])
    slot = (_W - _PAD_L - _PAD_R) / len(labels)
    height = _H - _PAD_T - _PAD_B
    body = _axes(top)
    for index, label in enumerate(labels):
        x = _PAD_L + index * slot
        for offset, (kind, share) in enumerate(
            (("ref", reference[index]), ("cur", current[index]))
        ):
            bar = height * share / top
            body.append(
                f'<rect class="{kind}" x="{x + offset * slot / 2:.1f}" '
                f'y="{_H - _PAD_B - bar:.1f}" width="{max(slot / 2 - 1, 0.5):.1f}" '
                f'height="{bar:.1f}"><title>{escape(label)}: {kind} {share:.1%}</title></rect>'
            )
    body += _bucket_ticks(labels, slot)
    return _frame(body, title)


def _bucket_ticks(labels: Sequence[str], slot: float) -> list[str]:
    step = max(1, len(labels) // 6)
    return [
        f'<text class="tick" x="{_PAD_L + i * slot + slot / 2:.1f}" y="{_H - 10}" '
        f'text-anchor="middle">{escape(labels[i][:14])}</text>'
        for i in range(0, len(labels), step)
    ]


def line_svg(series: Sequence[Series], title: str, percent: bool = False) -> str:
    """One line per series over time, with gaps where a value is missing."""
    points = [(t, v) for _, values in series for t, v in values if v is not None]
    if not points:
        return _frame(['<text class="empty" x="320" y="100">nothing recorded yet</text>'], title)
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    low, high = min(0.0, *(v for _, v in points)), max(v for _, v in points)
    high = high if high > low else low + 1.0
    body = _axes(high, low, _percent if percent else _number)
    for index, (name, values) in enumerate(series):
        body += _polyline(values, index, name, (t0, t1), (low, high))
    body += _time_ticks(t0, t1)
    body += _legend(series)
    return _frame(body, title)


def _xy(t: float, v: float, span: tuple[float, float], scale: tuple[float, float]) -> str:
    width, height = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B
    fx = 0.5 if span[1] == span[0] else (t - span[0]) / (span[1] - span[0])
    fy = (v - scale[0]) / (scale[1] - scale[0])
    return f"{_PAD_L + fx * width:.1f},{_H - _PAD_B - fy * height:.1f}"


def _polyline(
    values: Sequence[tuple[float, float | None]],
    index: int,
    name: str,
    span: tuple[float, float],
    scale: tuple[float, float],
) -> list[str]:
    runs: list[list[str]] = [[]]
    marks = []
    for t, v in values:
        if v is None:
            runs.append([])
            continue
        runs[-1].append(_xy(t, v, span, scale))
        x, y = runs[-1][-1].split(",")
        marks.append(
            f'<circle class="s{index % 6}" cx="{x}" cy="{y}" r="2.5">'
            f"<title>{escape(name)} {_when(t)}: {v:.4g}</title></circle>"
        )
    lines = [
        f'<polyline class="line s{index % 6}" points="{" ".join(run)}"/>' for run in runs if run
    ]
    return lines + marks


def _when(t: float) -> str:
    return f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M}"


def _time_ticks(t0: float, t1: float) -> list[str]:
    y = _H - 10
    left, right = _when(t0), _when(t1)
    if t0 == t1:
        return [f'<text class="tick" x="{_W / 2}" y="{y}" text-anchor="middle">{left}</text>']
    return [
        f'<text class="tick" x="{_PAD_L}" y="{y}">{left}</text>',
        f'<text class="tick" x="{_W - _PAD_R}" y="{y}" text-anchor="end">{right}</text>',
    ]


def _legend(series: Sequence[Series]) -> list[str]:
    if len(series) < 2:
        return []
    return [
        f'<text class="legend s{i % 6}" x="{_W - _PAD_R - 4}" y="{_PAD_T + 12 * (i + 1)}" '
        f'text-anchor="end">{escape(name)}</text>'
        for i, (name, _) in enumerate(series)
    ]
