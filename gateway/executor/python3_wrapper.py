"""The program a python3 job runs in: it imports one script, then runs jobs read from a pipe.

Started by the gateway with ``SCRIPT_FILE SCRIPT_PATH MEMORY_MB LIMITS CPU_SCOPE REQUEST_FD
RESPONSE_FD MARKER`` as arguments (LIMITS: ``cpu_s,open_files,processes,file_bytes``, 0 for none;
CPU_SCOPE: ``process`` for a one-job child, ``job`` for a warm one; see
`gateway.executor.python3`), never imported by it: it uses the standard library only and
imports as little as it can, because every fresh job pays for its start-up.

One JSON object per line on each pipe:

- request (REQUEST_FD): ``{"args": {...}, "env": {...}, "run_preprocessor": bool,
  "max_result_bytes": int}``
- response (RESPONSE_FD): ``{"ok": bool, "last": bool, "memory_peak_kb": int | null, "result":
  ...}``; a failed job's result is ``{"error": {"name", "message", "stack"?}}``; ``last`` says
  that the wrapper exits after this response.

After each job the wrapper writes MARKER to stdout, before the response: every byte of output
before the marker belongs to that job. When the script cannot be imported, the first request is
answered with that error (``"last": true``) and the wrapper exits, so that the next job imports
the script afresh.
"""

# `json` imports `re` and `enum`, which would cost a fresh job more than half of a bare
# interpreter's start-up; its C half, `_json`, reads and writes JSON by itself.
import _json
import marshal
import os
import sys

# Imported for the type checker only (hence the quoted annotations, and no `__future__` import):
# `typing` too costs milliseconds at start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

CO_VARKEYWORDS = 0x08
ERROR_TEXT_LIMIT = 8000
"""Characters kept of an error's message and of its stack (the end, where the cause is)."""


class MissingArgument(TypeError):
    """A parameter without default got no argument."""


class SerializationError(TypeError):
    """The result cannot be written as JSON."""


class ResultTooLarge(ValueError):
    """The result is larger than the job's limit."""


class PreprocessorError(TypeError):
    """The preprocessor is missing or did not return a dict of arguments."""


class MainNotFound(LookupError):
    """The script defines no callable ``main``."""


OWN_ERRORS = (MissingArgument, SerializationError, ResultTooLarge, PreprocessorError, MainNotFound)


class JsonOptions:
    """The decoding options `_json.make_scanner` reads, as `json.JSONDecoder` would give them."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity, -Infinity


scan_json = _json.make_scanner(JsonOptions())  # type: ignore[arg-type]  # duck-typed options


def parse_json(text: str) -> "Any":
    """The JSON value at the start of `text`."""
    return scan_json(text, 0)[0]


def not_serialisable(value: "Any") -> "Any":
    """The encoder's fallback for values JSON has no form for."""
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_json(value: "Any", *, ascii_only: bool = False) -> bytes:
    """Compact JSON (NaN refused, circular references detected), UTF-8 encoded."""
    escape = _json.encode_basestring_ascii if ascii_only else _json.encode_basestring
    encode = _json.make_encoder({}, not_serialisable, escape, None, ":", ",", False, False, False)
    return "".join(encode(value, 0)).encode()


def limit_address_space(megabytes: int) -> None:
    """Cap this process's virtual memory so that a large allocation raises MemoryError."""
    import resource

    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def set_limit(name: str, value: int, headroom: int = 0) -> None:
    """Set one resource limit (its hard limit `headroom` above), within the inherited hard one."""
    import resource

    which = getattr(resource, name)
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard - headroom)
    resource.setrlimit(which, (value, value + headroom))


def apply_limits(spec: str, cpu_scope: str) -> int:
    """Set the limits of LIMITS (see the module's docstring); returns the per-job CPU seconds.

    A one-job child gets a hard CPU limit. A warm child runs many jobs in one process, whose CPU
    time adds up, so it gets a soft limit per job instead (`limit_cpu_of_next_job`).
    """
    cpu_s, open_files, processes, file_bytes = (int(value) for value in spec.split(","))
    for name, value in (
        ("RLIMIT_NOFILE", open_files),
        ("RLIMIT_NPROC", processes),
        ("RLIMIT_FSIZE", file_bytes),
    ):
        if value > 0:
            set_limit(name, value)
    if cpu_s > 0 and cpu_scope == "process":
        set_limit("RLIMIT_CPU", cpu_s, headroom=1)  # SIGXCPU at the soft limit, then SIGKILL
        return 0
    return cpu_s


