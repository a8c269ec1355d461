"""The OpenAPI document says exactly what the app serves; /docs works with no internet."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from openapi_spec_validator import validate

from app import PUBLIC_ROUTES, app
from chalicelib.openapi import openapi_document
from tests.functional.conftest import Stack

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(app) as c:
        yield c


@pytest.fixture
def document(stack: Stack) -> dict[str, Any]:
    return openapi_document(stack.settings)


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method.upper()): op
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def test_the_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)


def test_every_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    served = {(path, method) for path, methods in app.routes.items() for method in methods}
    assert set(operations(document)) == served


def test_public_operations_are_exactly_the_routes_that_need_no_key(
    document: dict[str, Any],
) -> None:
    public = {key for key, op in operations(document).items() if op.get("security") == []}
    assert public == PUBLIC_ROUTES


def test_every_operation_documents_its_parameters_and_auth_errors(
    document: dict[str, Any],
) -> None:
    for (path, _), op in operations(document).items():
        in_path = set(re.findall(r"\{([^}]+)\}", path))
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == in_path, path
        if op.get("security") != []:
            assert {"401", "403"} <= set(op["responses"]), path
        for status, response in op["responses"].items():
            if status.startswith("4") or status.startswith("5"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)


def test_openapi_json_is_served_without_a_key(client: Client, document: dict[str, Any]) -> None:
    resp = client.http.get("/openapi.json")
    assert resp.status_code == 200
    assert resp.json_body == document


def test_docs_page_renders_the_document_with_nothing_from_outside(client: Client) -> None:
    resp = client.http.get("/docs")
    html = resp.body.decode()
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert 'fetch("openapi.json")' in html
    assert re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html) == []
    assert "@import" not in html
