"""The client factory: per-service endpoints, and every call counted."""

from __future__ import annotations

import pytest

from chalicelib.aws import AwsClients
from chalicelib.settings import Settings
from chalicelib.telemetry import REGISTRY


@pytest.mark.parametrize(
    ("env", "service", "expected"),
    [
        ({}, "dynamodb", None),
        ({"AWS_ENDPOINT_URL": "http://emu:1"}, "dynamodb", "http://emu:1"),
        (
            {"AWS_ENDPOINT_URL": "http://emu:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://ddb:2"},
            "dynamodb",
            "http://ddb:2",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://emu:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://ddb:2"},
            "s3",
            "http://emu:1",
        ),
        ({"AWS_ENDPOINT_URL_SQS": "http://ls:3"}, "sqs", "http://ls:3"),
        ({"AWS_ENDPOINT_URL_SQS": "http://ls:3"}, "sns", None),
    ],
)
def test_each_service_has_its_own_endpoint_or_the_common_one(
    env: dict[str, str], service: str, expected: str | None
) -> None:
    settings = Settings.from_env(env)

    assert settings.endpoint_for(service) == expected
    client = getattr(AwsClients(settings), service)
    default = {
        "s3": "https://s3.amazonaws.com",
        "sqs": "https://sqs.us-east-1.amazonaws.com",
        "sns": "https://sns.us-east-1.amazonaws.com",
        "dynamodb": "https://dynamodb.us-east-1.amazonaws.com",
    }[service]
    assert client.meta.endpoint_url == (expected or default)


def test_every_call_is_counted_by_service_and_operation(moto: None) -> None:
    clients = AwsClients(Settings.from_env({}))
    before = REGISTRY.value("aws_calls", service="dynamodb", operation="ListTables")

    clients.dynamodb.list_tables()
    clients.dynamodb.list_tables()

    assert REGISTRY.value("aws_calls", service="dynamodb", operation="ListTables") == before + 2
