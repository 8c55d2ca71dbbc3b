"""Webhook signatures of the big providers, checked against the route's `signature` resource
`{"signature_provider", "secret_key", "authentication_config"?}`.

Presets (HMAC-SHA256 in hex unless said):

* `Github`: `X-Hub-Signature-256: sha256=<hex>` of the body;
* `Shopify`: `X-Shopify-Hmac-Sha256: <base64>` of the body;
* `Slack`, `Zoom`: `X-Slack-Signature` / `x-zm-signature: v0=<hex>` of `v0:<ts>:<body>`, with
  the timestamp in `X-Slack-Request-Timestamp` / `x-zm-request-timestamp`;
* `Stripe`, `TikTok`: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]` /
  `TikTok-Signature: t=<ts>,s=<hex>` of `<ts>.<body>`;
* `Twitch`: `Twitch-Eventsub-Message-Signature: sha256=<hex>` of message id + timestamp + body;
* `Twilio`: `X-Twilio-Signature: <base64>` of the HMAC-SHA1 of the full URL followed by the
  form fields sorted, `<name><value>` each (another body is covered by the URL's `bodySHA256`);
* `StandardWebhooks`, `Svix`: `webhook-signature` (or `svix-signature`): `v1,<base64> ...` of
  `<id>.<ts>.<body>`, keyed with the base64 after `whsec_`;
* `Custom`: `authentication_config` names the header (`signature_header_name`), the
  `algorithm` (sha1, sha256, sha512), the `encoding` (hex, base64, base64uri) and an optional
  `signature_prefix`.

Where the provider signs a timestamp (Slack, Zoom, Stripe, TikTok, Twitch, Standard Webhooks),
one outside `tolerance_s` of now is refused, and so is a signature seen before while its
timestamp is still within the tolerance. The seen signatures are kept in this process: with
several instances, a replay sent to another instance is not detected.

Zoom's `endpoint.url_validation` and Twitch's `webhook_callback_verification` are answered
with their challenge, after the signature is verified: answering an unsigned Zoom challenge would
compute the HMAC of any text for anyone.

A missing or malformed header is a 400, a wrong, stale or replayed signature a 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qs, parse_qsl, urlsplit

from gateway.http_routes.routes.auth import resource_text, same_secret
from gateway.http_routes.routes.cache import ExpiringCache
from gateway.http_routes.routes.errors import RequestRefused, RouteMisconfigured

_UNIX_TIME: Final = re.compile(r"[0-9]{1,20}(\.[0-9]{1,9})?")
_RFC3339_FRACTION: Final = re.compile(r"\.(\d{6})\d+")
_DIGESTS: Final = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
_STANDARD_SECRET_PREFIX: Final = "whsec_"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a signature covers: headers (case-insensitive), the raw body, the URL requested."""

    headers: Mapping[str, str]
    body: bytes
    url: str
    media_type: str


@dataclass(frozen=True, slots=True)
class Signed:
    """A valid signature; `timestamp` (Unix seconds) when the provider signs one, with the
    signature that identifies the request for replay detection."""

    signature: str = ""
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class Challenge:
    """The answer a provider expects to its endpoint-verification request."""

    body: bytes
    media_type: str


Provider = Callable[[str, Mapping[str, Any], SignedRequest], Signed]


