"""The emulator process (infra/emulator.py): moto's server, keeping connections open."""

from __future__ import annotations

from typing import Any

import boto3

from infra import emulator


def _ignores_the_body(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A WSGI app that answers without reading the request body (as some moto routes do)."""
    start_response("200 OK", [("Content-Length", "2"), ("Content-Type", "text/plain")])
    return [b"ok"]


def test_the_emulator_keeps_connections_open_and_reads_what_the_app_left() -> None:
    import http.client

    server = emulator.emulator_server(app=_ignores_the_body)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.get_host_and_port()[1], timeout=10)
        conn.request("POST", "/first", body=b"x" * 100_000)
        first = conn.getresponse()
        assert (first.status, first.read()) == (200, b"ok")
        assert first.getheader("Connection") != "close"
        sock = conn.sock
        # The unread body must not be taken for the next request, nor the next one swallowed.
        conn.request("GET", "/second")
        second = conn.getresponse()
        assert (second.status, second.read()) == (200, b"ok")
        assert conn.sock is sock  # the same connection throughout
        # A chunked body's end is not known in advance: that connection is closed after it.
        conn.putrequest("POST", "/chunked")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders(b"2\r\nxy\r\n0\r\n\r\n")
        chunked = conn.getresponse()
        assert chunked.status == 200
        assert chunked.getheader("Connection") == "close"
        chunked.read()
        conn.close()
    finally:
        server.stop()


def test_moto_answers_through_the_emulator_server() -> None:
    server = emulator.emulator_server()
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        db = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for _ in range(3):  # on one pooled connection
            assert db.list_tables()["TableNames"] == []
    finally:
        server.stop()


def test_an_orphaned_emulator_stops_when_its_parent_is_killed() -> None:
    import signal
    import socket
    import subprocess
    import sys
    import time

    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from infra.emulator import emulator_process\n"
            "with emulator_process() as e:\n"
            "    print(e.endpoint, flush=True)\n"
            "    time.sleep(120)\n",
        ],
        cwd=emulator.ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    port = int(parent.stdout.readline().strip().rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # it listens

    parent.send_signal(signal.SIGKILL)  # no chance to stop its emulator
    parent.wait(timeout=10)

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return  # the port is free again: the emulator stopped
        time.sleep(0.2)
    raise AssertionError("the orphaned emulator is still listening")
