"""Long polls: read something again and again until it is done or the time is up.

The reads start 25 ms apart (from the start of one to the start of the next) and grow by half
each time up to one a second: a job that finishes in 30 ms is seen within a few milliseconds of
it, and a 20-second wait costs about 30 reads (`make bench` counted 32), not the 800 a fixed
25 ms would. An answer comes at most one interval and one read after it was ready (and never
after the deadline).

While a job is young (``DENSE_WINDOW_S`` from its creation, when an idle classifier finishes
it) the reads come every ``DENSE_INTERVAL_S`` first: growing intervals would by then have
reached 60-100 ms and lose about half of that on average after the job finished. That costs at
most 15 more reads per job, only for a wait that starts while the job is young.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from chalicelib.contract import MAX_WAIT_S

FIRST_INTERVAL_S = 0.025
GROWTH = 1.5
LONGEST_INTERVAL_S = 1.0
DENSE_INTERVAL_S = 0.02
DENSE_WINDOW_S = 0.3


def intervals(*, dense_s: float = 0.0) -> Iterator[float]:
    """The pauses between reads: 20 ms ones for ``dense_s`` seconds, then 25 ms, 37.5 ms,
    56 ms, … up to 1 s, then 1 s."""
    spent = 0.0
    while spent < dense_s:
        yield DENSE_INTERVAL_S
        spent += DENSE_INTERVAL_S
    interval = FIRST_INTERVAL_S
    while True:
        yield interval
        interval = min(LONGEST_INTERVAL_S, interval * GROWTH)


@dataclass(frozen=True)
class Pause:
    """The clock a long poll reads and the way it sleeps (tests give their own)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def wait_until[T](
    read: Callable[[], T],
    done: Callable[[T], bool],
    *,
    first: T,
    seconds: float,
    pause: Pause | None = None,
    dense_s: float = 0.0,
) -> T:
    """``read()`` until ``done`` says so or ``seconds`` have passed; the last value read.

    ``first`` is the value the caller has just read (or written): it is not read again at once,
    a read that could only repeat it. ``dense_s``: how long to read every ``DENSE_INTERVAL_S``
    before the intervals grow."""
    pause = pause or Pause()
    last = pause.clock()  # when the value in hand was read
    deadline = last + seconds
    value = first
    for interval in intervals(dense_s=dense_s):
        now = pause.clock()
        if done(value) or now >= deadline:
            return value
        # The interval runs from the start of one read to the start of the next: a read that
        # takes 12 ms of a 20 ms interval leaves 8 to sleep, not another 20.
        wake = min(last + interval, deadline)
        if wake > now:
            pause.sleep(wake - now)
        last = pause.clock()
        value = read()
    raise AssertionError("unreachable")  # intervals() never ends


def young_for(created_at: str, *, now: float | None = None) -> float:
    """How much of ``DENSE_WINDOW_S`` is left of a job created at ``created_at`` (ISO 8601)."""
    try:
        created = datetime.fromisoformat(created_at).timestamp()
    except ValueError:
        return 0.0
    age = (time.time() if now is None else now) - created
    return max(0.0, min(DENSE_WINDOW_S, DENSE_WINDOW_S - age))


def parse_prefer_wait(header: str | None) -> float | None:
    """The ``wait`` preference of an RFC 7240 ``Prefer`` header (``respond-async, wait=5``),
    capped at ``MAX_WAIT_S``; None when there is none or it is not a positive number (a
    preference the server does not understand is ignored, as the RFC says)."""
    for preference in (header or "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        try:
            seconds = float(value.strip().strip('"'))
        except ValueError:
            return None
        return min(seconds, MAX_WAIT_S) if 0 < seconds < float("inf") else None
    return None
