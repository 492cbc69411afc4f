"""One progress component for every long command: how far, how fast, how long still.

Why one: users of every archiver ask "is it stuck?". Each long command (sync,
normalize, import, export, push, restore, verify, backup, restore-archive,
check, retention apply) reports to a :class:`ProgressReporter`, which shows the
same numbers -- messages and bytes done of the total, the rate, the ETA, and
the current folder -- in the form the place it runs in can take:

- ``bar``: a rich line on a terminal (stderr), redrawn continuously;
- ``log``: off a terminal (systemd, cron, a file), a ``progress`` structlog event
  every ``interval`` seconds (10 by default), from a timer thread, so a stalled
  download still reports (its rate falls) instead of going silent;
- ``json``: with ``--json``, one JSON object per interval on stderr (stdout keeps
  the data);
- ``off``: ``--quiet``.

Nothing is printed before the first interval in ``log``/``json`` modes, so a short
run (a no-change sync under cron) writes nothing.

The reporter implements the sync pipeline's ``Progress`` protocol
(``planned``/``folder_started``/``advanced``) and is callable as
``progress(done, total)`` for the stages that count batches.

Layer: beside :mod:`syncer.logs`; it imports nothing of syncer above it.

Public API: :class:`ProgressReporter`, :class:`Snapshot`, :func:`choose_mode`,
:data:`DEFAULT_INTERVAL`.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Literal, TextIO

import structlog

Mode = Literal["bar", "log", "json", "off"]

#: Seconds between two ``progress`` events off a terminal (``[logging] progress_every``).
DEFAULT_INTERVAL = 10.0

log = structlog.get_logger("syncer.progress")


def choose_mode(*, json_output: bool, quiet: bool, stream: TextIO | None = None) -> Mode:
    """The display for where stderr goes: off (quiet), JSON lines (--json), a bar (terminal),
    else log events."""
    if quiet:
        return "off"
    if json_output:
        return "json"
    stream = stream or sys.stderr
    return "bar" if stream.isatty() else "log"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The numbers every display shows; a total is None until something says it."""

    label: str
    folder: str | None
    messages: int
    messages_total: int | None
    bytes: int
    bytes_total: int | None
    elapsed_seconds: float
    messages_per_second: float
    bytes_per_second: float
    eta_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elapsed_seconds"] = round(self.elapsed_seconds, 1)
        data["messages_per_second"] = round(self.messages_per_second, 1)
        data["bytes_per_second"] = round(self.bytes_per_second)
        data["eta_seconds"] = None if self.eta_seconds is None else round(self.eta_seconds)
        return data


