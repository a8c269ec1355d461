"""Queue gauges for the local runtime's ``GET /metrics``: each queue's backlog, read from SQS.

The deployed stack's dashboard draws ``ApproximateNumberOfMessagesVisible`` and
``ApproximateAgeOfOldestMessage`` per queue from CloudWatch. Locally there is no CloudWatch, so
this module reads the queues' attributes (at most once per ``ttl_s``, however often the page asks)
and renders them as Prometheus gauges:

- ``imgcls_queue_messages{queue, state}``: ``visible`` (ApproximateNumberOfMessages), ``in_flight``
  (…NotVisible) and ``delayed`` (…Delayed), as SQS counts them;
- ``imgcls_queue_oldest_message_max_age_seconds{queue}``: an upper bound on the age of the oldest
  message. ``ApproximateAgeOfOldestMessage`` is a CloudWatch metric, not a queue attribute: SQS
  (and moto, which answers ``InvalidAttributeName``) gives no way to see a message's age without
  receiving it, and receiving would count against its ``maxReceiveCount`` and hide it from the
  pollers. What is known for sure: every message now in a queue was sent after the last moment
  the queue was seen holding nothing (no visible, in-flight or delayed message) and after it was
  created. So the gauge is 0 for an empty queue, else the time since the later of those two
  moments. It equals the true age when a backlog arrived at once into an empty queue and none of
  it has gone yet; under a steady flow that never lets the queue empty it only grows, and it is
  as fine-grained as the sampling (every ``ttl_s`` while someone reads ``/metrics``). For a
  dead-letter queue it counts, as CloudWatch's metric does there, from when a message arrived in
  it, not from when it was first sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.settings import INGEST_QUEUE_NAME, NOTIFY_QUEUE_NAME, Settings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

log = logging.getLogger(__name__)

CACHE_S = 2.0
# Our names for SQS's counts (the order they are rendered in).
STATES: dict[str, QueueAttributeNameType] = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}
MESSAGES = "imgcls_queue_messages"
MAX_AGE = "imgcls_queue_oldest_message_max_age_seconds"


def queue_names(settings: Settings) -> list[str]:
    """Every queue the local runtime creates, each followed by its DLQ (as ``infra.bootstrap``
    names them)."""
    mains = [settings.jobs_queue, INGEST_QUEUE_NAME, NOTIFY_QUEUE_NAME, settings.webhooks_queue]
    return [name for main in mains for name in (main, f"{main}-dlq")]


@dataclass(frozen=True)
class QueueSample:
    """One queue's counts at one moment, and the bound on its oldest message's age."""

    queue: str
    visible: int
    in_flight: int
    delayed: int
    max_age_s: float


class QueueGauges:
    """Samples queues' attributes at most every ``ttl_s`` and renders them as gauges."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queues: Iterable[str],
        ttl_s: float = CACHE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sqs = sqs
        self._queues = list(queues)
        self._ttl_s = ttl_s
        self._clock = clock  # wall clock: queues report their creation time in epoch seconds
        self._lock = threading.Lock()
        self._urls: dict[str, str] = {}
        self._seen_empty: dict[str, float] = {}  # queue → latest moment it held nothing
        self._sampled_at = float("-inf")
        self._text = ""

    def prometheus(self) -> str:
        """The gauges in Prometheus' text format (a comment line when SQS cannot be read)."""
        with self._lock:
            now = self._clock()
            if now - self._sampled_at >= self._ttl_s:
                self._sampled_at = now
                try:
                    self._text = render(self._sample(now))
                except (BotoCoreError, ClientError) as exc:
                    log.warning("queue gauges unavailable: %s", exc)
                    self._text = f"# queue gauges unavailable: {type(exc).__name__}\n"
            return self._text

    def _sample(self, now: float) -> list[QueueSample]:
        return [self._sample_queue(queue, now) for queue in self._queues]

    def _sample_queue(self, queue: str, now: float) -> QueueSample:
        if queue not in self._urls:
            self._urls[queue] = self._sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            created = self._sqs.get_queue_attributes(
                QueueUrl=self._urls[queue], AttributeNames=["CreatedTimestamp"]
            )["Attributes"]["CreatedTimestamp"]
            self._seen_empty[queue] = float(created)  # nothing in it is older than the queue
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._urls[queue], AttributeNames=list(STATES.values())
        )["Attributes"]
        visible, in_flight, delayed = (int(attributes.get(a, "0")) for a in STATES.values())
        if visible + in_flight + delayed == 0:  # nothing in it is older than this moment
            self._seen_empty[queue] = now
        return QueueSample(
            queue=queue,
            visible=visible,
            in_flight=in_flight,
            delayed=delayed,
            max_age_s=max(0.0, now - self._seen_empty[queue]),
        )


def render(samples: list[QueueSample]) -> str:
    """Samples as Prometheus gauges."""
    lines = [
        f"# HELP {MESSAGES} messages in each queue, by state (SQS's approximate counts)",
        f"# TYPE {MESSAGES} gauge",
    ]
    for s in samples:
        counts = {"visible": s.visible, "in_flight": s.in_flight, "delayed": s.delayed}
        lines += [f'{MESSAGES}{{queue="{s.queue}",state="{k}"}} {v}' for k, v in counts.items()]
    lines += [
        f"# HELP {MAX_AGE} upper bound on the oldest message's age: 0 when the queue is empty, "
        "else seconds since it was last seen empty (SQS has no such attribute; see ops_metrics)",
        f"# TYPE {MAX_AGE} gauge",
    ]
    lines += [f'{MAX_AGE}{{queue="{s.queue}"}} {s.max_age_s:.1f}' for s in samples]
    return "\n".join(lines) + "\n"


_default: QueueGauges | None = None
_default_lock = threading.Lock()


def queue_gauges() -> str:
    """The local runtime's queues as gauges, for ``GET /metrics`` (built on first use, from the
    same settings as the runtime: by then the emulator's endpoint is in the environment)."""
    global _default
    with _default_lock:
        if _default is None:
            from chalicelib.aws import QUICK, AwsClients

            settings = Settings.from_env()
            # One quick try per call: a slow emulator must not hold up the counters.
            sqs = AwsClients(settings, config=QUICK).sqs
            _default = QueueGauges(sqs=sqs, queues=queue_names(settings))
    return _default.prometheus()
