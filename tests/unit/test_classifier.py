"""The real model on real photos."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from chalicelib.classifier import Classifier, get_classifier
from chalicelib.images import to_model_input
from chalicelib.settings import default_model_dir
from tests.photos import (
    CAT,
    CAT_CLASSES,
    CHINA,
    COFFEE,
    ESPRESSO,
    PALACE,
    ROCKET,
    ROCKET_CLASSES,
    encode,
)

MODEL_DIR = default_model_dir()


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return get_classifier(MODEL_DIR)


def tensor(path: Path) -> np.ndarray:
    return to_model_input(path.read_bytes(), max_pixels=50_000_000)


@pytest.mark.parametrize(
    ("photo", "right"),
    [(CAT, CAT_CLASSES), (COFFEE, {ESPRESSO}), (ROCKET, ROCKET_CLASSES), (CHINA, {PALACE})],
)
def test_real_photos_get_the_right_top1(
    classifier: Classifier, photo: Path, right: set[int]
) -> None:
    top5 = classifier.predict(tensor(photo)[None])[0]
    assert top5[0].class_id in right, top5


def test_top5_is_sorted_labelled_and_a_distribution(classifier: Classifier) -> None:
    top5 = classifier.predict(tensor(COFFEE)[None])[0]
    fields = {"class_id", "label", "probability", "parents"}
    assert [set(p.model_dump()) for p in top5] == [fields] * 5
    assert top5[0].parents == ["beverage", "food"][:1]  # espresso: a beverage, not food
    probs = [p.probability for p in top5]
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1.0 + 1e-5
    assert top5[0].label == "espresso"
    assert top5[0].probability > 0.8


def test_batched_inference_matches_single(classifier: Classifier) -> None:
    batch = np.stack([tensor(CAT), tensor(COFFEE), tensor(CHINA)])
    together = classifier.predict(batch)
    alone = [classifier.predict(b[None])[0] for b in batch]
    for t, a in zip(together, alone, strict=True):
        assert [p.class_id for p in t] == [p.class_id for p in a]
        assert [p.probability for p in t] == pytest.approx([p.probability for p in a], abs=1e-4)


def test_session_is_built_once_per_container() -> None:
    assert get_classifier(MODEL_DIR) is get_classifier(MODEL_DIR)


def test_manifest_matches_the_committed_model() -> None:
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    digest = hashlib.sha256((MODEL_DIR / manifest["file"]).read_bytes()).hexdigest()
    assert digest == manifest["sha256"]
    labels = json.loads((MODEL_DIR / manifest["labels"]).read_text())
    assert [entry["class_id"] for entry in labels] == list(range(1000))


@pytest.mark.parametrize("size", [(4000, 3000), (3000, 4000), (1920, 1080)])
def test_jpeg_draft_decoding_keeps_the_pixels_and_the_answer(
    classifier: Classifier, size: tuple[int, int]
) -> None:
    # A 12 MP (or 1080p) JPEG decoded at a reduced DCT scale must still cover the 224/256 crop:
    # the tensor stays within a grey level or two of the full decode, and the answer is the same.
    photo = ImageOps.fit(Image.open(CAT).convert("RGB"), size, Image.Resampling.BICUBIC)
    data = encode(photo, "JPEG", quality=90)

    drafted = to_model_input(data, max_pixels=50_000_000)
    full = to_model_input(data, max_pixels=50_000_000, draft=False)

    assert float(np.abs(drafted - full).mean()) < 0.02  # [-1, 1] scale: 0.02 is 2.5 grey levels
    top_drafted, top_full = classifier.predict(np.stack([drafted, full]))
    assert top_drafted[0].class_id == top_full[0].class_id
    assert top_drafted[0].class_id in CAT_CLASSES
