"""Operational endpoints, served without a token: liveness, readiness and the Prometheus scrape.

- `/health/live`: 200 as soon as the process serves HTTP.
- `/health/ready`: 200 when every check passes, else 503; each check reports `ok` and `detail`:
  `store` (the database answers), `executor` (its loops run, or it is not run by this instance),
  `leases` (every trigger this instance consumes had its lease renewed within the staleness
  window: a holder that cannot renew must not look ready).
- `/metrics`: this instance's metrics in the Prometheus text format.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any, Final, Protocol

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.listeners.lease import TriggerRef
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.source_lag import LagProbe
from gateway.observability.trigger_health import read_held_leases
from gateway.settings import Settings
from gateway.store import Store, fetch_one

CHECK_TIMEOUT_S: Final = 1.0
"""How long a readiness check waits for the database before it counts as failed."""


class _Executor(Protocol):
    @property
    def state(self) -> str:
        """`stopped` (not run here), `running`, or `failed` (one of its loops ended)."""
        ...

    @property
    def sandbox(self) -> str:
        """Who jobs run as, in words."""
        ...


class _Listeners(Protocol):
    def running(self) -> Collection[TriggerRef]:
        """The triggers this instance holds and consumes."""
        ...


class _Instance(Protocol):
    """What these endpoints read from the gateway serving them."""

    instance_name: str
    settings: Settings
    store: Store
    executor: _Executor
    listeners: _Listeners
    metrics: GatewayMetrics
    lags: LagProbe


def _instance(request: Request) -> _Instance:
    instance: _Instance = request.app.state.gateway
    return instance


async def live(request: Request) -> JSONResponse:
    """200 as soon as the process serves HTTP."""
    return JSONResponse({"status": "live", "instance": _instance(request).instance_name})


async def ready(request: Request) -> JSONResponse:
    """200 when the store, the executor and the leases are fine, 503 otherwise."""
    instance = _instance(request)
    store = await _store_check(instance)
    checks = {
        "store": store,
        "executor": _executor_check(instance),
        "leases": await _lease_check(instance)
        if store["ok"]
        else _check(False, "not checked: the store does not answer"),
    }
    ok = all(check["ok"] for check in checks.values())
    return JSONResponse(
        {
            "status": "ready" if ok else "unavailable",
            "instance": instance.instance_name,
            "checks": checks,
        },
        status_code=200 if ok else 503,
    )


async def metrics(request: Request) -> Response:
    """This instance's metrics, refreshed from the database and the sources."""
    instance = _instance(request)
    await instance.metrics.refresh(instance.store, instance.listeners.running(), instance.lags)
    return Response(instance.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


async def _store_check(instance: _Instance) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await fetch_one(instance.store, "ping_database")
    except TimeoutError:
        return _check(False, f"no answer within {CHECK_TIMEOUT_S:g}s")
    except Exception as exc:  # a driver error of any kind means "not ready"
        return _check(False, f"{type(exc).__name__}: {exc}")
    return _check(True, "the database answers")


def _executor_check(instance: _Instance) -> dict[str, Any]:
    state = instance.executor.state
    if state == "failed":
        return _check(False, "a loop of the executor ended: no job is claimed here any more")
    if state != "running":
        return _check(True, "not run by this instance")
    return _check(True, f"running; {instance.executor.sandbox}")


async def _lease_check(instance: _Instance) -> dict[str, Any]:
    consumed = instance.listeners.running()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            rows = await read_held_leases(instance.store, instance.instance_name)
    except TimeoutError:
        return _check(False, f"no answer within {CHECK_TIMEOUT_S:g}s")
    except Exception as exc:
        return _check(False, f"{type(exc).__name__}: {exc}")
    window_s = instance.settings.lease_stale_after_s
    # A consumed trigger whose row names another holder is being stopped: it is not ours to renew.
    stale = sorted(
        f"{lease.trigger.kind}:{lease.trigger}"
        for trigger in consumed
        if (lease := rows.get(trigger)) is not None
        and (lease.ping_age_s is None or lease.ping_age_s > window_s)
    )
    if stale:
        return _check(False, f"not renewed for over {window_s:g}s: {', '.join(stale)}")
    return _check(True, f"{len(consumed)} held, all renewed within {window_s:g}s")


def _check(ok: bool, detail: str) -> dict[str, Any]:
    return {"ok": ok, "detail": detail}


routes = [
    Route("/health/live", live),
    Route("/health/ready", ready),
    Route("/metrics", metrics),
]
