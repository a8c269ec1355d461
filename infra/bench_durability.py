"""What keeping the local runtime's state costs per job: the same four S3 and DynamoDB writes a
job makes (its image, its record, its start, its result), against an emulator in memory and one
that journals every write to disk (``infra/journal.py``)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from infra.emulator import emulator_process


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _writes(journal: Path | None, image: bytes, jobs: int) -> dict[str, float]:
    with emulator_process(journal=journal) as emulator:
        ddb, s3 = _client("dynamodb", emulator.endpoint), _client("s3", emulator.endpoint)
        ddb.create_table(
            TableName="bench-jobs",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        )
        s3.create_bucket(Bucket="bench-images")
        record = {"status": {"S": "PENDING"}, "predictions": {"S": "x" * 900}}

        def job(i: int) -> None:
            s3.put_object(Bucket="bench-images", Key=f"images/t/{i}", Body=image)
            for _ in range(3):  # the record, its start, its result
                ddb.put_item(TableName="bench-jobs", Item={"job_id": {"S": str(i)}, **record})

        for i in range(5):  # warm the clients and the emulator
            job(-1 - i)
        size = journal.stat().st_size if journal else 0
        cpu, started = emulator.cpu_seconds(), time.perf_counter()
        for i in range(jobs):
            job(i)
        return {
            "wall_ms_per_job": round((time.perf_counter() - started) * 1000 / jobs, 2),
            "emulator_cpu_ms_per_job": round((emulator.cpu_seconds() - cpu) * 1000 / jobs, 2),
            "journal_kib_per_job": round(
                ((journal.stat().st_size if journal else 0) - size) / 1024 / jobs, 1
            ),
        }


def durability_cost(image: bytes, jobs: int = 100) -> dict[str, Any]:
    """Memory against journal, the same writes, one after the other."""
    with tempfile.TemporaryDirectory() as tmp:
        memory = _writes(None, image, jobs)
        kept = _writes(Path(tmp) / "journal.jsonl", image, jobs)
    return {
        "jobs": jobs,
        "image_bytes": len(image),
        "memory": memory,
        "journal": kept,
        "extra_wall_ms_per_job": round(kept["wall_ms_per_job"] - memory["wall_ms_per_job"], 2),
        "extra_emulator_cpu_ms_per_job": round(
            kept["emulator_cpu_ms_per_job"] - memory["emulator_cpu_ms_per_job"], 2
        ),
    }
