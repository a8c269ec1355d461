"""End to end: `python -m infra.local` as a user runs it, real photos over real HTTP.

Every hop is real code over moto's HTTP server: API → S3 + DynamoDB → SQS → the SQS poller →
the classify handler with the ONNX model → DynamoDB → SNS.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, ROCKET, ROCKET_CLASSES, cat_jpeg
from tests.runtime import Runtime, start_runtime

pytestmark = pytest.mark.e2e
KEY = "e2e-tenant-key-0123456789"


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    rt = start_runtime(KEY)
    yield rt
    rt.stop()


def events_queue(rt: Runtime) -> tuple[Any, str]:
    """Subscribe a fresh SQS queue to the job-events topic in the emulator."""
    sqs, sns = rt.aws("sqs"), rt.aws("sns")
    url = sqs.create_queue(QueueName="e2e-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic = sns.create_topic(Name="imgcls-job-events")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return sqs, url


def test_three_real_photos_come_back_with_the_right_labels(runtime: Runtime) -> None:
    sqs, events_url = events_queue(runtime)
    submitted = {
        "cat (raw body)": runtime.post_image(CAT.read_bytes(), "image/png"),
        "espresso (multipart)": runtime.http.post(
            "/jobs", files={"image": ("coffee.png", COFFEE.read_bytes(), "image/png")}
        ),
        "rocket (JSON base64)": runtime.http.post(
            "/jobs", json={"image_base64": base64.b64encode(ROCKET.read_bytes()).decode()}
        ),
    }
    for name, resp in submitted.items():
        assert resp.status_code == 202, (name, resp.text)
        assert resp.headers["Location"] == resp.json()["status_url"]
    jobs = {name: runtime.wait_for(r.json()["job_id"]) for name, r in submitted.items()}

    expected = {
        "cat (raw body)": CAT_CLASSES,
        "espresso (multipart)": {ESPRESSO},
        "rocket (JSON base64)": ROCKET_CLASSES,
    }
    for name, job in jobs.items():
        assert job["status"] == "SUCCEEDED", (name, job)
        top = job["predictions"][0]
        print(f"{name}: {top['label']} ({top['probability']:.3f})")
        assert top["class_id"] in expected[name], (name, job["predictions"])
        assert job["attempts"] == 1
        # a presigned S3 URL, not the API
        assert requests.get(job["image_url"], timeout=10).status_code == 200
    listed = runtime.http.get("/jobs", params={"status": "SUCCEEDED"})
    assert listed.status_code == 200, listed.text
    assert {j["job_id"] for j in listed.json()["jobs"]} >= {j["job_id"] for j in jobs.values()}

    seen: dict[str, str] = {}
    deadline = time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:
        for m in sqs.receive_message(
            QueueUrl=events_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            event = json.loads(json.loads(m["Body"])["Message"])
            seen[event["job"]["job_id"]] = event["type"]
    assert seen == {job["job_id"]: "job.succeeded" for job in jobs.values()}

    metrics = runtime.http.get("/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain")
    samples = dict(
        line.rsplit(" ", 1) for line in metrics.text.splitlines() if not line.startswith("#")
    )
    assert samples['imgcls_jobs_submitted_total{source="api"}'] == "3"
    assert samples["imgcls_jobs_succeeded_total"] == "3"
    assert samples["imgcls_classification_latency_ms_count"] == "3"
    assert samples["imgcls_queue_wait_ms_count"] == "3"
    assert float(samples["imgcls_classification_latency_ms_sum"]) > 0


def test_bad_input_over_http_is_a_json_4xx_and_the_worker_lives_on(runtime: Runtime) -> None:
    resp = runtime.post_image(b"not an image", "image/jpeg")
    assert resp.status_code == 415
    assert resp.json()["error"]["code"] == "unsupported_image"
    truncated = cat_jpeg()[:4000]  # the header is intact, the pixels are not: passes the door
    failed = runtime.wait_for(runtime.submit(truncated, "image/jpeg"))
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "undecodable_image"
    after = runtime.submit(COFFEE.read_bytes(), "image/png")
    assert runtime.wait_for(after)["predictions"][0]["class_id"] == ESPRESSO


def _listener(port: int, near: int) -> int:
    """The pid of the process that listens on loopback ``port``, in the network namespace of
    process ``near`` (from /proc)."""
    from pathlib import Path

    inodes = {
        fields[9]
        for line in Path(f"/proc/{near}/net/tcp").read_text().splitlines()[1:]
        if (fields := line.split())[3] == "0A" and int(fields[1].split(":")[1], 16) == port
    }
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            link = fd.readlink().name
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return int(fd.parent.parent.name)
    raise AssertionError(f"nothing listens on {port}")


def test_the_emulator_runs_in_a_process_of_its_own(runtime: Runtime) -> None:
    """As AWS never shares the classifier's interpreter: `make run` starts it as a child."""
    from pathlib import Path

    emulator = _listener(int(runtime.emulator.rsplit(":", 1)[1]), near=runtime.process.pid)
    assert emulator != runtime.process.pid
    assert b"infra.emulator" in Path(f"/proc/{emulator}/cmdline").read_bytes()
    assert Path(f"/proc/{emulator}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(
        runtime.process.pid
    )  # its parent is the runtime, which stops it


