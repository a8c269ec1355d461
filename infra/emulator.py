"""moto's server in a process of its own: ``python -m infra.emulator [--port N]``.

``make run`` (``infra.local``) and the tests start it this way; the emulated AWS then never
shares the classifier's interpreter lock, as real AWS never does. The benchmark also drains its
backlog with the emulator inside the runtime's process, for comparison.
Prints ``AWS emulator: http://127.0.0.1:PORT`` once it listens; stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "AWS emulator: "


class _EndOfFile:
    """A stream at end of file that a selector sees as readable at once (a pipe whose writing
    end is closed)."""

    def __init__(self) -> None:
        self._read_end, write_end = os.pipe()
        os.close(write_end)

    def fileno(self) -> int:
        return self._read_end

    def read(self, _size: int = -1) -> bytes:
        return b""


_AT_EOF = _EndOfFile()


def _read_to_end(body: Any) -> bool:
    """Read what is left of a request body of known length; False if it cannot be."""
    if body is None:
        return False
    try:
        body.exhaust()
    except Exception:  # the client went away, say: close as werkzeug would
        return False
    return bool(body.is_exhausted)


@functools.cache
def _keep_alive_handler() -> Any:
    """moto's request handler, keeping the connection open after each response."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.wsgi import LimitedStream

    class KeepAliveHandler(MotoRequestHandler):
        timeout = 60  # seconds an open connection may sit idle
        # The headers and the body are two writes: on a connection that stays open, Nagle's
        # algorithm holds the body back until the client's delayed ACK (40 ms) arrives.
        disable_nagle_algorithm = True
        _body: LimitedStream | None = None
        _socket: tuple[Any, Any] | None = None

        def run_wsgi(self) -> None:
            try:
                super().run_wsgi()
            finally:
                if self._socket is not None:
                    self.connection, self.rfile = self._socket
                    self._socket = None

        def make_environ(self) -> dict[str, Any]:
            environ = super().make_environ()
            # After each response werkzeug reads and discards whatever the socket still holds,
            # waiting 10 ms for it: on an open connection that would swallow the next request.
            # The application reads the body through the environ; the handler's own socket and
            # stream stand at end of file until the response is written.
            self._socket = (self.connection, self.rfile)
            self.connection = self.rfile = cast(Any, _AT_EOF)
            self._body = None
            if "wsgi.input_terminated" not in environ:  # not chunked: the length is known
                length = environ.get("CONTENT_LENGTH") or "0"
                if length.isdigit():
                    self._body = LimitedStream(environ["wsgi.input"], int(length))
                    environ["wsgi.input"] = self._body
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            if keyword.lower() == "connection" and value == "close" and _read_to_end(self._body):
                return
            super().send_header(keyword, value)

    return KeepAliveHandler


def emulator_server(*, host: str = "127.0.0.1", port: int = 0, app: Any = None) -> Any:
    """moto's ``ThreadedMotoServer`` that keeps connections open between requests.

    werkzeug's development server ends every response with ``Connection: close``, because it
    cannot tell whether the application read the whole request body. So every AWS call opened a
    new TCP connection and the server started a new thread for it: in a drain of the benchmark's
    backlog, connecting was 9 % of the classifier process's CPU. This handler reads whatever the
    application left of a body (it knows the length) and leaves the connection open; a request
    with a chunked body, or whose rest cannot be read, still closes it. Connections idle for a
    minute are closed. ``app`` replaces moto's WSGI application (for tests).
    """
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    class KeepAliveMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            self._server = make_server(
                self._ip_address,
                self._port,
                app or DomainDispatcherApplication(create_backend_app),
                True,
                request_handler=_keep_alive_handler(),
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return KeepAliveMotoServer(ip_address=host, port=port, verbose=False)


def _stop_when_orphaned(stop: threading.Event) -> None:
    """Set ``stop`` once the process that started this one is gone (killed, say, before it
    could stop the emulator): an emulator left behind would hold its port."""
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description="Run moto's server on loopback.")
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument(
        "--journal", type=Path, help="keep S3 and DynamoDB in this write-ahead journal (replayed)"
    )
    args = parser.parse_args(argv)
    # One access-log line per call, several a second from the pollers' long polls: not for people.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = None
    if args.journal is not None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from infra.journal import JournalingApp, replay

        logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
        moto_app = DomainDispatcherApplication(create_backend_app)
        replay(moto_app, args.journal)
        app = JournalingApp(moto_app, args.journal)
    server = emulator_server(port=args.port, app=app)
    server.start()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    threading.Thread(target=_stop_when_orphaned, args=(stop,), daemon=True).start()
    print(f"{PREFIX}http://127.0.0.1:{server.get_host_and_port()[1]}", flush=True)
    stop.wait()
    server.stop()
    return 0


@dataclass(frozen=True)
class Emulator:
    """A running emulator process."""

    endpoint: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the emulator has used so far (user + system, all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def emulator_process(
    *, port: int = 0, quiet: bool = True, journal: Path | None = None
) -> Iterator[Emulator]:
    """Start ``python -m infra.emulator`` on ``port`` (0: a free one); yield it; stop it after.
    ``quiet`` sends its error output nowhere rather than to ours; with ``journal``, S3 and
    DynamoDB are kept there (``infra/journal.py``) and replayed first."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    extra = ["--journal", str(journal)] if journal is not None else []
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.emulator", "--port", str(port), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else None,
        text=True,
        # Out of the terminal's process group: Ctrl-C reaches the process that started it, which
        # stops its pollers first and the emulator last (or, killed, leaves it to stop itself).
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(PREFIX):
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield Emulator(endpoint=line[len(PREFIX) :].strip(), pid=process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
