"""The status function: GET /jobs/{job_id} on a Lambda of its own, light enough to wait cheaply.

Three things hold it together: its module imports nothing heavy, the packaged template sends that
one method to it, and the local runtime does the same.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import zipfile
from typing import Any

import pytest

from tests.runtime import ROOT
from tests.sam_template import SAM_JSON, load_sam

HEAVY = ("numpy", "PIL", "onnxruntime", "multipart", "chalicelib.classifier", "chalicelib.images")


def test_the_status_module_imports_no_numpy_pillow_or_onnx_runtime() -> None:
    code = (
        "import sys, chalicelib.status_api; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "none"


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_sam()


def _integration(sam: dict[str, Any], path: str, method: str) -> str:
    paths = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    return str(paths[path][method]["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"])


def test_api_gateway_sends_get_job_to_the_status_function_and_nothing_else(
    sam: dict[str, Any],
) -> None:
    paths = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    routed = {
        (path, method): _integration(sam, path, method)
        for path, methods in paths.items()
        for method in methods
        if method in ("get", "post", "delete", "put", "patch")
    }
    to_status = {key for key, uri in routed.items() if "${StatusFunction.Arn}" in uri}

    assert to_status == {("/jobs/{job_id}", "get")}
    assert all("${APIHandler.Arn}" in uri for key, uri in routed.items() if key not in to_status)


def test_the_status_function_is_the_light_module_with_less_memory(sam: dict[str, Any]) -> None:
    resources = sam["Resources"]
    status = resources["StatusFunction"]["Properties"]
    api = resources["APIHandler"]["Properties"]

    assert status["Handler"] == "chalicelib.status_api.app"
    assert status["CodeUri"] == api["CodeUri"]
    assert status["MemorySize"] < api["MemorySize"]
    assert status["Timeout"] <= 29  # API Gateway's limit
    assert status["Runtime"] == api["Runtime"]
    with zipfile.ZipFile(SAM_JSON.parent / "deployment.zip") as zipped:
        assert "chalicelib/status_api.py" in zipped.namelist()


def test_api_gateway_may_invoke_the_status_function_for_that_route_only(
    sam: dict[str, Any],
) -> None:
    permission = sam["Resources"]["StatusFunctionInvokePermission"]["Properties"]

    assert permission["FunctionName"] == {"Ref": "StatusFunction"}
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"]["Fn::Sub"][0].endswith("/*/GET/jobs/*")
    log_group = sam["Resources"]["StatusFunctionLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${StatusFunction}"}


class RecordingGateway:
    """A stand-in for Chalice's local gateway that answers and records what it was asked."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, method: str, path: str, headers: Any, body: Any) -> dict[str, Any]:
        self.requests.append((method, path))
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "text/plain"},
            "multiValueHeaders": {},
            "body": self.name,
        }


@pytest.mark.parametrize(
    ("method", "path", "served_by"),
    [
        ("GET", "/jobs/0123456789abcdef0123456789abcdef", "status"),
        ("GET", "/jobs/abc?wait=5", "status"),
        ("DELETE", "/jobs/abc", "api"),
        ("POST", "/jobs/abc/retry", "api"),
        ("GET", "/jobs", "api"),
        ("GET", "/jobs?status=PENDING", "api"),
        ("GET", "/batches/abc", "api"),
    ],
)
def test_the_local_runtime_sends_get_job_to_the_status_function(
    method: str, path: str, served_by: str
) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from infra.local import _request_handler

    status, api = RecordingGateway("status"), RecordingGateway("api")
    handler = _request_handler(status)

    class Handler(handler):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any) -> None:
            self.local_gateway = api  # instead of the one Chalice builds around the app
            BaseHTTPRequestHandler.__init__(self, *args)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        conn.request(method, path)
        answer = conn.getresponse().read().decode()
    finally:
        server.shutdown()
        server.server_close()

    assert answer == served_by
