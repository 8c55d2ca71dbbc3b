"""JSON log lines (`GATEWAY_LOG_FORMAT=json`), for log pipelines that index fields.

The library never configures logging; the command installs this formatter when asked to.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

_RECORD_ATTRIBUTES: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
"""What every log record carries; anything else was given as `extra` and is a field of its own."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's structured fields
    (`action`, `trigger`, `kind`, `job`, ...) and the exception, if any."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)
