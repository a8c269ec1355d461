"""LocalStack as a plain process on loopback, for the LocalStack lane (``make localstack-test``).

LocalStack's Docker image and CLI want an auth token now; the PyPI package ``localstack-core``
2026.3.0, its last release, runs without one as ``python -m localstack.runtime.main``. It needs
Python 3.13, so it lives in a virtualenv of its own (``build/localstack-venv``, made by the
Makefile with the interpreter ``python -m infra.localstack python`` names) and this module only
starts and stops it: S3, SQS and SNS on a free loopback port, its files and its output
(``localstack.log``, the last run's) under ``build/localstack/``. DynamoDB is not among them:
LocalStack's downloads Java and DynamoDB Local when it starts, which cannot work offline, so the
lane keeps DynamoDB on moto.

``python -m infra.localstack serve`` runs one until Ctrl-C, for trying the service by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VERSION = "2026.3.0"
# What the Makefile installs into the virtualenv (kept in step with it): cbor2 6 and pyOpenSSL 26
# break this LocalStack release at import time.
REQUIREMENTS = (f"localstack-core[base-runtime]=={VERSION}", "cbor2<6", "pyOpenSSL<26")
PYTHON_VERSION = (3, 13)  # it imports warnings.deprecated; on 3.12 it dies "No component plugins"
DEFAULT_PYTHON = ROOT / "build" / "localstack-venv" / "bin" / "python"
WORK_DIR = ROOT / "build" / "localstack"
SERVICES = ("s3", "sqs", "sns")
# Variables LocalStack would take from our environment and act on: credentials and endpoints are
# for clients, and LOCALSTACK_* is its own configuration, which this module sets.
_NOT_INHERITED = re.compile(r"^(AWS_|LOCALSTACK_)")


class LocalStackError(RuntimeError):
    """LocalStack cannot be run here; the message says why and what to do."""


def find_python(env: Mapping[str, str] | None = None) -> str:
    """A Python 3.13 interpreter: ``python3.13`` if it works, else pyenv's newest 3.13."""
    env = os.environ if env is None else env
    candidates = [shutil.which("python3.13", path=env.get("PATH")) or ""]
    pyenv = shutil.which("pyenv", path=env.get("PATH"))
    if pyenv:
        candidates += [str(Path(prefix) / "bin" / "python3.13") for prefix in _pyenv_313(pyenv)]
    for candidate in filter(None, candidates):
        found = _interpreter(candidate)
        if found:
            return found
    raise LocalStackError(
        "LocalStack needs Python 3.13: put python3.13 on PATH, or 'pyenv install 3.13'"
    )


def _pyenv_313(pyenv: str) -> list[str]:
    """pyenv's 3.13 installations, newest first."""
    listed = _run([pyenv, "versions", "--bare"])
    versions = [v for v in listed.split() if re.fullmatch(r"3\.13(\.\d+)?", v)]
    versions.sort(key=lambda v: [int(part) for part in v.split(".")], reverse=True)
    return [prefix for v in versions if (prefix := _run([pyenv, "prefix", v]).strip())]


def _interpreter(candidate: str) -> str | None:
    """The interpreter's real path if it runs and is 3.13 (pyenv's shim for a version that is
    not selected exits with "command not found")."""
    check = f"import sys; sys.version_info[:2] == {PYTHON_VERSION} or sys.exit(1)"
    return _run([candidate, "-c", f"{check}; print(sys.executable)"]).strip() or None


