"""deploy/k8s: valid Kubernetes objects that run real keel commands, safely.

Each object is checked against the Kubernetes OpenAPI schema that ``kubernetes-validate``
ships (strict: an unknown field is an error), for the oldest and newest versions named
below; no cluster is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.cli.test_worker_probes import running_worker, wait_for
from tests.deploy.helpers import K8S, KEEL_YAML, documents, keel_help, variables
from tests.helpers import free_port

VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
MANIFESTS = sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")
OBJECTS = [(path, doc) for path in MANIFESTS for doc in documents(path)]
SECRET_ENV = {"KEEL_STORE_URL", "KEEL_REDIS_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def _id(item: tuple[Path, dict[str, Any]]) -> str:
    return f"{item[1]['kind']}/{item[1]['metadata']['name']}"


def _named(kind: str, name: str) -> dict[str, Any]:
    [found] = [doc for _, doc in OBJECTS if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


def _workloads() -> list[dict[str, Any]]:
    return [doc for _, doc in OBJECTS if "template" in doc.get("spec", {})]


def _pod_specs() -> list[dict[str, Any]]:
    return [doc["spec"]["template"]["spec"] for doc in _workloads()]


def _containers() -> list[dict[str, Any]]:
    return [container for spec in _pod_specs() for container in spec["containers"]]


def _serve() -> dict[str, Any]:
    return _named("Deployment", "keel-serve")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("item", OBJECTS, ids=[_id(item) for item in OBJECTS])
def test_each_object_is_valid_for_the_kubernetes_schema(
    item: tuple[Path, dict[str, Any]], version: str
) -> None:
    """Every object in deploy/k8s validates, strictly, against the Kubernetes schema."""
    _, doc = item
    kubernetes_validate.validate(doc, version, strict=True)


def test_a_wrong_field_is_caught_by_the_validation() -> None:
    """The validation is not vacuous: a probe with a misspelt field is refused."""
    doc = yaml.safe_load(yaml.safe_dump(_serve()))
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    """kustomization.yaml's resources are exactly the manifests in the folder."""
    [kustomization] = documents(K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == [path.name for path in MANIFESTS]


def test_the_workloads_are_serve_worker_and_the_migration_job() -> None:
    """A serve Deployment, a worker Deployment and a migration Job, each running keel."""
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in _workloads()}
    assert kinds == {
        ("Deployment", "keel-serve"),
        ("Deployment", "keel-worker"),
        ("Job", "keel-migrate"),
    }
    assert all(container["image"] == "keel" for container in _containers())


@pytest.mark.parametrize("container", _containers(), ids=lambda c: c["name"])
def test_each_container_runs_a_keel_command_that_exists_with_its_flags(
    container: dict[str, Any],
) -> None:
    """The image's entrypoint is keel: each container's args are a keel command whose
    flags the real CLI accepts."""
    keel_help(container["args"])


