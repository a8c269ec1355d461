"""``make bench``: how close the whole service comes to the bare model, measured in one run.

On the same images (real photos made into 12 MP JPEGs, 1080p JPEGs and small PNGs by
``infra.corpus``) it measures:

- bare: ``to_model_input`` + ``Classifier.predict``, one image after another, in this process, with
  the same decoder and session settings as the service: the work nobody can avoid;
- naive: the same loop with full-size JPEG decoding (no ``draft``);
- pipeline: a backlog submitted through the HTTP API of the local runtime while its classifier is
  not yet polling, then drained by the real handler at reserved concurrency 1 (``LocalRuntime``
  with ``poll=False``); the clock runs from starting the pollers to the last batch settled;
- the per-stage times the job records carry;
- cold start and the classifier's own peak memory and CPU time, in fresh processes
  (``infra.probe``).

It prints the figures and writes them as JSON (``build/bench.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import requests

from chalicelib.classifier import Classifier
from chalicelib.images import to_model_input
from chalicelib.overlap import Overlap
from chalicelib.settings import Settings
from infra.corpus import Sample, backlog, distinct_images, largest_accepted
from infra.emulator import Emulator, emulator_process
from infra.local import LocalRuntime

ROOT = Path(__file__).resolve().parent.parent
BENCH_TENANT = "bench"
BENCH_KEY = "bench-tenant-key-0123456789"
STAGES = ("queue_wait", "start", "s3_get", "decode", "inference", "total")  # in each job record
# Per batch, so in the classifier's metrics rather than the records: stage name → metric.
BATCH_STAGES = {"write": "result_write_ms", "notify": "event_publish_ms"}
LAMBDA_MEMORY_MB = 1024

# List prices used for the cost lines (us-east-1, x86; read from the providers' pricing pages:
# https://aws.amazon.com/lambda/pricing/, https://aws.amazon.com/rekognition/pricing/,
# https://cloud.google.com/vision/pricing). Free tiers are left out.
LAMBDA_GB_SECOND_USD = 0.0000166667
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
LAMBDA_FULL_VCPU_MB = 1769  # Lambda gives one full vCPU at 1,769 MB, proportionally less below
REKOGNITION_DETECT_LABELS_USD = 1.00 / 1000  # first million images a month
GOOGLE_VISION_LABELS_USD = 1.50 / 1000  # units 1,001 to 5,000,000 a month
BATCH_SIZE = 10


@dataclass(frozen=True)
class LoopResult:
    """A timed loop over the images in this process."""

    seconds: float
    top1: list[int]
    cpu_seconds: float = 0.0  # the whole process's CPU time over the loop (all threads)

    def rate(self) -> float:
        """Images per second."""
        return len(self.top1) / self.seconds


def model_loop(
    samples: list[Sample], classifier: Classifier, *, max_pixels: int, draft: bool = True
) -> LoopResult:
    """Decode, resize and classify each image in turn: the bare work, nothing else."""
    top1 = []
    cpu, started = time.process_time(), time.perf_counter()
    for sample in samples:
        tensor = to_model_input(sample.data, max_pixels=max_pixels, draft=draft)
        top1.append(classifier.predict(tensor[None])[0][0].class_id)
    return LoopResult(time.perf_counter() - started, top1, time.process_time() - cpu)


def overlapped_loop(
    samples: list[Sample], classifier: Classifier, *, max_pixels: int, workers: int
) -> LoopResult:
    """The bare work done as the classifier does it: batches of ten, decoded on ``workers``
    threads, one ONNX run per batch. Still nothing but decode, resize and inference."""
    overlap = Overlap(workers)
    top1: list[int] = []
    cpu, started = time.process_time(), time.perf_counter()
    for start in range(0, len(samples), BATCH_SIZE):
        batch = samples[start : start + BATCH_SIZE]
        tensors = overlap.map(lambda s: to_model_input(s.data, max_pixels=max_pixels), batch)
        ready = [t for t in tensors if not isinstance(t, Exception)]
        if len(ready) != len(batch):
            raise RuntimeError("a benchmark image failed to decode")
        top1 += [r[0].class_id for r in classifier.predict(np.stack(ready))]
    return LoopResult(time.perf_counter() - started, top1, time.process_time() - cpu)


def _post(url: str, sample: Sample) -> str:
    resp = requests.post(
        f"{url}/jobs",
        data=sample.data,
        headers={"x-api-key": BENCH_KEY, "Content-Type": sample.content_type},
        timeout=120,
    )
    if resp.status_code != 202:
        raise RuntimeError(f"submitting {sample.name} gave {resp.status_code}: {resp.text}")
    return str(resp.json()["job_id"])


def submit(url: str, samples: list[Sample]) -> list[str]:
    """Submit every image through the API (4 at a time); the job ids, in order."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda s: _post(url, s), samples))


