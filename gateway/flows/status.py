"""A flow job's `flow_status` document, and the run that holds it while the engine moves it on.

`new_status` writes the document of a flow job that has not started a module yet. `FlowRun` is
the context every step of the engine takes: the job's row (locked), its parsed flow, its status,
and the scope its expressions read (`flow_input`, `results`, `previous_result`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from gateway.executor.outcome import error_result
from gateway.flows.model import Flow, parse_flow
from gateway.jobs.model import JobStatus
from gateway.store import Json, Transaction

FAILURE_STEP = "failure"
PREPROCESSOR_STEP = "preprocessor"
CONTAINERS = ("forloopflow", "branchall")
"""The module types whose work is many child flow jobs (iterations, branches)."""


@dataclass(frozen=True, slots=True)
class Ended:
    """How a flow job ends: its status and result."""

    status: JobStatus
    result: Any


class StepError(Exception):
    """A step could not be started (a bad expression, a missing script); fails the module."""


def new_status(flow: Flow, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The flow_status of a flow job that has not started any module yet."""
    status: dict[str, Any] = {
        "step": 0,
        "modules": [{"id": m.id, "type": "WaitingForPriorSteps"} for m in flow.modules],
        "retry": {"fail_count": 0, "failed_jobs": []},
    }
    if flow.failure_module is not None:
        status["failure_module"] = {"id": FAILURE_STEP, "type": "WaitingForPriorSteps"}
    if flow.preprocessor_module is not None:
        status["preprocessor_module"] = {"id": PREPROCESSOR_STEP, "type": "WaitingForPriorSteps"}
    if context:
        status["context"] = dict(context)
    return status


class FlowRun:
    """One flow job loaded (and locked) in a transaction: its row, flow and flow_status."""

    def __init__(self, tx: Transaction, row: dict[str, Any], flow: Flow) -> None:
        self.tx = tx
        self.row = row
        self.flow = flow
        self.status: dict[str, Any] = row["flow_status"]

    @classmethod
    async def load(cls, tx: Transaction, flow_id: UUID) -> FlowRun | None:
        """The running flow job `flow_id`, locked; None once it has completed."""
        row = await tx.fetch_one("lock_flow_job", id=flow_id)
        if row is None:
            return None
        return cls(tx, dict(row), parse_flow(row["raw_flow"]))

    @property
    def id(self) -> UUID:
        """The flow job's id."""
        value: UUID = self.row["id"]
        return value

    @property
    def flow_input(self) -> dict[str, Any]:
        """The flow's input: its job arguments."""
        return dict(self.row["args"] or {})

    def flow_value_of(self, index: int) -> Mapping[str, Any]:
        """The raw JSON `value` of module `index`."""
        value: Mapping[str, Any] = self.row["raw_flow"]["modules"][index]["value"]
        return value

    def results(self) -> dict[str, Any]:
        """The results of the steps so far, by module id, the enclosing flows' included."""
        context = self.status.get("context", {})
        results = dict(context.get("results", {}))
        for entry in self.status["modules"]:
            if entry.get("type") == "Success" and "result" in entry:
                results[entry["id"]] = entry["result"]
        return results

    def previous_result(self) -> Any:
        """The result of the last step that ended, or the enclosing flow's previous result."""
        for entry in reversed(self.status["modules"][: self.status.get("step", 0)]):
            if entry.get("type") == "Success" and "result" in entry:
                return entry["result"]
        context = self.status.get("context")
        if context is not None:
            return context.get("previous_result")
        return self.flow_input if self.status.get("step", 0) == 0 else None

    def scope(self) -> dict[str, Any]:
        """What the flow's expressions read: `flow_input`, `results`, `previous_result`."""
        return {
            "flow_input": self.flow_input,
            "results": self.results(),
            "previous_result": self.previous_result(),
        }

    async def save(self) -> None:
        """Write the flow_status back to the flow job."""
        await self.tx.execute("set_job_status", id=self.id, flow_status=Json(self.status))


def succeeded(status: JobStatus) -> bool:
    """A step that succeeded, or a flow node stopped early and marked skipped."""
    return status in (JobStatus.SUCCESS, JobStatus.SKIPPED)


def failure(message: str) -> dict[str, Any]:
    """The error result of a step the engine itself failed."""
    return error_result("FlowError", message)


def with_step(error: Any, step_id: str) -> Any:
    """The error result `error` naming the step it came from (unless it names one already)."""
    if isinstance(error, dict) and isinstance(error.get("error"), dict):
        detail = dict(error["error"])
        detail.setdefault("step_id", step_id)
        return {**error, "error": detail}
    return error


def fail_now(step_id: str, message: str) -> Ended:
    """The end of a flow whose step `step_id` failed before any job ran."""
    return Ended(JobStatus.FAILURE, with_step(failure(message), step_id))
