"""The whole bill of a job, per million images, from what a ``make bench`` run measured.

Every quantity comes from the ordinary mix's end-to-end run: the requests the client made and how
long each took, the AWS calls counted in every process (``aws_calls``), the functions'
invocations and handler time, the job record's real size in DynamoDB, and the bytes the runtime
and its worker wrote as logs. Only the prices are typed in, in ``PRICES``.
"""

from __future__ import annotations

import math
from typing import Any

# us-east-1 list prices, x86, without free tiers, as the issue of 2026-12-02 gives them; checked
# that day against copies of the AWS pricing pages in a search index (not the live pages).
PRICES_AS_OF = "2026-12-02"
PRICES: dict[str, tuple[float, str, str]] = {
    # key: (USD per unit, unit, source)
    "apigw_request": (3.50e-6, "REST API request (first 333 M a month)", "https://aws.amazon.com/api-gateway/pricing/"),
    "lambda_request": (0.20e-6, "Lambda request", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_s": (0.0000166667, "Lambda GB-second (x86)", "https://aws.amazon.com/lambda/pricing/"),
    "s3_put": (0.005 / 1000, "S3 PUT, COPY, POST or LIST request", "https://aws.amazon.com/s3/pricing/"),
    "s3_get": (0.0004 / 1000, "S3 GET or other request", "https://aws.amazon.com/s3/pricing/"),
    "dynamodb_wru": (0.625e-6, "DynamoDB on-demand write request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_rru": (0.125e-6, "DynamoDB on-demand read request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "sqs_request": (0.40e-6, "SQS standard request (per 64 KB chunk)", "https://aws.amazon.com/sqs/pricing/"),
    "sns_publish": (0.50e-6, "SNS publish (PublishBatch: each message)", "https://aws.amazon.com/sns/pricing/"),
    "logs_gb": (0.50, "CloudWatch Logs ingestion, GB (2^30 bytes)", "https://aws.amazon.com/cloudwatch/pricing/"),
    "rekognition_image": (1.00 / 1000, "Rekognition DetectLabels image (first 1 M a month)", "https://aws.amazon.com/rekognition/pricing/"),
}  # fmt: skip
# Memory each function is deployed with (.chalice/config.json; infra/template.json for status).
MEMORY_MB = {"api_handler": 512, "status": 256, "classify": 1024, "notify": 128}
S3_PUT_TIER = frozenset(
    {"PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2",
     "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
)  # fmt: skip
S3_FREE = frozenset({"DeleteObject", "DeleteObjects"})
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem"})


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return min(21, math.ceil(len(digits) / 2) + 1)


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute value (low-level form), name excluded."""
    [(kind, v)] = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: x}) for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(attribute_size(x) + 1 for x in v)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def _line(item: str, price: str, per_image: float) -> dict[str, Any]:
    usd, unit, _ = PRICES[price]
    return {
        "item": item,
        "per_image": float(f"{per_image:.6g}"),
        "unit": unit,
        "unit_usd": usd,
        "usd_per_million": round(per_image * usd * 1_000_000, 4),
    }


def _lambda_lines(e2e: dict[str, Any], images: int) -> list[dict[str, Any]]:
    usage = e2e["usage"]
    # function → (invocations, billed seconds): client-side request times are an upper bound of
    # the API and status functions' durations (a waiting GET lasts as long as its wait).
    functions = {
        "api_handler": (e2e["requests"]["post"], e2e["request_seconds"]["post"]),
        "status": (e2e["requests"]["get"], e2e["request_seconds"]["get"]),
        "classify": (usage["classify"]["batches"], usage["classify"]["handler_s"]),
        "notify": (usage["notify"]["batches"], usage["notify"]["handler_s"]),
    }
    lines = []
    for name, (calls, seconds) in functions.items():
        gb = MEMORY_MB[name] / 1024
        lines.append(_line(f"Lambda {name} requests", "lambda_request", calls / images))
        lines.append(
            _line(
                f"Lambda {name} GB-s ({MEMORY_MB[name]} MB)", "lambda_gb_s", seconds * gb / images
            )
        )
    return lines


def _dynamodb_lines(
    calls: dict[str, int], classify_calls: dict[str, int], sizes: dict[str, int], images: int
) -> list[dict[str, Any]]:
    """Write units from the record's real sizes: the classifier's PutItem writes the finished
    record; every other write is of a record about the pending one's size. Reads are strongly
    consistent, 4 KB a unit, priced at the finished record's size."""
    ops = {k.split(".", 1)[1]: v for k, v in calls.items() if k.startswith("dynamodb.")}
    result_puts = classify_calls.get("dynamodb.PutItem", 0)
    writes = sum(v for k, v in ops.items() if k in DYNAMODB_WRITES) - result_puts
    wru = result_puts * math.ceil(sizes["finished"] / 1024) + writes * math.ceil(
        sizes["pending"] / 1024
    )
    reads = sum(v for k, v in ops.items() if k in DYNAMODB_READS)
    rru = reads * math.ceil(sizes["finished"] / 4096)
    return [
        _line("DynamoDB write request units", "dynamodb_wru", wru / images),
        _line("DynamoDB read request units", "dynamodb_rru", rru / images),
    ]


def bill(e2e: dict[str, Any], sizes: dict[str, int]) -> dict[str, Any]:
    """Each line item per million images, and the total; Rekognition beside it."""
    images = e2e["images"]
    usage = e2e["usage"]
    calls: dict[str, int] = usage["aws_calls"]
    s3 = {k.split(".", 1)[1]: v for k, v in calls.items() if k.startswith("s3.")}
    s3_put = sum(v for k, v in s3.items() if k in S3_PUT_TIER)
    s3_get = sum(v for k, v in s3.items() if k not in S3_PUT_TIER | S3_FREE)
    sqs = sum(v for k, v in calls.items() if k.startswith("sqs."))
    # Every published event reaches the notify queue once (its one subscriber, raw delivery).
    sns = usage["notify"]["messages"]
    requests = e2e["requests"]["post"] + e2e["requests"]["get"]
    lines = [
        _line("API Gateway REST requests", "apigw_request", requests / images),
        *_lambda_lines(e2e, images),
        _line("S3 PUT requests", "s3_put", s3_put / images),
        _line("S3 GET requests", "s3_get", s3_get / images),
        *_dynamodb_lines(calls, usage["aws_calls_classify"], sizes, images),
        _line("SQS requests", "sqs_request", sqs / images),
        _line("SNS publishes", "sns_publish", sns / images),
        _line("CloudWatch Logs ingestion", "logs_gb", usage["log_bytes"] / 2**30 / images),
    ]
    return {
        "prices_as_of": PRICES_AS_OF,
        "prices": {k: {"usd": v[0], "unit": v[1], "source": v[2]} for k, v in PRICES.items()},
        "images": images,
        "item_bytes": sizes,
        "lines": lines,
        "total_usd_per_million": round(sum(line["usd_per_million"] for line in lines), 4),
        "rekognition_usd_per_million": round(PRICES["rekognition_image"][0] * 1_000_000, 2),
    }


def wait_cost(long_poll: dict[str, Any]) -> dict[str, Any]:
    """What one measured wait costs in Lambda time at the status function's memory."""
    usd = long_poll["gb_s"] * PRICES["lambda_gb_s"][0] + PRICES["lambda_request"][0]
    return {"usd_per_wait": round(usd, 8), "usd_per_million_waits": round(usd * 1e6, 2)}
