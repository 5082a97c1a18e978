"""keel data infer: a proposed checks section that its own sample passes."""

from __future__ import annotations

import pandas as pd

from keel.data.batch import Batch
from keel.data.infer import infer_checks
from keel.data.profiling import profile
from keel.data.validation import Context, validate
from keel.schema import SourceConfig
from tests.data.test_validation import NOW

SAMPLE = pd.DataFrame(
    {
        "id": [f"c{i}" for i in range(200)],
        "plan": ["basic", "premium"] * 100,
        "age": [20 + i % 50 for i in range(200)],
        "score": [None] * 10 + [0.5] * 190,
    }
)


def test_proposal_describes_the_sample() -> None:
    """Keys are unique, small text domains are categories, ranges are observed."""
    with Batch.from_frame(SAMPLE) as batch:
        columns = infer_checks(batch)["columns"]
    assert columns["id"] == {"type": "string", "not_null": True, "unique": True}
    assert columns["plan"]["allowed"] == ["basic", "premium"]
    assert columns["age"]["range"] == [20, 69]
    assert columns["score"]["max_null_rate"] == 0.1


def test_sample_passes_its_own_proposal() -> None:
    """Validating the sample against the proposal gives no failures."""
    with Batch.from_frame(SAMPLE) as batch:
        checks = infer_checks(batch)
        config = SourceConfig.model_validate({"kind": "csv", "path": "x", "checks": checks})
        report = validate(batch, "t", config, profile(batch), Context(now=NOW))
    assert [f.check for f in report.failures] == []
