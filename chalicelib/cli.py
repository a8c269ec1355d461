"""A small command-line client: ``imgcls classify PATH... [--wait]``.

``python -m chalicelib.cli`` is the same command.

Submits image files (folders are searched recursively), using ``POST /jobs`` for images the API
accepts directly and a presigned upload (``POST /uploads``) for bigger ones; with ``--wait`` it
shows a progress bar until every job has finished, then prints the top label and category of
each (and saves everything as JSON with ``--out``, or one row per file with ``--csv``).
``--top-k`` and ``--min-confidence`` cut each answer. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

from chalicelib.cli_report import summary, write_csv, write_json

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
DIRECT_LIMIT = 4 * 1024 * 1024  # the API's default per-request image limit
DEFAULT_URL = "http://127.0.0.1:8000"
LONGEST_WAIT_S = 20  # what the API waits at most per request
LOCAL_KEY = "local-dev-key-change-me"
# REJECTED: refused at submission, never a job
FINISHED = ("SUCCEEDED", "FAILED", "CANCELED", "REJECTED")
UNSUCCESSFUL = ("FAILED", "CANCELED", "REJECTED")
EXIT_CODES = """exit status:
  0  every file was accepted (and, with --wait, classified)
  1  at least one file was refused or failed
  2  bad arguments, or no image files found
  3  no service answers at --url
"""


class Unreachable(Exception):
    """No service answers at the API's URL: nothing more can be done, for any file."""

    def __init__(self, url: str, exc: OSError) -> None:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        why = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        super().__init__(f"no service answers at {url} ({why.lower()}); is it running? (make run)")


@dataclass
class Item:
    """One file and what became of it."""

    path: Path
    job_id: str | None = None
    job: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def status(self) -> str:
        """PENDING…FAILED, or REJECTED when the API refused the file."""
        return (
            "REJECTED" if self.error and not self.job_id else str(self.job.get("status", "PENDING"))
        )


class Api:
    """Just enough HTTP for the service's JSON API."""

    def __init__(self, url: str, key: str, timeout_s: float = 60) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout_s

    def call(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) of one request; HTTP errors are answers, not exceptions."""
        request = urllib.request.Request(f"{self.url}{path}", data=body, method=method)
        request.add_header("x-api-key", self.key)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, {"error": {"code": "http_error", "message": str(exc)}}
        except OSError as exc:  # refused, unknown host, timed out, reset: URLError is an OSError
            raise Unreachable(self.url, exc) from exc


def find_images(paths: Sequence[str]) -> list[Path]:
    """The files named, and the images inside the folders named, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            found.append(path)
    return found


def _content_type(path: Path) -> str:
    guessed = mimetypes.guess_type(path.name)[0]
    return guessed if guessed and guessed.startswith("image/") else "application/octet-stream"


def _form(
    fields: dict[str, str], filename: str, data: bytes, content_type: str
) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    out += data + f"\r\n--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def _upload(api: Api, item: Item, data: bytes, content_type: str, options: dict[str, str]) -> None:
    """The presigned route for images bigger than the API takes (the options go with it)."""
    status, answer = api.call(
        "POST",
        "/uploads",
        json.dumps({"filename": item.path.name, "content_type": content_type, **options}).encode(),
        "application/json",
    )
    if status != 201:
        item.error = answer.get("error", {}).get("message", f"HTTP {status}")
        return
    body, form_type = _form(answer["upload"]["fields"], item.path.name, data, content_type)
    request = urllib.request.Request(answer["upload"]["url"], data=body, method="POST")
    request.add_header("Content-Type", form_type)
    try:
        with urllib.request.urlopen(request, timeout=api.timeout):
            item.job_id = answer["job_id"]
    except OSError as exc:  # the storage's answer, not the API's: this file only
        item.error = f"upload failed: {exc}"


