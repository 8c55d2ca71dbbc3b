"""What an HTTP trigger's body may say about CORS origins, static files and its route key."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidInput
from gateway.http_routes.api.trigger_bodies import HttpBody
from gateway.http_routes.routes import route_path_key


def _body(**fields: Any) -> HttpBody:
    return HttpBody.model_validate(
        {"path": "f/t/route", "script_path": "f/t/echo", "route_path": "orders/:id"}
        | {"http_method": "post"}
        | fields
    )


def test_origins_are_stored_normalized_and_none_means_every_origin() -> None:
    body = _body(allowed_origins=["https://App.example.com/", "http://localhost:3000"])
    body.check()

    assert body.config("ws")["allowed_origins"] == [
        "https://app.example.com",
        "http://localhost:3000",
    ]
    assert _body().config("ws")["allowed_origins"] is None
    assert _body(allowed_origins=[]).config("ws")["allowed_origins"] is None


@pytest.mark.parametrize("origins", [["app.example.com"], ["*", "https://a.example.com"]])
def test_invalid_origins_are_refused_naming_the_field(origins: list[str]) -> None:
    with pytest.raises(InvalidInput) as refused:
        _body(allowed_origins=origins).check()
    assert refused.value.field == "allowed_origins"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"is_static_website": True}, "static_asset_config"),
        ({"static_asset_config": {}}, "static_asset_config"),
        ({"static_asset_config": {"directory": "a", "s3": "k"}}, "static_asset_config"),
        (
            {"static_asset_config": {"directory": "../up", "filename": "f"}},
            "static_asset_config.directory",
        ),
        (
            {"static_asset_config": {"directory": "/etc", "filename": "f"}},
            "static_asset_config.directory",
        ),
        ({"static_asset_config": {"directory": "files"}}, "static_asset_config.filename"),
        (
            {"static_asset_config": {"directory": "a", "filename": "b/c"}},
            "static_asset_config.filename",
        ),
    ],
)
def test_static_configs_that_name_no_place_or_leave_the_root_are_refused(
    fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        _body(**fields).check()
    assert refused.value.field == field


def test_a_website_needs_only_a_directory_and_an_asset_a_file_in_it() -> None:
    _body(is_static_website=True, static_asset_config={"directory": "site"}).check()
    _body(static_asset_config={"directory": "files", "filename": "report.pdf"}).check()
    _body(static_asset_config={"s3": "bucket/key"}).check()


def test_the_route_key_is_the_routers() -> None:
    assert _body().route_key("ws") == route_path_key("orders/:id") == "orders/:key"
    assert _body(workspaced_route=True).route_key("ws") == "ws/orders/:key"
