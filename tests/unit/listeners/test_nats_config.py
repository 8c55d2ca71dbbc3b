"""NATS trigger and resource configuration: defaults, shapes, and errors naming the field."""

from __future__ import annotations

from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest

from gateway.errors import InvalidInput
from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.nats import (
    JetStreamListener,
    NatsListener,
    PipelinedJetStreamListener,
    listener_factory,
    pull_size,
)
from gateway.listeners.nats_config import (
    CredsAuth,
    JwtAuth,
    NkeyAuth,
    NoAuth,
    TokenAuth,
    UserPasswordAuth,
    parse_resource,
    validate_trigger,
)
from gateway.store import Store

CORE = {"nats_resource_path": "u/alice/nats", "subjects": ["orders.*"], "use_jetstream": False}
JETSTREAM = {**CORE, "use_jetstream": True, "stream_name": "ORDERS", "consumer_name": "gateway"}


def test_a_core_trigger_promises_at_most_once_and_jetstream_at_least_once() -> None:
    assert validate_trigger(CORE).delivery_guarantee == "at-most-once"
    assert validate_trigger(JETSTREAM).delivery_guarantee == "at-least-once"
    assert NatsListener.delivery_guarantee == "at-most-once"
    assert JetStreamListener.delivery_guarantee == "at-least-once"


def test_stored_nulls_blank_names_and_unknown_columns_are_accepted() -> None:
    row = {**CORE, "use_jetstream": None, "stream_name": "", "consumer_name": None, "mode": "x"}

    config = validate_trigger(row)

    assert (config.subjects, config.use_jetstream, config.stream_name) == (
        ["orders.*"],
        False,
        None,
    )


