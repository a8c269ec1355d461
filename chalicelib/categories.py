"""Categories people use (cat, vehicle, beverage…) over the 1000 ImageNet classes, and a job's
answer cut to its options.

The categories come from ``categories.json`` beside the model (derived from WordNet 3.0's
hypernyms by ``model/categories.py``; see docs/categories.md). A category's probability is the
sum of its member classes' probabilities over the whole softmax, not over the top labels only:
a cat photo split between *tiger cat*, *Egyptian cat* and *tabby* is a cat at their sum.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chalicelib.contract import Category, JobOptions, Prediction

# A category under 0.1 % says nothing about the image: it is left out of the answer.
CATEGORY_FLOOR = 0.001


def _probability(value: float) -> float:
    """Rounded to 6 places, and never above 1 (a float32 sum may overshoot by a hair)."""
    return min(1.0, max(0.0, round(float(value), 6)))


class Categories:
    """Which classes each category holds, as a matrix that sums a softmax row per category."""

    def __init__(self, members: dict[str, list[int]], *, classes: int = 1000) -> None:
        self.names = list(members)
        self._matrix = np.zeros((len(self.names), classes), dtype=np.float64)
        for row, ids in enumerate(members.values()):
            self._matrix[row, ids] = 1.0
        # A class's parents, narrowest first: the category with the fewest classes is the most
        # telling (a tabby is a cat before it is a mammal or an animal).
        size = {name: len(ids) for name, ids in members.items()}
        self._parents: list[list[str]] = [[] for _ in range(classes)]
        for name in sorted(self.names, key=lambda n: (size[n], n)):
            for class_id in members[name]:
                self._parents[class_id].append(name)

    @classmethod
    def load(cls, path: Path, *, classes: int = 1000) -> Categories:
        """The categories of a ``categories.json``."""
        document = json.loads(path.read_text())
        members = {c["name"]: list(c["class_ids"]) for c in document["categories"]}
        return cls(members, classes=classes)

    def parents(self, class_id: int) -> list[str]:
        """The names of the categories the class belongs to, narrowest first."""
        return list(self._parents[class_id])

    def sums(self, probabilities: np.ndarray) -> np.ndarray:
        """Each category's summed probability for one softmax row (in ``names`` order)."""
        result: np.ndarray = self._matrix @ probabilities.astype(np.float64)
        return result


@dataclass(frozen=True)
class Answer:
    """What a finished job carries: its labels and its categories."""

    predictions: list[Prediction]
    categories: list[Category]


def answer(
    probabilities: np.ndarray,
    *,
    labels: list[str],
    categories: Categories,
    options: JobOptions,
) -> Answer:
    """The ``top_k`` most probable labels from ``min_confidence`` on, and every category from
    ``min_confidence`` (and at least ``CATEGORY_FLOOR``) on, most probable first."""
    top = np.argsort(probabilities)[::-1][: options.top_k]
    predictions = [
        Prediction(
            class_id=int(i),
            label=labels[int(i)],
            probability=_probability(probabilities[i]),
            parents=categories.parents(int(i)),
        )
        for i in top
        if probabilities[i] >= options.min_confidence
    ]
    floor = max(options.min_confidence, CATEGORY_FLOOR)
    sums = categories.sums(probabilities)
    found = [
        Category(name=name, probability=_probability(total))
        for name, total in zip(categories.names, sums, strict=True)
        if total >= floor
    ]
    found.sort(key=lambda c: (-c.probability, c.name))
    return Answer(predictions=predictions, categories=found)
