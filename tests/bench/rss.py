"""Peak resident memory of a whole process tree, sampled from /proc (Linux).

Why this module exists: ``getrusage`` reports the largest single child, not
what a parent and its worker processes hold together; the issue's bound
(≤ 200 MB) is for the whole tree. :class:`TreeRSS` samples the RSS of a
process and all its descendants every few milliseconds and keeps the peak sum
(and the peak of each command line, to see who holds what).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from pathlib import Path
from types import TracebackType
from typing import Self

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree[parent].append(int(entry.name))
    return tree


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def tree_rss(root: int) -> tuple[int, dict[int, int]]:
    """The RSS sum of ``root`` and its descendants, and each one's RSS.

    A child that has not yet called ``exec`` (``subprocess`` starts one with
    ``vfork``: it runs in its parent's memory until the new program replaces
    it) reports its parent's RSS; summing both would count the parent twice
    for that moment, so such a child -- same command line as its parent and
    about its RSS (the parent's other threads go on allocating) -- counts 0.
    """
    tree = _children()
    each: dict[int, int] = {}
    stack = [(root, 0)]
    while stack:
        pid, parent = stack.pop()
        each[pid] = _rss(pid)
        near = parent and abs(each[pid] - each[parent]) <= each[parent] // 20
        if near and _cmdline(pid) == _cmdline(parent):
            each[pid] = 0
        stack.extend((child, pid) for child in tree.get(pid, ()))
    return sum(each.values()), each


class TreeRSS:
    """``with TreeRSS(pid) as rss: ...``; then ``rss.peak`` (bytes) and ``rss.processes``."""

    def __init__(self, root: int | None = None, every: float = 0.05) -> None:
        self.root = os.getpid() if root is None else root
        self.every = every
        self.peak = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            total, each = tree_rss(self.root)
            if total > self.peak:
                self.peak, self.processes = total, len(each)
            self._stop.wait(self.every)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
