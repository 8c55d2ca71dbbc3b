"""Which paths a user may see and change, and what a valid path looks like.

Windmill's rule without folders: `u/<user>/...` belongs to that user, `f/<folder>/...` to every
user of the workspace; admins see everything. Operators only read (and run jobs).
An object's `extra_perms` (`{"u/<user>": true|false, "g/all": ...}`) grants more: `false` lets
that user (or, with `g/all`, every user) read it, `true` read and change it.
An object the caller may not see is reported as absent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from gateway.errors import Forbidden, InvalidInput, NotFound
from gateway.http_routes.api.auth import Caller

PATH: Final = re.compile(r"^[uf]/[\w.@+-]+(/[\w.@+-]+)+$")
EVERY_USER: Final = "g/all"
"""The group every user of a workspace belongs to."""


def check_path(path: str, field: str = "path") -> str:
    """The path, or InvalidInput saying what a path looks like."""
    if len(path) > 255 or not PATH.match(path):
        raise InvalidInput(
            field,
            f"{path!r} is not a valid path: write u/<user>/<name> or f/<folder>/<name>",
        )
    return path


def path_allows(caller: Caller, path: str) -> bool:
    """Whether the path alone lets the caller read and change it: an admin, a folder, their own."""
    return caller.is_admin or not path.startswith("u/") or path.startswith(f"u/{caller.username}/")


def granted(caller: Caller, extra_perms: Mapping[str, Any] | None) -> bool | None:
    """The caller's grant in `extra_perms`: True to change, False to read only, None for none."""
    grants = [
        bool(extra_perms[grantee])
        for grantee in (f"u/{caller.username}", EVERY_USER)
        if extra_perms and grantee in extra_perms
    ]
    return any(grants) if grants else None


def visible(caller: Caller, path: str, extra_perms: Mapping[str, Any] | None = None) -> bool:
    """Whether the caller may see the object at `path` (granted to it by `extra_perms` or not)."""
    return path_allows(caller, path) or granted(caller, extra_perms) is not None


def require_visible(
    caller: Caller, path: str, what: str, extra_perms: Mapping[str, Any] | None = None
) -> None:
    """NotFound (as for a missing object) when the caller may not see `path`."""
    if not visible(caller, path, extra_perms):
        raise NotFound(f"{what} not found at path {path!r}")


def require_writable(
    caller: Caller, path: str, extra_perms: Mapping[str, Any] | None = None
) -> None:
    """Forbidden unless the caller may change the object at `path` (its own, or granted)."""
    if caller.is_operator and not caller.is_admin:
        raise Forbidden(f"{caller.username} is an operator and cannot change {path!r}")
    if not path_allows(caller, path) and not granted(caller, extra_perms):
        raise Forbidden(f"{caller.username} cannot write to {path!r}, which another user owns")


def require_owner(caller: Caller, path: str) -> None:
    """Forbidden unless the path alone lets the caller change it (grants do not pass on)."""
    if caller.is_operator and not caller.is_admin:
        raise Forbidden(f"{caller.username} is an operator and cannot change {path!r}")
    if not path_allows(caller, path):
        raise Forbidden(f"only the owner of {path!r} or an admin may change who can use it")


def user_prefix(caller: Caller) -> str:
    """The prefix of the paths the caller owns, for list queries."""
    return f"u/{caller.username}/"
