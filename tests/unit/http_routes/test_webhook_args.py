"""The job args of a webhook request, with and without a preprocessor."""

from __future__ import annotations

from gateway.http_routes.routes.body import ParsedBody
from gateway.http_routes.routes.http_args import WebhookRequestInfo, build_webhook_args
from gateway.http_routes.routes.submit import dedup_key
from gateway.listeners.lease import TriggerRef
from gateway.triggers.args import RunnableShape

HEADERS = {"x-request-id": "r-1", "content-type": "application/json"}
QUERY = {"source": "crm", "token": "t"}
V2 = RunnableShape(has_preprocessor=True, preprocessor_params=("event",))
V1 = RunnableShape(has_preprocessor=True, preprocessor_params=("wm_trigger", "a"))


def test_without_a_preprocessor_the_body_gets_the_included_headers_and_query_values() -> None:
    info = WebhookRequestInfo(
        HEADERS, QUERY, include_headers=("X-Request-Id", "x-absent"), include_query=("source",)
    )

    args = build_webhook_args(ParsedBody({"a": 1}, raw_string='{"a":1}'), info, RunnableShape())

    assert args == {"a": 1, "raw_string": '{"a":1}', "x_request_id": "r-1", "source": "crm"}


def test_wrap_body_puts_the_body_under_body() -> None:
    info = WebhookRequestInfo(HEADERS, QUERY, wrap_body=True)

    assert build_webhook_args(ParsedBody({"a": 1}), info, RunnableShape()) == {"body": {"a": 1}}


def test_a_preprocessor_gets_the_webhook_event_with_every_header_and_query_value() -> None:
    info = WebhookRequestInfo(HEADERS, QUERY, include_headers=("x-request-id",), wrap_body=True)

    args = build_webhook_args(ParsedBody({"a": 1}), info, V2)

    assert args == {
        "event": {
            "kind": "webhook",
            "body": {"a": 1},
            "raw_string": None,
            "headers": HEADERS,
            "query": QUERY,
        }
    }


def test_a_legacy_preprocessor_gets_the_args_and_wm_trigger() -> None:
    args = build_webhook_args(ParsedBody({"a": 1}), WebhookRequestInfo(HEADERS, QUERY), V1)

    assert args == {"a": 1, "wm_trigger": {"kind": "webhook"}}


def test_the_dedup_key_of_an_idempotency_key_names_the_webhook_and_its_path() -> None:
    trigger = TriggerRef("webhook", "ws", "f/t/echo")

    assert dedup_key(trigger, "delivery-1") == "webhook:f/t/echo:delivery-1"
    assert dedup_key(trigger, None) is None
