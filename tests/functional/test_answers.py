"""Answers a person can use: categories over real photos, options per job, and repeats answered
from the cache (never across tenants, never after ``cache=false``)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import pytest

from chalicelib.errors import TransientError
from chalicelib.job_events import EventPublisher
from chalicelib.job_store import JobRecord
from chalicelib.telemetry import REGISTRY
from tests.builders import multipart
from tests.functional.conftest import KEY_B, Api, Stack
from tests.functional.test_ways_in_and_out import (
    classify_all,
    notify_all,
    s3_notifications,
    upload,
)
from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, cat_jpeg

NOTHING_FAILED: dict[str, list[dict[str, str]]] = {"batchItemFailures": []}


def classified(api: Api, data: bytes, ctype: str = "image/jpeg", **query: str) -> dict[str, Any]:
    """Submit an image, classify what is queued; the finished job."""
    job_id = api.submit(data, ctype, **query)
    assert api.classify_queued() == NOTHING_FAILED
    job = api.job(job_id)
    assert job["status"] == "SUCCEEDED", job
    return job


def category(job: dict[str, Any], name: str) -> float:
    """The probability of one of the job's categories (0 when it is not there)."""
    return next((c["probability"] for c in job["categories"] if c["name"] == name), 0.0)


class Calls:
    """The AWS operations the stack's clients make while it is open, as ``service.Operation``."""

    def __init__(self, stack: Stack) -> None:
        self.seen: list[str] = []
        self._clients = [stack.clients.s3, stack.clients.dynamodb, stack.clients.sqs]
        self._clients.append(stack.clients.sns)

    def _record(self, model: Any, **_: Any) -> None:
        self.seen.append(f"{model.service_model.service_name}.{model.name}")

    def __enter__(self) -> Calls:
        for client in self._clients:
            client.meta.events.register("before-call.*.*", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-call.*.*", self._record)


# --- categories on real photos ---------------------------------------------------------------


def test_the_cat_photo_is_a_cat_and_the_espresso_a_beverage(api: Api) -> None:
    # GIVEN the cat and espresso photos, WHEN classified
    cat = classified(api, CAT.read_bytes(), "image/png")
    coffee = classified(api, COFFEE.read_bytes(), "image/png")

    # THEN the honest answers lead: cat and beverage, each over 0.8
    assert cat["categories"][0]["name"] in ("cat", "mammal", "animal")
    assert category(cat, "cat") >= 0.8
    assert category(coffee, "beverage") >= 0.8
    assert cat["predictions"][0]["class_id"] in CAT_CLASSES
    assert "cat" in cat["predictions"][0]["parents"]
    assert coffee["predictions"][0]["class_id"] == ESPRESSO
    assert coffee["predictions"][0]["parents"][0] == "beverage"
    for job in (cat, coffee):
        probabilities = [c["probability"] for c in job["categories"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert len(job["predictions"]) == 5  # the default top_k


def test_top_k_and_min_confidence_cut_labels_and_categories(api: Api) -> None:
    job = classified(api, CAT.read_bytes(), "image/png", top_k="2", min_confidence="0.2")

    assert job["options"] == {"top_k": 2, "min_confidence": 0.2}
    assert 1 <= len(job["predictions"]) <= 2
    assert all(p["probability"] >= 0.2 for p in job["predictions"])
    assert all(c["probability"] >= 0.2 for c in job["categories"])
    assert category(job, "cat") >= 0.8


def test_options_come_as_form_fields_and_json_fields_too(api: Api) -> None:
    body, ctype = multipart(
        [("image", "c.png", CAT.read_bytes())], {"top_k": "3", "cache": "false"}
    )
    form = api.post_image(body, ctype, top_k="9")  # the form field wins
    doc = {"image_base64": base64.b64encode(COFFEE.read_bytes()).decode(), "top_k": 20}
    as_json = api.post_image(json.dumps(doc).encode(), "application/json")

    assert form.status == as_json.status == 202
    assert api.job(form.json["job_id"])["options"]["top_k"] == 3
    assert api.job(as_json.json["job_id"])["options"]["top_k"] == 20
    api.classify_queued()
    assert len(api.job(as_json.json["job_id"])["predictions"]) == 20


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"top_k": "0"}, "invalid_top_k"),
        ({"top_k": "21"}, "invalid_top_k"),
        ({"top_k": "x"}, "invalid_top_k"),
        ({"min_confidence": "-0.1"}, "invalid_min_confidence"),
        ({"min_confidence": "1.5"}, "invalid_min_confidence"),
        ({"cache": "maybe"}, "invalid_cache"),
    ],
)
def test_out_of_range_options_are_400_in_the_query_a_form_and_json(
    api: Api, query: dict[str, str], code: str
) -> None:
    [(name, value)] = query.items()
    body, ctype = multipart([("image", "c.jpg", cat_jpeg())], query)
    raw_value: Any = value if name == "cache" or value == "x" else float(value)
    doc = {"image_base64": base64.b64encode(cat_jpeg()).decode(), name: raw_value}

    for resp in (
        api.post("/jobs", body=cat_jpeg(), headers={"content-type": "image/jpeg"}, query=query),
        api.post_image(body, ctype),
        api.post_image(json.dumps(doc).encode(), "application/json"),
        api.post("/batches", body=body.replace(b'name="image"', b'name="images"'),
                 headers={"content-type": ctype}),
    ):  # fmt: skip
        assert resp.status == 400, resp.body
        assert resp.error_code == code
    assert api.get("/jobs").json["jobs"] == []


