"""moto's server in a process of its own: ``python -m infra.emulator [--port N]``.

``make run`` starts the emulator inside its own process, which is simplest. Started here instead,
and handed to the local runtime with ``AWS_ENDPOINT_URL``, the emulated AWS no longer shares the
classifier's interpreter lock, as real AWS never does: the benchmark drains its backlog both ways.
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
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "AWS emulator: "


def _now_s(dt: Any = None) -> float:
    from moto.core.utils import unix_time

    return time.time() if dt is None else unix_time(dt)


def _now_ms(dt: Any = None) -> float:
    return _now_s(dt) * 1000.0


def _retained(backend: Any, queue_name: str, message: Any) -> bool:
    queue = backend.get_queue(queue_name)
    return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time())


_tuned = threading.Event()


def tune_moto() -> None:
    """Take the avoidable CPU out of moto's server, which shares the machine with the classifier.

    Each fix keeps moto's behaviour and removes work that grows with the backlog or is repeated
    on every request (moto 5.2.5; measured with the benchmark's 240-image backlog):

    - SQS asks for "now" through ``datetime`` twice per message it looks at, and looks at every
      message of the queue several times per call: plain ``time.time()`` instead.
    - SQS checks each message it hands out against the retention period by computing *all* the
      queue's attributes, three scans of the whole queue each: a receive of 10 messages from a
      queue of 240 looked at 7,000 messages. The retention period is read directly instead.
    - Every request lists moto's package directory (``os.listdir`` + ``isdir`` on ~150 entries)
      to route the request: the listing is computed once.
    - The request log (one formatted line per call, sent nowhere by default) is off.
    """
    import moto.backends
    import moto.sqs.models as sqs_models

    if _tuned.is_set():
        return
    setattr(sqs_models, "unix_time", _now_s)  # noqa: B010 (patching a module attribute)
    setattr(sqs_models, "unix_time_millis", _now_ms)  # noqa: B010
    setattr(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", _retained)  # noqa: B010
    listing: Iterable[str] = tuple(moto.backends.list_of_moto_modules())
    setattr(moto.backends, "list_of_moto_modules", functools.cache(lambda: listing))  # noqa: B010
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _tuned.set()


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description="Run moto's server on loopback.")
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    args = parser.parse_args(argv)
    from moto.server import ThreadedMotoServer

    tune_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
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
def emulator_process() -> Iterator[Emulator]:
    """Start ``python -m infra.emulator`` on a free port; yield it; stop it after."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.emulator"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
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
