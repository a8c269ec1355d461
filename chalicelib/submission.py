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
from urllib.parse import urlsplit

from chalicelib.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class Submission:
    """An image as received, before the door checks its content."""

    data: bytes
    webhook_url: str | None


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def validate_webhook_url(url: str | None) -> str | None:
    """Basic shape check of a webhook URL (absolute http/https, bounded length)."""
    if url is None or url == "":
        return None
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise BadRequest("webhook_url must be a URL string", code="invalid_webhook_url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest("webhook_url must be an absolute http(s) URL", code="invalid_webhook_url")
    return url


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
        return Submission(data=body, webhook_url=validate_webhook_url(webhook))
    if media == "multipart/form-data":
        return _parse_multipart(content_type, body, webhook)
    if media == "application/json":
        return _parse_json(body, webhook)
    raise UnsupportedMediaType(
        "send the image as image/*, multipart/form-data (field 'image') or JSON "
        "{'image_base64': ...}",
        code="unsupported_content_type",
    )


def _parse_json(body: bytes, webhook: str | None) -> Submission:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("the body is not valid JSON", code="invalid_json") from exc
    if not isinstance(doc, dict):
        raise BadRequest("the JSON body must be an object", code="invalid_json")
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
    if json_webhook is not None and not isinstance(json_webhook, str):
        raise BadRequest("webhook_url must be a string", code="invalid_webhook_url")
    return Submission(data=data, webhook_url=validate_webhook_url(json_webhook))


def _parse_multipart(content_type: str, body: bytes, webhook: str | None) -> Submission:
    if "boundary=" not in content_type:
        raise BadRequest("multipart body without a boundary", code="invalid_multipart")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadRequest("the multipart body cannot be parsed", code="invalid_multipart")
    image: bytes | None = None
    for part in message.iter_parts():
        name = _field_name(part)
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if name == "image" and image is None:
            image = payload
        elif name == "webhook_url":
            webhook = payload.decode("utf-8", errors="replace").strip()
    if image is None:
        raise BadRequest("the multipart body has no 'image' file field", code="missing_image")
    return Submission(data=image, webhook_url=validate_webhook_url(webhook))


def _field_name(part: Message) -> str | None:
    disposition = part.get("content-disposition")
    if disposition is None:
        return None
    name = part.get_param("name", header="content-disposition")
    return name if isinstance(name, str) else None
