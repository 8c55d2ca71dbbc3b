"""Writes to one object, serialised between instances for the length of a transaction.

A create checks that a path is free and then upserts; two instances doing so at once must not
both succeed. Keys are taken in sorted order, so two writers never wait on each other in a cycle.
"""

from __future__ import annotations

from gateway.store import Transaction


async def lock_paths(tx: Transaction, kind: str, workspace_id: str, *paths: str) -> None:
    """Hold the write lock of each `kind` object at `paths` until `tx` ends."""
    for path in sorted(set(paths)):
        await tx.execute("api_lock_object", key=f"{kind}/{workspace_id}/{path}")
