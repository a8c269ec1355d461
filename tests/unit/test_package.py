"""The deployable package (`make package`, which `make test` runs first) holds what Lambda needs."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra.bootstrap import MAX_RECEIVE_COUNT

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "build" / "package"


@pytest.fixture(scope="module")
def names() -> set[str]:
    zip_path = PACKAGE / "deployment.zip"
    assert zip_path.exists(), "run `make package` (make test does) before the tests"
    with zipfile.ZipFile(zip_path) as zf:
        return set(zf.namelist())


@pytest.mark.parametrize(
    "required",
    [
        "app.py",
        "chalicelib/wiring.py",
        "chalicelib/contract/__init__.py",  # a package inside chalicelib is packaged too
        "onnxruntime/__init__.py",
        "numpy/__init__.py",
        "PIL/__init__.py",
        "pydantic/__init__.py",
        "pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so",  # built for Lambda's 3.12
        "multipart.py",
        "chalicelib/model/manifest.json",
        "chalicelib/model/labels.json",
        "chalicelib/web/index.html",
        "chalicelib/web/app.js",
        "chalicelib/web/style.css",
    ],
)
def test_zip_contains(names: set[str], required: str) -> None:
    assert required in names


def test_zip_has_the_committed_model_byte_for_byte(names: set[str]) -> None:
    manifest = json.loads((ROOT / "model" / "manifest.json").read_text())
    with zipfile.ZipFile(PACKAGE / "deployment.zip") as zf:
        digest = hashlib.sha256(zf.read(f"chalicelib/model/{manifest['file']}")).hexdigest()
    assert digest == manifest["sha256"]


def test_zip_fits_lambda(names: set[str]) -> None:
    with zipfile.ZipFile(PACKAGE / "deployment.zip") as zf:
        unzipped = sum(info.file_size for info in zf.infolist())
    assert unzipped < 250 * 1024 * 1024
    assert not any(n.startswith(("torch/", "boto3/", "botocore/", "moto/")) for n in names)
    assert not any(
        n.startswith("onnxruntime/capi/") and n.endswith(".so") and "cp311" in n for n in names
    )


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    template = json.loads((PACKAGE / "sam.json").read_text())
    return dict(template["Resources"])


def test_template_holds_classifier_to_concurrency_one(resources: dict[str, Any]) -> None:
    classify = resources["Classify"]["Properties"]
    assert classify["ReservedConcurrentExecutions"] == 1
    assert classify["Events"]["ClassifySqsEventSource"]["Properties"]["BatchSize"] == 10


def test_every_sqs_mapping_reports_partial_batch_failures(resources: dict[str, Any]) -> None:
    sources = [
        event["Properties"]
        for res in resources.values()
        for event in res.get("Properties", {}).get("Events", {}).values()
        if event["Type"] == "SQS"
    ]
    assert len(sources) >= 2
    assert all(s.get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for s in sources)


def test_jobs_queue_outlasts_the_classifier_and_redrives_like_the_emulator(
    resources: dict[str, Any],
) -> None:
    queue = resources["JobsQueue"]["Properties"]
    timeout = resources["Classify"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVE_COUNT
    assert queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] == "JobsDeadLetterQueue"
    assert (
        resources["JobsDeadLetterQueue"]["Properties"]["QueueName"] == f"{queue['QueueName']}-dlq"
    )
