"""The status function as Lambda runs it (its own Chalice app), and the readiness answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client

from chalicelib.adapters import readiness_probe
from chalicelib.readiness import ReadinessProbe
from chalicelib.status_api import app as status_app
from chalicelib.status_api import build_status_services, set_status_services
from tests.functional.conftest import KEY_B, Api, Stack
from tests.photos import cat_jpeg


@pytest.fixture
def status(stack: Stack) -> Iterator[Api]:
    """The status function's own app, over the same stack."""
    set_status_services(build_status_services(stack.settings, stack.services.adapters))
    with Client(status_app) as client:
        yield Api(client, stack)
    set_status_services(None)


def test_the_status_function_answers_get_job_as_the_api_does(api: Api, status: Api) -> None:
    job_id = api.submit(cat_jpeg())
    api.classify_queued()

    from_status = status.get(f"/jobs/{job_id}", query={"wait": "1"}).json
    from_api = api.get(f"/jobs/{job_id}").json

    assert from_status["status"] == "SUCCEEDED"
    assert {k: v for k, v in from_status.items() if k != "image_url"} == {
        k: v for k, v in from_api.items() if k != "image_url"
    }


def test_the_status_function_checks_keys_and_tenants(api: Api, status: Api) -> None:
    job_id = api.submit(cat_jpeg())

    assert status.get(f"/jobs/{job_id}", key=None).error_code == "missing_api_key"
    assert status.get(f"/jobs/{job_id}", key="not-a-key-at-all-1234").status == 403
    assert status.get(f"/jobs/{job_id}", key=KEY_B).status == 404
    assert status.get(f"/jobs/{job_id}", query={"wait": "99"}).error_code == "invalid_wait"


def test_ready_answers_200_when_every_dependency_answers(api: Api) -> None:
    resp = api.get("/ready", key=None)

    assert resp.status == 200
    assert resp.json == {"status": "ready", "checks": {"s3": "ok", "dynamodb": "ok", "sqs": "ok"}}


def test_ready_answers_503_naming_the_dependency_that_does_not_answer(
    api: Api, stack: Stack
) -> None:
    # GIVEN an S3 bucket that is gone
    broken = stack.settings.model_copy(update={"bucket": "imgcls-no-such-bucket"})
    stack.install(readiness=readiness_probe(broken))

    resp = api.get("/ready", key=None)

    assert resp.status == 503
    assert resp.json["status"] == "unavailable"
    assert resp.json["checks"]["s3"].startswith("down")
    assert resp.json["checks"]["dynamodb"] == resp.json["checks"]["sqs"] == "ok"


def test_readiness_is_checked_at_most_once_per_ttl() -> None:
    calls = 0
    now = 0.0

    def check() -> None:
        nonlocal calls
        calls += 1

    probe = ReadinessProbe({"s3": check}, clock=lambda: now)
    for _ in range(10):
        assert probe.readiness().status == "ready"
    now += 5.0
    probe.readiness()

    assert calls == 2
