"""Scripts: versions stored by hash, the latest by path, the argument schema inferred on save."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from gateway.errors import InvalidInput, NotFound
from gateway.executor.signature import ScriptSyntaxError, infer_schema
from gateway.store import Store, Transaction

LANGUAGES = ("python3", "bash")


@dataclass(frozen=True, slots=True)
class Script:
    """One stored version of a script."""

    workspace_id: str
    path: str
    hash: int
    content: str
    language: str
    schema: Mapping[str, Any]
    created_by: str
    created_at: datetime
    summary: str = ""
    description: str = ""
    tag: str | None = None
    timeout: int | None = None
    dedicated_worker: bool = False
    has_preprocessor: bool = False
    priority: int | None = None
    kind: str = "script"
    archived: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Script:
        """Build from a `script` row."""
        return cls(
            workspace_id=row["workspace_id"],
            path=row["path"],
            hash=row["hash"],
            content=row["content"],
            language=row["language"],
            schema=row["schema"] or {},
            created_by=row["created_by"],
            created_at=row["created_at"],
            summary=row["summary"] or "",
            description=row["description"] or "",
            tag=row["tag"],
            timeout=row["timeout"],
            dedicated_worker=bool(row["dedicated_worker"]),
            has_preprocessor=bool(row["has_preprocessor"]),
            priority=row["priority"],
            kind=row["kind"],
            archived=bool(row["archived"]),
        )

    @property
    def hash_hex(self) -> str:
        """The hash as Windmill spells it in URLs: 16 hex digits."""
        return format_hash(self.hash)

    @property
    def arg_order(self) -> tuple[str, ...]:
        """Argument names in the order of the signature."""
        order = self.schema.get("order") or list(self.schema.get("properties", {}))
        return tuple(order)


def format_hash(value: int) -> str:
    """A script hash as 16 hex digits."""
    return f"{value:016x}"


def parse_hash(text: str) -> int:
    """The integer of a hash written in hex."""
    try:
        return int(text, 16)
    except ValueError:
        raise InvalidInput("hash", f"{text!r} is not a hexadecimal script hash") from None


@dataclass(frozen=True, slots=True)
class ScriptDraft:
    """What a caller gives to save a script version."""

    path: str
    content: str
    language: str = "python3"
    summary: str = ""
    description: str = ""
    tag: str | None = None
    timeout: int | None = None
    dedicated_worker: bool = False
    priority: int | None = None
    kind: str = "script"


def _version_hash(workspace_id: str, draft: ScriptDraft, parent: int | None) -> int:
    material = json.dumps(
        [workspace_id, draft.path, draft.language, draft.content, draft.kind, parent],
        separators=(",", ":"),
    )
    digest = hashlib.blake2b(material.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def _same_version(script: Script, draft: ScriptDraft) -> bool:
    return (
        script.content == draft.content
        and script.language == draft.language
        and script.summary == draft.summary
        and script.description == draft.description
        and script.tag == draft.tag
        and script.timeout == draft.timeout
        and script.dedicated_worker == draft.dedicated_worker
        and script.priority == draft.priority
        and script.kind == draft.kind
    )


SaveAction = Literal["created", "updated", "unchanged"]


async def save_script(
    tx: Transaction, workspace_id: str, draft: ScriptDraft, created_by: str
) -> tuple[Script, SaveAction]:
    """Store a new version of `draft.path`; return the latest version and what happened.

    Saving what is already the latest version changes nothing (so `apply` is idempotent).
    """
    if draft.language not in LANGUAGES:
        raise InvalidInput(
            "language", f"{draft.language!r} is not supported; use one of {', '.join(LANGUAGES)}"
        )
    try:
        signature = infer_schema(draft.language, draft.content)
    except ScriptSyntaxError as exc:
        raise InvalidInput("content", str(exc)) from None
    latest_row = await tx.fetch_one("get_latest_script", workspace_id=workspace_id, path=draft.path)
    latest = Script.from_row(latest_row) if latest_row else None
    if latest is not None and _same_version(latest, draft):
        return latest, "unchanged"
    parent = latest.hash if latest else None
    version = _version_hash(workspace_id, draft, parent)
    await tx.execute(
        "insert_script",
        workspace_id=workspace_id,
        hash=version,
        path=draft.path,
        parent_hashes=[parent] if parent is not None else None,
        summary=draft.summary,
        description=draft.description,
        content=draft.content,
        created_by=created_by,
        schema=signature.schema,
        language=draft.language,
        kind=draft.kind,
        tag=draft.tag,
        dedicated_worker=draft.dedicated_worker,
        timeout=draft.timeout,
        has_preprocessor=signature.has_preprocessor,
        priority=draft.priority,
    )
    row = await tx.fetch_one("get_script_by_hash", workspace_id=workspace_id, hash=version)
    assert row is not None
    return Script.from_row(row), "created" if latest is None else "updated"


async def latest_script(tx: Transaction, workspace_id: str, path: str) -> Script:
    """The latest live version of `path`, or NotFound."""
    row = await tx.fetch_one("get_latest_script", workspace_id=workspace_id, path=path)
    if row is None:
        raise NotFound(f"script not found at path {path!r} in workspace {workspace_id!r}")
    return Script.from_row(row)


async def script_by_hash(tx: Transaction, workspace_id: str, version: int) -> Script:
    """One version of a script, or NotFound."""
    row = await tx.fetch_one("get_script_by_hash", workspace_id=workspace_id, hash=version)
    if row is None:
        raise NotFound(f"script version {format_hash(version)} not found in {workspace_id!r}")
    return Script.from_row(row)


class ScriptCache:
    """Script versions by (workspace, hash); versions never change, so entries never go stale."""

    def __init__(self, store: Store, capacity: int = 512) -> None:
        self._store = store
        self._capacity = capacity
        self._entries: dict[tuple[str, int], Script] = {}

    async def get(self, workspace_id: str, version: int) -> Script:
        """The version, from memory when it was read before."""
        key = (workspace_id, version)
        cached = self._entries.get(key)
        if cached is not None:
            return cached
        async with self._store.transaction() as tx:
            script = await script_by_hash(tx, workspace_id, version)
        if len(self._entries) >= self._capacity:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = script
        return script
