"""Text PostgreSQL cannot store: a NUL character (in `text` and `jsonb`) or an unpaired surrogate
(not UTF-8 at all). SQLite would keep both, so the gateway refuses or quarantines such values on
both dialects alike, before they reach a query.
"""

from __future__ import annotations

import re
from typing import Any, Final

_UNSTORABLE_CHAR: Final = re.compile("[\x00\ud800-\udfff]")


def holds_unstorable_text(value: Any) -> bool:
    """Whether a string in `value` (mapping keys too; lists and tuples walked) cannot be stored."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _UNSTORABLE_CHAR.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False
