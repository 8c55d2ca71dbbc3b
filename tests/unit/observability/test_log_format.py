"""JSON log lines carry the record's structured fields, never as a formatted blob."""

from __future__ import annotations

import json
import logging
import sys

from gateway.observability.log_format import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    made = logging.getLogger("gateway.listeners.supervisor").makeRecord(
        "gateway.listeners.supervisor",
        logging.INFO,
        __file__,
        1,
        "%s trigger %s connected",
        ("kafka", "ws/u/alice/orders"),
        None,
        extra=extra,
    )
    made.created = 1714564800.25
    return made


def test_a_line_is_one_json_object_with_the_extra_fields() -> None:
    line = JsonFormatter().format(
        record(action="listener_connected", trigger="ws/u/alice/orders", kind="kafka")
    )
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2024-05-01T12:00:00.250+00:00",
        "level": "INFO",
        "logger": "gateway.listeners.supervisor",
        "message": "kafka trigger ws/u/alice/orders connected",
        "action": "listener_connected",
        "trigger": "ws/u/alice/orders",
        "kind": "kafka",
    }


def test_an_exception_is_kept_as_text() -> None:
    try:
        raise ValueError("bad frame")
    except ValueError:
        failed = record(action="runner_crashed")
        failed.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(failed))
    assert entry["action"] == "runner_crashed"
    assert entry["exception"].endswith("ValueError: bad frame")
