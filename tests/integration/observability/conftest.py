"""A gateway's app in process (no socket, nothing running), with workspace `test`, its scripts and
a token for alice, its admin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.http_routes.api.tokens import issue_token
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import Store

from ..support import OWNER, WS, add_scripts

ECHO = "def main(msg: str = ''):\n    return {'echo': msg}\n"
BOOM = "def main(msg: str = ''):\n    raise RuntimeError('boom')\n"
FLAKY = "def main(fail: bool = True):\n    if fail:\n        raise RuntimeError('boom')\n"


@pytest.fixture
async def scripts(store: Store) -> None:
    """The test workspace with scripts `f/t/echo`, `f/t/boom` (always fails) and `f/t/flaky`
    (fails unless told not to)."""
    await add_scripts(store, echo=ECHO, boom=BOOM, flaky=FLAKY)


@pytest.fixture
async def gateway(store: Store, settings: Settings, scripts: None) -> Gateway:
    """A gateway on the test store whose parts are built but not started."""
    return Gateway(settings.model_copy(update={"source_lag_timeout_s": 3.0}), store)


@pytest.fixture
async def api(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway's HTTP side over ASGI, as alice."""
    async with gateway.store.transaction() as tx:
        token = await issue_token(tx, OWNER, WS, label="test")
    async with httpx.AsyncClient(
        base_url="http://gateway.test",
        transport=httpx.ASGITransport(app=gateway.app),
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client
