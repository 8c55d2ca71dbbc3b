"""Route syntax, the canonical `route_path_key`, and matching a request path to a route.

A route path is segments separated by `/` (no leading `/`): a static segment `[-\\w]+`, a
parameter `:name` (exactly one non-empty segment) or, only last, a catch-all `*name` (one or
more segments, joined back with `/`). A trailing `/` of the request path is ignored.

`Router` is a segment trie: at every depth a static segment is tried before a parameter, and a
parameter before a catch-all, backtracking when the more specific branch leads nowhere. So
`orders/new` wins over `orders/:id`, which wins over `orders/*rest`. Each trie node is visited at
most once per lookup, so a lookup costs at most the size of the trie.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeVar

T = TypeVar("T")

_STATIC: Final = re.compile(r"[-\w]+")
_PARAMETER: Final = re.compile(r":([-\w]+)")
_CATCH_ALL: Final = re.compile(r"\*([-\w]+)")
_KEY_PARAMETER: Final = re.compile(r"(/?)([:*])[-\w]+")

SegmentKind = Literal["static", "param", "rest"]


class RouteSyntaxError(ValueError):
    """A route path that does not follow the route syntax."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment of a route: its static text, or the name of its parameter."""

    kind: SegmentKind
    text: str


def parse_route(route_path: str) -> tuple[Segment, ...]:
    """The segments of `route_path`; RouteSyntaxError saying what is wrong."""
    parts = route_path.strip("/").split("/")
    segments: list[Segment] = []
    for position, part in enumerate(parts):
        if _STATIC.fullmatch(part):
            segments.append(Segment("static", part))
        elif parameter := _PARAMETER.fullmatch(part):
            segments.append(Segment("param", parameter[1]))
        elif (rest := _CATCH_ALL.fullmatch(part)) and position == len(parts) - 1:
            segments.append(Segment("rest", rest[1]))
        else:
            raise RouteSyntaxError(
                f"{route_path!r} is not a route: segments of letters, digits, _ and -, "
                "`:name` for a parameter, `*name` only as the last segment"
            )
    return tuple(segments)


def route_path_key(route_path: str, workspace_id: str | None = None) -> str:
    """The canonical form two routes of one method may not share: parameter names erased
    (`orders/:id/*rest` -> `orders/:key/*key`), prefixed by the workspace of a workspaced
    route."""
    key = _KEY_PARAMETER.sub(r"\1\2key", route_path.strip("/"))
    return f"{workspace_id}/{key}" if workspace_id is not None else key


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    """The value of the matched route and its parameters by name."""

    value: T
    params: dict[str, str]


@dataclass(slots=True)
class _Leaf(Generic[T]):
    value: T
    names: tuple[str, ...]


@dataclass(slots=True)
class _Node(Generic[T]):
    static: dict[str, _Node[T]] = field(default_factory=dict)
    param: _Node[T] | None = None
    leaf: _Leaf[T] | None = None
    rest: _Leaf[T] | None = None


class Router(Generic[T]):
    """Routes of one method; `add` refuses a route whose shape is taken."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()

    def add(self, segments: Sequence[Segment], value: T) -> bool:
        """Add a route; False (nothing changed) when a route of the same shape exists."""
        node = self._root
        names: list[str] = []
        for segment in segments:
            if segment.kind == "static":
                node = node.static.setdefault(segment.text, _Node())
                continue
            names.append(segment.text)
            if segment.kind == "rest":
                if node.rest is not None:
                    return False
                node.rest = _Leaf(value, tuple(names))
                return True
            if node.param is None:
                node.param = _Node()
            node = node.param
        if node.leaf is not None:
            return False
        node.leaf = _Leaf(value, tuple(names))
        return True

    def match(self, path: Sequence[str]) -> Match[T] | None:
        """The route matching the request path's segments (already decoded), or None."""
        found = _walk(self._root, path, 0, [])
        if found is None:
            return None
        leaf, captured = found
        return Match(leaf.value, dict(zip(leaf.names, captured, strict=True)))


def _walk(
    node: _Node[T], path: Sequence[str], depth: int, captured: list[str]
) -> tuple[_Leaf[T], list[str]] | None:
    if depth == len(path):
        return (node.leaf, captured) if node.leaf is not None else None
    segment = path[depth]
    child = node.static.get(segment)
    if child is not None and (found := _walk(child, path, depth + 1, captured)):
        return found
    if node.param is not None and segment:
        found = _walk(node.param, path, depth + 1, [*captured, segment])
        if found:
            return found
    if node.rest is not None:
        return node.rest, [*captured, "/".join(path[depth:])]
    return None
