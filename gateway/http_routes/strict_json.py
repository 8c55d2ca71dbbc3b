"""JSON as the gateway accepts it from clients: what Windmill's parser accepts, no more.

Refused, each as a `ValueError` saying why, like any other malformed text: `NaN`, `Infinity`
and numbers beyond a float's range (they have no JSON form to store or hand to a job), nesting
deeper than Python's stack, and strings holding `\\u0000` or an unpaired surrogate (PostgreSQL
cannot store either, and the same body must mean the same on both dialects).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from gateway.store.storable import holds_unstorable_text

# Only these escapes decode to what cannot be stored: the decoded value is walked only then.
_UNSTORABLE_ESCAPE: Final = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def loads(text: str | bytes) -> Any:
    """The value of the JSON `text`; ValueError when it is not JSON a job could receive."""
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if _UNSTORABLE_ESCAPE.search(text) and holds_unstorable_text(value):
        raise ValueError("a string holds \\u0000 or an unpaired surrogate, which cannot be stored")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is beyond the range of a JSON number")
    return number


# One decoder for every call: `json.loads` with hooks would build a new one each time.
_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
