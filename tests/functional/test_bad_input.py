"""A corpus of bad, odd and awkward uploads, each with the one outcome it must have.

Refused at the door: a 4xx with ``{"error": {"code", "message"}}`` and nothing stored or queued.
Accepted but undecodable: the job ends FAILED with a reason. Awkward but valid (EXIF-rotated,
CMYK, 16-bit, palette, animated): the job succeeds with the photo's label. Never a 5xx.
"""

from __future__ import annotations

import base64
import functools
import io
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from chalice.test import Client
from PIL import Image

from app import app
from tests.functional.conftest import KEY_A, Stack
from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, encode


@dataclass(frozen=True)
class Upload:
    """One request body and its Content-Type."""

    body: bytes
    content_type: str


@dataclass(frozen=True)
class Case:
    """An upload and what must become of it."""

    make: Callable[[], Upload]
    status: int  # the answer to POST /jobs
    code: str | None = None  # error code at the door, or of the FAILED job
    final: str | None = None  # SUCCEEDED / FAILED for accepted uploads
    classes: frozenset[int] = frozenset()
    message_has: str = ""


@functools.cache
def cat() -> Image.Image:
    return Image.open(CAT).convert("RGB")


def raw(data: bytes, content_type: str) -> Upload:
    return Upload(data, content_type)


def multipart(data: bytes, field: str = "image") -> Upload:
    body = (
        b"--b0undary\r\n"
        + f'Content-Disposition: form-data; name="{field}"; filename="x.jpg"\r\n'.encode()
        + b"Content-Type: image/jpeg\r\n\r\n"
        + data
        + b"\r\n--b0undary--\r\n"
    )
    return Upload(body, "multipart/form-data; boundary=b0undary")


def as_json(doc: str) -> Upload:
    return Upload(doc.encode(), "application/json")


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


@functools.cache
def huge_png(side: int = 20_000) -> bytes:
    """A real, valid 20000×20000 grayscale PNG (400 M pixels) that compresses to ~400 KB."""
    squeeze = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + one black row
    idat = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def exif_rotated_jpeg() -> bytes:
    """The cat stored lying on its side, with EXIF orientation 6 saying how to stand it up."""
    exif = Image.Exif()
    exif[0x0112] = 6  # display after a 90° clockwise turn
    return encode(cat().rotate(90, expand=True), "JPEG", exif=exif.tobytes(), quality=90)


def cmyk_jpeg() -> bytes:
    return encode(cat().convert("CMYK"), "JPEG", quality=90)


def sixteen_bit_png() -> bytes:
    gray = np.asarray(cat().convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(gray), "PNG")