def _children(pid: int) -> dict[int, bytes]:
    from pathlib import Path

    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if stat[1] == str(pid):
                    found[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue
    return found


def test_the_classifier_runs_in_a_process_of_its_own_and_its_metrics_reach_the_runtime(
    runtime: Runtime,
) -> None:
    """As Lambda runs each function apart: the model never waits for the API's threads."""
    workers = [pid for pid, cmd in _children(runtime.process.pid).items() if b"infra.worker" in cmd]
    assert len(workers) == 1, "one classify worker (reserved concurrency 1)"
    assert b"classify" in _children(runtime.process.pid)[workers[0]]

    job_id = runtime.submit(cat_jpeg(), "image/jpeg")
    assert runtime.wait_for(job_id)["status"] == "SUCCEEDED"
    metrics = runtime.http.get("/metrics").text

    # Counted in the worker, merged into the runtime's /metrics.
    assert "imgcls_jobs_succeeded_total" in metrics
    assert 'imgcls_aws_calls_total{operation="UpdateItem",service="dynamodb"}' in metrics


def test_no_webhook_can_reach_the_emulator_or_the_api_itself(runtime: Runtime) -> None:
    """In make run one tenant's webhook_url at the emulator's /moto-api/reset wiped every
    tenant's jobs, images and keys: the runtime's own ports are refused, loopback or not."""
    emulator_port = runtime.emulator.rsplit(":", 1)[1]
    api_port = runtime.url.rsplit(":", 1)[1]
    job_id = runtime.submit(cat_jpeg(), "image/jpeg")
    targets = [
        f"http://127.0.0.1:{emulator_port}/moto-api/reset",
        f"http://localhost:{emulator_port}/moto-api/reset",
        f"http://0.0.0.0:{emulator_port}/moto-api/reset",
        f"http://127.0.0.1:{api_port}/jobs",
    ]
    for url in targets:
        submitted = runtime.post_image(cat_jpeg(), "image/jpeg", webhook_url=url)
        subscribed = runtime.http.post("/webhooks", json={"url": url})
        for resp in (submitted, subscribed):
            assert resp.status_code == 400, (url, resp.text)
            assert resp.json()["error"]["code"] == "invalid_webhook_url"
    assert runtime.wait_for(job_id)["status"] == "SUCCEEDED"  # nothing was reset


def test_ctrl_c_stops_everything_cleanly(runtime: Runtime) -> None:
    workers = [pid for pid, cmd in _children(runtime.process.pid).items() if b"infra.worker" in cmd]
    out = runtime.stop()
    assert runtime.process.returncode == 0, out
    assert "stopped" in out
    for pid in workers:  # the classify worker stopped with it (and was reaped)
        assert not os.path.exists(f"/proc/{pid}")
    with pytest.raises(requests.ConnectionError):
        runtime.http.get("/health", timeout=2)
    with pytest.raises(requests.ConnectionError):  # the emulator's process stopped with it
        requests.get(f"{runtime.emulator}/moto-api/", timeout=2)
