"""Chaos through the local runtime: faults, crashes mid-batch and duplicates; nothing is lost.

200 jobs of real photos go through ``python -m infra.local`` with ``FAULT_RATE=0.4`` (40 % of
attempts fail transiently), ``CRASH_RATE=0.3`` (three in ten of the classifier's batches die
part-way through writing their results) and extra copies of queue messages sent straight to
SQS, early and late. Afterwards every job is SUCCEEDED or FAILED (``retries_exhausted``), none is
lost, none got two different results, and retrying the failed ones brings every job to
SUCCEEDED.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from PIL import Image

from infra.bootstrap import MAX_RECEIVE_COUNT
from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, ROCKET, ROCKET_CLASSES, encode
from tests.runtime import TERMINAL, Runtime, start_runtime

pytestmark = pytest.mark.e2e
KEY = "chaos-tenant-key-0123456789"
JOBS = 200
EARLY_DUPLICATE_EVERY = 5  # one job in five gets a second message while it is queued
LATE_DUPLICATES = 40  # copies of messages for jobs that have already finished
# What the runtime logs for each injected fault (infra.faults.FlakyImages: the classifier logs the
# transient failure with its exception) and each batch that died (infra.faults.CrashingJobs: the
# poller logs the SimulatedCrash that ended the invocation, once per batch).
FAULT_LOGGED = "TransientError: injected fault (FAULT_RATE="
CRASH_LOGGED = "SimulatedCrash: injected crash before the result of"


def small(path: Any, fmt: str) -> bytes:
    """A real photo at a phone-thumbnail size, so 200 of them go quickly."""
    img = Image.open(path).convert("RGB")
    img.thumbnail((400, 400))
    return encode(img, fmt)


PHOTOS: dict[str, tuple[bytes, str, set[int]]] = {
    "cat": (small(CAT, "JPEG"), "image/jpeg", CAT_CLASSES),
    "espresso": (small(COFFEE, "PNG"), "image/png", {ESPRESSO}),
    "rocket": (small(ROCKET, "JPEG"), "image/jpeg", ROCKET_CLASSES),
}


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    rt = start_runtime(
        KEY,
        env={"FAULT_RATE": "0.4", "CRASH_RATE": "0.3", "FAULT_SEED": "2026"},
        args=("--visibility-timeout", "2"),
    )
    yield rt
    rt.stop()


def subscribe_events(rt: Runtime) -> str:
    sqs, sns = rt.aws("sqs"), rt.aws("sns")
    url: str = sqs.create_queue(QueueName="chaos-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    topic = sns.create_topic(Name="imgcls-job-events")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    return url


def drain_events(rt: Runtime, url: str) -> list[dict[str, Any]]:
    sqs, events = rt.aws("sqs"), list[dict[str, Any]]()
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return events
        for m in got:
            events.append(json.loads(json.loads(m["Body"])["Message"]))
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )


def all_jobs(rt: Runtime) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    token = ""
    while True:
        page = rt.get(f"/jobs?limit=100{'&next_token=' + token if token else ''}")
        jobs.update({j["job_id"]: j for j in page["jobs"]})
        token = page["next_token"]
        if not token:
            return jobs


def wait_until_settled(rt: Runtime, ids: set[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = all_jobs(rt)
        if all(jobs.get(i, {}).get("status") in TERMINAL for i in ids):
            return jobs
        if time.monotonic() > deadline:
            open_ = Counter(jobs[i]["status"] if i in jobs else "MISSING" for i in ids)
            raise AssertionError(f"jobs still open after {timeout}s: {open_}")
        time.sleep(1)


def queues_empty(rt: Runtime, timeout: float = 60) -> bool:
    sqs = rt.aws("sqs")
    names = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = [
            int(v)
            for q in ("imgcls-jobs", "imgcls-jobs-dlq")
            for v in sqs.get_queue_attributes(
                QueueUrl=sqs.get_queue_url(QueueName=q)["QueueUrl"], AttributeNames=list(names)
            )["Attributes"].values()
        ]
        if sum(counts) == 0:
            return True
        time.sleep(0.5)
    return False


def duplicate(rt: Runtime, job_ids: list[str]) -> None:
    """Send extra copies of the jobs' queue messages, as an at-least-once queue may."""
    sqs = rt.aws("sqs")
    url = sqs.get_queue_url(QueueName="imgcls-jobs")["QueueUrl"]
    for start in range(0, len(job_ids), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"job_id": j, "generation": 0})}
                for i, j in enumerate(job_ids[start : start + 10])
            ],
        )


