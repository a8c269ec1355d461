"""Calibration tensors for the int8 model, made by the service's own preprocessing.

``make quantize-model`` runs this in the project's environment (it needs Pillow, NumPy, the photos
shipped in the scikit-image, scikit-learn and matplotlib wheels, and ``chalicelib.images``), then
``model/quantize.py`` in an export-only environment that has the ``onnx`` package.

The tensors are random crops and flips of every shipped photograph, JPEG-encoded and decoded
by ``to_model_input`` exactly as a job is, so the activation ranges are those the model sees in
service. ``model/agreement.py`` then checks int8 against fp32 on the unaugmented photographs and
on the benchmark's images, which calibration never saw.
"""

from __future__ import annotations

import argparse
import io
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from chalicelib.images import to_model_input
from infra.corpus import PHOTOGRAPHS, load_photo

CROPS_PER_PHOTO = 6


def augmented(photo: Image.Image, rng: random.Random) -> bytes:
    """A random crop (40-100 % of each side), maybe mirrored, as a JPEG."""
    w, h = photo.size
    cw, ch = int(w * rng.uniform(0.4, 1.0)), int(h * rng.uniform(0.4, 1.0))
    left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
    crop = photo.crop((left, top, left + cw, top + ch))
    if rng.random() < 0.5:
        crop = ImageOps.mirror(crop)
    buf = io.BytesIO()
    crop.save(buf, format="JPEG", quality=rng.randint(75, 95))
    return buf.getvalue()


def calibration_tensors(seed: int = 0) -> np.ndarray:
    """(N, 3, 224, 224) float32: CROPS_PER_PHOTO augmented views of each photograph."""
    rng = random.Random(seed)
    tensors = []
    for where, name in PHOTOGRAPHS:
        photo = load_photo(where, name)
        for _ in range(CROPS_PER_PHOTO):
            tensors.append(to_model_input(augmented(photo, rng), max_pixels=50_000_000))
    return np.stack(tensors).astype(np.float32)


def main() -> None:
    """Write the calibration tensors as one .npy file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/calibration.npy"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tensors = calibration_tensors()
    np.save(args.out, tensors)
    print(f"{args.out}: {len(tensors)} tensors from {len(PHOTOGRAPHS)} photographs")


if __name__ == "__main__":
    main()
