"""`gateway jobs list|get|logs|cancel|run`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from uuid import UUID

from gateway.cli.context import CLI_IDENTITY, add_json_option, add_workspace_option, opened_store
from gateway.cli.flows import job_flow_status, print_flow_steps
from gateway.cli.output import print_json, print_table
from gateway.errors import InvalidInput
from gateway.flow_versions import latest_flow_version
from gateway.jobs.cancel import cancel_job
from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import NewJob
from gateway.jobs.read import JobFilter, get_job, get_logs, list_jobs, wait_for_completion
from gateway.settings import Settings


def register(commands: Any) -> None:
    """Add `jobs` and its sub-commands."""
    group = commands.add_parser("jobs", help="list, inspect, cancel and run jobs")
    sub = group.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")

    cmd = sub.add_parser("list", help="jobs, newest first")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument(
        "--trigger-kind", help="only jobs from this kind of trigger (kafka, http, ...)"
    )
    cmd.add_argument("--trigger", help="only jobs from this trigger path")
    cmd.add_argument("--script-path", help="only jobs of this script path")
    cmd.add_argument("--state", choices=["queued", "running", "completed", "in_queue"])
    outcome = cmd.add_mutually_exclusive_group()
    outcome.add_argument("--success", action="store_true", help="only successful jobs")
    outcome.add_argument("--failure", action="store_true", help="only failed jobs")
    cmd.add_argument("--limit", type=int, default=30)
    cmd.add_argument("--all", action="store_true", help="include flow steps (retry attempts)")
    cmd.set_defaults(handler=list_command)

    for name, handler, text in (
        ("get", get_command, "one job"),
        ("logs", logs_command, "a job's logs"),
    ):
        cmd = sub.add_parser(name, help=text)
        add_workspace_option(cmd)
        add_json_option(cmd)
        cmd.add_argument("job_id", type=UUID)
        cmd.set_defaults(handler=handler)

    cmd = sub.add_parser("cancel", help="cancel a queued or running job")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("job_id", type=UUID)
    cmd.add_argument("--reason")
    cmd.set_defaults(handler=cancel_command)

    cmd = sub.add_parser("run", help="enqueue a run of a script or flow (the latest version)")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("path", help="script path, e.g. f/examples/hello")
    cmd.add_argument("--flow", action="store_true", help="PATH names a flow, not a script")
    cmd.add_argument(
        "-a", "--arg", action="append", default=[], metavar="NAME=VALUE",
        help="an argument; VALUE is read as JSON when it parses, else as text",
    )  # fmt: skip
    cmd.add_argument("--args", help="all arguments as one JSON object")
    cmd.add_argument("--wait", action="store_true", help="wait for the result and print it")
    cmd.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (with --wait)")
    cmd.set_defaults(handler=run_command)


async def list_command(settings: Settings, options: argparse.Namespace) -> int:
    """Print a page of jobs."""
    success = True if options.success else False if options.failure else None
    where = JobFilter(
        trigger_kind=options.trigger_kind,
        trigger=options.trigger,
        script_path_exact=options.script_path,
        state=options.state,
        success=success,
        include_steps=options.all,
        per_page=options.limit,
    )
    async with opened_store(settings) as store:
        found = await list_jobs(store, options.workspace, where)
    if options.json:
        print_json(found)
        return 0
    rows = [
        {
            "id": job["id"],
            "script": job["script_path"],
            "status": _status(job),
            "trigger": ":".join(filter(None, (job["trigger_kind"], job["trigger"]))) or None,
            "created": job["created_at"][:19],
            "duration": f"{job['duration_ms'] / 1000:.2f}s"
            if job.get("duration_ms") is not None
            else None,
        }
        for job in found
    ]
    print_table(rows, ["id", "script", "status", "duration", "trigger", "created"])
    return 0


def _status(job: dict[str, Any]) -> str:
    if job["type"] == "CompletedJob":
        return str(job["status"])
    return "running" if job["running"] else "queued"


async def get_command(settings: Settings, options: argparse.Namespace) -> int:
    """Print one job."""
    async with opened_store(settings) as store:
        job = await get_job(store, options.workspace, options.job_id)
        flow_status = await job_flow_status(store, options.workspace, options.job_id)
    if flow_status is not None:
        job["flow_status"] = flow_status
    if options.json:
        print_json(job)
        return 0
    for key in ("id", "type", "script_path", "job_kind", "trigger_kind", "trigger", "created_at",
                "started_at", "duration_ms", "status", "worker", "retries"):  # fmt: skip
        if key in job:
            print(f"{key + ':':14} {job[key] if job[key] is not None else '-'}")
    print(f"{'args:':14} {json.dumps(job['args'])}")
    if flow_status is not None:
        print_flow_steps(flow_status)
    if job["type"] == "CompletedJob":
        print(f"{'result:':14} {json.dumps(job['result'], indent=2)}")
    return 0


async def logs_command(settings: Settings, options: argparse.Namespace) -> int:
    """Print a job's logs."""
    async with opened_store(settings) as store:
        logs = await get_logs(store, options.workspace, options.job_id)
    if options.json:
        print_json({"id": str(options.job_id), "logs": logs})
    else:
        sys.stdout.write(logs)
    return 0


async def cancel_command(settings: Settings, options: argparse.Namespace) -> int:
    """Cancel a job."""
    async with opened_store(settings) as store, store.transaction() as tx:
        ended = await cancel_job(
            tx, options.workspace, options.job_id, CLI_IDENTITY.username, options.reason
        )
    if options.json:
        print_json({"id": str(options.job_id), "canceled": ended, "stopping": not ended})
    else:
        print("canceled" if ended else "cancel requested; the running job is being stopped")
    return 0


def parse_args(pairs: list[str], whole: str | None) -> dict[str, Any]:
    """Job arguments from `--args JSON` and `-a name=value` options."""
    args: dict[str, Any] = {}
    if whole:
        try:
            parsed = json.loads(whole)
        except json.JSONDecodeError as exc:
            raise InvalidInput("--args", f"not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise InvalidInput("--args", "must be a JSON object")
        args.update(parsed)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise InvalidInput("--arg", f"{pair!r} is not NAME=VALUE")
        try:
            args[name] = json.loads(raw)
        except json.JSONDecodeError:
            args[name] = raw
    return args


async def run_command(settings: Settings, options: argparse.Namespace) -> int:
    """Enqueue a job; with --wait, print its result (exit 1 if it failed)."""
    args = parse_args(options.arg, options.args)
    async with opened_store(settings) as store:
        async with store.transaction() as tx:
            flow = (
                await latest_flow_version(tx, options.workspace, options.path)
                if options.flow
                else None
            )
            job = NewJob(
                workspace_id=options.workspace,
                args=args,
                permissioned_as=CLI_IDENTITY.permissioned_as,
                permissioned_as_email=CLI_IDENTITY.email,
                created_by=CLI_IDENTITY.username,
                runnable_path=options.path,
                flow_value=flow.value if flow else None,
                flow_version=flow.version if flow else None,
                trigger_kind="ui",
            )
            (queued,) = await enqueue(tx, [job])
        if not options.wait:
            print(queued.job_id)
            return 0
        if sys.stderr.isatty():
            print(f"job {queued.job_id} queued, waiting for it...", file=sys.stderr)
        done = await wait_for_completion(store, options.workspace, queued.job_id, options.timeout)
    if done is None:
        print(
            f"job {queued.job_id} did not complete within {options.timeout:.0f}s", file=sys.stderr
        )
        return 2
    if options.json:
        print_json(done)
    else:
        print(json.dumps(done["result"], indent=2))
    return 0 if done["success"] else 1
