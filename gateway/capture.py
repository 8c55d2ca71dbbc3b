"""Capture mode: record sample payloads for a script or flow without creating a trigger.

The UI writes a capture config per runnable and trigger kind (`set_config`) and keeps pinging it
(`ping_config`) while it watches. For the leased kinds, a listener runs while the pings are fresh
(`gateway.listeners.capture_lease_store`) and every event it reads becomes a `capture` row holding
both arg shapes (`gateway.triggers.capture_sink`). Configs and captures follow a renamed runnable
(`move_captures_and_configs`).

Runnables are named by `runnable_kind` ("script" or "flow") and `path`, as in the API's URLs.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal, TypeAlias

from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.store import Json, Row, Store, Transaction, fetch_all, fetch_one
from gateway.store.trigger_tables import LEASED_KINDS

RunnableKind: TypeAlias = Literal["script", "flow"]

CAPTURE_KINDS: Final = (
    "webhook", "http", "websocket", "kafka", "default_email", "email", "nats", "mqtt", "sqs",
    "postgres", "gcp",
)  # fmt: skip
"""Trigger kinds a runnable's payloads can be captured from."""

MAX_MAIN_ARGS_BYTES: Final = 512 * 1024
"""A capture's `main_args`, as JSON, must be smaller than this."""

LIST_PAYLOAD_MAX_BYTES: Final = 40_000
"""Lists replace a payload of this many bytes of JSON or more by `TOO_BIG`."""

TOO_BIG: Final = "WINDMILL_TOO_BIG"
"""What a list shows instead of a large payload (the UI then fetches the capture by id)."""


def runnable_kind_of(is_flow: bool) -> RunnableKind:
    """The runnable kind of a row's `is_flow`."""
    return "flow" if is_flow else "script"


def is_flow_of(runnable_kind: str) -> bool:
    """Whether `runnable_kind` names a flow; InvalidInput unless it is "script" or "flow"."""
    if runnable_kind not in ("script", "flow"):
        raise InvalidInput("runnable_kind", f"{runnable_kind!r} is neither 'script' nor 'flow'")
    return runnable_kind == "flow"


def check_main_args_size(main_args: Any) -> None:
    """InvalidInput when `main_args`, as JSON, is `MAX_MAIN_ARGS_BYTES` or larger."""
    size = len(json.dumps(main_args).encode())
    if size >= MAX_MAIN_ARGS_BYTES:
        raise InvalidInput(
            "main_args",
            f"the captured payload is {size} bytes of JSON; captures keep payloads under "
            f"{MAX_MAIN_ARGS_BYTES // 1024} KiB, send a smaller sample",
        )


def _check_trigger_kind(trigger_kind: str) -> str:
    if trigger_kind not in CAPTURE_KINDS:
        raise InvalidInput(
            "trigger_kind",
            f"cannot capture {trigger_kind!r} events; the capture kinds are "
            f"{', '.join(CAPTURE_KINDS)}",
        )
    return trigger_kind


async def set_config(
    tx: Transaction,
    workspace_id: str,
    *,
    trigger_kind: str,
    path: str,
    is_flow: bool,
    trigger_config: Any,
    owner: str,
    email: str,
) -> Row:
    """Write the runnable's capture config for `trigger_kind` and return it.

    The lease is reset (`server_id` and `error` cleared), so a listener running on the previous
    config stops and one starts on the new config. Listener kinds need `trigger_config` to be an
    object: their listener is built from it.
    """
    _check_trigger_kind(trigger_kind)
    if trigger_kind in LEASED_KINDS and not isinstance(trigger_config, dict):
        raise InvalidInput(
            "trigger_config",
            f"a {trigger_kind} capture needs its listener config as a JSON object",
        )
    key = {
        "workspace_id": workspace_id,
        "path": path,
        "is_flow": is_flow,
        "trigger_kind": trigger_kind,
    }
    await tx.execute(
        "upsert_capture_config",
        **key,
        # No config is SQL NULL, which listeners skip; JSON null would count as a config.
        trigger_config=None if trigger_config is None else Json(trigger_config),
        owner=owner,
        email=email,
    )
    row = await tx.fetch_one("get_capture_config", **key)
    # The upsert above wrote the row in this transaction.
    assert row is not None
    return row


