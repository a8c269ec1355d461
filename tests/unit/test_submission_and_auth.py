"""Request parsing, settings and API keys."""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.errors import (
    BadRequest,
    ConfigurationError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from chalicelib.settings import Settings, parse_api_keys
from chalicelib.submission import Submission, parse_submission

IMG = b"\x89PNG\r\n\x1a\nfake"


def parse(
    ctype: str, body: bytes, query: dict[str, str] | None = None, max_bytes: int = 10_000
) -> Submission:
    return parse_submission(content_type=ctype, body=body, query=query or {}, max_bytes=max_bytes)


def test_raw_body_with_webhook_in_query() -> None:
    sub = parse("image/png", IMG, {"webhook_url": "https://h.example/x"})
    assert (sub.data, sub.webhook_url) == (IMG, "https://h.example/x")


def test_json_accepts_plain_and_data_url_base64() -> None:
    encoded = base64.b64encode(IMG).decode()
    assert parse("application/json", json.dumps({"image_base64": encoded}).encode()).data == IMG
    data_url = json.dumps({"image_base64": f"data:image/png;base64,{encoded}"}).encode()
    assert parse("application/json; charset=utf-8", data_url).data == IMG


def test_multipart_takes_image_and_webhook_fields() -> None:
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + IMG + b"\r\n"
        b'--XX\r\nContent-Disposition: form-data; name="webhook_url"\r\n\r\n'
        b"https://h.example/m\r\n--XX--\r\n"
    )
    sub = parse("multipart/form-data; boundary=XX", body)
    assert (sub.data, sub.webhook_url) == (IMG, "https://h.example/m")


@pytest.mark.parametrize(
    ("ctype", "body", "error", "code"),
    [
        ("image/png", b"", BadRequest, "empty_body"),
        ("text/html", b"<html>", UnsupportedMediaType, "unsupported_content_type"),
        ("application/json", b"[1, 2]", BadRequest, "invalid_json"),
        ("application/json", b'{"image_base64": 5}', BadRequest, "missing_image"),
        (
            "application/json",
            b'{"image_base64": "a", "webhook_url": 3}',
            BadRequest,
            "invalid_base64",
        ),
        ("multipart/form-data", b"--x--", BadRequest, "invalid_multipart"),
        ("image/png", b"x" * 100_000, PayloadTooLarge, "image_too_large"),
    ],
)
def test_malformed_requests(ctype: str, body: bytes, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as info:
        parse(ctype, body)
    assert info.value.code == code  # type: ignore[attr-defined]


def test_api_keys_parse_and_refuse_weak_or_malformed() -> None:
    assert parse_api_keys("a:aaaaaaaaaaaaaaaa, b:bbbbbbbbbbbbbbbb") == {
        "aaaaaaaaaaaaaaaa": "a",
        "bbbbbbbbbbbbbbbb": "b",
    }
    for bad in ("nocolon", "a:short", ":aaaaaaaaaaaaaaaa"):
        with pytest.raises(ConfigurationError):
            parse_api_keys(bad)


def test_settings_refuse_nonsense_numbers() -> None:
    with pytest.raises(ConfigurationError, match="MAX_IMAGE_BYTES"):
        Settings.from_env({"MAX_IMAGE_BYTES": "lots"})
    with pytest.raises(ConfigurationError, match="MAX_IMAGE_PIXELS"):
        Settings.from_env({"MAX_IMAGE_PIXELS": "0"})
    assert Settings.from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}).endpoint_url == (
        "http://127.0.0.1:1"
    )
