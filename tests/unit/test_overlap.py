"""The thread pool that overlaps a batch's per-image steps."""

from __future__ import annotations

import threading

import pytest

from chalicelib.overlap import Budget, Overlap


def test_results_come_back_in_order_with_each_failure_in_its_place() -> None:
    def work(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        return n * n

    outcomes = Overlap(4).map(work, list(range(6)))

    assert outcomes[:3] == [0, 1, 4]
    assert isinstance(outcomes[3], ValueError)
    assert outcomes[4:] == [16, 25]


def test_items_really_run_at_the_same_time() -> None:
    # Two items that each wait for the other: only concurrent execution gets both past.
    meet = threading.Barrier(2, timeout=10)

    outcomes = Overlap(2).map(lambda _: meet.wait() >= 0, ["a", "b"])

    assert outcomes == [True, True]


def test_one_worker_runs_in_the_callers_thread() -> None:
    caller = threading.current_thread()

    outcomes = Overlap(1).map(lambda _: threading.current_thread() is caller, [1, 2, 3])

    assert outcomes == [True, True, True]


def test_zero_workers_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Overlap(0)


def test_a_holder_waits_until_enough_of_the_budget_is_free() -> None:
    budget = Budget(10)
    entered = threading.Event()

    def second() -> None:
        with budget.hold(6):
            entered.set()

    with budget.hold(6):
        waiting = threading.Thread(target=second)
        waiting.start()
        assert not entered.wait(0.3)  # 6 of 10 are held: another 6 must wait
    assert entered.wait(10)  # released: it gets in
    waiting.join(10)


def test_more_than_the_whole_budget_runs_alone_instead_of_never() -> None:
    budget = Budget(10)

    with budget.hold(1_000):
        pass
    with budget.hold(10), budget.hold(0):
        pass  # nothing to hold never waits
