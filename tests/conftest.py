"""Shared fixtures: real stores on both dialects, each test in its own database."""

from __future__ import annotations

import base64
import getpass
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from gateway.secrets.keeper import SecretKeeper
from gateway.secrets.master_key import decode_master_key
from gateway.settings import Settings
from gateway.store import Store, open_store
from gateway.store.migrations import migrate

JOB_USER = getpass.getuser()
"""Jobs of the shared tests run as the test runner's user: the interpreter the tests run under
need not be readable by an unprivileged user. The sandbox's own tests choose their job user."""

TEST_MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
"""The master key of the test stores and of the `settings` fixture (one per test run)."""

POSTGRES_ADMIN_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# Fuzz tests: no deadline on shared CPUs; under CI the same examples every run, nothing saved.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


def service_missing(what: str, reason: str) -> None:
    """Skip when a service is absent, but fail under CI, where every service must be there."""
    message = f"{what} is not reachable: {reason}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: a missing service is a failure)")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        service_missing("PostgreSQL", str(exc).strip())
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of each dialect."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store on each dialect, its secrets sealed with `TEST_MASTER_KEY`."""
    opened = await open_store(database_url)
    await migrate(opened)
    opened.secrets = SecretKeeper(decode_master_key(TEST_MASTER_KEY, "the tests"))
    yield opened
    await opened.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for a gateway on the test database, with short timings."""
    return Settings.load(
        environ={},
        database_url=database_url,
        http_port=0,
        instance_name=f"test-{uuid.uuid4().hex[:6]}",
        job_poll_interval_s=0.2,
        job_heartbeat_interval_s=0.5,
        zombie_timeout_s=3.0,
        log_flush_interval_s=0.1,
        shutdown_grace_s=2.0,
        job_user=JOB_USER,
        master_key=TEST_MASTER_KEY,
    )
