"""API keys (hashed, revocable, never logged), the one key check, and tenant isolation."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from contextlib import redirect_stdout
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app import PUBLIC_ROUTES, app
from chalicelib.api_keys import CACHE_SECONDS, Authenticator, KeyStore, key_hash
from chalicelib.errors import BadRequest, Forbidden, NotFound
from infra.keys import main as keys_main
from tests.builders import multipart
from tests.functional.conftest import KEY_A, KEY_B, Api, Stack
from tests.photos import cat_jpeg

PUBLIC = {
    ("/health", "GET"),
    ("/ready", "GET"),
    ("/openapi.json", "GET"),
    ("/docs", "GET"),
    ("/", "GET"),
    ("/static/{name}", "GET"),
}
# A URL that exists, for public routes with a parameter.
PUBLIC_EXAMPLES = {"/static/{name}": "/static/app.js"}


@pytest.fixture
def keys(stack: Stack) -> KeyStore:
    """The key store the app authenticates against."""
    return stack.services.keys


def every_route() -> list[tuple[str, str]]:
    return sorted((path, method) for path, methods in app.routes.items() for method in methods)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "0" * 32, path)


@pytest.mark.parametrize(("path", "method"), [r for r in every_route() if r not in PUBLIC])
def test_every_route_but_the_public_ones_needs_a_valid_key(
    api: Api, path: str, method: str
) -> None:
    url = concrete(path)

    missing = api.request(
        method, url, key=None, headers={"content-type": "application/json"}, body=b"{}"
    )
    wrong = api.request(method, url, key="not-a-key-at-all-1234", body=b"{}")

    assert (missing.status, missing.error_code) == (401, "missing_api_key")
    assert (wrong.status, wrong.error_code) == (403, "invalid_api_key")


def test_the_public_routes_are_exactly_these() -> None:
    assert PUBLIC_ROUTES == PUBLIC


@pytest.mark.parametrize(("path", "method"), sorted(PUBLIC))
def test_the_public_routes_need_no_key(api: Api, path: str, method: str) -> None:
    url = PUBLIC_EXAMPLES.get(path, path)

    resp = api.request(method, url, key=None)

    assert resp.status == 200, url


def test_created_keys_authenticate_and_are_stored_only_as_hashes(
    api: Api, stack: Stack, keys: KeyStore
) -> None:
    issued = keys.create("carol")
    key = issued["key"]

    resp = api.post_image(cat_jpeg(), key=key)

    assert resp.status == 202
    assert keys.list("carol") == [
        {"key_id": issued["key_id"], "tenant": "carol", "created_at": issued["created_at"]}
    ]
    stored = json.dumps(
        stack.clients.dynamodb.scan(TableName=stack.settings.tenants_table)["Items"]
    )
    assert key not in stored
    assert key_hash(key) in stored


def test_keys_never_reach_the_logs(
    api: Api, keys: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    key = keys.create("dave")["key"]
    caplog.set_level(logging.DEBUG)

    for presented in (key, key + "x", KEY_A):
        api.post_image(cat_jpeg(), key=presented)
        api.get("/jobs", key=presented)

    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records  # the logs were really captured
    assert key not in text
    assert KEY_A not in text


def test_a_revoked_key_stops_working_once_its_cache_entry_expires(keys: KeyStore) -> None:
    now = [1000.0]
    auth = Authenticator(keys=keys, configured={}, clock=lambda: now[0])
    issued = keys.create("erin")
    assert auth.authenticate({"x-api-key": issued["key"]}) == "erin"

    keys.revoke("erin", issued["key_id"])

    assert auth.authenticate({"x-api-key": issued["key"]}) == "erin"  # cached, at most briefly
    now[0] += CACHE_SECONDS + 1
    with pytest.raises(Forbidden, match="not valid"):
        auth.authenticate({"x-api-key": issued["key"]})
    assert keys.list("erin") == []
    with pytest.raises(NotFound, match="no key"):
        keys.revoke("erin", issued["key_id"])


def test_seeding_is_idempotent_and_a_key_cannot_change_tenant(keys: KeyStore) -> None:
    keys.seed({"seeded-key-0123456789": "frank"})
    keys.seed({"seeded-key-0123456789": "frank"})

    assert len(keys.list("frank")) == 1
    with pytest.raises(BadRequest, match="another tenant"):
        keys.create("grace", key="seeded-key-0123456789")


def test_the_keys_command_creates_lists_and_revokes(stack: Stack) -> None:
    tenants = stack.services.adapters.tenants

    def run(*argv: str) -> Any:
        out = io.StringIO()
        with redirect_stdout(out):
            assert keys_main(list(argv), tenants) == 0
        return json.loads(out.getvalue())

    created = run("create", "heidi")

    assert created["key"].startswith(f"ik_{created['key_id']}_")
    assert [k["key_id"] for k in run("list", "heidi")] == [created["key_id"]]
    assert run("revoke", "heidi", created["key_id"]) == {"revoked": created["key_id"]}
    assert run("list", "heidi") == []
    assert keys_main(["revoke", "heidi", created["key_id"]], tenants) == 1


def test_nothing_of_one_tenant_is_visible_to_another(api: Api) -> None:
    job_id = api.submit(cat_jpeg(), key=KEY_A)
    body, ctype = multipart([("images", "c.jpg", cat_jpeg())])
    batch = api.post("/batches", key=KEY_A, body=body, headers={"content-type": ctype})
    assert batch.status == 202, batch.body
    hook = api.post("/webhooks", key=KEY_A, json_body={"url": "https://example.com/h"})
    assert hook.status == 201, hook.body

    foreign = [
        api.get(f"/jobs/{job_id}", key=KEY_B),
        api.post(f"/jobs/{job_id}/retry", key=KEY_B),
        api.delete(f"/jobs/{job_id}", key=KEY_B),
        api.get(f"/batches/{batch.json['batch_id']}", key=KEY_B),
        api.delete(f"/webhooks/{hook.json['id']}", key=KEY_B),
    ]

    assert [r.status for r in foreign] == [404] * 5  # never 403: that would confirm it
    assert api.get("/jobs", key=KEY_B).json["jobs"] == []
    assert api.get("/webhooks", key=KEY_B).json["webhooks"] == []
    assert api.get(f"/jobs/{job_id}", key=KEY_A).status == 200
    assert api.get(f"/batches/{batch.json['batch_id']}", key=KEY_A).status == 200
    assert [w["id"] for w in api.get("/webhooks", key=KEY_A).json["webhooks"]] == [hook.json["id"]]


def test_records_expire_and_image_urls_are_short_lived(api: Api, stack: Stack) -> None:
    job_id = api.submit(cat_jpeg())

    item = stack.clients.dynamodb.get_item(
        TableName=stack.settings.table, Key={"job_id": {"S": job_id}}
    )["Item"]
    days = (int(item["expires_at"]["N"]) - time.time()) / 86400
    assert days == pytest.approx(stack.settings.retention_days, abs=0.01)
    for table in (stack.settings.table, stack.settings.tenants_table):
        ttl = stack.clients.dynamodb.describe_time_to_live(TableName=table)
        assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"

    url = api.job(job_id)["image_url"]

    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == [str(stack.settings.image_url_ttl_s)]
    assert "X-Amz-Signature" in query
    public = stack.clients.s3.get_public_access_block(Bucket=stack.settings.bucket)
    assert all(public["PublicAccessBlockConfiguration"].values())


def test_each_tenants_jobs_are_their_own_group_in_the_fair_jobs_queue(
    api: Api, stack: Stack
) -> None:
    # A standard queue is fair across MessageGroupIds: one tenant's burst of huge images must
    # not hold back another tenant's photo (SQS serves the quieter group first).
    jobs = {api.submit(cat_jpeg(), key=KEY_A): "a", api.submit(cat_jpeg(), key=KEY_B): "b"}

    sqs = stack.clients.sqs
    got = sqs.receive_message(
        QueueUrl=stack.resources.jobs_queue_url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["MessageGroupId"],
    )["Messages"]

    groups = {json.loads(m["Body"])["job_id"]: m["Attributes"]["MessageGroupId"] for m in got}
    assert groups == jobs
