"""Route syntax, `route_path_key`, and which route a path matches."""

from __future__ import annotations

import pytest

from gateway.http_routes.routes.router import (
    Router,
    RouteSyntaxError,
    Segment,
    parse_route,
    route_path_key,
)


def _router(*routes: str) -> Router[str]:
    router: Router[str] = Router()
    for route in routes:
        assert router.add(parse_route(route), route)
    return router


def test_segments_are_static_parameters_and_a_final_catch_all() -> None:
    assert parse_route("orders/:id/*rest") == (
        Segment("static", "orders"),
        Segment("param", "id"),
        Segment("rest", "rest"),
    )


@pytest.mark.parametrize("route", ["", "a//b", "a/*rest/b", "a b", "a/:", "a/:x.y", "a/**x", "a\n"])
def test_invalid_routes_are_refused(route: str) -> None:
    with pytest.raises(RouteSyntaxError):
        parse_route(route)


@pytest.mark.parametrize(
    ("route", "workspace", "key"),
    [
        ("orders/:id/*rest", None, "orders/:key/*key"),
        (":a/b/:c", None, ":key/b/:key"),
        ("hook", "acme", "acme/hook"),
        ("x/:name", "acme", "acme/x/:key"),
    ],
)
def test_route_path_key_erases_parameter_names(route: str, workspace: str | None, key: str) -> None:
    assert route_path_key(route, workspace) == key


def test_static_wins_over_parameter_which_wins_over_catch_all() -> None:
    router = _router("items/*rest", "items/:id", "items/new")

    found = router.match(["items", "new"])
    assert found is not None and found.value == "items/new"
    found = router.match(["items", "7"])
    assert found is not None and (found.value, found.params) == ("items/:id", {"id": "7"})
    found = router.match(["items", "7", "a", "b"])
    assert found is not None and (found.value, found.params) == ("items/*rest", {"rest": "7/a/b"})


def test_a_dead_end_on_the_static_branch_backtracks_to_the_parameter() -> None:
    router = _router("a/static/x", "a/:p/y")

    found = router.match(["a", "static", "y"])

    assert found is not None and (found.value, found.params) == ("a/:p/y", {"p": "static"})


def test_parameter_names_belong_to_each_route_not_to_the_shared_node() -> None:
    router = _router("u/:user/posts", "u/:name/likes")

    posts = router.match(["u", "ada", "posts"])
    likes = router.match(["u", "ada", "likes"])

    assert posts is not None and posts.params == {"user": "ada"}
    assert likes is not None and likes.params == {"name": "ada"}


def test_a_parameter_never_matches_an_empty_segment_and_a_catch_all_needs_one() -> None:
    router = _router("f/:name", "g/*rest")

    assert router.match(["f", ""]) is None
    assert router.match(["g"]) is None
    assert router.match(["f"]) is None


def test_a_route_of_the_same_shape_is_refused() -> None:
    router = _router("orders/:id", "files/*path")

    assert not router.add(parse_route("orders/:order_id"), "again")
    assert not router.add(parse_route("files/*rest"), "again")
    assert router.add(parse_route("orders/:id/items"), "deeper")
