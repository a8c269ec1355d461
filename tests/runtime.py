"""Start ``python -m infra.local`` as a user runs it, on free ports, and talk to it over HTTP.

``Runtime.http`` is the one way e2e tests call the API: a ``requests`` session that sends the
tenant's key and checks every answer against the OpenAPI document.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from tests.openapi_check import check_response

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")


class ApiSession(requests.Session):
    """Requests relative to the API's URL, with the key, each answer checked against the
    document. A full URL (a presigned S3 one, say) goes out unchanged and unchecked."""

    def __init__(self, base_url: str, key: str) -> None:
        super().__init__()
        self.base_url = base_url
        self.headers["x-api-key"] = key
        self.hooks["response"].append(self._check)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        verb = method.decode() if isinstance(method, bytes) else method
        target = url.decode() if isinstance(url, bytes) else url
        if target.startswith("/"):
            target = self.base_url + target
        kwargs.setdefault("timeout", 30)
        return super().request(verb, target, *args, **kwargs)

    def _check(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.request.url and response.request.url.startswith(self.base_url):
            check_response(
                method=str(response.request.method),
                url=response.request.url[len(self.base_url) :],
                status=response.status_code,
                headers=dict(response.headers),
                body=response.content,
            )


@dataclass
class Runtime:
    """A running local runtime; its output is drained into ``output`` so it never blocks."""

    url: str
    emulator: str
    key: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    http: ApiSession = field(init=False)

    def __post_init__(self) -> None:
        self.http = ApiSession(self.url, self.key)

    def headers(self, **extra: str) -> dict[str, str]:
        """The API key header plus ``extra``."""
        return {"x-api-key": self.key, **extra}

    def get(self, path: str) -> Any:
        """GET ``path`` with the key; the decoded JSON body."""
        try:
            return self.http.get(path).json()
        except requests.ConnectionError as exc:
            raise AssertionError(self.postmortem()) from exc

    def postmortem(self) -> str:
        """Why the runtime may not be answering: its exit code and the end of its output."""
        code = self.process.poll()
        state = "still running" if code is None else f"exited with {code}"
        return f"the local runtime is {state}; its last output:\n" + "".join(self.output[-60:])

    def post_image(self, data: bytes, content_type: str, **params: str) -> requests.Response:
        """POST /jobs with one image as the raw body (``params`` as the query string).

        The same photos are sent again and again, and these journeys follow classifications:
        ``cache=false`` unless a test asks otherwise (the cache's own tests do)."""
        return self.http.post(
            "/jobs",
            params={"cache": "false", **params},
            data=data,
            headers={"Content-Type": content_type},
        )

    def submit(self, data: bytes, content_type: str, **params: str) -> str:
        """POST one image as a raw body; the job id of the 202."""
        resp = self.post_image(data, content_type, **params)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["job_id"])

    def aws(self, service: str) -> Any:
        """A boto3 client for the runtime's emulator."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.emulator,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def wait_for(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """Poll a job until it is SUCCEEDED or FAILED."""
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self.get(f"/jobs/{job_id}")
            if job.get("status") in TERMINAL:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}")

    def lines(self, needle: str) -> list[str]:
        """Output lines so far that contain ``needle``."""
        return [line for line in list(self.output) if needle in line]

    def stop(self) -> str:
        """Ctrl-C, as a user would; returns the whole output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return "".join(self.output)


def start_runtime(
    key: str, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Runtime:
    """Start the local runtime on free ports with one tenant ``key``; wait until it is ready."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # A fresh folder of kept state per runtime, as a first `make run` has (tests that restart a
    # runtime on the same state pass their own DATA_DIR).
    fresh = tempfile.mkdtemp(prefix="imgcls-data-")
    full_env.update(
        {"API_KEYS": f"tenant:{key}", "PYTHONUNBUFFERED": "1", "DATA_DIR": fresh, **(env or {})}
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "--port", "0", "--emulator-port", "0", *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()
    found: dict[str, str] = {}

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            for prefix, name in (("AWS emulator: ", "emulator"), ("ready on ", "url")):
                if line.startswith(prefix):
                    found[name] = line[len(prefix) :].strip()
            if "url" in found:
                ready.set()
        ready.set()  # the process ended

    threading.Thread(target=drain, name="runtime-output", daemon=True).start()
    if not ready.wait(timeout=120) or "url" not in found:
        process.kill()
        raise AssertionError("the local runtime did not start:\n" + "".join(output))
    return Runtime(
        url=found["url"], emulator=found["emulator"], key=key, process=process, output=output
    )