def animated_gif() -> bytes:
    frames = [cat().convert("P"), cat().transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def rgba_png_with_transparent_border() -> bytes:
    img = cat().convert("RGBA")
    alpha = Image.new("L", img.size, 0)
    alpha.paste(255, (20, 20, img.width - 20, img.height - 20))
    img.putalpha(alpha)
    return encode(img, "PNG")


def over_limit_bmp() -> bytes:
    """An uncompressed BMP just over the 4 MiB limit."""
    return encode(cat().resize((1400, 1000)), "BMP")


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
ICO = b"\x00\x00\x01\x00\x01\x00\x10\x10" + b"\x00" * 64
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
CAT_SET = frozenset(CAT_CLASSES)

CASES: dict[str, Case] = {
    "zero-byte body": Case(lambda: raw(b"", "image/jpeg"), 400, "empty_body"),
    "zero-byte file in multipart": Case(lambda: multipart(b""), 400, "empty_image"),
    "plain text sent as a JPEG": Case(
        lambda: raw(b"hello, world", "image/jpeg"), 415, "unsupported_image"
    ),
    "a text content type": Case(
        lambda: raw(b"hello", "text/plain"), 415, "unsupported_content_type"
    ),
    "PDF": Case(
        lambda: raw(PDF, "application/octet-stream"), 415, "unsupported_image", message_has="PDF"
    ),
    "SVG": Case(lambda: raw(SVG, "image/svg+xml"), 415, "unsupported_image", message_has="SVG"),
    "HEIC": Case(lambda: raw(HEIC, "image/heic"), 415, "unsupported_image", message_has="HEIC"),
    "ICO": Case(lambda: raw(ICO, "image/x-icon"), 415, "unsupported_image", message_has="ICO"),
    "a PNG signature and nothing else": Case(
        lambda: raw(b"\x89PNG\r\n\x1a\n", "image/png"), 415, "undecodable_image"
    ),
    "20000x20000 PNG (decompression bomb)": Case(
        lambda: raw(huge_png(), "image/png"), 413, "too_many_pixels", message_has="20000x20000"
    ),
    "over the 4 MiB byte limit": Case(
        lambda: raw(over_limit_bmp(), "image/bmp"), 413, "image_too_large"
    ),
    "malformed JSON": Case(lambda: as_json('{"image_base64": '), 400, "invalid_json"),
    "JSON that is not an object": Case(lambda: as_json("[1, 2]"), 400, "invalid_json"),
    "malformed base64": Case(lambda: as_json('{"image_base64": "@@@@"}'), 400, "invalid_base64"),
    "base64 of text": Case(
        lambda: as_json(f'{{"image_base64": "{base64.b64encode(b"hi there").decode()}"}}'),
        415,
        "unsupported_image",
    ),
    "multipart without a boundary": Case(
        lambda: Upload(b"--x\r\n\r\n--x--", "multipart/form-data"), 400, "invalid_multipart"
    ),
    "multipart without an image field": Case(
        lambda: multipart(b"data", field="photo"), 400, "missing_image"
    ),
    "truncated JPEG": Case(
        lambda: raw(encode(cat(), "JPEG")[:5000], "image/jpeg"),
        202,
        "undecodable_image",
        final="FAILED",
    ),
    "truncated PNG": Case(
        lambda: raw(COFFEE.read_bytes()[:20000], "image/png"),
        202,
        "undecodable_image",
        final="FAILED",
    ),
    "EXIF-rotated JPEG": Case(
        lambda: raw(exif_rotated_jpeg(), "image/jpeg"), 202, final="SUCCEEDED", classes=CAT_SET
    ),
    "CMYK JPEG": Case(
        lambda: raw(cmyk_jpeg(), "image/jpeg"), 202, final="SUCCEEDED", classes=CAT_SET
    ),
    "16-bit grayscale PNG": Case(
        lambda: raw(sixteen_bit_png(), "image/png"), 202, final="SUCCEEDED", classes=CAT_SET
    ),
    "animated GIF": Case(
        lambda: multipart(animated_gif()), 202, final="SUCCEEDED", classes=CAT_SET
    ),
    "RGBA PNG": Case(
        lambda: raw(rgba_png_with_transparent_border(), "image/png"),
        202,
        final="SUCCEEDED",
        classes=CAT_SET,
    ),
    "a PNG sent as image/jpeg": Case(
        lambda: raw(COFFEE.read_bytes(), "image/jpeg"),
        202,
        final="SUCCEEDED",
        classes=frozenset({ESPRESSO}),
    ),
}


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(app) as c:
        yield c


def listed(client: Client) -> list[dict[str, Any]]:
    resp = client.http.get("/jobs", headers={"x-api-key": KEY_A})
    return list(resp.json_body["jobs"])


@pytest.mark.parametrize("name", list(CASES))
def test_each_kind_of_upload_has_its_one_outcome(client: Client, stack: Stack, name: str) -> None:
    case = CASES[name]
    upload = case.make()

    resp = client.http.post(
        "/jobs",
        headers={"x-api-key": KEY_A, "content-type": upload.content_type},
        body=upload.body,
    )

    assert resp.status_code == case.status, resp.body[:300]
    if case.status != 202:
        error = resp.json_body["error"]
        assert error["code"] == case.code
        assert case.message_has in error["message"]
        assert listed(client) == []  # nothing recorded
        assert stack.receive_jobs_event()["Records"] == []  # nothing queued
        return
    result = client.lambda_.invoke("classify", stack.receive_jobs_event())
    assert result.payload == {"batchItemFailures": []}  # decided for good, not retried
    job = client.http.get(resp.headers["Location"], headers={"x-api-key": KEY_A}).json_body
    assert job["status"] == case.final
    if case.final == "FAILED":
        assert job["error"]["code"] == case.code
        assert job["error"]["message"]
    else:
        assert job["predictions"][0]["class_id"] in case.classes, job["predictions"]


def test_the_corpus_is_broad() -> None:
    assert len(CASES) >= 15
    assert {c.status for c in CASES.values()} == {202, 400, 413, 415}
