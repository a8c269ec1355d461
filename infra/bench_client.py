"""The benchmark's client: ``python -m infra.bench_client COMMAND ...``, in a process of its own.

A real client never shares the service's interpreter lock, so ``infra.bench`` runs every request
it times from this process, over HTTP, and reads one JSON object from its standard output:

- ``e2e MANIFEST``: submit the manifest's images with 4 concurrent ``POST /jobs`` and, as they
  are accepted, wait for each with ``GET /jobs/{id}?wait=20`` (4 at a time); the time from the
  first submission to the last result, and every request's duration. ``--no-wait`` only submits.
- ``latency IMAGE``: ``POST /jobs`` with ``Prefer: wait=N``, one at a time.
- ``webhooks IMAGE``: ``POST /jobs?webhook_url=`` a receiver on loopback, one at a time; from
  the POST to the signed body received, each signature checked with the account's secret.
- ``get JOB``: one ``GET /jobs/{id}?wait=N``; ``gets JOB``: many without a wait.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


class Api:
    """Requests to the service with the key; one session (connection) per thread."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers["x-api-key"] = self.key
        session: requests.Session = self._local.session
        return session

    def post_image(self, data: bytes, content_type: str, **kwargs: Any) -> requests.Response:
        """``POST /jobs`` with the image as the raw body, past the answer cache: the bench
        sends the same photos again and again, and measures classifying them."""
        headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
        params = {"cache": "false", **kwargs.pop("params", {})}
        return self._session().post(
            f"{self.url}/jobs", data=data, headers=headers, params=params, timeout=60, **kwargs
        )

    def get(self, path: str, **params: Any) -> requests.Response:
        """``GET path``."""
        return self._session().get(f"{self.url}{path}", params=params, timeout=60)


def _accepted(resp: requests.Response, expected: tuple[int, ...] = (202,)) -> dict[str, Any]:
    if resp.status_code not in expected:
        raise RuntimeError(f"POST /jobs answered {resp.status_code}: {resp.text[:300]}")
    body: dict[str, Any] = resp.json()
    return body


def _images(manifest: Path) -> list[tuple[bytes, str]]:
    doc = json.loads(manifest.read_text())
    files = {name: Path(path).read_bytes() for name, path in doc["files"].items()}
    return [(files[name], ctype) for name, ctype in doc["order"]]


