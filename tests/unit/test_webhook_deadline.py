"""The sender against real local HTTP servers: one total deadline per attempt, whatever the
receiver does, and the receiver's ``Retry-After`` read in both of its forms."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import formatdate

import pytest

from chalicelib.webhook_http import HttpSender, retry_after_s
from chalicelib.webhook_targets import Policy

Reply = Callable[[socket.socket], None]


@contextmanager
def receiver(reply: Reply) -> Iterator[str]:
    """A one-thread HTTP receiver on a free loopback port: reads a request, then ``reply``."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                with contextlib.suppress(OSError):  # the sender hung up: some tests want that
                    reply(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def sender_for(url: str, timeout_s: float) -> HttpSender:
    host = url.split("/")[2]
    return HttpSender(policy=Policy(allow=frozenset({host})), timeout_s=timeout_s)


def trickle(every_s: float) -> Reply:
    """An answer sent one byte at a time: each read is quick, the whole is slow."""

    def reply(conn: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Padding: " + b"x" * 40 + b"\r\n\r\nok"
        for byte in answer:
            conn.sendall(bytes([byte]))
            time.sleep(every_s)

    return reply


def answer(status: str, *headers: str) -> Reply:
    def reply(conn: socket.socket) -> None:
        lines = [f"HTTP/1.1 {status}", *headers, "Content-Length: 0", "", ""]
        conn.sendall("\r\n".join(lines).encode())

    return reply


def test_a_trickling_receiver_is_cut_off_at_the_total_deadline() -> None:
    # GIVEN a receiver sending a byte every 0.3 s: ~18 s for its whole answer, each read well
    # within a 1 s timeout (what held an attempt for 40 s when the timeout was per read)
    with receiver(trickle(0.3)) as url:
        sender = sender_for(url, timeout_s=1)

        # WHEN one attempt is made
        started = time.monotonic()
        result = sender.post(url, b"{}", {})
        elapsed = time.monotonic() - started

    # THEN it ends at the deadline, a failed attempt that says why
    assert elapsed < 1.5, elapsed
    assert result.status is None
    assert result.error == "no complete answer within 1 s"


def test_a_receiver_that_never_answers_is_cut_off_at_the_deadline() -> None:
    with receiver(lambda conn: time.sleep(3)) as url:
        started = time.monotonic()
        result = sender_for(url, timeout_s=1).post(url, b"{}", {})
        elapsed = time.monotonic() - started

    assert elapsed < 1.5, elapsed
    assert (result.status, result.ok) == (None, False)


def test_a_prompt_receiver_is_unaffected_by_the_deadline() -> None:
    with receiver(answer("204 No Content")) as url:
        result = sender_for(url, timeout_s=1).post(url, b"{}", {})

    assert (result.status, result.ok, result.retry_after_s) == (204, True, None)


def test_retry_after_in_seconds_is_reported() -> None:
    with receiver(answer("429 Too Many Requests", "Retry-After: 7")) as url:
        result = sender_for(url, timeout_s=1).post(url, b"{}", {})

    assert (result.status, result.ok, result.retry_after_s) == (429, False, 7.0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        (formatdate(1_000_060, usegmt=True), 60.0),
        (formatdate(999_000, usegmt=True), 0.0),  # a date in the past: now
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    value: str | None, seconds: float | None
) -> None:
    assert retry_after_s(value, now=1_000_000) == seconds
