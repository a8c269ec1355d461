"""Measure which preprocessing the exported model wants, on real photos shipped in PyPI wheels.

``make model-check`` runs it. For each photo with a known answer it reports whether the top-1
class is right and the probability given to the right class(es), under four preprocessings:
TensorFlow-style scaling ((x-127)/128) or ImageNet mean/std, each with the EfficientNet centre
crop (224/256 of the short side) or the whole image. The model card quotes its output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def photo_dirs() -> dict[str, Path]:
    """Folders of real photos inside installed wheels (test dependencies)."""
    import matplotlib
    import skimage
    import sklearn

    return {
        "skimage": Path(skimage.__file__).parent / "data",
        "sklearn": Path(sklearn.__file__).parent / "datasets" / "images",
        "matplotlib": Path(matplotlib.__file__).parent / "mpl-data" / "sample_data",
    }


# photo -> ImageNet class ids counted as right (a cat photo may be any domestic cat class).
EXPECTED: dict[tuple[str, str], set[int]] = {
    ("skimage", "chelsea.png"): {281, 282, 283, 284, 285},
    ("skimage", "coffee.png"): {967},
    ("skimage", "rocket.jpg"): {657, 744},
    ("skimage", "motorcycle_left.png"): {665, 670},
    ("skimage", "camera.png"): {872},
    ("sklearn", "china.jpg"): {698},
    ("sklearn", "flower.jpg"): {985},
    ("matplotlib", "grace_hopper.jpg"): {652},
}


def preprocess(img: Image.Image, *, tf_scaling: bool, centre_crop: bool) -> np.ndarray:
    """One NCHW float32 tensor under the chosen variant."""
    img = ImageOps.exif_transpose(img).convert("RGB")
    if centre_crop:
        w, h = img.size
        side = int(min(w, h) * 224 / 256)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    arr = np.asarray(img.resize((224, 224), Image.Resampling.BICUBIC), dtype=np.float32)
    arr = (arr - 127.0) / 128.0 if tf_scaling else (arr / 255.0 - MEAN) / STD
    return arr.transpose(2, 0, 1)[None].astype(np.float32)


def main() -> None:
    """Print one row per photo and a summary per variant."""
    session = ort.InferenceSession(str(HERE / "efficientnet_lite0.onnx"))
    labels = [c["label"] for c in json.loads((HERE / "labels.json").read_text())]
    dirs = photo_dirs()
    variants: dict[str, Callable[[Image.Image], np.ndarray]] = {
        "tf+crop": lambda im: preprocess(im, tf_scaling=True, centre_crop=True),
        "tf+full": lambda im: preprocess(im, tf_scaling=True, centre_crop=False),
        "meanstd+crop": lambda im: preprocess(im, tf_scaling=False, centre_crop=True),
        "meanstd+full": lambda im: preprocess(im, tf_scaling=False, centre_crop=False),
    }
    right = dict.fromkeys(variants, 0)
    mass = dict.fromkeys(variants, 0.0)
    for (where, name), ok in EXPECTED.items():
        img = Image.open(dirs[where] / name)
        cells = []
        for variant, fn in variants.items():
            probs = session.run(None, {"input": fn(img)})[0][0]
            top = int(probs.argmax())
            right[variant] += top in ok
            mass[variant] += float(probs[sorted(ok)].sum())
            cells.append(f"{variant}: {labels[top].split(',')[0]} {probs[top]:.2f}")
        print(f"{name:22} " + " | ".join(cells))
    n = len(EXPECTED)
    for variant in variants:
        print(
            f"{variant:13} top-1 right {right[variant]}/{n}, "
            f"mean probability of the right class {mass[variant] / n:.3f}"
        )


if __name__ == "__main__":
    main()
