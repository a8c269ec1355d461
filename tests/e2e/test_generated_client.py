"""A Python client generated from the running service's ``/openapi.json`` drives a whole journey.

``openapi-python-client`` (a dev dependency) generates the client under
``build/generated-client/``, unpatched: no edits to generated code, no custom templates, no
content-type overrides. The journey then uses only the generated functions and models: submit
(raw, multipart, base64), poll to SUCCEEDED and to FAILED, retry, list with paging, batch,
presigned upload, webhooks, account, delete, health. If the generated client cannot do
something, the document is wrong, not the client.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.photos import (
    CAT_CLASSES,
    COFFEE,
    ESPRESSO,
    ROCKET,
    ROCKET_CLASSES,
    cat_jpeg,
)
from tests.runtime import ROOT, Runtime, start_runtime

pytestmark = pytest.mark.e2e
KEY = "generated-client-tenant-key-0123456789"
OUT = ROOT / "build" / "generated-client"
# The one warning the generator gives, documented: it knows only application/octet-stream for
# a raw binary body, and POST /jobs documents image/* beside it.
KNOWN_WARNINGS = ["Unsupported content type image/*"]
TIMEOUT_S = 120.0
OPERATIONS = (
    "cancel_job",
    "create_upload",
    "create_webhook",
    "delete_job",
    "delete_webhook",
    "export_jobs",
    "get_account",
    "get_batch",
    "get_job",
    "health",
    "list_jobs",
    "list_webhooks",
    "retry_job",
    "submit_batch",
    "submit_job",
)


@dataclass
class Generated:
    """The generated package, imported dynamically (mypy cannot see it): its operations,
    models and types, and the generator's output."""

    name: str
    output: str
    ops: dict[str, Any]
    models: Any
    types: Any
    client: Any


@dataclass
class Journey:
    """The generated client talking to the runtime, and one log line per step."""

    gen: Generated
    client: Any
    log: list[str] = field(default_factory=list)

    def call(self, op: str, *args: Any, expect: tuple[int, str], **kwargs: Any) -> Any:
        """``api.default.<op>.sync_detailed``; its status and parsed model as ``expect``ed."""
        response = self.gen.ops[op].sync_detailed(*args, client=self.client, **kwargs)
        status, model = expect
        assert response.status_code == status, (op, response.status_code, response.content)
        parsed = response.parsed
        if model == "None":  # a 204: the document says no content, so nothing to parse
            assert parsed is None, (op, parsed)
        else:
            assert isinstance(parsed, getattr(self.gen.models, model)), (op, parsed)
        return parsed

    def note(self, line: str) -> None:
        """One line of the journey log."""
        self.log.append(line)

    def poll(
        self, job_id: str, *, until: Callable[[Any], bool], seen: list[str] | None = None
    ) -> Any:
        """``get_job`` until ``until(job)``; the statuses seen go into ``seen`` (in order, once
        each). A PENDING job must parse with ``model``, ``predictions`` and ``error`` as None."""
        deadline = time.monotonic() + TIMEOUT_S
        seen = [] if seen is None else seen
        job: Any = None
        while time.monotonic() < deadline:
            job = self.call("get_job", job_id, expect=(200, "JobDetail"))
            status = str(job.status)
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == "PENDING":
                assert (job.model, job.predictions, job.error) == (None, None, None), job
            if until(job):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not get there in {TIMEOUT_S}s: {job}")

    def poll_terminal(self, job_id: str, seen: list[str] | None = None) -> Any:
        """``get_job`` until SUCCEEDED or FAILED."""
        return self.poll(
            job_id, until=lambda job: str(job.status) in ("SUCCEEDED", "FAILED"), seen=seen
        )


def generate(runtime: Runtime) -> Generated:
    """Fetch the served document, run the generator on it as a user would, import the result."""
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    # fetched as the generator's own --url would: the document is its input, not an answer
    # to check against itself
    served = requests.get(f"{runtime.url}/openapi.json", timeout=30)
    assert served.status_code == 200, served.text
    (OUT / "openapi.json").write_bytes(served.content)
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            *("generate", "--path", "openapi.json", "--meta", "none"),
        ],
        cwd=OUT,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    packages = [p.parent.name for p in OUT.glob("*/client.py")]
    assert len(packages) == 1, (packages, output)  # named after the document's title
    sys.path.insert(0, str(OUT))
    name = packages[0]
    return Generated(
        name=name,
        output=output,
        ops={op: importlib.import_module(f"{name}.api.default.{op}") for op in OPERATIONS},
        models=importlib.import_module(f"{name}.models"),
        types=importlib.import_module(f"{name}.types"),
        client=importlib.import_module(f"{name}.client"),
    )


