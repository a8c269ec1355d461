"""The job record and its DynamoDB store: every state change is one conditional write.

A refused write hands back the record as it stood (``ReturnValuesOnConditionCheckFailure``), so
the caller learns why without reading it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.contract import Category, JobStatus, Model, Prediction
from chalicelib.dynamo import call, conditional, to_item
from chalicelib.job_indexes import OPEN_INDEX, OWNER_INDEX, JobIndexes
from chalicelib.job_record import (
    JobRecord,
    idempotent_job_id,
    is_job_id,
    new_job_id,
    utc_now,
)

# What other modules import from here: the record and its helpers live in job_record, the
# index queries in job_indexes.
__all__ = [
    "OPEN_INDEX",
    "OWNER_INDEX",
    "JobRecord",
    "JobRepository",
    "Transition",
    "idempotent_job_id",
    "is_job_id",
    "new_job_id",
    "utc_now",
]

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_OPEN = (JobStatus.PENDING, JobStatus.PROCESSING)


@dataclass(frozen=True)
class Transition:
    """A conditional transition: the record it wrote, or (refused) the record as it stands."""

    job: JobRecord | None
    current: JobRecord | None = None


def _transition(write: Any, *, key: str = "Attributes") -> Transition:
    if write.done:
        attributes = write.response.get(key)
        return Transition(JobRecord.from_item(attributes) if attributes else None)
    return Transition(None, JobRecord.from_item(write.old_item) if write.old_item else None)


class JobRepository(JobIndexes):
    """Job records in DynamoDB."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def create(self, job: JobRecord) -> Transition:
        """Insert a new job; refused (with the existing record) when the id is taken."""
        written = conditional(
            self._db.put_item,
            TableName=self._table,
            Item=job.to_item(),
            ConditionExpression="attribute_not_exists(job_id)",
        )
        return Transition(job) if written.done else _transition(written)

    def get(self, job_id: str) -> JobRecord | None:
        """The job, or None."""
        resp = call(
            self._db.get_item,
            TableName=self._table,
            Key={"job_id": {"S": job_id}},
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return JobRecord.from_item(item) if item else None

    def delete(self, job_id: str) -> None:
        """Remove the record (gone already is fine)."""
        call(self._db.delete_item, TableName=self._table, Key={"job_id": {"S": job_id}})

    def get_many(self, job_ids: list[str]) -> dict[str, JobRecord]:
        """The jobs that exist among ``job_ids`` (BatchGetItem, 100 keys a call)."""
        found: dict[str, JobRecord] = {}
        for start in range(0, len(job_ids), 100):
            keys: list[dict[str, Any]] = [
                {"job_id": {"S": j}} for j in dict.fromkeys(job_ids[start : start + 100])
            ]
            while keys:
                resp = call(
                    self._db.batch_get_item,
                    RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}},
                )
                for item in resp.get("Responses", {}).get(self._table, []):
                    job = JobRecord.from_item(item)
                    found[job.job_id] = job
                keys = list(resp.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", []))
        return found

    def _update(
        self,
        job_id: str,
        *,
        allowed_from: tuple[JobStatus, ...],
        set_values: dict[str, Any],
        increment: str | None = None,
        remove: tuple[str, ...] = (),
        generation: int | None = None,
    ) -> Transition:
        """Apply a transition if the job is in one of ``allowed_from`` (and, when given, still
        in ``generation``)."""
        names = {"#status": "status"}
        values: dict[str, Any] = {}
        sets = []
        for i, (attr, value) in enumerate(set_values.items()):
            names[f"#a{i}"] = attr
            values[f":v{i}"] = value
            sets.append(f"#a{i} = :v{i}")
        if increment:
            names["#n"] = increment
            values[":zero"], values[":one"] = 0, 1
            sets.append("#n = if_not_exists(#n, :zero) + :one")
        allowed = []
        for i, status in enumerate(allowed_from):
            values[f":from{i}"] = status.value
            allowed.append(f":from{i}")
        expression = "SET " + ", ".join(sets)
        condition = f"attribute_exists(job_id) AND #status IN ({', '.join(allowed)})"
        if generation is not None:
            names["#gen"] = "generation"
            values[":gen"] = generation
            condition += f" AND ({_same_generation(generation)})"
        target = set_values.get("status")
        if target is not None and JobStatus(target).terminal:
            remove = (*remove, "open_owner")  # out of the unfinished jobs' index
        elif target == JobStatus.PENDING.value:  # a retry: unfinished again
            names["#open"], names["#owner"] = "open_owner", "owner"
            expression += ", #open = #owner"
        if remove:
            names.update({f"#r{i}": attr for i, attr in enumerate(remove)})
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
        written = conditional(
            self._db.update_item,
            TableName=self._table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
            ReturnValues="ALL_NEW",
        )
        return _transition(written)

    def mark_deliveries(self, job_id: str) -> None:
        """Note on the record that the job's events go to a webhook target (before the first
        delivery record is written), so reads of a job without any skip the deliveries query.
        A deleted job is left deleted."""
        conditional(
            self._db.update_item,
            TableName=self._table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression="SET has_deliveries = :yes",
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )

    def start(self, job_id: str, *, generation: int) -> Transition:
        """PENDING/PROCESSING → PROCESSING in ``generation``, counting the attempt.

        PROCESSING is allowed as a source because an attempt that died mid-way leaves the job
        PROCESSING and SQS hands the same message over again. Refused for a finished job, a
        deleted one, or a message of an earlier generation (the job was retried since).
        """
        return self._update(
            job_id,
            allowed_from=_OPEN,
            set_values={"status": JobStatus.PROCESSING.value, "updated_at": utc_now()},
            increment="attempts",
            generation=generation,
        )

    def succeed(
        self,
        started: JobRecord,
        *,
        predictions: list[Prediction],
        model: Model,
        timings_ms: dict[str, float],
        categories: list[Category] | None = None,
    ) -> JobRecord | None:
        """PROCESSING → SUCCEEDED with the result; None if the job is no longer PROCESSING in
        the same generation (it was canceled, or a dead letter failed it).

        ``started`` is the record ``start`` wrote and DynamoDB returned: the finished record is
        built from it and put whole, on that condition. Nothing else changes a PROCESSING job of
        the same generation, and a put needs no expression and returns nothing.
        """
        done = started.model_copy(
            update={
                "status": JobStatus.SUCCEEDED,
                "updated_at": utc_now(),
                "predictions": predictions,
                "categories": categories,
                "model": model,
                "timings_ms": dict(timings_ms),
                "error": None,
            }
        )
        written = conditional(
            self._db.put_item,
            TableName=self._table,
            Item=done.to_item(),
            ConditionExpression=(
                f"#status = :processing AND ({_same_generation(started.generation)})"
            ),
            ExpressionAttributeNames={"#status": "status", "#gen": "generation"},
            ExpressionAttributeValues=to_item(
                {":processing": JobStatus.PROCESSING.value, ":gen": started.generation}
            ),
        )
        return done if written.done else None

    def fail(
        self, job_id: str, *, code: str, message: str, generation: int | None = None
    ) -> Transition:
        """PENDING/PROCESSING → FAILED with a reason; refused if the job is finished.

        With ``generation``, only while the job has not been retried since: a dead letter left
        over from before a retry must not fail the retried run.
        """
        return self._update(
            job_id,
            allowed_from=_OPEN,
            set_values={
                "status": JobStatus.FAILED.value,
                "updated_at": utc_now(),
                "error": {"code": code, "message": message},
            },
            generation=generation,
        )

    def cancel(self, job_id: str) -> Transition:
        """PENDING/PROCESSING → CANCELED; refused (with the record) once the job is finished.

        A job being classified is canceled all the same: its result, written later on condition
        that the job is still PROCESSING, is then refused, so it never becomes SUCCEEDED.
        """
        return self._update(
            job_id,
            allowed_from=_OPEN,
            set_values={"status": JobStatus.CANCELED.value, "updated_at": utc_now()},
        )

    def retry(self, job_id: str) -> Transition:
        """FAILED → PENDING in a new generation, clearing the error; refused if not FAILED."""
        return self._update(
            job_id,
            allowed_from=(JobStatus.FAILED,),
            set_values={"status": JobStatus.PENDING.value, "updated_at": utc_now()},
            increment="generation",
            remove=("error",),
        )


def _same_generation(generation: int) -> str:
    """The condition "still in ``generation``" (``#gen``, ``:gen``); records written before
    generations existed are generation 0."""
    return "#gen = :gen" + (" OR attribute_not_exists(#gen)" if not generation else "")
