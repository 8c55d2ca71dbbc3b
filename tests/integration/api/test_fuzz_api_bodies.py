"""Fuzzing the API over a real socket: every write endpoint under `/api` (found by walking the
app's routes, so a new one is covered the day it is added) and the user routes under `/api/r`
with each authentication method.

Whatever arrives (random JSON, random bytes, a wrong content type, huge numbers, deep nesting,
text PostgreSQL cannot store, the fields of the real body models with random or wrong types),
the answer is never a 5xx, and every 4xx carries a JSON body saying why.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from starlette.routing import BaseRoute, Mount, Route

from gateway.http_routes import api as api_package
from gateway.http_routes.api.tokens import issue_token
from gateway.http_routes.api.trigger_bodies import BODIES
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES

from ..http.conftest import add_resource, add_route
from ..support import OWNER, WS, add_scripts
from .conftest import HELLO

pytestmark = pytest.mark.integration

# One gateway serves every example of a test: starting one per example would take minutes.
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method of one route template, and the body models to shape its bodies like."""

    method: str
    template: str
    models: tuple[type[BaseModel], ...]


def write_endpoints(routes: list[BaseRoute], prefix: str = "") -> Iterator[Endpoint]:
    """Every write endpoint under `/api`, except the user routes' own mount `/api/r`."""
    for route in routes:
        if isinstance(route, Mount) and route.path != "/api/r":
            yield from write_endpoints(route.routes, prefix + route.path)
        elif isinstance(route, Route) and (prefix + route.path).startswith("/api/"):
            for method in sorted((route.methods or set()) & WRITE_METHODS):
                yield Endpoint(method, prefix + route.path, models_for(prefix + route.path))


def body_models() -> tuple[type[BaseModel], ...]:
    """The pydantic models defined by the API's modules: the bodies they read."""
    return tuple(
        value
        for module in vars(api_package).values()
        if inspect.ismodule(module)
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == module.__name__
    )


ALL_MODELS = body_models() + tuple(BODIES.values())


def models_for(template: str) -> tuple[type[BaseModel], ...]:
    """The body models an endpoint most likely reads: its kind's trigger body, else them all."""
    kind = re.search(r"/(\w+)_triggers/", template)
    if kind is not None and kind.group(1) in BODIES:
        return (BODIES[kind.group(1)],)
    return ALL_MODELS


# Values ------------------------------------------------------------------------------------------

# Lone surrogates and NUL: valid in a Python string and in JSON text, refused by PostgreSQL.
nasty_chars = st.sampled_from(["\x00", "\ud800", "\udfff", "\u202e", "\uffff", "💥", "é"])
# One string in four has nasty characters: often enough to find where they break, rarely enough
# that most bodies get past the checks to the store.
texts = st.one_of(
    *[st.text(max_size=20)] * 3,
    st.lists(st.text(max_size=4) | nasty_chars, max_size=6).map("".join),
)
huge_numbers = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, 1e300, -1e300, 5e-324])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | huge_numbers | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)
NASTY_TEXTS = (
    "1e999", "-1e999", "NaN", "Infinity", '{"a": NaN}', "9" * 5000, "[" * 3000 + "]" * 3000,
    '{"a":' * 3000 + "1" + "}" * 3000, '"\\u0000"', '{"path": "\\ud800"}', "{", "\ufeff{}",
)  # fmt: skip
MALFORMED = (
    b"1e999", b"[" * 3000 + b"]" * 3000, b'{"path": "\\ud800", "value": "\\u0000"}', b"{",
    b"\x00\xff",
)  # fmt: skip
"""One of each kind of malformed body, sent to every write endpoint."""
CONTENT_TYPES = (
    "application/json", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/octet-stream",
    "application/json; charset=latin-1",
)  # fmt: skip