class SignatureAuth:
    """Checks `signature` routes, refusing stale timestamps and replays."""

    def __init__(
        self,
        tolerance_s: float = 300.0,
        *,
        max_seen: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tolerance_s = tolerance_s
        self._clock = clock
        self._seen: ExpiringCache[tuple[str, str], bool] = ExpiringCache(
            2 * tolerance_s, max_seen, clock
        )

    def verify(
        self, route_key: str, resource: Mapping[str, Any], request: SignedRequest
    ) -> Challenge | None:
        """Refuse the request unless validly signed; the challenge to answer, if it is one."""
        name = resource_text(resource, "signature_provider")
        preset = PROVIDERS.get(re.sub(r"[^a-z]", "", name.lower()))
        if preset is None:
            raise RouteMisconfigured(f"unknown signature provider {name!r}")
        secret = resource_text(resource, "secret_key")
        config = resource.get("authentication_config") or {}
        if not isinstance(config, Mapping):
            raise RouteMisconfigured("authentication_config must be an object")
        signed = preset.verify(secret, config, request)
        if signed.timestamp is not None:
            self._check_fresh(route_key, signed.signature, signed.timestamp)
        return preset.challenge(secret, request) if preset.challenge is not None else None

    def _check_fresh(self, route_key: str, signature: str, timestamp: float) -> None:
        now = self._clock()
        if abs(now - timestamp) > self._tolerance_s:
            raise RequestRefused(
                401, f"the signed timestamp is more than {self._tolerance_s:g} s from now"
            )
        key = (route_key, signature)
        if self._seen.get(key):
            raise RequestRefused(401, "this signature was used already (replay)")
        # Kept until the timestamp leaves the tolerance window, after which it is refused anyway.
        self._seen.put(key, True, ttl_s=timestamp + self._tolerance_s - now + 1)


def _header(request: SignedRequest, name: str) -> str:
    value = request.headers.get(name)
    if not value:
        raise RequestRefused(400, f"missing header {name}")
    return value


def _mac(secret: bytes, content: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret, content, _DIGESTS[algorithm]).digest()


def _hex(secret: str, content: bytes) -> str:
    return _mac(secret.encode(), content).hex()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _require(given: str, expected: str) -> None:
    if not same_secret(given.strip(), expected):
        raise RequestRefused(401, "signature invalid")


def _unix_time(text: str, header: str) -> float:
    if not _UNIX_TIME.fullmatch(text.strip()):
        raise RequestRefused(400, f"invalid timestamp in {header}")
    value = float(text)
    # Some providers send milliseconds.
    return value / 1000 if value > 1e11 else value


def _rfc3339_time(text: str, header: str) -> float:
    try:
        return datetime.fromisoformat(_RFC3339_FRACTION.sub(r".\1", text.strip())).timestamp()
    except ValueError:
        raise RequestRefused(400, f"invalid timestamp in {header}") from None


def _pairs(header_value: str, header: str) -> list[tuple[str, str]]:
    pairs = [item.strip().partition("=") for item in header_value.split(",")]
    if not all(equals for _, equals, _ in pairs):
        raise RequestRefused(400, f"malformed {header} header")
    return [(key, value) for key, _, value in pairs]


def github(secret: str, config: Mapping[str, Any], request: SignedRequest) -> Signed:
    """GitHub: `sha256=<hex>` of the body."""
    _require(_header(request, "X-Hub-Signature-256"), "sha256=" + _hex(secret, request.body))
    return Signed()


def shopify(secret: str, config: Mapping[str, Any], request: SignedRequest) -> Signed:
    """Shopify: base64 of the body's HMAC-SHA256."""
    expected = _b64(_mac(secret.encode(), request.body))
    _require(_header(request, "X-Shopify-Hmac-Sha256"), expected)
    return Signed()


def _versioned(timestamp_header: str, signature_header: str) -> Provider:
    """Slack and Zoom: `v0=<hex>` of `v0:<timestamp>:<body>`."""

    def verify(secret: str, config: Mapping[str, Any], request: SignedRequest) -> Signed:
        stamp = _header(request, timestamp_header)
        when = _unix_time(stamp, timestamp_header)
        given = _header(request, signature_header)
        expected = "v0=" + _hex(secret, f"v0:{stamp}:".encode() + request.body)
        _require(given, expected)
        return Signed(expected, when)

    return verify


def _timestamped_pairs(header: str, signature_key: str) -> Provider:
    """Stripe and TikTok: `t=<ts>,<key>=<hex>` of `<ts>.<body>`; any listed signature may match."""

    def verify(secret: str, config: Mapping[str, Any], request: SignedRequest) -> Signed:
        pairs = _pairs(_header(request, header), header)
        stamps = [value for key, value in pairs if key == "t"]
        given = [value for key, value in pairs if key == signature_key]
        if not stamps or not given:
            raise RequestRefused(400, f"malformed {header} header")
        when = _unix_time(stamps[0], header)
        expected = _hex(secret, f"{stamps[0]}.".encode() + request.body)
        # Every candidate is compared, so the time taken does not tell which one matched.
        if sum(same_secret(candidate, expected) for candidate in given) == 0:
            raise RequestRefused(401, "signature invalid")
        return Signed(expected, when)

    return verify


def twitch(secret: str, config: Mapping[str, Any], request: SignedRequest) -> Signed:
    """Twitch EventSub: `sha256=<hex>` of message id + timestamp + body."""
    message_id = _header(request, "Twitch-Eventsub-Message-Id")
    stamp = _header(request, "Twitch-Eventsub-Message-Timestamp")
    when = _rfc3339_time(stamp, "Twitch-Eventsub-Message-Timestamp")
    given = _header(request, "Twitch-Eventsub-Message-Signature")
    expected = "sha256=" + _hex(secret, f"{message_id}{stamp}".encode() + request.body)
    _require(given, expected)
    return Signed(expected, when)


def twilio(secret: str, config: Mapping[str, Any], request: SignedRequest) -> Signed:
    """Twilio: base64 HMAC-SHA1 of the URL followed by the sorted form fields; a body of another
    type is covered by the URL's `bodySHA256` parameter."""
    given = _header(request, "X-Twilio-Signature")
    content = request.url
    if request.media_type == "application/x-www-form-urlencoded":
        text = request.body.decode("utf-8", "replace")
        fields = sorted(parse_qsl(text, keep_blank_values=True))
        content += "".join(key + value for key, value in fields)
    elif request.body:
        declared = parse_qs(urlsplit(request.url).query).get("bodySHA256", [""])[-1]
        if not same_secret(declared, hashlib.sha256(request.body).hexdigest()):
            raise RequestRefused(401, "the body does not match the signed bodySHA256")
    _require(given, _b64(_mac(secret.encode(), content.encode(), "sha1")))
    return Signed()


def standard_webhooks(secret: str, config: Mapping[str, Any], request: SignedRequest) -> Signed:
    """Standard Webhooks (and Svix): `v1,<base64>` of `<id>.<timestamp>.<body>`."""
    family = "webhook" if "webhook-id" in request.headers else "svix"
    message_id = _header(request, f"{family}-id")
    stamp = _header(request, f"{family}-timestamp")
    when = _unix_time(stamp, f"{family}-timestamp")
    given = _header(request, f"{family}-signature").split()
    try:
        key = base64.b64decode(secret.removeprefix(_STANDARD_SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise RouteMisconfigured("the secret_key is not whsec_<base64>") from None
    expected = "v1," + _b64(_mac(key, f"{message_id}.{stamp}.".encode() + request.body))
    if sum(same_secret(candidate, expected) for candidate in given) == 0:
        raise RequestRefused(401, "signature invalid")
    return Signed(expected, when)


def custom(secret: str, config: Mapping[str, Any], request: SignedRequest) -> Signed:
    """A configured HMAC of the body: header name, algorithm, encoding and prefix."""
    header = config.get("signature_header_name")
    algorithm = config.get("algorithm", "sha256")
    encoding = config.get("encoding", "hex")
    prefix = config.get("signature_prefix") or ""
    if not isinstance(header, str) or not header:
        raise RouteMisconfigured("authentication_config needs a signature_header_name")
    if algorithm not in _DIGESTS:
        raise RouteMisconfigured("authentication_config.algorithm must be sha1, sha256 or sha512")
    if not isinstance(prefix, str):
        raise RouteMisconfigured("authentication_config.signature_prefix must be a string")
    digest = _mac(secret.encode(), request.body, algorithm)
    if encoding == "hex":
        expected = digest.hex()
    elif encoding == "base64":
        expected = _b64(digest)
    elif encoding == "base64uri":
        expected = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    else:
        raise RouteMisconfigured("authentication_config.encoding must be hex, base64 or base64uri")
    given = _header(request, header).strip()
    if encoding == "base64uri":
        given = given.rstrip("=")
    _require(given, prefix + expected)
    return Signed()


def zoom_challenge(secret: str, request: SignedRequest) -> Challenge | None:
    """Zoom's `endpoint.url_validation`: the plain token and its HMAC, as JSON."""
    event = _json_object(request.body)
    if event.get("event") != "endpoint.url_validation":
        return None
    payload = event.get("payload")
    plain = str(payload.get("plainToken", "")) if isinstance(payload, dict) else ""
    answer = {"plainToken": plain, "encryptedToken": _hex(secret, plain.encode())}
    return Challenge(json.dumps(answer).encode(), "application/json")


def twitch_challenge(secret: str, request: SignedRequest) -> Challenge | None:
    """Twitch's `webhook_callback_verification`: the challenge, as plain text."""
    kind = request.headers.get("Twitch-Eventsub-Message-Type")
    if kind != "webhook_callback_verification":
        return None
    return Challenge(str(_json_object(request.body).get("challenge", "")).encode(), "text/plain")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Preset:
    """How one provider signs, and how it verifies an endpoint, if it does."""

    verify: Provider
    challenge: Callable[[str, SignedRequest], Challenge | None] | None = None


PROVIDERS: Final[Mapping[str, Preset]] = {
    "github": Preset(github),
    "shopify": Preset(shopify),
    "slack": Preset(_versioned("X-Slack-Request-Timestamp", "X-Slack-Signature")),
    "zoom": Preset(_versioned("x-zm-request-timestamp", "x-zm-signature"), zoom_challenge),
    "stripe": Preset(_timestamped_pairs("Stripe-Signature", "v1")),
    "tiktok": Preset(_timestamped_pairs("TikTok-Signature", "s")),
    "twitch": Preset(twitch, twitch_challenge),
    "twilio": Preset(twilio),
    "standardwebhooks": Preset(standard_webhooks),
    "svix": Preset(standard_webhooks),
    "custom": Preset(custom),
}
"""Presets by lowercase name without separators (`Github`, `standard_webhooks`, ...)."""
