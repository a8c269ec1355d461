"""Typed settings: the only module that reads ``os.environ``.

Each setting is declared once, with its type, default, environment variable and bounds. A
deployed function (``AWS_LAMBDA_FUNCTION_NAME`` is set) refuses to start with what only the local
runtime may use: injected faults, webhooks to loopback hosts, the published local API key.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from chalicelib.errors import ConfigurationError
from chalicelib.webhook_targets import Policy

# Names the Chalice decorators need at import time; kept here so nothing else reads the env.
JOBS_QUEUE_NAME = os.environ.get("JOBS_QUEUE", "imgcls-jobs")
DEAD_LETTER_QUEUE_NAME = f"{JOBS_QUEUE_NAME}-dlq"
INGEST_QUEUE_NAME = os.environ.get("INGEST_QUEUE", "imgcls-ingest")
WEBHOOKS_QUEUE_NAME = os.environ.get("WEBHOOKS_QUEUE", "imgcls-webhooks")
TOPIC_NAME = os.environ.get("JOB_EVENTS_TOPIC", "imgcls-job-events")
# The topic's own queue for the fan-out function: batches, retries and a DLQ that SNS → Lambda
# would not give.
NOTIFY_QUEUE_NAME = os.environ.get("NOTIFY_QUEUE", "imgcls-notify")

TENANT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # tenants name S3 prefixes too
LOCAL_API_KEY = "local-dev-key-change-me"  # printed by `make run`; never valid when deployed
MIB = 1024 * 1024

_PACKAGED_MODEL_DIR = Path(__file__).resolve().parent / "model"
_SOURCE_MODEL_DIR = Path(__file__).resolve().parent.parent / "model"


def default_model_dir() -> Path:
    """The model staged inside the Lambda package, else the repository's ``model/``."""
    if (_PACKAGED_MODEL_DIR / "manifest.json").exists():
        return _PACKAGED_MODEL_DIR
    return _SOURCE_MODEL_DIR


def parse_api_keys(raw: object) -> dict[str, str]:
    """Parse ``tenant:key,tenant:key`` into ``{key: tenant}``; refuse malformed or short keys."""
    if isinstance(raw, Mapping):
        return dict(raw)
    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in str(raw).split(","))):
        tenant, sep, key = entry.partition(":")
        if not sep or not TENANT_NAME.match(tenant.strip()) or len(key.strip()) < 16:
            raise ValueError(
                "API_KEYS must be 'tenant:key,...': tenants of 1-64 letters, digits, '.', '_' "
                "or '-', and keys of at least 16 characters"
            )
        keys[key.strip()] = tenant.strip()
    return keys


def _host_set(raw: object) -> frozenset[str]:
    if isinstance(raw, str):
        return frozenset(h.strip().lower() for h in raw.split(",") if h.strip())
    return frozenset(str(h).lower() for h in raw or ())  # type: ignore[attr-defined]


