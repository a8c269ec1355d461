"""The HTTP contract through Chalice's test client, with the real service under moto."""

from __future__ import annotations

import base64
import json

import pytest

from tests.builders import multipart
from tests.functional.conftest import KEY_A, KEY_B, Api, Stack
from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, cat_jpeg


def test_health_needs_no_key_and_names_the_model(api: Api) -> None:
    resp = api.get("/health", key=None)
    assert resp.status == 200
    assert resp.json["model"]["name"] == "efficientnet-lite0"


def test_submit_raw_image_answers_202_with_location_and_stores_everything(
    api: Api, stack: Stack
) -> None:
    resp = api.post_image(cat_jpeg())

    assert resp.status == 202
    body = resp.json
    assert body["status"] == "PENDING"
    assert body["status_url"] == f"/jobs/{body['job_id']}"
    assert resp.headers["Location"] == body["status_url"]
    job = api.get(body["status_url"]).json
    assert job["status"] == "PENDING"
    assert job["content_type"] == "image/jpeg"
    assert job["attempts"] == 0
    assert job["image_url"].startswith("https://")
    key = f"images/a/{body['job_id']}"
    stored = stack.clients.s3.get_object(Bucket=stack.settings.bucket, Key=key)["Body"].read()
    assert stored == cat_jpeg()
    queued = stack.receive_jobs_event()["Records"]
    assert [json.loads(r["body"])["job_id"] for r in queued] == [body["job_id"]]


def test_submit_multipart_and_json_base64_with_webhook(api: Api) -> None:
    body, ctype = multipart(
        [("image", "c.png", CAT.read_bytes())],
        {"webhook_url": "https://example.com/hook"},
        file_type="image/png",
    )
    resp = api.post_image(body, ctype)
    assert resp.status == 202, resp.body
    job = api.get(resp.json["status_url"]).json
    assert job["webhook_url"] == "https://example.com/hook"
    assert job["size_bytes"] == CAT.stat().st_size

    doc = {"image_base64": base64.b64encode(COFFEE.read_bytes()).decode()}
    resp = api.post_image(
        json.dumps(doc).encode(), "application/json", webhook_url="https://example.com/q"
    )
    assert resp.status == 202, resp.body
    job = api.get(resp.json["status_url"]).json
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
    api: Api, headers: dict[str, str], status: int, code: str
) -> None:
    for resp in (
        api.get("/jobs", key=None, headers=headers),
        api.get("/jobs/" + "0" * 32, key=None, headers=headers),
        api.post(
            "/jobs",
            key=None,
            headers={**headers, "content-type": "image/jpeg"},
            body=cat_jpeg(),
        ),
    ):
        assert resp.status == status
        assert resp.error_code == code


def test_another_tenants_job_is_404_and_never_listed(api: Api) -> None:
    job_id = api.submit(cat_jpeg(), key=KEY_A)

    assert api.get(f"/jobs/{job_id}", key=KEY_B).status == 404
    assert api.get("/jobs", key=KEY_B).json["jobs"] == []
    assert [j["job_id"] for j in api.get("/jobs", key=KEY_A).json["jobs"]] == [job_id]


@pytest.mark.parametrize("job_id", ["nope", "0" * 32, "g" * 32, "A" * 32, "0" * 33])
def test_unknown_or_malformed_job_id_is_404(api: Api, job_id: str) -> None:
    resp = api.get(f"/jobs/{job_id}")
    assert resp.status == 404
    assert resp.error_code == "job_not_found"


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
        (b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x", 400, "invalid_multipart"),
        (
            multipart(fields={"webhook_url": "https://example.com/h"})[0],
            multipart()[1],
            400,
            "missing_image",
        ),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    api: Api, body: bytes, ctype: str, status: int, code: str
) -> None:
    resp = api.post_image(body, ctype)
    assert resp.status == status
    assert resp.error_code == code


def test_bad_webhook_url_is_400(api: Api) -> None:
    resp = api.post_image(cat_jpeg(), webhook_url="ftp://example.com/x")
    assert resp.status == 400
    assert resp.error_code == "invalid_webhook_url"


def test_image_over_the_byte_limit_is_413(api: Api, stack: Stack) -> None:
    from chalicelib.wiring import build_services

    small = stack.settings.model_copy(update={"max_image_bytes": 1000})
    stack.install(submit=build_services(small, stack.clients).submit)
    resp = api.post_image(cat_jpeg())
    assert resp.status == 413
    assert resp.error_code == "image_too_large"


