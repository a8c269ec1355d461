"""Every response a test receives is checked against the served OpenAPI document (openapi-core).

A response whose status, headers or body the document does not describe for that operation
fails the test that received it. Requests to paths the document has no operation for (a
deliberately unknown route, say) are not checked; they are counted.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.media_types.util import plain_loads
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

from chalicelib.openapi import openapi_document


@functools.cache
def _spec() -> OpenAPI:
    # openapi-core reads only text/html and text/plain bodies as text; the page's script and
    # style sheet are text too, and so are the exports (CSV, JSON Lines).
    text: dict[str, Callable[[bytes], Any]] = {
        media: plain_loads
        for media in ("text/javascript", "text/css", "text/csv", "application/x-ndjson")
    }
    config = Config(extra_media_type_deserializers=text)
    return OpenAPI.from_dict(openapi_document(), config=config)


@dataclass
class _Request:
    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    content_type: str
    body: bytes | None
    full_url_pattern: str


@dataclass
class _Response:
    status_code: int
    content_type: str
    headers: Headers
    data: bytes


@dataclass
class Tally:
    """How many responses were checked, and how many went to no documented operation."""

    checked: int = 0
    unknown: list[str] = field(default_factory=list)


TALLY = Tally()


def check_response(
    *,
    method: str,
    url: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Raise ``AssertionError`` when the document does not describe this response."""
    parts = urlsplit(url)
    host = f"{parts.scheme or 'http'}://{parts.netloc or 'localhost'}"
    request = _Request(
        host_url=host,
        path=parts.path or "/",
        method=method.lower(),
        parameters=RequestParameters(
            query=ImmutableMultiDict(parse_qsl(parts.query)), header=Headers(), path={}
        ),
        content_type="",
        body=None,
        full_url_pattern=f"{host}{parts.path}",
    )
    response_headers = Headers(dict(headers))
    response = _Response(
        status_code=status,
        content_type=response_headers.get("Content-Type", ""),
        headers=response_headers,
        data=body,
    )
    try:
        _spec().validate_response(request, response)
    except (PathNotFound, OperationNotFound):
        TALLY.unknown.append(f"{method} {parts.path}")
        return
    except Exception as exc:
        shown = body[:600].decode(errors="replace")
        raise AssertionError(
            f"{method} {parts.path} answered {status}, which the OpenAPI document does not "
            f"describe: {exc}\nbody: {shown}"
        ) from exc
    TALLY.checked += 1


def json_of(body: bytes) -> Any:
    """A JSON body, or None when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return None
