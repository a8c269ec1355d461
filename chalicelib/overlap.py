"""A small thread pool that overlaps the per-image steps of a batch.

S3 reads and DynamoDB writes wait on the network, and Pillow releases the GIL while it decodes and
resizes, so a few threads keep both cores busy where one thread would take turns: one image
decodes while the next one downloads and a third one's state is written. The pool lives as long as
the container; its threads start on first use.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_MMAP_THRESHOLD_BYTES = 1024 * 1024


def _return_large_blocks_to_the_system() -> None:
    """Make glibc serve every allocation of 1 MiB or more with its own mmap, freed at once.

    By default glibc gives each thread its own malloc arena and raises its mmap threshold after
    the first large frees, so decoded images end up in per-thread heaps that keep their pages:
    eight threads that each decoded one 48-megapixel PNG in turn held 6.5 GB at their peak,
    against 0.56 GB for one thread. With a fixed 1 MiB threshold the eight threads peak at the
    one thread's 0.57 GB. A no-op where the C library is not glibc.
    """
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def _settle[T, R](fn: Callable[[T], R], item: T) -> R | Exception:
    try:
        return fn(item)
    except Exception as exc:  # handed back to the caller, which decides per item
        return exc


class Overlap:
    """Run a function over a batch's items on ``workers`` threads (1: in the caller's thread)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        if workers > 1:
            _return_large_blocks_to_the_system()
        self._pool = (
            ThreadPoolExecutor(workers, thread_name_prefix="classify") if workers > 1 else None
        )

    def map[T, R](self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | Exception]:
        """``fn`` over ``items``; each result, or the exception it raised, in the items' order."""
        if self._pool is None or len(items) < 2:
            return [_settle(fn, item) for item in items]
        return list(self._pool.map(lambda item: _settle(fn, item), items))


class Budget:
    """Caps what the threads hold at once (decoded pixels, say): each ``hold(n)`` waits until
    ``n`` is free. A request larger than the whole budget waits for all of it, so it runs alone.

    Parallel decoding must not multiply the memory of the largest images: a 48-megapixel RGBA
    PNG takes about 0.5 GB to decode and convert, and ten of them on eight threads would take
    several gigabytes of a 1 GB Lambda.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the budget must be at least 1")
        self.limit = limit
        self._free = limit
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, amount: int) -> Iterator[None]:
        """Hold ``amount`` (capped at the whole budget) for the duration of the block."""
        need = max(0, min(amount, self.limit))
        with self._changed:
            self._changed.wait_for(lambda: self._free >= need)
            self._free -= need
        try:
            yield
        finally:
            with self._changed:
                self._free += need
                self._changed.notify_all()
