"""Categories over the whole softmax, answers cut to a job's options, and exports as files."""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from chalicelib.categories import CATEGORY_FLOOR, Categories, answer
from chalicelib.contract import JobOptions, JobStatus
from chalicelib.exports import render
from chalicelib.job_store import JobRecord
from chalicelib.model_info import answers_version
from chalicelib.settings import default_model_dir

LABELS = [f"class {i}" for i in range(6)]
# cat: 0, 1, 2; mammal: 0-3; vehicle: 5
GROUPS = Categories({"mammal": [0, 1, 2, 3], "cat": [0, 1, 2], "vehicle": [5]}, classes=6)


def test_a_category_sums_its_classes_beyond_the_top_labels() -> None:
    # GIVEN a softmax split between three cat classes, one outside the top 2
    probs = np.array([0.31, 0.29, 0.25, 0.05, 0.0995, 0.0005], dtype=np.float32)

    # WHEN it is cut to the top 2
    result = answer(probs, labels=LABELS, categories=GROUPS, options=JobOptions(top_k=2))

    # THEN the cat category holds all three, and vehicle (under the floor) is left out
    assert [p.class_id for p in result.predictions] == [0, 1]
    by_name = {c.name: c.probability for c in result.categories}
    assert by_name == {"mammal": 0.9, "cat": 0.85}
    assert [c.name for c in result.categories] == ["mammal", "cat"]
    assert CATEGORY_FLOOR > 0.0005


def test_min_confidence_cuts_labels_and_categories_and_parents_are_narrowest_first() -> None:
    probs = np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.05], dtype=np.float32)

    result = answer(
        probs,
        labels=LABELS,
        categories=GROUPS,
        options=JobOptions(top_k=20, min_confidence=0.15),
    )

    assert [p.probability for p in result.predictions] == [0.5, 0.2]
    assert result.predictions[0].parents == ["cat", "mammal"]
    assert [c.name for c in result.categories] == ["mammal", "cat"]
    assert GROUPS.parents(4) == []


def test_the_committed_categories_cover_what_the_issue_names_with_provenance() -> None:
    document = json.loads((default_model_dir() / "categories.json").read_text())
    names = {c["name"] for c in document["categories"]}
    wanted = {"dog", "cat", "bird", "fish", "insect", "vehicle", "aircraft", "boat", "food"}
    wanted |= {"beverage", "fruit", "furniture", "clothing", "building", "musical instrument"}
    assert wanted <= names
    assert "WordNet 3.0" in document["source"]["wordnet"]
    assert "Princeton" in document["licence"]
    assert answers_version(default_model_dir()).startswith("efficientnet-lite0#")


def test_exports_escape_formulas_in_csv_and_keep_values_in_json_lines() -> None:
    job = JobRecord(
        job_id="0" * 32,
        owner="a",
        s3_key="k",
        status=JobStatus.PENDING,
        created_at="2026-12-02T00:00:00.000Z",
        updated_at="2026-12-02T00:00:00.000Z",
        attempts=0,
        content_type="image/png",
        size_bytes=1,
        filename="=HYPERLINK(1)",
    )

    as_csv = render([job], fmt="csv", name="x")
    as_jsonl = render([job], fmt="jsonl", name="x")

    [row] = list(csv.DictReader(io.StringIO(as_csv.body)))
    assert row["filename"] == "'=HYPERLINK(1)"
    assert json.loads(as_jsonl.body)["filename"] == "=HYPERLINK(1)"
    assert as_csv.headers["Content-Disposition"] == 'attachment; filename="x.csv"'
    assert as_jsonl.media_type == "application/x-ndjson"
