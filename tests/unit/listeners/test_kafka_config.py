"""Kafka trigger config and resource: refused at write time naming the field, mapped to aiokafka."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import InvalidInput
from gateway.listeners.kafka_config import (
    ConsumerOptions,
    SaslSsl,
    connection_kwargs,
    parse_resource,
    ssl_context,
    validate_trigger,
)
from tests.integration.listeners.kafka_broker import PKI

ROW: dict[str, Any] = {
    "kafka_resource_path": "u/admin/kafka",
    "topics": ["orders"],
    "group_id": "windmill_ws_u_admin_orders",
    "filters": [],
    "filter_logic": "and",
    "auto_offset_reset": "latest",
    "reset_offset": False,
    "auto_commit": True,
    "script_path": "f/jobs/orders",  # other columns of the row are not the config's business
}


def invalid_field(check: Any, value: Any) -> str:
    """The field `check(value)` names in its InvalidInput."""
    with pytest.raises(InvalidInput) as caught:
        check(value)
    return caught.value.field


def test_a_complete_row_is_accepted_with_windmills_defaults() -> None:
    config = validate_trigger(
        {"kafka_resource_path": "u/admin/kafka", "topics": ["a"], "group_id": "g"}
    )

    assert config.topics == ("a",)
    assert (config.auto_offset_reset, config.auto_commit, config.reset_offset) == (
        "latest",
        True,
        False,
    )
    assert (config.filters, config.filter_logic) == ([], "and")


def test_a_topic_listed_twice_is_subscribed_once() -> None:
    assert validate_trigger({**ROW, "topics": ["a", "b", "a"]}).topics == ("a", "b")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"topics": []}, "topics"),
        ({"topics": ["ok", " "]}, "topics[1]"),
        ({"topics": ["orders/eu"]}, "topics[0]"),
        ({"group_id": "  "}, "group_id"),
        ({"group_id": "g" * 256}, "group_id"),
        ({"kafka_resource_path": ""}, "kafka_resource_path"),
        ({"auto_offset_reset": "none"}, "auto_offset_reset"),
        ({"filter_logic": "xor"}, "filter_logic"),
        ({"filters": [{"key": "a", "value": 1}, {"path": "a..b", "value": 1}]}, "filters[1].path"),
        ({"auto_commit": "sometimes"}, "auto_commit"),
    ],
)
def test_a_wrong_trigger_field_is_named(change: dict[str, Any], field: str) -> None:
    assert invalid_field(validate_trigger, {**ROW, **change}) == field


def test_a_missing_trigger_field_is_named() -> None:
    row = {k: v for k, v in ROW.items() if k != "group_id"}

    assert invalid_field(validate_trigger, row) == "group_id"


def test_a_resource_without_security_is_plaintext() -> None:
    resource = parse_resource({"brokers": ["b1:9092", " b2:9092 "]})

    assert resource.brokers == ("b1:9092", "b2:9092")
    assert connection_kwargs(resource) == {
        "bootstrap_servers": ["b1:9092", "b2:9092"],
        "security_protocol": "PLAINTEXT",
    }


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"brokers": []}, "brokers"),
        ({"brokers": ["b1:9092", ""]}, "brokers[1]"),
        ({"brokers": ["b"], "security": {"label": "KERBEROS"}}, "security.label"),
        ({"brokers": ["b"], "security": {}}, "security.label"),
        (
            {"brokers": ["b"], "security": {"label": "SASL_SSL", "mechanism": "GSSAPI"}},
            "security.mechanism",
        ),
        (
            {"brokers": ["b"], "security": {"label": "SASL_PLAINTEXT", "mechanism": "PLAIN"}},
            "security.username",
        ),
        ({"brokers": ["b"], "security": {"label": "SSL", "key": "PEM"}}, "security.certificate"),
        ("b1:9092", "value"),
    ],
)
def test_a_wrong_resource_field_is_named(value: Any, field: str) -> None:
    assert invalid_field(parse_resource, value) == field


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_maps_to_the_mechanism_and_credentials(mechanism: str) -> None:
    security = {"label": "SASL_PLAINTEXT", "mechanism": mechanism, "username": "u", "password": "p"}

    kwargs = connection_kwargs(parse_resource({"brokers": ["b:9092"], "security": security}))

    assert kwargs == {
        "bootstrap_servers": ["b:9092"],
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }


def test_sasl_ssl_maps_to_credentials_and_a_context_trusting_the_given_ca() -> None:
    security = {
        "label": "SASL_SSL",
        "mechanism": "SCRAM-SHA-512",
        "username": "u",
        "password": "p",
        "ca": PKI().ca,
        "certificate": "",  # empty strings count as absent
        "key": "",
    }

    kwargs = connection_kwargs(parse_resource({"brokers": ["b:9093"], "security": security}))

    context = kwargs.pop("ssl_context")
    assert kwargs == {
        "bootstrap_servers": ["b:9093"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    assert trusted_names(context) == ["gateway test CA"]


def test_ssl_maps_to_a_verifying_context_with_the_client_identity() -> None:
    pki = PKI()
    security = {
        "label": "SSL",
        "ca": pki.ca,
        "certificate": pki.client_certificate,
        "key": pki.client_key_encrypted,
        "key_password": pki.client_key_password,
    }

    kwargs = connection_kwargs(parse_resource({"brokers": ["b:9093"], "security": security}))

    context = kwargs["ssl_context"]
    assert kwargs["security_protocol"] == "SSL"
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert trusted_names(context) == ["gateway test CA"]


def test_without_a_ca_the_context_trusts_the_system_authorities() -> None:
    context = ssl_context(SaslSsl(label="SASL_SSL", mechanism="PLAIN", username="u", password="p"))

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert "gateway test CA" not in trusted_names(context)


def test_a_certificate_with_its_key_inside_needs_no_key_field() -> None:
    pki = PKI()
    tls = SaslSsl(
        label="SASL_SSL",
        mechanism="PLAIN",
        username="u",
        password="p",
        certificate=pki.client_certificate + pki.client_key,
    )

    assert isinstance(ssl_context(tls), ssl.SSLContext)


def test_the_client_identity_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pki = PKI()

    ssl_context(
        SaslSsl(
            label="SASL_SSL",
            mechanism="PLAIN",
            username="u",
            password="p",
            certificate=pki.client_certificate,
            key=pki.client_key,
        )
    )

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("security", "field"),
    [
        ({"ca": "not a certificate"}, "security.ca"),
        ({"certificate": "not a certificate", "key": PKI().client_key}, "security.certificate"),
        (
            {
                "certificate": PKI().client_certificate,
                "key": PKI().client_key_encrypted,
                "key_password": "wrong",
            },
            "security.certificate",
        ),
    ],
)
def test_pem_strings_that_do_not_load_are_named(security: dict[str, str], field: str) -> None:
    resource = parse_resource({"brokers": ["b"], "security": {"label": "SSL", **security}})

    assert invalid_field(connection_kwargs, resource) == field


def test_consumer_options_map_to_aiokafka_arguments() -> None:
    options = ConsumerOptions(max_batch=7, session_timeout_ms=2_000, heartbeat_interval_ms=500)

    assert options.consumer_kwargs() == {
        "max_poll_records": 7,
        "session_timeout_ms": 2_000,
        "heartbeat_interval_ms": 500,
        "rebalance_timeout_ms": 60_000,
        "max_poll_interval_ms": 300_000,
    }


def trusted_names(context: ssl.SSLContext) -> list[str]:
    """The common names of the authorities `context` trusts."""
    names: list[str] = []
    for certificate in context.get_ca_certs():
        subject = certificate["subject"]
        assert isinstance(subject, tuple)
        names += [pair[1] for rdn in subject for pair in rdn if pair[0] == "commonName"]
    return names
