"""`make bench` on a few photos per mix: it runs end to end and writes every figure, so it cannot
rot.

No figure is asserted to be fast (the suite runs on shared machines); what is asserted is that the
benchmark measured what it says: every job of every run finished through the real handler with the
bare loop's answers, each backlog was queued before its drain, the ratios are the rates divided,
the calls a job must make were counted, the bill adds up, and every section is there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.runtime import ROOT

pytestmark = pytest.mark.e2e
ORDINARY, HEAVY, SINGLES, WORST, WAIT_S = 10, 6, 3, 2, 2
MUST_CALL = ("s3.PutObject", "dynamodb.PutItem", "sqs.SendMessage", "dynamodb.UpdateItem")
CLASSIFIER_CALLS = ("dynamodb.UpdateItem", "dynamodb.PutItem", "s3.GetObject")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    """One tiny run: its JSON, what it printed, and its markdown tables."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    args = ["--ordinary", str(ORDINARY), "--heavy", str(HEAVY), "--latency", str(SINGLES)]
    args += ["--long-poll", str(WAIT_S), "--route-count", "5", "--worst", str(WORST)]
    args += ["--durability-jobs", "5"]
    proc = _bench(*args, "--out", str(out))
    return json.loads(out.read_text()), proc.stdout, _bench("--markdown", str(out)).stdout


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "infra.bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


def test_every_section_is_written_and_no_figure_is_negative(run: Any) -> None:
    doc, _, _ = run
    assert {"command", "date", "machine", "settings", "model", "mixes", "latency"} <= set(doc)
    assert {"aws_calls_per_job", "logs_per_job", "cost_per_million_images"} <= set(doc)
    assert {"classifier_efficiency", "long_poll", "status_vs_api"} <= set(doc)
    assert {"cold_start", "classifier_memory", "durability"} <= set(doc)
    assert set(doc["mixes"]) == {"ordinary", "heavy"}
    assert all(n >= 0 for n in _numbers(doc))


def test_the_mixes_are_the_photos_asked_for(run: Any) -> None:
    doc, _, _ = run
    ordinary, heavy = doc["mixes"]["ordinary"]["images"], doc["mixes"]["heavy"]["images"]
    assert ordinary["count"] == ORDINARY
    assert ordinary["kinds"] == {"jpeg-12mp": 1, "jpeg-web": 5, "png-web": 3, "webp-web": 1}
    assert heavy["count"] == HEAVY
    assert heavy["kinds"] == {"jpeg-12mp": 2, "jpeg-1080p": 2, "png-small": 2}
    assert max(ordinary["max_bytes"], heavy["max_bytes"]) <= 4 * 1024 * 1024


@pytest.mark.parametrize("mix", ["ordinary", "heavy"])
def test_end_to_end_finishes_every_job_with_the_bare_answers(run: Any, mix: str) -> None:
    doc, _, _ = run
    bare, e2e = doc["mixes"][mix]["bare"], doc["mixes"][mix]["end_to_end"]
    assert bare["rate_ips"] == max(bare["passes_ips"]) > 0  # the faster of two passes
    assert bare["cpu_ms_per_image"] > 0
    images = e2e["images"]
    assert e2e["succeeded"] == e2e["agree_with_bare"] == images
    assert e2e["rate_ips"] == pytest.approx(images / e2e["seconds"], rel=0.01)
    assert e2e["ratio_to_bare"] == pytest.approx(e2e["rate_ips"] / bare["rate_ips"], rel=0.01)
    assert e2e["requests"]["post"] == images <= e2e["requests"]["get"]
    sizes = e2e["classify_batches"]["sizes"]
    assert sum(int(size) * count for size, count in sizes.items()) == images
    cpu = e2e["cpu_ms_per_image"]
    assert set(cpu) == {"classifier", "runtime", "emulator", "client", "cores_busy"}
    assert all(ms > 0 for ms in cpu.values())


@pytest.mark.parametrize("mix", ["ordinary", "heavy"])
def test_each_drain_was_queued_first_and_drained_whole(run: Any, mix: str) -> None:
    doc, _, _ = run
    bare, drains = doc["mixes"][mix]["bare"], doc["mixes"][mix]["drains"]
    windows = {(d["window_s"], d["path"]) for d in drains}
    assert (0, "runtime") in windows
    if mix == "ordinary":  # at 1 s: by the runtime once it takes a window, else by the probe
        assert (1, "runtime") in windows or {(0, "probe"), (1, "probe")} <= windows
    for drained in drains:
        images = drained["images"]
        assert drained["queued_before_start"] == drained["succeeded"] == images
        assert drained["ratio_to_bare"] == pytest.approx(
            drained["rate_ips"] / bare["rate_ips"], rel=0.01
        )
        sizes = drained["batches"]["sizes"]
        assert sum(int(size) * count for size, count in sizes.items()) == images
        assert drained["worker_cpu_ms_per_image"] > 0
        if drained["path"] == "runtime":
            assert drained["agree_with_bare"] == images
            assert set(drained["cpu_ms_per_image"]) == {
                "classifier", "runtime", "emulator", "cores_busy"
            }  # fmt: skip


