"""What a repeat answered from the cache saves, measured through the local runtime.

``python -m infra.cache_saving [N]`` starts the local runtime, classifies the cat photo once to
warm the model, then sends it N times with ``cache=false`` and ``Prefer: wait=20`` (each answer
comes when the job is SUCCEEDED) and N times as a plain repeat (answered 200 at once from the
cache). For each way it reports the wall time per image as the client sees it, the CPU time of
the runtime's whole process tree (API, classifier worker, emulator) per image, and the AWS
calls per image from the runtime's ``/metrics``. Prints JSON; docs/decisions cites a run.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.photos import cat_jpeg
from tests.runtime import Runtime, start_runtime

KEY = "cache-saving-tenant-key-0123456789"
CALL = re.compile(r'^imgcls_aws_calls_total\{operation="([^"]+)",service="([^"]+)"\} (\S+)$', re.M)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time so far of a process and every process under it."""
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{current}/task").iterdir():
            children = (task / "children").read_text().split()
            todo.extend(int(child) for child in children)
    return total


def aws_calls(runtime: Runtime) -> Counter[str]:
    """Every AWS call the runtime's functions made so far, as ``service.Operation``."""
    text = runtime.http.get("/metrics").text
    return Counter({f"{s}.{op}": int(float(n)) for op, s, n in CALL.findall(text)})


def measure(runtime: Runtime, n: int, *, cached: bool) -> dict[str, Any]:
    """Send the photo ``n`` times, one after another; per-image figures."""
    data = cat_jpeg()
    calls_before, cpu_before = aws_calls(runtime), tree_cpu_seconds(runtime.process.pid)
    walls: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        resp = runtime.http.post(
            "/jobs",
            params={"cache": "true" if cached else "false"},
            data=data,
            headers={"Content-Type": "image/jpeg", "Prefer": "wait=20"},
        )
        walls.append((time.perf_counter() - started) * 1000)
        job = resp.json()
        assert resp.status_code == 200, resp.text
        assert job["status"] == "SUCCEEDED", job
        assert bool(job.get("cached_from")) is cached, job
    time.sleep(2)  # the job events' fan-out, which follows either way, is counted too
    cpu = tree_cpu_seconds(runtime.process.pid) - cpu_before
    calls = aws_calls(runtime) - calls_before
    return {
        "wall_ms_median": round(statistics.median(walls), 1),
        "wall_ms_p95": round(sorted(walls)[max(0, int(len(walls) * 0.95) - 1)], 1),
        "cpu_ms_per_image": round(cpu * 1000 / n, 1),
        "aws_calls_per_image": round(sum(calls.values()) / n, 2),
        "aws_calls": {name: round(count / n, 2) for name, count in sorted(calls.items())},
    }


def main(argv: list[str]) -> int:
    """Run both ways ``N`` times (default 20) and print the figures."""
    n = int(argv[0]) if argv else 20
    runtime = start_runtime(KEY)
    try:
        measure(runtime, 2, cached=False)  # the model loaded, the connections open
        classified = measure(runtime, n, cached=False)
        repeats = measure(runtime, n, cached=True)
    finally:
        runtime.stop()
    print(json.dumps({"n": n, "classified": classified, "cached": repeats}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