def test_the_migration_job_runs_store_check() -> None:
    """The Job runs `keel store check`, which applies pending migrations and exits."""
    [container] = _named("Job", "keel-migrate")["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["store", "check"]


def test_serve_is_probed_for_readiness_on_readyz_and_liveness_on_healthz() -> None:
    """Readiness is /readyz (model loaded, stores reachable), liveness /healthz (alive),
    both on the port serve listens on."""
    [container] = _serve()["spec"]["template"]["spec"]["containers"]
    port = int(container["args"][container["args"].index("--port") + 1])
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["port"] == container["ports"][0]["name"]


def test_the_grace_period_outlasts_the_servers_own_drain() -> None:
    """Kubernetes waits longer than serve's 30 s graceful shutdown plus the preStop pause,
    so in-flight requests finish and the log is flushed before a SIGKILL."""
    from keel.serving import runner

    spec = _serve()["spec"]["template"]["spec"]
    pause = int(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert spec["terminationGracePeriodSeconds"] > runner._GRACE_S + pause


@pytest.mark.parametrize(
    ("kind", "name"),
    [("Service", "keel-serve"), ("PodDisruptionBudget", "keel-serve")],
)
def test_the_service_and_the_disruption_budget_select_the_serve_pods(kind: str, name: str) -> None:
    """Their selectors match the serve pods' labels and no other workload's."""
    spec = _named(kind, name)["spec"]
    selector = spec["selector"].get("matchLabels", spec["selector"])
    labels = [doc["spec"]["template"]["metadata"]["labels"] for doc in _workloads()]
    matching = [found for found in labels if selector.items() <= found.items()]
    assert matching == [_serve()["spec"]["template"]["metadata"]["labels"]]


def test_the_autoscaler_scales_the_serve_deployment_which_leaves_it_the_count() -> None:
    """The HPA targets keel-serve (at least 2 replicas) and the Deployment sets no replica
    count of its own, which every apply would otherwise reset."""
    spec = _named("HorizontalPodAutoscaler", "keel-serve")["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "keel-serve",
    }
    assert spec["minReplicas"] >= 2
    assert "replicas" not in _serve()["spec"]


@pytest.mark.parametrize("spec", _pod_specs(), ids=lambda s: s["containers"][0]["name"])
def test_every_pod_runs_as_a_non_root_user_without_privileges(spec: dict[str, Any]) -> None:
    """runAsNonRoot with a non-zero uid, no privilege escalation, no capabilities."""
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("container", _containers(), ids=lambda c: c["name"])
def test_every_container_requests_and_limits_cpu_and_memory(container: dict[str, Any]) -> None:
    """Requests for scheduling and the autoscaler, limits no lower than the requests."""
    resources = container["resources"]
    for name in ("cpu", "memory"):
        assert _quantity(resources["limits"][name]) >= _quantity(resources["requests"][name])


def _quantity(text: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def test_no_secret_is_written_in_the_manifests() -> None:
    """No Secret object ships; credentials come from keel-secrets by secretKeyRef only."""
    assert all(doc["kind"] != "Secret" for _, doc in OBJECTS)
    for container in _containers():
        by_name = {entry["name"]: entry for entry in container["env"]}
        assert by_name.keys() >= SECRET_ENV
        for name in SECRET_ENV:
            assert "value" not in by_name[name]
            assert by_name[name]["valueFrom"]["secretKeyRef"]["name"] == "keel-secrets"


def test_the_configmap_holds_deploy_keel_yaml_unchanged() -> None:
    """The ConfigMap's keel.yaml is deploy/keel.yaml, byte for byte, so the two stay one."""
    assert _named("ConfigMap", "keel-config")["data"]["keel.yaml"] == KEEL_YAML.read_text()


@pytest.mark.parametrize("container", _containers(), ids=lambda c: c["name"])
def test_every_variable_keel_yaml_reads_reaches_every_container(container: dict[str, Any]) -> None:
    """Each ${VAR} in keel.yaml is set in each container, from the Secret or keel-env."""
    given = {entry["name"] for entry in container["env"]}
    for source in container["envFrom"]:
        given |= _named("ConfigMap", source["configMapRef"]["name"])["data"].keys()
    assert variables(yaml.safe_load(KEEL_YAML.read_text())) <= given


@pytest.mark.parametrize("spec", _pod_specs(), ids=lambda s: s["containers"][0]["name"])
def test_the_project_folder_is_writable_where_keel_keeps_its_state(spec: dict[str, Any]) -> None:
    """The root filesystem is read-only: keel.yaml comes from the ConfigMap, and .keel/
    (spool, snapshot, metrics) and /tmp are emptyDirs."""
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    for container in spec["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in container["volumeMounts"]}
        assert mounts["/project/keel.yaml"]["configMap"]["name"] == "keel-config"
        assert "emptyDir" in mounts["/project/.keel"]
        assert "emptyDir" in mounts["/tmp"]


def _worker() -> dict[str, Any]:
    return _named("Deployment", "keel-worker")


def _metrics_port(container: dict[str, Any]) -> int:
    [port] = [port for port in container["ports"] if port["name"] == "metrics"]
    return int(port["containerPort"])


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_the_worker_is_probed_on_the_port_its_metrics_flag_opens() -> None:
    """Liveness /healthz and readiness /readyz, on the container port named metrics, which is
    the --metrics-port the worker is started with, bound on every address."""
    [container] = _worker()["spec"]["template"]["spec"]["containers"]
    assert _metrics_port(container) == int(_option(container["args"], "--metrics-port"))
    assert _option(container["args"], "--metrics-host") == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


@pytest.mark.parametrize("name", ["keel-serve", "keel-worker"])
def test_prometheus_annotations_name_the_pod_s_metrics_port(name: str) -> None:
    """prometheus.io/scrape, port and path on the pod template: the port is the container
    port named metrics, the path /metrics."""
    template = _named("Deployment", name)["spec"]["template"]
    [container] = template["spec"]["containers"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == _metrics_port(container)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_serve_metrics_port_is_the_one_keel_yaml_opens() -> None:
    """The serve pod's metrics port is serving.metrics in the ConfigMap's keel.yaml, bound
    on every address, so the annotation's scrape reaches it."""
    from keel.schema import ServingConfig

    config = yaml.safe_load(_named("ConfigMap", "keel-config")["data"]["keel.yaml"])
    metrics = ServingConfig.model_validate({"metrics": config["serving"]["metrics"]}).metrics
    [container] = _serve()["spec"]["template"]["spec"]["containers"]
    assert metrics is not None and metrics.host == "0.0.0.0"
    assert _metrics_port(container) == metrics.port != int(_option(container["args"], "--port"))


@pytest.mark.slow
def test_the_worker_answers_its_probes_and_scrape_paths(project_dir: Path) -> None:
    """The manifest's worker command, run for real (project and port moved to a temporary
    folder and a free loopback port), answers 200 on the liveness, readiness and scrape
    paths the manifest names, and 404 elsewhere."""
    template = _worker()["spec"]["template"]
    [container] = template["spec"]["containers"]
    port = free_port()
    moved = {"/project": str(project_dir), "0.0.0.0": "127.0.0.1"}
    moved[_option(container["args"], "--metrics-port")] = str(port)
    args = [moved.get(arg, arg) for arg in container["args"]]
    paths = [
        container["livenessProbe"]["httpGet"]["path"],
        container["readinessProbe"]["httpGet"]["path"],
        template["metadata"]["annotations"]["prometheus.io/path"],
    ]
    with running_worker(project_dir, *args[1:]) as worker:
        base = f"http://127.0.0.1:{port}"
        answers = [wait_for(base + path, worker, lambda r: r.status_code == 200) for path in paths]
        missing = httpx.get(f"{base}/v1/predict")
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert "keel_worker_cycle_ok" in answers[2].text
    assert missing.status_code == 404
