"""What every endpoint reads from the application: the store of the gateway."""

from __future__ import annotations

from starlette.requests import Request

from gateway.store import Store


def store_of(request: Request) -> Store:
    """The store of the gateway serving `request`."""
    store: Store = request.app.state.gateway.store
    return store
