"""What each Lambda function's code calls on AWS, observed, against what its role grants.

``Observer`` records every AWS call botocore prepares (``before-parameter-build``, which
presigned URLs go through too) with the function on whose behalf it was made; ``needs`` turns the
calls into IAM actions on the template's resources; ``grants`` reads them from a function's role
in the packaged template. A few permissions are not AWS calls the code makes, and are listed in
``implicit_needs`` with the reason for each.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chalicelib.image_store import UPLOADS_PREFIX
from chalicelib.settings import Settings

# The function API Gateway sends each route to: one route goes to the status function.
STATUS_FUNCTION = "StatusFunction"
API_FUNCTION = "APIHandler"
_STATUS_ROUTE = re.compile(r"^GET /jobs/[^/?]+(\?.*)?$")

# Calls whose IAM action is not named like the operation (S3's are documented per operation:
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html and the like).
_ACTIONS = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("sns", "PublishBatch"): "sns:Publish",
}


@dataclass(frozen=True, order=True)
class Need:
    """One IAM action on one resource: a logical id and, for objects and indexes, a path."""

    action: str
    resource: str
    path: str = ""

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}{self.path}"


@dataclass(frozen=True)
class Call:
    """One AWS call as botocore prepared it."""

    service: str
    operation: str
    params: dict[str, Any]
    context: dict[str, Any]


class Observer:
    """Records AWS calls per function while ``acting_as`` says whose they are."""

    def __init__(self) -> None:
        self.function: str | None = None
        self.calls: dict[str, list[Call]] = defaultdict(list)

    def __call__(
        self, event_name: str, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        if self.function is not None:
            _event, service, operation = event_name.split(".", 2)
            self.calls[self.function].append(
                Call(service, operation, dict(params), dict(context or {}))
            )

    @contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        """Calls inside are the function's (one handler runs at a time, on any thread)."""
        previous, self.function = self.function, function
        try:
            yield
        finally:
            self.function = previous


def function_of_request(method: str, path: str) -> str:
    """The function that serves a request once deployed (``infra/template.json``)."""
    return STATUS_FUNCTION if _STATUS_ROUTE.match(f"{method} {path}") else API_FUNCTION


@dataclass(frozen=True)
class Names:
    """Resource names in the test's stack → the template's logical ids."""

    tables: dict[str, str]
    bucket: str
    queues: dict[str, str]
    topics: dict[str, str]

    @classmethod
    def of(cls, settings: Settings, sam: dict[str, Any]) -> Names:
        """The names settings and the template give each resource."""
        resources = sam["Resources"]

        def named(kind: str, prop: str) -> dict[str, str]:
            return {
                r["Properties"][prop]: logical
                for logical, r in resources.items()
                if r["Type"] == kind and prop in r["Properties"]
            }

        return cls(
            tables={settings.table: "JobsTable", settings.tenants_table: "TenantsTable"},
            bucket=settings.bucket,
            queues=named("AWS::SQS::Queue", "QueueName"),
            topics=named("AWS::SNS::Topic", "TopicName"),
        )


def _needs_of_call(
    service: str, operation: str, params: dict[str, Any], context: dict[str, Any], names: Names
) -> set[Need]:
    action = _ACTIONS.get((service, operation), f"{service}:{operation}")
    if service == "dynamodb":
        tables = list(params.get("RequestItems", {})) or [params["TableName"]]
        index = f"/index/{params['IndexName']}" if "IndexName" in params else ""
        return {Need(action, names.tables.get(t, f"?{t}"), index) for t in tables}
    if service == "s3":
        bucket = "ImagesBucket" if params["Bucket"] == names.bucket else f"?{params['Bucket']}"
        if (operation, context.get("is_presign_request")) == ("CreateBucket", True):
            # A presigned POST (botocore builds it on CreateBucket's model, without the key):
            # the service signs forms for one prefix only (``image_store.upload_key``).
            return {Need("s3:PutObject", bucket, f"/{UPLOADS_PREFIX}<presigned POST>")}
        keys = [o["Key"] for o in params.get("Delete", {}).get("Objects", [])]
        keys += [params["Key"]] if "Key" in params else []
        return {Need(action, bucket, f"/{k}") for k in keys} or {Need(action, bucket)}
    if service == "sqs":
        name = params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
        return {Need(action, names.queues.get(name, f"?{name}"))}
    if service == "sns":
        name = params["TopicArn"].rsplit(":", 1)[-1]
        return {Need(action, names.topics.get(name, f"?{name}"))}
    return {Need(action, "?")}


