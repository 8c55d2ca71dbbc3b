"""bash jobs: the script as a file in the job directory, its arguments as positional parameters.

- Arguments: ``$1``, ``$2``, ... in the order of `RunRequest.arg_order`; a JSON string is passed as
  its text, any other value as its compact JSON text, a missing or null argument as "".
- Limits: ``ulimit`` sets the virtual memory, CPU time, open files, processes (when jobs run as
  their own user) and file size of bash and of each command it starts, before the script runs.
- Result: the last non-empty line of stdout, as JSON when it parses, else as the string.
- A non-zero exit fails the job, naming the code and the last line of stderr (else of stdout).
- Peak memory: sampled from /proc while the job runs (see `gateway.executor.memory`).
- When bash exits, whatever it left running in its process group is killed.

bash jobs always run in a fresh process; there is no warm worker for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

from gateway.executor.memory import TreeMemorySampler
from gateway.executor.outcome import LogSink, RunOutcome, RunRequest, Stopwatch
from gateway.executor.output import JobLog, LastLine, pump
from gateway.executor.sandbox import (
    EXECUTION_ERROR,
    JobProcess,
    exit_message,
    job_environment,
    make_job_dir,
    remove_job_dir,
    spawn,
    timeout_message,
)

SCRIPT_NAME = "main.sh"

ERROR_LINE_LIMIT = 2000
"""Bytes kept of the output line quoted in the error of a failed job."""

LIMITED_BASH = (
    'c="$1"; n="$2"; shift 2; '
    '[ "$c" = 0 ] || { ulimit -St "$c" && ulimit -Ht "$((c + 1))"; } || exit 125; '
    '[ "$n" = 0 ] || ulimit "${@:1:n}" || exit 125; '
    'shift "$n"; exec bash --noprofile --norc "$@"'
)
"""Sets the limits, then runs the script. ``$1``: the CPU seconds (0: none; the hard limit is one
more, so that the soft one sends SIGXCPU), ``$2``: the number of ``ulimit`` words that follow,
then those words, then the script's argv."""


def bash_argument(value: Any) -> str:
    """One positional parameter: a string as is, another JSON value as its JSON text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def bash_command(script_file: Path, request: RunRequest) -> list[str]:
    """The argv that runs the script with its arguments and limits."""
    arguments = [bash_argument(request.args.get(name)) for name in request.arg_order]
    limits = request.limits
    if request.user is None:  # the process count would be the gateway user's, not the job's
        limits = dataclasses.replace(limits, processes=None)
    options = limits.ulimit_options()
    if request.memory_limit_mb is not None:
        options += ["-v", str(request.memory_limit_mb * 1024)]
    if not options and not limits.cpu_s:
        return ["bash", "--noprofile", "--norc", str(script_file), *arguments]
    return [
        *("bash", "--noprofile", "--norc", "-c", LIMITED_BASH, "bash"),
        *(str(limits.cpu_s or 0), str(len(options)), *options, str(script_file), *arguments),
    ]


def parse_result(line: bytes) -> Any:
    """The job's result from its last stdout line: JSON when it parses, else the text."""
    text = line.decode(errors="replace").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


async def run_bash(request: RunRequest, log: LogSink) -> RunOutcome:
    """Run a bash job in a fresh process."""
    watch = Stopwatch()
    workdir = await make_job_dir(
        functools.partial(_write_script, content=request.content), request.user
    )
    try:
        try:
            process = await spawn(
                bash_command(workdir / SCRIPT_NAME, request),
                workdir=workdir,
                env=job_environment(workdir, request.env),
                merge_stderr=False,
                user=request.user,
            )
        except FileNotFoundError:
            return watch.failure(EXECUTION_ERROR, "bash is not installed on this gateway's PATH")
        except PermissionError as exc:
            return watch.failure(EXECUTION_ERROR, f"the job user cannot run bash: {exc}")
        return await _supervise(process, request, log, watch)
    finally:
        await remove_job_dir(workdir)


def _write_script(workdir: Path, *, content: str) -> None:
    (workdir / SCRIPT_NAME).write_text(content, encoding="utf-8")


async def _supervise(
    process: JobProcess, request: RunRequest, log: LogSink, watch: Stopwatch
) -> RunOutcome:
    assert process.stderr is not None
    job_log = JobLog(log, request.script_path)
    stdout_line = LastLine(cap=request.max_result_bytes + 1)
    stderr_line = LastLine(cap=ERROR_LINE_LIMIT)
    readers = [
        asyncio.create_task(
            pump(stream, job_log, last), name=f"bash {name} of {request.script_path}"
        )
        for name, stream, last in (
            ("stdout", process.stdout, stdout_line),
            ("stderr", process.stderr, stderr_line),
        )
    ]
    sampler = TreeMemorySampler(process.pid)
    sampling = asyncio.create_task(sampler.run(), name=f"bash memory of {request.script_path}")
    returncode: int | None = None  # stays None when the job times out
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(request.timeout_s):
                returncode = await process.wait()
    finally:
        sampling.cancel()
        await process.end(readers)
        await asyncio.wait([sampling])
    memory = sampler.peak_kb
    if returncode is None:
        return watch.failure("TimeoutError", timeout_message(request.timeout_s), memory)
    if returncode != 0:
        message = exit_message(returncode, "bash")
        last = (stderr_line.line or stdout_line.line)[:ERROR_LINE_LIMIT].strip()
        if returncode > 0 and last:
            message = f"{message}: {last.decode(errors='replace')}"
        return watch.failure(EXECUTION_ERROR, message, memory)
    if stdout_line.size > request.max_result_bytes:
        return watch.failure(
            "ResultTooLarge",
            f"result is {stdout_line.size} bytes, the limit is {request.max_result_bytes} bytes",
            memory,
        )
    return watch.outcome(True, parse_result(stdout_line.line), memory)
