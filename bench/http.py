"""The HTTP benchmark: what an async route costs over a bare handler, and a sync route's latency.

Three servers answer the same request (`POST /api/r/bench/hook`, body `{}`), each in its own
process, all under the gateway's own uvicorn settings (`gateway/http_routes/server.py`: the HTTP
parser uvicorn picks, each answer in one socket write):

* `bare`: a Starlette handler that answers 202 and does nothing else;
* `sqlite` and `postgresql`: the gateway's app with an `async` route whose every request
  enqueues a job of a no-op script and answers 201 once the job is committed (executor off, so
  the queue only grows).

One load generator drives each in turn: `CONNECTIONS` keep-alive connections on raw sockets,
each sending its next request when the previous answer is in, for `DURATION_S` seconds after a
`WARMUP_S` warm-up. The machine is shared and its speed drifts by tens of percent within seconds,
so the servers are measured in `ROUNDS` short interleaved rounds (the order reversed every other
round) and every ratio is paired: each round's gateway figure is divided by the bare handler's of
the same round, and the ratio reported is the median of those. The req/s and latencies printed
for each server are the medians of its rounds. Last, a `sync` route running the no-op script on a
warm worker (`dedicated_worker`, PostgreSQL) is called one request at a time for its median
latency.

The last line printed is one JSON object: the figures, and the ratios `async_pg_vs_bare`,
`async_sqlite_vs_bare` (req/s; target >= 0.6) and `p99_pg_vs_bare` (target <= 3).
`python -m bench.http serve KIND [DATABASE_URL]` runs one server (the benchmark starts them).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bench.common import (
    JOB_USER,
    RUN_DATABASE_ENV,
    create_database,
    database_name,
    drop_databases,
    report,
    run_and_report,
    with_database,
)
from gateway.http_routes.routes import route_path_key, routes_changed
from gateway.http_routes.server import http_protocol
from gateway.http_routes.server import server_config as gateway_server_config
from gateway.runtime import Gateway
from gateway.scripts import ScriptDraft, save_script
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES
from gateway.workspaces import Identity, ensure_workspace

CONNECTIONS: Final = 16
WARMUP_S: Final = 0.3
DURATION_S: Final = 1.5
ROUNDS: Final = 12
SYNC_WARMUP: Final = 20
SYNC_REQUESTS: Final = 200
SYNC_SLOTS: Final = 2
START_TIMEOUT_S: Final = 60.0

ADMIN_URL_ENV: Final = "GATEWAY_TEST_POSTGRES"
DEFAULT_ADMIN_URL: Final = "postgresql://postgres@127.0.0.1:5432/postgres"
WORKSPACE: Final = "bench"
OWNER: Final = Identity("bench", "bench@example.com")
NOOP_PATH: Final = "f/bench/noop"
NOOP_SOURCE: Final = "def main():\n    return None\n"
ROUTE_PATH: Final = "bench/hook"
URL_PATH: Final = f"/api/r/{ROUTE_PATH}"
BODY: Final = b"{}"
EXPECTED_STATUS: Final = {"bare": 202, "sqlite": 201, "postgresql": 201, "sync": 204}
READY: Final = "ready"
REPO: Final = Path(__file__).resolve().parent.parent


class BenchmarkFailed(Exception):
    """A server did not start or answered something else than expected."""


# -- servers ------------------------------------------------------------------------------------


def server_config(app: ASGIApp) -> uvicorn.Config:
    """The uvicorn settings every server of the benchmark runs with: the gateway's own."""
    return gateway_server_config(app, "127.0.0.1", 0)


async def accepted(request: Request) -> Response:
    """The bare handler: 202, nothing done."""
    return Response(status_code=202)


async def add_route(store: Store, request_type: str, *, dedicated_worker: bool) -> None:
    """The workspace, the no-op script and the route `bench/hook` to it."""
    draft = ScriptDraft(
        path=NOOP_PATH, content=NOOP_SOURCE, language="python3", dedicated_worker=dedicated_worker
    )
    columns = {
        column: COLUMN_DEFAULTS.get(column) for column in TRIGGER_TABLES["http"].writable_columns
    }
    columns.pop("edited_at")
    columns.update(
        path="f/bench/hook",
        script_path=NOOP_PATH,
        is_flow=False,
        workspace_id=WORKSPACE,
        edited_by=OWNER.username,
        email=OWNER.email,
        permissioned_as=OWNER.permissioned_as,
        route_path=ROUTE_PATH,
        route_path_key=route_path_key(ROUTE_PATH),
        http_method="post",
        request_type=request_type,
    )
    async with store.transaction() as tx:
        await ensure_workspace(tx, WORKSPACE, OWNER)
        await save_script(tx, WORKSPACE, draft, OWNER.username)
        await tx.execute("upsert_http_trigger", **columns)
        await routes_changed(tx)


