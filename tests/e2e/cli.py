"""Run the `gateway` command as a separate process, as an operator would."""

from __future__ import annotations

import base64
import getpass
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

GATEWAY = [sys.executable, "-m", "gateway"]
E2E_MASTER_KEY = base64.b64encode(os.urandom(32)).decode()


def gateway_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a gateway process on `database_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_DATABASE_URL"] = database_url
    # One master key for every process of the run (PostgreSQL requires one).
    env["GATEWAY_MASTER_KEY"] = E2E_MASTER_KEY
    # Jobs run as the test runner's user: the interpreter need not be readable by another user.
    env["GATEWAY_JOB_USER"] = getpass.getuser()
    env.update(extra)
    return env


def run_gateway(
    *args: str, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `gateway ARGS...` to completion, capturing its output."""
    return subprocess.run(
        [*GATEWAY, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_gateway(*args: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a long-running `gateway ARGS...` with its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen([*GATEWAY, *args], env=dict(env), stdout=out, stderr=out)
