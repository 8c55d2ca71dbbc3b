"""Keys of secret variables on both dialects: clear-text secrets of older databases sealed at
start, a wrong master key refused, workspace keys and the master key rotated."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.cli.main import main
from gateway.errors import MasterKeyMismatch
from gateway.http_routes.api.audit import ALL_TIME
from gateway.resources import variable_value
from gateway.runtime import open_database
from gateway.secrets.cipher import is_sealed
from gateway.secrets.keeper import keeper_of
from gateway.secrets.master_key import read_key_file
from gateway.secrets.master_key_source import load_master_key
from gateway.secrets.rotation import rotate_keys
from gateway.secrets.variables import write_variable
from gateway.settings import Settings
from gateway.store import Store
from gateway.workspaces import Identity, ensure_workspace

from ..support import OWNER, WS

OTHER_WS = "other"
ACTOR = Identity("admin", "admin@localhost")
SECRETS = {(WS, "f/a/password"): "pw-one-7f3a", (WS, "f/a/token"): "tok-two-9c1b"}
SECRETS[(OTHER_WS, "f/b/key")] = "key-three-4d2e"


def new_master_key() -> SecretStr:
    return SecretStr(base64.b64encode(os.urandom(32)).decode())


async def seed(store: Store, *, sealed: bool = True) -> None:
    """The two workspaces and their secrets, sealed, or in clear as older versions wrote them."""
    async with store.transaction() as tx:
        for workspace_id in (WS, OTHER_WS):
            await ensure_workspace(tx, workspace_id, OWNER)
        for (workspace_id, path), value in SECRETS.items():
            if sealed:
                await write_variable(
                    tx, keeper_of(store), workspace_id, path, value=value, is_secret=True,
                    description="",
                )  # fmt: skip
            else:
                await tx.execute(
                    "upsert_variable", workspace_id=workspace_id, path=path, value=value,
                    is_secret=True, description="",
                )  # fmt: skip


async def stored(store: Store) -> dict[tuple[str, str], str]:
    async with store.transaction() as tx:
        return {
            (ws, row["path"]): row["value"]
            for ws in (WS, OTHER_WS)
            for row in await tx.fetch_all("list_secret_variables", workspace_id=ws)
        }


async def wrapped_keys(store: Store) -> dict[str, str]:
    async with store.transaction() as tx:
        return {
            row["workspace_id"]: row["key"] for row in await tx.fetch_all("list_workspace_keys")
        }


async def assert_readable(settings: Settings) -> None:
    """Every secret opens on a store opened as a gateway opens it."""
    store = await open_database(settings)
    try:
        for (workspace_id, path), value in SECRETS.items():
            assert await variable_value(store, workspace_id, path) == value
    finally:
        await store.close()


async def test_clear_text_secrets_are_sealed_at_start_once(
    store: Store, settings: Settings
) -> None:
    await seed(store, sealed=False)
    assert await stored(store) == SECRETS

    await assert_readable(settings)
    first = await stored(store)
    assert all(is_sealed(value) for value in first.values())
    assert not set(first.values()) & set(SECRETS.values())

    await assert_readable(settings)
    assert await stored(store) == first


async def test_another_master_key_is_refused_at_start(store: Store, settings: Settings) -> None:
    await seed(store)
    wrong = settings.model_copy(update={"master_key": new_master_key()})
    with pytest.raises(MasterKeyMismatch, match="another master key"):
        await open_database(wrong)


async def test_rotation_seals_every_secret_again_under_new_workspace_keys(
    store: Store, settings: Settings
) -> None:
    await seed(store)
    before, keys_before = await stored(store), await wrapped_keys(store)
    master = keeper_of(store).master

    rotated = await rotate_keys(store, master, ACTOR)

    assert {(r.workspace_id, r.secrets) for r in rotated} == {(WS, 2), (OTHER_WS, 1)}
    after, keys_after = await stored(store), await wrapped_keys(store)
    assert all(after[name] != before[name] for name in SECRETS)
    assert all(keys_after[ws] != keys_before[ws] for ws in (WS, OTHER_WS))
    await assert_readable(settings)
    async with store.transaction() as tx:
        audit = await tx.fetch_all(
            "list_audit_entries",
            username=None,
            resource=None,
            action_kind=None,
            since=ALL_TIME,
            workspace_id=WS,
            operation="secrets.rotate",
            limit=10,
            offset=0,
        )
    assert len(audit) == 1


async def test_a_new_master_key_rewraps_and_an_interrupted_run_finishes(
    store: Store, settings: Settings
) -> None:
    await seed(store)
    master = keeper_of(store).master
    moved = settings.model_copy(update={"master_key": new_master_key()})
    new_master = load_master_key(moved)

    # A run that stopped after the first workspace: one key under each master key.
    await rotate_keys(store, master, ACTOR, new_master=new_master, workspace_id=WS)
    with pytest.raises(MasterKeyMismatch):
        await open_database(settings)
    with pytest.raises(MasterKeyMismatch):
        await open_database(moved)

    rotated = await rotate_keys(store, master, ACTOR, new_master=new_master)

    assert {r.master_key for r in rotated} == {new_master.fingerprint}
    await assert_readable(moved)
    with pytest.raises(MasterKeyMismatch):
        await open_database(settings)


async def test_the_rotate_command_prints_json_and_changes_the_master_key(
    store: Store,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await seed(store)
    assert settings.master_key is not None
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GATEWAY_MASTER_KEY", settings.master_key.get_secret_value())
    new_file = tmp_path / "next.key"

    command = ["secrets", "rotate", "--new-master-key-file", str(new_file), "--json"]
    assert await asyncio.to_thread(main, command) == 0

    printed = json.loads(capsys.readouterr().out)
    new_master = read_key_file(new_file)
    assert [(r["workspace_id"], r["secrets"]) for r in printed] == [(OTHER_WS, 1), (WS, 2)]
    assert {r["master_key"] for r in printed} == {new_master.fingerprint}
    assert oct(new_file.stat().st_mode & 0o777) == "0o600"
    await assert_readable(
        settings.model_copy(update={"master_key": None, "master_key_file": new_file})
    )