def _aws() -> Any:
    from chalicelib.aws import AwsClients

    return AwsClients(Settings.from_env())


def queue_depth(aws: Any) -> int:
    """Messages on the jobs queue, visible or in flight."""
    attrs = aws.sqs.get_queue_attributes(
        QueueUrl=os.environ["JOBS_QUEUE_URL"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def fetch_jobs(aws: Any, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The job records, read straight from the table (consistent reads)."""
    from chalicelib.job_store import JobRecord

    table = os.environ["JOBS_TABLE"]
    jobs: dict[str, dict[str, Any]] = {}
    for start in range(0, len(job_ids), 100):
        keys = [{"job_id": {"S": j}} for j in job_ids[start : start + 100]]
        request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            resp = aws.dynamodb.batch_get_item(RequestItems=request)
            for item in resp["Responses"].get(table, []):
                job = JobRecord.from_item(item)
                jobs[job.job_id] = job.view().model_dump(mode="json")
            request = resp.get("UnprocessedKeys") or {}
    return jobs


def wait_terminal(
    aws: Any,
    job_ids: list[str],
    timeout_s: float,
    *,
    settled: Callable[[], int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Wait until the queue is empty and every job is SUCCEEDED or FAILED.

    ``settled`` (messages handed to the classifier so far, when the caller can tell) keeps the
    wait from asking the emulator anything before that reaches the backlog's size: the emulator
    shares the CPU with the classifier, and each question about a queue of hundreds of messages
    costs it milliseconds.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if settled is not None and settled() < len(job_ids):
            continue
        if queue_depth(aws):
            continue
        jobs = fetch_jobs(aws, job_ids)
        if all(jobs.get(j, {}).get("status") in ("SUCCEEDED", "FAILED") for j in job_ids):
            return jobs
    raise TimeoutError(f"the backlog did not drain in {timeout_s}s")


def batch_stage_means(before: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Mean milliseconds per image of the per-batch stages since ``before`` (count, sum)."""
    from chalicelib.telemetry import REGISTRY

    out = {}
    for stage, metric in BATCH_STAGES.items():
        count, total = REGISTRY.summary(metric)
        if count > before[stage][0]:
            out[stage] = round((total - before[stage][1]) / (count - before[stage][0]), 2)
    return out


def stage_means(jobs: list[dict[str, Any]]) -> dict[str, float]:
    """Mean milliseconds per image of each stage the job records carry."""
    out = {}
    for stage in STAGES:
        values = [j["timings_ms"][stage] for j in jobs if stage in (j.get("timings_ms") or {})]
        if values:
            out[stage] = round(statistics.fmean(values), 2)
    return out


def run_probe(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python -m infra.probe ARGS`` and return its JSON (and its wall time)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "infra.probe", *args],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"infra.probe {args[0]} failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def cold_start(sample: Sample) -> dict[str, Any]:
    """Import + session + first result in a fresh interpreter."""
    with tempfile.NamedTemporaryFile(suffix=".jpg") as image:
        image.write(sample.data)
        image.flush()
        return run_probe("cold-start", image.name)


def classifier_process(
    runtime: LocalRuntime, samples: list[Sample], emulator: Emulator
) -> dict[str, Any]:
    """Peak RSS and CPU of a process that runs only the classify handler, on ``samples``; and
    the CPU the emulator spent serving it."""
    ids = submit(runtime.url, samples)
    cpu = emulator.cpu_seconds()
    result = run_probe("classify", str(len(ids)))
    result["emulator_cpu_ms_per_image"] = round((emulator.cpu_seconds() - cpu) * 1000 / len(ids), 1)
    jobs = fetch_jobs(_aws(), ids)
    result["succeeded"] = sum(j["status"] == "SUCCEEDED" for j in jobs.values())
    return result


def pipeline(runtime: LocalRuntime, samples: list[Sample], timeout_s: float) -> dict[str, Any]:
    """Submit the backlog with the classifier stopped, then time its drain."""
    aws = _aws()
    ids = submit(runtime.url, samples)
    queued = queue_depth(aws)
    from chalicelib.telemetry import REGISTRY

    before = {stage: REGISTRY.summary(metric) for stage, metric in BATCH_STAGES.items()}
    started = time.time()
    runtime.start_pollers()
    try:
        poller = next(p for p in runtime.pollers if p.name == "sqs-classify")
        jobs = wait_terminal(
            aws,
            ids,
            timeout_s,
            settled=lambda: poller.stats.messages - poller.stats.reported_failures,
        )
    finally:
        runtime.stop_pollers()
    drain_s = poller.stats.last_batch_done - started
    done = [jobs[j] for j in ids]
    succeeded = [j for j in done if j["status"] == "SUCCEEDED"]
    return {
        "images": len(ids),
        "queued_before_start": queued,
        "succeeded": len(succeeded),
        "failed": len(done) - len(succeeded),
        "attempts": sum(j["attempts"] for j in done),
        "drain_s": round(drain_s, 3),
        "rate_ips": round(len(ids) / drain_s, 2),
        "batches": poller.stats.batches,
        "mean_batch": round(poller.stats.messages / max(1, poller.stats.batches), 2),
        "handler_ms_per_image": round(
            poller.stats.handler_seconds * 1000 / max(1, poller.stats.messages), 2
        ),
        "outside_handler_ms_per_image": round(
            (drain_s - poller.stats.handler_seconds) * 1000 / max(1, poller.stats.messages), 2
        ),
        "stages_ms": {**stage_means(succeeded), **batch_stage_means(before)},
        "top1": [j["predictions"][0]["class_id"] if j["predictions"] else -1 for j in done],
    }


def with_env(runtime: LocalRuntime, samples: list[Sample], timeout_s: float, **env: str) -> Any:
    """A drain with some settings changed (the service is rebuilt from the environment)."""
    from chalicelib.wiring import set_services

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    set_services(None)
    try:
        result = pipeline(runtime, samples, timeout_s)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        set_services(None)
    result.pop("top1")
    return {"settings": env, **result}


def lever_drains(runtime: LocalRuntime, samples: list[Sample], timeout_s: float) -> list[Any]:
    """The same backlog drained under each setting the defaults were chosen from."""
    runs = [with_env(runtime, samples, timeout_s, CLASSIFY_WORKERS=str(n)) for n in (1, 2, 4, 8)]
    runs += [with_env(runtime, samples, timeout_s, ORT_THREADS=str(n)) for n in (1, 2)]
    runs.append(with_env(runtime, samples, timeout_s, ORT_SPINNING="1"))
    return runs


def _scratch_jobs(repo: Any, count: int) -> list[Any]:
    """``count`` new PENDING jobs, recorded; the jobs as queued."""
    from chalicelib.contract import JobStatus
    from chalicelib.job_store import JobRecord, new_job_id, utc_now

    jobs = []
    for _ in range(count):
        job_id, now = new_job_id(), utc_now()
        job = JobRecord(
            job_id=job_id,
            owner="bench-scratch",
            status=JobStatus.PENDING,
            created_at=now,
            updated_at=now,
            s3_key=f"images/bench-scratch/{job_id}",
            content_type="image/jpeg",
            size_bytes=1,
            attempts=0,
        )
        repo.create(job)
        jobs.append(job)
    return jobs


def write_levers(rounds: int = 3) -> dict[str, Any]:
    """Ten conditional writes: one after another, on the thread pool, or in one transaction;
    ten events: ten Publish calls or one PublishBatch. Against the runtime's emulator."""
    from chalicelib.contract import JobStatus
    from chalicelib.job_store import JobRepository
    from chalicelib.overlap import Overlap

    aws = _aws()
    table = os.environ["JOBS_TABLE"]
    repo = JobRepository(aws.dynamodb, table)
    pool = Overlap(int(os.environ.get("CLASSIFY_WORKERS") or Settings().classify_workers))

    def transact(ids: list[str]) -> None:
        aws.dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"job_id": {"S": job_id}},
                        "UpdateExpression": "SET #s = :to, attempts = attempts + :one",
                        "ConditionExpression": "#s IN (:pending, :processing)",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {
                            ":to": {"S": JobStatus.PROCESSING.value},
                            ":one": {"N": "1"},
                            ":pending": {"S": JobStatus.PENDING.value},
                            ":processing": {"S": JobStatus.PROCESSING.value},
                        },
                    }
                }
                for job_id in ids
            ]
        )

    ways = {
        "one_after_another": lambda ids: [repo.start(j, generation=0) for j in ids],
        "thread_pool": lambda ids: pool.map(lambda j: repo.start(j, generation=0), ids),
        "transaction": transact,
    }
    timings: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            ids = [job.job_id for job in _scratch_jobs(repo, 10)]
            started = time.perf_counter()
            way(ids)
            timings[name].append((time.perf_counter() - started) * 1000)
    items = aws.dynamodb.describe_table(TableName=table)["Table"].get("ItemCount", 0)
    return {
        "ten_conditional_writes_ms": {k: round(min(v), 1) for k, v in timings.items()},
        "table_items": items,
        **publish_levers(aws, rounds),
    }