def limit_cpu_of_next_job(cpu_s: int) -> None:
    """Allow the next job `cpu_s` seconds of CPU beyond what this process used so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + cpu_s if hard == resource.RLIM_INFINITY else min(used + cpu_s, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def module_name(script_path: str) -> str:
    """A valid module name from the last segment of a script path (``f/ops/hello`` -> ``hello``)."""
    last = script_path.rstrip("/").rsplit("/", 1)[-1]
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in last) or "script"
    return f"_{name}" if name[0].isdigit() else name


def load_script(script_file: str, script_path: str) -> "Any":
    """Import the script file as a module, without running it as ``__main__``.

    The gateway leaves the script's compiled code beside it (``.pyc``, marshalled): compiling here
    would first set up the compiler, about 0.7 ms of a fresh job.
    """
    try:
        with open(script_file[: -len(".py")] + ".pyc", "rb") as compiled:
            code = marshal.loads(compiled.read())
    except FileNotFoundError:  # it did not compile: compiling again raises the error here
        with open(script_file, encoding="utf-8") as source:
            code = compile(source.read(), script_file, "exec", dont_inherit=True)
    module = type(sys)(module_name(script_path))
    module.__file__ = script_file
    sys.modules[module.__name__] = module
    exec(code, module.__dict__)
    return module


def peak_rss_kb() -> int | None:
    """This process's peak resident memory (VmHWM).

    ``getrusage`` is not used: after exec its ``ru_maxrss`` still counts the peak of the forked
    parent, so a child of a large gateway would report the gateway's memory.
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> None:
    """Start a new peak-memory measurement for the next job of a warm worker."""
    try:
        with open("/proc/self/clear_refs", "wb") as clear_refs:
            clear_refs.write(b"5")
    except OSError:
        pass


def call_with_args(function: "Callable[..., Any]", name: str, args: "dict[str, Any]") -> "Any":
    """Call `function` with the arguments it accepts, awaiting it when it is a coroutine.

    Arguments it does not name are dropped unless it takes ``**kwargs``; a parameter without
    default and without argument raises `MissingArgument`. The signature is read from the code
    object rather than with `inspect`, which costs milliseconds to import.
    """
    target: Any = function
    while hasattr(target, "__wrapped__"):
        target = target.__wrapped__
    code = getattr(target, "__code__", None)
    if code is None or code.co_flags & CO_VARKEYWORDS:
        value = function(**args)
    else:
        n_positional, n_keyword = code.co_argcount, code.co_kwonlyargcount
        bound = 1 if hasattr(target, "__self__") else 0  # a bound method's `self` is given
        positional_names = code.co_varnames[bound:n_positional]
        keyword_names = code.co_varnames[n_positional : n_positional + n_keyword]
        defaults = target.__defaults__ or ()
        keyword_defaults = target.__kwdefaults__ or {}
        required = [
            *positional_names[: n_positional - bound - len(defaults)],
            *(n for n in keyword_names if n not in keyword_defaults),
        ]
        for parameter in required:
            if parameter not in args:
                raise MissingArgument(f"{name}() is missing required argument '{parameter}'")
        n_positional_only = max(code.co_posonlyargcount - bound, 0)
        positional = [args[n] for n in positional_names[:n_positional_only] if n in args]
        keywords = {
            n: args[n] for n in (*positional_names[n_positional_only:], *keyword_names) if n in args
        }
        value = function(*positional, **keywords)
    if hasattr(value, "__await__"):
        import asyncio

        value = asyncio.run(awaited(value))
    return value


async def awaited(awaitable: "Any") -> "Any":
    """Await any awaitable, so that `asyncio.run` accepts it."""
    return await awaitable


