"""Every way in and out, through the local runtime over real HTTP: webhooks to a loopback
receiver that refuses the first attempts, a presigned upload of a 12-megapixel photo, a batch
with a bad file, a bulk drop into the bucket, and the command-line client."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, cat_jpeg, encode
from tests.runtime import ROOT, Runtime, start_runtime
from tests.verifiers import verify_delivery

pytestmark = pytest.mark.e2e
KEY = "ways-tenant-key-0123456789"
REFUSALS = 2  # the receiver answers 503 this many times per path before it accepts


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on loopback that refuses the first attempts on each path."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.calls: list[tuple[str, bytes, dict[str, str], int]] = []
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def accepted(self, path: str) -> list[tuple[bytes, dict[str, str]]]:
        with self.lock:
            return [(b, h) for p, b, h, status in self.calls if p == path and status == 200]

    def attempts(self, path: str) -> int:
        with self.lock:
            return sum(1 for p, *_ in self.calls if p == path)


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            seen = sum(1 for p, *_ in self.server.calls if p == self.path)
            status = 503 if seen < REFUSALS else 200
            self.server.calls.append((self.path, body, dict(self.headers), status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    rt = start_runtime(
        KEY, env={"WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "WEBHOOK_BASE_DELAY_SECONDS": "1"}
    )
    yield rt
    rt.stop()


def eventually(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout}s: {check}")


def twelve_megapixels() -> bytes:
    img = Image.open(CAT).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    return encode(img, "JPEG", quality=92)


def test_webhooks_are_retried_until_the_receiver_accepts_and_are_signed(
    runtime: Runtime, receiver: Receiver
) -> None:
    created = runtime.http.post("/webhooks", json={"url": f"{receiver.base}/all-events"})
    assert created.status_code == 201, created.text
    sub = created.json()
    job_id = runtime.submit(cat_jpeg(), "image/jpeg", webhook_url=f"{receiver.base}/this-job")

    eventually(lambda: receiver.accepted("/this-job") and receiver.accepted("/all-events"))

    signing_secret = runtime.get("/account")["webhook_signing_secret"]
    for path, secret in (("/this-job", signing_secret), ("/all-events", sub["secret"])):
        [(body, headers)] = receiver.accepted(path)
        assert receiver.attempts(path) == REFUSALS + 1
        verify_delivery(secret, body, headers)  # Standard Webhooks' and Stripe's verifiers
        event = json.loads(body)
        assert (event["type"], event["job"]["job_id"]) == ("job.succeeded", job_id)
        assert event["job"]["predictions"][0]["class_id"] in CAT_CLASSES

    def delivered() -> list[dict[str, Any]] | None:
        hooks: list[dict[str, Any]] = runtime.get(f"/jobs/{job_id}")["webhooks"]
        return hooks if len(hooks) == 2 and {w["state"] for w in hooks} == {"delivered"} else None

    shown = eventually(delivered)
    assert {w["attempts"] for w in shown} == {REFUSALS + 1}


def test_a_presigned_upload_of_a_12_megapixel_photo_is_classified(runtime: Runtime) -> None:
    photo = twelve_megapixels()
    form = runtime.http.post(
        "/uploads", json={"filename": "big cat.jpg", "content_type": "image/jpeg"}
    )
    assert form.status_code == 201, form.text
    upload = form.json()["upload"]
    sent = requests.post(  # the presigned S3 form, not the API
        upload["url"],
        data=upload["fields"],
        files={"file": ("big cat.jpg", photo, "image/jpeg")},
        timeout=60,
    )
    assert sent.status_code in (200, 201, 204), sent.text

    job = runtime.wait_for(form.json()["job_id"])

    assert job["status"] == "SUCCEEDED", job
    assert (job["source"], job["size_bytes"]) == ("upload", len(photo))
    assert job["predictions"][0]["class_id"] in CAT_CLASSES


def test_a_batch_with_one_bad_file_completes_the_rest(runtime: Runtime) -> None:
    resp = runtime.http.post(
        "/batches",
        files=[
            ("images", ("cat.jpg", cat_jpeg(), "image/jpeg")),
            ("images", ("readme.txt", b"hello", "text/plain")),
            ("images", ("coffee.png", COFFEE.read_bytes(), "image/png")),
        ],
    )
    assert resp.status_code == 202, resp.text
    batch = resp.json()
    assert [r["filename"] for r in batch["rejected"]] == ["readme.txt"]

    done = eventually(
        lambda: (b := runtime.get(batch["status_url"]))["status"].startswith("completed") and b
    )

    assert done["status"] == "completed"
    assert done["progress"]["succeeded"] == 2
    labels = {j["filename"]: j["predictions"][0]["class_id"] for j in done["jobs"]}
    assert labels["coffee.png"] == ESPRESSO
    assert labels["cat.jpg"] in CAT_CLASSES


def test_a_bulk_drop_into_the_bucket_gets_its_result_written_beside_it(runtime: Runtime) -> None:
    s3 = runtime.aws("s3")
    bucket = s3.list_buckets()["Buckets"][0]["Name"]
    s3.put_object(Bucket=bucket, Key="incoming/tenant/trip/day 1/cat.jpg", Body=cat_jpeg())

    def result() -> dict[str, Any] | None:
        try:
            obj = s3.get_object(Bucket=bucket, Key="results/tenant/trip/day 1/cat.jpg.json")
        except s3.exceptions.NoSuchKey:
            return None
        return dict(json.loads(obj["Body"].read()))

    written = eventually(result)
    assert written["status"] == "SUCCEEDED"
    assert written["predictions"][0]["class_id"] in CAT_CLASSES
    assert runtime.get(f"/jobs/{written['job_id']}")["source"] == "s3"


def test_the_cli_submits_a_folder_waits_and_saves_the_results(
    runtime: Runtime, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(cat_jpeg())
    (folder / "coffee.png").write_bytes(COFFEE.read_bytes())
    big = Image.open(CAT).convert("RGB").resize((1800, 1200))
    (folder / "big.bmp").write_bytes(encode(big, "BMP"))  # over 4 MiB: goes the upload route
    (folder / "broken.jpg").write_bytes(cat_jpeg()[:3000])
    (folder / "notes.md").write_text("not an image: not picked up from the folder")
    named = tmp_path / "notes.txt"
    named.write_text("not an image, named: sent, and refused")
    assert (folder / "big.bmp").stat().st_size > 4 * 1024 * 1024
    out = tmp_path / "results.json"

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chalicelib.cli",
            "classify",
            str(folder),
            str(named),
            "--wait",
            "--out",
            str(out),
            "--url",
            runtime.url,
            "--key",
            KEY,
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 1, done.stderr  # one file failed, one was refused
    assert "5/5 done, 2 failed" in done.stderr  # the progress bar's last state
    records = {Path(r["file"]).name: r for r in json.loads(out.read_text())}
    assert set(records) == {"cat.jpg", "coffee.png", "big.bmp", "broken.jpg", "notes.txt"}
    assert (records["notes.txt"]["status"], records["notes.txt"]["job_id"]) == ("REJECTED", None)
    assert records["broken.jpg"]["job"]["error"]["code"] == "undecodable_image"
    assert records["big.bmp"]["job"]["source"] == "upload"
    assert records["coffee.png"]["job"]["predictions"][0]["class_id"] == ESPRESSO
    for name in ("cat.jpg", "big.bmp"):
        assert records[name]["job"]["predictions"][0]["class_id"] in CAT_CLASSES
    assert "espresso" in done.stdout