def submit_all(rt: Runtime) -> dict[str, str]:
    """Submit JOBS photos from four threads; job id → photo name."""
    names = [list(PHOTOS)[i % len(PHOTOS)] for i in range(JOBS)]

    def post(name: str) -> tuple[str, str]:
        data, ctype, _ = PHOTOS[name]
        return rt.submit(data, ctype), name

    with ThreadPoolExecutor(4) as pool:
        try:
            return dict(pool.map(post, names))
        except requests.ConnectionError as exc:
            raise AssertionError(rt.postmortem()) from exc


def test_chaos_loses_nothing_and_never_processes_twice(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    events_url = subscribe_events(runtime)
    photo_of = submit_all(runtime)
    ids = list(photo_of)
    early = ids[::EARLY_DUPLICATE_EVERY]
    duplicate(runtime, early)

    jobs = wait_until_settled(runtime, set(ids), timeout=300)
    late = random.Random(1).sample(
        [i for i in ids if jobs[i]["status"] == "SUCCEEDED"], LATE_DUPLICATES
    )
    duplicate(runtime, late)
    assert queues_empty(runtime), "messages left on the queues"
    after_late = all_jobs(runtime)
    assert {i: after_late[i]["updated_at"] for i in late} == {
        i: jobs[i]["updated_at"] for i in late
    }

    failed = [i for i in ids if after_late[i]["status"] == "FAILED"]
    assert {after_late[i]["error"]["code"] for i in failed} <= {"retries_exhausted"}
    retried: Counter[str] = Counter()
    for _ in range(5):  # each retry has FAULT_RATE**MAX_RECEIVE_COUNT (1 %) odds of failing again
        failed = [i for i, j in after_late.items() if i in photo_of and j["status"] == "FAILED"]
        if not failed:
            break
        for job_id in failed:
            resp = runtime.http.post(f"/jobs/{job_id}/retry")
            assert resp.status_code == 202, resp.text
            retried[job_id] += 1
        after_late = wait_until_settled(runtime, set(failed), timeout=120)
    final = all_jobs(runtime)

    lost = [i for i in ids if i not in final or final[i]["status"] != "SUCCEEDED"]
    events = drain_events(runtime, events_url)
    succeeded_events: defaultdict[str, set[str]] = defaultdict(set)
    for event in events:
        if event["type"] == "job.succeeded":
            succeeded_events[event["job"]["job_id"]].add(event["id"])
    double = [i for i in ids if len(succeeded_events[i]) > 1]
    top1: defaultdict[str, set[int]] = defaultdict(set)
    for job_id, name in photo_of.items():
        top1[name].add(final[job_id]["predictions"][0]["class_id"])
    extra_runs = sum(final[i]["attempts"] for i in ids) - len(ids)
    faults = len(runtime.lines(FAULT_LOGGED))
    crashes = len(runtime.lines(CRASH_LOGGED))
    with capsys.disabled():  # the summary line belongs in every run's output
        print(
            f"\nchaos: jobs={len(ids)} faults_injected={faults} crashes_mid_batch={crashes} "
            f"duplicates_injected={len(early) + len(late)} redeliveries={extra_runs} "
            f"dead_lettered={len(retried)} lost={len(lost)} double_processed={len(double)}"
        )

    assert lost == []
    assert double == []
    assert set(succeeded_events) == set(ids)  # everybody was told
    for name, classes in top1.items():
        assert len(classes) == 1, (name, classes)  # the same photo, the same answer
        assert classes <= PHOTOS[name][2], (name, classes)
    for job_id in ids:
        runs = 1 + retried[job_id]
        copies = 1 + (job_id in early)
        assert 1 <= final[job_id]["attempts"] <= MAX_RECEIVE_COUNT * runs * copies, final[job_id]
    assert faults > JOBS * 0.2
    assert crashes >= 3
    assert extra_runs >= faults  # every injected fault cost a real, counted attempt
