"""Turn a ``POST /jobs`` request into image bytes and options, whatever form it came in.

Accepted: a raw body (``Content-Type: image/*`` or ``application/octet-stream``), multipart form
data with a file field ``image``, or JSON ``{"image_base64": ...}``. ``webhook_url`` may come as a
query parameter, a form field or a JSON field.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from chalicelib.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


@dataclass(frozen=True)
class Submission:
    """An image as received, before the door checks its content."""

    data: bytes
    webhook_url: str | None


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _webhook(url: object) -> str | None:
    """A webhook URL as given (vetted later, by the service), or None."""
    if url is None or url == "":
        return None
    if not isinstance(url, str):
        raise BadRequest("webhook_url must be a string", code="invalid_webhook_url")
    return url.strip()


def parse_submission(
    *,
    content_type: str,
    body: bytes,
    query: Mapping[str, str],
    max_bytes: int,
) -> Submission:
    """Parse the request body; raises 4xx errors for anything malformed."""
    media = _media_type(content_type)
    if not body:
        raise BadRequest("the request body is empty: send an image", code="empty_body")
    # A JSON or multipart body may be larger than the image it carries, but never by more than
    # base64's 4/3 plus headroom; refuse absurd bodies before parsing them.
    if len(body) > max_bytes * 4 // 3 + 64 * 1024:
        raise PayloadTooLarge(
            f"the request body is {len(body)} bytes; images may be at most {max_bytes} bytes",
            code="image_too_large",
        )
    webhook = query.get("webhook_url")
    if media.startswith("image/") or media == "application/octet-stream":
        return Submission(data=body, webhook_url=_webhook(webhook))
    if media == "multipart/form-data":
        return _parse_multipart(content_type, body, webhook)
    if media == "application/json":
        return _parse_json(body, webhook)
    raise UnsupportedMediaType(
        "send the image as image/*, multipart/form-data (field 'image') or JSON "
        "{'image_base64': ...}",
        code="unsupported_content_type",
    )


def json_object(body: bytes) -> dict[str, Any]:
    """A JSON object request body (empty counts as ``{}``); 400 ``invalid_json`` otherwise."""
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("the body is not valid JSON", code="invalid_json") from exc
    if not isinstance(doc, dict):
        raise BadRequest("the JSON body must be an object", code="invalid_json")
    return doc


def _parse_json(body: bytes, webhook: str | None) -> Submission:
    doc = json_object(body)
    encoded = doc.get("image_base64")
    if not isinstance(encoded, str) or not encoded:
        raise BadRequest("image_base64 (a base64 string) is required", code="missing_image")
    if encoded.startswith("data:") and "," in encoded:
        encoded = encoded.split(",", 1)[1]  # accept data: URLs from browsers
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("image_base64 is not valid base64", code="invalid_base64") from exc
    json_webhook = doc.get("webhook_url", webhook)
    return Submission(data=data, webhook_url=_webhook(json_webhook))


@dataclass(frozen=True)
class FilePart:
    """One file of a multipart body."""

    data: bytes
    filename: str | None


@dataclass(frozen=True)
class Form:
    """A multipart body: its files by field name, and its text fields."""

    files: dict[str, list[FilePart]]
    fields: dict[str, str]


def parse_form(content_type: str, body: bytes) -> Form:
    """Parse ``multipart/form-data``; raises 400 ``invalid_multipart`` when it cannot."""
    if _media_type(content_type) != "multipart/form-data" or "boundary=" not in content_type:
        raise BadRequest("send multipart/form-data with a boundary", code="invalid_multipart")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadRequest("the multipart body cannot be parsed", code="invalid_multipart")
    files: dict[str, list[FilePart]] = {}
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = _field_name(part)
        payload = part.get_payload(decode=True)
        if name is None or not isinstance(payload, bytes):
            continue
        filename = part.get_filename()
        if filename is not None or part.get_content_type() != "text/plain":
            files.setdefault(name, []).append(FilePart(payload, filename))
        else:
            fields.setdefault(name, payload.decode("utf-8", errors="replace").strip())
    return Form(files=files, fields=fields)


def _parse_multipart(content_type: str, body: bytes, webhook: str | None) -> Submission:
    form = parse_form(content_type, body)
    images = form.files.get("image")
    if not images:
        raise BadRequest("the multipart body has no 'image' file field", code="missing_image")
    return Submission(
        data=images[0].data, webhook_url=_webhook(form.fields.get("webhook_url", webhook))
    )


def _field_name(part: Message) -> str | None:
    disposition = part.get("content-disposition")
    if disposition is None:
        return None
    name = part.get_param("name", header="content-disposition")
    return name if isinstance(name, str) else None
