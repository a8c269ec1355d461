"""The ONNX Runtime session for EfficientNet-Lite0: loaded once per container, run per batch."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from chalicelib.categories import Answer, Categories, answer
from chalicelib.contract import JobOptions, Model, Prediction
from chalicelib.model_info import read_model_info

TOP_K = 5


class Classifier:
    """ImageNet predictions and categories for batches of preprocessed images."""

    def __init__(self, model_dir: Path, *, threads: int = 0, spinning: bool = False) -> None:
        manifest = json.loads((model_dir / "manifest.json").read_text())
        self.info: Model = read_model_info(model_dir)
        labels = json.loads((model_dir / manifest["labels"]).read_text())
        self._labels: list[str] = [entry["label"] for entry in labels]
        self.categories = Categories.load(
            model_dir / manifest["categories"], classes=len(self._labels)
        )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        if not spinning:
            # Idle intra-op threads otherwise spin after each run, burning the CPU that the
            # batch's decoding threads need: 72-76 ms of CPU per image with spinning, 55-64 without
            # (the classifier-only process, 60 images, 2 cores).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(model_dir / manifest["file"]), options, providers=["CPUExecutionProvider"]
        )
        self._input = manifest["input"]["name"]

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """For an (N, 3, 224, 224) float32 batch, the (N, 1000) softmax."""
        result: np.ndarray = self._session.run(None, {self._input: batch})[0]
        return result

    def answers(self, batch: np.ndarray, options: Sequence[JobOptions]) -> list[Answer]:
        """For a batch, each image's labels and categories, cut to its job's options."""
        return [
            answer(row, labels=self._labels, categories=self.categories, options=opts)
            for row, opts in zip(self.probabilities(batch), options, strict=True)
        ]

    def predict(self, batch: np.ndarray) -> list[list[Prediction]]:
        """For an (N, 3, 224, 224) float32 batch, N lists of the top 5, most probable first."""
        probs = self.probabilities(batch)
        results = []
        for row in probs:
            top = np.argsort(row)[::-1][:TOP_K]
            results.append(
                [
                    Prediction(
                        class_id=int(i),
                        label=self._labels[int(i)],
                        probability=round(float(row[i]), 6),
                        parents=self.categories.parents(int(i)),
                    )
                    for i in top
                ]
            )
        return results


_cache: dict[tuple[Path, int, bool], Classifier] = {}
_cache_lock = threading.Lock()


def get_classifier(model_dir: Path, *, threads: int = 0, spinning: bool = False) -> Classifier:
    """The container's one classifier (the session is built on first use, then reused)."""
    key = (model_dir, threads, spinning)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = Classifier(model_dir, threads=threads, spinning=spinning)
        return _cache[key]
