"""The OpenAPI 3.1 document says exactly what the app serves, in a form every generator reads;
/docs works with no internet."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from app import PUBLIC_ROUTES, app
from chalicelib import contract
from chalicelib.openapi import openapi_document
from chalicelib.operations import OPERATIONS
from tests.functional.conftest import Api

METHODS = {"get", "post", "put", "patch", "delete"}
SCHEMAS = "#/components/schemas/"
NULL = {"type": "null"}


@pytest.fixture
def document() -> dict[str, Any]:
    return openapi_document(server_url="/")


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method.upper()): op
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def nodes(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in the document, with its JSON pointer."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from nodes(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from nodes(value, f"{where}/{index}")


def refs(node: Any) -> set[str]:
    """The schema names ``node`` refers to."""
    return {
        obj["$ref"].removeprefix(SCHEMAS)
        for _, obj in nodes(node)
        if isinstance(obj.get("$ref"), str) and obj["$ref"].startswith(SCHEMAS)
    }


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"{SCHEMAS}{model.__name__}"}


def admits_none(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return admits_none(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return type(None) in typing.get_args(annotation)
    return annotation is None or annotation is type(None)


def contract_models(document: dict[str, Any]) -> list[type[BaseModel]]:
    found = (getattr(contract, name, None) for name in document["components"]["schemas"])
    return [m for m in found if isinstance(m, type) and issubclass(m, BaseModel)]


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    served = {(path, method) for path, methods in app.routes.items() for method in methods}

    assert set(operations(document)) == served
    assert {(op.path, op.method) for op in OPERATIONS} == served


def test_public_operations_are_exactly_the_routes_that_need_no_key(
    document: dict[str, Any],
) -> None:
    public = {key for key, op in operations(document).items() if op.get("security") == []}

    assert public == PUBLIC_ROUTES
    assert {(op.path, op.method) for op in OPERATIONS if op.public} == PUBLIC_ROUTES


def test_every_operation_documents_its_parameters_and_auth_errors(
    document: dict[str, Any],
) -> None:
    replies: dict[tuple[str, str], set[str]] = {
        (op.path, op.method): {str(r.status) for r in op.replies} for op in OPERATIONS
    }
    for (path, method), op in operations(document).items():
        in_path = set(re.findall(r"\{([^}]+)\}", path))
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == in_path, path
        if op.get("security") != []:
            assert {"401", "403"} <= set(op["responses"]), path
        for status, response in op["responses"].items():
            # An error is an Error, unless the operation answers that status with a model of
            # its own (readiness: 503 says which dependency is down).
            if status.startswith(("4", "5")) and status not in replies[(path, method)]:
                schema = response["content"]["application/json"]["schema"]
                assert schema == ref(contract.Error), (path, status)


def test_no_schema_has_keywords_beside_a_ref_and_none_says_nullable(
    document: dict[str, Any],
) -> None:
    # OpenAPI 3.0 tools (and the generators built on them) drop every keyword beside a $ref,
    # and know nothing of 3.1's null type spelled as 3.0's `nullable`: both broke clients.
    beside_ref = {
        where: sorted(obj) for where, obj in nodes(document) if "$ref" in obj and len(obj) > 1
    }
    nullable = [where for where, obj in nodes(document) if "nullable" in obj]

    assert nullable == []
    assert beside_ref == {}


@pytest.mark.parametrize(
    ("schema", "field"),
    [("Job", "model"), ("Job", "predictions"), ("Job", "error"), ("JobPage", "next_token")],
)
def test_a_field_that_can_be_null_is_any_of_with_the_null_type(
    document: dict[str, Any], schema: str, field: str
) -> None:
    prop = document["components"]["schemas"][schema]["properties"][field]

    assert set(prop) <= {"anyOf", "default", "title", "description"}, prop
    assert NULL in prop["anyOf"]
    assert len(prop["anyOf"]) == 2


def test_every_field_the_contract_allows_to_be_none_is_any_of_with_null_and_only_those(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    models = contract_models(document)
    assert len(models) >= 20  # the contract's models really are the components

    for model in models:
        for name, info in model.model_fields.items():
            prop = schemas[model.__name__]["properties"][info.alias or name]
            can_be_null = NULL in prop.get("anyOf", [])
            assert can_be_null == admits_none(info.annotation), (model.__name__, name, prop)


def test_every_schema_is_reachable_from_an_operation_or_a_webhook(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    reached = refs(document["paths"]) | refs(document["webhooks"])
    frontier = set(reached)
    while frontier:
        found = set().union(*(refs(schemas.get(name, {})) for name in frontier)) - reached
        reached |= found
        frontier = found

    assert set(schemas) - reached == set()  # no dead schemas
    assert reached <= set(schemas)  # no dangling refs


def test_each_success_answer_is_the_contract_model_the_operation_table_names(
    document: dict[str, Any],
) -> None:
    for op in OPERATIONS:
        responses = document["paths"][op.path][op.method.lower()]["responses"]
        documented = {status for status in responses if status.startswith("2")}
        assert documented == {str(r.status) for r in op.replies if r.status < 300}, op.operation_id
        for reply in op.replies:
            content = responses[str(reply.status)].get("content", {})
            if reply.model is not None:
                assert content == {"application/json": {"schema": ref(reply.model)}}, reply
            else:
                assert set(content) == set(reply.media_types), op.operation_id
                assert refs(content) == set(), op.operation_id


def test_openapi_json_is_served_without_a_key(api: Api) -> None:
    resp = api.get("/openapi.json", key=None)

    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json == openapi_document(server_url="/")


def test_docs_page_renders_the_document_with_nothing_from_outside(api: Api) -> None:
    resp = api.get("/docs", key=None)

    html = resp.body.decode()
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert 'fetch("openapi.json")' in html
    assert re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html) == []
    assert "@import" not in html
