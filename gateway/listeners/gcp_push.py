"""The GCP Pub/Sub push endpoint: `POST /api/gcp/w/{workspace}/{trigger path}`.

Served by every instance, without a lease. A push goes through, in this order:

1. the trigger (404 when there is none, 400 when it pulls, 503 while it is disabled, so that
   Pub/Sub keeps the message and retries);
2. the body, read under the size limit (413);
3. with `delivery_config.authenticate`, the OIDC token (`gcp_oidc`; 401): audience
   `delivery_config.audience`, else the URL the push was sent to, and the resource's
   `client_email`;
4. the message: the wrapped envelope ``{"message": {...}, "subscription"}``, else an unwrapped
   delivery (the body is the data, the metadata comes in `x-goog-pubsub-*` headers); 400 for a
   body that is neither;
5. the job, built as a listener's (`prepare_jobs`), deduplicated by message id, committed
   (an event that cannot become a job is quarantined); only then 200, which Pub/Sub takes as
   the ack. A store that fails answers 503, so Pub/Sub delivers the message again.

The trigger info is Windmill's (`message_id`, `subscription`, `ordering_key`, `attributes`,
`publish_time`, `delivery_type` ``"push"``, `headers`), except that the `Authorization` header
is left out of `headers`: a token has no business in job args.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.errors import GatewayError, InvalidInput, NotFound
from gateway.jobs.enqueue import enqueue
from gateway.listeners.gcp_config import (
    PUSH_PREFIX,
    GcpTriggerConfig,
    parse_resource,
    validate_trigger,
)
from gateway.listeners.gcp_oidc import (
    GoogleCertificates,
    InvalidPushToken,
    KeySource,
    verify_push_token,
)
from gateway.listeners.lease import TriggerRef
from gateway.resources import resource_value
from gateway.store import Row, Store, fetch_one
from gateway.store.storable import holds_unstorable_text
from gateway.triggers.event import Event
from gateway.triggers.quarantine import quarantine_event
from gateway.triggers.runnables import RunnableShapes, prepare_jobs

if TYPE_CHECKING:
    from gateway.runtime import Gateway

logger = logging.getLogger(__name__)

PUSH_ROUTE: Final = PUSH_PREFIX + "/{workspace}/{path:path}"
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
"""Pub/Sub messages are at most 10 MB; wrapped in base64 and JSON, they stay under this."""
_HEADER_PREFIX: Final = "x-goog-pubsub-"
_HIDDEN_HEADERS: Final = frozenset({"authorization"})


class PushRefused(GatewayError):
    """The push is answered with `status` and `{"error": reason}`; Pub/Sub will retry it."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _PushedMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: str = ""
    attributes: dict[str, str] | None = None
    message_id: str | None = Field(default=None, alias="messageId")
    message_id_snake: str | None = Field(default=None, alias="message_id")
    publish_time: str | None = Field(default=None, alias="publishTime")
    publish_time_snake: str | None = Field(default=None, alias="publish_time")
    ordering_key: str | None = Field(default=None, alias="orderingKey")


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: _PushedMessage
    subscription: str


def parse_push(body: bytes, headers: Mapping[str, str]) -> Event:
    """The event of one push: a wrapped envelope, or an unwrapped delivery with its headers.

    `headers` are the request's, with lower-case names. `PushRefused` (400) when the body is
    neither, its data is not base64, or its message id cannot be stored.
    """
    envelope = _envelope(body)
    shown = {name: value for name, value in headers.items() if name not in _HIDDEN_HEADERS}
    if envelope is not None:
        message = envelope.message
        try:
            raw = base64.b64decode(message.data, validate=True)
        except (binascii.Error, ValueError):
            raise PushRefused(400, "message.data is not base64") from None
        message_id = message.message_id or message.message_id_snake
        found = {
            "message_id": message_id,
            "subscription": envelope.subscription,
            "ordering_key": message.ordering_key,
            "attributes": message.attributes,
            "publish_time": message.publish_time or message.publish_time_snake,
        }
        payload = message.data
    elif f"{_HEADER_PREFIX}message-id" in headers or _is_json(body):
        raw = body
        message_id = headers.get(f"{_HEADER_PREFIX}message-id")
        found = {
            "message_id": message_id,
            "subscription": headers.get(f"{_HEADER_PREFIX}subscription-name"),
            "ordering_key": headers.get(f"{_HEADER_PREFIX}ordering-key"),
            "publish_time": headers.get(f"{_HEADER_PREFIX}publish-time"),
        }
        payload = base64.b64encode(body).decode("ascii")
    else:
        raise PushRefused(
            400,
            "the body is neither a Pub/Sub push envelope nor an unwrapped message "
            f"(no {_HEADER_PREFIX}message-id header)",
        )
    if holds_unstorable_text(message_id):
        raise PushRefused(400, "the message id holds a NUL character or an unpaired surrogate")
    info: dict[str, Any] = {key: value for key, value in found.items() if value}
    info["delivery_type"] = "push"
    info["headers"] = shown
    return Event(kind="gcp", payload=payload, info=info, dedup_key=message_id or None, raw=raw)


def _envelope(body: bytes) -> _Envelope | None:
    try:
        return _Envelope.model_validate_json(body)
    except ValidationError:
        return None


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