def needs(observer: Observer, names: Names) -> dict[str, set[Need]]:
    """Per function, what its observed calls need."""
    return {
        function: set().union(
            *(_needs_of_call(c.service, c.operation, c.params, c.context, names) for c in calls)
        )
        for function, calls in observer.calls.items()
    }


def functions(sam: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's Lambda functions by logical id."""
    return {
        name: r["Properties"]
        for name, r in sam["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def role_of(sam: dict[str, Any], function: str) -> str:
    """The logical id of the function's role."""
    role = functions(sam)[function]["Role"]
    assert set(role) == {"Fn::GetAtt"}, role
    assert role["Fn::GetAtt"][1] == "Arn", role
    return str(role["Fn::GetAtt"][0])


def implicit_needs(sam: dict[str, Any], function: str) -> dict[Need, str]:
    """What a function needs that is not an AWS call of its code, each with why."""
    logs = f"/aws/lambda/${{AWS::StackName}}-{function}-*:*"
    out = {
        Need("logs:CreateLogStream", "logs", logs): "Lambda writes the function's own logs",
        Need("logs:PutLogEvents", "logs", logs): "Lambda writes the function's own logs",
    }
    for source in functions(sam)[function].get("Events", {}).values():
        if source["Type"] == "SQS":
            arn = source["Properties"]["Queue"]["Fn::Sub"]
            queue = Names.of(Settings.from_env({}), sam).queues[arn.rsplit(":", 1)[-1]]
            for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
                why = "the event source mapping polls the queue with the function's role"
                out[Need(f"sqs:{action}", queue)] = why
    for need, why in _NOT_CALLS.get(function, {}).items():
        out[need] = why
    return out


# Permissions that are not calls: how S3 answers a missing key.
_NO_SUCH_KEY = (
    "S3 answers a GET of a missing key 404 NoSuchKey only to callers that may list the bucket "
    "(403 otherwise), and a missing image must end its job FAILED, not be retried into the DLQ"
)
_NOT_CALLS: dict[str, dict[Need, str]] = {
    "Classify": {Need("s3:ListBucket", "ImagesBucket"): _NO_SUCH_KEY},
    "Ingest": {Need("s3:ListBucket", "ImagesBucket"): _NO_SUCH_KEY},
}


def _resource(value: Any) -> tuple[str, str]:
    """A statement's resource as (logical id, path)."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0]), ""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"]), ""
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = str(value["Fn::Sub"])
        if text.startswith("arn:${AWS::Partition}:logs:"):
            return "logs", text.split(":log-group:", 1)[1]
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}(.*)", text)
        if match:
            return match[1], match[2]
    raise AssertionError(f"a resource the check cannot read: {value!r}")


def grants(sam: dict[str, Any], function: str) -> set[Need]:
    """Every (action, resource) the function's role allows; a path may hold wildcards."""
    role = sam["Resources"][role_of(sam, function)]["Properties"]
    out: set[Need] = set()
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow", statement
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in actions if isinstance(actions, list) else [actions]:
                for res in resources if isinstance(resources, list) else [resources]:
                    out.add(Need(action, *_resource(res)))
    assert not role.get("ManagedPolicyArns"), "managed policies grant what nobody checks"
    return out


def _covers(grant: Need, need: Need) -> bool:
    return (
        grant.action == need.action
        and grant.resource == need.resource
        and fnmatch.fnmatchcase(need.path, grant.path)
    )


def compare(granted: set[Need], needed: set[Need]) -> tuple[list[Need], list[Need]]:
    """(needed but not granted, granted but never needed)."""
    missing = sorted(n for n in needed if not any(_covers(g, n) for g in granted))
    unused = sorted(g for g in granted if not any(_covers(g, n) for n in needed))
    return missing, unused
