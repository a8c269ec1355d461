"""What ``make bench`` measures through the local runtime: end to end, drains, latency, long polls.

The runtime runs in a process of its own (``infra.bench_host``, started as ``make run`` starts
it, against an emulator process this module starts), and every timed request comes from another
process (``infra.bench_client``): neither shares an interpreter lock with the benchmark. Counters
(``aws_calls`` and the pollers') are read from the runtime before and after each run, so each
figure is a difference over that run only.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from infra.bench_host import RuntimeHost
from infra.corpus import Sample

ROOT = Path(__file__).resolve().parent.parent
BENCH_TENANT = "bench"
BENCH_KEY = "bench-tenant-key-0123456789"
WINDOW_HOOK = "LOCAL_BATCH_WINDOW_S"  # infra/local.py's batching-window override, once it has one


def proc_cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system, all its threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for process {pid}")


def percentiles(values: list[float]) -> dict[str, float]:
    """Count, p50 and p95 (nearest rank) of some milliseconds."""
    ordered = sorted(values)
    rank = max(0, -(-95 * len(ordered) // 100) - 1)
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[rank], 1),
    }


def aws_calls(registry: dict[str, Any]) -> Counter[str]:
    """``service.Operation`` → calls, from a telemetry registry snapshot."""
    out: Counter[str] = Counter()
    for name, labels, value in registry["counters"]:
        if name == "aws_calls":
            found = dict(labels)
            out[f"{found['service']}.{found['operation']}"] += int(value)
    return out


def _pollers(stats: dict[str, Any], function: str) -> list[dict[str, Any]]:
    found = list(stats["pollers"].get(function, []))
    for worker in stats["workers"]:
        if worker["function"] == function:
            found += worker["pollers"]
    return found


def poller_delta(before: dict[str, Any], after: dict[str, Any], function: str) -> dict[str, Any]:
    """A function's poller counters over a run (its pollers must have run throughout).

    ``settled``: messages of the batches whose end is recorded (a batch's size is counted when
    it is handed over, its end only once its messages are deleted)."""
    old, new = _pollers(before, function), _pollers(after, function)
    pairs = list(zip(old, new, strict=True))
    sizes = [size for o, n in pairs for size in n["batch_sizes"][len(o["batch_sizes"]) :]]
    done = [
        size
        for o, n in pairs
        for size in n["batch_sizes"][len(o["batch_done_cpu_s"]) : len(n["batch_done_cpu_s"])]
    ]
    return {
        "batches": len(sizes),
        "messages": sum(sizes),
        "settled": sum(done),
        "handler_s": sum(n["handler_seconds"] for n in new)
        - sum(o["handler_seconds"] for o in old),
        "sizes": sizes,
    }


def cpu_per_image(
    before: dict[str, float], after: dict[str, float], images: int, seconds: float
) -> dict[str, float]:
    """Each process's CPU milliseconds per image over a run, and how many of the machine's
    cores they kept busy together."""
    out = {name: round((after[name] - before[name]) * 1000 / images, 2) for name in after}
    out["cores_busy"] = round(sum(after[n] - before[n] for n in after) / seconds, 2)
    return out


def batch_figures(sizes: list[int]) -> dict[str, Any]:
    """How many batches, their mean size, and how many of each size."""
    return {
        "count": len(sizes),
        "mean": round(sum(sizes) / max(1, len(sizes)), 2),
        "sizes": {str(k): v for k, v in sorted(Counter(sizes).items())},
    }


class Runtime:
    """The runtime host, its emulator, and the client: the runs, one method each."""

    def __init__(self, host: RuntimeHost, emulator: Any, workdir: Path) -> None:
        from chalicelib.aws import AwsClients
        from chalicelib.settings import Settings

        self.host = host
        self.emulator = emulator
        self.workdir = workdir
        self.polling = False
        self.worker_pid = 0  # the classifier's worker process, while the pollers run
        self.peak_rss_mb = 0.0  # the classifier worker's, over the runs so far
        # The benchmark's own reads (queue depth, job records) and its probes use them too.
        os.environ.update({**host.env, "AWS_ENDPOINT_URL": emulator.endpoint})
        self.aws = AwsClients(Settings.from_env())

    # -- plumbing ---------------------------------------------------------------------------

    def client(self, *args: str) -> Any:
        """Run ``python -m infra.bench_client ARGS`` against the runtime; its JSON."""
        command = ["--url", self.host.url, "--key", BENCH_KEY, *args]
        return run_module("infra.bench_client", *command)

    def probe(self, *args: str) -> Any:
        """Run ``python -m infra.probe ARGS`` against the runtime's emulator and resources."""
        return run_module("infra.probe", *args)

    def manifest(self, samples: list[Sample], name: str) -> Path:
        """Write the images once each and their order; the client reads them."""
        files: dict[str, str] = {}
        for sample in samples:
            if sample.name not in files:
                path = self.workdir / f"{len(files)}-{sample.name.replace(':', '-')}"
                path.write_bytes(sample.data)
                files[sample.name] = str(path)
        order = [(s.name, s.content_type) for s in samples]
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps({"files": files, "order": order}))
        return path

    def image_file(self, sample: Sample) -> Path:
        """One image on disk, for the client."""
        path = self.workdir / f"one-{sample.name.replace(':', '-')}"
        path.write_bytes(sample.data)
        return path

    def start_pollers(self) -> None:
        """Start the pollers (the classifier's worker process among them)."""
        started = self.host.call("start_pollers")
        [self.worker_pid] = [w["pid"] for w in started["workers"] if w["function"] == "classify"]
        self.polling = True

    def stop_pollers(self) -> None:
        """Stop them, after the worker's peak memory is read."""
        if self.polling:
            self.read_peak_rss()
            self.host.call("stop_pollers")
            self.polling = False

    def read_peak_rss(self) -> float:
        """The classifier worker's peak memory so far (kept as the runs' peak)."""
        peak = proc_peak_rss_mb(self.worker_pid)
        self.peak_rss_mb = max(self.peak_rss_mb, peak)
        return peak

    def pause_classifier(self) -> float:
        """Stop the classifier's worker process (SIGSTOP) once its long poll is over, so a
        backlog can build while it stays warm; its CPU time so far."""
        os.kill(self.worker_pid, signal.SIGSTOP)
        # A receive it sent just before may still be waiting (1 s long polls): let it end
        # empty, or the messages it took would be lost to it for the visibility timeout.
        time.sleep(1.5)
        return proc_cpu_seconds(self.worker_pid)

    def resume_classifier(self) -> float:
        """Let it run again (SIGCONT); the moment it did."""
        started = time.time()
        os.kill(self.worker_pid, signal.SIGCONT)
        return started

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time so far of each process that serves a job: the classifier's worker, the
        runtime's (API, status and the light functions), the emulator's."""
        return {
            "classifier": proc_cpu_seconds(self.worker_pid),
            "runtime": proc_cpu_seconds(self.host.pid),
            "emulator": self.emulator.cpu_seconds(),
        }

    def local(self) -> dict[str, Any]:
        """The runtime process's own counters (not the worker's: it may be paused)."""
        return self.host.call("local")

    def notify_messages(self) -> int:
        """Job events the notify function has received so far (its pollers run here)."""
        pollers = self.local()["pollers"].get("notify", [])
        return sum(p["messages"] for p in pollers)

    def settle_events(self, target: int, timeout_s: float = 120) -> None:
        """Wait until the notify function has received ``target`` events in all."""
        deadline = time.monotonic() + timeout_s
        while self.notify_messages() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"notify did not reach {target} events in {timeout_s}s")
            time.sleep(0.1)

    def queue_depth(self) -> int:
        """Messages on the jobs queue, visible or in flight."""
        attrs = self.aws.sqs.get_queue_attributes(
            QueueUrl=self.host.env["JOBS_QUEUE_URL"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def raw_item(self, job_id: str) -> dict[str, Any]:
        """A job's record as DynamoDB stores it."""
        table = self.host.env["JOBS_TABLE"]
        resp = self.aws.dynamodb.get_item(
            TableName=table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )
        return dict(resp["Item"])

    def jobs(self, job_ids: list[str]) -> dict[str, Any]:
        """The job records (status, top-1), read straight from the table."""
        from chalicelib.job_store import JobRecord

        table = self.host.env["JOBS_TABLE"]
        found: dict[str, Any] = {}
        for start in range(0, len(job_ids), 100):
            request: Any = {
                table: {"Keys": [{"job_id": {"S": j}} for j in job_ids[start : start + 100]]}
            }
            while request:
                resp = self.aws.dynamodb.batch_get_item(RequestItems=request)
                for item in resp["Responses"].get(table, []):
                    job = JobRecord.from_item(item)
                    found[job.job_id] = job
                request = resp.get("UnprocessedKeys") or None
        return found

    def submit_only(self, samples: list[Sample], name: str) -> list[str]:
        """Submit through the API, 4 at a time, waiting for nothing; the job ids in order."""
        out = self.client("e2e", str(self.manifest(samples, name)), "--no-wait")
        return list(out["job_ids"])


def run_module(module: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """``python -m MODULE ARGS`` from the repository's root; the last line of its output as
    JSON, with the process's wall time as ``process_wall_ms`` when it is an object."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{module} {args[:3]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if isinstance(result, dict):
        result["process_wall_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result
