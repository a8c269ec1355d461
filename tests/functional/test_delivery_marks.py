"""A job none of whose events went to a webhook target is read without the deliveries query:
the notify function marks a job on the jobs table before its first delivery record."""

from __future__ import annotations

from tests.functional.conftest import Api, Stack
from tests.functional.test_answers import Calls
from tests.functional.test_ways_in_and_out import classify_all, notify_all
from tests.photos import COFFEE, cat_jpeg


def test_a_finished_job_is_read_without_the_deliveries_query_unless_it_has_a_target(
    api: Api, stack: Stack
) -> None:
    # GIVEN one job with a webhook and one without, both finished and their events fanned out
    hooked = api.submit(cat_jpeg(), webhook_url="https://example.com/mine")
    plain = api.submit(COFFEE.read_bytes(), cache="false")
    classify_all(api, stack)
    notify_all(api, stack)
    repo = stack.services.adapters.repo

    # WHEN each is read, counting the tenants table's queries
    def queries_reading(job_id: str) -> tuple[int, list[str]]:
        with Calls(stack) as calls:
            shown = api.job(job_id)["webhooks"]
        return calls.seen.count("dynamodb.Query"), [w["target"] for w in shown]

    # THEN the job with a target was marked and its delivery is shown, with the one query
    marked = repo.get(hooked)
    assert marked is not None
    assert marked.has_deliveries
    assert queries_reading(hooked) == (1, ["job"])
    # AND the job no event of which went anywhere is shown with none, and no query
    assert queries_reading(plain) == (0, [])
    # AND a record from before the mark (it says nothing either way) is still looked up
    stack.clients.dynamodb.update_item(
        TableName=stack.resources.table,
        Key={"job_id": {"S": plain}},
        UpdateExpression="REMOVE has_deliveries",
    )
    assert queries_reading(plain) == (1, [])
