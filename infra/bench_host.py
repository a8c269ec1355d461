"""The local runtime in a process of its own, driven by ``make bench``.

``python -m infra.bench_host --reply-fd N`` starts ``LocalRuntime`` as ``make run`` does (on free
ports, its pollers held until asked, the emulator that ``AWS_ENDPOINT_URL`` names), then reads one
JSON command a line on standard input and answers each with one JSON line on file descriptor N.
Its standard output and error are the runtime's and its classifier worker's, nothing else: the
benchmark counts those bytes as the log lines the functions would send to CloudWatch.

``RuntimeHost`` is the benchmark's side: it starts the process, counts and keeps its output
(``build/bench-runtime.log``), and sends the commands.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent


def _serve(runtime: Any, replies: IO[str]) -> None:
    """Answer commands until ``quit`` or the end of standard input."""
    for line in sys.stdin:
        command = json.loads(line)
        try:
            answer = _answer(runtime, command)
        except Exception:
            answer = {"error": traceback.format_exc()}
        replies.write(json.dumps(answer) + "\n")
        replies.flush()
        if command["cmd"] == "quit":
            return


def _local_pollers(runtime: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for poller in runtime.pollers:
        out.setdefault(poller.name.removeprefix("sqs-"), []).append(asdict(poller.stats))
    return out


def _answer(runtime: Any, command: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.telemetry import REGISTRY

    cmd = command["cmd"]
    if cmd == "start_pollers":
        runtime.start_pollers()
        workers = [{"function": w.function, "pid": w.pid} for w in runtime.workers]
        return {"at": time.time(), "workers": workers}
    if cmd == "stop_pollers":
        runtime.stop_pollers()
        return {}
    if cmd == "local":  # this process's counters only: asks the worker nothing
        return {"registry": REGISTRY.snapshot(), "pollers": _local_pollers(runtime), "workers": []}
    if cmd == "stats":
        workers = [{"function": w.function, "pid": w.pid, **w.snapshot()} for w in runtime.workers]
        return {
            "registry": REGISTRY.snapshot(),
            "pollers": _local_pollers(runtime),
            "workers": workers,
        }
    if cmd == "setenv":  # seen by pollers started afterwards, and by their worker processes
        for key, value in command["env"].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        return {}
    if cmd == "quit":
        runtime.stop()
        return {}
    raise ValueError(f"unknown command {cmd!r}")


def main(argv: list[str] | None = None) -> int:
    """Start the runtime, say where it is, serve commands."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reply-fd", type=int, required=True)
    args = parser.parse_args(argv)
    replies = os.fdopen(args.reply_fd, "w")
    # As infra.local's main() does; importing the app then puts its JSON handler on the root.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.path.insert(0, str(ROOT))
    from infra.local import LocalRuntime

    runtime = LocalRuntime(port=0, emulator_port=0, poll=False)
    runtime.start()
    assert runtime.resources is not None
    ready = {"url": runtime.url, "env": runtime.resources.env(), "pid": os.getpid()}
    replies.write(json.dumps(ready) + "\n")
    replies.flush()
    try:
        _serve(runtime, replies)
    finally:
        runtime.stop()
    return 0


class RuntimeHost:
    """The benchmark's handle on ``python -m infra.bench_host``: commands, output bytes."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        read_end, write_end = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "infra.bench_host", "--reply-fd", str(write_end)],
            cwd=ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_end,),
            text=True,
        )
        os.close(write_end)
        self._replies = os.fdopen(read_end)
        self._lock = threading.Lock()
        self._log = log_path.open("w")
        self.bytes = 0  # what the runtime and its worker wrote to stdout and stderr so far
        self.json_bytes = 0  # of which JSON log lines (the functions' structured logs)
        self.lines = 0
        self._drains = [
            threading.Thread(target=self._drain, args=(stream,), daemon=True)
            for stream in (self._process.stdout, self._process.stderr)
        ]
        for thread in self._drains:
            thread.start()
        ready = self._read()
        self.url: str = ready["url"]
        self.env: dict[str, str] = ready["env"]
        self.pid: int = ready["pid"]

    def _drain(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            size = len(line.encode())
            with self._lock:
                self.bytes += size
                self.lines += 1
                self.json_bytes += size if line.startswith("{") else 0
                if not self._log.closed:
                    self._log.write(line)

    def log_counts(self) -> tuple[int, int, int]:
        """(bytes, JSON-line bytes, lines) written so far."""
        with self._lock:
            self._log.flush()
            return self.bytes, self.json_bytes, self.lines

    def _read(self) -> dict[str, Any]:
        line = self._replies.readline()
        if not line:
            self._process.wait(timeout=30)
            raise RuntimeError(f"the runtime host exited ({self._process.returncode}): see the log")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the runtime host failed:\n{answer['error']}")
        return answer

    def call(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send one command; its answer."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self._process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Stop the runtime (its pollers, its HTTP server) and the process."""
        if self._process.poll() is None:
            try:
                self.call("quit")
                self._process.wait(timeout=90)
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait(timeout=10)
        for thread in self._drains:
            thread.join(timeout=10)
        with self._lock:
            self._log.close()


if __name__ == "__main__":
    sys.exit(main())
