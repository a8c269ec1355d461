"""`make bench` on a tiny backlog: it runs end to end and writes every figure, so it cannot rot.

No figure is asserted to be fast (the suite runs on shared machines); what is asserted is that the
benchmark measured what it says: the whole backlog was queued before the classifier started, every
job finished through the real handler, the pipeline gave the bare loop's answers, and each section
of the JSON is there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime import ROOT

pytestmark = pytest.mark.e2e
IMAGES = 12


def test_bench_runs_end_to_end_and_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--images", str(IMAGES), "--rss-images", "3", "--levers", "4", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "infra.bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())

    assert {"command", "date", "machine", "images", "model", "bare", "naive", "pipeline"} <= set(
        doc
    )
    assert {"ratios", "labels", "cold_start", "classifier_process"} <= set(doc)
    assert {"pipeline_in_process_emulator", "cost_per_million_images"} <= set(doc)
    assert doc["images"]["count"] == IMAGES
    assert set(doc["images"]["kinds"]) == {"jpeg-12mp", "jpeg-1080p", "png-small"}
    assert doc["images"]["max_bytes"] <= 4 * 1024 * 1024
    pipeline = doc["pipeline"]
    assert pipeline["queued_before_start"] == IMAGES  # nothing ran before the clock started
    assert pipeline["succeeded"] == pipeline["attempts"] == IMAGES
    assert pipeline["drain_s"] > 0
    assert pipeline["rate_ips"] == max(pipeline["passes_ips"])  # the faster of two drains
    assert set(pipeline["stages_ms"]) >= {"queue_wait", "s3_get", "decode", "inference"}
    assert set(pipeline["stages_ms"]) >= {"start", "write", "notify", "total"}
    in_process = doc["pipeline_in_process_emulator"]
    assert in_process["queued_before_start"] == in_process["succeeded"] == IMAGES
    assert doc["labels"]["pipeline_agrees_with_bare"] == IMAGES
    ratios = doc["ratios"]
    assert ratios["pipeline_vs_bare"] == pytest.approx(
        pipeline["rate_ips"] / doc["bare"]["rate_ips"], rel=0.01
    )
    assert ratios["bare_vs_naive"] > 0
    overlapped = doc["bare_overlapped"]
    assert overlapped["rate_ips"] > 0
    assert ratios["pipeline_vs_bare_overlapped"] == pytest.approx(
        pipeline["rate_ips"] / overlapped["rate_ips"], rel=0.01
    )
    cold = doc["cold_start"]
    assert 0 < cold["import_ms"] < cold["total_ms"] < cold["process_wall_ms"]
    assert cold["session_ms"] > 0
    assert cold["first_result_ms"] > 0
    process = doc["classifier_process"]
    assert process["succeeded"] == process["images"] == 3
    assert process["rss_after_import_mb"] < process["peak_rss_mb"] < process["lambda_memory_mb"]
    assert process["cpu_ms_per_image"] > 0
    assert process["emulator_cpu_ms_per_image"] > 0  # the emulator's own process served it
    assert doc["bare"]["cpu_ms_per_image"] > 0
    assert process["worst_batch"]["succeeded"] == 10
    usd = doc["cost_per_million_images"]
    assert (
        0
        < usd["lambda_usd_per_million_measured"]
        < usd["rekognition_detect_labels_usd_per_million"]
    )
    printed = proc.stdout
    for needle in ("bare decode+resize+inference", "ratio pipeline/bare", "cold start", "peak RSS"):
        assert needle in printed
    levers = doc["levers"]
    assert len(levers["drains"]) == 7  # CLASSIFY_WORKERS 1, 2, 4, 8; ORT_THREADS 1, 2; spinning
    costs = levers["emulator_cpu_ms_per_call"]
    assert len(costs) == 4  # the start, the result, the S3 read, the events
    assert all(ms > 0 for ms in costs.values())
    assert "emulator CPU per call, ms:" in printed
