"""GCP trigger config and `gcloud` resources, checked when they are written."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidInput
from gateway.listeners.gcp_config import parse_resource, push_path, validate_trigger

ROW = {"gcp_resource_path": "u/ops/gcloud", "topic_id": "orders", "subscription_id": "orders-gw"}
KEY = {
    "type": "service_account",
    "project_id": "acme",
    "private_key_id": "abc",
    "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----\\n",
    "client_email": "gw@acme.iam.gserviceaccount.com",
}


def test_a_row_with_its_nullable_columns_null_takes_the_defaults() -> None:
    config = validate_trigger(
        {
            **ROW,
            "delivery_type": None,
            "delivery_config": None,
            "subscription_mode": None,
            "auto_acknowledge_msg": None,
            "ack_deadline": None,
        }
    )

    assert (config.delivery_type, config.subscription_mode) == ("pull", "create_update")
    assert config.auto_acknowledge_msg is True
    assert config.ack_deadline is None
    assert config.topic_path("acme") == "projects/acme/topics/orders"
    assert config.subscription_path("acme") == "projects/acme/subscriptions/orders-gw"


def test_full_names_are_kept_whatever_the_project() -> None:
    config = validate_trigger(
        {
            **ROW,
            "topic_id": "projects/other/topics/orders",
            "subscription_id": "projects/other/subscriptions/s-1",
        }
    )

    assert config.topic_path("acme") == "projects/other/topics/orders"
    assert config.subscription_path("acme") == "projects/other/subscriptions/s-1"


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        ({"topic_id": "ab"}, "topic_id"),
        ({"topic_id": "9orders"}, "topic_id"),
        ({"topic_id": "goog-orders"}, "topic_id"),
        ({"topic_id": "projects/acme/subscriptions/orders"}, "topic_id"),
        ({"subscription_id": "has space"}, "subscription_id"),
        ({"gcp_resource_path": " "}, "gcp_resource_path"),
        ({"ack_deadline": 5}, "ack_deadline"),
        ({"ack_deadline": 601}, "ack_deadline"),
        ({"delivery_type": "push"}, "delivery_config"),
        ({"subscription_mode": "create"}, "subscription_mode"),
    ],
)
def test_a_bad_column_is_named(columns: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_trigger({**ROW, **columns})
    assert raised.value.field == field


def test_a_push_trigger_reads_its_delivery_config() -> None:
    config = validate_trigger(
        {**ROW, "delivery_type": "push", "delivery_config": {"authenticate": True, "audience": ""}}
    )

    assert config.delivery_config is not None
    assert (config.delivery_config.authenticate, config.delivery_config.audience) == (True, None)
    assert push_path("acme", "u/ops/orders") == "/api/gcp/w/acme/u/ops/orders"


def test_a_service_account_key_gets_its_newlines_back() -> None:
    resource = parse_resource(KEY)

    assert resource.private_key == (
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
    )
    assert "MIIB" not in repr(resource)
    info = resource.service_account_info()
    assert info["private_key_id"] == "abc"
    assert info["token_uri"] == "https://oauth2.googleapis.com/token"
    assert "emulator_host" not in info


def test_an_emulator_resource_needs_no_key() -> None:
    resource = parse_resource({"project_id": "test", "emulator_host": "127.0.0.1:8085"})

    assert (resource.project_id, resource.emulator_host) == ("test", "127.0.0.1:8085")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({**KEY, "client_email": ""}, "resource.client_email"),
        ({k: v for k, v in KEY.items() if k != "private_key"}, "resource.private_key"),
        ({k: v for k, v in KEY.items() if k != "project_id"}, "resource.project_id"),
    ],
)
def test_an_incomplete_key_is_refused(value: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_resource(value)
    assert raised.value.field == field
