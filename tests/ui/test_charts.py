"""Inline SVG charts: well-formed, escaped, honest about missing data."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from keel.ui.charts import histogram_svg, line_svg
from keel.ui.drift import coarsen

NS = "{http://www.w3.org/2000/svg}"


def test_histogram_draws_two_bars_per_bucket() -> None:
    """Reference and current get one bar each per bucket, in a parseable SVG."""
    svg = ET.fromstring(histogram_svg(["a", "b", "c"], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8], "h"))
    bars = svg.findall(f"{NS}rect")
    assert [bar.get("class") for bar in bars] == ["ref", "cur"] * 3


def test_tallest_bar_fills_the_plot() -> None:
    """Heights scale to the largest share."""
    svg = ET.fromstring(histogram_svg(["a", "b"], [0.5, 0.5], [0.0, 1.0], "h"))
    heights = [float(bar.get("height", 0)) for bar in svg.findall(f"{NS}rect")]
    assert heights[3] == max(heights) == 2 * heights[0] and heights[1] == 0.0


def test_labels_and_titles_are_escaped() -> None:
    """Bucket names from data cannot inject markup."""
    svg = histogram_svg(["<script>"], [1.0], [1.0], "<b>x</b>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    ET.fromstring(svg)


def test_line_with_no_values_says_nothing_recorded() -> None:
    """An empty series draws a message, not an empty axis."""
    assert "nothing recorded yet" in line_svg([("a", [(0.0, None)])], "t")


def test_line_breaks_at_missing_values() -> None:
    """A None in the middle splits the line in two."""
    svg = ET.fromstring(line_svg([("a", [(0.0, 1.0), (1.0, 2.0), (2.0, None), (3.0, 1.0)])], "t"))
    assert len(svg.findall(f"{NS}polyline")) == 2
    assert len(svg.findall(f"{NS}circle")) == 3


def test_several_series_get_a_legend() -> None:
    """Two series are told apart by a legend."""
    svg = line_svg([("realised", [(0.0, 0.5)]), ("estimated", [(0.0, 0.6)])], "t", percent=True)
    assert "realised" in svg and "estimated" in svg and "60%" in svg


def test_coarsen_keeps_small_layouts() -> None:
    """Few buckets are drawn as they are."""
    labels, counts = coarsen(["a", "b"], np.array([1, 2]))
    assert (labels, counts) == (["a", "b"], [1, 2])


def test_coarsen_merges_neighbours_and_keeps_the_total() -> None:
    """A hundred buckets become at most 24, with the same total count."""
    labels, counts = coarsen([str(i) for i in range(102)], np.ones(102, dtype=np.int64))
    assert len(labels) <= 24 and sum(counts) == 102 and labels[0] == "0"
