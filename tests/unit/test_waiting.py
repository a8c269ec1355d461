"""Long polls: how often they read, when they stop, and the Prefer header."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.waiting import (
    DENSE_WINDOW_S,
    Pause,
    intervals,
    parse_prefer_wait,
    wait_until,
    young_for,
)


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def pause(self) -> Pause:
        return Pause(clock=lambda: self.now, sleep=self.sleep)


def test_reads_start_often_and_settle_at_one_a_second() -> None:
    first = list(itertools.islice(intervals(), 12))

    assert first[0] == pytest.approx(0.025)
    assert all(b >= a for a, b in itertools.pairwise(first))
    assert first[-1] == 1.0


def test_a_twenty_second_wait_costs_about_thirty_reads() -> None:
    # GIVEN something that never finishes
    fake = FakeTime()
    reads = 0

    def read() -> str:
        nonlocal reads
        reads += 1
        return "PENDING"

    # WHEN a client waits the longest it may
    value = wait_until(
        read, lambda v: v != "PENDING", first="PENDING", seconds=20, pause=fake.pause()
    )

    # THEN it gets the current state at the deadline, not later, after few reads
    assert value == "PENDING"
    assert fake.now == pytest.approx(20)
    assert 20 <= reads <= 32


def test_the_wait_ends_at_the_first_read_that_sees_the_end() -> None:
    fake = FakeTime()
    states = iter(["PROCESSING", "SUCCEEDED", "never read"])

    value = wait_until(
        lambda: next(states),
        lambda v: v == "SUCCEEDED",
        first="PENDING",
        seconds=5,
        pause=fake.pause(),
    )

    assert value == "SUCCEEDED"
    assert len(fake.sleeps) == 2


def test_something_already_done_is_answered_without_sleeping() -> None:
    fake = FakeTime()

    def read() -> str:
        raise AssertionError("the value in hand was enough")

    assert wait_until(read, lambda v: True, first="FAILED", seconds=5, pause=fake.pause()) == (
        "FAILED"
    )
    assert fake.sleeps == []


def test_the_value_in_hand_is_not_read_again_before_the_first_pause() -> None:
    # GIVEN a record the caller has just written (PENDING) and a store that reads back PENDING
    fake = FakeTime()
    reads: list[float] = []

    def read() -> str:
        reads.append(fake.now)
        return "SUCCEEDED"

    # WHEN the caller waits with it in hand
    wait_until(read, lambda v: v == "SUCCEEDED", first="PENDING", seconds=5, pause=fake.pause())

    # THEN the first read comes after the first pause, not at once
    assert reads == [pytest.approx(0.025)]


def test_a_young_job_is_read_every_20_ms_then_as_any_other() -> None:
    first = list(itertools.islice(intervals(dense_s=0.1), 7))

    assert first[:5] == [pytest.approx(0.02)] * 5
    assert first[5:] == [pytest.approx(0.025), pytest.approx(0.0375)]


def test_a_job_finishing_while_young_is_seen_within_20_ms() -> None:
    # GIVEN a job that finishes 150 ms into the wait
    def finish_time(dense_s: float) -> float:
        fake = FakeTime()
        seen = wait_until(
            lambda: "SUCCEEDED" if fake.now >= 0.15 else "PROCESSING",
            lambda v: v == "SUCCEEDED",
            first="PENDING",
            seconds=5,
            pause=fake.pause(),
            dense_s=dense_s,
        )
        assert seen == "SUCCEEDED"
        return fake.now

    # THEN a wait on a young job sees it within one dense interval; growing intervals, later
    assert finish_time(DENSE_WINDOW_S) <= 0.15 + 0.02 + 1e-9
    assert finish_time(0.0) > 0.15 + 0.02


def test_the_interval_runs_from_the_start_of_one_read_to_the_start_of_the_next() -> None:
    # GIVEN reads that take 12 ms each, on a young job
    fake = FakeTime()
    starts: list[float] = []

    def read() -> str:
        starts.append(fake.now)
        fake.now += 0.012
        return "PROCESSING"

    # WHEN a wait of 100 ms reads every dense interval
    value = wait_until(
        read,
        lambda v: v == "SUCCEEDED",
        first="PENDING",
        seconds=0.1,
        pause=fake.pause(),
        dense_s=DENSE_WINDOW_S,
    )

    # THEN the reads start 20 ms apart, the read's own time included, and none after the end
    assert value == "PROCESSING"
    assert starts == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert fake.sleeps == pytest.approx([0.02, 0.008, 0.008, 0.008, 0.008])


def test_how_young_a_job_is_comes_from_its_creation_time() -> None:
    created = "2026-01-01T00:00:00.000Z"
    at = 1767225600.0  # that instant

    assert young_for(created, now=at + 0.1) == pytest.approx(DENSE_WINDOW_S - 0.1)
    assert young_for(created, now=at + 5) == 0.0
    assert young_for(created, now=at - 5) == DENSE_WINDOW_S  # a clock behind: at most the window
    assert young_for("not a time", now=at) == 0.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("wait=5", 5.0),
        ("respond-async, wait=2.5", 2.5),
        ('wait="3"', 3.0),
        ("WAIT=1", 1.0),
        ("wait=600", 20.0),  # capped at what API Gateway allows
        ("wait=0", None),
        ("wait=-1", None),
        ("wait=soon", None),
        ("wait=inf", None),
        ("respond-async", None),
        ("", None),
        (None, None),
    ],
)
def test_the_wait_preference_is_read_and_capped(header: str | None, seconds: float | None) -> None:
    assert parse_prefer_wait(header) == seconds
