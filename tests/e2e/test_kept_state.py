"""The local runtime keeps its work: killed with SIGKILL mid-drain, every process of it at once,
then started again on the same DATA_DIR, it finishes every job exactly once and forgets nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, cat_jpeg, encode
from tests.runtime import Runtime, start_runtime

pytestmark = pytest.mark.e2e
KEY = "kept-tenant-key-0123456789"
FINISHED_FIRST = 6
BACKLOG = 24


class Receiver(ThreadingHTTPServer):
    """A webhook receiver that outlives the runtime: every event id it was sent, per job."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events: dict[str, set[str]] = defaultdict(set)  # job id → event ids
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with self.server.lock:
            self.server.events[event["job"]["job_id"]].add(event["id"])
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _family(pid: int) -> list[int]:
    """The runtime and every process it started (the emulator and the classifier's worker run
    in sessions of their own, so its process group alone would miss them)."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if ppid == parent:
                found.append(int(entry.name))
                frontier.append(int(entry.name))
    return found


def _kill_everything(rt: Runtime) -> None:
    family = _family(rt.process.pid)
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    rt.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in family[1:]):
        assert time.monotonic() < deadline, "a process of the runtime outlived SIGKILL"
        time.sleep(0.1)


def phone_photo() -> bytes:
    """The cat as a 12-megapixel JPEG: heavy enough that a backlog of them takes a while."""
    img = Image.open(CAT).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    return encode(img, "JPEG", quality=90)


def _start(data_dir: Path) -> Runtime:
    return start_runtime(KEY, env={"DATA_DIR": str(data_dir), "WEBHOOK_ALLOW_HOSTS": "127.0.0.1"})


def test_sigkill_mid_drain_loses_nothing_and_runs_nothing_twice(
    tmp_path: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a runtime with a subscription and six finished jobs
    first = _start(tmp_path)
    try:
        assert first.http.post("/webhooks", json={"url": receiver.url}).status_code == 201
        photos = [(cat_jpeg(), "image/jpeg"), (COFFEE.read_bytes(), "image/png")]
        ids = [first.submit(data, ctype) for data, ctype in photos * (FINISHED_FIRST // 2)]
        finished = {job_id: first.wait_for(job_id) for job_id in ids}
        images = {j: requests.get(f["image_url"], timeout=10).content for j, f in finished.items()}
        # WHEN a backlog of phone-size photos is submitted and everything is killed mid-drain
        big = phone_photo()
        with ThreadPoolExecutor(4) as pool:
            backlog = list(pool.map(lambda _: first.submit(big, "image/jpeg"), range(BACKLOG)))

        def some_done() -> bool:
            listed = first.get("/jobs?status=SUCCEEDED&limit=100")["jobs"]
            done_now = len({j["job_id"] for j in listed} & set(backlog))
            return 1 <= done_now < BACKLOG

        deadline = time.monotonic() + 60
        while not some_done():
            assert time.monotonic() < deadline, "the backlog never started draining"
            time.sleep(0.05)
    finally:
        _kill_everything(first)

    # THEN a runtime started again on the same state finishes every job
    second = _start(tmp_path)
    try:
        recovered = second.lines("recovered after a restart")
        for job_id, before in finished.items():
            after = second.get(f"/jobs/{job_id}")
            same = ("status", "predictions", "updated_at", "attempts", "model")
            assert {k: after[k] for k in same} == {k: before[k] for k in same}
            assert requests.get(after["image_url"], timeout=10).content == images[job_id]
        final = {job_id: second.wait_for(job_id, timeout=120) for job_id in backlog}
        assert {j["status"] for j in final.values()} == {"SUCCEEDED"}
        assert all(j["predictions"][0]["class_id"] in CAT_CLASSES for j in final.values())
        assert {d["predictions"][0]["class_id"] for d in finished.values()} & {ESPRESSO}
        hooks = second.get("/webhooks")["webhooks"]
        assert [h["url"] for h in hooks] == [receiver.url]  # the subscription was kept

        # and each job's end reached the receiver once in effect: one event id per job
        all_jobs = [*finished, *backlog]
        deadline = time.monotonic() + 60
        while any(len(receiver.events[j]) == 0 for j in all_jobs):
            assert time.monotonic() < deadline, "some job's event never arrived"
            time.sleep(0.2)
        assert all(len(receiver.events[j]) == 1 for j in all_jobs), dict(receiver.events)
        attempts = sorted(j["attempts"] for j in final.values())
    finally:
        second.stop()
    with capsys.disabled():
        print(
            f"\nkept state: {FINISHED_FIRST} finished jobs read back unchanged; "
            f"{BACKLOG} backlog jobs all SUCCEEDED after SIGKILL and restart "
            f"(attempts {attempts[0]}-{attempts[-1]}); "
            + (recovered[-1].strip() if recovered else "nothing to recover")
        )
