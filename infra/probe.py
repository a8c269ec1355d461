"""Measurements that need a process of their own; ``infra.bench`` runs them as subprocesses.

``python -m infra.probe cold-start IMAGE`` times what a new Lambda container does before its first
answer: import the handler module, build the ONNX session, classify one image.

``python -m infra.probe classify COUNT [--window S]`` is the classifier alone, as its own Lambda
would be: the app's ``classify`` handler driven by the local runtime's SQS poller, with a batching
window of S seconds (the app's own by default), against the emulator that ``AWS_ENDPOINT_URL``
names, until COUNT messages are settled. It reports the drain's time, the batch sizes, the
process's peak RSS and the CPU time it spent per image.

``python -m infra.probe import MODULE`` times importing MODULE in a fresh interpreter and reports
the resident memory after it (the status function's module against the API's).

``python -m infra.probe route-latency JOB --key KEY`` times ``GET /jobs/JOB`` served by the status
function's app and by the API function's app, each through Chalice's test client (the same local
gateway, no HTTP) against the same emulator, alternating; every time, in milliseconds.

Only the standard library is imported at the top, so the cold start starts from nothing.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402  (after the clock: the cold start counts every import)
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def cold_start(image: Path) -> dict[str, Any]:
    """Import the handler module, build the session, classify one image; milliseconds each."""
    sys.path.insert(0, str(ROOT))
    import app  # noqa: F401  (what Lambda imports during init)

    imported = time.perf_counter()
    from chalicelib.classifier import get_classifier
    from chalicelib.images import to_model_input
    from chalicelib.settings import Settings

    settings = Settings.from_env()
    classifier = get_classifier(
        settings.model_dir, threads=settings.ort_threads, spinning=settings.ort_spinning
    )
    session = time.perf_counter()
    tensor = to_model_input(image.read_bytes(), max_pixels=settings.max_image_pixels)
    top = classifier.predict(tensor[None])[0][0]
    first = time.perf_counter()
    return {
        "import_ms": _ms(imported - _STARTED),
        "session_ms": _ms(session - imported),
        "first_result_ms": _ms(first - session),
        "total_ms": _ms(first - _STARTED),
        "model": classifier.info.model_dump(),
        "top1": top.label,
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MiB.

    Not ``getrusage().ru_maxrss``: a child forked from a big parent inherits the parent's
    high-water mark there until it exits, so a probe started by a 1 GB benchmark would read 1 GB.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return peak_rss_mb()


def import_module(name: str) -> dict[str, Any]:
    """Import ``name`` in this fresh interpreter: how long, and the memory after."""
    import importlib

    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    importlib.import_module(name)
    return {"module": name, "import_ms": _ms(time.perf_counter() - started), "rss_mb": rss_mb()}


def route_latency(job_id: str, key: str, count: int) -> dict[str, Any]:
    """``GET /jobs/{job_id}`` through each function's app, alternating, after a warm-up each."""
    sys.path.insert(0, str(ROOT))
    from chalice.test import Client

    from app import app as api_app
    from chalicelib.status_api import app as status_app

    clients = {
        "status": Client(status_app, project_dir=str(ROOT)),
        "api": Client(api_app, project_dir=str(ROOT)),
    }
    times: dict[str, list[float]] = {name: [] for name in clients}
    headers = {"x-api-key": key}
    for round_ in range(count + 2):  # the first two rounds build services and clients
        for name, client in clients.items():
            started = time.perf_counter()
            resp = client.http.get(f"/jobs/{job_id}", headers=headers)
            if resp.status_code != 200:
                raise SystemExit(f"{name}: GET answered {resp.status_code}: {resp.body!r}")
            if round_ >= 2:
                times[name].append(_ms(time.perf_counter() - started))
    return {f"{name}_ms": values for name, values in times.items()}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def classify(count: int, timeout_s: float, window_s: float | None = None) -> dict[str, Any]:
    """Run only the classify handler until ``count`` messages are settled; memory and CPU."""
    sys.path.insert(0, str(ROOT))
    from app import app
    from chalicelib.aws import AwsClients
    from chalicelib.settings import Settings
    from infra.local import SqsPoller, function_setting

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    source: Any = next(s for s in app.event_sources if getattr(s, "name", "") == "classify")
    settings = Settings.from_env()
    clients = AwsClients(settings)
    url = settings.jobs_queue_url or clients.sqs.get_queue_url(QueueName=source.queue)["QueueUrl"]
    arn = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rss_before = peak_rss_mb()
    stop = threading.Event()
    poller = SqsPoller(
        sqs=clients.sqs,
        queue_url=url,
        queue_arn=arn,
        region=settings.region,
        handler=app.handler_map["classify"],
        function_name="classify",
        batch_size=source.batch_size,
        window_s=float(source.maximum_batching_window_in_seconds if window_s is None else window_s),
        timeout_s=int(function_setting(config, "classify", "lambda_timeout", 60)),
        memory_mb=int(function_setting(config, "classify", "lambda_memory_size", 1024)),
        stop=stop,
    )
    cpu_before, wall_before, started = _cpu_seconds(), time.perf_counter(), time.time()
    poller.start()
    deadline = time.monotonic() + timeout_s
    while poller.stats.messages - poller.stats.reported_failures < count:
        if time.monotonic() > deadline:
            stop.set()
            raise SystemExit(f"only {poller.stats.messages} of {count} messages in {timeout_s}s")
        time.sleep(0.01)
    stop.set()
    poller.join(timeout=60)
    # Without the first batch, which also builds the session and the AWS clients: the CPU from
    # the first batch's end to the last's, over the images of the batches in between.
    ends, sizes = poller.stats.batch_done_cpu_s, poller.stats.batch_sizes
    after_warm = sum(sizes[1 : len(ends)])
    return {
        "images": poller.stats.messages,
        "reported_failures": poller.stats.reported_failures,
        "batches": poller.stats.batches,
        "batch_sizes": sizes,
        "drain_s": round(poller.stats.last_batch_done - started, 3),
        "handler_errors": poller.stats.handler_errors,
        "rss_after_import_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "cpu_ms_per_image": _ms((_cpu_seconds() - cpu_before) / max(1, poller.stats.messages)),
        "warm_cpu_ms_per_image": _ms((ends[-1] - ends[0]) / after_warm) if after_warm else None,
        "handler_ms_per_image": _ms(poller.stats.handler_seconds / max(1, poller.stats.messages)),
        "wall_s": round(time.perf_counter() - wall_before, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Print one JSON object on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="probe", required=True)
    cold = sub.add_parser("cold-start")
    cold.add_argument("image", type=Path)
    run = sub.add_parser("classify")
    run.add_argument("count", type=int)
    run.add_argument("--timeout", type=float, default=600)
    run.add_argument("--window", type=float, default=None, help="batching window, seconds")
    imp = sub.add_parser("import")
    imp.add_argument("module")
    route = sub.add_parser("route-latency")
    route.add_argument("job")
    route.add_argument("--key", required=True)
    route.add_argument("--count", type=int, default=30)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if args.probe == "cold-start":
        result = cold_start(args.image)
    elif args.probe == "import":
        result = import_module(args.module)
    elif args.probe == "route-latency":
        result = route_latency(args.job, args.key, args.count)
    else:
        result = classify(args.count, args.timeout, args.window)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
