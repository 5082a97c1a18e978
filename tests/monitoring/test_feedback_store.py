"""Feedback in the metadata store on every backend: new, updated and unchanged by id."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from keel.monitoring.feedback import FeedbackLoad, load_labels, store_feedback
from keel.store.metadata import MetadataStore


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    """A fresh metadata store (SQLite, and PostgreSQL when it answers)."""
    opened = MetadataStore.open(store_url)
    yield opened
    opened.close()


def _labels(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["prediction_id", "label"])


def test_a_second_load_of_the_same_rows_is_unchanged(store: MetadataStore) -> None:
    """Loading the same labels twice: all new, then all unchanged; arrival time kept."""
    rows = _labels([("a", "Yes"), ("b", "No"), ("c", "Yes")])
    assert store_feedback(store, rows, now=100.0) == FeedbackLoad(new=3, updated=0, unchanged=0)
    assert store_feedback(store, rows, now=200.0) == FeedbackLoad(new=0, updated=0, unchanged=3)
    assert set(load_labels(store, ["a", "b", "c"])["received_at"]) == {100.0}


def test_a_changed_label_is_updated_and_a_new_id_is_new(store: MetadataStore) -> None:
    """One corrected label and one new id: 1 updated (its new arrival time), 1 new."""
    store_feedback(store, _labels([("a", "Yes"), ("b", "No")]), now=100.0)
    again = store_feedback(store, _labels([("a", "No"), ("b", "No"), ("c", "Yes")]), now=200.0)
    stored = load_labels(store, ["a", "b", "c"]).set_index("prediction_id")
    assert again == FeedbackLoad(new=1, updated=1, unchanged=1)
    assert stored.loc["a", "label"] == "No" and stored.loc["a", "received_at"] == 200.0
