"""deploy/compose.yaml: a valid Compose file whose keel services run real commands.

``compose-spec.json`` beside this file is the Compose Specification's JSON schema
(compose-spec/compose-spec, schema/compose-spec.json, Apache-2.0), vendored because no
package ships it and tests run without a network.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from keel.serving.gatekeeper import scope_for
from tests.deploy.helpers import DEPLOY, KEEL_YAML, keel_help, variables

SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
KEEL_SERVICES = sorted(
    name for name, spec in SERVICES.items() if spec.get("image") == "keel:latest"
)


def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(SCHEMA)


def test_the_compose_file_is_valid_for_the_compose_specification() -> None:
    """compose.yaml, YAML anchors merged, has no error against the Compose schema."""
    errors = [f"{list(error.path)}: {error.message}" for error in _validator().iter_errors(COMPOSE)]
    assert errors == []


def test_a_wrong_field_is_caught_by_the_validation() -> None:
    """The validation is not vacuous: a misspelt service field is refused."""
    broken = {**COMPOSE, "services": {**SERVICES, "serve": {**SERVICES["serve"], "comand": []}}}
    assert not _validator().is_valid(broken)


def test_the_topology_has_every_part() -> None:
    """The stores, the migration, serve, the worker, a load balancer and Prometheus."""
    assert {"postgres", "redis", "s3", "migrate", "serve", "worker", "lb", "prometheus"} <= set(
        SERVICES
    )
    assert KEEL_SERVICES == ["migrate", "serve", "worker"]
    assert "server" in SERVICES["s3"]["command"] and "-s3" in SERVICES["s3"]["command"]


@pytest.mark.parametrize("name", KEEL_SERVICES)
def test_each_keel_service_runs_a_command_that_exists_with_its_flags(name: str) -> None:
    """The image's entrypoint is keel: each service's command is a keel command whose
    flags the real CLI accepts."""
    keel_help(SERVICES[name]["command"])


def test_the_migration_runs_store_check_before_serve_and_the_worker_start() -> None:
    """migrate runs `keel store check`; serve and worker wait for it to exit 0."""
    assert SERVICES["migrate"]["command"][:2] == ["store", "check"]
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("serve", "worker"):
        condition = SERVICES[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"


def test_three_serve_replicas_stand_behind_the_load_balancer() -> None:
    """serve runs three replicas and publishes no port: traffic goes through HAProxy,
    which health-checks each replica on /readyz at the port serve listens on."""
    serve = SERVICES["serve"]
    assert serve["deploy"]["replicas"] == 3
    assert "ports" not in serve
    port = serve["command"][serve["command"].index("--port") + 1]
    config = (DEPLOY / "haproxy.cfg").read_text()
    assert re.search(rf"^\s*server-template serve \d+ serve:{port}\s*$", config, re.MULTILINE)
    assert re.search(r"^\s*option httpchk GET /readyz\s*$", config, re.MULTILINE)
    mounted = {volume.split(":")[1] for volume in SERVICES["lb"]["volumes"]}
    assert "/usr/local/etc/haproxy/haproxy.cfg" in mounted


def test_only_serve_keeps_the_images_health_check() -> None:
    """The image checks /healthz, which only serve answers: the worker and the one-shot
    migration turn the check off."""
    assert "healthcheck" not in SERVICES["serve"]
    for name in ("migrate", "worker"):
        assert SERVICES[name]["healthcheck"] == {"disable": True}


def test_prometheus_scrapes_each_replica_on_the_keyless_metrics_port() -> None:
    """The main port's /metrics needs an admin key, so the scrape goes, without a key, to
    the port keel.yaml's serving.metrics opens on every address, each replica found by DNS."""
    assert scope_for("/metrics") == "admin"
    metrics = yaml.safe_load(KEEL_YAML.read_text())["serving"]["metrics"]
    jobs = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
    [job] = [job for job in jobs if job["job_name"] == "keel-serve"]
    assert job["metrics_path"] == "/metrics"
    assert "authorization" not in job
    [discovery] = job["dns_sd_configs"]
    assert discovery["names"] == ["serve"] and discovery["port"] == metrics["port"]
    assert metrics["host"] == "0.0.0.0"


def test_prometheus_scrapes_the_worker_s_gauges_at_its_metrics_port() -> None:
    """The worker serves its gauges on --metrics-port, bound for the compose network, and
    Prometheus scrapes the worker there."""
    jobs = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
    [job] = [job for job in jobs if job["job_name"] == "keel-worker"]
    command = SERVICES["worker"]["command"]
    port = command[command.index("--metrics-port") + 1]
    assert command[command.index("--metrics-host") + 1] == "0.0.0.0"
    assert job["static_configs"] == [{"targets": [f"worker:{port}"]}]


@pytest.mark.parametrize("name", KEEL_SERVICES)
def test_every_variable_keel_yaml_reads_is_set_for_each_keel_service(name: str) -> None:
    """Each ${VAR} in deploy/keel.yaml is in the service's environment, and keel.yaml is
    mounted where --project points."""
    needed = variables(yaml.safe_load(KEEL_YAML.read_text()))
    assert needed <= set(SERVICES[name]["environment"])
    assert "./keel.yaml:/project/keel.yaml:ro" in SERVICES[name]["volumes"]


def test_every_variable_the_compose_file_reads_is_in_env_example() -> None:
    """deploy/env.example, copied to .env, names every ${VAR} compose interpolates."""
    lines = (DEPLOY / "env.example").read_text().splitlines()
    named = {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")}
    assert variables(COMPOSE) <= named