@pytest.mark.parametrize(
    ("row", "field", "match"),
    [
        ({**CORE, "subjects": []}, "subjects", "at least 1"),
        ({**CORE, "subjects": ["orders", "a..b"]}, "subjects.1", "not a subject"),
        ({**CORE, "subjects": ["a b"]}, "subjects.0", "not a subject"),
        ({**CORE, "subjects": ["a.>.b"]}, "subjects.0", "'>' the last token"),
        ({**CORE, "subjects": ["a.b*"]}, "subjects.0", "whole token"),
        ({**JETSTREAM, "stream_name": None}, "stream_name", "required when use_jetstream"),
        ({**JETSTREAM, "consumer_name": ""}, "consumer_name", "required when use_jetstream"),
        ({**JETSTREAM, "consumer_name": "a.b"}, "consumer_name", "without spaces"),
        ({**CORE, "nats_resource_path": ""}, "nats_resource_path", "required"),
        ({key: value for key, value in CORE.items() if key != "subjects"}, "subjects", "required"),
    ],
)
def test_an_unusable_trigger_names_the_field(row: dict[str, Any], field: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as raised:
        validate_trigger(row)

    assert raised.value.field == field


@pytest.mark.parametrize(
    ("auth", "kind"),
    [
        (None, NoAuth),
        ("none", NoAuth),
        ({"label": "NO_AUTH"}, NoAuth),
        ({"label": "TOKEN", "token": "t"}, TokenAuth),
        ({"token": "t"}, TokenAuth),
        ({"label": "USER_PASSWORD", "user": "u", "password": "p"}, UserPasswordAuth),
        ({"user": "u", "password": "p"}, UserPasswordAuth),
        ({"label": "NKEY", "seed": "SUA"}, NkeyAuth),
        ({"seed": "SUA"}, NkeyAuth),
        ({"label": "JWT", "jwt": "eyJ", "seed": "SUA"}, JwtAuth),
        ({"jwt": "eyJ", "seed": "SUA"}, JwtAuth),
        ({"creds": "-----BEGIN NATS USER JWT-----"}, CredsAuth),
    ],
)
def test_windmill_and_bare_auth_shapes_are_understood(auth: Any, kind: type) -> None:
    resource = parse_resource({"servers": ["n:4222"], "auth": auth})

    assert isinstance(resource.auth, kind)


def test_bare_servers_become_nats_urls_and_tls_urls_ask_for_tls() -> None:
    plain = parse_resource({"servers": ["n1:4222", " nats://n2:4222 "]})
    secure = parse_resource({"servers": ["tls://n1:4222"]})
    required = parse_resource({"servers": ["n1:4222"], "require_tls": True})

    assert plain.urls() == ["nats://n1:4222", "nats://n2:4222"]
    assert (plain.wants_tls(), secure.wants_tls(), required.wants_tls()) == (False, True, True)


def test_secrets_stay_out_of_the_repr() -> None:
    resource = parse_resource({"servers": ["n:4222"], "auth": {"user": "u", "password": "hunter2"}})

    assert "hunter2" not in repr(resource)


@pytest.mark.parametrize(
    ("value", "field", "match"),
    [
        ({"servers": []}, "resource.servers", "at least 1"),
        ({"servers": ["a b"]}, "resource.servers.0", "not a server address"),
        ({}, "resource.servers", "required"),
        ({"servers": ["n"], "auth": {"label": "TOKEN"}}, "resource.auth.TOKEN.token", "required"),
        ({"servers": ["n"], "auth": {"api_key": "k"}}, "resource.auth", "cannot tell the kind"),
        ({"servers": ["n"], "auth": {"label": "KERBEROS"}}, "resource.auth", "KERBEROS"),
    ],
)
def test_an_unusable_resource_names_the_field(value: Any, field: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as raised:
        parse_resource(value)

    assert raised.value.field == field


@pytest.mark.parametrize(
    ("dialect", "pulling"),
    [("postgresql", PipelinedJetStreamListener), ("sqlite", JetStreamListener)],
)
def test_the_factory_builds_the_listener_the_row_asks_for(dialect: str, pulling: type) -> None:
    # The factory only keeps the store, and reads its dialect.
    store: Store = SimpleNamespace(dialect=dialect)  # type: ignore[assignment]
    trigger = TriggerRef("nats", "ws", "u/alice/t")
    factory = listener_factory(store)

    core = factory(Lease(trigger, "me", MappingProxyType(CORE)))
    jetstream = factory(Lease(trigger, "me", MappingProxyType(JETSTREAM)))

    assert type(core) is NatsListener
    assert type(jetstream) is pulling


@pytest.mark.parametrize(
    ("auth", "options"),
    [
        ("none", {}),
        ({"token": "t"}, {"token": "t"}),
        ({"user": "u", "password": "p"}, {"user": "u", "password": "p"}),
        ({"seed": "SUAX"}, {"nkeys_seed_str": "SUAX"}),
        ({"creds": "whole file"}, {"creds": "whole file"}),
    ],
)
def test_auth_becomes_the_client_connect_options(auth: Any, options: dict[str, str]) -> None:
    assert parse_resource({"servers": ["n"], "auth": auth}).credentials() == options


def test_a_jwt_and_its_seed_become_the_text_of_a_creds_file() -> None:
    resource = parse_resource({"servers": ["n"], "auth": {"jwt": " eyJhbGc ", "seed": "SUAX"}})

    creds = resource.credentials()["creds"]

    assert creds.index("BEGIN NATS USER JWT-----\neyJhbGc\n") < creds.index(
        "BEGIN USER NKEY SEED-----\nSUAX\n"
    )


@pytest.mark.parametrize(
    ("max_batch", "max_ack_pending", "in_flight", "pulled"),
    [
        (1000, 1000, 2, 500),
        (1000, 1000, 1, 1000),
        (100, 1000, 2, 100),
        (1000, None, 2, 1000),
        (1000, -1, 2, 1000),
        (1000, 1, 2, 1),
    ],
)
def test_a_fetch_keeps_the_batches_in_flight_within_max_ack_pending(
    max_batch: int, max_ack_pending: int | None, in_flight: int, pulled: int
) -> None:
    assert pull_size(max_batch, max_ack_pending, in_flight) == pulled