def generator_warnings(output: str) -> list[str]:
    """The reason line under each WARNING or ERROR block of the generator's output."""
    lines = [line.strip() for line in output.splitlines()]
    reasons = []
    for i, line in enumerate(lines):
        if re.match(r"(WARNING|ERROR)\b", line):
            reasons.append(next((rest for rest in lines[i + 1 :] if rest), ""))
    return reasons


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    rt = start_runtime(KEY)
    yield rt
    rt.stop()


@pytest.fixture(scope="module")
def generated(runtime: Runtime) -> Generated:
    return generate(runtime)


def free_port() -> int:
    """A port nobody listens on (the webhook target is never called in this journey)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def top(job: Any) -> int:
    """The class id of the job's top prediction."""
    assert job.predictions, job
    return int(job.predictions[0].class_id)


def test_the_generator_accepts_the_served_document_with_only_the_known_warning(
    generated: Generated, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the client generated from the served /openapi.json (the fixture ran the generator)
    with capsys.disabled():
        print(f"\nopenapi-python-client → {generated.name}:\n{generated.output}")

    # THEN it was generated, with no warning but the documented one, and no error
    assert "Error(s) encountered" not in generated.output
    assert generator_warnings(generated.output) == KNOWN_WARNINGS


def test_a_generated_client_drives_the_whole_journey(
    runtime: Runtime, generated: Generated, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the generated client, configured (not patched) for the x-api-key header
    journey = Journey(
        gen=generated,
        client=generated.client.AuthenticatedClient(
            base_url=runtime.url,
            token=KEY,
            prefix="",
            auth_header_name="x-api-key",
            raise_on_unexpected_status=True,
        ),
    )
    try:
        # WHEN it goes through every operation, THEN each answer parses as its model
        check_health(journey, runtime)
        ids = submit_and_classify(journey)
        ids["bad"] = fail_and_retry(journey)
        ids.update(batch(journey))
        ids["upload"] = upload(journey)
        list_pages(journey, ids)
        repeat_cancel_export(journey, ids)
        webhooks(journey)
        account(journey)
        delete(journey, ids["raw"])
    finally:
        with capsys.disabled():
            print("\njourney through the generated client:")
            for line in journey.log:
                print(f"  {line}")


def check_health(journey: Journey, runtime: Runtime) -> None:
    """``health`` needs no key: the generated plain ``Client``."""
    plain = journey.gen.client.Client(base_url=runtime.url, raise_on_unexpected_status=True)
    health = journey.gen.ops["health"].sync_detailed(client=plain)
    assert health.status_code == 200
    assert isinstance(health.parsed, journey.gen.models.Health)
    assert health.parsed.status == "ok"
    journey.note(f"health 200 Health status=ok model={health.parsed.model.name}")


def submit_and_classify(journey: Journey) -> dict[str, str]:
    """Raw, multipart and base64 submissions, each 202 PENDING, polled to SUCCEEDED."""
    m, t = journey.gen.models, journey.gen.types
    bodies = {
        "raw": (t.File(payload=io.BytesIO(cat_jpeg())), CAT_CLASSES),
        "multipart": (
            m.SubmitForm(
                image=t.File(
                    payload=io.BytesIO(COFFEE.read_bytes()),
                    file_name=COFFEE.name,
                    mime_type="image/png",
                )
            ),
            {ESPRESSO},
        ),
        "base64": (
            m.SubmitJson(image_base64=base64.b64encode(ROCKET.read_bytes()).decode()),
            ROCKET_CLASSES,
        ),
    }
    ids: dict[str, str] = {}
    seen: dict[str, list[str]] = {}
    for way, (body, _) in bodies.items():
        accepted = journey.call("submit_job", body=body, expect=(202, "Accepted"))
        assert accepted.status == m.JobStatus.PENDING
        ids[way], seen[way] = accepted.job_id, []
        journey.poll(accepted.job_id, until=lambda job: True, seen=seen[way])  # one look at once
        journey.note(f"submit_job ({way}) 202 Accepted {accepted.job_id} PENDING")
    for way, (_, classes) in bodies.items():
        job = journey.poll_terminal(ids[way], seen[way])
        assert job.status == m.JobStatus.SUCCEEDED, job
        assert top(job) in classes, (way, job.predictions)
        assert isinstance(job.model, m.Model)
        journey.note(
            f"get_job ({way}) 200 JobDetail {' → '.join(seen[way])} "
            f"(PROCESSING {'seen' if 'PROCESSING' in seen[way] else 'not seen'}) "
            f"content_type={job.content_type} top={job.predictions[0].label!r}"
        )
    # A job polled while PENDING parses with model, predictions and error null (with a batching
    # window of 0 it is often already done); the FAILED job below parses model and predictions
    # null every time, which is the case that crashed generated clients.
    return ids


def fail_and_retry(journey: Journey) -> str:
    """A truncated JPEG fails as undecodable; retried, it fails again one attempt later."""
    m, t = journey.gen.models, journey.gen.types
    accepted = journey.call(
        "submit_job", body=t.File(payload=io.BytesIO(cat_jpeg()[:4000])), expect=(202, "Accepted")
    )
    job_id = str(accepted.job_id)
    seen: list[str] = []
    failed = journey.poll_terminal(job_id, seen)
    assert failed.status == m.JobStatus.FAILED
    assert isinstance(failed.error, m.JobError)
    assert failed.error.code == "undecodable_image"
    assert failed.predictions is None
    assert failed.model is None  # "model": null, parsed (this crashed generated clients before)
    journey.note(
        f"submit_job (truncated JPEG) 202; get_job {' → '.join(seen)} "
        f"error={failed.error.code} attempts={failed.attempts}"
    )

    retried = journey.call("retry_job", job_id, expect=(202, "Accepted"))
    assert retried.status == m.JobStatus.PENDING
    seen = []
    again = journey.poll(
        job_id,
        until=lambda job: job.status == m.JobStatus.FAILED and job.attempts > failed.attempts,
        seen=seen,
    )
    assert again.error.code == "undecodable_image"
    assert again.updated_at > failed.updated_at
    journey.note(
        f"retry_job 202 Accepted PENDING; get_job {' → '.join(seen)} "
        f"attempts {failed.attempts} → {again.attempts}"
    )
    return job_id


def batch(journey: Journey) -> dict[str, str]:
    """Two photos and one non-image: two jobs, one rejected; the batch completes."""
    m, t = journey.gen.models, journey.gen.types
    form = m.BatchForm(
        images=[
            t.File(payload=io.BytesIO(cat_jpeg()), file_name="cat.jpg", mime_type="image/jpeg"),
            t.File(
                payload=io.BytesIO(COFFEE.read_bytes()),
                file_name="coffee.png",
                mime_type="image/png",
            ),
            t.File(
                payload=io.BytesIO(b"not an image"), file_name="notes.txt", mime_type="image/png"
            ),
        ]
    )
    accepted = journey.call("submit_batch", body=form, expect=(202, "BatchAccepted"))
    assert len(accepted.job_ids) == 2
    assert [(r.index, r.filename) for r in accepted.rejected] == [(2, "notes.txt")]
    journey.note(
        f"submit_batch 202 BatchAccepted {accepted.batch_id} jobs=2 "
        f"rejected=[2 notes.txt: {accepted.rejected[0].error.code}]"
    )

    deadline = time.monotonic() + TIMEOUT_S
    statuses: list[str] = []
    while True:
        status = journey.call("get_batch", accepted.batch_id, expect=(200, "Batch"))
        if not statuses or statuses[-1] != str(status.status):
            statuses.append(str(status.status))
        if status.status == m.BatchStatus.COMPLETED:
            break
        assert time.monotonic() < deadline, f"the batch did not complete: {status}"
        time.sleep(0.2)
    assert status.progress.succeeded == 2
    assert sorted(job.job_id for job in status.jobs) == sorted(accepted.job_ids)
    classes = {job.filename: top(job) for job in status.jobs}
    assert classes["cat.jpg"] in CAT_CLASSES
    assert classes["coffee.png"] == ESPRESSO
    journey.note(f"get_batch 200 Batch {' → '.join(statuses)} succeeded=2")
    return {"batch_cat": accepted.job_ids[0], "batch_coffee": accepted.job_ids[1]}


def upload(journey: Journey) -> str:
    """A presigned upload: the form from ``create_upload``, the POST to S3 with ``requests``."""
    m = journey.gen.models
    request = m.UploadRequest(content_type=m.UploadRequestContentType.IMAGEJPEG, filename="c.jpg")
    created = journey.call("create_upload", body=request, expect=(201, "Upload"))
    form = created.upload
    assert isinstance(form, m.UploadForm)
    sent = requests.post(
        form.url,
        data=form.fields.to_dict(),
        files={"file": ("c.jpg", cat_jpeg(), "image/jpeg")},
        timeout=30,
    )
    assert sent.status_code in (200, 201, 204), sent.text

    # the job exists once S3 says the object arrived: until then get_job is a 404
    deadline = time.monotonic() + TIMEOUT_S
    seen: list[str] = []
    while True:
        response = journey.gen.ops["get_job"].sync_detailed(created.job_id, client=journey.client)
        if response.status_code == 200:
            break
        assert response.status_code == 404, response.content
        assert isinstance(response.parsed, m.Error)
        assert time.monotonic() < deadline, "the uploaded image never became a job"
        time.sleep(0.2)
    job = journey.poll_terminal(created.job_id, seen)
    assert job.status == m.JobStatus.SUCCEEDED
    assert str(job.source) == "upload"
    assert top(job) in CAT_CLASSES
    journey.note(
        f"create_upload 201 Upload {created.job_id}; S3 POST {sent.status_code}; "
        f"get_job {' → '.join(seen)} source=upload top={job.predictions[0].label!r}"
    )
    return str(created.job_id)


def repeat_cancel_export(journey: Journey, ids: dict[str, str]) -> None:
    """A repeat answered from the cache (200), a finished job that cannot be canceled (409),
    and the jobs as JSON Lines (text the client hands back as it is)."""
    t = journey.gen.types
    repeat = journey.call(
        "submit_job", body=t.File(payload=io.BytesIO(cat_jpeg())), expect=(200, "JobDetail")
    )
    assert str(repeat.status) == "SUCCEEDED"
    assert repeat.cached_from
    assert any(c.name == "cat" and c.probability >= 0.8 for c in repeat.categories)
    refused = journey.call("cancel_job", repeat.job_id, expect=(409, "Error"))
    assert refused.error.code == "not_cancelable"
    export = journey.gen.ops["export_jobs"].sync_detailed(
        client=journey.client, format_=journey.gen.models.ExportJobsFormat.JSONL
    )
    assert export.status_code == 200
    rows = [json.loads(line) for line in export.parsed.splitlines()]
    assert {r["job_id"] for r in rows} >= {ids["raw"], repeat.job_id}
    journey.note(
        f"submit_job (repeat) 200 JobDetail cached_from={repeat.cached_from}; cancel_job 409 "
        f"not_cancelable; export_jobs 200 {export.headers['content-type']} rows={len(rows)}"
    )
    journey.call("delete_job", repeat.job_id, expect=(204, "None"))


def pages(journey: Journey, **query: Any) -> tuple[list[Any], int]:
    """Every job of the caller, two to a page, following ``next_token`` to the end; and how
    many pages that took."""
    jobs: list[Any] = []
    token = journey.gen.types.UNSET
    count = 0
    while True:
        page = journey.call(
            "list_jobs", limit=2, next_token=token, expect=(200, "JobPage"), **query
        )
        count += 1
        assert len(page.jobs) <= 2
        jobs.extend(page.jobs)
        if page.next_token is None:
            return jobs, count
        token = page.next_token


def list_pages(journey: Journey, ids: dict[str, str]) -> None:
    """Paging sees every job exactly once; the status filter only SUCCEEDED ones."""
    m = journey.gen.models
    every, count = pages(journey)
    assert sorted(job.job_id for job in every) == sorted(ids.values())
    assert all(isinstance(job, m.Job) for job in every)
    succeeded, _ = pages(journey, status=m.JobStatus.SUCCEEDED)
    assert sorted(job.job_id for job in succeeded) == sorted(
        job_id for way, job_id in ids.items() if way != "bad"
    )
    assert {job.status for job in succeeded} == {m.JobStatus.SUCCEEDED}
    journey.note(
        f"list_jobs 200 JobPage limit=2: {len(every)} jobs, each once, over {count} pages; "
        f"status=SUCCEEDED: {len(succeeded)}"
    )


def webhooks(journey: Journey) -> None:
    """Subscribe, list (no secret), delete, delete again (404)."""
    m = journey.gen.models
    url = f"http://127.0.0.1:{free_port()}/hook"
    created = journey.call(
        "create_webhook", body=m.WebhookRequest(url=url), expect=(201, "NewWebhook")
    )
    assert created.secret.startswith("whsec_")
    assert created.url == url
    listed = journey.call("list_webhooks", expect=(200, "WebhookList"))
    mine = [hook for hook in listed.webhooks if hook.id == created.id]
    assert len(mine) == 1
    assert isinstance(mine[0], m.Webhook)
    assert "secret" not in mine[0].to_dict()
    journey.call("delete_webhook", created.id, expect=(204, "None"))
    gone = journey.call("delete_webhook", created.id, expect=(404, "Error"))
    journey.note(
        f"create_webhook 201 NewWebhook {created.id} secret=whsec_…; list_webhooks 200 "
        f"WebhookList (no secret); delete_webhook 204, again 404 {gone.error.code}"
    )


def account(journey: Journey) -> None:
    """The tenant and its signing secret."""
    acct = journey.call("get_account", expect=(200, "Account"))
    assert acct.tenant == "tenant"
    assert acct.webhook_signing_secret
    journey.note(f"get_account 200 Account tenant={acct.tenant} secret=…")


def delete(journey: Journey, job_id: str) -> None:
    """A deleted job is gone: 404 job_not_found."""
    journey.call("delete_job", job_id, expect=(204, "None"))
    gone = journey.call("get_job", job_id, expect=(404, "Error"))
    assert gone.error.code == "job_not_found"
    journey.note(f"delete_job 204; get_job 404 Error {gone.error.code}")
