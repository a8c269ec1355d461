"""The LocalStack tests run against LocalStack only: how the probe tells it from anything else."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.localstack.probe import localstack_url, probe


def _serve(health: Any) -> Iterator[str]:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(health).encode()
            status = 200 if self.path == "/_localstack/health" else 404
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def healthy_localstack() -> Iterator[str]:
    services = {"s3": "running", "sqs": "available", "dynamodb": "running", "sns": "available"}
    yield from _serve({"services": {**services, "lambda": "disabled"}, "edition": "community"})


@pytest.fixture
def localstack_without_sns() -> Iterator[str]:
    services = {"s3": "running", "sqs": "running", "dynamodb": "running", "sns": "disabled"}
    yield from _serve({"services": services})


def test_localstack_with_every_needed_service_is_ready(healthy_localstack: str) -> None:
    found = probe(healthy_localstack)
    assert found.ready
    assert found.url == healthy_localstack


def test_localstack_missing_a_service_is_not_ready_and_says_which(
    localstack_without_sns: str,
) -> None:
    found = probe(localstack_without_sns)
    assert not found.ready
    assert "sns" in found.reason
    assert "s3" not in found.reason


def test_motos_server_is_not_taken_for_localstack() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        found = probe(f"http://{host}:{port}")
    finally:
        server.stop()
    assert not found.ready
    assert "not as LocalStack" in found.reason


def test_nothing_listening_is_not_ready() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed
    found = probe(f"http://127.0.0.1:{port}", timeout_s=1)
    assert not found.ready
    assert "no LocalStack answers" in found.reason


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://localhost:4566"),
        ({"LOCALSTACK_HOST": "localstack.internal:4567"}, "http://localstack.internal:4567"),
        ({"LOCALSTACK_HOST": "localstack.internal"}, "http://localstack.internal:4566"),
        ({"LOCALSTACK_HOST": "127.0.0.1:4566", "USE_SSL": "true"}, "https://127.0.0.1:4566"),
    ],
)
def test_probe_looks_where_localstack_client_would(env: dict[str, str], url: str) -> None:
    assert localstack_url(env) == url
