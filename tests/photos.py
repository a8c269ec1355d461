"""Real photos that ship inside installed wheels, and images made from them for edge cases."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import skimage
import sklearn
from PIL import Image

SKIMAGE = Path(skimage.__file__).parent / "data"
SKLEARN = Path(sklearn.__file__).parent / "datasets" / "images"
MATPLOTLIB = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"

CAT = SKIMAGE / "chelsea.png"  # a tabby cat
COFFEE = SKIMAGE / "coffee.png"  # a cup of espresso
ROCKET = SKIMAGE / "rocket.jpg"  # a rocket on its launch pad
CHINA = SKLEARN / "china.jpg"  # a Chinese palace
GRACE_HOPPER = MATPLOTLIB / "grace_hopper.jpg"

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967
ROCKET_CLASSES = {657, 744}  # missile, projectile
PALACE = 698


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    """Image → bytes in ``fmt``."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def cat_jpeg(**params: object) -> bytes:
    """The cat photo as a JPEG."""
    return encode(Image.open(CAT).convert("RGB"), "JPEG", **{"quality": 90, **params})