class GcpPushEndpoint:
    """Turns pushes into committed jobs; `handle` is the Starlette endpoint."""

    def __init__(
        self,
        store: Store,
        keys: KeySource,
        *,
        public_base_url: str | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        shapes: RunnableShapes | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._public_base_url = public_base_url
        self._max_body_bytes = max_body_bytes
        self._shapes = shapes if shapes is not None else RunnableShapes()

    async def handle(self, request: Request) -> Response:
        """Answer one push: 200 once its job is committed, else the refusal."""
        trigger = TriggerRef("gcp", request.path_params["workspace"], request.path_params["path"])
        try:
            answer = await self._accept(request, trigger)
        except PushRefused as refused:
            logger.log(
                logging.WARNING if refused.status in (401, 500, 503) else logging.INFO,
                "gcp push to %s refused (%d): %s",
                trigger,
                refused.status,
                refused.reason,
                extra={"action": "push_refused", "trigger": str(trigger), "kind": "gcp"},
            )
            return JSONResponse({"error": refused.reason}, status_code=refused.status)
        return JSONResponse(answer)

    async def _accept(self, request: Request, trigger: TriggerRef) -> dict[str, Any]:
        row = await self._trigger_row(trigger)
        config = _push_config(trigger, row)
        body = await self._body(request)
        delivery = config.delivery_config
        if delivery is not None and delivery.authenticate:
            email = await self._service_account(trigger, config)
            try:
                await verify_push_token(
                    request.headers.get("authorization"),
                    self._keys,
                    audience=delivery.audience or self._url_of(request),
                    email=email,
                )
            except InvalidPushToken as exc:
                raise PushRefused(401, str(exc)) from None
        event = parse_push(body, {name.lower(): value for name, value in request.headers.items()})
        return await self._submit(trigger, row, event)

    async def _trigger_row(self, trigger: TriggerRef) -> Row:
        try:
            row = await fetch_one(
                self._store,
                "get_gcp_trigger",
                workspace_id=trigger.workspace_id,
                path=trigger.path,
            )
        except Exception as exc:
            raise PushRefused(503, f"the gateway's store failed: {_describe(exc)}") from exc
        if row is None:
            raise PushRefused(404, f"no gcp trigger at path {trigger.path!r}")
        return row

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body_bytes:
            raise PushRefused(413, f"the body is over {self._max_body_bytes} bytes")
        body = bytearray()
        try:
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > self._max_body_bytes:
                    raise PushRefused(413, f"the body is over {self._max_body_bytes} bytes")
        except ClientDisconnect:
            raise PushRefused(400, "the push was cut off") from None
        return bytes(body)

    async def _service_account(self, trigger: TriggerRef, config: GcpTriggerConfig) -> str:
        try:
            value = await resource_value(
                self._store, trigger.workspace_id, config.gcp_resource_path
            )
            email = parse_resource(value).client_email
        except (NotFound, InvalidInput) as exc:
            raise PushRefused(500, f"the trigger's gcp resource is unusable: {exc}") from None
        except Exception as exc:
            raise PushRefused(503, f"the gateway's store failed: {_describe(exc)}") from exc
        if not email:
            raise PushRefused(
                500, "the trigger's gcp resource has no client_email to check tokens against"
            )
        return email

    def _url_of(self, request: Request) -> str:
        """The URL Pub/Sub pushed to: the default audience of its tokens."""
        if not self._public_base_url:
            return str(request.url)
        query = f"?{request.url.query}" if request.url.query else ""
        return self._public_base_url.rstrip("/") + request.url.path + query

    async def _submit(self, trigger: TriggerRef, row: Row, event: Event) -> dict[str, Any]:
        try:
            async with self._store.transaction() as tx:
                prepared = await prepare_jobs(tx, trigger, row, [event], self._shapes)
                enqueued = await enqueue(tx, prepared.jobs, known=prepared.scripts)
                for rejected in prepared.rejected:
                    await quarantine_event(tx, trigger, rejected.event, rejected.reason)
        except Exception as exc:
            raise PushRefused(503, f"the gateway's store failed: {_describe(exc)}") from exc
        extra = {"trigger": str(trigger), "kind": "gcp"}
        if prepared.rejected:
            reason = prepared.rejected[0].reason
            logger.warning(
                "gcp push %s to %s quarantined: %s",
                event.dedup_key or "without a message id",
                trigger,
                reason,
                extra={"action": "event_quarantined", **extra},
            )
            return {"quarantined": reason}
        [queued] = enqueued
        logger.debug(
            "gcp push %s to %s: job %s%s",
            event.dedup_key or "without a message id",
            trigger,
            queued.job_id,
            "" if queued.created else " (seen before)",
            extra={"action": "push_submitted", **extra},
        )
        return {"job_id": str(queued.job_id)}


def _push_config(trigger: TriggerRef, row: Row) -> GcpTriggerConfig:
    try:
        config = validate_trigger(row)
    except InvalidInput as exc:
        raise PushRefused(500, f"gcp trigger {trigger} is misconfigured: {exc}") from None
    if config.delivery_type != "push":
        raise PushRefused(400, f"gcp trigger {trigger} pulls its messages; it takes no push")
    if row.get("mode") == "disabled":
        raise PushRefused(503, f"gcp trigger {trigger} is disabled; Pub/Sub retries later")
    return config


def build_routes(
    store: Store,
    keys: KeySource,
    *,
    public_base_url: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> list[BaseRoute]:
    """The push route on `store`, verifying tokens with `keys`."""
    endpoint = GcpPushEndpoint(
        store, keys, public_base_url=public_base_url, max_body_bytes=max_body_bytes
    )
    return [Route(PUSH_ROUTE, endpoint.handle, methods=["POST"], name="gcp_push")]


def routes(gateway: Gateway, keys: KeySource | None = None) -> list[BaseRoute]:
    """The push route of a gateway instance; Google's certificate endpoint unless `keys`."""
    return build_routes(
        gateway.store,
        keys if keys is not None else GoogleCertificates(),
        public_base_url=gateway.settings.public_base_url,
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