def _is_loopback(host: str) -> bool:
    """Whether an allow-list entry (``host`` or ``host:port``) names this machine, however it is
    spelled: ``localhost``, ``127.1``, ``0.0.0.0``, ``[::1]:8080``, ``::ffff:127.0.0.1``."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name in ("localhost", "localhost.localdomain") or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        try:  # the shorthand forms the C resolver accepts: 127.1, 0x7f.1, 2130706433
            ip = ipaddress.ip_address(socket.inet_aton(name))
        except OSError:
            return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


ApiKeys = Annotated[dict[str, str], BeforeValidator(parse_api_keys)]
Hosts = Annotated[frozenset[str], BeforeValidator(_host_set)]
Ports = Annotated[
    frozenset[int],
    BeforeValidator(
        lambda raw: [p for p in raw.split(",") if p.strip()] if isinstance(raw, str) else raw
    ),
]


def _env(name: str, default: Any, **bounds: Any) -> Any:
    return Field(default, validation_alias=name, **bounds)


class Settings(BaseModel):
    """Everything configurable, with defaults that suit the local runtime."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    region: str = Field(
        "us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    endpoint_url: str | None = _env("AWS_ENDPOINT_URL", None)
    # botocore's per-service overrides: LocalStack for S3, SQS and SNS with DynamoDB on moto, say.
    endpoint_url_s3: str | None = _env("AWS_ENDPOINT_URL_S3", None)
    endpoint_url_sqs: str | None = _env("AWS_ENDPOINT_URL_SQS", None)
    endpoint_url_sns: str | None = _env("AWS_ENDPOINT_URL_SNS", None)
    endpoint_url_dynamodb: str | None = _env("AWS_ENDPOINT_URL_DYNAMODB", None)
    localstack_host: str | None = _env("LOCALSTACK_HOST", None)
    lambda_function: str | None = _env("AWS_LAMBDA_FUNCTION_NAME", None)
    bucket: str = _env("IMAGES_BUCKET", "imgcls-images")
    table: str = _env("JOBS_TABLE", "imgcls-jobs")
    jobs_queue: str = _env("JOBS_QUEUE", JOBS_QUEUE_NAME)
    jobs_queue_url: str | None = _env("JOBS_QUEUE_URL", None)
    topic_arn: str | None = _env("JOB_EVENTS_TOPIC_ARN", None)
    topic_name: str = _env("JOB_EVENTS_TOPIC", TOPIC_NAME)
    tenants_table: str = _env("TENANTS_TABLE", "imgcls-tenants")
    webhooks_queue: str = _env("WEBHOOKS_QUEUE", WEBHOOKS_QUEUE_NAME)
    webhooks_queue_url: str | None = _env("WEBHOOKS_QUEUE_URL", None)
    api_keys: ApiKeys = _env("API_KEYS", {})
    model_dir: Path = Field(default_factory=default_model_dir, validation_alias="MODEL_DIR")
    max_image_bytes: int = _env("MAX_IMAGE_BYTES", 4 * MIB, ge=1)
    max_image_pixels: int = _env("MAX_IMAGE_PIXELS", 50_000_000, ge=1)
    image_url_ttl_s: int = _env("IMAGE_URL_TTL_SECONDS", 300, ge=1, le=7 * 86400)
    max_upload_bytes: int = _env("MAX_UPLOAD_BYTES", 25 * MIB, ge=1)
    upload_url_ttl_s: int = _env("UPLOAD_URL_TTL_SECONDS", 900, ge=1, le=7 * 86400)
    max_batch_images: int = _env("MAX_BATCH_IMAGES", 50, ge=1, le=500)
    retention_days: int = _env("RETENTION_DAYS", 30, ge=1)
    # Each tenant's token bucket (chalicelib/rate_limits.py); infra.keys sets a tenant's own.
    rate_limit_rps: float = _env("RATE_LIMIT_RPS", 50.0, gt=0, le=10_000)
    rate_limit_burst: int = _env("RATE_LIMIT_BURST", 100, ge=1, le=100_000)
    # A tenant's unfinished work at once (chalicelib/pending_caps.py).
    max_pending_jobs: int = _env("MAX_PENDING_JOBS", 1000, ge=1)
    max_pending_pixels: int = _env("MAX_PENDING_PIXELS", 4_000_000_000, ge=1)
    webhook_allow_hosts: Hosts = _env("WEBHOOK_ALLOW_HOSTS", frozenset())
    # The ports of this machine's own services, refused as webhook targets on any local address
    # (the local runtime sets its emulator's and API's: a webhook to the emulator's admin API
    # could reset it).
    webhook_refuse_ports: Ports = _env("WEBHOOK_REFUSE_PORTS", frozenset())
    webhook_max_attempts: int = _env("WEBHOOK_MAX_ATTEMPTS", 6, ge=1, le=20)
    webhook_base_delay_s: int = _env("WEBHOOK_BASE_DELAY_SECONDS", 30, ge=0, le=900)
    # The whole of one attempt (connect, send, the answer), not each socket read: a receiver
    # trickling a byte every 2 s once held an attempt 40 s.
    webhook_timeout_s: int = _env("WEBHOOK_TIMEOUT_SECONDS", 5, ge=1, le=30)
    # A batch of deliveries starts no attempt that could end after this many seconds; the rest
    # go back to the queue (deliver_webhooks has 60 s; ten slow receivers would need 50).
    webhook_batch_budget_s: int = _env("WEBHOOK_BATCH_BUDGET_SECONDS", 30, ge=1, le=600)
    # This many events in a row failing for good (every attempt) disable a subscription.
    webhook_disable_after: int = _env("WEBHOOK_DISABLE_AFTER", 5, ge=1, le=1000)
    max_webhooks_per_tenant: int = _env("MAX_WEBHOOKS_PER_TENANT", 10, ge=1, le=1000)
    ort_threads: int = _env("ORT_THREADS", 0, ge=0)
    ort_spinning: bool = _env("ORT_SPINNING", False)
    classify_workers: int = _env("CLASSIFY_WORKERS", 4, ge=1, le=32)
    decode_budget_pixels: int = _env("DECODE_BUDGET_PIXELS", 16_000_000, ge=1)
    # Fault injection: read here, wired only by the local runtime (``infra.faults``).
    fault_rate: float = _env("FAULT_RATE", 0.0, ge=0.0, le=1.0)
    crash_rate: float = _env("CRASH_RATE", 0.0, ge=0.0, le=1.0)
    fault_seed: int | None = _env("FAULT_SEED", None)

    def endpoint_for(self, service: str) -> str | None:
        """Where ``service`` is reached: its own ``AWS_ENDPOINT_URL_<SERVICE>``, else
        ``AWS_ENDPOINT_URL``, else AWS (None)."""
        specific: str | None = getattr(self, f"endpoint_url_{service}", None)
        return specific or self.endpoint_url

    @property
    def emulated(self) -> bool:
        """Whether any service is reached at an endpoint of our choosing (an emulator)."""
        return any(self.endpoint_for(s) for s in ("s3", "sqs", "sns", "dynamodb"))

    @property
    def webhook_policy(self) -> Policy:
        """Where webhooks may go."""
        return Policy(allow=self.webhook_allow_hosts, refuse_local_ports=self.webhook_refuse_ports)

    @property
    def deployed(self) -> bool:
        """Running as a Lambda function (not the local runtime, a test or a command)."""
        return self.lambda_function is not None

    @model_validator(mode="after")
    def _refuse_local_only_values_when_deployed(self) -> Settings:
        if not self.deployed:
            return self
        if self.fault_rate or self.crash_rate:
            raise ValueError("FAULT_RATE and CRASH_RATE are for the local runtime only")
        loopback = sorted(h for h in self.webhook_allow_hosts if _is_loopback(h))
        if loopback:
            raise ValueError(f"WEBHOOK_ALLOW_HOSTS must not name loopback hosts: {loopback}")
        if LOCAL_API_KEY in self.api_keys:
            raise ValueError("API_KEYS holds the published local key; issue real keys")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment (``os.environ`` unless given); unset and empty
        variables take the defaults."""
        env = os.environ if env is None else env
        names: set[str] = set()
        for info in cls.model_fields.values():
            alias = info.validation_alias
            choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
            names.update(str(choice) for choice in choices)
        given = {name: env[name] for name in names if env.get(name)}
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ConfigurationError(f"invalid configuration: {problems}") from None
