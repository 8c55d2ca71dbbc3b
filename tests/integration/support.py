"""Building blocks of the integration tests: a workspace with scripts, and waiting for jobs."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import NewJob
from gateway.jobs.read import get_job, wait_for_completion
from gateway.scripts import Script, ScriptDraft, save_script
from gateway.store import Store
from gateway.workspaces import Identity, ensure_workspace

WS = "test"
OWNER = Identity("alice", "alice@example.com")


async def add_scripts(store: Store, **sources: str | tuple[str, str]) -> dict[str, Script]:
    """Create the workspace and save `name=source` (or `name=(language, source)`) scripts."""
    saved: dict[str, Script] = {}
    async with store.transaction() as tx:
        await ensure_workspace(tx, WS, OWNER)
        for name, source in sources.items():
            language, content = source if isinstance(source, tuple) else ("python3", source)
            script, _ = await save_script(
                tx, WS, ScriptDraft(path=f"f/t/{name}", content=content, language=language), "alice"
            )
            saved[name] = script
    return saved


def job_of(name: str, **fields: Any) -> NewJob:
    """A job of script `f/t/<name>` owned by the test user."""
    fields.setdefault("args", {})
    return NewJob(
        workspace_id=WS,
        permissioned_as=OWNER.permissioned_as,
        permissioned_as_email=OWNER.email,
        created_by=OWNER.username,
        runnable_path=f"f/t/{name}",
        **fields,
    )


async def submit(store: Store, *jobs: NewJob) -> list[UUID]:
    """Enqueue jobs in one transaction; their ids."""
    async with store.transaction() as tx:
        return [queued.job_id for queued in await enqueue(tx, jobs)]


async def completed(store: Store, job_id: UUID, timeout_s: float = 30.0) -> dict[str, Any]:
    """The job once completed; fails the test if it does not complete in time."""
    done = await wait_for_completion(store, WS, job_id, timeout_s, poll_s=0.2)
    if done is None:
        state = await get_job(store, WS, job_id)
        raise AssertionError(f"job {job_id} did not complete: {state}")
    return done


async def eventually(predicate: Any, timeout_s: float = 20.0, every_s: float = 0.1) -> Any:
    """Poll an async predicate until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every_s)
