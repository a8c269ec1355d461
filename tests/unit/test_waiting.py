"""Long polls: how often they read, when they stop, and the Prefer header."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.waiting import Pause, intervals, parse_prefer_wait, wait_until


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
