"""A corpus of bad, odd and awkward uploads, each with the one outcome it must have.

Refused at the door: a 4xx with ``{"error": {"code", "message"}}`` and nothing stored or queued.
Accepted but undecodable: the job ends FAILED with a reason. Awkward but valid (EXIF-rotated,
CMYK, 16-bit, palette, animated): the job succeeds with the photo's label. Never a 5xx.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from tests import builders
from tests.functional.conftest import Api, Stack
from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, cat_jpeg, encode

BOUNDARY = builders.BOUNDARY
CONTROL = ("\x00", "\x1b", "\n", "\x7f", "\u202e")  # NUL, ESC, newline, DEL, right-to-left


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


def form(data: bytes, field: str = "image") -> Upload:
    return Upload(*builders.multipart([(field, "x.jpg", data)], file_type="image/jpeg"))


def part(disposition: str, data: bytes = b"", content_type: str | None = "image/jpeg") -> bytes:
    """One part, its Content-Disposition written as given (the builder would quote it)."""
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return (head + "\r\n").encode() + data + b"\r\n"


def parts(*chunks: bytes) -> Upload:
    body = b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()
    return Upload(body, f"multipart/form-data; boundary={BOUNDARY}")


@functools.cache
def huge_part_header(field: str = "image") -> bytes:
    """A part whose header is ~560 KB: 64,000 parameters on its Content-Disposition."""
    params = "".join(f"; p{i:04x}=1" for i in range(64_000))
    return part(f'form-data; name="{field}"; filename="x.jpg"{params}', cat_jpeg())


@functools.cache
def tiny_parts(count: int = 40_000) -> bytes:
    """``count`` empty text parts."""
    return b"".join(part(f'form-data; name="f{i}"', content_type=None) for i in range(count))


def hostile_forms(field: str) -> dict[str, Callable[[], Upload]]:
    """Multipart bodies built to cost a parser dear; each must be refused at once."""
    return {
        "5000 unbalanced ( in a part's Content-Disposition": lambda: parts(
            part(f'form-data; name="{field}"; filename="x.jpg" ' + "(" * 5000, cat_jpeg())
        ),
        "a 560 KB part header of 64,000 parameters": lambda: parts(huge_part_header(field)),
        "40,000 tiny parts": lambda: parts(tiny_parts()),
        "a 560 KB part header and 40,000 tiny parts": lambda: parts(
            huge_part_header(field), tiny_parts()
        ),
    }


def deep_json(depth: int, opener: str) -> str:
    """Valid JSON, ``depth`` arrays (``[``) or objects (``{"a":``) deep."""
    closer = "]" if opener == "[" else "}"
    inner = "" if opener == "[" else "null"
    return opener * depth + inner + closer * depth


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
    "zero-byte file in multipart": Case(lambda: form(b""), 400, "empty_image"),
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
        lambda: form(b"data", field="photo"), 400, "missing_image"
    ),
    "JSON nested 100,000 arrays deep": Case(
        lambda: as_json(deep_json(100_000, "[")), 400, "invalid_json", message_has="recursion"
    ),
    "JSON nested 100,000 objects deep": Case(
        lambda: as_json(deep_json(100_000, '{"a":')), 400, "invalid_json", message_has="recursion"
    ),
    **{
        name: Case(make, 400, "invalid_multipart", message_has="cannot be parsed")
        for name, make in hostile_forms("image").items()
    },
    # Comments are allowed in a structured header (RFC 2183, RFC 822): the part is `image`.
    "nested comments in a part's Content-Disposition": Case(
        lambda: parts(part('form-data; name="image" ((((((((((a))))))))))', cat_jpeg())),
        202,
        final="SUCCEEDED",
        classes=CAT_SET,
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
    "animated GIF": Case(lambda: form(animated_gif()), 202, final="SUCCEEDED", classes=CAT_SET),
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


def listed(api: Api) -> list[dict[str, object]]:
    return list(api.get("/jobs").json["jobs"])


@pytest.mark.parametrize("name", list(CASES))
def test_each_kind_of_upload_has_its_one_outcome(api: Api, stack: Stack, name: str) -> None:
    case = CASES[name]
    upload = case.make()

    resp = api.post_image(upload.body, upload.content_type)

    assert resp.status == case.status, resp.body[:300]
    if case.status != 202:
        error = resp.json["error"]
        assert error["code"] == case.code
        assert case.message_has in error["message"]
        assert listed(api) == []  # nothing recorded
        assert stack.receive_jobs_event()["Records"] == []  # nothing queued
        return
    result = api.classify_queued()
    assert result == {"batchItemFailures": []}  # decided for good, not retried
    job = api.get(resp.headers["Location"]).json
    assert job["status"] == case.final
    if case.final == "FAILED":
        assert job["error"]["code"] == case.code
        assert job["error"]["message"]
    else:
        assert job["predictions"][0]["class_id"] in case.classes, job["predictions"]


def test_the_corpus_is_broad() -> None:
    assert len(CASES) >= 15
    assert {c.status for c in CASES.values()} == {202, 400, 413, 415}


@pytest.mark.parametrize("name", list(hostile_forms("images")))
def test_a_hostile_multipart_batch_is_refused_at_once(api: Api, stack: Stack, name: str) -> None:
    upload = hostile_forms("images")[name]()

    resp = api.post("/batches", body=upload.body, headers={"content-type": upload.content_type})

    assert resp.status == 400, resp.body[:300]
    assert resp.error_code == "invalid_multipart"
    assert listed(api) == []  # nothing recorded
    assert stack.receive_jobs_event()["Records"] == []  # nothing queued


ONE_MB = 1024 * 1024
JSON_BODIES = {
    # Deep enough to exhaust a recursive parser, small enough to reach it (64 KB at most).
    "30,000 nested arrays": (deep_json(30_000, "["), 400, "invalid_json", "recursion"),
    "10,000 nested objects": (deep_json(10_000, '{"a":'), 400, "invalid_json", "recursion"),
    # Deeper still: bigger than a JSON body may be, refused before anything parses it.
    "100,000 nested arrays": (deep_json(100_000, "["), 413, "body_too_large", "bytes"),
    "100,000 nested objects": (deep_json(100_000, '{"a":'), 413, "body_too_large", "bytes"),
    "1 MB of valid JSON": (
        json.dumps({"url": "https://example.com/" + "a" * ONE_MB, "content_type": "image/png"}),
        413,
        "body_too_large",
        "bytes",
    ),
}


@pytest.mark.parametrize("path", ["/webhooks", "/uploads"])
@pytest.mark.parametrize("name", list(JSON_BODIES))
def test_a_hostile_json_body_gets_a_clear_4xx(api: Api, path: str, name: str) -> None:
    body, status, code, message_has = JSON_BODIES[name]

    resp = api.post(path, body=body.encode(), headers={"content-type": "application/json"})

    assert (resp.status, resp.error_code) == (status, code)
    assert message_has in resp.json["error"]["message"]
    assert api.get("/webhooks").json["webhooks"] == []  # nothing subscribed


@pytest.mark.parametrize("limit", ["²", "١٢", "５"])
def test_a_limit_of_digits_that_are_not_ascii_is_400(api: Api, limit: str) -> None:
    resp = api.get("/jobs", query={"limit": limit})

    assert resp.status == 400
    assert resp.error_code == "invalid_limit"


def test_control_characters_never_reach_a_jobs_filename(api: Api) -> None:
    names = [f"cat{ch}{i}.jpg" for i, ch in enumerate(CONTROL)]
    files = [("images", name, cat_jpeg()) for name in names]
    body, content_type = builders.multipart(
        [*files, ("images", "not\x1ban\x00image\n.txt", b"hello")]
    )

    resp = api.post("/batches", body=body, headers={"content-type": content_type})

    assert resp.status == 202, resp.body[:300]
    accepted = resp.json
    shown = [api.job(job_id)["filename"] for job_id in accepted["job_ids"]]
    assert shown == [f"cat{i}.jpg" for i in range(len(CONTROL))]
    assert [r["filename"] for r in accepted["rejected"]] == ["notanimage.txt"]
    batch = api.get(accepted["status_url"]).json
    everywhere = [j["filename"] for j in batch["jobs"]] + [r["filename"] for r in batch["rejected"]]
    assert not [name for name in everywhere if any(ch in name for ch in CONTROL)]
