"""Long polls: ``GET /jobs/{id}?wait=N``, ``POST /jobs`` with ``Prefer: wait=N`` and
``GET /batches/{id}?wait=N``. The waiting is driven by a fake pause whose first sleep runs the
classifier, so nothing here depends on how fast the machine is."""

from __future__ import annotations

import pytest

from chalicelib.batches import Batches
from chalicelib.job_actions import JobActions
from chalicelib.sqs_batch import records
from chalicelib.waiting import Pause
from tests.builders import multipart
from tests.functional.conftest import KEY_B, Api, Stack
from tests.photos import COFFEE, cat_jpeg


class ClassifyingPause:
    """A pause whose clock moves only when slept on, and whose first sleep classifies what is
    queued (the job finishes while the request waits)."""

    def __init__(self, stack: Stack, *, classify: bool = True) -> None:
        self.stack = stack
        self.classify = classify
        self.now = 0.0
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if self.classify and self.sleeps == 1:
            event = self.stack.receive_jobs_event()
            assert self.stack.services.classify.process(records(event)) == []

    def pause(self) -> Pause:
        return Pause(clock=lambda: self.now, sleep=self.sleep)


def waiting_jobs(stack: Stack, pause: ClassifyingPause) -> None:
    """Install the job use cases with ``pause``."""
    a = stack.services.adapters
    jobs = JobActions(
        settings=stack.settings,
        repo=a.repo,
        images=a.images,
        queue=a.jobs_queue,
        deliveries=a.deliveries,
        pause=pause.pause(),
    )
    batches = Batches(
        submitter=stack.services.submit, repo=a.repo, store=a.batches, pause=pause.pause()
    )
    stack.install(jobs=jobs, batches=batches)


def test_a_waiting_get_answers_when_the_job_finishes(api: Api, stack: Stack) -> None:
    # GIVEN a queued job, and a classifier that runs while the request waits
    job_id = api.submit(cat_jpeg())
    pause = ClassifyingPause(stack)
    waiting_jobs(stack, pause)

    # WHEN the client waits up to 10 s
    job = api.get(f"/jobs/{job_id}", query={"wait": "10"}).json

    # THEN it gets the finished job at the first read after it finished, long before 10 s
    assert job["status"] == "SUCCEEDED"
    assert job["predictions"]
    assert pause.sleeps == 1
    assert pause.now < 1


def test_a_waiting_get_times_out_with_the_current_state(api: Api, stack: Stack) -> None:
    job_id = api.submit(cat_jpeg())
    pause = ClassifyingPause(stack, classify=False)
    waiting_jobs(stack, pause)

    job = api.get(f"/jobs/{job_id}", query={"wait": "3"}).json

    assert job["status"] == "PENDING"
    assert pause.now == pytest.approx(3)


def test_waiting_on_a_finished_job_answers_at_once(api: Api, stack: Stack) -> None:
    job_id = api.submit(cat_jpeg())
    api.classify_queued()
    pause = ClassifyingPause(stack, classify=False)
    waiting_jobs(stack, pause)

    assert api.get(f"/jobs/{job_id}", query={"wait": "20"}).json["status"] == "SUCCEEDED"
    assert pause.sleeps == 0


def test_waiting_on_another_tenants_job_is_404_at_once(api: Api, stack: Stack) -> None:
    job_id = api.submit(cat_jpeg())
    pause = ClassifyingPause(stack, classify=False)
    waiting_jobs(stack, pause)

    resp = api.get(f"/jobs/{job_id}", key=KEY_B, query={"wait": "20"})

    assert (resp.status, resp.error_code) == (404, "job_not_found")
    assert pause.sleeps == 0


@pytest.mark.parametrize("wait", ["0", "-1", "20.5", "21", "abc", "nan", "inf", "1e9"])
def test_a_wait_out_of_bounds_is_400(api: Api, wait: str) -> None:
    job_id = api.submit(cat_jpeg())

    resp = api.get(f"/jobs/{job_id}", query={"wait": wait})

    assert (resp.status, resp.error_code) == (400, "invalid_wait")


def test_prefer_wait_answers_200_with_the_finished_job(api: Api, stack: Stack) -> None:
    pause = ClassifyingPause(stack)
    waiting_jobs(stack, pause)

    resp = api.post_image(COFFEE.read_bytes(), "image/png", headers={"Prefer": "wait=5"})

    assert resp.status == 200
    assert resp.headers["Preference-Applied"] == "wait=5"
    assert resp.json["status"] == "SUCCEEDED"
    assert resp.headers["Location"] == f"/jobs/{resp.json['job_id']}"
    assert resp.json["predictions"][0]["label"] == "espresso"


def test_prefer_wait_answers_the_usual_202_when_the_job_is_not_done_in_time(
    api: Api, stack: Stack
) -> None:
    pause = ClassifyingPause(stack, classify=False)
    waiting_jobs(stack, pause)

    resp = api.post_image(cat_jpeg(), headers={"Prefer": "respond-async, wait=2"})

    assert resp.status == 202
    assert "Preference-Applied" not in resp.headers
    assert resp.json["status"] == "PENDING"


@pytest.mark.parametrize("prefer", ["wait=0", "wait=soon", "handling=lenient"])
def test_a_prefer_header_without_a_usable_wait_is_ignored(
    api: Api, stack: Stack, prefer: str
) -> None:
    pause = ClassifyingPause(stack)
    waiting_jobs(stack, pause)

    resp = api.post_image(cat_jpeg(), headers={"Prefer": prefer})

    assert resp.status == 202
    assert pause.sleeps == 0


def test_a_waiting_batch_answers_when_every_job_is_finished(api: Api, stack: Stack) -> None:
    body, ctype = multipart(
        [("images", "a.jpg", cat_jpeg()), ("images", "b.png", COFFEE.read_bytes())]
    )
    batch_id = api.post("/batches", body=body, headers={"content-type": ctype}).json["batch_id"]
    pause = ClassifyingPause(stack)
    waiting_jobs(stack, pause)

    batch = api.get(f"/batches/{batch_id}", query={"wait": "10"}).json

    assert batch["status"] == "completed"
    assert batch["progress"]["succeeded"] == 2
    assert pause.sleeps == 1


def test_a_batch_wait_out_of_bounds_is_400(api: Api) -> None:
    body, ctype = multipart([("images", "a.jpg", cat_jpeg())])
    batch_id = api.post("/batches", body=body, headers={"content-type": ctype}).json["batch_id"]

    resp = api.get(f"/batches/{batch_id}", query={"wait": "30"})

    assert (resp.status, resp.error_code) == (400, "invalid_wait")
