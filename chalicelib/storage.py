"""Images in a private S3 bucket."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.errors import PermanentJobError, TransientError
from chalicelib.settings import IMAGES_PREFIX, RESULTS_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = {"NoSuchKey", "404", "NotFound"}


def results_key(tenant: str, path: str) -> str:
    """Where the result of a bulk-dropped image is written: beside it, under the results prefix."""
    return f"{RESULTS_PREFIX}{tenant}/{path}.json"


class ImageStore:
    """Put, get and sign image objects; S3 errors become domain errors here."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    @staticmethod
    def key_for(owner: str, job_id: str) -> str:
        """Where a job's image lives."""
        return f"{IMAGES_PREFIX}{owner}/{job_id}"

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store an image (server-side encrypted)."""
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
        """The image bytes; a missing object is permanent, anything else transient."""
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise PermanentJobError("image_missing", "the image is no longer stored") from exc
            raise TransientError(f"S3 get failed: {exc}") from exc

    def put_json(self, key: str, document: Any) -> None:
        """Store a JSON document (server-side encrypted)."""
        body = json.dumps(document, indent=2).encode()
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                ServerSideEncryption="AES256",
            )
        except ClientError as exc:
            raise TransientError(f"S3 put failed: {exc}") from exc

    def delete(self, key: str) -> None:
        """Remove an object; removing one that is already gone is fine."""
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            raise TransientError(f"S3 delete failed: {exc}") from exc

    def presigned_post(
        self, key: str, *, content_type: str, max_bytes: int, expires_in: int
    ) -> dict[str, Any]:
        """A browser-style upload form for exactly ``key``, ``content_type`` and ≤ ``max_bytes``."""
        post = self._s3.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type, "x-amz-server-side-encryption": "AES256"},
            Conditions=[
                {"Content-Type": content_type},
                {"x-amz-server-side-encryption": "AES256"},
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=expires_in,
        )
        return {"url": post["url"], "fields": post["fields"]}

    def presigned_url(self, key: str, *, expires_in: int) -> str:
        """A short-lived GET URL for the image."""
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )
