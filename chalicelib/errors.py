"""Domain errors. Each knows its HTTP status and a stable machine-readable code."""

from __future__ import annotations


class AppError(Exception):
    """Base of the errors a client may see: ``{"error": {"code", "message"}}``."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = {}  # sent with the error's answer
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, dict[str, str]]:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(AppError):
    """Malformed input (400)."""


class Unauthorized(AppError):
    """No credentials (401)."""

    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    """Credentials given but not valid (403)."""

    status = 403
    code = "forbidden"


class NotFound(AppError):
    """Unknown, or not the caller's (404): never reveal another tenant's resources."""

    status = 404
    code = "not_found"


class Conflict(AppError):
    """The resource is in the wrong state for this request (409)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    """Too many bytes or pixels (413)."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    """Not an image we can decode, or a content type we do not accept (415)."""

    status = 415
    code = "unsupported_media_type"


class RateLimited(AppError):
    """Over the tenant's rate limit (429); ``headers`` say when to come back."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = dict(headers)


class ServiceUnavailable(AppError):
    """A dependency (S3, DynamoDB, SQS) is failing or throttling; the client may retry (503)."""

    status = 503
    code = "service_unavailable"


class ConfigurationError(Exception):
    """The service is misconfigured; it refuses to start rather than run unsafely."""


class TransientError(Exception):
    """A failure worth retrying (throttling, a dependency down): SQS will redeliver."""


class PermanentJobError(Exception):
    """A job that can never succeed as submitted; it ends FAILED with this code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
