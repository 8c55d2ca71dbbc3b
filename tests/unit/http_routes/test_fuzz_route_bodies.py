"""Fuzzing route and webhook bodies: any body under any content type gives JSON job args or a
specific 4xx (`RequestRefused`), never another error."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.http_routes.routes.body import parse_body
from gateway.http_routes.routes.errors import RequestRefused
from gateway.http_routes.routes.http_args import (
    HttpRequestInfo,
    WebhookRequestInfo,
    build_http_args,
    build_webhook_args,
)
from gateway.triggers.args import RunnableShape

SHAPES = (
    RunnableShape(),
    RunnableShape(has_preprocessor=True),
    RunnableShape(has_preprocessor=True, preprocessor_params=("wm_trigger",)),
)
CONTENT_TYPES = (
    "application/json", "application/json; charset=utf-8", "application/cloudevents+json",
    "application/cloudevents-batch+json", "text/plain", "application/xml", "text/xml",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=b", "multipart/form-data",
    'multipart/form-data; boundary="\u00e9"', "application/octet-stream", "",
)  # fmt: skip

texts = st.text(max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
nasty_json = st.sampled_from(
    ["1e999", "-1e999", '{"a": 1e400}', "NaN", '{"a": Infinity}', "12" * 3000, '"\\ud800"',
     '{"a": "\\u0000"}', '["\\udc00"]', "a=%00&b=1", "{",
     '{"data": 1}', '{"data": {"x": 1}, "id": 2}', "[]", "{}"]
) | st.integers(1, 3000).map(lambda n: "[" * n + "]" * n)  # fmt: skip
multipart_bodies = st.lists(
    st.tuples(texts, st.none() | texts, texts), max_size=3
).map(
    lambda fields: "".join(
        f'--b\r\nContent-Disposition: form-data; name="{name}"'
        + (f'; filename="{file}"' if file is not None else "")
        + f"\r\n\r\n{value}\r\n"
        for name, file, value in fields
    )
    + "--b--\r\n"
)  # fmt: skip
bodies = (
    st.binary(max_size=200)
    | st.sampled_from([b"a\x00b", b"--b\x00\r\n--b--\r\n"])
    | json_values.map(lambda value: json.dumps(value).encode())
    | nasty_json.map(str.encode)
    | multipart_bodies.map(str.encode)
    | st.dictionaries(texts, texts, max_size=4).map(
        lambda fields: "&".join(f"{k}={v}" for k, v in fields.items()).encode()
    )
)
# HTTP/1.1 allows no control character in a header, and the app refuses a URL with a NUL
# (`url_guard`) before a route sees its query.
header_texts = st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=30)
headers = st.dictionaries(header_texts.map(str.lower), header_texts, max_size=4)
query_texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    st.none() | st.sampled_from(CONTENT_TYPES) | texts,
    bodies,
    st.booleans(),
    headers,
    st.dictionaries(query_texts, query_texts, max_size=3),
)
def test_any_body_gives_json_args_or_a_4xx(
    content_type: str | None,
    body: bytes,
    keep_raw: bool,
    request_headers: dict[str, str],
    query: dict[str, str],
) -> None:
    try:
        parsed = parse_body(content_type, body, keep_raw=keep_raw)
    except RequestRefused as refused:
        assert 400 <= refused.status < 500
        assert refused.reason
        return
    http = HttpRequestInfo("orders/:id", "orders/7", "post", {"id": "7"}, query, request_headers)
    webhook = WebhookRequestInfo(
        request_headers, query, tuple(request_headers), tuple(query), wrap_body=keep_raw
    )
    for shape in SHAPES:
        assert_storable(build_http_args(parsed, http, shape, wrap_body=keep_raw))
        assert_storable(build_webhook_args(parsed, webhook, shape))


def assert_storable(args: dict[str, Any]) -> None:
    """JSON that both dialects store: finite numbers, no NUL, no unpaired surrogate."""
    json.dumps(args, allow_nan=False)
    pending: list[Any] = [args]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            assert "\x00" not in value
            value.encode("utf-8")  # refuses an unpaired surrogate
        elif isinstance(value, dict):
            pending.extend([*value, *value.values()])
        elif isinstance(value, list):
            pending.extend(value)