class EndToEnd:
    """Submit everything, ``concurrency`` at a time, and wait for each as it is accepted."""

    def __init__(self, api: Api, images: list[tuple[bytes, str]], *, wait_s: int) -> None:
        self._api = api
        self._images = images
        self._wait_s = wait_s
        self._todo: Iterator[tuple[int, tuple[bytes, str]]] = iter(enumerate(images))
        self._lock = threading.Lock()
        self._accepted: queue.Queue[tuple[int, str] | None] = queue.Queue()
        self._errors: list[BaseException] = []
        self.post_ms: list[float] = []
        self.get_ms: list[float] = []
        self.ids: dict[int, str] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.finished: list[float] = []

    def _submit(self) -> None:
        while True:
            with self._lock:
                item = next(self._todo, None)
            if item is None:
                return
            index, (data, ctype) = item
            t = time.perf_counter()
            job_id = str(_accepted(self._api.post_image(data, ctype))["job_id"])
            self.post_ms.append(_ms(t))
            self.ids[index] = job_id
            if self._wait_s:
                self._accepted.put((index, job_id))

    def _wait(self) -> None:
        while (item := self._accepted.get()) is not None:
            index, job_id = item
            job: dict[str, Any] = {}
            while job.get("status") not in TERMINAL:
                t = time.perf_counter()
                resp = self._api.get(f"/jobs/{job_id}", wait=self._wait_s)
                self.get_ms.append(_ms(t))
                if resp.status_code != 200:
                    raise RuntimeError(f"GET /jobs/{job_id} answered {resp.status_code}")
                job = resp.json()
            self.finished.append(time.perf_counter())
            self.jobs[index] = job

    def _guarded(self, work: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except BaseException as exc:
                self._errors.append(exc)
                raise

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def run(self, concurrency: int) -> dict[str, Any]:
        """Every submission and wait done; the timings (or, without waits, the job ids)."""
        started = time.perf_counter()
        submitters = [self._guarded(self._submit) for _ in range(concurrency)]
        waiters = [self._guarded(self._wait) for _ in range(concurrency if self._wait_s else 0)]
        for thread in submitters:
            thread.join()
        for _ in waiters:
            self._accepted.put(None)
        for thread in waiters:
            thread.join()
        if self._errors:
            raise RuntimeError(f"the client failed: {self._errors[0]!r}") from self._errors[0]
        count = len(self._images)
        if not self._wait_s:
            return {"job_ids": [self.ids[i] for i in range(count)], "post_ms": self.post_ms}
        return {
            "seconds": round(max(self.finished) - started, 4),
            "cpu_s": round(time.process_time(), 3),  # this client's, start-up included
            "post_ms": self.post_ms,
            "get_ms": self.get_ms,
            "jobs": [_summary(self.jobs[i]) for i in range(count)],
        }


def _summary(job: dict[str, Any]) -> dict[str, Any]:
    predictions = job.get("predictions") or []
    return {
        "job_id": job["job_id"],
        "status": job["status"],
        "top1": predictions[0]["class_id"] if predictions else -1,
        "timings_ms": job.get("timings_ms") or {},
    }


def latency(api: Api, data: bytes, ctype: str, *, count: int, wait_s: int) -> Any:
    """Submit → SUCCEEDED with ``Prefer: wait``, one at a time."""
    ms: list[float] = []
    statuses: list[int] = []
    for _ in range(count):
        t = time.perf_counter()
        resp = api.post_image(data, ctype, headers={"Prefer": f"wait={wait_s}"})
        ms.append(_ms(t))
        statuses.append(resp.status_code)
        if resp.status_code == 200 and resp.json()["status"] != "SUCCEEDED":
            raise RuntimeError(f"the job ended {resp.json()['status']}")
    return {"ms": ms, "statuses": statuses}


class _Receiver(BaseHTTPRequestHandler):
    """Records each webhook body with the moment it arrived."""

    arrived: queue.Queue[tuple[float, bytes, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.arrived.put((time.perf_counter(), body, self.headers.get("X-Signature", "")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def webhooks(api: Api, data: bytes, ctype: str, *, count: int, timeout_s: float) -> Any:
    """POST with a ``webhook_url`` on loopback → the signed body received, one at a time."""
    from chalicelib.webhook_http import verify

    secret = api.get("/account").json()["webhook_signing_secret"]
    arrived: queue.Queue[tuple[float, bytes, str]] = queue.Queue()
    handler = type("Receiver", (_Receiver,), {"arrived": arrived})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
    ms: list[float] = []
    verified = 0
    try:
        for _ in range(count):
            t = time.perf_counter()
            job_id = _accepted(api.post_image(data, ctype, params={"webhook_url": hook}))["job_id"]
            while True:
                when, body, signature = arrived.get(timeout=timeout_s)
                if json.loads(body)["job"]["job_id"] == job_id:
                    break
            ms.append(round((when - t) * 1000, 2))
            verified += verify(secret, body, signature)
    finally:
        server.shutdown()
    return {"ms": ms, "verified": verified}


def main(argv: list[str] | None = None) -> int:
    """Run one command; print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("e2e")
    run.add_argument("manifest", type=Path)
    run.add_argument("--concurrency", type=int, default=4)
    run.add_argument("--wait", type=int, default=20)
    run.add_argument("--no-wait", action="store_true")
    for name in ("latency", "webhooks"):
        one = sub.add_parser(name)
        one.add_argument("image", type=Path)
        one.add_argument("content_type")
        one.add_argument("--count", type=int, default=30)
        one.add_argument("--wait", type=int, default=10)
    get = sub.add_parser("get")
    get.add_argument("job")
    get.add_argument("--wait", type=int, default=20)
    gets = sub.add_parser("gets")
    gets.add_argument("job")
    gets.add_argument("--count", type=int, default=30)
    args = parser.parse_args(argv)
    api = Api(args.url, args.key)
    result: Any
    if args.command == "e2e":
        wait = 0 if args.no_wait else args.wait
        result = EndToEnd(api, _images(args.manifest), wait_s=wait).run(args.concurrency)
    elif args.command == "latency":
        data = args.image.read_bytes()
        result = latency(api, data, args.content_type, count=args.count, wait_s=args.wait)
    elif args.command == "webhooks":
        data = args.image.read_bytes()
        result = webhooks(api, data, args.content_type, count=args.count, timeout_s=30)
    elif args.command == "get":
        t = time.perf_counter()
        job = api.get(f"/jobs/{args.job}", wait=args.wait).json()
        result = {"ms": _ms(t), "status": job["status"]}
    else:
        result = {"ms": [_timed_get(api, args.job) for _ in range(args.count)]}
    print(json.dumps(result), flush=True)
    return 0


def _timed_get(api: Api, job_id: str) -> float:
    t = time.perf_counter()
    resp = api.get(f"/jobs/{job_id}")
    if resp.status_code != 200:
        raise RuntimeError(f"GET /jobs/{job_id} answered {resp.status_code}")
    return _ms(t)


if __name__ == "__main__":
    sys.exit(main())
