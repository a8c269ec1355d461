"""The emulator's durable state: a write-ahead journal of the requests that change S3 and DynamoDB.

The local runtime keeps its work across restarts (``DATA_DIR``). What must survive lives in S3
(images, result files) and DynamoDB (jobs, tenants, keys, subscriptions, deliveries): every
request that changed either is appended to ``journal.jsonl`` and synced to disk *before* its
answer leaves the emulator, so nothing the service was told is stored can be lost, even to
``kill -9``. At start the emulator replays the journal into a fresh moto, in-process, before it
serves. The queues and the topic are not journaled: the bootstrap makes them again, and the
runtime's recovery (``infra/recovery.py``) puts back what their lost messages stood for.

Only requests that succeeded are written (a refused conditional write changed nothing), so a
replay reproduces the state exactly: the writes carry their own values (timestamps included).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("imgcls.journal")

_DYNAMODB_WRITES = frozenset(
    {
        "CreateTable",
        "DeleteTable",
        "UpdateTable",
        "UpdateTimeToLive",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
    }
)
StartResponse = Callable[..., Any]


def _service(environ: dict[str, Any], body: bytes) -> str | None:
    """Which service a request is for, from its SigV4 credential scope (header, query string or,
    for a browser's presigned POST, the form)."""
    sources = (
        environ.get("HTTP_AUTHORIZATION", ""),
        environ.get("QUERY_STRING", ""),
        body[:4096].decode("latin-1") if body else "",
    )
    for source in sources:
        for service in ("dynamodb", "s3", "sqs", "sns"):
            if f"/{service}/aws4_request" in source or f"%2F{service}%2Faws4_request" in source:
                return service
    return None


def is_durable_write(environ: dict[str, Any], body: bytes) -> bool:
    """Whether a request changes S3 or DynamoDB (and so belongs in the journal)."""
    method = environ.get("REQUEST_METHOD", "GET")
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    service = _service(environ, body)
    if service == "dynamodb":
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        return target.rsplit(".", 1)[-1] in _DYNAMODB_WRITES
    return service == "s3"


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    out = {
        key[5:].replace("_", "-").title(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            out[key.replace("_", "-").title()] = str(environ[key])
    return out


class JournalingApp:
    """WSGI middleware: a durable write is on disk before the client hears it succeeded."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: Path) -> None:
        self._app = app
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        self.entries = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if not is_durable_write(environ, body):
            return self._app(environ, start_response)
        started: list[tuple[str, Any]] = []

        def capture(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], Any]:
            started.append((status, headers))
            return lambda _: None  # the legacy write() callable: moto returns its body instead

        chunks = list(self._app(environ, capture))
        status, headers = started[0]
        if status[:1] == "2":
            self._append(environ, body)  # on disk before the answer goes out
        start_response(status, headers)
        return chunks

    def _append(self, environ: dict[str, Any], body: bytes) -> None:
        query = environ.get("QUERY_STRING", "")
        entry = {
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("RAW_URI") or environ.get("PATH_INFO", "/"),
            "query": query,
            "headers": _headers(environ),
            "body": base64.b64encode(body).decode(),
        }
        line = (json.dumps(entry) + "\n").encode()
        with self._lock:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
            self.entries += 1


def replay(app: Callable[..., Iterable[bytes]], path: Path) -> int:
    """Apply the journal to a fresh emulator, in-process; the number of requests replayed."""
    if not path.exists():
        return 0
    from werkzeug.test import Client

    client = Client(app)
    started, count = time.perf_counter(), 0
    with path.open("rb") as journal:
        for raw in journal:
            try:
                entry = json.loads(raw)
            except ValueError:
                log.warning("a torn last line of the journal is skipped")
                break  # a kill during the write: its answer never left, nothing was promised
            path_info = entry["path"].split("?", 1)[0]
            response = client.open(
                path_info,
                method=entry["method"],
                query_string=entry["query"],
                headers=entry["headers"],
                data=base64.b64decode(entry["body"]),
            )
            if response.status_code >= 300:
                log.warning(
                    "replayed %s %s answered %s", entry["method"], path_info, response.status
                )
            count += 1
    log.info("replayed %d writes in %.1f s", count, time.perf_counter() - started)
    return count
