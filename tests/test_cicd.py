"""`keel ci init`: the pipeline files it writes, and their steps run in order on a real
project (the install step aside), as the provider would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers import keel

pytestmark = pytest.mark.slow


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One pipeline line under bash with -eo pipefail (GitHub's shell), keel on the path."""
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repository holding the example project in `model/`, trained and in production."""
    repo = tmp_path_factory.mktemp("repo")
    root = repo / "model"
    assert keel("init", str(root)).returncode == 0
    for step in (["ingest"], ["train"], ["deploy", "latest"]):
        done = keel(*step, "--project", str(root), timeout=600)
        assert done.returncode == 0, done.stderr
    yield repo


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _keel_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("keel ")]


def _job_lines(workflow: dict[str, object], job: str) -> list[str]:
    steps = workflow["jobs"][job]["steps"]  # type: ignore[index]
    return _keel_lines([step["run"] for step in steps if "run" in step])


def _keel_json(*args: str) -> subprocess.CompletedProcess[str]:
    return keel(*args, "--json")


def test_github_candidate_steps_validate_train_and_gate_on_the_project(repository: Path) -> None:
    """The written workflow's candidate job, run line by line in the project's folder:
    config check, the newest data validated, a candidate trained and gated, its report
    written where the upload step looks."""
    done = keel("ci", "init", "github", "--repository", str(repository),
                "--project", str(repository / "model"), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    workflow = yaml.safe_load((repository / ".github/workflows/keel.yml").read_text())
    folder = workflow["defaults"]["run"]["working-directory"]
    steps = workflow["jobs"]["candidate"]["steps"]
    lines = _keel_lines([step["run"] for step in steps if "run" in step])
    assert lines[0] == "keel config check" and "--latest" in lines[1]
    for line in lines:
        ran = _run(line, repository / folder, _env())
        assert ran.returncode == 0, (line, ran.stderr[-2000:])
    uploaded = next(step for step in steps if step.get("uses", "").startswith("actions/upload"))
    report = json.loads((repository / uploaded["with"]["path"]).read_text())
    assert report["gate"]["passed"] is True
    assert workflow["on"]["pull_request"]["paths"][0] == "model/keel.yaml"


def test_github_shadow_job_deploys_the_newest_gated_version_as_shadow(repository: Path) -> None:
    """After the candidate job, the merge job's line puts the newest gated version in
    shadow, with the commit in its reason."""
    keel("ci", "init", "github", "--repository", str(repository),
         "--project", str(repository / "model"), "--force")  # fmt: skip
    workflow = yaml.safe_load((repository / ".github/workflows/keel.yml").read_text())
    lines = _keel_lines(
        [step["run"] for step in workflow["jobs"]["shadow"]["steps"] if "run" in step]
    )
    for line in lines:
        line = line.replace("${{ github.sha }}", "abc123")
        ran = _run(line, repository / "model", _env())
        assert ran.returncode == 0, (line, ran.stderr[-2000:])
    history = json.loads(
        keel("deployments", "--json", "--project", str(repository / "model")).stdout
    )
    assert (history[0]["to_status"], history[0]["reason"]) == ("shadow", "merged abc123")


def test_gitlab_pipeline_runs_the_same_keel_lines(repository: Path) -> None:
    """The GitLab file holds the same Keel lines as the GitHub one, after a cd into the
    project, with the gate report kept as an artifact even when the job fails."""
    keel("ci", "init", "gitlab", "--repository", str(repository), "--project",
         str(repository / "model"), "--force")  # fmt: skip
    keel("ci", "init", "github", "--repository", str(repository), "--project",
         str(repository / "model"), "--force")  # fmt: skip
    gitlab = yaml.safe_load((repository / ".gitlab-ci.yml").read_text())
    github = yaml.safe_load((repository / ".github/workflows/keel.yml").read_text())
    github_lines = _keel_lines(
        [s["run"] for s in github["jobs"]["candidate"]["steps"] if "run" in s]
    )
    assert gitlab["candidate"]["script"][0] == "cd model"
    assert _keel_lines(gitlab["candidate"]["script"]) == github_lines
    assert gitlab["candidate"]["artifacts"] == {
        "when": "always",
        "paths": ["model/gate-report.json"],
    }


def test_bad_provider_and_an_existing_file_are_refused(repository: Path) -> None:
    """An unknown provider and a file already there (without --force): one sentence each."""
    model = str(repository / "model")
    jenkins = keel("ci", "init", "jenkins", "--project", model)
    assert jenkins.returncode == 1 and "github or gitlab" in jenkins.stderr
    keel("ci", "init", "gitlab", "--repository", str(repository), "--project", model, "--force")
    again = keel("ci", "init", "gitlab", "--repository", str(repository), "--project", model)
    assert again.returncode == 1 and "--force" in again.stderr


def test_validate_latest_checks_the_newest_version_against_today_s_checks(
    repository: Path,
) -> None:
    """`keel validate --latest` on a published version passes as ingested (its own keys
    are not counted as seen before), and fails once keel.yaml tightens a check it breaks."""
    model = repository / "model"
    config = yaml.safe_load((model / "keel.yaml").read_text())
    source = next(iter(config["sources"]))
    passed = keel("validate", "--source", source, "--latest", "--json", "--project", str(model))
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["passed"] is True
    original = (model / "keel.yaml").read_text()
    tight = original.replace("range: [18, 110]", "range: [18, 30]")  # ages up to 110 seen
    assert tight != original
    (model / "keel.yaml").write_text(tight)
    try:
        tightened = keel(
            "validate", "--source", source, "--latest", "--json", "--project", str(model)
        )
    finally:
        (model / "keel.yaml").write_text(original)
    assert tightened.returncode == 1
    failed = {f["check"] for f in json.loads(tightened.stdout)["findings"] if f["status"] == "fail"}
    assert failed == {"age.range"}
    both = keel(
        "validate", "--source", source, "--latest", "--data", "x.csv", "--project", str(model)
    )
    assert both.returncode == 1 and "either --data FILE or --latest" in both.stderr


def test_secrets_are_the_variables_keel_yaml_reads_not_its_comments() -> None:
    """A ${VAR} in a value becomes a secret of the pipeline; one in a comment does not."""
    from keel.cicd import render

    text = "name: x\nstore: ${KEEL_STORE_URL}\n# artifacts: s3://b/${NOT_USED}\n"
    rendered = yaml.safe_load(render("github", text, [], "."))
    assert rendered["env"] == {"KEEL_STORE_URL": "${{ secrets.KEEL_STORE_URL }}"}
