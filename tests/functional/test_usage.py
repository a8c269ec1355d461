"""``GET /account/usage``: a tenant's jobs, images, bytes and webhook deliveries per day, read
back from the records the use cases wrote (moto's DynamoDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.webhook_http import DeliveryResult
from tests.functional.conftest import KEY_B, Api, Stack
from tests.functional.test_jobs_repository import new_job, repo_of
from tests.functional.test_ways_in_and_out import (
    classify_all,
    deliver_all,
    notify_all,
    subscribe,
)
from tests.photos import cat_jpeg


def test_a_days_jobs_images_bytes_and_deliveries_add_up(api: Api, stack: Stack) -> None:
    # GIVEN a subscription, two photos and a truncated one, classified and announced
    subscribe(api, {"url": "https://hooks.example.org/usage"})
    photo, broken = cat_jpeg(), cat_jpeg()[:3000]
    for data in (photo, photo, broken):
        api.submit(data)
    classify_all(api, stack)
    stack.sender.answers = [DeliveryResult(503, "busy")]  # one event needs a second attempt
    notify_all(api, stack)
    deliver_all(api, stack)
    deliver_all(api, stack)
    # AND a job of ten days ago
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    new_job(repo_of(stack), created_at=ten_days_ago)

    # WHEN the tenant asks for its last three days
    usage = api.get("/account/usage", query={"days": "3"}).json

    # THEN every day is there, oldest first, and today holds it all
    today = datetime.now(UTC).date()
    assert [d["date"] for d in usage["daily"]] == [
        (today - timedelta(days=n)).isoformat() for n in (2, 1, 0)
    ]
    day = usage["daily"][-1]
    assert day["jobs"] == {
        "submitted": 3,
        "succeeded": 2,
        "failed": 1,
        "canceled": 0,
        "unfinished": 0,
    }
    assert day["images"] == 3
    assert day["bytes"] == 2 * len(photo) + len(broken)
    assert day["pixels"] > 0
    assert day["webhook_deliveries"] == {
        "events": 3,
        "delivered": 3,
        "failed": 0,
        "pending": 0,
        "attempts": 4,
    }
    assert usage["total"] == {k: v for k, v in day.items() if k != "date"}
    assert usage["daily"][0]["images"] == 0
    # AND the job of ten days ago counts only in a longer period
    assert api.get("/account/usage", query={"days": "11"}).json["total"]["images"] == 4
    # AND another tenant used nothing
    other = api.get("/account/usage", key=KEY_B).json
    assert other["tenant"] == "b"
    assert len(other["daily"]) == 7
    assert other["total"]["images"] == 0


@pytest.mark.parametrize("days", ["0", "31", "x", "1.5"])
def test_days_out_of_range_is_a_400(api: Api, days: str) -> None:
    answer = api.get("/account/usage", query={"days": days})
    assert (answer.status, answer.error_code) == (400, "invalid_days")
