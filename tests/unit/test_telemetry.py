"""JSON log lines that name the job, EMF metrics, and the Prometheus view of the same counters."""

from __future__ import annotations

import io
import json
import logging

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from chalicelib import telemetry
from chalicelib.telemetry import Registry, emf_metric_names


def test_log_lines_are_json_and_name_the_job_being_handled() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LambdaPowertoolsFormatter(service="imgcls"))
    handler.addFilter(telemetry._JobIdFilter())
    log = logging.getLogger("test.telemetry")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with telemetry.job_context("0123abcd" * 4):
            log.info("decoding")
            log.warning("explicit wins", extra={"job_id": "other"})
        log.info("between jobs")
    finally:
        log.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]

    assert [line["message"] for line in lines] == ["decoding", "explicit wins", "between jobs"]
    assert [line.get("job_id") for line in lines] == ["0123abcd" * 4, "other", None]
    assert {line["service"] for line in lines} == {"imgcls"}
    assert {line["level"] for line in lines} == {"INFO", "WARNING"}


def test_metrics_are_written_as_emf(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    telemetry.flush()
    capsys.readouterr()

    telemetry.count("jobs_submitted", source="api")
    telemetry.count("webhooks_failed")
    telemetry.observe_ms("classification_latency_ms", 12.5)
    telemetry.flush()

    blob = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert emf_metric_names(blob) == {"JobsSubmitted", "WebhooksFailed", "ClassificationLatency"}
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "imgcls"
    assert blob["ClassificationLatency"] == [12.5]


def test_prometheus_text_has_counters_with_labels_and_summaries() -> None:
    registry = Registry()
    registry.count("jobs_failed", 1, {"code": "undecodable_image"}, "jobs that failed")
    registry.count("jobs_failed", 2, {"code": "undecodable_image"}, "jobs that failed")
    registry.count("jobs_failed", 1, {"code": "retries_exhausted"}, "jobs that failed")
    registry.observe("queue_wait_ms", 10, "wait")
    registry.observe("queue_wait_ms", 30, "wait")

    text = registry.prometheus()

    assert "# TYPE imgcls_jobs_failed_total counter" in text
    assert 'imgcls_jobs_failed_total{code="undecodable_image"} 3' in text
    assert 'imgcls_jobs_failed_total{code="retries_exhausted"} 1' in text
    assert "# TYPE imgcls_queue_wait_ms summary" in text
    assert "imgcls_queue_wait_ms_count 2" in text
    assert "imgcls_queue_wait_ms_sum 40" in text
    assert registry.value("jobs_failed", code="undecodable_image") == 3


def test_a_workers_registry_merges_into_the_runtimes() -> None:
    from chalicelib.telemetry import Registry

    now = 100.0
    runtime, worker = Registry(clock=lambda: now), Registry(clock=lambda: now)
    runtime.count("jobs_failed", 1, {"code": "retries_exhausted"}, "failed")
    worker.count("jobs_failed", 2, {"code": "undecodable_image"}, "failed")
    worker.count("jobs_succeeded", 5, {}, "succeeded")
    for ms in (10.0, 20.0, 30.0):
        worker.observe("classification_latency_ms", ms, "latency")

    merged = Registry(clock=lambda: now)
    merged.merge(runtime.snapshot())
    merged.merge(worker.snapshot())

    assert merged.value("jobs_failed", code="retries_exhausted") == 1
    assert merged.value("jobs_failed", code="undecodable_image") == 2
    assert merged.value("jobs_succeeded") == 5
    assert merged.summary("classification_latency_ms") == (3, 60.0)
    assert merged.quantile("classification_latency_ms", 0.5) == 20.0
    assert 'imgcls_jobs_failed_total{code="undecodable_image"} 2' in merged.prometheus()
