"""CI/CD for model changes: the steps a pipeline runs, written for GitHub or GitLab.

On a change to keel.yaml or the project's code (a pull or merge request): check the
config, validate every source's newest published data against the checks as changed,
train a candidate, which the gate judges against production, and publish the gate report
as an artifact; the job fails when the gate does. On a merge to the main branch: deploy
the newest gated version as a shadow of production, for the worker to take on.

The steps are defined once (``candidate_steps`` and ``deploy_steps``) and rendered per
provider, so what a test runs is what the workflow runs. Addresses and secrets reach the
pipeline as the ``${VAR}`` names keel.yaml already uses, each from the provider's secret
store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from keel import __version__

__all__ = [
    "PROVIDERS",
    "Step",
    "candidate_steps",
    "deploy_steps",
    "project_folder",
    "render",
    "workflow_path",
]

Provider = Literal["github", "gitlab"]
PROVIDERS: tuple[Provider, ...] = ("github", "gitlab")
GATE_REPORT = "gate-report.json"
_WATCHED = ["keel.yaml", "**/*.py", "**/*.sql"]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Step:
    """One pipeline step: ``keel`` steps are Keel's own commands (a test runs them in
    order); ``setup`` installs Keel."""

    name: str
    run: str
    kind: Literal["setup", "keel"] = "keel"


def candidate_steps(sources: list[str], extras: str) -> list[Step]:
    """Check, validate, train and gate a candidate; the gate report is the artifact."""
    steps = [
        Step("install Keel", f"pip install 'keel-ml[{extras}]=={__version__}'", "setup"),
        Step("check keel.yaml", "keel config check"),
    ]
    steps += [
        Step(f"validate the newest '{name}' data", f"keel validate --source {name} --latest")
        for name in sources
    ]
    steps.append(Step("train and gate a candidate", f"keel train --json > {GATE_REPORT}"))
    return steps


def deploy_steps(extras: str, revision: str) -> list[Step]:
    """After a merge: the newest gated version becomes production's shadow."""
    return [
        Step("install Keel", f"pip install 'keel-ml[{extras}]=={__version__}'", "setup"),
        Step(
            "deploy the candidate as a shadow",
            f'keel deploy latest --shadow --reason "merged {revision}"',
        ),
    ]


def workflow_path(provider: Provider) -> str:
    """Where the provider looks for the pipeline, from the repository root."""
    return ".github/workflows/keel.yml" if provider == "github" else ".gitlab-ci.yml"


def render(provider: Provider, config_text: str, sources: list[str], folder: str) -> str:
    """The pipeline file for ``provider``; ``folder`` is the project's folder in the
    repository ("." at its root)."""
    secrets = sorted(set(_names(yaml.safe_load(config_text))))
    extras = _extras(config_text)
    if provider == "github":
        document = _github(secrets, sources, extras, folder)
    else:
        document = _gitlab(secrets, sources, extras, folder)
    where = "repository secrets" if provider == "github" else "masked CI/CD variables"
    header = (
        "# Written by `keel ci init`: a model change is gated before it ships.\n"
        f"# Set {', '.join(secrets) or 'the store addresses keel.yaml reads'} as {where}.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, width=100)


def _names(node: Any) -> list[str]:
    """The ${VAR} names in keel.yaml's values (not in its comments)."""
    if isinstance(node, dict):
        return [name for value in node.values() for name in _names(value)]
    if isinstance(node, list):
        return [name for value in node for name in _names(value)]
    return _ENV.findall(node) if isinstance(node, str) else []


def _extras(config_text: str) -> str:
    """The stores a team's pipeline reaches, and the boosters keel.yaml trains."""
    found = ["postgres", "redis", "s3"]
    found += [name for name in ("xgboost", "lightgbm") if f"{name}." in config_text]
    return ",".join(found)


def _paths(folder: str) -> list[str]:
    prefix = "" if folder in ("", ".") else folder.rstrip("/") + "/"
    return [prefix + pattern for pattern in _WATCHED]


def _github(secrets: list[str], sources: list[str], extras: str, folder: str) -> dict[str, Any]:
    env = {name: "${{ secrets.%s }}" % name for name in secrets}  # noqa: UP031
    setup = [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
    ]
    candidate = setup + [_github_step(step) for step in candidate_steps(sources, extras)]
    candidate.append(
        {
            "name": "publish the gate report",
            "if": "always()",
            "uses": "actions/upload-artifact@v4",
            "with": {"name": "gate-report", "path": f"{folder}/{GATE_REPORT}"},
        }
    )
    deploy = setup + [_github_step(step) for step in deploy_steps(extras, "${{ github.sha }}")]
    defaults = {"run": {"working-directory": folder, "shell": "bash"}}
    return {
        "name": "keel model change",
        "on": {
            "pull_request": {"paths": _paths(folder)},
            "push": {"branches": ["main"], "paths": _paths(folder)},
        },
        "env": env,
        "defaults": defaults,
        "jobs": {
            "candidate": {
                "if": "github.event_name == 'pull_request'",
                "runs-on": "ubuntu-latest",
                "steps": candidate,
            },
            "shadow": {
                "if": "github.event_name == 'push'",
                "runs-on": "ubuntu-latest",
                "steps": deploy,
            },
        },
    }


def _github_step(step: Step) -> dict[str, str]:
    return {"name": step.name, "run": step.run}


def _gitlab(_secrets: list[str], sources: list[str], extras: str, folder: str) -> dict[str, Any]:
    changes = {"changes": _paths(folder)}
    enter = [f"cd {folder}"]
    candidate = [step.run for step in candidate_steps(sources, extras)]
    deploy = [step.run for step in deploy_steps(extras, "$CI_COMMIT_SHA")]
    return {
        "stages": ["candidate", "shadow"],
        "default": {"image": "python:3.11-slim"},
        "candidate": {
            "stage": "candidate",
            "rules": [{"if": "$CI_PIPELINE_SOURCE == 'merge_request_event'", **changes}],
            "script": enter + candidate,
            "artifacts": {"when": "always", "paths": [f"{folder}/{GATE_REPORT}"]},
        },
        "shadow": {
            "stage": "shadow",
            "rules": [{"if": "$CI_COMMIT_BRANCH == 'main'", **changes}],
            "script": enter + deploy,
        },
    }


def project_folder(project_root: Path, repository: Path) -> str:
    """The project's folder relative to the repository root ("." when it is the root)."""
    try:
        relative = project_root.resolve().relative_to(repository.resolve())
    except ValueError:
        raise ValueError(f"{project_root} is not inside the repository {repository}") from None
    return str(relative) if str(relative) != "." else "."
