"""``python -m infra.keys`` as a newcomer runs it: on a machine with no AWS configuration at all,
against moto's server over HTTP; and what it says, in one line, when it cannot do its work."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.settings import Settings
from infra.bootstrap import bootstrap
from tests.conftest import ROOT


@pytest.fixture
def emulator() -> Iterator[str]:
    """moto's server on a free loopback port, empty."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # Every server in a process shares moto's state: start from nothing whatever ran before.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
    yield url
    server.stop()


@pytest.fixture
def emulator_with_tables(emulator: str, aws_env: None) -> str:
    """The emulator with the service's resources, created as ``make run`` creates them."""
    bootstrap(Settings(endpoint_url=emulator), visibility_timeout_s=30)
    return emulator


def bare_machine(home: Path, **env: str) -> dict[str, str]:
    """The environment of a machine where AWS was never configured: no ``AWS_*`` variables, a
    home without ``~/.aws``, no instance metadata to fall back on."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("LOCALSTACK_HOST", "TENANTS_TABLE")
    }
    return {**clean, "HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true", **env}


def keys(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.keys", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_reach_an_emulator_on_a_machine_without_aws_credentials(
    emulator_with_tables: str, tmp_path: Path
) -> None:
    env = bare_machine(tmp_path, AWS_ENDPOINT_URL=emulator_with_tables)

    created = keys("create", "sometenant", env=env)
    listed = keys("list", "sometenant", env=env)

    assert created.returncode == 0, created.stderr
    assert listed.returncode == 0, listed.stderr
    key_id = json.loads(created.stdout)["key_id"]
    assert [k["key_id"] for k in json.loads(listed.stdout)] == [key_id]


def test_keys_against_aws_without_credentials_say_so_in_one_line(tmp_path: Path) -> None:
    # No endpoint means AWS itself: it must never be handed made-up credentials.
    done = keys("list", "sometenant", env=bare_machine(tmp_path))

    assert done.returncode == 3
    assert done.stderr.startswith("error: no AWS credentials found")
    assert done.stderr.count("\n") == 1, done.stderr


def test_keys_without_a_tenants_table_say_so_in_one_line(emulator: str, tmp_path: Path) -> None:
    done = keys("list", "sometenant", env=bare_machine(tmp_path, AWS_ENDPOINT_URL=emulator))

    assert done.returncode == 3
    assert done.stderr.startswith(f"error: no table 'imgcls-tenants' at {emulator} ")
    assert done.stderr.count("\n") == 1, done.stderr


def test_keys_with_no_emulator_answering_say_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as idle:
        idle.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        endpoint = f"http://127.0.0.1:{idle.getsockname()[1]}"
        done = keys("list", "sometenant", env=bare_machine(tmp_path, AWS_ENDPOINT_URL=endpoint))

    assert done.returncode == 3
    assert done.stderr.startswith(f"error: nothing answers at {endpoint};")
    assert done.stderr.count("\n") == 1, done.stderr
