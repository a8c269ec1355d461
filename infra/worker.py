"""One function's SQS pollers in a process of their own: ``python -m infra.worker classify``.

On AWS every Lambda function runs in its own execution environment; the local runtime runs the
classifier the same way, so the model's CPU never waits for the interpreter lock held by the
API's request threads, the other functions' pollers or the botocore calls they make (measured
in docs/decisions/: the one-process runtime was bound by that lock, not by the machine's CPU).
The worker inherits the runtime's environment (endpoints, resources, fault settings), builds
the services as the function would, prints ``worker <name> ready <url>`` where it serves its
metrics and poller counters as JSON, and stops after its current batch on SIGTERM, or when
the process that started it is gone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
READY = "worker {name} ready "

log = logging.getLogger("imgcls.worker")


def _snapshot_server(pollers: list[Any]) -> ThreadingHTTPServer:
    """Serves ``{"registry": ..., "pollers": [...]}`` at any path, on a free loopback port."""
    from chalicelib.telemetry import REGISTRY

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {
                    "registry": REGISTRY.snapshot(),
                    "pollers": [asdict(poller.stats) for poller in pollers],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def _stop_when_orphaned(stop: threading.Event) -> None:
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()


def main(argv: list[str] | None = None) -> int:
    """Poll one function's queue until SIGTERM (or the parent is gone)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("function", help="the event handler's name, e.g. classify")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import app as app_module
    from chalicelib.settings import Settings
    from chalicelib.wiring import build_services, set_services
    from infra.faults import with_faults
    from infra.local import chalice_config, start_function_pollers

    settings = Settings.from_env()
    set_services(with_faults(build_services(settings), settings))
    stop = threading.Event()
    source = next(s for s in app_module.app.event_sources if s.name == args.function)
    pollers = start_function_pollers(
        app_module.app, chalice_config(), source, settings=settings, stop=stop
    )
    server = _snapshot_server(pollers)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    threading.Thread(target=_stop_when_orphaned, args=(stop,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    print(READY.format(name=args.function) + url, flush=True)
    while not stop.wait(0.5):
        pass
    for poller in pollers:
        poller.join(timeout=60)
    server.shutdown()
    return 0


class WorkerProcess:
    """A worker started by the local runtime: its metrics, and a way to stop it."""

    def __init__(self, function: str) -> None:
        self.function = function
        self._process = subprocess.Popen(
            [sys.executable, "-m", "infra.worker", function],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            # Out of the terminal's process group: Ctrl-C reaches the runtime, which stops its
            # workers after their batch.
            start_new_session=True,
        )
        assert self._process.stdout is not None
        prefix = READY.format(name=function)
        for line in self._process.stdout:
            if line.startswith(prefix):
                self.url = line[len(prefix) :].strip()
                break
            sys.stdout.write(line)  # what it logs before it is ready
        else:
            self._process.wait(timeout=10)
            raise RuntimeError(f"the {function} worker did not start")
        threading.Thread(target=self._relay, daemon=True).start()

    def _relay(self) -> None:
        """Pass on what the worker writes to standard output, as if it were ours."""
        assert self._process.stdout is not None
        for line in self._process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._process.pid

    def snapshot(self) -> dict[str, Any]:
        """Its metrics registry and poller counters, as JSON."""
        with urllib.request.urlopen(self.url, timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def stop(self) -> None:
        """SIGTERM: the pollers finish their batch; killed if it takes over a minute."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=70)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
