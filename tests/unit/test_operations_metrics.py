"""What ``GET /metrics`` adds for the operations view: latency quantiles and queue gauges."""

from __future__ import annotations

import time

import pytest

from chalicelib.settings import Settings
from chalicelib.telemetry import RECENT_MAX, RECENT_WINDOW_S, Registry
from infra.bootstrap import bootstrap
from infra.ops_metrics import MAX_AGE, MESSAGES, QueueGauges, queue_names


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def samples(text: str) -> dict[str, str]:
    """Prometheus text → {series: value}."""
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def test_summaries_give_p50_and_p95_of_the_last_minute() -> None:
    clock = Clock(1000.0)
    registry = Registry(clock=clock)
    for ms in range(1, 101):
        registry.observe("classification_latency_ms", ms, "latency")

    shown = samples(registry.prometheus())

    assert shown['imgcls_classification_latency_ms{quantile="0.5"}'] == "50"
    assert shown['imgcls_classification_latency_ms{quantile="0.95"}'] == "95"
    assert shown["imgcls_classification_latency_ms_count"] == "100"
    assert registry.quantile("classification_latency_ms", 0.95) == 95

    # A minute later with nothing new: no quantiles (NaN), while count and sum stay.
    clock.now += RECENT_WINDOW_S + 1
    later = samples(registry.prometheus())
    assert later['imgcls_classification_latency_ms{quantile="0.5"}'] == "NaN"
    assert later["imgcls_classification_latency_ms_sum"] == "5050"
    assert registry.quantile("classification_latency_ms", 0.5) is None
    assert registry.summary("classification_latency_ms") == (100, 5050)


def test_quantiles_keep_a_bounded_number_of_observations() -> None:
    registry = Registry(clock=Clock(0.0))
    for ms in range(1, RECENT_MAX + 501):
        registry.observe("queue_wait_ms", ms, "wait")

    # Only the newest RECENT_MAX are kept: 501 … 1500.
    assert registry.quantile("queue_wait_ms", 0.0) == 501
    assert registry.quantile("queue_wait_ms", 0.5) == 1000
    assert registry.summary("queue_wait_ms")[0] == RECENT_MAX + 500


@pytest.fixture
def gauges(moto: None) -> tuple[QueueGauges, Clock, str]:
    """Gauges over the queues the runtime creates, with a clock the test moves."""
    from chalicelib.aws import AwsClients

    settings = Settings.from_env({})
    clients = AwsClients(settings)
    resources = bootstrap(settings, visibility_timeout_s=30, aws=clients)
    clock = Clock(time.time())
    return (
        QueueGauges(sqs=clients.sqs, queues=queue_names(settings), clock=clock),
        clock,
        resources.jobs_queue_url,
    )


def test_queue_gauges_count_each_state_and_bound_the_oldest_age(
    gauges: tuple[QueueGauges, Clock, str],
) -> None:
    from chalicelib.aws import AwsClients

    sqs = AwsClients(Settings.from_env({})).sqs
    gauge, clock, jobs_url = gauges
    jobs = '{queue="imgcls-jobs"}'

    # GIVEN the queues seen empty once
    first = samples(gauge.prometheus())
    assert first[f'{MESSAGES}{{queue="imgcls-jobs",state="visible"}}'] == "0"
    assert first[MAX_AGE + jobs] == "0.0"
    assert {s.split('queue="')[1].split('"')[0] for s in first} == {
        "imgcls-jobs", "imgcls-jobs-dlq", "imgcls-ingest", "imgcls-ingest-dlq",
        "imgcls-notify", "imgcls-notify-dlq", "imgcls-webhooks", "imgcls-webhooks-dlq",
    }  # fmt: skip

    # WHEN three messages arrive, one is being handled and one is delayed, 5 s later
    for _ in range(2):
        sqs.send_message(QueueUrl=jobs_url, MessageBody="{}")
    sqs.send_message(QueueUrl=jobs_url, MessageBody="{}", DelaySeconds=60)
    sqs.receive_message(QueueUrl=jobs_url, MaxNumberOfMessages=1)
    clock.now += 5
    shown = samples(gauge.prometheus())

    # THEN each state is counted and the oldest is at most 5 s old
    for state, count in (("visible", "1"), ("in_flight", "1"), ("delayed", "1")):
        assert shown[f'{MESSAGES}{{queue="imgcls-jobs",state="{state}"}}'] == count
    assert shown[MAX_AGE + jobs] == "5.0"
    assert shown[MAX_AGE + '{queue="imgcls-notify"}'] == "0.0"


def test_queue_gauges_are_read_at_most_every_two_seconds(
    gauges: tuple[QueueGauges, Clock, str],
) -> None:
    from chalicelib.aws import AwsClients

    sqs = AwsClients(Settings.from_env({})).sqs
    gauge, clock, jobs_url = gauges
    visible = f'{MESSAGES}{{queue="imgcls-jobs",state="visible"}}'
    before = samples(gauge.prometheus())[visible]

    sqs.send_message(QueueUrl=jobs_url, MessageBody="{}")
    clock.now += 1.9
    cached = samples(gauge.prometheus())[visible]
    clock.now += 0.1
    fresh = samples(gauge.prometheus())[visible]

    assert (before, cached, fresh) == ("0", "0", "1")


def test_queue_gauges_say_so_when_sqs_cannot_be_read(moto: None) -> None:
    from chalicelib.aws import AwsClients

    sqs = AwsClients(Settings.from_env({})).sqs
    gauge = QueueGauges(sqs=sqs, queues=["no-such-queue"])

    assert gauge.prometheus() == "# queue gauges unavailable: QueueDoesNotExist\n"
