"""The README's Production section: every command it shows is one the deployment runs and
the real CLI accepts."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import DEPLOY, K8S, REPO, documents, keel_help

README = (REPO / "README.md").read_text()
SECTION = README.split("\n## Production\n", 1)[1].split("\n## ", 1)[0]
SHELL = [
    shlex.split(line.split("  #", 1)[0].strip())
    for block in re.findall(r"```bash\n(.*?)```", SECTION, re.DOTALL)
    for line in block.replace("\\\n", " ").splitlines()
    if line.strip()
]
SERVICES: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
K8S_OBJECTS = [doc for path in K8S.glob("*.yaml") for doc in documents(path)]


def _table_commands() -> dict[str, list[str]]:
    """The process table: first word of the process cell -> the keel command's args."""
    found = {}
    for row in re.findall(r"^\| (\w+)[^|]*\| `keel ([^`]+)` \|", SECTION, re.MULTILINE):
        found[row[0]] = shlex.split(row[1])
    return found


def _compose_keel_runs() -> list[list[str]]:
    return [words for words in SHELL if words[:4] == ["docker", "compose", "run", "--rm"]]


def test_the_section_shows_the_three_processes() -> None:
    """The table names the migration, serve and worker commands."""
    assert set(_table_commands()) == {"migration", "serve", "worker"}


@pytest.mark.parametrize(
    ("process", "service"), [("migration", "migrate"), ("serve", "serve"), ("worker", "worker")]
)
def test_each_process_command_is_the_one_compose_runs(process: str, service: str) -> None:
    """The table's command is the compose service's (less --json) and the CLI accepts it."""
    shown = _table_commands()[process]
    assert shown == [arg for arg in SERVICES[service]["command"] if arg != "--json"]
    keel_help(shown)


def test_each_compose_run_names_a_service_and_a_real_keel_command() -> None:
    """`docker compose run --rm SERVICE ARGS`: the service is a keel one, ARGS a keel command."""
    runs = _compose_keel_runs()
    assert runs
    for words in runs:
        service, args = words[4], words[5:]
        assert SERVICES[service]["image"] == "keel:latest"
        keel_help(args)


def test_the_scale_command_names_the_serve_service() -> None:
    """`docker compose up -d --scale serve=N` scales a service that exists."""
    [scale] = [words for words in SHELL if "--scale" in words]
    assert scale[scale.index("--scale") + 1].split("=")[0] in SERVICES


def test_kubectl_exec_runs_a_real_keel_command_in_a_deployment_that_exists() -> None:
    """`kubectl exec deploy/NAME -- keel ARGS`: NAME is a Deployment, ARGS a keel command."""
    [words] = [words for words in SHELL if words[:2] == ["kubectl", "exec"]]
    deployments = {doc["metadata"]["name"] for doc in K8S_OBJECTS if doc["kind"] == "Deployment"}
    assert words[2].removeprefix("deploy/") in deployments
    separator = words.index("--")
    assert words[separator + 1] == "keel"
    keel_help(words[separator + 2 :])


def test_the_secret_the_readme_creates_has_every_key_the_manifests_read() -> None:
    """`kubectl create secret generic keel-secrets --from-env-file=F`, F copied from the
    example the README names: its keys are exactly the secretKeyRef keys."""
    [words] = [words for words in SHELL if words[:3] == ["kubectl", "create", "secret"]]
    [env_file] = [word.split("=", 1)[1] for word in words if word.startswith("--from-env-file=")]
    [copy] = [words for words in SHELL if words[0] == "cp" and words[2] == env_file]
    lines = (REPO / copy[1]).read_text().splitlines()
    created = {line.split("=", 1)[0] for line in lines if "=" in line}
    read = {
        entry["valueFrom"]["secretKeyRef"]["key"]
        for doc in K8S_OBJECTS
        if "template" in doc.get("spec", {})
        for container in doc["spec"]["template"]["spec"]["containers"]
        for entry in container["env"]
        if entry["valueFrom"]["secretKeyRef"]["name"] == words[4]
    }
    assert created == read
