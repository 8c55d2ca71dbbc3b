"""The user jobs run as: a separate unprivileged user when the gateway runs as root.

A gateway started as root runs every job process as `Settings.job_user` (``nobody`` by default),
so that a job cannot read the gateway's database file, its master key or its environment
(``/proc/<gateway>/environ``). A gateway that is not root cannot switch users: its jobs run as its
own user, which `describe` says, and the readiness check and the start-up log repeat.
"""

from __future__ import annotations

import os
import pwd
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class JobUser:
    """A user to switch to in a job's child process (its primary group, no other group)."""

    name: str
    uid: int
    gid: int


def resolve_job_user(name: str, *, euid: int | None = None) -> JobUser | None:
    """The user jobs switch to, or None when jobs run as the gateway's own user.

    Raises `ConfigError` when the gateway is root and the user does not exist, or cannot run the
    interpreter of python3 jobs.
    """
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(
            f"GATEWAY_JOB_USER: the user {name!r} does not exist on this host; create it or "
            "name an existing unprivileged user (jobs never run as root unless it is named)"
        ) from None
    user = JobUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    if user.uid == 0:
        return None
    blocked = unreachable_part(Path(sys.executable), user)
    if blocked is not None:
        raise ConfigError(
            f"GATEWAY_JOB_USER: the user {name!r} cannot run the python3 interpreter "
            f"{sys.executable} ({blocked} is not accessible to it); install the gateway where "
            "that user can read it, or name another job user"
        )
    return user


def describe(user: JobUser | None) -> str:
    """Who jobs run as, for the readiness check and the start-up log."""
    if user is not None:
        return f"jobs run as the unprivileged user {user.name} (uid {user.uid})"
    name = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        return "jobs run as root: GATEWAY_JOB_USER names root"
    return (
        f"jobs run as the gateway's own user {name}: they can read what the gateway can "
        "(start the gateway as root to run jobs as GATEWAY_JOB_USER)"
    )


def unreachable_part(path: Path, user: JobUser) -> Path | None:
    """The first directory on the way to `path` (or `path` itself) `user` cannot pass or run.

    Follows symbolic links, as the kernel does on exec; group rights are those of the user's
    primary group, the only group a job keeps.
    """
    checked = Path("/")
    for part in path.parts[1:]:
        if not _allows(checked, user, stat.S_IXUSR):
            return checked
        checked = checked / part
        if checked.is_symlink():
            target = unreachable_part((checked.parent / os.readlink(checked)).resolve(), user)
            if target is not None:
                return target
            checked = checked.resolve()
    return None if _allows(checked, user, stat.S_IXUSR) else checked


def _allows(path: Path, user: JobUser, owner_bit: int) -> bool:
    """Whether the mode of `path` grants `owner_bit` (given for the owner) to `user`."""
    try:
        info = path.stat()
    except OSError:
        return False
    if info.st_uid == user.uid:
        return bool(info.st_mode & owner_bit)
    if info.st_gid == user.gid:
        return bool(info.st_mode & (owner_bit >> 3))
    return bool(info.st_mode & (owner_bit >> 6))
