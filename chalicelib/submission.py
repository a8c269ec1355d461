"""Turn a ``POST /jobs`` request into image bytes and a webhook URL, whatever form it came in.

Accepted: a raw body (``Content-Type: image/*`` or ``application/octet-stream``), multipart form
data with a file field ``image`` (``SubmitForm``), or JSON ``SubmitJson``. ``webhook_url`` and
the options (``top_k``, ``min_confidence``, ``cache``) may come as query parameters, form fields or
JSON fields; a form or JSON field wins over the query parameter of the same name.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.contract import JobOptions, OptionFields, SubmitJson, SubmitQuery
from chalicelib.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from chalicelib.forms import media_type, parse_form
from chalicelib.validation import validate, validate_json

FORM_PARTS = 12  # an image, a webhook_url and the options, with room for fields we ignore
OPTION_NAMES = frozenset(OptionFields.model_fields)


@dataclass(frozen=True)
class Submission:
    """An image as received, before the door checks its content."""

    data: bytes
    webhook_url: str | None
    options: OptionFields = field(default_factory=OptionFields)

    @property
    def job_options(self) -> JobOptions:
        """How the job's answer is cut (the cache choice is not part of the job)."""
        return job_options(self.options)


def job_options(options: OptionFields) -> JobOptions:
    """The options a job keeps, of the options it was submitted with."""
    return JobOptions(top_k=options.top_k, min_confidence=options.min_confidence)


def merged_options(given: OptionFields, overrides: Mapping[str, Any]) -> OptionFields:
    """``given`` (the query's) with the option fields of ``overrides`` (a form's or a JSON
    body's) in their place; a bad value is the field's 400."""
    fields = given.model_dump(include=given.model_fields_set & OPTION_NAMES)
    fields.update({k: v for k, v in overrides.items() if k in OPTION_NAMES})
    return validate(OptionFields, fields)


def _webhook(url: str | None) -> str | None:
    return url.strip() or None if url else None


def parse_submission(
    *, content_type: str, body: bytes, query: SubmitQuery, max_bytes: int
) -> Submission:
    """Parse the request body; raises 4xx errors for anything malformed."""
    webhook_url = query.webhook_url
    media = media_type(content_type)
    if not body:
        raise BadRequest("the request body is empty: send an image", code="empty_body")
    # A JSON or multipart body may be larger than the image it carries, but never by more than
    # base64's 4/3 plus headroom; refuse absurd bodies before parsing them.
    if len(body) > max_bytes * 4 // 3 + 64 * 1024:
        raise PayloadTooLarge(
            f"the request body is {len(body)} bytes; images may be at most {max_bytes} bytes",
            code="image_too_large",
        )
    if media.startswith("image/") or media == "application/octet-stream":
        return Submission(data=body, webhook_url=_webhook(webhook_url), options=query)
    if media == "multipart/form-data":
        form = parse_form(content_type, body, max_parts=FORM_PARTS)
        images = form.files.get("image")
        if not images:
            raise BadRequest("the multipart body has no 'image' file field", code="missing_image")
        return Submission(
            images[0].data,
            _webhook(form.fields.get("webhook_url", webhook_url)),
            merged_options(query, form.fields),
        )
    if media == "application/json":
        doc = validate_json(SubmitJson, body)
        return Submission(
            _decode(doc.image_base64),
            _webhook(doc.webhook_url or webhook_url),
            merged_options(query, doc.model_dump(include=doc.model_fields_set)),
        )
    raise UnsupportedMediaType(
        "send the image as image/*, multipart/form-data (field 'image') or JSON "
        "{'image_base64': ...}",
        code="unsupported_content_type",
    )


def _decode(encoded: str) -> bytes:
    if encoded.startswith("data:") and "," in encoded:
        encoded = encoded.split(",", 1)[1]  # accept data: URLs from browsers
    try:
        return base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("image_base64 is not valid base64", code="invalid_base64") from exc
