"""python3 jobs, the gateway's side: a wrapper child (`python3_wrapper`) that runs a script's jobs.

A `PythonProcess` is one wrapper child that imported one script. A fresh job uses one for a single
job (`run_python3`); a warm worker keeps one for many jobs (`gateway.executor.warm`).

The child runs under the gateway's own interpreter, so the packages installed beside the gateway
(``wmill``, ...) are importable. It runs isolated (``-I``): ``PYTHON*`` variables of the job's
environment reach ``os.environ`` but do not change the interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import marshal
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.executor.job_user import JobUser
from gateway.executor.limits import JobLimits
from gateway.executor.outcome import LogSink, RunOutcome, RunRequest, Stopwatch
from gateway.executor.output import READ_SIZE, JobLog, utf8_decoder
from gateway.executor.python3_wrapper import module_name
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

WRAPPER = Path(__file__).with_name("python3_wrapper.py")

LAUNCH_WRAPPER = (
    "import sys;"
    "from _frozen_importlib_external import SourceFileLoader;"
    "path = sys.argv[1];"
    "code = SourceFileLoader('python3_wrapper', path).get_code('python3_wrapper');"
    "wrapper = {'__name__': 'python3_wrapper', '__file__': path};"
    "exec(code, wrapper);"
    "sys.exit(wrapper['main'](sys.argv[1:]))"
)
"""``python -c`` code that runs the wrapper from its cached bytecode (``__pycache__``): a file
run as a script is compiled again on every start, a cost a fresh job would pay each time. The
loader is `importlib.machinery.SourceFileLoader`, taken from the frozen module the interpreter has
already loaded, since importing `importlib.machinery` costs a few tenths of a millisecond."""

RESPONSE_OVERHEAD = 128 * 1024
"""Room in a response line besides the result: an error's message and stack, the header."""

UNCLAIMED_LIMIT = 64 * 1024
"""Characters kept of output written while no job runs; they go to the next job's log."""

EXIT_GRACE_S = 2.0
"""How long an idle child may take to exit once its request pipe is closed."""


@dataclass(frozen=True, slots=True)
class ChildSettings:
    """What a wrapper child was started with: a job that needs others needs another child."""

    script_path: str
    content: str
    memory_limit_mb: int | None
    max_result_bytes: int
    limits: JobLimits
    user: JobUser | None

    @classmethod
    def of(cls, request: RunRequest) -> ChildSettings:
        """The settings a child needs to run `request`."""
        limits = request.limits
        if request.user is None:  # the process count would be the gateway user's, not the job's
            limits = dataclasses.replace(limits, processes=None)
        return cls(
            request.script_path,
            request.content,
            request.memory_limit_mb,
            request.max_result_bytes,
            limits,
            request.user,
        )


