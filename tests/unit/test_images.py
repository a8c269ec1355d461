"""The door and the decoder, on real photos and on images built to break them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from chalicelib.errors import BadRequest, PayloadTooLarge, PermanentJobError, UnsupportedMediaType
from chalicelib.images import inspect, sniff, to_model_input
from tests.photos import CAT, CHINA, encode

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 50_000_000}


def two_tone(size: tuple[int, int] = (400, 200)) -> Image.Image:
    """Left half red, right half blue: orientation shows in the output."""
    img = Image.new("RGB", size, (255, 0, 0))
    img.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return img


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_supported_formats_are_sniffed_from_bytes(fmt: str, mime: str) -> None:
    data = encode(two_tone(), fmt)
    assert sniff(data) == (fmt, mime)
    info = inspect(data, **LIMITS)
    assert (info.content_type, info.width, info.height) == (mime, 400, 200)


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (b"", BadRequest, "empty_image"),
        (b"just some text", UnsupportedMediaType, "unsupported_image"),
        (b"%PDF-1.4 ...", UnsupportedMediaType, "unsupported_image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', UnsupportedMediaType, "unsupported_image"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", UnsupportedMediaType, "unsupported_image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, UnsupportedMediaType, "undecodable_image"),
    ],
)
def test_door_refuses_what_it_can_refuse(data: bytes, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as info:
        inspect(data, **LIMITS)
    assert info.value.code == code  # type: ignore[attr-defined]


def test_door_names_the_unsupported_format() -> None:
    with pytest.raises(UnsupportedMediaType, match="HEIC"):
        inspect(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", **LIMITS)


def test_door_refuses_too_many_bytes_and_too_many_pixels() -> None:
    data = encode(two_tone(), "PNG")
    with pytest.raises(PayloadTooLarge) as too_big:
        inspect(data, max_bytes=len(data) - 1, max_pixels=10**9)
    assert too_big.value.code == "image_too_large"
    with pytest.raises(PayloadTooLarge) as too_many:
        inspect(data, max_bytes=10**9, max_pixels=400 * 200 - 1)
    assert too_many.value.code == "too_many_pixels"


def test_truncated_jpeg_passes_the_door_but_fails_to_decode() -> None:
    data = encode(Image.open(CAT).convert("RGB"), "JPEG")[:3000]
    inspect(data, **LIMITS)
    with pytest.raises(PermanentJobError) as info:
        to_model_input(data, max_pixels=LIMITS["max_pixels"])
    assert info.value.code == "undecodable_image"


def test_tensor_has_model_shape_and_range() -> None:
    arr = to_model_input(CHINA.read_bytes(), max_pixels=LIMITS["max_pixels"])
    assert arr.shape == (3, 224, 224)
    assert arr.dtype == np.float32
    assert -1.0 <= arr.min() < 0 < arr.max() <= 1.0


def test_exif_orientation_is_honoured() -> None:
    img = two_tone()  # landscape: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90° clockwise turn
    data = encode(img, "JPEG", exif=exif.tobytes(), quality=95)

    arr = to_model_input(data, max_pixels=LIMITS["max_pixels"])

    red, blue = arr[0], arr[2]
    # After a clockwise turn, red (was left) is on top and blue at the bottom.
    assert red[:50].mean() > 0.8
    assert blue[:50].mean() < -0.8
    assert blue[-50:].mean() > 0.8
    assert red[-50:].mean() < -0.8


def gray16() -> bytes:
    img = Image.fromarray(np.full((64, 64), 60000, dtype=np.uint16))
    assert img.mode.startswith("I;16")
    return encode(img, "PNG")


@pytest.mark.parametrize(
    ("label", "data", "expected_rgb"),
    [
        ("grayscale", encode(Image.new("L", (64, 64), 200), "PNG"), (200, 200, 200)),
        (
            "palette",
            encode(Image.new("RGB", (64, 64), (10, 200, 30)).convert("P"), "GIF"),
            (10, 200, 30),
        ),
        (
            "alpha on white",
            encode(Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "PNG"),
            (255, 255, 255),
        ),
        ("gray+alpha", encode(Image.new("LA", (64, 64), (0, 0)), "PNG"), (255, 255, 255)),
        (
            "cmyk jpeg",
            encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=100),
            (255, 0, 0),
        ),
        ("16-bit", gray16(), (233, 233, 233)),
        ("1-bit", encode(Image.new("1", (64, 64), 1), "PNG"), (255, 255, 255)),
    ],
)
def test_every_mode_becomes_rgb(
    label: str, data: bytes, expected_rgb: tuple[int, int, int]
) -> None:
    arr = to_model_input(data, max_pixels=LIMITS["max_pixels"])
    got = tuple(arr[c].mean() * 128 + 127 for c in range(3))
    assert got == pytest.approx(expected_rgb, abs=3), label


def test_transparent_palette_image_is_composited_on_white() -> None:
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 0] * 256)
    buf = io.BytesIO()
    img.save(buf, format="PNG", transparency=0)
    arr = to_model_input(buf.getvalue(), max_pixels=LIMITS["max_pixels"])
    assert arr.min() == pytest.approx(1.0, abs=0.01)


def test_pixel_limit_is_enforced_at_decode_too() -> None:
    with pytest.raises(PermanentJobError) as info:
        to_model_input(encode(two_tone(), "PNG"), max_pixels=100)
    assert info.value.code == "too_many_pixels"


def _reference(img: Image.Image) -> np.ndarray:
    """The crop and resize done in one step on the full-size image, as before any shortcut."""
    w, h = img.size
    side = min(w, h) * 224 / 256
    left, top = (w - side) / 2, (h - side) / 2
    box = (left, top, left + side, top + side)
    out = img.convert("RGB").resize((224, 224), Image.Resampling.BICUBIC, box=box)
    return ((np.asarray(out, dtype=np.float32) - 127.0) / 128.0).transpose(2, 0, 1)


@pytest.mark.parametrize("size", [(4000, 3000), (3000, 4000), (2100, 2099)])
def test_a_large_image_reduced_before_resizing_gives_the_same_tensor(
    size: tuple[int, int],
) -> None:
    photo = ImageOps.fit(Image.open(CAT).convert("RGB"), size, Image.Resampling.BICUBIC)

    arr = to_model_input(encode(photo, "PNG"), max_pixels=LIMITS["max_pixels"])

    assert float(np.abs(arr - _reference(photo)).mean()) < 0.005


def test_a_large_transparent_image_is_still_composited_on_white() -> None:
    img = Image.new("RGBA", (4000, 3000), (255, 0, 0, 0))  # fully transparent red
    img.paste((0, 0, 255, 255), (2000, 0, 4000, 3000))  # the right half opaque blue

    arr = to_model_input(encode(img, "PNG"), max_pixels=LIMITS["max_pixels"])

    assert arr[:, :, :100].min() == pytest.approx(1.0, abs=0.01)  # left: white
    assert arr[2, :, -100:].min() == pytest.approx(1.0, abs=0.01)  # right: blue...
    assert arr[0, :, -100:].max() == pytest.approx(-127 / 128, abs=0.01)  # ...and no red
