"""Predict functions and endpoints that use their input without checking it."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import found

UNCHECKED = {
    "plain function": "def predict(features):\n    return MODEL.predict([features])\n",
    "method": (
        "class Scorer:\n    def predict_proba(self, X):\n        return self.m.predict_proba(X)\n"
    ),
    "flask route": (
        "@app.route('/score', methods=['POST'])\ndef score():\n"
        "    return MODEL.predict([request.json])\n"
    ),
    "fastapi dict body": (
        "@app.post('/predict')\nasync def handler(body: dict):\n    return MODEL.predict([body])\n"
    ),
}
CHECKED = {
    "if and raise": (
        "def predict(features):\n    if 'age' not in features:\n"
        "        raise ValueError('age is required')\n    return MODEL.predict([features])\n"
    ),
    "validator call": (
        "def predict(features):\n    row = validate_row(features)\n"
        "    return MODEL.predict([row])\n"
    ),
    "pydantic body": (
        "@app.post('/predict')\ndef predict(req: ChurnRequest):\n    return MODEL.predict([req])\n"
    ),
    "assert": "def predict(x):\n    assert len(x) == 4\n    return MODEL.predict([x])\n",
    "not a predict function": "def train(df):\n    return MODEL.fit(df)\n",
    "no input": "def predict_all():\n    return MODEL.predict(load())\n",
    "a test of predict": "def test_predict(client):\n    client.post('/predict', json={})\n",
}


@pytest.mark.parametrize("code", UNCHECKED.values(), ids=list(UNCHECKED))
def test_unchecked_predict_is_found(tmp_path: Path, code: str) -> None:
    """A predict function or endpoint with no check on its input is reported at its def."""
    [hit] = found(tmp_path, {"serve.py": code}, "no-input-validation")
    assert hit.file == "serve.py"


@pytest.mark.parametrize("code", CHECKED.values(), ids=list(CHECKED))
def test_checked_predict_is_not_flagged(tmp_path: Path, code: str) -> None:
    """Checks in the body, a validator call or a typed request model count as validation."""
    assert found(tmp_path, {"serve.py": code}, "no-input-validation") == []


def test_fake_models_in_tests_are_not_flagged(tmp_path: Path) -> None:
    """A stub model under tests/ is a test double, not a production predict path."""
    stub = "class Stub:\n    def predict(self, X):\n        return [0] * len(X)\n"
    assert found(tmp_path, {"tests/stubs.py": stub}, "no-input-validation") == []