class PythonProcess:
    """One wrapper child that imported one script and runs its jobs one at a time.

    Its stdout and stderr share one pipe; what arrives before the end-of-job marker belongs to the
    running job, and what arrives between jobs goes to the next job's log.
    """

    def __init__(
        self,
        *,
        settings: ChildSettings,
        process: JobProcess,
        workdir: Path,
        requests: asyncio.WriteTransport,
        responses: asyncio.StreamReader,
        responses_transport: asyncio.ReadTransport,
        marker: bytes,
        one_shot: bool,
    ) -> None:
        self.settings = settings
        self.pid = process.pid
        self._process = process
        self._workdir = workdir
        self._requests = requests
        self._responses = responses
        self._responses_transport = responses_transport
        self._marker = marker
        self._one_shot = one_shot
        self._log: JobLog | None = None
        self._retired = False  # the child said it exits after its last answer
        self._unclaimed = ""
        self._job_ended = asyncio.Event()
        self._output = asyncio.create_task(
            self._read_output(), name=f"python3 output of {settings.script_path} ({self.pid})"
        )

    @classmethod
    async def start(cls, request: RunRequest, *, one_shot: bool) -> PythonProcess:
        """Start a child for the script of `request`; a one-shot child serves a single job."""
        settings = ChildSettings.of(request)
        script_name = f"{module_name(request.script_path)}.py"
        workdir = await make_job_dir(
            functools.partial(_write_script, script_name=script_name, content=request.content),
            request.user,
        )
        try:
            return await cls._spawn(settings, request, workdir, workdir / script_name, one_shot)
        except BaseException:
            await remove_job_dir(workdir)
            raise

    @classmethod
    async def _spawn(
        cls,
        settings: ChildSettings,
        request: RunRequest,
        workdir: Path,
        script_file: Path,
        one_shot: bool,
    ) -> PythonProcess:
        marker = b"\x1e" + secrets.token_hex(16).encode() + b"\x1e"
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        argv = [
            sys.executable,
            "-I",
            "-u",
            "-c",
            LAUNCH_WRAPPER,
            str(WRAPPER),
            str(script_file),
            request.script_path,
            str(request.memory_limit_mb or 0),
            settings.limits.wrapper_argument(),
            "job" if not one_shot else "process",
            str(request_read),
            str(response_write),
            marker.decode(),
        ]
        try:
            process = await spawn(
                argv,
                workdir=workdir,
                env=job_environment(workdir, request.env),
                merge_stderr=True,
                pass_fds=(request_read, response_write),
                user=settings.user,
            )
        except BaseException:
            os.close(request_write)
            os.close(response_read)
            raise
        finally:
            os.close(request_read)
            os.close(response_write)
        try:
            loop = asyncio.get_running_loop()
            requests, _ = await loop.connect_write_pipe(
                asyncio.Protocol, os.fdopen(request_write, "wb", buffering=0)
            )
            responses = asyncio.StreamReader(limit=settings.max_result_bytes + RESPONSE_OVERHEAD)
            responses_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(responses),
                os.fdopen(response_read, "rb", buffering=0),
            )
        except BaseException:
            await process.end([])
            raise
        return cls(
            settings=settings,
            process=process,
            workdir=workdir,
            requests=requests,
            responses=responses,
            responses_transport=responses_transport,
            marker=marker,
            one_shot=one_shot,
        )

    @property
    def alive(self) -> bool:
        """Whether the child can take another job: it runs, and did not say it is exiting."""
        return self._process.returncode is None and not self._retired

    def serves(self, request: RunRequest) -> bool:
        """Whether this child can take `request`: alive, and started for what it needs."""
        return self.alive and self.settings == ChildSettings.of(request)

    async def execute(self, request: RunRequest, log: LogSink, watch: Stopwatch) -> RunOutcome:
        """Run one job. The child is killed on timeout, on a broken answer and on cancellation."""
        self._log = JobLog(log, request.script_path)
        self._job_ended.clear()
        job = {
            "args": dict(request.args),
            "env": job_environment(self._workdir, request.env),
            "run_preprocessor": request.run_preprocessor,
            "max_result_bytes": request.max_result_bytes,
        }
        self._requests.write(json.dumps(job).encode() + b"\n")
        if self._one_shot:
            self._requests.close()
        try:
            async with asyncio.timeout(request.timeout_s):
                line = await self._responses.readuntil(b"\n")
                if self._one_shot:
                    await self._process.wait()
                else:
                    await self._job_ended.wait()
            if self._one_shot:
                await self._end()
        except TimeoutError:
            await self._end()
            return watch.failure("TimeoutError", timeout_message(request.timeout_s))
        except asyncio.IncompleteReadError:
            returncode = await self._end()
            return watch.failure(EXECUTION_ERROR, exit_message(returncode, "the python3 process"))
        except asyncio.LimitOverrunError:
            await self._end()
            return watch.failure(
                "ResultTooLarge",
                f"result is larger than the limit of {request.max_result_bytes} bytes",
            )
        except BaseException:
            await self._end()
            raise
        finally:
            self._log = None
        reply = json.loads(line)
        self._retired = reply["last"]
        return watch.outcome(reply["ok"], reply["result"], reply["memory_peak_kb"])

    async def close(self) -> None:
        """End the child: an idle one exits by itself, a busy or stuck one is killed."""
        if not self._requests.is_closing():
            self._requests.close()
        if self._process.returncode is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EXIT_GRACE_S):
                    await self._process.wait()
        await self._end()
        self._responses_transport.close()
        await remove_job_dir(self._workdir)

    async def _end(self) -> int:
        """Kill the child's group, reap it and drain its output; returns its exit status."""
        return await self._process.end([self._output])

    async def _read_output(self) -> None:
        stdout = self._process.stdout
        marker = self._marker
        decoder = utf8_decoder()
        held = b""
        while chunk := await stdout.read(READ_SIZE):
            data = held + chunk
            while (at := data.find(marker)) >= 0:
                await self._deliver(decoder.decode(data[:at], final=True))
                data = data[at + len(marker) :]
                if not self._one_shot:
                    self._log = None
                self._job_ended.set()
            # A marker may be split between two reads: hold back what could be its beginning.
            cut = len(data) - _marker_prefix_length(data, marker)
            held = data[cut:]
            await self._deliver(decoder.decode(data[:cut]))
        await self._deliver(decoder.decode(held, final=True))

    async def _deliver(self, text: str) -> None:
        if self._log is None:
            self._unclaimed = (self._unclaimed + text)[-UNCLAIMED_LIMIT:]
            return
        text, self._unclaimed = self._unclaimed + text, ""
        await self._log.write(text)


def _write_script(workdir: Path, *, script_name: str, content: str) -> None:
    """Write the script, and its code compiled here (``.pyc`` beside it, marshalled).

    The first use of the compiler costs a fresh interpreter about 0.7 ms (it sets up the AST
    types), which a child that finds the compiled code is spared. A script that does not compile
    is left to the child, which meets the same error and reports it as the job's.
    """
    script_file = workdir / script_name
    script_file.write_text(content, encoding="utf-8")
    try:
        code = compile(content, str(script_file), "exec", dont_inherit=True, optimize=0)
    except Exception:  # SyntaxError, or a script too deep or too large for the compiler
        return
    script_file.with_suffix(".pyc").write_bytes(marshal.dumps(code))


def _marker_prefix_length(data: bytes, marker: bytes) -> int:
    """The length of the longest end of `data` that is a beginning of `marker`."""
    # The marker's first byte occurs in it only once more, as its last byte, so a beginning of
    # the marker shorter than the marker starts at the last occurrence of that byte.
    at = data.rfind(marker[:1], max(len(data) - len(marker) + 1, 0))
    return len(data) - at if at >= 0 and marker.startswith(data[at:]) else 0


async def run_python3(request: RunRequest, log: LogSink) -> RunOutcome:
    """Run a python3 job in a fresh wrapper process."""
    watch = Stopwatch()
    child = await PythonProcess.start(request, one_shot=True)
    try:
        return await child.execute(request, log, watch)
    finally:
        await child.close()
