"""Each function's role grants what its code calls, and nothing more.

Every function's use cases run here under moto, as the deployment routes requests and events to
them, with every AWS call botocore prepares recorded for the function that made it
(``tests/iam_calls.py``). The packaged template's roles (``make package``) must grant each call,
and each grant must be needed by a call or by one of the few documented permissions that are not
calls. A grant added to a policy without code that calls it fails here; so does code that calls
something its role does not allow, which AWS would refuse.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.handlers import BUILTIN_HANDLERS
from chalice.test import Client

from chalicelib.ingest import Ingester
from chalicelib.rate_limits import BUCKET_SK
from chalicelib.webhook_http import DeliveryResult
from tests.functional.conftest import Answer, Api, Stack
from tests.functional.test_reliability import DownQueue
from tests.functional.test_ways_in_and_out import (
    NOTHING_FAILED,
    post_batch,
    s3_notifications,
    subscribe,
    upload,
)
from tests.iam_calls import (
    API_FUNCTION,
    STATUS_FUNCTION,
    Names,
    Need,
    Observer,
    compare,
    function_of_request,
    functions,
    grants,
    implicit_needs,
    needs,
    role_of,
)
from tests.photos import cat_jpeg
from tests.sam_template import load_sam


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_sam()


@pytest.fixture
def observer() -> Iterator[Observer]:
    """Every botocore client made from now on reports the calls it prepares (moto's own stubber
    hooks in the same way)."""
    seen = Observer()
    entry = ("before-parameter-build", seen)
    BUILTIN_HANDLERS.append(entry)
    try:
        yield seen
    finally:
        BUILTIN_HANDLERS.remove(entry)


class DeployedApi(Api):
    """The app, with each request and event charged to the function that serves it deployed."""

    def __init__(self, client: Client, stack: Stack, observer: Observer, sam: dict[str, Any]):
        super().__init__(client, stack)
        self._observer = observer
        self._handlers = {
            props["Handler"].removeprefix("app."): name
            for name, props in functions(sam).items()
            if props["Handler"].startswith("app.") and name != API_FUNCTION
        }

    def request(self, method: str, path: str, **options: Any) -> Answer:
        with self._observer.acting_as(function_of_request(method, path)):
            return super().request(method, path, **options)

    def invoke(self, handler: str, event: dict[str, Any]) -> Any:
        with self._observer.acting_as(self._handlers[handler]):
            return super().invoke(handler, event)


@pytest.fixture
def deployed(observer: Observer, stack: Stack, sam: dict[str, Any]) -> Iterator[DeployedApi]:
    from app import app

    with Client(app) as client:
        yield DeployedApi(client, stack, observer, sam)


def drain(api: Api, stack: Stack, handler: str, queue_url: str) -> None:
    while (event := stack.receive(queue_url))["Records"]:
        assert api.invoke(handler, event) == NOTHING_FAILED


def run_every_function(api: DeployedApi, stack: Stack) -> None:
    """Every use case of every function, each path that reaches AWS differently."""
    s3, bucket, urls = stack.clients.s3, stack.settings.bucket, stack.resources
    # The API function: keys, subscriptions, the account, every way a job is made and read.
    # Keys issued by infra.keys, looked up in the table (one each: a container caches a key).
    stored, stored_too = (stack.services.keys.create("a")["key"] for _ in range(2))
    assert api.get("/health").status == 200
    assert api.get("/jobs", key=stored).status == 200
    assert api.get("/ready").status == 200
    sub = subscribe(api, {"url": "https://hooks.example.org/all"}).json
    assert api.post(f"/webhooks/{sub['id']}/rotate-secret").status == 200
    assert api.get("/webhooks").status == api.get("/account").status == 200
    assert api.get("/account/usage").status == 200
    gone = subscribe(api, {"url": "https://example.com/gone", "events": ["job.failed"]}).json
    once = {"Idempotency-Key": "order-1"}
    hooked = api.submit(cat_jpeg(), webhook_url="https://example.com/mine", headers=once)
    assert api.post_image(cat_jpeg(), headers=once).json["job_id"] == hooked
    batch = post_batch(api, [("cat.jpg", cat_jpeg()), ("cut.jpg", cat_jpeg()[:3000])]).json
    assert api.get(batch["status_url"]).status == 200
    assert api.get("/jobs", query={"status": "PENDING"}).status == 200
    # Ingest: an upload, a bulk drop, something that is not an image, an object gone already.
    uploaded = upload(api, cat_jpeg())["job_id"]
    s3.put_object(Bucket=bucket, Key="incoming/a/holiday/cat.jpg", Body=cat_jpeg())
    upload(api, b"%PDF-1.4 not an image", "image/png")
    vanished = upload(api, cat_jpeg())
    s3.delete_object(Bucket=bucket, Key=vanished["upload"]["fields"]["key"])
    assert api.invoke("ingest", s3_notifications(stack)) == NOTHING_FAILED
    # ... and while the jobs queue refuses: the job is kept FAILED (enqueue_failed).
    a = stack.services.adapters
    ingest = stack.services.ingest
    stack.install(
        ingest=Ingester(
            settings=stack.settings,
            repo=a.repo,
            images=a.images,
            queue=DownQueue(a.jobs_queue),
            publisher=a.publisher,
            cache=stack.services.cache,
        )
    )
    s3.put_object(Bucket=bucket, Key="incoming/a/later.jpg", Body=cat_jpeg())
    assert api.invoke("ingest", s3_notifications(stack)) != NOTHING_FAILED
    stack.install(ingest=ingest)
    # The classifier: successes, an undecodable image, an image deleted under its job.
    missing = api.submit(cat_jpeg(quality=80))
    s3.delete_object(Bucket=bucket, Key=f"images/a/{missing}")
    drain(api, stack, "classify", urls.jobs_queue_url)
    # A job the classifier never finished: its dead letter fails it.
    assert api.post_image(cat_jpeg()).status == 200  # a repeat, answered from the cache
    stuck = api.submit(cat_jpeg(quality=70), headers={"Prefer": "wait=0.1"})
    api.invoke("dead_letters", stack.receive_jobs_event())
    assert api.job(stuck)["status"] == "FAILED"
    assert api.post(f"/jobs/{stuck}/retry").status == 202
    drain(api, stack, "classify", urls.jobs_queue_url)
    # The fan-out and the deliveries: one receiver refuses once, a subscription is deleted.
    assert api.delete(f"/webhooks/{gone['id']}").status == 204
    stack.sender.answers = [DeliveryResult(503, "busy"), DeliveryResult(410, "gone")]
    drain(api, stack, "notify", urls.notify_queue_url)
    drain(api, stack, "deliver_webhooks", urls.webhooks_queue_url)
    # The delivery log, a redelivery, a subscription disabled by a 410 and enabled again.
    assert any(not hook["enabled"] for hook in api.get("/webhooks").json["webhooks"])
    for hook in api.get("/webhooks").json["webhooks"]:
        answer = api.request("PATCH", f"/webhooks/{hook['id']}", json_body={"enabled": True})
        assert answer.status == 200, answer.body
    log = api.get(f"/webhooks/{sub['id']}/deliveries").json["deliveries"]
    path = f"/webhooks/{sub['id']}/deliveries/{log[0]['id']}/redeliver"
    assert api.post(path).status == 202
    drain(api, stack, "deliver_webhooks", urls.webhooks_queue_url)
    # The status function reads jobs of every source; the API function deletes them.
    for job in api.get("/jobs", query={"limit": "100"}).json["jobs"]:
        assert api.job(job["job_id"], key=stored_too)["job_id"] == job["job_id"]
    for job_id in (hooked, uploaded, _bulk_job(api)):
        assert api.delete(f"/jobs/{job_id}").status == 204


def _bulk_job(api: Api) -> str:
    jobs = api.get("/jobs", query={"limit": "100"}).json["jobs"]
    return str(
        next(j["job_id"] for j in jobs if j["source"] == "s3" and j["status"] == "SUCCEEDED")
    )


def test_each_function_is_granted_exactly_what_its_code_calls(
    deployed: DeployedApi, stack: Stack, observer: Observer, sam: dict[str, Any]
) -> None:
    run_every_function(deployed, stack)

    observed = needs(observer, Names.of(stack.settings, sam))
    report = {}
    for function in functions(sam):
        needed = observed.get(function, set()) | set(implicit_needs(sam, function))
        missing, unused = compare(grants(sam, function), needed)
        if missing or unused:
            report[function] = {
                "called but not granted": [str(n) for n in missing],
                "granted but never called": [str(n) for n in unused],
            }
    assert set(observed) == set(functions(sam)), "every function ran"
    assert report == {}, json.dumps(report, indent=2)
    # The status function's one write is its tenants' rate buckets, and its role says so with
    # a condition on the attributes (the comparison above reads actions and resources only).
    writes = [c for c in observer.calls[STATUS_FUNCTION] if c.operation == "UpdateItem"]
    assert writes, "the status function checked a rate limit"
    for write in writes:
        assert write.params["Key"]["sk"] == {"S": BUCKET_SK}, write.params
        assert "ExpressionAttributeNames" not in write.params  # only tat and expires_at
        assert set(re.findall(r"\b[a-z_]+(?= =)", write.params["UpdateExpression"])) <= {
            "tat",
            "expires_at",
        }
    [conditioned] = [
        st
        for p in sam["Resources"][role_of(sam, STATUS_FUNCTION)]["Properties"]["Policies"]
        for st in p["PolicyDocument"]["Statement"]
        if "dynamodb:UpdateItem" in st["Action"]
    ]
    assert conditioned["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "tat", "expires_at"]}
    }


def test_the_comparison_catches_a_grant_nobody_needs_and_a_call_nobody_granted(
    sam: dict[str, Any],
) -> None:
    # GIVEN the webhook function's role given image deletion, and a need it is not granted
    widened = copy.deepcopy(sam)
    role = widened["Resources"][role_of(widened, "DeliverWebhooks")]["Properties"]
    role["Policies"][0]["PolicyDocument"]["Statement"].append(
        {
            "Effect": "Allow",
            "Action": ["s3:DeleteObject"],
            "Resource": {"Fn::Sub": "${ImagesBucket.Arn}/images/*"},
        }
    )
    needed = set(implicit_needs(widened, "DeliverWebhooks")) | {
        Need("dynamodb:GetItem", "TenantsTable"),
        Need("dynamodb:PutItem", "TenantsTable"),
        Need("dynamodb:UpdateItem", "TenantsTable"),
        Need("sqs:SendMessage", "WebhooksQueue"),
        Need("dynamodb:DeleteItem", "TenantsTable"),
    }

    # WHEN its grants are compared with what it needs
    missing, unused = compare(grants(widened, "DeliverWebhooks"), needed)

    # THEN both are reported
    assert missing == [Need("dynamodb:DeleteItem", "TenantsTable")]
    assert unused == [Need("s3:DeleteObject", "ImagesBucket", "/images/*")]


def test_no_two_functions_share_a_role_and_none_has_a_wildcard(sam: dict[str, Any]) -> None:
    roles = {name: role_of(sam, name) for name in functions(sam)}
    assert len(roles) == 7
    assert len(set(roles.values())) == len(roles), roles
    for function in roles:
        for grant in grants(sam, function):
            assert "*" not in grant.action, (function, grant)
            assert grant.resource != "*", (function, grant)


def test_the_function_that_calls_customer_urls_cannot_touch_images(sam: dict[str, Any]) -> None:
    # It runs the only code that talks to addresses our customers choose.
    touched = {g.resource for g in grants(sam, "DeliverWebhooks")}
    assert touched == {"logs", "WebhooksQueue", "TenantsTable"}
