"""The real service over moto: resources from the real bootstrap, the app's routes and handlers.

``stack`` is the wiring (services, clients, resources); ``api`` is the one way tests talk to the
app: Chalice's test client, with every response checked against the OpenAPI document.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from chalicelib.aws import AwsClients
from chalicelib.settings import Settings
from chalicelib.submit import Submitter
from chalicelib.webhook_http import DeliveryResult
from chalicelib.wiring import Services, build_services, set_services
from infra.bootstrap import Resources, bootstrap
from infra.local import sqs_event
from tests.openapi_check import check_response

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
    """Everything a functional test touches besides the API."""

    settings: Settings
    clients: AwsClients
    resources: Resources
    services: Services
    events_queue_url: str
    sender: FakeSender

    def install(self, **replaced: Any) -> Services:
        """Install the services with some use cases replaced (built around fakes)."""
        self.services = dataclasses.replace(self.services, **replaced)
        set_services(self.services)
        return self.services

    def submitter(self, **replaced: Any) -> Submitter:
        """The installed services' submitter, with some of its collaborators replaced."""
        a = self.services.adapters
        parts: dict[str, Any] = {
            "settings": self.settings,
            "repo": a.repo,
            "images": a.images,
            "queue": a.jobs_queue,
            "caps": self.services.submit.caps,
            "cache": self.services.cache,
            "publisher": a.publisher,
            "resolve": fake_resolve,
        }
        return Submitter(**{**parts, **replaced})

    def receive(self, queue_url: str, max_messages: int = 10) -> dict[str, Any]:
        """Messages waiting on a queue, as the Lambda SQS event (distinct message ids)."""
        resp = self.clients.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = list(resp.get("Messages", []))  # type: ignore[arg-type]
        return sqs_event(messages, queue_arn="arn:aws:sqs:us-east-1:1:q", region="us-east-1")

    def receive_jobs_event(self, max_messages: int = 10) -> dict[str, Any]:
        """Queued job messages as the classifier's SQS event."""
        return self.receive(self.resources.jobs_queue_url, max_messages)

    def published_events(self) -> list[dict[str, Any]]:
        """Job events that reached the topic (through an SQS subscription of the test's)."""
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


@dataclass
class Answer:
    """One HTTP answer of the app."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The JSON body."""
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        """``error.code`` of an error answer."""
        return str(self.json["error"]["code"])


class Api:
    """The app over Chalice's test client; each answer is checked against the OpenAPI document."""

    def __init__(self, client: Client, stack: Stack) -> None:
        self._client = client
        self.stack = stack

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = KEY_A,
        body: bytes = b"",
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> Answer:
        """One request; ``key=None`` sends no API key."""
        sent = dict(headers or {})
        if key is not None:
            sent["x-api-key"] = key
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("content-type", "application/json")
        if query:
            path = f"{path}?{urlencode(query)}"
        resp = self._client.http.request(method, path, headers=sent, body=body)
        answer = Answer(resp.status_code, dict(resp.headers), resp.body or b"")
        check_response(
            method=method,
            url=path,
            status=answer.status,
            headers=answer.headers,
            body=answer.body,
        )
        return answer

    def get(self, path: str, **options: Any) -> Answer:
        """GET ``path``."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Answer:
        """POST ``path``."""
        return self.request("POST", path, **options)

    def delete(self, path: str, **options: Any) -> Answer:
        """DELETE ``path``."""
        return self.request("DELETE", path, **options)

    def post_image(
        self,
        data: bytes,
        content_type: str = "image/jpeg",
        *,
        key: str = KEY_A,
        headers: dict[str, str] | None = None,
        **query: str,
    ) -> Answer:
        """POST /jobs with one image as the raw body (``query`` as the query string)."""
        sent = {"content-type": content_type, **(headers or {})}
        return self.post("/jobs", key=key, body=data, headers=sent, query=query or None)

    def submit(self, data: bytes, content_type: str = "image/jpeg", **options: Any) -> str:
        """POST one image; the job id of the 202."""
        answer = self.post_image(data, content_type, **options)
        assert answer.status == 202, answer.body
        return str(answer.json["job_id"])

    def job(self, job_id: str, key: str = KEY_A) -> dict[str, Any]:
        """GET /jobs/{job_id}, which must answer 200."""
        answer = self.get(f"/jobs/{job_id}", key=key)
        assert answer.status == 200, answer.body
        return dict(answer.json)

    def invoke(self, handler: str, event: dict[str, Any]) -> Any:
        """Invoke an event handler with ``event``; its return value."""
        return self._client.lambda_.invoke(handler, event).payload

    def classify_queued(self, max_messages: int = 10) -> Any:
        """Hand what waits on the jobs queue to the classify handler, as Lambda would."""
        return self.invoke("classify", self.stack.receive_jobs_event(max_messages))


@pytest.fixture
def stack(moto: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Bootstrap the resources in moto and install services wired to them."""
    monkeypatch.setenv("API_KEYS", f"a:{KEY_A},b:{KEY_B}")
    monkeypatch.setenv("WEBHOOK_BASE_DELAY_SECONDS", "0")  # retries due at once
    settings = Settings.from_env()
    clients = AwsClients(settings)
    resources = bootstrap(settings, visibility_timeout_s=30, aws=clients)
    for name, value in resources.env().items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    sender = FakeSender()
    services = build_services(settings, clients, sender=sender, resolve=fake_resolve)
    events_url = clients.sqs.create_queue(QueueName="test-job-events")["QueueUrl"]
    events_arn = clients.sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    clients.sns.subscribe(TopicArn=resources.topic_arn, Protocol="sqs", Endpoint=events_arn)
    set_services(services)
    yield Stack(settings, clients, resources, services, events_url, sender)
    set_services(None)


@pytest.fixture
def api(stack: Stack) -> Iterator[Api]:
    """The app, through Chalice's test client."""
    from app import app

    with Client(app) as client:
        yield Api(client, stack)
