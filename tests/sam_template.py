"""The built SAM template (`make package`), and what CloudFormation makes of it."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAM_JSON = ROOT / "build" / "package" / "sam.json"

_SUB_REF = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def load_sam() -> dict[str, Any]:
    """``build/package/sam.json`` as written by ``make package`` (which ``make test`` runs)."""
    assert SAM_JSON.exists(), "run `make package` (make test does) before the tests"
    return dict(json.loads(SAM_JSON.read_text()))


def translate(sam: dict[str, Any], *, region: str = "us-east-1") -> dict[str, Any]:
    """Expand the ``AWS::Serverless`` transform as CloudFormation does on deploy.

    ``CodeUri`` points at an S3 object first, as ``aws cloudformation package`` leaves it. The
    template names no AWS managed policy, so the transform needs no IAM look-up.
    """
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(sam)
    for resource in template["Resources"].values():
        if "CodeUri" in resource.get("Properties", {}):
            resource["Properties"]["CodeUri"] = "s3://artifacts-bucket/deployment.zip"
    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name=region))
    return dict(translator.translate(template, parameter_values={}))


def references(value: Any) -> Iterator[str]:
    """Logical ids that ``value`` refers to with Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                yield from _SUB_REF.findall(text)
                if isinstance(inner, list):
                    yield from references(inner[1])
            else:
                yield from references(inner)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def dependencies(template: dict[str, Any]) -> dict[str, set[str]]:
    """Every resource's direct dependencies (references and DependsOn) among the resources."""
    resources = template["Resources"]
    graph: dict[str, set[str]] = {}
    for name, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        direct = set(references(resource.get("Properties", {})))
        direct |= {depends_on} if isinstance(depends_on, str) else set(depends_on)
        graph[name] = {d for d in direct if d in resources}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Everything ``start`` waits for, directly or not."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def strings(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (Fn::Sub templates included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from strings(inner)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
