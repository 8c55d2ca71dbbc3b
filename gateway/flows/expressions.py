"""JavaScript expressions of flows (input transforms, iterators, branch conditions, ...).

Expressions run in an embedded V8 (mini-racer): no file system, no network, no timers, no
modules; just the language. One context serves the process; its global object and every
built-in prototype are frozen before the first expression runs, so an expression cannot leave
anything behind for the next. Each expression sees only the names of its scope (`flow_input`,
`results`, `previous_result`, `params`, ...), passed as JSON, and must return a JSON value
(`undefined` becomes null). An expression that runs longer than the timeout is stopped.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import re
import threading
from collections.abc import Mapping
from typing import Any, Final

from py_mini_racer import JSEvalException, JSTimeoutException, MiniRacer, init_mini_racer

# V8 is set up once per process, here, on the importing thread (the main one): set up by the
# short-lived thread that makes a context, it left state behind that freeing a context whose
# globals were frozen then read, and the process died of a segmentation fault.
init_mini_racer(ignore_duplicate_init=True)

DEFAULT_TIMEOUT_S: Final = 1.0
_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_ANONYMOUS = re.compile(r"^<anonymous>:\d+: ")
_FREEZE = """
(() => {
  const seen = new Set();
  const freeze = (value) => {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return;
    if (seen.has(value)) return;
    seen.add(value);
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) {
      const d = Object.getOwnPropertyDescriptor(value, key);
      if (d && "value" in d) freeze(d.value);
    }
    freeze(Object.getPrototypeOf(value));
  };
  freeze(globalThis);
})();
"""


class ExpressionError(Exception):
    """An expression failed: a syntax error, a thrown error, a timeout or a non-JSON result."""


class ExpressionEngine:
    """Evaluates expressions in one frozen V8 context, one at a time."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._context: MiniRacer | None = None

    def evaluate(self, expr: str, scope: Mapping[str, Any]) -> Any:
        """The JSON value of `expr` with the names of `scope` bound; raises ExpressionError."""
        names = list(scope)
        for name in names:
            if not _NAME.match(name):
                raise ValueError(f"not a JavaScript name: {name!r}")
        bound = ", ".join(names)
        source = (
            f"(function(__scope) {{ 'use strict'; const {{{bound}}} = __scope; "
            f"return JSON.stringify((\n{expr}\n)); }})({json.dumps(scope, default=str)})"
        )
        with self._lock:
            context = self._ready()
            try:
                text = context.eval(source, timeout_sec=self.timeout_s)
            except JSTimeoutException as error:
                raise ExpressionError(f"timed out after {self.timeout_s:g}s") from error
            except JSEvalException as error:
                raise ExpressionError(_first_line(str(error))) from error
        if text is None or not isinstance(text, str):
            return None
        return json.loads(text)

    def close(self) -> None:
        """Release the V8 context (a new one is made on the next evaluation)."""
        with self._lock:
            self._discard()

    def _ready(self) -> MiniRacer:
        if self._context is None:
            self._context = _new_context()
        return self._context

    def _discard(self) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None


def _new_context() -> MiniRacer:
    """A frozen context driven by its own thread, whatever event loop the caller runs in."""
    made: list[MiniRacer] = []

    def make() -> None:
        context = MiniRacer()  # made off any running loop, it starts a loop thread of its own
        context.eval(_FREEZE)
        made.append(context)

    maker = threading.Thread(target=make, name="flow-expressions", daemon=True)
    maker.start()
    maker.join()
    if not made:
        raise ExpressionError("the JavaScript engine could not start")
    return made[0]


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if "Error" in line:
            return _ANONYMOUS.sub("", line)
    return lines[0] if lines else "the expression failed"


engine: Final = ExpressionEngine()
"""The process's expression engine; `configure` sets its timeout from the settings."""
atexit.register(engine.close)


def configure(*, timeout_s: float) -> None:
    """Set the time limit of every expression."""
    engine.timeout_s = timeout_s


async def evaluate(expr: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate `expr` with the process's engine, in a thread: the event loop never waits on V8."""
    return await asyncio.to_thread(engine.evaluate, expr, scope)
