"""Image checks at the door, and decoding into the model's input tensor.

The door (``inspect``) decides from the bytes alone, never from a file name or a header:
empty, too large, not an image, a format we do not decode, too many pixels. What passes the door
and still fails to decode (a truncated file, say) fails later, in ``to_model_input``.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from chalicelib.errors import BadRequest, PayloadTooLarge, PermanentJobError, UnsupportedMediaType

# Pillow's own bomb guard (a warning at 89 M pixels, an error at 179 M) is replaced by ours,
# which reads width × height from the header and refuses before any pixel is decoded, with the
# configured limit and a message that names the image's size.
Image.MAX_IMAGE_PIXELS = None
# A photo's EXIF block is read only for its orientation. Pillow warns once per bad tag it skips:
# one JPEG with 4,000 bogus tags wrote 4,000 warnings (8,000 lines) to the log. Malformed
# metadata of a client's file is not ours to report; a tag that matters and cannot be read just
# leaves the image unturned.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")

INPUT_SIZE = 224
CROP_FRACTION = 224 / 256  # EfficientNet's evaluation centre crop

# Formats Pillow decodes for us, by magic bytes, with the MIME type we store.
_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG", "image/png"),
    (b"GIF87a", 0, "GIF", "image/gif"),
    (b"GIF89a", 0, "GIF", "image/gif"),
    (b"BM", 0, "BMP", "image/bmp"),
    (b"II*\x00", 0, "TIFF", "image/tiff"),
    (b"MM\x00*", 0, "TIFF", "image/tiff"),
)

# Formats people send that we recognise but do not decode: named in the 415 message.
_KNOWN_UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "PDF"),
    (b"<svg", "SVG"),
    (b"<?xml", "SVG/XML"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


@dataclass(frozen=True)
class ImageInfo:
    """What the door learnt about an accepted image."""

    format: str
    content_type: str
    width: int
    height: int


def sniff(data: bytes) -> tuple[str, str] | None:
    """(format, MIME type) from the magic bytes, or None when we do not decode it."""
    for magic, offset, fmt, mime in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return fmt, mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", "image/webp"
    return None


def _unsupported_name(data: bytes) -> str | None:
    head = data[:256].lstrip()
    for magic, name in _KNOWN_UNSUPPORTED:
        if head.startswith(magic):
            return name
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIC/HEIF/AVIF"
    return None


def inspect(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Accept or refuse an upload at the door; raises a 4xx ``AppError`` when refused."""
    if not data:
        raise BadRequest("the image is empty", code="empty_image")
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the image is {len(data)} bytes; the limit is {max_bytes} bytes",
            code="image_too_large",
        )
    sniffed = sniff(data)
    if sniffed is None:
        name = _unsupported_name(data)
        what = f"{name} is not supported" if name else "the data is not an image we recognise"
        raise UnsupportedMediaType(
            f"{what}; send JPEG, PNG, GIF, WebP, BMP or TIFF", code="unsupported_image"
        )
    fmt, mime = sniffed
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedMediaType(
            f"the {fmt} header cannot be read: {exc}", code="undecodable_image"
        ) from exc
    _check_pixels(width, height, max_pixels)
    return ImageInfo(format=fmt, content_type=mime, width=width, height=height)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise UnsupportedMediaType("the image has no pixels", code="undecodable_image")
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"the image is {width}x{height} = {width * height} pixels; "
            f"the limit is {max_pixels} pixels",
            code="too_many_pixels",
        )


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any mode → 8-bit RGB: alpha composited on white, 16-bit and float scaled, CMYK converted."""
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if img.mode == "F" and arr.max() <= 1.0:
            top = 1.0
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)  # uint8 → mode L
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        # Pasting through the alpha onto white is the composite over an opaque background,
        # with one full-size copy fewer than Image.alpha_composite (which matters at 48 MP).
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba)
        return flat
    return img if img.mode == "RGB" else img.convert("RGB")


def _reduced_crop(img: Image.Image) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The image and the centre-crop box to resize; a large image comes back already reduced to
    (about) the crop, by the integer box filter that ``resize(reducing_gap=3.0)`` would apply,
    so the full-size image can be freed before the resize."""
    width, height = img.size
    side = min(width, height) * CROP_FRACTION
    left, top = (width - side) / 2, (height - side) / 2
    box = (left, top, left + side, top + side)
    factor = int(side / (INPUT_SIZE * 3.0))
    if factor < 2:
        return img, box
    whole = (
        int(left),
        int(top),
        min(width, math.ceil(left + side)),
        min(height, math.ceil(top + side)),
    )
    small = img.reduce(factor, box=whole)
    shifted = tuple((edge - whole[i % 2]) / factor for i, edge in enumerate(box))
    return small, (shifted[0], shifted[1], shifted[2], shifted[3])


def _draft_request(width: int, height: int) -> tuple[int, int]:
    """The size to ask ``Image.draft`` for: the short side just covers the crop's 256 pixels."""
    scale = min(width, height) / (INPUT_SIZE / CROP_FRACTION)
    return int(width / scale), int(height / scale)


def decoded_pixels(data: bytes) -> int:
    """How many pixels ``to_model_input`` will decode (JPEGs at their draft scale), from the
    header alone; 0 when the header cannot be read (the decode will fail on its own)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format == "JPEG":
                img.draft("RGB", _draft_request(img.width, img.height))
            return int(img.width * img.height)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, ZeroDivisionError):
        return 0


def to_model_input(data: bytes, *, max_pixels: int, draft: bool = True) -> np.ndarray:
    """Decode, orient (EXIF), centre-crop and resize to a (3, 224, 224) float32 array in [-1, 1].

    JPEGs are decoded at a reduced DCT scale that still covers the crop unless ``draft`` is
    False (the full-size decode a naive implementation does; the benchmark compares the two).
    Raises ``PermanentJobError`` when the bytes cannot become an image.
    """
    try:
        opened = Image.open(io.BytesIO(data))
        _check_pixels(opened.width, opened.height, max_pixels)
        if draft and opened.format == "JPEG":
            # Decode at the smallest DCT scale that still covers the crop: far cheaper.
            opened.draft("RGB", _draft_request(opened.width, opened.height))
        opened.load()
        ImageOps.exif_transpose(opened, in_place=True)  # no copy when there is nothing to turn
        img, box = _reduced_crop(_to_rgb(opened))
    except (PayloadTooLarge, UnsupportedMediaType) as exc:
        raise PermanentJobError(exc.code, exc.message) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise PermanentJobError("undecodable_image", f"the image cannot be decoded: {exc}") from exc
    resized = img.resize(
        (INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0
    )
    arr = np.asarray(resized, dtype=np.float32)
    arr = (arr - 127.0) / 128.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1))
