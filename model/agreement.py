"""Does the int8 model answer as the fp32 one does, and is it faster? Measured, not assumed.

``make quantize-model`` runs it after quantising (``make model-agreement`` alone). On every
photograph the wheels ship, on mirrored and cropped views of them, and on the benchmark's
12 MP / 1080p / PNG images (none of which calibration saw as such), it counts how often the two
models' top-1 classes agree, how often each is right on the photos with a known answer, and times
both sessions alternately, with the service's session settings, on batches of 10 and one image.
The model card quotes its output.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from chalicelib.classifier import Classifier
from chalicelib.images import to_model_input
from chalicelib.settings import Settings
from infra.corpus import LABELLED, PHOTOGRAPHS, distinct_images, load_photo

HERE = Path(__file__).resolve().parent
LIMIT = 50_000_000


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def views(photo: Image.Image) -> list[bytes]:
    """Mirrored, centre-cropped and four corner crops (70 % of each side) of a photo."""
    w, h = photo.size
    cw, ch = int(w * 0.7), int(h * 0.7)
    corners = [(0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch), ((w - cw) // 2, (h - ch) // 2)]
    crops = [photo.crop((x, y, x + cw, y + ch)) for x, y in corners]
    return [_jpeg(ImageOps.mirror(photo)), *(_jpeg(c) for c in crops)]


def top1(classifier: Classifier, tensors: np.ndarray) -> list[int]:
    """Top-1 class of each tensor."""
    return [r[0].class_id for r in classifier.predict(tensors)]


def ms_per_image(classifier: Classifier, batch: np.ndarray, rounds: int = 20) -> float:
    """Mean milliseconds per image of ``classifier`` on ``batch``."""
    started = time.perf_counter()
    for _ in range(rounds):
        classifier.predict(batch)
    return (time.perf_counter() - started) * 1000 / (rounds * len(batch))


def model_dir_for(path: Path, version: str) -> Path:
    """A directory whose manifest points at the model ``path`` (labels and input are shared)."""
    manifest = json.loads((HERE / "manifest.json").read_text())
    out = Path("build") / f"model-{version}"
    out.mkdir(parents=True, exist_ok=True)
    (out / path.name).write_bytes(path.read_bytes())
    (out / "labels.json").write_bytes((HERE / "labels.json").read_bytes())
    manifest.update(file=path.name, version=version)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def main() -> None:
    """Print the agreement and timing table."""
    settings = Settings.from_env()
    threads, spinning = settings.ort_threads, settings.ort_spinning
    fp32 = Classifier(
        model_dir_for(HERE / "efficientnet_lite0.onnx", "fp32"), threads=threads, spinning=spinning
    )
    int8_path = Path("build/efficientnet_lite0_int8.onnx")  # written by model/quantize.py
    int8 = Classifier(model_dir_for(int8_path, "int8"), threads=threads, spinning=spinning)
    photos = {key: load_photo(*key) for key in PHOTOGRAPHS}
    sets = {
        "shipped photographs": [_png(p) for p in photos.values()],
        "mirrored and cropped views": [v for p in photos.values() for v in views(p)],
        "benchmark images (12 MP, 1080p, PNG)": [s.data for s in distinct_images()],
    }
    for name, images in sets.items():
        tensors = np.stack([to_model_input(d, max_pixels=LIMIT) for d in images])
        a, b = top1(fp32, tensors), top1(int8, tensors)
        same = sum(x == y for x, y in zip(a, b, strict=True))
        print(f"{name}: int8 top-1 = fp32 top-1 on {same}/{len(images)}")
    labelled = np.stack([to_model_input(_png(photos[key]), max_pixels=LIMIT) for key in LABELLED])
    for label, model in (("fp32", fp32), ("int8", int8)):
        right = sum(t in ok for t, ok in zip(top1(model, labelled), LABELLED.values(), strict=True))
        print(f"{label}: top-1 right on {right}/{len(LABELLED)} labelled photographs")
    batch = np.stack([to_model_input(d, max_pixels=LIMIT) for d in sets["shipped photographs"]])
    batch = batch[:10]
    timings: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(5):  # alternate, so a busy moment on a shared machine hurts both alike
        for label, model in (("fp32", fp32), ("int8", int8)):
            model.predict(batch)
            timings[label].append(ms_per_image(model, batch))
    single = {
        label: ms_per_image(m, batch[:1], rounds=50)
        for label, m in (("fp32", fp32), ("int8", int8))
    }
    for label in ("fp32", "int8"):
        print(
            f"{label}: {min(timings[label]):.2f} ms/image in batches of 10 (best of 5), "
            f"{single[label]:.2f} ms for one image (ORT_THREADS={threads})"
        )
    print(f"int8 speed-up in batches of 10: {min(timings['fp32']) / min(timings['int8']):.2f}x")


if __name__ == "__main__":
    main()
