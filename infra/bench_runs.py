"""The runs ``make bench`` makes through the local runtime, one function each (``bench_runtime``
holds the plumbing they share)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from infra.bench_bare import LoopResult
from infra.bench_runtime import (
    BENCH_KEY,
    Runtime,
    aws_calls,
    batch_figures,
    cpu_per_image,
    percentiles,
    poller_delta,
)
from infra.corpus import Sample

STAGES = ("queue_wait", "start", "s3_get", "decode", "inference", "total")  # in each job record
STATUS_MEMORY_MB = 256  # infra/template.json StatusFunction


def _settled_stats(rt: Runtime, before: dict[str, Any], count: int) -> dict[str, Any]:
    """The runtime's counters once the classifier has settled ``count`` more messages (its
    last batch's end, time and CPU recorded)."""
    deadline = time.monotonic() + 60
    while True:
        after = rt.host.call("stats")
        if poller_delta(before, after, "classify")["settled"] >= count:
            return after
        if time.monotonic() > deadline:
            raise TimeoutError("the classifier's counters never reached the run's jobs")
        time.sleep(0.1)


def _usage(
    rt: Runtime, before: dict[str, Any], after: dict[str, Any], logs: list[tuple[int, int, int]]
) -> dict[str, Any]:
    """What a run used: AWS calls (all, and the classifier's), invocations, log bytes."""
    worker_before = {w["pid"]: w for w in before["workers"]}
    calls_all = aws_calls(after["registry"]) - aws_calls(before["registry"])
    calls_classify: Any = {}
    for worker in after["workers"]:
        old = worker_before[worker["pid"]]  # the same worker throughout, or this fails
        calls_classify = aws_calls(worker["registry"]) - aws_calls(old["registry"])
        calls_all.update(calls_classify)
    notify = poller_delta(before, after, "notify")
    classify = poller_delta(before, after, "classify")
    return {
        "aws_calls": dict(sorted(calls_all.items())),
        "aws_calls_classify": dict(sorted(calls_classify.items())),
        "classify": {k: v for k, v in classify.items() if k != "sizes"},
        "notify": {k: v for k, v in notify.items() if k != "sizes"},
        "log_bytes": logs[1][0] - logs[0][0],
        "log_json_bytes": logs[1][1] - logs[0][1],
        "log_lines": logs[1][2] - logs[0][2],
    }


def _labels(top1: list[int], samples: list[Sample], bare: LoopResult | None) -> dict[str, int]:
    if bare is None:
        return {}
    return {
        "agree_with_bare": sum(a == b for a, b in zip(top1, bare.top1, strict=True)),
        "right": sum(t in s.expected for t, s in zip(top1, samples, strict=True)),
    }


def end_to_end(rt: Runtime, mix: str, samples: list[Sample], bare: LoopResult) -> dict[str, Any]:
    """The client submits every photo (4 concurrent POSTs) and long-polls each to its end."""
    before = rt.host.call("stats")
    logs = [rt.host.log_counts()]
    events = sum(p["messages"] for p in before["pollers"].get("notify", []))
    cpu = rt.cpu_seconds()
    out = rt.client("e2e", str(rt.manifest(samples, mix)), "--wait", "20")
    cpu_after = {**rt.cpu_seconds(), "client": out["cpu_s"]}
    rt.settle_events(events + len(samples))
    after = _settled_stats(rt, before, len(samples))
    logs.append(rt.host.log_counts())
    jobs = out["jobs"]
    rate = len(samples) / out["seconds"]
    classify = poller_delta(before, after, "classify")
    stages = {
        stage: round(statistics.fmean(vals), 2)
        for stage in STAGES
        if (vals := [j["timings_ms"][stage] for j in jobs if stage in j["timings_ms"]])
    }
    return {
        "images": len(samples),
        "seconds": out["seconds"],
        "rate_ips": round(rate, 2),
        "succeeded": sum(j["status"] == "SUCCEEDED" for j in jobs),
        **_labels([j["top1"] for j in jobs], samples, bare),
        "requests": {"post": len(out["post_ms"]), "get": len(out["get_ms"])},
        "post_ms": percentiles(out["post_ms"]),
        "get_ms": percentiles(out["get_ms"]),
        "request_seconds": {
            "post": round(sum(out["post_ms"]) / 1000, 3),
            "get": round(sum(out["get_ms"]) / 1000, 3),
        },
        "cpu_ms_per_image": cpu_per_image(
            {**cpu, "client": 0.0}, cpu_after, len(samples), out["seconds"]
        ),
        "classify_batches": batch_figures(classify["sizes"]),
        "classify_handler_ms_per_image": round(
            classify["handler_s"] * 1000 / max(1, classify["messages"]), 2
        ),
        "stages_ms": stages,
        "usage": _usage(rt, before, after, logs),
        "job_ids": [j["job_id"] for j in jobs],
    }


def latency(rt: Runtime, sample: Sample, count: int) -> dict[str, Any]:
    """Single photos on an idle runtime: ``POST /jobs`` with ``Prefer: wait=10`` → SUCCEEDED."""
    image = str(rt.image_file(sample))
    out = rt.client("latency", image, sample.content_type, "--count", str(count), "--wait", "10")
    return {
        "image": sample.name,
        **percentiles(out["ms"]),
        "answered_200": out["statuses"].count(200),
    }


def webhooks(rt: Runtime, sample: Sample, count: int) -> dict[str, Any]:
    """Single photos: from ``POST /jobs`` to the signed webhook body received on loopback."""
    image = str(rt.image_file(sample))
    out = rt.client("webhooks", image, sample.content_type, "--count", str(count))
    return {"image": sample.name, **percentiles(out["ms"]), "verified": out["verified"]}


