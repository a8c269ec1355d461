"""Caps on a tenant's unfinished work: over MAX_PENDING_JOBS or MAX_PENDING_PIXELS a new job is
a 429 for that tenant only, and finishing jobs makes room again. The count is the jobs table's
sparse index of unfinished jobs (moto's DynamoDB), kept by every transition."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from chalicelib.batches import Batches
from chalicelib.job_store import OPEN_INDEX, OWNER_INDEX, JobRepository
from chalicelib.pending_caps import PendingCaps, TooMuchPending
from chalicelib.uploads import Uploads
from infra.bootstrap import bootstrap
from tests.builders import multipart
from tests.functional.conftest import KEY_B, Api, Stack
from tests.functional.test_jobs_repository import MODEL, PRED, new_job, repo_of, started
from tests.functional.test_ways_in_and_out import classify_all
from tests.photos import cat_jpeg


def capped(stack: Stack, **limits: Any) -> None:
    """Install the use cases that make jobs with the given caps."""
    a = stack.services.adapters
    caps = PendingCaps(settings=stack.settings.model_copy(update=limits), repo=a.repo)
    submit = stack.submitter(caps=caps)
    stack.install(
        submit=submit,
        batches=Batches(submitter=submit, repo=a.repo, store=a.batches),
        uploads=Uploads(settings=stack.settings, images=a.images, caps=caps),
    )


def test_the_index_holds_exactly_the_unfinished_jobs(stack: Stack) -> None:
    repo = repo_of(stack)
    jobs = [new_job(repo) for _ in range(3)]
    new_job(repo, owner="b")
    assert repo.unfinished("a", enough=100) == (3, 0)

    first = started(repo, jobs[0].job_id)
    assert repo.unfinished("a", enough=100)[0] == 3  # PROCESSING is unfinished
    repo.succeed(first, predictions=PRED, model=MODEL, timings_ms={})
    repo.fail(jobs[1].job_id, code="x", message="y")
    assert repo.unfinished("a", enough=100)[0] == 1

    repo.retry(jobs[1].job_id)  # unfinished again
    assert repo.unfinished("a", enough=100)[0] == 2
    assert repo.unfinished("b", enough=100)[0] == 1
    # the stored record reads back without the index's attribute
    assert repo.get(jobs[1].job_id) is not None


def test_past_max_pending_jobs_a_new_job_is_429_for_that_tenant_only(
    api: Api, stack: Stack
) -> None:
    capped(stack, max_pending_jobs=2)
    api.submit(cat_jpeg())
    api.submit(cat_jpeg())

    refused = api.post_image(cat_jpeg())

    assert refused.status == 429
    assert refused.json["error"]["code"] == "too_many_pending_jobs"
    assert refused.headers["Retry-After"] == "5"
    assert api.post_image(cat_jpeg(), key=KEY_B).status == 202  # another tenant's own count
    # a batch that would pass the cap is refused whole, an upload form too
    body, ctype = multipart([("images", "c.jpg", cat_jpeg())])
    batch = api.post("/batches", body=body, headers={"content-type": ctype})
    assert (batch.status, batch.error_code) == (429, "too_many_pending_jobs")
    form = api.post("/uploads", json_body={"filename": "a.jpg", "content_type": "image/jpeg"})
    assert (form.status, form.error_code) == (429, "too_many_pending_jobs")

    # WHEN the tenant's jobs finish THEN there is room again
    classify_all(api, stack)
    assert api.post_image(cat_jpeg(), cache="false").status == 202


def test_past_max_pending_pixels_a_new_job_is_429(api: Api, stack: Stack) -> None:
    photo = cat_jpeg()
    width, height = Image.open(io.BytesIO(photo)).size
    capped(stack, max_pending_pixels=int(width * height * 1.5))
    api.submit(photo)

    refused = api.post_image(photo)

    assert (refused.status, refused.error_code) == (429, "too_many_pending_pixels")
    assert "M pixels" in refused.json["error"]["message"]


class CountingRepo:
    """A repository counting the index queries the caps make."""

    def __init__(self, repo: JobRepository) -> None:
        self.repo = repo
        self.queries = 0

    def unfinished(self, owner: str, *, enough: int) -> tuple[int, int]:
        self.queries += 1
        return self.repo.unfinished(owner, enough=enough)


def test_a_busy_tenant_is_counted_once_a_second_and_refused_only_on_a_fresh_count(
    stack: Stack,
) -> None:
    # GIVEN caps of 3 jobs, one tenant with one unfinished job, and a clock that moves when told
    repo = repo_of(stack)
    job = new_job(repo)
    counting = CountingRepo(repo)
    now = [100.0]
    caps = PendingCaps(
        settings=stack.settings.model_copy(update={"max_pending_jobs": 3}),
        repo=counting,  # type: ignore[arg-type]
        monotonic=lambda: now[0],
    )

    # WHEN it asks for room twice within the second THEN one query counted both
    caps.check("a")
    caps.check("a")
    assert counting.queries == 1

    # AND past the cap on the count it holds, it reads again before refusing
    new_job(repo)
    new_job(repo)
    with pytest.raises(TooMuchPending):
        caps.check("a")
    assert counting.queries == 2

    # AND once jobs finish, the fresh count makes room at once, old count or not
    repo.succeed(started(repo, job.job_id), predictions=PRED, model=MODEL, timings_ms={})
    caps.check("a")
    assert counting.queries == 3

    # AND after a second the count is read again
    now[0] += 1.5
    caps.check("b")
    caps.check("b")
    assert counting.queries == 4


def test_a_jobs_table_kept_from_before_gains_the_index(stack: Stack) -> None:
    # GIVEN a table made by an earlier version (a local DATA_DIR): the owner index only
    db = stack.clients.dynamodb
    db.create_table(
        TableName="kept-jobs",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("job_id", "owner", "created_at")
        ],
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": OWNER_INDEX,
                "KeySchema": [
                    {"AttributeName": "owner", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )

    # WHEN the runtime bootstraps over it
    kept = stack.settings.model_copy(update={"table": "kept-jobs"})
    bootstrap(kept, visibility_timeout_s=30, aws=stack.clients)

    # THEN the unfinished jobs' index is there, and counts
    indexes = db.describe_table(TableName="kept-jobs")["Table"]["GlobalSecondaryIndexes"]
    assert {i["IndexName"] for i in indexes} == {OWNER_INDEX, OPEN_INDEX}
    repo = JobRepository(db, "kept-jobs")
    new_job(repo)
    assert repo.unfinished("a", enough=10) == (1, 0)
