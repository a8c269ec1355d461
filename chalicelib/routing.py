"""Chalice routes from the operation table: one key check, typed inputs, one error boundary.

``Router.route("getJob")`` registers a view for that operation's path and method. The view gets a
``Call`` (the tenant, the body, and the query and headers validated by the operation's models) and
the path parameters, and returns a contract model (answered with the operation's status) or an
``Answer``. Domain errors become ``{"error": {"code", "message"}}`` with their status here, and
only here: Chalice turns a view's exception into its own 500 before any middleware sees it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Chalice, Request
from chalice.app import Response as ChaliceResponse
from pydantic import BaseModel

from chalicelib import contract
from chalicelib.errors import AppError, PayloadTooLarge, ServiceUnavailable, TransientError
from chalicelib.operations import BY_ID, Operation
from chalicelib.telemetry import flush as flush_metrics
from chalicelib.validation import validate, validate_json

log = logging.getLogger(__name__)

JSON = "application/json"
MAX_JSON_BODY = 64 * 1024  # JSON bodies other than images: a subscription, an upload request


@dataclass
class Answer:
    """A response other than the operation's first success status, or with headers."""

    body: BaseModel | None
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class Call:
    """One request, as the view sees it."""

    def __init__(self, request: Request, operation: Operation, tenant: str | None) -> None:
        self.request = request
        self.operation = operation
        self._tenant = tenant

    @property
    def tenant(self) -> str:
        """The tenant whose key authenticated the request."""
        assert self._tenant, f"{self.operation.operation_id} is public: it has no tenant"
        return self._tenant

    @property
    def body(self) -> bytes:
        """The raw request body."""
        raw = self.request.raw_body or b""
        return raw if isinstance(raw, bytes) else raw.encode()

    @property
    def content_type(self) -> str:
        """The request's ``Content-Type`` header, or empty."""
        return str(self.request.headers.get("content-type", ""))

    @property
    def base_path(self) -> str:
        """``/<stage>`` behind API Gateway's default endpoint; empty locally or on a domain."""
        context = self.request.context
        stage, path = context.get("stage", ""), context.get("path", "")
        staged = path == f"/{stage}" or path.startswith(f"/{stage}/")
        return f"/{stage}" if stage and staged else ""

    def query[M: BaseModel](self, model: type[M]) -> M:
        """The query string, validated by ``model``."""
        return validate(model, dict(self.request.query_params or {}))

    def headers[M: BaseModel](self, model: type[M]) -> M:
        """The headers ``model`` names (by alias, case-insensitively), validated."""
        sent = self.request.headers
        wanted = {}
        for name, info in model.model_fields.items():
            alias = info.alias or name
            if alias.lower() in sent:
                wanted[alias] = sent[alias.lower()]
        return validate(model, wanted)

    def json[M: BaseModel](self, model: type[M], *, max_bytes: int = MAX_JSON_BODY) -> M:
        """The body as a JSON object validated by ``model``; an empty body counts as ``{}``."""
        body = self.body
        if len(body) > max_bytes:
            raise PayloadTooLarge(
                f"the JSON body is {len(body)} bytes; at most {max_bytes} are accepted",
                code="body_too_large",
            )
        return validate_json(model, body or b"{}")


def _json_response(body: BaseModel, status: int, headers: Mapping[str, str]) -> ChaliceResponse:
    return ChaliceResponse(
        body=body.model_dump_json(),
        status_code=status,
        headers={"Content-Type": JSON, **headers},
    )


def error_response(error: AppError) -> ChaliceResponse:
    """An ``AppError`` as its JSON answer."""
    body = contract.Error(error=contract.ErrorDetail(code=error.code, message=error.message))
    headers = {"Retry-After": "1"} if error.status == 503 else {}
    return _json_response(body, error.status, {**headers, **error.headers})


class Router:
    """Registers views for operations of the table on a Chalice app."""

    def __init__(
        self,
        app: Chalice,
        *,
        authenticate: Callable[[Mapping[str, str]], str],
        admit: Callable[[str], Mapping[str, str]],
    ) -> None:
        self._app = app
        self._authenticate = authenticate
        self._admit = admit  # the tenant's rate limit: its headers, or RateLimited
        self.public: set[tuple[str, str]] = set()

    def route(self, operation_id: str) -> Callable[[Callable[..., Any]], Any]:
        """Register the decorated view as ``operation_id``."""
        op = BY_ID[operation_id]

        def register(view: Callable[..., Any]) -> Any:
            @functools.wraps(view)
            def wrapped(**params: str) -> ChaliceResponse:
                return self._serve(op, view, params)

            if op.public:
                self.public.add((op.path, op.method))
            options: dict[str, Any] = {"methods": [op.method]}
            if op.bodies:
                options["content_types"] = ["*/*"]
            return self._app.route(op.path, **options)(wrapped)

        return register

    def _serve(
        self, op: Operation, view: Callable[..., Any], params: dict[str, str]
    ) -> ChaliceResponse:
        request = self._app.current_request
        assert request is not None
        limits: Mapping[str, str] = {}
        try:
            tenant = None
            if not op.public:
                tenant = self._authenticate(request.headers)
                limits = self._admit(tenant)
            response = _answer(op, view(Call(request, op, tenant), **params))
        except AppError as exc:
            response = error_response(exc)
        except TransientError as exc:
            log.warning("dependency failing: %s", exc)
            unavailable = ServiceUnavailable("a dependency is unavailable; retry shortly")
            response = error_response(unavailable)
        except Exception:
            log.exception("unhandled error")
            body = contract.Error(
                error=contract.ErrorDetail(code="internal_error", message="internal error")
            )
            response = _json_response(body, 500, {})
        finally:
            flush_metrics()
        response.headers = {**limits, **(response.headers or {})}  # errors after admission too
        return response


def _answer(op: Operation, result: Any) -> ChaliceResponse:
    """The view's result as the HTTP answer the operation documents."""
    if isinstance(result, ChaliceResponse):  # pages and files the table describes as media
        return result
    answer = result if isinstance(result, Answer) else Answer(result, op.replies[0].status)
    reply = op.reply(answer.status)
    if reply.model is None:
        assert answer.body is None, f"{op.operation_id} answers {answer.status} without a body"
        return ChaliceResponse(body="", status_code=answer.status, headers={**answer.headers})
    if not isinstance(answer.body, reply.model):
        raise TypeError(
            f"{op.operation_id} answered {type(answer.body).__name__} for {reply.model.__name__}"
        )
    return _json_response(answer.body, answer.status, answer.headers)