# --- the cache ---------------------------------------------------------------------------------


def test_a_repeat_is_answered_from_the_cache_without_a_classification(
    api: Api, stack: Stack
) -> None:
    # GIVEN the cat photo classified once
    first = classified(api, cat_jpeg())
    stack.published_events()
    inferences = REGISTRY.value("jobs_succeeded")

    # WHEN the same bytes come again
    with Calls(stack) as calls:
        again = api.post_image(cat_jpeg())

    # THEN the answer is the job, finished, with the first one's result and its name
    assert again.status == 200, again.body
    job = again.json
    assert again.headers["Location"] == f"/jobs/{job['job_id']}"
    assert job["job_id"] != first["job_id"]
    assert job["status"] == "SUCCEEDED"
    assert job["cached_from"] == first["job_id"]
    assert (job["predictions"], job["categories"]) == (first["predictions"], first["categories"])
    assert api.job(job["job_id"])["cached_from"] == first["job_id"]
    # ... and nothing was classified: nothing queued, the classifier saw nothing
    assert stack.receive_jobs_event()["Records"] == []
    assert REGISTRY.value("jobs_succeeded") == inferences
    assert "sqs.SendMessage" not in calls.seen
    seen = Counter(calls.seen)
    # the tenant's rate limit (chalicelib/rate_limits.py): no write while it holds tokens its
    # earlier requests took ahead, one otherwise
    assert seen.pop("dynamodb.UpdateItem", 0) <= 1
    assert seen == Counter(
        {
            "dynamodb.GetItem": 2,  # the cache entry (eventually consistent), the first job
            "s3.PutObject": 1,  # the new job's own image
            "dynamodb.PutItem": 1,  # the new job, SUCCEEDED
            "sns.Publish": 1,  # its job.succeeded event, for webhooks
        }
    )
    [event] = stack.published_events()
    assert event["event"]["type"] == "job.succeeded"
    assert event["event"]["job"]["cached_from"] == first["job_id"]


class DownPublisher(EventPublisher):
    """SNS refusing every publish (a subclass only so the submitter accepts it)."""

    def __init__(self) -> None:
        pass

    def publish(self, job: JobRecord) -> None:
        """Refused."""
        raise TransientError("SNS unavailable")


def test_a_cached_jobs_event_goes_out_through_the_classifier_when_sns_refuses_it(
    api: Api, stack: Stack
) -> None:
    # GIVEN a classified photo, and SNS refusing the API's publishes
    first = classified(api, cat_jpeg())
    stack.published_events()
    stack.install(submit=stack.submitter(publisher=DownPublisher()))

    # WHEN the photo is sent again
    again = api.post_image(cat_jpeg())

    # THEN it is answered from the cache all the same, and its event goes out once the
    # classifier takes the message queued for it (no model run: the job is finished)
    assert again.status == 200
    inferences = REGISTRY.value("jobs_succeeded")
    assert api.classify_queued() == NOTHING_FAILED
    [event] = stack.published_events()
    assert event["event"]["job"]["job_id"] == again.json["job_id"]
    assert event["event"]["job"]["cached_from"] == first["job_id"]
    assert REGISTRY.value("jobs_succeeded") == inferences


def test_cache_false_classifies_again(api: Api, stack: Stack) -> None:
    first = classified(api, cat_jpeg())

    again = api.post_image(cat_jpeg(), cache="false")

    assert again.status == 202
    assert api.classify_queued() == NOTHING_FAILED
    job = api.job(again.json["job_id"])
    assert job["status"] == "SUCCEEDED"
    assert job["cached_from"] is None
    assert job["predictions"] == first["predictions"]


def test_another_tenant_is_never_answered_from_the_cache(api: Api, stack: Stack) -> None:
    classified(api, cat_jpeg())

    theirs = api.post_image(cat_jpeg(), key=KEY_B)

    assert theirs.status == 202
    assert [r["body"] for r in stack.receive_jobs_event()["Records"]] != []
    assert api.job(theirs.json["job_id"], key=KEY_B)["status"] == "PENDING"


