"""Which paths a user may see and change, and what a valid path looks like.

Windmill's rule without folders and groups: `u/<user>/...` belongs to that user, `f/<folder>/...`
to every user of the workspace; admins see everything. Operators only read (and run jobs).
An object the caller may not see is reported as absent.
"""

from __future__ import annotations

import re
from typing import Final

from gateway.errors import Forbidden, InvalidInput, NotFound
from gateway.http_routes.api.auth import Caller

PATH: Final = re.compile(r"^[uf]/[\w.@+-]+(/[\w.@+-]+)+$")


def check_path(path: str, field: str = "path") -> str:
    """The path, or InvalidInput saying what a path looks like."""
    if len(path) > 255 or not PATH.match(path):
        raise InvalidInput(
            field,
            f"{path!r} is not a valid path: write u/<user>/<name> or f/<folder>/<name>",
        )
    return path


def visible(caller: Caller, path: str) -> bool:
    """Whether the caller may see the object at `path`."""
    return caller.is_admin or not path.startswith("u/") or path.startswith(f"u/{caller.username}/")


def require_visible(caller: Caller, path: str, what: str) -> None:
    """NotFound (as for a missing object) when the caller may not see `path`."""
    if not visible(caller, path):
        raise NotFound(f"{what} not found at path {path!r}")


def require_writable(caller: Caller, path: str) -> None:
    """Forbidden unless the caller may change the object at `path`."""
    if caller.is_operator and not caller.is_admin:
        raise Forbidden(f"{caller.username} is an operator and cannot change {path!r}")
    if not visible(caller, path):
        raise Forbidden(f"{caller.username} cannot write to {path!r}, which another user owns")


def user_prefix(caller: Caller) -> str:
    """The prefix of the paths the caller owns, for list queries."""
    return f"u/{caller.username}/"
