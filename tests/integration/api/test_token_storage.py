"""How tokens are kept: hashed, shown by prefix, migrated from clear text, and a job's token only
while its job runs."""

from __future__ import annotations

from uuid import UUID

import pytest
from starlette.exceptions import HTTPException

from gateway.http_routes.api.auth import load_token
from gateway.jobs.cancel import cancel_job
from gateway.jobs.zombies import requeue_zombie_jobs
from gateway.store import Json, Store, fetch_one, open_store
from gateway.store.migrations import available_migrations, migrate
from gateway.token_text import token_hash, token_prefix

from ..support import OWNER, WS, job_of, submit
from .conftest import Api

HASHING_MIGRATION = 4
LEGACY = "LegacyClearToken0123456789abcdef"


async def test_tokens_are_stored_as_their_hash_with_a_clear_prefix(asgi_api: Api) -> None:
    text = await asgi_api.token_for(OWNER)
    assert await fetch_one(asgi_api.store, "api_get_token", token_hash=text) is None
    row = await fetch_one(asgi_api.store, "api_get_token", token_hash=token_hash(text))
    assert row is not None and row["token"] == token_hash(text) and text not in row["token"]
    listed = (await (await asgi_api.http()).get("/users/tokens/list")).json()
    assert token_prefix(text) in [t["token_prefix"] for t in listed]
    assert all(text not in str(t) for t in listed)


async def test_a_token_is_revoked_by_its_prefix_or_its_whole_text(asgi_api: Api) -> None:
    http = await asgi_api.http()
    first, second = await asgi_api.token_for(OWNER), await asgi_api.token_for(OWNER)
    assert (await http.delete(f"/users/tokens/delete/{token_prefix(first)}")).status_code == 200
    assert (await http.delete(f"/users/tokens/delete/{second}")).status_code == 200
    for revoked in (first, second):
        assert (await (await asgi_api.http(revoked)).get("/users/whoami")).status_code == 401
    assert (await http.get("/users/whoami")).status_code == 200
    missing = await http.delete(f"/users/tokens/delete/{token_prefix(first)}")
    assert missing.status_code == 404


async def test_clear_tokens_of_an_older_schema_are_hashed_by_the_migration(
    database_url: str,
) -> None:
    store = await open_store(database_url)
    try:
        await _migrate_before_hashing(store)
        async with store.transaction() as tx:
            await tx.run_script(
                "INSERT INTO token (token, owner, email, label) "
                f"VALUES ('{LEGACY}', 'u/alice', 'alice@example.com', 'old');"
            )
        await migrate(store)
        await migrate(store)
        async with store.transaction() as tx:
            token = await load_token(tx, LEGACY)
            row = await tx.fetch_one("api_get_token", token_hash=token_hash(LEGACY))
        assert (token.username, token.email) == ("alice", "alice@example.com")
        assert row is not None and row["token"] == token_hash(LEGACY)
        listed = await fetch_one(
            store, "api_list_tokens", email=OWNER.email, exclude_ephemeral=False, limit=1, offset=0
        )
        assert listed is not None and listed["token_prefix"] == "LegacyClea"
    finally:
        await store.close()


async def _migrate_before_hashing(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.execute("create_migration_table")
        for migration in available_migrations(store.dialect):
            if migration.version < HASHING_MIGRATION:
                await tx.run_script(migration.sql)
                await tx.execute("record_migration", version=migration.version, name=migration.name)


async def _job_token(api: Api, job_id: UUID) -> str:
    text = f"job-token-{job_id.hex}"
    async with api.store.transaction() as tx:
        await tx.execute(
            "insert_job_tokens",
            tokens=Json(
                [
                    {
                        "token": token_hash(text),
                        "token_prefix": token_prefix(text),
                        "ttl_s": 600,
                        "workspace_id": WS,
                        "owner": OWNER.permissioned_as,
                        "email": OWNER.email,
                        "job": str(job_id),
                    }
                ]
            ),
        )
    return text


async def _whoami_status(api: Api, token: str) -> int:
    return (await (await api.http(token)).get(f"/w/{WS}/users/whoami")).status_code


async def _claim(api: Api) -> None:
    async with api.store.transaction() as tx:
        assert await tx.fetch_all("claim_jobs", worker="test-worker", limit=1)


async def test_a_job_token_is_valid_only_while_its_job_runs(asgi_api: Api) -> None:
    (job_id,) = await submit(asgi_api.store, job_of("hello"))
    token = await _job_token(asgi_api, job_id)
    assert await _whoami_status(asgi_api, token) == 401  # queued, not running yet
    await _claim(asgi_api)
    assert await _whoami_status(asgi_api, token) == 200
    async with asgi_api.store.transaction() as tx:
        assert await tx.fetch_one("take_queue_row", id=job_id) is not None  # it completes
    assert await _whoami_status(asgi_api, token) == 401


async def test_a_job_token_dies_when_its_job_is_cancelled(asgi_api: Api) -> None:
    (job_id,) = await submit(asgi_api.store, job_of("hello"))
    token = await _job_token(asgi_api, job_id)
    await _claim(asgi_api)
    assert await _whoami_status(asgi_api, token) == 200
    async with asgi_api.store.transaction() as tx:
        await cancel_job(tx, WS, job_id, "alice", "stop")
    assert await _whoami_status(asgi_api, token) == 401
    async with asgi_api.store.transaction() as tx:
        with pytest.raises(HTTPException) as refused:
            await load_token(tx, token)
    assert refused.value.status_code == 401


async def test_a_job_token_dies_when_its_worker_is_declared_dead(asgi_api: Api) -> None:
    (job_id,) = await submit(asgi_api.store, job_of("hello"))
    token = await _job_token(asgi_api, job_id)
    await _claim(asgi_api)
    async with asgi_api.store.transaction() as tx:
        await tx.execute("insert_runtimes", ids=[str(job_id)])
    assert await _whoami_status(asgi_api, token) == 200
    async with asgi_api.store.transaction() as tx:
        assert await requeue_zombie_jobs(tx, timeout_s=-60, max_requeues=3) == [job_id]
    await _claim(asgi_api)  # claimed again: running, but under a new run with new tokens
    assert await _whoami_status(asgi_api, token) == 401
