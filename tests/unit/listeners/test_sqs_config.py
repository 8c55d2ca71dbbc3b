"""SQS trigger config, resources, options and the web identity request, without the network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.errors import InvalidInput
from gateway.listeners.sqs_config import (
    AwsCredentialsResource,
    AwsOidcResource,
    SqsOptions,
    credentials_from_sts,
    parse_resource,
    validate_trigger,
    web_identity_request,
)

QUEUE = "https://sqs.eu-west-3.amazonaws.com/123456789012/orders"
ROW = {"queue_url": QUEUE, "aws_resource_path": "u/ops/aws"}


def test_a_row_with_defaults_is_valid() -> None:
    config = validate_trigger({**ROW, "aws_auth_resource_type": None, "message_attributes": None})

    assert config.queue_url == QUEUE
    assert config.aws_auth_resource_type == "credentials"
    assert config.message_attributes is None
    assert not config.is_fifo


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        ({"queue_url": "sqs/orders"}, "queue_url"),
        ({"queue_url": "https://sqs.us-east-1.amazonaws.com/"}, "queue_url"),
        ({"aws_resource_path": "  "}, "aws_resource_path"),
        ({"aws_auth_resource_type": "keys"}, "aws_auth_resource_type"),
        ({"message_attributes": ["ok", "AWS.TraceHeader"]}, "message_attributes[1]"),
        ({"message_attributes": ["has space"]}, "message_attributes[0]"),
        ({"message_attributes": ["a..b"]}, "message_attributes[0]"),
    ],
)
def test_a_bad_column_is_named(columns: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_trigger({**ROW, **columns})
    assert raised.value.field == field


def test_message_attribute_names_all_prefixes_and_duplicates() -> None:
    assert validate_trigger({**ROW, "message_attributes": []}).message_attributes is None
    assert validate_trigger(
        {**ROW, "message_attributes": ["color", "trace.*", "color"]}
    ).message_attributes == ("color", "trace.*")
    assert validate_trigger({**ROW, "message_attributes": ["color", "All"]}).message_attributes == (
        "All",
    )


def test_the_region_comes_from_the_resource_else_the_queue_url() -> None:
    keys = {"awsAccessKeyId": "AKIA", "awsSecretAccessKey": "secret"}
    config = validate_trigger(ROW)

    assert config.region(parse_resource({**keys, "region": "us-west-2"}, "credentials")) == (
        "us-west-2"
    )
    assert config.region(parse_resource(keys, "credentials")) == "eu-west-3"
    legacy = validate_trigger({**ROW, "queue_url": "https://ap-south-1.queue.amazonaws.com/1/q"})
    assert legacy.region(parse_resource(keys, "credentials")) == "ap-south-1"
    local = validate_trigger({**ROW, "queue_url": "http://127.0.0.1:25000/1/q.fifo"})
    assert local.region(parse_resource(keys, "credentials")) == "us-east-1"
    assert local.is_fifo


def test_resources_of_both_auth_types() -> None:
    keys = parse_resource(
        {"awsAccessKeyId": "AKIA", "awsSecretAccessKey": "secret", "endpoint_url": ""},
        "credentials",
    )
    role = parse_resource({"roleArn": "arn:aws:iam::1:role/r", "region": "eu-west-1"}, "oidc")

    assert isinstance(keys, AwsCredentialsResource)
    assert (keys.access_key_id, keys.secret_access_key, keys.endpoint_url) == (
        "AKIA",
        "secret",
        None,
    )
    assert "secret" not in repr(keys)
    assert isinstance(role, AwsOidcResource)
    assert (role.role_arn, role.region) == ("arn:aws:iam::1:role/r", "eu-west-1")


def test_a_credentials_resource_without_its_secret_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_resource({"awsAccessKeyId": "AKIA"}, "credentials")
    assert raised.value.field == "resource.awsSecretAccessKey"


def test_options_read_the_standard_aws_variables() -> None:
    options = SqsOptions.from_environ(
        {
            "AWS_ENDPOINT_URL": "http://shared:1",
            "AWS_ENDPOINT_URL_STS": "http://sts:2",
            "AWS_WEB_IDENTITY_TOKEN_FILE": "/run/token",
            "AWS_ROLE_ARN": "arn:aws:iam::1:role/default",
        }
    )

    assert (options.endpoint_url, options.sts_endpoint_url) == ("http://shared:1", "http://sts:2")
    assert options.web_identity_token_file == "/run/token"
    assert options.role_arn == "arn:aws:iam::1:role/default"
    assert options.role_session_name == "gateway"
    assert (options.wait_time_s, options.max_messages) == (20, 10)
    assert SqsOptions.from_environ({}).endpoint_url is None


@pytest.mark.parametrize(
    "wrong",
    [
        {"wait_time_s": 21},
        {"max_messages": 11},
        {"visibility_timeout_s": 10, "extend_every_s": 10},
    ],
)
def test_options_out_of_range_are_refused(wrong: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SqsOptions(**wrong)


def test_the_web_identity_request_names_role_session_token_and_duration() -> None:
    request = web_identity_request("arn:aws:iam::1:role/r", " eyJ.token \n", "gateway", 900)

    assert request == {
        "RoleArn": "arn:aws:iam::1:role/r",
        "RoleSessionName": "gateway",
        "WebIdentityToken": "eyJ.token",
        "DurationSeconds": 900,
    }


def test_an_empty_token_file_is_refused() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        web_identity_request("arn:aws:iam::1:role/r", "\n", "gateway", 900)


def test_credentials_are_read_from_the_sts_answer() -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    credentials = credentials_from_sts(
        {
            "Credentials": {
                "AccessKeyId": "ASIA",
                "SecretAccessKey": "secret",
                "SessionToken": "session",
                "Expiration": expires,
            }
        }
    )

    assert (credentials.access_key_id, credentials.session_token) == ("ASIA", "session")
    assert credentials.expires_at == expires
    assert "secret" not in repr(credentials) and "session" not in repr(credentials)
    assert credentials.expire_within(300, expires - timedelta(seconds=299))
    assert not credentials.expire_within(300, expires - timedelta(seconds=301))


def test_an_sts_answer_without_credentials_is_an_error() -> None:
    with pytest.raises(ValueError, match="without usable credentials"):
        credentials_from_sts({"Credentials": {"AccessKeyId": "ASIA"}})
