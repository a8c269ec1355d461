"""Typed settings: the only module that reads ``os.environ``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chalicelib.errors import ConfigurationError

# Names the Chalice decorators need at import time; kept here so nothing else reads the env.
JOBS_QUEUE_NAME = os.environ.get("JOBS_QUEUE", "imgcls-jobs")
DEAD_LETTER_QUEUE_NAME = f"{JOBS_QUEUE_NAME}-dlq"
INGEST_QUEUE_NAME = os.environ.get("INGEST_QUEUE", "imgcls-ingest")
WEBHOOKS_QUEUE_NAME = os.environ.get("WEBHOOKS_QUEUE", "imgcls-webhooks")
TOPIC_NAME = os.environ.get("JOB_EVENTS_TOPIC", "imgcls-job-events")
# The topic's own queue for the notify function: batches, retries and a DLQ that SNS → Lambda
# would not give.
NOTIFY_QUEUE_NAME = os.environ.get("NOTIFY_QUEUE", "imgcls-notify")

# Where objects land in the bucket: API images, presigned uploads, bulk drops and their results.
IMAGES_PREFIX = "images/"
UPLOADS_PREFIX = "uploads/"
INCOMING_PREFIX = "incoming/"
RESULTS_PREFIX = "results/"

TENANT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # tenants name S3 prefixes too

_PACKAGED_MODEL_DIR = Path(__file__).resolve().parent / "model"
_SOURCE_MODEL_DIR = Path(__file__).resolve().parent.parent / "model"


def default_model_dir() -> Path:
    """The model staged inside the Lambda package, else the repository's ``model/``."""
    if (_PACKAGED_MODEL_DIR / "manifest.json").exists():
        return _PACKAGED_MODEL_DIR
    return _SOURCE_MODEL_DIR


def parse_api_keys(raw: str) -> dict[str, str]:
    """Parse ``tenant:key,tenant:key`` into ``{key: tenant}``; refuse malformed or short keys."""
    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        tenant, sep, key = entry.partition(":")
        if not sep or not TENANT_NAME.match(tenant.strip()) or len(key.strip()) < 16:
            raise ConfigurationError(
                "API_KEYS must be 'tenant:key,...': tenants of 1-64 letters, digits, '.', '_' "
                "or '-', and keys of at least 16 characters"
            )
        keys[key.strip()] = tenant.strip()
    return keys


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults that suit the local runtime."""

    region: str = "us-east-1"
    endpoint_url: str | None = None
    localstack_host: str | None = None
    bucket: str = "imgcls-images"
    table: str = "imgcls-jobs"
    jobs_queue: str = JOBS_QUEUE_NAME
    jobs_queue_url: str | None = None
    topic_arn: str | None = None
    topic_name: str = TOPIC_NAME
    tenants_table: str = "imgcls-tenants"
    webhooks_queue: str = WEBHOOKS_QUEUE_NAME
    webhooks_queue_url: str | None = None
    api_keys: Mapping[str, str] = field(default_factory=dict)
    model_dir: Path = field(default_factory=default_model_dir)
    max_image_bytes: int = 4 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    image_url_ttl_s: int = 300
    max_upload_bytes: int = 25 * 1024 * 1024
    upload_url_ttl_s: int = 900
    max_batch_images: int = 50
    retention_days: int = 30
    webhook_allow_hosts: frozenset[str] = frozenset()
    webhook_max_attempts: int = 6
    webhook_base_delay_s: int = 30
    webhook_timeout_s: int = 5
    ort_threads: int = 0
    ort_spinning: bool = False
    classify_workers: int = 4
    decode_budget_pixels: int = 16_000_000
    fault_rate: float = 0.0
    crash_rate: float = 0.0
    fault_seed: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment (``os.environ`` unless given)."""
        env = os.environ if env is None else env

        def integer(name: str, default: int, minimum: int = 0) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from exc
            if value < minimum:
                raise ConfigurationError(f"{name} must be >= {minimum}, got {value}")
            return value

        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            localstack_host=env.get("LOCALSTACK_HOST") or None,
            bucket=env.get("IMAGES_BUCKET", "imgcls-images"),
            table=env.get("JOBS_TABLE", "imgcls-jobs"),
            jobs_queue=env.get("JOBS_QUEUE", JOBS_QUEUE_NAME),
            jobs_queue_url=env.get("JOBS_QUEUE_URL") or None,
            topic_arn=env.get("JOB_EVENTS_TOPIC_ARN") or None,
            topic_name=env.get("JOB_EVENTS_TOPIC", TOPIC_NAME),
            tenants_table=env.get("TENANTS_TABLE", "imgcls-tenants"),
            webhooks_queue=env.get("WEBHOOKS_QUEUE", WEBHOOKS_QUEUE_NAME),
            webhooks_queue_url=env.get("WEBHOOKS_QUEUE_URL") or None,
            api_keys=parse_api_keys(env.get("API_KEYS", "")),
            model_dir=Path(env["MODEL_DIR"]) if env.get("MODEL_DIR") else default_model_dir(),
            max_image_bytes=integer("MAX_IMAGE_BYTES", 4 * 1024 * 1024, minimum=1),
            max_image_pixels=integer("MAX_IMAGE_PIXELS", 50_000_000, minimum=1),
            image_url_ttl_s=integer("IMAGE_URL_TTL_SECONDS", 300, minimum=1),
            max_upload_bytes=integer("MAX_UPLOAD_BYTES", 25 * 1024 * 1024, minimum=1),
            upload_url_ttl_s=integer("UPLOAD_URL_TTL_SECONDS", 900, minimum=1),
            max_batch_images=integer("MAX_BATCH_IMAGES", 50, minimum=1),
            retention_days=integer("RETENTION_DAYS", 30, minimum=1),
            webhook_allow_hosts=frozenset(
                h.strip().lower()
                for h in env.get("WEBHOOK_ALLOW_HOSTS", "").split(",")
                if h.strip()
            ),
            webhook_max_attempts=integer("WEBHOOK_MAX_ATTEMPTS", 6, minimum=1),
            webhook_base_delay_s=integer("WEBHOOK_BASE_DELAY_SECONDS", 30, minimum=0),
            webhook_timeout_s=integer("WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1),
            ort_threads=integer("ORT_THREADS", 0),
            ort_spinning=integer("ORT_SPINNING", 0) > 0,
            classify_workers=integer("CLASSIFY_WORKERS", 4, minimum=1),
            decode_budget_pixels=integer("DECODE_BUDGET_PIXELS", 16_000_000, minimum=1),
            fault_rate=_fraction(env, "FAULT_RATE"),
            crash_rate=_fraction(env, "CRASH_RATE"),
            fault_seed=integer("FAULT_SEED", -1) if env.get("FAULT_SEED") else None,
        )


def _fraction(env: Mapping[str, str], name: str) -> float:
    raw = env.get(name) or "0"
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number in [0, 1], got {raw!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(f"{name} must be in [0, 1], got {value}")
    return value
