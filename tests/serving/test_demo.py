"""The quickstart's serving step: real HTTP requests to the production model on loopback."""

from __future__ import annotations

from pathlib import Path

from keel.project import Project
from keel.serving import KeyRing, KeyStore
from keel.serving.demo import serve_and_call
from tests.serving.helpers import GOOD, register_model


def test_serve_and_call_answers_over_http_and_revokes_its_key(
    project: Project, tmp_path: Path
) -> None:
    """Two rows come back as predictions from churn@1; the temporary key is revoked after."""
    register_model(project, tmp_path)
    result = serve_and_call(project, [GOOD, {**GOOD, "tenure": 60}])
    versions = [answer["model_version"] for answer in result["answers"]]
    assert result["ready"]["ready"] is True and versions == ["churn@1", "churn@1"]
    assert len(KeyRing(KeyStore(project.store).list())) == 0
