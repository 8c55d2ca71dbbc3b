"""Liveness and readiness endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.errors import StoreError
from gateway.store import fetch_one


async def live(request: Request) -> JSONResponse:
    """200 as soon as the process serves HTTP."""
    return JSONResponse({"status": "live", "instance": request.app.state.gateway.instance_name})


async def ready(request: Request) -> JSONResponse:
    """200 when the database answers, 503 otherwise."""
    try:
        await fetch_one(request.app.state.gateway.store, "ping_database")
    except (StoreError, OSError) as exc:
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    except Exception as exc:  # a driver error of any kind means "not ready"
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready"})


routes = [Route("/health/live", live), Route("/health/ready", ready)]
