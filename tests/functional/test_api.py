"""The HTTP contract through Chalice's test client, with the real service under moto."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from app import app
from tests.functional.conftest import KEY_A, KEY_B, Stack
from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, cat_jpeg


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(app) as c:
        yield c


def post_image(
    client: Client, data: bytes, *, key: str = KEY_A, ctype: str = "image/jpeg", path: str = "/jobs"
) -> Any:
    return client.http.post(path, headers={"x-api-key": key, "content-type": ctype}, body=data)


def get(client: Client, path: str, key: str = KEY_A) -> Any:
    return client.http.get(path, headers={"x-api-key": key})


def error_code(resp: Any) -> str:
    return str(json.loads(resp.body)["error"]["code"])


def test_health_needs_no_key_and_names_the_model(client: Client) -> None:
    resp = client.http.get("/health")
    assert resp.status_code == 200
    assert resp.json_body["model"]["name"] == "efficientnet-lite0"


def test_submit_raw_image_answers_202_with_location_and_stores_everything(
    client: Client, stack: Stack
) -> None:
    resp = post_image(client, cat_jpeg())

    assert resp.status_code == 202
    body = resp.json_body
    assert body["status"] == "PENDING"
    assert body["status_url"] == f"/jobs/{body['job_id']}"
    assert resp.headers["Location"] == body["status_url"]
    job = get(client, body["status_url"]).json_body
    assert job["status"] == "PENDING"
    assert job["content_type"] == "image/jpeg"
    assert job["attempts"] == 0
    assert job["image_url"].startswith("https://")
    key = f"images/a/{body['job_id']}"
    stored = stack.clients.s3.get_object(Bucket=stack.settings.bucket, Key=key)["Body"].read()
    assert stored == cat_jpeg()
    queued = stack.receive_jobs_event()["Records"]
    assert [json.loads(r["body"])["job_id"] for r in queued] == [body["job_id"]]


def test_submit_multipart_and_json_base64_with_webhook(client: Client) -> None:
    boundary = "b0undary"
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="webhook_url"\r\n\r\n'
            "https://example.com/hook\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="c.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + CAT.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    resp = post_image(client, multipart, ctype=f"multipart/form-data; boundary={boundary}")
    assert resp.status_code == 202, resp.body
    job = get(client, resp.json_body["status_url"]).json_body
    assert job["webhook_url"] == "https://example.com/hook"
    assert job["size_bytes"] == CAT.stat().st_size

    doc = {"image_base64": base64.b64encode(COFFEE.read_bytes()).decode()}
    resp = post_image(
        client,
        json.dumps(doc).encode(),
        ctype="application/json",
        path="/jobs?webhook_url=https://example.com/q",
    )
    assert resp.status_code == 202, resp.body
    job = get(client, resp.json_body["status_url"]).json_body
    assert job["content_type"] == "image/png"
    assert job["webhook_url"] == "https://example.com/q"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "missing_api_key"),
        ({"x-api-key": "not-a-real-key-000000"}, 403, "invalid_api_key"),
    ],
)
def test_routes_other_than_health_need_a_valid_key(
    client: Client, headers: dict[str, str], status: int, code: str
) -> None:
    for resp in (
        client.http.get("/jobs", headers=headers),
        client.http.get("/jobs/" + "0" * 32, headers=headers),
        client.http.post(
            "/jobs", headers={**headers, "content-type": "image/jpeg"}, body=cat_jpeg()
        ),
    ):
        assert resp.status_code == status
        assert error_code(resp) == code


def test_another_tenants_job_is_404_and_never_listed(client: Client) -> None:
    job_id = post_image(client, cat_jpeg(), key=KEY_A).json_body["job_id"]

    assert get(client, f"/jobs/{job_id}", key=KEY_B).status_code == 404
    assert get(client, "/jobs", key=KEY_B).json_body["jobs"] == []
    assert [j["job_id"] for j in get(client, "/jobs", key=KEY_A).json_body["jobs"]] == [job_id]


@pytest.mark.parametrize("job_id", ["nope", "0" * 32, "g" * 32, "A" * 32, "0" * 33])
def test_unknown_or_malformed_job_id_is_404(client: Client, job_id: str) -> None:
    resp = get(client, f"/jobs/{job_id}")
    assert resp.status_code == 404
    assert error_code(resp) == "job_not_found"


@pytest.mark.parametrize(
    ("body", "ctype", "status", "code"),
    [
        (b"", "image/jpeg", 400, "empty_body"),
        (b"hello", "text/plain", 415, "unsupported_content_type"),
        (b"hello world, not an image", "image/jpeg", 415, "unsupported_image"),
        (b"%PDF-1.7\n...", "application/octet-stream", 415, "unsupported_image"),
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"image_base64": "***"}', "application/json", 400, "invalid_base64"),
        (b'{"other": 1}', "application/json", 400, "missing_image"),
        (b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x", 400, "missing_image"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    client: Client, body: bytes, ctype: str, status: int, code: str
) -> None:
    resp = post_image(client, body, ctype=ctype)
    assert resp.status_code == status
    assert error_code(resp) == code


def test_bad_webhook_url_is_400(client: Client) -> None:
    resp = post_image(client, cat_jpeg(), path="/jobs?webhook_url=ftp://example.com/x")
    assert resp.status_code == 400
    assert error_code(resp) == "invalid_webhook_url"


def test_image_over_the_byte_limit_is_413(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.settings import Settings
    from chalicelib.wiring import build_service, set_service

    monkeypatch.setenv("MAX_IMAGE_BYTES", "1000")
    set_service(build_service(Settings.from_env(), stack.clients))
    with Client(app) as c:
        resp = post_image(c, cat_jpeg())
    assert resp.status_code == 413
    assert error_code(resp) == "image_too_large"


def test_list_is_newest_first_filtered_and_paginated(client: Client, stack: Stack) -> None:
    ids = [post_image(client, cat_jpeg()).json_body["job_id"] for _ in range(5)]

    first = get(client, "/jobs?limit=2").json_body
    second = get(client, f"/jobs?limit=2&next_token={first['next_token']}").json_body
    third = get(client, f"/jobs?limit=2&next_token={second['next_token']}").json_body
    listed = [j["job_id"] for page in (first, second, third) for j in page["jobs"]]
    assert listed == list(reversed(ids))
    assert get(client, "/jobs?status=succeeded").json_body["jobs"] == []
    assert len(get(client, "/jobs?status=PENDING").json_body["jobs"]) == 5


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "invalid_limit"),
        ("limit=abc", "invalid_limit"),
        ("status=DONE", "invalid_status"),
        ("next_token=garbage", "invalid_next_token"),
    ],
)
def test_bad_list_parameters_are_400(client: Client, query: str, code: str) -> None:
    resp = get(client, f"/jobs?{query}")
    assert resp.status_code == 400
    assert error_code(resp) == code


def test_next_token_of_another_tenant_is_refused(client: Client) -> None:
    for _ in range(3):
        post_image(client, cat_jpeg(), key=KEY_A)
    token = get(client, "/jobs?limit=1", key=KEY_A).json_body["next_token"]
    assert token
    resp = get(client, f"/jobs?next_token={token}", key=KEY_B)
    assert resp.status_code == 400


def test_classifier_handler_labels_real_photos_and_publishes_events(
    client: Client, stack: Stack
) -> None:
    cat_id = post_image(client, cat_jpeg()).json_body["job_id"]
    coffee_id = post_image(client, COFFEE.read_bytes(), ctype="image/png").json_body["job_id"]
    event = stack.receive_jobs_event()
    assert len({r["messageId"] for r in event["Records"]}) == 2

    result = client.lambda_.invoke("classify", event)

    assert result.payload == {"batchItemFailures": []}
    cat = get(client, f"/jobs/{cat_id}").json_body
    coffee = get(client, f"/jobs/{coffee_id}").json_body
    assert cat["status"] == coffee["status"] == "SUCCEEDED"
    assert cat["attempts"] == 1
    assert cat["predictions"][0]["class_id"] in CAT_CLASSES
    assert coffee["predictions"][0]["class_id"] == ESPRESSO
    assert coffee["predictions"][0]["label"] == "espresso"
    probs = [p["probability"] for p in cat["predictions"]]
    assert len(probs) == 5
    assert probs == sorted(probs, reverse=True)
    assert cat["model"] == {"name": "efficientnet-lite0", "version": "1.0.0-fp32"}
    assert {"s3_get", "decode", "inference", "total"} <= set(cat["timings_ms"])
    events = stack.published_events()
    assert sorted(e["event"]["job"]["job_id"] for e in events) == sorted([cat_id, coffee_id])
    assert {e["event"]["type"] for e in events} == {"job.succeeded"}
    assert {e["attributes"]["tenant"]["Value"] for e in events} == {"a"}


def test_redelivered_message_changes_nothing_and_repeats_the_same_event(
    client: Client, stack: Stack
) -> None:
    job_id = post_image(client, cat_jpeg()).json_body["job_id"]
    event = stack.receive_jobs_event()
    client.lambda_.invoke("classify", event)
    before = get(client, f"/jobs/{job_id}").json_body
    [first] = stack.published_events()

    again = client.lambda_.invoke("classify", event)

    after = get(client, f"/jobs/{job_id}").json_body
    assert again.payload == {"batchItemFailures": []}
    assert after == before
    # Nothing says whether the first attempt's event went out, so the redelivery sends it again:
    # the same event, same id and same created_at, which receivers and deliveries recognise.
    [repeat] = stack.published_events()
    assert repeat["event"] == first["event"]


def test_undecodable_image_fails_its_job_without_touching_its_neighbour(
    client: Client, stack: Stack
) -> None:
    truncated = cat_jpeg()[:4000]  # a valid header, then nothing: passes the door
    bad_id = post_image(client, truncated).json_body["job_id"]
    good_id = post_image(client, cat_jpeg()).json_body["job_id"]

    result = client.lambda_.invoke("classify", stack.receive_jobs_event())

    assert result.payload == {"batchItemFailures": []}
    bad = get(client, f"/jobs/{bad_id}").json_body
    assert bad["status"] == "FAILED"
    assert bad["error"]["code"] == "undecodable_image"
    assert get(client, f"/jobs/{good_id}").json_body["status"] == "SUCCEEDED"
    types = {e["event"]["job"]["job_id"]: e["event"]["type"] for e in stack.published_events()}
    assert types == {bad_id: "job.failed", good_id: "job.succeeded"}
