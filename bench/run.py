"""Run the benchmarks: `python bench/run.py [NAME]` runs every `bench/<name>.py`, or only NAME.

Each benchmark runs in its own process (`python -m bench.<name>`, its output streamed) against a
PostgreSQL database of its own, `gw_bench_<hex>`, created on the server that
`GATEWAY_TEST_POSTGRES` names and dropped afterwards with every scratch database named after it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Run as a file, this script has its own folder first on the import path, where `queue.py`
# would shadow the standard library's `queue`: import from the repository root instead.
sys.path[0] = str(REPO)

from bench.common import RUN_DATABASE_ENV, create_database, drop_databases  # noqa: E402

ADMIN_URL_ENV = "GATEWAY_TEST_POSTGRES"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NOT_BENCHMARKS = frozenset({"__init__", "run", "common"})


def available_benchmarks() -> list[str]:
    """The names of the benchmark modules in `bench/`."""
    return sorted(
        path.stem for path in (REPO / "bench").glob("*.py") if path.stem not in NOT_BENCHMARKS
    )


def run_benchmark(name: str, admin_url: str) -> int:
    """Run one benchmark in its own process and database; its exit status."""
    database = f"gw_bench_{secrets.token_hex(6)}"
    print(f"== {name} (database {database})", flush=True)
    started = time.monotonic()
    env = {**os.environ, RUN_DATABASE_ENV: create_database(admin_url, database)}
    try:
        status = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"], cwd=REPO, env=env, check=False
        ).returncode
    finally:
        drop_databases(admin_url, database)
    verdict = "ok" if status == 0 else f"failed with exit status {status}"
    print(f"== {name}: {verdict} in {time.monotonic() - started:.1f}s", flush=True)
    return status


def main(argv: list[str]) -> int:
    """Run the benchmarks named on the command line (all when none is)."""
    known = available_benchmarks()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", choices=known, help="run only this benchmark")
    args = parser.parse_args(argv)
    admin_url = os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)
    statuses = [run_benchmark(name, admin_url) for name in ([args.name] if args.name else known)]
    return 0 if all(status == 0 for status in statuses) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