def emulator_call_costs(emulator: Emulator, rounds: int = 50) -> dict[str, float]:
    """The emulator's CPU per call, for each call the classifier makes per image (the start,
    the result, the S3 read) or per batch (the events), one call type at a time."""
    from chalicelib.contract import JobStatus, Model, Prediction
    from chalicelib.job_events import EventPublisher
    from chalicelib.job_store import JobRepository

    aws = _aws()
    repo = JobRepository(aws.dynamodb, os.environ["JOBS_TABLE"])
    bucket, key = os.environ["IMAGES_BUCKET"], "bench-scratch/one-megabyte"
    aws.s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(1_000_000))
    publisher = EventPublisher(
        aws.sns, topic_arn=os.environ["JOB_EVENTS_TOPIC_ARN"], topic_name=Settings().topic_name
    )
    ids = [job.job_id for job in _scratch_jobs(repo, rounds)]
    started: list[Any] = []
    top5 = [Prediction(class_id=i, label="tabby, tabby cat", probability=0.1) for i in range(5)]

    def succeed(job: Any) -> Any:
        return repo.succeed(
            job, predictions=top5, model=Model(name="m", version="1"), timings_ms={"total": 1.0}
        )

    def per_call(fn: Callable[[Any], Any], args: list[Any]) -> float:
        cpu = emulator.cpu_seconds()
        for arg in args:
            fn(arg)
        return round((emulator.cpu_seconds() - cpu) * 1000 / len(args), 2)

    def read(_: Any) -> bytes:
        return aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]

    costs = {
        "start (conditional UpdateItem returning the record)": per_call(
            lambda job_id: started.append(repo.start(job_id, generation=0).job), ids
        ),
    }
    costs["result (conditional PutItem)"] = per_call(succeed, started)
    costs["S3 GetObject, 1 MB"] = per_call(read, ids)
    done = [j.model_copy(update={"status": JobStatus.SUCCEEDED}) for j in started[:10]]
    costs["PublishBatch of ten events"] = per_call(
        publisher.publish_many, [done] * max(5, rounds // 2)
    )
    return costs


def publish_levers(aws: Any, rounds: int) -> dict[str, Any]:
    """Ten events as ten Publish calls, or as one PublishBatch."""
    topic = os.environ["JOB_EVENTS_TOPIC_ARN"]
    body = json.dumps({"type": "job.succeeded", "job": {"predictions": [{"p": 0.5}] * 5}})
    single: list[float] = []
    batch: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(10):
            aws.sns.publish(TopicArn=topic, Message=body)
        single.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        aws.sns.publish_batch(
            TopicArn=topic,
            PublishBatchRequestEntries=[{"Id": str(i), "Message": body} for i in range(10)],
        )
        batch.append((time.perf_counter() - started) * 1000)
    return {
        "ten_events_ms": {"publish": round(min(single), 1), "publish_batch": round(min(batch), 1)}
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def _prepare_env() -> None:
    os.environ["API_KEYS"] = f"{BENCH_TENANT}:{BENCH_KEY}"
    for knob in ("FAULT_RATE", "CRASH_RATE"):
        os.environ[knob] = "0"
    for name in ("AWS_ENDPOINT_URL", "LOCALSTACK_HOST", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)
    # Only ever the emulator: never let real credentials near it.
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def measure(count: int, rss_count: int, timeout_s: float, levers: int) -> dict[str, Any]:
    """Every figure of the report, from one run."""
    _prepare_env()
    settings = Settings.from_env()
    load_before = load_average()
    distinct = distinct_images()
    samples = backlog(count, distinct)
    cold = cold_start(next(s for s in distinct if s.kind == "jpeg-12mp"))
    classifier = Classifier(
        settings.model_dir, threads=settings.ort_threads, spinning=settings.ort_spinning
    )
    limit = settings.max_image_pixels
    model_loop(samples[:6], classifier, max_pixels=limit)  # warm the session and the caches
    bare_before = model_loop(samples, classifier, max_pixels=limit)
    naive = model_loop(samples, classifier, max_pixels=limit, draft=False)
    overlapped = overlapped_loop(
        samples, classifier, max_pixels=limit, workers=settings.classify_workers
    )
    log_path = ROOT / "build" / "bench-runtime.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log_file, contextlib.redirect_stderr(log_file):
        runs = drains(samples, backlog(rss_count, distinct), timeout_s, levers)
    bare_after = model_loop(samples, classifier, max_pixels=limit)
    # The faster of the two bare passes: the ratio is taken against the better bare figure.
    bare = max(bare_before, bare_after, key=LoopResult.rate)
    doc = report(
        samples=samples,
        settings=settings,
        classifier=classifier,
        bare=bare,
        bare_passes=[bare_before, bare_after],
        naive=naive,
        overlapped=overlapped,
        drained=runs["pipeline"],
        in_process=runs["in_process"],
        cold=cold,
        process=runs["process"],
        load=[load_before, load_average()],
    )
    if levers:
        doc["levers"] = runs["levers"]
    return doc


def in_process_drain(count: int, timeout_s: float) -> dict[str, Any]:
    """The backlog drained by a runtime that runs the emulator inside the runtime's process, for
    comparison (``make run`` starts the emulator in a process of its own)."""
    _prepare_env()
    samples = backlog(count)
    runtime = LocalRuntime(
        port=0, emulator_port=0, poll=False, visibility_timeout_s=120, emulator_in_process=True
    )
    runtime.start()
    try:
        warm_up(runtime, samples, timeout_s)
        result = pipeline(runtime, samples, timeout_s)
    finally:
        runtime.stop()
    result.pop("top1")
    return result


def warm_up(runtime: LocalRuntime, samples: list[Sample], timeout_s: float) -> None:
    """One batch through the runtime before the timed drain: the classifier's first batch loads
    the model and the pollers build their clients (half a second or more), and the cold start
    has its own figure. The drain then measures the rate at which a warm classifier empties a
    backlog."""
    pipeline(runtime, samples[:10], timeout_s)


def drains(
    samples: list[Sample], rss_samples: list[Sample], timeout_s: float, levers: int
) -> dict[str, Any]:
    """The local runtime's drains: with the emulator in a process of its own (as AWS is never
    in the classifier's process; as ``make run`` starts it), then with the emulator inside the
    runtime's process."""
    from chalicelib.wiring import set_services

    out: dict[str, Any] = {}
    with emulator_process() as emulator:
        os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint
        runtime = LocalRuntime(port=0, emulator_port=0, poll=False, visibility_timeout_s=120)
        runtime.start()
        try:
            out["process"] = classifier_process(runtime, rss_samples, emulator)
            out["process"]["worst_batch"] = classifier_process(
                runtime, largest_accepted(10), emulator
            )
            warm_up(runtime, samples, timeout_s)
            # Two drains, the faster counts: the same treatment as the bare loop's two passes.
            passes = [pipeline(runtime, samples, timeout_s) for _ in range(2)]
            out["pipeline"] = max(passes, key=lambda p: p["rate_ips"])
            out["pipeline"]["passes_ips"] = [p["rate_ips"] for p in passes]
            if levers:
                out["levers"] = {
                    "drains": lever_drains(runtime, samples[:levers], timeout_s),
                    "calls": write_levers(),
                    "emulator_cpu_ms_per_call": emulator_call_costs(emulator),
                }
        finally:
            runtime.stop()
            set_services(None)
    del os.environ["AWS_ENDPOINT_URL"]
    # Chalice's local server can be created once per process: the second drain gets its own.
    proc = subprocess.run(
        [sys.executable, "-m", "infra.bench", "--in-process-drain", str(len(samples))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the in-process drain failed:\n{proc.stdout}\n{proc.stderr}")
    out["in_process"] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def report(
    *,
    samples: list[Sample],
    settings: Settings,
    classifier: Classifier,
    bare: LoopResult,
    bare_passes: list[LoopResult],
    naive: LoopResult,
    overlapped: LoopResult,
    drained: dict[str, Any],
    in_process: dict[str, Any],
    cold: dict[str, Any],
    process: dict[str, Any],
    load: list[list[float]],
) -> dict[str, Any]:
    """The JSON document: inputs, figures, ratios."""
    top1 = drained.pop("top1")
    rate = drained["rate_ips"]
    return {
        "command": "make bench",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load[0],
            "load_average_after": load[1],
        },
        "images": {
            "count": len(samples),
            "kinds": dict(Counter(s.kind for s in samples)),
            "mean_bytes": round(statistics.fmean(len(s.data) for s in samples)),
            "max_bytes": max(len(s.data) for s in samples),
        },
        "model": classifier.info.model_dump(),
        "ort_threads": settings.ort_threads,
        "ort_spinning": settings.ort_spinning,
        "classify_workers": settings.classify_workers,
        "bare": {
            "rate_ips": round(bare.rate(), 2),
            "seconds": round(bare.seconds, 3),
            "passes_ips": [round(p.rate(), 2) for p in bare_passes],
            "cpu_ms_per_image": round(bare.cpu_seconds * 1000 / len(bare.top1), 1),
        },
        "naive": {"rate_ips": round(naive.rate(), 2), "seconds": round(naive.seconds, 3)},
        "bare_overlapped": {
            "rate_ips": round(overlapped.rate(), 2),
            "seconds": round(overlapped.seconds, 3),
            "cpu_ms_per_image": round(overlapped.cpu_seconds * 1000 / len(overlapped.top1), 1),
            "workers": settings.classify_workers,
            "batch": BATCH_SIZE,
        },
        "pipeline": drained,
        "pipeline_in_process_emulator": in_process,
        "ratios": {
            "pipeline_vs_bare": round(rate / bare.rate(), 3),
            "pipeline_in_process_emulator_vs_bare": round(in_process["rate_ips"] / bare.rate(), 3),
            "pipeline_vs_bare_overlapped": round(rate / overlapped.rate(), 3),
            "pipeline_vs_naive": round(rate / naive.rate(), 3),
            "bare_vs_naive": round(bare.rate() / naive.rate(), 3),
        },
        "labels": {
            "pipeline_agrees_with_bare": sum(a == b for a, b in zip(top1, bare.top1, strict=True)),
            "right": sum(t in s.expected for t, s in zip(top1, samples, strict=True)),
            "of": len(samples),
        },
        "cold_start": cold,
        "classifier_process": {**process, "lambda_memory_mb": LAMBDA_MEMORY_MB},
        "cost_per_million_images": cost(process),
    }


def lambda_cost(ms_per_image: float) -> float:
    """Lambda compute + request cost of a million images, at ``ms_per_image`` billed time."""
    gb = LAMBDA_MEMORY_MB / 1024
    compute = 1_000_000 * ms_per_image / 1000 * gb * LAMBDA_GB_SECOND_USD
    requests = 1_000_000 / BATCH_SIZE * LAMBDA_REQUEST_USD
    return round(compute + requests, 2)


def cost(process: dict[str, Any]) -> dict[str, Any]:
    """Per million images: Lambda at the measured time, and the managed APIs' list prices.

    Two Lambda figures: the handler time measured here (2 cores), and the classifier's CPU time
    per image (after its first batch) stretched to the 1024/1769 of a vCPU a 1024 MB function
    gets (if it is CPU-bound there, it cannot take less).
    """
    share = LAMBDA_MEMORY_MB / LAMBDA_FULL_VCPU_MB
    stretched = (process["warm_cpu_ms_per_image"] or process["cpu_ms_per_image"]) / share
    return {
        "lambda_ms_per_image_measured": process["handler_ms_per_image"],
        "lambda_ms_per_image_at_vcpu_share": round(stretched, 1),
        "vcpu_share": round(share, 3),
        "lambda_usd_per_million_measured": lambda_cost(process["handler_ms_per_image"]),
        "lambda_usd_per_million_at_vcpu_share": lambda_cost(stretched),
        "rekognition_detect_labels_usd_per_million": REKOGNITION_DETECT_LABELS_USD * 1_000_000,
        "google_vision_labels_usd_per_million": GOOGLE_VISION_LABELS_USD * 1_000_000,
    }


def summary(doc: dict[str, Any]) -> list[str]:
    """The printed lines."""
    m, i, b, n, p, r = (
        doc["machine"],
        doc["images"],
        doc["bare"],
        doc["naive"],
        doc["pipeline"],
        doc["ratios"],
    )
    c, proc, labels = doc["cold_start"], doc["classifier_process"], doc["labels"]
    usd = doc["cost_per_million_images"]
    q = doc["pipeline_in_process_emulator"]
    o = doc["bare_overlapped"]
    worst = proc["worst_batch"]
    kinds = ", ".join(f"{v} {k}" for k, v in i["kinds"].items())
    stages = "  ".join(f"{k} {v:g}" for k, v in p["stages_ms"].items())
    return [
        f"bench: {i['count']} images ({kinds}; mean {i['mean_bytes'] / 1e6:.2f} MB), "
        f"model {doc['model']['name']} {doc['model']['version']}, {m['cpus']} cores, "
        f"load average {m['load_average_before'][0]} before, {m['load_average_after'][0]} after",
        f"bare decode+resize+inference: {b['rate_ips']:.1f} img/s, {b['cpu_ms_per_image']:g} ms "
        f"CPU per image (passes before/after the pipeline: {b['passes_ips'][0]:.1f} / "
        f"{b['passes_ips'][1]:.1f})",
        f"naive (full-size decode, one at a time): {n['rate_ips']:.1f} img/s",
        f"bare, overlapped as the classifier does it ({o['workers']} decode threads, batches of "
        f"{o['batch']}): {o['rate_ips']:.1f} img/s, {o['cpu_ms_per_image']:g} ms CPU per image",
        f"pipeline (local runtime as `make run` starts it: classifier concurrency 1, emulator "
        f"in its own process): "
        f"{p['rate_ips']:.1f} img/s ({p['images']} jobs queued first, drained after a warm-up "
        f"batch in "
        f"{p['drain_s']:.2f} s, {p['batches']} batches of {p['mean_batch']:g}, "
        f"{p['succeeded']} succeeded; passes {' / '.join(f'{x:.1f}' for x in p['passes_ips'])})",
        f"pipeline (the same, emulator inside the runtime's process): "
        f"{q['rate_ips']:.1f} img/s (drained in {q['drain_s']:.2f} s, {q['succeeded']} succeeded)",
        f"ratio pipeline/bare: {r['pipeline_vs_bare']:.2f} (emulator inside the runtime: "
        f"{r['pipeline_in_process_emulator_vs_bare']:.2f})   pipeline/overlapped bare: "
        f"{r['pipeline_vs_bare_overlapped']:.2f}   pipeline/naive: "
        f"{r['pipeline_vs_naive']:.2f}   bare/naive: {r['bare_vs_naive']:.2f}",
        f"stages, mean ms per image: {stages}   (handler {p['handler_ms_per_image']:g} ms/image, "
        f"outside it {p['outside_handler_ms_per_image']:g})",
        f"labels: pipeline top-1 = bare top-1 on {labels['pipeline_agrees_with_bare']}/"
        f"{labels['of']}; right on {labels['right']}/{labels['of']}",
        f"cold start: {c['total_ms']:.0f} ms (import {c['import_ms']:.0f}, session "
        f"{c['session_ms']:.0f}, first result {c['first_result_ms']:.0f}); "
        f"{c['process_wall_ms']:.0f} ms from spawning the process",
        f"classifier process: peak RSS {proc['peak_rss_mb']:.0f} MB of a "
        f"{proc['lambda_memory_mb']} MB Lambda ({proc['rss_after_import_mb']:.0f} MB after "
        f"import), {proc['cpu_ms_per_image']:g} ms CPU ({proc['warm_cpu_ms_per_image']} after the "
        f"first batch) and {proc['handler_ms_per_image']:g} ms "
        f"in the handler per image ({proc['images']} images; the emulator meanwhile "
        f"{proc['emulator_cpu_ms_per_image']:g} ms CPU per image)",
        f"classifier process, worst batch (10 PNGs of 48 MP with alpha, the largest accepted): "
        f"peak RSS {worst['peak_rss_mb']:.0f} MB, {worst['succeeded']} succeeded",
        f"cost per million images: Lambda ${usd['lambda_usd_per_million_measured']:.2f} at "
        f"{usd['lambda_ms_per_image_measured']:g} ms/image, "
        f"${usd['lambda_usd_per_million_at_vcpu_share']:.2f} at "
        f"{usd['lambda_ms_per_image_at_vcpu_share']:g} ms/image on {usd['vcpu_share']} vCPU; "
        f"Rekognition DetectLabels ${usd['rekognition_detect_labels_usd_per_million']:.0f}, "
        f"Google Vision labels ${usd['google_vision_labels_usd_per_million']:.0f}",
    ]


def lever_lines(levers: dict[str, Any] | None) -> list[str]:
    """The printed lines of the lever study."""
    if not levers:
        return []
    lines = []
    for run in levers["drains"]:
        setting = " ".join(f"{k}={v}" for k, v in run["settings"].items())
        lines.append(
            f"lever {setting}: {run['rate_ips']:.1f} img/s ({run['images']} images, handler "
            f"{run['handler_ms_per_image']:g} ms/image, stages {run['stages_ms']})"
        )
    calls = levers["calls"]
    writes = ", ".join(f"{k} {v:g} ms" for k, v in calls["ten_conditional_writes_ms"].items())
    events = ", ".join(f"{k} {v:g} ms" for k, v in calls["ten_events_ms"].items())
    lines.append(
        f"lever ten conditional writes ({calls['table_items']} items in the table): {writes}"
    )
    lines.append(f"lever ten events: {events}")
    costs = ", ".join(f"{k} {v:g}" for k, v in levers["emulator_cpu_ms_per_call"].items())
    lines.append(f"emulator CPU per call, ms: {costs}")
    return lines


def markdown(doc: dict[str, Any]) -> str:
    """The README's table of one run's figures."""
    b, n, p, q, r = (
        doc[k] for k in ("bare", "naive", "pipeline", "pipeline_in_process_emulator", "ratios")
    )
    c, proc, usd, m = (
        doc["cold_start"],
        doc["classifier_process"],
        doc["cost_per_million_images"],
        doc["machine"],
    )
    stages = ", ".join(
        f"{k} {v:g}" for k, v in p["stages_ms"].items() if k not in ("queue_wait", "total")
    )
    rows = [
        ("bare decode + resize + inference, one image after another", f"{b['rate_ips']:.1f} img/s"),
        ("naive: the same with full-size JPEG decoding", f"{n['rate_ips']:.1f} img/s"),
        (
            f"pipeline: {p['images']} jobs queued, then drained by the local runtime "
            "(classifier concurrency 1, emulator in its own process)",
            f"{p['rate_ips']:.1f} img/s",
        ),
        ("**pipeline / bare**", f"**{r['pipeline_vs_bare']:.2f}**"),
        (
            "pipeline with the emulator inside the runtime's process / bare",
            f"{q['rate_ips']:.1f} img/s, {r['pipeline_in_process_emulator_vs_bare']:.2f}",
        ),
        (
            "bare work overlapped as the classifier does it (decode threads, batches of 10); "
            "pipeline / that",
            f"{doc['bare_overlapped']['rate_ips']:.1f} img/s; "
            f"{r['pipeline_vs_bare_overlapped']:.2f}",
        ),
        (
            "pipeline / naive; bare / naive",
            f"{r['pipeline_vs_naive']:.2f}; {r['bare_vs_naive']:.2f}",
        ),
        ("stages, mean ms per image (concurrent, so they overlap)", stages),
        (
            "handler time per image; poller time outside it",
            f"{p['handler_ms_per_image']:g} ms; {p['outside_handler_ms_per_image']:g} ms",
        ),
        ("mean queue wait of the backlog", f"{p['stages_ms'].get('queue_wait', 0) / 1000:.1f} s"),
        (
            "cold start: import + session + first result (fresh process)",
            f"{c['total_ms']:.0f} ms ({c['import_ms']:.0f} + {c['session_ms']:.0f} + "
            f"{c['first_result_ms']:.0f})",
        ),
        (
            "classifier-only process, peak RSS (benchmark mix)",
            f"{proc['peak_rss_mb']:.0f} MB of 1024 MB",
        ),
        (
            "classifier-only process, peak RSS (ten 48 MP RGBA PNGs)",
            f"{proc['worst_batch']['peak_rss_mb']:.0f} MB of 1024 MB",
        ),
        (
            "CPU time per image: bare loop; classifier-only process; the emulator serving it",
            f"{b['cpu_ms_per_image']:g} ms; {proc['warm_cpu_ms_per_image']} ms after its first "
            f"batch ({proc['cpu_ms_per_image']:g} ms with it); "
            f"{proc['emulator_cpu_ms_per_image']:g} ms",
        ),
        (
            "Lambda cost per million images (1024 MB, x86, batches of 10)",
            f"${usd['lambda_usd_per_million_measured']:.2f} (at "
            f"{usd['lambda_ms_per_image_measured']:g} ms/image); "
            f"${usd['lambda_usd_per_million_at_vcpu_share']:.2f} (CPU time on "
            f"{usd['vcpu_share']} vCPU)",
        ),
    ]
    head = (
        f"`make bench`, {doc['date'][:10]}, {m['cpus']} cores (shared), load average "
        f"{m['load_average_before'][0]} before and {m['load_average_after'][0]} after"
    )
    return "\n".join(
        [head, "", "| figure | value |", "| --- | --- |", *(f"| {a} | {v} |" for a, v in rows)]
    )


def main(argv: list[str] | None = None) -> int:
    """Measure, print, write the JSON."""
    parser = argparse.ArgumentParser(description="Measure throughput against the bare model.")
    parser.add_argument("--images", type=int, default=240, help="backlog size (default 240)")
    parser.add_argument(
        "--rss-images", type=int, default=30, help="images for the classifier-only process"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench.json")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument(
        "--levers",
        type=int,
        default=0,
        metavar="N",
        help="also drain N images under each alternative setting, and time batched calls",
    )
    parser.add_argument("--in-process-drain", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--markdown", type=Path, metavar="JSON", help="print the README table of a run and stop"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    logging.getLogger("imgcls.local").setLevel(logging.WARNING)  # the runtime's start-up lines
    if args.in_process_drain:
        print(json.dumps(in_process_drain(args.in_process_drain, args.timeout)), flush=True)
        return 0
    doc = measure(args.images, args.rss_images, args.timeout, args.levers)
    for line in summary(doc) + lever_lines(doc.get("levers")):
        print(line, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
