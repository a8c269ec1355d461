"""Measurements that need a process of their own; ``infra.bench`` runs them as subprocesses.

``python -m infra.probe cold-start IMAGE`` times what a new Lambda container does before its first
answer: import the handler module, build the ONNX session, classify one image.

``python -m infra.probe classify COUNT`` is the classifier alone, as its own Lambda would be: the
app's ``classify`` handler driven by the local runtime's SQS poller against the emulator that
``AWS_ENDPOINT_URL`` names, until COUNT messages are settled. It reports the process's peak RSS
(``ru_maxrss``) and the CPU time it spent per image.

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


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def classify(count: int, timeout_s: float) -> dict[str, Any]:
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
        window_s=float(source.maximum_batching_window_in_seconds),
        timeout_s=int(function_setting(config, "classify", "lambda_timeout", 60)),
        memory_mb=int(function_setting(config, "classify", "lambda_memory_size", 1024)),
        stop=stop,
    )
    cpu_before, wall_before = _cpu_seconds(), time.perf_counter()
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
        "batches": poller.stats.batches,
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
    args = parser.parse_args(argv)
    if args.probe == "cold-start":
        result = cold_start(args.image)
    else:
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        result = classify(args.count, args.timeout)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
