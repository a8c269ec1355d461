"""Images that arrive in the bucket: presigned uploads and bulk drops, announced by S3 events.

- ``POST /uploads`` hands out a presigned POST for ``uploads/<tenant>/<job_id>/<filename>``; the
  job id is minted then, and the job is made when S3 says the object arrived.
- Anything written under ``incoming/<tenant>/`` becomes a job of that tenant; its id is derived
  from bucket, key and ETag, so a repeated event makes one job, and a new version of the object
  another. Its result is written beside it, under ``results/<tenant>/``.

S3 notifications reach the ingest handler through an SQS queue (Chalice's CloudFormation
packager refuses ``on_s3_event``; S3 → SQS works in moto and in AWS).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from chalicelib.errors import BadRequest, UnsupportedMediaType
from chalicelib.jobs import is_job_id, new_job_id
from chalicelib.settings import INCOMING_PREFIX, TENANT_NAME, UPLOADS_PREFIX, Settings
from chalicelib.storage import ImageStore
from chalicelib.submission import json_object

log = logging.getLogger(__name__)

UPLOAD_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StoredObject:
    """An image that arrived in the bucket (presigned upload or bulk drop), and whose it is."""

    key: str
    tenant: str
    job_id: str
    source: str  # upload | s3
    filename: str | None


def safe_filename(name: object) -> str:
    """A file name fit for an S3 key: its last path part, odd characters replaced."""
    if name is None or name == "":
        return "image"
    if not isinstance(name, str) or len(name) > 255:
        raise BadRequest(
            "filename must be a string of at most 255 characters", code="invalid_filename"
        )
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", base).strip("._") or "image"


def stored_object(bucket: str, key: str, etag: str) -> StoredObject | None:
    """What an object key means, or None for keys outside the two ingest prefixes."""
    if key.startswith(UPLOADS_PREFIX):
        parts = key[len(UPLOADS_PREFIX) :].split("/", 2)
        if len(parts) == 3 and TENANT_NAME.match(parts[0]) and is_job_id(parts[1]):
            return StoredObject(key, parts[0], parts[1], "upload", parts[2])
    elif key.startswith(INCOMING_PREFIX):
        tenant, _, path = key[len(INCOMING_PREFIX) :].partition("/")
        if TENANT_NAME.match(tenant) and path and not path.endswith("/"):
            digest = hashlib.sha256(f"{bucket}\0{key}\0{etag}".encode()).hexdigest()
            return StoredObject(key, tenant, digest[:32], "s3", path)
    return None


def objects_in(body: str) -> list[StoredObject]:
    """The created objects an S3 notification (as delivered through SQS) announces."""
    try:
        doc = json.loads(body)
    except ValueError:
        log.error("ingest message is not JSON", extra={"body": body[:99]})
        return []
    found = []
    records: list[Any] = doc.get("Records", []) if isinstance(doc, dict) else []
    for record in records:
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = record.get("s3", {})
        key = unquote_plus(s3.get("object", {}).get("key", ""))
        obj = stored_object(
            s3.get("bucket", {}).get("name", ""), key, str(s3.get("object", {}).get("eTag", ""))
        )
        if obj is None:
            log.warning("ignoring an object outside the ingest prefixes", extra={"key": key})
        else:
            found.append(obj)
    return found  # s3:TestEvent and other messages hold no records


class UploadService:
    """Presigned POSTs for images too big for API Gateway."""

    def __init__(self, *, settings: Settings, store: ImageStore) -> None:
        self._settings = settings
        self._store = store

    def create(self, *, owner: str, body: bytes) -> dict[str, Any]:
        """``{"filename", "content_type"}`` → a job id and the form to upload the image with."""
        doc = json_object(body)
        content_type = doc.get("content_type")
        if content_type not in UPLOAD_TYPES:
            raise UnsupportedMediaType(
                f"content_type must be one of {', '.join(UPLOAD_TYPES)}",
                code="unsupported_content_type",
            )
        s = self._settings
        job_id = new_job_id()
        key = f"{UPLOADS_PREFIX}{owner}/{job_id}/{safe_filename(doc.get('filename'))}"
        form = self._store.presigned_post(
            key,
            content_type=str(content_type),
            max_bytes=s.max_upload_bytes,
            expires_in=s.upload_url_ttl_s,
        )
        return {
            "job_id": job_id,
            "upload": {**form, "method": "POST", "max_bytes": s.max_upload_bytes},
            "expires_in": s.upload_url_ttl_s,
        }
