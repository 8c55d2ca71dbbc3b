"""The headers that carried the credentials the gateway checked never reach a job's args."""

from __future__ import annotations

import pytest

from gateway.http_routes.routes.credentials import credential_headers, without_credentials

HEADERS = {
    "authorization": "Bearer tok",
    "cookie": "token=tok",
    "x-api-key": "k3y",
    "content-type": "application/json",
}


@pytest.mark.parametrize(
    ("method", "resource", "kept"),
    [
        ("windmill", None, {"x-api-key", "content-type"}),
        ("basic_http", None, {"cookie", "x-api-key", "content-type"}),
        ("api_key", {"api_key_header": "X-API-Key"}, {"authorization", "cookie", "content-type"}),
        ("custom_script", None, set(HEADERS)),
        ("none", None, set(HEADERS)),
    ],
)
def test_only_the_checked_credentials_are_left_out(
    method: str, resource: dict[str, str] | None, kept: set[str]
) -> None:
    assert set(without_credentials(HEADERS, credential_headers(method, resource))) == kept