class _Server(uvicorn.Server):
    """uvicorn whose stop on SIGTERM is left to `serve`, so that the gateway closes cleanly
    (uvicorn re-raises the signal it caught once it stopped)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(app: ASGIApp) -> None:
    """Serve `app` until SIGTERM, telling the parent the port once it listens."""
    server = _Server(server_config(app))
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: setattr(server, "should_exit", True)
    )
    task = asyncio.create_task(server.serve(), name="bench:uvicorn")
    while not server.started:
        if task.done():
            await task
            raise BenchmarkFailed("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"{READY} {port}", flush=True)
    await task


async def serve_kind(kind: str, database_url: str | None) -> None:
    """Run the server of `kind` (`bare`, `sqlite`, `postgresql` or `sync`)."""
    if kind == "bare":
        await serve(Starlette(routes=[Route(URL_PATH, accepted, methods=["POST"])]))
        return
    assert database_url is not None
    sync = kind == "sync"
    settings = Settings.load(
        environ={},
        database_url=database_url,
        instance_name=f"bench-{kind}",
        executor_slots=SYNC_SLOTS if sync else 0,
        job_user=JOB_USER,
        # A fresh database per server: any master key will do.
        master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
    )
    async with Gateway.running(
        settings, serve_http=False, run_executor=sync, run_listeners=False
    ) as gateway:
        await add_route(gateway.store, "sync" if sync else "async", dedicated_worker=sync)
        await serve(gateway.app)


# -- the load generator -------------------------------------------------------------------------


@dataclass
class Load:
    """What one load run measured: answers per second and their latencies."""

    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    unexpected: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def per_s(self) -> float:
        """Expected answers per second."""
        return len(self.latencies_s) / self.elapsed_s

    def percentile_ms(self, share: float) -> float:
        """The latency below which `share` of the answers came, in milliseconds."""
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def request_bytes(port: int) -> bytes:
    """The one request every server gets."""
    return (
        f"POST {URL_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send `request` on a keep-alive connection and read the whole answer; its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    start = lowered.find(b"\r\ncontent-length:")
    if start >= 0:
        end = lowered.index(b"\r\n", start + 2)
        await reader.readexactly(int(lowered[start + 17 : end]))
    return status


async def drive(
    port: int, expected: int, connections: int, warmup_s: float, duration_s: float
) -> Load:
    """`connections` clients sending back to back; what the server did after the warm-up."""
    load = Load()
    request = request_bytes(port)
    started = time.perf_counter()
    measure_from = started + warmup_s
    stop_at = measure_from + duration_s

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (sent := time.perf_counter()) < stop_at:
                status = await exchange(reader, writer, request)
                if sent < measure_from:
                    continue
                if status == expected:
                    load.latencies_s.append(time.perf_counter() - sent)
                else:
                    load.unexpected[status] += 1
        finally:
            writer.close()
            await writer.wait_closed()

    async with asyncio.TaskGroup() as group:
        for number in range(connections):
            group.create_task(client(), name=f"bench:client:{number}")
    load.elapsed_s = time.perf_counter() - measure_from
    if load.unexpected or not load.latencies_s:
        raise BenchmarkFailed(f"unexpected answers on port {port}: {dict(load.unexpected)}")
    return load


async def one_at_a_time(port: int, expected: int, warmup: int, count: int) -> Load:
    """`count` requests on one connection, one at a time, after `warmup` unmeasured ones."""
    load = Load()
    request = request_bytes(port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for number in range(warmup + count):
            sent = time.perf_counter()
            status = await exchange(reader, writer, request)
            if status != expected:
                raise BenchmarkFailed(f"the sync route answered {status}, not {expected}")
            if number >= warmup:
                load.latencies_s.append(time.perf_counter() - sent)
                load.elapsed_s += load.latencies_s[-1]
    finally:
        writer.close()
        await writer.wait_closed()
    return load


# -- databases and server processes -------------------------------------------------------------


@asynccontextmanager
async def postgres_database(suffix: str) -> AsyncIterator[str]:
    """A new PostgreSQL database, dropped afterwards: named after the run's database under
    `bench/run.py`, else a unique one on the server `GATEWAY_TEST_POSTGRES` names."""
    run_url = os.environ.get(RUN_DATABASE_ENV)
    if run_url:
        server_url, name = run_url, f"{database_name(run_url)}_{suffix}"
    else:
        server_url = os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)
        name = f"gw_bench_http_{secrets.token_hex(6)}"
    await asyncio.to_thread(create_database, server_url, name)
    try:
        yield with_database(server_url, name)
    finally:
        await asyncio.to_thread(drop_databases, server_url, name)


@asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    """The URL of a SQLite file in a temporary folder, removed afterwards."""
    folder = await asyncio.to_thread(tempfile.mkdtemp, prefix="gw-bench-http-")
    try:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)


@asynccontextmanager
async def server_process(kind: str, database_url: str | None = None) -> AsyncIterator[int]:
    """A server of `kind` in its own process, stopped afterwards; its port."""
    argv = [sys.executable, "-m", "bench.http", "serve", kind]
    if database_url is not None:
        argv.append(database_url)
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, cwd=REPO)
    try:
        assert process.stdout is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            line = (await process.stdout.readline()).decode().split()
        if not line or line[0] != READY:
            raise BenchmarkFailed(f"the {kind} server did not start")
        yield int(line[1])
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await process.wait()


# -- the benchmark ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """One server's figures in one round."""

    per_s: float
    p50_ms: float
    p99_ms: float


