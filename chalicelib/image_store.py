"""Images (and bulk-drop result files) in a private S3 bucket, and the bucket's key scheme.

| objects | key |
| --- | --- |
| an image sent to the API | ``images/<tenant>/<job_id>`` |
| a presigned upload | ``uploads/<tenant>/<job_id>/<filename>`` |
| a bulk drop | ``incoming/<tenant>/<path>`` |
| a bulk drop's result | ``results/<tenant>/<path>.json`` |
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from chalicelib.errors import PermanentJobError, TransientError
from chalicelib.settings import TENANT_NAME

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

IMAGES_PREFIX = "images/"
UPLOADS_PREFIX = "uploads/"
INCOMING_PREFIX = "incoming/"
RESULTS_PREFIX = "results/"
_MISSING = {"NoSuchKey", "404", "NotFound"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def image_key(owner: str, job_id: str) -> str:
    """Where the image of a job submitted to the API lives."""
    return f"{IMAGES_PREFIX}{owner}/{job_id}"


def upload_key(owner: str, job_id: str, filename: str) -> str:
    """Where a presigned upload puts its image."""
    return f"{UPLOADS_PREFIX}{owner}/{job_id}/{filename}"


def results_key(tenant: str, path: str) -> str:
    """Where the result of a bulk-dropped image is written: beside it, under the results prefix."""
    return f"{RESULTS_PREFIX}{tenant}/{path}.json"


def safe_filename(name: str | None) -> str:
    """A file name fit for an S3 key: its last path part, odd characters replaced."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", base).strip("._") or "image"


@dataclass(frozen=True)
class StoredObject:
    """An image that arrived in the bucket (presigned upload or bulk drop), and whose it is."""

    key: str
    tenant: str
    job_id: str
    source: Literal["upload", "s3"]
    filename: str | None


def _is_hex_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def stored_object(bucket: str, key: str, etag: str) -> StoredObject | None:
    """What an object key means, or None for keys outside the two ingest prefixes.

    A bulk drop's job id is derived from bucket, key and ETag, so a repeated event makes one
    job, and a new version of the object another.
    """
    if key.startswith(UPLOADS_PREFIX):
        parts = key[len(UPLOADS_PREFIX) :].split("/", 2)
        if len(parts) == 3 and TENANT_NAME.match(parts[0]) and _is_hex_id(parts[1]):
            return StoredObject(key, parts[0], parts[1], "upload", parts[2])
    elif key.startswith(INCOMING_PREFIX):
        tenant, _, path = key[len(INCOMING_PREFIX) :].partition("/")
        if TENANT_NAME.match(tenant) and path and not path.endswith("/"):
            digest = hashlib.sha256(f"{bucket}\0{key}\0{etag}".encode()).hexdigest()
            return StoredObject(key, tenant, digest[:32], "s3", path)
    return None


class ImageStore:
    """Put, get and sign objects; S3 errors become domain errors here."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store an object (server-side encrypted)."""
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                ServerSideEncryption="AES256",
            )
        except ClientError as exc:
            raise TransientError(f"S3 put failed: {exc}") from exc

    def get(self, key: str) -> bytes:
        """The object's bytes; a missing object is permanent, anything else transient."""
        return self.get_with_metadata(key)[0]

    def get_with_metadata(self, key: str) -> tuple[bytes, dict[str, str]]:
        """The object's bytes and its user metadata (``x-amz-meta-*``, names lower-case), from
        the one GetObject."""
        try:
            resp = self._s3.get_object(Bucket=self._bucket, Key=key)
            return resp["Body"].read(), dict(resp.get("Metadata", {}))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise PermanentJobError("image_missing", "the image is no longer stored") from exc
            raise TransientError(f"S3 get failed: {exc}") from exc

    def put_json(self, key: str, document: Any) -> None:
        """Store a JSON document."""
        self.put(key, json.dumps(document, indent=2).encode(), "application/json")

    def delete(self, key: str) -> None:
        """Remove an object; removing one that is already gone is fine."""
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            raise TransientError(f"S3 delete failed: {exc}") from exc

    def presigned_post(
        self,
        key: str,
        *,
        content_type: str,
        max_bytes: int,
        expires_in: int,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A browser-style upload form for exactly ``key``, ``content_type``, ≤ ``max_bytes``
        and, when given, exactly that user ``metadata`` (the policy pins each value)."""
        fields = {"Content-Type": content_type, "x-amz-server-side-encryption": "AES256"}
        fields |= {f"x-amz-meta-{name}": value for name, value in (metadata or {}).items()}
        conditions: list[Any] = [{name: value} for name, value in fields.items()]
        conditions.append(["content-length-range", 1, max_bytes])
        post = self._s3.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields=fields,
            Conditions=conditions,
            ExpiresIn=expires_in,
        )
        return {"url": post["url"], "fields": post["fields"]}

    def presigned_url(self, key: str, *, expires_in: int) -> str:
        """A short-lived GET URL for the object."""
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )
