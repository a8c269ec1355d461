"""The bootstrap and one real classification, against LocalStack instead of moto.

Skipped unless a LocalStack answers at ``LOCALSTACK_HOST`` (default localhost:4566), e.g.
``docker run --rm -p 4566:4566 localstack/localstack``; see the README.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from chalicelib.aws import AwsClients
from chalicelib.job_store import OWNER_INDEX
from chalicelib.settings import Settings
from infra.bootstrap import MAX_RECEIVE_COUNT, bootstrap
from tests.localstack.conftest import remove
from tests.localstack.probe import Probe
from tests.photos import CAT, CAT_CLASSES
from tests.runtime import start_runtime

pytestmark = pytest.mark.localstack
KEY = "localstack-tenant-key-0123456789"
LOCALSTACK_ENV = ("AWS_ENDPOINT_URL", "LOCALSTACK_HOST")


def _environment(probe: Probe, names: dict[str, str], how: str) -> dict[str, str]:
    """What a user sets to point the service at LocalStack, one way or the other."""
    env = {
        **names,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    if how == "AWS_ENDPOINT_URL":
        env["AWS_ENDPOINT_URL"] = probe.url
    else:
        env["LOCALSTACK_HOST"] = probe.url.split("://", 1)[1]
    return env


@pytest.fixture(params=["AWS_ENDPOINT_URL", "LOCALSTACK_HOST"])
def environment(
    request: pytest.FixtureRequest,
    localstack: Probe,
    names: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    """LocalStack through either variable, in this process too (localstack-client reads
    ``os.environ``); the resources are removed afterwards."""
    env = _environment(localstack, names, str(request.param))
    for name in [*LOCALSTACK_ENV, *(k for k in os.environ if k.startswith("AWS_"))]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    settings = Settings.from_env(env)
    remove(AwsClients(settings), settings)


def test_bootstrap_creates_the_resources_on_localstack_and_can_run_twice(
    environment: dict[str, str],
) -> None:
    settings = Settings.from_env(environment)
    clients = AwsClients(settings)

    bootstrap(settings, visibility_timeout_s=30, aws=clients)
    created = bootstrap(settings, visibility_timeout_s=30, aws=clients)

    block = clients.s3.get_public_access_block(Bucket=created.bucket)
    assert all(block["PublicAccessBlockConfiguration"].values())
    table = clients.dynamodb.describe_table(TableName=created.table)["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [OWNER_INDEX]
    attributes = clients.sqs.get_queue_attributes(
        QueueUrl=created.jobs_queue_url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == MAX_RECEIVE_COUNT
    assert redrive["deadLetterTargetArn"].endswith(f":{settings.jobs_queue}-dlq")
    assert attributes["VisibilityTimeout"] == "30"
    assert created.topic_arn.endswith(f":{settings.topic_name}")


def test_make_run_against_localstack_classifies_a_real_photo(environment: dict[str, str]) -> None:
    runtime = start_runtime(KEY, env=environment)
    try:
        job = runtime.wait_for(runtime.submit(CAT.read_bytes(), "image/png"), timeout=90)
    finally:
        output = runtime.stop()

    assert job["status"] == "SUCCEEDED", (job, output)
    assert job["predictions"][0]["class_id"] in CAT_CLASSES
    assert job["attempts"] == 1