def test_classifier_efficiency_is_the_drains_cpu_over_the_bare_cpu(run: Any) -> None:
    doc, _, _ = run
    for mix, eff in doc["classifier_efficiency"].items():
        assert eff["bare_cpu_ms_per_image"] == doc["mixes"][mix]["bare"]["cpu_ms_per_image"]
        ratio = eff["worker_cpu_ms_per_image"] / eff["bare_cpu_ms_per_image"]
        assert eff["ratio"] == pytest.approx(ratio, rel=0.01)
        assert eff["target"] == 1.15


def test_latencies_come_from_every_single_photo(run: Any) -> None:
    doc, _, _ = run
    waited, hooked = doc["latency"]["prefer_wait"], doc["latency"]["webhook"]
    assert waited["count"] == waited["answered_200"] == SINGLES
    assert hooked["count"] == hooked["verified"] == SINGLES  # every signature checked
    for figures in (waited, hooked):
        assert 0 < figures["p50_ms"] <= figures["p95_ms"]


def test_a_job_makes_the_calls_it_must_and_the_classifier_its_own(run: Any) -> None:
    doc, _, _ = run
    calls = doc["aws_calls_per_job"]
    assert calls["jobs"] == ORDINARY
    assert all(calls["all"].get(op, 0) >= 1 for op in MUST_CALL), calls["all"]
    assert calls["all"]["s3.GetObject"] > 0
    assert all(calls["classify"].get(op, 0) >= 1 for op in CLASSIFIER_CALLS), calls["classify"]
    for op, per_job in calls["all"].items():
        split = calls["classify"].get(op, 0) + calls["others"].get(op, 0)
        assert per_job == pytest.approx(split, abs=0.002)
    assert doc["logs_per_job"]["bytes"] >= doc["logs_per_job"]["json_bytes"] > 0


def test_the_bill_adds_up(run: Any) -> None:
    doc, _, _ = run
    bill = doc["cost_per_million_images"]
    lines = {line["item"]: line for line in bill["lines"]}
    assert bill["total_usd_per_million"] == pytest.approx(
        sum(line["usd_per_million"] for line in bill["lines"]), abs=0.001
    )
    for line in bill["lines"]:
        expected = line["per_image"] * line["unit_usd"] * 1_000_000
        assert line["usd_per_million"] == pytest.approx(expected, rel=0.01, abs=0.0002)
    for item in ("API Gateway REST requests", "S3 PUT requests", "S3 GET requests"):
        assert lines[item]["usd_per_million"] > 0
    for item in ("DynamoDB write request units", "SQS requests", "SNS publishes"):
        assert lines[item]["usd_per_million"] > 0
    assert lines["Lambda classify GB-s (1024 MB)"]["usd_per_million"] > 0
    assert lines["CloudWatch Logs ingestion"]["usd_per_million"] > 0
    assert bill["item_bytes"]["finished"] > bill["item_bytes"]["pending"] > 0
    assert bill["rekognition_usd_per_million"] == 1000


def test_the_long_poll_and_the_status_function_are_measured(run: Any) -> None:
    doc, _, _ = run
    poll = doc["long_poll"]
    assert poll["status"] == "PENDING"  # the classifier was paused throughout
    assert poll["seconds"] >= WAIT_S
    assert poll["get_item_calls"] > 0
    assert poll["reads_per_s"] == pytest.approx(poll["get_item_calls"] / poll["seconds"], rel=0.01)
    assert poll["gb_s"] == pytest.approx(poll["seconds"] * 256 / 1024, rel=0.01)
    versus = doc["status_vs_api"]
    for function in ("status", "api"):
        assert versus[function]["import_ms"] > 0
        assert versus[function]["rss_after_import_mb"] > 0
        assert versus[function]["get_median_ms"] > 0
    assert versus["status"]["http_get_median_ms"] > 0


def test_cold_start_and_memory(run: Any) -> None:
    doc, _, _ = run
    cold = doc["cold_start"]
    assert 0 < cold["import_ms"] < cold["total_ms"] < cold["process_wall_ms"]
    assert cold["session_ms"] > 0
    assert cold["first_result_ms"] > 0
    memory = doc["classifier_memory"]
    assert 0 < memory["peak_rss_mb"] < memory["lambda_memory_mb"]
    assert memory["worst_batch"]["succeeded"] == memory["worst_batch"]["images"] == WORST


def test_it_prints_a_line_per_figure_and_renders_the_tables(run: Any) -> None:
    _, printed, tables = run
    for needle in (
        "bare decode+inference, ordinary",
        "end to end, heavy",
        "drain, ordinary, window 1 s",
        "latency, POST /jobs to the signed webhook",
        "AWS calls per job",
        "cost per million images, total",
        "classifier efficiency",
        "long poll",
        "status function vs API function",
        "cold start",
        "peak RSS",
    ):
        assert needle in printed
    assert "| figure | ordinary mix | heavy mix |" in tables
    assert "| **total** |" in tables


def test_the_cost_of_kept_state_is_measured_against_memory(run: Any) -> None:
    doc, printed, _ = run
    durability = doc["durability"]

    assert durability["jobs"] == 5
    assert durability["memory"]["journal_kib_per_job"] == 0  # nothing written in memory
    # a journaled job writes at least its image, base64-encoded, to the journal
    assert durability["journal"]["journal_kib_per_job"] * 1024 > durability["image_bytes"]
    assert durability["journal"]["wall_ms_per_job"] > 0
    assert "kept state, the writes of one job" in printed
