"""The LocalStack lane: LocalStack (S3, SQS, SNS) and moto's server (DynamoDB) started here, and
``python -m infra.local`` pointed at them by configuration alone, as a user would point it.

LocalStack runs from the interpreter ``LOCALSTACK_PYTHON`` names (``make localstack-test`` and
``make test`` build ``build/localstack-venv`` and set it; that path is also tried when it is
unset). When LocalStack cannot run, every test here fails with the reason: never a skip.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from chalicelib.aws import AwsClients
from chalicelib.settings import Settings
from infra.emulator import emulator_process
from infra.localstack import DEFAULT_PYTHON, LocalStackError, localstack_process
from tests.runtime import Runtime, start_runtime

KEY = "localstack-tenant-key-0123456789"
TENANT = "tenant"  # start_runtime's tenant for KEY
# Each runtime's own resources: the queues, topic, bucket and tables a runtime polls and writes.
RESOURCES = {
    "IMAGES_BUCKET": "images",
    "JOBS_TABLE": "jobs",
    "TENANTS_TABLE": "tenants",
    "JOBS_QUEUE": "jobs",
    "INGEST_QUEUE": "ingest",
    "NOTIFY_QUEUE": "notify",
    "WEBHOOKS_QUEUE": "webhooks",
    "JOB_EVENTS_TOPIC": "job-events",
}


@dataclass(frozen=True)
class Lane:
    """Where LocalStack and moto listen, and the configuration that sends the service there."""

    localstack: str
    dynamodb: str

    def env(self, name: str | None = None) -> dict[str, str]:
        """The runtime's environment: every service at LocalStack but DynamoDB, at moto. With a
        ``name``, resources of that name, so a second runtime never polls the first one's
        queues; without, the names ``make run`` uses."""
        env = {
            "AWS_ENDPOINT_URL": self.localstack,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb,
            # LocalStack's credentials: it checks presigned URLs against the secret "test".
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }
        if name:
            env |= {var: f"imgcls-{name}-{what}" for var, what in RESOURCES.items()}
        return env


def localstack_python() -> str:
    """``LOCALSTACK_PYTHON``, else where ``make localstack-test`` puts LocalStack."""
    return os.environ.get("LOCALSTACK_PYTHON") or str(DEFAULT_PYTHON)


@pytest.fixture(scope="package")
def lane() -> Iterator[Lane]:
    """LocalStack and moto's server for this package's tests; both stopped after them (not at
    the end of the whole run: the tests that follow get the machine to themselves)."""
    with contextlib.ExitStack() as stack:
        try:
            localstack = stack.enter_context(localstack_process(python=localstack_python()))
        except LocalStackError as exc:
            pytest.fail(f"the LocalStack lane cannot run: {exc}", pytrace=False)
        moto = stack.enter_context(emulator_process())
        yield Lane(localstack=localstack.endpoint, dynamodb=moto.endpoint)


@pytest.fixture(scope="package")
def runtime(lane: Lane) -> Iterator[Runtime]:
    """``make run`` against the lane, with the resource names it uses by default."""
    started = start_runtime(KEY, env=lane.env())
    yield started
    started.stop()


@pytest.fixture(scope="package")
def aws(lane: Lane) -> AwsClients:
    """The project's own clients, configured as the runtime is: what the tests check with."""
    return AwsClients(Settings.from_env(lane.env()))


@pytest.fixture(scope="package")
def settings(lane: Lane) -> Settings:
    """The runtime's settings (resource names)."""
    return Settings.from_env(lane.env())


def eventually[T](check: Callable[[], T | None], *, timeout: float = 60, what: str = "") -> T:
    """``check()``'s first truthy value, asked every 0.3 s for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout}s: {what or check}")
