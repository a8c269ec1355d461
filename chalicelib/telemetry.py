"""Structured logs and metrics.

- Logs: one JSON object a line (aws-lambda-powertools' formatter on the standard ``logging``
  tree), with ``job_id`` on every line written while a job is being handled.
- Metrics: CloudWatch Embedded Metric Format through Powertools ``Metrics`` (flushed at the end
  of each handler), and the same counters kept in-process, which the local runtime serves at
  ``GET /metrics`` in Prometheus' text format.

Powertools' decorators do not fit Chalice's event handlers (Chalice calls them without a
context), so handlers call ``flush()`` themselves.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "imgcls"
SERVICE = "imgcls"

_job_id = contextvars.ContextVar[str | None]("job_id", default=None)


@contextlib.contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Every log line inside names ``job_id``."""
    token = _job_id.set(job_id)
    try:
        yield
    finally:
        _job_id.reset(token)


class _JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        job_id = _job_id.get()
        if job_id is not None and not hasattr(record, "job_id"):
            record.job_id = job_id
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for every logger (replacing Lambda's plain-text root handler)."""
    handler = logging.StreamHandler()
    handler.setFormatter(LambdaPowertoolsFormatter(service=SERVICE))
    handler.addFilter(_JobIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Registry:
    """Counters and sums kept in-process, rendered in Prometheus' text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._summaries: dict[str, list[float]] = {}  # name → [count, sum]
        self._help: dict[str, str] = {}

    def count(self, name: str, value: float, labels: dict[str, str], help_text: str) -> None:
        """Add to a counter."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + value
            self._help[name] = help_text

    def observe(self, name: str, value: float, help_text: str) -> None:
        """Add one observation to a summary (count and sum)."""
        with self._lock:
            entry = self._summaries.setdefault(name, [0.0, 0.0])
            entry[0] += 1
            entry[1] += value
            self._help[name] = help_text

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (0 if never counted)."""
        with self._lock:
            return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def summary(self, name: str) -> tuple[float, float]:
        """A summary's observation count and sum so far ((0, 0) if never observed)."""
        with self._lock:
            count, total = self._summaries.get(name, (0.0, 0.0))
            return count, total

    def prometheus(self) -> str:
        """Everything, in Prometheus' text exposition format."""
        lines: list[str] = []
        with self._lock:
            for name in sorted({n for n, _ in self._counters}):
                metric = f"{NAMESPACE}_{name}_total"
                lines += [f"# HELP {metric} {self._help[name]}", f"# TYPE {metric} counter"]
                for (n, labels), value in sorted(self._counters.items()):
                    if n == name:
                        rendered = ",".join(f'{k}="{v}"' for k, v in labels)
                        lines.append(
                            f"{metric}{{{rendered}}} {value:g}" if labels else f"{metric} {value:g}"
                        )
            for name, (count, total) in sorted(self._summaries.items()):
                metric = f"{NAMESPACE}_{name}"
                lines += [f"# HELP {metric} {self._help[name]}", f"# TYPE {metric} summary"]
                lines += [f"{metric}_count {count:g}", f"{metric}_sum {total:g}"]
        return "\n".join(lines) + "\n"


REGISTRY = Registry()
_metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# What each metric means (Prometheus HELP text; CloudWatch names are the CamelCase forms).
_METRICS: dict[str, tuple[str, str]] = {
    "jobs_submitted": ("JobsSubmitted", "jobs accepted, by source (api, upload, s3)"),
    "jobs_succeeded": ("JobsSucceeded", "jobs that ended SUCCEEDED"),
    "jobs_failed": ("JobsFailed", "jobs that ended FAILED, by error code"),
    "dead_letters": ("DeadLetters", "messages that reached the jobs dead-letter queue"),
    "webhooks_delivered": ("WebhooksDelivered", "webhook attempts a receiver accepted"),
    "webhooks_failed": ("WebhooksFailed", "webhook attempts that failed (retried or given up)"),
    "classification_latency_ms": (
        "ClassificationLatency",
        "from an attempt's start to its recorded result, per image, in ms",
    ),
    "queue_wait_ms": ("QueueWait", "from enqueue to the classifier's start, in ms"),
    "result_write_ms": ("ResultWrite", "writing a batch's results, per image, in ms"),
    "event_publish_ms": ("EventPublish", "publishing a batch's job events, per image, in ms"),
    "webhook_latency_ms": ("WebhookLatency", "one webhook attempt, in ms"),
}


def count(name: str, value: int = 1, **labels: str) -> None:
    """Count an event: in-process for ``/metrics`` and as an EMF metric."""
    cloudwatch, help_text = _METRICS[name]
    REGISTRY.count(name, value, labels, help_text)
    _metrics.add_metric(name=cloudwatch, unit=MetricUnit.Count, value=value)


def observe_ms(name: str, milliseconds: float) -> None:
    """Record a duration: in-process for ``/metrics`` and as an EMF metric."""
    cloudwatch, help_text = _METRICS[name]
    REGISTRY.observe(name, milliseconds, help_text)
    _metrics.add_metric(name=cloudwatch, unit=MetricUnit.Milliseconds, value=milliseconds)


def flush() -> None:
    """Write the EMF blob for what this invocation recorded (handlers call it in ``finally``)."""
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
        _metrics.clear_metrics()
    elif _metrics.metric_set:  # nothing recorded: no blob, and no warning about it
        _metrics.flush_metrics()


def emf_metric_names(blob: dict[str, Any]) -> set[str]:
    """The metric names an EMF blob declares (for tests and checks)."""
    return {m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d.get("Metrics", [])}
