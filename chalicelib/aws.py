"""One factory for boto3 clients: region and endpoint come from settings, clients are lazy."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config

from chalicelib import telemetry
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


# Standard retries (exponential backoff with a retry quota), not "adaptive": the adaptive client-
# side rate limiter costs 0.5-1 ms of CPU on every call, billed as Lambda time, to throttle a
# caller that our reserved concurrency already bounds. No client-side parameter validation: AWS
# validates every request itself, and checking it here again cost 0.4 ms a call (measured with
# 200 GetItem calls each way against the local emulator: 2.5 ms of client CPU per call before,
# 1.6 ms after).
_BOTO_CONFIG = Config(
    retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, parameter_validation=False
)
# For checks that must answer quickly: one try, short timeouts.
QUICK = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=2)
# Presigned URLs and POSTs signed with SigV4: an expiry in seconds, valid in every region.
_S3_CONFIG = Config(signature_version="s3v4")
# What an emulator is given when the machine has no credentials at all: moto accepts any, and
# LocalStack checks presigned URLs against the secret "test". Only ever with an endpoint URL: AWS
# itself gets the credentials the environment provides, or none.
EMULATOR_CREDENTIALS = ("test", "test")


class AwsClients:
    """Creates each client on first use, never at import time (so moto can be active first).

    ``AWS_ENDPOINT_URL`` (moto's server, LocalStack, or unset for AWS) applies to every client
    that has no ``AWS_ENDPOINT_URL_<SERVICE>`` of its own, with dummy credentials when none are
    configured; with ``LOCALSTACK_HOST`` and no endpoint, ``localstack-client`` says where
    LocalStack is.
    """

    def __init__(self, settings: Settings, *, config: Config | None = None) -> None:
        self._settings = settings
        self._config = _BOTO_CONFIG.merge(config) if config else _BOTO_CONFIG
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._build(service)
            return self._clients[service]

    def _build(self, service: str) -> Any:
        s = self._settings
        endpoint = s.endpoint_for(service)
        if s.localstack_host and not endpoint:
            from localstack_client.config import get_service_endpoint

            # Only its address: the client itself is built as for any endpoint (same config, so
            # presigned URLs are SigV4, and credentials LocalStack checks them against).
            endpoint = get_service_endpoint(service)
        session = boto3.session.Session(region_name=s.region)
        if endpoint and session.get_credentials() is None:
            key_id, secret = EMULATOR_CREDENTIALS
            session = boto3.session.Session(
                region_name=s.region, aws_access_key_id=key_id, aws_secret_access_key=secret
            )
        make: Any = session.client  # typed per service by the properties below
        config = self._config.merge(_S3_CONFIG) if service == "s3" else self._config
        # An explicit endpoint_url would hide botocore's own per-service variables, so each
        # service's endpoint is resolved here, from settings, the one reader of the environment.
        client = make(service, endpoint_url=endpoint, config=config)
        client.meta.events.register("before-call", _count_call)
        return client

    @property
    def s3(self) -> S3Client:
        """S3 client."""
        return cast("S3Client", self._client("s3"))

    @property
    def sqs(self) -> SQSClient:
        """SQS client."""
        return cast("SQSClient", self._client("sqs"))

    @property
    def dynamodb(self) -> DynamoDBClient:
        """DynamoDB client."""
        return cast("DynamoDBClient", self._client("dynamodb"))

    @property
    def sns(self) -> SNSClient:
        """SNS client."""
        return cast("SNSClient", self._client("sns"))


def _count_call(event_name: str, **_: Any) -> None:
    """Every AWS call, by service and operation (``before-call.dynamodb.GetItem``): what a job
    costs is counted, not estimated (``/metrics`` locally, ``make bench``)."""
    _event, service, operation = event_name.split(".", 2)
    telemetry.count_call(service, operation)
