"""Flows as data: one `flow` row per path, one `flow_version` row per save.

A save validates the OpenFlow value with the engine's parser (`InvalidInput` naming the field),
writes a version and points the flow at it; saving what the latest version already holds writes
nothing, so `apply` is idempotent. A flow runs its latest version; an archived flow does not run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.flows import parse_flow
from gateway.store import Row, Transaction


@dataclass(frozen=True, slots=True)
class FlowDraft:
    """What a caller gives to save a flow."""

    path: str
    value: Mapping[str, Any]
    summary: str = ""
    description: str = ""
    schema: Mapping[str, Any] | None = None
    tag: str | None = None
    timeout: int | None = None
    dedicated_worker: bool | None = None


@dataclass(frozen=True, slots=True)
class FlowVersion:
    """One saved version of a flow: what a run of it executes."""

    workspace_id: str
    path: str
    version: int
    value: Mapping[str, Any]
    schema: Mapping[str, Any] | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FlowVersion:
        """Build from a `get_flow_version` row."""
        return cls(
            workspace_id=row["workspace_id"],
            path=row["path"],
            version=row["version_id"],
            value=row["value"],
            schema=row["schema"],
        )


SaveAction = Literal["created", "updated", "unchanged"]


def _unchanged(row: Row, draft: FlowDraft) -> bool:
    return (
        not row["archived"]
        and row["value"] == dict(draft.value)
        and row["schema"] == (dict(draft.schema) if draft.schema is not None else None)
        and row["summary"] == draft.summary
        and row["description"] == draft.description
        and row["tag"] == draft.tag
        and row["timeout"] == draft.timeout
        and row["dedicated_worker"] == draft.dedicated_worker
    )


async def save_flow(
    tx: Transaction,
    workspace_id: str,
    draft: FlowDraft,
    edited_by: str,
    *,
    must_exist: bool | None = None,
) -> tuple[Row, SaveAction]:
    """Save `draft` as the flow's latest version; the flow row after the save, and what happened.

    `must_exist` True refuses a new path (NotFound), False an existing one (Conflict); None
    accepts both.
    """
    try:
        parse_flow(draft.value)
    except InvalidInput as exc:
        field = exc.field if exc.field.startswith("value") else f"value.{exc.field}"
        raise InvalidInput(field, exc.reason) from None
    current = await tx.fetch_one("get_flow", workspace_id=workspace_id, path=draft.path)
    if current is None and must_exist:
        raise NotFound(f"flow not found at path {draft.path!r}")
    if current is not None and must_exist is False:
        raise Conflict(f"a flow already exists at path {draft.path!r}; update it instead")
    if current is not None and _unchanged(current, draft):
        return current, "unchanged"
    columns = {
        "workspace_id": workspace_id,
        "path": draft.path,
        "summary": draft.summary,
        "description": draft.description,
        "value": dict(draft.value),
        "schema": dict(draft.schema) if draft.schema is not None else None,
        "tag": draft.tag,
        "timeout": draft.timeout,
        "dedicated_worker": draft.dedicated_worker,
    }
    if current is None:
        await tx.execute("insert_flow", edited_by=edited_by, **columns)
    version = await tx.fetch_one(
        "insert_flow_version",
        workspace_id=workspace_id,
        path=draft.path,
        value=columns["value"],
        schema=columns["schema"],
        created_by=edited_by,
    )
    assert version is not None
    versions = [*(current["versions"] if current else []), version["id"]]
    await tx.execute("set_flow_value", edited_by=edited_by, versions=versions, **columns)
    saved = await tx.fetch_one("get_flow", workspace_id=workspace_id, path=draft.path)
    assert saved is not None
    return saved, "created" if current is None else "updated"


async def latest_flow_version_id(tx: Transaction, workspace_id: str, path: str) -> int:
    """The id of the version a run of the flow at `path` executes, or NotFound."""
    row = await tx.fetch_one("get_runnable_flow_version_id", workspace_id=workspace_id, path=path)
    if row is None or row["id"] is None:
        raise NotFound(f"flow not found at path {path!r} in workspace {workspace_id!r}")
    return int(row["id"])


async def latest_flow_version(tx: Transaction, workspace_id: str, path: str) -> FlowVersion:
    """The version a run of the flow at `path` executes, or NotFound."""
    return await flow_version(
        tx, workspace_id, await latest_flow_version_id(tx, workspace_id, path)
    )


async def flow_version(tx: Transaction, workspace_id: str, version: int) -> FlowVersion:
    """One saved version of a flow, or NotFound."""
    row = await tx.fetch_one("get_flow_version", workspace_id=workspace_id, id=version)
    if row is None:
        raise NotFound(f"flow version {version} not found in workspace {workspace_id!r}")
    return FlowVersion.from_row(row)
