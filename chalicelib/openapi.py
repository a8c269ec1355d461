"""The OpenAPI 3 document of the HTTP API, served at ``/openapi.json`` and rendered at ``/docs``.

Written by hand, kept true by tests: one compares its operations with the app's routes, and
schemathesis checks every response of the running service against it.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings
from chalicelib.webpage import ASSETS

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_ERRORS = {
    400: "Malformed request (see `error.code`)",
    401: "No `x-api-key` header",
    403: "The API key is not valid",
    404: "No such resource for this tenant (unknown, malformed or another tenant's id)",
    409: "The resource is in the wrong state for this request",
    413: "Too many bytes or pixels",
    415: "Not an image we decode, or a content type we do not accept",
    503: "A dependency (S3, DynamoDB, SQS) is failing; retry after `Retry-After` seconds",
}


def _errors(*codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in (401, 403, *codes):
        response: dict[str, Any] = {"description": _ERRORS[code], "content": _json(_ref("Error"))}
        if code == 503:
            response["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        out[str(code)] = response
    return out


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"the {what}'s id",
        "schema": {"type": "string"},
    }


_LOCATION = {"Location": {"description": "where to poll", "schema": {"type": "string"}}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Prediction": {
        "type": "object",
        "required": ["class_id", "label", "probability"],
        "properties": {
            "class_id": {"type": "integer", "minimum": 0, "maximum": 999},
            "label": {"type": "string"},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
        },
    },
    "Model": {
        "type": "object",
        "required": ["name", "version"],
        "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
    },
    "Job": {
        "type": "object",
        "required": [
            "job_id",
            "status",
            "attempts",
            "created_at",
            "updated_at",
            "content_type",
            "size_bytes",
            "predictions",
            "model",
            "timings_ms",
            "error",
        ],
        "properties": {
            "job_id": {"type": "string"},
            "status": {"type": "string", "enum": ["PENDING", "PROCESSING", "SUCCEEDED", "FAILED"]},
            "attempts": {"type": "integer", "minimum": 0},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "content_type": {"type": "string"},
            "size_bytes": {"type": "integer", "minimum": 0},
            "batch_id": _nullable({"type": "string"}),
            "source": {"type": "string", "enum": ["api", "upload", "s3"]},
            "filename": _nullable({"type": "string"}),
            "webhook_url": _nullable({"type": "string"}),
            "predictions": _nullable({"type": "array", "items": _ref("Prediction"), "maxItems": 5}),
            "model": _nullable(_ref("Model")),
            "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
            "error": _nullable(
                {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            ),
        },
    },
    "Delivery": {
        "type": "object",
        "required": ["target", "url", "state", "attempts"],
        "properties": {
            "target": {"type": "string", "description": "`job` or a subscription id"},
            "url": {"type": "string"},
            "event_type": {"type": "string"},
            "state": {
                "type": "string",
                "enum": ["pending", "retrying", "delivered", "failed", "cancelled"],
            },
            "attempts": {"type": "integer", "minimum": 0},
            "last_status": _nullable({"type": "integer"}),
            "last_error": _nullable({"type": "string"}),
            "next_attempt_at": _nullable({"type": "integer"}),
            "updated_at": {"type": "string"},
        },
    },
    "JobDetail": {
        "allOf": [
            _ref("Job"),
            {
                "type": "object",
                "required": ["image_url", "webhooks"],
                "properties": {
                    "image_url": {"type": "string", "description": "presigned, short-lived"},
                    "webhooks": {"type": "array", "items": _ref("Delivery")},
                },
            },
        ]
    },
    "Accepted": {
        "type": "object",
        "required": ["job_id", "status", "status_url"],
        "properties": {
            "job_id": {"type": "string"},
            "status": {"type": "string", "enum": ["PENDING", "PROCESSING", "SUCCEEDED", "FAILED"]},
            "status_url": {"type": "string"},
        },
    },
    "JobPage": {
        "type": "object",
        "required": ["jobs", "next_token"],
        "properties": {
            "jobs": {"type": "array", "items": _ref("Job")},
            "next_token": _nullable({"type": "string"}),
        },
    },
    "Rejected": {
        "type": "object",
        "required": ["index", "error"],
        "properties": {
            "index": {"type": "integer", "minimum": 0},
            "filename": _nullable({"type": "string"}),
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "BatchAccepted": {
        "type": "object",
        "required": ["batch_id", "job_ids", "rejected", "status_url"],
        "properties": {
            "batch_id": {"type": "string"},
            "job_ids": {"type": "array", "items": {"type": "string"}},
            "rejected": {"type": "array", "items": _ref("Rejected")},
            "status_url": {"type": "string"},
        },
    },
    "Batch": {
        "type": "object",
        "required": ["batch_id", "created_at", "status", "progress", "rejected", "jobs"],
        "properties": {
            "batch_id": {"type": "string"},
            "created_at": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["waiting", "processing", "completed", "completed_with_errors"],
            },
            "progress": {
                "type": "object",
                "required": ["total", "pending", "processing", "succeeded", "failed"],
                "properties": {
                    k: {"type": "integer", "minimum": 0}
                    for k in ("total", "pending", "processing", "succeeded", "failed")
                },
            },
            "rejected": {"type": "array", "items": _ref("Rejected")},
            "jobs": {"type": "array", "items": _ref("Job")},
        },
    },
    "Upload": {
        "type": "object",
        "required": ["job_id", "upload", "expires_in", "status_url"],
        "properties": {
            "job_id": {"type": "string"},
            "upload": {
                "type": "object",
                "required": ["url", "fields", "method", "max_bytes"],
                "properties": {
                    "url": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    "method": {"type": "string", "enum": ["POST"]},
                    "max_bytes": {"type": "integer"},
                },
            },
            "expires_in": {"type": "integer"},
            "status_url": {"type": "string"},
        },
    },
    "Webhook": {
        "type": "object",
        "required": ["id", "url", "events", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string"},
            "events": {
                "type": "array",
                "items": {"type": "string", "enum": ["job.succeeded", "job.failed"]},
            },
            "created_at": {"type": "string"},
            "secret": {"type": "string", "description": "only in the answer to POST /webhooks"},
        },
    },
}


def _operations(settings: Settings) -> dict[str, Any]:
    job_id = _path_id("job_id", "job")
    image_body = {
        "required": True,
        "description": (
            f"One image of at most {settings.max_image_bytes} bytes and "
            f"{settings.max_image_pixels} pixels: JPEG, PNG, GIF, WebP, BMP or TIFF, judged "
            "from the bytes."
        ),
        "content": {
            "image/*": _BINARY,
            "application/octet-stream": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "webhook_url": {"type": "string"},
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["image_base64"],
                    "properties": {
                        "image_base64": {"type": "string", "description": "base64 or a data: URL"},
                        "webhook_url": {"type": "string"},
                    },
                }
            },
        },
    }
    by_job_id = {"job_id": "$response.body#/job_id"}
    accepted = {
        "description": "Accepted: the job is queued",
        "headers": _LOCATION,
        "content": _json(_ref("Accepted")),
        "links": {
            "GetJob": {"operationId": "getJob", "parameters": by_job_id},
            "RetryJob": {"operationId": "retryJob", "parameters": by_job_id},
            "DeleteJob": {"operationId": "deleteJob", "parameters": by_job_id},
        },
    }
    return {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Liveness and the model's name",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["status", "model"],
                                "properties": {
                                    "status": {"type": "string", "enum": ["ok"]},
                                    "model": _ref("Model"),
                                },
                            }
                        ),
                    }
                },
            }
        },
        "/jobs": {
            "post": {
                "operationId": "submitJob",
                "summary": "Submit one image",
                "parameters": [
                    {
                        "name": "webhook_url",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "https URL told when the job ends",
                    },
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "schema": {"type": "string", "maxLength": 255},
                        "description": "the same key from the same tenant returns the same job",
                    },
                ],
                "requestBody": image_body,
                "responses": {"202": accepted, **_errors(400, 409, 413, 415, 503)},
            },
            "get": {
                "operationId": "listJobs",
                "summary": "The caller's jobs, newest first",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["PENDING", "PROCESSING", "SUCCEEDED", "FAILED"],
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    {"name": "next_token", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "A page of jobs", "content": _json(_ref("JobPage"))},
                    **_errors(400, 503),
                },
            },
        },
        "/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "One job: status, predictions, webhook deliveries",
                "parameters": [job_id],
                "responses": {
                    "200": {"description": "The job", "content": _json(_ref("JobDetail"))},
                    **_errors(404, 503),
                },
            },
            "delete": {
                "operationId": "deleteJob",
                "summary": "Remove the job's record and image",
                "parameters": [job_id],
                "responses": {"204": {"description": "Deleted"}, **_errors(404, 503)},
            },
        },
        "/jobs/{job_id}/retry": {
            "post": {
                "operationId": "retryJob",
                "summary": "A FAILED job back to PENDING and queued again",
                "parameters": [job_id],
                "responses": {"202": accepted, **_errors(404, 409, 503)},
            }
        },
        "/batches": {
            "post": {
                "operationId": "submitBatch",
                "summary": f"Many images at once (at most {settings.max_batch_images})",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["images"],
                                "properties": {
                                    "images": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "binary"},
                                    },
                                    "webhook_url": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": {
                        "description": "Accepted: one job per valid file",
                        "headers": _LOCATION,
                        "content": _json(_ref("BatchAccepted")),
                        "links": {
                            "GetBatch": {
                                "operationId": "getBatch",
                                "parameters": {"batch_id": "$response.body#/batch_id"},
                            }
                        },
                    },
                    **_errors(400, 413, 503),
                },
            }
        },
        "/batches/{batch_id}": {
            "get": {
                "operationId": "getBatch",
                "summary": "A batch's status, progress and jobs",
                "parameters": [_path_id("batch_id", "batch")],
                "responses": {
                    "200": {"description": "The batch", "content": _json(_ref("Batch"))},
                    **_errors(404, 503),
                },
            }
        },
        "/uploads": {
            "post": {
                "operationId": "createUpload",
                "summary": "A presigned S3 POST for an image too big for POST /jobs",
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["content_type"],
                            "properties": {
                                "filename": {"type": "string", "maxLength": 255},
                                "content_type": {
                                    "type": "string",
                                    "enum": [
                                        "image/jpeg",
                                        "image/png",
                                        "image/gif",
                                        "image/webp",
                                        "image/bmp",
                                        "image/tiff",
                                    ],
                                },
                            },
                        }
                    ),
                },
                "responses": {
                    "201": {"description": "The upload form", "content": _json(_ref("Upload"))},
                    **_errors(400, 415, 503),
                },
            }
        },
        "/webhooks": {
            "post": {
                "operationId": "createWebhook",
                "summary": "Subscribe a URL to job events",
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["url"],
                            "properties": {
                                "url": {"type": "string"},
                                "events": {
                                    "type": "array",
                                    "items": {
                                        "type": "string",
                                        "enum": ["job.succeeded", "job.failed"],
                                    },
                                },
                            },
                        }
                    ),
                },
                "responses": {
                    "201": {
                        "description": "The subscription, with its signing secret",
                        "content": _json(_ref("Webhook")),
                        "links": {
                            "DeleteWebhook": {
                                "operationId": "deleteWebhook",
                                "parameters": {"webhook_id": "$response.body#/id"},
                            }
                        },
                    },
                    **_errors(400, 503),
                },
            },
            "get": {
                "operationId": "listWebhooks",
                "summary": "The caller's subscriptions",
                "responses": {
                    "200": {
                        "description": "Subscriptions (no secrets)",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["webhooks"],
                                "properties": {
                                    "webhooks": {"type": "array", "items": _ref("Webhook")}
                                },
                            }
                        ),
                    },
                    **_errors(503),
                },
            },
        },
        "/webhooks/{webhook_id}": {
            "delete": {
                "operationId": "deleteWebhook",
                "summary": "Remove a subscription",
                "parameters": [_path_id("webhook_id", "subscription")],
                "responses": {"204": {"description": "Deleted"}, **_errors(404, 503)},
            }
        },
        "/account": {
            "get": {
                "operationId": "getAccount",
                "summary": "The caller's tenant and webhook signing secret",
                "responses": {
                    "200": {
                        "description": "The account",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["tenant", "webhook_signing_secret"],
                                "properties": {
                                    "tenant": {"type": "string"},
                                    "webhook_signing_secret": {"type": "string"},
                                },
                            }
                        ),
                    },
                    **_errors(503),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3", "content": _json({})}},
            }
        },
        "/docs": {
            "get": {
                "operationId": "docs",
                "summary": "This document, readable, with no outside resources",
                "security": [],
                "responses": {
                    "200": {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/": {
            "get": {
                "operationId": "webPage",
                "summary": "The web page: upload images, watch their jobs, read the charts, retry",
                "security": [],
                "responses": {
                    "200": {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/static/{name}": {
            "get": {
                "operationId": "webPageFile",
                "summary": "The web page's script and style sheet (a fixed list of names)",
                "security": [],
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "description": "the file's name",
                        "schema": {"type": "string", "enum": sorted(ASSETS)},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The file",
                        "content": {
                            media.split(";")[0]: {"schema": {"type": "string"}}
                            for media in sorted(set(ASSETS.values()))
                        },
                    },
                    "404": {"description": "No such file", "content": _json(_ref("Error"))},
                },
            }
        },
    }


def openapi_document(settings: Settings, *, server_url: str = "/") -> dict[str, Any]:
    """The document, with ``servers`` pointing where the caller reached us."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "imgcls: asynchronous image classification",
            "version": "1.0.0",
            "description": (
                "Submit images, get a job id at once; an ImageNet model (EfficientNet-Lite0) "
                "classifies them in the background. Every operation but the public ones needs "
                'the `x-api-key` header. Errors are `{"error": {"code", "message"}}`.'
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"apiKey": []}],
        "paths": _operations(settings),
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
            "schemas": copy.deepcopy(_SCHEMAS),
        },
    }


@functools.cache
def docs_page() -> str:
    """The ``/docs`` page: renders ``openapi.json`` with inline script and styles only."""
    return (Path(__file__).parent / "docs.html").read_text()
