"""Signature freshness and replays on a hand-moved clock, and the resource-based checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from gateway.http_routes.routes.auth import allowed_user, check_api_key, check_basic
from gateway.http_routes.routes.cache import ExpiringCache
from gateway.http_routes.routes.errors import RequestRefused, RouteMisconfigured
from gateway.http_routes.routes.signatures import SignatureAuth, SignedRequest

SECRET = "k"
BODY = b"{}"
SLACK = {"signature_provider": "slack", "secret_key": SECRET}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _slack_request(stamp: int) -> SignedRequest:
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + BODY, hashlib.sha256)
    headers = {
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }
    return SignedRequest(headers, BODY, "http://h/api/r/x", "application/json")


def _refusal(auth: SignatureAuth, request: SignedRequest) -> str:
    with pytest.raises(RequestRefused) as refused:
        auth.verify("ws/f/hook", SLACK, request)
    return refused.value.reason


def test_timestamps_within_the_tolerance_either_way_pass_and_beyond_fail() -> None:
    clock = Clock(10_000.0)
    auth = SignatureAuth(300, clock=clock)

    assert auth.verify("ws/f/hook", SLACK, _slack_request(9_700)) is None
    assert auth.verify("ws/f/hook", SLACK, _slack_request(10_300)) is None
    assert "more than 300 s" in _refusal(auth, _slack_request(9_699))
    assert "more than 300 s" in _refusal(auth, _slack_request(10_301))


def test_a_replay_is_refused_until_its_timestamp_leaves_the_window() -> None:
    clock = Clock(10_000.0)
    auth = SignatureAuth(300, clock=clock)
    request = _slack_request(10_000)

    auth.verify("ws/f/hook", SLACK, request)
    assert "replay" in _refusal(auth, request)
    clock.now = 10_300.0
    assert "replay" in _refusal(auth, request)
    clock.now = 10_301.0
    assert "more than 300 s" in _refusal(auth, request)


def test_the_same_signature_on_another_route_is_not_a_replay() -> None:
    auth = SignatureAuth(300, clock=Clock(10_000.0))
    request = _slack_request(10_000)

    auth.verify("ws/f/hook", SLACK, request)

    assert auth.verify("ws/f/other", SLACK, request) is None


@pytest.mark.parametrize("name", ["Slack", "slack", "SLACK"])
def test_provider_names_are_read_case_insensitively(name: str) -> None:
    auth = SignatureAuth(300, clock=Clock(10_000.0))

    assert auth.verify("r", {**SLACK, "signature_provider": name}, _slack_request(10_000)) is None


def test_a_resource_without_a_secret_is_misconfigured() -> None:
    with pytest.raises(RouteMisconfigured):
        SignatureAuth().verify("r", {"signature_provider": "github"}, _slack_request(0))


def test_api_key_reads_the_header_named_by_the_resource() -> None:
    resource = {"api_key_header": "X-Key", "api_key_secret": "s"}

    check_api_key(resource, {"X-Key": "s"})
    with pytest.raises(RequestRefused):
        check_api_key(resource, {"X-Key": "S"})


def test_basic_auth_splits_on_the_first_colon_only() -> None:
    resource = {"username": "ada", "password": "a:b"}
    encoded = base64.b64encode(b"ada:a:b").decode()

    check_basic(resource, {"authorization": f"Basic {encoded}"})
    with pytest.raises(RequestRefused) as refused:
        check_basic(resource, {"authorization": "Bearer x"})
    assert refused.value.headers == {"WWW-Authenticate": 'Basic realm="Restricted Area"'}


def _token_row(**columns: Any) -> dict[str, Any]:
    return {
        "owner": "u/bob",
        "email": "bob@example.com",
        "token_workspace_id": None,
        "super_admin": False,
        "scopes": None,
        "job": None,
        "username": "bob",
        "is_admin": False,
        **columns,
    }


@pytest.mark.parametrize(
    ("row", "trigger_path", "allowed"),
    [
        (_token_row(), "f/hooks/a", True),
        (_token_row(), "u/bob/a", True),
        (_token_row(), "u/alice/a", False),
        (_token_row(is_admin=True), "u/alice/a", True),
        (_token_row(username=None), "f/hooks/a", False),
        (_token_row(username=None, super_admin=True), "f/hooks/a", True),
        (_token_row(token_workspace_id="other"), "f/hooks/a", False),
        (_token_row(scopes=["http_triggers:read:f/hooks/a"]), "f/hooks/a", True),
        (_token_row(scopes=["http_triggers:write:f/hooks/*"]), "f/hooks/a", True),
        (_token_row(scopes=["http_triggers:read"]), "f/hooks/a", True),
        (_token_row(scopes=["*"]), "f/hooks/a", True),
        (_token_row(scopes=["http_triggers:read:f/hooks/b"]), "f/hooks/a", False),
        (_token_row(scopes=["kafka_triggers:read"]), "f/hooks/a", False),
        (_token_row(scopes=[]), "f/hooks/a", False),
    ],
)
def test_who_a_token_may_call_a_windmill_route_as(
    row: dict[str, Any], trigger_path: str, allowed: bool
) -> None:
    assert (allowed_user(row, "ws", trigger_path) == "bob") is allowed


def test_expiring_cache_forgets_expired_entries_and_the_oldest_when_full() -> None:
    clock = Clock(0.0)
    cache: ExpiringCache[str, int] = ExpiringCache(10, max_entries=2, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2, ttl_s=1)
    cache.put("c", 3)

    assert cache.get("a") is None
    clock.now = 1.0
    assert (cache.get("b"), cache.get("c")) == (None, 3)
