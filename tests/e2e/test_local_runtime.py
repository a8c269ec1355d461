"""End to end: `python -m infra.local` as a user runs it, real photos over real HTTP.

Every hop is real code over moto's HTTP server: API → S3 + DynamoDB → SQS → the SQS poller →
the classify handler with the ONNX model → DynamoDB → SNS.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, ROCKET, ROCKET_CLASSES, cat_jpeg

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
KEY = "e2e-tenant-key-0123456789"


@dataclass
class Runtime:
    """A running local runtime."""

    url: str
    emulator: str
    process: subprocess.Popen[str]
    output: list[str]

    def headers(self, **extra: str) -> dict[str, str]:
        return {"x-api-key": KEY, **extra}


def _start(env: dict[str, str]) -> Runtime:
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "--port", "0", "--emulator-port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    url = emulator = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.startswith("AWS emulator: "):
            emulator = line.split(": ", 1)[1].strip()
        if line.startswith("ready on "):
            url = line.split("ready on ", 1)[1].strip()
            break
    if not url:
        process.kill()
        pytest.fail("the local runtime did not start:\n" + "".join(output))
    return Runtime(url=url, emulator=emulator, process=process, output=output)


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"API_KEYS": f"e2e:{KEY}", "PYTHONUNBUFFERED": "1"})
    rt = _start(env)
    yield rt
    if rt.process.poll() is None:
        rt.process.kill()
        rt.process.wait(timeout=10)


def wait_for(rt: Runtime, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{rt.url}/jobs/{job_id}", headers=rt.headers(), timeout=10).json()
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return dict(job)
        time.sleep(0.2)
    pytest.fail(f"job {job_id} did not finish: {job}")


def events_queue(rt: Runtime) -> tuple[Any, str]:
    """Subscribe a fresh SQS queue to the job-events topic in the emulator."""
    kw: dict[str, Any] = {
        "endpoint_url": rt.emulator,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    sqs, sns = boto3.client("sqs", **kw), boto3.client("sns", **kw)
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
        "cat (raw body)": requests.post(
            f"{runtime.url}/jobs",
            data=CAT.read_bytes(),
            headers=runtime.headers(**{"Content-Type": "image/png"}),
            timeout=30,
        ),
        "espresso (multipart)": requests.post(
            f"{runtime.url}/jobs",
            files={"image": ("coffee.png", COFFEE.read_bytes(), "image/png")},
            headers=runtime.headers(),
            timeout=30,
        ),
        "rocket (JSON base64)": requests.post(
            f"{runtime.url}/jobs",
            json={"image_base64": base64.b64encode(ROCKET.read_bytes()).decode()},
            headers=runtime.headers(),
            timeout=30,
        ),
    }
    for name, resp in submitted.items():
        assert resp.status_code == 202, (name, resp.text)
        assert resp.headers["Location"] == resp.json()["status_url"]
    jobs = {name: wait_for(runtime, r.json()["job_id"]) for name, r in submitted.items()}

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
        assert requests.get(job["image_url"], timeout=10).status_code == 200
    listed = requests.get(
        f"{runtime.url}/jobs?status=SUCCEEDED", headers=runtime.headers(), timeout=10
    )
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


def test_bad_input_over_http_is_a_json_4xx_and_the_worker_lives_on(runtime: Runtime) -> None:
    resp = requests.post(
        f"{runtime.url}/jobs",
        data=b"not an image",
        headers=runtime.headers(**{"Content-Type": "image/jpeg"}),
        timeout=10,
    )
    assert resp.status_code == 415
    assert resp.json()["error"]["code"] == "unsupported_image"
    truncated = cat_jpeg()[:4000]  # the header is intact, the pixels are not: passes the door
    broken = requests.post(
        f"{runtime.url}/jobs",
        data=truncated,
        headers=runtime.headers(**{"Content-Type": "image/jpeg"}),
        timeout=10,
    )
    assert broken.status_code == 202
    failed = wait_for(runtime, broken.json()["job_id"])
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "undecodable_image"
    after = requests.post(
        f"{runtime.url}/jobs",
        data=COFFEE.read_bytes(),
        headers=runtime.headers(**{"Content-Type": "image/png"}),
        timeout=10,
    )
    assert wait_for(runtime, after.json()["job_id"])["predictions"][0]["class_id"] == ESPRESSO


def test_ctrl_c_stops_everything_cleanly(runtime: Runtime) -> None:
    runtime.process.send_signal(signal.SIGINT)
    out, _ = runtime.process.communicate(timeout=60)
    assert runtime.process.returncode == 0, out
    assert "stopped" in out
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{runtime.url}/health", timeout=2)
