"""Which trigger an email address names, and the extra args it carries.

An address is ``<local>@<email domain>`` (any domain when the gateway has none configured). The
local part names one of:

* an email trigger: its ``local_part``, or ``<workspace_id>-<local_part>`` when the trigger has
  ``workspaced_local_part``;
* the default address of a script or flow: ``<path>+<code>``, where ``<code>`` is the unpadded
  base32 of ``<workspace_id>\\n<script|flow>/<path>\\n<token>`` (`default_address`). The token must
  be live, belong to a user of that workspace and be allowed to run the runnable; its owner is
  whom the jobs run as.

Either may be followed by extra args, ``+k1=v1&k2=v2``, which reach the job as
``email_extra_args`` (strings, as written). Local parts compare case-insensitively, as mail
systems treat them; base32 does not depend on case, so a default address survives a relay that
changes it.

There is no query by local part, so `AddressBook` lists the email triggers of every workspace and
keeps the addresses for `max_age_s`; a caller that finds nothing may `refresh` it (at most once per
`min_refresh_s`), so a trigger created a moment ago is found at once. An `Addressee` then reads
the trigger's row by primary key (`Addressee.load`), so its mode, target, retry and error handler
are always current.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.http_routes.api.auth import scope_allows
from gateway.listeners.lease import TriggerRef
from gateway.store import Store, Transaction
from gateway.token_text import token_hash

logger = logging.getLogger(__name__)

KIND: Final = "email"


@dataclass(frozen=True, slots=True)
class EmailTarget:
    """A recipient, the trigger row its jobs are built from, and the address's extra args.

    For a default address, `trigger` names the runnable (``email`` kind, the runnable's path) and
    `row` is made up from the token: the runnable as target, the token's owner as identity, no
    retry and no error handler.
    """

    recipient: str
    trigger: TriggerRef
    row: Mapping[str, Any]
    extra_args: Mapping[str, str]

    @property
    def accepts_mail(self) -> bool:
        """Whether mail to this address is taken (a disabled trigger refuses it)."""
        return bool(self.row["mode"] != "disabled")


@dataclass(frozen=True, slots=True)
class Addressee:
    """What an address names before the database is read: an email trigger, or a runnable's
    default address (`token` set)."""

    recipient: str
    trigger: TriggerRef
    extra_args: Mapping[str, str] = field(default_factory=dict)
    token: str | None = None
    is_flow: bool = False

    async def load(self, tx: Transaction) -> EmailTarget | None:
        """The target with its current row; None when the trigger is gone or the token invalid."""
        if self.token is None:
            row = await tx.fetch_one(
                "get_email_trigger", workspace_id=self.trigger.workspace_id, path=self.trigger.path
            )
        else:
            row = await self._default_row(tx, self.token)
        return (
            None if row is None else EmailTarget(self.recipient, self.trigger, row, self.extra_args)
        )

    async def _default_row(self, tx: Transaction, token: str) -> dict[str, Any] | None:
        found = await tx.fetch_one("api_get_token", token_hash=token_hash(token))
        path, kind = self.trigger.path, "flow" if self.is_flow else "script"
        owner = str((found or {}).get("owner") or "")
        if (
            found is None
            or found["workspace_id"] != self.trigger.workspace_id
            or not owner.startswith("u/")
            or not found["email"]
            or not _may_run(found["scopes"], kind, path)
        ):
            return None
        return {
            "path": path,
            "script_path": path,
            "is_flow": self.is_flow,
            "mode": "enabled",
            "edited_by": owner.removeprefix("u/"),
            "permissioned_as": owner,
            "email": found["email"],
            "retry": None,
            "error_handler_path": None,
            "error_handler_args": None,
        }


def _may_run(scopes: list[str] | None, kind: str, path: str) -> bool:
    return (
        scopes is None
        or f"run:{kind}/{path}" in scopes
        or scope_allows(scopes, "jobs", "run", f"{kind}s:{path}")
    )


def trigger_local_part(workspace_id: str, local_part: str, workspaced: bool) -> str:
    """The local part of an email trigger's address."""
    return f"{workspace_id}-{local_part}" if workspaced else local_part


def default_address(
    workspace_id: str, path: str, token: str, domain: str, *, is_flow: bool = False
) -> str:
    """The default address of the script (or flow) at `path`, running as `token`'s owner."""
    kind = "flow" if is_flow else "script"
    secret = f"{workspace_id}\n{kind}/{path}\n{token}".encode()
    code = base64.b32encode(secret).decode("ascii").rstrip("=").lower()
    return f"{path}+{code}@{domain}"


def local_part_of(address: str, domain: str | None) -> str | None:
    """The local part of `address` when it is on `domain` (any domain when None), else None."""
    local, at, host = address.strip().strip("<>").rpartition("@")
    if not at or not local or not host:
        return None
    if domain is not None and host.lower() != domain.lower():
        return None
    return local


def parse_extra_args(text: str) -> dict[str, str]:
    """``k1=v1&k2=v2`` as a mapping; a key without ``=`` gets the empty string."""
    pairs = (item.partition("=") for item in text.split("&") if item)
    return {key: value for key, _, value in pairs if key}


def _splits(local: str) -> Iterator[tuple[str, str]]:
    """Every way to read `local` as ``<name>[+<extra args>]``, the longest name first."""
    yield local, ""
    for index in range(len(local) - 1, -1, -1):
        if local[index] == "+":
            yield local[:index], local[index + 1 :]


def _default_addressee(address: str, local: str) -> Addressee | None:
    """The addressee of a default address, or None when `local` is not one."""
    parts = local.split("+", 2)
    if len(parts) < 2 or not parts[1]:
        return None
    code = parts[1].upper()
    try:
        secret = base64.b32decode(code + "=" * (-len(code) % 8)).decode()
    except (binascii.Error, ValueError):
        return None
    fields = secret.split("\n")
    if len(fields) != 3:
        return None
    workspace_id, runnable, token = fields
    kind, _, path = runnable.partition("/")
    if kind not in ("script", "flow") or not path or path.lower() != parts[0].lower():
        return None
    return Addressee(
        recipient=address,
        trigger=TriggerRef(KIND, workspace_id, path),
        extra_args=parse_extra_args(parts[2]) if len(parts) == 3 else {},
        token=token,
        is_flow=kind == "flow",
    )


class AddressBook:
    """The addresses of every email trigger, read from the store and kept for a while."""

    def __init__(
        self,
        store: Store,
        domain: str | None,
        *,
        max_age_s: float = 30.0,
        min_refresh_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._domain = domain
        self._max_age_s = max_age_s
        self._min_refresh_s = min_refresh_s
        self._monotonic = monotonic
        self._addresses: dict[str, TriggerRef] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def addressee(self, address: str) -> Addressee | None:
        """What `address` names, or None: not on the domain, or no trigger has that address."""
        local = local_part_of(address, self._domain)
        if local is None:
            return None
        if self._loaded_at is None or self._monotonic() - self._loaded_at >= self._max_age_s:
            await self._reload()
        recipient = address.strip().strip("<>").lower()
        for name, extras in _splits(local.lower()):
            trigger = self._addresses.get(name)
            if trigger is not None:
                return Addressee(recipient, trigger, parse_extra_args(extras))
        return _default_addressee(recipient, local)

    async def refresh(self) -> None:
        """Read the addresses again, unless they were read less than `min_refresh_s` ago."""
        if self._loaded_at is None or self._monotonic() - self._loaded_at >= self._min_refresh_s:
            await self._reload()

    async def _reload(self) -> None:
        started = self._monotonic()
        async with self._lock:
            if self._loaded_at is not None and self._loaded_at >= started:
                return  # another caller read them while this one waited
            async with self._store.transaction() as tx:
                rows = [
                    row
                    for workspace in await tx.fetch_all("list_workspaces")
                    for row in await tx.fetch_all(
                        "list_email_triggers", workspace_id=workspace["id"]
                    )
                ]
            self._addresses = _address_map(rows)
            self._loaded_at = self._monotonic()


def _address_map(rows: Sequence[Mapping[str, Any]]) -> dict[str, TriggerRef]:
    addresses: dict[str, TriggerRef] = {}
    for row in sorted(rows, key=lambda r: (r["workspace_id"], r["path"])):
        local = trigger_local_part(
            row["workspace_id"], row["local_part"], bool(row["workspaced_local_part"])
        ).lower()
        trigger = TriggerRef(KIND, row["workspace_id"], row["path"])
        taken = addresses.setdefault(local, trigger)
        if taken != trigger:
            logger.warning(
                "email triggers %s and %s share the address %s; mail goes to the first",
                taken,
                trigger,
                local,
                extra={"action": "email_address_clash", "kind": KIND, "trigger": str(trigger)},
            )
    return addresses
