"""Which jobs ``syncer run`` runs, when, and what each one does (APScheduler 3 wiring).

Public API:

- :class:`JobKind` and :data:`JOB_KINDS`, the job registry: a kind name maps to a
  function that yields :class:`JobSpec` values from the configuration. A later
  feature adds a kind of job with one :func:`register_kind` call (see "Adding a
  job kind" below); the daemon, ``run --once`` and ``syncer status`` pick it up.
- :func:`job_specs` (every job the configuration asks for) and :func:`build_jobs`
  (the same with their APScheduler triggers, every schedule checked).
- :class:`Runtime`: what job targets see (current config, store, stop flag,
  observer); :func:`sync_job` and :func:`normalize_job`, the module-level targets.
- :func:`first_run`: when an interval job is next due, from its last recorded run.
- :func:`jobs_status`: per job its last run, outcome and next run, computed from
  the configuration and ``sync_runs`` alone (no daemon needed), for ``syncer status``.

The process around these (signals, reload, grace period, ``--once``) is
:mod:`syncer.daemon.service`; the Prometheus endpoint is :mod:`syncer.daemon.metrics`.

Job kinds today: ``sync:<account>`` (:func:`syncer.sync.runner.sync_account` under
the account's lease, on the account's ``schedule`` or ``every``) and
``normalize`` (:func:`syncer.sync.normalize.normalize_pending` under the lease
``normalize``, every ``[scheduler] normalize_every``; its runs are not recorded
in ``sync_runs``) and ``retention`` (:func:`syncer.retention.job.retention_job`
under the lease ``retention``, on ``[retention_settings] schedule``; audited,
not in ``sync_runs``), ``digest:<name>`` (:func:`syncer.daemon.relay_jobs.digest_job`
under the lease ``digest:<name>``, on each digest's ``schedule``; its last run
is its last queued period) and ``outbox`` (:func:`syncer.daemon.relay_jobs.outbox_job`
under the lease ``outbox``, every ``[outbox] flush_every``: forward rules, then
the flush), each one :class:`JobKind` whose ``specs`` reads its config section.

Adding a job kind::

    def _retention_specs(config: Config) -> Iterator[JobSpec]:
        if config.retention.schedule:
            yield JobSpec("retention", "retention", retention_job, (),
                          Schedule(cron=config.retention.schedule))

    register_kind(JobKind("retention", _retention_specs, once_order=20))

where ``retention_job(runtime) -> Outcome`` is a module-level function that
binds its log context, catches ``SyncerError`` and returns an outcome.

Schedules: ``schedule`` is a five-field cron expression read with standard
cron weekday numbers (0 or 7 = Sunday), which are translated for APScheduler 3
(whose own numbering starts at Monday); unlike Vixie cron, a restricted day of
month *and* day of week must both match. ``every`` is an interval whose first
run is due one interval after the last recorded run (at once when overdue), so
a restart does not re-run everything and every worker agrees on the due time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import structlog
from structlog.contextvars import bound_contextvars

from syncer.errors import ConfigError, LeaseHeld, SyncerError

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]

    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config
    from syncer.model import RunSummary
    from syncer.sync.runner import Lease

log = structlog.get_logger(__name__)

Outcome = Literal["ok", "failed", "skipped", "stopped"]

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


# --------------------------------------------------------------------------- specs


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


def _no_record(store: ArchiveStore, spec: JobSpec) -> dict[str, Any] | None:
    return None


@dataclass(frozen=True, slots=True)
class JobKind:
    """A kind of job in the registry.

    :param specs: the jobs of this kind the configuration asks for.
    :param last_run: its last recorded run (keys as :meth:`ArchiveStore.runs`), or None.
    :param once_order: ``syncer run --once`` runs kinds in ascending order (syncs first).
    :param records_runs: whether its runs are recorded (``last_run`` can answer).
    """

    name: str
    specs: Callable[[Config], Iterable[JobSpec]]
    last_run: Callable[[ArchiveStore, JobSpec], dict[str, Any] | None] = _no_record
    once_order: int = 100
    records_runs: bool = True


#: The job registry: kind name -> kind. Filled by :func:`register_kind` below.
JOB_KINDS: dict[str, JobKind] = {}


def register_kind(kind: JobKind) -> JobKind:
    if kind.name in JOB_KINDS:
        raise ValueError(f"job kind {kind.name!r} is registered twice")
    JOB_KINDS[kind.name] = kind
    return kind


def job_specs(config: Config) -> list[JobSpec]:
    """Every job the configuration asks for, in ``--once`` order (syncs first)."""
    kinds = sorted(JOB_KINDS.values(), key=lambda k: k.once_order)
    return [spec for kind in kinds for spec in kind.specs(config)]


def build_jobs(config: Config, timezone: Any = None) -> list[tuple[JobSpec, BaseTrigger]]:
    """The jobs with their APScheduler triggers (intervals start at the epoch; see
    :func:`first_run` for when they are due).

    :raises ConfigError: naming every job whose schedule APScheduler cannot read.
    """
    from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

    jobs: list[tuple[JobSpec, BaseTrigger]] = []
    problems: list[str] = []
    for spec in job_specs(config):
        if spec.schedule.cron is not None:
            try:
                jobs.append((spec, cron_trigger(spec.schedule.cron, timezone)))
            except ValueError as exc:
                problems.append(
                    f"{config.path}: job {spec.id}: schedule {spec.schedule.cron!r}: {exc}"
                )
        else:
            jobs.append((spec, IntervalTrigger(seconds=spec.schedule.every, timezone=timezone)))
    if problems:
        raise ConfigError(problems)
    return jobs


def cron_trigger(expr: str, timezone: Any = None) -> BaseTrigger:
    """A CronTrigger for a standard five-field cron expression (0 or 7 = Sunday).

    :raises ValueError: when a field is not valid.
    """
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected five fields, got {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=cron_weekdays(weekday),
        timezone=timezone,
    )


def cron_weekdays(spec: str) -> str:
    """A cron day-of-week field (``1-5``, ``0,6``, ``*/2``, ``mon-fri``) as APScheduler 3
    reads it: day names (``mon,tue,wed,thu,fri``), since its numbers start at Monday.

    :raises ValueError: for a field that is not a cron day of week.
    """
    if spec in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in spec.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"bad step in day of week {part!r}")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            low, high = _weekday(first), _weekday(last)
            if high < low:
                raise ValueError(f"day-of-week range {span!r} runs backwards")
        else:
            low = _weekday(span)
            high = 6 if step else low
        days.update(d % 7 for d in range(low, high + 1, step or 1))
    if days == set(range(7)):
        return "*"
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def _weekday(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token.lower() in _WEEKDAYS:
        return _WEEKDAYS.index(token.lower())
    raise ValueError(f"{token!r} is not a day of week (0-7 or sun..sat)")


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


def sync_job(runtime: Runtime, account_name: str) -> Outcome:
    """The target of ``sync:<account>``: one sync under the account's lease.

    Quietly skipped (``job.skipped`` at info, no ``sync_runs`` row) when another
    live worker holds the lease; stopped after the batch in flight once
    ``runtime.stop`` is set.
    """
    return guarded(f"sync:{account_name}", runtime, lambda: _sync(runtime, account_name))


def _sync(runtime: Runtime, account_name: str) -> Outcome:
    from syncer.sync.runner import account_lease, sync_account

    config = runtime.config
    try:
        account = config.account(account_name)
    except ConfigError:
        log.info("job.skipped", reason="the account is no longer configured")
        return "skipped"
    settings = config.scheduler
    try:
        with (
            account_lease(
                runtime.store,
                account.name,
                wait=False,
                ttl=settings.lease_ttl,
                holder=runtime.holder,
                renew_every=settings.heartbeat_seconds,
            ) as lease,
            runtime.holding(lease.name),
        ):
            summary = sync_account(account, runtime.store, lease=lease, stop=runtime.stop)
    except LeaseHeld as exc:
        log.info("job.skipped", reason=exc.message)
        return "skipped"
    outcome: Outcome = "ok" if summary.ok else "stopped" if runtime.stop.is_set() else "failed"
    runtime.observer.sync_finished(summary, outcome)
    return outcome


def _sync_specs(config: Config) -> Iterator[JobSpec]:
    for account in config.accounts:
        schedule = (
            Schedule(cron=account.schedule)
            if account.schedule is not None
            else Schedule(every=account.every or config.scheduler.default_every)
        )
        yield JobSpec(f"sync:{account.name}", "sync", sync_job, (account.name,), schedule)


def _last_sync(store: ArchiveStore, spec: JobSpec) -> dict[str, Any] | None:
    runs = store.runs(spec.args[0], limit=1)
    return runs[0] if runs else None


register_kind(JobKind("sync", _sync_specs, last_run=_last_sync, once_order=0))


def normalize_job(runtime: Runtime) -> Outcome:
    """The target of ``normalize``: derive what the syncs archived since (one worker at
    a time, under the lease ``normalize``); stops after the batch in flight on a stop."""
    return guarded("normalize", runtime, lambda: _normalize(runtime))


def _normalize(runtime: Runtime) -> Outcome:
    from syncer.sync.normalize import normalize_pending
    from syncer.sync.runner import STOPPED, SyncStopped

    try:
        with job_lease(runtime, "normalize") as lease:

            def after_batch(done: int, total: int) -> None:
                lease()
                if runtime.stop.is_set():
                    raise SyncStopped(STOPPED)

            normalize_pending(
                runtime.store,
                progress=after_batch,
                verify_dkim=runtime.config.archive.verify_dkim,
            )
    except LeaseHeld as exc:
        log.info("job.skipped", reason=exc.message)
        return "skipped"
    except SyncStopped:
        log.info("normalize.stopped", reason=STOPPED)
        return "stopped"
    return "ok"


@contextmanager
def job_lease(runtime: Runtime, name: str) -> Iterator[Lease]:
    """Hold the lease ``name`` (a job's, not an account's) for the block, with the
    configured ttl and heartbeat (:func:`syncer.sync.runner.hold_lease`).

    :raises LeaseHeld: when another live worker holds it.
    """
    from syncer.sync.runner import hold_lease

    settings = runtime.config.scheduler
    with (
        hold_lease(
            runtime.store,
            name,
            wait=False,
            ttl=settings.lease_ttl,
            holder=runtime.holder,
            renew_every=settings.heartbeat_seconds,
        ) as lease,
        runtime.holding(name),
    ):
        yield lease


def _normalize_specs(config: Config) -> Iterator[JobSpec]:
    every = config.scheduler.normalize_every
    yield JobSpec("normalize", "normalize", normalize_job, (), Schedule(every=every))


register_kind(JobKind("normalize", _normalize_specs, once_order=10, records_runs=False))

# Retention ([retention_settings] schedule): the target lives in syncer.retention.job, which
# imports this module only inside its functions.
from syncer.retention.job import retention_specs  # noqa: E402

register_kind(JobKind("retention", retention_specs, once_order=20, records_runs=False))

# Digests and the outbox (forwards, then the flush): the targets live in syncer.daemon.relay_jobs,
# which imports this module only inside its functions.
from syncer.daemon.relay_jobs import digest_specs, last_digest, outbox_specs  # noqa: E402

register_kind(JobKind("digest", digest_specs, last_run=last_digest, once_order=40))
register_kind(JobKind("outbox", outbox_specs, once_order=50, records_runs=False))


# --------------------------------------------------------------------------- status


def first_run(every: float, last: dict[str, Any] | None, now: datetime) -> datetime:
    """When an interval job is due: one interval after its last run started, or now."""
    if last is None or not last.get("started_at"):
        return now
    started = datetime.fromisoformat(last["started_at"])
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return max(now, started + timedelta(seconds=every))


def next_run(
    spec: JobSpec, last: dict[str, Any] | None, now: datetime, timezone: Any = None
) -> datetime | None:
    """When the job runs next, as a daemon started now would schedule it (None: never)."""
    if spec.schedule.every is not None:
        return first_run(spec.schedule.every, last, now)
    assert spec.schedule.cron is not None
    fire: datetime | None = cron_trigger(spec.schedule.cron, timezone).get_next_fire_time(None, now)
    return fire


def jobs_status(
    config: Config, store: ArchiveStore, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per job: ``job``, ``kind``, ``schedule``, ``last_run`` (started_at, finished_at,
    status, error, worker; None if never), ``outcome`` and ``next_run`` (ISO 8601).

    Computed from the configuration and the archive only, so it works whether or
    not a daemon is running; ``next_run`` is when one would run the job.
    """
    from tzlocal import get_localzone

    now = now or datetime.now(UTC)
    timezone = get_localzone()
    result: list[dict[str, Any]] = []
    for spec in job_specs(config):
        last = JOB_KINDS[spec.kind].last_run(store, spec)
        try:
            upcoming = next_run(spec, last, now, timezone)
            problem = None
        except ValueError as exc:
            upcoming, problem = None, f"schedule not understood: {exc}"
        result.append(
            {
                "job": spec.id,
                "kind": spec.kind,
                "schedule": spec.schedule.describe(),
                "last_run": (
                    {
                        k: last.get(k)
                        for k in ("run_id", "started_at", "finished_at", "status", "error")
                    }
                    | {"worker": last.get("worker") or _pid_host(last)}
                    if last
                    else None
                ),
                "outcome": last.get("status") if last else None,
                "recorded": JOB_KINDS[spec.kind].records_runs,
                "next_run": upcoming.astimezone(UTC).isoformat() if upcoming else None,
                **({"problem": problem} if problem else {}),
            }
        )
    return result


def _pid_host(run: dict[str, Any]) -> str | None:
    if run.get("host") is None:
        return None
    return f"{run['host']}:{run.get('pid')}"