def encode_result(value: "Any", limit: int) -> bytes:
    """The result as compact UTF-8 JSON, within `limit` bytes."""
    try:
        encoded = to_json(value)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"the result of main() is not JSON-serialisable: {exc}") from None
    if len(encoded) > limit:
        raise ResultTooLarge(f"result is {len(encoded)} bytes, the limit is {limit} bytes")
    return encoded


def describe_error(exc: BaseException) -> "dict[str, Any]":
    """Windmill's error shape, with the traceback of the user's code (the wrapper's frames cut)."""
    error: dict[str, Any] = {"name": type(exc).__name__, "message": str(exc)[:ERROR_TEXT_LIMIT]}
    if not isinstance(exc, OWN_ERRORS):
        import traceback

        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        stack = "".join(traceback.format_exception(type(exc), exc, tb))
        error["stack"] = stack[-ERROR_TEXT_LIMIT:]
    return {"error": error}


def run_job(module: "Any", request: "dict[str, Any]") -> tuple[bool, bytes]:
    """Run one job: the preprocessor when asked, then main. Returns (ok, result JSON)."""
    try:
        args = request["args"]
        if request["run_preprocessor"]:
            preprocessor = getattr(module, "preprocessor", None)
            if not callable(preprocessor):
                raise PreprocessorError("the script has no preprocessor function")
            args = call_with_args(preprocessor, "preprocessor", args)
            if not isinstance(args, dict):
                raise PreprocessorError(
                    "preprocessor() must return a dict of arguments for main(), "
                    f"got {type(args).__name__}"
                )
        main = getattr(module, "main", None)
        if not callable(main):
            raise MainNotFound("the script has no main function")
        return True, encode_result(call_with_args(main, "main", args), request["max_result_bytes"])
    except BaseException as exc:  # the user's code may raise anything, SystemExit included
        return False, to_json(describe_error(exc), ascii_only=True)


def end_job_output(marker: bytes) -> None:
    """Flush what the job printed, then mark the end of its output on stdout."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os.write(1, marker)


def serve(
    module: "Any",
    load_error: BaseException | None,
    requests: "BinaryIO",
    responses: "BinaryIO",
    marker: bytes,
    *,
    cpu_per_job_s: int = 0,
) -> int:
    """Answer requests until the request pipe closes."""
    for line in requests:
        request = parse_json(line.decode())
        if cpu_per_job_s:
            limit_cpu_of_next_job(cpu_per_job_s)
        os.environ.clear()
        os.environ.update(request["env"])
        if load_error is None:
            ok, result = run_job(module, request)
        else:
            ok, result = False, to_json(describe_error(load_error), ascii_only=True)
        end_job_output(marker)
        memory = peak_rss_kb()
        header = b'{"ok":%s,"last":%s,"memory_peak_kb":%s,"result":' % (
            b"true" if ok else b"false",
            b"false" if load_error is None else b"true",
            b"null" if memory is None else str(memory).encode(),
        )
        responses.write(header + result + b"}\n")
        responses.flush()
        if load_error is not None:
            return 1
        reset_peak_rss()
    return 0


def main(argv: list[str]) -> int:
    """Entry point: set the limits, import the script, serve jobs."""
    script_file, script_path, memory_mb, limits, cpu_scope, request_fd, response_fd, marker = argv[
        1:
    ]
    if int(memory_mb) > 0:
        limit_address_space(int(memory_mb))
    cpu_per_job_s = apply_limits(limits, cpu_scope)
    requests = os.fdopen(int(request_fd), "rb")
    responses = os.fdopen(int(response_fd), "wb")
    # The pipes stay private to the wrapper: a subprocess of the job must not hold them open.
    os.set_inheritable(requests.fileno(), False)
    os.set_inheritable(responses.fileno(), False)
    sys.argv = [script_file]
    module: Any = None
    load_error: BaseException | None = None
    try:
        module = load_script(script_file, script_path)
    except BaseException as exc:  # a failing import is the job's error, whatever it raised
        load_error = exc
    return serve(
        module, load_error, requests, responses, marker.encode(), cpu_per_job_s=cpu_per_job_s
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
