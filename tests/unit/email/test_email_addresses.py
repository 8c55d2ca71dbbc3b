"""Email addresses: trigger local parts, workspaced ones, extra args, default addresses of
runnables, and when the address book is read again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from gateway.email.addresses import (
    AddressBook,
    Addressee,
    default_address,
    local_part_of,
    parse_extra_args,
)
from gateway.listeners.lease import TriggerRef
from gateway.store import Store
from gateway.token_text import token_hash

DOMAIN = "gw.example"
TOKEN = "Tok3nWithMixedCase0123456789abcd"


class Database:
    """Email triggers and tokens, answering the queries address resolution makes."""

    def __init__(self) -> None:
        self.triggers: list[dict[str, Any]] = []
        self.tokens: dict[str, dict[str, Any]] = {}
        self.listings = 0

    def add(self, path: str, local_part: str, *, workspace: str = "ops", **row: Any) -> TriggerRef:
        self.triggers.append(
            {
                "workspace_id": workspace,
                "path": path,
                "local_part": local_part,
                "workspaced_local_part": False,
                "mode": "enabled",
                **row,
            }
        )
        return TriggerRef("email", workspace, path)

    async def fetch_all(self, query: str, **params: Any) -> list[dict[str, Any]]:
        if query == "list_workspaces":
            self.listings += 1
            return [{"id": ws} for ws in sorted({t["workspace_id"] for t in self.triggers})]
        assert query == "list_email_triggers"
        return [t for t in self.triggers if t["workspace_id"] == params["workspace_id"]]

    async def fetch_one(self, query: str, **params: Any) -> dict[str, Any] | None:
        if query == "api_get_token":
            return self.tokens.get(params["token_hash"])
        assert query == "get_email_trigger"
        key = (params["workspace_id"], params["path"])
        return next((t for t in self.triggers if (t["workspace_id"], t["path"]) == key), None)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        yield self


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db() -> Database:
    return Database()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(db: Database, clock: Clock) -> AddressBook:
    return AddressBook(cast(Store, db), DOMAIN, max_age_s=30, min_refresh_s=1, monotonic=clock)


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("orders@gw.example", "orders"),
        ("<Orders+x=1@GW.example>", "Orders+x=1"),
        ("orders@elsewhere.example", None),
        ("no-at-sign", None),
        ("@gw.example", None),
    ],
)
def test_only_addresses_on_the_domain_have_a_local_part(address: str, local: str | None) -> None:
    assert local_part_of(address, DOMAIN) == local


def test_without_a_domain_every_domain_is_served() -> None:
    assert local_part_of("orders@anything.example", None) == "orders"


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("k1=v1&k2=v2", {"k1": "v1", "k2": "v2"}),
        ("flag", {"flag": ""}),
        ("a=b=c&&", {"a": "b=c"}),
        ("", {}),
    ],
)
def test_extra_args_are_strings_as_written(text: str, args: dict[str, str]) -> None:
    assert parse_extra_args(text) == args


async def test_a_trigger_is_named_by_its_local_part_whatever_the_case(
    db: Database, book: AddressBook
) -> None:
    trigger = db.add("u/alice/orders", "orders")

    addressee = await book.addressee("ORDERS@gw.example")

    assert addressee == Addressee("orders@gw.example", trigger)


async def test_extra_args_follow_a_plus(db: Database, book: AddressBook) -> None:
    db.add("u/alice/orders", "orders")

    addressee = await book.addressee("orders+source=shop&priority=high@gw.example")

    assert addressee is not None
    assert addressee.extra_args == {"source": "shop", "priority": "high"}


async def test_a_workspaced_local_part_starts_with_the_workspace(
    db: Database, book: AddressBook
) -> None:
    trigger = db.add("u/alice/orders", "orders", workspace="acme", workspaced_local_part=True)

    found = await book.addressee("acme-orders@gw.example")
    unqualified = await book.addressee("orders@gw.example")

    assert found is not None and found.trigger == trigger
    assert unqualified is None


async def test_the_longest_local_part_that_names_a_trigger_wins(
    db: Database, book: AddressBook
) -> None:
    db.add("u/alice/short", "a")
    longer = db.add("u/alice/long", "a+b")

    addressee = await book.addressee("a+b+k=v@gw.example")

    assert addressee is not None
    assert (addressee.trigger, addressee.extra_args) == (longer, {"k": "v"})


async def test_an_unknown_local_part_names_nothing(db: Database, book: AddressBook) -> None:
    db.add("u/alice/orders", "orders")

    assert await book.addressee("invoices@gw.example") is None


async def test_the_addresses_are_kept_for_max_age_then_read_again(
    db: Database, book: AddressBook, clock: Clock
) -> None:
    await book.addressee("orders@gw.example")
    db.add("u/alice/orders", "orders")

    clock.now = 29.0
    cached = await book.addressee("orders@gw.example")
    clock.now = 30.0
    reread = await book.addressee("orders@gw.example")

    assert cached is None
    assert reread is not None
    assert db.listings == 2


async def test_refresh_reads_again_at_most_once_per_min_refresh(
    db: Database, book: AddressBook, clock: Clock
) -> None:
    await book.addressee("orders@gw.example")
    db.add("u/alice/orders", "orders")

    clock.now = 0.5
    await book.refresh()
    too_soon = await book.addressee("orders@gw.example")
    clock.now = 1.0
    await book.refresh()
    found = await book.addressee("orders@gw.example")

    assert too_soon is None
    assert found is not None
    assert db.listings == 2


async def test_an_addressee_loads_its_triggers_current_row(db: Database, book: AddressBook) -> None:
    db.add("u/alice/orders", "orders", mode="enabled")
    addressee = await book.addressee("orders@gw.example")
    assert addressee is not None
    db.triggers[0]["mode"] = "disabled"

    target = await addressee.load(cast(Any, db))

    assert target is not None
    assert target.row["mode"] == "disabled"
    assert not target.accepts_mail


async def test_a_deleted_trigger_loads_nothing(db: Database, book: AddressBook) -> None:
    db.add("u/alice/orders", "orders")
    addressee = await book.addressee("orders@gw.example")
    assert addressee is not None
    db.triggers.clear()

    assert await addressee.load(cast(Any, db)) is None


def token(workspace: str = "ops", scopes: list[str] | None = None) -> dict[str, Any]:
    return {
        "workspace_id": workspace,
        "owner": "u/alice",
        "email": "alice@example.com",
        "scopes": ["run:script/f/ops/intake"] if scopes is None else scopes,
    }


async def test_a_default_address_runs_its_script_as_the_tokens_owner(
    db: Database, book: AddressBook
) -> None:
    db.tokens[token_hash(TOKEN)] = token()
    address = default_address("ops", "f/ops/intake", TOKEN, DOMAIN)

    addressee = await book.addressee(address.upper())
    assert addressee is not None
    target = await addressee.load(cast(Any, db))

    assert address.startswith("f/ops/intake+")
    assert target is not None
    assert target.trigger == TriggerRef("email", "ops", "f/ops/intake")
    assert {k: target.row[k] for k in ("script_path", "is_flow", "permissioned_as", "email")} == {
        "script_path": "f/ops/intake",
        "is_flow": False,
        "permissioned_as": "u/alice",
        "email": "alice@example.com",
    }
    assert target.accepts_mail


async def test_a_default_address_carries_extra_args_after_its_code(book: AddressBook) -> None:
    local = default_address("ops", "f/ops/intake", TOKEN, DOMAIN).split("@")[0]

    addressee = await book.addressee(f"{local}+ref=7@{DOMAIN}")

    assert addressee is not None
    assert (addressee.token, addressee.extra_args) == (TOKEN, {"ref": "7"})


async def test_a_default_address_of_a_flow_names_a_flow(book: AddressBook) -> None:
    addressee = await book.addressee(
        default_address("ops", "f/ops/pipeline", TOKEN, DOMAIN, is_flow=True)
    )

    assert addressee is not None and addressee.is_flow


@pytest.mark.parametrize(
    "stored",
    [
        None,
        token(workspace="other"),
        token(scopes=["run:script/f/ops/other"]),
        {**token(), "owner": "g/ops"},
    ],
)
async def test_a_default_address_needs_a_token_of_the_workspace_that_may_run_the_script(
    db: Database, book: AddressBook, stored: dict[str, Any] | None
) -> None:
    if stored is not None:
        db.tokens[token_hash(TOKEN)] = stored
    addressee = await book.addressee(default_address("ops", "f/ops/intake", TOKEN, DOMAIN))
    assert addressee is not None

    assert await addressee.load(cast(Any, db)) is None


@pytest.mark.parametrize("scopes", [None, ["jobs:run"], ["jobs:run:scripts:f/ops/intake"]])
async def test_broader_run_scopes_also_allow_a_default_address(
    db: Database, book: AddressBook, scopes: list[str] | None
) -> None:
    db.tokens[token_hash(TOKEN)] = {**token(), "scopes": scopes}
    addressee = await book.addressee(default_address("ops", "f/ops/intake", TOKEN, DOMAIN))
    assert addressee is not None

    assert await addressee.load(cast(Any, db)) is not None


@pytest.mark.parametrize(
    "local",
    ["f/ops/intake+notbase32!", "f/ops/other+{code}", "f/ops/intake+{code}x", "f/ops/intake+"],
)
async def test_a_mangled_default_address_names_nothing(book: AddressBook, local: str) -> None:
    code = default_address("ops", "f/ops/intake", TOKEN, DOMAIN).split("@")[0].split("+")[1]

    assert await book.addressee(f"{local.format(code=code)}@{DOMAIN}") is None
