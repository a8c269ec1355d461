"""Benchmark images made from real photos that ship inside installed wheels.

Kinds, as people send them, each made from a real photo (scikit-image, scikit-learn and
matplotlib carry them), the JPEGs with a light film grain so they carry the entropy, and the byte
size, of real camera output: 12-megapixel phone JPEGs (4000x3000), 1080p JPEGs, small PNGs (the
photo as shipped), and web-size images (1024x768 JPEG at quality 85, 640x480 PNG, 800x600 WebP).
Every image stays under the API's 4 MiB limit.

Two mixes of them (``MIXES``): the **ordinary** one, what a service like this mostly sees (one
12 MP JPEG in ten, the rest web-size JPEGs, PNGs and a WebP), and the **heavy** one, a third each
of 12 MP JPEGs, 1080p JPEGs and small PNGs (the benchmark's only mix until 2026-12).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MAX_BYTES = 4 * 1024 * 1024
KINDS = ("jpeg-12mp", "jpeg-1080p", "png-small")  # the heavy mix's kinds, a third each
WEB_KINDS = ("jpeg-web", "png-web", "webp-web")
# Ten slots a mix repeats: the ordinary one is 10 % 12 MP JPEG, 50 % 1024x768 JPEG, 30 % 640x480
# PNG and 10 % 800x600 WebP, interleaved so any prefix of it is mixed too.
MIXES: dict[str, tuple[str, ...]] = {
    "ordinary": (
        "jpeg-12mp", "jpeg-web", "png-web", "jpeg-web", "webp-web",
        "jpeg-web", "png-web", "jpeg-web", "png-web", "jpeg-web",
    ),
    "heavy": KINDS,
}  # fmt: skip


def photo_dirs() -> dict[str, Path]:
    """Folders of real photos inside installed wheels (development dependencies)."""
    import matplotlib
    import skimage
    import sklearn

    return {
        "skimage": Path(skimage.__file__).parent / "data",
        "sklearn": Path(sklearn.__file__).parent / "datasets" / "images",
        "matplotlib": Path(matplotlib.__file__).parent / "mpl-data" / "sample_data",
    }


# Photos with a known ImageNet answer (the ids counted as right), as in model/evaluate.py.
LABELLED: dict[tuple[str, str], frozenset[int]] = {
    ("skimage", "chelsea.png"): frozenset({281, 282, 283, 284, 285}),
    ("skimage", "coffee.png"): frozenset({967}),
    ("skimage", "rocket.jpg"): frozenset({657, 744}),
    ("skimage", "motorcycle_left.png"): frozenset({665, 670}),
    ("skimage", "camera.png"): frozenset({872}),
    ("sklearn", "china.jpg"): frozenset({698}),
    ("sklearn", "flower.jpg"): frozenset({985}),
    ("matplotlib", "grace_hopper.jpg"): frozenset({652}),
}

# Every photograph the wheels ship (camera, microscope or telescope images; not drawings,
# logos or synthetic test patterns): what the int8 model must agree with fp32 on.
PHOTOGRAPHS: tuple[tuple[str, str], ...] = (
    *LABELLED,
    ("skimage", "astronaut.png"),
    ("skimage", "brick.png"),
    ("skimage", "cell.png"),
    ("skimage", "clock_motion.png"),
    ("skimage", "coins.png"),
    ("skimage", "grass.png"),
    ("skimage", "gravel.png"),
    ("skimage", "hubble_deep_field.jpg"),
    ("skimage", "ihc.png"),
    ("skimage", "moon.png"),
    ("skimage", "motorcycle_right.png"),
    ("skimage", "page.png"),
    ("skimage", "retina.jpg"),
    ("skimage", "text.png"),
)


@dataclass(frozen=True)
class Sample:
    """One benchmark image."""

    name: str
    kind: str
    data: bytes
    content_type: str
    expected: frozenset[int]


def load_photo(where: str, name: str) -> Image.Image:
    """A shipped photo as 8-bit RGB."""
    with Image.open(photo_dirs()[where] / name) as img:
        return img.convert("RGB")


def _grain(img: Image.Image, sigma: float, seed: int) -> Image.Image:
    noise = np.random.default_rng(seed).normal(0.0, sigma, (img.height, img.width, 1))
    arr = np.asarray(img, dtype=np.float32) + noise.astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    while True:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality)
        if buf.tell() <= MAX_BYTES or quality <= 50:
            return buf.getvalue()
        quality -= 5


def make(kind: str, photo: Image.Image, seed: int) -> tuple[bytes, str]:
    """One image of ``kind`` made from ``photo``: (bytes, content type)."""
    if kind == "jpeg-12mp":
        big = ImageOps.fit(photo, (4000, 3000), Image.Resampling.BICUBIC)
        return _jpeg(_grain(big, 4.0, seed)), "image/jpeg"
    if kind == "jpeg-1080p":
        hd = ImageOps.fit(photo, (1920, 1080), Image.Resampling.BICUBIC)
        return _jpeg(_grain(hd, 3.0, seed)), "image/jpeg"
    if kind == "png-small":
        return _encode(photo, "PNG"), "image/png"
    if kind == "jpeg-web":
        web = ImageOps.fit(photo, (1024, 768), Image.Resampling.BICUBIC)
        return _jpeg(_grain(web, 2.0, seed), quality=85), "image/jpeg"
    if kind == "png-web":
        return _encode(
            ImageOps.fit(photo, (640, 480), Image.Resampling.BICUBIC), "PNG"
        ), "image/png"
    if kind == "webp-web":
        web = ImageOps.fit(photo, (800, 600), Image.Resampling.BICUBIC)
        return _encode(_grain(web, 2.0, seed), "WEBP", quality=80), "image/webp"
    raise ValueError(f"unknown kind {kind!r}")


def _encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def distinct_images(kinds: tuple[str, ...] = KINDS) -> list[Sample]:
    """Each labelled photo in each of ``kinds``, once (8 photos x 3 kinds by default)."""
    out = []
    for seed, (key, expected) in enumerate(LABELLED.items()):
        photo = load_photo(*key)
        for kind in kinds:
            data, ctype = make(kind, photo, seed)
            out.append(Sample(f"{key[1]}:{kind}", kind, data, ctype, expected))
    return out


def mix_kinds() -> tuple[str, ...]:
    """Every kind some mix uses, each once."""
    return tuple(dict.fromkeys(kind for slots in MIXES.values() for kind in slots))


def backlog(count: int, distinct: list[Sample] | None = None, mix: str = "heavy") -> list[Sample]:
    """``count`` images of ``mix``, its slots in turn, each kind cycling through the photos."""
    slots = MIXES[mix]
    pool = distinct if distinct is not None else distinct_images(tuple(dict.fromkeys(slots)))
    by_kind = {kind: [s for s in pool if s.kind == kind] for kind in slots}
    seen: dict[str, int] = {}
    out = []
    for i in range(count):
        kind = slots[i % len(slots)]
        choices = by_kind[kind]
        out.append(choices[seen.get(kind, 0) % len(choices)])
        seen[kind] = seen.get(kind, 0) + 1
    return out


def largest_accepted(count: int) -> list[Sample]:
    """The heaviest images the API accepts: 48-megapixel RGBA PNGs (8000x6000, under the 50 M
    pixel limit and, upscaled without interpolation, under 1 MB each) made from the cat photo.
    Decoding one takes about half a gigabyte: the classifier's worst case for memory."""
    photo = load_photo("skimage", "chelsea.png")
    big = photo.resize((8000, 6000), Image.Resampling.NEAREST).convert("RGBA")
    sample = Sample(
        "chelsea.png:png-48mp-rgba",
        "png-48mp-rgba",
        _encode(big, "PNG"),
        "image/png",
        LABELLED[("skimage", "chelsea.png")],
    )
    return [sample] * count
