"""The command-line client's own behaviour: its progress line, a service that does not answer,
and the installed commands."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from chalicelib.cli import Item, main, progress
from tests.conftest import ROOT


def test_progress_counts_every_file_and_a_refused_one_as_done_and_failed() -> None:
    items = [
        Item(Path("cat.jpg"), job_id="a", job={"status": "SUCCEEDED"}),
        Item(Path("dog.jpg"), job_id="b", job={"status": "SUCCEEDED"}),
        Item(Path("notes.jpg"), error="not an image"),  # refused at submission: never a job
    ]

    assert progress(items) == f"[{'#' * 30}] 3/3 done, 1 failed"


def test_progress_of_a_run_under_way_fills_the_bar_by_every_file() -> None:
    items = [
        Item(Path("a.jpg"), job_id="a", job={"status": "PENDING"}),
        Item(Path("b.jpg"), job_id="b", job={"status": "FAILED"}),
        Item(Path("c.jpg"), error="too large"),
    ]

    assert progress(items, width=6) == "[####..] 2/3 done, 2 failed"


def test_no_service_answering_is_one_line_on_stderr_and_exit_status_3(tmp_path: Path) -> None:
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really decoded by anyone")
    with socket.socket() as idle:
        idle.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        url = f"http://127.0.0.1:{idle.getsockname()[1]}"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "chalicelib.cli",
                "classify",
                str(photo),
                "--wait",
                "--url",
                url,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert done.returncode == 3
    assert done.stderr == (
        f"error: no service answers at {url} (connection refused); is it running? (make run)\n"
    )


def test_the_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["classify", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
        assert "3  no service answers at --url" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["imgcls", "imgcls-keys"])
def test_the_installed_commands_work_outside_the_repository(command: str, tmp_path: Path) -> None:
    installed = Path(sysconfig.get_path("scripts")) / command

    done = subprocess.run(
        [str(installed), "--help"],
        cwd=tmp_path,  # nowhere near the repository, as a user would be
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {command} ")
    assert "exit status:" in done.stdout


class ScriptedApi:
    """The API as the CLI sees it: answers each GET with the job's next state from a script."""

    def __init__(self, states: dict[str, list[str]]) -> None:
        self.states = states
        self.calls: list[str] = []

    def call(self, method: str, path: str, *_: object) -> tuple[int, dict[str, object]]:
        self.calls.append(f"{method} {path}")
        job_id = path.split("/")[2].split("?")[0]
        return 200, {"job_id": job_id, "status": self.states[job_id].pop(0)}


def test_waiting_asks_the_server_to_answer_when_each_job_is_done() -> None:
    import io

    from chalicelib.cli import wait

    # GIVEN two jobs: one done at the first answer, one after a second long poll
    api = ScriptedApi({"a": ["SUCCEEDED"], "b": ["PROCESSING", "FAILED"]})
    items = [Item(Path("a.jpg"), job_id="a"), Item(Path("b.jpg"), job_id="b")]

    wait(api, items, timeout_s=600, out=io.StringIO())  # type: ignore[arg-type]

    # THEN three requests in all, each a long poll of at most 20 s: no polling loop
    assert api.calls == ["GET /jobs/a?wait=20", "GET /jobs/b?wait=20", "GET /jobs/b?wait=20"]
    assert [i.status for i in items] == ["SUCCEEDED", "FAILED"]


class CachingApi:
    """The API answering ``POST /jobs`` with 200 and the finished job (a cached repeat)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def call(self, method: str, path: str, *_: object) -> tuple[int, dict[str, object]]:
        self.calls.append(f"{method} {path}")
        return 200, {
            "job_id": "c" * 32,
            "status": "SUCCEEDED",
            "cached_from": "d" * 32,
            "predictions": [{"label": "tabby", "probability": 0.41}],
            "categories": [
                {"name": "cat", "probability": 0.93},
                {"name": "food", "probability": 0.01},
            ],
        }


def test_options_are_sent_and_a_cached_answer_is_kept_and_written_as_csv(tmp_path: Path) -> None:
    import csv
    import io

    from chalicelib.cli import _options, submit
    from chalicelib.cli_report import summary, write_csv

    # GIVEN --top-k 3 --min-confidence 0.05, and a file the service answers from its cache
    args = argparse.Namespace(top_k=3, min_confidence=0.05)
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(b"\xff\xd8\xff")
    api = CachingApi()
    item = Item(photo)

    # WHEN it is submitted and the results written as CSV
    submit(api, item, _options(args))  # type: ignore[arg-type]
    write_csv([item], str(tmp_path / "out.csv"))

    # THEN the options were the query, the 200's job is the result, and the CSV holds it
    assert api.calls == ["POST /jobs?top_k=3&min_confidence=0.05"]
    assert item.status == "SUCCEEDED"
    assert list(summary([item])) == [f"{photo}\tSUCCEEDED\ttabby (0.410)\tcat (0.930)"]
    [row] = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert row["label"] == "tabby"
    assert row["categories"] == "cat 0.93; food 0.01"
