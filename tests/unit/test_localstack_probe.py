"""How the LocalStack lane finds Python 3.13, starts LocalStack, tells it from other endpoints,
stops it when it will not stop, and fails (never skips) when it cannot run."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from infra.localstack import (
    LocalStackError,
    check_python,
    environment,
    find_python,
    localstack_process,
    not_ready,
    stop,
)
from tests.runtime import ROOT


def _serve(health: Any) -> Iterator[str]:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(health).encode()
            self.send_response(200 if self.path == "/_localstack/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def running_localstack() -> Iterator[str]:
    services = {"s3": "running", "sqs": "running", "sns": "running", "dynamodb": "disabled"}
    yield from _serve({"services": services, "edition": "unknown", "version": "2026.3.0"})


@pytest.fixture
def localstack_still_loading_sns() -> Iterator[str]:
    yield from _serve({"services": {"s3": "running", "sqs": "running", "sns": "available"}})


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _gone(pid: int, *, within_s: float = 5) -> bool:
    """Whether ``pid`` is dead (gone, or a zombie its new parent has not reaped yet)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_localstack_running_every_service_is_ready(running_localstack: str) -> None:
    assert not_ready(running_localstack) == ""


def test_a_service_not_yet_running_is_named(localstack_still_loading_sns: str) -> None:
    reason = not_ready(localstack_still_loading_sns)
    assert reason.endswith("is not running sns")


def test_motos_server_is_not_taken_for_localstack() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        reason = not_ready(f"http://{host}:{port}")
    finally:
        server.stop()
    assert "not as LocalStack" in reason


def test_nothing_listening_is_not_ready() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed
    assert "no LocalStack answers" in not_ready(f"http://127.0.0.1:{port}", timeout_s=1)


def test_localstack_gets_a_loopback_offline_environment_without_our_credentials(
    tmp_path: Path,
) -> None:
    base = {
        "PATH": "/usr/bin",
        "AWS_SECRET_ACCESS_KEY": "real-secret",
        "AWS_ENDPOINT_URL": "http://elsewhere:4566",
        "LOCALSTACK_AUTH_TOKEN": "ls-token",
        "LOCALSTACK_HOST": "elsewhere:4566",
    }

    env = environment(port=4599, filesystem_root=tmp_path, base=base)

    assert env["PATH"] == "/usr/bin"
    assert not {"AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "LOCALSTACK_AUTH_TOKEN"} & set(env)
    assert env["GATEWAY_LISTEN"] == env["LOCALSTACK_HOST"] == "127.0.0.1:4599"
    assert env["GATEWAY_SERVER"] == "hypercorn"  # the only server that binds what it is told
    assert (env["SERVICES"], env["SQS_ENDPOINT_STRATEGY"]) == ("s3,sqs,sns", "path")
    assert (env["FILESYSTEM_ROOT"], env["OVERRIDE_IN_DOCKER"]) == (str(tmp_path), "0")
    assert env["S3_SKIP_SIGNATURE_VALIDATION"] == "0"  # presigned URLs are checked


def test_pyenvs_newest_313_is_found_when_python313_is_only_a_shim(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _script(bin_dir / "python3.13", 'echo "pyenv: python3.13: command not found" >&2; exit 127')
    _script(
        bin_dir / "pyenv",
        f'case "$1" in\n'
        f'  versions) printf "3.12.1\\n3.13.0\\n3.13.2\\n3.9.18\\n3.13.10-dev\\n" ;;\n'
        f'  prefix) echo "{tmp_path}/versions/$2" ;;\n'
        f"esac",
    )
    for version in ("3.13.0", "3.13.2"):  # each reports itself as its executable
        _script(tmp_path / "versions" / version / "bin" / "python3.13", 'echo "$0"')

    found = find_python({"PATH": str(bin_dir)})

    assert found == f"{tmp_path}/versions/3.13.2/bin/python3.13"


def test_no_python313_anywhere_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(LocalStackError, match=r"pyenv install 3\.13"):
        find_python({"PATH": str(tmp_path)})


def test_a_missing_localstack_interpreter_points_at_the_make_target(tmp_path: Path) -> None:
    with pytest.raises(LocalStackError, match="'make localstack-test' builds"):
        check_python(tmp_path / "nowhere" / "python")


def test_an_interpreter_without_localstack_is_refused() -> None:
    with pytest.raises(LocalStackError, match=r"cannot import localstack\.runtime\.main"):
        check_python(sys.executable)


def _fake_localstack(tmp_path: Path, run: str) -> Path:
    """An "interpreter" that passes the import check and runs ``run`` as LocalStack."""
    return _script(tmp_path / "python", f'if [ "$1" = "-c" ]; then echo ok; exit 0; fi\n{run}')


def test_a_localstack_that_dies_at_start_fails_with_its_output(tmp_path: Path) -> None:
    python = _fake_localstack(tmp_path, 'echo "No component plugins found"; exit 3')

    with (
        pytest.raises(LocalStackError, match="exited with 3") as failed,
        localstack_process(python=python, work_dir=tmp_path / "work"),
    ):
        pass

    assert "No component plugins found" in str(failed.value)


def test_a_localstack_that_never_gets_ready_is_killed(tmp_path: Path) -> None:
    python = _fake_localstack(tmp_path, "trap '' TERM; echo $$ > \"$0.pid\"; exec sleep 60")

    started = time.monotonic()
    with (
        pytest.raises(LocalStackError, match="not ready within 1s"),
        localstack_process(
            python=python, work_dir=tmp_path / "work", start_timeout_s=1, stop_timeout_s=1
        ),
    ):
        pass

    assert time.monotonic() - started < 10
    assert _gone(int((tmp_path / "python.pid").read_text()))


def test_a_process_that_ignores_sigterm_is_killed_with_its_children() -> None:
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None
    child = int(process.stdout.readline())

    started = time.monotonic()
    stop(process, timeout_s=1)

    assert time.monotonic() - started < 5
    assert process.returncode == -signal.SIGKILL
    assert _gone(child)


def test_the_lane_fails_rather_than_skips_when_localstack_cannot_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["LOCALSTACK_PYTHON"] = str(tmp_path / "no-such-python")

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/localstack", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1, done.stdout
    assert re.search(r"^\d+ errors in ", done.stdout, re.MULTILINE), done.stdout
    assert "skipped" not in done.stdout
    assert "passed" not in done.stdout
    assert "the LocalStack lane cannot run: no LocalStack interpreter at" in done.stdout