async def measure(kind: str, port: int) -> Figures:
    """Load the server of `kind` once; its figures."""
    load = await drive(port, EXPECTED_STATUS[kind], CONNECTIONS, WARMUP_S, DURATION_S)
    figures = Figures(load.per_s, load.percentile_ms(0.50), load.percentile_ms(0.99))
    print(
        f"{kind:<11} {figures.per_s:>9.0f} req/s   p50 {figures.p50_ms:>7.2f} ms"
        f"   p99 {figures.p99_ms:>7.2f} ms",
        flush=True,
    )
    return figures


GATEWAYS: Final = (("sqlite", "async_sqlite"), ("postgresql", "async_pg"))
"""The gateway servers, each with the prefix of its figures."""


async def throughput() -> tuple[dict[str, float], dict[str, float]]:
    """Every server loaded in `ROUNDS` interleaved rounds: the median figures of each, and the
    median over the rounds of each gateway's ratios to the bare handler of the same round."""
    samples: defaultdict[str, list[Figures]] = defaultdict(list)
    async with (
        sqlite_database() as sqlite_url,
        postgres_database("http") as pg_url,
        server_process("bare") as bare,
        server_process("sqlite", sqlite_url) as sqlite,
        server_process("postgresql", pg_url) as postgresql,
    ):
        ports = {"bare": bare, "sqlite": sqlite, "postgresql": postgresql}
        for number in range(1, ROUNDS + 1):
            print(f"-- round {number} of {ROUNDS} ({CONNECTIONS} connections)", flush=True)
            kinds = list(ports) if number % 2 else list(reversed(ports))
            for kind in kinds:
                samples[kind].append(await measure(kind, ports[kind]))
            bare_per_s = samples["bare"][-1].per_s
            paired = (f"{kind} {samples[kind][-1].per_s / bare_per_s:.3f}" for kind, _ in GATEWAYS)
            print(f"   req/s vs bare this round: {', '.join(paired)}", flush=True)
    figures: dict[str, float] = {}
    for kind, short in (("bare", "bare"), *GATEWAYS):
        figures[f"{short}_per_s"] = statistics.median(f.per_s for f in samples[kind])
        figures[f"{short}_p50_ms"] = statistics.median(f.p50_ms for f in samples[kind])
        figures[f"{short}_p99_ms"] = statistics.median(f.p99_ms for f in samples[kind])
    rounds = list(zip(samples["bare"], samples["sqlite"], samples["postgresql"], strict=True))
    ratios = {
        "async_sqlite_vs_bare": statistics.median(sq.per_s / b.per_s for b, sq, _ in rounds),
        "async_pg_vs_bare": statistics.median(pg.per_s / b.per_s for b, _, pg in rounds),
        "p99_pg_vs_bare": statistics.median(pg.p99_ms / b.p99_ms for b, _, pg in rounds),
    }
    return figures, ratios


async def sync_latency() -> float:
    """The median latency of the sync route, one request at a time, in milliseconds."""
    async with postgres_database("sync") as url, server_process("sync", url) as port:
        load = await one_at_a_time(port, EXPECTED_STATUS["sync"], SYNC_WARMUP, SYNC_REQUESTS)
    return load.percentile_ms(0.50)


async def run() -> dict[str, float]:
    """Take every figure; the medians and the paired ratios to the bare handler."""
    print(f"-- every server: uvicorn with {http_protocol().__name__}", flush=True)
    figures, ratios = await throughput()
    print(f"-- medians of {ROUNDS} rounds; ratios paired within each round", flush=True)
    for short, label in (
        ("bare", "bare Starlette handler, 202"),
        ("async_sqlite", "async route, job committed on SQLite, 201"),
        ("async_pg", "async route, job committed on PostgreSQL, 201"),
    ):
        report(label, figures[f"{short}_per_s"], "req/s")
        report("  p50", figures[f"{short}_p50_ms"], "ms")
        report("  p99", figures[f"{short}_p99_ms"], "ms")
    figures.update(ratios)
    report("async_pg_vs_bare (target >= 0.6)", figures["async_pg_vs_bare"], "x")
    report("async_sqlite_vs_bare (target >= 0.6)", figures["async_sqlite_vs_bare"], "x")
    report("p99_pg_vs_bare (target <= 3)", figures["p99_pg_vs_bare"], "x")
    figures["sync_warm_p50_ms"] = await sync_latency()
    report("sync route, no-op script on a warm worker, p50", figures["sync_warm_p50_ms"], "ms")
    return figures


def main(argv: list[str]) -> int:
    """Run the benchmark, or (`serve KIND [URL]`) one of its servers."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv[:1] == ["serve"]:
        asyncio.run(serve_kind(argv[1], argv[2] if len(argv) > 2 else None))
        return 0
    return run_and_report(run, (BenchmarkFailed,))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
