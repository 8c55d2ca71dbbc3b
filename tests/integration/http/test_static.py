"""Static websites and assets over a real socket, from a folder under the static root."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.http_routes.routes import RouteOptions
from gateway.runtime import Gateway

from .conftest import Served, add_resource, served_routes

INDEX = "<html>home</html>"
SECRET = "do not serve"


@pytest.fixture
def static_root(tmp_path: Path) -> Path:
    """The static root: a website `site/` and a file `files/report.txt`; a secret beside it."""
    root = tmp_path / "static"
    (root / "site" / "docs").mkdir(parents=True)
    (root / "site" / "index.html").write_text(INDEX)
    (root / "site" / "app.js").write_text("console.log(1)")
    (root / "site" / "docs" / "index.html").write_text("<html>docs</html>")
    (root / "files").mkdir()
    (root / "files" / "report.txt").write_text("the report")
    (tmp_path / "secret.txt").write_text(SECRET)
    (root / "site" / "escape.txt").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture
def route_options(route_options: RouteOptions, static_root: Path) -> RouteOptions:
    """The test route options, serving files from `static_root`."""
    return dataclasses.replace(route_options, static_root=static_root)


async def _website(served: Served, route_path: str = "site", **columns: object) -> str:
    return await served.add_route(
        route_path,
        script="",
        http_method="get",
        is_static_website=True,
        static_asset_config={"directory": "site"},
        **columns,
    )


async def test_a_website_serves_its_index_its_files_and_its_folders_indexes(
    served: Served,
) -> None:
    await _website(served)

    home = await served.client.get("/site")
    script = await served.client.get("/site/app.js")
    docs = await served.client.get("/site/docs/")

    assert (home.status_code, home.text) == (200, INDEX)
    assert home.headers["content-type"].startswith("text/html")
    assert script.text == "console.log(1)"
    assert "javascript" in script.headers["content-type"]
    assert docs.text == "<html>docs</html>"
    assert "content-disposition" not in script.headers


async def test_a_missing_file_falls_back_to_the_index(served: Served) -> None:
    await _website(served)

    spa = await served.client.get("/site/orders/17")

    assert (spa.status_code, spa.text) == (200, INDEX)


async def test_an_etag_answers_304_to_a_client_that_has_the_file(served: Served) -> None:
    await _website(served)
    first = await served.client.get("/site/app.js")
    etag = first.headers["etag"]

    again = await served.client.get("/site/app.js", headers={"If-None-Match": etag})
    weak = await served.client.get("/site/app.js", headers={"If-None-Match": f'"x", W/{etag}'})
    stale = await served.client.get("/site/app.js", headers={"If-None-Match": '"old"'})

    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert weak.status_code == 304
    assert stale.status_code == 200


async def test_no_path_leaves_the_static_root(served: Served) -> None:
    await _website(served)

    dotted = await served.client.get("/site/..%2F..%2Fsecret.txt")
    linked = await served.client.get("/site/escape.txt")

    assert dotted.status_code == 400
    assert dotted.json() == {"error": "the path segment '..' is not allowed in a static path"}
    assert SECRET not in linked.text


async def test_a_directory_outside_the_root_serves_nothing(served: Served) -> None:
    await served.add_route(
        "outside",
        script="",
        http_method="get",
        static_asset_config={"directory": "..", "filename": "secret.txt"},
    )

    answer = await served.client.get("/outside")

    assert answer.status_code == 404
    assert SECRET not in answer.text


async def test_a_single_asset_is_served_inline_with_its_name(served: Served) -> None:
    await served.add_route(
        "report",
        script="",
        http_method="get",
        static_asset_config={"directory": "files", "filename": "report.txt"},
    )

    answer = await served.client.get("/report")

    assert (answer.status_code, answer.text) == (200, "the report")
    assert answer.headers["content-disposition"] == 'inline; filename="report.txt"'
    assert answer.headers["etag"]


async def test_static_routes_still_authenticate(served: Served) -> None:
    resource = await add_resource(
        served.store, {"api_key_header": "x-api-key", "api_key_secret": "s3cret"}
    )
    await _website(served, authentication_method="api_key", authentication_resource_path=resource)

    refused = await served.client.get("/site")
    allowed = await served.client.get("/site", headers={"x-api-key": "s3cret"})

    assert refused.status_code == 401
    assert allowed.text == INDEX


async def test_object_storage_assets_are_refused_with_501(served: Served) -> None:
    await served.add_route(
        "bucket", script="", http_method="get", static_asset_config={"s3": "site/index.html"}
    )

    answer = await served.client.get("/bucket")

    assert answer.status_code == 501
    assert "object storage" in answer.json()["error"]


async def test_without_a_static_root_static_routes_say_what_is_missing(
    gateway: Gateway, route_options: RouteOptions
) -> None:
    unrooted = dataclasses.replace(route_options, static_root=None)
    async with served_routes(gateway, unrooted) as served:
        await _website(served)

        answer = await served.client.get("/site")

    assert answer.status_code == 500
    assert "GATEWAY_STATIC_ROOT is not set" in answer.json()["error"]