async def ping_config(
    tx: Transaction, workspace_id: str, trigger_kind: str, runnable_kind: str, path: str
) -> None:
    """Record that the UI still watches this capture; NotFound when there is no such config."""
    pinged = await tx.execute(
        "record_capture_client_ping",
        workspace_id=workspace_id,
        path=path,
        is_flow=is_flow_of(runnable_kind),
        trigger_kind=_check_trigger_kind(trigger_kind),
    )
    if not pinged:
        raise NotFound(f"no {trigger_kind} capture config for {runnable_kind} {path!r}")


async def get_configs(store: Store, workspace_id: str, runnable_kind: str, path: str) -> list[Row]:
    """The runnable's capture configs, one per trigger kind."""
    return await fetch_all(
        store,
        "list_capture_configs",
        workspace_id=workspace_id,
        path=path,
        is_flow=is_flow_of(runnable_kind),
    )


async def list_captures(
    store: Store,
    workspace_id: str,
    runnable_kind: str,
    path: str,
    trigger_kind: str | None = None,
    *,
    page: int = 1,
    per_page: int = 100,
) -> list[Row]:
    """A page (counted from 1) of the runnable's captures, newest first.

    A payload of `LIST_PAYLOAD_MAX_BYTES` or more is replaced by `TOO_BIG`; `get_capture` has it.
    """
    if page < 1:
        raise InvalidInput("page", f"pages count from 1, got {page}")
    if per_page < 1:
        raise InvalidInput("per_page", f"must be at least 1, got {per_page}")
    rows = await fetch_all(
        store,
        "list_captures",
        workspace_id=workspace_id,
        path=path,
        is_flow=is_flow_of(runnable_kind),
        trigger_kind=None if trigger_kind is None else _check_trigger_kind(trigger_kind),
        max_bytes=LIST_PAYLOAD_MAX_BYTES,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    for row in rows:
        for column in ("main_args", "preprocessor_args"):
            if row.pop(f"{column}_too_big"):
                row[column] = TOO_BIG
    return rows


async def get_capture(store: Store, workspace_id: str, capture_id: int) -> Row:
    """One capture with its payloads whole; NotFound when the workspace has no such capture."""
    row = await fetch_one(store, "get_capture", workspace_id=workspace_id, id=capture_id)
    if row is None:
        raise NotFound(f"capture {capture_id} not found")
    return row


async def delete_capture(tx: Transaction, workspace_id: str, capture_id: int) -> None:
    """Forget one capture; NotFound when the workspace has no such capture."""
    if not await tx.execute("delete_capture", workspace_id=workspace_id, id=capture_id):
        raise NotFound(f"capture {capture_id} not found")


async def move_captures_and_configs(
    tx: Transaction, workspace_id: str, runnable_kind: str, path: str, new_path: str
) -> None:
    """Move a runnable's captures and configs to `new_path` (after the runnable was renamed).

    Conflict when `new_path` has a config of a kind this runnable has too.
    """
    is_flow = is_flow_of(runnable_kind)
    if not new_path:
        raise InvalidInput("new_path", "must not be empty")
    if new_path == path:
        return
    key = {"workspace_id": workspace_id, "path": path, "is_flow": is_flow}
    moving = {row["trigger_kind"] for row in await tx.fetch_all("list_capture_configs", **key)}
    present = await tx.fetch_all("list_capture_configs", **{**key, "path": new_path})
    clashing = sorted(moving & {row["trigger_kind"] for row in present})
    if clashing:
        raise Conflict(
            f"{runnable_kind} {new_path!r} has capture configs for {', '.join(clashing)} already; "
            "delete them first"
        )
    await tx.execute("move_capture_configs", **key, new_path=new_path)
    await tx.execute("move_captures", **key, new_path=new_path)


async def insert_capture(
    tx: Transaction,
    workspace_id: str,
    *,
    path: str,
    is_flow: bool,
    trigger_kind: str,
    main_args: Any,
    preprocessor_args: Any,
    created_by: str,
) -> int:
    """Record one captured event and return its id.

    InvalidInput, before anything is written, when `main_args` is too large to keep
    (`MAX_MAIN_ARGS_BYTES`).
    """
    check_main_args_size(main_args)
    row = await tx.fetch_one(
        "insert_capture",
        workspace_id=workspace_id,
        path=path,
        is_flow=is_flow,
        trigger_kind=_check_trigger_kind(trigger_kind),
        main_args=Json(main_args),
        preprocessor_args=None if preprocessor_args is None else Json(preprocessor_args),
        created_by=created_by,
    )
    # INSERT ... RETURNING always returns the new row.
    assert row is not None
    return int(row["id"])
