"""Cancel that holds (a job canceled while it is classified never succeeds), batch cancel that
keeps the finished jobs, and results taken away as CSV or JSON Lines."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from chalicelib.classify import Jobs
from chalicelib.contract import Category, Model, Prediction
from chalicelib.job_store import JobRecord, Transition
from tests.builders import multipart
from tests.functional.conftest import KEY_B, Api, Stack
from tests.functional.test_reliability import classifier_around
from tests.functional.test_ways_in_and_out import deliver_all, notify_all
from tests.photos import CAT, COFFEE, ROCKET, cat_jpeg

NOTHING_FAILED: dict[str, list[dict[str, str]]] = {"batchItemFailures": []}


class CancelMidway:
    """The job store, with the job canceled (through the API) between its start and its
    result, as a person pressing Cancel while the model runs would."""

    def __init__(self, inner: Jobs, api: Api) -> None:
        self._inner = inner
        self._api = api
        self.refused: list[str] = []

    def start(self, job_id: str, *, generation: int) -> Transition:
        """As the store does."""
        return self._inner.start(job_id, generation=generation)

    def fail(
        self, job_id: str, *, code: str, message: str, generation: int | None = None
    ) -> Transition:
        """As the store does."""
        return self._inner.fail(job_id, code=code, message=message, generation=generation)

    def succeed(
        self,
        started: JobRecord,
        *,
        predictions: list[Prediction],
        model: Model,
        timings_ms: dict[str, float],
        categories: list[Category] | None = None,
    ) -> JobRecord | None:
        """Cancel first, then write the result as the store does."""
        assert self._api.post(f"/jobs/{started.job_id}/cancel").status == 200
        done = self._inner.succeed(
            started,
            predictions=predictions,
            model=model,
            timings_ms=timings_ms,
            categories=categories,
        )
        if done is None:
            self.refused.append(started.job_id)
        return done


def post_batch(api: Api, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    body, ctype = multipart([("images", name, data) for name, data in files])
    resp = api.post("/batches", body=body, headers={"content-type": ctype})
    assert resp.status == 202, resp.body
    return dict(resp.json)


# --- cancel ------------------------------------------------------------------------------------


def test_a_pending_job_is_canceled_announced_and_never_classified(api: Api, stack: Stack) -> None:
    # GIVEN a queued job
    job_id = api.submit(cat_jpeg(), webhook_url="https://example.com/hook")

    # WHEN it is canceled
    resp = api.post(f"/jobs/{job_id}/cancel")

    # THEN it is CANCELED, a job.canceled event went out and reached the job's webhook, and
    # its message does nothing
    assert resp.status == 200
    assert resp.json["status"] == "CANCELED"
    [event] = notify_all(api, stack)
    assert event["event"]["type"] == "job.canceled"
    assert event["attributes"]["type"]["Value"] == "job.canceled"
    deliver_all(api, stack)
    [(url, body, headers)] = stack.sender.posts
    assert url == "https://example.com/hook"
    assert headers["X-Event-Type"] == "job.canceled"
    assert json.loads(body)["job"]["status"] == "CANCELED"
    assert api.classify_queued() == NOTHING_FAILED
    assert api.job(job_id)["status"] == "CANCELED"
    assert api.job(job_id)["predictions"] is None


def test_a_job_canceled_while_it_is_classified_never_succeeds(api: Api, stack: Stack) -> None:
    # GIVEN a job whose cancel arrives between its start and its result
    job_id = api.submit(cat_jpeg())
    midway = CancelMidway(stack.services.adapters.repo, api)
    stack.install(classify=classifier_around(stack, repo=midway))

    # WHEN the classifier runs
    assert api.classify_queued() == NOTHING_FAILED

    # THEN its result was refused: the job stays CANCELED, and only job.canceled went out
    assert midway.refused == [job_id]
    job = api.job(job_id)
    assert job["status"] == "CANCELED"
    assert job["predictions"] is None
    assert [e["event"]["type"] for e in stack.published_events()] == ["job.canceled"]
    # a redelivered message finds it CANCELED too
    assert api.post(f"/jobs/{job_id}/retry").status == 409


def test_a_finished_job_is_not_cancelable_and_a_canceled_one_answers_again(api: Api) -> None:
    done = api.submit(cat_jpeg())
    api.classify_queued()
    pending = api.submit(COFFEE.read_bytes(), "image/png")

    refused = api.post(f"/jobs/{done}/cancel")
    first = api.post(f"/jobs/{pending}/cancel")
    again = api.post(f"/jobs/{pending}/cancel")

    assert refused.status == 409
    assert refused.error_code == "not_cancelable"
    assert "SUCCEEDED" in refused.json["error"]["message"]
    assert api.job(done)["status"] == "SUCCEEDED"
    assert first.status == again.status == 200
    assert again.json["status"] == "CANCELED"


def test_cancel_of_another_tenants_or_an_unknown_job_is_404(api: Api) -> None:
    job_id = api.submit(cat_jpeg())

    for resp in (
        api.post(f"/jobs/{job_id}/cancel", key=KEY_B),
        api.post(f"/jobs/{'0' * 32}/cancel"),
        api.post("/jobs/nope/cancel"),
    ):
        assert resp.status == 404
        assert resp.error_code == "job_not_found"
    assert api.job(job_id)["status"] == "PENDING"


def test_batch_cancel_keeps_the_finished_jobs(api: Api, stack: Stack) -> None:
    # GIVEN a batch of three, one of them classified already
    batch = post_batch(
        api,
        [("cat.png", CAT.read_bytes()), ("coffee.png", COFFEE.read_bytes()),
         ("rocket.jpg", ROCKET.read_bytes())],
    )  # fmt: skip
    first = stack.receive_jobs_event(max_messages=1)
    assert api.invoke("classify", first) == NOTHING_FAILED
    stack.published_events()

    # WHEN the batch is canceled (twice: the second changes nothing)
    resp = api.post(f"/batches/{batch['batch_id']}/cancel")
    again = api.post(f"/batches/{batch['batch_id']}/cancel")

    # THEN the finished job stays SUCCEEDED, the other two are CANCELED
    assert resp.status == again.status == 200
    body = resp.json
    statuses = sorted(j["status"] for j in body["jobs"])
    assert statuses == ["CANCELED", "CANCELED", "SUCCEEDED"]
    assert body["progress"]["canceled"] == 2
    assert body["progress"]["succeeded"] == 1
    assert body["status"] == "canceled"
    assert again.json["jobs"] == body["jobs"]
    # ... and each canceled job's event went out, again on the second cancel, with the same id
    events = [e["event"] for e in stack.published_events()]
    assert {e["type"] for e in events} == {"job.canceled"}
    assert len(events) == 4
    assert len({e["id"] for e in events}) == 2
    assert api.post(f"/batches/{batch['batch_id']}/cancel", key=KEY_B).status == 404


# --- export ------------------------------------------------------------------------------------


def finished_batch(api: Api) -> dict[str, Any]:
    """A batch of a cat, an espresso and a file that is no image, classified."""
    batch = post_batch(
        api,
        [("cat.png", CAT.read_bytes()), ("=cmd.png", COFFEE.read_bytes()),
         ("broken.jpg", cat_jpeg()[:4000])],
    )  # fmt: skip
    api.classify_queued()
    return batch


def test_a_batchs_results_as_csv(api: Api) -> None:
    batch = finished_batch(api)

    resp = api.get(f"/batches/{batch['batch_id']}/results", query={"format": "csv"})

    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="batch-{batch["batch_id"]}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(resp.body.decode())))
    assert [r["filename"] for r in rows] == ["cat.png", "'=cmd.png", "broken.jpg"]
    cat, coffee, broken = rows
    assert (cat["status"], coffee["status"], broken["status"]) == (
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
    )
    assert cat["label"]
    assert float(cat["probability"]) > 0
    assert cat["categories"].startswith(("cat ", "mammal ", "animal "))
    assert "beverage" in coffee["categories"]
    assert broken["error"].startswith("undecodable_image: ")


def test_a_batchs_results_as_json_lines(api: Api) -> None:
    batch = finished_batch(api)

    resp = api.get(f"/batches/{batch['batch_id']}/results", query={"format": "jsonl"})

    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    assert resp.headers["Content-Disposition"].endswith('.jsonl"')
    rows = [json.loads(line) for line in resp.body.decode().splitlines()]
    assert [r["filename"] for r in rows] == ["cat.png", "=cmd.png", "broken.jpg"]
    assert rows[0]["categories"][0]["name"] in ("cat", "mammal", "animal")
    assert rows[1]["label"] == "espresso"
    assert rows[2]["error"]["code"]
    assert set(rows[0]) == {
        "job_id", "filename", "status", "created_at", "label", "probability", "categories",
        "cached_from", "error",
    }  # fmt: skip


def test_the_jobs_export_is_filtered_like_the_listing(api: Api) -> None:
    finished_batch(api)
    pending = api.submit(ROCKET.read_bytes())

    failed = api.get("/jobs/export", query={"format": "jsonl", "status": "failed"})
    everything = api.get("/jobs/export")
    paged = api.get("/jobs/export", query={"limit": "2", "format": "csv"})

    assert failed.status == everything.status == paged.status == 200
    assert [json.loads(line)["status"] for line in failed.body.decode().splitlines()] == ["FAILED"]
    assert failed.headers["Content-Disposition"] == 'attachment; filename="jobs-failed.jsonl"'
    rows = list(csv.DictReader(io.StringIO(everything.body.decode())))
    assert len(rows) == 4
    assert rows[0]["job_id"] == pending  # newest first
    assert len(list(csv.DictReader(io.StringIO(paged.body.decode())))) == 2
    assert paged.headers["X-Next-Token"]
    assert "X-Next-Token" not in everything.headers
    assert api.get("/jobs/export", key=KEY_B).body.decode().count("\n") == 1  # the header only


@pytest.mark.parametrize("path", ["/jobs/export", "/batches/{batch_id}/results"])
def test_an_unknown_export_format_is_400(api: Api, path: str) -> None:
    batch = finished_batch(api)

    resp = api.get(path.format(batch_id=batch["batch_id"]), query={"format": "xml"})

    assert resp.status == 400
    assert resp.error_code == "invalid_format"


def test_another_tenants_batch_results_are_404(api: Api) -> None:
    batch = finished_batch(api)

    resp = api.get(f"/batches/{batch['batch_id']}/results", key=KEY_B)

    assert resp.status == 404
    assert resp.error_code == "batch_not_found"
