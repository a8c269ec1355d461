"""Request parsing (raw, JSON, multipart with its limits), settings and API keys."""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.contract import SubmitQuery
from chalicelib.errors import (
    AppError,
    BadRequest,
    ConfigurationError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from chalicelib.forms import MAX_HEADER_BYTES, MAX_HEADERS, clean_filename, parse_form
from chalicelib.settings import Settings, parse_api_keys
from chalicelib.submission import Submission, parse_submission
from tests.builders import multipart

IMG = b"\x89PNG\r\n\x1a\nfake"


def parse(
    ctype: str, body: bytes, webhook_url: str | None = None, max_bytes: int = 10_000
) -> Submission:
    return parse_submission(
        content_type=ctype,
        body=body,
        query=SubmitQuery(webhook_url=webhook_url),
        max_bytes=max_bytes,
    )


def one_part(*header_lines: str, boundary: str = "B") -> tuple[bytes, str]:
    """A body of one file part ``image`` with extra header lines (the builder writes two)."""
    headers = "".join(f"{line}\r\n" for line in header_lines)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            f"{headers}\r\n"
        ).encode()
        + IMG
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


# --- parse_submission --------------------------------------------------------------------------


def test_raw_body_with_webhook_in_query() -> None:
    sub = parse("image/png", IMG, "https://h.example/x")
    assert (sub.data, sub.webhook_url) == (IMG, "https://h.example/x")


def test_json_accepts_plain_and_data_url_base64() -> None:
    encoded = base64.b64encode(IMG).decode()
    assert parse("application/json", json.dumps({"image_base64": encoded}).encode()).data == IMG
    data_url = json.dumps({"image_base64": f"data:image/png;base64,{encoded}"}).encode()
    assert parse("application/json; charset=utf-8", data_url).data == IMG


def test_multipart_takes_image_and_webhook_fields() -> None:
    body, ctype = multipart(
        [("image", "a.png", IMG)], {"webhook_url": "https://h.example/m"}, file_type="image/png"
    )
    sub = parse(ctype, body)
    assert (sub.data, sub.webhook_url) == (IMG, "https://h.example/m")


def test_a_webhook_in_the_body_wins_over_the_query() -> None:
    # GIVEN a webhook URL both in the query and in the body
    query_url, body_url = "https://h.example/query", "https://h.example/body"
    form, ctype = multipart([("image", "a.png", IMG)], {"webhook_url": body_url})
    doc = json.dumps({"image_base64": base64.b64encode(IMG).decode(), "webhook_url": body_url})

    # WHEN each is parsed; THEN the body's URL is the job's
    assert parse(ctype, form, query_url).webhook_url == body_url
    assert parse("application/json", doc.encode(), query_url).webhook_url == body_url
    # and a body without one keeps the query's
    bare, ctype = multipart([("image", "a.png", IMG)])
    assert parse(ctype, bare, query_url).webhook_url == query_url


@pytest.mark.parametrize(
    ("ctype", "body", "status", "code"),
    [
        ("image/png", b"", 400, "empty_body"),
        ("text/html", b"<html>", 415, "unsupported_content_type"),
        ("application/json", b"[1, 2]", 400, "invalid_json"),
        ("application/json", b"{not json", 400, "invalid_json"),
        ("application/json", b'{"image_base64": 5}', 400, "missing_image"),
        ("application/json", b'{"image_base64": "a"}', 400, "invalid_base64"),
        (
            "application/json",
            json.dumps({"image_base64": base64.b64encode(IMG).decode(), "webhook_url": 3}).encode(),
            400,
            "invalid_webhook_url",
        ),
        ("multipart/form-data", b"--x--", 400, "invalid_multipart"),
        (multipart()[1], multipart(fields={"note": "x"})[0], 400, "missing_image"),
        ("image/png", b"x" * 100_000, 413, "image_too_large"),
    ],
)
def test_malformed_requests(ctype: str, body: bytes, status: int, code: str) -> None:
    with pytest.raises(AppError) as info:
        parse(ctype, body)
    assert (info.value.status, info.value.code) == (status, code)


def test_errors_of_the_door_keep_their_classes() -> None:
    with pytest.raises(BadRequest):
        parse("image/png", b"")
    with pytest.raises(UnsupportedMediaType):
        parse("text/html", b"<html>")
    with pytest.raises(PayloadTooLarge):
        parse("image/png", b"x" * 100_000)


# --- multipart limits --------------------------------------------------------------------------


def test_a_part_header_line_over_4096_bytes_is_invalid_multipart() -> None:
    # GIVEN one header line at the limit, and one a byte over it
    prefix = "X-Long: "
    at_limit = one_part(prefix + "v" * (MAX_HEADER_BYTES - len(prefix)))
    over = one_part(prefix + "v" * (MAX_HEADER_BYTES - len(prefix) + 1))

    # WHEN parsed; THEN the first passes and the second is refused
    assert parse_form(at_limit[1], at_limit[0], max_parts=8).files["image"][0].data == IMG
    with pytest.raises(BadRequest) as info:
        parse_form(over[1], over[0], max_parts=8)
    assert info.value.code == "invalid_multipart"


