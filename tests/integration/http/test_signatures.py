"""`signature` routes: each provider's signature computed here from its documented algorithm,
wrong and missing signatures, stale timestamps, replays and the providers' challenges."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.jobs.read import JobFilter, list_jobs

from ..support import WS
from .conftest import Served, add_resource

SECRET = "s3cret-signing-key"
BODY = b'{"event":"ping","n":1}'
STANDARD_KEY = b"standard-webhooks-key-bytes"
STANDARD_SECRET = "whsec_" + base64.b64encode(STANDARD_KEY).decode()

Signer = Callable[[str, bytes, float], dict[str, str]]


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """SQLite only: signatures do not depend on the dialect."""
    return sqlite_database_url


def _hex(secret: str | bytes, content: bytes, digest: Any = hashlib.sha256) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, content, digest).hexdigest()


def _b64(secret: str | bytes, content: bytes, digest: Any = hashlib.sha256) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, content, digest).digest()).decode()


def github(secret: str, body: bytes, now: float) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + _hex(secret, body)}


def shopify(secret: str, body: bytes, now: float) -> dict[str, str]:
    return {"X-Shopify-Hmac-Sha256": _b64(secret, body)}


def slack(secret: str, body: bytes, now: float) -> dict[str, str]:
    stamp = str(int(now))
    signature = "v0=" + _hex(secret, f"v0:{stamp}:".encode() + body)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


def zoom(secret: str, body: bytes, now: float) -> dict[str, str]:
    stamp = str(int(now))
    signature = "v0=" + _hex(secret, f"v0:{stamp}:".encode() + body)
    return {"x-zm-request-timestamp": stamp, "x-zm-signature": signature}


def stripe(secret: str, body: bytes, now: float) -> dict[str, str]:
    stamp = str(int(now))
    signature = _hex(secret, f"{stamp}.".encode() + body)
    # Stripe lists a v0 (test) signature and, while a secret rolls, several v1.
    return {"Stripe-Signature": f"t={stamp},v1={'0' * 64},v1={signature},v0=abc"}


def tiktok(secret: str, body: bytes, now: float) -> dict[str, str]:
    stamp = str(int(now))
    return {"TikTok-Signature": f"t={stamp},s={_hex(secret, f'{stamp}.'.encode() + body)}"}


def twitch(secret: str, body: bytes, now: float) -> dict[str, str]:
    moment = datetime.fromtimestamp(now, UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # Twitch sends nanoseconds
    message_id = "e76c6bd4-55c9-4987-8304-da1588d8988b"
    signature = "sha256=" + _hex(secret, message_id.encode() + stamp.encode() + body)
    return {
        "Twitch-Eventsub-Message-Id": message_id,
        "Twitch-Eventsub-Message-Timestamp": stamp,
        "Twitch-Eventsub-Message-Signature": signature,
        "Twitch-Eventsub-Message-Type": "notification",
    }


def standard_webhooks(prefix: str) -> Signer:
    def sign(secret: str, body: bytes, now: float) -> dict[str, str]:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        message_id, stamp = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", str(int(now))
        signature = _b64(key, f"{message_id}.{stamp}.".encode() + body)
        return {
            f"{prefix}-id": message_id,
            f"{prefix}-timestamp": stamp,
            f"{prefix}-signature": f"v1,{base64.b64encode(b'other').decode()} v1,{signature}",
        }

    return sign


PRESETS: dict[str, tuple[Signer, bool]] = {
    "Github": (github, False),
    "Shopify": (shopify, False),
    "Slack": (slack, True),
    "Zoom": (zoom, True),
    "Stripe": (stripe, True),
    "TikTok": (tiktok, True),
    "Twitch": (twitch, True),
    "StandardWebhooks": (standard_webhooks("webhook"), True),
    "Svix": (standard_webhooks("svix"), True),
}
"""provider -> (signer, whether it signs a timestamp)"""


def _secret(provider: str) -> str:
    return STANDARD_SECRET if provider in ("StandardWebhooks", "Svix") else SECRET


async def _signed_route(
    served: Served, provider: str, secret: str, config: dict[str, Any] | None = None
) -> str:
    value: dict[str, Any] = {"signature_provider": provider, "secret_key": secret}
    if config is not None:
        value["authentication_config"] = config
    resource = await add_resource(served.store, value)
    route = f"hooks/{provider.lower()}"
    await served.add_route(
        route,
        request_type="async",
        authentication_method="signature",
        authentication_resource_path=resource,
    )
    return f"/{route}"


async def _post(served: Served, url: str, headers: dict[str, str], body: bytes = BODY) -> Any:
    return await served.client.post(
        url, content=body, headers={"content-type": "application/json", **headers}
    )


@pytest.mark.parametrize("provider", list(PRESETS))
async def test_a_valid_signature_is_accepted_and_a_wrong_one_refused(
    served: Served, provider: str
) -> None:
    sign, _ = PRESETS[provider]
    url = await _signed_route(served, provider, _secret(provider))

    accepted = await _post(served, url, sign(_secret(provider), BODY, time.time()))
    wrong = await _post(served, url, sign(_secret(provider), BODY + b" ", time.time()))
    other_key = "whsec_" + base64.b64encode(b"another key").decode()
    forged = await _post(served, url, sign(other_key, BODY, time.time() + 1))

    assert accepted.status_code == 201, accepted.text
    for refused in (wrong, forged):
        assert refused.status_code == 401
        assert refused.json() == {"error": "signature invalid"}
        assert _secret(provider) not in refused.text


@pytest.mark.parametrize("provider", [name for name, (_, stamped) in PRESETS.items() if stamped])
async def test_a_stale_timestamp_is_refused(served: Served, provider: str) -> None:
    sign, _ = PRESETS[provider]
    url = await _signed_route(served, provider, _secret(provider))

    response = await _post(served, url, sign(_secret(provider), BODY, time.time() - 1000))

    assert response.status_code == 401
    assert response.json() == {"error": "the signed timestamp is more than 300 s from now"}


@pytest.mark.parametrize("provider", [name for name, (_, stamped) in PRESETS.items() if stamped])
async def test_a_replayed_signature_is_refused(served: Served, provider: str) -> None:
    sign, _ = PRESETS[provider]
    url = await _signed_route(served, provider, _secret(provider))
    headers = sign(_secret(provider), BODY, time.time())

    first = await _post(served, url, headers)
    replayed = await _post(served, url, headers)

    assert first.status_code == 201
    assert replayed.status_code == 401
    assert replayed.json() == {"error": "this signature was used already (replay)"}


async def test_a_missing_signature_header_is_400(served: Served) -> None:
    url = await _signed_route(served, "Github", SECRET)

    response = await _post(served, url, {})

    assert response.status_code == 400
    assert response.json() == {"error": "missing header X-Hub-Signature-256"}


async def test_a_malformed_timestamp_is_400(served: Served) -> None:
    url = await _signed_route(served, "Slack", SECRET)
    headers = {**slack(SECRET, BODY, time.time()), "X-Slack-Request-Timestamp": "yesterday"}

    response = await _post(served, url, headers)

    assert response.status_code == 400


async def test_twilio_signs_the_url_and_the_sorted_form_fields(served: Served) -> None:
    path = await _signed_route(served, "Twilio", SECRET)
    url = f"{served.base_url}/api/r{path}?From=app"
    fields = {"To": "+15550001", "Body": "hi there", "AccountSid": "AC1"}
    content = url + "".join(key + fields[key] for key in sorted(fields))
    signature = _b64(SECRET, content.encode(), hashlib.sha1)

    accepted = await served.client.post(
        f"{path}?From=app", data=fields, headers={"X-Twilio-Signature": signature}
    )
    tampered = await served.client.post(
        f"{path}?From=app",
        data={**fields, "Body": "bye"},
        headers={"X-Twilio-Signature": signature},
    )

    assert accepted.status_code == 201
    assert tampered.status_code == 401


async def test_twilio_covers_a_json_body_with_its_sha256_in_the_url(served: Served) -> None:
    path = await _signed_route(served, "Twilio", SECRET)
    query = f"bodySHA256={hashlib.sha256(BODY).hexdigest()}"
    signature = _b64(SECRET, f"{served.base_url}/api/r{path}?{query}".encode(), hashlib.sha1)
    headers = {"X-Twilio-Signature": signature}

    accepted = await _post(served, f"{path}?{query}", headers)
    tampered = await _post(served, f"{path}?{query}", headers, body=b'{"event":"other"}')

    assert accepted.status_code == 201
    assert tampered.status_code == 401


@pytest.mark.parametrize(
    ("config", "encode"),
    [
        (
            {"signature_header_name": "X-Sig", "algorithm": "sha1", "signature_prefix": "sha1="},
            lambda body: "sha1=" + _hex(SECRET, body, hashlib.sha1),
        ),
        (
            {"signature_header_name": "X-Sig", "algorithm": "sha512", "encoding": "base64"},
            lambda body: _b64(SECRET, body, hashlib.sha512),
        ),
        (
            {"signature_header_name": "X-Sig", "encoding": "base64uri"},
            lambda body: (
                base64.urlsafe_b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
                .decode()
                .rstrip("=")
            ),
        ),
    ],
)
async def test_custom_hmac_follows_its_configuration(
    served: Served, config: dict[str, Any], encode: Callable[[bytes], str]
) -> None:
    url = await _signed_route(served, "Custom", SECRET, config)

    accepted = await _post(served, url, {"X-Sig": encode(BODY)})
    refused = await _post(served, url, {"X-Sig": encode(BODY + b"!")})

    assert accepted.status_code == 201
    assert refused.status_code == 401


async def test_a_custom_hmac_without_a_header_name_is_a_500(served: Served) -> None:
    url = await _signed_route(served, "Custom", SECRET, {"algorithm": "sha256"})

    response = await _post(served, url, {"X-Sig": "x"})

    assert response.status_code == 500
    assert response.json() == {"error": "authentication_config needs a signature_header_name"}


async def test_an_unknown_provider_is_a_500(served: Served) -> None:
    url = await _signed_route(served, "Carrier-Pigeon", SECRET)

    response = await _post(served, url, {})

    assert response.status_code == 500
    assert response.json() == {"error": "unknown signature provider 'Carrier-Pigeon'"}


async def test_zoom_url_validation_is_answered_once_signed(served: Served) -> None:
    url = await _signed_route(served, "Zoom", SECRET)
    body = json.dumps(
        {"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}}
    ).encode()

    answered = await _post(served, url, zoom(SECRET, body, time.time()), body=body)
    unsigned = await _post(served, url, {}, body=body)

    assert answered.status_code == 200
    assert answered.json() == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": _hex(SECRET, b"qgg8vlvZRS6UYooatFL8Aw"),
    }
    assert unsigned.status_code == 400
    assert await list_jobs(served.store, WS, JobFilter(trigger_kind="http")) == []


async def test_twitch_verification_is_answered_with_its_challenge(served: Served) -> None:
    url = await _signed_route(served, "Twitch", SECRET)
    body = json.dumps({"challenge": "pogchamp-kappa-360noscope-vohiyo"}).encode()
    headers = {
        **twitch(SECRET, body, time.time()),
        "Twitch-Eventsub-Message-Type": "webhook_callback_verification",
    }

    response = await _post(served, url, headers, body=body)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "pogchamp-kappa-360noscope-vohiyo"
