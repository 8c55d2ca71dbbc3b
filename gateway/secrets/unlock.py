"""Give an opened store its `SecretKeeper`: load the master key, check that it opens every
workspace key (a wrong key fails here, before anything is served), seal clear-text secrets."""

from __future__ import annotations

import logging

from gateway.secrets.keeper import SecretKeeper
from gateway.secrets.master_key_source import load_master_key
from gateway.secrets.upgrade import seal_clear_secrets
from gateway.settings import Settings
from gateway.store import Store

logger = logging.getLogger(__name__)


async def unlock_secrets(store: Store, settings: Settings) -> SecretKeeper:
    """Attach the keeper of the configured master key to `store` and return it."""
    keeper = SecretKeeper(load_master_key(settings))
    keys = await keeper.verify(store)
    await seal_clear_secrets(store, keeper)
    store.secrets = keeper
    logger.debug(
        "master key %s from %s opens %d workspace key(s)",
        keeper.master.fingerprint,
        keeper.master.source,
        keys,
        extra={"action": "secrets_unlocked"},
    )
    return keeper