def test_a_file_name_longer_than_a_part_header_may_be_is_invalid_multipart() -> None:
    body, ctype = multipart([("image", "a" * MAX_HEADER_BYTES + ".png", IMG)])
    with pytest.raises(BadRequest) as info:
        parse_form(ctype, body, max_parts=8)
    assert info.value.code == "invalid_multipart"


def test_more_parts_than_max_parts_is_invalid_multipart() -> None:
    fields = {f"field{i}": "x" for i in range(3)}
    allowed, ctype = multipart([("image", "a.png", IMG)], fields)  # four parts
    too_many, _ = multipart([("image", "a.png", IMG)], {**fields, "one_more": "x"})

    assert parse_form(ctype, allowed, max_parts=4).fields == fields
    with pytest.raises(BadRequest) as info:
        parse_form(ctype, too_many, max_parts=4)
    assert info.value.code == "invalid_multipart"


def test_more_than_8_headers_in_a_part_is_invalid_multipart() -> None:
    # Content-Disposition is the first header; MAX_HEADERS - 1 more make eight.
    eight = one_part(*(f"X-Extra-{i}: v" for i in range(MAX_HEADERS - 1)))
    nine = one_part(*(f"X-Extra-{i}: v" for i in range(MAX_HEADERS)))

    assert parse_form(eight[1], eight[0], max_parts=8).files["image"][0].data == IMG
    with pytest.raises(BadRequest) as info:
        parse_form(nine[1], nine[0], max_parts=8)
    assert info.value.code == "invalid_multipart"


def test_a_submission_of_too_many_parts_is_invalid_multipart() -> None:
    body, ctype = multipart([("image", "a.png", IMG)], {f"f{i}": "x" for i in range(20)})
    with pytest.raises(BadRequest) as info:
        parse(ctype, body)
    assert info.value.code == "invalid_multipart"


@pytest.mark.parametrize(
    "boundary",
    [
        "+++",  # openapi-python-client's generated code sets this one, literally
        "----WebKitFormBoundary7MA4YWxkTrZu0gW",  # a browser's FormData
        "0123456789abcdef0123456789abcdef",  # httpx's own (16 random bytes, hex)
    ],
)
def test_boundaries_clients_really_send_parse(boundary: str) -> None:
    body, ctype = multipart(
        [("image", "a.png", IMG)], {"webhook_url": "https://h.example/m"}, boundary=boundary
    )
    form = parse_form(ctype, body, max_parts=8)
    assert [p.data for p in form.files["image"]] == [IMG]
    assert form.fields == {"webhook_url": "https://h.example/m"}


def test_file_names_lose_control_and_format_characters() -> None:
    # GIVEN a file name with NUL, a control character, bidi overrides and a zero-width space
    body, ctype = multipart([("image", "ca\x00t\x1f\u202egpj\u202c\u200b.png", IMG)])

    [part] = parse_form(ctype, body, max_parts=8).files["image"]

    assert part.filename == "catgpj.png"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("holiday/cat 1.jpg", "holiday/cat 1.jpg"),
        ("Föto 写真.jpg", "Föto 写真.jpg"),
        ("a\tb\r\n.png", "ab.png"),
        ("\u200b\u200e\x7f", None),
        ("   ", None),
        (None, None),
        ("x" * 300, "x" * 255),
    ],
)
def test_clean_filename(given: str | None, kept: str | None) -> None:
    assert clean_filename(given) == kept


# --- settings and keys -------------------------------------------------------------------------


def test_api_keys_parse_and_refuse_weak_or_malformed() -> None:
    assert parse_api_keys("a:aaaaaaaaaaaaaaaa, b:bbbbbbbbbbbbbbbb") == {
        "aaaaaaaaaaaaaaaa": "a",
        "bbbbbbbbbbbbbbbb": "b",
    }
    for bad in ("nocolon", "a:short", ":aaaaaaaaaaaaaaaa"):
        with pytest.raises(ValueError, match="API_KEYS"):
            parse_api_keys(bad)
        with pytest.raises(ConfigurationError, match="API_KEYS"):
            Settings.from_env({"API_KEYS": bad})


def test_settings_refuse_nonsense_numbers() -> None:
    with pytest.raises(ConfigurationError, match="MAX_IMAGE_BYTES"):
        Settings.from_env({"MAX_IMAGE_BYTES": "lots"})
    with pytest.raises(ConfigurationError, match="MAX_IMAGE_PIXELS"):
        Settings.from_env({"MAX_IMAGE_PIXELS": "0"})
    assert Settings.from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}).endpoint_url == (
        "http://127.0.0.1:1"
    )