def long_poll(rt: Runtime, sample: Sample, wait_s: int) -> dict[str, Any]:
    """A wait on a job that does not finish meanwhile (the classifier paused): its reads."""
    from infra.bench_cost import item_size

    stats = rt.host.call("stats")
    rt.pause_classifier()
    try:
        [job_id] = rt.submit_only([sample], "long-poll")
        before = rt.local()
        out = rt.client("get", job_id, "--wait", str(wait_s))
        after = rt.local()
        pending = item_size(rt.raw_item(job_id))
    finally:
        rt.resume_classifier()
    _settled_stats(rt, stats, 1)  # it finishes now; the next run's counters start after it
    calls = aws_calls(after["registry"]) - aws_calls(before["registry"])
    seconds = out["ms"] / 1000
    return {
        "wait_s": wait_s,
        "seconds": round(seconds, 3),
        "status": out["status"],
        "get_item_calls": calls["dynamodb.GetItem"],
        "reads_per_s": round(calls["dynamodb.GetItem"] / seconds, 2),
        "aws_calls": dict(calls),
        "memory_mb": STATUS_MEMORY_MB,
        "gb_s": round(seconds * STATUS_MEMORY_MB / 1024, 3),
        "pending_item_bytes": pending,
    }


def status_vs_api(rt: Runtime, job_id: str, count: int) -> dict[str, Any]:
    """The status function against the API function: import, memory, ``GET /jobs/{id}``."""
    imports: dict[str, list[dict[str, Any]]] = {"status": [], "api": []}
    for _ in range(3):  # alternating, the median counts: a fresh interpreter each time
        imports["status"].append(rt.probe("import", "chalicelib.status_api"))
        imports["api"].append(rt.probe("import", "app"))
    http = rt.client("gets", job_id, "--count", str(count))
    direct = rt.probe("route-latency", job_id, "--key", BENCH_KEY, "--count", str(count))
    out: dict[str, Any] = {"job": "a finished job of the ordinary run"}
    for name in ("status", "api"):
        out[name] = {
            "import_ms": statistics.median(r["import_ms"] for r in imports[name]),
            "rss_after_import_mb": statistics.median(r["rss_mb"] for r in imports[name]),
            "get_median_ms": round(statistics.median(direct[f"{name}_ms"]), 2),
        }
    out["status"]["http_get_median_ms"] = round(statistics.median(http["ms"]), 2)
    return out


def drain(
    rt: Runtime, samples: list[Sample], bare: LoopResult | None, *, name: str, window_s: float
) -> dict[str, Any]:
    """A backlog queued while the (warm) classifier is paused, then drained by it."""
    before = rt.host.call("stats")
    cpu_before = rt.pause_classifier()
    try:
        ids = rt.submit_only(samples, name)
        queued = rt.queue_depth()
        events = rt.notify_messages()
        cpu = rt.cpu_seconds()
    finally:
        started = rt.resume_classifier()
    rt.settle_events(events + len(samples))
    after = _settled_stats(rt, before, len(ids))
    cpu_after = rt.cpu_seconds()
    jobs = rt.jobs(ids)
    delta = poller_delta(before, after, "classify")
    [poller] = _worker(after)["pollers"]
    seconds = poller["last_batch_done"] - started
    return {
        "window_s": window_s,
        "path": "runtime",
        "images": len(ids),
        "queued_before_start": queued,
        "succeeded": sum(jobs[j].status.value == "SUCCEEDED" for j in ids),
        **_labels([_top1(jobs[j]) for j in ids], samples, bare),
        "seconds": round(seconds, 3),
        "rate_ips": round(len(ids) / seconds, 2),
        "batches": batch_figures(delta["sizes"]),
        "handler_ms_per_image": round(delta["handler_s"] * 1000 / len(ids), 2),
        # utime + stime of the worker process, from its pause to its last batch's end
        "worker_cpu_ms_per_image": round(
            (poller["batch_done_cpu_s"][-1] - cpu_before) * 1000 / len(ids), 2
        ),
        "cpu_ms_per_image": cpu_per_image(cpu, cpu_after, len(ids), seconds),
        "peak_rss_mb": rt.read_peak_rss(),
    }


def _worker(stats: dict[str, Any]) -> dict[str, Any]:
    [worker] = [w for w in stats["workers"] if w["function"] == "classify"]
    return dict(worker)


def _top1(job: Any) -> int:
    return int(job.predictions[0].class_id) if job.predictions else -1


def probe_drain(rt: Runtime, samples: list[Sample], *, window_s: float) -> dict[str, Any]:
    """The same drain by a classifier-only process (``infra.probe classify``) with its own
    batching window, the runtime's classifier paused meanwhile: how the window is compared
    until the runtime can be given one."""
    rt.pause_classifier()
    try:
        rt.submit_only(samples, f"probe-{window_s:g}")
        queued = rt.queue_depth()
        events = rt.notify_messages()
        out = rt.probe("classify", str(len(samples)), "--window", str(window_s))
    finally:
        rt.resume_classifier()
    rt.settle_events(events + len(samples))
    return {
        "window_s": window_s,
        "path": "probe",
        "images": len(samples),
        "queued_before_start": queued,
        "succeeded": out["images"] - out["reported_failures"],
        "seconds": out["drain_s"],
        "rate_ips": round(len(samples) / out["drain_s"], 2),
        "batches": batch_figures(out["batch_sizes"]),
        "handler_ms_per_image": out["handler_ms_per_image"],
        "worker_cpu_ms_per_image": out["cpu_ms_per_image"],
        "peak_rss_mb": out["peak_rss_mb"],
    }