def test_list_is_newest_first_filtered_and_paginated(api: Api) -> None:
    ids = [api.submit(cat_jpeg()) for _ in range(5)]

    first = api.get("/jobs", query={"limit": "2"}).json
    second = api.get("/jobs", query={"limit": "2", "next_token": first["next_token"]}).json
    third = api.get("/jobs", query={"limit": "2", "next_token": second["next_token"]}).json
    listed = [j["job_id"] for page in (first, second, third) for j in page["jobs"]]
    assert listed == list(reversed(ids))
    assert api.get("/jobs", query={"status": "succeeded"}).json["jobs"] == []
    assert len(api.get("/jobs", query={"status": "PENDING"}).json["jobs"]) == 5


def test_a_filtered_page_ends_at_its_limit_and_the_next_one_resumes_after_it(api: Api) -> None:
    ids = [api.submit(cat_jpeg()) for _ in range(5)]

    first = api.get("/jobs", query={"status": "PENDING", "limit": "3"}).json
    second = api.get(
        "/jobs", query={"status": "PENDING", "limit": "3", "next_token": first["next_token"]}
    ).json

    assert [j["job_id"] for j in first["jobs"] + second["jobs"]] == list(reversed(ids))
    assert second["next_token"] is None


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "abc"}, "invalid_limit"),
        ({"limit": "²"}, "invalid_limit"),
        ({"status": "DONE"}, "invalid_status"),
        ({"next_token": "garbage"}, "invalid_next_token"),
    ],
)
def test_bad_list_parameters_are_400(api: Api, query: dict[str, str], code: str) -> None:
    resp = api.get("/jobs", query=query)
    assert resp.status == 400
    assert resp.error_code == code


def test_next_token_of_another_tenant_is_refused(api: Api) -> None:
    for _ in range(3):
        api.submit(cat_jpeg(), key=KEY_A)
    token = api.get("/jobs", key=KEY_A, query={"limit": "1"}).json["next_token"]
    assert token
    resp = api.get("/jobs", key=KEY_B, query={"next_token": token})
    assert resp.status == 400


def test_classifier_handler_labels_real_photos_and_publishes_events(api: Api, stack: Stack) -> None:
    cat_id = api.submit(cat_jpeg())
    coffee_id = api.submit(COFFEE.read_bytes(), "image/png")
    event = stack.receive_jobs_event()
    assert len({r["messageId"] for r in event["Records"]}) == 2

    result = api.invoke("classify", event)

    assert result == {"batchItemFailures": []}
    cat = api.job(cat_id)
    coffee = api.job(coffee_id)
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
    api: Api, stack: Stack
) -> None:
    job_id = api.submit(cat_jpeg())
    event = stack.receive_jobs_event()
    api.invoke("classify", event)
    before = api.job(job_id)
    [first] = stack.published_events()

    again = api.invoke("classify", event)

    after = api.job(job_id)
    assert again == {"batchItemFailures": []}
    # the record is unchanged; image_url is signed anew on each read (its X-Amz-Date moves)
    assert after.pop("image_url").split("?")[0] == before.pop("image_url").split("?")[0]
    assert after == before
    # Nothing says whether the first attempt's event went out, so the redelivery sends it again:
    # the same event, same id and same created_at, which receivers and deliveries recognise.
    [repeat] = stack.published_events()
    assert repeat["event"] == first["event"]


def test_undecodable_image_fails_its_job_without_touching_its_neighbour(
    api: Api, stack: Stack
) -> None:
    truncated = cat_jpeg()[:4000]  # a valid header, then nothing: passes the door
    bad_id = api.submit(truncated)
    good_id = api.submit(cat_jpeg())

    result = api.classify_queued()

    assert result == {"batchItemFailures": []}
    bad = api.job(bad_id)
    assert bad["status"] == "FAILED"
    assert bad["error"]["code"] == "undecodable_image"
    assert api.job(good_id)["status"] == "SUCCEEDED"
    types = {e["event"]["job"]["job_id"]: e["event"]["type"] for e in stack.published_events()}
    assert types == {bad_id: "job.failed", good_id: "job.succeeded"}