def typed_values(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    """Random values of the JSON schema's type (any JSON value where the schema is open)."""
    if depth > 4:
        return json_values
    if "$ref" in schema:
        return typed_values(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, depth + 1)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    choices = schema.get("anyOf") or schema.get("oneOf")
    if choices:
        return st.one_of([typed_values(choice, defs, depth + 1) for choice in choices])
    kind = schema.get("type")
    if kind == "string":  # paths that pass the checks, so that writes go on to the store
        return texts | st.sampled_from(["u/alice/fuzz", "f/t/hello", "orders/:id", "x"])
    if kind == "integer":
        return st.integers() | huge_numbers.filter(lambda n: isinstance(n, int))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers()
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(typed_values(schema.get("items", {}), defs, depth + 1), max_size=3)
    if kind == "object" and "properties" in schema:
        return model_bodies(schema, defs, depth + 1)
    return json_values


def model_bodies(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    """Objects with the schema's required properties and some others, typed, one of them maybe
    of a wrong type."""
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    values = {name: typed_values(spec, defs, depth) for name, spec in properties.items()}
    typed = st.fixed_dictionaries(
        {name: value for name, value in values.items() if name in required},
        optional={name: value for name, value in values.items() if name not in required},
    )
    if not properties:
        return typed
    wrong = st.tuples(typed, st.sampled_from(sorted(properties)), json_values).map(
        lambda drawn: {**drawn[0], drawn[1]: drawn[2]}
    )
    return typed | wrong


def bodies_of(model: type[BaseModel]) -> Any:
    """Bodies shaped like `model` (by alias, as clients send them)."""
    schema = model.model_json_schema(by_alias=True)
    return model_bodies(schema, schema.get("$defs", {}))


def encoded(value: Any) -> bytes:
    """JSON as a client would send it; lone surrogates travel as their escapes."""
    return json.dumps(value).encode()


@st.composite
def requests(draw: st.DrawFn, endpoints: list[Endpoint]) -> tuple[str, str, bytes, str]:
    """(method, URL path, body, content type) for one of `endpoints`."""
    endpoint = draw(st.sampled_from(endpoints))
    path = PARAM.sub(lambda match: draw(path_values(*match.groups())), endpoint.template)
    body = draw(
        st.sampled_from(endpoint.models).flatmap(bodies_of).map(encoded)
        | json_values.map(encoded)
        | st.sampled_from(NASTY_TEXTS).map(lambda text: text.encode("utf-8", "surrogatepass"))
        | st.binary(max_size=100)
    )
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    return endpoint.method, path + draw(queries), body, content_type


QUERY_NAMES = (
    "page", "per_page", "raw", "wrap_body", "include_header", "include_query", "payload",
    "skip_preprocessor", "scheduled_in_secs", "scheduled_for", "retry", "path", "trigger_kind",
)  # fmt: skip
utf8_texts = st.text(st.characters(codec="utf-8"), max_size=20)
queries = st.dictionaries(st.sampled_from(QUERY_NAMES) | utf8_texts, utf8_texts, max_size=3).map(
    lambda query: f"?{urlencode(query)}" if query else ""
)


def path_values(name: str, converter: str | None) -> Any:
    """Values for a path parameter: the ones that reach the handler, and random ones."""
    if name == "workspace":
        return st.just(WS)
    if converter == "int":
        return st.integers(0, 2**40).map(str)
    known = {
        "path": ["u/alice/fuzz", "f/t/hello", "u/alice/\x00"],
        "id": ["00000000-0000-0000-0000-000000000000"],
        "trigger_kind": [*BODIES, "nope"],
        "runnable_kind": ["script", "flow"],
    }.get(name, [])
    # Control characters left out: Starlette matches no route across an encoded newline, and
    # the app's own 404 for a URL outside every mount is not the API's.
    random_text = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
    return (st.sampled_from(known) | random_text if known else random_text).map(
        lambda value: quote(value, safe="/")
    )


def assert_explained(response: httpx.Response) -> None:
    """Not a 5xx; a 4xx says why in JSON (`{"error": reason}` or `{"error": {"reason"}}`)."""
    request = response.request
    where = f"{request.method} {request.url.path} {request.content[:200]!r}"
    assert response.status_code < 500, f"{where} -> {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers.get("content-type") == "application/json", f"{where} -> {response}"
        error = response.json()["error"]
        reason = error.get("reason") if isinstance(error, dict) else error
        assert isinstance(reason, str) and reason, f"{where} -> {response.text[:300]}"


# The management API ----------------------------------------------------------------------------


@dataclass
class Fuzzed:
    """A running gateway, a client with alice's token, and its write endpoints."""

    gateway: Gateway
    client: httpx.AsyncClient
    endpoints: list[Endpoint]

    def __repr__(self) -> str:  # shown with every failing example: short
        return f"<gateway on {self.client.base_url}>"


@pytest.fixture
async def fuzzed(settings: Settings) -> AsyncIterator[Fuzzed]:
    """A gateway serving on a loopback port, with its executor, seeded as the API tests are."""
    async with Gateway.running(settings.model_copy(update={"http_port": 0})) as gateway:
        await add_scripts(gateway.store, hello=HELLO)
        async with gateway.store.transaction() as tx:
            token = await issue_token(tx, OWNER, WS, label="fuzz")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{gateway.http_port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
        ) as client:
            endpoints = list(write_endpoints(gateway.app.routes))
            assert len(endpoints) > 50, "walking the app finds every write endpoint"
            yield Fuzzed(gateway, client, endpoints)


async def send(client: httpx.AsyncClient, method: str, path: str, body: bytes, kind: str) -> None:
    """Send one request; its answer must be explained."""
    response = await client.request(method, path, content=body, headers={"content-type": kind})
    assert_explained(response)


@FUZZ
@given(data=st.data())
async def test_random_bodies_to_any_write_endpoint_get_a_4xx_at_worst(
    fuzzed: Fuzzed, data: st.DataObject
) -> None:
    method, path, body, kind = data.draw(requests(fuzzed.endpoints))

    await send(fuzzed.client, method, path, body, kind)


async def test_every_write_endpoint_refuses_malformed_bodies_with_a_reason(fuzzed: Fuzzed) -> None:
    for endpoint in fuzzed.endpoints:
        path = PARAM.sub(lambda match: known_value(*match.groups()), endpoint.template)
        for body in MALFORMED:
            await send(fuzzed.client, endpoint.method, path, body, "application/json")


def known_value(name: str, converter: str | None) -> str:
    """A plausible value of a path parameter, so that the handler reads the body."""
    if name == "workspace":
        return WS
    if converter == "int":
        return "1"
    return {"path": "u/alice/fuzz", "id": "00000000-0000-0000-0000-000000000000"}.get(
        name, "kafka" if name == "trigger_kind" else "script"
    )


# User routes under /api/r --------------------------------------------------------------------

SIGNATURE_PROVIDERS = (
    "Github", "Shopify", "Slack", "Zoom", "Stripe", "TikTok", "Twitch", "Twilio",
    "StandardWebhooks", "Svix", "Custom",
)  # fmt: skip
AUTH_RESOURCES: dict[str, dict[str, Any] | None] = {
    "none": None,
    "windmill": None,
    "custom_script": None,
    "api_key": {"api_key_header": "x-api-key", "api_key_secret": "sesame"},
    "basic_http": {"username": "ann", "password": "sesame"},
}
SIGNED_HEADERS = (
    "X-Hub-Signature-256", "X-Shopify-Hmac-Sha256", "X-Slack-Signature",
    "X-Slack-Request-Timestamp", "x-zm-signature", "x-zm-request-timestamp", "Stripe-Signature",
    "TikTok-Signature", "Twitch-Eventsub-Message-Id", "Twitch-Eventsub-Message-Timestamp",
    "Twitch-Eventsub-Message-Signature", "Twitch-Eventsub-Message-Type", "X-Twilio-Signature",
    "webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp",
    "svix-signature", "x-signature", "authorization", "x-api-key", "idempotency-key", "cookie",
)  # fmt: skip

header_texts = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
    str.strip
)
header_values = (
    header_texts
    | st.integers(-(2**70), 2**70).map(str)
    | st.builds("t={},v1={},s={}".format, st.integers(0, 2**40), header_texts, header_texts)
    | st.builds("v1,{} v0={}".format, header_texts, header_texts)
    | st.sampled_from(["Basic YW5uOnNlc2FtZQ==", "Basic !!!", "Basic " + "A" * 9, "Bearer x"])
    # Any byte but the control characters HTTP/1.1 forbids in a header value.
    | st.binary(max_size=20).map(lambda raw: re.sub(rb"[\x00-\x1f\x7f]", b"", raw))
).map(lambda value: value.strip())  # fmt: skip
route_bodies = (
    st.binary(max_size=100)
    | json_values.map(encoded)
    | st.sampled_from(NASTY_TEXTS).map(lambda text: text.encode("utf-8", "surrogatepass"))
    | st.dictionaries(texts, texts, max_size=3).map(
        lambda fields: "&".join(
            f"{quote(k, errors='surrogatepass')}={quote(v, safe='', errors='surrogatepass')}"
            for k, v in fields.items()
        ).encode()
    )
)  # fmt: skip


def route_resource(name: str) -> dict[str, Any] | None:
    """The authentication resource of the route `name` (None when its method needs none)."""
    if name in AUTH_RESOURCES:
        return AUTH_RESOURCES[name]
    provider = name.removeprefix("signature-")
    value: dict[str, Any] = {"signature_provider": provider, "secret_key": "whsec_c2VzYW1l"}
    if provider == "Custom":
        value["authentication_config"] = {
            "signature_header_name": "x-signature", "algorithm": "sha256", "encoding": "hex",
        }  # fmt: skip
    return value


@pytest.fixture
async def user_routes(fuzzed: Fuzzed) -> list[str]:
    """One async POST route per authentication method (and signature provider); their URLs."""
    store = fuzzed.gateway.store
    names = [*AUTH_RESOURCES, *(f"signature-{p}" for p in SIGNATURE_PROVIDERS)]
    for name in names:
        resource = route_resource(name)
        await add_route(
            store,
            f"fuzz/{name.lower()}",
            script="hello",
            request_type="async",
            authentication_method=name.partition("-")[0],
            authentication_resource_path=None if resource is None else await add_resource(
                store, resource
            ),
        )  # fmt: skip
    urls = [f"/api/r/fuzz/{name.lower()}" for name in names]
    for url in urls:  # the route table learns of new routes through a notification
        for _ in range(100):
            if (await fuzzed.client.post(url)).status_code != 404:
                break
            await asyncio.sleep(0.05)
    return urls


@FUZZ
@given(data=st.data())
async def test_random_requests_to_user_routes_get_a_4xx_at_worst(
    fuzzed: Fuzzed, user_routes: list[str], data: st.DataObject
) -> None:
    url = data.draw(st.sampled_from(user_routes))
    suffix = data.draw(st.sampled_from(["", "/x", "?a=1&a=2&b=%00"]))
    headers = data.draw(st.dictionaries(st.sampled_from(SIGNED_HEADERS), header_values, max_size=5))
    headers["content-type"] = data.draw(st.sampled_from(CONTENT_TYPES) | header_texts)
    encoded_headers = {
        name.encode(): value if isinstance(value, bytes) else value.encode()
        for name, value in {"authorization": "", **headers}.items()
    }
    response = await fuzzed.client.request(
        data.draw(st.sampled_from(["POST", "GET", "PUT", "DELETE"])),
        url + suffix,
        content=data.draw(route_bodies),
        params=data.draw(st.dictionaries(header_texts, utf8_texts, max_size=3)),
        headers=encoded_headers,
    )

    assert_explained(response)


# The GCP push endpoint --------------------------------------------------------------------------

PUSH_FIELDS = (
    "data", "attributes", "messageId", "message_id", "publishTime", "publish_time", "orderingKey",
)  # fmt: skip
push_messages = st.dictionaries(
    st.sampled_from(PUSH_FIELDS) | texts,
    json_values | st.binary(max_size=24).map(lambda raw: base64.b64encode(raw).decode()),
    max_size=6,
)
push_bodies = (
    st.fixed_dictionaries({"message": push_messages}, optional={"subscription": json_values}).map(
        encoded
    )
    | json_values.map(encoded)
    | st.sampled_from(NASTY_TEXTS).map(lambda text: text.encode("utf-8", "surrogatepass"))
    | st.binary(max_size=100)
)
push_headers = st.dictionaries(
    st.sampled_from(["x-goog-pubsub-message-id", "x-goog-pubsub-subscription-name",
                     "x-goog-pubsub-ordering-key", "x-goog-pubsub-publish-time"]),
    header_values,
    max_size=3,
)  # fmt: skip


@pytest.fixture
async def push_url(fuzzed: Fuzzed) -> str:
    """The push URL of an unauthenticated push trigger on script `f/t/hello`."""
    path = f"u/alice/push_{uuid.uuid4().hex[:8]}"
    values = {
        **{c: COLUMN_DEFAULTS.get(c) for c in TRIGGER_TABLES["gcp"].writable_columns},
        "path": path,
        "script_path": "f/t/hello",
        "is_flow": False,
        "workspace_id": WS,
        "edited_by": OWNER.username,
        "email": OWNER.email,
        "permissioned_as": OWNER.permissioned_as,
        "gcp_resource_path": "u/alice/gcp",
        "topic_id": "orders",
        "subscription_id": "orders",
        "delivery_type": "push",
        "delivery_config": {"authenticate": False},
        "mode": "enabled",
    }
    values.pop("edited_at")
    async with fuzzed.gateway.store.transaction() as tx:
        await tx.execute("upsert_gcp_trigger", **values)
    return f"/api/gcp/w/{WS}/{path}"


@settings(FUZZ, max_examples=60)  # most become jobs, which the executor then runs
@given(data=st.data())
async def test_random_pushes_become_jobs_or_get_a_4xx(
    fuzzed: Fuzzed, push_url: str, data: st.DataObject
) -> None:
    headers = {
        name.encode(): value if isinstance(value, bytes) else value.encode()
        for name, value in data.draw(push_headers).items()
    }
    response = await fuzzed.client.post(push_url, content=data.draw(push_bodies), headers=headers)

    assert_explained(response)
    if response.status_code == 200:
        assert set(response.json()) <= {"job_id", "quarantined"}
