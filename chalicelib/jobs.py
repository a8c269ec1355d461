"""Jobs: the record, its states, and the DynamoDB repository that guards every transition."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from chalicelib.dynamo import conditional, deserialize, serialize, translate
from chalicelib.errors import BadRequest

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OWNER_INDEX = "owner-created-index"
_DESERIALIZER = TypeDeserializer()


class JobStatus(StrEnum):
    """PENDING → PROCESSING → SUCCEEDED | FAILED."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        """True for SUCCEEDED and FAILED."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


def utc_now() -> str:
    """ISO-8601 UTC timestamp with milliseconds, sortable as a string."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id() -> str:
    """A random 32-hex-digit id."""
    return uuid.uuid4().hex


def idempotent_job_id(owner: str, key: str) -> str:
    """The job id an ``Idempotency-Key`` maps to, per tenant: the same key makes the same job."""
    return hashlib.sha256(f"{owner}\0{key}".encode()).hexdigest()[:32]


def is_job_id(value: str) -> bool:
    """Whether ``value`` has the shape of a job id (anything else cannot exist)."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


@dataclass
class Job:
    """One image to classify and everything known about it."""

    job_id: str
    owner: str
    status: JobStatus
    created_at: str
    updated_at: str
    s3_key: str
    content_type: str
    size_bytes: int
    attempts: int = 0
    generation: int = 0
    batch_id: str | None = None
    webhook_url: str | None = None
    predictions: list[dict[str, Any]] | None = None
    model: dict[str, str] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: dict[str, str] | None = None
    image_sha256: str | None = None
    idempotency_key: str | None = None
    source: str = "api"  # api | upload | s3
    filename: str | None = None
    expires_at: int | None = None  # epoch seconds; DynamoDB's TTL removes the record after it

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (low-level attribute values); absent fields are left out."""
        plain = {k: v for k, v in self.__dict__.items() if v is not None and v != {}}
        plain["status"] = self.status.value
        return {k: serialize(v) for k, v in plain.items()}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        """Rebuild a job from a DynamoDB item."""
        plain = {k: deserialize(v) for k, v in item.items()}
        known = {k: v for k, v in plain.items() if k in cls.__dataclass_fields__}
        known["status"] = JobStatus(known["status"])
        return cls(**known)

    def to_api(self) -> dict[str, Any]:
        """The public view (no storage details, no owner)."""
        return {
            "job_id": self.job_id,
            "status": self.status.value,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "content_type": self.content_type,
            "size_bytes": self.size_bytes,
            "batch_id": self.batch_id,
            "source": self.source,
            "filename": self.filename,
            "webhook_url": self.webhook_url,
            "predictions": self.predictions,
            "model": self.model,
            "timings_ms": self.timings_ms,
            "error": self.error,
        }


@dataclass(frozen=True)
class JobPage:
    """One page of a tenant's jobs and the token for the next one (None at the end)."""

    jobs: list[Job]
    next_token: str | None


