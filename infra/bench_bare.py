"""The bare work for ``make bench``: decode, resize and classify each image in turn, nothing else.

``to_model_input`` + ``Classifier.predict`` on one image after another, in one thread of the
benchmark's own process, with the service's decoder and session settings: the work no
implementation can skip, and the rate every other figure is divided by. The CPU time is the
whole process's (ONNX Runtime's threads included), as ``/proc`` counts the classifier's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from chalicelib.classifier import Classifier
from chalicelib.images import to_model_input
from chalicelib.settings import Settings
from infra.corpus import Sample


@dataclass(frozen=True)
class LoopResult:
    """A timed loop over the images in this process."""

    seconds: float
    top1: list[int]
    cpu_seconds: float  # the whole process's CPU time over the loop (all threads)

    def rate(self) -> float:
        """Images per second."""
        return len(self.top1) / self.seconds

    def cpu_ms_per_image(self) -> float:
        """CPU milliseconds per image."""
        return self.cpu_seconds * 1000 / len(self.top1)


def model_loop(samples: list[Sample], classifier: Classifier, *, max_pixels: int) -> LoopResult:
    """Decode, resize and classify each image in turn: the bare work, nothing else."""
    top1 = []
    cpu, started = time.process_time(), time.perf_counter()
    for sample in samples:
        tensor = to_model_input(sample.data, max_pixels=max_pixels)
        top1.append(classifier.predict(tensor[None])[0][0].class_id)
    return LoopResult(time.perf_counter() - started, top1, time.process_time() - cpu)


class Bare:
    """The service's classifier, loaded once; passes over each mix, the faster one counting."""

    def __init__(self, settings: Settings) -> None:
        self._limit = settings.max_image_pixels
        self.classifier = Classifier(
            settings.model_dir, threads=settings.ort_threads, spinning=settings.ort_spinning
        )
        self.passes: dict[str, list[LoopResult]] = {}

    def run(self, mix: str, samples: list[Sample]) -> LoopResult:
        """One pass over ``samples`` (after a few images to warm the session and caches)."""
        model_loop(samples[:4], self.classifier, max_pixels=self._limit)
        result = model_loop(samples, self.classifier, max_pixels=self._limit)
        self.passes.setdefault(mix, []).append(result)
        return result

    def best(self, mix: str) -> LoopResult:
        """The faster pass: every ratio is taken against the better bare figure."""
        return max(self.passes[mix], key=LoopResult.rate)

    def figures(self, mix: str) -> dict[str, Any]:
        """The JSON of a mix's bare work."""
        best = self.best(mix)
        return {
            "rate_ips": round(best.rate(), 2),
            "cpu_ms_per_image": round(best.cpu_ms_per_image(), 2),
            "seconds": round(best.seconds, 3),
            "passes_ips": [round(p.rate(), 2) for p in self.passes[mix]],
        }
