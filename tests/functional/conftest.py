"""The real service over moto: resources from the real bootstrap, the app's handlers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.aws import AwsClients
from chalicelib.service import JobService
from chalicelib.settings import Settings
from chalicelib.webhooks import DeliveryResult
from chalicelib.wiring import build_service, services_around, set_service, set_services
from infra.bootstrap import Resources, bootstrap
from infra.local import sqs_event

KEY_A = "tenant-a-key-0123456789"
KEY_B = "tenant-b-key-0123456789"

# What the fake DNS knows: public names, and names that point somewhere they must not.
DNS = {
    "example.com": ["93.184.215.14"],
    "hooks.example.org": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "intranet.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "split.example.com": ["93.184.215.14", "192.168.0.10"],
}


def fake_resolve(host: str, port: int) -> list[str]:
    """A resolver that answers from ``DNS`` (and for IP literals), like getaddrinfo would."""
    import ipaddress

    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    if host not in DNS:
        raise OSError(f"[Errno -2] Name or service not known: {host}")
    return DNS[host]


class FakeSender:
    """A webhook receiver stand-in: records every post and answers from a script."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []
        self.answers: list[DeliveryResult] = []  # consumed in order; then 200

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> DeliveryResult:
        self.posts.append((url, body, headers))
        return self.answers.pop(0) if self.answers else DeliveryResult(200)


@dataclass
class Stack:
    """Everything a functional test touches."""

    settings: Settings
    clients: AwsClients
    resources: Resources
    service: JobService
    events_queue_url: str
    sender: FakeSender

    def receive_jobs_event(self, max_messages: int = 10) -> dict[str, Any]:
        """Receive queued job messages as the Lambda SQS event (distinct message ids)."""
        resp = self.clients.sqs.receive_message(
            QueueUrl=self.resources.jobs_queue_url,
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = list(resp.get("Messages", []))  # type: ignore[arg-type]
        return sqs_event(messages, queue_arn=self.resources.jobs_queue_arn, region="us-east-1")

    def published_events(self) -> list[dict[str, Any]]:
        """Job events that reached the topic (through an SQS subscription)."""
        import json

        out: list[dict[str, Any]] = []
        while True:
            resp = self.clients.sqs.receive_message(
                QueueUrl=self.events_queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
            )
            if not resp.get("Messages"):
                return out
            for m in resp["Messages"]:
                envelope = json.loads(m["Body"])
                out.append(
                    {
                        "event": json.loads(envelope["Message"]),
                        "attributes": envelope.get("MessageAttributes", {}),
                    }
                )
                self.clients.sqs.delete_message(
                    QueueUrl=self.events_queue_url, ReceiptHandle=m["ReceiptHandle"]
                )


@pytest.fixture
def stack(moto: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Bootstrap the resources in moto and install a service wired to them."""
    monkeypatch.setenv("API_KEYS", f"a:{KEY_A},b:{KEY_B}")
    monkeypatch.setenv("WEBHOOK_BASE_DELAY_SECONDS", "0")  # retries due at once
    settings = Settings.from_env()
    clients = AwsClients(settings)
    resources = bootstrap(settings, visibility_timeout_s=30, aws=clients)
    for name, value in resources.env().items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    service = build_service(settings, clients, resolve=fake_resolve)
    events_url = clients.sqs.create_queue(QueueName="test-job-events")["QueueUrl"]
    events_arn = clients.sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    clients.sns.subscribe(TopicArn=resources.topic_arn, Protocol="sqs", Endpoint=events_arn)
    sender = FakeSender()
    set_services(services_around(service, clients, sender=sender, resolve=fake_resolve))
    yield Stack(settings, clients, resources, service, events_url, sender)
    set_service(None)
