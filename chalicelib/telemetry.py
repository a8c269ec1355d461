"""Structured logs and metrics.

- Logs: one JSON object a line (aws-lambda-powertools' formatter on the standard ``logging``
  tree), with ``job_id`` on every line written while a job is being handled.
- Metrics: CloudWatch Embedded Metric Format through Powertools ``Metrics`` (flushed at the end
  of each handler), and the same counters kept in-process, which the local runtime serves at
  ``GET /metrics`` in Prometheus' text format. Durations there are summaries with their p50 and
  p95 over the last minute, as the CloudWatch dashboard draws them per 60 s period.

Powertools' decorators do not fit Chalice's event handlers (Chalice calls them without a
context), so handlers call ``flush()`` themselves.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
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


# Summary quantiles cover the observations of the last minute (the dashboard's period), at most
# RECENT_MAX of them: memory stays bounded however busy the service is.
QUANTILES = (0.5, 0.95)
RECENT_WINDOW_S = 60.0
RECENT_MAX = 1000


def nearest_rank(ordered: list[float], q: float) -> float | None:
    """The ``q``-quantile of sorted values by the nearest-rank method (None when empty)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Registry:
    """Counters and summaries kept in-process, rendered in Prometheus' text format."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._summaries: dict[str, list[float]] = {}  # name → [count, sum]
        self._recent: dict[str, deque[tuple[float, float]]] = {}  # name → (when, value)
        self._help: dict[str, str] = {}

    def count(self, name: str, value: float, labels: dict[str, str], help_text: str) -> None:
        """Add to a counter."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + value
            self._help[name] = help_text

    def observe(self, name: str, value: float, help_text: str) -> None:
        """Add one observation to a summary (count, sum and the recent values for quantiles)."""
        with self._lock:
            entry = self._summaries.setdefault(name, [0.0, 0.0])
            entry[0] += 1
            entry[1] += value
            recent = self._recent.setdefault(name, deque(maxlen=RECENT_MAX))
            recent.append((self._clock(), value))
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

    def quantile(self, name: str, q: float) -> float | None:
        """A summary's ``q``-quantile over the last minute (None without observations in it)."""
        with self._lock:
            return nearest_rank(self._recent_sorted(name), q)

    def _recent_sorted(self, name: str) -> list[float]:
        """The last minute's observations, sorted; older ones are dropped (lock held)."""
        recent = self._recent.get(name)
        if not recent:
            return []
        horizon = self._clock() - RECENT_WINDOW_S
        while recent and recent[0][0] < horizon:
            recent.popleft()
        return sorted(value for _, value in recent)

    def snapshot(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (for another process to merge)."""
        now = self._clock()
        with self._lock:
            return {
                "counters": [
                    [n, list(map(list, labels)), v] for (n, labels), v in self._counters.items()
                ],
                "summaries": {n: list(v) for n, v in self._summaries.items()},
                "recent": {n: [[now - t, v] for t, v in d] for n, d in self._recent.items()},
                "help": dict(self._help),
            }

    def merge(self, snapshot: dict[str, Any]) -> None:
        """Add another registry's snapshot to this one (the local runtime merges its workers')."""
        now = self._clock()
        with self._lock:
            for name, labels, value in snapshot["counters"]:
                key = (name, tuple((k, v) for k, v in labels))
                self._counters[key] = self._counters.get(key, 0.0) + value
            for name, (count, total) in snapshot["summaries"].items():
                entry = self._summaries.setdefault(name, [0.0, 0.0])
                entry[0] += count
                entry[1] += total
            for name, values in snapshot["recent"].items():
                recent = self._recent.setdefault(name, deque(maxlen=RECENT_MAX))
                merged = sorted([*recent, *((now - age, v) for age, v in values)])
                recent.clear()
                recent.extend(merged)
            self._help.update(snapshot["help"])

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
            for name in sorted(self._summaries):
                lines += self._summary_lines(name)
        return "\n".join(lines) + "\n"

    def _summary_lines(self, name: str) -> list[str]:
        """One summary: its quantiles over the last minute, count and sum (lock held)."""
        metric = f"{NAMESPACE}_{name}"
        count, total = self._summaries[name]
        ordered = self._recent_sorted(name)
        lines = [f"# HELP {metric} {self._help[name]}", f"# TYPE {metric} summary"]
        for q in QUANTILES:
            value = nearest_rank(ordered, q)
            shown = "NaN" if value is None else f"{value:g}"  # Prometheus' "no observations"
            lines.append(f'{metric}{{quantile="{q:g}"}} {shown}')
        return [*lines, f"{metric}_count {count:g}", f"{metric}_sum {total:g}"]


REGISTRY = Registry()
_metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# What each metric means (Prometheus HELP text; CloudWatch names are the CamelCase forms).
_METRICS: dict[str, tuple[str, str]] = {
    "jobs_submitted": ("JobsSubmitted", "jobs accepted, by source (api, upload, s3)"),
    "jobs_succeeded": ("JobsSucceeded", "jobs that ended SUCCEEDED"),
    "jobs_cached": ("JobsCached", "jobs answered from an earlier job's result, not classified"),
    "jobs_canceled": ("JobsCanceled", "jobs canceled before they finished"),
    "jobs_failed": ("JobsFailed", "jobs that ended FAILED, by error code"),
    "uploads_refused": ("UploadsRefused", "images sent with an upload form already used, removed"),
    "rate_limited": ("RateLimited", "requests refused over a tenant's rate limit"),
    "dead_letters": ("DeadLetters", "messages that reached the jobs dead-letter queue"),
    "webhooks_delivered": ("WebhooksDelivered", "webhook attempts a receiver accepted"),
    "webhooks_failed": ("WebhooksFailed", "webhook attempts that failed (retried or given up)"),
    "webhooks_deferred": (
        "WebhooksDeferred",
        "webhook deliveries put back on the queue, past their batch's time budget",
    ),
    "webhooks_disabled": (
        "WebhooksDisabled",
        "subscriptions disabled: a 410, or events failing for good in a row",
    ),
    "classification_latency_ms": (
        "ClassificationLatency",
        "from an attempt's start to its recorded result, per image, in ms",
    ),
    "queue_wait_ms": ("QueueWait", "from enqueue to the classifier's start, in ms"),
    "result_write_ms": ("ResultWrite", "writing a batch's results, per image, in ms"),
    "event_publish_ms": ("EventPublish", "publishing a batch's job events, per image, in ms"),
    "webhook_latency_ms": ("WebhookLatency", "one webhook attempt, in ms"),
}


def count_call(service: str, operation: str) -> None:
    """Count one AWS call, in-process only: a metric per call would cost more in CloudWatch
    than the call itself."""
    REGISTRY.count(
        "aws_calls", 1, {"service": service, "operation": operation}, "AWS API calls made"
    )


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
