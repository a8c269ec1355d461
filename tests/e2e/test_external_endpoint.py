"""`make run` against an emulator it did not start, reached the way LocalStack is reached.

moto's server stands in for LocalStack here (localstack-client only needs the endpoint), so the
configuration path runs on every machine; tests/localstack runs the same against LocalStack.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.photos import CAT, CAT_CLASSES
from tests.runtime import start_runtime

pytestmark = pytest.mark.e2e
KEY = "endpoint-tenant-key-0123456789"


@pytest.fixture
def emulator() -> Iterator[str]:
    """moto's server on a free loopback port, as ``host:port``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


def test_localstack_host_alone_points_make_run_at_the_endpoint(emulator: str) -> None:
    runtime = start_runtime(KEY, env={"LOCALSTACK_HOST": emulator})
    try:
        job = runtime.wait_for(runtime.submit(CAT.read_bytes(), "image/png"))
    finally:
        output = runtime.stop()

    assert runtime.emulator == f"http://{emulator}", output
    assert job["status"] == "SUCCEEDED", job
    assert job["predictions"][0]["class_id"] in CAT_CLASSES
    assert runtime.process.returncode == 0, output