def submit(api: Api, item: Item, options: dict[str, str] | None = None) -> None:
    """Send one file with the answer's ``options`` (query parameters); sets ``job_id`` (and
    ``job`` when the answer came from the cache) or ``error``."""
    try:
        data = item.path.read_bytes()
    except OSError as exc:
        item.error = str(exc)
        return
    content_type = _content_type(item.path)
    if len(data) <= DIRECT_LIMIT:
        query = f"?{urlencode(options)}" if options else ""
        status, answer = api.call("POST", f"/jobs{query}", data, content_type)
        if status in (200, 202):
            item.job_id = answer["job_id"]
            item.job = answer if status == 200 else {}  # 200: finished already (cached)
            return
        if answer.get("error", {}).get("code") != "image_too_large":
            item.error = answer.get("error", {}).get("message", f"HTTP {status}")
            return
    if content_type == "application/octet-stream":
        item.error = "not an image file name the upload route accepts"
        return
    _upload(api, item, data, content_type, options or {})


def progress(items: Sequence[Item], width: int = 30) -> str:
    """The progress bar: every file counts, and one refused at submission is done and failed."""
    done = sum(1 for i in items if i.status in FINISHED)
    failed = sum(1 for i in items if i.status in UNSUCCESSFUL)
    filled = width * done // max(len(items), 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{len(items)} done, {failed} failed"


def wait(api: Api, items: list[Item], *, timeout_s: float, out: TextIO) -> None:
    """Wait until every submitted job is SUCCEEDED or FAILED (or the time is up), asking the
    server to answer when each is done (``GET /jobs/{id}?wait=N``): no polling loop. Jobs finish
    about in the order they were sent, so the oldest unfinished one is waited on first."""
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            out.write(f"\r{progress(items)}")
            out.flush()
            pending = [i for i in items if i.job_id and i.status not in FINISHED]
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                return
            item = pending[0]
            seconds = max(1, min(LONGEST_WAIT_S, int(left)))
            status, answer = api.call("GET", f"/jobs/{item.job_id}?wait={seconds}")
            if status == 200:
                item.job = answer
            else:
                # 404: an upload's job exists once S3 has told the service; a 5xx: ask again.
                time.sleep(0.5)
    finally:
        out.write("\n")  # whatever follows starts on a line of its own


def _options(args: argparse.Namespace) -> dict[str, str]:
    options = {"top_k": args.top_k, "min_confidence": args.min_confidence}
    return {name: str(value) for name, value in options.items() if value is not None}


def classify(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """The ``classify`` command; exit code 0 when nothing was rejected or failed."""
    api = Api(args.url, args.key)
    items = [Item(path) for path in find_images(args.paths)]
    if not items:
        err.write("no image files found\n")
        return 2
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda item: submit(api, item, _options(args)), items))
        if args.wait:
            wait(api, items, timeout_s=args.timeout, out=err)
    except Unreachable as exc:
        err.write(f"error: {exc}\n")
        return 3
    for line in summary(items):
        out.write(line + "\n")
    if args.out:
        write_json(items, args.out)
    if args.csv:
        write_csv(items, args.csv)
    return 1 if any(i.status in UNSUCCESSFUL for i in items) else 0


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Entry point (``imgcls``); ``prog`` names the command in the help."""
    parser = argparse.ArgumentParser(
        prog=prog, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "classify",
        help="submit images (files or folders)",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("paths", nargs="+", metavar="PATH")
    run.add_argument("--wait", action="store_true", help="wait for the results")
    run.add_argument("--out", help="write every job as JSON to this file")
    run.add_argument("--csv", help="write one row per file as CSV to this file")
    run.add_argument("--top-k", type=int, help="labels per image, 1-20 (default 5)")
    run.add_argument(
        "--min-confidence", type=float, help="leave out labels and categories below this (0-1)"
    )
    run.add_argument("--timeout", type=float, default=600, help="seconds to wait at most")
    run.add_argument("--url", default=os.environ.get("IMGCLS_URL", DEFAULT_URL))
    run.add_argument("--key", default=os.environ.get("IMGCLS_API_KEY", LOCAL_KEY))
    args = parser.parse_args(argv)
    return classify(args)


if __name__ == "__main__":
    sys.exit(main(prog="python -m chalicelib.cli"))
