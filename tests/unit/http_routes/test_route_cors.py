"""Per-route CORS: which origins a route answers to, and what its answers carry."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from gateway.http_routes.routes.cors import CorsPolicy, normalized_origin, normalized_origins
from gateway.http_routes.routes.errors import RequestRefused

APP = "https://app.example.com"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://App.Example.com/", APP),
        ("https://app.example.com:443", APP),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("*", "*"),
    ],
)
def test_origins_are_stored_lowercase_without_default_port_or_slash(
    given: str, stored: str
) -> None:
    assert normalized_origin(given) == stored


@pytest.mark.parametrize(
    "given",
    ["app.example.com", "https://app.example.com/path", "https://u:p@app.example.com", "https://"],
)
def test_anything_but_an_origin_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        normalized_origin(given)


def test_origin_lists_drop_duplicates_and_an_empty_list_means_every_origin() -> None:
    assert normalized_origins([APP, "https://APP.example.com"]) == [APP]
    assert normalized_origins([]) is None
    with pytest.raises(ValueError, match="give it alone"):
        normalized_origins(["*", APP])


def test_a_listed_origin_is_echoed_with_vary_and_another_gets_no_allow_origin() -> None:
    policy = CorsPolicy.of([APP])

    listed = policy.apply(Response(), APP)
    unlisted = policy.apply(Response(), "https://other.example.com")

    assert listed.headers["access-control-allow-origin"] == APP
    assert "access-control-allow-origin" not in unlisted.headers
    assert listed.headers["vary"] == unlisted.headers["vary"] == "Origin"


@pytest.mark.parametrize("stored", [None, [], ["*"]])
def test_no_origins_or_a_star_allow_every_origin_without_vary(stored: list[str] | None) -> None:
    response = CorsPolicy.of(stored).apply(Response(), APP)

    assert response.headers["access-control-allow-origin"] == "*"
    assert "vary" not in response.headers


def test_headers_the_job_set_are_kept_and_vary_is_extended() -> None:
    response = Response(
        headers={"access-control-allow-origin": "https://set.by.job", "vary": "Accept"}
    )

    CorsPolicy.of([APP]).apply(response, APP)

    assert response.headers["access-control-allow-origin"] == "https://set.by.job"
    assert response.headers["vary"] == "Accept, Origin"


def test_a_preflight_allows_the_requested_headers_or_refuses_the_origin() -> None:
    policy = CorsPolicy.of([APP])

    allowed = policy.preflight(APP, "x-api-key, content-type")
    default = policy.preflight(APP, None)

    assert allowed.headers["access-control-allow-headers"] == "x-api-key, content-type"
    assert default.headers["access-control-allow-headers"] == "content-type, authorization"
    with pytest.raises(RequestRefused) as refused:
        policy.preflight("https://other.example.com", None)
    assert refused.value.status == 403
