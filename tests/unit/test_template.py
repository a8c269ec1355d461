"""The SAM template `make package` builds declares the whole system the way the code expects it."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from chalicelib.image_store import INCOMING_PREFIX, UPLOADS_PREFIX
from chalicelib.job_store import OPEN_INDEX, OWNER_INDEX
from chalicelib.settings import NOTIFY_QUEUE_NAME, Settings
from infra.bootstrap import MAX_RECEIVE_COUNT, bootstrap
from infra.local import chalice_config, config_environment, function_setting
from tests.sam_template import load_sam, references

# Chalice's default timeout for a function config.json does not mention (the ingest handler).
DEFAULT_LAMBDA_TIMEOUT = 60
BUCKET_NAME = {"Fn::Sub": "imgcls-images-${AWS::AccountId}-${AWS::Region}"}


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_sam()


@pytest.fixture(scope="module")
def resources(sam: dict[str, Any]) -> dict[str, Any]:
    return dict(sam["Resources"])


def props(resources: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(resources[name]["Properties"])


def test_images_bucket_is_private_and_encrypted(resources: dict[str, Any]) -> None:
    bucket = props(resources, "ImagesBucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rules = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    deny = props(resources, "ImagesBucketPolicy")["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_images_bucket_name_is_per_account_and_region_not_global(
    resources: dict[str, Any],
) -> None:
    # Bucket names are global: a literal name would collide with any other deployment.
    assert props(resources, "ImagesBucket")["BucketName"] == BUCKET_NAME


def test_images_bucket_accepts_a_browser_presigned_post_from_any_origin(
    resources: dict[str, Any],
) -> None:
    (rule,) = props(resources, "ImagesBucket")["CorsConfiguration"]["CorsRules"]
    assert "POST" in rule["AllowedMethods"]
    assert rule["AllowedOrigins"] == ["*"]
    for header in ("content-type", "x-amz-date", "x-amz-security-token"):
        assert any(fnmatch.fnmatch(header, allowed.lower()) for allowed in rule["AllowedHeaders"])
    assert "ETag" in rule["ExposedHeaders"]


def test_incomplete_uploads_are_cleaned_up(resources: dict[str, Any]) -> None:
    rules = props(resources, "ImagesBucket")["LifecycleConfiguration"]["Rules"]
    assert {"DaysAfterInitiation": 1} in [r.get("AbortIncompleteMultipartUpload") for r in rules]


def test_uploads_and_bulk_drops_are_announced_on_the_ingest_queue(
    resources: dict[str, Any],
) -> None:
    notifications = props(resources, "ImagesBucket")["NotificationConfiguration"][
        "QueueConfigurations"
    ]
    assert {n["Event"] for n in notifications} == {"s3:ObjectCreated:*"}
    assert {json.dumps(n["Queue"]) for n in notifications} == {
        json.dumps({"Fn::GetAtt": ["IngestQueue", "Arn"]})
    }
    prefixes = sorted(r["Value"] for n in notifications for r in n["Filter"]["S3Key"]["Rules"])
    assert prefixes == sorted([INCOMING_PREFIX, UPLOADS_PREFIX])


def test_ingest_queue_redrives_to_its_own_dlq_and_outlasts_its_handler(
    resources: dict[str, Any],
) -> None:
    queue = props(resources, "IngestQueue")
    timeout = function_setting(chalice_config(), "ingest", "lambda_timeout", DEFAULT_LAMBDA_TIMEOUT)
    assert queue["QueueName"] == "imgcls-ingest"
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]},
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    }
    assert props(resources, "IngestDeadLetterQueue")["QueueName"] == "imgcls-ingest-dlq"


def test_only_the_images_bucket_may_send_to_the_ingest_queue(resources: dict[str, Any]) -> None:
    policy = props(resources, "IngestQueuePolicy")
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert policy["Queues"] == [{"Ref": "IngestQueue"}]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::" + BUCKET_NAME["Fn::Sub"]
    }
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }


def test_bucket_waits_for_the_queue_policy_without_a_cycle(resources: dict[str, Any]) -> None:
    # S3 checks that it may send to the queue when the notification is set: the policy must exist
    # first, so it cannot refer to the bucket itself (it names it instead).
    assert "IngestQueuePolicy" in resources["ImagesBucket"]["DependsOn"]
    assert "ImagesBucket" not in set(references(resources["IngestQueuePolicy"]))


def test_jobs_table_is_on_demand_with_owner_index_ttl_and_backups(
    resources: dict[str, Any],
) -> None:
    table = props(resources, "JobsTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    index, unfinished = table["GlobalSecondaryIndexes"]
    assert unfinished == {
        "IndexName": OPEN_INDEX,
        "KeySchema": [
            {"AttributeName": "open_owner", "KeyType": "HASH"},
            {"AttributeName": "created_at", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["pixels"]},
    }
    assert index["IndexName"] == OWNER_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": "owner", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_table_and_queues_match_what_the_bootstrap_creates_on_the_emulator(
    resources: dict[str, Any], moto: None
) -> None:
    from chalicelib.aws import AwsClients

    settings = Settings.from_env({})
    clients = AwsClients(settings)
    created = bootstrap(settings, visibility_timeout_s=30, aws=clients)
    table = clients.dynamodb.describe_table(TableName=created.table)["Table"]
    declared = props(resources, "JobsTable")

    assert table["KeySchema"] == declared["KeySchema"]
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        (a["AttributeName"], a["AttributeType"]) for a in declared["AttributeDefinitions"]
    }
    assert [
        (i["IndexName"], i["KeySchema"], i["Projection"]["ProjectionType"])
        for i in table.get("GlobalSecondaryIndexes", [])
    ] == [
        (i["IndexName"], i["KeySchema"], i["Projection"]["ProjectionType"])
        for i in declared["GlobalSecondaryIndexes"]
    ]
    assert settings.jobs_queue == props(resources, "JobsQueue")["QueueName"]
    assert f"{settings.jobs_queue}-dlq" == props(resources, "JobsDeadLetterQueue")["QueueName"]
    assert settings.topic_name == props(resources, "JobEventsTopic")["TopicName"]


def test_queue_and_topic_names_are_the_ones_the_functions_subscribe_to(
    resources: dict[str, Any],
) -> None:
    # The decorators in app.py name queues and topics; config.json gives those names.
    env = config_environment(chalice_config())
    assert props(resources, "JobsQueue")["QueueName"] == env["JOBS_QUEUE"]
    assert props(resources, "JobEventsTopic")["TopicName"] == env["JOB_EVENTS_TOPIC"]
    assert props(resources, "JobEventsTopic")["TopicName"] == "imgcls-job-events"


def _alarm(resources: dict[str, Any], metric: str, target: str) -> dict[str, Any]:
    found = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["MetricName"] == metric
        and target in set(references(r["Properties"]["Dimensions"]))
    ]
    assert len(found) == 1, f"one alarm on {metric} of {target}"
    return dict(found[0])


def test_alarms_watch_dead_letters_classifier_errors_and_queue_age(
    resources: dict[str, Any],
) -> None:
    dlq = _alarm(resources, "ApproximateNumberOfMessagesVisible", "JobsDeadLetterQueue")
    errors = _alarm(resources, "Errors", "Classify")
    age = _alarm(resources, "ApproximateAgeOfOldestMessage", "JobsQueue")

    assert (dlq["Namespace"], dlq["Threshold"]) == ("AWS/SQS", 0)
    assert (errors["Namespace"], errors["Threshold"]) == ("AWS/Lambda", 0)
    assert dlq["ComparisonOperator"] == errors["ComparisonOperator"] == "GreaterThanThreshold"
    assert age["Namespace"] == "AWS/SQS"
    assert age["ComparisonOperator"] == "GreaterThanThreshold"
    # Longer than a retried message waits between two attempts, shorter than its five attempts.
    visibility = props(resources, "JobsQueue")["VisibilityTimeout"]
    assert visibility < age["Threshold"] < MAX_RECEIVE_COUNT * visibility
    for alarm in (dlq, errors, age):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["TreatMissingData"] == "notBreaching"
    for queue in ("IngestDeadLetterQueue", "NotifyDeadLetterQueue", "WebhooksDeadLetterQueue"):
        other = _alarm(resources, "ApproximateNumberOfMessagesVisible", queue)
        assert (other["Threshold"], other["AlarmActions"]) == (0, [{"Ref": "AlarmTopic"}])


def test_tenants_table_and_webhooks_queue_match_the_bootstrap(resources: dict[str, Any]) -> None:
    tenants = props(resources, "TenantsTable")
    assert tenants["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert tenants["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    webhooks = props(resources, "WebhooksQueue")
    timeout = function_setting(chalice_config(), "deliver_webhooks", "lambda_timeout", 60)
    assert webhooks["QueueName"] == Settings.from_env({}).webhooks_queue
    assert webhooks["VisibilityTimeout"] >= 6 * timeout
    assert webhooks["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVE_COUNT


def test_job_events_reach_the_notify_function_through_a_queue_that_keeps_them(
    resources: dict[str, Any],
) -> None:
    subscription = props(resources, "JobEventsToNotifyQueue")
    assert subscription == {
        "TopicArn": {"Ref": "JobEventsTopic"},
        "Protocol": "sqs",
        "Endpoint": {"Fn::GetAtt": ["NotifyQueue", "Arn"]},
        # The event as the message body, the tenant as a message attribute: no envelope.
        "RawMessageDelivery": True,
    }
    (statement,) = props(resources, "NotifyQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Ref": "JobEventsTopic"}
    queue = props(resources, "NotifyQueue")
    assert queue["QueueName"] == NOTIFY_QUEUE_NAME
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["NotifyDeadLetterQueue", "Arn"]
    }
    source = props(resources, "Notify")["Events"]["NotifySqsEventSource"]
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_alarm_email_is_optional(sam: dict[str, Any]) -> None:
    subscription = sam["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert sam["Parameters"]["AlarmEmail"]["Default"] == ""


def test_functions_take_resource_names_from_the_stack_not_from_config(
    sam: dict[str, Any],
) -> None:
    stack_env = sam["Globals"]["Function"]["Environment"]["Variables"]
    assert stack_env == {
        "IMAGES_BUCKET": {"Ref": "ImagesBucket"},
        "JOBS_TABLE": {"Ref": "JobsTable"},
        "JOBS_QUEUE_URL": {"Ref": "JobsQueue"},
        "JOB_EVENTS_TOPIC_ARN": {"Ref": "JobEventsTopic"},
        "TENANTS_TABLE": {"Ref": "TenantsTable"},
        "WEBHOOKS_QUEUE_URL": {"Ref": "WebhooksQueue"},
    }
    # A function's own variable beats Globals: none may shadow these (config.json sets none).
    for name, resource in sam["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            own = resource["Properties"].get("Environment", {}).get("Variables", {})
            assert not set(own) & set(stack_env), name


def test_api_keys_come_from_a_secret_parameter(sam: dict[str, Any]) -> None:
    api_env = sam["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api_env["API_KEYS"] == {"Ref": "ApiKeys"}
    assert sam["Parameters"]["ApiKeys"]["NoEcho"] is True
    for name in ("Classify", "DeadLetters"):
        assert "API_KEYS" not in sam["Resources"][name]["Properties"]["Environment"]["Variables"]


def _roles(resources: dict[str, Any]) -> dict[str, str]:
    """Each function's role, by logical id."""
    return {
        name: r["Properties"]["Role"]["Fn::GetAtt"][0]
        for name, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def test_each_function_has_a_role_of_its_own_that_grants_nothing_on_everything(
    resources: dict[str, Any],
) -> None:
    # What each role grants is checked against what the code calls in
    # tests/functional/test_least_privilege.py; here, the shape.
    roles = _roles(resources)
    assert len(set(roles.values())) == len(roles) == 7, roles
    assert "DefaultRole" not in resources  # Chalice's shared role is not made at all
    for function, role in roles.items():
        statements = [
            s
            for p in resources[role]["Properties"]["Policies"]
            for s in p["PolicyDocument"]["Statement"]
        ]
        for statement in statements:
            assert statement["Effect"] == "Allow", (function, statement)
            res = statement["Resource"]
            assert "*" not in (res if isinstance(res, list) else [res]), (function, statement)
            actions = statement["Action"]
            assert not any(a.endswith(":*") or a == "*" for a in actions), (function, statement)


def test_every_function_logs_to_a_group_the_stack_owns_and_expires(
    resources: dict[str, Any],
) -> None:
    # Lambda would create the group itself, kept forever and left behind by delete-stack.
    groups = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    functions = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    assert len(functions) >= 3
    for name in functions:
        assert groups[f"/aws/lambda/${{{name}}}"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_outputs_say_where_everything_is(sam: dict[str, Any]) -> None:
    outputs = sam["Outputs"]
    assert "execute-api" in outputs["EndpointURL"]["Value"]["Fn::Sub"]
    assert outputs["ImagesBucketName"]["Value"] == {"Ref": "ImagesBucket"}
    assert outputs["JobsTableName"]["Value"] == {"Ref": "JobsTable"}
    assert outputs["JobEventsTopicArn"]["Value"] == {"Ref": "JobEventsTopic"}
    for queue in ("JobsQueue", "JobsDeadLetterQueue", "IngestQueue", "IngestDeadLetterQueue"):
        assert outputs[f"{queue}Url"]["Value"] == {"Ref": queue}
