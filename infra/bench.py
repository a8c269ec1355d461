"""``make bench``: the whole service against the bare model, and what a job costs, in one run.

For two mixes of real photos (``infra.corpus``: the ordinary mix, mostly web-size images with one
12 MP JPEG in ten, and the heavy mix of 12 MP JPEGs, 1080p JPEGs and small PNGs) it measures:

- bare: decode + inference, one image after another, in this process (``bench_bare``), before
  and after the runtime runs (the faster pass counts); its CPU per image;
- end to end: the local runtime as ``make run`` starts it (``bench_host``) and a client in
  another process (``bench_client``) submitting every photo with 4 concurrent ``POST /jobs`` and
  long-polling each; from the first submission to the last result;
- drains: a backlog queued with the pollers stopped, then drained, at the deployed batching
  window of 0 and at 1 s; the classifier worker's CPU per image against the bare CPU;
- latency of single photos (``Prefer: wait``, and to a signed webhook), the long poll's reads,
  the status function against the API function, the AWS calls per job and the whole bill
  (``bench_cost``), the classifier's cold start and peak memory (``probe``).

It prints one line per figure (``bench_report``) and writes everything to ``build/bench.json``;
``--markdown FILE`` prints a run as the table of docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra import bench_runs as runs
from infra.bench_bare import Bare
from infra.bench_cost import bill, item_size, wait_cost
from infra.bench_durability import durability_cost
from infra.bench_host import RuntimeHost
from infra.bench_report import markdown, summary
from infra.bench_runtime import BENCH_KEY, BENCH_TENANT, WINDOW_HOOK, Runtime, run_module
from infra.corpus import MIXES, Sample, backlog, distinct_images, largest_accepted, mix_kinds
from infra.emulator import emulator_process

ROOT = Path(__file__).resolve().parent.parent
EFFICIENCY_TARGET = 1.15  # the classifier's CPU per image over the bare loop's, at most
CLASSIFY_MEMORY_MB = 1024


def _prepare_env() -> None:
    os.environ["API_KEYS"] = f"{BENCH_TENANT}:{BENCH_KEY}"
    for knob in ("FAULT_RATE", "CRASH_RATE"):
        os.environ[knob] = "0"
    for name in ("AWS_ENDPOINT_URL", "LOCALSTACK_HOST", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.pop(WINDOW_HOOK, None)
    # Only ever the emulator: never let real credentials near it.
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def _window_hook() -> bool:
    """Whether the local runtime can be given a batching window (see the decision record)."""
    return WINDOW_HOOK in (ROOT / "infra" / "local.py").read_text()


def warm_up(rt: Runtime, samples: list[Sample]) -> None:
    """Start the pollers and run a few jobs: the worker's first batch builds the ONNX session
    (that is the cold start's figure), and every later run meets a warm classifier."""
    rt.start_pollers()
    rt.client("e2e", str(rt.manifest(samples[:10], "warm-up")), "--wait", "20")


def runtime_runs(
    rt: Runtime, mixes: dict[str, list[Sample]], bare: Bare, web_jpeg: Sample, args: Any
) -> dict[str, Any]:
    """Everything measured through the runtime, each run's counters its own: the classifier's
    worker starts once and stays warm; drains pause it (SIGSTOP) while their backlog builds."""
    ordinary = mixes["ordinary"]
    warm_up(rt, ordinary)
    out: dict[str, Any] = {"end_to_end": {}, "drains": {m: [] for m in mixes}}
    for mix, samples in mixes.items():
        out["end_to_end"][mix] = runs.end_to_end(rt, mix, samples, bare.passes[mix][0])
    out["latency"] = {
        "prefer_wait": runs.latency(rt, web_jpeg, args.latency),
        "webhook": runs.webhooks(rt, web_jpeg, args.latency),
    }
    finished_job = out["end_to_end"]["ordinary"]["job_ids"][0]
    out["status_vs_api"] = runs.status_vs_api(rt, finished_job, args.route_count)
    out["long_poll"] = runs.long_poll(rt, web_jpeg, args.long_poll)
    out["item_bytes"] = {
        "pending": out["long_poll"]["pending_item_bytes"],
        "finished": item_size(rt.raw_item(finished_job)),
    }
    for mix, samples in mixes.items():
        first = bare.passes[mix][0]
        out["drains"][mix].append(runs.drain(rt, samples, first, name=mix, window_s=0))
    out["peak_rss_mb"] = rt.read_peak_rss()
    worst = runs.drain(rt, largest_accepted(args.worst), None, name="worst", window_s=0)
    out["worst_batch"] = {k: worst[k] for k in ("images", "succeeded", "peak_rss_mb")}
    out["drains"]["ordinary"] += window_drains(rt, ordinary, bare)
    return out


def window_drains(rt: Runtime, samples: list[Sample], bare: Bare) -> list[dict[str, Any]]:
    """The ordinary backlog drained with a batching window of 1 s: by the runtime once it takes
    ``LOCAL_BATCH_WINDOW_S``; until then by a classifier-only process at 1 s and at 0 s."""
    if not _window_hook():
        return [runs.probe_drain(rt, samples, window_s=w) for w in (0, 1)]
    rt.stop_pollers()
    rt.host.call("setenv", env={WINDOW_HOOK: "1"})
    try:
        warm_up(rt, samples)
        first = bare.passes["ordinary"][0]
        return [runs.drain(rt, samples, first, name="window-1", window_s=1)]
    finally:
        rt.stop_pollers()
        rt.host.call("setenv", env={WINDOW_HOOK: None})


def measure(args: Any) -> dict[str, Any]:
    """Every figure of the report, from one run."""
    from chalicelib.settings import Settings

    _prepare_env()
    settings = Settings.from_env()
    load_before = [round(x, 2) for x in os.getloadavg()]
    distinct = distinct_images(mix_kinds())
    counts = {"ordinary": args.ordinary, "heavy": args.heavy}
    mixes = {mix: backlog(counts[mix], distinct, mix) for mix in MIXES}
    web_jpeg = next(s for s in distinct if s.name == "chelsea.png:jpeg-web")
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "12mp.jpg"
        big.write_bytes(next(s for s in distinct if s.kind == "jpeg-12mp").data)
        cold = run_module("infra.probe", "cold-start", str(big))
        bare = Bare(settings)
        for mix, samples in mixes.items():
            bare.run(mix, samples)
        durability = durability_cost(web_jpeg.data, jobs=args.durability_jobs)
        log_path = args.out.parent / "bench-runtime.log"  # beside the JSON
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with emulator_process() as emulator:
            host = RuntimeHost({**os.environ, "AWS_ENDPOINT_URL": emulator.endpoint}, log_path)
            try:
                rt = Runtime(host, emulator, Path(tmp))
                measured = runtime_runs(rt, mixes, bare, web_jpeg, args)
            finally:
                host.close()
    for mix, samples in mixes.items():
        bare.run(mix, samples)
    return assemble(
        args=args,
        settings=settings,
        bare=bare,
        mixes=mixes,
        measured=measured,
        cold=cold,
        load=[load_before, [round(x, 2) for x in os.getloadavg()]],
        durability=durability,
    )


def _images(samples: list[Sample]) -> dict[str, Any]:
    return {
        "count": len(samples),
        "kinds": dict(Counter(s.kind for s in samples)),
        "mean_bytes": round(sum(len(s.data) for s in samples) / len(samples)),
        "max_bytes": max(len(s.data) for s in samples),
    }


def _per_job(calls: dict[str, int], jobs: int) -> dict[str, float]:
    return {k: round(v / jobs, 3) for k, v in sorted(calls.items()) if v}


def _efficiency(drained: dict[str, Any], bare_cpu: float) -> dict[str, Any]:
    return {
        "images": drained["images"],
        "worker_cpu_ms_per_image": drained["worker_cpu_ms_per_image"],
        "bare_cpu_ms_per_image": bare_cpu,
        "ratio": round(drained["worker_cpu_ms_per_image"] / bare_cpu, 3),
        "target": EFFICIENCY_TARGET,
    }


def assemble(
    *,
    args: Any,
    settings: Any,
    bare: Bare,
    mixes: dict[str, list[Sample]],
    measured: dict[str, Any],
    cold: dict[str, Any],
    load: list[list[float]],
    durability: dict[str, Any],
) -> dict[str, Any]:
    """The JSON document: inputs, figures, and every ratio against the final bare rates."""
    doc_mixes: dict[str, Any] = {}
    for mix, samples in mixes.items():
        rate = bare.best(mix).rate()
        e2e = {k: v for k, v in measured["end_to_end"][mix].items() if k != "job_ids"}
        e2e["ratio_to_bare"] = round(e2e["rate_ips"] / rate, 3)
        for drained in measured["drains"][mix]:
            drained["ratio_to_bare"] = round(drained["rate_ips"] / rate, 3)
        doc_mixes[mix] = {
            "images": _images(samples),
            "bare": bare.figures(mix),
            "end_to_end": e2e,
            "drains": measured["drains"][mix],
        }
    ordinary = doc_mixes["ordinary"]
    e2e = ordinary["end_to_end"]
    usage, jobs = e2e["usage"], e2e["images"]
    classify_calls = usage["aws_calls_classify"]
    others = Counter(usage["aws_calls"]) - Counter(classify_calls)
    long_poll = measured["long_poll"]
    return {
        "command": " ".join(["python -m infra.bench", *args.argv]).strip(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load[0],
            "load_average_after": load[1],
        },
        "settings": {
            "ort_threads": settings.ort_threads,
            "ort_spinning": settings.ort_spinning,
            "classify_workers": settings.classify_workers,
            "window_hook": _window_hook(),
        },
        "model": bare.classifier.info.model_dump(),
        "mixes": doc_mixes,
        "latency": measured["latency"],
        "aws_calls_per_job": {
            "jobs": jobs,
            "all": _per_job(usage["aws_calls"], jobs),
            "classify": _per_job(classify_calls, jobs),
            "others": _per_job(dict(others), jobs),
        },
        "logs_per_job": {
            "bytes": round(usage["log_bytes"] / jobs, 1),
            "json_bytes": round(usage["log_json_bytes"] / jobs, 1),
            "lines": round(usage["log_lines"] / jobs, 2),
        },
        "cost_per_million_images": bill(e2e, measured["item_bytes"]),
        "classifier_efficiency": {
            mix: _efficiency(
                doc_mixes[mix]["drains"][0], doc_mixes[mix]["bare"]["cpu_ms_per_image"]
            )
            for mix in mixes
        },
        "long_poll": {**long_poll, **wait_cost(long_poll)},
        "status_vs_api": measured["status_vs_api"],
        "cold_start": cold,
        "durability": durability,
        "classifier_memory": {
            "peak_rss_mb": measured["peak_rss_mb"],
            "worst_batch": measured["worst_batch"],
            "lambda_memory_mb": CLASSIFY_MEMORY_MB,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print, write the JSON."""
    parser = argparse.ArgumentParser(description="The service against the bare model.")
    parser.add_argument("--ordinary", type=int, default=200, help="ordinary-mix photos (200)")
    parser.add_argument("--heavy", type=int, default=240, help="heavy-mix photos (240)")
    parser.add_argument("--latency", type=int, default=30, help="single photos timed (30)")
    parser.add_argument("--long-poll", type=int, default=20, help="seconds of the wait (20)")
    parser.add_argument("--route-count", type=int, default=30, help="GETs timed per function")
    parser.add_argument("--worst", type=int, default=10, help="48 MP PNGs in the worst batch")
    parser.add_argument(
        "--durability-jobs", type=int, default=100, help="jobs' writes timed, kept and not (100)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench.json")
    parser.add_argument(
        "--markdown", type=Path, metavar="JSON", help="print a run as the docs' table and stop"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    args.argv = list(sys.argv[1:] if argv is None else argv)
    doc = measure(args)
    for line in summary(doc):
        print(line, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
