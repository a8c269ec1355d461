"""Per-record SQS handlers through Powertools' batch utility: each record is handled on its
own, and only the records that raised are reported back (``ReportBatchItemFailures``), so one
bad message never sends its nine neighbours round again."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

log = logging.getLogger(__name__)


def each_record(
    event: dict[str, Any], handler: Callable[[SQSRecord], None]
) -> PartialItemFailureResponse:
    """Run ``handler`` on every record; the ``batchItemFailures`` of those that raised."""

    @functools.wraps(handler)
    def logged(record: SQSRecord) -> None:
        try:
            handler(record)
        except Exception:
            log.exception("record not handled; SQS will hand it over again")
            raise

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=logged, processor=processor)


def records(event: dict[str, Any]) -> list[SQSRecord]:
    """The event's records, for handlers that work on the whole batch at once."""
    return [SQSRecord(record) for record in event.get("Records", [])]
