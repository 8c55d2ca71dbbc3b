"""Shared fixtures: real stores on both dialects, each test in its own database."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from gateway.settings import Settings
from gateway.store import Store, open_store
from gateway.store.migrations import migrate

POSTGRES_ADMIN_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


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
    """A migrated store on each dialect."""
    opened = await open_store(database_url)
    await migrate(opened)
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
    )
