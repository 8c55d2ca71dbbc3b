"""What every endpoint reads from the application: the store of the gateway and its keeper of
secrets."""

from __future__ import annotations

from starlette.requests import Request

from gateway.secrets.keeper import SecretKeeper, keeper_of
from gateway.store import Store


def store_of(request: Request) -> Store:
    """The store of the gateway serving `request`."""
    store: Store = request.app.state.gateway.store
    return store


def secrets_of(request: Request) -> SecretKeeper:
    """The keeper that seals and opens the secret values of the gateway's store."""
    return keeper_of(store_of(request))