class ProgressReporter:
    """Counts work done against the planned total and shows it (see the module docstring).

    Thread-safe: the pipeline's writer and the timer thread share it.

    :param label: what the command does ("Syncing", "Normalizing").
    :param unit: what ``messages`` counts (blobs for verify, messages elsewhere).
    """

    def __init__(
        self,
        label: str,
        *,
        mode: Mode,
        interval: float = DEFAULT_INTERVAL,
        unit: str = "messages",
        clock: Callable[[], float] = time.monotonic,
        stream: TextIO | None = None,
    ) -> None:
        self.label, self.mode, self.interval, self.unit = label, mode, interval, unit
        self._clock = clock
        self._stream = stream
        self._lock = threading.Lock()
        self._started = clock()
        self._messages = self._bytes = 0
        self._messages_total: int | None = None
        self._bytes_total: int | None = None
        self._bytes_planned = 0
        self._bytes_unknown = False
        self._has_plan = False
        self._folder: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported = 0
        self._short_unit = "msgs" if unit == "messages" else unit
        self._bar: Any = None
        self._task: Any = None

    # ------------------------------------------------------------------ counting

    def planned(self, messages: int, size: int | None) -> None:
        """Add to the totals (a folder's or a maildrop's share, known before downloading).

        A size of None (a server without STATUS=SIZE) leaves the byte total unknown, and
        the ETA then comes from the message count.
        """
        with self._lock:
            self._messages_total = (self._messages_total or 0) + messages
            self._bytes_unknown = self._bytes_unknown or size is None
            self._bytes_planned += size or 0
            self._bytes_total = None if self._bytes_unknown else self._bytes_planned
            self._has_plan = True
        self._redraw()

    def set_total(self, messages: int | None = None, size: int | None = None) -> None:
        """Replace the totals (a command that knows them all at once)."""
        with self._lock:
            self._messages_total, self._bytes_total = messages, size
            self._has_plan = True
        self._redraw()

    def folder_started(self, folder: str, messages: int, size: int) -> None:
        """The pipeline moved on to ``folder``; without a plan its count joins the total."""
        with self._lock:
            self._folder = folder
            if not self._has_plan:
                self._messages_total = self._messages + messages
        self._redraw()

    def advanced(self, messages: int = 1, size: int = 0) -> None:
        """``messages`` more done, ``size`` bytes of them."""
        with self._lock:
            self._messages += messages
            self._bytes += size
        self._redraw()

    def __call__(self, done: int, total: int | None = None) -> None:
        """``progress(done, total)``: the absolute form, for stages that count batches."""
        with self._lock:
            self._messages = done
            if total is not None:
                self._messages_total = total
        self._redraw()

    def snapshot(self) -> Snapshot:
        with self._lock:
            elapsed = max(self._clock() - self._started, 1e-9)
            messages, size = self._messages, self._bytes
            messages_total, bytes_total, folder = (
                self._messages_total,
                self._bytes_total,
                self._folder,
            )
        rate_m, rate_b = messages / elapsed, size / elapsed
        eta: float | None = None
        # Bytes decide the ETA where both totals are known: one 20 MB message takes longer
        # than a hundred short ones.
        if bytes_total and rate_b > 0:
            eta = max(bytes_total - size, 0) / rate_b
        elif messages_total and rate_m > 0:
            eta = max(messages_total - messages, 0) / rate_m
        return Snapshot(
            label=self.label,
            folder=folder,
            messages=messages,
            messages_total=messages_total,
            bytes=size,
            bytes_total=bytes_total,
            elapsed_seconds=elapsed,
            messages_per_second=rate_m,
            bytes_per_second=rate_b,
            eta_seconds=eta,
        )

    # ------------------------------------------------------------------ showing

    def __enter__(self) -> ProgressReporter:
        self._started = self._clock()
        if self.mode == "bar":
            self._open_bar()
        elif self.mode in ("log", "json"):
            self._thread = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
            self._bar = None
        elif self._reported:
            self._report()  # the last numbers, so a log that showed progress shows the end

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._report()

    def _report(self) -> None:
        data = self.snapshot().as_dict()
        self._reported += 1
        if self.mode == "json":
            stream = self._stream or sys.stderr
            stream.write(json.dumps({"event": "progress", **data}, sort_keys=True) + "\n")
            stream.flush()
        else:
            log.info("progress", unit=self.unit, **data)

    def _open_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        console = Console(file=self._stream or sys.stderr, highlight=False)
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[numbers]}"),
            console=console,
            transient=True,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task(self.label, total=None, numbers="")
        self._redraw()

    def _redraw(self) -> None:
        if self._bar is None:
            return
        snap = self.snapshot()
        total = snap.bytes_total or snap.messages_total
        done = snap.bytes if snap.bytes_total else snap.messages
        self._bar.update(
            self._task, completed=done, total=total, numbers=render_numbers(snap, self._short_unit)
        )


def render_numbers(snap: Snapshot, unit: str = "msgs") -> str:
    """``1,204/10,000 msgs · 80.1/650.0 MB · 120 msg/s · ETA 1:12 · INBOX``."""
    parts = [
        f"{snap.messages:,}/{snap.messages_total:,} {unit}"
        if snap.messages_total is not None
        else f"{snap.messages:,} {unit}"
    ]
    if snap.bytes or snap.bytes_total:
        done = snap.bytes / 1_048_576
        parts.append(
            f"{done:.1f}/{snap.bytes_total / 1_048_576:.1f} MB"
            if snap.bytes_total
            else f"{done:.1f} MB"
        )
    parts.append(f"{snap.messages_per_second:,.0f} {unit}/s")
    parts.append("ETA " + (_clock_time(snap.eta_seconds) if snap.eta_seconds is not None else "?"))
    if snap.folder:
        parts.append(snap.folder)
    return " · ".join(parts)


def _clock_time(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
