"""What the benchmarks share: the run's PostgreSQL databases and the report lines."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import psycopg

RUN_DATABASE_ENV = "GATEWAY_BENCH_POSTGRES"

JOB_USER = os.environ.get("GATEWAY_JOB_USER") or getpass.getuser()
"""The user benchmark jobs run as: the runner's own unless GATEWAY_JOB_USER names another."""
"""Names the database `bench/run.py` created for one benchmark; its scratch databases are
named after it, so that the runner can drop whatever a benchmark left behind."""


def run_database_url() -> str:
    """The URL of this benchmark's database, set by `bench/run.py`."""
    url = os.environ.get(RUN_DATABASE_ENV)
    if not url:
        raise SystemExit(f"{RUN_DATABASE_ENV} is not set: run benchmarks with bench/run.py")
    return url


def database_name(url: str) -> str:
    """The database a PostgreSQL URL names."""
    return url.rsplit("/", 1)[1]


def with_database(url: str, name: str) -> str:
    """`url` naming another database of the same server."""
    return f"{url.rsplit('/', 1)[0]}/{name}"


def create_database(server_url: str, name: str) -> str:
    """Create database `name` on the server of `server_url`; its URL."""
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def drop_databases(server_url: str, prefix: str) -> list[str]:
    """Drop database `prefix` and every database named `prefix_...`; the names dropped."""
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR starts_with(datname, %s)",
            (prefix, f"{prefix}_"),
        ).fetchall()
        names = [row[0] for row in rows]
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return names


def report(label: str, value: float, unit: str) -> None:
    """Print one figure as a readable line."""
    print(f"{label:<58} {value:>10.2f} {unit}", flush=True)


def report_json(figures: dict[str, Any]) -> None:
    """Print the figures as the last line, one JSON object for tools."""
    print(json.dumps(figures, sort_keys=True), flush=True)


Figures = dict[str, float]


def run_and_report(
    run: Callable[[], Coroutine[Any, Any, Figures]],
    failures: tuple[type[BaseException], ...],
) -> int:
    """Run a benchmark: warnings-only logging, its wall time, the JSON line last; 1 (with the
    reason on stderr) when it raised one of `failures`."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        figures = asyncio.run(run())
    except failures as exc:
        print(f"benchmark failed: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    figures["elapsed_s"] = time.perf_counter() - started
    report("benchmark wall time", figures["elapsed_s"], "s")
    report_json({key: round(value, 3) for key, value in figures.items()})
    return 0