def test_other_options_are_another_answer(api: Api) -> None:
    classified(api, cat_jpeg())

    assert api.post_image(cat_jpeg(), top_k="3").status == 202
    assert api.post_image(cat_jpeg(), min_confidence="0.5").status == 202


def test_a_deleted_job_answers_no_repeat_and_its_entry_goes(api: Api, stack: Stack) -> None:
    # GIVEN a classified job, deleted
    first = classified(api, cat_jpeg())
    assert api.delete(f"/jobs/{first['job_id']}").status == 204

    # WHEN the same image comes again, THEN it is classified, and its job answers the next
    second = api.post_image(cat_jpeg())
    assert second.status == 202
    assert api.classify_queued() == NOTHING_FAILED
    third = api.post_image(cat_jpeg())
    assert third.status == 200
    assert third.json["cached_from"] == second.json["job_id"]


def test_a_stale_entry_is_removed_when_its_job_is_gone(api: Api, stack: Stack) -> None:
    # GIVEN an entry whose job disappeared without a delete (DynamoDB's TTL, say)
    first = classified(api, cat_jpeg())
    stack.clients.dynamodb.delete_item(
        TableName=stack.settings.table, Key={"job_id": {"S": first["job_id"]}}
    )

    # WHEN the image comes again, THEN it is classified and the entry is gone
    with Calls(stack) as calls:
        assert api.post_image(cat_jpeg()).status == 202
    assert calls.seen.count("dynamodb.DeleteItem") == 1


def test_a_batch_uses_the_cache_for_each_file(api: Api, stack: Stack) -> None:
    first = classified(api, cat_jpeg())
    body, ctype = multipart(
        [("images", "again.jpg", cat_jpeg()), ("images", "coffee.png", COFFEE.read_bytes())]
    )

    accepted = api.post("/batches", body=body, headers={"content-type": ctype}).json
    batch = api.get(accepted["status_url"]).json

    by_name = {j["filename"]: j for j in batch["jobs"]}
    assert by_name["again.jpg"]["status"] == "SUCCEEDED"
    assert by_name["again.jpg"]["cached_from"] == first["job_id"]
    assert by_name["coffee.png"]["status"] == "PENDING"
    assert batch["progress"]["succeeded"] == 1


def test_a_bulk_drop_uses_the_cache_and_still_writes_its_result_file(
    api: Api, stack: Stack
) -> None:
    first = classified(api, cat_jpeg())
    stack.published_events()
    s3, bucket = stack.clients.s3, stack.settings.bucket

    s3.put_object(Bucket=bucket, Key="incoming/a/trip/cat.jpg", Body=cat_jpeg())
    assert api.invoke("ingest", s3_notifications(stack)) == NOTHING_FAILED

    assert stack.receive_jobs_event()["Records"] == []
    assert len(notify_all(api, stack)) == 1
    result = json.loads(
        s3.get_object(Bucket=bucket, Key="results/a/trip/cat.jpg.json")["Body"].read()
    )
    assert result["status"] == "SUCCEEDED"
    assert result["cached_from"] == first["job_id"]
    assert result["categories"][0]["name"] in ("cat", "mammal", "animal")
    classify_all(api, stack)  # nothing left to do


def test_a_presigned_upload_carries_its_options_to_its_job(api: Api, stack: Stack) -> None:
    # GIVEN an upload asked for with options, and the same image answered before by default
    classified(api, cat_jpeg())
    form = upload(api, cat_jpeg(), options={"top_k": 2, "min_confidence": 0.1, "cache": True})
    assert form["upload"]["fields"]["x-amz-meta-options"] == (
        '{"top_k":2,"min_confidence":0.1,"cache":true}'
    )

    # WHEN S3 says the object arrived
    assert api.invoke("ingest", s3_notifications(stack)) == NOTHING_FAILED

    # THEN the job has those options: another answer than the cached one, so it is classified
    job = api.job(form["job_id"])
    assert (job["status"], job["options"]) == ("PENDING", {"top_k": 2, "min_confidence": 0.1})
    classify_all(api, stack)
    done = api.job(form["job_id"])
    assert len(done["predictions"]) == 2
    assert all(c["probability"] >= 0.1 for c in done["categories"])


def test_an_upload_with_a_bad_option_is_400(api: Api) -> None:
    resp = api.post(
        "/uploads", json_body={"content_type": "image/jpeg", "top_k": 0, "filename": "a.jpg"}
    )

    assert resp.status == 400
    assert resp.error_code == "invalid_top_k"