def _run(argv: Sequence[str]) -> str:
    """A command's output, or "" when it cannot run or fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def free_port() -> int:
    """A loopback port nobody listens on now (LocalStack is handed a number, not a socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(*, port: int, filesystem_root: Path, base: Mapping[str, str]) -> dict[str, str]:
    """LocalStack's environment: ``base`` without credentials, endpoints or LocalStack settings,
    plus what makes it a plain, offline, loopback-only process with S3, SQS and SNS."""
    env = {k: v for k, v in base.items() if not _NOT_INHERITED.match(k)}
    env.update(
        {
            "OVERRIDE_IN_DOCKER": "0",  # a sandbox with /.dockerenv is not LocalStack's container
            "FILESYSTEM_ROOT": str(filesystem_root),
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "GATEWAY_SERVER": "hypercorn",  # the default server binds 0.0.0.0 whatever it is told
            # The host in the URLs it hands out (queue URLs): this one, not
            # localhost.localstack.cloud, which needs DNS.
            "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            "SERVICES": ",".join(SERVICES),
            "SQS_ENDPOINT_STRATEGY": "path",
            # Presigned URLs checked as AWS checks them, not waved through: LocalStack signs with
            # the secret "test" for any access key it was not told about.
            "S3_SKIP_SIGNATURE_VALIDATION": "0",
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "EAGER_SERVICE_LOADING": "1",  # ready means ready: no service starts on first call
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def not_ready(url: str, *, services: Sequence[str] = SERVICES, timeout_s: float = 2.0) -> str:
    """Why the LocalStack at ``url`` is not running ``services`` yet; "" once it is. Asked of
    its own health endpoint, so moto's server or any other endpoint never passes."""
    try:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=timeout_s) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # moto's server answers 404, say
        return f"{url} answers {exc.code}, not as LocalStack (/_localstack/health)"
    except (OSError, ValueError) as exc:  # URLError and refused connections are OSErrors
        return f"no LocalStack answers at {url} ({type(exc).__name__})"
    found = body.get("services") if isinstance(body, dict) else None
    if not isinstance(found, dict):
        return f"{url} answers, not as LocalStack (/_localstack/health)"
    # "running", not merely "available": loaded eagerly, each is running before it answers.
    missing = [name for name in services if found.get(name) != "running"]
    if missing:
        return f"LocalStack at {url} is not running {', '.join(missing)}"
    return ""


@dataclass(frozen=True)
class LocalStack:
    """A running LocalStack."""

    endpoint: str
    pid: int
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        """The end of its output, for a failure message."""
        return _tail(self.log, lines)


def _tail(path: Path, lines: int) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


def _parent_death_signal() -> Callable[[], None] | None:
    """What the child runs before exec so that it is killed when the thread that started it
    ends (a session fixture's: pytest's main thread): a test run killed mid-way leaves no
    LocalStack holding a port. Linux only (prctl); looked up here, in the parent, so the child
    only calls it."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def check_python(python: str | Path) -> Path:
    """``python`` (made absolute, not resolved: a virtualenv's interpreter is a symlink) if it is
    an interpreter with LocalStack installed; else say how to get one."""
    path = Path(python).absolute()
    if not path.is_file():
        raise LocalStackError(
            f"no LocalStack interpreter at {path}: 'make localstack-test' builds "
            f"{DEFAULT_PYTHON.relative_to(ROOT)} (LOCALSTACK_PYTHON names another)"
        )
    if _run([str(path), "-c", "import localstack.runtime.main; print('ok')"]).strip() != "ok":
        raise LocalStackError(
            f"{path} cannot import localstack.runtime.main: it needs Python 3.13 and "
            f"{' '.join(repr(r) for r in REQUIREMENTS)}"
        )
    return path


@contextlib.contextmanager
def localstack_process(
    *,
    python: str | Path = DEFAULT_PYTHON,
    port: int = 0,
    work_dir: Path = WORK_DIR,
    start_timeout_s: float = 60,
    stop_timeout_s: float = 10,
) -> Iterator[LocalStack]:
    """Start LocalStack on ``port`` (0: a free one), wait until S3, SQS and SNS answer, yield it;
    stop it after (SIGTERM, then SIGKILL to its whole process group after ``stop_timeout_s``:
    now and again it ignores SIGTERM). Raises ``LocalStackError`` saying why it did not start."""
    interpreter = check_python(python)
    work_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    filesystem_root = Path(tempfile.mkdtemp(prefix="fs-", dir=work_dir))
    log = work_dir / "localstack.log"  # the last run's, kept for a look after a failure
    try:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(interpreter), "-m", "localstack.runtime.main"],
                cwd=filesystem_root,
                env=environment(port=port, filesystem_root=filesystem_root, base=os.environ),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, out of reach of our Ctrl-C
                preexec_fn=_parent_death_signal(),
            )
        try:
            running = LocalStack(endpoint=f"http://127.0.0.1:{port}", pid=process.pid, log=log)
            _wait_until_ready(process, running, timeout_s=start_timeout_s)
            yield running
        finally:
            stop(process, timeout_s=stop_timeout_s)
    finally:
        shutil.rmtree(filesystem_root, ignore_errors=True)


def _wait_until_ready(
    process: subprocess.Popen[bytes], ls: LocalStack, *, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    reason = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalStackError(
                f"LocalStack exited with {process.returncode} before it was ready; "
                f"the end of {ls.log}:\n{ls.log_tail()}"
            )
        reason = not_ready(ls.endpoint, timeout_s=1)
        if not reason:
            return
        time.sleep(0.2)
    raise LocalStackError(
        f"LocalStack was not ready within {timeout_s:.0f}s: {reason}; "
        f"the end of {ls.log}:\n{ls.log_tail()}"
    )


def stop(process: subprocess.Popen[Any], *, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL to the process group if it has not exited within ``timeout_s``;
    either way, whatever else is left in its group is killed too."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait(timeout=10)
    _kill_group(process.pid)  # children it started and left behind


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """``python``: print a Python 3.13 to build LocalStack's virtualenv with.
    ``serve``: run LocalStack until Ctrl-C."""
    parser = argparse.ArgumentParser(description="LocalStack as a plain process on loopback.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("python", help="print the path of a Python 3.13")
    serve = commands.add_parser("serve", help="run LocalStack (S3, SQS, SNS) until Ctrl-C")
    serve.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    serve.add_argument(
        "--python", default=os.environ.get("LOCALSTACK_PYTHON") or str(DEFAULT_PYTHON)
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "python":
            print(find_python())
            return 0
        with localstack_process(python=args.python, port=args.port) as running:
            print(f"LocalStack: {running.endpoint} (s3, sqs, sns)", flush=True)
            # Blocked only now, or LocalStack would inherit the mask; sigwait then takes either.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except LocalStackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
