"""Reads of the jobs table's two indexes: a tenant's jobs newest first (``OWNER_INDEX``), and
its unfinished ones (``OPEN_INDEX``, sparse: only items carrying ``open_owner``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib import page_tokens
from chalicelib.contract import JobStatus
from chalicelib.dynamo import call, from_item
from chalicelib.job_record import JobRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OWNER_INDEX = "owner-created-index"
# A sparse index of unfinished jobs: ``open_owner`` is the owner while the job is PENDING or
# PROCESSING and absent otherwise, so the index holds exactly a tenant's unfinished jobs (with
# their pixels) and counting them reads nothing else.
OPEN_INDEX = "open-jobs-index"


class JobIndexes:
    """Queries of the jobs table's indexes (``JobRepository`` is one)."""

    _db: DynamoDBClient
    _table: str

    def unfinished(self, owner: str, *, enough: int) -> tuple[int, int]:
        """How many of the owner's jobs are unfinished, and their pixels, from the sparse
        index (eventually consistent: a job made or finished a moment ago may be missed). Stops
        counting past ``enough`` jobs."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": OPEN_INDEX,
            "KeyConditionExpression": "#open = :owner",
            "ProjectionExpression": "pixels",
            "ExpressionAttributeNames": {"#open": "open_owner"},
            "ExpressionAttributeValues": {":owner": {"S": owner}},
        }
        jobs = pixels = 0
        while True:
            resp = call(self._db.query, **request)
            for item in resp.get("Items", []):
                jobs += 1
                pixels += int(item.get("pixels", {}).get("N", "0"))
            last = resp.get("LastEvaluatedKey")
            if not last or jobs > enough:
                return jobs, pixels
            request["ExclusiveStartKey"] = last

    def created_since(self, owner: str, since: str) -> list[dict[str, Any]]:
        """The owner's jobs created from ``since`` on, in brief (``created_since``)."""
        return created_since(self._db, self._table, owner, since)

    def list_for_owner(
        self,
        owner: str,
        *,
        status: JobStatus | None = None,
        limit: int = 20,
        next_token: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """The owner's jobs, newest first, optionally of one status, ``limit`` at a time, and
        the token of the next page (None at the end).

        One query per page: unfiltered, ``Limit`` is the page; filtered, DynamoDB filters the
        index's items (up to 1 MB a query) and the page ends at its ``limit``-th match, whose
        key is the next token. A second query happens only past 1 MB of non-matching jobs.
        """
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": {"S": owner}},
            "ScanIndexForward": False,
        }
        if status is None:
            request["Limit"] = limit
        else:
            request["FilterExpression"] = "#status = :status"
            request["ExpressionAttributeNames"]["#status"] = "status"
            request["ExpressionAttributeValues"][":status"] = {"S": status.value}
        if next_token:
            request["ExclusiveStartKey"] = page_tokens.decode(next_token, owner=owner)
        jobs: list[JobRecord] = []
        while True:
            resp = call(self._db.query, **request)
            jobs.extend(JobRecord.from_item(item) for item in resp.get("Items", []))
            last = resp.get("LastEvaluatedKey")
            if len(jobs) > limit:  # the page ends inside this response: resume after it
                jobs = jobs[:limit]
                last = _key_of(jobs[-1])
            if len(jobs) >= limit or not last:
                return jobs, page_tokens.encode(last) if last else None
            request["ExclusiveStartKey"] = last


def created_since(db: DynamoDBClient, table: str, owner: str, since: str) -> list[dict[str, Any]]:
    """Status, creation time, size and pixels of the owner's jobs created from ``since`` (an ISO
    date or time) on, from the owner index (eventually consistent, for reports)."""
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": OWNER_INDEX,
        "KeyConditionExpression": "#owner = :owner AND created_at >= :since",
        "ProjectionExpression": "#status, created_at, size_bytes, pixels",
        "ExpressionAttributeNames": {"#owner": "owner", "#status": "status"},
        "ExpressionAttributeValues": {":owner": {"S": owner}, ":since": {"S": since}},
    }
    out: list[dict[str, Any]] = []
    while True:
        resp = call(db.query, **request)
        out.extend(from_item(item) for item in resp.get("Items", []))
        if "LastEvaluatedKey" not in resp:
            return out
        request["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _key_of(job: JobRecord) -> dict[str, Any]:
    return {k: {"S": getattr(job, k)} for k in ("job_id", "owner", "created_at")}
