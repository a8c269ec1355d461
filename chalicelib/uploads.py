"""Presigned uploads: ``POST /uploads`` hands out an S3 POST form for an image too big for API
Gateway; the job is made when S3 says the object arrived (``chalicelib.ingest``)."""

from __future__ import annotations

from chalicelib.contract import Upload, UploadForm, UploadRequest
from chalicelib.image_store import ImageStore, safe_filename, upload_key
from chalicelib.job_store import new_job_id
from chalicelib.pending_caps import PendingCaps
from chalicelib.settings import Settings


class Uploads:
    """Mints a job id and the form to upload its image with."""

    def __init__(self, *, settings: Settings, images: ImageStore, caps: PendingCaps) -> None:
        self._settings = settings
        self._images = images
        self._caps = caps

    def create(self, *, owner: str, request: UploadRequest, base_path: str) -> Upload:
        """The job id, the presigned form, how long it is valid and where to follow the job."""
        s = self._settings
        self._caps.check(owner)  # its pixels are not known until it arrives
        job_id = new_job_id()
        form = self._images.presigned_post(
            upload_key(owner, job_id, safe_filename(request.filename)),
            content_type=request.content_type,
            max_bytes=s.max_upload_bytes,
            expires_in=s.upload_url_ttl_s,
        )
        return Upload(
            job_id=job_id,
            upload=UploadForm(url=form["url"], fields=form["fields"], max_bytes=s.max_upload_bytes),
            expires_in=s.upload_url_ttl_s,
            status_url=f"{base_path}/jobs/{job_id}",
        )