class JobRepository:
    """Job records in DynamoDB; every state change is a conditional write."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def create(self, job: Job) -> bool:
        """Insert a new job; False (and nothing written) when the id already exists."""
        written = conditional(
            self._db.put_item,
            TableName=self._table,
            Item=job.to_item(),
            ConditionExpression="attribute_not_exists(job_id)",
        )
        return written is not None

    def get(self, job_id: str) -> Job | None:
        """The job, or None."""
        try:
            resp = self._db.get_item(
                TableName=self._table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
            )
        except ClientError as exc:
            raise translate(exc) from exc
        item = resp.get("Item")
        return Job.from_item(item) if item else None

    def delete(self, job_id: str) -> None:
        """Remove the record (gone already is fine)."""
        try:
            self._db.delete_item(TableName=self._table, Key={"job_id": {"S": job_id}})
        except ClientError as exc:
            raise translate(exc) from exc

    def get_many(self, job_ids: list[str]) -> dict[str, Job]:
        """The jobs that exist among ``job_ids`` (BatchGetItem, 100 keys a call)."""
        found: dict[str, Job] = {}
        for start in range(0, len(job_ids), 100):
            keys: list[dict[str, Any]] = [
                {"job_id": {"S": j}} for j in dict.fromkeys(job_ids[start : start + 100])
            ]
            while keys:
                try:
                    resp = self._db.batch_get_item(
                        RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}}
                    )
                except ClientError as exc:
                    raise translate(exc) from exc
                for item in resp.get("Responses", {}).get(self._table, []):
                    job = Job.from_item(item)
                    found[job.job_id] = job
                unprocessed: dict[str, Any] = dict(resp.get("UnprocessedKeys", {}))
                keys = list(unprocessed.get(self._table, {}).get("Keys", []))
        return found

    def _update(
        self,
        job_id: str,
        *,
        allowed_from: tuple[JobStatus, ...],
        set_values: dict[str, Any],
        increment: tuple[str, ...] = (),
        remove: tuple[str, ...] = (),
        generation: int | None = None,
    ) -> Job | None:
        """Apply a transition if the job is in one of ``allowed_from`` (and, when given, still
        in ``generation``); None when it is not."""
        names = {"#status": "status"}
        values: dict[str, Any] = {":zero": {"N": "0"}, ":one": {"N": "1"}}
        sets = []
        for i, (attr, value) in enumerate(set_values.items()):
            names[f"#a{i}"] = attr
            values[f":v{i}"] = serialize(value)
            sets.append(f"#a{i} = :v{i}")
        for i, attr in enumerate(increment):
            names[f"#n{i}"] = attr
            sets.append(f"#n{i} = if_not_exists(#n{i}, :zero) + :one")
        allowed = []
        for i, status in enumerate(allowed_from):
            values[f":from{i}"] = {"S": status.value}
            allowed.append(f":from{i}")
        expression = "SET " + ", ".join(sets)
        condition = f"attribute_exists(job_id) AND #status IN ({', '.join(allowed)})"
        if generation is not None:
            names["#gen"] = "generation"
            values[":gen"] = {"N": str(generation)}
            condition += f" AND ({_same_generation(generation)})"
        if remove:
            for i, attr in enumerate(remove):
                names[f"#r{i}"] = attr
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
        if not increment:
            del values[":zero"], values[":one"]
        resp = conditional(
            self._db.update_item,
            TableName=self._table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return None if resp is None else Job.from_item(resp["Attributes"])

    def start(
        self, job_id: str, *, queued: Job | None = None, receive_count: int | None = None
    ) -> Job | None:
        """PENDING/PROCESSING → PROCESSING, counting the attempt; None if already terminal.

        PROCESSING is allowed as a source because an attempt that died mid-way leaves the job
        PROCESSING and SQS hands the same message over again.

        With the record the message carried (``queued``) and the message's receive count, the
        started record is written whole, on the condition that the stored job is still that
        one: same generation, not finished, and as many attempts as this message's earlier
        receives account for. Else (an attempt that died before starting, a second message for
        the job) the attempt is counted with an update that reads the record back, which costs
        DynamoDB (and the emulator on this machine) twice the put. The jobs queue is as trusted
        as the table: only the service sends to it.
        """
        if queued is not None and receive_count is not None and receive_count >= 1:
            started = self._start_queued(queued, receive_count)
            if started is not None:
                return started
        return self._update(
            job_id,
            allowed_from=(JobStatus.PENDING, JobStatus.PROCESSING),
            set_values={"status": JobStatus.PROCESSING.value, "updated_at": utc_now()},
            increment=("attempts",),
        )

    def _start_queued(self, queued: Job, receive_count: int) -> Job | None:
        before = queued.attempts + receive_count - 1
        started = replace(
            queued,
            status=JobStatus.PROCESSING,
            updated_at=utc_now(),
            attempts=before + 1,
        )
        names = {"#status": "status", "#gen": "generation", "#attempts": "attempts"}
        values: dict[str, Any] = {
            ":pending": {"S": JobStatus.PENDING.value},
            ":processing": {"S": JobStatus.PROCESSING.value},
            ":gen": {"N": str(queued.generation)},
            ":attempts": {"N": str(before)},
        }
        condition = (
            f"#status IN (:pending, :processing) AND #attempts = :attempts AND "
            f"({_same_generation(queued.generation)})"
        )
        return self._put_if(started, condition, names, values)

    def _put_if(
        self, job: Job, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> Job | None:
        """Write ``job`` whole if ``condition`` holds; the job written, or None."""
        written = conditional(
            self._db.put_item,
            TableName=self._table,
            Item=job.to_item(),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return None if written is None else job

    def succeed(
        self,
        started: Job,
        *,
        predictions: list[dict[str, Any]],
        model: dict[str, str],
        timings_ms: dict[str, float],
    ) -> Job | None:
        """PROCESSING → SUCCEEDED with the result; None if the job was not PROCESSING (in the
        same generation).

        ``started`` is the job as ``start`` returned it: the finished record is built from it
        and written whole, with a condition, rather than updated with an expression and read
        back. Nothing else changes a PROCESSING job of the same generation, and the put costs
        DynamoDB (and the emulator, which shares the machine) half what an update returning the
        record does. Its ``attempts`` is this attempt's count.
        """
        done = replace(
            started,
            status=JobStatus.SUCCEEDED,
            updated_at=utc_now(),
            predictions=predictions,
            model=model,
            timings_ms=dict(timings_ms),
            error=None,
        )
        names = {"#status": "status", "#gen": "generation"}
        values: dict[str, Any] = {
            ":processing": {"S": JobStatus.PROCESSING.value},
            ":gen": {"N": str(started.generation)},
        }
        condition = f"#status = :processing AND ({_same_generation(started.generation)})"
        return self._put_if(done, condition, names, values)

    def fail(
        self, job_id: str, *, code: str, message: str, generation: int | None = None
    ) -> Job | None:
        """PENDING/PROCESSING → FAILED with a reason; None if the job was already terminal.

        With ``generation``, only while the job has not been retried since: a dead letter left
        over from before a retry must not fail the retried run.
        """
        return self._update(
            job_id,
            allowed_from=(JobStatus.PENDING, JobStatus.PROCESSING),
            set_values={
                "status": JobStatus.FAILED.value,
                "updated_at": utc_now(),
                "error": {"code": code, "message": message},
            },
            generation=generation,
        )

    def retry(self, job_id: str) -> Job | None:
        """FAILED → PENDING in a new generation, clearing the error; None if not FAILED."""
        return self._update(
            job_id,
            allowed_from=(JobStatus.FAILED,),
            set_values={
                "status": JobStatus.PENDING.value,
                "updated_at": utc_now(),
            },
            increment=("generation",),
            remove=("error",),
        )

    def list_for_owner(
        self,
        owner: str,
        *,
        status: JobStatus | None = None,
        limit: int = 20,
        next_token: str | None = None,
    ) -> JobPage:
        """The owner's jobs, newest first, optionally of one status, ``limit`` at a time."""
        start_key = _decode_token(next_token, owner) if next_token else None
        jobs: list[Job] = []
        while len(jobs) < limit:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": OWNER_INDEX,
                "KeyConditionExpression": "#owner = :owner",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": {":owner": {"S": owner}},
                "ScanIndexForward": False,
                "Limit": limit - len(jobs),
            }
            if status is not None:
                kwargs["FilterExpression"] = "#status = :status"
                kwargs["ExpressionAttributeNames"]["#status"] = "status"
                kwargs["ExpressionAttributeValues"][":status"] = {"S": status.value}
            if start_key:
                kwargs["ExclusiveStartKey"] = start_key
            try:
                resp = self._db.query(**kwargs)
            except ClientError as exc:
                raise translate(exc) from exc
            jobs.extend(Job.from_item(item) for item in resp.get("Items", []))
            start_key = resp.get("LastEvaluatedKey")
            if not start_key:
                break
        return JobPage(jobs=jobs, next_token=_encode_token(start_key) if start_key else None)


def _same_generation(generation: int) -> str:
    """The condition "still in ``generation``" (``#gen``, ``:gen``); records written before
    generations existed are generation 0."""
    return "#gen = :gen" + (" OR attribute_not_exists(#gen)" if not generation else "")


def _encode_token(key: dict[str, Any]) -> str:
    plain = {k: _DESERIALIZER.deserialize(v) for k, v in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode()


def _decode_token(token: str, owner: str) -> dict[str, Any]:
    """Decode a pagination token; refuse garbage and tokens minted for another owner."""
    try:
        plain = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("next_token is not valid", code="invalid_next_token") from exc
    expected = {"job_id", "owner", "created_at"}
    if (
        not isinstance(plain, dict)
        or set(plain) != expected
        or not all(isinstance(v, str) for v in plain.values())
        or plain["owner"] != owner
    ):
        raise BadRequest("next_token is not valid", code="invalid_next_token")
    return {k: {"S": v} for k, v in plain.items()}
