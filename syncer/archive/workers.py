"""A small thread pool for the hot path that hands out byte-balanced slices, not items.

Why this module exists: zstd and hashlib release the GIL on large buffers, so
hashing and compressing a batch on a few threads pays off; but handing each
8 KB message to a thread separately costs about as much as hashing it. The
pool therefore cuts a batch into one contiguous slice per thread, of about
equal byte count, and runs each slice as one task. Batches too small to gain
anything run inline.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Below this many bytes in a batch, the thread hand-off costs more than it saves.
PARALLEL_MIN_BYTES = 1024 * 1024


def default_threads() -> int:
    """Threads worth using here: the CPUs we may run on, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


class Workers:
    """Runs ``func`` over slices of a batch on up to ``threads`` threads.

    ``threads <= 1`` never starts a thread. The executor is created on first
    use and shut down by :meth:`close`.
    """

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def map_slices(
        self,
        func: Callable[[Sequence[T]], list[R]],
        items: Sequence[T],
        weight: Callable[[T], int],
    ) -> list[R]:
        """``func`` applied to consecutive slices of ``items``; results concatenated in order."""
        if self.threads < 2 or len(items) < 2:
            return func(items)
        total = sum(weight(item) for item in items)
        if total < PARALLEL_MIN_BYTES:
            return func(items)
        target = total / self.threads
        slices: list[Sequence[T]] = []
        start = 0
        acc = 0
        for index, item in enumerate(items):
            acc += weight(item)
            if acc >= target and len(slices) < self.threads - 1:
                slices.append(items[start : index + 1])
                start = index + 1
                acc = 0
        if start < len(items):
            slices.append(items[start:])
        with self._lock:  # the store may be shared between threads
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.threads, thread_name_prefix="syncer-archive"
                )
            executor = self._executor
        result: list[R] = []
        for part in executor.map(func, slices):
            result.extend(part)
        return result

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


#: Runs everything inline; the default when no pool is given.
INLINE = Workers(1)
