"""Webhook targets are vetted (shape, scheme, resolved addresses); bodies are signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time

import pytest

from chalicelib.errors import BadRequest
from chalicelib.webhook_delivery import backoff_s
from chalicelib.webhook_http import HttpSender, sign, verify
from chalicelib.webhook_targets import Policy, vet_url
from tests.functional.conftest import fake_resolve


def vet(url: object, allow: tuple[str, ...] = (), refuse_ports: tuple[int, ...] = ()) -> None:
    policy = Policy(allow=frozenset(allow), refuse_local_ports=frozenset(refuse_ports))
    vet_url(url, policy=policy, resolve=fake_resolve)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("javascript:alert(1)", "https"),
        ("ftp://example.com/x", "https"),
        ("https://", "https"),
        ("/relative", "https"),
        ("x" * 3000, "at most 2048"),
        (42, "URL"),
        ("http://example.com/hook", "must use https"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("https://nowhere.invalid/hook", "does not resolve"),
        ("https://127.0.0.1/hook", "private"),
        ("https://localhost.localdomain.invalid/", "does not resolve"),
        ("https://10.0.0.1/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "private"),
        ("https://[::1]/hook", "private"),
        ("https://[fd00:ec2::254]/hook", "private"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://intranet.example.com/hook", "private"),
        ("https://metadata.example.com/hook", "private"),
        ("https://mapped.example.com/hook", "private"),
        ("https://split.example.com/hook", "private"),  # one bad address is enough
        ("https://example.com:99999/hook", "not a valid URL"),
    ],
)
def test_bad_targets_are_refused_with_the_reason(url: object, why: str) -> None:
    with pytest.raises(BadRequest) as info:
        vet(url)
    assert info.value.code == "invalid_webhook_url"
    assert why in info.value.message


@pytest.mark.parametrize(
    "url",
    ["https://example.com/hook?x=1", "https://hooks.example.org/h", "https://93.184.215.14/h"],
)
def test_public_https_targets_pass(url: str) -> None:
    vet(url)


def test_allow_listed_hosts_may_use_http_and_loopback() -> None:
    vet("http://127.0.0.1:9000/hook", allow=("127.0.0.1",))
    with pytest.raises(BadRequest):
        vet("http://127.0.0.2:9000/hook", allow=("127.0.0.1",))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4566/moto-api/reset",  # the emulator's admin API
        "http://localhost:4566/moto-api/reset",
        "http://0.0.0.0:4566/moto-api/reset",
        "http://[::1]:4566/",
        "http://[::ffff:127.0.0.1]:4566/",
        "http://127.0.0.1:8000/jobs",  # the API itself
    ],
)
def test_this_machines_own_services_are_refused_even_when_loopback_is_allowed(url: str) -> None:
    # GIVEN the local runtime's policy: loopback receivers allowed, its own ports refused
    allow = frozenset({"127.0.0.1", "localhost", "0.0.0.0", "::1", "::ffff:127.0.0.1"})
    policy = Policy(allow=allow, refuse_local_ports=frozenset({4566, 8000}))

    def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1", "::1"] if host == "localhost" else fake_resolve(host, port)

    with pytest.raises(BadRequest, match="own endpoints"):
        vet_url(url, policy=policy, resolve=resolve)


def test_a_receiver_on_another_local_port_is_still_allowed() -> None:
    vet("http://127.0.0.1:9000/hook", allow=("127.0.0.1",), refuse_ports=(4566, 8000))
    vet("https://example.com:4566/hook", refuse_ports=(4566,))  # not this machine


def test_an_allow_list_entry_with_a_port_allows_that_port_only() -> None:
    vet("http://127.0.0.1:9000/hook", allow=("127.0.0.1:9000",))
    with pytest.raises(BadRequest):
        vet("http://127.0.0.1:9001/hook", allow=("127.0.0.1:9000",))
    vet("http://[::1]:9000/hook", allow=("[::1]:9000",))


def test_sender_refuses_a_target_that_now_resolves_privately() -> None:
    sender = HttpSender(policy=Policy(), timeout_s=1, resolve=lambda host, port: ["10.9.9.9"])
    result = sender.post("https://example.com/hook", b"{}", {})
    assert (result.ok, result.status) == (False, None)
    assert result.error is not None
    assert "private" in result.error


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = json.dumps({"id": "e1"}).encode()
    header = sign("whsec_s", body, 1_700_000_000)
    expected = hmac.new(b"whsec_s", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_verify_accepts_fresh_and_refuses_tampered_or_stale() -> None:
    body = b'{"id":"e1"}'
    now = int(time.time())
    assert verify("s", body, sign("s", body, now))
    assert not verify("s", body + b" ", sign("s", body, now))
    assert not verify("other", body, sign("s", body, now))
    assert not verify("s", body, sign("s", body, now - 3600))
    assert not verify("s", body, "garbage")


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_s(n, base_s=30, rng=rng) for n in range(1, 8)]
    ceilings = [30, 60, 120, 240, 480, 900, 900]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
