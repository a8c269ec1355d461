"""The template passes cfn-lint, and the SAM transform turns it into what we mean to deploy."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.sam_template import SAM_JSON, dependencies, load_sam, reachable, strings, translate

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
# An ARN the template spells out by name (Chalice's event sources do) rather than by reference.
_NAMED_ARN = re.compile(
    r"^arn:\$\{AWS::Partition\}:(sqs|sns):\$\{AWS::Region\}:\$\{AWS::AccountId\}:(.+)$"
)


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_sam()


@pytest.fixture(scope="module")
def deployed(sam: dict[str, Any]) -> dict[str, Any]:
    return translate(sam)


def test_cfn_lint_finds_nothing_in_the_built_template() -> None:
    # Informational checks too: every stateful resource states what deleting the stack does.
    result = subprocess.run(
        [str(CFN_LINT), "--include-checks", "I", "--", str(SAM_JSON)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"cfn-lint findings:\n{result.stdout}{result.stderr}"
    assert result.stdout.strip() == ""


def test_cfn_lint_does_catch_a_broken_resource(sam: dict[str, Any]) -> None:
    from cfnlint.api import lint

    broken = copy.deepcopy(sam)
    table = broken["Resources"]["JobsTable"]["Properties"]
    table["KeySchema"][0]["KeyType"] = "PRIMARY"
    broken["Resources"]["JobsQueue"]["Properties"]["VisibilityTimeout"] = 100_000

    findings = lint(json.dumps(broken))

    paths = [" ".join(str(p) for p in m.path) for m in findings]
    assert any("JobsTable" in p and "KeyType" in p for p in paths), paths
    assert any("JobsQueue" in p and "VisibilityTimeout" in p for p in paths), paths


def test_sam_transform_makes_one_partial_batch_mapping_per_sqs_handler(
    deployed: dict[str, Any],
) -> None:
    mappings = {
        name: r["Properties"]
        for name, r in deployed["Resources"].items()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    assert {m["FunctionName"]["Ref"] for m in mappings.values()} >= {"Classify", "DeadLetters"}
    for name, mapping in mappings.items():
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
    classify = next(m for m in mappings.values() if m["FunctionName"] == {"Ref": "Classify"})
    assert classify["BatchSize"] == 10
    assert deployed["Resources"]["Classify"]["Properties"]["ReservedConcurrentExecutions"] == 1


def test_every_function_gets_the_stacks_resource_names(deployed: dict[str, Any]) -> None:
    functions = {
        name: r["Properties"]
        for name, r in deployed["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert {"APIHandler", "Classify", "DeadLetters"} <= set(functions)
    for name, function in functions.items():
        env = function["Environment"]["Variables"]
        assert env["IMAGES_BUCKET"] == {"Ref": "ImagesBucket"}, name
        assert env["JOBS_TABLE"] == {"Ref": "JobsTable"}, name
        assert env["JOBS_QUEUE_URL"] == {"Ref": "JobsQueue"}, name
        assert env["JOB_EVENTS_TOPIC_ARN"] == {"Ref": "JobEventsTopic"}, name
    roles = {name: function["Role"]["Fn::GetAtt"][0] for name, function in functions.items()}
    assert len(set(roles.values())) == len(roles), roles  # each function a role of its own
    assert functions["APIHandler"]["Environment"]["Variables"]["API_KEYS"] == {"Ref": "ApiKeys"}


def test_nothing_names_a_queue_or_topic_before_it_exists(deployed: dict[str, Any]) -> None:
    # Chalice points event sources at ARNs built from names, which CloudFormation cannot see as
    # dependencies: without an explicit one, a first deploy may map a function to a queue that
    # does not exist yet.
    resources = deployed["Resources"]
    declared = {
        ("sqs", r["Properties"]["QueueName"]): name
        for name, r in resources.items()
        if r["Type"] == "AWS::SQS::Queue"
    } | {
        ("sns", r["Properties"]["TopicName"]): name
        for name, r in resources.items()
        if r["Type"] == "AWS::SNS::Topic" and "TopicName" in r["Properties"]
    }
    graph = dependencies(deployed)
    checked = 0
    for name, resource in resources.items():
        for text in strings(resource.get("Properties", {})):
            match = _NAMED_ARN.match(text)
            if match and (match[1], match[2]) in declared:
                target = declared[(match[1], match[2])]
                assert target in reachable(graph, name), f"{name} may be created before {target}"
                checked += 1
    assert checked >= 2  # the classify and dead-letter mappings at least
