"""The `gateway` command: parse arguments, configure logging, run one sub-command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from gateway.cli import (
    alerts,
    audit,
    flows,
    jobs,
    quarantine,
    scripts,
    secrets,
    serve,
    tokens,
    triggers,
    workspace,
)
from gateway.errors import GatewayError
from gateway.observability.log_format import JsonFormatter
from gateway.settings import Settings

DEFAULT_WORKSPACE = "demo"


def build_parser() -> argparse.ArgumentParser:
    """Every sub-command and its options."""
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Event-driven trigger gateway: events from brokers, databases, mail and "
        "HTTP become durable jobs.",
    )
    parser.add_argument("--database-url", help="overrides GATEWAY_DATABASE_URL")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(commands)
    scripts.register(commands)
    flows.register(commands)
    jobs.register(commands)
    triggers.register(commands)
    quarantine.register(commands)
    tokens.register(commands)
    workspace.register(commands)
    alerts.register(commands)
    secrets.register(commands)
    audit.register(commands)
    return parser


def configure_logging(verbose: bool, log_format: str = "text") -> None:
    """The library never configures logging; the command does, once."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    for noisy in ("aiosqlite", "psycopg.pool", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the process exit code."""
    parser = build_parser()
    options = parser.parse_args(argv)
    try:
        settings = Settings.load(database_url=options.database_url)
        configure_logging(options.verbose, settings.log_format)
        code: int = asyncio.run(options.handler(settings, options))
        return code
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
