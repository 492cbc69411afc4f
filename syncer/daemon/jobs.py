"""What a job of ``syncer run`` is, what it sees, and how one runs.

Why a module of its own: the job kinds (:mod:`syncer.daemon.kinds`), the
scheduler (:mod:`syncer.daemon.scheduler`), the process around them
(:mod:`syncer.daemon.service`) and the metrics all speak of jobs; this module is
the vocabulary they share and imports none of them, so none of them imports
another in a circle.

Public API: :data:`Outcome`, :class:`Schedule`, :class:`JobSpec`,
:class:`JobKind`, :class:`JobObserver`, :class:`Runtime` and :func:`guarded`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import structlog
from structlog.contextvars import bound_contextvars

from syncer.errors import SyncerError

if TYPE_CHECKING:
    from syncer.archive.admin_views import RunView
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config
    from syncer.model import RunSummary

log = structlog.get_logger(__name__)

Outcome = Literal["ok", "failed", "skipped", "stopped"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a job runs: a cron expression or an interval in seconds (exactly one)."""

    cron: str | None = None
    every: float | None = None

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron}"
        return f"every {_duration(self.every or 0)}"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduled job: ``target(runtime, *args)`` runs it and returns its outcome.

    ``target`` is a module-level function (STYLE §8); ``id`` is unique, e.g. ``sync:work``.
    """

    id: str
    kind: str
    target: Callable[..., Outcome]
    args: tuple[str, ...]
    schedule: Schedule


@dataclass(frozen=True, slots=True)
class LastRun:
    """A job's last recorded run, as the scheduler and ``syncer status`` read it.

    :ivar run_id: None for jobs that keep no run records (a digest's last period).
    :ivar worker: the worker that ran it, else ``host:pid`` where known.
    """

    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None
    run_id: str | None = None
    worker: str | None = None

    @classmethod
    def of(cls, run: RunView) -> LastRun:
        host = f"{run.host}:{run.pid}" if run.host is not None else None
        return cls(
            started_at=run.started_at,
            finished_at=run.finished_at,
            status=run.status,
            error=run.error,
            run_id=run.run_id,
            worker=run.worker or host,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form in ``syncer status --json`` (times in ISO 8601)."""
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "status": self.status,
            "error": self.error,
            "worker": self.worker,
        }


def _no_record(store: ArchiveStore, spec: JobSpec) -> LastRun | None:
    return None


@dataclass(frozen=True, slots=True)
class JobKind:
    """A kind of job in the registry.

    :param specs: the jobs of this kind the configuration asks for.
    :param last_run: its last recorded run, or None.
    :param once_order: ``syncer run --once`` runs kinds in ascending order (syncs first).
    :param records_runs: whether its runs are recorded (``last_run`` can answer).
    """

    name: str
    specs: Callable[[Config], Iterable[JobSpec]]
    last_run: Callable[[ArchiveStore, JobSpec], LastRun | None] = _no_record
    once_order: int = 100
    records_runs: bool = True


#: The job registry: kind name -> kind. Filled by :func:`register_kind` below.


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# --------------------------------------------------------------------------- runtime


class JobObserver:
    """What the daemon reports finished jobs to; :mod:`syncer.daemon.metrics` overrides it."""

    def sync_finished(self, summary: RunSummary, outcome: Outcome) -> None:
        """A sync run ended (not called for skipped jobs)."""

    def job_finished(self, job_id: str, outcome: Outcome) -> None:
        """Any job ended, skipped ones included."""

    def push_connected(self, account: str, connected: bool) -> None:
        """An account's push connection came up or went down (:mod:`syncer.daemon.push`)."""

    def push_delays(self, account: str, seconds: list[float]) -> None:
        """Push-triggered syncs archived messages this long after their INTERNALDATE."""


def _always_poll(account: str) -> bool:
    return True


class Observers(JobObserver):
    """Several observers as one (the metrics and the monitoring ping)."""

    def __init__(self, *observers: JobObserver) -> None:
        self.observers = observers

    def sync_finished(self, summary: RunSummary, outcome: Outcome) -> None:
        for observer in self.observers:
            observer.sync_finished(summary, outcome)

    def job_finished(self, job_id: str, outcome: Outcome) -> None:
        for observer in self.observers:
            observer.job_finished(job_id, outcome)

    def push_connected(self, account: str, connected: bool) -> None:
        for observer in self.observers:
            observer.push_connected(account, connected)

    def push_delays(self, account: str, seconds: list[float]) -> None:
        for observer in self.observers:
            observer.push_delays(account, seconds)


@dataclass
class Runtime:
    """What job targets see. ``config`` is replaced on SIGHUP; the rest lives as long
    as the process.

    It also tracks the jobs running now and the leases they hold, so a stopping
    daemon can wait for them and release what is left when its grace period ends.
    """

    config: Config
    store: ArchiveStore
    holder: str
    stop: threading.Event = field(default_factory=threading.Event)
    observer: JobObserver = field(default_factory=JobObserver)
    #: Whether the scheduled poll of an account should run now (push mode thins it out).
    should_poll: Callable[[str], bool] = _always_poll
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _running: dict[str, int] = field(default_factory=dict)
    _leases: set[str] = field(default_factory=set)

    @contextmanager
    def running(self, job_id: str) -> Iterator[None]:
        with self._cond:
            self._running[job_id] = self._running.get(job_id, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._running[job_id] -= 1
                if not self._running[job_id]:
                    del self._running[job_id]
                self._cond.notify_all()

    @contextmanager
    def holding(self, lease: str) -> Iterator[None]:
        with self._cond:
            self._leases.add(lease)
        try:
            yield
        finally:
            with self._cond:
                self._leases.discard(lease)

    def running_jobs(self) -> list[str]:
        with self._cond:
            return sorted(self._running)

    def held_leases(self) -> list[str]:
        with self._cond:
            return sorted(self._leases)

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the running jobs to end; True when none is left."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._running, timeout=max(timeout, 0))


def guarded(job_id: str, runtime: Runtime, work: Callable[[], Outcome]) -> Outcome:
    """Run one job: skip it once a stop was asked, bind ``job`` in the log context,
    turn any escaping error into a logged ``failed`` outcome, and report it."""
    outcome: Outcome = "failed"
    # Counted as running before the stop flag is read: a stopping daemon that sees no
    # running job can be sure that any job starting later sees the flag.
    with runtime.running(job_id), bound_contextvars(job=job_id):
        if runtime.stop.is_set():
            return "stopped"
        try:
            outcome = work()
        except SyncerError as exc:
            log.error("job.failed", error=str(exc))
        except Exception as exc:  # one job's bug must not stop the scheduler
            if runtime.stop.is_set():
                # Torn down by the shutdown (a pool process got the signal too).
                log.warning("job.interrupted", error=f"{type(exc).__name__}: {exc}")
                outcome = "stopped"
            else:
                log.error("job.crashed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
        finally:
            runtime.observer.job_finished(job_id, outcome)
    return outcome
