"""A small thread pool that overlaps the per-image steps of a batch.

S3 reads and DynamoDB writes wait on the network, and Pillow releases the GIL while it decodes and
resizes, so a few threads keep both cores busy where one thread would take turns: one image
decodes while the next one downloads and a third one's state is written. The pool lives as long as
the container; its threads start on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


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
        self._pool = (
            ThreadPoolExecutor(workers, thread_name_prefix="classify") if workers > 1 else None
        )

    def map[T, R](self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | Exception]:
        """``fn`` over ``items``; each result, or the exception it raised, in the items' order."""
        if self._pool is None or len(items) < 2:
            return [_settle(fn, item) for item in items]
        return list(self._pool.map(lambda item: _settle(fn, item), items))
